"""Import of request files into the store: parse, locate, assign districts, reconcile.

Idempotent and safe to repeat: a re-import of an unchanged row is recognised by its
content digest and changes nothing; a changed row changes only the fields its source
owns (:mod:`dispatch.ownership`): never a crew's outcome, a supervisor's manual fix or
a schedule, and never erases a position. Where the source now disagrees with a status
the workflow owns, both values are kept for a supervisor (the Triage conflict queue).

Bad rows are reported with line, field and reason and never stop the good ones; a file
that cannot be read at all changes nothing. Two imports of the same file at once both
succeed: the second waits for the first (an advisory lock on PostgreSQL, the write
lock on SQLite) and then finds every row unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from dispatch.auth import SUPERVISING, service
from dispatch.citypack import CityPack
from dispatch.derived import derived_values
from dispatch.importers import (
    CHUNK_ROWS,
    ImportContext,
    ParsedRecord,
    Reject,
    stream_file,
)
from dispatch.importers.generic_csv import ColumnMapping
from dispatch.model import ServiceRequest, is_routable
from dispatch.ownership import (
    OWNER_SOURCE,
    SOURCE_PRECISION,
    Position,
    reconcile,
)
from dispatch.services._spatial import assign_districts, prepare_shapes
from dispatch.store import UnitOfWork
from geo.geocoding import Geocoder, Precision

if TYPE_CHECKING:
    from dispatch.api.client import Fetch

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
    conflicts: int = 0

    rejected_count: int = 0

    @property
    def rejected(self) -> int:
        """Return the number of rejected rows."""
        return max(self.rejected_count, len(self.rejects))

    def add(self, part: ImportSummary) -> None:
        """Add a chunk's counts (and up to :data:`MAX_REJECTS_KEPT` rejects)."""
        self.imported += part.imported
        self.updated += part.updated
        self.unchanged += part.unchanged
        self.geocoded += part.geocoded
        self.unlocated += part.unlocated
        self.needs_location += part.needs_location
        self.conflicts += part.conflicts
        self.rejected_count = self.rejected + part.rejected
        room = max(0, MAX_REJECTS_KEPT - len(self.rejects))
        self.rejects.extend(part.rejects[:room])

    def line(self) -> str:
        """Return the one-line summary the CLI prints."""
        line = (f"imported {self.imported}, updated {self.updated}, "
                f"unchanged {self.unchanged}, rejected {self.rejected}")
        if self.conflicts:
            line += (f"; {self.conflicts} source status{'es' if self.conflicts != 1 else ''} "
                     "disagree with local work (see Triage)")
        return line


