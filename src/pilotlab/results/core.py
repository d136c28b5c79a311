"""Immutable result objects shared by estimators, the engine, the report and the registry.

Vocabulary follows statsmodels: ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``,
``p_value``, ``nobs``. Every table in the report and every row of the evidence record is built
from :meth:`EffectResult.tidy` / :meth:`Evaluation.tidy` (both use :data:`TIDY_FIELDS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

from pilotlab.exceptions import Notice
from pilotlab.results.checks import CheckDetails
from pilotlab.results.parts import (
    DesignDiagnostics,
    EvidenceStrength,
    GroupMeans,
    InferenceRecord,
    LinearParts,
    PilotLike,
    StaggeredTables,
    SyntheticTables,
    json_scalar,
)
from pilotlab.results.pretrend_power import PreTrendPower
from pilotlab.results.randomised import RandomisedTables
from pilotlab.results.summary import Deviation, MissingSummary, PlanDifference, UnitFlow
from pilotlab.results.trial import CycleInfo, TrialSummary
from pilotlab.results.value import ValueForMoney

__all__ = [
    "OUTCOME_FIELDS",
    "TIDY_FIELDS",
    "Choice",
    "DataSummary",
    "EffectResult",
    "Evaluation",
    "EventTimeEstimate",
    "OutcomeEvaluation",
    "PlanInfo",
    "PrePeriodCells",
    "PrePeriodEstimates",
    "PreTrendTest",
    "RobustnessCheck",
]

#: The headline fields of an :class:`EffectResult`, in order: the columns of
#: :meth:`EffectResult.tidy` and the per-outcome fields of the evidence record (where ``nobs`` is
#: written ``n_obs``).
TIDY_FIELDS: tuple[str, ...] = (
    "outcome",
    "estimator",
    "estimand",
    "inference",
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "p_value",
    "alpha",
    "nobs",
    "n_units",
    "n_treated_units",
    "n_clusters",
    "n_periods",
)

#: What :meth:`Evaluation.tidy` adds to :data:`TIDY_FIELDS` for each outcome (also in the
#: evidence record, under the same names).
OUTCOME_FIELDS: tuple[str, ...] = (
    "label",
    "primary",
    "p_value_adjusted",
    "baseline_mean",
    "relative_effect",
    "mde",
)


@dataclass(frozen=True)
class EventTimeEstimate:
    """Effect at one period relative to the start (``event_time`` 0 = first treated period)."""

    event_time: int
    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    p_value: float = math.nan
    reference: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {k: json_scalar(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class PreTrendTest:
    """Joint test that all pre-period effects are zero.

    ``statistic`` is the test statistic (the Wald statistic for Wald tests); ``p_value`` is
    referred to ``reference``: ``"F"`` (Hotelling T² F-approximation with ``df`` and
    ``df_denom`` degrees of freedom), ``"chi2"`` (chi-squared with ``df``) or
    ``"randomization"`` (share of re-assigned statistics at least as large). ``p_value_chi2``
    keeps the large-sample chi-squared p-value of a Wald statistic (``nan`` otherwise).
    ``power`` is what the test could detect (:class:`PreTrendPower`, Roth 2022), when the
    pre-period estimates' covariance allows it.
    """

    test: str
    statistic: float
    df: int
    p_value: float
    reference: str = "chi2"
    p_value_chi2: float = math.nan
    df_denom: float | None = None
    power: PreTrendPower | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out = {k: json_scalar(v) for k, v in self.__dict__.items() if k != "power"}
        out["power"] = self.power.to_dict() if self.power is not None else None
        return out


@dataclass(frozen=True, eq=False)
class PrePeriodCells:
    """Every pre-period cell estimate of a group-time fit (tested jointly before its event-time
    averages): ``estimates`` ``(q,)``, their covariance ``cov`` ``(q, q)`` and the clusters'
    contributions ``scores`` ``(G, q)`` (``cov`` is ``scores' scores``)."""

    estimates: np.ndarray
    cov: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True, eq=False)
