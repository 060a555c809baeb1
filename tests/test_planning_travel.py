"""Travel models: haversine default and the OSRM /table client (offline fake server)."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.errors import TravelError
from geo.travel import (
    BandedTravel,
    HaversineTravel,
    NetworkTravel,
    OsrmTravel,
    TravelModel,
    TravelSettings,
    fit_banded,
    great_circle_m,
    travel_from_spec,
    travel_spec,
)


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


# ---------------------------------------------------------------------------------------
# Distance bands

BANDS = BandedTravel((1000.0, 5000.0), (1.5, 1.4, 1.3), (200.0, 90.0, 50.0), approach_s=60.0)


def test_banded_is_piecewise_linear_with_approach() -> None:
    dist, dur = BANDS.distance_time(np.array([0.0, 500.0, 1000.0, 3000.0, 10_000.0]))
    assert dist.tolist() == pytest.approx([0.0, 750.0, 1500.0, 4300.0, 13600.0])
    # 60 s approach, then 0.2 s/m to 1 km, 0.09 s/m to 5 km, 0.05 s/m beyond
    assert dur.tolist() == pytest.approx([0.0, 160.0, 260.0, 440.0, 870.0])
    d, t = BANDS.matrix(PTS)
    assert d.dtype == np.int64 and (np.diag(t) == 0).all() and (t == t.T).all()
    assert (t[~np.eye(len(PTS), dtype=bool)] >= 60).all()


@pytest.mark.parametrize(
    "kw",
    [{"edges_m": (1000.0,)}, {"edges_m": (2000.0, 1000.0)}, {"circuity": (0.9, 1.4, 1.3)},
     {"pace_s_per_km": (200.0, 0.0, 50.0)}, {"approach_s": -1.0}],
)  # fmt: skip
def test_banded_validates(kw: dict[str, object]) -> None:
    args: dict[str, object] = {
        "edges_m": BANDS.edges_m, "circuity": BANDS.circuity, "pace_s_per_km": BANDS.pace_s_per_km
    }
    args.update(kw)
    with pytest.raises(TravelError):
        BandedTravel(**args)  # type: ignore[arg-type]


def test_fit_banded_recovers_the_bands() -> None:
    rng = np.random.default_rng(1)
    d = rng.uniform(50, 20_000, 600)
    truth = BandedTravel(BANDS.edges_m, BANDS.circuity, BANDS.pace_s_per_km, 0.0)
    m, s = truth.distance_time(d)
    noise = rng.normal(1.0, 0.02, len(d))
    fit = fit_banded(d, m * noise, s * noise, BANDS.edges_m, approach_s=45.0)
    assert fit.approach_s == 45.0
    assert fit.circuity == pytest.approx(truth.circuity, rel=0.03)
    assert fit.pace_s_per_km == pytest.approx(truth.pace_s_per_km, rel=0.03)
    with pytest.raises(TravelError):
        fit_banded([10.0], [12.0], [3.0], BANDS.edges_m)


def test_specs_rebuild_the_model() -> None:
    for model in (HaversineTravel(1.2, 30.0), BANDS, OsrmTravel("http://x", fallback=BANDS)):
        spec = travel_spec(model)
        assert spec is not None
        again = travel_from_spec(json.loads(json.dumps(spec)))
        assert travel_spec(again) == spec  # type: ignore[arg-type]
    assert travel_from_spec(None) is None
    with pytest.raises(TravelError):
        travel_from_spec({"model": "teleport"})


# ---------------------------------------------------------------------------------------
# Road network (a tiny synthetic graph: a slow street grid and one fast road)


def _grid(tmp_path: Path) -> tuple[Path, Path]:
    """3 x 3 nodes 0.01 deg apart; 10 m/s streets, one 30 m/s road along the bottom row."""
    lon0, lat0 = -118.30, 34.00
    nodes = ["nid,osm_node_id,lon,lat"]
    for r in range(3):
        for c in range(3):
            nodes.append(f"{r * 3 + c + 1},0,{lon0 + 0.01 * c},{lat0 + 0.01 * r}")
    links = ["from_nid,to_nid,capacity_veh_h,length_m,free_flow_time_s,bpr_b,bpr_power,"
             "speed_limit_m_s,toll,highway"]
    pts = [(lon0 + 0.01 * c, lat0 + 0.01 * r) for r in range(3) for c in range(3)]
    for a in range(9):
        for b in range(9):
            ra, ca, rb, cb = a // 3, a % 3, b // 3, b % 3
            if abs(ra - rb) + abs(ca - cb) != 1:
                continue
            length = float(great_circle_m(np.array([pts[a], pts[b]]))[0, 1])
            speed = 30.0 if ra == rb == 0 else 10.0
            links.append(f"{a + 1},{b + 1},1,{length},{length / speed},0.15,4,{speed},0,x")
    links.append("1,2,1,999,999,0.15,4,1,0,x")  # a slower parallel link: the fast one counts
    links.append("5,5,1,0,0,0.15,4,1,0,x")  # a self loop: ignored
    n, lk = tmp_path / "nodes.csv", tmp_path / "links.csv"
    n.write_text("\n".join(nodes) + "\n")
    lk.write_text("\n".join(links) + "\n")
    return n, lk


def test_network_times_follow_the_fastest_path(tmp_path: Path) -> None:
    nodes, links = _grid(tmp_path)
    net = NetworkTravel(nodes, links, access_speed_kmh=18.0, access_circuity=1.0,
                        approach_s=30.0)
    assert isinstance(net, TravelModel)
    # node 7 (top left) to node 9 (top right): two 10 m/s links; or down, fast, up.
    pts = np.array([[-118.30, 34.02], [-118.28, 34.02], [-118.30, 34.00], [-118.5, 34.5]])
    dist, dur = net.matrix(pts)
    leg = great_circle_m(pts[:2])[0, 1] / 2  # one link
    side = great_circle_m(pts[[0, 2]])[0, 1] / 2
    top = 2 * leg / 10.0
    around = 2 * side / 10.0 * 2 + 2 * leg / 30.0
    assert dur[0, 1] == round(min(top, around) + 30.0)
    assert dist[0, 1] == round(2 * leg if top <= around else 4 * side + 2 * leg)
    # the bottom row is fast: node 1 to node 3 at 30 m/s
    bottom = np.array([[-118.30, 34.00], [-118.29, 34.00], [-118.28, 34.00]])
    leg0 = great_circle_m(bottom)[0, 1] + great_circle_m(bottom)[1, 2]
    d13, t13 = net.matrix(bottom[[0, 2]])
    assert t13[0, 1] == round(leg0 / 30.0 + 30.0) and d13[0, 1] == round(leg0)
    # a point 50 km away is outside the graph: the fallback answers
    fb_d, fb_t = HaversineTravel().matrix(pts)
    assert dur[0, 3] == fb_t[0, 3] and dist[3, 1] == fb_d[3, 1]
    assert (np.diag(dur) == 0).all() and dur.dtype == np.int64


def test_network_short_hops_stay_local_and_paths_follow_roads(tmp_path: Path) -> None:
    nodes, links = _grid(tmp_path)
    net = NetworkTravel(nodes, links, access_speed_kmh=20.0, access_circuity=1.3)
    near = np.array([[-118.2950, 34.0049], [-118.2948, 34.0051]])  # 30 m apart, off the grid
    _, dur = net.matrix(near)
    local = great_circle_m(near)[0, 1] * 1.3 / (20 / 3.6)
    assert dur[0, 1] == round(local)
    assert net.path(near) == [tuple(near[0]), tuple(near[1])]
    along = np.array([[-118.30, 34.00], [-118.28, 34.00]])
    path = net.path(along)
    assert path[0] == (-118.30, 34.00) and path[-1] == (-118.28, 34.00)
    assert len(path) == 3 and path[1] == pytest.approx((-118.29, 34.00))  # the middle node
    spec = net.spec()
    again = travel_from_spec(spec)
    assert isinstance(again, NetworkTravel) and again.spec() == spec


def test_network_rejects_bad_files(tmp_path: Path) -> None:
    nodes, links = _grid(tmp_path)
    with pytest.raises(TravelError):
        NetworkTravel(tmp_path / "missing.csv", links)
    bad = tmp_path / "bad_links.csv"
    bad.write_text(links.read_text() + "1,99,1,10,1,0.15,4,1,0,x\n")
    with pytest.raises(TravelError, match="unknown nodes"):
        NetworkTravel(nodes, bad)
    with pytest.raises(TravelError):
        NetworkTravel(nodes, links, access_speed_kmh=0.0)


def test_travel_settings_choose_and_validate(tmp_path: Path) -> None:
    nodes, links = _grid(tmp_path)
    bands = {"band_edges_m": BANDS.edges_m, "band_circuity": BANDS.circuity,
             "band_pace_s_per_km": BANDS.pace_s_per_km, "approach_s": 60.0}
    assert isinstance(TravelSettings().build(), HaversineTravel)
    assert TravelSettings(model="banded", **bands).build() == BANDS  # type: ignore[arg-type]
    net = TravelSettings(model="network", network_nodes=nodes, network_links=links,
                         **bands).build()  # type: ignore[arg-type]
    assert isinstance(net, NetworkTravel) and net.fallback == BANDS
    assert isinstance(TravelSettings(**bands).with_model("straight-line").build(),  # type: ignore[arg-type]
                      HaversineTravel)
    for bad in ({"model": "teleport"}, {"model": "banded"}, {"model": "osrm"},
                {"model": "network", "network_nodes": tmp_path / "x.csv"},
                {"reserve_share": 0.9}):
        with pytest.raises(TravelError):
            TravelSettings(**bad)  # type: ignore[arg-type]
