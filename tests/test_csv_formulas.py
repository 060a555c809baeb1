"""Spreadsheet formulas never survive into a CSV that Curbside writes or offers.

Cases of the Open311/packaging issue (formulas survived on 3559f86): the import's
rejected-rows CSV, the Hot spots "Repeat locations" download, the monthly
``top_types.csv`` and the Triage table's built-in "Download as CSV" (Streamlit's own,
which cannot be sanitised: it is switched off, see ``test_packaging``). The static test
below keeps every other CSV path honest: each one goes through ``dispatch.text``.
"""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Connection

from dispatch.citypack import load_city_pack
from dispatch.services.imports import import_requests
from dispatch.services.reports import monthly_report
from dispatch.store import UnitOfWork
from dispatch.text import csv_bytes, neutralise_formula

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd"]


def _product_files() -> list[Path]:
    files = [ROOT / "streamlit_app.py"]
    for package in ("dispatch", "geo", "app_pages"):
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def _csv_writes(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
        owner = fn.value if isinstance(fn, ast.Attribute) else None
        if name == "to_csv" and not (isinstance(owner, ast.Name) and owner.id == "self"):
            lines.append(node.lineno)
        if name in ("writer", "DictWriter") and isinstance(owner, ast.Name) and owner.id == "csv":
            lines.append(node.lineno)
    return lines


#: Calls of ``to_csv`` that are not pandas': ``Plan.to_csv`` neutralises each cell itself
#: (``dispatch/planning/plan.py``, checked here like any other writer).
NOT_PANDAS: dict[str, str] = {}


def test_every_csv_path_goes_through_the_neutraliser() -> None:
    """A ``to_csv`` or ``csv.writer`` outside ``dispatch/text.py`` must sit in a function
    (or class) that neutralises (``neutralise_formula``) what it writes."""
    offenders = []
    for path in _product_files():
        if path == ROOT / "dispatch" / "text.py":
            continue
        rel = path.relative_to(ROOT).as_posix()
        lines = path.read_text(encoding="utf-8").splitlines()
        for unit in ast.parse("\n".join(lines)).body:  # each top-level function, class ...
            writes = [ln for ln in _csv_writes(unit)
                      if NOT_PANDAS.get(rel, "\0") not in lines[ln - 1]]
            if writes and "neutralise_formula" not in ast.unparse(unit):
                offenders += [f"{rel}:{ln}" for ln in writes]
    assert offenders == []


def test_csv_bytes_neutralises_cells_and_headers() -> None:
    frame = pd.DataFrame({"address": HOSTILE, "=count": range(5), "lon": [-118.2] * 5})
    rows = list(csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8"))))
    assert rows[0] == ["address", "'=count", "lon"]
    assert [r[0] for r in rows[1:]] == ["'" + h for h in HOSTILE]
    assert rows[1][2] == "-118.2"  # numbers stay numbers


@pytest.mark.db
def test_rejected_rows_csv(db: Connection, tmp_path: Path) -> None:
    sample = (ROOT / "tests" / "data" / "import" / "myla311_2020_sample.csv").read_text()
    header, first = sample.splitlines()[:2]
    hostile = first.replace("1-1523590121", '"=HYPERLINK(""http://evil"",""x"")"', 1).replace(
        "1/1/20 0:05", "@yesterday", 1)
    path = tmp_path / "hostile.csv"
    path.write_text(f"{header}\n{hostile}\n", encoding="utf-8")
    out = tmp_path / "rejects.csv"
    with UnitOfWork(db) as uow:
        summary = import_requests(uow, path, load_city_pack("los_angeles"), reject_file=out)
    assert summary.rejected == 1
    (row,) = list(csv.DictReader(out.open(encoding="utf-8")))
    assert row["external_id"] == "'" + HOSTILE[0]
    assert "@yesterday" in row["reason"] and not row["reason"].startswith(("=", "@"))


def test_the_download_buttons_use_the_neutraliser() -> None:
    """The dashboard's downloads (Hot spots' repeat locations, KPIs, the event log) all
    hand Streamlit the bytes of ``csv_bytes``."""
    for page in ("analytics_ui.py", "event_log.py"):
        text = (ROOT / "app_pages" / page).read_text(encoding="utf-8")
        assert "csv_bytes(" in text and ".to_csv(" not in text, page
    hotspots = (ROOT / "app_pages" / "hotspots.py").read_text(encoding="utf-8")
    assert 'download_csv(shown, "repeat_locations.csv"' in hotspots


@pytest.mark.db
def test_monthly_top_types_csv(db: Connection, tmp_path: Path) -> None:
    la = load_city_pack("los_angeles")
    with UnitOfWork(db) as uow:
        import_requests(uow, ROOT / "tests" / "data" / "reports" / "la_2020_02_month.csv", la)
        for row in uow.requests.query():  # a city code as the city's system wrote it
            row.service_code = HOSTILE[0]
        uow.commit()
    with UnitOfWork(db) as uow:
        summary = monthly_report(uow, la, "2020-02", tmp_path)
    assert any(p.name == "top_types.csv" for p in summary.files)
    codes = [r["service_code"] for r in csv.DictReader((tmp_path / "top_types.csv").open())]
    assert "'" + HOSTILE[0] in codes and HOSTILE[0] not in codes


@pytest.mark.parametrize(("cell", "out"), [
    ("-118.452344917", "-118.452344917"),  # a longitude passed through `dispatch geocode`
    ("34.01", "34.01"),
    ("+15", "+15"),
    ("-1e-05", "-1e-05"),
    ("-2+3", "'-2+3"),
    ("- 1", "'- 1"),
    ("=1+2", "'=1+2"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("-118.4,cmd", "'-118.4,cmd"),
])
def test_a_plain_number_in_text_is_not_taken_for_a_formula(cell: str, out: str) -> None:
    """`dispatch geocode` wrote a negative longitude of its input as `'-118.45...`, so a
    script comparing columns broke; a number cannot run, so it stays as it came."""
    assert neutralise_formula(cell) == out
