"""What the managers' pages share: cached frames, CSV downloads, hexagon map layers."""

from __future__ import annotations

import html
import math
from datetime import date, timedelta
from typing import Any

import altair as alt
import folium
import pandas as pd
import streamlit as st

from app_pages.common import pack, unit_of_work
from dispatch.analytics.hotspots import cell_boundary
from dispatch.services.analytics import Kpis, kpis, routes_frame
from dispatch.services.clock import clock_info
from dispatch.services.queries import MapFilter, request_date_range, store_version
from dispatch.store import default_url
from dispatch.text import csv_bytes

#: Fill colours of Gi* cells by Gi bin (-3 .. 3): hot red, cold blue, 0 not significant.
GI_COLOURS: dict[int, str] = {
    3: "#b2182b", 2: "#ef8a62", 1: "#fddbc7",
    -1: "#d1e5f0", -2: "#67a9cf", -3: "#2166ac",
}
GI_LABELS: dict[int, str] = {
    3: "Hot spot, 99% confidence", 2: "Hot spot, 95%", 1: "Hot spot, 90%",
    -1: "Cold spot, 90%", -2: "Cold spot, 95%", -3: "Cold spot, 99% confidence",
}
#: Sequential fill of count hexagons (light to dark).
COUNT_COLOURS: tuple[str, ...] = ("#fee8c8", "#fdbb84", "#fc8d59", "#e34a33", "#b30000")


def fmt_hours(hours: float | None) -> str:
    """Return a duration in hours as people read it: ``6 min``, ``5.2 h``, ``3.1 days``."""
    if hours is None or (isinstance(hours, float) and math.isnan(hours)):
        return "–"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def span() -> tuple[date, date]:
    """Return the first and last local day with requests; stop the page when there are none."""
    with unit_of_work() as uow:
        days = request_date_range(uow, pack().timezone)
    if days is None:
        st.info("No requests yet. Import a file with `dispatch import PATH`.")
        st.stop()
    return days


def today() -> date:
    """Return today's local date by the store's clock (a demo replays its day)."""
    with unit_of_work() as uow:
        return clock_info(uow).now.astimezone(pack().timezone).date()


#: Said on the managers' pages while the store's clock replays a past day.
REPLAY_NOTE = ("Demo replay: these figures read the requests as stored, with what happened "
               "to them after the replay's clock (later reports and closures included); "
               "Triage, planning and the live board read them as they stood at "
               "{clock}.")


def replay_note() -> None:
    """Say, while the store's clock replays a past day, what moment these figures are of."""
    with unit_of_work() as uow:
        clock = clock_info(uow)
    if clock.replaying:
        st.caption(REPLAY_NOTE.format(
            clock=f"{clock.now.astimezone(pack().timezone):%A %d %B %Y, %H:%M}"),
            help="The demo's requests were exported later, with their final status; "
                 "the clock replays the morning they were planned.")


def window(days: int, stored: tuple[date, date]) -> tuple[date, date]:
    """Return the default window: the ``days`` local days up to today, inside the data.

    Pages open on a window a person would pick (the last 7 or 30 days); the whole
    history stays one date filter away.
    """
    last = min(today(), stored[1])
    last = max(last, stored[0])
    return max(stored[0], last - timedelta(days=days - 1)), last


def data_version() -> int:
    """Return a number that moves with every write (the newest event id)."""
    with unit_of_work() as uow:
        return store_version(uow)


@st.cache_data(ttl=600, show_spinner="Counting…", max_entries=64)
def load_kpis(url: str, city: str, version: int, flt: MapFilter) -> Kpis:
    """Return :func:`kpis` (cached per filter until the next write)."""
    del url, city, version  # cache keys only
    with unit_of_work() as uow:
        return kpis(uow, pack(), flt)


@st.cache_data(ttl=600, show_spinner=False, max_entries=32)
def load_routes(url: str, city: str, version: int, first_day: date, last_day: date,
                ) -> pd.DataFrame:
    """Return :func:`routes_frame` (cached until the next write)."""
    del url, version
    with unit_of_work() as uow:
        return routes_frame(uow, city, first_day, last_day)


def cache_keys() -> tuple[str, str, int]:
    """Return ``(database URL, city, data version)``: what every cached read is keyed by."""
    return default_url(), pack().name, data_version()


