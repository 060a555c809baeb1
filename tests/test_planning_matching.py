"""The crew assignment's minimum-cost matching, against scipy's and every permutation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from dispatch.errors import PlanningError
from dispatch.planning.matching import min_cost_assignment


def _total(cost: list[list[int]], columns: list[int]) -> int:
    return sum(cost[i][j] for i, j in enumerate(columns))


@st.composite
def _matrices(draw: st.DrawFn, most: int) -> list[list[int]]:
    m = draw(st.integers(1, most))
    n = draw(st.integers(0, m))
    return [draw(st.lists(st.integers(-50, 50), min_size=m, max_size=m)) for _ in range(n)]


@given(_matrices(6))
def test_the_matching_is_as_cheap_as_the_best_permutation(cost: list[list[int]]) -> None:
    got = min_cost_assignment(cost)
    m = len(cost[0]) if cost else 0
    assert len(set(got)) == len(got) == len(cost) and all(0 <= j < m for j in got)
    best = min(_total(cost, list(p)) for p in itertools.permutations(range(m), len(cost)))
    assert _total(cost, got) == best


@given(_matrices(25))
def test_the_matching_is_as_cheap_as_scipys(cost: list[list[int]]) -> None:
    """scipy is the oracle here only: the product does not import it."""
    got = min_cost_assignment(cost)
    if not cost:
        assert got == []
        return
    rows, cols = linear_sum_assignment(cost)
    assert _total(cost, got) == sum(cost[i][j] for i, j in zip(rows, cols, strict=True))


@pytest.mark.parametrize("cost", [[[1, 2], [3]], [[1], [2]], [[1, 2], [3, 4], [5, 6]]])
def test_a_matrix_without_a_column_for_every_row_is_refused(cost: list[list[int]]) -> None:
    with pytest.raises(PlanningError, match="min_cost_assignment needs"):
        min_cost_assignment(cost)
