"""Reads of one plan stay indexed however many plans the store keeps.

A city keeps every day's plan: after a year some 500,000 stop rows. The stops had no
index on their route, so every read that joins routes to their stops (the assignment
preview on every open of the plan page, each edit, a crew's route) scanned every stop
of every past plan, once per route: with 250 days of history the assignment preview
took 7.5 s instead of 0.06 s (bench/bench_plan_history.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from dispatch.auth import Principal, Role
from dispatch.cli import main
from dispatch.services import workflow as wf
from dispatch.store import UnitOfWork, make_engine
from dispatch.store.models import Base

SAMPLE = Path(__file__).parent / "data" / "workflow" / "la_day_cd13_cd14_open.csv"
SUPERVISOR = Principal("ana", Role.SUPERVISOR)


def _leading_columns(table: Any) -> set[str]:
    """Return the first column of each index, primary key and unique constraint."""
    lead = {next(iter(ix.columns)).name for ix in table.indexes}
    for c in table.constraints:
        cols = list(getattr(c, "columns", []))
        if cols and type(c).__name__ in ("PrimaryKeyConstraint", "UniqueConstraint"):
            lead.add(cols[0].name)
    return lead


@pytest.mark.parametrize("table", sorted(Base.metadata.tables))
def test_every_foreign_key_leads_an_index(table: str) -> None:
    """A child looked up by its parent (or deleted with it) is found by an index."""
    t = Base.metadata.tables[table]
    lead = _leading_columns(t)
    missing = sorted(fk.parent.name for fk in t.foreign_keys if fk.parent.name not in lead)
    assert not missing, f"{table}: no index starts with {missing}"


@pytest.fixture
def planned(tmp_path: Path) -> Iterator[str]:
    """A SQLite store with the CD 13/14 sample day planned (a draft)."""
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(SAMPLE), "--rejects",
                 str(tmp_path / "r.csv")]) == 0
    assert main(["--db", url, "clock", "set", "2020-01-03T07:00"]) == 0
    assert main(["--db", url, "plan", "--date", "2020-01-03"]) == 0
    yield url


#: Tables that grow with the years kept.
_GROWING = ("requests", "events", "plans", "routes", "stops", "unplanned", "assignments")


def _scans(url: str, read: Any) -> list[str]:
    """Run ``read(uow)``; return SQLite's plan lines that scan a growing table whole."""
    engine = make_engine(url)
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
               executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    with UnitOfWork(engine, actor=SUPERVISOR) as uow:
        read(uow)
    event.remove(engine, "before_cursor_execute", record)
    bad = []
    with engine.connect() as conn:
        for statement, params in seen:
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params):
                detail = str(row[-1])
                if any(detail.startswith(f"SCAN {t}") for t in _GROWING):
                    bad.append(f"{detail}: {statement[:120]}")
    engine.dispose()
    return bad


@pytest.mark.parametrize("read", ["plan_details", "preview_assignment", "crew_holds"])
def test_reads_of_one_plan_never_scan_every_plans_stops(planned: str, read: str) -> None:
    engine = make_engine(planned)
    with engine.connect() as conn:
        plan_id, crew = conn.execute(text(
            "SELECT plan_id, crew_name FROM routes ORDER BY id LIMIT 1")).one()
    engine.dispose()
    calls = {"plan_details": lambda u: wf.plan_details(u, plan_id),
             "preview_assignment": lambda u: wf.preview_assignment(u, plan_id),
             "crew_holds": lambda u: wf.crew_holds(u, plan_id, crew)}
    assert _scans(planned, calls[read]) == []


@pytest.mark.parametrize("read", ["date_range", "actors"])
def test_page_lookups_read_an_index_end_not_the_whole_history(planned: str, read: str) -> None:
    """The span of the stored requests (four pages' date pickers) and the event log's
    list of actors: ``min`` with ``max`` in one query, and ``DISTINCT``, read a whole
    index (every request, every event ever logged) on SQLite."""
    calls = {"date_range": lambda u: u.requests.date_range(),
             "actors": lambda u: u.events.actors()}
    assert _scans(planned, calls[read]) == []


@pytest.mark.db
def test_actors_are_everyone_in_the_log_once_in_order(db: Any) -> None:
    """The loose index scan gives what ``DISTINCT`` gave, on each backend."""
    for actor in ["zoe", "ana", "import", "ana", "crew-ev-bulky-1", "zoe", "Ana"]:
        with UnitOfWork(db, actor=actor) as uow:
            uow.events.append("request", 1, "noted")
            uow.commit()
    with UnitOfWork(db) as uow:
        got = uow.events.actors()
        expected = list(uow.session.scalars(text(
            "SELECT DISTINCT actor FROM events ORDER BY actor")))
        empty_lo_hi = uow.requests.date_range()
    assert got == expected
    assert {"zoe", "ana", "import", "crew-ev-bulky-1", "Ana"} <= set(got)
    assert empty_lo_hi == (None, None)
