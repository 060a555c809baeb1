"""Alembic environment of the Curbside store.

``dispatch init`` and the tests hand in a connection (``config.attributes["connection"]``)
or an engine (``config.attributes["engine"]``); the plain ``alembic`` command hands in
neither, and the environment then connects as the ``dispatch`` command does: to
``sqlalchemy.url`` of ``alembic.ini`` if set, else ``$DATABASE_URL``, else the embedded
SQLite file under ``var/``.
"""

import warnings

from alembic import context
from sqlalchemy import Connection

from dispatch.store.db import default_url, make_engine
from dispatch.store.models import Base
from dispatch.store.spatial import SPATIAL_COLUMNS, SPATIAL_INDEXES, SPATIAL_TABLES
from dispatch.store.types import UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_, obj, autogen_context):
    """Render Curbside's UTC timestamp type as the plain column type it stores."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_object(obj, name, type_, reflected, compare_to):
    """Leave PostGIS's own objects (migration 0008) out of ``alembic check``."""
    if type_ == "table" and name in SPATIAL_TABLES:
        return False
    if type_ == "column" and (obj.table.name, name) in SPATIAL_COLUMNS:
        return False
    return not (type_ == "index" and name in SPATIAL_INDEXES)


# PostGIS columns (migration 0008) are outside the models; reflection need not know them.
warnings.filterwarnings("ignore", message="Did not recognize type 'geometry'")


def _configure(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True, render_item=render_item,
                      include_object=include_object)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = config.attributes.get("engine")
    if engine is None:  # the plain `alembic` command
        engine = make_engine(config.get_main_option("sqlalchemy.url") or default_url())
    with engine.begin() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Curbside's migrations run online only (batch mode on SQLite); "
                     "run `alembic upgrade head` without --sql")
run_migrations_online()
