"""Re-planning: locks, moves, urgent additions, crews leaving mid-day."""

from __future__ import annotations

import time as _time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_planning_helpers import DAY, DEPOTS, ITS, TZ, at, crew, stops

from dispatch.errors import PlanningError
from dispatch.planning import HaversineTravel, Lock, Plan, Stop, plan_day, replan, validate_plan

TRAVEL = HaversineTravel()


def _crews(capacity: int = 60) -> list:  # type: ignore[type-arg]
    return [
        crew("A-bulky-1", ("bulky_items",), "A", ("1",), capacity=capacity),
        crew("A-bulky-2", ("bulky_items",), "A", ("1",), capacity=capacity),
    ]


def _stops(n: int = 60) -> list[Stop]:
    return [
        replace(s, category="bulky_items", service_s=600)
        for s in stops(n, seed=11, districts=("1",))
    ]


@pytest.fixture(scope="module")
def day() -> tuple[list[Stop], Plan]:
    s = _stops()
    # No reserve: the move test below needs the other route's locked stops to leave room.
    plan = plan_day(s, _crews(), DEPOTS, day=DAY, tz=TZ, iterations=ITS, max_workers=1,
                    slack=None)
    assert validate_plan(plan, _crews(), DEPOTS, TRAVEL, s) == []
    return s, plan


def _order(plan: Plan, crew: str) -> list[str]:
    return [p.request_id for p in plan.route(crew).stops]


def test_move_stop_keeps_locked_stops(day: tuple[list[Stop], Plan]) -> None:
    s, plan = day
    a, b = _order(plan, "A-bulky-1"), _order(plan, "A-bulky-2")
    assert len(a) >= 5 and len(b) >= 5
    moved = a[2]
    locks = [Lock(rid, "A-bulky-2", i) for i, rid in enumerate(b)]
    new = replan(plan, moves={moved: "A-bulky-2"}, locks=locks, iterations=100)
    assert moved in _order(new, "A-bulky-2")
    assert moved not in _order(new, "A-bulky-1")
    nb = _order(new, "A-bulky-2")
    for i, rid in enumerate(b):
        assert nb[i] == rid  # locked positions unchanged
    assert validate_plan(new, _crews(), DEPOTS, TRAVEL, s) == []


def test_impossible_move_is_reported() -> None:
    s = _stops(40)
    crews = _crews(capacity=20)
    plan = plan_day(s, crews, DEPOTS, day=DAY, tz=TZ, iterations=ITS, max_workers=1)
    b = _order(plan, "A-bulky-2")
    assert len(b) == 20
    moved = _order(plan, "A-bulky-1")[0]
    locks = [Lock(rid, "A-bulky-2", i) for i, rid in enumerate(b)]
    new = replan(plan, moves={moved: "A-bulky-2"}, locks=locks, iterations=50)
    assert _order(new, "A-bulky-2") == b
    reason = next(u.reason for u in new.unplanned if u.request_id == moved)
    assert str(reason).startswith("over capacity: crew A-bulky-2 cannot take locked stop")
    assert validate_plan(new, crews, DEPOTS, TRAVEL, s) == []


def test_locks_without_position_keep_crew(day: tuple[list[Stop], Plan]) -> None:
    s, plan = day
    a = _order(plan, "A-bulky-1")
    locks = [Lock(rid, "A-bulky-1") for rid in a]
    new = replan(
        plan, moves={_order(plan, "A-bulky-2")[0]: "A-bulky-1"}, locks=locks, iterations=100
    )
    assert set(a) <= set(_order(new, "A-bulky-1"))
    assert validate_plan(new, _crews(), DEPOTS, TRAVEL, s) == []


def test_add_urgent_request(day: tuple[list[Stop], Plan]) -> None:
    s, plan = day
    urgent = Stop("URGENT-1", "bulky_items", "1", -118.27, 34.07, 300, urgency=9.0)
    new = replan(plan, add=[urgent], iterations=100)
    served = {p.request_id for r in new.routes for p in r.stops}
    assert "URGENT-1" in served
    assert validate_plan(new, _crews(), DEPOTS, TRAVEL, [*s, urgent]) == []


def test_add_request_nobody_can_take(day: tuple[list[Stop], Plan]) -> None:
    _, plan = day
    odd = Stop("ODD-1", "graffiti_removal", "1", -118.27, 34.07, 300)
    new = replan(plan, add=[odd], iterations=50)
    assert [str(u.reason) for u in new.unplanned if u.request_id == "ODD-1"] == [
        "no crew with the skill: graffiti_removal in district 1"
    ]
    assert new.to_json().count('"crew"') == plan.to_json().count('"crew"')


