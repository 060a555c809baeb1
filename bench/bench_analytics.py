"""Benchmark the managers' analytics and pages on the 10,000 LA 2020 requests.

Usage (from the repository root)::

    .venv/bin/python bench/bench_analytics.py             # measure, write docs/benchmarks.md
    .venv/bin/python bench/bench_analytics.py --no-write  # measure only

Seeds a temporary SQLite store with ``dispatch init --demo`` (the 10,000 requests of
``data/requests/los_angeles/myla311_2020-01-01_to_03.csv``), then measures

* hex aggregation (H3 resolution 8) plus Getis-Ord Gi* over the city limit, on all
  requests, median of 7 (the city-limit hexagons are timed apart: the page caches them);
* each manager page's first render with ``streamlit.testing.v1.AppTest.from_file``:
  *cold* in a fresh Python process (imports of streamlit pages, pandas, altair, folium,
  the store and the analysis included) and *warm* for a new session of a running
  server (modules imported, Streamlit's data caches cleared, so the requests are read
  from the database again), median of 3.

Results go to the "Managers" section of ``docs/benchmarks.md`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAGES = ("kpis.py", "hotspots.py", "monthly_report.py")
GI_LIMIT_S = 2.0
PAGE_LIMIT_S = 3.0



from bench.docs import write_section  # noqa: E402


def render_child(page: str, url: str, warm_runs: int) -> dict[str, float]:
    """Measure one page in this (fresh) process; called in a subprocess."""
    os.environ["DATABASE_URL"] = url
    os.environ["CURBSIDE_CITY"] = "los_angeles"
    os.chdir(ROOT)
    t0 = time.perf_counter()
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    path = str(ROOT / "app_pages" / page)
    at = AppTest.from_file(path, default_timeout=300)
    at.run()
    cold = time.perf_counter() - t0
    if at.exception:
        raise SystemExit(f"{page}: {at.exception[0].message}")
    warm = []
    for _ in range(warm_runs):
        st.cache_data.clear()
        t = time.perf_counter()
        AppTest.from_file(path, default_timeout=300).run()
        warm.append(time.perf_counter() - t)
    t = time.perf_counter()
    at.run()
    rerun = time.perf_counter() - t
    return {"cold_s": cold, "warm_s": statistics.median(warm), "warm_max_s": max(warm),
            "rerun_s": rerun}


def gi_timings(url: str, repeat: int) -> dict[str, object]:
    """Time hex counting (in SQL) + Gi* on every stored request."""
    from dispatch.analytics.hotspots import area_cells
    from dispatch.citypack import load_city_pack
    from dispatch.services.analytics import hex_counts
    from dispatch.store import RequestFilter, UnitOfWork, make_engine

    pack = load_city_pack("los_angeles")
    with UnitOfWork(make_engine(url)) as uow:
        t = time.perf_counter()
        total = int(uow.stats.count_by(RequestFilter(), ())["n"].sum())
        located = int(uow.stats.count_by(RequestFilter(located=True), ())["n"].sum())
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        area = area_cells(pack.boundary, 8)
        area_s = time.perf_counter() - t
        hex_and_gi(uow, area)  # warm-up
        runs = []
        spots = None
        for _ in range(repeat):
            t = time.perf_counter()
            _, spots = hex_and_gi(uow, area)
            runs.append(time.perf_counter() - t)
        if spots is None:
            raise SystemExit("no Gi* result")
        t = time.perf_counter()
        counts = hex_counts(uow, RequestFilter(), 8)
        hex_s = time.perf_counter() - t
    return {
        "requests": total,
        "located": located,
        "read_s": read_s,
        "area_s": area_s,
        "area_cells": len(area),
        "occupied": len(counts),
        "hex_s": hex_s,
        "median_s": statistics.median(runs),
        "max_s": max(runs),
        "cells": len(spots),
        "hot": int((spots["spot"] == "hot").sum()),
        "cold": int((spots["spot"] == "cold").sum()),
        "raw_p05": int((spots["p"] <= 0.05).sum()),
        "by_level": spots[spots["spot"] != ""].groupby(["spot", "confidence"]).size()
        .to_dict(),
    }


def hex_and_gi(uow, area):  # type: ignore[no-untyped-def]
    from dispatch.analytics.hotspots import gi_star
    from dispatch.services.analytics import hex_counts
    from dispatch.store import RequestFilter

    counts = hex_counts(uow, RequestFilter(), 8)
    return counts, gi_star(counts, area=area)


def section(gi: dict[str, object], pages: dict[str, dict[str, float]], when: str,
            load: str) -> str:
    """Format the Markdown "Managers" section."""
    ok_gi = "yes" if float(gi["median_s"]) < GI_LIMIT_S else "no"  # type: ignore[arg-type]
    lines = [
        "## Managers",
        "",
        f"Command: `.venv/bin/python bench/bench_analytics.py` (run from the repository root; "
        f"measured {when} UTC; machine: {platform.machine()}, Python "
        f"{platform.python_version()}, load average at start {load} on 2 shared cores, so "
        "times are upper bounds).",
        "",
        f"Input: a temporary SQLite store seeded with `dispatch init --demo` "
        f"({gi['requests']:,} requests of 1-3 Jan 2020, {gi['located']:,} located after the "
        "offline geocoder).",
        "",
        "### Hexagons and Gi*",
        "",
        "| measure | value | limit | ok |",
        "|---|---|---|---|",
        f"| `hex_counts` (H3 res 8, counted in SQL) + `gi_star` over the city limit, median of 7 | "
        f"{gi['median_s']:.3f} s | {GI_LIMIT_S:.0f} s | {ok_gi} |",
        f"| the same, slowest of 7 | {gi['max_s']:.3f} s | | |",
        f"| `hex_counts` alone | {gi['hex_s']:.3f} s | | |",
        f"| city-limit hexagons (`area_cells`, once per city and resolution, cached by the "
        f"page) | {gi['area_s']:.3f} s | | |",
        f"| counting the requests (SQL, not part of the above) | "
        f"{gi['read_s']:.3f} s | | |",
        "",
        f"Study area {gi['cells']:,} hexagons ({gi['area_cells']:,} with their centre in the "
        f"city limit, {gi['occupied']:,} with requests). {gi['raw_p05']:,} hexagons have a raw "
        f"p <= 0.05; after Benjamini-Hochberg {gi['hot']} are hot spots and {gi['cold']} cold "
        f"spots (by level: {gi['by_level']}).",
        "",
        "### Page first render (AppTest)",
        "",
        "| page | cold process | warm, new session (median of 3) | rerun, cached | limit | "
        "ok (warm) |",
        "|---|---|---|---|---|---|",
    ]
    for page, r in pages.items():
        ok = "yes" if r["warm_s"] < PAGE_LIMIT_S else "no"
        lines.append(f"| `app_pages/{page}` | {r['cold_s']:.2f} s | {r['warm_s']:.2f} s "
                     f"(max {r['warm_max_s']:.2f}) | {r['rerun_s']:.2f} s | "
                     f"{PAGE_LIMIT_S:.0f} s | {ok} |")
    lines += [
        "",
        "Cold: a fresh Python process, so it includes importing the page's modules "
        "(streamlit's AppTest machinery, pandas, altair, folium, SQLAlchemy, geopandas via "
        "the city pack, h3), which a running server does once. Warm: what a manager "
        "opening the page waits on a running server when the two-minute data cache is "
        "empty (requests read from the database again). Most of a warm render is reading "
        "the 10,000 requests as light rows (`uow.requests.query_columns`; see the read time "
        "above).",
        "",
    ]
    return "\n".join(lines)



def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 when the limits hold, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    parser.add_argument("--render-child", nargs=2, metavar=("PAGE", "URL"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--db", help="use this seeded database instead of a new one")
    args = parser.parse_args(argv)
    if args.render_child:
        print(json.dumps(render_child(args.render_child[0], args.render_child[1], 3)))
        return 0

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        if not args.db:
            from dispatch.cli import main as dispatch_main

            assert dispatch_main(["--db", url, "init", "--demo"]) == 0
        gi = gi_timings(url, 7)
        pages = {}
        for page in PAGES:
            out = subprocess.run(
                [sys.executable, __file__, "--render-child", page, url],
                check=True, capture_output=True, text=True, cwd=ROOT,
            )
            pages[page] = json.loads(out.stdout.strip().splitlines()[-1])
            print(page, pages[page], flush=True)
    text = section(gi, pages, when, load)
    print(text)
    if not args.no_write:
        write_section("Managers", text)
    ok = float(gi["median_s"]) < GI_LIMIT_S and all(  # type: ignore[arg-type]
        r["warm_s"] < PAGE_LIMIT_S for r in pages.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
