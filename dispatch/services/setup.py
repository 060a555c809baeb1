"""Database set-up: create or migrate the schema and load a city pack's roster."""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.auth import Role, service
from dispatch.citypack import CityPack
from dispatch.store import UnitOfWork


@dataclass(frozen=True)
class InitSummary:
    """What :func:`load_roster` changed."""

    city: str
    depots_changed: int
    crews_changed: int

    def line(self) -> str:
        """Return the one-line summary the CLI prints."""
        return (
            f"city {self.city}: {self.depots_changed} depots and "
            f"{self.crews_changed} crews added or updated"
        )


@service(Role.ADMIN, action="load the city pack", writes=True)
def load_roster(uow: UnitOfWork, pack: CityPack) -> InitSummary:
    """Write the pack's depots and crews into the store (idempotent) and commit.

    Two ``dispatch init`` at once: the second waits for the first (a named lock) and
    then finds nothing to change.
    """
    uow.lock("init")
    depots = 0
    for depot in pack.depots.values():
        if uow.roster.upsert_depot(
            pack.name,
            {"code": depot.code, "name": depot.name, "address": depot.address,
             "lon": depot.lon, "lat": depot.lat},
        ):
            depots += 1
    crews = 0
    for crew in pack.crews:
        if uow.roster.upsert_crew(
            pack.name,
            {"name": crew.name, "categories": list(crew.categories), "depot_code": crew.depot,
             "districts": list(crew.districts), "shift_start": crew.shift_start,
             "shift_end": crew.shift_end, "capacity": crew.capacity,
             "organisation": crew.organisation},
        ):
            crews += 1
    if depots or crews:
        uow.events.append("city", pack.name, "roster_loaded",
                          {"depots_changed": depots, "crews_changed": crews})
    uow.commit()
    return InitSummary(pack.name, depots, crews)
