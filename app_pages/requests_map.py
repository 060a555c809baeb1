"""Requests map: the city's districts and its requests, coloured by category.

The page opens on the last 7 days. The database counts what matches; the map draws the
requests themselves while there are at most 20,000 in view, and counts per hexagon
beyond that, finer as the supervisor zooms in (the page reads the map's view back).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import folium
import streamlit as st
from streamlit_folium import st_folium

from app_pages.analytics_ui import count_layer, replay_note, span, spots_pane, window
from app_pages.common import pack, require_page, streets_url, unit_of_work
from dispatch.auth import Role
from dispatch.services.queries import (
    ALL_STATUSES,
    MAX_MARKERS,
    OPEN_STATUSES,
    MapData,
    MapFilter,
    map_data,
    store_version,
)
from dispatch.store import default_url
from geo.map_assets import use_local_assets
from geo.maps import base_map, district_layer, requests_map

POPUP_FIELDS = ("status", "district", "address", "requested_at", "service_code", "description")
VIEW_KEY = "requests_map_view"

principal = require_page(Role.ADMIN, Role.SUPERVISOR, Role.MANAGER)
city = pack()
st.title("Requests map")
replay_note()

days_span = span()
categories = city.category_labels
default_days = window(7, days_span)
with st.sidebar:
    st.header("Filters")
    chosen_categories = st.multiselect(
        "Category",
        options=list(categories),
        default=list(city.routable_categories),
        format_func=lambda code: categories[code],
    )
    chosen_districts: list[str] = []
    if city.has_districts:
        chosen_districts = st.multiselect(
            city.district_label, options=list(city.district_ids), placeholder="All districts"
        )
    status_choice = st.radio("Status", ["Open", "Closed", "All"], horizontal=True, index=2)
    days = st.date_input("Requested between", value=default_days, min_value=days_span[0],
                         max_value=days_span[1],
                         help="The last 7 days by default; pick any dates back to the first "
                              "stored request.")

first_day, last_day = (days if isinstance(days, tuple) and len(days) == 2 else default_days)
statuses = {
    "Open": OPEN_STATUSES,
    "Closed": tuple(s for s in ALL_STATUSES if s not in OPEN_STATUSES),
    "All": None,
}[status_choice]
flt = MapFilter(
    categories=tuple(chosen_categories) or None,
    districts=tuple(chosen_districts) or None,
    statuses=statuses,
    first_day=first_day if isinstance(first_day, date) else None,
    last_day=last_day if isinstance(last_day, date) else None,
)
view: dict[str, Any] = st.session_state.get(VIEW_KEY) or {}
if view.get("filter") != flt:
    view = {}  # a new filter starts from the whole city again


@st.cache_data(ttl=600, show_spinner="Reading requests…", max_entries=32)
def _map_data(url: str, version: int, flt: MapFilter,
              bbox: tuple[float, float, float, float] | None, zoom: int | None) -> MapData:
    """Return the counts and what to draw (cached per filter and view until a write)."""
    del url, version
    with unit_of_work() as uow:
        return map_data(uow, flt, city.timezone, bbox=bbox, zoom=zoom)


with unit_of_work() as uow:
    version = store_version(uow)
data = _map_data(default_url(), version, flt, view.get("bbox"), view.get("zoom"))

cols = st.columns(4)
cols[0].metric("Requests", f"{data.total:,}")
cols[1].metric("On the map", f"{data.located:,}")
cols[2].metric("Open", f"{data.open_now:,}")
cols[3].metric("Without location", f"{data.total - data.located:,}")

colours = {c.code: c.colour for c in city.categories.values()}
label_colours = {categories.get(k, k): v for k, v in colours.items()}
if data.points is not None and not data.points.empty:
    shown = data.points.assign(
        requested_at=data.points["requested_at"].dt.tz_convert(city.timezone)
        .dt.strftime("%Y-%m-%d %H:%M"),
        category=data.points["category"].map(lambda c: categories.get(c, c)),
    )
    # requests_map brings its own layer control
    fmap = requests_map(shown, city.districts, label_colours, POPUP_FIELDS,
                        streets_url=streets_url(city))
    how = "Points are clustered; zoom in to see single requests."
else:
    fmap = base_map([float(b) for b in city.districts.total_bounds]
                    if city.has_districts and city.districts is not None
                    else list(city.boundary.bounds), streets_url=streets_url(city))
    if city.has_districts and city.districts is not None:
        district_layer(city.districts).add_to(fmap)
    if data.cells is not None and not data.cells.empty:
        spots_pane().add_to(fmap)
        count_layer(data.cells).add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)
    how = (f"{data.located:,} requests are more than {MAX_MARKERS:,}: hexagons show how many "
           "there are in each place. Zoom in: below that number in view, the requests "
           "themselves appear.")
if view.get("bbox"):
    west, south, east, north = view["bbox"]
    # Leaflet wants [[south, west], [north, east]]: (lon, lat) -> (lat, lon)
    fmap.fit_bounds([[south, west], [north, east]])
if not city.has_districts:
    st.caption(city.districts_note)
# Follow the map's view only where it matters: hexagons (too many to draw), or a
# zoomed-in view that could be zoomed out again.
follow = data.points is None or bool(view.get("bbox"))
state = st_folium(use_local_assets(fmap), height=640, use_container_width=True,
                  returned_objects=["bounds", "zoom"] if follow else [],
                  key="requests_map")
st.caption(how + " Resident-written text in popups is shown as text, never as HTML.")


def _moved(old: tuple[float, ...] | None, new: tuple[float, ...]) -> bool:
    """Return whether the view moved by more than a fifth of its size."""
    if old is None:
        return True
    width, height = max(new[2] - new[0], 1e-6), max(new[3] - new[1], 1e-6)
    return (abs(new[0] - old[0]) > width / 5 or abs(new[2] - old[2]) > width / 5
            or abs(new[1] - old[1]) > height / 5 or abs(new[3] - old[3]) > height / 5)


bounds = (state or {}).get("bounds") if follow else None
if bounds and bounds.get("_southWest") and bounds.get("_northEast"):
    sw, ne = bounds["_southWest"], bounds["_northEast"]
    # st_folium reports Leaflet's {"lat", "lng"}: (lat, lon) -> (lon, lat)
    new_bbox = (round(float(sw["lng"]), 4), round(float(sw["lat"]), 4),
                round(float(ne["lng"]), 4), round(float(ne["lat"]), 4))
    new_zoom = int(state.get("zoom") or 0) or None
    if new_zoom != view.get("zoom") or _moved(view.get("bbox"), new_bbox):
        st.session_state[VIEW_KEY] = {"filter": flt, "bbox": new_bbox, "zoom": new_zoom}
        st.rerun()
