"""Two-by-two difference in differences: treated vs comparison group, pooled pre vs post periods.

Estimated as ``y = a + b*treated + c*post + d*treated*post (+ covariates)`` on every observation, so
it works on panels (balanced or not) and repeated cross-sections; ``d`` is the difference between
the treated and comparison groups' changes in mean outcome.
"""

from __future__ import annotations

import numpy as np

from pilotlab.data.panel import Panel
from pilotlab.estimators._regression import (
    LINEAR_INFERENCE,
    fit_panel,
    linear_effect,
    size_warnings,
)
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.exceptions import EstimationError
from pilotlab.results import EffectResult, GroupMeans, LinearParts

__all__ = ["fit_did"]


def fit_did(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """2x2 difference in differences (see module docstring)."""
    if panel.is_staggered:
        raise EstimationError(
            "design.estimator: did needs one common start, but treated units start in "
            f"{len(panel.cohorts)} different periods; use callaway_santanna (or auto)"
        )
    start = int(panel.cohorts[0]) - panel.anticipation
    treated = panel.is_treated_unit[panel.unit].astype(float)
    post = (panel.time >= start).astype(float)
    X = np.column_stack([treated, post, treated * post])
    fit = fit_panel(
        panel, outcome, X, ("treated", "post", "treated:post"), options, fixed_effects=False
    )
    j = fit.coef("treated:post")
    est, se = float(fit.beta[j]), float(fit.std_errors[j])
    y = panel.y(outcome)
    means = {
        (g, q): float(
            np.average(
                y[(treated == g) & (post == q)], weights=panel.weight[(treated == g) & (post == q)]
            )
        )
        for g in (0, 1)
        for q in (0, 1)
    }
    return linear_effect(
        "did",
        panel,
        outcome,
        options,
        fit,
        est,
        se,
        size_warnings(panel, options.inference),
        group_means=GroupMeans(
            comparison_before=means[(0, 0)],
            comparison_after=means[(0, 1)],
            treated_before=means[(1, 0)],
            treated_after=means[(1, 1)],
        ),
        linear=LinearParts(fit, coef_index=j),
    )


ENTRY = register(
    EstimatorEntry(
        name="did",
        title="difference in differences (before and after, pilot and comparison)",
        fit=fit_did,
        description="2x2 difference in differences (treated vs comparison, pooled pre vs post)",
        capabilities=Capabilities(
            layouts=("panel", "repeated_cross_section", "microdata"),
            inference=LINEAR_INFERENCE,
            linear=True,
            closed_form_permutation=True,
            covariates=True,
            auto="two_periods",
        ),
    )
)
