"""The estimator contract and registry.

An estimator is a pure function ``fit(panel, outcome, options, rng) -> EffectResult``: no I/O, no
printing, randomness only from ``rng``. Each family registers itself in :data:`ESTIMATORS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from pilotlab.data.panel import Panel
from pilotlab.exceptions import EstimationError
from pilotlab.results import EffectResult

__all__ = [
    "ESTIMATORS",
    "EstimatorEntry",
    "EstimatorOptions",
    "FitFunction",
    "get_estimator",
    "register",
]

InferenceName = Literal[
    "cluster", "wild_bootstrap", "permutation", "placebo", "robust", "iid", "jackknife"
]


@dataclass(frozen=True)
class EstimatorOptions:
    """Everything an estimator may read from the analysis plan (already validated).

    ``inference`` is a concrete method (``auto`` has been resolved by the engine).
    """

    inference: InferenceName = "cluster"
    alpha: float = 0.05
    covariates: tuple[str, ...] = ()
    window: tuple[int, int] | None = None  # (pre, post) event times kept; ends binned
    replications: int = 999
    bootstrap_weights: Literal["auto", "rademacher", "webb", "mammen"] = "auto"
    cs_method: Literal["dr", "ipw", "reg"] = "dr"
    base_period: Literal["varying", "universal"] = "varying"
    aggregation: Literal["simple", "dynamic", "group", "calendar"] = "simple"
    predictors: tuple[str, ...] = ()
    synthetic_fit_on: Literal["each", "average"] = "average"
    #: Parallel-trends pre-test: ``auto`` = randomisation when ``inference`` is one chosen for
    #: few treated clusters (wild bootstrap / permutation; ``apply_inference`` resolves it before
    #: fitting with cluster-robust errors), else the Wald test with an F reference.
    pretrend: Literal["auto", "wald", "randomization", "none"] = "auto"
    extra: dict[str, object] = field(default_factory=dict)


FitFunction = Callable[[Panel, str, EstimatorOptions, np.random.Generator], EffectResult]


@dataclass(frozen=True)
class EstimatorEntry:
    """A registered estimator."""

    name: str
    fit: FitFunction
    description: str
    inference: tuple[str, ...]  # inference methods it supports
    staggered: bool  # valid under staggered adoption with heterogeneous effects
    layouts: tuple[str, ...] = ("panel", "repeated_cross_section")

    @property
    def base_inference(self) -> str:
        """The inference the estimator computes itself when fitted: cluster-robust if it offers
        it, else its first method (post-hoc methods such as permutation are applied on top)."""
        return "cluster" if "cluster" in self.inference else self.inference[0]


ESTIMATORS: dict[str, EstimatorEntry] = {}


def register(entry: EstimatorEntry) -> EstimatorEntry:
    """Add an estimator to the registry (at import of its module)."""
    ESTIMATORS[entry.name] = entry
    return entry


def get_estimator(name: str) -> EstimatorEntry:
    """Look up an estimator; an unknown name lists the available ones."""
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise EstimationError(
            f"estimator '{name}' is not available; available estimators: "
            f"{', '.join(sorted(ESTIMATORS))}"
        ) from None
