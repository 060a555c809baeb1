"""Services behind the supervisor pages: intake geocoding, upload previews, picking, triage."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Connection

from dispatch.auth import Principal, Role
from dispatch.citypack import CityPack, load_city_pack
from dispatch.errors import DispatchError, ImportFormatError, NotFoundError
from dispatch.importers.generic_csv import ColumnMapping
from dispatch.model import is_routable
from dispatch.services import intake
from dispatch.services.geocoding import city_geocoder
from dispatch.services.imports import import_requests
from dispatch.services.intake import (
    geocode_address,
    guess_mapping,
    nearest_request,
    preview_upload,
    reverse_geocode,
    safe_upload_name,
    save_upload,
    upload_format,
)
from dispatch.services.requests import IntakeForm, cancel, create_request
from dispatch.services.triage import TriageFilter, events_frame, request_pk, triage_frame
from dispatch.store import UnitOfWork
from geo.geocoding import Candidate, GeocodeResult, Precision

DATA = Path(__file__).parent / "data" / "import"


@pytest.fixture(scope="module")
def city() -> CityPack:
    return load_city_pack("los_angeles")


# --------------------------------------------------------------------------- geocoding


class FakeGeocoder:
    """Stands in for the city's geocoder at its one seam, the Geocoder protocol."""

    def __init__(self, answer: GeocodeResult) -> None:
        self.answer = answer
        self.calls: list[tuple[Any, ...]] = []

    def lookup(self, query: str, zip_code: str | None) -> GeocodeResult:
        self.calls.append((query, zip_code))
        return self.answer

    def reverse_lookup(self, lon: float, lat: float) -> GeocodeResult:
        self.calls.append((lon, lat))
        return self.answer


def _geocoder(answer: GeocodeResult) -> tuple[FakeGeocoder, FakeGeocoder]:
    fake = FakeGeocoder(answer)
    return fake, fake


@pytest.mark.parametrize("reference", [None, Path("no/such/reference.parquet")])
def test_no_reference_means_no_geocoder(city: CityPack, reference: Path | None) -> None:
    bare = dataclasses.replace(city, paths=dataclasses.replace(city.paths,
                                                               address_reference=reference))
    geo = city_geocoder(bare)
    assert geo is None
    assert geocode_address(geo, "200 N SPRING ST") is None
    assert reverse_geocode(geo, -118.24, 34.05) is None


def test_an_unreadable_reference_says_how_to_rebuild_it(city: CityPack, tmp_path: Path) -> None:
    broken = tmp_path / "los_angeles.parquet"
    broken.write_text("not parquet")
    pack = dataclasses.replace(city, paths=dataclasses.replace(city.paths,
                                                               address_reference=broken))
    with pytest.raises(DispatchError, match="geo build-reference"):
        city_geocoder(pack)


def test_the_city_geocoder_is_loaded_once(city: CityPack) -> None:
    first = city_geocoder(city)
    assert first is not None and city_geocoder(city) is first


def test_geocode_address_passes_the_answer_through_honestly() -> None:
    answer = GeocodeResult("MAIN ST", -118.27, 34.0, Precision.STREET, 0.3, "S MAIN ST, 90003")
    geo, fake = _geocoder(answer)
    match = geocode_address(geo, "  MAIN ST ", " 90003 ")
    assert match is not None
    assert fake.calls == [("MAIN ST", "90003")]
    assert (match.lon, match.lat, match.precision, match.confidence) == (-118.27, 34.0,
                                                                          "street", 0.3)
    assert match.located
    assert not is_routable(match.precision, match.confidence)  # a street is not a house


