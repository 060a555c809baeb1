"""Two supervisors at once: nothing silently overwritten, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import threading
import time

import pytest
from sqlalchemy import Connection, Engine, delete

from dispatch.auth import Principal, Role
from dispatch.citypack import load_city_pack
from dispatch.errors import ConcurrentEditError
from dispatch.model import Channel
from dispatch.services import requests as rs
from dispatch.store import UnitOfWork
from dispatch.store.models import RequestRow

pytestmark = pytest.mark.db
ANA = Principal("ana", Role.SUPERVISOR)
BOB = Principal("bob", Role.SUPERVISOR)
FORM = rs.IntakeForm(category="graffiti_removal", address="200 N SPRING ST", lon=-118.2427,
                     lat=34.0537, channel=Channel.PHONE)


def test_second_supervisor_is_told_who_changed_it(db: Connection) -> None:
    la = load_city_pack("los_angeles")
    with UnitOfWork(db, actor=ANA) as uow:
        pk = rs.create_request(uow, la, FORM)
    # both open the triage page and see version 1
    with UnitOfWork(db, actor=ANA) as uow:
        seen = uow.requests.get(pk).version  # type: ignore[union-attr]
    with UnitOfWork(db, actor=BOB) as uow:
        rs.set_priority(uow, [pk], 2, expected={pk: seen})
    with (
        UnitOfWork(db, actor=ANA) as uow,
        pytest.raises(ConcurrentEditError, match=r"changed by supervisor:bob at .* UTC"),
    ):
        rs.cancel(uow, [pk], "not needed", expected={pk: seen})
    with UnitOfWork(db) as uow:
        row = uow.requests.get(pk)
        assert row is not None and (row.status, row.priority) == ("new", 2)


@pytest.mark.postgres_only
def test_many_writers_lose_no_update(postgres_engine: Engine) -> None:
    """Eight writers race on one request for a bounded time; every win is counted once.

    PostgreSQL only: SQLite has a single writer, so there is no race to lose there.
    """
    engine = postgres_engine
    la = load_city_pack("los_angeles")
    with UnitOfWork(engine, actor=ANA) as uow:
        pk = rs.create_request(uow, la, FORM)
    wins: list[int] = []
    conflicts: list[int] = []
    errors: list[BaseException] = []
    deadline = time.monotonic() + float(os.environ.get("CURBSIDE_STRESS_SECONDS", "4"))
    lock = threading.Lock()

    def writer(n: int) -> None:
        who = Principal(f"sup{n}", Role.SUPERVISOR)
        i = 0
        while time.monotonic() < deadline and i < 500:
            i += 1
            try:
                with UnitOfWork(engine, actor=who) as uow:
                    row = uow.requests.get(pk)
                    assert row is not None
                    target = (row.priority + 1) % 3
                    rs.set_priority(uow, [pk], target, expected={pk: row.version})
                with lock:
                    wins.append(n)
            except ConcurrentEditError:
                with lock:
                    conflicts.append(n)
            except BaseException as err:
                errors.append(err)
                return

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors, errors[:3]
        assert wins, "no writer ever succeeded"
        print(f"{len(wins)} writes won, {len(conflicts)} refused as concurrent")
        assert conflicts, "the writers never collided: the test did not race"
        with UnitOfWork(engine) as uow:
            row = uow.requests.get(pk)
            changes = [e for e in uow.events.for_entity("request", pk)
                       if e.action == "priority_set"]
            assert row is not None
            # every successful write bumped the version once and left one event
            assert len(changes) == len(wins)
            assert row.version == 1 + len(wins)
    finally:
        with engine.begin() as conn:
            conn.execute(delete(RequestRow).where(RequestRow.id == pk))
            # the event log is append-only: its rows stay, naming the test's writers
