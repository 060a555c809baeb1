"""City packs: one TOML file per city (``data/cities/<name>.toml``) and its loader.

A pack names the city's time zone, boundary and council-district files, its request
categories (with the city's own service codes, service time, SLA, map colour and
whether hot spots of it are swept), its depots, its crew roster, how its intake
channels are written, and the sources of its geocoder's address reference (in order of
authority, each with a column layout and an attribution). :func:`load_city_pack` reads
and validates a pack and returns a frozen :class:`CityPack`; every problem raises
:class:`~dispatch.errors.CityPackError` naming the file and the field (``crews[3].depot``,
``categories.bulky_items.sla_h`` ...).

Relative paths inside a pack are relative to the pack file's folder. The data folder
(holding ``cities/``) is the repository's ``data/`` unless ``CURBSIDE_DATA_DIR`` says
otherwise. Loading is a pure function of the pack file and the files it names, and is
cached on their paths and modification times.
"""

from __future__ import annotations

import functools
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer

from dispatch.errors import CityPackError, DispatchError
from dispatch.model import Category, Channel, Crew, Depot
from geo.address import PlaceNames
from geo.boundaries import load_boundary, load_district_layer, local_utm_epsg
from geo.districts import DistrictIndex
from geo.errors import AddressReferenceError, BoundaryError, TravelError
from geo.reference_sources import (
    CONFLICT_M,
    COVERAGE_M,
    ReferenceSource,
    SourceLayout,
    layout_from_table,
    read_layouts,
)
from geo.travel import TRAVEL_MODELS, TravelModel, TravelSettings

if TYPE_CHECKING:
    from dispatch.planning.problem import Slack

__all__ = [
    "DEFAULT_DISTRICTS_NOTE",
    "CityPack",
    "CityPaths",
    "DepotPosition",
    "ReferencePlan",
    "data_dir",
    "district_layer_target",
    "list_city_packs",
    "load_city_pack",
    "pack_file",
    "read_pack_document",
    "shipped_dir",
]

#: Shown when a pack has no ``[districts]`` table and gives no ``districts_note``.
DEFAULT_DISTRICTS_NOTE = (
    "no council districts are loaded for this city: the whole city is one service area "
    "(requests get no district; crews serve the whole city)"
)

SCHEMA_VERSION = 1

_TOP_FIELDS = {
    "schema_version",
    "name",
    "display_name",
    "timezone",
    "demo_day",
    "notes",
    "districts_note",
    "paths",
    "districts",
    "categories",
    "depots",
    "crews",
    "channels",
    "reference",
    "travel",
}
_REFERENCE_FIELDS = {
    "extent", "holdout", "layouts", "conflict_m", "coverage_m", "sources", "place_names",
    "outside_places",
}
_SOURCE_FIELDS = {
    "name", "label", "file", "layout", "columns", "attribution", "authoritative", "places",
}
_PATH_FIELDS = {"boundary", "address_reference", "demo_requests"}
_DISTRICT_FIELDS = {"file", "id_field", "name_field", "label", "snap_m"}
_CATEGORY_FIELDS = {
    "label", "service_codes", "routable", "service_time_s", "sla_h", "colour", "booked",
    "sweep", "open311_code",
}
_DEPOT_FIELDS = {
    "code",
    "name",
    "address",
    "lon",
    "lat",
    "position_method",
    "position_uncertainty_m",
    "outside_city_ok",
}
_CREW_FIELDS = {
    "name",
    "count",
    "categories",
    "depot",
    "districts",
    "shift_start",
    "shift_end",
    "capacity",
    "organisation",
    "lunch_start",
    "lunch_end",
    "lunch_s",
    "max_duration_s",
}
_TRAVEL_FIELDS = {
    "model", "circuity", "speed_kmh", "band_edges_m", "band_circuity", "band_pace_s_per_km",
    "approach_s", "network_nodes", "network_links", "access_speed_kmh", "access_circuity",
    "max_access_m", "max_path_s", "osrm_url", "reserve_share", "reserve_min_minutes",
    "network_attribution",
}  # fmt: skip
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class CityPaths:
    """Files a pack names, resolved to absolute paths.

    Parameters
    ----------
    pack
        The pack file itself.
    boundary
        City limit.
    districts
        Council districts, or ``None`` when the pack has no ``[districts]`` table.
    address_reference
        Address reference for the offline geocoder (may not exist yet), or ``None``.
    demo_requests
        Sample requests shipped with the pack, or ``None``.
    """

    pack: Path
    boundary: Path
    districts: Path | None = None
    address_reference: Path | None = None
    demo_requests: Path | None = None


@dataclass(frozen=True)
class DepotPosition:
    """How a depot's coordinates were obtained.

    Parameters
    ----------
    method
        Free text naming the source points and the computation.
    uncertainty_m
        Honest error estimate in metres, or ``None`` if unknown.
    outside_city_ok
        The pack states that this depot lies outside the city limit on purpose.
    """

    method: str = ""
    uncertainty_m: float | None = None
    outside_city_ok: bool = False


