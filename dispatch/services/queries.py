"""Read-only queries behind the dashboard's tables and maps."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from dispatch.auth import READING, SIGNED_IN, service
from dispatch.model import CLOSED_STATUSES, RequestStatus
from dispatch.store import RequestFilter, UnitOfWork

#: Columns of :func:`requests_frame`, in order.
FRAME_COLUMNS = (
    "id",
    "request_id",
    "source",
    "category",
    "service_code",
    "status",
    "open311_status",
    "channel",
    "district",
    "lon",
    "lat",
    "geocode_precision",
    "address",
    "requested_at",
    "closed_at",
    "service_date",
    "assigned_org",
    "description",
)

OPEN_STATUSES = tuple(s.value for s in RequestStatus if s not in CLOSED_STATUSES)
ALL_STATUSES = tuple(s.value for s in RequestStatus)


@dataclass(frozen=True)
class MapFilter:
    """What a person chose in the map's filters (local dates, inclusive)."""

    categories: tuple[str, ...] | None = None
    districts: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    first_day: date | None = None
    last_day: date | None = None

    def to_request_filter(self, tz: ZoneInfo) -> RequestFilter:
        """Return the store filter, turning local days into UTC instants."""

        def start(day: date) -> datetime:
            return datetime.combine(day, time(0), tzinfo=tz)

        return RequestFilter(
            categories=self.categories,
            districts=self.districts,
            statuses=self.statuses,
            requested_from=start(self.first_day) if self.first_day else None,
            requested_until=start(self.last_day + timedelta(days=1)) if self.last_day else None,
        )


#: Most single requests a map draws; beyond, it draws counts per hexagon.
MAX_MARKERS = 20_000
#: Longest description shown in a map popup (the rest is on the request's page).
POPUP_DESCRIPTION_CHARS = 160


def _open311(status: pd.Series) -> pd.Series:
    table = {s.value: s.open311 for s in RequestStatus}
    return status.map(table).fillna("open")


@service(*READING, action="browse requests")
def requests_frame(uow: UnitOfWork, flt: MapFilter, tz: ZoneInfo,
                   limit: int | None = None) -> pd.DataFrame:
    """Return the requests matching ``flt`` as a table (one row per request), column-wise.

    ``request_id`` is the city's own id (``external_id``); ``id`` is the store key.
    At most ``limit`` rows, oldest first.
    """
    columns = [c for c in FRAME_COLUMNS if c != "open311_status"]
    frame = uow.stats.frame(flt.to_request_filter(tz), columns, limit=limit)
    frame.insert(FRAME_COLUMNS.index("open311_status"), "open311_status",
                 _open311(frame["status"]))
    return frame


@dataclass(frozen=True)
class MapData:
    """What the requests map draws for one filter.

    Attributes
    ----------
    total, located, open_now
        Requests matching, those with a position, those open (Open311 ``open``).
    points
        The located requests themselves while there are at most :data:`MAX_MARKERS`
        of them (in view), else ``None``.
    cells
        Otherwise, located requests counted per H3 cell at ``resolution``.
    resolution
        H3 resolution of ``cells`` (finer as the map is zoomed in).
    """

    total: int
    located: int
    open_now: int
    points: pd.DataFrame | None
    cells: pd.DataFrame | None
    resolution: int


def resolution_for_zoom(zoom: int | None) -> int:
    """Return the H3 resolution whose hexagons read well at a Leaflet zoom level."""
    if zoom is None or zoom <= 10:
        return 7
    if zoom <= 12:
        return 8
    if zoom <= 14:
        return 9
    return 10


@service(*READING, action="browse requests")
def map_data(uow: UnitOfWork, flt: MapFilter, tz: ZoneInfo, *,
             bbox: tuple[float, float, float, float] | None = None,
             zoom: int | None = None, max_markers: int = MAX_MARKERS) -> MapData:
    """Return the counts and what to draw for the requests map, bounded at any size.

    The database counts the requests; single requests are read only while at most
    ``max_markers`` are in view (``bbox``, ``lon, lat`` degrees), otherwise hexagon
    counts at a resolution that refines with ``zoom``.
    """
    from dispatch.services.analytics import hex_counts

    base = flt.to_request_filter(tz)
    by_status = uow.stats.count_by(base, ("status",))
    total = int(by_status["n"].sum())
    open_now = int(by_status.loc[_open311(by_status["status"]) == "open", "n"].sum())
    located = int(uow.stats.count_by(replace(base, located=True), ())["n"].sum())
    view = replace(base, located=True, bbox=bbox) if bbox is not None else replace(
        base, located=True)
    in_view = located if bbox is None else int(uow.stats.count_by(view, ())["n"].sum())
    if in_view <= max_markers:
        points = uow.stats.frame(view, ["id", "request_id", "category", "status", "district",
                                        "address", "requested_at", "service_code",
                                        "description", "lon", "lat"])
        points["description"] = points["description"].map(
            lambda t: t if t is None or len(t) <= POPUP_DESCRIPTION_CHARS
            else t[: POPUP_DESCRIPTION_CHARS - 1] + "…")
        return MapData(total, located, open_now, points, None, 0)
    resolution = resolution_for_zoom(zoom)
    return MapData(total, located, open_now, None, hex_counts(uow, view, resolution),
                   resolution)


@service(*READING, action="browse requests")
def request_date_range(uow: UnitOfWork, tz: ZoneInfo) -> tuple[date, date] | None:
    """Return the first and last local day on which stored requests were made."""
    lo, hi = uow.requests.date_range()
    if lo is None or hi is None:
        return None
    return lo.astimezone(tz).date(), hi.astimezone(tz).date()


@service(*SIGNED_IN, action="read the store")
def store_version(uow: UnitOfWork) -> int:
    """Return a number that moves with every write (the newest event's id).

    Pages key their cached reads by it, so a cache never outlives a change.
    """
    return uow.events.last_id()
