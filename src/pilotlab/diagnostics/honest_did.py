"""Sensitivity of an event-study effect to violations of parallel trends (Rambachan & Roth 2023).

Given event-study coefficients ``betahat`` (``n_pre`` pre-period then ``n_post`` post-period
coefficients, the reference period omitted) and their covariance ``sigma``, the target is
``theta = l' beta_post`` (by default the first post-period effect). Two families of restrictions
on the post-period trend violation ``delta_post`` are offered:

* **Smoothness**, ``Delta^SD(M)``: the slope of the violation may change by at most ``M`` between
  consecutive periods (``M = 0``: a linear pre-trend continues). Intervals are the optimal
  fixed-length confidence intervals (FLCI) of Armstrong & Kolesar, as in HonestDiD's default for
  this restriction: the affine estimator ``a' beta`` and half-length minimising
  ``sd * cv_alpha(M * bias / sd)``, with ``cv_alpha(b)`` the ``1 - alpha`` quantile of
  ``|N(b, 1)|`` computed exactly (HonestDiD simulates it with 10^6 draws).
* **Relative magnitudes**, ``Delta^RM(Mbar)``: no post-period change in the violation exceeds
  ``Mbar`` times the largest pre-period change. Intervals invert the conditional-least-favourable
  hybrid test of Andrews, Roth & Pakes (HonestDiD's ``C-LF``) over a grid of ``theta``. The
  linear programmes of that test are solved exactly by enumerating the vertices of their (small)
  dual polytope once, so the whole grid and the least-favourable simulation are matrix products.

The *breakdown value* is the smallest ``M`` (or ``Mbar``) whose interval contains zero: "a
violation ``Mbar`` times the largest pre-period one would overturn the finding".
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from pilotlab.distributions import norm_cdf, norm_ppf, truncnorm_ppf
from pilotlab.exceptions import EstimationError

__all__ = [
    "HonestInterval",
    "breakdown_value",
    "flci_sd",
    "original_ci",
    "sensitivity_rm",
    "sensitivity_sd",
]


@dataclass(frozen=True)
class HonestInterval:
    """A robust confidence interval under one restriction.

    Attributes
    ----------
    restriction : {"SD", "RM", "none"}
        Smoothness, relative magnitudes or no restriction (the original interval).
    bound : float
        ``M`` for SD, ``Mbar`` for RM, ``nan`` for the original interval.
    lower, upper : float
        Interval end points.
    method : str
        ``"FLCI"``, ``"C-LF"`` or ``"original"``.
    open_ended : bool
        The accepted set reached the edge of the grid (RM only); the end point is then a bound
        of the grid searched.
    """

    restriction: str
    bound: float
    lower: float
    upper: float
    method: str
    open_ended: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval."""
        return self.lower <= value <= self.upper

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form."""
        return dict(self.__dict__)


def _check_inputs(
    betahat: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    n_pre: int,
    n_post: int,
    l_vec: Sequence[float] | np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = np.asarray(betahat, dtype=np.float64).reshape(-1)
    s = np.asarray(sigma, dtype=np.float64)
    if b.size != n_pre + n_post:
        raise EstimationError(
            f"honest_did: betahat has {b.size} coefficients but n_pre + n_post = "
            f"{n_pre + n_post}; pass the event-study coefficients without the reference period."
        )
    if s.shape != (b.size, b.size):
        raise EstimationError(
            f"honest_did: sigma has shape {s.shape}, expected ({b.size}, {b.size})."
        )
    if n_pre < 1 or n_post < 1:
        raise EstimationError(
            f"honest_did needs at least one pre and one post period (found {n_pre}, {n_post})."
        )
    lv = np.zeros(n_post) if l_vec is None else np.asarray(l_vec, dtype=np.float64).reshape(-1)
    if l_vec is None:
        lv[0] = 1.0
    if lv.size != n_post:
        raise EstimationError(f"honest_did: l_vec has {lv.size} entries, expected {n_post}.")
    return b, s, lv


def original_ci(
    betahat: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    n_pre: int,
    n_post: int,
    *,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
) -> HonestInterval:
    """Conventional interval for ``l' beta_post`` assuming exact parallel trends."""
    b, s, lv = _check_inputs(betahat, sigma, n_pre, n_post, l_vec)
    est = float(lv @ b[n_pre:])
    se = math.sqrt(float(lv @ s[n_pre:, n_pre:] @ lv))
    z = float(norm_ppf(1 - alpha / 2))
    return HonestInterval("none", math.nan, est - z * se, est + z * se, "original")


