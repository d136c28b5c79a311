"""Wild cluster restricted bootstrap (WCR) with test-inversion confidence intervals.

The method is the one of Stata's ``boottest`` (Roodman, MacKinnon, Nielsen & Webb 2019, "Fast and
wild: bootstrap inference in Stata using boottest", *Stata Journal* 19(1)): the null
``beta_j = beta0`` is imposed on the bootstrap data-generating process, residuals are multiplied
by one random weight per cluster, and the bootstrap distribution of the CR1 t statistic gives a
symmetric two-sided p-value. The confidence interval is the set of ``beta0`` that the test does
not reject, found by root-finding on the p-value function.

Fixed effects. Each bootstrap sample is treated as if it were refitted with all its dummies:
flipping residuals cluster by cluster leaves them orthogonal to a fixed effect nested in the
clusters (unit effects when clustering by unit or coarser) but not to one that cuts across them
(period effects), so the bootstrap residuals are re-projected on those. The re-projection is a
low-rank linear map of the weights built from cluster-by-level sums (rank at most the number of
such levels plus ``k``, and usually far less), so it adds a few inner products per draw and no
``n x B`` array.

Speed. After the fit nothing here touches the rows again. Every bootstrap quantity is linear in
the cluster weights ``v`` (a ``G x B`` matrix) and affine in ``beta0``:

* the bootstrap numerator is ``beta*_b - beta0 = (a0 - beta0 a1)' v_b``;
* the bootstrap CR1 variance is ``c (d0_b - 2 beta0 d1_b + beta0^2 d2_b)``,

where ``a0, a1`` are cluster scores of the restricted residuals and ``d0, d1, d2`` come from one
product of a small ``G x (4r + 2)`` matrix with ``v`` (``r`` the rank of the re-projection;
reduced further to the numerical rank of that matrix), plus one with ``v**2`` unless the weights
are Rademacher. Draws are generated and consumed in column chunks, so memory stays bounded, and
the p-value at any ``beta0`` then costs ``O(B)``: inverting the test is essentially free.

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
    "residual_dof",
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
# blocks of joined chunks when the cluster-level matrix is wide (~32 MB of weights at most)
_MAX_BLOCK_ELEMENTS = 4_000_000

#: Relative tolerance under which a bootstrap statistic ties the observed one (compared as
#: squares). The all-ones sign vector rebuilds the sample itself, so its statistic equals the
#: observed one up to rounding; ties count as at least as extreme, as in the permutation code.
_TIE_RTOL = 1e-8

#: Singular values below this fraction of the largest are rounding in the low-rank score map.
_RANK_RTOL = 1e-13

#: Limits of the re-projection on fixed effects not nested in the clusters: levels of those
#: factors, and cluster x level (or nested level x level) cells held in memory.
_MAX_FREE_LEVELS = 5000

#: Up to this many clusters the bootstrap scores may be formed as a G x G map of the weights.
_DIRECT_MAX_CLUSTERS = 256
_MAX_CLUSTER_LEVELS = 25_000_000


class LinearFitLike(Protocol):
    """What the bootstrap needs from a linear fit (``pilotlab.estimators.linear.LinearFit``).

    ``X`` and ``y`` are after absorbing the fixed effects and multiplying by ``sqrt(weight)``;
    ``resid = y - X @ beta``; ``cluster`` holds integer codes ``0..G-1``. A fit may also carry
    ``fe`` (the absorbed factors' integer codes) and ``weights``: without them the bootstrap
    treats the design as having no absorbed fixed effects.
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
        """Symmetric two-sided bootstrap p-value ``mean(|t*| >= |t|)`` at ``beta0``.

        A draw whose statistic equals the observed one up to rounding (relative
        :data:`_TIE_RTOL` on the squares) counts as a tie, so exact enumeration never depends on
        the last bits of the arithmetic.
        """
        num = self.n0 - beta0 * self.n1
        den = np.maximum(self.d0 - 2 * beta0 * self.d1 + beta0 * beta0 * self.d2, 0.0)
        thr = self.t_obs(beta0) ** 2 * self.scale * den
        return float(np.mean(num * num >= thr * (1.0 - _TIE_RTOL)))

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


def _fixed_effect_levels(fit: LinearFitLike, cl: np.ndarray, g: int) -> _FreeEffects | None:
    """The absorbed factors that cut across clusters, or ``None`` when every one is nested."""
    fe = [np.asarray(c, dtype=np.int64) for c in (getattr(fit, "fe", None) or ())]
    if not fe:
        return None
    n = cl.shape[0]
    nested = [_nested(c, cl) for c in fe]
    inner = next((c for c, nst in zip(fe, nested, strict=True) if nst), None)
    free = [c for c, nst in zip(fe, nested, strict=True) if not (nst and c is inner)]
    if not free:
        return None
    sizes = [int(c.max()) + 1 for c in free]
    m = sum(sizes)
    m1 = 0 if inner is None else int(inner.max()) + 1
    if g * m > _MAX_CLUSTER_LEVELS or m > _MAX_FREE_LEVELS or m1 * m > _MAX_CLUSTER_LEVELS:
        raise EstimationError(
            f"the wild bootstrap must re-project every draw on {m:,} fixed-effect levels that "
            f"are not nested in the {g:,} clusters, more than it can hold in memory; cluster at "
            "a level that contains whole units (data.cluster) or use "
            "design.inference.method: cluster."
        )
    raw_w = getattr(fit, "weights", None)
    w = np.ones(n) if raw_w is None else np.asarray(raw_w, dtype=np.float64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    # Gram matrix of the free dummies after partialling out the nested factor:
    # D2' D2 - D2' D1 (D1' D1)^-1 D1' D2, all from weighted cross-tabulations of codes.
    gram = np.zeros((m, m))
    for a, (ca, oa, ma) in enumerate(zip(free, offsets, sizes, strict=True)):
        for b, (cb, ob, mb) in enumerate(zip(free, offsets, sizes, strict=True)):
            if a == b:
                idx = np.arange(oa, oa + ma)
                gram[idx, idx] = np.bincount(ca, weights=w, minlength=ma)
            else:
                tab = np.bincount(ca * mb + cb, weights=w, minlength=ma * mb)
                gram[oa : oa + ma, ob : ob + mb] = tab.reshape(ma, mb)
    if inner is not None:
        w1 = np.bincount(inner, weights=w, minlength=m1)
        cross = np.empty((m1, m))
        for cb, ob, mb in zip(free, offsets, sizes, strict=True):
            tab = np.bincount(inner * mb + cb, weights=w, minlength=m1 * mb)
            cross[:, ob : ob + mb] = tab.reshape(m1, mb)
        cross /= np.sqrt(np.where(w1 > 0, w1, 1.0))[:, None]
        gram -= cross.T @ cross  # one symmetric rank-k product
    gram_pinv = np.linalg.pinv(gram, rcond=1e-10, hermitian=True)
    sqrt_w = None if raw_w is None else np.sqrt(w)
    return _FreeEffects(
        tuple(c + o for c, o in zip(free, offsets, strict=True)), m, gram_pinv, sqrt_w
    )


def _nested(codes: np.ndarray, cluster: np.ndarray) -> bool:
    """Whether every level of ``codes`` lies within a single cluster."""
    first = np.zeros(int(codes.max()) + 1, dtype=cluster.dtype)
    first[codes[::-1]] = cluster[::-1]  # the cluster of each level's first row
    return bool(np.array_equal(first[codes], cluster))


@dataclass(frozen=True)
class _FreeEffects:
    """Fixed-effect levels not nested in the clusters (after partialling out a nested factor).

    ``codes`` give each row's level in every free factor (offset into ``0..m-1``); ``gram_pinv``
    is the pseudo-inverse of the ``m x m`` Gram matrix of those dummies after the nested factor
    is partialled out; ``sqrt_w`` the square roots of the regression weights (``None``: ones).
    """

    codes: tuple[np.ndarray, ...]
    m: int
    gram_pinv: np.ndarray
    sqrt_w: np.ndarray | None

    def cluster_sums(self, values: np.ndarray, cl: np.ndarray, g: int) -> np.ndarray:
        """``(G, m)`` sums of ``sqrt(w) * values`` by cluster and free level."""
        vals = values if self.sqrt_w is None else values * self.sqrt_w
        out = np.zeros(g * self.m)
        base = cl * self.m
        for codes in self.codes:
            out += np.bincount(base + codes, weights=vals, minlength=g * self.m)
        return out.reshape(g, self.m)


def _column_basis(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(basis, coef)`` with ``mat = basis @ coef`` up to rounding and as few basis columns as
    the numerical rank of ``mat`` (columns equilibrated, then rotated onto the eigenvectors of
    their Gram matrix; rotated columns that are zero up to rounding are dropped)."""
    if mat.shape[1] == 0:
        return np.ascontiguousarray(mat), np.zeros((0, 0))
    scale = np.sqrt(np.einsum("gi,gi->i", mat, mat))
    scale = np.where(scale > 0, scale, 1.0)
    unit = mat / scale
    _, evec = np.linalg.eigh(unit.T @ unit)
    rotated = unit @ evec
    norms = np.sqrt(np.einsum("gi,gi->i", rotated, rotated))
    keep = norms > _RANK_RTOL * max(float(norms.max()), 1e-300)
    return np.ascontiguousarray(rotated[:, keep]), evec[:, keep].T * scale[None, :]


def _blocks(draws: BootstrapDraws, width: int) -> Iterator[np.ndarray]:
    """The draws' chunks, joined into blocks of at least ``8 * width`` draws when the matrix they
    multiply is wide, so it is read from memory once per block rather than once per chunk (the
    draws themselves, and so the random stream, are the same)."""
    want = min(8 * width, max(1, _MAX_BLOCK_ELEMENTS // max(draws.n_clusters, 1)))
    if width <= 16 or want <= draws.chunk_size():
        yield from draws.chunks()
        return
    held: list[np.ndarray] = []
    rows = 0
    for v in draws.chunks():
        held.append(v)
        rows += v.shape[0]
        if rows >= want:
            yield np.concatenate(held) if len(held) > 1 else held[0]
            held, rows = [], 0
    if held:
        yield np.concatenate(held) if len(held) > 1 else held[0]


def residual_dof(fit: LinearFitLike) -> int:
    """The residual degrees of freedom of ``fit``: observations less regressors and absorbed
    fixed effects. An :class:`EstimationError` when none remain, since the bootstrap's t
    statistic divides by them."""
    X = np.asarray(fit.X)
    n, k = int(X.shape[0]), 1 if X.ndim == 1 else int(X.shape[1])
    dof = n - k - int(fit.df_absorbed)
    if dof <= 0:
        raise EstimationError(
            f"the model has {n} observations and {k + int(fit.df_absorbed)} parameters; "
            "no degrees of freedom remain for the wild bootstrap's t statistic. Choose another "
            "inference method (design.inference.method), such as permutation, or add data."
        )
    return dof


def prepare_wild_bootstrap(
    fit: LinearFitLike, coef: str | int, draws: BootstrapDraws
) -> WildBootstrapState:
    """Run the bootstrap draws for one coefficient and keep what the p-value function needs.

    Parameters
    ----------
    fit : LinearFit
        The fitted linear model (fixed effects already absorbed). Its ``fe`` codes and
        ``weights`` (when present) let every bootstrap sample be re-projected on the fixed
        effects that are not nested in the clusters, as refitting it with dummies would.
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
    dof = residual_dof(fit)
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
    free = _fixed_effect_levels(fit, cl, g)
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
    del rows
    s0, s1, q, se_scores = cs[:, :k], cs[:, k : 2 * k], cs[:, 2 * k : 3 * k], cs[:, 3 * k :]
    a0 = s0 @ z
    a1 = s1 @ z
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
    # Bootstrap scores of cluster h (z-direction), for weights v and restricted residual u:
    #   sc_h(v) = a_h v_h - p_h' W c(v) - q_h' (X'X)^-1 S' v
    # where c(v) = D2' (v * u) sums the flipped residuals by level of the fixed effects not
    # nested in the clusters (D2, after partialling out a nested one), W is the pseudo-inverse
    # of their Gram matrix and p_h = D2_h' xz_h: the first correction re-projects the bootstrap
    # outcome on the fixed effects, the second on the regressors. Both are one low-rank matrix
    # L R (L = [P, Q], R' = [C W, S (X'X)^-1]); with L = F H' (F of rank r),
    #   sc(v) = a * v - F (R' H)' v,  ||sc||^2 = sum (a v)^2 - 2 (F' (a v))' r + r' F'F r,
    # with r = (R' H)' v: every draw needs 4r + 2 inner products with v (affine in beta0).
    # (F, H' from _column_basis; the nested factor needs no correction because flipping whole
    # clusters keeps the residuals orthogonal to dummies that live inside one cluster.)
    if free is None:
        lmat, r0t, r1t = q, s0 @ xtx_inv, s1 @ xtx_inv
    else:
        pmat = free.cluster_sums(xz, cl, g)
        c0w = free.cluster_sums(u0, cl, g) @ free.gram_pinv
        c1w = free.cluster_sums(rx, cl, g) @ free.gram_pinv
        lmat = np.concatenate([pmat, q], axis=1)
        r0t = np.concatenate([c0w, s0 @ xtx_inv], axis=1)
        r1t = np.concatenate([c1w, s1 @ xtx_inv], axis=1)
        del pmat, c0w, c1w
    f, lcoef = _column_basis(lmat)  # L = F lcoef up to rounding
    hmat = lcoef.T
    gram_f = f.T @ f  # r x r
    t0 = r0t @ hmat  # (G, r)
    t1 = r1t @ hmat
    r = f.shape[1]
    # few clusters: the G x G score maps are smaller than the factors
    direct = 2 * g < 4 * r and g <= _DIRECT_MAX_CLUSTERS
    if direct:
        m0 = np.diag(a0) - f @ t0.T  # sc(v) = M v for beta0 = 0 (and M1 for the slope)
        m1 = np.diag(a1) - f @ t1.T
        lin = np.ascontiguousarray(np.concatenate([a0[:, None], a1[:, None], m0.T, m1.T], axis=1))
    else:
        lin = np.ascontiguousarray(
            np.concatenate(
                [a0[:, None], a1[:, None], t0, t1, f * a0[:, None], f * a1[:, None]], axis=1
            )
        )
    # the columns are often linearly dependent (e.g. functions of treatment status only):
    # multiply the draws by a basis of their span and expand the small product afterwards
    if lin.shape[1] <= _DIRECT_MAX_CLUSTERS:
        basis, expand = _column_basis(lin)
    else:
        basis, expand = lin, np.eye(lin.shape[1])
    sq = np.ascontiguousarray(np.stack([a0 * a0, a0 * a1, a1 * a1], axis=1))
    sq_sum = sq.sum(axis=0)  # Rademacher: v**2 = 1
    b = draws.replications
    n0 = np.empty(b)
    n1 = np.empty(b)
    d0 = np.empty(b)
    d1 = np.empty(b)
    d2 = np.empty(b)
    start = 0
    for v in _blocks(draws, basis.shape[1]):
        c = v.shape[0]
        prod = (v @ basis) @ expand  # (c, columns) = v @ lin
        sl = slice(start, start + c)
        n0[sl] = prod[:, 0]
        n1[sl] = prod[:, 1]
        if direct:
            sc0, sc1 = prod[:, 2 : 2 + g], prod[:, 2 + g :]
            d0[sl] = np.einsum("bi,bi->b", sc0, sc0)
            d1[sl] = np.einsum("bi,bi->b", sc0, sc1)
            d2[sl] = np.einsum("bi,bi->b", sc1, sc1)
        else:
            rad = draws.weights == "rademacher"
            e = np.broadcast_to(sq_sum, (c, 3)) if rad else (v * v) @ sq
            q0, q1 = prod[:, 2 : 2 + r], prod[:, 2 + r : 2 + 2 * r]
            f0, f1 = prod[:, 2 + 2 * r : 2 + 3 * r], prod[:, 2 + 3 * r :]
            g0, g1 = q0 @ gram_f, q1 @ gram_f
            d0[sl] = e[:, 0] - 2 * np.einsum("bi,bi->b", f0, q0) + np.einsum("bi,bi->b", g0, q0)
            d1[sl] = (
                e[:, 1]
                - np.einsum("bi,bi->b", f0, q1)
                - np.einsum("bi,bi->b", f1, q0)
                + np.einsum("bi,bi->b", g0, q1)
            )
            d2[sl] = e[:, 2] - 2 * np.einsum("bi,bi->b", f1, q1) + np.einsum("bi,bi->b", g1, q1)
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
    fe: tuple[np.ndarray, ...] = ()
    weights: np.ndarray | None = None


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
        fe=tuple(getattr(fit, "fe", None) or ()),
        weights=getattr(fit, "weights", None),
    )
