"""Assigning a draft plan: what changes for the crews, worked out before anything does.

Pure. Assigning a draft supersedes every assigned plan of the same city and day that
overlaps it (a district in common, or a crew with stops in both). A route of such a plan
on which a crew already reached or finished a stop is **never** superseded: it carries
over into the new plan as that crew's route, with everything the crew recorded. Then:

* the draft's own route for that crew gives way to it; the draft's stops on it that the
  carried route does not hold become unplanned ("crew busy"), to be placed by a
  re-optimise;
* a stop the crew already worked is taken off any other route of the draft;
* a pending stop of the carried route that the draft gives to another crew goes to that
  crew (the supervisor's new intent); the other pending stops stay with the crew.

:func:`plan_assignment` computes all of this from plain facts, so the supervisor can see
it (:meth:`Assignment.lines`) and confirm it (:attr:`Assignment.token`) before the
service applies it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dispatch.state import StopStatus

#: The claim key of a plan that covers a whole city (or a city without districts).
WHOLE_CITY = "*"


@dataclass(frozen=True)
class StopFact:
    """One stop as it stands: its row, its request and what the crew recorded."""

    stop_id: int
    request_pk: int
    status: StopStatus
    version: int = 1


@dataclass(frozen=True)
class RouteFact:
    """One crew's route in a plan, stops in order."""

    route_id: int
    crew: str
    stops: tuple[StopFact, ...]

    @property
    def started(self) -> bool:
        """Return whether the crew reached or finished any stop."""
        return any(s.status.worked for s in self.stops)


@dataclass(frozen=True)
class PlanFact:
    """A plan as the assignment sees it.

    Parameters
    ----------
    plan_id, version
        The stored plan and its version.
    districts
        Districts the plan covers; empty means the whole city.
    routes
        Its routes (routes without stops included).
    """

    plan_id: int
    version: int
    districts: frozenset[str]
    routes: tuple[RouteFact, ...]

    def crews_with_stops(self) -> set[str]:
        """Return the crews that have at least one stop."""
        return {r.crew for r in self.routes if r.stops}

    def claim_districts(self) -> set[str]:
        """Return the district claim keys (``*`` for a whole-city plan)."""
        return set(self.districts) or {WHOLE_CITY}


def overlaps(a: PlanFact, b: PlanFact) -> bool:
    """Return whether two plans of one day cover a district, or a crew, in common."""
    if not a.districts or not b.districts or a.districts & b.districts:
        return True
    return bool(a.crews_with_stops() & b.crews_with_stops())


@dataclass
class Assignment:
    """What assigning a draft does (computed by :func:`plan_assignment`).

    Attributes
    ----------
    draft_id
        The plan being assigned.
    superseded
        Assigned plans it replaces.
    carried
        Started routes of those plans that carry over into the draft.
    routes
        The draft's routes after the carry-over: ``{crew: [request pk, ...]}`` in order
        (carried routes included).
    crew_busy
        Request pks of the draft's stops that leave the draft's routes because their
        crew keeps a started route (they become unplanned).
    drop_draft_routes
        Crews whose draft route gives way to a carried route.
    removed_from_draft
        Request pks taken off the draft's routes because a carried route holds them.
    removed_from_carried
        Stop ids of pending stops that leave a carried route (the draft gives them to
        another crew).
    newly_scheduled
        Request pks on the new routes that were on no assigned route before.
    released
        Request pks that were on an assigned route (not yet worked) and are on none after.
    moved
        ``{request pk: (crew before, crew after)}`` for stops changing crew.
    gaining, losing
        Crews that get a route, and crews whose route goes away.
    token
        A digest of every version involved: confirming with it applies exactly this.
    """

    draft_id: int
    superseded: list[int] = field(default_factory=list)
    carried: list[RouteFact] = field(default_factory=list)
    routes: dict[str, list[int]] = field(default_factory=dict)
    crew_busy: list[int] = field(default_factory=list)
    drop_draft_routes: list[str] = field(default_factory=list)
    removed_from_draft: list[int] = field(default_factory=list)
    removed_from_carried: list[int] = field(default_factory=list)
    newly_scheduled: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    moved: dict[int, tuple[str, str]] = field(default_factory=dict)
    gaining: list[str] = field(default_factory=list)
    losing: list[str] = field(default_factory=list)
    token: str = ""

    @property
    def disruptive(self) -> bool:
        """Return whether assigning touches anything beyond the draft itself."""
        return bool(self.superseded or self.released or self.moved or self.losing
                    or self.carried)

    def named(self) -> set[int]:
        """Return the request pks :meth:`lines` names (the first few of each list).

        Look up only these for ``names``: a city plan's preview names a handful of its
        two thousand requests.
        """
        return {pk for pks in (self.crew_busy, sorted(self.moved), self.released)
                for pk in pks[:NAMED_IN_LIST]}

    def lines(self, names: Mapping[int, str] | None = None) -> list[str]:
        """Return the preview a supervisor reads before confirming, one fact per line.

        Parameters
        ----------
        names
            ``{request pk: label}`` (the city's request id) for the lists; those of
            :meth:`named` are enough.
        """
        names = names or {}

        def few(pks: Sequence[int]) -> str:
            shown = ", ".join(names.get(pk, f"#{pk}") for pk in list(pks)[:NAMED_IN_LIST])
            more = len(pks) - NAMED_IN_LIST
            return shown + (f" and {more} more" if more > 0 else "")

        out = []
        if self.superseded:
            out.append("Replaces assigned plan" + ("s " if len(self.superseded) > 1 else " ")
                       + ", ".join(f"#{p}" for p in self.superseded) + ".")
        n = sum(1 for s in self.routes.values() if s)
        out.append(f"{n} crew{'s' if n != 1 else ''} will have a route; "
                   f"{len(self.newly_scheduled)} request"
                   f"{'s' if len(self.newly_scheduled) != 1 else ''} become scheduled.")
        if self.gaining:
            out.append(f"Crews gaining a route: {', '.join(sorted(self.gaining))}.")
        if self.losing:
            out.append(f"Crews losing their route: {', '.join(sorted(self.losing))}.")
        for route in self.carried:
            done = sum(1 for s in route.stops if s.status.finished)
            left = sum(1 for s in route.stops if not s.status.finished)
            out.append(f"Route of {route.crew} already started ({done} finished, {left} to "
                       "do): it carries over unchanged.")
        if self.crew_busy:
            out.append(f"{len(self.crew_busy)} stop{'s' if len(self.crew_busy) != 1 else ''}"
                       f" of this plan wait as unplanned (their crew keeps its started "
                       f"route): {few(self.crew_busy)}.")
        if self.moved:
            out.append(f"{len(self.moved)} stop{'s' if len(self.moved) != 1 else ''} change "
                       f"crew: {few(sorted(self.moved))}.")
        if self.released:
            out.append(f"{len(self.released)} scheduled request"
                       f"{'s' if len(self.released) != 1 else ''} go back to the open queue "
                       f"(on no route any more): {few(self.released)}.")
        return out


