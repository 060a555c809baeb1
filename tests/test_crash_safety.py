"""Killing the process mid-import leaves the old state: the import is one transaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from dispatch.cli import main
from dispatch.store import UnitOfWork, make_engine

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "requests" / "los_angeles" / "myla311_2020-01-01_to_03.csv"

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dispatch.citypack import load_city_pack
    from dispatch.services.imports import import_requests
    from dispatch.store import UnitOfWork, make_engine

    def progress(done, total):
        if done >= 2000:            # rows are written but not committed
            print("WRITING", flush=True)
            time.sleep(60)

    engine = make_engine(sys.argv[1])
    with UnitOfWork(engine, actor="test") as uow:
        import_requests(uow, Path(sys.argv[2]), load_city_pack("los_angeles"),
                        progress=progress)
""")


def test_killed_import_leaves_nothing_half_done(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    assert main(["--db", url, "init"]) == 0
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(DEMO)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "WRITING", "the import never reached its writing phase"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    with UnitOfWork(make_engine(url)) as uow:
        assert uow.requests.count() == 0
        assert [e.action for e in uow.events.recent(5)] == ["roster_loaded"]
    # and the same file imports whole afterwards
    assert main(["--db", url, "import", str(DEMO), "--no-geocode",
                 "--rejects", str(tmp_path / "r.csv")]) == 0
    with UnitOfWork(make_engine(url)) as uow:
        assert uow.requests.count() == 10_000
