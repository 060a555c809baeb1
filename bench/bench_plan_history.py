"""Reads of today's plan with a year of past plans kept, with and without the stop index.

Writes the "Plan reads with a year of plans" section of docs/benchmarks.md. Run from the
repository root::

    .venv/bin/python bench/bench_plan_history.py [--days 250] [--repeat 3] [--no-write]

The store is the Los Angeles demo with the whole city planned for 2020-01-03 (about
2,000 stops on some 75 routes), on SQLite. A city keeps every day's plan; the history
here is ``--days`` copies of that plan on the days before, assigned and worked (stops
done), written by SQL (``INSERT ... SELECT``): ``--days 250`` is about 500,000 stop rows,
a year of working days. Three stores are timed side by side in this one run: no history,
the history, and the history without ``ix_stops_route_id_sequence`` (migration 0010),
the schema before it. Each call runs ``--repeat`` times, in its own unit of work, as the
demo supervisor (the crew's read as the crew); the table gives the median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
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
from dispatch.services import workflow as wf  # noqa: E402
from dispatch.services.board import day_board  # noqa: E402
from dispatch.store import UnitOfWork, make_engine  # noqa: E402

TITLE = "Plan reads with a year of plans"
DAY = date(2020, 1, 3)
SUPERVISOR = Principal("supervisor", Role.SUPERVISOR)

#: Copy plan 1 to ``n`` earlier days, assigned, every stop done (ids far above today's).
HISTORY_SQL = [
    """WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < :days)
    INSERT INTO plans (id, city, service_date, status, seed, created_at, created_by,
                       payload, version, tz, districts, assigned_at, assigned_by)
    SELECT 100000 + n, city, date(service_date, '-' || n || ' days'), 'assigned', seed,
           created_at, created_by, payload, version, tz, districts, created_at, created_by
    FROM plans, k WHERE plans.id = 1""",
    """WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < :days)
    INSERT INTO routes (id, plan_id, crew_name, district, distance_m, drive_s, service_s,
                        load, version, status, capacity, shift_start, shift_end, start_at,
                        end_at, break_start, break_end, break_after, crew_settings)
    SELECT id + 100000 * n, 100000 + n, crew_name, district, distance_m, drive_s,
           service_s, load, version, status, capacity, shift_start, shift_end, start_at,
           end_at, break_start, break_end, break_after, crew_settings
    FROM routes, k WHERE plan_id = 1""",
    """WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < :days)
    INSERT INTO stops (id, route_id, plan_id, request_id, sequence, eta, departure, status,
                       locked, category, district, lon, lat, service_s, size, urgency,
                       tw_start, tw_end, version)
    SELECT id + 1000000 * n, route_id + 100000 * n, 100000 + n, request_id, sequence, eta,
           departure, 'done', 0, category, district, lon, lat, service_s, size, urgency,
           tw_start, tw_end, version
    FROM stops, k WHERE plan_id = 1""",
]


def add_history(db: Path, days: int, *, drop_index: bool = False) -> int:
    """Write ``days`` past copies of plan 1 into ``db``; return the stop rows stored."""
    con = sqlite3.connect(db)
    try:
        for sql in HISTORY_SQL if days > 0 else []:
            con.execute(sql, {"days": days})
        if drop_index:
            con.execute("DROP INDEX ix_stops_route_id_sequence")
        con.commit()  # no ANALYZE: the product never runs it, so neither does this
        return int(con.execute("SELECT count(*) FROM stops").fetchone()[0])
    finally:
        con.close()


def measure(db: Path, work: Path, repeat: int) -> dict[str, float]:
    """Return the median seconds of each read (and of assigning the plan) on ``db``."""
    city = load_city_pack("los_angeles")
    shutil.copy(db, work)
    engine = make_engine(f"sqlite:///{work}")
    with UnitOfWork(engine, actor=SUPERVISOR) as uow:
        plan_id = wf.plans_for_day(uow, city.name, DAY)[0].id
        details = wf.plan_details(uow, plan_id)
    crew = max(details.plan.routes, key=lambda r: len(r.stops)).crew
    out: dict[str, float] = {}

    def timed(name: str, call: Callable[[UnitOfWork], Any], actor: Any = SUPERVISOR,
              times: int = repeat) -> None:
        took = []
        for _ in range(times):
            with UnitOfWork(engine, actor=actor) as uow:
                t0 = time.perf_counter()
                call(uow)
                took.append(time.perf_counter() - t0)
        out[name] = statistics.median(took)
        print(f"  {name}: {out[name]:.3f} s", file=sys.stderr, flush=True)

    timed("read the plan (plan_details)", lambda u: wf.plan_details(u, plan_id))
    timed("the assignment preview", lambda u: wf.preview_assignment(u, plan_id))
    timed("a crew's holds", lambda u: wf.crew_holds(u, plan_id, crew))
    version = details.version
    with UnitOfWork(engine, actor=SUPERVISOR) as uow:
        token = wf.preview_assignment(uow, plan_id)[0].token
    timed("assign the plan", lambda u: wf.assign_plan(u, plan_id, expected_version=version,
                                                      token=token), times=1)
    timed("a crew's route today (crew_route)",
          lambda u: wf.crew_route(u, city.name, DAY, crew),
          actor=Principal(crew, Role.CREW, crew=crew))
    timed("the live board (day_board)", lambda u: day_board(u, city, DAY))
    engine.dispose()
    return out


def section(results: list[tuple[str, int, dict[str, float]]], started: str,
            load: tuple[float, ...], days: int, repeat: int, commit: str) -> str:
    """Return the Markdown section for ``results`` (label, stop rows, times)."""
    lines = [
        f"## {TITLE}", "",
        "A city keeps every day's plan. The reads of today's plan, with no past plan, with "
        f"{days} past days of plans (copies of today's, assigned and done), and with that "
        "history on the schema before migration 0010 (no index on a stop's route), side by "
        "side in one run.", "",
        provenance(f".venv/bin/python bench/bench_plan_history.py --days {days} --repeat "
                   f"{repeat}", started, load, commit), "",
        "Data: the Los Angeles demo, the city planned for 2020-01-03 (a draft until "
        "*assign*). Median of "
        f"{repeat} runs (assigning: one).", "",
        "| call | " + " | ".join(f"{label} ({rows:,} stop rows)" for label, rows, _ in results)
        + " |",
        "|---|" + "---|" * len(results),
    ]
    for name in results[0][2]:
        lines.append(f"| {name} | " + " | ".join(f"{t[name]:.3f} s" for _, _, t in results)
                     + " |")
    return "\n".join(lines) + "\n"


def main_(argv: list[str] | None = None) -> int:
    """Run the benchmark; write the section unless ``--no-write``."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--days", type=int, default=250)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    commit = git_commit()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "seeded.db"
        url = f"sqlite:///{seeded}"
        seed_city_plan(url, DAY)
        stores = []
        for label, days, drop in [("no past plans", 0, False),
                                  (f"{args.days} past days", args.days, False),
                                  (f"{args.days} past days, no stop index", args.days, True)]:
            db = Path(tmp) / f"store{len(stores)}.db"
            shutil.copy(seeded, db)
            stores.append((label, add_history(db, days, drop_index=drop), db))
        started = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        load = os.getloadavg()
        for label, rows, db in stores:
            print(label, file=sys.stderr)
            results.append((label, rows, measure(db, Path(tmp) / "work.db", args.repeat)))
    text = section(results, started, load, args.days, args.repeat, commit)
    return publish(TITLE, text, write=not args.no_write)


if __name__ == "__main__":
    raise SystemExit(main_())