def test_remove_crew_mid_day(day: tuple[list[Stop], Plan]) -> None:
    s, plan = day
    gone = plan.route("A-bulky-1")
    now = gone.stops[3].arrival
    done = [p.request_id for p in gone.stops if p.arrival <= now]
    new = replan(plan, remove_crews={"A-bulky-1"}, now=now, iterations=100)
    # What A-bulky-1 already did stays; the rest goes to A-bulky-2 or is unplanned.
    assert _order(new, "A-bulky-1") == done
    b_before = [p for p in plan.route("A-bulky-2").stops if p.arrival <= now]
    b_after = new.route("A-bulky-2").stops
    for i, p in enumerate(b_before):
        assert b_after[i].request_id == p.request_id and b_after[i].arrival == p.arrival
    every = {p.request_id for r in new.routes for p in r.stops} | {
        u.request_id for u in new.unplanned
    }
    assert every == {x.request_id for x in s}
    assert validate_plan(new, _crews(), DEPOTS, TRAVEL, s) == []


def test_untouched_groups_unchanged() -> None:
    s = [replace(x, category="bulky_items") for x in stops(30, seed=12, districts=("1", "3"))]
    crews = [
        crew("A-bulky-1", ("bulky_items",), "A", ("1",)),
        crew("B-bulky-1", ("bulky_items",), "B", ("3",)),
    ]
    plan = plan_day(s, crews, DEPOTS, day=DAY, tz=TZ, iterations=ITS, max_workers=1)
    rid = plan.route("A-bulky-1").stops[0].request_id
    new = replan(plan, moves={rid: "A-bulky-1"}, locks=[Lock(rid, "A-bulky-1", 4)], iterations=50)
    assert new.route("B-bulky-1").to_dict() == plan.route("B-bulky-1").to_dict()
    assert _order(new, "A-bulky-1")[4] == rid


def test_replan_from_json_round_trip(day: tuple[list[Stop], Plan]) -> None:
    _, plan = day
    back = Plan.from_json(plan.to_json())
    a = replan(
        plan, add=[Stop("U2", "bulky_items", "1", -118.25, 34.05, 300, urgency=5)], iterations=60
    )
    b = replan(
        back, add=[Stop("U2", "bulky_items", "1", -118.25, 34.05, 300, urgency=5)], iterations=60
    )
    assert a.to_json() == b.to_json()


def test_unknown_crew_rejected(day: tuple[list[Stop], Plan]) -> None:
    _, plan = day
    with pytest.raises(PlanningError):
        replan(plan, remove_crews={"nobody"})
    with pytest.raises(PlanningError):
        replan(plan, moves={"no-such-stop": "A-bulky-1"})


def test_move_to_unskilled_crew_rejected() -> None:
    s = stops(12, seed=2, districts=("1",))
    crews = [
        crew("A-bulky-1", ("bulky_items", "illegal_dumping"), "A", ("1",)),
        crew("A-graffiti-1", ("graffiti_removal",), "A", ("1",)),
    ]
    plan = plan_day(s, crews, DEPOTS, day=DAY, tz=TZ, iterations=ITS, max_workers=1)
    rid = plan.route("A-graffiti-1").stops[0].request_id
    with pytest.raises(PlanningError, match="cannot move"):
        replan(plan, moves={rid: "A-bulky-1"})


def test_added_stop_without_location(day: tuple[list[Stop], Plan]) -> None:
    _, plan = day
    new = replan(plan, add=[Stop("NOLOC", "bulky_items", "1", None, None, 300)], iterations=20)
    assert [str(u.reason) for u in new.unplanned if u.request_id == "NOLOC"] == ["no location"]


