"""An estimator from outside pilotlab: the change-score difference in differences.

Each area's outcome is collapsed to one number, its *change score*: the mean of its periods
after the start minus the mean of its periods before (all of them, or only the last
``pre_periods_used``). The effect is the coefficient on ``treated`` in the least-squares
regression of the change score on an intercept and the treatment indicator, across areas: the
treated areas' mean change minus the comparison areas' mean change. Standard errors are
cluster-robust by ``data.cluster`` (areas are nested in clusters), heteroskedasticity-robust or
classical, from pilotlab's public least-squares routine, whose fit is exposed so that pilotlab
can apply the wild cluster bootstrap, Romano-Wolf adjustment and power by shifting outcomes.

This package is a test fixture: it is installed with pip and found through the entry point
``pilotlab.estimators``, as any third-party estimator would be. It uses only pilotlab's public
API (:mod:`pilotlab.catalogue`, :mod:`pilotlab.estimators.linear`, :mod:`pilotlab.results`,
:mod:`pilotlab.exceptions`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from pilotlab.catalogue import Capabilities, EstimatorEntry
from pilotlab.exceptions import EstimationError, Notice, notice
from pilotlab.results import EffectResult, LinearParts

if TYPE_CHECKING:
    from pilotlab.data.panel import Panel
    from pilotlab.estimators import EstimatorOptions

__all__ = ["ENTRY", "NAME", "TITLE", "ChangeScoreOptions", "change_scores", "fit_change_score"]

NAME = "change_score"
TITLE = "change-score comparison (each area: average after the start minus average before)"


class ChangeScoreOptions(BaseModel):
    """``design.options`` of the change-score estimator."""

    model_config = ConfigDict(extra="forbid")

    pre_periods_used: int | None = Field(
        None,
        ge=1,
        description="Use only this many periods just before the start for each area's "
        "'before' average (default: every period before the start).",
    )


def change_scores(
    panel: Panel, outcome: str, pre_periods_used: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-area change scores: ``(change, treated, cluster, n_obs, keep)`` over every area.

    ``keep`` marks the areas observed both before and after the start; the others have no
    change score (``nan``).
    """
    start = int(panel.cohorts[0]) - panel.anticipation
    first = 0 if pre_periods_used is None else start - pre_periods_used
    y = np.asarray(panel.y(outcome), dtype=np.float64)
    unit, time = panel.unit, panel.time
    seen = ~np.isnan(y)
    post = seen & (time >= start)
    pre = seen & (time < start) & (time >= first)
    n = panel.n_units
    n_post = np.bincount(unit[post], minlength=n)
    n_pre = np.bincount(unit[pre], minlength=n)
    keep = (n_post > 0) & (n_pre > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = (
            np.bincount(unit[post], weights=y[post], minlength=n) / n_post
            - np.bincount(unit[pre], weights=y[pre], minlength=n) / n_pre
        )
    cluster = np.zeros(n, dtype=np.int64)
    cluster[unit] = panel.cluster
    return np.where(keep, change, np.nan), panel.is_treated_unit, cluster, n_post + n_pre, keep


def fit_change_score(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Fit the change-score estimator (see the module docstring)."""
    from pilotlab.estimators.linear import fit_linear  # pilotlab's public least squares

    own = options.estimator if isinstance(options.estimator, ChangeScoreOptions) else None
    k = None if own is None else own.pre_periods_used
    if panel.layout != "panel":
        raise EstimationError(
            f"design.estimator: {NAME} needs panel data (the same areas in every period), but "
            f"data.layout is {panel.layout}; use did or twfe"
        )
    if options.covariates:
        raise EstimationError(
            f"design.covariates: the {NAME} estimator does not adjust for covariates "
            f"({', '.join(options.covariates)}); remove design.covariates or use did or twfe"
        )
    if panel.weighted:
        raise EstimationError(
            f"data.weight: the {NAME} estimator does not use weights; remove data.weight or use "
            "did or twfe"
        )
    if panel.is_staggered:
        raise EstimationError(
            f"design.estimator: {NAME} needs one common start, but treated units start in "
            f"{len(panel.cohorts)} different periods; use callaway_santanna"
        )
    start = int(panel.cohorts[0]) - panel.anticipation
    if k is not None and k > start:
        raise EstimationError(
            f"design.options.pre_periods_used is {k}, but only {start} periods precede the "
            f"start; give at most {start}"
        )
    if options.inference not in ("cluster", "robust", "iid"):
        raise EstimationError(
            f"design.inference.method: '{options.inference}' is not computed by the {NAME} "
            "estimator itself; use cluster, robust or iid (pilotlab adds the others)"
        )
    change, treated, unit_cluster, n_obs, keep = change_scores(panel, outcome, k)
    if min(int((treated & keep).sum()), int((~treated & keep).sum())) < 1:
        raise EstimationError(
            f"the {NAME} estimator needs treated and comparison areas observed both before and "
            "after the start"
        )
    _, cluster = np.unique(unit_cluster[keep], return_inverse=True)
    fit = fit_linear(
        change[keep],
        treated[keep].astype(np.float64)[:, None],
        ("treated",),
        fe=[],
        cluster=cluster,
        vcov=options.inference,
        add_intercept=True,
    )
    j = fit.coef("treated")
    est, se = float(fit.beta[j]), float(fit.std_errors[j])
    q = float(stats.t.ppf(1 - options.alpha / 2, fit.df_resid))
    p = float(2 * stats.t.sf(abs(est / se), fit.df_resid)) if se > 0 else float("nan")
    warn: tuple[Notice, ...] = ()
    if options.inference == "cluster" and fit.n_clusters < 30:
        warn = (  # pilotlab's code: dropped when a resampling method replaces the CR1 interval
            notice(
                "few-clusters",
                f"Only {fit.n_clusters} clusters: cluster-robust standard errors are unreliable "
                "with so few clusters; use wild_bootstrap or permutation inference.",
            ),
        )
    return EffectResult(
        estimator=NAME,
        outcome=outcome,
        estimate=est,
        std_error=se,
        ci_lower=est - q * se,
        ci_upper=est + q * se,
        p_value=p,
        alpha=options.alpha,
        inference=options.inference,
        nobs=int(n_obs[keep].sum()),
        n_units=panel.n_units,
        n_treated_units=panel.n_treated_units,
        n_clusters=fit.n_clusters,
        n_periods=panel.n_periods,
        warnings=warn,
        linear=LinearParts(fit, coef_index=j),
    )


ENTRY = EstimatorEntry(
    name=NAME,
    title=TITLE,
    fit=fit_change_score,
    description="regression of each area's change in average outcome on being treated",
    capabilities=Capabilities(
        inference=("cluster", "robust", "iid"),
        layouts=("panel",),
        linear=True,
    ),
    options=ChangeScoreOptions,
)
