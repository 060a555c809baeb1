"""Read side of the supervisors' triage page: open requests with age and SLA, events.

The actions themselves (change category, duplicate, cancel, priority) are in
:mod:`dispatch.services.requests`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from dispatch.auth import SUPERVISING, Principal, service
from dispatch.citypack import CityPack
from dispatch.errors import NotFoundError, ValidationError
from dispatch.services.audit import details_text, in_words
from dispatch.services.queries import OPEN_STATUSES
from dispatch.services.requests import PRIORITIES
from dispatch.store import RequestFilter, UnitOfWork

#: SLA windows a supervisor can filter on.
SLA_WINDOWS = ("all", "overdue", "due_24h")
#: Columns of :func:`triage_frame`, in order.
TRIAGE_COLUMNS = (
    "id",
    "request_id",
    "category",
    "category_label",
    "status",
    "district",
    "address",
    "lon",
    "lat",
    "requested_at",
    "age_h",
    "sla_due",
    "sla_left_h",
    "priority",
    "priority_label",
    "precision",
    "description",
    "version",
)


@dataclass(frozen=True)
class TriageFilter:
    """What a supervisor chose on the triage page.

    Parameters
    ----------
    categories, districts
        Keep only these (``None``: all).
    statuses
        Internal statuses to show; ``None`` means every open status.
    min_age_h
        Keep requests at least this old.
    sla
        ``all``, ``overdue`` (SLA due before now) or ``due_24h`` (due within the next
        24 hours, not yet overdue).
    """

    categories: Sequence[str] | None = None
    districts: Sequence[str] | None = None
    statuses: Sequence[str] | None = None
    min_age_h: float = 0.0
    sla: str = "all"

    def __post_init__(self) -> None:
        if self.sla not in SLA_WINDOWS:
            raise ValidationError(f"SLA window {self.sla!r} is not one of {list(SLA_WINDOWS)}")
        closed = sorted(set(self.statuses or ()) - set(OPEN_STATUSES))
        if closed:
            raise ValidationError(
                f"statuses {closed} are not open; triage shows only {list(OPEN_STATUSES)}")


#: Rows the triage table shows at most (the oldest first); the counts cover them all.
TRIAGE_LIMIT = 1_000
#: "Due soon": within this many hours.
DUE_SOON_H = 24.0
#: Columns of the request frame read for triage (the rest is computed from them).
_READ = ("id", "request_id", "category", "status", "district", "address", "lon", "lat",
         "requested_at", "closed_at", "priority", "geocode_precision", "description",
         "version")


def _request_filter(pack: CityPack, flt: TriageFilter, now: datetime) -> RequestFilter:
    """Return the SQL filter of ``flt`` at ``now``: open, old enough, in the SLA window."""
    categories = list(flt.categories) if flt.categories else list(pack.categories)
    windows: dict[str, tuple[datetime | None, datetime | None]] | None = None
    if flt.sla != "all":
        windows = {}
        for code in categories:
            cat = pack.categories.get(code)
            if cat is None:
                continue  # no SLA: neither overdue nor due
            due_at = now - timedelta(hours=cat.sla_h)  # reported before this: overdue
            windows[code] = ((None, due_at) if flt.sla == "overdue" else
                             (due_at, due_at + timedelta(hours=DUE_SOON_H, microseconds=1)))
    return RequestFilter(
        categories=flt.categories, districts=flt.districts, open_at=now,
        statuses=list(flt.statuses) if flt.statuses else None,
        # age >= min_age_h: reported at or before now - min_age_h
        requested_until=(now - timedelta(hours=flt.min_age_h, microseconds=-1)
                         if flt.min_age_h > 0 else None),
        category_windows=windows)


def shape_triage(raw: pd.DataFrame, pack: CityPack, now: datetime) -> pd.DataFrame:
    """Return :data:`TRIAGE_COLUMNS` from the stored columns, vectorised (pure).

    A request closed later than ``now`` in the record (a replayed day) shows as ``new``:
    it was open at that moment.
    """
    sla_h = {c.code: float(c.sla_h) for c in pack.categories.values()}
    labels = {c.code: c.label for c in pack.categories.values()}
    status = raw["status"].where(~(raw["closed_at"] > pd.Timestamp(now)), "new")
    age_h = (pd.Timestamp(now) - raw["requested_at"]).dt.total_seconds() / 3600.0
    target_h = raw["category"].map(sla_h).astype(float)
    due = raw["requested_at"] + pd.to_timedelta(target_h, unit="h")
    left_h = target_h - age_h
    return pd.DataFrame({
        "id": raw["id"], "request_id": raw["request_id"], "category": raw["category"],
        "category_label": raw["category"].map(lambda c: labels.get(c, c)),
        "status": status, "district": raw["district"], "address": raw["address"],
        "lon": raw["lon"], "lat": raw["lat"], "requested_at": raw["requested_at"],
        "age_h": age_h.round(1), "sla_due": due, "sla_left_h": left_h.round(1),
        "priority": raw["priority"],
        "priority_label": raw["priority"].map(lambda p: PRIORITIES.get(p, str(p))),
        "precision": raw["geocode_precision"].fillna("none"),
        "description": raw["description"], "version": raw["version"],
    }, columns=list(TRIAGE_COLUMNS))


@service(*SUPERVISING, action="triage requests")
def triage_frame(
    uow: UnitOfWork, pack: CityPack, flt: TriageFilter, now: datetime | None = None,
    limit: int = TRIAGE_LIMIT,
) -> pd.DataFrame:
    """Return the requests open now matching ``flt``, oldest first, with age and SLA.

    "Open now" is by the store's clock and the recorded timestamps: on a replayed day a
    request closed later that day is still open. ``sla_due`` is ``requested_at`` plus
    the category's ``sla_h``; ``sla_left_h`` is negative when overdue. ``version`` is the
    row version the caller saw (pass it back as ``expected`` to the triage actions).
    Timestamps are UTC. One filtered SQL read of at most ``limit`` rows (see
    :func:`triage_counts` for how many match in all).
    """
    now = now or uow.now()
    raw = uow.stats.frame(_request_filter(pack, flt, now), _READ, limit=limit)
    return shape_triage(raw, pack, now)


@dataclass(frozen=True)
class TriageCounts:
    """How many open requests match a triage filter (all of them, not just those shown)."""

    total: int
    overdue: int
    due_soon: int
    unlocated: int


@service(*SUPERVISING, action="triage requests")
def triage_counts(
    uow: UnitOfWork, pack: CityPack, flt: TriageFilter, now: datetime | None = None
) -> TriageCounts:
    """Return the counts of :func:`triage_frame`'s filter, in one SQL ``GROUP BY``."""
    now = now or uow.now()
    sla_h = {c.code: float(c.sla_h) for c in pack.categories.values()}
    counts = uow.stats.sla_states(_request_filter(pack, flt, now), now, sla_h, DUE_SOON_H)

    def n(mask: pd.Series) -> int:
        return int(counts.loc[mask, "n"].sum())

    return TriageCounts(total=n(counts["n"] >= 0), overdue=n(counts["state"] == "overdue"),
                        due_soon=n(counts["state"] == "soon"),
                        unlocated=n(counts["located"] == 0))


@service(*SUPERVISING, action="triage requests")
def request_pk(uow: UnitOfWork, request_id: str) -> int:
    """Return the store id of the request whose (city) request id is ``request_id``.

    Raises
    ------
    NotFoundError
        When no request has that id, or several sources share it.
    AccessDeniedError
        When the acting principal is not a supervisor or admin.
    """
    found = uow.requests.by_external_id(request_id.strip())
    if not found:
        raise NotFoundError(f"no request has the id {request_id.strip()!r}")
    if len(found) > 1:
        raise NotFoundError(
            f"request id {request_id.strip()!r} is used by {len(found)} sources "
            f"({sorted(r.source for r in found)}); pick the request in the table instead")
    return found[0].id


@service(*SUPERVISING, action="see the history of requests")
def events_frame(uow: UnitOfWork, pk: int, pack: CityPack) -> pd.DataFrame:
    """Return who did what to one request, oldest first (local time)."""
    events = uow.events.for_entity("request", pk)
    return pd.DataFrame(
        [
            (e.at.astimezone(pack.timezone).strftime("%Y-%m-%d %H:%M:%S"), Principal.who(e.actor),
             in_words(e.action), details_text(e.details))
            for e in events
        ],
        columns=["when", "who", "action", "details"],
    )
