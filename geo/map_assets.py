"""Serve the map's JavaScript and CSS from the app itself instead of public CDNs.

folium points every map at CDNs (jsDelivr, cdnjs, code.jquery.com). A service center
without internet would then get a blank frame. :func:`use_local_assets` rewrites the
links of every element of a map to the copies vendored under ``static/vendor`` (served by
Streamlit at ``/app/static/vendor``) and drops the libraries Curbside's maps do not use
(jQuery, Bootstrap, Font Awesome, awesome-markers).

Every map also loads ``static/vendor/curbside/leaflet-setup.js`` after Leaflet. folium's
popups still build their content with jQuery's ``$(html)[0]``: the file defines a ``$``
of a few lines that does just that, so popups work without shipping jQuery. It also
tells Leaflet where its marker images are, which it fails to guess inside the
streamlit-folium frame, and keeps the attribution short (no "Leaflet" prefix) and
focusable. ``static/vendor/curbside/map.css`` cuts the attribution to one line on a map
narrower than 500 px (a phone), opened in full by a hover or a tap.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import folium
from branca.element import Element

#: Where Streamlit serves ``static/vendor`` (``server.enableStaticServing``).
DEFAULT_BASE_URL = "/app/static/vendor"

#: folium's asset names and the vendored file each one is.
LOCAL_ASSETS: Mapping[str, str] = {
    "leaflet": "leaflet/leaflet.js",
    "leaflet_css": "leaflet/leaflet.css",
    "markerclusterjs": "leaflet.markercluster/leaflet.markercluster.js",
    "markerclustercss": "leaflet.markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "leaflet.markercluster/MarkerCluster.Default.css",
    "leaflet-heat.js": "leaflet.heat/leaflet-heat.js",
}


#: Loaded after Leaflet in every map: the ``$`` folium's popups use, Leaflet's image path,
#: a short attribution (no prefix) that a tap can open.
LEAFLET_SETUP = "curbside/leaflet-setup.js"

#: Loaded with every map: the attribution on one line on a narrow map (a phone).
MAP_CSS = "curbside/map.css"


def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in getattr(element, "_children", {}).values():
        yield from _walk(child)


def use_local_assets(m: folium.Map, base_url: str = DEFAULT_BASE_URL) -> folium.Map:
    """Point every script and stylesheet of ``m`` at the vendored copies.

    Parameters
    ----------
    m
        A finished map (call after adding every layer).
    base_url
        URL prefix of the vendored folder, without a trailing slash.

    Returns
    -------
    folium.Map
        ``m`` itself, changed in place.
    """
    base = base_url.rstrip("/")
    for element in _walk(m):
        for attr in ("default_js", "default_css"):
            links = getattr(element, attr, None)
            if not links:
                continue
            local = [(name, f"{base}/{LOCAL_ASSETS[name]}") for name, _ in links
                     if name in LOCAL_ASSETS]
            setattr(element, attr, local)
    m.default_js = [*m.default_js, ("curbside_setup", f"{base}/{LEAFLET_SETUP}")]
    m.default_css = [*m.default_css, ("curbside_css", f"{base}/{MAP_CSS}")]
    return m
