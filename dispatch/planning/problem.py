"""Planning inputs: stops, locks, the route reserve, and splitting a day into sub-problems.

PyVRP's open-source edition has no skills, so a day is cut into sub-problems per *crew
type* (the set of categories a crew serves, its skills) and *territory group*: the
districts linked by crews whose territories (their city-pack ``districts``) overlap. A
sanitation yard's crews serve that yard's districts; yards sharing a district are
planned together, each crew restricted to its own districts (a PyVRP routing profile per
territory, see :mod:`dispatch.planning.solver`). Crews without districts serve the whole
city, which makes the city one group.

Times inside a sub-problem are integer seconds since local midnight of the planned day.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from dispatch.errors import PlanningError
from dispatch.model import Category, Crew, Depot, ServiceRequest

#: Prize (in cost units = seconds of driving) for serving a stop that is not urgent.
PRIZE_BASE = 20_000
#: Extra prize per unit of urgency (age / SLA), capped at :data:`URGENCY_CAP`.
PRIZE_PER_URGENCY = 10_000
#: Extra prize for an overdue stop, so that overdue stops are dropped last.
PRIZE_OVERDUE = 100_000
URGENCY_CAP = 10.0

#: Largest territory group solved as one PyVRP instance (its matrices grow with the
#: square of the stops, once per territory); larger groups are split between teams.
MAX_GROUP_STOPS = 1500
#: Rough travel per stop, used only to share a large group's stops between its teams.
HOP_ESTIMATE_S = 300


@dataclass(frozen=True)
class Slack:
    """The reserve every route keeps before its shift ends, for a slower day than planned.

    A crew's reserve is ``max(share * shift length, min_minutes)``; the solver plans
    each route to be back at the depot that long before the shift ends (and inside
    ``max_duration_s`` by as much), so travel slower than the model leaves the crew on
    time.

    Parameters
    ----------
    share
        Share of the shift kept in reserve, ``0 <= share < 0.5``.
    min_minutes
        Least reserve per route in minutes, ``>= 0``.
    """

    share: float = 0.04
    min_minutes: float = 20.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.share) and 0.0 <= self.share < 0.5):
            raise PlanningError(f"Slack.share {self.share} must be in [0, 0.5)")
        if not (math.isfinite(self.min_minutes) and 0.0 <= self.min_minutes <= 240.0):
            raise PlanningError(f"Slack.min_minutes {self.min_minutes} must be in [0, 240]")

    def reserve_s(self, shift_s: int) -> int:
        """Return the reserve in seconds of a shift of ``shift_s`` seconds."""
        return round(max(self.share * max(shift_s, 0), self.min_minutes * 60.0))

    def to_dict(self) -> dict[str, float]:
        """Return the settings written into a plan (read back by :meth:`from_dict`)."""
        return {"share": self.share, "min_minutes": self.min_minutes}

    @classmethod
    def from_dict(cls, d: Mapping[str, object] | None) -> Slack | None:
        """Read :meth:`to_dict` output; ``None`` (no reserve) stays ``None``."""
        if d is None:
            return None
        return cls(float(str(d.get("share", 0.0))), float(str(d.get("min_minutes", 0.0))))


#: The reserve plans keep unless told otherwise (see docs/planning.md for the check).
DEFAULT_SLACK = Slack()


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

    @cached_property
    def midnight_utc(self) -> datetime:
        """Return local midnight of the day, in UTC (worked out once per clock)."""
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


def crews_from(crews: Sequence[Crew], day: date, now: datetime, tz: ZoneInfo,
               *, step_min: int = 5) -> tuple[list[Crew], datetime | None]:
    """Return the crews as they can still work ``day`` when it is planned at ``now``.

    A day planned after its shifts began cannot send crews out in the past: a crew whose
    shift has started starts at ``now``, rounded up to ``step_min`` minutes, and a crew
    whose shift is over by then is left out. Any other day (a later one, or a past one
    replayed) keeps the shifts as they are.

    Parameters
    ----------
    crews
        The roster for the day.
    day, tz
        The local service date and its time zone.
    now
        The planning instant (aware).
    step_min
        Rounding of the late start, in minutes (positive).

    Returns
    -------
    tuple
        The crews, and the late start (aware, local) when one applied, else ``None``.
    """
    if now.tzinfo is None:
        raise PlanningError(f"crews_from needs an aware planning instant; got {now!r}")
    if step_min <= 0:
        raise PlanningError(f"crews_from needs a positive step_min; got {step_min}")
    local = now.astimezone(tz)
    if local.date() != day:
        return list(crews), None
    minutes = local.hour * 60 + local.minute + (1 if local.second or local.microsecond else 0)
    minutes = -(-minutes // step_min) * step_min
    if minutes >= 24 * 60:
        return [], None
    start = time(minutes // 60, minutes % 60)
    if all(c.shift_start >= start for c in crews):
        return list(crews), None
    out = [c if c.shift_start >= start else _late(c, start) for c in crews
           if c.shift_end > start]
    return out, datetime.combine(day, start, tzinfo=tz)


def _late(crew: Crew, start: time) -> Crew:
    """Return ``crew`` starting at ``start``; a lunch window already over is dropped."""
    if crew.lunch_end <= start:
        return dataclasses.replace(crew, shift_start=start, lunch_s=0)
    return dataclasses.replace(crew, shift_start=start,
                               lunch_start=max(crew.lunch_start, start))


def skill_key(crew: Crew) -> tuple[str, ...]:
    """Return the crew type: its sorted, de-duplicated categories."""
    return tuple(sorted(set(crew.categories)))


def serves(crew: Crew, district: str | None) -> bool:
    """Return whether ``crew`` works in ``district`` (an empty district list: everywhere)."""
    return not crew.districts or (district is not None and district in crew.districts)


@dataclass
class SubProblem:
    """One independent VRP: a crew type in a group of districts linked by its crews.

    Every crew serves only the stops of its own territory (:func:`serves`); the solver
    enforces that with one routing profile per territory.
    """

    skills: tuple[str, ...]
    districts: tuple[str, ...]
    crews: list[Crew]
    stops: list[Stop] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Return a stable, readable id such as ``bulky_items+illegal_dumping@1,4``."""
        return "+".join(self.skills) + "@" + ",".join(self.districts)


