"""Route sheets and crew-route helpers for the crew and supervisor pages.

Three kinds of functions live here:

- small look-ups on the unit of work (which days and crews have an assigned route,
  which plans a supervisor may print), built on the plan repository; like the
  workflow services they check the acting principal's role, and a crew member only
  ever gets their own crew's route;
- pure shaping: a plan filtered to one crew (GeoJSON for the map), the crews' route
  exports (CSV, GPX, GeoJSON from :class:`RouteView`, each stop named by its address),
  the printable HTML route sheet, and escaping of resident text for Markdown;
- :func:`export_day_routes`, which reads the routes of a day's assigned plan for the
  ``dispatch routes export`` command.

Every text that comes from residents or data files (addresses, descriptions, request
ids, service codes, crew and district names) is HTML-escaped with :func:`html.escape`
before it goes into the sheet.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.auth import READING, SUPERVISING, WORKING, Principal, Role, require_crew, service
from dispatch.citypack import CityPack
from dispatch.errors import NotFoundError, ValidationError
from dispatch.planning import Plan
from dispatch.services.workflow import (
    STOP_CANT,
    STOP_DONE,
    STOP_PENDING,
    RouteView,
    StopView,
    _route_view,
)
from dispatch.state import StopStatus
from dispatch.store import UnitOfWork
from dispatch.store.plans import plan_from_rows
from dispatch.text import neutralise_formula

__all__ = [
    "ROUTE_CSV_COLUMNS",
    "ROUTE_FORMATS",
    "SHEET_CSP",
    "STATUS_LABELS",
    "PlanChoice",
    "crew_depots",
    "crew_map_geojson",
    "crew_route_geojson",
    "crews_on_day",
    "escape_markdown",
    "export_day_routes",
    "export_name",
    "local_time",
    "newest_plan_date",
    "plan_choices",
    "plan_for_crew",
    "progress",
    "route_csv",
    "route_export",
    "route_geojson",
    "route_gpx",
    "route_sheet_html",
    "route_svg",
    "sheet_views",
]

#: How a stop's status reads on a sheet and in the crew's list.
STATUS_LABELS: dict[str, str] = {s.value: s.label for s in StopStatus}

#: Content security policy of the sheet: inline styles only; no script, frame or fetch.
SHEET_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

# Characters with a meaning in (Streamlit's GitHub-flavoured) Markdown.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


# ------------------------------------------------------------------------- look-ups


@service(*SUPERVISING, Role.MANAGER, Role.CREW, action="see plan dates")
def newest_plan_date(
    uow: UnitOfWork,
    city: str,
    *,
    statuses: Collection[str] = ("assigned",),
    max_days_back: int = 14,
) -> date | None:
    """Return the newest service date with a plan in one of ``statuses``.

    Starts from the newest date with any plan (usually the answer) and steps back a
    day at a time, at most ``max_days_back`` days.

    Parameters
    ----------
    uow
        Unit of work; anyone signed in may ask (dates are not sensitive).
    city
        City pack name.
    statuses
        Plan statuses that count (``assigned``, ``draft``).
    max_days_back
        How far before the newest plan to look, in days.

    Returns
    -------
    date or None
        The date, or ``None`` when there is no such plan in that window.
    """
    latest = uow.plans.latest_date(city, statuses=list(statuses))
    if latest is None:
        return None
    newest_any = uow.plans.latest_date(city)
    if newest_any is not None and (newest_any - latest) > timedelta(days=max_days_back):
        return None
    return latest


@service(*WORKING, action="see the day's crews")
def crews_on_day(uow: UnitOfWork, city: str, day: date) -> list[str]:
    """Return the crews with stops on the city's assigned plans for ``day`` (sorted).

    A crew member only learns about their own crew; supervisors see every crew.
    """
    principal = uow.principal
    crews: set[str] = set()
    for row in uow.plans.for_date(city, day):
        if row.status == "assigned":
            crews.update(r.crew_name for r in row.routes
                         if r.stops and r.status != "superseded")
    if principal.role is Role.CREW:
        crews &= {principal.crew or ""}
    return sorted(crews)


@dataclass(frozen=True)
class PlanChoice:
    """A plan a supervisor may print."""

    plan_id: int
    status: str
    created_at: datetime
    created_by: str
    crews: tuple[str, ...]

    def label(self, tz: ZoneInfo) -> str:
        """Return how the plan reads in a select box."""
        made = self.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        return (
            f"Plan {self.plan_id} · {self.status} · {len(self.crews)} crews · "
            f"made {made} by {Principal.who(self.created_by)}"
        )


@service(*READING, action="see plans")
def plan_choices(uow: UnitOfWork, city: str, day: date) -> list[PlanChoice]:
    """Return the day's assigned and draft plans: the assigned one first, then newest first.

    Superseded plans are left out: nobody works from them.
    """
    rows = [r for r in uow.plans.for_date(city, day) if r.status in ("assigned", "draft")]
    rows.sort(key=lambda r: (r.status != "assigned", -r.id))
    return [
        PlanChoice(
            plan_id=r.id,
            status=r.status,
            created_at=r.created_at,
            created_by=r.created_by,
            crews=tuple(sorted(rt.crew_name for rt in r.routes if rt.stops)),
        )
        for r in rows
    ]


@service(*READING, action="see plans")
def sheet_views(uow: UnitOfWork, plan_id: int, crew: str | None = None) -> list[RouteView]:
    """Return the plan's routes with stops (only ``crew``'s when given), by crew name."""
    row = uow.plans.get(plan_id)
    if row is None:
        return []
    routes = [r for r in row.routes if r.stops and (crew is None or r.crew_name == crew)
              and r.status != "superseded"]
    return [_route_view(uow, r) for r in sorted(routes, key=lambda r: r.crew_name)]


# ------------------------------------------------------------------------ pure shaping


def progress(view: RouteView) -> tuple[int, int]:
    """Return ``(finished, total)`` stops: done or could-not-complete count as finished."""
    finished = sum(1 for s in view.stops if s.status in (STOP_DONE, STOP_CANT))
    return finished, len(view.stops)


def local_time(t: datetime | None, tz: ZoneInfo) -> str:
    """Return ``HH:MM`` of an aware timestamp in ``tz`` (``''`` when missing)."""
    return "" if t is None else t.astimezone(tz).strftime("%H:%M")


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown syntax so resident text shows as typed.

    Use it for text passed to Streamlit calls that render Markdown (``st.markdown``,
    ``st.warning``, labels); HTML is never enabled there.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def export_name(day: date, plan_id: int, crew: str | None, ext: str) -> str:
    """Return a safe download file name, e.g. ``route-2020-01-03-plan4-NC-bulky-1.gpx``."""
    who = re.sub(r"[^A-Za-z0-9_-]+", "_", crew) if crew else "all-crews"
    return f"route-{day.isoformat()}-plan{int(plan_id)}-{who}.{ext}"


def plan_for_crew(plan: Plan, crew: str | None) -> Plan:
    """Return the plan with only ``crew``'s route (and no unplanned stops).

    ``None`` returns the plan unchanged, for exports of every crew.
    """
    if crew is None:
        return plan
    return replace(plan, routes=[plan.route(crew)], unplanned=[])


def crew_depots(plan: Plan) -> dict[str, tuple[float, float]]:
    """Return crew -> ``(lon, lat)`` of the depot its route starts from."""
    return {r.crew: (r.depot_lon, r.depot_lat) for r in plan.routes}


def crew_route_geojson(plan: Plan, crew: str) -> dict[str, Any]:
    """Return ``crew``'s route as GeoJSON for :func:`geo.maps.route_layer`.

    From :meth:`Plan.to_geojson`, kept to the crew's features, with the depot as a
    ``kind: depot`` point, each stop's ``seq`` as ``sequence`` (so the markers are
    numbered) and arrival as local ``HH:MM``.
    """
    route = plan.route(crew)
    feats: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [route.depot_lon, route.depot_lat]},
            "properties": {"kind": "depot", "crew": crew, "code": route.depot},
        }
    ]
    for f in plan.to_geojson()["features"]:
        props = dict(f.get("properties") or {})
        if props.get("crew") != crew:
            continue
        if props.get("kind") == "stop":
            props["sequence"] = props.pop("seq", None)
            arrival = props.get("arrival")
            if arrival:
                props["arrival"] = local_time(datetime.fromisoformat(str(arrival)), plan.zone)
        feats.append({**f, "properties": props})
    return {"type": "FeatureCollection", "features": feats}


@service(*WORKING, action="see a crew's route")
def crew_map_geojson(uow: UnitOfWork, plan_id: int, crew: str) -> dict[str, Any]:
    """Return :func:`crew_route_geojson` of ``crew`` in a stored plan.

    A crew member may ask only for their own crew: no other crew's stops leave here.
    """
    require_crew(uow.principal, crew)
    row = uow.plans.get(plan_id)
    if row is None:
        raise NotFoundError(f"plan {plan_id} does not exist")
    return crew_route_geojson(plan_from_rows(row), crew)


# --------------------------------------------------------------------------- the sheet


def _e(value: object) -> str:
    """HTML-escape any value (quotes too); ``None`` is empty."""
    return "" if value is None else html.escape(str(value), quote=True)


def _safe_url(url: str) -> str:
    """Return ``url`` escaped for an ``href`` if it is https, else ``''``."""
    return _e(url) if url.startswith("https://") else ""


def route_svg(
    stops: Sequence[StopView],
    depot: tuple[float, float] | None = None,
    *,
    width: int = 320,
    height: int = 220,
    pad: int = 16,
    colour: str = "#4e79a7",
) -> str:
    """Draw a route as a small inline SVG: a polyline through numbered stops.

    Longitude is scaled by the cosine of the mean latitude so distances look right;
    no tiles, no network. Only sequence numbers are written as text.

    Parameters
    ----------
    stops
        The route's stops in order; those without coordinates are skipped.
    depot
        ``(lon, lat)`` of the depot: the line starts and ends there (a square).
    width, height, pad
        Size of the drawing and its margin, in pixels.
    colour
        Stroke colour of the line and the stop circles (``#rrggbb``).

    Returns
    -------
    str
        An ``<svg>`` element, or ``''`` when nothing has coordinates.
    """
    pts: list[tuple[int, float, float]] = [
        (s.sequence, s.lon, s.lat) for s in stops if s.lon is not None and s.lat is not None
    ]
    every: list[tuple[float, float]] = [(lon, lat) for _, lon, lat in pts]
    if depot is not None:
        every.append(depot)
    if not every:
        return ""
    lat0 = math.radians(sum(lat for _, lat in every) / len(every))
    kx = math.cos(lat0)
    xs = [lon * kx for lon, _ in every]
    ys = [lat for _, lat in every]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    scale = min(width - 2 * pad, height - 2 * pad) / span
    ox = (width - (max(xs) - min(xs)) * scale) / 2
    oy = (height - (max(ys) - min(ys)) * scale) / 2

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return (ox + (lon * kx - min(xs)) * scale, height - oy - (lat - min(ys)) * scale)

    marks = [(seq, *xy(lon, lat)) for seq, lon, lat in pts]
    line = [(x, y) for _, x, y in marks]
    if depot is not None:
        line = [xy(*depot), *line, xy(*depot)]
    colour = colour if re.fullmatch(r"#[0-9a-fA-F]{6}", colour) else "#4e79a7"
    out = [
        f'<svg class="route-map" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="Sketch of the route">',
        f'<rect width="{width}" height="{height}" fill="#f6f5f2" stroke="#bbb"/>',
        '<polyline fill="none" stroke="{c}" stroke-width="2" points="{p}"/>'.format(
            c=colour, p=" ".join(f"{x:.1f},{y:.1f}" for x, y in line)
        ),
    ]
    if depot is not None:
        dx, dy = xy(*depot)
        out.append(f'<rect x="{dx - 6:.1f}" y="{dy - 6:.1f}" width="12" height="12" fill="#333"/>')
    for seq, x, y in marks:
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="8" fill="#fff" stroke="{colour}" '
            f'stroke-width="2"/><text x="{x:.1f}" y="{y + 3.5:.1f}" font-size="10" '
            f'text-anchor="middle" font-family="sans-serif">{int(seq)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


_SHEET_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111;
       margin: 0; font-size: 11pt; }
.page { padding: 12mm 10mm; page-break-after: always; break-after: page; }
.page:last-child { page-break-after: auto; break-after: auto; }
h1 { font-size: 16pt; margin: 0 0 2mm; }
.meta { color: #444; margin: 0 0 4mm; }
.top { display: flex; gap: 6mm; align-items: flex-start; }
.summary { flex: 1; }
.summary dt { font-weight: 600; float: left; clear: left; width: 32mm; }
.summary dd { margin: 0 0 1mm 34mm; }
table { border-collapse: collapse; width: 100%; margin-top: 4mm; }
th, td { border: 1px solid #999; padding: 1.5mm 2mm; vertical-align: top; text-align: left; }
th { background: #eee; }
tr { page-break-inside: avoid; break-inside: avoid; }
td.seq, td.eta, td.tick { white-space: nowrap; }
td.tick { width: 10mm; text-align: center; }
.notes { white-space: pre-wrap; font-size: 9.5pt; }
.small { font-size: 9pt; color: #444; }
a { color: #1a4f8b; }
@media print { a { text-decoration: none; } .noprint { display: none; } }
"""


def route_sheet_html(
    views: Sequence[RouteView],
    pack_display_name: str,
    tz: ZoneInfo,
    day: date,
    *,
    category_labels: Mapping[str, str] | None = None,
    depots: Mapping[str, tuple[float, float]] | None = None,
    colours: Mapping[str, str] | None = None,
    with_map: bool = True,
) -> str:
    """Return a printable HTML document with one page per crew.

    Parameters
    ----------
    views
        The routes to print, one page each, in the order given.
    pack_display_name
        The city's name as people read it.
    tz
        The city's time zone: ETAs print as local ``HH:MM``.
    day
        The service date.
    category_labels
        Category code -> label (codes print as they are otherwise).
    depots
        Crew -> depot ``(lon, lat)``, for the sketch map.
    colours
        Crew -> ``#rrggbb`` line colour of the sketch map.
    with_map
        Draw the inline SVG sketch of each route.

    Returns
    -------
    str
        A complete HTML document; every data text in it is escaped, and its
        :data:`SHEET_CSP` forbids scripts.
    """
    labels = dict(category_labels or {})
    title = f"Route sheets · {pack_display_name} · {day.isoformat()}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # defence in depth: even text that escaped escaping could not run or load anything
        f'<meta http-equiv="Content-Security-Policy" content="{SHEET_CSP}">',
        f"<title>{_e(title)}</title>",
        f"<style>{_SHEET_CSS}</style></head><body>",
    ]
    if not views:
        parts.append(f'<div class="page"><h1>{_e(title)}</h1><p>No routes.</p></div>')
    for view in views:
        parts.append(_crew_page(view, pack_display_name, tz, day, labels, depots, colours,
                                with_map))
    parts.append("</body></html>")
    return "\n".join(parts)


