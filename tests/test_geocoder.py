"""Offline forward, reverse and batch geocoding (geo.geocoding)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from geocode_helpers import requests_reference
from geopy.location import Location
from geopy.point import Point
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.errors import GeocodeError
from geo.geocoding import (
    GEOCODER_PRECISIONS,
    HOUSE_LEVEL,
    GeocodeResult,
    Precision,
    describe_method,
)
from geo.geocoding.batch import geocode_frame, summarize_precision
from geo.geocoding.geopy_adapter import GeopyAdapter
from geo.geocoding.index import block_positions
from geo.geocoding.offline import OfflineGeocoder
from geo.geocoding.tuning import DEFAULT_TUNING
from geo.reference import (
    INTERSECTION_COLUMNS,
    POINT_COLUMNS,
    AddressReference,
    build_reference,
    load_reference,
    read_centerlines,
)

DATA = Path(__file__).parent / "data" / "geocode"


def dist_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    kx = 111_320.0 * math.cos(math.radians(lat1))
    return math.hypot((lon2 - lon1) * kx, (lat2 - lat1) * 110_574.0)


@pytest.fixture(scope="module")
def gc() -> OfflineGeocoder:
    ref, _ = requests_reference(DATA / "la_2020_91406.csv")
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
    assert res.precision is Precision.BLOCK and res.method == "stretch"
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
    assert GeopyAdapter(gc).geocode(str(query) if query is not None else "") is None


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
    locs = GeopyAdapter(twin_gc).geocode("450 W TWIN ST", exactly_one=False)
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
    _check_invariants(gc.reverse_lookup(-118.48, 34.2))


def test_geopy_interface(gc: OfflineGeocoder) -> None:
    loc = GeopyAdapter(gc).geocode("16815 W VANOWEN ST, 91406")
    assert isinstance(loc, Location)
    assert loc.longitude == pytest.approx(VANOWEN[0])
    assert loc.latitude == pytest.approx(VANOWEN[1])
    assert loc.raw["precision"] == "point"
    assert "VANOWEN" in loc.address
    many = GeopyAdapter(gc).geocode("16815 W VANOWEN ST, 91406", exactly_one=False)
    assert isinstance(many, list) and len(many) == 1


@pytest.mark.parametrize(
    "query",
    [(VANOWEN[1], VANOWEN[0]), f"{VANOWEN[1]}, {VANOWEN[0]}", Point(VANOWEN[1], VANOWEN[0])],
)
def test_reverse_geopy_lat_lon(gc: OfflineGeocoder, query: object) -> None:
    loc = GeopyAdapter(gc).reverse(query)
    assert isinstance(loc, Location)
    assert "16815 W VANOWEN ST" in loc.address
    assert loc.raw["distance_m"] == pytest.approx(0.0, abs=0.5)


def test_reverse_confidence_falls_with_distance(gc: OfflineGeocoder) -> None:
    near = gc.reverse_lookup(VANOWEN[0], VANOWEN[1])
    far = gc.reverse_lookup(VANOWEN[0] + 0.003, VANOWEN[1])
    assert near.confidence == pytest.approx(1.0)
    assert far.distance_m is not None and far.distance_m > 50
    assert 0 < far.confidence < near.confidence
    with pytest.raises(GeocodeError):
        GeopyAdapter(gc).reverse("not a point")


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

    out = geocode_frame(df, "addr", Counting(), "zip", progress=True)  # type: ignore[arg-type]
    assert list(out.columns) == [
        "addr", "zip", "keep", "lon", "lat", "precision", "confidence", "matched_address",
        "geocode_source",
    ]  # fmt: skip
    assert len(calls) == 4  # the repeated string is geocoded once
    assert list(out["precision"]) == ["point", "point", "intersection", "none", "zip"]
    assert out["lon"].isna().tolist() == [False, False, False, True, False]
    assert out.attrs["geocode_summary"]["point"] == 2
    assert "lon" not in df.columns  # input untouched
    summary = summarize_precision(out)
    assert list(summary.index) == [str(p) for p in GEOCODER_PRECISIONS]
    assert summary["share"].sum() == pytest.approx(1.0)
    with pytest.raises(GeocodeError, match="nope"):
        geocode_frame(df, "nope", gc)


def test_evaluation_fixture_2017(gc: OfflineGeocoder) -> None:
    """2017 rows of one ZIP against the 2020 fixture: mostly house level, close."""
    ev = pd.read_csv(DATA / "la_2017_91406_eval.csv")
    ev = ev[~ev["Address"].str.contains(" AT ")]
    out = geocode_frame(ev, "Address", gc, "ZipCode")
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
    ref, _ = requests_reference(DATA / "la_2020_91406.csv")
    strict = OfflineGeocoder(ref, tuning=dataclasses.replace(DEFAULT_TUNING, long_walks=False))
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
    # every way of finding an answer can be explained to a supervisor
    assert res.method == "" or describe_method(res.method)


def test_every_method_is_explained(la_gc: OfflineGeocoder) -> None:
    """The answers to a mix of real and typed queries all carry an explained method."""
    queries = ["1046 W 37TH ST, 90007", "1400 block of w lomita 90710", "MAIN ST, 90012",
               "VANOWEN ST AT WOODLEY AVE", "1 NOWHERE LN, 90012", "1400 N GAFFEY ST, 90731",
               "452 N SAN FERNANDO RD, 90031", "2326 W JAMES M WOOD BLVD, 90006"]  # fmt: skip
    queries += pd.read_csv(DATA / "la_2017_91406_eval.csv")["Address"].astype(str).tolist()
    methods = set()
    for q in queries:
        res = la_gc.lookup(q)
        _check_invariants(res)
        methods.add(res.method)
    assert {"exact", "ordinal", "zip", "street", "crossing"} <= methods


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
    res = gc.reverse_lookup(lon, lat)
    _check_invariants(res)
    assert res.distance_m is not None and res.distance_m >= 0


# ------------------------------------------------------- regression: pre-directions
# A north-south street numbered away from a divide line at lat 34.0 (about 100 m per
# 100 numbers), N GAFFEY going north, S GAFFEY going south, all in one ZIP.
_DIVIDE_LAT = 34.0
_DEG_PER_NUMBER = 0.0009 / 100


def _gaffey_rows(n_numbers: list[int]) -> list[tuple[object, ...]]:
    def lat(n: int) -> float:
        return _DIVIDE_LAT + n * _DEG_PER_NUMBER

    rows: list[tuple[object, ...]] = []
    for n in range(100, 2100, 100):
        rows.append((n, "S", "GAFFEY", "ST", "", "", "90731", -118.29, lat(-n)))
    for n in n_numbers:
        rows.append((n, "N", "GAFFEY", "ST", "", "", "90731", -118.29, lat(n)))
    for n in range(100, 2100, 100):  # a parallel street, so the ZIP has some width
        rows.append((n, "S", "PACIFIC", "AVE", "", "", "90731", -118.28, lat(-n)))
    return rows


@pytest.fixture(scope="module")
def divide_gc() -> dict[str, OfflineGeocoder]:
    """Two references: one with an N GAFFEY run (1400 missing), one with only S GAFFEY."""
    with_n = _gaffey_rows([n for n in range(100, 2100, 100) if n != 1400])
    only_s = _gaffey_rows([])
    # no N GAFFEY, but the parallel streets' N numbers give the N number field
    across = only_s + [
        (n, "N", name, "AVE", "", "", "90731", lon, _DIVIDE_LAT + n * _DEG_PER_NUMBER)
        for name, lon in (("PACIFIC", -118.287), ("HARBOR", -118.284))
        for n in range(100, 2100, 100)
    ]
    frames = {"with_n": with_n, "only_s": only_s, "across": across}
    return {
        key: OfflineGeocoder(build_reference(pd.DataFrame(rows, columns=POINT_COLUMNS)))
        for key, rows in frames.items()
    }


@pytest.mark.parametrize(
    ("reference", "query", "house_level", "matched_prefix", "true_number"),
    [
        # the N run exists but lacks 1400: interpolate on the N run, never on S
        ("with_n", "1400 N Gaffey St, San Pedro, CA 90731", True, "1400 N GAFFEY ST", 1400),
        ("with_n", "1400 north gaffey street 90731", True, "1400 N GAFFEY ST", 1400),
        ("with_n", "1400 N GAFFEY ST", True, "1400 N GAFFEY ST", 1400),
        ("with_n", "1400 S GAFFEY ST, 90731", True, "1400 S GAFFEY ST", -1400),
        # no N run at all: the S point 2.8 km away is not this house
        ("only_s", "1400 N Gaffey St, San Pedro, CA 90731", False, "S GAFFEY ST", None),
        ("only_s", "1400 N GAFFEY ST", False, "S GAFFEY ST", None),
        ("only_s", "1450 N GAFFEY ST, 90731", False, "S GAFFEY ST", None),
        ("only_s", "1400 S GAFFEY ST, 90731", True, "1400 S GAFFEY ST", -1400),
        ("only_s", "600 N GAFFEY ST, 90731", False, "S GAFFEY ST", None),  # no N field
        # no N run, but an N number field: walked through the divide, low confidence
        ("across", "600 N GAFFEY ST, 90731", True, "600 N GAFFEY ST", 600),
        ("across", "1100 N GAFFEY ST, 90731", True, "1100 N GAFFEY ST", 1100),
        ("across", "600 N GAFFEY ST", False, "S GAFFEY ST", None),  # no ZIP to confirm
        ("across", "1400 N GAFFEY ST, 90731", False, "S GAFFEY ST", None),  # too far to walk
    ],
)
def test_explicit_predir_is_never_swapped_for_another(
    divide_gc: dict[str, OfflineGeocoder],
    reference: str,
    query: str,
    house_level: bool,
    matched_prefix: str,
    true_number: int | None,
) -> None:
    res = divide_gc[reference].lookup(query)
    assert res.house_level is house_level
    assert res.matched_address.startswith(matched_prefix)
    assert res.lon is not None and res.lat is not None
    if true_number is not None:
        true_lat = _DIVIDE_LAT + true_number * _DEG_PER_NUMBER
        assert dist_m(res.lon, res.lat, -118.29, true_lat) < 60.0
        if reference == "across":
            assert res.precision is Precision.INTERPOLATED
            assert res.method.startswith("across")
            assert res.confidence <= 0.3
    else:
        assert res.precision is not Precision.POINT
        assert res.precision in (Precision.STREET, Precision.ZIP)
        assert res.confidence <= 0.3


# ----------------------------------------------- regression: query ZIP versus far runs
@pytest.fixture(scope="module")
def far_gc() -> OfflineGeocoder:
    """N SAN FERNANDO RD known only in 91342, 25 km north of ZIP 90031's points."""
    rows: list[tuple[object, ...]] = []
    for k, n in enumerate(range(12100, 13100, 100)):
        rows.append((n, "N", "SAN FERNANDO", "RD", "", "", "91342", -118.45 - k * 0.001, 34.29))
    for k, n in enumerate(range(100, 1100, 100)):
        rows.append((n, "N", "BROADWAY", "", "", "", "90031", -118.21, 34.07 + k * 0.0009))
        rows.append((n, "N", "MAIN", "ST", "", "", "90031", -118.22, 34.07 + k * 0.0009))
    return OfflineGeocoder(build_reference(pd.DataFrame(rows, columns=POINT_COLUMNS)))


