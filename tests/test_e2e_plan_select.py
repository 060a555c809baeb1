"""Choosing stops on the plan map in Chromium (issue 13): a click on a stop, a lasso
around several, then one move of all of them to another crew.

AppTest cannot click inside a map (it runs no JavaScript), so this is the test of the
map half; the pure half is in ``tests/test_map_select.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from dispatch.cli import main
from dispatch.store import UnitOfWork, make_engine
from tests.e2e_helpers import RUN_WATCH, dashboard, idle, runs, settled, shot, sign_in
from tests.test_e2e_browser import _seed as seed_sample_day
from tests.test_e2e_pages import DESK, PHONE, Watch, open_page

pytestmark = pytest.mark.browser


def _seed(url: str) -> None:
    """The two-district sample day and its replayed morning (as the browser walk seeds
    it), with a draft for districts 13 and 14."""
    seed_sample_day(url)
    assert main(["--db", url, "plan", "--date", "2020-01-03", "--district", "13",
                 "--district", "14", "--time-limit", "2"]) == 0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-select') / 'select.db'}"
    with dashboard(url, _seed) as base:
        yield base, url


def _crews_of(url: str) -> dict[int, str]:
    """``{request pk: crew}`` of every stop of the day's plan, as stored."""
    with UnitOfWork(make_engine(url)) as uow:
        plan = uow.plans.for_date("los_angeles", date(2020, 1, 3))[0]
        return {s.request_id: r.crew_name for r in plan.routes for s in r.stops}


def _first_route(browser: Any, base: str) -> tuple[Any, Watch, Any, Any]:
    """Sign in, open the plan and show the first route of the list alone on the map.

    Returns the page, its error watch, the map frame and its numbered stop markers.
    """
    page, watch = open_page(browser, base, "Plan and assign")
    # one route alone on the map: its stops are numbered markers
    page.locator('[data-testid="stDataFrame"]').first.click(position={"x": 18, "y": 52})
    idle(page)
    page.get_by_text(re.compile(r"^\S+ · \d+ stops · load ")).wait_for()
    frame = page.locator('iframe[title*="folium"]').first
    frame.scroll_into_view_if_needed()
    stops = frame.content_frame.locator(".curbside-stop")
    stops.first.wait_for()
    page.wait_for_timeout(500)
    return page, watch, frame, stops


def test_a_newly_drawn_map_costs_no_second_run(
        browser: Any, served: tuple[str, str]) -> None:
    """Each new map (opening the page, choosing a route) used to send streamlit-folium's
    first answer as soon as it was drawn (its click count: 0 in the browser, ``None``
    in Python), and Streamlit ran the map's part of the page once more for nothing."""
    base, _ = served
    page = sign_in(browser, base, "sup", DESK)
    watch = Watch(page, base)
    page.context.add_init_script(RUN_WATCH)
    page.reload()  # the start page again, now watched
    page.get_by_text("Signed in as sup").wait_for()
    settled(page, 1500)
    load, before = runs(page)
    page.get_by_role("link", name="Plan and assign").click()
    page.get_by_role("heading", name="Plan and assign").wait_for()
    page.locator('iframe[title*="folium"]').first.content_frame.locator(
        ".leaflet-marker-icon, path.leaflet-interactive").first.wait_for(state="attached")
    settled(page, 1500)
    assert runs(page)[0] == load
    opened = runs(page)[1]
    assert opened == before + 1, f"opening the page took {opened - before} runs"
    page.locator('[data-testid="stDataFrame"]').first.click(position={"x": 18, "y": 52})
    page.get_by_text(re.compile(r"^\S+ · \d+ stops · load ")).wait_for()
    page.locator('iframe[title*="folium"]').first.content_frame.locator(
        ".curbside-stop").first.wait_for()
    settled(page, 1500)
    assert runs(page) == (load, opened + 1), "choosing a route took more than one run"
    page.context.close()
    assert not watch.errors, watch.errors


def test_on_a_phone_a_route_chosen_below_the_map_is_zoomed_to_and_takes_clicks(
        browser: Any, served: tuple[str, str]) -> None:
    """On a 390 px phone the route list sits below the map: choosing a route drew the
    new map out of sight, its animated fit never ran, and it stayed at the whole city's
    zoom with the depot's marker over the stops, so a tap on a stop chose nothing."""
    base, _ = served
    page = sign_in(browser, base, "sup", PHONE)
    watch = Watch(page, base)
    page.goto(f"{base}/plan")
    page.get_by_role("heading", name="Plan and assign").wait_for()
    idle(page)
    inner = page.locator('iframe[title*="folium"]').first.content_frame
    inner.locator(".leaflet-marker-icon").first.wait_for(state="attached")
    plan_zoom = inner.locator("body").evaluate("() => window.map.getZoom()")
    rows = page.locator('[data-testid="stDataFrame"]').first
    rows.scroll_into_view_if_needed()
    rows.click(position={"x": 18, "y": 52})
    page.get_by_text(re.compile(r"^\S+ · \d+ stops · load ")).wait_for()
    idle(page)
    frame = page.locator('iframe[title*="folium"]').first
    frame.scroll_into_view_if_needed()
    stops = frame.content_frame.locator(".curbside-stop")
    stops.first.wait_for()
    zoom = frame.content_frame.locator("body").evaluate("() => window.map.getZoom()")
    assert zoom > plan_zoom, (plan_zoom, zoom)  # closer than the whole plan
    stops.first.click(timeout=10_000)
    page.get_by_text("1 stop chosen", exact=True).wait_for()
    shot(page, "plan-route-phone")
    page.context.close()
    # opened by its address, Streamlit's start first probes /plan/_stcore/health and
    # /plan/_stcore/host-config (its guess that the app lives under /plan): those two
    # 404s are Streamlit's start, not the page's
    assert not [e for e in watch.errors if "/plan/_stcore/" not in e], watch.errors


