"""Build the street lines an offline map draws, as one GeoJSON file.

They are the pack's road network and the streets its address reference traces
(:mod:`geo.streets`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dispatch.citypack import CityPack
from dispatch.errors import ValidationError
from geo.streets import StreetLine, address_lines, network_lines, streets_geojson


def build_streets(pack: CityPack, out: Path) -> list[str]:
    """Write the city's street lines to ``out``; return what was written, line by line.

    Parameters
    ----------
    pack
        The city pack: its ``[travel]`` network (``network_nodes``, ``network_links``)
        and its address reference, whichever it has.
    out
        The GeoJSON file to write (its folder is created).

    Returns
    -------
    list of str
        One line per source and one for the file.

    Raises
    ------
    ValidationError
        If the pack has neither a network nor an address reference.
    """
    lines: list[StreetLine] = []
    report = []
    credits = []
    travel = pack.travel
    if travel.network_nodes is not None and travel.network_links is not None:
        roads = network_lines(pd.read_csv(travel.network_nodes),
                              pd.read_csv(travel.network_links))
        lines += roads
        if travel.network_attribution:
            credits.append(travel.network_attribution)
        report.append(f"road network: {len(roads):,} links ({travel.network_links.name})")
    reference = pack.address_reference
    if reference is not None and reference.exists():
        traced = address_lines(pd.read_parquet(reference))
        lines += traced
        # short enough for a phone's map corner; the full credits of every source are
        # in data/README.md and static/streets/README.md
        credits.append(f"Streets traced from {pack.display_name}'s address reference")
        report.append(f"address reference: {len(traced):,} street lines ({reference.name})")
    if not lines:
        raise ValidationError(f"city pack {pack.name!r} has no road network and no address "
                              "reference to draw streets from; expected [travel] "
                              "network_nodes/network_links or an address reference")
    out.parent.mkdir(parents=True, exist_ok=True)
    # RFC 7946 allows foreign members: the map shows this as the layer's attribution
    doc = {**streets_geojson(lines), "attribution": "; ".join(credits)}
    text = json.dumps(doc, separators=(",", ":"))
    out.write_text(text, encoding="utf-8")
    report.append(f"wrote {out} ({len(text) / 1e6:.1f} MB)")
    return report
