"""A geopy-style face for any :class:`~geo.geocoding.protocol.Geocoder`.

geopy's geocoders answer ``geocode(query, exactly_one=True)`` and ``reverse(query)``
with :class:`geopy.location.Location` objects whose points are ``(lat, lon)``;
:class:`GeopyAdapter` gives the offline geocoder that face, so code written for geopy
can use it: its errors are geopy's exception classes too (``geopy.exc.GeocoderQueryError``,
``GeocoderUnavailable``), so ``geopy.extra.rate_limiter.RateLimiter`` handles them, and
like an online geocoder it answers ``None`` for a point it knows nothing near. Everywhere
else in Curbside coordinates are ``lon, lat``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from geopy.exc import GeocoderQueryError, GeocoderUnavailable

from geo.errors import AddressReferenceError, GeocodeError, GeoError
from geo.geocoding.protocol import Geocoder
from geo.geocoding.result import GeocodeResult

if TYPE_CHECKING:
    from geopy.location import Location

__all__ = [
    "GeopyAdapter",
    "GeopyQueryError",
    "GeopyUnavailableError",
    "coordinates_in",
    "read_latlon",
    "to_location",
]


def to_location(result: GeocodeResult) -> Location | None:
    """Return an answer as a :class:`geopy.location.Location` (None if not located).

    Parameters
    ----------
    result : GeocodeResult
        A geocoder's answer.

    Returns
    -------
    geopy.location.Location or None
        ``raw`` holds the answer's fields (precision and candidates as plain values).
    """
    if result.lon is None or result.lat is None:
        return None
    raw = asdict(result)
    raw["precision"] = str(result.precision)
    raw["method"] = str(result.method)
    raw["candidates"] = [
        {**asdict(c), "precision": str(c.precision)} for c in result.candidates
    ]
    from geopy.location import Location  # geopy is slow to import: only when asked

    # (lon, lat) -> (lat, lon): geopy points are (latitude, longitude).
    return Location(result.matched_address, (result.lat, result.lon), raw)


#: A coordinate pair as text, latitude first ("34.0537 -118.2428", "34.0537, -118.2428"):
#: both numbers need a decimal point, so that "16815 91406" (a number and a ZIP) is not one.
_LATLON = re.compile(
    r"^\s*([+-]?\d{1,3}\.\d+)\s*(?:[,;]\s*|\s+)([+-]?\d{1,3}\.\d+)\s*$")

#: Beyond this distance from the nearest known address a reverse query answers None.
DEFAULT_MAX_DISTANCE_M = 250.0


class GeopyQueryError(GeocodeError, GeocoderQueryError):  # type: ignore[misc]
    """A query geopy's tools see as a bad query (``geopy.exc.GeocoderQueryError``)."""


class GeopyUnavailableError(GeocodeError, GeocoderUnavailable):  # type: ignore[misc]
    """The address reference cannot be used (``geopy.exc.GeocoderUnavailable``)."""


def coordinates_in(text: str) -> tuple[float, float] | None:
    """Return ``(lat, lon)`` when ``text`` is a coordinate pair, latitude first, else None."""
    match = _LATLON.match(text)
    if not match:
        return None
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return lat, lon


def read_latlon(query: Any) -> tuple[float, float]:
    """Read a geopy-style reverse query as ``(lat, lon)``.

    Parameters
    ----------
    query : geopy.point.Point, sequence or str
        A Point, a ``(lat, lon)`` pair or a string geopy's ``Point`` reads
        (``"34.0537, -118.2428"``, ``"34.0537 -118.2428"``, degrees-minutes-seconds);
        latitude first.

    Returns
    -------
    tuple of float
        ``(lat, lon)``.

    Raises
    ------
    GeopyQueryError
        When the query is none of those, or out of range (a ``GeocodeError`` and a
        ``geopy.exc.GeocoderQueryError``).
    """
    if hasattr(query, "latitude") and hasattr(query, "longitude"):
        lat, lon = float(query.latitude), float(query.longitude)
    elif isinstance(query, str):
        from geopy.point import Point

        try:
            point = Point(query)
        except ValueError:
            raise GeopyQueryError(
                f"reverse query {query[:60]!r} is not 'lat, lon' or 'lat lon' numbers") from None
        lat, lon = float(point.latitude), float(point.longitude)
    elif isinstance(query, Sequence) and len(query) >= 2:
        try:
            lat, lon = float(query[0]), float(query[1])
        except (TypeError, ValueError):
            raise GeopyQueryError(f"reverse query {query!r} is not a (lat, lon) pair of numbers"
                                  ) from None
    else:
        raise GeopyQueryError(
            f"reverse query {query!r} is not a (lat, lon) pair or geopy Point")
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
            and -180 <= lon <= 180):
        raise GeopyQueryError(f"reverse query ({lat}, {lon}) is not a latitude and longitude")
    return lat, lon


