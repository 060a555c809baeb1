"""Plan the day, adjust the routes and assign them to crews."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from app_pages.common import pack, require_page, unit_of_work
from dispatch.auth import Role
from dispatch.errors import DispatchError
from dispatch.planning import Plan
from dispatch.services import workflow as wf
from dispatch.services.planning import (
    default_plan_date,
    plan_for_day,
    plan_map_geojson,
    urgent_candidates,
)
from geo.map_assets import use_local_assets
from geo.maps import base_map, crew_colours, district_layer, route_layer

principal = require_page(Role.ADMIN, Role.SUPERVISOR)
city = pack()
st.title("Plan and assign")


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.1f} h"


def _run(action: str, fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """Run one service call; show its error instead of a traceback."""
    try:
        with unit_of_work() as uow:
            result = fn(uow, *args, **kwargs)
    except DispatchError as err:
        st.error(f"{action}: {err}")
        return
    if isinstance(result, wf.PlanChange) and result.crews():
        st.session_state["flash"] = f"{action}: routes of {', '.join(result.crews())} changed"
    else:
        st.session_state["flash"] = f"{action}: done"
    st.rerun()


if "flash" in st.session_state:
    st.success(st.session_state.pop("flash"))

with unit_of_work() as uow:
    suggested = default_plan_date(uow, city)

with st.sidebar:
    st.header("Day and crews")
    day = st.date_input("Service date", value=suggested or date.today())
    districts: list[str] = []
    if city.has_districts:
        districts = st.multiselect(city.district_label + "s", list(city.district_ids),
                                   placeholder="All districts")
    crew_names = [c.name for c in city.crews
                  if not districts or not c.districts or set(districts) & set(c.districts)]
    absent = st.multiselect("Absent today", crew_names)
    time_limit = st.slider("Solver time per district (s)", 1, 30, 3)
    seed = st.number_input("Seed", min_value=0, value=1, step=1)
    sweep = st.toggle("Add proactive sweeps of hot spots", value=False,
                      help="Optional low-priority stops at the strongest recent graffiti and "
                           "dumping hot spots (Getis-Ord Gi*); crews take them only when "
                           "their day has room.")
    run = st.button("Plan the day", type="primary", width="stretch")

if run and isinstance(day, date):
    bar = st.progress(0.0, text="Planning district by district…")

    def progress(done: int, total: int) -> None:
        """Show how many district sub-problems are solved."""
        bar.progress(done / max(total, 1), text=f"Planned {done} of {total} sub-problems")

    try:
        with unit_of_work() as uow:
            summary = plan_for_day(uow, city, day, districts=districts or None, absent=absent,
                                   seed=int(seed), time_limit_s=float(time_limit),
                                   progress=progress, sweep=sweep)
    except DispatchError as err:
        st.error(f"Planning failed: {err}")
    else:
        st.session_state["plan_id"] = summary.plan_id
        st.session_state["flash"] = " · ".join(summary.lines()[:2])
        st.rerun()

if not isinstance(day, date):
    st.stop()
with unit_of_work() as uow:
    plans = wf.plans_for_day(uow, city.name, day)
    options = {p.id: f"#{p.id} · {p.status} · by {p.created_by} · "
                     f"{p.created_at.astimezone(city.timezone):%H:%M}"
                     + (f" · districts {', '.join(p.districts)}" if p.districts else
                        " · whole city") for p in plans}
if not plans:
    st.info(f"No plan for {day:%A %d %B %Y} yet. Choose the districts and crews on the left "
            "and press **Plan the day**.")
    st.stop()

chosen = st.session_state.get("plan_id")
plan_id = st.selectbox("Plan", list(options), format_func=options.__getitem__,
                       index=list(options).index(chosen) if chosen in options else 0)
with unit_of_work() as uow:
    details = wf.plan_details(uow, plan_id)
status, version = details.status, details.version
locked = details.locked
labels = details.labels
plan: Plan = details.plan


def _label(key: str) -> str:
    """Return the city's request id and address of a plan stop key (the request's pk)."""
    found = labels.get(int(key))
    return f"{found[0]} · {found[1]}" if found else key


totals = plan.totals()
cols = st.columns(5)
cols[0].metric("Stops planned", f"{totals['stops_planned']:,}")
cols[1].metric("Unplanned", f"{totals['stops_unplanned']:,}")
cols[2].metric("Crews used", f"{totals['routes_used']} / {totals['routes']}")
cols[3].metric("Drive", _hours(totals["drive_s"]))
cols[4].metric("Status", status)

colours = crew_colours([r.crew for r in plan.routes])
fmap = base_map([float(b) for b in city.districts.total_bounds]
               if city.has_districts and city.districts is not None
               else list(city.boundary.bounds))
if city.has_districts and city.districts is not None:
    shown = city.districts
    if districts:
        shown = shown[shown["district"].isin(districts)]
    district_layer(shown).add_to(fmap)
route_layer(plan_map_geojson(plan, city.depots, labels), colours,
            category_labels=city.category_labels).add_to(fmap)
points = [(p.stop.lon, p.stop.lat) for r in plan.routes for p in r.stops
          if p.stop.lon is not None and p.stop.lat is not None]
points += [(r.depot_lon, r.depot_lat) for r in plan.routes if r.stops]
if points:
    lons, lats = [x for x, _ in points], [y for _, y in points]
    # Leaflet wants [[south, west], [north, east]]: (lon, lat) -> (lat, lon)
    fmap.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]])
st_folium(use_local_assets(fmap), height=560, use_container_width=True, returned_objects=[],
          key=f"plan_map_{plan_id}_{version}")

tab_routes, tab_unplanned, tab_adjust = st.tabs(["Routes", "Unplanned", "Adjust and assign"])
with tab_routes:
    used = [r for r in plan.routes if r.stops]
    st.caption(f"{len(used)} routes with stops; {len(plan.routes) - len(used)} crews idle.")
    for route in used:
        head = (f"{route.crew} · {len(route.stops)} stops · drive {_hours(route.drive_s)} · "
                f"service {_hours(route.service_s)} · load {route.load}/{route.capacity}")
        with st.expander(head):
            st.progress(min(route.load / max(route.capacity, 1), 1.0),
                        text=f"load {route.load} of {route.capacity}")
            st.dataframe(pd.DataFrame([{
                "#": i + 1,
                "request": _label(p.request_id),
                "category": p.stop.category,
                "arrival": p.arrival.astimezone(city.timezone).strftime("%H:%M"),
                "departure": p.departure.astimezone(city.timezone).strftime("%H:%M"),
                "locked": "🔒" if int(p.request_id) in locked else "",
                "status": details.stop_status.get(int(p.request_id), ""),
            } for i, p in enumerate(route.stops)]), hide_index=True, width="stretch")
            if route.brk is not None:
                st.caption(f"Lunch {route.brk.start.astimezone(city.timezone):%H:%M}–"
                           f"{route.brk.end.astimezone(city.timezone):%H:%M} after stop "
                           f"{route.brk.after_stops}")
with tab_unplanned:
    if plan.unplanned:
        st.dataframe(pd.DataFrame([{"request": _label(u.request_id),
                                    "category": u.stop.category,
                                    "district": u.stop.district, "reason": str(u.reason)}
                                   for u in plan.unplanned]),
                     hide_index=True, width="stretch")
    else:
        st.success("Every stop of the day is on a route.")

with tab_adjust:
    confirm = True
    if status == "assigned":
        st.warning("This plan is already assigned to the crews. Changes are sent to the crews "
                   "whose routes change.")
        confirm = st.checkbox("I confirm re-planning an assigned plan")
    elif status == "superseded":
        st.info("This plan was superseded by a newer assigned plan; open the newest one.")
        st.stop()
    stop_ids = [int(p.request_id) for r in plan.routes for p in r.stops]
    crew_of = {int(p.request_id): r.crew for r in plan.routes for p in r.stops}
    skills_of = {r.crew: r.skills for r in plan.routes}
    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Move or lock a stop")
        rid = st.selectbox("Stop", stop_ids,
                           format_func=lambda r: f"{_label(str(r))} · {crew_of[r]}"
                           + (" 🔒" if r in locked else ""))
        if rid is not None:
            skills = skills_of[crew_of[rid]]
            same_skill = [r.crew for r in plan.routes
                          if r.crew != crew_of[rid] and skills_of[r.crew] == skills]
            target = st.selectbox("Move to crew", same_skill)
            position = st.number_input("At position (0 = anywhere)", min_value=0, value=0)
            if st.button("Move stop", disabled=not (target and confirm)):
                _run("Move", wf.move_stop, plan_id, rid, target,
                     position=int(position) - 1 if position else None,
                     expected_version=version, confirm=status == "assigned")
            if rid in locked:
                if st.button("Unlock stop"):
                    _run("Unlock", wf.set_lock, plan_id, rid, False, expected_version=version)
            elif st.button("Lock stop to its crew"):
                _run("Lock", wf.set_lock, plan_id, rid, True, expected_version=version)
    with c2:
        st.subheader("Crews and urgent work")
        gone = st.selectbox("Remove a crew (breakdown, sickness)",
                            [r.crew for r in plan.routes if r.stops])
        if st.button("Remove crew and re-plan its stops", disabled=not (gone and confirm)):
            _run("Remove crew", wf.remove_crew, plan_id, gone, expected_version=version,
                 confirm=status == "assigned")
        with unit_of_work() as uow:
            urgent = urgent_candidates(uow, city, plan_id)
        pick = st.selectbox("Add an urgent request", list(urgent), format_func=urgent.__getitem__)
        if st.button("Add to today's plan", disabled=not (pick and confirm)):
            _run("Add urgent", wf.add_urgent_request, city, plan_id, pick,
                 expected_version=version, confirm=status == "assigned")
        if st.button("Re-optimise what is not locked", disabled=not confirm):
            _run("Re-optimise", wf.reoptimise, plan_id, expected_version=version,
                 confirm=status == "assigned")
    st.divider()
    if status == "draft":
        st.subheader("Assign")
        st.write("Assigning makes each route its crew's work for the day; the requests on "
                 "them become *scheduled*. Check what changes, then confirm.")
        try:
            with unit_of_work() as uow:
                outcome, lines = wf.preview_assignment(uow, plan_id)
        except DispatchError as err:
            st.error(f"Assign: {err}")
        else:
            with st.container(border=True):
                st.markdown("**What assigning this plan changes**")
                for line in lines:
                    st.markdown(f"- {line}")
            if outcome.disruptive:
                st.warning("This replaces work already given to crews. Read the list above "
                           "before you confirm.")
            agreed = st.checkbox("I have read what changes", value=not outcome.disruptive,
                                 key=f"agree_{plan_id}_{outcome.token}")
            if st.button("Assign routes to crews", type="primary", disabled=not agreed):
                _run("Assign", wf.assign_plan, plan_id, expected_version=version,
                     token=outcome.token)
