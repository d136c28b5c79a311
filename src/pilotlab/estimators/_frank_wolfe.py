"""Batched Frank-Wolfe solver for simplex-constrained ridge least squares.

Solves, for each problem ``b`` of a batch at once,

.. math::

    \\min_{x \\in \\Delta} \\; \\lVert A_b x - y_b \\rVert^2 + \\eta_b \\lVert x \\rVert^2,

where :math:`\\Delta` is the unit simplex restricted to the allowed coordinates, with the exact
line-search Frank-Wolfe iteration of Arkhangelsky et al. (2021, Algorithm 1's weight solver). The
problems are given in Gram form: ``G = A'A`` (shared by the batch or one per problem) and
``c = A'y``, so an iteration costs ``O(K)`` per problem (``K`` columns) instead of ``O(rows * K)``:
the solver keeps ``Gx`` up to date with one column of ``G`` per step.

The stopping rule is the reference implementation's: at least two steps, then stop after a step
that lowers the objective ``(||Ax - y||^2 + eta ||x||^2) / rows`` by no more than ``tol``
(``min_decrease ** 2``), or after ``max_iter`` steps. Problems stop individually; finished problems
are dropped from the working set so the batch shrinks as it converges.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = ["HAS_NUMBA", "frank_wolfe", "sparsify", "two_round_frank_wolfe"]

_numba: Any
try:  # optional accelerator: the same iteration compiled, one problem per thread
    import numba as _numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    _numba = None

#: Whether the compiled kernel is available (``pip install pilotlab[fast]``).
HAS_NUMBA: bool = _numba is not None


def sparsify(x: np.ndarray) -> np.ndarray:
    """Zero the weights at or below a quarter of each row's largest weight and renormalise.

    Parameters
    ----------
    x : ndarray, shape (B, K)
        Non-negative weights, one problem per row.

    Returns
    -------
    ndarray, shape (B, K)
        Sparser weights summing to one per row.
    """
    out = np.where(x <= x.max(axis=1, keepdims=True) / 4.0, 0.0, x)
    return out / out.sum(axis=1, keepdims=True)


def frank_wolfe(
    gram: np.ndarray,
    cross: np.ndarray,
    eta: np.ndarray,
    rows: np.ndarray,
    x0: np.ndarray,
    tol: float,
    max_iter: int,
    allowed: np.ndarray | None = None,
    backend: Literal["auto", "numpy", "numba"] = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Run exact line-search Frank-Wolfe on a batch of simplex ridge problems.

    Parameters
    ----------
    gram : ndarray, shape (K, K) or (B, K, K)
        ``A'A``, shared by all problems or one per problem.
    cross : ndarray, shape (B, K)
        ``A'y`` per problem.
    eta : ndarray, shape (B,)
        Ridge penalty per problem (``rows * zeta ** 2`` in the paper's scaling).
    rows : ndarray, shape (B,)
        Number of rows of ``A`` per problem (scales the objective used by the stopping rule).
    x0 : ndarray, shape (B, K)
        Starting weights on the simplex (zero outside ``allowed``).
    tol : float
        Stop once a step lowers the scaled objective by ``tol`` or less (after two steps).
    max_iter : int
        Largest number of steps per problem.
    allowed : ndarray of bool, shape (B, K), optional
        Coordinates each problem may use (default: all).
    backend : {"auto", "numpy", "numba"}
        ``numba`` runs a compiled loop (problems in parallel); ``numpy`` iterates all problems in
        lock-step with array operations; ``auto`` prefers numba when installed. Both follow the
        same iteration and agree to rounding.

    Returns
    -------
    x : ndarray, shape (B, K)
        The weights.
    iterations : ndarray of int, shape (B,)
        Steps taken per problem.
    """
    if backend == "auto":
        backend = "numba" if HAS_NUMBA else "numpy"
    if backend == "numba":
        return _frank_wolfe_compiled(gram, cross, eta, rows, x0, tol, max_iter, allowed)
    n_batch, _ = x0.shape
    shared = gram.ndim == 2
    diag = np.diagonal(gram, axis1=-2, axis2=-1)
    x = np.array(x0, dtype=np.float64, copy=True)
    cross = np.asarray(cross, dtype=np.float64)
    eta = np.broadcast_to(np.asarray(eta, dtype=np.float64), (n_batch,)).copy()
    tol_f = np.broadcast_to(np.asarray(rows, dtype=np.float64) * tol, (n_batch,)).copy()
    gx = x @ gram if shared else np.einsum("bk,bkj->bj", x, gram)
    block = None if allowed is None else np.where(allowed, 0.0, np.inf)

    out_x = np.empty_like(x)
    out_it = np.zeros(n_batch, dtype=np.int64)
    idx = np.arange(n_batch)  # original problem of each working row
    t = 0
    while idx.size:
        t += 1
        r = np.arange(idx.size)
        grad = gx - cross + eta[:, None] * x
        pick = grad if block is None else grad + block
        i = np.argmin(pick, axis=1)
        g_i = grad[r, i]
        x_i = x[r, i]
        gd = g_i - np.einsum("bk,bk->b", grad, x)
        xgx = np.einsum("bk,bk->b", x, gx)
        xx = np.einsum("bk,bk->b", x, x)
        g_ii = diag[i] if shared else diag[idx, i]
        q = (g_ii - 2.0 * gx[r, i] + xgx) + eta * (xx - 2.0 * x_i + 1.0)
        at_vertex = (x_i == 1.0) & (np.count_nonzero(x, axis=1) == 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(at_vertex | (q <= 0.0), 0.0, np.clip(-gd / q, 0.0, 1.0))
        decrease = -(2.0 * step * gd + step * step * q)
        keep = 1.0 - step
        x *= keep[:, None]
        x[r, i] += step
        gx *= keep[:, None]
        gx += step[:, None] * (gram[i] if shared else gram[idx, i])
        if t < 2:
            continue
        done = (decrease <= tol_f) | (t >= max_iter)
        if done.any():
            fin = idx[done]
            out_x[fin] = x[done]
            out_it[fin] = t
            live = ~done
            idx, x, gx, cross, eta, tol_f = (
                idx[live],
                x[live],
                gx[live],
                cross[live],
                eta[live],
                tol_f[live],
            )
            if block is not None:
                block = block[live]
    return out_x, out_it


def two_round_frank_wolfe(
    gram: np.ndarray,
    cross: np.ndarray,
    eta: np.ndarray,
    rows: np.ndarray,
    x0: np.ndarray,
    tol: float,
    allowed: np.ndarray | None = None,
    max_iter_first: int = 100,
    max_iter: int = 10_000,
    backend: Literal["auto", "numpy", "numba"] = "auto",
) -> np.ndarray:
    """Frank-Wolfe with the reference implementation's sparsification between two rounds.

    A first round of at most ``max_iter_first`` steps, :func:`sparsify`, then a second round of
    at most ``max_iter`` steps from the sparsified weights. Parameters as in :func:`frank_wolfe`.

    Returns
    -------
    ndarray, shape (B, K)
        The weights.
    """
    first, _ = frank_wolfe(gram, cross, eta, rows, x0, tol, max_iter_first, allowed, backend)
    second, _ = frank_wolfe(
        gram, cross, eta, rows, sparsify(first), tol, max_iter, allowed, backend
    )
    return second


def _kernel(
    gram: np.ndarray,
    stride: int,
    cross: np.ndarray,
    eta: np.ndarray,
    tol_f: np.ndarray,
    x: np.ndarray,
    max_iter: int,
    block: np.ndarray,
    iters: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba, checked against the numpy path in tests
    """The numpy iteration, one problem per thread.

    Sums over ``x`` run over its support only, and the update of ``Gx`` and ``x`` is fused with
    the search for the next vertex, so each step reads the ``K``-vectors once.
    """
    n_batch, k = x.shape
    for b in _prange(n_batch):
        gb = gram[b * stride]
        xb = x[b]
        cb = cross[b]
        kb = block[b]
        eb = eta[b]
        gx = np.zeros(k)
        supp = np.empty(k, dtype=np.int64)
        in_supp = np.zeros(k, dtype=np.bool_)
        ns = 0
        for j in range(k):
            if xb[j] != 0.0:
                gx += xb[j] * gb[j]
                supp[ns] = j
                in_supp[j] = True
                ns += 1
        best = np.inf
        ib = 0
        for j in range(k):
            v = gx[j] - cb[j] + eb * xb[j] + kb[j]
            if v < best:
                best = v
                ib = j
        t = 0
        while True:
            t += 1
            g_i = gx[ib] - cb[ib] + eb * xb[ib]
            gdotx = 0.0
            xgx = 0.0
            xx = 0.0
            for m in range(ns):
                j = supp[m]
                xj = xb[j]
                gdotx += (gx[j] - cb[j] + eb * xj) * xj
                xgx += xj * gx[j]
                xx += xj * xj
            xi = xb[ib]
            gd = g_i - gdotx
            q = (gb[ib, ib] - 2.0 * gx[ib] + xgx) + eb * (xx - 2.0 * xi + 1.0)
            step = 0.0
            if not (xi == 1.0 and ns == 1) and q > 0.0:
                step = min(1.0, max(0.0, -gd / q))
            decrease = -(2.0 * step * gd + step * step * q)
            keep = 1.0 - step
            row = gb[ib]
            chosen = ib
            best = np.inf
            for j in range(k):
                gxj = gx[j] * keep + step * row[j]
                gx[j] = gxj
                xj = xb[j] * keep
                if j == chosen:
                    xj += step
                xb[j] = xj
                v = gxj - cb[j] + eb * xj + kb[j]
                if v < best:
                    best = v
                    ib = j
            if step == 1.0:  # moved to a vertex: the support is that vertex alone
                for m in range(ns):
                    in_supp[supp[m]] = False
                ns = 0
            if step > 0.0 and not in_supp[chosen]:
                supp[ns] = chosen
                in_supp[chosen] = True
                ns += 1
            if t >= 2 and (decrease <= tol_f[b] or t >= max_iter):
                break
        iters[b] = t


if _numba is not None:
    _prange: Any = _numba.prange
    _compiled: Any = _numba.njit(cache=True, parallel=True, fastmath=False)(_kernel)
else:  # pragma: no cover
    _prange = range
    _compiled = None


def _frank_wolfe_compiled(
    gram: np.ndarray,
    cross: np.ndarray,
    eta: np.ndarray,
    rows: np.ndarray,
    x0: np.ndarray,
    tol: float,
    max_iter: int,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    n_batch, k = x0.shape
    x = np.array(x0, dtype=np.float64, copy=True, order="C")
    eta_b = np.ascontiguousarray(np.broadcast_to(np.asarray(eta, np.float64), (n_batch,)))
    tol_f = np.ascontiguousarray(np.broadcast_to(np.asarray(rows, np.float64) * tol, (n_batch,)))
    block = (
        np.zeros((n_batch, k))
        if allowed is None
        else np.where(np.asarray(allowed, dtype=bool), 0.0, np.inf)
    )
    iters = np.zeros(n_batch, dtype=np.int64)
    _compiled(
        np.ascontiguousarray(gram[None] if gram.ndim == 2 else gram, dtype=np.float64),
        0 if gram.ndim == 2 else 1,
        np.ascontiguousarray(cross, dtype=np.float64),
        eta_b,
        tol_f,
        x,
        int(max_iter),
        block,
        iters,
    )
    return x, iters
