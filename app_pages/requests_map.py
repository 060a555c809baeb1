"""Requests map: the city's districts and its requests, coloured by category."""

from __future__ import annotations

from datetime import date

import streamlit as st
from streamlit_folium import st_folium

from app_pages.common import pack, require_page, unit_of_work
from dispatch.auth import Role
from dispatch.services.queries import (
    ALL_STATUSES,
    OPEN_STATUSES,
    MapFilter,
    request_date_range,
    requests_frame,
)
from geo.map_assets import use_local_assets
from geo.maps import requests_map

POPUP_FIELDS = ("status", "district", "address", "requested_at", "service_code", "description")

principal = require_page(Role.ADMIN, Role.SUPERVISOR, Role.MANAGER)
city = pack()
st.title("Requests map")

with unit_of_work() as uow:
    span = request_date_range(uow, city.timezone)

if span is None:
    st.info("No requests yet. Import a file with `dispatch import PATH`.")
    st.stop()

categories = {c.code: c.label for c in city.categories.values()}
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
    days = st.date_input("Requested between", value=span, min_value=span[0], max_value=span[1])

first_day, last_day = (days if isinstance(days, tuple) and len(days) == 2 else span)
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
with unit_of_work() as uow:
    frame = requests_frame(uow, flt, city.timezone)

located = frame[frame["lon"].notna()]
cols = st.columns(4)
cols[0].metric("Requests", f"{len(frame):,}")
cols[1].metric("On the map", f"{len(located):,}")
cols[2].metric("Open", f"{int((frame['open311_status'] == 'open').sum()):,}")
cols[3].metric("Without location", f"{len(frame) - len(located):,}")

colours = {c.code: c.colour for c in city.categories.values()}
frame_for_map = located.assign(
    requested_at=located["requested_at"].map(
        lambda t: t.astimezone(city.timezone).strftime("%Y-%m-%d %H:%M")
    ),
    category=located["category"].map(lambda c: categories.get(c, c)),
)
label_colours = {categories.get(k, k): v for k, v in colours.items()}
fmap = use_local_assets(requests_map(frame_for_map, city.districts, label_colours, POPUP_FIELDS))
if not city.has_districts:
    st.caption(city.districts_note)
st_folium(fmap, height=640, use_container_width=True, returned_objects=[], key="requests_map")
st.caption(
    "Points are clustered; zoom in to see single requests. Resident-written text in popups "
    "is shown as text, never as HTML."
)
