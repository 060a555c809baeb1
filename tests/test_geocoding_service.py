"""Batch geocoding from the CLI, and the "Needs location" queue and its fixes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Connection

from dispatch.citypack import CityPack, load_city_pack
from dispatch.cli import main
from dispatch.errors import DispatchError
from dispatch.importers.generic_csv import load_mapping
from dispatch.model import is_routable
from dispatch.services.geocoding import needs_location
from dispatch.services.imports import import_requests
from dispatch.services.requests import fix_location
from dispatch.store import UnitOfWork
from geo.errors import GeocodeError
from geo.geocoding import Precision

DATA = Path(__file__).parent / "data" / "import"
PRECISIONS = {"point", "interpolated", "intersection", "block", "street", "zip", "none"}


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


def test_geocode_command_adds_columns_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.csv"
    with src.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "where", "zip"])
        writer.writerow(["1", "16815 W VANOWEN ST", "91406"])
        writer.writerow(["2", "29TH AVE AT SPEEDWAY", "90291"])
        writer.writerow(["3", "=cmd|' /C calc'!A0", ""])
        writer.writerow(["4", "", ""])
    out = tmp_path / "out.csv"
    code = main(["geocode", str(src), "--address-column", "where", "--zip-column", "zip",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "geocoded 4 rows" in printed
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0])[-6:] == ["lon", "lat", "precision", "confidence", "matched_address",
                                  "geocode_source"]
    assert {r["precision"] for r in rows} <= PRECISIONS
    assert rows[0]["precision"] in {"point", "interpolated"}
    assert rows[1]["precision"] == "intersection"
    assert rows[3]["precision"] == "none" and rows[3]["lon"] == ""
    assert rows[2]["where"].startswith("'=")


def test_geocode_command_names_a_missing_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id,addr\n1,100 MAIN ST\n")
    assert main(["geocode", str(src), "--address-column", "where",
                 "--out", str(tmp_path / "o.csv")]) == 2
    assert "'where'" in capsys.readouterr().err


@pytest.mark.db
def test_needs_location_queue_and_fix(db: Connection, la: CityPack) -> None:
    mapping = load_mapping(DATA / "webform_mapping.toml")
    with UnitOfWork(db) as uow:
        import_requests(uow, DATA / "webform.csv", la, fmt="csv", mapping=mapping)
    with UnitOfWork(db) as uow:
        queue = needs_location(uow)
        assert [r.external_id for r in queue] == ["W-2"]
        pk = queue[0].id
        with pytest.raises(DispatchError, match="outside"):
            fix_location(uow, la, pk, -74.0, 40.7, how="map click")
        district = fix_location(uow, la, pk, -118.4994716, 34.19402846, how="map click",
                                matched_address="16815 W VANOWEN ST, 91406")
        assert district == "6"
    with UnitOfWork(db) as uow:
        assert needs_location(uow) == []
        row = uow.requests.get(pk)
        assert row is not None and row.geocode_precision == "manual"
        fixes = [e for e in uow.events.for_entity("request", pk) if e.action == "location_fixed"]
        assert fixes and fixes[0].details["how"] == "map click"


@pytest.mark.parametrize(
    ("precision", "confidence", "routable"),
    [
        ("source", 1.0, True),
        ("point", 0.2, True),
        ("intersection", 0.6, True),
        ("manual", 1.0, True),
        ("interpolated", 0.9, True),
        ("interpolated", 0.3, False),
        ("interpolated", None, False),
        ("block", 0.9, False),
        ("street", 0.9, False),
        ("zip", 1.0, False),
        ("none", 0.0, False),
        (None, None, False),
        (Precision.POINT, 0.2, True),
        (Precision.SOURCE, None, True),
        (Precision.INTERPOLATED, 0.49, False),
        (Precision.INTERPOLATED, 0.5, True),
        (Precision.BLOCK, 1.0, False),
    ],
)
def test_which_positions_go_on_a_route(
    precision: Precision | str | None, confidence: float | None, routable: bool
) -> None:
    assert is_routable(precision, confidence) is routable


@pytest.mark.parametrize("value", ["house", "POINT", ""])
def test_an_unknown_precision_is_refused_not_guessed(value: str) -> None:
    with pytest.raises(GeocodeError, match=repr(value)):
        is_routable(value, 1.0)
