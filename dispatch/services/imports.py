"""Import of request files into the store: parse, locate, assign districts, upsert.

Idempotent: re-importing a file creates nothing new and updates only rows whose
supplied fields changed. Bad rows are reported with line, field and reason and never
stop the good ones; a file that cannot be read at all changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.auth import SUPERVISING, require
from dispatch.citypack import CityPack
from dispatch.importers import ImportContext, ParsedRecord, ParseResult, Reject, read_file
from dispatch.importers.generic_csv import ColumnMapping
from dispatch.model import CLOSED_STATUSES, RequestStatus, ServiceRequest, is_routable
from dispatch.store import UnitOfWork
from geo.geocoding import Geocoder, Precision

#: How far outside the city limit a point may be before it is rejected (GPS noise,
#: addresses on the boundary street).
OUTSIDE_CITY_TOLERANCE_M = 1000.0

Progress = Callable[[int, int], None]


@dataclass
class ImportSummary:
    """What an import did."""

    path: str
    format: str
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[Reject] = field(default_factory=list)
    geocoded: int = 0
    unlocated: int = 0
    needs_location: int = 0

    @property
    def rejected(self) -> int:
        """Return the number of rejected rows."""
        return len(self.rejects)

    def line(self) -> str:
        """Return the one-line summary the CLI prints."""
        return (
            f"imported {self.imported}, updated {self.updated}, "
            f"unchanged {self.unchanged}, rejected {self.rejected}"
        )


def import_context(pack: CityPack, source: str = "csv") -> ImportContext:
    """Return the readers' view of a city pack."""

    def categorize(code: str) -> str | None:
        category = pack.category_for_service_code(code)
        return category.code if category is not None else None

    return ImportContext(tz=pack.timezone, categorize=categorize, source=source,
                         channels=pack.channels)


def locate_records(
    records: Sequence[ParsedRecord],
    pack: CityPack,
    geocoder: Geocoder | None,
) -> tuple[list[ParsedRecord], list[Reject], int]:
    """Geocode records without coordinates, reject points outside the city, set districts.

    Returns
    -------
    tuple
        The kept records, the new rejects and how many records were geocoded.
    """
    geocoded = 0
    for rec in records:
        req = rec.request
        if req.lon is not None and req.lat is not None:
            req.geocode_precision = Precision.SOURCE
            req.geocode_confidence = 1.0
            continue
        if geocoder is None or not req.address:
            req.geocode_precision = Precision.NONE
            req.geocode_confidence = 0.0
            continue
        answer = geocoder.lookup(req.address, req.zipcode or None)
        req.geocode_precision = answer.precision
        req.geocode_confidence = answer.confidence
        req.matched_address = answer.matched_address or None
        if answer.lon is None or answer.lat is None:
            continue
        req.lon, req.lat = answer.lon, answer.lat
        geocoded += 1
        rec.supplied = rec.supplied | {"lon", "lat"}

    located = [r for r in records if r.request.lon is not None]
    kept: list[ParsedRecord] = [r for r in records if r.request.lon is None]
    rejects: list[Reject] = []
    if located:
        lon = np.array([r.request.lon for r in located], dtype=float)
        lat = np.array([r.request.lat for r in located], dtype=float)
        inside = pack.within_city(lon, lat, tolerance_m=OUTSIDE_CITY_TOLERANCE_M)
        districts = pack.assign_districts(lon, lat)
        for rec, ok, district in zip(located, inside, districts, strict=True):
            if not ok:
                rejects.append(
                    Reject(
                        rec.line,
                        "latitude",
                        f"coordinates lon={rec.request.lon:.5f} lat={rec.request.lat:.5f} are "
                        f"outside {pack.display_name} (more than "
                        f"{OUTSIDE_CITY_TOLERANCE_M:.0f} m beyond the city limit)",
                        rec.request.external_id,
                    )
                )
                continue
            rec.request.district = None if district is None else str(district)
            kept.append(rec)
    kept.sort(key=lambda r: r.line)
    return kept, rejects, geocoded


#: Columns a record can supply, and the store column each one is.
_COLUMNS = (
    "service_code",
    "category",
    "description",
    "address",
    "zipcode",
    "lon",
    "lat",
    "channel",
    "status",
    "requested_at",
    "updated_at",
    "closed_at",
    "expected_at",
    "service_date",
    "assigned_org",
    "extra",
)
_LOCATION_COLUMNS = ("geocode_precision", "geocode_confidence", "matched_address", "district")


def row_values(req: ServiceRequest) -> dict[str, Any]:
    """Return the store columns of a new request."""
    values: dict[str, Any] = {
        "source": req.source,
        "external_id": req.external_id,
        "priority": req.priority,
        "size": req.size,
    }
    for name in _COLUMNS + _LOCATION_COLUMNS:
        values[name] = getattr(req, name)
    values["channel"] = req.channel.value
    values["status"] = req.status.value
    return values


