"""Shared pieces of the readers: records, rejects, field parsers."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from dispatch.model import Channel, ServiceRequest

#: Longest description accepted (Open311 GeoReport v2 ``description`` maxLength).
MAX_DESCRIPTION_CHARS = 4000
#: Longest address accepted.
MAX_ADDRESS_CHARS = 300
#: Longest external id accepted.
MAX_ID_CHARS = 64


@dataclass(frozen=True)
class Reject:
    """A row that could not be imported.

    Parameters
    ----------
    line
        1-based line number in the file (for JSON, 1-based index of the element).
    field
        The field at fault.
    reason
        What came in and what was expected.
    external_id
        The row's id when it had one.
    """

    line: int
    field: str
    reason: str
    external_id: str = ""


@dataclass
class ParsedRecord:
    """A request read from one row, with the fields that row supplied."""

    line: int
    request: ServiceRequest
    supplied: frozenset[str]


@dataclass
class ParseResult:
    """All records and rejects of one file."""

    format: str
    records: list[ParsedRecord] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    rows_read: int = 0


@dataclass(frozen=True)
class ImportContext:
    """What the readers need to know about the city.

    Parameters
    ----------
    tz
        The city's time zone: naive local timestamps are read in it.
    categorize
        Maps the city's service code (e.g. MyLA311 ``requesttype``) to a category code,
        or ``None`` when the code is unknown.
    source
        Name recorded as the request's ``source`` for formats that have no own name.
    channels
        How the city writes its intake channels (the city pack's ``[channels]``), for
        :func:`dispatch.model.channel_from_text`.
    """

    tz: ZoneInfo
    categorize: Callable[[str], str | None]
    source: str = "csv"
    channels: Mapping[str, Channel] = field(default_factory=dict)


class FieldError(ValueError):
    """A field that cannot be parsed; carries the field name for the reject."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


LOCAL_FORMATS = (
    "%m/%d/%y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%m/%d/%y",
)


_last_format: list[str | None] = [None]


def _parse_naive_or_aware(text: str) -> datetime | None:
    """Try the format that worked last, then ISO 8601, then every known local format."""
    last = _last_format[0]
    if last is not None:
        try:
            return datetime.strptime(text, last)
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    for fmt in LOCAL_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        _last_format[0] = fmt
        return parsed
    return None


@lru_cache(maxsize=65536)
def parse_timestamp(value: str, field_name: str, tz: ZoneInfo) -> datetime:
    """Parse a timestamp: ISO 8601 (with or without offset) or a US local format.

    Naive values are local time in ``tz``; the result is timezone-aware UTC.

    Raises
    ------
    FieldError
        When ``value`` matches no known format.
    """
    text = value.strip()
    if not text:
        raise FieldError(field_name, f"{field_name} is empty; expected a date and time")
    parsed = _parse_naive_or_aware(text)
    if parsed is None:
        raise FieldError(
            field_name,
            f"{field_name} {text[:40]!r} is not a date; expected ISO 8601 "
            "(2020-01-03T07:00:00-08:00) or M/D/YY H:MM",
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def parse_optional_timestamp(value: str | None, field_name: str, tz: ZoneInfo) -> datetime | None:
    """Parse a timestamp that may be empty."""
    if value is None or not str(value).strip():
        return None
    return parse_timestamp(str(value), field_name, tz)


def parse_optional_date(value: str | None, field_name: str, tz: ZoneInfo) -> date | None:
    """Parse a date (time of day ignored) read as local in ``tz``; empty gives ``None``."""
    if value is None or not str(value).strip():
        return None
    stamp = parse_timestamp(str(value), field_name, tz)
    return stamp.astimezone(tz).date()


def parse_lonlat(lon_text: object, lat_text: object) -> tuple[float | None, float | None]:
    """Parse a coordinate pair; both empty gives ``(None, None)``.

    Raises
    ------
    FieldError
        For a half-empty pair, a non-number, NaN/inf, or a value outside WGS84 ranges.
    """
    lon_s = "" if lon_text is None else str(lon_text).strip()
    lat_s = "" if lat_text is None else str(lat_text).strip()
    if not lon_s and not lat_s:
        return None, None
    if not lon_s or not lat_s:
        raise FieldError("longitude" if not lon_s else "latitude",
                         f"only one coordinate given (lon={lon_s!r}, lat={lat_s!r}); "
                         "expected both or neither")
    try:
        lon, lat = float(lon_s), float(lat_s)
    except ValueError:
        raise FieldError(
            "latitude", f"coordinates ({lon_s!r}, {lat_s!r}) are not numbers"
        ) from None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise FieldError("latitude", f"coordinates ({lon_s}, {lat_s}) are not finite")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise FieldError("latitude", f"coordinates lon={lon} lat={lat} are outside WGS84 ranges")
    if lon == 0.0 and lat == 0.0:
        return None, None  # the city's systems write 0,0 for "no location"
    return lon, lat


def check_text(value: str, field_name: str, limit: int) -> str:
    """Return ``value`` stripped, or raise when it is longer than ``limit`` characters."""
    text = (value or "").strip()
    if len(text) > limit:
        raise FieldError(field_name, f"{field_name} has {len(text)} characters; at most {limit}")
    if "\x00" in text:
        raise FieldError(field_name, f"{field_name} contains a NUL byte")
    return text


def check_id(value: str, field_name: str) -> str:
    """Return a non-empty external id or raise."""
    text = check_text(value, field_name, MAX_ID_CHARS)
    if not text:
        raise FieldError(field_name, f"{field_name} is empty; every request needs an id")
    return text
