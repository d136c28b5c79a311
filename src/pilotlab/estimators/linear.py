"""Least squares with unit and period fixed effects absorbed by within-transformation.

Fixed effects are never built as dummy columns: each regressor is demeaned by unit and by period
(weighted group means from ``np.bincount``), exactly in one step for balanced unweighted panels and by
alternating projections otherwise. Variance estimators: ``cluster`` (CR1 with the fixest / Stata
small-sample factor), ``robust`` (HC1) and ``iid``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from pilotlab.distributions import chi2_sf
from pilotlab.exceptions import EstimationError
from pilotlab.results import CellLinearFit, LinearFit, VcovType

__all__ = [
    "LinearFit",
    "VcovType",
    "checked_inverse",
    "cluster_factor",
    "coefficient_covariance",
    "demean",
    "fit_cells",
    "fit_linear",
    "linear_combination",
    "wald_test",
]


def _group_mean(
    x: np.ndarray, codes: np.ndarray, n_groups: int, w: np.ndarray, wsum: np.ndarray
) -> np.ndarray:
    """Weighted group means of each column of ``x`` (n x k), returned per group (G x k)."""
    out = np.empty((n_groups, x.shape[1]))
    for j in range(x.shape[1]):  # loop over a handful of columns, not over rows or groups
        out[:, j] = np.bincount(codes, weights=x[:, j] * w, minlength=n_groups)
    means: np.ndarray = out / wsum[:, None]
    return means


def demean(
    x: np.ndarray,
    fe: list[np.ndarray],
    weights: np.ndarray | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 10_000,
    balanced: bool = False,
    shape: tuple[int, int] | None = None,
    overwrite: bool = False,
) -> np.ndarray:
    """Remove the (weighted) fixed effects ``fe`` (integer code arrays) from each column of ``x``.

    With two balanced, unweighted factors one sweep is exact (with ``shape = (units, periods)``
    for rows sorted by unit then period, by reshaping instead of indexing); otherwise alternating
    projections iterate until the largest change is below ``tol`` times the column scale.
    """
    x = np.array(x, dtype=np.float64, copy=not overwrite)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[:, None]
    if shape is not None and weights is None and len(fe) == 2:
        cube = x.reshape(shape[0], shape[1], x.shape[1])
        cube -= cube.mean(axis=1, keepdims=True)  # unit means
        cube -= cube.mean(axis=0, keepdims=True)  # period means (of the unit-demeaned data)
        return x[:, 0] if squeeze else x
    w = np.ones(x.shape[0]) if weights is None else weights
    sizes = [int(c.max()) + 1 if c.size else 0 for c in fe]
    wsums = [np.bincount(c, weights=w, minlength=g) for c, g in zip(fe, sizes, strict=True)]
    wsums = [np.where(s > 0, s, 1.0) for s in wsums]
    if balanced and weights is None and len(fe) == 2:
        m0 = _group_mean(x, fe[0], sizes[0], w, wsums[0])
        m1 = _group_mean(x, fe[1], sizes[1], w, wsums[1])
        x -= m0[fe[0]] + m1[fe[1]] - x.mean(axis=0)
        return x[:, 0] if squeeze else x
    scale = np.maximum(np.abs(x).max(axis=0), 1e-300)
    for _ in range(max_iter):
        delta = np.zeros(x.shape[1])
        for codes, g, ws in zip(fe, sizes, wsums, strict=True):
            m = _group_mean(x, codes, g, w, ws)
            x -= m[codes]
            delta = np.maximum(delta, np.abs(m).max(axis=0))
        if len(fe) == 1 or np.all(delta <= tol * scale):
            break
    else:  # pragma: no cover - only for pathological designs
        raise EstimationError(
            "the fixed-effects demeaning did not converge; the panel may be "
            "badly disconnected (check units observed in a single period)"
        )
    return x[:, 0] if squeeze else x


def _cluster_scores(
    X: np.ndarray, resid: np.ndarray, cluster: np.ndarray, n_clusters: int
) -> np.ndarray:
    """Sums of ``X * resid`` within each cluster (G x k), without an n x k temporary."""
    n, k = X.shape
    if n % n_clusters == 0 and np.array_equal(
        cluster, np.repeat(np.arange(n_clusters), n // n_clusters)
    ):
        m = n // n_clusters  # rows sorted into equal cluster blocks (a rectangular panel by unit)
        sums: np.ndarray = np.einsum(
            "gmk,gm->gk", X.reshape(n_clusters, m, k), resid.reshape(n_clusters, m)
        )
        return sums
    out = np.empty((n_clusters, k))
    for j in range(k):  # a handful of columns, never a loop over rows or clusters
        out[:, j] = np.bincount(cluster, weights=X[:, j] * resid, minlength=n_clusters)
    return out


def _collinear_message(xtx: np.ndarray, names: Sequence[str]) -> str:
    """Name the regressors that cannot be told apart from the fixed effects or each other."""
    k = xtx.shape[0]
    d = np.sqrt(np.clip(np.diag(xtx), 0.0, None))
    scale = float(d.max()) if k and np.isfinite(d).all() and d.max() > 0 else 1.0
    flat = d <= 1e-8 * scale  # nothing left once the fixed effects are removed
    involved = [names[j] for j in np.flatnonzero(flat).tolist()]
    if not involved and k and np.isfinite(xtx).all():
        s = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)
        vals, vecs = np.linalg.eigh(xtx * s[:, None] * s[None, :])
        null = vecs[:, vals <= 1e-10 * max(float(vals.max()), 1e-300)]
        if null.size:
            involved = [names[j] for j in np.flatnonzero(np.abs(null).max(axis=1) > 1e-3).tolist()]
    events = [n for n in involved if re.fullmatch(r"e[+-]\d+", n)]
    if involved and len(events) == len(involved):
        times = ", ".join(n[1:] for n in events)
        return (
            f"event time {times} cannot be estimated: its treated observations (those with a "
            "positive weight) cannot be separated from the unit and period effects, e.g. no "
            "comparison unit is observed in those periods; narrow design.window so that it "
            "leaves out event time " + times + ", or check the data and weights of those periods"
        )
    which = ", ".join(involved) if involved else ", ".join(names)
    return (
        f"the regressors ({which}) are collinear with the fixed effects or each other: a "
        "covariate may be constant within units, or no unit changes treatment status in the "
        "observations with a positive weight"
    )


def checked_inverse(xtx: np.ndarray, message: Callable[[], str]) -> np.ndarray:
    """The inverse of the cross-product ``xtx``; an :class:`EstimationError` saying
    ``message()`` where it is singular or too ill-conditioned to trust (condition above 1e12)."""
    try:
        xtx_inv = np.linalg.inv(xtx)
        if not np.all(np.isfinite(xtx_inv)) or np.linalg.cond(xtx) > 1e12:
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        raise EstimationError(message()) from None
    return xtx_inv


def cluster_factor(
    *, n: int, k: int, fe_all: int, levels: Sequence[int], nested: Sequence[bool], n_clusters: int
) -> float:
    """fixest's CR1 small-sample factor ``G / (G - 1) * (n - 1) / (n - K)``, with ``K`` the
    regressors and the fixed effects not nested in the clusters (``fixef.K = "nested"``: a
    factor nested in the clusters counts for one parameter); NaN with one cluster. An
    :class:`EstimationError` when the parameters use up every observation."""
    G = n_clusters
    if G <= 1:
        return math.nan
    K = k + fe_all - sum(lv - 1 for lv, nst in zip(levels, nested, strict=True) if nst)
    if n <= K:
        raise EstimationError(
            f"the model has {n} observations and {K} parameters; no degrees of freedom remain "
            "for cluster-robust standard errors."
        )
    return G / (G - 1) * (n - 1) / (n - K)


def coefficient_covariance(
    vcov: VcovType,
    xtx_inv: np.ndarray,
    *,
    n: int,
    k: int,
    fe_all: int,
    levels: Sequence[int],
    nested: Sequence[bool],
    n_clusters: int,
    scores: np.ndarray | None,
    meat: Callable[[], np.ndarray],
    rss: Callable[[], float],
) -> tuple[np.ndarray, int]:
    """The coefficients' covariance and residual degrees of freedom, with fixest's small-sample
    corrections (see :func:`fit_linear`).

    ``scores`` are the cluster scores (``vcov="cluster"``); ``meat()`` gives the
    heteroskedasticity-robust meat (``"robust"``) and ``rss()`` the residual sum of squares
    (``"iid"``), each worked out only when asked for.
    """
    if vcov == "cluster":
        assert scores is not None
        factor = cluster_factor(n=n, k=k, fe_all=fe_all, levels=levels, nested=nested,
                                n_clusters=n_clusters)  # fmt: skip
        return factor * xtx_inv @ (scores.T @ scores) @ xtx_inv, n_clusters - 1
    K = k + fe_all
    if n - K <= 0:
        raise EstimationError("more parameters than observations; the design cannot be estimated")
    if vcov == "robust":
        return n / (n - K) * xtx_inv @ meat() @ xtx_inv, n - K
    return rss() / (n - K) * xtx_inv, n - K


def fit_linear(
    y: np.ndarray,
    X: np.ndarray,
    names: tuple[str, ...],
    *,
    fe: list[np.ndarray],
    cluster: np.ndarray,
    weights: np.ndarray | None = None,
    vcov: VcovType = "cluster",
    balanced: bool = False,
    shape: tuple[int, int] | None = None,
    fe_nested_in_cluster: tuple[bool, ...] | None = None,
    add_intercept: bool = False,
    overwrite_X: bool = False,
) -> LinearFit:
    """Regress ``y`` on ``X`` with the fixed effects ``fe`` absorbed.

    ``overwrite_X=True`` lets the demeaning work in ``X``'s own memory (the caller's temporary),
    which saves a copy of the largest array.

    Small-sample corrections follow fixest's defaults so numbers match it and Stata:
    CR1 = G/(G-1) * (n-1)/(n-K) with K counting the regressors and the fixed effects not nested in
    the cluster variable; HC1 = n/(n-K) with K counting all fixed effects.
    """
    n = y.shape[0]
    if add_intercept:
        X = np.column_stack([np.ones(n), X])
        names = ("(Intercept)", *names)
        overwrite_X = True
    own = overwrite_X and X.dtype == np.float64 and X.ndim == 2 and X.flags.c_contiguous
    Xt = X if own else np.array(X, dtype=np.float64, order="C")
    yt = np.array(y, dtype=np.float64)
    if fe:
        Xt = demean(Xt, fe, weights, balanced=balanced, shape=shape, overwrite=True)
        yt = demean(yt, fe, weights, balanced=balanced, shape=shape, overwrite=True)
    if weights is not None:
        sw = np.sqrt(weights)
        Xt *= sw[:, None]
        yt *= sw
    k = Xt.shape[1]
    xtx = Xt.T @ Xt
    xtx_inv = checked_inverse(xtx, lambda: _collinear_message(xtx, names))
    beta = xtx_inv @ (Xt.T @ yt)
    resid = yt - Xt @ beta
    levels = [int(c.max()) + 1 for c in fe]
    # Fixed-effect parameters: all levels less one reference per extra factor.
    fe_all = sum(levels) - max(len(fe) - 1, 0)
    G = int(cluster.max()) + 1
    scores = _cluster_scores(Xt, resid, cluster, G) if vcov == "cluster" else None
    V, df_resid = coefficient_covariance(
        vcov, xtx_inv, n=n, k=k, fe_all=fe_all, levels=levels,
        nested=fe_nested_in_cluster or tuple(False for _ in fe), n_clusters=G, scores=scores,
        meat=lambda: (Xt * resid[:, None] ** 2).T @ Xt, rss=lambda: float(resid @ resid),
    )  # fmt: skip
    return LinearFit(
        Xt,
        yt,
        beta,
        resid,
        cluster,
        tuple(names),
        fe_all,
        xtx_inv,
        V,
        vcov,
        G,
        max(df_resid, 1),
        scores,
        tuple(np.asarray(c) for c in fe),
        None if weights is None else np.asarray(weights, dtype=np.float64),
    )


def fit_cells(
    y: np.ndarray,
    cells: np.ndarray,
    unit_group: np.ndarray,
    names: tuple[str, ...],
    *,
    cluster: np.ndarray,
    vcov: VcovType = "cluster",
    fe_nested_in_cluster: tuple[bool, bool] = (False, False),
    unit_weights: np.ndarray | None = None,
) -> CellLinearFit:
    """:func:`fit_linear` with unit and period effects, for regressors that depend only on a
    unit's group and the period: ``X[u, t] = cells[unit_group[u], t]``.

    ``unit_weights`` (``(N,)``, positive): analytic weights constant over each unit's periods.
    Weighted least squares on unit and period effects then removes plain unit means and
    weighted period means, so the regressors stay functions of the group and the period, each
    cell counting its units' weight; ``X``, ``y`` and the residuals are scaled by the square
    root of the weights, as :func:`fit_linear` scales them.

    ``y`` is a rectangular, unweighted panel sorted by unit then period (``N x T`` rows) and
    ``cells`` is ``groups x T x k`` (an event study's indicators: a unit's cohort and the period
    give its event time). Within-transforming such regressors leaves them functions of the group
    and the period, so every cross-product is a sum over the ``groups x T`` cells weighted by the
    number of units, the residuals are the outcome's less the fitted value of their cell, and a
    unit's score is its residual row times its group's ``T x k`` block: the ``rows x k`` matrix
    of regressors is never formed (:class:`CellLinearFit` makes it if a reader asks for it).
    Estimates and variances are those of :func:`fit_linear` up to rounding.
    """
    n_groups, T, k = cells.shape
    N = unit_group.shape[0]
    n = N * T
    fe = [np.repeat(np.arange(N), T), np.tile(np.arange(T), N)]
    w = unit_weights
    if w is None:
        yt = demean(y, fe, shape=(N, T))
        Y = yt.reshape(N, T)
        size = np.bincount(unit_group, minlength=n_groups).astype(np.float64)
        total = float(N)
    else:
        Y = np.array(y, dtype=np.float64).reshape(N, T)
        Y -= Y.mean(axis=1, keepdims=True)  # unit means
        total = float(w.sum())
        Y -= (w @ Y)[None, :] / total  # weighted period means of the unit-demeaned outcome
        size = np.bincount(unit_group, weights=w, minlength=n_groups).astype(np.float64)
    Xc = np.array(cells, dtype=np.float64)
    Xc -= Xc.mean(axis=1, keepdims=True)  # unit means (the same for every unit of a group)
    Xc -= np.einsum("c,ctk->tk", size, Xc)[None] / total  # period means over the units
    Xc[size == 0] = 0.0
    flat = Xc.reshape(n_groups * T, k)
    root = np.repeat(np.sqrt(size), T)
    xtx = (flat * root[:, None]).T @ (flat * root[:, None])
    xtx_inv = checked_inverse(xtx, lambda: _collinear_message(xtx, names))
    by_group = np.argsort(unit_group, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(unit_group, minlength=n_groups))])
    starts = bounds[:-1][size > 0]
    wY = Y if w is None else Y * w[:, None]
    sums = np.zeros((n_groups, T))
    sums[size > 0] = np.add.reduceat(wY[by_group], starts, axis=0)  # outcome sums per cell
    beta = xtx_inv @ np.einsum("ctk,ct->k", Xc, sums)
    fitted = Xc @ beta  # groups x T
    R = Y - fitted[unit_group]
    root_w = None if w is None else np.sqrt(w)
    wR = R if w is None else R * w[:, None]  # what a unit's residuals weigh in its scores
    resid = (R if root_w is None else R * root_w[:, None]).reshape(n)
    yt = Y.reshape(n) if root_w is None else (Y * root_w[:, None]).reshape(n)
    fe_all = N + T - 1
    G = int(cluster.max()) + 1
    scores = None
    if vcov == "cluster":
        unit_scores = np.empty((N, k))
        R_sorted = wR[by_group]
        for c in np.flatnonzero(size):  # one product per group (cohort), never per unit
            lo, hi = bounds[c], bounds[c + 1]
            unit_scores[by_group[lo:hi]] = R_sorted[lo:hi] @ Xc[c]
        unit_cluster = cluster[::T]
        if G == N and np.array_equal(unit_cluster, np.arange(N)):
            scores = unit_scores
        else:
            scores = np.zeros((G, k))
            np.add.at(scores, unit_cluster, unit_scores)

    def robust_meat() -> np.ndarray:
        sq = np.zeros((n_groups, T))
        sq[size > 0] = np.add.reduceat(wR[by_group] ** 2, starts, axis=0)
        meat: np.ndarray = np.einsum("ct,ctj,ctk->jk", sq, Xc, Xc)
        return meat

    V, df_resid = coefficient_covariance(
        vcov, xtx_inv, n=n, k=k, fe_all=fe_all, levels=(N, T), nested=fe_nested_in_cluster,
        n_clusters=G, scores=scores, meat=robust_meat, rss=lambda: float(resid @ resid),
    )  # fmt: skip
    return CellLinearFit(
        None,  # type: ignore[arg-type]  # made from the cells on first use
        yt,
        beta,
        resid,
        cluster,
        tuple(names),
        fe_all,
        xtx_inv,
        V,
        vcov,
        G,
        max(df_resid, 1),
        scores,
        tuple(fe),
        None if w is None else np.repeat(np.asarray(w, dtype=np.float64), T),
        cells=Xc,
        unit_group=np.asarray(unit_group, dtype=np.intp),
    )


def linear_combination(fit: LinearFit, c: np.ndarray) -> tuple[float, float]:
    """Estimate and standard error of ``c @ beta``."""
    est = float(c @ fit.beta)
    se = float(np.sqrt(max(float(c @ fit.vcov @ c), 0.0)))
    return est, se


def wald_test(fit: LinearFit, idx: list[int]) -> tuple[float, int, float]:
    """Joint Wald test that the coefficients ``idx`` are all zero: (statistic, df, p-value).

    The statistic is referred to a chi-squared distribution (as fixest's ``wald`` and R ``did``).
    """
    if not idx:
        return float("nan"), 0, float("nan")
    b = fit.beta[idx]
    V = fit.vcov[np.ix_(idx, idx)]
    stat = float(b @ np.linalg.pinv(V) @ b)
    return stat, len(idx), float(chi2_sf(stat, len(idx)))
