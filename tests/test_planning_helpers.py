"""Shared builders for the planning tests (synthetic city, small roster)."""

from __future__ import annotations

import sys
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from dispatch.model import Crew, Depot
from dispatch.planning import Stop

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data" / "planning"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TZ = ZoneInfo("America/Los_Angeles")
DAY = date(2020, 1, 3)
#: Tiny deterministic budget for tests.
ITS = 150

DEPOTS = {
    "A": Depot("A", "Yard A", "", -118.25, 34.05),
    "B": Depot("B", "Yard B", "", -118.45, 34.20),
}


def crew(
    name: str, skills: tuple[str, ...], depot: str, districts: tuple[str, ...], **kw: object
) -> Crew:
    base: dict[str, object] = {
        "shift_start": time(6, 0),
        "shift_end": time(14, 30),
        "capacity": 30,
        "lunch_start": time(10, 30),
        "lunch_end": time(12, 30),
    }
    base.update(kw)
    return Crew(name=name, categories=skills, depot=depot, districts=districts, **base)  # type: ignore[arg-type]


def roster() -> list[Crew]:
    return [
        crew("A-bulky-1", ("bulky_items", "illegal_dumping"), "A", ("1", "2")),
        crew("A-bulky-2", ("bulky_items", "illegal_dumping"), "A", ("1", "2")),
        crew("B-bulky-1", ("bulky_items", "illegal_dumping"), "B", ("2", "3")),
        crew("A-graffiti-1", ("graffiti_removal",), "A", ("1", "2", "3")),
    ]


CENTRES = {"1": (-118.26, 34.06), "2": (-118.35, 34.12), "3": (-118.46, 34.21)}
SERVICE = {"bulky_items": 600, "illegal_dumping": 900, "graffiti_removal": 1200}


def stops(n: int = 40, seed: int = 0, districts: tuple[str, ...] = ("1", "2", "3")) -> list[Stop]:
    rng = np.random.default_rng(seed)
    cats = ["bulky_items", "illegal_dumping", "graffiti_removal"]
    out = []
    for i in range(n):
        d = districts[i % len(districts)]
        lon0, lat0 = CENTRES[d]
        c = cats[int(rng.integers(0, 3))]
        out.append(
            Stop(
                request_id=f"S{i:04d}",
                category=c,
                district=d,
                lon=round(float(lon0 + rng.normal(0, 0.02)), 6),
                lat=round(float(lat0 + rng.normal(0, 0.02)), 6),
                service_s=SERVICE[c],
                size=1,
                urgency=round(float(rng.uniform(0, 2)), 3),
            )
        )
    return out


def at(h: int, m: int = 0) -> datetime:
    return datetime.combine(DAY, time(h, m), tzinfo=TZ)
