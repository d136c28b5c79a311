"""Multivariate normal box probabilities by Genz's separation of variables, on fixed points.

``P(lower <= X <= upper)`` for ``X ~ N(mean, corr)`` is rewritten (Genz 1992, "Numerical
computation of multivariate normal probabilities") as an integral over the unit cube of
dimension ``n - 1``: with the Cholesky factor ``L`` of ``corr`` and, for each variable in turn,
its conditional limits given the ones before, the probability is the expected product of the
conditional interval probabilities. The variables are ordered as Genz and Bretz recommend
(innermost the one with the smallest expected interval probability, the others conditioned on
the truncated-normal means of those already chosen), which makes the integrand flatter.

The integrand is evaluated at a FIXED set of randomised quasi-random points: ``SHIFTS``
independently scrambled Sobol sequences of ``POINTS`` points each, drawn once per dimension from
a fixed seed. All points are processed together as whole arrays, so one probability costs a few
milliseconds, and the result is a deterministic, smooth function of the mean and limits (the
same points for every call: a root search over a parameter sees no integration noise). The
spread of the ``SHIFTS`` estimates gives the integration error.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special

from pilotlab.compiled import on_threads
from pilotlab.diagnostics.sobol import scrambled_sobol

__all__ = ["POINTS", "SHIFTS", "box_probability", "box_probability_at"]

#: Quasi-random points per randomisation, in the stages tried in turn until the error bound is
#: met (powers of two keep the Sobol balance properties).
POINTS = (1024, 2048, 4096, 8192, 16384, 32768)
#: Independent scramblings; their spread estimates the integration error.
SHIFTS = 8
_SEED = 20260101
#: Conditional standard deviations below this are treated as exact linear dependence.
_SINGULAR = 1e-10
#: Keeps the inverse normal finite at the edges of an interval.
_EDGE = 1e-15


@functools.lru_cache(maxsize=64)
def _points(dim: int, points: int) -> np.ndarray:
    """``(SHIFTS * points, dim)`` scrambled Sobol points, the same on every call."""
    rng = np.random.default_rng([_SEED, dim, points])
    sets = [scrambled_sobol(dim, points, rng) for _ in range(SHIFTS)]
    out = np.concatenate(sets, axis=0)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=64)
def _points_by_dimension(dim: int, points: int) -> np.ndarray:
    """:func:`_points` transposed: ``(dim, SHIFTS * points)``, each dimension contiguous."""
    out = np.ascontiguousarray(_points(dim, points).T)
    out.setflags(write=False)
    return out


def _ordered_cholesky(
    a: np.ndarray, b: np.ndarray, corr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Genz-Bretz variable ordering with the Cholesky factor computed alongside: returns the
    reordered limits and the lower-triangular factor of the reordered covariance."""
    n = a.size
    a = a.copy()
    b = b.copy()
    C = corr.copy()
    L = np.zeros((n, n))
    y = np.zeros(n)
    for i in range(n):
        rest = np.arange(i, n)
        var = np.diag(C)[rest] - np.sum(L[rest, :i] ** 2, axis=1)
        sd = np.sqrt(np.maximum(var, 0.0))
        shift = L[rest, :i] @ y[:i]
        with np.errstate(divide="ignore", invalid="ignore"):
            lo = np.where(sd > _SINGULAR, (a[rest] - shift) / sd, -np.inf)
            hi = np.where(sd > _SINGULAR, (b[rest] - shift) / sd, np.inf)
        prob = special.ndtr(hi) - special.ndtr(lo)
        # degenerate variables last: they carry no integration dimension of their own
        prob = np.where(sd > _SINGULAR, prob, np.inf)
        j = i + int(np.argmin(prob))
        if j != i:  # swap variables i and j everywhere
            for arr in (a, b):
                arr[[i, j]] = arr[[j, i]]
            C[[i, j], :] = C[[j, i], :]
            C[:, [i, j]] = C[:, [j, i]]
            L[[i, j], :] = L[[j, i], :]
        d = float(C[i, i] - L[i, :i] @ L[i, :i])
        if d <= _SINGULAR**2:
            L[i, i] = 0.0
            L[i + 1 :, i] = 0.0
            y[i] = 0.0
            continue
        L[i, i] = math.sqrt(d)
        L[i + 1 :, i] = (C[i + 1 :, i] - L[i + 1 :, :i] @ L[i, :i]) / L[i, i]
        s = float(L[i, :i] @ y[:i])
        lo_i = (a[i] - s) / L[i, i]
        hi_i = (b[i] - s) / L[i, i]
        p = float(special.ndtr(hi_i) - special.ndtr(lo_i))
        # mean of the standard normal truncated to [lo_i, hi_i]: the next variables' condition
        if p > 1e-300:
            y[i] = float(
                (np.exp(-0.5 * lo_i**2) - np.exp(-0.5 * hi_i**2)) / math.sqrt(2 * math.pi) / p
            )
        else:
            y[i] = lo_i if lo_i > 0 else hi_i
    return a, b, L


