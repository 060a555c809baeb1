"""Values derived from a request once, when it is written, so reads group them in SQL.

Pure. Every write path that sets a request's ``requested_at`` or position stores these
too (imports, intake, sweeps, location fixes, and ``dispatch init`` for older rows):

* ``service_day``: the local day of ``requested_at`` in the city's time zone;
* ``h3_cell``: the H3 cell of the position at :data:`H3_RESOLUTION` as an integer.
  Coarser cells are its parents; :func:`h3_parent` gives them in Python and
  :func:`dispatch.store.aggregates.h3_parent_sql` in SQL, by the same bit rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import h3

#: The finest H3 resolution stored (cells about 50 m across); pages use 6 to 11.
H3_RESOLUTION = 11


def service_day(requested_at: datetime | None, tz: ZoneInfo) -> date | None:
    """Return the local day of ``requested_at`` in ``tz``."""
    return None if requested_at is None else requested_at.astimezone(tz).date()


def h3_cell(lon: float | None, lat: float | None) -> int | None:
    """Return the H3 cell of ``(lon, lat)`` at :data:`H3_RESOLUTION` as an integer."""
    if lon is None or lat is None or not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    # h3 wants (lat, lon): (lon, lat) -> (lat, lon)
    return int(h3.str_to_int(h3.latlng_to_cell(lat, lon, H3_RESOLUTION)))


def h3_parent(cell: int, resolution: int) -> int:
    """Return the parent of an integer H3 cell at a coarser ``resolution``.

    The resolution lives in bits 52-55; digits below it are set to 7 (unused).
    """
    if not 0 <= resolution <= H3_RESOLUTION:
        raise ValueError(f"resolution {resolution} is not between 0 and {H3_RESOLUTION}")
    return (cell & ~(15 << 52)) | (resolution << 52) | ((1 << (45 - 3 * resolution)) - 1)


def derived_values(values: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """Return the derived columns of a request row from the columns it sets.

    Only what can be derived is returned: ``service_day`` when ``requested_at`` is
    there, ``h3_cell`` when ``lon`` and ``lat`` are.
    """
    out: dict[str, Any] = {}
    if "requested_at" in values:
        out["service_day"] = service_day(values["requested_at"], tz)
    if "lon" in values and "lat" in values:
        out["h3_cell"] = h3_cell(values["lon"], values["lat"])
    return out
