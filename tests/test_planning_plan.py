"""plan_day on a small synthetic city: validity, determinism, reasons, exports."""

from __future__ import annotations

import csv
import io
import itertools
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_planning_helpers import DAY, DEPOTS, ITS, TZ, at, crew, roster, stops

from dispatch.errors import PlanningError
from dispatch.planning import HaversineTravel, Plan, Stop, plan_day, validate_plan
from dispatch.planning.problem import ReasonKind, Slack

TRAVEL = HaversineTravel()


def _plan(st_: list[Stop], crews=None, **kw: object) -> Plan:  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "day": DAY,
        "tz": TZ,
        "iterations": ITS,
        "max_workers": 1,
        "city": "test",
    }
    args.update(kw)
    return plan_day(st_, crews if crews is not None else roster(), DEPOTS, **args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def base() -> tuple[list[Stop], Plan]:
    s = stops(40)
    return s, _plan(s)


def test_plan_is_valid_and_complete(base: tuple[list[Stop], Plan]) -> None:
    s, plan = base
    assert validate_plan(plan, roster(), DEPOTS, TRAVEL, s) == []
    assert plan.totals()["stops_planned"] + len(plan.unplanned) == len(s)
    assert plan.totals()["stops_planned"] >= 30
    assert all(u.reason for u in plan.unplanned)
    assert {r.crew for r in plan.routes} == {c.name for c in roster()}


def test_routes_respect_skills_and_lunch(base: tuple[list[Stop], Plan]) -> None:
    _, plan = base
    for r in plan.routes:
        for p in r.stops:
            assert p.stop.category in r.skills
        if r.stops and r.end > at(10, 30):
            assert r.brk is not None
            assert at(10, 30) <= r.brk.start <= at(12, 30)
            assert r.brk.end - r.brk.start == timedelta(minutes=30)
        assert r.start >= at(6) and r.end <= at(14, 30)


def test_same_seed_same_json(base: tuple[list[Stop], Plan]) -> None:
    s, plan = base
    again = _plan(s)
    assert again.to_json() == plan.to_json()


def test_parallel_equals_inline(base: tuple[list[Stop], Plan]) -> None:
    s, plan = base
    seen: list[tuple[int, int]] = []
    par = _plan(s, max_workers=2, progress=lambda d, t: seen.append((d, t)))
    assert par.to_json() == plan.to_json()
    assert seen[-1][0] == seen[-1][1] and len(seen) >= 2


def test_json_round_trip(base: tuple[list[Stop], Plan]) -> None:
    _, plan = base
    text = plan.to_json()
    back = Plan.from_json(text)
    assert back.to_json() == text
    d = json.loads(text)
    r = next(r for r in d["routes"] if r["stops"])
    for k in (
        "crew",
        "district",
        "skills",
        "depot",
        "shift_start",
        "shift_end",
        "capacity",
        "load",
        "distance_m",
        "drive_s",
        "service_s",
        "stops",
        "break",
    ):
        assert k in r
    assert r["shift_start"].endswith("-08:00")
    s0 = r["stops"][0]
    for k in ("request_id", "category", "district", "lon", "lat", "size", "arrival", "departure"):
        assert k in s0
    assert isinstance(s0["district"], int)


def test_json_matches_schema(base: tuple[list[Stop], Plan]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from dispatch.planning.plan import PLAN_SCHEMA_PATH

    schema = json.loads(PLAN_SCHEMA_PATH.read_text())
    _, plan = base
    jsonschema.validate(json.loads(plan.to_json()), schema)
    broken = json.loads(plan.to_json())
    broken["routes"][0]["shift_start"] = "07:00"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_from_json_rejects_garbage() -> None:
    with pytest.raises(PlanningError):
        Plan.from_json('{"date": "2020-01-03"}')


def test_exports(base: tuple[list[Stop], Plan]) -> None:
    _, plan = base
    gj = plan.to_geojson()
    routes = [f for f in gj["features"] if f["properties"]["kind"] == "route"]
    lines = [f for f in routes if f["geometry"] is not None]
    points = [f for f in gj["features"] if f["properties"]["kind"] == "stop"]
    assert len(routes) == len(plan.routes)
    # RFC 7946: a crew without stops has a feature but no path
    assert len(lines) == sum(1 for r in plan.routes if r.stops)
    assert all(f["geometry"]["type"] == "LineString" for f in lines)
    assert all(f["geometry"]["type"] == "Point" for f in points)
    assert len(points) == plan.totals()["stops_planned"]
    rows = list(csv.DictReader(io.StringIO(plan.to_csv())))
    assert len(rows) == plan.totals()["stops_planned"] + len(plan.unplanned)
    root = ET.fromstring(plan.to_gpx())
    ns = {"g": "http://www.topografix.com/GPX/1/1"}
    rtes = root.findall("g:rte", ns)
    assert len(rtes) == sum(1 for r in plan.routes if r.stops)
    links = plan.navigation_links()
    r = next(r for r in plan.routes if r.stops)
    p = r.stops[0]
    assert links[r.crew][0].endswith(f"destination={p.stop.lat:.6f},{p.stop.lon:.6f}")  # lat,lon


def test_more_work_than_crews_drops_least_urgent() -> None:
    s = [
        replace(x, category="bulky_items", service_s=1800, district="1") for x in stops(60, seed=3)
    ]
    s = [replace(x, urgency=3.0 if i % 6 == 0 else 0.1) for i, x in enumerate(s)]
    crews = [crew("A-bulky-1", ("bulky_items",), "A", ("1",))]
    plan = _plan(s, crews, iterations=300)
    assert validate_plan(plan, crews, DEPOTS, TRAVEL, s) == []
    assert plan.unplanned and all(u.reason.kind is ReasonKind.NOT_ENOUGH_TIME
                                  for u in plan.unplanned)
    served = {p.request_id for r in plan.routes for p in r.stops}
    overdue = {x.request_id for x in s if x.urgency > 1}
    assert overdue <= served


def test_capacity_reason() -> None:
    s = [
        replace(x, category="bulky_items", size=4, district="1", service_s=60)
        for x in stops(12, seed=4)
    ]
    crews = [crew("A-bulky-1", ("bulky_items",), "A", ("1",), capacity=20)]
    plan = _plan(s, crews)
    assert validate_plan(plan, crews, DEPOTS, TRAVEL, s) == []
    assert plan.routes[0].load <= 20
    assert len(plan.unplanned) == 7
    assert all(u.reason.kind is ReasonKind.OVER_CAPACITY for u in plan.unplanned)


def _one(**kw: object) -> Stop:
    base = Stop("X1", "bulky_items", "1", -118.26, 34.06, 600)
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stop", "absent", "kind", "text"),
    [
        (_one(lon=None, lat=None), (), ReasonKind.NO_LOCATION, "no location"),
        (_one(district="9"), (), ReasonKind.OUTSIDE_DISTRICTS,
         "outside all crews' districts: district 9"),
        (_one(district=None), (), ReasonKind.OUTSIDE_DISTRICTS, "no district"),
        (_one(category="graffiti_removal", district="1"), ("A-graffiti-1",),
         ReasonKind.NO_SKILLED_CREW, "graffiti_removal in district 1 (absent today)"),
        (_one(category="dead_animal"), (), ReasonKind.NO_SKILLED_CREW,
         "no crew with the skill: dead_animal in district 1"),
        (_one(size=99), (), ReasonKind.OVER_CAPACITY, "over capacity"),
        (_one(tw_start=at(20), tw_end=at(21)), (), ReasonKind.WINDOW_IMPOSSIBLE,
         "outside the shift"),
        (_one(tw_start=at(9), tw_end=at(8)), (), ReasonKind.WINDOW_IMPOSSIBLE, "before it starts"),
    ],
)  # fmt: skip
def test_unplanned_reasons(
    stop: Stop, absent: tuple[str, ...], kind: ReasonKind, text: str
) -> None:
    plan = _plan([stop], absent=frozenset(absent))
    assert [u.request_id for u in plan.unplanned] == ["X1"]
    assert plan.unplanned[0].reason.kind is kind
    assert text in str(plan.unplanned[0].reason)
    # the kind survives a JSON round trip; it is never parsed back from the text
    again = Plan.from_json(plan.to_json())
    assert again.unplanned[0].reason == plan.unplanned[0].reason
    assert all(r.crew not in absent for r in plan.routes)


def test_time_window_respected() -> None:
    s = stops(15, seed=5, districts=("1",))
    s = [replace(x, category="bulky_items", service_s=600) for x in s]
    s[3] = replace(s[3], tw_start=at(13), tw_end=at(13, 30))
    s[7] = replace(s[7], tw_start=at(6, 30), tw_end=at(7))
    crews = [crew("A-bulky-1", ("bulky_items",), "A", ("1",))]
    plan = _plan(s, crews)
    assert validate_plan(plan, crews, DEPOTS, TRAVEL, s) == []
    got = {p.request_id: p for r in plan.routes for p in r.stops}
    assert at(13) <= got[s[3].request_id].arrival <= at(13, 30)
    assert at(6, 30) <= got[s[7].request_id].arrival <= at(7)


def test_crews_stay_in_their_territories() -> None:
    s = [replace(x, category="bulky_items") for x in stops(45, seed=6)]
    plan = _plan(s)
    assert validate_plan(plan, roster(), DEPOTS, TRAVEL, s) == []
    bulky = [r for r in plan.routes if "bulky_items" in r.skills]
    # A (1, 2) and B (2, 3) share district 2: one group, each crew at home.
    assert {r.districts for r in bulky} == {("1", "2", "3")}
    for r in bulky:
        assert {p.stop.district for p in r.stops} <= set(r.territory)
        if r.stops:
            assert r.district in {p.stop.district for p in r.stops}
    by_crew = {r.crew: {p.stop.district for p in r.stops} for r in bulky}
    assert "3" not in by_crew["A-bulky-1"] | by_crew["A-bulky-2"]
    assert "1" not in by_crew["B-bulky-1"]
    d = json.loads(plan.to_json())
    assert {tuple(r["territory"]) for r in d["routes"] if r["crew"].startswith("B-bulky")} == {
        (2, 3)
    }


def test_focus_rounds_are_deterministic_and_parallel_equals_inline() -> None:
    # More work than crews: stops are left over, so focus rounds run.
    s = [replace(x, category="bulky_items", service_s=1500) for x in stops(90, seed=9)]
    crews = [crew("A-bulky-1", ("bulky_items",), "A", ("1", "2")),
             crew("B-bulky-1", ("bulky_items",), "B", ("2", "3")),
             crew("B-bulky-2", ("bulky_items",), "B", ("3",))]
    stats: list[dict[str, object]] = []
    inline = _plan(s, crews, stats=stats)
    assert inline.unplanned and any(int(str(x["rounds"])) > 0 for x in stats)
    assert validate_plan(inline, crews, DEPOTS, TRAVEL, s) == []
    par = _plan(s, crews, max_workers=2)
    assert par.to_json() == inline.to_json()


def test_the_cross_district_switch_is_gone() -> None:
    """Territories decide where a crew works; the old switch did nothing and is gone
    (issue 15: nothing left unused)."""
    s = [replace(x, category="bulky_items") for x in stops(30, seed=6)]
    with pytest.raises(TypeError, match="allow_cross_district"):
        _plan(s, allow_cross_district=True)


def test_slack_keeps_a_reserve_and_the_plan_says_what_is_left() -> None:
    s = [replace(x, category="bulky_items", service_s=1500, district="1")
         for x in stops(40, seed=3)]
    crews = [crew("A-bulky-1", ("bulky_items",), "A", ("1",))]
    tight = _plan(s, crews, slack=None)
    kept = _plan(s, crews, slack=Slack(share=0.1, min_minutes=30))
    reserve = round(0.1 * 8.5 * 3600)
    r = kept.routes[0]
    assert r.reserve_s == reserve and r.slack_s >= reserve
    assert tight.routes[0].reserve_s == 0
    assert len(r.stops) <= len(tight.routes[0].stops)
    assert validate_plan(kept, crews, DEPOTS, TRAVEL, s) == []
    d = json.loads(kept.to_json())["routes"][0]
    assert d["reserve_s"] == reserve and d["slack_s"] == r.slack_s
    assert kept.settings["slack"] == {"share": 0.1, "min_minutes": 30}
    # the checker holds a plan to a reserve it did not keep
    errs = validate_plan(tight, crews, DEPOTS, TRAVEL, s, slack=Slack(0.1, 30))
    assert tight.routes[0].slack_s >= reserve or any("reserve" in e for e in errs)


def test_slack_validates() -> None:
    with pytest.raises(PlanningError):
        Slack(share=0.7)
    with pytest.raises(PlanningError):
        Slack(min_minutes=-1)
    assert Slack(0.05, 15).reserve_s(8 * 3600) == 1440
    assert Slack(0.0, 15).reserve_s(8 * 3600) == 900
    assert Slack.from_dict(Slack(0.05, 15).to_dict()) == Slack(0.05, 15)
    assert Slack.from_dict(None) is None


def test_validate_plan_catches_violations(base: tuple[list[Stop], Plan]) -> None:
    s, plan = base
    bad = Plan.from_json(plan.to_json())
    r = next(r for r in bad.routes if len(r.stops) >= 2)
    r.capacity = 1
    crews = [replace(c, capacity=1) if c.name == r.crew else c for c in roster()]
    r.stops[1].arrival = r.stops[0].departure  # no time to drive
    errs = validate_plan(bad, crews, DEPOTS, TRAVEL, s)
    assert any("capacity" in e for e in errs)
    assert any("travel time" in e for e in errs)
    g = next(x for x in bad.routes if "graffiti_removal" in x.skills and x.stops)
    g.stops.append(next(p for x in bad.routes if "bulky_items" in x.skills for p in x.stops))
    errs = validate_plan(bad, crews, DEPOTS, TRAVEL, s)
    assert any("lacks skill" in e for e in errs)
    assert any("on routes" in e for e in errs)
    bad.unplanned.clear()
    bad.routes[0].stops.clear()
    assert any(
        "neither planned nor unplanned" in e for e in validate_plan(bad, crews, DEPOTS, TRAVEL, s)
    )


def test_duplicate_ids_rejected() -> None:
    s = stops(3)
    with pytest.raises(PlanningError):
        _plan([*s, s[0]])


def test_max_duration_respected() -> None:
    s = [replace(x, category="bulky_items", district="1") for x in stops(30, seed=8)]
    crews = [crew("A-bulky-1", ("bulky_items",), "A", ("1",), max_duration_s=4 * 3600)]
    plan = _plan(s, crews)
    assert validate_plan(plan, crews, DEPOTS, TRAVEL, s) == []
    r = plan.routes[0]
    assert r.end - r.start <= timedelta(hours=4)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 25),
    seed=st.integers(0, 10_000),
    absent=st.sets(st.sampled_from([c.name for c in roster()])),
)
def test_any_small_day_is_valid(n: int, seed: int, absent: set[str]) -> None:
    s = stops(n, seed=seed)
    plan = _plan(s, absent=frozenset(absent), iterations=50)
    assert (
        validate_plan(plan, [c for c in roster() if c.name not in absent], DEPOTS, TRAVEL, s) == []
    )
    assert all(u.reason for u in plan.unplanned)


