"""Address reference: build, read from vector formats, save, load (geo.reference)."""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from geocode_helpers import requests_reference

from dispatch.citypack import load_city_pack
from geo.errors import AddressReferenceError
from geo.reference import (
    POINT_COLUMNS,
    AddressReference,
    PointColumns,
    build_reference,
    load_reference,
    points_from_text,
    read_address_points,
    read_centerlines,
)

DATA = Path(__file__).parent / "data" / "geocode"
# short names: Shapefile fields are at most 10 characters
SHORT = PointColumns(number="hnum", name="sname", street_type="stype", postdir=None, unit=None)
LA_2020 = DATA / "la_2020_91406.csv"
CENTERLINES = DATA / "centerlines_synthetic.geojson"
REPO_DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def la_ref() -> AddressReference:
    ref, report = requests_reference(LA_2020)
    assert report.counts[0].rows == 182
    return ref


def test_build_from_2020_rows(la_ref: AddressReference) -> None:
    pts = la_ref.points
    assert list(pts.columns) == [*POINT_COLUMNS, "n_obs", "source"]
    assert (pts["source"] == "requests").all()
    assert len(pts) > 100
    assert pts["number"].dtype == np.int64
    assert set(pts["predir"]) <= {"", "N", "S", "E", "W"}
    assert (pts["zip"] == "91406").all()
    # repeated requests at one address are merged, not duplicated
    assert pts.duplicated(["number", "predir", "name", "street_type", "zip"]).sum() == 0
    assert pts["n_obs"].sum() + len(la_ref.intersections) <= 182
    row = pts.loc[(pts["number"] == 16815) & (pts["name"] == "VANOWEN")].iloc[0]
    assert (row["predir"], row["street_type"]) == ("W", "ST")
    assert row["lon"] == pytest.approx(-118.4994716) and row["lat"] == pytest.approx(34.19402846)
    # intersections are kept apart, names sorted within a pair
    inter = la_ref.intersections
    assert ((inter["name_a"] == "CANTLAY") & (inter["name_b"] == "OSTROM")).any()


def test_save_load_round_trip(la_ref: AddressReference, tmp_path: Path) -> None:
    path = la_ref.save(tmp_path / "ref.parquet")
    back = load_reference(path)
    pd.testing.assert_frame_equal(back.points, la_ref.points, check_dtype=False)
    assert len(back.intersections) == len(la_ref.intersections)
    assert back.aliases == la_ref.aliases
    assert back.city == "los_angeles"
    assert back.centerlines is None


def _parts_frame(ref: AddressReference) -> gpd.GeoDataFrame:
    pts = ref.points
    return gpd.GeoDataFrame(
        {
            "hnum": pts["number"].astype(str),
            "predir": pts["predir"],
            "sname": pts["name"],
            "stype": pts["street_type"],
            "zip": pts["zip"],
        },
        geometry=gpd.points_from_xy(pts["lon"], pts["lat"]),
        crs=4326,
    )


@pytest.mark.parametrize(("suffix", "driver"), [(".geojson", "GeoJSON"), (".shp", None),
                                                 (".gpkg", "GPKG")])  # fmt: skip
def test_read_vector_formats(
    la_ref: AddressReference, tmp_path: Path, suffix: str, driver: str | None
) -> None:
    gdf = _parts_frame(la_ref)
    path = tmp_path / f"points{suffix}"
    gdf.to_file(path, driver=driver) if driver else gdf.to_file(path)
    pts = read_address_points(path, SHORT)
    assert len(pts) == len(la_ref.points)
    assert set(pts["name"]) == set(la_ref.points["name"])
    assert np.allclose(np.sort(pts["lon"]), np.sort(la_ref.points["lon"]))


def test_read_projected_source_is_reprojected(la_ref: AddressReference, tmp_path: Path) -> None:
    gdf = _parts_frame(la_ref).to_crs(32611)
    path = tmp_path / "utm.gpkg"
    gdf.to_file(path, driver="GPKG")
    pts = read_address_points(path, SHORT)
    assert np.allclose(np.sort(pts["lat"]), np.sort(la_ref.points["lat"]), atol=1e-7)


def test_read_csv_parts(la_ref: AddressReference, tmp_path: Path) -> None:
    frame = pd.DataFrame(_parts_frame(la_ref).drop(columns="geometry"))
    frame["lon"], frame["lat"] = la_ref.points["lon"], la_ref.points["lat"]
    frame.loc[0, "stype"] = "Street"  # spelled out: canonicalised
    path = tmp_path / "points.csv"
    frame.to_csv(path, index=False)
    pts = read_address_points(path, SHORT)
    assert len(pts) == len(frame)
    assert pts.loc[0, "street_type"] == "ST"


