"""Where requests pile up: H3 hexagons, Getis-Ord Gi* hot and cold spots, repeat spots.

Pure functions on a frame of requests with at least ``request_id``, ``category``,
``district``, ``lon``, ``lat`` and ``requested_at`` (aware UTC). Rows without a position
are ignored (never placed at 0, 0).

Hot and cold spots
    Requests are counted per H3 cell (:func:`hex_counts`). The study area is every cell
    within ``pad_rings`` rings of a cell with a request, so that empty cells take part
    and cold spots can exist. :func:`gi_star` computes the Getis-Ord Gi* z-score of each
    cell with binary weights on the cell and its ``k``-ring neighbours (self included),
    as :class:`esda.G_Local` does with ``transform='B', star=True`` (the tests check the
    two agree). Significance comes from conditional permutations (the cell's own count
    fixed, its neighbours drawn at random from the other cells, seeded), as a two-sided
    pseudo p-value ``2 * (min(#sim >= obs, #sim <= obs) + 1) / (permutations + 1)``,
    corrected for the many cells tested with Benjamini-Hochberg (:func:`bh_adjust`).
    A cell is a hot (cold) spot at confidence 90, 95 or 99 % when its z is positive
    (negative) and its adjusted p-value is at most 0.10, 0.05 or 0.01. esda itself is
    not imported at run time: it takes several seconds to import, more than the whole
    analysis.

Coordinates are ``lon, lat``; H3 speaks ``(lat, lng)`` and every conversion is commented.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import h3
import numpy as np
import numpy.typing as npt
import pandas as pd

from dispatch.analytics import SMALL_SAMPLE
from dispatch.errors import ValidationError

if TYPE_CHECKING:
    from dispatch.planning.problem import Stop

__all__ = [
    "CONFIDENCE_LEVELS",
    "DEFAULT_RESOLUTION",
    "SPOT_RESOLUTION",
    "SWEEP_PREFIX",
    "GiStarParams",
    "area_cells",
    "bh_adjust",
    "cell_boundary",
    "cell_ids",
    "gi_star",
    "gi_star_z",
    "hex_table",
    "period_comparison",
    "repeat_locations",
    "study_area",
    "sweep_stops",
]

#: H3 resolution of the hexagon layer (about 0.74 km² per cell, 460 m edge).
DEFAULT_RESOLUTION = 8
#: H3 resolution of a "spot" for repeat locations: cells about 50 m across (25 m edge).
SPOT_RESOLUTION = 11
#: Request-id prefix of proactive sweep stops (``SWEEP-<h3 cell>``).
SWEEP_PREFIX = "SWEEP-"
#: Confidence levels reported, as (label, BH-adjusted p-value at most, Gi bin).
CONFIDENCE_LEVELS: tuple[tuple[str, float, int], ...] = (
    ("99%", 0.01, 3),
    ("95%", 0.05, 2),
    ("90%", 0.10, 1),
)



def _located(frame: pd.DataFrame) -> pd.DataFrame:
    lon = pd.to_numeric(frame["lon"], errors="coerce")
    lat = pd.to_numeric(frame["lat"], errors="coerce")
    ok = np.isfinite(lon.to_numpy(dtype=float)) & np.isfinite(lat.to_numpy(dtype=float))
    located: pd.DataFrame = frame.loc[ok]
    return located


def cell_ids(lon: npt.ArrayLike, lat: npt.ArrayLike, resolution: int) -> list[str]:
    """Return the H3 cell of each point.

    Parameters
    ----------
    lon, lat
        Positions in EPSG:4326 (finite).
    resolution
        H3 resolution, 0 to 15.

    Returns
    -------
    list[str]
        One cell id per point.
    """
    xs = np.asarray(lon, dtype=float).ravel()
    ys = np.asarray(lat, dtype=float).ravel()
    # (lon, lat) -> (lat, lng) for h3
    return [h3.latlng_to_cell(y, x, resolution) for x, y in zip(xs.tolist(), ys.tolist(),
                                                              strict=True)]


def _cell_centres(cells: Sequence[str]) -> tuple[list[float], list[float]]:
    lons: list[float] = []
    lats: list[float] = []
    for c in cells:
        lat, lng = h3.cell_to_latlng(c)
        # (lat, lng) -> (lon, lat)
        lons.append(lng)
        lats.append(lat)
    return lons, lats


def cell_boundary(cell: str) -> list[tuple[float, float]]:
    """Return the corners of an H3 cell as ``(lon, lat)`` pairs (not closed)."""
    # (lat, lng) -> (lon, lat)
    return [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]


def _group_mode(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Return the most frequent non-missing value per key (ties: smallest value)."""
    work = pd.DataFrame({"key": keys.to_numpy(), "value": values.to_numpy()}).dropna()
    if work.empty:
        return pd.Series(dtype=object)
    work["value"] = work["value"].astype(str)
    sizes = work.groupby(["key", "value"]).size().rename("n").reset_index()
    sizes = sizes.sort_values(["key", "n", "value"], ascending=[True, False, True],
                              kind="stable").drop_duplicates("key")
    return pd.Series(sizes["value"].to_numpy(dtype=object), index=sizes["key"].to_numpy())


