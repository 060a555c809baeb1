"""Where a supervisor may move a stop: the crews able to take it, nearest first.

Pure: a plan's routes in, a ranked list out. A crew may take a stop when it has the
stop's category among its skills and its territory (the districts it serves; empty is
the whole city) holds the stop's district: the same rule :func:`~dispatch.planning.replan`
enforces, so every offered target is one the re-plan accepts. Crews are ranked by the
great-circle distance from the stop to their route: its nearest stop, or its depot when
the route is empty.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from dispatch.planning.plan import Route
from dispatch.planning.problem import Stop

#: Mean Earth radius used for the ranking distances, in metres.
_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class MoveTarget:
    """A crew a stop may move to, and how far its route is from the stop.

    Parameters
    ----------
    crew
        Crew name.
    distance_m
        Great-circle distance from the stop to the route's nearest stop (or its depot),
        in metres; ``None`` when the stop has no location.
    measured_from
        ``"stop"`` when measured to one of the route's stops, ``"depot"`` when the route
        has no located stop and its depot was used.
    spare_s
        Crew time left after the route as planned: from its planned return to the end of
        its shift (less the reserve it keeps, and within its longest working day), in
        seconds; 0 when there is none.
    spare_load
        Capacity left (items), 0 when full.
    """

    crew: str
    distance_m: float | None
    measured_from: str
    spare_s: int = 0
    spare_load: int = 0

    @property
    def has_room(self) -> bool:
        """Whether the crew has any time and capacity left for another stop."""
        return self.spare_s > 0 and self.spare_load > 0

    def fits(self, stop: Stop) -> bool:
        """Whether the time and capacity left cover ``stop``'s service and size.

        Still a guess (the detour to the stop is not counted), but a closer one than
        :attr:`has_room` (measured in docs/planning.md, *The supervisor's desk*).
        """
        return self.spare_s >= stop.service_s and self.spare_load >= stop.size


def spare_of(route: Route) -> tuple[int, int]:
    """Return the crew time (seconds) and capacity (items) a route leaves unused.

    The time runs from the route's planned return to its shift's end less the reserve
    it keeps (or to its start plus its longest working day, when that comes first).
    """
    latest = route.shift_end.timestamp() - route.reserve_s
    if route.max_duration_s is not None:
        latest = min(latest, route.start.timestamp() + route.max_duration_s)
    return max(0, int(latest - route.end.timestamp())), max(0, route.capacity - route.load)


def _haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Return the great-circle distance between two ``(lon, lat)`` points, in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def serves(route: Route, stop: Stop, territory: Sequence[str] | None = None) -> bool:
    """Return whether the route's crew may take ``stop``.

    Parameters
    ----------
    route
        The crew's route (its skills and the territory it was planned with).
    stop
        The stop to place.
    territory
        The crew's districts per the city pack, if known; the stop must lie in it as
        well as in the route's own territory.
    """
    if stop.category not in route.skills:
        return False
    for districts in (route.territory, tuple(territory or ())):
        if districts and stop.district not in districts:
            return False
    return True


def rank_move_targets(
    stop: Stop,
    current_crew: str | None,
    routes: Sequence[Route],
    territories: Mapping[str, Sequence[str]] | None = None,
    *,
    exclude: Collection[str] = (),
) -> list[MoveTarget]:
    """Return the crews ``stop`` may move to, nearest route first.

    Parameters
    ----------
    stop
        The stop to move.
    current_crew
        The crew it is on now (never offered), or ``None``.
    routes
        The plan's routes.
    territories
        ``{crew: districts it serves}`` from the city pack's roster; a crew missing
        from it is judged by its route's territory alone.
    exclude
        Crews not to offer (e.g. those taken out of the plan).

    Returns
    -------
    list of MoveTarget
        The eligible crews sorted by distance (ties and an unlocated stop: by name).
    """
    territories = territories or {}
    out: list[MoveTarget] = []
    for route in routes:
        if route.crew == current_crew or route.crew in exclude:
            continue
        if not serves(route, stop, territories.get(route.crew)):
            continue
        spare = spare_of(route)
        if stop.lon is None or stop.lat is None:
            out.append(MoveTarget(route.crew, None, "stop", *spare))
            continue
        near = [_haversine_m(stop.lon, stop.lat, p.stop.lon, p.stop.lat) for p in route.stops
                if p.stop.lon is not None and p.stop.lat is not None
                and p.request_id != stop.request_id]
        if near:
            out.append(MoveTarget(route.crew, min(near), "stop", *spare))
        else:
            out.append(MoveTarget(route.crew, _haversine_m(stop.lon, stop.lat, route.depot_lon,
                                                           route.depot_lat), "depot", *spare))
    out.sort(key=lambda t: (t.distance_m is None, t.distance_m or 0.0, t.crew))
    return out


def first_with_room(targets: Sequence[MoveTarget], stop: Stop | None = None) -> int:
    """Return the index of the nearest target with room (0 when none has).

    What a move offers first: the nearest crew that can take the stop, not a nearer
    one the re-plan would refuse for want of time or capacity. With ``stop``, room is
    room for that stop (:meth:`MoveTarget.fits`); without, any room at all.

    >>> first_with_room([MoveTarget("A", 100.0, "stop"), MoveTarget("B", 900.0, "stop", 600, 3)])
    1
    """
    return next((i for i, t in enumerate(targets)
                 if (t.fits(stop) if stop is not None else t.has_room)), 0)
