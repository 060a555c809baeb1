"""Choose points on a map: a click on one, or a lasso drawn around several.

streamlit-folium reports what happens on a map through a few fields: the last object
clicked (with its tooltip text) and the last shape drawn (``draw:created``, as the
Leaflet.draw plugin fires it). :func:`lasso_control` adds a *Lasso* button that draws a
free-hand shape with the mouse and fires that same event, so no drawing plugin has to be
shipped. The pure half reads the answers back: :func:`points_in_shape` for a drawn shape
and :func:`tooltip_field` for a clicked marker.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any, TypeVar

import folium
from shapely.geometry import Point, shape
from shapely.prepared import prep

from geo.errors import GeoError
from geo.maps import _Script

K = TypeVar("K", bound=Hashable)

_LASSO_JS = """
    var map = parent, active = false, points = null, trail = null, drawn = null;
    var Lasso = L.Control.extend({
        options: {position: 'topleft'},
        onAdd: function() {
            var box = L.DomUtil.create('div', 'leaflet-bar curbside-lasso');
            var a = L.DomUtil.create('a', '', box);
            a.href = '#';
            a.title = data.title;
            a.setAttribute('role', 'button');
            a.setAttribute('aria-label', data.title);
            a.style.cssText = 'width:auto;padding:0 8px;font:bold 12px/30px sans-serif;';
            a.textContent = data.label;
            L.DomEvent.disableClickPropagation(box);
            L.DomEvent.on(a, 'click', function(e) {
                L.DomEvent.preventDefault(e);
                toggle(!active);
            });
            this._button = a;
            return box;
        }
    });
    var control = new Lasso();
    function toggle(on) {
        active = on;
        var button = control._button;
        if (on) {
            map.dragging.disable();
            map.getContainer().style.cursor = 'crosshair';
            button.style.background = '#ffe08a';
        } else {
            map.dragging.enable();
            map.getContainer().style.cursor = '';
            button.style.background = '';
        }
    }
    map.addControl(control);
    // pointer events on the map's own element: they arrive over markers too (which
    // keep their mouse events to themselves), and from a finger as from a mouse
    var box = map.getContainer();
    L.DomEvent.on(box, 'pointerdown', function(e) {
        if (!active || e.target.closest('.leaflet-control')) { return; }
        L.DomEvent.stop(e);
        if (box.setPointerCapture) { box.setPointerCapture(e.pointerId); }
        points = [map.mouseEventToLatLng(e)];
        trail = L.polyline(points, {color: '#222222', weight: 2, dashArray: '4 4',
                                    interactive: false}).addTo(map);
    });
    L.DomEvent.on(box, 'pointermove', function(e) {
        if (!active || !points) { return; }
        points.push(map.mouseEventToLatLng(e));
        trail.setLatLngs(points);
    });
    L.DomEvent.on(box, 'pointerup pointercancel', function(e) {
        if (!active || !points) { return; }
        L.DomEvent.stop(e);
        var shapePoints = points;
        points = null;
        map.removeLayer(trail);
        toggle(false);
        if (shapePoints.length < 3) { return; }
        if (drawn) { map.removeLayer(drawn); }
        drawn = L.polygon(shapePoints, {color: '#222222', weight: 2, fillOpacity: 0.08,
                                        interactive: false}).addTo(map);
        map.fire('draw:created', {layer: drawn, layerType: 'polygon'});
    });
"""


def lasso_control(m: folium.Map, *, label: str = "Lasso",
                  title: str = "Draw around stops to choose them") -> folium.Map:
    """Add a *Lasso* button to ``m``: press it, then drag around points to choose them.

    The drawn shape stays on the map and is reported as streamlit-folium's
    ``last_active_drawing`` (a GeoJSON polygon, ``[lon, lat]`` rings); read it with
    :func:`points_in_shape`. Map dragging is off while the lasso is armed and back on
    when the shape is closed (on mouse or finger up).

    Parameters
    ----------
    m
        The map.
    label, title
        The button's text and its tooltip (plain text).

    Returns
    -------
    folium.Map
        ``m``, with the control added.
    """
    _Script(_LASSO_JS, {"label": str(label), "title": str(title)},
            name="CurbsideLasso").add_to(m)
    return m


def points_in_shape(points: Mapping[K, tuple[float | None, float | None]],
                    drawing: Mapping[str, Any] | None) -> list[K]:
    """Return the keys of ``points`` inside a drawn GeoJSON shape, in ``points`` order.

    Parameters
    ----------
    points
        ``{key: (lon, lat)}``; points without a position are never inside.
    drawing
        A GeoJSON Feature or geometry (a Polygon or MultiPolygon, ``[lon, lat]``
        coordinates), e.g. streamlit-folium's ``last_active_drawing``; ``None`` or an
        empty mapping: nothing is drawn, so nothing is inside.

    Returns
    -------
    list
        The keys of the points inside or on the shape's edge.

    Raises
    ------
    GeoError
        If ``drawing`` is not a polygon GeoJSON shape.
    """
    if not drawing:
        return []
    geometry = drawing.get("geometry", drawing) if drawing.get("type") == "Feature" else drawing
    if not isinstance(geometry, Mapping) or geometry.get("type") not in ("Polygon",
                                                                          "MultiPolygon"):
        kind = geometry.get("type") if isinstance(geometry, Mapping) else type(geometry).__name__
        raise GeoError(f"a drawn shape must be a GeoJSON Polygon or MultiPolygon; got {kind!r}")
    try:
        area = shape(geometry)
    except (ValueError, TypeError, IndexError, AttributeError) as err:
        raise GeoError(f"the drawn shape is not valid GeoJSON: {err}") from None
    if not area.is_valid:
        area = area.buffer(0)  # a lasso that crosses itself: its outline's area
    inside = prep(area)
    out: list[K] = []
    for key, (lon, lat) in points.items():
        if lon is None or lat is None or not (math.isfinite(lon) and math.isfinite(lat)):
            continue
        if inside.intersects(Point(lon, lat)):
            out.append(key)
    return out


def tooltip_field(tooltip: str | None, field: str) -> str | None:
    """Return the value of ``field`` in a clicked marker's tooltip text, if it has one.

    The route layer writes one ``field: value`` per line (see
    :func:`geo.maps.route_layer`); streamlit-folium reports the tooltip as text.

    Parameters
    ----------
    tooltip
        streamlit-folium's ``last_object_clicked_tooltip``.
    field
        The field's name, e.g. ``"request id"``.

    Returns
    -------
    str or None
        The value, stripped; ``None`` when the tooltip has no such line.
    """
    if not tooltip:
        return None
    prefix = f"{field}:"
    for line in tooltip.splitlines():
        line = line.strip()
        if line.startswith(prefix):
            return line[len(prefix):].strip() or None
    return None
