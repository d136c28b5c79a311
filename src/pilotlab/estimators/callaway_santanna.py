"""Callaway & Sant'Anna (2021) group-time average treatment effects for staggered roll-outs.

For every adoption cohort ``g`` and period ``t`` the estimator compares the change in outcomes of
cohort ``g`` between a base period and ``t`` with the same change among comparison units (never
treated, or not yet treated), by outcome regression (``reg``), standardised inverse probability
weighting (``ipw``) or the doubly robust estimator (``dr``, the default) of Sant'Anna & Zhao (2020),
as in the R packages ``did`` and ``DRDID``. The ATT(g,t) are then aggregated (simple, dynamic /
event time, group, calendar) with analytic influence-function standard errors, clustered at any
level; a clustered multiplier bootstrap gives a uniform confidence band over event times, and a
Wald test of the pre-period ATT(g,t) is the parallel-trends pre-test.

All influence functions are kept in *sum form*: ``att_hat - att ~ sum_i phi_i``, so that the
variance is ``sum_c (sum_{i in c} phi_i)^2`` over clusters ``c``. With units as clusters this is
exactly R ``did``'s analytic standard error.

Three computational paths share the aggregation code:

* balanced panels without covariates: every cell and every influence function is a linear map of
  per-block (cohort x cluster) weighted sums of the unit x period outcome matrix, so nothing of
  size units x cells is formed (sparse coefficient matrices and one Gram matrix per block when
  clusters nest in cohorts; a clusters x cells matrix when a cluster spans several cohorts);
* panels with covariates or missing outcomes: a loop over cells doing numpy work on the cell's
  units; the propensity score (weighted logit by Newton-Raphson) and the comparison-unit
  regression design are fitted once per distinct (cohort, comparison group, covariate period)
  and reused; influence functions are summed into clusters with ``np.bincount``;
* repeated cross-sections: four weighted means per cell, or DRDID's ``*_rc`` estimators with
  covariates.

Choices that differ from R ``did``:

* unbalanced panels use, for each ATT(g,t), the units observed in both of its periods (R's
  default balances the panel by dropping units; its ``allow_unbalanced_panel`` treats the data
  as repeated cross-sections);
* analytic standard errors are clustered at ``Panel.cluster`` (R clusters only its bootstrap);
* the uniform band studentises bootstrap draws by the analytic standard errors;
* the outcome-regression correction of the repeated cross-section DR estimator takes the post
  minus the pre piece (the derivative of the estimand; current R DRDID adds the two);
* the pre-test's Wald statistic is referred to the Hotelling T² F approximation with G = clusters
  (R's chi-squared p-value is kept as ``PreTrendTest.p_value_chi2``); when the pre-period
  cells' covariance is singular or the effective number of clusters is below twice the number
  of cells, the pre-test uses the event-time averages, then a level-and-slope test of them;
  with inference for few treated clusters it is a randomisation test.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.special import expit

from pilotlab.data.panel import NEVER, Panel
from pilotlab.diagnostics.pretrend import randomization_pretest, resolve_pretrend, wald_pretest
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.exceptions import DataError, DesignWarning, EstimationError
from pilotlab.results import (
    EffectResult,
    EventTimeEstimate,
    PreTrendTest,
    StaggeredTables,
    Table,
)

__all__ = ["GroupTimeEffects", "estimate_group_time_effects", "fit_callaway_santanna"]

Method = Literal["dr", "ipw", "reg"]
AggregationName = Literal["simple", "dynamic", "group", "calendar"]

_TRIM_LEVEL = 0.995  # propensity scores of comparison units at or above this are trimmed (DRDID)
_BOOT_CHUNK = 256  # bootstrap draws per matrix product


# =====================================================================================  results
@dataclass(frozen=True)
class GroupTimeEffects:
    """ATT(g,t), their aggregations and the cluster-summed influence functions.

    Attributes
    ----------
    att_gt : pandas.DataFrame
        One row per (cohort, period) cell: ``group`` / ``time`` labels, ``group_index`` /
        ``time_index`` / ``base_index`` period indices, ``event_time``, ``att``, ``std_error``,
        ``ci_lower``, ``ci_upper``, ``post`` and ``reference`` (universal base period cell).
    aggregations : pandas.DataFrame
        ``type`` (simple, dynamic, group, calendar), ``estimate``, ``std_error``, ``ci_lower``,
        ``ci_upper`` of the four overall summaries.
    dynamic, group, calendar : pandas.DataFrame
        The per-event-time / per-cohort / per-period estimates behind the overall summaries.
    pre_trend : PreTrendTest or None
        Wald test that all pre-period ATT(g,t) are zero (None when there are none).
    critical_value : float
        Uniform-band critical value over event times (multiplier bootstrap; NaN if not run).
    n_clusters : int
        Number of clusters used for the influence-function variance.
    n_units, n_treated_units : int
        Units (observations for repeated cross-sections) used, and those in treated cohorts.
    warnings : tuple of str
        Design warnings raised while estimating.
    """

    att_gt: pd.DataFrame
    aggregations: pd.DataFrame
    dynamic: pd.DataFrame
    group: pd.DataFrame
    calendar: pd.DataFrame
    pre_trend: PreTrendTest | None
    critical_value: float
    n_clusters: int
    n_units: int
    n_treated_units: int
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Cells:
    """The (g, t) cells to estimate (period indices) and their comparison blocks."""

    g: np.ndarray  # cohort period index
    gb: np.ndarray  # cohort block index (0..H-1)
    t: np.ndarray
    b: np.ndarray  # base period index
    ref: np.ndarray  # universal base-period reference cell (att = 0 by construction)
    ctrl: np.ndarray  # (H + 1) x K bool: blocks that serve as comparison (block H = never)


@dataclass(frozen=True)
class _Units:
    """Unit-level (panel) or row-level (cross-section) arrays after design checks."""

    n: int
    group: np.ndarray  # first treated period index or NEVER
    block: np.ndarray  # 0..H-1 for cohorts, H for never treated
    w: np.ndarray  # weights, mean one
    cl: np.ndarray  # cluster code 0..C-1
    n_clusters: int
    cohorts: np.ndarray  # H treated cohorts (period indices)
    n_periods: int


@dataclass(frozen=True)
class _CellFit:
    """Point estimates and the sufficient variance objects of all cells."""

    att: np.ndarray
    valid: np.ndarray
    se: np.ndarray
    pre_cov: np.ndarray  # covariance of the (valid, non-reference) pre cells, in their order
    pre_idx: np.ndarray
    # aggregated influence functions: callable from coefficient matrix (K x M) to (C x M)
    agg_if: Any


# =====================================================================================  helpers
def _warn(msg: str, sink: list[str]) -> None:
    warnings.warn(msg, DesignWarning, stacklevel=3)
    sink.append(msg)


def _normal_ci(est: np.ndarray, se: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    z = stats.norm.ppf(1 - alpha / 2)
    return est - z * se, est + z * se


# =====================================================================================  design
def _unit_arrays(
    panel: Panel, outcome: str, covariates: tuple[str, ...], sink: list[str]
) -> tuple[_Units, np.ndarray, np.ndarray | None, np.ndarray]:
    """Units, the outcome matrix (panel: N x T; RCS: rows), covariates and row periods."""
    if outcome not in panel.frame.columns:
        raise DataError(
            f"outcome column '{outcome}' is not in the panel; columns available: "
            f"{', '.join(map(str, panel.outcomes))}. Fix the outcome name."
        )
    for c in covariates:
        if c not in panel.frame.columns:
            raise DataError(
                f"covariate column '{c}' (design.covariates) is not in the data; "
                "add it to the data file or remove it from design.covariates."
            )
    T = panel.n_periods
    y = panel.y(outcome)
    t_row = panel.time
    w_row = panel.weight
    cl_row = panel.cluster
    if panel.layout == "repeated_cross_section":
        group = panel.first_treated[panel.unit]
        n = y.size
        units = _Units(
            n=n,
            group=group,
            block=np.zeros(n, np.int64),
            w=w_row,
            cl=cl_row,
            n_clusters=panel.n_clusters,
            cohorts=np.empty(0, np.int64),
            n_periods=T,
        )
        xmat = panel.frame[list(covariates)].to_numpy(np.float64) if covariates else None
        return units, y, xmat, t_row
    n = panel.n_units
    u = panel.unit
    if np.bincount(u * T + t_row, minlength=n * T).max(initial=0) > 1:
        raise DataError(
            "the panel has more than one row for some unit and period; a panel "
            "needs one row per unit and period (use layout repeated_cross_section "
            "for survey-type data)."
        )
    Y = np.full((n, T), np.nan)
    Y[u, t_row] = y
    cl = np.zeros(n, np.int64)
    cl[u] = cl_row
    if np.any(cl[u] != cl_row):
        raise DataError(
            "the cluster column varies within a unit over time; clusters must "
            "contain whole units. Fix the cluster column or cluster at a coarser level."
        )
    w = np.zeros(n)
    w[u] = w_row
    if np.any(w[u] != w_row):
        raise DataError(
            "the weight column varies within a unit over time; Callaway & "
            "Sant'Anna uses one weight per unit. Make the weight constant per unit."
        )
    X = None
    if covariates:
        X = np.full((n, T, len(covariates)), np.nan)
        X[u, t_row, :] = panel.frame[list(covariates)].to_numpy(np.float64)
    units = _Units(
        n=n,
        group=panel.first_treated.astype(np.int64),
        block=np.zeros(n, np.int64),
        w=w,
        cl=cl,
        n_clusters=panel.n_clusters,
        cohorts=np.empty(0, np.int64),
        n_periods=T,
    )
    return units, Y, X, t_row


def _finalise_units(
    units: _Units, T: int, anticipation: int, period_labels: tuple[str, ...], sink: list[str]
) -> tuple[_Units, np.ndarray, int]:
    """Apply the design rules: drop cohorts without a pre-period, handle no never-treated.

    Returns the units, a boolean keep mask (over the original units/rows) and the number of
    periods kept (periods at or after the coerced last cohort are dropped).
    """
    group = units.group.copy()
    keep = np.ones(units.n, bool)
    treated = group != NEVER
    early = treated & (group <= anticipation)
    if early.any():
        bad = np.unique(group[early])
        labels = ", ".join(period_labels[int(g)] for g in bad)
        _warn(
            f"{int(early.sum())} unit(s) first treated in {labels} have no pre-treatment "
            f"period (anticipation {anticipation}); they were dropped from the Callaway & "
            "Sant'Anna estimate.",
            sink,
        )
        keep &= ~early
    T_keep = T
    never = (group == NEVER) & keep
    if not never.any():
        remaining = group[keep & treated]
        if remaining.size == 0:
            raise EstimationError(
                "no treated units remain after dropping cohorts treated in "
                "the first period; Callaway & Sant'Anna needs units first "
                "treated after the first period."
            )
        gmax = int(remaining.max())
        T_keep = gmax - anticipation
        _warn(
            f"no never-treated units: the last cohort to be treated ({period_labels[gmax]}) "
            f"serves as the comparison group and periods from "
            f"{period_labels[max(T_keep, 0)]} on are left out.",
            sink,
        )
        group = np.where(group == gmax, NEVER, group)
        if T_keep < 2 or not np.any(keep & (group != NEVER)):
            raise EstimationError(
                "with no never-treated units there are too few periods "
                "before the last cohort is treated to estimate any "
                "ATT(g,t); add never-treated comparison units."
            )
    cohorts = np.unique(group[keep & (group != NEVER)])
    block = np.searchsorted(cohorts, np.minimum(group, cohorts.max() + 1 if cohorts.size else 0))
    block = np.where(group == NEVER, cohorts.size, block)
    for g in cohorts:
        n_g = int(np.sum(keep & (group == g)))
        if n_g == 1:
            _warn(
                f"the cohort first treated in {period_labels[int(g)]} has a single unit: its "
                "ATT(g,t) rest on one unit and their standard errors are unreliable.",
                sink,
            )
    w = units.w
    if np.any(~np.isfinite(w[keep])) or np.any(w[keep] < 0):
        raise DataError("weights must be finite and non-negative; fix the weight column.")
    return (
        _Units(
            n=units.n,
            group=group,
            block=block,
            w=w,
            cl=units.cl,
            n_clusters=units.n_clusters,
            cohorts=cohorts,
            n_periods=T_keep,
        ),
        keep,
        T_keep,
    )


def _subset_units(units: _Units, keep: np.ndarray) -> _Units:
    cl_codes, cl = np.unique(units.cl[keep], return_inverse=True)
    w = units.w[keep]
    w = w / w.mean()
    return _Units(
        n=int(keep.sum()),
        group=units.group[keep],
        block=units.block[keep],
        w=w,
        cl=cl.astype(np.int64),
        n_clusters=cl_codes.size,
        cohorts=units.cohorts,
        n_periods=units.n_periods,
    )


def _make_cells(
    cohorts: np.ndarray, T: int, anticipation: int, base_period: str, comparison: str
) -> _Cells:
    """All (g, t) cells with their base period and comparison blocks (R ``did`` rules)."""
    H = cohorts.size
    gs, gbs, ts, bs = [], [], [], []
    t_all = np.arange(T)
    for h, g in enumerate(cohorts):
        base_g = int(g) - 1 - anticipation
        tt = t_all if base_period == "universal" else t_all[1:]
        b = (
            np.where(tt >= g, base_g, tt - 1)
            if base_period == "varying"
            else np.full(tt.size, base_g)
        )
        gs.append(np.full(tt.size, g))
        gbs.append(np.full(tt.size, h))
        ts.append(tt)
        bs.append(b)
    g_arr = np.concatenate(gs).astype(np.int64)
    gb = np.concatenate(gbs).astype(np.int64)
    t_arr = np.concatenate(ts).astype(np.int64)
    b_arr = np.concatenate(bs).astype(np.int64)
    ref = t_arr == b_arr
    K = g_arr.size
    ctrl = np.zeros((H + 1, K), bool)
    ctrl[H] = True
    if comparison == "not_yet_treated":
        thr = np.maximum(t_arr, b_arr) + anticipation
        ctrl[:H] = (cohorts[:, None] > thr[None, :]) & (np.arange(H)[:, None] != gb[None, :])
    return _Cells(g=g_arr, gb=gb, t=t_arr, b=b_arr, ref=ref, ctrl=ctrl)


# =====================================================================================  cells
def _fit_balanced_nocov(Y: np.ndarray, units: _Units, cells: _Cells) -> _CellFit:
    """All cells of a balanced panel without covariates, with no units x cells matrix."""
    n, T = Y.shape
    H = units.cohorts.size
    Hb = H + 1
    C = units.n_clusters
    K = cells.g.size
    # weighted sums of [Y, 1] per (cluster, block) combination
    combo_key = units.cl * Hb + units.block
    combos, combo_of_unit = np.unique(combo_key, return_inverse=True)
    n_combo = combos.size
    combo_cl = combos // Hb
    combo_block = combos % Hb
    agg = sparse.csr_matrix((units.w, (combo_of_unit, np.arange(n))), shape=(n_combo, n))
    Z = np.empty((n_combo, T + 1))
    Z[:, :T] = agg @ Y
    Z[:, T] = np.asarray(agg.sum(axis=1)).ravel()
    Zb = np.zeros((Hb, T + 1))
    np.add.at(Zb, combo_block, Z)
    # point estimates from block sums
    ks = np.arange(K)
    Wg = Zb[cells.gb, T]
    eta_t = (Zb[cells.gb, cells.t] - Zb[cells.gb, cells.b]) / Wg
    Zc = cells.ctrl.T.astype(np.float64) @ Zb  # K x (T+1)
    Wc = Zc[:, T]
    valid = (Wc > 0) & (Wg > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta_c = (Zc[ks, cells.t] - Zc[ks, cells.b]) / Wc
    att = np.where(valid, eta_t - eta_c, np.nan)
    att[cells.ref] = 0.0
    live = valid & ~cells.ref
    # sparse coefficient matrix U: rows block*(T+1)+j, columns cells
    kl = ks[live]
    rows_t = [
        cells.gb[kl] * (T + 1) + cells.t[kl],
        cells.gb[kl] * (T + 1) + cells.b[kl],
        cells.gb[kl] * (T + 1) + T,
    ]
    vals_t = [1 / Wg[kl], -1 / Wg[kl], -eta_t[kl] / Wg[kl]]
    hh, kk = np.nonzero(cells.ctrl[:, live])
    kk = kl[kk]
    rows_c = [hh * (T + 1) + cells.t[kk], hh * (T + 1) + cells.b[kk], hh * (T + 1) + T]
    vals_c = [-1 / Wc[kk], 1 / Wc[kk], eta_c[kk] / Wc[kk]]
    U = sparse.csr_matrix(
        (
            np.concatenate(vals_t + vals_c),
            (np.concatenate(rows_t + rows_c), np.concatenate([kl, kl, kl, kk, kk, kk])),
        ),
        shape=(Hb * (T + 1), K),
    )
    nested = n_combo == C  # every cluster lies within one block
    block_rows = [np.flatnonzero(combo_block == h) for h in range(Hb)]
    pre_idx = np.flatnonzero(live & (cells.t < cells.g))
    se = np.full(K, np.nan)
    if nested:
        var = np.zeros(K)
        pre_cov = np.zeros((pre_idx.size, pre_idx.size))
        for h in range(Hb):
            Zh = Z[block_rows[h]]
            Mh = Zh.T @ Zh
            Uh = U[h * (T + 1) : (h + 1) * (T + 1)]
            UtM = Uh.T @ Mh  # K x (T+1), rows zero where the block is not involved
            var += np.asarray(Uh.T.multiply(UtM).sum(axis=1)).ravel()
            if pre_idx.size:
                Up = Uh[:, pre_idx].tocsc()
                used = np.flatnonzero(np.diff(Up.indptr))  # pre cells this block enters
                if used.size:
                    Ud = Up[:, used].toarray()
                    pre_cov[np.ix_(used, used)] += Ud.T @ (Mh @ Ud)
        se[live] = np.sqrt(var[live])
        S = None
    else:
        S = np.zeros((C, K))
        for h in range(Hb):
            r = block_rows[h]
            Uh = U[h * (T + 1) : (h + 1) * (T + 1)]
            S[combo_cl[r]] += np.asarray((Uh.T @ Z[r].T).T)
        se[live] = np.sqrt(np.einsum("ck,ck->k", S[:, live], S[:, live]))
        pre_cov = S[:, pre_idx].T @ S[:, pre_idx]
    se[cells.ref] = np.nan

    def agg_if(A: np.ndarray) -> np.ndarray:
        if S is not None:
            return np.asarray(sparse.csr_matrix(A.T) @ S.T).T
        P = np.asarray(U @ A)  # Hb(T+1) x M
        out = np.zeros((C, A.shape[1]))
        for h in range(Hb):
            r = block_rows[h]
            out[combo_cl[r]] += Z[r] @ P[h * (T + 1) : (h + 1) * (T + 1)]
        return out

    return _CellFit(
        att=att, valid=valid | cells.ref, se=se, pre_cov=pre_cov, pre_idx=pre_idx, agg_if=agg_if
    )


def _wls(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    Xw = X * w[:, None]
    XtX = Xw.T @ X
    if np.linalg.cond(XtX) > 1 / np.finfo(float).eps:
        raise np.linalg.LinAlgError("singular outcome regression")
    return np.linalg.solve(XtX, Xw.T @ y)


def _logit(X: np.ndarray, d: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logit by Newton-Raphson (IRLS): fitted probabilities and the information."""
    beta = np.zeros(X.shape[1])
    pbar = np.sum(w * d) / np.sum(w)
    beta[0] = math.log(pbar / (1 - pbar))
    for _ in range(100):
        p = expit(X @ beta)
        info = X.T @ (X * (w * p * (1 - p))[:, None])
        step = np.linalg.solve(info, X.T @ (w * (d - p)))
        beta += step
        if not np.all(np.isfinite(beta)):
            raise np.linalg.LinAlgError("propensity score did not converge")
        if np.max(np.abs(step)) < 1e-10:
            break
    p = expit(X @ beta)
    info = X.T @ (X * (w * p * (1 - p))[:, None])
    return p, info


