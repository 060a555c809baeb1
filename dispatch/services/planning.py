"""Planning service: open requests of a day -> a draft plan saved in the store.

The service gathers the day's candidate requests from the store (a bounded SQL read:
routable categories, open at the planning instant), hands them to the pure planner
(:mod:`dispatch.planning`) keyed by their primary keys, and saves the result as a
draft: one route row per crew, one stop row per planned request and one unplanned row,
with its typed reason, per request left out.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import numpy as np

from dispatch.auth import READING, SUPERVISING, WORKING, service
from dispatch.citypack import CityPack
from dispatch.derived import h3_cell, service_day
from dispatch.errors import PlanningError, ValidationError
from dispatch.model import Crew, Depot, RequestStatus, ServiceRequest, is_routable
from dispatch.planning import Plan, Reason, ReasonKind, Stop, plan_day, select_stops_for_day
from dispatch.planning.plan import Unplanned
from dispatch.planning.planner import DEFAULT_TIME_LIMIT_S
from dispatch.planning.problem import crews_from
from dispatch.state import StopStatus
from dispatch.store import RequestFilter, UnitOfWork
from dispatch.store.plans import new_plan_row, plan_from_rows, request_pk, stop_key
from geo.geocoding import precision_label

#: Local time at which a day's plan is made (the supervisor's 7 a.m.).
MORNING = time(7, 0)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PlanSummary:
    """What a planning run produced (``plan``'s stop keys are request primary keys)."""

    plan_id: int
    plan: Plan
    #: When the crews start, for a day planned after its shifts began (else ``None``).
    late_start: datetime | None = None

    def lines(self) -> list[str]:
        """Return the summary the CLI prints."""
        totals = self.plan.totals()
        reasons = Counter(u.reason.kind.label for u in self.plan.unplanned)
        out = [
            f"plan {self.plan_id} (draft) for {self.plan.date.isoformat()}: "
            f"{totals['stops_planned']} stops planned on {totals['routes_used']} of "
            f"{totals['routes']} crews, {totals['stops_unplanned']} unplanned",
            f"total drive {totals['drive_s'] / 3600:.1f} h, "
            f"service {totals['service_s'] / 3600:.1f} h, "
            f"distance {totals['distance_m'] / 1000:.0f} km",
        ]
        if self.late_start is not None:
            out.insert(1, f"planned after the shifts began: crews start at "
                          f"{self.late_start:%H:%M}")
        for reason, count in reasons.most_common():
            out.append(f"  unplanned: {count} {reason}")
        return out


def _planning_instant(uow: UnitOfWork, pack: CityPack, day: date) -> datetime:
    """Return the instant the day's open work is read at.

    Today or later (by the store's clock): now. A past day is replayed as its records
    stood at that morning.
    """
    now = uow.now()
    morning = datetime.combine(day, MORNING, tzinfo=pack.timezone)
    if day >= now.astimezone(pack.timezone).date():
        return now
    return morning


#: What the planner reads of each candidate request (see :func:`_candidates`).
_CANDIDATE_COLUMNS = ("id", "source", "service_code", "category", "requested_at", "status",
                      "address", "zipcode", "lon", "lat", "geocode_precision",
                      "geocode_confidence", "district", "closed_at", "service_date",
                      "priority", "size")


def _candidates(uow: UnitOfWork, pack: CityPack, day: date,
                districts: Collection[str] | None = None) -> list[ServiceRequest]:
    """Read the day's candidates in one filtered SQL query (status, category, district).

    Open at the planning instant means reported by then and not closed by then; the
    open-at and closed-at indexes keep it to the day's backlog, not the history.
    """
    morning = datetime.combine(day, MORNING, tzinfo=pack.timezone)
    at = _planning_instant(uow, pack, day)
    rows = uow.requests.query_columns(RequestFilter(
        categories=pack.routable_categories, open_at=at,
        districts=sorted(districts) if districts else None), columns=_CANDIDATE_COLUMNS)
    out = []
    for row in rows:
        if row.requested_at >= morning and row.service_date != day:
            continue
        req = ServiceRequest(
            source=row.source, external_id=stop_key(row.id), service_code=row.service_code,
            category=row.category, requested_at=row.requested_at,
            status=RequestStatus(row.status), description="", address=row.address or "",
            zipcode=row.zipcode or "", lon=row.lon, lat=row.lat,
            geocode_precision=row.geocode_precision,
            geocode_confidence=row.geocode_confidence, district=row.district,
            closed_at=row.closed_at if row.closed_at is not None and row.closed_at > at
            else None,
            service_date=row.service_date, priority=row.priority, size=row.size)
        if not is_routable(req.geocode_precision, req.geocode_confidence):
            req.lon = req.lat = None  # a zip or street centroid is not a place to send a crew
        out.append(req)
    return out


@service(*SUPERVISING, action="read the day's candidate requests")
def candidate_requests(uow: UnitOfWork, pack: CityPack, day: date) -> list[ServiceRequest]:
    """Return the requests that may need a crew on ``day``, keyed by primary key.

    Those open at the planning instant (today: now by the store's clock); a past day is
    replayed from the recorded timestamps, as the records stood that morning. Each
    returned request's ``external_id`` is its store key (the primary key as text).
    """
    return _candidates(uow, pack, day)


@service(*SUPERVISING, action="plan the day")
def plan_for_day(
    uow: UnitOfWork,
    pack: CityPack,
    day: date,
    *,
    districts: Sequence[str] | None = None,
    absent: Collection[str] = (),
    crews: Sequence[Crew] | None = None,
    seed: int = 1,
    time_limit_s: float | None = None,
    max_workers: int | None = None,
    progress: Progress | None = None,
    sweep: bool = False,
) -> PlanSummary:
    """Plan ``day`` and save the plan as a draft.

    The day's requests are read, the solver runs without holding the database, then
    the draft is written in one short transaction.

    Parameters
    ----------
    uow
        Unit of work; committed once the plan is saved.
    pack
        City pack: categories, depots, roster, time zone.
    day
        Local service date.
    districts
        Only these districts (default all).
    absent
        Names of crews absent for the day.
    crews
        Roster to use (default: the pack's), e.g. with shift changes.
    seed, time_limit_s
        Solver seed and time budget per district.
    max_workers
        Parallel processes for the districts.
    progress
        ``callable(done, total)`` as districts finish.
    sweep
        Also offer the planner optional low-priority "sweep" stops at the strongest
        recent graffiti and dumping hot spots (Gi*); those that fit become requests of
        source ``sweep`` on the crews' routes, the others are simply left out.
    """
    roster = list(crews if crews is not None else pack.crews)
    known = {c.name for c in roster}
    # planned today after the shifts began: the crews start now, not in the past
    roster, late_start = crews_from(roster, day, uow.now(), pack.timezone)
    unknown = sorted(set(absent) - known)
    if unknown:
        raise PlanningError(f"absent crews {unknown} are not in the roster of {pack.name}")
    wanted: set[str] = set()
    if districts:
        wanted = {str(d) for d in districts}
        bad = sorted(wanted - set(pack.district_ids)) if pack.has_districts else []
        if bad:
            raise PlanningError(
                f"district(s) {bad} are not among {pack.district_label.lower()}s "
                f"{', '.join(pack.district_ids)} of {pack.name}"
            )
        roster = [c for c in roster if not c.districts or wanted & set(c.districts)]
    requests = _candidates(uow, pack, day, wanted)
    untrusted = {r.external_id: (r.geocode_precision, r.geocode_confidence)
                 for r in requests if r.lon is None and r.geocode_precision not in (None, "none")}
    stops = select_stops_for_day(requests, day, pack.timezone, pack.categories, morning=MORNING)
    sweeps: dict[str, Stop] = {}
    if sweep:
        from dispatch.services.analytics import sweep_stops_for_day

        found = sweep_stops_for_day(uow, pack, day)
        located = [s for s in found if s.lon is not None and s.lat is not None]
        if located:
            ids = pack.assign_districts(np.array([s.lon for s in located], dtype=float),
                                        np.array([s.lat for s in located], dtype=float))
            for stop, district in zip(located, ids, strict=True):
                # one sweep request per cell and day: SWEEP-<cell>-<yyyymmdd>
                rid = f"{stop.request_id}-{day:%Y%m%d}"
                sweeps[rid] = dataclasses.replace(
                    stop, request_id=rid, district=None if district is None else str(district))
        stops = stops + list(sweeps.values())
    if districts:
        stops = [s for s in stops if s.district in wanted]
        roster = [c if not c.districts else _restrict(c, wanted) for c in roster]
    uow.rollback()  # nothing is held while the solver runs
    plan = plan_day(
        stops,
        roster,
        pack.depots,
        day=day,
        tz=pack.timezone,
        city=pack.name,
        seed=seed,
        time_limit_s=time_limit_s if time_limit_s is not None else DEFAULT_TIME_LIMIT_S,
        absent=frozenset(absent),
        max_workers=max_workers,
        progress=progress,
        travel=pack.travel_model(),
        slack=pack.slack(),
    )
    plan = _explain_untrusted(plan, untrusted)
    uow.begin_write()
    keys: dict[str, int] = {}
    if sweeps:
        plan, keys = _keep_planned_sweeps(uow, pack, plan, sweeps, day)
    keys |= {k: request_pk(k) for k in _plan_keys(plan) if k not in keys}
    settings = {**plan.settings, "seed": seed, "time_limit_s": time_limit_s,
                "absent": sorted(absent), "sweep": sweep,
                "districts": sorted(wanted)}
    row = uow.plans.add(new_plan_row(plan, keys=keys, created_by=uow.actor,
                                     created_at=uow.now(), districts=sorted(wanted),
                                     settings=settings))
    uow.events.append("plan", row.id, "planned", {
        "date": day.isoformat(), "districts": sorted(wanted), "seed": seed, **plan.totals(),
    })
    uow.commit()
    return PlanSummary(row.id, _rekey(plan, keys), late_start)


def _plan_keys(plan: Plan) -> list[str]:
    return [p.request_id for r in plan.routes for p in r.stops] + [
        u.request_id for u in plan.unplanned]


def _rekey(plan: Plan, keys: Mapping[str, int]) -> Plan:
    """Return ``plan`` with every stop keyed by its request's primary key."""
    return _rekey_as(plan, {k: stop_key(pk) for k, pk in keys.items()})


def _explain_untrusted(plan: Plan, untrusted: Mapping[str, tuple[str | None, float | None]],
                       ) -> Plan:
    """Say "location not trustworthy" for requests left out only for their weak position."""
    out = []
    for u in plan.unplanned:
        if u.reason.kind is ReasonKind.NO_LOCATION and u.request_id in untrusted:
            precision, confidence = untrusted[u.request_id]
            u = Unplanned(u.stop, Reason(
                ReasonKind.NEEDS_LOCATION,
                f"position: {precision_label(precision)}, confidence {confidence or 0:.0%}; "
                "confirm it in Needs location"))
        out.append(u)
    return dataclasses.replace(plan, unplanned=out)


def _keep_planned_sweeps(
    uow: UnitOfWork, pack: CityPack, plan: Plan, sweeps: Mapping[str, Stop], day: date
) -> tuple[Plan, dict[str, int]]:
    """Record the sweep stops that made it onto a route as requests; forget the rest.

    Sweep stops are optional work: one the crews had no time for is not backlog.
    Returns the plan without the unplanned sweeps and ``{sweep key: request pk}``.
    """
    planned = [p.stop for r in plan.routes for p in r.stops if p.request_id in sweeps]
    now = uow.now()
    existing = uow.requests.pks_by_key(("sweep", s.request_id) for s in planned)
    keys = {s.request_id: existing[("sweep", s.request_id)] for s in planned
            if ("sweep", s.request_id) in existing}
    events: list[tuple[str, str | int, str, dict[str, Any]]] = []
    for stop in planned:
        if stop.request_id in keys:
            continue
        category = pack.categories[stop.category]
        pk = uow.requests.insert_one({
            "source": "sweep", "external_id": stop.request_id,
            "service_code": category.service_codes[0] if category.service_codes else
            category.code,
            "category": stop.category,
            "description": f"Proactive sweep of a {category.label.lower()} hot spot "
                           f"(Gi*, {day.isoformat()})",
            # (lon, lat) -> "lat, lon" as people read a position
            "address": f"hot spot near {stop.lat:.5f}, {stop.lon:.5f}", "zipcode": "",
            "lon": stop.lon, "lat": stop.lat, "geocode_precision": "manual",
            "geocode_confidence": 1.0, "matched_address": None, "district": stop.district,
            "channel": "driver_self_report", "status": "triaged", "requested_at": now,
            "updated_at": now, "closed_at": None, "expected_at": None, "service_date": day,
            "assigned_org": "", "priority": 0, "size": stop.size, "extra": {"sweep": True},
            "status_owner": "workflow", "overrides": [],
            "service_day": service_day(now, pack.timezone), "h3_cell": h3_cell(stop.lon, stop.lat),
        })
        keys[stop.request_id] = pk
        events.append(("request", pk, "created", {"source": "sweep"}))
    uow.events.append_many(events)
    dropped = [u for u in plan.unplanned if u.request_id not in sweeps]
    return dataclasses.replace(plan, unplanned=dropped), keys


def _restrict(crew: Crew, districts: set[str]) -> Crew:
    return dataclasses.replace(crew, districts=tuple(d for d in crew.districts if d in districts))


@service(*READING, action="read whole plans")
def load_plan(uow: UnitOfWork, plan_id: int) -> Plan:
    """Return a stored plan as the planner's :class:`Plan` (stop keys: request pks).

    Not for crew members: the whole plan names every crew's stops; crews read their own
    route through :func:`dispatch.services.workflow.crew_route`.
    """
    row = uow.plans.get(plan_id)
    if row is None:
        raise PlanningError(f"plan {plan_id} does not exist")
    return plan_from_rows(row)


@service(*READING, action="export plans")
def export_plan(uow: UnitOfWork, plan_id: int) -> Plan:
    """Return a stored plan for exports: each stop named by the city's request id.

    The plan rows key stops by primary key; people, GPS units and spreadsheets read the
    request id the resident was given.
    """
    row = uow.plans.get(plan_id)
    if row is None:
        raise PlanningError(f"plan {plan_id} does not exist")
    plan = plan_from_rows(row)
    names = uow.requests.external_ids(request_pk(k) for k in _plan_keys(plan))
    return _rekey_as(plan, {k: names.get(request_pk(k), k) for k in _plan_keys(plan)})


@service(*READING, action="export plans")
def plan_document(uow: UnitOfWork, plan_id: int) -> dict[str, Any]:
    """Return a stored plan as the JSON contract (:meth:`Plan.to_dict`) for exports.

    Each stop carries the city's ``request_id`` and the store's ``request_pk``.
    """
    row = uow.plans.get(plan_id)
    if row is None:
        raise PlanningError(f"plan {plan_id} does not exist")
    keyed = plan_from_rows(row)
    pks = [request_pk(k) for k in _plan_keys(keyed)]
    names = uow.requests.external_ids(pks)
    doc = _rekey_as(keyed, {stop_key(pk): names.get(pk, str(pk)) for pk in pks}).to_dict()
    doc["plan_id"], doc["status"] = row.id, row.status
    routes = [[request_pk(p.request_id) for p in r.stops] for r in keyed.routes]
    for route, pks_of_route in zip(doc["routes"], routes, strict=True):
        for stop, pk in zip(route["stops"], pks_of_route, strict=True):
            stop["request_pk"] = pk
    for entry, u in zip(doc["unplanned"], keyed.unplanned, strict=True):
        entry["request_pk"] = request_pk(u.request_id)
    return doc


def _rekey_as(plan: Plan, names: Mapping[str, str]) -> Plan:
    def rk(stop: Stop) -> Stop:
        return dataclasses.replace(stop, request_id=names.get(stop.request_id, stop.request_id))

    routes = [dataclasses.replace(r, stops=[dataclasses.replace(p, stop=rk(p.stop))
                                            for p in r.stops]) for r in plan.routes]
    return dataclasses.replace(plan, routes=routes,
                               unplanned=[Unplanned(rk(u.stop), u.reason) for u in plan.unplanned])


@service(*WORKING, action="see plan dates")
def default_plan_date(uow: UnitOfWork, pack: CityPack) -> date:
    """Return the day a supervisor most likely wants to plan: today, by the store's clock."""
    return uow.now().astimezone(pack.timezone).date()


@dataclass(frozen=True)
class UrgentCandidates:
    """Open requests a supervisor may add to a plan: the newest, and how many there are."""

    #: ``{request pk: "request id · category · address"}``, newest reported first.
    newest: dict[int, str]
    #: How many open, well-located routable requests are not on the plan.
    total: int


@service(*SUPERVISING, action="see urgent candidates")
def urgent_candidates(uow: UnitOfWork, pack: CityPack, plan_id: int, *,
                      limit: int = 200) -> UrgentCandidates:
    """Return the newest open, well-located routable requests not on plan ``plan_id``.

    Parameters
    ----------
    uow
        The unit of work (a supervisor's).
    pack
        The city pack (its routable categories and their labels).
    plan_id
        The plan the requests would be added to.
    limit
        How many of the newest to return; the total is counted in the database.

    Returns
    -------
    UrgentCandidates
        The newest ``limit`` (newest first) and the number of all of them.
    """
    if limit < 1:
        raise ValidationError(f"limit must be at least 1, got {limit}")
    if uow.plans.head(plan_id) is None:
        raise PlanningError(f"plan {plan_id} does not exist")
    flt = RequestFilter(categories=pack.routable_categories, open_at=uow.now(), located=True,
                        trusted_position=True, not_on_plan=plan_id)
    rows = uow.requests.query_columns(flt, limit, newest_first=True,
                                      columns=("id", "external_id", "category", "address"))
    labels = {c.code: c.label for c in pack.categories.values()}
    newest = {r.id: f"{r.external_id} · {labels.get(r.category, r.category)} · {r.address}"
              for r in rows}
    total = len(newest) if len(newest) < limit else uow.requests.count_matching(flt)
    return UrgentCandidates(newest=newest, total=total)


def plan_map_geojson(plan: Plan, depots: Mapping[str, Depot],
                     labels: Mapping[int, tuple[str, str, str]] | None = None,
                     ) -> dict[str, Any]:
    """Return the plan as GeoJSON for the map: routes, numbered stops, depots, unplanned.

    ``labels`` (``{request pk: (request id, address, category)}``) names the stops.
    """
    labels = labels or {}

    def label(key: str) -> tuple[str, str]:
        found = labels.get(int(key)) if key.isdigit() else None
        return (found[0], found[1]) if found else (key, "")

    # only what the map draws (not Plan.to_geojson's every field): a city's plan has
    # 2,000 stops, and this runs on every page run; arrival as the crew reads it
    features: list[dict[str, Any]] = []
    zone = plan.zone
    for r in plan.routes:
        if r.stops:
            coords = ([[x, y] for x, y in r.geometry] if r.geometry else
                      [[r.depot_lon, r.depot_lat], *([p.stop.lon, p.stop.lat] for p in r.stops),
                       [r.depot_lon, r.depot_lat]])
            features.append({"type": "Feature",
                             "geometry": {"type": "LineString", "coordinates": coords},
                             "properties": {"kind": "route", "crew": r.crew}})
        for i, p in enumerate(r.stops, start=1):
            rid, address = label(p.request_id)
            features.append({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [p.stop.lon, p.stop.lat]},
                "properties": {"kind": "stop", "crew": r.crew, "sequence": i,
                               "request_id": rid, "address": address,
                               "category": p.stop.category,
                               "arrival": p.arrival.astimezone(zone).strftime("%H:%M")},
            })
    seen: set[str] = set()
    for route in plan.routes:
        if route.depot in seen:
            continue
        seen.add(route.depot)
        depot = depots.get(route.depot)
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [route.depot_lon, route.depot_lat]},
            "properties": {"kind": "depot", "code": route.depot,
                           "name": depot.name if depot else route.depot},
        })
    for u in plan.unplanned:
        if u.stop.lon is None or u.stop.lat is None:
            continue
        rid, address = label(u.request_id)
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [u.stop.lon, u.stop.lat]},
            "properties": {"kind": "unplanned", "request_id": rid, "address": address,
                           "category": u.stop.category, "reason": str(u.reason)},
        })
    return {"type": "FeatureCollection", "features": features}


@dataclass(frozen=True)
class RouteProgress:
    """One row of the plan page's route list: a crew's day and how far it got."""

    crew: str
    district: str | None
    stops: int
    load: int
    capacity: int
    drive_s: int
    service_s: int
    done: int
    cant_complete: int
    remaining: int


def route_progress(plan: Plan, stop_status: Mapping[int, str]) -> list[RouteProgress]:
    """Return one :class:`RouteProgress` per crew of ``plan``, in the plan's order.

    ``stop_status`` is ``{request pk: stop status}`` (a stop not in it is pending).
    """
    out = []
    for route in plan.routes:
        states = [stop_status.get(int(p.request_id), StopStatus.PENDING.value)
                  for p in route.stops]
        done = sum(s == StopStatus.DONE.value for s in states)
        cant = sum(s == StopStatus.CANT_COMPLETE.value for s in states)
        out.append(RouteProgress(
            crew=route.crew, district=route.district, stops=len(route.stops),
            load=route.load, capacity=route.capacity, drive_s=route.drive_s,
            service_s=route.service_s, done=done, cant_complete=cant,
            remaining=len(states) - done - cant))
    return out
