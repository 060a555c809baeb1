"""Read the MyLA311 CSV extract into ``ServiceRequest`` objects (bench/test helper).

Stand-in for ``dispatch/importers/myla311.py`` until the importer lands.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pandas as pd

from dispatch.model import RequestStatus, ServiceRequest
from dispatch.planning.replay import LA_SERVICE_CODES, LA_TZ

ROOT = Path(__file__).resolve().parents[1]
LA_CSV = ROOT / "data" / "requests" / "los_angeles" / "myla311_2020-01-01_to_03.csv"

_STATUS = {
    "Closed": RequestStatus.COMPLETED,
    "Cancelled": RequestStatus.CANCELLED,
    "Open": RequestStatus.NEW,
    "Pending": RequestStatus.TRIAGED,
    "Referred Out": RequestStatus.CLOSED_NOT_FIXED,
}


def _local_to_utc(col: pd.Series) -> pd.Series:
    t = pd.to_datetime(col, format="%m/%d/%y %H:%M", errors="coerce")
    return t.dt.tz_localize(LA_TZ, ambiguous="NaT", nonexistent="shift_forward").dt.tz_convert(UTC)


def load_la_requests(path: Path = LA_CSV) -> list[ServiceRequest]:
    """Return the CSV's rows as requests; ``category`` is a demo code or ``other``."""
    df = pd.read_csv(path, dtype=str)
    created = _local_to_utc(df["createddate"])
    closed = _local_to_utc(df["closeddate"])
    service = pd.to_datetime(df["servicedate"], format="%m/%d/%y %H:%M", errors="coerce")
    lat = pd.to_numeric(df["latitude"], errors="coerce")
    lon = pd.to_numeric(df["longitude"], errors="coerce")
    cd = pd.to_numeric(df["cd"], errors="coerce")
    out = []
    for i in range(len(df)):
        rtype = df["requesttype"].iat[i]
        cat = LA_SERVICE_CODES.get(rtype, "other")
        ok = pd.notna(lat.iat[i]) and pd.notna(lon.iat[i])
        out.append(
            ServiceRequest(
                source="myla311",
                external_id=df["srnumber"].iat[i],
                service_code=rtype,
                category=cat,
                requested_at=created.iat[i].to_pydatetime(),
                status=_STATUS.get(df["status"].iat[i], RequestStatus.NEW),
                address=str(df["address"].iat[i]),
                # (lat, lon) -> (lon, lat)
                lon=float(lon.iat[i]) if ok else None,
                lat=float(lat.iat[i]) if ok else None,
                district=str(int(cd.iat[i])) if pd.notna(cd.iat[i]) else None,
                closed_at=closed.iat[i].to_pydatetime() if pd.notna(closed.iat[i]) else None,
                service_date=(
                    service.iat[i].date()
                    if cat == "bulky_items" and pd.notna(service.iat[i])
                    else None
                ),
                assigned_org=str(df["assignto"].iat[i]),
            )
        )
    return out
