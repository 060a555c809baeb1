"""SQLAlchemy 2.0 typed models of the Curbside store.

Every table that supervisors edit carries a ``version`` column used for optimistic
locking (SQLAlchemy's ``version_id_col``). ``events`` is append-only.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dispatch.model import Channel, RequestStatus, ServiceRequest
from dispatch.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a stable constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class RequestRow(Base):
    """A service request."""

    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_requests_source_external_id"),
        Index("ix_requests_status_category", "status", "category"),
        Index("ix_requests_district", "district"),
        Index("ix_requests_requested_at", "requested_at"),
        Index("ix_requests_conflict_at", "conflict_at"),
        Index("ix_requests_closed_at_requested_at", "closed_at", "requested_at"),
        Index("ix_requests_service_day_category", "service_day", "category"),
        Index("ix_requests_external_id", "external_id"),
        Index("ix_requests_duplicate_of_id", "duplicate_of_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    service_code: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    zipcode: Mapped[str] = mapped_column(String(10), default="")
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    geocode_precision: Mapped[str | None] = mapped_column(String(16))
    geocode_confidence: Mapped[float | None] = mapped_column(Float)
    matched_address: Mapped[str | None] = mapped_column(String(300))
    district: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32), default="other")
    status: Mapped[str] = mapped_column(String(32), default="new")
    requested_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    expected_at: Mapped[datetime | None]
    service_date: Mapped[date | None] = mapped_column(Date)
    assigned_org: Mapped[str] = mapped_column(String(64), default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer, default=1)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    caller_name: Mapped[str | None] = mapped_column(String(200))
    caller_phone: Mapped[str | None] = mapped_column(String(50))
    caller_email: Mapped[str | None] = mapped_column(String(200))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    # -- what the source (the city's 311 system) last said; NULL for Curbside's own
    #    requests (intake, sweeps). Imports write these; the workflow never does.
    source_status: Mapped[str | None] = mapped_column(String(32))
    source_closed_at: Mapped[datetime | None]
    source_lon: Mapped[float | None] = mapped_column(Float)
    source_lat: Mapped[float | None] = mapped_column(Float)
    #: Who owns ``status``/``closed_at``: ``source`` (they follow the source) or
    #: ``workflow`` (scheduling, a crew outcome or a supervisor's decision set them).
    status_owner: Mapped[str] = mapped_column(String(16), default="source")
    #: Source fields a supervisor changed by hand (``location``, ``category``): imports
    #: leave them alone.
    overrides: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: An unresolved disagreement between the source and the local state (both values).
    source_conflict: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    conflict_at: Mapped[datetime | None]
    # -- derived at write time, so that pages group in SQL instead of recomputing:
    #: The local day of ``requested_at`` in the city's time zone.
    service_day: Mapped[date | None] = mapped_column(Date)
    #: H3 cell at resolution 11 (about 50 m) as an integer; coarser cells are its
    #: parents, computed in SQL (:func:`dispatch.store.aggregates.h3_parent`).
    h3_cell: Mapped[int | None] = mapped_column(BigInteger)
    #: When somebody first did something about the request (its first event that is
    #: not its own import or intake record), business time.
    first_action_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy convention)

    def to_domain(self) -> ServiceRequest:
        """Return the request as the domain model's :class:`ServiceRequest`."""
        return ServiceRequest(
            source=self.source,
            external_id=self.external_id,
            service_code=self.service_code,
            category=self.category,
            requested_at=self.requested_at,
            status=RequestStatus(self.status),
            description=self.description or "",
            address=self.address or "",
            zipcode=self.zipcode or "",
            lon=self.lon,
            lat=self.lat,
            geocode_precision=self.geocode_precision,
            geocode_confidence=self.geocode_confidence,
            matched_address=self.matched_address,
            district=self.district,
            channel=Channel(self.channel),
            updated_at=self.updated_at,
            closed_at=self.closed_at,
            expected_at=self.expected_at,
            service_date=self.service_date,
            assigned_org=self.assigned_org or "",
            priority=self.priority,
            size=self.size,
            extra=dict(self.extra or {}),
        )


class DepotRow(Base):
    """A crew base."""

    __tablename__ = "depots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("city", "code", name="uq_depots_city_code"),)


class CrewRow(Base):
    """A field crew of the roster."""

    __tablename__ = "crews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    depot_code: Mapped[str] = mapped_column(String(32))
    districts: Mapped[list[str]] = mapped_column(JSON, default=list)
    shift_start: Mapped[time] = mapped_column(Time)
    shift_end: Mapped[time] = mapped_column(Time)
    capacity: Mapped[int] = mapped_column(Integer)
    organisation: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (UniqueConstraint("city", "name", name="uq_crews_city_name"),)


