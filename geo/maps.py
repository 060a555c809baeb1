r"""Map building for Curbside: districts, service requests and crew routes on a folium map.

Pure shaping only: this module builds :class:`folium.Map` objects and their layers from
data frames and GeoJSON; it performs no I/O, and imports neither streamlit nor
:mod:`dispatch`.

Scale
    Requests are not turned into one folium element each. Every category becomes one
    :class:`folium.FeatureGroup` holding a :class:`folium.plugins.FastMarkerCluster`
    whose points travel as one compact JSON array (``[lat, lon, id, field, ...]``);
    a small JavaScript callback builds a coloured circle marker per row in the browser
    and its popup only when it is opened. 10,000 Los Angeles requests make a page of about 1 MB.
    Long free text is what does not scale: popup values are cut to ``max_text_chars``
    (120 by default), and even so 10,000 descriptions of 120 characters dense with
    quotes and ampersands (each escaped twice: HTML entity, then ``\u0026``) make
    about 3 MB; show such text in the request's own view instead (docs/benchmarks.md).

Safety
    Every text that comes from residents or data files (descriptions, addresses,
    category and district names, crew names, reasons) goes through :func:`_text`:
    :func:`html.escape` plus ``{``/``}`` as ``&#123;``/``&#125;``, and is then embedded
    in the page as JSON in which ``<``, ``>``, ``&``, the JavaScript line separators and
    any ``{`` that starts ``{{``, ``{%`` or ``{#`` are written as ``\uXXXX`` escapes, so
    neither ``</script>`` nor a quote nor a template-literal ``${...}`` can leave the
    data. The brace rule matters on the server: branca compiles every rendered
    ``<script>`` fragment again as a Jinja template, so ``{{ ... }}`` in a layer name or
    a popup would otherwise be *executed* when the page is rendered (in folium 0.20 a
    layer named ``{{ cycler.__init__.__globals__.os.getpid() }}`` shows the server's
    process id). folium's own :class:`folium.Tooltip` and :class:`folium.Popup` put
    text in JavaScript template literals without escaping backticks, so they are never
    used with data here.

Coordinates
    Code uses ``lon, lat``; Leaflet wants ``[lat, lon]``. Every conversion to Leaflet
    order is commented ``# (lon, lat) -> (lat, lon) for Leaflet``.

Offline
    :func:`base_map` gives the map container a plain light background and keeps tiles
    as an optional base layer, so districts, points and routes stay readable when tiles
    cannot be fetched. Leaflet's own JavaScript and CSS still come from folium's CDN
    links; :func:`geo.map_assets.use_local_assets` points a built map at vendored copies.
"""

from __future__ import annotations

import copy
import html
import json
import math
import re
import zlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.plugins import FastMarkerCluster
from folium.template import Template

from geo.errors import GeoError

__all__ = [
    "CREW_PALETTE",
    "DEFAULT_CATEGORY_COLOUR",
    "OFFLINE_BACKGROUND",
    "UNCATEGORISED",
    "UNPLANNED_COLOUR",
    "CategoryLayer",
    "RouteLayer",
    "base_map",
    "category_colours",
    "crew_colours",
    "district_layer",
    "draggable_pin",
    "legend",
    "map_payload_bytes",
    "requests_layer",
    "requests_map",
    "route_layer",
]

#: Qualitative palette for crews: Tableau 10 without its grey (grey means "unplanned"),
#: then Dark2 for larger fleets. Colour-blind friendlier than folium's defaults.
CREW_PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
)
#: Colour of stops the planner could not place.
UNPLANNED_COLOUR = "#808080"
#: Colour of categories with no entry in the colour mapping.
DEFAULT_CATEGORY_COLOUR = "#555555"
#: Background of the map container when tiles are off or cannot be fetched.
OFFLINE_BACKGROUND = "#eceae6"

#: Category shown for requests whose category is missing or empty.
UNCATEGORISED = "uncategorised"

REQUIRED_REQUEST_COLUMNS: tuple[str, ...] = ("request_id", "category", "lon", "lat")

# A CSS colour we are willing to put in a style attribute: #rgb, #rgba, #rrggbb,
# #rrggbbaa or a plain named colour. Anything else could carry markup or script.
_COLOUR_RE = re.compile(r"^(#[0-9a-fA-F]{3,4}|#[0-9a-fA-F]{6}|#[0-9a-fA-F]{8}|[a-zA-Z]{3,20})$")
# Decimal places kept for coordinates sent to the browser: 1e-5 degree is about 1.1 m.
_COORD_DECIMALS = 5
# What _escape does, in order ("&" first), for the vectorised _text_column.
_ENTITIES: tuple[tuple[str, str], ...] = (
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ('"', "&quot;"),
    ("'", "&#x27;"),
    ("{", "&#123;"),
    ("}", "&#125;"),
)
# A "{" that would open Jinja syntax ({{, {%, {#).
_JINJA_START_RE = re.compile(r"\{(?=[{%#])")
# Wrapped around embedded data, inside JavaScript comments: branca compiles each
# rendered script again as a Jinja template, and a raw block is both inert and about
# twice as fast to lex as plain text; where no second pass happens (streamlit-folium
# assembles scripts itself) the markers are mere comments.
_JINJA_RAW = ("{% raw %}", "{% endraw %}")
# Smallest extent base_map fits to, in degrees (about 1 km of latitude).
_MIN_SPAN_DEG = 0.01
# Degrees of latitude per metre, for turning a metric simplification tolerance into degrees.
_DEG_PER_M = 1.0 / 111_320.0


#: ``(min_lon, min_lat, max_lon, max_lat)``, e.g. a GeoDataFrame's ``total_bounds``.
Bounds = Sequence[float] | npt.NDArray[np.floating[Any]]


# --------------------------------------------------------------------------- helpers


