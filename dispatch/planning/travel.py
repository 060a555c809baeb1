"""Travel models used by the planner (they live in :mod:`geo.travel`; re-exported here)."""

from __future__ import annotations

from geo.travel import (
    DEFAULT_CIRCUITY,
    DEFAULT_SPEED_KMH,
    BandedTravel,
    HaversineTravel,
    NetworkTravel,
    OsrmTravel,
    TravelModel,
    TravelSettings,
    fit_banded,
    great_circle_m,
    travel_from_spec,
    travel_spec,
)

__all__ = [
    "DEFAULT_CIRCUITY",
    "DEFAULT_SPEED_KMH",
    "BandedTravel",
    "HaversineTravel",
    "NetworkTravel",
    "OsrmTravel",
    "TravelModel",
    "TravelSettings",
    "fit_banded",
    "great_circle_m",
    "travel_from_spec",
    "travel_spec",
]
