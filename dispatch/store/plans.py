"""Plans as rows: a :class:`~dispatch.planning.Plan` written to and read from the store.

The plan's routes, stops and unplanned requests are rows keyed by primary key; they are
the one source of truth. A plan read back from its rows is the same plan the planner
made (same crews, order, times, reasons), with ``Stop.request_id`` holding the request's
primary key as text: the planner's opaque stop key.

Re-planning writes back with :func:`sync_plan_rows`, which keeps each route row (by
crew) and each stop row (by request) and only moves, re-times or adds what changed, so
the stop a crew has open on a phone keeps its id, and what a crew recorded on a stop can
never be dropped by a re-plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, Table, bindparam, inspect, update
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from dispatch.errors import ConcurrentEditError, PlanningError
from dispatch.planning import Break, Lock, Plan, PlannedStop, Reason, ReasonKind, Route, Stop
from dispatch.planning.plan import Unplanned
from dispatch.state import RouteStatus, StopStatus, route_status_of
from dispatch.store.models import PlanRow, RouteRow, StopRow, UnplannedRow


def stop_key(request_pk: int) -> str:
    """Return the planner's key of a stored request (its primary key as text)."""
    return str(request_pk)


def request_pk(key: str) -> int:
    """Return the primary key behind a planner key made by :func:`stop_key`."""
    try:
        return int(key)
    except ValueError:
        raise PlanningError(f"stop key {key!r} is not a stored request's primary key") from None


def _local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    return None if value is None else value.astimezone(tz)


def _need(value: datetime | None, what: str) -> datetime:
    if value is None:
        raise PlanningError(f"stored route has no {what}; the plan rows are incomplete")
    return value


def _crew_settings(route: Route) -> dict[str, Any]:
    return {
        "skills": list(route.skills),
        "districts": list(route.districts),
        "crew_districts": list(route.crew_districts),
        "depot": {"code": route.depot, "lon": route.depot_lon, "lat": route.depot_lat},
        "lunch_start": route.lunch_start.isoformat(),
        "lunch_end": route.lunch_end.isoformat(),
        "lunch_s": route.lunch_s,
        "max_duration_s": route.max_duration_s,
        "reserve_s": route.reserve_s,
        # the driven path, ``[lon, lat]`` pairs, when the travel model follows roads
        "geometry": None if route.geometry is None else [list(p) for p in route.geometry],
    }


def _put(row: Any, **values: Any) -> None:
    """Set the attributes of ``row`` that differ from ``values`` (and only those).

    Setting an equal value still costs the ORM a history entry and a compare at flush;
    a re-plan that moves one stop leaves nearly every row as it was.
    """
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)


def _apply_route(row: RouteRow, route: Route) -> None:
    brk = route.brk
    _put(row, crew_name=route.crew, district=route.district, distance_m=route.distance_m,
         drive_s=route.drive_s, service_s=route.service_s, load=route.load,
         capacity=route.capacity, shift_start=route.shift_start, shift_end=route.shift_end,
         start_at=route.start, end_at=route.end,
         break_start=None if brk is None else brk.start,
         break_end=None if brk is None else brk.end,
         break_after=None if brk is None else brk.after_stops,
         crew_settings=_crew_settings(route))


def _apply_stop(row: StopRow | UnplannedRow, stop: Stop) -> None:
    _put(row, category=stop.category, district=stop.district, lon=stop.lon, lat=stop.lat,
         service_s=stop.service_s, size=stop.size, urgency=stop.urgency,
         tw_start=stop.tw_start, tw_end=stop.tw_end)