def _js_json(obj: Any) -> str:
    r"""Serialise ``obj`` as JSON that is safe inside an HTML ``<script>`` element.

    Parameters
    ----------
    obj
        JSON-serialisable value (no NaN or infinities).

    Returns
    -------
    str
        Compact JSON in which ``<``, ``>``, ``&``, U+2028, U+2029 and every ``{``
        followed by ``{``, ``%`` or ``#`` are ``\uXXXX`` escapes, so the text can
        neither close the script element, nor break a JavaScript string, nor be read
        as Jinja syntax by branca.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    # branca re-reads rendered scripts as Jinja templates: no "{{", "{%" or "{#" may
    # survive. Compact JSON never has them outside strings (a structural "{" is
    # followed by '"' or '}'), so every match is inside a string and may be escaped.
    return _JINJA_START_RE.sub(r"\\u007b", text)


def _escape(text: str) -> str:
    """HTML-escape ``text`` (quotes too) and write braces as ``&#123;``/``&#125;``."""
    return html.escape(text, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def _plain(value: object) -> str:
    """Return ``value`` as plain text: ``''`` when missing, integral floats without ``.0``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        if float(value).is_integer():
            value = int(value)
    return str(value)


def _clip(text: str, max_chars: int | None) -> str:
    """Cut ``text`` to ``max_chars`` characters, the last one an ellipsis, if longer."""
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[: max_chars - 1] + "…"


def _text(value: object, max_chars: int | None = None) -> str:
    """Return ``value`` as HTML-escaped, Jinja-inert text; missing values become ``''``.

    Parameters
    ----------
    value
        Any scalar from a data frame or GeoJSON properties. Integral floats print
        without ``.0`` (``91406.0`` -> ``91406``).
    max_chars
        Cut longer text to this many characters (the last an ellipsis) before
        escaping, so an entity is never cut; ``None`` keeps it whole.

    Returns
    -------
    str
        :func:`html.escape` of the text (quotes included) with ``{`` and ``}`` as
        ``&#123;`` and ``&#125;``, or ``''`` for None/NaN/NA/NaT.
    """
    return _escape(_clip(_plain(value), max_chars))


def _text_column(values: pd.Series, max_chars: int | None = None) -> list[str]:
    """:func:`_text` of every value of a column, vectorised for text columns.

    Parameters
    ----------
    values
        A data frame column.
    max_chars
        See :func:`_text`.

    Returns
    -------
    list[str]
        Escaped text per row, ``''`` where the value is missing.
    """
    is_text = pd.api.types.is_string_dtype(values.dtype) and values.dtype != object
    if values.dtype == object:
        is_text = all(
            isinstance(v, str)
            or v is None
            or v is pd.NA
            or (isinstance(v, float) and math.isnan(v))
            for v in values.tolist()
        )
    if not is_text:
        return [_text(v, max_chars) for v in values.tolist()]
    text = values.astype("string")
    if max_chars is not None:
        long = text.str.len() > max_chars
        if long.any():
            text = text.where(~long, text.str.slice(0, max_chars - 1) + "…")
    for raw, entity in _ENTITIES:
        text = text.str.replace(raw, entity, regex=False)
    return [str(v) for v in text.fillna("").tolist()]


def _check_colour(colour: str, what: str) -> str:
    """Return ``colour`` if it is a plain CSS colour, else raise :class:`GeoError`.

    Parameters
    ----------
    colour
        Candidate colour, e.g. ``#1f77b4`` or ``teal``.
    what
        What the colour is for, used in the error message.

    Returns
    -------
    str
        The colour, unchanged.

    Raises
    ------
    GeoError
        If the colour is not ``#rgb``, ``#rgba``, ``#rrggbb``, ``#rrggbbaa`` or a name.
    """
    if not isinstance(colour, str) or not _COLOUR_RE.match(colour):
        raise GeoError(
            f"colour {colour!r} for {what} is not a CSS colour; expected '#rrggbb', "
            "'#rgb' or a colour name such as 'teal'"
        )
    return colour


def _stable_index(name: str, n: int) -> int:
    """Return a process-independent index in ``range(n)`` for ``name`` (CRC-32 based)."""
    return zlib.crc32(name.encode("utf-8")) % n


def _leaflet_bounds(bounds: Bounds) -> list[list[float]]:
    """Turn ``(min_lon, min_lat, max_lon, max_lat)`` into Leaflet ``[[s, w], [n, e]]``."""
    min_lon, min_lat, max_lon, max_lat = (float(b) for b in bounds)
    if not all(math.isfinite(b) for b in (min_lon, min_lat, max_lon, max_lat)):
        raise GeoError(
            f"map bounds {tuple(bounds)!r} are not finite; expected "
            "(min_lon, min_lat, max_lon, max_lat) in degrees"
        )
    if min_lon > max_lon or min_lat > max_lat:
        raise GeoError(
            f"map bounds {tuple(bounds)!r} are inverted; expected "
            "(min_lon, min_lat, max_lon, max_lat) with min <= max"
        )
    # a single point (or a line) would zoom in all the way: pad to about 1 km
    if max_lon - min_lon < _MIN_SPAN_DEG:
        min_lon, max_lon = min_lon - _MIN_SPAN_DEG / 2, max_lon + _MIN_SPAN_DEG / 2
    if max_lat - min_lat < _MIN_SPAN_DEG:
        min_lat, max_lat = min_lat - _MIN_SPAN_DEG / 2, max_lat + _MIN_SPAN_DEG / 2
    # (lon, lat) -> (lat, lon) for Leaflet
    return [[min_lat, min_lon], [max_lat, max_lon]]


class _Script(MacroElement):
    """A piece of JavaScript run with its parent layer or map as ``parent``.

    The code is ours (never data); data comes in as ``payload`` and is embedded with
    :func:`_js_json`.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function(parent, data) {
            {{ this.code }}
        })({{ this._parent.get_name() }}, /*{{ this.raw_open }}*/{{ this.payload_json
        }}/*{{ this.raw_close }}*/);
        {% endmacro %}
        """
    )

    def __init__(self, code: str, payload: Any, name: str = "CurbsideScript") -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = name
        self.code = code
        self.payload_json = _js_json(payload)
        self.raw_open, self.raw_close = _JINJA_RAW


# --------------------------------------------------------------------------- base map


_BACKGROUND_JS = """
    parent.getContainer().style.background = data.background;
"""

#: Draw the city's own street lines once the tiles fail (or at once with no tiles):
#: arterials by road class, address-traced streets thin, each named on hover.
_STREETS_JS = """
    var loaded = false;
    function load() {
        if (loaded) { return; }
        loaded = true;
        if (!parent.getPane('curbsideStreets')) {
            parent.createPane('curbsideStreets').style.zIndex = 250;
        }
        fetch(data.url).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (doc) {
            if (!doc) { return; }
            var streets = L.geoJSON(doc, {
                pane: 'curbsideStreets', interactive: false,
                attribution: doc.attribution || '',
                // one canvas, not 20,000 SVG paths: the map opens fast at city scale
                renderer: L.canvas({pane: 'curbsideStreets'}),
                style: function (f) {
                    var k = f.properties.kind || '';
                    var major = /^(motorway|trunk|primary)/.test(k);
                    return {color: major ? '#8c96a3' : '#aab3bd',
                            weight: major ? 4 : (k === 'address' ? 2 : 3),
                            opacity: 0.9};
                },
            });
            streets.addTo(parent);
            // The street under the mouse is named in one tooltip, found from the map's
            // own mouse moves: the streets lie under the districts and routes, which
            // keep their own hover (and 20,000 tooltips made up front would hold the
            // map's first paint). Within 6 px of a street, once per frame.
            var tip = L.tooltip({sticky: true}), last = null, queued = false, near = 6;
            function nameAt(e) {
                var p = e.layerPoint, best = null, bestD = near;
                streets.eachLayer(function (l) {
                    var b = l._pxBounds, name = l.feature.properties.name;
                    if (!name || !b || p.x < b.min.x - near || p.x > b.max.x + near ||
                        p.y < b.min.y - near || p.y > b.max.y + near) { return; }
                    var q = l.closestLayerPoint(p);
                    if (q && q.distance < bestD) { bestD = q.distance; best = name; }
                });
                return best;
            }
            parent.on('mousemove', function (e) {
                last = e;
                if (queued) { return; }
                queued = true;
                L.Util.requestAnimFrame(function () {
                    queued = false;
                    var name = nameAt(last);
                    if (!name) { parent.closeTooltip(tip); return; }
                    tip.setContent(name).setLatLng(last.latlng);
                    if (!parent.hasLayer(tip)) { parent.openTooltip(tip); }
                });
            });
            parent.on('mouseout', function () { parent.closeTooltip(tip); });
            window.curbsideStreets = streets;
        }).catch(function () {});
    }
    var tiles = 0;
    parent.eachLayer(function (l) {
        if (l instanceof L.TileLayer) { tiles += 1; l.once('tileerror', load); }
    });
    if (!tiles) { load(); }