def _assigner(uow: UnitOfWork, pack: CityPack) -> Callable[
        [npt.NDArray[np.float64], npt.NDArray[np.float64]], npt.NDArray[np.object_]]:
    """Return district assignment on this store (PostGIS when it has it)."""
    return lambda lon, lat: assign_districts(uow, pack, lon, lat)


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
    *,
    geocode: Callable[[ParsedRecord], bool] | None = None,
    assign: Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]],
                     npt.NDArray[np.object_]] | None = None,
) -> tuple[list[ParsedRecord], list[Reject], int]:
    """Geocode records without coordinates, reject points outside the city, set districts.

    Parameters
    ----------
    records
        Parsed records.
    pack
        City limit and districts.
    geocoder
        Locates addresses; ``None`` leaves records without coordinates unlocated.
    geocode
        Which records without coordinates to geocode (default all); a re-import asks
        only for new rows and rows whose address changed.
    assign
        ``(lon, lat) -> district ids`` (default: the pack's own index; an import on a
        PostGIS store passes :func:`dispatch.services._spatial.assign_districts`).

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
        if geocoder is None or not req.address or (geocode is not None and not geocode(rec)):
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
        rec.supplied = rec.supplied | {"geocoded"}

    located = [r for r in records if r.request.lon is not None]
    kept: list[ParsedRecord] = [r for r in records if r.request.lon is None]
    rejects: list[Reject] = []
    if located:
        lon = np.array([r.request.lon for r in located], dtype=float)
        lat = np.array([r.request.lat for r in located], dtype=float)
        inside = pack.within_city(lon, lat, tolerance_m=OUTSIDE_CITY_TOLERANCE_M)
        districts = (assign or pack.assign_districts)(lon, lat)
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
#: Stored columns :func:`_store_records` needs to reconcile a changed row.
_RECONCILE_COLUMNS = (
    "id", *_COLUMNS, *_LOCATION_COLUMNS, "source_status", "source_closed_at", "source_lon",
    "source_lat", "status_owner", "overrides", "content_hash",
)


#: The columns a digest may hold, for a quick membership test.
_DIGESTED = frozenset(_COLUMNS)


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is float or kind is int or value is None:
        return value  # most values: nothing to turn into text
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return value


def record_digest(rec: ParsedRecord) -> str:
    """Return a digest of what the source said in this record (its supplied fields).

    Two imports of an unchanged row give the same digest, whatever happened locally
    since; the digest ignores geocoding, which is Curbside's own work.
    """
    req = rec.request
    geocoded = "geocoded" in rec.supplied
    doc = {name: _plain(getattr(req, name)) for name in sorted(rec.supplied)
           if name in _DIGESTED and not (geocoded and name in ("lon", "lat"))}
    doc["_key"] = [req.source, req.external_id]
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_values(req: ServiceRequest, digest: str = "") -> dict[str, Any]:
    """Return the store columns of a new request (its source values recorded as such)."""
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
    values["source_status"] = req.status.value
    values["source_closed_at"] = req.closed_at
    located_by_source = req.geocode_precision == SOURCE_PRECISION
    values["source_lon"] = req.lon if located_by_source else None
    values["source_lat"] = req.lat if located_by_source else None
    values["status_owner"] = OWNER_SOURCE
    values["overrides"] = []
    values["content_hash"] = digest
    return values


def _incoming(rec: ParsedRecord) -> tuple[dict[str, Any], Position | None]:
    req = rec.request
    values = {name: getattr(req, name) for name in _COLUMNS}
    values["channel"] = req.channel.value
    values["status"] = req.status.value
    geocoded = None
    if "geocoded" in rec.supplied and req.lon is not None and req.lat is not None:
        geocoded = Position(req.lon, req.lat, req.geocode_precision or "none",
                            req.geocode_confidence or 0.0, req.matched_address)
        values["lon"] = values["lat"] = None  # not the source's coordinates
    return values, geocoded


def _match_keys(uow: UnitOfWork, records: Sequence[ParsedRecord],
                ) -> dict[tuple[str, str], tuple[int, str]]:
    keys = [(r.request.source, r.request.external_id) for r in records]
    found = uow.requests.match(keys)
    # Curbside's own Open311 export: service_request_id is the external id of any source
    loose = [(r.request.source, r.request.external_id) for r in records
             if r.request.source == "open311" and (r.request.source, r.request.external_id)
             not in found]
    if loose:
        by_ext: dict[str, list[tuple[int, str]]] = {}
        for row in uow.requests.match_external_ids(e for _, e in loose):
            by_ext.setdefault(row[1], []).append((row[2], row[3]))
        for key in loose:
            hits = by_ext.get(key[1], [])
            if len(hits) == 1:
                found[key] = hits[0]
    return found


@dataclass
class _Compared:
    """Records sorted against the store: new, changed (by stored id), unchanged (a count)."""

    new: list[ParsedRecord] = field(default_factory=list)
    changed: dict[int, ParsedRecord] = field(default_factory=dict)
    unchanged: int = 0


def _compare(uow: UnitOfWork, records: Sequence[ParsedRecord],
             digests: Mapping[int, str]) -> _Compared:
    """Sort records as the import does: no stored row is new, the same digest unchanged."""
    found = _match_keys(uow, records)
    out = _Compared()
    for rec in records:
        hit = found.get((rec.request.source, rec.request.external_id))
        if hit is None:
            out.new.append(rec)
        elif hit[1] == digests[rec.line]:
            out.unchanged += 1
        else:
            out.changed[hit[0]] = rec
    return out


@dataclass(frozen=True)
class StoredStates:
    """How many records an import would add, update from the source, and leave alone."""

    new: int
    changed: int
    unchanged: int


@service(*SUPERVISING, action="preview imports")
def compare_with_store(uow: UnitOfWork, records: Sequence[ParsedRecord]) -> StoredStates:
    """Count records new, changed and unchanged against what is stored, as the import would.

    A record whose ``(source, id)`` is not stored is new; one stored with the same
    :func:`record_digest` (what the source said in it) is unchanged; the rest changed.
    Nothing is written.
    """
    states = _compare(uow, records, {rec.line: record_digest(rec) for rec in records})
    uow.rollback()
    return StoredStates(len(states.new), len(states.changed), states.unchanged)


def unique_records(records: Sequence[ParsedRecord]) -> tuple[list[ParsedRecord], list[Reject]]:
    """Keep the first record of each ``(source, id)`` of a file, as the import does.

    Returns the kept records and the rejects of the repeats.
    """
    part = ImportSummary(path="", format="")
    return _unique(records, part, set()), part.rejects


def _same_category(pack: CityPack, a: str | None, b: str | None) -> bool:
    """Return whether two service codes name the same category of the pack."""
    cat_a, cat_b = pack.category_for_service_code(a), pack.category_for_service_code(b)
    return cat_a is not None and cat_a is cat_b


def _store_records(
    uow: UnitOfWork,
    records: Sequence[ParsedRecord],
    summary: ImportSummary,
    pack: CityPack,
    digests: Mapping[int, str],
    progress: Progress | None = None,
) -> None:
    """Insert new requests and reconcile changed ones; count the unchanged.

    Call inside the write transaction: the matched rows are read (and, on PostgreSQL,
    locked) here, so what is written is decided on what is stored now. ``digests``
    holds each record's :func:`record_digest` (by line), taken before geocoding.
    """
    states = _compare(uow, records, digests)
    new_rows: list[dict[str, Any]] = []
    for rec in states.new:
        fresh = row_values(rec.request, digests[rec.line])
        new_rows.append(fresh | derived_values(fresh, pack.timezone))
    summary.unchanged += states.unchanged
    changed = {pk: (rec, digests[rec.line]) for pk, rec in states.changed.items()}
    stored = {row.id: row for row in uow.requests.by_ids(changed, for_update=True)}
    updates: list[dict[str, Any]] = []
    events: list[tuple[str, str | int, str, dict[str, Any]]] = []
    now = uow.now()
    moved: list[tuple[int, float, float]] = []
    total = len(new_rows) + len(changed) + summary.unchanged
    done = summary.unchanged
    for pk, (rec, digest) in changed.items():
        row = stored[pk]
        current = {c: getattr(row, c) for c in _RECONCILE_COLUMNS}
        incoming, geocoded = _incoming(rec)
        supplied = rec.supplied
        if row.source != rec.request.source:
            # Curbside's own Open311 export of a request from another source: its extra
            # fields are Curbside's words, not the source's
            supplied = supplied - {"extra"}
        if (incoming.get("service_code") != current.get("service_code")
                and _same_category(pack, incoming.get("service_code"),
                                   current.get("service_code"))):
            incoming["service_code"] = current["service_code"]  # another code, same type
        result = reconcile(current, incoming, supplied,
                           sides_only=rec.request.source == "open311", geocoded=geocoded,
                           now=now)
        values: dict[str, Any] = dict(result.changes)
        values["content_hash"] = digest
        if result.position_changed:
            moved.append((pk, float(values["lon"]), float(values["lat"])))
        values |= derived_values(values, pack.timezone)
        if result.conflict is not None and row.source_conflict != result.conflict:
            values["source_conflict"] = result.conflict
            values["conflict_at"] = now
            summary.conflicts += 1
            events.append(("request", pk, "source_conflict", {
                **result.conflict, "source": rec.request.source}))
        if result.changed or "source_conflict" in values:
            summary.updated += 1
            events.append(("request", pk, "updated_by_import", {
                "fields": sorted(result.changes), "source": rec.request.source,
                **({"kept_local": sorted(result.ignored)} if result.ignored else {})}))
        else:
            summary.unchanged += 1
        updates.append({"id": pk, **values})
        done += 1
        if progress and done % 500 == 0:
            progress(done, total)
    if moved:
        districts = assign_districts(uow, pack, np.array([m[1] for m in moved]),
                                     np.array([m[2] for m in moved]))
        district_of = {m[0]: None if d is None else str(d)
                       for m, d in zip(moved, districts, strict=True)}
        for u in updates:
            if u["id"] in district_of:
                u["district"] = district_of[u["id"]]
    uow.requests.update_many(updates)
    for chunk_start in range(0, len(new_rows), 2000):
        chunk = new_rows[chunk_start : chunk_start + 2000]
        uow.requests.insert_many(chunk)
        done += len(chunk)
        if progress:
            progress(done, total)
    summary.imported = len(new_rows)
    if new_rows:
        ids = uow.requests.pks_by_key((r["source"], r["external_id"]) for r in new_rows)
        events.extend(
            ("request", ids[(r["source"], r["external_id"])], "imported",
             {"source": r["source"], "external_id": r["external_id"]})
            for r in new_rows
        )
    uow.events.append_many(events)


def _needs_geocoding(uow: UnitOfWork, records: Sequence[ParsedRecord],
                     digests: Mapping[int, str]) -> set[int]:
    """Return the lines of records to geocode: new ones, and those whose address changed.

    A stored row whose address and ZIP are unchanged keeps the position found before
    (the geocoder is deterministic, and a supervisor may have fixed it since).
    """
    states = _compare(uow, records, digests)
    lines = {rec.line for rec in states.new}
    changed = states.changed
    for row in uow.requests.by_ids(changed):
        rec = changed[row.id]
        if (row.lon is None or (row.address or "") != rec.request.address
                or (row.zipcode or "") != (rec.request.zipcode or "")):
            lines.add(rec.line)
    return lines


@service(*SUPERVISING, action="import requests")
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
    chunk_rows: int = CHUNK_ROWS,
) -> ImportSummary:
    """Import one file of requests, chunk by chunk, in bounded memory.

    The whole file is checked first (size, encoding, format, header), so a file that
    cannot be read changes nothing. Then each chunk of ``chunk_rows`` rows is parsed,
    located and stored in one transaction of its own: a file of one chunk (the daily
    import) is one transaction; a larger one, if the process dies, leaves whole chunks
    only, and running the same import again finishes it (stored rows count as
    unchanged). Crews and intake keep working between chunks.

    Parameters
    ----------
    uow
        Unit of work; committed once per chunk, rolled back on any error.
    path
        The file (MyLA311 CSV, Open311 JSON or mapped CSV).
    pack
        The city pack: time zone, categories, boundary and districts.
    fmt
        ``auto``, ``myla311``, ``open311`` or ``csv``.
    mapping
        Column mapping for ``csv``.
    geocoder
        Locates records without coordinates; ``None`` leaves them unlocated (a stored
        position is kept).
    reject_file
        Where to write the rejected rows (CSV: line, field, reason, external_id).
    progress
        Called with ``(rows done, rows in the file)`` after each chunk.
    chunk_rows
        Rows per chunk (and per transaction).

    Raises
    ------
    dispatch.errors.ImportFormatError
        When the file cannot be read at all; nothing is changed.
    """
    streamed = stream_file(path, import_context(pack, source=mapping.source if mapping
                                                else "csv"), fmt, mapping,
                           chunk_rows=chunk_rows)
    summary = ImportSummary(path=str(path), format=streamed.format)
    seen: set[int] = set()
    done = 0
    writer = _RejectWriter(reject_file)
    prepare_shapes(uow, pack)  # PostGIS stores: the districts in place before the chunks
    for parsed in streamed.chunks:
        part = ImportSummary(path=str(path), format=parsed.format,
                             rejects=list(parsed.rejects))
        records = _unique(parsed.records, part, seen)
        digests = {rec.line: record_digest(rec) for rec in records}
        # read phase: geocode only what is new or moved, without holding the write lock
        wanted = _needs_geocoding(uow, records, digests) if geocoder is not None else set()
        kept, rejects, part.geocoded = locate_records(
            records, pack, geocoder, geocode=_in_lines(wanted), assign=_assigner(uow, pack))
        part.rejects.extend(rejects)
        part.unlocated = sum(1 for r in kept if r.request.lon is None and r.line in wanted)
        part.needs_location = sum(
            1 for r in kept if r.line in wanted
            and not is_routable(r.request.geocode_precision, r.request.geocode_confidence)
            and r.request.geocode_precision != SOURCE_PRECISION
        )
        uow.rollback()
        # write phase: one import at a time; decide on what is stored now
        uow.lock("import")
        _store_records(uow, kept, part, pack, digests)
        uow.commit()
        summary.add(part)
        writer.write(part.rejects)
        done += parsed.rows_read or len(parsed.records) + len(parsed.rejects)
        if progress is not None:
            progress(min(done, streamed.rows), streamed.rows)
    uow.begin_write()
    uow.events.append(
        "import",
        path.name,
        "file_imported",
        {"format": streamed.format, "imported": summary.imported, "updated": summary.updated,
         "unchanged": summary.unchanged, "rejected": summary.rejected,
         "conflicts": summary.conflicts},
    )
    uow.commit()
    writer.close()
    summary.rejects.sort(key=lambda r: r.line)
    return summary


#: Settings key prefix of the last pull of each Open311 endpoint.
PULL_SETTING = "open311_pull:"
#: How far back a first pull of an endpoint goes (the specification's default window).
FIRST_PULL = timedelta(days=90)


def pull_setting_key(url: str) -> str:
    """Return the settings key remembering the last pull of an endpoint."""
    return PULL_SETTING + hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


@dataclass
class PullSummary(ImportSummary):
    """What a pull from an Open311 endpoint did (an :class:`ImportSummary`, and its span)."""

    since: datetime | None = None
    until: datetime | None = None
    windows: int = 0

    def line(self) -> str:
        """Return the one-line summary the CLI prints."""
        span = ""
        if self.since is not None and self.until is not None:
            since, until = self.since.astimezone(UTC), self.until.astimezone(UTC)
            span = f" {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC"
        return (f"pulled{span} in {self.windows} window{'s' if self.windows != 1 else ''}: "
                + super().line())


@service(*SUPERVISING, action="import requests")
def import_open311(
    uow: UnitOfWork,
    pack: CityPack,
    endpoint: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    service_code: str | None = None,
    geocoder: Geocoder | None = None,
    window: timedelta = timedelta(days=1),
    fetch: Fetch | None = None,
    reject_file: Path | None = None,
) -> PullSummary:
    """Pull an Open311 endpoint's requests in date windows into the store.

    Each window is read from the server first (no lock held), then stored through the
    same reconcile path as a file import, under the import lock, and committed on its
    own: re-running a pull (or stopping one half way) is safe, unchanged requests stay
    unchanged and local work is kept (:mod:`dispatch.ownership`).

    Parameters
    ----------
    uow
        Unit of work; committed once per window.
    pack
        The city pack (categories and their aliases, time zone, city limit, districts).
    endpoint
        The endpoint's root (``https://city.example/open311/v2``) or its requests URL.
    since, until
        The span of ``requested_datetime`` to pull; ``since`` defaults to where the
        last pull of this endpoint ended (else 90 days back), ``until`` to now
        (business time).
    service_code
        Only this service (the server's code).
    geocoder
        Locates requests without coordinates.
    window
        Length of the windows asked (a full window is split, see
        :func:`dispatch.api.client.pull_windows`).
    fetch
        How to ask the server (tests; default HTTP).
    reject_file
        Where to write the rejected requests (CSV).

    Raises
    ------
    dispatch.errors.DispatchError
        When the server cannot be reached or answers an error; windows stored before
        stay stored.
    """
    from dispatch.api.client import pull_windows, requests_url
    from dispatch.importers.open311 import parse_items

    url = requests_url(endpoint)
    key = pull_setting_key(url)
    until = until or uow.now()
    if since is None:
        last = uow.settings.get(key)
        since = (datetime.fromisoformat(last["until"]) if last and last.get("until")
                 else until - FIRST_PULL)
    uow.rollback()
    prepare_shapes(uow, pack)
    summary = PullSummary(path=url, format="open311", since=since, until=until)
    ctx = import_context(pack, source="open311")
    seen: set[str] = set()  # ids stored by an earlier window (windows meet at their ends)
    offset = 0
    writer = _RejectWriter(reject_file)
    try:
        for found in pull_windows(url, since, until, tz=pack.timezone,
                                  service_code=service_code, window=window, fetch=fetch):
            summary.windows += 1
            fresh = [item for item in found.items
                     if not (isinstance(item, dict)
                             and str(item.get("service_request_id")) in seen)]
            parsed = parse_items(fresh, ctx)
            part = ImportSummary(path=url, format="open311", rejects=[
                Reject(r.line + offset, r.field, r.reason, r.external_id)
                for r in parsed.rejects])
            for rec in parsed.records:
                rec.line += offset  # position in the whole pull, for the reject file
            offset += len(fresh)
            records = _unique(parsed.records, part, set())
            seen.update(r.request.external_id for r in records)
            digests = {rec.line: record_digest(rec) for rec in records}
            wanted = (_needs_geocoding(uow, records, digests) if geocoder is not None
                      else set())
            kept, rejects, part.geocoded = locate_records(records, pack, geocoder,
                                                          geocode=_in_lines(wanted),
                                                          assign=_assigner(uow, pack))
            part.rejects.extend(rejects)
            uow.rollback()
            uow.lock("import")  # one import at a time; decide on what is stored now
            _store_records(uow, kept, part, pack, digests)
            uow.commit()
            summary.add(part)
            writer.write(part.rejects)
    finally:
        writer.close()
    uow.begin_write()
    uow.settings.set(key, {"url": url[:500], "until": until.isoformat()})
    uow.events.append("import", urlsplit(url).netloc[:64], "open311_pulled", {
        "url": url[:500], "since": since.isoformat(), "until": until.isoformat(),
        "windows": summary.windows, "imported": summary.imported, "updated": summary.updated,
        "unchanged": summary.unchanged, "rejected": summary.rejected,
        "conflicts": summary.conflicts})
    uow.commit()
    summary.rejects.sort(key=lambda r: r.line)
    return summary


def _in_lines(lines: set[int]) -> Callable[[ParsedRecord], bool]:
    def wanted(rec: ParsedRecord) -> bool:
        return rec.line in lines

    return wanted


#: Rejected rows an import keeps in its summary (all of them go to the reject file).
MAX_REJECTS_KEPT = 10_000


class _RejectWriter:
    """Write rejected rows to a CSV as they come (line, field, reason, external_id)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh: Any = None
        self._writer: Any = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._fh)
            self._writer.writerow(["line", "field", "reason", "external_id"])

    def write(self, rejects: Sequence[Reject]) -> None:
        if self._writer is None:
            return
        from dispatch.text import neutralise_formula

        for r in sorted(rejects, key=lambda r: r.line):
            self._writer.writerow([neutralise_formula(v) for v in
                                   (r.line, r.field, r.reason, r.external_id)])

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def _unique(records: Sequence[ParsedRecord], summary: ImportSummary,
            seen: set[int]) -> list[ParsedRecord]:
    """Keep the first record of each (source, id) in the file; reject the repeats.

    ``seen`` holds a hash of every key met so far in the file (across chunks).
    """
    out = []
    for rec in records:
        key = hash((rec.request.source, rec.request.external_id))
        if key in seen:
            summary.rejects.append(
                Reject(rec.line, "external_id",
                       f"id {rec.request.external_id!r} appears earlier in the same file",
                       rec.request.external_id))
            continue
        seen.add(key)
        out.append(rec)
    return out
