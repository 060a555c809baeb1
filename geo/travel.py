"""Travel times and distances between points: the ``TravelModel`` strategy.

Two implementations:

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

import json
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

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
