"""The Open311 GeoReport v2 server, walked over HTTP on localhost like any client would.

One store (SQLite file) holds the Los Angeles demo: the 10,000 real requests of 1-3
January 2020 and the demo clock at 07:00 on the 3rd. The real app runs on uvicorn in a
thread; every JSON answer is validated against its GeoReport v2 schema and every XML
answer is parsed and compared with the JSON one.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import event

from dispatch import logs
from dispatch.api.app import ApiSettings, create_app
from dispatch.auth import Principal, Role
from dispatch.citypack import CityPack, load_city_pack
from dispatch.services import apikeys
from dispatch.services.geocoding import city_geocoder
from dispatch.services.open311 import MAX_RESULTS
from dispatch.services.requests import cancel, mark_duplicate
from dispatch.store import Engine, UnitOfWork
from tests.open311_helpers import Reply, call, make_store, serving, xml_items

SUPERVISOR = Principal("ana", Role.SUPERVISOR)
V2 = "/open311/v2"


@dataclass
class Site:
    """A Curbside with the demo data, served."""

    engine: Engine
    pack: CityPack
    url: str
    key: str
    log: io.StringIO

    def get(self, path: str) -> Reply:
        return call(self.url + V2 + path)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    pack = load_city_pack("los_angeles")
    engine = make_store(tmp_path_factory.mktemp("site_a") / "a.db", pack, demo=True)
    with UnitOfWork(engine, actor="test:init") as uow:
        key = apikeys.create_api_key(uow, "fixmystreet", rate_per_min=1000).key
    out = io.StringIO()
    app = create_app(engine, pack, geocoder=city_geocoder(pack),
                     settings=ApiSettings(max_body_bytes=8 * 1024))
    logger = logs.configure(stream=out)
    old_level = logger.level
    logger.setLevel("INFO")
    try:
        with serving(app) as url:
            yield Site(engine, pack, url, key, out)
    finally:
        logger.setLevel(old_level)
        logs.configure(stream=sys.stderr)


def both(site: Site, path: str, kind: str, status: int = 200) -> tuple[Any, list[dict[str, str]]]:
    """GET ``path`` as JSON (validated) and as XML (parsed); return both."""
    base, _, query = path.partition("?")
    as_json = call(f"{site.url}{V2}{base}.json" + (f"?{query}" if query else ""))
    as_xml = call(f"{site.url}{V2}{base}.xml" + (f"?{query}" if query else ""))
    assert (as_json.status, as_xml.status) == (status, status), as_json.body[:300]
    return as_json.valid(kind), xml_items(as_xml.xml)


def _same_text(doc: list[dict[str, Any]], xml: list[dict[str, str]]) -> None:
    assert len(doc) == len(xml)
    for item, elem in zip(doc, xml, strict=True):
        for key, value in item.items():
            if isinstance(value, list | dict):
                continue
            text = "" if value is None else (
                ("true" if value else "false") if isinstance(value, bool) else
                repr(value) if isinstance(value, float) else str(value))
            assert elem[key] == text, (key, value, elem[key])


# --------------------------------------------------------------------------- discovery


def test_discovery_and_services(site: Site) -> None:
    disc = site.get("/discovery.json").valid("discovery")
    assert disc["endpoints"][0]["url"] == site.url + V2
    root = site.get("/discovery.xml").xml
    assert root.tag == "discovery"
    assert [f.text for f in root.iter("format")] == ["text/xml", "application/json"]
    assert site.get("/discovery").xml.tag == "discovery"  # no suffix: XML, the default

    services, xml = both(site, "/services", "services")
    _same_text(services, xml)
    assert [s["service_code"] for s in services] == [
        c.public_code for c in site.pack.categories.values()]
    metal = next(s for s in services if s["service_code"] == "metal_household_appliances")
    assert metal["keywords"] == "Metal/Household Appliances"  # the city's code, an alias
    for code in ("bulky_items", quote("Bulky Items")):
        definition = site.get(f"/services/{code}.json").valid("service_definition")
        assert definition == {"service_code": "bulky_items", "attributes": []}
    root = site.get("/services/bulky_items.xml").xml
    assert root.tag == "service_definition" and root.findtext("service_code") == "bulky_items"
    missing = site.get("/services/potholes.json")
    assert missing.status == 404
    assert "potholes" in missing.valid("errors")[0]["description"]


# --------------------------------------------------------------------------- GET requests


def _demo_now(site: Site) -> datetime:
    with UnitOfWork(site.engine) as uow:
        return uow.now()


def test_default_query_is_the_last_90_days_capped_and_paged(site: Site) -> None:
    first = site.get("/requests.json")
    doc = first.valid("requests")
    assert len(doc) == MAX_RESULTS
    now = _demo_now(site)
    stamps = [datetime.fromisoformat(r["requested_datetime"]) for r in doc]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert all(now - timedelta(days=90) <= s <= now for s in stamps)
    # the rest through the Link header, without repeats, to the end of the window
    seen = [r["service_request_id"] for r in doc]
    link = first.headers["link"]
    pages = 1
    while link:
        assert link.endswith('>; rel="next"')
        reply = call(link[1 : link.index(">")])
        page = reply.valid("requests")
        seen += [r["service_request_id"] for r in page]
        link = reply.headers.get("link", "")
        pages += 1
    assert len(seen) == len(set(seen))
    with UnitOfWork(site.engine) as uow:
        expected = sum(1 for r in uow.requests.query_columns()
                       if now - timedelta(days=90) <= r.requested_at <= now)
    assert len(seen) == expected and pages == -(-expected // MAX_RESULTS)
    assert expected < 10_000  # the demo clock stops the window at 07:00 on the 3rd


def test_pages_are_read_in_sql_with_a_limit(site: Site) -> None:
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(site.engine, "before_cursor_execute", note)
    try:
        assert len(site.get("/requests.json?page_size=5&page=3").valid("requests")) == 5
    finally:
        event.remove(site.engine, "before_cursor_execute", note)
    reads = [s for s in statements if "FROM requests" in s]
    assert reads and all("LIMIT" in s for s in reads), reads


@pytest.mark.parametrize(("query", "words"), [
    ("page_size=1001", "page_size 1001 is out of range; expected 1 to 1000"),
    ("page_size=0", "page_size 0 is out of range"),
    ("page=x", "page 'x' is not a whole number"),
    ("status=pending", "status 'pending' is not one of 'open', 'closed'"),
    ("service_code=potholes", "service_code 'potholes' is not a service of City of Los Angeles"),
    ("start_date=yesterday", "start_date 'yesterday' is not a date; expected ISO 8601"),
    ("start_date=2020-01-03&end_date=2020-01-01", "end_date 2020-01-01T00:00:00-08:00 is before"),
    ("start_date=2019-01-01&end_date=2020-01-01", "spans 365 days; at most 90"),
    ("jurisdiction_id=pasadena", "jurisdiction_id 'pasadena' is not served here"),
])
def test_bad_queries_get_one_sentence_in_the_error_format(site: Site, query: str,
                                                          words: str) -> None:
    reply = site.get(f"/requests.json?{query}")
    assert reply.status in (400, 404)
    doc = reply.valid("errors")
    assert words in doc[0]["description"] and doc[0]["code"] == reply.status
    root = site.get(f"/requests.xml?{query}").xml
    assert root.tag == "errors" and words in (root.findtext("error/description") or "")


def test_filters(site: Site) -> None:
    window = "start_date=2020-01-02T00:00:00&end_date=2020-01-02T06:00:00"
    doc, xml = both(site, f"/requests?{window}&page_size=1000", "requests")
    _same_text(doc, xml)
    assert doc and all("2020-01-02T00:00:00-08:00" <= r["requested_datetime"]
                       <= "2020-01-02T06:00:00-08:00" for r in doc)
    graffiti = site.get(f"/requests.json?{window}&service_code=graffiti_removal").valid(
        "requests")
    alias = site.get(f"/requests.json?{window}&service_code={quote('Graffiti Removal')}").valid(
        "requests")
    assert graffiti == alias and graffiti
    assert {r["service_code"] for r in graffiti} == {"graffiti_removal"}
    assert {r["service_request_id"] for r in graffiti} == {
        r["service_request_id"] for r in doc if r["service_code"] == "graffiti_removal"}
    two = site.get(f"/requests.json?{window}&service_code=graffiti_removal,bulky_items").valid(
        "requests")
    assert {r["service_code"] for r in two} == {"graffiti_removal", "bulky_items"}
    opened = site.get(f"/requests.json?{window}&status=open").valid("requests")
    closed = site.get(f"/requests.json?{window}&status=closed").valid("requests")
    assert {r["status"] for r in opened} == {"open"} and {r["status"] for r in closed} == {
        "closed"}
    assert len(opened) + len(closed) == len(doc)
    both_sides = site.get(f"/requests.json?{window}&status=open,closed").valid("requests")
    assert len(both_sides) == len(doc)
    # ids override every other filter (these are outside the window and of other types)
    ids = [r["service_request_id"] for r in graffiti[:2]]
    other = [r["service_request_id"] for r in closed if r["service_code"] != "graffiti_removal"][:1]
    picked = site.get("/requests.json?service_request_id=" + ",".join(ids + other)
                      + "&service_code=bulky_items&start_date=2010-01-01&end_date=2010-01-02"
                      ).valid("requests")
    assert sorted(r["service_request_id"] for r in picked) == sorted(ids + other)
    # an end date alone: the 90 days before it
    early = site.get("/requests.json?end_date=2020-01-01T00:10:00-08:00").valid("requests")
    assert early and all(r["requested_datetime"] <= "2020-01-01T00:10:00-08:00" for r in early)


def test_one_request_and_its_absence(site: Site) -> None:
    some = site.get("/requests.json?page_size=1").valid("requests")[0]
    doc, xml = both(site, f"/requests/{some['service_request_id']}", "requests")
    _same_text(doc, xml)
    assert doc == [some]
    missing = site.get("/requests/1-0.json")
    assert missing.status == 404 and missing.valid("errors")[0]["code"] == 404


def test_no_personal_data_is_ever_shown(site: Site) -> None:
    with UnitOfWork(site.engine, SUPERVISOR) as uow:
        row = uow.requests.query(limit=1)[0]
        row.caller_email, row.caller_phone = "resident@example.org", "555-0100"
        uow.commit()
    body = site.get(f"/requests/{row.external_id}.json").body.decode()
    assert "resident@example.org" not in body and "555-0100" not in body


def test_status_notes_say_why_a_request_closed(site: Site) -> None:
    opened = site.get("/requests.json?status=open&page_size=20").valid("requests")
    assert len(opened) >= 3
    with UnitOfWork(site.engine, SUPERVISOR) as uow:
        pks = {r.external_id: r.id for r in uow.requests.query_columns()
               if r.external_id in {o["service_request_id"] for o in opened[:3]}}
    first, second, third = (o["service_request_id"] for o in opened[:3])
    with UnitOfWork(site.engine, SUPERVISOR) as uow:
        cancel(uow, [pks[first]], "caller Mrs Smith phoned back, already painted over")
    with UnitOfWork(site.engine, SUPERVISOR) as uow:
        mark_duplicate(uow, [pks[second]], pks[third])
    notes = {r["service_request_id"]: (r["status"], r["status_notes"]) for r in site.get(
        f"/requests.json?service_request_id={first},{second},{third}").valid("requests")}
    assert notes[first] == ("closed", "Cancelled by the service center.")
    assert notes[second] == ("closed", f"Duplicate of request {third}.")
    assert notes[third][0] == "open"
    assert "Smith" not in json.dumps(notes)  # staff's free text is never public
    fixed = site.get("/requests.json?status=closed&service_code=graffiti_removal&page_size=5"
                     ).valid("requests")
    assert fixed and all(r["status_notes"] for r in fixed)


# --------------------------------------------------------------------------- POST requests


def post(site: Site, fields: dict[str, str], fmt: str = "json", **kw: Any) -> Reply:
    return call(f"{site.url}{V2}/requests.{fmt}", data=fields, **kw)


def test_post_goes_through_intake_and_reads_back(site: Site) -> None:
    near = site.get("/requests.json?status=open&service_code=bulky_items&page_size=1").valid(
        "requests")[0]
    reply = post(site, {
        "api_key": site.key, "service_code": "bulky_items", "lat": str(near["lat"] + 0.0001),
        "long": str(near["long"]), "description": "old sofa on the kerb",
        "first_name": "Ana", "last_name": "Ruiz", "email": "ana@example.org",
        "media_url": "https://photos.example.org/sofa.jpg", "address_id": "A-77"})
    assert reply.status == 200, reply.body
    made = reply.valid("post_response")[0]
    assert made["service_notice"] and near["service_request_id"] in made["service_notice"]
    back = site.get(f"/requests/{made['service_request_id']}.json").valid("requests")[0]
    assert back["status"] == "open" and back["service_code"] == "bulky_items"
    assert back["description"] == "old sofa on the kerb"
    assert back["media_url"] == "https://photos.example.org/sofa.jpg"
    assert back["address_id"] == "A-77" and abs(back["lat"] - near["lat"] - 0.0001) < 1e-9
    token = site.get(f"/tokens/{made['token']}.json").valid("tokens")
    assert token == [{"token": made["token"], "service_request_id": made["service_request_id"]}]
    assert xml_items(site.get(f"/tokens/{made['token']}.xml").xml)[0][
        "service_request_id"] == made["service_request_id"]
    with UnitOfWork(site.engine, SUPERVISOR) as uow:
        row = uow.requests.by_external_id(made["service_request_id"])[0]
        events = uow.events.for_entity("request", row.id)
    assert (row.source, row.channel, row.caller_name, row.caller_email) == (
        "intake", "app", "Ana Ruiz", "ana@example.org")
    assert row.district is not None and row.geocode_precision == "manual"
    assert [(e.actor, e.action) for e in events] == [("api:fixmystreet", "created")]
    assert site.get("/tokens/nope.json").status == 404


def test_post_geocodes_an_address_with_the_city_geocoder(site: Site) -> None:
    known = site.get("/requests.json?service_code=graffiti_removal&page_size=50").valid(
        "requests")
    target = next(r for r in known if r["address"] and "," in r["address"] and r["lat"])
    reply = post(site, {"api_key": site.key, "service_code": "Graffiti Removal",
                        "address_string": target["address"]}, fmt="xml")
    assert reply.status == 200
    made = xml_items(reply.xml)[0]
    back = site.get(f"/requests/{made['service_request_id']}.json").valid("requests")[0]
    assert back["lat"] is not None and abs(back["lat"] - target["lat"]) < 0.001
    assert back["zipcode"] and back["zipcode"] in target["address"]
    nowhere = post(site, {"api_key": site.key, "service_code": "graffiti_removal",
                          "address_string": "99999 NOWHERE IN PARTICULAR BLVD"})
    assert nowhere.status == 200  # taken, and waits in "Needs location"
    unplaced = site.get(f"/requests/{nowhere.valid('post_response')[0]['service_request_id']}"
                        ".json").valid("requests")[0]
    assert unplaced["lat"] is None and unplaced["address"] == "99999 NOWHERE IN PARTICULAR BLVD"


def test_post_of_an_address_in_another_city_is_refused_with_the_reason(site: Site) -> None:
    """Issue 13: a Pasadena address was taken into Los Angeles and placed in Eagle Rock;
    intake refuses it, and so does the API, which now hands intake the city's geocoder."""
    reply = post(site, {"api_key": site.key, "service_code": "bulky_items",
                        "address_string": "100 E Colorado Blvd, Pasadena, CA 91101"})
    assert reply.status == 400, reply.body
    assert b"outside the city limit" in reply.body


