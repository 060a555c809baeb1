"""Maps load their libraries from the app, not from CDNs."""

from __future__ import annotations

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

