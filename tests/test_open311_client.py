"""The Open311 client: pulls in date windows, against recorded answers and a live Curbside.

Recorded answers (``tests/data/open311/recorded``) follow the GeoReport v2 specification's
own examples: numeric ids and ZIP codes, a ``media_url`` with a trailing space, missing
optional fields, a ``{"service_requests": [...]}`` wrapper. The live test runs Curbside A's
API on localhost and has Curbside B pull from it: B ends with the same requests, and a
second pull changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dispatch.api.app import create_app
from dispatch.api.client import Answer, pull_windows, requests_url
from dispatch.auth import Principal, Role
from dispatch.citypack import CityPack, load_city_pack
from dispatch.cli import main
from dispatch.errors import DispatchError
from dispatch.services.imports import import_open311
from dispatch.services.open311 import shape_rows
from dispatch.services.requests import cancel, fix_location
from dispatch.store import Engine, UnitOfWork
from tests.open311_helpers import VALIDATORS, call, make_store, serving

RECORDED = Path(__file__).resolve().parent / "data" / "open311" / "recorded"
LA = ZoneInfo("America/Los_Angeles")
SUPERVISOR = Principal("ana", Role.SUPERVISOR)


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


def _recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text(encoding="utf-8"))


class Recorded:
    """A fake server answering each window with a recorded file, by the window's day."""

    def __init__(self, by_day: Mapping[str, str]) -> None:
        self.by_day = by_day
        self.asked: list[dict[str, str]] = []

    def __call__(self, url: str, params: Mapping[str, str]) -> Answer:
        assert url == "https://city.example/open311/v2/requests.json"
        self.asked.append(dict(params))
        name = self.by_day.get(params["start_date"][:10])
        doc = _recorded(name) if name else []
        items = doc["service_requests"] if isinstance(doc, dict) else doc
        return Answer(items)


def _pull(engine: Engine, la: CityPack, fetch: Recorded, **kw: Any) -> Any:
    with UnitOfWork(engine, actor="test:pull") as uow:
        return import_open311(uow, la, "https://city.example/open311/v2", fetch=fetch,
                              since=datetime(2020, 1, 1, tzinfo=LA),
                              until=datetime(2020, 1, 3, tzinfo=LA), **kw)


@pytest.fixture
def store(tmp_path: Path, la: CityPack) -> Engine:
    return make_store(tmp_path / "b.db", la, demo=False)


def test_recorded_answers_import_and_reimport_safely(store: Engine, la: CityPack,
                                                     tmp_path: Path) -> None:
    fetch = Recorded({"2020-01-01": "la_day1.json", "2020-01-02": "la_day2.json"})
    rejects = tmp_path / "rejects.csv"
    summary = _pull(store, la, fetch, reject_file=rejects)
    assert [(p["start_date"], p["end_date"]) for p in fetch.asked] == [
        ("2020-01-01T00:00:00-08:00", "2020-01-02T00:00:00-08:00"),
        ("2020-01-02T00:00:00-08:00", "2020-01-03T00:00:00-08:00")]
    assert summary.windows == 2
    assert (summary.imported, summary.updated, summary.unchanged) == (4, 0, 0)
    reasons = {r.external_id: r.reason for r in summary.rejects}
    assert reasons == {
        "7100004": "status 'pending' is not one of 'open', 'closed'",
        "7100005": "service_code 'Potholes' is not a category of this city pack"}
    assert "7100004" in rejects.read_text()
    with UnitOfWork(store) as uow:
        rows = {r.external_id: r for r in uow.requests.query()}
        doc = {d["service_request_id"]: d for d in shape_rows(uow, la, list(rows.values()))}
    assert set(rows) == {"7100001", "7100002", "7100003", "7100006"}
    VALIDATORS["requests"].validate(list(doc.values()))
    first = doc["7100001"]
    assert (first["status"], first["status_notes"], first["service_code"]) == (
        "closed", "Duplicate request.", "graffiti_removal")
    assert first["media_url"] == "http://city.example/requests/media/7100001.jpg"
    assert (first["address_id"], first["zipcode"]) == ("545483", "90029")
    assert first["requested_datetime"] == "2020-01-01T06:37:38-08:00"
    assert doc["7100006"]["service_code"] == "bulky_items"  # the city's alias
    assert doc["7100006"]["requested_datetime"] == "2020-01-02T04:30:00-08:00"
    assert rows["7100003"].lon is None  # no coordinates, no geocoder here
    again = _pull(store, la, Recorded({"2020-01-01": "la_day1.json",
                                       "2020-01-02": "la_day2.json"}))
    assert (again.imported, again.updated, again.unchanged, again.rejected) == (0, 0, 4, 2)


