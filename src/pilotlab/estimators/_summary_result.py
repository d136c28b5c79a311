"""The :class:`~pilotlab.results.EffectResult` pieces of estimands summarised together
(:func:`pilotlab.estimators._cells.summarise`): event-time rows, the leads of the pre-test and
the headline with its bootstrap record. Event-time estimands are named ``e<t>`` (``e-2``,
``e+0``, ...); ``idx`` maps each estimand's name to its position in the summary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from pilotlab.estimators._cells import Summary
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.exceptions import Notice
from pilotlab.results import (
    EffectResult,
    EventTimeEstimate,
    PrePeriodEstimates,
    StaggeredTables,
    WildBootstrapRecord,
)

__all__ = ["estimate_columns", "event_time_rows", "lead_estimates", "summary_result"]


def _name(t: int) -> str:
    return f"e{t:+d}"


def estimate_columns(sm: Summary, i: int) -> dict[str, object]:
    """The estimate, standard error and interval of estimand ``i``, as columns of a table row."""
    return {
        "estimate": sm.estimate[i],
        "std_error": sm.std_error[i],
        "ci_lower": sm.ci_lower[i],
        "ci_upper": sm.ci_upper[i],
    }


def event_time_rows(
    sm: Summary, idx: Mapping[str, int], times: Iterable[int], reference: int
) -> list[EventTimeEstimate]:
    """The event-time rows of ``times`` and the reference period's, in event-time order."""
    events = [
        EventTimeEstimate(
            t,
            float(sm.estimate[idx[_name(t)]]),
            float(sm.std_error[idx[_name(t)]]),
            float(sm.ci_lower[idx[_name(t)]]),
            float(sm.ci_upper[idx[_name(t)]]),
            float(sm.p_value[idx[_name(t)]]),
        )
        for t in times
    ]
    events.append(EventTimeEstimate(reference, 0.0, 0.0, 0.0, 0.0, float("nan"), reference=True))
    events.sort(key=lambda ev: ev.event_time)
    return events


def lead_estimates(
    sm: Summary,
    idx: Mapping[str, int],
    lead_times: Sequence[int],
    *,
    n_clusters: int,
    reference: int,
    window: tuple[int, int],
) -> PrePeriodEstimates:
    """The pre-test's leads: the event-time estimands of ``lead_times`` and their covariance."""
    li = [idx[_name(t)] for t in lead_times]
    return PrePeriodEstimates(
        kind="leads",
        event_times=tuple(int(t) for t in lead_times),
        estimates=sm.estimate[li],
        std_errors=sm.std_error[li],
        cov=sm.cov[np.ix_(li, li)],
        n_clusters=n_clusters,
        scores=sm.scores[:, li],
        reference=reference,
        window=window,
    )


def summary_result(
    sm: Summary,
    h: int,
    options: EstimatorOptions,
    *,
    estimator: str,
    outcome: str,
    nobs: int,
    n_units: int,
    n_treated_units: int,
    n_clusters: int,
    n_periods: int,
    estimand: str,
    event_study: Sequence[EventTimeEstimate],
    pre_period: PrePeriodEstimates,
    warnings: tuple[Notice, ...],
    staggered: StaggeredTables,
    bootstrap_detail: str = "",
) -> EffectResult:
    """The result headed by estimand ``h``; with the multiplier bootstrap, its record (the
    sentence ends with ``bootstrap_detail``)."""
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
                f"Multiplier (wild) bootstrap of the {n_clusters} cluster sums of the "
                f"influence function, {options.replications} draws{bootstrap_detail}."
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
        n_clusters=n_clusters,
        n_periods=n_periods,
        estimand=estimand,
        event_study=tuple(event_study),
        pre_period=pre_period,
        warnings=warnings,
        staggered=staggered,
        inference_details=details,
    )