def test_an_edit_swaps_the_routes_inside_the_map_already_drawn(
        browser: Any, served: tuple[str, str]) -> None:
    """Issue 13: every edit redrew the whole map. Now the map frame stays open across an
    edit of the plan (only its routes layer is replaced when what it draws changed)."""
    base, _ = served
    page, watch, frame, stops = _first_route(browser, base)
    inner = frame.content_frame
    drawn = stops.count()
    inner.locator("body").evaluate("() => { window.curbsideSameFrame = true; }")
    # an edit that keeps every crew's stops: lock one (a new plan version)
    page.get_by_role("tab", name="Adjust and assign").click()
    idle(page)
    page.get_by_role("button", name="Lock stop to its crew").click()
    page.get_by_text(re.compile(r"^Lock: ")).wait_for()
    idle(page)
    page.wait_for_timeout(500)
    inner = page.locator('iframe[title*="folium"]').first.content_frame
    assert inner.locator("body").evaluate("() => window.curbsideSameFrame === true")
    assert inner.locator(".curbside-stop").count() == drawn
    page.context.close()
    assert not watch.errors, watch.errors


def test_stops_chosen_by_click_and_lasso_move_together(
        browser: Any, served: tuple[str, str]) -> None:
    base, url = served
    before = _crews_of(url)
    page, watch, frame, stops = _first_route(browser, base)
    inner = frame.content_frame
    drawn = stops.count()
    assert drawn >= 3

    # a click on a stop chooses it, and the map rings it
    stops.nth(0).click()
    page.get_by_text("1 stop chosen", exact=True).wait_for()
    idle(page)
    inner.locator(".curbside-chosen").first.wait_for(state="attached")
    assert inner.locator(".curbside-chosen").count() == 1
    # ... and a lasso around the middle of the map adds the stops inside it
    inner.locator(".curbside-lasso a").click()
    box = frame.bounding_box()
    assert box is not None
    x0, y0 = box["x"] + 30, box["y"] + 30
    x1, y1 = box["x"] + box["width"] - 30, box["y"] + box["height"] - 60
    middle = (y0 + y1) / 2
    # from the left edge's middle (the map's buttons sit top left, its credits along the
    # bottom), once round
    page.mouse.move(x0, middle)
    page.mouse.down()
    for x, y in [(x0, y1), (x1, y1), (x1, y0), (x0, y0), (x0, middle - 5)]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    chosen = page.get_by_text(re.compile(r"^\d+ stops chosen$"))
    chosen.wait_for()
    idle(page)
    count = int(chosen.inner_text().split()[0])
    page.wait_for_timeout(500)
    assert inner.locator(".curbside-chosen").count() == count
    # the lasso held the whole map: every stop of the route is chosen, the clicked one once
    assert count == drawn
    shot(page, "plan-stops-chosen-on-the-map")

    page.get_by_role("button", name=f"Move {count} stop(s)").click()
    flash = page.get_by_text(re.compile(r"^Move: routes of "))
    flash.wait_for()
    changed = flash.inner_text()
    idle(page)
    # the crew lost its every stop and left the route list: no other crew's route is
    # shown in its place (the list's selection was a row number)
    assert page.get_by_text(re.compile(r"^\S+ · \d+ stops · load ")).count() == 0
    shot(page, "plan-stops-moved")
    page.context.close()
    after = _crews_of(url)
    moved = [pk for pk in before if before[pk] != after.get(pk)]
    assert len(moved) == count
    targets = {after[pk] for pk in moved}
    assert len(targets) == 1  # one crew took them all, and the page said so
    assert targets.pop() in changed
    assert not watch.errors, watch.errors


def test_the_chosen_route_stays_chosen_when_another_crew_leaves_the_list(
        browser: Any, served: tuple[str, str]) -> None:
    """The route list's selection is a row number: a re-plan that took a crew off the
    list (a removal, a re-optimise) used to drop the supervisor's chosen route and
    redraw every route. It stays chosen, by crew."""
    base, _ = served
    page, watch, _frame, _stops = _first_route(browser, base)
    header = page.get_by_text(re.compile(r"^\S+ · \d+ stops · load "))
    chosen = header.inner_text().split(" · ")[0]
    page.get_by_role("tab", name="Adjust and assign").click()
    idle(page)
    page.get_by_label("Remove a crew (breakdown, sickness)").click()
    names = [t.strip() for t in page.get_by_role("option").all_inner_texts()]
    other = next(n for n in names if n != chosen)
    page.get_by_role("option", name=other, exact=True).click()
    idle(page)
    release = page.get_by_text(re.compile(r"^Release the \d+ lock"))
    if release.count():
        release.click()
        idle(page)
    page.get_by_role("button", name="Remove crew and re-plan its stops").click()
    page.get_by_text(re.compile(r"^Remove crew: ")).wait_for()
    idle(page)
    page.wait_for_timeout(300)
    assert header.count() == 1
    assert header.inner_text().split(" · ")[0] == chosen
    page.get_by_role("tab", name="Adjust and assign").click()
    idle(page)
    page.get_by_label("Remove a crew (breakdown, sickness)").click()
    assert other not in [t.strip() for t in page.get_by_role("option").all_inner_texts()]
    page.keyboard.press("Escape")
    shot(page, "plan-route-kept-after-a-removal")
    page.context.close()
    assert not watch.errors, watch.errors
