"""The live board (issue 13): each crew's progress, where it last closed a stop, and the
work waiting, from the day's stops; the pure half first, then the service and the page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from signin import sign_in_at
from sqlalchemy import Connection
from streamlit.testing.v1 import AppTest

from dispatch.auth import Principal, Role
from dispatch.citypack import CityPack, load_city_pack
from dispatch.cli import main
from dispatch.errors import AccessDeniedError
from dispatch.services import workflow as wf
from dispatch.services.board import BoardStop, crew_progress, day_board
from dispatch.services.clock import set_clock
from dispatch.services.imports import import_requests
from dispatch.services.planning import PlanSummary, plan_for_day
from dispatch.services.requests import IntakeForm, create_request
from dispatch.store import UnitOfWork, make_engine

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2020, 1, 3)
SAMPLE = Path(__file__).parent / "data" / "workflow" / "la_day_cd13_cd14_open.csv"
T0 = datetime(2020, 1, 3, 16, 0, tzinfo=UTC)  # 08:00 in Los Angeles
ANA = Principal("ana", Role.SUPERVISOR)


def _stop(stop_id: int | None, status: str | None = "pending", *, at: int | None = None,
          eta: int | None = None, dep: int | None = None, route: int = 1,
          lon: float | None = None) -> BoardStop:
    """A stop; times in minutes after T0."""
    def t(m: int | None) -> datetime | None:
        return None if m is None else T0 + timedelta(minutes=m)

    return BoardStop(plan_id=1, route_id=route, crew=f"crew-{route}", district="13",
                     stop_id=stop_id, status=status, status_at=t(at), eta=t(eta),
                     departure=t(dep), lon=lon, lat=None if lon is None else 34.0)


@pytest.mark.parametrize(("stops", "now_min", "expect"), [
    # a route without stops: nothing to do, nothing late
    ([_stop(None, None)], 0, (0, 0, 0, None, None)),
    # nothing due yet, nothing closed: no verdict
    ([_stop(1, eta=30, dep=40)], 0, (0, 0, 1, None, None)),
    # the next stop was due 20 minutes ago: 20 min behind
    ([_stop(1, eta=10, dep=20)], 30, (0, 0, 1, 20 * 60, None)),
    # closed 15 minutes before its planned departure: 15 min ahead
    ([_stop(1, "done", at=5, eta=10, dep=20, lon=-118.3), _stop(2, eta=60, dep=70)], 6,
     (1, 0, 1, -15 * 60, -118.3)),
    # can't complete is counted apart from done, and closes the stop
    ([_stop(1, "done", at=5, eta=0, dep=5, lon=-118.3),
      _stop(2, "cant_complete", at=25, eta=15, dep=20, lon=-118.2)], 30,
     (1, 1, 0, 5 * 60, -118.2)),
    # an overdue next stop outweighs an early last one
    ([_stop(1, "done", at=5, eta=0, dep=10, lon=-118.3), _stop(2, eta=20, dep=30)], 50,
     (1, 0, 1, 30 * 60, -118.3)),
    # arrived is still remaining
    ([_stop(1, "arrived", at=12, eta=10, dep=20)], 12, (0, 0, 1, 2 * 60, None)),
])
def test_crew_progress(stops: list[BoardStop], now_min: int,
                       expect: tuple[int, int, int, int | None, float | None]) -> None:
    (row,) = crew_progress(stops, T0 + timedelta(minutes=now_min))
    assert (row.done, row.cant_complete, row.remaining, row.behind_s,
            row.last_closed_lon) == expect
    assert row.total == sum(s.stop_id is not None for s in stops)


def test_crew_progress_keeps_routes_apart_and_names_the_last_action() -> None:
    rows = crew_progress([_stop(1, "done", at=5, dep=5, route=2, lon=-118.1),
                          _stop(2, "arrived", at=9, route=2), _stop(3, route=1)],
                         T0 + timedelta(minutes=10))
    assert [r.crew for r in rows] == ["crew-1", "crew-2"]
    assert rows[1].last_action_at == T0 + timedelta(minutes=9)
    assert rows[0].last_action_at is None


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


def _morning_plan(db: Connection, la: CityPack) -> PlanSummary:
    """Import the district 13/14 sample, set the clock to 07:00 and plan district 13."""
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        import_requests(uow, SAMPLE, la)
    with UnitOfWork(db, actor=Principal("root", Role.ADMIN)) as uow:
        set_clock(uow, datetime(2020, 1, 3, 15, 0, tzinfo=UTC))  # 07:00 in LA
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        return plan_for_day(uow, la, DAY, districts=["13"], time_limit_s=2, max_workers=1)


@pytest.mark.db
def test_the_board_follows_a_crew_and_lists_new_work(db: Connection, la: CityPack) -> None:
    summary = _morning_plan(db, la)
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        wf.assign_plan(uow, summary.plan_id)
    with UnitOfWork(db, actor=ANA) as uow:
        before = day_board(uow, la, DAY)
    assert before.plan_ids == (summary.plan_id,)
    assert sum(c.total for c in before.crews) == sum(len(r.stops) for r in summary.plan.routes)
    assert all(c.done == 0 and c.last_closed_lon is None for c in before.crews)
    crew = next(c.crew for c in before.crews if c.total)
    with UnitOfWork(db, actor=f"crew:{crew}") as uow:
        view = wf.crew_route(uow, la.name, DAY, crew)
        assert view is not None and view.next_stop is not None
        first = view.next_stop
        wf.record_arrival(uow, first.stop_id, crew)
    with UnitOfWork(db, actor=f"crew:{crew}") as uow:
        wf.complete_stop(uow, first.stop_id, crew)
    assert first.lon is not None and first.lat is not None
    with UnitOfWork(db, actor=ANA) as uow:
        pk = create_request(uow, la, IntakeForm(
            category=first.category, address=first.address, zipcode="",
            lon=first.lon + 0.0005, lat=first.lat, geocode_precision="manual",
            geocode_confidence=1.0))
    with UnitOfWork(db, actor=ANA) as uow:
        after = day_board(uow, la, DAY)
    row = next(c for c in after.crews if c.crew == crew)
    assert (row.done, row.remaining) == (1, row.total - 1)
    assert (row.last_closed_lon, row.last_closed_lat) == (first.lon, first.lat)
    assert row.last_action_at is not None
    assert pk in [w.request_pk for w in after.new_work]
    # one click from a route: the new request goes on one
    with UnitOfWork(db, actor=ANA) as uow:
        change = wf.add_urgent_request(uow, la, summary.plan_id, pk, confirm=True)
    assert change.crews()
    with UnitOfWork(db, actor=ANA) as uow:
        again = day_board(uow, la, DAY)
    assert pk not in [w.request_pk for w in again.new_work]


@pytest.mark.db
@pytest.mark.parametrize("who", [Principal("joe", Role.CREW, "NC-bulky-1"),
                                 Principal("mia", Role.MANAGER),
                                 Principal("anonymous", Role.ANONYMOUS)])
def test_only_supervisors_watch_the_board(db: Connection, la: CityPack,
                                          who: Principal) -> None:
    with UnitOfWork(db, actor=who) as uow, pytest.raises(AccessDeniedError):
        day_board(uow, la, DAY)


def test_the_board_page_shows_crews_and_adds_new_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'board.db'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(SAMPLE), "--rejects", str(tmp_path / "r.csv")]) == 0
    assert main(["--db", url, "clock", "set", "2020-01-03T07:00"]) == 0
    assert main(["--db", url, "plan", "--date", "2020-01-03", "--district", "13",
                 "--time-limit", "2", "--assign"]) == 0
    la = load_city_pack("los_angeles")
    with UnitOfWork(make_engine(url), actor=ANA) as uow:
        near = next(s for r in uow.plans.for_date(la.name, DAY)[0].routes for s in r.stops)
        create_request(uow, la, IntakeForm(
            category=near.category, address="near the first stop", zipcode="",
            lon=(near.lon or 0) + 0.0005, lat=near.lat, geocode_precision="manual",
            geocode_confidence=1.0))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CURBSIDE_CITY", "los_angeles")
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app_pages" / "board.py"), default_timeout=60)
    sign_in_at(at, url, ANA)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Live board"
    crews = at.dataframe[0].value
    assert {"crew", "done", "can't complete", "remaining", "against plan",
            "last action"} <= set(crews.columns)
    assert len(crews) >= 1
    assert [m.value for m in at.metric][:3] == ["0", "0", str(int(crews["remaining"].sum()))]
    assert any("New work reported today (1)" in s.value for s in at.subheader)
    at.button(key="board_new_add").click().run()
    assert not at.exception
    assert any(" added: " in s.value for s in at.success)
    assert any("New work reported today (0)" in s.value for s in at.subheader)


def test_waiting_work_goes_to_the_plan_of_its_district() -> None:
    """With one assigned plan per district group, *Add to a route* picks the plan that
    covers the request's district (the newest plan was used whatever the district)."""
    from dispatch.services.board import Board, WaitingWork, plan_for

    board = Board(day=DAY, now=T0, plan_ids=(4, 7), crews=(), new_work=(), unplanned=(),
                  plan_districts={4: ("13",), 7: ("14",)})
    item = WaitingWork(1, "CS-1", "Bulky items", "1 MAIN ST", "reported 08:00",
                       district="13")
    assert plan_for(board, item) == 4
    assert plan_for(board, WaitingWork(2, "CS-2", "", "", "", district="14")) == 7
    # an unplanned stop goes back to its own plan
    assert plan_for(board, WaitingWork(3, "CS-3", "", "", "", district="14", plan_id=4)) == 4
    # no plan covers it: the day's newest plan is offered (the re-plan says if it cannot)
    assert plan_for(board, WaitingWork(4, "CS-4", "", "", "", district="9")) == 7
    whole = Board(day=DAY, now=T0, plan_ids=(2,), crews=(), new_work=(), unplanned=(),
                  plan_districts={2: ()})
    assert plan_for(whole, WaitingWork(5, "CS-5", "", "", "", district="9")) == 2