class PrePeriodEstimates:
    """The pre-period (lead) estimates of a fit: what its parallel-trends pre-test reads.

    An estimator with event times fills this in; the pre-test itself
    (:func:`pilotlab.diagnostics.pretrend.apply_pretrend`) is applied after the fit, as
    inference is, and sets :attr:`EffectResult.pre_trend`.

    Attributes
    ----------
    kind : {"leads", "group_time"}
        ``leads``: regression coefficients of the event times before the reference period
        (tested by Wald with the F reference, else by randomisation, else chi-squared).
        ``group_time``: the pre-period event-time averages of group-time effects, with the
        cells behind them in ``cells`` (tested cells first, then the averages, then their
        level and slope; by randomisation with inference for few treated clusters).
    event_times : tuple of int
        Event time of each estimate.
    estimates, std_errors : numpy.ndarray
        ``(q,)`` the estimates and their standard errors.
    cov : numpy.ndarray
        ``(q, q)`` their estimated covariance.
    n_clusters : int
        Clusters behind ``cov`` (cluster-robust), or the residual degrees of freedom plus one
        for heteroskedasticity-robust and iid errors (the classical F reference).
    scores : numpy.ndarray or None
        ``(G, q)`` cluster contributions (``cov`` proportional to ``scores' scores``), which
        give the effective number of clusters; ``None`` without clusters.
    reference : int
        Reference event time (``-1 - anticipation``).
    window : (int, int) or None
        Event window ``(pre, post)`` of the fit, kept fixed when the randomisation test
        re-fits the estimator (``None``: the estimator's own choice).
    cells : PrePeriodCells or None
        Group-time fits: the cells behind the averages (``None`` when there are none).
    """

    kind: Literal["leads", "group_time"]
    event_times: tuple[int, ...]
    estimates: np.ndarray
    std_errors: np.ndarray
    cov: np.ndarray
    n_clusters: int
    scores: np.ndarray | None = None
    reference: int = -1
    window: tuple[int, int] | None = None
    cells: PrePeriodCells | None = None


@dataclass(frozen=True)
class RobustnessCheck:
    """One robustness or sensitivity check and whether it agrees with the main estimate."""

    check: str
    estimate: float
    ci_lower: float
    ci_upper: float
    consistent: bool | None
    description: str = ""
    details: CheckDetails | None = None

    @property
    def inference(self) -> str | None:
        """The inference behind the check's interval, when the check states one."""
        return getattr(self.details, "inference", None)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``details``: the check kind's own fields, NaN as ``null``)."""
        out = {
            k: json_scalar(getattr(self, k))
            for k in ("check", "estimate", "ci_lower", "ci_upper", "consistent", "description")
        }
        out["details"] = self.details.to_dict() if self.details is not None else {}
        return out


@dataclass(frozen=True)
class EffectResult:
    """The estimated effect of the pilot on one outcome, with its inference.

    Estimator-specific material is held in typed parts, at most one of each: ``linear`` (the
    regression behind the estimate, for the wild bootstrap, Romano-Wolf and power),
    ``staggered`` (group-time tables), ``synthetic`` (donor and time weights, paths, placebo
    runs), ``group_means`` (the two-by-two means) and ``inference_details`` (what permutation or
    wild-bootstrap inference did). ``event_study_inference`` states the inference behind the
    period-by-period intervals when it differs from what ``inference`` implies.
    ``pre_period`` holds what the parallel-trends pre-test reads (set by estimators with event
    times); the test's outcome is ``pre_trend``.
    """

    estimator: str
    outcome: str
    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    p_value: float
    alpha: float
    inference: str
    nobs: int
    n_units: int
    n_treated_units: int
    n_clusters: int
    n_periods: int
    estimand: str = "ATT"
    event_study: tuple[EventTimeEstimate, ...] = ()
    pre_trend: PreTrendTest | None = None
    warnings: tuple[Notice, ...] = ()
    linear: LinearParts | None = None
    staggered: StaggeredTables | None = None
    synthetic: SyntheticTables | None = None
    group_means: GroupMeans | None = None
    inference_details: InferenceRecord | None = None
    event_study_inference: str | None = None
    randomised: RandomisedTables | None = None
    pre_period: PrePeriodEstimates | None = field(default=None, compare=False, repr=False)

    def conf_int(self) -> tuple[float, float]:
        """Confidence interval at level ``1 - alpha``."""
        return (self.ci_lower, self.ci_upper)

    def tidy(self) -> pd.DataFrame:
        """One-row DataFrame of the headline estimate."""
        return pd.DataFrame([self.headline()], columns=list(TIDY_FIELDS))

    def headline(self) -> dict[str, Any]:
        """The :data:`TIDY_FIELDS` of this result as a dict (full precision, Python scalars)."""
        return {k: getattr(self, k) for k in TIDY_FIELDS}

    def event_study_frame(self) -> pd.DataFrame:
        """Event-time estimates as a DataFrame (empty when the estimator has none)."""
        cols = [
            "event_time",
            "estimate",
            "std_error",
            "ci_lower",
            "ci_upper",
            "p_value",
            "reference",
        ]
        return pd.DataFrame([e.__dict__ for e in self.event_study], columns=cols)


