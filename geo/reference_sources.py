"""A city's address reference from several sources, in order of authority.

A city names its sources (:class:`ReferenceSource`): an authoritative address-point
layer (a county's or city's own, OpenAddresses) and points derived from other records
(earlier service requests at the city's own coordinates), each with a column mapping
(:class:`SourceLayout`) and an attribution. :func:`build_from_sources` merges them:

1. every source is read and standardised (rows without a number, street or usable
   position are skipped, and rows outside the city's extent or naming another place);
2. a point without a pre-direction takes the one that every other point of its street
   in its ZIP carries, whichever source they come from (``AMOROSO PL`` of an
   address-point layer is the ``E AMOROSO PL`` of the city's requests);
3. repeated observations of one address within a source merge to their median;
4. an address held by several sources keeps the position of the most authoritative
   one; a lower one more than ``conflict_m`` away is reported as a conflict;
5. a derived (non-authoritative) point is dropped where an authoritative point of the
   same street, from a source ranked above it, lies within ``coverage_m``:
   interpolation and walks then use the authoritative layer where it exists and the
   derived points elsewhere;
6. a point inconsistent with every other point of its street in its ZIP (farther from
   each than ``300 m + 6 m`` per house number between them, the rule that splits a
   street into runs) is reported as an outlier.

Coordinates are ``lon, lat``; every source names its coordinate columns, so sources
that store ``lat`` before ``lon`` are read by name.
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from geo.address import NO_PLACES, PlaceNames, parse_address
from geo.errors import AddressReferenceError
from geo.geocoding.tuning import DEFAULT_TUNING
from geo.reference import (
    INTERSECTION_COLUMNS,
    POINT_COLUMNS,
    AddressReference,
    PointColumns,
    ReferenceSourceInfo,
    build_reference,
    intersections_from_text,
    points_from_frame,
    points_from_text,
)

__all__ = [
    "BuildReport",
    "Conflict",
    "ReferenceSource",
    "SourceCounts",
    "SourceLayout",
    "build_from_sources",
    "harmonise_predirs",
    "layout_from_table",
    "read_layouts",
    "read_source",
]

#: Same address in two sources farther apart than this is a conflict (metres).
CONFLICT_M = 30.0
#: A derived point within this distance of an authoritative point of its street is
#: superseded by the authoritative layer (metres). 100-400 m made no difference on the
#: 2020 held-out Venice check (docs/benchmarks.md); 200 m is about two blocks.
COVERAGE_M = 200.0
#: Slack of the outlier rule, as in the run splitting of the geocoder's index (metres).
_OUTLIER_SLACK_M = 300.0
_KEY = ["number", "predir", "name", "street_type", "postdir", "zip"]
_STREET = ["predir", "name", "street_type", "postdir"]
_LAYOUT_FIELDS = {f.name for f in fields(PointColumns)} | {"intersections", "place"}


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class SourceLayout:
    """How a source table is laid out: its columns, and what its rows may hold.

    Attributes
    ----------
    columns : PointColumns
        Where each part of an address is.
    intersections : bool
        Rows of the free-text ``address`` column that name a crossing (``X AT Y``)
        become known intersections (request extracts have them).
    place : str or None
        Column naming the place (city) of each row, if any; with
        :attr:`ReferenceSource.places` it keeps rows of the city only.
    """

    columns: PointColumns
    intersections: bool = False
    place: str | None = None


def layout_from_table(table: Mapping[str, Any], where: str) -> SourceLayout:
    """Read a layout from a TOML table (column names by part).

    Parameters
    ----------
    table : mapping
        Keys are :class:`~geo.reference.PointColumns` fields, ``intersections`` and
        ``place``; values are column names (``intersections``: true/false).
    where : str
        Where the table came from, for messages (``layouts.toml [la_county_cams]``).

    Returns
    -------
    SourceLayout
        The layout; parts not named are absent from the source.

    Raises
    ------
    AddressReferenceError
        For an unknown key, a value of the wrong type, or no coordinate columns.
    """
    extra = sorted(set(table) - _LAYOUT_FIELDS)
    if extra:
        raise AddressReferenceError(
            f"{where}: unknown key {extra[0]!r}; expected some of {sorted(_LAYOUT_FIELDS)}"
        )
    parts: dict[str, str | None] = {f.name: None for f in fields(PointColumns)}
    place: str | None = None
    for key, value in table.items():
        if key == "intersections":
            continue
        if not isinstance(value, str) or not value:
            raise AddressReferenceError(
                f"{where}.{key}: got {value!r}; expected a column name (a non-empty string)"
            )
        if key == "place":
            place = value
        else:
            parts[key] = value
    for needed in ("lon", "lat"):
        if parts[needed] is None:
            raise AddressReferenceError(
                f"{where}: no {needed!r} column; a layout must name both coordinate columns"
            )
    if parts["address"] is None and parts["name"] is None and parts["street"] is None:
        raise AddressReferenceError(
            f"{where}: names no address, street or name column; expected one of them"
        )
    flag = table.get("intersections", False)
    if not isinstance(flag, bool):
        raise AddressReferenceError(f"{where}.intersections: got {flag!r}; expected true/false")
    lon, lat = parts.pop("lon"), parts.pop("lat")
    cols = PointColumns(lon=str(lon), lat=str(lat), **parts)
    return SourceLayout(cols, intersections=flag, place=place)


def read_layouts(path: Path) -> dict[str, SourceLayout]:
    """Read a TOML file of named layouts (one table per layout).

    Parameters
    ----------
    path : pathlib.Path
        E.g. ``data/reference/layouts.toml``.

    Returns
    -------
    dict of str to SourceLayout
        Layout name -> layout.

    Raises
    ------
    AddressReferenceError
        When the file is missing or not valid TOML, or a layout is invalid.
    """
    try:
        with Path(path).open("rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise AddressReferenceError(f"layout file {path} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AddressReferenceError(f"layout file {path} is not valid TOML: {exc}") from exc
    out: dict[str, SourceLayout] = {}
    for name, table in doc.items():
        if not isinstance(table, dict):
            raise AddressReferenceError(f"{path}: {name!r} is {table!r}; expected a table")
        out[name] = layout_from_table(table, f"{path} [{name}]")
    return out


@dataclass(frozen=True)
class ReferenceSource:
    """One source of a city's address reference.

    Attributes
    ----------
    name : str
        Short name (``cams``, ``requests``): the points' ``source``, named in answers.
    path : pathlib.Path
        The file (CSV, or any vector format geopandas reads).
    layout : SourceLayout
        Its columns.
    attribution : str
        The attribution its terms ask for (shown with answers resting on it).
    authoritative : bool
        An address-point layer kept by an authority: its points supersede derived
        points of the same street nearby.
    label : str
        Name shown to people (defaults to ``name``).
    places : tuple of str
        When set, rows whose place (a ``place`` column or the city named in a free-text
        address) is given and is none of these are skipped (``PASADENA`` keeps
        Pasadena, not South Pasadena).
    """

    name: str
    path: Path
    layout: SourceLayout
    attribution: str
    authoritative: bool = False
    label: str = ""
    places: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or "+" in self.name or not self.name.strip() == self.name:
            raise AddressReferenceError(
                f"reference source name {self.name!r}: expected a short name without '+' "
                "or surrounding spaces"
            )
        if not self.attribution.strip():
            raise AddressReferenceError(
                f"reference source {self.name!r} ({self.path}) has no attribution; every "
                "source must say whose data it is"
            )

    def info(self) -> ReferenceSourceInfo:
        """Return the metadata the saved reference keeps about this source."""
        return ReferenceSourceInfo(
            name=self.name,
            label=self.label or self.name,
            attribution=self.attribution,
            authoritative=self.authoritative,
            file=self.path.name,
        )


# --------------------------------------------------------------------------- reading


def _read_table(path: Path, cols: PointColumns) -> pd.DataFrame:
    """Read a source as strings; vector formats give ``lon``/``lat`` from their points."""
    if not path.is_file():
        raise AddressReferenceError(f"reference source file {path} does not exist")
    if path.suffix.lower() in (".csv", ".txt"):
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        except (UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise AddressReferenceError(f"{path} is not a readable UTF-8 CSV: {exc}") from exc
    import geopandas as gpd  # slow to import: only for vector sources

    gdf = gpd.read_file(path)
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    if not (gdf.geom_type == "Point").all():
        raise AddressReferenceError(f"{path} has non-point geometries; expected address points")
    frame = pd.DataFrame(gdf.drop(columns="geometry")).astype(str)
    frame[cols.lon] = gdf.geometry.x.astype(str).to_numpy()
    frame[cols.lat] = gdf.geometry.y.astype(str).to_numpy()
    return frame


def read_source(
    source: ReferenceSource,
    extent: tuple[float, float, float, float] | None = None,
    places: PlaceNames = NO_PLACES,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Read and standardise one source.

    Parameters
    ----------
    source : ReferenceSource
        What to read.
    extent : tuple of float, optional
        ``(lon_min, lat_min, lon_max, lat_max)`` of the city: points outside are skipped.
    places : PlaceNames, optional
        Places that may end a free-text address without a comma.

    Returns
    -------
    tuple
        Points (``POINT_COLUMNS`` plus ``source``, ``source_id``, ``n_obs``),
        intersections (``INTERSECTION_COLUMNS`` plus ``n_obs``), and the number of rows
        read.

    Raises
    ------
    AddressReferenceError
        When the file is missing or unreadable, or lacks a mapped column.
    """
    cols = source.layout.columns
    frame = _read_table(source.path, cols)
    n_rows = len(frame)
    missing = [c for c in cols.used() if c not in frame.columns]
    if source.layout.place is not None and source.layout.place not in frame.columns:
        missing.append(source.layout.place)
    if missing:
        raise AddressReferenceError(
            f"{source.path} (reference source {source.name!r}) lacks column {missing[0]!r}; "
            f"columns are {list(frame.columns)}"
        )
    if source.places:
        frame = frame.loc[_in_places(frame, source, places)].reset_index(drop=True)
    if cols.address is not None:
        # (lat, lon) -> (lon, lat): the coordinate columns are picked by name
        pts = points_from_text(frame, cols.address, lon=cols.lon, lat=cols.lat,
                               zip_column=cols.zip, places=places)  # fmt: skip
        inter = (
            intersections_from_text(frame, cols.address, lon=cols.lon, lat=cols.lat,
                                    zip_column=cols.zip, places=places)
            if source.layout.intersections
            else pd.DataFrame(columns=[*INTERSECTION_COLUMNS, "n_obs"])
        )
    else:
        pts = points_from_frame(frame, cols)
        inter = pd.DataFrame(columns=[*INTERSECTION_COLUMNS, "n_obs"])
    if "source_id" not in pts.columns:
        pts = pts.assign(source_id="")
    pts = pts.assign(source=source.name, n_obs=1)
    if extent is not None:
        inside = pts["lon"].between(extent[0], extent[2]) & pts["lat"].between(
            extent[1], extent[3]
        )
        pts = pts.loc[inside].reset_index(drop=True)
        if len(inter):
            keep = inter["lon"].between(extent[0], extent[2]) & inter["lat"].between(
                extent[1], extent[3]
            )
            inter = inter.loc[keep].reset_index(drop=True)
    return pts, inter, n_rows


