"""Minimum-cost assignment of rows to columns (the Hungarian method), in pure Python.

Used to hand a re-plan's routes to the crews that had their stops
(:func:`dispatch.planning.solver.assign_crews`): a few dozen crews at most, where an
``O(n^2 m)`` loop takes milliseconds. scipy's ``linear_sum_assignment`` gives the same
optimum, but importing ``scipy.optimize`` took about 0.3 s, paid by the first edit of
the plan in every dashboard process.
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.errors import PlanningError


def min_cost_assignment(cost: Sequence[Sequence[int]]) -> list[int]:
    """Return the column of each row in an assignment of least total cost.

    Every row gets a column of its own; with more columns than rows some stay free.

    Parameters
    ----------
    cost
        ``n`` rows of ``m`` integer costs each, ``n <= m``.

    Returns
    -------
    list of int
        ``columns[i]`` is the column of row ``i``; the sum of ``cost[i][columns[i]]``
        is the least possible.

    Examples
    --------
    >>> min_cost_assignment([[4, 1, 3], [2, 0, 5], [3, 2, 2]])
    [1, 0, 2]
    """
    n = len(cost)
    m = len(cost[0]) if n else 0
    if any(len(row) != m for row in cost) or n > m:
        raise PlanningError(f"min_cost_assignment needs n rows of m >= n costs each; got "
                            f"rows of {sorted({len(row) for row in cost})} for {n} rows")
    # potentials u (rows) and v (columns); col_row[j]: the row on column j (1-based,
    # 0: none); column 0 is the virtual start of each augmenting path
    u = [0] * (n + 1)
    v = [0] * (m + 1)
    col_row = [0] * (m + 1)
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        col_row[0] = i
        j0 = 0
        slack: list[float] = [float("inf")] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = col_row[j0], float("inf"), 0
            row = cost[i0 - 1]
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = row[j - 1] - u[i0] - v[j]
                    if reduced < slack[j]:
                        slack[j], way[j] = reduced, j0
                    if slack[j] < delta:
                        delta, j1 = slack[j], j
            step = int(delta)
            for j in range(m + 1):
                if used[j]:
                    u[col_row[j]] += step
                    v[j] -= step
                else:
                    slack[j] -= step
            j0 = j1
            if col_row[j0] == 0:
                break
        while j0:  # flip the augmenting path
            j1 = way[j0]
            col_row[j0] = col_row[j1]
            j0 = j1
    columns = [0] * n
    for j in range(1, m + 1):
        if col_row[j]:
            columns[col_row[j] - 1] = j - 1
    return columns
