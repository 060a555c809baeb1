"""Benchmarks of the planning engine; writes to the "Planning" section of docs/benchmarks.md.

Run from the repository root::

    .venv/bin/python bench/bench_plan.py la        # LA 2020-01-03, whole city, 2 workers
    .venv/bin/python bench/bench_plan.py quality   # default budget vs 10x, per district
    .venv/bin/python bench/bench_plan.py replan    # move / add on a 40-stop route
    .venv/bin/python bench/bench_plan.py scaling   # 100 ... 10,000 stops
    .venv/bin/python bench/bench_plan.py la --travel straight-line --no-slack   # the comparison
    .venv/bin/python bench/bench_plan.py la --travel pack                      # calibrated + reserve
    .venv/bin/python bench/bench_plan.py la --day 2017-12-29 ...               # held-out day
    (add --no-write to only print)
"""

# ruff: noqa: E501
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.la_data import la_pack, load_la_requests, scaled_roster  # noqa: E402
from bench.planning_docs import write_fragment  # noqa: E402
from dispatch.planning import (  # noqa: E402
    HaversineTravel,
    Lock,
    Plan,
    Slack,
    Stop,
    TravelModel,
    plan_day,
    replan,
    select_stops_for_day,
    validate_plan,
)
from dispatch.planning.planner import DEFAULT_TIME_LIMIT_S, retime_routes  # noqa: E402

DAY = date(2020, 1, 3)
LA_TZ = la_pack().timezone
#: The held-out replay day (evaluation file: measured only, never tuned on).
EVAL_DAY = date(2017, 12, 29)
EVAL_CSV = ROOT / "data" / "evaluation" / "los_angeles" / "myla311_2017-12-27_to_31.csv"
#: Robustness check: travel this much slower; no route may then end later than this.
SLOW_FACTOR = 1.25
LATE_LIMIT_S = 15 * 60


def machine() -> str:
    load = os.getloadavg()[0]
    return (
        f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores "
        f"shared, load average {load:.1f} at start"
    )


def day_stops(day: date = DAY) -> list[Stop]:
    """Return the replayed morning's stops of ``day`` (2020-01-03 or 2017-12-29)."""
    pack = la_pack()
    reqs = load_la_requests(EVAL_CSV) if day == EVAL_DAY else load_la_requests()
    return select_stops_for_day(reqs, day, pack.timezone, pack.categories)


def la_stops() -> list[Stop]:
    return day_stops(DAY)


def travel_and_slack(travel: str, no_slack: bool) -> tuple[TravelModel, Slack | None]:
    """Return the pack's model (or another by name) and its reserve (or none)."""
    pack = la_pack()
    model = pack.travel.build() if travel == "pack" else pack.travel.with_model(travel).build()
    return model, (None if no_slack else pack.slack())


