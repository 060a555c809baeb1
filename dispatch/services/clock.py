"""The store's business clock: real time, or a demo that replays a past morning.

A demo database holds real requests of a past day. With the real clock every request
would be years old and every SLA long overdue; so ``dispatch init --demo`` starts the
store's clock at 07:00 on the pack's demo day, and from there it runs in real time.
Every business timestamp (ages, crew actions, the planning day, page defaults) is read
from :meth:`~dispatch.store.UnitOfWork.now`; sign-ins and sessions keep real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from dispatch.auth import SIGNED_IN, Role, service
from dispatch.citypack import CityPack
from dispatch.errors import ValidationError
from dispatch.store import UnitOfWork, utcnow
from dispatch.store.uow import CLOCK_SETTING

#: The local time the demo clock starts at on the demo day.
DEMO_MORNING = time(7, 0)


@dataclass(frozen=True)
class ClockInfo:
    """What the store's clock says."""

    now: datetime
    replaying: bool
    anchor: datetime | None

    def line(self, tz: object | None = None) -> str:
        """Return a one-line description for the CLI and the sidebar."""
        shown = self.now.astimezone(tz) if tz is not None else self.now  # type: ignore[arg-type]
        if not self.replaying:
            return f"real time ({shown:%Y-%m-%d %H:%M %Z})"
        return (f"demo clock: {shown:%A %d %B %Y, %H:%M} (started at "
                f"{self.anchor:%Y-%m-%d %H:%M %Z})")


@service(*SIGNED_IN, action="read the clock")
def clock_info(uow: UnitOfWork) -> ClockInfo:
    """Return the store's business time and whether it replays a past day."""
    setting = uow.settings.get(CLOCK_SETTING)
    anchor = datetime.fromisoformat(setting["anchor"]) if setting else None
    return ClockInfo(uow.now(), anchor is not None, anchor)


@service(Role.ADMIN, action="set the clock", writes=True)
def set_clock(uow: UnitOfWork, start: datetime | None) -> ClockInfo:
    """Start the store's clock at ``start`` (it runs on from there); ``None``: real time.

    Raises
    ------
    ValidationError
        For a naive ``start``.
    """
    if start is None:
        uow.settings.set(CLOCK_SETTING, None)
    else:
        if start.tzinfo is None:
            raise ValidationError(f"clock start {start} is naive; give a time zone")
        uow.settings.set(CLOCK_SETTING, {"anchor": start.isoformat(),
                                         "set_at": utcnow().isoformat()})
    uow.events.append("store", "clock", "clock_set",
                      {"start": None if start is None else start.isoformat()})
    uow.commit()
    return ClockInfo(start or utcnow(), start is not None, start)


@service(Role.ADMIN, action="set the clock", writes=True)
def start_demo_clock(uow: UnitOfWork, pack: CityPack) -> ClockInfo | None:
    """Start the clock at 07:00 of the pack's demo day, unless a clock is already set.

    A store whose demo clock has run past that day (the demo was left running) starts
    again at that morning. Returns the clock, or ``None`` for a pack without a demo day.
    """
    if pack.demo_day is None:
        return None
    morning = datetime.combine(pack.demo_day, DEMO_MORNING, tzinfo=pack.timezone)
    setting = uow.settings.get(CLOCK_SETTING)
    if setting is not None:
        anchor = datetime.fromisoformat(setting["anchor"])
        if (anchor == morning
                and uow.now().astimezone(pack.timezone).date() == pack.demo_day):
            return ClockInfo(uow.now(), True, anchor)
    uow.settings.set(CLOCK_SETTING, {"anchor": morning.isoformat(),
                                     "set_at": utcnow().isoformat()})
    uow.events.append("store", "clock", "clock_set", {"start": morning.isoformat(),
                                                      "demo": pack.name})
    uow.commit()
    return ClockInfo(morning, True, morning)
