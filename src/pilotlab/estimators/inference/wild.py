"""Wild cluster restricted bootstrap (WCR) with test-inversion confidence intervals.

The method is the one of Stata's ``boottest`` (Roodman, MacKinnon, Nielsen & Webb 2019, "Fast and
wild: bootstrap inference in Stata using boottest", *Stata Journal* 19(1)): the null
``beta_j = beta0`` is imposed on the bootstrap data-generating process, residuals are multiplied
by one random weight per cluster, and the bootstrap distribution of the CR1 t statistic gives a
symmetric two-sided p-value. The confidence interval is the set of ``beta0`` that the test does
not reject, found by root-finding on the p-value function.

Speed. After the fit nothing here touches the rows again. Every bootstrap quantity is linear in
the cluster weights ``v`` (a ``G x B`` matrix) and affine in ``beta0``:

* the bootstrap numerator is ``beta*_b - beta0 = (a0 - beta0 a1)' v_b``;
* the bootstrap CR1 variance is ``c (d0_b - 2 beta0 d1_b + beta0^2 d2_b)``,

where ``a0, a1`` are cluster scores of the restricted residuals and ``d0, d1, d2`` come from one
product of a small ``4k x G`` matrix with ``v`` (plus one with ``v**2`` unless the weights are
Rademacher). Draws are generated and consumed in column chunks, so memory stays bounded, and the
p-value at any ``beta0`` then costs ``O(B)``: inverting the test is essentially free.

The draws are an object (:class:`BootstrapDraws`) that regenerates the same ``G x B`` matrix
from a stored seed, so several outcomes (Romano-Wolf) can share one draw matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from scipy import sparse

from pilotlab.exceptions import EstimationError

__all__ = [
    "BootstrapDraws",
    "LinearFitLike",
    "WildBootstrapResult",
    "WildBootstrapState",
    "combination_fit",
    "make_draws",
    "prepare_wild_bootstrap",
    "wild_bootstrap_tstats",
    "wild_cluster_bootstrap",
]

WeightsName = Literal["auto", "rademacher", "webb", "mammen"]

#: Below this many clusters ``weights="auto"`` uses Webb's six-point weights: Rademacher weights
#: take only ``2**G`` distinct values, too few for a usable p-value (Webb 2023, "Reworking wild
#: bootstrap-based inference for clustered errors", Canadian Journal of Economics; Roodman et al.
#: 2019, section 3.2; boottest's advice).
WEBB_BELOW = 12

# chunk x G float64 weights generated at a time (~2 MB): small enough to stay in cache
# between generation and the product, which is several times faster than large blocks
_CHUNK_ELEMENTS = 250_000


class LinearFitLike(Protocol):
    """What the bootstrap needs from a linear fit (``pilotlab.estimators.linear.LinearFit``).

    ``X`` and ``y`` are after absorbing the fixed effects and multiplying by ``sqrt(weight)``;
    ``resid = y - X @ beta``; ``cluster`` holds integer codes ``0..G-1``.
    """

    @property
    def X(self) -> np.ndarray: ...
    @property
    def y(self) -> np.ndarray: ...
    @property
    def beta(self) -> np.ndarray: ...
    @property
    def resid(self) -> np.ndarray: ...
    @property
    def cluster(self) -> np.ndarray: ...
    @property
    def names(self) -> tuple[str, ...]: ...
    @property
    def df_absorbed(self) -> int: ...
    @property
    def xtx_inv(self) -> np.ndarray: ...


# ----------------------------------------------------------------------------------- draws
@dataclass(frozen=True)
class BootstrapDraws:
    """A reproducible ``n_clusters x replications`` matrix of wild-bootstrap cluster weights.

    The matrix is never held whole: :meth:`chunks` regenerates it column block by column block
    from ``seed``, identically on every call, so the same draws can be reused for several
    outcomes or coefficients (as Romano-Wolf requires). With Rademacher weights and
    ``2**n_clusters <= replications`` every sign vector is enumerated once instead (``enumerated``
    is then true and ``replications == 2**n_clusters``), which makes the p-value exact.

    Attributes
    ----------
    n_clusters : int
        Number of clusters ``G`` (rows).
    replications : int
        Number of bootstrap draws ``B`` (columns).
    weights : {"rademacher", "webb", "mammen"}
        Distribution of the weights (already resolved from ``"auto"``).
    seed : int
        Seed of the generator that produces the matrix.
    enumerated : bool
        Whether the columns are the full enumeration of Rademacher sign vectors.
    """

    n_clusters: int
    replications: int
    weights: Literal["rademacher", "webb", "mammen"]
    seed: int
    enumerated: bool = False

    def chunk_size(self) -> int:
        """Number of draws per chunk (keeps a chunk near 2 MB)."""
        return max(1, min(self.replications, _CHUNK_ELEMENTS // max(self.n_clusters, 1)))

    def chunks(self) -> Iterator[np.ndarray]:
        """Yield the weights as ``(c, G)`` float64 blocks of draws (draw-major), always the same.

        Draw-major blocks make the products with cluster scores tall-skinny BLAS calls, which
        is several times faster than the ``(G, c)`` orientation.
        """
        g, b = self.n_clusters, self.replications
        size = self.chunk_size()
        if self.enumerated:
            powers = (1 << np.arange(g, dtype=np.int64))[None, :]
            for start in range(0, b, size):
                rows = np.arange(start, min(start + size, b), dtype=np.int64)[:, None]
                yield np.where((rows & powers) != 0, -1.0, 1.0)
            return
        rng = np.random.default_rng(self.seed)
        for start in range(0, b, size):
            c = min(size, b - start)
            yield _draw(rng, self.weights, g, c)

    def matrix(self) -> np.ndarray:
        """The whole ``(G, B)`` matrix (for tests and small designs)."""
        return np.concatenate(list(self.chunks()), axis=0).T


_WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])
_SQ5 = math.sqrt(5.0)
_MAMMEN_LOW, _MAMMEN_HIGH = (1 - _SQ5) / 2, (1 + _SQ5) / 2
_MAMMEN_P_LOW = (_SQ5 + 1) / (2 * _SQ5)


def _draw(rng: np.random.Generator, kind: str, g: int, c: int) -> np.ndarray:
    if kind == "rademacher":
        packed = rng.integers(0, 256, size=(c, (g + 7) // 8), dtype=np.uint8)
        bits = np.unpackbits(packed, axis=1, count=g)
        out = bits.astype(np.float64)
        out *= 2.0
        out -= 1.0
        return out
    if kind == "webb":
        return _WEBB[rng.integers(0, 6, size=(c, g), dtype=np.int8)]
    low = rng.random((c, g)) < _MAMMEN_P_LOW
    return np.where(low, _MAMMEN_LOW, _MAMMEN_HIGH)


def make_draws(
    n_clusters: int,
    replications: int,
    weights: WeightsName,
    rng: np.random.Generator,
    *,
    enumerate_small: bool = True,
) -> BootstrapDraws:
    """Create the cluster weights shared by one or several wild bootstraps.

    Parameters
    ----------
    n_clusters : int
        Number of clusters ``G``.
    replications : int
        Number of draws ``B`` (at least 99).
    weights : {"auto", "rademacher", "webb", "mammen"}
        ``"auto"`` is Webb's six-point distribution below :data:`WEBB_BELOW` clusters and
        Rademacher otherwise.
    rng : numpy.random.Generator
        Source of the seed; one integer is drawn from it.
    enumerate_small : bool, default True
        With Rademacher weights and ``2**G <= replications``, enumerate all sign vectors.

    Returns
    -------
    BootstrapDraws
    """
    if replications < 99:
        raise EstimationError(
            f"design.inference.replications is {replications}; the wild bootstrap needs at least "
            "99 replications (999 or 9,999 recommended). Raise design.inference.replications."
        )
    if n_clusters < 2:
        raise EstimationError(
            f"the wild cluster bootstrap needs at least 2 clusters, found {n_clusters}; "
            "cluster at a finer level or use design.inference.method: permutation."
        )
    if weights not in ("auto", "rademacher", "webb", "mammen"):
        raise EstimationError(
            f"bootstrap weights '{weights}' are not known; allowed: auto, rademacher, webb, mammen."
        )
    kind: Literal["rademacher", "webb", "mammen"]
    kind = ("webb" if n_clusters < WEBB_BELOW else "rademacher") if weights == "auto" else weights
    seed = int(rng.integers(0, 2**63 - 1))
    if (
        kind == "rademacher"
        and enumerate_small
        and n_clusters < 63
        and 2**n_clusters <= replications
    ):
        return BootstrapDraws(n_clusters, 2**n_clusters, kind, seed, enumerated=True)
    return BootstrapDraws(n_clusters, replications, kind, seed)


# ----------------------------------------------------------------------------------- core
@dataclass(frozen=True)
class WildBootstrapState:
    """Per-draw coefficients of the bootstrap t statistic as a function of the null ``beta0``.

    For draw ``b``: ``t*_b(beta0) = (n0_b - beta0 n1_b) / sqrt(c (d0_b - 2 beta0 d1_b +
    beta0**2 d2_b))`` and the observed statistic is ``(estimate - beta0) / std_error``.
    """

    estimate: float
    std_error: float
    n0: np.ndarray
    n1: np.ndarray
    d0: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    scale: float  # the CR1 factor c
    draws: BootstrapDraws

    def t_star(self, beta0: float) -> np.ndarray:
        """Bootstrap t statistics under the null ``beta_j = beta0``."""
        num = self.n0 - beta0 * self.n1
        den = self.d0 - 2 * beta0 * self.d1 + beta0 * beta0 * self.d2
        with np.errstate(divide="ignore", invalid="ignore"):
            return num / np.sqrt(self.scale * np.maximum(den, 0.0))

    def t_obs(self, beta0: float) -> float:
        """The observed CR1 t statistic for the null ``beta_j = beta0``."""
        return (self.estimate - beta0) / self.std_error

    def p_value(self, beta0: float) -> float:
        """Symmetric two-sided bootstrap p-value ``mean(|t*| > |t|)`` at ``beta0``."""
        num = self.n0 - beta0 * self.n1
        den = np.maximum(self.d0 - 2 * beta0 * self.d1 + beta0 * beta0 * self.d2, 0.0)
        t2 = self.t_obs(beta0) ** 2
        return float(np.mean(num * num > t2 * self.scale * den))

    def confidence_interval(self, alpha: float) -> tuple[float, float]:
        """Bounds of ``{beta0 : p(beta0) > alpha}`` found outward from the estimate.

        Each side expands from the estimate by doubling steps until the test rejects, then
        bisects to the crossing (to ~1e-10 of the standard error). A side on which the test
        never rejects (possible with very few clusters) is infinite.
        """
        step = max(self.std_error, 1e-12) * 2.0
        return (self._bound(-1.0, step, alpha), self._bound(1.0, step, alpha))

    def _bound(self, sign: float, step: float, alpha: float) -> float:
        inside = self.estimate
        outside = math.nan
        h = step
        for _ in range(60):
            cand = self.estimate + sign * h
            if self.p_value(cand) <= alpha:
                outside = cand
                break
            inside = cand
            h *= 2.0
        if math.isnan(outside):
            return sign * math.inf
        tol = 1e-10 * max(self.std_error, 1e-300)
        for _ in range(200):
            if abs(outside - inside) <= tol:
                break
            mid = 0.5 * (inside + outside)
            if self.p_value(mid) <= alpha:
                outside = mid
            else:
                inside = mid
        return 0.5 * (inside + outside)


def _coef_index(fit: LinearFitLike, coef: str | int) -> int:
    names = tuple(fit.names)
    if isinstance(coef, str):
        if coef not in names:
            raise EstimationError(
                f"coefficient '{coef}' is not in the model; coefficients: {', '.join(names)}."
            )
        return names.index(coef)
    if not 0 <= coef < len(names):
        raise EstimationError(f"coefficient index {coef} is out of range 0..{len(names) - 1}.")
    return int(coef)


def prepare_wild_bootstrap(
    fit: LinearFitLike, coef: str | int, draws: BootstrapDraws
) -> WildBootstrapState:
    """Run the bootstrap draws for one coefficient and keep what the p-value function needs.

    Parameters
    ----------
    fit : LinearFit
        The fitted linear model (fixed effects already absorbed).
    coef : str or int
        Name or position of the tested coefficient.
    draws : BootstrapDraws
        Cluster weights (from :func:`make_draws`); ``draws.n_clusters`` must equal the number of
        clusters of ``fit``.

    Returns
    -------
    WildBootstrapState
    """
    j = _coef_index(fit, coef)
    X = np.asarray(fit.X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    y = np.asarray(fit.y, dtype=np.float64)
    cl = np.asarray(fit.cluster, dtype=np.int64)
    n, k = X.shape
    g = int(cl.max()) + 1
    if draws.n_clusters != g:
        raise EstimationError(
            f"the bootstrap draws have {draws.n_clusters} clusters but the model has {g}; "
            "create the draws with make_draws(n_clusters=<clusters of this fit>, ...)."
        )
    # Restricted residuals: u_r(beta0) = u0 - beta0 * rx (regress on the other regressors).
    others = [i for i in range(k) if i != j]
    xj = X[:, j]
    if others:
        xo = X[:, others]
        gram = xo.T @ xo
        coefs = np.linalg.solve(gram, xo.T @ np.column_stack([y, xj]))
        u0 = y - xo @ coefs[:, 0]
        rx = xj - xo @ coefs[:, 1]
    else:
        u0, rx = y, xj
    xtx_inv = np.asarray(fit.xtx_inv, dtype=np.float64).reshape(k, k)
    z = xtx_inv[j]
    xz = X @ z
    resid = np.asarray(fit.resid, dtype=np.float64)
    # One sparse product aggregates every row-level score to clusters.
    agg = sparse.csr_matrix((np.ones(n), (cl, np.arange(n))), shape=(g, n))
    rows = np.concatenate(
        [X * u0[:, None], X * rx[:, None], X * xz[:, None], X * resid[:, None]], axis=1
    )
    cs = np.asarray(agg @ rows)
    s0, s1, q, se_scores = cs[:, :k], cs[:, k : 2 * k], cs[:, 2 * k : 3 * k], cs[:, 3 * k :]
    a0 = s0 @ z
    a1 = s1 @ z
    h = q.T @ q
    dof = n - k - int(fit.df_absorbed)
    if dof <= 0:
        raise EstimationError(
            f"the model has {n} observations and {k + int(fit.df_absorbed)} parameters; "
            "no degrees of freedom remain for a t statistic."
        )
    meat = float(np.sum((se_scores @ z) ** 2))
    scale = g / (g - 1) * (n - 1) / dof
    vcov = getattr(fit, "vcov", None)
    if vcov is not None and getattr(fit, "vcov_type", "") == "cluster" and meat > 0:
        # use the fit's own CR1 factor (fixest's count of nested fixed effects) so the reported
        # statistic matches its standard error; p-values do not depend on the factor
        scale = float(np.asarray(vcov)[j, j]) / meat
    std_error = math.sqrt(scale * meat)
    if not std_error > 0:
        raise EstimationError(
            f"the cluster-robust standard error of '{fit.names[j]}' is zero; the coefficient is "
            "not identified from variation across clusters."
        )
    # Rows multiplying v: S0 (k), S1 (k), (Q*a0) (k), (Q*a1) (k); rows multiplying v**2.
    lin = np.ascontiguousarray(np.concatenate([s0, s1, q * a0[:, None], q * a1[:, None]], axis=1))
    sq = np.ascontiguousarray(np.stack([a0 * a0, a0 * a1, a1 * a1], axis=1))
    sq_sum = sq.sum(axis=0)  # Rademacher: v**2 = 1
    b = draws.replications
    n0 = np.empty(b)
    n1 = np.empty(b)
    d0 = np.empty(b)
    d1 = np.empty(b)
    d2 = np.empty(b)
    start = 0
    for v in draws.chunks():
        c = v.shape[0]
        prod = (v @ lin).T  # (4k, c)
        s0v, s1v = prod[:k], prod[k : 2 * k]
        p0, p1 = prod[2 * k : 3 * k], prod[3 * k :]
        if draws.weights == "rademacher":
            e = np.broadcast_to(sq_sum[:, None], (3, c))
        else:
            e = ((v * v) @ sq).T
        m0 = xtx_inv @ s0v
        m1 = xtx_inv @ s1v
        hm0 = h @ m0
        hm1 = h @ m1
        sl = slice(start, start + c)
        n0[sl] = z @ s0v
        n1[sl] = z @ s1v
        d0[sl] = e[0] - 2 * np.einsum("ib,ib->b", m0, p0) + np.einsum("ib,ib->b", m0, hm0)
        d1[sl] = (
            e[1]
            - np.einsum("ib,ib->b", m0, p1)
            - np.einsum("ib,ib->b", m1, p0)
            + np.einsum("ib,ib->b", m0, hm1)
        )
        d2[sl] = e[2] - 2 * np.einsum("ib,ib->b", m1, p1) + np.einsum("ib,ib->b", m1, hm1)
        start += c
    return WildBootstrapState(
        estimate=float(np.asarray(fit.beta, dtype=np.float64).reshape(-1)[j]),
        std_error=std_error,
        n0=n0,
        n1=n1,
        d0=d0,
        d1=d1,
        d2=d2,
        scale=scale,
        draws=draws,
    )


# ----------------------------------------------------------------------------------- public
@dataclass(frozen=True)
class WildBootstrapResult:
    """Outcome of a wild cluster restricted bootstrap for one coefficient.

    Attributes
    ----------
    p_value : float
        Symmetric two-sided bootstrap p-value of ``beta_j = null``.
    ci_lower, ci_upper : float
        Test-inversion confidence interval at level ``1 - alpha`` (may be infinite).
    statistic : float
        Observed CR1 t statistic for the null.
    std_error : float
        CR1 standard error of the coefficient.
    weights_used : str
        ``"rademacher"``, ``"webb"`` or ``"mammen"`` (``" (enumerated)"`` appended for exact
        Rademacher enumeration).
    replications : int
        Number of bootstrap draws actually used.
    """

    p_value: float
    ci_lower: float
    ci_upper: float
    statistic: float
    weights_used: str
    replications: int
    std_error: float = math.nan
    estimate: float = math.nan
    alpha: float = 0.05
    null: float = 0.0

    def sentence(self) -> str:
        """One line for the report."""
        return (
            f"Wild cluster restricted bootstrap ({self.weights_used} weights, "
            f"{self.replications:,} draws): p = {self.p_value:.3f}; "
            f"{100 * (1 - self.alpha):.0f}% interval by test inversion "
            f"[{self.ci_lower:.4g}, {self.ci_upper:.4g}]."
        )


def wild_cluster_bootstrap(
    fit: LinearFitLike,
    coef: str | int,
    *,
    replications: int = 9999,
    weights: WeightsName = "auto",
    alpha: float = 0.05,
    rng: np.random.Generator | None = None,
    draws: BootstrapDraws | None = None,
    null: float = 0.0,
) -> WildBootstrapResult:
    """Wild cluster restricted bootstrap p-value and test-inversion interval for one coefficient.

    Parameters
    ----------
    fit : LinearFit
        Linear fit with fixed effects absorbed (``pilotlab.estimators.linear.LinearFit``).
    coef : str or int
        Name (in ``fit.names``) or position of the coefficient.
    replications : int, default 9999
        Number of bootstrap draws (ignored when ``draws`` is given).
    weights : {"auto", "rademacher", "webb", "mammen"}, default "auto"
        Weight distribution; ``"auto"`` picks Webb below 12 clusters, else Rademacher.
    alpha : float, default 0.05
        The interval has level ``1 - alpha``.
    rng : numpy.random.Generator, optional
        Randomness for the draws; required unless ``draws`` is given.
    draws : BootstrapDraws, optional
        Shared draws from :func:`make_draws` (to reuse one weight matrix across outcomes).
    null : float, default 0.0
        Value of the coefficient under the tested null.

    Returns
    -------
    WildBootstrapResult
    """
    if not 0 < alpha < 1:
        raise EstimationError(f"alpha is {alpha}; it must lie strictly between 0 and 1.")
    if draws is None:
        if rng is None:
            raise EstimationError("wild_cluster_bootstrap needs either rng or draws.")
        g = int(np.asarray(fit.cluster).max()) + 1
        draws = make_draws(g, replications, weights, rng)
    state = prepare_wild_bootstrap(fit, coef, draws)
    lo, hi = state.confidence_interval(alpha)
    used = draws.weights + (" (enumerated)" if draws.enumerated else "")
    return WildBootstrapResult(
        p_value=state.p_value(null),
        ci_lower=lo,
        ci_upper=hi,
        statistic=state.t_obs(null),
        weights_used=used,
        replications=draws.replications,
        std_error=state.std_error,
        estimate=state.estimate,
        alpha=alpha,
        null=null,
    )


def wild_bootstrap_tstats(
    fit: LinearFitLike, coef: str | int, draws: BootstrapDraws, null: float = 0.0
) -> tuple[float, np.ndarray]:
    """Observed and bootstrap t statistics under ``beta_j = null`` (for Romano-Wolf).

    Returns
    -------
    t_obs : float
        Observed CR1 t statistic.
    t_star : numpy.ndarray
        ``(B,)`` bootstrap t statistics from the null-imposed bootstrap (same draws for every
        outcome when the same ``draws`` object is passed).
    """
    state = prepare_wild_bootstrap(fit, coef, draws)
    return state.t_obs(null), state.t_star(null)


@dataclass(frozen=True)
class _Reparametrized:
    """A LinearFit whose coefficient ``coef`` is the linear combination ``c' beta``."""

    X: np.ndarray
    y: np.ndarray
    beta: np.ndarray
    resid: np.ndarray
    cluster: np.ndarray
    names: tuple[str, ...]
    df_absorbed: int
    xtx_inv: np.ndarray


