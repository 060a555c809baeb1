"""Benchmark the product at a city's whole history: 10k, 100k and 1M stored requests.

Usage (from the repository root)::

    .venv/bin/python bench/bench_scale.py                      # 10k, 100k, 1M on SQLite
    .venv/bin/python bench/bench_scale.py --sizes 10k,100k     # fewer sizes
    .venv/bin/python bench/bench_scale.py --pages requests_map,kpis --no-write
    .venv/bin/python bench/bench_scale.py --sizes 1M --db-url postgresql://USER@HOST:PORT/DB
    .venv/bin/python bench/bench_scale.py --report            # rewrite the doc section only

What it does, one size after the other, one heavy process at a time:

1. **Data.** Request files of N rows are made from the 10,000 real MyLA311 rows of
   ``data/requests/los_angeles/myla311_2020-01-01_to_03.csv``: copy ``k`` (k = 0 .. N/10k-1)
   has every timestamp (createddate, updateddate, closeddate, servicedate) shifted by
   +3 days x k, its coordinates moved by up to 3 m in a random direction (seeded per
   copy) and ``srnumber`` suffixed ``-k`` (copy 0 is the real file). They are written as
   MyLA311 CSVs under ``$CURBSIDE_SCALE_DIR`` (default ``/tmp/curbside-scale``) and
   reused when present. The "daily" file of a size is the next copy (k = N/10k): 10k
   new ids on the three days after the data.
2. **Databases.** ``dispatch --db URL init`` then ``dispatch --db URL import FILE
   --no-geocode`` in a child process: wall time and the child's peak RSS (``os.wait4``).
   A file the importer refuses (it caps a file at 200 MiB; 1M rows are 258 MB) is
   recorded as such, and the same rows are then imported in files of 500,000 rows.
   The store clock is set to 07:00 of the last replayed day D (``dispatch clock set``),
   so "today" is inside the data. The daily file is imported into a copy of the
   database (SQLite backup / PostgreSQL ``CREATE DATABASE ... TEMPLATE``).
3. **Planner.** ``candidate_requests(uow, pack, D)`` in a fresh process (first and second
   call), then ``dispatch plan --date D --district 13 --time-limit 1`` end to end; the
   plan is then assigned (``dispatch assign``) so that the route sheets and the crew
   page have routes to show.
4. **Pages.** Every page of ``streamlit_app.py``'s ``PAGES`` through
   ``streamlit.testing.v1.AppTest`` on the entry point (sidebar included), signed in
   with a real session token (``tests/signin.py``): an admin, or for "My route today" a
   crew member of a crew with a route on D. One fresh process per page and size:
   *cold* is the first render (the page's own imports done before the clock starts,
   Streamlit caches empty), *warm* the first render of a new session in the same process
   (caches filled; median of 2 sessions), *rerun* the second session's rerun. Each
   render has a timeout; a page that runs out shows as ``> N s``.
5. **Growth.** The exponent ``log(t2/t1) / log(n2/n1)`` of each curve between sizes.

Results go, raw, to ``$CURBSIDE_SCALE_DIR/results-<backend>.json`` and (unless
``--no-write``) ``bench/results/scale_<backend>.json``, and to the "Scale" section of
``docs/benchmarks.md`` (other sections kept), which holds the last SQLite run, the last
PostgreSQL run and issue 12's targets at the largest size. ``--report`` writes that
section again from the raw results without measuring anything.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import datetime as dt
import itertools
import json
import math
import os
import platform
import random
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.docs import write_section  # noqa: E402

SOURCE_CSV = ROOT / "data" / "requests" / "los_angeles" / "myla311_2020-01-01_to_03.csv"
CACHE = Path(os.environ.get("CURBSIDE_SCALE_DIR", "/tmp/curbside-scale"))
#: Where a written run's raw results are committed (``scale_<backend>.json``).
RESULTS = ROOT / "bench" / "results"
CITY = "los_angeles"
COPY_ROWS = 10_000
SHIFT_DAYS = 3
JITTER_M = 3.0
SEED = 20200101
#: The source file's last creation day; copy k's last day is this + 3 k days.
LAST_SOURCE_DAY = dt.date(2020, 1, 3)
TIME_FIELDS = ("createddate", "updateddate", "closeddate", "servicedate")
MYLA_FORMAT = "%m/%d/%y %H:%M"
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
PLAN_DISTRICT = "13"
#: Rows per file when a whole file is refused (the importer caps a file at 200 MiB).
PART_ROWS = 500_000
PG_PREFIX = "bench_scale_"
ADMIN = ("bench-admin", "admin")
PY = sys.executable
#: A click measured after the rerun: page -> (widget kind, key, value); a measure of issue 12.
ACTIONS = {"app_pages/kpis.py": ("radio", "kpi_dur_measure", "Time to first action")}


# ---------------------------------------------------------------------------- data


def size_label(n: int) -> str:
    """Return ``10k``, ``100k`` or ``1M`` for ``n`` rows."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def parse_sizes(text: str) -> list[int]:
    """Parse ``10k,100k,1M`` (any multiple of 10,000 rows) into row counts."""
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part in SIZES:
            n = SIZES[part]
        elif part.endswith("k"):
            n = int(part[:-1]) * 1000
        elif part.endswith("m"):
            n = int(part[:-1]) * 1_000_000
        else:
            n = int(part)
        if n <= 0 or n % COPY_ROWS:
            raise SystemExit(f"size {part!r} is not a multiple of {COPY_ROWS:,} rows")
        out.append(n)
    return sorted(set(out))


