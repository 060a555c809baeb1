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
ORDER = ["travel", "vrplib_nn40", "vrplib", "vrplib_nn50", "la_day", "quality", "replan", "scaling"]

INTRO = """## Planning

Planning engine (`dispatch/planning/`, PyVRP). Figures below are measured by the
commands shown, on the project's shared development machine (2 cores shared with other
work, so wall times are noisy and pessimistic). Travel model: `HaversineTravel`
(great-circle x 1.3 circuity at 25 km/h; see `geo/travel.py`). The LA day and the
quality run use the product's own data path: requests through the MyLA311 importer,
districts and the 131-crew roster from the city pack (`data/cities/los_angeles.toml`).
The re-planning and scaling runs use the synthetic demo roster of
`dispatch/planning/replay.py` (12 bulky/dumping crews per sanitation yard, graffiti crews
per contractor), which they scale with the number of stops.
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