def test_whole_city_crews_end_to_end() -> None:
    crews = [crew(f"C-{i}", ("bulky_items", "graffiti_removal"), "A", ()) for i in range(2)]
    s = [replace(x, category="bulky_items") for x in stops(20)]
    s[0] = replace(s[0], district=None)
    plan = _plan(s, crews)
    assert validate_plan(plan, crews, DEPOTS, TRAVEL, s) == []
    assert plan.totals()["stops_planned"] == 20


def test_single_worker_runs_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import dispatch.planning.planner as planner

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("max_workers=1 must not start processes")

    monkeypatch.setattr(planner, "solver_pool", boom)
    plan = _plan(stops(40), max_workers=1)
    assert plan.totals()["stops_planned"] > 0
    with pytest.raises(AssertionError, match="must not start"):
        _plan(stops(40), max_workers=2)


class _Roads(HaversineTravel):
    """Straight-line times; 'roads' that bend through the midpoint of every leg."""

    def path(self, lonlat: np.ndarray) -> list[tuple[float, float]]:
        out = [(float(lonlat[0, 0]), float(lonlat[0, 1]))]
        for a, b in itertools.pairwise(lonlat):
            out += [(float(a[0]), float(b[1])), (float(b[0]), float(b[1]))]
        return out


def test_route_geometry_follows_the_roads_on_the_map_and_in_gpx() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from dispatch.planning.plan import PLAN_SCHEMA_PATH

    s = stops(20, seed=2)
    plan = _plan(s, travel=_Roads())
    used = [r for r in plan.routes if r.stops]
    assert used and all(r.geometry and len(r.geometry) == 2 * len(r.stops) + 3 for r in used)
    assert all(r.geometry is None for r in plan.routes if not r.stops)
    lines = {f["properties"]["crew"]: f for f in plan.to_geojson()["features"]
             if f["geometry"] is not None and f["geometry"]["type"] == "LineString"}
    r = used[0]
    assert lines[r.crew]["geometry"]["coordinates"] == [list(p) for p in r.geometry or []]
    assert lines[r.crew]["properties"]["follows_roads"] is True
    root = ET.fromstring(plan.to_gpx())
    ns = {"g": "http://www.topografix.com/GPX/1/1"}
    trks = root.findall("g:trk", ns)
    assert len(trks) == len(used)
    assert len(trks[0].findall("g:trkseg/g:trkpt", ns)) == len(used[0].geometry or [])
    text = plan.to_json()
    assert Plan.from_json(text).to_json() == text
    jsonschema.validate(json.loads(text), json.loads(PLAN_SCHEMA_PATH.read_text()))
    # straight-line plans keep straight legs (no geometry, no tracks)
    flat = _plan(s)
    assert all(r.geometry is None for r in flat.routes)
    assert not ET.fromstring(flat.to_gpx()).findall("g:trk", ns)


