"""Result of planning a day: :class:`Plan`, its routes and stops, exports and a checker.

Exports: JSON (:meth:`Plan.to_json`, round trip with :meth:`Plan.from_json`),
GeoJSON (routes as LineStrings, stops as Points), CSV (one row per stop), GPX 1.1 (one
``<rte>`` per crew, stdlib :mod:`xml.etree`) and one navigation link per stop.

Times are aware datetimes in the city's time zone, written as ISO 8601 with offset.
District ids are text in code (``"1"``); JSON writes numeric ids as numbers.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from dispatch.errors import PlanningError
from dispatch.model import Crew, Depot
from dispatch.planning.problem import DayClock, Reason, ReasonKind, Slack, Stop
from dispatch.text import neutralise_formula
from geo.travel import TravelModel

JSON_SCHEMA_VERSION = 1

#: JSON Schema (draft 2020-12) of :meth:`Plan.to_json` output.
PLAN_SCHEMA_PATH = Path(__file__).with_name("plan.schema.json")


def _district_out(d: str | None) -> str | int | None:
    return int(d) if d is not None and d.isdigit() else d


def _district_in(d: object) -> str | None:
    return None if d is None else str(d)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _dt(s: object) -> datetime | None:
    return None if s is None else datetime.fromisoformat(str(s))


@dataclass
class PlannedStop:
    """A stop in a route, with its schedule.

    Parameters
    ----------
    stop
        The stop as planned.
    arrival
        When the crew arrives (after any waiting for the window opening: service start).
    departure
        When the crew leaves.
    """

    stop: Stop
    arrival: datetime
    departure: datetime

    @property
    def request_id(self) -> str:
        """Return the stop's request id."""
        return self.stop.request_id

    def navigation_url(self) -> str:
        """Return a Google Maps directions link to the stop."""
        # Google Maps wants destination=LAT,LON: (lon, lat) -> (lat, lon)
        return (
            "https://www.google.com/maps/dir/?api=1&destination="
            f"{self.stop.lat:.6f},{self.stop.lon:.6f}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object of the stop."""
        s = self.stop
        return {
            "request_id": s.request_id,
            "category": s.category,
            "district": _district_out(s.district),
            "lon": s.lon,
            "lat": s.lat,
            "size": s.size,
            "arrival": _iso(self.arrival),
            "departure": _iso(self.departure),
            "service_s": s.service_s,
            "urgency": s.urgency,
            "tw_start": _iso(s.tw_start),
            "tw_end": _iso(s.tw_end),
            "navigation_url": self.navigation_url(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlannedStop:
        """Read a stop written by :meth:`to_dict`."""
        arrival, departure = _dt(d["arrival"]), _dt(d["departure"])
        if arrival is None or departure is None:
            raise PlanningError(f"plan stop {d.get('request_id')}: arrival/departure missing")
        return cls(stop_from_dict(d), arrival, departure)


def stop_to_dict(s: Stop) -> dict[str, Any]:
    """Return a JSON object for a bare :class:`Stop`."""
    return {
        "request_id": s.request_id,
        "category": s.category,
        "district": _district_out(s.district),
        "lon": s.lon,
        "lat": s.lat,
        "size": s.size,
        "service_s": s.service_s,
        "urgency": s.urgency,
        "tw_start": _iso(s.tw_start),
        "tw_end": _iso(s.tw_end),
    }


def stop_from_dict(d: Mapping[str, Any]) -> Stop:
    """Read a :class:`Stop` from a JSON object (route stop or unplanned entry)."""
    return Stop(
        request_id=str(d["request_id"]),
        category=str(d["category"]),
        district=_district_in(d.get("district")),
        lon=None if d.get("lon") is None else float(d["lon"]),
        lat=None if d.get("lat") is None else float(d["lat"]),
        service_s=int(d.get("service_s", 0)),
        size=int(d.get("size", 1)),
        urgency=float(d.get("urgency", 0.0)),
        tw_start=_dt(d.get("tw_start")),
        tw_end=_dt(d.get("tw_end")),
    )


@dataclass
class Break:
    """The lunch break of a route: taken after ``after_stops`` stops."""

    start: datetime
    end: datetime
    after_stops: int


@dataclass
class Route:
    """One crew's day.

    ``start``/``end`` are the actual departure from and return to the depot;
    ``shift_start``/``shift_end`` the crew's shift that day. The crew's own settings
    (``crew_districts``, its territory; lunch window, ``max_duration_s``) are kept so
    that a plan read back from JSON can be re-planned. ``district`` is the district
    holding most of the route's stops (supervisors' lists and maps group by it);
    ``districts`` the group of districts planned together. ``reserve_s`` is the reserve
    the plan kept before the shift end; :attr:`slack_s` what the route has left.
    ``geometry`` is the driven path (``lon, lat`` points along the road network) when
    the travel model has a network, else ``None`` (straight legs between stops).
    """

    crew: str
    skills: tuple[str, ...]
    district: str | None
    districts: tuple[str, ...]
    depot: str
    depot_lon: float
    depot_lat: float
    shift_start: datetime
    shift_end: datetime
    capacity: int
    start: datetime
    end: datetime
    stops: list[PlannedStop] = field(default_factory=list)
    brk: Break | None = None
    distance_m: int = 0
    drive_s: int = 0
    crew_districts: tuple[str, ...] = ()
    lunch_start: time = time(11, 30)
    lunch_end: time = time(13, 30)
    lunch_s: int = 1800
    max_duration_s: int | None = None
    reserve_s: int = 0
    geometry: list[tuple[float, float]] | None = None

    @property
    def territory(self) -> tuple[str, ...]:
        """Return the districts the crew serves (empty: the whole city)."""
        return self.crew_districts

    @property
    def slack_s(self) -> int:
        """Return the seconds left between the return to the depot and the shift end."""
        return round((self.shift_end - self.end).total_seconds())

    @property
    def load(self) -> int:
        """Return the total size of the route's stops."""
        return sum(p.stop.size for p in self.stops)

    @property
    def service_s(self) -> int:
        """Return the total service time."""
        return sum(p.stop.service_s for p in self.stops)

    def crew_object(self, tz: ZoneInfo) -> Crew:
        """Rebuild the :class:`~dispatch.model.Crew` this route was planned for."""
        return Crew(
            name=self.crew,
            categories=self.skills,
            depot=self.depot,
            districts=self.crew_districts,
            shift_start=self.shift_start.astimezone(tz).time(),
            shift_end=self.shift_end.astimezone(tz).time(),
            capacity=self.capacity,
            lunch_start=self.lunch_start,
            lunch_end=self.lunch_end,
            lunch_s=self.lunch_s,
            max_duration_s=self.max_duration_s,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object of the route."""
        return {
            "crew": self.crew,
            "district": _district_out(self.district),
            "districts": [_district_out(d) for d in self.districts],
            "skills": list(self.skills),
            "depot": {"code": self.depot, "lon": self.depot_lon, "lat": self.depot_lat},
            "shift_start": _iso(self.shift_start),
            "shift_end": _iso(self.shift_end),
            "start": _iso(self.start),
            "end": _iso(self.end),
            "capacity": self.capacity,
            "load": self.load,
            "distance_m": self.distance_m,
            "drive_s": self.drive_s,
            "service_s": self.service_s,
            "break": None
            if self.brk is None
            else {
                "start": _iso(self.brk.start),
                "end": _iso(self.brk.end),
                "after_stops": self.brk.after_stops,
            },
            "crew_districts": [_district_out(d) for d in self.crew_districts],
            "territory": [_district_out(d) for d in self.crew_districts],
            "lunch_start": self.lunch_start.isoformat(),
            "lunch_end": self.lunch_end.isoformat(),
            "lunch_s": self.lunch_s,
            "max_duration_s": self.max_duration_s,
            "reserve_s": self.reserve_s,
            "slack_s": self.slack_s,
            "geometry": None
            if self.geometry is None
            else [[round(x, 6), round(y, 6)] for x, y in self.geometry],
            "stops": [p.to_dict() for p in self.stops],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Route:
        """Read a route written by :meth:`to_dict`."""
        b = d.get("break")
        brk = None
        if b:
            bs, be = _dt(b["start"]), _dt(b["end"])
            if bs is None or be is None:
                raise PlanningError(f"plan route {d.get('crew')}: break start/end missing")
            brk = Break(bs, be, int(b["after_stops"]))
        times = {k: _dt(d.get(k)) for k in ("shift_start", "shift_end", "start", "end")}
        for k, v in times.items():
            if v is None:
                raise PlanningError(f"plan route {d.get('crew')}: field {k!r} missing")
        return cls(
            crew=str(d["crew"]),
            skills=tuple(d["skills"]),
            district=_district_in(d.get("district")),
            districts=tuple(str(x) for x in d.get("districts", [])),
            depot=str(d["depot"].get("code", "")),
            depot_lon=float(d["depot"]["lon"]),
            depot_lat=float(d["depot"]["lat"]),
            shift_start=times["shift_start"],  # type: ignore[arg-type]
            shift_end=times["shift_end"],  # type: ignore[arg-type]
            capacity=int(d["capacity"]),
            start=times["start"],  # type: ignore[arg-type]
            end=times["end"],  # type: ignore[arg-type]
            stops=[PlannedStop.from_dict(x) for x in d["stops"]],
            brk=brk,
            distance_m=int(d["distance_m"]),
            drive_s=int(d["drive_s"]),
            crew_districts=tuple(
                str(x) for x in d.get("crew_districts", d.get("territory", []))
            ),
            lunch_start=time.fromisoformat(d.get("lunch_start", "11:30:00")),
            lunch_end=time.fromisoformat(d.get("lunch_end", "13:30:00")),
            lunch_s=int(d.get("lunch_s", 1800)),
            max_duration_s=None if d.get("max_duration_s") is None else int(d["max_duration_s"]),
            reserve_s=int(d.get("reserve_s", 0)),
            geometry=None
            if d.get("geometry") is None
            else [(float(x), float(y)) for x, y in d["geometry"]],
        )


@dataclass
class Unplanned:
    """A stop left out of the plan, and why (a typed :class:`Reason`)."""

    stop: Stop
    reason: Reason

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object of the unplanned stop: the stop, the reason text and kind."""
        return {**stop_to_dict(self.stop), "reason": str(self.reason),
                "reason_kind": self.reason.kind.value, "reason_detail": self.reason.detail}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Unplanned:
        """Read an unplanned stop written by :meth:`to_dict`."""
        if "reason_kind" in d:
            reason = Reason.from_dict({"kind": d["reason_kind"],
                                       "detail": d.get("reason_detail", "")})
        else:  # a plan written before reasons were typed: keep its text as the detail
            reason = Reason(ReasonKind.OTHER, str(d["reason"]))
        return cls(stop_from_dict(d), reason)

    @property
    def request_id(self) -> str:
        """Return the stop's request id."""
        return self.stop.request_id


@dataclass
class Plan:
    """One day's routes, one per available crew (possibly empty), and the unplanned stops."""

    date: date
    city: str
    tz: str
    seed: int
    routes: list[Route] = field(default_factory=list)
    unplanned: list[Unplanned] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        """Return the plan's time zone."""
        return ZoneInfo(self.tz)

    @property
    def clock(self) -> DayClock:
        """Return the :class:`DayClock` of the plan's day."""
        return DayClock(self.date, self.zone)

    def route(self, crew: str) -> Route:
        """Return the route of ``crew``."""
        for r in self.routes:
            if r.crew == crew:
                return r
        raise PlanningError(f"crew {crew!r} has no route in the plan of {self.date}")

    def totals(self) -> dict[str, int]:
        """Return plan-wide totals."""
        return {
            "routes": len(self.routes),
            "routes_used": sum(1 for r in self.routes if r.stops),
            "stops_planned": sum(len(r.stops) for r in self.routes),
            "stops_unplanned": len(self.unplanned),
            "load": sum(r.load for r in self.routes),
            "distance_m": sum(r.distance_m for r in self.routes),
            "drive_s": sum(r.drive_s for r in self.routes),
            "service_s": sum(r.service_s for r in self.routes),
        }

    # -- JSON -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the plan as a JSON-ready dict (see ``docs`` for the contract)."""
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "date": self.date.isoformat(),
            "city": self.city,
            "tz": self.tz,
            "seed": self.seed,
            "settings": self.settings,
            "totals": self.totals(),
            "routes": [r.to_dict() for r in self.routes],
            "unplanned": [u.to_dict() for u in self.unplanned],
        }

    def to_json(self, indent: int | None = 1) -> str:
        """Return the plan as JSON text (deterministic key order)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        """Read a plan written by :meth:`to_dict`."""
        try:
            return cls(
                date=date.fromisoformat(d["date"]),
                city=str(d.get("city", "")),
                tz=str(d.get("tz", "UTC")),
                seed=int(d.get("seed", 0)),
                routes=[Route.from_dict(r) for r in d["routes"]],
                unplanned=[Unplanned.from_dict(u) for u in d["unplanned"]],
                settings=dict(d.get("settings", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanningError(
                f"plan JSON is malformed: {exc!r}; expected Plan.to_json output"
            ) from exc

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Read a plan written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    # -- other exports ------------------------------------------------------------------

    def to_geojson(self) -> dict[str, Any]:
        """Return a GeoJSON FeatureCollection: a LineString per route, a Point per stop.

        A route's line follows its ``geometry`` (the road network) when it has one, else
        runs straight from stop to stop.
        """
        feats: list[dict[str, Any]] = []
        for r in self.routes:
            coords: list[list[float | None]]
            if r.geometry:
                coords = [[round(x, 6), round(y, 6)] for x, y in r.geometry]
            else:
                coords = [[r.depot_lon, r.depot_lat]]
                coords += [[p.stop.lon, p.stop.lat] for p in r.stops]
                coords.append([r.depot_lon, r.depot_lat])
            feats.append(
                {
                    "type": "Feature",
                    # RFC 7946: a crew with no stops has no path (not a depot-to-depot line)
                    "geometry": {"type": "LineString", "coordinates": coords} if r.stops
                    else None,
                    "properties": {
                        "kind": "route",
                        "crew": r.crew,
                        "district": _district_out(r.district),
                        "stops": len(r.stops),
                        "distance_m": r.distance_m,
                        "drive_s": r.drive_s,
                        "territory": [_district_out(d) for d in r.crew_districts],
                        "slack_s": r.slack_s,
                        "follows_roads": r.geometry is not None,
                    },
                }
            )
            for i, p in enumerate(r.stops):
                feats.append(
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [p.stop.lon, p.stop.lat]},
                        "properties": {"kind": "stop", "crew": r.crew, "seq": i + 1, **p.to_dict()},
                    }
                )
        return {"type": "FeatureCollection", "features": feats}

    def to_csv(self) -> str:
        """Return one CSV row per planned stop, then one per unplanned stop."""
        buf = io.StringIO()
        cols = [
            "crew", "seq", "request_id", "category", "district", "lon", "lat", "size",
            "arrival", "departure", "navigation_url", "reason",
        ]  # fmt: skip
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in self.routes:
            for i, p in enumerate(r.stops):
                d = p.to_dict()
                row = {k: d.get(k, "") for k in cols} | {"crew": r.crew, "seq": i + 1}
                w.writerow({k: neutralise_formula(v) for k, v in row.items()})
        for u in self.unplanned:
            d = stop_to_dict(u.stop)
            row = {k: d.get(k, "") for k in cols} | {"crew": "", "seq": "",
                                                     "reason": str(u.reason)}
            w.writerow({k: neutralise_formula(v) for k, v in row.items()})
        return buf.getvalue()

    def to_gpx(self) -> str:
        """Return a GPX 1.1 document with one ``<rte>`` per non-empty route.

        A route with a ``geometry`` (the road network) also gets a ``<trk>`` of the same
        name that follows the roads; the ``<rte>`` keeps the stops as waypoints.
        """
        ns = "http://www.topografix.com/GPX/1/1"
        ET.register_namespace("", ns)
        root = ET.Element(f"{{{ns}}}gpx", {"version": "1.1", "creator": "curbside"})
        for r in self.routes:
            if not r.stops:
                continue
            rte = ET.SubElement(root, f"{{{ns}}}rte")
            ET.SubElement(rte, f"{{{ns}}}name").text = r.crew
            pts: list[tuple[float | None, float | None, str, datetime]] = [
                (r.depot_lon, r.depot_lat, f"{r.depot} start", r.start)
            ]
            pts += [(p.stop.lon, p.stop.lat, p.stop.request_id, p.arrival) for p in r.stops]
            pts.append((r.depot_lon, r.depot_lat, f"{r.depot} end", r.end))
            for lon, lat, name, when in pts:
                pt = ET.SubElement(
                    rte, f"{{{ns}}}rtept", {"lat": f"{lat:.6f}", "lon": f"{lon:.6f}"}
                )
                ET.SubElement(pt, f"{{{ns}}}time").text = when.astimezone(ZoneInfo("UTC")).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                )
                ET.SubElement(pt, f"{{{ns}}}name").text = name
        for r in self.routes:
            if not r.stops or not r.geometry:
                continue
            trk = ET.SubElement(root, f"{{{ns}}}trk")
            ET.SubElement(trk, f"{{{ns}}}name").text = r.crew
            seg = ET.SubElement(trk, f"{{{ns}}}trkseg")
            for lon, lat in r.geometry:
                ET.SubElement(seg, f"{{{ns}}}trkpt", {"lat": f"{lat:.6f}", "lon": f"{lon:.6f}"})
        return ET.tostring(root, encoding="unicode", xml_declaration=True)

    def navigation_links(self) -> dict[str, list[str]]:
        """Return, per crew, one Google Maps link per stop in route order."""
        return {r.crew: [p.navigation_url() for p in r.stops] for r in self.routes}


# ---------------------------------------------------------------------------------------
# Checker


def validate_plan(
    plan: Plan,
    crews: Sequence[Crew],
    depots: Mapping[str, Depot],
    travel: TravelModel,
    stops: Sequence[Stop] | None = None,
    tolerance_s: int = 1,
    *,
    slack: Slack | None = None,
) -> list[str]:
    """Check a plan against the roster and a travel model; return the violations found.

    Checks every route for: known crew (once), skills, districts (the crew's
    territory), capacity, stop windows, shift start/end, the reserve before the shift
    end, lunch break (length, window, not overlapping work), max route duration, and
    that times leave room for the travel between stops. With ``stops`` also checks that
    every stop is either planned once or unplanned with a reason.

    Parameters
    ----------
    plan
        The plan.
    crews
        Roster the plan was made for.
    depots
        Depots by code.
    travel
        Travel model used for the plan.
    stops
        Optional candidate stops, to check completeness.
    tolerance_s
        Allowed rounding slack in seconds.
    slack
        Reserve every route must keep before its shift end (and its
        ``max_duration_s``); default: the reserve each route says it kept
        (``Route.reserve_s``).

    Returns
    -------
    list of str
        Human-readable problems; empty when the plan is valid.
    """
    errs: list[str] = []
    by_name = {c.name: c for c in crews}
    tz = plan.zone
    clock = plan.clock
    seen: dict[str, str] = {}
    crews_seen: set[str] = set()
    for r in plan.routes:
        c = by_name.get(r.crew)
        if c is None:
            errs.append(f"route of unknown crew {r.crew!r}")
            continue
        if r.crew in crews_seen:
            errs.append(f"crew {r.crew} has two routes")
        crews_seen.add(r.crew)
        dep = depots.get(c.depot)
        if dep is None:
            errs.append(f"crew {r.crew}: depot {c.depot} unknown")
            continue
        if r.load > c.capacity:
            errs.append(f"crew {r.crew}: load {r.load} > capacity {c.capacity}")
        s0 = clock.local_seconds(c.shift_start)
        s1 = clock.local_seconds(c.shift_end)
        start, end = clock.seconds(r.start), clock.seconds(r.end)
        if start < s0 - tolerance_s:
            errs.append(f"crew {r.crew}: leaves depot at {r.start} before shift start")
        if end > s1 + tolerance_s:
            errs.append(f"crew {r.crew}: back at depot at {r.end} after shift end {c.shift_end}")
        if c.max_duration_s is not None and end - start > c.max_duration_s + tolerance_s:
            errs.append(f"crew {r.crew}: route lasts {end - start} s > max {c.max_duration_s} s")
        reserve = r.reserve_s if slack is None else slack.reserve_s(s1 - s0)
        if r.stops and reserve > 0:
            if end > s1 - reserve + tolerance_s:
                errs.append(f"crew {r.crew}: back at {r.end}, {s1 - end} s before shift end; "
                            f"the reserve is {reserve} s")
            if c.max_duration_s is not None and end - start > (
                    c.max_duration_s - reserve + tolerance_s):
                errs.append(f"crew {r.crew}: route lasts {end - start} s, leaving less than the "
                            f"{reserve} s reserve of max {c.max_duration_s} s")
        for p in r.stops:
            s = p.stop
            if s.request_id in seen:
                errs.append(f"stop {s.request_id} on routes {seen[s.request_id]} and {r.crew}")
            seen[s.request_id] = r.crew
            if s.category not in c.categories:
                errs.append(f"crew {r.crew} lacks skill {s.category} for stop {s.request_id}")
            if c.districts and s.district not in c.districts:
                errs.append(f"crew {r.crew} does not serve district {s.district} ({s.request_id})")
            a = clock.seconds(p.arrival)
            if s.tw_start is not None and a < clock.seconds(s.tw_start) - tolerance_s:
                errs.append(f"stop {s.request_id}: served at {p.arrival} before window")
            if s.tw_end is not None and a > clock.seconds(s.tw_end) + tolerance_s:
                errs.append(f"stop {s.request_id}: arrival {p.arrival} after window end")
            if clock.seconds(p.departure) - a < s.service_s - tolerance_s:
                errs.append(f"stop {s.request_id}: departure leaves less than service time")
        # travel feasibility
        if r.stops:
            pts = [[dep.lon, dep.lat]] + [[p.stop.lon, p.stop.lat] for p in r.stops]
            _, dur = travel.matrix(np.asarray(pts, dtype=np.float64))
            t = start
            for i, p in enumerate(r.stops):
                if r.brk is not None and r.brk.after_stops == i:
                    t = max(t, clock.seconds(r.brk.end))
                need = t + int(dur[i, i + 1])
                if clock.seconds(p.arrival) < need - tolerance_s:
                    errs.append(
                        f"crew {r.crew}: arrival at stop {i + 1} ({p.stop.request_id}) "
                        f"{p.arrival} leaves less than the travel time"
                    )
                t = clock.seconds(p.departure)
            if r.brk is not None and r.brk.after_stops == len(r.stops):
                t = max(t, clock.seconds(r.brk.end))
            back = t + int(dur[len(r.stops), 0])
            if end < back - tolerance_s:
                errs.append(f"crew {r.crew}: returns at {r.end}, before the drive back ends")
            # lunch break
            lunch_needed = end > clock.local_seconds(c.lunch_start)
            if lunch_needed and c.lunch_s > 0:
                if r.brk is None:
                    errs.append(f"crew {r.crew}: works past {c.lunch_start} without a lunch break")
                else:
                    bs, be = clock.seconds(r.brk.start), clock.seconds(r.brk.end)
                    if be - bs < c.lunch_s - tolerance_s:
                        errs.append(f"crew {r.crew}: break of {be - bs} s < {c.lunch_s} s")
                    if not (
                        clock.local_seconds(c.lunch_start) - tolerance_s
                        <= bs
                        <= clock.local_seconds(c.lunch_end) + tolerance_s
                    ):
                        errs.append(
                            f"crew {r.crew}: break starts {r.brk.start.astimezone(tz)} outside "
                            f"{c.lunch_start}-{c.lunch_end}"
                        )
                    k = r.brk.after_stops
                    if k > 0 and clock.seconds(r.stops[k - 1].departure) > bs + tolerance_s:
                        errs.append(f"crew {r.crew}: break overlaps stop {k}")
                    if k < len(r.stops) and clock.seconds(r.stops[k].arrival) < be - tolerance_s:
                        errs.append(f"crew {r.crew}: break overlaps stop {k + 1}")
    if stops is not None:
        unpl = {u.request_id for u in plan.unplanned}
        for u in plan.unplanned:
            if not str(u.reason):
                errs.append(f"unplanned stop {u.request_id} has no reason")
            if u.request_id in seen:
                errs.append(f"stop {u.request_id} is both planned and unplanned")
        for s in stops:
            if s.request_id not in seen and s.request_id not in unpl:
                errs.append(f"stop {s.request_id} is neither planned nor unplanned")
    return errs
