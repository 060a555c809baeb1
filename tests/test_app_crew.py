"""The crew page and the route-sheet page, driven through Streamlit's AppTest.

The pages are run directly (``app_pages/*.py``) with a signed-in principal put in the
session state; one test goes through the real entry point as a crew member. The
database is a temporary SQLite file with the CD 13/14 day of 2020-01-03 planned and
assigned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from signin import page_test, sign_in_at
from streamlit.testing.v1 import AppTest

from dispatch.auth import Principal, Role
from dispatch.citypack import load_city_pack
from dispatch.cli import main
from dispatch.errors import AccessDeniedError
from dispatch.model import RequestStatus
from dispatch.services import workflow as wf
from dispatch.services.planning import plan_for_day
from dispatch.services.routesheets import crew_map_geojson, crews_on_day, sheet_views
from dispatch.store import UnitOfWork, make_engine

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).parent / "data" / "workflow" / "la_day_cd13_cd14_open.csv"
DAY = date(2020, 1, 3)
SUPERVISOR = Principal("ana", Role.SUPERVISOR)
EVIL = '<script>alert("x")</script> **bold** <img src=x onerror=alert(1)>'

pytestmark = pytest.mark.db


@dataclass(frozen=True)
class Seeded:
    url: str
    plan_id: int
    routes: dict[str, list[str]]  # crew -> request ids in order


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    tmp = tmp_path_factory.mktemp("crew")
    url = f"sqlite:///{tmp / 'crew.db'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(SAMPLE), "--rejects", str(tmp / "r.csv")]) == 0
    la = load_city_pack("los_angeles")
    engine = make_engine(url)
    with UnitOfWork(engine, actor="supervisor:test") as uow:
        summary = plan_for_day(uow, la, DAY, districts=["13", "14"], time_limit_s=2,
                               max_workers=1)
    with UnitOfWork(engine, actor="supervisor:test") as uow:
        wf.assign_plan(uow, summary.plan_id)
    with UnitOfWork(engine) as uow:
        names = uow.requests.external_ids(int(p.request_id) for r in summary.plan.routes
                                          for p in r.stops)
    routes = {r.crew: [names[int(p.request_id)] for p in r.stops]
              for r in summary.plan.routes if r.stops}
    # resident text with markup on the first stop of the longest route
    longest = max(routes, key=lambda c: len(routes[c]))
    with UnitOfWork(engine) as uow:
        row = uow.requests.by_external_id(routes[longest][0])[0]
        assert row is not None
        row.description = EVIL
        uow.commit()
    engine.dispose()
    return Seeded(url, summary.plan_id, routes)


def _crew_member(crew: str) -> Principal:
    return Principal(f"crew-{crew.lower()}", Role.CREW, crew=crew)


def _page(name: str, seeded: Seeded, monkeypatch: pytest.MonkeyPatch,
          principal: Principal) -> AppTest:
    return page_test(name, seeded.url, monkeypatch, principal)


def _status(seeded: Seeded, request_id: str) -> str:
    engine = make_engine(seeded.url)
    try:
        with UnitOfWork(engine) as uow:
            row = uow.requests.by_external_id(request_id)[0]
            assert row is not None
            return str(row.status)
    finally:
        engine.dispose()


def _stop_status(seeded: Seeded, crew: str, request_id: str) -> str:
    engine = make_engine(seeded.url)
    try:
        with UnitOfWork(engine) as uow:
            view = wf.crew_route(uow, "los_angeles", DAY, crew)
            assert view is not None
            return next(s.status for s in view.stops if s.request_id == request_id)
    finally:
        engine.dispose()


def _progress(at: AppTest) -> str:
    return str(at.get("progress")[0].proto.text)


def _button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label)


def test_crew_marks_the_next_stop_arrived_then_done(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    crew = max(seeded.routes, key=lambda c: len(seeded.routes[c]))
    first, total = seeded.routes[crew][0], len(seeded.routes[crew])
    at = _page("crew.py", seeded, monkeypatch, _crew_member(crew)).run()
    assert not at.exception and not at.error
    assert at.date_input[0].value == DAY  # the newest day with an assigned plan
    # a crew member gets their own route: no crew to choose, no other crew named
    assert not [s for s in at.selectbox if s.label == "Crew"]
    page_text = " ".join(e.value for e in (*at.caption, *at.markdown)).replace("\\", "")
    assert crew in page_text
    assert not [c for c in seeded.routes if c != crew and c in page_text]
    assert _progress(at) == f"0 of {total} stops done · {total} to go"
    assert any(f"#1 of {total}" in c.value for c in at.caption)
    assert any(first in m.value.replace("\\", "") for m in at.markdown)
    # resident text is plain text, never markup
    assert [t.value for t in at.text] == [EVIL]
    assert not any("<script" in m.value or "<img" in m.value for m in at.markdown)

    _button(at, "Arrived").click().run()
    assert not at.exception and not at.error
    assert _status(seeded, first) == RequestStatus.IN_PROGRESS
    assert _stop_status(seeded, crew, first) == wf.STOP_ARRIVED
    assert [b.label for b in at.button if b.label in ("Arrived", "Done")] == ["Done"]

    _button(at, "Done").click().run()
    assert not at.exception and not at.error
    assert _status(seeded, first) == RequestStatus.COMPLETED
    assert _stop_status(seeded, crew, first) == wf.STOP_DONE
    assert _progress(at) == f"1 of {total} stops done · {total - 1} to go"
    assert any(f"#2 of {total}" in c.value for c in at.caption)
    assert any("Stop 1 done" in s.value for s in at.success)

    # the crew may take another open stop first
    third = seeded.routes[crew][2]
    pick = next(s for s in at.selectbox if s.label == "Do another stop first")
    pick.select_index(0).run()  # stop 2 is current, so the first other is stop 3
    assert not at.exception
    assert any(c.value.startswith(f"CHOSEN STOP · #3 of {total}") for c in at.caption)
    assert any(third in m.value.replace("\\", "") for m in at.markdown)


def test_crew_records_a_stop_it_cannot_complete(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    longest = max(seeded.routes, key=lambda c: len(seeded.routes[c]))
    crew = next(c for c in sorted(seeded.routes) if c != longest)
    first, total = seeded.routes[crew][0], len(seeded.routes[crew])
    # a supervisor chooses the crew and acts on its behalf
    at = _page("crew.py", seeded, monkeypatch, SUPERVISOR).run()
    crew_box = next(s for s in at.selectbox if s.label == "Crew")
    assert sorted(crew_box.options) == sorted(seeded.routes)
    crew_box.set_value(crew).run()
    _button(at, "Can't complete").click().run()
    assert not at.exception
    reason = next(s for s in at.selectbox if s.label == "Why not?")
    # no reason is chosen for the crew: a note typed without choosing one recorded the
    # first reason of the list ("Item not out"); confirming waits for a choice
    assert reason.value is None
    assert _button(at, "Confirm: can't complete").disabled
    reason.set_value("blocked").run()
    assert not _button(at, "Confirm: can't complete").disabled
    next(t for t in at.text_area if t.label == "Note (optional)").input("gate locked").run()
    assert _stop_status(seeded, crew, first) == wf.STOP_PENDING  # nothing before confirming
    _button(at, "Confirm: can't complete").click().run()
    assert not at.exception and not at.error
    assert _status(seeded, first) == RequestStatus.CLOSED_NOT_FIXED
    assert _stop_status(seeded, crew, first) == wf.STOP_CANT
    # could-not-complete is counted apart from done
    assert _progress(at) == (f"0 of {total} stops done · 1 could not be completed · "
                             f"{total - 1} to go")
    assert any("Blocked / no access" in m.value for m in at.markdown)
    # an accidental tap can be undone for a few minutes
    _button(at, "Undo: stop 1 could not complete").click().run()
    assert not at.exception and not at.error
    assert _stop_status(seeded, crew, first) == wf.STOP_PENDING
    assert _status(seeded, first) == RequestStatus.SCHEDULED
    assert _progress(at) == f"0 of {total} stops done · {total} to go"


def test_route_sheet_page_offers_the_sheet_and_exports(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("route_sheets.py", seeded, monkeypatch, SUPERVISOR).run()
    assert not at.exception and not at.error
    assert at.date_input[0].value == DAY
    crew = sorted(seeded.routes)[0]
    next(s for s in at.selectbox if s.label == "Crew").set_value(crew).run()
    assert not at.exception and not at.error
    downloads = [d for d in at.get("download_button")]
    assert [d.proto.label for d in downloads] == ["Route sheet (HTML)", "GPX", "CSV", "GeoJSON"]
    caption = " ".join(c.value for c in at.caption)
    assert f"1 crew page(s), {len(seeded.routes[crew])} stops" in caption


def test_route_sheets_are_not_for_crews(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    crew = sorted(seeded.routes)[0]
    at = _page("route_sheets.py", seeded, monkeypatch, _crew_member(crew)).run()
    assert any("not available" in e.value for e in at.error)
    assert not at.get("download_button")


def test_a_crew_member_reaches_only_their_own_route(seeded: Seeded) -> None:
    mine, other = sorted(seeded.routes)[:2]
    engine = make_engine(seeded.url)
    try:
        with UnitOfWork(engine, actor=_crew_member(mine)) as uow:
            assert crews_on_day(uow, "los_angeles", DAY) == [mine]
            feats = crew_map_geojson(uow, seeded.plan_id, mine)["features"]
            assert {f["properties"]["crew"] for f in feats} == {mine}
            with pytest.raises(AccessDeniedError):
                crew_map_geojson(uow, seeded.plan_id, other)
            with pytest.raises(AccessDeniedError):
                sheet_views(uow, seeded.plan_id)
    finally:
        engine.dispose()


def test_a_crew_member_lands_on_their_route_in_the_real_app(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    crew = sorted(seeded.routes)[-1]
    monkeypatch.setenv("DATABASE_URL", seeded.url)
    monkeypatch.setenv("CURBSIDE_CITY", "los_angeles")
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    sign_in_at(at, seeded.url, _crew_member(crew))
    at.run()
    assert not at.exception and not at.error
    assert at.title[0].value == "My route today"
    assert f"of {len(seeded.routes[crew])} stops done" in _progress(at)
