"""Open311 GeoReport v2 services: what the API server answers, over the store.

The shapes follow the GeoReport v2 specification (wiki.open311.org/GeoReport_v2):

* ``services``: one service per category of the city pack, under its stable URL-safe
  code (:attr:`~dispatch.model.Category.public_code`); the city's own codes are its
  ``keywords`` and stay accepted (import, filters, POST);
* ``requests``: the public fields of requests (never residents' contact details), with
  ``status_notes`` saying why a request closed: fixed, duplicate, cancelled, or that the
  crew could not complete it;
* ``POST requests``: through the same intake as the phone form
  (:func:`dispatch.services.requests.create_request`): validation, geocoding with the
  city's geocoder, the district, the nearby-duplicate hint and the event log.

Reads are bounded: one page of at most :data:`MAX_RESULTS` requests, within
:data:`MAX_WINDOW` of time, read in SQL.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

from dispatch.auth import SUPERVISING, Role, public, service
from dispatch.citypack import CityPack
from dispatch.errors import NotFoundError, ValidationError
from dispatch.importers.open311 import SOURCE as OPEN311_SOURCE
from dispatch.importers.open311 import to_open311
from dispatch.model import Channel, RequestStatus, ServiceRequest
from dispatch.ownership import OWNER_SOURCE
from dispatch.services.requests import IntakeForm, create_request, nearby_open
from dispatch.store import UnitOfWork
from dispatch.store.api import Open311Filter
from geo.geocoding import Geocoder, Precision

#: Most requests one ``GET requests`` answers (the specification's limit).
MAX_RESULTS = 1000
#: Widest span of ``start_date``..``end_date``, and the default look-back (the spec's).
MAX_WINDOW = timedelta(days=90)
#: Most ids one ``service_request_id`` list may hold.
MAX_IDS = 200
#: Longest ``media_url`` accepted in a POST.
MAX_MEDIA_URL_CHARS = 500

#: Internal statuses behind the Open311 ``status`` values (``closed_not_fixed`` stays
#: ``open`` for residents: the problem is still there, see ``RequestStatus.open311``).
STATUSES_OF: Mapping[str, tuple[str, ...]] = {
    side: tuple(s.value for s in RequestStatus if s.open311 == side)
    for side in ("open", "closed")
}

#: Why a crew could not complete a stop, as residents read it (crews' reason codes).
CANT_COMPLETE_WORDS: Mapping[str, str] = {
    "not_out": "the item was not out",
    "blocked": "the crew could not get to it",
    "hazardous": "it is hazardous material",
    "too_large": "it is too large for the truck",
    "excluded_item": "the item is not collected",
    "other": "the crew could not complete it",
}


# --------------------------------------------------------------------------- services


def service_list(pack: CityPack) -> list[dict[str, Any]]:
    """Return the GeoReport v2 service list: one service per category of the pack."""
    return [
        {
            "service_code": cat.public_code,
            "service_name": cat.label,
            "description": f"{cat.label} ({pack.display_name})",
            "metadata": False,
            "type": "realtime",
            "keywords": ", ".join(cat.service_codes),
            "group": "crew routes" if cat.routable else "other services",
        }
        for cat in pack.categories.values()
    ]


def service_definition(pack: CityPack, code: str) -> dict[str, Any]:
    """Return the definition of one service (Curbside asks for no extra attributes).

    Raises
    ------
    NotFoundError
        When ``code`` is no service of the pack (its published code or an alias).
    """
    cat = pack.category_for_service_code(code)
    if cat is None:
        raise NotFoundError(f"service_code {code!r} is not a service of {pack.display_name}; "
                            "GET services for the list")
    return {"service_code": cat.public_code, "attributes": []}


def discovery(pack: CityPack, base_url: str, changeset: datetime) -> dict[str, Any]:
    """Return the GeoReport v2 discovery document of this endpoint."""
    stamp = changeset.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "changeset": stamp,
        "contact": f"{pack.display_name} service center (Curbside)",
        "key_service": "API keys are issued by the service center's Curbside administrator "
                       "(dispatch api-keys create NAME)",
        "endpoints": [{
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": base_url.rstrip("/"),
            "changeset": stamp,
            "type": "production",
            "formats": ["text/xml", "application/json"],
        }],
    }


# --------------------------------------------------------------------------- shaping


def status_notes(row: Any, closing: tuple[str, Mapping[str, Any]] | None,
                 duplicate_of: str | None) -> str | None:
    """Return why a request stands as it does, in words residents read.

    The source's own note stands while the source owns the status (a request imported
    from another Open311 endpoint); otherwise the note comes from Curbside's state: fixed,
    duplicate of another request, cancelled, or what kept the crew from completing it.
    Free text typed by staff (a cancellation's reason, a crew's note) is never shown.
    """
    extra = row.extra or {}
    if row.source == OPEN311_SOURCE and row.status_owner == OWNER_SOURCE and extra.get(
            "status_notes"):
        return str(extra["status_notes"])
    status = RequestStatus(row.status)
    if status is RequestStatus.COMPLETED:
        return "Fixed: the crew completed the work."
    if status is RequestStatus.DUPLICATE:
        return (f"Duplicate of request {duplicate_of}." if duplicate_of
                else "Duplicate of another request.")
    if status is RequestStatus.CANCELLED:
        return "Cancelled by the service center."
    if status is RequestStatus.CLOSED_NOT_FIXED:
        reason = (closing[1].get("reason") if closing and closing[0] == "closed_not_fixed"
                  else None)
        why = CANT_COMPLETE_WORDS.get(str(reason), CANT_COMPLETE_WORDS["other"])
        return f"Could not complete: {why}."
    if status is RequestStatus.SCHEDULED and row.service_date is not None:
        return f"Scheduled for {row.service_date:%Y-%m-%d}."
    return None


def _domain(row: Any) -> ServiceRequest:
    return ServiceRequest(
        source=row.source, external_id=row.external_id, service_code=row.service_code,
        category=row.category, requested_at=row.requested_at,
        status=RequestStatus(row.status), description=row.description or "",
        address=row.address or "", zipcode=row.zipcode or "", lon=row.lon, lat=row.lat,
        updated_at=row.updated_at, closed_at=row.closed_at, expected_at=row.expected_at,
        service_date=row.service_date, assigned_org=row.assigned_org or "",
    )


@public("shapes rows its caller already read; it adds only public facts about them (why "
        "they closed, which request a duplicate belongs to)")
def shape_rows(uow: UnitOfWork, pack: CityPack, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Return stored rows (with :data:`~dispatch.store.api.PUBLIC_COLUMNS`) as GeoReport v2.

    Reads the closing events and duplicate targets of these rows only.
    """
    needs_events = [r.id for r in rows if r.status in (RequestStatus.CLOSED_NOT_FIXED.value,)]
    closing = uow.open311.closing_events(needs_events) if needs_events else {}
    targets = {r.duplicate_of_id for r in rows if r.duplicate_of_id is not None}
    target_ids = uow.open311.external_ids(targets) if targets else {}
    out = []
    for row in rows:
        cat = pack.categories.get(row.category)
        extra = row.extra or {}
        out.append(to_open311(
            _domain(row),
            service_name=cat.label if cat else row.category,
            service_code=cat.public_code if cat else row.service_code,
            tz=pack.timezone,
            status_notes=status_notes(row, closing.get(row.id),
                                      target_ids.get(row.duplicate_of_id or -1)),
            media_url=_kept(extra, "media_url"),
            address_id=_kept(extra, "address_id"),
        ))
    return out


