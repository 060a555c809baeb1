"""Plan a day (:func:`plan_day`) and re-plan part of it (:func:`replan`).

:func:`plan_day` solves each sub-problem (a crew type in a group of districts linked by
its crews' territories, see :mod:`dispatch.planning.problem`) in a *chain* of solver
runs: a first run over the whole group, then up to :data:`FOCUS_ROUNDS` *focus rounds*
while stops are left over. A focus round re-solves, warm-started from the current
routes, only the crews able to take a left-over stop plus those sharing a district with
them (:data:`FOCUS_HOPS` steps out), with their stops and the left-over ones; its answer
replaces theirs when it is better (more prize net of driving). Chains are independent, so they
run in parallel processes, and every run has a fixed seed and iteration budget: the
same inputs give the same plan, in parallel or in-process.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from dispatch.errors import PlanningError
from dispatch.model import Crew, Depot
from dispatch.planning.plan import Break, Plan, PlannedStop, Route, Unplanned
from dispatch.planning.problem import (
    DEFAULT_SLACK,
    DayClock,
    Lock,
    Reason,
    ReasonKind,
    Slack,
    Stop,
    SubProblem,
    district_sort,
    serves,
    skill_key,
    split_day,
)
from dispatch.planning.solver import (
    BuiltProblem,
    SolveTask,
    TaskResult,
    Timeline,
    assign_crews,
    build_problem,
    run_task,
    schedule_route,
    slice_problem,
)
from dispatch.planning.workers import solver_pool
from geo.travel import HaversineTravel, TravelModel, travel_from_spec, travel_spec

#: Default wall-clock cap per solver run, seconds. A safety net: the iteration budget
#: normally ends the search first (and keeps it deterministic).
DEFAULT_TIME_LIMIT_S = 20.0

#: Solver iterations per run: ``ITERATIONS_PER_STOP * stops``, clamped. Chosen so that
#: the LA day (about 2,000 stops in five territory groups, the largest 882 stops) is
#: planned in under 10 s on 2 cores; see the Planning section of docs/benchmarks.md.
ITERATIONS_PER_STOP = 6
MIN_ITERATIONS = 400
MAX_ITERATIONS = 3_000

#: Focus rounds per sub-problem while stops are left over (see the module docstring).
FOCUS_ROUNDS = 2
#: A focus round takes the crews able to serve a left-over stop, then this many times
#: the crews sharing a district with those taken so far.
FOCUS_HOPS = 1

Progress = Callable[[int, int], None]


@runtime_checkable
class RoadGeometry(Protocol):
    """A travel model that can draw the road path through a sequence of points."""

    def path(self, lonlat: npt.NDArray[np.float64]) -> list[tuple[float, float]]:
        """Return the driven path through ``lonlat`` (``(n, 2)``) as ``lon, lat`` points."""
        ...


def auto_iterations(n_stops: int, scale: float = 1.0) -> int:
    """Return the default deterministic iteration budget for a solver run on ``n_stops``."""
    base = min(MAX_ITERATIONS, max(MIN_ITERATIONS, ITERATIONS_PER_STOP * n_stops))
    return int(base * scale)


ByCrew = dict[str, list[int]]


@dataclass
class _Chain:
    """One sub-problem's solver runs: the first over the group, then focus rounds."""

    built: BuiltProblem
    seed: int
    iterations: int | None
    scale: float
    time_limit_s: float | None
    by_crew: ByCrew = field(default_factory=dict)
    rounds: int = 0
    iterations_run: int = 0
    budget: int = 0
    runtime_s: float = 0.0
    focus: tuple[BuiltProblem, list[int]] | None = None  # the part and its stops' indices

    @property
    def key(self) -> str:
        return self.built.sub.key

    def _its(self, n_stops: int) -> int:
        if self.iterations is not None:
            return self.iterations
        return auto_iterations(n_stops, self.scale)

    def first(self) -> SolveTask:
        """Return the first run: the whole group."""
        its = self._its(len(self.built.sub.stops))
        self.budget += its
        return SolveTask(self.key, self.built.recipe, self.seed, its, self.time_limit_s)

    def take(self, res: TaskResult) -> SolveTask | None:
        """Record a finished run; return the chain's next run, or ``None`` when done."""
        self.iterations_run += res.iterations
        self.runtime_s += res.runtime_s
        if self.focus is None:
            self.by_crew = assign_crews(self.built, res.routes)
        else:
            part, idx = self.focus
            got = assign_crews(part, res.routes)
            new = {n: [idx[j] for j in seq] for n, seq in got.items()}
            old = {n: self.by_crew.get(n, []) for n in new}
            if _objective(self.built, new) > _objective(self.built, old):
                self.by_crew.update(new)
            self.focus = None
        if self.rounds >= FOCUS_ROUNDS:
            return None
        self.rounds += 1
        return self._focus_task()

    def _focus_task(self) -> SolveTask | None:
        sub = self.built.sub
        served = {j for seq in self.by_crew.values() for j in seq}
        left = [j for j in range(len(sub.stops)) if j not in served]
        able = [c for c in sub.crews if any(serves(c, sub.stops[j].district) for j in left)]
        if not able:
            return None
        crews = able
        for _ in range(FOCUS_HOPS):
            if any(not c.districts for c in crews):
                crews = list(sub.crews)
                break
            reach = {d for c in crews for d in c.districts}
            crews = [c for c in sub.crews if not c.districts or reach & set(c.districts)]
        names = sorted(c.name for c in crews)
        idx = [j for n in names for j in self.by_crew.get(n, [])] + left
        part = slice_problem(
            self.built, SubProblem(sub.skills, sub.districts, crews, [sub.stops[j] for j in idx])
        )
        where = {j: k for k, j in enumerate(idx)}
        initial = _initial_routes(
            part, {n: [where[j] for j in self.by_crew.get(n, [])] for n in names}
        )
        its = self._its(len(idx))
        self.budget += its
        self.focus = (part, idx)
        return SolveTask(f"{self.key}#focus{self.rounds}", part.recipe, self.seed + self.rounds,
                         its, self.time_limit_s, initial)