@pytest.mark.parametrize(
    ("query", "zip_field", "precision", "near_90031"),
    [
        ("452 N San Fernando Rd, Los Angeles, CA 90031", None, Precision.ZIP, True),
        ("452 N SAN FERNANDO RD", "90031", Precision.ZIP, True),
        ("N SAN FERNANDO RD, 90031", None, Precision.ZIP, True),
        ("12450 N SAN FERNANDO RD, 90031", None, Precision.ZIP, True),
        # the ZIP the street is known in, or no ZIP at all: the known stretch
        ("12450 N SAN FERNANDO RD, 91342", None, Precision.INTERPOLATED, False),
        ("452 N SAN FERNANDO RD", None, Precision.STREET, False),
    ],
)
def test_query_zip_beats_a_far_stretch_of_the_street(
    far_gc: OfflineGeocoder,
    query: str,
    zip_field: str | None,
    precision: Precision,
    near_90031: bool,
) -> None:
    res = far_gc.lookup(query, zip_field)
    assert res.precision is precision
    assert res.lon is not None and res.lat is not None
    d = dist_m(res.lon, res.lat, -118.215, 34.074)
    if near_90031:
        assert d < 3000.0
        assert res.confidence <= 0.1
        # the far stretch is offered as a candidate, not as the answer
        assert any("SAN FERNANDO" in c.matched_address for c in res.candidates)
    else:
        assert d > 20_000.0
    if precision is Precision.STREET:
        assert res.confidence <= 0.3