def test_geocode_address_keeps_candidates_and_not_found() -> None:
    cands = (Candidate(-118.3, 34.1, "100 A ST, 90001", Precision.INTERPOLATED, 0.5),
             Candidate(-118.5,34.2, "100 A ST, 91406", Precision.INTERPOLATED, 0.5))
    geo, _ = _geocoder(GeocodeResult("100 A ST", -118.3, 34.1, Precision.INTERPOLATED, 0.5,
                                     "100 A ST, 90001", candidates=cands))
    match = geocode_address(geo, "100 A ST")
    assert match is not None and [c.matched_address for c in match.candidates] == [
        "100 A ST, 90001", "100 A ST, 91406"]
    geo, fake = _geocoder(GeocodeResult("nowhere", None, None, Precision.NONE, 0.0))
    missing = geocode_address(geo, "nowhere")
    assert missing is not None and not missing.located and missing.precision == "none"
    empty = geocode_address(geo, "   ")
    assert empty is not None and not empty.located
    assert fake.calls == [("nowhere", None)]  # an empty address is not looked up


def test_reverse_geocode_gives_the_nearest_address_and_distance() -> None:
    geo, fake = _geocoder(GeocodeResult("q", -118.2878, 34.0724, Precision.POINT, 0.9,
                                        "132 S WESTMORELAND AVE, 90004", distance_m=10.5))
    near = reverse_geocode(geo, -118.2879, 34.0724)
    assert near is not None
    assert near.matched_address == "132 S WESTMORELAND AVE, 90004" and near.distance_m == 10.5
    assert fake.calls == [(-118.2879, 34.0724)]


# --------------------------------------------------------------------------- picking


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [
        (-118.30000, 34.00000, 1),  # on request 1
        (-118.30050, 34.00000, 1),  # ~46 m from 1
        (-118.29930, 34.00000, 2),  # ~37 m from 2, ~65 m from 1
        (-118.31000, 34.00000, None),  # ~920 m from the nearest
    ],
)
def test_nearest_request_within_100_m(lon: float, lat: float, expected: int | None) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "lon": [-118.3, -118.2989, math.nan],
                          "lat": [34.0, 34.0, math.nan]})
    assert nearest_request(frame, lon, lat) == expected


@pytest.mark.parametrize(
    ("click", "expected"),
    [
        ({"lat": 34.07, "lng": -118.28}, (-118.28, 34.07)),  # Leaflet order -> lon, lat
        ({"lat": "34.07", "lng": "-118.28"}, (-118.28, 34.07)),
        (None, None),
        ({}, None),
        ({"lat": 34.07}, None),
        ({"lat": float("nan"), "lng": -118.28}, None),
        ({"lat": "x", "lng": -118.28}, None),
    ],
)
def test_click_lonlat(click: Any, expected: tuple[float, float] | None) -> None:
    assert intake.click_lonlat(click) == expected


def test_nearest_request_of_nothing() -> None:
    empty = pd.DataFrame({"id": [], "lon": [], "lat": []})
    assert nearest_request(empty, -118.3, 34.0) is None
    unlocated = pd.DataFrame({"id": [1], "lon": [None], "lat": [None]})
    assert nearest_request(unlocated, -118.3, 34.0) is None


# --------------------------------------------------------------------------- uploads


def test_preview_of_a_broken_myla311_file(city: CityPack) -> None:
    data = (DATA / "myla311_broken.csv").read_bytes()
    preview = preview_upload(data, "myla311_broken.csv", city)
    assert (preview.format, preview.rows_read, preview.to_import) == ("myla311", 10, 5)
    assert [(r.line, r.field) for r in preview.parse_rejects] == [
        (3, "createddate"), (4, "srnumber"), (5, "requesttype"), (8, "latitude")]
    assert [r.line for r in preview.location_rejects] == [6]
    frame = preview.rejects_frame()
    assert frame["line"].tolist() == [3, 4, 5, 6, 8]
    assert frame["stage"].tolist() == ["parse", "parse", "parse", "location", "parse"]
    assert preview.first_rows["line"].tolist() == [2, 7, 9, 10, 11]
    assert preview.first_rows["district"].notna().all()


def test_preview_of_a_mapped_csv(city: CityPack) -> None:
    data = (DATA / "webform.csv").read_bytes()
    fmt, header = upload_format(data, "webform.csv")
    assert fmt == "csv" and header[:3] == ["ticket", "type", "created"]
    mapping = ColumnMapping(columns=guess_mapping(header), source="webform")
    preview = preview_upload(data, "webform.csv", city, fmt="csv", mapping=mapping)
    assert [r.line for r in preview.rejects] == [4]
    assert preview.to_import == 3 and preview.without_position == 1


