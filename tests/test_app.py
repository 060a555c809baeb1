"""The dashboard, driven through Streamlit's AppTest on the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dispatch.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "import"


@pytest.fixture(scope="module")
def seeded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('app') / 'app.db'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(DATA / "myla311_2020_sample.csv"),
                 "--no-geocode", "--rejects", str(tmp_path_factory.mktemp("r") / "r.csv")]) == 0
    return url


def _app(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CURBSIDE_CITY", "los_angeles")
    monkeypatch.chdir(ROOT)
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)


def test_requests_map_shows_the_requests(seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(seeded_url, monkeypatch).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    # the default filter shows the routable categories: 3 bulky, 3 graffiti, 4 dumping,
    # one of which has no coordinates
    assert metrics["Requests"] == "10"
    assert metrics["On the map"] == "9"
    assert metrics["Without location"] == "1"


def test_category_filter_changes_the_counts(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app(seeded_url, monkeypatch).run()
    at.sidebar.multiselect[0].set_value(["graffiti_removal"]).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Requests"] == "3"


def test_uninitialised_database_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app(f"sqlite:///{tmp_path / 'empty.db'}", monkeypatch).run()
    assert any("make run" in e.value for e in at.error)
