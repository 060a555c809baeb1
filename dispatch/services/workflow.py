"""The daily workflow: adjust a plan, assign it to crews, crews work their stops.

Every function takes a unit of work, checks who is calling, records each change in the
event log and commits once. The rules that keep work from being lost:

* A plan is its rows (:mod:`dispatch.store.plans`); stops reference requests by
  primary key. A re-plan moves and re-times stop rows in place, so a stop keeps its id
  and what a crew recorded on it, and it refuses to take a worked stop off its route.
* Re-planning reads the plan, solves without holding any lock, then takes the write
  lock and checks that nothing changed meanwhile (a crew closing a stop, another
  supervisor's edit); if something did, nothing is written and the caller is told who
  changed what, and when.
* Assigning first works out what will change (:func:`preview_assignment`): plans
  superseded, crews gaining or losing a route, stops moving, started routes carried
  over. A route a crew started is never superseded. The database holds one claim per
  district and per crew for each day, so two app instances cannot both assign.
* A request the source records as closed keeps its status and close time when a
  replayed day schedules it or a crew works it: the stop rows carry the day's work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from dispatch.assignment import Assignment, PlanFact, RouteFact, StopFact, plan_assignment
from dispatch.auth import READING, SUPERVISING, WORKING, require_crew, service
from dispatch.citypack import CityPack
from dispatch.errors import (
    AccessDeniedError,
    ConcurrentEditError,
    InvalidTransitionError,
    NotFoundError,
    PlanningError,
    ValidationError,
)
from dispatch.model import CLOSED_STATUSES, RequestStatus, is_routable
from dispatch.ownership import OWNER_SOURCE, OWNER_WORKFLOW
from dispatch.planning import Lock, Plan, Reason, ReasonKind, replan
from dispatch.planning.plan import Unplanned
from dispatch.planning.problem import stop_from_request
from dispatch.planning.targets import rank_move_targets
from dispatch.services._versions import check_version, last_change
from dispatch.services.planning import MORNING
from dispatch.state import (
    PLAN_TRANSITIONS,
    REQUEST_STATUS_OF_STOP,
    REQUEST_TRANSITIONS,
    ROUTE_TRANSITIONS,
    STOP_TRANSITIONS,
    PlanStatus,
    RouteStatus,
    StopStatus,
    check_transition,
    route_status_of,
)
from dispatch.store import PlanVersions, UnitOfWork
from dispatch.store.plans import (
    locks_of,
    plan_from_rows,
    request_pk,
    stop_key,
    sync_plan_rows,
    sync_unplanned,
    worked_locks,
)

#: Why a crew could not complete a stop (code -> label shown to crews).
CANT_COMPLETE_REASONS: dict[str, str] = {
    "not_out": "Item not out",
    "blocked": "Blocked / no access",
    "hazardous": "Hazardous material",
    "too_large": "Too large for the truck",
    "excluded_item": "Excluded item",
    "other": "Other",
}

#: Stop statuses a crew moves through (the values of :class:`~dispatch.state.StopStatus`).
STOP_PENDING = StopStatus.PENDING.value
STOP_ARRIVED = StopStatus.ARRIVED.value
STOP_DONE = StopStatus.DONE.value
STOP_CANT = StopStatus.CANT_COMPLETE.value

#: Largest photo accepted from a crew, in bytes.
MAX_PHOTO_BYTES = 8 * 1024 * 1024
#: Longest crew note, in characters.
MAX_NOTE_CHARS = 2000
#: How long after a tap a crew may undo *Done* or *Can't complete*.
UNDO_WINDOW = timedelta(minutes=10)
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
    status_at: datetime | None = None
    #: District of the stop (as planned), ``None`` when it lies in none.
    district: str | None = None


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
    status: str = RouteStatus.PLANNED.value
    #: The driven path, ``(lon, lat)`` points along the roads, when the plan's travel
    #: model followed a road network; ``None`` for straight legs between stops.
    geometry: tuple[tuple[float, float], ...] | None = None

    @property
    def next_stop(self) -> StopView | None:
        """Return the first stop not yet done or abandoned."""
        for stop in self.stops:
            if stop.status in (STOP_PENDING, STOP_ARRIVED):
                return stop
        return None


@dataclass
class PlanChange:
    """What a change did to each crew's route (request ids added and removed)."""

    added: dict[str, list[str]] = field(default_factory=dict)
    removed: dict[str, list[str]] = field(default_factory=dict)

    def crews(self) -> list[str]:
        """Return the crews whose route changed."""
        return sorted(set(self.added) | set(self.removed))

    def named(self, most: int = 4) -> str:
        """Return the crews whose route changed in one short line, naming at most ``most``.

        Examples
        --------
        >>> PlanChange(added={"A": ["1"], "B": ["2"]}).named()
        'A, B'
        >>> PlanChange(added={c: ["1"] for c in "ABCDEF"}).named()
        '6 crews: A, B, C and 3 more'
        """
        crews = self.crews()
        if len(crews) <= most:
            return ", ".join(crews)
        return f"{len(crews)} crews: {', '.join(crews[:most - 1])} and {len(crews) - most + 1} more"


@dataclass(frozen=True)
class PlanDetails:
    """A stored plan as the plan page shows it.

    ``plan`` has the request primary keys (as text) as stop keys; ``labels`` maps each
    primary key to the city's request id and address.
    """

    plan_id: int
    status: str
    version: int
    districts: tuple[str, ...]
    plan: Plan
    locked: frozenset[int]
    stop_status: Mapping[int, str]
    labels: Mapping[int, tuple[str, str, str]]
    created_by: str
    created_at: datetime
    #: Crews taken out of the plan that keep a route for the stops they already worked.
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class HeldStop:
    """A stop that holds a crew: a supervisor's lock, or work the crew recorded.

    ``releasable`` is true for a lock a supervisor may release; a stop the crew already
    reached or finished is never moved (``releasable`` false).
    """

    request_pk: int
    request_id: str
    address: str
    category: str
    sequence: int
    status: str
    releasable: bool
    why: str


def navigation_url(lon: float | None, lat: float | None) -> str:
    """Return a one-tap directions link (Google Maps ``destination=LAT,LON``)."""
    if lon is None or lat is None:
        return ""
    # the URL wants (lat, lon): (lon, lat) -> (lat, lon)
    return f"https://www.google.com/maps/dir/?api=1&destination={lat:.6f},{lon:.6f}"


# --------------------------------------------------------------------------- helpers


