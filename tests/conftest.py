"""Shared fixtures: databases (SQLite always, PostgreSQL when DATABASE_URL is set)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from dispatch.store import make_engine, migrate
from dispatch.store.models import Base

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def _postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "").strip()
    return url if url.startswith(("postgres://", "postgresql")) else None


def _backends() -> list[str]:
    backends = ["sqlite"]
    if _postgres_url() or os.environ.get("CURBSIDE_REQUIRE_POSTGRES"):
        backends.append("postgresql")
    return backends


def _browser_available() -> bool:
    return Path("/usr/bin/chromium").exists() or bool(os.environ.get("CURBSIDE_REQUIRE_BROWSER"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out tests whose server is missing here: PostgreSQL-only tests without a
    PostgreSQL, browser tests without Chromium. CI has both, so there they always run."""
    drop = set()
    if "postgresql" not in _backends():
        drop.add("postgres_only")
    if not _browser_available():
        drop.add("browser")
    if not drop:
        return
    dropped = [i for i in items if any(i.get_closest_marker(m) for m in drop)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path = tmp_path_factory.mktemp("db") / "test.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    return engine


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    url = _postgres_url()
    if url is None:
        pytest.fail("CURBSIDE_REQUIRE_POSTGRES is set but DATABASE_URL is not a PostgreSQL URL")
    engine = make_engine(url)
    with engine.begin() as conn:  # a clean schema for this run
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session", params=_backends())
def engine(request: pytest.FixtureRequest) -> Engine:
    """A migrated engine per backend: SQLite, and PostgreSQL when configured."""
    name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    return request.getfixturevalue(name)


@pytest.fixture
def db(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test.

    Units of work built on it commit to a SAVEPOINT, so the services behave as in
    production while the test leaves nothing behind.
    """
    connection = engine.connect()
    transaction = connection.begin()
    try:
        yield connection
    finally:
        transaction.rollback()
        connection.close()


__all__ = ["DATA", "ROOT", "Base"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Debian Chromium (Playwright) for every browser test of the run."""
    from tests.e2e_helpers import chromium

    with chromium() as b:
        yield b
