"""Two-way fixed effects: ``y_it = a_i + g_t + b*D_it (+ covariates) + e_it``.

Unit and period effects are absorbed by within-transformation (never dummy columns), so it scales
to tens of thousands of units. Under staggered adoption with effects that change over time ``b``
is a weighted average that can even have the wrong sign; see the Goodman-Bacon diagnostic.
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
from pilotlab.exceptions import notice
from pilotlab.results import EffectResult, LinearParts

__all__ = ["fit_twfe"]


def fit_twfe(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Two-way fixed-effects estimate of the effect of being treated."""
    D = panel.treated_now.astype(float)[:, None]
    fit = fit_panel(panel, outcome, D, ("treated_post",), options)
    est, se = float(fit.beta[0]), float(fit.std_errors[0])
    warnings = size_warnings(panel, options.inference)
    if panel.is_staggered:
        warnings += (
            notice(
                "staggered-twfe",
                "Treated units start at different times: the two-way fixed-effects estimate "
                "mixes in comparisons of later- with earlier-treated units and is biased when "
                "effects change over time; prefer callaway_santanna.",
            ),
        )
    return linear_effect(
        "twfe",
        panel,
        outcome,
        options,
        fit,
        est,
        se,
        warnings,
        linear=LinearParts(fit, coef_index=0),
    )


ENTRY = register(
    EstimatorEntry(
        name="twfe",
        title="two-way fixed-effects difference in differences",
        fit=fit_twfe,
        description="two-way fixed effects (unit and period effects absorbed)",
        capabilities=Capabilities(
            layouts=("panel", "repeated_cross_section", "microdata"),
            inference=LINEAR_INFERENCE,
            linear=True,
            closed_form_permutation=True,
            twfe_coefficient=True,
            covariates=True,
        ),
    )
)
