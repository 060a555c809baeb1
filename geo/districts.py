"""Assign points (requests, depots) to council districts, vectorised.

Rule, in order, for each point ``(lon, lat)`` in EPSG:4326:

1. A point with a missing (NaN) coordinate gets ``None``.
2. A point inside or on the edge of one or more districts gets the **lowest** district id
   among them (numeric order when every id is a number, else text order). Points on a
   shared edge, or in a sliver where two published polygons overlap, thus get the same
   answer every time, independent of the layer's row order.
3. Otherwise the point gets the nearest district if it lies within ``snap_m`` metres of one
   (addresses geocoded just past the edge, at the kerb of a boundary street); ties again
   go to the lowest id. Distances are measured in the layer's local UTM zone.
4. Otherwise, if a city ``boundary`` is given and the point is inside it (a gap between
   district polygons), it gets the nearest district whatever the distance.
5. Otherwise ``None``: the point is outside the city.
"""

from __future__ import annotations

import functools
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import Transformer

from geo.boundaries import is_wgs84, local_utm_epsg
from geo.errors import BoundaryError

__all__ = ["DistrictIndex", "assign_districts"]


@functools.lru_cache(maxsize=8)
def _transformer(epsg: int) -> Transformer:
    """Return a cached lon/lat -> UTM transformer."""
    return Transformer.from_crs(4326, epsg, always_xy=True)


