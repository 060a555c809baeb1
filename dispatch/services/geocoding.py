"""Geocoding services: the city's geocoder, batch files, the reference build, "Needs location"."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dispatch.auth import SUPERVISING, service
from dispatch.citypack import CityPack
from dispatch.errors import ValidationError
from dispatch.store import RequestFilter, UnitOfWork
from dispatch.text import csv_bytes
from geo.errors import GeoError
from geo.geocoding import Geocoder

if TYPE_CHECKING:
    from geo.geocoding.geopy_adapter import GeopyAdapter

#: Open statuses whose requests still need a trustworthy location.
_OPEN = ("new", "triaged", "scheduled", "in_progress")


def city_geocoder(pack: CityPack) -> Geocoder | None:
    """Return the city's geocoder, or ``None`` when the pack ships no address reference.

    The reference is read and indexed once per process and file version (a few seconds
    for a big city); later calls return the same geocoder.

    Raises
    ------
    DispatchError
        When the reference file exists but cannot be used (not a reference, an older
        format); the message says how to rebuild it.
    """
    path = pack.address_reference
    if path is None or not path.is_file():
        return None
    stat = path.stat()
    try:
        return _load_geocoder(str(path), stat.st_mtime_ns, stat.st_size)
    except GeoError as err:
        raise ValidationError(
            f"{err}; rebuild it with 'dispatch --city {pack.name} geo build-reference'"
        ) from None


@functools.lru_cache(maxsize=4)
def _load_geocoder(path: str, mtime_ns: int, size: int) -> Geocoder:
    del mtime_ns, size  # part of the cache key: a rebuilt file is read again
    from geo.geocoding.offline import OfflineGeocoder  # scipy, rapidfuzz: only when used

    return OfflineGeocoder.from_path(path)


def geopy_geocoder(pack: CityPack, max_distance_m: float = 250.0) -> GeopyAdapter | None:
    """Return the city's geocoder with geopy's face, or ``None`` without a reference.

    Its ``reverse()`` answers ``None`` outside the city (200 m tolerance) and farther
    than ``max_distance_m`` from every known address; its errors are geopy's.
    """
    geocoder = city_geocoder(pack)
    if geocoder is None:
        return None
    from geo.geocoding.geopy_adapter import GeopyAdapter

    def within(lon: float, lat: float) -> bool:
        return bool(pack.within_city([lon], [lat], tolerance_m=200.0)[0])

    return GeopyAdapter(geocoder, max_distance_m=max_distance_m, within=within)


def _require_geocoder(pack: CityPack) -> Geocoder:
    geocoder = city_geocoder(pack)
    if geocoder is None:
        raise ValidationError(
            f"city pack {pack.name} has no address reference at {pack.address_reference}; "
            f"build it with 'dispatch --city {pack.name} geo build-reference'"
        )
    return geocoder


@dataclass(frozen=True)
class GeocodeFileSummary:
    """Counts by precision of a geocoded file."""

    rows: int
    by_precision: dict[str, int]
    out_path: Path

    def lines(self) -> list[str]:
        """Return the summary the CLI prints."""
        out = [f"geocoded {self.rows} rows -> {self.out_path}"]
        for precision, count in self.by_precision.items():
            share = count / self.rows if self.rows else 0.0
            out.append(f"  {precision:<13}{count:>8}  {share:6.1%}")
        return out


def geocode_csv(
    pack: CityPack,
    in_path: Path,
    address_column: str,
    out_path: Path,
    *,
    zip_column: str | None = None,
    progress: bool = False,
) -> GeocodeFileSummary:
    """Geocode a CSV file's address column offline and write it with the answers.

    Adds ``lon, lat, precision, confidence, matched_address, geocode_source``; text
    cells that a spreadsheet would run as formulas are neutralised.
    """
    from geo.geocoding.batch import geocode_frame, summarize_precision

    try:
        frame = pd.read_csv(in_path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ValidationError(f"{in_path} cannot be read as a UTF-8 CSV: {err}") from None
    try:
        out = geocode_frame(frame, address_column, _require_geocoder(pack), zip_column,
                            progress=progress)
    except GeoError as err:
        raise ValidationError(str(err)) from None
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(csv_bytes(out))
    counts = summarize_precision(out)["count"]
    return GeocodeFileSummary(len(out), {str(k): int(v) for k, v in counts.items()}, out_path)


def build_reference(
    pack: CityPack, out_path: Path | None = None, *, conflicts_path: Path | None = None
) -> list[str]:
    """Rebuild the pack's address reference from its ``[reference]`` sources.

    Parameters
    ----------
    pack
        The city pack (its sources, in order of authority).
    out_path
        Where to write the reference (default: the pack's ``paths.address_reference``).
    conflicts_path
        Also write every conflict (same address more than ``conflict_m`` apart between
        sources, points far from their street) to this CSV.

    Returns
    -------
    list of str
        The report to print: points per source, conflicts.

    Raises
    ------
    DispatchError
        When the pack names no sources or no output file, or a source cannot be read.
    """
    from geo.reference_sources import build_from_sources

    plan = pack.reference
    if plan is None:
        raise ValidationError(
            f"city pack {pack.name} has no [reference] table naming its address sources"
        )
    out = out_path or pack.address_reference
    if out is None:
        raise ValidationError(
            f"city pack {pack.name} names no paths.address_reference; pass --out"
        )
    try:
        ref, report = build_from_sources(
            plan.sources, city=pack.name, extent=plan.extent, holdout=plan.holdout,
            conflict_m=plan.conflict_m, coverage_m=plan.coverage_m,
            place_names=plan.place_names,
        )  # fmt: skip
        ref.save(out)
    except GeoError as err:
        raise ValidationError(str(err)) from None
    lines = replace(report, out_path=out).lines()
    if conflicts_path is not None:
        conflicts_path.parent.mkdir(parents=True, exist_ok=True)
        conflicts_path.write_bytes(csv_bytes(report.conflicts_frame()))
        lines.append(f"conflicts written to {conflicts_path}")
    return lines


@service(*SUPERVISING, action="see the location queue")
def needs_location(uow: UnitOfWork, limit: int = 500) -> list[Any]:
    """Return open requests without a trustworthy location, oldest first (at most ``limit``).

    One filtered SQL read: open statuses, and the position rule of
    :func:`dispatch.model.is_routable` evaluated by the database.
    """
    return uow.requests.query_columns(RequestFilter(statuses=_OPEN, trusted_position=False),
                                      limit=limit)


@service(*SUPERVISING, action="see the location queue")
def needs_location_count(uow: UnitOfWork) -> int:
    """Return how many open requests wait for a trustworthy location (SQL ``COUNT``)."""
    counts = uow.stats.count_by(RequestFilter(statuses=_OPEN, trusted_position=False), ())
    return int(counts["n"].sum())