# ----------------------------------------------------------------------------- FLCI (SD)
def _folded_normal_quantile(bias: float, alpha: float) -> float:
    """``1 - alpha`` quantile of ``|N(bias, 1)|``."""
    b = abs(bias)
    z = float(norm_ppf(1 - alpha / 2))
    if b == 0:
        return z
    lo, hi = max(b + norm_ppf(1 - alpha) - 1e-9, 0.0), b + z + 1.0

    def f(c: float) -> float:
        return float(norm_cdf(c - b) - norm_cdf(-c - b) - (1 - alpha))

    return float(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-14))


@dataclass(frozen=True)
class _FlciParts:
    center: float
    half_length: float
    weights: np.ndarray  # full vector (pre weights then l)


def flci_sd(
    betahat: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    n_pre: int,
    n_post: int,
    m: float,
    *,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
) -> HonestInterval:
    """Optimal fixed-length confidence interval for ``l' beta_post`` under ``Delta^SD(M)``.

    Parameters
    ----------
    betahat, sigma : array_like
        Event-study coefficients (pre then post, reference omitted) and covariance.
    n_pre, n_post : int
        Number of pre- and post-period coefficients.
    m : float
        Smoothness bound ``M >= 0`` (same units as the outcome per period squared).
    l_vec : array_like, optional
        Weights on the post-period coefficients; default the first post period.
    alpha : float, default 0.05

    Returns
    -------
    HonestInterval
    """
    b, s, lv = _check_inputs(betahat, sigma, n_pre, n_post, l_vec)
    parts = _flci(b, s, n_pre, n_post, float(m), lv, alpha)
    return HonestInterval(
        "SD", float(m), parts.center - parts.half_length, parts.center + parts.half_length, "FLCI"
    )


def _flci(
    b: np.ndarray, s: np.ndarray, n_pre: int, n_post: int, m: float, lv: np.ndarray, alpha: float
) -> _FlciParts:
    if m < 0:
        raise EstimationError(f"honest_did: M must be >= 0, found {m}.")
    k = n_pre
    t_post = np.arange(1, n_post + 1, dtype=np.float64)
    total = float(t_post @ lv)  # sum of w must equal sum_t t * l_t
    # Bias constant from the post-period part (zero for l = e1).
    const = sum(abs(float(np.arange(1, r + 1) @ lv[n_post - r :])) for r in range(1, n_post + 1))
    const -= total
    # Pre weights l_pre = D w (first differences of w, w_0 = 0); w = cumulative "u" variables.
    # Free variables: c_1..c_{k-1} = cumsum(w) (c_k = total), split c = p - n with p, n >= 0.
    s_pre, s_pp = s[:k, :k], s[:k, k:]
    var_post = float(lv @ s[k:, k:] @ lv)
    cov_pp = s_pp @ lv

    def lpre_from_c(c: np.ndarray) -> np.ndarray:
        cs = np.concatenate([c, [total]])
        w = np.diff(np.concatenate([[0.0], cs]))
        # l_pre[0] = w[0], l_pre[i] = w[i] - w[i-1]
        return np.diff(np.concatenate([[0.0], w]))

    def var_of(lpre: np.ndarray) -> float:
        return float(lpre @ s_pre @ lpre + 2 * lpre @ cov_pp + var_post)

    c = np.zeros(0) if k == 1 else _flci_weights(s_pre, cov_pp, var_post, k, total, m, const, alpha)
    lpre = lpre_from_c(c)
    sd = math.sqrt(var_of(lpre))
    bias = m * (float(np.sum(np.abs(c))) + abs(total) + const)
    half = sd * _folded_normal_quantile(bias / sd, alpha)
    weights = np.concatenate([lpre, lv])
    return _FlciParts(center=float(weights @ b), half_length=half, weights=weights)


