"""Throttling repeated failed sign-ins, per email address and per client address.

After ``per_email`` failed sign-ins for one email (default 5) or ``per_client`` from one client
address (default 20: several people may share one address behind a proxy or NAT) within
``window`` seconds (default 15 minutes), further attempts are refused with 429 and a
``Retry-After`` until the oldest of those failures leaves the window; a throttled attempt does
not check the password at all. A successful sign-in clears that email's failures.

The counts live in this process's memory: a restart clears them, and a service run as several
processes counts per process (each process allows the limits above).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["SignInThrottle"]

_MAX_KEYS = 100_000  # memory bound: the oldest keys are dropped beyond this


class SignInThrottle:
    """Counts failed sign-ins in a sliding window.

    Parameters
    ----------
    per_email, per_client
        Failures allowed in the window for one email address and for one client address.
    window
        The window, in seconds.
    clock
        Monotonic seconds (tests pass their own clock instead of sleeping).
    """

    def __init__(
        self,
        per_email: int = 5,
        per_client: int = 20,
        window: float = 15 * 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_email = per_email
        self.per_client = per_client
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, email: str, client: str | None) -> int | None:
        """Seconds until a sign-in for ``email`` from ``client`` may be tried again, or
        ``None`` if it may be tried now."""
        now = self.clock()
        waits = []
        with self._lock:
            for key, limit in self._keys(email, client):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(times[len(times) - limit] + self.window - now)
        if not waits:
            return None
        return max(1, math.ceil(max(waits)))

    def failed(self, email: str, client: str | None) -> None:
        """Count one failed sign-in."""
        now = self.clock()
        with self._lock:
            for key, _ in self._keys(email, client):
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)
            while len(self._failures) > _MAX_KEYS:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, email: str) -> None:
        """Forget the failures of an email address that has now signed in."""
        with self._lock:
            self._failures.pop(self._email_key(email), None)

    @staticmethod
    def _email_key(email: str) -> str:
        return "email:" + email.strip().lower()

    def _keys(self, email: str, client: str | None) -> list[tuple[str, int]]:
        keys = [(self._email_key(email), self.per_email)]
        if client:
            keys.append(("client:" + client, self.per_client))
        return keys
