"""The real dashboard in headless Chromium: sign in, plan, move, assign, work a stop.

Drives ``streamlit run streamlit_app.py`` on localhost with Playwright and Debian's
``/usr/bin/chromium`` (never a downloaded browser). Screenshots of every step go to
``test-artifacts/e2e/``. Deselected where no Chromium is installed, unless
``CURBSIDE_REQUIRE_BROWSER=1`` (CI sets it and installs Chromium from apt).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.cli import main
from dispatch.store import UnitOfWork, make_engine
from tests.e2e_helpers import dashboard, idle, shot, sign_in

pytestmark = pytest.mark.browser
SAMPLE = Path(__file__).parent / "data" / "workflow" / "la_day_cd13_cd14.csv"


def _seed(url: str) -> None:
    """The two-district sample day, the replayed morning, a supervisor and a manager."""
    tmp = Path(url.removeprefix("sqlite:///")).parent
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(SAMPLE), "--rejects", str(tmp / "r.csv")]) == 0
    # the replayed morning, as `dispatch init --demo` sets it
    assert main(["--db", url, "clock", "set", "2020-01-03T07:00"]) == 0
    for name, role in (("sup", "supervisor"), ("boss", "manager")):
        assert main(["--db", url, "users", "create", name, "--role", role]) == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A seeded embedded database and the dashboard serving it on a free local port."""
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'e2e.db'}"
    with dashboard(url, _seed) as base:
        yield base, url



_shot, _idle = shot, idle


def _sign_in(browser: object, base: str, username: str, viewport: dict[str, int]) -> object:
    return sign_in(browser, base, username, viewport)


def test_supervisor_plans_moves_assigns_then_a_crew_works_a_stop(
    server: tuple[str, str], browser: object
) -> None:
    base, url = server
    page = _sign_in(browser, base, "sup", {"width": 1400, "height": 1000})
    _shot(page, "01-supervisor-signed-in")

    page.get_by_role("link", name="Plan and assign").click()
    page.get_by_role("heading", name="Plan and assign").wait_for()
    day = page.get_by_role("spinbutton", name="day, Service date")
    day.click()
    page.keyboard.type("03")
    page.keyboard.press("Tab")
    _idle(page)
    _shot(page, "02a-date-chosen")
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Council districts")
    for district in ("13", "14"):
        box.locator("input").click()
        page.keyboard.type(district)
        page.keyboard.press("Enter")
        _idle(page)
    page.keyboard.press("Escape")
    _shot(page, "02b-districts-chosen")
    page.get_by_role("button", name="Plan the day").click()
    page.get_by_text("Stops planned", exact=True).wait_for()
    _idle(page)
    _shot(page, "02-planned-two-districts")

    page.get_by_role("tab", name="Adjust and assign").click()
    page.get_by_role("button", name="Move stop").click()
    page.get_by_text(re.compile(r"^Move: ")).wait_for()
    _idle(page)
    _shot(page, "03-stop-moved")
    page.get_by_role("tab", name="Adjust and assign").click()
    page.get_by_role("button", name="Assign routes to crews").click()
    page.get_by_text("Assign: done", exact=True).wait_for()
    _idle(page)
    _shot(page, "04-assigned")

    with UnitOfWork(make_engine(url)) as uow:
        plan = uow.plans.for_date("los_angeles", __import__("datetime").date(2020, 1, 3))[0]
        assert plan.status == "assigned"
        crew = next(r.crew_name for r in plan.routes if r.stops)
        moved = [e for e in uow.events.for_entity("plan", plan.id) if e.action == "stop_moved"]
        assert moved and moved[0].actor == "supervisor:sup"
    assert main(["--db", url, "users", "create", "joe", "--role", "crew", "--crew", crew]) == 0

    phone = _sign_in(browser, base, "joe", {"width": 400, "height": 850})
    phone.get_by_role("heading", name="My route today").wait_for()
    _shot(phone, "05-crew-route")
    phone.get_by_role("button", name="Arrived").first.click()
    _idle(phone)
    phone.get_by_role("button", name="Done").first.click()
    phone.get_by_text(re.compile(r"^1 of \d+ stops done")).wait_for()
    _idle(phone)
    _shot(phone, "06-crew-completed-a-stop")
    # phones reload pages: the crew member stays signed in
    phone.reload()
    phone.get_by_text(re.compile(r"^1 of \d+ stops done")).wait_for()
    _idle(phone)
    _shot(phone, "06b-crew-after-reload")
    with UnitOfWork(make_engine(url)) as uow:
        done = [s for r in uow.plans.get(plan.id).routes  # type: ignore[union-attr]
                for s in r.stops if s.status == "done"]
        assert len(done) == 1
        assert uow.requests.get(done[0].request_id).status == "completed"  # type: ignore[union-attr]

    # the crew member types the supervisor's page into the address bar: still signed in
    # (the session cookie), and the page is not there for them
    phone.goto(f"{base}/plan")
    phone.get_by_text("Page not found").wait_for()
    _shot(phone, "07a-crew-typed-supervisor-url")
    phone.keyboard.press("Escape")
    phone.get_by_role("heading", name="My route today").wait_for()
    _idle(phone)
    _shot(phone, "07-crew-refused-supervisor-page")
    assert phone.get_by_role("heading", name="Plan and assign").count() == 0
    assert phone.get_by_role("button", name="Assign routes to crews").count() == 0


def test_manager_opens_the_hotspot_map(server: tuple[str, str], browser: object) -> None:
    base, _ = server
    page = _sign_in(browser, base, "boss", {"width": 1400, "height": 1000})
    page.get_by_role("heading", name="Requests map").wait_for()
    _idle(page)
    _shot(page, "08-manager-requests-map")
    page.get_by_role("link", name="Hot spots").click()
    page.get_by_role("heading", name="Hot spots").wait_for()
    _idle(page)
    # the demo requests are historic, so most are closed: show all demand
    page.get_by_test_id("stCheckbox").get_by_text("Include closed and fixed requests").click()
    _idle(page)
    page.locator("iframe").first.wait_for()
    page.wait_for_timeout(3000)
    _shot(page, "09-manager-hotspot-map")
    # a manager reads; the supervisor's pages are not offered
    assert page.get_by_role("link", name="Plan and assign").count() == 0
    assert page.get_by_role("link", name="Intake").count() == 0
