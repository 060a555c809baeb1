"""Optional online fallback (geo.online); the network is faked at the provider seam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from geopy.location import Location

from geo.errors import GeocodeError
from geo.geocoder import OfflineGeocoder, Precision
from geo.online import CensusGeocoder, FallbackGeocoder, GeocodeCache, make_provider
from geo.reference import build_la_reference

DATA = Path(__file__).parent / "data" / "geocode"


class FakeProvider:
    """Stands where a geopy geocoder stands; records every query."""

    def __init__(self, answer: Location | None) -> None:
        self.answer = answer
        self.queries: list[str] = []

    def geocode(self, query: str, exactly_one: bool = True) -> Location | None:
        self.queries.append(query)
        return self.answer


@pytest.fixture(scope="module")
def offline() -> OfflineGeocoder:
    ref, _ = build_la_reference(DATA / "la_2020_91406.csv")
    return OfflineGeocoder(ref)


def _loc(raw: dict[str, Any]) -> Location:
    # (lon, lat) -> (lat, lon) for geopy
    return Location("1 Somewhere St, Los Angeles", (34.2, -118.5), raw)


def test_off_by_default(offline: OfflineGeocoder) -> None:
    fb = FallbackGeocoder(offline)
    res = fb.lookup("123 NOWHERE LN, 91406")
    assert res.precision is Precision.ZIP
    assert res.source == "offline"
    assert fb.calls == 0


def test_confident_offline_answers_never_go_online(offline: OfflineGeocoder) -> None:
    fake = FakeProvider(_loc({"class": "building", "type": "house"}))
    fb = FallbackGeocoder(offline, [("nominatim", fake)], threshold=0.5)
    res = fb.lookup("16815 W VANOWEN ST, 91406")
    assert res.precision is Precision.POINT and res.source == "offline"
    assert fake.queries == []


def test_low_confidence_goes_online_once_and_is_cached(
    offline: OfflineGeocoder, tmp_path: Path
) -> None:
    fake = FakeProvider(_loc({"class": "building", "type": "house"}))
    cache_path = tmp_path / "cache" / "geocode.sqlite3"
    fb = FallbackGeocoder(offline, [("nominatim", fake)], cache=GeocodeCache(cache_path))
    res = fb.lookup("123 NOWHERE LN", "91406")
    assert res.source == "nominatim"
    assert res.precision is Precision.POINT
    assert (res.lon, res.lat) == (-118.5, 34.2)
    assert fake.queries == ["123 NOWHERE LN 91406"]
    fb.lookup("123 NOWHERE LN", "91406")
    assert len(fake.queries) == 1  # second time from the cache
    # the cache persists across instances
    fb2 = FallbackGeocoder(offline, [("nominatim", fake)], cache=GeocodeCache(cache_path))
    assert fb2.lookup("123 NOWHERE LN", "91406").source == "nominatim"
    assert len(fake.queries) == 1 and fb2.calls == 0


def test_misses_are_cached_and_offline_answer_kept(offline: OfflineGeocoder) -> None:
    fake = FakeProvider(None)
    fb = FallbackGeocoder(offline, [("arcgis", fake)])
    for _ in range(2):
        res = fb.lookup("123 NOWHERE LN, 91406")
        assert res.precision is Precision.ZIP and res.source == "offline"
    assert len(fake.queries) == 1


def test_less_precise_online_answer_is_ignored(offline: OfflineGeocoder) -> None:
    # offline: street level (no number); online: only a postcode -> keep offline
    fake = FakeProvider(_loc({"attributes": {"Addr_type": "Postal"}}))
    fb = FallbackGeocoder(offline, [("arcgis", fake)], threshold=0.9)
    res = fb.lookup("W VANOWEN ST, 91406")
    assert res.precision is Precision.STREET and res.source == "offline"
    assert len(fake.queries) == 1


def test_providers_tried_in_order(offline: OfflineGeocoder) -> None:
    first, second = (
        FakeProvider(None),
        FakeProvider(_loc({"attributes": {"Addr_type": "StreetAddress"}})),
    )
    fb = FallbackGeocoder(offline, [("census", first), ("arcgis", second)])
    res = fb.lookup("99 UNKNOWN WAY, 91406")
    assert res.source == "arcgis" and res.precision is Precision.INTERPOLATED
    assert len(first.queries) == 1 and len(second.queries) == 1
    assert fb.geocode("99 UNKNOWN WAY, 91406") is not None


def test_threshold_validated(offline: OfflineGeocoder) -> None:
    with pytest.raises(GeocodeError, match="threshold"):
        FallbackGeocoder(offline, threshold=1.5)


def test_nominatim_policy_enforced() -> None:
    with pytest.raises(GeocodeError, match="user_agent"):
        make_provider("nominatim")
    with pytest.raises(GeocodeError, match="user_agent"):
        make_provider("nominatim", user_agent="geopy/2.4")
    with pytest.raises(GeocodeError, match="1 request/s"):
        make_provider(
            "nominatim", user_agent="curbside/0.1 (ops@example.org)", min_delay_seconds=0.2
        )
    with pytest.raises(GeocodeError, match="not one of"):
        make_provider("google")


def test_nominatim_is_rate_limited() -> None:
    provider = make_provider("nominatim", user_agent="curbside-tests/0.1 (ops@example.org)")
    limiter = provider._func  # type: ignore[attr-defined]
    assert limiter.min_delay_seconds >= 1.0


def test_other_providers_build_without_network() -> None:
    assert callable(make_provider("arcgis").geocode)
    assert isinstance(make_provider("census"), CensusGeocoder)


def test_census_adapter_parses_response() -> None:
    seen: list[str] = []
    payload = {
        "result": {
            "addressMatches": [
                {"matchedAddress": "100 N MAIN ST, LOS ANGELES, CA, 90012",
                 "coordinates": {"x": -118.243, "y": 34.054}}
            ]
        }
    }  # fmt: skip

    def opener(url: str, timeout: float) -> bytes:
        seen.append(url)
        return json.dumps(payload).encode()

    census = CensusGeocoder(opener=opener)
    loc = census.geocode("100 N Main St, Los Angeles, CA 90012")
    assert isinstance(loc, Location)
    assert (loc.longitude, loc.latitude) == (-118.243, 34.054)
    assert "onelineaddress" in seen[0] and "format=json" in seen[0]
    empty = CensusGeocoder(opener=lambda u, t: b'{"result": {"addressMatches": []}}')
    assert empty.geocode("nowhere") is None


def test_cache_roundtrip(tmp_path: Path) -> None:
    cache = GeocodeCache(tmp_path / "c.sqlite3")
    assert cache.get("p", "q") == (False, None)
    cache.put("p", "q", None)
    assert cache.get("p", "q") == (True, None)
    cache.put("p", "q", {"lon": 1.0})
    assert cache.get("p", "q") == (True, {"lon": 1.0})
    assert len(cache) == 1
    cache.close()
