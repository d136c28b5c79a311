"""The registry's writer lock: first come, first served, re-entrant, and released on errors."""

from __future__ import annotations

import threading

import pytest

from pilotlab.registry.fairlock import FairLock


def test_waiting_threads_get_the_lock_in_the_order_they_asked() -> None:
    lock, order, asked = FairLock(), [], []
    lock.acquire()
    threads = []
    for i in range(8):
        ready = threading.Event()

        def worker(i: int = i, ready: threading.Event = ready) -> None:
            asked.append(i)
            ready.set()
            with lock:
                order.append(i)

        t = threading.Thread(target=worker)
        t.start()
        ready.wait(5)
        # the worker has asked (it is queued, or about to be): wait until it is queued
        for _ in range(1000):
            if len(lock._waiters) == i + 1:
                break
            threading.Event().wait(0.001)
        threads.append(t)
    lock.release()
    for t in threads:
        t.join(5)
    assert order == list(range(8)) == asked


def test_the_same_thread_may_take_it_again_and_others_wait_for_the_last_release() -> None:
    lock, got = FairLock(), threading.Event()
    with lock, lock:
        t = threading.Thread(target=lambda: (lock.acquire(), got.set(), lock.release()))
        t.start()
        for _ in range(5000):  # until the other thread is queued behind this one
            if lock._waiters:
                break
            threading.Event().wait(0.001)
        assert lock._waiters and not got.is_set()
    t.join(5)
    assert got.is_set()
    with pytest.raises(RuntimeError, match="does not hold"):
        lock.release()