def _plan_row(uow: UnitOfWork, plan_id: int, *, for_update: bool = False) -> Any:
    row = uow.plans.get(plan_id, for_update=for_update)
    if row is None:
        raise NotFoundError(f"plan {plan_id} does not exist")
    return row


def _check_version(uow: UnitOfWork, row: Any, expected_version: int | None) -> None:
    check_version(uow, "plan", row, expected_version, f"plan {row.id}")


def _route_facts(row: Any) -> tuple[RouteFact, ...]:
    return tuple(
        RouteFact(r.id, r.crew_name, tuple(StopFact(s.id, s.request_id, StopStatus(s.status),
                                                    s.version) for s in r.stops))
        for r in row.routes if r.status != RouteStatus.SUPERSEDED.value)


def _facts(row: Any) -> PlanFact:
    return PlanFact(row.id, row.version, frozenset(row.districts or ()), _route_facts(row))


def _changed_since(uow: UnitOfWork, row: Any, seen: PlanVersions) -> str | None:
    """Return who changed the plan or one of its stops since ``seen`` was taken."""
    if row.version != seen.version:
        who, when = last_change(uow, "plan", row.id)
        return f"plan {row.id} was changed by {who} at {when}"
    now = {s.id: (s, s.status, s.version) for r in row.routes for s in r.stops}
    for stop_id, status, version in seen.stops:
        current = now.get(stop_id)
        if current is None:
            return f"stop {stop_id} was taken off the plan by someone else"
        stop, new_status, new_version = current
        if (new_status, new_version) != (status, version):
            who = stop.status_by or "someone"
            when = (f"{stop.status_at:%H:%M:%S} UTC" if stop.status_at
                    else "an unknown time")
            label = uow.requests.external_ids([stop.request_id]).get(stop.request_id, "")
            return (f"{who} recorded stop {stop.sequence} ({label}) as {new_status} at "
                    f"{when}")
    if set(now) - {stop_id for stop_id, _, _ in seen.stops}:
        return "stops were added to the plan by someone else"
    return None


def _change_of(uow: UnitOfWork, before: Mapping[str, list[int]],
               after: Mapping[str, list[int]]) -> PlanChange:
    added: dict[str, set[int]] = {}
    removed: dict[str, set[int]] = {}
    for crew in sorted(set(before) | set(after)):
        old_set, new_set = set(before.get(crew, [])), set(after.get(crew, []))
        if new_set - old_set:
            added[crew] = new_set - old_set
        if old_set - new_set:
            removed[crew] = old_set - new_set
    # only the requests that changed crew are named (not every stop of the plan)
    names = uow.requests.external_ids(pk for pks in (*added.values(), *removed.values())
                                      for pk in pks)
    change = PlanChange()
    for crew, pks in added.items():
        change.added[crew] = sorted(names.get(pk, str(pk)) for pk in pks)
    for crew, pks in removed.items():
        change.removed[crew] = sorted(names.get(pk, str(pk)) for pk in pks)
    return change


def _crew_lists(row: Any) -> dict[str, list[int]]:
    return {r.crew_name: [s.request_id for s in r.stops] for r in row.routes
            if r.status != RouteStatus.SUPERSEDED.value}


def _schedule_requests(uow: UnitOfWork, pks: Iterable[int], plan_id: int) -> None:
    """Mark requests that went onto an assigned route as scheduled.

    A request whose record says it is closed (a replayed past day, or the source closed
    it meanwhile) keeps its status and close time: the stop carries the day's work and
    the event says so.
    """
    events: list[tuple[str, str | int, str, dict[str, Any]]] = []
    for req in uow.requests.by_ids(pks, for_update=True):
        current = RequestStatus(req.status)
        if current in (RequestStatus.SCHEDULED, RequestStatus.IN_PROGRESS):
            continue
        if current in CLOSED_STATUSES:
            events.append(("request", req.id, "scheduled", {
                "plan_id": plan_id, "record": current.value,
                "note": "the record says closed; it is left as it is (a replayed day)"}))
            continue
        check_transition(REQUEST_TRANSITIONS, current, RequestStatus.SCHEDULED,
                         f"request {req.external_id}")
        req.status, req.status_owner = RequestStatus.SCHEDULED.value, OWNER_WORKFLOW
        events.append(("request", req.id, "scheduled", {"plan_id": plan_id,
                                                        "from": current.value}))
    uow.events.append_many(events)


def _release_requests(uow: UnitOfWork, pks: Iterable[int], plan_id: int) -> None:
    """Put requests that left every assigned route back in the open queue.

    Only a request the workflow scheduled moves; it returns to what its source says
    (or to ``new`` for Curbside's own requests), and the source owns its status again.
    """
    events: list[tuple[str, str | int, str, dict[str, Any]]] = []
    still = {s.request_id for s in uow.plans.assigned_stops(pks)}
    for req in uow.requests.by_ids(pks, for_update=True):
        if req.id in still or req.status != RequestStatus.SCHEDULED.value:
            continue
        back = RequestStatus.NEW
        if req.source_status is not None:
            back = RequestStatus(req.source_status)
        if back in CLOSED_STATUSES:
            req.status, req.closed_at = back.value, req.source_closed_at
            req.source_conflict = req.conflict_at = None
        else:
            req.status = back.value
        req.status_owner = OWNER_SOURCE if req.source_status is not None else OWNER_WORKFLOW
        events.append(("request", req.id, "unscheduled", {"plan_id": plan_id,
                                                          "to": req.status}))
    uow.events.append_many(events)


def _claim_rows(uow: UnitOfWork, row: Any) -> list[dict[str, Any]]:
    fact = _facts(row)
    now = uow.now()
    keys = [("district", d) for d in sorted(fact.claim_districts())]
    keys += [("crew", c) for c in sorted(fact.crews_with_stops())]
    return [{"city": row.city, "service_date": row.service_date, "kind": k, "key": v,
             "plan_id": row.id, "claimed_at": now, "claimed_by": uow.actor} for k, v in keys]


def _reclaim(uow: UnitOfWork, row: Any) -> None:
    """Refresh an assigned plan's claims after its routes changed."""
    uow.plans.drop_claims([row.id])
    uow.flush()
    uow.plans.add_claims(_claim_rows(uow, row))
    try:
        uow.flush()
    except ConcurrentEditError:
        raise ConcurrentEditError(
            f"plan {row.id}: another plan was assigned for one of its districts or crews "
            "at the same moment; nothing was saved - reload and try again") from None


# ------------------------------------------------------------------------ re-planning

