"""Export of stored requests: Open311 GeoReport v2 JSON, CSV and GeoJSON."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dispatch.auth import READING, service
from dispatch.citypack import CityPack
from dispatch.errors import ValidationError
from dispatch.model import ServiceRequest
from dispatch.store import RequestFilter, UnitOfWork
from dispatch.text import neutralise_formula

EXPORT_FORMATS = ("open311", "csv", "geojson")

#: Columns of the CSV export, in order.
CSV_COLUMNS = (
    "source",
    "external_id",
    "category",
    "service_code",
    "status",
    "open311_status",
    "channel",
    "requested_at",
    "updated_at",
    "closed_at",
    "expected_at",
    "service_date",
    "address",
    "zipcode",
    "lon",
    "lat",
    "geocode_precision",
    "geocode_confidence",
    "matched_address",
    "district",
    "assigned_org",
    "priority",
    "description",
)

def request_record(req: ServiceRequest) -> dict[str, Any]:
    """Return the flat CSV/GeoJSON fields of one request (timestamps ISO 8601 UTC)."""
    def iso(v: Any) -> str | None:
        return None if v is None else v.isoformat()

    return {
        "source": req.source,
        "external_id": req.external_id,
        "category": req.category,
        "service_code": req.service_code,
        "status": req.status.value,
        "open311_status": req.status.open311,
        "channel": req.channel.value,
        "requested_at": iso(req.requested_at),
        "updated_at": iso(req.updated_at),
        "closed_at": iso(req.closed_at),
        "expected_at": iso(req.expected_at),
        "service_date": iso(req.service_date),
        "address": req.address,
        "zipcode": req.zipcode,
        "lon": req.lon,
        "lat": req.lat,
        "geocode_precision": req.geocode_precision,
        "geocode_confidence": req.geocode_confidence,
        "matched_address": req.matched_address,
        "district": req.district,
        "assigned_org": req.assigned_org,
        "priority": req.priority,
        "description": req.description,
    }


def write_csv(requests: Iterable[ServiceRequest], path: Path) -> int:
    """Write requests as CSV with spreadsheet formulas neutralised; return the row count."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        for req in requests:
            record = request_record(req)
            writer.writerow({k: neutralise_formula(record[k]) for k in CSV_COLUMNS})
            count += 1
    return count


def geojson_document(requests: Iterable[ServiceRequest]) -> dict[str, Any]:
    """Return located requests as a GeoJSON FeatureCollection of Points (lon, lat)."""
    features = []
    for req in requests:
        if req.lon is None or req.lat is None:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [req.lon, req.lat]},
                "properties": request_record(req),
            }
        )
    return {"type": "FeatureCollection", "features": features}


@service(*READING, action="export requests")
def export_requests(
    uow: UnitOfWork,
    pack: CityPack,
    fmt: str,
    out: Path,
    flt: RequestFilter | None = None,
) -> int:
    """Export stored requests to ``out`` in ``fmt``; return how many were written.

    Raises
    ------
    DispatchError
        When ``fmt`` is not one of :data:`EXPORT_FORMATS`.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"export format {fmt!r} is not one of {list(EXPORT_FORMATS)}")
    rows = uow.requests.query(flt)
    requests: Sequence[ServiceRequest] = [r.to_domain() for r in rows]
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        return write_csv(requests, out)
    if fmt == "open311":
        from dispatch.services.open311 import shape_rows

        doc: Any = []
        for start in range(0, len(rows), 1000):
            doc.extend(shape_rows(uow, pack, rows[start : start + 1000]))
        count = len(doc)
    else:
        doc = geojson_document(requests)
        count = len(doc["features"])
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return count
