"""The monthly activity report: its figures and its print-styled HTML.

Shaped after the figures a service center publishes each month (requests opened and
resolved, by department, the most frequent request types, how residents reported).

Counting rules
    *Opened* in a month: ``requested_at`` falls in that calendar month in the city's
    local time. *Resolved* in a month: ``closed_at`` falls in that month (local time)
    and the request has a closed status (completed, closed not fixed, cancelled or
    duplicate); a request opened in an earlier month and closed in this one counts as
    resolved here. Of the resolved, *fixed* (completed) is also given on its own.

Everything written into the HTML goes through :func:`html.escape`; the hot-spot map is
an inline SVG of H3 cells (no network, no script).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pandas as pd

from dispatch.analytics.hotspots import cell_boundary
from dispatch.errors import ValidationError
from dispatch.model import CLOSED_STATUSES, RequestStatus

__all__ = [
    "MonthlyFigures",
    "hex_svg",
    "month_bounds",
    "monthly_figures",
    "render_html",
]

_CLOSED = tuple(s.value for s in CLOSED_STATUSES)


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the UTC instants ``[first local midnight of month, first of next month)``.

    Raises
    ------
    ValueError
        If ``month`` is not ``YYYY-MM``.
    """
    try:
        year_s, mon_s = month.split("-")
        if len(year_s) != 4 or len(mon_s) != 2:
            raise ValueError
        first = date(int(year_s), int(mon_s), 1)
    except ValueError as exc:
        raise ValidationError(f"month {month!r}: expected YYYY-MM, e.g. 2024-10") from exc
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return (datetime.combine(first, time(0), tzinfo=tz),
            datetime.combine(nxt, time(0), tzinfo=tz))


@dataclass(frozen=True)
class MonthlyFigures:
    """Figures of one month.

    Parameters
    ----------
    month
        ``YYYY-MM``.
    opened, resolved, fixed
        Requests opened, resolved (any closed status) and fixed (completed) in the month.
    by_category
        ``category`` (label), ``opened``, ``resolved``; most opened first.
    by_channel
        ``channel``, ``opened``, ``share`` (of the month's opened, 0..1).
    top_types
        ``service_code``, ``opened``; most frequent first.
    """

    month: str
    opened: int
    resolved: int
    fixed: int
    by_category: pd.DataFrame
    by_channel: pd.DataFrame
    top_types: pd.DataFrame