def test_plan_from_routes_scores_a_plan_like_the_planner() -> None:
    from dispatch.planning.planner import plan_from_routes

    s = stops(40)
    plan = _plan(s)
    routes = {r.crew: [p.request_id for p in r.stops] for r in plan.routes}
    again = plan_from_routes(routes, s, roster(), DEPOTS, day=DAY, tz=TZ)
    assert [r.to_dict() for r in again.routes] == [r.to_dict() for r in plan.routes]
    assert [u.request_id for u in again.unplanned] == [u.request_id for u in plan.unplanned]
    # a stop put on a crew outside its territory is taken off with a reason
    b_only = next(x for x in s if x.district == "3" and x.category == "bulky_items")
    bad = {**routes, "A-bulky-1": [b_only.request_id, *routes["A-bulky-1"]]}
    bad["B-bulky-1"] = [rid for rid in bad["B-bulky-1"] if rid != b_only.request_id]
    scored = plan_from_routes(bad, s, roster(), DEPOTS, day=DAY, tz=TZ)
    assert validate_plan(scored, roster(), DEPOTS, TRAVEL, s) == []
    assert b_only.request_id not in {p.request_id for p in scored.route("A-bulky-1").stops}


def test_retime_routes_reports_lateness() -> None:
    from dispatch.planning.planner import retime_routes

    s = [replace(x, category="bulky_items", service_s=1500, district="1")
         for x in stops(40, seed=3)]
    crews = [crew("A-bulky-1", ("bulky_items",), "A", ("1",))]
    plan = _plan(s, crews, slack=Slack(0.1, 30))
    same = retime_routes(plan, crews, TRAVEL, 1.0)
    assert same["A-bulky-1"] == -plan.routes[0].slack_s
    slow = retime_routes(plan, crews, TRAVEL, 3.0)
    assert slow["A-bulky-1"] > same["A-bulky-1"]
