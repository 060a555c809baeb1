"""The day's live board: how each crew stands, where it last closed a stop, what waits.

A supervisor watches the day after assigning it. Per crew: stops done, could not
complete, remaining, how far ahead of or behind plan, and when the crew last acted; a
map of where each crew last closed a stop; and the work not on any route (new requests
reported today, and the plan's unplanned stops), each one click from a route.

Two halves, as elsewhere: :func:`crew_progress` is pure shaping of a day's stop facts
(tested directly), and :func:`day_board` reads those facts for one day in one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from dispatch.auth import SUPERVISING, service
from dispatch.citypack import CityPack
from dispatch.model import is_routable
from dispatch.state import StopStatus
from dispatch.store import UnitOfWork
from dispatch.store.uow import RequestFilter

#: The newest requests listed as new work, at most.
NEW_WORK_LIMIT = 100
_CLOSED = (StopStatus.DONE.value, StopStatus.CANT_COMPLETE.value)


@dataclass(frozen=True)
class BoardStop:
    """One stop of a crew's route on the day, as the board needs it (pure input)."""

    plan_id: int
    route_id: int
    crew: str
    district: str | None
    stop_id: int | None
    status: str | None
    status_at: datetime | None
    eta: datetime | None
    departure: datetime | None
    lon: float | None
    lat: float | None


@dataclass(frozen=True)
class CrewProgress:
    """How one crew's route stands.

    ``behind_s`` is positive when the crew runs behind its plan, negative when ahead,
    ``None`` when nothing is due and nothing is closed yet. It is the later of: how long
    the next pending stop is overdue (now past its planned arrival), and how far the last
    closed stop was finished after (or before) its planned departure.
    """

    plan_id: int
    route_id: int
    crew: str
    district: str | None
    done: int
    cant_complete: int
    remaining: int
    behind_s: int | None
    last_action_at: datetime | None
    last_closed_lon: float | None
    last_closed_lat: float | None

    @property
    def total(self) -> int:
        """Stops on the route."""
        return self.done + self.cant_complete + self.remaining


@dataclass(frozen=True)
class WaitingWork:
    """A request not on any route of the day, with why it waits."""

    request_pk: int
    request_id: str
    category: str
    address: str
    why: str
    district: str | None = None
    #: The plan it is unplanned on (``None`` for new work).
    plan_id: int | None = None


@dataclass(frozen=True)
class Board:
    """The live board of one service day."""

    day: date
    now: datetime
    plan_ids: tuple[int, ...]
    crews: tuple[CrewProgress, ...]
    new_work: tuple[WaitingWork, ...]
    unplanned: tuple[WaitingWork, ...]
    #: Each assigned plan's districts (empty: the whole city).
    plan_districts: dict[int, tuple[str, ...]] = field(default_factory=dict)


def plan_for(board: Board, item: WaitingWork) -> int | None:
    """Return the assigned plan ``item`` should join.

    An unplanned stop goes back to its own plan; new work to the newest plan covering its
    district (or the whole city), else to the newest plan of the day.
    """
    if item.plan_id is not None and item.plan_id in board.plan_ids:
        return item.plan_id
    for plan_id in sorted(board.plan_ids, reverse=True):
        covered = board.plan_districts.get(plan_id, ())
        if not covered or item.district in covered:
            return plan_id
    return board.plan_ids[-1] if board.plan_ids else None


