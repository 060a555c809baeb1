"""Reads that stay bounded at any history size: SQL aggregation and column-wise frames.

Pages never load the whole history into Python objects. They ask the database for
the window they show, grouped in SQL (``GROUP BY``) where a count or a sum answers the
question, and read column-wise (``pandas.read_sql``, timestamps parsed in one vectorised
call, never one ORM object per row) where a distribution is needed (a median time to
close needs the durations). The same statements run on SQLite and PostgreSQL.

Which index each query uses is in ``docs/indexes.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    String,
    and_,
    case,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from dispatch.derived import H3_RESOLUTION
from dispatch.model import CLOSED_STATUSES, RequestStatus
from dispatch.store.models import EventRow, PlanRow, RequestRow, RouteRow, StopRow
from dispatch.store.spatial import has_postgis
from dispatch.store.uow import RequestFilter, _filtered


def _where(session: Session, stmt: Any, flt: RequestFilter) -> Any:
    """Apply ``flt`` to ``stmt`` (boxes on the GiST index where the store has PostGIS)."""
    return _filtered(stmt, flt, has_postgis(session))

#: Statuses of requests a crew closed (time to close and SLA are about these).
CREW_CLOSED = (RequestStatus.COMPLETED.value, RequestStatus.CLOSED_NOT_FIXED.value)
_CLOSED = tuple(s.value for s in CLOSED_STATUSES)


class hours_between(FunctionElement[float]):  # noqa: N801 (SQL function style)
    """``(later - earlier)`` in hours, as SQL, on SQLite and PostgreSQL."""

    type = Float()
    inherit_cache = True
    name = "hours_between"


@compiles(hours_between, "sqlite")
def _hours_sqlite(element: hours_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (f"((julianday({compiler.process(later, **kw)}) - "
            f"julianday({compiler.process(earlier, **kw)})) * 24.0)")


@compiles(hours_between, "postgresql")
def _hours_postgres(element: hours_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (f"(EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - "
            f"{compiler.process(earlier, **kw)})) / 3600.0)")


def h3_parent_sql(cell: ColumnElement[int] | Any, resolution: int) -> ColumnElement[int]:
    """Return the parent H3 cell of an integer cell column at ``resolution``, in SQL.

    The same bit rule as :func:`dispatch.derived.h3_parent`: resolution in bits 52-55,
    digits below it set to 7.
    """
    if not 0 <= resolution <= H3_RESOLUTION:
        raise ValueError(f"resolution {resolution} is not between 0 and {H3_RESOLUTION}")
    if resolution == H3_RESOLUTION:
        return type_coerce(cell, BigInteger)
    keep = ~(15 << 52) & ((1 << 63) - 1)
    fill = (resolution << 52) | ((1 << (45 - 3 * resolution)) - 1)
    return type_coerce(cell.op("&")(literal(keep, BigInteger)).op("|")(
        literal(fill, BigInteger)), BigInteger)


# ------------------------------------------------------------------------ frames

#: Columns a frame may ask for: name -> (column, kind).
FRAME_SOURCES: dict[str, tuple[Any, str]] = {
    "id": (RequestRow.id, "int"),
    "request_id": (RequestRow.external_id, "text"),
    "source": (RequestRow.source, "text"),
    "category": (RequestRow.category, "text"),
    "service_code": (RequestRow.service_code, "text"),
    "status": (RequestRow.status, "text"),
    "channel": (RequestRow.channel, "text"),
    "district": (RequestRow.district, "text"),
    "lon": (RequestRow.lon, "float"),
    "lat": (RequestRow.lat, "float"),
    "geocode_precision": (RequestRow.geocode_precision, "text"),
    "geocode_confidence": (RequestRow.geocode_confidence, "float"),
    "address": (RequestRow.address, "text"),
    "zipcode": (RequestRow.zipcode, "text"),
    "description": (RequestRow.description, "text"),
    "requested_at": (RequestRow.requested_at, "time"),
    "updated_at": (RequestRow.updated_at, "time"),
    "closed_at": (RequestRow.closed_at, "time"),
    "first_action_at": (RequestRow.first_action_at, "time"),
    "service_date": (RequestRow.service_date, "text"),
    "service_day": (RequestRow.service_day, "text"),
    "assigned_org": (RequestRow.assigned_org, "text"),
    "priority": (RequestRow.priority, "int"),
    "size": (RequestRow.size, "int"),
    "version": (RequestRow.version, "int"),
    "h3_cell": (RequestRow.h3_cell, "int"),
}


def _raw(column: Any, kind: str, dialect: str) -> Any:
    """Select a column without SQLAlchemy's per-row result processing."""
    if kind == "time":
        # SQLite keeps naive UTC text; PostgreSQL hands over aware datetimes
        return type_coerce(column, String if dialect == "sqlite" else DateTime(timezone=True))
    if kind == "text" and column.type.__class__.__name__ == "Date":
        return type_coerce(column, String)
    return column


