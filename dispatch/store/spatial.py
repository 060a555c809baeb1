"""The database's own spatial work, where the store is PostgreSQL with PostGIS.

Migration 0008 installs PostGIS when the server offers it and gives ``requests`` a
generated ``geom`` point (EPSG:4326, from ``lon, lat``) with a GiST index, plus two
tables of the city pack's shapes: ``district_shapes`` (one row per district, in
EPSG:4326 and in the pack's local UTM zone) and ``city_limits``. Nothing of this is in
the ORM models: SQLite, and PostgreSQL without PostGIS, keep the Python path
(:mod:`geo.districts`, boxes on ``lon``/``lat``), which gives the same answers; the
tests hold the two to each other.

Used for

* district assignment of imported and taken requests (:meth:`Spatial.assign`), with the
  rule of :mod:`geo.districts` (lowest id on edges, snap within ``snap_m`` metres in
  the UTM zone, nearest district for gaps inside the city limit);
* bounding-box reads (the map, nearby duplicates): ``geom && envelope`` on the GiST
  index (:func:`bbox_clause`).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, literal_column, text
from sqlalchemy.orm import Session

#: What migration 0008 adds outside the ORM models (ignored by ``alembic check``).
SPATIAL_TABLES = frozenset({"district_shapes", "city_limits", "spatial_ref_sys"})
SPATIAL_COLUMNS = frozenset({("requests", "geom")})
SPATIAL_INDEXES = frozenset({"ix_requests_geom", "ix_district_shapes_geom",
                             "ix_district_shapes_geom_m"})

_known: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def forget(engine: Engine) -> None:
    """Forget what was found about ``engine`` (after a migration)."""
    _known.pop(engine, None)


def has_postgis(session: Session) -> bool:
    """Return whether the store is PostgreSQL with the PostGIS columns of migration 0008."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if engine.dialect.name != "postgresql":
        return False
    found = _known.get(engine)
    if found is None:
        found = session.execute(text(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'requests' AND column_name = 'geom'")).first() is not None
        _known[engine] = found
    return found


def bbox_clause(bbox: tuple[float, float, float, float]) -> Any:
    """Return ``geom && envelope(bbox)``: the GiST index's box test (``lon, lat`` degrees)."""
    west, south, east, north = (float(v) for v in bbox)
    return literal_column("requests.geom").op("&&")(text(
        f"ST_MakeEnvelope({west!r}, {south!r}, {east!r}, {north!r}, 4326)"))


@dataclass(frozen=True)
class ShapeLayer:
    """A city's district layer and limit, as the store keeps them for PostGIS.

    Attributes
    ----------
    digest
        Names this exact layer (ids, ranks, geometry and UTM zone); a changed pack is
        loaded again.
    utm_epsg
        The local UTM zone distances are measured in.
    districts
        ``(id, rank, WKB in EPSG:4326)``; rank 0 is the lowest id (wins on edges).
    boundary
        The city limit as WKB (EPSG:4326), or ``None``.
    """

    digest: str
    utm_epsg: int
    districts: Sequence[tuple[str, int, bytes]]
    boundary: bytes | None


class Spatial:
    """PostGIS work of one unit of work (``uow.spatial``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def available(self) -> bool:
        """Return whether this store does spatial work in the database."""
        return has_postgis(self.session)

    def ensure(self, city: str, layer: ShapeLayer) -> None:
        """Load ``layer`` as ``city``'s shapes unless the store already holds it.

        Runs inside the caller's transaction: one indexed look-up when the shapes are
        there; else they are loaded under an advisory lock (two instances loading the
        same pack do not collide), and are gone again if the caller rolls back.
        """
        query = text("SELECT digest FROM city_limits WHERE city = :c")
        if self.session.execute(query, {"c": city}).scalar() == layer.digest:
            return
        self.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('curbside:shapes'))"))
        stored = self.session.execute(query, {"c": city}).scalar()
        if stored != layer.digest:
            self.session.execute(text("DELETE FROM district_shapes WHERE city = :c"), {"c": city})
            self.session.execute(text("DELETE FROM city_limits WHERE city = :c"), {"c": city})
            for district, rank, wkb in layer.districts:
                self.session.execute(text(
                    "INSERT INTO district_shapes (city, district, rank, srid_m, geom, geom_m) "
                    "SELECT :c, :d, :r, :srid, g, ST_Transform(g, :srid) FROM "
                    "(SELECT ST_Multi(ST_SetSRID(ST_GeomFromWKB(:wkb), 4326)) AS g) AS s"),
                    {"c": city, "d": district, "r": rank, "srid": layer.utm_epsg, "wkb": wkb})
            self.session.execute(text(
                "INSERT INTO city_limits (city, digest, srid_m, geom) VALUES "
                "(:c, :digest, :srid, CASE WHEN CAST(:wkb AS bytea) IS NULL THEN NULL ELSE "
                "ST_SetSRID(ST_GeomFromWKB(CAST(:wkb AS bytea)), 4326) END)"),
                {"c": city, "digest": layer.digest, "srid": layer.utm_epsg,
                 "wkb": layer.boundary})

    def assign(self, city: str, lon: npt.ArrayLike, lat: npt.ArrayLike,
               snap_m: float) -> npt.NDArray[np.object_]:
        """Return the district id (or ``None``) of each point, computed by PostGIS.

        The rule of :mod:`geo.districts`: the lowest-ranked district the point lies in
        or on; else the nearest within ``snap_m`` metres (UTM); else, inside the city
        limit, the nearest one; else ``None``. Call :meth:`ensure` first.
        """
        x = np.asarray(lon, dtype=float).ravel()
        y = np.asarray(lat, dtype=float).ravel()
        out = np.full(x.size, None, dtype=object)
        ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if ok.size == 0:
            return out
        rows = self.session.execute(text(_ASSIGN_SQL), {
            "c": city, "snap": float(snap_m),
            "xs": [float(v) for v in x[ok]], "ys": [float(v) for v in y[ok]]})
        for i, district in rows:
            out[ok[int(i) - 1]] = district
        return out


# One statement for a batch of points: exact hit (lowest rank), else nearest within the
# snap distance, else nearest for points inside the city limit. ``&&`` and ST_DWithin
# use the GiST indexes; distances in the pack's UTM zone, as the Python path measures.
_ASSIGN_SQL = """
WITH p AS (
    SELECT t.i, ST_SetSRID(ST_MakePoint(t.x, t.y), 4326) AS g
    FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS t(x, y, i)
), hit AS (
    SELECT p.i, p.g, (SELECT d.district FROM district_shapes d
                       WHERE d.city = :c AND d.geom && p.g AND ST_Intersects(d.geom, p.g)
                       ORDER BY d.rank LIMIT 1) AS district
    FROM p
), missed AS (  -- only points in no district are projected to metres
    SELECT hit.i, hit.g, ST_Transform(hit.g, l.srid_m) AS gm, l.geom AS city
    FROM hit, city_limits l WHERE hit.district IS NULL AND l.city = :c
)
SELECT i, district FROM hit WHERE district IS NOT NULL
UNION ALL
SELECT m.i, COALESCE(
    (SELECT d.district FROM district_shapes d
      WHERE d.city = :c AND :snap > 0 AND ST_DWithin(d.geom_m, m.gm, :snap)
      ORDER BY ST_Distance(d.geom_m, m.gm), d.rank LIMIT 1),
    (SELECT d.district FROM district_shapes d
      WHERE d.city = :c AND m.city IS NOT NULL AND ST_Intersects(m.city, m.g)
      ORDER BY ST_Distance(d.geom_m, m.gm), d.rank LIMIT 1)
) AS district
FROM missed m
"""


__all__ = [
    "SPATIAL_COLUMNS",
    "SPATIAL_INDEXES",
    "SPATIAL_TABLES",
    "ShapeLayer",
    "Spatial",
    "bbox_clause",
    "forget",
    "has_postgis",
]
