"""The monthly activity report, built from a fixture month whose true counts are known."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Connection  # the db fixture's type

from dispatch.citypack import load_city_pack
from dispatch.errors import DispatchError
from dispatch.services.imports import import_requests
from dispatch.services.reports import REPORT_FILES, monthly_report
from dispatch.store import UnitOfWork

FIXTURE = Path(__file__).parent / "data" / "reports" / "la_2020_02_month.csv"

# Hand-counted from the fixture (see tests/data/README.md).
BY_CATEGORY = [
    ["category", "opened", "resolved"],
    ["Graffiti removal", "3", "3"],
    ["Bulky items", "3", "1"],
    ["Illegal dumping (abandoned trash)", "1", "2"],
    ["Dead animal removal", "1", "1"],
    ["Metal / household appliances", "1", "0"],
]
BY_CHANNEL = [
    ["channel", "opened", "share"],
    ["phone", "3", "0.3333"],  # 1, 3 and 10 (Call)
    ["web", "3", "0.3333"],  # 7, 11 and 12 (Self Service)
    ["app", "2", "0.2222"],  # 2 and 4 (Mobile App)
    ["driver_self_report", "1", "0.1111"],  # 5
]
TOP_TYPES = [
    ["service_code", "opened"],
    ["Bulky Items", "3"],
    ["Graffiti Removal", "3"],
    ["Dead Animal Removal", "1"],
    ["Illegal Dumping Pickup", "1"],
    ["Metal/Household Appliances", "1"],
]


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


@pytest.fixture
def city():  # type: ignore[no-untyped-def]
    return load_city_pack("los_angeles")


@pytest.mark.db
def test_monthly_report_counts_the_fixture_month(db: Connection, city, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with UnitOfWork(db) as uow:
        summary = import_requests(uow, FIXTURE, city)
        assert summary.imported == 13 and summary.rejected == 0
    with UnitOfWork(db) as uow:
        report = monthly_report(uow, city, "2020-02", tmp_path / "out")
    assert report.opened == 9
    assert report.resolved == 7
    assert report.figures.fixed == 6
    assert [p.name for p in report.files] == list(REPORT_FILES)
    out = tmp_path / "out"
    assert _rows(out / "by_category.csv") == BY_CATEGORY
    assert _rows(out / "by_channel.csv") == BY_CHANNEL
    assert _rows(out / "top_types.csv") == TOP_TYPES
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<svg" in page and "<polygon" in page
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert ">9</b>" in page and ">7</b>" in page
    lines = report.lines()
    assert lines[0].startswith("monthly report 2020-02: opened 9, resolved 7 (fixed 6)")
    assert any(line.endswith("report.html") for line in lines)


@pytest.mark.db
def test_january_and_march_are_counted_by_their_own_rules(  # type: ignore[no-untyped-def]
        db: Connection, city, tmp_path: Path) -> None:
    with UnitOfWork(db) as uow:
        import_requests(uow, FIXTURE, city)
    with UnitOfWork(db) as uow:
        jan = monthly_report(uow, city, "2020-01", tmp_path / "jan")
        mar = monthly_report(uow, city, "2020-03", tmp_path / "mar")
    # January: opened 6 (31 Jan 23:50 local), 8 (20 Jan), 13 (15 Jan); nothing closed.
    assert (jan.opened, jan.resolved) == (3, 0)
    # March: opened 9 (1 Mar 00:10); resolved 2, 4, 9, 13 (closed 1-2 Mar local).
    assert (mar.opened, mar.resolved) == (1, 4)


@pytest.mark.db
def test_report_text_is_escaped(db: Connection, city, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with UnitOfWork(db) as uow:
        import_requests(uow, FIXTURE, city)
    from dataclasses import replace

    from dispatch.model import Category

    odd = dict(city.categories)
    odd["graffiti_removal"] = replace(odd["graffiti_removal"], label="<b>Graffiti</b> & co")
    pack = replace(city, categories=odd)
    with UnitOfWork(db) as uow:
        monthly_report(uow, pack, "2020-02", tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<b>Graffiti</b>" not in page
    assert "&lt;b&gt;Graffiti&lt;/b&gt; &amp; co" in page
    assert isinstance(odd["graffiti_removal"], Category)


@pytest.mark.parametrize("month", ["2020-2", "2020/02", "Feb 2020", "2020-13"])
def test_bad_month_is_refused(month: str, city, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from dispatch.auth import SYSTEM

    nobody_reads = SimpleNamespace(principal=SYSTEM)  # refused before any read
    with pytest.raises(DispatchError, match="YYYY-MM"):
        monthly_report(nobody_reads, city, month, tmp_path)  # type: ignore[arg-type]


def test_cli_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dispatch.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(FIXTURE), "--no-geocode",
                 "--rejects", str(tmp_path / "r.csv")]) == 0
    capsys.readouterr()
    out = tmp_path / "report"
    assert main(["--db", url, "report", "monthly", "--month", "2020-02", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "monthly report 2020-02: opened 9, resolved 7 (fixed 6)"
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    assert main(["--db", url, "report", "monthly", "--month", "2020-13", "--out",
                 str(out)]) == 2
