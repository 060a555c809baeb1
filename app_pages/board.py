"""Live board: how each crew's day stands, refreshed every few seconds."""

from __future__ import annotations

from datetime import date

import folium
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from app_pages.common import pack, require_page, streets_url, unit_of_work
from dispatch.auth import Role
from dispatch.errors import DispatchError
from dispatch.services import workflow as wf
from dispatch.services.board import Board, WaitingWork, day_board, plan_for
from dispatch.services.clock import clock_info
from geo.map_assets import use_local_assets
from geo.maps import base_map, district_layer

#: Seconds between refreshes of the board.
REFRESH_S = 10

principal = require_page(Role.ADMIN, Role.SUPERVISOR)
city = pack()
st.title("Live board")

with unit_of_work() as uow:
    today = clock_info(uow).now.astimezone(city.timezone).date()
day: date = st.date_input("Service date", value=today, key="board_day")
if "board_flash" in st.session_state:
    st.success(st.session_state.pop("board_flash"))


def _minutes(behind_s: int | None) -> str:
    if behind_s is None:
        return "—"
    m = round(behind_s / 60)
    return "on time" if m == 0 else (f"{m} min behind" if m > 0 else f"{-m} min ahead")


def _crew_table(board: Board) -> pd.DataFrame:
    tz = city.timezone
    return pd.DataFrame([{
        "crew": c.crew, "district": c.district or "", "done": c.done,
        "can't complete": c.cant_complete, "remaining": c.remaining,
        "progress": (c.done + c.cant_complete) / c.total if c.total else 0.0,
        "against plan": _minutes(c.behind_s),
        "last action": (f"{c.last_action_at.astimezone(tz):%H:%M}"
                        if c.last_action_at else "—"),
    } for c in board.crews if c.total])


def _last_closed_map(board: Board, picked: str | None) -> None:
    fmap = base_map(list(city.boundary.bounds), streets_url=streets_url(city))
    if city.has_districts and city.districts is not None:
        district_layer(city.districts).add_to(fmap)
    points = []
    for c in board.crews:
        if c.last_closed_lon is None or c.last_closed_lat is None:
            continue
        chosen = c.crew == picked
        # folium wants (lat, lon): (lon, lat) -> (lat, lon)
        folium.CircleMarker(
            [c.last_closed_lat, c.last_closed_lon], radius=10 if chosen else 6,
            color="#c0392b" if chosen else "#1f4e79", weight=3 if chosen else 1,
            fill=True, fill_opacity=0.7,
            tooltip=(f"{c.crew}: {c.done + c.cant_complete} of {c.total} closed, last at "
                     f"{c.last_action_at.astimezone(city.timezone):%H:%M}"
                     if c.last_action_at else c.crew),
        ).add_to(fmap)
        points.append((c.last_closed_lon, c.last_closed_lat))
    if points:
        lons, lats = zip(*points, strict=True)
        # fit_bounds wants [[south, west], [north, east]] as (lat, lon)
        fmap.fit_bounds([[min(lats) - 0.01, min(lons) - 0.01],
                         [max(lats) + 0.01, max(lons) + 0.01]])
    st_folium(use_local_assets(fmap), height=420, use_container_width=True,
              returned_objects=[], key="board_map")


def _add_to_route(board: Board, item: WaitingWork) -> None:
    plan_id = plan_for(board, item)
    if plan_id is None:
        st.error("Add to a route: no plan is assigned for the day.")
        return
    try:
        with unit_of_work() as uow:
            change = wf.add_urgent_request(uow, city, plan_id, item.request_pk, confirm=True)
    except DispatchError as err:
        st.error(f"Add to a route: {err}")
        return
    crews = change.named() or "no crew (it stays unplanned)"
    st.session_state["board_flash"] = f"{item.request_id} added: {crews}"
    st.rerun()


def _waiting(board: Board, title: str, items: tuple[WaitingWork, ...], key: str) -> None:
    st.subheader(f"{title} ({len(items)})")
    if not items:
        st.caption("Nothing waiting.")
        return
    st.dataframe(pd.DataFrame([{"request": w.request_id, "category": w.category,
                                "address": w.address, "why": w.why} for w in items]),
                 hide_index=True, use_container_width=True)
    pick = st.selectbox("Request", range(len(items)), key=f"{key}_pick",
                        format_func=lambda i: f"{items[i].address} · {items[i].category} · "
                                              f"{items[i].request_id}")
    if st.button("Add to a route", key=f"{key}_add", disabled=not board.plan_ids):
        _add_to_route(board, items[pick])


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    """Draw the part of the page that refreshes itself (selections live in session state)."""
    try:
        with unit_of_work() as uow:
            board = day_board(uow, city, day)
    except DispatchError as err:
        st.error(str(err))
        return
    st.caption(f"As of {board.now.astimezone(city.timezone):%H:%M:%S}; refreshes every "
               f"{REFRESH_S} s.")
    if not board.crews:
        st.info(f"No plan is assigned for {day:%A %d %B %Y}. Plan and assign it on "
                "*Plan and assign*.")
    else:
        done = sum(c.done for c in board.crews)
        cant = sum(c.cant_complete for c in board.crews)
        left = sum(c.remaining for c in board.crews)
        late = sum(1 for c in board.crews if (c.behind_s or 0) >= 15 * 60)
        cols = st.columns(4)
        cols[0].metric("Done", f"{done:,}")
        cols[1].metric("Can't complete", f"{cant:,}")
        cols[2].metric("Remaining", f"{left:,}")
        cols[3].metric("Crews 15+ min behind", f"{late:,}")
        table = _crew_table(board)
        idle = len(board.crews) - len(table)
        if idle:
            st.caption(f"{idle} crew(s) on the plan have no stops today and are not listed.")
        picked_rows = st.dataframe(
            table, hide_index=True, use_container_width=True, key="board_crews",
            on_select="rerun", selection_mode="single-row",
            column_config={"progress": st.column_config.ProgressColumn(
                "progress", min_value=0.0, max_value=1.0, format="percent")})
        rows = picked_rows.selection.rows if picked_rows is not None else []
        picked = str(table.iloc[rows[0]]["crew"]) if rows else None
        st.subheader("Where each crew last closed a stop")
        _last_closed_map(board, picked)
    left_col, right_col = st.columns(2)
    with left_col:
        _waiting(board, "New work reported today", board.new_work, "board_new")
    with right_col:
        _waiting(board, "Unplanned on the day's plan", board.unplanned, "board_unplanned")


live()