#: An urgent stop is offered to this many routes able to take it, nearest first; the
#: rest of the plan stays as it is (a supervisor's one change stays one change).
URGENT_NEAREST_ROUTES = 3


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
    on_write: Callable[[Any], None] | None = None,
    row: Any = None,
    refuse_drops: bool = False,
    **replan_args: Any,
) -> PlanChange:
    # 1. read what the re-plan starts from (no lock held while solving); a caller that
    # read the plan in this unit of work passes its row
    row = row if row is not None and row.id == plan_id else _plan_row(uow, plan_id)
    _check_version(uow, row, expected_version)
    status = PlanStatus(row.status)
    if status is PlanStatus.SUPERSEDED:
        raise InvalidTransitionError(f"plan {plan_id} is superseded; open the newest plan")
    if status is PlanStatus.ASSIGNED and not confirm:
        raise InvalidTransitionError(
            f"plan {plan_id} is already assigned to crews; confirm to re-plan it "
            "(the crews will be told what changed)")
    current = plan_from_rows(row)
    all_locks = list(locks if locks is not None else locks_of(row))
    # Stops a crew has reached or finished stay where they are.
    worked = worked_locks(row)
    worked_keys = {lk.request_id for lk in worked}
    all_locks = [lk for lk in all_locks if lk.request_id not in worked_keys] + worked
    solver_locks = list(all_locks)
    moves: dict[str, str] = dict(replan_args.get("moves") or {})
    if hold_others:
        # A supervisor's one change stays one change: every other stop keeps its crew
        # for this re-plan (only the order of the affected routes is re-optimised);
        # these holds are not saved as locks.
        pinned = {lk.request_id for lk in solver_locks} | set(moves)
        solver_locks += [Lock(p.request_id, r.crew, None) for r in current.routes
                         for p in r.stops if p.request_id not in pinned]
    seen = uow.plans.loaded_versions(row)  # what the re-plan starts from
    before = _crew_lists(row)
    added_keys = [s.request_id for s in replan_args.get("add") or ()]

    # 2. solve
    new_plan = replan(current, locks=solver_locks, **replan_args)
    if refuse_drops:
        _refuse_drops(current, new_plan, moves)
    for rid, crew in moves.items():
        all_locks = [lk for lk in all_locks if lk.request_id != rid]
        if rid not in worked_keys:
            all_locks.append(Lock(rid, crew, None))

    # 3. write, if nothing changed meanwhile: the rows read in step 1 are written as
    # they are when no version moved; otherwise read again, and refused if what the
    # re-plan started from changed
    uow.begin_write(keep_loaded=True)
    if uow.plans.row_versions(plan_id, for_update=True) != seen:
        uow.expire_loaded()
        row = _plan_row(uow, plan_id, for_update=True)
        changed = _changed_since(uow, row, seen)
        if changed:
            raise ConcurrentEditError(
                f"{changed} while you were re-planning; nothing was changed - look again "
                "and retry")
    keys = {k: request_pk(k) for r in new_plan.routes for k in (p.request_id for p in r.stops)}
    keys |= {u.request_id: request_pk(u.request_id) for u in new_plan.unplanned}
    keys |= {k: request_pk(k) for k in added_keys}
    added, removed = sync_plan_rows(row, new_plan, keys=keys, locks=all_locks)
    uow.flush()
    change = _change_of(uow, before, _crew_lists(row))
    uow.events.append("plan", plan_id, action, {**details, "changed_crews": change.crews()})
    if status is PlanStatus.ASSIGNED:
        for crew in change.crews():
            uow.events.append("crew", crew, "route_changed", {
                "plan_id": plan_id, "added": change.added.get(crew, []),
                "removed": change.removed.get(crew, []),
            })
        _schedule_requests(uow, added, plan_id)
        _release_requests(uow, removed, plan_id)
        _reclaim(uow, row)
    if on_write is not None:
        on_write(row)
    _touch(row)
    uow.commit()
    return change


def _refuse_drops(current: Plan, new_plan: Plan, moves: Mapping[str, str]) -> None:
    """Refuse a move that would take planned stops off the plan (a crew without room).

    Raises
    ------
    InvalidTransitionError
        Naming the crew, how many of the moved stops it has no room for (and how many
        of its own stops it would drop), and why.
    """
    planned = {p.request_id for r in current.routes for p in r.stops}
    dropped = [u for u in new_plan.unplanned if u.request_id in planned]
    if not dropped:
        return
    crew = ", ".join(sorted(set(moves.values())))
    moved = [u for u in dropped if u.request_id in moves]
    others = len(dropped) - len(moved)
    why = "; ".join(sorted({u.reason.kind.label for u in dropped}))
    what = (f"has no room for {len(moved)} of the {len(moves)} stop"
            f"{'s' if len(moves) != 1 else ''} moved" if moved else
            f"can take the {len(moves)} stop{'s' if len(moves) != 1 else ''} moved")
    also = ((", and would drop " if moved else " only by dropping ") + f"{others} stop"
            f"{'s' if others != 1 else ''} already planned" if others else "")
    raise InvalidTransitionError(
        f"crew {crew} {what}{also} ({why}); nothing was changed: move fewer stops, or "
        "to another crew")


def _touch(row: Any) -> None:
    """Make the plan's version move with any change to its rows."""
    settings = dict(row.payload or {})
    settings["edits"] = int(settings.get("edits", 0)) + 1
    row.payload = settings


def _pk_of(row: Any, request: int | str) -> int:
    pk = int(request)
    if not any(s.request_id == pk for r in row.routes for s in r.stops):
        raise NotFoundError(f"request {pk} is not on a route of plan {row.id}")
    return pk


@service(*READING, action="see plans")
def plans_for_day(uow: UnitOfWork, city: str, day: date) -> list[Any]:
    """Return the city's plans for ``day``, newest first."""
    return uow.plans.for_date(city, day)


@service(*READING, action="read whole plans")
def plan_details(uow: UnitOfWork, plan_id: int) -> PlanDetails:
    """Return a stored plan with its locks, stop statuses and request labels."""
    row = _plan_row(uow, plan_id)
    plan = plan_from_rows(row)
    pks = [s.request_id for r in row.routes for s in r.stops]
    pks += [u.request_id for u in row.unplanned]
    return PlanDetails(
        plan_id=row.id, status=row.status, version=row.version,
        districts=tuple(row.districts or ()), plan=plan,
        locked=frozenset(s.request_id for r in row.routes for s in r.stops if s.locked),
        stop_status={s.request_id: s.status for r in row.routes for s in r.stops},
        labels=uow.requests.labels(pks), created_by=row.created_by,
        created_at=row.created_at, removed=tuple(removed_crews(row)),
    )


