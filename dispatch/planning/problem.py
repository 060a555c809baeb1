"""Planning inputs: stops, locks, and splitting a day into independent sub-problems.

PyVRP's open-source edition has no skills and no breaks, so a day is cut into
sub-problems that PyVRP can solve as they are: one per *crew type* (the set of
categories a crew serves, its skills) and district. A crew serving several districts
is allocated to one of them for the day (the one with the most work per crew), unless
``allow_cross_district`` is set: then all districts linked by such crews are solved
together, per crew type.

Times inside a sub-problem are integer seconds since local midnight of the planned day.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dispatch.errors import PlanningError
from dispatch.model import Category, Crew, Depot, ServiceRequest

#: Rough travel per stop used only to share multi-district crews between districts.
HOP_ESTIMATE_S = 480

#: Prize (in cost units = seconds of driving) for serving a stop that is not urgent.
PRIZE_BASE = 20_000
#: Extra prize per unit of urgency (age / SLA), capped at :data:`URGENCY_CAP`.
PRIZE_PER_URGENCY = 10_000
#: Extra prize for an overdue stop, so that overdue stops are dropped last.
PRIZE_OVERDUE = 100_000
URGENCY_CAP = 10.0


@dataclass(frozen=True)
class Stop:
    """A request to visit, as the planner sees it.

    Parameters
    ----------
    request_id
        Id of the service request (MyLA311 ``srnumber``).
    category
        Category code (``bulky_items`` ...), the skill a crew needs.
    district
        District id as text (``"1"``) or ``None`` when unknown.
    lon, lat
        Position; ``None`` when the request is not located.
    service_s
        Time spent at the stop.
    size
        Capacity units used (a bulky pickup of one item is 1).
    urgency
        Age over SLA: ``0`` just reported, ``1`` due now, ``> 1`` overdue.
    tw_start, tw_end
        Optional window (UTC) in which the crew must *arrive*.
    """

    request_id: str
    category: str
    district: str | None
    lon: float | None
    lat: float | None
    service_s: int
    size: int = 1
    urgency: float = 0.0
    tw_start: datetime | None = None
    tw_end: datetime | None = None

    def __post_init__(self) -> None:
        if self.service_s < 0:
            raise PlanningError(f"stop {self.request_id}: service_s {self.service_s} < 0")
        if self.size < 0:
            raise PlanningError(f"stop {self.request_id}: size {self.size} < 0")
        for name in ("tw_start", "tw_end"):
            v = getattr(self, name)
            if v is not None and v.tzinfo is None:
                raise PlanningError(
                    f"stop {self.request_id}: {name} {v} is naive; expected timezone-aware"
                )

    @property
    def overdue(self) -> bool:
        """Return whether the stop is past its SLA."""
        return self.urgency > 1.0

    @property
    def prize(self) -> int:
        """Return the PyVRP prize for serving the stop (higher for more urgent stops)."""
        u = min(max(self.urgency, 0.0), URGENCY_CAP)
        return int(PRIZE_BASE + PRIZE_PER_URGENCY * u + (PRIZE_OVERDUE if self.overdue else 0))


class ReasonKind(enum.StrEnum):
    """Why a stop is not on any route: the kind, which pages count and filter on."""

    NO_LOCATION = "no_location"
    NEEDS_LOCATION = "needs_location"
    OUTSIDE_DISTRICTS = "outside_districts"
    NO_SKILLED_CREW = "no_skilled_crew"
    CREWS_ELSEWHERE = "crews_elsewhere"
    NO_CREW_LEFT = "no_crew_left"
    OVER_CAPACITY = "over_capacity"
    NOT_ENOUGH_TIME = "not_enough_time"
    WINDOW_IMPOSSIBLE = "window_impossible"
    NOT_IN_PLAN = "not_in_plan"
    CREW_BUSY = "crew_busy"
    OTHER = "other"

    @property
    def label(self) -> str:
        """Return the words people read, e.g. ``not enough crew time``."""
        return _REASON_LABELS[self]

    @property
    def retry_on_replan(self) -> bool:
        """Return whether a re-plan may find room for the stop (capacity or time ran out)."""
        return self in (ReasonKind.OVER_CAPACITY, ReasonKind.NOT_ENOUGH_TIME)


_REASON_LABELS = {
    ReasonKind.NO_LOCATION: "no location",
    ReasonKind.NEEDS_LOCATION: "location not trustworthy",
    ReasonKind.OUTSIDE_DISTRICTS: "outside all crews' districts",
    ReasonKind.NO_SKILLED_CREW: "no crew with the skill",
    ReasonKind.CREWS_ELSEWHERE: "every eligible crew is in another district",
    ReasonKind.NO_CREW_LEFT: "no crew left",
    ReasonKind.OVER_CAPACITY: "over capacity",
    ReasonKind.NOT_ENOUGH_TIME: "not enough crew time",
    ReasonKind.WINDOW_IMPOSSIBLE: "window impossible",
    ReasonKind.NOT_IN_PLAN: "not in this plan",
    ReasonKind.CREW_BUSY: "crew keeps a started route",
    ReasonKind.OTHER: "other",
}


@dataclass(frozen=True)
class Reason:
    """Why a stop was left out: a :class:`ReasonKind` and a detail sentence.

    ``str(reason)`` is what people read: ``"over capacity: every bulky_items truck in
    district 4 is full (dropped as less urgent)"``.
    """

    kind: ReasonKind
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind.label}: {self.detail}" if self.detail else self.kind.label

    def to_dict(self) -> dict[str, str]:
        """Return the JSON object of the reason (kind and detail)."""
        return {"kind": self.kind.value, "detail": self.detail}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Reason:
        """Read a reason written by :meth:`to_dict`."""
        try:
            kind = ReasonKind(str(d.get("kind", "")))
        except ValueError:
            raise PlanningError(
                f"unplanned reason kind {d.get('kind')!r} is not one of "
                f"{sorted(k.value for k in ReasonKind)}"
            ) from None
        return cls(kind, str(d.get("detail", "")))


@dataclass(frozen=True)
class Lock:
    """Keep a stop on a crew's route when re-planning.

    Parameters
    ----------
    request_id
        The stop.
    crew
        Crew whose route must keep it.
    position
        Optional 0-based index the stop must keep in the route's stop list.
    """

    request_id: str
    crew: str
    position: int | None = None


def urgency_of(
    requested_at: datetime,
    now: datetime,
    sla_h: float,
    service_date: date | None = None,
    day: date | None = None,
) -> float:
    """Return the urgency of a request: its age divided by its SLA.

    Bulky pickups booked for a date (``service_date``) are due that day: urgency ``1``
    on it, ``1 + days late`` after it (overdue), less before it.

    Parameters
    ----------
    requested_at
        When the request came in (aware).
    now
        Planning time (aware).
    sla_h
        Category SLA in hours.
    service_date, day
        Booked service date and the planned day, for booked pickups.

    Returns
    -------
    float
        ``>= 0``; above 1 means overdue.
    """
    if service_date is not None and day is not None:
        late_days = (day - service_date).days
        return 1.0 + late_days if late_days >= 0 else max(0.0, 1.0 + late_days / 7)
    age_h = max(0.0, (now - requested_at).total_seconds() / 3600.0)
    return age_h / sla_h


def stop_from_request(
    req: ServiceRequest,
    category: Category,
    now: datetime,
    day: date | None = None,
    tw: tuple[datetime, datetime] | None = None,
) -> Stop:
    """Turn a :class:`~dispatch.model.ServiceRequest` into a :class:`Stop`.

    Parameters
    ----------
    req
        The request.
    category
        Its category (service time, SLA).
    now
        Planning time, for the urgency.
    day
        Planned day (for booked pickups).
    tw
        Optional arrival window.

    Returns
    -------
    Stop
        The stop; ``lon``/``lat`` are ``None`` when the request is not located.
    """
    located = req.lon is not None and req.lat is not None
    return Stop(
        request_id=req.external_id,
        category=category.code,
        district=req.district,
        lon=req.lon if located else None,
        lat=req.lat if located else None,
        service_s=category.service_time_s,
        size=max(0, req.size),
        urgency=round(urgency_of(req.requested_at, now, category.sla_h, req.service_date, day), 4),
        tw_start=tw[0] if tw else None,
        tw_end=tw[1] if tw else None,
    )


# ---------------------------------------------------------------------------------------
# Time helpers


@dataclass(frozen=True)
class DayClock:
    """Converts between aware datetimes and seconds since local midnight of ``day``."""

    day: date
    tz: ZoneInfo

    @property
    def midnight_utc(self) -> datetime:
        """Return local midnight of the day, in UTC."""
        return datetime.combine(self.day, time(0), tzinfo=self.tz).astimezone(UTC)

    def seconds(self, when: datetime) -> int:
        """Return seconds since local midnight (may be negative or > 86400)."""
        return round((when - self.midnight_utc).total_seconds())

    def local_seconds(self, t: time) -> int:
        """Return seconds since local midnight of the wall-clock time ``t`` on the day."""
        return self.seconds(datetime.combine(self.day, t, tzinfo=self.tz))

    def at(self, seconds: int) -> datetime:
        """Return the local aware datetime ``seconds`` after local midnight."""
        return (self.midnight_utc + timedelta(seconds=int(seconds))).astimezone(self.tz)


# ---------------------------------------------------------------------------------------
# Splitting the day into sub-problems


def skill_key(crew: Crew) -> tuple[str, ...]:
    """Return the crew type: its sorted, de-duplicated categories."""
    return tuple(sorted(set(crew.categories)))


def serves(crew: Crew, district: str | None) -> bool:
    """Return whether ``crew`` works in ``district`` (an empty district list: everywhere)."""
    return not crew.districts or (district is not None and district in crew.districts)


@dataclass
class SubProblem:
    """One independent VRP: a crew type in one district (or a group of districts)."""

    skills: tuple[str, ...]
    districts: tuple[str, ...]
    crews: list[Crew]
    stops: list[Stop] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Return a stable, readable id such as ``bulky_items+illegal_dumping@1,4``."""
        return "+".join(self.skills) + "@" + ",".join(self.districts)


