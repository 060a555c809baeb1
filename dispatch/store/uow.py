"""Unit of work and repositories: the only door services have to the database.

A service takes a :class:`UnitOfWork`, does its reads and writes through the
repositories and calls :meth:`UnitOfWork.commit` once; an exception anywhere rolls
everything back, so an import or an assignment is all or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from dispatch.auth import SYSTEM, Principal
from dispatch.errors import ConcurrentEditError
from dispatch.store.models import (
    CrewRow,
    DepotRow,
    EventRow,
    PlanRow,
    RequestRow,
    RouteRow,
    SessionRow,
    StopRow,
    UserRow,
)


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class RequestFilter:
    """Filters of a request query; ``None`` means no filter on that field."""

    categories: Sequence[str] | None = None
    districts: Sequence[str] | None = None
    statuses: Sequence[str] | None = None
    requested_from: datetime | None = None
    requested_until: datetime | None = None
    located: bool | None = None


class RequestRepository:
    """Reads and writes service requests."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def key_index(self) -> dict[tuple[str, str], int]:
        """Return ``{(source, external_id): id}`` of every stored request."""
        rows = self.session.execute(
            select(RequestRow.source, RequestRow.external_id, RequestRow.id)
        )
        return {(s, e): i for s, e, i in rows}

    def by_ids(self, ids: Iterable[int]) -> list[RequestRow]:
        """Return the requests with the given primary keys."""
        ids = list(ids)
        if not ids:
            return []
        out: list[RequestRow] = []
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            out.extend(self.session.scalars(select(RequestRow).where(RequestRow.id.in_(chunk))))
        return out

    def get(self, request_id: int) -> RequestRow | None:
        """Return one request by primary key."""
        return self.session.get(RequestRow, request_id)

    def by_external_id(self, external_id: str) -> list[RequestRow]:
        """Return the requests whose external id is ``external_id`` (any source)."""
        return list(
            self.session.scalars(select(RequestRow).where(RequestRow.external_id == external_id))
        )

    def pks_by_external_id(self, external_ids: Iterable[str]) -> dict[str, int]:
        """Return ``{external_id: id}`` for the given external ids (first match per id)."""
        wanted = sorted(set(external_ids))
        out: dict[str, int] = {}
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            rows = self.session.execute(
                select(RequestRow.external_id, RequestRow.id)
                .where(RequestRow.external_id.in_(chunk))
                .order_by(RequestRow.id)
            )
            for external_id, pk in rows:
                out.setdefault(external_id, pk)
        return out

    def external_ids(self, pks: Iterable[int]) -> dict[int, str]:
        """Return ``{id: external_id}`` for the given primary keys."""
        wanted = sorted(set(pks))
        out: dict[int, str] = {}
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            rows = self.session.execute(
                select(RequestRow.id, RequestRow.external_id).where(RequestRow.id.in_(chunk))
            )
            out.update({pk: ext for pk, ext in rows})
        return out

    def with_personal_data(self) -> list[RequestRow]:
        """Return the requests that still hold a caller's name, phone or email."""
        return list(self.session.scalars(select(RequestRow).where(
            RequestRow.caller_name.is_not(None) | RequestRow.caller_phone.is_not(None)
            | RequestRow.caller_email.is_not(None))))

    def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new requests in bulk (each dict holds the column values)."""
        if rows:
            self.session.execute(
                insert(cast(Table, RequestRow.__table__)), [dict(r, version=1) for r in rows]
            )

    def update_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Update requests in bulk; each dict holds ``id`` and the changed columns."""
        for row in rows:
            values = {k: v for k, v in row.items() if k != "id"}
            self.session.execute(
                update(RequestRow)
                .where(RequestRow.id == row["id"])
                .values(**values, version=RequestRow.version + 1)
            )

    def query(self, flt: RequestFilter | None = None, limit: int | None = None) -> list[RequestRow]:
        """Return requests matching ``flt``, oldest first."""
        stmt = _filtered(select(RequestRow), flt or RequestFilter())
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(self.session.scalars(stmt))

    def query_columns(self, flt: RequestFilter | None = None) -> list[Any]:
        """Return the same requests as :meth:`query` as light read-only rows.

        Each row has the request's columns as attributes (no ORM objects, no identity
        map): several times faster for reading thousands of requests into a table.
        """
        columns = [c for c in RequestRow.__table__.columns if c.key not in _HEAVY_COLUMNS]
        stmt = _filtered(select(*columns), flt or RequestFilter())
        return list(self.session.execute(stmt))

    def count(self) -> int:
        """Return the number of stored requests."""
        return int(self.session.scalar(select(func.count(RequestRow.id))) or 0)

    def date_range(self) -> tuple[datetime | None, datetime | None]:
        """Return the earliest and latest ``requested_at``."""
        lo, hi = self.session.execute(
            select(func.min(RequestRow.requested_at), func.max(RequestRow.requested_at))
        ).one()
        return lo, hi