def test_guess_mapping_uses_each_column_once() -> None:
    guess = guess_mapping(["ID", "Type", "Created", "Latitude", "Longitude", "Where"])
    assert guess == {"external_id": "ID", "service_code": "Type", "requested_at": "Created",
                     "address": "Where", "lat": "Latitude", "lon": "Longitude"}


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("a.zip", (DATA / "not_a_table.zip").read_bytes(), "ZIP archive"),
        ("a.csv", (DATA / "latin1.csv").read_bytes(), "not UTF-8"),
        ("a.json", b'{"not": "open311"}', "not an Open311"),
        ("a.csv", b"", "empty"),
    ],
)
def test_unreadable_uploads_are_refused(
    city: CityPack, name: str, data: bytes, message: str
) -> None:
    with pytest.raises(ImportFormatError, match=message):
        preview_upload(data, name, city)


def test_oversize_upload_is_refused_before_parsing(
    city: CityPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: Any) -> str:
        raise AssertionError("decoded an oversize file")

    monkeypatch.setattr(intake, "decode_text", boom)
    with pytest.raises(ImportFormatError, match="accepts files up to"):
        preview_upload(b"x" * 2000, "big.csv", city, max_bytes=1000)
    with pytest.raises(ImportFormatError, match=r"big\.csv is 60\.0 MB; .* up to 50 MB"):
        intake.check_upload_size(60 * 2**20, "big.csv")
    intake.check_upload_size(intake.MAX_UPLOAD_BYTES, "ok.csv")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("requests.csv", "20200103T070000Z-requests.csv"),
        ("../../etc/passwd", "20200103T070000Z-passwd"),
        ("my file (1).csv", "20200103T070000Z-my_file_1_.csv"),
        ("...", "20200103T070000Z-upload"),
        ("C:\\Users\\x\\calls.json", "20200103T070000Z-C_Users_x_calls.json"),
    ],
)
def test_safe_upload_name(name: str, expected: str) -> None:
    assert safe_upload_name(name, datetime(2020, 1, 3, 7, tzinfo=UTC)) == expected


def test_save_upload_writes_into_the_folder(tmp_path: Path) -> None:
    path = save_upload(b"a,b\n", "../x.csv", tmp_path / "uploads",
                       datetime(2020, 1, 3, 7, tzinfo=UTC))
    assert path == tmp_path / "uploads" / "20200103T070000Z-x.csv"
    assert path.read_bytes() == b"a,b\n"


# --------------------------------------------------------------------------- triage


def _make(uow: UnitOfWork, city: CityPack, category: str, lon: float = -118.2866321,
          lat: float = 34.08037098) -> int:
    return create_request(uow, city, IntakeForm(category=category, address="x", lon=lon,
                                                lat=lat))


@pytest.mark.db
def test_triage_frame_age_and_sla(db: Connection, city: CityPack) -> None:
    with UnitOfWork(db, actor="test") as uow:
        graffiti = _make(uow, city, "graffiti_removal")  # SLA 24 h
        bulky = _make(uow, city, "bulky_items")  # SLA 72 h
        created = uow.requests.get(graffiti)
        assert created is not None
        t0 = created.requested_at
        later = t0 + timedelta(hours=30)

        def ids(flt: TriageFilter) -> set[int]:
            return set(triage_frame(uow, city, flt, now=later)["id"]) & {graffiti, bulky}

        frame = triage_frame(uow, city, TriageFilter(), now=later).set_index("id")
        assert frame.loc[graffiti, "age_h"] == pytest.approx(30, abs=0.1)
        assert frame.loc[graffiti, "sla_left_h"] == pytest.approx(-6, abs=0.1)
        assert frame.loc[bulky, "sla_left_h"] == pytest.approx(42, abs=0.1)
        assert frame.loc[graffiti, "category_label"] == "Graffiti removal"
        assert frame.loc[graffiti, "priority_label"] == "normal"
        assert ids(TriageFilter(sla="overdue")) == {graffiti}
        assert ids(TriageFilter(sla="due_24h")) == set()
        assert ids(TriageFilter(min_age_h=31)) == set()
        assert ids(TriageFilter(categories=["bulky_items"])) == {bulky}
        assert ids(TriageFilter(districts=["14"])) == set()
        soon = t0 + timedelta(hours=60)
        due = triage_frame(uow, city, TriageFilter(sla="due_24h"), now=soon)
        assert bulky in set(due["id"])
        cancel(uow, [bulky], "test")
        assert ids(TriageFilter()) == {graffiti}