def _objective(built: BuiltProblem, by_crew: Mapping[str, Sequence[int]]) -> int:
    """Return prizes collected minus driving cost (the solver's objective) of routes."""
    stops = built.sub.stops
    total = 0
    for name, seq in by_crew.items():
        if not seq:
            continue
        dloc = built.crew_depot_loc[name]
        locs = [dloc, *[built.n_depots + j for j in seq], dloc]
        total += sum(stops[j].prize for j in seq)
        total -= sum(int(built.dur_s[a, b]) for a, b in itertools.pairwise(locs))
    return total


def _initial_routes(
    built: BuiltProblem, by_crew: Mapping[str, list[int]]
) -> list[tuple[int, list[int]]]:
    """Return ``(vehicle_type, visits)`` warm-start routes of ``by_crew`` in ``built``."""
    vt_of = {c.name: vt for vt, members in enumerate(built.vehicle_crews) for c in members}
    return [(vt_of[n], list(seq)) for n, seq in sorted(by_crew.items()) if seq]


def _run_chains(
    chains: list[_Chain], max_workers: int | None, progress: Progress | None
) -> None:
    """Run every chain to its end, in parallel processes or in-process (same result)."""
    total = len(chains)
    workers = (os.cpu_count() or 1) if max_workers is None else max(1, max_workers)
    todo = [c for c in chains if len(c.built.sub.stops) > 0]
    done = total - len(todo)
    for c in chains:
        if len(c.built.sub.stops) == 0:
            c.by_crew = {m.name: [] for m in c.built.sub.crews}
    if progress:
        progress(done, total)
    if workers <= 1 or len(todo) <= 1:
        for c in todo:
            task: SolveTask | None = c.first()
            while task is not None:
                task = c.take(run_task(task))
            done += 1
            if progress:
                progress(done, total)
        return
    # Largest first, so that the long chains do not finish last.
    todo.sort(key=lambda c: (-len(c.built.sub.stops), c.key))
    with solver_pool(min(workers, len(todo))) as pool:
        running: dict[Future[TaskResult], _Chain] = {
            pool.submit(run_task, c.first()): c for c in todo
        }
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in sorted(finished, key=lambda f: running[f].key):
                c = running.pop(f)
                nxt = c.take(f.result())
                if nxt is not None:
                    running[pool.submit(run_task, nxt)] = c
                    continue
                done += 1
                if progress:
                    progress(done, total)