@dataclass(frozen=True)
class ReferencePlan:
    """How the city's address reference is built (the pack's ``[reference]`` table).

    Parameters
    ----------
    sources
        The reference sources, most authoritative first.
    extent
        ``(lon_min, lat_min, lon_max, lat_max)``: points outside are skipped.
    holdout
        Files kept for evaluation only; no source may read them.
    conflict_m
        One address in two sources farther apart than this is reported.
    coverage_m
        Reach of an authoritative point over derived points of its street.
    place_names
        Places (the city, its communities, its neighbours) that may end an address
        without a comma; the parser strips them.
    outside_places
        Of those (or any place an address may end in after a comma), the ones that are
        not part of the city: an address naming one is another city's (upper case).
    """

    sources: tuple[ReferenceSource, ...]
    extent: tuple[float, float, float, float] | None = None
    holdout: tuple[Path, ...] = ()
    conflict_m: float = CONFLICT_M
    coverage_m: float = COVERAGE_M
    place_names: tuple[str, ...] = ()
    outside_places: frozenset[str] = frozenset()

    @cached_property
    def places(self) -> PlaceNames:
        """Return :attr:`place_names` as the address parser takes them (made once)."""
        return PlaceNames(self.place_names)


@dataclass(frozen=True, eq=False)
class CityPack:
    """A loaded, validated city pack (treat its containers as read-only).

    Parameters
    ----------
    name
        Pack id, e.g. ``los_angeles`` (the file's stem).
    display_name
        Name shown to people.
    timezone
        Local time zone of shifts and day boundaries.
    categories
        Category code -> :class:`~dispatch.model.Category`, in pack order.
    depots
        Depot code -> :class:`~dispatch.model.Depot`.
    crews
        The roster, ``count`` entries expanded.
    districts
        Council districts (``district``, ``name``, ``geometry``; EPSG:4326) or ``None``.
    boundary
        City limit (EPSG:4326).
    paths
        Files the pack names.
    notes
        Free-text notes of the pack.
    districts_note
        What the pack says about its districts (why there are none, how to load them).
    district_label
        How districts are called (``Council district``).
    snap_m
        Snap distance for district assignment of points just outside every district.
    depot_positions
        Depot code -> how its coordinates were obtained.
    demo_day
        The day the demo requests replay (``dispatch init --demo`` sets the store's
        clock to that morning), or ``None``.
    reference
        How the geocoder's address reference is built, or ``None`` when the pack names
        no sources.
    channels
        How the city's systems write each intake channel (lower case, e.g. ``call``)
        -> :class:`~dispatch.model.Channel`; importers read it through their context.
    travel
        The city's travel model and route reserve (its ``[travel]`` table; default:
        straight-line, the default reserve).
    """

    name: str
    display_name: str
    timezone: ZoneInfo
    categories: Mapping[str, Category]
    depots: Mapping[str, Depot]
    crews: tuple[Crew, ...]
    districts: gpd.GeoDataFrame | None
    boundary: shapely.Geometry
    paths: CityPaths
    notes: str = ""
    districts_note: str = DEFAULT_DISTRICTS_NOTE
    district_label: str = "Council district"
    snap_m: float = 50.0
    depot_positions: Mapping[str, DepotPosition] = field(default_factory=dict)
    demo_day: date | None = None
    reference: ReferencePlan | None = None
    channels: Mapping[str, Channel] = field(default_factory=dict)
    travel: TravelSettings = field(default_factory=TravelSettings)

    # ---------------------------------------------------------------- planning
    def travel_model(self) -> TravelModel:
        """Return the travel model the pack chooses (built once per process)."""
        return self.travel.build()

    def slack(self) -> Slack | None:
        """Return the reserve routes keep (``None`` when the pack keeps none)."""
        from dispatch.planning.problem import Slack

        t = self.travel
        if t.reserve_share <= 0 and t.reserve_min_minutes <= 0:
            return None
        return Slack(t.reserve_share, t.reserve_min_minutes)

    # ---------------------------------------------------------------- look-ups
    @property
    def has_districts(self) -> bool:
        """Return whether the pack has council-district polygons."""
        return self.districts is not None and len(self.districts) > 0

    @property
    def district_ids(self) -> tuple[str, ...]:
        """Return the district ids in natural order (empty without districts)."""
        if self.districts is None:
            return ()
        return tuple(str(d) for d in self.districts["district"])

    @property
    def district_names(self) -> dict[str, str]:
        """Return district id -> display name (empty without districts)."""
        if self.districts is None:
            return {}
        return {
            str(d): str(n)
            for d, n in zip(self.districts["district"], self.districts["name"], strict=True)
        }

    @property
    def demo_requests(self) -> Path | None:
        """Return the sample request file shipped with the pack, if any."""
        return self.paths.demo_requests

    @property
    def address_reference(self) -> Path | None:
        """Return the address reference file the pack names (it may not exist yet)."""
        return self.paths.address_reference

    @property
    def category_labels(self) -> dict[str, str]:
        """Category code -> the label people read, in pack order."""
        return {c.code: c.label for c in self.categories.values()}

    @property
    def routable_categories(self) -> tuple[str, ...]:
        """Return the codes of the categories the planner routes by default."""
        return tuple(c.code for c in self.categories.values() if c.routable)

    @property
    def sweep_categories(self) -> tuple[str, ...]:
        """Return the codes of the categories whose hot spots get sweep stops."""
        return tuple(c.code for c in self.categories.values() if c.sweep)

    def reference_source_label(self, name: str, *, attribution: bool = True) -> str:
        """Return how to show reference source ``name``: its label, and its attribution.

        Parameters
        ----------
        name
            A source's name as the pack names it (``cams``), or several joined by ``+``
            (an estimate that rests on two sources: ``cams+requests``).
        attribution
            Also name where the source comes from, in brackets.

        Returns
        -------
        str
            The labels, joined by `` + ``. Unknown names (a reference built from other
            sources) are shown as they are.
        """
        sources = {s.name: s for s in self.reference.sources} if self.reference else {}
        shown = []
        for part in name.split("+"):
            src = sources.get(part)
            if src is None:
                shown.append(part)
            else:
                label = src.label or src.name
                shown.append(f"{label} ({src.attribution})" if attribution else label)
        return " + ".join(shown)

    @cached_property
    def _service_codes(self) -> dict[str, Category]:
        out: dict[str, Category] = {}
        for cat in self.categories.values():
            for code in cat.service_codes:
                out[code] = cat
                out.setdefault(_norm(code), cat)
        for cat in self.categories.values():  # the Open311 codes Curbside publishes
            out.setdefault(cat.public_code, cat)
        return out

    def category_for_service_code(self, code: str | None) -> Category | None:
        """Return the category of a service code, or ``None``.

        Matches the city's own codes (``Bulky Items``) exactly, then ignoring case and
        repeated spaces, then the Open311 code Curbside publishes (``bulky_items``,
        :attr:`~dispatch.model.Category.public_code`), then a category code itself.
        """
        if not code:
            return None
        table = self._service_codes
        hit = table.get(code) or table.get(_norm(code))
        if hit is not None:
            return hit
        return self.categories.get(code.strip())

    def category_for_open311_code(self, code: str) -> Category | None:
        """Return the category whose published Open311 code is ``code`` exactly."""
        for cat in self.categories.values():
            if cat.public_code == code:
                return cat
        return None

    def crew(self, name: str) -> Crew:
        """Return the crew called ``name``; raise :class:`CityPackError` if unknown."""
        for c in self.crews:
            if c.name == name:
                return c
        raise CityPackError(f"city pack {self.name}: no crew named {name!r}")

    # ----------------------------------------------------------------- geometry
    @cached_property
    def _district_index(self) -> DistrictIndex | None:
        if self.districts is None:
            return None
        return DistrictIndex(self.districts, self.boundary)

    @property
    def district_index(self) -> DistrictIndex | None:
        """Return the prepared district layer (``None`` without districts)."""
        return self._district_index

    def assign_districts(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.object_]:
        """Return the district id (``str``) or ``None`` of each point.

        Without districts every point gets ``None``. The rule is that of
        :mod:`geo.districts` with the pack's ``snap_m``.
        """
        index = self._district_index
        if index is None:
            n = np.asarray(lon, dtype=float).size
            return np.full(n, None, dtype=object)
        return index.assign(lon, lat, self.snap_m)

    @cached_property
    def _boundary_m(self) -> tuple[Transformer, shapely.Geometry]:
        gs = gpd.GeoSeries([self.boundary], crs=4326)
        utm = local_utm_epsg(gs.total_bounds)
        proj = gs.to_crs(utm).iloc[0]
        shapely.prepare(proj)
        return Transformer.from_crs(4326, utm, always_xy=True), proj

    def within_city(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike, tolerance_m: float = 0.0
    ) -> npt.NDArray[np.bool_]:
        """Return whether each point lies inside the city limit (or within ``tolerance_m``).

        Points with a NaN coordinate are not inside.
        """
        x = np.asarray(lon, dtype=float).ravel()
        y = np.asarray(lat, dtype=float).ravel()
        ok = np.isfinite(x) & np.isfinite(y)
        inside = np.zeros(x.size, dtype=bool)
        inside[ok] = shapely.intersects_xy(self.boundary, x[ok], y[ok])
        rest = np.flatnonzero(ok & ~inside)
        if tolerance_m > 0 and rest.size:
            tr, geom_m = self._boundary_m
            xm, ym = tr.transform(x[rest], y[rest])
            dist = shapely.distance(geom_m, shapely.points(xm, ym))
            inside[rest] = dist <= tolerance_m
        return inside


