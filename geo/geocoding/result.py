"""What a geocoder answers: :class:`Precision`, :class:`Method`, :class:`GeocodeResult`.

This module is light on purpose (standard library only): :mod:`dispatch` imports it for
the precision of every stored position without loading the geocoder's index code.
Coordinates are ``lon, lat`` (EPSG:4326).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from geo.errors import GeocodeError

__all__ = [
    "GEOCODER_PRECISIONS",
    "HOUSE_LEVEL",
    "PRECISION_LABELS",
    "Candidate",
    "GeocodeResult",
    "Method",
    "Precision",
    "as_precision",
    "describe_method",
    "not_located",
    "precision_label",
]


class Precision(StrEnum):
    """How precisely a position locates an address, best geocoder answer first.

    ``point`` to ``none`` are the geocoder's answers. Two more values describe positions
    that did not come from the geocoder: ``source`` (the coordinates came with the record
    from the city's own system) and ``manual`` (a person placed the pin). The database
    stores the value (a string); people read :attr:`label`.
    """

    POINT = "point"
    INTERPOLATED = "interpolated"
    INTERSECTION = "intersection"
    BLOCK = "block"
    STREET = "street"
    ZIP = "zip"
    NONE = "none"
    SOURCE = "source"
    MANUAL = "manual"

    @property
    def label(self) -> str:
        """Return the plain words a page shows for this precision (never the code)."""
        return PRECISION_LABELS[self]


#: What each precision is called on the pages: the one table of them (issue 13).
PRECISION_LABELS: dict[Precision, str] = {
    Precision.POINT: "house number",
    Precision.INTERPOLATED: "house number, estimated between known numbers",
    Precision.INTERSECTION: "at an intersection",
    Precision.BLOCK: "on the block, house not known",
    Precision.STREET: "street only, house not known",
    Precision.ZIP: "ZIP code only, street not known",
    Precision.NONE: "not located",
    Precision.SOURCE: "from the city's own system",
    Precision.MANUAL: "placed by hand",
}


def precision_label(value: Precision | str | None) -> str:
    """Return the plain words for a precision as stored (see :data:`PRECISION_LABELS`).

    Parameters
    ----------
    value : Precision, str or None
        The stored precision; ``None`` (nothing recorded) reads as *not located*.

    Returns
    -------
    str
        The label; a string that is no precision is shown as it is (it is not hidden).
    """
    try:
        return as_precision(value).label
    except GeocodeError:
        return str(value)


def as_precision(value: Precision | str | None) -> Precision:
    """Read a precision as stored (a :class:`Precision` or its value).

    Parameters
    ----------
    value : Precision, str or None
        ``None`` (nothing recorded) reads as :attr:`Precision.NONE`.

    Returns
    -------
    Precision
        The enum member.

    Raises
    ------
    GeocodeError
        For a string that is no precision.
    """
    if value is None:
        return Precision.NONE
    try:
        return Precision(value)
    except ValueError:
        raise GeocodeError(
            f"precision {value!r} is not one of {[p.value for p in Precision]}"
        ) from None


#: The precisions a geocoder answers with, best first (``source``/``manual`` excluded).
GEOCODER_PRECISIONS: tuple[Precision, ...] = (
    Precision.POINT,
    Precision.INTERPOLATED,
    Precision.INTERSECTION,
    Precision.BLOCK,
    Precision.STREET,
    Precision.ZIP,
    Precision.NONE,
)

#: Precisions that locate a house.
HOUSE_LEVEL = frozenset({Precision.POINT, Precision.INTERPOLATED})


class Method(StrEnum):
    """How an answer was found; :attr:`explanation` says it in plain words."""

    EXACT = "exact"
    BETWEEN = "between"
    BEYOND = "beyond"
    GRID = "grid"
    GRID_BLIND = "grid-blind"
    GRID_LONG = "grid-long"
    NEAR_END = "near-end"
    ACROSS = "across"
    ACROSS_BLIND = "across-blind"
    CENTERLINE = "centerline"
    ORDINAL = "ordinal"
    CROSSING_WALK = "crossing-walk"
    IN_BLOCK = "in-block"
    KNOWN = "known"
    CROSSING = "crossing"
    STRETCH = "stretch"
    STREET = "street"
    ZIP = "zip"
    NEAREST = "nearest"
    NONE = ""

    @property
    def explanation(self) -> str:
        """Return a short phrase for supervisors (``""`` for :attr:`NONE`)."""
        return _EXPLANATIONS[self]


_EXPLANATIONS: dict[Method, str] = {
    Method.EXACT: "the address itself is known",
    Method.BETWEEN: "between two known numbers on the street",
    Method.BEYOND: "a short way past the last known number on the street",
    Method.GRID: "walked along the street from its nearest known number",
    Method.GRID_BLIND: "walked from a lone known number along the city's number grid",
    Method.GRID_LONG: "a long walk along the number grid: check the pin",
    Method.NEAR_END: "next to a known number on the street",
    Method.ACROSS: "walked through the divide from the other side of the street name",
    Method.ACROSS_BLIND: "walked through the divide from the other side of the street name",
    Method.CENTERLINE: "along the street's centerline address range",
    Method.ORDINAL: "between the same number on the numbered streets either side",
    Method.CROSSING_WALK: "walked from a known crossing of the street: check the pin",
    Method.IN_BLOCK: "a known address inside that block",
    Method.KNOWN: "a known intersection",
    Method.CROSSING: "where the two streets' lines cross",
    Method.STRETCH: "the middle of the street between the two cross streets",
    Method.STREET: "somewhere on the street: the house is not known",
    Method.ZIP: "the ZIP code's centre: the street is not known there",
    Method.NEAREST: "the known address nearest to the point",
    Method.NONE: "",
}


def describe_method(method: str) -> str:
    """Say in plain words how an answer was found (:attr:`GeocodeResult.method`).

    Parameters
    ----------
    method : str
        A :class:`Method` or its value, such as ``between`` or ``crossing-walk``.

    Returns
    -------
    str
        A short phrase for supervisors; ``""`` for an unknown or empty method.
    """
    try:
        return Method(method).explanation
    except ValueError:
        return ""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One possible location of an ambiguous query.

    Attributes
    ----------
    lon, lat : float
        Position (EPSG:4326).
    matched_address : str
        What the candidate stands for (``1200 W MAIN ST, 90012``).
    precision : Precision
        As for :class:`GeocodeResult`.
    confidence : float
        0-1.
    source : str
        Name of the reference source the candidate rests on (``""`` when none).
    """

    lon: float
    lat: float
    matched_address: str
    precision: Precision
    confidence: float
    source: str = ""


@dataclass(frozen=True, slots=True)
class GeocodeResult:
    """A geocoder's answer for one query.

    Attributes
    ----------
    query : str
        The text as it came in.
    lon, lat : float or None
        Location (EPSG:4326); both ``None`` when ``precision`` is ``none``.
    precision : Precision
        What the location stands for; low precision is never passed off as a house.
    confidence : float
        0-1; lowered for typos, wrong directionals or types, long interpolations,
        ambiguity.
    matched_address : str
        Canonical address (or street, intersection, ZIP) the answer stands for.
    unit : str
        Unit kept from the query (``APT 4``), ``""`` when none.
    zip : str
        ZIP of the answer, ``""`` when unknown.
    candidates : tuple of Candidate
        All candidates when the query is ambiguous (e.g. the same street name in two
        parts of the city and no ZIP to choose); empty otherwise.
    distance_m : float or None
        For reverse geocoding: distance from the query point to the answer.
    source : str
        Name of the reference source (as the city pack names it, e.g. ``cams``) of the
        points the answer rests on: the matched point for ``exact``, the anchor points
        of an estimate (``cams+requests`` when they come from two sources), ``""`` when
        the answer rests on no address point (ZIP centre, street crossing).
    method : Method
        How the location was found (see :class:`Method`).
    """

    query: str
    lon: float | None
    lat: float | None
    precision: Precision
    confidence: float
    matched_address: str = ""
    unit: str = ""
    zip: str = ""
    candidates: tuple[Candidate, ...] = ()
    distance_m: float | None = None
    source: str = ""
    method: Method = Method.NONE

    @property
    def located(self) -> bool:
        """Whether the answer has a position."""
        return self.lon is not None and self.lat is not None

    @property
    def ambiguous(self) -> bool:
        """Whether more than one candidate fits the query."""
        return len(self.candidates) > 1

    @property
    def house_level(self) -> bool:
        """Whether the answer locates a house (``point`` or ``interpolated``)."""
        return self.precision in HOUSE_LEVEL


def not_located(query: str, unit: str = "", zip_code: str = "") -> GeocodeResult:
    """Return the answer for a query that cannot be located (precision ``none``).

    Parameters
    ----------
    query : str
        The text as it came in.
    unit, zip_code : str
        Unit and ZIP read from the query, kept for the caller.

    Returns
    -------
    GeocodeResult
        No position, confidence 0.
    """
    return GeocodeResult(query, None, None, Precision.NONE, 0.0, "", unit, zip_code)
