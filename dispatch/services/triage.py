"""Read side of the supervisors' triage page: open requests with age and SLA, events.

The actions themselves (change category, duplicate, cancel, priority) are in
:mod:`dispatch.services.requests`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from dispatch.auth import SUPERVISING, service
from dispatch.citypack import CityPack
from dispatch.errors import NotFoundError, ValidationError
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


@service(*SUPERVISING, action="triage requests")
def triage_frame(
    uow: UnitOfWork, pack: CityPack, flt: TriageFilter, now: datetime | None = None
) -> pd.DataFrame:
    """Return the requests open now matching ``flt``, oldest first, with age and SLA.

    "Open now" is by the store's clock and the recorded timestamps: on a replayed day a
    request closed later that day is still open. ``sla_due`` is ``requested_at`` plus
    the category's ``sla_h``; ``sla_left_h`` is negative when overdue. ``version`` is the
    row version the caller saw (pass it back as ``expected`` to the triage actions).
    Timestamps are UTC.
    """
    now = now or uow.now()
    rows = uow.requests.query(RequestFilter(
        categories=flt.categories, districts=flt.districts, open_at=now,
        statuses=list(flt.statuses) if flt.statuses else None))
    records = []
    for r in rows:
        status = r.status
        if r.closed_at is not None and r.closed_at > now:
            status = "new"  # closed later in the record: open at this moment of the replay
        cat = pack.categories.get(r.category)
        age_h = (now - r.requested_at).total_seconds() / 3600.0
        if age_h < flt.min_age_h:
            continue
        due = r.requested_at + timedelta(hours=cat.sla_h) if cat else None
        left_h = (due - now).total_seconds() / 3600.0 if due else None
        if flt.sla == "overdue" and (left_h is None or left_h >= 0):
            continue
        if flt.sla == "due_24h" and (left_h is None or not 0 <= left_h <= 24):
            continue
        records.append((
            r.id, r.external_id, r.category, cat.label if cat else r.category, status,
            r.district, r.address, r.lon, r.lat, r.requested_at, round(age_h, 1), due,
            None if left_h is None else round(left_h, 1), r.priority,
            PRIORITIES.get(r.priority, str(r.priority)), r.geocode_precision or "none",
            r.description, r.version,
        ))
    return pd.DataFrame.from_records(records, columns=list(TRIAGE_COLUMNS))


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
            (e.at.astimezone(pack.timezone).strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action,
             ", ".join(f"{k}: {v}" for k, v in (e.details or {}).items()))
            for e in events
        ],
        columns=["when", "who", "action", "details"],
    )
