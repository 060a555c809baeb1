"""Picking requests on the Triage map in Chromium (issue 13's walk).

Each pick used to redraw the whole map at the city's view: the supervisor lost the zoom,
and a second click on the same request, now inside a cluster, did not let it go. The
pick now swaps only the map's "Selected" layer; AppTest checks the map's arguments
(``tests/test_app_supervisor_pages.py``), this checks the frame in a browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from dispatch.model import RequestStatus
from dispatch.store import UnitOfWork, make_engine
from tests.e2e_helpers import dashboard, idle, shot
from tests.test_e2e_browser import _seed
from tests.test_e2e_pages import open_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-triage') / 'triage.db'}"
    with dashboard(url, _seed) as base:
        yield base, url


def _an_open_request(url: str) -> tuple[str, float, float]:
    """A located request open at the seed's replayed morning (its city id, lon, lat)."""
    with UnitOfWork(make_engine(url)) as uow:
        now = uow.now()
        rows = [r for r in uow.requests.query()
                if r.lon is not None and r.lat is not None and r.requested_at <= now
                and (r.closed_at is None or r.closed_at > now)
                and r.status != RequestStatus.CANCELLED.value]
    assert rows
    row = min(rows, key=lambda r: r.id)
    return row.external_id, float(row.lon), float(row.lat)


def test_a_pick_keeps_the_map_and_a_second_click_lets_it_go(
        browser: Any, served: tuple[str, str]) -> None:
    base, url = served
    rid, lon, lat = _an_open_request(url)
    page, watch = open_page(browser, base, "Triage")
    frame = page.locator('iframe[title*="folium"]').first
    inner = frame.content_frame
    inner.locator(".leaflet-container").wait_for()
    # zoomed in on the request, as a supervisor would before clicking it;
    # (lon, lat) -> (lat, lon) for Leaflet
    inner.locator("body").evaluate(
        f"() => {{ window.map.setView([{lat}, {lon}], 17, {{animate: false}});"
        " window.curbsideSameFrame = true; }")
    page.wait_for_timeout(300)

    def click_request(off: float = 0.0) -> None:
        inner.locator("body").evaluate(
            f"() => {{ window.map.fire('click', {{latlng: L.latLng({lat + off}, {lon})}}); }}")

    click_request()
    page.get_by_text(re.compile(r"^1 selected: ")).wait_for()
    idle(page)
    assert rid in page.get_by_text(re.compile(r"^1 selected: ")).inner_text()
    inner = page.locator('iframe[title*="folium"]').first.content_frame
    # the same frame, at the same zoom: only the layer of picks changed
    assert inner.locator("body").evaluate("() => window.curbsideSameFrame === true")
    assert inner.locator("body").evaluate("() => window.map.getZoom()") == 17
    shot(page, "triage-picked")
    click_request(0.000005)  # again, half a metre off, as a hand would
    page.get_by_text("Select requests in the table or on the map to act on them.").wait_for()
    idle(page)
    assert not page.get_by_text(re.compile(r"^1 selected: ")).count()
    page.context.close()
    assert not watch.errors, watch.errors
