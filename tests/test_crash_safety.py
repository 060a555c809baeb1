"""Killing the process mid-import leaves whole chunks only, and a re-run finishes it.

An import stores a file chunk by chunk, each chunk one transaction: killed while a chunk
is being written, that chunk is not there at all; killed between chunks, the chunks
before stay, whole; the same import run again finishes the file (what is stored counts
as unchanged).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dispatch.cli import main
from dispatch.store import UnitOfWork, make_engine

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "requests" / "los_angeles" / "myla311_2020-01-01_to_03.csv"

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dispatch.citypack import load_city_pack
    from dispatch.services import imports
    from dispatch.store import UnitOfWork, make_engine

    store = imports._store_records
    chunks = []

    def stalled_store(uow, kept, summary, pack, digests):
        store(uow, kept, summary, pack, digests)
        chunks.append(len(kept))
        if len(chunks) == int(sys.argv[3]):  # rows of this chunk written, not committed
            print("WRITING", flush=True)
            time.sleep(60)

    imports._store_records = stalled_store
    engine = make_engine(sys.argv[1])
    with UnitOfWork(engine, actor="test") as uow:
        imports.import_requests(uow, Path(sys.argv[2]), load_city_pack("los_angeles"),
                                chunk_rows=4000)
""")


@pytest.mark.parametrize(("killed_in_chunk", "stored"), [(1, 0), (2, 4000)])
def test_killed_import_leaves_nothing_half_done(
    tmp_path: Path, killed_in_chunk: int, stored: int
) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    assert main(["--db", url, "init"]) == 0
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(DEMO), str(killed_in_chunk)],
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
        assert uow.requests.count() == stored  # whole chunks only
        imported = [e for e in uow.events.recent(20_000) if e.action == "imported"]
        assert len(imported) == stored  # and every stored row with its event
    # the same file imported again finishes the job
    assert main(["--db", url, "import", str(DEMO), "--no-geocode",
                 "--rejects", str(tmp_path / "r.csv")]) == 0
    with UnitOfWork(make_engine(url)) as uow:
        assert uow.requests.count() == 10_000
