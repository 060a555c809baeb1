"""Monthly activity report: opened and resolved, by category, top types, channels, map."""

from __future__ import annotations

import io
import tempfile
from datetime import date
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app_pages.analytics_ui import chart, download_csv, replay_note, span
from app_pages.common import pack, require_page, unit_of_work
from dispatch.auth import Role
from dispatch.model import Channel
from dispatch.services.reports import REPORT_FILES, monthly_report
from dispatch.store import default_url

principal = require_page(Role.ADMIN, Role.SUPERVISOR, Role.MANAGER)
city = pack()
st.title("Monthly activity report")
replay_note()

days_span = span()


def _months(first: date, last: date) -> list[str]:
    out = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out[::-1]


@st.cache_data(ttl=120, show_spinner="Counting the month…")
def _build(url: str, city_name: str, month: str) -> tuple[dict[str, bytes], dict[str, int]]:
    """Write the report to a temporary folder and return its files and figures."""
    del url, city_name
    with tempfile.TemporaryDirectory() as tmp, unit_of_work() as uow:
        summary = monthly_report(uow, city, month, Path(tmp))
        files = {name: (Path(tmp) / name).read_bytes() for name in REPORT_FILES}
    figures = {"opened": summary.opened, "resolved": summary.resolved,
               "fixed": summary.figures.fixed}
    return files, figures


months = _months(*days_span)
month = st.selectbox("Month", months, index=0, key="report_month")
files, figs = _build(default_url(), city.name, month)

cols = st.columns(4)
cols[0].metric("Opened", f"{figs['opened']:,}", help="Requested this month (local time).")
cols[1].metric("Resolved", f"{figs['resolved']:,}",
               help="Closed this month with any closed status, whenever opened.")
cols[2].metric("Fixed", f"{figs['fixed']:,}", help="Resolved and completed.")
cols[3].metric("Resolved per opened",
               f"{figs['resolved'] / figs['opened']:.0%}" if figs["opened"] else "–")
if days_span[0] > date.fromisoformat(f"{month}-01") or \
        days_span[1] < date.fromisoformat(f"{month}-28"):
    st.warning(f"The stored requests run from {days_span[0]} to {days_span[1]}: this month "
               "is only partly covered, so its figures are partial.", icon=":material/info:")


def _csv(name: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(files[name]), keep_default_na=False)


by_category = _csv("by_category.csv")
by_channel = _csv("by_channel.csv")
# people read "Crew report", not driver_self_report (the CSV download keeps the codes)
channel_labels = {c.value: c.label for c in Channel}
shown_channels = by_channel.assign(
    channel=by_channel["channel"].map(lambda c: channel_labels.get(c, c)))
top_types = _csv("top_types.csv")

left, right = st.columns(2)
with left:
    st.subheader("By category")
    long = by_category.melt(id_vars="category", var_name="measure", value_name="requests")
    bars = alt.Chart(long).mark_bar().encode(
        y=alt.Y("category:N", sort=by_category["category"].tolist(), title=None,
                axis=alt.Axis(labelLimit=220, labelOverlap=False)),
        x="requests:Q", color=alt.Color("measure:N", sort=["opened", "resolved"]),
        yOffset="measure:N", tooltip=["category", "measure", "requests"])
    chart(bars.properties(height=max(160, 40 * len(by_category))), by_category,
          f"by_category_{month}.csv", "rep_cat")
with right:
    st.subheader("How residents reported")
    pie = alt.Chart(shown_channels).mark_arc(innerRadius=50).encode(
        theta="opened:Q", color=alt.Color("channel:N",
                                          sort=shown_channels["channel"].tolist()),
        tooltip=["channel", "opened", alt.Tooltip("share:Q", format=".0%")])
    chart(pie.properties(height=260), by_channel, f"by_channel_{month}.csv", "rep_chan")
    st.subheader("Most frequent request types")
    st.dataframe(top_types.rename(columns={"service_code": "request type"}), hide_index=True)
    download_csv(top_types, f"top_types_{month}.csv", "rep_types")

st.subheader("The printable report")
st.download_button("Download report.html", files["report.html"],
                   file_name=f"curbside_report_{month}.html", mime="text/html",
                   icon=":material/print:", key="dl_report_html")
with st.expander("Preview", expanded=False):
    # our own page: every text in it is escaped (dispatch.analytics.report), no script
    st.iframe(files["report.html"].decode("utf-8"), height=900)
st.caption(f"The same files from the command line: `dispatch report monthly --month {month} "
           "--out DIR`.")
