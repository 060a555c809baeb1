"""The pure rules of the state model: transition tables, field ownership, assignment.

The transition tables are tested exhaustively: every (from, to) pair of every status
kind against an explicit list of the moves the workflow allows, written out here a
second time so that a change to a table is a visible, deliberate change to this file.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.assignment import PlanFact, RouteFact, StopFact, overlaps, plan_assignment
from dispatch.errors import InvalidTransitionError
from dispatch.model import RequestStatus
from dispatch.ownership import OWNER_SOURCE, OWNER_WORKFLOW, Position, reconcile
from dispatch.state import (
    PLAN_TRANSITIONS,
    REQUEST_TRANSITIONS,
    ROUTE_TRANSITIONS,
    STOP_TRANSITIONS,
    PlanStatus,
    RouteStatus,
    StopStatus,
    allowed,
    check_transition,
    route_status_of,
)

P, Rt, S, R = PlanStatus, RouteStatus, StopStatus, RequestStatus

ALLOWED_PLAN = {(P.DRAFT, P.ASSIGNED), (P.ASSIGNED, P.SUPERSEDED)}
ALLOWED_ROUTE = {
    (Rt.PLANNED, Rt.STARTED), (Rt.PLANNED, Rt.FINISHED), (Rt.PLANNED, Rt.SUPERSEDED),
    (Rt.STARTED, Rt.PLANNED), (Rt.STARTED, Rt.FINISHED),
    (Rt.FINISHED, Rt.STARTED), (Rt.FINISHED, Rt.PLANNED),
}
ALLOWED_STOP = {
    (S.PENDING, S.ARRIVED), (S.PENDING, S.DONE), (S.PENDING, S.CANT_COMPLETE),
    (S.ARRIVED, S.PENDING), (S.ARRIVED, S.DONE), (S.ARRIVED, S.CANT_COMPLETE),
    (S.DONE, S.PENDING), (S.DONE, S.ARRIVED),
    (S.CANT_COMPLETE, S.PENDING), (S.CANT_COMPLETE, S.ARRIVED),
}
ALLOWED_REQUEST = {
    (R.NEW, R.TRIAGED), (R.NEW, R.SCHEDULED), (R.NEW, R.CANCELLED), (R.NEW, R.DUPLICATE),
    (R.TRIAGED, R.NEW), (R.TRIAGED, R.SCHEDULED), (R.TRIAGED, R.CANCELLED),
    (R.TRIAGED, R.DUPLICATE),
    (R.SCHEDULED, R.NEW), (R.SCHEDULED, R.TRIAGED), (R.SCHEDULED, R.IN_PROGRESS),
    (R.SCHEDULED, R.COMPLETED), (R.SCHEDULED, R.CLOSED_NOT_FIXED),
    (R.SCHEDULED, R.CANCELLED), (R.SCHEDULED, R.DUPLICATE),
    (R.IN_PROGRESS, R.SCHEDULED), (R.IN_PROGRESS, R.COMPLETED),
    (R.IN_PROGRESS, R.CLOSED_NOT_FIXED),
    (R.COMPLETED, R.SCHEDULED), (R.COMPLETED, R.IN_PROGRESS),
    (R.CLOSED_NOT_FIXED, R.SCHEDULED), (R.CLOSED_NOT_FIXED, R.IN_PROGRESS),
    (R.CLOSED_NOT_FIXED, R.TRIAGED),
}

CASES = [
    *((PLAN_TRANSITIONS, a, b, (a, b) in ALLOWED_PLAN) for a, b in itertools.product(P, P)),
    *((ROUTE_TRANSITIONS, a, b, (a, b) in ALLOWED_ROUTE) for a, b in itertools.product(Rt, Rt)),
    *((STOP_TRANSITIONS, a, b, (a, b) in ALLOWED_STOP) for a, b in itertools.product(S, S)),
    *((REQUEST_TRANSITIONS, a, b, (a, b) in ALLOWED_REQUEST)
      for a, b in itertools.product(R, R)),
]


@pytest.mark.parametrize(("table", "current", "new", "expected"), CASES,
                         ids=[f"{type(c[1]).__name__}:{c[1].value}->{c[2].value}"
                              for c in CASES])
def test_every_transition_pair(table, current, new, expected: bool) -> None:  # type: ignore[no-untyped-def]
    if current == new:
        expected = True  # staying put is no move
    assert allowed(table, current, new) is expected
    if expected:
        check_transition(table, current, new, "it")
    else:
        with pytest.raises(InvalidTransitionError, match=f"it is {current.value} and cannot "
                                                         f"become {new.value}"):
            check_transition(table, current, new, "it")


def test_a_started_route_is_never_superseded() -> None:
    for current in (Rt.STARTED, Rt.FINISHED):
        with pytest.raises(InvalidTransitionError):
            check_transition(ROUTE_TRANSITIONS, current, Rt.SUPERSEDED, "route")


@pytest.mark.parametrize(("stops", "expected"), [
    ((), Rt.PLANNED),
    ((S.PENDING, S.PENDING), Rt.PLANNED),
    ((S.ARRIVED, S.PENDING), Rt.STARTED),
    ((S.DONE, S.PENDING), Rt.STARTED),
    ((S.DONE, S.CANT_COMPLETE), Rt.FINISHED),
    ((S.DONE, S.ARRIVED), Rt.STARTED),
])
def test_route_status_follows_its_stops(stops: tuple[S, ...], expected: Rt) -> None:
    assert route_status_of(stops) is expected


# ------------------------------------------------------------------------------ ownership

T0 = datetime(2020, 1, 3, 15, tzinfo=UTC)
T1 = datetime(2020, 1, 3, 17, tzinfo=UTC)


def _stored(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "description": "sofa", "address": "1 MAIN ST", "zipcode": "90012", "category": "b",
        "service_code": "Bulky Items", "status": "new", "closed_at": None,
        "status_owner": OWNER_SOURCE, "source_status": "new", "source_closed_at": None,
        "lon": -118.2, "lat": 34.0, "geocode_precision": "source", "source_lon": -118.2,
        "source_lat": 34.0, "overrides": [], "updated_at": T0,
    }
    return base | kw


SUPPLIED = {"description", "address", "zipcode", "category", "service_code", "status",
            "closed_at", "lon", "lat", "updated_at"}


def _incoming(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "description": "sofa", "address": "1 MAIN ST", "zipcode": "90012", "category": "b",
        "service_code": "Bulky Items", "status": "new", "closed_at": None, "lon": -118.2,
        "lat": 34.0, "updated_at": T0,
    }
    return base | kw


def test_an_unchanged_record_changes_nothing() -> None:
    assert not reconcile(_stored(), _incoming(), SUPPLIED).changed


def test_source_status_is_followed_while_the_source_owns_it() -> None:
    out = reconcile(_stored(), _incoming(status="completed", closed_at=T1), SUPPLIED)
    assert out.changes["status"] == "completed" and out.changes["closed_at"] == T1
    assert out.changes["source_status"] == "completed" and out.conflict is None


@pytest.mark.parametrize("local", ["scheduled", "in_progress"])
def test_source_closing_work_in_hand_is_a_conflict_and_local_stands(local: str) -> None:
    stored = _stored(status=local, status_owner=OWNER_WORKFLOW)
    out = reconcile(stored, _incoming(status="completed", closed_at=T1), SUPPLIED, now=T1)
    assert "status" not in out.changes and "closed_at" not in out.changes
    assert out.changes["source_status"] == "completed"
    assert out.conflict is not None
    assert (out.conflict["local"], out.conflict["source"]) == (local, "completed")


def test_a_crew_outcome_and_its_time_stand_when_the_source_agrees() -> None:
    stored = _stored(status="completed", closed_at=T0, status_owner=OWNER_WORKFLOW)
    out = reconcile(stored, _incoming(status="completed", closed_at=T1), SUPPLIED)
    assert "closed_at" not in out.changes and "status" not in out.changes
    assert out.conflict is None and out.changes["source_closed_at"] == T1


def test_a_manual_fix_is_never_overwritten() -> None:
    stored = _stored(lon=-118.3, lat=34.1, geocode_precision="manual", overrides=["location"])
    out = reconcile(stored, _incoming(lon=-118.25, lat=34.05), SUPPLIED)
    assert "lon" not in out.changes and out.ignored["position"] == [-118.25, 34.05]
    assert (out.changes["source_lon"], out.changes["source_lat"]) == (-118.25, 34.05)


def test_a_position_is_never_erased() -> None:
    stored = _stored(lon=-118.3, lat=34.1, geocode_precision="point", source_lon=None,
                     source_lat=None)
    out = reconcile(stored, _incoming(lon=None, lat=None), SUPPLIED, geocoded=None)
    assert not {"lon", "lat", "geocode_precision"} & set(out.changes)


def test_a_new_geocoder_answer_moves_a_geocoded_position() -> None:
    stored = _stored(lon=-118.3, lat=34.1, geocode_precision="point", source_lon=None,
                     source_lat=None)
    out = reconcile(stored, _incoming(lon=None, lat=None, address="2 MAIN ST"), SUPPLIED,
                    geocoded=Position(-118.31, 34.11, "point", 1.0, "2 MAIN ST"))
    assert (out.changes["lon"], out.changes["lat"]) == (-118.31, 34.11) and out.position_changed


def test_an_overridden_category_is_kept() -> None:
    stored = _stored(category="graffiti_removal", overrides=["category"])
    out = reconcile(stored, _incoming(category="bulky_items"), SUPPLIED)
    assert "category" not in out.changes and out.ignored["category"] == "bulky_items"


def test_open311_only_says_open_or_closed() -> None:
    stored = _stored(source_status="triaged", status="triaged")
    assert not reconcile(stored, _incoming(status="new"), SUPPLIED, sides_only=True).changed


statuses = st.sampled_from(list(RequestStatus))
owners = st.sampled_from([OWNER_SOURCE, OWNER_WORKFLOW])


@settings(max_examples=300, deadline=None)
@given(local=statuses, owner=owners, old_source=statuses, new_source=statuses,
       manual=st.booleans(), lon=st.one_of(st.none(), st.floats(-118.6, -118.1)))
def test_reconcile_never_touches_what_the_workflow_owns(
    local: RequestStatus, owner: str, old_source: RequestStatus, new_source: RequestStatus,
    manual: bool, lon: float | None,
) -> None:
    stored = _stored(status=local.value, status_owner=owner, source_status=old_source.value,
                     lon=-118.3, lat=34.1, geocode_precision="manual" if manual else "source",
                     overrides=["location"] if manual else [], priority=2)
    incoming = _incoming(status=new_source.value, lon=lon, lat=None if lon is None else 34.0)
    out = reconcile(stored, incoming, SUPPLIED, now=T1)
    if owner == OWNER_WORKFLOW:
        assert "status" not in out.changes and "closed_at" not in out.changes
    if manual:
        assert "lon" not in out.changes and "lat" not in out.changes
    if lon is None:
        assert "lon" not in out.changes  # never erased
    assert "priority" not in out.changes  # not a source field at all
    # what the source said is always recorded
    if old_source != new_source:
        assert out.changes.get("source_status") == new_source.value


# ----------------------------------------------------------------------------- assignment


def _route(route_id: int, crew: str, *stops: tuple[int, int, S]) -> RouteFact:
    return RouteFact(route_id, crew, tuple(StopFact(sid, pk, status) for sid, pk, status in stops))


def test_assigning_over_a_city_plan_carries_the_started_route_over() -> None:
    """Case 1 of the state issue, in pure form: an old district draft over the city plan."""
    city = PlanFact(2, 3, frozenset(), (
        _route(20, "A", (200, 1, S.DONE), (201, 2, S.DONE), (202, 3, S.PENDING)),
        _route(21, "B", (210, 4, S.PENDING), (211, 5, S.PENDING)),
    ))
    draft = PlanFact(1, 1, frozenset({"9"}), (
        _route(10, "A", (100, 1, S.PENDING), (101, 6, S.PENDING)),
        _route(11, "C", (110, 2, S.PENDING), (111, 3, S.PENDING)),
    ))
    out = plan_assignment(draft, [city])
    assert out.superseded == [2]
    assert [r.crew for r in out.carried] == ["A"]
    # A keeps its worked stops 1 and 2; its pending stop 3 follows the draft (to C)
    assert out.routes["A"] == [1, 2]
    assert out.removed_from_carried == [202]
    # the draft's own A route gives way: 6 waits as unplanned ("crew busy")
    assert out.crew_busy == [6] and out.drop_draft_routes == ["A"]
    # 2 was worked by A: it leaves C's draft route
    assert out.routes["C"] == [3] and out.removed_from_draft == [2]
    # B's stops go back to the queue, and the supervisor is told
    assert out.released == [4, 5] and "B" in out.losing
    assert out.disruptive
    assert any("Replaces assigned plan #2" in line for line in out.lines())


def test_plans_of_disjoint_districts_and_crews_do_not_overlap() -> None:
    a = PlanFact(1, 1, frozenset({"1"}), (_route(1, "X", (1, 1, S.PENDING)),))
    b = PlanFact(2, 1, frozenset({"2"}), (_route(2, "Y", (2, 2, S.PENDING)),))
    c = PlanFact(3, 1, frozenset({"3"}), (_route(3, "X", (3, 3, S.PENDING)),))
    whole = PlanFact(4, 1, frozenset(), ())
    assert not overlaps(a, b)
    assert overlaps(a, c)  # crew X in both
    assert overlaps(a, whole) and overlaps(whole, b)
    out = plan_assignment(b, [a])
    assert not out.superseded and not out.disruptive and out.newly_scheduled == [2]


def test_the_token_moves_when_a_crew_works_a_stop() -> None:
    city = PlanFact(2, 3, frozenset(), (_route(20, "A", (200, 1, S.PENDING)),))
    worked = PlanFact(2, 3, frozenset(), (_route(20, "A", (200, 1, S.DONE)),))
    draft = PlanFact(1, 1, frozenset(), (_route(10, "A", (100, 1, S.PENDING)),))
    assert plan_assignment(draft, [city]).token != plan_assignment(draft, [worked]).token


stop_status = st.sampled_from(list(StopStatus))


@st.composite
def day_plans(draw: st.DrawFn) -> tuple[PlanFact, list[PlanFact]]:
    crews = ["A", "B", "C", "D"]
    requests = list(range(1, 13))
    sid = itertools.count(1)

    def plan(plan_id: int, status_of: st.SearchStrategy[StopStatus]) -> PlanFact:
        pool = draw(st.permutations(requests))[: draw(st.integers(0, len(requests)))]
        routes = []
        chosen = draw(st.lists(st.sampled_from(crews), unique=True, min_size=1))
        for i, crew in enumerate(chosen):
            mine = pool[i::len(chosen)]
            routes.append(_route(plan_id * 100 + i, crew,
                                 *((next(sid), pk, draw(status_of)) for pk in mine)))
        return PlanFact(plan_id, 1, frozenset(), tuple(routes))

    draft = plan(1, st.just(StopStatus.PENDING))
    assigned = [plan(2, stop_status)]
    return draft, assigned


@settings(max_examples=200, deadline=None)
@given(day_plans())
def test_assignment_loses_no_worked_stop_and_doubles_nothing(
    plans: tuple[PlanFact, list[PlanFact]],
) -> None:
    draft, assigned = plans
    out = plan_assignment(draft, assigned)
    placed = [pk for pks in out.routes.values() for pk in pks]
    assert len(placed) == len(set(placed)), "a request on two routes"
    for plan in assigned:
        for route in plan.routes:
            for s in route.stops:
                if s.status.worked:
                    # a worked stop stays with the crew that worked it
                    assert s.request_pk in out.routes[route.crew]
    before = {s.request_pk for p in assigned for r in p.routes for s in r.stops}
    drafted = {s.request_pk for r in draft.routes for s in r.stops}
    # every request is placed, released, or waits as "crew busy"
    for pk in before | drafted:
        assert pk in placed or pk in out.released or pk in out.crew_busy


@settings(max_examples=200, deadline=None)
@given(day_plans())
def test_the_preview_needs_the_labels_of_the_requests_it_names_only(
    plans: tuple[PlanFact, list[PlanFact]],
) -> None:
    """The page looks up the labels of ``named()`` alone (a handful, not a city plan's
    two thousand): the preview reads the same as with every label."""
    draft, assigned = plans
    out = plan_assignment(draft, assigned)
    every = {pk: f"LA-{pk}" for pk in range(1, 13)}
    assert out.lines({pk: every[pk] for pk in out.named()}) == out.lines(every)
    assert len(out.named()) <= 15
