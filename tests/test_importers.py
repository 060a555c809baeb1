"""The readers: MyLA311 (both layouts), Open311 JSON and mapped CSV, as pure shaping."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.citypack import load_city_pack
from dispatch.errors import ImportFormatError
from dispatch.importers import ImportContext, read_file
from dispatch.importers.common import FieldError, parse_lonlat, parse_timestamp
from dispatch.importers.detect import parse_text
from dispatch.importers.generic_csv import ColumnMapping, load_mapping
from dispatch.importers.open311 import parse_items, to_open311
from dispatch.model import Channel, RequestStatus, channel_from_text

DATA = Path(__file__).parent / "data" / "import"
LA = ZoneInfo("America/Los_Angeles")
KNOWN = {
    "Bulky Items": "bulky_items",
    "Graffiti Removal": "graffiti_removal",
    "Illegal Dumping Pickup": "illegal_dumping",
    "Metal/Household Appliances": "metal_appliances",
    "Homeless Encampment": "homeless_encampment",
    "Electronic Waste": "electronic_waste",
    "Dead Animal Removal": "dead_animal",
    "Other": "other",
    "Single Streetlight Issue": "streetlight",
    "Multiple Streetlight Issue": "streetlight",
    "Report Water Waste": "water_waste",
}
LA_CHANNELS = load_city_pack("los_angeles").channels
CTX = ImportContext(tz=LA, categorize=KNOWN.get, channels=LA_CHANNELS)


@pytest.mark.parametrize(
    ("text", "with_pack", "expected"),
    [
        ("Call", True, Channel.PHONE),
        ("Call", False, Channel.OTHER),  # the city's word: only its pack knows it
        ("  Mobile   App ", True, Channel.APP),
        ("Council's Office", True, Channel.COUNCIL_OFFICE),
        ("Driver Self Report", False, Channel.DRIVER_SELF_REPORT),  # a channel's own name
        ("phone", False, Channel.PHONE),
        ("carrier pigeon", True, Channel.OTHER),
        ("", True, Channel.OTHER),
        (None, True, Channel.OTHER),
    ],
)
def test_channels_are_read_through_the_city_pack(
    text: str | None, with_pack: bool, expected: Channel
) -> None:
    assert channel_from_text(text, LA_CHANNELS if with_pack else None) is expected


def test_myla311_2020_layout() -> None:
    result = read_file(DATA / "myla311_2020_sample.csv", CTX)
    assert result.format == "myla311"
    assert result.rows_read == 23
    assert result.rejects == []
    first = result.records[0].request
    assert first.external_id == "1-1523590121"
    assert first.category == "illegal_dumping"
    # 1/1/20 0:05 Pacific standard time is 08:05 UTC
    assert first.requested_at == datetime(2020, 1, 1, 8, 5, tzinfo=UTC)
    assert first.service_date == date(2020, 1, 2)
    assert (first.lon, first.lat) == (-118.4994716, 34.19402846)
    assert first.channel is Channel.PHONE
    assert first.status is RequestStatus.COMPLETED
    assert first.assigned_org == "WV"
    assert first.extra["cd"] == "6"
    unlocated = [r.request for r in result.records if r.request.lon is None]
    assert len(unlocated) == 1 and unlocated[0].address


def test_myla311_2017_layout_builds_address_and_reads_12h_clock() -> None:
    result = read_file(DATA / "myla311_2017_sample.csv", CTX)
    assert result.format == "myla311"
    assert len(result.records) == 10 and not result.rejects
    reqs = [r.request for r in result.records]
    assert all(r.requested_at.tzinfo is UTC for r in reqs)
    assert sum(r.lon is None for r in reqs) == 2
    assert all(r.address for r in reqs)


def test_broken_rows_are_named_and_good_rows_kept() -> None:
    result = read_file(DATA / "myla311_broken.csv", CTX)
    by_line = {r.line: r for r in result.rejects}
    assert sorted(by_line) == [3, 4, 5, 8]
    assert by_line[3].field == "createddate" and "yesterday" in by_line[3].reason
    assert by_line[4].field == "srnumber"
    assert by_line[5].field == "requesttype" and "Alien Landing" in by_line[5].reason
    assert "not finite" in by_line[8].reason
    # line 6 (New York coordinates) parses; the import service rejects it against the city
    assert result.rows_read == 10
    assert len(result.records) == 10 - 4


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("not_a_table.zip", "ZIP archive"),
        ("latin1.csv", "not UTF-8"),
    ],
)
def test_unreadable_files_fail_with_one_message(name: str, message: str) -> None:
    with pytest.raises(ImportFormatError, match=message):
        read_file(DATA / name, CTX)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("just one line of prose\n", "neither a CSV"),
        ('{"hello": 1}', "not an Open311"),
        ("[1, 2", "not valid JSON"),
        ("a,b\n1,2\n", "pass a column mapping"),
    ],
)
def test_unrecognised_text(text: str, message: str) -> None:
    with pytest.raises(ImportFormatError, match=message):
        parse_text(text, "upload", CTX)


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("srnumber,requesttype,createddate\n" + "x,y,z\n" * 1000)
    with pytest.raises(ImportFormatError, match="largest file accepted"):
        read_file(path, CTX, max_bytes=1000)


def test_generic_csv_with_mapping() -> None:
    mapping = load_mapping(DATA / "webform_mapping.toml")
    result = read_file(DATA / "webform.csv", CTX, "csv", mapping)
    assert [r.line for r in result.rejects] == [4]
    assert result.rejects[0].field == "created"
    ids = [r.request.external_id for r in result.records]
    assert ids == ["W-1", "W-2", "W-4"]
    assert all(r.request.source == "webform" for r in result.records)
    w2 = result.records[1].request
    assert w2.lon is None and w2.address == "16815 W VANOWEN ST"
    assert result.records[2].request.status is RequestStatus.COMPLETED


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"external_id": "a", "service_code": "b"}, "lacks"),
        ({"external_id": "a", "service_code": "b", "requested_at": "c", "colour": "d"},
         "unknown fields"),
    ],
)
def test_bad_mapping(columns: dict[str, str], message: str) -> None:
    with pytest.raises(ImportFormatError, match=message):
        ColumnMapping(columns=columns)


def test_open311_round_trip_of_one_request() -> None:
    req = read_file(DATA / "myla311_2020_sample.csv", CTX).records[0].request
    item = to_open311(req, service_name="Illegal dumping", tz=LA)
    assert item["status"] == "closed"
    assert item["requested_datetime"] == "2020-01-01T00:05:00-08:00"
    assert (item["long"], item["lat"]) == (req.lon, req.lat)
    back = parse_items([json.loads(json.dumps(item))], CTX).records[0].request
    assert back.requested_at == req.requested_at
    assert back.status.open311 == req.status.open311
    assert (back.lon, back.lat) == (req.lon, req.lat)


def test_open311_bad_elements() -> None:
    items = [
        {"service_request_id": "1", "status": "pending", "service_code": "Bulky Items",
         "requested_datetime": "2020-01-01T00:00:00Z"},
        {"service_request_id": "2", "status": "open", "service_code": "Bulky Items",
         "requested_datetime": "2020-01-01T00:00:00Z", "description": "x" * 4001},
        {"service_request_id": "3", "status": "open", "service_code": "Bulky Items",
         "requested_datetime": "2020-01-01T00:00:00Z", "lat": 95.0, "long": -118.0},
        "not an object",
        {"service_request_id": "5", "status": "open", "service_code": "Bulky Items",
         "requested_datetime": "2020-01-01T00:00:00Z"},
    ]
    result = parse_items(items, CTX)
    fields = {r.line: r.field for r in result.rejects}
    assert fields == {1: "status", 2: "description", 3: "latitude", 4: "(element)"}
    assert [r.request.external_id for r in result.records] == ["5"]


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [
        ("", "", (None, None)),
        ("0", "0", (None, None)),
        ("-118.25", "34.05", (-118.25, 34.05)),
    ],
)
def test_parse_lonlat_accepts(lon: str, lat: str, expected: tuple[object, object]) -> None:
    assert parse_lonlat(lon, lat) == expected


@pytest.mark.parametrize(
    ("lon", "lat"),
    [("-118.2", ""), ("abc", "34"), ("inf", "34"), ("-118", "nan"), ("-200", "34"),
     ("-118", "91")],
)
def test_parse_lonlat_refuses(lon: str, lat: str) -> None:
    with pytest.raises(FieldError):
        parse_lonlat(lon, lat)


@given(st.text(max_size=40))
def test_parse_timestamp_never_returns_naive(text: str) -> None:
    try:
        stamp = parse_timestamp(text, "when", LA)
    except FieldError:
        return
    assert stamp.tzinfo is UTC


@given(st.one_of(st.none(), st.text(max_size=12), st.floats(allow_nan=True)),
       st.one_of(st.none(), st.text(max_size=12), st.floats(allow_nan=True)))
def test_parse_lonlat_is_finite_or_refused(lon: object, lat: object) -> None:
    try:
        x, y = parse_lonlat(lon, lat)
    except FieldError:
        return
    assert (x is None) == (y is None)
    if x is not None and y is not None:
        assert math.isfinite(x) and math.isfinite(y)
        assert -180 <= x <= 180 and -90 <= y <= 90


@given(st.lists(st.dictionaries(st.sampled_from(
    ["service_request_id", "status", "service_code", "requested_datetime", "lat", "long",
     "description"]),
    st.one_of(st.none(), st.text(max_size=10), st.integers(), st.floats())), max_size=5))
def test_open311_reader_never_crashes(items: list[dict[str, object]]) -> None:
    result = parse_items(items, CTX)
    assert len(result.records) + len(result.rejects) == len(items)


def _digest_as_first_written(rec: Any) -> str:
    """``record_digest`` as it was first written: stored digests must stay valid."""
    import hashlib

    from dispatch.services.imports import _COLUMNS

    def plain(value: Any) -> Any:
        if isinstance(value, datetime | date):
            return value.isoformat()
        if hasattr(value, "value"):
            return value.value
        return value

    req = rec.request
    doc = {name: plain(getattr(req, name)) for name in sorted(rec.supplied)
           if name in _COLUMNS and not (name in ("lon", "lat") and "geocoded" in rec.supplied)}
    doc["_key"] = [req.source, req.external_id]
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("name", ["myla311_2020_sample.csv", "myla311_2017_sample.csv"])
def test_record_digests_stay_what_the_store_holds(name: str) -> None:
    """A re-import compares each row's digest with the stored one: a faster digest must
    give the same text for every record, or every stored row would look changed."""
    from dispatch.services.imports import record_digest

    records = read_file(DATA / name, CTX).records
    assert records
    assert [record_digest(r) for r in records] == [_digest_as_first_written(r)
                                                   for r in records]