LA_PARQUET = Path(__file__).resolve().parents[1] / "data" / "reference" / "los_angeles.parquet"


@pytest.fixture(scope="module")
def la_gc() -> OfflineGeocoder:
    if not LA_PARQUET.exists():
        pytest.skip("shipped Los Angeles reference not built")
    return OfflineGeocoder.from_path(LA_PARQUET)


@pytest.mark.parametrize(
    ("query", "true_lon", "true_lat", "max_m"),
    [
        # 1400 N Gaffey St lies ~2.9 km north of 1400 S Gaffey St (not in the reference)
        ("1400 N Gaffey St, San Pedro, CA 90731", -118.2923, 33.7574, 2500.0),
        # 452 N San Fernando Rd, Lincoln Heights; the 2020 file knows the road only in 913xx
        ("452 N San Fernando Rd, Los Angeles, CA 90031", -118.2210, 34.0740, 3000.0),
    ],
)
def test_shipped_reference_regressions(
    la_gc: OfflineGeocoder, query: str, true_lon: float, true_lat: float, max_m: float
) -> None:
    res = la_gc.lookup(query)
    assert res.precision is not Precision.POINT
    assert not res.house_level
    assert res.confidence <= 0.3
    assert res.lon is not None and res.lat is not None
    assert dist_m(res.lon, res.lat, true_lon, true_lat) < max_m


