"""Read-only queries behind the dashboard's tables and maps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from dispatch.auth import READING, service
from dispatch.model import CLOSED_STATUSES, RequestStatus
from dispatch.store import RequestFilter, UnitOfWork

#: Columns of :func:`requests_frame`, in order.
FRAME_COLUMNS = (
    "id",
    "request_id",
    "source",
    "category",
    "service_code",
    "status",
    "open311_status",
    "channel",
    "district",
    "lon",
    "lat",
    "geocode_precision",
    "address",
    "requested_at",
    "closed_at",
    "service_date",
    "assigned_org",
    "description",
)

OPEN_STATUSES = tuple(s.value for s in RequestStatus if s not in CLOSED_STATUSES)
ALL_STATUSES = tuple(s.value for s in RequestStatus)


@dataclass(frozen=True)
class MapFilter:
    """What a person chose in the map's filters (local dates, inclusive)."""

    categories: tuple[str, ...] | None = None
    districts: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    first_day: date | None = None
    last_day: date | None = None

    def to_request_filter(self, tz: ZoneInfo) -> RequestFilter:
        """Return the store filter, turning local days into UTC instants."""

        def start(day: date) -> datetime:
            return datetime.combine(day, time(0), tzinfo=tz)

        return RequestFilter(
            categories=self.categories,
            districts=self.districts,
            statuses=self.statuses,
            requested_from=start(self.first_day) if self.first_day else None,
            requested_until=start(self.last_day + timedelta(days=1)) if self.last_day else None,
        )


@service(*READING, action="browse requests")
def requests_frame(uow: UnitOfWork, flt: MapFilter, tz: ZoneInfo) -> pd.DataFrame:
    """Return the requests matching ``flt`` as a table (one row per request).

    ``request_id`` is the city's own id (``external_id``); ``id`` is the store key.
    """
    rows = uow.requests.query_columns(flt.to_request_filter(tz))
    records = [
        (
            r.id,
            r.external_id,
            r.source,
            r.category,
            r.service_code,
            r.status,
            RequestStatus(r.status).open311,
            r.channel,
            r.district,
            r.lon,
            r.lat,
            r.geocode_precision,
            r.address,
            r.requested_at,
            r.closed_at,
            r.service_date,
            r.assigned_org,
            r.description,
        )
        for r in rows
    ]
    return pd.DataFrame.from_records(records, columns=list(FRAME_COLUMNS))


@service(*READING, action="browse requests")
def request_date_range(uow: UnitOfWork, tz: ZoneInfo) -> tuple[date, date] | None:
    """Return the first and last local day on which stored requests were made."""
    lo, hi = uow.requests.date_range()
    if lo is None or hi is None:
        return None
    return lo.astimezone(tz).date(), hi.astimezone(tz).date()
