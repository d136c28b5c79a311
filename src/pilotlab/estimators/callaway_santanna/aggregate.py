"""Callaway & Sant'Anna, stage 4 -- aggregation of the ATT(g,t) and the result tables.

The simple, dynamic (event time), group and calendar aggregations with their overall summaries,
as coefficients on the cells plus the estimated-cohort-share correction; all their
cluster-summed influence functions at once, hence analytic standard errors. Calls the bootstrap
stage, gathers what the pre-test reads and assembles :class:`GroupTimeEffects`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from pilotlab.distributions import norm_ppf
from pilotlab.estimators.callaway_santanna.bootstrap import _bootstrap
from pilotlab.estimators.callaway_santanna.cells import _CellFit
from pilotlab.estimators.callaway_santanna.prepare import _Cells, _Units
from pilotlab.estimators.callaway_santanna.pretest import _pre_period
from pilotlab.exceptions import EstimationError, Notice
from pilotlab.results import PrePeriodEstimates

AggregationName = Literal["simple", "dynamic", "group", "calendar"]


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
    pre_period : PrePeriodEstimates
        The pre-period cells and event-time averages the parallel-trends pre-test reads
        (:func:`pilotlab.diagnostics.pretrend.group_time_pretest`).
    critical_value : float
        Uniform-band critical value over event times (multiplier bootstrap; NaN if not run).
    n_clusters : int
        Number of clusters used for the influence-function variance.
    n_units, n_treated_units : int
        Units (observations for repeated cross-sections) used, and those in treated cohorts.
    warnings : tuple of Notice
        Design warnings raised while estimating (code and message).
    """

    att_gt: pd.DataFrame
    aggregations: pd.DataFrame
    dynamic: pd.DataFrame
    group: pd.DataFrame
    calendar: pd.DataFrame
    pre_period: PrePeriodEstimates
    critical_value: float
    n_clusters: int
    n_units: int
    n_treated_units: int
    warnings: tuple[Notice, ...]


def _normal_ci(est: np.ndarray, se: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    z = norm_ppf(1 - alpha / 2)
    return est - z * se, est + z * se


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


def _plan(
    att: np.ndarray,
    valid: np.ndarray,
    units: _Units,
    cells: _Cells,
    window: tuple[int, int] | None,
    balance_e: int | None,
) -> tuple[_AggPlan, np.ndarray, tuple[int, int, int, int], list[int], list[int]]:
    """Every aggregated parameter's coefficients on the cells: the plan, the cohort shares, the
    positions of the four overall summaries (simple, dynamic, group, calendar) and the columns
    and event times of the dynamic aggregation. The coefficients depend on the cohort sizes and
    on which cells are valid, never on the outcomes."""
    H = units.cohorts.size
    K = cells.g.size
    n = units.n
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
    if not d_pos:  # only a balance_e longer than every cohort's follow-up leaves none
        longest = int(Tm - cells.g[post].min())
        raise EstimationError(
            f"design.callaway_santanna.balance_e is {balance_e}, but no cohort is observed that "
            f"many periods after its start (the longest follow-up is {longest} periods), so the "
            f"dynamic aggregation has no effect to average; set balance_e to {longest} or less, "
            "or leave it out"
        )
    dyn_all = _combine(plan, "dynamic_overall", d_pos, np.full(len(d_pos), 1 / len(d_pos)))
    # calendar
    c_idx = []
    for tt in range(int(units.cohorts.min()), units.n_periods):
        kk = np.flatnonzero(post & (cells.t == tt))
        if kk.size:
            c_idx.append(_weighted(plan, "calendar", tt, kk, att, pg_cell, cells.gb, True))
    cal_all = _combine(plan, "calendar_overall", c_idx, np.full(len(c_idx), 1 / len(c_idx)))
    return plan, pg, (simple, dyn_all, group_all, cal_all), d_idx, d_e


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
    sink: list[Notice],
    reference: int = -1,
) -> GroupTimeEffects:
    """Aggregate the cells ``fit``, run the bootstrap, gather the pre-period estimates and build
    the tables."""
    H = units.cohorts.size
    C = units.n_clusters
    n = units.n
    att = fit.att
    valid = fit.valid
    e = cells.t - cells.g
    plan, pg, (simple, dyn_all, group_all, cal_all), d_idx, d_e = _plan(
        att, valid, units, cells, window, balance_e
    )
    # influence functions of all parameters at once (clusters x parameters)
    A = np.column_stack(plan.A)
    A[~valid] = 0.0
    Cw = np.column_stack(plan.Cw)
    IF = fit.agg_if(np.nan_to_num(A))
    # estimated-weights part: cluster sums of (w_i 1{G_i = g} - pg_g) / n
    WG = np.zeros((C, H + 1))
    np.add.at(WG, (units.cl, units.block), units.w)
    if units.rows is None:
        Nc = np.bincount(units.cl, minlength=C).astype(np.float64)
    else:  # cells of microdata: each cluster's share of the person rows, in units of rows
        Nc = np.bincount(units.cl, units.rows, minlength=C) * (n / units.rows.sum())
    B = (WG[:, :H] - Nc[:, None] * pg[None, :]) / n
    IF += B @ Cw
    est = np.array(plan.est)
    se = np.sqrt(np.einsum("cm,cm->m", IF, IF))
    lo, hi = _normal_ci(est, se, alpha)
    kinds = np.array(plan.kind)
    # multiplier bootstrap: uniform band over event times and the overall aggregations
    dyn_cols = np.array(d_idx)
    crit, boot = _bootstrap(
        IF,
        est,
        se,
        dyn_cols,
        [simple, dyn_all, group_all, cal_all],
        alpha,
        replications,
        bootstrap_weights,
        rng,
    )
    # what the pre-test (all pre-treatment ATT(g,t) = 0, with its fallbacks) reads
    pre_period = _pre_period(fit, att, est, se, IF, d_idx, d_e, C, reference)
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
        pre_period=pre_period,
        critical_value=crit,
        n_clusters=C,
        n_units=n,
        n_treated_units=int(np.sum(units.block < H)),
        warnings=tuple(sink),
    )
