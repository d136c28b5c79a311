"""Callaway & Sant'Anna, stage 6 -- what the parallel-trends pre-test reads.

The pre-period estimates of the fit, handed on as
:class:`~pilotlab.results.PrePeriodEstimates`: every pre-treatment ATT(g,t) with its covariance
and cluster contributions, and the pre-treatment event-time averages of the dynamic aggregation
with theirs. The test itself (the Wald test of the cells with the Hotelling F, its fallbacks, and
the randomisation test with inference for few treated clusters) is applied after the fit, by
:func:`pilotlab.diagnostics.pretrend.apply_pretrend`.
"""

from __future__ import annotations

import numpy as np

from pilotlab.estimators.callaway_santanna.cells import _CellFit
from pilotlab.results import PrePeriodCells, PrePeriodEstimates


def _pre_period(
    fit: _CellFit,
    att: np.ndarray,
    est: np.ndarray,
    se: np.ndarray,
    IF: np.ndarray,
    d_idx: list[int],
    d_e: list[int],
    C: int,
    reference: int,
) -> PrePeriodEstimates:
    """The pre-period cells of ``fit`` and the pre-period event-time averages.

    ``est``, ``se`` and ``IF`` are the aggregated parameters; ``d_idx`` / ``d_e`` the columns and
    event times of the dynamic aggregation (its pre-period averages with a positive standard
    error are the leads).
    """
    cells = None
    if fit.pre_idx.size:
        sel = np.zeros((att.size, fit.pre_idx.size))
        sel[fit.pre_idx, np.arange(fit.pre_idx.size)] = 1.0
        cells = PrePeriodCells(att[fit.pre_idx], fit.pre_cov, fit.agg_if(sel))
    e_pre = [i for i, ev in zip(d_idx, d_e, strict=True) if ev < 0 and se[i] > 0]
    Ie = IF[:, e_pre]
    return PrePeriodEstimates(
        kind="group_time",
        event_times=tuple(ev for i, ev in zip(d_idx, d_e, strict=True) if i in e_pre),
        estimates=est[e_pre],
        std_errors=se[e_pre],
        cov=Ie.T @ Ie,
        n_clusters=C,
        scores=Ie,
        reference=reference,
        cells=cells,
    )
