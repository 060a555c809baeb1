"""Calibrate the distance-banded travel model against the road network; report its error.

Run from the repository root (about a minute)::

    .venv/bin/python bench/bench_travel.py            # fit, held-out error, TOML table
    .venv/bin/python bench/bench_travel.py --no-write

"Network time" of a trip between two 2020 request points (every category, the city's
own coordinates) is :class:`geo.travel.NetworkTravel` on the OpenStreetMap arterial
network of the eastern basin (``data/networks/los_angeles/``): access legs at local
speed, free-flow shortest path, or all on local streets when that is faster; no
approach time. Points more than 500 m from the network are left out. Points are split
at random (seed 20200103) into a fitting set (70%) and a held-out set (30%); trips are
sampled within each set, stratified by straight-line distance band, so no held-out trip
shares a point with a fitted one. :func:`geo.travel.fit_banded` fits the bands on the
fitting trips; errors are measured on the held-out trips, for the fitted model and for
today's straight-line model (great-circle x 1.3 at 25 km/h). The 2017 evaluation file
is not used.
"""

# ruff: noqa: E501
from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.la_data import la_pack, load_la_requests  # noqa: E402
from bench.planning_docs import write_fragment  # noqa: E402
from geo.travel import (  # noqa: E402
    BandedTravel,
    HaversineTravel,
    NetworkTravel,
    fit_banded,
    great_circle_m,
)

NET = ROOT / "data" / "networks" / "los_angeles"
EDGES_M = (500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0)
STRATA_M = (0.0, *EDGES_M, 40000.0)
MAX_OFF_M = 500.0


def network() -> NetworkTravel:
    pack = la_pack()
    t = pack.travel
    return NetworkTravel(
        NET / "osm_arterial_network_east_nodes.csv", NET / "osm_arterial_network_east_links.csv",
        access_speed_kmh=t.access_speed_kmh, access_circuity=t.access_circuity,
        max_access_m=MAX_OFF_M, max_path_s=3 * 3600.0,
    )  # fmt: skip


def sample_pairs(
    pts: np.ndarray, per_band: int, rng: np.random.Generator
) -> np.ndarray:
    """Return ``(k, 2)`` index pairs, up to ``per_band`` per straight-line band."""
    tree = cKDTree(np.column_stack([pts[:, 0] * 92_000.0, pts[:, 1] * 111_000.0]))
    near = np.array(sorted(tree.query_pairs(2500.0)), dtype=np.int64).reshape(-1, 2)
    far = rng.integers(0, len(pts), size=(200_000, 2))
    cand = np.concatenate([near, far[far[:, 0] != far[:, 1]]])
    cand = cand[rng.permutation(len(cand))]
    d = great_circle_m(pts)[cand[:, 0], cand[:, 1]] if len(pts) < 6000 else None
    assert d is not None
    out = []
    for lo, hi in itertools.pairwise(STRATA_M):
        pick = cand[(d >= max(lo, 50.0)) & (d < hi)][:per_band]
        out.append(pick)
    return np.concatenate(out)


def trips(net: NetworkTravel, pts: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, ...]:
    used = np.unique(pairs)
    where = {int(p): k for k, p in enumerate(used)}
    dist, dur, cov = net.road(pts[used])
    a = np.array([where[int(i)] for i in pairs[:, 0]])
    b = np.array([where[int(j)] for j in pairs[:, 1]])
    gc = great_circle_m(pts[used])[a, b]
    ok = cov[a, b]
    return gc[ok], dist[a, b][ok], dur[a, b][ok]