@service(*SUPERVISING, action="change plans")
def move_stop(
    uow: UnitOfWork,
    plan_id: int,
    request: int,
    to_crew: str,
    *,
    position: int | None = None,
    expected_version: int | None = None,
    confirm: bool = False,
) -> PlanChange:
    """Move a stop (by request primary key) to another crew, optionally to a position.

    Every other stop keeps its crew; the two routes are re-sequenced around the change.
    A stop a crew already reached or finished cannot move. Use :func:`reoptimise` to
    let the solver redistribute unlocked stops.
    """
    row = _plan_row(uow, plan_id)
    pk = _pk_of(row, request)
    stop = next(s for r in row.routes for s in r.stops if s.request_id == pk)
    if StopStatus(stop.status).worked:
        raise InvalidTransitionError(
            f"stop {stop.sequence} of crew {stop.route.crew_name} is {stop.status}; a "
            "stop a crew already worked stays on its route")
    if to_crew not in {r.crew_name for r in row.routes}:
        raise NotFoundError(f"crew {to_crew} has no route in plan {plan_id}")
    key = stop_key(pk)
    locks = [lk for lk in locks_of(row) if lk.request_id != key]
    locks.append(Lock(key, to_crew, position))
    return _apply_replan(
        uow, plan_id, "stop_moved",
        {"request": pk, "to_crew": to_crew, "position": position},
        expected_version=expected_version, confirm=confirm, locks=locks,
        hold_others=True, moves={key: to_crew}, only_crews={to_crew}, row=row,
        refuse_drops=True,
    )


@service(*SUPERVISING, action="change plans")
def move_stops(
    uow: UnitOfWork,
    plan_id: int,
    requests: Sequence[int],
    to_crew: str,
    *,
    expected_version: int | None = None,
    confirm: bool = False,
) -> PlanChange:
    """Move several stops (by request primary key) to one crew, in one re-plan.

    As :func:`move_stop` for each, at once: every other stop keeps its crew, and a stop
    a crew already reached or finished cannot move (nothing moves then).
    """
    if not requests:
        raise ValidationError("no stop was chosen to move; choose at least one")
    row = _plan_row(uow, plan_id)
    if to_crew not in {r.crew_name for r in row.routes}:
        raise NotFoundError(f"crew {to_crew} has no route in plan {plan_id}")
    pks = [_pk_of(row, r) for r in requests]
    by_pk = {s.request_id: s for r in row.routes for s in r.stops}
    worked = [by_pk[pk] for pk in pks if StopStatus(by_pk[pk].status).worked]
    if worked:
        first = worked[0]
        raise InvalidTransitionError(
            f"stop {first.sequence} of crew {first.route.crew_name} is {first.status}; a "
            f"stop a crew already worked stays on its route ({len(worked)} of the "
            f"{len(pks)} chosen)")
    keys = [stop_key(pk) for pk in pks]
    locks = [lk for lk in locks_of(row) if lk.request_id not in set(keys)]
    locks += [Lock(key, to_crew, None) for key in keys]
    return _apply_replan(
        uow, plan_id, "stops_moved", {"requests": pks, "to_crew": to_crew},
        expected_version=expected_version, confirm=confirm, locks=locks,
        hold_others=True, moves=dict.fromkeys(keys, to_crew), only_crews={to_crew}, row=row,
        refuse_drops=True,
    )


@service(*SUPERVISING, action="lock stops", writes=True)
def set_lock(
    uow: UnitOfWork,
    plan_id: int,
    request: int,
    locked: bool,
    *,
    keep_position: bool = False,
    expected_version: int | None = None,
) -> None:
    """Lock a stop (by request primary key) to its crew and maybe position, or unlock it."""
    row = _plan_row(uow, plan_id, for_update=True)
    _check_version(uow, row, expected_version)
    if row.status == PlanStatus.SUPERSEDED.value:
        raise InvalidTransitionError(f"plan {plan_id} is superseded; open the newest plan")
    pk = _pk_of(row, request)
    for route in row.routes:
        for index, stop in enumerate(route.stops):
            if stop.request_id == pk:
                stop.locked = locked
                stop.lock_position = index if locked and keep_position else None
                crew = route.crew_name
    _touch(row)
    uow.events.append("plan", plan_id, "stop_locked" if locked else "stop_unlocked",
                      {"request": pk, "crew": crew, "keep_position": keep_position})
    uow.commit()


@service(*SUPERVISING, action="change plans")
def reoptimise(
    uow: UnitOfWork, plan_id: int, *, expected_version: int | None = None, confirm: bool = False
) -> PlanChange:
    """Re-optimise the plan around the supervisor's locks, keeping what crews worked.

    The groups of crews (same skills and territory) that hold a lock are re-solved:
    that is where the supervisor changed the plan (a move locks the stop to its new
    crew). With no lock at all, every group is. Locked and worked stops stay with their
    crews; crews taken out of the plan get no new work, and their groups are not
    re-solved for that alone. The groups are solved in parallel processes.
    """
    row = _plan_row(uow, plan_id)
    if not any(not StopStatus(s.status).worked for r in row.routes for s in r.stops):
        return PlanChange()
    moves = {lk.request_id: lk.crew for lk in locks_of(row)}
    gone = removed_crews(row)
    return _apply_replan(uow, plan_id, "reoptimised", {}, expected_version=expected_version,
                         confirm=confirm, moves=moves, exclude_crews=gone, whole=not moves,
                         row=row)


@service(*READING, action="read whole plans")
def crew_holds(uow: UnitOfWork, plan_id: int, crew: str) -> list[HeldStop]:
    """Return the stops that hold ``crew`` in plan ``plan_id``: locked or already worked.

    Each is named by its address, with why it is held: a supervisor's lock (released
    when the crew is removed, once the supervisor agrees) or a crew's record (the stop
    stays on the crew's route whatever happens).
    """
    if uow.plans.head(plan_id) is None:
        raise NotFoundError(f"plan {plan_id} does not exist")
    route = uow.plans.route_of(plan_id, crew)
    if route is None:
        raise NotFoundError(f"crew {crew} has no route in plan {plan_id}")
    held = [s for s in route.stops if s.locked or StopStatus(s.status).worked]
    labels = uow.requests.labels(s.request_id for s in held)
    out = []
    for s in held:
        rid, address, category = labels.get(s.request_id, (str(s.request_id), "", s.category))
        worked = StopStatus(s.status).worked
        why = (_WORKED_WHY.get(s.status, f"the crew recorded it as {s.status}") if worked
               else "locked to this crew by a supervisor"
               + (f" at position {s.lock_position + 1}" if s.lock_position is not None else ""))
        out.append(HeldStop(request_pk=s.request_id, request_id=rid, address=address,
                            category=category, sequence=s.sequence, status=s.status,
                            releasable=not worked, why=why))
    return out


