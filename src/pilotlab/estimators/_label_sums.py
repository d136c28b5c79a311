"""Sums of every unit's row for the label a re-assignment gives it, by cluster, for many
re-assignments at once.

For re-assignments ``labels`` (``(B, N)``: each unit's label, ``0 .. L - 1``), per-unit rows
``values`` (``(L, N, q)``: unit ``i``'s row if it had label ``l``) and the units' clusters
``cluster`` (``(N,)``, ``0 .. H - 1``), :func:`label_cluster_sums` returns

* ``sums[b, h] = sum over units i of cluster h of values[labels[b, i], i]`` (``(B, H, q)``) and
* ``counts[b, h, l]``: how many units of cluster ``h`` re-assignment ``b`` gives label ``l``.

That is what a regression's cluster scores need when a unit's score depends only on its own
outcomes and its label (the event study on cohort x period cells): one pass over the units per
re-assignment, instead of a re-fit. The compiled kernel (numba, serial without the GIL, blocks of
re-assignments on threads) and the numpy fallback (one ``bincount`` per column) add the same
numbers in the same order, unit by unit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pilotlab.compiled import HAS_NUMBA, nogil_kernel, on_threads

__all__ = ["HAS_NUMBA", "label_cluster_sums"]


def label_cluster_sums(
    labels: np.ndarray,
    values: np.ndarray,
    cluster: np.ndarray,
    n_clusters: int,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """``(sums, counts)`` of the module docstring: ``(B, H, q)`` and ``(B, H, L)``.

    ``backend``: ``numba`` (the compiled pass), ``numpy`` (bincounts) or ``auto`` (numba when
    it is importable). Both give the same sums, added in the units' order.
    """
    lab = np.ascontiguousarray(labels, dtype=np.int64)
    vals = np.ascontiguousarray(values, dtype=np.float64)
    cl = np.ascontiguousarray(cluster, dtype=np.int64)
    n_draws, n = lab.shape
    n_labels, _, q = vals.shape
    sums = np.zeros((n_draws, n_clusters, q))
    counts = np.zeros((n_draws, n_clusters, n_labels))
    kernel = _compiled_kernel() if backend in ("auto", "numba") else None
    if backend == "numba" and kernel is None:
        raise ImportError("backend='numba' needs numba, which is not installed or not importable")
    if kernel is None:
        flat = vals.reshape(n_labels * n, q)
        where = lab * n + np.arange(n)[None, :]  # row of values each unit takes
        bins = (np.arange(n_draws)[:, None] * n_clusters + cl[None, :]).ravel()
        for j in range(q):  # one bincount per column of the rows
            sums[:, :, j] = np.bincount(
                bins, weights=flat[where.ravel(), j], minlength=n_draws * n_clusters
            ).reshape(n_draws, n_clusters)
        counts[:] = np.bincount(
            bins * n_labels + lab.ravel(), minlength=n_draws * n_clusters * n_labels
        ).reshape(n_draws, n_clusters, n_labels)
        return sums, counts
    on_threads(lambda lo, hi: kernel(lab, vals, cl, sums, counts, lo, hi), n_draws)
    return sums, counts


def _kernel(
    labels: np.ndarray,
    values: np.ndarray,
    cluster: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    lo: int,
    hi: int,
) -> None:  # pragma: no cover - compiled by numba, checked against the numpy path in tests
    """Re-assignments ``lo .. hi - 1``, one after another, unit by unit."""
    n = labels.shape[1]
    q = values.shape[2]
    for b in range(lo, hi):
        for i in range(n):
            g = labels[b, i]
            h = cluster[i]
            for j in range(q):
                sums[b, h, j] += values[g, i, j]
            counts[b, h, g] += 1.0


def _compiled_kernel() -> Any:
    """The kernel compiled by numba (serial, without the GIL, run on threads), or None."""
    return nogil_kernel(_kernel)