def combination_fit(fit: LinearFitLike, c: np.ndarray, name: str = "combination") -> LinearFitLike:
    """Re-parametrise ``fit`` so that coefficient ``name`` is ``c' beta`` (same fitted values).

    With ``j`` the largest entry of ``c``, ``X beta = (X_j / c_j) theta + sum_{i != j}
    (X_i - X_j c_i / c_j) beta_i`` with ``theta = c' beta``; the wild bootstrap of that
    coefficient tests the combination (e.g. the average of post-period event-study effects).
    """
    c = np.asarray(c, dtype=np.float64).reshape(-1)
    X = np.asarray(fit.X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    k = X.shape[1]
    if c.size != k or not np.any(c):
        raise EstimationError(
            f"the combination has {c.size} weights for {k} coefficients (or is all zero)."
        )
    j = int(np.argmax(np.abs(c)))
    a = np.eye(k)  # new X = X @ a
    a[j, :] = -c / c[j]
    a[j, j] = 1.0 / c[j]
    a_inv = np.linalg.inv(a)
    beta = a_inv @ np.asarray(fit.beta, dtype=np.float64).reshape(-1)
    xtx_inv = a_inv @ np.asarray(fit.xtx_inv, dtype=np.float64) @ a_inv.T
    names = list(fit.names)
    names[j] = name
    return _Reparametrized(
        X=X @ a,
        y=np.asarray(fit.y),
        beta=beta,
        resid=np.asarray(fit.resid),
        cluster=np.asarray(fit.cluster),
        names=tuple(names),
        df_absorbed=int(fit.df_absorbed),
        xtx_inv=xtx_inv,
    )
