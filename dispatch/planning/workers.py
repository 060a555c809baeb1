"""Solver worker processes that end with the process that started them.

The planner solves districts in parallel in worker processes. Started by ``fork`` from
a dashboard, they would inherit its listening socket and its signal handlers: killed
mid-plan, the dashboard left workers that kept its port and ignored SIGTERM, so it could
not restart. Workers here come from a ``forkserver`` (a clean process: no inherited
sockets, default signal handlers) and ask the kernel to kill them when their parent
dies (Linux ``PR_SET_PDEATHSIG``); a watchdog thread covers other systems.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
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


def _init_worker() -> None:
    """Tie the worker's life to its parent's (runs first in every worker)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()


def solver_pool(workers: int) -> ProcessPoolExecutor:
    """Return a process pool whose workers die with their parent.

    Parameters
    ----------
    workers
        Number of worker processes (at least 1).
    """
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() \
        else "spawn"
    return ProcessPoolExecutor(max_workers=max(1, workers),
                               mp_context=multiprocessing.get_context(method),
                               initializer=_init_worker)