def _in_places(frame: pd.DataFrame, source: ReferenceSource, places: PlaceNames) -> pd.Series:
    """Mark the rows that name no place, or one of the source's places."""
    wanted = {p.upper() for p in source.places}
    column = source.layout.place
    if column is not None:
        named = frame[column].astype(str).str.strip().str.upper()
    elif source.layout.columns.address is not None:
        named = pd.Series(
            [parse_address(t, None, places).city for t in frame[source.layout.columns.address]],
            index=frame.index,
        )
    else:
        return pd.Series(True, index=frame.index)
    return (named == "") | named.isin(wanted)


# --------------------------------------------------------------------------- merging


def harmonise_predirs(points: pd.DataFrame) -> pd.DataFrame:
    """Give points without a pre-direction the one every other point of their street has.

    Parameters
    ----------
    points : pandas.DataFrame
        Standardised points (``POINT_COLUMNS``), any sources.

    Returns
    -------
    pandas.DataFrame
        A copy; a point with ``predir == ""`` takes the pre-direction of the points of
        the same name, type, post-direction and ZIP when those that have one all have
        the same one. Others are unchanged.
    """
    out = points.copy()
    has = out.loc[out["predir"] != ""]
    if has.empty or (out["predir"] == "").sum() == 0:
        return out
    group = ["name", "street_type", "postdir", "zip"]
    by_street = has.groupby(group)["predir"]
    distinct, first = by_street.nunique(), by_street.first()
    single = {k: str(first[k]) for k in distinct.index[distinct == 1]}
    missing = out["predir"] == ""
    keys = list(zip(*(out.loc[missing, c] for c in group), strict=True))
    out.loc[missing, "predir"] = [single.get(k, "") for k in keys]
    return out