def _crew_page(
    view: RouteView,
    pack_display_name: str,
    tz: ZoneInfo,
    day: date,
    labels: Mapping[str, str],
    depots: Mapping[str, tuple[float, float]] | None,
    colours: Mapping[str, str] | None,
    with_map: bool,
) -> str:
    etas = [s.eta for s in view.stops if s.eta is not None]
    ends = [s.departure for s in view.stops if s.departure is not None] or etas
    window = f"{local_time(min(etas), tz)}–{local_time(max(ends), tz)}" if etas else ""
    done, total = progress(view)
    rows = [
        ("Crew", _e(view.crew)),
        ("District", _e(view.district or "—")),
        ("Stops", f"{total}" + (f" ({done} finished)" if done else "")),
        ("First–last stop", _e(window)),
        ("Distance", f"{view.distance_m / 1000:.1f} km"),
        ("Driving", f"{view.drive_s / 3600:.1f} h"),
        ("Plan", f"{view.plan_id} ({_e(view.plan_status)})"),
    ]
    summary = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    sketch = ""
    if with_map:
        sketch = route_svg(
            view.stops,
            (depots or {}).get(view.crew),
            colour=(colours or {}).get(view.crew, "#4e79a7"),
        )
    body = []
    for s in view.stops:
        url = _safe_url(s.navigation_url)
        link = (f'<a href="{url}" target="_blank" rel="noopener">Directions</a>' if url
                else '<span class="small">no location</span>')
        category = labels.get(s.category, s.category)
        # what the crew wrote (a sheet printed after the work shows it)
        crew_note = (f'<div class="small">Crew: {_e(s.note)}</div>' if s.note else "")
        status = "" if s.status == STOP_PENDING else (
            f'<div class="small">{_e(STATUS_LABELS.get(s.status, s.status))}</div>'
        )
        body.append(
            "<tr>"
            f'<td class="seq">{int(s.sequence)}</td>'
            f'<td class="eta">{_e(local_time(s.eta, tz))}</td>'
            f"<td>{_e(s.address)}<div class=\"small\">{link}</div></td>"
            f"<td>{_e(s.request_id)}<div class=\"small\">{_e(_kind(s.service_code, category))}"
            f"</div>{status}</td>"
            f'<td class="notes">{_e(s.description)}{crew_note}</td>'
            '<td class="tick">☐</td>'
            "</tr>"
        )
    return (
        '<div class="page">'
        f"<h1>Route sheet · {_e(view.crew)}</h1>"
        f'<p class="meta">{_e(pack_display_name)} · {day:%A %d %B %Y} · '
        f"times are local ({_e(str(tz))})</p>"
        f'<div class="top"><dl class="summary">{summary}</dl>{sketch}</div>'
        "<table><thead><tr><th>#</th><th>ETA</th><th>Address</th><th>Request</th>"
        "<th>Notes</th><th>Done</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def _kind(service_code: str | None, category: str) -> str:
    """Return the request's kind: the city's own type and the category, once if the same.

    >>> _kind("Bulky Items", "Bulky items"), _kind("Metal/Household Appliances", "Bulky items")
    ('Bulky items', 'Metal/Household Appliances · Bulky items')
    """
    if not service_code or service_code.casefold() == category.casefold():
        return category
    return f"{service_code} · {category}"


# ------------------------------------------------------------------- route exports

#: Export formats of a day's routes: format -> (MIME type, file extension).
ROUTE_FORMATS: dict[str, tuple[str, str]] = {
    "csv": ("text/csv", "csv"),
    "gpx": ("application/gpx+xml", "gpx"),
    "geojson": ("application/geo+json", "geojson"),
}

#: Columns of a route CSV, in order.
ROUTE_CSV_COLUMNS: tuple[str, ...] = (
    "crew", "seq", "request_id", "address", "category", "district", "lon", "lat", "eta",
    "status", "description", "note", "navigation_url",
)  # fmt: skip

_GPX_NS = "http://www.topografix.com/GPX/1/1"
# Characters XML 1.0 cannot carry at all (not even escaped): most C0 controls.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _label(stop: StopView, labels: Mapping[str, str]) -> str:
    return labels.get(stop.category, stop.category)


def _local_iso(t: datetime | None, tz: ZoneInfo) -> str:
    """Return ``t`` in ``tz`` as ISO 8601 to the minute, with its offset (``''`` if none)."""
    return "" if t is None else t.astimezone(tz).isoformat(timespec="minutes")


def _coord(value: float | None) -> float | str:
    return "" if value is None else round(value, 6)


def _xml_text(text: str) -> str:
    """Return ``text`` without the characters XML 1.0 forbids (ElementTree escapes the rest)."""
    return _XML_INVALID.sub("", text)


def route_csv(
    views: Sequence[RouteView],
    tz: ZoneInfo,
    *,
    category_labels: Mapping[str, str] | None = None,
) -> str:
    """Return the routes as CSV: one row per stop, crew by crew, in route order.

    Parameters
    ----------
    views
        The routes, one per crew, in the order the rows should come.
    tz
        The city's time zone: ``eta`` is local ISO 8601 with its offset
        (``2020-01-03T07:10-08:00``).
    category_labels
        Category code -> label; the ``category`` column holds the label (the code when
        the city has none).

    Returns
    -------
    str
        A header of :data:`ROUTE_CSV_COLUMNS` and the rows. Every text cell goes through
        :func:`~dispatch.text.neutralise_formula`, so a note such as ``=cmd`` reads as
        text in a spreadsheet. A crew with no stops has no rows; stops without a
        location have empty ``lon``, ``lat`` and ``navigation_url``.
    """
    labels = dict(category_labels or {})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(ROUTE_CSV_COLUMNS), lineterminator="\n")
    w.writeheader()
    for view in views:
        for s in view.stops:
            row: dict[str, object] = {
                "crew": view.crew,
                "seq": s.sequence,
                "request_id": s.request_id,
                "address": s.address,
                "category": _label(s, labels),
                "district": s.district or "",
                "lon": _coord(s.lon),
                "lat": _coord(s.lat),
                "eta": _local_iso(s.eta, tz),
                "status": STATUS_LABELS.get(s.status, s.status),
                "description": s.description,
                "note": s.note or "",
                "navigation_url": s.navigation_url,
            }
            w.writerow({k: neutralise_formula(v) for k, v in row.items()})
    return buf.getvalue()


