"""Unit of work and repositories: the only door services have to the database.

A service takes a :class:`UnitOfWork`, does its reads and writes through the
repositories and calls :meth:`UnitOfWork.commit` once; an exception anywhere rolls
everything back, so an import or an assignment is all or nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    not_,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from dispatch.auth import SYSTEM, Principal
from dispatch.errors import (
    ConcurrentEditError,
    StoreBusyError,
    StoreUnavailableError,
    ValidationError,
)
from dispatch.logs import log_events
from dispatch.model import CLOSED_STATUSES, MIN_ROUTABLE_CONFIDENCE, ROUTABLE_PRECISIONS
from dispatch.state import RouteStatus
from dispatch.store.api import ApiKeyRepository, Open311Repository
from dispatch.store.models import (
    AssignmentRow,
    CrewRow,
    DepotRow,
    EventRow,
    LoginFailureRow,
    PlanRow,
    RequestRow,
    RouteRow,
    SessionRow,
    SettingRow,
    StopRow,
    SubmissionRow,
    UnplannedRow,
    UserRow,
)
from dispatch.store.spatial import Spatial, bbox_clause, has_postgis
from geo.geocoding.result import Precision


def utcnow() -> datetime:
    """Return the current wall-clock time, timezone-aware UTC.

    Sign-in, sessions and throttling always use this. Business time (request ages,
    crew actions, the service day) comes from :meth:`UnitOfWork.now`, which a demo
    store may set to a replayed morning.
    """
    return datetime.now(UTC)


_CLOSED = tuple(s.value for s in CLOSED_STATUSES)


_LIMITS: dict[str, dict[str, int]] = {}


def _limits(table: Any) -> dict[str, int]:
    found = _LIMITS.get(table.name)
    if found is None:
        found = {c.name: int(c.type.length or 0) for c in table.columns
                 if isinstance(c.type, String) and getattr(c.type, "length", None)}
        _LIMITS[table.name] = found
    return found


def check_lengths(table: Any, values: Mapping[str, Any], what: str) -> None:
    """Refuse text longer than its column before it reaches the database.

    Raises
    ------
    ValidationError
        Naming the field, its length and the limit.
    """
    for name, limit in _limits(table).items():
        value = values.get(name)
        if isinstance(value, str) and len(value) > limit:
            raise ValidationError(
                f"{what}: {name.replace('_', ' ')} has {len(value)} characters; "
                f"at most {limit}")


@dataclass(frozen=True)
class RequestFilter:
    """Filters of a request query; ``None`` means no filter on that field."""

    categories: Sequence[str] | None = None
    districts: Sequence[str] | None = None
    statuses: Sequence[str] | None = None
    requested_from: datetime | None = None
    requested_until: datetime | None = None
    located: bool | None = None
    #: Only requests open at this instant as their record stands (reported by then,
    #: not closed by then): today's work, or a replayed morning's.
    open_at: datetime | None = None
    #: Only requests inside ``(west, south, east, north)``, degrees (``lon, lat``).
    bbox: tuple[float, float, float, float] | None = None
    #: Only requests closed in ``[closed_from, closed_until)``.
    closed_from: datetime | None = None
    closed_until: datetime | None = None
    #: Only these request ids (the store's primary keys).
    ids: Sequence[int] | None = None
    #: Only requests whose position a crew can be sent to (``True``), or only those
    #: waiting for a supervisor's fix (``False``); see :func:`dispatch.model.is_routable`.
    trusted_position: bool | None = None
    #: Only these categories, each reported in its own ``[from, until)`` window (either
    #: end ``None``: open): e.g. "past its SLA" is a different age per category.
    category_windows: Mapping[str, tuple[datetime | None, datetime | None]] | None = None
    #: Only requests with no stop on this plan (its primary key).
    not_on_plan: int | None = None


class RequestRepository:
    """Reads and writes service requests."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def match(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str]]:
        """Return ``{(source, external_id): (id, content_hash)}`` of the stored ones.

        Only the asked keys are read (by external id, 900 at a time), never the whole
        store.
        """
        wanted = set(keys)
        by_external = sorted({e for _, e in wanted})
        out: dict[tuple[str, str], tuple[int, str]] = {}
        for start in range(0, len(by_external), 900):
            chunk = by_external[start : start + 900]
            rows = self.session.execute(
                select(RequestRow.source, RequestRow.external_id, RequestRow.id,
                       RequestRow.content_hash).where(RequestRow.external_id.in_(chunk)))
            for source, external_id, pk, digest in rows:
                out[(source, external_id)] = (pk, digest)
        return {k: v for k, v in out.items() if k in wanted}

    def match_external_ids(self, external_ids: Iterable[str]) -> list[tuple[str, str, int, str]]:
        """Return ``(source, external_id, id, content_hash)`` of any source for these ids."""
        wanted = sorted(set(external_ids))
        out: list[tuple[str, str, int, str]] = []
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            out.extend((s, e, i, h) for s, e, i, h in self.session.execute(
                select(RequestRow.source, RequestRow.external_id, RequestRow.id,
                       RequestRow.content_hash).where(RequestRow.external_id.in_(chunk))))
        return out

    def by_ids(self, ids: Iterable[int], *, for_update: bool = False) -> list[RequestRow]:
        """Return the requests with the given primary keys, by key.

        With ``for_update`` the rows stay locked until the transaction ends (PostgreSQL
        ``SELECT ... FOR UPDATE``; SQLite's write transactions are exclusive anyway).
        """
        ids = sorted(set(ids))
        out: list[RequestRow] = []
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            stmt = select(RequestRow).where(RequestRow.id.in_(chunk)).order_by(RequestRow.id)
            if for_update:
                stmt = stmt.with_for_update()
            out.extend(self.session.scalars(stmt))
        return out

    def get(self, request_id: int, *, for_update: bool = False) -> RequestRow | None:
        """Return one request by primary key (locked with ``for_update``)."""
        if not for_update:
            return self.session.get(RequestRow, request_id)
        return self.session.scalar(
            select(RequestRow).where(RequestRow.id == request_id).with_for_update())

    def by_external_id(self, external_id: str) -> list[RequestRow]:
        """Return the requests whose external id is ``external_id`` (any source)."""
        return list(
            self.session.scalars(select(RequestRow).where(RequestRow.external_id == external_id)
                                 .order_by(RequestRow.id))
        )

    def pks_by_key(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Return ``{(source, external_id): id}`` for the given keys that are stored."""
        return {k: v[0] for k, v in self.match(keys).items()}

    def labels(self, pks: Iterable[int]) -> dict[int, tuple[str, str, str]]:
        """Return ``{id: (external_id, address, category)}`` for the given primary keys."""
        wanted = sorted(set(pks))
        out: dict[int, tuple[str, str, str]] = {}
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            rows = self.session.execute(
                select(RequestRow.id, RequestRow.external_id, RequestRow.address,
                       RequestRow.category).where(RequestRow.id.in_(chunk)))
            out.update({pk: (ext, addr or "", cat) for pk, ext, addr, cat in rows})
        return out

    def external_ids(self, pks: Iterable[int]) -> dict[int, str]:
        """Return ``{id: external_id}`` for the given primary keys."""
        return {pk: v[0] for pk, v in self.labels(pks).items()}

    def with_personal_data(self) -> list[RequestRow]:
        """Return the requests that still hold a caller's name, phone or email."""
        return list(self.session.scalars(select(RequestRow).where(
            RequestRow.caller_name.is_not(None) | RequestRow.caller_phone.is_not(None)
            | RequestRow.caller_email.is_not(None))))

    def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new requests in bulk (each dict holds the column values)."""
        table = cast(Table, RequestRow.__table__)
        for r in rows:
            check_lengths(table, r, f"request {r.get('external_id', '')}".strip())
        if rows:
            self.session.execute(insert(table), [dict(r, version=1) for r in rows])

    def insert_one(self, values: dict[str, Any]) -> int:
        """Insert one request and return its primary key."""
        table = cast(Table, RequestRow.__table__)
        check_lengths(table, values, "request")
        result = self.session.execute(insert(table).values(**values, version=1)
                                      .returning(table.c.id))
        return int(result.scalar_one())

    def submitted(self, token: str) -> int | None:
        """Return the id of the request a form's submission token became, or ``None``."""
        found = self.session.execute(
            select(SubmissionRow.request_id).where(SubmissionRow.token == token)).scalar()
        return None if found is None else int(found)

    def claim_submission(self, token: str, request_id: int, at: datetime, by: str) -> bool:
        """Store a form's submission token for a request; ``False`` if it is stored already.

        The token is the primary key, so of two transactions saving the same form (on
        one app instance or two) the database lets one through; the other's insert is
        undone (a savepoint) and it learns it lost here, before it commits.
        """
        try:
            with self.session.begin_nested():
                self.session.execute(insert(SubmissionRow).values(
                    token=token, request_id=request_id, created_at=at, created_by=by[:64]))
        except IntegrityError:
            return False
        return True

    def update_many(self, rows: Sequence[dict[str, Any]], *, new_version: bool = True) -> None:
        """Update requests in bulk; each dict holds ``id`` and the changed columns.

        ``new_version=False`` is for finishing a row inserted in the same transaction
        (nobody can have seen it yet).
        """
        table = cast(Table, RequestRow.__table__)
        for row in rows:
            values = {k: v for k, v in row.items() if k != "id"}
            check_lengths(table, values, f"request {row['id']}")
            if new_version:
                values["version"] = RequestRow.version + 1
            self.session.execute(
                update(RequestRow)
                .where(RequestRow.id == row["id"])
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def query(self, flt: RequestFilter | None = None, limit: int | None = None) -> list[RequestRow]:
        """Return requests matching ``flt``, oldest first."""
        stmt = _filtered(select(RequestRow), flt or RequestFilter(), has_postgis(self.session))
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(self.session.scalars(stmt))

    def query_columns(self, flt: RequestFilter | None = None,
                      limit: int | None = None, *, newest_first: bool = False,
                      columns: Sequence[str] | None = None) -> list[Any]:
        """Return the same requests as :meth:`query` as light read-only rows.

        Each row has the request's columns as attributes (no ORM objects, no identity
        map): several times faster for reading thousands of requests into a table.
        With ``newest_first`` the newest reported come first (with ``limit``: the
        newest ``limit``). ``columns`` names the columns read (default: all but the
        caller's contact details and the source's extra fields); a reader of thousands
        of rows that names only what it uses skips decoding the rest (a JSON list and
        up to seven timestamps a row).
        """
        table = RequestRow.__table__.columns
        if columns is not None:
            unknown = sorted(set(columns) - set(table.keys()))
            if unknown:
                raise ValueError(f"query_columns: no request column {unknown}; expected "
                                 f"some of {sorted(table.keys())}")
        selected = [c for c in table if (c.key in columns if columns is not None
                                         else c.key not in _HEAVY_COLUMNS)]
        stmt = _filtered(select(*selected), flt or RequestFilter(), has_postgis(self.session))
        if newest_first:
            stmt = stmt.order_by(None).order_by(RequestRow.requested_at.desc(),
                                                RequestRow.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(self.session.execute(stmt))

    def count_matching(self, flt: RequestFilter) -> int:
        """Return how many requests match ``flt`` (counted in the database)."""
        stmt = _filtered(select(func.count(RequestRow.id)), flt,
                         has_postgis(self.session)).order_by(None)
        return int(self.session.scalar(stmt) or 0)

    def missing_derived(self, limit: int) -> list[Any]:
        """Return ``(id, requested_at, lon, lat)`` of rows whose derived columns are unset."""
        return list(self.session.execute(
            select(RequestRow.id, RequestRow.requested_at, RequestRow.lon, RequestRow.lat)
            .where(or_(RequestRow.service_day.is_(None),
                       and_(RequestRow.lon.is_not(None), RequestRow.h3_cell.is_(None))))
            .order_by(RequestRow.id).limit(limit)))

    def in_conflict(self, limit: int = 500) -> list[RequestRow]:
        """Return requests whose source disagrees with the local state, oldest first."""
        return list(self.session.scalars(
            select(RequestRow).where(RequestRow.conflict_at.is_not(None))
            .order_by(RequestRow.conflict_at, RequestRow.id).limit(limit)))

    def count(self) -> int:
        """Return the number of stored requests."""
        return int(self.session.scalar(select(func.count(RequestRow.id))) or 0)

    def date_range(self) -> tuple[datetime | None, datetime | None]:
        """Return the earliest and latest ``requested_at``.

        Two one-ended reads of the index (SQLite reads the whole index for ``min`` and
        ``max`` in one query).
        """
        lo, hi = self.session.execute(select(
            select(func.min(RequestRow.requested_at)).scalar_subquery(),
            select(func.max(RequestRow.requested_at)).scalar_subquery())).one()
        return lo, hi


#: Columns left out of :meth:`RequestRepository.query_columns` (personal data, JSON).
_HEAVY_COLUMNS = frozenset({"caller_name", "caller_phone", "caller_email", "extra"})


def _filtered(stmt: Any, flt: RequestFilter, postgis: bool = False) -> Any:
    """Apply a :class:`RequestFilter` to a select of requests, oldest first.

    With ``postgis`` (see :func:`dispatch.store.spatial.has_postgis`) a box is first
    tested on the GiST index of ``requests.geom``.
    """
    if flt.categories is not None:
        stmt = stmt.where(RequestRow.category.in_(list(flt.categories)))
    if flt.districts is not None:
        stmt = stmt.where(RequestRow.district.in_(list(flt.districts)))
    if flt.statuses is not None:
        stmt = stmt.where(RequestRow.status.in_(list(flt.statuses)))
    if flt.requested_from is not None:
        stmt = stmt.where(RequestRow.requested_at >= flt.requested_from)
    if flt.requested_until is not None:
        stmt = stmt.where(RequestRow.requested_at < flt.requested_until)
    if flt.located is True:
        stmt = stmt.where(RequestRow.lon.is_not(None))
    elif flt.located is False:
        stmt = stmt.where(RequestRow.lon.is_(None))
    if flt.open_at is not None:
        stmt = stmt.where(open_at_clause(flt.open_at))
    if flt.bbox is not None:
        west, south, east, north = flt.bbox
        if postgis:
            stmt = stmt.where(bbox_clause(flt.bbox))
        stmt = stmt.where(RequestRow.lon.between(west, east), RequestRow.lat.between(south, north))
    if flt.closed_from is not None:
        stmt = stmt.where(RequestRow.closed_at >= flt.closed_from)
    if flt.closed_until is not None:
        stmt = stmt.where(RequestRow.closed_at < flt.closed_until)
    if flt.ids is not None:
        stmt = stmt.where(RequestRow.id.in_(list(flt.ids)))
    if flt.trusted_position is not None:
        trusted = trusted_position_clause()
        stmt = stmt.where(trusted if flt.trusted_position else not_(trusted))
    if flt.category_windows is not None:
        stmt = stmt.where(category_windows_clause(flt.category_windows))
    if flt.not_on_plan is not None:
        stmt = stmt.where(RequestRow.id.not_in(
            select(StopRow.request_id).where(StopRow.plan_id == flt.not_on_plan)))
    return stmt.order_by(RequestRow.requested_at, RequestRow.id)


def trusted_position_clause() -> Any:
    """Return the SQL condition "a crew can be sent to this position" (never NULL).

    The rule of :func:`dispatch.model.is_routable`: a routable precision, and an
    interpolated one only with enough confidence.
    """
    terms = []
    for precision in sorted(p.value for p in ROUTABLE_PRECISIONS):
        if precision == Precision.INTERPOLATED.value:
            terms.append(and_(RequestRow.geocode_precision == precision,
                              func.coalesce(RequestRow.geocode_confidence, 0.0)
                              >= MIN_ROUTABLE_CONFIDENCE))
        else:
            terms.append(RequestRow.geocode_precision == precision)
    return and_(RequestRow.geocode_precision.is_not(None), RequestRow.lon.is_not(None),
                or_(*terms))


def category_windows_clause(
    windows: Mapping[str, tuple[datetime | None, datetime | None]],
) -> Any:
    """Return "one of these categories, reported inside that category's window"."""
    if not windows:
        return RequestRow.id.is_(None)  # no category: nothing matches
    terms = []
    for category, (start, until) in sorted(windows.items()):
        term = [RequestRow.category == category]
        if start is not None:
            term.append(RequestRow.requested_at >= start)
        if until is not None:
            term.append(RequestRow.requested_at < until)
        terms.append(and_(*term))
    return or_(*terms)


def open_at_clause(when: datetime) -> Any:
    """Return the SQL condition "open at ``when`` as the record stands".

    Reported by then, and not closed by then: a request closed later (a replayed past
    day) counts as open; one without a close time counts as open if its status is.
    """
    # Two index range scans, not one scan of the whole history: those closed after
    # ``when`` (the (closed_at, requested_at) index covers the test) and those without a
    # close time (the same index, closed_at IS NULL). An OR of the two makes SQLite walk
    # every request reported before ``when``, which for today is all of them.
    later = select(RequestRow.id).where(RequestRow.closed_at > when,
                                        RequestRow.requested_at <= when)
    unclosed = select(RequestRow.id).where(RequestRow.closed_at.is_(None),
                                           RequestRow.requested_at <= when,
                                           RequestRow.status.not_in(_CLOSED))
    return RequestRow.id.in_(union_all(later, unclosed))


#: Events that record a request's arrival, not something done about it: they do not set
#: the request's ``first_action_at``.
NOT_AN_ACTION = frozenset({"imported", "created", "updated_by_import", "source_conflict"})


class EventLog:
    """The append-only event log: who did what to which entity, and when.

    Events are stamped with business time (the store's clock: real time unless a demo
    replays a past day). The first event on a request that is an action (not in
    :data:`NOT_AN_ACTION`) also sets the request's ``first_action_at``.
    """

    def __init__(self, session: Session, actor: str,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.session = session
        self.actor = actor
        self.clock = clock or utcnow
        #: Rows appended since the last commit or rollback (logged once committed).
        self.pending: list[dict[str, Any]] = []

    def append(
        self,
        entity_type: str,
        entity_id: str | int,
        action: str,
        details: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> None:
        """Record one state change."""
        self.append_many([(entity_type, entity_id, action, details or {})], actor=actor)

    def append_many(
        self,
        items: Iterable[tuple[str, str | int, str, dict[str, Any]]],
        *,
        actor: str | None = None,
    ) -> None:
        """Record many state changes in one statement."""
        now = self.clock()
        rows = [
            {
                "at": now,
                "actor": actor or self.actor,
                "entity_type": et,
                "entity_id": str(eid),
                "action": action,
                "details": details,
            }
            for et, eid, action, details in items
        ]
        if rows:
            self.session.execute(insert(cast(Table, EventRow.__table__)), rows)
            self.pending.extend(rows)
            acted = sorted({int(str(r["entity_id"])) for r in rows
                            if r["entity_type"] == "request"
                            and r["action"] not in NOT_AN_ACTION
                            and str(r["entity_id"]).isdigit()})
            for start in range(0, len(acted), 900):
                self.session.execute(
                    update(RequestRow)
                    .where(RequestRow.id.in_(acted[start : start + 900]),
                           RequestRow.first_action_at.is_(None))
                    .values(first_action_at=now)
                    .execution_options(synchronize_session=False))

    def last_id(self) -> int:
        """Return the id of the newest event (0 for none): it moves with every write."""
        return int(self.session.scalar(select(func.max(EventRow.id))) or 0)

    def for_entity(self, entity_type: str, entity_id: str | int) -> list[EventRow]:
        """Return the events of one entity, oldest first."""
        return list(
            self.session.scalars(
                select(EventRow)
                .where(EventRow.entity_type == entity_type, EventRow.entity_id == str(entity_id))
                .order_by(EventRow.id)
            )
        )

    def last_for_entity(self, entity_type: str, entity_id: str | int) -> EventRow | None:
        """Return the newest event of one entity."""
        return self.session.scalar(
            select(EventRow)
            .where(EventRow.entity_type == entity_type, EventRow.entity_id == str(entity_id))
            .order_by(EventRow.id.desc()).limit(1))

    def search(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        actor: str | None = None,
        limit: int = 500,
    ) -> list[EventRow]:
        """Return events matching the filters, newest first."""
        stmt = select(EventRow)
        if entity_type:
            stmt = stmt.where(EventRow.entity_type == entity_type)
        if entity_id:
            stmt = stmt.where(EventRow.entity_id == entity_id)
        if actor:
            stmt = stmt.where(EventRow.actor == actor)
        return list(self.session.scalars(stmt.order_by(EventRow.id.desc()).limit(limit)))

    def actors(self) -> list[str]:
        """Return everyone who appears in the log, in order.

        One index step per actor (a loose index scan): ``DISTINCT`` would read every
        event ever logged.
        """
        seen = select(func.min(EventRow.actor)).cte("seen", recursive=True)
        after = select(func.min(EventRow.actor)).where(
            EventRow.actor > seen.c.min).scalar_subquery()
        seen = seen.union_all(select(after).where(seen.c.min.is_not(None)))
        return [a for a in self.session.scalars(select(seen.c.min)) if a is not None]

    def recent(self, limit: int = 100) -> list[EventRow]:
        """Return the newest events, newest first."""
        stmt = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
        return list(self.session.scalars(stmt))

    def count(self) -> int:
        """Return the number of events."""
        return int(self.session.scalar(select(func.count(EventRow.id))) or 0)


class RosterRepository:
    """Depots and crews of a city."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def depots(self, city: str) -> list[DepotRow]:
        """Return the city's depots."""
        return list(self.session.scalars(select(DepotRow).where(DepotRow.city == city)))

    def crews(self, city: str) -> list[CrewRow]:
        """Return the city's crews, by name."""
        return list(
            self.session.scalars(
                select(CrewRow).where(CrewRow.city == city).order_by(CrewRow.name)
            )
        )

    def upsert_depot(self, city: str, values: dict[str, Any]) -> bool:
        """Insert or update one depot; return whether anything changed."""
        row = self.session.scalar(
            select(DepotRow).where(DepotRow.city == city, DepotRow.code == values["code"])
        )
        return _upsert(self.session, row, DepotRow, dict(values, city=city))

    def upsert_crew(self, city: str, values: dict[str, Any]) -> bool:
        """Insert or update one crew; return whether anything changed."""
        row = self.session.scalar(
            select(CrewRow).where(CrewRow.city == city, CrewRow.name == values["name"])
        )
        return _upsert(self.session, row, CrewRow, dict(values, city=city))


def _upsert(session: Session, row: Any, model: Any, values: dict[str, Any]) -> bool:
    if row is None:
        session.add(model(**values))
        return True
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


@dataclass(frozen=True)
class PlanVersions:
    """A plan's row versions: equal before and after means nobody wrote to it between.

    The plan's version; ``(id, version)`` of each route and ``(id, status, version)``
    of each stop, in id order; the ids of its unplanned rows (which change only with
    the plan's version). ``version`` is ``None`` for a plan that no longer exists.
    """

    version: int | None
    routes: tuple[tuple[int, int], ...]
    stops: tuple[tuple[int, str, int], ...]
    unplanned: tuple[int, ...]


class PlanRepository:
    """Plans, their routes, stops and unplanned rows, and the assignment claims."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, plan: PlanRow) -> PlanRow:
        """Add a plan (with its routes and stops) and flush to get ids."""
        self.session.add(plan)
        self.session.flush()
        return plan

    def head(self, plan_id: int) -> PlanRow | None:
        """Return one plan row alone (its routes and stops load only when touched)."""
        return self.session.get(PlanRow, plan_id)

    def stop_fact_rows(self, plan_ids: Sequence[int]) -> list[Any]:
        """Return one light row per stop of the plans' live routes, for the assignment.

        Columns: ``plan_id, route_id, crew, stop_id, request_id, status, version``, in
        plan, route and stop order (a route with no stop gives one row whose stop
        columns are ``None``). A few thousand tuples, no ORM objects.
        """
        if not plan_ids:
            return []
        return list(self.session.execute(
            select(RouteRow.plan_id, RouteRow.id.label("route_id"),
                   RouteRow.crew_name.label("crew"), StopRow.id.label("stop_id"),
                   StopRow.request_id, StopRow.status, StopRow.version)
            .outerjoin(StopRow, StopRow.route_id == RouteRow.id)
            .where(RouteRow.plan_id.in_(list(plan_ids)),
                   RouteRow.status != RouteStatus.SUPERSEDED.value)
            .order_by(RouteRow.plan_id, RouteRow.id, StopRow.sequence)))

    def route_of(self, plan_id: int, crew: str) -> RouteRow | None:
        """Return crew ``crew``'s live (not superseded) route of a plan, with its stops."""
        return self.session.scalar(
            select(RouteRow).where(RouteRow.plan_id == plan_id, RouteRow.crew_name == crew,
                                   RouteRow.status != RouteStatus.SUPERSEDED.value)
            .options(selectinload(RouteRow.stops)))

    def get(self, plan_id: int, *, for_update: bool = False) -> PlanRow | None:
        """Return one plan with its routes, stops and unplanned rows.

        With ``for_update`` the plan row and its stop rows stay locked until the
        transaction ends (PostgreSQL; SQLite's write transactions are exclusive).
        """
        stmt = (select(PlanRow).where(PlanRow.id == plan_id)
                .options(selectinload(PlanRow.routes).selectinload(RouteRow.stops),
                         selectinload(PlanRow.unplanned)))
        if for_update:
            stmt = stmt.with_for_update(of=PlanRow)
            row = self.session.scalar(stmt)
            if row is not None:
                list(self.session.scalars(select(StopRow.id).where(StopRow.plan_id == plan_id)
                                          .order_by(StopRow.id).with_for_update()))
            return row
        return self.session.scalar(stmt)

    def row_versions(self, plan_id: int, *, for_update: bool = False) -> PlanVersions:
        """Return what says whether anybody wrote to a plan: its rows' versions as stored.

        Light column reads, no ORM objects. With ``for_update`` the plan and its stop
        rows stay locked until the transaction ends (PostgreSQL), as :meth:`get` locks
        them. Compare with :meth:`loaded_versions` of the plan read earlier.
        """
        plan = select(PlanRow.version).where(PlanRow.id == plan_id)
        stops = (select(StopRow.id, StopRow.status, StopRow.version)
                 .where(StopRow.plan_id == plan_id).order_by(StopRow.id))
        if for_update:
            plan, stops = plan.with_for_update(), stops.with_for_update()
        version = self.session.scalar(plan)
        return PlanVersions(
            version,
            tuple((i, v) for i, v in self.session.execute(
                select(RouteRow.id, RouteRow.version).where(RouteRow.plan_id == plan_id)
                .order_by(RouteRow.id))),
            tuple((i, st, v) for i, st, v in self.session.execute(stops)),
            tuple(self.session.scalars(select(UnplannedRow.id)
                                       .where(UnplannedRow.plan_id == plan_id)
                                       .order_by(UnplannedRow.id))))

    @staticmethod
    def loaded_versions(row: PlanRow) -> PlanVersions:
        """Return :meth:`row_versions` as the plan ``row`` was loaded (with its routes)."""
        return PlanVersions(
            row.version,
            tuple(sorted((r.id, r.version) for r in row.routes)),
            tuple(sorted((s.id, s.status, s.version) for r in row.routes for s in r.stops)),
            tuple(sorted(u.id for u in row.unplanned)))

    def for_date(self, city: str, service_date: date, *, for_update: bool = False,
                 ) -> list[PlanRow]:
        """Return the city's plans for a date, newest first."""
        stmt = (select(PlanRow).where(PlanRow.city == city,
                                      PlanRow.service_date == service_date)
                .order_by(PlanRow.id.desc()))
        if for_update:
            stmt = stmt.with_for_update()
        return list(self.session.scalars(stmt))

    def latest_date(self, city: str, statuses: Sequence[str] | None = None) -> date | None:
        """Return the newest service date with a plan (in one of ``statuses``) for ``city``."""
        stmt = select(func.max(PlanRow.service_date)).where(PlanRow.city == city)
        if statuses is not None:
            stmt = stmt.where(PlanRow.status.in_(list(statuses)))
        return self.session.scalar(stmt)

    def day_stop_facts(self, city: str, service_date: date) -> list[Any]:
        """Return one row per stop of the routes crews work on ``service_date``.

        Routes of assigned plans that are not superseded; a route without stops gives one
        row whose stop columns are ``None``. Columns: ``plan_id, route_id, crew_name,
        district, stop_id, request_id, sequence, status, status_at, eta, departure, lon,
        lat``. Bounded by the day (a city's day is a few thousand stops), read as plain
        rows, not ORM objects.
        """
        stmt = (select(RouteRow.plan_id, RouteRow.id.label("route_id"), RouteRow.crew_name,
                       RouteRow.district, StopRow.id.label("stop_id"), StopRow.request_id,
                       StopRow.sequence, StopRow.status, StopRow.status_at, StopRow.eta,
                       StopRow.departure, StopRow.lon, StopRow.lat)
                .join(PlanRow, PlanRow.id == RouteRow.plan_id)
                .outerjoin(StopRow, StopRow.route_id == RouteRow.id)
                .where(PlanRow.city == city, PlanRow.service_date == service_date,
                       PlanRow.status == "assigned", RouteRow.status != "superseded")
                .order_by(RouteRow.crew_name, StopRow.sequence))
        return list(self.session.execute(stmt))

    def route(self, route_id: int) -> RouteRow | None:
        """Return one route."""
        return self.session.get(RouteRow, route_id)

    def stop(self, stop_id: int, *, for_update: bool = False) -> StopRow | None:
        """Return one stop; with ``for_update`` lock it and its route, read afresh.

        Locking the route too lets two members of one crew tap different stops of the
        same route at once: the second waits, then sees the route as the first left it.
        """
        if not for_update:
            return self.session.get(StopRow, stop_id)
        stop = self.session.scalar(select(StopRow).where(StopRow.id == stop_id)
                                   .with_for_update()
                                   .execution_options(populate_existing=True))
        if stop is not None:
            self.session.scalar(select(RouteRow).where(RouteRow.id == stop.route_id)
                                .with_for_update()
                                .execution_options(populate_existing=True))
        return stop

    def active_stops(self, request_pks: Iterable[int]) -> list[StopRow]:
        """Return the stops of the given requests on draft or assigned plans."""
        wanted = sorted(set(request_pks))
        out: list[StopRow] = []
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            out.extend(self.session.scalars(
                select(StopRow).join(PlanRow, PlanRow.id == StopRow.plan_id)
                .where(StopRow.request_id.in_(chunk),
                       PlanRow.status.in_(("draft", "assigned")))
                .order_by(StopRow.id)))
        return out

    def assigned_stops(self, request_pks: Iterable[int]) -> list[StopRow]:
        """Return the stops of the given requests on assigned routes (not superseded)."""
        wanted = sorted(set(request_pks))
        out: list[StopRow] = []
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            out.extend(self.session.scalars(
                select(StopRow).join(RouteRow, RouteRow.id == StopRow.route_id)
                .join(PlanRow, PlanRow.id == StopRow.plan_id)
                .where(StopRow.request_id.in_(chunk), PlanRow.status == "assigned",
                       RouteRow.status != "superseded")
                .order_by(StopRow.id)))
        return out

    def claims(self, city: str, service_date: date) -> list[AssignmentRow]:
        """Return the claims of assigned plans on the day's districts and crews."""
        return list(self.session.scalars(
            select(AssignmentRow).where(AssignmentRow.city == city,
                                        AssignmentRow.service_date == service_date)
            .order_by(AssignmentRow.kind, AssignmentRow.key)))

    def drop_claims(self, plan_ids: Iterable[int]) -> None:
        """Remove every claim of the given plans."""
        ids = list(plan_ids)
        if ids:
            self.session.execute(delete(AssignmentRow).where(AssignmentRow.plan_id.in_(ids)))

    def add_claims(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert claims; the database refuses one already held (primary key)."""
        if rows:
            self.session.execute(insert(cast(Table, AssignmentRow.__table__)), list(rows))


class SettingsRepository:
    """Store-wide settings (a small key-value table)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the value of ``key``, or ``None``."""
        row = self.session.get(SettingRow, key)
        return None if row is None else dict(row.value)

    def set(self, key: str, value: dict[str, Any] | None) -> None:
        """Set ``key`` (``None`` removes it)."""
        row = self.session.get(SettingRow, key)
        if value is None:
            if row is not None:
                self.session.delete(row)
            return
        if row is None:
            self.session.add(SettingRow(key=key, value=value))
        else:
            row.value = value


class UserRepository:
    """Local accounts."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def by_username(self, username: str) -> UserRow | None:
        """Return the account called ``username``."""
        return self.session.scalar(select(UserRow).where(UserRow.username == username))

    def add(self, *, username: str, password_hash: str, role: str, crew_name: str | None,
            created_at: datetime) -> UserRow:
        """Add an active account and flush to get its id."""
        row = UserRow(username=username, password_hash=password_hash, role=role,
                      crew_name=crew_name, active=True, created_at=created_at)
        self.session.add(row)
        self.session.flush()
        return row

    def all(self) -> list[UserRow]:
        """Return every account, by name."""
        return list(self.session.scalars(select(UserRow).order_by(UserRow.username)))

    def add_session(self, token_hash: str, username: str, at: datetime) -> None:
        """Remember a signed-in browser session (by the hash of its token)."""
        self.session.add(SessionRow(token_hash=token_hash, username=username, created_at=at,
                                    last_seen_at=at))

    def session_by_hash(self, token_hash: str) -> SessionRow | None:
        """Return the browser session with this token hash."""
        return self.session.scalar(select(SessionRow).where(SessionRow.token_hash == token_hash))

    def drop_session(self, row: SessionRow) -> None:
        """Forget a browser session."""
        self.session.delete(row)

    def drop_sessions_of(self, username: str) -> int:
        """Forget every browser session of ``username``; return how many there were."""
        result = self.session.execute(delete(SessionRow).where(SessionRow.username == username))
        return int(getattr(result, "rowcount", 0) or 0)

    def add_failure(self, username: str, source: str, at: datetime) -> None:
        """Record a failed sign-in from ``source``."""
        self.session.add(LoginFailureRow(username=username[:64], source=source[:64], at=at))

    def failures(self, *, source: str, since: datetime, username: str | None = None) -> int:
        """Return failed sign-ins from ``source`` since ``since`` (for ``username``)."""
        stmt = select(func.count(LoginFailureRow.id)).where(
            LoginFailureRow.source == source, LoginFailureRow.at >= since)
        if username is not None:
            stmt = stmt.where(LoginFailureRow.username == username)
        return int(self.session.scalar(stmt) or 0)

    def oldest_failure(self, *, source: str, since: datetime, username: str | None = None,
                       ) -> datetime | None:
        """Return the oldest counted failure (when the throttle lifts)."""
        stmt = select(func.min(LoginFailureRow.at)).where(
            LoginFailureRow.source == source, LoginFailureRow.at >= since)
        if username is not None:
            stmt = stmt.where(LoginFailureRow.username == username)
        return self.session.scalar(stmt)

    def prune_failures(self, before: datetime) -> None:
        """Forget failures older than ``before``."""
        self.session.execute(delete(LoginFailureRow).where(LoginFailureRow.at < before))


#: Store setting of the business clock (a demo replays a past morning).
CLOCK_SETTING = "clock"

_CONSTRAINT_WORDS = {
    "pk_assignments": "another plan was assigned for the same district or crew",
    "pk_submissions": "the same intake form was saved",
    "uq_requests_source_external_id": "a request with the same id was saved",
    "uq_stops_plan_id_request_id": "the same request was put on the plan",
    "uq_routes_plan_id_crew_name": "the same crew was given a route",
    "uq_users_username": "an account with the same name was created",
    "uq_crews_city_name": "the same crew was added",
    "uq_depots_city_code": "the same depot was added",
}


def _constraint_of(err: BaseException) -> str | None:
    orig = getattr(err, "orig", None)
    diag = getattr(orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    text_ = str(orig or err)
    for known in _CONSTRAINT_WORDS:
        if known in text_:
            return known
    match = re.search(r"UNIQUE constraint failed: (\w+)\.", text_)
    if match:
        table = match.group(1)
        for known in _CONSTRAINT_WORDS:
            if known.startswith(("uq_" + table, "pk_" + table)):
                return known
    return None


def _unreachable(err: BaseException) -> bool:
    text_ = str(err).lower()
    return any(w in text_ for w in ("could not connect", "connection refused",
                                    "unable to open database file", "connection is bad",
                                    "server closed the connection", "no such host",
                                    "name or service not known", "timeout expired"))


def translate_error(err: BaseException) -> BaseException | None:
    """Return the one-sentence Curbside error for a database error, or ``None``.

    Lost races (a row changed or claimed by another writer in the same moment), a
    database that stayed locked, and PostgreSQL's serialization failures and deadlocks
    all become :class:`~dispatch.errors.ConcurrentEditError` (or its
    :class:`~dispatch.errors.StoreBusyError`), saying that nothing was saved.
    """
    if isinstance(err, ConcurrentEditError):
        return None
    if isinstance(err, StaleDataError):
        match = re.search(r"table '(\w+)'", str(err))
        what = (match.group(1).rstrip("s") if match else "record").replace("_", " ")
        return ConcurrentEditError(
            f"someone else changed the same {what} at the same moment; nothing was saved "
            "- reload and try again")
    if isinstance(err, IntegrityError):
        orig = getattr(err, "orig", None)
        unique = (getattr(orig, "sqlstate", None) == "23505"
                  or "UNIQUE constraint failed" in str(orig))
        if not unique:
            return None  # not a lost race (a foreign key, a missing value): a real bug
        words = _CONSTRAINT_WORDS.get(_constraint_of(err) or "",
                                      "the same record was saved")
        return ConcurrentEditError(
            f"{words} at the same moment by someone else; nothing was saved - reload "
            "and try again")
    if isinstance(err, OperationalError) and _unreachable(err):
        why = " ".join(str(getattr(err, "orig", err)).split())[:140]
        return StoreUnavailableError(
            f"the database cannot be reached ({why}); nothing was saved - check "
            "DATABASE_URL and that the server is running")
    if isinstance(err, OperationalError) and "database is locked" in str(err):
        return StoreBusyError(
            "the database stayed busy with another change for too long (an import?); "
            "nothing was saved - try again in a moment")
    if isinstance(err, DBAPIError):
        code = getattr(getattr(err, "orig", None), "sqlstate", None)
        if code in ("40001", "40P01"):
            return ConcurrentEditError(
                "another change to the same records ran at the same moment; nothing was "
                "saved - try again")
    return None


class UnitOfWork:
    """A transaction over the store, with its repositories.

    Parameters
    ----------
    bind
        An :class:`~sqlalchemy.Engine`, or a :class:`~sqlalchemy.Connection` already in a
        transaction (tests use this to roll back after each test).
    actor
        Who is acting: a :class:`~dispatch.auth.Principal` (signed-in users; services
        check its role), or a plain name for the command line and jobs, which act as
        the all-powerful :data:`~dispatch.auth.SYSTEM` principal under that name.

    Examples
    --------
    >>> with UnitOfWork(engine, actor="supervisor:ana") as uow:  # doctest: +SKIP
    ...     uow.events.append("request", 1, "triaged")
    ...     uow.commit()
    """

    def __init__(self, bind: Engine | Connection, actor: str | Principal = "system") -> None:
        self.bind = bind
        if isinstance(actor, Principal):
            self.principal = actor
            self.actor = actor.actor
        else:
            self.principal = SYSTEM
            self.actor = actor
        self._session: Session | None = None
        self._now: datetime | None = None

    def __enter__(self) -> UnitOfWork:
        if isinstance(self.bind, Connection):
            self._session = Session(
                bind=self.bind, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
        else:
            self._session = Session(bind=self.bind, expire_on_commit=False)
        self.requests = RequestRepository(self._session)
        self.events = EventLog(self._session, self.actor, self.now)
        self.roster = RosterRepository(self._session)
        self.plans = PlanRepository(self._session)
        self.users = UserRepository(self._session)
        self.settings = SettingsRepository(self._session)
        self.open311 = Open311Repository(self._session)
        self.api_keys = ApiKeyRepository(self._session)
        from dispatch.store.aggregates import Stats  # aggregates builds on this module

        self.stats = Stats(self._session)
        self.spatial = Spatial(self._session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._session
        self._session = None
        if session is None:
            return
        try:
            if exc_type is not None:
                session.rollback()
        finally:
            # Closing discards anything not committed explicitly; loaded rows stay readable.
            session.close()
        if exc is not None:
            friendly = translate_error(exc)
            if friendly is not None:
                raise friendly from exc

    @property
    def dialect(self) -> str:
        """Return the database's dialect name (``sqlite``, ``postgresql``)."""
        return self.bind.dialect.name

    def begin_write(self, *, keep_loaded: bool = False) -> None:
        """Start the transaction that will write, taking the write lock up front.

        SQLite allows one writer: a transaction that reads and then writes fails at once
        if another write committed in between (deferred ``BEGIN`` in WAL mode). Write
        services therefore call this before their first read: on SQLite it ends any
        read transaction and begins ``BEGIN IMMEDIATE``, waiting (busy timeout) for the
        writer before it; on PostgreSQL rows are locked where they are read
        (``for_update``) and this only starts the transaction.

        Rows read before stay as they were read with ``keep_loaded`` (a caller that
        checks their versions itself, e.g. :meth:`PlanRepository.row_versions`, and
        calls :meth:`expire_loaded` when they moved); otherwise they are read again
        when next touched.
        """
        session = self.session
        if isinstance(self.bind, Connection):
            return  # inside a caller's transaction (tests): it decides
        if session.in_transaction():
            if session.new or session.dirty or session.deleted:
                raise RuntimeError("begin_write() called after changes were made")
            # nothing to write: committing ends the read as a rollback would, without
            # marking every loaded row to be read again
            session.commit() if keep_loaded else session.rollback()
        try:
            session.connection(execution_options={"curbside_write": True})
        except Exception as err:
            friendly = translate_error(err)
            if friendly is not None:
                raise friendly from err
            raise

    def expire_loaded(self) -> None:
        """Make every row read so far be read again when next touched."""
        self.session.expire_all()

    def now(self) -> datetime:
        """Return business time: the store's clock (real time unless a demo set it).

        Read once per unit of work. A demo store keeps a clock that started at a
        replayed morning and runs in real time from there (see
        :func:`dispatch.services.clock.set_clock`).
        """
        if self._now is None:
            setting = self.settings.get(CLOCK_SETTING)
            real = utcnow()
            if setting and setting.get("anchor") and setting.get("set_at"):
                anchor = datetime.fromisoformat(setting["anchor"])
                set_at = datetime.fromisoformat(setting["set_at"])
                self._now = (anchor + (real - set_at)).astimezone(UTC)
            else:
                self._now = real
        return self._now

    def lock(self, name: str) -> None:
        """Serialise this transaction with every other one taking the same named lock.

        PostgreSQL: a transaction-scoped advisory lock. SQLite: the write lock already
        serialises writers, so this only makes sure the write transaction has begun.
        """
        if self.dialect == "postgresql":
            self.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"),
                                 {"n": f"curbside:{name}"})
        else:
            self.begin_write()

    @property
    def session(self) -> Session:
        """Return the open session (only inside ``with``)."""
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its 'with' block")
        return self._session

    def commit(self) -> None:
        """Commit everything done in this unit of work.

        Raises
        ------
        ConcurrentEditError
            When another writer changed or claimed one of the same rows first; nothing
            of this unit of work is kept.
        """
        try:
            self.session.commit()
        except Exception as err:
            friendly = translate_error(err)
            self.session.rollback()
            self.events.pending.clear()
            if friendly is not None:
                raise friendly from err
            raise
        self._now = None
        committed, self.events.pending = self.events.pending, []
        log_events(committed)

    def rollback(self) -> None:
        """Discard everything done since the last commit."""
        self.session.rollback()
        self.events.pending.clear()

    def flush(self) -> None:
        """Send pending changes to the database without committing.

        Raises
        ------
        ConcurrentEditError
            As :meth:`commit` (the database refused a row another writer claimed).
        """
        try:
            self.session.flush()
        except Exception as err:
            friendly = translate_error(err)
            if friendly is not None:
                raise friendly from err
            raise
