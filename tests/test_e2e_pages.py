"""Every page as every role, in headless Chromium: no page error, no console error, no
exception element, and every map drawn.

AppTest runs no JavaScript, so a page can pass it and still break in a browser (issue
13: the Needs location map was 0 px tall with ``$ is not defined``). This suite opens
each page of each role's navigation on a worked day (a plan assigned for district 13 of
the replayed 2020-01-03), at a desk size and, for the crew, a phone size. It fails on:

- an uncaught page error, or a console error from the app's own origin (tiles and other
  outside hosts are unreachable offline, and the maps fall back to drawing without them);
- a Streamlit exception element;
- a map frame under 100 px tall, or one with nothing drawn on it.

A screenshot of every page goes to ``test-artifacts/e2e/pages-<role>-<page>.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from dispatch.citypack import load_city_pack
from dispatch.cli import main
from dispatch.services.requests import IntakeForm, create_request
from dispatch.store import UnitOfWork, make_engine
from tests.e2e_helpers import dashboard, hover_a_street, idle, shot, sign_in, streets_drawn

pytestmark = pytest.mark.browser
SAMPLE = Path(__file__).parent / "data" / "workflow" / "la_day_cd13_cd14.csv"
DESK = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}

#: Each role's pages, as the navigation names them (streamlit_app.PAGES).
READER_PAGES = ["Requests map", "Hot spots", "Service KPIs", "Monthly report"]
SUPERVISOR_PAGES = ["Requests map", "Intake", "Triage", "Needs location", "Plan and assign",
                    "Live board",
                    "Route sheets", "Event log", "My route today", "Hot spots",
                    "Service KPIs", "Monthly report"]
#: A page's heading where it differs from its navigation title.
HEADINGS = {"Monthly report": "Monthly activity report"}
#: Pages that must show at least one map on this worked day.
MAP_PAGES = {"Requests map", "Intake", "Needs location", "Plan and assign", "Live board",
             "My route today", "Hot spots"}
#: What a drawn Leaflet map holds: markers, clusters, vector paths or a canvas layer.
DRAWN = (".leaflet-marker-icon, .marker-cluster, path.leaflet-interactive, "
         ".leaflet-overlay-pane canvas, .leaflet-overlay-pane svg path")


def _seed(url: str) -> None:
    tmp = Path(url.removeprefix("sqlite:///")).parent
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(SAMPLE), "--rejects", str(tmp / "r.csv")]) == 0
    assert main(["--db", url, "clock", "set", "2020-01-03T07:00"]) == 0
    for name, role in (("adm", "admin"), ("sup", "supervisor"), ("boss", "manager")):
        assert main(["--db", url, "users", "create", name, "--role", role]) == 0
    assert main(["--db", url, "plan", "--date", "2020-01-03", "--district", "13",
                 "--time-limit", "2", "--assign"]) == 0
    with UnitOfWork(make_engine(url)) as uow:
        plan = uow.plans.for_date("los_angeles", date(2020, 1, 3))[0]
        crew = next(r.crew_name for r in plan.routes if r.stops)
    assert main(["--db", url, "users", "create", "joe", "--role", "crew", "--crew", crew]) == 0
    # a phoned-in request the reference places only by interpolation: Needs location lists it
    # (two: the click test places one, and Needs location still has one for later tests)
    for address in ("1046 W 37TH ST", "1058 W 37TH ST"):
        with UnitOfWork(make_engine(url), actor="test") as uow:
            create_request(uow, load_city_pack("los_angeles"), IntakeForm(
                category="bulky_items", address=address, zipcode="90007",
                lon=None, lat=None, geocode_precision="none", geocode_confidence=0.0))
    (Path(url.removeprefix("sqlite:///")).parent / "crew.txt").write_text(crew)


def _choose_first_crew(page: Any) -> None:
    """A supervisor on *My route today* picks a crew with a route."""
    box = page.get_by_test_id("stSelectbox").filter(has_text="Crew")
    box.click()
    page.get_by_role("option").first.click()


def _include_closed(page: Any) -> None:
    """The replayed requests are historic, so most are closed: show all demand (the
    filter is in the sidebar, folded away on a phone)."""
    folded = page.get_by_test_id("stSidebar").get_attribute("data-collapsed") != "false"
    if folded:
        _open_sidebar(page)
    page.get_by_test_id("stCheckbox").get_by_text("Include closed and fixed requests").click()
    if folded:
        idle(page)
        _close_sidebar(page)


#: What a user does on a page before its map has something to show.
PREPARE = {"Hot spots": _include_closed}
#: The same, for a supervisor or admin only (a crew member's crew is their own).
PREPARE_DESK = {"My route today": _choose_first_crew}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-pages') / 'pages.db'}"
    with dashboard(url, _seed) as served:
        yield served



class Watch:
    """Collect a page's uncaught errors and the console errors of the app's own origin."""

    def __init__(self, page: Any, base: str) -> None:
        self.host = urlparse(base).netloc
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", self._console)

    def _console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        if "Failed to load resource" in msg.text and self.host not in where:
            return  # an outside host (map tiles) is unreachable offline: expected
        self.errors.append(f"console error: {msg.text} ({where})")


def open_page(browser: Any, base: str, title: str, username: str = "sup",
              viewport: dict[str, int] = DESK) -> tuple[Any, Watch]:
    """Sign ``username`` in, open the page ``title`` from the sidebar; the page and its watch."""
    page = sign_in(browser, base, username, viewport)
    watch = Watch(page, base)
    page.get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title).wait_for()
    idle(page)
    return page, watch


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _check_maps(page: Any, title: str) -> int:
    """Assert every map frame on the page is tall enough and has something drawn."""
    frames = page.locator('iframe[title*="folium"]')
    n = frames.count()
    for i in range(n):
        frame = frames.nth(i)
        frame.scroll_into_view_if_needed()
        box = frame.bounding_box()
        assert box is not None and box["height"] >= 100, (
            f"{title}: map {i + 1} is {box and box['height']:.0f} px tall")
        inner = frame.content_frame
        inner.locator(".leaflet-container").wait_for(timeout=20_000)
        inner.locator(DRAWN).first.wait_for(state="attached", timeout=20_000)
    return n


def _open_sidebar(page: Any) -> None:
    """On a phone the sidebar (and the navigation in it) is folded away: unfold it."""
    if page.get_by_test_id("stSidebar").get_attribute("data-collapsed") == "false":
        return
    for test_id in ("stExpandSidebarButton", "stSidebarCollapsedControl"):
        control = page.get_by_test_id(test_id)
        if control.count():
            control.first.click()
            page.wait_for_timeout(400)
            return


def _close_sidebar(page: Any) -> None:
    """Fold the phone's sidebar back so that it does not cover the page."""
    if page.get_by_test_id("stSidebar").get_attribute("data-collapsed") != "false":
        return
    button = page.get_by_test_id("stSidebarCollapseButton")
    if button.count():
        button.locator("button").first.click() if button.locator("button").count() \
            else button.first.click()
        page.wait_for_timeout(400)


