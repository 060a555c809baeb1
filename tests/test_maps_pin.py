"""geo.maps.draggable_pin: the pin a user can drag, whose drop is reported as a click.

streamlit-folium reports the map's ``click`` event only (``last_clicked``); the pin fires
that event on its map when it is dropped. These tests check what the helper emits: the
marker, its place in Leaflet's (lat, lon) order, the map it fires on (folium's own name,
and ``map_div`` once streamlit-folium has renamed it) and, in Chromium, what the script
does when the pin is dropped. The browser test is tests/test_e2e_drag.py.
"""

from __future__ import annotations

import json
import math
from typing import Any

import folium
import pytest
from streamlit_folium import generate_leaflet_string

from geo.errors import GeoError
from geo.map_assets import use_local_assets
from geo.maps import PIN_CLASS, base_map, draggable_pin

LON, LAT = -118.28855, 34.01887


def _map() -> folium.Map:
    return base_map(center=(LON, LAT), tiles=None, offline_background=False, zoom_start=16)


def test_the_pin_is_a_draggable_marker_on_the_map_in_leaflet_order() -> None:
    m = _map()
    pin = draggable_pin(m, LON, LAT)
    page = m.get_root().render()
    assert pin._parent is m
    assert "draggable: true" in page
    assert f'"className":"{PIN_CLASS}"' in page
    # (lon, lat) in, [data.lat, data.lon] to Leaflet
    assert f'"lon":{LON},"lat":{LAT}' in page
    assert "L.marker([data.lat, data.lon]" in page
    # the drop is fired as a click on this very map
    assert "map.fire('click', {latlng: at" in page
    assert f"}})({m.get_name()}, " in page


def test_under_streamlit_folium_the_drop_fires_on_the_map_it_listens_to() -> None:
    """st_folium renames the map ``map_div`` and listens to its ``click`` event."""
    m = _map()
    draggable_pin(m, LON, LAT)
    script = generate_leaflet_string(use_local_assets(m))
    assert "var map_div = L.map(" in script
    assert "})(map_div, " in script
    assert "pin.on('dragend'" in script


def test_the_pin_keeps_its_icon_with_local_assets() -> None:
    m = _map()
    draggable_pin(m, LON, LAT)
    page = use_local_assets(m).get_root().render()
    assert "new L.Icon.Default({className: data.className})" in page
    assert "curbside/leaflet-setup.js" in page  # tells Leaflet where the images are


@pytest.mark.parametrize(("lon", "lat"), [
    (math.nan, LAT), (LON, math.inf), (-181.0, LAT), (LON, 90.5), (200.0, -95.0),
])
def test_an_unusable_position_is_refused_in_one_sentence(lon: float, lat: float) -> None:
    with pytest.raises(GeoError, match=r"^pin position .* expected finite \(lon, lat\)"):
        draggable_pin(_map(), lon, lat)


@pytest.mark.parametrize("title", [
    "</script><script>alert(1)</script>", "{{ 7 * 7 }} pwned", "it's \"here\" & <b>",
])
def test_the_title_is_data_inside_the_script(title: str) -> None:
    m = _map()
    draggable_pin(m, LON, LAT, title=title)
    page = m.get_root().render()
    assert title not in page
    assert "49 pwned" not in page  # branca's second Jinja pass did not run it
    assert page.count("</script>") == page.count("<script")


_HARNESS = """(() => {
var created = [], fired = [], handlers = {};
var L = {
    Icon: {Default: function (options) { this.options = options; }},
    marker: function (latlng, options) {
        var pin = {at: {lat: latlng[0], lng: latlng[1]}, start: latlng, options: options,
                   addTo: function (p) { this.parent = p; return this; },
                   on: function (type, fn) { handlers[type] = fn; return this; },
                   getLatLng: function () { return this.at; }};
        created.push(pin);
        return pin;
    }
};
var %(name)s = {
    name: "the map",
    fire: function (type, event) { fired.push([type, event]); return this; },
    latLngToLayerPoint: function (ll) { return {x: 1, y: 2}; },
    latLngToContainerPoint: function (ll) { return {x: 3, y: 4}; }
};
%(script)s
var pin = created[0];
pin.at = {lat: 34.02, lng: -118.27};  // the user drops it here
handlers.dragend({target: pin});
return JSON.stringify({
    n: created.length, start: pin.start, draggable: pin.options.draggable,
    title: pin.options.title, className: pin.options.icon.options.className,
    parent: pin.parent && pin.parent.name, fired: fired
});
})()"""


@pytest.mark.browser
def test_a_drop_fires_one_click_at_the_dropped_position(browser: Any) -> None:
    """The script itself, run in Chromium against a stand-in for Leaflet."""
    m = _map()
    pin = draggable_pin(m, LON, LAT, title="Your pin")
    script = pin._template.module.script(pin)
    page = browser.new_page()
    try:
        out = page.evaluate(_HARNESS % {"name": m.get_name(), "script": script})
    finally:
        page.close()
    rec = json.loads(out)
    assert rec["n"] == 1 and rec["parent"] == "the map"
    assert rec["start"] == [LAT, LON]  # Leaflet's (lat, lon)
    assert rec["draggable"] is True
    assert rec["title"] == "Your pin" and rec["className"] == PIN_CLASS
    assert rec["fired"] == [["click", {"latlng": {"lat": 34.02, "lng": -118.27},
                                       "layerPoint": {"x": 1, "y": 2},
                                       "containerPoint": {"x": 3, "y": 4}}]]