@dataclass(frozen=True)
class SourceCounts:
    """What one source contributed to a reference.

    Attributes
    ----------
    name : str
        The source.
    rows : int
        Rows read.
    points : int
        Distinct addresses it holds (after its own repeats merged).
    superseded : int
        Of those, addresses a more authoritative source also holds (its position wins).
    covered : int
        Derived points dropped because an authoritative point of their street lies near.
    kept : int
        Points in the reference.
    intersections : int
        Known intersections read from it.
    """

    name: str
    rows: int
    points: int
    superseded: int
    covered: int
    kept: int
    intersections: int


@dataclass(frozen=True)
class Conflict:
    """Two positions of one address that disagree, or a point far from its street.

    Attributes
    ----------
    kind : {"duplicate", "outlier"}
        ``duplicate``: the same address in two sources more than ``conflict_m`` apart;
        ``outlier``: a point farther from every other point of its street (in its ZIP)
        than the house numbers between them allow.
    address : str
        The address (``465 S ARROYO PKWY``, ZIP appended when known).
    source, source_id : str
        The source (and its record id, when mapped) of the questioned point: the less
        authoritative one of a duplicate.
    lon, lat : float
        Its position.
    other : str
        The source kept for a duplicate; the nearest point of the street for an outlier.
    other_lon, other_lat : float
        That position.
    distance_m : float
        Between the two positions.
    """

    kind: Literal["duplicate", "outlier"]
    address: str
    source: str
    source_id: str
    lon: float
    lat: float
    other: str
    other_lon: float
    other_lat: float
    distance_m: float

    def line(self) -> str:
        """Return the conflict as one line of a report."""
        where = f"{self.source}" + (f" #{self.source_id}" if self.source_id else "")
        if self.kind == "duplicate":
            return (f"{self.address}: {where} is {self.distance_m:,.0f} m from {self.other}"
                    f" (kept {self.other})")  # fmt: skip
        return (f"{self.address}: {where} is {self.distance_m:,.0f} m from the nearest other "
                f"point of its street ({self.other})")  # fmt: skip


