"""Request services: phone intake, duplicates, triage actions and location fixes."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from dispatch.auth import PII_ROLES, SUPERVISING, Role, service
from dispatch.citypack import CityPack
from dispatch.derived import h3_cell, service_day
from dispatch.errors import (
    ConcurrentEditError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from dispatch.importers.common import MAX_ADDRESS_CHARS, MAX_DESCRIPTION_CHARS
from dispatch.model import CLOSED_STATUSES, Channel, RequestStatus
from dispatch.ownership import OWNER_SOURCE, OWNER_WORKFLOW, with_override
from dispatch.services._spatial import assign_districts
from dispatch.services._versions import check_versions
from dispatch.state import REQUEST_TRANSITIONS, StopStatus, check_transition
from dispatch.store import RequestFilter, UnitOfWork
from geo.address import parse_address
from geo.geocoding import Geocoder

#: Longest caller name, phone and e-mail accepted (the store's column lengths).
MAX_CALLER_NAME_CHARS, MAX_CALLER_PHONE_CHARS, MAX_CALLER_EMAIL_CHARS = 200, 50, 200

#: How close an open request of the same category must be to count as a likely duplicate.
DUPLICATE_RADIUS_M = 75.0
EARTH_RADIUS_M = 6_371_008.8
#: How far beyond the city limit an intake pin may be (an address on the boundary street).
CITY_TOLERANCE_M = 200.0
#: Longest form submission token accepted (the store's column length).
MAX_SUBMISSION_CHARS = 64
#: Priorities a supervisor can set (higher goes first).
PRIORITIES = {0: "normal", 1: "high", 2: "urgent"}


@dataclass(frozen=True)
class IntakeForm:
    """What a call taker typed.

    Coordinates are the pin the call taker confirmed (from the geocoder, dragged, or
    clicked), ``lon, lat``.
    """

    category: str
    address: str
    lon: float | None
    lat: float | None
    channel: Channel = Channel.PHONE
    description: str = ""
    caller_name: str = ""
    caller_phone: str = ""
    caller_email: str = ""
    zipcode: str = ""
    geocode_precision: str = "manual"
    geocode_confidence: float = 1.0
    matched_address: str | None = None
    #: Fields with no column of their own (an Open311 client's ``media_url``).
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NearbyRequest:
    """An open request close to a new one: maybe the same problem."""

    pk: int
    request_id: str
    category: str
    address: str
    distance_m: float
    requested_at: datetime


def distance_m(lon1: float, lat1: float, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Return great-circle distances in metres from one point to many (haversine)."""
    p1, p2 = math.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - math.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    out: np.ndarray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


@service(Role.API, *SUPERVISING, action="look for duplicates")
def nearby_open(
    uow: UnitOfWork, category: str, lon: float, lat: float, radius_m: float = DUPLICATE_RADIUS_M,
    exclude_pk: int | None = None,
) -> list[NearbyRequest]:
    """Return open requests of ``category`` within ``radius_m`` of a point, nearest first.

    Only the requests in a small box around the point are read.
    """
    # a box a little larger than the radius: degrees of latitude are ~111 km
    dlat = radius_m / 111_000.0 * 1.5
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    rows = [r for r in uow.requests.query_columns(RequestFilter(
                categories=[category], open_at=uow.now(), located=True,
                bbox=(lon - dlon, lat - dlat, lon + dlon, lat + dlat)))
            if r.id != exclude_pk]
    if not rows:
        return []
    lons = np.array([r.lon for r in rows], dtype=float)
    lats = np.array([r.lat for r in rows], dtype=float)
    dist = distance_m(lon, lat, lons, lats)
    order = np.argsort(dist)
    return [
        NearbyRequest(rows[i].id, rows[i].external_id, rows[i].category, rows[i].address,
                      float(dist[i]), rows[i].requested_at)
        for i in order if dist[i] <= radius_m
    ]


