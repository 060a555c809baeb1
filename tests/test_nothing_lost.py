"""Nothing done is ever lost: one test per case the state issue reported (on 3559f86).

Each test replays what a supervisor, a crew or the daily import did, and checks that
the work survives: crew outcomes, manual fixes, schedules, what the source recorded.
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from conftest import _backends
from sqlalchemy import Connection, Engine

from dispatch.citypack import CityPack, load_city_pack
from dispatch.errors import ConcurrentEditError, InvalidTransitionError, ValidationError
from dispatch.importers.generic_csv import load_mapping
from dispatch.model import Channel
from dispatch.services import requests as rs
from dispatch.services import workflow as wf
from dispatch.services.imports import import_requests
from dispatch.services.planning import plan_for_day
from dispatch.store import UnitOfWork, make_engine, migrate
from geo.geocoding import GeocodeResult, Precision

pytestmark = pytest.mark.db
DAY = date(2020, 1, 3)
DATA = Path(__file__).parent / "data"
OPEN = DATA / "workflow" / "la_day_cd13_cd14_open.csv"
CLOSED = DATA / "workflow" / "la_day_cd13_cd14.csv"


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


def _plan(bind: Connection | Engine, la: CityPack, districts: list[str]) -> int:
    with UnitOfWork(bind, actor="supervisor:ana") as uow:
        return plan_for_day(uow, la, DAY, districts=districts, time_limit_s=1,
                            max_workers=1).plan_id


def _assign(bind: Connection | Engine, plan_id: int) -> list[str]:
    with UnitOfWork(bind, actor="supervisor:ana") as uow:
        outcome, _ = wf.preview_assignment(uow, plan_id)
    with UnitOfWork(bind, actor="supervisor:ana") as uow:
        return wf.assign_plan(uow, plan_id, token=outcome.token)


def _longest_route(bind: Connection | Engine, plan_id: int) -> tuple[str, list[int]]:
    with UnitOfWork(bind) as uow:
        row = uow.plans.get(plan_id)
        assert row is not None
        route = max(row.routes, key=lambda r: len(r.stops))
        return route.crew_name, [s.id for s in route.stops]


def _every_scheduled_request_is_on_one_assigned_route(bind: Connection | Engine) -> None:
    with UnitOfWork(bind) as uow:
        busy = [r for r in uow.requests.query()
                if r.status in ("scheduled", "in_progress")]
        for req in busy:
            active = [s for s in uow.plans.assigned_stops([req.id])
                      if s.status in ("pending", "arrived")]
            assert len(active) == 1, (req.external_id, req.status, len(active))


def _snapshot(bind: Connection | Engine) -> dict[int, tuple[object, ...]]:
    with UnitOfWork(bind) as uow:
        return {r.id: (r.status, r.closed_at, r.lon, r.lat, r.geocode_precision)
                for r in uow.requests.query()}


# --------------------------------------------------------------------------- case 1


def test_assigning_an_old_draft_never_wipes_a_started_route(
    db: Connection, la: CityPack
) -> None:
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        import_requests(uow, OPEN, la)
    old_draft = _plan(db, la, ["13"])
    city = _plan(db, la, ["13", "14"])
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        wf.assign_plan(uow, city)
    crew, stops = _longest_route(db, city)
    assert len(stops) >= 3
    with UnitOfWork(db, actor=f"crew:{crew}") as uow:
        wf.complete_stop(uow, stops[0], crew)
    with UnitOfWork(db, actor=f"crew:{crew}") as uow:
        wf.cannot_complete(uow, stops[1], crew, "not_out")
    # pressing "Assign" on the old draft no longer just does it ...
    with UnitOfWork(db, actor="supervisor:bob") as uow, pytest.raises(
            InvalidTransitionError, match="changes more than this draft"):
        wf.assign_plan(uow, old_draft)
    # ... the supervisor sees what would change, including the started route
    with UnitOfWork(db, actor="supervisor:bob") as uow:
        outcome, lines = wf.preview_assignment(uow, old_draft)
    assert outcome.superseded == [city]
    assert any(f"Route of {crew} already started (2 finished" in line for line in lines)
    with UnitOfWork(db, actor="supervisor:bob") as uow:
        wf.assign_plan(uow, old_draft, token=outcome.token)
    # the crew still has its route, with what it did
    with UnitOfWork(db, actor=f"crew:{crew}") as uow:
        view = wf.crew_route(uow, la.name, DAY, crew)
    assert view is not None and view.plan_id == old_draft
    by_id = {s.stop_id: s.status for s in view.stops}
    assert by_id[stops[0]] == "done" and by_id[stops[1]] == "cant_complete"
    _every_scheduled_request_is_on_one_assigned_route(db)
    with UnitOfWork(db) as uow:
        assert {p.id: p.status for p in uow.plans.for_date(la.name, DAY)} == {
            old_draft: "assigned", city: "superseded"}


def test_a_confirmed_preview_is_refused_once_the_day_changed(
    db: Connection, la: CityPack
) -> None:
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        import_requests(uow, OPEN, la)
    first = _plan(db, la, ["13", "14"])
    _assign(db, first)
    second = _plan(db, la, ["13", "14"])
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        outcome, _ = wf.preview_assignment(uow, second)
    crew, stops = _longest_route(db, first)
    with UnitOfWork(db, actor=f"crew:{crew}") as uow:
        wf.record_arrival(uow, stops[0], crew)
    with UnitOfWork(db, actor="supervisor:ana") as uow, pytest.raises(
            ConcurrentEditError, match="changed since the preview"):
        wf.assign_plan(uow, second, token=outcome.token)


# ------------------------------------------------------------------ cases 2, 3 and 4


def _import(bind: Connection | Engine, la: CityPack, path: Path, **kw: object) -> str:
    with UnitOfWork(bind, actor="cli:import") as uow:
        return import_requests(uow, path, la, **kw).line()  # type: ignore[arg-type]


class FakeGeocoder:
    """Places every address on one known point (a :class:`~geo.geocoding.Geocoder`)."""

    def lookup(self, query: object, zip_code: object = None) -> GeocodeResult:
        return GeocodeResult(str(query), -118.2900, 34.0800, Precision.POINT, 0.9,
                             str(query).upper())

    def reverse_lookup(self, lon: float, lat: float) -> GeocodeResult:
        return GeocodeResult(f"{lon}, {lat}", lon, lat, Precision.POINT, 0.9, "")


def _without_coordinates(src: Path, dst: Path) -> Path:
    rows = list(csv.DictReader(src.open(newline="")))
    with dst.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "latitude": "", "longitude": ""})
    return dst


def test_reimports_change_only_what_the_source_owns(
    db: Connection, la: CityPack, tmp_path: Path
) -> None:
    assert _import(db, la, OPEN) == "imported 30, updated 0, unchanged 0, rejected 0"
    plan = _plan(db, la, ["13", "14"])
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        wf.assign_plan(uow, plan)
    crew, stops = _longest_route(db, plan)
    with UnitOfWork(db, actor=f"crew:{crew}") as uow:
        wf.complete_stop(uow, stops[0], crew)
    with UnitOfWork(db, actor=f"crew:{crew}") as uow:
        wf.record_arrival(uow, stops[1], crew)
    with UnitOfWork(db) as uow:
        done_pk = uow.plans.stop(stops[0]).request_id  # type: ignore[union-attr]
        arrived_pk = uow.plans.stop(stops[1]).request_id  # type: ignore[union-attr]
        pending_pk = uow.plans.stop(stops[2]).request_id  # type: ignore[union-attr]
        crew_closed_at = uow.requests.get(done_pk).closed_at  # type: ignore[union-attr]
    # a supervisor fixes a position by hand
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        rs.fix_location(uow, la, pending_pk, -118.2800, 34.0700, how="map click")
    before = _snapshot(db)

    # the same file again: nothing changes
    assert _import(db, la, OPEN) == "imported 0, updated 0, unchanged 30, rejected 0"
    assert _snapshot(db) == before

    # the city's file of the evening: everything closed in the source
    line = _import(db, la, CLOSED)
    assert "disagree with local work" in line
    after = _snapshot(db)
    assert after[done_pk][:2] == ("completed", crew_closed_at)  # the crew's time stands
    assert after[arrived_pk][0] == "in_progress"  # a crew is on it: local state stands
    assert after[pending_pk][0] == "scheduled"
    assert after[pending_pk][2:] == (-118.28, 34.07, "manual")  # the manual fix stands
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        queue = {c["id"]: c for c in rs.source_conflicts(uow)}
        stored = uow.requests.get(arrived_pk)
        assert stored is not None and stored.source_status == "completed"
    assert {arrived_pk, pending_pk} <= set(queue)
    assert queue[arrived_pk]["local"] == "in_progress"
    assert queue[arrived_pk]["source"] == "completed"
    _every_scheduled_request_is_on_one_assigned_route(db)

    # a re-import without coordinates and without geocoding erases no position
    bare = _without_coordinates(CLOSED, tmp_path / "bare.csv")
    positions = {pk: v[2:4] for pk, v in _snapshot(db).items()}
    _import(db, la, bare)
    assert {pk: v[2:4] for pk, v in _snapshot(db).items()} == positions
    # ... and geocoding it does not move positions the source or a supervisor gave
    _import(db, la, bare, geocoder=FakeGeocoder())
    assert {pk: v[2:4] for pk, v in _snapshot(db).items()} == positions


def test_settling_a_conflict_takes_the_source_or_keeps_local(
    db: Connection, la: CityPack
) -> None:
    _import(db, la, OPEN)
    plan = _plan(db, la, ["13", "14"])
    _assign(db, plan)
    _import(db, la, CLOSED)
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        queue = rs.source_conflicts(uow)
    assert queue
    first, second = queue[0], queue[1]
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        assert rs.resolve_conflict(uow, first["id"], take_source=True) == "completed"
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        assert rs.resolve_conflict(uow, second["id"], take_source=False) == "scheduled"
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        left = {c["id"] for c in rs.source_conflicts(uow)}
        actions = [e.action for e in uow.events.for_entity("request", first["id"])]
    assert first["id"] not in left and second["id"] not in left
    assert "source_conflict" in actions and "conflict_settled" in actions
    _every_scheduled_request_is_on_one_assigned_route(db)


def test_assigning_a_replayed_day_keeps_what_the_source_recorded(
    db: Connection, la: CityPack
) -> None:
    """Case 4: requests closed in the source stay closed, with their close time."""
    _import(db, la, CLOSED)
    before = _snapshot(db)
    plan = _plan(db, la, ["13", "14"])
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        wf.assign_plan(uow, plan)  # nothing else is assigned: no preview needed
    crew, stops = _longest_route(db, plan)
    with UnitOfWork(db, actor=f"crew:{crew}") as uow:
        wf.complete_stop(uow, stops[0], crew)
    assert _snapshot(db) == before
    with UnitOfWork(db, actor=f"crew:{crew}") as uow:
        view = wf.crew_route(uow, la.name, DAY, crew)
    assert view is not None and view.stops[0].status == "done"


def test_demo_init_twice_and_an_assigned_plan_change_no_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cases 2 and 4, as the issue's check runs them, through the command line."""
    from dispatch.cli import main

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["--db", url, "init", "--demo"]) == 0
    engine = make_engine(url)
    before = _snapshot(engine)
    assert main(["--db", url, "init", "--demo"]) == 0
    assert _snapshot(engine) == before
    assert main(["--db", url, "plan", "--date", "2020-01-03", "--district", "13",
                 "--time-limit", "1"]) == 0
    with UnitOfWork(engine) as uow:
        plan_id = uow.plans.for_date("los_angeles", DAY)[0].id
    with UnitOfWork(engine, actor="supervisor:ana") as uow:
        wf.assign_plan(uow, plan_id)
    assert _snapshot(engine) == before  # the past stays the past
    crew, stops = _longest_route(engine, plan_id)
    with UnitOfWork(engine, actor=f"crew:{crew}") as uow:
        wf.complete_stop(uow, stops[0], crew)
    with UnitOfWork(engine, actor=f"crew:{crew}") as uow:
        wf.cannot_complete(uow, stops[1], crew, "blocked")
    capsys.readouterr()
    assert main(["--db", url, "init", "--demo"]) == 0
    assert "demo requests: imported 0, updated 0, unchanged 10000" in capsys.readouterr().out
    assert _snapshot(engine) == before
    with UnitOfWork(engine) as uow:
        outcomes = [uow.plans.stop(s).status for s in stops[:2]]  # type: ignore[union-attr]
    assert outcomes == ["done", "cant_complete"]
    out = tmp_path / "report"
    assert main(["--db", url, "report", "monthly", "--month", "2020-01", "--out",
                 str(out)]) == 0
    assert "97%" in (out / "report.html").read_text(encoding="utf-8")
    engine.dispose()


