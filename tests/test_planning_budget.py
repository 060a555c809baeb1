"""How a re-plan shares its solver time, and which crew gets which solver route."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_planning_helpers import DAY, DEPOTS, ITS, TZ, crew, stops

from dispatch.errors import PlanningError
from dispatch.planning import HaversineTravel, plan_day, replan
from dispatch.planning.planner import share_budget
from dispatch.planning.problem import DayClock, SubProblem
from dispatch.planning.solver import (
    SolveTask,
    TaskResult,
    assign_crews,
    build_problem,
    run_task,
    task_limit_s,
)


@pytest.mark.parametrize(("sizes", "workers", "expected"), [
    ([500], 2, [0.5]),                                # one group: all of it
    ([500, 10], 2, [0.5, 0.5]),                       # no more groups than processes
    ([300, 100, 100], 2, [0.5, 0.25, 0.25]),          # the largest capped, the rest shared
    ([100, 100, 100, 100], 2, [0.25, 0.25, 0.25, 0.25]),
    ([100, 0, 100, 100], 1, [1 / 6, 0.0, 1 / 6, 1 / 6]),  # in-process: one budget in all
    ([0, 0], 2, [0.0, 0.0]),
])
def test_share_budget(sizes: list[int], workers: int, expected: list[float]) -> None:
    assert share_budget(sizes, workers, 0.5) == pytest.approx(expected)


@pytest.mark.parametrize(("workers", "limit"), [(0, 0.5), (2, 0.0), (2, -1.0)])
def test_share_budget_refuses_nonsense(workers: int, limit: float) -> None:
    with pytest.raises(PlanningError, match="share_budget needs"):
        share_budget([10, 10], workers, limit)


@given(st.lists(st.integers(0, 2000), min_size=1, max_size=12), st.integers(1, 8),
       st.floats(0.01, 5.0))
def test_shared_budget_fits_the_wall_clock(sizes: list[int], workers: int,
                                           limit: float) -> None:
    """No group gets more than the limit, together they use no more than the processes
    have, and a larger group never gets less than a smaller one."""
    share = share_budget(sizes, workers, limit)
    assert all(0 <= s <= limit + 1e-9 for s in share)
    assert sum(share) <= workers * limit + 1e-9
    assert all(share[i] == 0 for i, n in enumerate(sizes) if n == 0)
    for i, j in itertools.permutations(range(len(sizes)), 2):
        if sizes[i] > sizes[j]:
            assert share[i] >= share[j] - 1e-9
    busy = sum(1 for n in sizes if n)
    if busy:  # and it is all used
        assert sum(share) == pytest.approx(min(busy, workers) * limit)


def _three_alike() -> object:
    """A problem whose three crews are one vehicle type (same yard, shift, capacity)."""
    crews = [crew(f"A-bulky-{i}", ("bulky_items",), "A", ("1",)) for i in (1, 2, 3)]
    s = [replace(x, category="bulky_items") for x in stops(6, seed=3, districts=("1",))]
    built = build_problem(SubProblem(("bulky_items",), ("1",), crews, s), DEPOTS,
                          DayClock(DAY, TZ), HaversineTravel())
    assert [len(m) for m in built.vehicle_crews] == [3]
    return built


def test_solver_routes_go_to_the_crews_that_had_their_stops() -> None:
    """The solver's k-th route used to go to the k-th crew, whoever had its stops."""
    built = _three_alike()
    routes = [(0, [4, 5]), (0, [0, 1]), (0, [2, 3])]
    had = {"A-bulky-1": [0, 1], "A-bulky-2": [2, 3], "A-bulky-3": [4, 5]}
    assert assign_crews(built, routes, had) == had  # type: ignore[arg-type]
    # without what they had: in order, as before
    assert assign_crews(built, routes) == {  # type: ignore[arg-type]
        "A-bulky-1": [4, 5], "A-bulky-2": [0, 1], "A-bulky-3": [2, 3]}


@given(st.lists(st.integers(0, 3), min_size=6, max_size=6),
       st.lists(st.integers(0, 3), min_size=6, max_size=6))
