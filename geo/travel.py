"""Travel times and distances between points: the ``TravelModel`` strategy.

Four implementations (a city pack picks one with :class:`TravelSettings`):

:class:`BandedTravel`
    Straight-line distance priced per distance band (circuity and pace per band) plus a
    fixed approach time per stop; :func:`fit_banded` fits the bands to a road network.

:class:`NetworkTravel`
    Shortest free-flow paths on a road graph (:mod:`scipy.sparse.csgraph`), with access
    legs on local streets; draws the driven path (:meth:`NetworkTravel.path`).

:class:`HaversineTravel` (default, offline)
    Great-circle distance times a *circuity factor*, driven at a constant urban speed.
    Circuity (network distance / straight-line distance) is about 1.2-1.4 in US cities;
    Ballou, Rahardja & Sakai (2002, *Transportation Research Part A* 36(9)) report
    factors around 1.2-1.3 for US road networks, and Levinson & El-Geneidy (2009,
    *Regional Science and Urban Economics* 39(6)) measure a mean of about 1.2-1.3 for
    home-work trips in US metropolitan areas, higher for short trips. Short hops
    between neighbouring service requests are the circuitous kind, so the default is
    ``1.3``. The default speed, 25 km/h (about 15.5 mph), is an assumption for a
    loaded work truck on signalised urban arterials including stops and turns; it is
    not a measured Los Angeles figure. Calibrate both against an OSRM server or crew
    GPS traces when available.

:class:`OsrmTravel`
    Asks an OSRM-compatible ``/table`` service (``annotations=duration,distance``),
    in blocks, and falls back to another model (with :func:`warnings.warn`) when the
    service is unreachable or answers nonsense.

Rounding: matrices are integer metres and integer seconds, rounded to the nearest
unit (``numpy.rint``). Rounding each edge independently can break the triangle
inequality by up to one unit per edge (and OSRM tables need not satisfy it at all);
the solvers using these matrices do not rely on it.

Coordinates come in as an ``(n, 2)`` array of ``lon, lat`` (EPSG:4326).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
import os
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from geo.errors import TravelError

#: Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8

#: Default circuity factor: network distance / great-circle distance (see module doc).
DEFAULT_CIRCUITY = 1.3

#: Default door-to-door urban truck speed in km/h (assumption, see module doc).
DEFAULT_SPEED_KMH = 25.0

IntMatrix = npt.NDArray[np.int64]


@runtime_checkable
class TravelModel(Protocol):
    """Strategy that turns points into travel distance and duration matrices."""

    def matrix(self, lonlat: npt.NDArray[np.float64]) -> tuple[IntMatrix, IntMatrix]:
        """Return ``(distance_m, duration_s)`` integer matrices between all points.

        Parameters
        ----------
        lonlat
            ``(n, 2)`` array of ``lon, lat`` in EPSG:4326.

        Returns
        -------
        tuple of numpy.ndarray
            Two ``(n, n)`` ``int64`` arrays: metres and seconds from row to column,
            zero on the diagonal.
        """
        ...


def _check_lonlat(lonlat: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(lonlat, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise TravelError(f"lonlat has shape {arr.shape}; expected (n, 2) columns lon, lat")
    if not np.isfinite(arr).all():
        raise TravelError("lonlat contains NaN or infinite values; expected finite lon, lat")
    if (np.abs(arr[:, 0]) > 180).any() or (np.abs(arr[:, 1]) > 90).any():
        raise TravelError(
            "lonlat has values outside lon [-180, 180] / lat [-90, 90]; "
            "expected columns in lon, lat order"
        )
    return arr


def great_circle_m(lonlat: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Return the ``(n, n)`` haversine great-circle distances in metres (float).

    Parameters
    ----------
    lonlat
        ``(n, 2)`` array of ``lon, lat``.

    Returns
    -------
    numpy.ndarray
        Float distances in metres.
    """
    arr = _check_lonlat(lonlat)
    lon = np.radians(arr[:, 0])
    lat = np.radians(arr[:, 1])
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    a = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
    out: npt.NDArray[np.float64] = (
        2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))
    return out


@dataclass(frozen=True)
class HaversineTravel:
    """Great-circle distance x circuity, at a constant speed (offline default).

    Parameters
    ----------
    circuity
        Network / straight-line distance ratio, ``>= 1`` (default 1.3, see module doc).
    speed_kmh
        Average door-to-door driving speed in km/h (default 25, an assumption).
    """

    circuity: float = DEFAULT_CIRCUITY
    speed_kmh: float = DEFAULT_SPEED_KMH

    def __post_init__(self) -> None:
        if not self.circuity >= 1.0:
            raise TravelError(f"HaversineTravel.circuity {self.circuity} must be >= 1")
        if not self.speed_kmh > 0:
            raise TravelError(f"HaversineTravel.speed_kmh {self.speed_kmh} must be positive")

    def matrix(self, lonlat: npt.NDArray[np.float64]) -> tuple[IntMatrix, IntMatrix]:
        """Return ``(distance_m, duration_s)``, rounded to the nearest metre and second.

        Parameters
        ----------
        lonlat
            ``(n, 2)`` array of ``lon, lat``.

        Returns
        -------
        tuple of numpy.ndarray
            ``int64`` metres and seconds.
        """
        dist = great_circle_m(lonlat) * self.circuity
        dur = dist / (self.speed_kmh / 3.6)
        return np.rint(dist).astype(np.int64), np.rint(dur).astype(np.int64)

    def spec(self) -> dict[str, Any]:
        """Return the model as plain data (see :func:`travel_spec`)."""
        return {"model": "straight-line", "circuity": self.circuity, "speed_kmh": self.speed_kmh}