class GeopyAdapter:
    """geopy's ``geocode``/``reverse`` over a :class:`~geo.geocoding.protocol.Geocoder`.

    Parameters
    ----------
    geocoder : Geocoder
        What answers (e.g. :class:`~geo.geocoding.offline.OfflineGeocoder`).
    max_distance_m : float
        A reverse query farther than this from every known address answers ``None``
        (the nearest address of the city is no answer for Paris, or for 0, 0).
    within : callable, optional
        ``within(lon, lat)`` says whether a point is in the area served (the city):
        reverse queries and coordinate queries outside it answer ``None``.
    """

    def __init__(self, geocoder: Geocoder, *, max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
                 within: Callable[[float, float], bool] | None = None) -> None:
        if not max_distance_m > 0:
            raise GeocodeError(f"max_distance_m {max_distance_m} must be positive")
        self.geocoder = geocoder
        self.max_distance_m = max_distance_m
        self.within = within

    def _lookup(self, query: str) -> GeocodeResult:
        try:
            return self.geocoder.lookup(query)
        except AddressReferenceError as err:
            raise GeopyUnavailableError(str(err)) from err
        except GeoError as err:
            raise GeopyQueryError(str(err)) from err

    def _reverse(self, lon: float, lat: float) -> GeocodeResult | None:
        if self.within is not None and not self.within(lon, lat):
            return None
        try:
            res = self.geocoder.reverse_lookup(lon, lat)
        except AddressReferenceError as err:
            raise GeopyUnavailableError(str(err)) from err
        except GeoError as err:
            raise GeopyQueryError(str(err)) from err
        if not res.located or res.distance_m is None or res.distance_m > self.max_distance_m:
            return None
        return res

    def geocode(
        self, query: str, exactly_one: bool = True, **_: Any
    ) -> Location | list[Location] | None:
        """Geocode like a geopy geocoder.

        Parameters
        ----------
        query : str
            Address text, or a coordinate pair latitude first (``"34.0537 -118.2428"``,
            as geopy reads it): that point, named by the nearest known address within
            ``max_distance_m`` (``None`` outside the area served).
        exactly_one : bool
            Return one :class:`~geopy.location.Location` (else a list of candidates).

        Returns
        -------
        geopy.location.Location, list of Location, or None
            ``None`` when not located; ``raw`` holds the :class:`GeocodeResult` fields.
        """
        pair = coordinates_in(query) if isinstance(query, str) else None
        if pair is not None:
            lat, lon = pair
            if self.within is not None and not self.within(lon, lat):
                return None
            near = self._reverse(lon, lat)
            from geopy.location import Location

            raw = {"query": query, "lon": lon, "lat": lat, "precision": "manual",
                   "matched_address": near.matched_address if near else "",
                   "distance_m": near.distance_m if near else None}
            loc = Location(near.matched_address if near else f"{lat:.6f}, {lon:.6f}",
                           (lat, lon), raw)
            return loc if exactly_one else [loc]
        res = self._lookup(query)
        loc = to_location(res)
        if exactly_one:
            return loc
        if loc is None:
            return None
        if not res.candidates:
            return [loc]
        out = []
        for c in res.candidates:
            raw = {**(loc.raw or {}), "lon": c.lon, "lat": c.lat, "confidence": c.confidence,
                   "matched_address": c.matched_address, "precision": str(c.precision),
                   "source": c.source}  # fmt: skip
            # (lon, lat) -> (lat, lon) for geopy
            out.append(type(loc)(c.matched_address, (c.lat, c.lon), raw))
        return out

    def reverse(
        self, query: Any, exactly_one: bool = True, **_: Any
    ) -> Location | list[Location] | None:
        """Reverse geocode like a geopy geocoder.

        Parameters
        ----------
        query : geopy.point.Point, (lat, lon) tuple, or a ``"lat, lon"``/``"lat lon"`` string
            geopy's convention: latitude first.
        exactly_one : bool
            Return one Location (else a one-element list).

        Returns
        -------
        geopy.location.Location, list of Location, or None
            ``None`` outside the area served, or farther than ``max_distance_m`` from
            every known address.
        """
        lat, lon = read_latlon(query)  # (lat, lon) -> (lon, lat) on the next line
        res = self._reverse(lon, lat)
        loc = to_location(res) if res is not None else None
        if loc is None or exactly_one:
            return loc
        return [loc]
