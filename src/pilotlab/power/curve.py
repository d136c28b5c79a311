"""The power curve: the effect grid, the MDE read off it and the check of the test's size.

When the false-positive rate at zero effect is clearly above ``alpha`` (its 95% Clopper-Pearson
interval lies above it), no MDE is claimed and :func:`over_rejection_advice` says what to use
instead.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from pilotlab.data.panel import Panel
from pilotlab.estimators import get_estimator
from pilotlab.estimators._regression import LINEAR_INFERENCE
from pilotlab.inference.select import WILD_MIN_TREATED

__all__ = [
    "GRID_MULTIPLES",
    "binomial_interval",
    "mde_from_curve",
    "nice_effect",
    "over_rejection_advice",
    "rough_effect_scale",
]

#: Default effect grid, in multiples of the analytic MDE of the simulated design.
GRID_MULTIPLES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


def mde_from_curve(effects: np.ndarray, power: np.ndarray, target: float) -> float | None:
    """Smallest effect at which the power curve reaches ``target`` (linear interpolation).

    ``None`` when the curve stays below the target over the grid.
    """
    order = np.argsort(effects)
    e, p = np.asarray(effects, float)[order], np.asarray(power, float)[order]
    hit = np.flatnonzero(p >= target)
    if hit.size == 0:
        return None
    j = int(hit[0])
    if j == 0:
        return float(e[0])
    frac = (target - p[j - 1]) / (p[j] - p[j - 1])
    return float(e[j - 1] + frac * (e[j] - e[j - 1]))


def nice_effect(x: float) -> float:
    """Round to three significant figures (grid values people read)."""
    if x == 0 or not math.isfinite(x):
        return 0.0
    return float(f"{x:.3g}")


def rough_effect_scale(panel: Panel, outcome: str, k: int, post: int) -> float:
    """An effect scale for the grid when no analytic MDE exists (unbalanced history)."""
    y = panel.y(outcome)
    within = y - pd.Series(y).groupby(panel.unit).transform("mean").to_numpy()
    sd = float(np.nanstd(within))
    return 2.8 * sd * math.sqrt(2 / post) * math.sqrt(1 / k + 1 / max(panel.n_units - k, 1))


def binomial_interval(x: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a binomial proportion (``x`` successes of ``n``)."""
    if n <= 0:
        return math.nan, math.nan
    a = (1 - level) / 2
    lo = 0.0 if x == 0 else float(stats.beta.ppf(a, x, n - x + 1))
    hi = 1.0 if x == n else float(stats.beta.ppf(1 - a, x + 1, n - x))
    return lo, hi


def over_rejection_advice(
    inference: str, estimator: str, n_treated: int, n_units: int, fixed: bool
) -> str:
    """What to use instead of an inference that over-rejects (never the one in use)."""
    if fixed:
        return (
            "Holding the named units fixed, their own history makes the test find effects "
            "that are not there; no choice of inference removes that for these units. Choose "
            "the treated units at random from the eligible ones and plan with the design's "
            "power (leave out design.power.conditional_on_units), or check these units' trends "
            "before the start."
        )
    if inference in LINEAR_INFERENCE:
        few = min(n_treated, n_units - n_treated)
        if get_estimator(estimator).capabilities.linear and few >= WILD_MIN_TREATED:
            return (
                "Use the wild cluster bootstrap (design.inference.method: wild_bootstrap) or "
                "randomisation inference (permutation), and run pilotlab power again."
            )
        return (
            "Use randomisation inference (design.inference.method: permutation), and run "
            "pilotlab power again."
        )
    if inference == "wild_bootstrap":
        return (
            "Use randomisation inference (design.inference.method: permutation), which is "
            "exact when the treated units are chosen at random, and run pilotlab power again."
        )
    return (
        f"{inference.capitalize()} inference is exact only when the treated units are chosen "
        "at random from exchangeable units; the history suggests they are not (for example "
        "units of very different size or volatility). Restrict treatment.eligible to "
        "comparable units, or plan a larger pilot."
    )