def test_the_specifications_own_example_is_read_and_refused_for_its_city(
        store: Engine, la: CityPack) -> None:
    summary = _pull(store, la, Recorded({"2020-01-01": "spec_example.json"}))
    assert summary.imported == 0
    assert [(r.external_id, r.field) for r in summary.rejects] == [
        ("638344", "service_code"), ("638349", "service_code")]
    assert "service_code '006' is not a category" in summary.rejects[0].reason


def test_a_second_pull_starts_where_the_last_ended(store: Engine, la: CityPack) -> None:
    fetch = Recorded({})
    _pull(store, la, fetch)
    later = Recorded({})
    with UnitOfWork(store, actor="test:pull") as uow:
        summary = import_open311(uow, la, "https://city.example/open311/v2/", fetch=later,
                                 until=datetime(2020, 1, 3, 12, tzinfo=LA))
    assert summary.since == datetime(2020, 1, 3, tzinfo=LA)
    assert [p["start_date"] for p in later.asked] == ["2020-01-03T00:00:00-08:00"]


def test_full_windows_are_split_and_pages_followed() -> None:
    start = datetime(2020, 1, 1, tzinfo=LA)
    times = [start + timedelta(seconds=30 * i) for i in range(2500)]  # 20.8 h of requests
    asked: list[tuple[str, str]] = []

    def capped(url: str, params: Mapping[str, str]) -> Answer:
        lo, hi = (datetime.fromisoformat(params[k]) for k in ("start_date", "end_date"))
        asked.append((params["start_date"], params["end_date"]))
        inside = [{"service_request_id": str(i)} for i, t in enumerate(times) if lo <= t <= hi]
        return Answer(inside[:1000])  # a server that cuts at 1,000 and says nothing

    got = list(pull_windows("u", start, start + timedelta(days=1), tz=LA, fetch=capped))
    ids = {item["service_request_id"] for w in got for item in w.items}
    assert ids == {str(i) for i in range(2500)}
    assert all(len(w.items) < 1000 for w in got) and len(asked) > len(got) >= 3

    pages = {"u": Answer([{"service_request_id": "a"}], "u?page=2"),
             "u?page=2": Answer([{"service_request_id": "b"}], "u?page=3"),
             "u?page=3": Answer([{"service_request_id": "c"}])}
    paged = list(pull_windows("u", start, start + timedelta(hours=1), tz=LA,
                              fetch=lambda url, params: pages[url]))
    assert [[i["service_request_id"] for i in w.items] for w in paged] == [["a", "b", "c"]]
    assert paged[0].pages == 3


def test_unreachable_and_bad_endpoints_say_so(la: CityPack) -> None:
    with pytest.raises(DispatchError, match="is not an http"):
        requests_url("file:///etc/passwd")
    assert requests_url("https://city.example/open311/v2/requests.json?x=1") == (
        "https://city.example/open311/v2/requests.json")
    with pytest.raises(DispatchError, match=r"--until .* is before --since"):
        list(pull_windows("u", datetime(2020, 1, 2, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC),
                          tz=LA, fetch=lambda u, p: Answer([])))


# --------------------------------------------------------------------------- live


@dataclass
class Live:
    engine: Engine
    url: str


