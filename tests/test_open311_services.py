"""The Open311 services on every backend (SQLite, and PostgreSQL when configured).

The HTTP server is walked in ``test_api_server``; here the same services run on the
``db`` fixture, so that their SQL (pages, filters, closing events, receipts) is proven on
PostgreSQL too.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection

from dispatch.auth import Principal, Role
from dispatch.citypack import CityPack, load_city_pack
from dispatch.errors import NotFoundError, ValidationError
from dispatch.services import open311 as svc
from dispatch.services.imports import import_requests
from dispatch.services.requests import cancel, mark_duplicate
from dispatch.store import UnitOfWork
from tests.open311_helpers import VALIDATORS

pytestmark = pytest.mark.db

SAMPLE = Path(__file__).parent / "data" / "import" / "myla311_2020_sample.csv"
MORNING = Path(__file__).parent / "data" / "workflow" / "la_day_cd13_cd14_open.csv"
LA = ZoneInfo("America/Los_Angeles")
SUPERVISOR = Principal("ana", Role.SUPERVISOR)
ROBOT = Principal("robot", Role.API)
ALL = {"start_date": "2019-12-31", "end_date": "2020-01-04"}


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


def _find(db: Connection, la: CityPack, **params: str) -> svc.RequestPage:
    with UnitOfWork(db) as uow:
        return svc.find_requests(uow, la, svc.parse_request_query(params, la))


def test_pages_filters_and_shapes(db: Connection, la: CityPack) -> None:
    with UnitOfWork(db) as uow:
        import_requests(uow, SAMPLE, la)
    everything = _find(db, la, **ALL)
    VALIDATORS["requests"].validate(everything.requests)
    assert len(everything.requests) == 23 and not everything.has_more
    ids = [r["service_request_id"] for r in everything.requests]
    pages = [_find(db, la, **ALL, page_size="10", page=str(n)) for n in (1, 2, 3)]
    assert [len(p.requests) for p in pages] == [10, 10, 3]
    assert [p.has_more for p in pages] == [True, True, False]
    assert [r["service_request_id"] for p in pages for r in p.requests] == ids
    bulky = _find(db, la, **ALL, service_code="Bulky Items")
    assert bulky.requests and {r["service_code"] for r in bulky.requests} == {"bulky_items"}
    opened = _find(db, la, **ALL, status="open").requests
    closed = _find(db, la, **ALL, status="closed").requests
    assert len(opened) + len(closed) == 23
    one = _find(db, la, service_request_id=ids[3]).requests
    assert [r["service_request_id"] for r in one] == [ids[3]]
    with UnitOfWork(db) as uow:
        assert svc.get_request(uow, la, ids[3]) == one
        with pytest.raises(NotFoundError, match="'nope' does not exist"):
            svc.get_request(uow, la, "nope")


def test_closing_notes_and_submissions(db: Connection, la: CityPack) -> None:
    with UnitOfWork(db) as uow:
        import_requests(uow, MORNING, la)
    opened = _find(db, la, **ALL, status="open").requests
    with UnitOfWork(db) as uow:
        pks = {r.external_id: r.id for r in uow.requests.query()}
    first, second = opened[0]["service_request_id"], opened[1]["service_request_id"]
    with UnitOfWork(db, SUPERVISOR) as uow:
        cancel(uow, [pks[first]], "not needed")
    with UnitOfWork(db, SUPERVISOR) as uow:
        mark_duplicate(uow, [pks[second]], pks[first])
    notes = {r["service_request_id"]: r["status_notes"]
             for r in _find(db, la, service_request_id=f"{first},{second}").requests}
    assert notes == {first: "Cancelled by the service center.",
                     second: f"Duplicate of request {first}."}
    fields = {"service_code": "graffiti_removal", "lat": "34.0537", "long": "-118.2428",
              "media_url": "https://photos.example.org/wall.jpg"}
    with UnitOfWork(db, ROBOT) as uow:
        made = svc.submit_request(uow, la, fields)
    VALIDATORS["post_response"].validate([made.as_open311()])
    with UnitOfWork(db) as uow:
        assert svc.token_lookup(uow, made.token) == {
            "token": made.token, "service_request_id": made.service_request_id}
        back = svc.get_request(uow, la, made.service_request_id)[0]
        events = uow.events.for_entity("request", uow.requests.by_external_id(
            made.service_request_id)[0].id)
    assert back["media_url"] == fields["media_url"] and back["status"] == "open"
    assert [(e.actor, e.action) for e in events] == [("api:robot", "created")]
    with UnitOfWork(db, ROBOT) as uow, pytest.raises(ValidationError, match="outside"):
        svc.submit_request(uow, la, {**fields, "lat": "40.71", "long": "-74.0"})


def test_could_not_complete_reads_as_the_crews_reason() -> None:
    row = SimpleNamespace(source="myla311", status_owner="workflow", extra={},
                          status="closed_not_fixed", service_date=None)
    assert svc.status_notes(row, ("closed_not_fixed", {"reason": "not_out", "note": "call me"}),
                            None) == "Could not complete: the item was not out."
    assert svc.status_notes(row, None, None) == (
        "Could not complete: the crew could not complete it.")
    scheduled = SimpleNamespace(source="myla311", status_owner="workflow", extra={},
                                status="scheduled", service_date=datetime(2020, 1, 6).date())
    assert svc.status_notes(scheduled, None, None) == "Scheduled for 2020-01-06."
    relayed = SimpleNamespace(source="open311", status_owner="source", status="completed",
                              extra={"status_notes": "Item picked up."}, service_date=None)
    assert svc.status_notes(relayed, None, None) == "Item picked up."
    assert svc.STATUSES_OF["open"] == (
        "new", "triaged", "scheduled", "in_progress", "closed_not_fixed")
