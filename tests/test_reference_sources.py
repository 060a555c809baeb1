"""A reference from several sources in order of authority (geo.reference_sources)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.citypack import load_city_pack
from dispatch.services.geocoding import build_reference as build_pack_reference
from geo.address import PlaceNames
from geo.errors import AddressReferenceError
from geo.geocoding import Method, Precision
from geo.geocoding.offline import OfflineGeocoder
from geo.reference import POINT_COLUMNS, load_reference
from geo.reference_sources import (
    ReferenceSource,
    build_from_sources,
    harmonise_predirs,
    layout_from_table,
    read_layouts,
    read_source,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "reference"
LAYOUTS = read_layouts(ROOT / "data" / "reference" / "layouts.toml")
CAMS = ReferenceSource("cams", DATA / "cams_club_house_harbor.csv",
                       LAYOUTS["la_county_cams"], "LA County CAMS (test extract)",
                       authoritative=True)  # fmt: skip
REQUESTS = ReferenceSource("requests", DATA / "myla311_venice_2020_sample.csv",
                           LAYOUTS["myla311_requests"],
                           "City of Los Angeles (MyLA311)")  # fmt: skip
OPENADDRESSES = ReferenceSource("oa", DATA / "openaddresses_club_house.csv",
                                LAYOUTS["openaddresses"], "LA County CAMS, OpenAddresses layout",
                                authoritative=True)  # fmt: skip
EVALUATION = ROOT / "data" / "evaluation" / "los_angeles" / "myla311_2017-12-27_to_31.csv"


@pytest.fixture(scope="module")
def merged() -> tuple[object, object]:
    return build_from_sources([CAMS, REQUESTS], city="los_angeles")


def test_shipped_layouts_are_the_three_of_the_issue() -> None:
    assert set(LAYOUTS) == {"openaddresses", "la_county_cams", "myla311_requests"}
    oa = LAYOUTS["openaddresses"]
    assert (oa.columns.lon, oa.columns.lat, oa.columns.street, oa.columns.zip) == (
        "LON", "LAT", "STREET", "POSTCODE")  # fmt: skip
    assert LAYOUTS["myla311_requests"].intersections
    assert not LAYOUTS["la_county_cams"].intersections


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"lon": "x", "lat": "y", "nmae": "street"}, "unknown key 'nmae'"),
        ({"lat": "y", "name": "street"}, "no 'lon' column"),
        ({"lon": "x", "lat": "y"}, "names no address, street or name column"),
        ({"lon": "x", "lat": 3, "name": "s"}, r"lat: got 3; expected a column name"),
        ({"lon": "x", "lat": "y", "name": "s", "intersections": "yes"}, "expected true/false"),
    ],
)
def test_a_bad_layout_says_what_came_in(table: dict[str, object], message: str) -> None:
    with pytest.raises(AddressReferenceError, match=message):
        layout_from_table(table, "layouts.toml [broken]")


def test_county_layout_reads_spelled_out_parts_and_pretypes() -> None:
    pts, inter, rows = read_source(CAMS)
    assert rows == 52 and inter.empty
    assert set(pts["street_type"]) == {"AVE", "CT", "ST", ""}
    assert {"CLUB HOUSE", "HARBOR", "ROUTE 187", "HIGHWAY 187"} <= set(pts["name"])
    assert set(pts["predir"]) == {"", "E"}  # "EAST" canonicalised
    assert (pts["source"] == "cams").all() and (pts["source_id"] != "").all()


def test_openaddresses_layout_reads_the_whole_street_column() -> None:
    pts, _, rows = read_source(OPENADDRESSES)
    assert len(pts) == rows == 32
    assert set(pts["name"]) == {"CLUB HOUSE"} and set(pts["street_type"]) == {"AVE", "CT"}
    assert set(pts["zip"]) == {"90291"}


def test_request_layout_reads_free_text_and_crossings() -> None:
    pts, inter, rows = read_source(REQUESTS)
    assert rows == 12 and len(inter) == 2
    assert set(pts["predir"]) == {"E", "S"}
    assert ((inter["name_a"] == "29TH") & (inter["name_b"] == "SPEEDWAY")).any()


def test_an_address_in_both_keeps_the_authoritative_position(merged) -> None:  # type: ignore[no-untyped-def]
    ref, report = merged
    pts = ref.points
    club47 = pts.loc[(pts["number"] == 47) & (pts["name"] == "CLUB HOUSE")]
    assert len(club47) == 1
    row = club47.iloc[0]
    assert row["source"] == "cams" and row["predir"] == "E"  # the requests' pre-direction
    assert row["lon"] == pytest.approx(-118.4743057)
    counts = {c.name: c for c in report.counts}
    assert counts["requests"].superseded == 2  # 47 E CLUB HOUSE, 690 E HARBOR
    assert counts["requests"].covered == 1  # 100 E CLUB HOUSE, between the County's 47 and 101
    assert counts["cams"].superseded == 0
    assert counts["requests"].kept == len(pts.loc[pts["source"] == "requests"])


def test_conflicts_name_both_sources_and_the_distance(merged) -> None:  # type: ignore[no-untyped-def]
    _, report = merged
    dup = {c.address: c for c in report.conflicts if c.kind == "duplicate"}
    assert set(dup) == {"47 E CLUB HOUSE AVE, 90291", "690 E HARBOR ST, 90291"}
    harbor = dup["690 E HARBOR ST, 90291"]
    assert (harbor.source, harbor.other) == ("requests", "cams")
    assert harbor.distance_m == pytest.approx(72, abs=2)
    assert all(c.distance_m > 30 for c in dup.values())
    text = "\n".join(report.lines())
    assert "2 addresses more than 30 m apart" in text and "690 E HARBOR ST" in text


def test_the_order_of_sources_is_their_authority() -> None:
    ref, report = build_from_sources([REQUESTS, CAMS], city="los_angeles")
    row = ref.points.loc[(ref.points["number"] == 690) & (ref.points["name"] == "HARBOR")].iloc[0]
    assert row["source"] == "requests"
    assert {c.name: c.superseded for c in report.counts}["cams"] >= 2


@pytest.mark.parametrize(("coverage_m", "covered"), [(200.0, 1), (0.0, 0)])
def test_derived_points_give_way_where_the_authoritative_layer_covers_their_street(
    tmp_path: Path, coverage_m: float, covered: int
) -> None:
    path = tmp_path / "requests.csv"
    path.write_text("address,zipcode,latitude,longitude\n"
                    '"45 E CLUB HOUSE AVE, 90291",90291,33.98995,-118.47435\n'
                    '"1200 S PACIFIC AVE, 90291",90291,33.9895,-118.4735\n')  # fmt: skip
    derived = dataclasses.replace(REQUESTS, path=path)
    ref, report = build_from_sources([CAMS, derived], city="los_angeles", coverage_m=coverage_m)
    kept = set(zip(*(ref.points.loc[ref.points["source"] == "requests", c]
                     for c in ("number", "name")), strict=True))  # fmt: skip
    assert (1200, "PACIFIC") in kept  # the County extract does not cover Pacific Ave
    assert ((45, "CLUB HOUSE") in kept) is (covered == 0)
    assert {c.name: c.covered for c in report.counts}["requests"] == covered


def test_an_exact_authoritative_match_is_a_point_naming_its_source(merged) -> None:  # type: ignore[no-untyped-def]
    ref, _ = merged
    gc = OfflineGeocoder(ref)
    res = gc.lookup("690 E HARBOR ST, 90291")
    assert (res.precision, res.method, res.source) == (Precision.POINT, Method.EXACT, "cams")
    between = gc.lookup("43 E CLUB HOUSE AVE, 90291")
    assert between.precision is Precision.INTERPOLATED and between.source == "cams"
    elsewhere = gc.lookup("1200 S PACIFIC AVE, 90291")
    assert elsewhere.house_level and elsewhere.source == "requests"


def test_the_reference_keeps_sources_and_attributions(merged, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ref, _ = merged
    back = load_reference(ref.save(tmp_path / "ref.parquet"))
    assert [s.name for s in back.sources] == ["cams", "requests"]
    assert back.source("cams") is not None and back.source("cams").authoritative  # type: ignore[union-attr]
    assert back.sources[0].attribution == "LA County CAMS (test extract)"
    pd.testing.assert_series_equal(back.points["source"], ref.points["source"])


def test_the_evaluation_file_never_feeds_a_reference(tmp_path: Path) -> None:
    sneaky = dataclasses.replace(REQUESTS, path=EVALUATION)
    with pytest.raises(AddressReferenceError, match="evaluation only"):
        build_from_sources([CAMS, sneaky], city="los_angeles", holdout=[EVALUATION])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": ""}, "expected a short name"),
        ({"name": "a+b"}, "without '\\+'"),
        ({"attribution": " "}, "has no attribution"),
    ],
)
def test_a_source_must_be_named_and_attributed(change: dict[str, str], message: str) -> None:
    with pytest.raises(AddressReferenceError, match=message):
        dataclasses.replace(REQUESTS, **change)


def test_two_sources_of_one_name_are_refused() -> None:
    with pytest.raises(AddressReferenceError, match="two reference sources are named"):
        build_from_sources([CAMS, dataclasses.replace(REQUESTS, name="cams")], city="x")


def test_places_keep_the_city_only(tmp_path: Path) -> None:
    path = tmp_path / "places.csv"
    path.write_text("address,lon,lat\n"
                    "10 Main St Pasadena,-118.14,34.15\n"
                    "20 Main St South Pasadena,-118.15,34.11\n"
                    '"25 Main St, Altadena",-118.13,34.19\n'
                    "30 Main St,-118.14,34.151\n")  # fmt: skip
    layout = layout_from_table({"address": "address", "lon": "lon", "lat": "lat"}, "t")
    src = ReferenceSource("places", path, layout, "test", places=("PASADENA",))
    known = PlaceNames(("Pasadena", "South Pasadena"))  # the city's place names
    pts, _, rows = read_source(src, places=known)
    assert rows == 4 and sorted(pts["number"]) == [10, 30]
    # without place names only the comma-separated place is seen
    pts, _, _ = read_source(src)
    assert sorted(pts["number"]) == [10, 20, 30]


def test_pasadena_outlier_is_reported() -> None:
    """The OpenStreetMap point of 465 S Arroyo Pkwy lies 7 km from the rest of its street."""
    pack = load_city_pack("pasadena")
    assert pack.reference is not None
    _, report = build_from_sources(pack.reference.sources, city="pasadena",
                                   extent=pack.reference.extent)  # fmt: skip
    far = [c for c in report.conflicts if c.kind == "outlier"]
    assert [c.address for c in far] == ["465 S ARROYO PKWY"]
    assert far[0].source == "osm_places" and far[0].distance_m > 6000


def test_build_reference_command_reports_sources_and_writes_conflicts(tmp_path: Path) -> None:
    pack = load_city_pack("pasadena")
    lines = build_pack_reference(pack, tmp_path / "p.parquet", conflicts_path=tmp_path / "c.csv")
    text = "\n".join(lines)
    for name in ("parcels", "trees", "facilities", "osm_places"):
        assert f"  {name}" in text
    assert "1 points far from their street" in text
    conflicts = pd.read_csv(tmp_path / "c.csv")
    assert list(conflicts["address"]) == ["465 S ARROYO PKWY"]
    assert load_reference(tmp_path / "p.parquet").city == "pasadena"


def test_the_la_pack_ships_the_county_layer_first() -> None:
    pack = load_city_pack("los_angeles")
    assert pack.reference is not None
    first, second = pack.reference.sources
    assert (first.name, first.authoritative, second.name, second.authoritative) == (
        "cams", True, "requests", False)  # fmt: skip
    assert "CAMS" in first.attribution and "MyLA311" in second.attribution
    assert EVALUATION.resolve() in pack.reference.holdout
    assert all("evaluation" not in s.path.parts for s in pack.reference.sources)


# ---------------------------------------------------------------- invariants
streets = st.sampled_from(["MAIN", "OAK", "ELM"])
predirs = st.sampled_from(["", "", "N", "E"])
zips = st.sampled_from(["", "90001", "90002"])
point_rows = st.lists(
    st.tuples(st.integers(1, 999), predirs, streets, st.sampled_from(["ST", "AVE"]), zips),
    min_size=1, max_size=40,
)  # fmt: skip


def _frame(rows: list[tuple[int, str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(n, d, s, t, "", "", z, -118.0 - n * 1e-5, 34.0) for n, d, s, t, z in rows],
        columns=POINT_COLUMNS,
    )


@settings(max_examples=80, deadline=None)
@given(point_rows)
def test_harmonising_fills_only_missing_predirs_and_is_idempotent(
    rows: list[tuple[int, str, str, str, str]],
) -> None:
    before = _frame(rows)
    once = harmonise_predirs(before)
    had = before["predir"] != ""
    assert (once.loc[had, "predir"] == before.loc[had, "predir"]).all()
    pd.testing.assert_frame_equal(harmonise_predirs(once), once)
    filled = ~had & (once["predir"] != "")
    for i in np.flatnonzero(filled.to_numpy()):
        r = once.iloc[i]
        same = before.loc[(before["name"] == r["name"])
                          & (before["street_type"] == r["street_type"])
                          & (before["zip"] == r["zip"]) & (before["predir"] != ""), "predir"]
        assert set(same) == {r["predir"]}


@settings(max_examples=25, deadline=None)
@given(first=point_rows, second=point_rows)
def test_every_address_is_kept_once_and_every_point_is_accounted_for(
    first: list[tuple[int, str, str, str, str]], second: list[tuple[int, str, str, str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("src")
    layout = layout_from_table(
        {"number": "number", "predir": "predir", "name": "name", "street_type": "street_type",
         "zip": "zip", "lon": "lon", "lat": "lat"}, "t")  # fmt: skip
    sources = []
    for k, rows in enumerate((first, second)):
        path = folder / f"s{k}.csv"
        _frame(rows).to_csv(path, index=False)
        sources.append(ReferenceSource(f"s{k}", path, layout, "test", authoritative=k == 0))
    ref, report = build_from_sources(sources, city="t")
    key = ["number", "predir", "name", "street_type", "postdir", "zip"]
    assert not ref.points.duplicated(key).any()
    for c in report.counts:
        assert c.points == c.superseded + c.covered + c.kept
    assert report.counts[0].superseded == report.counts[0].covered == 0
    assert all(c.distance_m > report.conflict_m for c in report.conflicts if c.kind == "duplicate")