def district_sort(d: str) -> tuple[int, str]:
    """Return the sort key of a district id: numbers in numeric order, then names."""
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
    absent: frozenset[str] = frozenset(),
    depots: Mapping[str, Depot] | None = None,
    max_group_stops: int | None = None,
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
    absent
        Names of crews absent that day.
    depots
        Depots by code, to split a territory group larger than ``max_group_stops``
        between its teams (:func:`split_large_group`); without them no group is split.
    max_group_stops
        Largest group solved as one instance.

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

    # 2. Per crew type, one sub-problem per group of overlapping territories.
    limit = MAX_GROUP_STOPS if max_group_stops is None else max_group_stops
    subs: list[SubProblem] = []
    types = sorted({skill_key(c) for c in avail})
    for key in types:
        tcrews = sorted((c for c in avail if skill_key(c) == key), key=lambda c: c.name)
        for group in territory_groups(key, tcrews, by_type.get(key, [])):
            if len(group.stops) > limit and depots is not None:
                subs.extend(split_large_group(group, depots, clock, limit))
            else:
                subs.append(group)
    subs.sort(key=lambda p: p.key)
    return subs, unplanned


def territory_groups(
    key: tuple[str, ...], crews: Sequence[Crew], stops: Sequence[Stop]
) -> list[SubProblem]:
    """Group districts linked by crews' territories; one sub-problem per group.

    Union-find over districts: a crew serving districts 1 and 4 links them, so every
    crew and stop of districts 1 and 4 lands in one sub-problem. Crews without
    districts (whole city) link everything.

    Parameters
    ----------
    key
        The crew type (skills).
    crews
        Crews of that type.
    stops
        Stops assigned to that type.

    Returns
    -------
    list of SubProblem
        Groups with at least one crew, stops in the group's districts.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    every = sorted(
        {s.district for s in stops if s.district} | {d for c in crews for d in c.districts},
        key=district_sort,
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
            subs.append(SubProblem(key, tuple(sorted(ds, key=district_sort)), list(gc), gs))
    # Stops without a district can only have come this far for a whole-city crew.
    rest = [s for s in stops if s.district is None]
    if rest:
        home = next((p for p in subs if any(not c.districts for c in p.crews)), None)
        if home is None:
            home = SubProblem(key, (), [c for c in crews if not c.districts])
            subs.append(home)
        home.stops.extend(rest)
    return subs


def split_large_group(
    sub: SubProblem, depots: Mapping[str, Depot], clock: DayClock, max_stops: int
) -> list[SubProblem]:
    """Split a territory group too large for one instance between its teams.

    A *team* is the crews sharing a territory and depot (a yard's crews). A stop only
    one team serves goes to it; the others, largest regret first (how much farther the
    second-nearest eligible depot is than the nearest), go to the nearest eligible team
    with time left (work = service + :data:`HOP_ESTIMATE_S`; a team has its crews'
    shifts less lunch), else to the least loaded one. Teams are then merged back, most
    shared stops first, while a merged part stays within ``max_stops``.

    Parameters
    ----------
    sub
        A group from :func:`territory_groups`.
    depots
        Depots by code.
    clock
        The planned day.
    max_stops
        Largest part.

    Returns
    -------
    list of SubProblem
        Parts, every crew and stop of ``sub`` in exactly one.
    """
    teams: dict[tuple[tuple[str, ...], str], list[Crew]] = defaultdict(list)
    for c in sub.crews:
        teams[(tuple(c.districts), c.depot)].append(c)
    keys = sorted(teams)
    cap = {
        k: float(sum(clock.local_seconds(c.shift_end) - clock.local_seconds(c.shift_start)
                     - c.lunch_s for c in teams[k]))
        for k in keys
    }  # fmt: skip
    load = dict.fromkeys(keys, 0.0)
    owner: dict[str, tuple[tuple[str, ...], str]] = {}

    def km(k: tuple[tuple[str, ...], str], st: Stop) -> float:
        dep = depots.get(k[1])
        if dep is None or st.lon is None or st.lat is None:
            return 0.0
        dx = (dep.lon - st.lon) * 111.32 * math.cos(math.radians(st.lat))
        return math.hypot(dx, (dep.lat - st.lat) * 110.57)

    able = {st.request_id: [k for k in keys if not k[0] or st.district in k[0]]
            for st in sub.stops}
    shared = []
    for st in sub.stops:
        ks = able[st.request_id]
        if len(ks) == 1:
            owner[st.request_id] = ks[0]
            load[ks[0]] += st.service_s + HOP_ESTIMATE_S
        else:
            d = sorted(km(k, st) for k in ks)
            shared.append((-(d[1] - d[0]), st.request_id, st))
    for _, rid, st in sorted(shared):
        work = st.service_s + HOP_ESTIMATE_S
        ks = sorted(able[rid], key=lambda k: (km(k, st), k))
        free = [k for k in ks if load[k] + work <= cap[k]]
        k = free[0] if free else min(ks, key=lambda k: (load[k] / max(cap[k], 1.0), k))
        owner[rid] = k
        load[k] += work
    # Merge teams back while parts stay small enough, most shared stops first.
    part = {k: k for k in keys}

    def root(k: tuple[tuple[str, ...], str]) -> tuple[tuple[str, ...], str]:
        while part[k] != k:
            k = part[k]
        return k

    size = Counter(owner.values())
    links: Counter[tuple[tuple[tuple[str, ...], str], tuple[tuple[str, ...], str]]] = Counter()
    for st in sub.stops:
        ks = able[st.request_id]
        for a in ks:
            for b in ks:
                if a < b:
                    links[(a, b)] += 1
    for (a, b), _ in sorted(links.items(), key=lambda kv: (-kv[1], kv[0])):
        ra, rb = root(a), root(b)
        if ra != rb and size[ra] + size[rb] <= max_stops:
            part[rb] = ra
            size[ra] += size[rb]
    out: dict[tuple[tuple[str, ...], str], SubProblem] = {}
    for k in keys:
        r = root(k)
        if r not in out:
            out[r] = SubProblem(sub.skills, (), [])
        out[r].crews.extend(teams[k])
    for st in sub.stops:
        out[root(owner[st.request_id])].stops.append(st)
    parts = []
    for p in out.values():
        ds = {d for c in p.crews for d in c.districts} or set(sub.districts)
        p.districts = tuple(sorted(ds, key=district_sort))
        p.crews.sort(key=lambda c: c.name)
        parts.append(p)
    return parts


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