@dataclass(frozen=True)
class BuildReport:
    """What :func:`build_from_sources` read, kept, dropped and questioned."""

    city: str
    counts: tuple[SourceCounts, ...]
    conflicts: tuple[Conflict, ...]
    n_points: int
    n_streets: int
    n_intersections: int
    seconds: float
    conflict_m: float = CONFLICT_M
    out_path: Path | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def lines(self, max_conflicts: int = 20) -> list[str]:
        """Return the report the CLI prints (at most ``max_conflicts`` conflict lines)."""
        where = f" -> {self.out_path}" if self.out_path is not None else ""
        out = [
            f"{self.city}: {self.n_points:,} address points on {self.n_streets:,} streets, "
            f"{self.n_intersections:,} intersections{where} in {self.seconds:.1f} s",
            "points per source (most authoritative first):",
            f"  {'source':<14}{'rows':>9}{'addresses':>11}{'superseded':>12}{'covered':>9}"
            f"{'kept':>9}{'crossings':>11}",
        ]
        for c in self.counts:
            out.append(
                f"  {c.name:<14}{c.rows:>9,}{c.points:>11,}{c.superseded:>12,}{c.covered:>9,}"
                f"{c.kept:>9,}{c.intersections:>11,}"
            )
        dup = [c for c in self.conflicts if c.kind == "duplicate"]
        far = [c for c in self.conflicts if c.kind == "outlier"]
        out.append(
            f"conflicts: {len(dup)} addresses more than {self.conflict_m:g} m apart between "
            f"sources, {len(far)} points far from their street"
        )
        ranked = sorted(self.conflicts, key=lambda c: -c.distance_m)
        out += [f"  {c.kind}: {c.line()}" for c in ranked[:max_conflicts]]
        if len(ranked) > max_conflicts:
            out.append(f"  ... and {len(ranked) - max_conflicts} more")
        out += list(self.notes)
        return out

    def conflicts_frame(self) -> pd.DataFrame:
        """Return every conflict as a table (one row each, farthest first)."""
        cols = [f.name for f in fields(Conflict)]
        rows = [[getattr(c, k) for k in cols] for c in self.conflicts]
        frame = pd.DataFrame(rows, columns=cols)
        return frame.sort_values("distance_m", ascending=False).reset_index(drop=True)