@dataclass(frozen=True)
class Choice:
    """A design decision and the reason shown to the reader."""

    name: str
    reason: str


@dataclass(frozen=True)
class PlanInfo:
    """The analysis plan used and how it relates to the registered one.

    ``deviations`` are the registered amendments (versions 2, 3, ...: ``at``, ``item``,
    ``reason``, ``data_seen``). ``unregistered_deviations`` are the differences between the plan
    analysed and the latest registered version that no amendment covers, key by key: ``key``,
    ``registered`` and ``analysed`` values (``registered_set`` / ``analysed_set`` are False where
    the key is absent on that side).
    """

    sha256: str
    registered: bool = False
    version: int | None = None
    registered_at: str | None = None
    matches_registered: bool | None = None
    deviations: tuple[Deviation, ...] = ()
    registry_head: str | None = None  # the registry's chain head (SEQ:SHA256) when plan was read
    unregistered_deviations: tuple[PlanDifference, ...] = ()

    @property
    def changed_keys(self) -> tuple[str, ...]:
        """Plan keys analysed differently from the registered plan without an amendment."""
        return tuple(d.key for d in self.unregistered_deviations)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the evidence record's ``plan`` block)."""
        return {
            "sha256": self.sha256,
            "registered": self.registered,
            "version": self.version,
            "registered_at": self.registered_at,
            "matches_registered": self.matches_registered,
            "deviations": [d.to_dict() for d in self.deviations],
            "registry_head": self.registry_head,
            "unregistered_deviations": [d.to_dict() for d in self.unregistered_deviations],
        }


@dataclass(frozen=True)
class MicrodataCounts:
    """The person-level counts behind a microdata panel, for the report and the evidence record.

    ``rows`` person rows read (``rows_used``: those with each outcome observed), ``persons``
    distinct person ids (``None`` without ``data.person``), ``cells`` area x period cells.
    """

    rows: int
    persons: int | None
    cells: int
    files: int
    rows_used: Mapping[str, int]
    person_column: str | None = None
    covariates_within_cells: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "rows": self.rows,
            "persons": self.persons,
            "cells": self.cells,
            "files": self.files,
            "rows_used": dict(self.rows_used),
            "person_column": self.person_column,
            "covariates_within_cells": list(self.covariates_within_cells),
        }


@dataclass(frozen=True)
class DataSummary:
    """What was analysed: source, size, periods, unit flow, missing values."""

    path: str
    sha256: str
    rows: int
    units: int
    treated_units: int
    periods: int
    first_period: str
    last_period: str
    period_labels: tuple[str, ...]
    treated_unit_labels: tuple[str, ...]
    adoption: Mapping[str, str]
    excluded_units: tuple[str, ...]
    balanced: bool
    layout: str
    unit_flow: UnitFlow | None
    missing: tuple[MissingSummary, ...]
    clusters: int
    treated_clusters: int
    staggered: bool
    pre_periods: int
    #: Person-level counts of microdata (rows, persons, cells, files, rows per outcome).
    microdata: MicrodataCounts | None = None

    def flow(self) -> UnitFlow:
        """How units went from the data to the analysis (all analysed when it was not recorded)."""
        if self.unit_flow is not None:
            return self.unit_flow
        n, treated = self.units, self.treated_units
        return UnitFlow(in_data=n, eligible=n, treated=treated, comparison=n - treated, analysed=n)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the evidence record's ``data`` block)."""
        micro = {} if self.microdata is None else {"microdata": self.microdata.to_dict()}
        return {
            **micro,
            "path": self.path,
            "sha256": self.sha256,
            "rows": self.rows,
            "units": self.units,
            "treated_units": self.treated_units,
            "periods": self.periods,
            "first_period": self.first_period,
            "last_period": self.last_period,
            "excluded_units": list(self.excluded_units),
            "balanced": self.balanced,
            "layout": self.layout,
            "clusters": self.clusters,
            "treated_clusters": self.treated_clusters,
            "staggered": self.staggered,
            "unit_flow": {} if self.unit_flow is None else self.unit_flow.to_dict(),
            "missing": [m.to_dict() for m in self.missing],
        }


