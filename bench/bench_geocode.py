"""Benchmark of the offline geocoder; writes the "Geocoding" section of docs/benchmarks.md.

Run from the repository root::

    git worktree add /tmp/curbside-base 020ebb8    # the code before the geocoding package
    .venv/bin/python bench/bench_geocode.py --baseline /tmp/curbside-base
    .venv/bin/python bench/bench_geocode.py --no-write # measure only, no baseline

What it measures (all in one run, on one core):

* with ``--baseline``: the starting commit's geocoder and this one on the same 2020-only
  reference files (``bench/geocode_split.py``, one process each): 2017 set, messy
  rewrite, intersections, every 2020 held-out check, answer by answer;
* Venice and Marina del Rey: the distinct 2017 addresses in ZIP 90291/90292 (held out:
  the 2017 file never feeds a reference) against the Los Angeles pack's reference with
  and without the County address points (CAMS), and with the starting commit's code;
  every address the County layer holds must be answered at ``point`` from it, within
  30 m of the city's coordinates;
* evaluation: the 2017 MyLA311 addresses that carry coordinates, geocoded against the
  reference the Los Angeles pack builds (County points + 2020 requests; never the 2017
  file); house-level share and error versus the city's coordinates, for the offline
  geocoder and for a naive exact-street baseline;
* intersections (``X AT Y``) of the 2017 extract;
* messy input: the same addresses rewritten the way residents type (seeded);
* throughput of :func:`geo.geocoding.batch.geocode_frame` from a cold cache, end to end;
* reverse geocoding time per point;
* held-out checks built from the 2020 extract alone (:func:`holdout_2020`), the set new
  thresholds are tuned on (the 2017 file is only ever measured).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import random
import re
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dispatch.citypack import load_city_pack  # noqa: E402
from geo import address as address_mod  # noqa: E402
from geo.address import TYPE_LONG_FORM, parse_address  # noqa: E402
from geo.geocoding import HOUSE_LEVEL, Precision  # noqa: E402
from geo.geocoding.batch import geocode_frame  # noqa: E402
from geo.geocoding.offline import OfflineGeocoder  # noqa: E402
from geo.geocoding.tuning import DEFAULT_TUNING, GeocoderTuning  # noqa: E402
from geo.reference import AddressReference, build_reference, load_reference  # noqa: E402
from geo.reference_sources import BuildReport, build_from_sources  # noqa: E402

EVAL_CSV = ROOT / "data/evaluation/los_angeles/myla311_2017-12-27_to_31.csv"
REF_CSV = ROOT / "data/requests/los_angeles/myla311_2020-01-01_to_03.csv"
COMMAND = ".venv/bin/python bench/bench_geocode.py --baseline /tmp/curbside-base"
#: ZIP codes of Venice and Marina del Rey, where the County address points ship.
VENICE_ZIPS = ("90291", "90292")
#: The County layer's source name in the Los Angeles pack.
COUNTY = "cams"


from bench.docs import write_section  # noqa: E402


def haversine_m(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    lon1, lat1, lon2, lat2 = (
        np.radians(np.asarray(a, dtype=float)) for a in (lon1, lat1, lon2, lat2)
    )
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


def load_eval() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(EVAL_CSV, usecols=["Address", "ZipCode", "Latitude", "Longitude"])
    df = df.loc[df["Latitude"].notna() & df["Longitude"].notna() & df["Address"].notna()]
    # (lat, lon) -> (lon, lat)
    df = df.rename(columns={"Longitude": "true_lon", "Latitude": "true_lat"})
    df["ZipCode"] = df["ZipCode"].map(lambda z: "" if pd.isna(z) else str(int(z)))
    is_inter = df["Address"].str.contains(" AT ", regex=False)
    return df.loc[~is_inter].reset_index(drop=True), df.loc[is_inter].reset_index(drop=True)


# ------------------------------------------------------------------ baseline
class NaiveBaseline:
    """Exact street string match, linear interpolation between nearest numbers."""

    def __init__(self, csv: Path) -> None:
        raw = pd.read_csv(csv, usecols=["address", "latitude", "longitude"]).dropna()
        self.streets: dict[str, list[tuple[int, float, float]]] = {}
        for text, lat, lon in zip(raw["address"], raw["latitude"], raw["longitude"], strict=True):
            m = re.match(r"^(\d+)\s+([^,]+)", text)
            if m:
                # (lat, lon) -> (lon, lat)
                self.streets.setdefault(m.group(2).strip(), []).append((int(m.group(1)), lon, lat))
        self.arr = {k: np.array(sorted(v), dtype=float) for k, v in self.streets.items()}

    def locate(self, text: str) -> tuple[float, float] | None:
        """Locate ``123 W MAIN ST, 90012`` by its exact street string."""
        m = re.match(r"^(\d+)\s+([^,]+)", text)
        if not m or m.group(2).strip() not in self.arr:
            return None
        a = self.arr[m.group(2).strip()]
        n = int(m.group(1))
        i = int(np.searchsorted(a[:, 0], n))
        if i == 0:
            return float(a[0, 1]), float(a[0, 2])
        if i == len(a):
            return float(a[-1, 1]), float(a[-1, 2])
        lo, hi = a[i - 1], a[i]
        t = 0.0 if hi[0] == lo[0] else (n - lo[0]) / (hi[0] - lo[0])
        return float(lo[1] + t * (hi[1] - lo[1])), float(lo[2] + t * (hi[2] - lo[2]))


# ------------------------------------------------------------------- messy
_DIRS = {"N": "north", "S": "south", "E": "east", "W": "west"}


def rewrite(text: str, zip_code: str, rng: random.Random) -> tuple[str, bool]:
    """Rewrite a clean ``123 W MAIN ST, 90012`` the way residents type it.

    Every address gets two or three of: lower/title case, street type spelled out or
    dropped, directional spelled out or dropped, one typo in the street name (names of
    five letters or more), a unit suffix, a ``near`` / ``in front of`` / ``block of``
    phrasing; the ZIP is kept (in varied formats) because intake forms collect it.
    Returns the text and whether the house number was replaced by ``N block of``.
    """
    m = re.match(r"^(\d+)(\s+\d/\d)?\s+(?:([NSEW])\s+)?(.+?)(?:\s+([A-Z]+))?,\s*\d{5}$", text)
    if not m:
        return text.lower(), False
    num, frac, d, name, stype = m.groups()
    if stype is not None and stype not in address_mod.STREET_TYPES:
        name, stype = f"{name} {stype}", None
    ops = rng.sample(["type", "dir", "typo", "unit", "phrase"], k=rng.choice([2, 3]))
    if "type" in ops and stype:
        long = TYPE_LONG_FORM.get(address_mod.STREET_TYPES[stype], stype)
        stype = rng.choice([long, None])
    if "dir" in ops and d:
        d = rng.choice([_DIRS[d], None])
    if "typo" in ops:
        letters = [i for i, ch in enumerate(name) if ch.isalpha()]
        if len(letters) >= 5 and not any(ch.isdigit() for ch in name):
            i = rng.choice(letters[1:])
            kind = rng.choice(["drop", "swap", "sub", "double"])
            if kind == "drop":
                name = name[:i] + name[i + 1 :]
            elif kind == "swap" and i + 1 < len(name) and name[i + 1].isalpha():
                name = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
            elif kind == "sub":
                name = name[:i] + rng.choice("AEIOURSTLN") + name[i + 1 :]
            else:
                name = name[:i] + name[i] + name[i:]
    street = " ".join(p for p in (d, name, stype) if p)
    head = f"{num}{frac or ''} {street}"
    block = False
    if "phrase" in ops:
        head = rng.choice(
            [f"near {head}", f"in front of {head}", f"across from {head}",
             f"{int(num) // 100 * 100} block of {street}"]
        )  # fmt: skip
        block = " block of " in head
    if "unit" in ops:
        head += rng.choice([" apt 4", " #12", " unit B", " ste 200", " Apt. 3"])
    tail = rng.choice([f", {zip_code}", f" {zip_code}", f", Los Angeles, CA {zip_code}",
                       f" los angeles ca {zip_code}"])  # fmt: skip
    out = head + tail
    return rng.choice([out.lower(), out.title(), out]), block


_X_TYPES = re.compile(r"\s+(?:ST|AVE|BLVD|DR|PL|RD|WAY|CT|LN|TER|CIR|FRWY|HWY)\b")


def rewrite_intersection(text: str, zip_code: str, rng: random.Random) -> str:
    """Rewrite ``X ST AT Y AVE, 90012`` the way residents type a corner.

    Types dropped at random, the connector varied (``&``, ``and``, ``/``, ``corner of``,
    ``near``), a city tail or not, and the case changed.
    """
    head = text.rsplit(",", 1)[0]
    if " AT " not in head:
        return text
    x, y = head.split(" AT ", 1)
    x = _X_TYPES.sub("", x) if rng.random() < 0.5 else x
    y = _X_TYPES.sub("", y) if rng.random() < 0.5 else y
    form = rng.choice(["{x} & {y}", "corner of {x} and {y}", "{x} and {y}", "{x} / {y}",
                       "{x} at {y}", "near {x} & {y}"])  # fmt: skip
    out = form.format(x=x, y=y) + rng.choice(
        [f", {zip_code}", f" los angeles ca {zip_code}", f" {zip_code}"]
    )
    return rng.choice([out.lower(), out.title(), out])


# ---------------------------------------------------------- 2020 held-out checks
_OPPOSITE_SIDES = {"N": "S", "E": "W"}


def _err_m(res_lon: float | None, res_lat: float | None, lon: float, lat: float) -> float:
    if res_lon is None or res_lat is None:
        return math.nan
    return float(haversine_m(np.array([res_lon]), np.array([res_lat]), lon, lat)[0])


def holdout_2020(
    ref: AddressReference, folds: int = 4, tuning: GeocoderTuning = DEFAULT_TUNING
) -> dict[str, pd.DataFrame]:
    """Held-out checks built from the 2020 extract alone (what the constants are tuned on).

    * ``points``: the distinct 2020 address points split in ``folds`` folds (by address);
      each fold is geocoded (``number street, zip``) against a reference built from the
      other folds, so the street usually stays known but the number is new;
    * ``across``: of the streets with points on both sides of a divide (N/S or E/W), one
      side is hidden per fold and its addresses geocoded with their ZIP;
    * ``numbered``: numbered streets (``W 37TH ST``, ``AVENUE 58``) hidden whole, a fold
      of them at a time, and their addresses geocoded with their ZIP (what
      ``_ordinal`` is tuned on);
    * ``intersections``: the 2020 ``X AT Y`` rows located from the 2020 points alone.
    """
    pts = ref.points.reset_index(drop=True)
    out: dict[str, pd.DataFrame] = {}


    out["points"] = points_check(pts, folds, tuning=tuning)
    out["points, pre-direction dropped"] = points_check(pts, folds, with_predir=False,
                                                        tuning=tuning)

    sides = pts.groupby(["name", "predir"]).size().unstack(fill_value=0)
    pairs = [
        (nm, a, b) for nm in sides.index for a, b in _OPPOSITE_SIDES.items()
        if a in sides.columns and b in sides.columns and sides.at[nm, a] and sides.at[nm, b]
    ]  # fmt: skip
    rows = []
    for f in range(folds):
        drop = np.zeros(len(pts), dtype=bool)
        for nm, a, b in pairs:
            if zlib.crc32(nm.encode()) % folds == f:
                side = a if zlib.crc32(f"{nm}x".encode()) % 2 else b
                drop |= ((pts["name"] == nm) & (pts["predir"] == side)).to_numpy()
        gc = OfflineGeocoder(build_reference(pts.loc[~drop], city="los_angeles"), tuning=tuning)
        for r in pts.loc[drop].itertuples():
            rows.append(_answer(gc, _query_of(r), r))
    out["across"] = pd.DataFrame(rows, columns=["precision", "method", "err"])

    # numbered streets hidden whole (name and pre-direction, with their intersections)
    numbered = pts["name"].str.fullmatch(r"\d+(?:ST|ND|RD|TH)|AVENUE \d+").to_numpy()
    by_dir: dict[bool, list[tuple[str, str, float]]] = {True: [], False: []}
    for f in range(folds):
        drop = numbered & np.array(
            [zlib.crc32(f"{r.predir} {r.name}".encode()) % folds == f for r in pts.itertuples()]
        )
        hidden = set(pts.loc[drop, "name"])
        inter = ref.intersections
        keep_inter = ~(inter["name_a"].isin(hidden) | inter["name_b"].isin(hidden))
        gc = OfflineGeocoder(
            build_reference(pts.loc[~drop], city="los_angeles", intersections=inter[keep_inter]),
            tuning=tuning,
        )
        for with_predir, rows in by_dir.items():
            for r in pts.loc[drop].itertuples():
                rows.append(_answer(gc, _query_of(r, with_predir), r))
    out["numbered"] = pd.DataFrame(by_dir[True], columns=["precision", "method", "err"])
    out["numbered, pre-direction dropped"] = pd.DataFrame(
        by_dir[False], columns=["precision", "method", "err"]
    )

    # streets known from X AT Y rows: their points hidden whole, the crossings kept
    inter = ref.intersections
    crossed = pts["name"].isin(set(inter["name_a"]) | set(inter["name_b"])).to_numpy()
    rows = []
    for f in range(folds):
        drop = crossed & np.array(
            [zlib.crc32(str(r.name).encode()) % folds == f for r in pts.itertuples()]
        )
        gc = OfflineGeocoder(
            build_reference(pts.loc[~drop], city="los_angeles", intersections=inter),
            tuning=tuning,
        )
        for r in pts.loc[drop].itertuples():
            rows.append(_answer(gc, _query_of(r), r))
    out["crossings"] = pd.DataFrame(rows, columns=["precision", "method", "err"])

    gc = OfflineGeocoder(build_reference(pts, city="los_angeles"), tuning=tuning)
    rows = []
    for r in ref.intersections.itertuples():
        rows.append(_answer(gc, f"{r.name_a} {r.type_a} AT {r.name_b} {r.type_b}, {r.zip}", r))
    out["intersections"] = pd.DataFrame(rows, columns=["precision", "method", "err"])
    return out


def _street_of(r: Any, with_predir: bool = True) -> str:
    parts = (r.predir if with_predir else "", r.name, r.street_type, r.postdir)
    return " ".join(x for x in parts if x)


def _query_of(r: Any, with_predir: bool = True) -> str:
    """``123 W MAIN ST, 90012`` from a reference point (no ZIP part when it has none)."""
    return f"{r.number} {_street_of(r, with_predir)}" + (f", {r.zip}" if r.zip else "")


def _answer(gc: OfflineGeocoder, text: str, r: Any) -> tuple[str, str, float]:
    """(precision, method, error against the row's own lon/lat) of one query."""
    res = gc.lookup(text)
    return str(res.precision), res.method, _err_m(res.lon, res.lat, r.lon, r.lat)


def points_check(
    pts: pd.DataFrame,
    folds: int = 4,
    *,
    with_predir: bool = True,
    city: str = "los_angeles",
    tuning: GeocoderTuning = DEFAULT_TUNING,
) -> pd.DataFrame:
    """Distinct reference addresses in ``folds`` folds, each geocoded against the others."""
    rows: list[tuple[str, str, float]] = []
    fold_of = np.array(
        [zlib.crc32(f"{r.number} {_street_of(r)}".encode()) % folds for r in pts.itertuples()]
    )
    for f in range(folds):
        gc = OfflineGeocoder(build_reference(pts.loc[fold_of != f], city=city), tuning=tuning)
        for r in pts.loc[fold_of == f].itertuples():
            rows.append(_answer(gc, _query_of(r, with_predir), r))
    return pd.DataFrame(rows, columns=["precision", "method", "err"])


def ablation_lines(pts: pd.DataFrame) -> list[str]:
    """Run the ``points`` check with the side-of-street and block-layout models switched off."""
    lines = [
        "| `points` check | house level | median error | p90 error | > 1 km |",
        "|---|---|---|---|---|",
    ]
    variants = [
        ("as shipped", {}),
        ("without the side-of-street model", {"side_of_street": False}),
        ("without the block layout", {"block_layout": False}),
        ("without either", {"side_of_street": False, "block_layout": False}),
    ]
    for label, flags in variants:
        frame = points_check(pts, tuning=dataclasses.replace(DEFAULT_TUNING, **flags))
        h = frame.loc[frame["precision"].isin({str(p) for p in HOUSE_LEVEL})]
        lines.append(
            f"| {label} | {len(h) / len(frame):.1%} | {h['err'].median():.1f} m | "
            f"{h['err'].quantile(0.9):.0f} m | {(h['err'] > 1000).mean():.2%} |"
        )
    return lines


def holdout_lines(checks: dict[str, pd.DataFrame]) -> list[str]:
    """Markdown table of :func:`holdout_2020` by check and method."""
    lines = [
        "| 2020 held-out check | method | answers | share of check | median error | "
        "p90 error | > 1 km |",
        "|---|---|---|---|---|---|---|",
    ]
    house_levels = {str(p) for p in HOUSE_LEVEL} | {str(Precision.INTERSECTION)}
    for check, frame in checks.items():
        h = frame.loc[frame["precision"].isin(house_levels)]
        lines.append(
            f"| {check} ({len(frame)}) | all house-level / intersection answers | {len(h)} | "
            f"{len(h) / len(frame):.1%} | {h['err'].median():.0f} m | "
            f"{h['err'].quantile(0.9):.0f} m | {(h['err'] > 1000).mean():.1%} |"
        )
        for method, g in frame.groupby("method"):
            if not method:
                continue
            prec = g["precision"].iloc[0]
            lines.append(
                f"| {check} ({len(frame)}) | `{method}` ({prec}) | {len(g)} | "
                f"{len(g) / len(frame):.1%} | {g['err'].median():.0f} m | "
                f"{g['err'].quantile(0.9):.0f} m | {(g['err'] > 1000).mean():.1%} |"
            )
    return lines


# ------------------------------------------------------------------ metrics
@dataclass
class Scores:
    """House-level share and error figures of one run."""

    n: int
    house: float
    median_m: float
    p90_m: float
    wrong_street: float
    by_precision: dict[str, int]


def score(frame: pd.DataFrame) -> Scores:
    house = frame["precision"].isin([str(p) for p in HOUSE_LEVEL])
    err = haversine_m(frame["lon"], frame["lat"], frame["true_lon"], frame["true_lat"])
    e = err[house.to_numpy()]
    return Scores(
        n=len(frame),
        house=float(house.mean()),
        median_m=float(np.median(e)) if len(e) else math.nan,
        p90_m=float(np.percentile(e, 90)) if len(e) else math.nan,
        wrong_street=float((e > 1000).mean()) if len(e) else math.nan,
        by_precision=frame["precision"].astype(str).value_counts().to_dict(),
    )


def clear_caches(gc: OfflineGeocoder) -> None:
    gc.clear_caches()
    address_mod._parse_cached.cache_clear()
    address_mod.canonical_name.cache_clear()


def timed(
    gc: OfflineGeocoder, frame: pd.DataFrame, zip_column: str | None, repeat: int = 3
) -> tuple[pd.DataFrame, float, float]:
    """Geocode ``frame`` from cold caches; best CPU seconds and matching wall seconds."""
    best = (math.inf, math.inf)
    out = frame
    for _ in range(repeat):
        clear_caches(gc)
        c0, w0 = time.process_time(), time.perf_counter()
        out = geocode_frame(frame, "Address", gc, zip_column)
        best = min(best, (time.process_time() - c0, time.perf_counter() - w0))
        FIRST_RUN.setdefault(id(frame), time.process_time() - c0)
    return out, best[0], best[1]


#: CPU seconds of the very first run per frame (index caches cold as well).
FIRST_RUN: dict[int, float] = {}


def _commit_of(tree: Path) -> str:
    """Return the short commit id a worktree is at (``?`` when git cannot say)."""
    import subprocess

    got = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    return got.stdout.strip() or "?"


def _dirty(tree: Path) -> bool:
    """Whether ``geo/``, ``data/`` or ``bench/`` have uncommitted changes."""
    import subprocess

    got = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--", "geo", "data",
                          "bench"], capture_output=True, text=True, check=False)  # fmt: skip
    return bool(got.stdout.strip())


