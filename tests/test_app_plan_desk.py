"""The plan desk at city scale (issue 13, "Plan and assign for 80 routes").

A supervisor plans thousands of stops for dozens of crews. The tester saw the solver's
knobs among the daily controls, a stop picker without addresses, move targets across
the whole city, removing a crew that holds locks end in a refusal naming every crew,
an unreadable map with no way to show one route, and every click redraw the page. The
page is driven through AppTest on a planned day of the CD 13/14 sample; the pure
ranking of move targets is tested directly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from signin import sign_in_at
from streamlit.testing.v1 import AppTest, local_script_runner

from dispatch.auth import Principal, Role
from dispatch.citypack import load_city_pack
from dispatch.cli import main
from dispatch.planning import PlannedStop, Route, Stop, replan
from dispatch.planning.targets import MoveTarget, first_with_room, rank_move_targets
from dispatch.services import workflow as wf
from dispatch.store import UnitOfWork, make_engine
from dispatch.store.plans import plan_from_rows
from geo import maps

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).parent / "data" / "workflow" / "la_day_cd13_cd14_open.csv"
DAY = dt.date(2020, 1, 3)
CITY = load_city_pack("los_angeles")
SUPERVISOR = Principal("ana", Role.SUPERVISOR)


def _seed(tmp: Path, *, assign: bool = False) -> str:
    """A store with the sample day (open that morning) planned, maybe assigned."""
    url = f"sqlite:///{tmp / 'desk.db'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "import", str(SAMPLE), "--rejects", str(tmp / "r.csv")]) == 0
    assert main(["--db", url, "clock", "set", "2020-01-03T07:00"]) == 0
    args = ["--db", url, "plan", "--date", DAY.isoformat()]
    assert main([*args, "--assign"] if assign else args) == 0
    return url


@pytest.fixture(scope="module")
def planned_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A draft plan of the sample day (read-only tests share it)."""
    return _seed(tmp_path_factory.mktemp("desk"))


@pytest.fixture
def fresh_url(tmp_path: Path) -> str:
    """An assigned plan of the sample day, for a test that changes it."""
    return _seed(tmp_path, assign=True)