def changed_values(existing: Any, rec: ParsedRecord) -> dict[str, Any]:
    """Return the columns whose supplied value differs from the stored one.

    A status that only says open or closed (Open311) counts as unchanged when the
    stored internal status is on the same side.
    """
    req = rec.request
    new = row_values(req)
    changes: dict[str, Any] = {}
    for name in rec.supplied:
        if name == "status":
            stored = RequestStatus(existing.status)
            if req.source == "open311":  # Open311 only says open or closed
                if (stored in CLOSED_STATUSES) == (req.status in CLOSED_STATUSES):
                    continue
            elif stored == req.status:
                continue
            changes["status"] = new["status"]
            continue
        if name in ("lon", "lat"):
            old = getattr(existing, name)
            if old is not None and new[name] is not None and abs(old - new[name]) < 1e-9:
                continue
        if _same(getattr(existing, name), new[name]):
            continue
        changes[name] = new[name]
    if "lon" in changes or "lat" in changes:
        for name in _LOCATION_COLUMNS:
            changes[name] = new[name]
    return changes


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, datetime) and isinstance(new, datetime):
        return old == new
    if old in (None, "") and new in (None, ""):
        return True
    return bool(old == new)


def store_records(
    uow: UnitOfWork,
    records: Sequence[ParsedRecord],
    summary: ImportSummary,
    progress: Progress | None = None,
) -> None:
    """Insert new requests and update changed ones; count the unchanged."""
    keys = uow.requests.key_index()
    by_external: dict[str, list[tuple[str, int]]] = {}
    for (source, external_id), rid in keys.items():
        by_external.setdefault(external_id, []).append((source, rid))

    def match(req: ServiceRequest) -> int | None:
        rid = keys.get((req.source, req.external_id))
        if rid is not None:
            return rid
        if req.source == "open311":  # our own export: service_request_id is the external id
            found = by_external.get(req.external_id, [])
            if len(found) == 1:
                return found[0][1]
        return None

    new_rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    matched: dict[int, ParsedRecord] = {}
    for rec in records:
        key = (rec.request.source, rec.request.external_id)
        if key in seen:
            summary.rejects.append(
                Reject(rec.line, "external_id",
                       f"id {rec.request.external_id!r} appears earlier in the same file",
                       rec.request.external_id)
            )
            continue
        seen.add(key)
        found = match(rec.request)
        if found is None:
            new_rows.append(row_values(rec.request))
        else:
            matched[found] = rec
    existing = {row.id: row for row in uow.requests.by_ids(list(matched))}
    updates: list[dict[str, Any]] = []
    events: list[tuple[str, str | int, str, dict[str, Any]]] = []
    done = 0
    total = len(new_rows) + len(matched)
    for rid, rec in matched.items():
        changes = changed_values(existing[rid], rec)
        if changes:
            updates.append({"id": rid, **changes})
            events.append(("request", rid, "updated_by_import",
                           {"fields": sorted(changes), "source": rec.request.source}))
        else:
            summary.unchanged += 1
        done += 1
        if progress and done % 500 == 0:
            progress(done, total)
    uow.requests.update_many(updates)
    summary.updated = len(updates)
    for chunk_start in range(0, len(new_rows), 2000):
        chunk = new_rows[chunk_start : chunk_start + 2000]
        uow.requests.insert_many(chunk)
        done += len(chunk)
        if progress:
            progress(done, total)
    summary.imported = len(new_rows)
    if new_rows:
        ids = uow.requests.key_index()
        events.extend(
            ("request", ids[(r["source"], r["external_id"])], "imported",
             {"source": r["source"], "external_id": r["external_id"]})
            for r in new_rows
        )
    uow.events.append_many(events)


def import_requests(
    uow: UnitOfWork,
    path: Path,
    pack: CityPack,
    *,
    fmt: str = "auto",
    mapping: ColumnMapping | None = None,
    geocoder: Geocoder | None = None,
    reject_file: Path | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import one file of requests in one transaction.

    Parameters
    ----------
    uow
        Unit of work; committed once at the end, rolled back on any error.
    path
        The file (MyLA311 CSV, Open311 JSON or mapped CSV).
    pack
        The city pack: time zone, categories, boundary and districts.
    fmt
        ``auto``, ``myla311``, ``open311`` or ``csv``.
    mapping
        Column mapping for ``csv``.
    geocoder
        Locates records without coordinates; ``None`` leaves them unlocated.
    reject_file
        Where to write the rejected rows (CSV: line, field, reason, external_id).
    progress
        Called with ``(done, total)`` while storing.

    Raises
    ------
    dispatch.errors.ImportFormatError
        When the file cannot be read at all; nothing is changed.
    """
    require(uow.principal, *SUPERVISING, action="import requests")
    parsed: ParseResult = read_file(path, import_context(pack, source=mapping.source if mapping
                                                          else "csv"), fmt, mapping)
    summary = ImportSummary(path=str(path), format=parsed.format, rejects=list(parsed.rejects))
    kept, rejects, summary.geocoded = locate_records(parsed.records, pack, geocoder)
    summary.rejects.extend(rejects)
    summary.unlocated = sum(1 for r in kept if r.request.lon is None)
    summary.needs_location = sum(
        1 for r in kept
        if not is_routable(r.request.geocode_precision, r.request.geocode_confidence)
    )
    store_records(uow, kept, summary, progress)
    uow.events.append(
        "import",
        path.name,
        "file_imported",
        {"format": parsed.format, "imported": summary.imported, "updated": summary.updated,
         "unchanged": summary.unchanged, "rejected": summary.rejected},
    )
    uow.commit()
    summary.rejects.sort(key=lambda r: r.line)
    if reject_file is not None:
        write_rejects(summary.rejects, reject_file)
    return summary


def write_rejects(rejects: Sequence[Reject], path: Path) -> None:
    """Write rejected rows as CSV (line, field, reason, external_id)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["line", "field", "reason", "external_id"])
        for r in rejects:
            writer.writerow([r.line, r.field, r.reason, r.external_id])
