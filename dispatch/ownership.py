"""Who owns which field of a request, and what a re-import may change.

Pure. Every request field belongs either to its **source** (what the city's 311 system
says: its status and close time, description, address, coordinates ...) or to Curbside's
**workflow** (scheduling, crew outcomes, manual fixes, priority). An import changes only
source fields:

* the source's status and close time are always recorded (``source_status``,
  ``source_closed_at``); the request's own ``status``/``closed_at`` follow them only
  while the source owns the status. Once the workflow has taken it (scheduled, a crew
  outcome, a supervisor's cancel), the local state stands; if the source then says
  something else (closed while a crew is on it), both values are kept as a *conflict*
  for a supervisor to settle;
* source coordinates are recorded too (``source_lon``/``source_lat``), but never replace
  a supervisor's manual fix, and a position is never erased by a file without one;
* a field a supervisor changed by hand (its category) is an *override*: the source's
  value is noted, never applied.

:func:`reconcile` applies these rules to one stored request and one incoming record.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dispatch.errors import ValidationError
from dispatch.model import CLOSED_STATUSES, RequestStatus
from geo.geocoding import Precision

#: Plain source-owned fields: an import writes them unless a supervisor overrode them.
SOURCE_FIELDS: tuple[str, ...] = (
    "service_code",
    "category",
    "description",
    "address",
    "zipcode",
    "channel",
    "requested_at",
    "updated_at",
    "expected_at",
    "service_date",
    "assigned_org",
    "extra",
)

#: Overrides a supervisor can make, and the source fields each one covers.
OVERRIDE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "category": ("category", "service_code"),
    "location": ("lon", "lat"),
}

#: ``status_owner`` values.
OWNER_SOURCE = "source"
OWNER_WORKFLOW = "workflow"

#: Columns of the live position, set together.
POSITION_COLUMNS = ("lon", "lat", "geocode_precision", "geocode_confidence", "matched_address")

#: Precision recorded for coordinates that came with the record from the city's system.
SOURCE_PRECISION = Precision.SOURCE


@dataclass(frozen=True)
class Position:
    """A position and how it was found (``lon, lat``)."""

    lon: float
    lat: float
    precision: str
    confidence: float
    matched_address: str | None = None


@dataclass
class Reconciliation:
    """What a re-import does to one stored request.

    Attributes
    ----------
    changes
        Column values to write (source columns and the live columns the source owns).
    conflict
        Set when the source now disagrees with a status the workflow owns: both values.
    ignored
        Source fields whose new value was not applied (a supervisor's override), with
        the source's value, for the event log.
    position_changed
        Whether the live position changes (the district must be found again).
    """

    changes: dict[str, Any] = field(default_factory=dict)
    conflict: dict[str, Any] | None = None
    ignored: dict[str, Any] = field(default_factory=dict)
    position_changed: bool = False

    @property
    def changed(self) -> bool:
        """Return whether anything is written."""
        return bool(self.changes)


def _same(old: Any, new: Any) -> bool:
    if old in (None, "") and new in (None, ""):
        return True
    if isinstance(old, float) and isinstance(new, float):
        return abs(old - new) < 1e-9
    return bool(old == new)


def _closed(status: str | RequestStatus | None) -> bool:
    return status is not None and RequestStatus(status) in CLOSED_STATUSES


def reconcile(
    stored: Mapping[str, Any],
    incoming: Mapping[str, Any],
    supplied: Collection[str],
    *,
    sides_only: bool = False,
    geocoded: Position | None = None,
    now: datetime | None = None,
) -> Reconciliation:
    """Return what a re-import changes on one stored request.

    Parameters
    ----------
    stored
        The stored request's columns (at least the source fields, ``status``,
        ``closed_at``, ``status_owner``, ``source_status``, ``source_closed_at``, the
        position columns, ``source_lon``/``source_lat`` and ``overrides``).
    incoming
        The record's values (source fields, ``status``, ``closed_at``, ``lon``/``lat``).
    supplied
        The fields the record actually carried (a file without a column says nothing
        about that field).
    sides_only
        The source only says open or closed (Open311): a status on the same side as
        the recorded one is no change.
    geocoded
        Where the geocoder placed the record's address, when it has no coordinates.
    now
        When the import runs (recorded with a conflict).

    Returns
    -------
    Reconciliation
        The changes, and any conflict for a supervisor.
    """
    out = Reconciliation()
    overrides = set(stored.get("overrides") or ())
    locked_fields = {f for o in overrides for f in OVERRIDE_FIELDS.get(o, ())}

    for name in SOURCE_FIELDS:
        if name not in supplied or _same(stored.get(name), incoming.get(name)):
            continue
        if name in locked_fields:
            out.ignored[name] = incoming.get(name)
            continue
        out.changes[name] = incoming.get(name)

    if "status" in supplied:
        _reconcile_status(stored, incoming, sides_only, out, now)
    _reconcile_position(stored, incoming, supplied, geocoded, "location" in overrides, out)
    return out


def _reconcile_status(
    stored: Mapping[str, Any],
    incoming: Mapping[str, Any],
    sides_only: bool,
    out: Reconciliation,
    now: datetime | None,
) -> None:
    new_status = RequestStatus(incoming["status"])
    new_closed = incoming.get("closed_at")
    old_status = stored.get("source_status")
    if old_status is not None and sides_only and (
            _closed(old_status) == _closed(new_status)):
        return
    if old_status == new_status.value and _same(stored.get("source_closed_at"), new_closed):
        return
    out.changes["source_status"] = new_status.value
    out.changes["source_closed_at"] = new_closed
    if stored.get("status_owner", OWNER_SOURCE) == OWNER_SOURCE:
        if stored.get("status") != new_status.value:
            out.changes["status"] = new_status.value
        if not _same(stored.get("closed_at"), new_closed):
            out.changes["closed_at"] = new_closed
        return
    local = RequestStatus(stored["status"])
    if (local in CLOSED_STATUSES) == (new_status in CLOSED_STATUSES):
        return  # both open or both closed: the local detail stands, nothing to settle
    out.conflict = {
        "field": "status",
        "local": local.value,
        "local_closed_at": _iso(stored.get("closed_at")),
        "source": new_status.value,
        "source_closed_at": _iso(new_closed),
        "seen_at": _iso(now),
    }


def _reconcile_position(
    stored: Mapping[str, Any],
    incoming: Mapping[str, Any],
    supplied: Collection[str],
    geocoded: Position | None,
    manual: bool,
    out: Reconciliation,
) -> None:
    lon, lat = incoming.get("lon"), incoming.get("lat")
    if "lon" in supplied and "lat" in supplied and lon is not None and lat is not None:
        if not (_same(stored.get("source_lon"), lon) and _same(stored.get("source_lat"), lat)):
            out.changes["source_lon"], out.changes["source_lat"] = lon, lat
        new = Position(float(lon), float(lat), SOURCE_PRECISION, 1.0, None)
    elif geocoded is not None:
        if stored.get("geocode_precision") == SOURCE_PRECISION and stored.get("lon") is not None:
            return  # the source placed it before; a geocoder's guess does not replace that
        new = geocoded
    else:
        return  # nothing new: a position is never erased
    if manual:
        if not (_same(stored.get("lon"), new.lon) and _same(stored.get("lat"), new.lat)):
            out.ignored["position"] = [new.lon, new.lat]
        return
    current = (stored.get("lon"), stored.get("lat"), stored.get("geocode_precision"))
    if (_same(current[0], new.lon) and _same(current[1], new.lat)
            and current[2] == new.precision):
        return
    out.changes.update(lon=new.lon, lat=new.lat, geocode_precision=new.precision,
                       geocode_confidence=new.confidence, matched_address=new.matched_address)
    out.position_changed = True


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def with_override(overrides: Collection[str], name: str) -> list[str]:
    """Return ``overrides`` with ``name`` added (sorted, no duplicates)."""
    if name not in OVERRIDE_FIELDS:
        raise ValidationError(f"override {name!r} is not one of {sorted(OVERRIDE_FIELDS)}")
    return sorted({*overrides, name})
