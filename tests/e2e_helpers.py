"""Shared pieces of the browser suites: a seeded dashboard on localhost and Chromium.

The dashboard is ``streamlit run streamlit_app.py`` on a free local port over an
embedded database seeded through the ``dispatch`` CLI. The browser is Debian's
``/usr/bin/chromium`` driven by Playwright's Python client (never a downloaded browser).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
PASSWORD = "e2e-password-123"
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = int(os.environ.get("E2E_TIMEOUT_MS", "90000"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def dashboard(url: str, seed: Callable[[str], None]) -> Iterator[str]:
    """Seed the database at ``url`` with ``seed(url)``, serve the dashboard, yield its base URL."""
    os.environ["CURBSIDE_PASSWORD"] = PASSWORD
    seed(url)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "CURBSIDE_CITY": "los_angeles"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
         "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("streamlit did not come up within 60 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def chromium() -> Iterator[Any]:
    """Yield a headless Debian Chromium under Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def shot(page: Any, name: str) -> None:
    """Save a full-page screenshot as ``test-artifacts/e2e/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(browser: Any, base: str, username: str, viewport: dict[str, int]) -> Any:
    """Open a new browser context, sign in as ``username`` and return its page."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(base)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {username}").wait_for()
    return page


def idle(page: Any) -> None:
    """Wait until Streamlit has finished the current run."""
    page.wait_for_timeout(500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")


#: Records, in every page, when Streamlit starts and ends a run: the app root's
#: ``data-test-script-state`` attribute (what Streamlit's own browser tests wait on).
RUN_WATCH = """
(() => {
  const runs = window.__curbsideRuns = {started: 0, idleAt: 0, state: null,
                                        page: Math.random()};
  const note = (app) => {
    const state = app.getAttribute('data-test-script-state');
    if (state === runs.state) return;
    if (state === 'running') runs.started += 1;
    if (state === 'notRunning') runs.idleAt = Date.now();
    runs.state = state;
  };
  const find = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) { requestAnimationFrame(find); return; }
    note(app);
    new MutationObserver(() => note(app)).observe(
      app, {attributes: true, attributeFilter: ['data-test-script-state']});
  };
  find();
})();
"""
#: An action is over when Streamlit has started no run for this long after its last one
#: (a map that reports back after drawing starts one more); the wait is not timed.
QUIET_MS = 500


def runs(page: Any) -> tuple[float, int]:
    """Return which page load this is, and how many runs Streamlit started in it."""
    got = page.evaluate("window.__curbsideRuns ? [window.__curbsideRuns.page, "
                        "window.__curbsideRuns.started] : [0, 0]")
    return float(got[0]), int(got[1])


def settled(page: Any, quiet_ms: int = QUIET_MS) -> float:
    """Wait until Streamlit has run nothing for ``quiet_ms``; return its last run's end.

    The end is in epoch seconds, as the page recorded it.
    """
    page.wait_for_function(
        "(q) => { const r = window.__curbsideRuns; return r && r.state === 'notRunning' "
        "&& Date.now() - r.idleAt >= q; }", arg=quiet_ms, polling=20)
    return float(page.evaluate("window.__curbsideRuns.idleAt")) / 1000


def streets_drawn(inner: Any, timeout_ms: int = 30_000) -> int:
    """Wait for a map's offline street layer and return how many streets it holds.

    The layer draws on one canvas in the ``curbsideStreets`` pane (no element per
    street); the map script keeps it as ``window.curbsideStreets``.
    """
    inner.locator(".leaflet-curbsideStreets-pane canvas").first.wait_for(
        state="attached", timeout=timeout_ms)
    inner.locator("body").evaluate(
        "() => new Promise(r => { const t = () => window.curbsideStreets ? r() : "
        "setTimeout(t, 50); t(); })")
    return int(inner.locator("body").evaluate(
        "() => window.curbsideStreets.getLayers().length"))


def hover_a_street(page: Any, frame: Any) -> str:
    """Move the mouse onto a named street the map shows; return that street's name."""
    inner = frame.content_frame
    found = inner.locator("body").evaluate("""() => {
        const map = window.map, size = map.getSize();
        for (const layer of window.curbsideStreets.getLayers()) {
            const name = layer.feature.properties.name;
            if (!name) { continue; }
            const parts = layer.getLatLngs();
            const line = Array.isArray(parts[0]) ? parts[0] : parts;
            if (line.length < 2) { continue; }
            const a = map.latLngToContainerPoint(line[0]);
            const b = map.latLngToContainerPoint(line[1]);
            const p = {x: (a.x + b.x) / 2, y: (a.y + b.y) / 2};
            if (p.x > 60 && p.y > 120 && p.x < size.x - 60 && p.y < size.y - 60) {
                return {name: name, x: p.x, y: p.y};
            }
        }
        return null;
    }""")
    assert found is not None, "no named street in view"
    box = frame.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + found["x"], box["y"] + found["y"])
    return str(found["name"])


def open_page(browser: Any, base: str, username: str, link: str,
              viewport: dict[str, int], heading: str | None = None) -> Any:
    """Sign in as ``username``, open the page the navigation calls ``link``, wait for it.

    Returns the page, its run finished; ``heading`` is the page's title where it
    differs from the link.
    """
    page = sign_in(browser, base, username, viewport)
    page.get_by_role("link", name=link).click()
    page.get_by_role("heading", name=heading or link).wait_for()
    idle(page)
    return page


def locate_on_intake(page: Any, address: str, zipcode: str) -> None:
    """Type an address and ZIP on Intake and press *Locate*, until its pin is shown."""
    page.get_by_label("Address").fill(address)
    page.get_by_label("ZIP").fill(zipcode)
    page.get_by_role("button", name="Locate").click()
    page.get_by_text(re.compile(r"^Pin \(address\)")).wait_for()
    idle(page)
