"""Solver workers exit with their parent and do not hold on to its sockets.

Case 14 of the state issue (fails on 3559f86): killing the dashboard mid-plan left the
solver workers running; they kept its port and ignored SIGTERM, so it could not restart.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import os, socket, sys, time
    from dispatch.planning.workers import solver_pool

    def slow_pid(_):
        time.sleep(0.5)
        return os.getpid()

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    # the dashboard ignores SIGTERM in the way Streamlit's handler did for its workers
    import signal
    signal.signal(signal.SIGTERM, lambda *a: None)
    pool = solver_pool(2)
    pids = sorted(set(pool.map(slow_pid, range(4))))
    print(port, *pids, flush=True)
    time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie waiting for its (dead) parent counts as gone
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _sockets_of(pid: int) -> list[str]:
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            out.append(target)
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prctl")
def test_workers_hold_no_socket_and_die_with_a_killed_parent() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                             env=env, cwd=ROOT)
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        assert line, "the child printed nothing"
        port, pids = int(line[0]), [int(p) for p in line[1:]]
        assert len(pids) == 2 and child.pid not in pids
        for pid in pids:
            assert _sockets_of(pid) == [], "a worker kept the dashboard's socket"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids), "workers outlived their parent"
        # and the port is free again for a restart
        with socket.socket() as again:
            again.bind(("127.0.0.1", port))
    finally:
        if child.poll() is None:
            child.kill()
