"""The estimator contract.

An estimator is a pure function ``fit(panel, outcome, options, rng) -> EffectResult``: no I/O, no
printing, randomness only from ``rng``. It is declared once as an
:class:`~pilotlab.catalogue.EstimatorEntry` (name, title, fit, options model, capabilities) and
registered in the catalogue (:func:`~pilotlab.catalogue.register`, or the entry-point group
``pilotlab.estimators``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from pilotlab.catalogue import (
    ESTIMATORS,
    Capabilities,
    EstimatorEntry,
    FitFunction,
    register,
)
from pilotlab.catalogue import get as get_estimator
from pilotlab.spec.models import CallawaySantAnnaOptions, SyntheticOptions

__all__ = [
    "ESTIMATORS",
    "Capabilities",
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

    ``inference`` is a concrete method (``auto`` has been resolved by the engine). Options of one
    family are typed groups: ``callaway_santanna`` and ``synthetic`` (the pilot file's
    ``design.callaway_santanna`` / ``design.synthetic`` blocks), and ``estimator`` for an
    estimator from another package (``design.options``, validated against its entry's
    ``options`` model).
    """

    inference: InferenceName = "cluster"
    alpha: float = 0.05
    covariates: tuple[str, ...] = ()
    window: tuple[int, int] | None = None  # (pre, post) event times kept; ends binned
    replications: int = 999
    bootstrap_weights: Literal["auto", "rademacher", "webb", "mammen"] = "auto"
    callaway_santanna: CallawaySantAnnaOptions = field(default_factory=CallawaySantAnnaOptions)
    synthetic: SyntheticOptions = field(default_factory=SyntheticOptions)
    estimator: BaseModel | None = None
    #: Parallel-trends pre-test, applied after the fit by
    #: :func:`pilotlab.diagnostics.pretrend.apply_pretrend` (estimators do not read it): ``auto``
    #: = randomisation when ``inference`` is one chosen for few treated clusters (wild bootstrap
    #: / permutation), else the Wald test with an F reference.
    pretrend: Literal["auto", "wald", "randomization", "none"] = "auto"
