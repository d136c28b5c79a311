"""``table[codes]`` for the small ``uint8`` codes of re-assignments, without an index copy.

numpy's ``np.take(table, codes)`` first converts the codes to ``intp``: for 999 re-assignments
of 35,000 units that is a 280 MB temporary (page-faulted afresh on every call, since memory of
that size goes back to the system when freed) to read a table of a few entries. This module
gathers a chunk of codes at a time instead, so the temporary stays small, or, for a one-byte
table and many codes with numba available, in one compiled pass on threads that reads the codes
themselves. Both give exactly ``np.take(table, codes)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pilotlab.compiled import HAS_NUMBA, nogil_kernel, on_threads

__all__ = ["gather_codes"]

#: Codes gathered at a time by the numpy path (its ``intp`` copy of them stays a few MB).
CHUNK_CODES = 1 << 18
#: Fewest codes for which the compiled pass is used (below, the chunks cost less than a call).
MIN_COMPILED_CODES = 1 << 20


def gather_codes(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``np.take(table, codes)`` (same shape, ``table``'s dtype) for integer ``codes`` that
    are all valid positions of the one-dimensional ``table``."""
    table = np.asarray(table)
    codes = np.ascontiguousarray(codes)
    out = np.empty(codes.shape, dtype=table.dtype)
    flat_codes, flat_out = codes.reshape(-1), out.reshape(-1)
    n = flat_codes.size
    compiled = HAS_NUMBA and n >= MIN_COMPILED_CODES and table.itemsize == 1
    # the kernel reads the table unchecked: codes past its end are left to np.take's error
    if compiled and codes.dtype == np.uint8 and codes.max(initial=0) < table.size:
        kernel = _compiled_kernel()
    else:
        kernel = None
    if kernel is None:
        for a in range(0, n, CHUNK_CODES):  # chunks: a small intp copy of the codes each
            np.take(table, flat_codes[a : a + CHUNK_CODES], out=flat_out[a : a + CHUNK_CODES])
        return out
    small, dest = table.view(np.uint8), flat_out.view(np.uint8)  # bool and int8 as bytes
    on_threads(lambda lo, hi: kernel(flat_codes, small, dest, lo, hi), n)
    return out


def _kernel(
    codes: np.ndarray, table: np.ndarray, out: np.ndarray, lo: int, hi: int
) -> None:  # pragma: no cover - compiled by numba, checked against np.take in tests
    """``out[i] = table[codes[i]]`` for ``i`` in ``lo .. hi - 1`` (compiled without the GIL:
    threads run disjoint ranges at once)."""
    for i in range(lo, hi):
        out[i] = table[codes[i]]


def _compiled_kernel() -> Any:
    """The kernel compiled by numba (serial, without the GIL, run on threads), or None."""
    return nogil_kernel(_kernel)