"""


def base_map(
    bounds: Bounds | None = None,
    center: tuple[float, float] | None = None,
    tiles: str | None = "OpenStreetMap",
    offline_background: bool = True,
    *,
    zoom_start: int = 11,
    attribution: str | None = None,
    prefer_canvas: bool = True,
    streets_url: str | None = None,
) -> folium.Map:
    """Build an empty map that works without tiles.

    Parameters
    ----------
    bounds
        ``(min_lon, min_lat, max_lon, max_lat)`` in EPSG:4326, e.g. a GeoDataFrame's
        ``total_bounds``. The map is fitted to them (padded to at least 0.01 degree
        each way). Takes precedence over ``center``.
    center
        ``(lon, lat)`` of the initial view when no bounds are given.
    tiles
        folium/xyzservices tile name (e.g. ``'OpenStreetMap'``) or an XYZ URL template
        (then give ``attribution``); ``None`` for no tiles at all.
    offline_background
        Paint the map container a plain light grey so vectors stay readable when tiles
        cannot be fetched, and, when tiles are given, offer a "Plain background" base
        layer in the layer control to switch them off.
    zoom_start
        Initial zoom when fitting to ``center``.
    attribution
        Attribution for a tile URL template.
    prefer_canvas
        Draw vector layers on a canvas (faster for many circle markers).
    streets_url
        URL of the city's street lines (:func:`geo.streets.streets_geojson`). When the
        tiles fail to load (offline), or there are none, the map fetches and draws them
        under every other layer, each street named on hover. Online tiles stay the
        default where they load.

    Returns
    -------
    folium.Map
        The map, with tiles (if any) as a base layer named after ``tiles``.

    Raises
    ------
    GeoError
        If both ``bounds`` and ``center`` are missing, or they are not finite.
    """
    if bounds is None and center is None:
        raise GeoError("base_map needs bounds (min_lon, min_lat, max_lon, max_lat) or center")
    if bounds is not None:
        leaflet_bounds = _leaflet_bounds(bounds)
        location = [
            (leaflet_bounds[0][0] + leaflet_bounds[1][0]) / 2,
            (leaflet_bounds[0][1] + leaflet_bounds[1][1]) / 2,
        ]
    else:
        assert center is not None
        lon, lat = (float(c) for c in center)
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise GeoError(f"map center {center!r} is not finite; expected (lon, lat)")
        location = [lat, lon]  # (lon, lat) -> (lat, lon) for Leaflet
    m = folium.Map(
        location=location,
        zoom_start=zoom_start,
        tiles=None,
        prefer_canvas=prefer_canvas,
        control_scale=True,
    )
    if tiles is not None:
        tile_kwargs: dict[str, Any] = {"name": _text(tiles if attribution is None else "Tiles")}
        if attribution is not None:
            # attribution is HTML on purpose (links); only keep it inert to Jinja
            tile_kwargs["attr"] = attribution.replace("{", "&#123;").replace("}", "&#125;")
        folium.TileLayer(tiles, overlay=False, control=True, show=True, **tile_kwargs).add_to(m)
    if offline_background:
        m.add_child(
            _Script(_BACKGROUND_JS, {"background": OFFLINE_BACKGROUND}, name="PlainBackground")
        )
        if tiles is not None:
            # An empty base layer: choosing it in the layer control removes the tiles.
            folium.FeatureGroup(
                name="Plain background", overlay=False, control=True, show=False
            ).add_to(m)
    if streets_url is not None:
        m.add_child(_Script(_STREETS_JS, {"url": streets_url}, name="OfflineStreets"))
    if bounds is not None:
        m.fit_bounds(leaflet_bounds)
    return m


# --------------------------------------------------------------------------- districts


def district_layer(
    districts: gpd.GeoDataFrame,
    id_field: str = "district",
    name_field: str = "name",
    *,
    simplify_tolerance_m: float = 15.0,
    colour: str = "#3b4a6b",
    labels: bool = True,
    layer_name: str = "Districts",
) -> folium.GeoJson:
    """Build a district outline layer with hover tooltips and permanent labels.

    Geometry is simplified (topology-preserving) and rounded to 1e-5 degree to keep
    the page small; the council districts of Los Angeles shrink from about 100 kB.

    Parameters
    ----------
    districts
        One row per district with a polygon geometry. Reprojected to EPSG:4326 when it
        has another CRS; assumed to be EPSG:4326 when it has none.
    id_field
        Column with the district identifier shown as the label (e.g. ``10``).
    name_field
        Column with the district name shown in the tooltip; may equal ``id_field`` or
        be missing from the frame (then the identifier is used).
    simplify_tolerance_m
        Simplification tolerance in metres (converted to degrees of latitude); 0 keeps
        the geometry as is.
    colour
        Outline colour.
    labels
        Add a permanent label with the identifier at a point inside each district.
    layer_name
        Name of the layer in the layer control (escaped).

    Returns
    -------
    folium.GeoJson
        The layer; labels, if any, are its children and toggle with it.

    Raises
    ------
    GeoError
        If ``id_field`` is not a column, a geometry is missing, or ``colour`` is not a
        CSS colour.
    """
    _check_colour(colour, "districts")
    if id_field not in districts.columns:
        raise GeoError(
            f"districts have no column {id_field!r} for the district id; "
            f"columns are {list(districts.columns)}"
        )
    frame = districts
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    geoms = np.asarray(frame.geometry.values, dtype=object)
    bad = [
        ident
        for ident, geom in zip(frame[id_field].tolist(), geoms, strict=True)
        if geom is None or shapely.is_empty(geom)
    ]
    if bad:
        raise GeoError(
            f"districts {bad[:5]!r} (by {id_field!r}) have a missing or empty geometry; "
            "expected a polygon per district"
        )
    if simplify_tolerance_m > 0:
        geoms = shapely.simplify(geoms, simplify_tolerance_m * _DEG_PER_M, preserve_topology=True)
    geoms = shapely.transform(geoms, lambda xy: np.round(xy, _COORD_DECIMALS))
    ids = frame[id_field].tolist()
    names = frame[name_field].tolist() if name_field in frame.columns else ids
    features: list[dict[str, Any]] = []
    for i, (geom, ident, name) in enumerate(zip(geoms, ids, names, strict=True)):
        label = _text(ident)
        name_text = _text(name)
        tooltip = f"<b>District {label}</b>"
        if name_text and name_text != label:
            tooltip += f"<br>{name_text}"
        features.append(
            {
                "type": "Feature",
                "id": f"d{i}",
                "properties": {"district": label, "tooltip": tooltip},
                "geometry": shapely.geometry.mapping(geom),
            }
        )
    style = {"color": colour, "weight": 2, "opacity": 0.9, "fillColor": colour, "fillOpacity": 0.04}
    highlight = {"weight": 3, "fillOpacity": 0.12}
    layer = folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=_text(layer_name),
        style_function=lambda _feature: style,
        highlight_function=lambda _feature: highlight,
        # folium checks tooltip fields against the first feature: none without features
        tooltip=(
            folium.GeoJsonTooltip(fields=["tooltip"], labels=False, sticky=True)
            if features
            else None
        ),
        smooth_factor=1.0,
    )
    if labels and features:
        points = shapely.point_on_surface(geoms)
        label_data = [
            # (lon, lat) -> (lat, lon) for Leaflet
            [
                round(float(p.y), _COORD_DECIMALS),
                round(float(p.x), _COORD_DECIMALS),
                f["properties"]["district"],
            ]
            for p, f in zip(points, features, strict=True)
        ]
        layer.add_child(
            _Script(
                _DISTRICT_LABELS_JS, {"labels": label_data, "colour": colour}, name="DistrictLabels"
            )
        )
    return layer


_DISTRICT_LABELS_JS = """
    data.labels.forEach(function(row) {
        var icon = L.divIcon({
            className: 'curbside-district-label',
            html: '<div style="font:bold 12px sans-serif;color:' + data.colour +
                  ';text-shadow:0 0 3px #fff,0 0 3px #fff;white-space:nowrap;' +
                  'transform:translate(-50%,-50%);display:inline-block">' + row[2] + '</div>',
            iconSize: null
        });
        L.marker([row[0], row[1]], {icon: icon, interactive: false, keyboard: false})
            .addTo(parent);
    });