def new_plan_row(
    plan: Plan,
    *,
    keys: Mapping[str, int],
    created_by: str,
    created_at: datetime,
    districts: list[str],
    settings: Mapping[str, Any],
) -> PlanRow:
    """Return a draft :class:`PlanRow` holding ``plan`` (not yet added to a session).

    Parameters
    ----------
    plan
        The planner's plan; its stop keys are looked up in ``keys``.
    keys
        ``{stop key: request primary key}`` for every stop of the plan.
    created_by, created_at
        Who made it and when.
    districts
        Districts the plan covers (empty: the whole city).
    settings
        What the plan was made with (seed, time budget, absent crews ...).
    """
    missing = sorted(({p.request_id for r in plan.routes for p in r.stops}
                      | {u.request_id for u in plan.unplanned}) - set(keys))
    if missing:
        raise PlanningError(f"planned requests {missing[:5]} are not in the store")
    row = PlanRow(city=plan.city, service_date=plan.date, status="draft", seed=plan.seed,
                  created_at=created_at, created_by=created_by, tz=plan.tz,
                  districts=sorted(districts), payload={"settings": dict(settings)})
    for route in plan.routes:
        route_row = RouteRow(status=RouteStatus.PLANNED.value)
        _apply_route(route_row, route)
        for seq, planned in enumerate(route.stops, start=1):
            stop = StopRow(request_id=keys[planned.request_id], sequence=seq,
                           eta=planned.arrival, departure=planned.departure,
                           status=StopStatus.PENDING.value, locked=False, plan=row)
            _apply_stop(stop, planned.stop)
            route_row.stops.append(stop)
        row.routes.append(route_row)
    for u in plan.unplanned:
        un = UnplannedRow(request_id=keys[u.request_id], reason_kind=u.reason.kind.value,
                          reason_detail=u.reason.detail)
        _apply_stop(un, u.stop)
        row.unplanned.append(un)
    return row


def _stop_of(row: StopRow | UnplannedRow, tz: ZoneInfo) -> Stop:
    return Stop(request_id=stop_key(row.request_id), category=row.category,
                district=row.district, lon=row.lon, lat=row.lat, service_s=row.service_s,
                size=row.size, urgency=row.urgency, tw_start=_local(row.tw_start, tz),
                tw_end=_local(row.tw_end, tz))


def route_from_row(row: RouteRow, tz: ZoneInfo) -> Route:
    """Return one stored route as the planner's :class:`Route`."""
    cs = row.crew_settings or {}
    depot = cs.get("depot", {})
    brk = None
    if row.break_start is not None and row.break_end is not None:
        brk = Break(_need(_local(row.break_start, tz), "break start"),
                    _need(_local(row.break_end, tz), "break end"), int(row.break_after or 0))
    return Route(
        crew=row.crew_name,
        skills=tuple(cs.get("skills", ())),
        district=row.district,
        districts=tuple(str(d) for d in cs.get("districts", ())),
        depot=str(depot.get("code", "")),
        depot_lon=float(depot.get("lon", 0.0)),
        depot_lat=float(depot.get("lat", 0.0)),
        shift_start=_need(_local(row.shift_start, tz), "shift start"),
        shift_end=_need(_local(row.shift_end, tz), "shift end"),
        capacity=row.capacity,
        start=_need(_local(row.start_at, tz), "start"),
        end=_need(_local(row.end_at, tz), "end"),
        stops=[PlannedStop(_stop_of(s, tz), _need(_local(s.eta, tz), "stop arrival"),
                           _need(_local(s.departure, tz), "stop departure"))
               for s in row.stops],
        brk=brk,
        distance_m=row.distance_m,
        drive_s=row.drive_s,
        crew_districts=tuple(str(d) for d in cs.get("crew_districts", ())),
        lunch_start=time.fromisoformat(cs.get("lunch_start", "11:30:00")),
        lunch_end=time.fromisoformat(cs.get("lunch_end", "13:30:00")),
        lunch_s=int(cs.get("lunch_s", 1800)),
        max_duration_s=None if cs.get("max_duration_s") is None else int(cs["max_duration_s"]),
        reserve_s=int(cs.get("reserve_s", 0)),
        geometry=None if cs.get("geometry") is None
        else [(float(x), float(y)) for x, y in cs["geometry"]],
    )


def plan_from_rows(row: PlanRow) -> Plan:
    """Return a stored plan as the planner's :class:`Plan` (stop keys are primary keys)."""
    tz = ZoneInfo(row.tz)
    routes = [route_from_row(r, tz) for r in row.routes
              if r.status != RouteStatus.SUPERSEDED.value or row.status == "superseded"]
    routes.sort(key=lambda r: (_dkey(r.district), r.crew))
    unplanned = [Unplanned(_stop_of(u, tz), Reason(ReasonKind(u.reason_kind), u.reason_detail))
                 for u in row.unplanned]
    unplanned.sort(key=lambda u: u.request_id)
    settings = dict((row.payload or {}).get("settings", {}))
    return Plan(row.service_date, row.city, row.tz, row.seed, routes, unplanned, settings)


def _dkey(d: str | None) -> tuple[int, str]:
    if d is None:
        return (10**9, "")
    return (int(d), d) if d.isdigit() else (10**8, d)


def locks_of(row: PlanRow) -> list[Lock]:
    """Return the plan's locks (stops kept on their crew, maybe at their position)."""
    return [Lock(stop_key(s.request_id), r.crew_name, s.lock_position)
            for r in row.routes for s in r.stops if s.locked]


