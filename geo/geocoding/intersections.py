"""Intersections: a known crossing (``X AT Y`` in the reference), or where two streets cross.

The geometric crossing fits a principal line through each street's known positions near
their closest approach (or, for a street known from one point, the local house-number
grid's direction) and intersects the two; without a usable crossing, the foot point of
one street's nearest position on the other's line. The query ZIP picks the part of the
city when street names repeat, and a far crossing is trusted only inside that ZIP.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from geo.geocoding.index import ReferenceIndex, fit_line, foot, intersect_lines
from geo.geocoding.numbers import NumberPlacer
from geo.geocoding.streets import Resolved

__all__ = ["IntersectionLocator"]


class IntersectionLocator:
    """Locate crossings of two streets on a :class:`ReferenceIndex`.

    Parameters
    ----------
    index : ReferenceIndex
        The reference's index.
    numbers : NumberPlacer
        Gives the house-number grid's direction for streets known from one point.
    """

    def __init__(self, index: ReferenceIndex, numbers: NumberPlacer) -> None:
        self.index = index
        self.numbers = numbers
        self.tuning = index.tuning

    def known(
        self, ra: tuple[Resolved, ...], rb: tuple[Resolved, ...], zip_code: str
    ) -> tuple[float, float, float, str] | None:
        """Best known intersection of any resolution of the two streets.

        Parameters
        ----------
        ra, rb : tuple of Resolved
            What each typed street resolves to.
        zip_code : str
            The query ZIP (``""`` when none).

        Returns
        -------
        tuple or None
            ``score, x, y, zip``; pairs of names known only far outside the query ZIP
            are other crossings and skipped.
        """
        best: tuple[float, float, float, str] | None = None
        zc = self.index.zip_centroid.get(zip_code) if zip_code else None
        known_inter = self.index.known_inter
        for a in ra:
            for b in rb:
                for _ta, _tb, z, x, y in known_inter.get(frozenset((a.name, b.name)), []):
                    s = a.factor * b.factor
                    if zip_code and z and z != zip_code:
                        if zc is not None and math.hypot(x - zc[0], y - zc[1]) > (
                            zc[2] + self.tuning.zip_reject_m
                        ):
                            continue  # the same pair of names in another part of the city
                        s -= 0.2
                    if best is None or s > best[0]:
                        best = (s, x, y, z)
        return best

    def cross(
        self, name_a: str, type_a: str, name_b: str, type_b: str, zip_code: str
    ) -> tuple[float, float, float] | None:
        """Where two streets cross, from their positions; ``(x, y, confidence)`` or None."""
        index = self.index
        tuning = self.tuning
        pa_xy, pb_xy = index.street_xy(name_a, type_a), index.street_xy(name_b, type_b)
        if len(pa_xy) == 0 or len(pb_xy) == 0:
            return None
        zc = index.zip_centroid.get(zip_code) if zip_code else None
        if zc is not None:
            # the query ZIP picks the part of the city (streets repeat across it)
            reach = zc[2] + 2500.0
            near_a = np.hypot(pa_xy[:, 0] - zc[0], pa_xy[:, 1] - zc[1]) <= reach
            near_b = np.hypot(pb_xy[:, 0] - zc[0], pb_xy[:, 1] - zc[1]) <= reach
            if near_a.any() and near_b.any():
                pa_xy, pb_xy = pa_xy[near_a], pb_xy[near_b]
        d, k = cKDTree(pb_xy).query(pa_xy)
        ia = int(np.argmin(d))
        ib = int(k[ia])
        dist = float(d[ia])
        a0, b0 = pa_xy[ia], pb_xy[ib]
        radius = max(700.0, min(3000.0, dist + 700.0))
        line_a = fit_line(pa_xy, a0, radius) or self._grid_line(name_a, a0)
        line_b = fit_line(pb_xy, b0, radius) or self._grid_line(name_b, b0)
        mid = (a0 + b0) / 2
        if line_a is not None and line_b is not None:
            crossing = intersect_lines(line_a, line_b)
            if crossing is not None:
                da = math.hypot(*(crossing - a0))
                db = math.hypot(*(crossing - b0))
                reach = max(da, db)
                if zc is not None:
                    # long straight streets: trust a far crossing only inside the query ZIP
                    dz = math.hypot(crossing[0] - zc[0], crossing[1] - zc[1])
                    in_zip = dz <= zc[2] + tuning.cross_zip_slack_m or index.zip_near_xy(
                        float(crossing[0]), float(crossing[1]), zip_code
                    )
                    ok = in_zip and reach <= tuning.cross_max_reach_m
                else:
                    ok = reach <= max(400.0, dist + 300.0) and reach <= 1500.0
                if ok:
                    conf = 0.85 if reach <= 400.0 else 0.6 if reach <= 1500.0 else 0.45
                    return float(crossing[0]), float(crossing[1]), conf
        if dist > tuning.foot_max_m:
            return None
        if line_a is not None:
            point, conf = foot(line_a, b0), 0.7
        elif line_b is not None:
            point, conf = foot(line_b, a0), 0.7
        else:
            point, conf = mid, 0.5
        if zc is not None and math.hypot(point[0] - zc[0], point[1] - zc[1]) > (
            zc[2] + tuning.zip_reject_m
        ):
            return None  # the two names meet, but in another part of the city
        return float(point[0]), float(point[1]), conf

    def _grid_line(self, name: str, anchor: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Line through ``anchor`` along the house-number grid of the street's predir."""
        runs = self.index.by_name.get(name, [])
        if not runs:
            return None
        run = min(runs, key=lambda r: float(np.min(np.hypot(r.xs - anchor[0], r.ys - anchor[1]))))
        g = self.numbers.number_gradient(run.predir, float(anchor[0]), float(anchor[1]))
        if g is None:
            return None
        norm = math.hypot(g[0], g[1])
        return np.asarray(anchor, dtype=float), np.array([g[0] / norm, g[1] / norm])