def _norm(code: str) -> str:
    return " ".join(code.split()).casefold()


# ----------------------------------------------------------------------- locating packs


def data_dir() -> Path:
    """Return the data folder that holds ``cities/``.

    ``$CURBSIDE_DATA_DIR`` when set; else the checkout's ``data/`` (running from the
    repository); else the copy the installed package carries (``curbside_data``).
    """
    env = os.environ.get("CURBSIDE_DATA_DIR")
    if env:
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parents[1] / "data"
    if (checkout / "cities").is_dir():
        return checkout
    return shipped_dir("curbside_data")


def shipped_dir(package: str) -> Path:
    """Return the folder of a data package the wheel carries (``curbside_data`` ...).

    Raises
    ------
    DispatchError
        When the package is not installed (a partial install or a broken checkout).
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DispatchError(
            f"the {package} folder of Curbside is missing: reinstall the curbside package "
            "(pip install curbside) or set CURBSIDE_DATA_DIR to a data folder")
    return Path(locations[0]).resolve()


def list_city_packs(directory: str | os.PathLike[str] | None = None) -> list[str]:
    """Return the names of the packs in ``directory`` (default ``<data>/cities``), sorted."""
    d = Path(directory) if directory is not None else data_dir() / "cities"
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.toml"))


def default_city_pack(directory: str | os.PathLike[str] | None = None) -> str:
    """Return the pack to run when the caller names none.

    ``$CURBSIDE_CITY`` when set; else the first non-comment line of
    ``<data>/cities/default.txt``; else the only pack there is.

    Parameters
    ----------
    directory : str or os.PathLike or None
        The packs folder (default ``<data>/cities``).

    Raises
    ------
    CityPackError
        If none of these names a pack.
    """
    env = os.environ.get("CURBSIDE_CITY", "").strip()
    if env:
        return env
    d = Path(directory) if directory is not None else data_dir() / "cities"
    marker = d / "default.txt"
    if marker.is_file():
        for line in marker.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                return line
    packs = list_city_packs(d)
    if len(packs) == 1:
        return packs[0]
    raise CityPackError(
        f"no default city pack: {marker} names none and {d} holds {len(packs)} packs "
        f"({', '.join(packs) or 'none'}); expected --city, $CURBSIDE_CITY or that file")


def pack_file(name_or_path: str | os.PathLike[str]) -> Path:
    """Resolve a pack name (``los_angeles``) or a path to an existing pack file.

    Raises
    ------
    CityPackError
        If no such pack exists; the message lists the available packs.
    """
    text = os.fspath(name_or_path)
    looks_like_path = (
        isinstance(name_or_path, os.PathLike)
        or text.endswith(".toml")
        or os.sep in text
        or "/" in text
    )
    if looks_like_path:
        p = Path(text).expanduser().resolve()
        if not p.is_file():
            raise CityPackError(f"city pack file {p} does not exist")
        return p
    p = data_dir() / "cities" / f"{text}.toml"
    if not p.is_file():
        raise CityPackError(
            f"unknown city {text!r}: no {p}; available packs are {list_city_packs()}"
        )
    return p.resolve()


def read_pack_document(name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return a pack's parsed TOML without validating it or reading the files it names."""
    return _read_toml(pack_file(name_or_path))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CityPackError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise CityPackError(f"{path}: cannot be read: {exc}") from exc