def _mode_of(counts: pd.DataFrame, key: str) -> pd.Series:
    """Per cell, the ``key`` value with the most requests (ties: the smallest value)."""
    work = counts[counts[key].notna()].assign(value=lambda f: f[key].astype(str))
    if work.empty:
        return pd.Series(dtype=object)
    work = work.groupby(["cell", "value"])["n"].sum().reset_index()
    work = work.sort_values(["cell", "n", "value"], ascending=[True, False, True],
                            kind="stable").drop_duplicates("cell")
    return pd.Series(work["value"].to_numpy(dtype=object), index=work["cell"].to_numpy())


def hex_table(by_category: pd.DataFrame, by_district: pd.DataFrame | None = None,
              ) -> pd.DataFrame:
    """Shape request counts per H3 cell (counted in SQL) for the maps and Gi*.

    Parameters
    ----------
    by_category
        ``cell`` (integer H3 cell), ``category`` and ``n``: located requests counted by
        cell and category (:func:`dispatch.store.aggregates.count_by`, ``h3_<r>``).
    by_district
        The same by cell and ``district``, for each cell's main district (optional).

    Returns
    -------
    pandas.DataFrame
        One row per cell with at least one request, most requests first: ``cell``
        (H3 string), ``count``, ``lon``, ``lat`` (cell centre), ``category`` (the most
        frequent one) and ``district`` (the most frequent one, or missing).
    """
    columns = ["cell", "count", "lon", "lat", "category", "district"]
    work = by_category[by_category["cell"].notna()]
    if work.empty:
        return pd.DataFrame({c: pd.Series(dtype=float if c in ("lon", "lat") else object)
                             for c in columns}).astype({"count": "int64"})
    totals = work.groupby("cell")["n"].sum().astype("int64")
    out = totals.rename("count").rename_axis("cell").reset_index()
    out["category"] = out["cell"].map(_mode_of(work, "category")).astype(object)
    if by_district is not None and not by_district.empty:
        out["district"] = out["cell"].map(_mode_of(by_district, "district")).astype(object)
    else:
        out["district"] = None
    out["cell"] = [h3.int_to_str(int(c)) for c in out["cell"]]
    lons, lats = _cell_centres(out["cell"].tolist())
    out["lon"], out["lat"] = lons, lats
    out = out.sort_values(["count", "cell"], ascending=[False, True], kind="stable")
    return out[columns].reset_index(drop=True).astype({"count": "int64"})


def study_area(cells: Iterable[str], pad_rings: int = 2) -> list[str]:
    """Return the cells within ``pad_rings`` rings of any of ``cells``, sorted.

    Parameters
    ----------
    cells
        Occupied cells.
    pad_rings
        How many rings of (possibly empty) cells to add around them.

    Returns
    -------
    list[str]
        The occupied cells and their padding, each once.
    """
    area: set[str] = set()
    for c in cells:
        area.update(h3.grid_disk(c, pad_rings))
    return sorted(area)


