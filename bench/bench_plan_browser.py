"""The plan page at city scale, timed in a real browser (issue 13).

Writes the "Plan page in a browser" section of docs/benchmarks.md and
``bench/results/plan_browser.json``. Run from the repository root::

    .venv/bin/python bench/bench_plan_browser.py [--repeat 3] [--no-write]

The store is the Los Angeles demo (``dispatch init --demo``: 10,000 real requests of
1-3 January 2020, the clock at 07:00 on 2020-01-03) with the whole city planned for that
day (``dispatch plan --date 2020-01-03``: about 2,000 stops on some 80 routes, as a
draft). The dashboard runs as ``streamlit run`` on localhost; Debian's Chromium, driven
by Playwright, signs in as the demo supervisor at 1400x1000 and times, from the click to
the end of Streamlit's run (the status widget gone, the page's confirmation shown):

* opening the page (until its map has drawn), by its address (a new browser page load,
  Streamlit's own start included) and from another page by the sidebar link;
* choosing one route in the route list (the map shows it alone);
* moving a stop (to the nearest crew offered that has room: a refused move, to a crew
  without room, is not timed), locking or unlocking one, adding an urgent request, removing a crew,
  re-optimising, and at the end assigning the plan.

Each action but assigning is repeated ``--repeat`` times (removals and re-optimising
alternately, each removal taking another crew); the table gives the median and the
worst. Targets (issue 13): page open <= 2 s, each edit <= 1.5 s median.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_plan_history import add_history  # noqa: E402
from bench.demo import DEMO_PASSWORD, seed_city_plan  # noqa: E402
from bench.docs import commit as git_commit  # noqa: E402
from bench.docs import provenance, write_section  # noqa: E402
from dispatch.store import UnitOfWork, make_engine  # noqa: E402
from tests.e2e_helpers import RUN_WATCH, chromium, dashboard, runs, settled  # noqa: E402

TITLE = "Plan page in a browser"
RESULTS = ROOT / "bench" / "results" / "plan_browser.json"
TIMEOUT_MS = 300_000


def _seed(url: str) -> None:
    seed_city_plan(url, date(2020, 1, 3))


def _idle(page: Any) -> None:
    settled(page)


def _timed(page: Any, act: Callable[[], None], done: Callable[[], None],
           what: str = "") -> float:
    """Return the seconds from the click to the end of the last run it caused.

    ``done`` waits for what the action shows (its confirmation, the map); the end is
    when Streamlit's last run ended, as the page recorded it (not when the wait for
    quiet noticed it), and at least one run must have started since the click.
    """
    before = runs(page)
    t0 = time.time()
    act()
    done()
    # a run since the click: one more in the same page load, or any in a new one
    load, started = before
    page.wait_for_function(
        "([load, n]) => { const r = window.__curbsideRuns; return r && (r.page !== load "
        "? r.started > 0 : r.started > n); }", arg=[load, started], polling=20)
    end = settled(page)
    if end <= t0:
        raise RuntimeError(f"{what}: Streamlit's last run ended before the click")
    took = end - t0
    now = runs(page)
    count = now[1] - (started if now[0] == load else 0)
    print(f"  {what}: {took:.2f} s ({count} runs)", file=sys.stderr, flush=True)
    return took


def _flash(page: Any, action: str) -> Callable[[], None]:
    return lambda: page.get_by_text(re.compile(rf"^{re.escape(action)}: ")).wait_for()


def _map_drawn(page: Any) -> None:
    inner = page.locator('iframe[title*="folium"]').first.content_frame
    inner.locator(".leaflet-marker-icon, path.leaflet-interactive, "
                  ".leaflet-overlay-pane canvas").first.wait_for(state="attached")


def _adjust_tab(page: Any) -> None:
    page.get_by_role("tab", name="Adjust and assign").click()


def measure(base: str, repeat: int) -> dict[str, list[float]]:
    """Return the seconds of every timed action, by action."""
    times: dict[str, list[float]] = {}
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(RUN_WATCH)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base)
        page.get_by_label("Username").fill("supervisor")
        page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Signed in as supervisor").wait_for()
        _idle(page)

        def opened() -> None:
            page.get_by_role("heading", name="Plan and assign").wait_for()
            page.get_by_text("Stops planned", exact=True).wait_for()
            _idle(page)
            _map_drawn(page)

        for _ in range(repeat):
            times.setdefault("open the page by its address (map drawn)", []).append(
                _timed(page, lambda: page.goto(f"{base}/plan"), opened, "open"))
        for _ in range(repeat):
            # the way a supervisor goes there: from another page, by the sidebar link
            page.goto(f"{base}/board")
            page.get_by_role("heading", name="Live board").wait_for()
            _idle(page)
            link = page.locator('[data-testid="stSidebarNav"] a', has_text="Plan and assign")
            times.setdefault("open the page from the sidebar (map drawn)", []).append(
                _timed(page, link.click, opened, "open from sidebar"))
        rows = page.locator('[data-testid="stDataFrame"]').first
        for i in range(repeat):
            times.setdefault("choose one route in the list", []).append(_timed(
                page, lambda i=i: rows.click(
                    position={"x": 18, "y": 52 + 35 * i}), lambda: _map_drawn(page), "route"))
        for _ in range(repeat):
            # before any edit no stop is locked: re-optimising re-solves every group, as a
            # supervisor's first re-optimise of the morning's plan does
            _adjust_tab(page)
            _idle(page)
            times.setdefault("re-optimise the untouched plan (every group)", []).append(
                _timed(page, page.get_by_role("button", name="Re-optimise what is not locked")
                       .click, _flash(page, "Re-optimise"), "re-optimise every group"))

        def lock_or_unlock() -> tuple[str, str]:
            # a moved stop is locked to its new crew: the picker offers whichever applies
            if page.get_by_role("button", name="Unlock stop").count():
                return "Unlock stop", "Unlock"
            return "Lock stop to its crew", "Lock"

        def move() -> None:
            # the nearest crew may have no room (the move is refused, nothing changes):
            # as a supervisor would, try the next crew offered; only a move is timed
            # the page offers the nearest crew with room first; try that one, then every
            # crew in the list's order (nearest first)
            for k in range(-1, 8):
                _adjust_tab(page)
                _idle(page)
                if k >= 0:
                    page.get_by_label(re.compile(r"^Move to crew")).click()
                    options = page.get_by_role("option")
                    options.first.wait_for()
                    if k >= options.count():
                        page.keyboard.press("Escape")
                        break  # every crew offered was tried
                    options.nth(k).click()
                    _idle(page)
                took = _timed(page, page.get_by_role("button", name="Move stop").click,
                              _flash(page, "Move"), f"move a stop (crew {k + 2} offered)")
                if page.get_by_text(re.compile(r"^Move: routes of ")).count():
                    times.setdefault("move a stop", []).append(took)
                    return
            raise RuntimeError("no crew offered could take the stop")

        for _ in range(repeat):
            for what in ("move a stop", "lock or unlock a stop", "lock or unlock a stop",
                         "add an urgent request"):
                if what == "move a stop":
                    move()
                    continue
                _adjust_tab(page)
                _idle(page)
                button, action = {"add an urgent request": ("Add to today's plan",
                                                            "Add urgent")}.get(
                    what) or lock_or_unlock()
                times.setdefault(what, []).append(_timed(
                    page, lambda b=button: page.get_by_role("button", name=b).click(),
                    _flash(page, action), what))
        # alternately, so that each waits for its own confirmation (a repeated action
        # would find the one before still shown); each removal takes the crew the
        # picker offers first, a different one each time
        steps = [("remove a crew", "Remove crew and re-plan its stops", "Remove crew"),
                 ("re-optimise after the edits", "Re-optimise what is not locked",
                  "Re-optimise")]
        for what, button, action in steps * repeat + [
                ("assign the plan", "Assign routes to crews", "Assign")]:
            _adjust_tab(page)
            _idle(page)
            release = page.get_by_text(re.compile(r"^Release the \d+ lock"))
            if what == "remove a crew" and release.count():
                release.click()  # the crew holds locks: the supervisor releases them
                _idle(page)
            times.setdefault(what, []).append(_timed(page, lambda b=button: page.get_by_role(
                "button", name=b).click(), _flash(page, action), what))
        context.close()
    return times


def section(times: dict[str, list[float]], stops: int, routes: int, started: str,
            load: tuple[float, ...], repeat: int, commit: str, history_days: int = 0) -> str:
    """Return the Markdown section for ``times`` (``history_days`` of past plans kept)."""
    kept = stops_kept(stops, history_days)
    past = (f" With {history_days} past days of plans kept (copies of this one, assigned "
            f"and done, as `bench/bench_plan_history.py` writes them: {kept:,} stop "
            "rows)." if history_days else "")
    lines = [
        f"## {title(history_days)}", "",
        "Issue 13's browser benchmark: the plan page with the whole city planned, timed in "
        "Debian's Chromium (Playwright) against `streamlit run` on localhost, from the "
        "click to the end of the last run of Streamlit it caused, as the page recorded "
        "it (the app root's `data-test-script-state`; the action's own result shown, "
        "and no run started for 0.5 s after, which is not timed). Until stop 23 the end "
        "was the status widget seen gone after a fixed 0.15 s pause, which was counted "
        "in every figure, and a run that started after that pause was missed.", "",
        provenance(f".venv/bin/python bench/bench_plan_browser.py --repeat {repeat}"
                   + (f" --history-days {history_days}" if history_days else ""), started,
                   load, commit), "",
        f"Data: the Los Angeles demo (`dispatch init --demo`), the city planned for "
        f"2020-01-03 as a draft: {stops:,} stops on {routes} routes.{past}", "",
        "| action | runs | median | worst | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for what, ts in times.items():
        limit = 2.0 if what.startswith("open") else 1.5
        med = statistics.median(ts)
        lines.append(f"| {what} | {len(ts)} | {med:.2f} s | {max(ts):.2f} s | "
                     f"≤ {limit:.1f} s median | {'yes' if med <= limit else 'no'} |")
    lines += ["", "Opening the page by its address is a new browser page load: it includes "
              "Streamlit's own start (its scripts, the session, the entry page) before the "
              "plan page runs; from the sidebar is how a supervisor usually gets there. "
              "Removing a crew re-solves the whole group of crews of the same skills and "
              "territory (0.5 s of solver); re-optimising re-solves the groups holding a "
              "lock (after the edits: the moved stops are locked to their new crews), and "
              "every group when none does (the untouched plan), two at a time in worker "
              "processes that share one 0.5 s budget in proportion to their stops; a move "
              "and an urgent stop "
              "re-plan only the routes they touch "
              "(docs/planning.md, *The supervisor's desk*). A move is timed when the "
              "re-plan takes it: the benchmark tries the crew the page offers first (the "
              "nearest with room as planned), then each crew in the list's order, as a "
              "supervisor would after a refusal (a refused move changes nothing and is "
              "not timed; the run's log lists every try)."]
    lines += ["", "For comparison, issue 13 measured at commit 3559f86 (the page then "
              "redrew all 2,016 markers on every click): open 5.0 s, move a stop 6.0 s, "
              "lock 6.5 s, add urgent work 7.6 s, remove a crew 9.1 s, re-optimise "
              "4.2–6.1 s, assign 10.3 s."]
    return "\n".join(lines) + "\n"


def title(history_days: int) -> str:
    """Return the section's title: one section without history, one with it."""
    return TITLE + (" with a year of plans" if history_days else "")


