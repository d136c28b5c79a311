"""What pilotlab's compiled kernels share: numba loaded on first use, and rows run on threads
(also by numpy work that releases the GIL, such as the pre-trend power's integration).

numba is a default dependency; each kernel is a plain Python function that numba compiles
without the GIL and caches on disk (:func:`nogil_kernel`), and its caller runs disjoint ranges of
independent rows on threads (:func:`on_threads`), which gives the same bits in any split.
``PILOTLAB_NO_NUMBA=1``, or a numba that cannot be imported (e.g. built against another numpy),
leaves every caller on its numpy path, which gives the same numbers more slowly.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["HAS_NUMBA", "MAX_THREADS", "is_loaded", "nogil_kernel", "on_threads"]

#: Whether numba is installed (it is imported on the first compiled call only).
HAS_NUMBA: bool = importlib.util.find_spec("numba") is not None and not os.environ.get(
    "PILOTLAB_NO_NUMBA"
)
#: Most threads a kernel's rows are split over.
MAX_THREADS = 4

_kernels: dict[Callable[..., None], Any] = {}


def nogil_kernel(func: Callable[..., None]) -> Any:
    """``func`` compiled by numba without the GIL (on first use; cached on disk across runs),
    or ``None`` when numba is not available."""
    global HAS_NUMBA
    if not HAS_NUMBA:
        return None
    if func not in _kernels:
        try:
            import numba
        except Exception:  # pragma: no cover - a broken numba installation
            HAS_NUMBA = False
            return None
        _kernels[func] = numba.njit(cache=True, nogil=True, fastmath=False)(func)
    return _kernels[func]


def is_loaded(func: Callable[..., None]) -> bool:
    """Whether :func:`nogil_kernel` has compiled or loaded ``func`` in this process."""
    return func in _kernels


def on_threads(run: Callable[[int, int], object], n: int, pieces_per_thread: int = 1) -> None:
    """``run(lo, hi)`` over consecutive ranges covering rows ``0 .. n - 1``, on up to
    :data:`MAX_THREADS` threads (one call when there is one core or one row).
    ``pieces_per_thread`` ranges per thread, taken in turn, even out rows of unequal cost."""
    n_threads = min(os.cpu_count() or 1, MAX_THREADS, n)
    if n_threads < 2:
        run(0, n)
        return
    edges = np.linspace(0, n, min(pieces_per_thread * n_threads, n) + 1).astype(np.int64)
    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(lambda lo, hi: run(int(lo), int(hi)), edges[:-1], edges[1:]))
