"""A geopy-style face for any :class:`~geo.geocoding.protocol.Geocoder`.

geopy's geocoders answer ``geocode(query, exactly_one=True)`` and ``reverse(query)``
with :class:`geopy.location.Location` objects whose points are ``(lat, lon)``;
:class:`GeopyAdapter` gives the offline geocoder that face, so code written for geopy
can use it. Everywhere else in Curbside coordinates are ``lon, lat``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from geo.errors import GeocodeError
from geo.geocoding.protocol import Geocoder
from geo.geocoding.result import GeocodeResult

if TYPE_CHECKING:
    from geopy.location import Location

__all__ = ["GeopyAdapter", "read_latlon", "to_location"]


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


def read_latlon(query: Any) -> tuple[float, float]:
    """Read a geopy-style reverse query as ``(lat, lon)``.

    Parameters
    ----------
    query : geopy.point.Point, sequence or str
        A Point, a ``(lat, lon)`` pair or a ``"lat, lon"`` string (latitude first).

    Returns
    -------
    tuple of float
        ``(lat, lon)``.

    Raises
    ------
    GeocodeError
        When the query is none of those.
    """
    if hasattr(query, "latitude") and hasattr(query, "longitude"):
        return float(query.latitude), float(query.longitude)
    if isinstance(query, str):
        parts = [p for p in query.replace(";", ",").split(",") if p.strip()]
        if len(parts) != 2:
            raise GeocodeError(f"reverse query {query!r} is not 'lat, lon'")
        try:
            return float(parts[0]), float(parts[1])
        except ValueError:
            raise GeocodeError(f"reverse query {query!r} is not 'lat, lon' numbers") from None
    if isinstance(query, Sequence) and len(query) >= 2:
        return float(query[0]), float(query[1])
    raise GeocodeError(f"reverse query {query!r} is not a (lat, lon) pair or geopy Point")


class GeopyAdapter:
    """geopy's ``geocode``/``reverse`` over a :class:`~geo.geocoding.protocol.Geocoder`.

    Parameters
    ----------
    geocoder : Geocoder
        What answers (e.g. :class:`~geo.geocoding.offline.OfflineGeocoder`).
    """

    def __init__(self, geocoder: Geocoder) -> None:
        self.geocoder = geocoder

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
        res = self.geocoder.lookup(query)
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
        query : geopy.point.Point, (lat, lon) tuple, or ``"lat, lon"`` string
            geopy's convention: latitude first.
        exactly_one : bool
            Return one Location (else a one-element list).

        Returns
        -------
        geopy.location.Location, list of Location, or None
        """
        lat, lon = read_latlon(query)  # (lat, lon) -> (lon, lat) on the next line
        loc = to_location(self.geocoder.reverse_lookup(lon, lat))
        if loc is None or exactly_one:
            return loc
        return [loc]
