"""Plan the day, adjust the routes and assign them to crews."""

from __future__ import annotations

import zlib
from datetime import date

import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from app_pages.common import pack, require_page, streets_url, unit_of_work
from dispatch.auth import Principal, Role
from dispatch.errors import DispatchError
from dispatch.planning import Plan
from dispatch.planning.targets import MoveTarget, first_with_room, rank_move_targets
from dispatch.services import workflow as wf
from dispatch.services.planning import (
    default_plan_date,
    plan_for_day,
    plan_map_geojson,
    route_progress,
    urgent_candidates,
)
from dispatch.state import StopStatus
from geo.errors import GeoError
from geo.map_assets import use_local_assets
from geo.map_select import lasso_control, points_in_shape, tooltip_field
from geo.maps import base_map, crew_colours, district_layer, route_layer

#: Open requests offered as urgent work, newest first, at most.
URGENT_SHOWN = 200

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
        # a re-optimise changes dozens of routes: name a few, count the rest
        st.session_state["flash"] = f"{action}: routes of {result.named()} changed"
    else:
        st.session_state["flash"] = f"{action}: done"
    st.rerun()


# always one slot for the confirmation, so the elements below keep their places (the
# map frame stays the same one across an edit)
flash_slot = st.empty()
if "flash" in st.session_state:
    flash_slot.success(st.session_state.pop("flash"))

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
    sweep = st.toggle("Add proactive sweeps of hot spots", value=False,
                      help="Optional low-priority stops at the strongest recent graffiti and "
                           "dumping hot spots (Getis-Ord Gi*); crews take them only when "
                           "their day has room.")
    with st.expander("Advanced"):
        time_limit = st.slider("Solver time per district (s)", 1, 30, 3, key="plan_time_limit",
                               help="Longer can find slightly shorter routes.")
        seed = st.number_input("Seed", min_value=0, value=1, step=1, key="plan_seed",
                               help="The same seed and data give the same plan.")
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
    options = {p.id: f"#{p.id} · {p.status} · by {Principal.who(p.created_by)} · "
                     f"{p.created_at.astimezone(city.timezone):%H:%M}"
                     + (f" · districts {', '.join(p.districts)}" if p.districts else
                        " · whole city") for p in plans}
if not plans:
    st.info(f"No plan for {day:%A %d %B %Y} yet. Choose the districts and crews in the "
            "sidebar (the » button on a phone) and press **Plan the day**.")
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


category_labels = city.category_labels
territories = {c.name: c.districts for c in city.crews}
stops_of = {int(p.request_id): p.stop for r in plan.routes for p in r.stops}
crew_of = {int(p.request_id): r.crew for r in plan.routes for p in r.stops}
pk_by_request_id = {found[0]: pk for pk, found in labels.items() if pk in stops_of}


def _label(key: str) -> str:
    """Return a plan stop's address and the city's request id (key: the request's pk)."""
    found = labels.get(int(key))
    return f"{found[1] or 'no address'} · {found[0]}" if found else key


def _stop_option(pk: int, crew: str) -> str:
    """Return how the stop picker names a stop: address · category · crew · request id."""
    found = labels.get(pk)
    if found is None:
        return f"{pk} · {crew}"
    rid, address, category = found
    return (f"{address or 'no address'} · {category_labels.get(category, category)} · {crew}"
            f" · {rid}" + (" 🔒" if pk in locked else ""))


totals = plan.totals()
cols = st.columns(5)
cols[0].metric("Stops planned", f"{totals['stops_planned']:,}")
cols[1].metric("Unplanned", f"{totals['stops_unplanned']:,}")
cols[2].metric("Crews used", f"{totals['routes_used']} / {totals['routes']}")
cols[3].metric("Drive", _hours(totals["drive_s"]))
cols[4].metric("Status", status)


