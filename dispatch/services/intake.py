"""Intake services behind the supervisor pages: live geocoding, upload previews, picking.

Pure service functions (no streamlit). The geocoder is the city's
(:func:`dispatch.services.geocoding.city_geocoder`, the one the import uses); a pack
without a reference gives ``None`` and the page asks for a typed address or a map click
instead.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatch.citypack import CityPack
from dispatch.errors import ImportFormatError
from dispatch.importers import Reject
from dispatch.importers.detect import decode_text, detect_format, parse_text
from dispatch.importers.generic_csv import OPTIONAL, REQUIRED, ColumnMapping
from dispatch.services.imports import (
    compare_with_store,
    import_context,
    locate_records,
    unique_records,
)
from dispatch.services.requests import address_outside_city, distance_m, pin_outside_city
from dispatch.store import UnitOfWork, utcnow
from geo.address import parse_address
from geo.geocoding import Geocoder, GeocodeResult
from geo.geocoding.result import not_located

#: Largest upload the dashboard previews or imports (the CLI accepts larger files).
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
#: How far from a map click a request may be and still be picked.
PICK_RADIUS_M = 100.0
#: How near a map click the nearest known address must be to stand for the click.
CLICK_ADDRESS_RADIUS_M = 50.0
#: Rows of the file shown in an upload preview.
PREVIEW_ROWS = 20


# --------------------------------------------------------------------------- geocoding


def geocode_address(
    geocoder: Geocoder | None, address: str, zipcode: str = ""
) -> GeocodeResult | None:
    """Geocode one typed address for the intake form, as the geocoder answers it.

    Parameters
    ----------
    geocoder
        The city's geocoder (:func:`dispatch.services.geocoding.city_geocoder`), or
        ``None`` when the city ships no address reference.
    address, zipcode
        What the call taker typed (surrounding spaces ignored).

    Returns
    -------
    GeocodeResult or None
        ``None`` without a geocoder (the call taker then types the address and clicks
        the map); otherwise the answer, located or not (an empty address is not asked
        and answers precision ``none``).
    """
    if geocoder is None:
        return None
    address = address.strip()
    if not address:
        return not_located(address)
    return geocoder.lookup(address, zipcode.strip() or None)


def reverse_geocode(geocoder: Geocoder | None, lon: float, lat: float) -> GeocodeResult | None:
    """Return the known address nearest to a map click, or ``None`` without a geocoder."""
    if geocoder is None:
        return None
    return geocoder.reverse_lookup(lon, lat)


def located_outside_city(
    pack: CityPack, geocoder: Geocoder | None, address: str, zipcode: str,
    match: GeocodeResult | None,
) -> str | None:
    """Return why a typed address is outside the city (one sentence), or ``None``.

    Either it names another city or its ZIP is not the city's
    (:func:`dispatch.services.requests.address_outside_city`), or the geocoder placed it
    beyond the city limit; :func:`create_request` refuses
    both, this says so as soon as the call taker presses *Locate*.
    """
    reason = address_outside_city(pack, geocoder, address, zipcode)
    if reason is None and match is not None and match.lon is not None and match.lat is not None:
        reason = pin_outside_city(pack, match.lon, match.lat)
    return reason


@dataclass(frozen=True)
class ClickAddress:
    """What a map click says about the address.

    ``address`` and ``zipcode`` are set only when the nearest known address lies within
    :data:`CLICK_ADDRESS_RADIUS_M` of the click (farther, the click stands for no
    address); ``outside`` says why the click is outside the city, if it is.
    """

    nearest: GeocodeResult | None
    address: str | None = None
    zipcode: str | None = None
    outside: str | None = None

    @property
    def near(self) -> bool:
        """Whether a known address stands for the click."""
        return self.address is not None


def address_at_click(
    pack: CityPack, geocoder: Geocoder | None, lon: float, lat: float,
    radius_m: float = CLICK_ADDRESS_RADIUS_M,
) -> ClickAddress:
    """Return the address a map click at ``(lon, lat)`` stands for, and its ZIP.

    Parameters
    ----------
    pack
        The city pack (its limit).
    geocoder
        The city's geocoder, or ``None`` (no address reference: nothing is filled in).
    lon, lat
        The clicked point.
    radius_m
        The nearest known address farther than this stands for nothing.

    Returns
    -------
    ClickAddress
        The geocoder's nearest answer; the address (without its ZIP) and the ZIP when
        it is within ``radius_m``; why the click is outside the city.
    """
    outside = pin_outside_city(pack, lon, lat)
    nearest = reverse_geocode(geocoder, lon, lat)
    if (outside is not None or nearest is None or not nearest.located
            or nearest.distance_m is None or nearest.distance_m > radius_m):
        return ClickAddress(nearest, outside=outside)
    matched = nearest.matched_address.strip()
    zip_code = nearest.zip or parse_address(matched).zip
    suffix = f", {zip_code}"
    if zip_code and matched.endswith(suffix):
        matched = matched[: -len(suffix)].rstrip()
    return ClickAddress(nearest, matched, zip_code)


# --------------------------------------------------------------------------- map picking


def click_lonlat(click: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """Return ``(lon, lat)`` of a Leaflet click (``{"lat": ..., "lng": ...}``), if usable.

    st_folium reports ``last_clicked`` and ``last_object_clicked`` in Leaflet's order.
    """
    if not click:
        return None
    try:
        # Leaflet's {"lat", "lng"}: (lat, lon) -> (lon, lat)
        lon, lat = float(click["lng"]), float(click["lat"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    return lon, lat


def nearest_request(
    frame: pd.DataFrame, lon: float, lat: float, radius_m: float = PICK_RADIUS_M
) -> int | None:
    """Return the ``id`` of the located row of ``frame`` nearest to a click.

    Parameters
    ----------
    frame
        Requests with columns ``id``, ``lon``, ``lat`` (rows without a position are
        skipped).
    lon, lat
        The clicked point.
    radius_m
        Farther rows are not picked.

    Returns
    -------
    int or None
        The request's store id, or ``None`` when nothing lies within ``radius_m``.
    """
    if frame.empty:
        return None
    lons = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(dtype=float)
    lats = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(lons) & np.isfinite(lats)
    if not ok.any():
        return None
    dist = np.full(len(frame), np.inf)
    dist[ok] = distance_m(lon, lat, lons[ok], lats[ok])
    best = int(np.argmin(dist))
    if dist[best] > radius_m:
        return None
    return int(frame["id"].iloc[best])


# --------------------------------------------------------------------------- uploads


@dataclass
class UploadPreview:
    """What importing an uploaded file would do, before anything is written.

    ``parse_rejects`` are the rows the readers refuse (and ids repeated within the
    file), ``location_rejects`` those outside the city limit; rows without coordinates
    are geocoded only during the real import. ``new``, ``changed`` and ``unchanged``
    count the kept rows against what is stored, as the import decides (a stored row
    whose source said the same is unchanged); without a store they are all new.
    """

    name: str
    format: str
    rows_read: int
    to_import: int
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    parse_rejects: list[Reject] = field(default_factory=list)
    location_rejects: list[Reject] = field(default_factory=list)
    without_position: int = 0
    first_rows: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def rejects(self) -> list[Reject]:
        """Return every rejected row, by line."""
        return sorted([*self.parse_rejects, *self.location_rejects], key=lambda r: r.line)

    @property
    def rejected(self) -> int:
        """Return the number of rejected rows."""
        return len(self.parse_rejects) + len(self.location_rejects)

    def rejects_frame(self) -> pd.DataFrame:
        """Return the rejects as a table: line, field, reason, external id, stage."""
        parse = {id(r) for r in self.parse_rejects}
        return pd.DataFrame(
            [(r.line, r.field, r.reason, r.external_id,
              "parse" if id(r) in parse else "location") for r in self.rejects],
            columns=["line", "field", "reason", "external_id", "stage"],
        )


def check_upload_size(size_bytes: int, name: str, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
    """Refuse an upload larger than ``max_bytes`` before reading it.

    Raises
    ------
    ImportFormatError
        When the file is too large.
    """
    if size_bytes > max_bytes:
        raise ImportFormatError(
            f"{name} is {size_bytes / 2**20:.1f} MB; the dashboard accepts files up to "
            f"{max_bytes / 2**20:g} MB (import larger files with `dispatch import`)"
        )


def upload_format(data: bytes, name: str) -> tuple[str, list[str]]:
    """Return the detected format of an upload and, for a CSV, its header.

    Raises
    ------
    ImportFormatError
        For binaries, non-UTF-8 text, or text that is neither CSV nor Open311 JSON.
    """
    check_upload_size(len(data), name)
    text = decode_text(data, name)
    fmt = detect_format(text, name)
    header: list[str] = []
    if fmt != "open311":
        header = [h.strip() for h in next(csv.reader(io.StringIO(text.lstrip())), [])]
    return fmt, header


#: Column names that suggest a field of a generic CSV (lower case).
_FIELD_HINTS: Mapping[str, tuple[str, ...]] = {
    "external_id": ("external_id", "id", "ticket", "request_id", "service_request_id",
                    "srnumber", "number", "case"),
    "service_code": ("service_code", "type", "requesttype", "request_type", "category",
                     "service"),
    "requested_at": ("requested_at", "created", "createddate", "created_at", "date",
                     "opened", "reported"),
    "status": ("status", "state"),
    "description": ("description", "notes", "details", "comment", "comments"),
    "address": ("address", "where", "location", "street"),
    "zipcode": ("zipcode", "zip", "postal_code", "postcode"),
    "lat": ("lat", "latitude", "y"),
    "lon": ("lon", "lng", "long", "longitude", "x"),
    "channel": ("channel", "source", "requestsource"),
    "closed_at": ("closed_at", "closed", "closeddate"),
    "service_date": ("service_date", "servicedate"),
    "assigned_org": ("assigned_org", "owner", "assignto", "department"),
}


def guess_mapping(header: Sequence[str]) -> dict[str, str]:
    """Suggest a column for each mapping field from the CSV header (may be incomplete)."""
    by_lower = {h.strip().lower(): h for h in header}
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in (*REQUIRED, *OPTIONAL):
        for hint in _FIELD_HINTS.get(name, (name,)):
            column = by_lower.get(hint)
            if column is not None and column not in taken:
                out[name] = column
                taken.add(column)
                break
    return out


def preview_upload(
    data: bytes,
    name: str,
    pack: CityPack,
    *,
    fmt: str = "auto",
    mapping: ColumnMapping | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
    rows: int = PREVIEW_ROWS,
    uow: UnitOfWork | None = None,
) -> UploadPreview:
    """Parse an upload as the import would, without geocoding or writing anything.

    Parameters
    ----------
    data, name
        The uploaded bytes and the file name (for messages).
    pack
        The city pack (time zone, categories, city limit, districts).
    fmt, mapping
        As for :func:`dispatch.services.imports.import_requests`.
    max_bytes
        Larger uploads are refused before decoding.
    rows
        How many of the rows to import are returned in ``first_rows``.
    uow
        The store to compare with
        (:func:`dispatch.services.imports.compare_with_store`: the caller's role is
        checked); ``None`` counts every kept row as new.

    Raises
    ------
    ImportFormatError
        When the file is too large or cannot be read at all.
    """
    check_upload_size(len(data), name, max_bytes)
    ctx = import_context(pack, source=mapping.source if mapping else "csv")
    parsed = parse_text(decode_text(data, name), name, ctx, fmt, mapping)
    records, repeats = unique_records(parsed.records)
    kept, outside, _ = locate_records(records, pack, geocoder=None)
    if uow is None:
        new, changed, unchanged = len(kept), 0, 0
    else:
        states = compare_with_store(uow, kept)
        new, changed, unchanged = states.new, states.changed, states.unchanged
    first = pd.DataFrame(
        [
            {
                "line": r.line,
                "request id": r.request.external_id,
                "category": pack.categories[r.request.category].label
                if r.request.category in pack.categories else r.request.category,
                "status": r.request.status.value,
                "requested at": r.request.requested_at.astimezone(pack.timezone)
                .strftime("%Y-%m-%d %H:%M"),
                "address": r.request.address,
                "lon": r.request.lon,
                "lat": r.request.lat,
                "district": r.request.district,
            }
            for r in kept[:rows]
        ]
    )
    return UploadPreview(
        name=name,
        format=parsed.format,
        rows_read=parsed.rows_read,
        to_import=len(kept),
        new=new,
        changed=changed,
        unchanged=unchanged,
        parse_rejects=sorted([*parsed.rejects, *repeats], key=lambda r: r.line),
        location_rejects=sorted(outside, key=lambda r: r.line),
        without_position=sum(1 for r in kept if r.request.lon is None),
        first_rows=first,
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_upload_name(name: str, now: datetime | None = None) -> str:
    """Return ``<UTC timestamp>-<name>`` with only letters, digits, ``.``, ``_`` and ``-``."""
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    base = _UNSAFE.sub("_", Path(name).name).strip("._") or "upload"
    return f"{stamp}-{base[:100]}"


def save_upload(
    data: bytes, name: str, directory: Path = Path("var/uploads"), now: datetime | None = None
) -> Path:
    """Write an upload to ``directory/<timestamp>-<safe name>``; return the path."""
    check_upload_size(len(data), name)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / safe_upload_name(name, now)
    path.write_bytes(data)
    return path
