"""Street lines a map can draw when no tiles load.

An offline service center sees a grey map: nothing to check a pin against. A city pack
already holds two things that trace streets:

- a road network (nodes with ``lon, lat``; links between them, with a road class), such
  as an OpenStreetMap arterial network: :func:`network_lines`;
- its address reference, house points with numbers along named streets: sorted by house
  number within a street and ZIP code, they trace the street, named
  (:func:`address_lines`).

:func:`streets_geojson` writes both as one RFC 7946 FeatureCollection (``lon, lat``,
5 decimals, about a metre) that :func:`geo.maps.base_map` loads when tiles fail. This
module is pure: frames in, lines out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from geo.errors import GeoError

#: Consecutive house points farther apart than this do not make one street line.
MAX_GAP_M = 250.0
_EARTH_M = 6_371_000.0


@dataclass(frozen=True)
class StreetLine:
    """One drawable street piece: its name (may be empty), its kind, its ``lon, lat``."""

    name: str
    kind: str
    coords: tuple[tuple[float, float], ...]


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two ``(lon, lat)`` points, metres."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * _EARTH_M * math.asin(min(1.0, math.sqrt(h)))


def _need(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise GeoError(f"{what} lacks column(s) {missing}; got {list(frame.columns)}")


def network_lines(nodes: pd.DataFrame, links: pd.DataFrame) -> list[StreetLine]:
    """Return one line per road link, a link and its reverse drawn once.

    Parameters
    ----------
    nodes
        Columns ``nid, lon, lat``.
    links
        Columns ``from_nid, to_nid`` and optionally ``highway`` (the road class, kept as
        the line's ``kind``; ``road`` where missing).

    Returns
    -------
    list of StreetLine
        Unnamed (a network of this kind carries no street names).

    Raises
    ------
    GeoError
        If a column is missing.
    """
    _need(nodes, ("nid", "lon", "lat"), "the network's nodes")
    _need(links, ("from_nid", "to_nid"), "the network's links")
    where = {int(n): (float(x), float(y))
             for n, x, y in zip(nodes["nid"], nodes["lon"], nodes["lat"], strict=True)}
    kinds = links["highway"] if "highway" in links.columns else ["road"] * len(links)
    seen: set[tuple[int, int]] = set()
    out = []
    for a, b, kind in zip(links["from_nid"], links["to_nid"], kinds, strict=True):
        key = (min(int(a), int(b)), max(int(a), int(b)))
        if key in seen or int(a) not in where or int(b) not in where:
            continue
        seen.add(key)
        out.append(StreetLine("", str(kind) if isinstance(kind, str) and kind else "road",
                              (where[int(a)], where[int(b)])))
    return out


def _street_name(row: Any) -> str:
    parts = [row["predir"], row["name"], row["street_type"], row["postdir"]]
    return " ".join(str(p) for p in parts if isinstance(p, str) and p.strip())


def address_lines(points: pd.DataFrame, max_gap_m: float = MAX_GAP_M) -> list[StreetLine]:
    """Trace named streets through house points sorted by number, street by street.

    Parameters
    ----------
    points
        An address reference: columns ``number, name, zip, lon, lat`` and optionally
        ``predir, street_type, postdir`` and ``record`` (only ``point`` rows are used
        when it is there).
    max_gap_m
        Consecutive points (by house number) farther apart than this start a new line:
        a street with a gap in the data, or one name in two places.

    Returns
    -------
    list of StreetLine
        Named lines of kind ``address``, each of at least two points: the centroids of
        each half block (house numbers 0-49 and 50-99 of every hundred), in number
        order, so that a line runs down the middle between the two sides.

    Raises
    ------
    GeoError
        If a column is missing or ``max_gap_m`` is not positive.
    """
    if not (math.isfinite(max_gap_m) and max_gap_m > 0):
        raise GeoError(f"max_gap_m must be a positive number of metres; got {max_gap_m!r}")
    _need(points, ("number", "name", "zip", "lon", "lat"), "the address reference")
    frame = points
    if "record" in frame.columns:
        frame = frame[frame["record"] == "point"]
    frame = frame.assign(
        _no=pd.to_numeric(frame["number"], errors="coerce"),
        **{c: frame[c] if c in frame.columns else "" for c in ("predir", "street_type",
                                                               "postdir")},
    ).dropna(subset=["_no", "lon", "lat", "name"])
    out: list[StreetLine] = []
    keys = ["predir", "name", "street_type", "postdir", "zip"]
    frame = frame.astype({k: "string" for k in keys}).fillna({k: "" for k in keys})
    # both sides of a street, odd and even, sit some 20 m apart: trace the middle, one
    # point per half block (numbers 0-49 and 50-99 of each hundred), at their centroid
    frame = frame.assign(_half=(frame["_no"] // 50).astype("int64"))
    for _, street in frame.groupby(keys, sort=True):
        name = _street_name(street.iloc[0])
        halves = street.groupby("_half", sort=True)[["lon", "lat"]].mean()
        run: list[tuple[float, float]] = []
        for lon, lat in zip(halves["lon"], halves["lat"], strict=True):
            p = (round(float(lon), 5), round(float(lat), 5))
            if run and p == run[-1]:
                continue
            if run and _metres(run[-1], p) > max_gap_m:
                if len(run) >= 2:
                    out.append(StreetLine(name, "address", tuple(run)))
                run = []
            run.append(p)
        if len(run) >= 2:
            out.append(StreetLine(name, "address", tuple(run)))
    return out


def streets_geojson(lines: Iterable[StreetLine], digits: int = 5) -> dict[str, Any]:
    """Return the lines as an RFC 7946 FeatureCollection of LineStrings (``lon, lat``).

    Each feature has ``name`` (omitted when empty) and ``kind``. Unnamed lines of one
    kind are merged into one MultiLineString (a network's links: one feature per road
    class keeps the file small).
    """
    features = []
    unnamed: dict[str, list[list[list[float]]]] = {}
    for line in lines:
        if not line.name:
            unnamed.setdefault(line.kind, []).append(
                [[round(x, digits), round(y, digits)] for x, y in line.coords])
            continue
        props: dict[str, Any] = {"kind": line.kind}
        if line.name:
            props["name"] = line.name
        features.append({
            "type": "Feature",
            "geometry": {"type": "LineString",
                         "coordinates": [[round(x, digits), round(y, digits)]
                                         for x, y in line.coords]},
            "properties": props,
        })
    features += [{"type": "Feature",
                  "geometry": {"type": "MultiLineString", "coordinates": parts},
                  "properties": {"kind": kind}} for kind, parts in sorted(unnamed.items())]
    return {"type": "FeatureCollection", "features": features}