#: Requests a list of the preview names; the rest are counted ("and 12 more").
NAMED_IN_LIST = 5


def plan_assignment(draft: PlanFact, assigned: Sequence[PlanFact]) -> Assignment:
    """Work out what assigning ``draft`` does to the day's assigned plans.

    Parameters
    ----------
    draft
        The draft to assign.
    assigned
        Every assigned plan of the same city and day (overlapping or not).

    Returns
    -------
    Assignment
        The resulting routes and every consequence, with a confirmation token.
    """
    out = Assignment(draft.plan_id)
    replaced = [p for p in assigned if p.plan_id != draft.plan_id and overlaps(draft, p)]
    out.superseded = sorted(p.plan_id for p in replaced)
    carried = [r for p in replaced for r in p.routes if r.started]
    out.carried = sorted(carried, key=lambda r: r.crew)
    carried_crews = {r.crew for r in carried}

    routes: dict[str, list[int]] = {r.crew: [s.request_pk for s in r.stops]
                                    for r in draft.routes}
    draft_owner = {pk: crew for crew, pks in routes.items() for pk in pks}
    # pending stops of carried routes that the draft puts on another crew follow the draft
    for route in carried:
        keep: list[int] = []
        for s in route.stops:
            owner = draft_owner.get(s.request_pk)
            if (not s.status.worked and owner is not None and owner != route.crew
                    and owner not in carried_crews):
                out.removed_from_carried.append(s.stop_id)
                continue
            keep.append(s.request_pk)
        # the draft's own route for this crew gives way
        if route.crew in routes:
            out.drop_draft_routes.append(route.crew)
            out.crew_busy += [pk for pk in routes[route.crew] if pk not in keep]
        routes[route.crew] = keep
    held = {pk for r in carried for pk in routes[r.crew]}
    for crew, pks in routes.items():
        if crew in carried_crews:
            continue
        kept = [pk for pk in pks if pk not in held]
        out.removed_from_draft += [pk for pk in pks if pk in held]
        routes[crew] = kept
    out.crew_busy = sorted(set(out.crew_busy) - held)
    out.routes = routes

    before: dict[int, str] = {}
    worked_before: set[int] = set()
    for plan in replaced:
        for r in plan.routes:
            for s in r.stops:
                before[s.request_pk] = r.crew
                if s.status.worked:
                    worked_before.add(s.request_pk)
    others = [p for p in assigned if p.plan_id != draft.plan_id and p not in replaced]
    elsewhere = {s.request_pk for p in others for r in p.routes for s in r.stops}
    after = {pk: crew for crew, pks in routes.items() for pk in pks}
    out.newly_scheduled = sorted(pk for pk in after if pk not in before and pk not in elsewhere)
    out.released = sorted(pk for pk in before if pk not in after and pk not in worked_before)
    out.moved = {pk: (before[pk], crew) for pk, crew in sorted(after.items())
                 if pk in before and before[pk] != crew}
    crews_before = {r.crew for p in replaced for r in p.routes if r.stops}
    crews_after = {crew for crew, pks in routes.items() if pks}
    out.gaining = sorted(crews_after - crews_before)
    out.losing = sorted(crews_before - crews_after)
    out.token = _token(draft, replaced)
    return out


def _token(draft: PlanFact, replaced: Sequence[PlanFact]) -> str:
    parts = [f"d{draft.plan_id}:{draft.version}"]
    for plan in sorted(replaced, key=lambda p: p.plan_id):
        parts.append(f"p{plan.plan_id}:{plan.version}")
        parts += [f"s{s.stop_id}:{s.version}:{s.status.value}"
                  for r in plan.routes for s in r.stops]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
