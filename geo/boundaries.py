"""Boundary layers: council districts and city limits, from files or ArcGIS feature services.

A *district layer* is a :class:`geopandas.GeoDataFrame` with exactly the columns
``district`` (the district id as text, e.g. ``"7"``), ``name`` and ``geometry``
(polygons in EPSG:4326). It is read from a file (GeoJSON, Shapefile, GeoPackage ... through
pyogrio) or fetched once from an ArcGIS FeatureServer layer, validated, and saved as
GeoJSON so that the running product never needs the network.

The I/O adapters (:func:`read_layer_file`, :func:`fetch_arcgis_features`) are separate
from the pure shaping and checking (:func:`shape_district_layer`,
:func:`validate_district_layer`).
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from geo.errors import BoundaryError

__all__ = [
    "DEFAULT_OVERLAP_TOLERANCE",
    "fetch_arcgis_features",
    "import_district_layer",
    "is_url",
    "is_wgs84",
    "load_boundary",
    "load_district_layer",
    "local_utm_epsg",
    "read_layer_file",
    "save_district_layer",
    "shape_district_layer",
    "validate_district_layer",
]

#: Largest overlap allowed between two districts, as a fraction of the smaller one's area.
#: Published layers digitised from separate sources overlap along shared edges; the 2012
#: Los Angeles council districts overlap by at most 61 ppm (0.0061%) of a district.
DEFAULT_OVERLAP_TOLERANCE = 1e-3

#: Signature of the function that opens a URL (``urllib.request.urlopen`` or a fake).
UrlOpener = Callable[..., Any]

_MAX_PAGES = 1000


def local_utm_epsg(bounds: Any) -> int:
    """Return the EPSG code of the WGS 84 UTM zone at the centre of lon/lat ``bounds``.

    A cheap stand-in for ``GeoDataFrame.estimate_utm_crs()`` (which queries the PROJ
    database, ~0.3 s a call): metre distances and areas for one city.

    Parameters
    ----------
    bounds
        ``(minx, miny, maxx, maxy)`` in EPSG:4326, e.g. ``gdf.total_bounds``.
    """
    minx, miny, maxx, maxy = (float(v) for v in np.asarray(bounds, dtype=float))
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    zone = min(60, max(1, int((lon + 180) // 6) + 1))
    return (32600 if lat >= 0 else 32700) + zone


def is_url(source: str | os.PathLike[str]) -> bool:
    """Return whether ``source`` is an ``http(s)://`` URL rather than a file path."""
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def is_wgs84(crs: Any) -> bool:
    """Return whether ``crs`` is EPSG:4326 or the equivalent OGC:CRS84 (lon, lat order).

    Parameters
    ----------
    crs
        Anything :class:`pyproj.CRS` accepts, or ``None``.
    """
    if crs is None:
        return False
    c = CRS.from_user_input(crs)
    if c.to_epsg() == 4326:
        return True
    return bool(c.equals(CRS.from_user_input("OGC:CRS84"), ignore_axis_order=True))


# ----------------------------------------------------------------------------- adapters


def read_layer_file(path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """Read a vector file (GeoJSON, Shapefile, GeoPackage ...) through pyogrio.

    Parameters
    ----------
    path
        File to read; a GeoPackage with several layers uses its first layer.

    Returns
    -------
    geopandas.GeoDataFrame
        The features as stored, in the file's own CRS.

    Raises
    ------
    BoundaryError
        If the file is missing or cannot be read as a vector layer.
    """
    p = Path(path)
    if not p.exists():
        raise BoundaryError(f"boundary file {p} does not exist; expected a GeoJSON/Shapefile/GPKG")
    size = p.stat().st_size
    if size > MAX_LAYER_BYTES:
        raise BoundaryError(
            f"boundary file {p} is {size / 1e6:.0f} MB; the largest accepted is "
            f"{MAX_LAYER_BYTES / 1e6:.0f} MB (simplify the layer first)"
        )
    try:
        gdf = gpd.read_file(p, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several DataSourceError/DataLayerError types
        raise BoundaryError(f"boundary file {p} cannot be read as a vector layer: {exc}") from exc
    check_vertex_budget(gdf, str(p))
    return gdf


#: Largest boundary file read, in bytes.
MAX_LAYER_BYTES = 50 * 1024 * 1024
#: Most vertices a district layer may have: the 15 LA districts have about 13,000; a
#: layer of millions would make every map and every point-in-polygon test crawl.
MAX_LAYER_VERTICES = 500_000


def check_vertex_budget(gdf: gpd.GeoDataFrame, source_name: str) -> None:
    """Refuse a layer with more than :data:`MAX_LAYER_VERTICES` vertices."""
    n = int(shapely.get_num_coordinates(np.asarray(gdf.geometry.values, dtype=object)).sum())
    if n > MAX_LAYER_VERTICES:
        raise BoundaryError(
            f"{source_name} has {n:,} vertices; at most {MAX_LAYER_VERTICES:,} are accepted "
            "(simplify the layer first)"
        )


def _query_url(layer_url: str, params: dict[str, str]) -> str:
    """Return the ``/query`` URL of an ArcGIS layer with ``params`` (existing ones kept)."""
    parts = urllib.parse.urlsplit(layer_url)
    path = parts.path.rstrip("/")
    if not path.endswith("/query"):
        path += "/query"
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(params)
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, path, urllib.parse.urlencode(query, safe="*=,"), "")
    )