@pytest.fixture(scope="module")
def far_inter_gc() -> OfflineGeocoder:
    """MAIN ST and 1ST ST known (with their crossing) only in 90012, far from 90731."""
    rows: list[tuple[object, ...]] = []
    for k, n in enumerate(range(100, 1100, 100)):
        rows.append((n, "N", "MAIN", "ST", "", "", "90012", -118.24, 34.05 + k * 0.0009))
        rows.append((n, "E", "1ST", "ST", "", "", "90012", -118.24 + k * 0.001, 34.05))
        rows.append((n, "W", "9TH", "ST", "", "", "90731", -118.29 - k * 0.001, 33.74))
        rows.append((n, "S", "PACIFIC", "AVE", "", "", "90731", -118.29, 33.74 - k * 0.0009))
    inter = pd.DataFrame(
        [("1ST", "ST", "MAIN", "ST", "90012", -118.24, 34.05)], columns=INTERSECTION_COLUMNS
    )
    points = pd.DataFrame(rows, columns=POINT_COLUMNS)
    return OfflineGeocoder(build_reference(points, intersections=inter))


@pytest.mark.parametrize(
    ("query", "precision", "near_downtown"),
    [
        ("MAIN ST AT 1ST ST, 90012", Precision.INTERSECTION, True),
        ("MAIN ST AT 1ST ST", Precision.INTERSECTION, True),
        # the same names in San Pedro's ZIP: not the downtown crossing 35 km away
        ("MAIN ST AT 1ST ST, 90731", Precision.ZIP, False),
        ("MAIN ST AT 9TH ST, 90731", Precision.STREET, False),
    ],
)
def test_known_intersection_far_from_query_zip(
    far_inter_gc: OfflineGeocoder, query: str, precision: Precision, near_downtown: bool
) -> None:
    res = far_inter_gc.lookup(query)
    assert res.precision is precision
    assert res.lon is not None and res.lat is not None
    d = dist_m(res.lon, res.lat, -118.24, 34.05)
    assert (d < 1000.0) is near_downtown