def test_read_csv_without_coordinates_fails(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("house_number,street_name\n1,MAIN\n")
    with pytest.raises(AddressReferenceError, match="lon"):
        read_address_points(path)


def test_points_from_text_drops_intersections_and_bad_coordinates() -> None:
    frame = pd.DataFrame(
        {
            "address": ["1 W MAIN ST, 90012", "A ST AT B ST", "2 W MAIN ST", "3 W MAIN ST"],
            "lon": [-118.2, -118.2, np.nan, 0.0],
            "lat": [34.0, 34.0, 34.0, 0.0],
        }
    )
    pts = points_from_text(frame, "address")
    assert list(pts["number"]) == [1]


def test_centerlines(tmp_path: Path) -> None:
    cl = read_centerlines(CENTERLINES)
    assert len(cl) == 3
    assert set(cl["name"]) == {"EXAMPLE", "SAMPLE"}
    assert set(cl["predir"]) == {"N", "W"}
    assert int(cl["from_right"].min()) == 7000
    ref = build_reference(
        pd.DataFrame(
            [(7000, "N", "EXAMPLE", "AVE", "", "", "91406", -118.4801, 34.2)], columns=POINT_COLUMNS
        ),
        centerlines=cl,
    )
    back = load_reference(ref.save(tmp_path / "cl.parquet"))
    assert back.centerlines is not None and len(back.centerlines) == 3
    assert back.centerlines.geometry.iloc[0].equals(cl.geometry.iloc[0])


def test_centerlines_need_ranges(tmp_path: Path) -> None:
    gdf = gpd.read_file(CENTERLINES).drop(columns="LTOHN")
    with pytest.raises(AddressReferenceError, match="LTOHN"):
        read_centerlines(gdf)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(AddressReferenceError, match="does not exist"):
        load_reference(tmp_path / "missing.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(AddressReferenceError, match="not a readable"):
        load_reference(junk)
    plain = tmp_path / "plain.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(plain)
    with pytest.raises(AddressReferenceError, match="metadata"):
        load_reference(plain)


def test_the_pasadena_pack_builds_its_reference(tmp_path: Path) -> None:
    from dispatch.services.geocoding import build_reference as build_pack_reference

    pack = load_city_pack("pasadena")
    out = tmp_path / "pasadena.parquet"
    build_pack_reference(pack, out)
    ref = load_reference(out)
    assert len(ref.points) > 800
    # (lat, lon) sources were read by column name: every point lies in Pasadena's extent
    assert ref.points["lon"].between(-118.25, -118.05).all()
    assert ref.points["lat"].between(34.10, 34.25).all()
    assert [s.name for s in ref.sources] == ["parcels", "trees", "facilities", "osm_places"]


@pytest.mark.parametrize("city", ["los_angeles", "pasadena"])
def test_shipped_references_load_fast_and_match_their_packs(city: str) -> None:
    pack = load_city_pack(city)
    path = pack.address_reference
    assert path is not None and path.exists(), f"run 'dispatch --city {city} geo build-reference'"
    t0 = time.perf_counter()
    ref = load_reference(path)
    assert time.perf_counter() - t0 < 2.0
    assert len(ref.points) > 500
    assert pack.reference is not None
    assert [s.name for s in ref.sources] == [s.name for s in pack.reference.sources]
    assert set(ref.points["source"]) <= {s.name for s in pack.reference.sources}


def test_la_reference_holds_no_2017_coordinates() -> None:
    ref = load_reference(REPO_DATA / "reference" / "los_angeles.parquet")
    e = pd.read_csv(
        REPO_DATA / "evaluation/los_angeles/myla311_2017-12-27_to_31.csv",
        usecols=["Latitude", "Longitude"],
    ).dropna()
    r = pd.read_csv(
        REPO_DATA / "requests/los_angeles/myla311_2020-01-01_to_03.csv",
        usecols=["latitude", "longitude"],
    ).dropna()
    c = pd.read_csv(
        REPO_DATA / "addresses/los_angeles/cams_address_points_venice_2015.csv",
        usecols=["lon", "lat"],
    )
    # (lat, lon) -> (lon, lat)
    only_2017 = set(zip(e["Longitude"].round(7), e["Latitude"].round(7), strict=True))
    only_2017 -= set(zip(r["longitude"].round(7), r["latitude"].round(7), strict=True))
    only_2017 -= set(zip(c["lon"].round(7), c["lat"].round(7), strict=True))
    ref_xy = set(zip(ref.points["lon"].round(7), ref.points["lat"].round(7), strict=True))
    ref_xy |= set(
        zip(ref.intersections["lon"].round(7), ref.intersections["lat"].round(7), strict=True)
    )
    assert not (only_2017 & ref_xy)
    assert [s.file for s in ref.sources] == [
        "cams_address_points_venice_2015.csv", "myla311_2020-01-01_to_03.csv"]  # fmt: skip
