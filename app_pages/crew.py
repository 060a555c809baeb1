"""My route today: a crew's stops, one at a time, sized for a phone.

A signed-in crew member sees only their own crew's route; supervisors and admins pick
one of the crews with an assigned route on the day (and act on its behalf, recorded
under their own name). Resident text (addresses, descriptions) is shown as plain text:
``st.text``, or Markdown with every syntax character escaped; never as HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import folium
import streamlit as st
from streamlit_folium import st_folium

from app_pages.common import PAGE_ICON, pack, require_page, streets_url, unit_of_work
from dispatch.auth import Role
from dispatch.errors import DispatchError
from dispatch.services import workflow as wf
from dispatch.services.clock import clock_info
from dispatch.services.routesheets import (
    ROUTE_FORMATS,
    STATUS_LABELS,
    crew_map_geojson,
    crews_on_day,
    escape_markdown,
    export_name,
    local_time,
    newest_plan_date,
    progress,
    route_export,
)
from geo.map_assets import use_local_assets
from geo.maps import base_map, crew_colours, route_layer

PHOTO_DIR = Path("var/photos")
ICONS = {
    wf.STOP_PENDING: ":material/radio_button_unchecked:",
    wf.STOP_ARRIVED: ":material/location_on:",
    wf.STOP_DONE: ":green[:material/check_circle:]",
    wf.STOP_CANT: ":red[:material/block:]",
}
HIGHLIGHT = "#d62728"

st.set_page_config(page_title="My route today", page_icon=PAGE_ICON,
                   layout="centered")
principal = require_page(Role.ADMIN, Role.SUPERVISOR, Role.CREW)
city = pack()
tz = city.timezone
labels = city.category_labels
st.title("My route today")

with unit_of_work() as uow:
    newest = newest_plan_date(uow, city.name)
day = st.date_input("Day", value=newest or datetime.now(tz).date(), key="crew_day")
if not isinstance(day, date):
    st.stop()
with unit_of_work() as uow:
    crews = crews_on_day(uow, city.name, day)
if principal.role is Role.CREW:
    # a crew member works their own route: no choice, no other crew's names
    crew: str | None = principal.crew
    if crew not in crews:
        st.info(f"Crew {escape_markdown(crew or '')} has no assigned route on "
                f"{day:%A %d %B %Y}.")
        st.stop()
    st.caption(f"Crew **{escape_markdown(crew or '')}**")
else:
    if not crews:
        st.info(f"No crew has an assigned route on {day:%A %d %B %Y}.")
        st.stop()
    crew = st.selectbox("Crew", crews, index=None, placeholder="Choose the crew",
                        key="crew_name", help="Supervisors act on behalf of the crew; "
                        "the event log records you as the one acting.")
if crew is None:
    st.stop()


def act(message: str, service: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run a workflow service as this crew; rerun on success, show the error otherwise."""
    try:
        with unit_of_work() as uow:
            service(uow, *args, **kwargs)
    except DispatchError as exc:
        st.error(escape_markdown(str(exc)), icon=":material/error:")
        return
    st.session_state["crew_flash"] = message
    st.rerun()


try:
    with unit_of_work() as uow:
        view = wf.crew_route(uow, city.name, day, crew)
        geojson = crew_map_geojson(uow, view.plan_id, crew) if view is not None else None
except DispatchError as exc:
    st.error(escape_markdown(str(exc)), icon=":material/error:")
    st.stop()
if view is None or geojson is None:
    st.info(f"Crew {escape_markdown(crew)} has no assigned route on {day:%A %d %B %Y}.")
    st.stop()

if view.notice:
    st.warning(escape_markdown(view.notice), icon=":material/campaign:")
    if st.button("Got it", key="ack_notice", icon=":material/done:"):
        with unit_of_work() as uow:
            wf.acknowledge_route_change(uow, view.crew, view.plan_id)
        st.rerun()
flash = st.session_state.pop("crew_flash", None)
if flash:
    st.success(flash, icon=":material/thumb_up:")

finished, total = progress(view)
done_n = sum(1 for s in view.stops if s.status == wf.STOP_DONE)
cant_n = sum(1 for s in view.stops if s.status == wf.STOP_CANT)
st.progress(finished / total if total else 1.0,
            text=f"{done_n} of {total} stops done" + (
                f" · {cant_n} could not be completed" if cant_n else "")
            + f" · {total - finished} to go")

# Undo the last Done / Can't complete, for a few minutes after the tap
with unit_of_work() as uow:
    clock_now = clock_info(uow).now
recent = [s for s in view.stops if s.status in (wf.STOP_DONE, wf.STOP_CANT)
          and s.status_at is not None and clock_now - s.status_at <= wf.UNDO_WINDOW]
if recent:
    last = max(recent, key=lambda s: s.status_at or clock_now)
    what = STATUS_LABELS.get(last.status, last.status)
    if st.button(f"Undo: stop {last.sequence} {what}", key=f"undo_{last.stop_id}",
                 icon=":material/undo:", width="stretch"):
        act(f"Stop {last.sequence} is open again.", wf.undo_stop, last.stop_id, crew)

open_stops = [s for s in view.stops if s.status in (wf.STOP_PENDING, wf.STOP_ARRIVED)]
focus_id = st.session_state.get("crew_focus")
current = next((s for s in open_stops if s.stop_id == focus_id), view.next_stop)

if current is None:
    st.success("Every stop is finished. Head back to the depot.", icon=":material/flag:")
