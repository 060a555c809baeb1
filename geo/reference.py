"""Address reference: build from address points (and optional centerlines), save, load.

A reference holds three tables, all in ``lon, lat`` (EPSG:4326):

* ``points``: one row per distinct address (house number, pre-direction, street name,
  street type, post-direction, unit, zip, lon, lat, ``n_obs`` observations merged,
  ``source``: the name of the reference source it came from);
* ``intersections``: street pairs with a known location (e.g. ``29TH AVE AT SPEEDWAY``);
* ``centerlines`` (optional): street segments with TIGER-style address ranges
  (from/to, left/right).

It is saved as one Parquet file (a ``record`` column tells the tables apart, centerline
geometry as WKB) and loads in a fraction of a second.

Sources are read through pandas (CSV) or geopandas/pyogrio (GeoJSON, Shapefile,
GeoPackage, any OGR vector format). Which sources a city's reference is built from, in
which order of authority, is the city pack's business (:mod:`geo.reference_sources`
merges them); nothing here knows a city.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from geo.address import (
    BUILTIN_NAME_ALIASES,
    NO_PLACES,
    ParsedAddress,
    ParsedStreet,
    PlaceNames,
    canonical_name,
    canonical_street_type,
    parse_address,
    parse_street,
)
from geo.errors import AddressReferenceError

if TYPE_CHECKING:  # geopandas is imported where it is used: it is slow to import
    import geopandas as gpd

__all__ = [
    "AddressReference",
    "CenterlineColumns",
    "PointColumns",
    "ReferenceSourceInfo",
    "build_reference",
    "intersections_from_text",
    "load_reference",
    "points_from_frame",
    "points_from_text",
    "read_address_points",
    "read_centerlines",
]

#: Version 2 added the ``source`` column of the points and the sources' attributions.
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)

POINT_COLUMNS = [
    "number", "predir", "name", "street_type", "postdir", "unit", "zip", "lon", "lat",
]  # fmt: skip
INTERSECTION_COLUMNS = ["name_a", "type_a", "name_b", "type_b", "zip", "lon", "lat"]
CENTERLINE_COLUMNS = [
    "predir", "name", "street_type", "postdir",
    "from_left", "to_left", "from_right", "to_right", "zip_left", "zip_right",
]  # fmt: skip
_STR_POINT = ["predir", "name", "street_type", "postdir", "unit", "zip"]

@dataclass(frozen=True)
class PointColumns:
    """Names of the source columns holding each part of an address point.

    Set ``address`` to read a single free-text column (``16815 W VANOWEN ST, 91406``)
    instead of the parts, or ``street`` for the whole street in one column
    (``W Vanowen St``, as OpenAddresses has it) beside ``number``. Leave a part ``None``
    when the source has no such column. ``pretype`` is a type written before the name
    (``ROUTE 1``, ``VIA MARINA``) and becomes part of the name; ``id`` is the source's
    own record id (shown in conflict reports).
    """

    number: str | None = "house_number"
    predir: str | None = "predir"
    name: str | None = "street_name"
    street_type: str | None = "street_type"
    postdir: str | None = "postdir"
    unit: str | None = "unit"
    zip: str | None = "zip"
    lon: str = "lon"
    lat: str = "lat"
    address: str | None = None
    pretype: str | None = None
    street: str | None = None
    id: str | None = None

    def used(self) -> list[str]:
        """Return the source columns this mapping reads (present or not)."""
        names = (self.number, self.predir, self.pretype, self.name, self.street_type,
                 self.postdir, self.unit, self.zip, self.lon, self.lat, self.address,
                 self.street, self.id)  # fmt: skip
        return [n for n in names if n is not None]


@dataclass(frozen=True)
class CenterlineColumns:
    """Source columns of a centerline layer; defaults follow TIGER/Line ADDRFEAT.

    ``full_name`` (e.g. ``W Vanowen St``) is parsed when the parts are absent.
    """

    full_name: str | None = "FULLNAME"
    predir: str | None = None
    name: str | None = None
    street_type: str | None = None
    postdir: str | None = None
    from_left: str = "LFROMHN"
    to_left: str = "LTOHN"
    from_right: str = "RFROMHN"
    to_right: str = "RTOHN"
    zip_left: str | None = "ZIPL"
    zip_right: str | None = "ZIPR"


@dataclass(frozen=True)
class ReferenceSourceInfo:
    """What a reference says about one of its sources (kept in the saved file).

    Attributes
    ----------
    name : str
        Short name, as in the points' ``source`` column and the answers (``cams``).
    label : str
        Name shown to people.
    attribution : str
        The attribution its terms ask for.
    authoritative : bool
        An address-point layer kept by an authority (as opposed to points derived
        from, e.g., earlier service requests).
    file : str
        File name it was read from.
    """

    name: str
    label: str = ""
    attribution: str = ""
    authoritative: bool = False
    file: str = ""


@dataclass
class AddressReference:
    """Address points, known intersections, optional centerlines and name aliases.

    Attributes
    ----------
    points : pandas.DataFrame
        Columns ``number`` (int64), ``predir``, ``name``, ``street_type``, ``postdir``,
        ``unit``, ``zip`` (str, ``""`` when unknown), ``lon``, ``lat`` (float64),
        ``n_obs`` (int64).
    intersections : pandas.DataFrame
        Columns ``name_a``, ``type_a``, ``name_b``, ``type_b``, ``zip``, ``lon``, ``lat``.
    centerlines : geopandas.GeoDataFrame or None
        Columns of ``CENTERLINE_COLUMNS`` plus LineString ``geometry`` in EPSG:4326.
    aliases : dict of str to str
        Alternative street name -> canonical name.
    city : str
        City key, e.g. ``los_angeles``.
    sources : tuple of ReferenceSourceInfo
        The sources it was built from, most authoritative first.
    place_names : tuple of str
        Places that may end an address without a comma (the city pack's); the
        geocoder parses queries with them, as the build parsed the sources.
    """

    points: pd.DataFrame
    intersections: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=INTERSECTION_COLUMNS)
    )
    centerlines: gpd.GeoDataFrame | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    city: str = ""
    sources: tuple[ReferenceSourceInfo, ...] = ()
    place_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        missing = [c for c in POINT_COLUMNS if c not in self.points.columns]
        if missing:
            raise AddressReferenceError(
                f"address points lack columns {missing}; expected {POINT_COLUMNS}"
            )
        if "n_obs" not in self.points.columns:
            self.points = self.points.assign(n_obs=1)
        if "source" not in self.points.columns:
            self.points = self.points.assign(source="")
        missing_i = [c for c in INTERSECTION_COLUMNS if c not in self.intersections.columns]
        if missing_i:
            raise AddressReferenceError(
                f"intersections lack columns {missing_i}; expected {INTERSECTION_COLUMNS}"
            )

    @property
    def n_streets(self) -> int:
        """Number of distinct (name, type) streets among the points."""
        return int(self.points.groupby(["name", "street_type"]).ngroups)

    def source(self, name: str) -> ReferenceSourceInfo | None:
        """Return what the reference says about source ``name`` (None if it has none)."""
        return next((s for s in self.sources if s.name == name), None)

    def save(self, path: Path) -> Path:
        """Write the reference to one Parquet file and return its path.

        Parameters
        ----------
        path : pathlib.Path
            Output file (``.parquet``); parent directories are created.

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pts = self.points[[*POINT_COLUMNS, "n_obs", "source"]].assign(record="point")
        inter_cols = [*INTERSECTION_COLUMNS, *(["n_obs"] if "n_obs" in self.intersections else [])]
        inter = self.intersections[inter_cols].assign(record="intersection")
        frames: list[pd.DataFrame] = [pts, inter]
        if self.centerlines is not None and len(self.centerlines):
            cl = pd.DataFrame(self.centerlines[CENTERLINE_COLUMNS])
            cl["wkb"] = shapely.to_wkb(np.asarray(self.centerlines.geometry.values))
            frames.append(cl.assign(record="centerline"))
        table_df = pd.concat(frames, ignore_index=True)
        for col in table_df.columns:
            if col in ("lon", "lat"):
                table_df[col] = table_df[col].astype("float64")
            elif col in ("number", "n_obs", "from_left", "to_left", "from_right", "to_right"):
                table_df[col] = table_df[col].astype("Int64")
            elif col != "wkb":
                table_df[col] = table_df[col].astype("string")
        table = pa.Table.from_pandas(table_df, preserve_index=False)
        meta = {
            "format_version": FORMAT_VERSION,
            "city": self.city,
            "sources": [asdict(s) for s in self.sources],
            "aliases": self.aliases,
            "place_names": list(self.place_names),
        }
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"curbside.reference": json.dumps(meta).encode()}
        )
        pq.write_table(table, path, compression="zstd")
        return path


