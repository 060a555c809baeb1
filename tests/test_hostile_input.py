"""Malformed and hostile files through every import path: a clear message, nothing lost."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Connection

from dispatch.citypack import CityPack, load_city_pack
from dispatch.errors import ImportFormatError
from dispatch.services.imports import import_requests
from dispatch.store import UnitOfWork

pytestmark = pytest.mark.db
DATA = Path(__file__).parent / "data" / "import"
HEADER = (DATA / "myla311_2020_sample.csv").read_text().splitlines()[0]


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


def _zip_bomb(path: Path) -> None:
    """A 10 kB zip that inflates to 100 MB of zeros."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("requests.csv", b"0" * 100_000_000)


def _gigabyte_csv(path: Path) -> None:
    """A sparse 5 GB file: its size says 5 GB (over the streamed limit) without the disk."""
    with path.open("wb") as fh:
        fh.write((HEADER + "\n").encode())
        fh.truncate(5 * 1024**3)


def _latin1(path: Path) -> None:
    path.write_bytes((HEADER + "\n").encode() + "1-1,Bulky Items,Café\xe9".encode("latin-1"))


def _binary(path: Path) -> None:
    path.write_bytes(b"\x00\x01\x02" * 1000)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_zip_bomb, "ZIP archive"),
        (_gigabyte_csv, "largest file accepted"),
        (_latin1, "not UTF-8"),
        (_binary, "NUL bytes"),
    ],
)
def test_unreadable_files_change_nothing(
    db: Connection, la: CityPack, tmp_path: Path, make: object, message: str
) -> None:
    with UnitOfWork(db) as uow:
        import_requests(uow, DATA / "myla311_2020_sample.csv", la)
        before = (uow.requests.count(), uow.events.count())
    path = tmp_path / "upload.csv"
    make(path)  # type: ignore[operator]
    with UnitOfWork(db) as uow, pytest.raises(ImportFormatError, match=message):
        import_requests(uow, path, la)
    with UnitOfWork(db) as uow:
        assert (uow.requests.count(), uow.events.count()) == before
    assert zipfile.is_zipfile(path) == (make is _zip_bomb)


@pytest.mark.parametrize(
    ("lat", "lon", "reason"),
    [
        ("nan", "-118.25", "not finite"),
        ("34.05", "inf", "not finite"),
        ("-1e308", "-118.25", "outside WGS84"),
        ("91", "-118.25", "outside WGS84"),
        ("34.05", "-181", "outside WGS84"),
        ("40.7128", "-74.0060", "outside City of Los Angeles"),
        ("34.05", "", "only one coordinate"),
    ],
)
def test_bad_coordinates_are_rejected_by_line(
    db: Connection, la: CityPack, tmp_path: Path, lat: str, lon: str, reason: str
) -> None:
    rows = list(csv.DictReader(io.StringIO((DATA / "myla311_2020_sample.csv").read_text())))
    rows[1]["latitude"], rows[1]["longitude"] = lat, lon
    path = tmp_path / "coords.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with UnitOfWork(db) as uow:
        summary = import_requests(uow, path, la)
        assert uow.requests.count() == len(rows) - 1
    assert [r.line for r in summary.rejects] == [3]
    assert reason in summary.rejects[0].reason


def test_hostile_text_is_stored_verbatim_and_exported_safely(
    db: Connection, la: CityPack, tmp_path: Path
) -> None:
    from dispatch.importers.generic_csv import load_mapping
    from dispatch.services.exports import export_requests

    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)> =SUM(A1)'
    src = tmp_path / "web.csv"
    with src.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ticket", "type", "created", "where", "zip", "y", "x", "notes",
                         "state"])
        writer.writerow(["H-1", "Graffiti Removal", "2020-01-02 09:15", "@evil", "90012",
                         "34.0537", "-118.2427", hostile, "open"])
    mapping = load_mapping(DATA / "webform_mapping.toml")
    with UnitOfWork(db) as uow:
        import_requests(uow, src, la, fmt="csv", mapping=mapping)
        row = uow.requests.by_external_id("H-1")[0]
        assert row.description == hostile  # stored as typed; escaped where shown
        out = tmp_path / "out.csv"
        export_requests(uow, la, "csv", out)
    exported = next(r for r in csv.DictReader(out.open()) if r["external_id"] == "H-1")
    assert exported["address"] == "'@evil"
    assert exported["description"] == hostile  # starts with '<', not a formula
