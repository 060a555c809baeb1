"""Hot spots: where requests pile up, which spots repeat, what changed, where to sweep."""

from __future__ import annotations

from datetime import timedelta

import altair as alt
import folium
import pandas as pd
import streamlit as st
from folium.plugins import HeatMap
from streamlit_folium import st_folium

from app_pages.analytics_ui import (
    GI_COLOURS,
    GI_LABELS,
    chart,
    count_layer,
    download_csv,
    gi_layer,
    legend_html,
    replay_note,
    span,
    spots_pane,
    window,
)
from app_pages.common import pack, require_page, streets_url, unit_of_work
from dispatch.analytics import SMALL_SAMPLE
from dispatch.analytics.hotspots import (
    DEFAULT_RESOLUTION,
    area_cells,
    period_comparison,
    previous_period,
)
from dispatch.auth import Role
from dispatch.services.analytics import (
    SWEEP_LOOKBACK_DAYS,
    HotSpots,
    district_counts,
    hot_spots,
    repeat_spots,
    sweep_stops_for_day,
)
from dispatch.services.queries import OPEN_STATUSES, MapFilter, store_version
from dispatch.store import default_url
from geo.map_assets import use_local_assets
from geo.maps import base_map, district_layer

principal = require_page(Role.ADMIN, Role.SUPERVISOR, Role.MANAGER)
city = pack()
st.title("Hot spots")
replay_note()

days_span = span()

labels = city.category_labels
with st.sidebar:
    st.header("Filters")
    chosen = st.multiselect("Category", options=list(labels),
                            format_func=lambda c: labels.get(c, c),
                            placeholder="All categories", key="hot_categories")
    chosen_districts: list[str] = []
    if city.has_districts:
        chosen_districts = st.multiselect(city.district_label, options=list(city.district_ids),
                                          placeholder="All districts", key="hot_districts")
    default_days = window(30, days_span)
    days = st.date_input("Requested between", value=default_days, min_value=days_span[0],
                         max_value=days_span[1], key="hot_days",
                         help="The last 30 days by default; pick any dates back to the "
                              "first stored request.")
    include_closed = st.toggle("Include closed and fixed requests", value=False,
                               key="hot_closed")
    resolution = st.slider("Hexagon size (H3 resolution)", 6, 10, DEFAULT_RESOLUTION,
                           help="6: about 36 km² per hexagon, 8: 0.74 km², 10: 0.015 km²",
                           key="hot_res")
    layers = st.multiselect("Layers", ["Hot and cold spots", "Requests per hexagon", "Heat"],
                            default=["Hot and cold spots", "Heat"], key="hot_layers")

first_day, last_day = days if isinstance(days, tuple) and len(days) == 2 else default_days
prev_first, prev_last = previous_period(first_day, last_day)
with st.sidebar:
    sweep_day = st.date_input("Sweep day", value=last_day + timedelta(days=1),
                              key="hot_sweep_day",
                              help=f"Sweep stops come from the {SWEEP_LOOKBACK_DAYS} days "
                                   "before this day.")
sweep_first = sweep_day - timedelta(days=SWEEP_LOOKBACK_DAYS)



@st.cache_data(show_spinner="Filling the study area with hexagons…")
def _area(city_name: str, res: int, districts: tuple[str, ...]) -> list[str]:
    """Hexagons of the city limit, or of the chosen districts (the study area of Gi*)."""
    del city_name
    if districts and city.districts is not None:
        chosen_area = city.districts[city.districts["district"].astype(str).isin(districts)]
        return area_cells(chosen_area.geometry.union_all(), res)
    return area_cells(city.boundary, res)


@st.cache_data(ttl=600, show_spinner="Counting requests per hexagon…", max_entries=32)
def _figures(url: str, version: int, flt: MapFilter, res: int, open_only: bool,
             area_key: tuple[str, ...]) -> HotSpots:
    """Return hexagons, Gi* and heat of the window (cached per filter until a write)."""
    del url, version
    with unit_of_work() as uow:
        return hot_spots(uow, flt.to_request_filter(city.timezone),
                         _area(city.name, res, area_key), resolution=res, open_only=open_only)


