"""The daily workflow: adjust a draft plan, assign it to crews, crews work their stops.

Every function takes a unit of work, checks what the caller may do, records each state
change in the event log and commits once. Plans carry a version: a change made on a
stale version fails with :class:`~dispatch.errors.ConcurrentEditError` naming who
changed it and when, instead of silently overwriting their work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from dispatch.auth import READING, SUPERVISING, require, require_crew
from dispatch.citypack import CityPack
from dispatch.errors import (
    AccessDeniedError,
    InvalidTransitionError,
    NotFoundError,
    PlanningError,
)
from dispatch.model import CLOSED_STATUSES, RequestStatus, is_routable
from dispatch.planning import Lock, Plan, replan
from dispatch.planning.problem import stop_from_request
from dispatch.services.concurrency import check_version
from dispatch.services.planning import MORNING, route_rows
from dispatch.store import UnitOfWork, utcnow
from dispatch.store.models import PlanRow, RouteRow, StopRow

#: Why a crew could not complete a stop (code -> label shown to crews).
CANT_COMPLETE_REASONS: dict[str, str] = {
    "not_out": "Item not out",
    "blocked": "Blocked / no access",
    "hazardous": "Hazardous material",
    "too_large": "Too large for the truck",
    "excluded_item": "Excluded item",
    "other": "Other",
}

#: Stop statuses a crew moves through.
STOP_PENDING, STOP_ARRIVED, STOP_DONE, STOP_CANT = "pending", "arrived", "done", "cant_complete"

#: Largest photo accepted from a crew, in bytes.
MAX_PHOTO_BYTES = 8 * 1024 * 1024
_PHOTO_TYPES = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png"}


# ----------------------------------------------------------------------------- views


@dataclass(frozen=True)
class StopView:
    """A stop as pages show it (joined with its request)."""

    stop_id: int
    sequence: int
    request_pk: int
    request_id: str
    category: str
    service_code: str
    address: str
    description: str
    lon: float | None
    lat: float | None
    eta: datetime | None
    departure: datetime | None
    status: str
    locked: bool
    reason: str | None
    note: str | None
    navigation_url: str


@dataclass(frozen=True)
class RouteView:
    """A crew's route with its stops."""

    route_id: int
    plan_id: int
    plan_status: str
    crew: str
    district: str | None
    distance_m: int
    drive_s: int
    service_s: int
    load: int
    capacity: int
    stops: tuple[StopView, ...]
    notice: str | None = None

    @property
    def next_stop(self) -> StopView | None:
        """Return the first stop not yet done or abandoned."""
        for stop in self.stops:
            if stop.status in (STOP_PENDING, STOP_ARRIVED):
                return stop
        return None


@dataclass
class PlanChange:
    """What a re-plan changed for each crew (stops added and removed)."""

    added: dict[str, list[str]] = field(default_factory=dict)
    removed: dict[str, list[str]] = field(default_factory=dict)

    def crews(self) -> list[str]:
        """Return the crews whose route changed."""
        return sorted(set(self.added) | set(self.removed))


def navigation_url(lon: float | None, lat: float | None) -> str:
    """Return a one-tap directions link (Google Maps ``destination=LAT,LON``)."""
    if lon is None or lat is None:
        return ""
    # the URL wants (lat, lon): (lon, lat) -> (lat, lon)
    return f"https://www.google.com/maps/dir/?api=1&destination={lat:.6f},{lon:.6f}"


# --------------------------------------------------------------------------- helpers


def _plan_row(uow: UnitOfWork, plan_id: int) -> PlanRow:
    row = uow.plans.get(plan_id)
    if row is None:
        raise NotFoundError(f"plan {plan_id} does not exist")
    return row


def _check_version(uow: UnitOfWork, row: PlanRow, expected_version: int | None) -> None:
    check_version(uow, "plan", row, expected_version, f"plan {row.id}")


def _locks(row: PlanRow) -> list[Lock]:
    return [Lock(d["request_id"], d["crew"], d.get("position"))
            for d in row.payload.get("locks", [])]


def _stop_states(row: PlanRow) -> dict[int, StopRow]:
    return {s.request_id: s for r in row.routes for s in r.stops}