@pytest.mark.db
def test_urgent_candidates_are_the_newest_open_requests_off_the_plan(
        db: Connection, la: CityPack) -> None:
    """The plan page's urgent list: the newest few, counted in SQL, never a plan's stop."""
    from dispatch.errors import ValidationError
    from dispatch.model import is_routable
    from dispatch.services.planning import urgent_candidates
    from dispatch.store import RequestFilter

    summary = _morning_plan(db, la)
    with UnitOfWork(db, actor=ANA) as uow:
        on_plan = {s.request_id for r in uow.plans.get(summary.plan_id).routes
                   for s in r.stops}
        every = [r for r in uow.requests.query(RequestFilter(
            categories=la.routable_categories, open_at=uow.now(), located=True))
            if r.id not in on_plan and is_routable(r.geocode_precision, r.geocode_confidence)]
        every.sort(key=lambda r: (r.requested_at, r.id), reverse=True)
        got = urgent_candidates(uow, la, summary.plan_id, limit=3)
        whole = urgent_candidates(uow, la, summary.plan_id, limit=100_000)
        with pytest.raises(ValidationError, match="limit must be at least 1, got 0"):
            urgent_candidates(uow, la, summary.plan_id, limit=0)
    assert on_plan and len(every) > 3
    assert list(got.newest) == [r.id for r in every[:3]]
    assert got.total == whole.total == len(every) == len(whole.newest)
    assert not set(whole.newest) & on_plan
    first = every[0]
    assert got.newest[first.id].startswith(f"{first.external_id} · "
                                           f"{la.category_labels[first.category]} · ")


