"""PostGIS, where the PostgreSQL server offers it: request points and the city's shapes

Revision ID: 0008
Revises: 0007

On PostgreSQL with the PostGIS extension available (Debian: postgresql-NN-postgis-3):

* ``CREATE EXTENSION postgis`` (skipped quietly when the role may not create it and it
  is not there yet: the store then keeps the Python path);
* ``requests.geom``: a generated ``geometry(Point, 4326)`` from ``lon, lat`` with a GiST
  index, so box reads (the map, nearby duplicates) use the index;
* ``district_shapes`` and ``city_limits``: the city pack's districts and limit, loaded
  by the first district assignment (see :mod:`dispatch.store.spatial`).

SQLite and PostgreSQL without PostGIS: nothing changes. ``CURBSIDE_POSTGIS=off`` keeps a
PostGIS-enabled server on the Python path too.
"""

import os

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _wanted() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    if os.environ.get("CURBSIDE_POSTGIS", "").strip().lower() in {"off", "0", "no", "false"}:
        return False
    installed = bind.exec_driver_sql(
        "SELECT 1 FROM pg_extension WHERE extname = 'postgis'").first() is not None
    if installed:
        return True
    offered = bind.exec_driver_sql(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").first() is not None
    if not offered:
        return False
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    except Exception:  # no privilege to create it: stay on the Python path
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def upgrade() -> None:
    if not _wanted():
        return
    op.execute(
        "ALTER TABLE requests ADD COLUMN geom geometry(Point, 4326) GENERATED ALWAYS AS "
        "(CASE WHEN lon IS NULL OR lat IS NULL THEN NULL "
        "ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END) STORED")
    op.execute("CREATE INDEX ix_requests_geom ON requests USING gist (geom)")
    op.execute(
        "CREATE TABLE district_shapes (city varchar(64) NOT NULL, district varchar(32) NOT NULL, "
        "rank integer NOT NULL, srid_m integer NOT NULL, "
        "geom geometry(MultiPolygon, 4326) NOT NULL, geom_m geometry NOT NULL, "
        "PRIMARY KEY (city, district))")
    op.execute("CREATE INDEX ix_district_shapes_geom ON district_shapes USING gist (geom)")
    op.execute("CREATE INDEX ix_district_shapes_geom_m ON district_shapes USING gist (geom_m)")
    op.execute(
        "CREATE TABLE city_limits (city varchar(64) PRIMARY KEY, digest varchar(64) NOT NULL, "
        "srid_m integer NOT NULL, geom geometry)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP TABLE IF EXISTS city_limits")
    op.execute("DROP TABLE IF EXISTS district_shapes")
    op.execute("DROP INDEX IF EXISTS ix_requests_geom")
    op.execute("ALTER TABLE requests DROP COLUMN IF EXISTS geom")
