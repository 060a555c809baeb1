"""Travel models used by the planner (they live in :mod:`geo.travel`; re-exported here)."""

from __future__ import annotations

from geo.travel import (
    DEFAULT_CIRCUITY,
    DEFAULT_SPEED_KMH,
    HaversineTravel,
    OsrmTravel,
    TravelModel,
    great_circle_m,
)

__all__ = [
    "DEFAULT_CIRCUITY",
    "DEFAULT_SPEED_KMH",
    "HaversineTravel",
    "OsrmTravel",
    "TravelModel",
    "great_circle_m",
]