@pytest.mark.db
def test_the_preview_reads_the_same_facts_as_the_assignment(
        db: Connection, la: CityPack) -> None:
    """The assignment preview's light read gives the facts (and token) the ORM read does:
    every live route in order, idle crews' empty routes too, the stops' statuses."""
    from dispatch.services.workflow import _facts, _light_facts

    first = _morning_plan(db, la)
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        wf.assign_plan(uow, first.plan_id)
    crew = next(r.crew for r in first.plan.routes if r.stops)
    with UnitOfWork(db, actor=f"crew:{crew}") as uow:
        view = wf.crew_route(uow, la.name, DAY, crew)
        assert view is not None and view.next_stop is not None
        wf.record_arrival(uow, view.next_stop.stop_id, crew)
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        second = plan_for_day(uow, la, DAY, districts=["13"], time_limit_s=1, max_workers=1)
    with UnitOfWork(db, actor=ANA) as uow:
        rows = [uow.plans.get(first.plan_id), uow.plans.get(second.plan_id)]
        light = _light_facts(uow, rows)
        assert light == [_facts(r) for r in rows]
        assert any(not r.stops for r in light[0].routes)
        assert any(s.status.value == "arrived" for r in light[0].routes for s in r.stops)
        outcome, _ = wf.preview_assignment(uow, second.plan_id)
    with UnitOfWork(db, actor=ANA) as uow:
        wf.assign_plan(uow, second.plan_id, token=outcome.token)


@pytest.mark.db
def test_a_day_planned_after_its_shifts_began_starts_the_crews_now(db: Connection,
                                                                   la: CityPack) -> None:
    """Planned at 07:00, routes used to start at the 06:00 shift start, so the board
    showed every crew an hour behind before anyone had done anything."""
    summary = _morning_plan(db, la)
    # the store's clock started at 07:00 runs on: the crews start at the next 5 minutes
    late = summary.late_start
    assert late is not None
    assert datetime(2020, 1, 3, 7, 0, tzinfo=la.timezone) <= late <= datetime(
        2020, 1, 3, 7, 5, tzinfo=la.timezone)
    assert f"planned after the shifts began: crews start at {late:%H:%M}" in summary.lines()
    used = [r for r in summary.plan.routes if r.stops]
    assert used and all(r.start >= late for r in used)
    assert all(p.arrival >= late for r in used for p in r.stops)
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        wf.assign_plan(uow, summary.plan_id)
    with UnitOfWork(db, actor=ANA) as uow:
        board = day_board(uow, la, DAY)
    # nobody is behind a plan made a moment ago (``None``: nothing due yet)
    assert all(c.behind_s is None or c.behind_s <= 0 for c in board.crews), [
        (c.crew, c.behind_s) for c in board.crews]
