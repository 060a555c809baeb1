"""Build address references for tests the way the city packs do (no city in the code)."""

from __future__ import annotations

from pathlib import Path

from geo.reference import AddressReference
from geo.reference_sources import BuildReport, ReferenceSource, build_from_sources, read_layouts

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = read_layouts(ROOT / "data" / "reference" / "layouts.toml")


def requests_reference(path: Path, city: str = "los_angeles") -> tuple[AddressReference,
                                                                       BuildReport]:
    """Return the reference of a MyLA311 request extract (2020 layout) and its report."""
    source = ReferenceSource("requests", path, LAYOUTS["myla311_requests"],
                             "City of Los Angeles open data (MyLA311)")
    return build_from_sources([source], city=city)