def pin_outside_city(pack: CityPack, lon: float, lat: float) -> str | None:
    """Return why a pin cannot be a request of the city (one sentence), or ``None``.

    A pin more than :data:`CITY_TOLERANCE_M` beyond the city limit (``pack.boundary``)
    is outside; so is a position that is not finite.
    """
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return f"pin ({lon}, {lat}) is not a finite position"
    if not pack.within_city(np.array([lon]), np.array([lat]), CITY_TOLERANCE_M)[0]:
        return (f"pin lon={lon:.5f} lat={lat:.5f} is outside {pack.display_name}: it lies "
                f"more than {CITY_TOLERANCE_M:.0f} m beyond the city limit")
    return None


def place_outside_city(pack: CityPack, address: str) -> str | None:
    """Return why a typed address names another city (one sentence), or ``None``.

    The place an address ends in (``..., Springfield``, or ``... SPRINGFIELD`` for a name
    the pack knows) is another city's when the pack lists it among
    ``[reference].outside_places``: ``100 N MAIN ST, SPRINGFIELD`` is not a street of the
    city even when the city has a Main St of its own. No ZIP is needed for this.
    """
    if pack.reference is None or not pack.reference.outside_places:
        return None
    place = " ".join(parse_address(address, None, pack.reference.places).city.upper().split())
    if place not in pack.reference.outside_places:
        return None
    return (f"{address.strip()!r} is in {place.title()}, which is not part of "
            f"{pack.display_name}: the address is outside the city limit")


def address_outside_city(
    pack: CityPack, geocoder: Geocoder | None, address: str, zipcode: str = ""
) -> str | None:
    """Return why a typed address is another city's: its ZIP, else its place; or ``None``.

    :func:`zip_outside_city`, then :func:`place_outside_city`.
    """
    return zip_outside_city(pack, geocoder, address, zipcode) or place_outside_city(pack,
                                                                                    address)


def zip_outside_city(
    pack: CityPack, geocoder: Geocoder | None, address: str, zipcode: str = ""
) -> str | None:
    """Return why a typed address's ZIP places it outside the city (one sentence), or ``None``.

    The ZIP is the one in the address text, else the ZIP field (as the geocoder reads
    them). The city's geocoder knows the city's ZIPs: a ZIP it cannot locate, or one it
    locates beyond the city limit, is not the city's, even when the street name also
    exists in the city (a neighbour's ``100 E Main St`` with the neighbour's ZIP is not
    the city's own Main St). Without a geocoder (or a ZIP) nothing can be said: ``None``.
    """
    if geocoder is None:
        return None
    zip_code = parse_address(address, zipcode.strip() or None).zip
    if not zip_code:
        return None
    answer = geocoder.lookup(zip_code, zip_code)
    if (answer.lon is not None and answer.lat is not None
            and pack.within_city(np.array([answer.lon]), np.array([answer.lat]),
                                 CITY_TOLERANCE_M)[0]):
        return None
    return (f"ZIP {zip_code} of {address.strip() or 'the address'!r} is not a ZIP of "
            f"{pack.display_name}: the address is outside the city limit (or the ZIP is "
            "mistyped)")


def intake_id(pk: int, now: datetime) -> str:
    """Return the request id of an intake, e.g. ``CS-20200103-000123``.

    Built from the store's primary key, so it is unique by construction, on one app
    instance or many.
    """
    return f"CS-{now:%Y%m%d}-{pk:06d}"


def _check_text(value: str, limit: int, what: str) -> str:
    value = value.strip()
    if len(value) > limit:
        raise ValidationError(f"{what} has {len(value)} characters; at most {limit}")
    return value


