"""Pure analytics: hexagons, Gi* hot spots, repeats, sweeps, KPIs, small samples."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import h3
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.analytics import SMALL_SAMPLE
from dispatch.analytics.hotspots import (
    SWEEP_PREFIX,
    GiStarParams,
    area_cells,
    bh_adjust,
    cell_ids,
    gi_star,
    gi_star_z,
    hex_table,
    period_comparison,
    previous_period,
    repeat_locations,
    study_area,
    sweep_stops,
)
from dispatch.analytics.kpis import (
    crew_productivity,
    duration_summary,
    volume,
)
from dispatch.citypack import load_city_pack
from dispatch.planning.problem import Stop
from dispatch.services.analytics import kpis
from dispatch.services.queries import MapFilter
from dispatch.store import UnitOfWork

LA = ZoneInfo("America/Los_Angeles")
T0 = datetime(2020, 1, 6, 16, 0, tzinfo=UTC)  # Monday 08:00 in Los Angeles
# A 0.1 x 0.1 degree box in central Los Angeles (lon, lat).
BOX = (-118.35, 34.00, -118.25, 34.10)


def _frame(lon, lat, category="graffiti_removal", **cols) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    n = len(lon)
    data = {
        "request_id": [f"R{i}" for i in range(n)],
        "category": category if not isinstance(category, str) else [category] * n,
        "district": cols.pop("district", ["13"] * n),
        "lon": np.asarray(lon, dtype=float),
        "lat": np.asarray(lat, dtype=float),
        "requested_at": cols.pop("requested_at", [T0] * n),
    }
    data.update(cols)
    return pd.DataFrame(data)


def hex_counts(frame: pd.DataFrame, resolution: int) -> pd.DataFrame:
    """What the database counts (``GROUP BY`` cell, category / district), done by hand."""
    ok = frame["lon"].notna() & frame["lat"].notna()
    located = frame[ok]
    cells = [h3.str_to_int(c) for c in cell_ids(located["lon"], located["lat"], resolution)]
    work = located.assign(cell=cells)
    by_cat = work.groupby(["cell", "category"], dropna=False).size().rename("n").reset_index()
    by_dist = work.groupby(["cell", "district"], dropna=False).size().rename("n").reset_index()
    if located.empty:
        by_cat = pd.DataFrame(columns=["cell", "category", "n"])
    return hex_table(by_cat, by_dist)


def _uniform(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(BOX[0], BOX[2], n), rng.uniform(BOX[1], BOX[3], n)


# --------------------------------------------------------------------------- hexagons


def test_hex_counts_counts_located_points_per_cell() -> None:
    lon = [-118.3, -118.3, -118.3, -118.2, -118.2, np.nan]
    lat = [34.05, 34.05, 34.05, 34.06, 34.06, 34.0]
    f = _frame(lon, lat, category=["a", "a", "b", "c", "c", "a"],
               district=["13", "13", "1", None, "14", "13"])
    out = hex_counts(f, 8)
    assert out["count"].tolist() == [3, 2]
    assert out["category"].tolist() == ["a", "c"]
    assert out["district"].tolist() == ["13", "14"]
    # (lon, lat) -> (lat, lng) for h3
    assert out["cell"].iloc[0] == h3.latlng_to_cell(34.05, -118.3, 8)
    assert hex_counts(f.iloc[5:], 8).empty


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-118.6, -118.1), st.floats(33.7, 34.3), st.booleans()),
        min_size=0, max_size=60,
    ),
    st.integers(5, 10),
)
def test_hex_counts_sum_to_the_located_requests(points, resolution) -> None:  # type: ignore[no-untyped-def]
    lon = [x if keep else np.nan for x, _, keep in points]
    lat = [y for _, y, _ in points]
    out = hex_counts(_frame(lon, lat), resolution)
    assert int(out["count"].sum()) == sum(1 for *_, keep in points if keep)
    assert out["cell"].is_unique
    assert (out["count"] > 0).all()


def test_area_cells_of_a_polygon() -> None:
    import shapely

    box = shapely.box(*BOX)
    cells = area_cells(box, 8)
    # (lat, lng) -> (lon, lat)
    centres = [h3.cell_to_latlng(c)[::-1] for c in cells]
    assert all(shapely.contains_xy(box, x, y) for x, y in centres)
    assert 100 < len(cells) < 160  # about 102 km2 / 0.737 km2 per cell


def test_study_area_pads_occupied_cells_with_empty_rings() -> None:
    cell = h3.latlng_to_cell(34.05, -118.3, 8)
    assert len(study_area([cell], 0)) == 1
    assert len(study_area([cell], 1)) == 7
    assert len(study_area([cell], 2)) == 19


# --------------------------------------------------------------------------- Gi*


def test_bh_adjust_matches_the_textbook_example() -> None:
    # R: p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05, 0.5), "BH")
    got = bh_adjust([0.01, 0.04, 0.03, 0.02, 0.05, 0.5])
    assert np.allclose(got, [0.06, 0.06, 0.06, 0.06, 0.06, 0.5])
    assert bh_adjust([]).size == 0


def test_gi_star_z_scores_equal_esda() -> None:
    # esda's own example (esda/getisord.py, G_Local docstring): six points, distance
    # band 15, G_Local(y, w, transform="B", star=True).Zs
    points = [(10, 10), (20, 10), (40, 10), (15, 20), (30, 20), (30, 30)]
    y = [2, 3, 3.2, 5, 8, 7]
    neighbours = [[j for j, q in enumerate(points) if j != i and math.dist(p, q) <= 15]
                  for i, p in enumerate(points)]
    expected = [-1.39727626, -0.28917762, 0.65064964, -0.28917762, 1.23452088, 2.02424331]
    assert np.allclose(gi_star_z(y, neighbours), expected, atol=1e-8)
    with pytest.raises(ValueError, match="neighbour lists"):
        gi_star_z(y, neighbours[:2])


def test_gi_star_on_cells_uses_the_same_statistic() -> None:
    lon, lat = _uniform(400, 3)
    spots = gi_star(hex_counts(_frame(lon, lat), 8))
    cells = spots["cell"].tolist()
    index = {c: i for i, c in enumerate(cells)}
    neighbours = [[index[d] for d in h3.grid_disk(c, 1) if d != c and d in index]
                  for c in cells]
    assert np.allclose(gi_star_z(spots["count"], neighbours), spots["z"], atol=1e-12)
    assert spots["neighbours"].tolist() == [len(nb) for nb in neighbours]


def _planted() -> pd.DataFrame:
    lon, lat = _uniform(1500, 11)
    rng = np.random.default_rng(12)
    # 150 requests within ~300 m of one corner: (lon, lat) of the cluster centre
    c_lon, c_lat = -118.32, 34.03
    lon = np.concatenate([lon, c_lon + rng.normal(0, 0.0025, 150)])
    lat = np.concatenate([lat, c_lat + rng.normal(0, 0.0025, 150)])
    return _frame(lon, lat)


def test_gi_star_finds_a_planted_cluster() -> None:
    counts = hex_counts(_planted(), 8)
    spots = gi_star(counts)
    centre = h3.latlng_to_cell(34.03, -118.32, 8)
    hot = spots[spots["spot"] == "hot"]
    assert centre in set(hot["cell"])
    assert spots.loc[spots["cell"] == centre, "confidence"].iloc[0] in ("95%", "99%")
    # every hot cell touches the cluster (within 2 rings of its centre)
    assert set(hot["cell"]) <= set(h3.grid_disk(centre, 2))
    # zero-count padding takes part, so the study area is larger than the occupied cells
    assert (spots["count"] == 0).any()
    assert set(spots["spot"]) <= {"hot", "cold", ""}


def _random_over(area: list[str], n: int, seed: int) -> pd.DataFrame:
    """Complete spatial randomness over a set of cells: n points in uniformly drawn cells."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(area), n)
    # (lat, lng) -> (lon, lat)
    lat, lon = np.array([h3.cell_to_latlng(area[i]) for i in picks]).T
    return _frame(lon, lat)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_gi_star_flags_nothing_on_uniform_random_points_after_fdr(seed: int) -> None:
    centre = h3.latlng_to_cell(34.05, -118.3, 8)
    area = sorted(h3.grid_disk(centre, 8))  # 217 cells
    counts = hex_counts(_random_over(area, 2000, seed), 8)
    spots = gi_star(counts, area=area)
    assert len(spots) == len(area)
    assert (spots["p"] <= 0.05).sum() > 0  # some raw p-values pass by chance ...
    assert (spots["spot"] == "").all()  # ... none survives Benjamini-Hochberg
    assert (spots["gi_bin"] == 0).all()


