"""The geocoder's tuning and the numbering models it switches (geo.geocoding.tuning, .index)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.errors import GeocodeError
from geo.geocoding.index import block_positions, group_weights
from geo.geocoding.tuning import DEFAULT_TUNING, GeocoderTuning, ZipTest


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"run_gap_m": -1.0}, "run_gap_m"),
        ({"zip_reject_m": float("nan")}, "zip_reject_m"),
        ({"m_per_number_max": 0.0}, "m_per_number_max"),
        ({"m_per_number_min": 0.0}, "m_per_number_min"),
        ({"m_per_number_min": 7.0}, "m_per_number_min"),
        ({"ordinal_spacing_m": (450.0, 40.0)}, "ordinal_spacing_m"),
        ({"predir_penalty": 1.5}, "predir_penalty"),
        ({"beyond_max_numbers": -3}, "beyond_max_numbers"),
    ],
)
def test_a_bad_tuning_names_the_field_and_what_came_in(change: dict[str, object],
                                                        field: str) -> None:
    with pytest.raises(GeocodeError, match=field) as err:
        dataclasses.replace(DEFAULT_TUNING, **change)
    assert repr(next(iter(change.values())))[:4] in str(err.value)


@pytest.mark.parametrize(("k", "need", "within_m"), [(0, 1, 800.0), (3, 4, 800.0),
                                                     (3, 0, 800.0), (3, 1, 0.0)])  # fmt: skip
def test_a_bad_zip_test_is_refused(k: int, need: int, within_m: float) -> None:
    with pytest.raises(GeocodeError, match="ZipTest"):
        ZipTest(k, need, within_m)


def test_tunings_are_frozen_values() -> None:
    assert GeocoderTuning() == DEFAULT_TUNING
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_TUNING.long_walks = False  # type: ignore[misc]
    off = dataclasses.replace(DEFAULT_TUNING, side_of_street=False)
    assert off != DEFAULT_TUNING and DEFAULT_TUNING.side_of_street


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(["90001", "90002", "90003", "90291", ""]), min_size=1,
                max_size=300))  # fmt: skip
def test_group_weights_only_ever_shrink_oversized_groups(zips: list[str]) -> None:
    w = group_weights(zips)
    assert w.shape == (len(zips),) and np.all((w > 0) & (w <= 1))
    sizes = {z: zips.count(z) for z in zips}
    cap = np.percentile(list(sizes.values()), 90)
    for z, weight in zip(zips, w, strict=True):
        if sizes[z] <= cap:
            assert weight == 1.0
        else:
            assert weight * sizes[z] == pytest.approx(cap)  # counts as if it had cap members


def test_a_dense_zip_does_not_set_the_block_layout() -> None:
    rng = np.random.default_rng(7)
    # thirty ordinary ZIPs whose houses use the low numbers of each block ...
    city = rng.integers(0, 40, 3000) + 100 * rng.integers(1, 90, 3000)
    city_zips = [f"9{i % 30:04d}" for i in range(3000)]
    # ... and one densely mapped ZIP numbered evenly through its blocks
    dense = rng.integers(0, 100, 30_000) + 100 * rng.integers(1, 30, 30_000)
    numbers = np.concatenate([city, dense])
    zips = city_zips + ["90291"] * len(dense)
    alone = block_positions(city, city_zips)
    weighted = block_positions(numbers, zips)
    pooled = block_positions(numbers)
    assert alone is not None and weighted is not None and pooled is not None
    # where number 40 sits within its block: the city's layout survives the dense ZIP
    assert abs(weighted[40] - alone[40]) < abs(pooled[40] - alone[40]) / 3
