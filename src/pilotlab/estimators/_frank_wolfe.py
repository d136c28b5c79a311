"""Batched Frank-Wolfe solver for simplex-constrained ridge least squares.

Solves, for each problem ``b`` of a batch at once,

.. math::

    \\min_{x \\in \\Delta} \\; \\lVert A_b x - y_b \\rVert^2 + \\eta_b \\lVert x \\rVert^2,

where :math:`\\Delta` is the unit simplex restricted to the allowed coordinates, with the exact
line-search Frank-Wolfe iteration of Arkhangelsky et al. (2021, Algorithm 1's weight solver). The
problems are given in Gram form: ``G = A'A`` (shared by the batch or one per problem) and
``c = A'y``.

The stopping rule is the reference implementation's: at least two steps, then stop after a step
that lowers the objective ``(||Ax - y||^2 + eta ||x||^2) / rows`` by no more than ``tol``
(``min_decrease ** 2``), or after ``max_iter`` steps. Problems stop individually. With the
reference tolerance the weight problems of synthetic control and synthetic DiD rarely meet the
rule and run the full ``max_iter`` steps, so the cost of one step is what matters.

One step costs one pass over ``K`` numbers per problem. With ``x' = (1 - s) x + s e_i`` the
gradient ``g = Gx + eta x - c`` moves to ``(1 - s) g + s h_i`` with ``h_i = G_i + eta e_i - c``;
the solver keeps ``w = g / sigma`` and ``u = x / sigma`` with ``sigma`` the product of the
``1 - s`` factors, so a step adds ``(s / sigma') h_i`` to ``w`` (no rescaling pass) and the
vertex search is an argmin of ``w``. The scalars of the line search (``g . x`` and ``c . x``)
follow exact recurrences. The numpy backend runs all problems in lock-step on (B, K) arrays; the
compiled backend (numba, problems in parallel) does the same arithmetic in the same order, one
fused loop per step, so the two agree to the last bit.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from pilotlab.compiled import HAS_NUMBA, MAX_THREADS, nogil_kernel, on_threads

__all__ = ["HAS_NUMBA", "frank_wolfe", "sparsify", "two_round_frank_wolfe"]


#: Stand-in for +inf at coordinates a problem may not use (finite, so ``0 * BIG`` is 0).
BIG = 1e300
#: ``sigma`` below this is folded back into ``w`` and ``u`` (no underflow after many steps).
RENORM = 1e-30
#: The numpy backend splits large batches into blocks of rows solved on separate threads.
MIN_ROWS_PER_THREAD = 64


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
    out_: np.ndarray = out / out.sum(axis=1, keepdims=True)
    return out_


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
        ``numba`` runs the compiled loop (problems in parallel); ``numpy`` iterates all problems
        in lock-step with array operations; ``auto`` prefers numba when it is installed. Both do
        the same arithmetic and return the same numbers.

    Returns
    -------
    x : ndarray, shape (B, K)
        The weights.
    iterations : ndarray of int, shape (B,)
        Steps taken per problem.
    """
    if backend == "auto":
        backend = "numba" if HAS_NUMBA and _compiled_kernel() is not None else "numpy"
    st = _start(gram, cross, eta, rows, x0, tol, allowed)
    if backend == "numba":
        return _run_compiled(st, max_iter)
    n_threads = min(os.cpu_count() or 1, MAX_THREADS, x0.shape[0] // MIN_ROWS_PER_THREAD)
    if n_threads < 2:
        return _run_numpy(st, max_iter)
    # Rows are independent problems, so blocks of rows give the same bits in any grouping; numpy
    # releases the GIL inside its array loops, so the blocks run on separate cores.
    parts = np.array_split(np.arange(x0.shape[0]), n_threads)
    with ThreadPoolExecutor(n_threads) as pool:
        done = list(pool.map(lambda rows_: _run_numpy(st.rows(rows_), max_iter), parts))
    return np.concatenate([d[0] for d in done]), np.concatenate([d[1] for d in done])


class _State:
    """The solver's state at the start: ``w = g`` (``BIG`` where blocked), ``u = x``, scalars."""

    def __init__(
        self,
        gram: np.ndarray,
        cross: np.ndarray,
        eta: np.ndarray,
        tol_f: np.ndarray,
        w: np.ndarray,
        u: np.ndarray,
        blocked: np.ndarray | None,
        d: np.ndarray,
        cx: np.ndarray,
        vertex: np.ndarray,
    ) -> None:
        self.gram, self.cross, self.eta, self.tol_f = gram, cross, eta, tol_f
        self.w, self.u, self.blocked = w, u, blocked
        self.d, self.cx, self.vertex = d, cx, vertex

    def rows(self, r: np.ndarray) -> _State:
        """The state of the problems ``r`` alone (copies)."""
        return _State(
            self.gram if self.gram.ndim == 2 else self.gram[r],
            self.cross[r],
            self.eta[r],
            self.tol_f[r],
            self.w[r],
            self.u[r],
            None if self.blocked is None else self.blocked[r],
            self.d[r],
            self.cx[r],
            self.vertex[r],
        )


def _start(
    gram: np.ndarray,
    cross: np.ndarray,
    eta: np.ndarray,
    rows: np.ndarray,
    x0: np.ndarray,
    tol: float,
    allowed: np.ndarray | None,
) -> _State:
    n_batch = x0.shape[0]
    gram = np.ascontiguousarray(gram, dtype=np.float64)
    x = np.array(x0, dtype=np.float64, copy=True, order="C")
    c = np.array(cross, dtype=np.float64, copy=True, order="C")
    eta = np.ascontiguousarray(np.broadcast_to(np.asarray(eta, dtype=np.float64), (n_batch,)))
    tol_f = np.ascontiguousarray(
        np.broadcast_to(np.asarray(rows, dtype=np.float64) * tol, (n_batch,))
    )
    gx = x @ gram if gram.ndim == 2 else np.einsum("bk,bkj->bj", x, gram)
    w = gx - c + eta[:, None] * x  # the gradient
    d = np.einsum("bk,bk->b", w, x)  # g . x
    cx = np.einsum("bk,bk->b", c, x)  # c . x
    blocked = None if allowed is None else ~np.asarray(allowed, dtype=bool)
    if blocked is not None:
        w[blocked] = BIG
    top = np.argmax(x, axis=1)
    at_vertex = (np.count_nonzero(x, axis=1) == 1) & (x[np.arange(n_batch), top] == 1.0)
    vertex = np.where(at_vertex, top, -1).astype(np.int64)
    return _State(gram, c, eta, tol_f, w, x, blocked, d, cx, vertex)


def _run_numpy(st: _State, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """All problems in lock-step; finished problems leave the working set."""
    gram, c, eta, tol_f, w, u = st.gram, st.cross, st.eta, st.tol_f, st.w, st.u
    blocked, d, cx, vertex = st.blocked, st.d, st.cx, st.vertex
    n_batch = u.shape[0]
    shared = gram.ndim == 2
    diag = np.diagonal(gram, axis1=-2, axis2=-1)
    sig = np.ones(n_batch)
    out_x = np.empty_like(u)
    out_it = np.zeros(n_batch, dtype=np.int64)
    idx = np.arange(n_batch)  # original problem of each working row
    buf = np.empty_like(w)
    t = 0
    while idx.size:
        t += 1
        r = np.arange(idx.size)
        tmp = buf[: idx.size]
        i = np.argmin(w, axis=1)
        g_i = sig * w[r, i]
        c_i = c[r, i]
        h_ii = (diag[i] if shared else diag[idx, i]) + eta
        gd = g_i - d
        q = h_ii - 2.0 * (g_i + c_i) + (d + cx)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where((vertex == i) | (q <= 0.0), 0.0, np.clip(-gd / q, 0.0, 1.0))
        decrease = -(2.0 * step * gd + step * step * q)
        keep = 1.0 - step
        d = keep * keep * d + keep * step * (2.0 * g_i + c_i - cx) + step * step * (h_ii - c_i)
        cx = keep * cx + step * c_i
        sig = sig * keep
        full = step == 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(full, 0.0, step / sig)
        u[r, i] += a
        if shared:
            np.take(gram, i, axis=0, out=tmp)
        else:
            tmp[...] = gram[idx, i]
        np.subtract(tmp, c, out=tmp)
        np.multiply(tmp, a[:, None], out=tmp)
        np.add(w, tmp, out=w)
        w[r, i] += a * eta
        vertex = np.where(step > 0.0, -1, vertex)
        if full.any():  # moved onto the vertex e_i: start afresh from it
            f = np.flatnonzero(full)
            fi = i[f]
            u[f] = 0.0
            u[f, fi] = 1.0
            w[f] = (gram[fi] if shared else gram[idx[f], fi]) - c[f]
            w[f, fi] += eta[f]
            sig[f] = 1.0
            vertex[f] = fi
            d[f] = h_ii[f] - c_i[f]
            cx[f] = c_i[f]
        small = sig < RENORM
        if small.any():
            f = np.flatnonzero(small)
            u[f] *= sig[f, None]
            w[f] *= sig[f, None]
            sig[f] = 1.0
        if blocked is not None and (full.any() or small.any()):
            f = np.flatnonzero(full | small)
            w[f] = np.where(blocked[f], BIG, w[f])
        if t < 2:
            continue
        done = (decrease <= tol_f) | (t >= max_iter)
        if done.any():
            fin = idx[done]
            out_x[fin] = sig[done, None] * u[done]
            out_it[fin] = t
            live = ~done
            idx, u, w, c, eta, tol_f = idx[live], u[live], w[live], c[live], eta[live], tol_f[live]
            sig, d, cx, vertex = sig[live], d[live], cx[live], vertex[live]
            if blocked is not None:
                blocked = blocked[live]
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
    lo: int,
    hi: int,
    gram: np.ndarray,
    stride: int,
    cross: np.ndarray,
    eta: np.ndarray,
    tol_f: np.ndarray,
    w_all: np.ndarray,
    u_all: np.ndarray,
    blocked: np.ndarray,
    d0: np.ndarray,
    cx0: np.ndarray,
    vertex0: np.ndarray,
    max_iter: int,
    iters: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba, checked against the numpy path in tests
    """The numpy iteration for problems ``lo .. hi - 1``, one after another, the update of ``w``
    fused with the argmin (compiled without the GIL: threads run disjoint ranges at once)."""
    k = u_all.shape[1]
    for b in range(lo, hi):
        gb = gram[b * stride]
        cb = cross[b]
        w = w_all[b]
        u = u_all[b]
        kb = blocked[b]
        e = eta[b]
        d = d0[b]
        cx = cx0[b]
        vertex = vertex0[b]
        sig = 1.0
        i = 0
        best = np.inf
        for j in range(k):
            if w[j] < best:
                best = w[j]
                i = j
        t = 0
        while True:
            t += 1
            g_i = sig * w[i]
            c_i = cb[i]
            h_ii = gb[i, i] + e
            gd = g_i - d
            q = h_ii - 2.0 * (g_i + c_i) + (d + cx)
            step = 0.0
            if not (vertex == i or q <= 0.0):
                step = min(max(-gd / q, 0.0), 1.0)
            decrease = -(2.0 * step * gd + step * step * q)
            keep = 1.0 - step
            d = keep * keep * d + keep * step * (2.0 * g_i + c_i - cx) + step * step * (h_ii - c_i)
            cx = keep * cx + step * c_i
            sig = sig * keep
            if step == 1.0:  # onto the vertex e_i
                chosen = i
                best = np.inf
                for j in range(k):
                    u[j] = 0.0
                    v = gb[chosen, j] - cb[j]
                    if j == chosen:
                        v += e
                    if kb[j]:
                        v = BIG
                    w[j] = v
                    if v < best:
                        best = v
                        i = j
                u[chosen] = 1.0
                sig = 1.0
                vertex = chosen
                d = h_ii - c_i
                cx = c_i
            elif step > 0.0:
                a = step / sig
                u[i] += a
                chosen = i
                row = gb[chosen]
                for j in range(k):  # a loop the compiler vectorises
                    w[j] = w[j] + (row[j] - cb[j]) * a
                w[chosen] += a * e
                # the first index of the smallest entry, on four independent running minima
                # (lane ``l`` sees ``j = l mod 4``); lane 0 starts from ``w[0]`` as a plain scan
                # does, so ties and a NaN at 0 give the scan's index
                b0 = w[0]
                b1 = np.inf
                b2 = np.inf
                b3 = np.inf
                i0 = 0
                i1 = -1
                i2 = -1
                i3 = -1
                j = 1
                while j + 3 < k:
                    v = w[j]
                    if v < b1:
                        b1 = v
                        i1 = j
                    v = w[j + 1]
                    if v < b2:
                        b2 = v
                        i2 = j + 1
                    v = w[j + 2]
                    if v < b3:
                        b3 = v
                        i3 = j + 2
                    v = w[j + 3]
                    if v < b0:
                        b0 = v
                        i0 = j + 3
                    j += 4
                while j < k:
                    v = w[j]
                    if v < b1:
                        b1 = v
                        i1 = j
                    j += 1
                best = b0
                i = i0
                if b1 < best or (b1 == best and 0 <= i1 < i):
                    best = b1
                    i = i1
                if b2 < best or (b2 == best and 0 <= i2 < i):
                    best = b2
                    i = i2
                if b3 < best or (b3 == best and 0 <= i3 < i):
                    best = b3
                    i = i3
                vertex = -1
                if sig < RENORM:
                    best = np.inf
                    for j in range(k):
                        u[j] *= sig
                        v = BIG if kb[j] else w[j] * sig
                        w[j] = v
                        if v < best:
                            best = v
                            i = j
                    sig = 1.0
            if t >= 2 and (decrease <= tol_f[b] or t >= max_iter):
                break
        for j in range(k):
            u[j] *= sig
        iters[b] = t


def _compiled_kernel() -> Any:
    """The kernel compiled by numba (serial, without the GIL, run on threads), or None."""
    return nogil_kernel(_kernel)


def _run_compiled(st: _State, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    kernel = _compiled_kernel()
    if kernel is None:
        raise ImportError("backend='numba' needs numba, which is not installed or not importable")
    n_batch, k = st.u.shape
    gram = st.gram[None] if st.gram.ndim == 2 else st.gram
    blocked = np.zeros((n_batch, k), dtype=np.bool_) if st.blocked is None else st.blocked
    iters = np.zeros(n_batch, dtype=np.int64)
    args = (
        gram,
        0 if st.gram.ndim == 2 else 1,
        st.cross,
        st.eta,
        st.tol_f,
        st.w,
        st.u,
        np.ascontiguousarray(blocked),
        st.d,
        st.cx,
        st.vertex,
        int(max_iter),
        iters,
    )
    # problems stop after different numbers of steps: several ranges per thread, taken in turn,
    # keep the threads equally busy; each problem's arithmetic is the same in any grouping
    on_threads(lambda lo, hi: kernel(lo, hi, *args), n_batch, pieces_per_thread=4)
    return st.u, iters