@st.fragment
def routes_and_map() -> None:
    """Show the route list and the map; choosing a route re-runs only this part."""
    progress = [r for r in route_progress(plan, details.stop_status) if r.stops]
    map_slot = st.container()
    st.subheader("Routes")
    st.caption("Choose a route to show it alone on the map, with its stops in order.")
    frame = pd.DataFrame([{
        "crew": r.crew,
        city.district_label.lower(): r.district or "",
        "stops": r.stops,
        "load": f"{r.load}/{r.capacity}",
        "drive": _hours(r.drive_s),
        "service": _hours(r.service_s),
        "done": r.done,
        "can't complete": r.cant_complete,
        "remaining": r.remaining,
    } for r in progress])
    # the selection is a row number: keyed by the crews listed, a list that changed (a
    # crew got or lost its last stop) is a new table, which starts on the row of the
    # crew chosen before (remembered by name), so no other crew is shown in its place
    listed = zlib.crc32("|".join(r.crew for r in progress).encode())
    remembered = st.session_state.get(f"route_crew_{plan_id}")
    row_of = {r.crew: i for i, r in enumerate(progress)}
    event = st.dataframe(frame, hide_index=True, width="stretch", on_select="rerun",
                         selection_mode="single-row", key=f"route_list_{plan_id}_{listed}",
                         selection_default={"selection": {"rows": [row_of[remembered]]}}
                         if remembered in row_of else None)
    rows = event.selection.rows if event is not None else []
    chosen = progress[rows[0]].crew if rows and rows[0] < len(progress) else None
    st.session_state[f"route_crew_{plan_id}"] = chosen
    route = next((r for r in plan.routes if r.crew == chosen), None)
    with map_slot:
        others = "dim"
        if chosen is not None:
            others = "dim" if st.toggle("Show the other routes, dimmed", value=False,
                                        key="route_dim_others") else "hide"
        colours = crew_colours([r.crew for r in plan.routes])
        fmap = base_map([float(b) for b in city.districts.total_bounds]
                        if city.has_districts and city.districts is not None
                        else list(city.boundary.bounds), streets_url=streets_url(city))
        if city.has_districts and city.districts is not None:
            shown = city.districts
            if districts:
                shown = shown[shown["district"].isin(districts)]
            district_layer(shown).add_to(fmap)
        # the routes go in as a layer of their own: after an edit only that layer is
        # swapped inside the map already drawn (the map itself is not sent again)
        routes_drawn = route_layer(plan_map_geojson(plan, city.depots, labels), colours,
                                   category_labels=category_labels, highlight=chosen,
                                   others=others,
                                   chosen=[(labels.get(pk) or (str(pk), "", ""))[0]
                                           for pk in _on_map()])
        map_key = f"plan_map_{plan_id}_{chosen}_{others}"
        fitted = [route] if route is not None else plan.routes
        points = [(p.stop.lon, p.stop.lat) for r in fitted for p in r.stops
                  if p.stop.lon is not None and p.stop.lat is not None]
        points += [(r.depot_lon, r.depot_lat) for r in fitted if r.stops]
        if points and f"{map_key}_view" not in st.session_state:
            lons, lats = [x for x, _ in points], [y for _, y in points]
            # Leaflet wants [[south, west], [north, east]]: (lon, lat) -> (lat, lon)
            st.session_state[f"{map_key}_view"] = [[min(lats), min(lons)],
                                                   [max(lats), max(lons)]]
        if f"{map_key}_view" in st.session_state:
            # the view chosen when this map first opened: an edit does not move it (and
            # the map stays the same one, its routes layer swapped)
            fmap.fit_bounds(st.session_state[f"{map_key}_view"])
        lasso_control(fmap, title="Draw around stops to choose them for a move")
        shown_pks = [pk for pk in stops_of
                     if route is None or others == "dim" or crew_of[pk] == route.crew]
        _map_choice(st_folium(
            use_local_assets(fmap), feature_group_to_add=routes_drawn, height=560,
            use_container_width=True,
            returned_objects=["last_object_clicked_tooltip", "last_object_clicked_count",
                              "last_active_drawing"], key=map_key), shown_pks, map_key)
        st.caption("Click a stop to choose it (again to let it go), or press **Lasso** and "
                   "draw around stops; chosen stops can move to another crew together.")
    on_map = _on_map()
    if route is None:
        used = sum(1 for r in plan.routes if r.stops)
        st.caption(f"{used} routes with stops; {len(plan.routes) - used} crews idle.")
        _move_chosen(on_map)
        return
    st.markdown(f"**{route.crew}** · {len(route.stops)} stops · load {route.load}/"
                f"{route.capacity} · drive {_hours(route.drive_s)} · service "
                f"{_hours(route.service_s)}")
    if route.brk is not None:
        st.caption(f"Lunch {route.brk.start.astimezone(city.timezone):%H:%M}–"
                   f"{route.brk.end.astimezone(city.timezone):%H:%M} after stop "
                   f"{route.brk.after_stops}")
    picked = st.dataframe(pd.DataFrame([{
        "#": i + 1,
        "address": (labels.get(int(p.request_id)) or ("", "", ""))[1],
        "category": category_labels.get(p.stop.category, p.stop.category),
        "request": (labels.get(int(p.request_id)) or (p.request_id, "", ""))[0],
        "arrival": p.arrival.astimezone(city.timezone).strftime("%H:%M"),
        "departure": p.departure.astimezone(city.timezone).strftime("%H:%M"),
        "locked": "🔒" if int(p.request_id) in locked else "",
        "status": StopStatus(details.stop_status.get(int(p.request_id), "pending")).label,
    } for i, p in enumerate(route.stops)]), hide_index=True, width="stretch",
        on_select="rerun", selection_mode="multi-row", key=f"route_stops_{route.crew}")
    chosen_rows = picked.selection.rows if picked is not None else []
    ticked = [int(route.stops[i].request_id) for i in chosen_rows if i < len(route.stops)]
    if not ticked and not on_map:
        st.caption("Tick stops in the table, or choose them on the map, to move them to "
                   "another crew together.")
        return
    _move_chosen(list(dict.fromkeys([*on_map, *ticked])))