def stops_kept(stops: int, history_days: int) -> int:
    """Return the stop rows stored: today's plan and its ``history_days`` copies."""
    return stops * (1 + history_days)


def main_(argv: list[str] | None = None) -> int:
    """Run the benchmark; write the section and the raw results unless ``--no-write``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--history-days", type=int, default=0,
                    help="keep this many past days of plans in the store (250: a year)")
    args = ap.parse_args(argv)

    commit = git_commit()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "plan.db"
        url = f"sqlite:///{db}"

        def seed(url: str) -> None:
            _seed(url)
            if args.history_days:
                add_history(db, args.history_days)

        with dashboard(url, seed) as base:
            with UnitOfWork(make_engine(url)) as uow:
                plan = uow.plans.for_date("los_angeles", date(2020, 1, 3))[0]
                stops = sum(len(r.stops) for r in plan.routes)
                routes = sum(1 for r in plan.routes if r.stops)
            started = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
            load = os.getloadavg()
            times = measure(base, args.repeat)
    text = section(times, stops, routes, started, load, args.repeat, commit, args.history_days)
    print(text)
    if not args.no_write:
        write_section(title(args.history_days), text)
        results = (RESULTS.with_name("plan_browser_history.json") if args.history_days
                   else RESULTS)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps({"commit": commit, "started": started, "load": load,
                                       "stops": stops, "routes": routes, "times_s": times},
                                      indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
