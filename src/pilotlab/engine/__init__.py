"""The engine: where the stages meet, at the top of the layers.

* :mod:`~pilotlab.engine.choices`: which estimator and inference a pilot uses, and why, and the
  options every estimator reads (:func:`estimator_options`);
* :mod:`~pilotlab.engine.evaluation`: :func:`evaluate`, pilot file -> Panel -> estimator per
  outcome -> inference, multiple testing, robustness checks -> :class:`~pilotlab.results.Evaluation`;
* :mod:`~pilotlab.engine.plan`: :func:`run_power`, power planning from the history (the
  computations are :mod:`pilotlab.power`'s), and :func:`write_power_report`;
* :mod:`~pilotlab.engine.run`: :func:`run_pilot`, what ``pilotlab run`` does (evaluate, write
  the outputs, record the run in the registry).

The command line parses its options, calls these functions and prints.
"""

from __future__ import annotations

from pilotlab.engine.choices import (
    FEW_TREATED_FOR_SYNTHETIC,
    MIN_PRE_FOR_SYNTHETIC,
    check_design,
    choose_estimator,
    choose_inference,
    estimator_options,
    inference_methods,
    pre_periods,
)
from pilotlab.engine.evaluation import evaluate
from pilotlab.engine.plan import planning_history, run_power, write_power_report
from pilotlab.engine.randomise import Randomised, randomise_pilot
from pilotlab.engine.run import PilotRun, run_pilot
from pilotlab.engine.versions import software_versions

__all__ = [
    "FEW_TREATED_FOR_SYNTHETIC",
    "MIN_PRE_FOR_SYNTHETIC",
    "PilotRun",
    "Randomised",
    "check_design",
    "choose_estimator",
    "choose_inference",
    "estimator_options",
    "evaluate",
    "inference_methods",
    "planning_history",
    "pre_periods",
    "randomise_pilot",
    "run_pilot",
    "run_power",
    "software_versions",
    "write_power_report",
]
