"""Read side of the managers' pages: KPIs, hot spots, sweeps, routes, the monthly report.

Every figure is counted by the database for the window the page shows (``GROUP BY``
on the indexed request columns and the columns derived at write time: local service
day, H3 cell, first action). Medians read one narrow column of durations computed in
SQL. Nothing here reads one row per request of the history into Python objects; the
shaping of what comes back is pure and lives in :mod:`dispatch.analytics`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from dispatch.analytics.hotspots import (
    DEFAULT_RESOLUTION,
    SPOT_RESOLUTION,
    GiStarParams,
    area_cells,
    gi_star,
    hex_table,
    repeat_locations,
    sweep_stops,
)
from dispatch.analytics.kpis import (
    AGE_BOUNDS_H,
    backlog_ages,
    outcomes,
    sla_compliance,
)
from dispatch.auth import READING, service
from dispatch.citypack import CityPack
from dispatch.services.queries import MapFilter
from dispatch.store import RequestFilter, UnitOfWork

if TYPE_CHECKING:
    from dispatch.planning.problem import Stop

__all__ = [
    "ROUTE_COLUMNS",
    "SWEEP_LOOKBACK_DAYS",
    "HotSpots",
    "Kpis",
    "hex_counts",
    "hot_spots",
    "kpis",
    "routes_frame",
    "sweep_stops_for_day",
    "with_days",
]

#: Days of history :func:`sweep_stops_for_day` looks at.
SWEEP_LOOKBACK_DAYS = 28
#: Columns of :func:`routes_frame`.
ROUTE_COLUMNS: tuple[str, ...] = ("plan_id", "service_date", "crew", "district", "stops",
                                  "done", "cant_complete", "drive_s", "service_s",
                                  "distance_m")
#: Heat points drawn at most (beyond, the heat layer is drawn from cell counts).
MAX_HEAT_POINTS = 20_000


def _located(flt: RequestFilter) -> RequestFilter:
    return replace(flt, located=True)


@dataclass(frozen=True)
class Kpis:
    """What the KPI page shows for one window, counted in SQL.

    Attributes
    ----------
    durations
        One row per request of the window: ``category``, ``district``, ``status``,
        ``close_h`` (crew-closed only), ``first_action_h`` (hours, computed in SQL).
    daily
        Requests per local ``service_day`` and ``category``, ``district``, ``channel``
        (column ``n``), for volumes per day, week or month.
    sla
        :func:`dispatch.analytics.kpis.sla_compliance` by category.
    backlog
        :func:`dispatch.analytics.kpis.backlog_ages` by category (open now).
    outcomes
        :func:`dispatch.analytics.kpis.outcomes` by category.
    """

    durations: pd.DataFrame
    daily: pd.DataFrame
    sla: pd.DataFrame
    backlog: pd.DataFrame
    outcomes: pd.DataFrame

    @property
    def requests(self) -> int:
        """Return the number of requests in the window."""
        return int(self.daily["n"].sum()) if not self.daily.empty else 0


@service(*READING, action="read service statistics")
def kpis(uow: UnitOfWork, pack: CityPack, flt: MapFilter) -> Kpis:
    """Return the KPI figures of a window (categories, districts, local days).

    Parameters
    ----------
    uow
        Unit of work (read only).
    pack
        The city pack: time zone, SLA targets.
    flt
        What the manager chose.
    """
    req = flt.to_request_filter(pack.timezone)
    now = uow.now()
    sla_h = {c.code: c.sla_h for c in pack.categories.values()}
    durations = uow.stats.durations(req, by=("category", "district"))
    daily = uow.stats.count_by(req, ("service_day", "category", "district", "channel"))
    closed = uow.stats.sla_counts(req, sla_h, by=("category",))
    past = uow.stats.open_past_sla(req, now, sla_h, by=("category",))
    backlog = uow.stats.backlog(req, now, AGE_BOUNDS_H, by="category")
    by_status = uow.stats.count_by(req, ("category", "status"))
    return Kpis(durations=durations, daily=daily,
                sla=sla_compliance(closed, past, sla_h, by=["category"]),
                backlog=backlog_ages(backlog, by="category"),
                outcomes=outcomes(by_status, by="category"))


@service(*READING, action="read service statistics")
def hex_counts(uow: UnitOfWork, flt: RequestFilter,
               resolution: int = DEFAULT_RESOLUTION) -> pd.DataFrame:
    """Return located requests per H3 cell (counted in SQL), shaped for maps and Gi*.

    See :func:`dispatch.analytics.hotspots.hex_table` for the columns.
    """
    located = _located(flt)
    key = f"h3_{resolution}"
    by_category = uow.stats.count_by(located, (key, "category")).rename(columns={key: "cell"})
    by_district = uow.stats.count_by(located, (key, "district")).rename(columns={key: "cell"})
    return hex_table(by_category, by_district)


@dataclass(frozen=True)
class HotSpots:
    """What the hot-spots page shows for one window, counted in SQL.

    Attributes
    ----------
    requests, located, closed_hidden
        Requests in the window (as filtered), those with a position, and the closed
        ones hidden by the open-only filter.
    counts
        Requests per H3 cell (:func:`hex_counts`).
    spots
        Gi* over the study area (:func:`dispatch.analytics.hotspots.gi_star`).
    heat
        ``lat``, ``lon``, ``weight`` of the heat layer: single requests while there are
        at most :data:`MAX_HEAT_POINTS`, else the cells at resolution 10, weighted.
    """

    requests: int
    located: int
    closed_hidden: int
    counts: pd.DataFrame
    spots: pd.DataFrame
    heat: pd.DataFrame


@service(*READING, action="read service statistics")
def hot_spots(uow: UnitOfWork, flt: RequestFilter, area: list[str], *,
              resolution: int = DEFAULT_RESOLUTION, open_only: bool = True,
              params: GiStarParams | None = None) -> HotSpots:
    """Return hexagon counts, Gi* spots and the heat layer of a window.

    Parameters
    ----------
    uow
        Unit of work (read only).
    flt
        The window (categories, districts, requested between).
    area
        The study area's cells at ``resolution`` (the city limit or chosen districts).
    resolution
        H3 resolution of the hexagons.
    open_only
        Only requests open now (closed and fixed ones counted as hidden).
    params
        Gi* parameters.
    """
    from dispatch.services.queries import OPEN_STATUSES

    shown = replace(flt, statuses=list(OPEN_STATUSES)) if open_only else flt
    total_all = int(uow.stats.count_by(flt, ())["n"].sum())
    total = int(uow.stats.count_by(shown, ())["n"].sum())
    located_n = int(uow.stats.count_by(_located(shown), ())["n"].sum())
    counts = hex_counts(uow, shown, resolution)
    spots = (gi_star(counts, params or GiStarParams(), area=area) if not counts.empty
             else counts.iloc[0:0])
    if located_n <= MAX_HEAT_POINTS:
        points = uow.stats.frame(_located(shown), ["lon", "lat"])
        heat = pd.DataFrame({"lat": points["lat"].round(5), "lon": points["lon"].round(5),
                             "weight": 1.0})
    else:
        cells = hex_counts(uow, shown, 10)
        peak = max(float(cells["count"].max()), 1.0)
        heat = pd.DataFrame({"lat": cells["lat"], "lon": cells["lon"],
                             "weight": np.sqrt(cells["count"] / peak)})
    return HotSpots(total, located_n, total_all - total, counts, spots, heat)


@service(*READING, action="read service statistics")
def repeat_spots(uow: UnitOfWork, flt: RequestFilter, categories: tuple[str, ...], *,
                 min_requests: int = 2, limit: int = 200) -> pd.DataFrame:
    """Rank the spots (about 50 m across) with repeated requests of ``categories``.

    The database finds the busiest spots (``GROUP BY`` cell ``HAVING`` enough); only
    their requests are read to list them
    (:func:`dispatch.analytics.hotspots.repeat_locations`).
    """
    scoped = _located(replace(flt, categories=list(categories)))
    top = uow.stats.repeat_spots(scoped, SPOT_RESOLUTION, min_requests, limit)
    if top.empty:
        return repeat_locations(pd.DataFrame(columns=["request_id", "category", "lon", "lat",
                                                      "requested_at"]))
    rows = uow.stats.cells_frame(scoped, SPOT_RESOLUTION, [int(c) for c in top["cell"]],
                                 ["request_id", "category", "lon", "lat", "requested_at",
                                  "address", "district"])
    return repeat_locations(rows, list(categories), min_requests=min_requests)


@service(*READING, action="read service statistics")
def district_counts(uow: UnitOfWork, flt: RequestFilter) -> pd.DataFrame:
    """Return requests of a window counted by district (column ``n``)."""
    return uow.stats.count_by(flt, ("district",))


@service(*READING, action="read service statistics")
def routes_frame(uow: UnitOfWork, city: str, first_day: date, last_day: date) -> pd.DataFrame:
    """Return the routes of assigned plans between two service dates, with stop counts.

    Parameters
    ----------
    uow
        Unit of work (read only).
    city
        City pack name.
    first_day, last_day
        Service dates, inclusive.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ROUTE_COLUMNS`: one row per route of each day's assigned plans;
        ``stops`` planned, ``done`` and ``cant_complete`` by stop status; ``drive_s``,
        ``service_s`` and ``distance_m`` as planned. One query.
    """
    return uow.stats.route_counts(city, first_day, last_day)[list(ROUTE_COLUMNS)]


@service(*READING, action="read service statistics")
def sweep_stops_for_day(
    uow: UnitOfWork,
    pack: CityPack,
    day: date,
    *,
    lookback_days: int = SWEEP_LOOKBACK_DAYS,
    top: int = 10,
    categories: tuple[str, ...] | None = None,
    resolution: int = DEFAULT_RESOLUTION,
    params: GiStarParams | None = None,
) -> list[Stop]:
    """Return optional low-priority sweep stops for ``day`` from recent hot spots.

    Requests of the ``lookback_days`` local days before ``day`` (all statuses, located)
    are counted per H3 cell over the city limit (in SQL); the strongest significant hot
    cells (Gi*, Benjamini-Hochberg adjusted p <= 0.05) become stops ``SWEEP-<cell>`` at
    urgency 0. The planner and the hot-spots page both call this, so they agree.

    Parameters
    ----------
    uow
        Unit of work (read only).
    pack
        The city pack (service times of the categories).
    day
        The planned day.
    lookback_days
        Days of history to look at.
    top
        At most this many stops.
    categories
        Categories counted and swept (``None``: the pack's ``sweep_categories``).
    resolution
        H3 resolution of the cells.
    params
        Gi* parameters.

    Returns
    -------
    list[Stop]
        The sweep stops, strongest hot spot first; empty when nothing is significant.
    """
    if categories is None:
        categories = pack.sweep_categories
    if not categories:
        return []
    flt = MapFilter(categories=categories, first_day=day - timedelta(days=lookback_days),
                    last_day=day - timedelta(days=1))
    counts = hex_counts(uow, flt.to_request_filter(pack.timezone), resolution)
    if counts.empty:
        return []
    spots = gi_star(counts, params or GiStarParams(), area=area_cells(pack.boundary, resolution))
    service_s = {c.code: c.service_time_s for c in pack.categories.values()}
    return sweep_stops(spots, service_s, top=top, categories=categories)


def with_days(flt: MapFilter, first_day: date, last_day: date) -> MapFilter:
    """Return ``flt`` with another period (local days, inclusive)."""
    return replace(flt, first_day=first_day, last_day=last_day)


def window_bounds(first_day: date, last_day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the UTC instants ``[start of first_day, start of the day after last_day)``."""
    return (datetime.combine(first_day, time(0), tzinfo=tz),
            datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz))
