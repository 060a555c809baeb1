"""A day planned after its shifts began: the crews start at the planning time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from test_planning_helpers import DAY, TZ, crew

from dispatch.errors import PlanningError
from dispatch.planning.problem import crews_from

EARLY = crew("early", ("bulky_items",), "A", ("1",))  # 06:00-14:30, lunch 10:30-12:30
LATE = crew("late", ("bulky_items",), "A", ("1",), shift_start=time(9, 0),
            shift_end=time(17, 0), lunch_start=time(12, 0), lunch_end=time(14, 0))


def _at(hh: int, mm: int, ss: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=TZ)


@pytest.mark.parametrize(("now", "start", "expected"), [
    # before any shift: as planned
    (_at(5, 30), None, {"early": time(6, 0), "late": time(9, 0)}),
    # after the early shift began: it starts now (rounded up to 5 minutes)
    (_at(7, 0), time(7, 0), {"early": time(7, 0), "late": time(9, 0)}),
    (_at(7, 1), time(7, 5), {"early": time(7, 5), "late": time(9, 0)}),
    (_at(7, 0, 1), time(7, 5), {"early": time(7, 5), "late": time(9, 0)}),
    # both shifts under way
    (_at(9, 58), time(10, 0), {"early": time(10, 0), "late": time(10, 0)}),
    # the early shift is over: it is left out
    (_at(14, 30), time(14, 30), {"late": time(14, 30)}),
    # another day (a replayed past day, or planning tomorrow): as planned
    (_at(7, 0, day=date(2020, 1, 2)), None, {"early": time(6, 0), "late": time(9, 0)}),
])
def test_crews_start_at_the_planning_time(now: datetime, start: time | None,
                                          expected: dict[str, time]) -> None:
    crews, late = crews_from([EARLY, LATE], DAY, now, TZ)
    assert {c.name: c.shift_start for c in crews} == expected
    assert late == (None if start is None else datetime.combine(DAY, start, tzinfo=TZ))


def test_the_planning_instant_may_be_in_any_zone() -> None:
    crews, late = crews_from([EARLY], DAY, datetime(2020, 1, 3, 15, 2, tzinfo=UTC), TZ)
    assert late == _at(7, 5) and crews[0].shift_start == time(7, 5)


@pytest.mark.parametrize(("now", "lunch"), [
    (_at(11, 0), (time(11, 0), time(12, 30), 1800)),   # inside the window: from now on
    (_at(13, 0), (time(10, 30), time(12, 30), 0)),     # the window is over: no lunch
])
def test_a_lunch_window_already_begun_or_over(now: datetime,
                                              lunch: tuple[time, time, int]) -> None:
    (early, _late), _ = crews_from([EARLY, LATE], DAY, now, TZ)
    assert (early.lunch_start, early.lunch_end, early.lunch_s) == lunch


@pytest.mark.parametrize(("now", "step"), [(datetime(2020, 1, 3, 7, 0), 5),
                                           (_at(7, 0), 0)])
def test_crews_from_refuses_a_naive_instant_or_no_step(now: datetime, step: int) -> None:
    with pytest.raises(PlanningError, match="crews_from needs"):
        crews_from([EARLY], DAY, now, TZ, step_min=step)


def test_past_midnight_nobody_is_left() -> None:
    crews, late = crews_from([EARLY], DAY, _at(23, 58), TZ)
    assert crews == [] and late is None