@service(Role.API, *SUPERVISING, action="take requests", writes=True)
def create_request(
    uow: UnitOfWork, pack: CityPack, form: IntakeForm, *, duplicate_of: int | None = None,
    receipt: str | None = None, submission: str | None = None,
    geocoder: Geocoder | None = None,
) -> int:
    """Save a request taken by phone (or web form, or an Open311 client); return its id.

    With ``duplicate_of`` the new request is recorded as a duplicate of that open
    request (both are closed together later) instead of becoming new work. A
    ``receipt`` is a token handed to the submitter, kept so that they can later ask
    which request it became (Open311 ``tokens/{token}``).

    A ``submission`` token names the form being saved: a token already stored gives
    back the request it became and saves nothing (a double click on *Save*, a retry on
    another app instance). The store's key on the token decides a race between two
    saves of one form. With the city's ``geocoder``, a typed ZIP that is not the
    city's is refused (:func:`zip_outside_city`); so is an address in a place the pack
    lists as outside the city, geocoder or not (:func:`place_outside_city`).

    Raises
    ------
    ValidationError
        For an unknown category, empty or oversize text, a pin outside the city, or a
        ZIP outside it.
    ConcurrentEditError
        When another save of the same form won a race and its request cannot be read.
    """
    if submission is not None:
        submission = submission.strip()
        if not submission or len(submission) > MAX_SUBMISSION_CHARS:
            raise ValidationError(
                f"submission token has {len(submission)} characters; expected 1 to "
                f"{MAX_SUBMISSION_CHARS}")
        earlier = uow.requests.submitted(submission)
        if earlier is not None:
            return earlier
    category = pack.categories.get(form.category)
    if category is None:
        raise ValidationError(
            f"category {form.category!r} is not one of {sorted(pack.categories)}")
    address = _check_text(form.address, MAX_ADDRESS_CHARS, "address")
    if not address and form.lon is None:
        raise ValidationError("address is empty and no pin was placed; give one or the other")
    description = _check_text(form.description, MAX_DESCRIPTION_CHARS, "description")
    caller_name = _check_text(form.caller_name, MAX_CALLER_NAME_CHARS, "caller name")
    caller_phone = _check_text(form.caller_phone, MAX_CALLER_PHONE_CHARS, "caller phone")
    caller_email = _check_text(form.caller_email, MAX_CALLER_EMAIL_CHARS, "caller e-mail")
    zipcode = _check_text(form.zipcode, 10, "ZIP code")
    district = None
    outside = address_outside_city(pack, geocoder, address, zipcode)
    if outside is not None:
        raise ValidationError(outside)
    if form.lon is not None and form.lat is not None:
        outside = pin_outside_city(pack, form.lon, form.lat)
        if outside is not None:
            raise ValidationError(outside)
        found = assign_districts(uow, pack, np.array([form.lon]), np.array([form.lat]))[0]
        district = None if found is None else str(found)
    now = uow.now()
    original = None
    if duplicate_of is not None:
        original = uow.requests.get(duplicate_of)
        if original is None:
            raise NotFoundError(f"request {duplicate_of} does not exist")
    # a placeholder id unique by construction, replaced by the one built from the key
    pk = uow.requests.insert_one({
        "source": "intake", "external_id": f"pending-{uuid.uuid4().hex}",
        "service_code": category.service_codes[0] if category.service_codes else category.code,
        "category": category.code, "description": description,
        "address": address, "zipcode": zipcode,
        "lon": form.lon, "lat": form.lat,
        "geocode_precision": form.geocode_precision if form.lon is not None else "none",
        "geocode_confidence": form.geocode_confidence if form.lon is not None else 0.0,
        "matched_address": form.matched_address, "district": district,
        "channel": form.channel.value,
        "status": (RequestStatus.DUPLICATE if original else RequestStatus.NEW).value,
        "requested_at": now, "updated_at": now,
        "closed_at": None,
        "expected_at": None, "service_date": None, "assigned_org": "",
        "priority": 0, "size": 1, "extra": dict(form.extra),
        "caller_name": caller_name or None,
        "caller_phone": caller_phone or None,
        "caller_email": caller_email or None,
        "duplicate_of_id": original.id if original else None,
        "status_owner": OWNER_WORKFLOW, "overrides": [],
        "service_day": service_day(now, pack.timezone), "h3_cell": h3_cell(form.lon, form.lat),
    })
    uow.requests.update_many([{"id": pk, "external_id": intake_id(pk, now)}], new_version=False)
    uow.events.append("request", pk, "created", {"channel": form.channel.value,
                                                 "category": category.code})
    if original is not None:
        uow.events.append("request", pk, "marked_duplicate", {"of": original.external_id})
    if receipt is not None:
        uow.open311.add_receipt(receipt, pk, now, uow.actor)
    if submission is not None and not uow.requests.claim_submission(
            submission, pk, now, uow.actor):
        # another save of the same form got there first: keep its request, not this one
        uow.rollback()
        earlier = uow.requests.submitted(submission)
        if earlier is None:
            raise ConcurrentEditError(
                "the same intake form was saved at the same moment elsewhere; nothing was "
                "saved - reload and check the latest requests")
        return earlier
    uow.commit()
    return pk


