"""The managers' read services on a real store: frames, first actions, routes, sweeps."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import h3
import pandas as pd
import pytest
from sqlalchemy import Connection

from dispatch.citypack import load_city_pack
from dispatch.services.analytics import (
    ROUTE_COLUMNS,
    kpis,
    routes_frame,
    sweep_stops_for_day,
)
from dispatch.services.imports import import_requests
from dispatch.services.queries import MapFilter
from dispatch.store import RequestFilter, UnitOfWork
from dispatch.store.models import PlanRow, RouteRow, StopRow

FIXTURE = Path(__file__).parent / "data" / "reports" / "la_2020_02_month.csv"
GEOCODE = Path(__file__).parent / "data" / "geocode" / "la_2020_91406.csv"
HEADER = FIXTURE.read_text(encoding="utf-8").splitlines()[0].split(",")


@pytest.fixture
def city():  # type: ignore[no-untyped-def]
    return load_city_pack("los_angeles")


@pytest.mark.db
def test_first_action_is_the_first_real_event_else_updated_at(db: Connection, city) -> None:  # type: ignore[no-untyped-def]
    with UnitOfWork(db) as uow:
        import_requests(uow, FIXTURE, city)
    with UnitOfWork(db, actor="test") as uow:
        pk = uow.requests.by_external_id("1-9000000002")[0].id
        uow.events.append("request", pk, "priority_set", {"from": 0, "to": 1})
        uow.commit()
    with UnitOfWork(db) as uow:
        f = uow.stats.frame(RequestFilter(), ["request_id", "requested_at", "updated_at",
                                              "first_action_at", "lon"]).set_index("request_id")
        durations = kpis(uow, city, MapFilter()).durations
    assert len(f) == 13
    # the store keeps the time of the first action event; imports are no action
    assert pd.isna(f.loc["1-9000000001", "first_action_at"])
    assert pd.Timestamp(f.loc["1-9000000002", "first_action_at"]) > pd.Timestamp(
        "2026-01-01", tz="UTC")
    assert f["requested_at"].dt.tz is not None and f["lon"].dtype == float
    # time to first action, in SQL: the event, else the city's "updated" time when later
    # (1-9000000001: updated 5 Feb 10:00 PST = 18:00 UTC), else nothing (1-9000000003,
    # updated at the request time)
    hours = {rid: (f.loc[rid, "first_action_at"] if pd.notna(f.loc[rid, "first_action_at"])
                   else f.loc[rid, "updated_at"]) for rid in f.index}
    assert hours["1-9000000001"] == datetime(2020, 2, 5, 18, 0, tzinfo=UTC)
    measured = durations["first_action_h"].dropna()
    expected = [(pd.Timestamp(hours[rid]) - pd.Timestamp(f.loc[rid, "requested_at"]))
                .total_seconds() / 3600 for rid in f.index
                if pd.notna(hours[rid]) and hours[rid] > f.loc[rid, "requested_at"]]
    assert sorted(round(h, 3) for h in measured) == sorted(round(h, 3) for h in expected)
    assert "1-9000000003" not in {rid for rid in f.index
                                  if pd.notna(hours[rid]) and hours[rid] > f.loc[rid,
                                                                                 "requested_at"]}


@pytest.mark.db
def test_routes_frame_counts_stops_of_assigned_plans_only(db: Connection, city) -> None:  # type: ignore[no-untyped-def]
    with UnitOfWork(db) as uow:
        import_requests(uow, FIXTURE, city)
    with UnitOfWork(db) as uow:
        pks = sorted(r.id for r in uow.requests.query())
        day = date(2020, 2, 3)
        for status in ("assigned", "draft"):
            plan = PlanRow(city=city.name, service_date=day, status=status,
                           created_at=datetime(2020, 2, 3, 14, tzinfo=UTC))
            plan.routes.append(RouteRow(
                crew_name="WV-bulky-1", district="6", drive_s=3600, service_s=900,
                distance_m=20_000, stops=[
                    StopRow(request_id=pks[0], sequence=1, status="done", plan=plan),
                    StopRow(request_id=pks[1], sequence=2, status="done", plan=plan),
                    StopRow(request_id=pks[2], sequence=3, status="cant_complete", plan=plan),
                ]))
            uow.plans.add(plan)
        uow.commit()
    with UnitOfWork(db) as uow:
        routes = routes_frame(uow, city.name, date(2020, 2, 1), date(2020, 2, 29))
        empty = routes_frame(uow, city.name, date(2020, 3, 1), date(2020, 3, 2))
    assert list(routes.columns) == list(ROUTE_COLUMNS) and list(empty.columns) == list(
        ROUTE_COLUMNS)
    assert routes[["crew", "stops", "done", "cant_complete", "drive_s"]].values.tolist() == [
        ["WV-bulky-1", 3, 2, 1, 3600]]
    assert empty.empty


def _cluster_csv(path: Path, day: date) -> None:
    """70 graffiti reports over 7 adjacent H3 cells in Boyle Heights, plus 20 elsewhere."""
    centre = h3.latlng_to_cell(34.0450, -118.2100, 8)
    cells = list(h3.grid_disk(centre, 1))
    rows = []
    n = 0
    for cell in cells:
        lat, lng = h3.cell_to_latlng(cell)
        for k in range(10):
            rows.append((lat + 0.0003 * (k % 3), lng + 0.0003 * (k // 3)))
    # 20 real report positions in ZIP 91406, far from the cluster: (lat, lon)
    with GEOCODE.open(newline="", encoding="utf-8") as fh:
        for rec in list(csv.DictReader(fh))[:20]:
            rows.append((float(rec["latitude"]), float(rec["longitude"])))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER)
        w.writeheader()
        for lat, lon in rows:
            n += 1
            when = datetime.combine(day - timedelta(days=1 + n % 20), datetime.min.time())
            w.writerow({"srnumber": f"1-80000{n:05d}", "requesttype": "Graffiti Removal",
                        "status": "Closed", "createddate": f"{when:%m/%d/%y} 9:00",
                        "closeddate": f"{when:%m/%d/%y} 10:00", "requestsource": "Call",
                        "latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}",
                        "address": f"{n} TEST ST"})


@pytest.mark.db
def test_sweep_stops_for_day_come_from_recent_hot_spots(db: Connection, city,  # type: ignore[no-untyped-def]
                                                        tmp_path: Path) -> None:
    day = date(2020, 3, 2)
    path = tmp_path / "cluster.csv"
    _cluster_csv(path, day)
    with UnitOfWork(db) as uow:
        assert import_requests(uow, path, city).imported == 90
    with UnitOfWork(db) as uow:
        stops = sweep_stops_for_day(uow, city, day, top=3)
        none_later = sweep_stops_for_day(uow, city, day + timedelta(days=60))
    centre = h3.latlng_to_cell(34.0450, -118.2100, 8)
    assert len(stops) == 3
    assert stops[0].request_id == f"SWEEP-{centre}"
    assert {s.request_id.removeprefix("SWEEP-") for s in stops} <= set(h3.grid_disk(centre, 1))
    assert all(s.category == "graffiti_removal" and s.urgency == 0.0 and s.service_s == 900
               for s in stops)
    assert stops[0].district == "14"
    assert none_later == []


@pytest.mark.db
def test_sweeps_follow_the_packs_sweep_categories(db: Connection, city,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    import dataclasses

    day = date(2020, 3, 2)
    path = tmp_path / "cluster.csv"
    _cluster_csv(path, day)
    with UnitOfWork(db) as uow:
        import_requests(uow, path, city)
    no_sweeps = dataclasses.replace(city, categories={
        code: dataclasses.replace(cat, sweep=False) for code, cat in city.categories.items()})
    with UnitOfWork(db) as uow:
        assert sweep_stops_for_day(uow, no_sweeps, day) == []  # the pack sweeps nothing
        assert sweep_stops_for_day(uow, city, day, categories=("illegal_dumping",)) == []
        assert sweep_stops_for_day(uow, no_sweeps, day, categories=("graffiti_removal",))