def test_replan_40_stop_route_under_one_second() -> None:
    s = [
        replace(x, category="bulky_items", service_s=300)
        for x in stops(40, seed=13, districts=("1",))
    ]
    crews = [crew("A-bulky-1", ("bulky_items",), "A", ("1",), capacity=60)]
    plan = plan_day(s, crews, DEPOTS, day=DAY, tz=TZ, iterations=ITS, max_workers=1)
    r = plan.route("A-bulky-1")
    assert len(r.stops) == 40
    locks = [Lock(p.request_id, "A-bulky-1", i) for i, p in enumerate(r.stops[:20])]
    urgent = Stop("U9", "bulky_items", "1", -118.26, 34.06, 300, urgency=9)
    t0 = _time.perf_counter()
    new = replan(plan, add=[urgent], locks=locks)  # default budget
    took = _time.perf_counter() - t0
    assert took < 1.0
    order = _order(new, "A-bulky-1")
    assert order[:20] == [p.request_id for p in r.stops[:20]]
    assert "U9" in order
    assert validate_plan(new, crews, DEPOTS, TRAVEL, [*s, urgent]) == []
    _ = at


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pick=st.integers(0, 10_000),
    keep=st.integers(0, 8),
    to_b=st.booleans(),
)
def test_any_move_keeps_plan_valid(
    day: tuple[list[Stop], Plan], pick: int, keep: int, to_b: bool
) -> None:
    s, plan = day
    planned = [p.request_id for r in plan.routes for p in r.stops]
    rid = planned[pick % len(planned)]
    target = "A-bulky-2" if to_b else "A-bulky-1"
    locks = [Lock(p.request_id, target, i) for i, p in enumerate(plan.route(target).stops[:keep])]
    locks = [lk for lk in locks if lk.request_id != rid]
    new = replan(plan, moves={rid: target}, locks=locks, iterations=30)
    assert validate_plan(new, _crews(), DEPOTS, TRAVEL, s) == []
    order = _order(new, target)
    assert rid in order or any(u.request_id == rid for u in new.unplanned)
    for lk in locks:
        assert lk.position is not None and order[lk.position] == lk.request_id


def test_replan_keeps_the_plans_reserve_and_travel_model() -> None:
    from dispatch.planning.problem import Slack
    from geo.travel import BandedTravel

    banded = BandedTravel((1000.0,), (1.4, 1.3), (200.0, 90.0), approach_s=60.0)
    s = _stops(40)
    slack = Slack(0.1, 30)
    plan = plan_day(s, _crews(), DEPOTS, day=DAY, tz=TZ, iterations=ITS, max_workers=1,
                    slack=slack, travel=banded)
    back = Plan.from_json(plan.to_json())
    urgent = Stop("URG", "bulky_items", "1", -118.26, 34.06, 600, urgency=9.0)
    new = replan(back, add=[urgent], iterations=100)  # no travel given: the plan's own
    assert "URG" in {p.request_id for r in new.routes for p in r.stops}
    assert new.settings["travel_spec"] == banded.spec()
    assert validate_plan(new, _crews(), DEPOTS, banded, [*s, urgent]) == []
    assert validate_plan(new, _crews(), DEPOTS, banded, [*s, urgent], slack=slack) == []
    assert all(r.reserve_s == slack.reserve_s(8 * 3600 + 1800) for r in new.routes)


def _four_crews() -> list:  # type: ignore[type-arg]
    return [crew(f"A-bulky-{i}", ("bulky_items",), "A", ("1",), capacity=24)
            for i in range(1, 5)]


@pytest.fixture(scope="module")
def four() -> tuple[list[Stop], Plan]:
    s = _stops(80)
    plan = plan_day(s, _four_crews(), DEPOTS, day=DAY, tz=TZ, iterations=ITS, max_workers=1,
                    slack=None)
    assert sum(1 for r in plan.routes if r.stops) == 4
    return s, plan


@pytest.mark.parametrize("only", [None, set()])
def test_a_local_edit_re_plans_only_the_routes_it_names(
        four: tuple[list[Stop], Plan], only: set[str] | None) -> None:
    """A moved stop's two routes change; with ``only_crews`` the other two stay as they were.

    Without it (``None``) the whole group is re-solved; an empty set still names the
    moved stop's old and new crews.
    """
    s, plan = four
    moved = _order(plan, "A-bulky-1")[1]
    new = replan(plan, moves={moved: "A-bulky-2"}, iterations=200, only_crews=only)
    assert moved in _order(new, "A-bulky-2")
    assert validate_plan(new, _four_crews(), DEPOTS, TRAVEL, s) == []
    same = [c for c in ("A-bulky-3", "A-bulky-4") if new.route(c) == plan.route(c)]
    if only is not None:
        assert same == ["A-bulky-3", "A-bulky-4"]
        assert sorted(_order(new, "A-bulky-1") + _order(new, "A-bulky-2")) == sorted(
            _order(plan, "A-bulky-1") + _order(plan, "A-bulky-2"))


def test_an_urgent_stop_goes_to_one_of_the_routes_offered(
        four: tuple[list[Stop], Plan]) -> None:
    s, plan = four
    near = plan.route("A-bulky-4").stops[0].stop
    urgent = Stop("URGENT-9", "bulky_items", "1", near.lon + 0.0003, near.lat, 300,
                  urgency=10.0)
    new = replan(plan, add=[urgent], iterations=200, only_crews={"A-bulky-4", "A-bulky-3"})
    assert "URGENT-9" in _order(new, "A-bulky-4") + _order(new, "A-bulky-3")
    assert new.route("A-bulky-1") == plan.route("A-bulky-1")
    assert new.route("A-bulky-2") == plan.route("A-bulky-2")
    assert validate_plan(new, _four_crews(), DEPOTS, TRAVEL, [*s, urgent]) == []