def peak_rss_mb() -> float:
    """Return the peak resident memory of this process and its finished children, MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def run_la(
    workers: int, scale: float = 1.0, *, day: date = DAY, travel: str = "straight-line",
    no_slack: bool = True, seed: int = 1,
) -> tuple[Plan, float, list[dict[str, object]], list[str]]:
    stops = day_stops(day)
    pack = la_pack()  # the product's roster: data/cities/los_angeles.toml
    crews, depots = list(pack.crews), dict(pack.depots)
    model, slack = travel_and_slack(travel, no_slack)
    stats: list[dict[str, object]] = []
    t0 = time.perf_counter()
    plan = plan_day(
        stops, crews, depots, day=day, tz=pack.timezone, city=pack.name, seed=seed,
        max_workers=workers, iteration_scale=scale, travel=model, slack=slack,
        time_limit_s=None if scale != 1.0 else DEFAULT_TIME_LIMIT_S, stats=stats,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    errs = validate_plan(plan, crews, depots, model, stops, slack=slack)
    return plan, wall, stats, errs


def lateness(plan: Plan, travel: str) -> list[int]:
    """Return, per route, seconds past the shift end with travel SLOW_FACTOR slower."""
    model, _ = travel_and_slack(travel, True)
    return sorted(retime_routes(plan, list(la_pack().crews), model, SLOW_FACTOR).values())


def outside_territory(plan: Plan) -> int:
    return sum(1 for r in plan.routes for p in r.stops
               if r.territory and p.stop.district not in r.territory)


def cmd_la(args: argparse.Namespace) -> str:
    where = machine()
    day = date.fromisoformat(args.day)
    kw = {"day": day, "travel": args.travel, "no_slack": args.no_slack}
    plan, wall, stats, errs = run_la(args.workers, **kw)  # type: ignore[arg-type]
    same = None
    if args.twice:
        again, wall2, _, _ = run_la(args.workers, **kw)  # type: ignore[arg-type]
        same = again.to_json() == plan.to_json()
    tot = plan.totals()
    n = tot["stops_planned"] + tot["stops_unplanned"]
    kinds = Counter(u.reason.kind.label for u in plan.unplanned)
    capped = sum(1 for s in stats if s["iterations"] != s["budget"] and s["stops"])
    late = lateness(plan, args.travel)
    over = [x for x in late if x > 0]
    reserve = sorted({r.reserve_s for r in plan.routes})
    flags = f" --day {args.day} --travel {args.travel}{' --no-slack' if args.no_slack else ''}"
    model = plan.settings.get("travel")
    lines = [
        f"### LA day {args.day}, {model}, {'no reserve' if args.no_slack else 'default reserve'}",
        "",
        f"Command: `.venv/bin/python bench/bench_plan.py la --workers {args.workers}{flags}{' --twice' if args.twice else ''}` ({where}).",
        "",
        "| measure | result |",
        "|---|---|",
        f"| routable stops selected (`select_stops_for_day`) | {n} |",
        f"| sub-problems (crew type x territory group) | {len(stats)} |",
        f"| crews available / with a route | {tot['routes']} / {tot['routes_used']} |",
        f"| wall time, plan_day incl. matrices and process pool | {wall:.1f} s |",
        f"| peak memory (largest process) | {peak_rss_mb():.0f} MB |",
        f"| stops planned / unplanned | {tot['stops_planned']} / {tot['stops_unplanned']} |",
        "| unplanned by reason | "
        + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) + " |",
        f"| `validate_plan` violations (territory, skill, capacity, shift, reserve, windows, lunch, travel) | {len(errs)} |",
        f"| stops outside their crew's territory | {outside_territory(plan)} |",
        f"| total drive (incl. approach) / service | {tot['drive_s'] / 3600:.2f} h / {tot['service_s'] / 3600:.1f} h |",
        f"| total distance | {tot['distance_m'] / 1000:.0f} km |",
        f"| reserve per route | {', '.join(f'{r / 60:.1f} min' for r in reserve)} |",
        f"| least slack left on a route | {min((r.slack_s for r in plan.routes if r.stops), default=0) / 60:.1f} min |",
        f"| travel {SLOW_FACTOR:g}x slower: routes over shift / over by > {LATE_LIMIT_S // 60} min / worst | "
        f"{len(over)} / {sum(1 for x in over if x > LATE_LIMIT_S)} / {max(late, default=0) / 60:+.1f} min |",
        f"| solver runs stopped by the {DEFAULT_TIME_LIMIT_S:g} s cap instead of the iteration budget | {capped} |",
        f"| largest sub-problem | {max(int(str(s['stops'])) for s in stats)} stops |",
        f"| solver time summed over runs (CPU-bound) | {sum(float(str(s['runtime_s'])) for s in stats):.1f} s |",
        f"| focus rounds run | {sum(int(str(s['rounds'])) for s in stats)} |",
    ]  # fmt: skip
    if same is not None:
        lines.append(
            f"| second run, same seed: identical JSON | {'yes' if same else 'NO'} (wall {wall2:.1f} s) |"
        )
    if errs:
        lines += ["", "Violations (first 10):", ""] + [f"- {e}" for e in errs[:10]]
    return "\n".join(lines)


def cmd_quality(args: argparse.Namespace) -> str:
    kw = {"travel": args.travel, "no_slack": args.no_slack}
    base, w1, _, e1 = run_la(args.workers, **kw)  # type: ignore[arg-type]
    big, w10, _, e10 = run_la(args.workers, scale=10.0, **kw)  # type: ignore[arg-type]

    def per_type(p: Plan) -> dict[str, list[int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in p.routes:
            out["+".join(r.skills)][0] += r.drive_s
            out["+".join(r.skills)][1] += len(r.stops)
        return out

    a, b = per_type(base), per_type(big)
    rows = []
    for d in sorted(set(a) | set(b)):
        gap = (a[d][0] - b[d][0]) / b[d][0] * 100 if b[d][0] else 0.0
        rows.append(
            f"| {d} | {a[d][1]} / {b[d][1]} | {a[d][0] / 3600:.2f} | {b[d][0] / 3600:.2f} | {gap:+.2f}% |"
        )
    ta, tb = base.totals(), big.totals()
    tgap = (ta["drive_s"] - tb["drive_s"]) / tb["drive_s"] * 100
    lines = [
        "### Quality: default budget vs 10x",
        "",
        f"Command: `.venv/bin/python bench/bench_plan.py quality --workers {args.workers} --travel {args.travel}{' --no-slack' if args.no_slack else ''}` ({machine()}).",
        f"Default: iteration budget per solver run (`auto_iterations`), {DEFAULT_TIME_LIMIT_S:g} s cap; "
        "10x: ten times the iterations, no cap (focus rounds in both). Per crew type: routes cross "
        "districts inside their crews' territories, so a district is no longer a unit of work. "
        "Drive time of a type with more stops served can be higher; compare stop counts.",
        "",
        "| crew type | stops default / 10x | drive h default | drive h 10x | gap |",
        "|---|---|---|---|---|",
        *rows,
        f"| **total** | {ta['stops_planned']} / {tb['stops_planned']} | {ta['drive_s'] / 3600:.2f} | "
        f"{tb['drive_s'] / 3600:.2f} | {tgap:+.2f}% |",
        "",
        f"Wall: default {w1:.1f} s, 10x {w10:.1f} s. Violations: {len(e1)} / {len(e10)}.",
    ]  # fmt: skip
    return "\n".join(lines)


def cmd_replan(args: argparse.Namespace) -> str:
    pool = [
        s
        for s in la_stops()
        if s.district == "13" and s.category == "bulky_items" and s.lon is not None
    ]
    pack = la_pack()
    depots = dict(pack.depots)
    crew = replace(pack.crew("NC-bulky-1"), districts=("13",), capacity=60)
    other = replace(pack.crew("NC-bulky-2"), districts=("13",), capacity=60)
    # Grow the day until one route reaches 40 stops.
    for n in range(40, len(pool) + 1, 2):
        plan = plan_day(pool[:n], [crew, other], depots, day=DAY, tz=pack.timezone, max_workers=1,
                        seed=1)
        r = max(plan.routes, key=lambda r: len(r.stops))
        if len(r.stops) >= 40:
            break
    r2 = next(x for x in plan.routes if x.crew != r.crew)
    rows = []
    reps = args.repeat
    for what in ("move", "add"):
        times = []
        ok = True
        for k in range(reps):
            locks = [
                Lock(p.request_id, r.crew, i) for i, p in enumerate(r.stops[: len(r.stops) // 2])
            ]
            t0 = time.perf_counter()
            if what == "move" and r2.stops:
                rid = r2.stops[k % len(r2.stops)].request_id
                new = replan(plan, moves={rid: r.crew}, locks=locks)
            else:
                urgent = Stop(
                    f"URG-{k}", "bulky_items", "13", -118.30 + 0.001 * k, 34.09, 600, urgency=9
                )
                new = replan(plan, add=[urgent], locks=locks)
            times.append(time.perf_counter() - t0)
            got = [p.request_id for p in new.route(r.crew).stops]
            ok &= all(got[lk.position] == lk.request_id for lk in locks if lk.position is not None)
        rows.append(
            f"| {what} one stop, {len(r.stops)}-stop route, first half locked to its positions | "
            f"{statistics.median(times) * 1000:.0f} ms | {max(times) * 1000:.0f} ms | {'yes' if ok else 'NO'} |"
        )
    lines = [
        "### Re-planning",
        "",
        f"Command: `.venv/bin/python bench/bench_plan.py replan --repeat {reps}` ({machine()}).",
        "District 13 bulky requests of 2020-01-03 (the first ones until a route has 40 stops), two NC bulky crews of the pack kept to district 13 with capacity 60; default `replan` budget (0.5 s solver cap). Target < 1 s.",
        "",
        "| change | median | max | locked stops unchanged |",
        "|---|---|---|---|",
        *rows,
    ]  # fmt: skip
    return "\n".join(lines)


def synthetic(n: int, base: list[Stop], rng: np.random.Generator) -> list[Stop]:
    """Sample ``n`` real stops (with replacement past the real count), ~150 m jitter."""
    located = [s for s in base if s.lon is not None]
    idx = rng.permutation(len(located)) if n <= len(located) else rng.integers(0, len(located), n)
    out = []
    for k, i in enumerate(idx[:n]):
        s = located[int(i)]
        jit = rng.normal(0, 0.0015, 2) if n > len(located) else np.zeros(2)
        out.append(
            replace(s, request_id=f"{s.request_id}#{k}", lon=float(s.lon + jit[0]),  # type: ignore[operator]
                    lat=float(s.lat + jit[1]))  # type: ignore[operator]
        )  # fmt: skip
    return out


def cmd_scaling(args: argparse.Namespace) -> str:
    base = la_stops()
    rng = np.random.default_rng(7)
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        f = n / len(base)
        pack = la_pack()  # the product's roster, each crew group scaled with the stops
        crews, depots = scaled_roster(pack, f), dict(pack.depots)
        stops = synthetic(n, base, rng)
        stats: list[dict[str, object]] = []
        t0 = time.perf_counter()
        plan = plan_day(
            stops, crews, depots, day=DAY, tz=pack.timezone, max_workers=args.workers, stats=stats
        )
        wall = time.perf_counter() - t0
        errs = validate_plan(plan, crews, depots, HaversineTravel(), stops)
        tot = plan.totals()
        capped = sum(1 for s in stats if s["iterations"] != s["budget"] and s["stops"])
        rows.append(
            f"| {n:,} | {len(crews)} | {len(stats)} | {max(int(str(s['stops'])) for s in stats)} | "
            f"{wall:.1f} s | {tot['stops_planned']:,} | {tot['stops_unplanned']:,} | {capped} | {len(errs)} |"
        )
        print(rows[-1], flush=True)
    lines = [
        "### Scaling",
        "",
        f"Command: `.venv/bin/python bench/bench_plan.py scaling --workers {args.workers}` ({machine()}).",
        "Stops sampled from the 2020-01-03 LA stops (past 1,992: replicated with ~150 m jitter); "
        "the pack's crews scaled in proportion (each [[crews]] entry's count). Default budget, "
        "cap and reserve; straight-line travel.",
        "",
        "| stops | crews | sub-problems | largest | wall | planned | unplanned | capped | violations |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("what", choices=["la", "quality", "replan", "scaling"])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--twice", action="store_true", help="la: plan twice and compare JSON")
    ap.add_argument("--day", default=DAY.isoformat(), choices=[DAY.isoformat(), EVAL_DAY.isoformat()],
                    help="la: the replayed day (2017-12-29 is the held-out evaluation day)")
    ap.add_argument("--travel", default="straight-line", choices=["pack", "straight-line", "banded", "network"],
                    help="la/quality: travel model (default straight-line, today's)")
    ap.add_argument("--no-slack", action="store_true", help="la/quality: no reserve")
    ap.add_argument("--sizes", default="100,500,1000,3000,10000")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    fn = {"la": cmd_la, "quality": cmd_quality, "replan": cmd_replan, "scaling": cmd_scaling}[
        args.what
    ]
    md = fn(args)
    print(md)
    if not args.no_write:
        name = args.what
        if args.what == "la":
            name = f"la_day_{args.day}_{args.travel}{'_noslack' if args.no_slack else ''}"
        write_fragment(name, md)


if __name__ == "__main__":
    main()