def _rows(
    uow: UnitOfWork, pks: Sequence[int], expected: Mapping[int, int] | None = None
) -> list[Any]:
    rows = uow.requests.by_ids(pks, for_update=True)
    missing = sorted(set(pks) - {r.id for r in rows})
    if missing:
        raise NotFoundError(f"requests {missing} do not exist")
    check_versions(uow, rows, expected)
    return rows


def _touch(row: Any, now: datetime) -> None:
    """Note a local change on Curbside's own requests.

    An imported request keeps the source's ``updated_at``, so that re-imports compare
    like with like.
    """
    if row.source_status is None:
        row.updated_at = now


@service(*SUPERVISING, action="triage requests", writes=True)
def change_category(
    uow: UnitOfWork, pack: CityPack, pks: Sequence[int], category: str,
    *,
    expected: Mapping[int, int] | None = None,
) -> int:
    """Move requests to another category; return how many changed.

    The category becomes the supervisor's: a re-import never puts the source's back.
    """
    cat = pack.categories.get(category)
    if cat is None:
        raise ValidationError(f"category {category!r} is not one of {sorted(pack.categories)}")
    changed = 0
    now = uow.now()
    for row in _rows(uow, pks, expected):
        if row.category != category:
            uow.events.append("request", row.id, "category_changed",
                              {"from": row.category, "to": category})
            row.category = category
            row.service_code = cat.service_codes[0] if cat.service_codes else category
            row.overrides = with_override(row.overrides or [], "category")
            _touch(row, now)
            changed += 1
    uow.commit()
    return changed


@service(*SUPERVISING, action="triage requests", writes=True)
def set_priority(
    uow: UnitOfWork, pks: Sequence[int], priority: int,
    *,
    expected: Mapping[int, int] | None = None,
) -> int:
    """Set the priority of requests (0 normal, 1 high, 2 urgent); return how many changed."""
    if priority not in PRIORITIES:
        raise ValidationError(f"priority {priority} is not one of {sorted(PRIORITIES)}")
    changed = 0
    now = uow.now()
    for row in _rows(uow, pks, expected):
        if row.priority != priority:
            uow.events.append("request", row.id, "priority_set",
                              {"from": row.priority, "to": priority})
            row.priority = priority
            _touch(row, now)
            changed += 1
    uow.commit()
    return changed


def _refuse_if_worked(uow: UnitOfWork, rows: Sequence[Any], what: str) -> None:
    for stop in uow.plans.assigned_stops(r.id for r in rows):
        if StopStatus(stop.status).worked:
            label = next(r.external_id for r in rows if r.id == stop.request_id)
            raise InvalidTransitionError(
                f"request {label} is {stop.status} on the route of crew "
                f"{stop.route.crew_name}; it cannot be {what} now")


