"""The :class:`~pilotlab.results.EffectResult` of a clean-comparison cell design (stacked,
triple difference): headline aggregation, event-time rows, leads for the pre-test, tables."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pilotlab.data.panel import Panel
from pilotlab.estimators._cells import CellEstimates, CellFit, cell_estimates, cell_fit
from pilotlab.estimators._regression import size_warnings
from pilotlab.estimators._summary_result import (
    estimate_columns,
    event_time_rows,
    lead_estimates,
    summary_result,
)
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.results import EffectResult, StaggeredTables, Table

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
    ce = cell_estimates(
        fit,
        options.alpha,
        method="wild_bootstrap" if options.inference == "wild_bootstrap" else "cluster",
        rng=rng,
        replications=options.replications,
        weights=options.bootstrap_weights,
    )
    sm = ce.summary
    idx = {n: i for i, n in enumerate(ce.names)}
    return summary_result(
        sm,
        idx[aggregation],
        options,
        estimator=estimator,
        outcome=outcome,
        nobs=nobs,
        n_units=panel.n_units,
        n_treated_units=panel.n_treated_units,
        n_clusters=fit.n_clusters,
        n_periods=panel.n_periods,
        estimand=f"ATT ({aggregation} aggregation: {AGGREGATION_TEXT[aggregation]})",
        event_study=event_time_rows(sm, idx, ce.event_times, fit.reference),
        pre_period=lead_estimates(
            sm,
            idx,
            [t for t in ce.event_times if t < fit.reference],
            n_clusters=fit.n_clusters,
            reference=fit.reference,
            window=window,
        ),
        warnings=size_warnings(panel, options.inference),
        staggered=_tables(
            fit, ce, panel.period_labels, panel.comparison, panel.anticipation, method
        ),
        bootstrap_detail=": the interval and p-value come from the spread of the re-weighted "
        "estimates",
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
        [{"type": a, **estimate_columns(sm, idx[a])} for a in ("simple", "dynamic", "group")]
    )
    dyn = pd.DataFrame(
        [{"event_time": t, **estimate_columns(sm, idx[f"e{t:+d}"])} for t in ce.event_times]
    )
    grp = pd.DataFrame(
        [
            {
                "group": labels[int(fit.cohorts[int(n[1:])])],
                "n_treated": int(fit.n_treated[int(n[1:])]),
                "n_comparison": int(fit.n_control[int(n[1:])]),
                **estimate_columns(sm, i),
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