# --------------------------------------------------------------------------- case 5


def test_the_same_id_from_two_sources_gives_two_stops(
    db: Connection, la: CityPack, tmp_path: Path
) -> None:
    _import(db, la, OPEN)
    with UnitOfWork(db) as uow:
        myla = next(r for r in uow.requests.query() if r.category == "graffiti_removal"
                    and r.status == "new" and r.district == "13")
    web = tmp_path / "webform.csv"
    web.write_text("ticket,type,created,where,zip,y,x,notes,state\n"
                   f"{myla.external_id},Graffiti Removal,2020-01-02 09:15,"
                   '"1600 N VERMONT AVE",90027,34.0990,-118.2917,"tag",open\n',
                   encoding="utf-8")
    mapping = load_mapping(DATA / "import" / "webform_mapping.toml")
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        import_requests(uow, web, la, mapping=mapping)
    with UnitOfWork(db) as uow:
        twins = uow.requests.by_external_id(myla.external_id)
    assert sorted(r.source for r in twins) == ["myla311", "webform"]
    plan = _plan(db, la, ["13", "14"])
    with UnitOfWork(db) as uow:
        row = uow.plans.get(plan)
        assert row is not None
        stops = {s.request_id: s for r in row.routes for s in r.stops}
        unplanned = {u.request_id for u in row.unplanned}
    for twin in twins:
        assert twin.id in stops or twin.id in unplanned, twin.source
        if twin.id in stops:
            assert (stops[twin.id].lon, stops[twin.id].lat) == (twin.lon, twin.lat)