# ------------------------------------- numbered streets and streets known by crossings
# A synthetic grid laid out like South LA: ``W nTH ST`` runs east-west at S number n*100
# (100 m apart), W numbers grow westward, ``S`` streets run north-south.
_GRID_LAT0, _GRID_LON0 = 34.0, -118.27
_LAT_PER_S, _LON_PER_W = 0.9e-5, 1.0e-5


def _grid_xy(w_number: float, s_number: float) -> tuple[float, float]:
    return _GRID_LON0 - w_number * _LON_PER_W, _GRID_LAT0 - s_number * _LAT_PER_S


def _grid_rows(skip: set[int]) -> list[tuple[object, ...]]:
    def suffix(v: int) -> str:
        return "TH" if 11 <= v % 100 <= 13 else {1: "ST", 2: "ND", 3: "RD"}.get(v % 10, "TH")

    rows: list[tuple[object, ...]] = []
    for v in range(30, 41):
        if v in skip:
            continue
        for w in range(100, 1600, 100):
            rows.append((w, "W", f"{v}{suffix(v)}", "ST", "", "", "90007", *_grid_xy(w, v * 100)))
    for name, w in (("FIGUEROA", 500), ("FLOWER", 700)):
        for s in range(3000, 4100, 100):
            rows.append((s, "S", name, "ST", "", "", "90007", *_grid_xy(w, s)))
    return rows


@pytest.fixture(scope="module")
def grid_gc() -> OfflineGeocoder:
    """W 37TH ST missing; S GRAND AVE (W 900 line) known only where it crosses 33RD, 38TH."""
    points = pd.DataFrame(_grid_rows(skip={37}), columns=POINT_COLUMNS)
    crossings = [("33RD", 3300), ("38TH", 3800)]
    inter = pd.DataFrame(
        [("GRAND", "AVE", name, "ST", "90007", *_grid_xy(900, s)) for name, s in crossings],
        columns=INTERSECTION_COLUMNS,
    )
    return OfflineGeocoder(
        build_reference(points, intersections=inter, place_names=("LOS ANGELES",))
    )


@pytest.mark.parametrize(
    ("query", "method", "w_number", "s_number"),
    [
        # between 1046 W 36TH ST and 1046 W 38TH ST
        ("1046 W 37TH ST, 90007", "ordinal", 1046, 3700),
        ("1046 west 37th street los angeles ca 90007", "ordinal", 1046, 3700),
        # walked from the known crossing with 33RD ST along GRAND's line
        ("3450 S GRAND AVE, 90007", "crossing-walk", 900, 3450),
        ("3750 S Grand Ave, Los Angeles, CA 90007", "crossing-walk", 900, 3750),
    ],
)
def test_streets_located_from_their_neighbours(
    grid_gc: OfflineGeocoder, query: str, method: str, w_number: int, s_number: int
) -> None:
    res = grid_gc.lookup(query)
    assert res.precision is Precision.INTERPOLATED
    assert res.method == method
    assert res.lon is not None and res.lat is not None
    assert dist_m(res.lon, res.lat, *_grid_xy(w_number, s_number)) < 40.0
    # a new estimate, not a known house: below the routing gate's comfort zone
    assert res.confidence <= 0.55
    assert res.matched_address.startswith(query.split(",")[0].upper()[:4])


def test_numbered_street_without_predir_rests_on_the_zip(grid_gc: OfflineGeocoder) -> None:
    """No pre-direction: the neighbours near the ZIP decide, with a lower confidence."""
    with_dir = grid_gc.lookup("1046 W 37TH ST, 90007")
    res = grid_gc.lookup("1046 37TH ST, 90007")
    assert res.method == "ordinal"
    assert res.precision is Precision.INTERPOLATED
    assert res.lon is not None and res.lat is not None
    assert dist_m(res.lon, res.lat, *_grid_xy(1046, 3700)) < 40.0
    assert res.confidence < with_dir.confidence