def crew_progress(stops: Iterable[BoardStop], now: datetime) -> list[CrewProgress]:
    """Return each route's progress from its stops, crews in name order.

    Parameters
    ----------
    stops
        Every stop of the day's routes; a route without stops appears once with
        ``stop_id`` ``None``.
    now
        The business clock's time (timezone-aware).

    Returns
    -------
    list of CrewProgress
    """
    by_route: dict[int, list[BoardStop]] = {}
    for s in stops:
        by_route.setdefault(s.route_id, []).append(s)
    out = []
    for route_stops in by_route.values():
        first = route_stops[0]
        real = [s for s in route_stops if s.stop_id is not None]
        closed = [s for s in real if s.status in _CLOSED and s.status_at is not None]
        pending = [s for s in real if s.status not in _CLOSED]
        acted = [s.status_at for s in real if s.status_at is not None]
        last = max(closed, key=lambda s: s.status_at or now) if closed else None
        behind: list[int] = []
        due = [s.eta for s in pending if s.eta is not None and s.eta < now]
        if due:
            behind.append(int((now - min(due)).total_seconds()))
        if last is not None and last.status_at is not None and last.departure is not None:
            behind.append(int((last.status_at - last.departure).total_seconds()))
        out.append(CrewProgress(
            plan_id=first.plan_id, route_id=first.route_id, crew=first.crew,
            district=first.district,
            done=sum(s.status == StopStatus.DONE.value for s in real),
            cant_complete=sum(s.status == StopStatus.CANT_COMPLETE.value for s in real),
            remaining=len(pending), behind_s=max(behind) if behind else None,
            last_action_at=max(acted) if acted else None,
            last_closed_lon=last.lon if last else None,
            last_closed_lat=last.lat if last else None,
        ))
    return sorted(out, key=lambda c: c.crew)


def _facts(rows: Sequence[object]) -> list[BoardStop]:
    return [BoardStop(
        plan_id=r.plan_id, route_id=r.route_id, crew=r.crew_name,  # type: ignore[attr-defined]
        district=r.district, stop_id=r.stop_id, status=r.status,  # type: ignore[attr-defined]
        status_at=r.status_at, eta=r.eta, departure=r.departure,  # type: ignore[attr-defined]
        lon=r.lon, lat=r.lat,  # type: ignore[attr-defined]
    ) for r in rows]


@service(*SUPERVISING, action="watch the day's board")
def day_board(uow: UnitOfWork, pack: CityPack, day: date) -> Board:
    """Return the live board of ``day``: crews' progress and the work waiting.

    Parameters
    ----------
    uow
        An open unit of work (its principal is checked: supervisors and admins).
    pack
        The city pack (time zone, categories).
    day
        The service date.

    Returns
    -------
    Board
        Empty ``crews`` when no plan is assigned for the day.
    """
    now = uow.now()
    stops = _facts(uow.plans.day_stop_facts(pack.name, day))
    crews = crew_progress(stops, now)
    plan_ids = tuple(sorted({s.plan_id for s in stops}))
    on_route: set[int] = set()
    unplanned: list[tuple[int, str, str | None, int]] = []
    covers: dict[int, tuple[str, ...]] = {}
    for plan_id in plan_ids:
        row = uow.plans.get(plan_id)
        if row is None:
            continue
        covers[plan_id] = tuple(row.districts or ())
        on_route |= {s.request_id for r in row.routes for s in r.stops}
        unplanned += [(u.request_id, u.reason_detail or u.reason_kind or "", u.district,
                       plan_id) for u in row.unplanned]
    start = datetime.combine(day, time(0), tzinfo=pack.timezone)
    fresh = uow.requests.query_columns(RequestFilter(
        categories=pack.routable_categories, open_at=now, located=True,
        requested_from=start, requested_until=start + timedelta(days=1)),
        limit=NEW_WORK_LIMIT * 4)
    labels = pack.category_labels
    new_work = tuple(
        WaitingWork(r.id, r.external_id, labels.get(r.category, r.category), r.address,
                    f"reported {r.requested_at.astimezone(pack.timezone):%H:%M}",
                    district=r.district)
        for r in fresh
        if r.id not in on_route and is_routable(r.geocode_precision, r.geocode_confidence)
    )[-NEW_WORK_LIMIT:]
    names = uow.requests.labels(pk for pk, *_ in unplanned)
    waiting = tuple(
        WaitingWork(pk, names[pk][0], labels.get(names[pk][2], names[pk][2]), names[pk][1],
                    why, district=district, plan_id=plan_id)
        for pk, why, district, plan_id in unplanned if pk in names and pk not in on_route)
    return Board(day=day, now=now, plan_ids=plan_ids, crews=tuple(crews),
                 new_work=new_work, unplanned=waiting, plan_districts=covers)
