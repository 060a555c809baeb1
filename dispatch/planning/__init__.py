"""Planning engine: open requests to one ordered route per crew, with PyVRP.

Pure: no streamlit, no sqlalchemy, no network (except :class:`OsrmTravel` when asked).
Crews stay inside their districts; routes keep a :class:`Slack` reserve.

Main entry points::

    plan = plan_day(stops, crews, depots, day=day, tz=tz)
    plan2 = replan(plan, moves={"1-123": "NC-bulky-2"})
    problems = validate_plan(plan, crews, depots, HaversineTravel())
"""

from __future__ import annotations

from dispatch.planning.plan import (
    Break,
    Plan,
    PlannedStop,
    Route,
    Unplanned,
    validate_plan,
)
from dispatch.planning.planner import DEFAULT_TIME_LIMIT_S, auto_iterations, plan_day, replan
from dispatch.planning.problem import (
    DEFAULT_SLACK,
    Lock,
    Reason,
    ReasonKind,
    Slack,
    Stop,
    stop_from_request,
    urgency_of,
)
from dispatch.planning.replay import select_stops_for_day
from dispatch.planning.travel import (
    BandedTravel,
    HaversineTravel,
    NetworkTravel,
    OsrmTravel,
    TravelModel,
)

__all__ = [
    "DEFAULT_SLACK",
    "DEFAULT_TIME_LIMIT_S",
    "BandedTravel",
    "Break",
    "HaversineTravel",
    "Lock",
    "NetworkTravel",
    "OsrmTravel",
    "Plan",
    "PlannedStop",
    "Reason",
    "ReasonKind",
    "Route",
    "Slack",
    "Stop",
    "TravelModel",
    "Unplanned",
    "auto_iterations",
    "plan_day",
    "replan",
    "select_stops_for_day",
    "stop_from_request",
    "urgency_of",
    "validate_plan",
]