def test_permutation_p_values_are_seeded_and_close_to_the_exact_ones() -> None:
    counts = hex_counts(_planted(), 8)
    a = gi_star(counts, GiStarParams(method="permutation", permutations=999, seed=7))
    b = gi_star(counts, GiStarParams(method="permutation", permutations=999, seed=7))
    exact = gi_star(counts)
    assert a["p"].tolist() == b["p"].tolist()
    merged = a.merge(exact, on="cell", suffixes=("_perm", "_exact"))
    # Monte Carlo error of a p-value from 999 permutations is at most about 0.032
    assert (merged["p_perm"] - merged["p_exact"]).abs().max() < 0.1
    with pytest.raises(ValueError, match="method"):
        GiStarParams(method="bootstrap")


def test_gi_star_on_a_flat_surface_is_all_grey() -> None:
    cell = h3.latlng_to_cell(34.05, -118.3, 8)
    counts = pd.DataFrame({"cell": list(h3.grid_disk(cell, 2)), "count": 4})
    spots = gi_star(counts, GiStarParams(pad_rings=0))
    assert (spots["z"] == 0).all() and (spots["spot"] == "").all()


# --------------------------------------------------------------------------- repeats


def test_repeat_locations_ranks_spots_and_lists_their_requests() -> None:
    # (lon, lat): three graffiti reports within ~10 m, two dumping reports at another
    # wall, one lone graffiti report, and bulky items at the first spot (not counted)
    lon = [-118.30000, -118.30005, -118.29995, -118.20000, -118.20003, -118.25, -118.30000]
    lat = [34.05000, 34.05003, 34.04998, 34.06000, 34.06002, 34.07, 34.05000]
    cats = ["graffiti_removal"] * 3 + ["illegal_dumping"] * 2 + ["graffiti_removal",
                                                                "bulky_items"]
    times = [T0 + timedelta(days=d) for d in (3, 1, 2, 0, 5, 1, 1)]
    f = _frame(lon, lat, category=cats, requested_at=times,
               address=["1 MAIN ST", "1 MAIN ST", "3 MAIN ST", "9 OAK", "9 OAK", "X", "1 MAIN"])
    out = repeat_locations(f, ("graffiti_removal", "illegal_dumping"))  # a pack's sweeps
    assert out["requests"].tolist() == [3, 2]
    assert out["request_ids"].iloc[0] == "R1, R2, R0"  # oldest first
    assert out["ids"].iloc[1] == ["R3", "R4"]
    assert out["address"].iloc[0] == "1 MAIN ST"
    assert out["categories"].iloc[1] == "illegal_dumping"
    assert repeat_locations(f, ("graffiti_removal",), min_requests=4).empty
    assert repeat_locations(f)["requests"].iloc[0] == 4  # every category by default


