"""City packs: the shipped Los Angeles and Pasadena packs, the loader's checks, the service."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dispatch.citypack import (
    CityPack,
    district_layer_target,
    list_city_packs,
    load_city_pack,
)
from dispatch.errors import CityPackError
from dispatch.services.districts import import_districts

ROOT = Path(__file__).parents[1]
BOUNDARIES = Path(__file__).parent / "data" / "boundaries"


# ------------------------------------------------------------------- the shipped packs


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


@pytest.fixture(scope="module")
def pasadena() -> CityPack:
    return load_city_pack("pasadena")


def test_list_city_packs() -> None:
    assert {"los_angeles", "pasadena"} <= set(list_city_packs())


def test_la_pack_basics(la: CityPack) -> None:
    assert la.display_name == "City of Los Angeles"
    assert str(la.timezone) == "America/Los_Angeles"
    assert la.has_districts
    assert la.district_ids == tuple(str(i) for i in range(1, 16))
    assert la.district_names["7"] == "7"  # the 2012 layer names districts by number
    assert set(la.depots) == {"EV", "WV", "NC", "SLA", "WLA", "HB"}
    assert la.routable_categories == ("bulky_items", "graffiti_removal", "illegal_dumping")
    assert la.demo_requests is not None and la.demo_requests.is_file()
    assert la.address_reference == (ROOT / "data" / "reference" / "los_angeles.parquet")
    assert load_city_pack("los_angeles") is la  # cached: a pure function of the files


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("Bulky Items", "bulky_items"),
        ("Graffiti Removal", "graffiti_removal"),
        ("Illegal Dumping Pickup", "illegal_dumping"),
        ("Metal/Household Appliances", "metal_household_appliances"),
        ("Electronic Waste", "electronic_waste"),
        ("Homeless Encampment", "homeless_encampment"),
        ("Dead Animal Removal", "dead_animal_removal"),
        ("Single Streetlight Issue", "single_streetlight"),
        ("Multiple Streetlight Issue", "multiple_streetlight"),
        ("Report Water Waste", "water_waste"),
        ("Other", "other"),
        ("  bulky   items ", "bulky_items"),  # case and spaces ignored
        ("bulky_items", "bulky_items"),  # a category code itself
        ("Pothole", None),
        ("", None),
        (None, None),
    ],
)
def test_la_service_codes(la: CityPack, code: str | None, category: str | None) -> None:
    got = la.category_for_service_code(code)
    assert (got.code if got else None) == category


def test_open311_codes_are_url_safe_stable_and_keep_the_city_codes_as_aliases(
        la: CityPack, tmp_path: Path) -> None:
    import re

    codes = [c.public_code for c in la.categories.values()]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", c) for c in codes)
    assert la.categories["metal_household_appliances"].public_code == (
        "metal_household_appliances")
    for cat in la.categories.values():
        assert la.category_for_service_code(cat.public_code) is cat
        assert la.category_for_open311_code(cat.public_code) is cat
        for alias in cat.service_codes:
            assert la.category_for_service_code(alias) is cat
            assert la.category_for_open311_code(alias) is None
    renamed = load_city_pack(_write(tmp_path, BASE.replace(
        'label = "Graffiti"', 'label = "Graffiti"\nopen311_code = "graffiti"')))
    graffiti = renamed.categories["graffiti_removal"]
    assert graffiti.public_code == "graffiti"
    assert renamed.category_for_service_code("graffiti") is graffiti


def test_every_2020_request_type_has_a_category(la: CityPack) -> None:
    assert la.demo_requests is not None
    types = pd.read_csv(la.demo_requests, usecols=["requesttype"])["requesttype"].unique()
    assert all(la.category_for_service_code(t) is not None for t in types)


def test_la_roster_covers_every_district(la: CityPack) -> None:
    for category in la.routable_categories:
        served = {d for c in la.crews if category in c.categories for d in c.districts}
        assert served == set(la.district_ids), category
    orgs = {c.organisation for c in la.crews}
    assert {"EV", "WV", "NC", "SLA", "WLA", "HB", "GAPBH", "SGB", "PGS", "HBT", "NEGB"} <= orgs
    assert len({c.name for c in la.crews}) == len(la.crews)
    assert all(c.shift_start == time(6, 0) for c in la.crews if "bulky_items" in c.categories)


def test_la_depots_inside_city_and_documented(la: CityPack) -> None:
    lon = np.array([d.lon for d in la.depots.values()])
    lat = np.array([d.lat for d in la.depots.values()])
    assert la.within_city(lon, lat).all()
    assert all(la.depot_positions[c].method for c in la.depots)
    assert all(la.depot_positions[c].uncertainty_m for c in la.depots)
    # The district each position note states is the one the yard falls in. (A yard need
    # not lie in a district it serves: SLA sits in CD 14 but serves South LA.)
    got = dict(zip(la.depots, la.assign_districts(lon, lat), strict=True))
    for code, pos in la.depot_positions.items():
        stated = re.search(r"In council district (\d+)", pos.method.replace("\n", " "))
        assert stated is not None and stated.group(1) == got[code], code


def test_la_within_city_tolerance(la: CityPack) -> None:
    # Pasadena City Hall is outside Los Angeles; a NaN point is never inside.
    lon, lat = [-118.14367, np.nan, -118.3], [34.14764, 34.05, 34.05]
    assert la.within_city(lon, lat).tolist() == [False, False, True]


def test_pasadena_pack(pasadena: CityPack) -> None:
    assert not pasadena.has_districts
    assert pasadena.districts is None
    assert "whole city is one service area" in pasadena.districts_note
    assert "dispatch districts load" in pasadena.districts_note
    assert all(c.districts == () for c in pasadena.crews)
    assert {cat for c in pasadena.crews for cat in c.categories} == {
        "bulky_items",
        "graffiti_removal",
        "illegal_dumping",
    }
    assert pasadena.categories["illegal_dumping"].label == "Abandoned trash items"
    assert pasadena.categories["graffiti_removal"].sla_h == 24
    hall = pasadena.depots["CITYHALL"]
    facilities = pd.read_csv(ROOT / "data" / "addresses" / "pasadena" / "facilities.csv")
    row = facilities[facilities["facility"] == "Pasadena City Hall"].iloc[0]
    assert (hall.lon, hall.lat) == (row["lon"], row["lat"])  # (lat, lon) -> (lon, lat)
    assert pasadena.assign_districts([hall.lon], [hall.lat]).tolist() == [None]
    assert pasadena.demo_requests is None


# ------------------------------------------------------------------- the loader's checks

BASE = """
schema_version = 1
name = "testville"
display_name = "Testville"
timezone = "America/Los_Angeles"

