"""Power computations: placebo pilots drawn from a history, their test decisions, the MDE.

This package computes only: it reads a :class:`~pilotlab.data.panel.Panel` and an estimator's
options and returns numbers and typed results. Reading the pilot file, choosing the estimator
and inference, and writing ``power.json`` / ``power.html`` belong to the engine
(:func:`pilotlab.run_power`, :mod:`pilotlab.engine.plan`).

* :mod:`~pilotlab.power.analytic`: the analytic DiD MDE with serial correlation;
* :mod:`~pilotlab.power.draws`: the placebo pilots' treated units and start dates;
* :mod:`~pilotlab.power.simulate`: their test decisions at each injected effect (fast paths);
* :mod:`~pilotlab.power.curve`: the effect grid, the MDE and the check of the test's size;
* :mod:`~pilotlab.power.result`: the typed results the power page renders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pilotlab.lazy import lazy_exports

if TYPE_CHECKING:
    from pilotlab.power.analytic import (
        analytic_mde,
        analytic_power,
        ar1_covariance,
        did_variance,
        estimate_ar1,
        history_matrix,
        textbook_did_mde,
    )
    from pilotlab.power.curve import (
        GRID_MULTIPLES,
        binomial_interval,
        mde_from_curve,
        nice_effect,
        over_rejection_advice,
        rough_effect_scale,
    )
    from pilotlab.power.draws import draw_placebos, placebo_panel, placebo_seeds
    from pilotlab.power.result import AnalyticMDE, PowerPoint, PowerResult, TradeoffCell
    from pilotlab.power.simulate import (
        MIN_SIMULATIONS,
        CappedRun,
        PlaceboRejections,
        ProgressCallback,
        SimulationPath,
        SimulationRun,
        available_cpus,
        run_simulation,
        simulate_placebos,
        simulate_rejections,
    )

#: Where each public name lives (imported on first use: ``pilotlab run`` needs only the
#: analytic MDE, not the simulations).
_HOME = {
    "AnalyticMDE": "result",
    "CappedRun": "simulate",
    "GRID_MULTIPLES": "curve",
    "MIN_SIMULATIONS": "simulate",
    "PlaceboRejections": "simulate",
    "PowerPoint": "result",
    "PowerResult": "result",
    "ProgressCallback": "simulate",
    "SimulationPath": "simulate",
    "SimulationRun": "simulate",
    "TradeoffCell": "result",
    "analytic_mde": "analytic",
    "analytic_power": "analytic",
    "ar1_covariance": "analytic",
    "available_cpus": "simulate",
    "binomial_interval": "curve",
    "did_variance": "analytic",
    "draw_placebos": "draws",
    "estimate_ar1": "analytic",
    "history_matrix": "analytic",
    "mde_from_curve": "curve",
    "nice_effect": "curve",
    "over_rejection_advice": "curve",
    "placebo_panel": "draws",
    "placebo_seeds": "draws",
    "rough_effect_scale": "curve",
    "run_simulation": "simulate",
    "simulate_placebos": "simulate",
    "simulate_rejections": "simulate",
    "textbook_did_mde": "analytic",
}

__all__ = [
    "GRID_MULTIPLES",
    "MIN_SIMULATIONS",
    "AnalyticMDE",
    "CappedRun",
    "PlaceboRejections",
    "PowerPoint",
    "PowerResult",
    "ProgressCallback",
    "SimulationPath",
    "SimulationRun",
    "TradeoffCell",
    "analytic_mde",
    "analytic_power",
    "ar1_covariance",
    "available_cpus",
    "binomial_interval",
    "did_variance",
    "draw_placebos",
    "estimate_ar1",
    "history_matrix",
    "mde_from_curve",
    "nice_effect",
    "over_rejection_advice",
    "placebo_panel",
    "placebo_seeds",
    "rough_effect_scale",
    "run_simulation",
    "simulate_placebos",
    "simulate_rejections",
    "textbook_did_mde",
]

__getattr__ = lazy_exports(__name__, _HOME)
