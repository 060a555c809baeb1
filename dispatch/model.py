"""Domain model of Curbside: requests, statuses, channels, categories, depots and crews.

Pure data: nothing here touches a database, a file or the network. Coordinates are
always ``lon, lat`` (EPSG:4326); timestamps are timezone-aware UTC ``datetime``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time

from dispatch.errors import ValidationError
from geo.geocoding.result import Precision, as_precision


class RequestStatus(enum.StrEnum):
    """Internal status of a service request; each maps to Open311 ``open``/``closed``."""

    NEW = "new"
    TRIAGED = "triaged"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CLOSED_NOT_FIXED = "closed_not_fixed"
    CANCELLED = "cancelled"
    DUPLICATE = "duplicate"

    @property
    def open311(self) -> str:
        """Return the Open311 GeoReport v2 status, ``open`` or ``closed``.

        Residents see ``closed`` only when nothing is left to do for them: the problem
        was fixed, or the request was cancelled or merged into another. A crew that
        could not fix it (``closed_not_fixed``: item not out, blocked, too large ...)
        closes its work order, but the resident's request stays ``open`` in Open311,
        with the reason in ``status_notes``.
        """
        return "open" if self is RequestStatus.CLOSED_NOT_FIXED or self.is_open else "closed"

    @property
    def is_open(self) -> bool:
        """Return whether the request still needs work."""
        return self not in CLOSED_STATUSES


CLOSED_STATUSES = frozenset(
    {
        RequestStatus.COMPLETED,
        RequestStatus.CLOSED_NOT_FIXED,
        RequestStatus.CANCELLED,
        RequestStatus.DUPLICATE,
    }
)


class Channel(enum.StrEnum):
    """How a resident (or a crew) reported the request."""

    PHONE = "phone"
    APP = "app"
    WEB = "web"
    EMAIL = "email"
    DRIVER_SELF_REPORT = "driver_self_report"
    COUNCIL_OFFICE = "council_office"
    LETTER = "letter"
    CHAT = "chat"
    OTHER = "other"

    @property
    def label(self) -> str:
        """How a person reads the channel ("Web form", not ``web``)."""
        return _CHANNEL_LABELS[self]


_CHANNEL_LABELS: dict[Channel, str] = {
    Channel.PHONE: "Phone",
    Channel.APP: "App",
    Channel.WEB: "Web form",
    Channel.EMAIL: "Email",
    Channel.DRIVER_SELF_REPORT: "Crew report",
    Channel.COUNCIL_OFFICE: "Council office",
    Channel.LETTER: "Letter",
    Channel.CHAT: "Chat",
    Channel.OTHER: "Other",
}


def channel_from_text(text: str | None, names: Mapping[str, Channel] | None = None) -> Channel:
    """Map a free-text source name (``Call``, ``Mobile App`` ...) to a :class:`Channel`.

    Parameters
    ----------
    text
        Source as the city's system wrote it; case and repeated spaces are ignored.
    names
        How the city writes its channels (lower case text -> channel): the city pack's
        ``[channels]`` table. The channels' own names (``phone``, ``driver self
        report`` ...) need no entry.

    Returns
    -------
    Channel
        The matching channel, or :attr:`Channel.OTHER` for unknown or empty text.
    """
    if not text:
        return Channel.OTHER
    key = " ".join(text.split()).lower()
    if names and key in names:
        return names[key]
    try:
        return Channel(key.replace(" ", "_"))
    except ValueError:
        return Channel.OTHER


@dataclass(frozen=True)
class Category:
    """A request category of a city pack.

    Parameters
    ----------
    code
        Stable identifier, e.g. ``bulky_items``.
    label
        Name shown to people, e.g. ``Bulky items``.
    service_codes
        The city's own request types that belong to this category (MyLA311
        ``requesttype`` values, Open311 ``service_code`` values).
    routable
        Whether the planner routes crews to it by default.
    service_time_s
        Time a crew spends at one stop of this category.
    sla_h
        Target hours from request to close.
    colour
        Map colour (CSS hex).
    booked
        Whether requests are booked for a service day (bulky-item pickups: MyLA311
        ``servicedate``); for other categories a service date is only the city's own
        scheduling note and is ignored when planning.
    sweep
        Whether hot spots of this category get proactive sweep stops (and count for
        repeat locations): graffiti and dumping come back where they were, bulky
        pickups are booked.
    open311_code
        The category's Open311 ``service_code``: stable and URL-safe. Empty means the
        category code itself; a pack sets it to keep a published code when it renames
        a category. The city's own ``service_codes`` stay aliases for import.
    """

    code: str
    label: str
    service_codes: tuple[str, ...]
    routable: bool
    service_time_s: int
    sla_h: float
    colour: str = "#555555"
    booked: bool = False
    sweep: bool = False
    open311_code: str = ""

    def __post_init__(self) -> None:
        if not self.code or not self.code.replace("_", "").isalnum():
            raise ValidationError(
                f"category code {self.code!r} must be a non-empty identifier like 'bulky_items'"
            )
        if self.open311_code and not _URL_SAFE_CODE.fullmatch(self.open311_code):
            raise ValidationError(
                f"category {self.code!r}: open311_code {self.open311_code!r} must be 1-64 "
                "characters of a-z, 0-9, '_', '-' and '.', starting with a letter or digit")
        if self.service_time_s < 0:
            raise ValidationError(
                f"category {self.code!r}: service_time_s {self.service_time_s} is negative"
            )
        if self.sla_h <= 0:
            raise ValidationError(f"category {self.code!r}: sla_h {self.sla_h} must be positive")

    @property
    def public_code(self) -> str:
        """Return the Open311 ``service_code`` (``open311_code``, else the category code)."""
        return self.open311_code or self.code


#: What an Open311 service code may hold: it appears in URLs (``services/{code}.json``).
_URL_SAFE_CODE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Depot:
    """A crew base: where routes start and end.

    Parameters
    ----------
    code
        Short identifier, e.g. ``NC``.
    name
        Display name.
    address
        Street address.
    lon, lat
        Position in EPSG:4326.
    """

    code: str
    name: str
    address: str
    lon: float
    lat: float


@dataclass(frozen=True)
class Crew:
    """A field crew of a city pack's roster.

    Parameters
    ----------
    name
        Unique crew name, e.g. ``NC-bulky-1``.
    categories
        Category codes the crew can serve (its skills).
    depot
        Code of the home depot.
    districts
        District ids the crew serves (empty: the whole city as one service area).
    shift_start, shift_end
        Local wall-clock shift window.
    capacity
        Truck capacity in size units (a bulky pickup of one item is 1).
    organisation
        The city's own name for the crew's organisation (MyLA311 ``assignto``).
    lunch_start, lunch_end
        Window in which the 30-minute lunch break must start (local time).
    lunch_s
        Length of the lunch break.
    max_duration_s
        Optional cap on the route's total duration.
    """

    name: str
    categories: tuple[str, ...]
    depot: str
    districts: tuple[str, ...]
    shift_start: time
    shift_end: time
    capacity: int
    organisation: str = ""
    lunch_start: time = time(11, 30)
    lunch_end: time = time(13, 30)
    lunch_s: int = 1800
    max_duration_s: int | None = None

    def __post_init__(self) -> None:
        if self.shift_end <= self.shift_start:
            raise ValidationError(
                f"crew {self.name!r}: shift_end {self.shift_end} is not after "
                f"shift_start {self.shift_start}"
            )
        if self.capacity <= 0:
            raise ValidationError(f"crew {self.name!r}: capacity {self.capacity} must be positive")
        if not self.categories:
            raise ValidationError(f"crew {self.name!r}: categories is empty; expected at least one")


@dataclass
class ServiceRequest:
    """A service request as the importers and services pass it around (not the ORM row).

    Parameters
    ----------
    source
        Where the record came from (``myla311``, ``open311``, ``csv``, ``phone`` ...).
    external_id
        The id in that source; ``(source, external_id)`` is unique.
    """

    source: str
    external_id: str
    service_code: str
    category: str
    requested_at: datetime
    status: RequestStatus = RequestStatus.NEW
    description: str = ""
    address: str = ""
    zipcode: str = ""
    lon: float | None = None
    lat: float | None = None
    geocode_precision: str | None = None  # a Precision (its value as stored)
    geocode_confidence: float | None = None
    matched_address: str | None = None
    district: str | None = None
    channel: Channel = Channel.OTHER
    updated_at: datetime | None = None
    closed_at: datetime | None = None
    expected_at: datetime | None = None
    service_date: date | None = None
    assigned_org: str = ""
    priority: int = 0
    size: int = 1
    extra: dict[str, str] = field(default_factory=dict)


#: Precisions trustworthy enough to send a crew to without a supervisor's look.
ROUTABLE_PRECISIONS = frozenset(
    {Precision.SOURCE, Precision.POINT, Precision.INTERPOLATED, Precision.INTERSECTION,
     Precision.MANUAL}
)  # fmt: skip
#: Below this confidence an interpolated position (e.g. a long walk along the street's
#: house-number grid: 9.8% of those land over 1 km off in the 2017 evaluation) waits
#: for a supervisor in "Needs location" instead of going on a route.
MIN_ROUTABLE_CONFIDENCE = 0.5


def is_routable(precision: Precision | str | None, confidence: float | None) -> bool:
    """Return whether a request's position is good enough to send a crew to.

    Parameters
    ----------
    precision
        A :class:`~geo.geocoding.result.Precision` or its stored value; ``None``
        (nothing recorded) is not routable.
    confidence
        The position's confidence (0-1); only interpolated positions need 0.5.

    Raises
    ------
    geo.errors.GeocodeError
        For a string that is no precision.
    """
    value = as_precision(precision)
    if value not in ROUTABLE_PRECISIONS:
        return False
    if value is Precision.INTERPOLATED:
        return (confidence or 0.0) >= MIN_ROUTABLE_CONFIDENCE
    return True