# --------------------------------------------------------------------------- case 9


def test_intake_ids_are_unique_by_construction(
    db: Connection, la: CityPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secrets

    monkeypatch.setattr(secrets, "token_hex", lambda n=3: "A" * (2 * n))  # no luck needed
    form = rs.IntakeForm(category="graffiti_removal", address="200 N SPRING ST",
                         lon=-118.2427, lat=34.0537, channel=Channel.PHONE)
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        pks = [rs.create_request(uow, la, form) for _ in range(5)]
    with UnitOfWork(db) as uow:
        ids = [uow.requests.get(pk).external_id for pk in pks]  # type: ignore[union-attr]
    assert len(set(ids)) == 5 and all(i.startswith("CS-") for i in ids)


def test_an_over_long_phone_number_is_one_sentence(db: Connection, la: CityPack) -> None:
    form = rs.IntakeForm(category="graffiti_removal", address="200 N SPRING ST",
                         lon=-118.2427, lat=34.0537, caller_phone="5" * 55)
    with UnitOfWork(db, actor="supervisor:ana") as uow, pytest.raises(
            ValidationError, match="caller phone has 55 characters; at most 50"):
        rs.create_request(uow, la, form)


# --------------------------------------------------------- cases 6 and 8 (two writers)


@pytest.fixture(params=_backends())
def file_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A real database shared by threads (the rollback fixture has one connection): a
    SQLite file, and a fresh PostgreSQL database where CI has one."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")
        migrate(engine)
        yield engine
        engine.dispose()
        return
    url = request.getfixturevalue("fresh_postgres")
    engine = make_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_sqlite_writers_wait_their_turn(
    file_engine: Engine, la: CityPack, tmp_path: Path
) -> None:
    """Case 6: crews tapping while intake saves, on the embedded default."""
    photos = tmp_path / "photos"
    from dispatch.services.setup import load_roster

    with UnitOfWork(file_engine, actor="cli") as uow:
        load_roster(uow, la)
    _import(file_engine, la, OPEN)
    plan = _plan(file_engine, la, ["13", "14"])
    with UnitOfWork(file_engine, actor="supervisor:ana") as uow:
        wf.assign_plan(uow, plan)
    with UnitOfWork(file_engine) as uow:
        row = uow.plans.get(plan)
        assert row is not None
        routes = [(r.crew_name, [s.id for s in r.stops]) for r in row.routes if r.stops]
    errors: list[BaseException] = []
    done: list[int] = []
    stop_at = time.monotonic() + 3.0

    photo = b"\x89PNG\r\n\x1a\n" + b"0" * 64

    def crew_taps(crew: str, stop_ids: list[int]) -> None:
        i = 0
        while time.monotonic() < stop_at:
            sid = stop_ids[i % len(stop_ids)]
            i += 1
            try:
                with UnitOfWork(file_engine, actor=f"crew:{crew}") as uow:
                    wf.attach_photo(uow, sid, crew, photo, photos)  # a read, then a write
                done.append(sid)
            except BaseException as err:
                errors.append(err)

    def intake() -> None:
        form = rs.IntakeForm(category="graffiti_removal", address="200 N SPRING ST",
                             lon=-118.2427, lat=34.0537)
        while time.monotonic() < stop_at:
            try:
                with UnitOfWork(file_engine, actor="supervisor:ana") as uow:
                    rs.create_request(uow, la, form)
            except BaseException as err:
                errors.append(err)

    threads = [threading.Thread(target=crew_taps, args=r) for r in routes[:4]]
    threads.append(threading.Thread(target=intake))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, [repr(e) for e in errors[:3]]
    assert done, "no crew tap went through"