def _district_sort(d: str) -> tuple[int, str]:
    return (int(d), d) if d.isdigit() else (10**9, d)


def _window_problem(stop: Stop, crews: Sequence[Crew], clock: DayClock) -> Reason | None:
    if stop.tw_start is None and stop.tw_end is None:
        return None
    lo = clock.seconds(stop.tw_start) if stop.tw_start else -(10**9)
    hi = clock.seconds(stop.tw_end) if stop.tw_end else 10**9
    if hi < lo:
        return Reason(ReasonKind.WINDOW_IMPOSSIBLE,
                      f"ends {stop.tw_end} before it starts {stop.tw_start}")
    for c in crews:
        s0 = clock.local_seconds(c.shift_start)
        s1 = clock.local_seconds(c.shift_end) - c.lunch_s - stop.service_s
        if hi >= s0 and lo <= s1:
            return None
    return Reason(
        ReasonKind.WINDOW_IMPOSSIBLE,
        f"{stop.tw_start} to {stop.tw_end} is outside the shift of every "
        f"crew with skill {stop.category} in district {stop.district}",
    )


def split_day(
    stops: Sequence[Stop],
    crews: Sequence[Crew],
    clock: DayClock,
    *,
    allow_cross_district: bool = False,
    absent: frozenset[str] = frozenset(),
    depots: Mapping[str, Depot] | None = None,
) -> tuple[list[SubProblem], dict[str, Reason]]:
    """Split the day into sub-problems and explain the stops that no crew can take.

    Parameters
    ----------
    stops
        Candidate stops.
    crews
        Roster.
    clock
        The planned day.
    allow_cross_district
        Solve districts linked by multi-district crews jointly.
    absent
        Names of crews absent that day.
    depots
        Depots by code, to give districts the crews based nearest to them.

    Returns
    -------
    tuple
        Sub-problems sorted by key (with every available crew in exactly one), and
        ``{request_id: reason}`` for stops that cannot be planned at all.
    """
    names = [c.name for c in crews]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise PlanningError(f"crew names must be unique; duplicated: {dup}")
    ids = [s.request_id for s in stops]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise PlanningError(f"stop request_ids must be unique; duplicated: {dup}")
    avail = [c for c in crews if c.name not in absent]
    unplanned: dict[str, Reason] = {}
    all_districts = {d for c in crews for d in c.districts}
    whole_city = any(not c.districts for c in crews)

    # 1. Assign each stop to a crew type, or explain why none fits.
    by_type: dict[tuple[str, ...], list[Stop]] = defaultdict(list)
    for s in stops:
        if s.lon is None or s.lat is None or not (math.isfinite(s.lon) and math.isfinite(s.lat)):
            unplanned[s.request_id] = Reason(ReasonKind.NO_LOCATION)
            continue
        if not whole_city and (s.district is None or s.district not in all_districts):
            unplanned[s.request_id] = Reason(
                ReasonKind.OUTSIDE_DISTRICTS,
                f"district {s.district}" if s.district is not None else "no district",
            )
            continue
        able = [c for c in avail if s.category in c.categories and serves(c, s.district)]
        if not able:
            unplanned[s.request_id] = Reason(
                ReasonKind.NO_SKILLED_CREW,
                f"{s.category} in district {s.district}"
                + (
                    " (absent today)"
                    if any(
                        c.name in absent and s.category in c.categories and serves(c, s.district)
                        for c in crews
                    )
                    else ""
                )
            )
            continue
        big = [c for c in able if c.capacity >= s.size]
        if not big:
            unplanned[s.request_id] = Reason(
                ReasonKind.OVER_CAPACITY, f"size {s.size} exceeds every eligible crew's capacity"
            )
            continue
        why = _window_problem(s, big, clock)
        if why:
            unplanned[s.request_id] = why
            continue
        counts: dict[tuple[str, ...], int] = defaultdict(int)
        for c in big:
            counts[skill_key(c)] += 1
        key = min(counts, key=lambda k: (-counts[k], k))
        by_type[key].append(s)

    # 2. Per crew type, allocate crews to districts (or district groups).
    subs: list[SubProblem] = []
    types = sorted({skill_key(c) for c in avail})
    for key in types:
        tcrews = sorted((c for c in avail if skill_key(c) == key), key=lambda c: c.name)
        tstops = by_type.get(key, [])
        if allow_cross_district or any(not c.districts for c in tcrews):
            # Whole-city crews (no district list) make the city one service area.
            subs.extend(_joint_groups(key, tcrews, tstops))
        else:
            subs.extend(_allocate(key, tcrews, tstops, clock, unplanned, depots))
    subs.sort(key=lambda p: p.key)
    return subs, unplanned


