"""Least squares on person-level rows computed from their area x period cell statistics.

The regression estimators (two-by-two DiD, TWFE, event study) put only cell-level regressors in
``X`` (treatment indicators, event times) and absorb area and period effects, which are constant
within a cell too. With person-level covariates ``z`` varying within cells, write each row's
variables as ``v_i = (x_c, z_i, y_i)``. The fixed-effects projection of a row is constant within
its cell and equals the weighted projection of the cell means, so after the within
transformation ``v~_i = (v_i - vbar_c) + v~_c`` and

``sum_i w_i v~_i v~_i' = sum_c [ W_c v~_c v~_c' + Q_c ]``

with ``Q_c`` the weighted within-cell centred cross-products (zero in the rows and columns of the
cell-level regressors). Every quantity of the row-level fit follows from it: ``X'WX`` and
``X'Wy`` give the coefficients; the cluster scores are ``(X'Wy)_g - (X'WX)_g b`` summed over the
cells of each cluster; the residual sum of squares is ``(-b, 1) M (-b, 1)'``; the small-sample
factors use the person-row count. Heteroskedasticity-robust errors need the fourth moments of
``z`` and are computed only when no covariate varies within cells.

The :class:`~pilotlab.results.LinearFit` returned is the cell-level weighted regression, which
has the row-level fit's coefficients, ``X'WX`` and cluster scores whenever no covariate varies
within cells; bootstrap and permutation inference read it then.
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

from pilotlab.data.cells import ROWS, n_column, q_column, robust_columns, weight_column
from pilotlab.data.panel import Panel
from pilotlab.estimators.linear import (
    LinearFit,
    VcovType,
    checked_inverse,
    coefficient_covariance,
    demean,
)
from pilotlab.exceptions import EstimationError

__all__ = ["fit_cells", "micro_nobs", "require_group_cells"]

#: Tolerance of the alternating projections on the cells (far below the 1e-10 of the rows: the
#: cells are few, and every digit of the cell fit is a digit of the person-level estimate).
_TOL = 1e-14


def micro_nobs(panel: Panel, outcome: str, default: int) -> int:
    """Person rows behind an estimate of ``outcome`` (``default`` for other layouts)."""
    if panel.micro is None:
        return default
    if ROWS in panel.frame.columns:
        return round(float(panel.frame[ROWS].sum()))
    return panel.micro.used(outcome) or default


#: The cell statistics of a frame, read once per frame object, outcome and covariates: refits
#: under other assignments (permutations, pre-tests, power) share the frame. A frame's statistic
#: columns are never changed in place (and are unchanged by a constant added within cells), so
#: an entry stays true until the frame is collected, when it is removed.
_STATS: dict[int, dict[tuple[str, str, int], np.ndarray]] = {}


def _stats_of(frame: pd.DataFrame) -> dict[tuple[str, str, int], np.ndarray]:
    fid = id(frame)
    got = _STATS.get(fid)
    if got is None:
        got = _STATS[fid] = {}
        weakref.finalize(frame, _STATS.pop, fid, None)
    return got


def _cell_q(panel: Panel, outcome: str, p: int) -> np.ndarray:
    """Within-cell centred cross-products of ``(covariates, y)`` per cell (cells x p+1 x p+1).

    A column without statistics of its own (a derived outcome such as a permuted treatment
    indicator) is constant within cells: its cross-products are zero.
    """
    micro = panel.micro
    assert micro is not None
    frame = panel.frame
    rows = micro.outcome or outcome
    key = (rows, outcome, p)
    cached = _stats_of(frame)
    if key in cached:
        return cached[key]
    own = outcome == rows and q_column(outcome, p, p) in frame.columns
    Q = np.zeros((len(frame), p + 1, p + 1))
    pairs = [
        (i, j)
        for i in range(p + 1)
        for j in range(i, p + 1)
        if (j < p or own) and q_column(rows, i, j) in frame.columns
    ]
    if pairs:
        block = frame[[q_column(rows, i, j) for i, j in pairs]].to_numpy(np.float64)
        for c, (i, j) in enumerate(pairs):  # (p + 1)(p + 2) / 2 columns, never cells
            Q[:, i, j] = Q[:, j, i] = block[:, c]
    cached[key] = Q
    return Q


def fit_cells(
    panel: Panel,
    outcome: str,
    X: np.ndarray,
    names: tuple[str, ...],
    covariates: tuple[str, ...],
    vcov: VcovType,
    *,
    fixed_effects: bool = True,
) -> LinearFit:
    """The person-level regression of ``outcome`` on ``X`` (cell level), the person-level
    ``covariates`` and area and period effects (or an intercept), from the cells of ``panel``.

    ``panel`` is a microdata panel; when it has not been narrowed to ``outcome``'s cells yet
    (:meth:`Panel.complete`) it is here. Variance as :func:`pilotlab.estimators.linear.fit_linear`
    (CR1 with fixest's nested small-sample factor, HC1, iid), with the person-row count.
    """
    micro = panel.micro
    assert micro is not None, "fit_cells needs a microdata panel"
    if micro.outcome is None and outcome in micro.outcomes:
        panel = panel.complete(outcome, covariates)
        micro = panel.micro
        assert micro is not None
    frame = panel.frame
    rows_of = micro.outcome or outcome
    p = len(covariates)
    unknown = [c for c in covariates if c not in micro.covariates]
    if unknown:
        raise EstimationError(
            f"design.covariates: {', '.join(unknown)} were not aggregated from the microdata; "
            "load the pilot again with them listed in design.covariates"
        )
    W = panel.weight
    counts = frame[ROWS].to_numpy(np.float64) if ROWS in frame.columns else None
    if counts is None:
        counts = frame[n_column(rows_of)].to_numpy(np.float64)
    n = round(float(counts.sum()))
    k0 = X.shape[1]
    names = (*names, *covariates)
    Z = frame[list(covariates)].to_numpy(np.float64) if p else np.empty((len(frame), 0))
    V = np.column_stack([X, Z, panel.y(outcome)])
    unit, time, cluster = panel.unit, panel.time, panel.cluster
    fe: list[np.ndarray] = [unit, time] if fixed_effects else []
    if fixed_effects:
        Vt = demean(V, fe, W, tol=_TOL, overwrite=True)
    else:
        Vt = np.column_stack([np.ones(len(frame)), V])
        names = ("(Intercept)", *names)
        k0 += 1
    k = Vt.shape[1] - 1
    Q = _cell_q(panel, outcome, p)  # cells x (p+1) x (p+1), over (z, y)
    sw = np.sqrt(W)
    A = Vt * sw[:, None]
    M = A.T @ A
    M[k0:, k0:] += Q.sum(axis=0)
    xtx = M[:k, :k]
    xtx_inv = checked_inverse(
        xtx,
        lambda: (
            f"the regressors ({', '.join(names)}) are collinear with the area and period "
            "effects or each other: a covariate may be constant within areas, or no area "
            "changes treatment status"
        ),
    )
    beta = xtx_inv @ M[:k, k]
    e_cell = Vt[:, k] - Vt[:, :k] @ beta  # each cell's mean residual
    coef = np.append(-beta, 1.0)
    levels = [int(c.max()) + 1 for c in fe]
    fe_all = sum(levels) - max(len(fe) - 1, 0)
    G = int(cluster.max()) + 1
    scores = None
    nested = [False] * len(fe)
    if vcov == "cluster":
        # per cell: W_c x~_c e_c + Q_c[x, :] @ (-b, 1); the cell-level regressors carry no Q
        per_cell = (W * e_cell)[:, None] * Vt[:, :k]
        if p:
            per_cell[:, k0:] += Q[:, :p, :] @ coef[k0:]
        scores = np.empty((G, k))
        for j in range(k):  # a handful of columns, never a loop over cells or clusters
            scores[:, j] = np.bincount(cluster, weights=per_cell[:, j], minlength=G)
        nested = [bool(_nested(c, cluster)) for c in fe]

    def robust_meat() -> np.ndarray:
        if p:
            raise EstimationError(
                "design.inference.method: robust (heteroskedasticity-robust) errors need the "
                "person-level rows when design.covariates vary within an area and period; "
                "use cluster or iid, or aggregate the covariates to areas"
            )
        s2 = _robust_sums(panel, outcome, rows_of, e_cell)
        Xc = Vt[:, :k]
        meat: np.ndarray = (Xc * s2[:, None]).T @ Xc
        return meat

    V_, df_resid = coefficient_covariance(
        vcov, xtx_inv, n=n, k=k, fe_all=fe_all, levels=levels, nested=nested, n_clusters=G,
        scores=scores, meat=robust_meat, rss=lambda: float(coef @ M @ coef),
    )  # fmt: skip
    rows_X, rows_y, row_w = A[:, :k], A[:, k], np.asarray(W, dtype=np.float64)
    codes = [np.asarray(c) for c in fe]
    if p:
        rows_X, rows_y, row_w, cluster, codes = _with_spread_rows(A, Q, k0, row_w, cluster, codes)
    return LinearFit(
        np.ascontiguousarray(rows_X),
        np.ascontiguousarray(rows_y),
        beta,
        rows_y - rows_X @ beta,
        cluster,
        tuple(names),
        fe_all,
        xtx_inv,
        V_,
        vcov,
        G,
        max(df_resid, 1),
        scores,
        tuple(codes),
        row_w,
    )


def _with_spread_rows(
    A: np.ndarray,
    Q: np.ndarray,
    k0: int,
    W: np.ndarray,
    cluster: np.ndarray,
    codes: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """The cell rows and, per cell, ``p + 1`` rows spanning its within-cell variation.

    ``Q_c = L_c L_c'`` (eigen-decomposition); the rows ``L_c'`` have zero cell-level regressors,
    the cell's cluster and fixed-effect codes and zero weight, so every cross-product and every
    cluster sum of products equals the person-level one, while the fixed-effect projections
    (weighted sums over the rows of each level) see only the cell rows, as they see only the
    cell means of the person rows. Wild-bootstrap draws then re-project exactly as on the rows.
    """
    nc, m = Q.shape[0], Q.shape[1]
    vals, vecs = np.linalg.eigh(Q)
    L = vecs * np.sqrt(np.clip(vals, 0.0, None))[:, None, :]  # nc x m x m, columns are rows
    spread = np.zeros((nc * m, A.shape[1]))
    spread[:, k0:] = L.transpose(0, 2, 1).reshape(nc * m, m)
    full = np.vstack([A, spread])
    return (
        full[:, :-1],
        full[:, -1],
        np.concatenate([W, np.zeros(nc * m)]),
        np.concatenate([cluster, np.repeat(cluster, m)]),
        [np.concatenate([c, np.repeat(c, m)]) for c in codes],
    )


def _robust_sums(panel: Panel, outcome: str, rows_of: str, e_cell: np.ndarray) -> np.ndarray:
    """``sum_i w_i^2 e_i^2`` per cell, with ``e_i = (y_i - ybar_c) + e_c``."""
    frame = panel.frame
    a0, a1, a2 = robust_columns(rows_of)
    sq = frame[a2].to_numpy(np.float64) if a2 in frame.columns else frame[weight_column(rows_of)]
    s2 = e_cell**2 * np.asarray(sq, dtype=np.float64)
    if outcome == rows_of and a0 in frame.columns:
        s2 = s2 + frame[a0].to_numpy(np.float64) + 2 * e_cell * frame[a1].to_numpy(np.float64)
    out: np.ndarray = s2
    return out


def _nested(codes: np.ndarray, cluster: np.ndarray) -> bool:
    first = np.zeros(int(codes.max()) + 1, dtype=cluster.dtype)
    first[codes[::-1]] = cluster[::-1]
    return bool(np.array_equal(first[codes], cluster))


def require_group_cells(panel: Panel, estimator: str, covariates: tuple[str, ...]) -> Panel:
    """The microdata panel narrowed to ``panel``'s outcome rows, if an estimator that compares
    group means per period (repeated cross-sections) can use its cells exactly; otherwise a
    message saying that it needs the person rows."""
    micro = panel.micro
    if micro is None:
        return panel
    if covariates:
        raise EstimationError(
            f"design.covariates: {estimator} with covariates models each person's covariates "
            "and needs the person-level rows, which microdata are aggregated away from; remove "
            "design.covariates, or use twfe or event_study, which use person-level covariates "
            "exactly from the cells"
        )
    if micro.person_panel:
        raise EstimationError(
            f"data.person: {estimator} for a panel of persons differences each person's own "
            "outcomes and needs the person-level rows; remove data.person to estimate it for "
            "repeated cross-sections (the persons of each area and period compared as groups, "
            "exactly from the cells), or use event_study"
        )
    return panel