"""


# --------------------------------------------------------------------------- requests


def category_colours(categories: Iterable[str], colours: Mapping[str, str]) -> dict[str, str]:
    """Resolve the colour of every category.

    Parameters
    ----------
    categories
        Category values present in the data.
    colours
        Configured colours (category -> CSS colour); categories missing from it get a
        free colour from :data:`CREW_PALETTE` chosen from the name (stable across runs).

    Returns
    -------
    dict[str, str]
        Category -> colour, in the order of ``colours`` first, then the remaining
        categories sorted by name.

    Raises
    ------
    GeoError
        If a configured colour is not a CSS colour.
    """
    present = list(dict.fromkeys(str(c) for c in categories))
    present_set = set(present)
    out: dict[str, str] = {}
    for cat, col in colours.items():
        if cat in present_set:
            out[cat] = _check_colour(col, f"category {cat!r}")
    rest = [c for c in present if c not in out]
    out.update(_palette_assign(rest, taken=set(out.values())))
    return out


def _palette_assign(names: Iterable[str], taken: set[str]) -> dict[str, str]:
    """Give each name a :data:`CREW_PALETTE` colour, deterministic per name.

    Each name prefers the slot chosen by the CRC-32 of its name; names are placed in
    sorted order and a name whose slot is taken (or used by ``taken``) moves to the
    next free slot, so colours repeat only once the palette is exhausted.

    Parameters
    ----------
    names
        Names to colour (duplicates ignored).
    taken
        Colours already in use (compared case-insensitively), not modified.

    Returns
    -------
    dict[str, str]
        Name -> colour, sorted by name.
    """
    used = {c.lower() for c in taken}
    n = len(CREW_PALETTE)
    out: dict[str, str] = {}
    for name in sorted(set(names)):
        start = _stable_index(name, n)
        candidate = CREW_PALETTE[start]
        for k in range(n):
            if CREW_PALETTE[(start + k) % n] not in used:
                candidate = CREW_PALETTE[(start + k) % n]
                break
        used.add(candidate)
        out[name] = candidate
    return out


class CategoryLayer(folium.FeatureGroup):
    """The layer of one request category, as made by :func:`requests_layer`.

    Parameters
    ----------
    category
        The category value as it is in the data (unescaped).
    colour
        CSS colour of its points and clusters.
    count
        Number of points drawn.
    """

    def __init__(self, category: str, colour: str, count: int) -> None:
        super().__init__(name=_text(category), overlay=True, control=True, show=True)
        self.category = category
        self.colour = colour
        self.count = count


class RouteLayer(folium.FeatureGroup):
    """The crew routes drawn by :func:`route_layer`.

    Parameters
    ----------
    name
        Layer name (unescaped).
    crew_colours
        Crew -> colour used.
    counts
        Number of ``lines``, ``depots``, ``stops`` and ``unplanned`` markers drawn.
    """

    def __init__(self, name: str, crew_colours: dict[str, str], counts: dict[str, int]) -> None:
        super().__init__(name=_text(name), overlay=True, control=True, show=True)
        self.crew_colours = crew_colours
        self.counts = counts


class _RequestCluster(FastMarkerCluster):
    """A :class:`FastMarkerCluster` whose rows are embedded as safe, compact JSON.

    folium's :class:`FastMarkerCluster` validates every row in Python and serialises
    with spaces; this subclass takes rows already checked and rounded by
    :func:`requests_layer` and embeds them with :func:`_js_json`.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = (function(){
                var callback = {{ this.callback_js }};
                var data = /*{{ this.raw_open }}*/{{ this.data_json }}/*{{ this.raw_close }}*/;
                var cluster = L.markerClusterGroup({{ this.options|tojavascript }});
                cluster.options.iconCreateFunction = {{ this.icon_js }};
                var markers = new Array(data.length);
                for (var i = 0; i < data.length; i++) {
                    markers[i] = callback(data[i]);
                }
                cluster.addLayers(markers);
                return cluster;
            })();
        {% endmacro %}"""
    )

    def __init__(
        self, rows: Sequence[Sequence[Any]], callback_js: str, icon_js: str, **options: Any
    ) -> None:
        super().__init__([], callback=None, name=None, control=False,  # type: ignore[no-untyped-call]
                         show=True, **options)
        self._name = "RequestCluster"
        self.n_points = len(rows)
        self.callback_js = callback_js
        self.icon_js = icon_js
        self.data_json = _js_json(rows)
        self.raw_open, self.raw_close = _JINJA_RAW


def _callback_js(category: str, colour: str, labels: Sequence[str]) -> str:
    """JavaScript building one circle marker and its lazy popup from a data row.

    Row layout: ``[lat, lon, request_id, field_1, ..., field_n]``, all text already
    HTML-escaped; the constants are embedded with :func:`_js_json`.
    """
    consts = _js_json({"category": category, "colour": colour, "labels": list(labels)})
    return (
        "(function(c){ return function(row) {"
        " var m = L.circleMarker([row[0], row[1]], {radius: 6, color: '#ffffff', weight: 1,"
        " fillColor: c.colour, fillOpacity: 0.9});"
        " m.bindPopup(function() {"
        "  var h = '<div style=\"font:12px sans-serif;max-width:260px\">'"
        "   + '<b>' + c.category + '</b><br><code>' + row[2] + '</code>';"
        "  for (var i = 0; i < c.labels.length; i++) {"
        "   var v = row[3 + i];"
        "   if (v !== '' && v !== null && v !== undefined) {"
        "    h += '<br><i>' + c.labels[i] + '</i>: ' + v; } }"
        "  return h + '</div>'; });"
        " return m; }; })(" + consts + ")"
    )


def _icon_js(colour: str) -> str:
    """JavaScript for a cluster bubble in the category colour showing the count."""
    return (
        "(function(colour){ return function(cluster) {"
        " var n = cluster.getChildCount();"
        " var s = n < 10 ? 26 : (n < 100 ? 32 : (n < 1000 ? 38 : 44));"
        " return L.divIcon({className: 'curbside-cluster', iconSize: L.point(s, s),"
        "  html: '<div style=\"width:' + s + 'px;height:' + s + 'px;line-height:' + s + 'px;"
        "border-radius:50%;background:' + colour + ';opacity:0.85;color:#fff;"
        "font:bold 12px sans-serif;text-align:center;box-shadow:0 0 0 3px rgba(255,255,255,.7)\">'"
        "   + n + '</div>'}); }; })(" + _js_json(colour) + ")"
    )


def _frame_rows(
    frame: pd.DataFrame, popup_fields: Sequence[str], max_chars: int | None
) -> list[tuple[Any, ...]]:
    """Compact rows ``(lat, lon, request_id, fields...)`` with escaped text."""
    # (lon, lat) -> (lat, lon) for Leaflet
    lat = np.round(frame["lat"].to_numpy(dtype=float), _COORD_DECIMALS).tolist()
    lon = np.round(frame["lon"].to_numpy(dtype=float), _COORD_DECIMALS).tolist()
    columns = [lat, lon, _text_column(frame["request_id"])]
    columns.extend(_text_column(frame[f], max_chars) for f in popup_fields)
    return list(zip(*columns, strict=True))


def requests_layer(
    requests: pd.DataFrame,
    colours: Mapping[str, str],
    popup_fields: Sequence[str] = (),
    *,
    disable_clustering_at_zoom: int | None = None,
    max_text_chars: int | None = 120,
) -> list[CategoryLayer]:
    """Build one clustered point layer per request category.

    Each category is a :class:`folium.FeatureGroup` (so the layer control toggles it)
    holding one client-side cluster whose points are a compact JSON array; the
    browser builds a circle marker in the category colour per point, and its popup
    (category, request id and ``popup_fields``) only when opened. Cluster bubbles
    take the category colour and show their count.

    Parameters
    ----------
    requests
        Columns ``request_id, category, lon, lat`` (EPSG:4326) plus any text columns
        named in ``popup_fields``. Rows whose coordinates are missing or outside
        [-180, 180] x [-90, 90] are left out.
    colours
        Category -> CSS colour; see :func:`category_colours` for the others.
    popup_fields
        Columns shown in the popup, in order, labelled with their names. All text is
        HTML-escaped.
    disable_clustering_at_zoom
        Zoom from which points are no longer clustered. ``None`` (default) always
        clusters, so requests at one address spread out ("spiderfy") when their
        cluster is clicked at the deepest zoom.
    max_text_chars
        Popup values longer than this are cut (ending in "…") before escaping, which
        bounds the page: 10,000 requests each carrying a long description would not
        fit in a few megabytes. Full text belongs in the request's own view. ``None``
        keeps every value whole.

    Returns
    -------
    list[CategoryLayer]
        One :class:`folium.FeatureGroup` per category present, in
        :func:`category_colours` order, named after the escaped category, with its
        ``category``, ``colour`` and point ``count``; add each to the map before a
        LayerControl.

    Raises
    ------
    GeoError
        If a required or popup column is missing, or a colour is not a CSS colour.
    """
    if max_text_chars is not None and max_text_chars < 2:
        raise GeoError(f"max_text_chars is {max_text_chars}; expected None or at least 2")
    missing = [c for c in (*REQUIRED_REQUEST_COLUMNS, *popup_fields) if c not in requests.columns]
    if missing:
        raise GeoError(
            f"requests frame lacks column(s) {missing}; expected at least "
            f"{list(REQUIRED_REQUEST_COLUMNS)} plus the popup fields {list(popup_fields)}"
        )
    lon = pd.to_numeric(requests["lon"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    lat = pd.to_numeric(requests["lat"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    frame = requests.loc[ok, [*dict.fromkeys((*REQUIRED_REQUEST_COLUMNS, *popup_fields))]]
    categories = [_plain(c) or UNCATEGORISED for c in frame["category"].tolist()]
    frame = frame.assign(lon=lon[ok], lat=lat[ok], category=categories)
    resolved = category_colours(frame["category"].tolist(), colours)
    labels = [_text(f) for f in popup_fields]
    cluster_options: dict[str, Any] = {
        "show_coverage_on_hover": False,
        "chunked_loading": True,
        "max_cluster_radius": 50,
    }
    if disable_clustering_at_zoom is not None:
        cluster_options["disable_clustering_at_zoom"] = int(disable_clustering_at_zoom)
    # escape whole columns once, then deal the rows out to their categories
    all_rows = _frame_rows(frame, popup_fields, max_text_chars)
    row_category = np.asarray(categories, dtype=object)
    groups: list[CategoryLayer] = []
    for category, colour in resolved.items():
        rows = [all_rows[i] for i in np.flatnonzero(row_category == category)]
        group = CategoryLayer(category, colour, len(rows))
        group.add_child(
            _RequestCluster(
                rows,
                _callback_js(_text(category), colour, labels),
                _icon_js(colour),
                **cluster_options,
            )
        )
        groups.append(group)
    return groups


# --------------------------------------------------------------------------- legend


_LEGEND_JS = """
    var legend = L.control({position: data.position});
    legend.onAdd = function() {
        var div = L.DomUtil.create('div', 'curbside-legend');
        div.style.cssText = 'background:rgba(255,255,255,.92);padding:6px 8px;' +
            'border-radius:4px;font:12px sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3);' +
            'max-height:40vh;overflow:auto';
        div.innerHTML = data.html;
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
    };
    legend.addTo(parent);