def monthly_figures(
    opened: pd.DataFrame,
    resolved: pd.DataFrame,
    month: str,
    labels: Mapping[str, str] | None = None,
    *,
    top: int = 10,
) -> MonthlyFigures:
    """Shape a month's opened and resolved requests, counted in SQL.

    Parameters
    ----------
    opened
        Requests opened in the month counted by ``category``, ``channel`` and
        ``service_code`` (column ``n``).
    resolved
        Requests closed in the month (any closed status) counted by ``category`` and
        ``status`` (column ``n``).
    month
        ``YYYY-MM``.
    labels
        Category code -> label for the tables (codes shown when missing).
    top
        How many request types to list.

    Returns
    -------
    MonthlyFigures
        The figures (see the module's counting rules).
    """
    names = dict(labels or {})
    resolved = resolved[resolved["status"].astype(str).isin(_CLOSED)]
    by_cat = pd.DataFrame({
        "opened": opened.groupby(opened["category"].astype(str))["n"].sum(),
        "resolved": resolved.groupby(resolved["category"].astype(str))["n"].sum(),
    }).fillna(0).astype("int64")
    by_cat.index = by_cat.index.map(lambda c: names.get(c, c))
    by_cat = by_cat.groupby(level=0).sum()
    by_cat = by_cat[(by_cat["opened"] > 0) | (by_cat["resolved"] > 0)]
    by_cat.index.name = "category"
    by_cat = by_cat.reset_index().sort_values(["opened", "resolved", "category"],
                                              ascending=[False, False, True], kind="stable")
    opened_n = int(opened["n"].sum())
    channel = opened.groupby(opened["channel"].astype(str))["n"].sum()
    by_channel = pd.DataFrame({"channel": channel.index.astype(str),
                               "opened": channel.to_numpy(dtype="int64")})
    by_channel = by_channel.sort_values(["opened", "channel"], ascending=[False, True],
                                        kind="stable")
    by_channel["share"] = (by_channel["opened"] / opened_n).round(4) if opened_n else 0.0
    types = opened.groupby(opened["service_code"].astype(str))["n"].sum()
    top_types = pd.DataFrame({"service_code": types.index.astype(str),
                              "opened": types.to_numpy(dtype="int64")})
    top_types = top_types.sort_values(["opened", "service_code"], ascending=[False, True],
                                      kind="stable").head(top)
    fixed = resolved[resolved["status"].astype(str) == RequestStatus.COMPLETED.value]
    return MonthlyFigures(
        month=month,
        opened=opened_n,
        resolved=int(resolved["n"].sum()),
        fixed=int(fixed["n"].sum()),
        by_category=by_cat.reset_index(drop=True),
        by_channel=by_channel.reset_index(drop=True),
        top_types=top_types.reset_index(drop=True),
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def hex_svg(cells: pd.DataFrame, *, width: int = 420, height: int = 420,
            hot_colour: str = "#c0392b") -> str:
    """Draw H3 cells as an inline SVG, shaded by ``count`` (no script, no network).

    Parameters
    ----------
    cells
        ``cell`` and ``count`` (e.g. :func:`~dispatch.analytics.hotspots.hex_counts`),
        optionally ``spot`` (``hot`` cells get a dark outline).
    width, height
        Size of the drawing in pixels.
    hot_colour
        Fill of the busiest cell; others are lighter in proportion.

    Returns
    -------
    str
        An ``<svg>`` element; an empty-state message when there are no cells.
    """
    if cells.empty:
        return '<p class="muted">No located requests this month.</p>'
    rings = [cell_boundary(str(c)) for c in cells["cell"]]
    xs = [x for ring in rings for x, _ in ring]
    ys = [y for ring in rings for _, y in ring]
    min_x, max_x, min_y, max_y = min(xs), max(xs), min(ys), max(ys)
    span_x = max(max_x - min_x, 1e-9)
    span_y = max(max_y - min_y, 1e-9)
    # equirectangular: shrink longitudes by cos(latitude) so hexagons stay hexagonal
    kx = math.cos(math.radians((min_y + max_y) / 2))
    scale = min((width - 10) / (span_x * kx), (height - 10) / span_y)
    peak = max(int(cells["count"].max()), 1)
    spots = cells["spot"].tolist() if "spot" in cells else [""] * len(cells)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="hex map">']
    for ring, count, spot in zip(rings, cells["count"].tolist(), spots, strict=True):
        pts = " ".join(f"{5 + (x - min_x) * kx * scale:.1f},{5 + (max_y - y) * scale:.1f}"
                       for x, y in ring)
        opacity = 0.15 + 0.85 * (int(count) / peak)
        stroke = "#222" if spot == "hot" else "#ffffff"
        parts.append(f'<polygon points="{pts}" fill="{_e(hot_colour)}" '
                     f'fill-opacity="{opacity:.2f}" stroke="{stroke}" stroke-width="0.6">'
                     f"<title>{_e(count)}</title></polygon>")
    parts.append("</svg>")
    return "".join(parts)


def _table(frame: pd.DataFrame, headers: Sequence[str], share_cols: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    rows = []
    for rec in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, rec, strict=True):
            if col in share_cols:
                text = f"{float(value):.0%}"
            elif isinstance(value, int | float) and not isinstance(value, bool):
                text = f"{value:,}"
            else:
                text = str(value)
            cls = ' class="num"' if isinstance(value, int | float) else ""
            cells.append(f"<td{cls}>{_e(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


_CSS = """
body { font-family: system-ui, sans-serif; color: #222; margin: 2em; max-width: 60em; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.muted { color: #666; } .num { text-align: right; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
.figures { display: flex; gap: 2em; } .figure b { display: block; font-size: 2em; }
@media print { body { margin: 0; } h2 { break-after: avoid; } table, svg { break-inside: avoid; } }
"""


def render_html(
    figures: MonthlyFigures,
    city: str,
    *,
    map_svg: str = "",
    generated_at: datetime | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Return the report as one self-contained, print-styled HTML page.

    Parameters
    ----------
    figures
        The month's figures.
    city
        City name for the title.
    map_svg
        Inline SVG of the month's hot spots (from :func:`hex_svg`; trusted markup).
    generated_at
        When the report was made (shown in the footer).
    notes
        Extra lines for the footer (escaped).

    Returns
    -------
    str
        The HTML document.
    """
    title = f"{city}: service requests, {figures.month}"
    share = figures.resolved / figures.opened if figures.opened else 0.0
    body = [
        f"<h1>{_e(title)}</h1>",
        '<p class="muted">Monthly activity report. Opened: requested this month (local '
        "time). Resolved: closed this month with any closed status, whenever opened.</p>",
        '<div class="figures">',
        f'<div class="figure"><b>{figures.opened:,}</b>new service requests opened</div>',
        f'<div class="figure"><b>{figures.resolved:,}</b>service requests resolved</div>',
        f'<div class="figure"><b>{figures.fixed:,}</b>of them fixed (completed)</div>',
        f'<div class="figure"><b>{share:.0%}</b>resolved per opened</div>',
        "</div>",
        "<h2>By category</h2>",
        _table(figures.by_category, ["Category", "Opened", "Resolved"]),
        "<h2>Most frequent request types</h2>",
        _table(figures.top_types, ["Request type", "Opened"]),
        "<h2>How residents reported</h2>",
        _table(figures.by_channel, ["Channel", "Opened", "Share"], share_cols=("share",)),
        "<h2>Where: requests opened this month</h2>",
        map_svg or '<p class="muted">No map.</p>',
        '<p class="muted">Hexagons (H3) shaded by requests opened; outlined: hot spots '
        "(Getis-Ord Gi*, Benjamini-Hochberg adjusted p &le; 0.05).</p>",
    ]
    footer = [*notes]
    if generated_at is not None:
        footer.append(f"Generated {generated_at:%Y-%m-%d %H:%M} UTC by Curbside.")
    body.append("".join(f'<p class="muted">{_e(line)}</p>' for line in footer))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