def _flci_weights(
    s_pre: np.ndarray,
    cov_pp: np.ndarray,
    var_post: float,
    k: int,
    total: float,
    m: float,
    const: float,
    alpha: float,
) -> np.ndarray:
    """Cumulative pre-period weights ``c_1..c_{k-1}`` of the optimal FLCI.

    As in Rambachan & Roth's construction: for a standard deviation cap ``h`` the worst-case
    bias ``sum |c_i|`` is minimised subject to ``sd(c) <= h`` (a convex programme, solved with
    the split ``c = p - n``, ``p, n >= 0``); the half-length ``h * cv_alpha(M bias(h) / h)`` is
    then minimised over ``h`` between the minimum-variance and the minimum-bias estimators.
    """
    dmat = _lpre_matrix(k)  # l_pre = dmat @ [c_1..c_{k-1}, total]
    a_c, a_t = dmat[:, : k - 1], dmat[:, k - 1]
    q = a_c.T @ s_pre @ a_c  # var(c) = c'Qc + 2 c'r + v0
    r = a_c.T @ (s_pre @ a_t * total + cov_pp)
    v0 = float(total**2 * a_t @ s_pre @ a_t + 2 * total * a_t @ cov_pp + var_post)
    c_minvar = np.linalg.solve(q, -r)
    h_min = math.sqrt(max(float(c_minvar @ q @ c_minvar + 2 * c_minvar @ r + v0), 0.0))
    h_zero = math.sqrt(v0)  # c = 0: the minimum-bias estimator
    if m == 0 or h_zero <= h_min * (1 + 1e-12):
        return c_minvar if m == 0 else np.zeros(k - 1)
    n = k - 1

    def var_c(c: np.ndarray) -> float:
        return float(c @ q @ c + 2 * c @ r + v0)

    def min_bias(h: float) -> np.ndarray:
        def split(x: np.ndarray) -> np.ndarray:
            out_: np.ndarray = x[:n] - x[n:]
            return out_

        cons = {
            "type": "ineq",
            "fun": lambda x: (h * h - var_c(split(x))) / (h * h),
            "jac": lambda x: _split_grad(q, r, split(x), h),
        }
        # start: shrink the minimum-variance weights toward zero until feasible
        lam = 1.0
        c0 = c_minvar.copy()
        for _ in range(60):
            cand = lam * c_minvar
            if var_c(cand) <= h * h:
                c0 = cand
                lam *= 0.5
            else:
                break
        x0 = np.concatenate([np.maximum(c0, 0), np.maximum(-c0, 0)])
        res = optimize.minimize(
            lambda x: float(np.sum(x)), x0, jac=lambda x: np.ones_like(x), method="SLSQP",
            bounds=[(0.0, None)] * (2 * n), constraints=[cons],
            options={"ftol": 1e-14, "maxiter": 1000},
        )  # fmt: skip
        return split(np.maximum(res.x, 0.0))

    def half(h: float) -> float:
        c = min_bias(h)
        sd = math.sqrt(max(var_c(c), 1e-300))
        bias = m * (float(np.sum(np.abs(c))) + abs(total) + const)
        return sd * _folded_normal_quantile(bias / sd, alpha)

    res = optimize.minimize_scalar(
        half, bounds=(h_min, h_zero), method="bounded", options={"xatol": 1e-10 * h_zero}
    )
    h_best = float(res.x)
    best = min((h_min, h_zero, h_best), key=half)
    return min_bias(best)