def _open_every_page(browser: Any, base: str, user: str, pages: list[str],
                     viewport: dict[str, int], label: str) -> None:
    page = sign_in(browser, base, user, viewport)
    watch = Watch(page, base)
    failures: list[str] = []
    for title in pages:
        watch.errors.clear()
        if len(pages) > 1:  # a role with one page has no navigation
            if viewport is PHONE:
                _open_sidebar(page)
            page.get_by_role("link", name=title).click()
            if viewport is PHONE:
                _close_sidebar(page)
        page.get_by_role("heading", name=HEADINGS.get(title, title)).first.wait_for()
        idle(page)
        prepare = PREPARE.get(title) or (PREPARE_DESK.get(title) if user != "joe" else None)
        if prepare is not None:
            prepare(page)
            idle(page)
        page.wait_for_timeout(1500)  # let map frames load their scripts
        try:
            maps = _check_maps(page, title)
            if title in MAP_PAGES:
                assert maps >= 1, f"{title}: no map shown"
        except AssertionError as err:
            failures.append(str(err))
        except Exception as err:  # a map that never drew (Playwright timeout)
            failures.append(f"{title}: map not drawn ({type(err).__name__})")
        exceptions = page.get_by_test_id("stException")
        if exceptions.count():
            failures.append(f"{title}: exception shown: {exceptions.first.inner_text()[:300]}")
        failures += [f"{title}: {e}" for e in watch.errors]
        shot(page, f"pages-{label}-{_slug(title)}")
    page.context.close()
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("user", "pages", "label"), [
    ("sup", SUPERVISOR_PAGES, "supervisor"),
    ("adm", SUPERVISOR_PAGES, "admin"),
    ("boss", READER_PAGES, "manager"),
])
def test_every_page_of_a_desk_role_works_in_chromium(
    browser: Any, base: str, user: str, pages: list[str], label: str
) -> None:
    _open_every_page(browser, base, user, pages, DESK, label)


