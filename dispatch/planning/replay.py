"""Replay a real day: which requests a supervisor would have had to plan that morning.

:func:`select_stops_for_day` rebuilds, from recorded timestamps, the open work of a
past morning. Categories, crews and depots come from the city pack
(:func:`dispatch.citypack.load_city_pack`); nothing here knows a city.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from dispatch.model import Category, ServiceRequest
from dispatch.planning.problem import Stop, stop_from_request

#: Local time at which the supervisor plans the day.
MORNING = time(7, 0)


def _by_code(categories: Mapping[str, Category] | Iterable[Category]) -> dict[str, Category]:
    if isinstance(categories, Mapping):
        return dict(categories)
    return {c.code: c for c in categories}


def open_at(req: ServiceRequest, when: datetime) -> bool:
    """Return whether ``req`` was reported and not yet closed at ``when``.

    Uses the recorded timestamps, not the current status: a request closed later
    than ``when`` was still open then. A request without ``closed_at`` counts as
    open only if its status is open.
    """
    if req.requested_at >= when:
        return False
    if req.closed_at is not None:
        return req.closed_at > when
    return req.status.is_open


def select_stops_for_day(
    requests: Sequence[ServiceRequest],
    day: date,
    tz: ZoneInfo,
    categories: Mapping[str, Category] | Iterable[Category],
    morning: time = MORNING,
) -> list[Stop]:
    """Return the stops a supervisor had to plan on the morning of ``day``.

    * Only categories marked ``routable``.
    * Booked pickups (``service_date`` set, e.g. bulky items): those booked for ``day``
      plus overdue ones (booked earlier), not closed by ``morning``; later bookings wait.
    * Everything else: created before ``morning`` local time and not closed by then.
    * A booked time window, if any, comes from ``req.extra["window_start"]`` and
      ``["window_end"]`` (``HH:MM`` local on ``day``, or ISO 8601).

    Urgency is age over SLA at ``morning`` (booked pickups: 1 on their date, more when
    overdue). Unlocated requests are kept (the planner reports them as "no location").

    Parameters
    ----------
    requests
        Requests as :class:`~dispatch.model.ServiceRequest`, ``category`` set to a code.
    day
        The planned day.
    tz
        The city's time zone.
    categories
        Categories by code (or an iterable of them).
    morning
        Local planning time (default 07:00).

    Returns
    -------
    list of Stop
        Sorted by request id.
    """
    cats = _by_code(categories)
    cutoff = datetime.combine(day, morning, tzinfo=tz)
    out: dict[str, Stop] = {}
    for req in requests:
        cat = cats.get(req.category)
        if cat is None or not cat.routable or not open_at(req, cutoff):
            continue
        if not cat.booked and req.service_date is not None:
            # only booked categories plan by service date; for the others it is the
            # city's own scheduling note, not a booking
            req = dataclasses.replace(req, service_date=None)
        if req.service_date is not None and req.service_date > day:
            continue
        out[req.external_id] = stop_from_request(req, cat, cutoff, day, _window(req, day, tz))
    return [out[k] for k in sorted(out)]


def _window(req: ServiceRequest, day: date, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """Read a booked window from ``req.extra['window_start'/'window_end']``.

    Values are ISO 8601 datetimes (naive ones are local time) or ``HH:MM`` local times
    on ``day``. Missing or unreadable values: no window.
    """
    lo, hi = req.extra.get("window_start"), req.extra.get("window_end")
    if not lo or not hi:
        return None
    out: list[datetime] = []
    for v in (lo, hi):
        try:
            if len(v) <= 5 and ":" in v:
                t = datetime.combine(day, time.fromisoformat(v), tzinfo=tz)
            else:
                t = datetime.fromisoformat(v)
                t = t.replace(tzinfo=tz) if t.tzinfo is None else t
        except ValueError:
            return None
        out.append(t)
    return out[0], out[1]
