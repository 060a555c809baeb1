"""Plan a day (:func:`plan_day`) and re-plan part of it (:func:`replan`)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from dispatch.errors import PlanningError
from dispatch.model import Crew, Depot
from dispatch.planning.plan import Break, Plan, PlannedStop, Route, Unplanned
from dispatch.planning.problem import (
    DayClock,
    Lock,
    Reason,
    ReasonKind,
    Stop,
    SubProblem,
    skill_key,
    split_day,
)
from dispatch.planning.solver import (
    BuiltProblem,
    SolveTask,
    TaskResult,
    assign_crews,
    build_problem,
    run_task,
    schedule_route,
)
from dispatch.planning.workers import solver_pool
from geo.travel import HaversineTravel, TravelModel

#: Default wall-clock cap per sub-problem (a crew type in a district), seconds. A safety
#: net: the iteration budget normally ends the search first (and keeps it deterministic).
DEFAULT_TIME_LIMIT_S = 20.0

#: Solver iterations per sub-problem: ``ITERATIONS_PER_STOP * stops``, clamped. Chosen so
#: that the LA day (about 2,000 stops, 30 sub-problems, largest 220 stops) is planned in
#: well under 60 s on 2 cores; see the Planning section of docs/benchmarks.md.
ITERATIONS_PER_STOP = 10
MIN_ITERATIONS = 400
MAX_ITERATIONS = 2_500

Progress = Callable[[int, int], None]


def auto_iterations(n_stops: int, scale: float = 1.0) -> int:
    """Return the default deterministic iteration budget for a sub-problem of ``n_stops``."""
    base = min(MAX_ITERATIONS, max(MIN_ITERATIONS, ITERATIONS_PER_STOP * n_stops))
    return int(base * scale)


@dataclass
class _Job:
    built: BuiltProblem
    task: SolveTask


def _solve_all(
    jobs: list[_Job], max_workers: int | None, progress: Progress | None
) -> dict[str, TaskResult]:
    out: dict[str, TaskResult] = {}
    total = len(jobs)
    workers = (os.cpu_count() or 1) if max_workers is None else max(1, max_workers)
    todo = [j for j in jobs if j.task.data.num_clients > 0]
    for j in jobs:
        if j.task.data.num_clients == 0:
            out[j.task.key] = TaskResult(j.task.key, [])
    done = len(out)
    if progress:
        progress(done, total)
    if workers <= 1 or len(todo) <= 1:
        for j in todo:
            res = run_task(j.task)
            out[res.key] = res
            done += 1
            if progress:
                progress(done, total)
        return out
    # Largest first, so that the long jobs do not finish last.
    todo.sort(key=lambda j: -j.task.data.num_clients)
    with solver_pool(min(workers, len(todo))) as pool:
        futs = [pool.submit(run_task, j.task) for j in todo]
        for f in as_completed(futs):
            res = f.result()
            out[res.key] = res
            done += 1
            if progress:
                progress(done, total)
    return out


def _routes_of(
    built: BuiltProblem,
    solved: list[tuple[int, list[int]]],
    clock: DayClock,
    unplanned: dict[str, Reason],
    positions: Mapping[str, int] | None = None,
) -> list[Route]:
    sub = built.sub
    by_crew = assign_crews(built, solved)
    crews = {c.name: c for c in sub.crews}
    # Locks are hard: a locked stop the solver left on another route goes to its crew.
    index = {s.request_id: j for j, s in enumerate(sub.stops)}
    lock_crew = {index[rid]: lk.crew for rid, lk in built.locks.items() if lk.crew in crews}
    for name in by_crew:
        by_crew[name] = [j for j in by_crew[name] if lock_crew.get(j, name) == name]
    for j, name in sorted(lock_crew.items()):
        if j not in by_crew[name]:
            by_crew[name].append(j)
    planned: set[int] = set()
    routes = []
    for name in sorted(by_crew):
        crew = crews[name]
        seq = list(by_crew[name])
        if positions:
            seq = _apply_positions(seq, sub.stops, positions, name, built)
        dloc = built.crew_depot_loc[name]
        tl, bad = schedule_route(crew, seq, sub.stops, built.dur_s, clock, dloc, built.n_depots)
        load = sum(sub.stops[j].size for j in seq)
        while (bad > 0 or load > crew.capacity) and seq:
            # Drop the least valuable stop until the route fits (rare: breaks, or locks
            # that ask for more than the crew can do); unlocked stops go first.
            # Unlocked stops go first, then stops locked without a position, then the rest.
            def rank(j: int) -> tuple[int, int, int]:
                lk = built.locks.get(sub.stops[j].request_id)
                tier = 0 if lk is None else (1 if lk.position is None else 2)
                return (tier, sub.stops[j].prize, -sub.stops[j].service_s)

            worst = min(seq, key=rank)
            seq.remove(worst)
            what = (ReasonKind.OVER_CAPACITY if load > crew.capacity
                    else ReasonKind.NOT_ENOUGH_TIME)
            locked = sub.stops[worst].request_id in built.locks
            unplanned[sub.stops[worst].request_id] = Reason(
                what,
                f"crew {name} cannot take locked stop (its other locked stops, "
                "lunch break and windows leave no room)"
                if locked
                else f"on crew {name}'s route in district {sub.stops[worst].district} "
                "(locked stops, lunch break and windows leave no room)",
            )
            load -= sub.stops[worst].size
            tl, bad = schedule_route(crew, seq, sub.stops, built.dur_s, clock, dloc, built.n_depots)
        planned.update(seq)
        depot = built.depots[dloc]
        locs = [dloc] + [built.n_depots + j for j in seq] + [dloc]
        dist = sum(int(built.dist_m[a, b]) for a, b in itertools.pairwise(locs))
        drive = sum(int(built.dur_s[a, b]) for a, b in itertools.pairwise(locs))
        stops = [
            PlannedStop(sub.stops[j], clock.at(a), clock.at(d))
            for j, a, d in zip(seq, tl.arrivals, tl.departures, strict=True)
        ]
        routes.append(
            Route(
                crew=name,
                skills=skill_key(crew),
                district=sub.districts[0] if sub.districts else None,
                districts=sub.districts,
                depot=depot.code,
                depot_lon=depot.lon,
                depot_lat=depot.lat,
                shift_start=clock.at(clock.local_seconds(crew.shift_start)),
                shift_end=clock.at(clock.local_seconds(crew.shift_end)),
                capacity=crew.capacity,
                start=clock.at(tl.start),
                end=clock.at(tl.end),
                stops=stops,
                brk=None
                if tl.brk is None
                else Break(clock.at(tl.brk[0]), clock.at(tl.brk[1]), tl.brk[2]),
                distance_m=dist,
                drive_s=drive,
                crew_districts=crew.districts,
                lunch_start=crew.lunch_start,
                lunch_end=crew.lunch_end,
                lunch_s=crew.lunch_s,
                max_duration_s=crew.max_duration_s,
            )
        )
    # Stops the solver dropped: say whether capacity or time ran out.
    loads = {r.crew: r.load for r in routes}
    for j, s in enumerate(sub.stops):
        if j in planned or s.request_id in unplanned:
            continue
        where = "district " + ",".join(sub.districts) if sub.districts else "the city"
        lock = built.locks.get(s.request_id)
        if lock is not None:
            cap = crews[lock.crew].capacity
            unplanned[s.request_id] = (
                Reason(ReasonKind.OVER_CAPACITY,
                       f"crew {lock.crew} is full, cannot take locked stop")
                if loads[lock.crew] + s.size > cap
                else Reason(ReasonKind.NOT_ENOUGH_TIME,
                            f"on crew {lock.crew}'s route for the locked stop")
            )
            continue
        full = all(loads[c.name] + s.size > c.capacity for c in sub.crews)
        unplanned[s.request_id] = (
            Reason(ReasonKind.OVER_CAPACITY,
                   f"every {'+'.join(sub.skills)} truck in {where} is full "
                   "(dropped as less urgent)")
            if full
            else Reason(ReasonKind.NOT_ENOUGH_TIME, f"in {where} (dropped as less urgent)")
        )
    return routes


def _apply_positions(
    seq: list[int],
    stops: Sequence[Stop],
    positions: Mapping[str, int],
    crew: str,
    built: BuiltProblem,
) -> list[int]:
    fixed = {
        j: positions[s.request_id]
        for j, s in enumerate(stops)
        if s.request_id in positions and built.locks.get(s.request_id) is not None
        and built.locks[s.request_id].crew == crew
    }  # fmt: skip
    if not fixed:
        return seq
    free = [j for j in seq if j not in fixed]
    out: list[int] = []
    by_pos = sorted(fixed.items(), key=lambda kv: kv[1])
    it = iter(free)
    pos_map = {p: j for j, p in by_pos}
    n = len(free) + len(fixed)
    for p in range(n):
        if p in pos_map:
            out.append(pos_map[p])
        else:
            nxt = next(it, None)
            if nxt is not None:
                out.append(nxt)
    # positions beyond the route length: append in order
    out += [j for j, p in by_pos if p >= n and j not in out]
    out += [j for j in it if j not in out]
    return out


def _finish(
    routes: list[Route],
    unplanned: dict[str, Reason],
    stops_by_id: Mapping[str, Stop],
) -> tuple[list[Route], list[Unplanned]]:
    routes = sorted(routes, key=lambda r: (_dkey(r.district), r.crew))
    un = [Unplanned(stops_by_id[i], unplanned[i]) for i in sorted(unplanned)]
    return routes, un


def _dkey(d: str | None) -> tuple[int, str]:
    if d is None:
        return (10**9, "")
    return (int(d), d) if d.isdigit() else (10**8, d)


def plan_day(
    stops: Sequence[Stop],
    crews: Sequence[Crew],
    depots: Mapping[str, Depot],
    *,
    day: date,
    tz: ZoneInfo,
    travel: TravelModel | None = None,
    city: str = "",
    seed: int = 1,
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
    iterations: int | None = None,
    iteration_scale: float = 1.0,
    allow_cross_district: bool = False,
    absent: Collection[str] = frozenset(),
    max_workers: int | None = None,
    progress: Progress | None = None,
    stats: list[dict[str, object]] | None = None,
) -> Plan:
    """Turn the day's stops into one ordered route per available crew.

    Parameters
    ----------
    stops
        Candidate stops (see :func:`dispatch.planning.replay.select_stops_for_day`).
    crews
        Roster; crews named in ``absent`` are left out.
    depots
        Depots by code.
    day, tz
        Planned day and the city's time zone (shifts are local wall-clock times).
    travel
        Travel model; default :class:`geo.travel.HaversineTravel`.
    city
        City id written into the plan.
    seed
        Solver seed; same inputs and seed give the same plan.
    time_limit_s
        Wall-clock cap per sub-problem (safety net; ``None``: no cap).
    iterations
        Solver iterations per sub-problem; default :func:`auto_iterations`.
    iteration_scale
        Multiplies the default iteration budget (``10`` for the quality benchmark).
    allow_cross_district
        Let a crew serving several districts work across them (solved jointly).
    absent
        Names of absent crews.
    max_workers
        Parallel processes (default ``os.cpu_count()``; ``1``: in-process).
    progress
        Optional ``callable(done, total)`` called as sub-problems finish.
    stats
        Optional list that receives one dict per sub-problem (key, stops, crews,
        iterations run, budget, runtime_s), e.g. for benchmarks.

    Returns
    -------
    Plan
        Routes (one per available crew) and unplanned stops with reasons.
    """
    travel = travel or HaversineTravel()
    clock = DayClock(day, tz)
    subs, unplanned = split_day(
        stops,
        crews,
        clock,
        allow_cross_district=allow_cross_district,
        absent=frozenset(absent),
        depots=depots,
    )
    dmap = dict(depots)
    jobs = []
    for sub in subs:
        built = build_problem(sub, dmap, clock, travel)
        its = (
            iterations
            if iterations is not None
            else auto_iterations(len(sub.stops), iteration_scale)
        )
        jobs.append(_Job(built, SolveTask(sub.key, built.data, seed, its, time_limit_s)))
    solved = _solve_all(jobs, max_workers, progress)
    routes: list[Route] = []
    for job in jobs:
        res = solved[job.task.key]
        routes += _routes_of(job.built, res.routes, clock, unplanned)
        if stats is not None:
            stats.append(
                {
                    "key": job.task.key,
                    "stops": len(job.built.sub.stops),
                    "crews": len(job.built.sub.crews),
                    "iterations": res.iterations,
                    "budget": job.task.iterations,
                    "runtime_s": round(res.runtime_s, 3),
                }
            )
    routes, un = _finish(routes, unplanned, {s.request_id: s for s in stops})
    return Plan(
        date=day,
        city=city,
        tz=tz.key,
        seed=seed,
        routes=routes,
        unplanned=un,
        settings={
            "travel": type(travel).__name__,
            "allow_cross_district": allow_cross_district,
            "absent": sorted(absent),
            "time_limit_s": time_limit_s,
            "iterations": iterations,
            "iteration_scale": iteration_scale,
        },
    )


# ---------------------------------------------------------------------------------------
# Re-planning


def replan(
    plan: Plan,
    *,
    locks: Iterable[Lock] = (),
    moves: Mapping[str, str] | None = None,
    add: Sequence[Stop] = (),
    remove_crews: Collection[str] = (),
    now: datetime | None = None,
    travel: TravelModel | None = None,
    seed: int | None = None,
    time_limit_s: float | None = 0.5,
    iterations: int | None = None,
) -> Plan:
    """Change a plan and re-optimise only what the change touches.

    The *groups* touched are those (crew type, districts) whose routes receive or lose
    a stop: the routes of a moved stop's old and new crew, of a removed crew's group,
    and of the group able to take each added stop. Every other route is returned
    unchanged. Inside a touched group the stops keep their crew when locked (and their
    index when the lock has a ``position``); everything else may be re-ordered or moved
    between that group's routes, or dropped if it no longer fits. Stops already left
    behind at ``now`` are locked in place.

    Parameters
    ----------
    plan
        The current plan (e.g. from :meth:`Plan.from_json`).
    locks
        Stops to keep on a crew (optionally at a position).
    moves
        ``{request_id: crew}``: put the stop on that crew's route (locked there).
    add
        New stops (e.g. an urgent request: give it a high ``urgency``).
    remove_crews
        Crews leaving (breakdown, sickness); their stops not yet served are re-planned.
    now
        Current time; stops departed before it stay where they are.
    travel
        Travel model (default :class:`geo.travel.HaversineTravel`).
    seed
        Solver seed (default: the plan's).
    time_limit_s, iterations
        Solver budget for each touched group.

    Returns
    -------
    Plan
        A new plan.
    """
    travel = travel or HaversineTravel()
    tz = plan.zone
    clock = plan.clock
    seed = plan.seed if seed is None else seed
    moves = dict(moves or {})
    removed = set(remove_crews)
    known = {r.crew for r in plan.routes}
    for name in [*removed, *moves.values()]:
        if name not in known:
            raise PlanningError(
                f"crew {name!r} is not in the plan of {plan.date}; known: {sorted(known)}"
            )
    crews = {r.crew: r.crew_object(tz) for r in plan.routes}
    depots = {r.depot: Depot(r.depot, r.depot, "", r.depot_lon, r.depot_lat) for r in plan.routes}
    group_of = {r.crew: (r.skills, r.districts) for r in plan.routes}
    where: dict[str, str] = {}
    all_stops: dict[str, Stop] = {}
    for r in plan.routes:
        for p in r.stops:
            where[p.request_id] = r.crew
            all_stops[p.request_id] = p.stop
    for u in plan.unplanned:
        all_stops[u.request_id] = u.stop
    for s in add:
        if s.request_id in all_stops:
            raise PlanningError(f"added stop {s.request_id} is already in the plan")
        all_stops[s.request_id] = s
    for rid, name in moves.items():
        if rid not in all_stops:
            raise PlanningError(f"moved stop {rid} is not in the plan of {plan.date}")
        s, c = all_stops[rid], crews[name]
        if s.category not in c.categories or (c.districts and s.district not in c.districts):
            raise PlanningError(
                f"cannot move stop {rid} ({s.category}, district {s.district}) to crew "
                f"{name}: it serves {list(c.categories)} in districts {list(c.districts)}"
            )
        if s.lon is None or s.lat is None:
            raise PlanningError(f"cannot move stop {rid}: it has no location")

    lock_map: dict[str, Lock] = {lk.request_id: lk for lk in locks}
    for rid, crew in moves.items():
        if lock_map.get(rid) is None or lock_map[rid].crew != crew:
            lock_map[rid] = Lock(rid, crew, None)
    if now is not None:
        for r in plan.routes:
            for i, p in enumerate(r.stops):
                if p.arrival <= now:
                    lock_map[p.request_id] = Lock(p.request_id, r.crew, i)

    touched: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    for rid, crew in moves.items():
        touched.add(group_of[crew])
        if rid in where:
            touched.add(group_of[where[rid]])
    for name in removed:
        touched.add(group_of[name])
    add_ids = {s.request_id for s in add}
    add_unplanned: dict[str, Reason] = {}
    for s in add:
        g = _group_for(s, plan.routes, removed)
        if s.lon is None or s.lat is None:
            add_unplanned[s.request_id] = Reason(ReasonKind.NO_LOCATION)
        elif g is None:
            add_unplanned[s.request_id] = Reason(
                ReasonKind.NO_SKILLED_CREW, f"{s.category} in district {s.district}"
            )
        else:
            touched.add(g)
    # Stops of removed crews already served before `now` stay with them.
    keep_done = {
        rid for rid, lk in lock_map.items() if lk.crew in removed and lk.position is not None
    }

    new_routes: list[Route] = []
    unplanned: dict[str, Reason] = {u.request_id: u.reason for u in plan.unplanned}
    unplanned.update(add_unplanned)
    for r in plan.routes:
        if (r.skills, r.districts) not in touched:
            new_routes.append(r)
        elif r.crew in removed:
            done = [p for p in r.stops if p.request_id in keep_done]
            if done:
                new_routes.append(_truncate(r, done, travel, clock))
    for g in sorted(touched):
        skills, districts = g
        gcrews = [
            crews[r.crew] for r in plan.routes if group_of[r.crew] == g and r.crew not in removed
        ]
        ids = [
            p.request_id
            for r in plan.routes
            if group_of[r.crew] == g
            for p in r.stops
            if p.request_id not in keep_done
        ]
        ids += [rid for rid in moves if moves[rid] in {c.name for c in gcrews} and rid not in ids]
        ids = [rid for rid in ids if rid not in moves or moves[rid] in {c.name for c in gcrews}]
        ids += [
            s.request_id
            for s in add
            if s.request_id in add_ids
            and s.request_id not in add_unplanned
            and _group_for(s, plan.routes, removed) == g
        ]
        # Previously dropped stops of this group get another chance.
        ids += [
            u.request_id
            for u in plan.unplanned
            if u.stop.category in skills
            and (not districts or u.stop.district in districts)
            and u.reason.kind.retry_on_replan
        ]
        ids = list(dict.fromkeys(ids))
        for rid in ids:
            unplanned.pop(rid, None)
        if not gcrews:
            for rid in ids:
                unplanned[rid] = Reason(
                    ReasonKind.NO_CREW_LEFT,
                    f"for {'+'.join(skills)} in district {','.join(districts)}",
                )
            continue
        sub = SubProblem(skills, districts, gcrews, [all_stops[i] for i in ids])
        glocks = [
            lock_map[i]
            for i in ids
            if i in lock_map and lock_map[i].crew in {c.name for c in gcrews}
        ]
        built = build_problem(sub, depots, clock, travel, glocks)
        index = {s.request_id: j for j, s in enumerate(sub.stops)}
        initial = _initial(built, plan, index, moves, removed)
        its = iterations if iterations is not None else auto_iterations(len(sub.stops), 0.5)
        task = SolveTask(sub.key, built.data, seed, its, time_limit_s, initial)
        solved = run_task(task).routes
        positions = {i: lk.position for i, lk in built.locks.items() if lk.position is not None}
        new_routes += _routes_of(built, solved, clock, unplanned, positions)
    routes, un = _finish(new_routes, unplanned, all_stops)
    return Plan(plan.date, plan.city, plan.tz, seed, routes, un, dict(plan.settings))


def _group_for(
    s: Stop, routes: Sequence[Route], removed: Collection[str]
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    counts: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
    for r in routes:
        if r.crew in removed or s.category not in r.skills:
            continue
        if r.districts and s.district not in r.districts:
            continue
        g = (r.skills, r.districts)
        counts[g] = counts.get(g, 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda g: (-counts[g], g))


def _initial(
    built: BuiltProblem,
    plan: Plan,
    index: Mapping[str, int],
    moves: Mapping[str, str],
    removed: Collection[str],
) -> list[tuple[int, list[int]]]:
    vt_of: dict[str, int] = {}
    for vt, members in enumerate(built.vehicle_crews):
        for c in members:
            vt_of[c.name] = vt
    out = []
    for r in plan.routes:
        if r.crew in removed or r.crew not in vt_of:
            continue
        visits = [
            index[p.request_id]
            for p in r.stops
            if p.request_id in index and moves.get(p.request_id, r.crew) == r.crew
        ]
        if visits:
            out.append((vt_of[r.crew], visits))
    return out


def _truncate(r: Route, done: list[PlannedStop], travel: TravelModel, clock: DayClock) -> Route:
    import numpy as np

    pts = np.array(
        [[r.depot_lon, r.depot_lat]] + [[p.stop.lon, p.stop.lat] for p in done], dtype=np.float64
    )
    dist, dur = travel.matrix(pts)
    n = len(done)
    order = [0, *range(1, n + 1), 0]
    end = clock.seconds(done[-1].departure) + int(dur[n, 0])
    brk = r.brk if r.brk is not None and r.brk.after_stops <= n else None
    return Route(
        crew=r.crew,
        skills=r.skills,
        district=r.district,
        districts=r.districts,
        depot=r.depot,
        depot_lon=r.depot_lon,
        depot_lat=r.depot_lat,
        shift_start=r.shift_start,
        shift_end=r.shift_end,
        capacity=r.capacity,
        start=r.start,
        end=clock.at(end),
        stops=list(done),
        brk=brk,
        distance_m=sum(int(dist[a, b]) for a, b in itertools.pairwise(order)),
        drive_s=sum(int(dur[a, b]) for a, b in itertools.pairwise(order)),
        crew_districts=r.crew_districts,
        lunch_start=r.lunch_start,
        lunch_end=r.lunch_end,
        lunch_s=r.lunch_s,
        max_duration_s=r.max_duration_s,
    )