def _rebuild(uow: UnitOfWork, row: PlanRow, plan: Plan, locks: Sequence[Lock]) -> PlanChange:
    """Replace the plan's routes and stops by ``plan``, keeping what crews recorded."""
    before = {r.crew_name: [s.request_id for s in r.stops] for r in row.routes}
    states = _stop_states(row)
    new_rows = route_rows(uow, plan, states, {lk.request_id for lk in locks})
    row.routes.clear()
    uow.flush()
    row.routes.extend(new_rows)
    payload = plan.to_dict()
    payload["locks"] = [{"request_id": lk.request_id, "crew": lk.crew, "position": lk.position}
                        for lk in locks]
    row.payload = payload
    uow.flush()
    after = {r.crew_name: [s.request_id for s in r.stops] for r in row.routes}
    names = uow.requests.external_ids(pk for pks in (*before.values(), *after.values())
                                      for pk in pks)
    change = PlanChange()
    for crew in set(before) | set(after):
        old_set, new_set = set(before.get(crew, [])), set(after.get(crew, []))
        if new_set - old_set:
            change.added[crew] = sorted(names[pk] for pk in new_set - old_set)
        if old_set - new_set:
            change.removed[crew] = sorted(names[pk] for pk in old_set - new_set)
    return change


def _apply_replan(
    uow: UnitOfWork,
    plan_id: int,
    action: str,
    details: dict[str, Any],
    *,
    expected_version: int | None,
    confirm: bool,
    locks: Sequence[Lock] | None = None,
    hold_others: bool = False,
    **replan_args: Any,
) -> PlanChange:
    require(uow.principal, *SUPERVISING, action="change plans")
    row = _plan_row(uow, plan_id)
    _check_version(uow, row, expected_version)
    if row.status == "superseded":
        raise InvalidTransitionError(f"plan {plan_id} is superseded; open the newest plan")
    if row.status == "assigned" and not confirm:
        raise InvalidTransitionError(
            f"plan {plan_id} is already assigned to crews; confirm to re-plan it "
            "(the crews will be told what changed)"
        )
    current = Plan.from_dict(row.payload)
    all_locks = list(locks if locks is not None else _locks(row))
    # Stops a crew has reached or finished stay where they are.
    started = {s.request_id for r in row.routes for s in r.stops if s.status != STOP_PENDING}
    if started:
        names = uow.requests.external_ids(started)
        worked = {names[pk] for pk in started}
        all_locks = [lk for lk in all_locks if lk.request_id not in worked]
        all_locks += [Lock(p.request_id, r.crew, i) for r in current.routes
                      for i, p in enumerate(r.stops) if p.request_id in worked]
    solver_locks = list(all_locks)
    if hold_others:
        # A supervisor's one change stays one change: every other stop keeps its crew
        # for this re-plan (only the order of the affected routes is re-optimised);
        # these holds are not saved as locks.
        pinned = {lk.request_id for lk in solver_locks} | set(replan_args.get("moves") or {})
        solver_locks += [Lock(p.request_id, r.crew, None) for r in current.routes
                         for p in r.stops if p.request_id not in pinned]
    new_plan = replan(current, locks=solver_locks, **replan_args)
    moves = replan_args.get("moves") or {}
    for rid, crew in moves.items():
        all_locks = [lk for lk in all_locks if lk.request_id != rid]
        all_locks.append(Lock(rid, crew, None))
    change = _rebuild(uow, row, new_plan, all_locks)
    uow.events.append("plan", plan_id, action, {**details, "changed_crews": change.crews()})
    if row.status == "assigned":
        for crew in change.crews():
            uow.events.append("crew", crew, "route_changed", {
                "plan_id": plan_id, "added": change.added.get(crew, []),
                "removed": change.removed.get(crew, []),
            })
        _schedule_requests(uow, row)
    uow.commit()
    return change


# --------------------------------------------------------------------- supervisor


def plans_for_day(uow: UnitOfWork, city: str, day: date) -> list[PlanRow]:
    """Return the city's plans for ``day``, newest first."""
    require(uow.principal, *READING, action="see plans")
    return uow.plans.for_date(city, day)


def move_stop(
    uow: UnitOfWork,
    plan_id: int,
    request_id: str,
    to_crew: str,
    *,
    position: int | None = None,
    expected_version: int | None = None,
    confirm: bool = False,
) -> PlanChange:
    """Move a stop to another crew (optionally to a 0-based position).

    Every other stop keeps its crew; the two routes are re-sequenced around the change.
    Use :func:`reoptimise` to let the solver redistribute unlocked stops.
    """
    row = _plan_row(uow, plan_id)
    locks = [lk for lk in _locks(row) if lk.request_id != request_id]
    locks.append(Lock(request_id, to_crew, position))
    return _apply_replan(
        uow, plan_id, "stop_moved",
        {"request_id": request_id, "to_crew": to_crew, "position": position},
        expected_version=expected_version, confirm=confirm, locks=locks,
        hold_others=True, moves={request_id: to_crew},
    )


