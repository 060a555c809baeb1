"""Curbside against VROOM and OR-Tools on exactly the instance the planner builds for a day.

Run from the repository root (several minutes; one heavy run at a time)::

    .venv/bin/python bench/bench_peers.py --travel straight-line --no-slack   # 2020-01-03
    .venv/bin/python bench/bench_peers.py --travel pack                       # calibrated + reserve
    .venv/bin/python bench/bench_peers.py --day 2017-12-29 --travel pack      # held-out day
    (--seconds 10,60 sets the peers' budgets; --no-write only prints)

The instance is the planner's own: :func:`dispatch.planning.problem.split_day` picks the
stops every solver may serve and the crews, each crew's shift ends ``lunch_s`` plus its
reserve (:class:`~dispatch.planning.problem.Slack`) early, capacities are the pack's,
and one travel matrix (the chosen model over the depots and stops) serves everyone. A
crew serves only the stops of its crew type in its own districts: VROOM skills (one per
crew type and district), OR-Tools allowed vehicles. A stop's value is its prize (VROOM:
priority 0-100 in proportion; OR-Tools: the drop penalty), so every solver prefers the
urgent stops when time runs out.

Each solver runs in its own process (peak memory: that process's own high-water mark,
or its largest worker's), VROOM on 2 threads, OR-Tools (guided local search) on one,
Curbside on 2 processes: with its default iteration budget next to the 10 s budgets and
ten times it (``--curbside-scale``, no time cap) next to the 60 s ones.
One evaluator scores every answer: :func:`dispatch.planning.planner.plan_from_routes`
times each crew's stops with the planner's ``schedule_route`` (lunch break placed,
reserve kept; stops that do not fit are dropped, least valuable first) and
:func:`~dispatch.planning.plan.validate_plan` checks the result; the robustness check
re-times every route with travel 1.25x slower.
"""

# ruff: noqa: E501
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_plan import (  # noqa: E402
    DAY,
    EVAL_DAY,
    LA_TZ,
    LATE_LIMIT_S,
    SLOW_FACTOR,
    day_stops,
    machine,
    outside_territory,
    travel_and_slack,
)
from bench.la_data import la_pack  # noqa: E402
from bench.planning_docs import write_fragment  # noqa: E402
from dispatch.planning import Stop, plan_day, validate_plan  # noqa: E402
from dispatch.planning.planner import (  # noqa: E402
    DEFAULT_TIME_LIMIT_S,
    plan_from_routes,
    retime_routes,
)
from dispatch.planning.problem import DayClock, depots_for, serves, split_day  # noqa: E402
from dispatch.planning.solver import crew_reserve_s  # noqa: E402

#: VROOM priorities are 0-100: a stop's prize in proportion to the largest possible.
MAX_PRIZE = 220_000


def instance(args: argparse.Namespace, stops: list[Stop]) -> dict[str, Any]:
    """Return the planner's instance of the day as plain arrays (see the module doc)."""
    day = date.fromisoformat(args.day)
    pack = la_pack()
    travel, slack = travel_and_slack(args.travel, args.no_slack)
    clock = DayClock(day, LA_TZ)
    subs, _ = split_day(stops, list(pack.crews), clock, depots=pack.depots)
    crews = [c for sub in subs for c in sub.crews]
    jobs = [(k, s) for k, sub in enumerate(subs) for s in sub.stops]
    deps = depots_for(crews, pack.depots)
    lonlat = np.array([[d.lon, d.lat] for d in deps] + [[s.lon, s.lat] for _, s in jobs])
    t0 = time.perf_counter()
    _, dur = travel.matrix(lonlat)
    matrix_s = time.perf_counter() - t0
    skill: dict[tuple[int, str | None], int] = {}
    for k, s in jobs:
        skill.setdefault((k, s.district), len(skill))
    nd = len(deps)
    vehicles = []
    for k, sub in enumerate(subs):
        for c in sub.crews:
            s0 = clock.local_seconds(c.shift_start)
            s1 = clock.local_seconds(c.shift_end) - c.lunch_s - crew_reserve_s(c, clock, slack)
            vehicles.append({
                "crew": c.name, "depot": [d.code for d in deps].index(c.depot),
                "capacity": c.capacity, "tw": (s0, max(s0, s1)),
                "skills": sorted(v for (kk, d), v in skill.items() if kk == k and serves(c, d)),
            })
    return {
        "dur": dur, "n_depots": nd, "matrix_s": matrix_s, "vehicles": vehicles,
        "jobs": [{"id": s.request_id, "loc": nd + i, "service": s.service_s, "size": s.size,
                  "prize": s.prize, "skill": skill[(k, s.district)]}
                 for i, (k, s) in enumerate(jobs)],
    }  # fmt: skip


