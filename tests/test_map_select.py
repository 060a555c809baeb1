"""Choosing stops on a map (issue 13): the pure half of the lasso and of a clicked stop."""

from __future__ import annotations

from typing import Any

import folium
import pytest

from geo.errors import GeoError
from geo.map_select import lasso_control, points_in_shape, tooltip_field

#: A square around (-118.25, 34.05), ``[lon, lat]`` as GeoJSON has it.
SQUARE = [[-118.26, 34.04], [-118.24, 34.04], [-118.24, 34.06], [-118.26, 34.06],
          [-118.26, 34.04]]
POINTS: dict[int, tuple[float | None, float | None]] = {
    1: (-118.25, 34.05),    # inside
    2: (-118.30, 34.05),    # west of it
    3: (-118.24, 34.05),    # on the east edge
    4: (None, None),        # no position
    5: (-118.255, 34.059),  # inside, near the corner
}


@pytest.mark.parametrize(("drawing", "expected"), [
    ({"type": "Feature", "properties": {}, "geometry": {"type": "Polygon",
                                                         "coordinates": [SQUARE]}},
     [1, 3, 5]),
    ({"type": "Polygon", "coordinates": [SQUARE]}, [1, 3, 5]),
    ({"type": "MultiPolygon", "coordinates": [[SQUARE], [[
        [-118.31, 34.04], [-118.29, 34.04], [-118.29, 34.06], [-118.31, 34.04]]]]},
     [1, 2, 3, 5]),
    # a lasso that crosses itself (a bow tie): the points in either loop
    ({"type": "Polygon", "coordinates": [[[-118.26, 34.04], [-118.24, 34.06],
                                          [-118.24, 34.04], [-118.26, 34.06],
                                          [-118.26, 34.04]]]}, [1, 3]),
    (None, []),
    ({}, []),
])
def test_points_in_a_drawn_shape(drawing: dict[str, Any] | None, expected: list[int]) -> None:
    assert points_in_shape(POINTS, drawing) == expected


@pytest.mark.parametrize(("drawing", "message"), [
    ({"type": "LineString", "coordinates": SQUARE}, "got 'LineString'"),
    ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}},
     "got 'Point'"),
    ({"type": "Polygon", "coordinates": "nonsense"}, "not valid GeoJSON"),
])
def test_a_drawing_that_is_no_area_is_refused(drawing: dict[str, Any], message: str) -> None:
    with pytest.raises(GeoError, match=message):
        points_in_shape(POINTS, drawing)


@pytest.mark.parametrize(("tooltip", "field", "expected"), [
    ("NC-bulky-1 #3\naddress: 100 MAIN ST, 90012\ncategory: Bulky items\n"
     "request id: 1-1524085081\narrival: 06:07", "request id", "1-1524085081"),
    ("NC-bulky-1 #3\naddress: 100 MAIN ST\narrival: 06:07", "request id", None),
    ("NC-bulky-1 #3\nrequest id:   \n", "request id", None),
    ("  request id: CS-20200103-7  ", "request id", "CS-20200103-7"),
    ("address: 1 A ST\naddress line: x", "address", "1 A ST"),
    (None, "request id", None),
    ("", "request id", None),
])
def test_a_clicked_stop_is_read_from_its_tooltip(tooltip: str | None, field: str,
                                                 expected: str | None) -> None:
    assert tooltip_field(tooltip, field) == expected


def test_the_lasso_fires_the_event_streamlit_folium_reports() -> None:
    m = lasso_control(folium.Map(location=[34.05, -118.25], zoom_start=12),
                      label="Lasso <x>", title='Say "hi"')
    html = m.get_root().render()
    assert "map.fire('draw:created'" in html
    assert "map.dragging.disable()" in html
    # the label is data, not code: embedded as escaped JSON, never as raw HTML
    assert "Lasso <x>" not in html
    assert "textContent = data.label" in html


def test_a_route_stop_tooltip_reads_back_its_request_id() -> None:
    """What the browser reports for a clicked stop (its tooltip as text) names the request."""
    import json
    import re

    from geo.maps import route_layer

    doc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [-118.25, 34.05]},
        "properties": {"kind": "stop", "crew": "NC-bulky-1", "sequence": 3,
                       "request_id": "1-1524085081", "address": "100 MAIN ST <A&B>",
                       "category": "bulky_items", "arrival": "06:07"}}]}
    m = folium.Map(location=[34.05, -118.25], zoom_start=12)
    route_layer(doc, category_labels={"bulky_items": "Bulky items"}).add_to(m)
    html = m.get_root().render()
    payload = json.loads(re.search(r'"stops":(\[\[.*?\]\])', html).group(1))  # type: ignore[union-attr]
    tip = payload[0][2]
    # the browser's textContent: tags dropped, entities decoded, line breaks kept
    text = re.sub(r"<[^>]+>", "", tip).replace("&lt;", "<").replace("&gt;", ">").replace(
        "&amp;", "&")
    assert tooltip_field(text, "request id") == "1-1524085081"
    assert tooltip_field(text, "address") == "100 MAIN ST <A&B>"
    assert tooltip_field(text, "category") == "Bulky items"


def test_the_route_layer_rings_the_chosen_stops() -> None:
    import json
    import re

    from geo.maps import route_layer

    def stop(rid: str, seq: int) -> dict[str, Any]:
        return {"type": "Feature",
                "geometry": {"type": "Point", "coordinates": [-118.25 + seq / 1000, 34.05]},
                "properties": {"kind": "stop", "crew": "A", "sequence": seq,
                               "request_id": rid}}

    doc = {"type": "FeatureCollection",
           "features": [stop("R1", 1), stop("R2", 2), stop("R3", 3)]}
    m = folium.Map(location=[34.05, -118.25], zoom_start=12)
    route_layer(doc, chosen=["R3", "R1", "not-on-the-map"]).add_to(m)
    html = m.get_root().render()
    chosen = json.loads(re.search(r'"chosen":(\[[^\]]*\])', html).group(1))  # type: ignore[union-attr]
    assert chosen == [0, 2]
    assert "curbside-chosen" in html