def pack_reference(without: tuple[str, ...] = (), **overrides: Any) -> tuple[
    AddressReference, BuildReport
]:
    """Build the Los Angeles pack's reference (optionally without some sources) in memory."""
    pack = load_city_pack("los_angeles")
    plan = pack.reference
    assert plan is not None
    sources = [s for s in plan.sources if s.name not in without]
    settings = {"conflict_m": plan.conflict_m, "coverage_m": plan.coverage_m,
                "place_names": plan.place_names, **overrides}
    return build_from_sources(
        sources, city=pack.name, extent=plan.extent, holdout=plan.holdout, **settings
    )


# ------------------------------------------------------------------ old vs new code
def run_split(
    tree: Path, reference: Path, pasadena: Path, seed: int, out: Path, *, quick: bool = False,
    switch_off: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run ``bench/geocode_split.py`` on ``tree`` in its own process; return its figures."""
    import json
    import subprocess

    cmd = [sys.executable, str(ROOT / "bench" / "geocode_split.py"), "--tree", str(tree),
           "--reference", str(reference), "--pasadena", str(pasadena), "--out", str(out),
           "--seed", str(seed), *(["--quick"] if quick else []),
           *[a for name in switch_off for a in ("--switch-off", name)]]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=tree)
    figures: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return figures


def split_lines(
    old: dict[str, Any], split: dict[str, Any], new: dict[str, Any], old_rate_2: float
) -> list[str]:
    """Markdown comparison of the starting commit's geocoder, the split alone, this code."""

    def same_answers(a: dict[str, Any], b: dict[str, Any]) -> tuple[int, int, int]:
        clean = sum(x == y for x, y in zip(a["answers"], b["answers"], strict=True))
        checks = sum(
            sum(x == y for x, y in zip(a["check_answers"][k], b["check_answers"][k],
                                       strict=True))
            for k in a["check_answers"]
        )  # fmt: skip
        return clean, checks, sum(len(v) for v in a["check_answers"].values())

    lines = [
        "| measure (same 2020-only reference files) | starting commit | the split "
        "(`zip_weighted_models`, `one_numbering_runs` off) | this code as shipped |",
        "|---|---|---|---|",
    ]
    measures = (("house level", "house"), ("median error", "median_m"),
                ("p90 error", "p90_m"), ("wrong street", "wrong_street"))
    runs = (old, split, new)
    for label_part, key in measures:
        fmt = "{:.2%}" if key in ("house", "wrong_street") else "{:.1f} m"
        lines.append(f"| 2017 clean: {label_part} | "
                     + " | ".join(fmt.format(r["clean"][key]) for r in runs) + " |")
    lines.append("| 2017 messy rewrite: house level | "
                 + " | ".join(f"{r['messy']['house']:.2%}" for r in runs) + " |")
    lines.append("| 2017 intersections located | "
                 + " | ".join(f"{r['intersections']['located']:.2%}" for r in runs) + " |")
    for check, a in old["checks"].items():
        cells = [f"{r['checks'][check]['share']:.2%}, {r['checks'][check]['median_m']:.1f} m"
                 for r in runs]  # fmt: skip
        lines.append(f"| 2020 check `{check}` ({a['n']}): house/intersection share, median | "
                     + " | ".join(cells) + " |")
    lines.append(
        f"| throughput, CPU of one process (best of 3) | {old['throughput_cpu_per_s']:,.0f}/s "
        f"(again after: {old_rate_2:,.0f}/s) | {split['throughput_cpu_per_s']:,.0f}/s | "
        f"{new['throughput_cpu_per_s']:,.0f}/s |"
    )
    lines.append("")
    for label, other in (("the split", split), ("this code as shipped", new)):
        clean, checks, total = same_answers(old, other)
        lines.append(
            f"Answers of {label} identical to the starting commit's (position to 1e-9 degree "
            f"and precision) on {clean:,} of {len(old['answers']):,} 2017 clean rows, and "
            f"(precision, method, error) on {checks:,} of {total:,} answers of the 2020 checks."
        )
    return lines


# ------------------------------------------------------------------ Venice targets
def venice_set(addrs: pd.DataFrame) -> pd.DataFrame:
    """Distinct 2017 addresses in ZIP 90291/90292 (``row``: position in ``addrs``)."""
    v = addrs.loc[addrs["ZipCode"].isin(VENICE_ZIPS)]
    return v.drop_duplicates("Address").reset_index(names="row")


def county_held(ven: pd.DataFrame, ref: AddressReference) -> np.ndarray:
    """Whether the County layer holds each address.

    The same number, street name and ZIP, and the same street type where both have one
    (``31 ROSE CT`` is not ``31 E ROSE AVE``); the pre-direction is not compared (the
    County layer mostly has none).
    """
    cams = ref.points.loc[ref.points["source"] == COUNTY]
    types: dict[tuple[int, str, str], set[str]] = {}
    for n, name, t, z in zip(cams["number"], cams["name"], cams["street_type"], cams["zip"],
                             strict=True):  # fmt: skip
        types.setdefault((int(n), str(name), str(z)), set()).add(str(t))
    parsed = [parse_address(t, z) for t, z in zip(ven["Address"], ven["ZipCode"], strict=True)]
    out = []
    for p in parsed:
        have = types.get((p.number or -1, p.street.name, p.zip), set())
        out.append(bool(have) and (not p.street.street_type or "" in have
                                   or p.street.street_type in have))  # fmt: skip
    return np.array(out, dtype=bool)


@dataclass
class VeniceFigures:
    """Figures of one configuration on the Venice set."""

    label: str
    house: float
    median_m: float
    p90_m: float
    held_point: int
    held_within_30: int
    misses: list[str]
    miss_rows: list[int] = dataclasses.field(default_factory=list)


def venice_figures(
    label: str, ven: pd.DataFrame, held: np.ndarray, lon: np.ndarray, lat: np.ndarray,
    precision: list[str], source: list[str] | None,
) -> VeniceFigures:  # fmt: skip
    err = haversine_m(lon, lat, ven["true_lon"], ven["true_lat"])
    house = np.isin(precision, [str(p) for p in HOUSE_LEVEL])
    e = err[house]
    at_point = np.array(
        [p == "point" and (source is None or s == COUNTY)
         for p, s in zip(precision, source or [""] * len(precision), strict=True)]
    )  # fmt: skip
    ok = held & at_point & (err <= 30.0)
    misses = [
        f"`{a}`: {p}" + (f" from `{s}`" if s else "") + f", {d:.0f} m"
        for a, p, s, d, h, k in zip(ven["Address"], precision, source or [""] * len(ven), err,
                                    held, ok, strict=True)
        if h and not k
    ]  # fmt: skip
    return VeniceFigures(
        label, float(house.mean()), float(np.median(e)) if len(e) else math.nan,
        float(np.percentile(e, 90)) if len(e) else math.nan, int((held & at_point).sum()),
        int(ok.sum()), misses, [int(i) for i in np.flatnonzero(held & ~ok)],
    )  # fmt: skip


def _label_of(r: pd.Series) -> str:
    parts = (r["number"], r["predir"], r["name"], r["street_type"], r["postdir"])
    return " ".join(str(x) for x in parts if str(x))


def county_facts(
    ven: pd.DataFrame, rows: list[int], ref: AddressReference, nocams_ref: AddressReference
) -> list[str]:
    """Say what the County layer and the 2020 requests hold for each County-held miss.

    The County points of the address (how many source rows were merged into them), their
    distance to the city's 2017 coordinate, the County points nearest that coordinate, and
    the 2020 request point of the address (``nocams_ref``: not superseded) if any.
    """
    kx = 111_320.0 * math.cos(math.radians(34.0))
    ky = 110_574.0
    pts = ref.points
    cams = pts.loc[pts["source"] == COUNTY].reset_index(drop=True)
    reqs = nocams_ref.points
    cx, cy = cams["lon"].to_numpy() * kx, cams["lat"].to_numpy() * ky
    out = []
    for i in rows:
        r = ven.iloc[i]
        p = parse_address(r["Address"], r["ZipCode"])
        lon, lat = float(r["true_lon"]), float(r["true_lat"])
        same = ((cams["number"] == p.number) & (cams["name"] == p.street.name)
                & (cams["zip"] == p.zip)).to_numpy()  # fmt: skip
        d_all = np.hypot(cx - lon * kx, cy - lat * ky)
        mine: list[dict[str, Any]] = cams.loc[same].to_dict("records")  # type: ignore[assignment]
        county = "; ".join(
            f"({m['lon']:.6f}, {m['lat']:.6f}), {int(m['n_obs'])} "
            f"row{'s' if m['n_obs'] > 1 else ''}, {d_all[k]:.1f} m from the city's coordinate"
            for k, m in zip(np.flatnonzero(same), mine, strict=True)
        )  # fmt: skip
        near = np.argsort(d_all)[:2]
        nearest = " and ".join(f"{_label_of(cams.iloc[k])} ({d_all[k]:.1f} m)" for k in near)
        req: list[dict[str, Any]] = reqs.loc[
            (reqs["number"] == p.number) & (reqs["name"] == p.street.name)
            & (reqs["zip"] == p.zip)
        ].to_dict("records")  # type: ignore[assignment]  # fmt: skip
        if req:
            q = req[0]
            dq_city = math.hypot((q["lon"] - lon) * kx, (q["lat"] - lat) * ky)
            dq_c = min(math.hypot((q["lon"] - m["lon"]) * kx, (q["lat"] - m["lat"]) * ky)
                       for m in mine)  # fmt: skip
            in_2020 = (f"the 2020 requests hold it ({int(q['n_obs'])} request"
                       f"{'s' if q['n_obs'] > 1 else ''} at ({q['lon']:.6f}, {q['lat']:.6f})), "
                       f"{dq_c:.1f} m from the County point and {dq_city:.1f} m from the "
                       "city's 2017 coordinate")  # fmt: skip
        else:
            in_2020 = "the 2020 requests do not hold it"
        out.append(
            f"`{r['Address']}`: city's 2017 coordinate ({lon:.6f}, {lat:.6f}); County "
            f"point{'s' if len(mine) > 1 else ''} {county}; the County points nearest the "
            f"city's coordinate are {nearest}; {in_2020}"
        )
    return out


def venice_of(
    label: str, gc: OfflineGeocoder, ven: pd.DataFrame, held: np.ndarray
) -> VeniceFigures:
    res = [gc.lookup(a, z) for a, z in zip(ven["Address"], ven["ZipCode"], strict=True)]
    lon = np.array([np.nan if r.lon is None else r.lon for r in res])
    lat = np.array([np.nan if r.lat is None else r.lat for r in res])
    return venice_figures(label, ven, held, lon, lat, [str(r.precision) for r in res],
                          [r.source for r in res])


def venice_2020_coverage(cover_m: list[float | None], folds: int = 4) -> list[str]:
    """Run the tuning check of ``coverage_m``: 2020 Venice addresses held out by fold.

    Each fold of the distinct 2020 request addresses in 90291/90292 is geocoded against
    the County points plus the other folds, with derived points superseded within
    ``cover_m`` of a County point of their street (None: never); error against the
    city's 2020 coordinates. Built from the 2020 extract and the County layer alone.
    """
    full, _ = pack_reference()
    cams_pts = full.points.loc[full.points["source"] == COUNTY]
    nocams, _ = pack_reference(without=(COUNTY,))  # every request point, none superseded
    reqs = nocams.points.reset_index(drop=True)
    held_out = reqs.loc[reqs["zip"].isin(VENICE_ZIPS)]
    fold_of = np.array([zlib.crc32(_query_of(r).encode()) % folds for r in held_out.itertuples()])
    rows = ["| `coverage_m` | 2020 Venice addresses | house level | median error | p90 error |",
            "|---|---|---|---|---|"]  # fmt: skip
    for cover in cover_m:
        got = []
        for f in range(folds):
            test = held_out.loc[fold_of == f]
            train = reqs.loc[~reqs.index.isin(test.index)]
            merged = _merge_with_cams(cams_pts, train, cover)
            gc = OfflineGeocoder(build_reference(merged, city="los_angeles"))
            got += [_answer(gc, _query_of(r), r) for r in test.itertuples()]
        frame = pd.DataFrame(got, columns=["precision", "method", "err"])
        h = frame.loc[frame["precision"].isin({str(p) for p in HOUSE_LEVEL})]
        label = "never" if cover is None else f"{cover:.0f} m"
        rows.append(f"| {label} | {len(frame)} | {len(h) / len(frame):.1%} | "
                    f"{h['err'].median():.1f} m | {h['err'].quantile(0.9):.0f} m |")
    return rows


def outside_venice_rows(folds: int = 4) -> list[str]:
    """2020 request points outside Venice in folds, with and without the County layer.

    The check the ZIP weighting of the numbering models was chosen on: a complete layer
    of one neighbourhood must not move the answers elsewhere.
    """
    full, _ = pack_reference()
    cams_pts = full.points.loc[full.points["source"] == COUNTY]
    nocams, _ = pack_reference(without=(COUNTY,))
    pts = nocams.points.loc[~nocams.points["zip"].isin(VENICE_ZIPS)].reset_index(drop=True)
    fold_of = np.array(
        [zlib.crc32(f"{r.number} {_street_of(r)}".encode()) % folds for r in pts.itertuples()]
    )
    rows = ["| 2020 points outside 90291/90292, 4 folds | house level | median error | "
            "p90 error |", "|---|---|---|---|"]  # fmt: skip
    unweighted = dataclasses.replace(DEFAULT_TUNING, zip_weighted_models=False)
    variants = (
        ("2020 requests only", None, DEFAULT_TUNING),
        ("with the County layer, every point weighted the same", cams_pts, unweighted),
        ("with the County layer, ZIP-weighted models (shipped)", cams_pts, DEFAULT_TUNING),
    )
    for label, extra, tuning in variants:
        got = []
        for f in range(folds):
            train = pts.loc[fold_of != f]
            if extra is not None:
                train = pd.concat([extra, train], ignore_index=True)
            gc = OfflineGeocoder(build_reference(train, city="los_angeles"), tuning=tuning)
            got += [_answer(gc, _query_of(r), r) for r in pts.loc[fold_of == f].itertuples()]
        frame = pd.DataFrame(got, columns=["precision", "method", "err"])
        h = frame.loc[frame["precision"].isin({str(p) for p in HOUSE_LEVEL})]
        rows.append(f"| {label} ({len(frame)}) | {len(h) / len(frame):.1%} | "
                    f"{h['err'].median():.1f} m | {h['err'].quantile(0.9):.0f} m |")
    return rows


def _merge_with_cams(
    cams: pd.DataFrame, derived: pd.DataFrame, cover: float | None
) -> pd.DataFrame:
    """County points plus the derived points not within ``cover`` m of one of their street."""
    if cover is None:
        return pd.concat([cams, derived], ignore_index=True)
    from scipy.spatial import cKDTree

    kx = 111_320.0 * math.cos(math.radians(34.0))
    keep = np.ones(len(derived), dtype=bool)
    street = ["predir", "name", "street_type", "postdir"]
    by_street = {k: np.column_stack([g["lon"] * kx, g["lat"] * 110_574.0])
                 for k, g in cams.groupby(street)}  # fmt: skip
    for i, r in enumerate(derived.itertuples()):
        xy = by_street.get((r.predir, r.name, r.street_type, r.postdir))
        if xy is not None and cKDTree(xy).query([r.lon * kx, r.lat * 110_574.0])[0] <= cover:
            keep[i] = False
    return pd.concat([cams, derived.loc[keep]], ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--seed", type=int, default=20171227)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a worktree of the starting commit: its geocoder is measured in the "
                         "same run, on the same inputs")  # fmt: skip
    args = ap.parse_args()

    old: dict[str, Any] | None = None
    split: list[str] = []
    if args.baseline is not None:
        import tempfile

        base = args.baseline.resolve()
        base_ref = base / "data/reference/los_angeles.parquet"
        base_pas = base / "data/reference/pasadena.parquet"
        with tempfile.TemporaryDirectory() as tmp:
            old = run_split(base, base_ref, base_pas, args.seed, Path(tmp) / "old.json")
            only_split = run_split(ROOT, base_ref, base_pas, args.seed, Path(tmp) / "split.json",
                                   switch_off=("zip_weighted_models", "one_numbering_runs"))
            new = run_split(ROOT, base_ref, base_pas, args.seed, Path(tmp) / "new.json")
            again = run_split(base, base_ref, base_pas, args.seed, Path(tmp) / "again.json",
                              quick=True)
        split = split_lines(old, only_split, new, again["throughput_cpu_per_s"])

    t0 = time.perf_counter()
    ref, report = pack_reference()
    t_build = time.perf_counter() - t0
    nocams_ref, _ = pack_reference(without=(COUNTY,))
    t0 = time.perf_counter()
    gc = OfflineGeocoder(ref)
    t_index = time.perf_counter() - t0
    gc_nocams = OfflineGeocoder(nocams_ref)

    addrs, inters = load_eval()
    ven = venice_set(addrs)
    held = county_held(ven, ref)
    venice = [
        venice_of("pack reference (County points + 2020 requests)", gc, ven, held),
        venice_of("2020 requests only (County layer left out)", gc_nocams, ven, held),
    ]
    if old is not None:
        rows_old = [old["answers"][i] for i in ven["row"]]
        venice.append(venice_figures(
            "starting commit (its own 2020-only reference)", ven, held,
            np.array([np.nan if a[0] is None else a[0] for a in rows_old]),
            np.array([np.nan if a[1] is None else a[1] for a in rows_old]),
            [a[2] for a in rows_old], None,
        ))  # fmt: skip
    facts = county_facts(ven, venice[0].miss_rows, ref, nocams_ref)
    cams_pts = ref.points.loc[ref.points["source"] == COUNTY]
    one_each = all(
        int(cams_pts.loc[(cams_pts["number"] == p.number) & (cams_pts["name"] == p.street.name)
                         & (cams_pts["zip"] == p.zip), "n_obs"].sum()) == 1
        for p in (parse_address(ven.iloc[i]["Address"], ven.iloc[i]["ZipCode"])
                  for i in venice[0].miss_rows)
    )  # fmt: skip
    coverage_rows = venice_2020_coverage([None, 100.0, 200.0, 400.0])
    outside_rows = outside_venice_rows()

    # naive baseline, same rows
    base = NaiveBaseline(REF_CSV)
    b_lon, b_lat, b_prec = [], [], []
    for text in addrs["Address"]:
        got = base.locate(text)
        b_lon.append(got[0] if got else np.nan)
        b_lat.append(got[1] if got else np.nan)
        b_prec.append("interpolated" if got else "none")
    base_frame = addrs.assign(lon=b_lon, lat=b_lat, precision=b_prec)
    s_base = score(base_frame)

    # offline geocoder, cold caches, timed end to end (CPU time of this process, best of
    # 3: the machine is shared, wall time measures the neighbours as much as us)
    out, t_batch, w_batch = timed(gc, addrs, "ZipCode")
    s_off = score(out)
    out_nocams, _, _ = timed(gc_nocams, addrs, "ZipCode", repeat=1)
    s_nocams = score(out_nocams)
    out_i, t_inter, _ = timed(gc, inters, "ZipCode")
    located_i = out_i["precision"] == str(Precision.INTERSECTION)
    err_i = haversine_m(out_i["lon"], out_i["lat"], out_i["true_lon"], out_i["true_lat"])[
        located_i.to_numpy()
    ]

    rng_x = random.Random(args.seed)
    messy_i = inters.assign(
        Address=[
            rewrite_intersection(t, z, rng_x)
            for t, z in zip(inters["Address"], inters["ZipCode"], strict=True)
        ]
    )
    out_mi = geocode_frame(messy_i, "Address", gc)
    located_mi = out_mi["precision"] == str(Precision.INTERSECTION)

    rng = random.Random(args.seed)
    rewritten = [
        rewrite(t, z, rng) for t, z in zip(addrs["Address"], addrs["ZipCode"], strict=True)
    ]
    messy = addrs.assign(Address=[t for t, _ in rewritten])
    as_block = np.array([b for _, b in rewritten])
    out_m, t_messy, _ = timed(gc, messy, None)
    s_messy = score(out_m)

    # reverse: random points inside the reference extent
    r = np.random.default_rng(args.seed)
    lons = r.uniform(ref.points["lon"].quantile(0.02), ref.points["lon"].quantile(0.98), 5000)
    lats = r.uniform(ref.points["lat"].quantile(0.02), ref.points["lat"].quantile(0.98), 5000)
    t0 = time.process_time()
    for lo, la in zip(lons, lats, strict=True):
        gc.reverse_lookup(float(lo), float(la))
    t_rev = (time.process_time() - t0) / len(lons)

    rate = len(addrs) / t_batch
    holdout_ref = nocams_ref
    checks = holdout_2020(holdout_ref)
    pasadena = load_reference(ROOT / "data/reference/pasadena.parquet").points
    checks["Pasadena points"] = points_check(pasadena.reset_index(drop=True), city="pasadena")
    rate_messy = len(messy) / t_messy
    lines = [
        "## Geocoding",
        "",
        f"Command: `{COMMAND}` (seed {args.seed}"
        + (f"; the baseline worktree is at commit {_commit_of(args.baseline)}"
           if args.baseline is not None else "; no baseline")
        + "); "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, code of commit {_commit_of(ROOT)}"
        + (" with uncommitted changes to the geocoder" if _dirty(ROOT) else "")
        + f", Python {platform.python_version()}, one process on a shared 2-core machine.",
        "",
        "Reference: what the Los Angeles pack builds (`dispatch geo build-reference`): "
        + "; ".join(f"`{c.name}` {c.kept:,} points ({c.rows:,} rows, {c.superseded} "
                    f"superseded by a more authoritative source, {c.covered} covered by it)"
                    for c in report.counts)
        + f"; {len(ref.points):,} points, {len(ref.intersections)} intersections; "
        f"{sum(c.kind == 'duplicate' for c in report.conflicts)} addresses more than 30 m "
        "apart between sources, "
        f"{sum(c.kind == 'outlier' for c in report.conflicts)} points far from their street. "
        f"Build {t_build:.2f} s, index {t_index:.2f} s. The 2017 file never feeds it.",
        "",
        *(["### The split into `geo/geocoding/` against the starting commit", "",
           "The starting commit's geocoder (`geo/geocoder.py`, a worktree of commit 020ebb8) "
           "and this code, each in its own process of this run, on the starting commit's "
           "2020-only reference files. The middle column is the split alone: this code with "
           "the two deliberate model changes since switched off through its tuning "
           "(`zip_weighted_models`, which keeps the dense County layer from setting the "
           "city-wide numbering models, and `one_numbering_runs`, which keeps two numberings "
           "of one street name out of one run); the last column is this code as shipped. "
           "The runs rule also changes which odd/even pairs the side-of-street distance is "
           "learnt from (by centimetres on these files), so many answers of the last column "
           "move by more than 1e-9 degree, nearly all by less than 0.1 m.", "", *split, ""]
          if split else []),
        "### Venice and Marina del Rey",
        "",
        f"The {len(ven)} distinct 2017 addresses (not `X AT Y`) with the city's coordinates in "
        f"ZIP {' and '.join(VENICE_ZIPS)}, held out (the 2017 file never feeds a reference). "
        f"The County layer holds {int(held.sum())} of them (same number, street name and ZIP). "
        "Error = distance to the city's 2017 coordinates.",
        "",
        "| reference | house level | median error | p90 error | County-held answered at `point` "
        "from the County layer | ... and within 30 m |",
        "|---|---|---|---|---|---|",
        *[f"| {v.label} | {v.house:.1%} | {v.median_m:.1f} m | {v.p90_m:.0f} m | "
          f"{v.held_point} of {int(held.sum())} | {v.held_within_30} of {int(held.sum())} |"
          for v in venice],
        "",
        "County-held addresses not answered at `point` from the County layer within 30 m "
        "(pack reference): " + ("; ".join(venice[0].misses) or "none") + ".",
        "",
        *([("What the layers hold for them (lon, lat):" + (
            " each is a single County point (one source row, no unit), so no rule for merging "
            "an address's several County points can move it: the County point itself is more "
            "than 30 m from the city's coordinate; the points nearest that coordinate are other "
            "addresses."
            if one_each else ""))]
          + [f"- {f}." for f in facts] + [""] if facts else []),
        "Whole 2017 set, same run: "
        + (f"starting commit {old['clean']['house']:.1%} house level, median "
           f"{old['clean']['median_m']:.1f} m, wrong street {old['clean']['wrong_street']:.3%}; "
           if old is not None else "")
        + f"2020 requests only {s_nocams.house:.1%}, {s_nocams.median_m:.1f} m, "
        f"{s_nocams.wrong_street:.3%}; pack reference {s_off.house:.1%}, "
        f"{s_off.median_m:.1f} m, {s_off.wrong_street:.3%} "
        f"({round(s_off.wrong_street * s_off.house * s_off.n)} of "
        f"{round(s_off.house * s_off.n)} house-level answers). "
        "A run (the stretch of a street interpolated along) holds one numbering: two points "
        "of a street join one only if their numbers are at most a block (100) plus one per "
        f"{DEFAULT_TUNING.m_per_number_min} m apart (`m_per_number_min`), so the County's W "
        "Venice Blvd 915-1020, numbered from the beach, no longer joins the city grid's "
        "5080-13000 and anchors interpolations of W Venice Blvd 3309-4070 in 90019 "
        "(at commit 8e76d97, before this rule: 4.7-7.2 km off).",
        "",
        "Tuning check of `coverage_m` (a request point gives way to a County point of its "
        "street within it), built from the 2020 requests and the County layer alone: the "
        "distinct 2020 request addresses of 90291/90292 in 4 folds, each geocoded against "
        "the County points and the other folds; error against the city's 2020 coordinates. "
        "The pack ships 200 m.",
        "",
        *coverage_rows,
        "",
        "The numbering models (block layout, side-of-street distance) are learnt from the "
        "whole reference with each ZIP's weight capped at the 90th percentile of ZIP sizes, "
        "so the County's dense Venice layer does not set them for the whole city; check "
        "(same construction, the 2020 points outside Venice):",
        "",
        *outside_rows,
        "",
        "### The 2017 set",
        "",
        f"Evaluation: 2017 MyLA311 rows with coordinates: {len(addrs)} addresses, "
        f"{len(inters)} intersections (`X AT Y`). Error = great-circle distance to the "
        "2017 coordinates. House level = precision `point` or `interpolated`; "
        "wrong street = house-level answer more than 1 km off. House-level shares are of all "
        "rows of the input (row count in brackets).",
        "",
        "| input | method | house level | median error | p90 error | wrong street (>1 km) |",
        "|---|---|---|---|---|---|",
    ]
    confident = out.loc[out["confidence"] >= 0.5]
    s_conf = score(confident)
    conf_house = confident["precision"].isin([str(p) for p in HOUSE_LEVEL])
    s_conf.house = float(conf_house.sum()) / len(out)
    s_conf.n = len(out)
    strict = OfflineGeocoder(ref, tuning=dataclasses.replace(DEFAULT_TUNING, long_walks=False))
    s_strict = score(geocode_frame(addrs, "Address", strict, "ZipCode"))
    for label, method, s in (
        ("clean 2017 addresses", "naive exact-street interpolation", s_base),
        ("clean 2017 addresses", "offline geocoder", s_off),
        ("clean 2017 addresses", "offline geocoder, only answers with confidence >= 0.5", s_conf),
        ("clean 2017 addresses", "offline geocoder, `long_walks=False`", s_strict),
        ("messy rewrite (seeded)", "offline geocoder", s_messy),
    ):
        lines.append(
            f"| {label} | {method} | {s.house:.1%} ({s.n}) | {s.median_m:.1f} m | "
            f"{s.p90_m:.0f} m | {s.wrong_street:.2%} |"
        )
    m_house = out_m["precision"].isin([str(p) for p in HOUSE_LEVEL]).to_numpy()
    m_block = as_block & (out_m["precision"] == str(Precision.BLOCK)).to_numpy()
    lines += [
        "",
        f"Messy rewrite: {as_block.sum()} of {len(messy)} rows were rewritten as `N block of`, "
        "which can only be answered at `block` precision; counting those block answers, "
        f"{(m_house | m_block).mean():.1%} of the messy rows are located at house or "
        f"requested-block level (clean: {s_off.house:.1%}).",
        "",
        f"Intersections: {located_i.mean():.1%} of {len(inters)} located as `intersection`, "
        f"median error {np.median(err_i):.0f} m, p90 {np.percentile(err_i, 90):.0f} m; "
        f"the same rows typed the way residents write a corner (seeded: types dropped, `&`, "
        f"`and`, `/`, `corner of`, case): {located_mi.mean():.1%} located.",
        "",
        "Precision of the clean run: "
        + ", ".join(f"{k} {v}" for k, v in sorted(s_off.by_precision.items()))
        + ".",
        "Precision of the messy run: "
        + ", ".join(f"{k} {v}" for k, v in sorted(s_messy.by_precision.items()))
        + ".",
        "",
        f"Throughput (`geocode_frame`, parse to output columns, CPU time of one process, best "
        "of 3; the query caches (parse, street-name resolution, answers) are cleared before "
        "each run, the caches derived from the reference alone (local house-number grid fits, "
        "street directions) stay warm after the first run, which took "
        f"{FIRST_RUN[id(addrs)]:.2f} s CPU = {len(addrs) / FIRST_RUN[id(addrs)]:,.0f}/s): "
        f"clean {rate:,.0f} addresses/s "
        f"(wall {len(addrs) / w_batch:,.0f}/s "
        f"on the shared machine), messy {rate_messy:,.0f} addresses/s, intersections "
        f"{len(inters) / t_inter:,.0f}/s. Reverse (nearest address point, cKDTree): "
        f"{t_rev * 1e3:.3f} ms CPU per point over 5,000 random points.",
        "",
    ]
    methods = [
        gc.lookup(t, z).method for t, z in zip(addrs["Address"], addrs["ZipCode"], strict=True)
    ]
    house_mask = out["precision"].isin([str(p) for p in HOUSE_LEVEL]).to_numpy()
    err_all = haversine_m(out["lon"], out["lat"], out["true_lon"], out["true_lat"])
    by_method = pd.DataFrame({"method": methods, "err": err_all})[house_mask]
    conf_frame = pd.DataFrame({"conf": out["confidence"], "err": err_all})[house_mask]
    conf_bins = pd.cut(conf_frame["conf"], [0.0, 0.3, 0.5, 0.7, 0.9, 1.0], include_lowest=True)
    confidence_rows = [
        f"| {max(b.left, 0.0):.1f}-{b.right:.1f} | {len(g)} | {g['err'].median():.0f} m | "
        f"{g['err'].quantile(0.9):.0f} m | {(g['err'] > 1000).mean():.1%} |"
        for b, g in conf_frame.groupby(conf_bins, observed=True)
    ]
    method_rows = [
        f"| `{m}` | {len(g)} | {g['err'].median():.0f} m | {g['err'].quantile(0.9):.0f} m | "
        f"{(g['err'] > 1000).mean():.1%} |"
        for m, g in by_method.groupby("method")
    ]
    known = set(gc.names)
    parsed = [
        address_mod.parse_address(t, z)
        for t, z in zip(addrs["Address"], addrs["ZipCode"], strict=True)
    ]
    is_unknown = np.array([p.street.name not in known for p in parsed])
    unknown = float(is_unknown.mean())
    ceiling = 1.0 - unknown
    ordinal_unknown = int((is_unknown & house_mask & (np.array(methods) == "ordinal")).sum())
    parsed_i = [
        address_mod.parse_address(t, z)
        for t, z in zip(inters["Address"], inters["ZipCode"], strict=True)
    ]
    inter_unknown = float(
        np.mean(
            [
                p.street.name not in known
                or p.cross_street is None
                or p.cross_street.name not in known
                for p in parsed_i
            ]
        )
    )
    messy_loss = s_off.house - s_messy.house
    messy_loss_blocks = s_off.house - float((m_house | m_block).mean())
    clean_house = out["precision"].isin([str(p) for p in HOUSE_LEVEL]).to_numpy()
    # rows that were house level when clean and asked for a block when messy: a loss no
    # honest geocoder can avoid under the raw definition
    block_floor = float((as_block & clean_house).mean())
    i_med = float(np.median(err_i))
    targets = [
        ("house level (clean)", ">= 85%", f"{s_off.house:.1%}", s_off.house >= 0.85),
        ("median error, house level", "<= 40 m", f"{s_off.median_m:.1f} m", s_off.median_m <= 40),
        ("p90 error, house level", "<= 300 m", f"{s_off.p90_m:.0f} m", s_off.p90_m <= 300),
        ("wrong street (> 1 km)", "< 2%", f"{s_off.wrong_street:.2%}", s_off.wrong_street < 0.02),
        ("intersections located", ">= 80%", f"{located_i.mean():.1%}", located_i.mean() >= 0.8),
        ("intersection median error", "<= 75 m", f"{i_med:.0f} m", i_med <= 75),
        ("messy: loss, `block` answers to `N block of` rows counted", "<= 3 points",
         f"{messy_loss_blocks * 100:.1f} points", messy_loss_blocks <= 0.03),
        ("messy: raw house-level loss (see note)", "<= 3 points",
         f"{messy_loss * 100:.1f} points (floor {block_floor * 100:.1f})",
         messy_loss <= 0.03),
        ("batch throughput (CPU, one core)", ">= 5,000/s", f"{rate:,.0f}/s", rate >= 5000),
        ("Venice/MdR: house level", ">= 90%", f"{venice[0].house:.1%}", venice[0].house >= 0.9),
        ("Venice/MdR: median error", "<= 8 m", f"{venice[0].median_m:.1f} m",
         venice[0].median_m <= 8),
        ("Venice/MdR: County-held at `point`, within 30 m", f"all {int(held.sum())}",
         f"{venice[0].held_within_30}", venice[0].held_within_30 == int(held.sum())),
        ("whole 2017 set: house level no worse than the starting commit",
         f">= {old['clean']['house']:.1%}" if old is not None else "(needs --baseline)",
         f"{s_off.house:.1%}", old is not None and s_off.house >= old["clean"]["house"]),
        ("whole 2017 set: wrong street no worse than the starting commit",
         f"<= {old['clean']['wrong_street']:.3%}" if old is not None else "(needs --baseline)",
         f"{s_off.wrong_street:.3%}",
         old is not None and s_off.wrong_street <= old["clean"]["wrong_street"]),
        ("whole 2017 set: median error no worse than the starting commit",
         f"<= {old['clean']['median_m']:.1f} m" if old is not None else "(needs --baseline)",
         f"{s_off.median_m:.1f} m",
         old is not None and s_off.median_m <= old["clean"]["median_m"]),
        ("reverse per point", "< 1 ms", f"{t_rev * 1e3:.3f} ms", t_rev < 1e-3),
    ]  # fmt: skip
    lines += ["| target | wanted | measured | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {'yes' if ok else '**no**'} |" for a, b, c, ok in targets]
    lines += [
        "",
        f"Why the house-level target is missed: {unknown:.1%} of the 2017 address rows are on a "
        "street name that appears nowhere in the reference (neither as an address nor in an "
        "`X AT Y` row; the County points cover only Venice and Marina del Rey, elsewhere the "
        "2020 requests are all there is), so the ceiling for house level by street name is about "
        f"{ceiling:.1%}, below the 85% target. Those names are not spelling variants of "
        "2020 names: no alias, Saint/Mount/Fort, ordinal or squeezed-space form matches, and "
        "the nearest names by edit distance are other streets (FULLER/TULLER, "
        "FREMONT/TREMONT, JUDSON/HUDSON, AVENUE 58/AVENUE 50), so fuzzier matching would only "
        "add wrong streets. Numbered streets are the exception: "
        f"{ordinal_unknown} of those rows are located between the numbered streets either "
        "side (`ordinal`); the rest are answered with precision `zip` (or `none` without a "
        "ZIP), never with a guessed house. Most of the rest of the gap is streets known only "
        "far from the query ZIP (answered `zip`), a pre-direction the 2020 file lacks on "
        "that street (`street`, or `across` below), and grid walks too long to trust (their "
        "end must land among reference points of the query ZIP).",
        "The median error is bounded by the data: most 2020 streets carry only a handful of "
        "points, so many answers walk the city's house-number grid from the nearest known "
        "number (methods `grid*`, lower confidence), and even interpolation between two known "
        "numbers is off by the varying depth of the points (table below; the 2020 held-out "
        "check shows the same pattern). Two models learnt from the reference itself take out "
        "the systematic part (ablation table at the end): odd and even numbers face each "
        "other across the street a steady distance apart (in LA odd numbers stand on the "
        "west side of north-south streets and the north side of east-west ones, about "
        "25-31 m from the even side, learnt per pre-direction), so every estimate is moved "
        "to its number's side; and blocks use the low numbers of each hundred (half the "
        "2020 numbers end in 00-28), so a number is placed within its block by that "
        "distribution rather than linearly. Filtering on confidence, or turning the long "
        "grid walks off (`long_walks=False`), trades coverage for accuracy (rows above); the "
        "default keeps the long walks, labelled `grid-long` with confidence 0.3.",
        "",
        "Confidence follows the error (clean run, house-level answers); the routing gate "
        "sends interpolated answers below 0.5 to the Needs location queue:",
        "",
        "| confidence | answers | median error | p90 error | > 1 km |",
        "|---|---|---|---|---|",
        *confidence_rows,
        "",
        "| method (clean run, house level) | answers | median error | p90 error | > 1 km |",
        "|---|---|---|---|---|",
        *method_rows,
        "",
        "Methods: `exact` the address is in the reference; `between` two known numbers on the "
        "street; `beyond` up to 300 numbers past the last known one, along the street's own "
        "local gradient; `grid` / `grid-blind` walked along the street with the local "
        "house-number grid (street direction known / assumed from the grid), refined with the "
        "same numbers on nearby parallel streets; `grid-long` a longer walk (up to 8,000 "
        "numbers, confidence 0.3) kept only where 2 of the 3 nearest reference points carry "
        "the query ZIP (`GeocoderTuning(long_walks=False)` turns it off); `near-end` "
        "within 20 numbers of a lone point; `across` / `across-blind` the query's "
        "pre-direction has no run near its ZIP (e.g. `1100 N X ST` where only `S X ST` is "
        "known): walked from the opposite run's lowest number through the divide line into "
        "the query side's number field, only with a ZIP, only for numbers up to 1,200, "
        "confidence at most 0.3. An explicit pre-direction is never answered with the "
        "opposite one's point (`1400 N GAFFEY` is not `1400 S GAFFEY`): without a walk it "
        "is `street` precision. `ordinal` a numbered street (`W 37TH ST`, `AVENUE 58`) "
        "unknown near the query ZIP, placed between the same number on the nearest numbered "
        "streets either side (up to 3 names away, each located at house level, a plausible "
        "block spacing apart; ZIP required; confidence at most 0.55, less without a "
        "pre-direction); "
        "`crossing-walk` a street known near the ZIP only from `X AT Y` rows, walked along "
        "the number field from the crossing nearest in number (ZIP and pre-direction "
        "required; confidence at most 0.45). A street known only more than 3 km outside the "
        "query ZIP is answered at `zip` precision, the far stretches listed as candidates. "
        "A `1200 block of` query is answered at `block` precision, at the block's middle "
        "number or, failing that, at a known number inside the block (`in-block`). "
        "Without a pre-direction, a run whose known numbers span the query's number counts "
        "for nothing unless the estimate also fits the query ZIP.",
        f"Intersections: {inter_unknown:.1%} of the 2017 `X AT Y` rows name a street unknown "
        "to the 2020 extract; those get `street` (the known street) or `zip` precision, so "
        f"the ceiling is about {1 - inter_unknown:.1%}. Most of the other misses have one "
        "street known from a single point or only kilometres away, where the crossing of "
        "the two fitted lines falls outside the query ZIP or beyond 6 km from both streets' "
        "points (rejected rather than guessed); the 80% target is missed for that reason. "
        "Loosening the foot-point rule (nearest points of the two streets within 400 m) to "
        "800 m added 3 of 469 located on the 2020 held-out check, and reading the crossing off "
        "the house-number field (the cross street's number line) added 7 with half of them "
        "over 1 km off, so neither was kept.",
        f"Messy input: the rewriter turns {as_block.mean():.0%} of the rows into `N block of`, "
        "whose honest answer is `block` precision (a `1200 block of` query names a block, "
        "not a house; answering it at house level would mislabel a guess). Under the raw "
        "definition those rows alone cost "
        f"{block_floor * 100:.1f} points, more than the 3-point target, so the target is "
        "measured with `block` answers to block-phrased rows counted as located; the other "
        "rewrites (case, spelled-out or dropped types and directionals, one typo, units, "
        "`near`/`in front of`/`across from`) "
        f"cost {messy_loss_blocks * 100:.1f} points. The rewriter never misspells the first "
        "letter of a name, and the geocoder only corrects typos among names that share the "
        "first letter, so first-letter typos are neither measured nor corrected (the 2017 "
        "unknown names above show why a wider typo search would mostly find other streets).",
        "",
        "Tuning set: the limits of the `across` walks, the `ordinal` and `crossing-walk` "
        "rules, the side and block models (and their ZIP weighting, on the outside-Venice "
        "check with the County layer above) and `coverage_m` were chosen, and the intersection "
        "variants above rejected, on the checks below, built from the 2020 extract alone; "
        "the 2017 file above is only measured. (Older limits in `geo/geocoding/tuning.py` "
        "predate this rule and were chosen on the 2017 run; re-checked on the `points` check "
        "below, varying "
        "the long-walk limit (3,000-12,000), its ZIP test (1-3 of 3 points), the extrapolation "
        "limits (800-2,500 and 300-1,000) or the ZIP rejection distance (1.5-5 km) moves "
        "house level by at most 1.1 points and the median by under 1 m, so they are not a "
        "2017 artefact.) `points`: distinct 2020 addresses in 4 folds, "
        "each geocoded against the other folds (also without their pre-direction); "
        "`across`: one side (N/S or E/W) of each of the 2020 streets known on both sides "
        "hidden, 4 folds; `numbered`: numbered streets hidden whole, 4 folds (also without "
        "their pre-direction); `crossings`: "
        "streets that appear in `X AT Y` rows with their points hidden whole (crossings "
        "kept), 4 folds; `intersections`: the 2020 `X AT Y` rows located from the 2020 points "
        "alone; `Pasadena points`: the shipped Pasadena reference (907 points, most without "
        "a ZIP) in 4 folds, each geocoded against the others. Share = of the check's queries.",
        "",
        *holdout_lines(checks),
        "",
        "Side-of-street and block-layout models, switched off one at a time on the `points` "
        "check (same run):",
        "",
        *ablation_lines(holdout_ref.points.reset_index(drop=True)),
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section("Geocoding", section)


if __name__ == "__main__":
    main()
