"""Open311 GeoReport v2: reading ``requests.json`` and shaping requests for export."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

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
    parse_optional_timestamp,
    parse_timestamp,
)
from dispatch.model import RequestStatus, ServiceRequest

SOURCE = "open311"

#: The GeoReport v2 fields of a service request, in the order the spec lists them.
FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)

SUPPLIED = frozenset(
    {
        "service_code",
        "category",
        "description",
        "requested_at",
        "status",
        "address",
        "zipcode",
        "lon",
        "lat",
        "updated_at",
        "expected_at",
        "assigned_org",
        "extra",
    }
)

#: GeoReport v2 fields with no column of their own, kept in the request's ``extra`` so
#: that a round trip (export, import elsewhere, export again) keeps them.
KEPT_FIELDS = ("status_notes", "media_url", "address_id")
#: Longest value kept of each of :data:`KEPT_FIELDS`.
MAX_KEPT_CHARS = 1000


def is_open311_payload(payload: Any) -> bool:
    """Return whether a decoded JSON document looks like a GeoReport v2 request list."""
    items = payload.get("service_requests") if isinstance(payload, dict) else payload
    return (
        isinstance(items, list)
        and all(isinstance(i, dict) for i in items)
        and (not items or "service_request_id" in items[0])
    )


def _text(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    return "" if value is None else str(value)


def parse_items(payload: Any, ctx: ImportContext) -> ParseResult:
    """Turn a GeoReport v2 ``requests.json`` document into records and rejects.

    Parameters
    ----------
    payload
        The decoded JSON: a list of requests, or ``{"service_requests": [...]}``.
    ctx
        City time zone and category mapping.
    """
    items: Sequence[Any] = (
        payload.get("service_requests", []) if isinstance(payload, dict) else payload
    )
    result = ParseResult(format="open311")
    for index, item in enumerate(items):
        line = index + 1
        result.rows_read += 1
        if not isinstance(item, dict):
            result.rejects.append(Reject(line, "(element)", f"element {line} is not an object"))
            continue
        external_id = _text(item, "service_request_id").strip()
        try:
            external_id = check_id(external_id, "service_request_id")
            service_code = check_text(_text(item, "service_code"), "service_code", 100)
            category = ctx.categorize(service_code) or ctx.categorize(_text(item, "service_name"))
            if category is None:
                raise FieldError(
                    "service_code",
                    f"service_code {service_code!r} is not a category of this city pack",
                )
            status_text = _text(item, "status").strip().lower()
            if status_text not in ("open", "closed"):
                raise FieldError(
                    "status", f"status {item.get('status')!r} is not one of 'open', 'closed'"
                )
            lon, lat = parse_lonlat(item.get("long"), item.get("lat"))
            request = ServiceRequest(
                source=SOURCE,
                external_id=external_id,
                service_code=service_code,
                category=category,
                description=check_text(_text(item, "description"), "description",
                                       MAX_DESCRIPTION_CHARS),
                requested_at=parse_timestamp(_text(item, "requested_datetime"),
                                             "requested_datetime", ctx.tz),
                status=RequestStatus.NEW if status_text == "open" else RequestStatus.COMPLETED,
                address=check_text(_text(item, "address"), "address", MAX_ADDRESS_CHARS),
                zipcode=_text(item, "zipcode").strip()[:10],
                lon=lon,
                lat=lat,
                updated_at=parse_optional_timestamp(item.get("updated_datetime"),
                                                    "updated_datetime", ctx.tz),
                expected_at=parse_optional_timestamp(item.get("expected_datetime"),
                                                     "expected_datetime", ctx.tz),
                assigned_org=_text(item, "agency_responsible").strip()[:64],
                extra={key: check_text(_text(item, key), key, MAX_KEPT_CHARS)
                       for key in KEPT_FIELDS if _text(item, key).strip()},
            )
        except FieldError as err:
            result.rejects.append(Reject(line, err.field, err.reason, external_id))
            continue
        result.records.append(ParsedRecord(line, request, SUPPLIED))
    return result


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return None if value is None else value.astimezone(tz).isoformat()


def to_open311(
    request: ServiceRequest,
    *,
    service_name: str,
    tz: ZoneInfo,
    service_code: str | None = None,
    status_notes: str | None = None,
    media_url: str | None = None,
    address_id: str | None = None,
) -> dict[str, Any]:
    """Shape one request as a GeoReport v2 service request.

    Timestamps are ISO 8601 in the city's local time with its UTC offset; ``lat``
    and ``long`` are numbers or ``None``. ``service_code`` is the category's published
    code (:attr:`~dispatch.model.Category.public_code`); without it the request's own.
    """
    return {
        "service_request_id": request.external_id,
        "status": request.status.open311,
        "status_notes": status_notes,
        "service_name": service_name,
        "service_code": service_code or request.service_code,
        "description": request.description or None,
        "agency_responsible": request.assigned_org or None,
        "service_notice": None,
        "requested_datetime": _iso(request.requested_at, tz),
        "updated_datetime": _iso(request.updated_at, tz),
        "expected_datetime": _iso(request.expected_at, tz),
        "address": request.address or None,
        "address_id": address_id,
        "zipcode": request.zipcode or None,
        "lat": request.lat,
        "long": request.lon,
        "media_url": media_url,
    }
