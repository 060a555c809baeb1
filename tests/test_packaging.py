"""What a city installs: metadata, the version, the entry points, alembic, the wheel's contents.

The wheel itself is built, installed into a fresh venv and started by
``.ci/wheel_check.sh`` (``make wheel-check``, part of ``make test``); these tests check
the declarations it relies on, fast.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import dispatch
from dispatch import logs
from dispatch.cli import build_parser, dashboard_command, main
from dispatch.errors import DispatchError

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_of_the_checkout_is_in_the_wheel() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set()
    for top in ("geo", "dispatch"):
        for init in (ROOT / top).rglob("*.py"):
            if "__pycache__" in init.parts:
                continue
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    dirs = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert dirs["curbside_data"] == "data"
    assert dirs["curbside_dashboard.app_pages"] == "app_pages"
    assert (ROOT / dirs["curbside_dashboard"] / "streamlit_app.py").is_file()


def test_the_wheel_carries_the_data_the_packs_name() -> None:
    """Every file a shipped city pack names matches a package-data pattern."""
    from fnmatch import fnmatch

    from dispatch.citypack import list_city_packs, load_city_pack

    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["curbside_data"]
    data = ROOT / "data"
    for name in list_city_packs():
        pack = load_city_pack(name)
        named = [pack.paths.pack, pack.paths.boundary, pack.paths.districts,
                 pack.paths.address_reference, pack.paths.demo_requests]
        if pack.reference is not None:
            named += [s.path for s in pack.reference.sources]
        named += [pack.travel.network_nodes, pack.travel.network_links]
        for path in named:
            if path is None or not path.exists():
                continue
            rel = path.resolve().relative_to(data.resolve()).as_posix()
            assert any(fnmatch(rel, pat.replace("**/", "*/")) or fnmatch(rel, pat)
                       for pat in patterns), f"{rel} of pack {name} is not in the wheel"


def test_runtime_dependencies_leave_test_tools_to_dev() -> None:
    runtime = " ".join(PYPROJECT["project"]["dependencies"])
    extras = PYPROJECT["project"]["optional-dependencies"]
    for tool in ("pytest", "hypothesis", "ruff", "mypy", "types-requests", "psycopg"):
        assert tool not in runtime
    assert any(d.startswith("pytest>=") for d in extras["dev"])
    assert extras["postgres"] == ["psycopg[binary]>=3.3.9"]
    assert "types-requests" not in " ".join(extras["dev"])  # nothing uses requests


def test_lower_bounds_are_installed_here() -> None:
    """``pip check`` covers upper limits; this checks that no bound is below what runs."""
    from importlib.metadata import version

    for spec in PYPROJECT["project"]["dependencies"]:
        name, _, low = spec.partition(">=")
        installed = version(name.split("[")[0])
        assert tuple(int(x) for x in installed.split(".")[:3]) >= tuple(
            int(x) for x in low.split(".")), f"{name} {installed} is below its bound {low}"


def test_licence_is_the_full_gpl3_text() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 30_000
    assert PYPROJECT["project"]["license"] == "GPL-3.0-or-later"


def test_changelog_names_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {PYPROJECT['project']['version']}" in text


def test_py_typed_ships() -> None:
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for pkg in ("geo", "dispatch"):
        assert (ROOT / pkg / "py.typed").is_file()
        assert "py.typed" in data[pkg]


def test_version_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"dispatch (Curbside) {dispatch.__version__}"
    assert dispatch.__version__ == PYPROJECT["project"]["version"]


def test_python_minus_m_dispatch() -> None:
    done = subprocess.run([sys.executable, "-m", "dispatch", "--version"], capture_output=True,
                          text=True, timeout=60, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"dispatch (Curbside) {dispatch.__version__}"


def test_plain_alembic_upgrade_head_uses_database_url(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{db}")
    alembic = Path(sys.executable).with_name("alembic")
    for args in (["upgrade", "head"], ["check"]):
        done = subprocess.run([str(alembic), *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
    import sqlite3

    with sqlite3.connect(db) as conn:
        head = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    versions = sorted(p.name for p in (ROOT / "dispatch/store/migrations/versions").glob("0*.py"))
    assert head == versions[-1].split("_")[0]
    # the copy that ships in the wheel is the same file
    assert (ROOT / "alembic.ini").read_text() == (ROOT / "dispatch/store/alembic.ini").read_text()


def test_dashboard_command_serves_static_files_and_no_table_downloads() -> None:
    args = build_parser().parse_args(["dashboard", "--port", "8599", "--host", "0.0.0.0"])
    cmd = dashboard_command(args)
    assert cmd[1:4] == ["-m", "streamlit", "run"]
    assert Path(cmd[4]).name == "streamlit_app.py" and Path(cmd[4]).is_file()
    assert (Path(cmd[4]).parent / "static" / "vendor" / "leaflet" / "leaflet.js").is_file()
    opts = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert opts["--server.port"] == "8599" and opts["--server.address"] == "0.0.0.0"
    assert opts["--server.enableStaticServing"] == "true"
    assert opts["--client.disableDataExport"] == "true"
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["disableDataExport"] is True
    # no watching of the sources: a served product does not reload itself, and watching
    # cost every new browser session about half a second before its first run
    assert opts["--server.fileWatcherType"] == "none"
    assert opts["--server.runOnSave"] == "false"
    assert config["server"]["fileWatcherType"] == "none"
    assert config["server"]["runOnSave"] is False
    # nor a full garbage collection after every run (about 0.1 s, waited for by edits)
    assert opts["--runner.postScriptGC"] == "false"
    assert config["runner"]["postScriptGC"] is False


# --------------------------------------------------------------------------- logging


def test_log_lines_are_json_with_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(logs.LEVEL_ENV, "debug")
    out = io.StringIO()
    logger = logs.configure(stream=out)
    try:
        assert logger.level == logging.DEBUG
        logs.log(logs.get("api"), logging.INFO, "request", method="GET", status=200)
        logs.log_events([{"actor": "system", "entity_type": "request", "entity_id": "7",
                          "action": "cancelled", "details": {"reason": "dup"}},
                         {"actor": "system", "entity_type": "request", "entity_id": "8",
                          "action": "imported", "details": {}}])
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        monkeypatch.setenv(logs.LEVEL_ENV, "WARNING")
        logs.configure(stream=sys.stderr)
    assert [(x["logger"], x["msg"], x["level"]) for x in lines] == [
        ("curbside.api", "request", "INFO"), ("curbside.events", "event", "INFO"),
        ("curbside.events", "event", "DEBUG")]
    assert lines[0]["status"] == 200 and lines[0]["ts"].endswith("Z")
    assert lines[1]["action"] == "cancelled" and lines[1]["details"] == {"reason": "dup"}


def test_log_level_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(logs.LEVEL_ENV, raising=False)
    assert logs.level_from_env("WARNING") == logging.WARNING
    monkeypatch.setenv(logs.LEVEL_ENV, "error")
    assert logs.level_from_env("INFO") == logging.ERROR
    monkeypatch.setenv(logs.LEVEL_ENV, "LOUD")
    with pytest.raises(DispatchError, match="'LOUD' is not a log level; expected one of DEBUG"):
        logs.level_from_env()


@pytest.mark.db
def test_committed_events_are_logged_once_and_rolled_back_ones_never(
        db: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatch.store import UnitOfWork

    monkeypatch.setenv(logs.LEVEL_ENV, "INFO")
    out = io.StringIO()
    logs.configure(stream=out)
    try:
        with UnitOfWork(db, actor="test:logs") as uow:  # type: ignore[arg-type]
            uow.events.append("request", 1, "kept")
            uow.commit()
            uow.events.append("request", 2, "discarded")
            uow.rollback()
            uow.commit()
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        monkeypatch.setenv(logs.LEVEL_ENV, "WARNING")
        logs.configure(stream=sys.stderr)
    assert [(x["action"], x["id"], x["actor"]) for x in lines] == [("kept", "1", "test:logs")]


def test_the_tab_icon_is_shipped_not_fetched() -> None:
    """A ``:material/...:`` page icon is fetched from fonts.gstatic.com: offline, every
    page logged a console error for it."""
    from app_pages.common import PAGE_ICON

    assert Path(PAGE_ICON).is_file() and Path(PAGE_ICON).parent.name == "static"
    for path in [ROOT / "streamlit_app.py", *sorted((ROOT / "app_pages").glob("*.py"))]:
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"page_icon\s*=\s*['\"]:material/", source), path