def set_lock(
    uow: UnitOfWork,
    plan_id: int,
    request_id: str,
    locked: bool,
    *,
    keep_position: bool = False,
    expected_version: int | None = None,
) -> None:
    """Lock a stop to its crew (and optionally its position), or unlock it."""
    require(uow.principal, *SUPERVISING, action="lock stops")
    row = _plan_row(uow, plan_id)
    _check_version(uow, row, expected_version)
    plan = Plan.from_dict(row.payload)
    where = {p.request_id: (r.crew, i) for r in plan.routes for i, p in enumerate(r.stops)}
    if request_id not in where:
        raise NotFoundError(f"request {request_id} is not on a route of plan {plan_id}")
    crew, index = where[request_id]
    locks = [lk for lk in _locks(row) if lk.request_id != request_id]
    if locked:
        locks.append(Lock(request_id, crew, index if keep_position else None))
    payload = dict(row.payload)
    payload["locks"] = [{"request_id": lk.request_id, "crew": lk.crew, "position": lk.position}
                        for lk in locks]
    row.payload = payload
    pk = uow.requests.pks_by_external_id([request_id]).get(request_id)
    for route in row.routes:
        for stop in route.stops:
            if stop.request_id == pk:
                stop.locked = locked
    uow.events.append("plan", plan_id, "stop_locked" if locked else "stop_unlocked",
                      {"request_id": request_id, "crew": crew,
                       "position": index if locked and keep_position else None})
    uow.commit()


def reoptimise(
    uow: UnitOfWork, plan_id: int, *, expected_version: int | None = None, confirm: bool = False
) -> PlanChange:
    """Re-optimise every route of the plan except what is locked."""
    require(uow.principal, *SUPERVISING, action="change plans")
    row = _plan_row(uow, plan_id)
    crews = [r.crew_name for r in row.routes]
    moves = {lk.request_id: lk.crew for lk in _locks(row)}
    if not moves and crews:
        # touch every group: pin nothing, re-solve by moving nothing anywhere
        plan = Plan.from_dict(row.payload)
        first = next((p for r in plan.routes for p in r.stops), None)
        if first is None:
            return PlanChange()
        owner = next(r.crew for r in plan.routes if first in r.stops)
        moves = {first.request_id: owner}
    return _apply_replan(uow, plan_id, "reoptimised", {}, expected_version=expected_version,
                         confirm=confirm, moves=moves)


def remove_crew(
    uow: UnitOfWork, plan_id: int, crew: str, *, expected_version: int | None = None,
    confirm: bool = False,
) -> PlanChange:
    """Take a crew out of the plan (breakdown, sickness); its stops are re-planned."""
    return _apply_replan(uow, plan_id, "crew_removed", {"crew": crew},
                         expected_version=expected_version, confirm=confirm,
                         remove_crews=[crew])


def add_urgent_request(
    uow: UnitOfWork, pack: CityPack, plan_id: int, request_pk: int, *,
    expected_version: int | None = None, confirm: bool = False,
) -> PlanChange:
    """Add an urgent request to the day's plan (it goes first in line)."""
    require(uow.principal, *SUPERVISING, action="change plans")
    req_row = uow.requests.get(request_pk)
    if req_row is None:
        raise NotFoundError(f"request {request_pk} does not exist")
    req = req_row.to_domain()
    category = pack.categories.get(req.category)
    if category is None or not category.routable:
        raise PlanningError(f"request {req.external_id} ({req.category}) is not routable")
    if not is_routable(req.geocode_precision, req.geocode_confidence):
        raise PlanningError(
            f"request {req.external_id} has no trustworthy location "
            f"(precision {req.geocode_precision}); fix its location first"
        )
    row = _plan_row(uow, plan_id)
    day = row.service_date
    now = datetime.combine(day, MORNING, tzinfo=pack.timezone)
    stop = stop_from_request(req, category, now, day)
    from dataclasses import replace

    stop = replace(stop, urgency=max(stop.urgency, 10.0))
    return _apply_replan(uow, plan_id, "urgent_added", {"request_id": req.external_id},
                         expected_version=expected_version, confirm=confirm, add=[stop])