class PlanRow(Base):
    """A day's plan: draft, assigned or superseded.

    Its routes, stops and unplanned rows are the plan; ``payload`` keeps only the
    settings it was made with (seed, time budget, absent crews, sweep).
    """

    __tablename__ = "plans"
    __table_args__ = (Index("ix_plans_city_service_date", "city", "service_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city: Mapped[str] = mapped_column(String(64))
    service_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    seed: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    #: The time zone of the plan's day (IANA name).
    tz: Mapped[str] = mapped_column(String(64), default="UTC")
    #: Districts the plan covers; empty: the whole city (or service area).
    districts: Mapped[list[str]] = mapped_column(JSON, default=list)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    assigned_at: Mapped[datetime | None]
    assigned_by: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    routes: Mapped[list[RouteRow]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="RouteRow.id"
    )
    unplanned: Mapped[list[UnplannedRow]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="UnplannedRow.id"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy convention)


class RouteRow(Base):
    """One crew's route in a plan, with the crew's settings for the day."""

    __tablename__ = "routes"
    __table_args__ = (
        UniqueConstraint("plan_id", "crew_name", name="uq_routes_plan_id_crew_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    crew_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="planned")
    district: Mapped[str | None] = mapped_column(String(32))
    distance_m: Mapped[int] = mapped_column(Integer, default=0)
    drive_s: Mapped[int] = mapped_column(Integer, default=0)
    service_s: Mapped[int] = mapped_column(Integer, default=0)
    load: Mapped[int] = mapped_column(Integer, default=0)
    capacity: Mapped[int] = mapped_column(Integer, default=0)
    shift_start: Mapped[datetime | None]
    shift_end: Mapped[datetime | None]
    start_at: Mapped[datetime | None]
    end_at: Mapped[datetime | None]
    break_start: Mapped[datetime | None]
    break_end: Mapped[datetime | None]
    break_after: Mapped[int | None] = mapped_column(Integer)
    #: Skills, districts, depot and lunch window of the crew that day.
    crew_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Set when the route was carried over from an earlier assigned plan.
    carried_from_plan_id: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    plan: Mapped[PlanRow] = relationship(back_populates="routes")
    stops: Mapped[list[StopRow]] = relationship(
        back_populates="route", cascade="all, delete-orphan", order_by="StopRow.sequence"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy convention)


class StopRow(Base):
    """A stop of a route: one request (by primary key), in order, as planned.

    The planning inputs (category, district, position, service time, size, urgency,
    window) are kept as the planner saw them, so a re-plan starts from the same facts;
    a location fix updates them on plans still in use.
    """

    __tablename__ = "stops"
    __table_args__ = (
        UniqueConstraint("plan_id", "request_id", name="uq_stops_plan_id_request_id"),
        Index("ix_stops_request_id", "request_id"),
        # a route's stops, in order: without it every read of a plan's stops scanned
        # the stops of every plan ever kept, once per route
        Index("ix_stops_route_id_sequence", "route_id", "sequence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("routes.id", ondelete="CASCADE"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    eta: Mapped[datetime | None]
    departure: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(32), default="pending")
    reason: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None]
    #: When and by whom the stop's status last changed (for undo and "who did it").
    status_at: Mapped[datetime | None]
    status_by: Mapped[str | None] = mapped_column(String(64))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    lock_position: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(64), default="")
    district: Mapped[str | None] = mapped_column(String(32))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    service_s: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer, default=1)
    urgency: Mapped[float] = mapped_column(Float, default=0.0)
    tw_start: Mapped[datetime | None]
    tw_end: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    route: Mapped[RouteRow] = relationship(back_populates="stops")
    #: The plan the stop's route belongs to (kept on the row so that the database can
    #: refuse the same request twice in one plan).
    plan: Mapped[PlanRow] = relationship()

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy convention)


class UnplannedRow(Base):
    """A request the plan could not put on a route, with the typed reason."""

    __tablename__ = "unplanned"
    __table_args__ = (
        UniqueConstraint("plan_id", "request_id", name="uq_unplanned_plan_id_request_id"),
        Index("ix_unplanned_request_id", "request_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    reason_kind: Mapped[str] = mapped_column(String(32))
    reason_detail: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(64), default="")
    district: Mapped[str | None] = mapped_column(String(32))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    service_s: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer, default=1)
    urgency: Mapped[float] = mapped_column(Float, default=0.0)
    tw_start: Mapped[datetime | None]
    tw_end: Mapped[datetime | None]

    plan: Mapped[PlanRow] = relationship(back_populates="unplanned")


class AssignmentRow(Base):
    """A claim of an assigned plan on a district or a crew for one service day.

    The primary key makes the database itself refuse a second assigned plan for the
    same city, day and district (``kind`` ``district``), or a second assigned route for
    the same crew (``kind`` ``crew``), whatever the number of app instances.
    """

    __tablename__ = "assignments"
    __table_args__ = (Index("ix_assignments_plan_id", "plan_id"),)

    city: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_date: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    claimed_at: Mapped[datetime]
    claimed_by: Mapped[str] = mapped_column(String(64))


class SettingRow(Base):
    """A store-wide setting, such as the demo clock."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LoginFailureRow(Base):
    """A failed sign-in, kept to throttle guessing per source (never to lock accounts)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_source_at", "source", "at"),
                      Index("ix_login_failures_username_at", "username", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


class EventRow(Base):
    """An append-only record of a state change: who, when, what entity, what changed."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_entity", "entity_type", "entity_id"),
                      Index("ix_events_actor", "actor"),
                      Index("ix_events_at", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class UserRow(Base):
    """A local account (the embedded default; identity providers map onto the same roles)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    crew_name: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy convention)


class SessionRow(Base):
    """A signed-in browser session, so that a page reload does not sign people out.

    Only a SHA-256 hash of the session token is stored; the token itself lives in the
    browser, in a cookie (never in the URL, so a pasted link carries no sign-in).
    """

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class ApiKeyRow(Base):
    """An API key of an API account (role ``api``): only the key's SHA-256 hash is kept.

    The key itself is shown once, when it is made; ``prefix`` (its first characters) lets
    an admin tell keys apart without it.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    #: Requests the key may submit per minute (per server process).
    rate_per_min: Mapped[int] = mapped_column(Integer, default=60)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ReceiptRow(Base):
    """A token handed to whoever submitted a request (Open311 ``tokens/{token}``)."""

    __tablename__ = "receipts"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))


class SubmissionRow(Base):
    """A form's submission token and the request it became: the same form saves once.

    The intake page hands each form a token; a second save of it (a double click, a
    retry from another app instance) finds the token here instead of a new request.
    The primary key makes the database refuse a token stored twice.
    """

    __tablename__ = "submissions"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
