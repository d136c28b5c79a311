"""Stacked difference in differences with clean comparisons (Wing, Freedman & Hollingsworth 2024).

One sub-experiment per start cohort: the cohort's units and the clean comparison units (never
treated, or, with ``treatment.comparison: not_yet_treated``, units first treated only after the
sub-experiment's window), over the event window ``design.window`` around the cohort's start.
The naive stacked regression weights sub-experiments by their variance of treatment; Wing,
Freedman & Hollingsworth's corrective weights (comparison observations of sub-experiment ``a``
weighted by ``Q_a = (N_a^D / N^D) / (N_a^C / N^C)``) make each sub-experiment count as its
share of treated units. The estimator computes that weighted average directly from cell means
(see :mod:`pilotlab.estimators._cells`): on a balanced panel trimmed to cohorts that reach the
whole window it equals the Q-weighted stacked regression's event-time coefficients exactly,
without building the stacked data set.

Aggregations (``design.options.aggregation``): ``simple`` (every treated unit-period in the
windows, the default), ``dynamic`` (event times equally) and ``group`` (cohorts by size), each
with clustered influence-function standard errors. ``design.options.trim: true`` keeps only
cohorts whose whole window lies in the data (the paper's trimmed aggregate ATT: every event
time then averages the same cohorts).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from pilotlab.data.panel import Panel
from pilotlab.estimators._cell_result import cell_design_result
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.estimators.event_study import event_time_window
from pilotlab.exceptions import EstimationError
from pilotlab.results import EffectResult

__all__ = ["StackedOptions", "fit_stacked"]


class StackedOptions(BaseModel):
    """Options of the stacked estimator (``design.options``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aggregation: Literal["simple", "dynamic", "group"] = "simple"
    trim: bool = False


def fit_stacked(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Stacked DiD (see the module docstring)."""
    opts = options.estimator if isinstance(options.estimator, StackedOptions) else StackedOptions()
    if options.covariates:
        raise EstimationError(
            "design.covariates: the stacked estimator does not adjust for covariates; remove "
            "them or use callaway_santanna"
        )
    if not panel.is_treated_unit.any():
        raise EstimationError("treatment: no treated unit; the stacked estimator needs one")
    # trimmed: the window asked for, so that one no cohort reaches is refused, not shrunk
    window = (
        options.window
        if opts.trim and options.window is not None
        else event_time_window(panel, options.window)
    )
    return cell_design_result(
        "stacked",
        panel,
        outcome,
        options,
        rng,
        rows=(panel.y(outcome), panel.weight, panel.unit, panel.time, panel.cluster),
        window=window,
        aggregation=opts.aggregation,
        nobs=panel.nobs,
        method="stacked (clean comparisons, corrective weights)",
        trim=opts.trim,
        rectangular=panel.is_rectangular,
    )


ENTRY = register(
    EstimatorEntry(
        name="stacked",
        title="stacked difference in differences (clean comparisons per start date)",
        fit=fit_stacked,
        description="Stacked DiD: one sub-experiment per start cohort with clean comparison "
        "units, combined with Wing, Freedman & Hollingsworth's corrective weights",
        capabilities=Capabilities(
            inference=("cluster", "wild_bootstrap"),
            staggered=True,
            event_times=True,
        ),
        options=StackedOptions,
    )
)