def _choice_key() -> str:
    """Return the session key of the stops chosen on this version of the plan's map."""
    return f"map_choice_{plan_id}_{version}"


def _on_map() -> list[int]:
    """Return the stops chosen on the map (request primary keys), in the order chosen."""
    return list(st.session_state.get(_choice_key(), []))


def _map_choice(out: dict[str, object] | None, shown: list[int], map_key: str) -> None:
    """Apply the map's last click (toggle one stop) or lasso (add every shown stop in it).

    The map (``map_key``) outlives edits of the plan, and so do its last click and
    lasso: each is applied once, when it is new.
    """
    out = out or {}
    key = _choice_key()
    picked: list[int] = list(st.session_state.get(key, []))
    clicks = out.get("last_object_clicked_count")
    if clicks and clicks != st.session_state.get(f"{map_key}_clicks"):
        st.session_state[f"{map_key}_clicks"] = clicks
        tip = out.get("last_object_clicked_tooltip")
        pk = pk_by_request_id.get(tooltip_field(tip if isinstance(tip, str) else None,
                                                "request id") or "")
        if pk is not None:
            picked = [p for p in picked if p != pk] if pk in picked else [*picked, pk]
    drawing = out.get("last_active_drawing")
    if isinstance(drawing, dict) and drawing != st.session_state.get(f"{map_key}_drawn"):
        st.session_state[f"{map_key}_drawn"] = drawing
        try:
            inside = points_in_shape({pk: (stops_of[pk].lon, stops_of[pk].lat)
                                      for pk in shown}, drawing)
        except GeoError as err:
            st.error(f"Lasso: {err}")
            inside = []
        picked = list(dict.fromkeys([*picked, *inside]))
    if picked != st.session_state.get(key, []):
        st.session_state[key] = picked
        # draw the choice on the map (only its routes layer is swapped)
        st.rerun(scope="fragment")


def _target_label(t: MoveTarget) -> str:
    """Return how a move target is offered: crew, distance, and the room it has left."""
    room = (f"{t.spare_s // 60} min free" if t.has_room
            else "full: no time left" if t.spare_s <= 0 else "full: no capacity left")
    if t.distance_m is None:
        return f"{t.crew} · {room}"
    where = "its nearest stop" if t.measured_from == "stop" else "its depot (no stops)"
    return f"{t.crew} · {t.distance_m / 1000:.1f} km to {where} · {room}"


