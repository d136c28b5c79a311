"""Fit an estimator with its parallel-trends pre-test, as the engine does."""

from __future__ import annotations

import dataclasses
import warnings
from functools import partial

import numpy as np

from pilotlab.data.panel import Panel
from pilotlab.diagnostics.pretrend import apply_pretrend
from pilotlab.estimators import EstimatorEntry, EstimatorOptions
from pilotlab.exceptions import PilotlabWarning
from pilotlab.inference.apply import apply_inference
from pilotlab.results import EffectResult, PreTrendTest


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


def mapped_and_refitted(
    entry: EstimatorEntry, panel: Panel, options: EstimatorOptions, seed: int = 5
) -> tuple[PreTrendTest, PreTrendTest]:
    """The pre-test of ``entry``'s fit of ``y`` twice with the same seed: through the
    estimator's pre-period map and with the map removed (one re-fit per re-assignment)."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotlabWarning)
        for e in (entry, dataclasses.replace(entry, pre_period_map=None)):
            res = e.fit(panel, "y", options, np.random.default_rng(seed))
            res = apply_pretrend(panel, "y", e, options, res, np.random.default_rng(seed))
            assert res.pre_trend is not None
            out.append(res.pre_trend)
    return out[0], out[1]
