"""A day of ordinary actions in any order, and nothing is ever lost (hypothesis).

The machine imports and re-imports the city's file (as it stood in the morning and in
the evening), takes phone calls, plans districts, assigns plans (and old drafts), moves
and locks stops, lets crews arrive, finish or give up, re-plans, removes crews and
restarts the app. After every step it checks:

* no crew outcome and no manual location fix is lost;
* every request scheduled or in progress is on exactly one assigned route, and no
  request is on two;
* at most one assigned plan per district and day;
* what the source recorded as closed never changes;
* every change left an event.

Runs on SQLite, and on PostgreSQL when the suite has one.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import _backends
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import Engine, text

from dispatch.citypack import load_city_pack
from dispatch.errors import DispatchError
from dispatch.model import CLOSED_STATUSES, RequestStatus
from dispatch.services import requests as rs
from dispatch.services import workflow as wf
from dispatch.services.imports import import_requests
from dispatch.services.planning import candidate_requests, plan_for_day
from dispatch.services.setup import load_roster
from dispatch.store import UnitOfWork, make_engine, migrate

DAY = date(2020, 1, 3)
DATA = Path(__file__).parent / "data" / "workflow"
FILES = {"morning": DATA / "la_day_cd13_cd14_open.csv", "evening": DATA / "la_day_cd13_cd14.csv"}
LA = load_city_pack("los_angeles")
TABLES = ("assignments", "unplanned", "stops", "routes", "plans", "events", "requests",
          "login_failures", "sessions", "users", "settings", "crews", "depots")


def _new_engine(backend: str) -> Engine:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="curbside-machine-")
        engine = make_engine(f"sqlite:///{folder}/machine.db")
        migrate(engine)
        return engine
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from dispatch.store.db import normalise_url

    # a database of its own on the test server, emptied before each run
    server = make_url(normalise_url(os.environ["DATABASE_URL"]))
    name = f"{server.database}_machine"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": name}).first()
        if exists is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(server.set(database=name).render_as_string(hide_password=False))
    migrate(engine)
    with engine.begin() as conn:  # TRUNCATE skips the event log's row triggers
        conn.execute(text("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY CASCADE"))
    return engine


class ADay(RuleBasedStateMachine):
    """One service center's day, driven by hypothesis."""

    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.engine = _new_engine(self.backend)
        with UnitOfWork(self.engine, actor="cli:init") as uow:
            load_roster(uow, LA)
        self.outcomes: dict[int, str] = {}  # stop id -> what the crew recorded
        self.fixes: dict[int, tuple[float, float]] = {}  # request pk -> manual position
        self.recorded_closed: dict[int, tuple[Any, Any]] = {}
        self.plans: list[int] = []
        self.events_before = 0

    def teardown(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ helpers
    def _uow(self, actor: str = "supervisor:ana") -> UnitOfWork:
        return UnitOfWork(self.engine, actor=actor)

    def _events(self) -> int:
        with self._uow() as uow:
            return uow.events.count()

    def _changed(self, before: int) -> None:
        assert self._events() > before, "a change left no event"

    def _assigned_stops(self, statuses: tuple[str, ...]) -> list[tuple[int, str]]:
        with self._uow() as uow:
            out = []
            for plan_id in self.plans:
                row = uow.plans.get(plan_id)
                if row is None or row.status != "assigned":
                    continue
                for route in row.routes:
                    if route.status == "superseded":
                        continue
                    out += [(s.id, route.crew_name) for s in route.stops if s.status in statuses]
            return sorted(out)

    # -------------------------------------------------------------------- rules
    @rule(which=st.sampled_from(sorted(FILES)))
    def import_the_city_file(self, which: str) -> None:
        before = self._events()
        with self._uow("cli:import") as uow:
            import_requests(uow, FILES[which], LA)
        self._changed(before)
        # the source's latest word: from now until the next import, Curbside keeps it
        with self._uow() as uow:
            self.recorded_closed = {
                r.id: (r.status, r.closed_at) for r in uow.requests.query()
                if r.status_owner == "source" and RequestStatus(r.status) in CLOSED_STATUSES}

    @rule()
    def take_a_phone_call(self) -> None:
        form = rs.IntakeForm(category="graffiti_removal", address="132 S WESTMORELAND AVE",
                             lon=-118.2878, lat=34.0724)
        with self._uow() as uow:
            rs.create_request(uow, LA, form)

    @rule(districts=st.sampled_from([["13"], ["14"], ["13", "14"]]))
    def plan_districts(self, districts: list[str]) -> None:
        with self._uow() as uow:
            wanted = {int(r.external_id) for r in candidate_requests(uow, LA, DAY)
                      if r.district in districts}
        with self._uow() as uow:
            self.plans.append(plan_for_day(uow, LA, DAY, districts=districts,
                                           time_limit_s=0.1, max_workers=1).plan_id)
        # every open routable request of those districts is on a route, or unplanned
        # with a reason (the invariant below checks the reasons)
        with self._uow() as uow:
            row = uow.plans.get(self.plans[-1])
            assert row is not None
            placed = {s.request_id for r in row.routes for s in r.stops}
            placed |= {u.request_id for u in row.unplanned}
        assert wanted <= placed, sorted(wanted - placed)[:5]

    @precondition(lambda self: self.plans)
    @rule(data=st.data())
    def assign_a_draft(self, data: st.DataObject) -> None:
        plan_id = data.draw(st.sampled_from(self.plans))
        before = self._events()
        try:
            with self._uow() as uow:
                outcome, _ = wf.preview_assignment(uow, plan_id)
            with self._uow() as uow:
                wf.assign_plan(uow, plan_id, token=outcome.token)
        except DispatchError:
            return  # not a draft any more: refused with a sentence, nothing changed
        self._changed(before)

    @precondition(lambda self: self.plans)
    @rule(data=st.data())
    def move_a_stop(self, data: st.DataObject) -> None:
        plan_id = data.draw(st.sampled_from(self.plans))
        with self._uow() as uow:
            row = uow.plans.get(plan_id)
            assert row is not None
            stops = [(s.request_id, r.crew_name) for r in row.routes for s in r.stops
                     if s.status == "pending"]
            crews = [r.crew_name for r in row.routes]
        if not stops or len(crews) < 2:
            return
        pk, crew = data.draw(st.sampled_from(stops))
        target = data.draw(st.sampled_from([c for c in crews if c != crew]))
        try:
            with self._uow() as uow:
                wf.move_stop(uow, plan_id, pk, target, confirm=True)
        except DispatchError:
            pass

    @precondition(lambda self: self.plans)
    @rule(data=st.data(), locked=st.booleans())
    def lock_a_stop(self, data: st.DataObject, locked: bool) -> None:
        plan_id = data.draw(st.sampled_from(self.plans))
        with self._uow() as uow:
            row = uow.plans.get(plan_id)
            assert row is not None
            pks = [s.request_id for r in row.routes for s in r.stops]
        if not pks:
            return
        try:
            with self._uow() as uow:
                wf.set_lock(uow, plan_id, data.draw(st.sampled_from(pks)), locked)
        except DispatchError:
            pass

    @rule(data=st.data(), what=st.sampled_from(["arrive", "done", "cant"]))
    def a_crew_taps(self, data: st.DataObject, what: str) -> None:
        open_stops = self._assigned_stops(("pending", "arrived"))
        if not open_stops:
            return
        stop_id, crew = data.draw(st.sampled_from(open_stops))
        try:
            with self._uow(f"crew:{crew}") as uow:
                if what == "arrive":
                    wf.record_arrival(uow, stop_id, crew)
                    self.outcomes[stop_id] = "arrived"
                elif what == "done":
                    wf.complete_stop(uow, stop_id, crew)
                    self.outcomes[stop_id] = "done"
                else:
                    wf.cannot_complete(uow, stop_id, crew, "not_out")
                    self.outcomes[stop_id] = "cant_complete"
        except DispatchError:
            pass

    @precondition(lambda self: self.plans)
    @rule(data=st.data())
    def re_plan(self, data: st.DataObject) -> None:
        plan_id = data.draw(st.sampled_from(self.plans))
        try:
            with self._uow() as uow:
                wf.reoptimise(uow, plan_id, confirm=True)
        except DispatchError:
            pass

    @precondition(lambda self: self.plans)
    @rule(data=st.data())
    def remove_a_crew(self, data: st.DataObject) -> None:
        plan_id = data.draw(st.sampled_from(self.plans))
        with self._uow() as uow:
            row = uow.plans.get(plan_id)
            assert row is not None
            crews = [r.crew_name for r in row.routes if r.stops]
        if not crews:
            return
        try:
            with self._uow() as uow:
                wf.remove_crew(uow, plan_id, data.draw(st.sampled_from(crews)), confirm=True)
        except DispatchError:
            pass

    @rule(data=st.data())
    def fix_a_location(self, data: st.DataObject) -> None:
        with self._uow() as uow:
            pks = [r.id for r in uow.requests.query()]
        if not pks:
            return
        pk = data.draw(st.sampled_from(pks))
        lon = data.draw(st.floats(-118.30, -118.27))
        lat = data.draw(st.floats(34.06, 34.09))
        with self._uow() as uow:
            rs.fix_location(uow, LA, pk, lon, lat, how="map click")
        self.fixes[pk] = (lon, lat)

    @rule()
    def restart_the_app(self) -> None:
        self.engine.dispose()
        self.engine = make_engine(self.engine.url.render_as_string(hide_password=False))

    # --------------------------------------------------------------- invariants
    @invariant()
    def no_crew_outcome_is_lost(self) -> None:
        with self._uow() as uow:
            for stop_id, status in self.outcomes.items():
                stop = uow.plans.stop(stop_id)
                assert stop is not None, f"stop {stop_id} a crew worked is gone"
                if status == "arrived":
                    assert stop.status in ("arrived", "done", "cant_complete")
                else:
                    assert stop.status == status

    @invariant()
    def no_manual_fix_is_lost(self) -> None:
        with self._uow() as uow:
            for pk, (lon, lat) in self.fixes.items():
                row = uow.requests.get(pk)
                assert row is not None and row.geocode_precision == "manual"
                assert (row.lon, row.lat) == (lon, lat)

    @invariant()
    def scheduled_work_is_on_exactly_one_assigned_route(self) -> None:
        with self._uow() as uow:
            active: dict[int, int] = {}
            for stop in uow.plans.assigned_stops(r.id for r in uow.requests.query()):
                if stop.status in ("pending", "arrived"):
                    active[stop.request_id] = active.get(stop.request_id, 0) + 1
            assert all(n == 1 for n in active.values()), "a request on two routes"
            for r in uow.requests.query():
                if r.status in ("scheduled", "in_progress"):
                    assert active.get(r.id) == 1, (r.external_id, r.status)

    @invariant()
    def one_assigned_plan_per_district_and_day(self) -> None:
        with self._uow() as uow:
            assigned = [p for p in uow.plans.for_date(LA.name, DAY) if p.status == "assigned"]
            for i, a in enumerate(assigned):
                for b in assigned[i + 1:]:
                    da, db_ = set(a.districts), set(b.districts)
                    assert da and db_ and not da & db_, (a.id, b.id)
            crews: dict[str, int] = {}
            for p in assigned:
                for r in p.routes:
                    if r.stops and r.status != "superseded":
                        assert crews.setdefault(r.crew_name, p.id) == p.id, r.crew_name

    @invariant()
    def every_unplanned_stop_says_why_and_is_not_also_planned(self) -> None:
        with self._uow() as uow:
            for plan_id in self.plans:
                row = uow.plans.get(plan_id)
                assert row is not None
                on_routes = {s.request_id for r in row.routes for s in r.stops}
                for u in row.unplanned:
                    assert u.reason_kind, (plan_id, u.request_id)
                    assert u.request_id not in on_routes, (plan_id, u.request_id)

    def _state(self) -> tuple[Any, ...]:
        """What the store says about requests, plans and stops (each row's version)."""
        with self._uow() as uow:
            requests = tuple((r.id, r.version, r.status, r.lon, r.lat)
                             for r in uow.requests.query())
            plans = []
            for plan_id in self.plans:
                row = uow.plans.get(plan_id)
                assert row is not None
                plans.append((row.id, row.version, row.status, tuple(
                    (s.id, s.route_id, s.status, s.locked, s.version)
                    for r in row.routes for s in r.stops)))
        return requests, tuple(plans)

    @invariant()
    def every_change_is_in_the_event_log(self) -> None:
        state, events = self._state(), self._events()
        seen = getattr(self, "_seen", None)
        if seen is not None and seen[0] != state:
            assert events > seen[1], "requests, plans or stops changed with no new event"
        self._seen = (state, events)

    @invariant()
    def the_source_record_of_closed_requests_stands(self) -> None:
        with self._uow() as uow:
            for pk, (status, closed_at) in self.recorded_closed.items():
                row = uow.requests.get(pk)
                assert row is not None and (row.status, row.closed_at) == (status, closed_at)


ADay.TestCase.settings = settings(
    max_examples=int(os.environ.get("CURBSIDE_MACHINE_RUNS", "20")), stateful_step_count=16,
    deadline=None, suppress_health_check=list(HealthCheck),
    # shrinking a failing day takes minutes; the failing steps are printed unshrunk
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


class ADayOnPostgres(ADay):
    backend = "postgresql"


ADayOnPostgres.TestCase.settings = ADay.TestCase.settings


TestADayOnSQLite = pytest.mark.db(ADay.TestCase)
if "postgresql" in _backends():
    TestADayOnPostgres = pytest.mark.postgres_only(pytest.mark.db(ADayOnPostgres.TestCase))
