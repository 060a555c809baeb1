"""District assignment: the edge/snap/outside rule, invariants, and the real 2020 requests."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from geo.boundaries import load_boundary, load_district_layer
from geo.districts import DistrictIndex, assign_districts
from geo.errors import BoundaryError

DATA = Path(__file__).parent / "data" / "boundaries"
LA = Path(__file__).parents[1] / "data" / "boundaries" / "los_angeles"
LA_REQUESTS = Path(__file__).parents[1] / "data" / "requests" / "los_angeles"

SQUARES = load_district_layer(DATA / "two_squares.geojson", "district", "name")
CITY = load_boundary(DATA / "city_square.geojson")
# Squares: "1" is lon [-118.30, -118.29], "2" is lon [-118.29, -118.28]; lat [34.00, 34.01].
# 0.001 deg of longitude here is ~92 m; of latitude ~111 m.


@pytest.mark.parametrize(
    ("lon", "lat", "boundary", "expected", "why"),
    [
        (-118.295, 34.005, None, "1", "inside 1"),
        (-118.285, 34.005, None, "2", "inside 2"),
        (-118.290, 34.005, None, "1", "on the shared edge: lowest id"),
        (-118.290, 34.010, None, "1", "on the shared corner: lowest id"),
        (-118.3003, 34.005, None, "1", "~28 m west of 1: snapped"),
        (-118.2797, 34.0103, None, "2", "~40 m off the corner of 2: snapped"),
        (-118.3010, 34.005, None, None, "~92 m west of 1: outside"),
        (-118.2775, 34.005, None, None, "~230 m east of 2, no boundary: outside"),
        (-118.2775, 34.005, "city", "2", "~230 m east of 2 but inside the city: nearest"),
        (-118.2700, 34.005, "city", None, "outside the city and far"),
        (math.nan, 34.005, None, None, "missing coordinate"),
    ],
)
def test_rule_table(
    lon: float, lat: float, boundary: str | None, expected: str | None, why: str
) -> None:
    got = assign_districts(
        np.array([lon]), np.array([lat]), SQUARES, CITY if boundary else None, snap_m=50.0
    )
    assert got.tolist() == [expected], why


def test_snap_zero_disables_snapping() -> None:
    got = assign_districts([-118.3003], [34.005], SQUARES, snap_m=0.0)
    assert got.tolist() == [None]


def test_lowest_id_is_numeric_not_text_order() -> None:
    # Overlapping polygons "10" and "9": a point in both gets "9" (9 < 10), whatever the
    # row order of the layer.
    layer = gpd.GeoDataFrame(
        {"district": ["10", "9"]}, geometry=[box(0, 0, 2, 2), box(1, 1, 3, 3)], crs=4326
    )
    for frame in (layer, layer.iloc[::-1]):
        assert assign_districts([1.5, 0.5, 2.5], [1.5, 0.5, 2.5], frame).tolist() == [
            "9",
            "10",
            "9",
        ]


def test_text_ids_use_text_order() -> None:
    layer = gpd.GeoDataFrame(
        {"district": ["B", "A"]}, geometry=[box(0, 0, 2, 2), box(1, 1, 3, 3)], crs=4326
    )
    assert assign_districts([1.5], [1.5], layer).tolist() == ["A"]


def test_mismatched_lengths_and_negative_snap() -> None:
    with pytest.raises(BoundaryError, match="lon has 2 values but lat has 1"):
        assign_districts([1.0, 2.0], [1.0], SQUARES)
    with pytest.raises(BoundaryError, match="snap_m"):
        assign_districts([1.0], [1.0], SQUARES, snap_m=-1)


def test_empty_input() -> None:
    assert assign_districts([], [], SQUARES).shape == (0,)


def test_index_reuse_matches_function() -> None:
    idx = DistrictIndex(SQUARES, CITY)
    lon = np.array([-118.295, -118.285, -118.2775])
    lat = np.array([34.005, 34.005, 34.005])
    assert idx.assign(lon, lat).tolist() == assign_districts(lon, lat, SQUARES, CITY).tolist()


coords = st.one_of(st.floats(min_value=-118.31, max_value=-118.27), st.just(math.nan))
lats = st.one_of(st.floats(min_value=33.99, max_value=34.02), st.just(math.nan))


INDEX = DistrictIndex(SQUARES, CITY)
INDEX_REVERSED = DistrictIndex(SQUARES.iloc[::-1], CITY)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(coords, lats), max_size=40))
def test_invariants(points: list[tuple[float, float]]) -> None:
    lon = np.array([p[0] for p in points], dtype=float)
    lat = np.array([p[1] for p in points], dtype=float)
    got = INDEX.assign(lon, lat)
    assert got.shape == lon.shape
    assert set(got.tolist()) <= {"1", "2", None}
    # Deterministic and independent of the layer's row order.
    assert got.tolist() == INDEX_REVERSED.assign(lon, lat).tolist()
    for x, y, g in zip(lon, lat, got, strict=True):
        if math.isnan(x) or math.isnan(y):
            assert g is None
        elif -118.2999 < x < -118.2901 and 34.0001 < y < 34.0099:
            assert g == "1"  # strictly inside exactly one polygon: its id
        elif -118.2899 < x < -118.2801 and 34.0001 < y < 34.0099:
            assert g == "2"
        elif shapely.intersects_xy(CITY, x, y):
            assert g in ("1", "2")  # inside the city: always some district


def test_real_2020_sample_rows() -> None:
    sample = pd.read_csv(DATA / "la_2020_sample.csv", dtype={"expected_district": "string"})
    layer = load_district_layer(LA / "council_districts.geojson", "district", "name")
    boundary = load_boundary(LA / "city_boundary.geojson")
    got = assign_districts(sample["longitude"], sample["latitude"], layer, boundary)
    expected = [None if pd.isna(v) else v for v in sample["expected_district"]]
    assert got.tolist() == expected
    # The first seven agree with the city's own `cd`; the last two are boundary streets
    # where the city's answer differs (see tests/data/README.md).
    cd = [None if pd.isna(v) else str(int(v)) for v in sample["cd"]]
    assert got.tolist()[:7] == cd[:7]


def test_all_2020_requests_agree_with_city_cd() -> None:
    df = pd.read_csv(
        LA_REQUESTS / "myla311_2020-01-01_to_03.csv", usecols=["longitude", "latitude", "cd"]
    )
    layer = load_district_layer(LA / "council_districts.geojson", "district", "name")
    boundary = load_boundary(LA / "city_boundary.geojson")
    got = assign_districts(df["longitude"].to_numpy(), df["latitude"].to_numpy(), layer, boundary)
    assert len(got) == 10_000
    known = df["cd"].notna().to_numpy()
    cd = df["cd"][known].astype(int).astype(str).to_numpy()
    agree = float(np.mean(got[known] == cd))
    assert agree >= 0.995, agree
    assert all(g is None for g in got[~known])  # the 11 rows without coordinates


def test_projected_layer_is_reprojected_to_lon_lat() -> None:
    layer = SQUARES.to_crs(3310)
    got = assign_districts([-118.295, -118.285], [34.005, 34.005], layer)
    assert got.tolist() == ["1", "2"]
