"""Many writers at once: crews tapping at random while intake saves flat out.

Writes the "Many writers" section of docs/benchmarks.md. Run from the repository root::

    .venv/bin/python bench/bench_load.py                       # SQLite, one process, 60 s
    .venv/bin/python bench/bench_load.py --db postgresql://... # PostgreSQL, one process
    .venv/bin/python bench/bench_load.py --db postgresql://... --processes 2
    .venv/bin/python bench/bench_load.py --all --pg postgresql://...  # the three, one table

The store holds the Los Angeles demo day (10,000 real requests of 1-3 January 2020,
the city plan of 2020-01-03 assigned). Eight crew workers, two per crew on four
crews, tap at random on their own route (arrived, done, can't complete, undo, photo),
so two people really do tap the same stop at times. One intake worker saves phone
requests as fast as it can. Each worker counts what it did:

* ``done``: actions the service accepted;
* ``conflicts``: actions refused because somebody else changed the same thing first
  (the partner already tapped that stop): one sentence, nothing saved;
* ``errors``: anything else (a traceback, "database is locked" ...);
* ``lost``: accepted actions missing from the store at the end: every accepted crew tap
  must have left its event, every accepted intake its request and its event.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.docs import write_section  # noqa: E402

DAY = date(2020, 1, 3)
PHOTO = b"\x89PNG\r\n\x1a\n" + b"0" * 256
#: Taps a crew member may make on a stop in each status.
ALLOWED = {
    "pending": ["arrived", "done", "cant_complete", "photo"],
    "arrived": ["done", "cant_complete", "photo"],
    "done": ["undone", "photo"],
    "cant_complete": ["undone", "photo"],
}


@dataclass
class Tally:
    """What one worker believes it did."""

    done: int = 0
    conflicts: int = 0
    errors: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    events: Counter[tuple[str, str]] = field(default_factory=Counter)  # (actor, action)
    intakes: list[int] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        """Add another worker's counts to these."""
        self.done += other.done
        self.conflicts += other.conflicts
        self.errors += other.errors
        self.messages.update(other.messages)
        self.events.update(other.events)
        self.intakes += other.intakes


def prepare(url: str) -> list[str]:
    """Initialise the demo store, plan and assign 2020-01-03; return four busy crews."""
    from dispatch.citypack import load_city_pack
    from dispatch.cli import main
    from dispatch.services import workflow as wf
    from dispatch.services.planning import plan_for_day
    from dispatch.store import UnitOfWork, make_engine

    assert main(["--db", url, "init", "--demo"]) == 0
    la = load_city_pack("los_angeles")
    engine = make_engine(url)
    with UnitOfWork(engine, actor="bench:plan") as uow:
        summary = plan_for_day(uow, la, DAY, time_limit_s=1, max_workers=2)
    with UnitOfWork(engine, actor="bench:plan") as uow:
        wf.assign_plan(uow, summary.plan_id)
    busiest = sorted(summary.plan.routes, key=lambda r: -len(r.stops))[:4]
    engine.dispose()
    return [r.crew for r in busiest]


def crew_worker(url: str, crew: str, member: str, seconds: float, seed: int) -> Tally:
    """Tap at random on the crew's route until the time is up."""
    from dispatch.citypack import load_city_pack
    from dispatch.errors import ConcurrentEditError, DispatchError, InvalidTransitionError
    from dispatch.services import workflow as wf
    from dispatch.store import UnitOfWork, make_engine

    la = load_city_pack("los_angeles")
    engine = make_engine(url)
    rng = random.Random(seed)
    tally = Tally()
    actor = f"crew:{member}"
    photos = Path(tempfile.mkdtemp(prefix="bench-photos-"))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with UnitOfWork(engine, actor=actor) as uow:
                view = wf.crew_route(uow, la.name, DAY, crew)
            if view is None or not view.stops:
                break
            stop = rng.choice(view.stops)
            # a tap the stop allows as this worker sees it: a refusal then means the
            # partner changed the same stop in between (a real conflict)
            action = rng.choice(ALLOWED[stop.status])
            with UnitOfWork(engine, actor=actor) as uow:
                if action == "arrived":
                    wf.record_arrival(uow, stop.stop_id, crew)
                elif action == "done":
                    wf.complete_stop(uow, stop.stop_id, crew)
                elif action == "cant_complete":
                    wf.cannot_complete(uow, stop.stop_id, crew, "not_out")
                elif action == "undone":
                    wf.undo_stop(uow, stop.stop_id, crew)
                else:
                    wf.attach_photo(uow, stop.stop_id, crew, PHOTO, photos)
            tally.done += 1
            tally.events[(actor, "photo_added" if action == "photo" else action)] += 1
        except (ConcurrentEditError, InvalidTransitionError) as err:
            # the partner tapped the same stop between this worker's look and its tap
            tally.conflicts += 1
            tally.messages[str(err).split(" at ")[0][:70]] += 1
        except DispatchError as err:
            tally.errors += 1
            tally.messages[f"{type(err).__name__}: {err}"[:90]] += 1
        except Exception as err:
            tally.errors += 1
            tally.messages[f"{type(err).__name__}: {err}"[:90]] += 1
    engine.dispose()
    return tally