class DistrictIndex:
    """A district layer prepared for repeated point assignment.

    Parameters
    ----------
    districts
        Layer with columns ``district`` and ``geometry`` in EPSG:4326 (see
        :func:`geo.boundaries.load_district_layer`).
    boundary
        Optional city limit (EPSG:4326); points inside it but in no district and farther
        than ``snap_m`` from every district still get the nearest one.
    id_column
        Column holding the district id.
    """

    def __init__(
        self,
        districts: gpd.GeoDataFrame,
        boundary: shapely.Geometry | gpd.GeoDataFrame | gpd.GeoSeries | None = None,
        id_column: str = "district",
    ) -> None:
        if id_column not in districts.columns:
            raise BoundaryError(
                f"district layer has no column {id_column!r}; its columns are "
                f"{list(districts.columns)}"
            )
        if districts.crs is not None and not is_wgs84(districts.crs):
            districts = districts.to_crs(4326)
        ids = [None if pd.isna(v) else str(v) for v in districts[id_column]]
        num = pd.to_numeric(pd.Series(ids, dtype=object), errors="coerce")
        key: Any = num.to_numpy() if not num.isna().any() else np.array(ids, dtype=object)
        order = np.argsort(key, kind="stable")
        # rank[i] = position of district i in natural id order: min rank = lowest id.
        self._rank = np.empty(len(ids), dtype=np.int64)
        self._rank[order] = np.arange(len(ids))
        self.ids = np.array(ids, dtype=object)
        self._by_rank = self.ids[order]
        self._geoms = np.asarray(districts.geometry.values, dtype=object)
        shapely.prepare(self._geoms)
        self._tree = shapely.STRtree(self._geoms)
        self._utm_epsg = local_utm_epsg(districts.total_bounds) if len(districts) else None
        self._geoms_m: npt.NDArray[Any] | None = None
        self._tree_m: shapely.STRtree | None = None
        if isinstance(boundary, gpd.GeoDataFrame | gpd.GeoSeries):
            gs = boundary.geometry if isinstance(boundary, gpd.GeoDataFrame) else boundary
            if gs.crs is not None and not is_wgs84(gs.crs):
                gs = gs.to_crs(4326)
            boundary = shapely.union_all(np.asarray(gs.values, dtype=object))
        self.boundary = boundary
        if boundary is not None:
            shapely.prepare(boundary)

    @property
    def utm_epsg(self) -> int | None:
        """Return the local UTM zone distances are measured in (``None``: no districts)."""
        return self._utm_epsg

    def shapes(self) -> list[tuple[str, int, bytes]]:
        """Return ``(id, rank, WKB)`` per district: what a database needs to apply the rule.

        ``rank`` 0 is the lowest id (it wins on shared edges); WKB is EPSG:4326.
        """
        return [(str(i), int(r), bytes(shapely.to_wkb(g)))
                for i, r, g in zip(self.ids, self._rank, self._geoms, strict=True)
                if i is not None]

    @property
    def _to_utm(self) -> Transformer:
        assert self._utm_epsg is not None
        return _transformer(self._utm_epsg)

    def _projected(self) -> tuple[npt.NDArray[Any], shapely.STRtree]:
        """Return district geometries and their tree in metres (built on first use)."""
        if self._geoms_m is None or self._tree_m is None:
            tr = self._to_utm
            self._geoms_m = np.asarray(
                shapely.transform(self._geoms, lambda c: np.column_stack(tr.transform(*c.T))),
                dtype=object,
            )
            self._tree_m = shapely.STRtree(self._geoms_m)
        return self._geoms_m, self._tree_m

    def _nearest(
        self,
        idx: npt.NDArray[np.int64],
        x: npt.NDArray[Any],
        y: npt.NDArray[Any],
        max_m: float | None,
    ) -> npt.NDArray[np.int64]:
        """Return the lowest rank of the nearest district per point (-1: none in reach)."""
        best = np.full(len(idx), -1, dtype=np.int64)
        if len(idx) == 0 or len(self._geoms) == 0:
            return best
        xm, ym = self._to_utm.transform(x[idx], y[idx])
        pts = shapely.points(xm, ym)
        _, tree = self._projected()
        if max_m is None:
            pairs = tree.query_nearest(pts, all_matches=True)
        else:
            pairs = tree.query_nearest(pts, max_distance=max_m, all_matches=True)
        rank = np.full(len(idx), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(rank, pairs[0], self._rank[pairs[1]])
        hit = rank != np.iinfo(np.int64).max
        best[hit] = rank[hit]
        return best

    def assign(
        self,
        lon: npt.ArrayLike,
        lat: npt.ArrayLike,
        snap_m: float = 50.0,
    ) -> npt.NDArray[np.object_]:
        """Return the district id (``str``) of each point, or ``None`` (see module rule).

        Parameters
        ----------
        lon, lat
            Coordinates in EPSG:4326, same length.
        snap_m
            Points outside every district but within this many metres of one get it.

        Returns
        -------
        numpy.ndarray
            Object array of ``str`` ids or ``None``, same length as ``lon``.
        """
        x = np.asarray(lon, dtype=float).ravel()
        y = np.asarray(lat, dtype=float).ravel()
        if x.shape != y.shape:
            raise BoundaryError(f"lon has {x.size} values but lat has {y.size}; expected equal")
        if snap_m < 0:
            raise BoundaryError(f"snap_m {snap_m} is negative; expected metres >= 0")
        n = x.size
        out = np.full(n, None, dtype=object)
        if n == 0 or len(self._geoms) == 0:
            return out
        ok = np.isfinite(x) & np.isfinite(y)
        okidx = np.flatnonzero(ok)
        xo, yo = x[okidx], y[okidx]
        # Bounding-box candidates from the STRtree, then an exact test against the
        # prepared polygons. (Same answer as query(predicate="intersects"), which does not
        # use the prepared geometries and is ~8x slower on the 10,000 2020 requests.)
        pairs = self._tree.query(shapely.points(xo, yo))
        exact = shapely.intersects_xy(self._geoms[pairs[1]], xo[pairs[0]], yo[pairs[0]])
        pairs = pairs[:, exact]
        big = np.iinfo(np.int64).max
        rank = np.full(len(okidx), big, dtype=np.int64)
        np.minimum.at(rank, pairs[0], self._rank[pairs[1]])
        hit = rank != big
        out[okidx[hit]] = self._by_rank[rank[hit]]
        rest = okidx[~hit]
        if len(rest) and snap_m > 0:
            near = self._nearest(rest, x, y, snap_m)
            got = near >= 0
            out[rest[got]] = self._by_rank[near[got]]
            rest = rest[~got]
        if len(rest) and self.boundary is not None:
            inside = shapely.intersects_xy(self.boundary, x[rest], y[rest])
            rest = rest[inside]
            near = self._nearest(rest, x, y, None)
            got = near >= 0
            out[rest[got]] = self._by_rank[near[got]]
        return out


def assign_districts(
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    districts: gpd.GeoDataFrame,
    boundary: shapely.Geometry | gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    snap_m: float = 50.0,
    *,
    id_column: str = "district",
) -> npt.NDArray[np.object_]:
    """Return the council district id of each point, vectorised.

    See the module docstring for the rule on edges, overlaps, snapping and points
    outside the city. For many calls against the same layer, build a
    :class:`DistrictIndex` once and call :meth:`DistrictIndex.assign`.

    Parameters
    ----------
    lon, lat
        Point coordinates in EPSG:4326 (NaN for unknown).
    districts
        District layer (``district`` and ``geometry`` columns, EPSG:4326).
    boundary
        Optional city limit, used for points in gaps between districts.
    snap_m
        Snap distance in metres for points just outside every district.
    id_column
        Column of ``districts`` holding the id.

    Returns
    -------
    numpy.ndarray
        Object array, one ``str`` id or ``None`` ("outside the city") per input point.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> layer = gpd.GeoDataFrame({"district": ["1", "2"]},
    ...                          geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)
    >>> assign_districts([0.5, 1.0, 5.0], [0.5, 0.5, 5.0], layer).tolist()
    ['1', '1', None]
    """
    return DistrictIndex(districts, boundary, id_column).assign(lon, lat, snap_m)
