"""PostGIS does the spatial work on PostgreSQL, with the Python path's answers.

CI installs Debian's ``postgresql-NN-postgis-3``; a PostgreSQL run without it fails here
rather than silently testing only the fallback. On SQLite the fallback is what runs
(every other test covers it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import Connection, Engine, text

from dispatch.citypack import CityPack, load_city_pack
from dispatch.services._spatial import assign_districts, prepare_shapes, shape_layer
from dispatch.services.requests import nearby_open
from dispatch.store import RequestFilter, UnitOfWork
from dispatch.store.models import RequestRow

pytestmark = pytest.mark.postgres_only


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


@pytest.fixture
def pg(postgres_engine: Engine) -> Connection:
    connection = postgres_engine.connect()
    transaction = connection.begin()
    try:
        yield connection  # type: ignore[misc]
    finally:
        transaction.rollback()
        connection.close()


def _points(la: CityPack) -> tuple[np.ndarray, np.ndarray]:
    """The 2020 demo requests, plus points on edges, just outside and in gaps."""
    demo = pd.read_csv(la.paths.demo_requests, usecols=["latitude", "longitude"])
    # the file is (lat, lon): to lon, lat
    lon = demo["longitude"].to_numpy(dtype=float)
    lat = demo["latitude"].to_numpy(dtype=float)
    index = la.district_index
    assert index is not None
    extra_lon, extra_lat = [], []
    rng = np.random.default_rng(5)
    for _, _, wkb in index.shapes():
        ring = shapely.get_exterior_ring(shapely.get_geometry(shapely.from_wkb(wkb), 0))
        coords = shapely.get_coordinates(ring)
        for k in rng.choice(len(coords), size=8, replace=False):
            x, y = coords[k]
            # on the edge, and 20 m, 45 m, 60 m and 2 km off it (roughly, in degrees)
            for dx in (0.0, 0.0002, 0.00045, 0.0006, 0.02):
                extra_lon.append(x + dx)
                extra_lat.append(y)
    return (np.concatenate([lon, extra_lon, [np.nan, -74.0]]),
            np.concatenate([lat, extra_lat, [34.0, 40.7]]))


def test_the_store_has_postgis(pg: Connection) -> None:
    with UnitOfWork(pg) as uow:
        assert uow.spatial.available, (
            "PostgreSQL without PostGIS: install postgresql-NN-postgis-3 (CI does)")
        assert pg.execute(text("SELECT count(*) FROM pg_indexes WHERE indexname = "
                               "'ix_requests_geom'")).scalar() == 1


def test_postgis_assigns_the_districts_python_assigns(pg: Connection, la: CityPack) -> None:
    lon, lat = _points(la)
    with UnitOfWork(pg) as uow:
        assert prepare_shapes(uow, la)
    with UnitOfWork(pg) as uow:
        in_db = assign_districts(uow, la, lon, lat)
    here = la.assign_districts(lon, lat)
    differ = [(float(x), float(y), a, b) for x, y, a, b in zip(lon, lat, in_db, here,
                                                              strict=True) if a != b]
    assert not differ, differ[:10]
    # the sample reaches every branch of the rule: inside, snapped, outside
    assert None in set(here) and len({d for d in here if d is not None}) == 15


def test_shapes_load_once_and_again_when_the_pack_changes(pg: Connection,
                                                          la: CityPack) -> None:
    layer = shape_layer(la)
    assert layer is not None
    with UnitOfWork(pg) as uow:
        prepare_shapes(uow, la)
        prepare_shapes(uow, la)
    count = pg.execute(text("SELECT count(*) FROM district_shapes WHERE city = :c"),
                       {"c": la.name}).scalar()
    assert count == len(layer.districts) == 15
    pg.execute(text("UPDATE city_limits SET digest = 'old' WHERE city = :c"), {"c": la.name})
    with UnitOfWork(pg) as uow:
        prepare_shapes(uow, la)
    assert pg.execute(text("SELECT digest FROM city_limits WHERE city = :c"),
                      {"c": la.name}).scalar() == layer.digest


def test_boxes_use_the_gist_index_and_agree_with_lon_lat(pg: Connection,
                                                         la: CityPack) -> None:
    from dispatch.services.imports import import_requests
    from tests.conftest import DATA

    with UnitOfWork(pg) as uow:
        import_requests(uow, DATA / "reports" / "la_2020_02_month.csv", la)
    box = (-118.6, 33.7, -118.1, 34.4)
    with UnitOfWork(pg) as uow:
        got = set(uow.stats.frame(RequestFilter(bbox=box), ["id"])["id"])
        rows = uow.session.query(RequestRow).all()
        expected = {r.id for r in rows if r.lon is not None and box[0] <= r.lon <= box[2]
                    and box[1] <= r.lat <= box[3]}
        assert got == expected and got
        first = next(r for r in rows if r.lon is not None and r.status == "new")
        near = nearby_open(uow, first.category, first.lon, first.lat, radius_m=30.0)
        assert first.id in {n.pk for n in near}
    plan = "\n".join(r[0] for r in pg.execute(text(
        "EXPLAIN SELECT id FROM requests WHERE geom && "
        "ST_MakeEnvelope(-118.6, 33.7, -118.1, 34.4, 4326)")))
    pg.execute(text("SET LOCAL enable_seqscan = off"))
    forced = "\n".join(r[0] for r in pg.execute(text(
        "EXPLAIN SELECT id FROM requests WHERE geom && "
        "ST_MakeEnvelope(-118.6, 33.7, -118.1, 34.4, 4326)")))
    assert "ix_requests_geom" in forced, (plan, forced)


def test_postgresql_without_postgis_keeps_the_python_path(
    monkeypatch: pytest.MonkeyPatch, la: CityPack
) -> None:
    """``CURBSIDE_POSTGIS=off`` (or a server without the extension): same answers."""
    import os
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from dispatch.services.imports import import_requests
    from dispatch.store import make_engine, migrate
    from dispatch.store.db import normalise_url
    from tests.conftest import DATA

    server = make_url(normalise_url(os.environ["DATABASE_URL"]))
    name = f"curbside_nogis_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        monkeypatch.setenv("CURBSIDE_POSTGIS", "off")
        engine = make_engine(server.set(database=name).render_as_string(hide_password=False))
        migrate(engine)
        with UnitOfWork(engine) as uow:
            assert not uow.spatial.available
            assert not prepare_shapes(uow, la)
            import_requests(uow, DATA / "reports" / "la_2020_02_month.csv", la)
        with UnitOfWork(engine) as uow:
            frame = uow.stats.frame(RequestFilter(bbox=(-118.6, 33.7, -118.1, 34.4)),
                                    ["id", "lon", "lat", "district"])
            assert len(frame) and frame["district"].notna().all()
            expected = la.assign_districts(frame["lon"].to_numpy(), frame["lat"].to_numpy())
            assert list(frame["district"]) == list(expected)
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