def _empty_str(series: pd.Series) -> pd.Series:
    return series.astype("string").fillna("").astype(str)


def _clean_points(
    df: pd.DataFrame, extent: tuple[float, float, float, float] | None
) -> pd.DataFrame:
    out = df.copy()
    for col in _STR_POINT:
        if col not in out.columns:
            out[col] = ""
        out[col] = _empty_str(out[col])
    out["lon"] = pd.to_numeric(out["lon"], errors="coerce")
    out["lat"] = pd.to_numeric(out["lat"], errors="coerce")
    out["number"] = pd.to_numeric(out["number"], errors="coerce")
    ok = (
        out["lon"].notna()
        & out["lat"].notna()
        & out["number"].notna()
        & (out["name"] != "")
        & np.isfinite(out["lon"])
        & np.isfinite(out["lat"])
        & (out["lon"].abs() <= 180)
        & (out["lat"].abs() <= 90)
        & ~((out["lon"] == 0) & (out["lat"] == 0))
    )
    if extent is not None:
        ok &= out["lon"].between(extent[0], extent[2]) & out["lat"].between(extent[1], extent[3])
    kept: pd.DataFrame = out.loc[ok]
    kept["number"] = kept["number"].astype("int64")
    return kept


def points_from_frame(frame: pd.DataFrame, columns: PointColumns | None = None) -> pd.DataFrame:
    """Standardise a table of address points (parts in separate columns).

    Parameters
    ----------
    frame : pandas.DataFrame
        Source rows.
    columns : PointColumns, optional
        Where each part is; defaults to :class:`PointColumns` ().

    Returns
    -------
    pandas.DataFrame
        Columns ``POINT_COLUMNS`` with canonical directionals, names and types (plus
        ``source_id`` when ``columns.id`` is set); rows without a usable number, name or
        coordinate are dropped.
    """
    cols = columns or PointColumns()
    if cols.address is not None:
        return points_from_text(
            frame, cols.address, lon=cols.lon, lat=cols.lat, zip_column=cols.zip
        )
    if cols.name is None and cols.street is None:
        raise AddressReferenceError(
            "address point columns name neither a street name nor a whole street; "
            "set PointColumns.name (with the other parts) or PointColumns.street"
        )
    for needed in (cols.number, cols.name, cols.street, cols.lon, cols.lat):
        if needed is not None and needed not in frame.columns:
            raise AddressReferenceError(
                f"address points lack column {needed!r}; columns are {list(frame.columns)}"
            )

    def col(name: str | None) -> pd.Series:
        if name is None or name not in frame.columns:
            return pd.Series([""] * len(frame), index=frame.index, dtype="string")
        return _empty_str(frame[name])

    rows = []
    names = col(cols.name)
    if cols.pretype is not None:
        names = (col(cols.pretype) + " " + names).str.strip()
    if cols.street is not None:
        names = (col(cols.street) + " " + names).str.strip()
    for pre, nm, typ, post in zip(
        col(cols.predir), names, col(cols.street_type), col(cols.postdir), strict=True
    ):
        street = parse_street(" ".join(p for p in (pre, nm, typ, post) if p))
        if typ and not street.street_type:
            street = ParsedStreet(
                street.predir, street.name, canonical_street_type(typ), street.postdir, typ
            )
        rows.append((street.predir, street.name, street.street_type, street.postdir))
    parts = pd.DataFrame(
        rows, columns=["predir", "name", "street_type", "postdir"], index=frame.index
    )
    out = pd.DataFrame(
        {
            # the first number of "1018 1/2", "12-14", "7A"
            "number": pd.to_numeric(
                col(cols.number).str.extract(r"^\s*(\d+)", expand=False), errors="coerce"
            ) if cols.number else np.nan,
            **{c: parts[c] for c in parts.columns},
            "unit": col(cols.unit),
            "zip": col(cols.zip).str.extract(r"(\d{5})", expand=False).fillna(""),
            "lon": frame[cols.lon],
            "lat": frame[cols.lat],
        },
        index=frame.index,
    )
    keep = list(POINT_COLUMNS)
    if cols.id is not None and cols.id in frame.columns:
        out["source_id"] = col(cols.id)
        keep.append("source_id")
    return _clean_points(out, None)[keep].reset_index(drop=True)


