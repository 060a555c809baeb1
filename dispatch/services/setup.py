"""Database set-up: create or migrate the schema and load a city pack's roster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dispatch.auth import Role, service
from dispatch.citypack import CityPack
from dispatch.derived import derived_values
from dispatch.services._spatial import prepare_shapes
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
    prepare_shapes(uow, pack)  # a PostGIS store assigns districts with the pack's shapes
    return InitSummary(pack.name, depots, crews)


@service(Role.ADMIN, action="fill derived columns", writes=True)
def fill_derived(uow: UnitOfWork, pack: CityPack, *, chunk: int = 20_000) -> int:
    """Store the service day and H3 cell of requests written before they were kept.

    Idempotent (rows that have them are left alone); commits chunk by chunk. Returns
    how many rows were filled.
    """
    total = 0
    while True:
        rows = uow.requests.missing_derived(chunk)
        if not rows:
            break
        updates = [{"id": r.id, **derived_values(
            {"requested_at": r.requested_at, "lon": r.lon, "lat": r.lat}, pack.timezone)}
            for r in rows]
        for u in updates:
            if u.get("service_day") is None:  # nothing to derive it from: mark it known
                u["service_day"] = date(1970, 1, 1)
        uow.requests.update_many(updates, new_version=False)
        uow.commit()
        total += len(rows)
        uow.begin_write()
    return total
