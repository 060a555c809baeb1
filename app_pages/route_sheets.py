"""Route sheets: printable stop lists per crew, with GPX, CSV and GeoJSON exports.

The sheet is built by :func:`dispatch.services.routesheets.route_sheet_html` (every
resident text HTML-escaped) and the exports by
:func:`~dispatch.services.routesheets.route_export` (each stop named by its address);
this page only chooses what to print and offers downloads.
"""

from __future__ import annotations

from datetime import date, datetime

import streamlit as st

from app_pages.common import pack, require_page, unit_of_work
from dispatch.auth import Role
from dispatch.errors import DispatchError
from dispatch.services.planning import export_plan
from dispatch.services.routesheets import (
    ROUTE_FORMATS,
    crew_depots,
    escape_markdown,
    export_name,
    newest_plan_date,
    plan_choices,
    route_export,
    route_sheet_html,
    sheet_views,
)
from geo.maps import crew_colours

ALL_CREWS = "All crews"

principal = require_page(Role.ADMIN, Role.SUPERVISOR)
city = pack()
tz = city.timezone
st.title("Route sheets")

with unit_of_work() as uow:
    newest = newest_plan_date(uow, city.name, statuses=("assigned", "draft"))

left, right = st.columns([1, 3])
day = left.date_input("Service date", value=newest or datetime.now(tz).date(),
                      key="sheet_day")
if not isinstance(day, date):
    st.stop()
with unit_of_work() as uow:
    choices = plan_choices(uow, city.name, day)
if not choices:
    st.info(f"No assigned or draft plan for {day:%A %d %B %Y}. Plan the day first "
            "on the *Plan and assign* page.")
    st.stop()
choice = right.selectbox("Plan", choices, format_func=lambda c: c.label(tz), key="sheet_plan")
crew_choice = st.selectbox("Crew", [ALL_CREWS, *choice.crews], key="sheet_crew")
crew = None if crew_choice == ALL_CREWS else crew_choice
with_map = st.toggle("Sketch map of each route", value=True)

if choice.status == "draft":
    st.warning("This plan is a draft: it is not assigned to crews yet and may still change.",
               icon=":material/edit_note:")

try:
    with unit_of_work() as uow:
        views = sheet_views(uow, choice.plan_id, crew)
        plan = export_plan(uow, choice.plan_id)
    sheet = route_sheet_html(
        views,
        city.display_name,
        tz,
        day,
        category_labels=city.category_labels,
        depots=crew_depots(plan),
        colours=crew_colours(r.crew for r in plan.routes),
        with_map=with_map,
    )
    exports = {fmt: route_export(views, fmt, tz, category_labels=city.category_labels)
               for fmt in ("gpx", "csv", "geojson")}
except DispatchError as exc:
    st.error(escape_markdown(str(exc)), icon=":material/error:")
    st.stop()

stops = sum(len(v.stops) for v in views)
st.caption(f"{len(views)} crew page(s), {stops} stops. Open the HTML file in a browser and "
           "print it: each crew starts on a new page.")
cols = st.columns(4)
cols[0].download_button(
    "Route sheet (HTML)", sheet, export_name(day, choice.plan_id, crew, "html"),
    mime="text/html", icon=":material/print:", type="primary", width="stretch", on_click="ignore",
)
for col, (fmt, label, icon) in zip(cols[1:], [("gpx", "GPX", ":material/route:"),
                                              ("csv", "CSV", ":material/table:"),
                                              ("geojson", "GeoJSON", ":material/map:")],
                                   strict=True):
    mime, ext = ROUTE_FORMATS[fmt]
    col.download_button(label, exports[fmt], export_name(day, choice.plan_id, crew, ext),
                        mime=mime, icon=icon, width="stretch", on_click="ignore")
st.subheader("Preview", anchor=False)
# the sheet is our own document: every data text in it is escaped, and its CSP forbids
# scripts (see route_sheet_html)
st.iframe(sheet, height=820)