def test_only_crews_must_be_in_the_plan(four: tuple[list[Stop], Plan]) -> None:
    _, plan = four
    with pytest.raises(PlanningError, match=r"crews \['NOPE'\] are not in the plan"):
        replan(plan, add=[], only_crews={"NOPE"})


def test_only_crews_leaves_a_poor_route_of_the_group_alone(
        four: tuple[list[Stop], Plan]) -> None:
    """The group re-solve would re-sequence a shuffled route; a local edit does not."""
    import random

    _, plan = four
    shuffled = list(plan.route("A-bulky-3").stops)
    random.Random(5).shuffle(shuffled)
    poor = replace(plan, routes=[replace(r, stops=shuffled) if r.crew == "A-bulky-3" else r
                                 for r in plan.routes])
    moved = _order(plan, "A-bulky-1")[1]
    whole = replan(poor, moves={moved: "A-bulky-2"}, iterations=200)
    local = replan(poor, moves={moved: "A-bulky-2"}, iterations=200, only_crews=set())
    assert whole.route("A-bulky-3").stops != shuffled
    assert local.route("A-bulky-3").stops == shuffled


def _two_groups() -> tuple[list[Stop], list, Plan]:  # type: ignore[type-arg]
    """Two groups (districts 1 and 3), two crews each, planned."""
    s = [replace(x, category="bulky_items", service_s=600)
         for x in stops(60, seed=21, districts=("1", "3"))]
    crews = [crew(f"{d}-bulky-{i}", ("bulky_items",), d, (n,), capacity=40)
             for d, n in (("A", "1"), ("B", "3")) for i in (1, 2)]
    crews = [replace(c, capacity=18) for c in crews]
    plan = plan_day(s, crews, DEPOTS, day=DAY, tz=TZ, iterations=ITS, max_workers=1,
                    slack=None)
    assert all(plan.route(c.name).stops for c in crews)
    return s, crews, plan


def _shuffled(plan: Plan, *names: str) -> Plan:
    """``plan`` with the named routes' stops in a poor (shuffled) order."""
    import random

    def poor(r: object) -> object:
        stops_ = list(r.stops)  # type: ignore[attr-defined]
        random.Random(7).shuffle(stops_)
        return replace(r, stops=stops_)  # type: ignore[type-var]

    return replace(plan, routes=[poor(r) if r.crew in names else r for r in plan.routes])


def test_whole_re_plans_every_group() -> None:
    """Re-optimising a plan nobody changed used to re-solve one group (the first stop's)."""
    _, _, plan = _two_groups()
    poor = _shuffled(plan, "A-bulky-1", "B-bulky-1")
    new = replan(poor, whole=True, iterations=200, time_limit_s=None, max_workers=1)
    for name in ("A-bulky-1", "B-bulky-1"):
        assert new.route(name).stops != poor.route(name).stops  # re-sequenced


def test_an_excluded_crew_gets_no_work_and_its_group_is_left_alone() -> None:
    """A crew taken out earlier stays out without its group being re-solved for that
    (``remove_crews`` re-solves it, as a removal must)."""
    _, _, plan = _two_groups()
    rid = plan.route("A-bulky-1").stops[0].request_id
    poor = _shuffled(plan, "B-bulky-1")
    kept = replan(poor, moves={rid: "A-bulky-1"}, exclude_crews=["B-bulky-2"], iterations=200,
                  time_limit_s=None)
    for name in ("B-bulky-1", "B-bulky-2"):
        assert kept.route(name).to_dict() == poor.route(name).to_dict()  # left alone
    resolved = replan(poor, moves={rid: "A-bulky-1"}, remove_crews=["B-bulky-2"],
                      iterations=200, time_limit_s=None)
    assert resolved.route("B-bulky-1").stops != poor.route("B-bulky-1").stops
    # when its group is re-solved anyway, the excluded crew gets nothing
    everything = replan(poor, whole=True, exclude_crews=["B-bulky-2"], iterations=200,
                        time_limit_s=None)
    assert all(not r.stops for r in everything.routes if r.crew == "B-bulky-2")
    assert everything.route("B-bulky-1").stops


def test_groups_solved_in_worker_processes_give_the_same_plan() -> None:
    _, _, plan = _two_groups()
    poor = _shuffled(plan, "A-bulky-1", "B-bulky-1")
    one = replan(poor, whole=True, iterations=200, time_limit_s=None, max_workers=1)
    two = replan(poor, whole=True, iterations=200, time_limit_s=None, max_workers=2)
    assert one.to_json() == two.to_json()
