"""The supervisor's pin can be dragged, in headless Chromium (issue 13, "Needs location
that works": the map shows, and a click or a drag places the pin).

streamlit-folium reports clicks only, and AppTest runs no JavaScript: only a browser can
tell that a pin dropped somewhere else moves the page's "Clicked ..." line there and
that *Place the request here* then stores the new spot. Screenshots go to
``test-artifacts/e2e/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dispatch.citypack import load_city_pack
from dispatch.cli import main
from dispatch.services.requests import IntakeForm, create_request
from dispatch.store import UnitOfWork, make_engine
from tests.e2e_helpers import (
    dashboard,
    idle,
    locate_on_intake,
    open_page,
    shot,
    streets_drawn,
)

pytestmark = pytest.mark.browser
DESK = {"width": 1400, "height": 1000}
#: A phoned-in request the reference places only by interpolation: Needs location lists it.
ADDRESS = "1046 W 37TH ST"
CLICKED = re.compile(r"^Clicked (-?\d+\.\d+), (-?\d+\.\d+)")
#: How far the pin is dragged, in screen pixels (right, down).
DRAG_PX = (90, 60)


def _seed(url: str) -> None:
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "users", "create", "sup", "--role", "supervisor"]) == 0
    with UnitOfWork(make_engine(url), actor="test") as uow:
        create_request(uow, load_city_pack("los_angeles"), IntakeForm(
            category="bulky_items", address=ADDRESS, zipcode="90007",
            lon=None, lat=None, geocode_precision="none", geocode_confidence=0.0))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-drag') / 'drag.db'}"
    with dashboard(url, _seed) as base:
        yield base, url


def _centre(frame: Any) -> None:
    """Scroll the map frame to the middle of the window (the whole map in view)."""
    frame.evaluate("e => e.scrollIntoView({block: 'center'})")
    frame.page.wait_for_timeout(300)


def _settled_box(frame: Any) -> dict[str, float]:
    """The map's box on the screen, once the frame has stopped growing and moving."""
    _centre(frame)
    inner = frame.content_frame.locator(".leaflet-container")
    box = inner.bounding_box()
    for _ in range(40):
        frame.page.wait_for_timeout(250)
        now = inner.bounding_box()
        if now == box and now is not None and now["height"] >= 400:
            return dict(now)
        box = now
    raise AssertionError(f"the map frame never settled (last box {box})")


def _screen_point(frame: Any, lat_lon: tuple[float, float]) -> tuple[float, float]:
    """Where ``(lat, lon)`` is on the screen, asked of the map itself (``window.map``)."""
    box = _settled_box(frame)
    point = frame.content_frame.locator(".leaflet-container").evaluate(
        "(e, ll) => { const p = window.map.latLngToContainerPoint(ll); return [p.x, p.y]; }",
        list(lat_lon))
    return box["x"] + float(point[0]), box["y"] + float(point[1])


def _clicked_line(page: Any) -> tuple[float, float]:
    """The page's ``Clicked <lat>, <lon>`` line, as ``(lat, lon)``."""
    text = page.get_by_text(CLICKED).first.inner_text()
    found = CLICKED.match(text)
    assert found is not None, text
    return float(found.group(1)), float(found.group(2))


def _wait_for_change(page: Any, before: tuple[float, float], timeout_s: float = 20.0
                     ) -> tuple[float, float]:
    """Wait until the ``Clicked`` line shows another position than ``before``."""
    deadline = time.monotonic() + timeout_s
    now = before
    while time.monotonic() < deadline:
        idle(page)
        if page.get_by_text(CLICKED).count():
            now = _clicked_line(page)
            if now != before:
                return now
        page.wait_for_timeout(250)
    return now


def _stored(url: str) -> tuple[float | None, float | None, str | None]:
    """``(lon, lat, precision)`` of the seeded request, as the database holds it."""
    with UnitOfWork(make_engine(url)) as uow:
        row = next(r for r in uow.requests.query() if r.address == ADDRESS)
        return row.lon, row.lat, row.geocode_precision