def district_layer_target(name_or_path: str | os.PathLike[str]) -> tuple[Path, bool]:
    """Return where a pack's district layer lives and whether the pack names it.

    The file named by ``[districts].file`` if the pack has that table, else
    ``<data>/boundaries/<name>/council_districts.geojson`` beside the pack's folder.
    Reads only the TOML (the district file need not exist yet).

    Returns
    -------
    tuple
        ``(path, named_by_pack)``.
    """
    path = pack_file(name_or_path)
    doc = _read_toml(path)
    table = doc.get("districts")
    if isinstance(table, dict) and isinstance(table.get("file"), str):
        return (path.parent / table["file"]).resolve(), True
    name = doc.get("name", path.stem)
    return (path.parent.parent / "boundaries" / str(name) / "council_districts.geojson"), False


def _layouts_path(pack: Path, table: Mapping[str, Any]) -> Path:
    """Where a pack's named source layouts are (``[reference].layouts``, else the default)."""
    rel = table.get("layouts")
    if isinstance(rel, str):
        return (pack.parent / rel).resolve()
    return (pack.parent.parent / "reference" / "layouts.toml").resolve()


def _stamp(p: Path) -> tuple[str, int, int]:
    try:
        st = p.stat()
    except OSError:
        return (str(p), -1, -1)
    return (str(p), st.st_mtime_ns, st.st_size)


def load_city_pack(name_or_path: str | os.PathLike[str]) -> CityPack:
    """Load and validate a city pack.

    Parameters
    ----------
    name_or_path
        A pack name (``los_angeles``, looked up in ``<data>/cities/``) or a ``.toml`` path.

    Returns
    -------
    CityPack
        The validated pack; the same object for unchanged files (cached).

    Raises
    ------
    CityPackError
        Naming the file and field: unknown fields, wrong types, missing files, invalid or
        overlapping district polygons, a CRS other than EPSG:4326/CRS84, depots outside
        the city, crews naming unknown depots/categories/districts, duplicate names.
    """
    path = pack_file(name_or_path)
    doc = _read_toml(path)
    named: list[Path] = []
    paths = doc.get("paths")
    if isinstance(paths, dict):
        named += [path.parent / v for v in paths.values() if isinstance(v, str)]
    dist = doc.get("districts")
    if isinstance(dist, dict) and isinstance(dist.get("file"), str):
        named.append(path.parent / dist["file"])
    ref = doc.get("reference")
    if isinstance(ref, dict):
        named.append(_layouts_path(path, ref))
    key = (_stamp(path), *(_stamp(p) for p in named))
    return _load_cached(key)