@pytest.mark.parametrize(("fields", "status", "words"), [
    ({"service_code": "bulky_items", "lat": "34.05", "long": "-118.25"}, 403,
     "api_key is missing, unknown or revoked"),
    ({"api_key": "cs_not-a-real-key", "service_code": "bulky_items", "lat": "34.05",
      "long": "-118.25"}, 403, "api_key is missing"),
    ({"api_key": "KEY", "lat": "34.05", "long": "-118.25"}, 400, "service_code is missing"),
    ({"api_key": "KEY", "service_code": "potholes", "lat": "34.05", "long": "-118.25"}, 400,
     "service_code 'potholes' is not a service"),
    ({"api_key": "KEY", "service_code": "bulky_items", "lat": "34.05"}, 400,
     "lat and long come together"),
    ({"api_key": "KEY", "service_code": "bulky_items"}, 400, "a request needs a location"),
    ({"api_key": "KEY", "service_code": "bulky_items", "lat": "48.8566", "long": "2.3522"},
     400, "is outside City of Los Angeles"),
    ({"api_key": "KEY", "service_code": "bulky_items", "lat": "north", "long": "-118.2"},
     400, "lat 'north' is not a number"),
    ({"api_key": "KEY", "service_code": "bulky_items", "lat": "34.05", "long": "-118.25",
      "media_url": "javascript:alert(1)"}, 400, "media_url 'javascript:alert(1)' is not"),
    ({"api_key": "KEY", "service_code": "bulky_items", "lat": "34.05", "long": "-118.25",
      "description": "x" * 4001}, 400, "description has 4001 characters; at most 4000"),
    ({"api_key": "KEY", "service_code": "bulky_items", "lat": "34.05", "long": "-118.25",
      "jurisdiction_id": "pasadena"}, 404, "jurisdiction_id 'pasadena' is not served here"),
])
def test_bad_submissions_are_refused_in_one_sentence(site: Site, fields: dict[str, str],
                                                     status: int, words: str) -> None:
    fields = {k: (site.key if v == "KEY" else v) for k, v in fields.items()}
    with UnitOfWork(site.engine) as uow:
        before = uow.requests.count()
    reply = post(site, fields)
    assert reply.status == status
    assert words in reply.valid("errors")[0]["description"]
    with UnitOfWork(site.engine) as uow:
        assert uow.requests.count() == before


