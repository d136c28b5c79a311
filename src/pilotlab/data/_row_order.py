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
    threads: bool = True,
) -> np.ndarray:
    """``labels[np.argsort(keys, axis=1)][:, :width]``, exactly, in expected linear time per row.

    Parameters
    ----------
    keys : numpy.ndarray
        ``(B, n)`` float keys, one permutation per row (typically ``rng.random((B, n))``).
    labels : numpy.ndarray
        ``(n,)`` integer labels; ``np.arange(n)`` gives the sorting positions themselves. Kept
        as ``uint8`` when they are (small codes of a few labels), else taken as ``int64``.
    width : int, optional
        Leading columns of the result to keep (all ``n`` by default).
    out : numpy.ndarray, optional
        ``(B, width)`` array of the labels' dtype to write into (e.g. a block of rows of a
        larger result).
    backend : {"auto", "numpy", "numba"}
        ``numba`` runs the compiled bucket sort; ``numpy`` the argsort itself; ``auto`` prefers
        numba when it is importable and already loaded or the keys number at least
        :data:`MIN_COMPILED_KEYS`. Both give the same array.
    threads : bool
        Whether the compiled backend splits the rows over threads (``False`` for a caller that
        runs blocks of rows on threads itself).

    Returns
    -------
    numpy.ndarray
        ``(B, width)`` labels in the order of each row's keys.
    """
    keys = np.ascontiguousarray(keys, dtype=np.float64)
    kind = np.uint8 if np.asarray(labels).dtype == np.uint8 else np.int64
    labels = np.ascontiguousarray(labels, dtype=kind)
    n_rows, n = keys.shape
    if labels.shape != (n,):
        raise ValueError(f"labels has shape {labels.shape}; the keys have {n} columns")
    w = n if width is None else int(width)
    if not 0 <= w <= n:
        raise ValueError(f"width {w} is not between 0 and {n}")
    if out is None:
        out = np.empty((n_rows, w), dtype=kind)
    elif out.shape != (n_rows, w) or out.dtype != kind or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {labels.dtype} array of shape {(n_rows, w)}")
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
    if threads:
        on_threads(lambda lo, hi: kernel(keys, labels, out, redo, lo, hi), n_rows)  # rows apart
    else:
        kernel(keys, labels, out, redo, 0, n_rows)
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
    GIL: threads run disjoint blocks of rows at once). Each key travels with its label, so the
    result is the first ``width`` labels of the sorted pairs (no positions to gather from)."""
    n = keys.shape[1]
    width = out.shape[1]
    nb = 1
    while nb * 2 <= n:
        nb *= 2
    scale = float(nb)  # a power of two: key * scale is exact, its floor the key's leading bits
    start = np.empty(nb + 1, dtype=np.int32)
    skey = np.empty(n, dtype=np.float64)
    slab = np.empty(n, dtype=labels.dtype)
    for r in range(lo, hi):
        row = keys[r]
        start[:] = 0
        bad = False
        for i in range(n):
            k = row[i]
            if not (k >= 0.0 and k < 1.0):  # also NaN: left to np.argsort
                bad = True
                break
            start[np.int32(k * scale) + 1] += 1
        if not bad:
            for c in range(nb):
                start[c + 1] += start[c]
            for i in range(n):  # counting sort by bucket (the bucket recomputed: one multiply)
                k = row[i]
                b = np.int32(k * scale)
                q = start[b]
                start[b] = q + 1
                skey[q] = k
                slab[q] = labels[i]
            for p in range(1, n):  # insertion sort: keys only move within their bucket
                k = skey[p]
                if skey[p - 1] > k:
                    lab = slab[p]
                    j = p
                    while j > 0 and skey[j - 1] > k:
                        skey[j] = skey[j - 1]
                        slab[j] = slab[j - 1]
                        j -= 1
                    skey[j] = k
                    slab[j] = lab
                    if j > 0 and skey[j - 1] == k:
                        bad = True
                        break
                elif skey[p - 1] == k:  # equal keys end up side by side
                    bad = True
                    break
            if not bad:
                for p in range(width):
                    out[r, p] = slab[p]
        if bad:
            redo[r] = True


def _compiled_kernel() -> Any:
    """The kernel compiled by numba (serial, without the GIL, run on threads), or None."""
    return nogil_kernel(_kernel)
