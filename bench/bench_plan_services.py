"""The supervisor's plan services at city scale, timed in-process (issue 13).

Writes the "Plan services at city scale" section of docs/benchmarks.md. Run from the
repository root::

    .venv/bin/python bench/bench_plan_services.py [--repeat 3] [--no-write]

The store is the Los Angeles demo (``dispatch init --demo``) with the whole city planned
for 2020-01-03 as a draft (about 2,000 stops on some 75 routes), on SQLite. Each edit
runs on a fresh copy of that store, as the demo supervisor, ``--repeat`` times; the
table gives the median and the worst. What the plan page reads on every run (the plan,
the urgent list, a crew's holds, the assignment preview) is timed on the untouched copy.
These are the server's share of the browser timings in *Plan page in a browser*.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.demo import seed_city_plan  # noqa: E402
from bench.docs import commit as git_commit  # noqa: E402
from bench.docs import provenance, publish  # noqa: E402
from dispatch.auth import Principal, Role  # noqa: E402
from dispatch.citypack import load_city_pack  # noqa: E402
from dispatch.errors import DispatchError  # noqa: E402
from dispatch.services import workflow as wf  # noqa: E402
from dispatch.services.planning import urgent_candidates  # noqa: E402
from dispatch.store import UnitOfWork, make_engine  # noqa: E402

TITLE = "Plan services at city scale"
DAY = date(2020, 1, 3)
SUPERVISOR = Principal("supervisor", Role.SUPERVISOR)


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Return the seconds ``fn(*args, **kwargs)`` took."""
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def measure(seeded: Path, work: Path, repeat: int) -> tuple[dict[str, list[float]], int]:
    """Return the seconds of every timed call, by call, and the plan's stop count."""
    city = load_city_pack("los_angeles")
    times: dict[str, list[float]] = {}

    def store() -> Any:
        shutil.copy(seeded, work)
        return make_engine(f"sqlite:///{work}")

    def uow(engine: Any) -> UnitOfWork:
        return UnitOfWork(engine, actor=SUPERVISOR)

    engine = store()
    with uow(engine) as u:
        plan_id = wf.plans_for_day(u, city.name, DAY)[0].id
        details = wf.plan_details(u, plan_id)
    stops = sum(len(r.stops) for r in details.plan.routes)
    routes = sorted((r for r in details.plan.routes if r.stops), key=lambda r: r.crew)
    busiest = max(routes, key=lambda r: len(r.stops))
    with uow(engine) as u:
        urgent = next(iter(urgent_candidates(u, city, plan_id).newest))
    from dispatch.planning.targets import rank_move_targets

    territories = {c.name: c.districts for c in city.crews}
    engine.dispose()

    def accepted(route: Any, crew: str) -> bool:
        """Whether moving the route's first stop to ``crew`` is taken (it has room)."""
        scratch = store()
        try:
            with uow(scratch) as u:
                wf.move_stop(u, plan_id, int(route.stops[0].request_id), crew)
            return True
        except DispatchError:
            return False
        finally:
            scratch.dispose()

    # the first route's stop and the nearest crew offered that has room for it (a move
    # to a crew without room is refused, and changes nothing)
    moved, target = next(
        (r, t.crew) for r in routes
        for t in rank_move_targets(r.stops[0].stop, r.crew, details.plan.routes,
                                   territories, exclude=details.removed)
        if accepted(r, t.crew))

    reads: list[tuple[str, Callable[[UnitOfWork], Any]]] = [
        ("read the plan (plan_details)", lambda u: wf.plan_details(u, plan_id)),
        ("the urgent list, newest 200", lambda u: urgent_candidates(u, city, plan_id)),
        ("a crew's holds", lambda u: wf.crew_holds(u, plan_id, busiest.crew)),
        ("the assignment preview", lambda u: wf.preview_assignment(u, plan_id)),
    ]
    edits: list[tuple[str, Callable[[UnitOfWork, int], Any]]] = [
        ("move a stop", lambda u, v: wf.move_stop(
            u, plan_id, int(moved.stops[0].request_id), target, expected_version=v)),
        ("lock a stop", lambda u, v: wf.set_lock(
            u, plan_id, int(moved.stops[0].request_id), True, expected_version=v)),
        ("add an urgent request", lambda u, v: wf.add_urgent_request(
            u, city, plan_id, urgent, expected_version=v)),
        ("remove a crew", lambda u, v: wf.remove_crew(
            u, plan_id, busiest.crew, expected_version=v, release_locks=True)),
        ("re-optimise", lambda u, v: wf.reoptimise(u, plan_id, expected_version=v)),
    ]
    engine = store()
    for name, read in reads:
        for _ in range(repeat):
            with uow(engine) as u:
                times.setdefault(name, []).append(_timed(read, u))
    engine.dispose()
    for name, edit in [*edits, ("assign the plan", None)]:
        for _ in range(repeat):
            engine = store()
            with uow(engine) as u:
                version = wf.plan_details(u, plan_id).version
            if edit is None:
                with uow(engine) as u:
                    token = wf.preview_assignment(u, plan_id)[0].token
                with uow(engine) as u:
                    took = _timed(wf.assign_plan, u, plan_id, expected_version=version,
                                  token=token)
            else:
                with uow(engine) as u:
                    took = _timed(edit, u, version)
            times.setdefault(name, []).append(took)
            engine.dispose()
            print(f"  {name}: {took:.2f} s", file=sys.stderr, flush=True)
    return times, stops


def section(times: dict[str, list[float]], stops: int, started: str,
            load: tuple[float, ...], repeat: int, commit: str) -> str:
    """Return the Markdown section for ``times``."""
    lines = [
        f"## {TITLE}", "",
        "The plan page's services on the whole city's plan, timed in one process (the "
        "server's share of *Plan page in a browser*): each edit on a fresh copy of the "
        "store, as the supervisor.", "",
        provenance(f".venv/bin/python bench/bench_plan_services.py --repeat {repeat}",
                   started, load, commit), "",
        f"Data: the Los Angeles demo, the city planned for 2020-01-03 as a draft: "
        f"{stops:,} stops.", "",
        "| call | runs | median | worst |",
        "|---|---|---|---|",
    ]
    for what, ts in times.items():
        lines.append(f"| {what} | {len(ts)} | {statistics.median(ts):.3f} s | "
                     f"{max(ts):.3f} s |")
    lines += ["", "A move re-plans only the routes its stops leave and join, an urgent stop "
              "the three routes nearest it; removing a crew re-solves the whole group of "
              "crews of the same skills and territory, with 0.5 s of solver; "
              "re-optimising this plan, which holds no lock, re-solves every group (five), "
              "two at a time in worker processes that share one 0.5 s budget in "
              "proportion to their stops (docs/planning.md, *The supervisor's desk*)."]
    return "\n".join(lines) + "\n"


def main_(argv: list[str] | None = None) -> int:
    """Run the benchmark; write the section unless ``--no-write``."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    commit = git_commit()
    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "seeded.db"
        url = f"sqlite:///{seeded}"
        seed_city_plan(url, DAY)
        started = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        load = os.getloadavg()
        times, stops = measure(seeded, Path(tmp) / "work.db", args.repeat)
    text = section(times, stops, started, load, args.repeat, commit)
    return publish(TITLE, text, write=not args.no_write)


if __name__ == "__main__":
    raise SystemExit(main_())
