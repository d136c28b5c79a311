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

from typing import TYPE_CHECKING

from pilotlab.lazy import lazy_exports

if TYPE_CHECKING:
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

#: Where each public name lives: a command imports only the stages it runs (``pilotlab run``
#: does not load power planning, randomisation or the registry's database layer).
_HOME = {
    "FEW_TREATED_FOR_SYNTHETIC": "choices",
    "MIN_PRE_FOR_SYNTHETIC": "choices",
    "PilotRun": "run",
    "Randomised": "randomise",
    "check_design": "choices",
    "choose_estimator": "choices",
    "choose_inference": "choices",
    "estimator_options": "choices",
    "evaluate": "evaluation",
    "inference_methods": "choices",
    "planning_history": "plan",
    "pre_periods": "choices",
    "randomise_pilot": "randomise",
    "run_pilot": "run",
    "run_power": "plan",
    "software_versions": "versions",
    "write_power_report": "plan",
}


__getattr__ = lazy_exports(__name__, _HOME)

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
