"""Travel models: haversine default and the OSRM /table client (offline fake server)."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.errors import TravelError
from geo.travel import HaversineTravel, OsrmTravel, TravelModel, great_circle_m


def test_haversine_one_degree_latitude() -> None:
    pts = np.array([[-118.0, 34.0], [-118.0, 35.0]])
    d = great_circle_m(pts)
    assert d[0, 1] == pytest.approx(111_195, rel=1e-3)
    dist, dur = HaversineTravel(circuity=1.3, speed_kmh=36.0).matrix(pts)
    assert dist.dtype == np.int64 and dur.dtype == np.int64
    assert dist[0, 1] == round(d[0, 1] * 1.3)
    assert dur[0, 1] == round(d[0, 1] * 1.3 / 10.0)  # 36 km/h = 10 m/s


@pytest.mark.parametrize(
    "bad",
    [np.zeros((3,)), np.array([[0.0, 95.0]]), np.array([[np.nan, 1.0]]), np.zeros((2, 3))],
)
def test_haversine_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(TravelError):
        HaversineTravel().matrix(bad)


@pytest.mark.parametrize("kw", [{"circuity": 0.9}, {"speed_kmh": 0.0}])
def test_haversine_validates(kw: dict[str, float]) -> None:
    with pytest.raises(TravelError):
        HaversineTravel(**kw)


coords = st.lists(
    st.tuples(st.floats(-118.7, -118.1), st.floats(33.7, 34.35)), min_size=1, max_size=12
)


@settings(max_examples=30, deadline=None)
@given(coords)
def test_haversine_matrix_invariants(pts: list[tuple[float, float]]) -> None:
    arr = np.array(pts)
    dist, dur = HaversineTravel().matrix(arr)
    assert (np.diag(dist) == 0).all() and (np.diag(dur) == 0).all()
    assert (dist == dist.T).all() and (dur == dur.T).all()
    assert (dist >= 0).all()
    # Rounded edges may break the triangle inequality by at most 1 unit per edge.
    n = len(arr)
    for i in range(n):
        for j in range(n):
            assert (dist[i, j] <= dist[i, :] + dist[:, j] + 2).all()


def test_protocol() -> None:
    assert isinstance(HaversineTravel(), TravelModel)
    assert isinstance(OsrmTravel("http://127.0.0.1:1"), TravelModel)


class _FakeOsrm(BaseHTTPRequestHandler):
    calls: ClassVar[list[str]] = []
    null_cell = False

    def do_GET(self) -> None:
        u = urlsplit(self.path)
        type(self).calls.append(self.path)
        assert u.path.startswith("/table/v1/driving/")
        q = parse_qs(u.query)
        assert q["annotations"] == ["duration,distance"]
        pts = [tuple(map(float, c.split(","))) for c in u.path.rsplit("/", 1)[1].split(";")]
        src = [int(x) for x in q["sources"][0].split(";")]
        dst = [int(x) for x in q["destinations"][0].split(";")]
        # Manhattan-ish fake: 100 km per degree, 10 m/s.
        dist = [
            [100_000 * (abs(pts[i][0] - pts[j][0]) + abs(pts[i][1] - pts[j][1])) for j in dst]
            for i in src
        ]
        dur = [[d / 10 for d in row] for row in dist]
        if type(self).null_cell and len(src) > 1 and len(dst) > 1:
            dist[0][1] = None  # type: ignore[call-overload]
            dur[0][1] = None  # type: ignore[call-overload]
        body = json.dumps({"code": "Ok", "distances": dist, "durations": dur}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def osrm() -> Iterator[str]:
    _FakeOsrm.calls = []
    _FakeOsrm.null_cell = False
    srv = HTTPServer(("127.0.0.1", 0), _FakeOsrm)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


PTS = np.array(
    [[-118.20, 34.00], [-118.21, 34.01], [-118.25, 34.05], [-118.30, 34.00], [-118.22, 34.1]]
)


def test_osrm_table(osrm: str) -> None:
    dist, dur = OsrmTravel(osrm).matrix(PTS)
    assert len(_FakeOsrm.calls) == 1
    assert dist[0, 1] == round(100_000 * 0.02)
    assert dur[0, 1] == round(100_000 * 0.02 / 10)
    assert dist.dtype == np.int64 and dist.shape == (5, 5)
    assert (np.diag(dist) == 0).all()


def test_osrm_blocks_match_single_request(osrm: str) -> None:
    whole = OsrmTravel(osrm).matrix(PTS)
    blocked = OsrmTravel(osrm, max_table_size=4).matrix(PTS)
    assert len(_FakeOsrm.calls) > 2
    assert (whole[0] == blocked[0]).all() and (whole[1] == blocked[1]).all()


def test_osrm_null_cells_filled_from_fallback(osrm: str) -> None:
    _FakeOsrm.null_cell = True
    fb = HaversineTravel()
    dist, _ = OsrmTravel(osrm, fallback=fb).matrix(PTS)
    assert dist[0, 1] == fb.matrix(PTS)[0][0, 1]


def test_osrm_unreachable_falls_back_with_warning() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.warns(RuntimeWarning, match="falling back"):
        dist, dur = OsrmTravel(f"http://127.0.0.1:{port}", timeout_s=2).matrix(PTS)
    exp = HaversineTravel().matrix(PTS)
    assert (dist == exp[0]).all() and (dur == exp[1]).all()


def test_osrm_validates_url() -> None:
    with pytest.raises(TravelError):
        OsrmTravel("localhost:5000")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert OsrmTravel("http://x").matrix(np.zeros((0, 2)))[0].shape == (0, 0)