window_flt = MapFilter(categories=tuple(chosen) or None,
                       districts=tuple(chosen_districts) or None,
                       first_day=first_day, last_day=last_day)
with unit_of_work() as uow:
    version = store_version(uow)
figures = _figures(default_url(), version, window_flt, resolution, not include_closed,
                   tuple(sorted(chosen_districts)))
counts, spots = figures.counts, figures.spots
hot = spots[spots["spot"] == "hot"] if not spots.empty else spots
cold = spots[spots["spot"] == "cold"] if not spots.empty else spots

cols = st.columns(5)
cols[0].metric("Requests", f"{figures.requests:,}")
cols[1].metric("On the map", f"{figures.located:,}")
cols[2].metric("Closed, hidden", f"{figures.closed_hidden:,}")
cols[3].metric("Hot-spot hexagons", f"{len(hot):,}")
cols[4].metric("Cold-spot hexagons", f"{len(cold):,}")
if not include_closed and figures.closed_hidden:
    st.caption(f"Showing open requests only; {figures.closed_hidden:,} closed or fixed "
               "ones are hidden. Turn on *Include closed and fixed requests* in the sidebar "
               "to map all demand.")

tab_map, tab_repeat, tab_change, tab_sweep = st.tabs(
    ["Map", "Repeat locations", "Change vs previous period", "Sweep stops"])

with tab_map:
    if figures.located == 0:
        st.info("No located requests match these filters.")
    else:
        m = base_map(city.boundary.bounds, streets_url=streets_url(city))
        if city.districts is not None:
            district_layer(city.districts, labels=False).add_to(m)
        spots_pane().add_to(m)
        if "Heat" in layers:
            # (lon, lat) -> (lat, lon) for Leaflet; weighted cells beyond 20,000 requests
            points = figures.heat[["lat", "lon", "weight"]].to_numpy().tolist()
            HeatMap(points, name="Heat", radius=12, blur=15,  # type: ignore[no-untyped-call]
                    min_opacity=0.3).add_to(m)
        if "Requests per hexagon" in layers:
            count_layer(counts).add_to(m)
        if "Hot and cold spots" in layers and not spots.empty:
            gi_layer(spots[spots["gi_bin"] != 0], labels).add_to(m)
        folium.LayerControl(collapsed=True).add_to(m)
        st_folium(use_local_assets(m), height=600, width="stretch", returned_objects=[],
                  key="hot_map")
        if figures.located and hot.empty and cold.empty:
            st.info(f"No hexagon is a significant hot or cold spot among these "
                    f"{figures.located:,} requests: what clusters there is could be chance.",
                    icon=":material/info:")
        st.html(legend_html({GI_LABELS[k]: GI_COLOURS[k] for k in (3, 2, 1, -1, -2, -3)},
                            "Getis-Ord Gi*"))
        st.caption(
            f"Gi* over {len(spots):,} hexagons (the "
            f"{'chosen districts' if chosen_districts else 'city limit'}, empty hexagons "
            "included, so cold spots can show), each compared with its 6 neighbours. Significance "
            "from the exact randomisation distribution, corrected for testing every "
            "hexagon with Benjamini-Hochberg (false discovery rate 1%, 5%, 10%). "
            "Grey: not significant.")
        table = spots[spots["gi_bin"] != 0][["cell", "spot", "confidence", "count", "z", "p",
                                             "q", "category", "district", "lon", "lat"]]
        table = table.assign(category=table["category"].map(lambda c: labels.get(c, c)))
        if table.empty:
            st.caption("No significant hexagon to list; the download has every hexagon's "
                       "Gi* figures.")
        else:
            st.dataframe(table, hide_index=True, height=240,
                         column_config={"z": st.column_config.NumberColumn(format="%.2f"),
                                        "p": st.column_config.NumberColumn(format="%.2e"),
                                        "q": st.column_config.NumberColumn(format="%.2e")})
        download_csv(spots, "hotspots_gi_star.csv", "gi")

