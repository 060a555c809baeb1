"""Limits of the API server: a sliding-window rate per key (or client) and the body size.

Per process: several server processes behind a balancer each keep their own windows, so
the rate a key gets is at most the configured one times the number of processes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

from dispatch.errors import ValidationError


class RateLimiter:
    """At most ``limit`` events per ``window_s`` seconds for each key.

    Parameters
    ----------
    window_s
        Length of the sliding window.
    clock
        Monotonic seconds (tests pass a fake).
    max_keys
        Keys remembered at most (the oldest idle ones are forgotten first), so that a
        flood of client addresses cannot fill the memory.
    """

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000) -> None:
        if window_s <= 0:
            raise ValidationError(f"rate window {window_s} s must be positive")
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._hits: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: Hashable, limit: int) -> float | None:
        """Count one event for ``key``; return ``None`` if allowed, else seconds to wait."""
        now = self.clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and now - hits[0] >= self.window_s:
                hits.popleft()
            if len(hits) >= limit:
                self._hits[key] = hits
                return max(0.0, self.window_s - (now - hits[0]))
            hits.append(now)
            self._hits[key] = hits  # re-inserted: the dict keeps the most recent last
            while len(self._hits) > self.max_keys:
                self._hits.pop(next(iter(self._hits)))
            return None


class BodyTooLargeError(ValidationError):
    """A request body is larger than the server accepts."""