"""


def legend(
    entries: Mapping[str, str], title: str = "Categories", position: str = "bottomleft"
) -> MacroElement:
    """Build a legend control (label -> colour swatch) to add to a map.

    Parameters
    ----------
    entries
        Label -> CSS colour. Labels are HTML-escaped.
    title
        Heading, escaped.
    position
        Leaflet control corner: ``topleft``, ``topright``, ``bottomleft``, ``bottomright``.

    Returns
    -------
    branca.element.MacroElement
        An element whose script adds the legend to its parent map.

    Raises
    ------
    GeoError
        If a colour is not a CSS colour or the position is unknown.
    """
    if position not in {"topleft", "topright", "bottomleft", "bottomright"}:
        raise GeoError(
            f"legend position {position!r} is not one of topleft, topright, bottomleft, bottomright"
        )
    parts = [f"<b>{_text(title)}</b>"]
    for label, colour in entries.items():
        _check_colour(colour, f"legend entry {label!r}")
        parts.append(
            '<div style="white-space:nowrap"><span style="display:inline-block;width:11px;'
            f"height:11px;border-radius:50%;background:{colour};margin-right:5px;"
            f'vertical-align:middle"></span>{_text(label)}</div>'
        )
    return _Script(_LEGEND_JS, {"html": "".join(parts), "position": position}, name="Legend")


# --------------------------------------------------------------------------- routes


def crew_colours(crews: Iterable[str], colours: Mapping[str, str] | None = None) -> dict[str, str]:
    """Give every crew a colour, deterministic per crew name.

    See :func:`_palette_assign`: a crew keeps the palette slot picked from its name
    unless an earlier (sorted) crew holds it, so a fleet of up to 16 crews never
    shares a colour.

    Parameters
    ----------
    crews
        Crew names.
    colours
        Explicit crew -> colour overrides.

    Returns
    -------
    dict[str, str]
        Crew -> colour for every distinct crew, sorted by crew name.

    Raises
    ------
    GeoError
        If an override is not a CSS colour.
    """
    overrides = dict(colours or {})
    names = sorted(set(crews))
    fixed = {
        name: _check_colour(overrides[name], f"crew {name!r}")
        for name in names
        if name in overrides
    }
    auto = _palette_assign([n for n in names if n not in fixed], taken=set(fixed.values()))
    return {name: fixed.get(name) or auto[name] for name in names}


def _features(routes: Any) -> list[dict[str, Any]]:
    """Flatten a FeatureCollection, a Feature, or a sequence of either into features."""
    if routes is None:
        return []
    if isinstance(routes, Mapping):
        kind = routes.get("type")
        if kind == "FeatureCollection":
            return [dict(f) for f in routes.get("features") or [] if isinstance(f, Mapping)]
        if kind == "Feature" or (kind is None and "geometry" in routes):
            return [dict(routes)]
        if kind in _GEOMETRY_TYPES:  # a bare geometry: a feature without properties
            return [{"type": "Feature", "properties": {}, "geometry": dict(routes)}]
        raise GeoError(
            f"route GeoJSON has type {kind!r}; expected 'FeatureCollection', 'Feature' "
            "or a geometry"
        )
    if isinstance(routes, str | bytes):
        raise GeoError("route GeoJSON must be a parsed dict or a sequence of features, not text")
    out: list[dict[str, Any]] = []
    for item in routes:
        if item is not None:
            out.extend(_features(item))
    return out


_GEOMETRY_TYPES = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString"})


def _point_lonlat(geometry: Any) -> tuple[float, float] | None:
    """``(lon, lat)`` of a GeoJSON Point, or None when it is not a usable point."""
    if not isinstance(geometry, Mapping) or geometry.get("type") != "Point":
        return None
    coords = geometry.get("coordinates")
    try:
        lon, lat = float(coords[0]), float(coords[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    return lon, lat


def _line_latlngs(geometry: Any) -> list[list[list[float]]]:
    """Leaflet ``[[lat, lon], ...]`` parts of a LineString or MultiLineString."""
    if not isinstance(geometry, Mapping):
        return []
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    parts = [coords] if kind == "LineString" else coords if kind == "MultiLineString" else []
    out: list[list[list[float]]] = []
    for part in parts:
        latlngs: list[list[float]] = []
        for pt in part or []:
            try:
                lon, lat = float(pt[0]), float(pt[1])
            except (TypeError, ValueError, IndexError):
                continue
            if math.isfinite(lon) and math.isfinite(lat):
                # (lon, lat) -> (lat, lon) for Leaflet
                latlngs.append([round(lat, _COORD_DECIMALS), round(lon, _COORD_DECIMALS)])
        if len(latlngs) >= 2:
            out.append(latlngs)
    return out


_UNPLANNED_KINDS = frozenset({"unplanned", "unassigned", "dropped", "skipped"})


def _is_unplanned(props: Mapping[str, Any]) -> bool:
    """Whether a point feature is a stop the planner could not place."""
    kind = str(props.get("kind") or "").lower()
    if kind in _UNPLANNED_KINDS:
        return True
    if kind == "stop":
        return False
    if props.get("planned") is False:
        return True
    has_reason = bool(props.get("reason") or props.get("reasons"))
    return has_reason and _sequence(props) is None


def _sequence(props: Mapping[str, Any]) -> Any:
    """Return a stop's place in its route: ``sequence``, else ``seq`` (Plan.to_geojson)."""
    value = props.get("sequence")
    return props.get("seq") if value is None or value == "" else value


