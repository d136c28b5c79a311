"""Event study: leads and lags of the start in a two-way fixed-effects regression.

Event time ``e = t - g`` (``g`` the unit's first treated period). Coefficients are estimated for
``e`` in ``[-pre, post]`` with the end points binned (``e <= -pre`` share one coefficient, as do
``e >= post``) and ``e = -1 - anticipation`` as the reference period. The headline effect is the
average of the post-period coefficients weighted by their numbers of treated observations. The
result carries the pre-period coefficients and their covariance (``pre_period``); their joint
test is applied after the fit (:func:`pilotlab.diagnostics.pretrend.apply_pretrend`: Wald with a
Hotelling F reference, or by randomisation when inference is for few treated clusters).
"""

from __future__ import annotations

import numpy as np

from pilotlab.data.cells import row_counts
from pilotlab.data.panel import NEVER, Panel
from pilotlab.estimators._regression import (
    LINEAR_INFERENCE,
    fit_panel,
    interval,
    linear_effect,
    size_warnings,
)
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.estimators.linear import LinearFit, linear_combination
from pilotlab.exceptions import EstimationError, notice
from pilotlab.results import EffectResult, EventTimeEstimate, LinearParts, PrePeriodEstimates

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
    """Event-study regression with binned end points; its leads are in ``pre_period``."""
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
    if panel.weighted:  # a term whose treated rows all weigh zero has no observation either
        weightless = present & ~X[panel.weight > 0].any(axis=0)
        if weightless.any():
            ks = [times[j] for j in np.flatnonzero(weightless)]
            label = ", ".join(f"{k:+d}" for k in ks)
            raise EstimationError(
                f"data.weight: event time {label} has no treated observation with a positive "
                f"weight, so its effect cannot be estimated; give those rows a positive weight, "
                f"or set design.window (pre/post) so that it leaves out event time {label}"
            )
    if not present.all():
        keep = np.flatnonzero(present)
        X, times = X[:, keep], [times[k] for k in keep]
    names = tuple(f"e{k:+d}" for k in times)
    col_counts = row_counts(panel) @ X  # treated observations per event time (X is consumed)
    fit = fit_panel(panel, outcome, X, names, options)
    se = fit.std_errors
    events: list[EventTimeEstimate] = []
    for j, t in enumerate(times):
        lo, hi, p = interval(float(fit.beta[j]), float(se[j]), fit.df_resid, options.alpha)
        events.append(EventTimeEstimate(t, float(fit.beta[j]), float(se[j]), lo, hi, p))
    events.append(EventTimeEstimate(ref, 0.0, 0.0, 0.0, 0.0, float("nan"), reference=True))
    events.sort(key=lambda ev: ev.event_time)

    post_idx = [j for j, t in enumerate(times) if t >= 0]
    if not post_idx:
        raise EstimationError("the data have no period after the start; nothing to estimate")
    counts = col_counts[post_idx]
    c = np.zeros(len(fit.names))  # the fit's coefficients: event times, then any covariates
    c[post_idx] = counts / counts.sum()
    est, s = linear_combination(fit, c)
    warnings = size_warnings(panel, options.inference)
    if panel.is_staggered:
        warnings += (
            notice(
                "staggered-event-study",
                "Treated units start at different times: event-study coefficients from a "
                "two-way fixed-effects regression can be contaminated by effects at other "
                "event times; prefer callaway_santanna.",
            ),
        )
    return linear_effect(
        "event_study",
        panel,
        outcome,
        options,
        fit,
        est,
        s,
        warnings,
        event_study=tuple(events),
        pre_period=_leads(fit, times, ref, (pre, post)),
        linear=LinearParts(
            fit, combination=c, event_times=tuple(times), reference=ref, window=(pre, post)
        ),
    )


def _leads(
    fit: LinearFit, times: list[int], ref: int, window: tuple[int, int]
) -> PrePeriodEstimates:
    """The lead coefficients (event times before the reference) and what their test reads."""
    idx = [j for j, t in enumerate(times) if t < ref]  # the first coefficients are event times
    scores = None
    n_clusters = fit.df_resid + 1  # HC1 / iid errors: the classical F with the residual df
    if fit.vcov_type == "cluster":  # the leads' cluster contributions give the effective G
        assert fit.cluster_scores is not None  # fit_linear keeps them for cluster vcov
        scores = fit.cluster_scores @ fit.xtx_inv[:, idx]
        n_clusters = fit.n_clusters
    return PrePeriodEstimates(
        kind="leads",
        event_times=tuple(times[j] for j in idx),
        estimates=fit.beta[idx],
        std_errors=fit.std_errors[idx],
        cov=fit.vcov[np.ix_(idx, idx)],
        n_clusters=n_clusters,
        scores=scores,
        reference=ref,
        window=window,
    )


ENTRY = register(
    EstimatorEntry(
        name="event_study",
        title="event study (difference in differences period by period)",
        fit=fit_event_study,
        description="event study (leads and lags, binned end points, reference period -1)",
        capabilities=Capabilities(
            layouts=("panel", "repeated_cross_section", "microdata"),
            inference=LINEAR_INFERENCE,
            linear=True,
            event_times=True,
            covariates=True,
            auto="common_start",
        ),
    )
)