def intake_worker(url: str, seconds: float) -> Tally:
    """Save phone requests as fast as possible."""
    from dispatch.citypack import load_city_pack
    from dispatch.errors import DispatchError
    from dispatch.model import Channel
    from dispatch.services import requests as rs
    from dispatch.store import UnitOfWork, make_engine

    la = load_city_pack("los_angeles")
    engine = make_engine(url)
    tally = Tally()
    form = rs.IntakeForm(category="graffiti_removal", address="200 N SPRING ST",
                         lon=-118.2427, lat=34.0537, channel=Channel.PHONE,
                         caller_phone="213-555-0100")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with UnitOfWork(engine, actor="supervisor:intake") as uow:
                tally.intakes.append(rs.create_request(uow, la, form))
            tally.done += 1
        except DispatchError as err:
            tally.conflicts += 1
            tally.messages[str(err)[:70]] += 1
        except Exception as err:
            tally.errors += 1
            tally.messages[f"{type(err).__name__}: {err}"[:90]] += 1
    engine.dispose()
    return tally


def _run_threads(url: str, crews: list[str], seconds: float, members: list[int],
                 intake: bool) -> Tally:
    from concurrent.futures import ThreadPoolExecutor

    jobs = []
    with ThreadPoolExecutor(max_workers=len(members) + 1) as pool:
        for m in members:
            crew = crews[m // 2]
            jobs.append(pool.submit(crew_worker, url, crew, f"{crew}-m{m}", seconds, m))
        if intake:
            jobs.append(pool.submit(intake_worker, url, seconds))
        total = Tally()
        for job in jobs:
            total.add(job.result())
    return total


def _process_part(args: tuple[str, list[str], float, list[int], bool]) -> Tally:
    return _run_threads(*args)


def lost(url: str, tally: Tally, started_event: int) -> int:
    """Return accepted actions the store does not show."""
    from sqlalchemy import func, select

    from dispatch.store import UnitOfWork, make_engine
    from dispatch.store.models import EventRow

    engine = make_engine(url)
    missing = 0
    with UnitOfWork(engine) as uow:
        rows = uow.session.execute(
            select(EventRow.actor, EventRow.action, func.count())
            .where(EventRow.id > started_event)
            .group_by(EventRow.actor, EventRow.action)).all()
        seen = Counter({(a, act): n for a, act, n in rows})
        for (actor, action), count in tally.events.items():
            missing += max(0, count - seen.get((actor, action), 0))
        stored = {r.id for r in uow.requests.by_ids(tally.intakes)}
        missing += len(set(tally.intakes) - stored)
        created = seen.get(("supervisor:intake", "created"), 0)
        missing += max(0, len(tally.intakes) - created)
    engine.dispose()
    return missing


def run(url: str, seconds: float, processes: int) -> dict[str, object]:
    from dispatch.store import UnitOfWork, make_engine

    crews = prepare(url)
    engine = make_engine(url)
    with UnitOfWork(engine) as uow:
        started_event = max((e.id for e in uow.events.recent(1)), default=0)
    engine.dispose()
    members = list(range(8))
    t0 = time.perf_counter()
    if processes <= 1:
        tally = _run_threads(url, crews, seconds, members, True)
    else:
        parts = [(url, crews, seconds, members[i::processes], i == 0)
                 for i in range(processes)]
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            tally = Tally()
            for part in pool.map(_process_part, parts):
                tally.add(part)
    wall = time.perf_counter() - t0
    return {"done": tally.done, "conflicts": tally.conflicts, "errors": tally.errors,
            "lost": lost(url, tally, started_event), "wall_s": wall,
            "intakes": len(tally.intakes), "messages": tally.messages.most_common(6)}


def _fresh_postgres(server: str, name: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from dispatch.store.db import normalise_url

    base = make_url(normalise_url(server))
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--all", action="store_true",
                        help="SQLite, PostgreSQL and PostgreSQL with two processes")
    parser.add_argument("--pg", help="PostgreSQL server URL for --all")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    configs: list[tuple[str, str, int]] = []
    if args.all:
        if not args.pg:
            parser.error("--all needs --pg postgresql://USER@HOST:PORT/DB")
        sqlite = f"sqlite:///{tempfile.mkdtemp(prefix='bench-load-')}/load.db"
        configs = [("SQLite (embedded default)", sqlite, 1),
                   ("PostgreSQL, one app process", _fresh_postgres(args.pg, "bench_load_1"), 1),
                   ("PostgreSQL, two app processes", _fresh_postgres(args.pg, "bench_load_2"), 2)]
    else:
        url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='bench-load-')}/load.db"
        configs = [(url.split(":")[0], url, args.processes)]
    rows = []
    for label, url, processes in configs:
        result = run(url, args.seconds, processes)
        print(f"{label}: done {result['done']}, conflicts {result['conflicts']}, "
              f"errors {result['errors']}, lost {result['lost']} "
              f"({result['intakes']} intakes, {result['wall_s']:.0f} s)")
        for message, count in result["messages"]:  # type: ignore[attr-defined]
            print(f"    {count:6d} x {message}")
        rows.append((label, processes, result))
    if args.no_write:
        return
    lines = [
        "## Many writers",
        "",
        "Command: `.venv/bin/python bench/bench_load.py --all --pg postgresql://USER@HOST:PORT/DB"
        f" --seconds {args.seconds:.0f}` (shared 2-core machine, one run).",
        "",
        "Eight crew workers (two per crew on the four busiest routes of the assigned city "
        "plan of 2020-01-03) tap at random on their own route: arrived, done, can't "
        "complete, undo, photo. One intake worker saves phone requests flat out. "
        "Each worker only makes a tap the stop allows as it last saw it, so a refusal "
        "(*conflicts*) means the partner changed the same stop in between, and it came "
        "back as one sentence; *errors* are anything else; *lost* counts accepted "
        "actions without their event or request.",
        "",
        "| store | app processes | done | of which intakes | conflicts | errors | lost |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, processes, result in rows:
        lines.append(f"| {label} | {processes} | {result['done']:,} | {result['intakes']:,} | "
                     f"{result['conflicts']:,} | {result['errors']} | {result['lost']} |")
    write_section("Many writers", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
