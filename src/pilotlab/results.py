"""Immutable result objects shared by estimators, the engine, the report and the registry.

Vocabulary follows statsmodels: ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``,
``p_value``, ``nobs``. Every table in the report and every row of the evidence record is built
from :meth:`EffectResult.tidy` / :meth:`Evaluation.tidy`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pandas as pd

__all__ = [
    "EffectResult",
    "Evaluation",
    "EventTimeEstimate",
    "PreTrendTest",
    "RobustnessCheck",
]


def _clean(value: Any) -> Any:
    """Return ``None`` for NaN / inf floats so JSON never carries them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
        return {k: _clean(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class PreTrendTest:
    """Joint test that all pre-period effects are zero."""

    test: str
    statistic: float
    df: int
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {k: _clean(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class RobustnessCheck:
    """One robustness or sensitivity check and whether it agrees with the main estimate."""

    check: str
    estimate: float
    ci_lower: float
    ci_upper: float
    consistent: bool | None
    description: str = ""
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (details are kept only when JSON-compatible by construction)."""
        out = {
            k: _clean(getattr(self, k))
            for k in ("check", "estimate", "ci_lower", "ci_upper", "consistent", "description")
        }
        out["details"] = dict(self.details)
        return out


@dataclass(frozen=True)
class EffectResult:
    """The estimated effect of the pilot on one outcome, with its inference.

    ``details`` holds estimator-specific material (group-time effects, donor weights, synthetic
    paths) as DataFrames or plain values, keyed by name; it is read by the report and the evidence
    record, never written after construction.
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
    warnings: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def conf_int(self) -> tuple[float, float]:
        """Confidence interval at level ``1 - alpha``."""
        return (self.ci_lower, self.ci_upper)

    def tidy(self) -> pd.DataFrame:
        """One-row DataFrame of the headline estimate."""
        return pd.DataFrame(
            [
                {
                    "outcome": self.outcome,
                    "estimator": self.estimator,
                    "estimand": self.estimand,
                    "inference": self.inference,
                    "estimate": self.estimate,
                    "std_error": self.std_error,
                    "ci_lower": self.ci_lower,
                    "ci_upper": self.ci_upper,
                    "p_value": self.p_value,
                    "alpha": self.alpha,
                    "nobs": self.nobs,
                    "n_units": self.n_units,
                    "n_treated_units": self.n_treated_units,
                    "n_clusters": self.n_clusters,
                    "n_periods": self.n_periods,
                }
            ]
        )

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