@dataclass(frozen=True)
class _Design2x2:
    """The parts of a 2x2 comparison that do not depend on the outcome (reusable across cells
    with the same units and covariates): normalised weights, the comparison units' OLS inverse
    and the fitted propensity score with its information matrix."""

    X: np.ndarray
    D: np.ndarray
    w: np.ndarray
    ols_inv: np.ndarray | None
    ps: np.ndarray | None
    info_inv: np.ndarray | None


def _design_2x2(X: np.ndarray, D: np.ndarray, w: np.ndarray, method: Method) -> _Design2x2:
    w = w / w.mean()
    ols_inv = ps = info_inv = None
    if method in ("dr", "reg"):
        XtWX = X.T @ (X * (w * (1 - D))[:, None])
        if np.linalg.cond(XtWX) > 1 / np.finfo(float).eps:
            raise np.linalg.LinAlgError("singular outcome regression")
        ols_inv = np.linalg.inv(XtWX)
    if method in ("dr", "ipw"):
        ps, info = _logit(X, D, w)
        info_inv = np.linalg.inv(info)
        ps = np.minimum(ps, 1 - 1e-6)
    return _Design2x2(X=X, D=D, w=w, ols_inv=ols_inv, ps=ps, info_inv=info_inv)


def _drdid_panel(dy: np.ndarray, des: _Design2x2, method: Method) -> tuple[np.ndarray, np.ndarray]:
    """2x2 panel DiDs with covariates (DRDID formulas) for several outcomes at once.

    ``dy`` is units x cells (the outcome changes of every cell sharing this design); returns the
    ATTs (cells) and the mean-form influence functions (units x cells). Everything is linear in
    ``dy`` once the design (propensity score, comparison regression) is fixed.
    """
    X, D, w = des.X, des.D, des.w
    n = dy.shape[0]
    if des.ols_inv is not None:
        w_ols = w * (1 - D)
        beta = des.ols_inv @ (X.T @ (w_ols[:, None] * dy))
        out = X @ beta
        e_ols = w_ols[:, None] * (dy - out)  # lin_ols @ v == e_ols * (X @ ols_inv n v)

        def lin_ols(v: np.ndarray) -> np.ndarray:
            return e_ols * (X @ (des.ols_inv @ v * n))[:, None]

    if method == "reg":
        w_t = (w * D)[:, None]
        mt = np.mean(w_t)
        eta_t = np.mean(w_t * dy, axis=0) / mt
        eta_c = np.mean(w_t * out, axis=0) / mt
        inf_t = (w_t * dy - w_t * eta_t) / mt
        inf_c = (w_t * out - w_t * eta_c + lin_ols(X.T @ w_t[:, 0] / n)) / mt
        return eta_t - eta_c, inf_t - inf_c
    if des.ps is None or des.info_inv is None:
        raise EstimationError(f"internal: propensity score missing for method '{method}'")
    ps = des.ps
    trim = np.where(D == 0, ps < _TRIM_LEVEL, True)
    lin_ps = ((w * (D - ps))[:, None] * X) @ (des.info_inv * n)  # units x p
    w_t = (trim * w * D)[:, None]
    w_c = (trim * w * ps * (1 - D) / (1 - ps))[:, None]
    mt, mc = np.mean(w_t), np.mean(w_c)
    r = dy if method == "ipw" else dy - out
    eta_t = np.mean(w_t * r, axis=0) / mt
    eta_c = np.mean(w_c * r, axis=0) / mc
    m2 = X.T @ (w_c * (r - eta_c)) / n  # p x cells
    inf_t = (w_t * r - w_t * eta_t) / mt
    inf_c = w_c * r - w_c * eta_c + lin_ps @ m2
    if method == "dr":
        inf_t = inf_t - lin_ols(X.T @ w_t[:, 0] / n) / mt
        inf_c = inf_c - lin_ols(X.T @ w_c[:, 0] / n)
    return eta_t - eta_c, inf_t - inf_c / mc