def worked_locks(row: PlanRow) -> list[Lock]:
    """Return locks that keep every stop a crew reached or finished where it is."""
    out = []
    for r in row.routes:
        for i, s in enumerate(r.stops):
            if StopStatus(s.status).worked:
                out.append(Lock(stop_key(s.request_id), r.crew_name, i))
    return out


#: A stop's place in the plan: what a re-plan changes on most of its stop rows.
_PLACE = ("route_id", "sequence", "eta", "departure", "locked", "lock_position")


class _Placements:
    """Where a re-plan puts a stored plan's stop rows, written in one statement.

    A re-optimise re-sequences and re-times about a thousand stops. Through the ORM,
    that is an ``UPDATE`` per row with its version check, and a flush that compares
    every column of every stop of each re-ordered route (about 0.3 s for a thousand
    rows). Here the stored rows whose place changed are written by one executemany,
    each ``WHERE`` its loaded version, and the loaded objects and their routes' stop
    lists are told the new state as committed, so the ORM's flush finds nothing more to
    write for them. A route's new stops are added to the session with their keys, and
    its dropped stops deleted.

    A route not yet stored, with its stops, goes through the ORM as before.
    """

    def __init__(self, session: Session | None, plan_row: PlanRow) -> None:
        self.session = session
        self.plan_row = plan_row
        self.rows: list[tuple[StopRow, dict[str, Any]]] = []
        self.routes: list[tuple[RouteRow, list[StopRow]]] = []

    def direct(self, route_row: RouteRow) -> bool:
        """Return whether ``route_row``'s stops are written here (it is stored)."""
        return self.session is not None and inspect(route_row).persistent

    def put(self, stop: StopRow, route_row: RouteRow, *, direct: bool, stored: bool,
            **values: Any) -> None:
        """Place ``stop`` on ``route_row`` with ``values`` (written by :meth:`write`).

        ``direct`` is :meth:`direct` of the route; ``stored``: the stop was loaded.
        """
        if not direct:
            _put(stop, **values)
            return
        if not stored:
            _put(stop, **values, route_id=route_row.id, plan_id=self.plan_row.id)
            return
        values["route_id"] = route_row.id
        if any(getattr(stop, name) != values[name] for name in _PLACE):
            self.rows.append((stop, values))

    def keep(self, route_row: RouteRow, stops: list[StopRow]) -> None:
        """Make ``stops`` (placed by :meth:`put`) the stops of ``route_row``, in order."""
        if [id(s) for s in route_row.stops] == [id(s) for s in stops]:
            return
        if self.direct(route_row):
            self.routes.append((route_row, stops))
        else:
            route_row.stops[:] = stops

    def write(self, dropped: list[StopRow]) -> None:
        """Write every changed place; delete ``dropped`` (stops no longer planned).

        Raises
        ------
        ConcurrentEditError
            When fewer rows than placed matched their loaded version.
        """
        if self.session is None:
            return
        session = self.session
        if self.rows:
            table = cast(Table, StopRow.__table__)
            stmt = (update(table)
                    .where(table.c.id == bindparam("b_id"),
                           table.c.version == bindparam("b_version"))
                    .values({**{name: bindparam(f"b_{name}") for name in _PLACE},
                             "version": bindparam("b_new_version")}))
            params = [{"b_id": stop.id, "b_version": stop.version,
                       "b_new_version": stop.version + 1,
                       **{f"b_{name}": values[name] for name in _PLACE}}
                      for stop, values in self.rows]
            # no autoflush: nothing else of the re-plan is sent before this
            with session.no_autoflush:
                result = cast(CursorResult[Any], session.execute(stmt, params))
            if (session.get_bind().dialect.supports_sane_multi_rowcount
                    and result.rowcount != len(params)):
                raise ConcurrentEditError(
                    f"someone else changed {len(params) - result.rowcount} of the "
                    f"{len(params)} stops being re-planned at the same moment; nothing "
                    "was saved - reload and try again")
            for stop, values in self.rows:
                for name in _PLACE:
                    if getattr(stop, name) != values[name]:
                        set_committed_value(stop, name, values[name])
                set_committed_value(stop, "version", stop.version + 1)
        direct = {id(r) for r, _ in self.routes}
        for route_row, stops in self.routes:
            for stop in stops:
                if not inspect(stop).persistent:
                    session.add(stop)
                set_committed_value(stop, "route", route_row)
            set_committed_value(route_row, "stops", stops)
        for stop in dropped:
            if id(stop.route) in direct:
                session.delete(stop)
        self.rows.clear()
        self.routes.clear()