def _schedule_requests(uow: UnitOfWork, row: PlanRow) -> None:
    """Mark the requests on the plan's routes as scheduled.

    Stops the crews already finished keep their outcome. A request the store records
    as closed is reopened as scheduled only because the planner took it as open on the
    plan's morning: that is a replay of a past day, and the event says so.
    """
    pks = [s.request_id for r in row.routes for s in r.stops
           if s.status in (STOP_PENDING, STOP_ARRIVED)]
    now = utcnow()
    events: list[tuple[str, str | int, str, dict[str, Any]]] = []
    for req in uow.requests.by_ids(pks):
        current = RequestStatus(req.status)
        if current in (RequestStatus.SCHEDULED, RequestStatus.IN_PROGRESS):
            continue
        details: dict[str, Any] = {"plan_id": row.id, "from": current.value}
        if current in CLOSED_STATUSES:
            details["replay"] = (f"recorded as {current.value}; open on the morning of "
                                 f"{row.service_date.isoformat()}")
        req.status = RequestStatus.SCHEDULED.value
        req.closed_at = None
        req.updated_at = now
        events.append(("request", req.id, "scheduled", details))
    uow.events.append_many(events)


def assign_plan(
    uow: UnitOfWork, plan_id: int, *, expected_version: int | None = None
) -> list[str]:
    """Assign a draft plan: each route becomes its crew's work for the day.

    Other plans of the same city and day are marked superseded. Requests on the routes
    become ``scheduled``. Returns the crews that received a route.
    """
    require(uow.principal, *SUPERVISING, action="assign plans")
    row = _plan_row(uow, plan_id)
    _check_version(uow, row, expected_version)
    if row.status != "draft":
        raise InvalidTransitionError(f"plan {plan_id} is {row.status}; only a draft is assigned")
    for other in uow.plans.for_date(row.city, row.service_date):
        if other.id != row.id and other.status == "assigned":
            other.status = "superseded"
            uow.events.append("plan", other.id, "superseded", {"by": plan_id})
    row.status = "assigned"
    _schedule_requests(uow, row)
    crews = [r.crew_name for r in row.routes if r.stops]
    uow.events.append("plan", plan_id, "assigned", {"crews": crews})
    uow.events.append_many(
        ("route", r.id, "assigned", {"crew": r.crew_name, "stops": len(r.stops)})
        for r in row.routes if r.stops
    )
    uow.commit()
    return crews


def route_view(uow: UnitOfWork, route: RouteRow, capacity: int = 0) -> RouteView:
    """Return a route joined with its requests."""
    stops = []
    for s in route.stops:
        req = uow.requests.get(s.request_id)
        assert req is not None
        stops.append(StopView(
            stop_id=s.id, sequence=s.sequence, request_pk=req.id, request_id=req.external_id,
            category=req.category, service_code=req.service_code, address=req.address,
            description=req.description, lon=req.lon, lat=req.lat, eta=s.eta,
            departure=s.departure, status=s.status, locked=s.locked, reason=s.reason,
            note=s.note, navigation_url=navigation_url(req.lon, req.lat),
        ))
    payload_route: dict[str, Any] = next((r for r in route.plan.payload.get("routes", [])
                          if r.get("crew") == route.crew_name), {})
    return RouteView(
        route_id=route.id, plan_id=route.plan_id, plan_status=route.plan.status,
        crew=route.crew_name, district=route.district, distance_m=route.distance_m,
        drive_s=route.drive_s, service_s=route.service_s, load=route.load,
        capacity=int(payload_route.get("capacity", capacity)), stops=tuple(stops),
    )


# --------------------------------------------------------------------------- crews


def crew_route(uow: UnitOfWork, city: str, day: date, crew: str) -> RouteView | None:
    """Return the crew's assigned route for ``day`` (``None`` when it has none).

    Only the crew's own route is returned; no other crew's stops are reachable here:
    a crew member asking for another crew's route is refused.
    """
    require_crew(uow.principal, crew)
    for row in uow.plans.for_date(city, day):
        if row.status != "assigned":
            continue
        for route in row.routes:
            if route.crew_name == crew:
                view = route_view(uow, route)
                events = [e for e in uow.events.for_entity("crew", crew)
                          if e.details.get("plan_id") == row.id]
                if events and events[-1].action == "route_changed":
                    view = RouteView(**{**view.__dict__,
                                        "notice": _notice(events[-1].details)})
                return view
    return None


def acknowledge_route_change(uow: UnitOfWork, crew: str, plan_id: int) -> None:
    """Record that the crew has seen the supervisor's change; the notice goes away."""
    require_crew(uow.principal, crew, action="acknowledge changes")
    uow.events.append("crew", crew, "route_change_seen", {"plan_id": plan_id})
    uow.commit()