def _gpx_desc(stop: StopView, labels: Mapping[str, str]) -> str:
    parts = [_label(stop, labels), f"request {stop.request_id}"]
    if stop.description.strip():
        parts.append(stop.description.strip())
    if stop.note and stop.note.strip():
        parts.append(f"crew note: {stop.note.strip()}")
    return _xml_text(" · ".join(parts))


def route_gpx(
    views: Sequence[RouteView],
    *,
    category_labels: Mapping[str, str] | None = None,
) -> str:
    """Return the routes as a GPX 1.1 document for navigation devices.

    Parameters
    ----------
    views
        The routes, one ``<rte>`` each (named by the crew), in the order given.
    category_labels
        Category code -> label, for each point's ``<desc>`` and ``<type>``.

    Returns
    -------
    str
        The document. Each stop with a location is an ``<rtept>`` whose ``<name>`` is
        its address (the request id when it has none), whose ``<desc>`` holds the
        category label, the request id, the resident's description and the crew's
        note, and whose ``<time>`` is the ETA in UTC. Stops without a location are
        left out (a route point needs one); a crew with no stops gets an empty
        ``<rte>``. A route that follows the roads (:attr:`RouteView.geometry`) also
        gets a ``<trk>`` of that path; straight-line routes get none. Text is escaped
        by the XML writer, and characters XML 1.0 cannot carry are dropped.
    """
    labels = dict(category_labels or {})
    root = ET.Element(f"{{{_GPX_NS}}}gpx", {"version": "1.1", "creator": "curbside"})
    for view in views:
        rte = ET.SubElement(root, f"{{{_GPX_NS}}}rte")
        ET.SubElement(rte, f"{{{_GPX_NS}}}name").text = _xml_text(view.crew)
        for s in view.stops:
            if s.lon is None or s.lat is None:
                continue
            pt = ET.SubElement(rte, f"{{{_GPX_NS}}}rtept",
                               {"lat": f"{s.lat:.6f}", "lon": f"{s.lon:.6f}"})
            if s.eta is not None:
                ET.SubElement(pt, f"{{{_GPX_NS}}}time").text = s.eta.astimezone(
                    ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
            ET.SubElement(pt, f"{{{_GPX_NS}}}name").text = _xml_text(
                s.address.strip() or s.request_id)
            ET.SubElement(pt, f"{{{_GPX_NS}}}desc").text = _gpx_desc(s, labels)
            ET.SubElement(pt, f"{{{_GPX_NS}}}type").text = _xml_text(_label(s, labels))
    for view in views:
        if not view.stops or not view.geometry:
            continue
        trk = ET.SubElement(root, f"{{{_GPX_NS}}}trk")
        ET.SubElement(trk, f"{{{_GPX_NS}}}name").text = _xml_text(view.crew)
        seg = ET.SubElement(trk, f"{{{_GPX_NS}}}trkseg")
        for lon, lat in view.geometry:
            ET.SubElement(seg, f"{{{_GPX_NS}}}trkpt", {"lat": f"{lat:.6f}", "lon": f"{lon:.6f}"})
    ET.register_namespace("", _GPX_NS)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def route_geojson(
    views: Sequence[RouteView],
    tz: ZoneInfo,
    *,
    category_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return the routes' stops as an RFC 7946 FeatureCollection of Points.

    Parameters
    ----------
    views
        The routes, one per crew.
    tz
        The city's time zone: ``eta`` is local ISO 8601 with its offset.
    category_labels
        Category code -> label, for the ``category`` property.

    Returns
    -------
    dict
        One Feature per stop, in route order: a Point at ``[lon, lat]`` (``null``
        geometry for a stop without a location), with the properties ``crew``,
        ``seq``, ``request_id``, ``address``, ``category`` (label), ``category_code``,
        ``district``, ``eta``, ``status``, ``description`` and ``note``. No ``crs``.
    """
    labels = dict(category_labels or {})
    feats: list[dict[str, Any]] = []
    for view in views:
        for s in view.stops:
            geometry = (None if s.lon is None or s.lat is None else
                        {"type": "Point", "coordinates": [round(s.lon, 6), round(s.lat, 6)]})
            feats.append({
                "type": "Feature",
                "geometry": geometry,
                "properties": {
                    "crew": view.crew,
                    "seq": s.sequence,
                    "request_id": s.request_id,
                    "address": s.address,
                    "category": _label(s, labels),
                    "category_code": s.category,
                    "district": s.district,
                    "eta": _local_iso(s.eta, tz) or None,
                    "status": STATUS_LABELS.get(s.status, s.status),
                    "description": s.description,
                    "note": s.note,
                },
            })
    return {"type": "FeatureCollection", "features": feats}


def route_export(
    views: Sequence[RouteView],
    fmt: str,
    tz: ZoneInfo,
    *,
    category_labels: Mapping[str, str] | None = None,
) -> bytes:
    """Return the routes as a document of format ``fmt``, UTF-8 encoded.

    Parameters
    ----------
    views
        The routes, one per crew.
    fmt
        One of :data:`ROUTE_FORMATS`: ``csv`` (:func:`route_csv`), ``gpx``
        (:func:`route_gpx`) or ``geojson`` (:func:`route_geojson`).
    tz
        The city's time zone.
    category_labels
        Category code -> label.

    Returns
    -------
    bytes
        The document.

    Raises
    ------
    ValidationError
        ``fmt`` is not one of :data:`ROUTE_FORMATS`.
    """
    if fmt == "csv":
        text = route_csv(views, tz, category_labels=category_labels)
    elif fmt == "gpx":
        text = route_gpx(views, category_labels=category_labels)
    elif fmt == "geojson":
        text = json.dumps(route_geojson(views, tz, category_labels=category_labels),
                          ensure_ascii=False, indent=1)
    else:
        raise ValidationError(
            f"route export format {fmt!r} is not one of {', '.join(ROUTE_FORMATS)}")
    return text.encode("utf-8")


@service(*WORKING, action="export routes")
def export_day_routes(
    uow: UnitOfWork,
    pack: CityPack,
    day: date,
    fmt: str,
    crew: str | None = None,
) -> bytes:
    """Return the routes of the plan assigned for ``day`` as a CSV, GPX or GeoJSON document.

    Parameters
    ----------
    uow
        Unit of work. Supervisors and admins export any crew's route or every route;
        a crew member only their own crew's (``crew=None`` means their own).
    pack
        The city pack: its name, time zone and category labels.
    day
        The service date.
    fmt
        ``csv``, ``gpx`` or ``geojson`` (see :func:`route_export`).
    crew
        Only this crew's route; ``None`` for every crew with stops.

    Returns
    -------
    bytes
        The document, UTF-8.

    Raises
    ------
    AccessDeniedError
        A crew member asked for another crew's route.
    NotFoundError
        No plan is assigned for ``day``, or ``crew`` has no route on it.
    ValidationError
        ``fmt`` is not a known format.
    """
    principal = uow.principal
    if principal.role is Role.CREW:
        crew = crew if crew is not None else principal.crew
        require_crew(principal, crew or "", action="export the route")
    if fmt not in ROUTE_FORMATS:
        raise ValidationError(
            f"route export format {fmt!r} is not one of {', '.join(ROUTE_FORMATS)}")
    plans = [row for row in uow.plans.for_date(pack.name, day) if row.status == "assigned"]
    if not plans:
        raise NotFoundError(f"no plan is assigned for {day:%A %d %B %Y} ({day.isoformat()}); "
                            "assign the day's plan first")
    routes = [r for row in plans for r in row.routes if r.status != "superseded"]
    if crew is not None:
        routes = [r for r in routes if r.crew_name == crew]
        if not routes:
            raise NotFoundError(f"crew {crew!r} has no route on the plan assigned for "
                                f"{day.isoformat()}")
    else:
        routes = [r for r in routes if r.stops]
    views = [_route_view(uow, r) for r in sorted(routes, key=lambda r: r.crew_name)]
    return route_export(views, fmt, pack.timezone, category_labels=pack.category_labels)
