"""The headline of a balanced panel without covariates as a linear map of block sums.

Without covariates every ATT(g,t) is a difference of means of outcome changes: the cohort's
``(Zb[g, t] - Zb[g, b]) / W_g`` less the comparison blocks' ``sum_h (Zb[h, t] - Zb[h, b]) / W_c``,
with ``Zb`` the outcome sums of each block (cohort or never treated) and ``W`` their sizes; an
aggregation weights the cells by cohort shares. So the headline is ``sum_{h,t} coef[h, t] Zb[h,
t]`` with coefficients that depend on the block sizes only, which permutation inference keeps
(:mod:`pilotlab.estimators.block_map`).
"""

from __future__ import annotations

import warnings

import numpy as np

from pilotlab.data.panel import Panel
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.block_map import BlockMap
from pilotlab.estimators.callaway_santanna.aggregate import _plan
from pilotlab.estimators.callaway_santanna.prepare import (
    _finalise_units,
    _make_cells,
    _subset_units,
    _unit_arrays,
)
from pilotlab.exceptions import Notice

__all__ = ["headline_block_map"]

_OVERALL = ("simple", "dynamic", "group", "calendar")


def headline_block_map(
    panel: Panel, outcome: str, options: EstimatorOptions, estimate: float
) -> BlockMap | None:
    """The headline of ``options`` as a :class:`BlockMap`, or ``None`` when it is not one
    (covariates, weights, missing outcomes, a repeated cross-section, units left out) or does
    not reproduce ``estimate`` (the estimator's own headline for the actual assignment)."""
    cs = options.callaway_santanna
    if (
        options.covariates
        or panel.weighted
        or panel.layout != "panel"
        or not panel.is_rectangular
        or cs.aggregation not in _OVERALL
    ):
        return None
    sink: list[Notice] = []
    T = panel.n_periods
    with warnings.catch_warnings():  # the fit itself has told the reader already
        warnings.simplefilter("ignore")
        raw, Y, _, _ = _unit_arrays(panel, outcome, (), sink)
        units, keep, T_keep = _finalise_units(
            raw, T, int(panel.anticipation), panel.period_labels, sink
        )
    if not keep.all() or T_keep != T or not np.all(np.isfinite(Y)):
        return None
    units = _subset_units(units, keep)
    if units.cohorts.size == 0:
        return None
    cells = _make_cells(units.cohorts, T, int(panel.anticipation), cs.base_period, panel.comparison)
    H = units.cohorts.size
    size = np.bincount(units.block, minlength=H + 1).astype(np.float64)
    Wg = size[cells.gb]
    Wc = cells.ctrl.T.astype(np.float64) @ size
    valid = ((Wc > 0) & (Wg > 0)) | cells.ref
    live = valid & ~cells.ref
    plan, _, overall, _, _ = _plan(
        np.zeros(cells.g.size), valid, units, cells, options.window, cs.balance_e
    )
    a = np.nan_to_num(plan.A[overall[_OVERALL.index(cs.aggregation)]])
    a[~live] = 0.0
    coef = np.zeros((H + 1, T))
    k = np.flatnonzero(live & (a != 0))
    own = a[k] / Wg[k]
    np.add.at(coef, (cells.gb[k], cells.t[k]), own)
    np.add.at(coef, (cells.gb[k], cells.b[k]), -own)
    hh, kk = np.nonzero(cells.ctrl[:, k])
    kk = k[kk]
    other = a[kk] / Wc[kk]
    np.add.at(coef, (hh, cells.t[kk]), -other)
    np.add.at(coef, (hh, cells.b[kk]), other)
    mapped = BlockMap(coef, np.asarray(units.cohorts, dtype=np.int64), float(estimate))
    if not np.array_equal(mapped.blocks(panel.first_treated), units.block):
        return None
    again = float(mapped.estimates(Y[None], mapped.blocks(panel.first_treated)[None])[0, 0])
    if not abs(again - estimate) <= 1e-9 * (1.0 + abs(estimate)):
        return None  # not the estimator's own number: the re-fitting path stays
    return mapped