def to_instants(values: pd.Series) -> pd.Series:
    """Parse stored timestamps (UTC text or datetimes) into aware UTC ``datetime64``."""
    if values.empty:
        return pd.Series(pd.DatetimeIndex([], tz="UTC"), index=values.index)
    return pd.to_datetime(values, utc=True, format="ISO8601").dt.as_unit("us")


def request_frame(session: Session, flt: RequestFilter, columns: Sequence[str],
                  limit: int | None = None) -> pd.DataFrame:
    """Return the requests matching ``flt`` as a frame, column-wise, oldest first.

    Parameters
    ----------
    session
        An open session (its connection is used).
    flt
        The filter (time window, categories, districts, statuses, open at, box).
    columns
        Names from :data:`FRAME_SOURCES`.
    limit
        At most this many rows.

    Returns
    -------
    pandas.DataFrame
        One column per name; timestamps aware UTC, coordinates float, ids int.
    """
    unknown = sorted(set(columns) - set(FRAME_SOURCES))
    if unknown:
        raise ValueError(f"columns {unknown} are not among {sorted(FRAME_SOURCES)}")
    dialect = session.get_bind().dialect.name
    selected = [_raw(FRAME_SOURCES[c][0], FRAME_SOURCES[c][1], dialect).label(c)
                for c in columns]
    stmt = _where(session, select(*selected), flt)
    if limit is not None:
        stmt = stmt.limit(limit)
    frame = pd.read_sql(stmt, session.connection())
    return shape_frame(frame, columns)