def _parsed_rows(
    frame: pd.DataFrame,
    address_column: str,
    lon: str,
    lat: str,
    zip_column: str | None,
    places: PlaceNames = NO_PLACES,
) -> Iterator[tuple[ParsedAddress, Any, Any]]:
    """Yield (parsed address, lon, lat) for every row of a free-text address column."""
    zips = frame[zip_column] if zip_column and zip_column in frame.columns else [None] * len(frame)
    for text, z, x, y in zip(frame[address_column], zips, frame[lon], frame[lat], strict=True):
        yield parse_address(text, z, places), x, y


def points_from_text(
    frame: pd.DataFrame,
    address_column: str,
    *,
    lon: str = "lon",
    lat: str = "lat",
    zip_column: str | None = None,
    places: PlaceNames = NO_PLACES,
) -> pd.DataFrame:
    """Standardise address points given as free text (``16815 W VANOWEN ST, 91406``).

    Rows that parse as intersections are skipped here; see :func:`intersections_from_text`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Source rows.
    address_column : str
        Column with the address text.
    lon, lat : str
        Coordinate columns (already ``lon``/``lat``; convert ``(lat, lon)`` sources first).
    zip_column : str, optional
        ZIP column used when the text carries none.
    places : PlaceNames, optional
        Places that may end the text without a comma.

    Returns
    -------
    pandas.DataFrame
        Columns ``POINT_COLUMNS``.
    """
    if address_column not in frame.columns:
        raise AddressReferenceError(
            f"address points lack column {address_column!r}; columns are {list(frame.columns)}"
        )
    rows = []
    for p, x, y in _parsed_rows(frame, address_column, lon, lat, zip_column, places):
        if p.kind != "address" or p.number is None:
            continue
        s = p.street
        rows.append((p.number, s.predir, s.name, s.street_type, s.postdir, p.unit, p.zip, x, y))
    out = pd.DataFrame(rows, columns=POINT_COLUMNS)
    return _clean_points(out, None)[POINT_COLUMNS].reset_index(drop=True)