def _notice(details: dict[str, Any]) -> str:
    parts = []
    for key in ("added", "removed"):
        ids = details.get(key) or []
        if ids:
            shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
            parts.append(f"{key} {len(ids)} stop{'s' if len(ids) != 1 else ''} ({shown})")
    return "Your route was changed by the supervisor: " + "; ".join(parts)


def _crew_stop(uow: UnitOfWork, stop_id: int, crew: str) -> StopRow:
    require_crew(uow.principal, crew, action="work the stops")
    stop = uow.plans.stop(stop_id)
    if stop is None:
        raise NotFoundError(f"stop {stop_id} does not exist")
    if stop.route.crew_name != crew:
        raise AccessDeniedError(f"stop {stop_id} is not on the route of crew {crew}")
    if stop.route.plan.status != "assigned":
        raise InvalidTransitionError(f"stop {stop_id} belongs to a plan that is not assigned")
    return stop


def record_arrival(uow: UnitOfWork, stop_id: int, crew: str) -> None:
    """Record that the crew is at the stop."""
    stop = _crew_stop(uow, stop_id, crew)
    if stop.status != STOP_PENDING:
        raise InvalidTransitionError(f"stop {stop_id} is {stop.status}; expected pending")
    stop.status = STOP_ARRIVED
    req = uow.requests.get(stop.request_id)
    assert req is not None
    req.status = RequestStatus.IN_PROGRESS.value
    req.updated_at = utcnow()
    uow.events.append("stop", stop_id, "arrived", {"crew": crew, "request": req.external_id})
    uow.commit()


def complete_stop(
    uow: UnitOfWork, stop_id: int, crew: str, *, note: str | None = None,
) -> None:
    """Record that the crew fixed it: stop done, request completed (Open311 closed)."""
    _finish_stop(uow, stop_id, crew, STOP_DONE, RequestStatus.COMPLETED, None, note)


def cannot_complete(
    uow: UnitOfWork, stop_id: int, crew: str, reason: str, *, note: str | None = None,
) -> None:
    """Record that the crew could not do it: request closed-not-fixed, with the reason."""
    if reason not in CANT_COMPLETE_REASONS:
        raise InvalidTransitionError(
            f"reason {reason!r} is not one of {sorted(CANT_COMPLETE_REASONS)}"
        )
    _finish_stop(uow, stop_id, crew, STOP_CANT, RequestStatus.CLOSED_NOT_FIXED, reason, note)


def _finish_stop(
    uow: UnitOfWork, stop_id: int, crew: str, stop_status: str, req_status: RequestStatus,
    reason: str | None, note: str | None,
) -> None:
    stop = _crew_stop(uow, stop_id, crew)
    if stop.status not in (STOP_PENDING, STOP_ARRIVED):
        raise InvalidTransitionError(f"stop {stop_id} is already {stop.status}")
    if note is not None and len(note) > 2000:
        raise InvalidTransitionError(f"note has {len(note)} characters; at most 2000")
    now = utcnow()
    stop.status, stop.reason, stop.note, stop.completed_at = stop_status, reason, note, now
    req = uow.requests.get(stop.request_id)
    assert req is not None
    req.status = req_status.value
    req.updated_at = now
    req.closed_at = now
    uow.events.append("stop", stop_id, stop_status,
                      {"crew": crew, "request": req.external_id, "reason": reason})
    uow.events.append("request", req.id, req_status.value,
                      {"by_crew": crew, "reason": reason, "note": note})
    uow.commit()


def attach_photo(
    uow: UnitOfWork, stop_id: int, crew: str, data: bytes, photo_dir: Path
) -> Path:
    """Keep a crew's photo with the stop's request; JPEG or PNG up to 8 MB."""
    stop = _crew_stop(uow, stop_id, crew)
    if len(data) > MAX_PHOTO_BYTES:
        raise InvalidTransitionError(
            f"photo is {len(data) / 1e6:.1f} MB; at most {MAX_PHOTO_BYTES / 1e6:.0f} MB")
    suffix = next((s for magic, s in _PHOTO_TYPES.items() if data.startswith(magic)), None)
    if suffix is None:
        raise InvalidTransitionError("photo is not a JPEG or PNG image")
    req = uow.requests.get(stop.request_id)
    assert req is not None
    folder = photo_dir / str(req.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"stop{stop_id}-{len(list(folder.iterdir())) + 1}{suffix}"
    path.write_bytes(data)
    extra = dict(req.extra or {})
    extra["photos"] = [*extra.get("photos", []), str(path)]
    req.extra = extra
    uow.events.append("request", req.id, "photo_added", {"by_crew": crew, "path": str(path)})
    uow.commit()
    return path
