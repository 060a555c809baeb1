"""A crew's route exports (CSV, GPX, GeoJSON) carry each stop's address (issue 13, Crew).

Case of issue 13 (fails on 3f578b4): a crew's route CSV had no address column and its
GPX points were named by request id (``Plan.to_csv``/``Plan.to_gpx``, all the route
sheet page offered). The shaping functions are pure and tested directly on
:class:`~dispatch.services.workflow.RouteView`; the service, the command and the pages
are tested on a temporary SQLite file with the CD 13/14 day of 2020-01-03 planned and
assigned.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import geojson
import pytest
from signin import page_test
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest, app_test

from dispatch.auth import Principal, Role
from dispatch.citypack import CityPack, load_city_pack
from dispatch.cli import main
from dispatch.errors import AccessDeniedError, NotFoundError, ValidationError
from dispatch.services import workflow as wf
from dispatch.services.planning import plan_for_day
from dispatch.services.routesheets import (
    export_day_routes,
    route_csv,
    route_export,
    route_geojson,
    route_gpx,
)
from dispatch.services.workflow import RouteView, StopView, navigation_url
from dispatch.store import UnitOfWork, make_engine

ROOT = Path(__file__).resolve().parents[1]
LA = ZoneInfo("America/Los_Angeles")
DAY = date(2020, 1, 3)
SAMPLE = Path(__file__).parent / "data" / "workflow" / "la_day_cd13_cd14_open.csv"
NS = {"g": "http://www.topografix.com/GPX/1/1"}
LABELS = {"bulky_items": "Bulky items", "graffiti": "Graffiti removal"}


def _stop(seq: int, *, address: str | None = None, description: str = "",
          note: str | None = None, located: bool = True, category: str = "bulky_items",
          status: str = wf.STOP_PENDING) -> StopView:
    lon, lat = (-118.29 + seq / 1000, 34.07 + seq / 1000) if located else (None, None)
    eta = datetime(2020, 1, 3, 15, 0, tzinfo=UTC) + timedelta(minutes=10 * seq)
    return StopView(
        stop_id=100 + seq, sequence=seq, request_pk=seq, request_id=f"1-{seq:05d}",
        category=category, service_code="Bulky Items",
        address=f"{seq} MAIN ST" if address is None else address, description=description,
        lon=lon, lat=lat, eta=eta, departure=eta + timedelta(minutes=5), status=status,
        locked=False, reason=None, note=note, navigation_url=navigation_url(lon, lat),
        district="13",
    )


def _view(crew: str, stops: list[StopView],
          geometry: tuple[tuple[float, float], ...] | None = None) -> RouteView:
    return RouteView(
        route_id=1, plan_id=7, plan_status="assigned", crew=crew, district="13",
        distance_m=12_345, drive_s=3_600, service_s=1_800, load=3, capacity=10,
        stops=tuple(stops), geometry=geometry,
    )


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _gpx(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


# ------------------------------------------------------------------------ pure shaping


def test_the_route_exports_name_each_stop_by_its_address() -> None:
    views = [_view("NC-bulky-1", [_stop(1, address="123 N MAIN ST, 90012"), _stop(2)])]
    rows = _rows(route_csv(views, LA, category_labels=LABELS))
    assert [r["address"] for r in rows] == ["123 N MAIN ST, 90012", "2 MAIN ST"]
    assert {"crew", "seq", "request_id", "address", "category", "district", "lon", "lat",
            "eta", "status", "note", "navigation_url"} <= set(rows[0])
    assert rows[0]["category"] == "Bulky items"  # the label, not the code
    root = _gpx(route_gpx(views, category_labels=LABELS))
    names = [n.text for n in root.findall("g:rte/g:rtept/g:name", NS)]
    assert names == ["123 N MAIN ST, 90012", "2 MAIN ST"]
    desc = root.findall("g:rte/g:rtept/g:desc", NS)[0].text or ""
    assert "Bulky items" in desc and "1-00001" in desc
    props = [f["properties"] for f in route_geojson(views, LA, category_labels=LABELS)
             ["features"]]
    assert [p["address"] for p in props] == ["123 N MAIN ST, 90012", "2 MAIN ST"]


HOSTILE = [
    pytest.param("12 MAIN ST, APT 3, LOS ANGELES", None, id="commas"),
    pytest.param('5 "THE" OAKS \'B\'', None, id="quotes"),
    pytest.param("1 <A&B> ST </name><script>x</script>", None, id="markup"),
    pytest.param("=cmd|' /C calc'!A0", "=HYPERLINK(\"http://evil\",\"x\")", id="formulas"),
    pytest.param("7 ELM ST\nREAR", "+1+1\r\n@SUM(A1)", id="newlines"),
    pytest.param("9 OAK\x0b ST\x00", "bell\x07", id="xml-invalid-controls"),
]


@pytest.mark.parametrize(("address", "note"), HOSTILE)
def test_resident_text_survives_every_format(address: str, note: str | None) -> None:
    views = [_view("NC-bulky-1", [_stop(1, address=address, note=note,
                                        description=f"desc {address}")])]
    # CSV: one row, the text as typed, formulas neutralised
    (row,) = _rows(route_csv(views, LA))
    for column, value in (("address", address), ("note", note or "")):
        if value[:1] in ("=", "+", "-", "@"):
            assert row[column] == "'" + value
        else:
            assert row[column] == value
    # GPX: well-formed XML whatever the text; the name is the address (less the
    # characters XML 1.0 cannot carry)
    root = _gpx(route_gpx(views))
    clean = address.replace("\x0b", "").replace("\x00", "")
    assert [n.text for n in root.findall("g:rte/g:rtept/g:name", NS)] == [clean]
    assert not root.findall(".//g:script", NS) and not root.findall(".//script")
    desc = root.find("g:rte/g:rtept/g:desc", NS)
    assert desc is not None and "1-00001" in (desc.text or "")
    if note:
        assert note.replace("\x07", "").replace("\r\n", "\n") in (desc.text or "")
    # GeoJSON: the text as typed, valid JSON
    doc = json.loads(route_export(views, "geojson", LA).decode("utf-8"))
    assert doc["features"][0]["properties"]["address"] == address


def test_a_crew_with_no_stops() -> None:
    views = [_view("A", []), _view("B", [_stop(1)], geometry=((-118.3, 34.0), (-118.2, 34.1)))]
    assert [r["crew"] for r in _rows(route_csv(views, LA))] == ["B"]
    root = _gpx(route_gpx(views))
    rtes = root.findall("g:rte", NS)
    assert [r.findtext("g:name", namespaces=NS) for r in rtes] == ["A", "B"]
    assert [len(r.findall("g:rtept", NS)) for r in rtes] == [0, 1]
    assert [t.findtext("g:name", namespaces=NS) for t in root.findall("g:trk", NS)] == ["B"]
    gj = route_geojson(views, LA)
    assert {f["properties"]["crew"] for f in gj["features"]} == {"B"}
    # nothing at all: a header, an empty GPX, an empty collection
    assert route_csv([], LA).strip().count("\n") == 0
    assert _gpx(route_gpx([])).findall("g:rte", NS) == []
    assert route_geojson([], LA) == {"type": "FeatureCollection", "features": []}


def test_gpx_is_1_1_with_a_road_track_only_when_there_is_one() -> None:
    path = ((-118.30, 34.07), (-118.295, 34.072), (-118.289, 34.071))
    on_roads = _view("A", [_stop(1), _stop(2)], geometry=path)
    straight = _view("B", [_stop(1, located=False), _stop(3)])
    root = _gpx(route_gpx([on_roads, straight]))
    assert root.tag == "{http://www.topografix.com/GPX/1/1}gpx"
    assert root.get("version") == "1.1" and root.get("creator")
    (trk,) = root.findall("g:trk", NS)
    assert trk.findtext("g:name", namespaces=NS) == "A"
    pts = trk.findall("g:trkseg/g:trkpt", NS)
    assert [(float(p.get("lon", 0)), float(p.get("lat", 0))) for p in pts] == list(path)
    # a stop without a location cannot be a route point; the others are, in order
    rte_b = root.findall("g:rte", NS)[1]
    assert [p.findtext("g:name", namespaces=NS) for p in rte_b.findall("g:rtept", NS)] == [
        "3 MAIN ST"]
    first = root.find("g:rte/g:rtept", NS)
    assert first is not None
    assert (first.get("lat"), first.get("lon")) == ("34.071000", "-118.289000")
    # GPX 1.1 order inside a point: time, name, desc
    assert [c.tag.split("}")[1] for c in first][:3] == ["time", "name", "desc"]
    assert first.findtext("g:time", namespaces=NS) == "2020-01-03T15:10:00Z"


def test_csv_times_are_local_and_statuses_read_as_words() -> None:
    views = [_view("A", [_stop(1), _stop(2, status=wf.STOP_DONE, located=False)])]
    rows = _rows(route_csv(views, LA))
    assert [r["eta"] for r in rows] == ["2020-01-03T07:10-08:00", "2020-01-03T07:20-08:00"]
    assert [r["status"] for r in rows] == ["to do", "done"]
    assert (rows[0]["lon"], rows[0]["lat"]) == ("-118.289", "34.071")
    assert (rows[1]["lon"], rows[1]["lat"], rows[1]["navigation_url"]) == ("", "", "")
    assert rows[0]["navigation_url"].startswith("https://www.google.com/maps/dir/")
    assert [r["seq"] for r in rows] == ["1", "2"] and rows[0]["district"] == "13"


def test_geojson_is_rfc7946_points_in_lon_lat_order() -> None:
    views = [_view("A", [_stop(1), _stop(2, located=False)]), _view("B", [_stop(3)])]
    gj = route_geojson(views, LA, category_labels=LABELS)
    assert "crs" not in gj
    assert geojson.loads(json.dumps(gj)).is_valid
    first, unlocated, other = gj["features"]
    assert first["geometry"] == {"type": "Point", "coordinates": [-118.289, 34.071]}
    assert unlocated["geometry"] is None  # RFC 7946 3.2: an unlocated feature
    assert first["properties"].items() >= {"crew": "A", "seq": 1, "request_id": "1-00001",
                                           "address": "1 MAIN ST",
                                           "category": "Bulky items"}.items()
    assert first["properties"]["eta"] == "2020-01-03T07:10-08:00"
    assert other["properties"]["crew"] == "B"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValidationError, match="kml"):
        route_export([_view("A", [_stop(1)])], "kml", LA)


# -------------------------------------------------------------------- service and CLI


@dataclass(frozen=True)
class Seeded:
    url: str
    plan_id: int
    routes: dict[str, list[str]]  # crew -> addresses in order


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, la: CityPack) -> Seeded:
    tmp = tmp_path_factory.mktemp("exports")
    url = f"sqlite:///{tmp / 'exports.db'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(SAMPLE), "--no-geocode",
                 "--rejects", str(tmp / "r.csv")]) == 0
    engine = make_engine(url)
    try:
        with UnitOfWork(engine, actor="supervisor:test") as uow:
            summary = plan_for_day(uow, la, DAY, districts=["13", "14"], time_limit_s=2,
                                   max_workers=1)
        with UnitOfWork(engine, actor="supervisor:test") as uow:
            wf.assign_plan(uow, summary.plan_id)
        routes: dict[str, list[str]] = {}
        with UnitOfWork(engine) as uow:
            for r in summary.plan.routes:
                if r.stops:
                    view = wf.crew_route(uow, la.name, DAY, r.crew)
                    assert view is not None
                    routes[r.crew] = [s.address for s in view.stops]
    finally:
        engine.dispose()
    return Seeded(url, summary.plan_id, routes)


def _export(seeded: Seeded, la: CityPack, actor: str | Principal, fmt: str,
            crew: str | None = None, day: date = DAY) -> bytes:
    engine = make_engine(seeded.url)
    try:
        with UnitOfWork(engine, actor=actor) as uow:
            return export_day_routes(uow, la, day, fmt, crew)
    finally:
        engine.dispose()


SUPERVISOR = Principal("ana", Role.SUPERVISOR)


def test_a_supervisor_exports_the_day_or_one_crew(seeded: Seeded, la: CityPack) -> None:
    rows = _rows(_export(seeded, la, SUPERVISOR, "csv").decode("utf-8"))
    assert sorted({r["crew"] for r in rows}) == sorted(seeded.routes)
    crew = sorted(seeded.routes)[0]
    mine = [r for r in rows if r["crew"] == crew]
    assert [r["address"] for r in mine] == seeded.routes[crew]
    assert all(r["category"] in la.category_labels.values() for r in rows)
    root = _gpx(_export(seeded, la, SUPERVISOR, "gpx", crew).decode("utf-8"))
    assert [r.findtext("g:name", namespaces=NS) for r in root.findall("g:rte", NS)] == [crew]
    assert [n.text for n in root.findall("g:rte/g:rtept/g:name", NS)] == seeded.routes[crew]
    gj = json.loads(_export(seeded, la, SUPERVISOR, "geojson", crew))
    assert [f["properties"]["address"] for f in gj["features"]] == seeded.routes[crew]


def test_a_crew_member_exports_only_their_own_route(seeded: Seeded, la: CityPack) -> None:
    mine, other = sorted(seeded.routes)[:2]
    member = Principal(f"crew-{mine.lower()}", Role.CREW, crew=mine)
    own = _rows(_export(seeded, la, member, "csv", mine).decode("utf-8"))
    assert [r["address"] for r in own] == seeded.routes[mine]
    # without a crew, a crew member gets their own route, never the whole day
    assert _export(seeded, la, member, "csv") == _export(seeded, la, member, "csv", mine)
    with pytest.raises(AccessDeniedError):
        _export(seeded, la, member, "gpx", other)
    with pytest.raises(AccessDeniedError):
        _export(seeded, la, Principal("mo", Role.MANAGER), "csv")


@pytest.mark.parametrize(
    ("crew", "day", "error", "message"),
    [
        pytest.param("Nobody", DAY, NotFoundError, "crew 'Nobody' has no route", id="unknown-crew"),
        pytest.param(None, DAY + timedelta(days=1), NotFoundError, "no plan is assigned",
                     id="no-plan"),
    ],
)
def test_the_service_names_what_is_missing(seeded: Seeded, la: CityPack, crew: str | None,
                                           day: date, error: type[Exception],
                                           message: str) -> None:
    with pytest.raises(error, match=message):
        _export(seeded, la, SUPERVISOR, "csv", crew, day)


def test_the_command_writes_to_stdout_or_a_file(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crew = sorted(seeded.routes)[0]
    assert main(["--db", seeded.url, "--city", "los_angeles", "routes", "export", "--date",
                 DAY.isoformat(), "--crew", crew, "--format", "csv"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [r["address"] for r in rows] == seeded.routes[crew]
    out = tmp_path / "day.gpx"
    assert main(["--db", seeded.url, "--city", "los_angeles", "routes", "export", "--date",
                 DAY.isoformat(), "--format", "gpx", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    root = _gpx(out.read_text(encoding="utf-8"))
    assert len(root.findall("g:rte", NS)) == len(seeded.routes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--date", "2020-01-03", "--crew", "Nobody"], "crew 'Nobody' has no route",
                     id="unknown-crew"),
        pytest.param(["--date", "2020-01-04"], "no plan is assigned", id="no-plan"),
        pytest.param(["--date", "03/01/2020"], "not a date", id="bad-date"),
    ],
)
def test_the_command_says_what_is_missing_in_one_line(
    seeded: Seeded, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--db", seeded.url, "--city", "los_angeles", "routes", "export", *args,
                 "--format", "geojson"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("dispatch: ")
    assert err.strip().count("\n") == 0 and "Traceback" not in err



# ------------------------------------------------------------------------------ pages


class _KeptStorage(MemoryMediaFileStorage):
    """AppTest's in-memory media storage, kept so a test can read what a page offered."""

    made: ClassVar[list[MemoryMediaFileStorage]] = []

    def __init__(self, media_endpoint: str) -> None:
        super().__init__(media_endpoint)
        _KeptStorage.made.append(self)