def _move_chosen(pks: list[int]) -> None:
    """Offer to move the chosen stops (request primary keys) to one crew, nearest first."""
    if not pks:
        return
    with st.container(border=True):
        st.markdown(f"**{len(pks)} stop{'s' if len(pks) != 1 else ''} chosen**")
        st.dataframe(pd.DataFrame([{
            "address": (labels.get(pk) or ("", "", ""))[1] or "no address",
            "category": category_labels.get(stops_of[pk].category, stops_of[pk].category),
            "crew": crew_of[pk],
            "request": (labels.get(pk) or (str(pk), "", ""))[0],
        } for pk in pks]), hide_index=True, width="stretch", key="chosen_stops")
        if _on_map() and st.button("Clear the stops chosen on the map", key="map_clear"):
            st.session_state[_choice_key()] = []
            st.rerun(scope="fragment")
        # crews that may take every chosen stop, nearest first for the first of them
        ranked = [rank_move_targets(stops_of[pk], crew_of[pk], plan.routes, territories,
                                    exclude=details.removed) for pk in pks]
        common = set.intersection(*({t.crew for t in r} for r in ranked))
        offer = [t.crew for t in ranked[0] if t.crew in common]
        first = {t.crew: t for t in ranked[0]}
        if not offer:
            st.info("No other crew serves every chosen stop's category and "
                    f"{city.district_label.lower()}; choose fewer stops.")
            return
        to_crew = st.selectbox(f"Move the {len(pks)} chosen stop(s) to", offer,
                               index=first_with_room([first[c] for c in offer],
                                                     stops_of[pks[0]]),
                               key="move_many_target",
                               format_func=lambda c: _target_label(first[c]))
        sure = status != "assigned" or st.checkbox(
            "I confirm re-planning an assigned plan", key="move_many_confirm")
        if st.button(f"Move {len(pks)} stop(s)", disabled=not (to_crew and sure),
                     key="move_many"):
            _run("Move", wf.move_stops, plan_id, pks, to_crew,
                 expected_version=version, confirm=status == "assigned")


routes_and_map()

tab_unplanned, tab_adjust = st.tabs(["Unplanned", "Adjust and assign"])
with tab_unplanned:
    if plan.unplanned:
        st.dataframe(pd.DataFrame([{"request": _label(u.request_id),
                                    "category": category_labels.get(u.stop.category,
                                                                    u.stop.category),
                                    "district": u.stop.district, "reason": str(u.reason)}
                                   for u in plan.unplanned]),
                     hide_index=True, width="stretch")
    else:
        st.success("Every stop of the day is on a route.")

confirm = True
if status == "superseded":
    with tab_adjust:
        st.info("This plan was superseded by a newer assigned plan; open the newest one.")
    st.stop()


@st.fragment
def move_or_lock(confirm: bool) -> None:
    """Move or lock the picked stop; picking a stop re-runs only this part."""
    st.subheader("Move or lock a stop")
    crews_with_stops = [r.crew for r in plan.routes if r.stops]
    from_crew = st.selectbox("Crew", crews_with_stops, key="move_from_crew")
    # one route's stops, not the city's 2,000 in one list
    rid = st.selectbox("Stop", [pk for pk in stops_of if crew_of[pk] == from_crew],
                       key="move_stop", format_func=lambda r: _stop_option(r, crew_of[r]))
    if rid is None:
        return
    ranked = rank_move_targets(stops_of[rid], crew_of[rid], plan.routes, territories,
                               exclude=details.removed)
    by_crew = {t.crew: t for t in ranked}

    def target_label(crew: str) -> str:
        return _target_label(by_crew[crew])

    district = stops_of[rid].district
    if not ranked:
        st.info(f"No other crew serves {category_labels.get(stops_of[rid].category, '')} "
                f"in {city.district_label.lower()} {district or '(none)'}; the stop can "
                "only stay with its crew.")
    target = st.selectbox(f"Move to crew (serving {city.district_label.lower()} "
                          f"{district or '(none)'}, nearest first)", list(by_crew),
                          index=first_with_room(ranked, stops_of[rid]),
                          format_func=target_label,
                          key="move_target")
    position = st.number_input("At position (0 = anywhere)", min_value=0, value=0)
    if target is not None and not by_crew[target].fits(stops_of[rid]):
        # as planned it has no room for this stop; a re-plan may still fit it in
        st.caption(f"{target} has less time or capacity left as planned than this stop "
                   "needs: the move is refused unless re-planning its route makes room.")
    if st.button("Move stop", disabled=not (target and confirm)):
        _run("Move", wf.move_stop, plan_id, rid, target,
             position=int(position) - 1 if position else None,
             expected_version=version, confirm=status == "assigned")
    if rid in locked:
        if st.button("Unlock stop"):
            _run("Unlock", wf.set_lock, plan_id, rid, False, expected_version=version)
    elif st.button("Lock stop to its crew"):
        _run("Lock", wf.set_lock, plan_id, rid, True, expected_version=version)