def test_a_crew_closing_a_stop_during_a_replan_is_kept_and_the_replan_says_so(
    file_engine: Engine, la: CityPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 8: the re-plan's write fails with one sentence; the crew's tap stands."""
    from dispatch.services.setup import load_roster

    with UnitOfWork(file_engine, actor="cli") as uow:
        load_roster(uow, la)
    _import(file_engine, la, OPEN)
    plan = _plan(file_engine, la, ["13", "14"])
    with UnitOfWork(file_engine, actor="supervisor:ana") as uow:
        wf.assign_plan(uow, plan)
    crew, stops = _longest_route(file_engine, plan)
    solving, release = threading.Event(), threading.Event()
    real_replan = wf.replan

    def slow_replan(*args: object, **kwargs: object) -> object:
        solving.set()
        release.wait(timeout=30)
        return real_replan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(wf, "replan", slow_replan)
    outcome: list[BaseException | str] = []

    def supervisor() -> None:
        try:
            with UnitOfWork(file_engine, actor="supervisor:bob") as uow:
                wf.reoptimise(uow, plan, confirm=True)
            outcome.append("re-planned")
        except BaseException as err:
            outcome.append(err)

    t = threading.Thread(target=supervisor)
    t.start()
    assert solving.wait(timeout=30)
    with UnitOfWork(file_engine, actor=f"crew:{crew}") as uow:
        wf.complete_stop(uow, stops[0], crew)
    release.set()
    t.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], ConcurrentEditError), outcome
    assert "as done" in str(outcome[0]) and "nothing was changed" in str(outcome[0])
    with UnitOfWork(file_engine) as uow:
        assert uow.plans.stop(stops[0]).status == "done"  # type: ignore[union-attr]


def test_two_supervisors_moving_stops_at_once_lose_neither_move_to_a_traceback(
    file_engine: Engine, la: CityPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 8, parallel stop moves: while one supervisor's move is solving, another
    moves a different stop. The slow one is refused in one sentence (or applied on top);
    the quick one's move stands; nobody sees StaleDataError or IntegrityError."""
    from dispatch.services.setup import load_roster

    with UnitOfWork(file_engine, actor="cli") as uow:
        load_roster(uow, la)
    _import(file_engine, la, OPEN)
    plan = _plan(file_engine, la, ["13", "14"])
    with UnitOfWork(file_engine) as uow:
        row = uow.plans.get(plan)
        assert row is not None
        routes = {r.crew_name: [s.request_id for s in r.stops] for r in row.routes}
        skills = {r.crew_name: tuple(r.crew_settings.get("skills") or ()) for r in row.routes}
    source = max(routes, key=lambda c: len(routes[c]))
    targets = [c for c in routes if c != source and skills[c] == skills[source]]
    assert len(routes[source]) >= 2 and targets
    first, second = routes[source][0], routes[source][1]
    solving, release = threading.Event(), threading.Event()
    real_replan = wf.replan
    calls = {"n": 0}

    def slow_first_replan(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            solving.set()
            release.wait(timeout=30)
        return real_replan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(wf, "replan", slow_first_replan)
    outcome: list[BaseException | str] = []

    def slow_supervisor() -> None:
        try:
            with UnitOfWork(file_engine, actor="supervisor:ana") as uow:
                wf.move_stop(uow, plan, first, targets[0])
            outcome.append("moved")
        except BaseException as err:
            outcome.append(err)

    t = threading.Thread(target=slow_supervisor)
    t.start()
    assert solving.wait(timeout=30)
    errors: list[BaseException] = []
    for _ in range(2):  # a refusal while the slow write holds the lock: try again
        try:
            with UnitOfWork(file_engine, actor="supervisor:bob") as uow:
                wf.move_stop(uow, plan, second, targets[-1])
            break
        except ConcurrentEditError as err:
            errors.append(err)
    release.set()
    t.join(timeout=60)
    assert len(outcome) == 1
    assert outcome[0] == "moved" or isinstance(outcome[0], ConcurrentEditError), outcome
    with UnitOfWork(file_engine) as uow:
        row = uow.plans.get(plan)
        assert row is not None
        crew_of = {s.request_id: r.crew_name for r in row.routes for s in r.stops}
    assert crew_of[second] == targets[-1]  # bob's move stands
    if outcome[0] == "moved":
        assert crew_of[first] == targets[0]  # ana's too, on top of it
    else:
        assert crew_of[first] == source and "nothing was changed" in str(outcome[0])


def test_two_crew_taps_on_one_stop_are_one_done_and_one_sentence(
    file_engine: Engine, la: CityPack
) -> None:
    from dispatch.services.setup import load_roster

    with UnitOfWork(file_engine, actor="cli") as uow:
        load_roster(uow, la)
    _import(file_engine, la, OPEN)
    plan = _plan(file_engine, la, ["13"])
    with UnitOfWork(file_engine, actor="supervisor:ana") as uow:
        wf.assign_plan(uow, plan)
    crew, stops = _longest_route(file_engine, plan)
    results: list[BaseException | str] = []
    gate = threading.Barrier(2)

    def tap(who: str) -> None:
        gate.wait()
        try:
            with UnitOfWork(file_engine, actor=f"crew:{who}") as uow:
                wf.complete_stop(uow, stops[0], crew)
            results.append("done")
        except BaseException as err:
            results.append(err)

    threads = [threading.Thread(target=tap, args=(n,)) for n in ("ann", "ben")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results.count("done") == 1
    refused = [r for r in results if r != "done"]
    assert len(refused) == 1 and isinstance(refused[0], InvalidTransitionError)
    assert "already recorded as done by crew:" in str(refused[0])


def _race_assignments(engine: Engine, plans: list[int], tokens: list[str | None],
                      ) -> list[BaseException | str]:
    gate = threading.Barrier(len(plans))
    results: list[BaseException | str] = []

    def assign(plan: int, token: str | None) -> None:
        gate.wait()
        try:
            with UnitOfWork(engine, actor="supervisor:x") as uow:
                if token is None:
                    wf.assign_plan(uow, plan)
                else:
                    wf.assign_plan(uow, plan, token=token)
            results.append("assigned")
        except BaseException as err:
            results.append(err)

    threads = [threading.Thread(target=assign, args=pt)
               for pt in zip(plans, tokens, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.parametrize("previewed", [False, True])
def test_two_supervisors_assigning_the_same_day_at_once(
    file_engine: Engine, la: CityPack, previewed: bool
) -> None:
    """Case 7, on the embedded default: one assignment wins, the other is told."""
    from dispatch.services.setup import load_roster

    with UnitOfWork(file_engine, actor="cli") as uow:
        load_roster(uow, la)
    _import(file_engine, la, OPEN)
    plans = [_plan(file_engine, la, ["13", "14"]), _plan(file_engine, la, ["13"])]
    tokens: list[str | None] = [None, None]
    if previewed:  # both supervisors looked at the preview before either confirmed
        for i, plan in enumerate(plans):
            with UnitOfWork(file_engine, actor="supervisor:ana") as uow:
                tokens[i] = wf.preview_assignment(uow, plan)[0].token
    results = _race_assignments(file_engine, plans, tokens)
    assert results.count("assigned") == 1, results
    loser = next(r for r in results if r != "assigned")
    assert isinstance(loser, ConcurrentEditError | InvalidTransitionError), repr(loser)
    with UnitOfWork(file_engine) as uow:
        assert [p.status for p in uow.plans.for_date(la.name, DAY)].count("assigned") == 1


# ----------------------------------------------------- case 7 (two processes, PostgreSQL)


@pytest.fixture
def fresh_postgres() -> object:
    """A new, empty PostgreSQL database on the test server (dropped afterwards)."""
    import os
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from dispatch.store.db import normalise_url

    server = make_url(normalise_url(os.environ["DATABASE_URL"]))
    name = f"curbside_fresh_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _at_once(*commands: list[str]) -> list[tuple[int, str]]:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-m", "dispatch.cli", *cmd], cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for cmd in commands]
    return [(p.wait(timeout=300), p.stdout.read() if p.stdout else "") for p in procs]


@pytest.mark.postgres_only
def test_two_inits_and_two_imports_at_once_both_succeed(fresh_postgres: str) -> None:
    url = fresh_postgres
    for code, out in _at_once(["--db", url, "init"], ["--db", url, "init"]):
        assert code == 0 and "Traceback" not in out, out
    results = _at_once(*(["--db", url, "import", str(OPEN), "--rejects", "/dev/null"]
                         for _ in range(2)))
    for code, out in results:
        assert code == 0 and "Traceback" not in out, out
    lines = sorted(out.strip().splitlines()[-1] for _, out in results)
    assert lines == ["imported 0, updated 0, unchanged 30, rejected 0",
                     "imported 30, updated 0, unchanged 0, rejected 0"]


@pytest.mark.parametrize("many", [False, True])
def test_a_move_the_crew_has_no_room_for_changes_nothing_and_says_so(
    db: Connection, la: CityPack, many: bool
) -> None:
    """Case 9, a move into a full route: the stops the crew could not take went to the
    unplanned list, without their lock, and the page said only that the routes changed
    (seen moving 17 stops to a crew with room for 7, and 29 off an assigned route)."""
    _import(db, la, OPEN)
    plan = _plan(db, la, ["13", "14"])
    with UnitOfWork(db) as uow:
        row = uow.plans.get(plan)
        assert row is not None
        source = max(row.routes, key=lambda r: len(r.stops))
        moved = [s.request_id for s in source.stops][: 3 if many else 1]
        skills = source.crew_settings.get("skills")
        full = next(r for r in row.routes if r.crew_name != source.crew_name
                    and r.crew_settings.get("skills") == skills)
        from datetime import timedelta

        full.shift_end = full.start_at + timedelta(minutes=5)  # no time left for a stop
        before = {s.request_id: (r.crew_name, s.sequence) for r in row.routes for s in r.stops}
        unplanned = {u.request_id for u in row.unplanned}
        uow.commit()
        target, source_crew = full.crew_name, source.crew_name
    with UnitOfWork(db, actor="supervisor:ana") as uow, \
            pytest.raises(InvalidTransitionError) as err:
        if many:
            wf.move_stops(uow, plan, moved, target)
        else:
            wf.move_stop(uow, plan, moved[0], target)
    message = str(err.value)
    assert target in message and "nothing was changed" in message
    assert f"{len(moved)}" in message
    with UnitOfWork(db) as uow:
        row = uow.plans.get(plan)
        assert row is not None
        after = {s.request_id: (r.crew_name, s.sequence) for r in row.routes for s in r.stops}
        assert after == before
        assert {u.request_id for u in row.unplanned} == unplanned
        assert all(after[pk][0] == source_crew for pk in moved)