@service(*SUPERVISING, action="cancel requests", writes=True)
def cancel(
    uow: UnitOfWork, pks: Sequence[int], reason: str,
    *,
    expected: Mapping[int, int] | None = None,
) -> int:
    """Cancel open requests with a reason; return how many were cancelled.

    A request a crew is working on (arrived, or already finished) is refused.
    """
    reason = _check_text(reason, 500, "reason")
    if not reason:
        raise ValidationError("a cancellation needs a reason")
    count = 0
    now = uow.now()
    rows = _rows(uow, pks, expected)
    _refuse_if_worked(uow, rows, "cancelled")
    for row in rows:
        current = RequestStatus(row.status)
        if current in CLOSED_STATUSES:
            raise InvalidTransitionError(
                f"request {row.external_id} is already {row.status}; only open requests "
                "can be cancelled")
        check_transition(REQUEST_TRANSITIONS, current, RequestStatus.CANCELLED,
                         f"request {row.external_id}")
        row.status, row.closed_at = RequestStatus.CANCELLED.value, now
        row.status_owner = OWNER_WORKFLOW
        _touch(row, now)
        uow.events.append("request", row.id, "cancelled", {"reason": reason})
        count += 1
    uow.commit()
    return count


@service(*SUPERVISING, action="triage requests", writes=True)
def mark_duplicate(
    uow: UnitOfWork, pks: Sequence[int], of_pk: int,
    *,
    expected: Mapping[int, int] | None = None,
) -> int:
    """Mark requests as duplicates of another; they close when it closes."""
    original = uow.requests.get(of_pk)
    if original is None:
        raise NotFoundError(f"request {of_pk} does not exist")
    if of_pk in pks:
        raise ValidationError(f"request {original.external_id} cannot be a duplicate of itself")
    count = 0
    now = uow.now()
    rows = _rows(uow, pks, expected)
    _refuse_if_worked(uow, rows, "marked as a duplicate")
    for row in rows:
        check_transition(REQUEST_TRANSITIONS, RequestStatus(row.status),
                         RequestStatus.DUPLICATE, f"request {row.external_id}")
        row.status = RequestStatus.DUPLICATE.value
        row.status_owner = OWNER_WORKFLOW
        row.duplicate_of_id = of_pk
        _touch(row, now)
        uow.events.append("request", row.id, "marked_duplicate", {"of": original.external_id})
        count += 1
    uow.commit()
    return count


@service(*SUPERVISING, action="fix locations", writes=True)
def fix_location(
    uow: UnitOfWork, pack: CityPack, pk: int, lon: float, lat: float, *, how: str,
    matched_address: str | None = None, precision: str = "manual",
    confidence: float = 1.0,
) -> str | None:
    """Set a request's position by hand (candidate chosen, address retyped, map click).

    A pin placed by a supervisor (``precision`` ``manual``) becomes theirs: no re-import
    replaces it. Stops of the request on plans still in use move with it. Returns the
    district the new position falls in.
    """
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValidationError(f"position ({lon}, {lat}) is not finite")
    if not pack.within_city(np.array([lon]), np.array([lat]), CITY_TOLERANCE_M)[0]:
        raise ValidationError(f"position lon={lon:.5f} lat={lat:.5f} is outside "
                              f"{pack.display_name}")
    stops = uow.plans.active_stops([pk])  # lock order: stops before their request
    row = uow.requests.get(pk, for_update=True)
    if row is None:
        raise NotFoundError(f"request {pk} does not exist")
    found = assign_districts(uow, pack, np.array([lon]), np.array([lat]))[0]
    district = None if found is None else str(found)
    uow.events.append("request", pk, "location_fixed", {
        "how": how, "from": [row.lon, row.lat], "to": [lon, lat],
        "precision_before": row.geocode_precision, "precision": precision,
        "district": district,
    })
    row.lon, row.lat, row.district = lon, lat, district
    row.h3_cell = h3_cell(lon, lat)
    row.geocode_precision, row.geocode_confidence = precision, confidence
    row.matched_address = matched_address
    if precision == "manual":
        row.overrides = with_override(row.overrides or [], "location")
    _touch(row, uow.now())
    for stop in stops:
        if not StopStatus(stop.status).worked:
            stop.lon, stop.lat, stop.district = lon, lat, district
    uow.commit()
    return district