def _page(name: str, seeded: Seeded, monkeypatch: pytest.MonkeyPatch,
          principal: Principal) -> AppTest:
    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", _KeptStorage)
    _KeptStorage.made.clear()
    return page_test(name, seeded.url, monkeypatch, principal)


def _downloads(at: AppTest) -> dict[str, bytes]:
    """Return label -> bytes of every download button on the page's last run."""
    storage = _KeptStorage.made[-1]
    out = {}
    for button in at.get("download_button"):
        file_id = button.proto.url.rsplit("/", 1)[-1].split(".")[0]
        out[button.proto.label] = storage.get_file(file_id).content
    return out


def test_the_crew_page_offers_its_own_route_with_addresses(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = sorted(seeded.routes)[0]
    member = Principal(f"crew-{mine.lower()}", Role.CREW, crew=mine)
    at = _page("crew.py", seeded, monkeypatch, member).run()
    assert not at.exception and not at.error
    files = _downloads(at)
    assert sorted(files) == ["My route (CSV)", "My route (GPX)"]
    rows = _rows(files["My route (CSV)"].decode("utf-8"))
    assert {r["crew"] for r in rows} == {mine}
    assert [r["address"] for r in rows] == seeded.routes[mine]
    root = _gpx(files["My route (GPX)"].decode("utf-8"))
    assert [n.text for n in root.findall("g:rte/g:rtept/g:name", NS)] == seeded.routes[mine]


def test_the_route_sheet_page_exports_name_the_addresses(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page("route_sheets.py", seeded, monkeypatch, SUPERVISOR).run()
    assert not at.exception and not at.error
    files = _downloads(at)
    assert sorted(files) == ["CSV", "GPX", "GeoJSON", "Route sheet (HTML)"]
    every = [a for c in sorted(seeded.routes) for a in seeded.routes[c]]
    assert [r["address"] for r in _rows(files["CSV"].decode("utf-8"))] == every
    root = _gpx(files["GPX"].decode("utf-8"))
    assert [n.text for n in root.findall("g:rte/g:rtept/g:name", NS)] == every
    gj = json.loads(files["GeoJSON"])
    assert [f["properties"]["address"] for f in gj["features"]] == every