def area_cells(geometry: object, resolution: int, *, simplify_deg: float = 0.0005) -> list[str]:
    """Return the H3 cells whose centres lie in a (multi)polygon, sorted.

    Use it as the study area of :func:`gi_star` when the region is known (the city
    limit): cells outside the region are then not counted as empty, which would make
    the region's edge look like a cold spot and its inside hot.

    Parameters
    ----------
    geometry
        A shapely (multi)polygon in EPSG:4326 (anything with ``__geo_interface__``).
    resolution
        H3 resolution.
    simplify_deg
        Simplify the outline first by this tolerance in degrees (0: keep it), which
        makes long city limits much faster to fill.

    Returns
    -------
    list[str]
        The cells.
    """
    geom = geometry
    if simplify_deg > 0 and hasattr(geometry, "simplify"):
        geom = geometry.simplify(simplify_deg)
    return sorted(h3.geo_to_cells(geom, resolution))


def bh_adjust(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Return Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    A test is significant at false discovery rate ``alpha`` when its adjusted value is at
    most ``alpha``; this is the step-up rule ``p_(k) <= alpha * k / m``.

    Parameters
    ----------
    p_values
        Raw p-values in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        Adjusted values, monotone in the raw ones, capped at 1.
    """
    p = np.asarray(p_values, dtype=float).ravel()
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    return out


@dataclass(frozen=True)
class GiStarParams:
    """How :func:`gi_star` builds its test.

    Parameters
    ----------
    neighbour_rings
        Neighbours of a cell: the cells within this many rings (1: the 6 adjacent ones).
    pad_rings
        Empty cells added around the occupied ones (the study area).
    method
        ``exact``: p-values from the exact randomisation distribution of the
        neighbours' sum (counts drawn from the other cells, computed by convolution; no
        Monte Carlo error, so even the strongest cells get p-values small enough to pass
        the Benjamini-Hochberg correction over thousands of cells). ``permutation``:
        seeded conditional permutations as esda does (the smallest possible p-value is
        ``2 / (permutations + 1)``, so with 999 permutations and 2,000 cells the
        correction can pass only when about 80 cells or more are extreme).
    permutations
        Conditional permutations for ``method='permutation'``.
    seed
        Seed of the permutations (same seed, same p-values).
    """

    neighbour_rings: int = 1
    pad_rings: int = 1
    method: str = "exact"
    permutations: int = 999
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.neighbour_rings < 1 or self.pad_rings < 0 or self.permutations < 99
                or self.method not in ("exact", "permutation")):
            raise ValidationError(
                f"GiStarParams({self.neighbour_rings}, {self.pad_rings}, {self.method!r}, "
                f"{self.permutations}): expected neighbour_rings >= 1, pad_rings >= 0, "
                "method 'exact' or 'permutation' and permutations >= 99"
            )


def _neighbour_table(cells: Sequence[str], rings: int) -> tuple[npt.NDArray[np.int64],
                                                                npt.NDArray[np.int64]]:
    """Return a padded (n, kmax) table of neighbour indices (-1: none) and counts."""
    index = {c: i for i, c in enumerate(cells)}
    lists = [[index[d] for d in h3.grid_disk(c, rings) if d != c and d in index] for c in cells]
    kmax = max((len(x) for x in lists), default=0)
    table = np.full((len(cells), max(kmax, 1)), -1, dtype=np.int64)
    for i, lst in enumerate(lists):
        table[i, : len(lst)] = lst
    return table, np.array([len(x) for x in lists], dtype=np.int64)


def _draws(rng: np.random.Generator, n_others: int, permutations: int,
           kmax: int) -> npt.NDArray[np.int64]:
    """Return ``(permutations, kmax)`` indices into ``range(n_others)``, distinct per row."""
    k = min(kmax, n_others)
    draws = rng.integers(0, n_others, size=(permutations, k))
    while k > 1:
        srt = np.sort(draws, axis=1)
        bad = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
        if not bad.any():
            break
        draws[bad] = rng.integers(0, n_others, size=(int(bad.sum()), k))
    return draws


def gi_star(
    counts: pd.DataFrame,
    params: GiStarParams | None = None,
    *,
    area: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Getis-Ord Gi* hot and cold spots over H3 cells.

    Parameters
    ----------
    counts
        :func:`hex_counts` output (``cell``, ``count``; other columns are carried over).
    params
        Neighbourhood, padding, permutations and seed.
    area
        Study area, e.g. :func:`area_cells` of the city limit (occupied cells outside it
        are added); default :func:`study_area` of the occupied cells with
        ``params.pad_rings`` rings of empty cells around them.

    Returns
    -------
    pandas.DataFrame
        One row per cell of the study area: ``cell``, ``count`` (0 for padding),
        ``lon``, ``lat``, ``neighbours``, ``z``, ``p`` (two-sided permutation pseudo
        p-value), ``q`` (Benjamini-Hochberg adjusted), ``confidence`` (``99%``, ``95%``,
        ``90%`` or ``''``), ``spot`` (``hot``, ``cold`` or ``''``), ``gi_bin`` (-3 .. 3,
        signed like ArcGIS's Gi_Bin) and the carried columns. Sorted by ``z``, highest
        first.
    """
    params = params or GiStarParams()
    occupied = counts[counts["count"] > 0]
    if area is not None:
        cells = sorted(set(area) | set(occupied["cell"]))
    else:
        cells = study_area(occupied["cell"], params.pad_rings)
    base = pd.DataFrame({"cell": cells})
    extra = [c for c in counts.columns if c not in ("cell", "count", "lon", "lat")]
    merged = base.merge(counts[["cell", "count", *extra]], on="cell", how="left")
    merged["count"] = merged["count"].fillna(0).astype("int64")
    lons, lats = _cell_centres(cells)
    merged["lon"], merged["lat"] = lons, lats
    n = len(cells)
    x = merged["count"].to_numpy(dtype=float)
    z = np.zeros(n)
    p = np.ones(n)
    neighbours = np.zeros(n, dtype=np.int64)
    if n >= 3 and x.std() > 0:
        table, k = _neighbour_table(cells, params.neighbour_rings)
        neighbours = k
        z, local = _gi_star_z(x, table, k)
        integral = bool(np.all(x == np.rint(x))) and x.min() >= 0
        if params.method == "exact" and integral:
            p = _exact_p(x, k, local - x)
        else:
            p = _permutation_p(x, table, k, local, params)
    q = bh_adjust(p)
    merged["neighbours"] = neighbours
    merged["z"] = z
    merged["p"] = p
    merged["q"] = q
    confidence = np.full(n, "", dtype=object)
    gi_bin = np.zeros(n, dtype=np.int64)
    for label, alpha, level in reversed(CONFIDENCE_LEVELS):
        hit = q <= alpha
        confidence[hit] = label
        gi_bin[hit] = level
    gi_bin = gi_bin * np.sign(z).astype(np.int64)
    merged["confidence"] = confidence
    merged["spot"] = np.where(gi_bin > 0, "hot", np.where(gi_bin < 0, "cold", ""))
    merged["gi_bin"] = gi_bin
    merged = merged.sort_values(["z", "cell"], ascending=[False, True], kind="stable")
    first = ["cell", "count", "lon", "lat", "neighbours", "z", "p", "q", "confidence", "spot",
             "gi_bin"]
    return merged[first + extra].reset_index(drop=True)