@pytest.mark.parametrize(
    ("query", "method", "matched"),
    [
        ("1000 block of W 37TH ST, 90007", "ordinal", "1000 BLOCK OF W 37TH ST, 90007"),
        ("10XX W 37th St 90007", "ordinal", "1000 BLOCK OF W 37TH ST, 90007"),
        ("3400 block of S Grand Ave, 90007", "crossing-walk", "3400 BLOCK OF S GRAND AVE, 90007"),
    ],
)
def test_blocks_from_neighbours_stay_blocks(
    grid_gc: OfflineGeocoder, query: str, method: str, matched: str
) -> None:
    res = grid_gc.lookup(query)
    assert res.precision is Precision.BLOCK
    assert res.method == method
    assert res.matched_address == matched


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("1046 W 37TH ST", "no ZIP: numbered streets repeat across the city"),
        ("1046 W 41ST ST, 90007", "only one side known (40TH): no extrapolation"),
        ("1046 W 37TH ST, 90731", "the neighbours lie far outside the query ZIP"),
        ("3450 S GRAND AVE", "no ZIP to confirm the walk"),
        ("3450 GRAND AVE, 90007", "no pre-direction: which number field is unknown"),
        ("9450 S GRAND AVE, 90007", "too many numbers from any known crossing"),
    ],
)
def test_neighbour_estimates_need_their_evidence(
    grid_gc: OfflineGeocoder, query: str, why: str
) -> None:
    res = grid_gc.lookup(query)
    assert not res.house_level, why
    assert res.method not in ("ordinal", "crossing-walk"), why


# ------------------------------------------- side of the street and numbers in blocks
def _sided_rows(query_street_numbers: list[int]) -> list[tuple[object, ...]]:
    """E-W streets in a ZIP, odd numbers 30 m north of even ones, 100 numbers per 100 m.

    Houses use x00-x60 of each hundred, spread over the whole block.
    """
    rows: list[tuple[object, ...]] = []
    m_per_deg_lat = 111_195.0

    def lonlat(n: int, k: int) -> tuple[float, float]:
        block, rest = divmod(n, 100)
        x_m = block * 100.0 + min(rest, 60) / 60.0 * 100.0
        side_m = 15.0 if n % 2 else -15.0
        return -118.3 - x_m / 92_000.0, 34.0 + k * 0.002 + side_m / m_per_deg_lat

    for k in range(6):
        numbers = query_street_numbers if k == 0 else [
            b * 100 + r for b in range(1, 20) for r in (0, 10, 11, 20, 30, 31, 40, 50, 51, 60)
        ]
        for n in numbers:
            rows.append((n, "W", f"STREET{k}", "ST", "", "", "90019", *lonlat(n, k)))
    return rows


def _sided_truth(n: int) -> tuple[float, float]:
    block, rest = divmod(n, 100)
    x_m = block * 100.0 + min(rest, 60) / 60.0 * 100.0
    return -118.3 - x_m / 92_000.0, 34.0 + (15.0 if n % 2 else -15.0) / 111_195.0


@pytest.mark.parametrize(
    ("query", "number", "max_m"),
    [
        # odd house between two even points: on the odd (north) side of the street
        ("1031 W STREET0 ST, 90019", 1031, 15.0),
        # 1260 between 1210 and 1450: at the end of its block, not 21% of the way
        ("1260 W STREET0 ST, 90019", 1260, 15.0),
        ("1261 W STREET0 ST, 90019", 1261, 15.0),
    ],
)
def test_estimates_follow_parity_side_and_block_layout(
    query: str, number: int, max_m: float
) -> None:
    gc = OfflineGeocoder(
        build_reference(pd.DataFrame(_sided_rows([1010, 1050, 1210, 1450]), columns=POINT_COLUMNS))
    )
    res = gc.lookup(query)
    assert res.precision is Precision.INTERPOLATED
    assert res.lon is not None and res.lat is not None
    assert dist_m(res.lon, res.lat, *_sided_truth(number)) < max_m


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=30_000), min_size=200, max_size=600))
def test_block_positions_keep_numbers_in_order(numbers: list[int]) -> None:
    """Placing numbers within blocks never reorders them (interpolation stays between)."""
    pos = block_positions(np.asarray(numbers))
    assert pos is not None
    along = np.arange(0, 1000) // 100 * 100 + pos[np.arange(0, 1000) % 100]
    assert np.all(np.diff(along) > 0)
    assert pos[0] > 0.0
    assert pos[-1] < 100.0