def _page(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CURBSIDE_CITY", "los_angeles")
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app_pages" / "plan.py"), default_timeout=90)
    sign_in_at(at, url, SUPERVISOR)
    return at


def _plan_row(url: str) -> Any:
    engine = make_engine(url)
    with UnitOfWork(engine) as uow:
        row = uow.plans.for_date("los_angeles", DAY)[0]
        plan = plan_from_rows(row)
        labels = uow.requests.labels(s.request_id for r in row.routes for s in r.stops)
        facts = {"id": row.id, "plan": plan, "labels": labels,
                 "routes": {r.crew_name: [s.request_id for s in r.stops] for r in row.routes},
                 "stop_ids": {r.crew_name: [s.id for s in r.stops] for r in row.routes}}
    engine.dispose()
    return facts


def _selectbox(at: AppTest, label: str) -> Any:
    found = [s for s in at.selectbox if s.label.startswith(label)]
    assert len(found) == 1, [s.label for s in at.selectbox]
    return found[0]


def _walk(node: Any) -> Iterator[Any]:
    children = getattr(node, "children", None)
    for child in (children.values() if isinstance(children, dict) else []):
        yield child
        yield from _walk(child)


def _route_list(at: AppTest) -> str:
    """The key of the route list (it names the crews listed, so it changes with them)."""
    (key,) = [d.key for d in at.dataframe if str(d.key or "").startswith("route_list_")]
    return str(key)


def _map_payload(at: AppTest) -> str:
    """The folium map's HTML, unescaped enough to search for names."""
    maps_ = [el for el in _walk(at._tree) if getattr(el, "type", "") == "component_instance"]
    assert len(maps_) == 1
    payload = str(maps_[0].proto)
    payload = re.sub(r"\\+u003c", "<", re.sub(r"\\+u003e", ">", payload))
    return re.sub(r"\\+", "", payload)


# ------------------------------------------------------------- 1. solver knobs


def test_solver_seed_and_time_limit_are_under_advanced(
    planned_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page(planned_url, monkeypatch).run()
    assert not at.exception
    advanced = [e for e in at.sidebar.expander if e.label == "Advanced"]
    assert len(advanced) == 1
    assert [s.label for s in advanced[0].slider] == ["Solver time per district (s)"]
    assert [n.label for n in advanced[0].number_input] == ["Seed"]
    # and nowhere else among the daily controls
    assert len(at.sidebar.slider) == 1 and len(at.sidebar.number_input) == 1
    # the defaults still reach the planner
    assert advanced[0].slider[0].value == 3 and advanced[0].number_input[0].value == 1


# ------------------------------------------------------------ 2. stop picker


def test_stop_picker_names_the_address_category_and_crew(
    planned_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = _plan_row(planned_url)
    at = _page(planned_url, monkeypatch).run()
    assert not at.exception
    crew_of = {pk: crew for crew, pks in facts["routes"].items() for pk in pks}
    # the picker lists one crew's stops (a city's 2,000 in one list were unusable)
    crews = [c for c, pks in facts["routes"].items() if pks]
    assert _selectbox(at, "Crew").options == crews
    shown: set[str] = set()
    for crew in crews:
        at = at.selectbox(key="move_from_crew").set_value(crew).run()
        picker = _selectbox(at, "Stop")
        assert len(picker.options) == len(facts["routes"][crew])
        shown |= set(picker.options)
    for pk, crew in crew_of.items():
        rid, address, category = facts["labels"][pk]
        assert address
        expected = f"{address} · {CITY.category_labels[category]} · {crew} · {rid}"
        assert expected in shown, (expected, sorted(shown)[:3])
    assert all(not o.startswith("1-") for o in picker.options)  # no request id first


# ------------------------------------------------------------- 3. move targets


T0 = dt.datetime(2020, 1, 3, 14, 0, tzinfo=dt.UTC)
ZONE = ZoneInfo("America/Los_Angeles")


def _stop(rid: str, lon: float | None, lat: float | None, district: str | None = "13",
          category: str = "bulky_items") -> Stop:
    return Stop(rid, category, district, lon, lat, 300)


def _route(crew: str, stops: list[Stop], *, territory: tuple[str, ...] = ("13",),
           skills: tuple[str, ...] = ("bulky_items",),
           depot: tuple[float, float] = (-118.30, 34.05)) -> Route:
    return Route(crew=crew, skills=skills, district=territory[0] if territory else None,
                 districts=territory, depot="D", depot_lon=depot[0], depot_lat=depot[1],
                 shift_start=T0, shift_end=T0 + dt.timedelta(hours=8), capacity=40,
                 start=T0, end=T0 + dt.timedelta(hours=8),
                 stops=[PlannedStop(s, T0, T0) for s in stops], crew_districts=territory)


HERE = _stop("x", -118.290, 34.070)
ROUTES = [
    _route("on-it", [HERE]),
    _route("near", [_stop("a", -118.291, 34.071)]),                 # ~140 m
    _route("far", [_stop("b", -118.25, 34.09)]),                    # ~4 km
    _route("empty-near-depot", [], depot=(-118.289, 34.069)),       # depot ~140 m
    _route("east-la", [_stop("c", -118.289, 34.070, "14")], territory=("14",)),
    _route("graffiti", [_stop("d", -118.290, 34.070, category="graffiti_removal")],
           skills=("graffiti_removal",)),
    _route("whole-city", [_stop("e", -118.40, 34.10, "5")], territory=()),
]


@pytest.mark.parametrize(
    ("stop", "current", "territories", "exclude", "expected"),
    [
        # nearest first; the crew it is on, other districts and other skills left out
        (HERE, "on-it", None, (), ["near", "empty-near-depot", "far", "whole-city"]),
        # the city pack's territory narrows what the route was planned with
        (HERE, "on-it", {"far": ("14",)}, (), ["near", "empty-near-depot", "whole-city"]),
        # a crew taken out of the plan is not a target
        (HERE, "on-it", None, ("near",), ["empty-near-depot", "far", "whole-city"]),
        # a stop in district 14 goes only to crews serving 14 (or the whole city)
        (_stop("y", -118.29, 34.07, "14"), None, None, (), ["east-la", "whole-city"]),
        # a stop in no district: only crews serving the whole city
        (_stop("z", -118.29, 34.07, None), None, None, (), ["whole-city"]),
        # a stop without a location: eligible crews by name
        (_stop("n", None, None), "on-it", None, (),
         ["empty-near-depot", "far", "near", "whole-city"]),
        # a graffiti stop: graffiti crews only
        (_stop("g", -118.29, 34.07, category="graffiti_removal"), None, None, (), ["graffiti"]),
    ],
    ids=["nearest-first", "pack-territory", "excluded", "other-district", "no-district",
         "no-location", "other-skill"],
)
def test_move_targets_are_ranked_within_territory(
    stop: Stop, current: str | None, territories: dict[str, tuple[str, ...]] | None,
    exclude: tuple[str, ...], expected: list[str],
) -> None:
    assert [t.crew for t in rank_move_targets(stop, current, ROUTES, territories,
                                              exclude=exclude)] == expected


def test_move_target_distance_is_to_the_nearest_stop_or_the_depot() -> None:
    ranked = {t.crew: t for t in rank_move_targets(HERE, "on-it", ROUTES)}
    assert ranked["near"].measured_from == "stop"
    assert 100 < (ranked["near"].distance_m or 0) < 200
    assert ranked["empty-near-depot"].measured_from == "depot"
    assert 3000 < (ranked["far"].distance_m or 0) < 6000
    # a route's own copy of the stop does not count as its nearest stop
    route = _route("twin", [_stop("x", -118.290, 34.070), _stop("f", -118.27, 34.07)])
    (twin,) = rank_move_targets(HERE, None, [route])
    assert (twin.distance_m or 0) > 1000


@pytest.mark.parametrize(("end_h", "reserve_s", "max_h", "stops", "spare_s", "spare_load"), [
    (6, 0, None, 3, 2 * 3600, 37),          # back two hours before the shift ends
    (8, 0, None, 3, 0, 37),                 # back at the shift's end: no time left
    (6, 1800, None, 3, 5400, 37),           # the reserve it keeps is not spare
    (6, 0, 5, 3, 0, 37),                    # a 5-hour day ends before the shift does
    (2, 0, None, 40, 6 * 3600, 0),          # every item of capacity used
])
def test_move_targets_say_how_much_room_each_crew_has(
    end_h: int, reserve_s: int, max_h: int | None, stops: int, spare_s: int,
    spare_load: int,
) -> None:
    """A move to a crew without room is refused: the targets offered now say which crews
    have time and capacity left, so a supervisor need not find out by trying."""
    route = replace(_route("c", [_stop(f"s{i}", -118.29, 34.07) for i in range(stops)]),
                    end=T0 + dt.timedelta(hours=end_h), reserve_s=reserve_s,
                    max_duration_s=None if max_h is None else max_h * 3600)
    (target,) = rank_move_targets(HERE, None, [route])
    assert (target.spare_s, target.spare_load) == (spare_s, spare_load)
    assert target.has_room == (spare_s > 0 and spare_load > 0)


@pytest.mark.parametrize(("rooms", "first"), [
    ([(0, 0), (600, 2), (900, 5)], 1),  # the nearest is full: the next with room
    ([(600, 0), (0, 4), (300, 1)], 2),  # no capacity, no time, then room
    ([(600, 2), (0, 0)], 0),
    ([(0, 3), (0, 0)], 0),  # nobody has room: the nearest (the move is then refused)
    ([], 0),
])
def test_a_move_offers_the_nearest_crew_with_room_first(
    rooms: list[tuple[int, int]], first: int
) -> None:
    targets = [MoveTarget(f"C{i}", 100.0 * i, "stop", spare_s, spare_load)
               for i, (spare_s, spare_load) in enumerate(rooms)]
    assert first_with_room(targets) == first


@pytest.mark.parametrize(("rooms", "service_s", "size", "first"), [
    ([(60, 5), (600, 5)], 300, 1, 1),  # a minute left is room, not room for 5 minutes
    ([(600, 1), (600, 3)], 300, 2, 1),  # one item of capacity left, the stop is two
    ([(300, 2), (900, 9)], 300, 2, 0),  # exactly enough
    ([(60, 1), (120, 1)], 300, 1, 0),  # nobody has room for it: the nearest
])
def test_a_move_offers_the_nearest_crew_with_room_for_that_stop(
    rooms: list[tuple[int, int]], service_s: int, size: int, first: int
) -> None:
    stop = _stop("9", -118.29, 34.07)
    stop = replace(stop, service_s=service_s, size=size)
    targets = [MoveTarget(f"C{i}", 100.0 * i, "stop", spare_s, spare_load)
               for i, (spare_s, spare_load) in enumerate(rooms)]
    assert first_with_room(targets, stop) == first


def test_page_offers_only_crews_serving_the_stop_district_nearest_first(
    planned_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = _plan_row(planned_url)
    at = _page(planned_url, monkeypatch).run()
    assert not at.exception
    plan = facts["plan"]
    # one stop of each crew with stops (bulky, graffiti, dumping)
    for rid in [int(r.stops[0].request_id) for r in plan.routes if r.stops]:
        owner = next(r.crew for r in plan.routes for p in r.stops if int(p.request_id) == rid)
        at = at.selectbox(key="move_from_crew").set_value(owner).run()
        at = at.selectbox(key="move_stop").set_value(rid).run()
        assert not at.exception
        crew = next(r.crew for r in plan.routes for p in r.stops if int(p.request_id) == rid)
        stop = next(p.stop for r in plan.routes for p in r.stops if int(p.request_id) == rid)
        offered = at.selectbox(key="move_target").options
        ranked = rank_move_targets(stop, crew, plan.routes,
                                   {c.name: c.districts for c in CITY.crews})
        assert offered and len(offered) == len(ranked)
        assert [o.split(" · ")[0] for o in offered] == [t.crew for t in ranked]
        pack_crews = {c.name: c for c in CITY.crews}
        for name in (o.split(" · ")[0] for o in offered):
            assert stop.district in pack_crews[name].districts
            assert stop.category in pack_crews[name].categories
        # far fewer than every same-skill crew of the city
        same_skill = [r for r in plan.routes if stop.category in r.skills and r.crew != crew]
        assert len(offered) < len(same_skill)
        assert "km to its" in offered[0]
        assert all(o.endswith(" min free") or " · full: " in o for o in offered)
        # offered first: the nearest crew with room, not a nearer full one
        assert at.selectbox(key="move_target").value == ranked[first_with_room(ranked)].crew


# --------------------------------------------------------------- 4. route list


def test_route_list_has_a_row_per_crew_and_shows_one_route(
    planned_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = _plan_row(planned_url)
    at = _page(planned_url, monkeypatch).run()
    assert not at.exception
    table = at.dataframe(key=_route_list(at)).value
    # one row per crew with stops: at city scale some 50 idle crews would bury them
    assert len(table) == sum(1 for r in facts["plan"].routes if r.stops)
    for column in ("crew", "stops", "load", "drive", "service", "done", "can't complete",
                   "remaining"):
        assert column in table.columns
    used = [r for r in facts["plan"].routes if r.stops]
    assert len(used) >= 2
    one, other = used[0], used[1]
    row = table["crew"].tolist().index(one.crew)
    assert table["load"].iloc[row] == f"{one.load}/{one.capacity}"
    assert table["remaining"].iloc[row] == len(one.stops)
    assert "<b>" + other.crew + "</b>" in _map_payload(at)  # every route at first

    at.session_state[_route_list(at)] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert not at.exception
    (stops,) = [d.value for d in at.dataframe if "address" in d.value.columns]
    assert stops["#"].tolist() == list(range(1, len(one.stops) + 1))
    assert stops["address"].tolist() == [facts["labels"][int(p.request_id)][1]
                                         for p in one.stops]
    payload = _map_payload(at)
    assert "<b>" + one.crew + "</b>" in payload
    assert other.crew not in payload  # the other routes are hidden ...

    at.toggle(key="route_dim_others").set_value(True).run()
    payload = _map_payload(at)
    assert "<b>" + other.crew + "</b>" in payload  # ... or shown dimmed
    assert maps._DIMMED_COLOUR in payload


def test_a_route_s_stops_show_their_status_in_words(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 13, polish: labels instead of codes ("cant_complete" in the table before)
    facts = _plan_row(fresh_url)
    crew = next(c for c, pks in facts["routes"].items() if len(pks) >= 2)
    engine = make_engine(fresh_url)
    with UnitOfWork(engine, actor=f"crew:{crew}") as uow:
        wf.cannot_complete(uow, facts["stop_ids"][crew][0], crew,
                           next(iter(wf.CANT_COMPLETE_REASONS)))
    engine.dispose()
    at = _page(fresh_url, monkeypatch).run()
    row = at.dataframe(key=_route_list(at)).value["crew"].tolist().index(crew)
    at.session_state[_route_list(at)] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert not at.exception
    (stops,) = [d.value for d in at.dataframe if "address" in d.value.columns]
    assert stops["status"].tolist()[:2] == ["could not complete", "to do"]


def test_the_chosen_route_stays_chosen_when_the_list_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list's selection is a row number; a list that changed used to drop it.

    Another supervisor's move (or a re-optimise) can take a crew off the list, which
    shifts the rows below it: the supervisor's chosen route stays chosen, by crew.
    """
    url = _seed(tmp_path)
    facts = _plan_row(url)
    used = [r for r in facts["plan"].routes if r.stops]
    # a crew that will lose every stop to another (maybe idle) crew of its own group,
    # listed before the chosen one (so the chosen one's row number changes)
    at = _page(url, monkeypatch).run()
    assert not at.exception
    listed = at.dataframe(key=_route_list(at)).value["crew"].tolist()
    other, target = next((a, b) for a in sorted(used, key=lambda r: listed.index(r.crew))
                         for b in facts["plan"].routes
                         if a is not b and (a.skills, a.districts) == (b.skills, b.districts))
    one = next(r for r in used if r.crew not in {other.crew, target.crew}
               and listed.index(r.crew) > listed.index(other.crew))
    at.session_state[_route_list(at)] = {
        "selection": {"rows": [listed.index(one.crew)], "columns": []}}
    at.run()
    before = _route_list(at)
    with UnitOfWork(make_engine(url), actor=SUPERVISOR) as uow:
        plan_id = uow.plans.for_date("los_angeles", DAY)[0].id
        wf.move_stops(uow, plan_id, [int(p.request_id) for p in other.stops], target.crew)
    at.run()
    assert not at.exception
    assert _route_list(at) != before  # the list changed under the supervisor
    assert other.crew not in at.dataframe(key=_route_list(at)).value["crew"].tolist()
    (stops,) = [d.value for d in at.dataframe if "address" in d.value.columns]
    assert stops["address"].tolist() == [facts["labels"][int(p.request_id)][1]
                                         for p in one.stops]
    assert any(m.value.startswith(f"**{one.crew}** · ") for m in at.markdown)


@pytest.mark.parametrize(("others", "other_stops", "other_lines"),
                         [("dim", 1, 1), ("hide", 0, 0)])
def test_route_layer_highlights_one_crew(others: str, other_stops: int,
                                         other_lines: int) -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "LineString",
                                          "coordinates": [[-118.3, 34.0], [-118.2, 34.1]]},
         "properties": {"crew": crew}} for crew in ("A", "B")] + [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-118.25, 34.05]},
         "properties": {"kind": "stop", "crew": crew, "seq": 1}} for crew in ("A", "B")]}
    layer = maps.route_layer(doc, highlight="A", others=others)
    assert layer.counts["stops"] == 1 + other_stops
    assert layer.counts["lines"] == 1 + other_lines
    with pytest.raises(maps.GeoError, match="others"):
        maps.route_layer(doc, highlight="A", others="blur")


# ---------------------------------------------- 5. removing a crew that holds locks


def test_unknown_crew_error_does_not_list_every_crew(planned_url: str) -> None:
    """The old refusal named all of the plan's ~130 crews in one sentence."""
    plan = _plan_row(planned_url)["plan"]
    rid = next(p.request_id for r in plan.routes for p in r.stops)
    with pytest.raises(Exception, match="not in the plan") as err:
        replan(plan, moves={rid: "GONE-crew-1"})
    message = str(err.value)
    assert len(message) < 200, message
    assert sum(r.crew in message for r in plan.routes) == 0


def test_removing_a_crew_lists_its_held_stops_and_releases_locks_one_by_one(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = _plan_row(fresh_url)
    plan_id = facts["id"]
    crew = next(c for c, pks in facts["routes"].items() if len(pks) >= 3)
    started_stop, locked_pk = facts["stop_ids"][crew][0], facts["routes"][crew][2]
    started_pk = facts["routes"][crew][0]
    engine = make_engine(fresh_url)
    with UnitOfWork(engine, actor=f"crew:{crew}") as uow:
        wf.record_arrival(uow, started_stop, crew)
    with UnitOfWork(engine, actor="supervisor:ana") as uow:
        wf.set_lock(uow, plan_id, locked_pk, True)

    at = _page(fresh_url, monkeypatch).run()
    assert not at.exception
    at.checkbox[0].check().run()  # "I confirm re-planning an assigned plan"
    at.selectbox(key="remove_crew").set_value(crew).run()
    assert not at.exception
    listing = " ".join(m.value for m in at.markdown)
    _, locked_address, category = facts["labels"][locked_pk]
    started_address = facts["labels"][started_pk][1]
    label = CITY.category_labels[category]
    assert f"{locked_address} · {label}: locked to this crew by a supervisor" in listing
    assert f"{started_address} · {label}: the crew has arrived there" in listing
    remove = next(b for b in at.button if b.label == "Remove crew and re-plan its stops")
    assert remove.disabled  # not until the supervisor agrees to release the lock
    at.checkbox(key=f"release_{plan_id}_{crew}").check().run()
    remove = next(b for b in at.button if b.label == "Remove crew and re-plan its stops")
    assert not remove.disabled
    remove.click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]

    with UnitOfWork(engine) as uow:
        row = uow.plans.get(plan_id)
        assert row is not None
        routes = {r.crew_name: r for r in row.routes}
        # the started stop stays with its crew; the locked one was released and re-planned
        assert [s.request_id for s in routes[crew].stops] == [started_pk]
        moved = next(s for r in row.routes for s in r.stops if s.request_id == locked_pk)
        assert moved.route.crew_name != crew and not moved.locked
        unlocked = [e.details for e in uow.events.for_entity("plan", plan_id)
                    if e.action == "stop_unlocked"]
        assert {"request": locked_pk, "crew": crew, "reason": "crew_removed"} in unlocked
        version = row.version

    # re-optimising afterwards neither fails nor gives the removed crew new work
    with UnitOfWork(engine, actor="supervisor:ana") as uow:
        wf.reoptimise(uow, plan_id, expected_version=version, confirm=True)
    with UnitOfWork(engine) as uow:
        row = uow.plans.get(plan_id)
        assert row is not None
        routes = {r.crew_name: r for r in row.routes}
        assert [s.request_id for s in routes[crew].stops] == [started_pk]
    engine.dispose()


def test_a_removed_crew_keeps_its_started_stop_and_gets_no_new_work(fresh_url: str) -> None:
    """Re-optimising after a removal used to hand the crew's stops straight back."""
    facts = _plan_row(fresh_url)
    crew = next(c for c, pks in facts["routes"].items() if len(pks) >= 3)
    started_pk = facts["routes"][crew][0]
    engine = make_engine(fresh_url)
    with UnitOfWork(engine, actor=f"crew:{crew}") as uow:
        wf.record_arrival(uow, facts["stop_ids"][crew][0], crew)
    for step in (wf.remove_crew, wf.reoptimise):
        with UnitOfWork(engine, actor="supervisor:ana") as uow:
            if step is wf.remove_crew:
                wf.remove_crew(uow, facts["id"], crew, confirm=True)
            else:
                wf.reoptimise(uow, facts["id"], confirm=True)
        with UnitOfWork(engine) as uow:
            row = uow.plans.get(facts["id"])
            assert row is not None
            assert [s.request_id for r in row.routes if r.crew_name == crew
                    for s in r.stops] == [started_pk], step.__name__
            # every other stop of the crew is on another route, none lost
            others = {s.request_id for r in row.routes if r.crew_name != crew for s in r.stops}
            assert set(facts["routes"][crew][1:]) <= others
    engine.dispose()


def test_removal_with_a_lock_is_refused_in_one_sentence_without_release(
    fresh_url: str,
) -> None:
    facts = _plan_row(fresh_url)
    crew = next(c for c, pks in facts["routes"].items() if pks)
    engine = make_engine(fresh_url)
    with UnitOfWork(engine, actor="supervisor:ana") as uow:
        wf.set_lock(uow, facts["id"], facts["routes"][crew][0], True)
    with UnitOfWork(engine, actor="supervisor:ana") as uow, pytest.raises(
            Exception, match=f"crew {crew} holds 1 locked stop; release that lock"):
        wf.remove_crew(uow, facts["id"], crew, confirm=True)
    with UnitOfWork(engine) as uow:
        row = uow.plans.get(facts["id"])
        assert row is not None
        assert [s.request_id for r in row.routes if r.crew_name == crew
                for s in r.stops] == facts["routes"][crew]  # nothing changed
    engine.dispose()


@pytest.mark.parametrize("locks", [0, 1, 2])
def test_re_optimise_says_what_stays_put(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch, locks: int
) -> None:
    facts = _plan_row(fresh_url)
    pks = [pk for route in facts["routes"].values() for pk in route][:locks]
    engine = make_engine(fresh_url)
    for pk in pks:
        with UnitOfWork(engine, actor="supervisor:ana") as uow:
            wf.set_lock(uow, facts["id"], pk, True)
    engine.dispose()
    at = _page(fresh_url, monkeypatch).run()
    assert not at.exception
    said = " ".join(c.value for c in at.caption)
    assert {0: "No stop is locked: every group of crews is re-solved",
            1: "1 locked stop stays with its crew; the groups of crews holding a lock",
            2: "2 locked stops stay with their crews; the groups"}[locks] in said


# -------------------------------------------------------------- 6. fewer redraws


def test_map_and_route_list_are_in_a_fragment(
    planned_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Choosing a route or a stop re-runs its fragment, not the page.

    Streamlit tags every element drawn inside an ``st.fragment`` with the fragment's
    id; a widget there re-runs only that fragment. The messages of a run are read as
    the browser receives them.
    """
    seen: list[tuple[str, str, str]] = []
    real = local_script_runner.parse_tree_from_messages

    def record(messages: list[Any]) -> Any:
        seen.clear()
        for msg in messages:
            if msg.HasField("delta") and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                kind = element.WhichOneof("type") or ""
                inner = getattr(element, kind)
                seen.append((kind, str(getattr(inner, "id", "") or ""),
                             msg.delta.fragment_id))
        return real(messages)

    monkeypatch.setattr(local_script_runner, "parse_tree_from_messages", record)
    at = _page(planned_url, monkeypatch).run()
    assert not at.exception

    def fragment_of(kind: str, key: str = "") -> set[str]:
        found = {f for k, eid, f in seen if k == kind and key in eid}
        assert found, (kind, key)
        return found

    (routes,) = fragment_of("dataframe", "route_list")
    assert routes, "the route list is not in a fragment"
    assert fragment_of("component_instance") == {routes}  # the map redraws with it
    (stops,) = fragment_of("selectbox", "move_stop")
    assert stops and stops != routes
    assert fragment_of("selectbox", "move_target") == {stops}
    # the page around them (the plan picker, the metrics) is outside any fragment
    assert {f for k, _, f in seen if k == "metric"} == {""}


def test_several_stops_ticked_in_a_route_move_together(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: select stops in a table and move them to a crew, not one at a time."""
    facts = _plan_row(fresh_url)
    at = _page(fresh_url, monkeypatch).run()
    table = at.dataframe(key=_route_list(at)).value
    source = next(r for r in facts["plan"].routes if len(r.stops) >= 3
                  and any(set(r.crew_districts) & set(o.crew_districts) and
                          set(r.skills) & set(o.skills) and o.crew != r.crew
                          for o in facts["plan"].routes))
    at.session_state[_route_list(at)] = {
        "selection": {"rows": [table["crew"].tolist().index(source.crew)], "columns": []}}
    at.run()
    key = f"route_stops_{source.crew}"
    at.session_state[key] = {"selection": {"rows": [0, 2], "columns": []}}
    at.run()
    assert not at.exception
    target = at.selectbox(key="move_many_target").value
    assert target and target != source.crew
    at.checkbox(key="move_many_confirm").check().run()
    at.button(key="move_many").click().run()
    assert not at.exception
    assert any(s.value.startswith("Move: routes of") for s in at.success)
    after = _plan_row(fresh_url)
    moved = {int(source.stops[0].request_id), int(source.stops[2].request_id)}
    on_target = next(r for r in after["plan"].routes if r.crew == target)
    assert moved <= {int(p.request_id) for p in on_target.stops}
    kept = next(r for r in after["plan"].routes if r.crew == source.crew)
    assert int(source.stops[1].request_id) in {int(p.request_id) for p in kept.stops}


def test_re_optimising_an_unchanged_plan_re_solves_every_group(tmp_path: Path) -> None:
    """With no lock, *Re-optimise* re-solved only the group of the plan's first stop."""
    import random

    url = _seed(tmp_path)
    engine = make_engine(url)
    with UnitOfWork(engine, actor="test") as uow:
        row = uow.plans.for_date("los_angeles", DAY)[0]
        plan_id = row.id
        groups = {(tuple(r.crew_settings["skills"]), tuple(r.crew_settings["districts"]))
                  for r in row.routes if len(r.stops) >= 4}
        assert len(groups) >= 2
        shuffled: dict[str, list[int]] = {}
        for r in row.routes:
            if len(r.stops) < 4:
                continue
            order = list(r.stops)
            random.Random(3).shuffle(order)
            for k, s in enumerate(order):
                s.sequence = 1000 + k  # a poor order, as stored
            shuffled[r.crew_name] = [s.request_id for s in order]
        uow.commit()
    with UnitOfWork(engine, actor="supervisor:ana") as uow:
        wf.reoptimise(uow, plan_id)
    with UnitOfWork(engine) as uow:
        row = uow.plans.get(plan_id)
        assert row is not None
        after = {r.crew_name: [s.request_id for s in r.stops] for r in row.routes}
    engine.dispose()
    assert all(after.get(crew) != order for crew, order in shuffled.items()), (shuffled, after)


@pytest.mark.parametrize(("crews", "line"), [
    ([], ""),
    (["A"], "A"),
    (["A", "B", "C", "D"], "A, B, C, D"),
    (["A", "B", "C", "D", "E"], "5 crews: A, B, C and 2 more"),
    ([f"C{i:02d}" for i in range(34)], "34 crews: C00, C01, C02 and 31 more"),
])
def test_a_confirmation_names_a_few_crews_and_counts_the_rest(crews: list[str],
                                                               line: str) -> None:
    """A re-optimise's confirmation used to list every crew whose route changed (34)."""
    assert wf.PlanChange(added={c: ["1"] for c in crews}).named() == line


def test_plans_are_offered_by_who_made_them_in_words(
    planned_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan picker read "by cli:plan" or "by supervisor:supervisor" (issue 13's walk)."""
    at = _page(planned_url, monkeypatch).run()
    (picker,) = [s for s in at.selectbox if s.label == "Plan"]
    made_by = [o.split(" · by ")[1].split(" · ")[0] for o in picker.options]
    assert made_by and not any(":" in who for who in made_by), made_by
