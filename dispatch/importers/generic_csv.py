"""Reader of any CSV of requests, given a column mapping.

A mapping file (TOML or JSON) names, for each Curbside field, the CSV column that
holds it, e.g.::

    source = "webform"
    [columns]
    external_id = "ticket"
    service_code = "type"
    requested_at = "created"
    address = "where"
    lat = "y"
    lon = "x"

Required: ``external_id``, ``service_code``, ``requested_at``. Optional: ``status``,
``description``, ``address``, ``zipcode``, ``lat``, ``lon``, ``channel``,
``closed_at``, ``service_date``, ``assigned_org``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dispatch.errors import ImportFormatError
from dispatch.importers.common import (
    MAX_ADDRESS_CHARS,
    MAX_DESCRIPTION_CHARS,
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

REQUIRED = ("external_id", "service_code", "requested_at")
OPTIONAL = (
    "status",
    "description",
    "address",
    "zipcode",
    "lat",
    "lon",
    "channel",
    "closed_at",
    "service_date",
    "assigned_org",
)

#: Status words of other systems and the internal status each one is.
STATUS_WORDS: dict[str, RequestStatus] = {
    **{s.value: s for s in RequestStatus},
    "open": RequestStatus.NEW,
    "closed": RequestStatus.COMPLETED,
    "pending": RequestStatus.SCHEDULED,
    "cancelled": RequestStatus.CANCELLED,
    "canceled": RequestStatus.CANCELLED,
}


@dataclass(frozen=True)
class ColumnMapping:
    """Which CSV column holds which field."""

    columns: Mapping[str, str]
    source: str = "csv"

    def __post_init__(self) -> None:
        missing = [f for f in REQUIRED if f not in self.columns]
        unknown = [f for f in self.columns if f not in REQUIRED + OPTIONAL]
        if missing:
            raise ImportFormatError(
                f"column mapping lacks {missing}; it must name columns for {list(REQUIRED)}"
            )
        if unknown:
            raise ImportFormatError(
                f"column mapping names unknown fields {unknown}; expected some of "
                f"{list(REQUIRED + OPTIONAL)}"
            )


def load_mapping(path: Path) -> ColumnMapping:
    """Read a mapping file (``.toml`` or ``.json``)."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as err:
        raise ImportFormatError(f"mapping file {path} cannot be read: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
        raise ImportFormatError(f"mapping file {path} has no [columns] table")
    return ColumnMapping(
        columns={str(k): str(v) for k, v in data["columns"].items()},
        source=str(data.get("source", "csv")),
    )


def parse_rows(
    rows: Iterable[Mapping[str, str | None]],
    header: Iterable[str],
    mapping: ColumnMapping,
    ctx: ImportContext,
    first_line: int = 2,
) -> ParseResult:
    """Turn mapped CSV rows into records and rejects."""
    absent = [c for c in mapping.columns.values() if c not in set(header)]
    if absent:
        raise ImportFormatError(
            f"CSV has no column(s) {absent} named by the mapping; its columns are {list(header)}"
        )
    cols = mapping.columns
    result = ParseResult(format="csv")
    supplied = frozenset(
        {"service_code", "category", "requested_at"}
        | {f for f in cols if f in OPTIONAL and f not in ("lat",)}
        | ({"lat"} if "lat" in cols else set())
    )

    def get(row: Mapping[str, str | None], name: str) -> str:
        column = cols.get(name)
        return (row.get(column) or "") if column else ""

    for index, row in enumerate(rows):
        line = index + first_line
        result.rows_read += 1
        external_id = get(row, "external_id").strip()
        try:
            external_id = check_id(external_id, cols["external_id"])
            service_code = get(row, "service_code").strip()
            category = ctx.categorize(service_code)
            if category is None:
                raise FieldError(
                    cols["service_code"],
                    f"{cols['service_code']} {service_code!r} is not a category of this city pack",
                )
            status_text = get(row, "status").strip().lower()
            if status_text and status_text not in STATUS_WORDS:
                raise FieldError(cols["status"], f"status {status_text!r} is not one of "
                                 f"{sorted(STATUS_WORDS)}")
            # mapped (lat, lon) columns -> (lon, lat)
            lon, lat = parse_lonlat(get(row, "lon"), get(row, "lat"))
            request = ServiceRequest(
                source=mapping.source,
                external_id=external_id,
                service_code=service_code,
                category=category,
                requested_at=parse_timestamp(get(row, "requested_at"), cols["requested_at"],
                                             ctx.tz),
                status=STATUS_WORDS.get(status_text, RequestStatus.NEW),
                description=check_text(get(row, "description"), "description",
                                       MAX_DESCRIPTION_CHARS),
                address=check_text(get(row, "address"), "address", MAX_ADDRESS_CHARS),
                zipcode=get(row, "zipcode").strip()[:10],
                lon=lon,
                lat=lat,
                channel=channel_from_text(get(row, "channel"), ctx.channels),
                closed_at=parse_optional_timestamp(get(row, "closed_at"), "closed_at", ctx.tz),
                service_date=parse_optional_date(get(row, "service_date"), "service_date", ctx.tz),
                assigned_org=get(row, "assigned_org").strip()[:64],
            )
        except FieldError as err:
            result.rejects.append(Reject(line, err.field, err.reason, external_id))
            continue
        result.records.append(ParsedRecord(line, request, supplied))
    return result
