"""Solver worker processes that end with the process that started them.

The planner solves districts in parallel in worker processes. Forked from a dashboard,
they used to inherit its listening socket and its signal handlers: killed mid-plan, the
dashboard left workers behind that kept its port and ignored SIGTERM, so it could not
restart. Every worker here first

* closes the sockets it inherited (the dashboard's port, database connections; the pool
  talks to it over pipes),
* restores default signal handling, and
* asks the kernel to kill it when its parent dies (Linux ``PR_SET_PDEATHSIG``); a
  watchdog thread covers a parent that died before that, and other systems.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import stat
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

#: ``prctl`` option: the signal the kernel sends when the parent process dies.
_PR_SET_PDEATHSIG = 1
#: How often the watchdog looks for its parent.
_WATCH_EVERY_S = 1.0


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(_WATCH_EVERY_S)


def _close_inherited_sockets() -> int:
    """Close every socket this process inherited; return how many."""
    closed = 0
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return 0
    for fd in fds:
        if fd <= 2:
            continue
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
                closed += 1
        except OSError:
            continue
    return closed


def _init_worker(parent: int) -> None:
    """Tie the worker's life to its parent's (runs first in every worker)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if sys.platform.startswith("linux"):
        _close_inherited_sockets()
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def solver_pool(workers: int) -> ProcessPoolExecutor:
    """Return a process pool whose workers die with their parent.

    Parameters
    ----------
    workers
        Number of worker processes (at least 1).
    """
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(max_workers=max(1, workers),
                               mp_context=multiprocessing.get_context(method),
                               initializer=_init_worker, initargs=(os.getpid(),))