def _ols_rep(X: np.ndarray, y: np.ndarray, wsel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted OLS fit on the rows with ``wsel > 0``: predictions for every row and the
    asymptotic linear representation of the coefficients (DRDID's ``asy.lin.rep.ols``)."""
    n = y.size
    sel = wsel > 0
    beta = _wls(X[sel], y[sel], wsel[sel])
    fitted = X @ beta
    XpX = (X * wsel[:, None]).T @ X / n
    rep = ((wsel * (y - fitted))[:, None] * X) @ np.linalg.inv(XpX)
    return fitted, rep


def _drdid_rc(
    y: np.ndarray, post: np.ndarray, D: np.ndarray, X: np.ndarray, w: np.ndarray, method: Method
) -> tuple[float, np.ndarray]:
    """One 2x2 repeated cross-section DiD with covariates (DRDID ``*_rc`` formulas)."""
    n = y.size
    w = w / w.mean()
    t1, t0 = post, 1 - post
    if method == "reg":
        out_pre, rep_pre = _ols_rep(X, y, w * (1 - D) * t0)
        out_post, rep_post = _ols_rep(X, y, w * (1 - D) * t1)
        w_tp, w_t1, w_c = w * D * t0, w * D * t1, w * D
        e_tp = np.mean(w_tp * y) / np.mean(w_tp)
        e_t1 = np.mean(w_t1 * y) / np.mean(w_t1)
        e_c = np.mean(w_c * (out_post - out_pre)) / np.mean(w_c)
        inf_t = (w_t1 * y - w_t1 * e_t1) / np.mean(w_t1) - (w_tp * y - w_tp * e_tp) / np.mean(w_tp)
        m1 = np.mean(w_c[:, None] * X, axis=0)
        inf_c = (w_c * (out_post - out_pre) - w_c * e_c + rep_post @ m1 - rep_pre @ m1) / (
            np.mean(w_c)
        )
        return float((e_t1 - e_tp) - e_c), inf_t - inf_c
    ps, info = _logit(X, D, w)
    ps = np.minimum(ps, 1 - 1e-6)
    trim = np.where(D == 0, ps < _TRIM_LEVEL, True)
    lin_ps = ((w * (D - ps))[:, None] * X) @ (np.linalg.inv(info) * n)
    w_tp = trim * w * D * t0
    w_t1 = trim * w * D * t1
    w_cp = trim * w * ps * (1 - D) * t0 / (1 - ps)
    w_c1 = trim * w * ps * (1 - D) * t1 / (1 - ps)
    if method == "ipw":
        parts = []
        for wk in (w_tp, w_t1, w_cp, w_c1):
            eta = wk * y / np.mean(wk)
            a = float(np.mean(eta))
            parts.append((a, eta - wk * a / np.mean(wk)))
        (a_tp, i_tp), (a_t1, i_t1), (a_cp, i_cp), (a_c1, i_c1) = parts
        m2_pre = np.mean((w_cp * (y - a_cp))[:, None] * X, axis=0) / np.mean(w_cp)
        m2_post = np.mean((w_c1 * (y - a_c1))[:, None] * X, axis=0) / np.mean(w_c1)
        inf_c = i_c1 - i_cp + lin_ps @ (m2_post - m2_pre)
        return float((a_t1 - a_tp) - (a_c1 - a_cp)), (i_t1 - i_tp) - inf_c
    oc_pre, rep_c_pre = _ols_rep(X, y, w * (1 - D) * t0)
    oc_post, rep_c_post = _ols_rep(X, y, w * (1 - D) * t1)
    ot_pre, rep_t_pre = _ols_rep(X, y, w * D * t0)
    ot_post, rep_t_post = _ols_rep(X, y, w * D * t1)
    oc = t1 * oc_post + t0 * oc_pre
    w_d, w_dt1, w_dt0 = trim * w * D, trim * w * D * t1, trim * w * D * t0

    def term(wk: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray]:
        eta = wk * v / np.mean(wk)
        a = float(np.mean(eta))
        return a, eta - wk * a / np.mean(wk)

    a_tp, i_tp = term(w_tp, y - oc)
    a_t1, i_t1 = term(w_t1, y - oc)
    a_cp, i_cp = term(w_cp, y - oc)
    a_c1, i_c1 = term(w_c1, y - oc)
    a_dp, i_dp = term(w_d, ot_post - oc_post)
    a_d1, i_d1 = term(w_dt1, ot_post - oc_post)
    a_dpre, i_dpre = term(w_d, ot_pre - oc_pre)
    a_d0, i_d0 = term(w_dt0, ot_pre - oc_pre)
    att = (a_t1 - a_tp) - (a_c1 - a_cp) + (a_dp - a_d1) - (a_dpre - a_d0)

    def cm(v: np.ndarray) -> np.ndarray:
        return np.mean(v[:, None] * X, axis=0)

    # effect of estimating the comparison outcome regressions: post minus pre (R DRDID's
    # drdid_rc adds the two; the derivative of (post - pre) gives the difference)
    inf_t_or = rep_c_post @ (-cm(w_t1 * t1) / np.mean(w_t1)) - rep_c_pre @ (
        -cm(w_tp * t0) / np.mean(w_tp)
    )
    m2_pre = cm(w_cp * (y - oc - a_cp)) / np.mean(w_cp)
    m2_post = cm(w_c1 * (y - oc - a_c1)) / np.mean(w_c1)
    inf_c_ps = lin_ps @ (m2_post - m2_pre)
    inf_c_or = rep_c_post @ (-cm(w_c1 * t1) / np.mean(w_c1)) - rep_c_pre @ (
        -cm(w_cp * t0) / np.mean(w_cp)
    )
    inf_eff = (i_dp - i_d1) - (i_dpre - i_d0)
    mom_post = cm(w_d / np.mean(w_d) - w_dt1 / np.mean(w_dt1))
    mom_pre = cm(w_d / np.mean(w_d) - w_dt0 / np.mean(w_dt0))
    inf_or = (rep_t_post - rep_c_post) @ mom_post - (rep_t_pre - rep_c_pre) @ mom_pre
    inf_t = i_t1 - i_tp + inf_t_or
    inf_c = i_c1 - i_cp + inf_c_ps + inf_c_or
    return float(att), inf_t - inf_c + inf_eff + inf_or


def _fit_general_panel(
    Y: np.ndarray,
    X: np.ndarray | None,
    units: _Units,
    cells: _Cells,
    method: Method,
    labels: tuple[str, ...],
    sink: list[str],
) -> _CellFit:
    """Cells one by one on the units observed in both periods (covariates / missing values).

    On complete data the units, the propensity score and the comparison-unit regression design of
    a cell depend only on the cohort, the comparison group and (for time-varying covariates) the
    covariates' period: cells sharing them are estimated together, as matrix operations on the
    units x cells outcome changes (every DRDID formula is linear in the outcome once the design
    is fixed). With missing values each cell is its own group.
    """
    K = cells.g.size
    C = units.n_clusters
    att = np.full(K, np.nan)
    S = np.zeros((C, K), order="F")
    Yt = np.ascontiguousarray(Y.T)  # period rows: contiguous outcome columns
    complete = bool(np.all(np.isfinite(Y))) and (X is None or bool(np.all(np.isfinite(X))))
    x_const = X is not None and bool(np.all(X[:, :1, :] == X))
    att[cells.ref] = 0.0
    # cells sharing units and design are estimated together (only on complete data)
    groups: dict[tuple[object, ...], list[int]] = {}
    for k in np.flatnonzero(~cells.ref):
        xt = min(int(cells.t[k]), int(cells.b[k]))
        key: tuple[object, ...] = (
            (int(cells.g[k]), cells.ctrl[:, k].tobytes(), None if x_const else xt)
            if complete
            else (int(k),)
        )
        groups.setdefault(key, []).append(int(k))
    failed: list[str] = []
    for ks in groups.values():
        k0 = ks[0]
        t0, b0 = int(cells.t[k0]), int(cells.b[k0])
        xt = min(t0, b0)
        ok = np.isfinite(Yt[t0]) & np.isfinite(Yt[b0])
        if X is not None:
            ok &= np.all(np.isfinite(X[:, xt, :]), axis=1)
        D = units.group == cells.g[k0]
        idx = np.flatnonzero(ok & (D | cells.ctrl[units.block, k0]))
        Dk = D[idx].astype(np.float64)
        if Dk.sum() == 0 or Dk.sum() == idx.size:
            failed += [f"({labels[cells.g[k]]}, {labels[cells.t[k]]})" for k in ks]
            continue
        kk = np.asarray(ks)
        dy = (Yt[cells.t[kk]][:, idx] - Yt[cells.b[kk]][:, idx]).T  # units x cells
        if X is None:
            wk = units.w[idx]
            wt, wc = (wk * Dk)[:, None], (wk * (1 - Dk))[:, None]
            eta_t = np.sum(wt * dy, axis=0) / wt.sum()
            eta_c = np.sum(wc * dy, axis=0) / wc.sum()
            a = eta_t - eta_c
            phi = wt * (dy - eta_t) / wt.sum() - wc * (dy - eta_c) / wc.sum()
        else:
            Xk = np.column_stack([np.ones(idx.size), X[idx, xt, :]])
            try:
                des = _design_2x2(Xk, Dk, units.w[idx], method)
            except np.linalg.LinAlgError:
                failed += [f"({labels[cells.g[k]]}, {labels[cells.t[k]]})" for k in ks]
                continue
            a, psi = _drdid_panel(dy, des, method)
            phi = psi / idx.size
        att[kk] = a
        agg = sparse.csr_matrix(
            (np.ones(idx.size), (units.cl[idx], np.arange(idx.size))), shape=(C, idx.size)
        )
        S[:, kk] = agg @ np.ascontiguousarray(phi)
    if failed:
        _warn(
            "ATT(g,t) could not be estimated for cells (cohort, period) "
            f"{', '.join(failed)}: no treated or no comparison units observed in both periods, "
            "or a singular covariate design; they are left out of every aggregation.",
            sink,
        )
    return _finish_explicit(att, S, cells)


def _finish_explicit(att: np.ndarray, S: np.ndarray, cells: _Cells) -> _CellFit:
    """Standard errors and pre-test covariance from explicit cluster-summed influence functions."""
    valid = np.isfinite(att)
    live = valid & ~cells.ref
    se = np.where(live, np.sqrt(np.einsum("ck,ck->k", S, S)), np.nan)
    pre_idx = np.flatnonzero(live & (cells.t < cells.g))
    Sp = S[:, pre_idx]

    def agg_if(A: np.ndarray) -> np.ndarray:
        # each aggregated parameter touches few cells: sparse coefficients, S.T is C-contiguous
        return np.asarray(sparse.csr_matrix(A.T) @ S.T).T

    return _CellFit(att=att, valid=valid, se=se, pre_cov=Sp.T @ Sp, pre_idx=pre_idx, agg_if=agg_if)


def _fit_rcs(
    y: np.ndarray,
    t_row: np.ndarray,
    X: np.ndarray | None,
    units: _Units,
    cells: _Cells,
    method: Method,
    labels: tuple[str, ...],
    sink: list[str],
) -> _CellFit:
    """Repeated cross-sections: four weighted means per cell, or DRDID's ``*_rc`` estimators
    with covariates (each observation's own covariate values)."""
    K = cells.g.size
    C = units.n_clusters
    att = np.full(K, np.nan)
    S = np.zeros((C, K), order="F")
    ok_row = np.isfinite(y)
    if X is not None:
        ok_row &= np.all(np.isfinite(X), axis=1)
    rows_at = [np.flatnonzero((t_row == t) & ok_row) for t in range(units.n_periods)]
    failed: list[str] = []
    for k in range(K):
        if cells.ref[k]:
            att[k] = 0.0
            continue
        parts = []
        for per, sign in ((cells.t[k], 1.0), (cells.b[k], -1.0)):
            r = rows_at[per]
            D = units.group[r] == cells.g[k]
            Cm = cells.ctrl[units.block[r], k] & ~D
            parts.append((r, D, Cm, sign))
        if any(p[1].sum() == 0 or p[2].sum() == 0 for p in parts):
            failed.append(f"({labels[cells.g[k]]}, {labels[cells.t[k]]})")
            continue
        if X is not None:
            rows = np.concatenate([p[0][p[1] | p[2]] for p in parts])
            n_t = int(np.sum(parts[0][1] | parts[0][2]))
            post = np.zeros(rows.size)
            post[:n_t] = 1.0
            Dk = (units.group[rows] == cells.g[k]).astype(np.float64)
            Xk = np.column_stack([np.ones(rows.size), X[rows]])
            try:
                a, psi = _drdid_rc(y[rows], post, Dk, Xk, units.w[rows], method)
            except np.linalg.LinAlgError:
                failed.append(f"({labels[cells.g[k]]}, {labels[cells.t[k]]})")
                continue
            att[k] = a
            S[:, k] = np.bincount(units.cl[rows], psi / rows.size, minlength=C)
            continue
        est = 0.0
        for r, D, Cm, sign in parts:
            for mask, s2 in ((D, 1.0), (Cm, -1.0)):
                rr = r[mask]
                wr = units.w[rr]
                m = wr @ y[rr] / wr.sum()
                est += sign * s2 * m
                S[:, k] += np.bincount(
                    units.cl[rr], sign * s2 * wr * (y[rr] - m) / wr.sum(), minlength=C
                )
        att[k] = est
    if failed:
        _warn(
            "ATT(g,t) could not be estimated for cells (cohort, period) "
            f"{', '.join(failed)}: no treated or no comparison observations in one of the two "
            "periods; they are left out of every aggregation.",
            sink,
        )
    return _finish_explicit(att, S, cells)


# =====================================================================================  aggregation
@dataclass
class _AggPlan:
    """Coefficients of every aggregated parameter on the cells (A) and on the cohort-share
    influence functions (Cw), filled parameter by parameter."""

    K: int
    H: int
    A: list[np.ndarray]
    Cw: list[np.ndarray]
    est: list[float]
    kind: list[str]
    label: list[int]

    def add(self, kind: str, label: int, est: float, a: np.ndarray, cw: np.ndarray) -> int:
        self.A.append(a)
        self.Cw.append(cw)
        self.est.append(est)
        self.kind.append(kind)
        self.label.append(label)
        return len(self.est) - 1


def _weighted(
    plan: _AggPlan,
    kind: str,
    label: int,
    keep: np.ndarray,
    att: np.ndarray,
    pg_cell: np.ndarray,
    gb: np.ndarray,
    with_wif: bool,
) -> int:
    """Add a pg-weighted average of cells ``keep`` (with the estimated-weights correction)."""
    P = pg_cell[keep].sum()
    wts = pg_cell[keep] / P
    est = float(wts @ att[keep])
    a = np.zeros(plan.K)
    a[keep] = wts
    cw = np.zeros(plan.H)
    if with_wif:
        np.add.at(cw, gb[keep], (att[keep] - est) / P)
    return plan.add(kind, label, est, a, cw)


def _combine(
    plan: _AggPlan,
    kind: str,
    idx: list[int],
    weights: np.ndarray,
    wif_blocks: np.ndarray | None = None,
    pg: np.ndarray | None = None,
) -> int:
    """A weighted combination of already-defined parameters (overall summaries)."""
    ests = np.array([plan.est[i] for i in idx])
    est = float(weights @ ests)
    a = sum((wt * plan.A[i] for wt, i in zip(weights, idx, strict=True)), np.zeros(plan.K))
    cw = sum((wt * plan.Cw[i] for wt, i in zip(weights, idx, strict=True)), np.zeros(plan.H))
    if wif_blocks is not None and pg is not None:
        P = pg.sum()
        np.add.at(cw, wif_blocks, (ests - est) / P)
    return plan.add(kind, -1, est, np.asarray(a), np.asarray(cw))


# =====================================================================================  main
def estimate_group_time_effects(
    panel: Panel,
    outcome: str,
    *,
    method: Method = "dr",
    covariates: tuple[str, ...] = (),
    base_period: Literal["varying", "universal"] = "varying",
    window: tuple[int, int] | None = None,
    balance_e: int | None = None,
    alpha: float = 0.05,
    replications: int = 999,
    bootstrap_weights: str = "mammen",
    rng: np.random.Generator | None = None,
) -> GroupTimeEffects:
    """Estimate all ATT(g,t) of a staggered design and aggregate them.

    Parameters
    ----------
    panel : Panel
        The analysis panel; its ``comparison``, ``anticipation``, ``layout``, weights and
        clusters are used.
    outcome : str
        Outcome column.
    method : {"dr", "ipw", "reg"}, default "dr"
        Doubly robust, standardised inverse probability weighting or outcome regression.
    covariates : tuple of str
        Covariates (values in the earlier of the two periods of each cell are used).
    base_period : {"varying", "universal"}
        Pre-period cells compare with the previous period (varying) or all cells with the
        period before treatment (universal).
    window : (pre, post), optional
        Event times kept in the dynamic aggregation; event times beyond either end are binned
        into the end point.
    balance_e : int, optional
        Dynamic aggregation only over cohorts observed for at least ``balance_e`` periods after
        treatment (R ``did``'s ``balance_e``).
    alpha : float
        Significance level of confidence intervals.
    replications : int
        Multiplier-bootstrap draws for the uniform band over event times (0 skips it).
    bootstrap_weights : {"mammen", "rademacher", "webb", "auto"}
        Multiplier distribution of the bootstrap ("auto" is Mammen).
    rng : numpy.random.Generator, optional
        Source of randomness of the bootstrap.

    Returns
    -------
    GroupTimeEffects
        Cell estimates, aggregations, the pre-test and the band's critical value.
    """
    sink: list[str] = []
    if method not in ("dr", "ipw", "reg"):
        raise EstimationError(f"callaway_santanna.method is '{method}'; allowed: dr, ipw, reg.")
    if base_period not in ("varying", "universal"):
        raise EstimationError(
            f"callaway_santanna.base_period is '{base_period}'; allowed: varying, universal."
        )
    rng = rng if rng is not None else np.random.default_rng(0)
    labels = panel.period_labels
    T = panel.n_periods
    antic = int(panel.anticipation)
    raw, Y, X, t_row = _unit_arrays(panel, outcome, covariates, sink)
    units, keep, T_keep = _finalise_units(raw, T, antic, labels, sink)
    rcs = panel.layout == "repeated_cross_section"
    if rcs:
        keep &= t_row < T_keep
    units = _subset_units(units, keep)
    if units.cohorts.size == 0:
        raise EstimationError(
            "no treated cohort is left to estimate; Callaway & Sant'Anna "
            "needs units first treated after the first period."
        )
    cells = _make_cells(units.cohorts, T_keep, antic, base_period, panel.comparison)
    if rcs:
        Xr = None if X is None else X[keep]
        fit = _fit_rcs(Y[keep], t_row[keep], Xr, units, cells, method, labels, sink)
    else:
        Yk = Y[keep][:, :T_keep]
        Xk = None if X is None else X[keep][:, :T_keep]
        if Xk is None and np.all(np.isfinite(Yk)):
            fit = _fit_balanced_nocov(Yk, units, cells)
        else:
            if Xk is None:
                _warn(
                    "the panel is unbalanced: each ATT(g,t) uses the units observed in both "
                    "its period and its base period.",
                    sink,
                )
            fit = _fit_general_panel(Yk, Xk, units, cells, method, labels, sink)
    return _aggregate(
        fit,
        units,
        cells,
        labels,
        window,
        balance_e,
        alpha,
        replications,
        bootstrap_weights,
        rng,
        sink,
    )


def _aggregate(
    fit: _CellFit,
    units: _Units,
    cells: _Cells,
    labels: tuple[str, ...],
    window: tuple[int, int] | None,
    balance_e: int | None,
    alpha: float,
    replications: int,
    bootstrap_weights: str,
    rng: np.random.Generator,
    sink: list[str],
) -> GroupTimeEffects:
    H = units.cohorts.size
    K = cells.g.size
    C = units.n_clusters
    n = units.n
    att = fit.att
    valid = fit.valid
    # cohort shares pg (mean of w * 1{G=g} over units)
    pg = np.bincount(units.block, units.w, minlength=H + 1)[:H] / n
    pg_cell = pg[cells.gb]
    e = cells.t - cells.g
    plan = _AggPlan(K=K, H=H, A=[], Cw=[], est=[], kind=[], label=[])
    post = valid & (cells.t >= cells.g)
    if not post.any():
        raise EstimationError(
            "the callaway_santanna estimator finds no effect after the start that it can "
            "estimate: each treated unit needs an observed outcome in its base period (the "
            "period before its start, less any anticipation) and in a period from its start "
            "on, and comparison units observed in the same periods; fill those gaps in the data, "
            "or use design.estimator: did or twfe, which use every period"
        )
    simple = _weighted(plan, "simple", -1, np.flatnonzero(post), att, pg_cell, cells.gb, True)
    # group
    g_idx, g_blocks = [], []
    for h in range(H):
        kk = np.flatnonzero(post & (cells.gb == h))
        if kk.size:
            g_idx.append(
                _weighted(plan, "group", int(units.cohorts[h]), kk, att, pg_cell, cells.gb, False)
            )
            g_blocks.append(h)
    gbl = np.array(g_blocks, dtype=np.int64)
    group_all = _combine(plan, "group_overall", g_idx, pg[gbl] / pg[gbl].sum(), gbl, pg[gbl])
    # dynamic
    e_use = e.copy()
    incl = valid.copy()
    Tm = units.n_periods - 1
    if balance_e is not None:
        incl &= (Tm - cells.g) >= balance_e
        incl &= (e <= balance_e) & (e >= balance_e - Tm)
    if window is not None:
        pre, post_w = int(window[0]), int(window[1])
        e_use = np.clip(e, -pre, post_w)
    d_idx, d_e = [], []
    for ev in np.unique(e_use[incl]):
        kk = np.flatnonzero(incl & (e_use == ev))
        d_idx.append(_weighted(plan, "dynamic", int(ev), kk, att, pg_cell, cells.gb, True))
        d_e.append(int(ev))
    d_pos = [i for i, ev in zip(d_idx, d_e, strict=True) if ev >= 0]
    dyn_all = _combine(plan, "dynamic_overall", d_pos, np.full(len(d_pos), 1 / len(d_pos)))
    # calendar
    c_idx = []
    for tt in range(int(units.cohorts.min()), units.n_periods):
        kk = np.flatnonzero(post & (cells.t == tt))
        if kk.size:
            c_idx.append(_weighted(plan, "calendar", tt, kk, att, pg_cell, cells.gb, True))
    cal_all = _combine(plan, "calendar_overall", c_idx, np.full(len(c_idx), 1 / len(c_idx)))
    # influence functions of all parameters at once (clusters x parameters)
    A = np.column_stack(plan.A)
    A[~valid] = 0.0
    Cw = np.column_stack(plan.Cw)
    IF = fit.agg_if(np.nan_to_num(A))
    # estimated-weights part: cluster sums of (w_i 1{G_i = g} - pg_g) / n
    WG = np.zeros((C, H + 1))
    np.add.at(WG, (units.cl, units.block), units.w)
    Nc = np.bincount(units.cl, minlength=C).astype(np.float64)
    B = (WG[:, :H] - Nc[:, None] * pg[None, :]) / n
    IF += B @ Cw
    est = np.array(plan.est)
    se = np.sqrt(np.einsum("cm,cm->m", IF, IF))
    lo, hi = _normal_ci(est, se, alpha)
    kinds = np.array(plan.kind)
    # multiplier bootstrap (one set of draws): sup-t band over event times, and bootstrap
    # standard errors, intervals and p-values of the four overall aggregations
    dyn_cols = np.array(d_idx)
    overall_idx = [simple, dyn_all, group_all, cal_all]
    crit = math.nan
    boot = np.full((4, 4), np.nan)  # se, ci_lower, ci_upper, p_value per overall aggregation
    if replications > 0:
        cols = np.concatenate([dyn_cols, overall_idx]).astype(np.int64)
        dev = _multiplier_draws(IF[:, cols], replications, bootstrap_weights, rng)
        dd, do = dev[:, : dyn_cols.size], dev[:, dyn_cols.size :]
        use = se[dyn_cols] > 0
        if use.any():
            tmax = np.max(np.abs(dd[:, use]) / se[dyn_cols][use], axis=1)
            crit = float(np.quantile(tmax, 1 - alpha, method="inverted_cdf"))
        iqr = np.subtract(*np.quantile(do, [0.75, 0.25], axis=0))
        b_se = iqr / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
        q = np.quantile(np.abs(do), 1 - alpha, axis=0, method="inverted_cdf")
        e_o = est[overall_idx]
        boot[:, 0] = b_se
        boot[:, 1], boot[:, 2] = e_o - q, e_o + q
        boot[:, 3] = (1 + np.sum(np.abs(do) >= np.abs(e_o), axis=0)) / (replications + 1)
    # pre-test: all pre-treatment ATT(g,t) = 0 (R did's W; its chi-squared p-value is kept as
    # p_value_chi2), referred to the Hotelling F with G = clusters. When the cells' covariance is
    # singular or there are at least as many cells as clusters, fall back to the pre-treatment
    # event-time averages of the dynamic aggregation.
    pre_trend = None
    if fit.pre_idx.size:
        sel = np.zeros((att.size, fit.pre_idx.size))
        sel[fit.pre_idx, np.arange(fit.pre_idx.size)] = 1.0
        pre_trend = wald_pretest(
            att[fit.pre_idx],
            fit.pre_cov,
            C,
            "Wald test that all pre-treatment ATT(g,t) are zero",
            scores=fit.agg_if(sel),
        )
        if pre_trend is None:
            e_pre = [i for i, ev in zip(d_idx, d_e, strict=True) if ev < 0 and se[i] > 0]
            if e_pre:
                Ie = IF[:, e_pre]
                pre_trend = wald_pretest(
                    est[e_pre],
                    Ie.T @ Ie,
                    C,
                    "Wald test that all pre-treatment event-time effects are zero",
                    scores=Ie,
                )
                if pre_trend is None:
                    pre_trend = _drift_pretest(
                        est[e_pre],
                        Ie,
                        np.array(
                            [ev for i, ev in zip(d_idx, d_e, strict=True) if i in e_pre],
                            dtype=float,
                        ),
                        C,
                    )
            _warn(
                f"the {fit.pre_idx.size} pre-treatment ATT(g,t) cannot be tested jointly (their "
                "covariance is singular, or the effective number of clusters behind it is below "
                f"twice the number of cells; {C} clusters), so the parallel-trends pre-test "
                + (
                    "is not reported."
                    if pre_trend is None
                    else "uses the pre-treatment event-time averages instead."
                    if "level and slope" not in pre_trend.test
                    else "tests the level and slope of the pre-treatment event-time averages "
                    "(too few clusters for a calibrated joint test of all of them)."
                ),
                sink,
            )
    # tables
    cl_lo, cl_hi = _normal_ci(att, fit.se, alpha)
    att_gt = pd.DataFrame(
        {
            "group": [labels[g] for g in cells.g],
            "time": [labels[t] for t in cells.t],
            "group_index": cells.g,
            "time_index": cells.t,
            "base_index": cells.b,
            "event_time": e,
            "att": att,
            "std_error": fit.se,
            "ci_lower": cl_lo,
            "ci_upper": cl_hi,
            "post": cells.t >= cells.g,
            "reference": cells.ref,
        }
    )

    def table(kind: str, name: str, lab: Any) -> pd.DataFrame:
        m = np.flatnonzero(kinds == kind)
        df = pd.DataFrame(
            {
                name: [lab(plan.label[i]) for i in m],
                "estimate": est[m],
                "std_error": se[m],
                "ci_lower": lo[m],
                "ci_upper": hi[m],
            }
        )
        return df

    dynamic = table("dynamic", "event_time", int)
    if dyn_cols.size:
        dynamic["uniform_lower"] = dynamic["estimate"] - crit * dynamic["std_error"]
        dynamic["uniform_upper"] = dynamic["estimate"] + crit * dynamic["std_error"]
    group = table("group", "group", lambda g: labels[g])
    calendar = table("calendar", "time", lambda t: labels[t])
    overall = [
        ("simple", simple),
        ("dynamic", dyn_all),
        ("group", group_all),
        ("calendar", cal_all),
    ]
    aggregations = pd.DataFrame(
        {
            "type": [o[0] for o in overall],
            "estimate": [est[o[1]] for o in overall],
            "std_error": [se[o[1]] for o in overall],
            "ci_lower": [lo[o[1]] for o in overall],
            "ci_upper": [hi[o[1]] for o in overall],
            "boot_std_error": boot[:, 0],
            "boot_ci_lower": boot[:, 1],
            "boot_ci_upper": boot[:, 2],
            "boot_p_value": boot[:, 3],
        }
    )
    return GroupTimeEffects(
        att_gt=att_gt,
        aggregations=aggregations,
        dynamic=dynamic,
        group=group,
        calendar=calendar,
        pre_trend=pre_trend,
        critical_value=crit,
        n_clusters=C,
        n_units=n,
        n_treated_units=int(np.sum(units.block < H)),
        warnings=tuple(sink),
    )


def _drift_pretest(est: np.ndarray, IF: np.ndarray, e: np.ndarray, C: int) -> PreTrendTest | None:
    """Pre-test when the pre-period estimates are too many for a calibrated joint Wald test.

    A Wald test (F reference with the effective number of clusters) that the level and the
    slope in event time of the ``q`` pre-period estimates are zero: the drift a violation of
    parallel trends produces, pooled over all leads, with two restrictions whatever ``q``.
    """
    q = est.size
    if q == 1:
        Cm = np.ones((1, 1))
    else:
        ec = (e - e.mean()) / float(np.abs(e - e.mean()).max())
        Cm = np.column_stack([np.full(q, 1.0 / q), ec / q])  # level and slope contrasts
    S = IF @ Cm
    return wald_pretest(
        est @ Cm,
        S.T @ S,
        C,
        f"Wald test that the level and slope of the {q} pre-treatment event-time effects are zero",
        scores=S,
    )


def _multipliers(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    if kind == "rademacher":
        return rng.integers(0, 2, size=size).astype(np.float64) * 2 - 1
    if kind == "webb":
        vals = np.array([-math.sqrt(1.5), -1, -math.sqrt(0.5), math.sqrt(0.5), 1, math.sqrt(1.5)])
        return vals[rng.integers(0, 6, size=size)]
    s5 = math.sqrt(5)
    p = (s5 + 1) / (2 * s5)
    return np.where(rng.random(size) < p, (1 - s5) / 2, (1 + s5) / 2)


def _multiplier_draws(
    IF: np.ndarray, replications: int, kind: str, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap deviations ``V @ IF`` (draws x parameters) of estimates whose cluster-summed
    influence functions are the columns of ``IF``; multipliers drawn per cluster, in chunks."""
    C = IF.shape[0]
    out = np.empty((replications, IF.shape[1]))
    kind = "mammen" if kind == "auto" else kind
    for start in range(0, replications, _BOOT_CHUNK):
        m = min(_BOOT_CHUNK, replications - start)
        out[start : start + m] = _multipliers(kind, (m, C), rng) @ IF
    return out


# =====================================================================================  contract
def fit_callaway_santanna(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Fit Callaway & Sant'Anna and return the headline aggregation as an EffectResult.

    Parameters
    ----------
    panel : Panel
        Analysis panel (staggered or not).
    outcome : str
        Outcome column.
    options : EstimatorOptions
        ``callaway_santanna`` (method, base period, headline aggregation, ``balance_e`` for the
        dynamic aggregation), ``covariates``, ``window``, ``alpha``, ``replications`` and
        ``bootstrap_weights`` are used.
    rng : numpy.random.Generator
        Randomness of the uniform-band bootstrap.

    Returns
    -------
    EffectResult
        Headline = ``options.callaway_santanna.aggregation``; ``event_study`` = dynamic aggregation; ``pre_trend`` =
        Wald pre-test; ``staggered`` holds the ATT(g,t) and aggregation tables.
    """
    cs = options.callaway_santanna
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = estimate_group_time_effects(
            panel,
            outcome,
            method=cs.method,
            covariates=options.covariates,
            base_period=cs.base_period,
            window=options.window,
            balance_e=cs.balance_e,
            alpha=options.alpha,
            replications=options.replications,
            bootstrap_weights=options.bootstrap_weights,
            rng=rng,
        )
    for w in caught:  # re-emit so callers see them once, from here
        warnings.warn(w.message, w.category, stacklevel=2)
    agg = res.aggregations
    i = int(np.flatnonzero(agg["type"].to_numpy() == cs.aggregation)[0])
    est = float(agg["estimate"].to_numpy()[i])
    se = float(agg["std_error"].to_numpy()[i])
    ci = (float(agg["ci_lower"].to_numpy()[i]), float(agg["ci_upper"].to_numpy()[i]))
    p = float(2 * stats.norm.sf(abs(est / se))) if se > 0 else math.nan
    dyn = res.dynamic
    d_e = dyn["event_time"].to_numpy(np.int64)
    d_est, d_se = dyn["estimate"].to_numpy(float), dyn["std_error"].to_numpy(float)
    d_lo, d_hi = dyn["ci_lower"].to_numpy(float), dyn["ci_upper"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        d_p = np.where(d_se > 0, 2 * stats.norm.sf(np.abs(d_est / d_se)), np.nan)
    events = tuple(
        EventTimeEstimate(
            event_time=int(d_e[j]),
            estimate=float(d_est[j]),
            std_error=float(d_se[j]),
            ci_lower=float(d_lo[j]),
            ci_upper=float(d_hi[j]),
            p_value=float(d_p[j]),
            reference=bool(not d_se[j] > 0),
        )
        for j in range(d_e.size)
    )
    tables = StaggeredTables(
        att_gt=Table(res.att_gt),
        aggregations=Table(res.aggregations),
        dynamic=Table(dyn),
        group=Table(res.group),
        calendar=Table(res.calendar),
        uniform_band_critical_value=res.critical_value,
        method=cs.method,
        base_period=cs.base_period,
        comparison=panel.comparison,
        anticipation=panel.anticipation,
    )
    return EffectResult(
        estimator="callaway_santanna",
        outcome=outcome,
        estimate=est,
        std_error=se,
        ci_lower=ci[0],
        ci_upper=ci[1],
        p_value=p,
        alpha=options.alpha,
        inference="cluster",
        nobs=panel.nobs,
        n_units=res.n_units,
        n_treated_units=res.n_treated_units,
        n_clusters=res.n_clusters,
        n_periods=panel.n_periods,
        estimand=f"ATT ({cs.aggregation} aggregation)",
        event_study=events,
        pre_trend=_pre_trend(panel, outcome, options, rng, res),
        warnings=res.warnings,
        staggered=tables,
    )


def _pre_trend(
    panel: Panel,
    outcome: str,
    options: EstimatorOptions,
    rng: np.random.Generator,
    res: GroupTimeEffects,
) -> PreTrendTest | None:
    """The analytic pre-test, or by randomisation when inference is for few treated clusters."""
    mode = resolve_pretrend(options)
    if mode == "none":
        return None
    if mode == "wald":
        return res.pre_trend
    leads = res.dynamic.loc[
        (res.dynamic["event_time"] < 0) & (res.dynamic["std_error"] > 0), "event_time"
    ]
    if leads.empty:
        return res.pre_trend
    e = leads.to_numpy(np.int64)
    test = randomization_pretest(
        panel,
        outcome,
        options,
        rng,
        lead_times=e.tolist(),
        ref=-1 - panel.anticipation,
        window=(int(-e.min()), options.window[1] if options.window else panel.n_periods),
        fit=_fit_without_band,
        statistic=_lead_drift,
    )
    return test if test is not None else res.pre_trend


def _fit_without_band(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    # the randomisation re-fits need no uniform band and keep the caller's window as given
    window = options.window if options.window and options.window[1] < panel.n_periods else None
    return fit_callaway_santanna(
        panel, outcome, dataclasses.replace(options, replications=0, window=window), rng
    )


def _lead_drift(res: EffectResult) -> float:
    """Randomisation statistic: squared z of the level plus the slope of the pre-period effects.

    ``z_level = sum_e a_e / sqrt(sum_e se_e^2)`` and ``z_slope = sum_e c_e a_e /
    sqrt(sum_e c_e^2 se_e^2)`` with ``c_e`` the centred event time: a differential linear trend
    moves the level (varying base: every short difference is the slope) or the slope
    (universal base), where a sum of squared t of many short differences has almost no power.
    Covariances are ignored: the randomisation distribution, not a formula, calibrates it.
    """
    if res.staggered is None:
        return math.nan
    dyn = res.staggered.dynamic.frame
    pre = dyn[(dyn["event_time"] < 0) & (dyn["std_error"] > 0)]
    if pre.empty:
        return math.nan
    a = pre["estimate"].to_numpy(float)
    v = pre["std_error"].to_numpy(float) ** 2
    c = pre["event_time"].to_numpy(float)
    c = c - c.mean()
    z_level = a.sum() / math.sqrt(v.sum())
    den = float(c**2 @ v)
    z_slope = float(c @ a) / math.sqrt(den) if den > 0 else 0.0
    return float(z_level**2 + z_slope**2)


ENTRY = register(
    EstimatorEntry(
        name="callaway_santanna",
        title="staggered difference in differences (Callaway & Sant'Anna)",
        fit=fit_callaway_santanna,
        description="Callaway & Sant'Anna (2021) group-time ATTs with doubly robust, IPW or "
        "regression 2x2 comparisons, aggregated with influence-function SEs",
        capabilities=Capabilities(
            inference=("cluster",),
            staggered=True,
            event_times=True,
            covariates=True,
            auto="staggered",
        ),
    )
)