def test_the_assignment_keeps_the_most_stops_with_their_crews(
        before: list[int], after: list[int]) -> None:
    """Checked against every way of handing the routes to the crews."""
    built = _three_alike()
    names = ["A-bulky-1", "A-bulky-2", "A-bulky-3"]
    had = {names[c]: [j for j, x in enumerate(before) if x == c] for c in range(3)}
    routes = [(0, [j for j, x in enumerate(after) if x == r]) for r in range(3)]
    routes = [r for r in routes if r[1]]
    got = assign_crews(built, routes, had)  # type: ignore[arg-type]
    assert sorted(map(sorted, (v for v in got.values() if v))) == sorted(
        map(sorted, (v for _, v in routes)))

    def kept(by_crew: dict[str, list[int]]) -> int:
        return sum(len(set(by_crew[n]) & set(had[n])) for n in names)

    best = max(kept(dict(zip(p, [*[v for _, v in routes], [], [], []], strict=False)))
               for p in itertools.permutations(names))
    assert kept(got) == best


def test_re_optimising_keeps_each_crew_on_its_own_route() -> None:
    """Whole routes no longer change hands between crews of the same kind."""
    crews = [crew(f"A-bulky-{i}", ("bulky_items",), "A", ("1",), capacity=12)
             for i in (1, 2, 3, 4)]
    s = [replace(x, category="bulky_items", service_s=600)
         for x in stops(40, seed=8, districts=("1",))]
    plan = plan_day(s, crews, DEPOTS, day=DAY, tz=TZ, iterations=ITS, max_workers=1,
                    slack=None)
    # the stored routes in another crew order than the solver returns them
    names = [c.name for c in crews]
    turned = {a: b for a, b in zip(names, names[1:] + names[:1], strict=True)}
    rotated = replace(plan, routes=[replace(r, crew=turned[r.crew]) for r in plan.routes])
    new = replan(rotated, whole=True, iterations=ITS, time_limit_s=None, max_workers=1)
    for r in rotated.routes:
        if r.stops:
            mine = {p.request_id for p in r.stops}
            kept = mine & {p.request_id for p in new.route(r.crew).stops}
            assert len(kept) >= len(mine) / 2, r.crew


@pytest.mark.parametrize(("limit", "end_by", "now", "expected"), [
    (0.4, None, 5.0, 0.4),     # no bound on the call: the task's own limit
    (None, 10.0, 5.0, None),   # no time limit (an iteration budget): none
    (0.4, 10.0, 5.0, 0.4),     # started early: all of it
    (0.4, 10.0, 9.7, 0.3),     # queued: what is left of the call's budget
    (0.4, 10.0, 9.9, 0.2),     # later still: half its own limit at least
    (0.4, 10.0, 12.0, 0.2),    # even after the call's budget ended
])
def test_a_task_gets_what_is_left_of_the_re_plans_budget(
    limit: float | None, end_by: float | None, now: float, expected: float | None
) -> None:
    got = task_limit_s(limit, end_by, now)
    assert got == (None if expected is None else pytest.approx(expected))


def test_a_re_plans_budget_counts_from_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task of a re-plan ends by the call's start plus its time limit: building
    the problems and waiting for a worker come out of the same budget."""
    import time

    from dispatch.planning import planner

    crews = [crew(f"A-bulky-{i}", ("bulky_items",), "A", ("1",), capacity=12)
             for i in (1, 2)]
    s = [replace(x, category="bulky_items", service_s=600)
         for x in stops(20, seed=3, districts=("1",))]
    plan = plan_day(s, crews, DEPOTS, day=DAY, tz=TZ, iterations=ITS, max_workers=1,
                    slack=None)
    seen: list[SolveTask] = []

    def record(task: SolveTask) -> TaskResult:
        seen.append(task)
        return run_task(task)

    monkeypatch.setattr(planner, "run_task", record)
    before = time.time()
    replan(plan, whole=True, time_limit_s=0.3, max_workers=1)
    after = time.time()
    assert seen and all(t.end_by is not None for t in seen)
    assert all(before + 0.3 <= t.end_by <= after + 0.3 for t in seen if t.end_by)


def test_planning_services_do_not_import_scipy() -> None:
    """scipy is not needed to plan: imported with the solver for the crew assignment,
    it made the planner's candidate read at 1M requests about 0.04 s slower in every
    process (a larger heap to collect); imported when first needed, it made the first
    edit of a plan in each dashboard process 0.3 s slower. The assignment is now
    :mod:`dispatch.planning.matching`, and re-planning imports no scipy either."""
    import subprocess
    import sys

    code = ("import sys, dispatch.services.planning, dispatch.services.workflow\n"
            "from dispatch.planning.solver import assign_crews\n"
            "from test_planning_budget import _three_alike\n"
            "assign_crews(_three_alike(), [(0, [0, 1])], {'A-bulky-2': [0]})\n"
            "print(any(m == 'scipy' or m.startswith('scipy.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent)
    assert out.stdout.strip() == "False"
