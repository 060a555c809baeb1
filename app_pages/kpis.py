"""Service KPIs: how many, how fast, within SLA, what is left, what crews did."""

from __future__ import annotations

import altair as alt
import streamlit as st

from app_pages.analytics_ui import (
    cache_keys,
    chart,
    download_csv,
    fmt_hours,
    load_kpis,
    load_routes,
    replay_note,
    span,
    window,
)
from app_pages.common import pack, require_page
from dispatch.analytics import SMALL_SAMPLE
from dispatch.analytics.kpis import (
    AGE_BUCKETS,
    crew_productivity,
    duration_summary,
    volume,
)
from dispatch.auth import Role
from dispatch.services.queries import MapFilter

#: How each outcome of ``kpis.outcomes`` reads on its chart (its column: the label).
OUTCOME_LABELS = {"fixed": "fixed", "closed_not_fixed": "closed, not fixed",
                  "cancelled": "cancelled", "duplicate": "duplicate", "open": "still open"}
#: How the crews chart names its two times (``crew_productivity`` columns).
CREW_TIME_LABELS = {"drive_h": "drive", "service_h": "service"}

principal = require_page(Role.ADMIN, Role.SUPERVISOR, Role.MANAGER)
city = pack()
st.title("Service KPIs")
replay_note()

days_span = span()

labels = city.category_labels
district_ids = list(city.district_ids)
default_days = window(30, days_span)
with st.sidebar:
    st.header("Filters")
    days = st.date_input("Requested between", value=default_days, min_value=days_span[0],
                         max_value=days_span[1], key="kpi_days",
                         help="The last 30 days by default; pick any dates back to the "
                              "first stored request.")
    chosen = st.multiselect("Category", options=list(labels),
                            format_func=lambda c: labels.get(c, c),
                            placeholder="All categories", key="kpi_categories")
    chosen_districts: list[str] = []
    if city.has_districts:
        chosen_districts = st.multiselect(city.district_label, options=district_ids,
                                          placeholder="All districts", key="kpi_districts")

first_day, last_day = days if isinstance(days, tuple) and len(days) == 2 else default_days
flt = MapFilter(categories=tuple(chosen) or None, districts=tuple(chosen_districts) or None,
                first_day=first_day, last_day=last_day)
url, city_name, version = cache_keys()
figures = load_kpis(url, city_name, version, flt)
if figures.requests == 0:
    st.info(f"No requests match these filters between {first_day} and {last_day}.")
    st.stop()
data = figures.durations.assign(
    category_label=figures.durations["category"].map(lambda c: labels.get(c, c)))
sla_h = {c.code: c.sla_h for c in city.categories.values()}

# ------------------------------------------------------------------ the one-glance answer
st.subheader("How fast do we close …")
quick = st.columns([2, 2, 3])
cat_options = list(labels)
default_cat = cat_options.index("graffiti_removal") if "graffiti_removal" in labels else 0
q_cat: str = quick[0].selectbox("Category", cat_options, index=default_cat,
                                format_func=lambda c: labels.get(c, c),
                                key="kpi_quick_category")
dist_options = ["(all)", *district_ids]
default_dist = dist_options.index("14") if "14" in dist_options else 0
q_dist = quick[1].selectbox(city.district_label if city.has_districts else "District",
                            dist_options, index=default_dist, key="kpi_quick_district")
sel = data[data["category"] == q_cat]
if q_dist != "(all)":
    sel = sel[sel["district"] == q_dist]
closed = sel["close_h"].dropna()
n_closed = len(closed)
target = sla_h.get(q_cat)
answer = st.columns(4)
answer[0].metric("Median time to close",
                fmt_hours(float(closed.median()) if n_closed else None))
answer[1].metric("90% closed within",
                fmt_hours(float(closed.quantile(0.9)) if n_closed else None))
answer[2].metric(f"Within SLA ({fmt_hours(target)})",
                f"{(closed <= target).mean():.0%}" if n_closed and target else "–")
answer[3].metric("Closed requests", f"{n_closed:,}")
if q_dist != "(all)":
    place = f"{city.district_label.lower()} {q_dist}"
elif chosen_districts:
    place = "the chosen districts"
else:
    place = "the whole city"
if n_closed < SMALL_SAMPLE:
    st.warning(f"Small sample: only {n_closed} closed {labels[q_cat].lower()} requests in "
               f"{place} for these dates; treat these figures as anecdotes.",
               icon=":material/warning:")
else:
    st.caption(f"{labels[q_cat]} in {place}, requested {first_day} to {last_day}: time from "
               "request to close by a crew (completed or closed not fixed).")