def _reasons(props: Mapping[str, Any]) -> str:
    """Escaped reason text of an unplanned stop (``reason`` or ``reasons`` list)."""
    raw = props.get("reasons", props.get("reason"))
    if raw is None or raw == "":
        return "no reason given"
    if isinstance(raw, list | tuple):
        return "; ".join(_text(r) for r in raw if _text(r)) or "no reason given"
    return _text(raw)


#: Up to this many stops a route layer numbers every stop; beyond it (a city's plan)
#: stops are dots until one crew is highlighted, whose stops are numbered.
NUMBERED_STOPS_MAX = 400

#: Colour of the other crews' paths and stops while one crew is highlighted.
_DIMMED_COLOUR = "#9e9e9e"

_ROUTES_JS = """
    data.lines.forEach(function(l) {
        l.parts.forEach(function(p) {
            L.polyline(p, {color: l.colour, weight: l.weight || 4, opacity: l.opacity || 0.85})
                .bindTooltip(l.tip, {sticky: true}).addTo(parent);
        });
    });
    data.depots.forEach(function(d) {
        L.marker([d[0], d[1]], {icon: L.divIcon({className: 'curbside-depot', iconSize: [22, 22],
            iconAnchor: [11, 11],
            html: '<div style="width:18px;height:18px;background:' + d[3] +
                  ';border:2px solid #222;box-sizing:content-box;color:#fff;' +
                  'font:bold 11px/18px sans-serif;text-align:center">D</div>'}),
            zIndexOffset: 1000})
            .bindTooltip(d[2]).addTo(parent);
    });
    var chosen = {};
    data.chosen.forEach(function(i) { chosen[i] = true; });
    data.stops.forEach(function(s, i) {
        var mark = chosen[i] === true;
        if (!data.numbered || s[4] === "") {
            // many stops, or a dimmed one: a light dot (drawn on the map's canvas)
            L.circleMarker([s[0], s[1]], {radius: mark ? 7 : 5,
                color: mark ? '#111111' : '#ffffff', weight: mark ? 3 : 1,
                fillColor: s[3], fillOpacity: s.length > 5 ? s[5] : 0.95})
                .bindTooltip(s[2]).addTo(parent);
            return;
        }
        L.marker([s[0], s[1]], {icon: L.divIcon({
            className: mark ? 'curbside-stop curbside-chosen' : 'curbside-stop',
            iconSize: [22, 22], iconAnchor: [11, 11],
            // 22 px across either way: a chosen stop trades face for a dark ring
            html: '<div style="width:' + (mark ? 16 : 20) + 'px;height:' + (mark ? 16 : 20) +
                  'px;border-radius:50%;background:' + s[3] + ';border:' +
                  (mark ? '3px solid #111' : '1px solid #fff') + ';color:#fff;font:bold ' +
                  (mark ? 10 : 11) + 'px/' + (mark ? 16 : 20) +
                  'px sans-serif;text-align:center">' + s[4] + '</div>'}),
            zIndexOffset: mark ? 1000 : (s.length > 5 ? 0 : 500),
            opacity: s.length > 5 ? s[5] : 1})
            .bindTooltip(s[2]).addTo(parent);
    });
    data.unplanned.forEach(function(u) {
        L.marker([u[0], u[1]], {icon: L.divIcon({className: 'curbside-unplanned',
            iconSize: [18, 18], iconAnchor: [9, 9],
            html: '<div style="width:18px;height:18px;color:' + data.grey +
                  ';font:bold 18px/18px sans-serif;text-align:center;' +
                  'text-shadow:0 0 2px #fff">&#x2716;</div>'})})
            .bindTooltip(u[2]).addTo(parent);
    });
"""


