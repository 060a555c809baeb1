"""Replay a real day: which requests a supervisor would have had to plan that morning.

:func:`select_stops_for_day` rebuilds, from recorded timestamps, the open work of a
past morning. The Los Angeles demo settings below (categories, yards, roster) stand in
for the city pack (``data/cities/los_angeles.toml``) until it lands; the planner takes
any ``Sequence[Crew]`` / ``Mapping[str, Depot]`` / categories, so the pack plugs in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from dispatch.model import Category, Crew, Depot, ServiceRequest
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


# ---------------------------------------------------------------------------------------
# Los Angeles demo settings (until the city pack lands)

LA_TZ = ZoneInfo("America/Los_Angeles")

#: Categories of the demo: service times bulky 10 min, graffiti 20, dumping 15; SLA
#: graffiti 24 h, dumping 72 h, bulky 24 h (bulky pickups are due on their booked date).
LA_CATEGORIES: tuple[Category, ...] = (
    Category("bulky_items", "Bulky items", ("Bulky Items",), True, 600, 24.0, "#1f77b4",
             booked=True),
    Category("graffiti_removal", "Graffiti", ("Graffiti Removal",), True, 1200, 24.0, "#d62728"),
    Category("illegal_dumping", "Illegal dumping", ("Illegal Dumping Pickup",), True, 900, 72.0,
             "#8c564b"),
    Category("metal_appliances", "Metal/household appliances",
             ("Metal/Household Appliances",), False, 600, 72.0),
    Category("electronic_waste", "Electronic waste", ("Electronic Waste",), False, 600, 72.0),
)  # fmt: skip

#: MyLA311 ``requesttype`` -> category code, for the demo categories.
LA_SERVICE_CODES: dict[str, str] = {code: c.code for c in LA_CATEGORIES for code in c.service_codes}

#: LA Sanitation district yards. Addresses from ``data/depots/los_angeles_sanitation_yards.csv``;
#: the coordinates are approximate positions of those addresses, placed by hand for the
#: demo (no geocoder offline) and to be replaced by the city pack.
LA_YARDS: dict[str, Depot] = {
    "EV": Depot("EV", "East Valley District Yard", "11050 Pendleton St, Sun Valley, CA",
                -118.3780, 34.2460),
    "WV": Depot("WV", "West Valley District Yard", "8840 Vanalden Ave, Northridge, CA",
                -118.5420, 34.2300),
    "NC": Depot("NC", "North Central District Yard", "452 N San Fernando Rd, Los Angeles, CA",
                -118.2240, 34.0740),
    "SLA": Depot("SLA", "South Los Angeles District Yard", "786 S Mission Rd, Los Angeles, CA",
                 -118.2230, 34.0290),
    "HB": Depot("HB", "Harbor District Yard", "1400 N Gaffey St, San Pedro, CA",
                -118.2920, 33.7590),
    "WLA": Depot("WLA", "West Los Angeles District Yard", "2027 Stoner Ave, Los Angeles, CA",
                 -118.4460, 34.0400),
}  # fmt: skip

#: Council districts each yard's bulky/dumping crews served in the 2020-01 data.
LA_YARD_DISTRICTS: dict[str, tuple[str, ...]] = {
    "NC": ("1", "4", "10", "13", "14"),
    "EV": ("2", "4", "6", "7"),
    "WV": ("3", "5", "6", "12"),
    "SLA": ("1", "8", "9", "10", "15"),
    "WLA": ("4", "5", "10", "11"),
    "HB": ("15",),
}

#: Graffiti contractors (MyLA311 ``assignto``): council districts holding at least 5% of
#: their requests in 2020-01-01..03, a base at the median position of those requests
#: (their real addresses are not in the data), and a crew count of about one per 50
#: requests in those three days.
LA_GRAFFITI: dict[str, tuple[tuple[str, ...], float, float, int]] = {
    "GAPBH": (("14",), -118.220, 34.046, 11),
    "SGB": (("7",), -118.439, 34.308, 8),
    "GAP": (("15",), -118.284, 33.821, 7),
    "PGS": (("5", "11"), -118.415, 34.023, 6),
    "HBT": (("4", "13"), -118.302, 34.091, 6),
    "WVA": (("3", "6", "12"), -118.523, 34.201, 4),
    "NEGB": (("2", "6", "7"), -118.435, 34.222, 3),
    "CCAC": (("1", "13"), -118.260, 34.067, 2),
    "KYCC": (("1", "4", "10", "13"), -118.309, 34.058, 2),
    "NEGB_ELA": (("1", "14"), -118.202, 34.106, 1),
    "NDFY": (("2", "4"), -118.386, 34.180, 1),
    "CRCD": (("9", "14"), -118.263, 34.015, 1),
    "LACC": (("8", "10"), -118.359, 34.037, 1),
}


def la_demo_roster(
    bulky_per_yard: int = 12,
    graffiti_scale: float = 1.0,
    capacity: int = 30,
) -> tuple[list[Crew], dict[str, Depot]]:
    """Return a demo Los Angeles roster and its depots.

    Bulky/dumping crews (skills ``bulky_items``, ``illegal_dumping``) per sanitation yard
    serve that yard's districts; graffiti crews per contractor serve the contractor's
    districts. Shifts 06:00-14:30 local with a 30-minute lunch starting 10:30-12:30.

    Parameters
    ----------
    bulky_per_yard
        Bulky/dumping crews per yard.
    graffiti_scale
        Multiplies each contractor's crew count (at least one crew each).
    capacity
        Truck capacity in items.

    Returns
    -------
    tuple
        Crews and depots by code.
    """
    crews: list[Crew] = []
    depots = dict(LA_YARDS)
    shift = {
        "shift_start": time(6, 0),
        "shift_end": time(14, 30),
        "lunch_start": time(10, 30),
        "lunch_end": time(12, 30),
    }
    for yard, districts in LA_YARD_DISTRICTS.items():
        for k in range(1, bulky_per_yard + 1):
            crews.append(
                Crew(
                    name=f"{yard}-bulky-{k}",
                    categories=("bulky_items", "illegal_dumping"),
                    depot=yard,
                    districts=districts,
                    capacity=capacity,
                    organisation=yard,
                    **shift,  # type: ignore[arg-type]
                )
            )
    for org, (districts, lon, lat, n) in LA_GRAFFITI.items():
        code = f"G-{org}"
        depots[code] = Depot(code, f"{org} graffiti base (approx.)", "", lon, lat)
        for k in range(1, max(1, round(n * graffiti_scale)) + 1):
            crews.append(
                Crew(
                    name=f"{org}-graffiti-{k}",
                    categories=("graffiti_removal",),
                    depot=code,
                    districts=districts,
                    capacity=1000,
                    organisation=org,
                    **shift,  # type: ignore[arg-type]
                )
            )
    return crews, depots