def test_body_size_content_type_and_methods(site: Site) -> None:
    big = post(site, {"api_key": site.key, "service_code": "bulky_items",
                      "description": "x" * 9000})
    assert big.status == 413 and "at most 8192" in big.valid("errors")[0]["description"]
    chunks = (b"api_key=" + site.key.encode() + b"&description=" + b"y" * 5000 for _ in range(3))
    chunked = call(f"{site.url}{V2}/requests.json", data=b"".join(chunks),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert chunked.status == 413
    as_json = call(f"{site.url}{V2}/requests.json", data=b'{"service_code": "bulky_items"}',
                   headers={"Content-Type": "application/json"})
    assert as_json.status == 400
    assert "expected application/x-www-form-urlencoded" in as_json.valid("errors")[0][
        "description"]
    assert call(f"{site.url}{V2}/services.json", data={"a": "b"}).status == 405
    unknown = call(f"{site.url}{V2}/potholes.xml")
    assert unknown.status == 404 and unknown.xml.tag == "errors"
    assert call(f"{site.url}/health").json["status"] == "ok"


def test_revoked_keys_stop_working(site: Site) -> None:
    with UnitOfWork(site.engine, actor="test") as uow:
        issued = apikeys.create_api_key(uow, "short-lived")
    fields = {"api_key": issued.key, "service_code": "bulky_items", "lat": "34.05",
              "long": "-118.25"}
    assert post(site, fields).status == 200
    with UnitOfWork(site.engine, actor="test") as uow:
        assert apikeys.revoke_api_key(uow, issued.prefix) == 1
    assert post(site, fields).status == 403


def test_rates_per_key_and_per_client(site: Site) -> None:
    with UnitOfWork(site.engine, actor="test") as uow:
        slow = apikeys.create_api_key(uow, "slow-client", rate_per_min=2)
    fields = {"api_key": slow.key, "service_code": "bulky_items", "lat": "34.05",
              "long": "-118.25"}
    assert [post(site, fields).status for _ in range(2)] == [200, 200]
    third = post(site, fields)
    assert third.status == 429 and int(third.headers["retry-after"]) >= 1
    assert "made 2 submissions this minute" in third.valid("errors")[0]["description"]
    # the other key is not slowed down by this one
    assert post(site, {**fields, "api_key": site.key}).status == 200
    now = [0.0]
    tight = create_app(site.engine, site.pack, settings=ApiSettings(client_rate_per_min=3),
                       clock=lambda: now[0])
    with serving(tight) as url:
        statuses = [call(f"{url}{V2}/services.json").status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        now[0] += 61
        assert call(f"{url}{V2}/services.json").status == 200


def test_one_log_line_per_request(site: Site) -> None:
    site.log.seek(0)
    site.log.truncate()
    site.get("/services.json")
    site.get("/requests/1-0.json")
    deadline = time.monotonic() + 5  # the line is written just after the answer is sent
    while True:
        lines = [json.loads(line) for line in site.log.getvalue().splitlines()]
        requests = [x for x in lines if x["logger"] == "curbside.api" and x["msg"] == "request"]
        if len(requests) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert [(x["path"], x["status"]) for x in requests] == [
        (f"{V2}/services.json", 200), (f"{V2}/requests/1-0.json", 404)]
    assert all(x["client"] == "127.0.0.1" and x["ms"] >= 0 for x in requests)


def test_an_unreachable_database_is_one_sentence_and_503(site: Site) -> None:
    from dispatch.store import make_engine

    down = make_engine("postgresql://curbside@127.0.0.1:9/nowhere")
    with serving(create_app(down, site.pack)) as url:
        reply = call(f"{url}/health")
        listed = call(f"{url}{V2}/requests.json")
    assert (reply.status, listed.status) == (503, 503)
    description = listed.valid("errors")[0]["description"]
    assert "Traceback" not in description and description.count("\n") == 0
