"""The import service on a real database: idempotency, rejects, round trips, atomicity."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import Connection

from dispatch.citypack import CityPack, load_city_pack
from dispatch.errors import ImportFormatError
from dispatch.importers.generic_csv import load_mapping
from dispatch.services.exports import export_requests
from dispatch.services.imports import import_requests
from dispatch.store import UnitOfWork
from geo.geocoding import GeocodeResult, Precision
from geo.geocoding.result import not_located

pytestmark = pytest.mark.db
DATA = Path(__file__).parent / "data" / "import"


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


class FakeGeocoder:
    """Stands where the city's geocoder stands (the Geocoder protocol): fixed answers."""

    def __init__(self, answers: dict[str, GeocodeResult]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def lookup(self, query: object, zip_code: object = None) -> GeocodeResult:
        self.asked.append(str(query))
        return self.answers.get(str(query), not_located(str(query)))

    def reverse_lookup(self, lon: float, lat: float) -> GeocodeResult:
        raise AssertionError("the import never reverse-geocodes")


def test_import_is_idempotent(db: Connection, la: CityPack, tmp_path: Path) -> None:
    path = DATA / "myla311_2020_sample.csv"
    with UnitOfWork(db) as uow:
        first = import_requests(uow, path, la)
    assert first.line() == "imported 23, updated 0, unchanged 0, rejected 0"
    with UnitOfWork(db) as uow:
        second = import_requests(uow, path, la)
        assert uow.requests.count() == 23
    assert second.line() == "imported 0, updated 0, unchanged 23, rejected 0"


def test_changed_rows_are_updated(db: Connection, la: CityPack, tmp_path: Path) -> None:
    path = DATA / "myla311_2020_sample.csv"
    with UnitOfWork(db) as uow:
        import_requests(uow, path, la)
    rows = list(csv.DictReader(path.open()))
    rows[0]["status"] = "Cancelled"
    changed = tmp_path / "changed.csv"
    with changed.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with UnitOfWork(db) as uow:
        summary = import_requests(uow, changed, la)
        assert summary.line() == "imported 0, updated 1, unchanged 22, rejected 0"
        row = uow.requests.by_external_id(rows[0]["srnumber"])[0]
        assert row.status == "cancelled"
        assert row.version == 2
        actions = [e.action for e in uow.events.for_entity("request", row.id)]
        assert actions == ["imported", "updated_by_import"]


def test_districts_are_assigned_and_agree_with_the_city(db: Connection, la: CityPack) -> None:
    with UnitOfWork(db) as uow:
        import_requests(uow, DATA / "myla311_2020_sample.csv", la)
        rows = [r for r in uow.requests.query() if r.lon is not None]
    assert rows
    assert all(r.geocode_precision == "source" for r in rows)
    agree = sum(r.district == r.extra["cd"] for r in rows)
    assert agree == len(rows)


def test_broken_file_keeps_good_rows_and_names_bad_ones(
    db: Connection, la: CityPack, tmp_path: Path
) -> None:
    rejects = tmp_path / "rejects.csv"
    with UnitOfWork(db) as uow:
        summary = import_requests(uow, DATA / "myla311_broken.csv", la, reject_file=rejects)
        assert uow.requests.count() == 5
    assert summary.imported == 5
    assert [(r.line, r.field) for r in summary.rejects] == [
        (3, "createddate"), (4, "srnumber"), (5, "requesttype"), (6, "latitude"),
        (8, "latitude"),
    ]
    assert "outside City of Los Angeles" in summary.rejects[3].reason
    written = list(csv.DictReader(rejects.open()))
    assert [int(r["line"]) for r in written] == [3, 4, 5, 6, 8]


def test_unreadable_file_changes_nothing(db: Connection, la: CityPack) -> None:
    with UnitOfWork(db) as uow:
        import_requests(uow, DATA / "myla311_2020_sample.csv", la)
    with UnitOfWork(db) as uow, pytest.raises(ImportFormatError):
        import_requests(uow, DATA / "not_a_table.zip", la)
    with UnitOfWork(db) as uow:
        assert uow.requests.count() == 23


def test_rows_without_coordinates_are_geocoded(db: Connection, la: CityPack) -> None:
    mapping = load_mapping(DATA / "webform_mapping.toml")
    geocoder = FakeGeocoder({
        "16815 W VANOWEN ST": GeocodeResult("16815 W VANOWEN ST", -118.4994716, 34.19402846,
                                            Precision.POINT, 0.97, "16815 W VANOWEN ST, 91406"),
    })
    with UnitOfWork(db) as uow:
        summary = import_requests(uow, DATA / "webform.csv", la, fmt="csv", mapping=mapping,
                                  geocoder=geocoder)
        row = uow.requests.by_external_id("W-2")[0]
    assert geocoder.asked == ["16815 W VANOWEN ST"]
    assert summary.geocoded == 1
    assert (row.lon, row.lat, row.geocode_precision) == (-118.4994716, 34.19402846, "point")
    assert row.district == "6"


def test_open311_export_round_trip_changes_nothing(
    db: Connection, la: CityPack, tmp_path: Path
) -> None:
    with UnitOfWork(db) as uow:
        import_requests(uow, DATA / "myla311_2020_sample.csv", la)
    out = tmp_path / "requests.json"
    with UnitOfWork(db) as uow:
        assert export_requests(uow, la, "open311", out) == 23
    with UnitOfWork(db) as uow:
        summary = import_requests(uow, out, la)
        assert uow.requests.count() == 23
    assert summary.line() == "imported 0, updated 0, unchanged 23, rejected 0"


def test_open311_export_validates_against_the_schema(
    db: Connection, la: CityPack, tmp_path: Path
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_dir = Path(__file__).resolve().parents[1] / "data" / "open311"
    item_schema = json.loads((schema_dir / "georeport_v2_request.schema.json").read_text())
    with UnitOfWork(db) as uow:
        import_requests(uow, DATA / "myla311_2020_sample.csv", la)
        out = tmp_path / "requests.json"
        export_requests(uow, la, "open311", out)
    doc = json.loads(out.read_text())
    checker = jsonschema.Draft7Validator(item_schema, format_checker=jsonschema.FormatChecker())
    for item in doc:
        checker.validate(item)
        assert set(item) >= {
            "service_request_id", "status", "status_notes", "service_name", "service_code",
            "description", "agency_responsible", "requested_datetime", "updated_datetime",
            "expected_datetime", "address", "zipcode", "lat", "long", "media_url",
        }
        assert item["requested_datetime"].endswith(("-08:00", "-07:00"))


def test_csv_export_neutralises_formulas(db: Connection, la: CityPack, tmp_path: Path) -> None:
    mapping = load_mapping(DATA / "webform_mapping.toml")
    with UnitOfWork(db) as uow:
        import_requests(uow, DATA / "webform.csv", la, fmt="csv", mapping=mapping)
        out = tmp_path / "requests.csv"
        export_requests(uow, la, "csv", out)
    rows = {r["external_id"]: r for r in csv.DictReader(out.open())}
    assert rows["W-4"]["description"] == "'=1+1 <script>alert(1)</script>"


def test_geojson_export_is_lon_lat(db: Connection, la: CityPack, tmp_path: Path) -> None:
    with UnitOfWork(db) as uow:
        import_requests(uow, DATA / "myla311_2020_sample.csv", la)
        out = tmp_path / "requests.geojson"
        count = export_requests(uow, la, "geojson", out)
    doc = json.loads(out.read_text())
    assert count == len(doc["features"]) == 22
    lon, lat = doc["features"][0]["geometry"]["coordinates"]
    assert -119 < lon < -118 and 33 < lat < 35
