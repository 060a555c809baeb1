"""The `dispatch` command, end to end on a throw-away SQLite file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dispatch.cli import main

DATA = Path(__file__).parent / "data" / "import"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_commands_need_an_initialised_database(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", db_url, "import", str(DATA / "myla311_2020_sample.csv")]) == 2
    assert "dispatch init" in capsys.readouterr().err


def test_init_import_twice_export(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--db", db_url, "init"]) == 0
    assert "crews" in capsys.readouterr().out
    sample = str(DATA / "myla311_2020_sample.csv")
    assert main(["--db", db_url, "import", sample, "--no-geocode"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[0] == (
        "imported 23, updated 0, unchanged 0, rejected 0")
    assert main(["--db", db_url, "import", sample, "--no-geocode"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[0] == (
        "imported 0, updated 0, unchanged 23, rejected 0")
    out = tmp_path / "requests.json"
    assert main(["--db", db_url, "export", "requests", "--format", "open311",
                 "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())) == 23
    # the second init changes nothing
    assert main(["--db", db_url, "init"]) == 0
    assert "0 depots and 0 crews" in capsys.readouterr().out


def test_broken_file_exits_zero_and_names_rows(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", db_url, "init"]) == 0
    rejects = tmp_path / "rejects.csv"
    code = main(["--db", db_url, "import", str(DATA / "myla311_broken.csv"), "--no-geocode",
                 "--rejects", str(rejects)])
    captured = capsys.readouterr()
    assert code == 0
    assert "imported 5, updated 0, unchanged 0, rejected 5" in captured.out
    assert "line 3: createddate" in captured.err
    assert rejects.exists()


@pytest.mark.parametrize("name", ["not_a_table.zip", "latin1.csv", "does_not_exist.csv"])
def test_unreadable_file_exits_two(
    db_url: str, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", db_url, "init"]) == 0
    path = tmp_path / name
    if (DATA / name).exists():
        shutil.copy(DATA / name, path)
    assert main(["--db", db_url, "import", str(path)]) == 2
    assert capsys.readouterr().err.startswith("dispatch: ")


def test_console_script_is_registered() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["dispatch"] == "dispatch.cli:main"


def test_backup_and_restore(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", db_url, "init"]) == 0
    sample = str(DATA / "myla311_2020_sample.csv")
    backup = tmp_path / "backup.db"
    assert main(["--db", db_url, "backup", "--out", str(backup)]) == 0
    assert main(["--db", db_url, "import", sample, "--no-geocode",
                 "--rejects", str(tmp_path / "r.csv")]) == 0
    capsys.readouterr()
    assert main(["--db", db_url, "restore", str(backup)]) == 0
    assert "previous database is kept" in capsys.readouterr().out
    # the restored database has no requests again: the import comes back as new
    assert main(["--db", db_url, "import", sample, "--no-geocode",
                 "--rejects", str(tmp_path / "r.csv")]) == 0
    assert "imported 23," in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"", b"not a database", b"SQLite format 3\x00" + b"0" * 100])
def test_restore_refuses_what_is_not_a_backup(
    db_url: str, tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", db_url, "init"]) == 0
    bad = tmp_path / "bad.db"
    bad.write_bytes(content)
    assert main(["--db", db_url, "restore", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("dispatch: ")


def test_plan_command_writes_the_json_contract(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = Path(__file__).parent / "data" / "workflow" / "la_day_cd13_cd14.csv"
    assert main(["--db", db_url, "init"]) == 0
    assert main(["--db", db_url, "import", str(sample), "--no-geocode",
                 "--rejects", str(tmp_path / "r.csv")]) == 0
    capsys.readouterr()
    out = tmp_path / "plan.json"
    assert main(["--db", db_url, "plan", "--date", "2020-01-03", "--district", "13",
                 "--district", "14", "--time-limit", "1", "--seed", "3",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(draft) for 2020-01-03" in printed and "total drive" in printed
    doc = json.loads(out.read_text())
    assert (doc["date"], doc["city"], doc["seed"]) == ("2020-01-03", "los_angeles", 3)
    used = [r for r in doc["routes"] if r["stops"]]
    assert used
    for route in used:
        assert set(route) >= {"crew", "district", "skills", "depot", "shift_start", "shift_end",
                              "capacity", "load", "distance_m", "drive_s", "service_s",
                              "stops"}
        assert route["shift_start"].endswith(("-08:00", "-07:00"))
        assert route["load"] <= route["capacity"]
        for stop in route["stops"]:
            assert set(stop) >= {"request_id", "category", "district", "lon", "lat", "size",
                                 "arrival", "departure"}
            assert stop["category"] in route["skills"]
    planned = sum(len(r["stops"]) for r in doc["routes"])
    assert planned + len(doc["unplanned"]) == 29
    assert all(u["reason"] for u in doc["unplanned"])
    # every route names its crew's territory; stops lie inside it; the pack's reserve holds
    for route in doc["routes"]:
        assert route["territory"] and {s["district"] for s in route["stops"]} <= set(
            route["territory"])
        assert route["reserve_s"] > 0 and route["slack_s"] >= route["reserve_s"] - 1
    assert doc["settings"]["travel"] == "BandedTravel"
    # today's model and no reserve
    assert main(["--db", db_url, "plan", "--date", "2020-01-03", "--district", "13",
                 "--travel", "straight-line", "--no-slack", "--time-limit", "1",
                 "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["settings"]["travel"] == "HaversineTravel" and doc["settings"]["slack"] is None
    assert all(r["reserve_s"] == 0 for r in doc["routes"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "03/01/2020"], "not a date"),
        (["--date", "2020-01-03", "--district", "99"], "'99'"),
        (["--date", "2020-01-03", "--absent", "Nobody"], "not in the roster"),
    ],
)
def test_plan_command_names_bad_arguments(
    db_url: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", db_url, "init"]) == 0
    assert main(["--db", db_url, "plan", *args]) == 2
    assert message in capsys.readouterr().err