@dataclass(frozen=True)
class OutcomeEvaluation:
    """Everything estimated for one outcome."""

    column: str
    label: str
    primary: bool
    better: str
    mde: float | None
    result: EffectResult
    p_value_adjusted: float
    baseline_mean: float
    trends: pd.DataFrame  # period, treated, comparison (mean outcome per group)
    robustness: tuple[RobustnessCheck, ...] = ()

    @property
    def relative_effect(self) -> float:
        """Estimate relative to the treated units' pre-period mean."""
        if not self.baseline_mean or not math.isfinite(self.baseline_mean):
            return math.nan
        return self.result.estimate / self.baseline_mean

    @property
    def improved(self) -> bool | None:
        """Whether the effect is a significant change in the better direction (None if not significant)."""
        r = self.result
        if (
            not (math.isfinite(r.ci_lower) and math.isfinite(r.ci_upper))
            or r.ci_lower <= 0 <= r.ci_upper
        ):
            return None
        return (r.estimate < 0) == (self.better == "lower")

    def headline(self) -> dict[str, Any]:
        """:data:`TIDY_FIELDS` of the result and :data:`OUTCOME_FIELDS` of this outcome."""
        row = self.result.headline()
        row.update({k: getattr(self, k) for k in OUTCOME_FIELDS})
        return row


@dataclass(frozen=True)
class Evaluation:
    """The complete evaluation of a pilot: what the report and the evidence record are built from."""

    pilot: PilotLike  # the PilotSpec (a Protocol, so results stay below the spec stage)
    data: DataSummary
    estimator: Choice
    inference: Choice
    outcomes: tuple[OutcomeEvaluation, ...]
    plan: PlanInfo
    software: Mapping[str, str]
    seed: int
    alpha: float
    multiple_testing: str
    generated_at: str
    command: str = ""
    warnings: tuple[Notice, ...] = ()
    evidence_strength: EvidenceStrength | None = None
    diagnostics: DesignDiagnostics = field(default_factory=DesignDiagnostics)
    #: value for money per outcome column (only when the pilot file states its costs)
    value_for_money: Mapping[str, ValueForMoney] = field(
        default_factory=lambda: MappingProxyType({})
    )
    trial: TrialSummary | None = None  # randomised pilots: flow, balance, allocation check
    cycle: CycleInfo | None = None  # learning cycles: the pilot followed and earlier results

    def tidy(self) -> pd.DataFrame:
        """One row per outcome: the headline estimates with adjusted p-values and baselines."""
        return pd.DataFrame(
            [o.headline() for o in self.outcomes], columns=[*TIDY_FIELDS, *OUTCOME_FIELDS]
        )

    # ------------------------------------------------------------------ display

    def _title(self) -> str:
        return str(self.pilot.title or self.pilot.id or "pilot")

    def _summary_line(self) -> str:
        es = self.evidence_strength
        bits = [f"{self.estimator.name}, {self.inference.name} inference"]
        if es is not None:
            bits.append(f"evidence level {es.level} of 5")
        if not self.plan.registered:
            bits.append("plan not registered")
        elif self.plan.matches_registered is False:
            n = len(self.plan.unregistered_deviations)
            bits.append(
                f"plan differs from registered version {self.plan.version}"
                + (f" ({n} unregistered deviation{'s' if n != 1 else ''})" if n else "")
            )
        else:
            bits.append(f"registered plan version {self.plan.version}")
        return "; ".join(bits)

    def _rows(self) -> list[tuple[str, str, str, str, str]]:
        level = f"{round(100 * (1 - self.alpha)):g}%"
        rows = []
        for o in self.outcomes:
            r = o.result
            adj = "" if o.p_value_adjusted == r.p_value else f" (adj. {_g(o.p_value_adjusted, 3)})"
            rows.append(
                (
                    o.label + (" (primary)" if o.primary else ""),
                    _g(r.estimate),
                    f"{level} CI {_g(r.ci_lower)} to {_g(r.ci_upper)}",
                    _g(r.p_value, 3) + adj,
                    f"{r.n_treated_units} of {r.n_units} treated",
                )
            )
        return rows

    def __repr__(self) -> str:
        """A few lines: the pilot, the design, and one line per outcome."""
        lines = [f"<Evaluation of {self._title()!r}: {self._summary_line()}>"]
        for label, est, ci, p, _ in self._rows():
            lines.append(f"  {label}: {est} ({ci}; p = {p})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """A compact table for Jupyter (every value HTML-escaped)."""
        from html import escape

        head = "".join(
            f"<th>{escape(h)}</th>" for h in ("Outcome", "Estimate", "Interval", "p-value", "Units")
        )
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in self._rows()
        )
        return (
            '<div class="pilotlab-evaluation">'
            f"<p><strong>Evaluation of {escape(self._title())}</strong><br>"
            f"{escape(self._summary_line())}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            "</div>"
        )


def _g(x: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits for display (``n/a`` when missing)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}g}"  # inf / -inf for an unbounded interval
