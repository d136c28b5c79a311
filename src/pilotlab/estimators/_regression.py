"""Shared plumbing of the regression estimators (did, twfe, event_study)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from scipy import special

from pilotlab.data.panel import Panel
from pilotlab.distributions import t_ppf
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.linear import LinearFit, VcovType, fit_linear
from pilotlab.estimators.micro import fit_cells, micro_nobs
from pilotlab.exceptions import EstimationError, Notice, notice
from pilotlab.results import EffectResult

__all__ = [
    "LINEAR_INFERENCE",
    "covariate_matrix",
    "fit_panel",
    "interval",
    "is_nested",
    "linear_effect",
    "size_warnings",
    "t_quantile",
]

#: Inference methods the regression estimators compute themselves.
LINEAR_INFERENCE = ("cluster", "robust", "iid")


def is_nested(codes: np.ndarray, cluster: np.ndarray) -> bool:
    """Whether every level of ``codes`` lies within a single cluster."""
    first = np.zeros(int(codes.max()) + 1, dtype=cluster.dtype)
    first[codes[::-1]] = cluster[::-1]  # the cluster of each level's first row
    return bool(np.array_equal(first[codes], cluster))


def covariate_matrix(panel: Panel, options: EstimatorOptions) -> tuple[np.ndarray, tuple[str, ...]]:
    """Covariate columns as a float matrix (n x p)."""
    cols = tuple(options.covariates)
    if not cols:
        return np.empty((panel.nobs, 0)), ()
    return panel.frame[list(cols)].to_numpy(np.float64), cols


def fit_panel(
    panel: Panel,
    outcome: str,
    X: np.ndarray,
    names: tuple[str, ...],
    options: EstimatorOptions,
    *,
    fixed_effects: bool = True,
) -> LinearFit:
    """Fit ``outcome`` on ``X`` (+ covariates) with unit and period effects and the plan's vcov.

    ``X`` is consumed: it is demeaned in place, so callers must not read it afterwards.
    """
    vcov: VcovType
    if options.inference in ("cluster", "robust", "iid"):
        vcov = options.inference
    else:
        raise EstimationError(
            f"design.inference.method: '{options.inference}' is not available for this estimator; "
            f"use one of {', '.join(LINEAR_INFERENCE)} or auto"
        )
    if panel.micro is not None:  # person-level microdata: the same fit from its cell statistics
        return fit_cells(
            panel, outcome, X, names, tuple(options.covariates), vcov, fixed_effects=fixed_effects
        )
    cov, cov_names = covariate_matrix(panel, options)
    X = np.column_stack([X, cov]) if cov.shape[1] else X
    names = (*names, *cov_names)
    unit, time, cluster = panel.unit, panel.time, panel.cluster
    weights = panel.weight if panel.weighted else None
    if fixed_effects:
        fe = [unit, time]
        nested = (is_nested(unit, cluster), is_nested(time, cluster))
        return fit_linear(
            panel.y(outcome),
            X,
            names,
            fe=fe,
            cluster=cluster,
            weights=weights,
            vcov=vcov,
            balanced=panel.is_balanced,
            shape=(panel.n_units, panel.n_periods) if panel.is_rectangular else None,
            fe_nested_in_cluster=nested,
            overwrite_X=True,  # X is the estimator's own temporary
        )
    return fit_linear(
        panel.y(outcome),
        X,
        names,
        fe=[],
        cluster=cluster,
        weights=weights,
        vcov=vcov,
        add_intercept=True,
    )


@lru_cache(maxsize=256)
def t_quantile(df: int, alpha: float) -> float:
    """The two-sided critical value ``t_{1 - alpha/2}(df)``, computed once per (df, alpha).

    A run asks for the same few values thousands of times (every event-time coefficient of
    every refit), and a call of ``scipy.stats.t.ppf`` costs about a tenth of a millisecond.
    """
    return float(t_ppf(1 - alpha / 2, df))


def interval(estimate: float, se: float, df: int, alpha: float) -> tuple[float, float, float]:
    """CI bounds and two-sided p-value from a t reference distribution with ``df`` degrees of freedom."""
    if not np.isfinite(se) or se <= 0:
        return float("nan"), float("nan"), float("nan")
    q = t_quantile(df, alpha)
    # the t survival function itself (what scipy.stats.t.sf evaluates), without its overhead
    p = float(2 * special.stdtr(df, -abs(estimate / se)))
    return estimate - q * se, estimate + q * se, p


def size_warnings(panel: Panel, inference: str) -> tuple[Notice, ...]:
    """Warnings about cluster counts that a reader of the report must see."""
    out = []
    if inference == "cluster":
        g, gt = panel.n_clusters, panel.n_treated_clusters
        if gt < 10 or g < 30:
            out.append(
                notice(
                    "few-clusters",
                    f"Only {g} clusters ({gt} treated): cluster-robust standard errors are "
                    "unreliable with so few (treated) clusters and the interval is likely too "
                    "narrow; use wild_bootstrap or permutation inference.",
                )
            )
    if inference == "iid":
        out.append(
            notice(
                "iid-errors",
                "Standard errors assume independent observations (iid); outcomes of the same "
                "area are usually correlated over time, so the interval is likely too narrow.",
            )
        )
    return tuple(out)


def linear_effect(
    estimator: str,
    panel: Panel,
    outcome: str,
    options: EstimatorOptions,
    fit: LinearFit,
    estimate: float,
    std_error: float,
    warnings: tuple[Notice, ...],
    **fields: Any,
) -> EffectResult:
    """The EffectResult of a regression estimator: t(df) interval and the fit's sizes."""
    lo, hi, p = interval(estimate, std_error, fit.df_resid, options.alpha)
    return EffectResult(
        estimator=estimator,
        outcome=outcome,
        estimate=estimate,
        std_error=std_error,
        ci_lower=lo,
        ci_upper=hi,
        p_value=p,
        alpha=options.alpha,
        inference=options.inference,
        nobs=micro_nobs(panel, outcome, fit.nobs),
        n_units=panel.n_units,
        n_treated_units=panel.n_treated_units,
        n_clusters=fit.n_clusters,
        n_periods=panel.n_periods,
        warnings=warnings,
        **fields,
    )