@pytest.fixture(scope="module")
def site_a(tmp_path_factory: pytest.TempPathFactory, la: CityPack) -> Iterator[Live]:
    engine = make_store(tmp_path_factory.mktemp("a") / "a.db", la, demo=True)
    with serving(create_app(engine, la)) as url:
        yield Live(engine, url + "/open311/v2")


SPAN = ("2019-12-31T00:00:00-08:00", "2020-01-04T00:00:00-08:00")


def _all_of_a(site: Live) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    start = datetime.fromisoformat(SPAN[0])
    while start < datetime.fromisoformat(SPAN[1]):
        end = start + timedelta(days=1)
        link: str | None = (f"{site.url}/requests.json?start_date={start.isoformat()}"
                            f"&end_date={end.isoformat()}").replace("+", "%2B")
        while link:
            reply = call(link)
            for item in reply.valid("requests"):
                out[item["service_request_id"]] = item
            header = reply.headers.get("link", "")
            link = header[1 : header.index(">")] if header else None
        start = end
    return out


def _all_of(engine: Engine, la: CityPack) -> dict[str, dict[str, Any]]:
    with UnitOfWork(engine) as uow:
        rows = uow.requests.query()
        return {d["service_request_id"]: d for d in shape_rows(uow, la, rows)}


def test_round_trip_b_pulls_a_and_ends_with_the_same_requests(
        site_a: Live, la: CityPack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = tmp_path / "b.db"
    make_store(b, la, demo=False)
    argv = ["--db", f"sqlite:///{b}", "import", "--from-open311", site_a.url, "--since",
            SPAN[0], "--until", SPAN[1], "--no-geocode", "--rejects", str(tmp_path / "r.csv")]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("pulled 2019-12-31 08:00 to 2020-01-04 08:00 UTC in 4 windows: "
                           "imported 10000, updated 0, unchanged 0, rejected 0"), line
    from dispatch.store import make_engine

    engine_b = make_engine(f"sqlite:///{b}")
    seen_by_a = _all_of_a(site_a)
    assert len(seen_by_a) == 10_000
    assert _all_of(engine_b, la) == seen_by_a
    # the same again: nothing changes
    assert main(argv) == 0
    assert "imported 0, updated 0, unchanged 10000, rejected 0" in capsys.readouterr().out


def test_a_repull_keeps_local_work_and_takes_the_sources_new_word(
        site_a: Live, la: CityPack, tmp_path: Path) -> None:
    b = make_store(tmp_path / "b.db", la, demo=False)

    def pull() -> Any:
        with UnitOfWork(b, actor="test:pull") as uow:
            return import_open311(uow, la, site_a.url,
                                  since=datetime(2020, 1, 2, 0, tzinfo=LA),
                                  until=datetime(2020, 1, 2, 12, tzinfo=LA))

    first = pull()
    assert first.imported > 5
    with UnitOfWork(b) as uow:
        rows = [r for r in uow.requests.query() if r.status == "new" and r.lon is not None]
    moved, cancelled, closed_at_a = rows[0], rows[1], rows[2]
    with UnitOfWork(b, SUPERVISOR) as uow:
        fix_location(uow, la, moved.id, moved.lon + 0.001, moved.lat, how="map click")
    with UnitOfWork(b, SUPERVISOR) as uow:
        cancel(uow, [cancelled.id], "resident says it is gone")
    # meanwhile at A, the third one is cancelled too: both now say closed
    with UnitOfWork(site_a.engine, SUPERVISOR) as uow:
        pk = uow.requests.by_external_id(closed_at_a.external_id)[0].id
        cancel(uow, [pk], "duplicate call")
    again = pull()
    assert again.imported == 0 and again.updated == 1 and again.conflicts == 0
    with UnitOfWork(b) as uow:
        kept = {r.id: r for r in uow.requests.by_ids([moved.id, cancelled.id, closed_at_a.id])}
    assert abs(kept[moved.id].lon - (moved.lon + 0.001)) < 1e-9  # the manual fix stands
    assert kept[cancelled.id].status == "cancelled"  # local work stands
    assert kept[closed_at_a.id].status == "completed"  # the source's word, it owns it