#: Why a stop a crew worked stays on its route, by stop status.
_WORKED_WHY = {
    STOP_ARRIVED: "the crew has arrived there; it stays on the crew's route",
    STOP_DONE: "the crew finished it; it stays on the crew's route",
    STOP_CANT: "the crew could not complete it; it stays on the crew's route",
}


def removed_crews(row: Any) -> list[str]:
    """Return the crews taken out of a stored plan that still have a route in it."""
    gone = (row.payload or {}).get("removed_crews") or []
    present = {r.crew_name for r in row.routes if r.status != RouteStatus.SUPERSEDED.value}
    return [c for c in gone if c in present]


@service(*SUPERVISING, action="change plans")
def remove_crew(
    uow: UnitOfWork, plan_id: int, crew: str, *, expected_version: int | None = None,
    confirm: bool = False, release_locks: bool = False,
) -> PlanChange:
    """Take a crew out of the plan (breakdown, sickness); its open stops are re-planned.

    A supervisor's lock on one of its open stops is released only when
    ``release_locks`` is set, each with its own ``stop_unlocked`` event; otherwise the
    removal is refused with the number of locked stops (the page lists them from
    :func:`crew_holds`). The stops the crew already reached or finished stay on its
    route, and later re-optimising does not give it new work.
    """
    row = _plan_row(uow, plan_id)
    if crew not in {r.crew_name for r in row.routes}:
        raise NotFoundError(f"crew {crew} has no route in plan {plan_id}")
    held = {request_pk(lk.request_id) for lk in worked_locks(row) if lk.crew == crew}
    released = [lk for lk in locks_of(row)
                if lk.crew == crew and request_pk(lk.request_id) not in held]
    if released and not release_locks:
        n = len(released)
        raise InvalidTransitionError(
            f"crew {crew} holds {n} locked stop{'s' if n != 1 else ''}; release "
            f"{'those locks' if n != 1 else 'that lock'} to remove the crew (nothing was "
            "changed)")
    locks = [lk for lk in locks_of(row) if lk.crew != crew]

    def record(written: Any) -> None:
        payload = dict(written.payload or {})
        payload["removed_crews"] = sorted({*(payload.get("removed_crews") or []), crew})
        written.payload = payload
        uow.events.append_many(
            ("plan", plan_id, "stop_unlocked",
             {"request": request_pk(lk.request_id), "crew": crew, "reason": "crew_removed"})
            for lk in released)

    return _apply_replan(uow, plan_id, "crew_removed",
                         {"crew": crew,
                          "locks_released": [request_pk(lk.request_id) for lk in released]},
                         expected_version=expected_version, confirm=confirm, locks=locks,
                         on_write=record, remove_crews=[crew], row=row)


@service(*SUPERVISING, action="change plans")
def add_urgent_request(
    uow: UnitOfWork, pack: CityPack, plan_id: int, request: int, *,
    expected_version: int | None = None, confirm: bool = False,
) -> PlanChange:
    """Add an urgent request (by primary key) to the day's plan; it goes first in line."""
    req_row = uow.requests.get(request)
    if req_row is None:
        raise NotFoundError(f"request {request} does not exist")
    req = req_row.to_domain()
    category = pack.categories.get(req.category)
    if category is None or not category.routable:
        raise PlanningError(f"request {req.external_id} ({req.category}) is not routable")
    if not is_routable(req.geocode_precision, req.geocode_confidence):
        raise PlanningError(
            f"request {req.external_id} has no trustworthy location "
            f"(precision {req.geocode_precision}); fix its location first")
    row = _plan_row(uow, plan_id)
    if any(s.request_id == req_row.id for r in row.routes for s in r.stops):
        raise PlanningError(f"request {req.external_id} is already on a route of plan "
                            f"{plan_id}")
    day = row.service_date
    now = max(uow.now(), datetime.combine(day, MORNING, tzinfo=pack.timezone))
    stop = stop_from_request(req, category, now, day)
    stop = dataclasses.replace(stop, request_id=stop_key(req_row.id),
                               urgency=max(stop.urgency, 10.0))
    # an earlier unplanned entry of the same request gives way to the urgent one
    plan_unplanned = [u for u in plan_from_rows(row).unplanned if u.request_id != stop.request_id]
    if len(plan_unplanned) != len(row.unplanned):
        uow.begin_write()
        row = _plan_row(uow, plan_id, for_update=True)
        sync_unplanned(row, plan_unplanned, {u.request_id: request_pk(u.request_id)
                                             for u in plan_unplanned})
        uow.flush()
        expected_version = None
    gone = removed_crews(row)
    territories = {c.name: c.districts for c in pack.crews}
    nearest = rank_move_targets(stop, None, plan_from_rows(row).routes, territories,
                                exclude=gone)[:URGENT_NEAREST_ROUTES]
    return _apply_replan(uow, plan_id, "urgent_added", {"request": req_row.id},
                         expected_version=expected_version, confirm=confirm, add=[stop],
                         exclude_crews=gone, only_crews={t.crew for t in nearest}, row=row)


# ------------------------------------------------------------------------ assignment


def _assignment_for(uow: UnitOfWork, row: Any) -> tuple[Assignment, list[Any]]:
    """Return what assigning ``row`` changes, and the day's assigned plans it weighs."""
    day_plans = uow.plans.for_date(row.city, row.service_date)
    assigned = [p for p in day_plans if p.status == PlanStatus.ASSIGNED.value]
    draft, *others = _light_facts(uow, [row, *assigned])
    return plan_assignment(draft, others), assigned


def _light_facts(uow: UnitOfWork, plans: Sequence[Any]) -> list[PlanFact]:
    """Return :func:`_facts` of ``plans`` from one column query.

    The same facts, so the same token, without loading every stop row as an object
    (``plans`` are rows whose children need not be loaded).
    """
    by_route: dict[int, list[Any]] = {}
    for r in uow.plans.stop_fact_rows([p.id for p in plans]):
        by_route.setdefault(r.route_id, []).append(r)
    routes: dict[int, list[RouteFact]] = {}
    for route_id, rows in by_route.items():
        stops = tuple(StopFact(r.stop_id, r.request_id, StopStatus(r.status), r.version)
                      for r in rows if r.stop_id is not None)
        routes.setdefault(rows[0].plan_id, []).append(RouteFact(route_id, rows[0].crew, stops))
    return [PlanFact(p.id, p.version, frozenset(p.districts or ()), tuple(routes.get(p.id, [])))
            for p in plans]