def test_dragging_the_needs_location_pin_moves_it_and_places_the_request_there(
    browser: Any, served: tuple[str, str]
) -> None:
    base, url = served
    page = open_page(browser, base, "sup", "Needs location", DESK)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # the page says both ways of placing the pin
    page.get_by_text("Click the map to place your pin, or drag the pin to move it.").wait_for()
    frame = page.locator('iframe[title*="folium"]').first
    _centre(frame)
    inner = frame.content_frame
    container = inner.locator(".leaflet-container")
    container.wait_for()
    streets_drawn(inner)
    box = _settled_box(frame)
    # 1. a click beside the candidate (which sits in the middle) places the pin
    page.mouse.click(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2 + 40)
    page.get_by_text(CLICKED).wait_for()
    idle(page)
    page.wait_for_timeout(1000)  # the map is drawn again, with the pin
    first = _clicked_line(page)
    shot(page, "drag-pin-clicked")

    # 2. the pin is dragged about 110 px right and down: press on the pin itself (just
    #    above the spot it stands for, found through the map), move in steps, release
    x, y = _screen_point(frame, first)
    page.mouse.move(x, y - 6)
    page.mouse.down()
    page.mouse.move(x + DRAG_PX[0] / 2, y - 6 + DRAG_PX[1] / 2, steps=8)
    page.mouse.move(x + DRAG_PX[0], y - 6 + DRAG_PX[1], steps=8)
    page.mouse.up()
    second = _wait_for_change(page, first)
    shot(page, "drag-pin-dropped")
    assert second != first, f"the Clicked line stayed at {first} after the pin was dragged"
    # dragged right and down: east (a larger longitude) and south (a smaller latitude)
    assert second[1] > first[1] and second[0] < first[0], (first, second)

    # 3. the dropped spot is the one stored
    page.get_by_role("button", name="Place the request here").click()
    page.get_by_text(re.compile(r"located \(map click\)")).wait_for()
    idle(page)
    shot(page, "drag-pin-placed")
    lon, lat, precision = _stored(url)
    page.context.close()
    assert precision == "manual"
    assert lon is not None and lat is not None
    # the page shows 5 decimals: (lat, lon) on the page against (lon, lat) stored
    assert abs(lat - second[0]) < 1e-5 and abs(lon - second[1]) < 1e-5, (lon, lat, second)
    assert not errors, errors


PIN_LINE = re.compile(r"^Pin \((address|map click)\): lon (-?\d+\.\d+), lat (-?\d+\.\d+)")


def _pin_line(page: Any) -> tuple[str, float, float]:
    """Intake's ``Pin (<how>): lon <lon>, lat <lat>`` line, as ``(how, lon, lat)``."""
    found = PIN_LINE.match(page.get_by_text(PIN_LINE).first.inner_text())
    assert found is not None
    return found.group(1), float(found.group(2)), float(found.group(3))


def test_dragging_the_intake_pin_moves_it_like_a_click(
    browser: Any, served: tuple[str, str]
) -> None:
    """Intake draws the same pin: a drop there is a map click at the new spot."""
    base, _ = served
    page = open_page(browser, base, "sup", "Intake", DESK)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    locate_on_intake(page, "532 N VIRGIL AVE", "90004")
    page.wait_for_timeout(1000)
    how, lon, lat = _pin_line(page)
    frame = page.locator('iframe[title*="folium"]').first
    frame.content_frame.locator(".leaflet-container").wait_for()
    x, y = _screen_point(frame, (lat, lon))
    page.mouse.move(x, y - 6)
    page.mouse.down()
    page.mouse.move(x + DRAG_PX[0] / 2, y - 6 + DRAG_PX[1] / 2, steps=8)
    page.mouse.move(x + DRAG_PX[0], y - 6 + DRAG_PX[1], steps=8)
    page.mouse.up()
    page.get_by_text(re.compile(r"^Pin \(map click\)")).wait_for(timeout=20_000)
    idle(page)
    shot(page, "drag-intake-pin")
    how2, lon2, lat2 = _pin_line(page)
    page.context.close()
    assert (how, how2) == ("address", "map click")
    # dragged right and down: east and south of where Locate put it
    assert lon2 > lon and lat2 < lat, ((lon, lat), (lon2, lat2))
    assert not errors, errors