@dataclass
class OsrmTravel:
    """Travel matrices from an OSRM-compatible ``/table`` HTTP service.

    Parameters
    ----------
    base_url
        Server root, e.g. ``http://127.0.0.1:5000``.
    profile
        OSRM profile in the URL (``driving``).
    timeout_s
        Per-request timeout.
    max_table_size
        Most coordinates sent in one request (OSRM's ``--max-table-size``, default 100).
    fallback
        Model used, with a warning, when the service cannot be used; cells the
        service leaves ``null`` (unroutable) are also filled from it.
    """

    base_url: str
    profile: str = "driving"
    timeout_s: float = 10.0
    max_table_size: int = 100
    fallback: TravelModel = field(default_factory=HaversineTravel)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise TravelError(f"OsrmTravel.base_url {self.base_url!r}; expected http(s)://host")
        if self.max_table_size < 2:
            raise TravelError(f"OsrmTravel.max_table_size {self.max_table_size} must be >= 2")

    def spec(self) -> dict[str, Any]:
        """Return the model as plain data (see :func:`travel_spec`)."""
        return {
            "model": "osrm", "base_url": self.base_url, "profile": self.profile,
            "timeout_s": self.timeout_s, "max_table_size": self.max_table_size,
            "fallback": travel_spec(self.fallback),
        }  # fmt: skip

    @classmethod
    def from_spec(
        cls,
        base_url: str,
        profile: str = "driving",
        timeout_s: float = 10.0,
        max_table_size: int = 100,
        fallback: Mapping[str, Any] | None = None,
    ) -> OsrmTravel:
        """Rebuild the model from :meth:`spec` output."""
        fb = travel_from_spec(fallback) or HaversineTravel()
        return cls(base_url, profile, float(timeout_s), int(max_table_size), fb)

    def _table(
        self, pts: npt.NDArray[np.float64], src: range, dst: range
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        idx = list(dict.fromkeys([*src, *dst]))
        pos = {j: k for k, j in enumerate(idx)}
        coords = ";".join(f"{pts[j, 0]:.6f},{pts[j, 1]:.6f}" for j in idx)  # lon,lat order
        sources = ";".join(str(pos[j]) for j in src)
        destinations = ";".join(str(pos[j]) for j in dst)
        url = (
            f"{self.base_url.rstrip('/')}/table/v1/{self.profile}/{coords}"
            f"?annotations=duration,distance&sources={sources}&destinations={destinations}"
        )
        with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
            body = json.loads(resp.read().decode("utf-8"))
        if body.get("code") != "Ok":
            raise TravelError(f"OSRM /table answered code {body.get('code')!r}; expected 'Ok'")

        def grid(key: str) -> npt.NDArray[np.float64]:
            rows = body.get(key)
            if rows is None:
                raise TravelError(f"OSRM /table answer has no {key!r}; expected annotations")
            out = np.array(
                [[np.nan if v is None else float(v) for v in row] for row in rows],
                dtype=np.float64,
            )
            if out.shape != (len(src), len(dst)):
                raise TravelError(
                    f"OSRM /table {key} has shape {out.shape}; expected {(len(src), len(dst))}"
                )
            return out

        return grid("distances"), grid("durations")

    def matrix(self, lonlat: npt.NDArray[np.float64]) -> tuple[IntMatrix, IntMatrix]:
        """Return ``(distance_m, duration_s)`` from the service, or from the fallback.

        Parameters
        ----------
        lonlat
            ``(n, 2)`` array of ``lon, lat``.

        Returns
        -------
        tuple of numpy.ndarray
            ``int64`` metres and seconds, rounded to the nearest unit.
        """
        pts = _check_lonlat(lonlat)
        n = len(pts)
        if n == 0:
            empty = np.zeros((0, 0), dtype=np.int64)
            return empty, empty.copy()
        dist = np.full((n, n), np.nan)
        dur = np.full((n, n), np.nan)
        block = max(1, self.max_table_size // 2)
        try:
            for i0 in range(0, n, block):
                for j0 in range(0, n, block):
                    src = range(i0, min(n, i0 + block))
                    dst = range(j0, min(n, j0 + block))
                    d, t = self._table(pts, src, dst)
                    dist[i0 : src.stop, j0 : dst.stop] = d
                    dur[i0 : src.stop, j0 : dst.stop] = t
        except (OSError, ValueError, TravelError, urllib.error.URLError) as exc:
            warnings.warn(
                f"OSRM table service at {self.base_url} unusable ({exc}); "
                f"falling back to {type(self.fallback).__name__}",
                RuntimeWarning,
                stacklevel=2,
            )
            return self.fallback.matrix(pts)
        missing = np.isnan(dist) | np.isnan(dur)
        if missing.any():
            fd, ft = self.fallback.matrix(pts)
            dist = np.where(missing, fd, dist)
            dur = np.where(missing, ft, dur)
        np.fill_diagonal(dist, 0)
        np.fill_diagonal(dur, 0)
        return np.rint(dist).astype(np.int64), np.rint(dur).astype(np.int64)


# ---------------------------------------------------------------------------------------
# Distance-banded model (calibrated against a road network)


def _band_overlaps(
    d_m: npt.NDArray[np.float64], edges_m: Sequence[float]
) -> npt.NDArray[np.float64]:
    """Return ``(..., bands)``: how many metres of each straight-line band ``d_m`` covers."""
    lo = np.concatenate([[0.0], np.asarray(edges_m, dtype=np.float64)])
    hi = np.concatenate([np.asarray(edges_m, dtype=np.float64), [np.inf]])
    out: npt.NDArray[np.float64] = np.clip(d_m[..., None] - lo, 0.0, hi - lo)
    return out


@dataclass(frozen=True)
class BandedTravel:
    """Travel priced by distance band: short hops slow and roundabout, long drives fast.

    The straight-line (great-circle) distance ``d`` is cut into bands at ``edges_m``;
    each metre of ``d`` in band ``k`` costs ``pace_s_per_km[k] / 1000`` seconds and
    ``circuity[k]`` metres of road. Time and distance are therefore continuous,
    piecewise-linear and increasing in ``d``. Every move to another place (``d >= 1``
    m) also costs ``approach_s``: finding the kerb, parking, walking to the item. Fit the
    bands to a road network with :func:`fit_banded`.

    Parameters
    ----------
    edges_m
        Increasing band edges in straight-line metres (``k`` edges, ``k + 1`` bands).
    circuity
        Road metres per straight-line metre in each band, ``>= 1``.
    pace_s_per_km
        Seconds per straight-line kilometre in each band, ``> 0``.
    approach_s
        Fixed seconds added to every move between two different places, ``>= 0``.
    """

    edges_m: tuple[float, ...]
    circuity: tuple[float, ...]
    pace_s_per_km: tuple[float, ...]
    approach_s: float = 0.0

    def __post_init__(self) -> None:
        k = len(self.edges_m)
        if len(self.circuity) != k + 1 or len(self.pace_s_per_km) != k + 1:
            raise TravelError(
                f"BandedTravel: {k} edges need {k + 1} circuity and pace values; got "
                f"{len(self.circuity)} and {len(self.pace_s_per_km)}"
            )
        if any(not b > a for a, b in itertools.pairwise((0.0, *self.edges_m))):
            raise TravelError(f"BandedTravel.edges_m {self.edges_m} must increase from > 0")
        if any(not (math.isfinite(c) and c >= 1.0) for c in self.circuity):
            raise TravelError(f"BandedTravel.circuity {self.circuity} must all be >= 1")
        if any(not (math.isfinite(p) and p > 0.0) for p in self.pace_s_per_km):
            raise TravelError(f"BandedTravel.pace_s_per_km {self.pace_s_per_km} must be > 0")
        if not (math.isfinite(self.approach_s) and self.approach_s >= 0.0):
            raise TravelError(f"BandedTravel.approach_s {self.approach_s} must be >= 0")

    def distance_time(
        self, straight_m: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Return road metres and seconds (approach included) for straight-line metres."""
        d = np.asarray(straight_m, dtype=np.float64)
        dist = np.zeros_like(d)
        dur = np.zeros_like(d)
        lo = 0.0
        # Band by band (no (n, n, bands) array: a 2,000-point matrix stays small).
        for k, hi in enumerate((*self.edges_m, math.inf)):
            part = np.clip(d - lo, 0.0, hi - lo)
            dist += self.circuity[k] * part
            dur += self.pace_s_per_km[k] / 1000.0 * part
            lo = hi
        dur += np.where(d >= 1.0, self.approach_s, 0.0)
        return dist, dur

    def matrix(self, lonlat: npt.NDArray[np.float64]) -> tuple[IntMatrix, IntMatrix]:
        """Return ``(distance_m, duration_s)``, rounded to the nearest metre and second.

        Parameters
        ----------
        lonlat
            ``(n, 2)`` array of ``lon, lat``.

        Returns
        -------
        tuple of numpy.ndarray
            ``int64`` metres and seconds.
        """
        dist, dur = self.distance_time(great_circle_m(lonlat))
        return np.rint(dist).astype(np.int64), np.rint(dur).astype(np.int64)

    def spec(self) -> dict[str, Any]:
        """Return the model as plain data (see :func:`travel_spec`)."""
        return {
            "model": "banded", "edges_m": list(self.edges_m), "circuity": list(self.circuity),
            "pace_s_per_km": list(self.pace_s_per_km), "approach_s": self.approach_s,
        }  # fmt: skip

    @classmethod
    def from_spec(
        cls,
        edges_m: Sequence[float],
        circuity: Sequence[float],
        pace_s_per_km: Sequence[float],
        approach_s: float = 0.0,
    ) -> BandedTravel:
        """Rebuild the model from :meth:`spec` output."""
        return cls(
            tuple(float(x) for x in edges_m), tuple(float(x) for x in circuity),
            tuple(float(x) for x in pace_s_per_km), float(approach_s),
        )  # fmt: skip


def fit_banded(
    straight_m: npt.ArrayLike,
    road_m: npt.ArrayLike,
    road_s: npt.ArrayLike,
    edges_m: Sequence[float],
    approach_s: float = 0.0,
) -> BandedTravel:
    """Fit a :class:`BandedTravel` to measured trips (e.g. shortest paths on a network).

    Non-negative least squares on the band overlaps, iteratively re-weighted by
    ``1 / predicted value`` so that every trip counts by its relative error (short hops
    are as important as long drives) without biasing the fit low. Circuity is held
    ``>= 1``; a band without trips takes its neighbour's values.

    Parameters
    ----------
    straight_m
        Straight-line (great-circle) metres of each trip.
    road_m, road_s
        Road metres and seconds of each trip, *without* any approach time.
    edges_m
        Band edges (see :class:`BandedTravel`).
    approach_s
        Fixed approach time of the fitted model (not fitted; see the module doc).

    Returns
    -------
    BandedTravel
        The fitted model.
    """
    from scipy.optimize import nnls

    d = np.asarray(straight_m, dtype=np.float64)
    rm = np.asarray(road_m, dtype=np.float64)
    rs = np.asarray(road_s, dtype=np.float64)
    keep = (d >= 1.0) & np.isfinite(rm) & np.isfinite(rs) & (rs > 0) & (rm > 0)
    if keep.sum() < len(edges_m) + 1:
        raise TravelError(f"fit_banded: {int(keep.sum())} usable trips; need a few per band")
    d, rm, rs = d[keep], rm[keep], rs[keep]
    over = _band_overlaps(d, edges_m)
    used = over.sum(axis=0) > 0

    def solve(y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # Relative errors without the downward bias of weighting by 1 / y: re-weight by
        # 1 / prediction (a few rounds of iteratively re-weighted least squares).
        w = 1.0 / y
        for _ in range(4):
            coef, _ = nnls(over[:, used] * w[:, None], y * w)
            w = 1.0 / np.maximum(over[:, used] @ coef, 1e-9)
        out = np.full(over.shape[1], np.nan)
        out[used] = coef
        for k in range(1, len(out)):  # empty bands: the previous band's value
            if np.isnan(out[k]):
                out[k] = out[k - 1]
        for k in range(len(out) - 2, -1, -1):
            if np.isnan(out[k]):
                out[k] = out[k + 1]
        return out

    circuity = np.maximum(solve(rm), 1.0)
    pace = np.maximum(solve(rs) * 1000.0, 1e-3)
    return BandedTravel(
        tuple(float(e) for e in edges_m),
        tuple(round(float(c), 4) for c in circuity),
        tuple(round(float(p), 2) for p in pace),
        float(approach_s),
    )


# ---------------------------------------------------------------------------------------
# Road network model


def _local_xy_m(lonlat: npt.NDArray[np.float64], lat0: float) -> npt.NDArray[np.float64]:
    """Return equirectangular metres (x east, y north) around latitude ``lat0``."""
    k = math.pi / 180.0 * EARTH_RADIUS_M
    return np.column_stack([lonlat[:, 0] * k * math.cos(math.radians(lat0)), lonlat[:, 1] * k])


class NetworkTravel:
    """Travel times from shortest paths on a road graph, with local access legs.

    A point is joined to its nearest graph node by an *access leg*: straight-line metres
    x ``access_circuity`` at ``access_speed_kmh`` (the local streets the graph leaves
    out). A trip between two points costs the faster of (a) access, shortest free-flow
    path, access, and (b) the whole trip on local streets at that speed. Points farther
    than ``max_access_m`` from the graph are outside it: trips touching them come from
    ``fallback``. Every move to another place also costs ``approach_s`` (as in
    :class:`BandedTravel`). Shortest paths are computed many-to-many with
    :func:`scipy.sparse.csgraph.dijkstra` from the distinct source nodes, in blocks.

    Parameters
    ----------
    nodes_csv
        CSV with ``nid, lon, lat`` columns (other columns ignored).
    links_csv
        CSV of directed links with ``from_nid, to_nid, length_m, free_flow_time_s``.
    access_speed_kmh, access_circuity
        Local-street speed and circuity of access legs and all-local trips.
    approach_s
        Fixed seconds added to every move between two different places.
    max_access_m
        Farthest a point may be from the graph to use it.
    max_path_s
        Longest free-flow path searched, seconds; longer trips (rarely driven between
        two stops) come from ``fallback`` too. Bounds the work of each search.
    fallback
        Model for trips touching points outside the graph, or longer than
        ``max_path_s`` (default :class:`HaversineTravel`); its own approach time
        applies to them.
    """

    #: Sources per Dijkstra block (bounds memory at about 60 MB for 15,000 nodes).
    BLOCK = 256

    def __init__(
        self,
        nodes_csv: str | os.PathLike[str],
        links_csv: str | os.PathLike[str],
        *,
        access_speed_kmh: float = 20.0,
        access_circuity: float = 1.3,
        approach_s: float = 0.0,
        max_access_m: float = 1500.0,
        max_path_s: float = 1800.0,
        fallback: TravelModel | None = None,
    ) -> None:
        if not access_speed_kmh > 0:
            raise TravelError(f"NetworkTravel.access_speed_kmh {access_speed_kmh} must be > 0")
        if not access_circuity >= 1.0:
            raise TravelError(f"NetworkTravel.access_circuity {access_circuity} must be >= 1")
        if not (math.isfinite(approach_s) and approach_s >= 0):
            raise TravelError(f"NetworkTravel.approach_s {approach_s} must be >= 0")
        if not max_access_m > 0:
            raise TravelError(f"NetworkTravel.max_access_m {max_access_m} must be > 0")
        if not max_path_s > 0:
            raise TravelError(f"NetworkTravel.max_path_s {max_path_s} must be > 0")
        self.nodes_csv = Path(nodes_csv)
        self.links_csv = Path(links_csv)
        self.access_speed_kmh = float(access_speed_kmh)
        self.access_circuity = float(access_circuity)
        self.approach_s = float(approach_s)
        self.max_access_m = float(max_access_m)
        self.max_path_s = float(max_path_s)
        self.fallback: TravelModel = fallback or HaversineTravel()
        self._load()

    # -- graph
    def _load(self) -> None:
        import pandas as pd
        from scipy.sparse import csr_matrix
        from scipy.spatial import cKDTree

        try:
            nodes = pd.read_csv(self.nodes_csv, usecols=["nid", "lon", "lat"])
            links = pd.read_csv(
                self.links_csv, usecols=["from_nid", "to_nid", "length_m", "free_flow_time_s"]
            )
        except (OSError, ValueError) as exc:
            raise TravelError(
                f"NetworkTravel: cannot read {self.nodes_csv} / {self.links_csv}: {exc}; "
                "expected nid,lon,lat and from_nid,to_nid,length_m,free_flow_time_s columns"
            ) from exc
        index = pd.Series(np.arange(len(nodes)), index=nodes["nid"].to_numpy())
        if not index.index.is_unique:
            raise TravelError(f"NetworkTravel: {self.nodes_csv} repeats node ids")
        known = links["from_nid"].isin(index.index) & links["to_nid"].isin(index.index)
        if not known.all():
            raise TravelError(
                f"NetworkTravel: {int((~known).sum())} links of {self.links_csv} name unknown nodes"
            )
        u = index[links["from_nid"]].to_numpy()
        v = index[links["to_nid"]].to_numpy()
        t = links["free_flow_time_s"].to_numpy(dtype=np.float64)
        length = links["length_m"].to_numpy(dtype=np.float64)
        ok = (u != v) & np.isfinite(t) & np.isfinite(length) & (t >= 0) & (length >= 0)
        u, v, t, length = u[ok], v[ok], t[ok], length[ok]
        # Parallel links: keep the fastest. Zero times would read as "no edge": floor them.
        order = np.lexsort((length, t, v, u))
        u, v, t, length = u[order], v[order], t[order], length[order]
        first = np.ones(len(u), dtype=bool)
        first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        u, v, t, length = u[first], v[first], np.maximum(t[first], 1e-3), length[first]
        n = len(nodes)
        self.n_nodes = n
        self.node_lonlat = nodes[["lon", "lat"]].to_numpy(dtype=np.float64)
        self._graph = csr_matrix((t, (u, v)), shape=(n, n))
        self._edge_key = u.astype(np.int64) * n + v  # sorted (lexsort by u, then v)
        self._edge_len = length
        self._lat0 = float(np.median(self.node_lonlat[:, 1]))
        self._tree = cKDTree(_local_xy_m(self.node_lonlat, self._lat0))

    def snap(
        self, lonlat: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Return each point's nearest node and the straight-line metres to it."""
        d, k = self._tree.query(_local_xy_m(lonlat, self._lat0))
        return np.asarray(k, dtype=np.int64), np.asarray(d, dtype=np.float64)

    def _paths(
        self, sources: npt.NDArray[np.int64], targets: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Return free-flow seconds and metres of the fastest paths, sources x targets."""
        from scipy.sparse.csgraph import dijkstra

        times = np.empty((len(sources), len(targets)))
        metres = np.empty_like(times)
        for b0 in range(0, len(sources), self.BLOCK):
            src = sources[b0 : b0 + self.BLOCK]
            t, pred = dijkstra(
                self._graph, indices=src, return_predecessors=True, limit=self.max_path_s
            )
            times[b0 : b0 + len(src)] = t[:, targets]
            metres[b0 : b0 + len(src)] = self._metres(t, pred, targets)
        return times, metres

    def _metres(
        self,
        t: npt.NDArray[np.float64],
        pred: npt.NDArray[np.int32],
        targets: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.float64]:
        """Return metres along the shortest-time trees, rows x targets.

        Nodes are visited in order of arrival time, so every node's predecessor is done
        before it: ``metres[v] = metres[pred[v]] + length(pred[v], v)``. Only nodes up to
        the latest target of each row are visited.
        """
        n = self.n_nodes
        k = len(t)
        rows = np.arange(k)
        tt = t[:, targets]
        tmax = np.where(np.isfinite(tt), tt, 0.0).max(axis=1, initial=0.0)
        order = np.argsort(t, axis=1, kind="stable")
        upto = int((t <= tmax[:, None]).sum(axis=1).max(initial=0))
        acc = np.zeros((k, n))
        for c in range(1, upto):
            v = order[:, c]
            u = pred[rows, v].astype(np.int64)
            ok = u >= 0
            key = np.where(ok, u, 0) * n + v
            pos = np.minimum(np.searchsorted(self._edge_key, key), len(self._edge_key) - 1)
            step = np.where(ok, self._edge_len[pos], 0.0)
            acc[rows, v] = np.where(ok, acc[rows, np.where(ok, u, v)] + step, 0.0)
        return acc[:, targets]

    # -- matrices
    def _access(
        self, lonlat: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64],
               npt.NDArray[np.bool_]]:
        node, off_m = self.snap(lonlat)
        acc_m = off_m * self.access_circuity
        acc_s = acc_m / (self.access_speed_kmh / 3.6)
        return node, acc_m, acc_s, off_m <= self.max_access_m

    def road(
        self, lonlat: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """Return float road metres and seconds (no approach) and which pairs it covers.

        Parameters
        ----------
        lonlat
            ``(n, 2)`` array of ``lon, lat``.

        Returns
        -------
        tuple of numpy.ndarray
            ``(n, n)`` metres, seconds (``nan`` where not covered) and the covered mask.
        """
        pts = _check_lonlat(lonlat)
        n = len(pts)
        gc = great_circle_m(pts) if n else np.zeros((0, 0))
        local_m = gc * self.access_circuity
        local_s = local_m / (self.access_speed_kmh / 3.6)
        dist = np.full((n, n), np.nan)
        dur = np.full((n, n), np.nan)
        if n == 0:
            return dist, dur, np.zeros((0, 0), dtype=bool)
        node, acc_m, acc_s, inside = self._access(pts)
        covered = inside[:, None] & inside[None, :]
        idx = np.flatnonzero(inside)
        if len(idx):
            uniq, inv = np.unique(node[idx], return_inverse=True)
            t, m = self._paths(uniq, uniq)
            net_s = acc_s[idx, None] + t[np.ix_(inv, inv)] + acc_s[None, idx]
            net_m = acc_m[idx, None] + m[np.ix_(inv, inv)] + acc_m[None, idx]
            sub = np.ix_(idx, idx)
            use_net = net_s < local_s[sub]
            dur[sub] = np.where(use_net, net_s, local_s[sub])
            dist[sub] = np.where(use_net, net_m, local_m[sub])
            # Beyond max_path_s on the graph and too far to drive locally: not covered.
            far = ~np.isfinite(net_s) & (local_s[sub] > self.max_path_s)
            cov = covered[sub]
            cov[far] = False
            covered[sub] = cov
        np.fill_diagonal(dist, 0.0)
        np.fill_diagonal(dur, 0.0)
        covered |= np.eye(n, dtype=bool)
        return dist, dur, covered

    def matrix(self, lonlat: npt.NDArray[np.float64]) -> tuple[IntMatrix, IntMatrix]:
        """Return ``(distance_m, duration_s)`` over the network, else from the fallback.

        Parameters
        ----------
        lonlat
            ``(n, 2)`` array of ``lon, lat``.

        Returns
        -------
        tuple of numpy.ndarray
            ``int64`` metres and seconds, rounded to the nearest unit.
        """
        pts = _check_lonlat(lonlat)
        dist, dur, covered = self.road(pts)
        if len(pts):
            gc = great_circle_m(pts)
            dur = dur + np.where(gc >= 1.0, self.approach_s, 0.0)
        if not covered.all():
            fd, ft = self.fallback.matrix(pts)
            dist = np.where(covered, dist, fd)
            dur = np.where(covered, dur, ft)
        return np.rint(dist).astype(np.int64), np.rint(dur).astype(np.int64)

    def path(self, lonlat: npt.NDArray[np.float64]) -> list[tuple[float, float]]:
        """Return the driven path through the points in order, ``lon, lat`` pairs.

        A leg between two points on the graph follows the fastest path's nodes (its
        access legs straight); an all-local leg, or one touching a point outside the
        graph, is straight. Consecutive duplicates are dropped.

        Parameters
        ----------
        lonlat
            ``(n, 2)`` array of ``lon, lat``, in driving order.

        Returns
        -------
        list of tuple
            The path's vertices.
        """
        from scipy.sparse.csgraph import dijkstra

        pts = _check_lonlat(lonlat)
        if len(pts) == 0:
            return []
        node, _, acc_s, inside = self._access(pts)
        gc = great_circle_m(pts)
        local_s = gc * self.access_circuity / (self.access_speed_kmh / 3.6)
        out: list[tuple[float, float]] = [(float(pts[0, 0]), float(pts[0, 1]))]
        legs = [k for k in range(len(pts) - 1) if inside[k] and inside[k + 1]]
        on_graph = set(legs)
        src = np.unique(node[legs]) if legs else np.zeros(0, dtype=np.int64)
        limit = float(max((local_s[k, k + 1] for k in legs), default=0.0))
        t = pred = None
        if len(src):
            t, pred = dijkstra(self._graph, indices=src, return_predecessors=True, limit=limit)
        row = {int(x): r for r, x in enumerate(src)}
        for k in range(len(pts) - 1):
            a, b = int(node[k]), int(node[k + 1])
            seq: list[int] = []
            if t is not None and pred is not None and k in on_graph:
                r = row[a]
                net = acc_s[k] + t[r, b] + acc_s[k + 1]
                if np.isfinite(net) and net < local_s[k, k + 1]:
                    v = b
                    while v != a and v >= 0:
                        seq.append(v)
                        v = int(pred[r, v])
                    seq.append(a)
                    seq.reverse()
            for v in seq:
                out.append((float(self.node_lonlat[v, 0]), float(self.node_lonlat[v, 1])))
            out.append((float(pts[k + 1, 0]), float(pts[k + 1, 1])))
        return [p for i, p in enumerate(out) if i == 0 or p != out[i - 1]]

    def spec(self) -> dict[str, Any]:
        """Return the model as plain data (see :func:`travel_spec`)."""
        return {
            "model": "network", "nodes_csv": str(self.nodes_csv), "links_csv": str(self.links_csv),
            "access_speed_kmh": self.access_speed_kmh, "access_circuity": self.access_circuity,
            "approach_s": self.approach_s, "max_access_m": self.max_access_m,
            "max_path_s": self.max_path_s, "fallback": travel_spec(self.fallback),
        }  # fmt: skip

    @classmethod
    def from_spec(
        cls,
        nodes_csv: str,
        links_csv: str,
        access_speed_kmh: float = 20.0,
        access_circuity: float = 1.3,
        approach_s: float = 0.0,
        max_access_m: float = 1500.0,
        max_path_s: float = 1800.0,
        fallback: Mapping[str, Any] | None = None,
    ) -> NetworkTravel:
        """Rebuild the model from :meth:`spec` output (graphs are loaded once per file)."""
        return _network(
            nodes_csv, links_csv, float(access_speed_kmh), float(access_circuity),
            float(approach_s), float(max_access_m), float(max_path_s),
            json.dumps(fallback, sort_keys=True) if fallback else "",
        )  # fmt: skip


@functools.lru_cache(maxsize=4)
def _network(
    nodes_csv: str,
    links_csv: str,
    access_speed_kmh: float,
    access_circuity: float,
    approach_s: float,
    max_access_m: float,
    max_path_s: float,
    fallback_json: str,
) -> NetworkTravel:
    fallback = travel_from_spec(json.loads(fallback_json)) if fallback_json else None
    return NetworkTravel(
        nodes_csv, links_csv, access_speed_kmh=access_speed_kmh,
        access_circuity=access_circuity, approach_s=approach_s, max_access_m=max_access_m,
        max_path_s=max_path_s, fallback=fallback,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# Specs: a model as plain data (kept in a plan's settings, read back to re-plan)


def travel_spec(model: TravelModel) -> dict[str, Any] | None:
    """Return ``model`` as plain data, or ``None`` for a model this module cannot rebuild.

    Parameters
    ----------
    model
        A travel model.

    Returns
    -------
    dict or None
        ``{"model": name, ...parameters}``; :func:`travel_from_spec` rebuilds the model.
    """
    spec = getattr(model, "spec", None)
    return spec() if callable(spec) else None


def travel_from_spec(spec: Mapping[str, Any] | None) -> TravelModel | None:
    """Rebuild a model written by :func:`travel_spec`; ``None`` gives ``None``.

    Parameters
    ----------
    spec
        The spec, e.g. ``{"model": "straight-line", "circuity": 1.3, "speed_kmh": 25.0}``.

    Returns
    -------
    TravelModel or None
        The model.

    Raises
    ------
    TravelError
        For an unknown model name or invalid parameters.
    """
    if spec is None:
        return None
    name = spec.get("model")
    params = {k: v for k, v in spec.items() if k != "model"}
    builders: dict[str, Callable[..., TravelModel]] = {
        "straight-line": HaversineTravel,
        "banded": BandedTravel.from_spec,
        "network": NetworkTravel.from_spec,
        "osrm": OsrmTravel.from_spec,
    }
    if name not in builders:
        raise TravelError(f"travel model {name!r} is unknown; expected one of {sorted(builders)}")
    try:
        return builders[str(name)](**params)
    except TypeError as exc:
        raise TravelError(f"travel model {name!r}: {exc}") from exc


# ---------------------------------------------------------------------------------------
# A city's choice of model (its pack's [travel] table)

#: Names of the models a city pack can choose.
TRAVEL_MODELS = ("straight-line", "banded", "network", "osrm")


@dataclass(frozen=True)
class TravelSettings:
    """Which travel model a city uses, with its parameters (a pack's ``[travel]`` table).

    ``model`` is one of :data:`TRAVEL_MODELS`: ``straight-line``
    (:class:`HaversineTravel` with ``circuity`` and ``speed_kmh``), ``banded``
    (:class:`BandedTravel` from the ``band_*`` lists and ``approach_s``), ``network``
    (:class:`NetworkTravel` on ``network_nodes``/``network_links``, falling back to the
    banded model when bands are given, else to the straight-line one) or ``osrm``
    (:class:`OsrmTravel` at ``osrm_url``, same fallback). ``reserve_share`` and
    ``reserve_min_minutes`` are the reserve routes keep for travel slower than the model
    (the planner's ``Slack``; by default 4% of the shift, at least 20 minutes; both 0:
    none).

    Raises
    ------
    TravelError
        When the model is unknown or lacks what it needs (bands, files, URL).
    """

    model: str = "straight-line"
    circuity: float = DEFAULT_CIRCUITY
    speed_kmh: float = DEFAULT_SPEED_KMH
    band_edges_m: tuple[float, ...] = ()
    band_circuity: tuple[float, ...] = ()
    band_pace_s_per_km: tuple[float, ...] = ()
    approach_s: float = 0.0
    network_nodes: Path | None = None
    network_links: Path | None = None
    #: Whom maps credit for the network's lines (e.g. "(c) OpenStreetMap contributors").
    network_attribution: str = ""
    access_speed_kmh: float = 20.0
    access_circuity: float = 1.3
    max_access_m: float = 1500.0
    max_path_s: float = 1800.0
    osrm_url: str = ""
    reserve_share: float = 0.04
    reserve_min_minutes: float = 20.0

    def __post_init__(self) -> None:
        if self.model not in TRAVEL_MODELS:
            raise TravelError(f"travel model {self.model!r}; expected one of {TRAVEL_MODELS}")
        if self.model == "banded" and not self.band_pace_s_per_km:
            raise TravelError("travel model 'banded' needs band_edges_m, band_circuity and "
                              "band_pace_s_per_km")
        if self.model == "network":
            for p in (self.network_nodes, self.network_links):
                if p is None or not Path(p).is_file():
                    raise TravelError(f"travel model 'network' needs network_nodes and "
                                      f"network_links files; {p} does not exist")
        if self.model == "osrm" and not self.osrm_url:
            raise TravelError("travel model 'osrm' needs osrm_url")
        if not (0.0 <= self.reserve_share < 0.5 and 0.0 <= self.reserve_min_minutes <= 240):
            raise TravelError(
                f"reserve_share {self.reserve_share} must be in [0, 0.5) and "
                f"reserve_min_minutes {self.reserve_min_minutes} in [0, 240]"
            )
        if self.band_pace_s_per_km:
            self.banded()  # validates the bands

    def with_model(self, model: str) -> TravelSettings:
        """Return the same settings with another model (e.g. ``straight-line``)."""
        return dataclasses.replace(self, model=model)

    def banded(self) -> BandedTravel:
        """Return the banded model of these settings."""
        return BandedTravel(
            self.band_edges_m, self.band_circuity, self.band_pace_s_per_km, self.approach_s
        )

    def build(self) -> TravelModel:
        """Return the chosen model (a network graph is loaded once per process)."""
        return _build_travel(self)


@functools.lru_cache(maxsize=8)
def _build_travel(ts: TravelSettings) -> TravelModel:
    if ts.model == "straight-line":
        return HaversineTravel(ts.circuity, ts.speed_kmh)
    if ts.model == "banded":
        return ts.banded()
    fallback: TravelModel = (
        ts.banded() if ts.band_pace_s_per_km else HaversineTravel(ts.circuity, ts.speed_kmh)
    )
    if ts.model == "osrm":
        return OsrmTravel(ts.osrm_url, fallback=fallback)
    assert ts.network_nodes is not None and ts.network_links is not None
    return NetworkTravel(
        ts.network_nodes, ts.network_links, access_speed_kmh=ts.access_speed_kmh,
        access_circuity=ts.access_circuity, approach_s=ts.approach_s,
        max_access_m=ts.max_access_m, max_path_s=ts.max_path_s, fallback=fallback,
    )  # fmt: skip