@service(*SUPERVISING, action="assign plans")
def preview_assignment(uow: UnitOfWork, plan_id: int) -> tuple[Assignment, list[str]]:
    """Return what assigning the draft would change, and the sentences saying so.

    Nothing is written. Pass the returned :attr:`~dispatch.assignment.Assignment.token`
    to :func:`assign_plan` to confirm exactly this.
    """
    row = uow.plans.head(plan_id)
    if row is None:
        raise NotFoundError(f"plan {plan_id} does not exist")
    if row.status != PlanStatus.DRAFT.value:
        raise InvalidTransitionError(f"plan {plan_id} is {row.status}; only a draft is assigned")
    outcome, _ = _assignment_for(uow, row)
    return outcome, outcome.lines(uow.requests.external_ids(outcome.named()))


@service(*SUPERVISING, action="assign plans", writes=True)
def assign_plan(
    uow: UnitOfWork, plan_id: int, *, expected_version: int | None = None,
    token: str | None = None,
) -> list[str]:
    """Assign a draft plan: each route becomes its crew's work for the day.

    Assigned plans of the day that overlap it (a district or a crew in common) are
    superseded, except for their started routes, which carry over into this plan.
    Requests on the routes become ``scheduled``; requests that were scheduled and are on
    no route any more go back to the open queue.

    Parameters
    ----------
    uow
        Unit of work (committed once).
    plan_id
        The draft.
    expected_version
        The version the caller saw; a newer one is refused with who changed it.
    token
        The :attr:`~dispatch.assignment.Assignment.token` of the preview the supervisor
        confirmed. Required when assigning changes anything beyond the draft itself
        (another plan superseded, a crew losing its route, a request going back to the
        queue, a started route carried over); refused when the day changed since.

    Returns
    -------
    list of str
        The crews that have a route after the assignment.
    """
    # lock the day's plans (PostgreSQL) before reading any of them in detail
    uow.plans.for_date(*_day_of(uow, plan_id), for_update=True)
    row = _plan_row(uow, plan_id, for_update=True)
    _check_version(uow, row, expected_version)
    check_transition(PLAN_TRANSITIONS, PlanStatus(row.status), PlanStatus.ASSIGNED,
                     f"plan {plan_id}")
    if row.status != PlanStatus.DRAFT.value:
        raise InvalidTransitionError(f"plan {plan_id} is {row.status}; only a draft is assigned")
    outcome, assigned = _assignment_for(uow, row)
    if token is not None and token != outcome.token:
        raise ConcurrentEditError(
            f"the day changed since the preview of plan {plan_id} (a crew recorded a stop "
            "or another plan was edited or assigned); nothing was changed - look at the "
            "preview again and confirm")
    if token is None and outcome.disruptive:
        raise InvalidTransitionError(
            f"assigning plan {plan_id} changes more than this draft: "
            + " ".join(outcome.lines()[:3]) + " Preview it and confirm.")
    by_id = {p.id: p for p in assigned}
    superseded = [by_id[p] for p in outcome.superseded]
    before = {c: pks for p in superseded for c, pks in _crew_lists(p).items()}

    # 1. the draft's routes that give way, and stops a carried route holds
    drop = set(outcome.drop_draft_routes)
    remove = set(outcome.removed_from_draft)
    busy = set(outcome.crew_busy)
    keep_routes = []
    for route in row.routes:
        if route.crew_name in drop:
            continue
        if any(s.request_id in remove for s in route.stops):
            route.stops[:] = [s for s in route.stops if s.request_id not in remove]
        keep_routes.append(route)
    busy_unplanned = [
        Unplanned(dataclasses.replace(stop_of_row(s), request_id=stop_key(s.request_id)),
                  Reason(ReasonKind.CREW_BUSY,
                         f"crew {s.route.crew_name} keeps its started route; re-optimise "
                         "to place this stop"))
        for r in row.routes if r.crew_name in drop for s in r.stops if s.request_id in busy]
    if len(keep_routes) != len(row.routes):
        row.routes[:] = keep_routes
    uow.flush()
    # 2. superseded plans: their started routes move into this plan
    carried_ids = {r.route_id for r in outcome.carried}
    gone_stops = set(outcome.removed_from_carried)
    now = uow.now()
    for plan in superseded:
        for route in list(plan.routes):
            if route.id in carried_ids:
                route.stops[:] = [s for s in route.stops if s.id not in gone_stops]
                route.carried_from_plan_id = plan.id
                plan.routes.remove(route)
                row.routes.append(route)
                for s in route.stops:
                    s.plan = row
            elif route.status != RouteStatus.SUPERSEDED.value:
                check_transition(ROUTE_TRANSITIONS, RouteStatus(route.status),
                                 RouteStatus.SUPERSEDED, f"route of crew {route.crew_name}")
                route.status = RouteStatus.SUPERSEDED.value
        check_transition(PLAN_TRANSITIONS, PlanStatus(plan.status), PlanStatus.SUPERSEDED,
                         f"plan {plan.id}")
        plan.status = PlanStatus.SUPERSEDED.value
        uow.events.append("plan", plan.id, "superseded", {
            "by": plan_id, "carried_routes": sorted(r.crew for r in outcome.carried
                                                    if r.route_id in
                                                    {x.id for x in row.routes})})
    for route in row.routes:
        for seq, s in enumerate(route.stops, start=1):
            if s.sequence != seq:
                s.sequence = seq
        status = route_status_of(StopStatus(s.status) for s in route.stops).value
        if route.status != status:
            route.status = status
    existing = plan_from_rows(row).unplanned
    known = {u.request_id for u in existing}
    merged = existing + [u for u in busy_unplanned if u.request_id not in known]
    sync_unplanned(row, merged, {u.request_id: request_pk(u.request_id) for u in merged})
    uow.flush()
    # 3. claims: the database refuses a second assigned plan per district or crew
    uow.plans.drop_claims(outcome.superseded)
    uow.flush()
    row.status = PlanStatus.ASSIGNED.value
    row.assigned_at, row.assigned_by = now, uow.actor
    uow.plans.add_claims(_claim_rows(uow, row))
    try:
        uow.flush()
    except ConcurrentEditError:
        raise ConcurrentEditError(
            f"another plan of {row.service_date.isoformat()} was assigned for one of the "
            f"districts or crews of plan {plan_id} at the same moment; nothing was changed "
            "- reload and look again") from None
    # 4. requests and events
    after = _crew_lists(row)
    _schedule_requests(uow, outcome.newly_scheduled, plan_id)
    _release_requests(uow, outcome.released, plan_id)
    crews = sorted(c for c, pks in after.items() if pks)
    uow.events.append("plan", plan_id, "assigned", {
        "crews": crews, "superseded": outcome.superseded,
        "carried": [r.crew for r in outcome.carried], "released": len(outcome.released),
        "crew_busy": len(outcome.crew_busy)})
    uow.events.append_many(
        ("route", r.id, "assigned", {"crew": r.crew_name, "stops": len(r.stops)})
        for r in row.routes if r.stops)
    change = _change_of(uow, before, after)
    for crew in change.crews():
        if crew in before:
            uow.events.append("crew", crew, "route_changed", {
                "plan_id": plan_id, "added": change.added.get(crew, []),
                "removed": change.removed.get(crew, [])})
    uow.commit()
    return crews