def last_day(n: int) -> dt.date:
    """Return the last replayed day of an ``n``-row database (the day its clock shows)."""
    return LAST_SOURCE_DAY + dt.timedelta(days=SHIFT_DAYS * (n // COPY_ROWS - 1))


def _source_rows() -> tuple[list[str], list[dict[str, str]]]:
    with SOURCE_CSV.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _myla_time(value: dt.datetime) -> str:
    """Format like the source file: ``1/2/20 8:43``."""
    return f"{value.month}/{value.day}/{value:%y} {value.hour}:{value:%M}"


def replica(rows: list[dict[str, str]], k: int) -> Iterator[dict[str, str]]:
    """Yield copy ``k`` of ``rows``: dates +3 k days, positions within 3 m, new ids.

    Copy 0 is the source itself. Timestamps are local wall-clock times (as MyLA311 writes
    them), shifted as such.
    """
    if k == 0:
        yield from rows
        return
    rng = random.Random(SEED * 1000 + k)
    shift = dt.timedelta(days=SHIFT_DAYS * k)
    for row in rows:
        out = dict(row)
        out["srnumber"] = f"{row['srnumber']}-{k}"
        for name in TIME_FIELDS:
            if row.get(name):
                out[name] = _myla_time(dt.datetime.strptime(row[name], MYLA_FORMAT) + shift)
        angle, dist = rng.uniform(0, 2 * math.pi), JITTER_M * math.sqrt(rng.random())
        if row.get("latitude") and row.get("longitude"):
            lat, lon = float(row["latitude"]), float(row["longitude"])
            dlat = dist * math.cos(angle) / 111_320.0
            dlon = dist * math.sin(angle) / (111_320.0 * math.cos(math.radians(lat)))
            out["latitude"], out["longitude"] = f"{lat + dlat:.8f}", f"{lon + dlon:.8f}"
        yield out


def _write_copies(path: Path, copies: range) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fields, rows = _source_rows()
    part = path.with_suffix(".part")
    t = time.perf_counter()
    with part.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for k in copies:
            writer.writerows(replica(rows, k))
    part.rename(path)
    log(f"  wrote {path} ({len(copies) * len(rows):,} rows, {path.stat().st_size / 1e6:.0f} MB, "
        f"{time.perf_counter() - t:.1f} s)")
    return path


def request_file(n: int) -> Path:
    """Return the cached ``n``-row request file (copies 0 .. n/10k - 1), writing it once."""
    return _write_copies(CACHE / "data" / f"myla311_scale_{size_label(n)}.csv",
                         range(n // COPY_ROWS))


def daily_file(n: int) -> Path:
    """Return the cached next-day file of an ``n``-row database (copy n/10k)."""
    k = n // COPY_ROWS
    return _write_copies(CACHE / "data" / f"myla311_scale_copy{k}.csv", range(k, k + 1))


# ---------------------------------------------------------------------------- processes


@dataclass
class Measured:
    """One child process: wall time, peak RSS, exit code and output."""

    wall_s: float
    rss_mb: float
    rc: int | None
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Whether the child exited 0 in time."""
        return self.rc == 0 and not self.timed_out

    def error(self) -> str:
        """Return the last meaningful line of the child's error output."""
        if self.timed_out:
            return f"timed out after {self.wall_s:.0f} s"
        lines = [ln for ln in self.stderr.splitlines()
                 if ln.strip() and "ScriptRunContext" not in ln and "%|" not in ln]
        return (lines[-1] if lines else f"exit code {self.rc}")[:300]


def run_measured(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd``; return its wall time and peak RSS (``wait4``), killing it after ``timeout``.

    The peak RSS is the child's ``ru_maxrss``, which on Linux also covers the children it
    waited for (the solver's worker processes).
    """
    if env is None:
        # the venv's `dispatch` script imports whichever checkout is installed editable;
        # PYTHONPATH puts this checkout's packages first, so the code measured is this one
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env,
                                start_new_session=True)
        done: dict[str, Any] = {}

        def reap() -> None:
            _, status, usage = os.wait4(proc.pid, 0)
            done.update(t=time.perf_counter(), status=status, usage=usage)

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        waiter.join(timeout)
        timed_out = waiter.is_alive()
        if timed_out:
            os.killpg(proc.pid, signal.SIGKILL)
            waiter.join()
        proc.returncode = os.waitstatus_to_exitcode(done["status"])
        out.seek(0)
        err.seek(0)
        return Measured(done["t"] - t0, done["usage"].ru_maxrss / 1024.0,
                        None if timed_out else proc.returncode, timed_out, out.read(),
                        err.read())


def dispatch_cmd(url: str, *args: str) -> list[str]:
    return [str(Path(PY).parent / "dispatch"), "--db", url, "--city", CITY, *args]


def log(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------- stores


class Store:
    """Where the databases of one backend live: one per size, and scratch copies."""

    backend = "sqlite"

    def url(self, name: str) -> str:
        """Return the URL of database ``name``."""
        return f"sqlite:///{self.path(name)}"

    def path(self, name: str) -> Path:
        """Return the file of database ``name``."""
        return CACHE / "db" / f"scale_{name}.db"

    def drop(self, name: str) -> None:
        """Remove database ``name`` if it exists."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path(name)}{suffix}").unlink(missing_ok=True)

    def create(self, name: str) -> None:
        """Make database ``name`` new and empty."""
        self.drop(name)
        self.path(name).parent.mkdir(parents=True, exist_ok=True)

    def copy(self, src: str, dst: str) -> None:
        """Copy database ``src`` to ``dst`` (SQLite's online backup)."""
        self.create(dst)
        a, b = sqlite3.connect(self.path(src)), sqlite3.connect(self.path(dst))
        try:
            a.backup(b)
        finally:
            b.close()
            a.close()

    def size_mb(self, name: str) -> float:
        """Return the size of database ``name`` on disk, MB."""
        return sum(Path(f"{self.path(name)}{s}").stat().st_size
                   for s in ("", "-wal") if Path(f"{self.path(name)}{s}").exists()) / 1e6


class PostgresStore(Store):
    """Databases ``<db>_<size>`` on the server of ``base_url``, ``<db>`` its database name.

    With ``postgresql://.../curbside_scale`` the 1M database is ``curbside_scale_1m`` and
    its scratch copy for the daily import ``curbside_scale_1m_daily``; no other database of
    the server is touched.
    """

    backend = "postgresql"

    def __init__(self, base_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.base = make_url(base_url)
        self.admin = self.base.set(drivername="postgresql", database="postgres")
        self.prefix = f"{self.base.database or PG_PREFIX.rstrip('_')}_"

    def dbname(self, name: str) -> str:
        """Return the PostgreSQL database name of ``name`` (always ``<db>_*``)."""
        db = self.prefix + name.lower().replace("-", "_")
        if not db.startswith(self.prefix) or not db.replace("_", "").isalnum():
            raise ValueError(db)
        return db

    def url(self, name: str) -> str:  # noqa: D102
        return self.base.set(database=self.dbname(name)).render_as_string(hide_password=False)

    def _admin(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.admin.render_as_string(hide_password=False),
                             autocommit=True) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    def drop(self, name: str) -> None:  # noqa: D102
        self._admin(f'DROP DATABASE IF EXISTS "{self.dbname(name)}" WITH (FORCE)')

    def create(self, name: str) -> None:  # noqa: D102
        self.drop(name)
        self._admin(f'CREATE DATABASE "{self.dbname(name)}"')

    def copy(self, src: str, dst: str) -> None:  # noqa: D102
        self.drop(dst)
        self._admin(f'CREATE DATABASE "{self.dbname(dst)}" TEMPLATE "{self.dbname(src)}"')

    def size_mb(self, name: str) -> float:  # noqa: D102
        rows = self._admin(f"SELECT pg_database_size('{self.dbname(name)}')")
        return float(rows[0][0]) / 1e6


# ---------------------------------------------------------------------------- pages


def app_pages() -> list[tuple[str, str]]:
    """Return ``(file, title)`` of every page in ``streamlit_app.py``'s ``PAGES``."""
    tree = ast.parse((ROOT / "streamlit_app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "PAGES" and isinstance(node.value, ast.List)):
            out = []
            for item in node.value.elts:
                assert isinstance(item, ast.Tuple)
                path, title = item.elts[1], item.elts[2]
                assert isinstance(path, ast.Constant) and isinstance(title, ast.Constant)
                out.append((str(path.value), str(title.value)))
            return out
    raise SystemExit("no PAGES list in streamlit_app.py")


def page_modules(*files: Path) -> list[str]:
    """Return the modules the scripts ``files`` import anywhere (to import them early)."""
    names: list[str] = []
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
    return list(dict.fromkeys(names))


def payload_bytes(at: Any) -> dict[str, int]:
    """Measure what a render sends to the browser, from the AppTest element tree.

    ``total``: the serialised size of every element's protobuf message in the main area
    and the sidebar (text, tables as Arrow, charts as Vega specs, iframes, components),
    i.e. the deltas the server sends, without their framing. ``map``: the UTF-8 size of
    the arguments of the ``streamlit_folium`` components (the map's HTML head and script).
    ``html``: ``map`` plus the bodies of Markdown, HTML and iframe elements.
    """
    sizes = {"total": 0, "map": 0, "html": 0}

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        kind = getattr(node, "type", "")
        if proto is not None and hasattr(proto, "ByteSize"):
            sizes["total"] += proto.ByteSize()
            if kind == "component_instance" and "folium" in proto.component_name:
                n = len(proto.json_args.encode())
                sizes["map"] += n
                sizes["html"] += n
            elif kind in ("markdown", "html"):
                sizes["html"] += len(proto.body.encode())
            elif kind == "iframe":
                sizes["html"] += len(proto.srcdoc.encode()) + len(proto.src.encode())
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                walk(child)

    walk(at.main)
    walk(at.sidebar)
    return sizes


def _emit(record: dict[str, Any]) -> None:
    import resource

    record["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def child_page(url: str, page: str, timeout: float) -> None:
    """Render ``page`` cold, warm and rerun in this fresh process; print JSON lines."""
    import importlib

    os.environ["DATABASE_URL"] = url
    os.environ["CURBSIDE_CITY"] = CITY
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "tests"))
    t0 = time.perf_counter()
    for name in page_modules(ROOT / "streamlit_app.py", ROOT / page):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    from signin import session_token
    from streamlit.testing.v1 import AppTest

    from app_pages.common import TOKEN_KEY
    from dispatch.auth import Principal, Role
    from dispatch.services.routesheets import crews_on_day, newest_plan_date
    from dispatch.store import UnitOfWork, make_engine

    imports_s = time.perf_counter() - t0
    principal = Principal(ADMIN[0], Role.ADMIN)
    if page.endswith("crew.py"):  # a crew member sees their own route
        engine = make_engine(url)
        with UnitOfWork(engine, actor=principal) as uow:
            day = newest_plan_date(uow, CITY)
            crews = crews_on_day(uow, CITY, day) if day else []
        engine.dispose()
        if crews:
            principal = Principal(f"bench-crew-{crews[0]}".lower(), Role.CREW, crew=crews[0])
    token = session_token(url, principal)
    _emit({"stage": "ready", "imports_s": imports_s, "principal": principal.username})

    def expire(stage: str) -> None:
        # AppTest's own timeout waits for the script to reach its next Streamlit call,
        # which a long computation may not do for minutes: end the process instead
        _emit({"stage": stage, "timeout_s": timeout})
        os._exit(3)

    def render(at: Any, stage: str, action: Any = None) -> None:
        timer = threading.Timer(timeout, expire, args=(stage,))
        timer.daemon = True
        t = time.perf_counter()
        timer.start()
        try:
            (action or at).run(timeout=timeout + 3600)
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - t
        errors = [e.message for e in at.exception] + [e.value for e in at.error]
        _emit({"stage": stage, "s": elapsed, "errors": errors[:3],
               "title": at.title[0].value if len(at.title) else None, **payload_bytes(at)})

    def session() -> Any:
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=timeout)
        at.session_state[TOKEN_KEY] = token
        at.switch_page(page)
        return at

    render(session(), "cold")
    render(session(), "warm")  # two new sessions: warm is the median of 2
    second = session()
    render(second, "warm2")
    render(second, "rerun")
    if page in ACTIONS:
        kind, key, value = ACTIONS[page]
        render(second, "action", getattr(second, kind)(key=key).set_value(value))


def child_planner(url: str, day: str) -> None:
    """Time ``candidate_requests`` for ``day`` twice in this fresh process; print JSON."""
    from dispatch.auth import Principal, Role
    from dispatch.citypack import load_city_pack
    from dispatch.services.planning import candidate_requests
    from dispatch.store import UnitOfWork, make_engine

    pack = load_city_pack(CITY)
    engine = make_engine(url)
    principal = Principal("bench-supervisor", Role.SUPERVISOR)
    times, found = [], []
    for _ in range(2):
        t = time.perf_counter()
        with UnitOfWork(engine, actor=principal) as uow:
            found = candidate_requests(uow, pack, dt.date.fromisoformat(day))
        times.append(time.perf_counter() - t)
    _emit({"first_s": times[0], "second_s": times[1], "candidates": len(found),
           "located": sum(r.lon is not None for r in found)})


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


# ---------------------------------------------------------------------------- one size


def measure_size(store: Store, n: int, pages: list[tuple[str, str]],
                 args: argparse.Namespace) -> dict[str, Any]:
    """Build (or reuse) the ``n``-row database and measure everything on it."""
    label = size_label(n)
    name = label.lower()
    day = last_day(n)
    url = store.url(name)
    res: dict[str, Any] = {"n": n, "label": label, "day": day.isoformat(), "errors": []}
    log(f"== {label} ({store.backend}); last replayed day {day}")
    data, daily = request_file(n), daily_file(n)
    marker = CACHE / "db" / f"built_{store.backend}_{name}.json"

    if args.reuse_dbs and marker.exists():
        res["build"] = json.loads(marker.read_text(encoding="utf-8"))
        res["build"]["reused"] = True
        log(f"  reusing the database built {res['build']['when']}")
    else:
        marker.unlink(missing_ok=True)
        store.create(name)
        init = run_measured(dispatch_cmd(url, "init"), 600)
        if not init.ok:
            res["errors"].append(f"init: {init.error()}")
            return res
        imp = run_measured(dispatch_cmd(url, "import", str(data), "--no-geocode", "--rejects",
                                        str(CACHE / f"rejects_{name}.csv")),
                           args.import_timeout)
        summary = [ln for ln in imp.stdout.splitlines() if ln.startswith("imported")]
        res["build"] = {"when": now_utc(), "init_s": init.wall_s, "import_s": imp.wall_s,
                        "import_rss_mb": imp.rss_mb, "import_ok": imp.ok,
                        "import_line": summary[-1] if summary else imp.error(),
                        "reused": False}
        log(f"  import {imp.wall_s:.1f} s, peak {imp.rss_mb:.0f} MB: "
            f"{res['build']['import_line']}")
        res["build"].update(total_s=imp.wall_s, peak_mb=imp.rss_mb)
        if not imp.ok:
            res["errors"].append(f"import of {n:,} rows in one file: {imp.error()}")
            if n <= PART_ROWS:
                return res
            # carry on with what works: the same rows in files the importer accepts
            store.create(name)
            init = run_measured(dispatch_cmd(url, "init"), 600)
            parts: list[dict[str, Any]] = []
            per = PART_ROWS // COPY_ROWS
            for first in range(0, n // COPY_ROWS, per):
                copies = range(first, min(first + per, n // COPY_ROWS))
                path = _write_copies(CACHE / "data" / f"myla311_scale_{size_label(n)}_copies"
                                     f"{copies.start}-{copies.stop - 1}.csv", copies)
                part = run_measured(dispatch_cmd(url, "import", str(path), "--no-geocode",
                                                 "--rejects", str(CACHE / f"rejects_{name}.csv")),
                                    args.import_timeout)
                line = next((ln for ln in part.stdout.splitlines()
                             if ln.startswith("imported")), part.error())
                parts.append({"rows": len(copies) * COPY_ROWS, "s": part.wall_s,
                              "rss_mb": part.rss_mb, "ok": part.ok, "line": line})
                log(f"  import part {len(parts)}: {part.wall_s:.1f} s, peak "
                    f"{part.rss_mb:.0f} MB: {line}")
                if not part.ok:
                    res["errors"].append(f"import of part {len(parts)}: {part.error()}")
                    res["build"]["parts"] = parts
                    return res
            res["build"].update(parts=parts, total_s=sum(p["s"] for p in parts),
                                peak_mb=max(p["rss_mb"] for p in parts))
        res["build"]["db_mb"] = store.size_mb(name)
        marker.write_text(json.dumps(res["build"]), encoding="utf-8")

    clock = run_measured(dispatch_cmd(url, "clock", "set", f"{day.isoformat()}T07:00"), 300)
    if not clock.ok:
        res["errors"].append(f"clock set: {clock.error()}")
        return res

    # planner: the read alone, then the whole command
    cand = run_measured([PY, __file__, "--child-planner", url, day.isoformat()],
                        args.render_timeout * 2 + 60)
    got = _json_lines(cand.stdout)
    res["candidates"] = {**(got[-1] if got else {}), "rss_mb": cand.rss_mb, "ok": cand.ok,
                         "error": None if cand.ok else cand.error()}
    log(f"  candidate_requests: {res['candidates']}")
    plan = run_measured(dispatch_cmd(url, "plan", "--date", day.isoformat(), "--district",
                                     PLAN_DISTRICT, "--time-limit", "1"),
                        args.render_timeout * 4 + 60)
    res["plan"] = {"s": plan.wall_s, "rss_mb": plan.rss_mb, "ok": plan.ok,
                   "line": next((ln for ln in plan.stdout.splitlines()
                                 if ln.startswith("plan ")), plan.error())}
    log(f"  dispatch plan: {plan.wall_s:.1f} s, {plan.rss_mb:.0f} MB: {res['plan']['line']}")
    if plan.ok:
        plan_id = res["plan"]["line"].split()[1]
        assign = run_measured(dispatch_cmd(url, "assign", plan_id, "--yes"),
                              args.render_timeout * 2 + 60)
        res["assign"] = {"s": assign.wall_s, "rss_mb": assign.rss_mb, "ok": assign.ok,
                         "line": assign.stdout.strip().splitlines()[-1] if assign.ok
                         else assign.error()}
        log(f"  dispatch assign: {assign.wall_s:.1f} s: {res['assign']['line']}")
    else:
        res["errors"].append(f"dispatch plan: {plan.error()}")

    res["pages"] = {}
    for page, title in pages:
        child = run_measured([PY, __file__, "--child-page", url, page,
                              str(args.render_timeout)], args.render_timeout * 4 + 300)
        stages = {r["stage"]: r for r in _json_lines(child.stdout)}
        if "s" in stages.get("warm", {}) and "warm2" in stages:
            w1, w2 = stages["warm"], stages.pop("warm2")
            if "s" in w2:
                stages["warm"] = {**w2, "s": (w1["s"] + w2["s"]) / 2,
                                  "samples": [w1["s"], w2["s"]]}
            else:
                stages["warm"] = w2  # the second one ran out of time
        rec = {"title": title, "rss_mb": child.rss_mb, "ok": child.ok or child.rc == 3,
               "process_s": child.wall_s, **stages}
        if not child.ok and child.rc != 3:
            rec["error"] = child.error()
            res["errors"].append(f"{title}: {child.error()}")
        for stage in ("cold", "warm", "rerun", "action"):
            if stages.get(stage, {}).get("errors"):
                res["errors"].append(f"{title} ({stage}): {stages[stage]['errors'][0]}")
                break
        res["pages"][page] = rec
        log(f"  {title}: " + ", ".join(
            f"{s} {fmt_s(stages.get(s))}" for s in ("cold", "warm", "rerun", "action")
            if s in stages)
            + f", {fmt_mb(stages.get('cold', {}).get('total'))} sent, "
            f"peak {child.rss_mb:.0f} MB")

    # one more day of requests, into a copy
    scratch = f"{name}_daily"
    store.copy(name, scratch)
    try:
        day_imp = run_measured(dispatch_cmd(store.url(scratch), "import", str(daily),
                                            "--no-geocode", "--rejects",
                                            str(CACHE / f"rejects_{scratch}.csv")),
                               args.import_timeout)
    finally:
        store.drop(scratch)
    res["daily"] = {"s": day_imp.wall_s, "rss_mb": day_imp.rss_mb, "ok": day_imp.ok,
                    "line": next((ln for ln in day_imp.stdout.splitlines()
                                  if ln.startswith("imported")), day_imp.error())}
    if not day_imp.ok:
        res["errors"].append(f"daily import: {day_imp.error()}")
    log(f"  daily import: {day_imp.wall_s:.1f} s, {day_imp.rss_mb:.0f} MB: "
        f"{res['daily']['line']}")
    return res


# ---------------------------------------------------------------------------- report


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")


def fmt_s(stage: dict[str, Any] | None) -> str:
    if not stage:
        return "—"
    if "timeout_s" in stage:
        return f"> {stage['timeout_s']:g} s"
    value = float(stage["s"])
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def fmt_mb(value: float | None) -> str:
    if value is None:
        return "—"
    mb = value / 1e6
    return f"{mb:.2f} MB" if mb < 10 else f"{mb:.1f} MB"


def growth(points: list[tuple[int, float | None, bool]]) -> list[str]:
    """Exponents between consecutive sizes; ``(n, value, is_lower_bound)`` per size."""
    out = []
    for (n1, v1, low1), (n2, v2, low2) in itertools.pairwise(points):
        if v1 is None or v2 is None or v1 <= 0 or v2 <= 0 or low1:
            out.append("—")
            continue
        e = math.log(v2 / v1) / math.log(n2 / n1)
        out.append(f"> {e:.2f}" if low2 else f"{e:.2f}")
    return out


def _stage_value(stage: dict[str, Any] | None) -> tuple[float | None, bool]:
    if not stage:
        return None, False
    if "timeout_s" in stage:
        return float(stage["timeout_s"]), True
    return float(stage["s"]), False


def _import_cell(b: dict[str, Any] | None) -> str:
    if not b:
        return "—"
    if b["import_ok"]:
        return (f"{b['import_s']:.1f} s, {b['import_rss_mb']:,.0f} MB"
                + (f" (built {b['when']}, reused)" if b.get("reused") else ""))
    if "largest file accepted" in b["import_line"]:
        return "refused (see below)"
    return f"failed after {b['import_s']:.0f} s, {b['import_rss_mb']:,.0f} MB (see below)"


def _parts_cell(b: dict[str, Any] | None) -> str:
    if not b or not b.get("parts"):
        return "—"
    parts = b["parts"]
    if not all(p["ok"] for p in parts):
        return "failed (see below)"
    each = ", ".join(f"{p['s']:.0f}" for p in parts)
    return (f"{len(parts)} × {parts[0]['rows']:,} rows: {b['total_s']:.1f} s ({each} s), "
            f"{b['peak_mb']:,.0f} MB")


def section(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """Format the Markdown "Scale" section."""
    sizes = [r["label"] for r in results]
    pairs = [f"{a}→{b}" for a, b in itertools.pairwise(sizes)]
    head = "| measure | " + " | ".join(sizes) + "".join(f" | growth {p}" for p in pairs) + " |"
    rule = "|---" * (1 + len(sizes) + len(pairs)) + "|"

    def row(title: str, cells: list[str], values: list[tuple[float | None, bool]]) -> str:
        grow = growth([(r["n"], v, low) for r, (v, low) in zip(results, values, strict=True)])
        return "| " + " | ".join([title, *cells, *grow[:len(pairs)]]) + " |"

    lines = [
        "## Scale",
        "",
        f"Command: `{meta['command']}` (run from the repository root; measured "
        f"{meta['start']}–{meta['end']} UTC, one run; machine: {platform.machine()}, Python "
        f"{platform.python_version()}, {meta['backend']}; load average at start "
        f"{meta['load_start']}, at end {meta['load_end']}, on 2 cores shared with other "
        "work, so every time is an upper bound and only ratios within this one run mean "
        "much).",
        "",
        f"Code measured: commit `{meta['commit']}`. Data: the 10,000 MyLA311 rows of "
        "1–3 Jan 2020 replicated (copy k: every timestamp +3 k days, positions moved up to "
        "3 m, `srnumber` + `-k`), imported by `dispatch import --no-geocode`; the store "
        "clock at 07:00 of the last replayed day D (10k: 2020-01-03, 100k: 2020-01-30, "
        "1M: 2020-10-26). Growth: log(t2/t1) / log(n2/n1) between two sizes (1 = linear "
        "in the stored history, 0 = flat); `> x` where the larger size ran out of time.",
        "",
        "### Pages: render time (cold / warm / rerun)",
        "",
        head,
        rule,
    ]
    page_files = list(dict.fromkeys(p for r in results for p in r.get("pages", {})))
    for page in page_files:
        recs = [r.get("pages", {}).get(page, {}) for r in results]
        title = next((x["title"] for x in recs if x.get("title")), page)
        cells = [" / ".join(fmt_s(x.get(s)) for s in ("cold", "warm", "rerun"))
                 if x else "—" for x in recs]
        lines.append(row(title, cells, [_stage_value(x.get("warm")) for x in recs]))
        if page in ACTIONS:
            _, key, value = ACTIONS[page]
            lines.append(row(f"{title}: then set `{key}` to “{value}”",
                             [fmt_s(x.get("action")) if x else "—" for x in recs],
                             [_stage_value(x.get("action")) for x in recs]))
    lines += [
        "",
        "Growth here is of the warm time.",
        "",
        "### Pages: what a render sends, and peak memory",
        "",
        "Cell: total sent (of which map HTML) · peak RSS of the page's process.",
        "",
        head,
        rule,
    ]
    for page in page_files:
        recs = [r.get("pages", {}).get(page, {}) for r in results]
        title = next((x["title"] for x in recs if x.get("title")), page)
        cells = []
        for x in recs:
            st = x.get("warm") or x.get("cold")
            if not x:
                cells.append("—")
            elif not st or "total" not in st:
                cells.append(f"— · {x['rss_mb']:,.0f} MB")
            else:
                map_part = f" ({fmt_mb(st['map'])})" if st.get("map") else ""
                cells.append(f"{fmt_mb(st['total'])}{map_part} · {x['rss_mb']:,.0f} MB")
        vals: list[tuple[float | None, bool]] = []
        for x in recs:
            st = x.get("warm") or x.get("cold") or {}
            vals.append((float(st["total"]) if "total" in st else None, False))
        lines.append(row(title, cells, vals))
    lines += ["", "Growth here is of the bytes sent.", "", "### Import and planning", "",
              head, rule]

    def cell(rec: dict[str, Any] | None, key: str = "s", rss: str = "rss_mb") -> str:
        if not rec:
            return "—"
        if not rec.get("ok", True):
            return "failed"
        return f"{rec[key]:.1f} s, {rec[rss]:,.0f} MB" if rec.get(rss) else f"{rec[key]:.2f} s"

    builds = [r.get("build") for r in results]
    lines.append(row("`dispatch import` of the whole file (process wall time, peak RSS)",
                     [_import_cell(b) for b in builds],
                     [(b["import_s"] if b and b["import_ok"] else None, False)
                      for b in builds]))
    if any(b and b.get("parts") for b in builds):
        lines.append(row(
            f"… instead in files of {PART_ROWS:,} rows, one after the other (sum of times; "
            "peak RSS of the largest)", [_parts_cell(b) for b in builds],
            [(None, False) for _ in builds]))
        totals = [b.get("total_s", b["import_s"]) if b and b.get("db_mb") else None
                  for b in builds]
        lines.append(row("import time of the whole history, either way",
                         [f"{t:.1f} s" if t is not None else "—" for t in totals],
                         [(t, False) for t in totals]))
    lines.append(row("database size after the import",
                     [f"{b['db_mb']:,.0f} MB" if b and b.get("db_mb") else "—" for b in builds],
                     [(b.get("db_mb") if b else None, False) for b in builds]))
    daily = [r.get("daily") for r in results]
    lines.append(row("one more 10k-row daily import (`dispatch import`, peak RSS)",
                     [cell(d) for d in daily],
                     [(d["s"] if d and d["ok"] else None, False) for d in daily]))
    cands = [r.get("candidates") for r in results]
    lines.append(row(
        "`candidate_requests(uow, pack, D)`, first call (second call)",
        [(f"{c['first_s']:.2f} s ({c['second_s']:.2f} s)" if c and c.get("ok") else
          "failed" if c else "—") for c in cands],
        [(c["first_s"] if c and c.get("ok") else None, False) for c in cands]))
    lines.append(row(
        "… candidates returned (located); peak RSS of that process",
        [(f"{c['candidates']:,} ({c['located']:,}); {c['rss_mb']:,.0f} MB"
          if c and c.get("ok") else "—") for c in cands],
        [(c["rss_mb"] if c and c.get("ok") else None, False) for c in cands]))
    plans = [r.get("plan") for r in results]
    lines.append(row(
        f"`dispatch plan --date D --district {PLAN_DISTRICT} --time-limit 1` "
        "(process wall time, peak RSS)",
        [cell(p) for p in plans], [(p["s"] if p and p["ok"] else None, False) for p in plans]))
    assigns = [r.get("assign") for r in results]
    lines.append(row("`dispatch assign` of that plan (setup for the route pages)",
                     [cell(a) for a in assigns],
                     [(a["s"] if a and a["ok"] else None, False) for a in assigns]))
    imports = [rec.get("ready", {}).get("imports_s") for r in results
               for rec in r.get("pages", {}).values()]
    imports = [i for i in imports if i is not None]
    lines += [
        "",
        "### What the columns mean",
        "",
        "- **cold**: the first `AppTest.run()` of `streamlit_app.py` switched to the page, in a "
        "fresh process per page and size: the Streamlit caches are empty and the engine is "
        "new; the modules the entry point and the page import were imported before the clock "
        f"started ({min(imports, default=0):.1f}–{max(imports, default=0):.1f} s, not "
        "counted). **warm**: the first render of a new session in that process (caches "
        "filled by the cold render), median of 2 sessions. **rerun**: the second of those "
        "sessions run again, as a click "
        "that changes nothing. On *Service KPIs* one click more is timed: the duration "
        "measure switched to time to first action. Each render may take "
        f"{meta['render_timeout']:.0f} s at most "
        "(`> N s` otherwise; the later renders of that page are then skipped).",
        "- Pages are rendered signed in with a real session token (`tests/signin.py`) as an "
        "admin, except *My route today*, rendered as a member of the first crew with a "
        f"route on D (the district {PLAN_DISTRICT} plan above is assigned first).",
        "- **sent**: the serialised size of every element of the render (main area and "
        "sidebar, as the AppTest element tree holds their protobuf messages: text, "
        "tables as Arrow, Vega charts, iframes, components); **map**: of that, the "
        "arguments of the `streamlit_folium` component (the folium map's HTML head and "
        "script). Measured on the warm render.",
        "- **peak RSS**: `ru_maxrss` of the child process (`os.wait4`), which includes the "
        "children it waited for.",
        "- Harness overhead inside cold and warm (not rerun): each new `AppTest` session "
        "scans the installed packages' metadata for Streamlit components "
        "(`BidiComponentManager.discover_and_register_components`, 0.10–0.11 s a call "
        "here, timed alone), which a real Streamlit server does once at start-up. So a "
        "page's cold and warm times overstate what a user waits by about that much.",
        "- `dispatch` commands are timed as whole processes (interpreter start and imports "
        "included). `candidate_requests` is timed inside a fresh process, as a supervisor, "
        "after the city pack is loaded.",
        "- The daily import goes into a copy of the database, so every size keeps "
        "exactly N requests for the pages.",
    ]
    errors = [f"{r['label']}: {e}" for r in results for e in r["errors"]]
    if errors:
        lines += ["", "### What failed", ""] + [f"- {e}" for e in errors]
    return "\n".join(lines) + "\n"


#: Issue 12's targets at 1M stored requests on SQLite: (what, limit, unit).
TARGETS = {
    "warm": ("every page, warm render", 1.5, "s"),
    "cold": ("every page, cold render", 3.0, "s"),
    "sent": ("every page, what a render sends", 3.0, "MB"),
    "rss": ("every page, peak RSS of its process", 1000.0, "MB"),
    "planner": ("planner's candidate read, `candidate_requests` first call", 1.0, "s"),
    "daily": ("one more 10k-row daily import", 5.0, "s"),
    "import": ("whole-history import, peak RSS (the issue's streaming import)", 1000.0, "MB"),
}


def target_rows(res: dict[str, Any]) -> list[tuple[str, str, str, str, bool | None]]:
    """Return ``(what, target, measured, worst, met)`` of each target for one size's results.

    ``met`` is ``None`` when the measure is missing. A page that ran out of time counts as
    its timeout (a lower bound, so the target is missed).
    """
    pages = res.get("pages", {})
    out: list[tuple[str, str, str, str, bool | None]] = []

    def worst(key: str) -> tuple[float | None, str]:
        best: tuple[float | None, str] = (None, "")
        for rec in pages.values():
            if key in ("warm", "cold"):
                value, _ = _stage_value(rec.get(key))
            elif key == "sent":
                st = rec.get("warm") or rec.get("cold") or {}
                value = float(st["total"]) / 1e6 if "total" in st else None
            else:
                value = rec.get("rss_mb")
            if value is not None and (best[0] is None or value > best[0]):
                best = (value, str(rec.get("title") or rec.get("page") or ""))
        return best

    for key in ("warm", "cold", "sent", "rss"):
        what, limit, unit = TARGETS[key]
        value, page = worst(key)
        shown = "—" if value is None else (f"{value:,.0f} MB" if key == "rss" else
                                           f"{value:,.2f} {unit}")
        out.append((what, f"< {limit:g} {unit}", shown, page,
                    None if value is None else value < limit))
    cand = res.get("candidates") or {}
    what, limit, unit = TARGETS["planner"]
    value = cand.get("first_s") if cand.get("ok") else None
    out.append((what, f"< {limit:g} {unit}", "—" if value is None else f"{value:.2f} s", "",
                None if value is None else value < limit))
    daily = res.get("daily") or {}
    what, limit, unit = TARGETS["daily"]
    value = daily.get("s") if daily.get("ok") else None
    out.append((what, f"< {limit:g} {unit}", "—" if value is None else
                f"{value:.1f} s ({daily.get('rss_mb', 0):,.0f} MB)", "",
                None if value is None else value < limit))
    build = res.get("build") or {}
    what, limit, unit = TARGETS["import"]
    value = build.get("peak_mb")
    how = ("one file" if build.get("import_ok") else
           f"files of {PART_ROWS:,} rows" if build.get("parts") else "")
    out.append((what, f"< {limit:g} {unit}", "—" if value is None else
                f"{value:,.0f} MB ({how})", "", None if value is None else value < limit))
    return out


def targets_section(res: dict[str, Any], heading: str = "###") -> str:
    """Format the targets of issue 12 against one size's results (the 1M SQLite run)."""
    lines = [f"{heading} Targets at {res['label']} ({res.get('backend', 'SQLite')})", "",
             "| target | limit | measured | worst page | met? |", "|---|---|---|---|---|"]
    for what, limit, measured, page, met in target_rows(res):
        mark = "—" if met is None else "yes" if met else "**no**"
        lines.append(f"| {what} | {limit} | {measured} | {page} | {mark} |")
    return "\n".join(lines) + "\n"


SCALE_NOTE = (
    "Issue 12's benchmark: every page, the planner's read and the daily import at 10k, "
    "100k and 1M stored requests. The section is written by `.venv/bin/python "
    "bench/bench_scale.py --report` from the raw results of the runs below, which are "
    "committed as `bench/results/scale_sqlite.json` and `bench/results/scale_postgresql.json`. "
    "**The machine is shared and noisy**: 2 cores, used at the same time by other sessions "
    "(tests, other benchmarks); the load averages below are those seen at the start and "
    "end of each run. Each figure is one run (warm: the median of 2 sessions); read a time "
    "as an upper bound, and the growth exponent of a sub-second figure as rough. Both runs "
    "shown are of the same code, on stores built by 23:20 (SQLite) and 23:25 UTC "
    "(PostgreSQL) on 2026-12-07 and reused; their import figures are of those builds, "
    "measured while a browser walk of the dashboard ran on the machine. "
    "**The planner's candidate read missed its 1 s target on its first call at 1M on "
    "SQLite** in the run shown (1.47 s, second call 0.41 s); the same read run alone in "
    "two fresh processes right after it (00:56 UTC) took 0.39 and 0.36 s. Its first call "
    "pays for reading the day's rows from disk after the run's other steps (a copy of "
    "the 1 GB store for the daily import among them): with the stores just written, the "
    "builds' own runs took 0.34 s (SQLite) and 0.48 s (PostgreSQL). On PostgreSQL, a run "
    "right after the SQLite one (00:55 UTC) took 1.58 s (0.47 s) for it and 5.9 s for "
    "the daily import, over its 5 s target; the run shown, a minute later, 0.48 s "
    "(0.40 s) and 3.7 s. Earlier this stop (00:17 and 00:20 UTC, code before the last "
    "page changes): first calls 1.13 s on SQLite and 1.06 s on PostgreSQL, daily imports "
    "2.7 and 4.4 s. "
    "On PostgreSQL the server has PostGIS (15.18 with postgis 3), so the spatial reads use "
    "it.")


def _raw_results() -> tuple[Path, Path]:
    """Return the raw results of the last SQLite and PostgreSQL runs (cache, else committed)."""
    found = []
    for backend in ("sqlite", "postgresql"):
        cached = CACHE / f"results-{backend}.json"
        found.append(cached if cached.exists() else RESULTS / f"scale_{backend}.json")
    return found[0], found[1]


def report(sqlite_json: Path, pg_json: Path | None) -> str:
    """Compose the "Scale" section from the raw results of a SQLite run and a PostgreSQL run."""
    data = json.loads(sqlite_json.read_text(encoding="utf-8"))
    text = section(data["results"], data["meta"])
    text = text.replace("## Scale\n\n", "## Scale\n\n" + SCALE_NOTE + "\n\n", 1)
    big = max(data["results"], key=lambda r: r["n"])
    parts = [text.rstrip("\n"), "", targets_section({**big, "backend": "SQLite"}),
             "For comparison, issue 12 measured at commit 3559f86, before the pages read "
             "bounded windows in SQL (warm, 1M, SQLite): requests map 35.9 s and 99.5 MB, "
             "KPI page 31.7 s and 4.5 GB, hot spots 30.1 s, monthly report 22.8 s, the "
             "planner's candidate read 59.9 s, the daily 10k import 7.3 s.", ""]
    if pg_json is not None and pg_json.exists():
        pg = json.loads(pg_json.read_text(encoding="utf-8"))
        pg_text = section(pg["results"], pg["meta"])
        pg_text = pg_text.split("\n### What the columns mean")[0]
        pg_text = pg_text.replace("\n### ", "\n#### ").replace(
            "## Scale", "### On PostgreSQL", 1)
        pgbig = max(pg["results"], key=lambda r: r["n"])
        parts += [pg_text.rstrip("\n"), "",
                  targets_section({**pgbig, "backend": pg["meta"]["backend"]}, "####")]
    return "\n".join(parts).rstrip("\n") + "\n"


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "app_pages", "dispatch",
                                "geo", "streamlit_app.py"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
        return out + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 when every measure ran, 1 when something failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10k,100k,1M",
                        help="comma-separated sizes (multiples of 10k); default 10k,100k,1M")
    parser.add_argument("--pages", help="comma-separated page files or stems "
                        "(e.g. requests_map,kpis); default every page of PAGES")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    parser.add_argument("--db-url", help="a PostgreSQL URL: run on databases "
                        "<its database>_<size> of that server (default prefix "
                        f"{PG_PREFIX}; the database itself is not used)")
    parser.add_argument("--render-timeout", type=float, default=180.0,
                        help="seconds per page render (default 180)")
    parser.add_argument("--import-timeout", type=float, default=3600.0,
                        help="seconds per import (default 3600)")
    parser.add_argument("--reuse-dbs", action="store_true",
                        help="reuse databases a previous run built (its import figures are "
                        "reported again)")
    parser.add_argument("--report", action="store_true",
                        help="measure nothing: write the section from the raw results of "
                        "the last SQLite run and the last PostgreSQL run")
    parser.add_argument("--child-page", nargs=3, metavar=("URL", "PAGE", "TIMEOUT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--child-planner", nargs=2, metavar=("URL", "DAY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_page:
        child_page(args.child_page[0], args.child_page[1], float(args.child_page[2]))
        return 0
    if args.child_planner:
        child_planner(*args.child_planner)
        return 0

    if args.report:
        text = report(*_raw_results())
        print(text)
        if not args.no_write:
            write_section("Scale", text)
        return 0
    sizes = parse_sizes(args.sizes)
    pages = app_pages()
    if args.pages:
        wanted = [p.strip().removesuffix(".py") for p in args.pages.split(",") if p.strip()]
        unknown = [w for w in wanted if w not in {Path(p).stem for p, _ in pages}]
        if unknown:
            raise SystemExit(f"unknown page(s) {unknown}; pages: "
                             + ", ".join(Path(p).stem for p, _ in pages))
        pages = [(p, t) for p, t in pages if Path(p).stem in wanted]
    store: Store = PostgresStore(args.db_url) if args.db_url else Store()
    if args.db_url and not args.db_url.startswith(("postgres://", "postgresql")):
        raise SystemExit("--db-url must be a PostgreSQL URL")
    meta = {
        "command": shlex.join([".venv/bin/python", "bench/bench_scale.py",
                               *(argv if argv is not None else sys.argv[1:])]),
        "start": now_utc(), "backend": "SQLite" if store.backend == "sqlite" else
        "PostgreSQL " + _pg_version(store),
        "load_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "commit": _commit(), "render_timeout": args.render_timeout,
    }
    if isinstance(store, PostgresStore) and args.db_url and store.base.password:
        # the exact command, except a password
        meta["command"] = meta["command"].replace(
            args.db_url, store.base.render_as_string(hide_password=True))
    results = []
    raw = CACHE / f"results-{store.backend}.json"
    CACHE.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        results.append(measure_size(store, n, pages, args))
        raw.write_text(json.dumps({"meta": meta, "results": results}, indent=1,
                                  default=str), encoding="utf-8")
    meta["end"] = now_utc()
    meta["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    raw.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str),
                   encoding="utf-8")
    text = section(results, meta)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / raw.name.replace("results-", "scale_")).write_text(
            raw.read_text(encoding="utf-8"), encoding="utf-8")
        write_section("Scale", report(*_raw_results()))
    return 1 if any(r["errors"] for r in results) else 0


def _pg_version(store: Store) -> str:
    assert isinstance(store, PostgresStore)
    rows = store._admin("SHOW server_version")
    return str(rows[0][0]).split()[0]


if __name__ == "__main__":
    sys.exit(main())
