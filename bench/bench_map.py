"""Benchmark of geo.maps: payload size and build time of the Los Angeles request map.

Measures, on the real MyLA311 extract (10,000 requests, 2020-01-01 to 03) and the 15
council districts of Los Angeles, the time to construct the map with
:func:`geo.maps.requests_map` and render it to standalone HTML, and the size of that
HTML. Reading the files is not timed. Results go to the "Maps" section of
``docs/benchmarks.md`` (other sections are kept).

Run from the repository root::

    .venv/bin/python bench/bench_map.py            # measure and write docs/benchmarks.md
    .venv/bin/python bench/bench_map.py --no-write # measure only
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo import maps  # noqa: E402

REQUESTS_CSV = ROOT / "data/requests/los_angeles/myla311_2020-01-01_to_03.csv"
DISTRICTS = ROOT / "data/boundaries/los_angeles/council_districts.geojson"
COMMAND = ".venv/bin/python bench/bench_map.py"

PAYLOAD_LIMIT_BYTES = 3_000_000
BUILD_LIMIT_S = 1.0
POPUP_FIELDS = ("address", "status", "createddate")
COLOURS = {
    "Bulky Items": "#1f77b4",
    "Graffiti Removal": "#d62728",
    "Illegal Dumping Pickup": "#8c564b",
    "Metal/Household Appliances": "#7f7f7f",
    "Electronic Waste": "#9467bd",
    "Dead Animal Removal": "#2ca02c",
}



from bench.docs import DOC, write_section  # noqa: E402


def load_requests(path: Path) -> pd.DataFrame:
    """Read the MyLA311 extract and shape it to the columns geo.maps expects."""
    raw = pd.read_csv(path)
    return pd.DataFrame(
        {
            "request_id": raw["srnumber"],
            "category": raw["requesttype"],
            # source columns are latitude, longitude: (lat, lon) -> (lon, lat)
            "lon": raw["longitude"],
            "lat": raw["latitude"],
            "address": raw["address"],
            "status": raw["status"],
            "createddate": raw["createddate"],
        }
    )


def synthetic_long_text(requests: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Add a 200-character resident description to every request.

    The descriptions carry quotes, ampersands and angle brackets, so the cost of
    escaping (HTML entities, then JSON unicode escapes) is part of the measured size.
    """
    rng = np.random.default_rng(seed)
    words = np.array(
        ["couch", "mattress", '"big"', "fridge", "<3", "alley", "&", "next", "to", "bus"]
    )
    text = [" ".join(rng.choice(words, 60))[:200] for _ in range(len(requests))]
    return requests.assign(description=text)