def _day_of(uow: UnitOfWork, plan_id: int) -> tuple[str, date]:
    row = uow.plans.get(plan_id)
    if row is None:
        raise NotFoundError(f"plan {plan_id} does not exist")
    return row.city, row.service_date


def stop_of_row(s: Any) -> Any:
    """Return the planner's :class:`~dispatch.planning.Stop` of a stored stop row."""
    from dispatch.planning import Stop

    return Stop(request_id=stop_key(s.request_id), category=s.category, district=s.district,
                lon=s.lon, lat=s.lat, service_s=s.service_s, size=s.size, urgency=s.urgency,
                tw_start=s.tw_start, tw_end=s.tw_end)


# --------------------------------------------------------------------------- crews


def _route_view(uow: UnitOfWork, route: Any) -> RouteView:
    """Return a route joined with its requests."""
    reqs = {r.id: r for r in uow.requests.by_ids(s.request_id for s in route.stops)}
    stops = []
    for s in route.stops:
        req = reqs.get(s.request_id)
        if req is None:
            raise NotFoundError(f"stop {s.id} points at request {s.request_id}, which is gone")
        stops.append(StopView(
            stop_id=s.id, sequence=s.sequence, request_pk=req.id, request_id=req.external_id,
            category=req.category, service_code=req.service_code, address=req.address,
            description=req.description, lon=req.lon, lat=req.lat, eta=s.eta,
            departure=s.departure, status=s.status, locked=s.locked, reason=s.reason,
            note=s.note, navigation_url=navigation_url(req.lon, req.lat),
            status_at=s.status_at, district=s.district,
        ))
    path = (route.crew_settings or {}).get("geometry")
    return RouteView(
        route_id=route.id, plan_id=route.plan_id, plan_status=route.plan.status,
        crew=route.crew_name, district=route.district, distance_m=route.distance_m,
        drive_s=route.drive_s, service_s=route.service_s, load=route.load,
        capacity=route.capacity, stops=tuple(stops), status=route.status,
        geometry=None if not path else tuple((float(x), float(y)) for x, y in path),
    )


@service(*READING, action="read routes")
def route_view(uow: UnitOfWork, route_id: int) -> RouteView:
    """Return one route of any plan joined with its requests (supervisors, managers)."""
    route = uow.plans.route(route_id)
    if route is None:
        raise NotFoundError(f"route {route_id} does not exist")
    return _route_view(uow, route)


@service(*WORKING, action="see a crew's route")
def crew_route(uow: UnitOfWork, city: str, day: date, crew: str) -> RouteView | None:
    """Return the crew's assigned route for ``day`` (``None`` when it has none).

    Only the crew's own route is returned; a crew member asking for another crew's
    route is refused.
    """
    require_crew(uow.principal, crew)
    for row in uow.plans.for_date(city, day):
        if row.status != PlanStatus.ASSIGNED.value:
            continue
        for route in row.routes:
            if route.crew_name == crew and route.status != RouteStatus.SUPERSEDED.value:
                view = _route_view(uow, route)
                events = [e for e in uow.events.for_entity("crew", crew)
                          if e.details.get("plan_id") == row.id]
                if events and events[-1].action == "route_changed":
                    view = dataclasses.replace(view, notice=_notice(events[-1].details))
                return view
    return None


@service(*WORKING, action="acknowledge changes", writes=True)
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


def _crew_stop(uow: UnitOfWork, stop_id: int, crew: str) -> Any:
    require_crew(uow.principal, crew, action="work the stops")
    stop = uow.plans.stop(stop_id, for_update=True)
    if stop is None:
        raise NotFoundError(f"stop {stop_id} does not exist")
    if stop.route.crew_name != crew:
        raise AccessDeniedError(f"stop {stop_id} is not on the route of crew {crew}")
    if stop.route.plan.status != PlanStatus.ASSIGNED.value:
        raise InvalidTransitionError(
            f"stop {stop_id} belongs to plan {stop.route.plan_id}, which is "
            f"{stop.route.plan.status}; reload the route")
    if stop.route.status == RouteStatus.SUPERSEDED.value:
        raise InvalidTransitionError(
            f"stop {stop_id} is on a route that was replaced; reload the route")
    return stop


def _move_stop_status(uow: UnitOfWork, stop: Any, new: StopStatus) -> StopStatus:
    current = StopStatus(stop.status)
    if current == new:
        when = f"{stop.status_at:%H:%M} UTC" if stop.status_at else "earlier"
        raise InvalidTransitionError(
            f"stop {stop.sequence} was already recorded as {current.value} by "
            f"{stop.status_by or 'someone'} at {when}")
    check_transition(STOP_TRANSITIONS, current, new, f"stop {stop.sequence}")
    stop.status = new.value
    stop.status_at, stop.status_by = uow.now(), uow.actor
    route = stop.route
    new_route = route_status_of(StopStatus(s.status) for s in route.stops)
    check_transition(ROUTE_TRANSITIONS, RouteStatus(route.status), new_route,
                     f"route of crew {route.crew_name}")
    route.status = new_route.value
    return current