def solve_vroom(inst: dict[str, Any], seconds: float) -> dict[str, list[str]]:
    import vroom

    problem = vroom.Input()
    problem.set_durations_matrix("car", inst["dur"].astype(np.int64))
    for v_id, v in enumerate(inst["vehicles"]):
        problem.add_vehicle(vroom.Vehicle(
            v_id, start=v["depot"], end=v["depot"], capacity=[v["capacity"]],
            skills=set(v["skills"]), time_window=vroom.TimeWindow(*v["tw"]),
        ))  # fmt: skip
    for j_id, j in enumerate(inst["jobs"]):
        problem.add_job(vroom.Job(
            j_id, location=j["loc"], default_service=j["service"], delivery=[j["size"]],
            skills={j["skill"]}, priority=min(100, round(100 * j["prize"] / MAX_PRIZE)),
        ))  # fmt: skip
    sol = problem.solve(exploration_level=5, nb_threads=2, timeout=timedelta(seconds=seconds))
    routes: dict[str, list[str]] = {}
    rows = sol.routes
    for v_id, grp in rows[rows["type"] == "job"].groupby("vehicle_id", sort=False):
        routes[inst["vehicles"][int(v_id)]["crew"]] = [inst["jobs"][int(i)]["id"] for i in grp["id"]]
    return routes


