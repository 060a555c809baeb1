"""RFC 7946 on every GeoJSON the product writes or ships, checked with geojson and shapely.

The rules: no ``crs`` member anywhere; positions ``[lon, lat]`` in range; outer rings
counter-clockwise and holes clockwise; a LineString of at least two distinct positions
(a crew with no stops has no path: its feature's geometry is ``null``); geometries valid.

Cases of the Open311/packaging issue (fail on 3559f86): the shipped boundaries and the
layers written by ``dispatch districts load`` carried ``crs`` and clockwise rings (15 of
15 districts); the plan's GeoJSON had 52 depot-to-depot LineStrings for crews with no
stops.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geojson
import geopandas as gpd
import pytest
import shapely
from shapely.geometry import Polygon, shape
from sqlalchemy import Connection
from test_planning_helpers import DAY, DEPOTS, ITS, TZ, roster, stops

from dispatch.citypack import CityPack, load_city_pack
from dispatch.planning import Plan, plan_day
from dispatch.services.exports import export_requests
from dispatch.services.imports import import_requests
from dispatch.services.planning import plan_map_geojson
from dispatch.services.routesheets import crew_route_geojson
from dispatch.store import UnitOfWork
from geo.boundaries import save_district_layer

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "data").rglob("*.geojson"))


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def _geometries(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if doc["type"] == "FeatureCollection":
        for feature in doc["features"]:
            if feature["geometry"] is not None:
                yield feature["geometry"]
    elif doc["type"] == "Feature":
        if doc["geometry"] is not None:
            yield doc["geometry"]
    else:
        yield doc


def rfc7946_problems(doc: dict[str, Any]) -> list[str]:
    """Return what in ``doc`` breaks RFC 7946 (empty when nothing does)."""
    problems = []
    parsed = geojson.loads(json.dumps(doc))
    if not parsed.is_valid:
        problems.append(f"geojson: {parsed.errors()}")
    if any("crs" in obj for obj in _objects(doc)):
        problems.append("a crs member")
    for geometry in _geometries(doc):
        geom = shape(geometry)
        xy = shapely.get_coordinates(geom)
        if len(xy) and not ((abs(xy[:, 0]) <= 180).all() and (abs(xy[:, 1]) <= 90).all()):
            problems.append(f"{geometry['type']} has a position out of lon/lat range")
        for part in getattr(geom, "geoms", [geom]):
            if isinstance(part, Polygon):
                if not part.exterior.is_ccw:
                    problems.append("an outer ring is clockwise")
                if any(ring.is_ccw for ring in part.interiors):
                    problems.append("a hole is counter-clockwise")
            if part.geom_type == "LineString" and part.length == 0:
                problems.append("a LineString with fewer than two distinct positions")
        if not geom.is_valid:
            problems.append(f"{geometry['type']}: {shapely.is_valid_reason(geom)}")
    return problems


def test_the_checker_catches_each_rule() -> None:
    cw = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}
    line = {"type": "LineString", "coordinates": [[1, 2], [1, 2]]}
    doc = {"type": "FeatureCollection", "crs": {"type": "name"}, "features": [
        {"type": "Feature", "properties": {}, "geometry": cw},
        {"type": "Feature", "properties": {}, "geometry": line},
        {"type": "Feature", "properties": {}, "geometry": None}]}
    assert rfc7946_problems(doc) == [
        "a crs member", "an outer ring is clockwise",
        "a LineString with fewer than two distinct positions",
        "LineString: Too few points in geometry component[1 2]"]
    assert rfc7946_problems({"type": "Point", "coordinates": [34.05, -118.25]}) == [
        "Point has a position out of lon/lat range"]  # (lat, lon) by mistake


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_geojson(path: Path) -> None:
    assert rfc7946_problems(json.loads(path.read_text(encoding="utf-8"))) == []


def test_district_layers_written_by_districts_load(tmp_path: Path) -> None:
    clockwise = Polygon([(-118.30, 34.00), (-118.30, 34.01), (-118.29, 34.01), (-118.29, 34.00)])
    assert not clockwise.exterior.is_ccw
    layer = gpd.GeoDataFrame({"district": ["1"], "name": ["One"]}, geometry=[clockwise],
                             crs=4326)
    doc = json.loads(save_district_layer(layer, tmp_path / "d.geojson").read_text())
    assert rfc7946_problems(doc) == []
    assert doc["features"][0]["properties"] == {"district": "1", "name": "One"}


@pytest.fixture(scope="module")
def plan_with_idle_crews() -> Plan:
    plan = plan_day(stops(3), roster(), DEPOTS, day=DAY, tz=TZ, iterations=ITS, max_workers=1,
                    city="test")
    assert any(not r.stops for r in plan.routes) and any(r.stops for r in plan.routes)
    return plan


def test_plan_geojson_has_no_path_for_a_crew_without_stops(plan_with_idle_crews: Plan) -> None:
    doc = plan_with_idle_crews.to_geojson()
    assert rfc7946_problems(doc) == []
    routes = {f["properties"]["crew"]: f for f in doc["features"]
              if f["properties"]["kind"] == "route"}
    for route in plan_with_idle_crews.routes:
        feature = routes[route.crew]
        assert (feature["geometry"] is None) == (not route.stops)
        assert feature["properties"]["stops"] == len(route.stops)


def test_route_sheet_and_plan_map_geojson(plan_with_idle_crews: Plan) -> None:
    for route in plan_with_idle_crews.routes:
        assert rfc7946_problems(crew_route_geojson(plan_with_idle_crews, route.crew)) == []
    assert rfc7946_problems(plan_map_geojson(plan_with_idle_crews, DEPOTS)) == []


def test_the_plan_map_names_each_stop_as_a_supervisor_reads_it(
        plan_with_idle_crews: Plan) -> None:
    """One feature per stop, numbered from 1, arriving at the local clock time."""
    doc = plan_map_geojson(plan_with_idle_crews, DEPOTS)
    stops = [f["properties"] for f in doc["features"] if f["properties"]["kind"] == "stop"]
    expected = [(r.crew, i, p.arrival.astimezone(plan_with_idle_crews.zone).strftime("%H:%M"))
                for r in plan_with_idle_crews.routes for i, p in enumerate(r.stops, start=1)]
    assert expected
    assert [(s["crew"], s["sequence"], s["arrival"]) for s in stops] == expected
    lines = [f for f in doc["features"] if f["properties"]["kind"] == "route"]
    assert len(lines) == sum(1 for r in plan_with_idle_crews.routes if r.stops)


@pytest.mark.db
def test_request_export(db: Connection, tmp_path: Path) -> None:
    la: CityPack = load_city_pack("los_angeles")
    with UnitOfWork(db) as uow:
        import_requests(uow, ROOT / "tests" / "data" / "import" / "myla311_2020_sample.csv", la)
        out = tmp_path / "requests.geojson"
        assert export_requests(uow, la, "geojson", out) > 0
    assert rfc7946_problems(json.loads(out.read_text())) == []