# ------------------------------------------------------------------ close times grid
st.subheader("Median time to close, by category and district")
grid = duration_summary(data, "close_h", ["category_label", "district"])
grid = grid.rename(columns={"category_label": "category"})
grid["median"] = grid["median_h"].map(fmt_hours)
grid["sample"] = grid["small_sample"].map({True: "small sample", False: "ok"})
heat = alt.Chart(grid).mark_rect().encode(
    x=alt.X("district:N", title=city.district_label,
            sort=sorted(grid["district"].unique(), key=lambda d: (len(d), d))),
    y=alt.Y("category:N", title=None, axis=alt.Axis(labelLimit=260, labelOverlap=False)),
    color=alt.Color("median_h:Q", title="median hours", scale=alt.Scale(scheme="orangered",
                                                                          type="sqrt")),
    opacity=alt.condition(alt.datum.small_sample, alt.value(0.25), alt.value(1.0)),
    tooltip=["category", "district", "n", "median", alt.Tooltip("p90_h:Q", title="p90 hours"),
             "sample"],
)
text = alt.Chart(grid).mark_text(fontSize=10).encode(
    x=alt.X("district:N", sort=sorted(grid["district"].unique(), key=lambda d: (len(d), d))),
    y="category:N",
    text="median:N",
    color=alt.condition(alt.datum.small_sample, alt.value("#999999"), alt.value("#111111")),
)
chart((heat + text).properties(height=max(160, 28 * grid["category"].nunique())),
      grid.drop(columns=["median", "sample"]), "time_to_close_by_category_district.csv",
      "close_grid")
st.caption(f"Faded cells: fewer than {SMALL_SAMPLE} closed requests (small sample, not "
           "ranked). Hover for n and the 90th percentile.")

tabs = st.tabs(["Volume", "Time to close / first action", "SLA", "Backlog", "Outcomes",
                "Crews"])

with tabs[0]:
    cols = st.columns(2)
    by = cols[0].radio("By", ["category", "district", "channel"], horizontal=True,
                       key="kpi_vol_by")
    period = cols[1].radio("Per", ["day", "week", "month"], horizontal=True, key="kpi_vol_per")
    vol_data = figures.daily.assign(
        category=figures.daily["category"].map(lambda c: labels.get(c, c)))
    vol = volume(vol_data, by, period)
    vol["period"] = vol["period"].astype(str)
    bars = alt.Chart(vol).mark_bar().encode(
        x=alt.X("period:O", title=f"{period} starting"), y=alt.Y("requests:Q", stack=True),
        # 20 colours: the pack has more than the default 10 categories, which repeated
        color=alt.Color(f"{by}:N", scale=alt.Scale(scheme="tableau20")),
        tooltip=["period:O", f"{by}:N", "requests:Q"])
    chart(bars.properties(height=320), vol, f"volume_by_{by}_per_{period}.csv", "vol")
    totals = volume(vol_data, by, None)
    st.dataframe(totals, hide_index=True, width="content")

with tabs[1]:
    which = st.radio("Measure", ["Time to close", "Time to first action"], horizontal=True,
                     key="kpi_dur_measure")
    col = "close_h" if which == "Time to close" else "first_action_h"
    measured = data
    group = st.radio("By", ["category", "district", "category and district"],
                     horizontal=True, key="kpi_dur_by")
    keys = {"category": ["category_label"], "district": ["district"],
            "category and district": ["category_label", "district"]}[group]
    summary = duration_summary(measured, col, keys).rename(columns={"category_label": "category"})
    summary["group"] = summary[[k.replace("category_label", "category") for k in keys]].astype(
        str).agg(" · ".join, axis=1)
    order = summary["group"].tolist()
    base = alt.Chart(summary).encode(y=alt.Y("group:N", sort=order, title=None,
                                             axis=alt.Axis(labelLimit=260, labelOverlap=False)))
    bars = base.mark_bar().encode(
        x=alt.X("p90_h:Q", title="hours (bar: 90th percentile, tick: median)"),
        color=alt.condition(alt.datum.small_sample, alt.value("#cccccc"), alt.value("#9ecae1")),
        tooltip=[alt.Tooltip("group:N", title=group), alt.Tooltip("n:Q", title="requests"),
                 alt.Tooltip("median_h:Q", title="median hours", format=".1f"),
                 alt.Tooltip("p90_h:Q", title="90th percentile hours", format=".1f"),
                 alt.Tooltip("small_sample:N", title="small sample"),
                 alt.Tooltip("rank:Q", title="rank")])
    ticks = base.mark_tick(color="#08306b", thickness=3, size=14).encode(x="median_h:Q")
    chart((bars + ticks).properties(height=max(160, 28 * len(summary))),
          summary.drop(columns=["group"]), f"{col}_by_{group.replace(' ', '_')}.csv", "dur")
    st.caption("Sorted fastest median first; grey bars are small samples "
               f"(n < {SMALL_SAMPLE}), listed last and not ranked. First action: the first "
               "recorded event after the request (not its import), else the city's "
               "'updated' time.")

