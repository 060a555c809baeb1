"""Maps load their libraries from the app, not from CDNs."""

from __future__ import annotations

import re
from pathlib import Path

import folium
from folium.plugins import FastMarkerCluster

from geo.map_assets import LOCAL_ASSETS, use_local_assets

ROOT = Path(__file__).resolve().parents[1]


def test_every_vendored_asset_exists() -> None:
    for rel in LOCAL_ASSETS.values():
        assert (ROOT / "static" / "vendor" / rel).is_file(), rel


def test_rendered_map_names_no_cdn() -> None:
    m = folium.Map(location=[34.05, -118.25], tiles=None)
    FastMarkerCluster([[34.05, -118.25]]).add_to(m)
    html = use_local_assets(m).get_root().render()
    for host in ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "code.jquery.com",
                 "netdna.bootstrapcdn.com"):
        assert host not in html
    assert "/app/static/vendor/leaflet/leaflet.js" in html
    assert "/app/static/vendor/leaflet.markercluster/leaflet.markercluster.js" in html


def test_untouched_map_uses_cdns() -> None:
    """The rewrite is what removes the CDNs (the check above can fail)."""
    html = folium.Map(location=[34.05, -118.25], tiles=None).get_root().render()
    assert "cdn.jsdelivr.net" in html


def test_a_popup_gets_a_dollar_without_jquery() -> None:
    """folium's popups call ``$(html)[0]``; without jQuery the page threw
    ``$ is not defined`` and the Needs location map stayed 0 px tall (issue 13)."""
    m = folium.Map(location=[34.05, -118.25], tiles=None)
    folium.Marker([34.05, -118.25], popup=folium.Popup("1. point")).add_to(m)
    html = use_local_assets(m).get_root().render()
    assert "code.jquery.com" not in html
    leaflet = html.find('src="/app/static/vendor/leaflet/leaflet.js"')
    defined = html.find('src="/app/static/vendor/curbside/leaflet-setup.js"')
    used = html.find("$(`")
    assert used > 0 and 0 < leaflet < defined < used
    setup = (ROOT / "static" / "vendor" / "curbside" / "leaflet-setup.js").read_text()
    assert "window.$ = function" in setup and "L.Icon.Default.imagePath" in setup



# --------------------------------------------------------------------------- attribution

def _rules(css: str) -> dict[str, dict[str, str]]:
    """``{selector: {property: value}}`` of the rules inside the narrow-map media query."""
    narrow = re.search(r"@media \(max-width: (\d+)px\) \{(.*)\}\s*$", css, flags=re.S)
    assert narrow is not None and int(narrow.group(1)) <= 500
    out: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", narrow.group(2)):
        props = dict(re.findall(r"([\w-]+)\s*:\s*([^;]+);", body))
        for selector in selectors.split(","):
            out[selector.strip()] = props
    return out


def test_a_narrow_map_cuts_the_attribution_to_one_line_and_opens_it_on_a_tap() -> None:
    """Issue 13: the attribution covered about 90 px of a map on a 390 px phone."""
    m = folium.Map(location=[34.05, -118.25], tiles=None)
    html = use_local_assets(m).get_root().render()
    assert html.find("/app/static/vendor/leaflet/leaflet.css") < html.find(
        "/app/static/vendor/curbside/map.css")
    rules = _rules((ROOT / "static" / "vendor" / "curbside" / "map.css").read_text())
    box = ".leaflet-container .leaflet-control-attribution"
    assert rules[box]["white-space"] == "nowrap" and rules[box]["overflow"] == "hidden"
    assert rules[box]["text-overflow"] == "ellipsis" and "max-width" in rules[box]
    for state in (":hover", ":focus", ":focus-within"):  # a mouse, a tap, the keyboard
        assert rules[box + state]["white-space"] == "normal"
        assert rules[box + state]["overflow"] == "visible"
    setup = (ROOT / "static" / "vendor" / "curbside" / "leaflet-setup.js").read_text()
    assert "L.Control.Attribution.prototype.options.prefix = false" in setup
    assert "box.tabIndex = 0" in setup  # a tap focuses it, and focus opens it