def box_probability(
    lower: np.ndarray,
    upper: np.ndarray,
    mean: np.ndarray,
    corr: np.ndarray,
    abseps: float = 3e-5,
) -> tuple[float, float, int]:
    """``P(lower <= X <= upper)`` for ``X ~ N(mean, corr)``, a three-standard-error bound on its
    integration error and the points per randomisation used: the first stage of :data:`POINTS`
    whose bound is at most ``abseps`` (else the last). ``corr`` must be positive semi-definite
    (singular is allowed). For a family of related probabilities (a root search), fix the stage
    found for one of them with :func:`box_probability_at` so that all share the same points."""
    for points in POINTS:
        p, err = box_probability_at(lower, upper, mean, corr, points)
        if err <= abseps:
            break
    return p, err, points


def box_probability_at(
    lower: np.ndarray, upper: np.ndarray, mean: np.ndarray, corr: np.ndarray, points: int
) -> tuple[float, float]:
    """:func:`box_probability` on ``points`` quasi-random points per randomisation."""
    m = np.asarray(mean, dtype=np.float64).ravel()
    a = np.asarray(lower, dtype=np.float64).ravel() - m
    b = np.asarray(upper, dtype=np.float64).ravel() - m
    R = np.asarray(corr, dtype=np.float64)
    n = m.size
    if n == 1:
        sd = math.sqrt(max(float(R[0, 0]), 0.0))
        if sd <= _SINGULAR:
            return (1.0 if a[0] <= 0.0 <= b[0] else 0.0), 0.0
        return float(special.ndtr(b[0] / sd) - special.ndtr(a[0] / sd)), 0.0
    a, b, L = _ordered_cholesky(a, b, R)
    w = _points_by_dimension(n - 1, points)
    f = np.empty(w.shape[1])

    def integrate(lo: int, hi: int) -> None:  # randomisations lo .. hi - 1
        sl = slice(lo * points, hi * points)
        _integrand(a, b, L, w[:, sl], f[sl])

    # the points are independent: whole randomisations on threads, as numpy and scipy's special
    # functions release the GIL; the same bits in any split
    on_threads(integrate, SHIFTS)
    per_shift = f.reshape(SHIFTS, points).mean(axis=1)
    est = float(per_shift.mean())
    err = 3.0 * float(per_shift.std(ddof=1)) / math.sqrt(SHIFTS)
    return min(max(est, 0.0), 1.0), err


def _integrand(a: np.ndarray, b: np.ndarray, L: np.ndarray, w: np.ndarray, f: np.ndarray) -> None:
    """Genz's integrand at the points ``w`` (``(n - 1, k)``, one row per dimension), into ``f``."""
    n = a.size
    k = w.shape[1]
    f[:] = 1.0
    y = np.zeros((n, k))  # the conditioning values, one contiguous row per variable
    s = np.empty(k)
    d = np.empty(k)
    e = np.empty(k)
    for i in range(n):  # loop over the (few) dimensions; every point at once
        s[:] = 0.0
        for j in range(i):  # the conditional mean shift, summed in a fixed order
            if L[i, j] != 0.0:
                s += L[i, j] * y[j]
        if L[i, i] == 0.0:  # exactly determined by the variables before it
            f *= (s >= a[i]) & (s <= b[i])
            continue
        if i == 0:  # nothing to condition on: the same interval at every point
            d[:] = special.ndtr(a[0] / L[0, 0])
            e[:] = special.ndtr(b[0] / L[0, 0])
        else:
            np.subtract(a[i], s, out=d)
            d /= L[i, i]
            special.ndtr(d, out=d)
            np.subtract(b[i], s, out=e)
            e /= L[i, i]
            special.ndtr(e, out=e)
        e -= d  # the width of the conditional interval
        f *= e
        if i < n - 1:
            e *= w[i]
            e += d
            np.clip(e, _EDGE, 1.0 - _EDGE, out=e)
            special.ndtri(e, out=y[i])