# --------------------------------------------------------------------------- sweeps


def test_sweep_stops_turn_hot_spots_into_low_priority_stops() -> None:
    spots = gi_star(hex_counts(_planted(), 8))
    stops = sweep_stops(spots, {"graffiti_removal": 900}, top=3)
    assert 1 <= len(stops) <= 3
    assert all(isinstance(s, Stop) for s in stops)
    first = stops[0]
    assert first.request_id == SWEEP_PREFIX + spots.loc[spots["spot"] == "hot", "cell"].iloc[0]
    assert (first.category, first.district, first.service_s, first.urgency, first.size) == (
        "graffiti_removal", "13", 900, 0.0, 1)
    assert first.prize == min(s.prize for s in stops) and not first.overdue
    assert sweep_stops(spots, {"bulky_items": 300}) == []
    assert sweep_stops(spots, {"graffiti_removal": 900}, top=0) == []
    area = sorted(h3.grid_disk(h3.latlng_to_cell(34.05, -118.3, 8), 8))
    uniform = gi_star(hex_counts(_random_over(area, 2000, 5), 8), area=area)
    assert sweep_stops(uniform, {"graffiti_removal": 900}) == []


# --------------------------------------------------------------------------- over time


def test_period_comparison_against_the_previous_period() -> None:
    assert previous_period(date(2020, 1, 8), date(2020, 1, 14)) == (date(2020, 1, 1),
                                                                   date(2020, 1, 7))
    days = ([T0] * 30 + [T0 - timedelta(days=7)] * 20          # district 1: 20 -> 30
            + [T0] * 5 + [T0 - timedelta(days=7)] * 2           # district 2: 2 -> 5
            + [T0 - timedelta(days=30)] * 9)                    # district 1, too old
    district = ["1"] * 50 + ["2"] * 7 + ["1"] * 9
    f = _frame([0.0] * len(days), [0.0] * len(days), requested_at=days, district=district)
    local = pd.to_datetime(f["requested_at"], utc=True).dt.tz_convert(LA).dt.date

    def counted(first: date, last: date) -> pd.DataFrame:  # the GROUP BY district, by hand
        inside = f[(local >= first) & (local <= last)]
        return inside.groupby("district").size().rename("n").reset_index()

    prev = previous_period(date(2020, 1, 6), date(2020, 1, 12))
    out = period_comparison(counted(date(2020, 1, 6), date(2020, 1, 12)), counted(*prev))
    assert out.to_dict("records") == [
        {"district": "1", "previous": 20, "current": 30, "change": 10, "change_pct": 50.0,
         "small_sample": False},
        {"district": "2", "previous": 2, "current": 5, "change": 3, "change_pct": 150.0,
         "small_sample": True},
    ]