def intersections_from_text(
    frame: pd.DataFrame,
    address_column: str,
    *,
    lon: str = "lon",
    lat: str = "lat",
    zip_column: str | None = None,
    places: PlaceNames = NO_PLACES,
) -> pd.DataFrame:
    """Known intersections (``X AT Y`` rows) from a free-text address column.

    Parameters
    ----------
    frame : pandas.DataFrame
        Source rows.
    address_column : str
        Column with the address text.
    lon, lat : str
        Coordinate columns.
    zip_column : str, optional
        ZIP column used when the text carries none.
    places : PlaceNames, optional
        Places that may end the text without a comma.

    Returns
    -------
    pandas.DataFrame
        Columns ``INTERSECTION_COLUMNS``, one row per distinct pair and zip (median
        coordinates).
    """
    rows = []
    for p, x, y in _parsed_rows(frame, address_column, lon, lat, zip_column, places):
        if p.kind != "intersection" or p.cross_street is None:
            continue
        a, b = sorted(
            [
                (p.street.name, p.street.street_type),
                (p.cross_street.name, p.cross_street.street_type),
            ]
        )
        rows.append((a[0], a[1], b[0], b[1], p.zip, x, y))
    out = pd.DataFrame(rows, columns=INTERSECTION_COLUMNS)
    out["lon"] = pd.to_numeric(out["lon"], errors="coerce")
    out["lat"] = pd.to_numeric(out["lat"], errors="coerce")
    out = out.loc[out["lon"].notna() & out["lat"].notna() & (out["lon"] != 0)]
    if out.empty:
        return out.reset_index(drop=True)
    return (
        out.groupby(["name_a", "type_a", "name_b", "type_b", "zip"], as_index=False)
        .agg(lon=("lon", "median"), lat=("lat", "median"), n_obs=("lon", "size"))
        .reset_index(drop=True)
    )


