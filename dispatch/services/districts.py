"""Service: load a city's council-district layer once, from a file or an ArcGIS layer.

Behind ``dispatch districts load SOURCE --id-field F --name-field F --city NAME``. It writes
the validated layer (``district``, ``name``, ``geometry``; EPSG:4326 GeoJSON) to the file
the city pack names in ``[districts].file``, or, if the pack has no ``[districts]`` table
yet, to ``data/boundaries/<city>/council_districts.geojson``; it changes nothing else (no
database, not the pack). A pack that names the file picks the layer up on its next load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely

from dispatch.citypack import (
    district_layer_target,
    load_city_pack,
    pack_file,
    read_pack_document,
)
from dispatch.errors import CityPackError
from geo.boundaries import (
    is_url,
    load_boundary,
    load_district_layer,
    local_utm_epsg,
    save_district_layer,
)
from geo.errors import BoundaryError

__all__ = ["DistrictsLoadSummary", "import_districts"]

#: Below this share of the districts' area inside the city limit, the layer is refused
#: (probably another city's layer, or a wrong CRS).
MIN_SHARE_INSIDE_CITY = 0.5


@dataclass(frozen=True)
class DistrictsLoadSummary:
    """What :func:`import_districts` wrote.

    Parameters
    ----------
    city
        Pack name.
    source
        File or URL read.
    path
        GeoJSON written.
    ids
        District ids, in natural order.
    share_inside_city
        Fraction of the districts' total area inside the pack's city limit.
    enabled
        Whether the pack already names this file (else the pack must be edited to use it).
    pack_relative
        ``path`` relative to the pack file's folder, as a ``[districts].file`` value.
    """

    city: str
    source: str
    path: Path
    ids: tuple[str, ...]
    share_inside_city: float
    enabled: bool
    pack_relative: str = ""

    def line(self) -> str:
        """Return a one-line summary for the CLI."""
        text = (
            f"{self.city}: {len(self.ids)} districts ({', '.join(self.ids)}) from "
            f"{self.source} written to {self.path}; {self.share_inside_city:.1%} of their "
            "area lies inside the city limit"
        )
        if not self.enabled:
            text += (
                "; the city pack does not name this file yet: add a [districts] table with "
                f'file = "{self.pack_relative or self.path}" (see docs/city_packs.md)'
            )
        return text


def _share_inside(layer: gpd.GeoDataFrame, boundary: shapely.Geometry) -> float:
    """Return the fraction of the layer's area inside ``boundary`` (local UTM metres)."""
    utm = local_utm_epsg(layer.total_bounds)
    dist = layer.to_crs(utm).geometry.union_all()
    city = gpd.GeoSeries([boundary], crs=4326).to_crs(utm).iloc[0]
    total = dist.area
    return float(dist.intersection(city).area / total) if total > 0 else 0.0


def import_districts(
    source: str | os.PathLike[str],
    *,
    city: str | os.PathLike[str],
    id_field: str,
    name_field: str | None = None,
    timeout_s: float = 30.0,
    **kwargs: Any,
) -> DistrictsLoadSummary:
    """Fetch or read a district layer, validate it and write it where the pack expects it.

    Parameters
    ----------
    source
        A vector file (GeoJSON, Shapefile, GeoPackage) or an ArcGIS FeatureServer layer URL
        (e.g. Pasadena's ``City_Council_Districts`` layer, fields ``DISTRICT``/``MEMBER``).
    city
        Pack name (``pasadena``) or pack file path.
    id_field, name_field
        Source fields holding the district id and display name.
    timeout_s
        HTTP timeout per request for a URL source.
    **kwargs
        Passed to :func:`geo.boundaries.load_district_layer` (``page_size``, ``opener``).

    Returns
    -------
    DistrictsLoadSummary
        What was written.

    Raises
    ------
    CityPackError
        If the city is unknown, the layer is invalid, or it barely overlaps the city.
    """
    pack_path = pack_file(city)
    target, named = district_layer_target(pack_path)
    try:
        layer = load_district_layer(source, id_field, name_field, timeout_s=timeout_s, **kwargs)
    except BoundaryError as exc:
        raise CityPackError(f"districts for {pack_path.stem}: {exc}") from exc
    # The city limit is read alone: the full pack may not load yet (it may name this very
    # file, still missing).
    doc = read_pack_document(pack_path)
    rel = doc.get("paths", {}).get("boundary") if isinstance(doc.get("paths"), dict) else None
    share = 1.0
    if isinstance(rel, str):
        try:
            boundary = load_boundary(pack_path.parent / rel)
        except BoundaryError as exc:
            raise CityPackError(f"{pack_path}: paths.boundary: {exc}") from exc
        share = _share_inside(layer, boundary)
        if share < MIN_SHARE_INSIDE_CITY:
            src = source if is_url(source) else Path(source).name
            raise CityPackError(
                f"districts from {src} ({id_field}): only {share:.1%} of their area lies "
                f"inside {pack_path.stem}'s city limit; expected a layer of this city "
                f"(at least {MIN_SHARE_INSIDE_CITY:.0%})"
            )
    previous = target.read_bytes() if target.is_file() else None
    save_district_layer(layer, target)
    if named:
        try:
            load_city_pack(pack_path)  # the pack (its crews' districts) must accept the layer
        except CityPackError:
            if previous is None:
                target.unlink()
            else:
                target.write_bytes(previous)
            raise
    return DistrictsLoadSummary(
        city=str(doc.get("name", pack_path.stem)),
        source=str(source),
        path=target,
        ids=tuple(str(i) for i in layer["district"]),
        share_inside_city=share,
        enabled=named,
        pack_relative=Path(os.path.relpath(target, pack_path.parent)).as_posix(),
    )
