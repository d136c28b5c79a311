"""Triple differences: areas x eligible / ineligible groups x periods.

For pilots where only some people in a pilot area are eligible (``data.group``: 1 for rows of
eligible people, 0 for the others), the ineligible people of the same area absorb whatever
else changed in that area at the time. Within each area and period the estimator takes the
gap between the eligible and ineligible groups' mean outcomes, then runs a clean-comparison
difference in differences on that gap (pilot areas against comparison areas, each start
cohort against areas not treated over its window, exactly as the stacked estimator does):

    DDD = [(gap after - gap before) in pilot areas] - [(gap after - gap before) in comparison areas]

With two periods this is the textbook triple difference (and the coefficient of the
three-way fixed-effects regression with area x group, area x period and group x period
effects); with a common start and many periods the event-time effects equal that regression's
event-study coefficients; with a staggered roll-out each cohort is compared only with areas
not (yet) treated, so early starters never serve as comparisons (Ortiz-Villavicencio &
Sant'Anna's unconditional triple difference). Standard errors are clustered at the area level
(or coarser, ``data.cluster``) from the influence function of the gaps.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from pilotlab.data.panel import Panel
from pilotlab.estimators._cell_result import cell_design_result
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.estimators.event_study import event_time_window
from pilotlab.exceptions import EstimationError
from pilotlab.results import EffectResult

__all__ = ["TripleDifferenceOptions", "area_gaps", "fit_triple_difference"]


class TripleDifferenceOptions(BaseModel):
    """Options of the triple difference (``design.options``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aggregation: Literal["simple", "dynamic", "group"] = "simple"


def area_gaps(panel: Panel, outcome: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The eligible-minus-ineligible gap of weighted mean outcomes in every area and period
    where both groups are observed: ``(gap, unit, time, n_rows_used)``."""
    if panel.group is None:
        raise EstimationError(
            "data.group: the triple difference needs the column marking eligible (1) and "
            "ineligible (0) rows within each area; add data.group to the pilot file"
        )
    g = panel.frame[panel.group].to_numpy(np.float64).astype(np.int64)
    y, w = panel.y(outcome), panel.weight
    T = panel.n_periods
    cell = (panel.unit * T + panel.time) * 2 + g
    n_cells = panel.n_units * T * 2
    W = np.bincount(cell, weights=w, minlength=n_cells).reshape(-1, 2)
    sums = np.bincount(cell, weights=w * y, minlength=n_cells).reshape(-1, 2)
    both = (W[:, 0] > 0) & (W[:, 1] > 0)
    if both.all():  # every area and period has both groups: no index needed
        idx = np.arange(both.size)
        gap = sums[:, 1] / W[:, 1] - sums[:, 0] / W[:, 0]
        used = int(cell.size)
    else:
        idx = np.flatnonzero(both)
        gap = sums[idx, 1] / W[idx, 1] - sums[idx, 0] / W[idx, 0]
        used = int(both[cell // 2].sum())
    return gap, idx // T, idx % T, used


def fit_triple_difference(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Triple difference (see the module docstring)."""
    opts = (
        options.estimator
        if isinstance(options.estimator, TripleDifferenceOptions)
        else TripleDifferenceOptions()
    )
    if options.covariates:
        raise EstimationError(
            "design.covariates: the triple difference does not adjust for covariates; the "
            "ineligible group already absorbs what changed in each area; remove them"
        )
    gap, unit, time, used = area_gaps(panel, outcome)
    if gap.size == 0:
        raise EstimationError(
            f"data.group: no area and period has both eligible and ineligible rows with "
            f"{outcome} observed; the triple difference needs both groups in each area"
        )
    cl_of_unit = np.zeros(panel.n_units, dtype=np.int64)
    cl_of_unit[panel.unit] = panel.cluster
    cluster = cl_of_unit[unit]
    window = event_time_window(panel, options.window)
    return cell_design_result(
        "triple_difference",
        panel,
        outcome,
        options,
        rng,
        rows=(gap, np.ones(gap.size), unit, time, cluster),
        window=window,
        aggregation=opts.aggregation,
        nobs=used,
        method="triple difference (eligible minus ineligible gap, clean comparisons)",
        rectangular=gap.size == panel.n_units * panel.n_periods,  # sorted by area, period
    )


ENTRY = register(
    EstimatorEntry(
        name="triple_difference",
        title="triple difference (eligible and ineligible people, pilot and comparison areas)",
        fit=fit_triple_difference,
        description="Triple difference: the change in the gap between eligible and ineligible "
        "people in pilot areas against the same change in comparison areas",
        capabilities=Capabilities(
            inference=("cluster", "wild_bootstrap"),
            staggered=True,
            event_times=True,
            groups=True,
        ),
        options=TripleDifferenceOptions,
    )
)
