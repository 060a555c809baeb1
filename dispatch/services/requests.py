"""Request services: phone intake, duplicates, triage actions and location fixes."""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from dispatch.auth import SUPERVISING, Role, require
from dispatch.citypack import CityPack
from dispatch.errors import (
    AccessDeniedError,
    DispatchError,
    InvalidTransitionError,
    NotFoundError,
)
from dispatch.importers.common import MAX_ADDRESS_CHARS, MAX_DESCRIPTION_CHARS
from dispatch.model import CLOSED_STATUSES, Channel, RequestStatus
from dispatch.services.concurrency import check_versions
from dispatch.services.queries import OPEN_STATUSES
from dispatch.store import RequestFilter, UnitOfWork, utcnow
from dispatch.store.models import RequestRow

#: How close an open request of the same category must be to count as a likely duplicate.
DUPLICATE_RADIUS_M = 75.0
EARTH_RADIUS_M = 6_371_008.8
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
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def nearby_open(
    uow: UnitOfWork, category: str, lon: float, lat: float, radius_m: float = DUPLICATE_RADIUS_M,
    exclude_pk: int | None = None,
) -> list[NearbyRequest]:
    """Return open requests of ``category`` within ``radius_m`` of a point, nearest first."""
    rows = [r for r in uow.requests.query(RequestFilter(categories=[category],
                                                        statuses=list(OPEN_STATUSES),
                                                        located=True))
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


def _new_external_id(now: datetime) -> str:
    """Return a new intake id, e.g. ``CS-20200103-4F9A2C``.

    Random, so app instances sharing a database never hand out the same one.
    """
    return f"CS-{now:%Y%m%d}-{secrets.token_hex(3).upper()}"


def create_request(
    uow: UnitOfWork, pack: CityPack, form: IntakeForm, *, duplicate_of: int | None = None,
) -> int:
    """Save a request taken by phone (or web form); return its id.

    With ``duplicate_of`` the new request is recorded as a duplicate of that open
    request (both are closed together later) instead of becoming new work.

    Raises
    ------
    DispatchError
        For an unknown category, empty or oversize text, or a pin outside the city.
    """
    require(uow.principal, *SUPERVISING, action="take requests")
    category = pack.categories.get(form.category)
    if category is None:
        raise DispatchError(
            f"category {form.category!r} is not one of {sorted(pack.categories)}")
    address = form.address.strip()
    if not address and form.lon is None:
        raise DispatchError("address is empty and no pin was placed; give one or the other")
    if len(address) > MAX_ADDRESS_CHARS:
        raise DispatchError(f"address has {len(address)} characters; at most {MAX_ADDRESS_CHARS}")
    if len(form.description) > MAX_DESCRIPTION_CHARS:
        raise DispatchError(f"description has {len(form.description)} characters; "
                            f"at most {MAX_DESCRIPTION_CHARS}")
    district = None
    if form.lon is not None and form.lat is not None:
        if not (math.isfinite(form.lon) and math.isfinite(form.lat)):
            raise DispatchError(f"pin ({form.lon}, {form.lat}) is not a finite position")
        if not pack.within_city(np.array([form.lon]), np.array([form.lat]), 200.0)[0]:
            raise DispatchError(
                f"pin lon={form.lon:.5f} lat={form.lat:.5f} is outside {pack.display_name}")
        found = pack.assign_districts(np.array([form.lon]), np.array([form.lat]))[0]
        district = None if found is None else str(found)
    now = utcnow()
    original = None
    if duplicate_of is not None:
        original = uow.requests.get(duplicate_of)
        if original is None:
            raise NotFoundError(f"request {duplicate_of} does not exist")
    external_id = _new_external_id(now)
    uow.requests.insert_many([{
        "source": "intake", "external_id": external_id,
        "service_code": category.service_codes[0] if category.service_codes else category.code,
        "category": category.code, "description": form.description.strip(),
        "address": address, "zipcode": form.zipcode.strip()[:10],
        "lon": form.lon, "lat": form.lat,
        "geocode_precision": form.geocode_precision if form.lon is not None else "none",
        "geocode_confidence": form.geocode_confidence if form.lon is not None else 0.0,
        "matched_address": form.matched_address, "district": district,
        "channel": form.channel.value,
        "status": (RequestStatus.DUPLICATE if original else RequestStatus.NEW).value,
        "requested_at": now, "updated_at": now, "closed_at": None,
        "expected_at": None, "service_date": None, "assigned_org": "",
        "priority": 0, "size": 1, "extra": {},
        "caller_name": form.caller_name.strip() or None,
        "caller_phone": form.caller_phone.strip() or None,
        "caller_email": form.caller_email.strip() or None,
        "duplicate_of_id": original.id if original else None,
    }])
    pk = uow.requests.pks_by_external_id([external_id])[external_id]
    uow.events.append("request", pk, "created", {"channel": form.channel.value,
                                                 "category": category.code})
    if original is not None:
        uow.events.append("request", pk, "marked_duplicate", {"of": original.external_id})
    uow.commit()
    return pk


def _rows(
    uow: UnitOfWork, pks: Sequence[int], expected: Mapping[int, int] | None = None
) -> list[RequestRow]:
    rows = uow.requests.by_ids(pks)
    missing = sorted(set(pks) - {r.id for r in rows})
    if missing:
        raise NotFoundError(f"requests {missing} do not exist")
    check_versions(uow, rows, expected)
    return rows


def change_category(
    uow: UnitOfWork, pack: CityPack, pks: Sequence[int], category: str,
    *,
    expected: Mapping[int, int] | None = None,
) -> int:
    """Move requests to another category; return how many changed."""
    require(uow.principal, *SUPERVISING, action="triage requests")
    cat = pack.categories.get(category)
    if cat is None:
        raise DispatchError(f"category {category!r} is not one of {sorted(pack.categories)}")
    changed = 0
    for row in _rows(uow, pks, expected):
        if row.category != category:
            uow.events.append("request", row.id, "category_changed",
                              {"from": row.category, "to": category})
            row.category = category
            row.service_code = cat.service_codes[0] if cat.service_codes else category
            row.updated_at = utcnow()
            changed += 1
    uow.commit()
    return changed


def set_priority(
    uow: UnitOfWork, pks: Sequence[int], priority: int,
    *,
    expected: Mapping[int, int] | None = None,
) -> int:
    """Set the priority of requests (0 normal, 1 high, 2 urgent); return how many changed."""
    require(uow.principal, *SUPERVISING, action="triage requests")
    if priority not in PRIORITIES:
        raise DispatchError(f"priority {priority} is not one of {sorted(PRIORITIES)}")
    changed = 0
    for row in _rows(uow, pks, expected):
        if row.priority != priority:
            uow.events.append("request", row.id, "priority_set",
                              {"from": row.priority, "to": priority})
            row.priority = priority
            row.updated_at = utcnow()
            changed += 1
    uow.commit()
    return changed


def cancel(
    uow: UnitOfWork, pks: Sequence[int], reason: str,
    *,
    expected: Mapping[int, int] | None = None,
) -> int:
    """Cancel open requests with a reason; return how many were cancelled."""
    require(uow.principal, *SUPERVISING, action="cancel requests")
    reason = reason.strip()
    if not reason:
        raise DispatchError("a cancellation needs a reason")
    count = 0
    now = utcnow()
    for row in _rows(uow, pks, expected):
        if RequestStatus(row.status) in CLOSED_STATUSES:
            raise InvalidTransitionError(
                f"request {row.external_id} is already {row.status}; only open requests "
                "can be cancelled")
        row.status, row.closed_at, row.updated_at = RequestStatus.CANCELLED.value, now, now
        uow.events.append("request", row.id, "cancelled", {"reason": reason})
        count += 1
    uow.commit()
    return count


def mark_duplicate(
    uow: UnitOfWork, pks: Sequence[int], of_pk: int,
    *,
    expected: Mapping[int, int] | None = None,
) -> int:
    """Mark requests as duplicates of another; they close when it closes."""
    require(uow.principal, *SUPERVISING, action="triage requests")
    original = uow.requests.get(of_pk)
    if original is None:
        raise NotFoundError(f"request {of_pk} does not exist")
    if of_pk in pks:
        raise DispatchError(f"request {original.external_id} cannot be a duplicate of itself")
    count = 0
    for row in _rows(uow, pks, expected):
        row.status = RequestStatus.DUPLICATE.value
        row.duplicate_of_id = of_pk
        row.updated_at = utcnow()
        uow.events.append("request", row.id, "marked_duplicate", {"of": original.external_id})
        count += 1
    uow.commit()
    return count


def fix_location(
    uow: UnitOfWork, pack: CityPack, pk: int, lon: float, lat: float, *, how: str,
    matched_address: str | None = None,
) -> str | None:
    """Set a request's position by hand (candidate chosen, address retyped, map click).

    Returns the district the new position falls in.
    """
    require(uow.principal, *SUPERVISING, action="fix locations")
    row = uow.requests.get(pk)
    if row is None:
        raise NotFoundError(f"request {pk} does not exist")
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise DispatchError(f"position ({lon}, {lat}) is not finite")
    if not pack.within_city(np.array([lon]), np.array([lat]), 200.0)[0]:
        raise DispatchError(f"position lon={lon:.5f} lat={lat:.5f} is outside "
                            f"{pack.display_name}")
    found = pack.assign_districts(np.array([lon]), np.array([lat]))[0]
    district = None if found is None else str(found)
    uow.events.append("request", pk, "location_fixed", {
        "how": how, "from": [row.lon, row.lat], "to": [lon, lat],
        "precision_before": row.geocode_precision, "district": district,
    })
    row.lon, row.lat, row.district = lon, lat, district
    row.geocode_precision, row.geocode_confidence = "manual", 1.0
    row.matched_address = matched_address
    row.updated_at = utcnow()
    uow.commit()
    return district


#: Default number of days residents' contact details are kept after a request closes.
DEFAULT_RETENTION_DAYS = 90


def anonymise_personal_data(uow: UnitOfWork, older_than_days: int = DEFAULT_RETENTION_DAYS,
                            ) -> int:
    """Erase caller name, phone and email of requests closed more than N days ago.

    Open requests keep them (the crew or the call center may still need to call back).
    Returns how many requests were anonymised; each gets an event.
    """
    require(uow.principal, Role.ADMIN, action="anonymise personal data")
    if older_than_days < 0:
        raise DispatchError(f"older_than_days {older_than_days} is negative")
    cutoff = utcnow() - timedelta(days=older_than_days)
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


def caller_details(uow: UnitOfWork, pk: int) -> dict[str, str | None]:
    """Return the caller's contact details, for supervisors and admins only."""
    if not uow.principal.sees_personal_data:
        raise AccessDeniedError(f"{uow.principal.actor} may not see residents' contact details")
    row = uow.requests.get(pk)
    if row is None:
        raise NotFoundError(f"request {pk} does not exist")
    return {"name": row.caller_name, "phone": row.caller_phone, "email": row.caller_email}
