"""Fit an estimator with its parallel-trends pre-test, as the engine does."""

from __future__ import annotations

from functools import partial

import numpy as np

from pilotlab.data.panel import Panel
from pilotlab.diagnostics.pretrend import apply_pretrend
from pilotlab.estimators import EstimatorEntry, EstimatorOptions
from pilotlab.inference.apply import apply_inference
from pilotlab.results import EffectResult


def fit_tested(
    entry: EstimatorEntry,
    panel: Panel,
    outcome: str,
    options: EstimatorOptions,
    rng: np.random.Generator,
    power: bool = True,
) -> EffectResult:
    """``apply_inference`` with the pre-test applied right after the fit (``engine.evaluate``);
    ``power=False`` leaves out what the test could detect, for Monte Carlo runs of its size."""
    stage = partial(apply_pretrend, panel, outcome, entry, options, rng=rng, power=power)
    return apply_inference(panel, outcome, entry, options, rng, after_fit=stage)
