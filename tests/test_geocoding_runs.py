"""Runs of one street follow one house-numbering sequence (geo.geocoding.index).

A street name can carry two numbering sequences: the long city grid (5000 to 13000
here, one house number per metre) and, past its far end, a neighbourhood that numbers
the same street from its own origin again (100 to 300). The two lie within a run's
gap of each other, but 12,700 numbers in 900 m is not one numbering: a house number
never stands for less than ``m_per_number_min`` metres. They are two runs, and a
number of the grid is never interpolated between a point of each.
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from geo.geocoding import Precision
from geo.geocoding.offline import OfflineGeocoder
from geo.geocoding.tuning import DEFAULT_TUNING
from geo.reference import POINT_COLUMNS, build_reference

LON0, LAT0 = -118.30, 34.05
KX = 111_320.0 * math.cos(math.radians(LAT0))


def _lon(x_m: float) -> float:
    return LON0 + x_m / KX


def _x_of_grid(n: int) -> float:
    """Grid numbers rise eastward, one number per metre; 13000 at x = 0."""
    return float(n - 13000)


def _rows() -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    # the grid: 5000 ... 13000 every 250 numbers (250 m apart)
    for n in range(5000, 13001, 250):
        rows.append((n, "W", "LONG", "BLVD", "", "", "90002", _lon(_x_of_grid(n)), LAT0))
    # the same grid's low end, 2 km east of 5000 (a gap: a run of its own)
    for n in (1000, 1500, 2000, 2500, 3000):
        rows.append((n, "W", "LONG", "BLVD", "", "", "90001", _lon(_x_of_grid(n)), LAT0))
    # the neighbourhood past the grid's 13000 end, numbered from its own origin
    for k, n in enumerate(range(100, 301, 20)):
        rows.append((n, "W", "LONG", "BLVD", "", "", "90003", _lon(900.0 + 10.0 * k), LAT0))
    return rows


@pytest.fixture(scope="module")
def two_numberings() -> OfflineGeocoder:
    return OfflineGeocoder(build_reference(pd.DataFrame(_rows(), columns=POINT_COLUMNS)))


@pytest.mark.parametrize(("number", "zip_code"), [(3500, "90001"), (4000, "90002"),
                                                   (4500, "90002"), (3500, "")])
def test_grid_number_is_not_placed_towards_the_other_numbering(
    two_numberings: OfflineGeocoder, number: int, zip_code: str
) -> None:
    res = two_numberings.lookup(f"{number} W LONG BLVD", zip_code or None)
    assert res.precision in (Precision.INTERPOLATED, Precision.POINT)
    assert res.lon is not None
    x = (res.lon - LON0) * KX
    # on the grid, about 1 m per number west of 5000; never kilometres east toward 300
    assert abs(x - _x_of_grid(number)) < 600.0, (res.method, res.source, x)


@pytest.mark.parametrize("number", [150, 13000, 9000])
def test_each_numbering_still_answers_its_own_numbers(
    two_numberings: OfflineGeocoder, number: int
) -> None:
    res = two_numberings.lookup(f"{number} W LONG BLVD")
    assert res.precision is Precision.POINT or res.precision is Precision.INTERPOLATED
    assert res.lon is not None
    x = (res.lon - LON0) * KX
    want = 900.0 + 10.0 * (number - 100) / 20 if number < 1000 else _x_of_grid(number)
    assert abs(x - want) < 60.0


def test_a_run_holds_one_numbering(two_numberings: OfflineGeocoder) -> None:
    for run in two_numberings.index.by_name["LONG"]:
        nums = run.nl
        assert not (min(nums) < 1000 and max(nums) > 5000), (nums[:3], nums[-3:])


def test_the_rule_can_be_switched_off_for_comparison() -> None:
    off = dataclasses.replace(DEFAULT_TUNING, one_numbering_runs=False)
    gc = OfflineGeocoder(build_reference(pd.DataFrame(_rows(), columns=POINT_COLUMNS)),
                         tuning=off)
    assert any(min(r.nl) < 1000 < 5000 < max(r.nl) for r in gc.index.by_name["LONG"])
