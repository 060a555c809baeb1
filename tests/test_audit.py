"""The event log: readable per request, plan and user; no way to edit it."""

from __future__ import annotations

import inspect

import pytest
from sqlalchemy import Connection

from dispatch.auth import Principal, Role
from dispatch.citypack import load_city_pack
from dispatch.errors import AccessDeniedError
from dispatch.model import Channel
from dispatch.services import audit
from dispatch.services import requests as rs
from dispatch.store import UnitOfWork
from dispatch.store.uow import EventLog

pytestmark = pytest.mark.db
ANA = Principal("ana", Role.SUPERVISOR)
BOB = Principal("bob", Role.SUPERVISOR)


def test_log_per_request_and_per_user(db: Connection) -> None:
    la = load_city_pack("los_angeles")
    form = rs.IntakeForm(category="graffiti_removal", address="200 N SPRING ST",
                         lon=-118.2427, lat=34.0537, channel=Channel.PHONE)
    with UnitOfWork(db, actor=ANA) as uow:
        pk = rs.create_request(uow, la, form)
        external = uow.requests.get(pk).external_id  # type: ignore[union-attr]
    with UnitOfWork(db, actor=BOB) as uow:
        rs.set_priority(uow, [pk], 2)
        other = rs.create_request(uow, la, form)  # an entry the id must leave out
    with UnitOfWork(db, actor=ANA) as uow:
        by_request = audit.event_log(uow, entity_type="request", entity_key=external)
        assert list(by_request["action"]) == ["priority_set", "created"]
        assert list(by_request["actor"]) == ["supervisor:bob", "supervisor:ana"]
        # an id alone, with no entity chosen, finds the same (issue 13's walk: ignored)
        by_id = audit.event_log(uow, entity_key=external)
        assert list(by_id["action"]) == ["priority_set", "created"]
        assert set(by_id["entity_type"]) == {"request"}
        by_number = audit.event_log(uow, entity_key=str(pk))
        assert set(by_number["entity_id"]) == {str(pk)}
        by_bob = audit.event_log(uow, actor="supervisor:bob")
        assert set(by_bob["action"]) == {"priority_set", "created"}
        assert str(other) in set(by_bob["entity_id"])
        assert "supervisor:bob" in audit.actors(uow)


def test_crews_and_managers_cannot_read_the_log(db: Connection) -> None:
    for who in (Principal("joe", Role.CREW, "NC-bulky-1"), Principal("mia", Role.MANAGER)):
        with UnitOfWork(db, actor=who) as uow, pytest.raises(AccessDeniedError):
            audit.event_log(uow)


def test_the_services_offer_no_way_to_change_the_log() -> None:
    methods = {name for name, _ in inspect.getmembers(EventLog, inspect.isfunction)}
    assert methods == {"__init__", "append", "append_many", "for_entity", "last_for_entity",
                       "last_id",
                       "search", "actors", "recent", "count"}
    assert not [name for name in dir(audit) if name.startswith(("update", "delete", "edit"))]


def test_a_window_of_a_replayed_day_leaves_out_what_was_stamped_after_it(
        db: Connection) -> None:
    """Issue 13's walk: the demo's import (stamped at the real date) filled the top of
    "the last 7 days" of a replayed 2020 morning, above everything done in it."""
    from datetime import UTC, datetime

    from dispatch.services.clock import set_clock

    la = load_city_pack("los_angeles")
    form = rs.IntakeForm(category="graffiti_removal", address="200 N SPRING ST",
                         lon=-118.2427, lat=34.0537, channel=Channel.PHONE)
    with UnitOfWork(db, actor="cli:import") as uow:
        uow.events.append("import", "demo.csv", "file_imported", {})
        uow.commit()
    with UnitOfWork(db, actor=Principal("root", Role.ADMIN)) as uow:
        set_clock(uow, datetime(2020, 1, 3, 15, 0, tzinfo=UTC))
    with UnitOfWork(db, actor=ANA) as uow:
        rs.create_request(uow, la, form)
    with UnitOfWork(db, actor=ANA) as uow:
        week = audit.event_log(uow, days=7)
        assert "created" in set(week["action"])
        assert "file_imported" not in set(week["action"])
        assert "file_imported" in set(audit.event_log(uow)["action"])  # all time: there
