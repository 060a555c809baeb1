"""Bounded reads: the SQL filters pages and the planner use agree with the domain rules.

Each filter is checked against the plain Python statement of its rule on generated
rows (hypothesis), on SQLite and PostgreSQL alike; the triage, location-queue and
event-log reads are checked for their limits and their counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection

from dispatch.citypack import CityPack, load_city_pack
from dispatch.errors import ValidationError
from dispatch.model import CLOSED_STATUSES, is_routable
from dispatch.services.audit import event_log
from dispatch.services.geocoding import needs_location, needs_location_count
from dispatch.services.triage import TriageFilter, triage_counts, triage_frame
from dispatch.store import RequestFilter, UnitOfWork
from dispatch.store.models import EventRow, RequestRow

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
STATUSES = ("new", "triaged", "scheduled", "in_progress", "completed", "closed_not_fixed",
            "cancelled", "duplicate")
PRECISIONS = (None, "source", "point", "interpolated", "intersection", "manual", "street",
              "zip", "none")
CATEGORIES = ("graffiti_removal", "bulky_items", "illegal_dumping")

hours = st.integers(min_value=-400, max_value=400)
row_st = st.fixed_dictionaries({
    "requested_h": hours,
    "closed_h": st.none() | hours,
    "status": st.sampled_from(STATUSES),
    "precision": st.sampled_from(PRECISIONS),
    "confidence": st.none() | st.sampled_from([0.0, 0.3, 0.49, 0.5, 0.9, 1.0]),
    "located": st.booleans(),
    "category": st.sampled_from(CATEGORIES),
})
DB_SETTINGS = settings(max_examples=25, deadline=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


def _store(uow: UnitOfWork, rows: list[dict[str, object]]) -> list[RequestRow]:
    out = []
    for i, r in enumerate(rows):
        requested = T0 + timedelta(hours=int(r["requested_h"]))  # type: ignore[call-overload]
        closed = None if r["closed_h"] is None else requested + timedelta(
            hours=abs(int(r["closed_h"])))  # type: ignore[call-overload]
        row = RequestRow(
            source="test", external_id=f"T-{i}", service_code="x", category=r["category"],
            status=r["status"], requested_at=requested, closed_at=closed,
            lon=-118.3 if r["located"] else None, lat=34.05 if r["located"] else None,
            geocode_precision=r["precision"], geocode_confidence=r["confidence"])
        uow.session.add(row)
        out.append(row)
    uow.session.flush()
    return out


def _ids(uow: UnitOfWork, flt: RequestFilter) -> set[int]:
    return set(uow.stats.frame(flt, ["id"])["id"])


@pytest.mark.db
@DB_SETTINGS
@given(rows=st.lists(row_st, max_size=25), at_h=hours)
def test_open_at_is_reported_by_then_and_not_closed_by_then(
    db: Connection, rows: list[dict[str, object]], at_h: int
) -> None:
    at = T0 + timedelta(hours=at_h)
    closed = {s.value for s in CLOSED_STATUSES}
    nested = db.begin_nested()
    try:
        with UnitOfWork(db) as uow:
            stored = _store(uow, rows)
            expected = {r.id for r in stored if r.requested_at <= at and (
                (r.closed_at is not None and r.closed_at > at)
                or (r.closed_at is None and r.status not in closed))}
            assert _ids(uow, RequestFilter(open_at=at)) == expected
            counted = uow.stats.count_by(RequestFilter(open_at=at), ())
            assert int(counted["n"].sum()) == len(expected)
    finally:
        nested.rollback()


@pytest.mark.db
@DB_SETTINGS
@given(rows=st.lists(row_st, max_size=25))
def test_trusted_position_in_sql_is_the_domain_rule(
    db: Connection, rows: list[dict[str, object]]
) -> None:
    nested = db.begin_nested()
    try:
        with UnitOfWork(db) as uow:
            stored = _store(uow, rows)
            trusted = {r.id for r in stored if r.lon is not None
                       and r.geocode_precision is not None
                       and is_routable(r.geocode_precision, r.geocode_confidence)}
            assert _ids(uow, RequestFilter(trusted_position=True)) == trusted
            assert _ids(uow, RequestFilter(trusted_position=False)) == (
                {r.id for r in stored} - trusted)
    finally:
        nested.rollback()


@pytest.mark.db
@DB_SETTINGS
@given(rows=st.lists(row_st, max_size=25),
       windows=st.dictionaries(st.sampled_from(CATEGORIES),
                               st.tuples(st.none() | hours, st.none() | hours)))
def test_category_windows_keep_each_category_to_its_own_window(
    db: Connection, rows: list[dict[str, object]],
    windows: dict[str, tuple[int | None, int | None]]
) -> None:
    def at(h: int | None) -> datetime | None:
        return None if h is None else T0 + timedelta(hours=h)

    nested = db.begin_nested()
    try:
        with UnitOfWork(db) as uow:
            stored = _store(uow, rows)
            wins = {c: (at(a), at(b)) for c, (a, b) in windows.items()}
            expected = set()
            for r in stored:
                if r.category not in wins:
                    continue
                lo, hi = wins[r.category]
                if (lo is None or r.requested_at >= lo) and (hi is None or r.requested_at < hi):
                    expected.add(r.id)
            assert _ids(uow, RequestFilter(category_windows=wins)) == expected
    finally:
        nested.rollback()


@pytest.mark.db
def test_triage_reads_at_most_its_limit_and_counts_all(db: Connection, la: CityPack) -> None:
    now = T0 + timedelta(days=10)
    rows: list[dict[str, object]] = []
    for i in range(30):  # graffiti: SLA 24 h; ages 0..58 h, two hours apart
        rows.append({"requested_h": 240 - 2 * i, "closed_h": None, "status": "new",
                     "precision": "point", "confidence": 1.0, "located": i % 3 != 0,
                     "category": "graffiti_removal"})
    with UnitOfWork(db, actor="test") as uow:
        _store(uow, rows)
        full = triage_frame(uow, la, TriageFilter(), now=now, limit=10_000)
        mine = full[full["request_id"].str.startswith("T-")]
        assert len(mine) == 30
        shown = triage_frame(uow, la, TriageFilter(), now=now, limit=7)
        assert len(shown) == 7
        # oldest first: the first seven of the full read
        assert list(shown["id"]) == list(full["id"][:7])
        counts = triage_counts(uow, la, TriageFilter(), now=now)
        assert counts.total == len(full)
        assert counts.overdue == int((full["sla_left_h"] < 0).sum())
        assert counts.due_soon == int(full["sla_left_h"].between(0, 24).sum())
        assert counts.unlocated == int(full["lon"].isna().sum())
        # the SLA windows are SQL filters that agree with the computed SLA
        overdue = triage_frame(uow, la, TriageFilter(sla="overdue"), now=now, limit=10_000)
        assert set(overdue["id"]) == set(full.loc[full["sla_left_h"] < 0, "id"])
        soon = triage_frame(uow, la, TriageFilter(sla="due_24h"), now=now, limit=10_000)
        assert set(soon["id"]) == set(full.loc[full["sla_left_h"].between(0, 24), "id"])
        older = triage_frame(uow, la, TriageFilter(min_age_h=40), now=now, limit=10_000)
        assert set(older["id"]) == set(full.loc[full["age_h"] >= 40, "id"])
        assert counts.total > 7  # the page says "showing the oldest 7 of N"


@pytest.mark.db
def test_location_queue_is_limited_and_counted_in_sql(db: Connection) -> None:
    rows: list[dict[str, object]] = [
        {"requested_h": i, "closed_h": None, "status": "new", "precision": "zip",
         "confidence": 0.2, "located": True, "category": "bulky_items"} for i in range(12)]
    rows.append({"requested_h": 50, "closed_h": None, "status": "new", "precision": "point",
                 "confidence": 1.0, "located": True, "category": "bulky_items"})
    rows.append({"requested_h": 51, "closed_h": 1, "status": "completed", "precision": None,
                 "confidence": None, "located": False, "category": "bulky_items"})
    with UnitOfWork(db, actor="test") as uow:
        _store(uow, rows)
        waiting = needs_location_count(uow)
        queue = needs_location(uow, limit=5)
        assert len(queue) == 5 and waiting >= 12
        assert [r.requested_at for r in queue] == sorted(r.requested_at for r in queue)
        every = needs_location(uow, limit=10_000)
        assert len(every) == waiting
        assert "T-12" not in {r.external_id for r in every}  # a house: routable
        assert "T-13" not in {r.external_id for r in every}  # completed: not open


@pytest.mark.db
def test_event_log_reads_a_window_of_days(db: Connection) -> None:
    with UnitOfWork(db, actor="test") as uow:
        now = uow.now()
        for days_ago in (1, 5, 20, 200):
            uow.session.add(EventRow(at=now - timedelta(days=days_ago), actor="tester",
                                     entity_type="city", entity_id=f"w{days_ago}",
                                     action="noted", details={}))
        uow.commit()

    def seen(days: int | None) -> set[str]:
        with UnitOfWork(db, actor="test") as uow:
            frame = event_log(uow, actor="tester", days=days)
            return set(frame["entity_id"])

    assert seen(7) == {"w1", "w5"}
    assert seen(30) == {"w1", "w5", "w20"}
    assert seen(None) == {"w1", "w5", "w20", "w200"}
    with UnitOfWork(db, actor="test") as uow:
        assert len(event_log(uow, actor="tester", limit=2)) == 2
        with pytest.raises(ValidationError, match="at least 1 day"):
            event_log(uow, days=0)
