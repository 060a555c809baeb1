"""Planning service: open requests of a day -> a draft plan saved in the store.

The service gathers the day's candidate requests from the store, hands them to the
pure planner (:mod:`dispatch.planning`) and saves the result as a draft plan with one
route per crew and one stop row per planned request.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import numpy as np

from dispatch.auth import READING, SUPERVISING, require
from dispatch.citypack import CityPack
from dispatch.errors import PlanningError
from dispatch.model import (
    CLOSED_STATUSES,
    Crew,
    Depot,
    RequestStatus,
    ServiceRequest,
    is_routable,
)
from dispatch.planning import Plan, Stop, plan_day, select_stops_for_day
from dispatch.planning.planner import DEFAULT_TIME_LIMIT_S
from dispatch.store import RequestFilter, UnitOfWork, utcnow
from dispatch.store.models import PlanRow, RouteRow, StopRow

#: Local time at which a day's plan is made (the supervisor's 7 a.m.).
MORNING = time(7, 0)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PlanSummary:
    """What a planning run produced."""

    plan_id: int
    plan: Plan

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
        for reason, count in reasons.most_common():
            out.append(f"  unplanned: {count} {reason}")
        return out


def candidate_requests(uow: UnitOfWork, pack: CityPack, day: date) -> list[ServiceRequest]:
    """Return the requests that may need a crew on ``day``.

    Those still open now, plus those closed after ``day``'s morning (a past day is
    replayed from the recorded timestamps, as the records stood that morning).
    """
    morning = datetime.combine(day, MORNING, tzinfo=pack.timezone)
    rows = uow.requests.query(RequestFilter(categories=pack.routable_categories))
    out = []
    for row in rows:
        req = row.to_domain()
        if req.requested_at >= morning and req.service_date != day:
            continue
        if req.status in CLOSED_STATUSES and (req.closed_at is None or req.closed_at < morning):
            continue
        if not is_routable(req.geocode_precision, req.geocode_confidence):
            req.lon = req.lat = None  # a zip or street centroid is not a place to send a crew
        out.append(req)
    return out


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
    allow_cross_district: bool = False,
    max_workers: int | None = None,
    progress: Progress | None = None,
    sweep: bool = False,
) -> PlanSummary:
    """Plan ``day`` and save the plan as a draft.

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
    allow_cross_district
        Let crews serving several districts cross between them.
    max_workers
        Parallel processes for the districts.
    progress
        ``callable(done, total)`` as districts finish.
    sweep
        Also offer the planner optional low-priority "sweep" stops at the strongest
        recent graffiti and dumping hot spots (Gi*); those that fit become requests of
        source ``sweep`` on the crews' routes, the others are simply left out.
    """
    require(uow.principal, *SUPERVISING, action="plan the day")
    roster = list(crews if crews is not None else pack.crews)
    known = {c.name for c in roster}
    unknown = sorted(set(absent) - known)
    if unknown:
        raise PlanningError(f"absent crews {unknown} are not in the roster of {pack.name}")
    if districts:
        wanted = {str(d) for d in districts}
        bad = sorted(wanted - set(pack.district_ids)) if pack.has_districts else []
        if bad:
            raise PlanningError(
                f"district(s) {bad} are not among {pack.district_label.lower()}s "
                f"{', '.join(pack.district_ids)} of {pack.name}"
            )
        roster = [c for c in roster if not c.districts or wanted & set(c.districts)]
    requests = candidate_requests(uow, pack, day)
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
        roster = [
            c if not c.districts else _restrict(c, wanted) for c in roster
        ]
    plan = plan_day(
        stops,
        roster,
        pack.depots,
        day=day,
        tz=pack.timezone,
        city=pack.name,
        seed=seed,
        time_limit_s=time_limit_s if time_limit_s is not None else DEFAULT_TIME_LIMIT_S,
        allow_cross_district=allow_cross_district,
        absent=frozenset(absent),
        max_workers=max_workers,
        progress=progress,
        travel=pack.travel_model(),
        slack=pack.slack(),
    )
    if sweeps:
        plan = _keep_planned_sweeps(uow, pack, plan, sweeps, day)
    plan_id = save_plan(uow, plan, created_by=uow.actor)
    uow.events.append("plan", plan_id, "planned", {
        "date": day.isoformat(), "districts": list(districts or []), "seed": seed,
        **plan.totals(),
    })
    uow.commit()
    return PlanSummary(plan_id, plan)


def _keep_planned_sweeps(
    uow: UnitOfWork, pack: CityPack, plan: Plan, sweeps: Mapping[str, Stop], day: date
) -> Plan:
    """Record the sweep stops that made it onto a route as requests; forget the rest.

    Sweep stops are optional work: one the crews had no time for is not backlog.
    """
    planned = [p.stop for r in plan.routes for p in r.stops if p.request_id in sweeps]
    now = utcnow()
    existing = uow.requests.pks_by_external_id([s.request_id for s in planned])
    rows: list[dict[str, Any]] = []
    for stop in planned:
        if stop.request_id in existing:
            continue
        category = pack.categories[stop.category]
        rows.append({
            "source": "sweep", "external_id": stop.request_id,
            "service_code": category.service_codes[0] if category.service_codes else
            category.code,
            "category": stop.category,
            "description": f"Proactive sweep of a {category.label.lower()} hot spot "
                           f"(Gi*, {day.isoformat()})",
            "address": f"hot spot near {stop.lat:.5f}, {stop.lon:.5f}", "zipcode": "",
            "lon": stop.lon, "lat": stop.lat, "geocode_precision": "manual",
            "geocode_confidence": 1.0, "matched_address": None, "district": stop.district,
            "channel": "driver_self_report", "status": "triaged", "requested_at": now,
            "updated_at": now, "closed_at": None, "expected_at": None, "service_date": day,
            "assigned_org": "", "priority": 0, "size": stop.size, "extra": {"sweep": True},
        })
    uow.requests.insert_many(rows)
    if rows:
        uow.events.append_many(
            ("request", pk, "created", {"source": "sweep"})
            for pk in uow.requests.pks_by_external_id(
                str(r["external_id"]) for r in rows).values()
        )
    dropped = [u for u in plan.unplanned if u.request_id not in sweeps]
    return dataclasses.replace(plan, unplanned=dropped)


def _restrict(crew: Crew, districts: set[str]) -> Crew:
    from dataclasses import replace

    return replace(crew, districts=tuple(d for d in crew.districts if d in districts))


def save_plan(uow: UnitOfWork, plan: Plan, *, created_by: str, status: str = "draft") -> int:
    """Store a plan with its routes and stops; return its id."""
    row = PlanRow(
        city=plan.city,
        service_date=plan.date,
        status=status,
        seed=plan.seed,
        created_at=utcnow(),
        created_by=created_by,
        payload=plan.to_dict(),
    )
    row.routes.extend(route_rows(uow, plan))
    return uow.plans.add(row).id


def route_rows(
    uow: UnitOfWork,
    plan: Plan,
    states: Mapping[int, StopRow] | None = None,
    locked: Collection[str] = (),
) -> list[RouteRow]:
    """Return the store rows of the plan's routes and stops.

    ``states`` carries what crews already recorded on a stop (by request key) into the
    new rows; ``locked`` names the stops shown as locked.
    """
    wanted = [p.request_id for r in plan.routes for p in r.stops]
    ids = uow.requests.pks_by_external_id(wanted)
    missing = sorted(set(wanted) - set(ids))
    if missing:
        raise PlanningError(f"planned requests {missing[:5]} are not in the store")
    states = states or {}
    rows = []
    for route in plan.routes:
        route_row = RouteRow(crew_name=route.crew, district=route.district,
                             distance_m=route.distance_m, drive_s=route.drive_s,
                             service_s=route.service_s, load=route.load)
        for seq, planned in enumerate(route.stops, start=1):
            pk = ids[planned.request_id]
            old = states.get(pk)
            route_row.stops.append(StopRow(
                request_id=pk, sequence=seq, eta=planned.arrival, departure=planned.departure,
                status=old.status if old else "pending",
                reason=old.reason if old else None, note=old.note if old else None,
                completed_at=old.completed_at if old else None,
                locked=planned.request_id in locked,
            ))
        rows.append(route_row)
    return rows


def load_plan(uow: UnitOfWork, plan_id: int) -> Plan:
    """Return a stored plan as the planner's :class:`Plan`.

    Not for crew members: the whole plan names every crew's stops; crews read their own
    route through :func:`dispatch.services.workflow.crew_route`.
    """
    require(uow.principal, *READING, action="read whole plans")
    row = uow.plans.get(plan_id)
    if row is None:
        raise PlanningError(f"plan {plan_id} does not exist")
    return Plan.from_dict(row.payload)




def default_plan_date(uow: UnitOfWork, pack: CityPack) -> date | None:
    """Return the day a supervisor most likely wants to plan.

    The newest day with a plan; else, for a store holding only past requests (a
    replay), the last day on which requests were made; else ``None``.
    """
    latest = uow.plans.latest_date(pack.name)
    if latest is not None:
        return latest
    _, hi = uow.requests.date_range()
    return None if hi is None else hi.astimezone(pack.timezone).date()


def urgent_candidates(uow: UnitOfWork, pack: CityPack, plan: Plan) -> dict[int, str]:
    """Return open, well-located routable requests not in ``plan``: ``{pk: label}``."""
    in_plan = {p.request_id for r in plan.routes for p in r.stops}
    in_plan |= {u.request_id for u in plan.unplanned}
    out: dict[int, str] = {}
    rows = uow.requests.query(RequestFilter(categories=pack.routable_categories,
                                            statuses=[s.value for s in RequestStatus
                                                      if s not in CLOSED_STATUSES],
                                            located=True))
    for row in rows:
        if row.external_id in in_plan or not is_routable(
                row.geocode_precision, row.geocode_confidence):
            continue
        out[row.id] = f"{row.external_id} · {row.category} · {row.address}"
    return out


def plan_map_geojson(plan: Plan, depots: Mapping[str, Depot]) -> dict[str, Any]:
    """Return the plan as GeoJSON for the map: routes, numbered stops, depots, unplanned."""
    doc = plan.to_geojson()
    features = []
    for feat in doc["features"]:
        props = dict(feat["properties"])
        if props.get("kind") == "stop":
            props["sequence"] = props.get("seq")
        features.append({**feat, "properties": props})
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
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [u.stop.lon, u.stop.lat]},
            "properties": {"kind": "unplanned", "request_id": u.request_id,
                           "category": u.stop.category, "reason": str(u.reason)},
        })
    return {"type": "FeatureCollection", "features": features}
