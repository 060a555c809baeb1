"""The one seam between Curbside and a geocoder: the :class:`Geocoder` protocol.

Imports, phone intake, batch files and the "Needs location" page all take a
``Geocoder``; tests fake it with any object that has these two methods.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from geo.geocoding.result import GeocodeResult

__all__ = ["Geocoder"]


@runtime_checkable
class Geocoder(Protocol):
    """Forward and reverse geocoding, answered as :class:`GeocodeResult`."""

    def lookup(self, query: object, zip_code: object = None) -> GeocodeResult:
        """Geocode one address text (``zip_code``: a separate ZIP field, if any).

        Never raises on bad text: what cannot be located has precision ``none``.
        """
        ...

    def reverse_lookup(self, lon: float, lat: float) -> GeocodeResult:
        """Return the known address nearest to ``(lon, lat)``, with ``distance_m``."""
        ...