def _kept(extra: Mapping[str, Any], key: str) -> str | None:
    value = extra.get(key)
    return str(value) if value else None


# --------------------------------------------------------------------------- GET requests


@dataclass(frozen=True)
class RequestQuery:
    """A validated ``GET requests``: the specification's filters and Curbside's paging.

    ``start``/``end`` are inclusive, timezone-aware; ``page`` is 1-based.
    """

    service_request_ids: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    page: int = 1
    page_size: int = MAX_RESULTS


@dataclass(frozen=True)
class RequestPage:
    """One page of a ``GET requests``."""

    requests: list[dict[str, Any]]
    has_more: bool
    start: datetime | None
    end: datetime | None
    page: int
    page_size: int


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def parse_datetime(value: str, name: str, pack: CityPack) -> datetime:
    """Read a W3C/ISO 8601 date or date-time; a time without offset is the city's.

    Raises
    ------
    ValidationError
        Naming the parameter, what came in and what is expected.
    """
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            parsed = datetime.combine(date.fromisoformat(text), time(0))
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ValidationError(
            f"{name} {text[:40]!r} is not a date; expected ISO 8601 such as "
            "2020-01-03T07:00:00-08:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=pack.timezone)
    return parsed


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = (params.get(name) or "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(f"{name} {text[:20]!r} is not a whole number") from None
    if not low <= value <= high:
        raise ValidationError(f"{name} {value} is out of range; expected {low} to {high}")
    return value


def parse_request_query(params: Mapping[str, str], pack: CityPack) -> RequestQuery:
    """Validate the parameters of a ``GET requests`` (no defaults applied yet).

    Raises
    ------
    ValidationError
        For an unknown service code or status, a date that is not one, an id list or a
        page size out of bounds.
    """
    page = _int(params, "page", 1, 1, 1_000_000)
    page_size = _int(params, "page_size", MAX_RESULTS, 1, MAX_RESULTS)
    ids = _split(params.get("service_request_id"))
    if ids:
        if len(ids) > MAX_IDS:
            raise ValidationError(f"service_request_id lists {len(ids)} ids; at most {MAX_IDS}")
        # the specification: a list of ids overrides every other filter
        return RequestQuery(service_request_ids=tuple(ids), page=page, page_size=page_size)
    categories: list[str] = []
    for code in _split(params.get("service_code")):
        cat = pack.category_for_service_code(code)
        if cat is None:
            raise ValidationError(
                f"service_code {code!r} is not a service of {pack.display_name}; expected one "
                f"of {', '.join(c.public_code for c in pack.categories.values())}")
        categories.append(cat.code)
    statuses: list[str] = []
    for side in _split(params.get("status")):
        if side.lower() not in STATUSES_OF:
            raise ValidationError(f"status {side!r} is not one of 'open', 'closed'")
        statuses.extend(STATUSES_OF[side.lower()])
    start = end = None
    if (params.get("start_date") or "").strip():
        start = parse_datetime(params["start_date"], "start_date", pack)
    if (params.get("end_date") or "").strip():
        end = parse_datetime(params["end_date"], "end_date", pack)
    if start is not None and end is not None:
        if end < start:
            raise ValidationError(f"end_date {end.isoformat()} is before start_date "
                                  f"{start.isoformat()}")
        if end - start > MAX_WINDOW:
            raise ValidationError(
                f"start_date..end_date spans {(end - start).days} days; at most "
                f"{MAX_WINDOW.days} (ask in several windows)")
    return RequestQuery(categories=tuple(categories) or None,
                        statuses=tuple(sorted(set(statuses))) or None,
                        start=start, end=end, page=page, page_size=page_size)


@public("GeoReport v2 request lists are public: residents and other 311 systems read them "
        "without a key; only public fields are shown")
def find_requests(uow: UnitOfWork, pack: CityPack, query: RequestQuery) -> RequestPage:
    """Answer a ``GET requests``: one page, newest first, read with a limit in SQL.

    Without dates the last 90 days (of business time) are searched; with only one of
    them the window is 90 days from or to it.
    """
    start, end = query.start, query.end
    if query.service_request_ids is None:
        if end is None:
            end = start + MAX_WINDOW if start is not None else uow.now()
        if start is None:
            start = end - MAX_WINDOW
    flt = Open311Filter(
        external_ids=query.service_request_ids, categories=query.categories,
        statuses=query.statuses,
        requested_from=None if query.service_request_ids else start,
        requested_until=None if query.service_request_ids else end)
    rows = uow.open311.page(flt, offset=(query.page - 1) * query.page_size,
                            limit=query.page_size + 1)
    more = len(rows) > query.page_size
    rows = rows[: query.page_size]
    return RequestPage(shape_rows(uow, pack, rows), more, start, end, query.page,
                       query.page_size)


@public("a single public request, as in GET requests")
def get_request(uow: UnitOfWork, pack: CityPack, service_request_id: str) -> list[dict[str, Any]]:
    """Answer ``GET requests/{id}``: the request(s) with that id (one in practice).

    Raises
    ------
    NotFoundError
        When no request has that id.
    """
    rows = uow.open311.by_external_id(service_request_id.strip()[:64])
    if not rows:
        raise NotFoundError(f"service_request_id {service_request_id[:64]!r} does not exist")
    return shape_rows(uow, pack, rows)


@public("a token is only known to whoever submitted the request")
def token_lookup(uow: UnitOfWork, token: str) -> dict[str, str]:
    """Answer ``tokens/{token}``: the id of the request submitted with that token.

    Raises
    ------
    NotFoundError
        For an unknown token.
    """
    found = uow.open311.receipt(token.strip()[:64])
    if found is None:
        raise NotFoundError(f"token {token[:64]!r} is unknown")
    return {"token": found[0], "service_request_id": found[1]}


# --------------------------------------------------------------------------- POST requests


@dataclass(frozen=True)
class Submission:
    """What a ``POST requests`` made: the request's id, a token, and a notice."""

    service_request_id: str
    token: str
    service_notice: str | None = None
    nearby: list[str] = field(default_factory=list)

    def as_open311(self) -> dict[str, Any]:
        """Return the specification's POST answer (one element of the list)."""
        return {"service_request_id": self.service_request_id, "token": self.token,
                "service_notice": self.service_notice, "account_id": None}


def _float(fields: Mapping[str, str], name: str) -> float | None:
    text = (fields.get(name) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(f"{name} {text[:30]!r} is not a number") from None
    if not math.isfinite(value):
        raise ValidationError(f"{name} {text[:30]!r} is not a finite number")
    return value


def _media_url(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_MEDIA_URL_CHARS:
        raise ValidationError(f"media_url has {len(text)} characters; at most "
                              f"{MAX_MEDIA_URL_CHARS}")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"media_url {text[:60]!r} is not an http(s) URL")
    return text


def intake_form(pack: CityPack, fields: Mapping[str, str], geocoder: Geocoder | None,
                ) -> IntakeForm:
    """Turn the fields of a ``POST requests`` into the phone form's :class:`IntakeForm`.

    A pin (``lat``/``long``) is taken as the resident placed it; without one the
    ``address_string`` is geocoded with the city's geocoder (unlocated addresses wait in
    "Needs location", as from the phone).

    Raises
    ------
    ValidationError
        For an unknown service code, a half pin, no location at all, or a bad URL.
    """
    code = (fields.get("service_code") or "").strip()
    if not code:
        raise ValidationError("service_code is missing; GET services for the list")
    cat = pack.category_for_service_code(code)
    if cat is None:
        raise ValidationError(f"service_code {code!r} is not a service of {pack.display_name}; "
                              "GET services for the list")
    lat, lon = _float(fields, "lat"), _float(fields, "long")
    if (lat is None) != (lon is None):
        raise ValidationError("lat and long come together; one of them is missing")
    address = (fields.get("address_string") or "").strip()
    if lat is None and not address:
        raise ValidationError("a request needs a location: lat and long, or address_string")
    precision, confidence, matched, zipcode = Precision.MANUAL.value, 1.0, None, ""
    if lon is None and geocoder is not None:
        answer = geocoder.lookup(address, None)
        if answer.located:
            lon, lat = answer.lon, answer.lat
            precision, confidence = answer.precision.value, answer.confidence
            matched, zipcode = answer.matched_address or None, answer.zip[:10]
    name = " ".join(p for p in ((fields.get("first_name") or "").strip(),
                                (fields.get("last_name") or "").strip()) if p)
    extra: dict[str, str] = {}
    if (fields.get("media_url") or "").strip():
        extra["media_url"] = _media_url(fields["media_url"])
    if (fields.get("address_id") or "").strip():
        extra["address_id"] = fields["address_id"].strip()[:100]
    return IntakeForm(
        category=cat.code, address=address, lon=lon, lat=lat, channel=Channel.APP,
        description=fields.get("description") or "", caller_name=name,
        caller_phone=fields.get("phone") or "", caller_email=fields.get("email") or "",
        zipcode=zipcode, geocode_precision=precision, geocode_confidence=confidence,
        matched_address=matched, extra=extra,
    )


def _notice(nearby: Iterable[Any]) -> tuple[str | None, list[str]]:
    near = list(nearby)
    if not near:
        return None, []
    first = near[0]
    return (f"An open request of the same type is {first.distance_m:.0f} m away "
            f"({first.request_id}); it may be the same problem."), [n.request_id for n in near]


@service(Role.API, *SUPERVISING, action="submit requests through Open311")
def submit_request(uow: UnitOfWork, pack: CityPack, fields: Mapping[str, str],
                   geocoder: Geocoder | None = None) -> Submission:
    """Take a ``POST requests``: the phone intake's validation, geocoding and event log.

    Returns the new request's id, a token for ``tokens/{token}`` and, when an open
    request of the same type is within 75 m, a notice naming it (the request is taken
    all the same: residents may report the same problem twice).
    """
    form = intake_form(pack, fields, geocoder)
    notice: str | None = None
    near: list[str] = []
    if form.lon is not None and form.lat is not None:
        notice, near = _notice(nearby_open(uow, form.category, form.lon, form.lat))
    token = secrets.token_urlsafe(18)
    pk = create_request(uow, pack, form, receipt=token, geocoder=geocoder)
    found = uow.open311.external_ids([pk])
    return Submission(found[pk], token, notice, near)


@public("monitors check that the API answers; it says nothing about any request")
def health(uow: UnitOfWork) -> dict[str, str]:
    """Return ``{"status": "ok", "business_time": ...}`` after one read of the store."""
    return {"status": "ok", "business_time": uow.now().isoformat()}