@pytest.fixture(scope="module")
def two_sides_gc() -> OfflineGeocoder:
    """N ALVARADO ST (ZIP 90026) north of the divide, S ALVARADO ST (90057) south of it.

    The N run's numbers span 100-1600, the S run's only 700-1200, as in the 2020 file.
    """
    rows: list[tuple[object, ...]] = []
    for n in (125, 245, 445, 1307, 1310, 1635):
        rows.append((n, "N", "ALVARADO", "ST", "", "", "90026", -118.26, 34.06 + n * 0.9e-5))
    for n in (730, 835, 843, 925, 1201):
        rows.append((n, "S", "ALVARADO", "ST", "", "", "90057", -118.26, 34.06 - n * 0.9e-5))
    for n in range(100, 1700, 100):  # the two ZIPs' other streets
        rows.append((n, "N", "BONNIE BRAE", "ST", "", "", "90026", -118.263, 34.06 + n * 0.9e-5))
        rows.append((n, "S", "BONNIE BRAE", "ST", "", "", "90057", -118.263, 34.06 - n * 0.9e-5))
    return OfflineGeocoder(build_reference(pd.DataFrame(rows, columns=POINT_COLUMNS)))


@pytest.mark.parametrize(
    ("query", "predir"),
    [
        # no pre-direction: the ZIP picks the side, not the run whose numbers span 620
        ("620 Alvarado St, Los Angeles, CA 90057", "S"),
        ("620 alvarado 90026", "N"),
    ],
)
def test_missing_predir_follows_the_zip(
    two_sides_gc: OfflineGeocoder, query: str, predir: str
) -> None:
    res = two_sides_gc.lookup(query)
    assert res.house_level
    assert res.matched_address.startswith(f"620 {predir} ALVARADO ST")
    assert res.lon is not None and res.lat is not None
    sign = 1 if predir == "N" else -1
    assert dist_m(res.lon, res.lat, -118.26, 34.06 + sign * 620 * 0.9e-5) < 150.0


@pytest.fixture(scope="module")
def drive_gc() -> OfflineGeocoder:
    """The grid without W 37TH ST, plus a short W 37TH DR (another street) near W 1300."""
    rows = _grid_rows(skip={37})
    rows += [
        (n, "W", "37TH", "DR", "", "", "90007", *_grid_xy(n, 3720)) for n in (1319, 1371, 1390)
    ]
    return OfflineGeocoder(build_reference(pd.DataFrame(rows, columns=POINT_COLUMNS)))


@pytest.mark.parametrize(
    ("query", "house_level", "matched_prefix"),
    [
        # 37TH ST is not 37TH DR: located from 36TH and 38TH ST instead
        ("1046 W 37TH ST, 90007", True, "1046 W 37TH ST"),
        ("1350 W 37TH DR, 90007", True, "1350 W 37TH DR"),
        # no type given: the drive is the only 37TH known
        ("1350 W 37TH, 90007", True, "1350 W 37TH DR"),
    ],
)
def test_numbered_street_of_another_type_is_another_street(
    drive_gc: OfflineGeocoder, query: str, house_level: bool, matched_prefix: str
) -> None:
    res = drive_gc.lookup(query)
    assert res.house_level is house_level
    assert res.matched_address.startswith(matched_prefix)


