"""Write benchmark fragments into the "Planning" section of docs/benchmarks.md.

Each planning benchmark writes one fragment (``bench/results/planning_<name>.md``); the
section is rebuilt from all fragments present, in a fixed order, so benchmarks can be
re-run one at a time without losing the others' figures. Other sections are kept.
"""

from __future__ import annotations

from pathlib import Path

from bench.docs import write_section

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ORDER = [
    "summary",
    "travel",
    "la_day_2020-01-03_straight-line_noslack",
    "peers_2020-01-03_straight-line_noslack",
    "la_day_2020-01-03_pack_noslack",
    "la_day_2020-01-03_pack",
    "peers_2020-01-03_pack",
    "la_day_2020-01-03_network",
    "la_day_2017-12-29_straight-line_noslack",
    "peers_2017-12-29_straight-line_noslack",
    "la_day_2017-12-29_pack",
    "peers_2017-12-29_pack",
    "vrplib",
    "quality",
    "replan",
    "scaling",
]

INTRO = """## Planning

Planning engine (`dispatch/planning/`, PyVRP). Figures below are measured by the
commands shown, on the project's shared development machine (2 cores shared with other
work, so wall times are noisy and pessimistic; each table gives the load average at its
start). The LA days use the product's own data path: requests through the MyLA311
importer, districts and the 131-crew roster, its territories and the `[travel]` table
from the city pack (`data/cities/los_angeles.toml`). "straight-line" is the model before
calibration (great-circle x 1.3 at 25 km/h); "pack" is the pack's calibrated banded
model with its 60 s approach time. "No reserve" is `--no-slack`; the pack's reserve is
max(4% of the shift, 20 min) per route. The 2017-12-29 day is the held-out evaluation
file: measured, never tuned on.
"""


def write_fragment(name: str, markdown: str) -> None:
    """Store one benchmark's fragment and rebuild the Planning section."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"planning_{name}.md").write_text(markdown.strip() + "\n", encoding="utf-8")
    parts = [INTRO]
    names = ORDER + sorted(
        p.stem.removeprefix("planning_")
        for p in RESULTS.glob("planning_*.md")
        if p.stem.removeprefix("planning_") not in ORDER
    )
    for n in names:
        f = RESULTS / f"planning_{n}.md"
        if f.exists():
            parts.append(f.read_text(encoding="utf-8").strip() + "\n")
    write_section("Planning", "\n".join(parts))
