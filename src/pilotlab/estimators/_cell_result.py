"""The :class:`~pilotlab.results.EffectResult` of a clean-comparison cell design (stacked,
triple difference): headline aggregation, event-time rows, leads for the pre-test, tables."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pilotlab.data.panel import Panel
from pilotlab.estimators._cells import CellEstimates, CellFit, cell_estimates, cell_fit
from pilotlab.estimators._regression import size_warnings
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.exceptions import Notice
from pilotlab.results import (
    EffectResult,
    EventTimeEstimate,
    PrePeriodEstimates,
    StaggeredTables,
    Table,
    WildBootstrapRecord,
)

__all__ = ["cell_design_result"]

AGGREGATION_TEXT = {
    "simple": "average over every treated unit-period in the windows",
    "dynamic": "average of the event-time effects after the start",
    "group": "average of the start cohorts' effects, weighted by cohort size",
}


def cell_design_result(
    estimator: str,
    panel: Panel,
    outcome: str,
    options: EstimatorOptions,
    rng: np.random.Generator,
    *,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    window: tuple[int, int],
    aggregation: str,
    nobs: int,
    method: str,
    trim: bool = False,
    rectangular: bool,
) -> EffectResult:
    """Fit the cells of ``rows = (y, w, unit, time, cluster)`` of ``panel`` (its start dates,
    comparison and anticipation) and assemble the result of the cell design ``estimator``."""
    fit = cell_fit(
        *rows,
        panel.first_treated,
        panel.n_periods,
        window=window,
        anticipation=panel.anticipation,
        comparison=panel.comparison,
        trim=trim,
        rectangular=rectangular,
    )
    return _result(
        estimator,
        outcome,
        fit,
        options,
        rng,
        aggregation=aggregation,
        period_labels=panel.period_labels,
        nobs=nobs,
        n_units=panel.n_units,
        n_treated_units=panel.n_treated_units,
        n_periods=panel.n_periods,
        window=window,
        comparison=panel.comparison,
        anticipation=panel.anticipation,
        method=method,
        warnings=size_warnings(panel, options.inference),
    )


def _result(
    estimator: str,
    outcome: str,
    fit: CellFit,
    options: EstimatorOptions,
    rng: np.random.Generator,
    *,
    aggregation: str,
    period_labels: Sequence[str],
    nobs: int,
    n_units: int,
    n_treated_units: int,
    n_periods: int,
    window: tuple[int, int],
    comparison: str,
    anticipation: int,
    method: str,
    warnings: tuple[Notice, ...] = (),
) -> EffectResult:
    """Estimate every estimand of ``fit`` and assemble the result (``aggregation`` the headline)."""
    method_inf = "wild_bootstrap" if options.inference == "wild_bootstrap" else "cluster"
    ce = cell_estimates(
        fit,
        options.alpha,
        method=method_inf,
        rng=rng,
        replications=options.replications,
        weights=options.bootstrap_weights,
    )
    sm = ce.summary
    idx = {n: i for i, n in enumerate(ce.names)}
    h = idx[aggregation]
    events = [
        EventTimeEstimate(
            t,
            float(sm.estimate[idx[f"e{t:+d}"]]),
            float(sm.std_error[idx[f"e{t:+d}"]]),
            float(sm.ci_lower[idx[f"e{t:+d}"]]),
            float(sm.ci_upper[idx[f"e{t:+d}"]]),
            float(sm.p_value[idx[f"e{t:+d}"]]),
        )
        for t in ce.event_times
    ]
    events.append(
        EventTimeEstimate(fit.reference, 0.0, 0.0, 0.0, 0.0, float("nan"), reference=True)
    )
    events.sort(key=lambda ev: ev.event_time)
    leads = [j for j, t in enumerate(ce.event_times) if t < fit.reference]
    lead_idx = [idx[f"e{ce.event_times[j]:+d}"] for j in leads]
    pre = PrePeriodEstimates(
        kind="leads",
        event_times=tuple(ce.event_times[j] for j in leads),
        estimates=sm.estimate[lead_idx],
        std_errors=sm.std_error[lead_idx],
        cov=sm.cov[np.ix_(lead_idx, lead_idx)],
        n_clusters=fit.n_clusters,
        scores=sm.scores[:, lead_idx],
        reference=fit.reference,
        window=window,
    )
    details = None
    if sm.method == "wild_bootstrap":
        details = WildBootstrapRecord(
            p_value=float(sm.p_value[h]),
            ci_lower=float(sm.ci_lower[h]),
            ci_upper=float(sm.ci_upper[h]),
            weights=options.bootstrap_weights,
            replications=options.replications,
            statistic=float(abs(sm.estimate[h]) / sm.std_error[h])
            if sm.std_error[h] > 0
            else float("nan"),
            sentence=(
                f"Multiplier (wild) bootstrap of the {fit.n_clusters} cluster sums of the "
                f"influence function, {options.replications} draws: the interval and p-value "
                "come from the spread of the re-weighted estimates."
            ),
        )
    return EffectResult(
        estimator=estimator,
        outcome=outcome,
        estimate=float(sm.estimate[h]),
        std_error=float(sm.std_error[h]),
        ci_lower=float(sm.ci_lower[h]),
        ci_upper=float(sm.ci_upper[h]),
        p_value=float(sm.p_value[h]),
        alpha=options.alpha,
        inference=sm.method,
        nobs=nobs,
        n_units=n_units,
        n_treated_units=n_treated_units,
        n_clusters=fit.n_clusters,
        n_periods=n_periods,
        estimand=f"ATT ({aggregation} aggregation: {AGGREGATION_TEXT[aggregation]})",
        event_study=tuple(events),
        pre_period=pre,
        warnings=warnings,
        staggered=_tables(fit, ce, period_labels, comparison, anticipation, method),
        inference_details=details,
    )


def _tables(
    fit: CellFit,
    ce: CellEstimates,
    labels: Sequence[str],
    comparison: str,
    anticipation: int,
    method: str,
) -> StaggeredTables:
    sm = ce.summary
    idx = {n: i for i, n in enumerate(ce.names)}
    did = ce.att_cells
    s_i, e_i = np.nonzero(np.isfinite(did) & (fit.event_times != fit.reference)[None, :])
    cohort = fit.cohorts[s_i]
    t_i = cohort + fit.event_times[e_i]
    att_gt = pd.DataFrame(
        {
            "group": [labels[int(c)] for c in cohort],
            "time": [labels[int(t)] for t in t_i],
            "event_time": fit.event_times[e_i],
            "att": did[s_i, e_i],
            "n_treated": fit.n_treated[s_i],
            "n_comparison": fit.n_control[s_i],
            "treated_weight": fit.weight[s_i, 1, e_i],
        }
    )
    agg = pd.DataFrame(
        [
            {
                "type": a,
                "estimate": sm.estimate[idx[a]],
                "std_error": sm.std_error[idx[a]],
                "ci_lower": sm.ci_lower[idx[a]],
                "ci_upper": sm.ci_upper[idx[a]],
            }
            for a in ("simple", "dynamic", "group")
        ]
    )
    dyn = pd.DataFrame(
        [
            {
                "event_time": t,
                "estimate": sm.estimate[idx[f"e{t:+d}"]],
                "std_error": sm.std_error[idx[f"e{t:+d}"]],
                "ci_lower": sm.ci_lower[idx[f"e{t:+d}"]],
                "ci_upper": sm.ci_upper[idx[f"e{t:+d}"]],
            }
            for t in ce.event_times
        ]
    )
    grp = pd.DataFrame(
        [
            {
                "group": labels[int(fit.cohorts[int(n[1:])])],
                "n_treated": int(fit.n_treated[int(n[1:])]),
                "n_comparison": int(fit.n_control[int(n[1:])]),
                "estimate": sm.estimate[i],
                "std_error": sm.std_error[i],
                "ci_lower": sm.ci_lower[i],
                "ci_upper": sm.ci_upper[i],
            }
            for n, i in idx.items()
            if n.startswith("g") and n[1:].isdigit()
        ]
    )
    return StaggeredTables(
        att_gt=Table(att_gt),
        aggregations=Table(agg),
        dynamic=Table(dyn),
        group=Table(grp),
        method=method,
        base_period="universal",
        comparison=comparison,
        anticipation=anticipation,
    )