def build_and_render(
    requests: pd.DataFrame,
    districts: gpd.GeoDataFrame,
    popup_fields: tuple[str, ...] = POPUP_FIELDS,
) -> tuple[float, float, int]:
    """Construct the map and render it to HTML; return (wall s, CPU s, UTF-8 bytes)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    m = maps.requests_map(requests, districts, COLOURS, popup_fields)
    page = m.get_root().render()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return elapsed, cpu, len(page.encode("utf-8"))


def time_parts(requests: pd.DataFrame, districts: gpd.GeoDataFrame) -> dict[str, float]:
    """Time the pieces of one build separately (seconds)."""
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    layer = maps.district_layer(districts)
    t1 = time.perf_counter()
    groups = maps.requests_layer(requests, COLOURS, POPUP_FIELDS)
    t2 = time.perf_counter()
    m = maps.base_map(districts.total_bounds)
    layer.add_to(m)
    for g in groups:
        g.add_to(m)
    folium.LayerControl().add_to(m)
    t3 = time.perf_counter()
    m.get_root().render()
    t4 = time.perf_counter()
    out["district_layer"] = t1 - t0
    out["requests_layer"] = t2 - t1
    out["base_map + assembly"] = t3 - t2
    out["render to HTML"] = t4 - t3
    return out


def section(results: dict[str, object]) -> str:
    """Format the Markdown "Maps" section."""
    times = results["times_s"]
    assert isinstance(times, list)
    parts = results["parts_s"]
    assert isinstance(parts, dict)
    payload = results["payload_bytes"]
    assert isinstance(payload, int)
    median = statistics.median(times)
    cpu = results["cpu_s"]
    assert isinstance(cpu, list)
    lines = [
        "## Maps",
        "",
        f"Command: `{COMMAND}` (run from the repository root; measured {results['when']}).",
        "",
        f"Input: `{REQUESTS_CSV.relative_to(ROOT)}` ({results['rows']:,} rows, "
        f"{results['points']:,} with coordinates, {results['categories']} categories) and "
        f"`{DISTRICTS.relative_to(ROOT)}` ({results['districts']} districts); popups show "
        f"{', '.join(POPUP_FIELDS)}. Timed: `geo.maps.requests_map(...)` plus "
        "`m.get_root().render()`; file reading is not timed.",
        "",
        "| measure | value | limit | ok |",
        "|---|---|---|---|",
        f"| rendered payload | {payload:,} bytes ({payload / 1e6:.2f} MB) | "
        f"{PAYLOAD_LIMIT_BYTES / 1e6:.0f} MB | "
        f"{'yes' if payload <= PAYLOAD_LIMIT_BYTES else 'NO'} |",
        f"| build + render, median of {len(times)} | {median:.3f} s | {BUILD_LIMIT_S:.0f} s | "
        f"{'yes' if median <= BUILD_LIMIT_S else 'NO'} |",
        f"| build + render, slowest of {len(times)} | {max(times):.3f} s | | |",
        f"| build + render, CPU time of this process, median | "
        f"{statistics.median(cpu):.3f} s | | |",
        "",
        f"Heavier text: the same requests with a 200-character description each "
        f'(three words in ten are `"big"`, `&` or `<3`, which escaping inflates) as '
        f"a fourth popup field, cut to 120 characters by the default `max_text_chars`: "
        f"{results['long_payload_bytes']:,} bytes, median {results['long_median_s']:.3f} s "
        f"over {len(times)} builds (over both limits; see the notes in `geo/maps.py`).",
        "",
        f"By part, median of {len(times)} (seconds): "
        + ", ".join(f"{k} {v:.3f}" for k, v in parts.items())
        + ".",
        "",
        f"Machine: {results['machine']}; load average at start {results['load']} "
        "(2 cores shared with other work, so times are upper bounds).",
        "",
    ]
    return "\n".join(lines)



def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 when both limits hold, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed builds (default 7)")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args(argv)

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    requests = load_requests(REQUESTS_CSV)
    districts = gpd.read_file(DISTRICTS)
    build_and_render(requests, districts)  # warm-up: imports, template compilation
    runs = [build_and_render(requests, districts) for _ in range(args.repeat)]
    times = [t for t, _, _ in runs]
    payload = runs[-1][2]
    long_text = synthetic_long_text(requests)
    long_fields = (*POPUP_FIELDS, "description")
    long_runs = [build_and_render(long_text, districts, long_fields) for _ in range(args.repeat)]
    part_runs = [time_parts(requests, districts) for _ in range(args.repeat)]
    valid = requests["lon"].notna() & requests["lat"].notna()
    results: dict[str, object] = {
        "times_s": times,
        "payload_bytes": payload,
        "parts_s": {k: statistics.median(r[k] for r in part_runs) for k in part_runs[0]},
        "cpu_s": [c for _, c, _ in runs],
        "long_payload_bytes": long_runs[-1][2],
        "long_median_s": statistics.median(t for t, _, _ in long_runs),
        "rows": len(requests),
        "points": int(valid.sum()),
        "categories": requests["category"].nunique(),
        "districts": len(districts),
        "load": load,
        "machine": f"{platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, folium {folium.__version__}",
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    text = section(results)
    print(text)
    if not args.no_write:
        write_section("Maps", text)
        print(f"wrote the Maps section of {DOC.relative_to(ROOT)}")
    ok = payload <= PAYLOAD_LIMIT_BYTES and statistics.median(times) <= BUILD_LIMIT_S
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
