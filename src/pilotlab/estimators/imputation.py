"""Imputation difference in differences (Borusyak, Jaravel & Spiess 2024).

The untreated potential outcome is modelled as ``Y_it(0) = alpha_i + beta_t [+ x_it' gamma]``
and fitted by (weighted) least squares on the untreated observations only (never-treated units,
and treated units before their start less any anticipation). Each treated observation's effect
is its outcome minus the imputed counterfactual, ``tau_it = Y_it - alpha_i - beta_t``, and every
estimand is a weighted average of those: the overall ATT (``simple``), by event time
(``dynamic``), by start cohort (``group``) and by calendar period (``calendar``), each with its
overall summary.

Computation. The two-way normal equations of the untreated observations are solved exactly by
eliminating the unit block: with ``n_i`` (unit weights), ``n_t`` (period weights) and the
units x periods matrix ``N`` of untreated weights, the period effects solve the ``T x T`` Schur
complement ``(diag(n_t) - N' diag(1/n_i) N) beta = b_t - N' (b_i / n_i)`` (one period fixed at
0) and ``alpha_i = (b_i - (N beta)_i) / n_i``; no unit dummy and no iteration. The same solve,
with many right-hand sides at once, gives every estimand's weights on the untreated outcomes.

Variance (BJS Theorem 3, clustered). Every estimator is linear in the outcomes,
``tau_hat = sum_it v_it Y_it``, with ``v_it = w_it`` on treated and
``v = -Omega Z0 (Z0' Omega Z0)^-1 Z1' w`` on untreated observations. The conservative variance
is ``sum_c (sum_{it in c} v_it e_it)^2`` over clusters, with ``e_it`` the untreated model's
residual on untreated observations and ``tau_hat_it - tau_tilde_it`` on treated ones, where
``tau_tilde`` averages the effects within each cohort x period cell with weights ``v^2`` (BJS eq.
8, their default partition). ``leave_out=True`` uses each unit's leave-one-out average instead
(BJS appendix A.9: the residual divided by ``1 - v_i^2 / sum_j v_j^2``), which removes the
downward bias of the averaged residuals when cells are small. Intervals use the normal
reference, as the paper's asymptotics do. The estimator is linear in the outcomes but not one
regression's coefficients, so the wild cluster bootstrap by re-projection is not offered; with
few treated clusters use randomisation over adoption dates (``permutation``). On untreated observations the
within-unit sums of ``v e`` are the unit normal equations times the period part only, so each
cluster's contribution is a clusters x periods product, never an observations x estimands one.

Pre-trend test (BJS Test 1). On the untreated observations only, the outcome is regressed on the
unit and period effects (and covariates) plus indicators of the ``K`` periods before each treated
unit's start (``K`` = ``design.window.pre``, default 8, clipped to what the data hold); the
leads and their cluster-robust covariance are handed to the common pre-test
(:func:`pilotlab.diagnostics.pretrend.apply_pretrend`). They are also the event study's rows
before the start; the rows from the start on are the imputation estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from pilotlab.data.panel import NEVER, Panel
from pilotlab.distributions import norm_ppf, norm_sf, t_ppf, t_sf
from pilotlab.estimators._events import estimand_table, event_rows, kind_table
from pilotlab.estimators._regression import is_nested, size_warnings
from pilotlab.estimators._twoway import TwoWay, sums
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.exceptions import DataError, EstimationError, Notice, notice
from pilotlab.results import (
    EffectResult,
    EventTimeEstimate,
    PrePeriodEstimates,
    StaggeredTables,
    Table,
)

__all__ = ["ImputationOptions", "fit_imputation", "imputation_effects"]

DEFAULT_LEADS = 8

Aggregation = Literal["simple", "dynamic", "group", "calendar"]


class ImputationOptions(BaseModel):
    """Options of the imputation estimator (``design.options`` in the pilot file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aggregation: Aggregation = Field(
        "simple",
        description="Headline estimand: simple (every treated unit-period from the start on, "
        "equally weighted), dynamic (mean of the event-time effects), group (start cohorts "
        "weighted by size) or calendar (mean over periods).",
    )
    leave_out: bool = Field(
        False,
        description="Variance with leave-one-out averages of the effects in each cohort and "
        "period (Borusyak, Jaravel & Spiess, appendix A.9) instead of the plain averages.",
    )


# ------------------------------------------------------------------------------- the estimator
@dataclass(frozen=True)
class ImputationEffects:
    """Everything the imputation fit estimates (tables and the pre-test's leads)."""

    cells: pd.DataFrame
    aggregations: pd.DataFrame
    dynamic: pd.DataFrame
    group: pd.DataFrame
    calendar: pd.DataFrame
    pre_period: PrePeriodEstimates | None
    leads: pd.DataFrame
    n_units: int
    n_treated_units: int
    n_clusters: int
    nobs: int
    warnings: tuple[Notice, ...]


def _column_names(covariates: tuple[str, ...], panel: Panel) -> np.ndarray | None:
    if not covariates:
        return None
    for c in covariates:
        if c not in panel.frame.columns:
            raise DataError(
                f"covariate column '{c}' (design.covariates) is not in the data; add it to the "
                "data file or remove it from design.covariates."
            )
    X: np.ndarray = panel.frame[list(covariates)].to_numpy(np.float64)
    return X


def imputation_effects(
    panel: Panel,
    outcome: str,
    *,
    covariates: tuple[str, ...] = (),
    window: tuple[int, int] | None = None,
    leave_out: bool = False,
    alpha: float = 0.05,
) -> ImputationEffects:
    """Fit the imputation estimator and every aggregation with its BJS standard error."""
    notes: list[Notice] = []
    if panel.layout != "panel":
        raise EstimationError(
            "design.estimator: imputation needs panel data (data.layout: panel); use "
            "callaway_santanna for repeated cross-sections"
        )
    if outcome not in panel.frame.columns:
        raise DataError(f"outcome column '{outcome}' is not in the panel; fix the outcome name.")
    T = panel.n_periods
    k_ant = int(panel.anticipation)
    u_all, t_all = panel.unit, panel.time
    y_all = panel.y(outcome).astype(np.float64)
    w_all = panel.weight.astype(np.float64)
    cl_all = panel.cluster
    X_all = _column_names(covariates, panel)
    g_unit = np.asarray(panel.first_treated, dtype=np.int64)
    g_row = g_unit[u_all]
    treated_unit_row = g_row != NEVER
    D = treated_unit_row & (t_all >= np.where(treated_unit_row, g_row, 0) - k_ant)
    positive = w_all > 0
    # units without an untreated observation have no unit effect: their effects cannot be imputed
    has_untreated = np.bincount(u_all[~D & positive], minlength=panel.n_units) > 0
    lost = ~has_untreated[u_all]
    if lost.any():
        n_lost = int(np.unique(u_all[lost]).size)
        notes.append(
            notice(
                "imputation-no-untreated-period",
                f"{n_lost} treated unit(s) have no period before their start (less anticipation), "
                "so their counterfactual cannot be imputed; they were left out.",
            )
        )
    # periods without an untreated observation have no period effect
    has_t = np.bincount(t_all[~D & positive & ~lost], minlength=T) > 0
    lost_t = D & ~has_t[t_all] & ~lost
    if lost_t.any():
        notes.append(
            notice(
                "imputation-no-comparison-period",
                f"{int(lost_t.sum())} treated observation(s) fall in periods in which every unit "
                "is treated, so no comparison fixes their period effect; they were left out "
                "(add never-treated comparison units to estimate them).",
            )
        )
    keep = ~lost & ~lost_t & positive
    if not np.any(keep & D & (t_all >= np.where(treated_unit_row, g_row, 0))):
        raise EstimationError(
            "the imputation estimator finds no treated observation whose counterfactual it can "
            "impute: it needs, for each treated unit, periods before its start and comparison "
            "units observed in the periods after it"
        )
    u0, t_idx = u_all[keep], t_all[keep]
    y, w, cl = y_all[keep], w_all[keep], cl_all[keep]
    X = X_all[keep] if X_all is not None else None
    g = g_row[keep]
    Dk = D[keep]
    # compact codes (units, clusters) of the rows kept
    units_kept, u = np.unique(u0, return_inverse=True)
    n_u = units_kept.size
    cl_codes, c = np.unique(cl, return_inverse=True)
    C = cl_codes.size
    untr = ~Dk
    fe = TwoWay.build(
        u[untr],
        t_idx[untr],
        w[untr],
        n_u,
        T,
        "the untreated observations do not connect every period through common units, so "
        "the unit and period effects of the imputation estimator are not identified; add "
        "comparison units observed in every period, or use design.estimator: callaway_santanna",
    )
    u0r, t0r, w0 = u[untr], t_idx[untr], w[untr]
    # covariates: partial the two-way effects out on the untreated observations (FWL)
    gamma = np.zeros(0)
    psi_u = psi_t = None
    Xt0 = None
    if X is not None:
        X0 = X[untr]
        bu, bt = sums(u0r, t0r, X0 * w0[:, None], n_u, T)
        psi_u, psi_t = fe.solve(bu, bt)
        Xt0 = X0 - psi_u[u0r] - psi_t[t0r]
        bu_y, bt_y = sums(u0r, t0r, (y[untr] * w0)[:, None], n_u, T)
        ay, by = fe.solve(bu_y, bt_y)
        yt0 = y[untr] - ay[u0r, 0] - by[t0r, 0]
        XtX = Xt0.T @ (Xt0 * w0[:, None])
        if np.linalg.cond(XtX) > 1e12:
            raise EstimationError(
                f"design.covariates ({', '.join(covariates)}): a covariate is constant within "
                "units or periods among the untreated observations (or collinear with another), "
                "so the imputation model cannot use it; remove it from design.covariates"
            )
        gamma = np.linalg.solve(XtX, Xt0.T @ (w0 * yt0))
        y_adj = y - X @ gamma
    else:
        y_adj = y
    bu, bt = sums(u0r, t0r, (y_adj[untr] * w0)[:, None], n_u, T)
    a_hat, b_hat = fe.solve(bu, bt)
    fitted = a_hat[u, 0] + b_hat[t_idx, 0]
    resid = y_adj - fitted  # untreated rows: residuals; treated rows: tau_hat
    eps0 = resid[untr]
    tr = Dk
    tau = resid[tr]
    u1, t1, w1, c1 = u[tr], t_idx[tr], w[tr], c[tr]
    g1 = g[tr]
    cohorts = np.unique(g1)
    h1 = np.searchsorted(cohorts, g1)
    cell_code = h1 * T + t1
    cell_keys, cell = np.unique(cell_code, return_inverse=True)
    n_cell = cell_keys.size
    cell_g = cohorts[cell_keys // T]
    cell_t = cell_keys % T
    cell_e = cell_t - cell_g
    W_cell = np.bincount(cell, weights=w1, minlength=n_cell)
    S_cell = np.bincount(cell, weights=w1 * tau, minlength=n_cell)
    # BJS tau_tilde: the v^2-weighted mean of the effects in each cell (v proportional to w)
    w2 = w1 * w1
    W2_cell = np.bincount(cell, weights=w2, minlength=n_cell)
    tau_tilde = np.bincount(cell, weights=w2 * tau, minlength=n_cell) / W2_cell
    r = tau - tau_tilde[cell]
    if leave_out:
        share = w2 / W2_cell[cell]
        single = share >= 1 - 1e-12
        if single.any():
            notes.append(
                notice(
                    "imputation-leave-out-single",
                    f"{int(np.unique(cell[single]).size)} cohort-period cell(s) hold a single "
                    "unit, where the leave-one-out average of design.options.leave_out is "
                    "undefined; their residuals use the plain average.",
                )
            )
        r = np.where(single, r, r / np.where(single, 1.0, 1.0 - share))
    # ------------------------------------------------------------------ estimands on the cells
    post = cell_e >= 0
    e_use = cell_e.copy()
    pre_w, post_w = window if window is not None else (None, None)
    if post_w is not None:
        max_e = int(cell_e.max())
        if post_w > max_e:
            raise EstimationError(
                f"design.window.post is {post_w}, but no start cohort is observed more than "
                f"{max_e} period(s) after its start; set design.window.post to at most {max_e}"
            )
        e_use = np.where(cell_e > post_w, post_w, cell_e)
    kinds: list[str] = []
    labels: list[int] = []
    cols: list[np.ndarray] = []

    def add(kind: str, label: int, mask: np.ndarray) -> None:
        m = np.where(mask, 1.0, 0.0)
        tot = float(m @ W_cell)
        if tot <= 0:
            return
        kinds.append(kind)
        labels.append(label)
        cols.append(m / tot)

    add("simple", -1, post)
    for ev in np.unique(e_use):
        add("dynamic", int(ev), e_use == ev)
    for gg in cohorts:
        add("group", int(gg), post & (cell_g == gg))
    for tt in np.unique(cell_t[post]):
        add("calendar", int(tt), post & (cell_t == tt))
    M = np.column_stack(cols)
    kinds_a = np.array(kinds)

    def combine(kind: str, members: np.ndarray, weights: np.ndarray) -> None:
        kinds.append(kind)
        labels.append(-1)
        cols.append(M[:, members] @ (weights / weights.sum()))

    dyn = np.flatnonzero((kinds_a == "dynamic") & (np.array(labels) >= 0))
    combine("dynamic_overall", dyn, np.ones(dyn.size))
    grp = np.flatnonzero(kinds_a == "group")
    unit_w = np.bincount(u1, weights=w1, minlength=n_u) / np.maximum(
        np.bincount(u1, minlength=n_u), 1
    )  # each treated unit's (mean) weight
    first_h = np.full(n_u, -1)
    first_h[u1] = h1
    size_g = np.bincount(
        first_h[first_h >= 0], weights=unit_w[first_h >= 0], minlength=cohorts.size
    )
    grp_labels = np.array([labels[i] for i in grp])
    combine("group_overall", grp, size_g[np.searchsorted(cohorts, grp_labels)])
    cal = np.flatnonzero(kinds_a == "calendar")
    combine("calendar_overall", cal, np.ones(cal.size))
    M = np.column_stack(cols)
    est = M.T @ S_cell
    # ------------------------------------------------------------------ variance (BJS Thm 3)
    A_u = sp.csr_matrix((w1, (u1, cell)), shape=(n_u, n_cell))
    A_t = sp.csr_matrix((w1, (t1, cell)), shape=(T, n_cell))
    b_u = np.asarray(A_u @ M)
    b_t = np.asarray(A_t @ M)
    _, th_t = fe.solve(b_u, b_t)
    E = np.bincount(c[untr] * T + t0r, weights=w0 * eps0, minlength=C * T).reshape(C, T)
    psi = -(E @ th_t)
    if X is not None and Xt0 is not None and psi_u is not None and psi_t is not None:
        # theta_x = (X~' W X~)^-1 (X1' w - X0' W A0 S b): the covariates' share of v
        X1 = X[tr]
        Xc = np.empty((n_cell, X1.shape[1]))
        for j in range(X1.shape[1]):  # a handful of covariates
            Xc[:, j] = np.bincount(cell, weights=w1 * X1[:, j], minlength=n_cell)
        b_x = Xc.T @ M
        cross = psi_u.T @ b_u + psi_t.T @ b_t
        XtX = Xt0.T @ (Xt0 * w0[:, None])
        th_x = np.linalg.solve(XtX, b_x - cross)
        th_t = th_t - psi_t @ th_x
        XE = np.empty((C, X.shape[1]))
        for j in range(X.shape[1]):  # a handful of covariates
            XE[:, j] = np.bincount(c[untr], weights=w0 * eps0 * X[untr][:, j], minlength=C)
        psi = -(E @ th_t) - XE @ th_x
    R = sp.csr_matrix((w1 * r, (c1, cell)), shape=(C, n_cell))
    psi = psi + np.asarray(R @ M)
    se = np.sqrt(np.einsum("ck,ck->k", psi, psi))
    z = float(norm_ppf(1 - alpha / 2))
    lo, hi = est - z * se, est + z * se
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(se > 0, 2 * norm_sf(np.abs(est / np.where(se > 0, se, 1.0))), np.nan)
    kinds_all = np.array(kinds)
    labs = np.array(labels)
    period_labels = panel.period_labels

    inference = (est, se, lo, hi, p)
    dynamic = kind_table(inference, kinds_all, labs, "dynamic", "event_time", int)
    group = kind_table(inference, kinds_all, labs, "group", "group", lambda v: period_labels[v])
    calendar = kind_table(
        inference, kinds_all, labs, "calendar", "time", lambda v: period_labels[v]
    )
    overall = [
        ("simple", "simple"),
        ("dynamic", "dynamic_overall"),
        ("group", "group_overall"),
        ("calendar", "calendar_overall"),
    ]
    idx = [int(np.flatnonzero(kinds_all == k)[0]) for _, k in overall]
    aggregations = estimand_table(inference, np.array(idx), "type", [o[0] for o in overall])
    n_tr_cell = np.bincount(cell, minlength=n_cell)
    cells = pd.DataFrame(
        {
            "group": [period_labels[int(v)] for v in cell_g],
            "time": [period_labels[int(v)] for v in cell_t],
            "group_index": cell_g,
            "time_index": cell_t,
            "event_time": cell_e,
            "att": S_cell / W_cell,
            "n_treated": n_tr_cell,
            "post": cell_e >= 0,
        }
    )
    leads_table, pre_period = _pretest(
        panel, u, t_idx, c, C, w, y, X, g, Dk, untr, fe, pre_w, k_ant, alpha, cohorts
    )
    return ImputationEffects(
        cells=cells,
        aggregations=aggregations,
        dynamic=dynamic,
        group=group,
        calendar=calendar,
        pre_period=pre_period,
        leads=leads_table,
        n_units=n_u,
        n_treated_units=int(np.unique(u1).size),
        n_clusters=C,
        nobs=int(keep.sum()),
        warnings=tuple(notes),
    )


def _pretest(
    panel: Panel,
    u: np.ndarray,
    t: np.ndarray,
    c: np.ndarray,
    C: int,
    w: np.ndarray,
    y: np.ndarray,
    X: np.ndarray | None,
    g: np.ndarray,
    D: np.ndarray,
    untr: np.ndarray,
    fe: TwoWay,
    pre: int | None,
    k_ant: int,
    alpha: float,
    cohorts: np.ndarray,
) -> tuple[pd.DataFrame, PrePeriodEstimates | None]:
    """BJS Test 1: leads of the start among the untreated observations, with unit and period
    effects (and covariates), cluster-robust (CR1, as the regression estimators)."""
    T = panel.n_periods
    max_leads = int(cohorts.max()) - k_ant - 1  # at least one untreated period left unled
    if pre is not None and pre > max(max_leads, 0):
        raise EstimationError(
            f"design.window.pre is {pre}, but no start cohort has more than {max(max_leads, 0)} "
            "period(s) before its start (less anticipation) besides the one the leads are "
            f"compared with; set design.window.pre to at most {max(max_leads, 1)}"
        )
    K = min(pre if pre is not None else DEFAULT_LEADS, max_leads)
    empty = pd.DataFrame(
        columns=["event_time", "estimate", "std_error", "ci_lower", "ci_upper", "p_value"]
    )
    if K < 1:
        return empty, None
    u0, t0, c0, w0, y0 = u[untr], t[untr], c[untr], w[untr], y[untr]
    g0 = g[untr]
    lead = np.where(g0 != NEVER, t0 - np.where(g0 != NEVER, g0, 0), 0)  # event time
    times = [-1 - k_ant - j for j in range(K)]  # -1-k, -2-k, ...
    L = np.zeros((u0.size, K))
    for j, ev in enumerate(times):  # K lead columns
        L[:, j] = (g0 != NEVER) & (lead == ev)
    present = np.asarray(L.any(axis=0), dtype=bool)
    L, times = L[:, present], [tt for j, tt in enumerate(times) if bool(present[j])]
    if not times:
        return empty, None
    Z = L if X is None else np.column_stack([L, X[untr]])
    n_u = fe.n_u.size
    bu, bt = sums(u0, t0, Z * w0[:, None], n_u, T)
    zu, zt = fe.solve(bu, bt)
    Zt = Z - zu[u0] - zt[t0]
    bu, bt = sums(u0, t0, (y0 * w0)[:, None], n_u, T)
    yu, yt_ = fe.solve(bu, bt)
    yt = y0 - yu[u0, 0] - yt_[t0, 0]
    ZtZ = Zt.T @ (Zt * w0[:, None])
    if np.linalg.cond(ZtZ) > 1e12:
        return empty, None
    inv = np.linalg.inv(ZtZ)
    beta = inv @ (Zt.T @ (w0 * yt))
    e = yt - Zt @ beta
    k = Z.shape[1]
    scores = np.empty((C, k))
    for j in range(k):  # a handful of columns
        scores[:, j] = np.bincount(c0, weights=w0 * e * Zt[:, j], minlength=C)
    n = u0.size
    n_t = int(np.count_nonzero(fe.N.sum(axis=0) > 0))
    units_in_cluster = is_nested(u0, c0)
    periods_in_cluster = is_nested(t0, c0)
    K_params = (
        k
        + n_u
        + n_t
        - 1
        - (n_u - 1 if units_in_cluster else 0)
        - (n_t - 1 if periods_in_cluster else 0)
    )
    factor = C / (C - 1) * (n - 1) / max(n - K_params, 1) if C > 1 else math.nan
    V = factor * inv @ (scores.T @ scores) @ inv
    q = len(times)
    b = beta[:q]
    Vq = V[:q, :q]
    s = np.sqrt(np.clip(np.diag(Vq), 0, None))
    df = max(C - 1, 1)
    qt = float(t_ppf(1 - alpha / 2, df))
    with np.errstate(invalid="ignore", divide="ignore"):
        pv = np.where(s > 0, 2 * t_sf(np.abs(b / np.where(s > 0, s, 1.0)), df), np.nan)
    table = pd.DataFrame(
        {
            "event_time": times,
            "estimate": b,
            "std_error": s,
            "ci_lower": b - qt * s,
            "ci_upper": b + qt * s,
            "p_value": pv,
        }
    ).sort_values("event_time", ignore_index=True)
    order = np.argsort(times)
    pre_period = PrePeriodEstimates(
        kind="leads",
        event_times=tuple(int(times[i]) for i in order),
        estimates=b[order],
        std_errors=s[order],
        cov=Vq[np.ix_(order, order)],
        n_clusters=C,
        scores=(math.sqrt(factor) * scores @ inv[:, :q])[:, order],
        reference=-K - 1 - k_ant,
        window=(K, 0),
    )
    return table, pre_period


def _options(options: EstimatorOptions) -> ImputationOptions:
    own = options.estimator
    return own if isinstance(own, ImputationOptions) else ImputationOptions()


def fit_imputation(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Fit the imputation estimator; the headline is ``design.options.aggregation``."""
    if options.inference not in ("cluster",):
        raise EstimationError(
            f"design.inference.method: '{options.inference}' is not available for the "
            "imputation estimator; use cluster, permutation or auto"
        )
    opts = _options(options)
    res = imputation_effects(
        panel,
        outcome,
        covariates=tuple(options.covariates),
        window=options.window,
        leave_out=opts.leave_out,
        alpha=options.alpha,
    )
    agg = res.aggregations
    row = agg[agg["type"] == opts.aggregation].iloc[0]
    events: list[EventTimeEstimate] = event_rows(res.leads)
    events += event_rows(res.dynamic)
    events.sort(key=lambda ev: ev.event_time)
    warnings = size_warnings(panel, "cluster") + res.warnings
    tables = StaggeredTables(
        att_gt=Table(res.cells),
        aggregations=Table(agg),
        dynamic=Table(res.dynamic),
        group=Table(res.group),
        calendar=Table(res.calendar),
        method="imputation",
        base_period="",
        comparison="not yet treated",
        anticipation=panel.anticipation,
    )
    return EffectResult(
        estimator="imputation",
        outcome=outcome,
        estimate=float(row.estimate),
        std_error=float(row.std_error),
        ci_lower=float(row.ci_lower),
        ci_upper=float(row.ci_upper),
        p_value=float(row.p_value),
        alpha=options.alpha,
        inference="cluster",
        nobs=res.nobs,
        n_units=res.n_units,
        n_treated_units=res.n_treated_units,
        n_clusters=res.n_clusters,
        n_periods=panel.n_periods,
        estimand=f"ATT ({opts.aggregation} aggregation)",
        event_study=tuple(events),
        pre_period=res.pre_period,
        warnings=warnings,
        staggered=tables,
    )


ENTRY = register(
    EstimatorEntry(
        name="imputation",
        title="imputation difference in differences (Borusyak, Jaravel & Spiess)",
        fit=fit_imputation,
        description="Borusyak, Jaravel & Spiess (2024): unit and period effects fitted on "
        "untreated observations only, each treated outcome compared with its imputed "
        "counterfactual, averaged overall, by event time, cohort and period",
        capabilities=Capabilities(
            inference=("cluster",),
            layouts=("panel",),
            staggered=True,
            event_times=True,
            covariates=True,
        ),
        options=ImputationOptions,
        assumptions=(
            "Without the pilot, each area's outcome would have been its own usual level plus a "
            "change shared by all areas in each period; both are estimated only from periods "
            "in which an area was not (yet) treated.",
            "The effect may differ between areas and over time: every treated period is "
            "compared with its own estimated outcome without the pilot.",
        ),
    )
)