[paths]
boundary = "{boundaries}/city_square.geojson"

[districts]
file = "{boundaries}/two_squares.geojson"
id_field = "district"
name_field = "name"

[categories.bulky_items]
label = "Bulky items"
service_codes = ["Bulky Items"]
routable = true
service_time_s = 300
sla_h = 72
colour = "#1f77b4"

[categories.graffiti_removal]
label = "Graffiti"
service_codes = ["Graffiti Removal"]
routable = true
service_time_s = 900
sla_h = 24

[[depots]]
code = "YARD"
name = "Yard"
address = "1 Main St"
lon = -118.295
lat = 34.005

[[crews]]
name = "bulky"
count = 2
categories = ["bulky_items"]
depot = "YARD"
districts = ["1", "2"]
shift_start = "06:00"
shift_end = "14:30"
capacity = 40
"""


def _write(tmp_path: Path, text: str, name: str = "testville") -> Path:
    folder = tmp_path / "cities"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text.replace("{boundaries}", BOUNDARIES.as_posix()))
    return path


def test_baseline_pack_loads(tmp_path: Path) -> None:
    pack = load_city_pack(_write(tmp_path, BASE))
    assert [c.name for c in pack.crews] == ["bulky-1", "bulky-2"]
    assert pack.crews[0].districts == ("1", "2")
    assert pack.assign_districts([-118.29], [34.005]).tolist() == ["1"]
    assert list_city_packs(tmp_path / "cities") == ["testville"]


def test_cache_follows_file_changes(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE)
    first = load_city_pack(path)
    assert load_city_pack(path) is first
    path.write_text(
        path.read_text().replace('display_name = "Testville"', 'display_name = "Testville 2"')
    )
    os.utime(path, ns=(1, 1))  # a new stamp even within the file system's time resolution
    assert load_city_pack(path).display_name == "Testville 2"


def test_unknown_city_lists_available() -> None:
    with pytest.raises(CityPackError, match=r"available packs are .*los_angeles"):
        load_city_pack("atlantis")


CREW_EXTRA = """
[[crews]]
name = "extra"
categories = ["graffiti_removal"]
depot = "YARD"
districts = ["1"]
shift_start = "07:00"
shift_end = "15:30"
capacity = 10
"""

# (id, old text, new text, field named in the message, words in the message)
BAD_PACKS = [
    (
        "unknown top field",
        'timezone = "America/Los_Angeles"',
        'timezone = "America/Los_Angeles"\ncolour_scheme = "dark"',
        "colour_scheme",
        "unknown field",
    ),
    (
        "unknown crew field",
        "capacity = 40",
        "capacity = 40\nvehicle = 'truck'",
        "crews[0].vehicle",
        "unknown field",
    ),
    (
        "unknown category field",
        "sla_h = 24",
        "sla_h = 24\npriority = 1",
        "categories.graffiti_removal.priority",
        "unknown field",
    ),
    (
        "missing boundary file",
        "city_square.geojson",
        "nowhere.geojson",
        "paths.boundary",
        "does not exist",
    ),
    (
        "missing districts file",
        "two_squares.geojson",
        "nowhere.geojson",
        "districts.file",
        "does not exist",
    ),
    (
        "invalid polygon",
        "two_squares.geojson",
        "bowtie.geojson",
        "districts.file",
        "invalid geometry",
    ),
    (
        "overlapping polygons",
        "two_squares.geojson",
        "overlapping_pair.geojson",
        "districts.file",
        "overlap",
    ),
    (
        "duplicate district ids",
        "two_squares.geojson",
        "duplicate_ids.geojson",
        "districts.file",
        "duplicate ids",
    ),
    (
        "projected CRS",
        "two_squares.geojson",
        "two_squares_epsg3857.geojson",
        "districts.file",
        "EPSG:3857",
    ),
    (
        "unknown id field",
        'id_field = "district"',
        'id_field = "cd"',
        "districts.file",
        "'cd' is not a field",
    ),
    ("depot outside city", "lon = -118.295", "lon = -118.1", "depots[0].lon", "outside the city"),
    (
        "depot lat/lon swapped",
        "lon = -118.295\nlat = 34.005",
        "lon = 34.005\nlat = -118.295",
        "depots[0].lon",
        "not a position",
    ),
    (
        "duplicate depot",
        "[[crews]]",
        '[[depots]]\ncode = "YARD"\nname = "Y2"\nlon = -118.29\nlat = 34.0\n\n[[crews]]',
        "depots[1].code",
        "duplicate depot code",
    ),
    ("crew unknown depot", 'depot = "YARD"', 'depot = "BARN"', "crews[0].depot", "'BARN'"),
    (
        "crew unknown category",
        'categories = ["bulky_items"]',
        'categories = ["potholes"]',
        "crews[0].categories",
        "'potholes'",
    ),
    (
        "crew unknown district",
        'districts = ["1", "2"]',
        'districts = ["1", "7"]',
        "crews[0].districts",
        "unknown district '7'",
    ),
    (
        "duplicate crew name",
        "capacity = 40",
        "capacity = 40\n" + CREW_EXTRA.replace('"extra"', '"bulky-2"'),
        "crews[1].name",
        "duplicate crew name 'bulky-2'",
    ),
    ("count zero", "count = 2", "count = 0", "crews[0].count", "positive"),
    (
        "shift end before start",
        'shift_end = "14:30"',
        'shift_end = "05:00"',
        "crews[0]",
        "not after",
    ),
    (
        "bad shift time",
        'shift_start = "06:00"',
        'shift_start = "6am"',
        "crews[0].shift_start",
        "'6am'",
    ),
    ("bad time zone", '"America/Los_Angeles"', '"Pacific Time"', "timezone", "IANA"),
    ("bad colour", '"#1f77b4"', '"blue"', "categories.bulky_items.colour", "#rrggbb"),
    ("negative sla", "sla_h = 72", "sla_h = -1", "categories.bulky_items", "sla_h"),
    (
        "wrong type",
        "service_time_s = 300",
        'service_time_s = "5 min"',
        "categories.bulky_items.service_time_s",
        "an integer",
    ),
    (
        "duplicate service code",
        '["Graffiti Removal"]',
        '["Bulky Items"]',
        "categories.graffiti_removal.service_codes",
        "also in category 'bulky_items'",
    ),
    (
        "open311 code not url-safe",
        'label = "Graffiti"',
        'label = "Graffiti"\nopen311_code = "Graffiti/Tags"',
        "categories.graffiti_removal",
        "must be 1-64 characters of a-z",
    ),
    (
        "open311 code taken by another category",
        'label = "Graffiti"',
        'label = "Graffiti"\nopen311_code = "bulky_items"',
        "categories.graffiti_removal.open311_code",
        "also used by category 'bulky_items'",
    ),
    (
        "open311 code is another category's own code",
        'label = "Graffiti"',
        'label = "Graffiti"\nopen311_code = "bulky items"',
        "categories.graffiti_removal",
        "must be 1-64 characters",
    ),
    (
        "open311 code is another category's alias",
        'service_codes = ["Graffiti Removal"]',
        'service_codes = ["Graffiti Removal", "bulky_items"]',
        "categories.bulky_items.open311_code",
        "also used by category 'graffiti_removal'",
    ),
    ("missing display name", 'display_name = "Testville"', "", "display_name", "required"),
    ("name differs from file", 'name = "testville"', 'name = "otherville"', "name", "differs"),
    ("districts without layer", "[districts]", "[unused]", "unused", "unknown field"),
]


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_PACKS],
)
def test_bad_pack_names_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, words: str
) -> None:
    assert old in BASE
    path = _write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(CityPackError) as err:
        load_city_pack(path)
    msg = str(err.value)
    assert str(path) in msg
    assert field in msg
    assert words in msg


def test_crew_districts_need_a_district_layer(tmp_path: Path) -> None:
    text = BASE.split("[districts]")[0] + BASE.split('name_field = "name"')[1]
    path = _write(tmp_path, text)
    with pytest.raises(CityPackError, match=r"crews\[0\]\.districts.*no \[districts\]"):
        load_city_pack(path)
    pack = load_city_pack(
        _write(tmp_path, text.replace('districts = ["1", "2"]', "districts = []"))
    )
    assert not pack.has_districts
    assert "one service area" in pack.districts_note


def test_depot_outside_city_allowed_when_stated(tmp_path: Path) -> None:
    text = BASE.replace("lon = -118.295", "lon = -118.1\noutside_city_ok = true")
    pack = load_city_pack(_write(tmp_path, text))
    assert pack.depot_positions["YARD"].outside_city_ok


# ------------------------------------------------ dispatch/services/districts.py (offline)


class _Layer(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/geo+json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def layer_url() -> Iterator[str]:
    doc = json.loads((BOUNDARIES / "arcgis_districts.geojson").read_text())
    doc["features"] = doc["features"][:2]  # the two squares of Testville
    handler = type("H", (_Layer,), {"body": json.dumps(doc).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/x/FeatureServer/0"
    finally:
        server.shutdown()
        server.server_close()


def _no_districts_pack(tmp_path: Path) -> Path:
    text = BASE.split("[districts]")[0] + BASE.split('name_field = "name"')[1]
    return _write(tmp_path, text.replace('districts = ["1", "2"]', "districts = []"))


def test_service_writes_default_target_without_enabling(tmp_path: Path, layer_url: str) -> None:
    pack_path = _no_districts_pack(tmp_path)
    summary = import_districts(
        layer_url, city=pack_path, id_field="DISTRICT", name_field="MEMBER", timeout_s=5
    )
    target = tmp_path / "boundaries" / "testville" / "council_districts.geojson"
    assert summary.path == target and target.is_file()
    assert summary.ids == ("1", "2")
    assert summary.share_inside_city == pytest.approx(1.0)
    assert not summary.enabled and "[districts]" in summary.line()
    assert summary.pack_relative == "../boundaries/testville/council_districts.geojson"
    assert district_layer_target(pack_path) == (target, False)
    assert not load_city_pack(pack_path).has_districts  # nothing else changed


def test_service_enables_when_pack_names_file(tmp_path: Path, layer_url: str) -> None:
    pack_path = _no_districts_pack(tmp_path)
    text = pack_path.read_text().replace(
        "[categories.bulky_items]",
        '[districts]\nfile = "../boundaries/testville/council_districts.geojson"\n'
        'id_field = "district"\nname_field = "name"\n\n[categories.bulky_items]',
    )
    pack_path.write_text(text)
    with pytest.raises(CityPackError, match="does not exist"):
        load_city_pack(pack_path)  # named but not loaded yet
    summary = import_districts(
        layer_url, city=pack_path, id_field="DISTRICT", name_field="MEMBER", timeout_s=5
    )
    assert summary.enabled
    pack = load_city_pack(pack_path)
    assert pack.district_ids == ("1", "2")
    assert pack.districts is not None
    assert pack.districts["name"].tolist() == ["Member A", "Member B"]


def test_service_refuses_another_citys_layer(tmp_path: Path) -> None:
    pack_path = _no_districts_pack(tmp_path)
    la_layer = ROOT / "data" / "boundaries" / "los_angeles" / "council_districts.geojson"
    with pytest.raises(CityPackError, match="inside testville's city limit"):
        import_districts(la_layer, city=pack_path, id_field="district", name_field="name")
    assert not (tmp_path / "boundaries").exists()


def test_service_district_target_for_pasadena() -> None:
    target, named = district_layer_target("pasadena")
    assert target == ROOT / "data" / "boundaries" / "pasadena" / "council_districts.geojson"
    assert not named


# ------------------------------------------------- reference sources, channels, sweeps

REFERENCE = Path(__file__).parent / "data" / "reference"
REF_EXTRA = """
[reference]
layouts = "{layouts}"
extent = [-118.5, 33.9, -118.2, 34.1]
holdout = ["{heldout}"]

