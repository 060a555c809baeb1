"""The managers' pages (hot spots, KPIs, monthly report), driven through Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from signin import sign_in_at
from streamlit.testing.v1 import AppTest

from dispatch.auth import Principal, Role
from dispatch.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def seeded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A temporary SQLite store with 43 real-position requests of January-March 2020."""
    tmp = tmp_path_factory.mktemp("managers")
    url = f"sqlite:///{tmp / 'app.db'}"
    assert main(["--db", url, "init"]) == 0
    for name in ("workflow/la_day_cd13_cd14.csv", "reports/la_2020_02_month.csv"):
        assert main(["--db", url, "import", str(DATA / name), "--no-geocode",
                     "--rejects", str(tmp / "r.csv")]) == 0
    return url


def _page(name: str, url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CURBSIDE_CITY", "los_angeles")
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app_pages" / name), default_timeout=90)
    sign_in_at(at, url, Principal("mia", Role.MANAGER))
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_kpi_page_answers_how_fast_graffiti_closes_in_a_district(
        seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page("kpis.py", seeded_url, monkeypatch)
    assert at.selectbox(key="kpi_quick_category").value == "graffiti_removal"
    assert at.selectbox(key="kpi_quick_district").value == "14"
    at.selectbox(key="kpi_quick_district").set_value("13").run()
    assert not at.exception
    metrics = _metrics(at)
    assert "Median time to close" in metrics and "Closed requests" in metrics
    # few requests: the answer carries a small-sample warning
    assert any("Small sample" in w.value for w in at.warning)
    # every chart comes with a CSV download of its numbers
    assert len(at.get("download_button")) >= 6
    at.radio(key="kpi_dur_measure").set_value("Time to first action").run()
    assert not at.exception


def test_hotspot_page_hides_closed_requests_until_asked(
        seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page("hotspots.py", seeded_url, monkeypatch)
    at.date_input(key="hot_days").set_value((at.date_input(key="hot_days").min,
                                             at.date_input(key="hot_days").max)).run()
    closed_hidden = int(_metrics(at)["Closed, hidden"].replace(",", ""))
    assert closed_hidden > 0
    before = int(_metrics(at)["Requests"].replace(",", ""))
    at.toggle(key="hot_closed").set_value(True).run()
    assert not at.exception
    after = _metrics(at)
    assert int(after["Requests"].replace(",", "")) == before + closed_hidden
    assert after["Closed, hidden"] == "0"
    at.slider(key="hot_res").set_value(9).run()
    assert not at.exception
    ids = [df.value for df in at.dataframe if "request_ids" in df.value.columns]
    assert ids and ids[0]["requests"].iloc[0] >= 2  # repeat graffiti/dumping spots listed


def test_monthly_report_page_shows_the_fixture_month(
        seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page("monthly_report.py", seeded_url, monkeypatch)
    at.selectbox(key="report_month").set_value("2020-02").run()
    assert not at.exception
    metrics = _metrics(at)
    # the report fixture's 9 / 7 / 6 (tests/test_reports.py) plus 1-1523655511 of the
    # workflow file, opened 1 Jan and closed 24 Feb 2020
    assert (metrics["Opened"], metrics["Resolved"], metrics["Fixed"]) == ("9", "8", "7")


def test_hotspot_page_shows_the_planners_sweep_stops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page calls the planner's sweep service: the same stops, the same study area."""
    from datetime import date

    from test_analytics_service import _cluster_csv

    from dispatch.citypack import load_city_pack
    from dispatch.services.analytics import sweep_stops_for_day
    from dispatch.store import UnitOfWork, make_engine

    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    day = date(2020, 3, 2)
    _cluster_csv(tmp_path / "cluster.csv", day)
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(tmp_path / "cluster.csv"), "--no-geocode",
                 "--rejects", str(tmp_path / "r.csv")]) == 0
    with UnitOfWork(make_engine(url), actor=Principal("mia", Role.MANAGER)) as uow:
        expected = [s.request_id for s in sweep_stops_for_day(uow, load_city_pack("los_angeles"),
                                                               day)]
    assert expected  # the planted cluster is a hot spot
    at = _page("hotspots.py", url, monkeypatch)
    assert at.date_input(key="hot_sweep_day").value == day
    shown = [df.value for df in at.dataframe if "urgency" in df.value.columns]
    assert shown and shown[0]["request_id"].tolist() == expected


def test_monthly_report_names_channels_by_their_labels(
        seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The "How residents reported" chart showed ``driver_self_report``, ``phone``..."""
    from dispatch.model import Channel

    at = _page("monthly_report.py", seeded_url, monkeypatch)
    at.selectbox(key="report_month").set_value("2020-02").run()
    assert not at.exception
    import pyarrow as pa

    values: set[str] = set()
    for el in [*at.get("arrow_vega_lite_chart"), *at.get("vega_lite_chart")]:
        for dataset in el.proto.datasets:
            table = pa.ipc.open_stream(dataset.data.data).read_all()
            if "channel" in table.column_names:
                values |= {str(v) for v in table.column("channel").to_pylist()}
    assert "Phone" in values  # the fixture month has phone requests
    assert not values & {c.value for c in Channel}, values


def test_kpi_charts_name_outcomes_and_measures_in_words(
        seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The outcomes legend read ``closed_not_fixed``; tooltips and a caption named columns."""
    import json

    import pyarrow as pa

    at = _page("kpis.py", seeded_url, monkeypatch)
    outcomes: set[str] = set()
    specs = []
    for el in [*at.get("arrow_vega_lite_chart"), *at.get("vega_lite_chart")]:
        specs.append(el.proto.spec)
        for dataset in el.proto.datasets:
            table = pa.ipc.open_stream(dataset.data.data).read_all()
            if "outcome" in table.column_names:
                outcomes |= {str(v) for v in table.column("outcome").to_pylist()}
    assert outcomes == {"fixed", "closed, not fixed", "cancelled", "duplicate", "still open"}
    # every tooltip field that is a column name has a title people read
    for spec in specs:
        for layer in [json.loads(spec), *json.loads(spec).get("layer", [])]:
            tips = (layer.get("encoding") or {}).get("tooltip") or []
            for tip in tips if isinstance(tips, list) else [tips]:
                if "_" in tip.get("field", ""):
                    assert tip.get("title"), tip
    captions = " ".join(c.value for c in at.caption)
    assert "open_past_sla" not in captions and "past their target" in captions


def test_repeat_locations_and_request_types_are_named_in_words(
        seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk of issue 13 read graffiti_removal and H3 cell ids, and service_code."""
    at = _page("hotspots.py", seeded_url, monkeypatch)
    repeats = [d.value for d in at.dataframe if "categories" in d.value.columns]
    assert repeats, "the fixture has repeat locations"
    from dispatch.citypack import load_city_pack

    codes = {c for c, cat in load_city_pack("los_angeles").categories.items()
             if cat.label != c}
    shown = {c for cs in repeats[0]["categories"] for c in str(cs).split(", ")}
    assert shown and not shown & codes, shown
    assert "spot" not in repeats[0].columns
    at = _page("monthly_report.py", seeded_url, monkeypatch)
    at.selectbox(key="report_month").set_value("2020-02").run()
    (types,) = [d.value for d in at.dataframe if "opened" in d.value.columns
                and len(d.value.columns) == 2]
    assert list(types.columns) == ["request type", "opened"]


@pytest.mark.parametrize("page", ["requests_map.py", "hotspots.py", "kpis.py",
                                  "monthly_report.py"])
def test_managers_pages_say_what_moment_a_replay_s_figures_are_of(
        page: str, seeded_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13's walk: Triage said 5,481 open at the replay's clock, the map "Open 30"."""
    import shutil

    def note(at: AppTest) -> list[str]:
        return [c.value for c in at.caption if c.value.startswith("Demo replay:")]

    assert note(_page(page, seeded_url, monkeypatch)) == []  # real time: nothing to say
    replay = f"sqlite:///{tmp_path / 'replay.db'}"
    shutil.copy(seeded_url.removeprefix("sqlite:///"), tmp_path / "replay.db")
    assert main(["--db", replay, "clock", "set", "2020-01-03T07:00"]) == 0
    (said,) = note(_page(page, replay, monkeypatch))
    assert "Friday 03 January 2020, 07:00" in said and "as they stood" in said


def test_hot_spots_say_when_there_is_no_significant_hexagon_to_list(
        seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk of issue 13 saw an empty table next to "Download CSV (1,514 rows)"."""
    at = _page("hotspots.py", seeded_url, monkeypatch)
    assert any("No hexagon is a significant" in i.value for i in at.info)  # the fixture
    assert not [d for d in at.dataframe if "z" in d.value.columns]
    assert any("No significant hexagon to list" in c.value for c in at.caption)
