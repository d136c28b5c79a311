"""The typed results of power planning, as the power page and ``power.json`` read them.

Plain frozen dataclasses with a ``to_dict()`` each (the content of ``power.json``); nothing here
computes. The report's power page renders :class:`PowerResult` without importing the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pilotlab.power.scheme import SchemePower
from pilotlab.results import AnalyticMDE, json_scalar

__all__ = ["AnalyticMDE", "PowerPoint", "PowerResult", "TradeoffCell"]


@dataclass(frozen=True)
class PowerPoint:
    """Simulated power at one effect size."""

    effect: float
    power: float
    mc_error: float  # Monte Carlo standard error sqrt(p (1 - p) / n)
    n: int  # placebo pilots with a valid test
    analytic_power: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {k: json_scalar(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class TradeoffCell:
    """One design of the trade-off grid: number of treated units x post-period length."""

    n_treated: int
    post_periods: int
    mde: float | None
    analytic_mde: float  # planned design: the whole history before the start
    analytic_mde_placebo: float  # the placebo designs simulated (comparable with ``mde``)
    false_positive_rate: float
    power_at_declared_mde: float | None
    estimator: str = ""
    inference: str = ""  # resolved for this design (``auto`` may differ between designs)
    over_rejects: bool = False  # false-positive rate clearly above alpha: no MDE claimed

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {k: json_scalar(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class PowerResult:
    """Power and minimum detectable effect of a planned pilot, from placebos in its history."""

    pilot_id: str
    title: str
    outcome: str
    outcome_label: str
    better: str
    estimator: str
    inference: str
    estimator_reason: str
    inference_reason: str
    alpha: float
    target_power: float
    simulations: int
    failed: int
    n_treated: int
    treated_units: tuple[str, ...]  # the planned units when given, else empty (random draws)
    post_periods: int
    min_pre_periods: int
    n_units: int
    n_periods: int
    history: tuple[str, str]  # first and last period of the history used
    seed: int
    path: str
    curve: tuple[PowerPoint, ...]
    mde: float | None
    false_positive_rate: float
    false_positive_mc_error: float
    declared_mde: float | None
    power_at_declared_mde: float | None
    analytic: AnalyticMDE | None
    false_positives: int = 0  # placebo pilots rejecting at zero effect
    false_positive_interval: tuple[float, float] = (math.nan, math.nan)  # 95% Clopper-Pearson
    over_rejects: bool = False  # the interval lies above alpha: no MDE is claimed
    advice: str = ""  # which inference to use instead, when over_rejects
    #: ``random``: placebo pilots draw the treated units at random (the design's power);
    #: ``conditional``: they keep the named units (power conditional on their history)
    assignment: str = "random"
    tradeoff: tuple[TradeoffCell, ...] = ()
    notes: tuple[str, ...] = ()
    #: A randomised pilot: power under its own allocation scheme against complete randomisation
    scheme: SchemePower | None = None
    #: A stepped roll-out: how many units the simulated roll-out treats and why that differs
    #: from the pilot's total, in plain words (empty otherwise)
    rollout: str = ""
    unit_label: str = "unit"  # what a unit is called in prose (data.unit_label)
    period_word: str = "period"  # what a period is called in prose (month, quarter, period)
    elapsed_seconds: float = 0.0
    software: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The content of ``power.json``."""
        d: dict[str, Any] = {
            k: json_scalar(v)
            for k, v in self.__dict__.items()
            if k
            not in {
                "curve", "analytic", "tradeoff", "notes", "treated_units", "history",
                "false_positive_interval", "scheme",
            }
        }  # fmt: skip
        d["false_positive_interval"] = [json_scalar(v) for v in self.false_positive_interval]
        d["treated_units"] = list(self.treated_units)
        d["history"] = {"first": self.history[0], "last": self.history[1]}
        d["table"] = [p.to_dict() for p in self.curve]
        d["analytic"] = self.analytic.to_dict() if self.analytic else None
        d["tradeoff"] = [c.to_dict() for c in self.tradeoff]
        d["notes"] = list(self.notes)
        if self.scheme is not None:
            d["scheme"] = self.scheme.to_dict()
        return d
