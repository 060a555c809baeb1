r"""Figures of one code tree's geocoder on fixed inputs, for old/new comparisons.

Run by ``bench/bench_geocode.py --baseline TREE`` once for the starting commit's tree and
once for this one, in separate processes (both trees have packages named ``geo``)::

    python bench/geocode_split.py --tree TREE --reference REF.parquet \\
        --pasadena PAS.parquet --out figures.json

Both runs use the same reference files (the starting commit's 2020-only references), so
any difference comes from the code. Only functions both trees' ``bench/bench_geocode.py``
define with the same signatures are used: ``load_eval``, ``rewrite``,
``rewrite_intersection``, ``score``, ``timed``, ``holdout_2020``, ``points_check``,
``haversine_m``, ``OfflineGeocoder``, ``load_reference``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _summary(frame: Any, house_levels: set[str]) -> dict[str, float]:
    h = frame.loc[frame["precision"].isin(house_levels)]
    return {
        "n": len(frame),
        "share": len(h) / max(len(frame), 1),
        "median_m": float(h["err"].median()) if len(h) else math.nan,
        "p90_m": float(h["err"].quantile(0.9)) if len(h) else math.nan,
    }


def _rounded(value: float, digits: int) -> float | None:
    return None if math.isnan(value) else round(float(value), digits)


def split_figures(
    tree: Path, reference: Path, pasadena: Path, seed: int, *, quick: bool = False,
    switched_off: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Measure one tree's geocoder: 2017 set, messy rewrite, intersections, 2020 checks.

    ``quick``: only the 2017 clean set (answers and throughput). ``switched_off``: names
    of ``GeocoderTuning`` switches set to False (trees that have a tuning only).
    """
    sys.path.insert(0, str(tree))
    import bench.bench_geocode as b  # the tree's own bench module (its own API)
    import geo

    if not Path(geo.__file__).resolve().is_relative_to(tree):
        raise RuntimeError(f"imported {geo.__file__}, not the geo package of {tree}")

    ref = b.load_reference(reference)
    if hasattr(ref, "place_names") and not ref.place_names:
        # the starting commit's reference file predates place names (that commit kept
        # the list in geo/address.py): give this code the Los Angeles pack's, the same list
        from dispatch.citypack import load_city_pack

        plan = load_city_pack("los_angeles").reference
        ref.place_names = plan.place_names if plan is not None else ()
    tuning_kw: dict[str, Any] = {}
    if switched_off:
        import dataclasses

        tuning_kw["tuning"] = dataclasses.replace(
            b.DEFAULT_TUNING, **dict.fromkeys(switched_off, False)
        )
    gc = b.OfflineGeocoder(ref, **tuning_kw)
    addrs, inters = b.load_eval()
    out, cpu_s, wall_s = b.timed(gc, addrs, "ZipCode")
    s = b.score(out)
    if quick:
        return {"tree": str(tree), "throughput_cpu_per_s": len(addrs) / cpu_s,
                "throughput_wall_per_s": len(addrs) / wall_s}
    out_i, _, _ = b.timed(gc, inters, "ZipCode", repeat=1)
    located_i = (out_i["precision"] == "intersection").to_numpy()
    err_i = b.haversine_m(out_i["lon"], out_i["lat"], out_i["true_lon"], out_i["true_lat"])
    rng = random.Random(seed)
    messy = addrs.assign(Address=[b.rewrite(t, z, rng)[0]
                                  for t, z in zip(addrs["Address"], addrs["ZipCode"], strict=True)])
    out_m, _, _ = b.timed(gc, messy, None, repeat=1)
    s_m = b.score(out_m)
    t0 = time.perf_counter()
    checks = b.holdout_2020(ref, **tuning_kw)
    pas = b.load_reference(pasadena).points.reset_index(drop=True)
    checks["Pasadena points"] = b.points_check(pas, city="pasadena", **tuning_kw)
    holdout_s = time.perf_counter() - t0
    house = {"point", "interpolated", "intersection"}
    answers = [
        [_rounded(x, 9), _rounded(y, 9), str(p)]
        for x, y, p in zip(out["lon"], out["lat"], out["precision"], strict=True)
    ]
    return {
        "tree": str(tree),
        "clean": {"n": s.n, "house": s.house, "median_m": s.median_m, "p90_m": s.p90_m,
                  "wrong_street": s.wrong_street},
        "messy": {"house": s_m.house, "median_m": s_m.median_m},
        "intersections": {"n": len(out_i), "located": float(located_i.mean()),
                          "median_m": float(np.median(err_i[located_i]))},
        "throughput_cpu_per_s": len(addrs) / cpu_s,
        "throughput_wall_per_s": len(addrs) / wall_s,
        "checks": {k: _summary(v, house) for k, v in checks.items()},
        "check_answers": {k: [[str(p), str(m), _rounded(e, 6)]
                              for p, m, e in zip(v["precision"], v["method"], v["err"],
                                                 strict=True)]
                          for k, v in checks.items()},
        "answers": answers,
        "holdout_s": holdout_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", required=True, type=Path)
    ap.add_argument("--reference", required=True, type=Path)
    ap.add_argument("--pasadena", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=20171227)
    ap.add_argument("--quick", action="store_true", help="only the 2017 clean set's throughput")
    ap.add_argument("--switch-off", action="append", default=[],
                    help="a GeocoderTuning switch to set to False (repeatable)")
    args = ap.parse_args()
    figures = split_figures(args.tree.resolve(), args.reference, args.pasadena, args.seed,
                            quick=args.quick, switched_off=tuple(args.switch_off))
    args.out.write_text(json.dumps(figures), encoding="utf-8")


if __name__ == "__main__":
    main()