def test_triage_filter_refuses_closed_statuses_and_unknown_windows() -> None:
    with pytest.raises(DispatchError, match="not open"):
        TriageFilter(statuses=["completed"])
    with pytest.raises(DispatchError, match="SLA window"):
        TriageFilter(sla="soon")


@pytest.mark.db
def test_request_pk_and_events(db: Connection, city: CityPack) -> None:
    with UnitOfWork(db, actor="supervisor") as uow:
        pk = _make(uow, city, "graffiti_removal")
        row = uow.requests.get(pk)
        assert row is not None
        assert request_pk(uow, f" {row.external_id} ") == pk
        with pytest.raises(NotFoundError, match="no request"):
            request_pk(uow, "NOPE-1")
        cancel(uow, [pk], "graffiti already painted over")
        events = events_frame(uow, pk, city)
    assert events["action"].tolist() == ["created", "cancelled"]
    assert events["who"].tolist() == ["supervisor", "supervisor"]
    assert events["details"].iloc[1] == "reason: graffiti already painted over"


# --------------------------------------------------------------------------- issue 13

SUPERVISOR = Principal("ana", Role.SUPERVISOR)
# 1046 W 37th St (ZIP 90007) and a click beside it, lon, lat
W_37TH = (-118.2901, 34.0226)


@pytest.mark.parametrize(
    ("answer", "address", "zipcode"),
    [
        # the tester's case: a known address 731 m away fills in nothing
        (GeocodeResult("q", -118.2901, 34.0226, Precision.POINT, 0.0007,
                       "1046 W 37TH ST, 90007", zip="90007", distance_m=731.0), None, None),
        (GeocodeResult("q", -118.2901, 34.0226, Precision.POINT, 0.6,
                       "1046 W 37TH ST, 90007", zip="90007", distance_m=50.1), None, None),
        # within 50 m: the address, and its ZIP (the old ZIP field does not stay)
        (GeocodeResult("q", -118.2901, 34.0226, Precision.POINT, 0.9,
                       "1046 W 37TH ST, 90007", zip="90007", distance_m=12.0),
         "1046 W 37TH ST", "90007"),
        (GeocodeResult("q", -118.2901, 34.0226, Precision.POINT, 0.6,
                       "1046 W 37TH ST, 90007", zip="90007", distance_m=50.0),
         "1046 W 37TH ST", "90007"),
        # a geocoder that gives no ZIP field: read from the matched address
        (GeocodeResult("q", -118.2901, 34.0226, Precision.POINT, 0.9,
                       "1046 W 37TH ST, 90007", distance_m=12.0), "1046 W 37TH ST", "90007"),
        (GeocodeResult("q", None, None, Precision.NONE, 0.0), None, None),
    ],
)
def test_a_map_click_stands_for_an_address_only_within_50_m(
    city: CityPack, answer: GeocodeResult, address: str | None, zipcode: str | None
) -> None:
    """Case 13.3: a click filled in an address 731 m away and kept the old ZIP."""
    geo, _ = _geocoder(answer)
    found = intake.address_at_click(city, geo, W_37TH[0] + 0.0001, W_37TH[1])
    assert (found.address, found.zipcode, found.near) == (address, zipcode,
                                                          address is not None)
    assert found.nearest == answer and found.outside is None


def test_a_map_click_outside_the_city_says_why(city: CityPack) -> None:
    geo, _ = _geocoder(GeocodeResult("q", -118.17, 34.12, Precision.POINT, 0.9,
                                     "1015 N RUTLAND AVE, 90042", zip="90042", distance_m=5.0))
    found = intake.address_at_click(city, geo, -118.1445, 34.1478)  # Pasadena City Hall
    assert found.address is None and not found.near
    assert found.outside is not None and "outside City of Los Angeles" in found.outside
    assert intake.address_at_click(city, None, *W_37TH).nearest is None


