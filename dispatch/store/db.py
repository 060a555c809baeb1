"""Engines, URLs and migrations of the Curbside store.

The embedded default is a SQLite file under ``var/`` (git-ignored); ``DATABASE_URL``
selects PostgreSQL. The same Alembic migrations serve both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.pool import NullPool

from dispatch.errors import ValidationError

#: Folder of the embedded database, relative to the working directory.
DEFAULT_VAR_DIR = Path("var")
DEFAULT_SQLITE_NAME = "curbside.db"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def default_url() -> str:
    """Return ``DATABASE_URL`` if set, else the embedded SQLite file under ``var/``."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    return f"sqlite:///{DEFAULT_VAR_DIR / DEFAULT_SQLITE_NAME}"


def normalise_url(url: str) -> str:
    """Map ``postgres://``/``postgresql://`` URLs to the psycopg 3 driver.

    Parameters
    ----------
    url
        A database URL as users write it.

    Returns
    -------
    str
        The URL SQLAlchemy should use.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if not (url.startswith("sqlite") or url.startswith("postgresql+")):
        raise ValidationError(
            f"database URL {url.split(':', 1)[0]!r}:... is not supported; "
            "expected sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the pysqlite driver, emit BEGIN, so that SAVEPOINTs work
    # (SQLAlchemy's documented pysqlite workaround).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


#: How long a SQLite writer waits for the one before it (an import of 10,000 rows holds
#: the lock for a few seconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_begin(connection: Any) -> None:
    # Write transactions take the write lock up front (BEGIN IMMEDIATE): in WAL mode a
    # deferred transaction that reads and then writes fails at once ("database is
    # locked") if another write committed in between; an immediate one waits its turn.
    if connection.get_execution_options().get("curbside_write"):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


def make_engine(url: str | None = None) -> Engine:
    """Create an engine for ``url`` (default :func:`default_url`).

    SQLite files get their folder created, foreign keys on and WAL journaling so
    that several app processes can share the file.
    """
    url = normalise_url(url or default_url())
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, poolclass=NullPool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Config:
    """Return an Alembic config bound to ``engine`` and the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


#: Key of the PostgreSQL advisory lock held while migrating and initialising.
INIT_LOCK_KEY = 7_326_019_411


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration.

    Safe to run from several processes at once: on PostgreSQL the migration runs under
    an advisory lock (the second ``dispatch init`` waits, then finds nothing to do);
    on SQLite it runs in one immediate (write-locked) transaction.
    """
    if engine.dialect.name == "sqlite":
        connection_cm = engine.connect().execution_options(curbside_write=True)
    else:
        connection_cm = engine.connect()
    from dispatch.store.uow import translate_error

    try:
        _upgrade(engine, connection_cm)
    except Exception as err:
        friendly = translate_error(err)
        if friendly is not None:
            raise friendly from err
        raise


def _upgrade(engine: Engine, connection_cm: Any) -> None:
    with connection_cm as connection, connection.begin():
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({INIT_LOCK_KEY})")
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    from dispatch.store.spatial import forget

    forget(engine)  # the schema may have gained PostGIS columns


def is_initialised(engine: Engine) -> bool:
    """Return whether the schema exists (the ``requests`` table is there).

    Raises
    ------
    StoreUnavailableError
        When the database cannot be reached at all.
    """
    from dispatch.store.uow import translate_error

    try:
        return inspect(engine).has_table("requests")
    except Exception as err:
        friendly = translate_error(err)
        if friendly is not None:
            raise friendly from err
        raise