def _split_grad(q: np.ndarray, r: np.ndarray, c: np.ndarray, h: float) -> np.ndarray:
    g = -(2 * q @ c + 2 * r) / (h * h)
    return np.concatenate([g, -g])


def _lpre_matrix(k: int) -> np.ndarray:
    """Matrix mapping ``[c_1..c_k]`` (cumulative sums of w) to pre-period weights."""
    eye = np.eye(k)
    w = np.diff(np.vstack([np.zeros((1, k)), eye]), axis=0)  # w = diff(c)
    return np.diff(np.vstack([np.zeros((1, k)), w]), axis=0)  # l_pre = diff(w)


def sensitivity_sd(
    betahat: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    n_pre: int,
    n_post: int,
    m_values: Sequence[float],
    *,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
) -> tuple[HonestInterval, ...]:
    """FLCI under ``Delta^SD(M)`` for each ``M`` in ``m_values``."""
    return tuple(
        flci_sd(betahat, sigma, n_pre, n_post, m, l_vec=l_vec, alpha=alpha) for m in m_values
    )


# ----------------------------------------------------------------------------- RM (C-LF)
def _a_rm(n_pre: int, n_post: int, mbar: float, s: int, max_positive: bool) -> np.ndarray:
    """Constraint matrix ``A delta <= 0`` of ``Delta^RM`` for one (s, sign) piece."""
    t = n_pre + n_post
    atilde = np.zeros((t, t + 1))
    idx = np.arange(t)
    atilde[idx, idx] = -1.0
    atilde[idx, idx + 1] = 1.0
    v = np.zeros(t + 1)
    v[n_pre + s - 1] = -1.0
    v[n_pre + s] = 1.0
    if not max_positive:
        v = -v
    a_ub = np.vstack([np.tile(v, (n_pre, 1)), np.tile(mbar * v, (n_post, 1))])
    a = np.vstack([atilde - a_ub, -atilde - a_ub])
    a = a[np.einsum("ij,ij->i", a, a) > 1e-10]
    return np.delete(a, n_pre, axis=1)