#: Columns left out of :meth:`RequestRepository.query_columns` (personal data, JSON).
_HEAVY_COLUMNS = frozenset({"caller_name", "caller_phone", "caller_email", "extra"})


def _filtered(stmt: Any, flt: RequestFilter) -> Any:
    """Apply a :class:`RequestFilter` to a select of requests, oldest first."""
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
    return stmt.order_by(RequestRow.requested_at, RequestRow.id)


class EventLog:
    """The append-only event log: who did what to which entity, and when."""

    def __init__(self, session: Session, actor: str) -> None:
        self.session = session
        self.actor = actor

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
        now = utcnow()
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

    def for_entity(self, entity_type: str, entity_id: str | int) -> list[EventRow]:
        """Return the events of one entity, oldest first."""
        return list(
            self.session.scalars(
                select(EventRow)
                .where(EventRow.entity_type == entity_type, EventRow.entity_id == str(entity_id))
                .order_by(EventRow.id)
            )
        )

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
        """Return everyone who appears in the log."""
        return list(self.session.scalars(select(EventRow.actor).distinct().order_by(
            EventRow.actor)))

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


class PlanRepository:
    """Plans, their routes and stops."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, plan: PlanRow) -> PlanRow:
        """Add a plan (with its routes and stops) and flush to get ids."""
        self.session.add(plan)
        self.session.flush()
        return plan

    def get(self, plan_id: int) -> PlanRow | None:
        """Return one plan."""
        return self.session.get(PlanRow, plan_id)

    def for_date(self, city: str, service_date: date) -> list[PlanRow]:
        """Return the city's plans for a date, newest first."""
        return list(
            self.session.scalars(
                select(PlanRow)
                .where(PlanRow.city == city, PlanRow.service_date == service_date)
                .order_by(PlanRow.id.desc())
            )
        )

    def latest_date(self, city: str) -> date | None:
        """Return the newest service date with a plan for ``city``."""
        return self.session.scalar(
            select(func.max(PlanRow.service_date)).where(PlanRow.city == city)
        )

    def route(self, route_id: int) -> RouteRow | None:
        """Return one route."""
        return self.session.get(RouteRow, route_id)

    def stop(self, stop_id: int) -> StopRow | None:
        """Return one stop."""
        return self.session.get(StopRow, stop_id)


class UserRepository:
    """Local accounts."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def by_username(self, username: str) -> UserRow | None:
        """Return the account called ``username``."""
        return self.session.scalar(select(UserRow).where(UserRow.username == username))

    def add(self, row: UserRow) -> UserRow:
        """Add an account and flush to get its id."""
        self.session.add(row)
        self.session.flush()
        return row

    def all(self) -> list[UserRow]:
        """Return every account, by name."""
        return list(self.session.scalars(select(UserRow).order_by(UserRow.username)))

    def add_session(self, row: SessionRow) -> None:
        """Remember a signed-in browser session."""
        self.session.add(row)

    def session_by_hash(self, token_hash: str) -> SessionRow | None:
        """Return the browser session with this token hash."""
        return self.session.scalar(select(SessionRow).where(SessionRow.token_hash == token_hash))

    def drop_session(self, row: SessionRow) -> None:
        """Forget a browser session."""
        self.session.delete(row)


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

    def __enter__(self) -> UnitOfWork:
        if isinstance(self.bind, Connection):
            self._session = Session(
                bind=self.bind, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
        else:
            self._session = Session(bind=self.bind, expire_on_commit=False)
        self.requests = RequestRepository(self._session)
        self.events = EventLog(self._session, self.actor)
        self.roster = RosterRepository(self._session)
        self.plans = PlanRepository(self._session)
        self.users = UserRepository(self._session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        if exc_type is not None:
            self._session.rollback()
        # Closing discards anything not committed explicitly; loaded rows stay readable.
        self._session.close()
        self._session = None

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
            When another writer changed one of the same rows first (its version moved
            on); nothing of this unit of work is kept.
        """
        try:
            self.session.commit()
        except StaleDataError as err:
            self.session.rollback()
            raise ConcurrentEditError(
                "someone else changed the same record at the same moment; nothing was "
                f"saved - reload and try again ({err.args[0].split(' expected')[0]})"
            ) from None

    def rollback(self) -> None:
        """Discard everything done since the last commit."""
        self.session.rollback()

    def flush(self) -> None:
        """Send pending changes to the database without committing."""
        self.session.flush()

