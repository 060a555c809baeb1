"""The map's attribution on a phone, in Debian's Chromium (issue 13).

On a 390 px wide map the attribution wrapped over several lines and covered about 90 px
of the map's corner. A map of the dashboard (its Leaflet, ``leaflet-setup.js`` and
``map.css`` from ``static/vendor``) is opened as a file: the attribution is one line,
and a tap shows it in full.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from geo.map_assets import use_local_assets
from geo.maps import base_map
from tests.e2e_helpers import ROOT, shot

pytestmark = pytest.mark.browser

#: the credits the dashboard's maps carry offline: the streets layer's and the tiles'
CREDITS = ("Roads: © OpenStreetMap contributors (ODbL); Streets traced from City of Los "
           "Angeles's address reference | © OpenStreetMap contributors")


@pytest.mark.parametrize(("width", "most_px"), [(390, 24), (1200, 24)])
def test_the_attribution_is_one_line_on_a_phone_and_opens_on_a_tap(
    browser: Any, tmp_path: Path, width: int, most_px: int
) -> None:
    fmap = base_map((-118.3, 34.0, -118.2, 34.1), tiles="http://127.0.0.1:9/{z}/{x}/{y}.png",
                    attribution=CREDITS)
    page_file = tmp_path / "map.html"
    use_local_assets(fmap, base_url=(ROOT / "static" / "vendor").as_uri()).save(str(page_file))
    context = browser.new_context(viewport={"width": width, "height": 700},
                                  has_touch=width < 500)
    page = context.new_page()
    page.goto(page_file.as_uri())
    box = page.locator(".leaflet-control-attribution")
    box.wait_for()
    assert "Leaflet" not in box.inner_text()  # no prefix
    assert "Streets traced from City of Los Angeles" in (box.text_content() or "")
    closed = box.bounding_box()
    assert closed is not None and closed["height"] <= most_px
    shot(page, f"attribution-{width}")
    if width < 500:
        box.tap()  # a finger on a phone
        opened = box.bounding_box()
        assert opened is not None and opened["height"] > most_px  # in full
        shot(page, f"attribution-{width}-open")
    context.close()
