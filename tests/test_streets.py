"""Street lines for offline maps (issue 13): a zoomed-in map without tiles was all grey,
with no street to check a pin against."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dispatch.citypack import load_city_pack
from dispatch.services.streets import build_streets
from geo.errors import GeoError
from geo.maps import base_map
from geo.streets import StreetLine, address_lines, network_lines, streets_geojson

ROOT = Path(__file__).resolve().parents[1]


def _points(rows: list[tuple[int, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"number": n, "predir": "W", "name": name, "street_type": "ST",
                          "postdir": "", "zip": "90007", "lon": lon, "lat": lat,
                          "record": "point"} for n, name, lon, lat in rows])


def test_network_lines_draw_a_link_and_its_reverse_once() -> None:
    nodes = pd.DataFrame({"nid": [1, 2, 3], "lon": [-118.30, -118.29, -118.28],
                          "lat": [34.0, 34.0, 34.01]})
    links = pd.DataFrame({"from_nid": [1, 2, 2, 3, 9], "to_nid": [2, 1, 3, 9, 1],
                          "highway": ["primary", "primary", "secondary", "primary", "x"]})
    lines = network_lines(nodes, links)
    assert [(line.kind, line.coords) for line in lines] == [
        ("primary", ((-118.30, 34.0), (-118.29, 34.0))),
        ("secondary", ((-118.29, 34.0), (-118.28, 34.01))),
    ]


def test_both_sides_of_a_street_trace_its_middle() -> None:
    # odd numbers on the north side, even on the south, 20 m apart (0.00018 degree)
    rows = [(n, "37TH", -118.300 + n * 0.00001, 34.0 + (0.00009 if n % 2 else -0.00009))
            for n in range(1000, 1200, 4)] + [
            (n + 1, "37TH", -118.300 + (n + 1) * 0.00001, 34.00009)
            for n in range(1000, 1200, 4)]
    (line,) = address_lines(_points(rows))
    assert line.name == "W 37TH ST" and line.kind == "address"
    assert len(line.coords) == 4  # half blocks 1000-1049, 1050-1099, 1100-1149, 1150-1199
    assert all(abs(lat - 34.0) < 0.00003 for _, lat in line.coords)  # the middle
    lons = [lon for lon, _ in line.coords]
    assert lons == sorted(lons)  # in number order


@pytest.mark.parametrize(("gap_deg", "pieces"), [(0.001, 1), (0.01, 2)])
def test_a_gap_in_the_numbers_splits_the_line(gap_deg: float, pieces: int) -> None:
    near = [(n, "VERNON", -118.3 + n * 1e-6, 34.0) for n in (100, 160, 210, 260)]
    far = [(n, "VERNON", -118.3 + gap_deg + n * 1e-6, 34.0) for n in (900, 960)]
    assert len(address_lines(_points(near + far))) == pieces


def test_one_point_and_intersections_draw_nothing() -> None:
    frame = _points([(100, "A", -118.3, 34.0), (100, "B", -118.3, 34.0),
                     (160, "B", -118.29, 34.0)])
    frame.loc[2, "record"] = "intersection"
    assert address_lines(frame) == []


@pytest.mark.parametrize("gap", [0.0, -5.0, float("nan")])
def test_the_gap_must_be_positive(gap: float) -> None:
    with pytest.raises(GeoError, match="max_gap_m"):
        address_lines(_points([]), max_gap_m=gap)


def test_a_missing_column_is_named() -> None:
    with pytest.raises(GeoError, match=r"\['lat'\]"):
        network_lines(pd.DataFrame({"nid": [1], "lon": [0.0]}),
                      pd.DataFrame({"from_nid": [], "to_nid": []}))


def test_geojson_is_lon_lat_and_merges_unnamed_lines_by_kind() -> None:
    doc = streets_geojson([
        StreetLine("", "primary", ((-118.3, 34.0), (-118.29, 34.0))),
        StreetLine("", "primary", ((-118.29, 34.0), (-118.28, 34.0))),
        StreetLine("W 37TH ST", "address", ((-118.3123456, 34.0), (-118.3, 34.001))),
    ])
    kinds = [(f["geometry"]["type"], f["properties"]) for f in doc["features"]]
    assert kinds == [("LineString", {"kind": "address", "name": "W 37TH ST"}),
                     ("MultiLineString", {"kind": "primary"})]
    assert doc["features"][0]["geometry"]["coordinates"][0] == [-118.31235, 34.0]
    assert len(doc["features"][1]["geometry"]["coordinates"]) == 2


def test_the_shipped_street_file_is_what_build_streets_makes(tmp_path: Path) -> None:
    pack = load_city_pack("los_angeles")
    report = build_streets(pack, tmp_path / "la.json")
    assert any("road network: 20,079 links" in line for line in report)
    built = json.loads((tmp_path / "la.json").read_text())
    assert "OpenStreetMap contributors" in built["attribution"]
    assert "address reference" in built["attribution"]
    assert len(built["attribution"]) < 120  # it sits in the map's corner, on a phone too
    shipped = json.loads((ROOT / "static" / "streets" / "los_angeles.json").read_text())
    assert shipped == built, "rerun `dispatch geo build-streets --city los_angeles`"
    names = {f["properties"].get("name") for f in built["features"]}
    assert {"E VENICE BLVD", "WASHINGTON BLVD", "17TH AVE"} <= names


def test_a_map_loads_the_streets_only_when_asked() -> None:
    with_streets = base_map((-118.3, 34.0, -118.2, 34.1),
                            streets_url="/app/static/streets/x.json")
    html = with_streets.get_root().render()
    assert "/app/static/streets/x.json" in html and "tileerror" in html
    assert "tileerror" not in base_map((-118.3, 34.0, -118.2, 34.1)).get_root().render()


def test_every_page_map_can_fall_back_to_the_streets() -> None:
    """Each ``base_map`` or ``requests_map`` a page draws names the city's street lines
    (issue 13: the Requests map and Triage drew none)."""
    import ast

    calls = []
    for path in sorted((ROOT / "app_pages").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("base_map", "requests_map")):
                calls.append((path.name, node.func.id, {k.arg for k in node.keywords}))
    assert len(calls) >= 10
    assert {(name, f) for name, f, _ in calls} >= {("requests_map.py", "requests_map"),
                                                   ("triage.py", "requests_map")}
    assert [(name, f) for name, f, kw in calls if "streets_url" not in kw] == []
