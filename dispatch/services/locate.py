"""The import's geocoder: the city's offline address reference, loaded on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispatch.citypack import CityPack
from dispatch.services.imports import LocatedAddress


class ReferenceGeocoder:
    """Adapter from :class:`geo.geocoding.offline.OfflineGeocoder` to what the import needs.

    The reference is loaded on the first :meth:`locate` call, so importing a file in
    which every row has coordinates never pays for it.
    """

    def __init__(self, reference: Path) -> None:
        self.reference = reference
        self._geocoder: Any = None

    @property
    def offline(self) -> Any:
        """Return the loaded :class:`geo.geocoding.offline.OfflineGeocoder` (loading it once)."""
        if self._geocoder is None:
            from geo.geocoding.offline import OfflineGeocoder

            self._geocoder = OfflineGeocoder.from_path(self.reference)
        return self._geocoder

    def locate(self, address: str, zipcode: str | None) -> LocatedAddress | None:
        """Return the position of ``address`` with its precision and confidence."""
        result = self.offline.lookup(address, zipcode)
        precision = str(result.precision)
        if precision == "none" or result.lon is None or result.lat is None:
            return LocatedAddress(None, None, "none", float(result.confidence), None)
        return LocatedAddress(
            float(result.lon),
            float(result.lat),
            precision,
            float(result.confidence),
            result.matched_address,
        )


def pack_geocoder(pack: CityPack) -> ReferenceGeocoder | None:
    """Return the offline geocoder of a city pack, or ``None`` when it ships no reference."""
    path = pack.address_reference
    if path is None or not path.exists():
        return None
    return ReferenceGeocoder(path)