@pytest.mark.parametrize(("viewport", "label"), [(DESK, "crew-desk"), (PHONE, "crew-phone")])
def test_the_crew_page_works_on_a_desk_and_a_phone(
    browser: Any, base: str, viewport: dict[str, int], label: str
) -> None:
    _open_every_page(browser, base, "joe", ["My route today"], viewport, label)


def test_the_watch_catches_a_page_error(browser: Any, base: str) -> None:
    """The check itself can fail: a script error on the app's page is reported."""
    page = sign_in(browser, base, "boss", DESK)
    watch = Watch(page, base)
    page.evaluate("setTimeout(() => { throw new Error('boom') }, 0)")
    page.wait_for_timeout(300)
    page.context.close()
    assert any("boom" in e for e in watch.errors)


def test_a_click_on_the_needs_location_map_places_the_request(
    browser: Any, base: str) -> None:
    """The reported case: the map was 0 px tall, so nothing could be placed by clicking."""
    page, watch = open_page(browser, base, "Needs location")
    frame = page.locator('iframe[title*="folium"]').first
    frame.scroll_into_view_if_needed()
    inner = frame.content_frame
    inner.locator(".leaflet-container").wait_for()
    # no tiles load here (no network): the city's own streets are drawn instead, named
    # on hover
    assert streets_drawn(inner) > 100
    name = hover_a_street(page, frame)
    inner.locator(".leaflet-tooltip", has_text=name).first.wait_for()
    box = inner.locator(".leaflet-container").bounding_box()
    assert box is not None
    # the candidate sits in the middle of the map it was fitted to: click just beside it
    inner.locator(".leaflet-container").click(
        position={"x": box["width"] / 2 + 12, "y": box["height"] / 2 + 12})
    page.get_by_text(re.compile(r"^Clicked 34\.\d+, -118\.\d+")).wait_for()
    idle(page)
    shot(page, "needs-location-pin-placed")
    page.get_by_role("button", name="Place the request here").click()
    page.get_by_text(re.compile(r"located \(map click\)")).wait_for()
    idle(page)
    shot(page, "needs-location-placed")
    page.context.close()
    assert not watch.errors, watch.errors


def test_choosing_a_route_shows_it_alone_on_the_plan_map(browser: Any, base: str) -> None:
    """Issue 13: the city plan's map was one blob; a route chosen in the list is drawn
    alone, its stops numbered, and the others left out."""
    page, watch = open_page(browser, base, "Plan and assign")

    def stops_drawn() -> int:
        inner = page.locator('iframe[title*="folium"]').first.content_frame
        inner.locator(".curbside-stop").first.wait_for(state="attached")
        page.wait_for_timeout(500)
        return int(inner.locator(".curbside-stop").count())

    everyone = stops_drawn()
    routes = page.locator('[data-testid="stDataFrame"]').first
    routes.click(position={"x": 18, "y": 52})  # the first row's tick box
    idle(page)
    page.get_by_text(re.compile(r"^\S+ · \d+ stops · load ")).wait_for()
    alone = stops_drawn()
    shot(page, "plan-one-route")
    page.context.close()
    assert 0 < alone < everyone
    assert not watch.errors, watch.errors


@pytest.mark.parametrize(("user", "pages", "label"), [
    ("sup", SUPERVISOR_PAGES, "supervisor-phone"),
    ("boss", READER_PAGES, "manager-phone"),
])
def test_every_page_works_on_a_phone_too(
    browser: Any, base: str, user: str, pages: list[str], label: str
) -> None:
    """The issue walks every role's day at 390x844 as well: the sidebar folds away, and
    each page is reached through it."""
    _open_every_page(browser, base, user, pages, PHONE, label)
