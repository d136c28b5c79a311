"""A lock that writers get in the order they asked for it.

The registry's writers are serialised by the database (SQLite's ``BEGIN IMMEDIATE``, a
PostgreSQL advisory lock). Under many concurrent writers in one process that is unfair: SQLite's
busy handler retries after growing sleeps, so a writer can lose the race again and again (a
benchmark of 50 clients uploading runs saw single uploads wait 25 s), and every waiting writer
holds a pooled connection that readers then wait for. Taking this lock first, before a
connection, queues one process's writers in arrival order; the database still serialises
writers across processes.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType

__all__ = ["FairLock"]


class FairLock:
    """A re-entrant lock handed to waiting threads first come, first served."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        """Wait for the lock (the same thread may take it again)."""
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None and not self._waiters:
                self._owner, self._depth = me, 1
                return
            gate = threading.Lock()
            gate.acquire()
            self._waiters.append(gate)
        gate.acquire()  # opened by release(), which hands the lock over to this thread
        with self._mutex:
            self._owner, self._depth = me, 1

    def release(self) -> None:
        """Give the lock up (to the longest waiting thread, if any)."""
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a FairLock this thread does not hold")
            self._depth -= 1
            if self._depth:
                return
            self._owner = None
            if self._waiters:
                self._owner = -1  # reserved for the waiter being woken
                self._waiters.popleft().release()

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
