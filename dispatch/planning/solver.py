"""PyVRP wrapper: build ``ProblemData`` from arrays, solve, and schedule routes with breaks.

Model of one sub-problem (see :mod:`dispatch.planning.problem`):

* locations: the sub-problem's depots first, then its stops;
* cost: driving seconds (the duration matrix is also the "distance" matrix PyVRP
  minimises, so OSRM durations, not metres, drive the choice);
* every stop is an optional client (``required=False``) with a prize from its urgency,
  so that with more work than crews PyVRP drops the least urgent stops;
* one vehicle type per group of identical crews; shift window ``[shift_start,
  shift_end - lunch_s]`` so that the 30-minute break inserted afterwards by
  :func:`schedule_route` never pushes the return past the shift end;
* a stop locked to a crew (re-planning) is required and reachable cheaply only by that
  crew's vehicle type, through its own routing profile.

Determinism: PyVRP is seeded; the stopping criterion is an iteration count, with a
wall-clock cap as a safety net. Same inputs, seed and iterations give the same plan
as long as the cap is not hit first.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyvrp
from pyvrp.search import NeighbourhoodParams
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, StoppingCriterion

from dispatch.errors import PlanningError
from dispatch.model import Crew, Depot
from dispatch.planning.matching import min_cost_assignment
from dispatch.planning.problem import (
    DayClock,
    Lock,
    Slack,
    Stop,
    SubProblem,
    depots_for,
    serves,
)
from geo.travel import TravelModel

#: Cost added to every edge into a stop locked to another crew.
LOCK_PENALTY = 10_000_000
#: Extra prize of a stop only one crew can serve (divided by the number that can).
SCARCITY_PRIZE = 20_000
#: "No window" for stops without one.
FAR_FUTURE_S = 10**9
#: Granular neighbourhood size for PyVRP's local search. PyVRP's default is 50; 20 ran
#: about 3x more iterations per second on the LA sub-problems for the same or better
#: cost at a fixed iteration count (measured while choosing the default budget).
NUM_NEIGHBOURS = 20


class Deadline:
    """PyVRP stopping criterion: a wall-clock budget counted from a given instant.

    PyVRP's ``MaxRuntime`` starts its clock at the search's first iteration, after the
    instance and the granular neighbourhood are built (about 0.1 s for a thousand
    stops), so a 0.5 s cap kept a supervisor waiting 0.6 s. This one counts from
    ``started`` (a :func:`time.perf_counter` reading), and still lets the search run
    for ``min_search`` of the budget when the set-up took longer than the rest.

    Parameters
    ----------
    started
        When the budget began, from :func:`time.perf_counter`.
    limit_s
        The budget in seconds (positive).
    min_search
        Share of ``limit_s`` the search gets at least, in ``[0, 1]``.
    clock
        The clock ``started`` was read from.
    """

    def __init__(self, started: float, limit_s: float, min_search: float = 0.5,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not limit_s > 0 or not 0 <= min_search <= 1:
            raise PlanningError(f"Deadline needs limit_s > 0 and min_search in [0, 1]; got "
                                f"{limit_s} and {min_search}")
        self._end = started + limit_s
        self._min_s = limit_s * min_search
        self._first: float | None = None
        self._clock = clock

    def __call__(self, best_cost: int) -> bool:
        """Return whether the search must stop (PyVRP calls this once per iteration)."""
        now = self._clock()
        if self._first is None:
            self._first = now
        return now > self._end and now - self._first >= self._min_s


def stopping(iterations: int | None, time_limit_s: float | None,
             started: float | None = None) -> StoppingCriterion:
    """Return PyVRP's stopping criterion for an iteration budget and/or a time cap.

    Parameters
    ----------
    iterations
        Iteration budget (deterministic), or ``None``.
    time_limit_s
        Wall-clock cap in seconds, or ``None``.
    started
        Where the cap counts from (a :func:`time.perf_counter` reading, see
        :class:`Deadline`); ``None``: from the search's first iteration.

    Returns
    -------
    StoppingCriterion
        The first reached of the given limits.
    """
    crits: list[StoppingCriterion] = []
    if iterations is not None:
        crits.append(MaxIterations(max(1, int(iterations))))
    if time_limit_s is not None:
        limit_s = max(0.001, float(time_limit_s))
        crits.append(MaxRuntime(limit_s) if started is None else Deadline(started, limit_s))
    if not crits:
        raise PlanningError("solver needs iterations or time_limit_s; got neither")
    return crits[0] if len(crits) == 1 else MultipleCriteria(crits)


def auto_neighbours(n_clients: int) -> int:
    """Return the granular neighbourhood for a standalone instance of ``n_clients``.

    Wide (40) for up to 500 clients, where a minute allows many iterations; narrow (20)
    beyond, where each iteration costs more and more of them pay (measured on the VRPLIB
    X instances in docs/benchmarks.md).
    """
    return 40 if n_clients <= 500 else 20


def _solve_one(job: tuple[Any, ...]) -> pyvrp.Result:
    data, seed, iterations, time_limit_s, initial, nn = job
    return solve_data(data, seed=seed, iterations=iterations, time_limit_s=time_limit_s,
                      initial=initial, num_neighbours=nn)


def solve_data(
    data: pyvrp.ProblemData,
    *,
    seed: int = 1,
    iterations: int | None = None,
    time_limit_s: float | None = None,
    initial: list[tuple[int, list[int]]] | None = None,
    num_neighbours: int | None = NUM_NEIGHBOURS,
    workers: int = 1,
    started: float | None = None,
) -> pyvrp.Result:
    """Solve a PyVRP instance: the project's single entry point into the solver.

    Parameters
    ----------
    data
        The instance.
    seed
        Random seed.
    iterations, time_limit_s
        Budget, see :func:`stopping`.
    initial
        Optional warm start: ``(vehicle_type, client indices)`` per route.
    num_neighbours
        Size of the granular neighbourhood of the local search; ``None``:
        :func:`auto_neighbours`.
    workers
        Processes searching at once with seeds ``seed, seed + 1, ...``; the best answer
        (feasible first, then cheapest, then lowest seed) is returned.
    started
        Where ``time_limit_s`` counts from, see :func:`stopping` (one process only).

    Returns
    -------
    pyvrp.Result
        PyVRP's result (``.best`` is the best solution found).
    """
    nn = auto_neighbours(data.num_clients) if num_neighbours is None else num_neighbours
    if workers > 1:
        if started is not None:
            raise PlanningError("solve_data: started applies to one process; got "
                                f"workers={workers}")
        jobs = [(data, seed + k, iterations, time_limit_s, initial, nn) for k in range(workers)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_solve_one, jobs))
        ranked = sorted(range(workers), key=lambda k: (not results[k].is_feasible(),
                                                       results[k].cost(), k))
        return results[ranked[0]]
    init = None
    if initial:
        routes = [pyvrp.Route(data, visits, vt) for vt, visits in initial if visits]
        init = pyvrp.Solution(data, routes)
    return pyvrp.solve(
        data,
        stopping(iterations, time_limit_s, started),
        seed=seed,
        collect_stats=False,
        display=False,
        params=pyvrp.SolveParams(neighbourhood=NeighbourhoodParams(num_neighbours=nn)),
        initial_solution=init,
    )


def vrp_data(
    coords: npt.ArrayLike,
    demand: npt.ArrayLike,
    capacity: int,
    distance: npt.ArrayLike,
    *,
    duration: npt.ArrayLike | None = None,
    num_vehicles: int | None = None,
    time_windows: npt.ArrayLike | None = None,
    service_time: npt.ArrayLike | None = None,
    depot: int = 0,
) -> pyvrp.ProblemData:
    """Build a single-depot (C)VRP(TW) instance from NumPy arrays.

    Used for the VRPLIB/Solomon quality benchmark: same PyVRP settings as the planner.

    Parameters
    ----------
    coords
        ``(n, 2)`` coordinates, depot at row ``depot``.
    demand
        ``(n,)`` integer demand (depot's is ignored).
    capacity
        Vehicle capacity.
    distance
        ``(n, n)`` integer matrix (already scaled/rounded as the instance requires).
    duration
        ``(n, n)`` integer matrix; default ``distance``.
    num_vehicles
        Fleet size; default ``n - 1``.
    time_windows, service_time
        Optional ``(n, 2)`` windows and ``(n,)`` service times (same time unit).
    depot
        Row of the depot.

    Returns
    -------
    pyvrp.ProblemData
        The instance.
    """
    xy = np.asarray(coords, dtype=np.float64)
    dem = np.asarray(demand, dtype=np.int64)
    dist = np.ascontiguousarray(np.asarray(distance), dtype=np.int64)
    dur = dist if duration is None else np.ascontiguousarray(np.asarray(duration), dtype=np.int64)
    n = len(xy)
    if dist.shape != (n, n) or dur.shape != (n, n) or dem.shape != (n,):
        raise PlanningError(
            f"vrp_data: coords has {n} rows but distance is {dist.shape}, duration "
            f"{dur.shape}, demand {dem.shape}; expected ({n}, {n}) and ({n},)"
        )
    tw = None if time_windows is None else np.asarray(time_windows, dtype=np.int64)
    svc = None if service_time is None else np.asarray(service_time, dtype=np.int64)
    order = [depot] + [i for i in range(n) if i != depot]
    xy, dem = xy[order], dem[order]
    dist, dur = dist[np.ix_(order, order)], dur[np.ix_(order, order)]
    tw = None if tw is None else tw[order]
    svc = None if svc is None else svc[order]
    locations = [pyvrp.Location(float(x), float(y)) for x, y in xy]
    clients = [
        pyvrp.Client(
            location=i,
            delivery=[int(dem[i])],
            service_duration=0 if svc is None else int(svc[i]),
            tw_early=0 if tw is None else int(tw[i, 0]),
            tw_late=FAR_FUTURE_S if tw is None else int(tw[i, 1]),
        )
        for i in range(1, n)
    ]
    d_tw = (0, FAR_FUTURE_S) if tw is None else (int(tw[0, 0]), int(tw[0, 1]))
    vt = pyvrp.VehicleType(
        num_available=num_vehicles or n - 1,
        capacity=[int(capacity)],
        tw_early=d_tw[0],
        tw_late=d_tw[1],
    )
    dmat: Any = np.ascontiguousarray(dist)
    tmat: Any = np.ascontiguousarray(dur)
    return pyvrp.ProblemData(
        locations,
        clients,
        [pyvrp.Depot(location=0, tw_early=d_tw[0], tw_late=d_tw[1])],
        [vt],
        [dmat],
        [tmat],
    )


@dataclass
class ProblemRecipe:
    """What :class:`pyvrp.ProblemData` is made of, compact enough to send to a worker.

    One cost matrix and, per routing profile, the stop columns its vehicles may not
    enter (they cost :data:`LOCK_PENALTY` there); :meth:`build` makes the profiles'
    matrices. Sending this instead of the data keeps the planner's memory down: the
    data holds two full matrices per profile.
    """

    locations: list[pyvrp.Location]
    clients: list[pyvrp.Client]
    depots: list[pyvrp.Depot]
    vehicle_types: list[pyvrp.VehicleType]
    cost: npt.NDArray[np.int64]
    banned: list[list[int]]

    @property
    def num_clients(self) -> int:
        """Return the number of clients (stops)."""
        return len(self.clients)

    def build(self) -> pyvrp.ProblemData:
        """Return the PyVRP instance."""
        cost: Any = np.ascontiguousarray(self.cost, dtype=np.int64)
        profiles: list[Any] = []
        for cols in self.banned:
            if not cols:
                profiles.append(cost)
                continue
            m = cost.copy()
            m[:, cols] += LOCK_PENALTY
            np.fill_diagonal(m, 0)
            profiles.append(m)
        return pyvrp.ProblemData(
            self.locations, self.clients, self.depots, self.vehicle_types, profiles,
            [cost for _ in profiles],
        )  # fmt: skip


@dataclass
class BuiltProblem:
    """A sub-problem as PyVRP data, with what is needed to read the answer back."""

    sub: SubProblem
    recipe: ProblemRecipe
    depots: list[Depot]
    vehicle_crews: list[list[Crew]]
    crew_depot_loc: dict[str, int]
    dist_m: npt.NDArray[np.int64]
    dur_s: npt.NDArray[np.int64]
    locks: dict[str, Lock] = field(default_factory=dict)
    reserve_s: dict[str, int] = field(default_factory=dict)
    clock: DayClock | None = None
    slack: Slack | None = None
    _data: pyvrp.ProblemData | None = field(default=None, repr=False)

    @property
    def data(self) -> pyvrp.ProblemData:
        """Return the PyVRP instance (built on first use)."""
        if self._data is None:
            self._data = self.recipe.build()
        return self._data

    @property
    def n_depots(self) -> int:
        """Return the number of depot locations (stops start after them)."""
        return len(self.depots)


def _vehicle_key(c: Crew, reserve_s: int) -> tuple[object, ...]:
    return (
        c.depot, c.shift_start, c.shift_end, c.capacity, c.lunch_s, c.lunch_start,
        c.lunch_end, c.max_duration_s, reserve_s,
    )  # fmt: skip


def crew_reserve_s(crew: Crew, clock: DayClock, slack: Slack | None) -> int:
    """Return the reserve (seconds) the crew's route keeps before its shift ends."""
    if slack is None:
        return 0
    shift = clock.local_seconds(crew.shift_end) - clock.local_seconds(crew.shift_start)
    return slack.reserve_s(shift)


def build_problem(
    sub: SubProblem,
    depots: dict[str, Depot],
    clock: DayClock,
    travel: TravelModel | None,
    locks: Sequence[Lock] = (),
    *,
    slack: Slack | None = None,
    matrices: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None,
) -> BuiltProblem:
    """Build the PyVRP instance of a sub-problem from NumPy matrices.

    Every crew reaches only the stops of its own territory (and a stop locked to a crew
    only from that crew): each distinct set of reachable stops is a PyVRP routing
    profile whose edges into the other stops cost :data:`LOCK_PENALTY`, far above any
    prize, so the solver never uses them. A sub-problem whose crews all reach every
    stop has a single profile.

    Parameters
    ----------
    sub
        Crews and stops.
    depots
        Depots by code.
    clock
        Planned day.
    travel
        Travel model for the matrices (may be ``None`` when ``matrices`` are given).
    locks
        Stops that must stay on a given crew.
    slack
        Reserve each route keeps before its shift ends (``None``: none).
    matrices
        Precomputed ``(distance_m, duration_s)`` over the sub-problem's depots (in
        :func:`~dispatch.planning.problem.depots_for` order) then its stops; default:
        ask ``travel``.

    Returns
    -------
    BuiltProblem
        PyVRP data and the mapping back to crews and stops.
    """
    deps = depots_for(sub.crews, depots)
    dep_index = {d.code: i for i, d in enumerate(deps)}
    lonlat = np.array(
        [[d.lon, d.lat] for d in deps] + [[s.lon, s.lat] for s in sub.stops], dtype=np.float64
    ).reshape(-1, 2)
    if matrices is None:
        if travel is None:
            raise PlanningError("build_problem needs a travel model or precomputed matrices")
        dist, dur = travel.matrix(lonlat)
    else:
        dist, dur = matrices
        if dist.shape != (len(lonlat), len(lonlat)) or dur.shape != dist.shape:
            raise PlanningError(
                f"build_problem: matrices have shape {dist.shape}/{dur.shape}; expected "
                f"({len(lonlat)}, {len(lonlat)}) for {len(deps)} depots and {len(sub.stops)} stops"
            )
    nd = len(deps)
    lock_by_id = {lk.request_id: lk for lk in locks}
    stop_ids = {s.request_id for s in sub.stops}
    lock_by_id = {k: v for k, v in lock_by_id.items() if k in stop_ids}
    locked_crews = sorted({lk.crew for lk in lock_by_id.values()})
    reserve = {c.name: crew_reserve_s(c, clock, slack) for c in sub.crews}

    # Routing profiles: which stop columns each crew may enter.
    locked_cols: dict[str, list[int]] = defaultdict(list)
    for j, st in enumerate(sub.stops):
        lk = lock_by_id.get(st.request_id)
        if lk is not None:
            locked_cols[lk.crew].append(nd + j)
    all_locked = sorted(col for cols in locked_cols.values() for col in cols)

    def territory(c: Crew) -> tuple[str, ...]:
        return tuple(c.districts)

    outside: dict[tuple[str, ...], list[int]] = {}
    for c in sub.crews:
        t = territory(c)
        if t not in outside:
            outside[t] = [nd + j for j, st in enumerate(sub.stops) if not serves(c, st.district)]
    profile_keys: list[tuple[tuple[str, ...], str]] = []
    profile_of_crew: dict[str, int] = {}
    restricted = bool(all_locked) or any(outside.values())
    for c in sorted(sub.crews, key=lambda c: c.name):
        pk = (territory(c) if restricted else (), c.name if c.name in locked_crews else "")
        if pk not in profile_keys:
            profile_keys.append(pk)
        profile_of_crew[c.name] = profile_keys.index(pk)

    # Vehicle types: identical crews of one profile share one.
    groups: dict[tuple[object, ...], list[Crew]] = {}
    for c in sorted(sub.crews, key=lambda c: c.name):
        key = (*_vehicle_key(c, reserve[c.name]), profile_of_crew[c.name])
        groups.setdefault(key, []).append(c)
    vtypes: list[pyvrp.VehicleType] = []
    vcrews: list[list[Crew]] = []
    for members in groups.values():
        c = members[0]
        s0 = clock.local_seconds(c.shift_start)
        s1 = max(s0, clock.local_seconds(c.shift_end) - c.lunch_s - reserve[c.name])
        vt = pyvrp.VehicleType(
            num_available=len(members),
            capacity=[c.capacity],
            start_depot=dep_index[c.depot],
            end_depot=dep_index[c.depot],
            tw_early=s0,
            tw_late=s1,
            start_late=s0,
            unit_distance_cost=1,
            unit_duration_cost=0,
            profile=profile_of_crew[c.name],
            name=",".join(m.name for m in members),
        )
        if c.max_duration_s is not None:
            vt = vt.replace(
                shift_duration=max(0, c.max_duration_s - c.lunch_s - reserve[c.name])
            )
        vtypes.append(vt)
        vcrews.append(members)

    # crews able to serve each stop, counted once per district (a city group has
    # a thousand stops in a few districts)
    able_in = {d: sum(1 for c in sub.crews if serves(c, d))
               for d in {st.district for st in sub.stops}}
    able = [able_in[st.district] for st in sub.stops]
    clients = []
    for j, st in enumerate(sub.stops):
        lo = clock.seconds(st.tw_start) if st.tw_start else 0
        hi = clock.seconds(st.tw_end) if st.tw_end else FAR_FUTURE_S
        locked = st.request_id in lock_by_id
        clients.append(
            pyvrp.Client(
                location=nd + j,
                delivery=[st.size],
                service_duration=st.service_s,
                tw_early=max(0, lo),
                tw_late=max(0, hi),
                prize=0 if locked else st.prize + SCARCITY_PRIZE // max(1, able[j]),
                required=locked,
                name=st.request_id,
            )
        )
    banned: list[list[int]] = []
    for terr, locked_by in profile_keys:
        cols = set(outside.get(terr, [])) if restricted else set()
        cols |= set(all_locked) - set(locked_cols.get(locked_by, []))
        banned.append(sorted(cols))
    recipe = ProblemRecipe(
        [pyvrp.Location(float(x), float(y)) for x, y in lonlat],
        clients,
        [pyvrp.Depot(location=i, name=d.code) for i, d in enumerate(deps)],
        vtypes,
        np.ascontiguousarray(dur, dtype=np.int64),
        banned,
    )
    return BuiltProblem(
        sub=sub,
        recipe=recipe,
        depots=deps,
        vehicle_crews=vcrews,
        crew_depot_loc={c.name: dep_index[c.depot] for c in sub.crews},
        dist_m=dist,
        dur_s=dur,
        locks=lock_by_id,
        reserve_s=reserve,
        clock=clock,
        slack=slack,
    )


def slice_problem(parent: BuiltProblem, sub: SubProblem) -> BuiltProblem:
    """Build a part of ``parent`` (some of its crews and stops) from its matrices.

    Parameters
    ----------
    parent
        A built sub-problem.
    sub
        Crews and stops, all taken from ``parent.sub``.

    Returns
    -------
    BuiltProblem
        The part, with the parent's clock, reserve and locks (those on its stops).
    """
    if parent.clock is None:
        raise PlanningError("slice_problem: the parent problem was built without a clock")
    deps = depots_for(sub.crews, {d.code: d for d in parent.depots})
    dep_loc = {d.code: i for i, d in enumerate(parent.depots)}
    stop_loc = {s.request_id: parent.n_depots + j for j, s in enumerate(parent.sub.stops)}
    rows = [dep_loc[d.code] for d in deps] + [stop_loc[s.request_id] for s in sub.stops]
    ix = np.ix_(rows, rows)
    return build_problem(
        sub,
        {d.code: d for d in deps},
        parent.clock,
        None,
        list(parent.locks.values()),
        slack=parent.slack,
        matrices=(
            np.ascontiguousarray(parent.dist_m[ix]),
            np.ascontiguousarray(parent.dur_s[ix]),
        ),
    )


@dataclass
class SolveTask:
    """Picklable job for a worker process (the data, or its recipe to build there)."""

    key: str
    data: pyvrp.ProblemData | ProblemRecipe
    seed: int
    iterations: int | None
    time_limit_s: float | None
    initial: list[tuple[int, list[int]]] | None = None
    #: ``time_limit_s`` counts from the task's start (building the instance and the
    #: solver's neighbourhood included), as a supervisor waiting for a re-plan sees it;
    #: otherwise from the search's first iteration.
    wall: bool = False
    #: When the whole call that made this task must be answered (a :func:`time.time`
    #: instant, comparable across processes): a task that starts late, queued behind
    #: another or after the problems were built, gets what is left of its
    #: ``time_limit_s`` by then, but at least :data:`MIN_SEARCH_SHARE` of it.
    end_by: float | None = None


#: Share of its own time limit a task queued behind others searches at least.
MIN_SEARCH_SHARE = 0.5


@dataclass
class TaskResult:
    """What a worker sends back: routes as ``(vehicle_type, client indices)`` and stats."""

    key: str
    routes: list[tuple[int, list[int]]]
    runtime_s: float = 0.0
    iterations: int = 0


def task_limit_s(limit_s: float | None, end_by: float | None, now: float) -> float | None:
    """Return the seconds a task starting at ``now`` may take (see ``SolveTask.end_by``).

    Parameters
    ----------
    limit_s
        The task's own time limit (``None``: none, the result too).
    end_by
        When the call that made the task must be answered (``None``: no such bound).
    now
        The task's start, on the same clock as ``end_by``.

    Returns
    -------
    float or None
        ``limit_s``, or what is left of it at ``end_by`` when less, but at least
        :data:`MIN_SEARCH_SHARE` of it.

    Examples
    --------
    >>> task_limit_s(0.4, end_by=10.0, now=9.9)
    0.2
    """
    if limit_s is None or end_by is None:
        return limit_s
    return max(limit_s * MIN_SEARCH_SHARE, min(limit_s, end_by - now))


def run_task(task: SolveTask) -> TaskResult:
    """Solve one task (in a worker process or in-process)."""
    if task.data.num_clients == 0:
        return TaskResult(task.key, [])
    started = time.perf_counter() if task.wall else None
    limit_s = task_limit_s(task.time_limit_s, task.end_by, time.time())
    data = task.data.build() if isinstance(task.data, ProblemRecipe) else task.data
    res = solve_data(
        data,
        seed=task.seed,
        iterations=task.iterations,
        time_limit_s=limit_s,
        initial=task.initial,
        started=started,
    )
    routes = [
        (r.vehicle_type(), [a.idx for a in r.schedule() if a.is_client()])
        for r in res.best.routes()
    ]
    return TaskResult(task.key, routes, float(res.runtime), int(res.num_iterations))


def assign_crews(
    built: BuiltProblem,
    routes: list[tuple[int, list[int]]],
    previous: Mapping[str, Collection[int]] | None = None,
) -> dict[str, list[int]]:
    """Map solver routes to crew names.

    The crews of one vehicle type are the same to the solver (same depot, shift,
    capacity and reachable stops), so any of them can drive any of its routes. Without
    ``previous`` the type's k-th route goes to its k-th crew. With it, the routes go to
    the crews so that as many stops as possible stay with the crew that had them (an
    optimal assignment, ties in crew order): re-optimising then keeps each crew's route
    its own instead of handing whole routes to another crew of the same kind.

    Parameters
    ----------
    built
        The problem the routes solve.
    routes
        ``(vehicle type, stop indices)`` per route, as the solver returned them.
    previous
        ``{crew: stop indices it had}`` before this solve (indices into ``built.sub.stops``).

    Returns
    -------
    dict of str to list of int
        Every crew of ``built``, with its stop indices (empty for a crew with no route).
    """
    out: dict[str, list[int]] = {c.name: [] for members in built.vehicle_crews for c in members}
    by_type: dict[int, list[list[int]]] = defaultdict(list)
    for vt, visits in routes:
        by_type[vt].append(list(visits))
    for vt, found in by_type.items():
        members = built.vehicle_crews[vt]
        if len(found) > len(members):
            raise PlanningError(f"the solver used {len(found)} routes of vehicle type {vt}, "
                                f"which has {len(members)} crews")
        order = list(range(len(found)))
        if previous and len(members) > 1:
            had = [set(previous.get(c.name, ())) for c in members]
            # kept stops first; among equals the crew in order (k-th route, k-th crew)
            order = min_cost_assignment([[-len(had[j].intersection(visits))
                                          * (len(members) + 1) + (j != k)
                                          for j in range(len(members))]
                                         for k, visits in enumerate(found)])
        for k, visits in enumerate(found):
            out[members[order[k]].name] = visits
    return out


@dataclass
class Timeline:
    """Times (seconds since local midnight) of one route."""

    start: int
    arrivals: list[int]
    departures: list[int]
    end: int
    brk: tuple[int, int, int] | None  # (start, end, after_stops)


def _seconds_or_none(clock: DayClock, when: datetime | None) -> int | None:
    return None if when is None else clock.seconds(when)


class _Visits:
    """One route's visits as plain numbers, simulated with the break after any stop.

    Every visit's travel, window and service are worked out once; a simulation with the
    break after ``k`` stops starts from the plain timeline's first ``k`` visits, which
    the break does not move.
    """

    def __init__(self, crew: Crew, seq: Sequence[int], stops: Sequence[Stop],
                 dur: npt.NDArray[np.int64], clock: DayClock, depot_loc: int,
                 n_depots: int, reserve_s: int) -> None:
        locs = [n_depots + j for j in seq]
        self.crew = crew
        self.n = len(seq)
        self.s0 = clock.local_seconds(crew.shift_start)
        self.s1 = clock.local_seconds(crew.shift_end) - reserve_s
        self.l0 = clock.local_seconds(crew.lunch_start)
        self.l1 = clock.local_seconds(crew.lunch_end)
        self.reserve_s = reserve_s
        self.legs = [int(dur[a, b]) for a, b in zip([depot_loc, *locs], locs, strict=False)]
        self.back = int(dur[locs[-1] if locs else depot_loc, depot_loc])
        self.opens = [_seconds_or_none(clock, stops[j].tw_start) for j in seq]
        self.closes = [_seconds_or_none(clock, stops[j].tw_end) for j in seq]
        self.service = [stops[j].service_s for j in seq]
        # the plain timeline (no break), with the window lateness before each visit
        self.late_before: list[int] = [0]
        self.plain, self.plain_bad = self.simulate(None)

    def simulate(self, brk_after: int | None) -> tuple[Timeline, int]:
        """Return the timeline with the break after ``brk_after`` stops, and its violation."""
        if brk_after is None:
            k0, t, bad, arr, dep = 0, self.s0, 0, [], []
        else:
            k0 = brk_after
            t = self.s0 if k0 == 0 else self.plain.departures[k0 - 1]
            bad = self.late_before[k0]
            arr, dep = self.plain.arrivals[:k0], self.plain.departures[:k0]
        late: list[int] | None = [0] if brk_after is None else None
        brk = None
        lunch_s = self.crew.lunch_s
        for k in range(k0, self.n):
            if brk_after == k:
                b0 = max(t, self.l0)
                bad += max(0, b0 - self.l1)
                brk = (b0, b0 + lunch_s, k)
                t = b0 + lunch_s
            t += self.legs[k]
            opens, closes = self.opens[k], self.closes[k]
            if opens is not None:
                t = max(t, opens)
            if closes is not None:
                bad += max(0, t - closes)
            if late is not None:
                late.append(bad)
            arr.append(t)
            t += self.service[k]
            dep.append(t)
        if late is not None:
            self.late_before = late
        if brk_after == self.n:
            b0 = max(t, self.l0)
            bad += max(0, b0 - self.l1)
            brk = (b0, b0 + lunch_s, self.n)
            t = b0 + lunch_s
        t += self.back
        bad += max(0, t - self.s1)
        if self.crew.max_duration_s is not None:
            bad += max(0, t - self.s0 - (self.crew.max_duration_s - self.reserve_s))
        return Timeline(self.s0, arr, dep, t, brk), bad


def schedule_route(
    crew: Crew,
    seq: Sequence[int],
    stops: Sequence[Stop],
    dur: npt.NDArray[np.int64],
    clock: DayClock,
    depot_loc: int,
    n_depots: int,
    *,
    reserve_s: int = 0,
) -> tuple[Timeline, int]:
    """Time a route and place the lunch break at the best stop boundary.

    The route leaves the depot at shift start. The break (``crew.lunch_s``) is tried at
    every boundary (after leaving the depot, after each stop, back at the depot) whose
    departure is not later than ``lunch_end``; it starts at ``max(departure,
    lunch_start)`` and later times shift. The feasible candidate with the earliest
    return wins (ties: earliest break). Routes back before ``lunch_start`` take no break.

    Parameters
    ----------
    crew
        The crew.
    seq
        Indices into ``stops``, in visiting order.
    stops
        Stops of the sub-problem.
    dur
        Duration matrix over depots then stops.
    clock
        Planned day.
    depot_loc, n_depots
        Location index of the crew's depot; number of depot locations.
    reserve_s
        Seconds the route must keep before the shift end (and ``max_duration_s``):
        returning later counts as a violation.

    Returns
    -------
    tuple
        The timeline and its total violation in seconds (0 when feasible).
    """
    visits = _Visits(crew, seq, stops, dur, clock, depot_loc, n_depots, reserve_s)
    plain, bad = visits.plain, visits.plain_bad
    if not seq or crew.lunch_s <= 0 or plain.end <= visits.l0:
        return plain, bad
    best: tuple[int, int, int] | None = None
    best_tl: Timeline | None = None
    for k in range(len(seq) + 1):
        tl, bad_k = visits.simulate(k)
        assert tl.brk is not None
        rank = (bad_k, tl.end, tl.brk[0])
        if best is None or rank < best:
            best, best_tl = rank, tl
        leave = plain.start if k == 0 else plain.departures[k - 1]
        if leave > visits.l1:
            break
    assert best is not None and best_tl is not None
    return best_tl, best[0]