def _timed(
    built: BuiltProblem, crew: Crew, clock: DayClock, dloc: int, reserve_s: int, seq: list[int]
) -> tuple[Timeline, int]:
    return schedule_route(crew, seq, built.sub.stops, built.dur_s, clock, dloc, built.n_depots,
                          reserve_s=reserve_s)


def _route_district(crew: Crew, stops: Sequence[Stop], sub: SubProblem) -> str | None:
    """Return the district a route is listed under: where most of its stops are."""
    counts = Counter(s.district for s in stops if s.district is not None)
    if counts:
        top = max(counts.values())
        return min((d for d, n in counts.items() if n == top), key=district_sort)
    if crew.districts:
        return min(crew.districts, key=district_sort)
    return sub.districts[0] if sub.districts else None


def _geometry(
    travel: TravelModel | None, depot: Depot, stops: Sequence[Stop]
) -> list[tuple[float, float]] | None:
    """Return the road path of a route when the travel model can draw one."""
    if not stops or not isinstance(travel, RoadGeometry):
        return None
    pts = np.array(
        [[depot.lon, depot.lat], *[[s.lon, s.lat] for s in stops], [depot.lon, depot.lat]],
        dtype=np.float64,
    )
    return [(round(x, 6), round(y, 6)) for x, y in travel.path(pts)]