with tab_repeat:
    repeat_cats = [c for c in city.sweep_categories if c in labels]
    st.caption("Spots about 50 m across (H3 resolution 11) with two or more "
               f"{' or '.join(labels[c].lower() for c in repeat_cats)} requests in the "
               "chosen dates (all statuses).")
    with unit_of_work() as uow:
        repeats = repeat_spots(uow, window_flt.to_request_filter(city.timezone),
                               tuple(repeat_cats))
    if repeats.empty:
        st.info("No repeat locations for these filters.")
    else:
        shown = repeats.drop(columns=["ids"]).assign(
            first=repeats["first"].dt.tz_convert(city.timezone).dt.strftime("%Y-%m-%d %H:%M"),
            last=repeats["last"].dt.tz_convert(city.timezone).dt.strftime("%Y-%m-%d %H:%M"))
        # people read category labels; the download keeps the codes and the cell ids
        st.dataframe(shown.drop(columns=["spot"]).assign(
            categories=shown["categories"].map(
                lambda cs: ", ".join(labels.get(c, c) for c in str(cs).split(", ")))),
            hide_index=True, height=360)
        download_csv(shown, "repeat_locations.csv", "repeats")

with tab_change:
    statuses = None if include_closed else OPEN_STATUSES
    with unit_of_work() as uow:
        current = district_counts(uow, MapFilter(
            categories=tuple(chosen) or None, districts=tuple(chosen_districts) or None,
            statuses=statuses, first_day=first_day, last_day=last_day,
        ).to_request_filter(city.timezone))
        previous = district_counts(uow, MapFilter(
            categories=tuple(chosen) or None, districts=tuple(chosen_districts) or None,
            statuses=statuses, first_day=prev_first, last_day=prev_last,
        ).to_request_filter(city.timezone))
    change = period_comparison(current, previous)
    st.caption(f"{first_day} to {last_day} against {prev_first} to {prev_last} (same length). "
               f"Rows where either period has fewer than {SMALL_SAMPLE} requests are flagged "
               "and listed last.")
    if prev_first < days_span[0]:
        st.warning(f"The stored requests start on {days_span[0]}: the previous period is "
                   "not (fully) covered, so its counts are not a fair comparison.",
                   icon=":material/info:")
    if change.empty:
        st.info("No requests in either period.")
    else:
        bars = alt.Chart(change).mark_bar().encode(
            y=alt.Y("district:N", sort=change["district"].tolist(), title=city.district_label,
                    axis=alt.Axis(labelOverlap=False)),
            x=alt.X("change:Q", title="change in requests"),
            color=alt.condition(alt.datum.small_sample, alt.value("#cccccc"),
                                alt.value("#d6604d")),
            tooltip=["district", "previous", "current", "change", "change_pct",
                     "small_sample"])
        chart(bars.properties(height=max(160, 22 * len(change))), change,
              "change_by_district.csv", "change")

with tab_sweep:
    top = st.number_input("At most", 1, 50, 10, key="hot_sweep_top")
    sweep_cats = tuple(c for c in city.sweep_categories if c in labels)
    # the planner's own service: the same stops it adds to a plan (the whole city limit)
    with unit_of_work() as uow:
        stops = sweep_stops_for_day(uow, city, sweep_day, top=int(top))
    st.caption(f"Optional stops for {sweep_day}, as the planner adds them: the strongest hot "
               f"hexagons of {' and '.join(labels[c].lower() for c in sweep_cats) or 'no'} "
               f"requests over the whole city limit in the {SWEEP_LOOKBACK_DAYS} days before "
               f"it ({sweep_first} to {sweep_day - timedelta(days=1)}, all statuses, "
               "Benjamini-Hochberg adjusted p ≤ 0.05), each a low-priority stop "
               "`SWEEP-<cell>` at the hexagon's centre with its main category's service time. "
               "The planner drops them first when time runs short. The sidebar's category, "
               "district and hexagon-size settings do not apply here.")
    if not stops:
        st.info("No significant hot spot to sweep for these dates.")
    else:
        sweep = pd.DataFrame([{
            "request_id": s.request_id, "category": labels.get(s.category, s.category),
            "district": s.district, "lon": s.lon, "lat": s.lat,
            "service_s": s.service_s, "urgency": s.urgency} for s in stops])
        st.dataframe(sweep, hide_index=True)
        download_csv(sweep, "sweep_stops.csv", "sweep")