@functools.lru_cache(maxsize=16)
def _load_cached(key: tuple[tuple[str, int, int], ...]) -> CityPack:
    path = Path(key[0][0])
    return _PackReader(path, _read_toml(path)).build()


load_city_pack.cache_clear = _load_cached.cache_clear  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- the reader


class _PackReader:
    """Validate one parsed pack document; every error names ``self.path`` and the field."""

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path = path
        self.doc = doc

    # -- error helpers
    def fail(self, fld: str, msg: str) -> CityPackError:
        return CityPackError(f"{self.path}: {fld}: {msg}")

    def unknown(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        extra = sorted(set(table) - allowed)
        if extra:
            fld = f"{where}.{extra[0]}" if where else extra[0]
            raise self.fail(fld, f"unknown field {extra[0]!r}; expected one of {sorted(allowed)}")

    def get(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        kind: type | tuple[type, ...],
        *,
        required: bool = True,
        default: Any = None,
    ) -> Any:
        fld = f"{where}.{key}" if where else key
        if key not in table:
            if required:
                raise self.fail(fld, "missing; this field is required")
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(fld, f"got {value!r}; expected {_kind_names(kinds)}")
        if not isinstance(value, kinds):
            raise self.fail(
                fld, f"got {value!r} ({type(value).__name__}); expected {_kind_names(kinds)}"
            )
        return value

    def file(self, rel: str, fld: str, *, must_exist: bool = True) -> Path:
        p = (self.path.parent / rel).resolve()
        if must_exist and not p.is_file():
            raise self.fail(fld, f"file {rel!r} does not exist (looked for {p})")
        return p

    # -- sections
    def build(self) -> CityPack:
        doc = self.doc
        self.unknown(doc, _TOP_FIELDS, "")
        version = self.get(doc, "schema_version", "", int, required=False, default=1)
        if version != SCHEMA_VERSION:
            raise self.fail("schema_version", f"got {version}; expected {SCHEMA_VERSION}")
        name = self.get(doc, "name", "", str, required=False, default=self.path.stem)
        if not _NAME.match(name):
            raise self.fail("name", f"got {name!r}; expected a lower-case id like 'springfield'")
        if name != self.path.stem:
            raise self.fail("name", f"{name!r} differs from the file name {self.path.stem!r}")
        display = self.get(doc, "display_name", "", str)
        tz_name = self.get(doc, "timezone", "", str)
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise self.fail(
                "timezone",
                f"got {tz_name!r}; expected an IANA time zone like 'America/Chicago'",
            ) from exc
        notes = self.get(doc, "notes", "", str, required=False, default="").strip()
        demo_day_t = self.get(doc, "demo_day", "", (str, date), required=False)
        try:
            demo_day = (None if demo_day_t is None else demo_day_t
                        if isinstance(demo_day_t, date) else date.fromisoformat(demo_day_t))
        except ValueError:
            raise self.fail("demo_day", f"got {demo_day_t!r}; expected YYYY-MM-DD") from None

        paths_t = self.get(doc, "paths", "", dict)
        self.unknown(paths_t, _PATH_FIELDS, "paths")
        boundary_p = self.file(self.get(paths_t, "boundary", "paths", str), "paths.boundary")
        ref = self.get(paths_t, "address_reference", "paths", str, required=False)
        demo = self.get(paths_t, "demo_requests", "paths", str, required=False)
        try:
            boundary = load_boundary(boundary_p)
        except BoundaryError as exc:
            raise self.fail("paths.boundary", str(exc)) from exc

        districts, dist_p, label, snap_m = self.districts()
        note_default = (
            DEFAULT_DISTRICTS_NOTE
            if districts is None
            else (f"{label}s from {dist_p.name if dist_p else ''}")
        )
        districts_note = self.get(
            doc, "districts_note", "", str, required=False, default=note_default
        ).strip()
        categories = self.categories()
        depots, positions = self.depots(boundary)
        ids = set() if districts is None else set(districts["district"])
        crews = self.crews(categories, depots, ids)
        reference = self.reference()
        channels = self.channels()
        paths = CityPaths(
            pack=self.path,
            boundary=boundary_p,
            districts=dist_p,
            address_reference=self.file(ref, "paths.address_reference", must_exist=False)
            if ref
            else None,
            demo_requests=self.file(demo, "paths.demo_requests") if demo else None,
        )
        return CityPack(
            name=name,
            display_name=display,
            timezone=tz,
            categories=categories,
            depots=depots,
            crews=crews,
            districts=districts,
            boundary=boundary,
            paths=paths,
            notes=notes,
            districts_note=districts_note,
            district_label=label,
            snap_m=snap_m,
            depot_positions=positions,
            demo_day=demo_day,
            reference=reference,
            channels=channels,
            travel=self.travel(),
        )

    def travel(self) -> TravelSettings:
        t = self.doc.get("travel")
        if t is None:
            return TravelSettings()
        if not isinstance(t, dict):
            raise self.fail("travel", f"got {t!r}; expected a table")
        self.unknown(t, _TRAVEL_FIELDS, "travel")
        num = (int, float)
        kw: dict[str, Any] = {}
        model = self.get(t, "model", "travel", str, required=False, default="straight-line")
        if model not in TRAVEL_MODELS:
            raise self.fail("travel.model", f"got {model!r}; expected one of {TRAVEL_MODELS}")
        kw["model"] = model
        for key in ("circuity", "speed_kmh", "approach_s", "access_speed_kmh",
                    "access_circuity", "max_access_m", "max_path_s", "reserve_share",
                    "reserve_min_minutes"):
            v = self.get(t, key, "travel", num, required=False)
            if v is not None:
                if not math.isfinite(v) or v < 0:
                    raise self.fail(f"travel.{key}", f"got {v}; expected a number >= 0")
                kw[key] = float(v)
        for key in ("band_edges_m", "band_circuity", "band_pace_s_per_km"):
            v = self.get(t, key, "travel", list, required=False)
            if v is not None:
                if not all(isinstance(x, num) and not isinstance(x, bool) for x in v):
                    raise self.fail(f"travel.{key}", f"got {v!r}; expected an array of numbers")
                kw[key] = tuple(float(x) for x in v)
        for key in ("network_nodes", "network_links"):
            v = self.get(t, key, "travel", str, required=False)
            if v is not None:
                kw[key] = self.file(v, f"travel.{key}")
        url = self.get(t, "osrm_url", "travel", str, required=False)
        if url is not None:
            kw["osrm_url"] = url
        credit = self.get(t, "network_attribution", "travel", str, required=False)
        if credit is not None:
            kw["network_attribution"] = credit
        try:
            return TravelSettings(**kw)
        except TravelError as exc:
            raise self.fail("travel", str(exc)) from exc

    def districts(self) -> tuple[gpd.GeoDataFrame | None, Path | None, str, float]:
        t = self.doc.get("districts")
        if t is None:
            return None, None, "Council district", 50.0
        if not isinstance(t, dict):
            raise self.fail("districts", f"got {t!r}; expected a table")
        self.unknown(t, _DISTRICT_FIELDS, "districts")
        rel = self.get(t, "file", "districts", str)
        p = self.file(rel, "districts.file")
        id_field = self.get(t, "id_field", "districts", str)
        name_field = self.get(t, "name_field", "districts", str, required=False)
        label = self.get(t, "label", "districts", str, required=False, default="Council district")
        snap_m = float(
            self.get(t, "snap_m", "districts", (int, float), required=False, default=50.0)
        )
        if not math.isfinite(snap_m) or snap_m < 0:
            raise self.fail("districts.snap_m", f"got {snap_m}; expected metres >= 0")
        try:
            layer = load_district_layer(p, id_field, name_field, reproject=False)
        except BoundaryError as exc:
            raise self.fail("districts.file", str(exc)) from exc
        return layer, p, label, snap_m

    def categories(self) -> dict[str, Category]:
        t = self.get(self.doc, "categories", "", dict)
        if not t:
            raise self.fail("categories", "empty; expected at least one category")
        out: dict[str, Category] = {}
        seen: dict[str, str] = {}
        for code, c in t.items():
            w = f"categories.{code}"
            if not isinstance(c, dict):
                raise self.fail(w, f"got {c!r}; expected a table")
            self.unknown(c, _CATEGORY_FIELDS, w)
            codes = self.get(c, "service_codes", w, list)
            if not all(isinstance(s, str) and s.strip() for s in codes):
                raise self.fail(f"{w}.service_codes", f"got {codes!r}; expected non-empty strings")
            for s in codes:
                key = _norm(s)
                if key in seen:
                    raise self.fail(
                        f"{w}.service_codes",
                        f"service code {s!r} is also in category {seen[key]!r}",
                    )
                seen[key] = code
            colour = self.get(c, "colour", w, str, required=False, default="#555555")
            if not _COLOUR.match(colour):
                raise self.fail(f"{w}.colour", f"got {colour!r}; expected '#rrggbb'")
            sla_h = self.get(c, "sla_h", w, (int, float))
            service_time_s = self.get(c, "service_time_s", w, int)
            try:
                out[code] = Category(
                    code=code,
                    label=self.get(c, "label", w, str),
                    service_codes=tuple(codes),
                    routable=self.get(c, "routable", w, bool),
                    service_time_s=service_time_s,
                    sla_h=float(sla_h),
                    colour=colour,
                    booked=self.get(c, "booked", w, bool, required=False, default=False),
                    sweep=self.get(c, "sweep", w, bool, required=False, default=False),
                    open311_code=self.get(c, "open311_code", w, str, required=False,
                                          default=""),
                )
            except DispatchError as exc:
                raise self.fail(w, str(exc)) from exc
        public: dict[str, str] = {}
        for code, cat in out.items():
            w = f"categories.{code}.open311_code"
            other = public.get(cat.public_code)
            alias_of = seen.get(_norm(cat.public_code))
            if other is None and alias_of not in (None, code):
                other = alias_of  # another category's own service code
            if other is not None:
                raise self.fail(w, f"Open311 code {cat.public_code!r} is also used by category "
                                   f"{other!r}")
            public[cat.public_code] = code
        return out

    def depots(
        self, boundary: shapely.Geometry
    ) -> tuple[dict[str, Depot], dict[str, DepotPosition]]:
        items = self.get(self.doc, "depots", "", list)
        if not items:
            raise self.fail("depots", "empty; expected at least one [[depots]] entry")
        out: dict[str, Depot] = {}
        pos: dict[str, DepotPosition] = {}
        for i, d in enumerate(items):
            w = f"depots[{i}]"
            if not isinstance(d, dict):
                raise self.fail(w, f"got {d!r}; expected a table")
            self.unknown(d, _DEPOT_FIELDS, w)
            code = self.get(d, "code", w, str)
            if code in out:
                raise self.fail(f"{w}.code", f"duplicate depot code {code!r}")
            lon = float(self.get(d, "lon", w, (int, float)))
            lat = float(self.get(d, "lat", w, (int, float)))
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise self.fail(
                    f"{w}.lon",
                    f"lon={lon}, lat={lat} is not a position; expected "
                    "lon in [-180, 180] and lat in [-90, 90]",
                )
            ok_outside = self.get(d, "outside_city_ok", w, bool, required=False, default=False)
            if not ok_outside and not shapely.intersects_xy(boundary, lon, lat):
                raise self.fail(
                    f"{w}.lon",
                    f"depot {code!r} at lon={lon}, lat={lat} is outside the city "
                    "boundary; fix the position (lat/lon swapped?) or, if the yard really is "
                    "outside the city limit, set outside_city_ok = true and say so in "
                    "position_method",
                )
            unc = self.get(d, "position_uncertainty_m", w, (int, float), required=False)
            out[code] = Depot(
                code=code,
                name=self.get(d, "name", w, str),
                address=self.get(d, "address", w, str, required=False, default=""),
                lon=lon,
                lat=lat,
            )
            pos[code] = DepotPosition(
                method=self.get(d, "position_method", w, str, required=False, default="").strip(),
                uncertainty_m=None if unc is None else float(unc),
                outside_city_ok=ok_outside,
            )
        return out, pos

    def channels(self) -> dict[str, Channel]:
        t = self.get(self.doc, "channels", "", dict, required=False, default={})
        values = [c.value for c in Channel]
        out: dict[str, Channel] = {}
        for text, value in t.items():
            if value not in values:
                raise self.fail(f"channels.{text}", f"got {value!r}; expected one of {values}")
            key = " ".join(str(text).split()).lower()
            if not key:
                raise self.fail("channels", "an empty source text; expected words like 'call'")
            out[key] = Channel(value)
        return out

    def reference(self) -> ReferencePlan | None:
        t = self.get(self.doc, "reference", "", dict, required=False)
        if t is None:
            return None
        self.unknown(t, _REFERENCE_FIELDS, "reference")
        extent = self.get(t, "extent", "reference", list, required=False)
        box: tuple[float, float, float, float] | None = None
        if extent is not None:
            ok = len(extent) == 4 and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in extent
            )
            if not ok or not (extent[0] < extent[2] and extent[1] < extent[3]):
                raise self.fail(
                    "reference.extent",
                    f"got {extent!r}; expected [lon_min, lat_min, lon_max, lat_max] with "
                    "min < max",
                )
            box = (float(extent[0]), float(extent[1]), float(extent[2]), float(extent[3]))
        holdout = tuple(
            self.file(rel, f"reference.holdout[{i}]", must_exist=False)
            for i, rel in enumerate(self.get(t, "holdout", "reference", list, required=False,
                                             default=[]))
        )  # fmt: skip
        limits = {}
        for key, default in (("conflict_m", CONFLICT_M), ("coverage_m", COVERAGE_M)):
            value = float(self.get(t, key, "reference", (int, float), required=False,
                                   default=default))  # fmt: skip
            if not math.isfinite(value) or value < 0:
                raise self.fail(f"reference.{key}", f"got {value}; expected metres >= 0")
            limits[key] = value
        layouts: dict[str, SourceLayout] | None = None
        items = self.get(t, "sources", "reference", list)
        if not items:
            raise self.fail("reference.sources", "empty; expected at least one source")
        sources: list[ReferenceSource] = []
        for i, item in enumerate(items):
            w = f"reference.sources[{i}]"
            if not isinstance(item, dict):
                raise self.fail(w, f"got {item!r}; expected a table")
            self.unknown(item, _SOURCE_FIELDS, w)
            name = self.get(item, "name", w, str)
            layout_name = self.get(item, "layout", w, str, required=False)
            inline = self.get(item, "columns", w, dict, required=False)
            if (layout_name is None) == (inline is None):
                raise self.fail(w, "give either layout = '<name>' or a columns table")
            try:
                if layout_name is not None:
                    if layouts is None:
                        layouts = read_layouts(_layouts_path(self.path, t))
                    if layout_name not in layouts:
                        raise self.fail(
                            f"{w}.layout",
                            f"got {layout_name!r}; expected one of {sorted(layouts)}",
                        )
                    layout = layouts[layout_name]
                else:
                    layout = layout_from_table(inline or {}, f"{self.path}: {w}.columns")
                places = self.get(item, "places", w, list, required=False, default=[])
                sources.append(ReferenceSource(
                    name=name,
                    path=self.file(self.get(item, "file", w, str), f"{w}.file"),
                    layout=layout,
                    attribution=self.get(item, "attribution", w, str),
                    authoritative=self.get(item, "authoritative", w, bool, required=False,
                                           default=False),
                    label=self.get(item, "label", w, str, required=False, default=""),
                    places=tuple(str(p) for p in places),
                ))  # fmt: skip
            except AddressReferenceError as exc:
                raise self.fail(w, str(exc)) from exc
        names = [s.name for s in sources]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise self.fail(f"reference.sources[{i}].name", f"duplicate source name {n!r}")
        for i, src in enumerate(sources):
            if src.path in holdout:
                raise self.fail(
                    f"reference.sources[{i}].file",
                    f"{src.path.name} is held out for evaluation (reference.holdout) and "
                    "must never feed the reference",
                )
        places = self.get(t, "place_names", "reference", list, required=False, default=[])
        if not all(isinstance(n, str) and n.strip() for n in places):
            raise self.fail("reference.place_names",
                            f"got {places!r}; expected non-empty place names")  # fmt: skip
        outside = self.get(t, "outside_places", "reference", list, required=False, default=[])
        if not all(isinstance(n, str) and n.strip() for n in outside):
            raise self.fail("reference.outside_places",
                            f"got {outside!r}; expected non-empty place names")  # fmt: skip
        return ReferencePlan(tuple(sources), box, holdout, limits["conflict_m"],
                             limits["coverage_m"], tuple(places),
                             frozenset(" ".join(n.upper().split()) for n in outside))  # fmt: skip

    def time_field(self, c: Mapping[str, Any], key: str, w: str, default: time | None) -> time:
        fld = f"{w}.{key}"
        if key not in c:
            if default is None:
                raise self.fail(fld, "missing; this field is required")
            return default
        v = c[key]
        if isinstance(v, time):
            return v
        if isinstance(v, str):
            try:
                return time.fromisoformat(v)
            except ValueError:
                pass
        raise self.fail(fld, f"got {v!r}; expected a local time like '06:00'")

    def crews(
        self, categories: Mapping[str, Category], depots: Mapping[str, Depot], ids: set[str]
    ) -> tuple[Crew, ...]:
        items = self.get(self.doc, "crews", "", list, required=False, default=[])
        out: list[Crew] = []
        names: set[str] = set()
        for i, c in enumerate(items):
            w = f"crews[{i}]"
            if not isinstance(c, dict):
                raise self.fail(w, f"got {c!r}; expected a table")
            self.unknown(c, _CREW_FIELDS, w)
            base = self.get(c, "name", w, str)
            count = self.get(c, "count", w, int, required=False)
            if count is not None and count < 1:
                raise self.fail(f"{w}.count", f"got {count}; expected a positive integer")
            cats = self.get(c, "categories", w, list)
            for cat in cats:
                if cat not in categories:
                    raise self.fail(
                        f"{w}.categories",
                        f"crew {base!r}: unknown category "
                        f"{cat!r}; expected one of {sorted(categories)}",
                    )
            depot = self.get(c, "depot", w, str)
            if depot not in depots:
                raise self.fail(
                    f"{w}.depot",
                    f"crew {base!r}: unknown depot {depot!r}; expected one of {sorted(depots)}",
                )
            dists = [str(x) for x in self.get(c, "districts", w, list, required=False, default=[])]
            for d in dists:
                if not ids:
                    raise self.fail(
                        f"{w}.districts",
                        f"crew {base!r} lists district {d!r} "
                        "but the pack has no [districts]; use districts = []",
                    )
                if d not in ids:
                    raise self.fail(
                        f"{w}.districts",
                        f"crew {base!r}: unknown district "
                        f"{d!r}; expected one of {sorted(ids, key=_id_key)}",
                    )
            max_dur = self.get(c, "max_duration_s", w, int, required=False)
            kwargs: dict[str, Any] = {
                "categories": tuple(cats),
                "depot": depot,
                "districts": tuple(dists),
                "shift_start": self.time_field(c, "shift_start", w, None),
                "shift_end": self.time_field(c, "shift_end", w, None),
                "capacity": self.get(c, "capacity", w, int),
                "organisation": self.get(c, "organisation", w, str, required=False, default=""),
                "lunch_start": self.time_field(c, "lunch_start", w, time(11, 30)),
                "lunch_end": self.time_field(c, "lunch_end", w, time(13, 30)),
                "lunch_s": self.get(c, "lunch_s", w, int, required=False, default=1800),
                "max_duration_s": max_dur,
            }
            crew_names = [base] if count is None else [f"{base}-{k}" for k in range(1, count + 1)]
            for nm in crew_names:
                if nm in names:
                    raise self.fail(f"{w}.name", f"duplicate crew name {nm!r}")
                names.add(nm)
                try:
                    out.append(Crew(name=nm, **kwargs))
                except DispatchError as exc:
                    raise self.fail(w, str(exc)) from exc
        return tuple(out)


def _id_key(s: str) -> tuple[int, float, str]:
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def _kind_names(kinds: tuple[type, ...]) -> str:
    names = {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)