def sync_plan_rows(
    row: PlanRow,
    plan: Plan,
    *,
    keys: Mapping[str, int],
    locks: list[Lock],
) -> tuple[list[int], list[int]]:
    """Write a re-planned ``plan`` into the stored ``row``, in place.

    Route rows are kept per crew and stop rows per request: a stop that moves keeps its
    id and whatever the crew recorded on it. Stops no longer planned are removed, which
    is refused for any stop a crew already worked.

    Parameters
    ----------
    row
        The stored plan (its routes, stops and unplanned rows loaded).
    plan
        The new plan, with stop keys found in ``keys``.
    keys
        ``{stop key: request primary key}``.
    locks
        Locks to keep: each locked stop is marked, with its position if any.

    Returns
    -------
    tuple of list of int
        Request primary keys newly on a route, and those no longer on any route.
    """
    lock_of = {keys[lk.request_id]: lk for lk in locks if lk.request_id in keys}
    routes_by_crew = {r.crew_name: r for r in row.routes}
    stops_by_req = {s.request_id: s for r in row.routes for s in r.stops}
    before = set(stops_by_req)
    placed: set[int] = set()
    kept_routes: list[RouteRow] = []
    session = object_session(row)
    placements = _Placements(session, row)
    for route in plan.routes:
        route_row = routes_by_crew.pop(route.crew, None)
        if route_row is None:
            route_row = RouteRow(status=RouteStatus.PLANNED.value)
        _apply_route(route_row, route)
        direct = placements.direct(route_row)
        new_stops: list[StopRow] = []
        for seq, planned in enumerate(route.stops, start=1):
            pk = keys[planned.request_id]
            stop = stops_by_req.get(pk)
            stored = stop is not None and direct and inspect(stop).persistent
            if stop is None:
                stop = StopRow(request_id=pk, status=StopStatus.PENDING.value)
            lk = lock_of.get(pk)
            placements.put(stop, route_row, direct=direct, stored=stored,
                           sequence=seq, eta=planned.arrival,
                           departure=planned.departure, locked=lk is not None,
                           lock_position=None if lk is None else lk.position)
            _apply_stop(stop, planned.stop)
            new_stops.append(stop)
            placed.add(pk)
        placements.keep(route_row, new_stops)
        kept_routes.append(route_row)
    dropped = [s for pk, s in stops_by_req.items() if pk not in placed]
    worked = [s for s in dropped if StopStatus(s.status).worked]
    if worked:
        raise PlanningError(
            f"the re-plan would take stop {worked[0].id} off its route although a crew "
            f"recorded it as {worked[0].status}; nothing was changed")
    for leftover in routes_by_crew.values():
        if any(StopStatus(s.status).worked for s in leftover.stops):
            raise PlanningError(
                f"the re-plan would drop the route of crew {leftover.crew_name}, which a "
                "crew already started; nothing was changed")
    for leftover in routes_by_crew.values():
        # deleted with its route: only the stops not placed elsewhere
        placements.keep(leftover, [s for s in leftover.stops if s.request_id not in placed])
    placements.write(dropped)
    if [id(r) for r in row.routes] != [id(r) for r in kept_routes]:
        row.routes[:] = kept_routes
    for route_row in row.routes:
        for s in route_row.stops:
            if s.plan_id is None or s.plan_id != row.id:
                s.plan = row
        if route_row.status != RouteStatus.SUPERSEDED.value:
            _put(route_row, status=route_status_of(
                StopStatus(s.status) for s in route_row.stops).value)
    sync_unplanned(row, plan.unplanned, keys)
    return sorted(placed - before), sorted(before - placed)


def sync_unplanned(row: PlanRow, unplanned: list[Unplanned], keys: Mapping[str, int]) -> None:
    """Make the plan's unplanned rows those of ``unplanned`` (kept per request)."""
    existing = {u.request_id: u for u in row.unplanned}
    rows: list[UnplannedRow] = []
    for u in unplanned:
        pk = keys[u.request_id]
        un = existing.get(pk) or UnplannedRow(request_id=pk)
        _put(un, reason_kind=u.reason.kind.value, reason_detail=u.reason.detail)
        _apply_stop(un, u.stop)
        rows.append(un)
    if [id(u) for u in row.unplanned] != [id(u) for u in rows]:
        row.unplanned[:] = rows