@functools.lru_cache(maxsize=16)
def _rays_of(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """:func:`_dual_rays` of the ``x`` whose bytes are ``data``, enumerated once per process:
    the sensitivity intervals and the breakdown value's bisection share them (read-only)."""
    rays = _dual_rays(np.frombuffer(data, dtype=np.float64).reshape(shape))
    rays.setflags(write=False)
    return rays


def _dual_rays(x: np.ndarray) -> np.ndarray:
    """Extreme rays of the cone ``{g >= 0 : x' g = 0}`` (rows, each summing to one).

    The dual of the ARP linear programme is ``max g'y`` over ``{g >= 0 : sd'g = 1, x'g = 0}``;
    its vertices are these rays scaled to ``sd'g = 1``. The rays do not depend on ``sd`` (nor on
    ``Mbar`` or the piece of ``Delta^RM``), so they are enumerated once per sensitivity
    analysis: every support of ``k + 1`` rows whose ``x`` block has rank ``k`` gives a
    one-dimensional null space, kept when it has one sign.
    """
    m, k = x.shape
    if k == 0:
        return np.eye(m)
    p = k + 1
    n_subsets = math.comb(m, p)
    if n_subsets > 500_000:
        raise EstimationError(
            f"honest_did: the relative-magnitudes test has {m} moments and {k} nuisance "
            "parameters, too many to enumerate; use fewer post periods (an event-study window)."
        )
    subsets = np.array(list(itertools.combinations(range(m), p)), dtype=np.int64)
    blocks = np.transpose(x[subsets], (0, 2, 1))  # (S, k, p): x_B'
    _, sv, vt = np.linalg.svd(blocks)
    scale = max(float(np.max(np.abs(x))), 1e-300)
    full_rank = sv[:, -1] > 1e-10 * scale
    r = vt[full_rank, -1, :]  # null vector of each x_B'
    sub = subsets[full_rank]
    tol = 1e-10 * np.max(np.abs(r), axis=1, keepdims=True)
    pos = np.all(r >= -tol, axis=1)
    neg = np.all(r <= tol, axis=1)
    keep = pos | neg
    r = np.where(neg[:, None], -r, r)[keep]
    r = np.maximum(r, 0.0)
    r /= r.sum(axis=1, keepdims=True)
    rays = np.zeros((r.shape[0], m))
    rows = np.repeat(np.arange(r.shape[0]), p)
    rays[rows, sub[keep].reshape(-1)] = r.reshape(-1)
    if rays.shape[0] == 0:
        return rays
    return np.unique(np.round(rays, 12), axis=0)


def _arp_accept_grid(
    y0: np.ndarray,
    a1: np.ndarray,
    x: np.ndarray,
    sig: np.ndarray,
    grid: np.ndarray,
    alpha: float,
    kappa: float,
    rng: np.random.Generator,
    sims: int,
    rays: np.ndarray,
) -> np.ndarray:
    """Conditional-LF hybrid test of ``E[y0 - a1 theta] - x tau <= 0`` on a grid of theta."""
    sd = np.sqrt(np.diag(sig))
    verts = rays / (rays @ sd)[:, None]
    if verts.shape[0] == 0:  # eta unbounded below: the moments can always be satisfied
        return np.ones(grid.size, dtype=bool)
    # Least-favourable critical value: 1 - kappa quantile of eta(xi), xi ~ N(0, sig).
    chol = np.linalg.cholesky(sig + 1e-14 * np.eye(sig.shape[0]) * np.max(np.diag(sig)))
    # einsum, not BLAS: these products are small and BLAS threading costs more than it saves
    xi = np.einsum("ij,kj->ik", rng.standard_normal((sims, sig.shape[0])), chol)
    lf_cv = float(np.quantile(np.max(np.einsum("ij,kj->ik", xi, verts), axis=1), 1 - kappa))
    mod_size = (alpha - kappa) / (1 - kappa)
    y = y0[None, :] - grid[:, None] * a1[None, :]  # (n_grid, m)
    vals = np.einsum("ij,kj->ik", y, verts)
    best = np.argmax(vals, axis=1)
    eta = vals[np.arange(grid.size), best]
    accept = eta <= lf_cv
    todo = np.flatnonzero(accept)
    # the conditional tests of all vertices share one truncated-normal quantile call
    tested: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for vi in np.unique(best[todo]):  # one pass per distinct optimal vertex (a handful)
        rows = todo[best[todo] == vi]
        g = verts[vi]
        s2 = float(g @ sig @ g)
        if s2 < np.finfo(float).eps:
            accept[rows] = eta[rows] <= 0
            continue
        sb = math.sqrt(s2)
        bvec = sig @ g / s2
        yr = y[rows]
        c_obs = yr @ g  # = eta
        s_t = yr - c_obs[:, None] * bvec[None, :]
        num = -np.einsum("ij,kj->ik", s_t, verts)  # (r, V): need s'v + c (b'v - 1) <= 0
        den = verts @ bvec - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = num / den[None, :]
        pos, neg = den > 1e-12, den < -1e-12
        vup = np.min(bound[:, pos], axis=1) if pos.any() else np.full(rows.size, np.inf)
        vlo = np.max(bound[:, neg], axis=1) if neg.any() else np.full(rows.size, -np.inf)
        zlo = vlo / sb
        zup = np.minimum(vup, lf_cv) / sb
        tested.append((rows, zlo, zup, c_obs / sb))
    if tested:
        rows, zlo, zup, stat = (np.concatenate(part) for part in zip(*tested, strict=True))
        inside = (zlo <= stat) & (stat <= zup)
        cval = np.maximum(0.0, _truncnorm_quantile(1 - mod_size, zlo, zup))
        accept[rows] = ~inside | (stat <= cval)
    out_: np.ndarray = accept
    return out_


def _truncnorm_quantile(p: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    out = np.full(lo.shape, np.nan)
    ok = hi > lo
    out[ok] = truncnorm_ppf(p, lo[ok], hi[ok])
    out[~ok] = lo[~ok]
    return out


def _rm_interval(
    b: np.ndarray,
    s: np.ndarray,
    n_pre: int,
    n_post: int,
    mbar: float,
    lv: np.ndarray,
    alpha: float,
    grid: np.ndarray,
    seed: int,
    sims: int,
) -> np.ndarray:
    """Accepted grid points for ``Delta^RM(Mbar)`` (union over the pieces of the restriction)."""
    if mbar < 0:
        raise EstimationError(f"honest_did: Mbar must be >= 0, found {mbar}.")
    gamma = _construct_gamma(lv)
    gamma_inv = np.linalg.inv(gamma)
    kappa = alpha / 10
    pieces = []
    for s_idx in range(-(n_pre - 1), 1):
        for max_positive in (True, False):
            a = _a_rm(n_pre, n_post, mbar, s_idx, max_positive)
            post_rows = np.flatnonzero(np.any(a[:, n_pre:] != 0, axis=1))
            a = a[post_rows]
            agi = a[:, n_pre:] @ gamma_inv
            x = np.ascontiguousarray(agi[:, 1:])
            rays = _rays_of(x.tobytes(), (int(x.shape[0]), int(x.shape[1])))
            pieces.append((a @ b, agi[:, 0], x, a @ s @ a.T, rays))

    def test(piece: tuple[np.ndarray, ...]) -> np.ndarray:
        y0, a1, x, sig, rays = piece
        rng = np.random.default_rng(seed)  # each piece its own draws, as when run in turn
        return _arp_accept_grid(y0, a1, x, sig, grid, alpha, kappa, rng, sims, rays)

    # the pieces are independent (their union is the accepted set): two threads share them, as
    # numpy, scipy's special functions and LAPACK release the GIL
    with ThreadPoolExecutor(min(os.cpu_count() or 1, 2)) as pool:
        accepted = list(pool.map(test, pieces))
    out: np.ndarray = np.logical_or.reduce(accepted) if accepted else np.zeros(grid.size, bool)
    return out


def _construct_gamma(lv: np.ndarray) -> np.ndarray:
    """Invertible matrix whose first row is ``l'`` (completed with unit vectors)."""
    n = lv.size
    rows = [lv]
    for i in range(n):
        cand = np.vstack([*rows, np.eye(n)[i]])
        if np.linalg.matrix_rank(cand) == cand.shape[0]:
            rows.append(np.eye(n)[i])
        if len(rows) == n:
            break
    return np.vstack(rows)


def sensitivity_rm(
    betahat: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    n_pre: int,
    n_post: int,
    mbar_values: Sequence[float],
    *,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    grid: tuple[float, float, int] | None = None,
    seed: int = 0,
    sims: int = 5_000,
) -> tuple[HonestInterval, ...]:
    """Conditional-LF hybrid intervals under ``Delta^RM(Mbar)`` for each ``Mbar``.

    Parameters
    ----------
    betahat, sigma, n_pre, n_post, l_vec, alpha
        As in :func:`flci_sd`.
    mbar_values : sequence of float
        Relative-magnitude bounds ``Mbar >= 0``.
    grid : (lower, upper, points), optional
        Grid of ``theta`` searched. Default: HonestDiD's ``+-20`` standard errors of ``theta``
        around zero with 1,000 points, widened (by doubling, up to 6 times) when the accepted
        set touches an edge, so the reported interval is never cut by the grid.
    seed : int, default 0
        Seed of the simulation of the least-favourable critical value.
    sims : int, default 5,000
        Draws for the least-favourable critical value (as HonestDiD).

    Returns
    -------
    tuple of HonestInterval
    """
    b, s, lv = _check_inputs(betahat, sigma, n_pre, n_post, l_vec)
    return _sensitivity_rm(b, s, n_pre, n_post, mbar_values, lv, alpha, grid, seed, sims)


def _sensitivity_rm(
    b: np.ndarray,
    s: np.ndarray,
    n_pre: int,
    n_post: int,
    mbar_values: Sequence[float],
    lv: np.ndarray,
    alpha: float,
    grid: tuple[float, float, int] | None,
    seed: int,
    sims: int,
) -> tuple[HonestInterval, ...]:
    sd_theta = math.sqrt(float(lv @ s[n_pre:, n_pre:] @ lv))
    out = []
    for mbar in mbar_values:
        lo_g, hi_g, npts = grid if grid is not None else (-20 * sd_theta, 20 * sd_theta, 1000)
        for attempt in range(7):
            pts = np.linspace(lo_g, hi_g, int(npts))
            acc = _rm_interval(b, s, n_pre, n_post, float(mbar), lv, alpha, pts, seed, sims)
            open_end = bool(acc.size and (acc[0] or acc[-1]))
            if grid is not None or not open_end or attempt == 6:
                break
            width = hi_g - lo_g
            lo_g, hi_g = (lo_g - width if acc[0] else lo_g), (hi_g + width if acc[-1] else hi_g)
            npts = int(npts) * 2
        if not acc.any():
            out.append(HonestInterval("RM", float(mbar), math.nan, math.nan, "C-LF", open_end))
            continue
        out.append(
            HonestInterval(
                "RM", float(mbar), float(pts[acc].min()), float(pts[acc].max()), "C-LF", open_end
            )
        )
    return tuple(out)


def breakdown_value(
    betahat: Sequence[float] | np.ndarray,
    sigma: Sequence[Sequence[float]] | np.ndarray,
    n_pre: int,
    n_post: int,
    restriction: str = "RM",
    *,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    upper: float | None = None,
    lower: float = 0.0,
    tol: float | None = None,
) -> float:
    """Smallest ``Mbar`` (RM) or ``M`` (SD) whose robust interval contains zero.

    Returns ``0.0`` when even the original interval contains zero and ``inf`` when no bound up
    to ``upper`` (default: 10 for RM, 20 pre-period standard errors for SD) overturns the
    finding (``lower`` is a bound known not to overturn it). Found by bisection to ``tol``
    (default 0.01 for RM, 1e-4 standard errors for SD); the intervals widen with the bound, so
    the set of bounds that include zero is an interval.
    """
    b, s, lv = _check_inputs(betahat, sigma, n_pre, n_post, l_vec)
    if original_ci(b, s, n_pre, n_post, l_vec=lv, alpha=alpha).contains(0.0):
        return 0.0
    if restriction == "RM":
        hi = 10.0 if upper is None else upper
        step = 0.01 if tol is None else tol

        def covers(x: float) -> bool:
            iv = _sensitivity_rm(b, s, n_pre, n_post, [x], lv, alpha, None, 0, 5_000)
            return iv[0].contains(0.0)

    elif restriction == "SD":
        sd_pre = math.sqrt(float(np.mean(np.diag(s[:n_pre, :n_pre]))))
        hi = 20 * sd_pre if upper is None else upper
        step = 1e-4 * sd_pre if tol is None else tol

        def covers(x: float) -> bool:
            return flci_sd(b, s, n_pre, n_post, x, l_vec=lv, alpha=alpha).contains(0.0)

    else:
        raise EstimationError(
            f"honest_did: restriction '{restriction}' is not known; allowed: RM, SD."
        )
    if not covers(hi):
        return math.inf
    lo = lower
    while hi - lo > step:
        mid = 0.5 * (lo + hi)
        if covers(mid):
            hi = mid
        else:
            lo = mid
    return hi