[[reference.sources]]
name = "county"
label = "County points"
file = "{cams}"
layout = "la_county_cams"
authoritative = true
attribution = "County (test)"

[[reference.sources]]
name = "requests"
file = "{requests}"
columns = { address = "address", zip = "zipcode", lon = "longitude", lat = "latitude" }
attribution = "City (test)"

[channels]
"call" = "phone"
"""


def _with_reference(text: str) -> str:
    return (BASE + text).replace("{layouts}", (ROOT / "data/reference/layouts.toml").as_posix()) \
        .replace("{cams}", (REFERENCE / "cams_club_house_harbor.csv").as_posix()) \
        .replace("{requests}", (REFERENCE / "myla311_venice_2020_sample.csv").as_posix()) \
        .replace("{heldout}", (REFERENCE / "openaddresses_club_house.csv").as_posix())


def test_the_la_pack_names_its_sweeps_channels_and_sources(la: CityPack) -> None:
    assert la.sweep_categories == ("graffiti_removal", "illegal_dumping")
    assert la.channels["call"].value == "phone" and la.channels["self service"].value == "web"
    assert la.reference is not None and [s.name for s in la.reference.sources] == [
        "cams", "requests"]  # fmt: skip
    assert {"VAN NUYS", "LOS ANGELES", "VENICE"} <= set(la.reference.place_names)
    label = la.reference_source_label("cams")
    assert "LA County address points" in label and "osmlab/labuildings" in label
    assert la.reference_source_label("somewhere") == "somewhere"


def test_a_pack_with_reference_sources_loads(tmp_path: Path) -> None:
    pack = load_city_pack(_write(tmp_path, _with_reference(REF_EXTRA)))
    assert pack.reference is not None
    county, requests = pack.reference.sources
    assert county.authoritative and not requests.authoritative
    assert county.layout.columns.pretype == "PreType"
    assert requests.layout.columns.address == "address"
    assert pack.reference.extent == (-118.5, 33.9, -118.2, 34.1)
    assert pack.channels == {"call": pack.channels["call"]}
    assert pack.sweep_categories == ()  # BASE marks no category for sweeps


BAD_REFERENCES = [
    ("unknown source field", 'label = "County points"', 'label = "County points"\nrank = 1',
     "reference.sources[0].rank", "unknown field"),
    ("no attribution", 'attribution = "County (test)"', "", "reference.sources[0].attribution",
     "required"),
    ("unknown layout", '"la_county_cams"', '"la_county"', "reference.sources[0].layout",
     "expected one of ['la_county_cams', 'myla311_requests', 'openaddresses']"),
    ("layout and columns", 'layout = "la_county_cams"',
     'layout = "la_county_cams"\ncolumns = { lon = "lon", lat = "lat", name = "n" }',
     "reference.sources[0]", "either layout"),
    ("bad inline columns", 'lat = "latitude" }', 'lat = "latitude", zipp = "z" }',
     "reference.sources[1]", "unknown key 'zipp'"),
    ("bad extent", "extent = [-118.5, 33.9, -118.2, 34.1]", "extent = [-118.2, 33.9, -118.5, 34.1]",
     "reference.extent", "min < max"),
    ("held-out source", '"{requests}"', '"{heldout}"', "reference.sources[1].file",
     "held out for evaluation"),
    ("duplicate source", 'name = "requests"', 'name = "county"', "reference.sources[1].name",
     "duplicate source name"),
    ("missing source file", '"{cams}"', '"no/such.csv"', "reference.sources[0].file",
     "does not exist"),
    ("bad channel", '"call" = "phone"', '"call" = "telephone"', "channels.call",
     "expected one of"),
    ("no sources", "[[reference.sources]]", "[[reference.elsewhere]]", "reference.elsewhere",
     "unknown field"),
    ("empty place name", "extent = [", 'place_names = ["VAN NUYS", " "]\nextent = [',
     "reference.place_names", "expected non-empty place names"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_REFERENCES],
)
def test_bad_reference_table_names_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, words: str
) -> None:
    assert old in REF_EXTRA
    path = _write(tmp_path, _with_reference(REF_EXTRA.replace(old, new, 1)))
    with pytest.raises(CityPackError) as err:
        load_city_pack(path)
    msg = str(err.value)
    assert str(path) in msg and field in msg and words in msg, msg


def test_sweep_flag_must_be_true_or_false(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.replace("sla_h = 24", 'sla_h = 24\nsweep = "yes"', 1))
    with pytest.raises(CityPackError, match=r"categories\.graffiti_removal\.sweep"):
        load_city_pack(path)


# ------------------------------------------------------------------------- [travel]


def test_la_pack_chooses_the_calibrated_model(la: CityPack) -> None:
    from geo.travel import BandedTravel, NetworkTravel

    model = la.travel_model()
    assert isinstance(model, BandedTravel) and model.approach_s == la.travel.approach_s
    assert la.travel.network_nodes is not None and la.travel.network_nodes.is_file()
    slack = la.slack()
    assert slack is not None and slack.reserve_s(8 * 3600) >= 20 * 60
    net = la.travel.with_model("network").build()
    assert isinstance(net, NetworkTravel) and net.fallback == model


def test_pack_without_travel_keeps_todays_model(tmp_path: Path) -> None:
    from geo.travel import HaversineTravel

    pack = load_city_pack(_write(tmp_path, BASE))
    assert pack.travel_model() == HaversineTravel()
    assert pack.slack() is not None


TRAVEL = """
[travel]
model = "banded"
band_edges_m = [1000, 5000]
band_circuity = [1.5, 1.4, 1.3]
band_pace_s_per_km = [200, 90, 50]
approach_s = 45
reserve_share = 0
reserve_min_minutes = 0
"""


def test_travel_table_is_read(tmp_path: Path) -> None:
    from geo.travel import BandedTravel

    pack = load_city_pack(_write(tmp_path, BASE + TRAVEL))
    assert pack.travel_model() == BandedTravel((1000.0, 5000.0), (1.5, 1.4, 1.3),
                                               (200.0, 90.0, 50.0), 45.0)
    assert pack.slack() is None


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ('model = "banded"', 'model = "teleport"', "expected one of"),
        ("approach_s = 45", "approach_s = -5", "expected a number >= 0"),
        ("band_circuity = [1.5, 1.4, 1.3]", "band_circuity = [1.5]", "circuity"),
        ("band_circuity = [1.5, 1.4, 1.3]", 'band_circuity = ["a"]', "array of numbers"),
        ("approach_s = 45", "approach = 45", "unknown field"),
        ('model = "banded"', 'model = "network"\nnetwork_nodes = "nowhere.csv"', "nowhere.csv"),
    ],
)
def test_bad_travel_table_names_the_field(
    tmp_path: Path, old: str, new: str, words: str
) -> None:
    path = _write(tmp_path, BASE + TRAVEL.replace(old, new, 1))
    with pytest.raises(CityPackError) as err:
        load_city_pack(path)
    assert "travel" in str(err.value) and words in str(err.value)


@pytest.mark.parametrize(
    ("name", "attribution", "shown", "hidden"),
    [("cams", False, ["LA County address points"], ["osmlab/labuildings", "cams"]),
     ("cams+requests", False, ["LA County address points", " + ", "MyLA311 requests"],
      ["cams+requests"]),
     ("cams+requests", True, ["osmlab/labuildings", "hackforla/311-data"], []),
     ("cams+elsewhere", False, ["LA County address points", " + elsewhere"], [])],
)
def test_reference_sources_are_named_by_their_labels(
    la: CityPack, name: str, attribution: bool, shown: list[str], hidden: list[str]
) -> None:
    label = la.reference_source_label(name, attribution=attribution)
    assert all(s in label for s in shown), label
    assert not any(h in label for h in hidden), label