def _joint_groups(key: tuple[str, ...], crews: list[Crew], stops: list[Stop]) -> list[SubProblem]:
    # Union-find over districts linked by crews; whole-city crews link everything.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    every = sorted(
        {s.district for s in stops if s.district} | {d for c in crews for d in c.districts}
    )
    for c in crews:
        ds = list(c.districts) if c.districts else every
        for d in ds[1:]:
            parent[find(d)] = find(ds[0])
        if ds:
            find(ds[0])
    groups: dict[str, list[str]] = defaultdict(list)
    for d in every:
        groups[find(d)].append(d)
    subs = []
    for ds in groups.values():
        dset = set(ds)
        gc = [c for c in crews if not c.districts or dset & set(c.districts)]
        gs = [s for s in stops if s.district in dset]
        if gc:
            subs.append(SubProblem(key, tuple(sorted(ds, key=_district_sort)), gc, gs))
    # Stops without a district can only have come this far for a whole-city crew.
    rest = [s for s in stops if s.district is None]
    if rest:
        home = next((p for p in subs if any(not c.districts for c in p.crews)), None)
        if home is None:
            home = SubProblem(key, (), [c for c in crews if not c.districts])
            subs.append(home)
        home.stops.extend(rest)
    return subs


def _allocate(
    key: tuple[str, ...],
    crews: list[Crew],
    stops: list[Stop],
    clock: DayClock,
    unplanned: dict[str, Reason],
    depots: Mapping[str, Depot] | None = None,
) -> list[SubProblem]:
    """Give each crew of one type one district for the day.

    Demand of a district, in crews: ``max(work / crew time, load / capacity)`` with work
    = service time + :data:`HOP_ESTIMATE_S` per stop. First every district with work gets
    one crew (districts with the fewest eligible crews first); then, repeatedly, the
    district with the most unmet demand takes the eligible crew whose depot is nearest to its stops
    (plus 3 km per other district the crew could serve, to keep flexible crews for
    later). Crews left when all demand is met are spread as spare capacity.
    """
    by_d: dict[str, list[Stop]] = defaultdict(list)
    for s in stops:
        by_d[s.district or ""].append(s)
    assigned: dict[str, list[Crew]] = defaultdict(list)
    if crews:
        ref = crews[0]
        ct = float(
            clock.local_seconds(ref.shift_end) - clock.local_seconds(ref.shift_start) - ref.lunch_s
        )
        need = {
            d: max(
                sum(s.service_s + HOP_ESTIMATE_S for s in ss) / max(ct, 1.0),
                sum(s.size for s in ss) / ref.capacity,
            )
            for d, ss in by_d.items()
        }
        centre = {
            d: (
                sum(s.lon or 0.0 for s in ss) / len(ss),
                sum(s.lat or 0.0 for s in ss) / len(ss),
            )
            for d, ss in by_d.items()
        }

        def can(c: Crew, d: str) -> bool:
            return not c.districts or d in c.districts

        def km(c: Crew, d: str) -> float:
            if depots is None or c.depot not in depots or d not in centre:
                return 0.0
            dep = depots[c.depot]
            lon, lat = centre[d]
            dx = (dep.lon - lon) * 111.32 * math.cos(math.radians(lat))
            dy = (dep.lat - lat) * 110.57
            return math.hypot(dx, dy)

        have: dict[str, float] = defaultdict(float)
        free = sorted(crews, key=lambda c: c.name)

        def pick(d: str) -> None:
            c = min(
                (c for c in free if can(c, d)),
                key=lambda c: (km(c, d) + 3.0 * (len(c.districts) - 1), c.name),
            )
            free.remove(c)
            assigned[d].append(c)
            have[d] += 1.0

        # First one crew for every district with work, scarcest districts first.
        for d in sorted(
            by_d, key=lambda x: (sum(can(c, x) for c in free), -need[x], _district_sort(x))
        ):
            if any(can(c, d) for c in free):
                pick(d)
        while free:
            cand = [d for d in by_d if need[d] - have[d] > 1e-9 and any(can(c, d) for c in free)]
            if not cand:
                break
            pick(max(cand, key=lambda x: (need[x] - have[x], -_district_sort(x)[0])))
        for c in free:
            options = list(c.districts) if c.districts else sorted(by_d)
            if not options:
                continue
            d = max(
                options,
                key=lambda x: (need.get(x, 0.0) / (have[x] + 1.0), -_district_sort(x)[0]),
            )
            assigned[d].append(c)
            have[d] += 1.0
    subs = []
    for d in sorted(set(assigned) | set(by_d), key=_district_sort):
        if not assigned.get(d):
            for s in by_d[d]:
                unplanned[s.request_id] = Reason(
                    ReasonKind.CREWS_ELSEWHERE,
                    f"no {s.category} crew left for district {d} "
                    "(allow_cross_district shares them)",
                )
            continue
        subs.append(SubProblem(key, (d,) if d else (), assigned[d], by_d.get(d, [])))
    return subs


def depots_for(crews: Sequence[Crew], depots: Mapping[str, Depot]) -> list[Depot]:
    """Return the depots of ``crews`` in first-use order, checking that each exists."""
    out: dict[str, Depot] = {}
    for c in crews:
        if c.depot not in depots:
            raise PlanningError(
                f"crew {c.name!r}: depot {c.depot!r} is not in depots {sorted(depots)}"
            )
        out.setdefault(c.depot, depots[c.depot])
    return list(out.values())
