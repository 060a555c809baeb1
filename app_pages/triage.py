"""Triage: open requests as a table and a map; bulk actions for supervisors."""

from __future__ import annotations

import re
import sys
from pathlib import Path

# Run directly (`streamlit run app_pages/<page>.py`, AppTest.from_file) the script's own
# folder is on sys.path, not the repository root that holds app_pages/ and dispatch/.
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typing import Any

import folium
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from app_pages.common import pack, require_page, streets_url, unit_of_work
from dispatch.auth import SUPERVISING
from dispatch.errors import DispatchError
from dispatch.services.intake import click_lonlat, nearest_request
from dispatch.services.queries import OPEN_STATUSES
from dispatch.services.requests import (
    PRIORITIES,
    cancel,
    change_category,
    mark_duplicate,
    resolve_conflict,
    set_priority,
    source_conflicts,
)
from dispatch.services.triage import (
    TRIAGE_LIMIT,
    TriageFilter,
    events_frame,
    request_pk,
    triage_counts,
    triage_frame,
)
from geo.geocoding import precision_label
from geo.map_assets import use_local_assets
from geo.maps import requests_map

POPUP_FIELDS = ("status", "district", "address", "age (h)", "SLA due", "priority")
SLA_CHOICES = {"All": "all", "Overdue": "overdue", "Due within 24 h": "due_24h"}
HIGHLIGHT = "#ffd400"
# Request ids come from files: shown as literal Markdown.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")

st.set_page_config(page_title="Triage · Curbside", layout="wide")
principal = require_page(*SUPERVISING)
city = pack()
ss = st.session_state
ss.setdefault("triage_picks", [])
ss.setdefault("triage_table_gen", 0)
st.title("Triage")
if ss.get("triage_flash"):
    st.toast(ss.pop("triage_flash"), icon="✅")

labels = city.category_labels
with st.sidebar:
    st.header("Filters")
    chosen_categories = st.multiselect(
        "Category", options=list(labels), format_func=lambda code: labels[code],
        placeholder="All categories", key="triage_categories")
    chosen_districts: list[str] = []
    if city.has_districts:
        chosen_districts = st.multiselect(
            city.district_label, options=list(city.district_ids), placeholder="All districts",
            key="triage_districts")
    chosen_statuses = st.multiselect(
        "Status", options=list(OPEN_STATUSES), placeholder="All open statuses",
        format_func=lambda s: s.replace("_", " "), key="triage_statuses")
    min_age_days = st.number_input("Older than (days)", min_value=0.0, value=0.0, step=1.0,
                                   key="triage_min_age")
    sla_choice = st.radio("SLA", list(SLA_CHOICES), horizontal=True, key="triage_sla")

def _md(text: str) -> str:
    """Return text from files as literal Markdown."""
    return _MARKDOWN.sub(r"\\\1", text)


with unit_of_work() as uow:
    conflicts = source_conflicts(uow, limit=200)
if conflicts:
    with st.expander(f"The city's system disagrees about {len(conflicts)} "
                     f"request{'s' if len(conflicts) != 1 else ''} (local work kept)",
                     expanded=True, icon=":material/sync_problem:"):
        st.caption("A re-import said something else than the work in hand here (closed "
                   "while a crew is on it, say). Curbside kept its own state; decide each.")
        for c in conflicts[:20]:
            a, b, c1, c2 = st.columns([3, 3, 1, 1])
            a.markdown(f"**{_md(str(c['request_id']))}** · "
                       f"{_md(labels.get(c['category'], c['category']))}")
            b.markdown(f"here: *{str(c.get('local', '')).replace('_', ' ')}* · source: "
                       f"*{str(c.get('source', '')).replace('_', ' ')}*")
            for col, take, label in ((c1, False, "Keep ours"), (c2, True, "Take source")):
                if col.button(label, key=f"conflict_{c['id']}_{take}"):
                    try:
                        with unit_of_work() as uow:
                            now_status = resolve_conflict(uow, int(c["id"]), take_source=take,
                                                          expected_version=int(c["version"]))
                    except DispatchError as err:
                        st.error(str(err))
                    else:
                        ss["triage_flash"] = (f"{c['request_id']}: "
                                              f"{now_status.replace('_', ' ')}")
                        st.rerun()
        if len(conflicts) > 20:
            st.caption(f"... and {len(conflicts) - 20} more; they stay here until decided.")

flt = TriageFilter(
    categories=chosen_categories or None,
    districts=chosen_districts or None,
    statuses=chosen_statuses or None,
    min_age_h=float(min_age_days) * 24.0,
    sla=SLA_CHOICES[sla_choice],
)
with unit_of_work() as uow:
    frame = triage_frame(uow, city, flt)
    counts = triage_counts(uow, city, flt)
