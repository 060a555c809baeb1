"""District layers: reading files, ArcGIS paging (offline fake server), validation, saving."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import geopandas as gpd
import pytest
from shapely.geometry import box

from geo.boundaries import (
    fetch_arcgis_features,
    import_district_layer,
    is_wgs84,
    load_boundary,
    load_district_layer,
    save_district_layer,
    validate_district_layer,
)
from geo.errors import BoundaryError

DATA = Path(__file__).parent / "data" / "boundaries"
LA = Path(__file__).parents[1] / "data" / "boundaries" / "los_angeles"


def test_load_two_squares_shapes_and_sorts() -> None:
    layer = load_district_layer(DATA / "two_squares.geojson", "district", "name")
    assert list(layer.columns) == ["district", "name", "geometry"]
    assert layer["district"].tolist() == ["1", "2"]  # ints become text, sorted
    assert layer["name"].tolist() == ["District One", "District Two"]
    assert is_wgs84(layer.crs)


def test_name_field_optional_gives_default_names() -> None:
    layer = load_district_layer(DATA / "two_squares.geojson", "district", None)
    assert layer["name"].tolist() == ["District 1", "District 2"]


def test_la_council_districts_load_and_validate() -> None:
    layer = load_district_layer(LA / "council_districts.geojson", "district", "name")
    assert layer["district"].tolist() == [str(i) for i in range(1, 16)]


@pytest.mark.parametrize(
    ("fixture", "id_field", "kwargs", "needle", "field"),
    [
        ("overlapping_pair.geojson", "district", {}, "overlap", "district"),
        ("bowtie.geojson", "district", {}, "invalid geometry", "district"),
        ("duplicate_ids.geojson", "district", {}, "duplicate ids", "district"),
        ("two_squares_epsg3857.geojson", "district", {"reproject": False}, "EPSG:4326", "CRS"),
        ("two_squares.geojson", "DIST_NO", {}, "is not a field", "DIST_NO"),
        ("no_such_file.geojson", "district", {}, "does not exist", ""),
    ],
)
def test_bad_layers_name_file_and_field(
    fixture: str, id_field: str, kwargs: dict[str, Any], needle: str, field: str
) -> None:
    with pytest.raises(BoundaryError) as err:
        load_district_layer(DATA / fixture, id_field, "name", **kwargs)
    msg = str(err.value)
    assert fixture in msg
    assert needle in msg
    assert field in msg


def test_overlap_tolerance_can_be_relaxed() -> None:
    layer = load_district_layer(
        DATA / "overlapping_pair.geojson", "district", "name", overlap_tolerance=0.6
    )
    assert len(layer) == 2


def test_other_crs_is_reprojected_when_importing() -> None:
    layer = load_district_layer(DATA / "two_squares_epsg3857.geojson", "district", "name")
    assert is_wgs84(layer.crs)
    minx, _, _, maxy = layer.total_bounds
    assert minx == pytest.approx(-118.30, abs=1e-6)
    assert maxy == pytest.approx(34.01, abs=1e-6)


@pytest.mark.parametrize(("suffix", "crs"), [(".shp", 3310), (".gpkg", 4326)])
def test_shapefile_and_geopackage(tmp_path: Path, suffix: str, crs: int) -> None:
    src = gpd.read_file(DATA / "two_squares.geojson").to_crs(crs)
    path = tmp_path / f"tiny{suffix}"
    src.to_file(path, engine="pyogrio")
    layer = load_district_layer(path, "district", "name")
    assert layer["district"].tolist() == ["1", "2"]
    assert is_wgs84(layer.crs)


def test_save_round_trip(tmp_path: Path) -> None:
    layer = load_district_layer(DATA / "two_squares.geojson", "district", "name")
    out = save_district_layer(layer, tmp_path / "sub" / "council_districts.geojson")
    again = load_district_layer(out, "district", "name", reproject=False)
    assert again["district"].tolist() == ["1", "2"]
    assert again.geometry.iloc[0].equals_exact(layer.geometry.iloc[0], 1e-9)
    save_district_layer(layer, out)  # overwriting works


def test_validate_rejects_empty_and_non_polygons() -> None:
    empty = gpd.GeoDataFrame({"district": [], "name": []}, geometry=[], crs=4326)
    with pytest.raises(BoundaryError, match="no features"):
        validate_district_layer(empty, "empty.geojson")
    from shapely.geometry import Point

    pts = gpd.GeoDataFrame({"district": ["1"], "name": ["x"]}, geometry=[Point(0, 0)], crs=4326)
    with pytest.raises(BoundaryError, match=r"pts\.geojson.*Point"):
        validate_district_layer(pts, "pts.geojson", "district")


def test_load_boundary() -> None:
    geom = load_boundary(DATA / "city_square.geojson")
    assert geom.equals(box(-118.305, 33.995, -118.275, 34.015))
    with pytest.raises(BoundaryError, match="EPSG:4326"):
        load_boundary(DATA / "two_squares_epsg3857.geojson")


# ------------------------------------------------------------ fake ArcGIS FeatureServer


class _FakeArcGIS(BaseHTTPRequestHandler):
    """Answers /FeatureServer/0/query like ArcGIS with f=geojson, max 1 feature a page."""

    features: ClassVar[list[dict[str, Any]]] = []
    seen: ClassVar[list[dict[str, str]]] = []
    mode: ClassVar[str] = "ok"

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(parts.query))
        type(self).seen.append(q)
        if self.mode == "slow":
            time.sleep(0.6)
        if self.mode == "error":
            body: Any = {"error": {"code": 400, "message": "Invalid or missing input parameters."}}
        elif self.mode == "html":
            self._send(b"<html>login</html>", "text/html")
            return
        elif self.mode == "stuck":
            body = {
                "type": "FeatureCollection",
                "features": [],
                "properties": {"exceededTransferLimit": True},
            }
        else:
            if not parts.path.endswith("/FeatureServer/0/query"):
                self.send_error(404)
                return
            offset = int(q.get("resultOffset", "0")) if self.mode != "no_paging" else 0
            size = min(int(q.get("resultRecordCount", "1")), 1)  # server maxRecordCount = 1
            page = self.features[offset : offset + size]
            body = {"type": "FeatureCollection", "features": page}
            if offset + size < len(self.features):
                body["properties"] = {"exceededTransferLimit": True}
        self._send(json.dumps(body).encode(), "application/geo+json")

    def _send(self, raw: bytes, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def arcgis() -> Iterator[tuple[str, type[_FakeArcGIS]]]:
    doc = json.loads((DATA / "arcgis_districts.geojson").read_text())
    handler = type(
        "Handler", (_FakeArcGIS,), {"features": doc["features"], "seen": [], "mode": "ok"}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    url = (
        f"http://127.0.0.1:{server.server_address[1]}/arcgis/rest/services/Council/FeatureServer/0"
    )
    try:
        yield url, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_arcgis_paging(arcgis: tuple[str, type[_FakeArcGIS]]) -> None:
    url, handler = arcgis
    layer = load_district_layer(url, "DISTRICT", "MEMBER", timeout_s=5)
    assert layer["district"].tolist() == ["1", "2", "3"]
    assert layer["name"].tolist() == ["Member A", "Member B", "Member C"]
    assert [q["resultOffset"] for q in handler.seen] == ["0", "1", "2"]
    first = handler.seen[0]
    assert (first["where"], first["outFields"], first["f"], first["outSR"]) == (
        "1=1",
        "*",
        "geojson",
        "4326",
    )


def test_arcgis_url_with_query_suffix_and_page_size(arcgis: tuple[str, type[_FakeArcGIS]]) -> None:
    url, handler = arcgis
    feats = fetch_arcgis_features(url + "/query", page_size=1, timeout_s=5)
    assert len(feats) == 3
    assert handler.seen[0]["resultRecordCount"] == "1"


def test_arcgis_field_names_case_insensitive(arcgis: tuple[str, type[_FakeArcGIS]]) -> None:
    url, _ = arcgis
    layer = load_district_layer(url, "district", "member", timeout_s=5)
    assert len(layer) == 3


@pytest.mark.parametrize(
    ("mode", "needle"),
    [
        ("error", "Invalid or missing input"),
        ("html", "not JSON"),
        ("stuck", "cannot advance"),
        ("slow", "cannot fetch"),
        ("no_paging", "does not support paging"),
    ],
)
def test_arcgis_failures(arcgis: tuple[str, type[_FakeArcGIS]], mode: str, needle: str) -> None:
    url, handler = arcgis
    handler.mode = mode
    with pytest.raises(BoundaryError, match=needle) as err:
        load_district_layer(url, "DISTRICT", "MEMBER", timeout_s=0.2)
    assert "127.0.0.1" in str(err.value)


def test_arcgis_unreachable() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BoundaryError, match="cannot fetch"):
        load_district_layer(f"http://127.0.0.1:{port}/FeatureServer/0", "DISTRICT", timeout_s=1)


def test_import_district_layer_from_url(
    arcgis: tuple[str, type[_FakeArcGIS]], tmp_path: Path
) -> None:
    url, _ = arcgis
    out = tmp_path / "council_districts.geojson"
    layer = import_district_layer(url, "DISTRICT", "MEMBER", out, timeout_s=5)
    assert out.is_file()
    again = load_district_layer(out, "district", "name", reproject=False)
    assert again["district"].tolist() == layer["district"].tolist()


@pytest.mark.parametrize(
    ("crs", "expected"),
    [
        ("EPSG:4326", True),
        ("OGC:CRS84", True),
        (4326, True),
        ("EPSG:3857", False),
        ("EPSG:3310", False),
        (None, False),
    ],
)
def test_is_wgs84(crs: object, expected: bool) -> None:
    assert is_wgs84(crs) is expected


def test_layer_with_a_million_vertices_is_refused(tmp_path: Path) -> None:
    import numpy as _np

    from geo.boundaries import MAX_LAYER_VERTICES

    n = 1_000_000
    angle = _np.linspace(0, 2 * _np.pi, n, endpoint=False)
    ring = _np.column_stack([-118.25 + 0.01 * _np.cos(angle), 34.05 + 0.01 * _np.sin(angle)])
    ring = _np.vstack([ring, ring[:1]]).round(7).tolist()
    doc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"district": 1, "name": "one"},
        "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    path = tmp_path / "huge.geojson"
    path.write_text(json.dumps(doc))
    assert n > MAX_LAYER_VERTICES
    with pytest.raises(BoundaryError, match="vertices"):
        load_district_layer(path, "district", "name")