@pytest.mark.parametrize(
    ("query", "matched_prefix"),
    [
        # a typo in a name whose last word reads as a type (CANYON, LAKE, HEIGHTS)
        ("7755 n larrel canyon, los angeles, ca 91605", "7755 N LAUREL CANYON BLVD"),
        ("601 N Silevr Lake 90026", "601 N SILVER LAKE BLVD"),
        ("1253 S CRESCETN HEIGHTS ste 200, Los Angeles, CA 90035", "1253 S CRESCENT HEIGHTS"),
        ("9460 N LAUREL CANYN Apt. 3, 91331", "9460 N LAUREL CANYON BLVD"),
        # a directional that is the name, and one that is not
        ("3558 west boulevard 90016", "3558 S WEST BLVD"),
        ("1216 w court #12 los angeles ca 90026", "1216 W COURT ST"),
        ("422 E G apt 4, Los Angeles, CA 90744", "422 E G ST"),
    ],
)
def test_typo_in_a_name_ending_in_a_type_word(
    la_gc: OfflineGeocoder, query: str, matched_prefix: str
) -> None:
    res = la_gc.lookup(query)
    assert res.house_level
    assert res.matched_address.startswith(matched_prefix)


def test_block_known_from_a_lone_number_in_it() -> None:
    """``1400 block of W Lomita``: one known number in that block locates the block."""
    rows = [(1412, "W", "LOMITA", "BLVD", "", "", "90710", -118.30, 33.80)]
    rows += [(n, "S", "VERMONT", "AVE", "", "", "90710", -118.29, 33.80 - n * 1e-5)
             for n in range(24000, 24800, 100)]  # fmt: skip
    gc = OfflineGeocoder(build_reference(pd.DataFrame(rows, columns=POINT_COLUMNS),
                                         place_names=("LOS ANGELES",)))
    res = gc.lookup("1400 block of w lomita los angeles ca 90710")
    assert res.precision is Precision.BLOCK
    assert res.matched_address == "1400 BLOCK OF W LOMITA BLVD, 90710"
    assert res.lon is not None and res.lat is not None
    assert dist_m(res.lon, res.lat, -118.30, 33.80) < 1.0
    # another block of the street is not located by it
    assert gc.lookup("1600 block of w lomita blvd 90710").precision is not Precision.BLOCK


PASADENA_PARQUET = LA_PARQUET.with_name("pasadena.parquet")


@pytest.fixture(scope="module")
def pasadena_gc() -> OfflineGeocoder:
    if not PASADENA_PARQUET.exists():
        pytest.skip("shipped Pasadena reference not built")
    return OfflineGeocoder.from_path(PASADENA_PARQUET)


@pytest.mark.parametrize(
    "query",
    [
        # most Pasadena points carry no ZIP, so the ZIP cannot vouch for the known address;
        # the exact address still beats an estimate on a stretch without a pre-direction
        "204 S Lake Ave, Pasadena, CA 91101",
        "204 S Lake Ave Unit B, Pasadena, Ca 91101",
        "246 lake ave apt. 3 91101",
    ],
)
def test_a_known_address_beats_an_estimate_elsewhere(
    pasadena_gc: OfflineGeocoder, query: str
) -> None:
    res = pasadena_gc.lookup(query)
    assert res.precision is Precision.POINT
    assert res.matched_address.split(",")[0] in ("204 S LAKE AVE", "246 S LAKE AVE")


def test_answers_do_not_depend_on_query_order() -> None:
    """The same query gets the same answer whatever was geocoded before it."""
    if not LA_PARQUET.exists():
        pytest.skip("shipped Los Angeles reference not built")
    ref = load_reference(LA_PARQUET)
    rows = pd.read_csv(DATA / "la_2017_91406_eval.csv", dtype=str)
    queries = list(zip(rows["Address"], rows["ZipCode"], strict=True))
    forward = OfflineGeocoder(ref)
    backward = OfflineGeocoder(ref)
    first = {q: forward.lookup(*q) for q in queries}
    second = {q: backward.lookup(*q) for q in reversed(queries)}
    assert all((first[q].lon, first[q].lat) == (second[q].lon, second[q].lat) for q in queries)


def test_the_reference_brings_its_citys_place_names(la_gc: OfflineGeocoder) -> None:
    """A comma-less place tail is stripped with the pack's names, which the reference keeps."""
    query = "16815 w vanowen st van nuys ca 91406"
    assert "VAN NUYS" in la_gc.reference.place_names
    assert la_gc.lookup(query).precision is Precision.POINT
    bare = dataclasses.replace(la_gc.reference, place_names=())
    assert OfflineGeocoder(bare).lookup(query).precision is not Precision.POINT
