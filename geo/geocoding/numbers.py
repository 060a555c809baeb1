"""House-number placement: where number ``n`` lies on a run of known numbers.

In order of preference: the number itself (``exact``); between the nearest known
numbers (``between``, placed within their blocks and moved to the query's side of the
street); a short way past the last known one along the run's own gradient (``beyond``);
a walk along the street with the local house-number field (``grid``, ``grid-blind``,
``grid-long``); next to a lone point (``near-end``); else the street. Also: walks
through a divide line from the opposite pre-direction's run (``across``), along a
centerline's address range (``centerline``), from a known crossing of the street
(``crossing-walk``) and a known number inside a queried block (``in-block``).

All positions are projected metres of the index (:class:`~geo.geocoding.index.Projection`).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from geo.address import ParsedAddress
from geo.geocoding.index import (
    ReferenceIndex,
    Run,
    along_positions,
    fit_gradient,
    fit_line,
    parity_side,
    plane_fit,
    plane_gradient,
)
from geo.geocoding.result import Method, Precision
from geo.geocoding.streets import StreetResolver

__all__ = ["Located", "NumberPlacer", "join_sources"]


@dataclass
class Located:
    """A placement in projected metres, before it becomes a :class:`GeocodeResult`."""

    x: float
    y: float
    precision: Precision
    confidence: float
    number: int | None
    zip: str
    method: Method
    source: str = ""


def join_sources(*names: str) -> str:
    """Name the reference sources an estimate rests on: ``cams``, ``cams+requests``."""
    uniq = sorted({n for n in names if n})
    return "+".join(uniq)


class NumberPlacer:
    """Place house numbers on the runs of a :class:`ReferenceIndex`.

    Parameters
    ----------
    index : ReferenceIndex
        The reference's index.
    streets : StreetResolver
        Resolves the streets of centerline and crossing look-ups.
    """

    def __init__(self, index: ReferenceIndex, streets: StreetResolver) -> None:
        self.index = index
        self.streets = streets
        self.tuning = index.tuning
        self._end_cache: dict[tuple[int, int], tuple[float, float] | None] = {}
        self._grad_cache: dict[tuple[str, int, int], tuple[float, float] | None] = {}
        self._dir_cache: dict[tuple[int, int], tuple[float, float] | None] = {}

    # ----------------------------------------------------------------- on a run
    def locate(self, run: Run, n: int, zip_code: str) -> Located:
        """Place number ``n`` on ``run`` (``exact`` ... ``street``), see the module notes."""
        tuning = self.tuning
        nums = run.nl
        i = bisect.bisect_left(nums, n)
        j = bisect.bisect_right(nums, n)
        if j > i:  # exact number(s)
            k = i
            for m in range(i, j):
                if run.zips[m] == zip_code:
                    k = m
                    break
            return Located(
                run.xl[k], run.yl[k], Precision.POINT, 1.0, n, run.zips[k], Method.EXACT,
                run.sources[k],
            )  # fmt: skip
        # with a side-of-street model the nearest numbers are best (their side is
        # corrected); without one, numbers of the query's parity stand on its side
        same_parity = run.predir not in self.index.side_m
        lo = self._neighbour(nums, i - 1, -1, n, same_parity)
        hi = self._neighbour(nums, i, 1, n, same_parity)
        if lo is not None and hi is not None:
            n_lo, n_hi = nums[lo], nums[hi]
            u_lo, u_hi = self.along(n_lo), self.along(n_hi)
            t = (self.along(n) - u_lo) / (u_hi - u_lo) if u_hi != u_lo else 0.5
            x = run.xl[lo] + t * (run.xl[hi] - run.xl[lo])
            y = run.yl[lo] + t * (run.yl[hi] - run.yl[lo])
            gap = n_hi - n_lo
            if tuning.align_between and gap >= tuning.align_min_gap_numbers:
                cx, cy = run.xl[hi] - run.xl[lo], run.yl[hi] - run.yl[lo]
                length = math.hypot(cx, cy)
                if length > 50.0:
                    ux, uy = cx / length, cy / length
                    shift = self.align(run.predir, x, y, ux, uy, gap / length, n)
                    if shift is not None:
                        # stay between the two known numbers
                        shift = max(-t * length, min((1.0 - t) * length, shift))
                        x, y = x + ux * shift, y + uy * shift
            conf = 0.92 - 0.35 * min(1.0, gap / 1500.0)
            z = run.zips[lo] if t < 0.5 else run.zips[hi]
            anchor_side = (1.0 - t) * parity_side(n_lo) + t * parity_side(n_hi)
            dx_, dy_ = run.xl[hi] - run.xl[lo], run.yl[hi] - run.yl[lo]
            x, y = self.to_side(run.predir, n, anchor_side, x, y, (dx_, dy_))
            return Located(
                x, y, Precision.INTERPOLATED, conf, n, z, Method.BETWEEN,
                join_sources(run.sources[lo], run.sources[hi]),
            )  # fmt: skip
        # past one end of the known numbers
        end = 0 if i == 0 else len(nums) - 1
        dn = n - nums[end]
        du = self.along(n) - self.along(nums[end])  # numbers as laid out along blocks
        z_end = run.zips[end]
        src = run.sources[end]
        local = self._end_gradient(run, end) if abs(dn) <= tuning.beyond_max_numbers else None
        if local is not None:
            x = float(run.xs[end] + local[0] * du)
            y = float(run.ys[end] + local[1] * du)
            x, y = self.to_side(run.predir, n, parity_side(nums[end]), x, y, local)
            conf = 0.8 - 0.3 * abs(dn) / tuning.beyond_max_numbers
            return Located(x, y, Precision.INTERPOLATED, conf, n, z_end, Method.BEYOND, src)
        if abs(dn) <= tuning.max_long_walk_numbers:
            walked = self._grid_walk(run, end, du, n)
            if walked is not None:
                x, y, known_dir = walked
                x, y = self.to_side(run.predir, n, parity_side(nums[end]), x, y, None)
                limit = (
                    tuning.max_extrapolation_numbers if known_dir
                    else tuning.max_blind_extrapolation_numbers
                )  # fmt: skip
                long_limit = (
                    tuning.max_long_walk_numbers if known_dir
                    else tuning.max_long_walk_blind_numbers
                )  # fmt: skip
                if limit < abs(dn) <= long_limit and zip_code and tuning.long_walks:
                    # a long walk along the grid; kept only if it lands in the query ZIP
                    return Located(
                        x, y, Precision.INTERPOLATED, 0.3, n, zip_code, Method.GRID_LONG, src
                    )
                if abs(dn) <= limit:
                    conf = (0.7 if known_dir else 0.5) - 0.3 * abs(dn) / limit
                    how = Method.GRID if known_dir else Method.GRID_BLIND
                    return Located(x, y, Precision.INTERPOLATED, conf, n, z_end, how, src)
        if abs(dn) <= 20:
            return Located(
                float(run.xs[end]), float(run.ys[end]), Precision.INTERPOLATED, 0.5, n, z_end,
                Method.NEAR_END, src,
            )  # fmt: skip
        return Located(
            float(run.xs[end]), float(run.ys[end]), Precision.STREET, 0.25, None, z_end,
            Method.STREET, src,
        )  # fmt: skip

    def along(self, n: int) -> float:
        """House number ``n`` as a position along the street, in numbers.

        Blocks are numbered in hundreds but their houses use the low numbers of each
        hundred (in Los Angeles half of them are below ``x28``), so ``n`` is placed within
        its block by the reference's distribution of the last two digits, not linearly.
        """
        block_pos = self.index.block_pos
        if block_pos is None:
            return float(n)
        return float(n - n % 100) + float(block_pos[n % 100])

    def to_side(
        self,
        predir: str,
        n: int,
        anchor_side: float,
        x: float,
        y: float,
        ahead: tuple[float, float] | None,
    ) -> tuple[float, float]:
        """Move an estimate of ``n`` to its side of the street.

        Odd and even numbers face each other across the street, a steady distance apart
        (learned per pre-direction by :func:`~geo.geocoding.index.side_separation`); an
        estimate made from points of the other parity (``anchor_side`` -0.5 even ... +0.5
        odd) stands on the wrong side. ``ahead`` points towards higher numbers (else the
        number field's gradient is used).
        """
        sep = self.index.side_m.get(predir)
        shift = parity_side(n) - anchor_side
        if not sep or abs(shift) < 0.05:
            return x, y
        if ahead is None:
            ahead = self.number_gradient(predir, x, y)
            if ahead is None:
                return x, y
        norm = math.hypot(ahead[0], ahead[1])
        if norm == 0.0:
            return x, y
        # left of the way numbers grow
        lx, ly = -ahead[1] / norm, ahead[0] / norm
        return x + lx * sep * shift, y + ly * sep * shift

    @staticmethod
    def in_block(run: Run, middle: int) -> Located | None:
        """Known numbers of a queried block (``middle`` - 50 .. + 49): their middle point."""
        lo = bisect.bisect_left(run.nl, middle - 50)
        hi = bisect.bisect_left(run.nl, middle + 50)
        if hi <= lo:
            return None
        k = (lo + hi - 1) // 2
        return Located(
            run.xl[k], run.yl[k], Precision.INTERPOLATED, 0.6, middle, run.zips[k],
            Method.IN_BLOCK, run.sources[k],
        )  # fmt: skip

    @staticmethod
    def _neighbour(
        nums: list[int], start: int, step: int, n: int, same_parity: bool
    ) -> int | None:
        """Nearest index from ``start`` in direction ``step`` (same parity preferred)."""
        size = len(nums)
        if not 0 <= start < size:
            return None
        if not same_parity:
            return start
        k = start
        for _ in range(6):
            if not 0 <= k < size or abs(nums[k] - n) > 400:
                break
            if (nums[k] - n) % 2 == 0:
                return k
            k += step
        return start

    # ---------------------------------------------------------- number field
    def _end_gradient(self, run: Run, end: int) -> tuple[float, float] | None:
        """Metres per number near the run's ``end`` from its own points (cached)."""
        key = (run.rid, end)
        if key in self._end_cache:
            return self._end_cache[key]
        nums = run.numbers
        near = np.flatnonzero(np.abs(nums - nums[end]) <= 400)
        g = None
        if len(near) >= 2:
            g = fit_gradient(
                along_positions(nums[near], self.index.block_pos), run.xs[near], run.ys[near],
                self.tuning.m_per_number_max, self.tuning.m_per_number_min,
            )  # fmt: skip
        self._end_cache[key] = g
        return g

    def number_gradient(self, predir: str, x: float, y: float) -> tuple[float, float] | None:
        """Local house numbers per metre (a plane fit of nearby numbers, same predir).

        Cached per cell of ``number_field_cell_m`` and fitted at the cell's centre, so an
        answer never depends on which query reached the cell first
        (``test_answers_do_not_depend_on_query_order``).
        """
        cell = self.tuning.number_field_cell_m
        cx, cy = int(x // cell), int(y // cell)
        key = (predir, cx, cy)
        if key in self._grad_cache:
            return self._grad_cache[key]
        model = self.index.grid.get(predir)
        gx, gy = (cx + 0.5) * cell, (cy + 0.5) * cell
        arr = (
            plane_gradient(model, gx, gy, self.tuning.m_per_number_max)
            if model is not None and predir else None
        )  # fmt: skip
        g = None if arr is None else (float(arr[0]), float(arr[1]))
        self._grad_cache[key] = g
        return g

    def run_direction(self, run: Run, end: int) -> tuple[float, float] | None:
        """Return the street's unit direction near the run's ``end`` (None if unknown).

        Uses the run's own points and, for short runs, the other points known on a
        street of that name nearby (other pre-directions, known intersections).
        """
        key = (run.rid, end)
        if key in self._dir_cache:
            return self._dir_cache[key]
        got = self._run_direction_uncached(run, end)
        self._dir_cache[key] = got
        return got

    def _run_direction_uncached(self, run: Run, end: int) -> tuple[float, float] | None:
        anchor = np.array([run.xs[end], run.ys[end]])
        xy = self.index.street_xy(run.name, run.stype)
        if len(xy) < 2:
            return None
        line = fit_line(xy, anchor, 1500.0)
        if line is None:
            return None
        c, d = line
        # the line must pass by the anchor, not a parallel street of the same name
        off = abs(float((anchor - c) @ np.array([-d[1], d[0]])))
        return (float(d[0]), float(d[1])) if off <= 60.0 else None

    def _grid_walk(
        self, run: Run, end: int, dn: float, n: int
    ) -> tuple[float, float, bool] | None:
        """Walk ``dn`` house numbers from the run's end along the street to number ``n``.

        The street direction comes from the run itself (or the number field when the run
        is a single point); the metres per number from the local number field.
        """
        direction = self.run_direction(run, end)
        align_to = n if self.tuning.align_walks else None
        got = self.walk(run.predir, run.xl[end], run.yl[end], direction, dn, align_to)
        if got is None:
            return None
        return got[0], got[1], direction is not None

    def walk(
        self,
        predir: str,
        px: float,
        py: float,
        direction: tuple[float, float] | None,
        dn: float,
        align_to: int | None,
    ) -> tuple[float, float, float, float] | None:
        """Walk ``dn`` numbers of the ``predir`` number field from (px, py).

        Along ``direction`` (or, when None, along the local gradient of the numbers);
        returns the end point and the unit direction of the last step, or None when the
        field is unknown there or the street runs across the numbering. ``align_to``
        lines the end up with that number on nearby streets (see :meth:`align`).
        """
        remaining = float(dn)
        dx = dy = rate = 0.0
        for _ in range(8):
            g = self.number_gradient(predir, px, py)
            if g is None:
                return None
            gx, gy = g
            gnorm = math.hypot(gx, gy)
            dx, dy = (gx / gnorm, gy / gnorm) if direction is None else direction
            rate = gx * dx + gy * dy  # numbers per metre along d
            if abs(rate) < 0.5 * gnorm:
                return None  # street runs across the numbering: cannot walk it
            step = max(-1200.0, min(1200.0, remaining))
            px += dx * step / rate
            py += dy * step / rate
            remaining -= step
            if remaining == 0:
                break
        if align_to is not None and rate != 0.0:
            shift = self.align(predir, px, py, dx, dy, rate, align_to)
            if shift is not None:
                px += dx * shift
                py += dy * shift
        return px, py, dx, dy

    def across_divide(self, run: Run, n: int, predir: str) -> Located | None:
        """Locate ``n`` of pre-direction ``predir`` from the run of the opposite one.

        ``1400 N GAFFEY`` when the reference only knows ``S GAFFEY``: walk from the run's
        lowest number back to the divide line (``S`` number field), then ``n`` numbers on
        into the ``N`` number field, along the street's direction.  A long extrapolation:
        confidence at most 0.3, method ``across``.
        """
        max_across = self.tuning.max_across_numbers
        n0 = run.nl[0]
        if n0 + n > max_across:
            return None
        direction = self.run_direction(run, 0)
        x0, y0 = run.xl[0], run.yl[0]
        first = self.walk(run.predir, x0, y0, direction, -float(n0), None)
        if first is None:
            return None
        x1, y1 = first[0], first[1]
        align_to = n if self.tuning.align_walks else None
        second = self.walk(predir, x1, y1, direction, float(n), align_to)
        if second is None:
            return None
        x2, y2 = second[0], second[1]
        # both legs must go the same way: out of the opposite side, through the divide
        if (x1 - x0) * (x2 - x1) + (y1 - y0) * (y2 - y1) < 0.0:
            return None
        conf = (0.3 if direction is not None else 0.2) - 0.1 * (n0 + n) / max_across
        how = Method.ACROSS if direction is not None else Method.ACROSS_BLIND
        return Located(x2, y2, Precision.INTERPOLATED, conf, n, "", how, run.sources[0])

    def align(
        self, predir: str, x: float, y: float, dx: float, dy: float, rate: float, n: int
    ) -> float | None:
        """Shift along (dx, dy) that lines ``n`` up with the same numbers on nearby streets.

        In a city-wide grid, number ``n`` on parallel streets lies on one cross line; the
        median along-street offset of nearby points numbered within 60 of ``n`` (corrected
        by the local metres per number) refines a walked position.
        """
        model = self.index.grid.get(predir)
        if model is None:
            return None
        # points numbered within 60 of n (a slice of the number-sorted table) near (x, y)
        lo = bisect.bisect_left(model.numbers, n - 60)
        hi = bisect.bisect_right(model.numbers, n + 60)
        if hi - lo < 2:
            return None
        qx = model.bx[lo:hi] - x
        qy = model.by[lo:hi] - y
        near = np.flatnonzero(qx * qx + qy * qy <= self.tuning.align_radius_m**2)
        if len(near) < 2:
            return None
        dnum = self.along(n) - model.along[lo:hi][near]
        along = qx[near] * dx + qy[near] * dy + dnum / rate
        shift = float(np.partition(along, len(along) // 2)[len(along) // 2])
        return shift if abs(shift) <= 400.0 else None

    # ------------------------------------------------------- other evidence
    def centerline_locate(self, p: ParsedAddress, n: int) -> tuple[Run, Located, float] | None:
        """Place ``n`` along a centerline address range of the query's street.

        Returns
        -------
        tuple or None
            A one-point :class:`Run` standing for the segment, the placement (method
            ``centerline``) and its ranking score; None without a range holding ``n``.
        """
        best: tuple[Run, Located, float] | None = None
        for res in self.streets.resolve(p.street, p.zip):
            for cl in self.index.centerlines.get(res.name, []):
                for fr, to, z in cl.ranges:
                    lo, hi = min(fr, to), max(fr, to)
                    if not lo <= n <= hi or (fr - n) % 2:
                        continue
                    t = 0.5 if hi == lo else (n - fr) / (to - fr)
                    pt = cl.line.interpolate(t, normalized=True)
                    s = res.factor
                    if p.street.predir and cl.predir != p.street.predir:
                        s -= 0.3
                    if p.street.street_type and cl.stype != p.street.street_type:
                        s -= 0.15
                    if p.zip and z and z != p.zip:
                        s -= 0.2
                    run = Run(
                        -1, cl.predir, cl.name, cl.stype, cl.postdir, np.array([n]),
                        np.array([pt.x]), np.array([pt.y]), [z], frozenset({z}), pt.x, pt.y,
                    )  # fmt: skip
                    loc = Located(
                        pt.x, pt.y, Precision.INTERPOLATED, 0.85, n, z, Method.CENTERLINE
                    )
                    if best is None or s > best[2]:
                        best = (run, loc, s)
        return best

    def walk_from_crossings(
        self, p: ParsedAddress, number: int
    ) -> tuple[float, float, float, str] | None:
        """Walk to the house from known intersections of the street near the query ZIP.

        For a street known near the ZIP only where it crosses others (``X AT Y`` rows):
        the house number at each crossing is read off the local number field of the
        query's pre-direction (a plane fit of nearby numbers), and the walk goes the
        remaining numbers along the street (its fitted line, else the field's gradient).
        Needs a pre-direction and a ZIP.

        Returns
        -------
        tuple or None
            ``x, y, confidence, street name`` of the estimate (method ``crossing-walk``).
        """
        tuning = self.tuning
        predir = p.street.predir
        model = self.index.grid.get(predir)
        zc = self.index.zip_centroid.get(p.zip) if p.zip else None
        if model is None or zc is None or p.kind not in ("address", "block"):
            return None
        zx, zy, rad = zc
        best: tuple[float, float, float, tuple[float, float] | None, str] | None = None
        for res in self.streets.resolve(p.street, p.zip):
            stype = p.street.street_type
            xy = self.index.street_xy(res.name, stype)
            for ax, ay, t in self.index.extra_xy.get(res.name, []):
                if stype and t not in ("", stype):
                    continue
                if math.hypot(ax - zx, ay - zy) > rad + tuning.cross_zip_slack_m:
                    continue
                coef = plane_fit(model, ax, ay, tuning.m_per_number_max)
                if coef is None:
                    continue
                dn = number - float(coef[0])
                if best is None or abs(dn) < abs(best[0]):
                    line = fit_line(xy, np.array([ax, ay]), 1500.0) if len(xy) >= 2 else None
                    direction = None if line is None else (float(line[1][0]), float(line[1][1]))
                    best = (dn, ax, ay, direction, res.name)
        if best is None:
            return None
        dn, ax, ay, direction, name = best
        limit = (
            tuning.crossing_walk_max_numbers if direction is not None
            else tuning.max_blind_extrapolation_numbers
        )  # fmt: skip
        if abs(dn) > limit:
            return None
        align_to = number if tuning.align_walks else None
        walked = self.walk(predir, ax, ay, direction, dn, align_to)
        if walked is None:
            return None
        # from the crossing (the middle of the street) to the house's side
        x, y = self.to_side(predir, number, 0.0, walked[0], walked[1], None)
        if not self.index.zip_near_xy(x, y, p.zip, tuning.long_walk_zip_test):
            return None
        conf = (0.45 if direction is not None else 0.3) - 0.15 * abs(dn) / limit
        return x, y, conf, name