def download_csv(data: pd.DataFrame, name: str, key: str) -> None:
    """Offer ``data`` as ``name`` (CSV, UTF-8, formulas neutralised) under a download button."""
    st.download_button(
        f"Download CSV ({len(data):,} rows)",
        csv_bytes(data),
        file_name=name,
        mime="text/csv",
        key=f"dl_{key}",
        icon=":material/download:",
    )


def chart(chart_: alt.Chart | alt.LayerChart, data: pd.DataFrame, name: str, key: str) -> None:
    """Show an Altair chart with a CSV download of the numbers behind it."""
    st.altair_chart(chart_, width="stretch")
    download_csv(data, name, key)


def _hex_feature(cell: str, props: dict[str, Any]) -> dict[str, Any]:
    ring = [list(p) for p in cell_boundary(cell)]
    ring.append(ring[0])
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


#: Map pane above the heat layer's canvas (leaflet-heat always draws in the overlay pane).
SPOTS_PANE = "curbsideSpots"


def spots_pane() -> folium.map.CustomPane:
    """Return the pane for hexagon layers, above the heat layer (z-index 450)."""
    return folium.map.CustomPane(SPOTS_PANE, z_index=450, pointer_events=True)


def gi_layer(spots: pd.DataFrame, labels: dict[str, str], name: str = "Hot and cold spots",
             *, show: bool = True) -> folium.GeoJson:
    """Return the Gi* cells as a GeoJSON layer: hot red, cold blue, others faint grey.

    The layer draws in :data:`SPOTS_PANE`; add :func:`spots_pane` to the map first.
    """
    feats = []
    for rec in spots.to_dict("records"):
        level = int(rec["gi_bin"])
        feats.append(_hex_feature(str(rec["cell"]), {
            "requests": int(rec["count"]),
            "result": html.escape(GI_LABELS.get(level, "not significant")),
            "z": round(float(rec["z"]), 2),
            "q": f"{float(rec['q']):.3g}",
            "top category": html.escape(labels.get(str(rec.get("category")), "–")
                                        if rec.get("category") else "–"),
            "gi_bin": level,
        }))

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        level = feature["properties"]["gi_bin"]
        if level == 0:
            return {"fillColor": "#888888", "fillOpacity": 0.04, "color": "#888888",
                    "weight": 0.3}
        return {"fillColor": GI_COLOURS[level], "fillOpacity": 0.75, "color": "#444444",
                "weight": 0.6}

    return folium.GeoJson(
        {"type": "FeatureCollection", "features": feats},
        name=name,
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields=["result", "requests", "z", "q",
                                              "top category"]) if feats else None,
        show=show,
        pane=SPOTS_PANE,
    )


def count_layer(counts: pd.DataFrame, name: str = "Requests per hexagon",
                *, show: bool = True) -> folium.GeoJson:
    """Return request counts per H3 cell as a GeoJSON layer (quantile shades)."""
    peak = max(int(counts["count"].max()), 1) if not counts.empty else 1
    feats = [
        _hex_feature(str(rec["cell"]), {
            "requests": int(rec["count"]),
            "shade": min(len(COUNT_COLOURS) - 1,
                         int(len(COUNT_COLOURS) * math.sqrt(int(rec["count"]) / peak))),
        })
        for rec in counts.to_dict("records")
    ]

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        return {"fillColor": COUNT_COLOURS[feature["properties"]["shade"]],
                "fillOpacity": 0.7, "color": "#ffffff", "weight": 0.4}

    return folium.GeoJson(
        {"type": "FeatureCollection", "features": feats},
        name=name,
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields=["requests"]) if feats else None,
        show=show,
        pane=SPOTS_PANE,
    )


def legend_html(entries: dict[str, str], title: str) -> str:
    """Return a small legend as HTML (labels are escaped)."""
    rows = "".join(
        f'<span style="display:inline-block;margin-right:12px">'
        f'<span style="display:inline-block;width:12px;height:12px;background:{colour};'
        f'border:1px solid #555;margin-right:4px;vertical-align:middle"></span>'
        f"{html.escape(label)}</span>"
        for label, colour in entries.items()
    )
    return f"<div style='font-size:0.85em'><b>{html.escape(title)}</b>: {rows}</div>"
