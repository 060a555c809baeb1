"""The store: migrations, timestamps, the event log, optimistic locking, rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from dispatch.errors import DispatchError
from dispatch.store import UnitOfWork, make_engine
from dispatch.store.db import alembic_config, normalise_url
from dispatch.store.models import RequestRow

pytestmark = pytest.mark.db

T0 = datetime(2020, 1, 3, 15, 0, tzinfo=UTC)


def _request(**kw: object) -> dict[str, object]:
    values: dict[str, object] = {
        "source": "test", "external_id": "r1", "service_code": "Bulky Items",
        "category": "bulky_items", "requested_at": T0, "status": "new", "channel": "phone",
    }
    values.update(kw)
    return values


def test_migrations_match_models(engine: Engine) -> None:
    """`alembic check`: the migrations produce exactly the models' schema."""
    with engine.connect() as connection:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = connection
        command.check(cfg)


def test_timestamps_come_back_aware_utc(db: Connection) -> None:
    local = datetime(2020, 1, 3, 7, 0, tzinfo=timezone(timedelta(hours=-8)))
    with UnitOfWork(db) as uow:
        uow.requests.insert_many([_request(requested_at=local)])
        uow.commit()
    with UnitOfWork(db) as uow:
        row = uow.requests.query()[0]
        assert row.requested_at == local
        assert row.requested_at.tzinfo is not None
        assert row.requested_at.utcoffset() == timedelta(0)
        assert row.requested_at.hour == 15


def test_naive_timestamps_are_refused(db: Connection) -> None:
    with UnitOfWork(db) as uow, pytest.raises(StatementError, match="naive"):
        uow.requests.insert_many([_request(requested_at=datetime(2020, 1, 3, 7, 0))])


def test_unit_of_work_discards_what_is_not_committed(db: Connection) -> None:
    with pytest.raises(RuntimeError), UnitOfWork(db) as uow:
        uow.requests.insert_many([_request()])
        raise RuntimeError("crash mid-way")
    with UnitOfWork(db) as uow:
        assert uow.requests.count() == 0


def test_source_and_external_id_are_unique(db: Connection) -> None:
    with UnitOfWork(db) as uow:
        uow.requests.insert_many([_request()])
        with pytest.raises(DBAPIError):
            uow.requests.insert_many([_request()])


def test_event_log_is_append_only_in_the_database(db: Connection) -> None:
    with UnitOfWork(db, actor="supervisor:ana") as uow:
        uow.events.append("request", 1, "triaged", {"from": "new"})
        uow.commit()
        assert [e.actor for e in uow.events.for_entity("request", 1)] == ["supervisor:ana"]
    with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
        db.execute(text("UPDATE events SET actor = 'someone else'"))
    with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
        db.execute(text("DELETE FROM events"))


def test_version_column_detects_a_concurrent_change(db: Connection) -> None:
    with UnitOfWork(db) as uow:
        uow.requests.insert_many([_request()])
        uow.commit()
    first = Session(bind=db, join_transaction_mode="create_savepoint")
    second = Session(bind=db, join_transaction_mode="create_savepoint")
    mine = first.scalars(select(RequestRow)).one()
    theirs = second.scalars(select(RequestRow)).one()
    theirs.priority = 5
    second.commit()
    mine.priority = 1
    with pytest.raises(StaleDataError):
        first.commit()
    first.close()
    second.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_normalise_url(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


def test_unsupported_url_is_named() -> None:
    with pytest.raises(DispatchError, match="mysql"):
        make_engine("mysql://u@h/db")


def test_an_unreachable_database_is_one_sentence() -> None:
    from dispatch.cli import main
    from dispatch.errors import StoreUnavailableError
    from dispatch.store import is_initialised, make_engine

    engine = make_engine("postgresql://nobody@127.0.0.1:1/nowhere")
    with pytest.raises(StoreUnavailableError, match="cannot be reached"):
        is_initialised(engine)
    assert main(["--db", "postgresql://nobody@127.0.0.1:1/nowhere", "users", "list"]) == 2


def test_a_column_read_names_what_it_reads(db: Connection) -> None:
    with UnitOfWork(db) as uow:
        uow.requests.insert_many([_request(external_id="r1", address="1 MAIN ST"),
                                  _request(external_id="r2", address="2 MAIN ST")])
        default = uow.requests.query_columns()
        named = uow.requests.query_columns(columns=("external_id", "address"))
        assert [tuple(r) for r in named] == [("r1", "1 MAIN ST"), ("r2", "2 MAIN ST")]
        assert {"caller_phone", "extra"}.isdisjoint(default[0]._fields)
        assert {"overrides", "requested_at"} <= set(default[0]._fields)
        with pytest.raises(ValueError, match=r"no request column \['adress'\]"):
            uow.requests.query_columns(columns=("adress",))