def shape_frame(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Give a raw frame its types, vectorised (the pure half of :func:`request_frame`)."""
    out = {}
    for name in columns:
        kind = FRAME_SOURCES[name][1]
        values = frame[name] if name in frame else pd.Series([], dtype=object)
        if kind == "time":
            out[name] = to_instants(values)
        elif kind == "float":
            out[name] = pd.to_numeric(values, errors="coerce").astype(float)
        elif kind == "int":
            out[name] = values.astype("Int64") if values.isna().any() else values.astype(
                "int64")
        else:
            out[name] = values.astype(object).where(values.notna(), None)
    return pd.DataFrame(out, columns=list(columns))


def cells_frame(session: Session, flt: RequestFilter, resolution: int, cells: Sequence[int],
                columns: Sequence[str]) -> pd.DataFrame:
    """Return :func:`request_frame` of the requests inside the given H3 cells only."""
    dialect = session.get_bind().dialect.name
    selected = [_raw(FRAME_SOURCES[c][0], FRAME_SOURCES[c][1], dialect).label(c)
                for c in columns]
    frames = []
    for start in range(0, len(cells), 500):
        chunk = list(cells[start : start + 500])
        stmt = _where(session, select(*selected), flt).where(
            h3_parent_sql(RequestRow.h3_cell, resolution).in_(chunk))
        frames.append(pd.read_sql(stmt, session.connection()))
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))
    return shape_frame(raw, columns)


# --------------------------------------------------------------------- grouping


def _group_column(name: str) -> Any:
    if name.startswith("h3_"):
        return h3_parent_sql(RequestRow.h3_cell, int(name[3:])).label(name)
    columns = {"category": RequestRow.category, "district": RequestRow.district,
               "status": RequestRow.status, "channel": RequestRow.channel,
               "source": RequestRow.source, "service_day": RequestRow.service_day,
               "service_code": RequestRow.service_code,
               "geocode_precision": RequestRow.geocode_precision}
    if name not in columns:
        raise ValueError(f"cannot group by {name!r}; expected one of {sorted(columns)} "
                         "or h3_<resolution>")
    return columns[name].label(name)


def count_by(session: Session, flt: RequestFilter, by: Sequence[str]) -> pd.DataFrame:
    """Return the number of requests per group (``GROUP BY``), as a frame.

    ``by`` names ``category``, ``district``, ``status``, ``channel``, ``source``,
    ``service_day`` (the local day) or ``h3_<r>`` (the H3 cell at resolution r, 0-11).
    """
    keys = [_group_column(b) for b in by]
    stmt = select(*keys, func.count().label("n")).select_from(RequestRow)
    stmt = _where(session, stmt, flt).order_by(None)
    if keys:
        stmt = stmt.group_by(*keys)
    frame = pd.read_sql(stmt, session.connection())
    if "service_day" in frame:
        frame["service_day"] = pd.to_datetime(frame["service_day"]).dt.date
    frame["n"] = frame["n"].astype("int64")
    return frame


def durations(session: Session, flt: RequestFilter, by: Sequence[str] = ("category",
                                                                          "district"),
              ) -> pd.DataFrame:
    """Return hours to close and to the first action per request, computed in SQL.

    A narrow frame (the ``by`` columns, ``status``, two durations) for medians.

    ``close_h`` is set for crew-closed requests (completed, closed not fixed) closed no
    earlier than requested; ``first_action_h`` where someone acted (else the source's
    ``updated_at`` when later than the request), not before the request.
    """
    close_h = hours_between(RequestRow.closed_at, RequestRow.requested_at)
    first = func.coalesce(RequestRow.first_action_at,
                          case((RequestRow.updated_at > RequestRow.requested_at,
                                RequestRow.updated_at), else_=None))
    action_h = hours_between(first, RequestRow.requested_at)
    stmt = select(
        *[_group_column(b) for b in by],
        RequestRow.status.label("status"),
        case((and_(RequestRow.status.in_(CREW_CLOSED), RequestRow.closed_at.is_not(None)),
              close_h), else_=None).label("close_h"),
        action_h.label("first_action_h"),
    ).select_from(RequestRow)
    frame = pd.read_sql(_where(session, stmt, flt).order_by(None), session.connection())
    for col in ("close_h", "first_action_h"):
        # julianday() carries about a millisecond of noise: hours to 1e-6 (3.6 ms)
        values = pd.to_numeric(frame[col], errors="coerce").astype(float).round(6)
        frame[col] = values.where(values >= 0)
    return frame


def backlog(session: Session, flt: RequestFilter, now: datetime,
            bounds_h: Sequence[float], by: str = "category") -> pd.DataFrame:
    """Return requests open at ``now`` counted by ``by`` and age bucket, in SQL.

    ``bounds_h`` are the buckets' upper bounds in hours (ascending, the last may be
    infinite); ``bucket`` is the index of the first bound the age is below.
    """
    age_h = hours_between(literal(now, DateTime(timezone=True)), RequestRow.requested_at)
    whens = [(age_h < b, i) for i, b in enumerate(bounds_h) if np.isfinite(b)]
    bucket = case(*whens, else_=len(bounds_h) - 1) if whens else literal(0)
    key = _group_column(by)
    stmt = (select(key, bucket.label("bucket"), func.count().label("n"))
            .select_from(RequestRow))
    open_flt = RequestFilter(**{**flt.__dict__, "open_at": now})
    stmt = _where(session, stmt, open_flt).order_by(None).group_by(key, bucket)
    frame = pd.read_sql(stmt, session.connection())
    frame["n"] = frame["n"].astype("int64")
    frame["bucket"] = frame["bucket"].astype("int64")
    return frame


def open_past_sla(session: Session, flt: RequestFilter, now: datetime,
                  sla_h: Mapping[str, float], by: Sequence[str] = ("category",),
                  ) -> pd.DataFrame:
    """Return requests open at ``now`` and older than their category's SLA, by group."""
    target = case(*[(RequestRow.category == c, h) for c, h in sla_h.items()], else_=None)
    age_h = hours_between(literal(now, DateTime(timezone=True)), RequestRow.requested_at)
    keys = [_group_column(b) for b in by]
    stmt = (select(*keys, func.count().label("n")).select_from(RequestRow)
            .where(age_h > target))
    stmt = _where(session, stmt, RequestFilter(**{**flt.__dict__, "open_at": now})).order_by(None)
    if keys:
        stmt = stmt.group_by(*keys)
    frame = pd.read_sql(stmt, session.connection())
    frame["n"] = frame["n"].astype("int64")
    return frame


def sla_states(session: Session, flt: RequestFilter, now: datetime,
               sla_h: Mapping[str, float], soon_h: float = 24.0) -> pd.DataFrame:
    """Return requests open at ``now`` counted by SLA state and whether they are located.

    One ``GROUP BY``: ``state`` is ``overdue`` (past the category's SLA), ``soon`` (due
    within ``soon_h`` hours), ``later`` or ``none`` (a category without an SLA);
    ``located`` is 1 for a request with a position, else 0.
    """
    target = case(*[(RequestRow.category == c, h) for c, h in sla_h.items()], else_=None)
    left_h = target - hours_between(literal(now, DateTime(timezone=True)),
                                    RequestRow.requested_at)
    state = case((target.is_(None), "none"), (left_h < 0, "overdue"),
                 (left_h <= soon_h, "soon"), else_="later").label("state")
    located = case((RequestRow.lon.is_not(None), 1), else_=0).label("located")
    stmt = (select(state, located, func.count().label("n")).select_from(RequestRow))
    stmt = _where(session, stmt, RequestFilter(**{**flt.__dict__, "open_at": now})).order_by(None)
    frame = pd.read_sql(stmt.group_by(state, located), session.connection())
    frame["n"] = frame["n"].astype("int64")
    frame["located"] = frame["located"].astype("int64")
    return frame


