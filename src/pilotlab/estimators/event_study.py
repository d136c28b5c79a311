"""Event study: leads and lags of the start in a two-way fixed-effects regression.

Event time ``e = t - g`` (``g`` the unit's first treated period). Coefficients are estimated for
``e`` in ``[-pre, post]`` with the end points binned (``e <= -pre`` share one coefficient, as do
``e >= post``) and ``e = -1 - anticipation`` as the reference period. The pre-period coefficients
are tested jointly (Wald); the headline effect is the average of the post-period coefficients
weighted by their numbers of treated observations.
"""

from __future__ import annotations

import numpy as np

from pilotlab.data.panel import NEVER, Panel
from pilotlab.estimators._regression import LINEAR_INFERENCE, fit_panel, interval, size_warnings
from pilotlab.estimators.base import EstimatorEntry, EstimatorOptions, register
from pilotlab.estimators.linear import linear_combination, wald_test
from pilotlab.exceptions import EstimationError
from pilotlab.results import EffectResult, EventTimeEstimate, PreTrendTest

__all__ = ["event_time_window", "fit_event_study"]

DEFAULT_WINDOW = 8


def event_time_window(panel: Panel, window: tuple[int, int] | None) -> tuple[int, int]:
    """The (pre, post) window, clipped to the event times the data contain."""
    treated = panel.is_treated_unit
    g = panel.first_treated[treated]
    max_pre = int((g - panel.anticipation).max())  # periods available before the latest start
    max_post = int(panel.n_periods - 1 - g.min())
    pre, post = window if window is not None else (DEFAULT_WINDOW, DEFAULT_WINDOW)
    return max(1, min(pre, max_pre)), max(0, min(post, max_post))


def fit_event_study(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Event-study regression with binned end points and a joint pre-trend test."""
    pre, post = event_time_window(panel, options.window)
    ref = -1 - panel.anticipation
    cohort = panel.cohort
    treated_row = cohort != NEVER
    e = np.where(treated_row, panel.time - np.where(treated_row, cohort, 0), 0)
    e = np.clip(e, -pre, post)
    times = [k for k in range(-pre, post + 1) if k != ref]
    if not times:
        raise EstimationError(
            "design.window: the event-time window leaves no coefficient to estimate"
        )
    # One column per event time: n x (pre + post) indicators, never a unit dummy.
    col = np.searchsorted(np.array(times), e)
    valid = treated_row & (e != ref)
    X = np.zeros((panel.nobs, len(times)))
    X[np.flatnonzero(valid), col[valid]] = 1.0
    present = X.any(axis=0)
    if not present.all():
        keep = np.flatnonzero(present)
        X, times = X[:, keep], [times[k] for k in keep]
    names = tuple(f"e{k:+d}" for k in times)
    fit = fit_panel(panel, outcome, X, names, options)
    se = fit.std_errors
    k = len(times)
    events: list[EventTimeEstimate] = []
    for j, t in enumerate(times):
        lo, hi, p = interval(float(fit.beta[j]), float(se[j]), fit.df_resid, options.alpha)
        events.append(EventTimeEstimate(t, float(fit.beta[j]), float(se[j]), lo, hi, p))
    events.append(EventTimeEstimate(ref, 0.0, 0.0, 0.0, 0.0, float("nan"), reference=True))
    events.sort(key=lambda ev: ev.event_time)

    post_idx = [j for j, t in enumerate(times) if t >= 0]
    if not post_idx:
        raise EstimationError("the data have no period after the start; nothing to estimate")
    counts = X[treated_row][:, post_idx].sum(axis=0)
    c = np.zeros(len(names))
    c[post_idx] = counts / counts.sum()
    est, s = linear_combination(fit, c)
    lo, hi, p = interval(est, s, fit.df_resid, options.alpha)
    stat, df, pval = wald_test(fit, [j for j, t in enumerate(times[:k]) if t < ref])
    pre_trend = PreTrendTest("wald", stat, df, pval) if df else None
    warnings = size_warnings(panel, options.inference)
    if panel.is_staggered:
        warnings += (
            "Treated units start at different times: event-study coefficients from a "
            "two-way fixed-effects regression can be contaminated by effects at other "
            "event times; prefer callaway_santanna.",
        )
    return EffectResult(
        estimator="event_study",
        outcome=outcome,
        estimate=est,
        std_error=s,
        ci_lower=lo,
        ci_upper=hi,
        p_value=p,
        alpha=options.alpha,
        inference=options.inference,
        nobs=fit.nobs,
        n_units=panel.n_units,
        n_treated_units=panel.n_treated_units,
        n_clusters=fit.n_clusters,
        n_periods=panel.n_periods,
        event_study=tuple(events),
        pre_trend=pre_trend,
        warnings=warnings,
        details={"linear_fit": fit, "combination": c, "window": (pre, post), "reference": ref},
    )


register(
    EstimatorEntry(
        name="event_study",
        fit=fit_event_study,
        description="event study (leads and lags, binned end points, reference period -1)",
        inference=LINEAR_INFERENCE,
        staggered=False,
    )
)