def _follow_on_request(uow: UnitOfWork, stop: Any, new: StopStatus, note: dict[str, Any],
                       ) -> Any:
    """Move the stop's request with the crew's tap, unless its record says closed."""
    req = uow.requests.get(stop.request_id, for_update=True)
    if req is None:
        raise NotFoundError(f"request {stop.request_id} of stop {stop.id} is gone")
    current = RequestStatus(req.status)
    target = REQUEST_STATUS_OF_STOP[new]
    crew_closed = (req.status_owner == OWNER_WORKFLOW and current in CLOSED_STATUSES
                   and req.closed_at is not None and stop.completed_at is not None
                   and req.closed_at == stop.completed_at)
    if current in CLOSED_STATUSES and not crew_closed:
        note["record"] = current.value  # the source closed it: the record stands
        return req
    if current in (RequestStatus.NEW, RequestStatus.TRIAGED):
        current = RequestStatus.SCHEDULED  # scheduled by this very route
    check_transition(REQUEST_TRANSITIONS, current, target, f"request {req.external_id}")
    req.status, req.status_owner = target.value, OWNER_WORKFLOW
    req.closed_at = uow.now() if target in CLOSED_STATUSES else None
    return req


@service(*WORKING, action="work the stops", writes=True)
def record_arrival(uow: UnitOfWork, stop_id: int, crew: str) -> None:
    """Record that the crew is at the stop."""
    stop = _crew_stop(uow, stop_id, crew)
    _move_stop_status(uow, stop, StopStatus.ARRIVED)
    details: dict[str, Any] = {"crew": crew}
    req = _follow_on_request(uow, stop, StopStatus.ARRIVED, details)
    details["request"] = req.external_id
    uow.events.append("stop", stop_id, "arrived", details)
    uow.commit()


@service(*WORKING, action="work the stops", writes=True)
def complete_stop(
    uow: UnitOfWork, stop_id: int, crew: str, *, note: str | None = None,
) -> None:
    """Record that the crew fixed it: stop done, request completed (Open311 closed)."""
    _finish_stop(uow, stop_id, crew, StopStatus.DONE, None, note)


@service(*WORKING, action="work the stops", writes=True)
def cannot_complete(
    uow: UnitOfWork, stop_id: int, crew: str, reason: str, *, note: str | None = None,
) -> None:
    """Record that the crew could not do it: request closed-not-fixed, with the reason."""
    if reason not in CANT_COMPLETE_REASONS:
        raise ValidationError(f"reason {reason!r} is not one of {sorted(CANT_COMPLETE_REASONS)}")
    _finish_stop(uow, stop_id, crew, StopStatus.CANT_COMPLETE, reason, note)


def _finish_stop(
    uow: UnitOfWork, stop_id: int, crew: str, new: StopStatus, reason: str | None,
    note: str | None,
) -> None:
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise ValidationError(f"note has {len(note)} characters; at most {MAX_NOTE_CHARS}")
    stop = _crew_stop(uow, stop_id, crew)
    if StopStatus(stop.status).finished:
        when = f"{stop.status_at:%H:%M} UTC" if stop.status_at else "earlier"
        raise InvalidTransitionError(
            f"stop {stop.sequence} was already recorded as {stop.status} by "
            f"{stop.status_by or 'someone'} at {when}")
    _move_stop_status(uow, stop, new)
    stop.reason, stop.note = reason, note
    details: dict[str, Any] = {"crew": crew, "reason": reason}
    req = _follow_on_request(uow, stop, new, details)
    stop.completed_at = stop.status_at
    details["request"] = req.external_id
    uow.events.append("stop", stop_id, new.value, details)
    uow.events.append("request", req.id, REQUEST_STATUS_OF_STOP[new].value,
                      {"by_crew": crew, "reason": reason, "note": note,
                       **({"record": details["record"]} if "record" in details else {})})
    uow.commit()


@service(*WORKING, action="work the stops", writes=True)
def undo_stop(uow: UnitOfWork, stop_id: int, crew: str) -> str:
    """Undo the crew's last *Done* or *Can't complete* on a stop (within 10 minutes).

    The stop goes back to where it was before (arrived, or to do) and so does its
    request. Returns the stop's status after the undo.
    """
    stop = _crew_stop(uow, stop_id, crew)
    current = StopStatus(stop.status)
    if not current.finished:
        raise InvalidTransitionError(
            f"stop {stop.sequence} is {current.value}; only a finished stop can be undone")
    if stop.status_at is None or uow.now() - stop.status_at > UNDO_WINDOW:
        raise InvalidTransitionError(
            f"stop {stop.sequence} was finished more than "
            f"{int(UNDO_WINDOW.total_seconds() // 60)} minutes ago; ask a supervisor")
    arrived = any(e.action == "arrived" for e in uow.events.for_entity("stop", stop.id))
    back = StopStatus.ARRIVED if arrived else StopStatus.PENDING
    req = uow.requests.get(stop.request_id, for_update=True)
    if req is None:
        raise NotFoundError(f"request {stop.request_id} of stop {stop.id} is gone")
    crew_closed = (req.status_owner == OWNER_WORKFLOW
                   and RequestStatus(req.status) in CLOSED_STATUSES
                   and req.closed_at is not None and req.closed_at == stop.completed_at)
    _move_stop_status(uow, stop, back)
    stop.reason = stop.note = None
    stop.completed_at = None
    if crew_closed:
        target = REQUEST_STATUS_OF_STOP[back]
        check_transition(REQUEST_TRANSITIONS, RequestStatus(req.status), target,
                         f"request {req.external_id}")
        req.status, req.closed_at = target.value, None
    uow.events.append("stop", stop_id, "undone", {"crew": crew, "from": current.value,
                                                  "to": back.value})
    uow.events.append("request", req.id, "crew_outcome_undone",
                      {"by_crew": crew, "from": current.value, "to": req.status})
    uow.commit()
    return back.value


@service(*WORKING, action="work the stops", writes=True)
def attach_photo(
    uow: UnitOfWork, stop_id: int, crew: str, data: bytes, photo_dir: Path
) -> Path:
    """Keep a crew's photo with the stop's request; JPEG or PNG up to 8 MB."""
    stop = _crew_stop(uow, stop_id, crew)
    if len(data) > MAX_PHOTO_BYTES:
        raise ValidationError(
            f"photo is {len(data) / 1e6:.1f} MB; at most {MAX_PHOTO_BYTES / 1e6:.0f} MB")
    suffix = next((s for magic, s in _PHOTO_TYPES.items() if data.startswith(magic)), None)
    if suffix is None:
        raise ValidationError("photo is not a JPEG or PNG image")
    req = uow.requests.get(stop.request_id, for_update=True)
    if req is None:
        raise NotFoundError(f"request {stop.request_id} of stop {stop.id} is gone")
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
