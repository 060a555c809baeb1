"""Tests for geo.maps: layer structure, escaping, payload size, routes, offline base map."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo import maps
from geo.errors import GeoError

DATA = Path(__file__).parent / "data" / "maps"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")

CATEGORIES = ("bulky_items", "graffiti", "illegal_dumping", "dead_animal")
COLOURS = {"graffiti": "#d62728", "bulky_items": "#1f77b4", "not_present": "#000000"}

# Strings a resident could type; every one contains a character html.escape changes,
# so its raw form must never appear in the page.
HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "</script><script>alert(document.cookie)</script>",
    "'); alert(1); //",
    "<!--<script>",
    '</ScRiPt ><iframe src="javascript:alert(1)">',
    # branca re-compiles rendered scripts as Jinja templates: these must stay text
    "{{ 'pwn' ~ 'ed' }}",
    "{% for x in range(3) %}ab{% endfor %}",
    "{# comment #}",
    "{% for %}",
]
# Strings that only break JavaScript (no HTML-special character): checked by running
# the page's script in node.
JS_HOSTILE = ["${alert(1)}`", "\u2028alert(1)\u2029", "\\u0022); alert(1); //", "`; alert(1); `"]


# --------------------------------------------------------------------------- fixtures


def synthetic_requests(n: int, seed: int = 0) -> pd.DataFrame:
    """N requests around downtown Los Angeles with resident-length text fields."""
    rng = np.random.default_rng(seed)
    streets = np.array(["W VANOWEN ST", "S WESTMORELAND AVE", "N FIGUEROA ST", "E 7TH ST"])
    return pd.DataFrame(
        {
            "request_id": [f"1-{1523590000 + i}" for i in range(n)],
            "category": rng.choice(np.array(CATEGORIES), n),
            "lon": rng.uniform(-118.66, -118.16, n),
            "lat": rng.uniform(33.71, 34.33, n),
            "address": [
                f"{int(h)} {s}, 9{int(z):04d}"
                for h, s, z in zip(
                    rng.integers(1, 20000, n),
                    rng.choice(streets, n),
                    rng.integers(0, 999, n),
                    strict=True,
                )
            ],
            "description": rng.choice(
                np.array(
                    [
                        "Couch and mattress on the sidewalk next to the bus stop",
                        "Tagging on the wall of the laundromat, about 3 m wide",
                        "Old fridge left in the alley behind the market",
                        "",
                    ]
                ),
                n,
            ),
        }
    )


def small_requests(**overrides: Any) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "request_id": ["R-1", "R-2", "R-3", "R-4", "R-5"],
            "category": ["bulky_items", "graffiti", "bulky_items", "dead_animal", "graffiti"],
            "lon": [-118.29, -118.28, -118.27, -118.26, np.nan],
            "lat": [34.06, 34.05, 34.04, 34.03, 34.02],
            "address": ["1 Main St", "2 Main St", "3 Main St", "4 Main St", "5 Main St"],
            "description": ["couch", "tag", "fridge", "raccoon", "tag"],
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


@pytest.fixture
def districts() -> gpd.GeoDataFrame:
    return gpd.read_file(DATA / "districts_small.geojson")


@pytest.fixture
def routes() -> dict[str, Any]:
    return json.loads((DATA / "routes_small.geojson").read_text(encoding="utf-8"))


def render(m: folium.Map) -> str:
    return m.get_root().render()


def run_page_script(page: str, tmp_path: Path) -> dict[str, Any]:
    """Run the inline scripts of a rendered page against the recording Leaflet stub."""
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    script = tmp_path / "page.js"
    script.write_text("\n;\n".join(scripts), encoding="utf-8")
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(DATA / "leaflet_stub.js"), str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def layer_control_names(page: str) -> list[str]:
    block = re.search(r"overlays\s*:\s*\{(.*?)\}", page, flags=re.S)
    assert block is not None
    return [json.loads(k) for k in re.findall(r'("(?:[^"\\]|\\.)*")\s*:', block.group(1))]


# --------------------------------------------------------------------------- requests layer


def test_one_feature_group_per_category_in_colour_order() -> None:
    groups = maps.requests_layer(small_requests(), COLOURS, ["address"])
    assert all(isinstance(g, folium.FeatureGroup) for g in groups)
    # configured colours first (in mapping order), then the rest sorted by name
    assert [g.layer_name for g in groups] == ["graffiti", "bulky_items", "dead_animal"]
    assert [g.count for g in groups] == [1, 2, 1]  # R-5 has no lon: left out
    assert groups[0].colour == "#d62728"
    assert groups[1].colour == "#1f77b4"
    assert groups[2].colour in maps.CREW_PALETTE


def test_each_group_holds_one_fast_cluster_that_is_not_in_the_layer_control() -> None:
    groups = maps.requests_layer(small_requests(), COLOURS, ["address"])
    for group in groups:
        children = [c for c in group._children.values() if isinstance(c, folium.map.Layer)]
        assert len(children) == 1
        assert isinstance(children[0], folium.plugins.FastMarkerCluster)
        assert children[0].control is False


def test_layer_control_lists_every_category(districts: gpd.GeoDataFrame) -> None:
    m = maps.requests_map(small_requests(), districts, COLOURS, ["address"])
    names = layer_control_names(render(m))
    assert {"graffiti", "bulky_items", "dead_animal", "Districts"} <= set(names)


@pytest.mark.parametrize("streets_url", [None, "/app/static/streets/x.json"])
def test_the_requests_map_has_one_layer_control_and_the_offline_streets(
    districts: gpd.GeoDataFrame, streets_url: str | None
) -> None:
    """Issue 13: the Requests map drew no offline streets and showed two layer controls."""
    page = render(maps.requests_map(small_requests(), districts, COLOURS, ["address"],
                                    streets_url=streets_url))
    assert page.count("L.control.layers(") == 1
    assert ("tileerror" in page) is (streets_url is not None)
    if streets_url is not None:
        assert streets_url in page


@needs_node
def test_points_get_their_category_colour_and_leaflet_lat_lon_order(tmp_path: Path) -> None:
    frame = synthetic_requests(300, seed=3)
    m = maps.base_map(center=(-118.3, 34.0), tiles=None)
    for group in maps.requests_layer(frame, COLOURS, ["address"]):
        group.add_to(m)
    rec = run_page_script(render(m), tmp_path)
    assert len(rec["circles"]) == len(frame) == len(rec["popups"])
    colours = maps.category_colours(frame["category"], COLOURS)
    by_id = frame.set_index("request_id")
    for (lat, lon, fill), popup in zip(rec["circles"], rec["popups"], strict=True):
        request_id = re.search(r"<code>(.*?)</code>", popup).group(1)  # type: ignore[union-attr]
        row = by_id.loc[request_id]
        assert fill == colours[str(row["category"])]
        assert f"<b>{row['category']}</b>" in popup
        assert lat == pytest.approx(row["lat"], abs=1e-5)
        assert lon == pytest.approx(row["lon"], abs=1e-5)


@needs_node
def test_missing_popup_values_are_left_out(tmp_path: Path) -> None:
    frame = small_requests(description=pd.array(["couch", None, "x", pd.NA, "y"], dtype="string"))
    m = maps.base_map(center=(-118.3, 34.0), tiles=None)
    for group in maps.requests_layer(frame, COLOURS, ["description"]):
        group.add_to(m)
    popups = run_page_script(render(m), tmp_path)["popups"]
    assert len(popups) == 4
    assert sum("<i>description</i>" in p for p in popups) == 2
    assert not any("nan" in p.lower() or "&lt;NA&gt;" in p for p in popups)


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(np.nan, 34.0), (-118.3, np.nan), (np.inf, 34.0), (-200.0, 34.0), (-118.3, 91.0)],
)
def test_rows_without_usable_coordinates_are_left_out(lon: float, lat: float) -> None:
    frame = small_requests().iloc[:2].copy()
    frame.loc[0, ["lon", "lat"]] = [lon, lat]
    groups = maps.requests_layer(frame, COLOURS)
    assert sum(g.count for g in groups) == 1


def test_string_coordinates_are_coerced() -> None:
    frame = small_requests().iloc[:2].astype({"lon": "string", "lat": "string"})
    assert sum(g.count for g in maps.requests_layer(frame, COLOURS)) == 2


@pytest.mark.parametrize("missing", ["request_id", "category", "lon", "lat", "address"])
def test_missing_columns_raise_and_name_the_column(missing: str) -> None:
    frame = small_requests().drop(columns=[missing])
    with pytest.raises(GeoError, match=missing):
        maps.requests_layer(frame, COLOURS, ["address"])


@pytest.mark.parametrize(
    "colour", ["red;background:url(x)", "#12", "#1234567", "</style>", "", "rgb(1,2,3)"]
)
def test_colours_that_are_not_plain_css_are_refused(colour: str) -> None:
    with pytest.raises(GeoError, match="not a CSS colour"):
        maps.requests_layer(small_requests(), {"graffiti": colour})


def test_empty_frame_gives_no_groups() -> None:
    assert maps.requests_layer(small_requests().iloc[:0], COLOURS) == []


# --------------------------------------------------------------------------- escaping


def hostile_map(where: str, text: str, routes: dict[str, Any]) -> folium.Map:
    frame = small_requests()
    districts = gpd.read_file(DATA / "districts_small.geojson")
    popup_fields = ["address", "description"]
    if where == "description":
        frame["description"] = text
    elif where == "address":
        frame.loc[1, "address"] = text
    elif where == "request_id":
        frame.loc[0, "request_id"] = text
    elif where == "category":
        frame.loc[0, "category"] = text
    elif where == "popup_field_name":
        frame[text] = "value"
        popup_fields.append(text)
    elif where == "district_name":
        districts.loc[0, "name"] = text
    elif where == "district_id":
        districts["district"] = districts["district"].astype(str)
        districts.loc[1, "district"] = text
    routes = json.loads(json.dumps(routes))
    if where == "crew":
        for feature in routes["features"]:
            if (feature.get("properties") or {}).get("crew") == "North-1":
                feature["properties"]["crew"] = text
    elif where == "reason":
        routes["features"][7]["properties"]["reasons"] = [text, "and more"]
    elif where == "depot_name":
        routes["features"][2]["properties"]["name"] = text
    return maps.requests_map(
        frame, districts, COLOURS, popup_fields, routes=routes, max_text_chars=None
    )


PLACES = [
    "description",
    "address",
    "request_id",
    "category",
    "popup_field_name",
    "district_name",
    "district_id",
    "crew",
    "reason",
    "depot_name",
]


@pytest.mark.parametrize("where", PLACES)
@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_never_appears_raw_in_the_page(
    where: str, text: str, routes: dict[str, Any]
) -> None:
    page = render(hostile_map(where, text, routes))  # "{% for %}" would raise here
    assert text not in page
    assert html.escape(text) not in page  # escaped HTML is itself JSON-escaped (\u0026lt;)
    assert "pwned" not in page and "ababab" not in page  # the Jinja was not evaluated
    # the only <script> elements are folium's own: one per CDN link plus the map script
    assert page.count("</script>") == page.count("<script")


@needs_node
@pytest.mark.parametrize("where", PLACES)
def test_hostile_text_reaches_leaflet_as_escaped_text(
    where: str, routes: dict[str, Any], tmp_path: Path
) -> None:
    # one page per place carrying every hostile string at once keeps node runs few
    text = " | ".join(HOSTILE + JS_HOSTILE)
    rec = run_page_script(render(hostile_map(where, text, routes)), tmp_path)
    assert rec["alerts"] == 0
    joined = "\n".join(rec["popups"] + rec["tooltips"] + rec["icons"] + rec["innerHTML"])
    for tag in ("<script", "<img", "<svg", "<iframe", "<!--", "</script"):
        assert tag not in joined.lower(), tag
    assert text in html.unescape(joined)  # shown, as text


# --------------------------------------------------------------------------- payload


def test_payload_of_10k_synthetic_requests_is_under_3_mb(districts: gpd.GeoDataFrame) -> None:
    frame = synthetic_requests(10_000)
    m = maps.requests_map(frame, districts, COLOURS, ["address", "description"])
    size = maps.map_payload_bytes(m)
    assert size <= 3_000_000
    # and it is the points, not per-point markup, that cost: under 200 bytes a point
    assert size / len(frame) < 200


def test_payload_grows_linearly_not_per_element(districts: gpd.GeoDataFrame) -> None:
    small = maps.map_payload_bytes(
        maps.requests_map(synthetic_requests(1_000), districts, COLOURS, ["address"])
    )
    large = maps.map_payload_bytes(
        maps.requests_map(synthetic_requests(4_000), districts, COLOURS, ["address"])
    )
    per_point = (large - small) / 3_000
    assert 20 < per_point < 120


def test_map_payload_bytes_is_the_utf8_length_of_the_page_and_leaves_the_map_alone() -> None:
    frame = small_requests(address=["Ñuñoa 1", "Straße 2", "東京 3", "4", "5"])
    m = maps.requests_map(frame, None, COLOURS, ["address"])
    first = maps.map_payload_bytes(m)
    assert maps.map_payload_bytes(m) == first
    assert first == len(render(m).encode("utf-8"))


# --------------------------------------------------------------------------- base map


@pytest.mark.parametrize(
    ("tiles", "attribution", "n_tiles"),
    [
        (None, None, 0),
        ("OpenStreetMap", None, 1),
        ("https://tiles.example.org/{z}/{x}/{y}.png", "© Example", 1),
    ],
)
@pytest.mark.parametrize("offline", [True, False])
def test_base_map_tiles_and_plain_background(
    tiles: str | None, attribution: str | None, n_tiles: int, offline: bool
) -> None:
    m = maps.base_map(
        (-118.67, 33.70, -118.15, 34.34),
        tiles=tiles,
        offline_background=offline,
        attribution=attribution,
    )
    children = list(m._children.values())
    assert sum(isinstance(c, folium.TileLayer) for c in children) == n_tiles
    plain = [c for c in children if isinstance(c, folium.FeatureGroup) and not c.overlay]
    assert len(plain) == (1 if offline and tiles is not None else 0)
    assert all(not p.show for p in plain)  # never drawn over the tiles on opening
    page = render(m)
    assert (maps.OFFLINE_BACKGROUND in page) is offline
    assert ("tile.openstreetmap.org" in page) is (tiles == "OpenStreetMap")


@needs_node
def test_offline_map_without_tiles_still_draws_everything(
    districts: gpd.GeoDataFrame, routes: dict[str, Any], tmp_path: Path
) -> None:
    m = maps.requests_map(
        small_requests(), districts, COLOURS, ["address"], routes=routes, tiles=None
    )
    page = render(m)
    assert "L.tileLayer" not in page
    rec = run_page_script(page, tmp_path)
    assert rec["calls"].get("tileLayer", 0) == 0
    assert rec["calls"]["getContainer"] == 1
    assert len(rec["circles"]) == 4
    assert rec["calls"]["geoJson"] == 1
    assert rec["calls"]["polyline"] == 2


def test_only_tile_urls_remain_with_local_assets(
    districts: gpd.GeoDataFrame, routes: dict[str, Any]
) -> None:
    map_assets = pytest.importorskip("geo.map_assets")
    m = maps.requests_map(small_requests(), districts, COLOURS, ["address"], routes=routes)
    page = render(map_assets.use_local_assets(m))
    hosts = set(re.findall(r"https?://([a-z0-9.\-]+)", page))
    assert hosts <= {"tile.openstreetmap.org", "www.openstreetmap.org"}
    page = render(
        map_assets.use_local_assets(maps.requests_map(small_requests(), None, COLOURS, tiles=None))
    )
    assert not re.findall(r"https?://", page)


def test_base_map_fits_bounds_in_leaflet_order() -> None:
    m = maps.base_map((-118.67, 33.70, -118.15, 34.34), tiles=None)
    page = render(m)
    fit = re.search(r"fitBounds\(\s*(\[\[.*?\]\])", page, flags=re.S)
    assert fit is not None
    assert json.loads(fit.group(1)) == [[33.70, -118.67], [34.34, -118.15]]


def test_base_map_pads_a_single_point() -> None:
    page = render(maps.base_map((-118.25, 34.05, -118.25, 34.05), tiles=None))
    fit = re.search(r"fitBounds\(\s*(\[\[.*?\]\])", page, flags=re.S)
    assert fit is not None
    (south, west), (north, east) = json.loads(fit.group(1))
    assert north - south == pytest.approx(0.01) and east - west == pytest.approx(0.01)
    assert (south + north) / 2 == pytest.approx(34.05)


def test_missing_categories_are_grouped_as_uncategorised() -> None:
    frame = small_requests(category=["graffiti", None, "", np.nan, "graffiti"])
    groups = maps.requests_layer(frame, COLOURS)
    assert {g.category: g.count for g in groups} == {"graffiti": 1, maps.UNCATEGORISED: 3}


def test_tile_name_and_attribution_stay_inert() -> None:
    m = maps.base_map(
        center=(-118.3, 34.0),
        tiles="https://t.example.org/{z}/{x}/{y}.png",
        attribution="{{ 'pwn' ~ 'ed' }} <a href='https://example.org'>Example</a>",
    )
    m.add_child(folium.LayerControl())
    page = render(m)
    assert "pwned" not in page
    assert "https://t.example.org/{z}/{x}/{y}.png" in page  # the URL template is intact


def test_base_map_from_center_is_lat_lon_for_leaflet() -> None:
    m = maps.base_map(center=(-118.25, 34.05), tiles=None)
    assert m.location == [34.05, -118.25]


@pytest.mark.parametrize(
    ("bounds", "center"),
    [
        (None, None),
        ((-118.1, 34.0, -118.2, 34.1), None),  # min_lon > max_lon
        ((-118.2, 34.0, -118.1, np.nan), None),
        (None, (np.inf, 34.0)),
    ],
)
def test_base_map_refuses_unusable_extent(
    bounds: tuple[float, ...] | None, center: tuple[float, float] | None
) -> None:
    with pytest.raises(GeoError):
        maps.base_map(bounds, center)


def test_requests_map_without_districts_fits_to_requests() -> None:
    m = maps.requests_map(small_requests(), None, COLOURS)
    fit = re.search(r"fitBounds\(\s*(\[\[.*?\]\])", render(m), flags=re.S)
    assert fit is not None
    assert json.loads(fit.group(1)) == [[34.03, -118.29], [34.06, -118.26]]


def test_requests_map_with_nothing_to_show_raises() -> None:
    frame = small_requests(lon=[np.nan] * 5)
    with pytest.raises(GeoError, match="nothing to fit"):
        maps.requests_map(frame, None, COLOURS)


# --------------------------------------------------------------------------- districts


def test_district_layer_labels_and_tooltips(districts: gpd.GeoDataFrame) -> None:
    layer = maps.district_layer(districts)
    assert isinstance(layer, folium.GeoJson)
    props = [f["properties"] for f in layer.data["features"]]
    assert [p["district"] for p in props] == ["1", "2", "3"]
    assert props[1]["tooltip"] == "<b>District 2</b><br>Hills &amp; Valleys"
    assert props[2]["tooltip"] == "<b>District 3</b><br>&lt;b&gt;Downtown&lt;/b&gt;"
    labels = [c for c in layer._children.values() if c._name == "DistrictLabels"]
    assert len(labels) == 1
    rows = json.loads(getattr(labels[0], "payload_json"))["labels"]  # noqa: B009
    assert [r[2] for r in rows] == ["1", "2", "3"]
    for (lat, lon, _), geom in zip(rows, districts.geometry, strict=True):
        # label points are inside their district, given in Leaflet (lat, lon) order
        assert geom.buffer(1e-4).contains(shapely.Point(lon, lat))


def test_district_layer_reprojects_to_wgs84(districts: gpd.GeoDataFrame) -> None:
    layer = maps.district_layer(districts.to_crs("EPSG:3857"))
    coords = np.array(layer.data["features"][0]["geometry"]["coordinates"][0])
    assert coords[:, 0].min() == pytest.approx(-118.30, abs=1e-4)
    assert coords[:, 1].max() == pytest.approx(34.05, abs=1e-4)


def test_district_layer_simplifies_dense_outlines() -> None:
    circle = shapely.Point(-118.3, 34.0).buffer(0.05, quad_segs=512)  # 2049 vertices
    frame = gpd.GeoDataFrame({"district": [7], "name": ["Round"]}, geometry=[circle], crs=4326)
    kept = maps.district_layer(frame, simplify_tolerance_m=0)
    simplified = maps.district_layer(frame, simplify_tolerance_m=15)
    n_kept = len(kept.data["features"][0]["geometry"]["coordinates"][0])
    n_simple = len(simplified.data["features"][0]["geometry"]["coordinates"][0])
    assert n_kept == 2049
    assert n_simple < n_kept / 4
    area = shapely.geometry.shape(simplified.data["features"][0]["geometry"]).area
    assert area == pytest.approx(circle.area, rel=0.01)


def test_district_layer_without_name_column_uses_the_id(districts: gpd.GeoDataFrame) -> None:
    layer = maps.district_layer(districts.drop(columns=["name"]))
    assert layer.data["features"][0]["properties"]["tooltip"] == "<b>District 1</b>"


def test_district_layer_names_districts_without_geometry(districts: gpd.GeoDataFrame) -> None:
    districts.loc[1, "geometry"] = None
    with pytest.raises(GeoError, match=r"\[2\].*'district'"):
        maps.district_layer(districts)


def test_district_layer_of_no_districts_renders(districts: gpd.GeoDataFrame) -> None:
    m = maps.base_map(center=(-118.3, 34.0), tiles=None)
    maps.district_layer(districts.iloc[:0]).add_to(m)
    assert "geo_json" in render(m)


def test_district_layer_names_the_missing_id_field(districts: gpd.GeoDataFrame) -> None:
    with pytest.raises(GeoError, match="'cd'"):
        maps.district_layer(districts, id_field="cd")


def test_real_council_districts_fit_in_a_small_payload() -> None:
    path = Path(__file__).parents[1] / "data/boundaries/los_angeles/council_districts.geojson"
    if not path.exists():
        pytest.skip("Los Angeles council districts are not in this checkout")
    frame = gpd.read_file(path)
    layer = maps.district_layer(frame)
    assert len(layer.data["features"]) == 15
    size = len(json.dumps(layer.data, separators=(",", ":")))
    unsimplified = maps.district_layer(frame, simplify_tolerance_m=0)
    assert size < 0.95 * len(json.dumps(unsimplified.data, separators=(",", ":")))
    assert size < 80_000


# --------------------------------------------------------------------------- routes


def test_route_layer_counts_and_tolerates_junk(routes: dict[str, Any]) -> None:
    group = maps.route_layer(routes)
    assert isinstance(group, folium.FeatureGroup)
    assert group.counts == {"lines": 2, "depots": 2, "stops": 3, "unplanned": 2}
    assert set(group.crew_colours) == {"North-1", "South-2"}
    assert len(set(group.crew_colours.values())) == 2


SHAPES = {
    # shape name -> number of drawn items expected from routes_small.geojson
    "collection": 9,
    "features": 9,
    "collections": 9,
    "single_feature": 1,
    "empty": 0,
    "untyped_features_and_nones": 2,
    "bare_geometry": 1,
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_route_layer_accepts_several_shapes(routes: dict[str, Any], shape: str) -> None:
    features = routes["features"]
    given_routes: Any = {
        "collection": routes,
        "features": features,
        "collections": [
            {"type": "FeatureCollection", "features": features[:4]},
            {"type": "FeatureCollection", "features": features[4:]},
        ],
        "single_feature": features[4],
        "empty": {"type": "FeatureCollection", "features": []},
        "untyped_features_and_nones": [
            *({k: v for k, v in f.items() if k != "type"} for f in features[:2]),
            None,
        ],
        "bare_geometry": features[0]["geometry"],
    }[shape]
    counts = maps.route_layer(given_routes).counts
    assert sum(counts.values()) == SHAPES[shape]


def test_route_layer_reads_plan_to_geojson_properties() -> None:
    # Plan.to_geojson writes kind: route/stop and seq; a planned stop may carry reason: None
    def point(props: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "Feature",
            "properties": props,
            "geometry": {"type": "Point", "coordinates": [-118.3, 34.0]},
        }

    line = {"type": "LineString", "coordinates": [[-118.3, 34.0], [-118.2, 34.1]]}
    group = maps.route_layer(
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": {"kind": "route", "crew": "A"}, "geometry": line},
                point({"kind": "stop", "crew": "A", "seq": 1, "reason": None}),
                point({"kind": "stop", "crew": "A", "seq": 2, "reason": "late but planned"}),
                point({"kind": "unplanned", "request_id": "R-9", "reason": "no crew time"}),
            ],
        }
    )
    assert group.counts == {"lines": 1, "depots": 0, "stops": 2, "unplanned": 1}
    script = next(c for c in group._children.values() if c._name == "Routes")
    stops = json.loads(getattr(script, "payload_json"))["stops"]  # noqa: B009
    assert [s[4] for s in stops] == ["1", "2"]


@pytest.mark.parametrize("bad", ['{"type": "FeatureCollection"}', {"type": "Polygon"}])
def test_route_layer_refuses_non_geojson(bad: Any) -> None:
    with pytest.raises(GeoError):
        maps.route_layer(bad)


@needs_node
def test_route_layer_draws_numbered_stops_depots_and_grey_crosses(
    routes: dict[str, Any], tmp_path: Path
) -> None:
    m = maps.base_map(center=(-118.3, 34.0), tiles=None)
    group = maps.route_layer(routes, {"South-2": "#000080"})
    group.add_to(m)
    rec = run_page_script(render(m), tmp_path)
    colours = group.crew_colours
    assert colours["South-2"] == "#000080"
    stops = [i for i in rec["icons"] if "border-radius:50%" in i]
    assert sorted(re.search(r">(\d+)</div>", s).group(1) for s in stops) == ["1", "1", "2"]  # type: ignore[union-attr]
    assert sum(colours["North-1"] in s for s in stops) == 2
    assert sum("#000080" in s for s in stops) == 1
    depots = [i for i in rec["icons"] if ">D</div>" in i]
    assert len(depots) == 2
    crosses = [i for i in rec["icons"] if "&#x2716;" in i]
    assert len(crosses) == 2 and all(maps.UNPLANNED_COLOUR in c for c in crosses)
    tips = "\n".join(rec["tooltips"])
    assert "outside every shift; no crew with a truck" in tips
    assert "capacity exceeded" in tips
    assert "Main St Yard" in tips and "SOUTH" in tips
    assert "arrival: 2024-03-04T15:10:00Z" in tips


def test_crew_colours_are_fixed_by_name() -> None:
    # pins determinism across processes (CRC-32, not Python's salted hash)
    assert maps.crew_colours(["North-1"]) == {
        "North-1": maps.CREW_PALETTE[__import__("zlib").crc32(b"North-1") % len(maps.CREW_PALETTE)]
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=16, unique=True))
def test_crew_colours_distinct_and_order_independent(names: list[str]) -> None:
    colours = maps.crew_colours(names)
    assert len(set(colours.values())) == len(names)
    assert maps.crew_colours(list(reversed(names))) == colours


def test_crew_colour_overrides_are_validated() -> None:
    with pytest.raises(GeoError, match="crew 'A'"):
        maps.crew_colours(["A"], {"A": "javascript:alert(1)"})


# --------------------------------------------------------------------------- legend


@needs_node
def test_legend_lists_categories_with_their_colours(
    districts: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    m = maps.requests_map(small_requests(), districts, COLOURS, ["address"])
    rec = run_page_script(render(m), tmp_path)
    (legend_html,) = rec["innerHTML"]
    for category in ("graffiti", "bulky_items", "dead_animal"):
        assert category in legend_html
    assert "background:#d62728" in legend_html
    assert "not_present" not in legend_html


@needs_node
def test_crews_legend_when_routes_are_shown(
    districts: gpd.GeoDataFrame, routes: dict[str, Any], tmp_path: Path
) -> None:
    m = maps.requests_map(small_requests(), districts, COLOURS, routes=routes)
    rec = run_page_script(render(m), tmp_path)
    categories, crews = rec["innerHTML"]
    assert "<b>Categories</b>" in categories
    assert "<b>Crews</b>" in crews
    assert "North-1" in crews and "South-2" in crews and maps.UNPLANNED_COLOUR in crews


@needs_node
def test_the_streamlit_folium_script_runs(
    districts: gpd.GeoDataFrame, routes: dict[str, Any], tmp_path: Path
) -> None:
    # st_folium does not use the page: it re-assembles each element's script itself
    streamlit_folium = pytest.importorskip("streamlit_folium")
    m = maps.requests_map(small_requests(), districts, COLOURS, ["address"], routes=routes)
    m.get_root().render()  # what st_folium does first
    script = streamlit_folium.generate_leaflet_string(m)
    rec = run_page_script(f"<script>{script}</script>", tmp_path)
    assert len(rec["circles"]) == 4
    assert rec["calls"]["polyline"] == 2
    assert rec["calls"]["getContainer"] == 1
    assert len(rec["innerHTML"]) == 2


def test_legend_refuses_unknown_position() -> None:
    with pytest.raises(GeoError, match="position"):
        maps.legend({"a": "#000"}, position="middle")


# --------------------------------------------------------------------------- invariants


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(), c, max_size=4),
        max_leaves=12,
    )
)
def test_js_json_round_trips_and_cannot_close_a_script(value: Any) -> None:
    text = maps._js_json(value)
    assert json.loads(text) == value
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert not re.search(r"\{[{%#]", text)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_text_escapes_and_unescapes_exactly(value: str) -> None:
    escaped = maps._text(value)
    assert html.unescape(escaped) == value
    assert not set(escaped) & {"<", ">", '"', "'", "{", "}"}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.text()), max_size=8),
    st.one_of(st.none(), st.integers(2, 12)),
)
def test_vectorised_text_column_matches_text(
    values: list[str | None], max_chars: int | None
) -> None:
    for dtype in ("string", "object", "str"):
        column = pd.Series(values, dtype=dtype)
        expected = [maps._text(v, max_chars) for v in column.tolist()]
        assert maps._text_column(column, max_chars) == expected
        if max_chars is not None:
            assert all(len(html.unescape(t)) <= max_chars for t in expected)


@needs_node
@pytest.mark.parametrize(("max_chars", "shown"), [(None, "x" * 300), (10, "x" * 9 + "…")])
def test_long_popup_text_is_cut_before_escaping(
    max_chars: int | None, shown: str, tmp_path: Path
) -> None:
    frame = small_requests(description=["x" * 300, "&" * 300, "ok", "ok", "ok"])
    m = maps.base_map(center=(-118.3, 34.0), tiles=None)
    for group in maps.requests_layer(frame, COLOURS, ["description"], max_text_chars=max_chars):
        group.add_to(m)
    popups = run_page_script(render(m), tmp_path)["popups"]
    assert any(f"</i>: {shown}</div>" in p for p in popups)
    amps = "&" * (300 if max_chars is None else 9)
    tail = "" if max_chars is None else "…"
    assert any(f"</i>: {html.escape(amps)}{tail}</div>" in p for p in popups)


def test_max_text_chars_must_leave_room_for_text() -> None:
    with pytest.raises(GeoError, match="max_text_chars"):
        maps.requests_layer(small_requests(), COLOURS, ["address"], max_text_chars=1)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([91406.0, np.nan], ["91406", ""]),
        ([1, 2], ["1", "2"]),
        ([1.5, None], ["1.5", ""]),
        (["a", 3], ["a", "3"]),
        ([True, False], ["True", "False"]),
    ],
)
def test_text_column_of_non_text_columns(values: list[Any], expected: list[str]) -> None:
    assert maps._text_column(pd.Series(values)) == expected


def test_a_city_plan_draws_dots_until_one_route_is_chosen() -> None:
    """Issue 13: 2,000 numbered markers made the plan page slow to open; past
    NUMBERED_STOPS_MAX stops they are dots, and a highlighted crew is numbered again."""
    import json as _json

    from geo import maps as _maps

    def doc(n: int) -> dict[str, object]:
        return {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point",
                                             "coordinates": [-118.3 + i * 1e-4, 34.0]},
             "properties": {"kind": "stop", "crew": f"c{i % 2}", "seq": i // 2 + 1,
                            "request_id": str(i)}} for i in range(n)]}

    def numbered(layer: object, n: int) -> bool:
        script = next(c for c in layer._children.values())  # type: ignore[attr-defined]
        return bool(_json.loads(script.payload_json)["numbered"])

    few, many = _maps.NUMBERED_STOPS_MAX, _maps.NUMBERED_STOPS_MAX + 1
    assert numbered(_maps.route_layer(doc(few)), few)
    assert not numbered(_maps.route_layer(doc(many)), many)
    assert numbered(_maps.route_layer(doc(many), highlight="c0"), many)
