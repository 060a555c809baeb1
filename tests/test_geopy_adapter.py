"""The geocoder with geopy's face: the answers and errors geopy's own tools expect.

Case by case from the Open311/packaging issue: ``reverse()`` of Paris and of (0, 0)
returned a Los Angeles address at precision "point"; the string "34.0537 -118.2428",
which geopy reads, raised an error; errors were not geopy's classes, so ``RateLimiter``
did not handle them.
"""

from __future__ import annotations

import pytest
from geopy.exc import GeocoderQueryError, GeocoderServiceError, GeocoderUnavailable
from geopy.extra.rate_limiter import RateLimiter
from geopy.location import Location

from dispatch.citypack import CityPack, load_city_pack
from dispatch.services.geocoding import geopy_geocoder
from geo.errors import AddressReferenceError, GeocodeError
from geo.geocoding import GeocodeResult
from geo.geocoding.geopy_adapter import (
    GeopyAdapter,
    GeopyQueryError,
    GeopyUnavailableError,
    coordinates_in,
)

CITY_HALL = (34.0537, -118.2428)  # (lat, lon), as geopy writes points


@pytest.fixture(scope="module")
def la() -> CityPack:
    return load_city_pack("los_angeles")


@pytest.fixture(scope="module")
def adapter(la: CityPack) -> GeopyAdapter:
    found = geopy_geocoder(la)
    assert found is not None
    return found


@pytest.mark.parametrize("query", [(48.8566, 2.3522), (0, 0), "0, 0", "48.8566 2.3522",
                                   (34.4500, -118.2428)])  # Paris, null island, the desert
def test_reverse_outside_the_city_or_far_from_any_address_is_none(
        adapter: GeopyAdapter, query: object) -> None:
    assert adapter.reverse(query) is None
    assert adapter.reverse(query, exactly_one=False) is None


def test_reverse_beyond_the_cut_off_is_none_inside_the_city(la: CityPack) -> None:
    found = geopy_geocoder(la, max_distance_m=1.0)
    assert found is not None
    # a point inside the city but a few hundred metres from the nearest known address
    lat, lon = 34.1184, -118.3004  # Griffith Park
    assert la.within_city([lon], [lat])[0]
    assert found.reverse((lat, lon)) is None
    near = found.geocoder.reverse_lookup(lon, lat)
    assert near.distance_m is not None and near.distance_m > 1.0


@pytest.mark.parametrize("query", ["34.0537 -118.2428", "34.0537, -118.2428", CITY_HALL,
                                   '34 3m 13.3s N, 118 14m 34.1s W'])
def test_reverse_reads_what_geopy_reads(adapter: GeopyAdapter, query: object) -> None:
    loc = adapter.reverse(query)
    assert isinstance(loc, Location)
    assert loc.raw["distance_m"] <= adapter.max_distance_m
    assert abs(loc.latitude - CITY_HALL[0]) < 0.003 and abs(loc.longitude - CITY_HALL[1]) < 0.003


def test_geocode_accepts_lat_lon_text(adapter: GeopyAdapter) -> None:
    loc = adapter.geocode("34.0537 -118.2428")
    assert isinstance(loc, Location)
    assert (loc.latitude, loc.longitude) == CITY_HALL  # the point asked, not the address's
    assert loc.address and loc.raw["precision"] == "manual"
    many = adapter.geocode("34.0537, -118.2428", exactly_one=False)
    assert isinstance(many, list) and [(m.point, m.address) for m in many] == [
        (loc.point, loc.address)]
    assert adapter.geocode("48.8566 2.3522") is None  # Paris is not in the city
    assert coordinates_in("16815 91406") is None  # a house number and a ZIP, not a point
    assert coordinates_in("91.5 -118.2") is None
    street = adapter.geocode("16815 W VANOWEN ST, 91406")
    assert isinstance(street, Location) and "VANOWEN" in street.address


def test_errors_are_geopys_classes(adapter: GeopyAdapter) -> None:
    with pytest.raises(GeocoderQueryError) as err:
        adapter.reverse("not a point")
    assert isinstance(err.value, GeocodeError)  # and still Curbside's
    assert "not a point" in str(err.value)
    with pytest.raises(GeopyQueryError):
        adapter.reverse((95.0, 0.0))
    assert issubclass(GeopyUnavailableError, GeocoderUnavailable)


class Broken:
    """A geocoder whose reference went missing."""

    calls = 0

    def lookup(self, query: object, zip_code: object = None) -> GeocodeResult:
        Broken.calls += 1
        raise AddressReferenceError("reference los_angeles.parquet is missing")

    def reverse_lookup(self, lon: float, lat: float) -> GeocodeResult:
        raise AddressReferenceError("reference los_angeles.parquet is missing")


def test_rate_limiter_retries_and_swallows_our_errors() -> None:
    limited = RateLimiter(GeopyAdapter(Broken()).geocode, min_delay_seconds=0, max_retries=2,
                          error_wait_seconds=0, swallow_exceptions=True)
    assert limited("16815 W VANOWEN ST") is None
    assert Broken.calls == 3  # the first try and two retries: a GeocoderServiceError
    with pytest.raises(GeocoderServiceError):
        GeopyAdapter(Broken()).geocode("16815 W VANOWEN ST")
