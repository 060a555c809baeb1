"""Which index each page's queries use: run the real reads, print the database's plans.

Usage::

    .venv/bin/python bench/explain_queries.py --db sqlite:///var/scale/100k.db [--day 2020-03-30]
    .venv/bin/python bench/explain_queries.py --db postgresql://... --day 2020-03-30

Every SQL statement the services issue for the planner's candidate read, triage, the
location queue, the requests map, the KPI page, the hot spots and the event log is
captured (SQLAlchemy's ``before_cursor_execute``) and explained (SQLite ``EXPLAIN QUERY
PLAN``, PostgreSQL ``EXPLAIN``). The output, as Markdown, is what docs/indexes.md quotes.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, text

from dispatch.analytics.hotspots import area_cells
from dispatch.citypack import load_city_pack
from dispatch.services import (
    analytics,
    audit,
    geocoding,
    planning,
    queries,
    reports,
    triage,
)
from dispatch.store import UnitOfWork, make_engine

#: A plan line that reads a whole large table.
FULL_SCAN = r"^SCAN (?:requests|events)\b|Seq Scan on (?:requests|events)\b"


def _capture(engine: Any, run: Callable[[], object]) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def hook(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
             executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "alembic" not in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", hook)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", hook)
    return seen


def _plan(engine: Any, statement: str, params: Any) -> str:
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        cur = raw.cursor()
        prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        cur.execute(prefix + statement, params)
        rows = cur.fetchall()
        if engine.dialect.name == "sqlite":
            return "\n".join(str(r[3]) for r in rows)
        return "\n".join(str(r[0]) for r in rows)


def _indexes(plan: str) -> list[str]:
    found = re.findall(r"(?:INDEX|index|Index Scan using|Index Only Scan using|Bitmap Index "
                       r"Scan on) (\w+)", plan)
    return sorted(set(found))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--day", default="2020-03-30", help="planning and triage day (local)")
    ap.add_argument("--plans", action="store_true", help="print the full plans too")
    args = ap.parse_args(argv)
    engine = make_engine(args.db)
    pack = load_city_pack("los_angeles")
    day = date.fromisoformat(args.day)
    now = datetime.combine(day, time(15), tzinfo=UTC)
    window = queries.MapFilter(first_day=day - timedelta(days=29), last_day=day)
    week = queries.MapFilter(first_day=day - timedelta(days=6), last_day=day)

    def uow() -> UnitOfWork:
        return UnitOfWork(engine, actor="bench")

    def with_uow(fn: Callable[[UnitOfWork], object]) -> Callable[[], object]:
        def run() -> object:
            with uow() as u:
                return fn(u)
        return run

    reads: dict[str, Callable[[], object]] = {
        "planner candidates": with_uow(lambda u: planning.candidate_requests(u, pack, day)),
        "triage rows": with_uow(lambda u: triage.triage_frame(u, pack, triage.TriageFilter(),
                                                              now=now)),
        "triage counts": with_uow(lambda u: triage.triage_counts(
            u, pack, triage.TriageFilter(), now=now)),
        "triage overdue": with_uow(lambda u: triage.triage_frame(
            u, pack, triage.TriageFilter(sla="overdue"), now=now)),
        "location queue": with_uow(lambda u: (geocoding.needs_location(u),
                                              geocoding.needs_location_count(u))),
        "requests map (7 days)": with_uow(lambda u: queries.map_data(u, week, pack.timezone)),
        "requests map (box)": with_uow(lambda u: queries.map_data(
            u, week, pack.timezone, bbox=(-118.5, 33.95, -118.35, 34.05), zoom=14)),
        "KPIs (30 days)": with_uow(lambda u: analytics.kpis(u, pack, window)),
        "hot spots (30 days)": with_uow(lambda u: analytics.hot_spots(
            u, window.to_request_filter(pack.timezone), area_cells(pack.boundary, 8),
            resolution=8)),
        "repeat spots (30 days)": with_uow(lambda u: analytics.repeat_spots(
            u, window.to_request_filter(pack.timezone), pack.sweep_categories)),
        "monthly report figures": with_uow(lambda u: reports.monthly_report(
            u, pack, f"{day:%Y-%m}", Path(tempfile.mkdtemp()))),
        "event log (7 days)": with_uow(lambda u: audit.event_log(u, days=7)),
        "event log (one request)": with_uow(lambda u: audit.event_log(
            u, entity_type="request", entity_key="1")),
    }
    print(f"Query plans on `{engine.dialect.name}` ({args.db.split('@')[-1]}), day {day}\n")
    print("| Read | Statements | Indexes used | Full scans |")
    print("|---|---|---|---|")
    details = []
    for name, run in reads.items():
        statements = _capture(engine, run)
        used: set[str] = set()
        scans = 0
        for statement, params in statements:
            plan = _plan(engine, statement, params)
            used.update(_indexes(plan))
            scans += len(re.findall(FULL_SCAN, plan, re.M))
            details.append((name, statement, plan))
        print(f"| {name} | {len(statements)} | {', '.join(sorted(used)) or '-'} | {scans} |")
    if args.plans:
        for name, statement, plan in details:
            print(f"\n### {name}\n```sql\n{statement}\n```\n```\n{plan}\n```")
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
