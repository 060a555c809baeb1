"""Offline forward, reverse and batch geocoding against an :class:`AddressReference`.

Forward geocoding parses the text (:mod:`geo.address`), resolves the street name (exact,
aliases, then one- or two-edit typos with rapidfuzz, guarded by the ZIP), and locates
the house number on the best matching street run:

* ``point``: the address itself is in the reference;
* ``interpolated``: between the nearest known numbers on that street (placed within
  their blocks and on the query's side of the street), along a centerline address
  range, or a short way past the last known number using the street's (or the
  neighbouring streets') numbers-per-metre gradient,
  or (low confidence) through the divide line from the opposite pre-direction's run
  when the query's side of the street is missing; an explicit pre-direction is never
  answered with another one's house; a numbered street missing near the ZIP
  (``1046 W 37TH ST``) between the same number on the numbered streets either side;
  a street known near the ZIP only by its crossings walked from the nearest one;
* ``intersection``: a known intersection, or where the two streets' fitted lines cross;
* ``block``: the middle of a ``1200 block of`` / ``12XX`` block, or of
  ``X BETWEEN Y AND Z``;
* ``street``: the street is known but not where on it the number lies;
* ``zip``: only the ZIP is known (its centroid, never presented as the house), also when
  the street is known only far outside the query ZIP (the far stretches become
  candidates);
* ``none``: nothing usable.

The :class:`OfflineGeocoder` follows geopy's conventions (``geocode(query,
exactly_one=True)`` and ``reverse(query)`` return :class:`geopy.location.Location` or
``None``) and offers the richer :meth:`OfflineGeocoder.lookup` returning
:class:`GeocodeResult`.  Coordinates are ``lon, lat`` everywhere except inside geopy
objects, whose points are ``(lat, lon)``.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from rapidfuzz import process
from rapidfuzz.distance import OSA
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from geo.address import (
    STREET_TYPES,
    TYPE_LONG_FORM,
    ParsedAddress,
    ParsedStreet,
    _clean_zip,
    _ordinal,
    parse_address,
)
from geo.errors import GeocodeError
from geo.reference import AddressReference, load_reference

if TYPE_CHECKING:
    from geopy.location import Location

__all__ = [
    "HOUSE_LEVEL",
    "Candidate",
    "GeocodeResult",
    "OfflineGeocoder",
    "Precision",
    "describe_method",
    "geocode_frame",
    "summarize_precision",
]


class Precision(StrEnum):
    """How precisely an answer locates the query, best first."""

    POINT = "point"
    INTERPOLATED = "interpolated"
    INTERSECTION = "intersection"
    BLOCK = "block"
    STREET = "street"
    ZIP = "zip"
    NONE = "none"


#: Precisions that locate a house.
HOUSE_LEVEL = frozenset({Precision.POINT, Precision.INTERPOLATED})


@dataclass(frozen=True, slots=True)
class Candidate:
    """One possible location of an ambiguous query."""

    lon: float
    lat: float
    matched_address: str
    precision: Precision
    confidence: float


@dataclass(frozen=True, slots=True)
class GeocodeResult:
    """Answer of :meth:`OfflineGeocoder.lookup`.

    Attributes
    ----------
    query : str
        The text as it came in.
    lon, lat : float or None
        Location (EPSG:4326); both ``None`` when ``precision`` is ``none``.
    precision : Precision
        What the location stands for; low precision is never passed off as a house.
    confidence : float
        0-1; lowered for typos, wrong directionals or types, long interpolations,
        ambiguity.
    matched_address : str
        Canonical address (or street, intersection, ZIP) the answer stands for.
    unit : str
        Unit kept from the query (``APT 4``), ``""`` when none.
    zip : str
        ZIP of the answer, ``""`` when unknown.
    candidates : tuple of Candidate
        All candidates when the query is ambiguous (e.g. the same street name in two
        parts of the city and no ZIP to choose); empty otherwise.
    distance_m : float or None
        For reverse geocoding: distance from the query point to the answer.
    source : str
        ``offline`` or the name of the online provider that answered.
    method : str
        How the location was found: ``exact``, ``between`` (two known numbers),
        ``beyond`` (past the last known number), ``grid`` (walked along the street with
        the local house-number grid), ``across`` (from the opposite pre-direction's run
        through the divide line), ``near-end``, ``centerline``, ``ordinal`` (between
        the numbered streets either side), ``crossing-walk`` (from a known crossing of
        the street along the number field), ``in-block`` (a known number inside a
        queried block), ``known``
        (known intersection), ``crossing`` (street lines), ``between`` (middle of
        ``X BETWEEN Y AND Z``), ``street``, ``zip``.
    """

    query: str
    lon: float | None
    lat: float | None
    precision: Precision
    confidence: float
    matched_address: str = ""
    unit: str = ""
    zip: str = ""
    candidates: tuple[Candidate, ...] = ()
    distance_m: float | None = None
    source: str = "offline"
    method: str = ""

    @property
    def ambiguous(self) -> bool:
        """Whether more than one candidate fits the query."""
        return len(self.candidates) > 1

    @property
    def house_level(self) -> bool:
        """Whether the answer locates a house (``point`` or ``interpolated``)."""
        return self.precision in HOUSE_LEVEL

    def to_location(self) -> Location | None:
        """Return the answer as a :class:`geopy.location.Location` (None if not located)."""
        if self.lon is None or self.lat is None:
            return None
        raw = asdict(self)
        raw["precision"] = str(self.precision)
        raw["candidates"] = [{**asdict(c), "precision": str(c.precision)} for c in self.candidates]
        # (lon, lat) -> (lat, lon): geopy points are (latitude, longitude).
        from geopy.location import Location  # geopy is slow to import: only when asked

        return Location(self.matched_address, (self.lat, self.lon), raw)


def _none(query: str, unit: str = "", zip_code: str = "") -> GeocodeResult:
    return GeocodeResult(query, None, None, Precision.NONE, 0.0, "", unit, zip_code)


class _Projection:
    """Local equirectangular projection in metres around a reference centre."""

    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = lon0, lat0
        self.kx = 111_320.0 * math.cos(math.radians(lat0))
        self.ky = 110_574.0

    def forward(self, lon: Any, lat: Any) -> tuple[Any, Any]:
        return (np.asarray(lon) - self.lon0) * self.kx, (np.asarray(lat) - self.lat0) * self.ky

    def inverse(self, x: float, y: float) -> tuple[float, float]:
        return float(self.lon0 + x / self.kx), float(self.lat0 + y / self.ky)


@dataclass
class _Run:
    """A spatially coherent run of address points on one street (one predir/type)."""

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
    nl: list[int] = field(default_factory=list)  # numbers as Python ints (fast scalar access)
    xl: list[float] = field(default_factory=list)
    yl: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.nl = [int(v) for v in self.numbers]
        self.xl = [float(v) for v in self.xs]
        self.yl = [float(v) for v in self.ys]

    @property
    def label(self) -> str:
        return " ".join(p for p in (self.predir, self.name, self.stype, self.postdir) if p)


@dataclass
class _Centerline:
    predir: str
    name: str
    stype: str
    postdir: str
    ranges: tuple[tuple[int, int, str], ...]  # (from, to, zip) for left and right
    line: shapely.LineString  # in projected metres


@dataclass
class _Located:
    x: float
    y: float
    precision: Precision
    confidence: float
    number: int | None
    zip: str
    method: str


@dataclass(frozen=True)
class _Resolved:
    name: str
    factor: float  # 1 for exact, lower for fuzzy


@dataclass
class _GridModel:
    tree: cKDTree
    xyn: np.ndarray  # x, y, house number of every point with this pre-direction
    block_pos: np.ndarray | None = None  # see _block_positions
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
        self.along = _along_positions(self.by_number[:, 2], self.block_pos)


# Tuning constants (metres, house numbers); chosen on the 2017 evaluation with the
# 2020-only reference (bench/bench_geocode.py), trading coverage against wrong streets.
_MAX_GAP_M = 1500.0  # points of one street farther apart start a new run
_ALIGN = True  # refine grid walks with same numbers on neighbouring streets
_ALIGN_RADIUS_M = 900.0
_ALIGN_BETWEEN = True
_ALIGN_MIN_GAP = 300
_CROSS_ZIP_SLACK_M = 500.0
_LONG_WALK_ZIP_TEST = (3, 2, 800.0)  # (k nearest points, how many in the ZIP, within m)
_CROSS_MAX_REACH_M = 6000.0  # farthest a crossing may lie from either street's points
_FOOT_MAX_M = 400.0  # nearest points of two streets farther apart: no foot-point crossing
_PREDIR_PENALTY = 0.3
_FUZZY_ZIP_REACH_M = 5000.0  # a misspelt street must be known within this of the ZIP
_LIMITED_ACCESS = frozenset({"FWY", "HWY", "EXPY", "TPKE"})
_ZIP_REJECT_M = 3000.0
_MAX_EXTRAPOLATION = 1500
_BEYOND_MAX = 300  # numbers past the last known one along the run's own gradient
_MAX_LONG_WALK = 8000  # only when the walk ends inside the query ZIP
_MAX_LONG_WALK_BLIND = 3000  # the same without the street's own direction
_MAX_BLIND_EXTRAPOLATION = 500  # street direction unknown: assume it follows the grid
_M_PER_NUMBER_MAX = 6.0
_OPPOSITE = {"N": "S", "S": "N", "E": "W", "W": "E"}
_DIRECTION_WORDS = {"N": "NORTH", "S": "SOUTH", "E": "EAST", "W": "WEST"}
# Walks through a divide line (``_across_divide``), chosen on a 2020-only held-out check
# (``holdout_2020`` in bench/bench_geocode.py: one side of each of the 208 streets known
# on both sides hidden): with a query ZIP and n <= 1200 the median error is about 100 m
# and < 3% land over 1 km; without a ZIP 5-18% do, so those stay street level.
_BLOCKS = True  # place numbers within their block by how blocks are really numbered
_NUMBERED_TYPE_PENALTY = 0.6  # leaves a factor below 0.5: never that house
_EXACT_BONUS = 0.1  # an exact address on a run outranks estimates on other runs
_GRAD_CELL_M = 200.0  # number-field fits shared by queries in one cell (see _number_gradient)
_SIDE = True  # put estimates on their parity's side of the street
_SIDE_MIN_PAIRS = 30
_CROSSING_WALK_MAX = 1500  # numbers walked from a known intersection (street direction known)
# Numbered streets located from their numbered neighbours (``_ordinal``); chosen on the
# ``numbered`` and ``points`` held-out checks of the 2020 extract (bench/bench_geocode.py)
_ORDINAL_REACH = 3  # neighbours looked for up to this many names away on each side
_ORDINAL_FROM = frozenset(
    {"exact", "between", "beyond", "grid", "grid-blind", "near-end", "centerline"}
)
_ORDINAL_OVER = frozenset({"across", "across-blind", "grid-long"})  # methods they beat
_ORDINAL_SPACING_M = (40.0, 450.0)  # plausible distance between consecutive names
_ORDINAL_CONFIDENCE = 0.55
_ORDINAL_ZIP_TEST = (3, 1, 800.0)
_MAX_ACROSS = 3000  # numbers walked in all (run's lowest number + n)
_MAX_ACROSS_NUMBER = 1200  # largest query number walked to


class OfflineGeocoder:
    """Offline geocoder over an :class:`AddressReference`; a geopy-style drop-in.

    Parameters
    ----------
    reference : AddressReference
        Address points, intersections, optional centerlines.
    default_zip : str, optional
        ZIP assumed when a query carries none (rarely useful; default none).
    cache_size : int
        How many distinct queries :meth:`lookup` remembers.
    long_walks : bool
        Allow long walks along the house-number grid (method ``grid-long``, confidence
        0.3, kept only when they end among reference points of the query ZIP). They add
        house-level answers at a higher error (per-method figures in
        ``docs/benchmarks.md``); set False where only confident house answers are wanted.
    """

    def __init__(
        self,
        reference: AddressReference,
        *,
        default_zip: str = "",
        cache_size: int = 200_000,
        long_walks: bool = True,
    ) -> None:
        if not isinstance(reference, AddressReference):
            raise GeocodeError(
                f"OfflineGeocoder needs an AddressReference; got {type(reference).__name__}"
            )
        n_lines = 0 if reference.centerlines is None else len(reference.centerlines)
        if len(reference.points) == 0 and len(reference.intersections) == 0 and n_lines == 0:
            raise GeocodeError(f"address reference {reference.city!r} has no points")
        self.reference = reference
        self.default_zip = default_zip
        self.long_walks = long_walks
        self._build()
        self._lookup_cached = lru_cache(maxsize=cache_size)(self._lookup_uncached)
        self._resolve_cached = lru_cache(maxsize=100_000)(self._resolve_uncached)

    @classmethod
    def from_path(cls, path: Path | str) -> OfflineGeocoder:
        """Load a saved reference (file path or shipped city key) and index it."""
        return cls(load_reference(path))

    # ------------------------------------------------------------------ index
    def _build(self) -> None:
        ref = self.reference
        pts = ref.points
        lons = [pts["lon"].to_numpy(float), ref.intersections["lon"].to_numpy(float)]
        lats = [pts["lat"].to_numpy(float), ref.intersections["lat"].to_numpy(float)]
        if ref.centerlines is not None and len(ref.centerlines):
            mids = ref.centerlines.geometry.representative_point()
            lons.append(mids.x.to_numpy(float))
            lats.append(mids.y.to_numpy(float))
        lon_all, lat_all = np.concatenate(lons), np.concatenate(lats)
        self.proj = _Projection(float(np.median(lon_all)), float(np.median(lat_all)))
        x, y = self.proj.forward(pts["lon"].to_numpy(float), pts["lat"].to_numpy(float))
        self._px, self._py = np.asarray(x, float), np.asarray(y, float)
        self._pnum = pts["number"].to_numpy(np.int64)
        labels = (
            (pts["predir"] + " " + pts["name"] + " " + pts["street_type"] + " " + pts["postdir"])
            .str.split()
            .str.join(" ")
        )
        self._plabel = labels.to_numpy(dtype=object)
        self._pzip = pts["zip"].to_numpy(dtype=object)
        self._tree = cKDTree(np.column_stack([self._px, self._py])) if len(pts) else None

        self.runs: list[_Run] = []
        self.by_name: dict[str, list[_Run]] = defaultdict(list)
        groups: dict[tuple[str, str, str, str], np.ndarray] = {
            _key4(k): np.asarray(v)
            for k, v in pts.groupby(
                ["predir", "name", "street_type", "postdir"], sort=False
            ).indices.items()
        }
        comp_label = self._components(groups)
        for (pre, name, stype, post), idx in groups.items():
            for comp in self._split_runs(np.asarray(idx), comp_label):
                order = comp[np.argsort(self._pnum[comp], kind="stable")]
                zips = [str(z) for z in self._pzip[order]]
                run = _Run(
                    rid=len(self.runs),
                    predir=pre,
                    name=name,
                    stype=stype,
                    postdir=post,
                    numbers=self._pnum[order],
                    xs=self._px[order],
                    ys=self._py[order],
                    zips=zips,
                    zipset=frozenset(z for z in zips if z),
                    cx=float(np.mean(self._px[order])),
                    cy=float(np.mean(self._py[order])),
                )
                self.runs.append(run)
                self.by_name[name].append(run)

        self._side_m = _side_separation(self.runs) if _SIDE else {}
        self._block_pos = _block_positions(self._pnum) if _BLOCKS else None
        self._end_cache: dict[tuple[int, int], tuple[float, float] | None] = {}
        self._zip_gap: dict[tuple[int, str], float] = {}  # run's distance beyond a ZIP

        # house-number field per pre-direction: LA numbers follow a city-wide grid
        self._grid: dict[str, _GridModel] = {}
        self._grad_cache: dict[tuple[str, int, int], tuple[float, float] | None] = {}
        for dir_key, raw_idx in pts.groupby("predir", sort=False).indices.items():
            if len(raw_idx) >= 8:
                ii = np.asarray(raw_idx)
                self._grid[str(dir_key)] = _GridModel(
                    cKDTree(np.column_stack([self._px[ii], self._py[ii]])),
                    np.column_stack([self._px[ii], self._py[ii], self._pnum[ii]]).astype(float),
                    self._block_pos,
                )

        # ZIP centroids and extents
        self.zip_centroid: dict[str, tuple[float, float, float]] = {}
        for z, raw_idx in pts.groupby("zip", sort=False).indices.items():
            if not z:
                continue
            idx = np.asarray(raw_idx)
            zx, zy = float(np.median(self._px[idx])), float(np.median(self._py[idx]))
            radius = float(np.percentile(np.hypot(self._px[idx] - zx, self._py[idx] - zy), 90))
            self.zip_centroid[str(z)] = (zx, zy, max(radius, 500.0))

        # known intersections and street shape points they add
        self.known_inter: dict[frozenset[str], list[tuple[str, str, str, float, float]]] = (
            defaultdict(list)
        )
        self.extra_xy: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
        inter = ref.intersections
        if len(inter):
            ix, iy = self.proj.forward(inter["lon"].to_numpy(float), inter["lat"].to_numpy(float))
            cols = [inter[c].astype(str).tolist() for c in ("name_a", "type_a", "name_b", "type_b")]
            zips = inter["zip"].astype(str).tolist()
            for na, ta, nb, tb, z, xx, yy in zip(*cols, zips, ix, iy, strict=True):
                self.known_inter[frozenset((na, nb))].append((ta, tb, z, float(xx), float(yy)))
                self.extra_xy[na].append((float(xx), float(yy), ta))
                self.extra_xy[nb].append((float(xx), float(yy), tb))

        # centerlines with address ranges
        self.centerlines: dict[str, list[_Centerline]] = defaultdict(list)
        if ref.centerlines is not None:
            for row in ref.centerlines.itertuples(index=False):
                coords = np.asarray(row.geometry.coords)
                cx, cy = self.proj.forward(coords[:, 0], coords[:, 1])
                ranges = []
                for fr, to, z in (
                    (row.from_left, row.to_left, row.zip_left),
                    (row.from_right, row.to_right, row.zip_right),
                ):
                    if pd.notna(fr) and pd.notna(to):
                        ranges.append((int(fr), int(to), str(z or "")))
                self.centerlines[row.name].append(
                    _Centerline(
                        row.predir,
                        row.name,
                        row.street_type,
                        row.postdir,
                        tuple(ranges),
                        shapely.LineString(np.column_stack([cx, cy])),
                    )
                )

        self.names: list[str] = sorted(
            set(self.by_name) | set(self.extra_xy) | set(self.centerlines)
        )
        self._known = frozenset(self.names)
        self._fuzzy_names = [n for n in self.names if not any(ch.isdigit() for ch in n)]
        self._pools: dict[tuple[str, int, int], list[str]] = {}
        self._names_by_len: dict[int, list[str]] = defaultdict(list)
        for nm in self._fuzzy_names:
            self._names_by_len[len(nm)].append(nm)
        self._dir_cache: dict[tuple[int, int], tuple[float, float] | None] = {}
        self._xy_cache: dict[tuple[str, str], np.ndarray] = {}
        self.aliases = dict(ref.aliases)

    def _components(self, groups: dict[tuple[str, str, str, str], np.ndarray]) -> np.ndarray:
        """Label points connected (< _MAX_GAP_M) to a point of the same street."""
        n = len(self._px)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        code = np.empty(n, dtype=np.int64)
        for g, idx in enumerate(groups.values()):
            code[idx] = g
        pairs = cKDTree(np.column_stack([self._px, self._py])).query_pairs(
            _MAX_GAP_M, output_type="ndarray"
        )
        pairs = pairs[code[pairs[:, 0]] == code[pairs[:, 1]]] if len(pairs) else pairs
        graph = coo_matrix(
            (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1]) if len(pairs) else ([], [])),
            shape=(n, n),
        )
        _, labels = connected_components(graph, directed=False)
        return np.asarray(labels, dtype=np.int64)

    def _split_runs(self, idx: np.ndarray, comp_label: np.ndarray) -> list[np.ndarray]:
        """Split one street's points into spatially coherent runs."""
        if len(idx) <= 1:
            return [idx]
        lab = comp_label[idx]
        uniq = np.unique(lab)
        if len(uniq) == 1:
            return [idx]
        xy = np.column_stack([self._px[idx], self._py[idx]])
        comps = [np.flatnonzero(lab == u) for u in uniq]
        # merge components whose number ranges follow on at a plausible distance
        nums = self._pnum[idx]
        comps.sort(key=lambda c: int(nums[c].min()))
        merged: list[np.ndarray] = [comps[0]]
        for comp in comps[1:]:
            last = merged[-1]
            hi_i = last[np.argmax(nums[last])]
            lo_i = comp[np.argmin(nums[comp])]
            dn = int(nums[lo_i] - nums[hi_i])
            dist = float(np.hypot(*(xy[lo_i] - xy[hi_i])))
            if dn > 0 and dist <= 300.0 + _M_PER_NUMBER_MAX * dn:
                merged[-1] = np.concatenate([last, comp])
            else:
                merged.append(comp)
        return [idx[c] for c in merged]

    @staticmethod
    def _fit_gradient(
        numbers: np.ndarray, xs: np.ndarray, ys: np.ndarray
    ) -> tuple[float, float] | None:
        """Least-squares metres per house number along a run, or None if unreliable."""
        if len(numbers) < 2 or int(numbers.max() - numbers.min()) < 60:
            return None
        n = numbers.astype(float) - numbers.mean()
        denom = float(n @ n)
        gx = float(n @ (xs - xs.mean())) / denom
        gy = float(n @ (ys - ys.mean())) / denom
        if not 0.2 <= math.hypot(gx, gy) <= _M_PER_NUMBER_MAX:
            return None
        return gx, gy

    # ------------------------------------------------------------ resolution
    def _resolve(self, street: ParsedStreet, zip_code: str) -> tuple[_Resolved, ...]:
        return self._resolve_cached(street.name, street.type_word, zip_code)

    def _resolve_uncached(self, name: str, type_word: str, zip_code: str) -> tuple[_Resolved, ...]:
        """Street names a typed name may stand for: exact, aliases, then typos."""
        known = self._known
        out: list[_Resolved] = []
        if name in known:
            out.append(_Resolved(name, 1.0))
        if type_word:
            # the "type" belonged to the name: LAUREL CANYON typed LAUREL CANYN or CYN
            long_form = TYPE_LONG_FORM.get(STREET_TYPES.get(type_word, ""), type_word)
            for word in (type_word,) if long_form == type_word else (type_word, long_form):
                joined = f"{name} {word}"
                if joined in known and all(r.name != joined for r in out):
                    out.append(_Resolved(joined, 0.95 if out else 1.0))
        for alt in (self.aliases.get(name), self.aliases.get(name.replace(" ", ""))):
            if alt and alt in known and all(r.name != alt for r in out):
                out.append(_Resolved(alt, 0.98))
        if out or not name or any(ch.isdigit() for ch in name):
            return tuple(out)
        found = self._fuzzy(name, zip_code)
        if type_word:
            # ``LARREL CANYON``: the last word was read as a type but belongs to the name
            found += [r for r in self._fuzzy(f"{name} {type_word}", zip_code)
                      if all(f.name != r.name for f in found)]  # fmt: skip
        if not zip_code and len(found) > 1:
            return ()  # several equally close spellings and no ZIP to choose: no guess
        return tuple(found)

    def _fuzzy(self, name: str, zip_code: str) -> list[_Resolved]:
        """Known names one or two typos from ``name`` (and near the ZIP when given)."""
        # one edit for names of 5-7 letters (4 when a ZIP confirms), two from 8 letters
        short_ok = len(name) == 4 and bool(zip_code)
        max_edits = 0 if len(name) < 5 and not short_ok else 1 if len(name) < 8 else 2
        if max_edits == 0:
            return []
        pool = self._fuzzy_pool(name[0], len(name), max_edits)
        hits = process.extract(name, pool, scorer=OSA.distance, score_cutoff=max_edits, limit=8)
        if not hits:
            return []
        best = min(h[1] for h in hits)
        found = []
        for cand, dist, _ in hits:
            if dist > best or abs(len(cand) - len(name)) > max_edits:
                continue
            reach = 0.0 if len(name) < 5 else _FUZZY_ZIP_REACH_M
            if zip_code and not self._name_near_zip(cand, zip_code, reach):
                continue
            found.append(_Resolved(cand, 0.9 - 0.08 * (dist - 1)))
        return found

    def _fuzzy_pool(self, first: str, length: int, max_edits: int) -> list[str]:
        """Known names (no digits) starting with ``first``, length within ``max_edits``.

        Typos are searched among names with the same first letter: people rarely get the
        first letter wrong, and it makes the search about twenty times cheaper.
        """
        key = (first, length, max_edits)
        pool = self._pools.get(key)
        if pool is None:
            pool = [
                c
                for k in range(length - max_edits, length + max_edits + 1)
                for c in self._names_by_len.get(k, ())
                if c[0] == first
            ]
            self._pools[key] = pool
        return pool

    def _name_near_zip(self, name: str, zip_code: str, reach: float) -> bool:
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

    # ------------------------------------------------------------- forward
    def lookup(self, query: object, zip_code: object = None) -> GeocodeResult:
        """Geocode one free-text query into a :class:`GeocodeResult`.

        Parameters
        ----------
        query : object
            Address text; anything else (None, NaN, numbers) gives precision ``none``.
        zip_code : object, optional
            ZIP from a separate field, used when the text has none.

        Returns
        -------
        GeocodeResult
            Never raises on bad text.
        """
        text = query if isinstance(query, str) else ""
        z = zip_code if zip_code is not None else self.default_zip
        return self._lookup_cached(text, _clean_zip(z))

    def _lookup_uncached(self, text: str, zip_code: str) -> GeocodeResult:
        p = parse_address(text, zip_code)
        street = self._directional_name(p.street)
        if street is not p.street:
            p = replace(p, street=street)
        if p.kind == "intersection":
            res = self._intersection(p)
        elif p.kind == "between":
            res = self._between(p)
        elif p.kind in ("address", "block") and p.number is not None:
            res = self._address(p)
            if (
                res is None
                or res.precision not in HOUSE_LEVEL
                or res.method in _ORDINAL_OVER
                # no pre-direction and an answer outside the ZIP: maybe the other side
                or (not p.street.predir and res.zip != p.zip)
            ):
                res = self._ordinal(p) or res
        elif p.kind == "street":
            res = self._street_only(p)
        else:
            res = None
        if res is None:
            return self._zip_fallback(p)
        return res

    def _directional_name(self, street: ParsedStreet) -> ParsedStreet:
        """``WEST BOULEVARD`` read as W + BOULEVARD: West Blvd when only that is known.

        The parser takes a leading directional as the pre-direction; when what is left is
        a street type that names no known street, and the directional spelled out does
        (``WEST``), the directional was the name.
        """
        if not street.predir or street.street_type or street.name not in STREET_TYPES:
            return street
        if street.name in self._known:
            return street  # W COURT: Court St with its type dropped
        word = _DIRECTION_WORDS.get(street.predir, "")
        if word not in self._known:
            return street
        return ParsedStreet("", word, STREET_TYPES[street.name], street.postdir, street.name)

    def _result(
        self,
        p: ParsedAddress,
        x: float,
        y: float,
        precision: Precision,
        confidence: float,
        matched: str,
        zip_code: str,
        candidates: tuple[Candidate, ...] = (),
        method: str = "",
    ) -> GeocodeResult:
        lon, lat = self.proj.inverse(x, y)
        conf = float(min(1.0, max(0.0, confidence)))
        return GeocodeResult(
            p.raw,
            lon,
            lat,
            precision,
            round(conf, 3),
            matched,
            p.unit,
            zip_code,
            candidates,
            method=method,
        )

    def _zip_fallback(self, p: ParsedAddress) -> GeocodeResult:
        zc = self.zip_centroid.get(p.zip)
        if zc is None:
            return _none(p.raw, p.unit, p.zip)
        return self._result(p, zc[0], zc[1], Precision.ZIP, 0.1, f"ZIP {p.zip}", p.zip, (), "zip")

    def _candidate_runs(
        self, p: ParsedAddress, street: ParsedStreet, *, run_zip: bool = True
    ) -> list[tuple[_Run, float]]:
        out: list[tuple[_Run, float]] = []
        for res in self._resolve(street, p.zip):
            for run in self.by_name.get(res.name, []):
                s = res.factor
                if street.street_type and run.stype != street.street_type:
                    # ``ECHO PARK`` read as name+type: the type was part of the name;
                    # numbered streets of another type are other streets (37TH ST, PL, DR)
                    s -= (
                        0.02 if res.name.endswith(street.type_word)
                        else _NUMBERED_TYPE_PENALTY if _ORDINAL_NAME.match(res.name)
                        else 0.15
                    )  # fmt: skip
                if street.predir and run.predir != street.predir:
                    s -= _PREDIR_PENALTY if run.predir else 0.05
                if street.postdir and run.postdir != street.postdir:
                    s -= 0.2
                if p.zip and run_zip:
                    if p.zip in run.zipset:
                        s += 0.1
                    elif not self._run_near_zip(run, p.zip):
                        s -= 0.3
                out.append((run, s))
        return out

    def _zip_agreement(self, loc: _Located, zip_code: str) -> float | None:
        """Score bonus (+) or penalty (-) for how well a location fits the query ZIP.

        None when the location lies far outside the ZIP (another part of the city).
        """
        if loc.zip == zip_code:
            return 0.1
        zc = self.zip_centroid.get(zip_code)
        if zc is None:
            return 0.0
        d = math.hypot(loc.x - zc[0], loc.y - zc[1])
        if d <= zc[2]:
            return 0.05
        if d <= zc[2] + 1000.0:
            return 0.0
        if d > zc[2] + _ZIP_REJECT_M:
            return None
        return -0.3

    def _zip_near_xy(
        self, x: float, y: float, zip_code: str, k: int = 3, need: int = 1, max_m: float = 800.0
    ) -> bool:
        """Whether ``need`` of the ``k`` reference points nearest (x, y) carry ``zip_code``."""
        if self._tree is None:
            return False
        k = min(k, len(self._pzip))
        _, idx = self._tree.query((x, y), k=k, distance_upper_bound=max_m)
        # missing neighbours (beyond max_m) come back as index n
        pzip = self._pzip
        n = len(pzip)
        hits = sum(1 for i in np.atleast_1d(idx).tolist() if i < n and pzip[i] == zip_code)
        return hits >= need

    def _run_near_zip(self, run: _Run, zip_code: str, slack_m: float = 1000.0) -> bool:
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

    def _far_street_zip(
        self, p: ParsedAddress, runs: list[tuple[_Run, float]], zc: tuple[float, float, float]
    ) -> GeocodeResult:
        """ZIP-level answer for a street known only far from the query ZIP."""
        zx, zy, _ = zc
        conf = 0.1
        cands = [Candidate(*self.proj.inverse(zx, zy), f"ZIP {p.zip}", Precision.ZIP, conf)]
        ranked = sorted(runs, key=lambda t: (-t[1], -len(t[0].numbers)))
        for run, _ in ranked[:9]:
            x, y, z = self._medoid(run)
            label = run.label + (f", {z}" if z else "")
            cands.append(Candidate(*self.proj.inverse(x, y), label, Precision.STREET, 0.05))
        return self._result(
            p, zx, zy, Precision.ZIP, conf, f"ZIP {p.zip}", p.zip, tuple(cands), "zip"
        )

    def _address(self, p: ParsedAddress) -> GeocodeResult | None:
        assert p.number is not None
        number = p.number + 50 if p.kind == "block" else p.number
        runs = self._candidate_runs(p, p.street, run_zip=False)
        predir = p.street.predir
        # a run of the query's pre-direction counts only where the query ZIP is
        has_own_predir = any(
            r.predir == predir and (not p.zip or self._run_near_zip(r, p.zip, _ZIP_REJECT_M))
            for r, _ in runs
        )
        if len(runs) > 1:  # runs that cannot win are not worth locating
            top = max(s for _, s in runs)
            runs = [(r, s) for r, s in runs if s >= top - 0.3]
        # (ranking score, confidence factor, run, location)
        scored: list[tuple[float, float, _Run, _Located]] = []
        for run, s in runs:
            other_dir = bool(predir and run.predir and run.predir != predir)
            if other_dir:
                # Another pre-direction is another stretch of the street (1400 N and
                # 1400 S lie ~2 * 1400 numbers apart), even inside the query ZIP: never
                # this house. Without any run of the query's pre-direction, walk through
                # the divide line (low confidence); else street level at the run's end
                # nearest the divide.
                loc = None
                if (
                    p.zip
                    and not has_own_predir
                    and _OPPOSITE.get(run.predir) == predir
                    and number <= _MAX_ACROSS_NUMBER
                ):
                    loc = self._across_divide(run, number, predir)
                    if loc is not None and not self._zip_near_xy(
                        loc.x, loc.y, p.zip, *_LONG_WALK_ZIP_TEST
                    ):
                        loc = None
                    elif loc is not None:
                        loc.zip = p.zip
                if loc is None:
                    loc = _Located(
                        run.xl[0], run.yl[0], Precision.STREET, 0.2, None, run.zips[0], "street"
                    )
            else:
                loc = self._locate(run, number, p.zip)
                if p.kind == "block" and (loc is None or loc.precision not in HOUSE_LEVEL):
                    loc = self._in_block(run, number) or loc
            if loc is None:
                continue
            inside = int(run.numbers[0]) - 100 <= number <= int(run.numbers[-1]) + 100
            score = s + (0.1 if inside and not other_dir else 0.0) + 0.05 * loc.confidence
            if loc.precision is Precision.POINT:
                score += _EXACT_BONUS  # the address itself is known on this run
            factor = s
            if p.zip:
                agreement = self._zip_agreement(loc, p.zip)
                if agreement is None:
                    continue  # far outside the query ZIP: another street of that name
                if loc.method == "grid-long" and not self._zip_near_xy(
                    loc.x, loc.y, p.zip, *_LONG_WALK_ZIP_TEST
                ):
                    continue
                score += agreement
                factor += min(0.0, agreement)
                if (
                    not predir
                    and inside
                    and agreement <= 0.0
                    and loc.precision is not Precision.POINT
                ):
                    score -= 0.1  # a known number range elsewhere is no evidence here
            if other_dir:
                score -= 0.2
            scored.append((score, factor, run, loc))
        cl = self._centerline_locate(p, number)
        if cl is not None and (
            not scored or max(scored, key=lambda t: t[0])[3].precision is not Precision.POINT
        ):
            run_cl, loc_cl, s_cl = cl
            scored.append((s_cl + 0.15, s_cl, run_cl, loc_cl))
        if not scored:
            return self._from_crossings(p, number) or self._street_only(p)
        scored.sort(key=lambda t: -t[0])
        best_score, best_factor, best_run, best = scored[0]
        candidates: tuple[Candidate, ...] = ()
        conf = best.confidence * max(0.0, min(1.0, best_factor))
        rivals = [
            t for t in scored[1:]
            if best_score - t[0] < 0.1
            and math.hypot(t[3].x - best.x, t[3].y - best.y) > 1000.0
        ]  # fmt: skip
        if rivals:
            candidates = tuple(
                self._candidate(number, run, loc) for _, _, run, loc in [scored[0], *rivals]
            )
            conf *= 0.5
        precision = best.precision
        if p.kind == "block" and precision in HOUSE_LEVEL:
            precision = Precision.BLOCK
        if best_factor < 0.5 and precision in HOUSE_LEVEL:
            precision = Precision.STREET  # wrong directional and ZIP: do not claim the house
            conf = min(conf, 0.3)
        shown = p.number if p.kind != "block" and precision in HOUSE_LEVEL else None
        matched = self._format(shown, best_run, best.zip, p, best.method)
        return self._result(
            p, best.x, best.y, precision, conf, matched, best.zip, candidates, best.method
        )

    def _from_crossings(self, p: ParsedAddress, number: int) -> GeocodeResult | None:
        """Walk to the house from known intersections of the street near the query ZIP.

        For a street known near the ZIP only where it crosses others (``X AT Y`` rows):
        the house number at each crossing is read off the local number field of the
        query's pre-direction (a plane fit of nearby numbers), and the walk goes the
        remaining numbers along the street (its fitted line, else the field's gradient).
        Method ``crossing-walk``; needs a pre-direction and a ZIP.
        """
        predir = p.street.predir
        model = self._grid.get(predir)
        zc = self.zip_centroid.get(p.zip) if p.zip else None
        if model is None or zc is None or p.kind not in ("address", "block"):
            return None
        zx, zy, rad = zc
        best: tuple[float, float, float, tuple[float, float] | None, str] | None = None
        for res in self._resolve(p.street, p.zip):
            stype = p.street.street_type
            xy = self._street_xy(res.name, stype)
            for ax, ay, t in self.extra_xy.get(res.name, []):
                if stype and t not in ("", stype):
                    continue
                if math.hypot(ax - zx, ay - zy) > rad + _CROSS_ZIP_SLACK_M:
                    continue
                coef = _plane_fit(model, ax, ay)
                if coef is None:
                    continue
                dn = number - float(coef[0])
                if best is None or abs(dn) < abs(best[0]):
                    line = _fit_line(xy, np.array([ax, ay]), 1500.0) if len(xy) >= 2 else None
                    direction = None if line is None else (float(line[1][0]), float(line[1][1]))
                    best = (dn, ax, ay, direction, res.name)
        if best is None:
            return None
        dn, ax, ay, direction, name = best
        limit = _CROSSING_WALK_MAX if direction is not None else _MAX_BLIND_EXTRAPOLATION
        if abs(dn) > limit:
            return None
        walked = self._walk(predir, ax, ay, direction, dn, number if _ALIGN else None)
        if walked is None:
            return None
        # from the crossing (the middle of the street) to the house's side
        x, y = self._to_side(predir, number, 0.0, walked[0], walked[1], None)
        if not self._zip_near_xy(x, y, p.zip, *_LONG_WALK_ZIP_TEST):
            return None
        conf = (0.45 if direction is not None else 0.3) - 0.15 * abs(dn) / limit
        block = p.kind == "block"
        precision = Precision.BLOCK if block else Precision.INTERPOLATED
        label = " ".join(v for v in (predir, name, p.street.street_type, p.street.postdir) if v)
        matched = _format_label(None if block else p.number, label, p.zip, p)
        return self._result(p, x, y, precision, conf, matched, p.zip, (), "crossing-walk")

    def _ordinal(self, p: ParsedAddress) -> GeocodeResult | None:
        """Locate a house on a numbered street from the numbered streets either side.

        LA's numbered streets (``W 37TH ST``, ``AVENUE 58``) run parallel in order, so
        ``1046 W 37TH ST`` lies between ``1046 W 36TH ST`` and ``1046 W 38TH ST``; used
        when the street itself is unknown near the query ZIP. Both neighbours (up to
        :data:`_ORDINAL_REACH` names away) must be located at house level near the ZIP,
        a plausible block spacing apart, across (not along) the streets. Method
        ``ordinal``; ZIP required, since the same numbers repeat in other districts.
        Without a pre-direction the neighbours near the ZIP decide the side of the
        divide, at a lower confidence; it is also tried when an answer on another
        stretch of the name falls outside the query ZIP.
        """
        assert p.number is not None
        parts = _ordinal_parts(p.street.name)
        if parts is None or not p.zip:
            return None
        value, make = parts
        number = p.number + 50 if p.kind == "block" else p.number

        def nearest(step: int) -> tuple[int, float, float, float] | None:
            """(names away, x, y, confidence) of the nearest neighbour found on one side."""
            for k in range(1, _ORDINAL_REACH + 1):
                v = value + step * k
                if v < 1:
                    return None
                street = ParsedStreet(
                    p.street.predir, make(v), p.street.street_type, p.street.postdir,
                    p.street.type_word,
                )  # fmt: skip
                q = ParsedAddress(p.raw, "address", number, "", street, None, "", p.zip, p.city)
                r = self._address(q)
                if r is None or r.candidates or r.method not in _ORDINAL_FROM:
                    continue
                nx, ny = self.proj.forward(r.lon, r.lat)
                return step * k, float(nx), float(ny), r.confidence
            return None

        lower = nearest(-1)
        upper = nearest(1) if lower is not None else None
        if lower is None or upper is None:
            return None  # one side only: extrapolating adds little and errs more
        (ka, ax, ay, ca), (kb, bx, by, cb) = lower, upper
        gap = math.hypot(bx - ax, by - ay)
        spacing = gap / (kb - ka)
        if not _ORDINAL_SPACING_M[0] <= spacing <= _ORDINAL_SPACING_M[1]:
            return None
        g = self._number_gradient(p.street.predir, ax, ay) if p.street.predir else None
        if g is not None:
            # the step between the two neighbours must run across the numbering
            cos = abs(g[0] * (bx - ax) + g[1] * (by - ay)) / (math.hypot(*g) * gap)
            if cos > 0.5:
                return None
        t = -ka / (kb - ka)  # the query's name sits at 0 between ka < 0 < kb
        x, y = ax + t * (bx - ax), ay + t * (by - ay)
        if not self._zip_near_xy(x, y, p.zip, *_ORDINAL_ZIP_TEST):
            return None
        conf = min(_ORDINAL_CONFIDENCE, _ORDINAL_CONFIDENCE * min(ca, cb) / 0.9)
        conf *= 1.0 if abs(ka) == abs(kb) == 1 else 0.8
        if not p.street.predir:
            conf *= 0.8  # which side of the divide rests on the ZIP alone
        block = p.kind == "block"
        precision = Precision.BLOCK if block else Precision.INTERPOLATED
        matched = _format_label(None if block else p.number, p.street.full, p.zip, p)
        return self._result(p, x, y, precision, conf, matched, p.zip, (), "ordinal")

    def _candidate(self, number: int, run: _Run, loc: _Located) -> Candidate:
        lon, lat = self.proj.inverse(loc.x, loc.y)
        label = f"{number} {run.label}" + (f", {loc.zip}" if loc.zip else "")
        return Candidate(lon, lat, label, loc.precision, round(loc.confidence, 3))

    @staticmethod
    def _format(
        number: int | None, run: _Run, zip_code: str, p: ParsedAddress, method: str = ""
    ) -> str:
        label = run.label
        if method.startswith("across"):  # the query's side of the divide, not the run's
            parts = (p.street.predir, run.name, run.stype, run.postdir)
            label = " ".join(x for x in parts if x)
        return _format_label(number, label, zip_code, p)

    def _locate(self, run: _Run, n: int, zip_code: str) -> _Located | None:
        nums = run.nl
        i = bisect.bisect_left(nums, n)
        j = bisect.bisect_right(nums, n)
        if j > i:  # exact number(s)
            k = i
            for m in range(i, j):
                if run.zips[m] == zip_code:
                    k = m
                    break
            return _Located(run.xl[k], run.yl[k], Precision.POINT, 1.0, n, run.zips[k], "exact")
        # with a side-of-street model the nearest numbers are best (their side is
        # corrected); without one, numbers of the query's parity stand on its side
        same_parity = run.predir not in self._side_m
        lo = self._neighbour(nums, i - 1, -1, n, same_parity)
        hi = self._neighbour(nums, i, 1, n, same_parity)
        if lo is not None and hi is not None:
            n_lo, n_hi = nums[lo], nums[hi]
            u_lo, u_hi = self._along(n_lo), self._along(n_hi)
            t = (self._along(n) - u_lo) / (u_hi - u_lo) if u_hi != u_lo else 0.5
            x = run.xl[lo] + t * (run.xl[hi] - run.xl[lo])
            y = run.yl[lo] + t * (run.yl[hi] - run.yl[lo])
            gap = n_hi - n_lo
            if _ALIGN_BETWEEN and gap >= _ALIGN_MIN_GAP:
                cx, cy = run.xl[hi] - run.xl[lo], run.yl[hi] - run.yl[lo]
                length = math.hypot(cx, cy)
                if length > 50.0:
                    ux, uy = cx / length, cy / length
                    shift = self._align(run.predir, x, y, ux, uy, gap / length, n)
                    if shift is not None:
                        # stay between the two known numbers
                        shift = max(-t * length, min((1.0 - t) * length, shift))
                        x, y = x + ux * shift, y + uy * shift
            conf = 0.92 - 0.35 * min(1.0, gap / 1500.0)
            z = run.zips[lo] if t < 0.5 else run.zips[hi]
            anchor_side = (1.0 - t) * _parity_side(n_lo) + t * _parity_side(n_hi)
            dx_, dy_ = run.xl[hi] - run.xl[lo], run.yl[hi] - run.yl[lo]
            x, y = self._to_side(run.predir, n, anchor_side, x, y, (dx_, dy_))
            return _Located(x, y, Precision.INTERPOLATED, conf, n, z, "between")
        # past one end of the known numbers
        end = 0 if i == 0 else len(nums) - 1
        dn = n - nums[end]
        du = self._along(n) - self._along(nums[end])  # numbers as laid out along blocks
        z_end = run.zips[end]
        local = self._end_gradient(run, end) if abs(dn) <= _BEYOND_MAX else None
        if local is not None:
            x = float(run.xs[end] + local[0] * du)
            y = float(run.ys[end] + local[1] * du)
            x, y = self._to_side(run.predir, n, _parity_side(nums[end]), x, y, local)
            conf = 0.8 - 0.3 * abs(dn) / _BEYOND_MAX
            return _Located(x, y, Precision.INTERPOLATED, conf, n, z_end, "beyond")
        if abs(dn) <= _MAX_LONG_WALK:
            walked = self._grid_walk(run, end, du, n)
            if walked is not None:
                x, y, known_dir = walked
                x, y = self._to_side(run.predir, n, _parity_side(nums[end]), x, y, None)
                limit = _MAX_EXTRAPOLATION if known_dir else _MAX_BLIND_EXTRAPOLATION
                long_limit = _MAX_LONG_WALK if known_dir else _MAX_LONG_WALK_BLIND
                if limit < abs(dn) <= long_limit and zip_code and self.long_walks:
                    # a long walk along the grid; kept only if it lands in the query ZIP
                    return _Located(x, y, Precision.INTERPOLATED, 0.3, n, zip_code, "grid-long")
                if abs(dn) <= limit:
                    conf = (0.7 if known_dir else 0.5) - 0.3 * abs(dn) / limit
                    how = "grid" if known_dir else "grid-blind"
                    return _Located(x, y, Precision.INTERPOLATED, conf, n, z_end, how)
        if abs(dn) <= 20:
            return _Located(
                float(run.xs[end]),
                float(run.ys[end]),
                Precision.INTERPOLATED,
                0.5,
                n,
                z_end,
                "near-end",
            )
        return _Located(
            float(run.xs[end]), float(run.ys[end]), Precision.STREET, 0.25, None, z_end, "street"
        )

    def _along(self, n: int) -> float:
        """House number ``n`` as a position along the street, in numbers.

        Blocks are numbered in hundreds but their houses use the low numbers of each
        hundred (in LA half of them are below ``x28``), so ``n`` is placed within its
        block by the reference's distribution of the last two digits, not linearly.
        """
        if self._block_pos is None:
            return float(n)
        return float(n - n % 100) + float(self._block_pos[n % 100])

    def _to_side(
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
        (learned per pre-direction by :func:`_side_separation`); an estimate made from
        points of the other parity (``anchor_side`` -0.5 even ... +0.5 odd) stands on the
        wrong side. ``ahead`` points towards higher numbers (else the number field's
        gradient is used).
        """
        sep = self._side_m.get(predir)
        shift = _parity_side(n) - anchor_side
        if not sep or abs(shift) < 0.05:
            return x, y
        if ahead is None:
            ahead = self._number_gradient(predir, x, y)
            if ahead is None:
                return x, y
        norm = math.hypot(ahead[0], ahead[1])
        if norm == 0.0:
            return x, y
        # left of the way numbers grow
        lx, ly = -ahead[1] / norm, ahead[0] / norm
        return x + lx * sep * shift, y + ly * sep * shift

    @staticmethod
    def _in_block(run: _Run, middle: int) -> _Located | None:
        """Known numbers of a queried block (``middle`` - 50 .. + 49): their middle point."""
        lo = bisect.bisect_left(run.nl, middle - 50)
        hi = bisect.bisect_left(run.nl, middle + 50)
        if hi <= lo:
            return None
        k = (lo + hi - 1) // 2
        return _Located(
            run.xl[k], run.yl[k], Precision.INTERPOLATED, 0.6, middle, run.zips[k], "in-block"
        )

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

    def _end_gradient(self, run: _Run, end: int) -> tuple[float, float] | None:
        """Metres per number near the run's ``end`` from its own points (cached)."""
        key = (run.rid, end)
        if key in self._end_cache:
            return self._end_cache[key]
        nums = run.numbers
        near = np.flatnonzero(np.abs(nums - nums[end]) <= 400)
        g = None
        if len(near) >= 2:
            g = self._fit_gradient(
                _along_positions(nums[near], self._block_pos), run.xs[near], run.ys[near]
            )
        self._end_cache[key] = g
        return g

    def _number_gradient(self, predir: str, x: float, y: float) -> tuple[float, float] | None:
        """Local house numbers per metre (a plane fit of nearby numbers, same predir).

        Cached per cell of ``_GRAD_CELL_M`` and fitted at the cell's centre, so an answer
        never depends on which query reached the cell first
        (``test_answers_do_not_depend_on_query_order``).
        """
        cx, cy = int(x // _GRAD_CELL_M), int(y // _GRAD_CELL_M)
        key = (predir, cx, cy)
        if key in self._grad_cache:
            return self._grad_cache[key]
        model = self._grid.get(predir)
        gx, gy = (cx + 0.5) * _GRAD_CELL_M, (cy + 0.5) * _GRAD_CELL_M
        arr = _plane_gradient(model, gx, gy) if model is not None and predir else None
        g = None if arr is None else (float(arr[0]), float(arr[1]))
        self._grad_cache[key] = g
        return g

    def _run_direction(self, run: _Run, end: int) -> tuple[float, float] | None:
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

    def _run_direction_uncached(self, run: _Run, end: int) -> tuple[float, float] | None:
        anchor = np.array([run.xs[end], run.ys[end]])
        xy = self._street_xy(run.name, run.stype)
        if len(xy) < 2:
            return None
        line = _fit_line(xy, anchor, 1500.0)
        if line is None:
            return None
        c, d = line
        # the line must pass by the anchor, not a parallel street of the same name
        off = abs(float((anchor - c) @ np.array([-d[1], d[0]])))
        return (float(d[0]), float(d[1])) if off <= 60.0 else None

    def _grid_walk(
        self, run: _Run, end: int, dn: float, n: int
    ) -> tuple[float, float, bool] | None:
        """Walk ``dn`` house numbers from the run's end along the street to number ``n``.

        The street direction comes from the run itself (or the number field when the run
        is a single point); the metres per number from the local number field.
        """
        direction = self._run_direction(run, end)
        align_to = n if _ALIGN else None
        got = self._walk(run.predir, run.xl[end], run.yl[end], direction, dn, align_to)
        if got is None:
            return None
        return got[0], got[1], direction is not None

    def _walk(
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
        lines the end up with that number on nearby streets (see :meth:`_align`).
        """
        remaining = float(dn)
        dx = dy = rate = 0.0
        for _ in range(8):
            g = self._number_gradient(predir, px, py)
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
            shift = self._align(predir, px, py, dx, dy, rate, align_to)
            if shift is not None:
                px += dx * shift
                py += dy * shift
        return px, py, dx, dy

    def _across_divide(self, run: _Run, n: int, predir: str) -> _Located | None:
        """Locate ``n`` of pre-direction ``predir`` from the run of the opposite one.

        ``1400 N GAFFEY`` when the reference only knows ``S GAFFEY``: walk from the run's
        lowest number back to the divide line (``S`` number field), then ``n`` numbers on
        into the ``N`` number field, along the street's direction.  A long extrapolation:
        confidence at most 0.3, method ``across``.
        """
        n0 = run.nl[0]
        if n0 + n > _MAX_ACROSS:
            return None
        direction = self._run_direction(run, 0)
        x0, y0 = run.xl[0], run.yl[0]
        first = self._walk(run.predir, x0, y0, direction, -float(n0), None)
        if first is None:
            return None
        x1, y1 = first[0], first[1]
        second = self._walk(predir, x1, y1, direction, float(n), n if _ALIGN else None)
        if second is None:
            return None
        x2, y2 = second[0], second[1]
        # both legs must go the same way: out of the opposite side, through the divide
        if (x1 - x0) * (x2 - x1) + (y1 - y0) * (y2 - y1) < 0.0:
            return None
        conf = (0.3 if direction is not None else 0.2) - 0.1 * (n0 + n) / _MAX_ACROSS
        how = "across" if direction is not None else "across-blind"
        return _Located(x2, y2, Precision.INTERPOLATED, conf, n, "", how)

    def _align(
        self, predir: str, x: float, y: float, dx: float, dy: float, rate: float, n: int
    ) -> float | None:
        """Shift along (dx, dy) that lines ``n`` up with the same numbers on nearby streets.

        In a city-wide grid, number ``n`` on parallel streets lies on one cross line; the
        median along-street offset of nearby points numbered within 60 of ``n`` (corrected
        by the local metres per number) refines a walked position.
        """
        model = self._grid.get(predir)
        if model is None:
            return None
        # points numbered within 60 of n (a slice of the number-sorted table) near (x, y)
        lo = bisect.bisect_left(model.numbers, n - 60)
        hi = bisect.bisect_right(model.numbers, n + 60)
        if hi - lo < 2:
            return None
        qx = model.bx[lo:hi] - x
        qy = model.by[lo:hi] - y
        near = np.flatnonzero(qx * qx + qy * qy <= _ALIGN_RADIUS_M**2)
        if len(near) < 2:
            return None
        dnum = self._along(n) - model.along[lo:hi][near]
        along = qx[near] * dx + qy[near] * dy + dnum / rate
        shift = float(np.partition(along, len(along) // 2)[len(along) // 2])
        return shift if abs(shift) <= 400.0 else None

    def _centerline_locate(self, p: ParsedAddress, n: int) -> tuple[_Run, _Located, float] | None:
        best: tuple[_Run, _Located, float] | None = None
        for res in self._resolve(p.street, p.zip):
            for cl in self.centerlines.get(res.name, []):
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
                    run = _Run(
                        -1, cl.predir, cl.name, cl.stype, cl.postdir, np.array([n]),
                        np.array([pt.x]), np.array([pt.y]), [z], frozenset({z}), pt.x, pt.y,
                    )  # fmt: skip
                    loc = _Located(pt.x, pt.y, Precision.INTERPOLATED, 0.85, n, z, "centerline")
                    if best is None or s > best[2]:
                        best = (run, loc, s)
        return best

    def _street_only(self, p: ParsedAddress) -> GeocodeResult | None:
        """Street-level answer: the medoid of the best run of the street."""
        runs = self._candidate_runs(p, p.street)
        if not runs:
            return None
        zc = self.zip_centroid.get(p.zip) if p.zip else None
        if zc is not None and not any(self._run_near_zip(r, p.zip, _ZIP_REJECT_M) for r, _ in runs):
            # The street is known only far from the query ZIP (another stretch of that
            # name, or a street missing from the reference there): the ZIP is the honest
            # answer; the far stretches are offered as low-confidence candidates.
            return self._far_street_zip(p, runs, zc)
        runs.sort(key=lambda t: (-t[1], -len(t[0].numbers)))
        run, s = runs[0]
        x, y, zip_code = self._medoid(run)
        conf = 0.3 * max(0.0, min(1.0, s))
        # other stretches of that name far away, as likely as this one: say so
        rivals = []
        for other, s2 in runs[1:]:
            ox, oy, oz = self._medoid(other)
            if s - s2 < 0.1 and math.hypot(ox - x, oy - y) > 2000.0:
                rivals.append((other, ox, oy, oz))
        candidates: tuple[Candidate, ...] = ()
        if rivals:
            conf *= 0.5
            candidates = tuple(
                Candidate(
                    *self.proj.inverse(cx, cy),
                    r.label + (f", {cz}" if cz else ""),
                    Precision.STREET,
                    round(conf, 3),
                )
                for r, cx, cy, cz in [(run, x, y, zip_code), *rivals[:9]]
            )
        return self._result(
            p, x, y, Precision.STREET, conf,
            run.label + (f", {zip_code}" if zip_code else ""), zip_code, candidates, "street",
        )  # fmt: skip

    @staticmethod
    def _medoid(run: _Run) -> tuple[float, float, str]:
        k = int(np.argmin(np.hypot(run.xs - run.cx, run.ys - run.cy)))
        return run.xl[k], run.yl[k], run.zips[k]

    # --------------------------------------------------------- intersections
    def _street_xy(self, name: str, stype: str) -> np.ndarray:
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
        if not typed and stype not in _LIMITED_ACCESS:
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

    def _intersection(self, p: ParsedAddress) -> GeocodeResult | None:
        a_st, b_st = p.street, p.cross_street
        assert b_st is not None
        ra, rb = self._resolve(a_st, p.zip), self._resolve(b_st, p.zip)
        if not ra or not rb:
            # one street unknown: the other street alone is street-level at best
            known = a_st if ra else b_st if rb else None
            if known is None:
                return None
            return self._street_only(
                ParsedAddress(p.raw, "street", None, "", known, None, p.unit, p.zip, p.city)
            )
        label = f"{a_st.full} AT {b_st.full}"
        # 1) known intersections
        best_known: tuple[float, float, float, str] | None = None
        zc = self.zip_centroid.get(p.zip) if p.zip else None
        for a in ra:
            for b in rb:
                for _ta, _tb, z, x, y in self.known_inter.get(frozenset((a.name, b.name)), []):
                    s = a.factor * b.factor
                    if p.zip and z and z != p.zip:
                        if zc is not None and math.hypot(x - zc[0], y - zc[1]) > (
                            zc[2] + _ZIP_REJECT_M
                        ):
                            continue  # the same pair of names in another part of the city
                        s -= 0.2
                    if best_known is None or s > best_known[0]:
                        best_known = (s, x, y, z)
        if best_known is not None and best_known[0] >= 0.7:
            s, x, y, z = best_known
            return self._result(p, x, y, Precision.INTERSECTION, 0.95 * s, label, z, (), "known")
        # 2) geometry of the two streets
        best: tuple[float, float, float, float] | None = None  # (score, x, y, conf)
        for a in ra:
            for b in rb:
                got = self._cross(a.name, a_st.street_type, b.name, b_st.street_type, p.zip)
                if got is None:
                    continue
                x, y, conf = got
                conf *= a.factor * b.factor
                if best is None or conf > best[3]:
                    best = (conf, x, y, conf)
        if best is None:
            # no crossing: the street known near the query ZIP, at street level
            first = self._street_only(
                ParsedAddress(p.raw, "street", None, "", a_st, None, p.unit, p.zip, p.city)
            )
            if first is not None and first.precision is Precision.STREET:
                return first
            second = self._street_only(
                ParsedAddress(p.raw, "street", None, "", b_st, None, p.unit, p.zip, p.city)
            )
            return second if second is not None else first
        _, x, y, conf = best
        zip_code = p.zip or self._nearest_zip(x, y)
        return self._result(p, x, y, Precision.INTERSECTION, conf, label, zip_code, (), "crossing")

    def _between(self, p: ParsedAddress) -> GeocodeResult | None:
        """``X BETWEEN Y AND Z``: the middle of the stretch of X, at ``block`` precision."""
        assert p.cross_street is not None and p.second_cross is not None
        ends = []
        for cross in (p.cross_street, p.second_cross):
            q = ParsedAddress(p.raw, "intersection", None, "", p.street, cross, p.unit, p.zip)
            r = self._intersection(q)
            if r is not None and r.precision is Precision.INTERSECTION:
                ends.append(r)
        label = f"{p.street.full} BETWEEN {p.cross_street.full} AND {p.second_cross.full}"
        if not ends:
            return self._street_only(
                ParsedAddress(p.raw, "street", None, "", p.street, None, p.unit, p.zip, p.city)
            )
        xy = [self.proj.forward(r.lon, r.lat) for r in ends]
        x = float(np.mean([float(a) for a, _ in xy]))
        y = float(np.mean([float(b) for _, b in xy]))
        conf = min(r.confidence for r in ends) * (0.8 if len(ends) == 2 else 0.4)
        return self._result(p, x, y, Precision.BLOCK, conf, label, ends[0].zip, (), "between")

    def _nearest_zip(self, x: float, y: float) -> str:
        if self._tree is None:
            return ""
        _, k = self._tree.query([x, y])
        return str(self._pzip[int(k)])

    def _cross(
        self, name_a: str, type_a: str, name_b: str, type_b: str, zip_code: str
    ) -> tuple[float, float, float] | None:
        """Where two streets cross, from their points; (x, y, confidence) or None."""
        pa_xy, pb_xy = self._street_xy(name_a, type_a), self._street_xy(name_b, type_b)
        if len(pa_xy) == 0 or len(pb_xy) == 0:
            return None
        zc = self.zip_centroid.get(zip_code) if zip_code else None
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
        line_a = _fit_line(pa_xy, a0, radius) or self._grid_line(name_a, a0)
        line_b = _fit_line(pb_xy, b0, radius) or self._grid_line(name_b, b0)
        mid = (a0 + b0) / 2
        if line_a is not None and line_b is not None:
            cross = _intersect_lines(line_a, line_b)
            if cross is not None:
                da = math.hypot(*(cross - a0))
                db = math.hypot(*(cross - b0))
                reach = max(da, db)
                if zc is not None:
                    # long straight streets: trust a far crossing only inside the query ZIP
                    dz = math.hypot(cross[0] - zc[0], cross[1] - zc[1])
                    in_zip = dz <= zc[2] + _CROSS_ZIP_SLACK_M or self._zip_near_xy(
                        float(cross[0]), float(cross[1]), zip_code
                    )
                    ok = in_zip and reach <= _CROSS_MAX_REACH_M
                else:
                    ok = reach <= max(400.0, dist + 300.0) and reach <= 1500.0
                if ok:
                    conf = 0.85 if reach <= 400.0 else 0.6 if reach <= 1500.0 else 0.45
                    return float(cross[0]), float(cross[1]), conf
        if dist > _FOOT_MAX_M:
            return None
        if line_a is not None:
            point, conf = _foot(line_a, b0), 0.7
        elif line_b is not None:
            point, conf = _foot(line_b, a0), 0.7
        else:
            point, conf = mid, 0.5
        if zc is not None and math.hypot(point[0] - zc[0], point[1] - zc[1]) > (
            zc[2] + _ZIP_REJECT_M
        ):
            return None  # the two names meet, but in another part of the city
        return float(point[0]), float(point[1]), conf

    def _grid_line(self, name: str, anchor: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Line through ``anchor`` along the house-number grid of the street's predir."""
        runs = self.by_name.get(name, [])
        if not runs:
            return None
        run = min(runs, key=lambda r: float(np.min(np.hypot(r.xs - anchor[0], r.ys - anchor[1]))))
        g = self._number_gradient(run.predir, float(anchor[0]), float(anchor[1]))
        if g is None:
            return None
        norm = math.hypot(g[0], g[1])
        return np.asarray(anchor, dtype=float), np.array([g[0] / norm, g[1] / norm])

    # ------------------------------------------------------------- reverse
    def reverse_result(self, lon: float, lat: float) -> GeocodeResult:
        """Nearest address point to ``(lon, lat)`` with a distance-based confidence.

        Parameters
        ----------
        lon, lat : float
            Clicked point (EPSG:4326).

        Returns
        -------
        GeocodeResult
            Precision ``point``; ``confidence = exp(-distance_m / 100)``.
        """
        query = f"{lon:.6f}, {lat:.6f}"
        if self._tree is None or not (math.isfinite(lon) and math.isfinite(lat)):
            return _none(query)
        x, y = self.proj.forward(lon, lat)
        d, k = self._tree.query([float(x), float(y)])
        k = int(k)
        zip_code = str(self._pzip[k])
        matched = f"{self._pnum[k]} {self._plabel[k]}" + (f", {zip_code}" if zip_code else "")
        plon, plat = self.proj.inverse(float(self._px[k]), float(self._py[k]))
        return GeocodeResult(
            query, plon, plat, Precision.POINT, round(math.exp(-float(d) / 100.0), 3),
            matched, "", zip_code, (), float(d),
        )  # fmt: skip

    # ---------------------------------------------------- geopy interface
    def geocode(
        self, query: str, exactly_one: bool = True, **_: Any
    ) -> Location | list[Location] | None:
        """Geocode like a geopy geocoder.

        Parameters
        ----------
        query : str
            Address text.
        exactly_one : bool
            Return one :class:`~geopy.location.Location` (else a list of candidates).

        Returns
        -------
        geopy.location.Location, list of Location, or None
            ``None`` when not located; ``raw`` holds the :class:`GeocodeResult` fields.
        """
        res = self.lookup(query)
        loc = res.to_location()
        if exactly_one:
            return loc
        if loc is None:
            return None
        if not res.candidates:
            return [loc]
        out = []
        for c in res.candidates:
            raw = {**(loc.raw or {}), "lon": c.lon, "lat": c.lat, "confidence": c.confidence,
                   "matched_address": c.matched_address, "precision": str(c.precision)}  # fmt: skip
            # (lon, lat) -> (lat, lon) for geopy
            out.append(type(loc)(c.matched_address, (c.lat, c.lon), raw))
        return out

    def reverse(
        self, query: Any, exactly_one: bool = True, **_: Any
    ) -> Location | list[Location] | None:
        """Reverse geocode like a geopy geocoder.

        Parameters
        ----------
        query : geopy.point.Point, (lat, lon) tuple, or ``"lat, lon"`` string
            geopy's convention: latitude first.
        exactly_one : bool
            Return one Location (else a one-element list).

        Returns
        -------
        geopy.location.Location, list of Location, or None
        """
        lat, lon = _latlon(query)  # (lat, lon) -> (lon, lat) on the next line
        loc = self.reverse_result(lon, lat).to_location()
        if loc is None or exactly_one:
            return loc
        return [loc]

    # -------------------------------------------------------------- batch
    def geocode_many(
        self, queries: Iterable[object], zips: Iterable[object] | None = None
    ) -> list[GeocodeResult]:
        """Geocode many queries; repeated (query, zip) pairs are answered once."""
        qs = list(queries)
        zs = list(zips) if zips is not None else [None] * len(qs)
        return [self.lookup(q, z) for q, z in zip(qs, zs, strict=True)]


def _key4(key: Any) -> tuple[str, str, str, str]:
    return str(key[0]), str(key[1]), str(key[2]), str(key[3])


def _latlon(query: Any) -> tuple[float, float]:
    """Read a geopy-style (lat, lon) query."""
    if hasattr(query, "latitude") and hasattr(query, "longitude"):
        return float(query.latitude), float(query.longitude)
    if isinstance(query, str):
        parts = [p for p in query.replace(";", ",").split(",") if p.strip()]
        if len(parts) != 2:
            raise GeocodeError(f"reverse query {query!r} is not 'lat, lon'")
        return float(parts[0]), float(parts[1])
    if isinstance(query, Sequence) and len(query) >= 2:
        return float(query[0]), float(query[1])
    raise GeocodeError(f"reverse query {query!r} is not a (lat, lon) pair or geopy Point")


def _fit_line(
    xy: np.ndarray, anchor: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Principal line through the points within ``radius`` of ``anchor``."""
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


def _plane_gradient(model: _GridModel, x: float, y: float) -> np.ndarray | None:
    """Gradient of a robust plane fit of house numbers around (x, y), or None."""
    coef = _plane_fit(model, x, y)
    return None if coef is None else coef[1:]


def _plane_fit(model: _GridModel, x: float, y: float) -> np.ndarray | None:
    """Robust plane fit of house numbers around (x, y): [number at (x, y), d/dx, d/dy]."""
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
    return coef if 1.0 / _M_PER_NUMBER_MAX <= norm <= 3.0 else None


def _solve_plane(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Least squares through the normal equations (3 unknowns; fast for small inputs)."""
    ata = a.T @ a
    try:
        return np.linalg.solve(ata, a.T @ b)
    except np.linalg.LinAlgError:
        return None


def _intersect_lines(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> np.ndarray | None:
    (pa_, da), (pb_, db) = a, b
    cross = da[0] * db[1] - da[1] * db[0]
    if abs(cross) < 0.2:  # nearly parallel
        return None
    t = ((pb_[0] - pa_[0]) * db[1] - (pb_[1] - pa_[1]) * db[0]) / cross
    return pa_ + t * da


def _foot(line: tuple[np.ndarray, np.ndarray], pt: np.ndarray) -> np.ndarray:
    c, d = line
    return c + float((pt - c) @ d) * d


def _block_positions(numbers: np.ndarray) -> np.ndarray | None:
    """Position (0-100) of each last-two-digit value within its block: a smoothed CDF."""
    last = np.asarray(numbers, dtype=np.int64) % 100
    if len(last) < 200:
        return None
    counts = np.bincount(last, minlength=100).astype(float) + 1.0  # +1: no empty digit
    cdf = np.cumsum(counts) - counts / 2
    return 100.0 * cdf / counts.sum()


def _along_positions(numbers: np.ndarray, block_pos: np.ndarray | None) -> np.ndarray:
    """House numbers as positions along the street (see ``OfflineGeocoder._along``)."""
    nums = np.asarray(numbers).astype(np.int64)
    if block_pos is None:
        return nums.astype(float)
    return (nums - nums % 100) + block_pos[nums % 100]


def _format_label(number: int | None, label: str, zip_code: str, p: ParsedAddress) -> str:
    """``1046 1/2 W 37TH ST, 90007``; ``1000 BLOCK OF ...`` for a block; the street alone."""
    if number is None:
        block = p.kind == "block" and p.number is not None
        head = f"{p.number} BLOCK OF {label}" if block else label
    else:
        head = f"{number}{' ' + p.number_suffix if p.number_suffix else ''} {label}"
    return head + (f", {zip_code}" if zip_code else "")


def _parity_side(n: int) -> float:
    """+0.5 for odd house numbers, -0.5 for even ones."""
    return 0.5 if n % 2 else -0.5


def _side_separation(runs: Sequence[_Run]) -> dict[str, float]:
    """Signed distance from even to odd numbers, left of the way numbers grow, by predir.

    Measured on close pairs (within 60 numbers) of odd and even points of straight runs;
    kept only where the side is consistent (LA: odd numbers on the west side of
    north-south streets and the north side of east-west ones, about 30 m across).
    """
    by_dir: dict[str, list[float]] = defaultdict(list)
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
    out: dict[str, float] = {}
    for predir, vals in by_dir.items():
        arr = np.asarray(vals)
        if len(arr) < _SIDE_MIN_PAIRS:
            continue
        med = float(np.median(arr))
        if np.mean(np.sign(arr) == np.sign(med)) >= 0.75 and 10.0 <= abs(med) <= 60.0:
            out[predir] = med
    return out


_ORDINAL_NAME = re.compile(r"^(?:(\d+)(?:ST|ND|RD|TH)|AVENUE (\d+))$")


def _ordinal_parts(name: str) -> tuple[int, Callable[[int], str]] | None:
    """``37TH`` -> (37, v -> ``{v}TH``-style name); ``AVENUE 58`` -> (58, ...); else None."""
    m = _ORDINAL_NAME.match(name)
    if m is None:
        return None
    if m.group(1) is not None:
        return int(m.group(1)), _ordinal
    return int(m.group(2)), lambda v: f"AVENUE {v}"


# ----------------------------------------------------------------- batch API
_METHOD_TEXT = {
    "exact": "the address itself is known",
    "between": "between two known numbers on the street",
    "beyond": "a short way past the last known number on the street",
    "grid": "walked along the street from its nearest known number",
    "grid-blind": "walked from a lone known number along the city's number grid",
    "grid-long": "a long walk along the number grid: check the pin",
    "near-end": "next to a known number on the street",
    "across": "walked through the divide from the other side of the street name",
    "across-blind": "walked through the divide from the other side of the street name",
    "centerline": "along the street's centerline address range",
    "ordinal": "between the same number on the numbered streets either side",
    "crossing-walk": "walked from a known crossing of the street: check the pin",
    "in-block": "a known address inside that block",
    "known": "a known intersection",
    "crossing": "where the two streets' lines cross",
    "street": "somewhere on the street: the house is not known",
    "zip": "the ZIP code's centre: the street is not known there",
}


def describe_method(method: str) -> str:
    """Say in plain words how an answer was found (``GeocodeResult.method``).

    Parameters
    ----------
    method : str
        A method name such as ``between`` or ``crossing-walk``.

    Returns
    -------
    str
        A short phrase for supervisors; ``""`` for an unknown or empty method.
    """
    return _METHOD_TEXT.get(method, "")


def geocode_frame(
    df: pd.DataFrame,
    address_column: str,
    zip_column: str | None = None,
    geocoder: OfflineGeocoder | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Geocode a column of addresses.

    Parameters
    ----------
    df : pandas.DataFrame
        Input rows; not modified.
    address_column : str
        Column with the address text.
    zip_column : str, optional
        Column with a ZIP used when the text carries none.
    geocoder : OfflineGeocoder or object with ``lookup(query, zip) -> GeocodeResult``
        Defaults to the shipped Los Angeles reference.
    progress : bool
        Show a tqdm progress bar over the distinct queries.

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` with columns ``lon``, ``lat``, ``precision``, ``confidence``,
        ``matched_address`` (existing columns of those names are replaced);
        ``attrs["geocode_summary"]`` maps each precision to its row count; see
        :func:`summarize_precision` for shares and mean confidence.
    """
    if address_column not in df.columns:
        raise GeocodeError(
            f"column {address_column!r} is not in the frame; columns are {list(df.columns)}"
        )
    if zip_column is not None and zip_column not in df.columns:
        raise GeocodeError(f"zip column {zip_column!r} is not in the frame")
    gc = geocoder if geocoder is not None else _default_geocoder()
    texts = df[address_column].tolist()
    zips = df[zip_column].tolist() if zip_column is not None else [None] * len(texts)
    keys = [
        (t if isinstance(t, str) else "", _zip_key(z)) for t, z in zip(texts, zips, strict=True)
    ]
    unique = list(dict.fromkeys(keys))
    iterator: Iterable[tuple[str, str]] = unique
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(unique, desc="geocoding", unit="address")
    answers = {k: gc.lookup(k[0], k[1] or None) for k in iterator}
    res = [answers[k] for k in keys]
    out = df.copy()
    out["lon"] = np.array([r.lon if r.lon is not None else np.nan for r in res], dtype=float)
    out["lat"] = np.array([r.lat if r.lat is not None else np.nan for r in res], dtype=float)
    out["precision"] = pd.Series([str(r.precision) for r in res], index=df.index, dtype="string")
    out["confidence"] = np.array([r.confidence for r in res], dtype=float)
    out["matched_address"] = pd.Series(
        [r.matched_address for r in res], index=df.index, dtype="string"
    )
    # a plain dict: DataFrames in attrs break pandas' concat/groupby attribute checks
    out.attrs["geocode_summary"] = summarize_precision(out)["count"].to_dict()
    return out


def _zip_key(z: object) -> str:
    if z is None or (isinstance(z, float) and not math.isfinite(z)):
        return ""
    if isinstance(z, float):
        return str(int(z))
    return str(z).strip()


def summarize_precision(frame: pd.DataFrame) -> pd.DataFrame:
    """Count and share of rows per precision, best precision first.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`geocode_frame` (needs ``precision`` and ``confidence``).

    Returns
    -------
    pandas.DataFrame
        Index ``precision`` (every level, zeros included); columns ``count``, ``share``,
        ``mean_confidence``.
    """
    levels = [str(p) for p in Precision]
    counts = frame["precision"].astype(str).value_counts().reindex(levels, fill_value=0)
    conf = frame.groupby(frame["precision"].astype(str))["confidence"].mean().reindex(levels)
    total = max(int(counts.sum()), 1)
    out = pd.DataFrame(
        {"count": counts.astype("int64"), "share": counts / total, "mean_confidence": conf}
    )
    out.index.name = "precision"
    return out


@lru_cache(maxsize=1)
def _default_geocoder() -> OfflineGeocoder:
    return OfflineGeocoder(load_reference("los_angeles"))
