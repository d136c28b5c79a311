"""Callaway & Sant'Anna (2021) group-time average treatment effects for staggered roll-outs.

For every adoption cohort ``g`` and period ``t`` the estimator compares the change in outcomes of
cohort ``g`` between a base period and ``t`` with the same change among comparison units (never
treated, or not yet treated), by outcome regression (``reg``), standardised inverse probability
weighting (``ipw``) or the doubly robust estimator (``dr``, the default) of Sant'Anna & Zhao (2020),
as in the R packages ``did`` and ``DRDID``. The ATT(g,t) are then aggregated (simple, dynamic /
event time, group, calendar) with analytic influence-function standard errors, clustered at any
level; a clustered multiplier bootstrap gives a uniform confidence band over event times. The
result carries the pre-period ATT(g,t) and event-time averages (``pre_period``) for the
parallel-trends pre-test, which is applied after the fit
(:func:`pilotlab.diagnostics.pretrend.apply_pretrend`).

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
* the pre-test's Wald statistic (of the pre-period cells this estimator returns) is referred to
  the Hotelling T² F approximation with G = clusters
  (R's chi-squared p-value is kept as ``PreTrendTest.p_value_chi2``); when the pre-period
  cells' covariance is singular or the effective number of clusters is below twice the number
  of cells, the pre-test uses the event-time averages, then a level-and-slope test of them;
  with inference for few treated clusters it is a randomisation test.

The stages live in their own modules, in the order they run: :mod:`.prepare` (panel to unit
arrays and cells), :mod:`.cells` (the ATT(g,t) and their influence functions), :mod:`.kernels`
(the 2x2 DR / IPW / OR comparisons with covariates), :mod:`.aggregate` (aggregations and
tables), :mod:`.bootstrap` (multiplier bootstrap) and :mod:`.pretest` (the pre-period
estimates the parallel-trends pre-test reads); this module is the estimator's entry.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from pilotlab.data.panel import Panel
from pilotlab.distributions import norm_sf
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.estimators.callaway_santanna.aggregate import GroupTimeEffects, _aggregate
from pilotlab.estimators.callaway_santanna.block_map import headline_block_map, pre_period_map
from pilotlab.estimators.callaway_santanna.cells import (
    _fit_balanced_nocov,
    _fit_general_panel,
    _fit_rcs,
)
from pilotlab.estimators.callaway_santanna.kernels import Method
from pilotlab.estimators.callaway_santanna.prepare import (
    _finalise_units,
    _make_cells,
    _subset_units,
    _unit_arrays,
    _warn,
)
from pilotlab.estimators.micro import micro_nobs, require_group_cells
from pilotlab.exceptions import EstimationError, Notice, collect, emit
from pilotlab.results import EffectResult, EventTimeEstimate, StaggeredTables, Table

__all__ = ["GroupTimeEffects", "estimate_group_time_effects", "fit_callaway_santanna"]


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
        Cell estimates, aggregations, the pre-period estimates and the band's critical value.
    """
    sink: list[Notice] = []
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
    rcs = panel.layout in ("repeated_cross_section", "microdata")
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
                    "cs-unbalanced-cells",
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
        reference=-1 - antic,
    )


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
        Headline = ``options.callaway_santanna.aggregation``; ``event_study`` = dynamic aggregation; ``pre_period`` =
        what the pre-test reads; ``staggered`` holds the ATT(g,t) and aggregation tables.
    """
    cs = options.callaway_santanna
    panel = require_group_cells(panel, "callaway_santanna", tuple(options.covariates))
    if panel.micro is not None and panel.micro.outcome != outcome:
        panel = panel.complete(outcome, ())
    res, raised = collect(
        estimate_group_time_effects,
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
    for n in raised:  # re-emit so callers see them once, from here
        emit(n, stacklevel=2)
    agg = res.aggregations
    i = int(np.flatnonzero(agg["type"].to_numpy() == cs.aggregation)[0])
    est = float(agg["estimate"].to_numpy()[i])
    se = float(agg["std_error"].to_numpy()[i])
    ci = (float(agg["ci_lower"].to_numpy()[i]), float(agg["ci_upper"].to_numpy()[i]))
    p = float(2 * norm_sf(abs(est / se))) if se > 0 else math.nan
    dyn = res.dynamic
    d_e = dyn["event_time"].to_numpy(np.int64)
    d_est, d_se = dyn["estimate"].to_numpy(float), dyn["std_error"].to_numpy(float)
    d_lo, d_hi = dyn["ci_lower"].to_numpy(float), dyn["ci_upper"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        d_p = np.where(d_se > 0, 2 * norm_sf(np.abs(d_est / d_se)), np.nan)
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
        nobs=micro_nobs(panel, outcome, panel.nobs),
        n_units=res.n_units,
        n_treated_units=res.n_treated_units,
        n_clusters=res.n_clusters,
        n_periods=panel.n_periods,
        estimand=f"ATT ({cs.aggregation} aggregation)",
        event_study=events,
        pre_period=res.pre_period,
        warnings=res.warnings,
        staggered=tables,
    )


ENTRY = register(
    EstimatorEntry(
        name="callaway_santanna",
        title="staggered difference in differences (Callaway & Sant'Anna)",
        fit=fit_callaway_santanna,
        description="Callaway & Sant'Anna (2021) group-time ATTs with doubly robust, IPW or "
        "regression 2x2 comparisons, aggregated with influence-function SEs",
        capabilities=Capabilities(
            layouts=("panel", "repeated_cross_section", "microdata"),
            inference=("cluster",),
            staggered=True,
            event_times=True,
            covariates=True,
            auto="staggered",
        ),
        block_map=headline_block_map,
        pre_period_map=pre_period_map,
    )
)