def _exact_p(
    x: npt.NDArray[np.float64],
    k: npt.NDArray[np.int64],
    neighbour_sum: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Two-sided p-values of the neighbours' sums under randomisation, computed exactly.

    Under the null hypothesis a cell's ``k`` neighbours hold counts drawn at random from
    the other cells. With ``n`` in the hundreds or more, drawing with or without
    replacement differ by ``O(k / n)``; the draws are taken with replacement from the
    other cells' counts, so the sum's distribution is the ``k``-fold convolution of
    their histogram (done with a real FFT; tails below about 1e-13 are rounding noise and
    clipped at 0, far below any level used here).
    """
    xi = np.rint(x).astype(np.int64)
    n = xi.size
    hist = np.bincount(xi).astype(float)
    t = np.rint(neighbour_sum).astype(np.int64)
    p = np.ones(n)
    kmax = int(k.max()) if k.size else 0
    length = kmax * (hist.size - 1) + 1
    size = 1 << max(1, int(np.ceil(np.log2(length))))
    for y in np.unique(xi):
        pmf = hist.copy()
        pmf[y] -= 1.0
        pmf /= n - 1
        spectrum = np.fft.rfft(pmf, size)
        sel = np.flatnonzero(xi == y)
        for kk in np.unique(k[sel]):
            cells = sel[k[sel] == kk]
            if kk == 0:
                continue
            dist = np.clip(np.fft.irfft(spectrum**kk, size)[: kk * (hist.size - 1) + 1], 0, None)
            dist /= dist.sum()
            upper = np.cumsum(dist[::-1])[::-1]  # P(T >= t)
            lower = np.cumsum(dist)  # P(T <= t)
            tt = np.clip(t[cells], 0, dist.size - 1)
            beyond = t[cells] > dist.size - 1
            p_up = np.where(beyond, 0.0, upper[tt])
            p_low = lower[tt]
            p[cells] = np.minimum(1.0, 2.0 * np.minimum(p_up, p_low))
    return p


def _gi_star_z(
    x: npt.NDArray[np.float64], table: npt.NDArray[np.int64], k: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the Gi* z-scores (binary weights, self included) and the local sums."""
    n = x.size
    padded = np.append(x, 0.0)  # index -1 reads the 0 appended at the end
    local = x + padded[table].sum(axis=1)
    w = (k + 1).astype(float)
    mean = x.mean()
    s = x.std()  # population standard deviation, as Getis and Ord (1995)
    spread = s * np.sqrt(np.clip((n * w - w**2) / (n - 1), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(spread > 0, (local - mean * w) / spread, 0.0)
    return z, local


def gi_star_z(values: npt.ArrayLike, neighbours: Sequence[Sequence[int]]) -> npt.NDArray[
        np.float64]:
    """Return Getis-Ord Gi* z-scores for any neighbour lists (binary weights, self in).

    The same statistic :func:`gi_star` uses on H3 cells, for arbitrary neighbourhoods:
    ``esda.G_Local(values, w, transform='B', star=True).Zs``.

    Parameters
    ----------
    values
        One value per observation.
    neighbours
        For each observation the indices of its neighbours (itself excluded).

    Returns
    -------
    numpy.ndarray
        z-scores; 0 where the values do not vary.
    """
    x = np.asarray(values, dtype=float).ravel()
    if len(neighbours) != x.size:
        raise ValidationError(f"{x.size} values but {len(neighbours)} neighbour lists")
    k = np.array([len(nb) for nb in neighbours], dtype=np.int64)
    table = np.full((x.size, max(1, int(k.max(initial=0)))), -1, dtype=np.int64)
    for i, nb in enumerate(neighbours):
        table[i, : len(nb)] = list(nb)
    if x.size < 3 or x.std() == 0:
        return np.zeros(x.size)
    return _gi_star_z(x, table, k)[0]


def _permutation_p(
    x: npt.NDArray[np.float64],
    table: npt.NDArray[np.int64],
    k: npt.NDArray[np.int64],
    local: npt.NDArray[np.float64],
    params: GiStarParams,
) -> npt.NDArray[np.float64]:
    """Two-sided conditional-permutation pseudo p-values of the local sums."""
    n = x.size
    rng = np.random.default_rng(params.seed)
    perms = params.permutations
    draws = _draws(rng, n - 1, perms, table.shape[1])
    kmax = draws.shape[1]
    cells = np.arange(n)
    greater = np.zeros(n)
    smaller = np.zeros(n)
    # sums of the first j draws, per permutation; the draws skip cell i by shifting
    # indices >= i up by one (as esda's conditional randomisation does)
    chunk = max(1, 2_000_000 // max(1, perms * kmax))
    for start in range(0, n, chunk):
        idx = cells[start : start + chunk]
        shifted = draws[None, :, :] + (draws[None, :, :] >= idx[:, None, None])
        vals = x[shifted]  # (m, perms, kmax)
        mask = np.arange(kmax)[None, None, :] < np.minimum(k[idx], kmax)[:, None, None]
        sims = x[idx][:, None] + (vals * mask).sum(axis=2)
        obs = local[idx][:, None]
        greater[idx] = (sims >= obs - 1e-9).sum(axis=1)
        smaller[idx] = (sims <= obs + 1e-9).sum(axis=1)
    one_sided = (np.minimum(greater, smaller) + 1) / (perms + 1)
    return np.minimum(1.0, 2.0 * one_sided)


# --------------------------------------------------------------------------- repeats


def repeat_locations(
    frame: pd.DataFrame,
    categories: Sequence[str] | None = None,
    *,
    min_requests: int = 2,
    resolution: int = SPOT_RESOLUTION,
) -> pd.DataFrame:
    """Rank the spots (about 50 m across) with repeated requests.

    Parameters
    ----------
    frame
        Requests with ``request_id``, ``category``, ``lon``, ``lat``, ``requested_at``
        and optionally ``address`` and ``district``.
    categories
        Only these categories (the city pack's ``sweep_categories``: the same wall
        tagged again, the same alley used); ``None`` for all.
    min_requests
        Smallest number of requests that makes a repeat spot.
    resolution
        H3 resolution of a spot (11: cells about 50 m across).

    Returns
    -------
    pandas.DataFrame
        One row per spot, most requests first: ``spot``, ``requests``, ``first``,
        ``last`` (UTC), ``address`` (most frequent), ``district``, ``categories``
        (comma-separated), ``lon``, ``lat`` (spot centre) and ``request_ids`` (the
        requests' ids, oldest first, comma-separated), and ``ids`` (the same as a list).
    """
    columns = ["spot", "requests", "first", "last", "address", "district", "categories",
               "lon", "lat", "request_ids", "ids"]
    work = frame if categories is None else frame[frame["category"].isin(list(categories))]
    work = _located(work)
    if work.empty:
        return pd.DataFrame(columns=columns)
    work = work.assign(
        spot=cell_ids(work["lon"], work["lat"], resolution),
        requested_at=pd.to_datetime(work["requested_at"], utc=True),
    ).sort_values(["requested_at", "request_id"], kind="stable")
    sizes = work.groupby("spot").size()
    keep = sizes[sizes >= min_requests].index
    work = work[work["spot"].isin(keep)]
    if work.empty:
        return pd.DataFrame(columns=columns)
    work = work.assign(request_id=work["request_id"].astype(str),
                       category=work["category"].astype(str))
    grouped = work.groupby("spot", sort=False)
    out = pd.DataFrame({
        "requests": grouped.size(),
        "first": grouped["requested_at"].min(),
        "last": grouped["requested_at"].max(),
        "categories": grouped["category"].agg(lambda c: ", ".join(sorted(set(c)))),
        "ids": grouped["request_id"].agg(list),
    })
    out.index.name = "spot"
    out = out.reset_index()
    spot_keys = pd.Series(work["spot"].to_numpy(), dtype=object)
    for col in ("address", "district"):
        if col in work:
            mode = _group_mode(spot_keys, work[col].astype(object).reset_index(drop=True))
            out[col] = out["spot"].map(mode).astype(object)
        else:
            out[col] = None
    lons, lats = _cell_centres(out["spot"].astype(str).tolist())
    out["lon"], out["lat"] = lons, lats
    out["request_ids"] = out["ids"].map(", ".join)
    out = out[columns]
    out = out.sort_values(["requests", "last", "spot"], ascending=[False, False, True],
                          kind="stable")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- sweeps


def sweep_stops(
    spots: pd.DataFrame,
    service_s: Mapping[str, int],
    *,
    top: int = 10,
    min_confidence: float = 0.05,
    categories: Sequence[str] | None = None,
) -> list[Stop]:
    """Turn the strongest hot spots into optional, low-priority "sweep" stops.

    A sweep stop sends a crew to the centre of a hot cell to look for and clear what
    has not been reported yet. It carries no request: its id is ``SWEEP-<h3 cell>``,
    its urgency 0 (the planner's lowest prize, dropped first when time runs short) and
    its size 1.

    Parameters
    ----------
    spots
        :func:`gi_star` output with ``category`` and ``district`` carried over (as
        :func:`hex_counts` provides them).
    service_s
        Category code -> time at the stop (the city pack's ``service_time_s``);
        categories missing here are skipped.
    top
        At most this many stops, highest z first.
    min_confidence
        Largest adjusted p-value (``q``) of a hot spot to sweep.
    categories
        Only cells whose most frequent category is one of these (``None``: any).

    Returns
    -------
    list[Stop]
        :class:`dispatch.planning.problem.Stop` records, strongest hot spot first.
    """
    from dispatch.planning.problem import Stop

    if top <= 0 or spots.empty:
        return []
    hot = spots[(spots["spot"] == "hot") & (spots["q"] <= min_confidence)]
    hot = hot[hot["category"].isin(list(service_s))]
    if categories is not None:
        hot = hot[hot["category"].isin(list(categories))]
    hot = hot.sort_values(["z", "cell"], ascending=[False, True], kind="stable").head(top)
    out: list[Stop] = []
    for rec in hot[["cell", "category", "district", "lon", "lat"]].to_dict("records"):
        district = rec["district"]
        out.append(Stop(
            request_id=f"{SWEEP_PREFIX}{rec['cell']}",
            category=str(rec["category"]),
            district=None if district is None or pd.isna(district) else str(district),
            lon=float(rec["lon"]),
            lat=float(rec["lat"]),
            service_s=int(service_s[str(rec["category"])]),
            size=1,
            urgency=0.0,
        ))
    return out


# --------------------------------------------------------------------------- over time


def previous_period(first_day: date, last_day: date) -> tuple[date, date]:
    """Return the period of equal length just before ``first_day .. last_day`` (inclusive)."""
    if last_day < first_day:
        raise ValidationError(f"period {first_day} .. {last_day} ends before it starts")
    length = (last_day - first_day).days + 1
    return first_day - timedelta(days=length), first_day - timedelta(days=1)


def period_comparison(
    current: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    by: str = "district",
    small_sample: int = SMALL_SAMPLE,
) -> pd.DataFrame:
    """Compare request counts of a period with the previous period of equal length.

    Parameters
    ----------
    current, previous
        Requests of each period counted in SQL by ``by`` (column ``n``); see
        :func:`previous_period` for the earlier period's days.
    by
        Column compared by (``district``, ``category`` ...); missing values are shown
        as ``(none)``.
    small_sample
        Rows where either period has fewer requests are flagged ``small_sample`` and
        sorted last.

    Returns
    -------
    pandas.DataFrame
        ``by``, ``previous``, ``current``, ``change``, ``change_pct`` (missing when the
        previous count is 0), ``small_sample``; large samples first, by change.
    """
    def keyed(counts: pd.DataFrame) -> pd.Series:
        key = counts[by].astype(object).where(counts[by].notna(), "(none)").astype(str)
        return counts["n"].groupby(key).sum()

    out = pd.DataFrame({"current": keyed(current), "previous": keyed(previous)})
    out = out.fillna(0).astype("int64")
    out.index.name = by
    out = out.reset_index()
    out["change"] = out["current"] - out["previous"]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(out["previous"] > 0, 100.0 * out["change"] / out["previous"], np.nan)
    out["change_pct"] = np.round(pct, 1)
    out["small_sample"] = (out["current"] < small_sample) | (out["previous"] < small_sample)
    out = out.sort_values(["small_sample", "change", by], ascending=[True, False, True],
                          kind="stable")
    return out[[by, "previous", "current", "change", "change_pct",
                "small_sample"]].reset_index(drop=True)


def day_bounds(first_day: date, last_day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the UTC instants ``[start of first_day, start of the day after last_day)``."""
    start = datetime.combine(first_day, time(0), tzinfo=tz)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz)
    return start, end