def _metres(lon: np.ndarray, lat: np.ndarray, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    """Local equirectangular metres (good to well under 1% across a city)."""
    kx = 111_320.0 * math.cos(math.radians(lat0))
    return np.asarray(lon, float) * kx, np.asarray(lat, float) * 110_574.0


def _label(row: Mapping[Any, Any]) -> str:
    parts = (row["predir"], row["name"], row["street_type"], row["postdir"])
    street = " ".join(str(p) for p in parts if p)
    return f"{row['number']} {street}" + (f", {row['zip']}" if row["zip"] else "")


def build_from_sources(
    sources: Sequence[ReferenceSource],
    *,
    city: str,
    extent: tuple[float, float, float, float] | None = None,
    holdout: Iterable[Path] = (),
    aliases: Mapping[str, str] | None = None,
    conflict_m: float = CONFLICT_M,
    coverage_m: float = COVERAGE_M,
    place_names: Sequence[str] = (),
) -> tuple[AddressReference, BuildReport]:
    """Merge a city's sources (most authoritative first) into one address reference.

    Parameters
    ----------
    sources : sequence of ReferenceSource
        In order of authority.
    city : str
        City key, kept in the reference.
    extent : tuple of float, optional
        ``(lon_min, lat_min, lon_max, lat_max)``: points outside are skipped.
    holdout : iterable of pathlib.Path
        Files kept for evaluation: a source reading one of them is refused.
    aliases : mapping of str to str, optional
        Extra street-name aliases.
    conflict_m : float
        Same address in two sources farther apart is reported.
    coverage_m : float
        Reach of an authoritative point over derived points of its street.
    place_names : sequence of str
        Places that may end an address without a comma (parsing the sources, and kept
        in the reference for its geocoder).

    Returns
    -------
    tuple of (AddressReference, BuildReport)
        The reference (points carry their ``source``) and what happened.

    Raises
    ------
    AddressReferenceError
        No sources, two with one name, a held-out file, or an unreadable source.
    """
    t0 = time.perf_counter()
    if not sources:
        raise AddressReferenceError(f"city {city!r} names no reference sources; expected one")
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AddressReferenceError(f"city {city!r}: two reference sources are named {dupes[0]!r}")
    held = {Path(p).resolve() for p in holdout}
    for s in sources:
        if s.path.resolve() in held:
            raise AddressReferenceError(
                f"reference source {s.name!r} reads {s.path}, which the city keeps for "
                "evaluation only: it must never feed a reference"
            )
    frames: list[pd.DataFrame] = []
    inters: list[pd.DataFrame] = []
    rows: dict[str, int] = {}
    n_inter: dict[str, int] = {}
    places = PlaceNames(tuple(place_names))
    for rank, src in enumerate(sources):
        pts, inter, n_rows = read_source(src, extent, places)
        frames.append(pts.assign(rank=rank))
        rows[src.name] = n_rows
        n_inter[src.name] = len(inter)
        if len(inter):
            inters.append(inter)
    allpts = harmonise_predirs(pd.concat(frames, ignore_index=True))
    # one source's repeated observations of an address: the median position
    merged = (
        allpts.groupby([*_KEY, "rank"], as_index=False, sort=True)
        .agg(lon=("lon", "median"), lat=("lat", "median"), unit=("unit", "first"),
             n_obs=("n_obs", "sum"), source=("source", "first"),
             source_id=("source_id", "first"))
        .sort_values([*_KEY, "rank"], kind="stable")
        .reset_index(drop=True)
    )
    lat0 = float(merged["lat"].median()) if len(merged) else 0.0
    mx, my = _metres(merged["lon"].to_numpy(), merged["lat"].to_numpy(), lat0)
    merged = merged.assign(_x=mx, _y=my)
    first = ~merged.duplicated(_KEY, keep="first")
    winners = merged.loc[first]
    losers = merged.loc[~first]
    conflicts: list[Conflict] = []
    if len(losers):
        pairs = losers.merge(
            winners[[*_KEY, "source", "lon", "lat", "_x", "_y"]], on=_KEY, suffixes=("", "_w")
        )
        pairs["d"] = np.hypot(pairs["_x"] - pairs["_x_w"], pairs["_y"] - pairs["_y_w"])
        for rec in pairs.loc[pairs["d"] > conflict_m].to_dict("records"):
            conflicts.append(Conflict(
                "duplicate", _label(rec), str(rec["source"]), str(rec["source_id"]),
                float(rec["lon"]), float(rec["lat"]), str(rec["source_w"]),
                float(rec["lon_w"]), float(rec["lat_w"]), float(rec["d"]),
            ))  # fmt: skip
    authority = {s.name: s.authoritative for s in sources}
    is_auth = winners["source"].map(authority).to_numpy(dtype=bool)
    covered = np.zeros(len(winners), dtype=bool)
    if is_auth.any() and (~is_auth).any():
        covered = _covered(winners, is_auth, coverage_m)
    kept = winners.loc[~covered].reset_index(drop=True)
    conflicts += _outliers(kept)
    infos = [s.info() for s in sources]
    all_inter = (
        pd.concat(inters, ignore_index=True)
        .groupby(INTERSECTION_COLUMNS[:5], as_index=False)
        .agg(lon=("lon", "median"), lat=("lat", "median"), n_obs=("n_obs", "sum"))
        if inters else None
    )  # fmt: skip
    ref = build_reference(
        kept[[*POINT_COLUMNS, "n_obs", "source"]], intersections=all_inter, aliases=aliases,
        city=city, sources=infos, place_names=places.names,
    )  # fmt: skip
    counts = []
    for src in sources:
        mine = merged["source"] == src.name
        counts.append(SourceCounts(
            name=src.name,
            rows=rows[src.name],
            points=int(mine.sum()),
            superseded=int((losers["source"] == src.name).sum()),
            covered=int((winners.loc[covered, "source"] == src.name).sum()),
            kept=int((kept["source"] == src.name).sum()),
            intersections=n_inter[src.name],
        ))  # fmt: skip
    report = BuildReport(
        city=city,
        counts=tuple(counts),
        conflicts=tuple(conflicts),
        n_points=len(ref.points),
        n_streets=ref.n_streets,
        n_intersections=len(ref.intersections),
        seconds=time.perf_counter() - t0,
        conflict_m=conflict_m,
    )
    return ref, report


def _covered(points: pd.DataFrame, is_auth: np.ndarray, coverage_m: float) -> np.ndarray:
    """Mark derived points near an authoritative point of their street of a higher source.

    Only a source ranked above a derived one covers it: a city that ranks a derived
    source first keeps its points.
    """
    from scipy.spatial import cKDTree

    out = np.zeros(len(points), dtype=bool)
    xy = points[["_x", "_y"]].to_numpy()
    rank = points["rank"].to_numpy()
    for _, raw in points.groupby(_STREET, sort=False).indices.items():
        idx = np.asarray(raw)
        auth, derived = idx[is_auth[idx]], idx[~is_auth[idx]]
        for r in np.unique(rank[auth]):
            above = auth[rank[auth] == r]
            below = derived[rank[derived] > r]
            if not len(below):
                continue
            d, _ = cKDTree(xy[above]).query(xy[below], k=1, distance_upper_bound=coverage_m)
            out[below[np.isfinite(d)]] = True
    return out


def _outliers(points: pd.DataFrame) -> list[Conflict]:
    """Find points inconsistent with every other point (2 or more) of their street and ZIP."""
    per_number_m = DEFAULT_TUNING.m_per_number_max
    out: list[Conflict] = []
    xy = points[["_x", "_y"]].to_numpy()
    nums = points["number"].to_numpy(dtype=float)
    for _, raw in points.groupby([*_STREET, "zip"], sort=False).indices.items():
        idx = np.asarray(raw)
        if len(idx) < 3:
            continue
        d = np.hypot(*(xy[idx][:, None, :] - xy[idx][None, :, :]).transpose(2, 0, 1))
        allowed = _OUTLIER_SLACK_M + per_number_m * np.abs(nums[idx][:, None] - nums[idx][None, :])
        np.fill_diagonal(d, np.inf)
        far = (d > allowed) | np.eye(len(idx), dtype=bool)
        for i in np.flatnonzero(far.all(axis=1)):
            j = int(np.argmin(d[i]))
            r, o = points.iloc[idx[i]].to_dict(), points.iloc[idx[j]].to_dict()
            out.append(Conflict(
                "outlier", _label(r), str(r["source"]), str(r["source_id"]), float(r["lon"]),
                float(r["lat"]), _label(o), float(o["lon"]), float(o["lat"]), float(d[i, j]),
            ))  # fmt: skip
    return out