def sla_counts(session: Session, flt: RequestFilter, sla_h: Mapping[str, float],
               by: Sequence[str] = ("category",)) -> pd.DataFrame:
    """Return crew-closed requests and those closed within their category's SLA, by group.

    One ``GROUP BY``; the SLA of each category comes in as a ``CASE`` over the category.
    """
    target = case(*[(RequestRow.category == c, h) for c, h in sla_h.items()], else_=None)
    close_h = hours_between(RequestRow.closed_at, RequestRow.requested_at)
    crew = and_(RequestRow.status.in_(CREW_CLOSED), RequestRow.closed_at.is_not(None),
                close_h >= 0)
    keys = [_group_column(b) for b in by]
    stmt = select(
        *keys,
        func.sum(case((crew, 1), else_=0)).label("closed"),
        func.sum(case((and_(crew, close_h <= target), 1), else_=0)).label("within"),
    ).select_from(RequestRow)
    stmt = _where(session, stmt, flt).order_by(None)
    if keys:
        stmt = stmt.group_by(*keys)
    frame = pd.read_sql(stmt, session.connection())
    for col in ("closed", "within"):
        frame[col] = pd.to_numeric(frame[col]).fillna(0).astype("int64")
    return frame


def repeat_spots(session: Session, flt: RequestFilter, resolution: int, min_count: int,
                 limit: int) -> pd.DataFrame:
    """Return H3 cells with at least ``min_count`` requests, busiest first (``HAVING``).

    Each row has the cell, the count, the most recent request time and one address.
    """
    cell = h3_parent_sql(RequestRow.h3_cell, resolution)
    stmt = (select(cell.label("cell"), func.count().label("n"),
                   func.max(type_coerce(RequestRow.requested_at, String)).label("last"),
                   func.max(RequestRow.address).label("address"))
            .select_from(RequestRow).where(RequestRow.h3_cell.is_not(None)))
    stmt = (_where(session, stmt, flt).order_by(None).group_by(cell)
            .having(func.count() >= min_count).order_by(func.count().desc(), cell)
            .limit(limit))
    frame = pd.read_sql(stmt, session.connection())
    frame["n"] = frame["n"].astype("int64")
    frame["last"] = to_instants(frame["last"])
    return frame


# ------------------------------------------------------------------------ routes


def route_counts(session: Session, city: str, first_day: Any, last_day: Any) -> pd.DataFrame:
    """Return the routes of assigned plans between two service dates with stop counts.

    One query joining plans, routes and stops, grouped per route.
    """
    stmt = (
        select(PlanRow.id.label("plan_id"), PlanRow.service_date.label("service_date"),
               RouteRow.crew_name.label("crew"), RouteRow.district.label("district"),
               func.count(StopRow.id).label("stops"),
               func.sum(case((StopRow.status == "done", 1), else_=0)).label("done"),
               func.sum(case((StopRow.status == "cant_complete", 1), else_=0))
               .label("cant_complete"),
               RouteRow.drive_s.label("drive_s"), RouteRow.service_s.label("service_s"),
               RouteRow.distance_m.label("distance_m"))
        .select_from(RouteRow)
        .join(PlanRow, PlanRow.id == RouteRow.plan_id)
        .outerjoin(StopRow, StopRow.route_id == RouteRow.id)
        .where(PlanRow.city == city, PlanRow.status == "assigned",
               RouteRow.status != "superseded",
               PlanRow.service_date >= first_day, PlanRow.service_date <= last_day)
        .group_by(PlanRow.id, PlanRow.service_date, RouteRow.id, RouteRow.crew_name,
                  RouteRow.district, RouteRow.drive_s, RouteRow.service_s,
                  RouteRow.distance_m)
        .order_by(PlanRow.service_date, RouteRow.crew_name))
    frame = pd.read_sql(stmt, session.connection())
    frame["service_date"] = pd.to_datetime(frame["service_date"]).dt.date
    for col in ("stops", "done", "cant_complete", "drive_s", "service_s", "distance_m"):
        frame[col] = pd.to_numeric(frame[col]).fillna(0).astype("int64")
    return frame