@service(*SUPERVISING, action="see source conflicts")
def source_conflicts(uow: UnitOfWork, limit: int = 500) -> list[dict[str, Any]]:
    """Return the requests whose source now disagrees with the local state, oldest first.

    Each entry has the request's id, its request id, category, address, and both
    values (``local``, ``source``) with their close times.
    """
    out = []
    for row in uow.requests.in_conflict(limit):
        conflict = dict(row.source_conflict or {})
        out.append({"id": row.id, "request_id": row.external_id, "category": row.category,
                    "address": row.address, "version": row.version,
                    "seen_at": row.conflict_at, **conflict})
    return out


@service(*SUPERVISING, action="settle source conflicts", writes=True)
def resolve_conflict(
    uow: UnitOfWork, pk: int, *, take_source: bool, expected_version: int | None = None,
) -> str:
    """Settle a source/local disagreement: keep the local state, or take the source's.

    Taking the source's status closes (or reopens) the request as the source says, and
    the source owns its status again; a stop a crew already worked keeps its outcome,
    so the source's word is refused for a request on a worked stop. Returns the
    request's status afterwards.
    """
    rows = _rows(uow, [pk], {pk: expected_version} if expected_version is not None else None)
    row = rows[0]
    if row.source_conflict is None:
        raise InvalidTransitionError(f"request {row.external_id} has no conflict to settle")
    conflict = dict(row.source_conflict)
    if take_source:
        _refuse_if_worked(uow, rows, "closed as the source says")
        row.status = row.source_status or row.status
        row.closed_at = row.source_closed_at
        row.status_owner = OWNER_SOURCE
    row.source_conflict = row.conflict_at = None
    uow.events.append("request", pk, "conflict_settled",
                      {"took": "source" if take_source else "local", **conflict})
    if take_source and RequestStatus(row.status) in CLOSED_STATUSES:
        # a pending stop of it on an assigned route is no longer work
        for stop in uow.plans.assigned_stops([pk]):
            uow.events.append("crew", stop.route.crew_name, "route_changed", {
                "plan_id": stop.plan_id, "added": [], "removed": [row.external_id]})
            stop.route.stops.remove(stop)
    uow.commit()
    return str(row.status)


#: Default number of days residents' contact details are kept after a request closes.
DEFAULT_RETENTION_DAYS = 90


@service(Role.ADMIN, action="anonymise personal data", writes=True)
def anonymise_personal_data(uow: UnitOfWork, older_than_days: int = DEFAULT_RETENTION_DAYS,
                            ) -> int:
    """Erase caller name, phone and email of requests closed more than N days ago.

    Open requests keep them (the crew or the call center may still need to call back).
    Returns how many requests were anonymised; each gets an event.
    """
    if older_than_days < 0:
        raise ValidationError(f"older_than_days {older_than_days} is negative")
    cutoff = uow.now() - timedelta(days=older_than_days)
    count = 0
    events: list[tuple[str, str | int, str, dict[str, object]]] = []
    for row in uow.requests.with_personal_data():
        if RequestStatus(row.status) not in CLOSED_STATUSES:
            continue
        closed = row.closed_at or row.updated_at or row.requested_at
        if closed > cutoff:
            continue
        row.caller_name = row.caller_phone = row.caller_email = None
        events.append(("request", row.id, "personal_data_erased",
                       {"retention_days": older_than_days}))
        count += 1
    uow.events.append_many(events)
    uow.commit()
    return count


@service(*PII_ROLES, action="see residents' contact details")
def caller_details(uow: UnitOfWork, pk: int) -> dict[str, str | None]:
    """Return the caller's contact details, for supervisors and admins only."""
    row = uow.requests.get(pk)
    if row is None:
        raise NotFoundError(f"request {pk} does not exist")
    return {"name": row.caller_name, "phone": row.caller_phone, "email": row.caller_email}