# Row versions of the table the supervisor was looking at when they clicked (the previous
# run): an action on a request someone else changed since then is refused
# (ConcurrentEditError) instead of overwriting the other change.
versions_shown: dict[int, int] = ss.get("triage_versions_shown", {})
ss["triage_versions_shown"] = {int(k): int(v) for k, v in zip(frame["id"], frame["version"],
                                                              strict=True)}

if frame.empty:
    st.info("No open request matches these filters.")
    st.stop()


def _local(ts: Any) -> str:
    if ts is None or pd.isna(ts):
        return ""
    return str(ts.astimezone(city.timezone).strftime("%Y-%m-%d %H:%M"))


located = frame[frame["lon"].notna()]
cols = st.columns(4)
cols[0].metric("Open requests", f"{counts.total:,}")
cols[1].metric("Overdue", f"{counts.overdue:,}")
cols[2].metric("Due within 24 h", f"{counts.due_soon:,}")
cols[3].metric("Without location", f"{counts.unlocated:,}")
if counts.total > len(frame):
    st.caption(f"Showing the oldest {len(frame):,} of {counts.total:,} (at most "
               f"{TRIAGE_LIMIT:,}); narrow the filters to see the others.")

table = pd.DataFrame({
    "request id": frame["request_id"],
    "category": frame["category_label"],
    "status": frame["status"].str.replace("_", " "),
    "district": frame["district"],
    "address": frame["address"],
    "age (h)": frame["age_h"],
    "SLA due": frame["sla_due"].map(_local),
    "overdue": frame["sla_left_h"] < 0,
    "priority": frame["priority_label"],
    "precision": frame["precision"].map(precision_label),
})
left, right = st.columns([3, 2])
with left:
    event = st.dataframe(
        table, on_select="rerun", selection_mode="multi-row", hide_index=True,
        width="stretch", height=520, key=f"triage_table_{ss['triage_table_gen']}",
        column_config={
            "request id": st.column_config.TextColumn(width="medium"),
            "category": st.column_config.TextColumn(width="medium"),
            "status": st.column_config.TextColumn(width="small"),
            "district": st.column_config.TextColumn(width="small"),
            "address": st.column_config.TextColumn(width="medium"),
            "age (h)": st.column_config.NumberColumn(format="%.1f", width="small"),
            "SLA due": st.column_config.TextColumn(width="medium"),
            "overdue": st.column_config.CheckboxColumn(width="small"),
            "priority": st.column_config.TextColumn(width="small"),
            "precision": st.column_config.TextColumn(width="small"),
        },
    )
table_pks = [int(frame["id"].iloc[i]) for i in event.selection.rows if i < len(frame)]
shown = set(frame["id"].astype(int))
picks = [pk for pk in ss["triage_picks"] if pk in shown]
selected = list(dict.fromkeys(table_pks + picks))

with right:
    colours = {labels.get(c.code, c.code): c.colour for c in city.categories.values()}
    for_map = located.assign(
        category=located["category_label"], **{
            "age (h)": located["age_h"], "SLA due": located["sla_due"].map(_local),
            "priority": located["priority_label"]})
    fmap = requests_map(for_map, city.districts, colours, POPUP_FIELDS,
                        streets_url=streets_url(city))
    if len(located):
        # Show the filtered requests, not the whole city: refit the map's own FitBounds
        # (a second fit_bounds element is ignored by st_folium).
        for child in fmap._children.values():
            if isinstance(child, folium.map.FitBounds):
                # (lon, lat) -> (lat, lon) for Leaflet
                child.bounds = [[float(located["lat"].min()), float(located["lon"].min())],
                                [float(located["lat"].max()), float(located["lon"].max())]]
                child.options = {"maxZoom": 16, "padding": [24, 24]}
    chosen = located[located["id"].isin(selected)]
    # above the cluster markers (markerPane is 600); not interactive, so a click on a
    # highlighted request still reaches the map and toggles it. On the map always, so
    # that a pick changes only the "Selected" layer: the map frame, its zoom and its
    # view stay as the supervisor left them (it redrew at the whole city before)
    folium.map.CustomPane("selected", z_index=650, pointer_events=False).add_to(fmap)
    # control=False: requests_map's layer control is already on the map, and one
    # naming a group defined after it fails in the browser (setZIndex of undefined).
    group = folium.FeatureGroup(name="Selected", show=True, control=False)
    for lon, lat in zip(chosen["lon"], chosen["lat"], strict=True):
        # (lon, lat) -> (lat, lon) for Leaflet
        folium.CircleMarker([lat, lon], radius=12, color="#000000", weight=3, fill=True,
                            fill_color=HIGHLIGHT, fill_opacity=0.6, pane="selected",
                            interactive=False).add_to(group)
    out = st_folium(use_local_assets(fmap), key="triage_map", height=520,
                    use_container_width=True, feature_group_to_add=group,
                    returned_objects=["last_clicked", "last_object_clicked",
                                      "last_object_clicked_count"])
    st.caption("Click a request on the map to add it to the selection (again to remove it).")