def read_address_points(
    path: Path,
    columns: PointColumns | None = None,
    *,
    layer: str | None = None,
) -> pd.DataFrame:
    """Read address points from CSV, GeoJSON, Shapefile, GeoPackage (any OGR format).

    CSV is read with pandas and needs ``lon``/``lat`` columns; other formats are read
    with geopandas/pyogrio, reprojected to EPSG:4326 and take ``lon``/``lat`` from the
    point geometry.

    Parameters
    ----------
    path : pathlib.Path
        Source file.
    columns : PointColumns, optional
        Source column names.
    layer : str, optional
        Layer of a multi-layer source (GeoPackage).

    Returns
    -------
    pandas.DataFrame
        Columns ``POINT_COLUMNS``.
    """
    path = Path(path)
    cols = columns or PointColumns()
    if not path.exists():
        raise AddressReferenceError(f"address point file {path} does not exist")
    if path.suffix.lower() in (".csv", ".txt"):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for c in (cols.lon, cols.lat):
            if c not in frame.columns:
                raise AddressReferenceError(
                    f"{path} lacks coordinate column {c!r}; columns are {list(frame.columns)}"
                )
        return points_from_frame(frame, cols)
    import geopandas as gpd

    gdf = gpd.read_file(path, layer=layer)
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    if not (gdf.geom_type == "Point").all():
        raise AddressReferenceError(f"{path} has non-point geometries; expected address points")
    frame = pd.DataFrame(gdf.drop(columns="geometry"))
    frame[cols.lon] = gdf.geometry.x.to_numpy()
    frame[cols.lat] = gdf.geometry.y.to_numpy()
    return points_from_frame(frame, cols)