def route_layer(
    routes: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    colours: Mapping[str, str] | None = None,
    *,
    name: str = "Routes",
    category_labels: Mapping[str, str] | None = None,
    highlight: str | None = None,
    others: str = "dim",
    chosen: Collection[str] = (),
) -> RouteLayer:
    """Draw crew routes from the planner's route GeoJSON.

    Recognised features (others are ignored):

    - LineString/MultiLineString with property ``crew``: the crew's path.
    - Point with ``kind: depot``: a square depot marker (crew colour when the depot
      feature names a ``crew``, else dark grey); tooltip shows ``name``/``code``.
    - Point with ``kind: stop``, a ``sequence`` (or ``seq``, as
      ``Plan.to_geojson`` writes it) or a ``request_id``: a numbered stop (DivIcon) in
      the crew colour; tooltip shows crew, sequence, address, category, request id and
      arrival.
    - Point with ``kind`` in unplanned/unassigned/dropped/skipped, ``planned: false``,
      or a ``reason``/``reasons`` and no ``sequence``: a grey cross whose tooltip
      gives the reasons.

    Parameters
    ----------
    routes
        A GeoJSON FeatureCollection, a Feature, or a sequence of either.
    colours
        Crew -> colour overrides; other crews get :func:`crew_colours`.
    name
        Layer name in the layer control (escaped).
    category_labels
        Category code -> the label people read (``"Bulky items"`` for
        ``bulky_items``); a code without a label is shown as it is.
    highlight
        One crew to show on its own: its path and numbered stops in its colour, every
        other crew's drawn as ``others`` says. ``None`` (default) draws all alike:
        numbered up to :data:`NUMBERED_STOPS_MAX` stops, plain dots beyond.
    others
        With ``highlight``: ``"dim"`` draws the other crews' paths and stops thin,
        grey, faint and unnumbered; ``"hide"`` leaves them (and the unplanned
        crosses) out.
    chosen
        Request ids (the stops' ``request_id``) of stops a supervisor chose: drawn
        with a dark ring, above the others.

    Returns
    -------
    RouteLayer
        One :class:`folium.FeatureGroup` holding all routes, depots, stops and
        unplanned stops, with the ``crew_colours`` used and the ``counts`` drawn.

    Raises
    ------
    GeoError
        If ``routes`` is not GeoJSON-like, a colour is not a CSS colour, or
        ``others`` is neither ``"dim"`` nor ``"hide"``.
    """
    if others not in ("dim", "hide"):
        raise GeoError(f"route_layer others={others!r}; expected 'dim' or 'hide'")
    features = _features(routes)
    crews: list[str] = []
    for f in features:
        crew = (f.get("properties") or {}).get("crew")
        if crew is not None and crew != "":
            crews.append(str(crew))
    palette = crew_colours(crews, colours)
    shown = dict(category_labels or {})

    def category_of(props: Mapping[str, Any]) -> str:
        code = props.get("category")
        return _text(shown.get(str(code), code) if code is not None else None)

    lines: list[dict[str, Any]] = []
    depots: list[list[Any]] = []
    stops: list[list[Any]] = []
    unplanned: list[list[Any]] = []
    chosen_ids = {str(c) for c in chosen}
    marked: list[int] = []  # indices into ``stops`` of the chosen ones
    for f in features:
        props: Mapping[str, Any] = f.get("properties") or {}
        geometry = f.get("geometry")
        crew_raw = props.get("crew")
        crew = None if crew_raw is None or crew_raw == "" else str(crew_raw)
        colour = palette.get(crew, UNPLANNED_COLOUR) if crew is not None else None
        kind = str(props.get("kind") or "").lower()
        faded = highlight is not None and kind != "depot" and crew != highlight
        if faded and others == "hide":
            continue
        parts = _line_latlngs(geometry)
        if parts:
            tip = f"<b>{_text(crew) or 'route'}</b>"
            line: dict[str, Any] = {"parts": parts, "colour": colour or "#333333", "tip": tip}
            if faded:
                line.update(colour=_DIMMED_COLOUR, weight=2, opacity=0.35)
            lines.append(line)
            continue
        point = _point_lonlat(geometry)
        if point is None:
            continue
        lon, lat = point
        # (lon, lat) -> (lat, lon) for Leaflet
        ll = [round(lat, _COORD_DECIMALS), round(lon, _COORD_DECIMALS)]
        if kind == "depot":
            label = _text(props.get("name") or props.get("code") or props.get("depot") or "")
            tip = f"<b>Depot</b> {label}" if label else "<b>Depot</b>"
            if crew is not None:
                tip += f"<br>crew {_text(crew)}"
            depots.append([*ll, tip, colour or "#333333"])
        elif _is_unplanned(props):
            request_text = _text(props.get("request_id"))
            category_text = category_of(props)
            tip = "<b>Unplanned</b>"
            tip += f" {request_text}" if request_text else ""
            tip += f"<br>{category_text}" if category_text else ""
            tip += f"<br>{_reasons(props)}"
            unplanned.append([*ll, tip])
        elif kind == "stop" or _sequence(props) is not None or props.get("request_id") is not None:
            seq = _text(_sequence(props))
            bits = [f"<b>{_text(crew) or 'no crew'}</b> #{seq}"]
            for key in ("address", "category", "request_id", "arrival"):
                value = category_of(props) if key == "category" else _text(props.get(key))
                if value:
                    bits.append(f"{key.replace('_', ' ')}: {value}")
            # one field per line, so a clicked stop's tooltip text reads back line by
            # line (geo.map_select.tooltip_field)
            tip = "<br>\n".join(bits)
            if str(props.get("request_id")) in chosen_ids:
                marked.append(len(stops))
            if faded:
                stops.append([*ll, tip, _DIMMED_COLOUR, "", 0.45])
            else:
                stops.append([*ll, tip, colour or UNPLANNED_COLOUR, seq])
    counts = {
        "lines": len(lines),
        "depots": len(depots),
        "stops": len(stops),
        "unplanned": len(unplanned),
    }
    group = RouteLayer(name, palette, counts)
    group.add_child(
        _Script(
            _ROUTES_JS,
            {
                "lines": lines,
                "depots": depots,
                "stops": stops,
                "unplanned": unplanned,
                "grey": UNPLANNED_COLOUR,
                # numbered markers are DOM elements: past a few hundred the page slows,
                # so a city's plan draws dots until one route is chosen
                "numbered": highlight is not None or len(stops) <= NUMBERED_STOPS_MAX,
                "chosen": marked,
            },
            name="Routes",
        )
    )
    return group


# --------------------------------------------------------------------------- full map