def errors(pred_s: np.ndarray, true_s: np.ndarray) -> tuple[float, float, float, float, float]:
    rel = (pred_s - true_s) / true_s * 100
    return (float(np.median(np.abs(rel))), float(np.mean(np.abs(rel))),
            float(np.percentile(np.abs(rel), 90)), float(np.median(rel)),
            float(np.mean(np.abs(pred_s - true_s))))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-band", type=int, default=600)
    ap.add_argument("--seed", type=int, default=20200103)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    net = network()
    reqs = load_la_requests()
    lonlat = np.array([[r.lon, r.lat] for r in reqs if r.lon is not None and r.lat is not None])
    lonlat = np.unique(np.round(lonlat, 6), axis=0)
    _, off = net.snap(lonlat)
    pts = lonlat[off <= MAX_OFF_M]
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(pts))
    cut = int(0.7 * len(pts))
    fit_pts, test_pts = pts[perm[:cut]], pts[perm[cut:]]
    fit_pairs = sample_pairs(fit_pts, args.per_band, rng)
    test_pairs = sample_pairs(test_pts, args.per_band // 2, rng)
    gc_f, m_f, s_f = trips(net, fit_pts, fit_pairs)
    gc_t, m_t, s_t = trips(net, test_pts, test_pairs)
    pack = la_pack()
    approach = pack.travel.approach_s
    fitted = fit_banded(gc_f, m_f, s_f, EDGES_M, approach_s=approach)
    plain = BandedTravel(fitted.edges_m, fitted.circuity, fitted.pace_s_per_km, 0.0)
    old = HaversineTravel()
    old_s = gc_t * old.circuity / (old.speed_kmh / 3.6)
    new_m, new_s = plain.distance_time(gc_t)
    wall = time.perf_counter() - t0
    rows = []
    for lo, hi in itertools.pairwise(STRATA_M):
        m = (gc_t >= lo) & (gc_t < hi)
        if not m.any():
            continue
        eo, en = errors(old_s[m], s_t[m]), errors(new_s[m], s_t[m])
        rows.append(
            f"| {lo / 1000:g}-{hi / 1000:g} km | {int(m.sum())} | {np.median(s_t[m]) / 60:.1f} min | "
            f"{np.median(m_t[m] / gc_t[m]):.2f} | "
            f"{en[0]:.1f}% / {en[3]:+.1f}% | {eo[0]:.1f}% / {eo[3]:+.1f}% |"
        )
    eo, en = errors(old_s, s_t), errors(new_s, s_t)
    dm = errors(new_m, m_t)
    speeds = [c / p * 3600 for c, p in zip(fitted.circuity, fitted.pace_s_per_km, strict=True)]
    band_rows = [
        f"| {lo / 1000:g}-{('inf' if hi == float('inf') else f'{hi / 1000:g}')} km | {c:.3f} | {p:.1f} s | {v:.1f} km/h |"
        for lo, hi, c, p, v in zip((0.0, *EDGES_M), (*EDGES_M, float("inf")), fitted.circuity,
                                   fitted.pace_s_per_km, speeds, strict=True)
    ]  # fmt: skip
    toml = "\n".join([
        "band_edges_m = [" + ", ".join(f"{e:g}" for e in fitted.edges_m) + "]",
        "band_circuity = [" + ", ".join(f"{c:g}" for c in fitted.circuity) + "]",
        "band_pace_s_per_km = [" + ", ".join(f"{p:g}" for p in fitted.pace_s_per_km) + "]",
    ])
    md = "\n".join([
        "### Travel model: distance bands fitted to the road network",
        "",
        f"Command: `.venv/bin/python bench/bench_travel.py` ({platform.machine()}, Python {platform.python_version()}, "
        f"load average {load:.1f} at start; {wall:.0f} s).",
        f"Points: {len(pts):,} distinct 2020 request locations within {MAX_OFF_M:g} m of the OpenStreetMap arterial network "
        f"of the eastern basin ({len(fit_pts):,} to fit, {len(test_pts):,} held out). Trips: {len(gc_f):,} fitted, "
        f"{len(gc_t):,} held out, stratified by straight-line distance. Network time: access legs x "
        f"{net.access_circuity:g} at {net.access_speed_kmh:g} km/h, free-flow shortest path, or all local when faster; "
        "approach time excluded (the packs add it to every model alike).",
        "",
        "Fitted bands (now the `[travel]` table of `data/cities/los_angeles.toml`):",
        "",
        "| straight-line band | circuity | pace per straight-line km | marginal road speed in the band |",
        "|---|---|---|---|",
        *band_rows,
        "",
        "Error against network time on the held-out trips (median absolute / median signed):",
        "",
        "| straight-line distance | trips | median network time | median circuity | banded fit | today's 1.3 x 25 km/h |",
        "|---|---|---|---|---|---|",
        *rows,
        f"| **all** | {len(gc_t)} | {np.median(s_t) / 60:.1f} min | | {en[0]:.1f}% / {en[3]:+.1f}% | {eo[0]:.1f}% / {eo[3]:+.1f}% |",
        "",
        f"Held-out time error, banded fit: mean absolute {en[1]:.1f}%, 90th percentile {en[2]:.1f}%, "
        f"mean absolute {en[4]:.0f} s; today's model: {eo[1]:.1f}%, {eo[2]:.1f}%, {eo[4]:.0f} s. "
        f"Distance error of the fit: median {dm[0]:.1f}%, 90th percentile {dm[2]:.1f}%.",
        "",
        "Fitted table:",
        "",
        "```toml",
        toml,
        "```",
    ])  # fmt: skip
    print(md)
    if not args.no_write:
        write_fragment("travel", md)


if __name__ == "__main__":
    main()
