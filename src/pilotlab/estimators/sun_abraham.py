"""Interaction-weighted event study (Sun & Abraham 2021).

One regression of the outcome on unit and period effects and a full set of start-cohort x
event-time indicators (every event time but the reference ``-1 - anticipation``), with a clean
comparison group: the never-treated units, or (``control: last_treated``, or ``auto`` when no
unit is never treated) the last cohort to start, with the periods from its start on left out.
Each cohort's coefficient at event time ``e`` is then a comparison of that cohort with the
comparison group only, so it is free of the contamination by other event times that makes a
two-way event study biased under heterogeneous effects. The coefficients are averaged with the
cohorts' shares of the treated observations:

* ``dynamic`` (the event study): at event time ``e``, cohort ``g`` weighs
  ``n_ge / sum_g' n_g'e`` (Sun & Abraham's interaction-weighted estimator);
* ``simple``: every treated unit-period from the start on equally (the shares ``n_ge / n``);
* ``group``: each cohort over its post-start event times; ``calendar``: the cohorts observed in
  each period (when the event times are not binned);

and each with its overall summary. Standard errors are cluster-robust (CR1, as the other
regression estimators) and account for the estimated shares (Sun & Abraham, Proposition 6): each
cluster's contribution to an average is its regression score plus its effect on the shares,
``sum_(g,e) (delta_ge - average) m_c,ge / n``, with ``m_c,ge`` its observations in the cell.

Computation. Without binned end points or covariates the regression separates: the comparison
group's two-way fit gives the period effects and each cohort's own two-way fit its
cohort-specific period effects, so every coefficient and every cluster score comes from a
``T x T`` solve per cohort (:mod:`pilotlab.estimators._twoway`), never from dense indicator
columns. Small designs (and any with ``design.window`` binning or covariates) are fitted as one
least-squares regression with the indicators absorbed as the other regression estimators are,
whose parts the result exposes (the wild cluster bootstrap re-projects them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from pilotlab.data.panel import NEVER, Panel
from pilotlab.distributions import t_sf
from pilotlab.estimators._events import estimand_table, event_rows, kind_table
from pilotlab.estimators._regression import fit_panel, is_nested, size_warnings, t_quantile
from pilotlab.estimators._twoway import TwoWay, sums
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.exceptions import DataError, EstimationError, Notice, notice
from pilotlab.results import (
    EffectResult,
    EventTimeEstimate,
    LinearParts,
    PrePeriodEstimates,
    StaggeredTables,
    Table,
)

__all__ = ["SunAbrahamOptions", "fit_sun_abraham"]

#: Designs up to ``SMALL`` observations x coefficients, or up to ``DENSE_BUDGET`` with at most
#: ``FEW_CLUSTERS`` clusters (where the wild cluster bootstrap is the honest inference), are
#: fitted as one explicit regression whose parts the result exposes; larger ones by the
#: separated solves (same numbers, no wild bootstrap).
SMALL = 200_000
FEW_CLUSTERS = 60
DENSE_BUDGET = 8_000_000


class SunAbrahamOptions(BaseModel):
    """Options of the Sun & Abraham estimator (``design.options`` in the pilot file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    control: Literal["auto", "never_treated", "last_treated"] = Field(
        "auto",
        description="Comparison group: never-treated units, or the last cohort to start (its "
        "periods from the start on are left out); auto uses never-treated units when there "
        "are any.",
    )
    aggregation: Literal["simple", "dynamic", "group", "calendar"] = Field(
        "simple",
        description="Headline: simple (every treated unit-period from the start on), dynamic "
        "(mean of the event-time effects), group (cohorts weighted by size) or calendar.",
    )


@dataclass(frozen=True)
class _Cells:
    """The cohort x event-time coefficients, their clusters' scores and observation counts."""

    g: np.ndarray  # cohort (period index)
    e: np.ndarray  # event time (binned)
    delta: np.ndarray
    n: np.ndarray  # weighted observations per cell
    scores: np.ndarray  # (C, cells) regression scores, already scaled (vcov = scores' scores)
    m: sp.csr_matrix  # (C, cells) weighted observations of each cluster in each cell
    binned: bool


def _options(options: EstimatorOptions) -> SunAbrahamOptions:
    own = options.estimator
    return own if isinstance(own, SunAbrahamOptions) else SunAbrahamOptions()


def _design(
    panel: Panel, control: str, notes: list[Notice]
) -> tuple[Panel, np.ndarray, np.ndarray]:
    """The panel (truncated for a last-treated comparison), the per-row cohort (NEVER for the
    comparison group) and the treated cohorts."""
    g_unit = np.asarray(panel.first_treated, dtype=np.int64)
    has_never = bool(np.any(g_unit == NEVER))
    if control == "never_treated" and not has_never:
        raise EstimationError(
            "design.options.control is never_treated, but no unit is never treated; use "
            "control: last_treated (the last cohort to start serves as comparison) or auto"
        )
    use_last = control == "last_treated" or (control == "auto" and not has_never)
    k = int(panel.anticipation)
    if use_last:
        last = int(g_unit[g_unit != NEVER].max())
        end = last - k - 1
        if end < 1:
            raise EstimationError(
                "the last cohort to start has fewer than two periods before its start, so it "
                "cannot serve as the comparison group; add never-treated units"
            )
        if control == "auto":
            notes.append(
                notice(
                    "no-never-treated",
                    f"no never-treated units: the last cohort to start "
                    f"({panel.period_labels[last]}) serves as the comparison group and periods "
                    f"from {panel.period_labels[end + 1]} on are left out.",
                )
            )
        panel = panel.truncate_periods(end)
        g_unit = np.where(g_unit == last, NEVER, g_unit)
    treated = g_unit[g_unit != NEVER]
    cohorts = np.unique(treated[treated - k > 0]) if treated.size else treated
    early = (g_unit != NEVER) & ~np.isin(g_unit, cohorts)
    if early.any():
        notes.append(
            notice(
                "cs-no-pre-period",
                f"{int(early.sum())} unit(s) treated from the first period have no period "
                "before their start and were left out.",
            )
        )
        panel = panel.subset_units(~early)
        g_unit = g_unit[~early]
    g_row = g_unit[panel.unit]
    if cohorts.size == 0:
        raise EstimationError(
            "the Sun & Abraham estimator finds no start cohort with a period before its start "
            "and a comparison group; it needs units first treated after the first period"
        )
    return panel, g_row, cohorts


def _event_times(
    panel: Panel, g_row: np.ndarray, window: tuple[int, int] | None
) -> tuple[np.ndarray, bool]:
    """Each row's event time (binned into the window's end points), and whether any was binned."""
    tr = g_row != NEVER
    e = np.where(tr, panel.time - np.where(tr, g_row, 0), 0)
    if window is None:
        return e, False
    pre, post = window
    e_tr = e[tr]
    if post > int(e_tr.max()):
        raise EstimationError(
            f"design.window.post is {post}, but no start cohort is observed more than "
            f"{int(e_tr.max())} period(s) after its start; set design.window.post to at most "
            f"{int(e_tr.max())}"
        )
    if pre > -int(e_tr.min()):
        raise EstimationError(
            f"design.window.pre is {pre}, but no start cohort is observed more than "
            f"{-int(e_tr.min())} period(s) before its start; set design.window.pre to at most "
            f"{-int(e_tr.min())}"
        )
    clipped = np.clip(e, -pre, post)
    return clipped, bool(np.any(clipped[tr] != e_tr))


def _dense(
    panel: Panel,
    outcome: str,
    g_row: np.ndarray,
    e: np.ndarray,
    ref: int,
    options: EstimatorOptions,
    binned: bool,
) -> tuple[_Cells, object]:
    """One regression with a column per (cohort, event time): coefficients and scores."""
    tr = (g_row != NEVER) & (e != ref)
    key = np.where(tr, g_row * 100_003 + (e + 50_000), -1)
    cell_keys, col = np.unique(key[tr], return_inverse=True)
    cg = cell_keys // 100_003
    ce = cell_keys % 100_003 - 50_000
    X = np.zeros((panel.nobs, cell_keys.size))
    X[np.flatnonzero(tr), col] = 1.0
    names = tuple(f"g{int(a)}e{int(b):+d}" for a, b in zip(cg, ce, strict=True))
    fit = fit_panel(panel, outcome, X, names, replace(options, inference="cluster"))
    p = cell_keys.size
    assert fit.cluster_scores is not None
    P = fit.cluster_scores @ fit.xtx_inv  # (C, k): vcov = factor * P'P
    PtP = P.T @ P
    d = np.diag(PtP)[:p]
    j = int(np.argmax(d))
    factor = float(fit.vcov[j, j] / d[j]) if d[j] > 0 else 1.0
    w = panel.weight
    n = np.bincount(col, weights=w[tr], minlength=p)
    C = fit.n_clusters
    m = sp.csr_matrix((w[tr], (panel.cluster[tr], col)), shape=(C, p))
    cells = _Cells(cg, ce, fit.beta[:p].copy(), n, math.sqrt(factor) * P[:, :p], m, binned)
    return cells, fit


def _separated(
    panel: Panel, outcome: str, g_row: np.ndarray, e: np.ndarray, ref: int, cohorts: np.ndarray
) -> _Cells:
    """The same coefficients and scores from one two-way solve per block (no indicators)."""
    T = panel.n_periods
    u, t, w, cl = panel.unit, panel.time, panel.weight, panel.cluster
    y = panel.y(outcome).astype(np.float64)
    C = panel.n_clusters
    N = panel.n_units
    block = np.where(g_row == NEVER, 0, np.searchsorted(cohorts, g_row) + 1)
    lam: list[np.ndarray] = []
    Q: list[np.ndarray] = []
    n_params = 0
    for b in range(cohorts.size + 1):  # one solve per cohort, not per unit or period
        rows = block == b
        _, ub = np.unique(u[rows], return_inverse=True)  # the block's own units, recoded
        tb, wb = t[rows], w[rows]
        n_b = int(ub.max()) + 1
        fe = TwoWay.build(
            ub,
            tb,
            wb,
            n_b,
            T,
            "a start cohort or the comparison group is not observed in connected periods, so "
            "the Sun & Abraham coefficients are not identified; check the data",
        )
        bu, bt = sums(ub, tb, (y[rows] * wb)[:, None], n_b, T)
        a, beta = fe.solve(bu, bt)
        resid = y[rows] - a[ub, 0] - beta[tb, 0]
        E = np.bincount(cl[rows] * T + tb, weights=wb * resid, minlength=C * T).reshape(C, T)
        q = np.zeros((C, T))
        q[:, fe.keep_t] = scipy.linalg.cho_solve(fe.chol, E[:, fe.keep_t].T).T
        lam.append(beta[:, 0])
        Q.append(q)
        n_params += fe.keep_t.size
    ctrl_t = np.bincount(t[block == 0], weights=w[block == 0], minlength=T) > 0
    cg_l, ce_l, d_l, s_l = [], [], [], []
    for h, g in enumerate(cohorts):
        rows = block == h + 1
        ts = np.unique(t[rows])
        r_t = int(g) + ref
        if r_t not in set(ts.tolist()):
            raise EstimationError(
                f"the cohort starting in {panel.period_labels[int(g)]} is not observed in its "
                "reference period (the period before its start), so its Sun & Abraham "
                "coefficients are not identified; check the data"
            )
        ts = ts[ts != r_t]
        if not ctrl_t[ts].all():
            raise EstimationError(
                "the comparison group is not observed in every period a start cohort is, so the "
                "Sun & Abraham coefficients are not identified there; check the data"
            )
        lg, l0 = lam[h + 1], lam[0]
        d_l.append((lg[ts] - lg[r_t]) - (l0[ts] - l0[r_t]))
        qg, q0 = Q[h + 1], Q[0]
        s_l.append((qg[:, ts] - qg[:, [r_t]]) - (q0[:, ts] - q0[:, [r_t]]))
        cg_l.append(np.full(ts.size, g))
        ce_l.append(ts - g)
    cg = np.concatenate(cg_l)
    ce = np.concatenate(ce_l)
    scores = np.concatenate(s_l, axis=1)
    key_rows = g_row * (T + 1) + (panel.time - np.where(g_row == NEVER, 0, g_row))
    tr = (g_row != NEVER) & (e != ref)
    keys = cg * (T + 1) + ce
    order = np.argsort(keys)
    pos = order[np.searchsorted(keys[order], key_rows[tr])]
    n = np.bincount(pos, weights=w[tr], minlength=keys.size)
    m = sp.csr_matrix((w[tr], (cl[tr], pos)), shape=(C, keys.size))
    # CR1 as the regression estimators: K counts the coefficients and the fixed effects not
    # nested in the clusters (units of each block, periods of each block's own fit)
    n_obs = u.size
    K = cg.size + N + T - 1
    if is_nested(u, cl):
        K -= N - 1
    factor = C / (C - 1) * (n_obs - 1) / (n_obs - K) if C > 1 else math.nan
    del n_params
    return _Cells(cg, ce, np.concatenate(d_l), n, math.sqrt(factor) * scores, m, False)


def fit_sun_abraham(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Fit the interaction-weighted event study; the headline is ``design.options.aggregation``."""
    if options.inference != "cluster":
        raise EstimationError(
            f"design.inference.method: '{options.inference}' is not available for the "
            "sun_abraham estimator; use cluster, wild_bootstrap, permutation or auto"
        )
    if outcome not in panel.frame.columns:
        raise DataError(f"outcome column '{outcome}' is not in the panel; fix the outcome name.")
    opts = _options(options)
    notes: list[Notice] = []
    panel, g_row, cohorts = _design(panel, opts.control, notes)
    ref = -1 - int(panel.anticipation)
    e, binned = _event_times(panel, g_row, options.window)
    n_coef = int(np.unique((g_row * 1000 + e)[(g_row != NEVER) & (e != ref)]).size)
    fit = None
    size = panel.nobs * n_coef
    explicit = size <= SMALL or (panel.n_clusters <= FEW_CLUSTERS and size <= DENSE_BUDGET)
    if options.covariates or binned or explicit:
        cells, fit = _dense(panel, outcome, g_row, e, ref, options, binned)
    else:
        cells = _separated(panel, outcome, g_row, e, ref, cohorts)
    n_treated = int(np.unique(panel.unit[g_row != NEVER]).size)
    return _result(panel, outcome, options, opts, cells, fit, ref, notes, n_treated)


def _result(
    panel: Panel,
    outcome: str,
    options: EstimatorOptions,
    opts: SunAbrahamOptions,
    cells: _Cells,
    fit: object,
    ref: int,
    notes: list[Notice],
    n_treated: int,
) -> EffectResult:
    labels = panel.period_labels
    g, e, delta, n = cells.g, cells.e, cells.delta, cells.n
    t = g + e
    post = e >= 0
    kinds: list[str] = []
    labs: list[int] = []
    cols: list[np.ndarray] = []

    def add(kind: str, label: int, mask: np.ndarray) -> None:
        if not mask.any():
            return
        kinds.append(kind)
        labs.append(label)
        cols.append(np.where(mask, n, 0.0) / n[mask].sum())

    add("simple", -1, post)
    for ev in np.unique(e):
        add("dynamic", int(ev), e == ev)
    for gg in np.unique(g):
        add("group", int(gg), post & (g == gg))
    if not cells.binned:
        for tt in np.unique(t[post]):
            add("calendar", int(tt), post & (t == tt))
    W = np.column_stack(cols)
    est = W.T @ delta
    # estimated-share part of each cluster's contribution: sum (delta - est) m / n_set
    with np.errstate(invalid="ignore", divide="ignore"):
        share = W * (delta[:, None] - est[None, :]) / np.where(n > 0, n, 1.0)[:, None]
    psi = cells.scores @ W + np.asarray(cells.m @ share)
    kinds_a, labs_a = np.array(kinds), np.array(labs)

    def overall(kind: str, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        members = np.flatnonzero((kinds_a == kind) & ((labs_a >= 0) if kind == "dynamic" else True))
        if members.size == 0:
            return np.zeros(W.shape[0]), np.zeros(psi.shape[0])
        wts = np.ones(members.size) if weights is None else weights[members]
        wts = wts / wts.sum()
        return W[:, members] @ wts, psi[:, members] @ wts

    size_g = np.zeros(len(kinds))
    for i in np.flatnonzero(kinds_a == "group"):
        size_g[i] = n[(g == labs_a[i]) & post].sum() / max(int(np.sum((g == labs_a[i]) & post)), 1)
    extra = [("dynamic_overall", *overall("dynamic", None))]
    extra.append(("group_overall", *overall("group", size_g)))
    if not cells.binned:
        extra.append(("calendar_overall", *overall("calendar", None)))
    for kind, wcol, pcol in extra:
        kinds.append(kind)
        labs.append(-1)
        W = np.column_stack([W, wcol])
        psi = np.column_stack([psi, pcol])
    est = W.T @ delta
    se = np.sqrt(np.einsum("ck,ck->k", psi, psi))
    C = psi.shape[0]
    df = max(C - 1, 1)
    q = t_quantile(df, options.alpha)
    lo, hi = est - q * se, est + q * se
    with np.errstate(invalid="ignore", divide="ignore"):
        pv = np.where(se > 0, 2 * t_sf(np.abs(est / np.where(se > 0, se, 1.0)), df), np.nan)
    kinds_a, labs_a = np.array(kinds), np.array(labs)

    inference = (est, se, lo, hi, pv)
    dynamic = kind_table(inference, kinds_a, labs_a, "dynamic", "event_time", int)
    group = kind_table(inference, kinds_a, labs_a, "group", "group", lambda v: labels[v])
    calendar = (
        kind_table(inference, kinds_a, labs_a, "calendar", "time", lambda v: labels[v])
        if not cells.binned
        else None
    )
    summary_of = {"simple": "simple", "dynamic": "dynamic_overall", "group": "group_overall"}
    if not cells.binned:
        summary_of["calendar"] = "calendar_overall"
    if opts.aggregation not in summary_of:
        raise EstimationError(
            "design.options.aggregation is calendar, but design.window bins event times, so "
            "calendar periods are not separated; use another aggregation or remove the window"
        )
    idx = {a: int(np.flatnonzero(kinds_a == k)[0]) for a, k in summary_of.items()}
    aggregations = estimand_table(inference, np.array(list(idx.values())), "type", list(idx))
    cell_se = np.sqrt(np.einsum("ck,ck->k", cells.scores, cells.scores))
    att = pd.DataFrame(
        {
            "group": [labels[int(v)] for v in g],
            "event_time": e,
            "group_index": g,
            "att": delta,
            "std_error": cell_se,
            "ci_lower": delta - q * cell_se,
            "ci_upper": delta + q * cell_se,
            "n_obs": n,
            "post": post,
        }
    )
    if not cells.binned:
        att.insert(1, "time", [labels[int(v)] for v in t])
    h = idx[opts.aggregation]
    events = event_rows(dynamic)
    events.append(EventTimeEstimate(ref, 0.0, 0.0, 0.0, 0.0, math.nan, reference=True))
    events.sort(key=lambda ev: ev.event_time)
    lead_idx = [i for i in np.flatnonzero(kinds_a == "dynamic") if labs_a[i] < ref]
    pre_period = None
    pre_w = options.window
    if lead_idx:
        P = psi[:, lead_idx]
        pre_period = PrePeriodEstimates(
            kind="leads",
            event_times=tuple(int(labs_a[i]) for i in lead_idx),
            estimates=est[lead_idx],
            std_errors=se[lead_idx],
            cov=P.T @ P,
            n_clusters=C,
            scores=P,
            reference=ref,
            window=pre_w if pre_w is not None else (int(-e.min()), int(e.max())),
        )
    linear = None
    if fit is not None:
        from pilotlab.results import LinearFit

        assert isinstance(fit, LinearFit)
        c = np.zeros(len(fit.names))
        c[: g.size] = W[:, h]
        base_var = float(c @ fit.vcov @ c)
        linear = LinearParts(
            fit,
            combination=c,
            reference=ref,
            window=options.window,
            weights_variance=float(se[h] ** 2 - base_var),
        )
    tables = StaggeredTables(
        att_gt=Table(att),
        aggregations=Table(aggregations),
        dynamic=Table(dynamic),
        group=Table(group),
        calendar=Table(calendar) if calendar is not None else None,
        method="interaction-weighted",
        base_period="universal",
        comparison=panel.comparison,
        anticipation=panel.anticipation,
    )
    return EffectResult(
        estimator="sun_abraham",
        outcome=outcome,
        estimate=float(est[h]),
        std_error=float(se[h]),
        ci_lower=float(lo[h]),
        ci_upper=float(hi[h]),
        p_value=float(pv[h]),
        alpha=options.alpha,
        inference="cluster",
        nobs=panel.nobs,
        n_units=panel.n_units,
        n_treated_units=n_treated,
        n_clusters=C,
        n_periods=panel.n_periods,
        estimand=f"ATT ({opts.aggregation} aggregation)",
        event_study=tuple(events),
        pre_period=pre_period,
        warnings=size_warnings(panel, "cluster") + tuple(notes),
        linear=linear,
        staggered=tables,
    )


ENTRY = register(
    EstimatorEntry(
        name="sun_abraham",
        title="interaction-weighted event study (Sun & Abraham)",
        fit=fit_sun_abraham,
        description="Sun & Abraham (2021): start-cohort x event-time effects against never- or "
        "last-treated units, averaged with the cohorts' shares (standard errors allow for the "
        "estimated shares)",
        capabilities=Capabilities(
            inference=("cluster",),
            layouts=("panel",),
            staggered=True,
            linear=True,
            event_times=True,
            covariates=True,
        ),
        options=SunAbrahamOptions,
        assumptions=(
            "Areas that started at the same time form a group, and each group is compared "
            "only with areas never treated (or, when there are none, with the last group to "
            "start, before it starts).",
            "The effect may differ between groups and with time since the start; the "
            "averages weigh each group by its share of the treated areas.",
        ),
    )
)