def fetch_arcgis_features(
    layer_url: str,
    *,
    timeout_s: float = 30.0,
    page_size: int | None = None,
    opener: UrlOpener | None = None,
) -> list[dict[str, Any]]:
    """Fetch every feature of an ArcGIS FeatureServer/MapServer layer as GeoJSON features.

    Asks ``<layer_url>/query?where=1=1&outFields=*&f=geojson&outSR=4326`` and follows the
    service's paging (``resultOffset`` until ``exceededTransferLimit`` is no longer set).

    Parameters
    ----------
    layer_url
        The layer's URL, e.g. ``https://.../FeatureServer/0`` (a ``/query`` suffix is fine).
    timeout_s
        Timeout of each HTTP request.
    page_size
        ``resultRecordCount`` to ask for; ``None`` lets the server choose its maximum.
    opener
        Function opening a URL (``urllib.request.urlopen`` by default); tests pass a fake.

    Returns
    -------
    list of dict
        GeoJSON features, lon/lat in EPSG:4326.

    Raises
    ------
    BoundaryError
        On a network error, a non-JSON answer, an ArcGIS ``error`` object, or paging that
        does not advance.
    """
    open_url = opener if opener is not None else urllib.request.urlopen
    features: list[dict[str, Any]] = []
    offset = 0
    first_of_previous = ""
    for _ in range(_MAX_PAGES):
        params = {
            "where": "1=1",
            "outFields": "*",
            "f": "geojson",
            "outSR": "4326",
            "returnGeometry": "true",
            "resultOffset": str(offset),
        }
        if page_size is not None:
            params["resultRecordCount"] = str(page_size)
        url = _query_url(layer_url, params)
        try:
            with open_url(url, timeout=timeout_s) as resp:
                raw = resp.read(MAX_LAYER_BYTES + 1)
            if len(raw) > MAX_LAYER_BYTES:
                raise BoundaryError(
                    f"district layer {layer_url} answered more than "
                    f"{MAX_LAYER_BYTES / 1e6:.0f} MB in one page; expected a small layer"
                )
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise BoundaryError(f"cannot fetch district layer from {url}: {exc}") from exc
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BoundaryError(
                f"district layer {layer_url} answered something that is not JSON "
                f"(first bytes {raw[:60]!r}); expected an ArcGIS f=geojson FeatureCollection"
            ) from exc
        if not isinstance(doc, dict):
            raise BoundaryError(
                f"district layer {layer_url} answered {type(doc).__name__}, "
                "expected a GeoJSON FeatureCollection object"
            )
        if "error" in doc:
            err = doc["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise BoundaryError(f"ArcGIS layer {layer_url} answered an error: {msg}")
        page = doc.get("features")
        if not isinstance(page, list):
            raise BoundaryError(
                f"district layer {layer_url} answered JSON without a 'features' list; "
                "expected an ArcGIS f=geojson FeatureCollection"
            )
        if page and offset and json.dumps(page[0], sort_keys=True) == first_of_previous:
            raise BoundaryError(
                f"ArcGIS layer {layer_url} ignored resultOffset={offset} (same page again); "
                "the service does not support paging: ask for a larger maxRecordCount or "
                "export the layer to a file"
            )
        first_of_previous = json.dumps(page[0], sort_keys=True) if page else ""
        features.extend(page)
        props = doc.get("properties")
        exceeded = bool(doc.get("exceededTransferLimit")) or (
            isinstance(props, dict) and bool(props.get("exceededTransferLimit"))
        )
        if not exceeded:
            return features
        if not page:
            raise BoundaryError(
                f"ArcGIS layer {layer_url} set exceededTransferLimit at offset {offset} "
                "but returned no features; paging cannot advance"
            )
        offset += len(page)
    raise BoundaryError(f"ArcGIS layer {layer_url}: more than {_MAX_PAGES} pages; giving up")


# ----------------------------------------------------------------------- pure shaping


def _id_text(value: Any) -> str | None:
    """Return a district id as text (``7.0`` -> ``"7"``), or ``None`` for a missing id."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    text = str(value).strip()
    return text or None


def shape_district_layer(
    gdf: gpd.GeoDataFrame,
    id_field: str,
    name_field: str | None,
    source_name: str,
    *,
    reproject: bool = True,
) -> gpd.GeoDataFrame:
    """Reduce a raw layer to the ``district``, ``name``, ``geometry`` columns.

    Parameters
    ----------
    gdf
        Features as read.
    id_field
        Field holding the district id (any type; stored as text, ``7.0`` becomes ``"7"``).
    name_field
        Field holding the display name, or ``None`` to use ``"District <id>"``.
    source_name
        File or URL, used in error messages.
    reproject
        Reproject a layer in another CRS to EPSG:4326; if false, the CRS is kept as is
        (and :func:`validate_district_layer` will reject anything but EPSG:4326).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``district`` (str), ``name`` (str), ``geometry``.

    Raises
    ------
    BoundaryError
        If a field is missing or the layer has no CRS.
    """
    fields = [c for c in gdf.columns if c != gdf.geometry.name]
    # ArcGIS field names are case-insensitive: accept DISTRICT for district.
    by_lower = {c.lower(): c for c in fields}
    for label, fld in (("id_field", id_field), ("name_field", name_field)):
        if fld is not None and fld not in fields and fld.lower() not in by_lower:
            raise BoundaryError(
                f"{label} {fld!r} is not a field of {source_name}; its fields are {fields}"
            )
    id_col = id_field if id_field in fields else by_lower[id_field.lower()]
    ids = [_id_text(v) for v in gdf[id_col]]
    if name_field is None:
        names = [f"District {i}" if i is not None else "" for i in ids]
    else:
        name_col = name_field if name_field in fields else by_lower[name_field.lower()]
        names = [
            "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()
            for v in gdf[name_col]
        ]
    if gdf.crs is None:
        raise BoundaryError(
            f"{source_name} has no CRS (a Shapefile without .prj?); expected EPSG:4326 "
            "or a layer with a declared CRS"
        )
    out = gpd.GeoDataFrame(
        {"district": pd.array(ids, dtype=object), "name": names},
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )
    if reproject and not is_wgs84(out.crs):
        out = out.to_crs(4326)
    elif is_wgs84(out.crs) and out.crs is not None and out.crs.to_epsg() != 4326:
        out = out.set_crs(4326, allow_override=True)  # CRS84 is EPSG:4326 in lon, lat order
    return out


def validate_district_layer(
    gdf: gpd.GeoDataFrame,
    source_name: str,
    id_field: str = "district",
    *,
    overlap_tolerance: float = DEFAULT_OVERLAP_TOLERANCE,
) -> None:
    """Check a shaped district layer; raise on the first problem found.

    Checks: CRS is EPSG:4326 (OGC:CRS84 accepted), at least one feature, no missing or
    duplicate ids, every geometry a non-empty valid (Multi)Polygon, and no two districts
    overlapping by more than ``overlap_tolerance`` of the smaller one's area.

    Parameters
    ----------
    gdf
        Layer with columns ``district``, ``name``, ``geometry``.
    source_name
        File or URL the layer came from, named in error messages.
    id_field
        The source's id field, named in error messages.
    overlap_tolerance
        Largest allowed overlap, as a fraction of the smaller district's area.

    Raises
    ------
    BoundaryError
        Naming the source, the field and the offending district.
    """
    if not is_wgs84(gdf.crs):
        raise BoundaryError(
            f"{source_name}: layer CRS is {gdf.crs}; expected EPSG:4326 (or OGC:CRS84). "
            "Reproject it, e.g. `ogr2ogr -t_srs EPSG:4326`"
        )
    if len(gdf) == 0:
        raise BoundaryError(f"{source_name} has no features; expected district polygons")
    ids = gdf["district"]
    missing = [i for i, v in enumerate(ids) if pd.isna(v) or (isinstance(v, str) and not v)]
    if missing:
        raise BoundaryError(
            f"{source_name}: feature {missing[0]} has no value in field {id_field!r}; "
            "expected every district to have an id"
        )
    dup = ids[ids.duplicated()].unique().tolist()
    if dup:
        raise BoundaryError(
            f"{source_name}: field {id_field!r} has duplicate ids {dup}; expected one "
            "feature per district (dissolve multi-part districts first)"
        )
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    for d, g in zip(ids, geoms, strict=True):
        if g is None or shapely.is_empty(g):
            raise BoundaryError(f"{source_name}: district {d!r} ({id_field}) has no geometry")
        if g.geom_type not in ("Polygon", "MultiPolygon"):
            raise BoundaryError(
                f"{source_name}: district {d!r} ({id_field}) is a {g.geom_type}; "
                "expected Polygon or MultiPolygon"
            )
        if not shapely.is_valid(g):
            raise BoundaryError(
                f"{source_name}: district {d!r} ({id_field}) has invalid geometry "
                f"({shapely.is_valid_reason(g)}); expected a valid polygon "
                "(fix it, e.g. with shapely.make_valid)"
            )
    _check_overlaps(gdf, source_name, id_field, overlap_tolerance)


def _check_overlaps(
    gdf: gpd.GeoDataFrame, source_name: str, id_field: str, tolerance: float
) -> None:
    """Raise if two districts overlap by more than ``tolerance`` of the smaller area."""
    if len(gdf) < 2:
        return
    proj = gdf.to_crs(local_utm_epsg(gdf.total_bounds))
    geoms = np.asarray(proj.geometry.values, dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return
    inter = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    areas = shapely.area(geoms)
    frac = inter / np.minimum(areas[left], areas[right])
    worst = int(np.argmax(frac))
    if frac[worst] > tolerance:
        a, b = gdf["district"].iloc[left[worst]], gdf["district"].iloc[right[worst]]
        raise BoundaryError(
            f"{source_name}: districts {a!r} and {b!r} ({id_field}) overlap by "
            f"{inter[worst]:.0f} m2 ({frac[worst]:.2%} of the smaller); expected at most "
            f"{tolerance:.2%}"
        )


# ------------------------------------------------------------------------ entry points


def load_district_layer(
    source: str | os.PathLike[str],
    id_field: str,
    name_field: str | None = None,
    *,
    reproject: bool = True,
    validate: bool = True,
    overlap_tolerance: float = DEFAULT_OVERLAP_TOLERANCE,
    timeout_s: float = 30.0,
    page_size: int | None = None,
    opener: UrlOpener | None = None,
) -> gpd.GeoDataFrame:
    """Load council districts from a file or an ArcGIS FeatureServer layer URL.

    Parameters
    ----------
    source
        A vector file path, or an ``http(s)://`` ArcGIS layer URL
        (``.../FeatureServer/N``).
    id_field, name_field
        Source fields holding the district id and display name.
    reproject
        Reproject a file in another CRS to EPSG:4326 (an ArcGIS answer already is).
    validate
        Run :func:`validate_district_layer`.
    overlap_tolerance
        See :func:`validate_district_layer`.
    timeout_s, page_size, opener
        See :func:`fetch_arcgis_features`.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``district`` (str), ``name`` (str), ``geometry``; EPSG:4326; sorted by id.

    Raises
    ------
    BoundaryError
        If the source cannot be read or fails validation.
    """
    name = str(source)
    if is_url(source):
        feats = fetch_arcgis_features(
            str(source), timeout_s=timeout_s, page_size=page_size, opener=opener
        )
        if not feats:
            raise BoundaryError(f"ArcGIS layer {name} returned no features")
        try:
            raw = gpd.GeoDataFrame.from_features(feats, crs=4326)
            check_vertex_budget(raw, str(source))
        except Exception as exc:
            raise BoundaryError(f"ArcGIS layer {name} returned malformed features: {exc}") from exc
    else:
        raw = read_layer_file(source)
    layer = shape_district_layer(raw, id_field, name_field, name, reproject=reproject)
    if validate:
        validate_district_layer(layer, name, id_field, overlap_tolerance=overlap_tolerance)
    return _sorted(layer)


def _sort_key(ids: pd.Series) -> pd.Series:
    """Sort key of district ids: numeric order when every id is a number, else text."""
    num = pd.to_numeric(ids, errors="coerce")
    return num if not num.isna().any() else ids.astype(str)


def _sorted(layer: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return ``layer`` sorted by district id in natural order, index reset."""
    order = np.argsort(_sort_key(layer["district"]).to_numpy(), kind="stable")
    return layer.iloc[order].reset_index(drop=True)


def save_district_layer(gdf: gpd.GeoDataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a district layer as RFC 7946 GeoJSON (EPSG:4326, no ``crs``), atomically.

    Parameters
    ----------
    gdf
        Layer with columns ``district``, ``name``, ``geometry`` in EPSG:4326.
    path
        Target ``.geojson`` file; parent folders are created.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    target = Path(path)
    if not is_wgs84(gdf.crs):
        raise BoundaryError(f"refusing to write {target}: layer CRS is {gdf.crs}, not EPSG:4326")
    target.parent.mkdir(parents=True, exist_ok=True)
    out = gpd.GeoDataFrame(
        {"district": gdf["district"].astype(str), "name": gdf["name"].astype(str)},
        geometry=gdf.geometry.values,
        crs=4326,
    )
    fd, tmp = tempfile.mkstemp(suffix=".geojson", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)  # the GeoJSON driver will not overwrite; let it create the file
    try:
        # RFC 7946: no crs member, counter-clockwise outer rings (GDAL's RFC7946 mode)
        out.to_file(tmp, driver="GeoJSON", engine="pyogrio",
                    layer_options={"RFC7946": "YES", "WRITE_NAME": "NO"})
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def import_district_layer(
    source: str | os.PathLike[str],
    id_field: str,
    name_field: str | None,
    out_path: str | os.PathLike[str],
    **kwargs: Any,
) -> gpd.GeoDataFrame:
    """Load, validate and save a district layer in one step.

    Parameters
    ----------
    source
        File path or ArcGIS layer URL (see :func:`load_district_layer`).
    id_field, name_field
        Source fields of the district id and name.
    out_path
        GeoJSON file to write.
    **kwargs
        Passed to :func:`load_district_layer` (``timeout_s``, ``page_size`` ...).

    Returns
    -------
    geopandas.GeoDataFrame
        The layer as written.
    """
    layer = load_district_layer(source, id_field, name_field, **kwargs)
    save_district_layer(layer, out_path)
    return layer


def load_boundary(path: str | os.PathLike[str], *, reproject: bool = False) -> shapely.Geometry:
    """Read a city-limit file and return its (multi)polygon, the union of its features.

    Parameters
    ----------
    path
        Vector file with one or more polygon features.
    reproject
        Reproject to EPSG:4326 if needed; if false, another CRS is an error.

    Returns
    -------
    shapely.Geometry
        Valid polygon or multipolygon in EPSG:4326.

    Raises
    ------
    BoundaryError
        If the file is missing, empty, not polygons, invalid, or in another CRS.
    """
    gdf = read_layer_file(path)
    if len(gdf) == 0:
        raise BoundaryError(f"city boundary {path} has no features; expected a polygon")
    if not is_wgs84(gdf.crs):
        if not reproject or gdf.crs is None:
            raise BoundaryError(f"city boundary {path} is in CRS {gdf.crs}; expected EPSG:4326")
        gdf = gdf.to_crs(4326)
    types = set(gdf.geom_type)
    if not types <= {"Polygon", "MultiPolygon"}:
        raise BoundaryError(
            f"city boundary {path} holds {sorted(map(str, types))}; expected Polygon/MultiPolygon"
        )
    if not gdf.is_valid.all():
        bad = gdf.geometry[~gdf.is_valid].iloc[0]
        raise BoundaryError(
            f"city boundary {path} has invalid geometry ({shapely.is_valid_reason(bad)})"
        )
    return shapely.union_all(np.asarray(gdf.geometry.values, dtype=object))
