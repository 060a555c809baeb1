"""Offline forward, reverse and batch geocoding (geo.geocoder)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from geopy.location import Location
from geopy.point import Point
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.errors import GeocodeError
from geo.geocoder import (
    HOUSE_LEVEL,
    GeocodeResult,
    OfflineGeocoder,
    Precision,
    geocode_frame,
    summarize_precision,
)
from geo.reference import (
    POINT_COLUMNS,
    AddressReference,
    build_la_reference,
    build_reference,
    read_centerlines,
)

DATA = Path(__file__).parent / "data" / "geocode"


def dist_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    kx = 111_320.0 * math.cos(math.radians(lat1))
    return math.hypot((lon2 - lon1) * kx, (lat2 - lat1) * 110_574.0)


@pytest.fixture(scope="module")
def gc() -> OfflineGeocoder:
    ref, _ = build_la_reference(DATA / "la_2020_91406.csv")
    return OfflineGeocoder(ref)


# a real 2020 point: 16815 W VANOWEN ST, 91406
VANOWEN = (-118.4994716, 34.19402846)


@pytest.mark.parametrize(
    ("query", "precision", "street"),
    [
        ("16815 W VANOWEN ST, 91406", Precision.POINT, "W VANOWEN ST"),
        ("16815 W VANOWEN ST, Van Nuys, CA 91406, USA", Precision.POINT, "W VANOWEN ST"),
        ("16815 vanowen st 91406", Precision.POINT, "W VANOWEN ST"),  # dropped directional
        ("16815 W VANOWEN", Precision.POINT, "W VANOWEN ST"),  # dropped type
        ("16815 W Vanowen Street", Precision.POINT, "W VANOWEN ST"),  # spelled-out type
        ("16815 W VANOWEN AVE", Precision.POINT, "W VANOWEN ST"),  # wrong type
        ("16815 W VANOWN ST", Precision.POINT, "W VANOWEN ST"),  # one-letter typo
        ("16815 W VNAOWEN ST", Precision.POINT, "W VANOWEN ST"),  # transposition
        ("16815 west vanowen st apt 4", Precision.POINT, "W VANOWEN ST"),
        ("near 16815 w vanowen st", Precision.POINT, "W VANOWEN ST"),
        ("in front of 16815 W VANOWEN ST #12", Precision.POINT, "W VANOWEN ST"),
        ("across from 16815 W VANOWEN ST", Precision.POINT, "W VANOWEN ST"),
        ("16700 W VANOWEN ST, 91406", Precision.INTERPOLATED, "W VANOWEN ST"),
        ("16800 block of W VANOWEN ST", Precision.BLOCK, "W VANOWEN ST"),
        ("168XX W VANOWEN ST", Precision.BLOCK, "W VANOWEN ST"),
        ("W VANOWEN ST, 91406", Precision.STREET, "W VANOWEN ST"),
    ],
)
def test_forward_forms(gc: OfflineGeocoder, query: str, precision: Precision, street: str) -> None:
    res = gc.lookup(query)
    assert res.precision is precision
    assert street in res.matched_address
    assert res.lon is not None and res.lat is not None
    if precision is Precision.POINT:
        assert dist_m(res.lon, res.lat, *VANOWEN) < 1.0
    else:
        assert dist_m(res.lon, res.lat, *VANOWEN) < 1500.0
    assert 0.0 < res.confidence <= 1.0


def test_exact_point_beats_fuzzy(gc: OfflineGeocoder) -> None:
    exact = gc.lookup("16815 W VANOWEN ST, 91406")
    typo = gc.lookup("16815 W VANOWN ST, 91406")
    assert exact.confidence == 1.0
    assert typo.confidence < exact.confidence


def test_unit_kept_as_metadata(gc: OfflineGeocoder) -> None:
    res = gc.lookup("16815 W VANOWEN ST APT 4, 91406")
    assert res.unit == "APT 4"
    assert "APT" not in res.matched_address


def test_interpolation_lies_between_neighbours(gc: OfflineGeocoder) -> None:
    pts = gc.reference.points
    van = pts[(pts["name"] == "VANOWEN") & (pts["predir"] == "W")].sort_values("number")
    lo, hi = van.iloc[2], van.iloc[3]
    mid = (int(lo["number"]) + int(hi["number"])) // 2
    res = gc.lookup(f"{mid} W VANOWEN ST, 91406")
    assert res.precision is Precision.INTERPOLATED
    assert res.lon is not None
    assert min(lo["lon"], hi["lon"]) - 1e-6 <= res.lon <= max(lo["lon"], hi["lon"]) + 1e-6


@pytest.mark.parametrize(
    "query",
    [
        "OSTROM AVE AT CANTLAY ST, 91406",
        "Ostrom Ave & Cantlay St",
        "ostrom and cantlay",
        "OSTROM / CANTLAY",
        "corner of Ostrom Ave and Cantlay St",
        "near the corner of cantlay st and ostrom ave",
    ],
)
def test_known_intersection_forms(gc: OfflineGeocoder, query: str) -> None:
    res = gc.lookup(query)
    assert res.precision is Precision.INTERSECTION
    assert res.lon is not None and res.lat is not None
    assert dist_m(res.lon, res.lat, -118.507674, 34.202065) < 5.0


def test_intersection_from_street_geometry(gc: OfflineGeocoder) -> None:
    # no "VANOWEN AT WOODLEY" row in the fixture: crossing of the two streets' lines
    inter = gc.reference.intersections
    pairs = zip(inter["name_a"], inter["name_b"], strict=True)
    assert not any({"VANOWEN", "WOODLEY"} == {a, b} for a, b in pairs)
    res = gc.lookup("Vanowen St & Woodley Ave, 91406")
    assert res.precision is Precision.INTERSECTION
    assert res.lon is not None and res.lat is not None
    # Woodley Ave is the x of its points, Vanowen St the y of its points
    pts = gc.reference.points
    wood_lon = float(np.median(pts.loc[pts["name"] == "WOODLEY", "lon"]))
    van_lat = float(np.median(pts.loc[pts["name"] == "VANOWEN", "lat"]))
    assert dist_m(res.lon, res.lat, wood_lon, van_lat) < 120.0


def test_between_two_cross_streets(gc: OfflineGeocoder) -> None:
    a = gc.lookup("Vanowen St & Haskell Ave")
    b = gc.lookup("Vanowen St & Woodley Ave")
    res = gc.lookup("Vanowen St between Haskell Ave and Woodley Ave, 91406")
    assert res.precision is Precision.BLOCK and res.method == "between"
    assert None not in (a.lon, b.lon, res.lon)
    assert res.lon == pytest.approx((a.lon + b.lon) / 2, abs=1e-6)  # type: ignore[operator]
    assert res.confidence < min(a.confidence, b.confidence)
    one = gc.lookup("vanowen btwn haskell & nowhere")
    assert one.precision is Precision.BLOCK and one.confidence < res.confidence


def test_unknown_street_with_zip_is_zip_precision(gc: OfflineGeocoder) -> None:
    res = gc.lookup("123 NOWHERE LN, 91406")
    assert res.precision is Precision.ZIP
    assert res.confidence <= 0.2
    assert res.matched_address == "ZIP 91406"
    assert not res.house_level


@pytest.mark.parametrize("query", ["", "   ", "123 NOWHERE LN", "asdf qwerty", None, 42])
def test_nothing_located(gc: OfflineGeocoder, query: object) -> None:
    res = gc.lookup(query)
    assert res.precision is Precision.NONE
    assert res.lon is None and res.lat is None
    assert res.confidence == 0.0
    assert gc.geocode(str(query) if query is not None else "") is None


@pytest.fixture(scope="module")
def twin_gc() -> OfflineGeocoder:
    """The same street name in two parts of a city, 30 km apart, different ZIPs."""
    rows = []
    for zip_code, lon0 in (("90001", -118.25), ("91001", -118.55)):
        for k, n in enumerate(range(100, 1000, 100)):
            rows.append((n, "W", "TWIN", "ST", "", "", zip_code, lon0 - k * 0.0015, 34.0))
        for k, n in enumerate(range(100, 1000, 100)):
            rows.append((n, "N", "OTHER", "AVE", "", "", zip_code, lon0, 34.0 + k * 0.0015))
    return OfflineGeocoder(build_reference(pd.DataFrame(rows, columns=POINT_COLUMNS)))


def test_duplicate_street_names_disambiguated_by_zip(twin_gc: OfflineGeocoder) -> None:
    res = twin_gc.lookup("450 W TWIN ST, 91001")
    assert res.precision is Precision.INTERPOLATED
    assert res.lon is not None and res.lon < -118.5
    assert not res.ambiguous
    res2 = twin_gc.lookup("450 W TWIN ST", "90001")
    assert res2.lon is not None and res2.lon > -118.3


def test_duplicate_street_names_without_zip_are_ambiguous(twin_gc: OfflineGeocoder) -> None:
    res = twin_gc.lookup("450 W TWIN ST")
    assert res.ambiguous
    assert len(res.candidates) == 2
    assert {c.matched_address[-5:] for c in res.candidates} == {"90001", "91001"}
    assert res.confidence <= 0.5
    locs = twin_gc.geocode("450 W TWIN ST", exactly_one=False)
    assert isinstance(locs, list) and len(locs) == 2


def test_street_only_duplicates_are_ambiguous(twin_gc: OfflineGeocoder) -> None:
    res = twin_gc.lookup("W TWIN ST")
    assert res.precision is Precision.STREET
    assert res.ambiguous and len(res.candidates) == 2
    assert not twin_gc.lookup("W TWIN ST, 91001").ambiguous


def test_wrong_zip_far_away_is_not_a_house(twin_gc: OfflineGeocoder) -> None:
    # a ZIP the street never reaches: no house-level answer 30 km away
    res = twin_gc.lookup("450 W TWIN ST, 91001")
    assert res.house_level
    far = twin_gc.lookup("450 W TWIN ST, 90001")
    assert far.lon is not None and res.lon is not None
    assert dist_m(far.lon, far.lat or 0.0, res.lon, res.lat or 0.0) > 20_000


def test_centerline_interpolation() -> None:
    cl = read_centerlines(DATA / "centerlines_synthetic.geojson")
    pts = pd.DataFrame(
        [(16900, "W", "SAMPLE", "ST", "", "", "91406", -118.4812, 34.2031)], columns=POINT_COLUMNS
    )
    gc = OfflineGeocoder(build_reference(pts, centerlines=cl))
    res = gc.lookup("7050 N EXAMPLE AVE, 91406")
    assert res.precision is Precision.INTERPOLATED
    assert res.method == "centerline"
    assert res.lon == pytest.approx(-118.48, abs=1e-6)
    # 7050 is half-way along the 7000-7098 range of the first segment
    assert res.lat == pytest.approx(34.2010, abs=5e-5)
    res2 = gc.lookup("7150 N EXAMPLE AVE")
    assert res2.lat is not None and 34.202 < res2.lat < 34.204
    assert gc.lookup("16900 W SAMPLE ST").precision is Precision.POINT


def test_centerlines_alone_are_enough() -> None:
    cl = read_centerlines(DATA / "centerlines_synthetic.geojson")
    gc = OfflineGeocoder(build_reference(pd.DataFrame(columns=POINT_COLUMNS), centerlines=cl))
    res = gc.lookup("7051 N Example Ave")
    assert res.precision is Precision.INTERPOLATED
    assert res.lat == pytest.approx(34.2010, abs=5e-5)
    cross = gc.lookup("N Example Ave & W Sample St")
    assert cross.precision is Precision.INTERSECTION
    assert cross.lat == pytest.approx(34.2030, abs=1e-4)
    _check_invariants(gc.reverse_result(-118.48, 34.2))


def test_geopy_interface(gc: OfflineGeocoder) -> None:
    loc = gc.geocode("16815 W VANOWEN ST, 91406")
    assert isinstance(loc, Location)
    assert loc.longitude == pytest.approx(VANOWEN[0])
    assert loc.latitude == pytest.approx(VANOWEN[1])
    assert loc.raw["precision"] == "point"
    assert "VANOWEN" in loc.address
    many = gc.geocode("16815 W VANOWEN ST, 91406", exactly_one=False)
    assert isinstance(many, list) and len(many) == 1


@pytest.mark.parametrize(
    "query",
    [(VANOWEN[1], VANOWEN[0]), f"{VANOWEN[1]}, {VANOWEN[0]}", Point(VANOWEN[1], VANOWEN[0])],
)
def test_reverse_geopy_lat_lon(gc: OfflineGeocoder, query: object) -> None:
    loc = gc.reverse(query)
    assert isinstance(loc, Location)
    assert "16815 W VANOWEN ST" in loc.address
    assert loc.raw["distance_m"] == pytest.approx(0.0, abs=0.5)


def test_reverse_confidence_falls_with_distance(gc: OfflineGeocoder) -> None:
    near = gc.reverse_result(VANOWEN[0], VANOWEN[1])
    far = gc.reverse_result(VANOWEN[0] + 0.003, VANOWEN[1])
    assert near.confidence == pytest.approx(1.0)
    assert far.distance_m is not None and far.distance_m > 50
    assert 0 < far.confidence < near.confidence
    with pytest.raises(GeocodeError):
        gc.reverse("not a point")


def test_geocode_frame(gc: OfflineGeocoder) -> None:
    df = pd.DataFrame(
        {
            "addr": ["16815 W VANOWEN ST", "16815 W VANOWEN ST", "OSTROM AT CANTLAY", None, "x"],
            "zip": ["91406", "91406", "91406", None, "91406"],
            "keep": [1, 2, 3, 4, 5],
        }
    )
    calls: list[tuple[object, object]] = []

    class Counting:
        def lookup(self, q: object, z: object = None) -> GeocodeResult:
            calls.append((q, z))
            return gc.lookup(q, z)

    out = geocode_frame(df, "addr", "zip", geocoder=Counting(), progress=True)  # type: ignore[arg-type]
    assert list(out.columns) == [
        "addr", "zip", "keep", "lon", "lat", "precision", "confidence", "matched_address",
    ]  # fmt: skip
    assert len(calls) == 4  # the repeated string is geocoded once
    assert list(out["precision"]) == ["point", "point", "intersection", "none", "zip"]
    assert out["lon"].isna().tolist() == [False, False, False, True, False]
    assert out.attrs["geocode_summary"]["point"] == 2
    assert "lon" not in df.columns  # input untouched
    summary = summarize_precision(out)
    assert list(summary.index) == [str(p) for p in Precision]
    assert summary["share"].sum() == pytest.approx(1.0)
    with pytest.raises(GeocodeError, match="nope"):
        geocode_frame(df, "nope", geocoder=gc)


def test_evaluation_fixture_2017(gc: OfflineGeocoder) -> None:
    """2017 rows of one ZIP against the 2020 fixture: mostly house level, close."""
    ev = pd.read_csv(DATA / "la_2017_91406_eval.csv")
    ev = ev[~ev["Address"].str.contains(" AT ")]
    out = geocode_frame(ev, "Address", "ZipCode", geocoder=gc)
    house = out["precision"].isin([str(p) for p in HOUSE_LEVEL])
    err = [
        dist_m(a, b, c, d)
        for a, b, c, d in zip(
            out.loc[house, "lon"], out.loc[house, "lat"],
            out.loc[house, "Longitude"], out.loc[house, "Latitude"], strict=True,
        )
    ]  # fmt: skip
    assert house.mean() >= 0.6
    assert float(np.median(err)) < 120.0
    assert float(np.mean(np.array(err) > 1000.0)) < 0.05


def test_long_walks_can_be_switched_off() -> None:
    ref, _ = build_la_reference(DATA / "la_2020_91406.csv")
    strict = OfflineGeocoder(ref, long_walks=False)
    ev = pd.read_csv(DATA / "la_2017_91406_eval.csv")
    methods = {
        strict.lookup(a, z).method for a, z in zip(ev["Address"], ev["ZipCode"], strict=True)
    }
    assert "grid-long" not in methods
    assert "exact" in methods or "between" in methods


def test_constructor_validates() -> None:
    with pytest.raises(GeocodeError, match="AddressReference"):
        OfflineGeocoder("los_angeles")  # type: ignore[arg-type]
    empty = AddressReference(points=pd.DataFrame(columns=POINT_COLUMNS))
    with pytest.raises(GeocodeError, match="no points"):
        OfflineGeocoder(empty)


PRECISIONS = {str(p) for p in Precision}


def _check_invariants(res: GeocodeResult) -> None:
    assert str(res.precision) in PRECISIONS
    assert 0.0 <= res.confidence <= 1.0
    assert (res.lon is None) == (res.lat is None)
    if res.lon is not None and res.lat is not None:
        assert math.isfinite(res.lon) and math.isfinite(res.lat)
    else:
        assert res.precision is Precision.NONE
    for c in res.candidates:
        assert math.isfinite(c.lon) and math.isfinite(c.lat) and 0 <= c.confidence <= 1


@settings(max_examples=120, deadline=None)
@given(st.text(max_size=60), st.one_of(st.none(), st.text(max_size=7)))
def test_invariants_on_arbitrary_text(gc: OfflineGeocoder, text: str, zip_code: str | None) -> None:
    _check_invariants(gc.lookup(text, zip_code))


streetish = st.builds(
    lambda n, d, name, t, z: f"{n} {d} {name} {t} {z}",
    st.integers(0, 30000),
    st.sampled_from(["", "W", "n", "East"]),
    st.sampled_from(["VANOWEN", "vanown", "Haskell", "WOODLEY", "ostrom and cantlay", "ZZZ"]),
    st.sampled_from(["", "st", "Avenue", "blvd"]),
    st.sampled_from(["", "91406", "90001", "99999"]),
)


@settings(max_examples=120, deadline=None)
@given(streetish)
def test_invariants_on_address_like_text(gc: OfflineGeocoder, text: str) -> None:
    _check_invariants(gc.lookup(text))


@settings(max_examples=80, deadline=None)
@given(st.floats(-118.6, -118.4), st.floats(34.1, 34.3))
def test_reverse_invariants(gc: OfflineGeocoder, lon: float, lat: float) -> None:
    res = gc.reverse_result(lon, lat)
    _check_invariants(res)
    assert res.distance_m is not None and res.distance_m >= 0
