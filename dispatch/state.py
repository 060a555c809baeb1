"""Statuses of plans, routes, stops and requests, and the moves allowed between them.

Pure: the transition tables below are the only place that says which status may follow
which. Services call :func:`check_transition` before they change a status, so a move the
workflow does not allow (re-opening a superseded plan, superseding a route a crew has
started) fails with one sentence instead of silently happening.

Changes that come from the source (a re-import saying a request is closed) are not
workflow moves and do not pass through these tables: they follow the ownership rules
of :mod:`dispatch.ownership`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import TypeVar

from dispatch.errors import InvalidTransitionError
from dispatch.model import RequestStatus


class PlanStatus(enum.StrEnum):
    """Where a day's plan stands."""

    #: Made, not yet given to crews; can be adjusted and assigned.
    DRAFT = "draft"
    #: The crews' work for the day (for the districts it covers).
    ASSIGNED = "assigned"
    #: Replaced by a newer assigned plan; kept as history.
    SUPERSEDED = "superseded"


class RouteStatus(enum.StrEnum):
    """Where one crew's route stands."""

    #: No stop worked yet.
    PLANNED = "planned"
    #: At least one stop reached or finished, some still to do.
    STARTED = "started"
    #: Every stop finished (done or could not complete).
    FINISHED = "finished"
    #: Replaced by a newer plan before the crew started it.
    SUPERSEDED = "superseded"


class StopStatus(enum.StrEnum):
    """Where one stop stands."""

    PENDING = "pending"
    ARRIVED = "arrived"
    DONE = "done"
    CANT_COMPLETE = "cant_complete"

    @property
    def worked(self) -> bool:
        """Return whether a crew has reached or finished the stop."""
        return self is not StopStatus.PENDING

    @property
    def finished(self) -> bool:
        """Return whether the stop needs nothing more today."""
        return self in (StopStatus.DONE, StopStatus.CANT_COMPLETE)

    @property
    def label(self) -> str:
        """Return how the status reads to people: on sheets, a crew's list, the plan."""
        return _STOP_LABELS[self]


_STOP_LABELS = {
    StopStatus.PENDING: "to do",
    StopStatus.ARRIVED: "arrived",
    StopStatus.DONE: "done",
    StopStatus.CANT_COMPLETE: "could not complete",
}


_R = RequestStatus
_OPEN_WORK = (_R.NEW, _R.TRIAGED)

#: Plan moves: a draft is assigned; an assigned plan is superseded by a newer one (its
#: started routes carry over into that plan). Assigned plans stay assigned through
#: re-plans. Nothing leaves ``superseded``.
PLAN_TRANSITIONS: Mapping[PlanStatus, frozenset[PlanStatus]] = {
    PlanStatus.DRAFT: frozenset({PlanStatus.ASSIGNED}),
    PlanStatus.ASSIGNED: frozenset({PlanStatus.SUPERSEDED}),
    PlanStatus.SUPERSEDED: frozenset(),
}

#: Route moves follow its stops; only a route nobody started may be superseded.
ROUTE_TRANSITIONS: Mapping[RouteStatus, frozenset[RouteStatus]] = {
    RouteStatus.PLANNED: frozenset({RouteStatus.STARTED, RouteStatus.FINISHED,
                                    RouteStatus.SUPERSEDED}),
    RouteStatus.STARTED: frozenset({RouteStatus.PLANNED, RouteStatus.FINISHED}),
    RouteStatus.FINISHED: frozenset({RouteStatus.STARTED, RouteStatus.PLANNED}),
    RouteStatus.SUPERSEDED: frozenset(),
}

#: Stop moves a crew makes: arrive, finish (with or without arriving first), and undo
#: (back to where the stop was before the last tap).
STOP_TRANSITIONS: Mapping[StopStatus, frozenset[StopStatus]] = {
    StopStatus.PENDING: frozenset({StopStatus.ARRIVED, StopStatus.DONE,
                                   StopStatus.CANT_COMPLETE}),
    StopStatus.ARRIVED: frozenset({StopStatus.PENDING, StopStatus.DONE,
                                   StopStatus.CANT_COMPLETE}),
    StopStatus.DONE: frozenset({StopStatus.PENDING, StopStatus.ARRIVED}),
    StopStatus.CANT_COMPLETE: frozenset({StopStatus.PENDING, StopStatus.ARRIVED}),
}

#: Request moves the workflow makes (triage, scheduling, crews, undo).
REQUEST_TRANSITIONS: Mapping[RequestStatus, frozenset[RequestStatus]] = {
    _R.NEW: frozenset({_R.TRIAGED, _R.SCHEDULED, _R.CANCELLED, _R.DUPLICATE}),
    _R.TRIAGED: frozenset({_R.NEW, _R.SCHEDULED, _R.CANCELLED, _R.DUPLICATE}),
    _R.SCHEDULED: frozenset({*_OPEN_WORK, _R.IN_PROGRESS, _R.COMPLETED, _R.CLOSED_NOT_FIXED,
                             _R.CANCELLED, _R.DUPLICATE}),
    _R.IN_PROGRESS: frozenset({_R.SCHEDULED, _R.COMPLETED, _R.CLOSED_NOT_FIXED}),
    _R.COMPLETED: frozenset({_R.SCHEDULED, _R.IN_PROGRESS}),
    _R.CLOSED_NOT_FIXED: frozenset({_R.SCHEDULED, _R.IN_PROGRESS, _R.TRIAGED}),
    _R.CANCELLED: frozenset(),
    _R.DUPLICATE: frozenset(),
}

_E = TypeVar("_E", PlanStatus, RouteStatus, StopStatus, RequestStatus)


def allowed(table: Mapping[_E, frozenset[_E]], current: _E, new: _E) -> bool:
    """Return whether ``table`` lets a status go from ``current`` to ``new``.

    Staying where one is counts as allowed (a repeated save changes nothing).
    """
    return current == new or new in table[current]


def check_transition(
    table: Mapping[_E, frozenset[_E]], current: _E, new: _E, what: str
) -> None:
    """Raise :class:`InvalidTransitionError` unless ``current -> new`` is allowed.

    Parameters
    ----------
    table
        One of the transition tables of this module.
    current, new
        The status now and the one asked for.
    what
        How people call the thing, e.g. ``stop 12`` or ``plan 3``.
    """
    if allowed(table, current, new):
        return
    nexts = sorted(s.value for s in table[current])
    expected = f"one of {', '.join(nexts)}" if nexts else "nothing (it is final)"
    raise InvalidTransitionError(
        f"{what} is {current.value} and cannot become {new.value}; from {current.value} "
        f"it can become {expected}"
    )


def route_status_of(stops: Iterable[StopStatus]) -> RouteStatus:
    """Return the status a route has with these stop statuses (not superseded)."""
    states = list(stops)
    if not states or not any(s.worked for s in states):
        return RouteStatus.PLANNED
    if all(s.finished for s in states):
        return RouteStatus.FINISHED
    return RouteStatus.STARTED


#: The request status a crew's stop status stands for, on a request that is open in
#: its record.
REQUEST_STATUS_OF_STOP: Mapping[StopStatus, RequestStatus] = {
    StopStatus.PENDING: RequestStatus.SCHEDULED,
    StopStatus.ARRIVED: RequestStatus.IN_PROGRESS,
    StopStatus.DONE: RequestStatus.COMPLETED,
    StopStatus.CANT_COMPLETE: RequestStatus.CLOSED_NOT_FIXED,
}
