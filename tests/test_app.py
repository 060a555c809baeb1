"""The dashboard, driven through Streamlit's AppTest on the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from signin import sign_in_at
from streamlit.testing.v1 import AppTest

from app_pages.common import PRINCIPAL_KEY
from dispatch.auth import Principal, Role
from dispatch.cli import main

SUPERVISOR = Principal("ana", Role.SUPERVISOR)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "import"


@pytest.fixture(scope="module")
def seeded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('app') / 'app.db'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(DATA / "myla311_2020_sample.csv"),
                 "--no-geocode", "--rejects", str(tmp_path_factory.mktemp("r") / "r.csv")]) == 0
    return url


def _app(url: str, monkeypatch: pytest.MonkeyPatch, principal: Principal | None = SUPERVISOR,
         ) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CURBSIDE_CITY", "los_angeles")
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    if principal is not None:
        sign_in_at(at, url, principal)
    return at


def test_requests_map_shows_the_requests(seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(seeded_url, monkeypatch).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    # the default filter shows the routable categories: 3 bulky, 3 graffiti, 4 dumping,
    # one of which has no coordinates
    assert metrics["Requests"] == "10"
    assert metrics["On the map"] == "9"
    assert metrics["Without location"] == "1"


def test_category_filter_changes_the_counts(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app(seeded_url, monkeypatch).run()
    at.sidebar.multiselect[0].set_value(["graffiti_removal"]).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Requests"] == "3"


def test_uninitialised_database_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app(f"sqlite:///{tmp_path / 'empty.db'}", monkeypatch, principal=None).run()
    assert any("make run" in e.value for e in at.error)


def test_sign_in_page_comes_first_and_signs_in(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CURBSIDE_PASSWORD", "a long password")
    assert main(["--db", seeded_url, "users", "create", "ann", "--role", "supervisor"]) == 0
    at = _app(seeded_url, monkeypatch, principal=None).run()
    assert at.title[0].value == "Sign in to Curbside"
    at.text_input[0].set_value("ann")
    at.text_input[1].set_value("wrong password")
    at.button[0].click().run()
    assert any("wrong username or password" in e.value for e in at.error)
    at.text_input[1].set_value("a long password")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state[PRINCIPAL_KEY] == Principal("ann", Role.SUPERVISOR)
    assert at.title[0].value == "Requests map"


def test_a_crew_member_does_not_get_supervisor_pages(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crew = Principal("joe", Role.CREW, "NC-bulky-1")
    at = _app(seeded_url, monkeypatch, principal=crew).run()
    assert at.title[0].value == "My route today"
    # the navigation holds no supervisor page, so no URL leads to one ...
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/plan.py")
    # ... and the page itself refuses a crew member even when run directly
    for page in ("plan.py", "needs_location.py", "requests_map.py", "intake.py", "triage.py",
                 "event_log.py",
                 "route_sheets.py", "hotspots.py", "kpis.py", "monthly_report.py"):
        direct = AppTest.from_file(str(ROOT / "app_pages" / page), default_timeout=60)
        sign_in_at(direct, seeded_url, crew)
        direct.run()
        assert any("not available to the crew role" in e.value for e in direct.error), page


def test_pasadena_runs_without_districts_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'pasadena.db'}"
    assert main(["--db", url, "--city", "pasadena", "init"]) == 0
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CURBSIDE_CITY", "pasadena")
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    sign_in_at(at, url, SUPERVISOR)
    at.run()
    assert not at.exception
    notes = [w.value for w in at.sidebar.warning]
    assert any("council districts are not loaded" in n for n in notes)
    assert any("No requests yet" in i.value for i in at.info)
    at.switch_page("app_pages/plan.py").run()
    assert not at.exception
    assert at.title[0].value == "Plan and assign"


def test_each_page_settles_the_heap_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a page's first run leaves alive is frozen once, out of the full collections."""
    import gc

    from app_pages import common

    monkeypatch.setattr(common, "_SETTLED", set())
    frozen = gc.get_freeze_count()
    try:
        common.settle_heap("plan")
        after_plan = gc.get_freeze_count()
        assert after_plan > frozen
        kept = [[i] for i in range(1000)]  # noqa: F841 (alive across the next calls)
        common.settle_heap("plan")
        assert gc.get_freeze_count() == after_plan  # settled already
        common.settle_heap("board")
        assert gc.get_freeze_count() >= after_plan + 1000
    finally:
        gc.unfreeze()
