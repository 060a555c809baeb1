"""Route sheets and crew-route shaping: pure functions, no Streamlit, no database."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.planning import Plan
from dispatch.planning.plan import PlannedStop, Route, Unplanned
from dispatch.planning.problem import Stop
from dispatch.services.routesheets import (
    crew_route_geojson,
    escape_markdown,
    export_name,
    local_time,
    plan_for_crew,
    progress,
    route_sheet_html,
    route_svg,
)
from dispatch.services.workflow import RouteView, StopView, navigation_url

LA = ZoneInfo("America/Los_Angeles")
DAY = date(2020, 1, 3)
EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def _stop(seq: int, *, status: str = "pending", description: str = "", address: str = "",
          lon: float | None = -118.29, eta: datetime | None = None) -> StopView:
    lat = None if lon is None else 34.07 + seq / 1000
    eta = eta or datetime(2020, 1, 3, 15, 0, tzinfo=UTC) + timedelta(minutes=10 * seq)
    return StopView(
        stop_id=100 + seq, sequence=seq, request_pk=seq, request_id=f"1-{seq:05d}",
        category="bulky_items", service_code="Bulky Items",
        address=address or f"{seq} MAIN ST", description=description,
        lon=None if lon is None else lon + seq / 1000, lat=lat, eta=eta,
        departure=eta + timedelta(minutes=5), status=status, locked=False, reason=None,
        note=None, navigation_url=navigation_url(None if lon is None else lon + seq / 1000, lat),
    )


def _view(crew: str, stops: list[StopView], district: str | None = "13") -> RouteView:
    return RouteView(
        route_id=1, plan_id=7, plan_status="assigned", crew=crew, district=district,
        distance_m=12_345, drive_s=3_600, service_s=1_800, load=3, capacity=10,
        stops=tuple(stops),
    )


def test_resident_text_is_escaped_everywhere() -> None:
    view = _view(f"crew{EVIL}", [_stop(1, description=EVIL, address=f"1 {EVIL} ST")],
                 district=EVIL)
    sheet = route_sheet_html([view], f"City {EVIL}", LA, DAY)
    assert "<script>" not in sheet
    assert "<img" not in sheet
    assert 'onerror="' not in sheet
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in sheet
    assert "onerror=&quot;alert(2)&quot;" in sheet
    # the only markup is ours: one <style>, no script element at all
    assert sheet.count("<style>") == 1 and "<script" not in sheet.lower()
    assert "script-src" not in sheet and "default-src 'none'" in sheet


def test_a_navigation_link_that_is_not_https_is_dropped() -> None:
    bad = StopView(**{**_stop(1).__dict__, "navigation_url": "javascript:alert(1)"})
    sheet = route_sheet_html([_view("A", [bad])], "Los Angeles", LA, DAY)
    assert "javascript:" not in sheet
    good = route_sheet_html([_view("A", [_stop(1)])], "Los Angeles", LA, DAY)
    assert 'href="https://www.google.com/maps/dir/?api=1&amp;destination=' in good


def test_one_page_per_crew_with_a_page_break() -> None:
    views = [_view(c, [_stop(1), _stop(2)]) for c in ("NC-bulky-1", "NC-bulky-2", "CCAC-1")]
    sheet = route_sheet_html(views, "Los Angeles", LA, DAY)
    assert sheet.count('<div class="page">') == 3
    assert "page-break-after: always" in sheet
    heads = re.findall(r"<h1>Route sheet · ([^<]+)</h1>", sheet)
    assert heads == ["NC-bulky-1", "NC-bulky-2", "CCAC-1"]


def test_stops_are_printed_in_route_order() -> None:
    stops = [_stop(i, address=f"{i} ELM ST") for i in (1, 2, 3, 4)]
    sheet = route_sheet_html([_view("A", stops)], "Los Angeles", LA, DAY)
    positions = [sheet.index(f"{i} ELM ST") for i in (1, 2, 3, 4)]
    assert positions == sorted(positions)
    assert re.findall(r'<td class="seq">(\d+)</td>', sheet) == ["1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        (datetime(2020, 1, 3, 15, 10, tzinfo=UTC), "07:10"),  # PST, UTC-8
        (datetime(2020, 7, 3, 15, 10, tzinfo=UTC), "08:10"),  # PDT, UTC-7
        (datetime(2020, 1, 4, 1, 5, tzinfo=UTC), "17:05"),  # UTC is already the next day
    ],
)
def test_eta_is_local_time_of_the_city(utc: datetime, local: str) -> None:
    assert local_time(utc, LA) == local
    sheet = route_sheet_html([_view("A", [_stop(1, eta=utc)])], "Los Angeles", LA, DAY)
    assert f'<td class="eta">{local}</td>' in sheet


def test_empty_selection_still_gives_a_document() -> None:
    sheet = route_sheet_html([], "Los Angeles", LA, DAY)
    assert "No routes." in sheet and sheet.startswith("<!DOCTYPE html>")


def test_svg_sketch_has_one_numbered_circle_per_located_stop() -> None:
    stops = [_stop(1), _stop(2, lon=None), _stop(3)]
    svg = route_svg(stops, depot=(-118.30, 34.06))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<circle") == 2
    assert re.findall(r">(\d+)</text>", svg) == ["1", "3"]
    # depot -> 2 stops -> depot
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None and len(points.group(1).split()) == 4
    assert route_svg([_stop(1, lon=None)]) == ""


def test_sheet_without_map_has_no_svg() -> None:
    sheet = route_sheet_html([_view("A", [_stop(1)])], "LA", LA, DAY, with_map=False)
    assert "<svg" not in sheet


def test_progress_counts_done_and_cannot_complete() -> None:
    view = _view("A", [_stop(1, status="done"), _stop(2, status="cant_complete"),
                       _stop(3, status="arrived"), _stop(4)])
    assert progress(view) == (2, 4)
    assert view.next_stop is not None and view.next_stop.sequence == 3


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("**bold** [link](http://x) <b>", r"\*\*bold\*\* \[link\]\(http\:\/\/x\) \<b\>"),
        ("$x$ :red[alert] `code`", r"\$x\$ \:red\[alert\] \`code\`"),
        ("line\nbreak", "line break"),
    ],
)
def test_escape_markdown(text: str, shown: str) -> None:
    assert escape_markdown(text).replace("\\/", "/") == shown.replace("\\/", "/")


def test_export_name_is_a_safe_file_name() -> None:
    assert export_name(DAY, 4, "NC bulky/1", "gpx") == "route-2020-01-03-plan4-NC_bulky_1.gpx"
    assert export_name(DAY, 4, None, "csv") == "route-2020-01-03-plan4-all-crews.csv"


# ------------------------------------------------------------------ plan-based helpers


def _route(crew: str, n: int, lon0: float) -> Route:
    t0 = datetime(2020, 1, 3, 7, 0, tzinfo=LA)
    stops = [
        PlannedStop(
            Stop(request_id=f"{crew}-r{i}", category="bulky_items", district="13",
                 lon=lon0 + i / 100, lat=34.0 + i / 100, service_s=300),
            t0 + timedelta(minutes=20 * i), t0 + timedelta(minutes=20 * i + 5),
        )
        for i in range(1, n + 1)
    ]
    return Route(crew=crew, skills=("bulky_items",), district="13", districts=("13",),
                 depot="NC", depot_lon=lon0, depot_lat=34.0, shift_start=t0,
                 shift_end=t0 + timedelta(hours=8), capacity=10, start=t0,
                 end=t0 + timedelta(hours=3), stops=stops)


@pytest.fixture
def plan() -> Plan:
    stray = Stop(request_id="r-unplanned", category="bulky_items", district="13",
                 lon=-118.2, lat=34.1, service_s=300)
    return Plan(date=DAY, city="los_angeles", tz="America/Los_Angeles", seed=1,
                routes=[_route("A", 3, -118.30), _route("B", 2, -118.25)],
                unplanned=[Unplanned(stray, "no crew")])


def test_plan_for_crew_keeps_only_that_route(plan: Plan) -> None:
    one = plan_for_crew(plan, "B")
    assert [r.crew for r in one.routes] == ["B"] and one.unplanned == []
    rows = one.to_csv().strip().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["B", "B"]
    assert one.to_gpx().count("<rte>") == 1
    assert plan_for_crew(plan, None) is plan
    assert [r.crew for r in plan.routes] == ["A", "B"]  # the original is untouched


def test_crew_geojson_has_depot_numbered_stops_and_local_times(plan: Plan) -> None:
    gj = crew_route_geojson(plan, "A")
    feats = gj["features"]
    assert {f["properties"]["crew"] for f in feats} == {"A"}
    kinds = [f["properties"].get("kind") for f in feats]
    assert kinds.count("depot") == 1 and kinds.count("route") == 1
    stops = [f["properties"] for f in feats if f["properties"].get("kind") == "stop"]
    assert [p["sequence"] for p in stops] == [1, 2, 3]
    assert [p["arrival"] for p in stops] == ["07:20", "07:40", "08:00"]
    # route_layer draws it: one line, one depot, three numbered stops
    from geo.maps import route_layer

    counts = route_layer(gj).counts
    assert counts == {"lines": 1, "depots": 1, "stops": 3, "unplanned": 0}


def test_a_sheet_names_the_kind_once_and_shows_the_crew_s_note() -> None:
    """The walk of issue 13 read "Bulky Items · Bulky items", and no note of the crew."""
    noted = StopView(**{**_stop(1, status="cant_complete").__dict__,
                        "note": "Gate locked <b>", "reason": "blocked"})
    other = StopView(**{**_stop(2).__dict__, "service_code": "Metal/Household Appliances"})
    sheet = route_sheet_html([_view("A", [noted, other])], "Los Angeles", LA, DAY,
                             category_labels={"bulky_items": "Bulky items"})
    assert "Bulky Items · " not in sheet
    assert "Metal/Household Appliances · " in sheet
    assert "Crew: Gate locked &lt;b&gt;" in sheet
