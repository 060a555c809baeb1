"""Replaying a real morning: which MyLA311 requests were open, and planning them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest
from test_planning_helpers import DATA, ROOT

from bench.la_data import LA_CSV, la_pack, load_la_requests
from dispatch.model import RequestStatus, ServiceRequest
from dispatch.planning import HaversineTravel, plan_day, select_stops_for_day, validate_plan
from dispatch.planning.replay import open_at

SAMPLE = DATA / "myla311_cd13_sample.csv"
DAY = date(2020, 1, 3)
PACK = la_pack()  # categories, roster and time zone come from the city pack
LA_TZ = PACK.timezone
LA_CATEGORIES = PACK.categories


@pytest.fixture(scope="module")
def sample() -> list[ServiceRequest]:
    return load_la_requests(SAMPLE)


def test_sample_selection(sample: list[ServiceRequest]) -> None:
    got = select_stops_for_day(sample, DAY, LA_TZ, LA_CATEGORIES)
    ids = {s.request_id for s in got}
    assert Counter(s.category for s in got) == {
        "graffiti_removal": 14, "illegal_dumping": 11, "bulky_items": 7,
    }  # fmt: skip
    assert "1-1523596222" in ids  # bulky booked 1/3, closed 07:02: open at 07:00
    assert "1-1523631791" not in ids  # bulky booked 1/3, closed 06:48
    assert "1-1523636121" not in ids  # bulky booked for 1/4
    assert "1-1523616794" not in ids  # graffiti closed 1/2
    assert "1-1523591123" not in ids  # Metal/Household Appliances: not routed
    assert not any(s.category == "metal_household_appliances" for s in got)
    unlocated = [s for s in got if s.lon is None]
    assert {s.request_id for s in unlocated} == {"1-1524089591", "1-1524217467"}
    graffiti = [s for s in got if s.category == "graffiti_removal"]
    assert all(s.urgency > 1 for s in graffiti)  # all >24 h old on the 3rd: overdue
    assert all(s.service_s == PACK.categories["graffiti_removal"].service_time_s
               for s in graffiti)
    assert [s.request_id for s in got] == sorted(ids)


@pytest.mark.parametrize(
    ("closed", "status", "expected"),
    [
        (None, RequestStatus.NEW, True),
        (None, RequestStatus.COMPLETED, False),
        (datetime(2020, 1, 3, 15, 1, tzinfo=UTC), RequestStatus.COMPLETED, True),
        (datetime(2020, 1, 3, 15, tzinfo=UTC), RequestStatus.COMPLETED, False),  # at 07:00
    ],
)
def test_open_at(closed: datetime | None, status: RequestStatus, expected: bool) -> None:
    req = ServiceRequest("t", "1", "x", "graffiti_removal", datetime(2020, 1, 1, tzinfo=UTC),
                         status=status, closed_at=closed)  # fmt: skip
    assert open_at(req, datetime(2020, 1, 3, 15, tzinfo=UTC)) is expected  # 07:00 PST


def test_created_after_morning_is_not_selected() -> None:
    req = ServiceRequest("t", "late", "Graffiti Removal", "graffiti_removal",
                         datetime(2020, 1, 3, 15, 30, tzinfo=UTC), lon=-118.3, lat=34.1,
                         district="13")  # fmt: skip
    assert select_stops_for_day([req], DAY, LA_TZ, LA_CATEGORIES) == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"window_start": "09:00", "window_end": "11:00"}, ("09:00", "11:00")),
        ({"window_start": "2020-01-03T09:30:00-08:00", "window_end": "2020-01-03T10:00"},
         ("09:30", "10:00")),
        ({"window_start": "soon", "window_end": "11:00"}, None),
        ({"window_start": "09:00"}, None),
    ],
)  # fmt: skip
def test_booked_window(extra: dict[str, str], expected: tuple[str, str] | None) -> None:
    req = ServiceRequest("t", "w", "Bulky Items", "bulky_items",
                         datetime(2020, 1, 1, tzinfo=UTC), lon=-118.3, lat=34.1, district="13",
                         service_date=DAY, extra=extra)  # fmt: skip
    (s,) = select_stops_for_day([req], DAY, LA_TZ, LA_CATEGORIES)
    if expected is None:
        assert s.tw_start is None and s.tw_end is None
    else:
        assert s.tw_start is not None and s.tw_end is not None
        got = (s.tw_start.astimezone(LA_TZ), s.tw_end.astimezone(LA_TZ))
        assert tuple(t.strftime("%H:%M") for t in got) == expected


def test_plan_real_district_13() -> None:
    reqs = [r for r in load_la_requests(LA_CSV) if r.district == "13"]
    stops = select_stops_for_day(reqs, DAY, LA_TZ, LA_CATEGORIES)
    assert len(stops) > 200
    crews, depots = [c for c in PACK.crews if "13" in c.districts], dict(PACK.depots)
    plan = plan_day(stops, crews, depots, day=DAY, tz=LA_TZ, iterations=100, max_workers=2)
    assert validate_plan(plan, crews, depots, HaversineTravel(), stops) == []
    assert plan.totals()["stops_planned"] > 0.8 * len(stops)
    assert ROOT.exists()