def requests_map(
    requests: pd.DataFrame,
    districts: gpd.GeoDataFrame | None,
    colours: Mapping[str, str],
    popup_fields: Sequence[str] = (),
    *,
    routes: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    crew_colour_overrides: Mapping[str, str] | None = None,
    tiles: str | None = "OpenStreetMap",
    offline_background: bool = True,
    district_id_field: str = "district",
    district_name_field: str = "name",
    max_text_chars: int | None = 120,
    streets_url: str | None = None,
) -> folium.Map:
    """Build the complete request map: base, districts, categories, routes, legend.

    Parameters
    ----------
    requests
        See :func:`requests_layer`.
    districts
        See :func:`district_layer`; ``None`` for no district layer. The map is fitted
        to the districts, or to the requests when there are none.
    colours
        Category -> CSS colour.
    popup_fields
        Request columns shown in popups.
    routes
        Optional planner route GeoJSON, see :func:`route_layer`.
    crew_colour_overrides
        Crew -> colour overrides for the routes.
    tiles, offline_background
        See :func:`base_map`.
    district_id_field, district_name_field
        See :func:`district_layer`.
    max_text_chars
        See :func:`requests_layer`.
    streets_url
        See :func:`base_map`: the city's offline street lines.

    Returns
    -------
    folium.Map
        The map with its one layer control (add no other) and a category legend.

    Raises
    ------
    GeoError
        If the inputs are missing columns, there is nothing to fit the map to, or a
        colour is not a CSS colour.
    """
    bounds: Sequence[float] | None = None
    if districts is not None and len(districts):
        frame = districts
        if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
            frame = frame.to_crs("EPSG:4326")
        bounds = [float(b) for b in frame.total_bounds]
    else:
        if "lon" not in requests.columns or "lat" not in requests.columns:
            raise GeoError(
                f"requests frame lacks 'lon'/'lat'; columns are {list(requests.columns)}"
            )
        lon = pd.to_numeric(requests["lon"], errors="coerce")
        lat = pd.to_numeric(requests["lat"], errors="coerce")
        ok = lon.between(-180, 180) & lat.between(-90, 90)
        if ok.any():
            bounds = [lon[ok].min(), lat[ok].min(), lon[ok].max(), lat[ok].max()]
    if bounds is None:
        raise GeoError(
            "requests_map has nothing to fit the view to: no districts and no request "
            "with valid lon/lat"
        )
    m = base_map(bounds, tiles=tiles, offline_background=offline_background,
                 streets_url=streets_url)
    if districts is not None and len(districts):
        district_layer(districts, district_id_field, district_name_field).add_to(m)
    groups = requests_layer(requests, colours, popup_fields, max_text_chars=max_text_chars)
    for group in groups:
        group.add_to(m)
    entries = {g.category: g.colour for g in groups}
    m.add_child(legend(entries))
    if routes is not None:
        route_group = route_layer(routes, crew_colour_overrides)
        route_group.add_to(m)
        crews = dict(route_group.crew_colours)
        if route_group.counts["unplanned"]:
            crews["unplanned (✖)"] = UNPLANNED_COLOUR
        if crews:
            m.add_child(legend(crews, title="Crews", position="bottomright"))
    folium.LayerControl(collapsed=True).add_to(m)
    return m


def map_payload_bytes(m: folium.Map) -> int:
    """Return the size in bytes (UTF-8) of the map's rendered standalone HTML.

    Parameters
    ----------
    m
        A folium map.

    Returns
    -------
    int
        Length in bytes of the UTF-8 page a first render of ``m`` produces.

    Notes
    -----
    folium appends its ``addTo`` statements again each time a map is rendered, so
    the map is measured on a deep copy: ``m`` itself is left unrendered, and a later
    ``st_folium`` or ``save`` of it is the same size as measured.
    """
    return len(copy.deepcopy(m).get_root().render().encode("utf-8"))


# --------------------------------------------------------------------------- pin


#: CSS class of the pin's icon (besides Leaflet's own ``leaflet-marker-icon``).
PIN_CLASS = "curbside-pin"


class _DraggablePin(MacroElement):
    """Leaflet's default marker, draggable; a drop is fired as a click on the map.

    streamlit-folium listens to the map's ``click`` event only (``last_clicked``), so
    the pin's ``dragend`` fires that same event with the dropped position: a page
    handles a drop exactly like a click there.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function(map, data) {
            var pin = L.marker([data.lat, data.lon], {
                draggable: true, autoPan: true, keyboard: true,
                title: data.title, alt: data.title,
                icon: new L.Icon.Default({className: data.className})
            }).addTo(map);
            pin.on('dragend', function (e) {
                var at = e.target.getLatLng();
                map.fire('click', {latlng: at,
                                   layerPoint: map.latLngToLayerPoint(at),
                                   containerPoint: map.latLngToContainerPoint(at)});
            });
        })({{ this._parent.get_name() }}, /*{{ this.raw_open }}*/{{ this.payload_json
        }}/*{{ this.raw_close }}*/);
        {% endmacro %}
        """
    )

    def __init__(self, payload: Mapping[str, Any]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "CurbsidePin"
        self.payload_json = _js_json(dict(payload))
        self.raw_open, self.raw_close = _JINJA_RAW


def draggable_pin(
    m: folium.Map,
    lon: float,
    lat: float,
    *,
    title: str = "Your pin: drag it to move it",
) -> MacroElement:
    """Put a pin on ``m`` that the user can drag; a drop is reported as a click.

    The pin is Leaflet's default marker (its images are vendored, see
    :mod:`geo.map_assets`) with the extra CSS class :data:`PIN_CLASS`. When the user
    drops it, the map fires its own ``click`` event at the new position, so
    ``st_folium(..., returned_objects=["last_clicked"])`` returns the drop as
    ``last_clicked`` and a page that handles clicks handles drags too, with no code
    of its own.

    Parameters
    ----------
    m
        The map to put the pin on (the pin must be a direct child of the map: the
        click is fired on it).
    lon, lat
        Position of the pin in degrees (EPSG:4326).
    title
        Text the browser shows on hover, and the marker's ``alt`` text. Plain text:
        it is set as a DOM attribute, never parsed as HTML.

    Returns
    -------
    branca.element.MacroElement
        The pin's element, already added to ``m``.

    Raises
    ------
    GeoError
        If ``lon`` or ``lat`` is not a finite number within -180..180 and -90..90.
    """
    lon_f, lat_f = float(lon), float(lat)
    if not (math.isfinite(lon_f) and math.isfinite(lat_f)
            and -180.0 <= lon_f <= 180.0 and -90.0 <= lat_f <= 90.0):
        raise GeoError(
            f"pin position ({lon!r}, {lat!r}) is not usable; expected finite (lon, lat) "
            "in degrees, lon within -180..180 and lat within -90..90"
        )
    pin = _DraggablePin({
        # (lon, lat) -> (lat, lon) for Leaflet happens in the script: [data.lat, data.lon]
        "lon": round(lon_f, _COORD_DECIMALS + 2),
        "lat": round(lat_f, _COORD_DECIMALS + 2),
        "title": str(title),
        "className": PIN_CLASS,
    })
    m.add_child(pin)
    return pin
