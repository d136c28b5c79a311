"""Labels in the order that sorts each row of uniform keys, without a comparison sort.

The permutation draws of :mod:`pilotlab.data.assignment` are ``labels[np.argsort(keys, axis=1)]``
with ``keys = rng.random((B, n))``. Sorting every row costs ``B n log n`` comparisons and the
``(B, n)`` matrix of positions is gathered from afterwards; this module writes the same result
in expected ``O(n)`` per row. The keys of a row are uniform on ``[0, 1)``, so bucketing them by
their leading bits (``nb`` buckets, ``nb`` the largest power of two not above ``n``: the
multiplication by ``nb`` is exact and the bucket index increases with the key) puts them in
order up to a bucket, and an insertion sort of the bucketed keys, whose moves stay within a
bucket of one or two keys on average, finishes the job. When the keys of a row are distinct their
sorted order is unique, so it is the order ``np.argsort`` gives. A row with two equal keys (the
order of ties is ``np.argsort``'s own) or a key outside ``[0, 1)`` (never drawn by ``rng.random``,
but possible for keys given by hand) is flagged and re-done with ``np.argsort``, so the result
is ``labels[np.argsort(keys, axis=1)][:, :width]`` in every case.

The compiled backend (numba) is used when numba is importable and the keys are many enough to
repay loading it (:data:`MIN_COMPILED_KEYS`, or it is already loaded); ``PILOTLAB_NO_NUMBA=1`` or a
broken numba installation leaves the numpy backend, which is the definition itself (``np.argsort``
in chunks of rows). The kernel is serial and releases the GIL; blocks of rows run on threads.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from pilotlab.compiled import HAS_NUMBA, is_loaded, nogil_kernel, on_threads

__all__ = ["HAS_NUMBA", "ordered_labels", "pick_backend"]

#: ``auto`` loads numba for at least this many keys (importing it and loading the kernel costs
#: about half a second once per process, sorting this many keys with ``np.argsort`` about as
#: much); once loaded it serves all.
MIN_COMPILED_KEYS = 1 << 23
#: Keys per chunk of rows the numpy backend sorts at once (bounds its ``(rows, n)`` positions).
CHUNK_KEYS = 1 << 22


def ordered_labels(
    keys: np.ndarray,
    labels: np.ndarray,
    width: int | None = None,
    out: np.ndarray | None = None,
    backend: Literal["auto", "numpy", "numba"] = "auto",
) -> np.ndarray:
    """``labels[np.argsort(keys, axis=1)][:, :width]``, exactly, in expected linear time per row.

    Parameters
    ----------
    keys : numpy.ndarray
        ``(B, n)`` float keys, one permutation per row (typically ``rng.random((B, n))``).
    labels : numpy.ndarray
        ``(n,)`` integer labels; ``np.arange(n)`` gives the sorting positions themselves.
    width : int, optional
        Leading columns of the result to keep (all ``n`` by default).
    out : numpy.ndarray, optional
        ``(B, width)`` int64 array to write into (e.g. a block of rows of a larger result).
    backend : {"auto", "numpy", "numba"}
        ``numba`` runs the compiled bucket sort; ``numpy`` the argsort itself; ``auto`` prefers
        numba when it is importable and already loaded or the keys number at least
        :data:`MIN_COMPILED_KEYS`. Both give the same array.

    Returns
    -------
    numpy.ndarray
        ``(B, width)`` int64 labels in the order of each row's keys.
    """
    keys = np.ascontiguousarray(keys, dtype=np.float64)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    n_rows, n = keys.shape
    if labels.shape != (n,):
        raise ValueError(f"labels has shape {labels.shape}; the keys have {n} columns")
    w = n if width is None else int(width)
    if not 0 <= w <= n:
        raise ValueError(f"width {w} is not between 0 and {n}")
    if out is None:
        out = np.empty((n_rows, w), dtype=np.int64)
    elif out.shape != (n_rows, w) or out.dtype != np.int64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous int64 array of shape {(n_rows, w)}")
    if n_rows == 0 or w == 0:
        return out
    if backend == "auto":
        backend = pick_backend(n_rows * n, n)
    if backend == "numpy":
        step = max(1, CHUNK_KEYS // n)
        for a in range(0, n_rows, step):  # chunks of rows, each one argsort
            np.take(labels, np.argsort(keys[a : a + step], axis=1)[:, :w], out=out[a : a + step])
        return out
    kernel = _compiled_kernel()
    if kernel is None:
        raise ImportError("backend='numba' needs numba, which is not installed or not importable")
    redo = np.zeros(n_rows, dtype=np.bool_)
    on_threads(lambda lo, hi: kernel(keys, labels, out, redo, lo, hi), n_rows)  # rows apart
    if redo.any():  # rows with tied (or out-of-range) keys: the argsort's own order of ties
        rows = np.flatnonzero(redo)
        out[rows] = labels[np.argsort(keys[rows], axis=1)[:, :w]]
    return out


def pick_backend(n_keys: int, n: int) -> Literal["numpy", "numba"]:
    """The backend ``auto`` uses for ``n_keys`` keys in rows of ``n``: numba when it is
    importable and already loaded or ``n_keys`` is at least :data:`MIN_COMPILED_KEYS`."""
    worth = is_loaded(_kernel) or n_keys >= MIN_COMPILED_KEYS
    if HAS_NUMBA and worth and n < 2**31 and _compiled_kernel() is not None:
        return "numba"
    return "numpy"


def _kernel(
    keys: np.ndarray, labels: np.ndarray, out: np.ndarray, redo: np.ndarray, lo: int, hi: int
) -> None:  # pragma: no cover - compiled by numba, checked against np.argsort in tests
    """Rows ``lo .. hi - 1``, one after another, with their own scratch (compiled without the
    GIL: threads run disjoint blocks of rows at once)."""
    n = keys.shape[1]
    width = out.shape[1]
    nb = 1
    while nb * 2 <= n:
        nb *= 2
    scale = float(nb)  # a power of two: key * scale is exact, its floor the key's leading bits
    start = np.empty(nb + 1, dtype=np.int32)
    bucket = np.empty(n, dtype=np.int32)
    skey = np.empty(n, dtype=np.float64)
    sidx = np.empty(n, dtype=np.int32)
    for r in range(lo, hi):
        row = keys[r]
        start[:] = 0
        bad = False
        for i in range(n):
            k = row[i]
            if not (k >= 0.0 and k < 1.0):  # also NaN: left to np.argsort
                bad = True
                break
            b = np.int32(k * scale)
            bucket[i] = b
            start[b + 1] += 1
        if not bad:
            for c in range(nb):
                start[c + 1] += start[c]
            for i in range(n):  # counting sort by bucket
                c = bucket[i]
                q = start[c]
                start[c] = q + 1
                skey[q] = row[i]
                sidx[q] = i
            for p in range(1, n):  # insertion sort: keys only move within their bucket
                k = skey[p]
                if skey[p - 1] > k:
                    ix = sidx[p]
                    j = p
                    while j > 0 and skey[j - 1] > k:
                        skey[j] = skey[j - 1]
                        sidx[j] = sidx[j - 1]
                        j -= 1
                    skey[j] = k
                    sidx[j] = ix
            for p in range(1, n):  # equal keys end up side by side
                if skey[p] == skey[p - 1]:
                    bad = True
                    break
            if not bad:
                for p in range(width):
                    out[r, p] = labels[sidx[p]]
        if bad:
            redo[r] = True


def _compiled_kernel() -> Any:
    """The kernel compiled by numba (serial, without the GIL, run on threads), or None."""
    return nogil_kernel(_kernel)