def solve_ortools(inst: dict[str, Any], seconds: float) -> dict[str, list[str]]:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    dur = inst["dur"].astype(np.int64)
    n, nd = len(dur), inst["n_depots"]
    vs, jobs = inst["vehicles"], inst["jobs"]
    service = np.zeros(n, dtype=np.int64)
    demand = np.zeros(n, dtype=np.int64)
    for j in jobs:
        service[j["loc"]], demand[j["loc"]] = j["service"], j["size"]
    starts = [v["depot"] for v in vs]
    manager = pywrapcp.RoutingIndexManager(n, len(vs), starts, starts)
    routing = pywrapcp.RoutingModel(manager)
    cost = routing.RegisterTransitMatrix(dur.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(cost)
    timed = routing.RegisterTransitMatrix((dur + service[:, None]).tolist())
    routing.AddDimension(timed, 86_400, 2 * 86_400, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    for k, v in enumerate(vs):
        tdim.CumulVar(routing.Start(k)).SetRange(v["tw"][0], v["tw"][0])
        tdim.CumulVar(routing.End(k)).SetRange(v["tw"][0], v["tw"][1])
    load = routing.RegisterUnaryTransitVector(demand.tolist())
    routing.AddDimensionWithVehicleCapacity(load, 0, [v["capacity"] for v in vs], True, "load")
    by_skill: dict[int, list[int]] = {}
    for k, v in enumerate(vs):
        for sk in v["skills"]:
            by_skill.setdefault(sk, []).append(k)
    for j in jobs:
        index = manager.NodeToIndex(j["loc"])
        routing.AddDisjunction([index], int(j["prize"]))
        # SetAllowedVehiclesForIndex's binding rejects Python lists in 9.15: same rule.
        routing.VehicleVar(index).SetValues([-1, *by_skill.get(j["skill"], [])])
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH)
    params.time_limit.FromMilliseconds(int(seconds * 1000))
    sol = routing.SolveWithParameters(params)
    routes: dict[str, list[str]] = {}
    if sol is None:  # no first solution within the budget
        print(f"OR-Tools: no solution within {seconds:g} s", file=sys.stderr)
        return routes
    job_at = {j["loc"]: j["id"] for j in jobs}
    for k, v in enumerate(vs):
        idx = sol.Value(routing.NextVar(routing.Start(k)))
        seq = []
        while not routing.IsEnd(idx):
            seq.append(job_at[manager.IndexToNode(idx)])
            idx = sol.Value(routing.NextVar(idx))
        if seq:
            routes[v["crew"]] = seq
    del nd
    return routes


def solve_curbside(
    args: argparse.Namespace, stops: list[Stop], scale: float = 1.0
) -> dict[str, list[str]]:
    day = date.fromisoformat(args.day)
    pack = la_pack()
    travel, slack = travel_and_slack(args.travel, args.no_slack)
    plan = plan_day(stops, list(pack.crews), dict(pack.depots), day=day, tz=LA_TZ,
                    travel=travel, slack=slack, max_workers=2, seed=1, iteration_scale=scale,
                    time_limit_s=None if scale != 1.0 else DEFAULT_TIME_LIMIT_S)
    return {r.crew: [p.request_id for p in r.stops] for r in plan.routes if r.stops}


def child(args: argparse.Namespace) -> None:
    """Run one solver (in its own process) and write its routes and wall time.

    The wall time starts once the day's stops are read (common to every solver): it
    covers the travel matrix, the solver's own model and the search.
    """
    stops = day_stops(date.fromisoformat(args.day))
    travel_and_slack(args.travel, args.no_slack)  # a network graph is loaded untimed
    t0 = time.perf_counter()
    if args.solve == "curbside":
        routes = solve_curbside(args, stops, args.budget or 1.0)
    else:
        inst = instance(args, stops)
        fn = solve_vroom if args.solve == "vroom" else solve_ortools
        routes = fn(inst, args.budget)
    wall = time.perf_counter() - t0
    Path(args.out).write_text(json.dumps({"routes": routes, "wall_s": wall, "rss_mb": own_peak_mb()}))


def own_peak_mb() -> float:
    """Return the peak RSS, MB: this process's (since exec) or its largest worker's.

    ``wait4`` in the parent would not do: a child's high-water mark starts at its
    parent's size when forked.
    """
    hwm = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = float(line.split()[1]) / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return max(hwm, kids)


def run(args: argparse.Namespace, solver: str, budget: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "answer.json"
        cmd = [sys.executable, __file__, "--solve", solver, "--budget", str(budget),
               "--day", args.day, "--travel", args.travel, "--out", str(out)]
        if args.no_slack:
            cmd.append("--no-slack")
        done = subprocess.run(cmd, cwd=ROOT, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{solver} failed with exit code {done.returncode}")
        return dict(json.loads(out.read_text()))


def score(args: argparse.Namespace, answer: dict[str, Any]) -> dict[str, Any]:
    day = date.fromisoformat(args.day)
    pack = la_pack()
    crews, depots = list(pack.crews), dict(pack.depots)
    travel, slack = travel_and_slack(args.travel, args.no_slack)
    stops = day_stops(day)
    plan = plan_from_routes(answer["routes"], stops, crews, depots, day=day, tz=LA_TZ,
                            travel=travel, slack=slack)
    errs = validate_plan(plan, crews, depots, travel, stops, slack=slack)
    late = list(retime_routes(plan, crews, travel, SLOW_FACTOR).values())
    given = sum(len(v) for v in answer["routes"].values())
    tot = plan.totals()
    return {
        "given": given, "planned": tot["stops_planned"], "drive_h": tot["drive_s"] / 3600,
        "routes": tot["routes_used"], "violations": len(errs), "outside": outside_territory(plan),
        "over": sum(1 for x in late if x > 0), "over15": sum(1 for x in late if x > LATE_LIMIT_S),
        "worst_min": max(late, default=0) / 60, "wall_s": answer["wall_s"], "rss_mb": answer["rss_mb"],
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--day", default=DAY.isoformat(), choices=[DAY.isoformat(), EVAL_DAY.isoformat()])
    ap.add_argument("--travel", default="straight-line", choices=["pack", "straight-line", "banded", "network"])
    ap.add_argument("--no-slack", action="store_true")
    ap.add_argument("--seconds", default="10,60", help="peers' time budgets, comma-separated")
    ap.add_argument("--peers", default="vroom,ortools")
    ap.add_argument("--curbside-scale", type=float, default=10.0,
                    help="Curbside's iteration scale next to budgets over 15 s (default 10x)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--solve", help=argparse.SUPPRESS)
    ap.add_argument("--budget", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.solve:
        child(args)
        return
    where = machine()
    rows = []
    runs: list[tuple[str, float]] = []
    for sec in (float(x) for x in args.seconds.split(",")):
        runs.append(("curbside", 1.0 if sec <= 15 else args.curbside_scale))
        runs += [(p, sec) for p in args.peers.split(",")]
    names = {"curbside": "Curbside, 2 processes", "vroom": "VROOM 1.15 (pyvroom), 2 threads",
             "ortools": "OR-Tools 9.15, guided local search, 1 thread"}
    for solver, budget in runs:
        res = score(args, run(args, solver, budget))
        label = names[solver] + (
            (", default budget" if budget == 1.0 else f", {budget:g}x budget")
            if solver == "curbside" else f", {budget:g} s")
        rows.append(
            f"| {label} | {res['planned']:,} | {res['drive_h']:.2f} | {res['routes']} | {res['violations']} | "
            f"{res['outside']} | {res['over']} / {res['over15']} ({res['worst_min']:+.1f} min) | "
            f"{res['wall_s']:.1f} s | {res['rss_mb']:.0f} MB |"
        )
        if res["given"] != res["planned"]:
            rows[-1] += f" <!-- answered {res['given']}, {res['given'] - res['planned']} dropped by the evaluator -->"
        print(rows[-1], flush=True)
    flags = f"--day {args.day} --travel {args.travel}{' --no-slack' if args.no_slack else ''} --seconds {args.seconds}"
    md = "\n".join([
        f"### Peers on {args.day}: {args.travel} travel, {'no reserve' if args.no_slack else 'the pack reserve'}",
        "",
        f"Command: `.venv/bin/python bench/bench_peers.py {flags}` ({where}). Same instance, one evaluator "
        "(see `bench/bench_peers.py`); wall: from the day's stops to the answer, in each solver's own process "
        "(travel matrix, model building, search). Peak RSS: that process, including the pack and the day's "
        "requests and, for OR-Tools, the matrices as Python lists its API takes; "
        "the largest of Curbside's processes. Curbside's rows next to the 10 s budgets use its default "
        "iteration budget, next to the 60 s ones ten times it.",
        "",
        f"| method | planned | drive h | routes | violations | stops outside territory | {SLOW_FACTOR:g}x slower: over / > 15 min (worst) | wall | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])  # fmt: skip
    print(md)
    if not args.no_write:
        write_fragment(f"peers_{args.day}_{args.travel}{'_noslack' if args.no_slack else ''}", md)


if __name__ == "__main__":
    main()