def _routes_of(
    built: BuiltProblem,
    by_crew: Mapping[str, list[int]],
    clock: DayClock,
    unplanned: dict[str, Reason],
    positions: Mapping[str, int] | None = None,
    travel: TravelModel | None = None,
) -> list[Route]:
    """Turn ``crew -> stop indices`` into timed routes; explain every stop left out.

    Each route is timed by :func:`~dispatch.planning.solver.schedule_route` (lunch break
    placed, reserve kept); while it breaks a rule (capacity, shift, windows, reserve)
    its least valuable stop is dropped. Stops outside the crew's territory are never
    kept. This is also the evaluator the peer benchmark scores other solvers with.
    """
    sub = built.sub
    crews = {c.name: c for c in sub.crews}
    by_crew = {name: list(by_crew.get(name, [])) for name in crews}
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
        for j in [j for j in seq if not serves(crew, sub.stops[j].district)]:
            seq.remove(j)  # never expected: the solver's profiles keep crews at home
            unplanned[sub.stops[j].request_id] = Reason(
                ReasonKind.OTHER, f"crew {name} does not serve district {sub.stops[j].district}"
            )
        if positions:
            seq = _apply_positions(seq, sub.stops, positions, name, built)
        dloc = built.crew_depot_loc[name]
        reserve = built.reserve_s.get(name, 0)
        timed = functools.partial(_timed, built, crew, clock, dloc, reserve)
        tl, bad = timed(seq)
        load = sum(sub.stops[j].size for j in seq)
        while (bad > 0 or load > crew.capacity) and seq:
            # Drop the least valuable stop until the route fits (rare: breaks, or locks
            # that ask for more than the crew can do). Unlocked stops go first, then
            # stops locked without a position, then the rest.
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
            tl, bad = timed(seq)
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
                district=_route_district(crew, [sub.stops[j] for j in seq], sub),
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
                reserve_s=reserve,
                geometry=_geometry(travel, depot, [sub.stops[j] for j in seq]),
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
        able = [c for c in sub.crews if serves(c, s.district)]
        here = f"district {s.district}" if s.district is not None else where
        full = all(loads[c.name] + s.size > c.capacity for c in able)
        unplanned[s.request_id] = (
            Reason(ReasonKind.OVER_CAPACITY,
                   f"every {'+'.join(sub.skills)} truck serving {here} is full "
                   "(dropped as less urgent)")
            if full
            else Reason(ReasonKind.NOT_ENOUGH_TIME, f"in {here} (dropped as less urgent)")
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


def _settings(
    travel: TravelModel, slack: Slack | None, **extra: object
) -> dict[str, Any]:
    return {
        "travel": type(travel).__name__,
        "travel_spec": travel_spec(travel),
        "slack": None if slack is None else slack.to_dict(),
        **extra,
    }


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
    absent: Collection[str] = frozenset(),
    max_workers: int | None = None,
    progress: Progress | None = None,
    stats: list[dict[str, object]] | None = None,
    slack: Slack | None = DEFAULT_SLACK,
) -> Plan:
    """Turn the day's stops into one ordered route per available crew.

    Parameters
    ----------
    stops
        Candidate stops (see :func:`dispatch.planning.replay.select_stops_for_day`).
    crews
        Roster; crews named in ``absent`` are left out. Each crew serves the districts
        it lists (its territory; none: the whole city).
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
        Wall-clock cap per solver run (safety net; ``None``: no cap).
    iterations
        Solver iterations per run; default :func:`auto_iterations`.
    iteration_scale
        Multiplies the default iteration budget (``10`` for the quality benchmark).
    absent
        Names of absent crews.
    max_workers
        Parallel processes (default ``os.cpu_count()``; ``1``: in-process).
    progress
        Optional ``callable(done, total)`` called as sub-problems finish.
    stats
        Optional list that receives one dict per sub-problem (key, stops, crews,
        iterations run, budget, runtime_s, rounds), e.g. for benchmarks.
    slack
        Reserve every route keeps before its shift ends (default
        :data:`~dispatch.planning.problem.DEFAULT_SLACK`; ``None``: none).

    Returns
    -------
    Plan
        Routes (one per available crew) and unplanned stops with reasons.
    """
    travel = travel or HaversineTravel()
    clock = DayClock(day, tz)
    subs, unplanned = split_day(stops, crews, clock, absent=frozenset(absent), depots=depots)
    dmap = dict(depots)
    chains = [
        _Chain(build_problem(sub, dmap, clock, travel, slack=slack), seed, iterations,
               iteration_scale, time_limit_s)
        for sub in subs
    ]
    _run_chains(chains, max_workers, progress)
    routes: list[Route] = []
    for ch in chains:
        routes += _routes_of(ch.built, ch.by_crew, clock, unplanned, travel=travel)
        if stats is not None:
            stats.append(
                {
                    "key": ch.key,
                    "stops": len(ch.built.sub.stops),
                    "crews": len(ch.built.sub.crews),
                    "iterations": ch.iterations_run,
                    "budget": ch.budget,
                    "runtime_s": round(ch.runtime_s, 3),
                    "rounds": ch.rounds,
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
        settings=_settings(
            travel,
            slack,
            absent=sorted(absent),
            time_limit_s=time_limit_s,
            iterations=iterations,
            iteration_scale=iteration_scale,
        ),
    )


def plan_from_routes(
    routes: Mapping[str, Sequence[str]],
    stops: Sequence[Stop],
    crews: Sequence[Crew],
    depots: Mapping[str, Depot],
    *,
    day: date,
    tz: ZoneInfo,
    travel: TravelModel | None = None,
    city: str = "",
    slack: Slack | None = DEFAULT_SLACK,
    absent: Collection[str] = frozenset(),
    settings: Mapping[str, Any] | None = None,
) -> Plan:
    """Turn another solver's answer (stop order per crew) into a plan, scored like ours.

    The day is split as :func:`plan_day` splits it; each crew's stops are timed by
    :func:`~dispatch.planning.solver.schedule_route` (lunch break placed, reserve kept)
    and, where a route breaks a rule (capacity, shift, reserve, territory), its least
    valuable stops are dropped with a reason, exactly as the planner treats its own
    solver's routes. Benchmarks score every solver with it.

    Parameters
    ----------
    routes
        ``{crew: [request_id, ...]}`` in visiting order (crews absent from it drive no
        route).
    stops, crews, depots, day, tz, travel, city, slack, absent
        As for :func:`plan_day`.
    settings
        Written into the plan (e.g. which solver answered).

    Returns
    -------
    Plan
        One route per available crew and the unplanned stops with reasons.
    """
    travel = travel or HaversineTravel()
    clock = DayClock(day, tz)
    subs, unplanned = split_day(stops, crews, clock, absent=frozenset(absent), depots=depots)
    out: list[Route] = []
    placed: set[str] = set()
    for sub in subs:
        built = build_problem(sub, dict(depots), clock, travel, slack=slack)
        index = {st.request_id: j for j, st in enumerate(sub.stops)}
        by_crew: ByCrew = {}
        for c in sub.crews:
            seq = []
            for rid in routes.get(c.name, ()):
                if rid in index and rid not in placed:
                    placed.add(rid)
                    seq.append(index[rid])
            by_crew[c.name] = seq
        out += _routes_of(built, by_crew, clock, unplanned, travel=travel)
    done, un = _finish(out, unplanned, {st.request_id: st for st in stops})
    return Plan(day, city, tz.key, 0, done, un, _settings(travel, slack, **dict(settings or {})))


def retime_routes(
    plan: Plan, crews: Sequence[Crew], travel: TravelModel, factor: float = 1.25
) -> dict[str, int]:
    """Re-time every route with travel ``factor`` times slower; return the lateness.

    Each route keeps its stops and order; the lunch break is placed again
    (:func:`~dispatch.planning.solver.schedule_route`, no reserve).

    Parameters
    ----------
    plan
        The plan.
    crews
        Its roster.
    travel
        The travel model it was made with.
    factor
        Multiplies every travel time (approach included).

    Returns
    -------
    dict
        ``{crew: seconds}`` by which each non-empty route then ends after its shift
        (negative: that much earlier).
    """
    by_name = {c.name: c for c in crews}
    clock = plan.clock
    out: dict[str, int] = {}
    for r in plan.routes:
        if not r.stops or r.crew not in by_name:
            continue
        crew = by_name[r.crew]
        pts = np.array(
            [[r.depot_lon, r.depot_lat]] + [[p.stop.lon, p.stop.lat] for p in r.stops],
            dtype=np.float64,
        )
        _, dur = travel.matrix(pts)
        slow = np.rint(dur * factor).astype(np.int64)
        tl, _ = schedule_route(crew, list(range(len(r.stops))), [p.stop for p in r.stops],
                               slow, clock, 0, 1)
        out[r.crew] = tl.end - clock.local_seconds(crew.shift_end)
    return out


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
    only_crews: Collection[str] | None = None,
    exclude_crews: Collection[str] = (),
    whole: bool = False,
    max_workers: int | None = None,
) -> Plan:
    """Change a plan and re-optimise only what the change touches.

    The *groups* touched are those (crew type, districts) whose routes receive or lose
    a stop: the routes of a moved stop's old and new crew, of a removed crew's group,
    and of the group able to take each added stop (every group with ``whole``). Every
    other route is returned unchanged. Inside a touched group the stops keep their crew
    when locked (and their index when the lock has a ``position``); everything else may
    be re-ordered or moved between that group's routes, or dropped if it no longer
    fits. Stops already left behind at ``now`` are locked in place.

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
        Travel model (default: the plan's own, from its settings; else
        :class:`geo.travel.HaversineTravel`).
    seed
        Solver seed (default: the plan's).
    time_limit_s, iterations
        Solver budget: iterations for each touched group; seconds of the whole re-plan,
        which touched groups share when there are more than processes
        (:func:`share_budget`).
    only_crews
        Re-plan only these crews' routes inside the touched groups (a supervisor's
        local edit: e.g. the two routes a stop moves between, or the routes nearest an
        urgent stop); every other route is returned unchanged. The old and new crews
        of moved stops and removed crews are always included. A touched group with
        none of these crews is re-planned whole. ``None`` (default): whole groups.
    exclude_crews
        Crews taken out earlier (``remove_crews`` of an earlier re-plan): they get no
        new work, and keep the stops served before ``now``, but their groups are not
        re-planned for that alone.
    whole
        Re-plan every group (re-optimising a plan nobody changed).
    max_workers
        Processes solving the touched groups at once when there are several (default:
        the CPU count; 1: in this process). With an iteration budget (no
        ``time_limit_s``) the result does not depend on it.

    Returns
    -------
    Plan
        A new plan.
    """
    # the budget is the whole re-plan's: it ends this long after the call
    end_by = None if time_limit_s is None else time.time() + time_limit_s
    travel = travel or travel_from_spec(plan.settings.get("travel_spec")) or HaversineTravel()
    slack = Slack.from_dict(plan.settings.get("slack"))
    tz = plan.zone
    clock = plan.clock
    seed = plan.seed if seed is None else seed
    moves = dict(moves or {})
    removed = set(remove_crews)
    out = removed | set(exclude_crews)  # crews that take no new work
    known = {r.crew for r in plan.routes}
    for name in [*out, *moves.values()]:
        if name not in known:
            raise PlanningError(
                f"crew {name!r} is not in the plan of {plan.date}, which has routes for "
                f"{len(known)} other crews"
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

    only: set[str] | None = None
    if only_crews is not None:
        unknown = sorted(set(only_crews) - known)
        if unknown:
            raise PlanningError(f"crews {unknown[:5]} are not in the plan of {plan.date}")
        only = {*only_crews, *removed, *moves.values(),
                *(where[rid] for rid in moves if rid in where)}

    touched: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    for rid, crew in moves.items():
        touched.add(group_of[crew])
        if rid in where:
            touched.add(group_of[where[rid]])
    for name in removed:
        touched.add(group_of[name])
    if whole:
        touched.update(group_of.values())
    add_ids = {s.request_id for s in add}
    add_unplanned: dict[str, Reason] = {}
    for s in add:
        g = _group_for(s, plan.routes, out)
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
        rid for rid, lk in lock_map.items() if lk.crew in out and lk.position is not None
    }

    new_routes: list[Route] = []
    unplanned: dict[str, Reason] = {u.request_id: u.reason for u in plan.unplanned}
    unplanned.update(add_unplanned)
    # the crews re-planned in each touched group: all, or those of `only` in it
    replanned: dict[tuple[tuple[str, ...], tuple[str, ...]], set[str]] = {}
    for g in touched:
        members = {r.crew for r in plan.routes if group_of[r.crew] == g}
        replanned[g] = members if only is None or not members & only else members & only
    for r in plan.routes:
        g = (r.skills, r.districts)
        if g not in touched or r.crew not in replanned[g]:
            new_routes.append(r)
        elif r.crew in out:
            done = [p for p in r.stops if p.request_id in keep_done]
            if done:
                new_routes.append(_truncate(r, done, travel, clock))
    # per touched group: its stop keys, and its sub-problem when it has crews; each is
    # built just before its solver task is handed to a worker (building the next one
    # overlaps solving the first)
    groups: list[tuple[list[str], SubProblem | None]] = []
    for g in sorted(touched):
        skills, districts = g
        gcrews = [
            crews[r.crew] for r in plan.routes
            if group_of[r.crew] == g and r.crew in replanned[g] and r.crew not in out
        ]
        ids = [
            p.request_id
            for r in plan.routes
            if group_of[r.crew] == g and r.crew in replanned[g]
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
            and _group_for(s, plan.routes, out) == g
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
        groups.append((ids, SubProblem(skills, districts, gcrews, [all_stops[i] for i in ids])
                       if gcrews else None))
    built_of: dict[str, tuple[BuiltProblem, dict[str, int]]] = {}

    def prepare(sub: SubProblem) -> SolveTask:
        names = {c.name for c in sub.crews}
        glocks = [lock_map[s.request_id] for s in sub.stops
                  if s.request_id in lock_map and lock_map[s.request_id].crew in names]
        built = build_problem(sub, depots, clock, travel, glocks, slack=slack)
        index = {s.request_id: j for j, s in enumerate(sub.stops)}
        built_of[sub.key] = (built, index)
        its = iterations if iterations is not None else auto_iterations(len(sub.stops), 0.5)
        return SolveTask(sub.key, built.recipe, seed, its, time_limit_s,
                         _initial(built, plan, index, moves, out), wall=True, end_by=end_by)

    results = _solve_all([(sub.key, len(sub.stops), functools.partial(prepare, sub))
                          for _, sub in groups if sub is not None], max_workers, time_limit_s)
    for (ids, sub), g in zip(groups, sorted(touched), strict=True):
        for rid in ids:
            unplanned.pop(rid, None)
        if sub is None:
            skills, districts = g
            for rid in ids:
                unplanned[rid] = Reason(
                    ReasonKind.NO_CREW_LEFT,
                    f"for {'+'.join(skills)} in district {','.join(districts)}",
                )
            continue
        job_built, index = built_of[sub.key]
        had = {r.crew: [index[p.request_id] for p in r.stops if p.request_id in index]
               for r in plan.routes}
        solved = assign_crews(job_built, results[sub.key].routes, had)
        positions = {i: lk.position for i, lk in job_built.locks.items()
                     if lk.position is not None}
        new_routes += _routes_of(job_built, solved, clock, unplanned, positions, travel)
    routes, un = _finish(new_routes, unplanned, all_stops)
    return Plan(plan.date, plan.city, plan.tz, seed, routes, un, dict(plan.settings))


def share_budget(sizes: Sequence[int], workers: int, time_limit_s: float) -> list[float]:
    """Return each group's solver time when ``workers`` processes share ``time_limit_s``.

    The re-plan as a whole waits about ``time_limit_s``: the ``workers * time_limit_s``
    process-seconds are shared in proportion to each group's stops, no group getting
    more than ``time_limit_s`` (what is left over goes to the others). With no more
    groups than workers, each gets all of it.

    Parameters
    ----------
    sizes
        Stops of each group solved (groups with none get 0).
    workers
        Processes solving at once (at least 1).
    time_limit_s
        The wall-clock budget of the whole re-plan, in seconds (positive).

    Returns
    -------
    list of float
        Seconds for each group, in the order of ``sizes``.

    Examples
    --------
    >>> share_budget([300, 100, 100], 2, 0.5)
    [0.5, 0.25, 0.25]
    """
    if workers < 1 or time_limit_s <= 0:
        raise PlanningError(f"share_budget needs workers >= 1 and time_limit_s > 0; got "
                            f"{workers} and {time_limit_s}")
    busy = [i for i, n in enumerate(sizes) if n > 0]
    share = [0.0] * len(sizes)
    if len(busy) <= workers:
        for i in busy:
            share[i] = time_limit_s
        return share
    left = workers * time_limit_s
    open_ = set(busy)
    while open_:
        total = sum(sizes[i] for i in open_)
        capped = {i for i in open_ if left * sizes[i] / total >= time_limit_s}
        if not capped:
            for i in open_:
                share[i] = left * sizes[i] / total
            break
        for i in capped:
            share[i] = time_limit_s
        left -= time_limit_s * len(capped)
        open_ -= capped
    return share


def _solve_all(jobs: Sequence[tuple[str, int, Callable[[], SolveTask]]],
               max_workers: int | None, time_limit_s: float | None) -> dict[str, TaskResult]:
    """Return each task's result by key: in worker processes when several have stops.

    ``jobs`` are ``(key, stops, make)``: ``make()`` builds the task, which happens just
    before it is handed to a worker, the largest first, so that the next problem is
    built while the first is solved. Each task keeps its own seed, so the results are
    the same either way. ``time_limit_s`` (every task's) is the budget of the whole
    call: when there are more tasks with stops than processes, they share it
    (:func:`share_budget`), so that re-optimising five groups on two cores waits about
    as long as one group does.
    """
    busy = [(key, n) for key, n, _ in jobs if n > 0]
    workers = (os.cpu_count() or 1) if max_workers is None else max(1, max_workers)
    seconds: dict[str, float] = {}
    if time_limit_s is not None and len(busy) > workers:
        share = share_budget([n for _, n in busy], workers, time_limit_s)
        seconds = {key: max(0.001, t) for (key, _), t in zip(busy, share, strict=True)}

    def made(key: str, make: Callable[[], SolveTask]) -> SolveTask:
        task = make()
        return dataclasses.replace(task, time_limit_s=seconds[key]) if key in seconds else task

    if workers <= 1 or len(busy) <= 1:
        return {key: run_task(made(key, make)) for key, _, make in jobs}
    # the largest first, so that the longest does not start last
    order = sorted(jobs, key=lambda j: (-j[1], j[0]))
    out: dict[str, TaskResult] = {}
    with solver_pool(min(workers, len(busy))) as pool:
        futures = {}
        for key, n, make in order:
            task = made(key, make)
            if n > 0:
                futures[key] = pool.submit(run_task, task)
            else:
                out[key] = run_task(task)
        out |= {key: f.result() for key, f in futures.items()}
    return out


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
        reserve_s=r.reserve_s,
        geometry=None,
    )