with tabs[2]:
    sla = figures.sla.assign(category=figures.sla["category"].map(lambda c: labels.get(c, c)))
    bars = alt.Chart(sla).mark_bar().encode(
        y=alt.Y("category:N", sort=sla["category"].tolist(), title=None,
                axis=alt.Axis(labelLimit=260, labelOverlap=False)),
        x=alt.X("compliance_pct:Q", title="% closed within SLA",
                scale=alt.Scale(domain=[0, 100])),
        color=alt.condition(alt.datum.small_sample, alt.value("#cccccc"), alt.value("#74c476")),
        tooltip=["category", alt.Tooltip("sla_h:Q", title="SLA target hours"),
                 alt.Tooltip("closed:Q", title="closed by a crew"),
                 alt.Tooltip("within_sla:Q", title="closed within SLA"),
                 alt.Tooltip("compliance_pct:Q", title="% within SLA", format=".1f"),
                 alt.Tooltip("open_past_sla:Q", title="open, past SLA"),
                 alt.Tooltip("small_sample:N", title="small sample")])
    chart(bars.properties(height=max(160, 28 * len(sla))), sla, "sla_compliance.csv", "sla")
    st.caption("SLA targets (hours) come from the city pack. Only requests a crew closed "
               "count; hover a bar for the open requests already past their target.")

with tabs[3]:
    ages = figures.backlog.assign(
        category=figures.backlog["category"].map(lambda c: labels.get(c, c)))
    open_n = int(ages["requests"].sum()) if not ages.empty else 0
    st.metric("Open requests (backlog)", f"{open_n:,}")
    if ages.empty:
        st.info("No open requests among these.")
    else:
        order = [label for label, _ in AGE_BUCKETS]
        bars = alt.Chart(ages).mark_bar().encode(
            x=alt.X("age:N", sort=order, title="age"), y="requests:Q",
            color=alt.Color("category:N"), tooltip=["category", "age", "requests"])
        chart(bars.properties(height=300), ages, "backlog_ages.csv", "backlog")

with tabs[4]:
    out = figures.outcomes.assign(
        category=figures.outcomes["category"].map(lambda c: labels.get(c, c)))
    long = out.melt(id_vars="category", value_vars=list(OUTCOME_LABELS),
                    var_name="outcome", value_name="requests")
    long["outcome"] = long["outcome"].map(OUTCOME_LABELS)
    bars = alt.Chart(long).mark_bar().encode(
        y=alt.Y("category:N", sort=out["category"].tolist(), title=None,
                axis=alt.Axis(labelLimit=260, labelOverlap=False)),
        x=alt.X("requests:Q", stack="normalize", title="share"),
        color=alt.Color("outcome:N", sort=list(OUTCOME_LABELS.values())),
        tooltip=["category", "outcome", "requests"])
    chart(bars.properties(height=max(160, 28 * len(out))), out, "outcomes.csv", "outcomes")
    st.caption("Fixed = completed. Closed, not fixed = a crew closed the work order without "
               "fixing it (item not out, blocked …); residents still see it open.")

with tabs[5]:
    routes = load_routes(url, city_name, version, first_day, last_day)
    crews = crew_productivity(routes)
    if crews.empty:
        st.info("No assigned plans with routes for these dates yet.")
    else:
        long = crews.melt(id_vars="crew", value_vars=list(CREW_TIME_LABELS),
                          var_name="time", value_name="hours")
        long["time"] = long["time"].map(CREW_TIME_LABELS)
        bars = alt.Chart(long).mark_bar().encode(
            y=alt.Y("crew:N", sort=crews["crew"].tolist(), title=None,
                    axis=alt.Axis(labelOverlap=False)), x="hours:Q",
            color="time:N", tooltip=["crew", "time", "hours"])
        chart(bars.properties(height=max(160, 22 * len(crews))), crews, "crew_productivity.csv",
              "crews")
        st.caption("From the routes of assigned plans: stops done per shift; drive and "
                   "service time as planned. Crews with fewer than 5 shifts are not ranked.")
    download_csv(routes, "routes.csv", "routes_raw")
