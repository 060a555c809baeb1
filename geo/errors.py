"""Errors raised by :mod:`geo`.

Every message says what came in and what was expected, naming the file and the
field where there is one, e.g. ``district 'CD 99' is not one of 1-15 in
los_angeles/council_districts.geojson``.
"""

from __future__ import annotations


class GeoError(Exception):
    """Base class of every error raised by :mod:`geo`."""


class BoundaryError(GeoError):
    """A boundary layer (districts, city limit) is missing, malformed or invalid."""


class GeocodeError(GeoError):
    """An address reference or a geocoding request cannot be used as given."""


class AddressReferenceError(GeocodeError):
    """An address reference file is missing, malformed or stale."""


class TravelError(GeoError):
    """A travel-time matrix cannot be computed from the given inputs."""
