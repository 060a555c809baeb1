"""The store the plan benchmarks start from: the Los Angeles demo with the city planned."""

from __future__ import annotations

import os
from datetime import date

from dispatch.cli import main

#: The demo accounts' password (``dispatch init --demo`` reads ``CURBSIDE_PASSWORD``).
DEMO_PASSWORD = "curbside-demo"


def seed_city_plan(url: str, day: date) -> None:
    """Create the demo store at ``url`` and plan the whole city for ``day`` (a draft).

    The demo is 10,000 real requests of 1-3 January 2020 with the clock at 07:00 on
    2020-01-03; planned for that day it is about 2,000 stops on some 75 routes.
    """
    os.environ.setdefault("CURBSIDE_PASSWORD", DEMO_PASSWORD)
    assert main(["--db", url, "init", "--demo"]) == 0
    assert main(["--db", url, "plan", "--date", day.isoformat()]) == 0
