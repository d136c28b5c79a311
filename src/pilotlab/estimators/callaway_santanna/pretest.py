"""Callaway & Sant'Anna, stage 6 -- the parallel-trends pre-tests.

The Wald test that all pre-treatment ATT(g,t) are zero (Hotelling F with the clusters), with
its fallbacks when their covariance is singular or the clusters are too few (the pre-treatment
event-time averages, then their level and slope), and the randomisation pre-test used with
inference for few treated clusters (re-fits without the bootstrap band, scored by the level and
slope of the leads).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from pilotlab.data.panel import Panel
from pilotlab.diagnostics.pretrend import randomization_pretest, resolve_pretrend, wald_pretest
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.callaway_santanna.cells import _CellFit
from pilotlab.estimators.callaway_santanna.prepare import _warn
from pilotlab.exceptions import Notice
from pilotlab.results import EffectResult, PreTrendTest

if TYPE_CHECKING:
    from pilotlab.estimators.callaway_santanna.aggregate import GroupTimeEffects


def _cells_pretest(
    fit: _CellFit,
    att: np.ndarray,
    est: np.ndarray,
    se: np.ndarray,
    IF: np.ndarray,
    d_idx: list[int],
    d_e: list[int],
    C: int,
    sink: list[Notice],
) -> PreTrendTest | None:
    """The analytic pre-test of the cells ``fit`` (None when there are no pre-period cells).

    ``est``, ``se`` and ``IF`` are the aggregated parameters; ``d_idx`` / ``d_e`` the columns and
    event times of the dynamic aggregation.
    """
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
                "cs-pretest-unavailable",
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
    return pre_trend


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
    from pilotlab.estimators.callaway_santanna import fit_callaway_santanna  # the entry imports us

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