# --------------------------------------------------------------------------- KPIs


def _requests() -> pd.DataFrame:
    """25 graffiti requests in district 14 closed in 1..25 h, 5 in district 1 in 1 h."""
    n14, n1 = 25, 5
    req = [T0] * (n14 + n1)
    closed = [T0 + timedelta(hours=h) for h in range(1, n14 + 1)] + [T0 + timedelta(hours=1)] * n1
    return pd.DataFrame({
        "request_id": [f"R{i}" for i in range(n14 + n1)],
        "category": "graffiti_removal",
        "district": ["14"] * n14 + ["1"] * n1,
        "channel": ["app"] * 10 + ["phone"] * 20,
        "status": ["completed"] * 24 + ["closed_not_fixed"] + ["completed"] * 4 + ["new"],
        "requested_at": pd.to_datetime(req, utc=True),
        "closed_at": pd.to_datetime(pd.Series([*closed[:-1], None]), utc=True),
        "first_action_at": pd.to_datetime(
            pd.Series([T0 + timedelta(minutes=30)] * (n14 + n1 - 1) + [None]), utc=True),
    })


@pytest.fixture
def stored(db):  # type: ignore[no-untyped-def]
    """:func:`_requests` stored, so the KPIs come from the database's own counts."""
    rows = []
    for rec in _requests().to_dict("records"):
        closed = rec["closed_at"] if pd.notna(rec["closed_at"]) else None
        first = rec["first_action_at"] if pd.notna(rec["first_action_at"]) else None
        rows.append({
            "source": "test", "external_id": rec["request_id"], "service_code": "Graffiti",
            "category": rec["category"], "description": "", "address": "", "zipcode": "",
            "lon": None, "lat": None, "district": rec["district"], "channel": rec["channel"],
            "status": rec["status"], "requested_at": rec["requested_at"].to_pydatetime(),
            "updated_at": None, "closed_at": None if closed is None else closed.to_pydatetime(),
            "first_action_at": None if first is None else first.to_pydatetime(),
            "assigned_org": "", "priority": 0, "size": 1, "extra": {}, "content_hash": "",
            "status_owner": "source", "overrides": [],
            "service_day": rec["requested_at"].tz_convert(LA).date(),
        })
    with UnitOfWork(db, actor="test") as uow:
        uow.requests.insert_many(rows)
        uow.commit()
    return db