def events_frame(session: Session, *, entity_type: str | None = None,
                 entity_ids: Sequence[str] | None = None, actor: str | None = None,
                 since: datetime | None = None, until: datetime | None = None,
                 limit: int = 500) -> pd.DataFrame:
    """Return events matching the filters, newest first, column-wise, at most ``limit``."""
    dialect = session.get_bind().dialect.name
    stmt = select(EventRow.id.label("event"),
                  _raw(EventRow.at, "time", dialect).label("at"),
                  EventRow.actor.label("actor"), EventRow.entity_type.label("entity_type"),
                  EventRow.entity_id.label("entity_id"), EventRow.action.label("action"),
                  EventRow.details.label("details"))
    if entity_type:
        stmt = stmt.where(EventRow.entity_type == entity_type)
    if entity_ids is not None:
        stmt = stmt.where(EventRow.entity_id.in_(list(entity_ids)))
    if actor:
        stmt = stmt.where(EventRow.actor == actor)
    if since is not None:
        stmt = stmt.where(EventRow.at >= since)
    if until is not None:
        stmt = stmt.where(EventRow.at < until)
    # newest first by time: a window of days walks ix_events_at back from its end
    # instead of the whole log by id
    stmt = stmt.order_by(EventRow.at.desc(), EventRow.id.desc()).limit(limit)
    frame = pd.read_sql(stmt, session.connection())
    frame["at"] = to_instants(frame["at"])
    return frame


__all__ = [
    "CREW_CLOSED",
    "FRAME_SOURCES",
    "Stats",
    "backlog",
    "count_by",
    "durations",
    "events_frame",
    "h3_parent_sql",
    "hours_between",
    "repeat_spots",
    "request_frame",
    "route_counts",
    "shape_frame",
    "sla_counts",
    "sla_states",
    "to_instants",
]


class Stats:
    """The bounded reads of one unit of work (``uow.stats``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def frame(self, flt: RequestFilter, columns: Sequence[str],
              limit: int | None = None) -> pd.DataFrame:
        """See :func:`request_frame`."""
        return request_frame(self.session, flt, columns, limit)

    def cells_frame(self, flt: RequestFilter, resolution: int, cells: Sequence[int],
                    columns: Sequence[str]) -> pd.DataFrame:
        """See :func:`cells_frame`."""
        return cells_frame(self.session, flt, resolution, cells, columns)

    def count_by(self, flt: RequestFilter, by: Sequence[str]) -> pd.DataFrame:
        """See :func:`count_by`."""
        return count_by(self.session, flt, by)

    def durations(self, flt: RequestFilter, by: Sequence[str] = ("category", "district"),
                  ) -> pd.DataFrame:
        """See :func:`durations`."""
        return durations(self.session, flt, by)

    def backlog(self, flt: RequestFilter, now: datetime, bounds_h: Sequence[float],
                by: str = "category") -> pd.DataFrame:
        """See :func:`backlog`."""
        return backlog(self.session, flt, now, bounds_h, by)

    def sla_counts(self, flt: RequestFilter, sla_h: Mapping[str, float],
                   by: Sequence[str] = ("category",)) -> pd.DataFrame:
        """See :func:`sla_counts`."""
        return sla_counts(self.session, flt, sla_h, by)

    def sla_states(self, flt: RequestFilter, now: datetime, sla_h: Mapping[str, float],
                   soon_h: float = 24.0) -> pd.DataFrame:
        """See :func:`sla_states`."""
        return sla_states(self.session, flt, now, sla_h, soon_h)

    def open_past_sla(self, flt: RequestFilter, now: datetime, sla_h: Mapping[str, float],
                      by: Sequence[str] = ("category",)) -> pd.DataFrame:
        """See :func:`open_past_sla`."""
        return open_past_sla(self.session, flt, now, sla_h, by)

    def repeat_spots(self, flt: RequestFilter, resolution: int, min_count: int,
                     limit: int) -> pd.DataFrame:
        """See :func:`repeat_spots`."""
        return repeat_spots(self.session, flt, resolution, min_count, limit)

    def route_counts(self, city: str, first_day: Any, last_day: Any) -> pd.DataFrame:
        """See :func:`route_counts`."""
        return route_counts(self.session, city, first_day, last_day)

    def events(self, **filters: Any) -> pd.DataFrame:
        """See :func:`events_frame`."""
        return events_frame(self.session, **filters)
