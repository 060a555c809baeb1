"""Timing one route: ``schedule_route`` against a plain reading of its rule.

``schedule_route`` re-uses the timeline before the lunch break when it tries the break
at each stop boundary (a re-plan times about 130 routes). The reference here simulates
the whole route again for every boundary, as the docstring states the rule; both must
give the same timeline and violation for any route.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.model import Crew
from dispatch.planning.problem import DayClock, Stop
from dispatch.planning.solver import Timeline, schedule_route

TZ = ZoneInfo("America/Los_Angeles")
CLOCK = DayClock(date(2020, 1, 3), TZ)


def _reference_one(crew: Crew, seq: list[int], stops: list[Stop],
                   dur: npt.NDArray[np.int64], depot: int, n_depots: int,
                   brk_after: int | None, reserve_s: int) -> tuple[Timeline, int]:
    """Simulate the whole route with the break after ``brk_after`` stops (or none)."""
    s0 = CLOCK.local_seconds(crew.shift_start)
    s1 = CLOCK.local_seconds(crew.shift_end) - reserve_s
    l0, l1 = CLOCK.local_seconds(crew.lunch_start), CLOCK.local_seconds(crew.lunch_end)
    t, here, bad = s0, depot, 0
    arr: list[int] = []
    dep: list[int] = []
    brk = None
    for k, j in enumerate(seq):
        if brk_after == k:
            b0 = max(t, l0)
            bad += max(0, b0 - l1)
            brk, t = (b0, b0 + crew.lunch_s, k), b0 + crew.lunch_s
        t += int(dur[here, n_depots + j])
        s = stops[j]
        if s.tw_start is not None:
            t = max(t, CLOCK.seconds(s.tw_start))
        if s.tw_end is not None:
            bad += max(0, t - CLOCK.seconds(s.tw_end))
        arr.append(t)
        t += s.service_s
        dep.append(t)
        here = n_depots + j
    if brk_after == len(seq):
        b0 = max(t, l0)
        bad += max(0, b0 - l1)
        brk, t = (b0, b0 + crew.lunch_s, len(seq)), b0 + crew.lunch_s
    t += int(dur[here, depot])
    bad += max(0, t - s1)
    if crew.max_duration_s is not None:
        bad += max(0, t - s0 - (crew.max_duration_s - reserve_s))
    return Timeline(s0, arr, dep, t, brk), bad


def _reference(crew: Crew, seq: list[int], stops: list[Stop], dur: npt.NDArray[np.int64],
               depot: int, n_depots: int, reserve_s: int) -> tuple[Timeline, int]:
    """The rule of ``schedule_route``'s docstring, each boundary simulated from scratch."""
    plain, bad = _reference_one(crew, seq, stops, dur, depot, n_depots, None, reserve_s)
    if not seq or crew.lunch_s <= 0 or plain.end <= CLOCK.local_seconds(crew.lunch_start):
        return plain, bad
    best = None
    for k in range(len(seq) + 1):
        tl, bad_k = _reference_one(crew, seq, stops, dur, depot, n_depots, k, reserve_s)
        assert tl.brk is not None
        rank = (bad_k, tl.end, tl.brk[0])
        if best is None or rank < best[0]:
            best = (rank, tl)
        leave = plain.start if k == 0 else plain.departures[k - 1]
        if leave > CLOCK.local_seconds(crew.lunch_end):
            break
    assert best is not None
    return best[1], best[0][0]


@st.composite
def routes(draw: st.DrawFn) -> tuple[Crew, list[int], list[Stop], npt.NDArray[np.int64], int]:
    """A crew, a visiting order, its stops (some with windows) and a travel matrix."""
    n = draw(st.integers(0, 12))
    n_depots = 2
    start_h = draw(st.integers(5, 9))
    crew = Crew(name="c", categories=("graffiti",), depot="d", districts=(),
                shift_start=time(start_h), shift_end=time(start_h + draw(st.integers(3, 10))),
                capacity=50, lunch_s=draw(st.sampled_from([0, 1800, 2700])),
                max_duration_s=draw(st.one_of(st.none(), st.integers(3600, 36000))))
    base = datetime.combine(CLOCK.day, time(0), tzinfo=TZ)
    stops = []
    for i in range(n):
        window = draw(st.one_of(st.none(), st.tuples(st.integers(6 * 3600, 14 * 3600),
                                                     st.integers(600, 4 * 3600))))
        stops.append(Stop(
            request_id=str(i), category="graffiti", district=None, lon=0.0, lat=0.0,
            service_s=draw(st.integers(0, 3600)),
            tw_start=None if window is None else base + timedelta(seconds=window[0]),
            tw_end=None if window is None else base + timedelta(seconds=sum(window))))
    size = n_depots + n
    dur = np.array(draw(st.lists(st.integers(0, 3600), min_size=size * size,
                                 max_size=size * size)), dtype=np.int64).reshape(size, size)
    seq = draw(st.permutations(list(range(n))))
    return crew, list(seq), stops, dur, draw(st.integers(0, n_depots - 1))


@settings(max_examples=300, deadline=None)
@given(routes(), st.sampled_from([0, 900]))
def test_schedule_route_is_the_rule_of_its_docstring(
    route: tuple[Crew, list[int], list[Stop], npt.NDArray[np.int64], int], reserve_s: int
) -> None:
    crew, seq, stops, dur, depot = route
    got = schedule_route(crew, seq, stops, dur, CLOCK, depot, 2, reserve_s=reserve_s)
    assert got == _reference(crew, seq, stops, dur, depot, 2, reserve_s)
