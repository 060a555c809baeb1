"""Reader of MyLA311 CSV exports, in both column layouts the city has published.

The 2020 layout has lower-case columns (``srnumber, requesttype, createddate, ...,
latitude, longitude, address, zipcode``); the 2017 layout has CamelCase columns
(``SRNumber, RequestType, CreatedDate, ..., HouseNumber, Direction, StreetName,
Suffix, ZipCode, Latitude, Longitude``). Timestamps are local time in the city pack's
time zone; ``requestsource`` is read through the pack's ``[channels]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dispatch.importers.common import (
    MAX_ADDRESS_CHARS,
    FieldError,
    ImportContext,
    ParsedRecord,
    ParseResult,
    Reject,
    check_id,
    check_text,
    parse_lonlat,
    parse_optional_date,
    parse_optional_timestamp,
    parse_timestamp,
)
from dispatch.model import RequestStatus, ServiceRequest, channel_from_text

SOURCE = "myla311"

#: MyLA311 ``status`` values and the internal status each one is.
STATUS_MAP: dict[str, RequestStatus] = {
    "open": RequestStatus.NEW,
    "pending": RequestStatus.SCHEDULED,
    "in progress": RequestStatus.IN_PROGRESS,
    "closed": RequestStatus.COMPLETED,
    "cancelled": RequestStatus.CANCELLED,
    "referred out": RequestStatus.CANCELLED,
    "forward": RequestStatus.CANCELLED,
}

#: Columns kept in ``extra`` for reference (the city's own district, council etc.).
EXTRA_COLUMNS = ("cd", "nc", "ncname", "policeprecinct", "actiontaken", "owner", "apc")


def is_myla311_header(columns: Iterable[str]) -> bool:
    """Return whether a CSV header is one of the MyLA311 layouts."""
    lowered = {c.strip().lower() for c in columns}
    return {"srnumber", "requesttype", "createddate"} <= lowered


#: Header cells as :func:`_lower_keys` reads them (a file has a few dozen distinct ones).
_LOWERED: dict[str | None, str] = {}


def _lower_keys(row: Mapping[str, str | None]) -> dict[str, str]:
    lowered = _LOWERED
    out: dict[str, str] = {}
    for k, v in row.items():
        key = lowered.get(k)
        if key is None:
            if len(lowered) > 10_000:  # files with ever new headers: start again
                lowered.clear()
            key = lowered[k] = (k or "").strip().lower()
        out[key] = v or ""
    return out


def _address(row: Mapping[str, str]) -> str:
    """Return the one-string address; the 2017 layout also has it split into parts."""
    text = row.get("address", "").strip()
    if text:
        return text
    parts = [row.get(k, "").strip() for k in ("housenumber", "direction", "streetname", "suffix")]
    street = " ".join(p for p in parts if p)
    zipcode = row.get("zipcode", "").strip()
    return f"{street}, {zipcode}" if street and zipcode else street


def parse_rows(rows: Iterable[Mapping[str, str | None]], ctx: ImportContext,
               first_line: int = 2) -> ParseResult:
    """Turn MyLA311 rows into records and rejects.

    Parameters
    ----------
    rows
        Rows as :class:`csv.DictReader` yields them (header on line 1).
    ctx
        City time zone and category mapping.
    first_line
        File line of the first row (2: right after the header; later for a chunk).

    Returns
    -------
    ParseResult
        One record per good row; one reject per bad row, with its line number.
    """
    result = ParseResult(format="myla311")
    for index, raw in enumerate(rows):
        line = index + first_line  # line 1 is the header
        result.rows_read += 1
        row = _lower_keys(raw)
        external_id = row.get("srnumber", "").strip()
        try:
            external_id = check_id(external_id, "srnumber")
            service_code = row.get("requesttype", "").strip()
            category = ctx.categorize(service_code)
            if category is None:
                raise FieldError(
                    "requesttype",
                    f"requesttype {service_code!r} is not a category of this city pack",
                )
            status_text = row.get("status", "").strip().lower()
            if status_text not in STATUS_MAP:
                raise FieldError(
                    "status",
                    f"status {row.get('status', '')!r} is not one of "
                    f"{sorted(s.title() for s in STATUS_MAP)}",
                )
            # (lat, lon) columns -> (lon, lat)
            lon, lat = parse_lonlat(row.get("longitude"), row.get("latitude"))
            requested_at = parse_timestamp(row.get("createddate", ""), "createddate", ctx.tz)
            request = ServiceRequest(
                source=SOURCE,
                external_id=external_id,
                service_code=service_code,
                category=category,
                requested_at=requested_at,
                status=STATUS_MAP[status_text],
                address=check_text(_address(row), "address", MAX_ADDRESS_CHARS),
                zipcode=row.get("zipcode", "").strip()[:10],
                lon=lon,
                lat=lat,
                channel=channel_from_text(row.get("requestsource"), ctx.channels),
                updated_at=parse_optional_timestamp(row.get("updateddate"), "updateddate", ctx.tz),
                closed_at=parse_optional_timestamp(row.get("closeddate"), "closeddate", ctx.tz),
                service_date=parse_optional_date(row.get("servicedate"), "servicedate", ctx.tz),
                assigned_org=row.get("assignto", "").strip()[:64],
                extra={k: row[k].strip() for k in EXTRA_COLUMNS if row.get(k, "").strip()},
            )
        except FieldError as err:
            result.rejects.append(Reject(line, err.field, err.reason, external_id))
            continue
        result.records.append(ParsedRecord(line, request, SUPPLIED))
    return result


SUPPLIED = frozenset(
    {
        "service_code",
        "category",
        "requested_at",
        "status",
        "address",
        "zipcode",
        "lon",
        "lat",
        "channel",
        "updated_at",
        "closed_at",
        "service_date",
        "assigned_org",
        "extra",
    }
)