clicks = out or {}
click = clicks.get("last_object_clicked") or clicks.get("last_clicked")
# a second click on the same marker is new too: the component counts object clicks
seen = (clicks.get("last_clicked"), clicks.get("last_object_clicked"),
        clicks.get("last_object_clicked_count"))
# st_folium gives Leaflet's {"lat", "lng"}: click_lonlat does (lat, lon) -> (lon, lat)
point = click_lonlat(click)
if point is not None and seen != ss.get("triage_click_seen"):
    ss["triage_click_seen"] = seen
    pk = nearest_request(located, *point)
    if pk is not None:
        ss["triage_picks"] = ([p for p in ss["triage_picks"] if p != pk]
                              if pk in ss["triage_picks"] else [*ss["triage_picks"], pk])
        st.rerun()

if not selected:
    st.caption("Select requests in the table or on the map to act on them.")
    st.stop()

by_pk = frame.set_index("id")
seen_versions = {pk: versions_shown.get(pk, int(by_pk.loc[pk, "version"])) for pk in selected}
ids = [str(by_pk.loc[pk, "request_id"]) for pk in selected]
st.markdown(f"**{len(selected)} selected:** "
            + ", ".join(_MARKDOWN.sub(r"\\\1", i) for i in ids[:20])
            + (f" and {len(ids) - 20} more" if len(ids) > 20 else ""))
if picks:
    st.button("Clear map picks", key="triage_clear_picks",
              on_click=lambda: ss.update(triage_picks=[]))


def _done(message: str) -> None:
    """Remember the toast, reset the selection and show the new state."""
    ss["triage_flash"] = message
    ss["triage_picks"] = []
    ss["triage_table_gen"] += 1
    st.rerun()


cat_tab, dup_tab, cancel_tab, prio_tab = st.tabs(
    ["Change category", "Mark duplicate", "Cancel", "Set priority"])
with cat_tab, st.form("triage_category_form"):
    new_category = st.selectbox("New category", options=list(labels),
                                format_func=lambda code: labels[code], key="triage_new_category")
    if st.form_submit_button(f"Change category of {len(selected)}"):
        try:
            with unit_of_work() as uow:
                n = change_category(uow, city, selected, new_category, expected=seen_versions)
        except DispatchError as err:
            st.error(str(err))
        else:
            _done(f"{n} request(s) moved to {labels[new_category]}")
with dup_tab, st.form("triage_duplicate_form"):
    original_id = st.text_input("Duplicate of request id", key="triage_original",
                                placeholder="e.g. 1-1523616161")
    if st.form_submit_button(f"Mark {len(selected)} as duplicate"):
        try:
            with unit_of_work() as uow:
                n = mark_duplicate(uow, selected, request_pk(uow, original_id),
                                   expected=seen_versions)
        except DispatchError as err:
            st.error(str(err))
        else:
            _done(f"{n} request(s) marked as duplicates of "
                  + _MARKDOWN.sub(r"\\\1", original_id.strip()))
with cancel_tab, st.form("triage_cancel_form"):
    reason = st.text_area("Reason (required)", key="triage_reason", max_chars=500)
    if st.form_submit_button(f"Cancel {len(selected)}"):
        if not reason.strip():
            st.error("Give a reason for the cancellation.")
        else:
            try:
                with unit_of_work() as uow:
                    n = cancel(uow, selected, reason, expected=seen_versions)
            except DispatchError as err:
                st.error(str(err))
            else:
                _done(f"{n} request(s) cancelled")
with prio_tab, st.form("triage_priority_form"):
    priority = st.radio("Priority", options=list(PRIORITIES), horizontal=True,
                        format_func=lambda p: PRIORITIES[p], key="triage_priority")
    if st.form_submit_button(f"Set priority of {len(selected)}"):
        try:
            with unit_of_work() as uow:
                n = set_priority(uow, selected, priority, expected=seen_versions)
        except DispatchError as err:
            st.error(str(err))
        else:
            _done(f"{n} request(s) set to {PRIORITIES[priority]}")

if len(selected) == 1:
    pk = selected[0]
    title = "Events of " + _MARKDOWN.sub(r"\\\1", ids[0])
    with st.expander(title, expanded=True):
        with unit_of_work() as uow:
            events = events_frame(uow, pk, city)
        row = by_pk.loc[pk]
        if row["description"]:
            st.text(f"Description: {row['description']}")
        if events.empty:
            st.caption("No events recorded.")
        else:
            st.dataframe(events, hide_index=True, width="stretch",
                         key="triage_events")
