"""Offline geocoding behind one seam, the :class:`~geo.geocoding.protocol.Geocoder` protocol.

Modules, by concern:

* :mod:`~geo.geocoding.result`: :class:`Precision` (with the label of each), :class:`Method`
  (with the plain-words explanation of each), :class:`GeocodeResult` and its :class:`Candidate` s;
* :mod:`~geo.geocoding.protocol`: the :class:`Geocoder` protocol;
* :mod:`~geo.geocoding.tuning`: :class:`GeocoderTuning`, every tunable number;
* :mod:`~geo.geocoding.index`: the query-independent index of an address reference;
* :mod:`~geo.geocoding.streets`: resolving typed street names, scoring their runs;
* :mod:`~geo.geocoding.numbers`: placing a house number on a run;
* :mod:`~geo.geocoding.intersections`: known and geometric street crossings;
* :mod:`~geo.geocoding.offline`: :class:`~geo.geocoding.offline.OfflineGeocoder`, which
  ranks the candidates and answers;
* :mod:`~geo.geocoding.batch`: :func:`~geo.geocoding.batch.geocode_frame`;
* :mod:`~geo.geocoding.geopy_adapter`: geopy's ``geocode``/``reverse`` face.

Only the light names are exported here (importing the package does not load numpy or
scipy); import the geocoder itself from :mod:`geo.geocoding.offline`.
"""

from __future__ import annotations

from geo.geocoding.protocol import Geocoder
from geo.geocoding.result import (
    GEOCODER_PRECISIONS,
    HOUSE_LEVEL,
    PRECISION_LABELS,
    Candidate,
    GeocodeResult,
    Method,
    Precision,
    as_precision,
    describe_method,
    precision_label,
)

__all__ = [
    "GEOCODER_PRECISIONS",
    "HOUSE_LEVEL",
    "PRECISION_LABELS",
    "Candidate",
    "GeocodeResult",
    "Geocoder",
    "Method",
    "Precision",
    "as_precision",
    "describe_method",
    "precision_label",
]
