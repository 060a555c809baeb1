"""The geocoder's index of an :class:`~geo.reference.AddressReference`.

Everything here depends on the reference alone, never on a query: a local projection
in metres, the address points split into *runs* (spatially coherent stretches of one
street), k-d trees, the house-number field of each pre-direction, ZIP centres,
known intersections and centerlines, and the small geometric fits the locating code
shares (principal lines, plane fits of house numbers, block layout, side of street).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from geo.errors import GeocodeError
from geo.geocoding.tuning import GeocoderTuning, ZipTest
from geo.reference import AddressReference

__all__ = [
    "Centerline",
    "GridModel",
    "Projection",
    "ReferenceIndex",
    "Run",
    "along_positions",
    "block_positions",
    "fit_gradient",
    "fit_line",
    "foot",
    "group_weights",
    "intersect_lines",
    "parity_side",
    "plane_fit",
    "plane_gradient",
    "side_separation",
]

#: (lon0, lat0) metres per degree of longitude at the equator and of latitude.
_M_PER_DEG_LON_EQUATOR = 111_320.0
_M_PER_DEG_LAT = 110_574.0
#: House numbers of one block: points this close in number are one numbering at any distance.
_BLOCK_NUMBERS = 100


class Projection:
    """Local equirectangular projection in metres around a reference centre.

    Parameters
    ----------
    lon0, lat0 : float
        Centre (EPSG:4326); ``x`` grows east, ``y`` north.
    """

    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = lon0, lat0
        self.kx = _M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat0))
        self.ky = _M_PER_DEG_LAT

    def forward(self, lon: Any, lat: Any) -> tuple[Any, Any]:
        """Project ``lon, lat`` (scalars or arrays) to ``x, y`` metres."""
        return (np.asarray(lon) - self.lon0) * self.kx, (np.asarray(lat) - self.lat0) * self.ky

    def inverse(self, x: float, y: float) -> tuple[float, float]:
        """Return ``(lon, lat)`` of the point ``x, y`` metres from the centre."""
        return float(self.lon0 + x / self.kx), float(self.lat0 + y / self.ky)


@dataclass
class Run:
    """A spatially coherent run of address points on one street (one pre-direction/type).

    Attributes
    ----------
    rid : int
        Index of the run (``-1`` for the one-point runs made from centerlines).
    predir, name, stype, postdir : str
        The street.
    numbers, xs, ys : numpy.ndarray
        House numbers (ascending) and projected positions in metres.
    zips, sources : list of str
        ZIP and reference source of each point, in the same order.
    zipset : frozenset of str
        The non-empty ZIPs of the run.
    cx, cy : float
        Mean position.
    """

    rid: int
    predir: str
    name: str
    stype: str
    postdir: str
    numbers: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    zips: list[str]
    zipset: frozenset[str]
    cx: float
    cy: float
    sources: list[str] = field(default_factory=list)
    nl: list[int] = field(default_factory=list)  # numbers as Python ints (fast scalar access)
    xl: list[float] = field(default_factory=list)
    yl: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.nl = [int(v) for v in self.numbers]
        self.xl = [float(v) for v in self.xs]
        self.yl = [float(v) for v in self.ys]
        if not self.sources:
            self.sources = [""] * len(self.nl)

    @property
    def label(self) -> str:
        """Return the street as one string (``W VANOWEN ST``)."""
        return " ".join(p for p in (self.predir, self.name, self.stype, self.postdir) if p)


@dataclass
class Centerline:
    """A street segment with address ranges, in projected metres."""

    predir: str
    name: str
    stype: str
    postdir: str
    ranges: tuple[tuple[int, int, str], ...]  # (from, to, zip) for left and right
    line: shapely.LineString


@dataclass
class GridModel:
    """Points of one pre-direction for fits of the house-number field.

    Attributes
    ----------
    tree : scipy.spatial.cKDTree
        Over ``xyn[:, :2]``.
    xyn : numpy.ndarray
        ``x, y, house number`` of every point with this pre-direction.
    block_pos : numpy.ndarray or None
        See :func:`block_positions`.
    """

    tree: cKDTree
    xyn: np.ndarray
    block_pos: np.ndarray | None = None
    by_number: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    numbers: list[int] = field(default_factory=list)
    along: np.ndarray = field(default_factory=lambda: np.zeros(0))  # by_number's positions
    bx: np.ndarray = field(default_factory=lambda: np.zeros(0))  # by_number's x, y
    by: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self.by_number = self.xyn[np.argsort(self.xyn[:, 2], kind="stable")]
        self.numbers = [int(v) for v in self.by_number[:, 2]]
        self.bx = np.ascontiguousarray(self.by_number[:, 0])
        self.by = np.ascontiguousarray(self.by_number[:, 1])
        self.along = along_positions(self.by_number[:, 2], self.block_pos)


class ReferenceIndex:
    """Query-independent index of an address reference.

    Parameters
    ----------
    reference : AddressReference
        Address points, intersections, optional centerlines.
    tuning : GeocoderTuning
        Run splitting, side-of-street and block-layout switches.

    Raises
    ------
    GeocodeError
        When ``reference`` is not an :class:`AddressReference` or holds nothing.
    """

    def __init__(self, reference: AddressReference, tuning: GeocoderTuning) -> None:
        if not isinstance(reference, AddressReference):
            raise GeocodeError(
                f"the geocoder needs an AddressReference; got {type(reference).__name__}"
            )
        n_lines = 0 if reference.centerlines is None else len(reference.centerlines)
        if len(reference.points) == 0 and len(reference.intersections) == 0 and n_lines == 0:
            raise GeocodeError(
                f"address reference {reference.city!r} has no points, intersections or "
                "centerlines; expected at least one"
            )
        self.reference = reference
        self.tuning = tuning
        self._build_points()
        self._build_runs()
        self._build_grid_and_zips()
        self._build_intersections()
        self._build_centerlines()
        self.names: list[str] = sorted(
            set(self.by_name) | set(self.extra_xy) | set(self.centerlines)
        )
        self.known = frozenset(self.names)
        self.aliases = dict(reference.aliases)
        self._zip_gap: dict[tuple[int, str], float] = {}  # run's distance beyond a ZIP
        self._xy_cache: dict[tuple[str, str], np.ndarray] = {}

    # ------------------------------------------------------------------ build
    def _build_points(self) -> None:
        ref = self.reference
        pts = ref.points
        lons = [pts["lon"].to_numpy(float), ref.intersections["lon"].to_numpy(float)]
        lats = [pts["lat"].to_numpy(float), ref.intersections["lat"].to_numpy(float)]
        if ref.centerlines is not None and len(ref.centerlines):
            mids = ref.centerlines.geometry.representative_point()
            lons.append(mids.x.to_numpy(float))
            lats.append(mids.y.to_numpy(float))
        lon_all, lat_all = np.concatenate(lons), np.concatenate(lats)
        self.proj = Projection(float(np.median(lon_all)), float(np.median(lat_all)))
        x, y = self.proj.forward(pts["lon"].to_numpy(float), pts["lat"].to_numpy(float))
        self.px, self.py = np.asarray(x, float), np.asarray(y, float)
        self.pnum = pts["number"].to_numpy(np.int64)
        labels = (
            (pts["predir"] + " " + pts["name"] + " " + pts["street_type"] + " " + pts["postdir"])
            .str.split()
            .str.join(" ")
        )
        self.plabel = labels.to_numpy(dtype=object)
        self.pzip = pts["zip"].to_numpy(dtype=object)
        if "source" in pts.columns:
            self.psource = pts["source"].astype(str).to_numpy(dtype=object)
        else:
            self.psource = np.full(len(pts), "", dtype=object)
        self.tree = cKDTree(np.column_stack([self.px, self.py])) if len(pts) else None

    def _build_runs(self) -> None:
        pts = self.reference.points
        self.runs: list[Run] = []
        self.by_name: dict[str, list[Run]] = defaultdict(list)
        groups: dict[tuple[str, str, str, str], np.ndarray] = {
            _key4(k): np.asarray(v)
            for k, v in pts.groupby(
                ["predir", "name", "street_type", "postdir"], sort=False
            ).indices.items()
        }
        comp_label = self._components(groups)
        for (pre, name, stype, post), idx in groups.items():
            for comp in self._split_runs(np.asarray(idx), comp_label):
                order = comp[np.argsort(self.pnum[comp], kind="stable")]
                zips = [str(z) for z in self.pzip[order]]
                run = Run(
                    rid=len(self.runs),
                    predir=pre,
                    name=name,
                    stype=stype,
                    postdir=post,
                    numbers=self.pnum[order],
                    xs=self.px[order],
                    ys=self.py[order],
                    zips=zips,
                    zipset=frozenset(z for z in zips if z),
                    cx=float(np.mean(self.px[order])),
                    cy=float(np.mean(self.py[order])),
                    sources=[str(s) for s in self.psource[order]],
                )
                self.runs.append(run)
                self.by_name[name].append(run)
        by_zip = self.tuning.zip_weighted_models
        self.side_m = side_separation(self.runs, self.tuning.side_min_pairs, by_zip=by_zip) if (
            self.tuning.side_of_street
        ) else {}
        self.block_pos = (
            block_positions(self.pnum, self.pzip if by_zip else None)
            if self.tuning.block_layout else None
        )  # fmt: skip

    def _build_grid_and_zips(self) -> None:
        pts = self.reference.points
        # house-number field per pre-direction: numbers follow a city-wide grid
        self.grid: dict[str, GridModel] = {}
        for dir_key, raw_idx in pts.groupby("predir", sort=False).indices.items():
            if len(raw_idx) >= 8:
                ii = np.asarray(raw_idx)
                self.grid[str(dir_key)] = GridModel(
                    cKDTree(np.column_stack([self.px[ii], self.py[ii]])),
                    np.column_stack([self.px[ii], self.py[ii], self.pnum[ii]]).astype(float),
                    self.block_pos,
                )
        # ZIP centres (median) and radii (90th percentile of the points' distances)
        self.zip_centroid: dict[str, tuple[float, float, float]] = {}
        for z, raw_idx in pts.groupby("zip", sort=False).indices.items():
            if not z:
                continue
            idx = np.asarray(raw_idx)
            zx, zy = float(np.median(self.px[idx])), float(np.median(self.py[idx]))
            radius = float(np.percentile(np.hypot(self.px[idx] - zx, self.py[idx] - zy), 90))
            self.zip_centroid[str(z)] = (zx, zy, max(radius, 500.0))

    def _build_intersections(self) -> None:
        # known intersections and the street shape points they add
        self.known_inter: dict[frozenset[str], list[tuple[str, str, str, float, float]]] = (
            defaultdict(list)
        )
        self.extra_xy: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
        inter = self.reference.intersections
        if len(inter):
            ix, iy = self.proj.forward(inter["lon"].to_numpy(float), inter["lat"].to_numpy(float))
            cols = [inter[c].astype(str).tolist() for c in ("name_a", "type_a", "name_b", "type_b")]
            zips = inter["zip"].astype(str).tolist()
            for na, ta, nb, tb, z, xx, yy in zip(*cols, zips, ix, iy, strict=True):
                self.known_inter[frozenset((na, nb))].append((ta, tb, z, float(xx), float(yy)))
                self.extra_xy[na].append((float(xx), float(yy), ta))
                self.extra_xy[nb].append((float(xx), float(yy), tb))

    def _build_centerlines(self) -> None:
        self.centerlines: dict[str, list[Centerline]] = defaultdict(list)
        lines = self.reference.centerlines
        if lines is None:
            return
        for row in lines.itertuples(index=False):
            coords = np.asarray(row.geometry.coords)
            cx, cy = self.proj.forward(coords[:, 0], coords[:, 1])
            ranges = []
            for fr, to, z in (
                (row.from_left, row.to_left, row.zip_left),
                (row.from_right, row.to_right, row.zip_right),
            ):
                if pd.notna(fr) and pd.notna(to):
                    ranges.append((int(fr), int(to), str(z or "")))
            self.centerlines[str(row.name)].append(
                Centerline(
                    str(row.predir),
                    str(row.name),
                    str(row.street_type),
                    str(row.postdir),
                    tuple(ranges),
                    shapely.LineString(np.column_stack([cx, cy])),
                )
            )

    def _components(self, groups: dict[tuple[str, str, str, str], np.ndarray]) -> np.ndarray:
        """Label points connected (< ``run_gap_m``) to a point of the same street.

        Each street is searched on its own: a dense address layer has thousands of
        points within ``run_gap_m`` of each other, nearly all on other streets. With
        ``one_numbering_runs``, two points connect only if their numbers can be one
        numbering: no more than a block (100 numbers) plus one per ``m_per_number_min``
        metres apart. A street numbered again from its own origin past the end of the
        city grid (a neighbourhood's numbering, a numbering across a city line) is then
        another run, so no grid number is interpolated towards it.
        """
        per_m = 1.0 / self.tuning.m_per_number_min
        n = len(self.px)
        labels = np.zeros(n, dtype=np.int64)
        offset = 0
        xy = np.column_stack([self.px, self.py])
        for idx in groups.values():
            idx = np.asarray(idx)
            if len(idx) == 1:
                labels[idx] = offset
                offset += 1
                continue
            pairs = cKDTree(xy[idx]).query_pairs(self.tuning.run_gap_m, output_type="ndarray")
            if len(pairs) and self.tuning.one_numbering_runs:
                a, b = idx[pairs[:, 0]], idx[pairs[:, 1]]
                gap_m = np.hypot(self.px[a] - self.px[b], self.py[a] - self.py[b])
                pairs = pairs[np.abs(self.pnum[a] - self.pnum[b]) <= _BLOCK_NUMBERS + per_m * gap_m]
            graph = coo_matrix(
                (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1]) if len(pairs) else ([], [])),
                shape=(len(idx), len(idx)),
            )
            k, local = connected_components(graph, directed=False)
            labels[idx] = offset + np.asarray(local, dtype=np.int64)
            offset += int(k)
        return labels

    def _split_runs(self, idx: np.ndarray, comp_label: np.ndarray) -> list[np.ndarray]:
        """Split one street's points into spatially coherent runs."""
        if len(idx) <= 1:
            return [idx]
        lab = comp_label[idx]
        uniq = np.unique(lab)
        if len(uniq) == 1:
            return [idx]
        xy = np.column_stack([self.px[idx], self.py[idx]])
        comps = [np.flatnonzero(lab == u) for u in uniq]
        # merge components whose number ranges follow on at a plausible distance
        nums = self.pnum[idx]
        comps.sort(key=lambda c: int(nums[c].min()))
        merged: list[np.ndarray] = [comps[0]]
        for comp in comps[1:]:
            last = merged[-1]
            hi_i = last[np.argmax(nums[last])]
            lo_i = comp[np.argmin(nums[comp])]
            dn = int(nums[lo_i] - nums[hi_i])
            dist = float(np.hypot(*(xy[lo_i] - xy[hi_i])))
            if dn > 0 and dist <= 300.0 + self.tuning.m_per_number_max * dn:
                merged[-1] = np.concatenate([last, comp])
            else:
                merged.append(comp)
        return [idx[c] for c in merged]

    # --------------------------------------------------------------- queries
    def zip_near_xy(self, x: float, y: float, zip_code: str, test: ZipTest | None = None) -> bool:
        """Whether ``test.need`` of the ``test.k`` points nearest (x, y) carry ``zip_code``.

        Without ``test``: one of the 3 nearest within 800 m.
        """
        if self.tree is None:
            return False
        k, need, max_m = (3, 1, 800.0) if test is None else (test.k, test.need, test.within_m)
        k = min(k, len(self.pzip))
        _, idx = self.tree.query((x, y), k=k, distance_upper_bound=max_m)
        # missing neighbours (beyond max_m) come back as index n
        pzip = self.pzip
        n = len(pzip)
        hits = sum(1 for i in np.atleast_1d(idx).tolist() if i < n and pzip[i] == zip_code)
        return hits >= need

    def run_near_zip(self, run: Run, zip_code: str, slack_m: float = 1000.0) -> bool:
        """Whether ``run`` has a point within the ZIP's radius plus ``slack_m``."""
        if zip_code in run.zipset:
            return True
        zc = self.zip_centroid.get(zip_code)
        if zc is None:
            return True
        key = (run.rid, zip_code)
        gap = self._zip_gap.get(key)
        if gap is None:
            zx, zy, rad = zc
            gap = float(np.min(np.hypot(run.xs - zx, run.ys - zy))) - rad
            self._zip_gap[key] = gap
        return gap <= slack_m

    def name_near_zip(self, name: str, zip_code: str, reach: float) -> bool:
        """Whether street ``name`` has points in ``zip_code`` or within ``reach`` of it."""
        zc = self.zip_centroid.get(zip_code)
        runs = self.by_name.get(name, [])
        if any(zip_code in r.zipset for r in runs):
            return True
        if zc is None:
            return True  # unknown ZIP: cannot judge, accept
        zx, zy, rad = zc
        xs = [r.xs for r in runs] + [np.array([p[0] for p in self.extra_xy.get(name, [])])]
        ys = [r.ys for r in runs] + [np.array([p[1] for p in self.extra_xy.get(name, [])])]
        ax, ay = np.concatenate(xs), np.concatenate(ys)
        if len(ax) == 0:
            return False
        return bool(np.min(np.hypot(ax - zx, ay - zy)) <= rad + reach)

    def nearest_zip(self, x: float, y: float) -> str:
        """Return the ZIP of the address point nearest (x, y) (``""`` without points)."""
        if self.tree is None:
            return ""
        _, k = self.tree.query([x, y])
        return str(self.pzip[int(k)])

    def street_xy(self, name: str, stype: str) -> np.ndarray:
        """Every known position on street ``name`` (of type ``stype`` when given), ``(n, 2)``.

        Address points, known intersections and centerline vertices; a wrong or missing
        type counts as the same street unless the query's type is a limited-access road.
        """
        key = (name, stype)
        got = self._xy_cache.get(key)
        if got is None:
            got = self._street_xy_uncached(name, stype)
            self._xy_cache[key] = got
        return got

    def _street_xy_uncached(self, name: str, stype: str) -> np.ndarray:
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        runs = self.by_name.get(name, [])
        typed = [r for r in runs if not stype or r.stype == stype]
        if not typed and stype not in self.tuning.limited_access_types:
            typed = runs  # a wrong or missing type, not another road
        for r in typed:
            xs.append(r.xs)
            ys.append(r.ys)
        extra = [(a, b) for a, b, t in self.extra_xy.get(name, []) if not stype or t in ("", stype)]
        if extra:
            arr = np.array(extra)
            xs.append(arr[:, 0])
            ys.append(arr[:, 1])
        for cl in self.centerlines.get(name, []):
            c = np.asarray(cl.line.coords)
            xs.append(c[:, 0])
            ys.append(c[:, 1])
        if not xs:
            return np.zeros((0, 2))
        return np.column_stack([np.concatenate(xs), np.concatenate(ys)])

    @staticmethod
    def medoid(run: Run) -> tuple[float, float, str, str]:
        """Return ``x, y, zip, source`` of the run's point nearest its mean."""
        k = int(np.argmin(np.hypot(run.xs - run.cx, run.ys - run.cy)))
        return run.xl[k], run.yl[k], run.zips[k], run.sources[k]


def _key4(key: Any) -> tuple[str, str, str, str]:
    return str(key[0]), str(key[1]), str(key[2]), str(key[3])


# ----------------------------------------------------------------------- geometry


def fit_gradient(
    numbers: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    m_per_number_max: float,
    m_per_number_min: float = 0.2,
) -> tuple[float, float] | None:
    """Least-squares metres per house number along a run, or None if unreliable.

    Parameters
    ----------
    numbers : numpy.ndarray
        House numbers (or their positions along the street, see :func:`along_positions`).
    xs, ys : numpy.ndarray
        Projected positions, metres.
    m_per_number_max : float
        Steeper gradients are refused.
    m_per_number_min : float
        Flatter gradients are refused.

    Returns
    -------
    tuple of float or None
        ``(dx, dy)`` metres per number; None for fewer than 2 points, a span under 60
        numbers, or a gradient outside ``m_per_number_min`` to ``m_per_number_max`` m
        per number.
    """
    if len(numbers) < 2 or int(numbers.max() - numbers.min()) < 60:
        return None
    n = numbers.astype(float) - numbers.mean()
    denom = float(n @ n)
    gx = float(n @ (xs - xs.mean())) / denom
    gy = float(n @ (ys - ys.mean())) / denom
    if not m_per_number_min <= math.hypot(gx, gy) <= m_per_number_max:
        return None
    return gx, gy


def fit_line(
    xy: np.ndarray, anchor: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Principal line through the points within ``radius`` of ``anchor``.

    Parameters
    ----------
    xy : numpy.ndarray
        ``(n, 2)`` positions, metres.
    anchor : numpy.ndarray
        Centre of the neighbourhood.
    radius : float
        Neighbourhood radius, metres.

    Returns
    -------
    tuple of numpy.ndarray or None
        ``(centre, unit direction)``; None when fewer than 2 points, shorter than about
        25 m, or not a line (the minor axis over a quarter of the major one).
    """
    dx = xy[:, 0] - anchor[0]
    dy = xy[:, 1] - anchor[1]
    near = xy[dx * dx + dy * dy <= radius * radius]
    if len(near) < 2:
        return None
    c = near.mean(axis=0)
    u = near - c
    sxx = float(u[:, 0] @ u[:, 0]) / len(u)
    syy = float(u[:, 1] @ u[:, 1]) / len(u)
    sxy = float(u[:, 0] @ u[:, 1]) / len(u)
    # eigenvalues of the 2x2 covariance in closed form
    half_tr = (sxx + syy) / 2
    disc = math.sqrt(max(half_tr * half_tr - (sxx * syy - sxy * sxy), 0.0))
    big, small = half_tr + disc, half_tr - disc
    if big < 25.0**2 or small > 0.25 * big:
        return None  # too short or not a line
    if abs(sxy) > 1e-9:
        d = np.array([big - syy, sxy])
    else:
        d = np.array([1.0, 0.0]) if sxx >= syy else np.array([0.0, 1.0])
    return c, d / float(np.hypot(d[0], d[1]))


def plane_gradient(
    model: GridModel, x: float, y: float, m_per_number_max: float
) -> np.ndarray | None:
    """Gradient (numbers per metre) of a robust plane fit around (x, y), or None."""
    coef = plane_fit(model, x, y, m_per_number_max)
    return None if coef is None else coef[1:]


def plane_fit(
    model: GridModel, x: float, y: float, m_per_number_max: float
) -> np.ndarray | None:
    """Robust plane fit of house numbers around (x, y).

    Parameters
    ----------
    model : GridModel
        Points of one pre-direction.
    x, y : float
        Where to fit, metres.
    m_per_number_max : float
        Fits flatter than one number per this many metres are refused.

    Returns
    -------
    numpy.ndarray or None
        ``[number at (x, y), d/dx, d/dy]``; None with fewer than 8 points within 4 km
        or an implausible gradient.
    """
    k = min(40, len(model.xyn))
    dist, idx = model.tree.query([x, y], k=k, distance_upper_bound=4000.0)
    idx = idx[np.isfinite(dist)]
    if len(idx) < 8:
        return None
    pts = model.xyn[idx]
    a = np.column_stack([np.ones(len(pts)), pts[:, 0] - x, pts[:, 1] - y])
    coef = _solve_plane(a, pts[:, 2])
    if coef is None:
        return None
    resid = np.abs(a @ coef - pts[:, 2])
    mid = float(np.partition(resid, len(resid) // 2)[len(resid) // 2])
    keep = resid <= max(150.0, 3.0 * mid)
    if 8 <= keep.sum() < len(keep):
        coef = _solve_plane(a[keep], pts[keep, 2])
        if coef is None:
            return None
    norm = float(np.hypot(coef[1], coef[2]))
    return coef if 1.0 / m_per_number_max <= norm <= 3.0 else None


def _solve_plane(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Least squares through the normal equations (3 unknowns; fast for small inputs)."""
    ata = a.T @ a
    try:
        return np.linalg.solve(ata, a.T @ b)
    except np.linalg.LinAlgError:
        return None


def intersect_lines(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> np.ndarray | None:
    """Crossing point of two ``(point, unit direction)`` lines; None when nearly parallel."""
    (pa_, da), (pb_, db) = a, b
    cross = da[0] * db[1] - da[1] * db[0]
    if abs(cross) < 0.2:  # nearly parallel
        return None
    t = ((pb_[0] - pa_[0]) * db[1] - (pb_[1] - pa_[1]) * db[0]) / cross
    crossing: np.ndarray[Any, np.dtype[Any]] = pa_ + t * da
    return crossing


def foot(line: tuple[np.ndarray, np.ndarray], pt: np.ndarray) -> np.ndarray:
    """Foot of the perpendicular from ``pt`` on ``line`` (``(point, unit direction)``)."""
    c, d = line
    return c + float((pt - c) @ d) * d


def group_weights(groups: Sequence[object] | np.ndarray, quantile: float = 90.0) -> np.ndarray:
    """Weights that keep any one group from outweighing a large ordinary one.

    A group (a ZIP) larger than the ``quantile`` percentile of the group sizes counts as
    if it had that many members: a complete address layer of one neighbourhood must not
    dictate the numbering models of the whole city, while groups of ordinary size keep
    their weight (every member 1).

    Parameters
    ----------
    groups : sequence
        One group label per member.
    quantile : float
        Percentile of the group sizes at which sizes are capped.

    Returns
    -------
    numpy.ndarray
        One weight per member, in (0, 1].
    """
    labels = np.asarray(groups, dtype=object)
    if len(labels) == 0:
        return np.zeros(0)
    _, inverse, sizes = np.unique(labels.astype(str), return_inverse=True, return_counts=True)
    cap = float(np.percentile(sizes, quantile))
    return np.asarray(np.minimum(1.0, cap / sizes[inverse]), dtype=float)


def block_positions(
    numbers: np.ndarray, zips: Sequence[object] | np.ndarray | None = None
) -> np.ndarray | None:
    """Position (0-100) of each last-two-digit value within its block: a smoothed CDF.

    Parameters
    ----------
    numbers : numpy.ndarray
        Every house number of the reference.
    zips : sequence, optional
        The ZIP of each number; ZIPs far larger than the others are down-weighted
        (:func:`group_weights`), so one densely mapped area does not set the layout of
        every block in the city.

    Returns
    -------
    numpy.ndarray or None
        100 increasing positions; None with fewer than 200 numbers.
    """
    last = np.asarray(numbers, dtype=np.int64) % 100
    if len(last) < 200:
        return None
    weights = None if zips is None else group_weights(zips)
    counts = np.bincount(last, weights=weights, minlength=100).astype(float) + 1.0
    cdf = np.cumsum(counts) - counts / 2  # +1 above: no empty digit
    return np.asarray(100.0 * cdf / counts.sum())


def along_positions(numbers: np.ndarray, block_pos: np.ndarray | None) -> np.ndarray:
    """House numbers as positions along the street (numbers placed within their block)."""
    nums = np.asarray(numbers).astype(np.int64)
    if block_pos is None:
        return nums.astype(float)
    return np.asarray((nums - nums % 100) + block_pos[nums % 100])


def parity_side(n: int) -> float:
    """Return +0.5 for odd house numbers, -0.5 for even ones."""
    return 0.5 if n % 2 else -0.5


def side_separation(
    runs: Sequence[Run], min_pairs: int, *, by_zip: bool = True
) -> dict[str, float]:
    """Signed distance from even to odd numbers, left of the way numbers grow, by predir.

    Measured on close pairs (within 60 numbers) of odd and even points of straight runs;
    kept only where the side is consistent (in Los Angeles odd numbers stand on the west
    side of north-south streets and the north side of east-west ones, about 30 m
    across) and at least ``min_pairs`` pairs were seen. Pairs are weighted by their
    run's ZIP (:func:`group_weights`): a densely mapped area does not set the side
    distance of the whole city.

    Parameters
    ----------
    runs : sequence of Run
        The runs of the reference.
    min_pairs : int
        Pairs needed per pre-direction.
    by_zip : bool
        Weight pairs by ZIP (else every pair counts the same).

    Returns
    -------
    dict of str to float
        Pre-direction -> metres (positive: odd numbers on the left).
    """
    by_dir: dict[str, list[float]] = defaultdict(list)
    zips_of: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        n = run.numbers
        if len(n) < 3 or len(np.unique(n % 2)) < 2:
            continue
        xy = np.column_stack([run.xs, run.ys])
        u = xy - xy.mean(axis=0)
        _, vecs = np.linalg.eigh(u.T @ u)
        d = vecs[:, 1]
        along = u @ d
        if np.std(along) == 0 or np.std(n) == 0:
            continue
        r = float(np.corrcoef(along, n)[0, 1])
        if abs(r) < 0.9:
            continue  # not a straight, consistently numbered stretch
        d = d if r > 0 else -d
        side = u @ np.array([-d[1], d[0]])
        odd = n % 2 == 1
        close = np.abs(n[odd][:, None] - n[~odd][None, :]) <= 60
        diffs = (side[odd][:, None] - side[~odd][None, :])[close]
        by_dir[run.predir].extend(float(v) for v in diffs)
        zip_of_run = max(set(run.zips), key=run.zips.count)
        zips_of[run.predir].extend([zip_of_run] * len(diffs))
    out: dict[str, float] = {}
    for predir, vals in by_dir.items():
        arr = np.asarray(vals)
        if len(arr) < min_pairs:
            continue
        w = group_weights(zips_of[predir]) if by_zip else np.ones(len(arr))
        med = _weighted_median(arr, w)
        same_side = float(np.sum(w * (np.sign(arr) == np.sign(med))) / np.sum(w))
        if same_side >= 0.75 and 10.0 <= abs(med) <= 60.0:
            out[predir] = med
    return out


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Return the median of ``values`` with ``weights`` (all equal: the plain median)."""
    if np.all(weights == weights[0]):
        return float(np.median(values))
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    half = cum[-1] / 2.0
    i = int(np.searchsorted(cum, half))
    if i < len(cum) - 1 and np.isclose(cum[i], half):
        return float((values[order][i] + values[order][i + 1]) / 2.0)
    return float(values[order][i])