@pytest.mark.parametrize(
    ("address", "zipcode", "lonlat", "reason"),
    [
        ("100 E Colorado Blvd, Pasadena, CA 91101", "", None, "ZIP 91101"),
        ("100 E Colorado Blvd", "91101", None, "ZIP 91101"),
        # a position beyond the limit, whatever the ZIP says
        ("100 N Garfield Ave", "", (-118.1445, 34.1478), "city limit"),
        ("200 N Spring St", "90012", (-118.2427, 34.0537), None),
        ("200 N Spring St", "", (-118.2427, 34.0537), None),
    ],
)
def test_locate_refuses_an_address_outside_the_city(
    city: CityPack, address: str, zipcode: str, lonlat: tuple[float, float] | None,
    reason: str | None,
) -> None:
    """Case 13.4: a Pasadena address was taken into Los Angeles (placed in Eagle Rock)."""
    geo = city_geocoder(city)
    match = geocode_address(geo, address, zipcode)
    assert match is not None
    if lonlat is not None:
        match = dataclasses.replace(match, lon=lonlat[0], lat=lonlat[1])
    found = intake.located_outside_city(city, geo, address, zipcode, match)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found and "City of Los Angeles" in found


def test_the_preview_counts_rows_against_the_store(
    db: Connection, city: CityPack, tmp_path: Path
) -> None:
    """Case 13.5: a second upload of a stored file said "Will be imported 23"."""
    path = DATA / "myla311_2020_sample.csv"
    data = path.read_bytes()
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        first = preview_upload(data, path.name, city, uow=uow)
    assert (first.new, first.changed, first.unchanged) == (23, 0, 0)
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        import_requests(uow, path, city)
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        second = preview_upload(data, path.name, city, uow=uow)
        assert uow.requests.count() == 23  # the previews wrote nothing
    assert (second.new, second.changed, second.unchanged) == (0, 0, 23)
    # one row the source changed since: changed, as the import will find it
    rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
    edited = [*rows[:1], rows[1].replace("Closed", "Open", 1), *rows[2:]]
    assert edited != rows
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        third = preview_upload("".join(edited).encode(), path.name, city, uow=uow)
    assert (third.new, third.changed, third.unchanged) == (0, 1, 22)
    edited_path = tmp_path / path.name
    edited_path.write_text("".join(edited), encoding="utf-8")
    with UnitOfWork(db, actor=SUPERVISOR) as uow:
        summary = import_requests(uow, edited_path, city)
    assert (summary.imported, summary.updated, summary.unchanged) == (0, 1, 22)


def test_the_preview_refuses_a_caller_who_may_not_import(db: Connection, city: CityPack) -> None:
    data = (DATA / "myla311_2020_sample.csv").read_bytes()
    with UnitOfWork(db, actor=Principal("joe", Role.CREW, crew="BOS-1")) as uow, \
            pytest.raises(DispatchError, match="preview imports"):
        preview_upload(data, "x.csv", city, uow=uow)


@pytest.mark.parametrize(("address", "refused"), [
    ("100 N GARFIELD AVE, PASADENA", "Pasadena"),
    ("100 N GARFIELD AVE PASADENA", "Pasadena"),  # no comma: a place the pack names
    ("100 E COLORADO BLVD, GLENDALE, CA", "Glendale"),
    ("200 N SPRING ST, LOS ANGELES", None),
    ("5520 FULCHER AVE VAN NUYS", None),  # a community of the city
    ("1234 VENICE BLVD", None),  # a street named like a place
    ("100 N GARFIELD AVE", None),
])
def test_an_address_in_another_city_is_named_as_such(address: str, refused: str | None) -> None:
    from dispatch.citypack import load_city_pack
    from dispatch.services.requests import place_outside_city

    reason = place_outside_city(load_city_pack("los_angeles"), address)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and f"is in {refused}, which is not part of" in reason