@pytest.mark.db
def test_small_samples_are_flagged_and_never_ranked(stored) -> None:  # type: ignore[no-untyped-def]
    with UnitOfWork(stored) as uow:
        f = kpis(uow, load_city_pack("los_angeles"), MapFilter()).durations
    out = duration_summary(f, "close_h", ["category", "district"])
    assert out["district"].tolist() == ["14", "1"]  # district 1 is faster but small
    big, small = out.iloc[0], out.iloc[1]
    assert (big["n"], big["median_h"], big["small_sample"], big["rank"]) == (25, 13.0, False, 1)
    assert big["p90_h"] == pytest.approx(22.6)
    assert (small["n"], small["small_sample"]) == (4, True) and pd.isna(small["rank"])
    assert SMALL_SAMPLE == 20


@pytest.mark.db
def test_time_to_first_action_and_sla(stored, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    la = load_city_pack("los_angeles")
    with UnitOfWork(stored) as uow:
        monkeypatch.setattr(uow, "now", lambda: T0 + timedelta(hours=30))
        figures = kpis(uow, la, MapFilter())
        by_district = uow.stats.sla_counts(MapFilter().to_request_filter(LA),
                                           {"graffiti_removal": 24.0}, by=("district",))
    first = duration_summary(figures.durations, "first_action_h", [])
    assert first["median_h"].iloc[0] == 0.5 and first["n"].iloc[0] == 29
    sla = figures.sla.set_index("category").loc["graffiti_removal"]
    # 24 of the 29 crew-closed within 24 h; the one open request is 30 h old
    assert (sla["closed"], sla["within_sla"], sla["compliance_pct"], sla["open_past_sla"]) \
        == (29, 28, 96.6, 1)
    d14 = by_district.set_index("district").loc["14"]
    assert (d14["closed"], d14["within"]) == (25, 24)


@pytest.mark.db
def test_outcomes_keep_fixed_and_not_fixed_apart(stored) -> None:  # type: ignore[no-untyped-def]
    with UnitOfWork(stored) as uow:
        counts = uow.stats.count_by(MapFilter().to_request_filter(LA), ("district", "status"))
    from dispatch.analytics.kpis import outcomes

    rows = outcomes(counts, by="district").set_index("district").to_dict("index")
    assert [rows["14"][k] for k in ("fixed", "closed_not_fixed", "open", "total")] == [24, 1, 0,
                                                                                      25]
    assert [rows["1"][k] for k in ("fixed", "open")] == [4, 1]


@pytest.mark.db
def test_backlog_and_volume(stored, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    la = load_city_pack("los_angeles")
    with UnitOfWork(stored) as uow:
        monkeypatch.setattr(uow, "now", lambda: T0 + timedelta(days=2))
        figures = kpis(uow, la, MapFilter())
    assert figures.backlog.to_dict("records") == [
        {"category": "graffiti_removal", "age": "1-3 days", "requests": 1}]
    by_channel = volume(figures.daily, "channel", None)
    assert by_channel.to_dict("records") == [{"channel": "phone", "requests": 20},
                                             {"channel": "app", "requests": 10}]
    weekly = volume(figures.daily, None, "week")
    assert weekly.to_dict("records") == [{"period": date(2020, 1, 6), "requests": 30}]
    with pytest.raises(ValueError, match="period"):
        volume(figures.daily, None, "fortnight")


def test_crew_productivity_per_shift() -> None:
    routes = pd.DataFrame({
        "plan_id": [1, 1, 2],
        "service_date": [date(2020, 1, 6), date(2020, 1, 6), date(2020, 1, 7)],
        "crew": ["A", "B", "A"],
        "district": ["1", "1", "1"],
        "stops": [10, 8, 12],
        "done": [9, 8, 11],
        "cant_complete": [1, 0, 1],
        "drive_s": [3600, 7200, 3600],
        "service_s": [10800, 7200, 10800],
        "distance_m": [1, 1, 1],
    })
    out = crew_productivity(routes, small_sample=2).set_index("crew")
    rows = out.to_dict("index")
    assert [rows["A"][k] for k in ("shifts", "done", "done_per_shift", "drive_h", "service_h")] \
        == [2, 20, 10.0, 2.0, 6.0]
    assert rows["A"]["drive_share_pct"] == 25.0
    assert bool(rows["B"]["small_sample"]) and rows["B"]["rank"] is None
    assert crew_productivity(routes.iloc[:0]).empty