@st.fragment
def crews_and_urgent(confirm: bool) -> None:
    """Remove a crew or add urgent work; choosing in here re-runs only this part."""
    st.subheader("Crews and urgent work")
    gone = st.selectbox("Remove a crew (breakdown, sickness)",
                        [r.crew for r in plan.routes if r.stops and
                         r.crew not in details.removed], key="remove_crew")
    release = False
    holds: list[wf.HeldStop] = []
    if gone:
        with unit_of_work() as uow:
            holds = wf.crew_holds(uow, plan_id, gone)
    releasable = [h for h in holds if h.releasable]
    if holds:
        with st.container(border=True):
            st.markdown(f"**{gone} holds {len(holds)} stop"
                        f"{'s' if len(holds) != 1 else ''}**")
            for h in holds:
                st.markdown(f"- #{h.sequence} {h.address or h.request_id} · "
                            f"{category_labels.get(h.category, h.category)}: {h.why}")
        if releasable:
            release = st.checkbox(
                f"Release the {len(releasable)} lock{'s' if len(releasable) != 1 else ''}"
                " above and re-plan those stops", key=f"release_{plan_id}_{gone}")
    if st.button("Remove crew and re-plan its stops",
                 disabled=not (gone and confirm and (release or not releasable))):
        _run("Remove crew", wf.remove_crew, plan_id, gone, expected_version=version,
             confirm=status == "assigned", release_locks=release)
    with unit_of_work() as uow:
        urgent = urgent_candidates(uow, city, plan_id, limit=URGENT_SHOWN)
    pick = st.selectbox("Add an urgent request", list(urgent.newest),
                        format_func=urgent.newest.__getitem__)
    if urgent.total > len(urgent.newest):
        st.caption(f"The newest {len(urgent.newest):,} of {urgent.total:,} open requests "
                   "not on the plan; the *Live board* lists today's new work.")
    if st.button("Add to today's plan", disabled=not (pick and confirm)):
        _run("Add urgent", wf.add_urgent_request, city, plan_id, pick,
             expected_version=version, confirm=status == "assigned")


@st.fragment
def reoptimise_section(confirm: bool) -> None:
    """Re-optimise the plan; a part of its own, so its click reads nothing before."""
    st.subheader("Re-optimise")
    if st.button("Re-optimise what is not locked", disabled=not confirm,
                 help="Re-solves the groups of crews (same work, same districts) that hold a "
                      "lock, which is where stops were moved or locked; with no lock, every "
                      "group. Locked stops and what crews already worked stay put."):
        _run("Re-optimise", wf.reoptimise, plan_id, expected_version=version,
             confirm=status == "assigned")
    if not locked:
        held = "No stop is locked: every group of crews is re-solved."
    else:
        held = (f"{len(locked)} locked stops stay with their crews" if len(locked) != 1
                else "1 locked stop stays with its crew")
        held += "; the groups of crews holding a lock are re-solved."
    st.caption(f"{held} What crews already worked stays put.")


with tab_adjust:
    if status == "assigned":
        st.warning("This plan is already assigned to the crews. Changes are sent to the crews "
                   "whose routes change.")
        confirm = st.checkbox("I confirm re-planning an assigned plan")
    c1, c2 = st.columns(2)
    with c1:
        move_or_lock(confirm)
    with c2:
        crews_and_urgent(confirm)
    reoptimise_section(confirm)


@st.fragment
def assign_section() -> None:
    """Preview and confirm the assignment; ticking in here re-runs only this part."""
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


with tab_adjust:
    st.divider()
    assign_section()