def read_centerlines(
    source: Path | gpd.GeoDataFrame,
    columns: CenterlineColumns | None = None,
    *,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read street centerlines with TIGER-style address ranges.

    Parameters
    ----------
    source : pathlib.Path or geopandas.GeoDataFrame
        File readable by geopandas/pyogrio, or a frame already loaded.
    columns : CenterlineColumns, optional
        Source column names (TIGER ADDRFEAT by default).
    layer : str, optional
        Layer of a multi-layer source.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``CENTERLINE_COLUMNS`` and LineString ``geometry`` in EPSG:4326; segments
        with no address range on either side are dropped.
    """
    import geopandas as gpd

    cols = columns or CenterlineColumns()
    if isinstance(source, gpd.GeoDataFrame):
        gdf, where = source, "centerline frame"
    else:
        if not Path(source).exists():
            raise AddressReferenceError(f"centerline file {source} does not exist")
        gdf, where = gpd.read_file(source, layer=layer), str(source)
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    gdf = gdf.explode(index_parts=False).reset_index(drop=True)
    gdf = gdf.loc[gdf.geom_type == "LineString"].reset_index(drop=True)
    for c in (cols.from_left, cols.to_left, cols.from_right, cols.to_right):
        if c not in gdf.columns:
            raise AddressReferenceError(
                f"{where} lacks address range column {c!r}; columns are {list(gdf.columns)}"
            )
    streets: list[ParsedStreet] = []
    for i in range(len(gdf)):
        if cols.name is not None:
            parts = [
                str(gdf.at[i, c])
                if c is not None and c in gdf.columns and pd.notna(gdf.at[i, c])
                else ""
                for c in (cols.predir, cols.name, cols.street_type, cols.postdir)
            ]
            streets.append(parse_street(" ".join(p for p in parts if p)))
        elif cols.full_name is not None and cols.full_name in gdf.columns:
            val = gdf.at[i, cols.full_name]
            streets.append(parse_street(str(val) if pd.notna(val) else ""))
        else:
            raise AddressReferenceError(f"{where} has neither a name nor a full-name column")
    out = gpd.GeoDataFrame(
        {
            "predir": [s.predir for s in streets],
            "name": [s.name for s in streets],
            "street_type": [s.street_type for s in streets],
            "postdir": [s.postdir for s in streets],
            "from_left": pd.to_numeric(gdf[cols.from_left], errors="coerce"),
            "to_left": pd.to_numeric(gdf[cols.to_left], errors="coerce"),
            "from_right": pd.to_numeric(gdf[cols.from_right], errors="coerce"),
            "to_right": pd.to_numeric(gdf[cols.to_right], errors="coerce"),
            "zip_left": _empty_str(gdf[cols.zip_left]) if cols.zip_left in gdf.columns else "",
            "zip_right": _empty_str(gdf[cols.zip_right]) if cols.zip_right in gdf.columns else "",
        },
        geometry=gdf.geometry.values,
        crs=4326,
    )
    has_range = (out["from_left"].notna() & out["to_left"].notna()) | (
        out["from_right"].notna() & out["to_right"].notna()
    )
    out = out.loc[has_range & (out["name"] != "")].reset_index(drop=True)
    for c in ("from_left", "to_left", "from_right", "to_right"):
        out[c] = out[c].astype("Int64")
    return out


def _derive_aliases(names: Iterable[str]) -> dict[str, str]:
    aliases = dict(BUILTIN_NAME_ALIASES)
    for name in set(names):
        squeezed = name.replace(" ", "")
        if squeezed != name:
            aliases.setdefault(squeezed, name)
        for prefix, word in (("SAINT ", "ST "), ("MOUNT ", "MT "), ("FORT ", "FT ")):
            if name.startswith(prefix):
                aliases.setdefault(word + name[len(prefix) :], name)
    return {k: v for k, v in aliases.items() if k != v}


def build_reference(
    points: pd.DataFrame,
    *,
    intersections: pd.DataFrame | None = None,
    centerlines: gpd.GeoDataFrame | None = None,
    aliases: Mapping[str, str] | None = None,
    city: str = "",
    sources: Iterable[ReferenceSourceInfo] = (),
    extent: tuple[float, float, float, float] | None = None,
    place_names: Iterable[str] = (),
) -> AddressReference:
    """Merge standardised address points into a reference.

    Repeated observations of one address (same number, street, zip) are merged to
    their median coordinate; ``n_obs`` counts them (and ``source``, when the points
    carry one, is that of the first).

    Parameters
    ----------
    points : pandas.DataFrame
        Columns ``POINT_COLUMNS`` (see :func:`points_from_frame`).
    intersections : pandas.DataFrame, optional
        Columns ``INTERSECTION_COLUMNS``.
    centerlines : geopandas.GeoDataFrame, optional
        From :func:`read_centerlines`.
    aliases : mapping of str to str, optional
        Extra street-name aliases (alias -> canonical); canonicalised on the way in.
    city : str
        City key.
    sources : iterable of ReferenceSourceInfo
        The sources, kept as metadata.
    extent : tuple of float, optional
        ``(lon_min, lat_min, lon_max, lat_max)``: points outside are dropped.
    place_names : iterable of str
        Places that may end an address without a comma, kept for the geocoder.

    Returns
    -------
    AddressReference
        The merged reference.
    """
    missing = [c for c in POINT_COLUMNS if c not in points.columns]
    if missing:
        raise AddressReferenceError(
            f"address points lack columns {missing}; expected {POINT_COLUMNS}"
        )
    extra = [c for c in ("source", "n_obs") if c in points.columns]
    pts = _clean_points(points[[*POINT_COLUMNS, *extra]], extent)
    if "source" not in pts.columns:
        pts = pts.assign(source="")
    pts["source"] = _empty_str(pts["source"])
    if "n_obs" not in pts.columns:
        pts = pts.assign(n_obs=1)
    key = ["number", "predir", "name", "street_type", "postdir", "zip"]
    if pts.empty:
        merged = pts.assign(n_obs=pd.Series(dtype="int64"))
    else:
        merged = pts.groupby(key, as_index=False, sort=True).agg(
            lon=("lon", "median"),
            lat=("lat", "median"),
            unit=("unit", "first"),
            n_obs=("n_obs", "sum"),
            source=("source", "first"),
        )
    merged = merged[[*POINT_COLUMNS, "n_obs", "source"]].reset_index(drop=True)
    merged["n_obs"] = merged["n_obs"].astype("int64")
    inter_cols = [*INTERSECTION_COLUMNS, "n_obs"]
    inter = (
        intersections[[c for c in inter_cols if c in intersections.columns]].reset_index(drop=True)
        if intersections is not None
        else pd.DataFrame(columns=INTERSECTION_COLUMNS)
    )
    names = set(merged["name"]) | set(inter["name_a"]) | set(inter["name_b"])
    if centerlines is not None:
        names |= set(centerlines["name"])
    all_aliases = _derive_aliases(names)
    for k, v in (aliases or {}).items():
        all_aliases[canonical_name(k)] = canonical_name(v)
    return AddressReference(
        points=merged,
        intersections=inter,
        centerlines=centerlines,
        aliases=all_aliases,
        city=city,
        sources=tuple(sources),
        place_names=tuple(place_names),
    )


def load_reference(source: Path | str) -> AddressReference:
    """Load a reference saved by :meth:`AddressReference.save`.

    Parameters
    ----------
    source : pathlib.Path or str
        Parquet file.

    Returns
    -------
    AddressReference
        The reference.
    """
    path = Path(source)
    if not path.exists():
        raise AddressReferenceError(
            f"address reference {path} does not exist; build it with "
            "'dispatch geo build-reference'"
        )
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise AddressReferenceError(f"{path} is not a readable Parquet file: {exc}") from exc
    raw_meta = (table.schema.metadata or {}).get(b"curbside.reference")
    if raw_meta is None:
        raise AddressReferenceError(f"{path} lacks the 'curbside.reference' metadata")
    meta = json.loads(raw_meta)
    if meta.get("format_version") not in _READABLE_VERSIONS:
        raise AddressReferenceError(
            f"{path} has format_version {meta.get('format_version')!r}; expected one of "
            f"{list(_READABLE_VERSIONS)}"
        )
    df = table.to_pandas()
    if "source" not in df.columns:
        df["source"] = ""
    record = df["record"].astype(str)
    pts = df.loc[record == "point", [*POINT_COLUMNS, "n_obs", "source"]].reset_index(drop=True)
    for c in [*_STR_POINT, "source"]:
        pts[c] = _empty_str(pts[c])
    pts["number"] = pts["number"].astype("int64")
    pts["n_obs"] = pts["n_obs"].astype("int64")
    inter = df.loc[record == "intersection", [*INTERSECTION_COLUMNS, "n_obs"]].reset_index(
        drop=True
    )
    inter["n_obs"] = inter["n_obs"].fillna(1).astype("int64")
    for c in ("name_a", "type_a", "name_b", "type_b", "zip"):
        inter[c] = _empty_str(inter[c])
    centerlines = None
    cl_rows = df.loc[record == "centerline"]
    if len(cl_rows):
        cl = cl_rows[CENTERLINE_COLUMNS].reset_index(drop=True)
        for c in ("predir", "name", "street_type", "postdir", "zip_left", "zip_right"):
            cl[c] = _empty_str(cl[c])
        geoms = shapely.from_wkb(np.asarray(list(cl_rows["wkb"]), dtype=object))
        import geopandas as gpd

        centerlines = gpd.GeoDataFrame(cl, geometry=geoms, crs=4326)
    return AddressReference(
        points=pts,
        intersections=inter,
        centerlines=centerlines,
        aliases=dict(meta.get("aliases", {})),
        city=str(meta.get("city", "")),
        sources=tuple(_source_info(s) for s in meta.get("sources", ())),
        place_names=tuple(str(n) for n in meta.get("place_names", ())),
    )


def _source_info(raw: object) -> ReferenceSourceInfo:
    """Read one source's metadata (format 1 kept only the file name)."""
    if isinstance(raw, dict):
        known = {k: raw[k] for k in ("name", "label", "attribution", "authoritative", "file")
                 if k in raw}  # fmt: skip
        return ReferenceSourceInfo(**known)
    return ReferenceSourceInfo(name="", file=str(raw))
