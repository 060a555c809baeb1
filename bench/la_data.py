"""The Los Angeles demo data as the product reads it (bench and test helper).

Requests come through the product's MyLA311 reader with the city pack's categories and
time zone, and get their council district from the pack's district layer, exactly as
``dispatch import`` stores them, without a database.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

import numpy as np

from dispatch.citypack import CityPack, load_city_pack
from dispatch.importers import read_file
from dispatch.model import Crew, ServiceRequest
from dispatch.services.imports import import_context

ROOT = Path(__file__).resolve().parents[1]
LA_CSV = ROOT / "data" / "requests" / "los_angeles" / "myla311_2020-01-01_to_03.csv"


def la_pack() -> CityPack:
    """Return the Los Angeles city pack (roster, depots, categories)."""
    return load_city_pack("los_angeles")


def scaled_roster(pack: CityPack, factor: float, capacity: int | None = None) -> list[Crew]:
    """Return the pack's roster with each crew group (``NC-bulky-1..14``) scaled by ``factor``.

    Every group keeps at least one crew; added crews copy the group's first crew with the
    next numbers. ``capacity`` replaces every crew's capacity when given.
    """
    groups: dict[str, list[Crew]] = defaultdict(list)
    for crew in pack.crews:
        base, _, k = crew.name.rpartition("-")
        groups[base if k.isdigit() else crew.name].append(crew)
    out: list[Crew] = []
    for base, crews in groups.items():
        n = max(1, round(len(crews) * factor))
        for k in range(n):
            crew = crews[k] if k < len(crews) else dataclasses.replace(crews[0],
                                                                       name=f"{base}-{k + 1}")
            out.append(crew if capacity is None else dataclasses.replace(crew, capacity=capacity))
    return out


def load_la_requests(path: Path = LA_CSV) -> list[ServiceRequest]:
    """Return the file's requests, located with the city's coordinates and districts."""
    pack = la_pack()
    parsed = read_file(path, import_context(pack, source="myla311"))
    requests = [r.request for r in parsed.records]
    located = [r for r in requests if r.lon is not None and r.lat is not None]
    districts = pack.assign_districts(
        np.array([r.lon for r in located], dtype=float),
        np.array([r.lat for r in located], dtype=float),
    )
    for req, district in zip(located, districts, strict=True):
        req.district = None if district is None else str(district)
        req.geocode_precision = "source"
    return requests
