"""Read side of the managers' pages: the frames behind hot spots, KPIs and sweeps.

Only reads, through the unit of work's repositories; the analysis itself is pure and
lives in :mod:`dispatch.analytics`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pandas as pd

from dispatch.analytics.hotspots import (
    DEFAULT_RESOLUTION,
    GiStarParams,
    area_cells,
    gi_star,
    hex_counts,
    sweep_stops,
)
from dispatch.auth import READING, service
from dispatch.citypack import CityPack
from dispatch.model import RequestStatus
from dispatch.services.queries import FRAME_COLUMNS, MapFilter
from dispatch.store import UnitOfWork

if TYPE_CHECKING:
    from dispatch.planning.problem import Stop

__all__ = [
    "ANALYSIS_COLUMNS",
    "NOT_AN_ACTION",
    "ROUTE_COLUMNS",
    "SWEEP_LOOKBACK_DAYS",
    "analysis_frame",
    "routes_frame",
    "sweep_stops_for_day",
    "with_days",
]

#: Columns of :func:`analysis_frame`: those of ``requests_frame`` and three more.
ANALYSIS_COLUMNS: tuple[str, ...] = (*FRAME_COLUMNS, "updated_at", "first_action_at", "size")
#: Event actions that record a request's arrival, not something done about it.
NOT_AN_ACTION = frozenset({"imported", "created", "updated_by_import"})
#: Days of history :func:`sweep_stops_for_day` looks at.
SWEEP_LOOKBACK_DAYS = 28
#: Columns of :func:`routes_frame`.
ROUTE_COLUMNS: tuple[str, ...] = ("plan_id", "service_date", "crew", "district", "stops",
                                  "done", "cant_complete", "drive_s", "service_s",
                                  "distance_m")


def _first_actions(uow: UnitOfWork, requested: dict[int, datetime]) -> dict[int, datetime]:
    """Return request pk -> time of its first event that is an action, after creation."""
    if not requested:
        return {}
    # EventLog has no bulk read per entity set; read the log once (newest first).
    events = uow.events.recent(limit=max(1, uow.events.count()))
    first: dict[int, datetime] = {}
    for ev in events:
        if ev.entity_type != "request" or ev.action in NOT_AN_ACTION:
            continue
        try:
            pk = int(ev.entity_id)
        except ValueError:
            continue
        created = requested.get(pk)
        if created is None or ev.at <= created:
            continue
        if pk not in first or ev.at < first[pk]:
            first[pk] = ev.at
    return first


@service(*READING, action="read service statistics")
def analysis_frame(
    uow: UnitOfWork,
    flt: MapFilter,
    tz: ZoneInfo,
    *,
    first_action: bool = False,
) -> pd.DataFrame:
    """Return the requests matching ``flt`` with what the analyses need.

    Parameters
    ----------
    uow
        Unit of work (read only).
    flt
        Categories, districts, statuses and local days (``requested_at``).
    tz
        The city's time zone.
    first_action
        Also fill ``first_action_at``: the first event on the request after it was
        made that is not its import or intake record (:data:`NOT_AN_ACTION`), else
        ``updated_at`` when later than ``requested_at``, else missing. Reads the event
        log, so ask only when needed.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ANALYSIS_COLUMNS`, timestamps as aware UTC ``datetime64``.
    """
    rows = uow.requests.query_columns(flt.to_request_filter(tz))
    actions = (_first_actions(uow, {r.id: r.requested_at for r in rows})
               if first_action else {})
    firsts: list[datetime | None] = []
    for r in rows:
        first = actions.get(r.id)
        if first is None and first_action and r.updated_at is not None \
                and r.updated_at > r.requested_at:
            first = r.updated_at
        firsts.append(first)
    open311 = {s.value: s.open311 for s in RequestStatus}
    columns: dict[str, object] = {
        "id": [r.id for r in rows],
        "request_id": [r.external_id for r in rows],
        "source": [r.source for r in rows],
        "category": [r.category for r in rows],
        "service_code": [r.service_code for r in rows],
        "status": [r.status for r in rows],
        "open311_status": [open311.get(r.status, "open") for r in rows],
        "channel": [r.channel for r in rows],
        "district": pd.Series([r.district for r in rows], dtype=object),
        "lon": pd.Series([r.lon for r in rows], dtype=float),
        "lat": pd.Series([r.lat for r in rows], dtype=float),
        "geocode_precision": pd.Series([r.geocode_precision for r in rows], dtype=object),
        "address": [r.address for r in rows],
        "requested_at": _instants([r.requested_at for r in rows]),
        "closed_at": _instants([r.closed_at for r in rows]),
        "service_date": pd.Series([r.service_date for r in rows], dtype=object),
        "assigned_org": [r.assigned_org for r in rows],
        "description": [r.description for r in rows],
        "updated_at": _instants([r.updated_at for r in rows]),
        "first_action_at": _instants(firsts),
        "size": pd.Series([r.size for r in rows], dtype="int64"),
    }
    return pd.DataFrame(columns, columns=list(ANALYSIS_COLUMNS))


def _instants(values: list[datetime | None]) -> pd.Series:
    """Aware datetimes (or None) as a UTC ``datetime64`` column, fast."""
    seconds = [float("nan") if v is None else v.timestamp() for v in values]
    return pd.Series(pd.to_datetime(pd.Series(seconds, dtype=float), unit="s", utc=True)
                     .dt.round("us"))


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
        Columns :data:`ROUTE_COLUMNS`: one row per route of each day's ``assigned``
        plan; ``stops`` planned, ``done`` and ``cant_complete`` by stop status;
        ``drive_s``, ``service_s`` and ``distance_m`` as planned.
    """
    records = []
    day = first_day
    while day <= last_day:
        for plan in uow.plans.for_date(city, day):
            if plan.status != "assigned":
                continue
            for route in plan.routes:
                statuses = [s.status for s in route.stops]
                records.append((plan.id, day, route.crew_name, route.district, len(statuses),
                                statuses.count("done"), statuses.count("cant_complete"),
                                route.drive_s, route.service_s, route.distance_m))
        day += timedelta(days=1)
    return pd.DataFrame.from_records(records, columns=list(ROUTE_COLUMNS))


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
    are counted per H3 cell over the city limit; the strongest significant hot cells
    (Gi*, Benjamini-Hochberg adjusted p <= 0.05) become stops ``SWEEP-<cell>`` at
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
    frame = analysis_frame(uow, flt, pack.timezone)
    counts = hex_counts(frame, resolution)
    if counts.empty:
        return []
    spots = gi_star(counts, params or GiStarParams(), area=area_cells(pack.boundary, resolution))
    service = {c.code: c.service_time_s for c in pack.categories.values()}
    return sweep_stops(spots, service, top=top, categories=categories)


def with_days(flt: MapFilter, first_day: date, last_day: date) -> MapFilter:
    """Return ``flt`` with another period (local days, inclusive)."""
    return replace(flt, first_day=first_day, last_day=last_day)
