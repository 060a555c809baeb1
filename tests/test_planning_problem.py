"""Stops, urgency, day clock, sub-problem split and the PyVRP wrapper."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time
from time import perf_counter
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from test_planning_helpers import DAY, DEPOTS, TZ, crew, roster, stops

from dispatch.errors import PlanningError
from dispatch.model import Category, ServiceRequest
from dispatch.planning import Stop, auto_iterations, stop_from_request, urgency_of
from dispatch.planning.problem import PRIZE_OVERDUE, DayClock, serves, split_day
from dispatch.planning.solver import Deadline, solve_data, stopping, vrp_data


@pytest.mark.parametrize(
    ("age_h", "sla_h", "svc", "expected"),
    [
        (12, 24, None, 0.5),
        (48, 24, None, 2.0),
        (0, 72, None, 0.0),
        (99, 24, date(2020, 1, 3), 1.0),  # booked for the day: due
        (99, 24, date(2020, 1, 1), 3.0),  # two days late
    ],
)
def test_urgency(age_h: float, sla_h: float, svc: date | None, expected: float) -> None:
    now = datetime(2020, 1, 3, 15, tzinfo=UTC)
    req = datetime.fromtimestamp(now.timestamp() - age_h * 3600, tz=UTC)
    assert urgency_of(req, now, sla_h, svc, DAY) == pytest.approx(expected)


def test_overdue_prize_dominates() -> None:
    fresh = Stop("a", "x", "1", 0.0, 0.0, 60, urgency=0.9)
    late = Stop("b", "x", "1", 0.0, 0.0, 60, urgency=1.1)
    assert late.prize - fresh.prize >= PRIZE_OVERDUE
    assert Stop("c", "x", "1", 0.0, 0.0, 60, urgency=1000).prize < 10**7


def test_stop_from_request() -> None:
    cat = Category("graffiti_removal", "Graffiti", ("Graffiti Removal",), True, 1200, 24.0)
    req = ServiceRequest(
        "myla311", "1-1", "Graffiti Removal", "graffiti_removal",
        datetime(2020, 1, 2, 15, tzinfo=UTC), lon=-118.3, lat=34.1, district="13",
    )  # fmt: skip
    s = stop_from_request(req, cat, datetime(2020, 1, 3, 15, tzinfo=UTC))
    assert (s.request_id, s.category, s.district, s.service_s, s.urgency) == (
        "1-1",
        "graffiti_removal",
        "13",
        1200,
        1.0,
    )
    assert (
        stop_from_request(replace(req, lat=None), cat, datetime(2020, 1, 3, tzinfo=UTC)).lon is None
    )


def test_stop_validation() -> None:
    with pytest.raises(PlanningError):
        Stop("a", "x", "1", 0.0, 0.0, -1)
    with pytest.raises(PlanningError):
        Stop("a", "x", "1", 0.0, 0.0, 1, tw_start=datetime(2020, 1, 3, 8))  # naive


def test_day_clock_dst() -> None:
    tz = ZoneInfo("America/Los_Angeles")
    spring = DayClock(date(2020, 3, 8), tz)  # 02:00 -> 03:00
    assert spring.local_seconds(time(7, 0)) == 6 * 3600  # one hour shorter night
    assert spring.at(6 * 3600).time() == time(7, 0)
    normal = DayClock(date(2020, 1, 3), tz)
    assert normal.local_seconds(time(7, 0)) == 7 * 3600
    assert normal.at(7 * 3600).isoformat() == "2020-01-03T07:00:00-08:00"
    assert normal.seconds(datetime(2020, 1, 3, 15, tzinfo=UTC)) == 7 * 3600


def test_split_groups_overlapping_territories() -> None:
    subs, unplanned = split_day(stops(40), roster(), DayClock(DAY, TZ), depots=DEPOTS)
    assert unplanned == {}
    names = [c.name for p in subs for c in p.crews]
    assert sorted(names) == sorted(c.name for c in roster())  # each crew exactly once
    # bulky A (1, 2) and B (2, 3) overlap in 2: one group over 1-3
    assert [(p.skills, p.districts) for p in subs] == [
        (("bulky_items", "illegal_dumping"), ("1", "2", "3")),
        (("graffiti_removal",), ("1", "2", "3")),
    ]
    for p in subs:
        for s in p.stops:
            assert s.district in p.districts
            assert all(s.category in c.categories for c in p.crews)
            assert any(serves(c, s.district) for c in p.crews)


def test_split_keeps_separate_territories_apart() -> None:
    crews = [crew("A-1", ("bulky_items",), "A", ("1",)), crew("B-1", ("bulky_items",), "B", ("3",)),
             crew("B-2", ("bulky_items",), "B", ("2", "3"))]
    s = [replace(x, category="bulky_items") for x in stops(60)]
    subs, unplanned = split_day(s, crews, DayClock(DAY, TZ))
    assert unplanned == {}
    assert [p.districts for p in subs] == [("1",), ("2", "3")]
    assert [sorted(c.name for c in p.crews) for p in subs] == [["A-1"], ["B-1", "B-2"]]


def test_split_absent_crews_excluded() -> None:
    subs, _ = split_day(stops(10), roster(), DayClock(DAY, TZ), absent=frozenset({"A-bulky-1"}))
    assert "A-bulky-1" not in {c.name for p in subs for c in p.crews}


def test_duplicate_crew_names_rejected() -> None:
    r = roster()
    with pytest.raises(PlanningError):
        split_day([], [*r, r[0]], DayClock(DAY, TZ))


def test_auto_iterations_clamped() -> None:
    from dispatch.planning.planner import ITERATIONS_PER_STOP, MAX_ITERATIONS, MIN_ITERATIONS

    assert auto_iterations(1) == MIN_ITERATIONS
    assert auto_iterations(100) == max(MIN_ITERATIONS, 100 * ITERATIONS_PER_STOP)
    assert auto_iterations(10_000) == MAX_ITERATIONS
    assert auto_iterations(100, 10.0) == 10 * auto_iterations(100)


def test_stopping_needs_a_limit() -> None:
    with pytest.raises(PlanningError):
        stopping(None, None)


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("setup_s", "stops_after_s"),
    [
        (0.0, 0.5),  # no set-up: the whole budget is search
        (0.1, 0.4),  # the neighbourhood took 0.1 s of the 0.5 s
        (0.4, 0.25),  # set-up ate most of it: the search still gets half
        (2.0, 0.25),
    ],
)
def test_a_deadline_counts_the_set_up_and_leaves_the_search_half(
    setup_s: float, stops_after_s: float
) -> None:
    clock = _Clock()
    deadline = Deadline(clock.now, 0.5, clock=clock)
    clock.now += setup_s
    assert not deadline(0)  # the search's first iteration
    clock.now += stops_after_s - 0.01
    assert not deadline(0)
    clock.now += 0.02
    assert deadline(0)


@pytest.mark.parametrize(("limit_s", "share"), [(0.0, 0.5), (-1.0, 0.5), (1.0, 1.5)])
def test_a_deadline_refuses_a_budget_it_cannot_keep(limit_s: float, share: float) -> None:
    with pytest.raises(PlanningError, match="Deadline needs"):
        Deadline(0.0, limit_s, share)


def test_a_solve_timed_from_an_earlier_start_still_searches() -> None:
    xy = np.array([[0, 0], [0, 10], [10, 0], [0, -10], [-10, 0]], dtype=float)
    d = np.rint(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    data = vrp_data(xy, [0, 1, 1, 1, 1], 2, d)
    res = solve_data(data, seed=1, time_limit_s=0.05, started=perf_counter() - 10)
    assert res.is_feasible() and res.num_iterations > 0
    with pytest.raises(PlanningError, match="one process"):
        solve_data(data, seed=1, time_limit_s=0.05, started=0.0, workers=2)


def test_vrp_data_tiny_cvrp() -> None:
    xy = np.array([[0, 0], [0, 10], [10, 0], [0, -10], [-10, 0]], dtype=float)
    d = np.rint(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    data = vrp_data(xy, [0, 1, 1, 1, 1], 2, d)
    res = solve_data(data, seed=1, iterations=200)
    assert res.is_feasible()
    assert res.cost() == 4 * 10 + 2 * 14  # two out-and-round trips of 10+14+10
    with pytest.raises(PlanningError):
        vrp_data(xy, [0, 1, 1, 1], 2, d)


def test_vrp_data_depot_not_first() -> None:
    xy = np.array([[0, 10], [0, 0], [10, 0]], dtype=float)
    d = np.rint(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    data = vrp_data(xy, [1, 0, 1], 5, d, depot=1)
    res = solve_data(data, seed=1, iterations=100)
    assert res.cost() == 10 + 14 + 10


def test_whole_city_crews_solve_the_city_jointly() -> None:
    crews = [crew(f"C-{i}", ("bulky_items",), "A", ()) for i in range(2)]
    s = [replace(x, category="bulky_items") for x in stops(30)]
    s[0] = replace(s[0], district=None)
    subs, unplanned = split_day(s, crews, DayClock(DAY, TZ), depots=DEPOTS)
    assert unplanned == {}
    assert [p.districts for p in subs] == [("1", "2", "3")]
    assert len(subs[0].stops) == 30 and len(subs[0].crews) == 2


def test_build_problem_gives_each_territory_a_profile() -> None:
    from dispatch.planning.solver import LOCK_PENALTY, build_problem
    from dispatch.planning.travel import HaversineTravel

    crews = [crew("A-1", ("bulky_items",), "A", ("1", "2")),
             crew("A-2", ("bulky_items",), "A", ("1", "2")),
             crew("B-1", ("bulky_items",), "B", ("2", "3"))]
    s = [replace(x, category="bulky_items") for x in stops(9)]
    subs, _ = split_day(s, crews, DayClock(DAY, TZ))
    built = build_problem(subs[0], DEPOTS, DayClock(DAY, TZ), HaversineTravel())
    assert built.data.num_profiles == 2
    assert [len(m) for m in built.vehicle_crews] == [2, 1]  # A's two crews share a type
    nd = built.n_depots
    for vt, members in enumerate(built.vehicle_crews):
        prof = built.data.vehicle_type(vt).profile
        cost = built.data.distance_matrix(prof)
        for j, st in enumerate(built.sub.stops):
            banned = cost[0, nd + j] >= LOCK_PENALTY
            assert banned == (st.district not in members[0].districts)
    res = solve_data(built.data, seed=1, iterations=200)
    for r in res.best.routes():
        terr = built.vehicle_crews[r.vehicle_type()][0].districts
        assert all(built.sub.stops[a.idx].district in terr
                   for a in r.schedule() if a.is_client())


def test_one_territory_needs_one_profile() -> None:
    from dispatch.planning.solver import build_problem
    from dispatch.planning.travel import HaversineTravel

    crews = [crew(f"A-{i}", ("bulky_items",), "A", ("1", "2")) for i in range(2)]
    s = [replace(x, category="bulky_items") for x in stops(8, districts=("1", "2"))]
    subs, _ = split_day(s, crews, DayClock(DAY, TZ))
    built = build_problem(subs[0], DEPOTS, DayClock(DAY, TZ), HaversineTravel())
    assert built.data.num_profiles == 1


def test_large_groups_are_split_between_teams() -> None:
    crews = [crew("A-1", ("bulky_items",), "A", ("1", "2")),
             crew("A-2", ("bulky_items",), "A", ("1", "2")),
             crew("B-1", ("bulky_items",), "B", ("2", "3"))]
    s = [replace(x, category="bulky_items") for x in stops(60)]
    whole, _ = split_day(s, crews, DayClock(DAY, TZ), depots=DEPOTS)
    assert len(whole) == 1
    parts, unplanned = split_day(s, crews, DayClock(DAY, TZ), depots=DEPOTS,
                                 max_group_stops=45)
    assert unplanned == {} and len(parts) == 2
    assert sorted(c.name for p in parts for c in p.crews) == ["A-1", "A-2", "B-1"]
    assert sorted(x.request_id for p in parts for x in p.stops) == sorted(
        x.request_id for x in s)
    for p in parts:
        for x in p.stops:
            assert any(serves(c, x.district) for c in p.crews)
    shared = [x for p in parts for x in p.stops if x.district == "2"]
    assert shared  # district 2 stops went to one of its two teams, by distance and time
    again, _ = split_day(s, crews, DayClock(DAY, TZ), depots=DEPOTS, max_group_stops=45)
    assert [(p.key, [x.request_id for x in p.stops]) for p in again] == [
        (p.key, [x.request_id for x in p.stops]) for p in parts]