else:
    with st.container(border=True):
        eta = local_time(current.eta, tz)
        heading = "Next stop" if current == view.next_stop else "Chosen stop"
        st.caption(f"{heading.upper()} · #{current.sequence} of {total}"
                   + (f" · ETA {eta}" if eta else ""))
        st.subheader(escape_markdown(current.address or "(no address)"), anchor=False)
        st.markdown(
            f"**{escape_markdown(labels.get(current.category, current.category))}** · "
            f"{escape_markdown(current.request_id)}"
            + (" · :material/location_on: arrived" if current.status == wf.STOP_ARRIVED else "")
        )
        if current.description.strip():
            st.text(current.description)
        if current.navigation_url:
            st.link_button("Navigate", current.navigation_url, icon=":material/navigation:",
                           width="stretch")
        else:
            st.caption("This stop has no location to navigate to.")

        sid = current.stop_id
        cant_key = f"crew_cant_{sid}"
        if not st.session_state.get(cant_key):
            if current.status == wf.STOP_PENDING:
                if st.button("Arrived", key=f"arrive_{sid}", icon=":material/location_on:",
                             type="primary", width="stretch"):
                    act(f"Arrived at stop {current.sequence}.", wf.record_arrival, sid, crew)
            elif st.button("Done", key=f"done_{sid}", icon=":material/check_circle:",
                           type="primary", width="stretch"):
                st.session_state.pop("crew_focus", None)
                act(f"Stop {current.sequence} done.", wf.complete_stop, sid, crew)
            if st.button("Can't complete", key=f"cant_{sid}", icon=":material/block:",
                         width="stretch"):
                st.session_state[cant_key] = True
                st.rerun()
        else:
            reason = st.selectbox(
                "Why not?",
                list(wf.CANT_COMPLETE_REASONS),
                format_func=lambda code: wf.CANT_COMPLETE_REASONS[code],
                key=f"reason_{sid}", index=None, placeholder="Choose why",
            )
            note = st.text_area("Note (optional)", max_chars=2000, key=f"note_{sid}")
            # no reason is chosen for the crew: confirming waits for its choice
            if st.button("Confirm: can't complete", key=f"cant_ok_{sid}", type="primary",
                         width="stretch", disabled=reason is None):
                st.session_state.pop(cant_key, None)
                st.session_state.pop("crew_focus", None)
                act(f"Stop {current.sequence} recorded as not completed.", wf.cannot_complete,
                    sid, crew, reason, note=note.strip() or None)
            if st.button("Cancel", key=f"cant_no_{sid}", width="stretch"):
                st.session_state.pop(cant_key, None)
                st.rerun()

        uploads = st.session_state.setdefault("crew_uploads", 0)
        photo = st.file_uploader("Photo (optional)", type=["jpg", "jpeg", "png"],
                                 key=f"photo_{sid}_{uploads}",
                                 max_upload_size=wf.MAX_PHOTO_BYTES // 2**20)
        if photo is not None and st.button("Attach photo", key=f"photo_ok_{sid}",
                                           icon=":material/photo_camera:", width="stretch"):
            st.session_state["crew_uploads"] = uploads + 1
            act("Photo attached.", wf.attach_photo, sid, crew, photo.getvalue(), PHOTO_DIR)

# ---------------------------------------------------------------- map of the route
coords = [f["geometry"]["coordinates"] for f in geojson["features"]
          if f["geometry"]["type"] == "Point"]
lons, lats = [c[0] for c in coords], [c[1] for c in coords]
pad = 0.003
fmap = base_map((min(lons) - pad, min(lats) - pad, max(lons) + pad, max(lats) + pad),
                streets_url=streets_url(city))
route_layer(geojson, crew_colours([crew]), name="Route",
            category_labels=labels).add_to(fmap)
if current is not None and current.lon is not None and current.lat is not None:
    # (lon, lat) -> (lat, lon) for Leaflet
    folium.CircleMarker([current.lat, current.lon], radius=17, color=HIGHLIGHT, weight=4,
                        fill=False).add_to(fmap)
use_local_assets(fmap)
st_folium(fmap, height=320, use_container_width=True, returned_objects=[],
          key=f"crew_map_{crew}")
st.caption("Square: depot. Numbers: stop order. Red ring: the stop you are working on.")

# --------------------------------------------------------------------- every stop
st.subheader("All stops", anchor=False)
for s in view.stops:
    line = (f"{ICONS.get(s.status, '')} **{s.sequence}** · {local_time(s.eta, tz)} · "
            f"{escape_markdown(s.address or '(no address)')}")
    if s.status in (wf.STOP_DONE, wf.STOP_CANT):
        why = wf.CANT_COMPLETE_REASONS.get(s.reason or "", "")
        line += f" · *{escape_markdown(STATUS_LABELS.get(s.status, s.status))}"
        line += f": {escape_markdown(why)}*" if why else "*"
    st.markdown(line)
others = [s for s in open_stops if current is None or s.stop_id != current.stop_id]
if others:
    by_id = {s.stop_id: s for s in others}
    chosen = st.selectbox(
        "Do another stop first",
        list(by_id),
        index=None,
        format_func=lambda i: f"#{by_id[i].sequence} · {by_id[i].address or '(no address)'}",
        placeholder="Pick a stop",
        key=f"crew_pick_{current.stop_id if current else 0}",
    )
    if chosen is not None:
        st.session_state["crew_focus"] = chosen
        st.rerun()

# ------------------------------------------------------------ the route to download
cols = st.columns(2)
for col, (fmt, label, icon) in zip(cols, [("csv", "My route (CSV)", ":material/table:"),
                                          ("gpx", "My route (GPX)", ":material/route:")],
                                   strict=True):
    mime, ext = ROUTE_FORMATS[fmt]
    col.download_button(label, route_export([view], fmt, tz, category_labels=labels),
                        export_name(day, view.plan_id, crew, ext), mime=mime, icon=icon,
                        width="stretch", on_click="ignore", key=f"crew_export_{fmt}")
