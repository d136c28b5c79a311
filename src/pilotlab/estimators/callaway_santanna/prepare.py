"""Callaway & Sant'Anna, stage 1 -- preparation: from the panel to unit arrays and cells.

Checks the columns and the design (one row per unit and period, clusters and weights constant
within a unit), turns the panel into a unit x period outcome matrix (or the rows of a repeated
cross-section), drops cohorts without a pre-treatment period, makes the last cohort the
comparison group when no unit is never treated, and lays out the (cohort, period) cells with
their base period and comparison blocks (R ``did``'s rules).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pilotlab.data.cells import row_counts
from pilotlab.data.panel import NEVER, Panel
from pilotlab.exceptions import DataError, EstimationError, Notice, warn


@dataclass(frozen=True)
class _Cells:
    """The (g, t) cells to estimate (period indices) and their comparison blocks."""

    g: np.ndarray  # cohort period index
    gb: np.ndarray  # cohort block index (0..H-1)
    t: np.ndarray
    b: np.ndarray  # base period index
    ref: np.ndarray  # universal base-period reference cell (att = 0 by construction)
    ctrl: np.ndarray  # (H + 1) x K bool: blocks that serve as comparison (block H = never)


@dataclass(frozen=True)
class _Units:
    """Unit-level (panel) or row-level (cross-section) arrays after design checks."""

    n: int
    group: np.ndarray  # first treated period index or NEVER
    block: np.ndarray  # 0..H-1 for cohorts, H for never treated
    w: np.ndarray  # weights, mean one
    cl: np.ndarray  # cluster code 0..C-1
    n_clusters: int
    cohorts: np.ndarray  # H treated cohorts (period indices)
    n_periods: int
    #: person rows behind each row (microdata cells); ``None``: one each
    rows: np.ndarray | None = None


def _warn(code: str, msg: str, sink: list[Notice]) -> None:
    sink.append(warn(code, msg, stacklevel=3))


def _unit_arrays(
    panel: Panel, outcome: str, covariates: tuple[str, ...], sink: list[Notice]
) -> tuple[_Units, np.ndarray, np.ndarray | None, np.ndarray]:
    """Units, the outcome matrix (panel: N x T; RCS: rows), covariates and row periods."""
    if outcome not in panel.frame.columns:
        raise DataError(
            f"outcome column '{outcome}' is not in the panel; columns available: "
            f"{', '.join(map(str, panel.outcomes))}. Fix the outcome name."
        )
    for c in covariates:
        if c not in panel.frame.columns:
            raise DataError(
                f"covariate column '{c}' (design.covariates) is not in the data; "
                "add it to the data file or remove it from design.covariates."
            )
    T = panel.n_periods
    y = panel.y(outcome)
    t_row = panel.time
    w_row = panel.weight
    cl_row = panel.cluster
    if panel.layout in ("repeated_cross_section", "microdata"):
        group = panel.first_treated[panel.unit]
        n = y.size
        units = _Units(
            n=n,
            group=group,
            block=np.zeros(n, np.int64),
            w=w_row,
            cl=cl_row,
            n_clusters=panel.n_clusters,
            cohorts=np.empty(0, np.int64),
            n_periods=T,
            rows=None if panel.micro is None else row_counts(panel),
        )
        xmat = panel.frame[list(covariates)].to_numpy(np.float64) if covariates else None
        return units, y, xmat, t_row
    n = panel.n_units
    u = panel.unit
    if np.bincount(u * T + t_row, minlength=n * T).max(initial=0) > 1:
        raise DataError(
            "the panel has more than one row for some unit and period; a panel "
            "needs one row per unit and period (use layout repeated_cross_section "
            "for survey-type data)."
        )
    Y = np.full((n, T), np.nan)
    Y[u, t_row] = y
    cl = np.zeros(n, np.int64)
    cl[u] = cl_row
    if np.any(cl[u] != cl_row):
        raise DataError(
            "the cluster column varies within a unit over time; clusters must "
            "contain whole units. Fix the cluster column or cluster at a coarser level."
        )
    w = np.zeros(n)
    w[u] = w_row
    if np.any(w[u] != w_row):
        raise DataError(
            "the weight column varies within a unit over time; Callaway & "
            "Sant'Anna uses one weight per unit. Make the weight constant per unit."
        )
    X = None
    if covariates:
        X = np.full((n, T, len(covariates)), np.nan)
        X[u, t_row, :] = panel.frame[list(covariates)].to_numpy(np.float64)
    units = _Units(
        n=n,
        group=panel.first_treated.astype(np.int64),
        block=np.zeros(n, np.int64),
        w=w,
        cl=cl,
        n_clusters=panel.n_clusters,
        cohorts=np.empty(0, np.int64),
        n_periods=T,
    )
    return units, Y, X, t_row


def _finalise_units(
    units: _Units, T: int, anticipation: int, period_labels: tuple[str, ...], sink: list[Notice]
) -> tuple[_Units, np.ndarray, int]:
    """Apply the design rules: drop cohorts without a pre-period, handle no never-treated.

    Returns the units, a boolean keep mask (over the original units/rows) and the number of
    periods kept (periods at or after the coerced last cohort are dropped).
    """
    group = units.group.copy()
    keep = np.ones(units.n, bool)
    treated = group != NEVER
    early = treated & (group <= anticipation)
    if early.any():
        bad = np.unique(group[early])
        labels = ", ".join(period_labels[int(g)] for g in bad)
        _warn(
            "cs-no-pre-period",
            f"{int(early.sum())} unit(s) first treated in {labels} have no pre-treatment "
            f"period (anticipation {anticipation}); they were dropped from the Callaway & "
            "Sant'Anna estimate.",
            sink,
        )
        keep &= ~early
    T_keep = T
    never = (group == NEVER) & keep
    if not never.any():
        remaining = group[keep & treated]
        if remaining.size == 0:
            raise EstimationError(
                "no treated units remain after dropping cohorts treated in "
                "the first period; Callaway & Sant'Anna needs units first "
                "treated after the first period."
            )
        gmax = int(remaining.max())
        T_keep = gmax - anticipation
        _warn(
            "no-never-treated",
            f"no never-treated units: the last cohort to be treated ({period_labels[gmax]}) "
            f"serves as the comparison group and periods from "
            f"{period_labels[max(T_keep, 0)]} on are left out.",
            sink,
        )
        group = np.where(group == gmax, NEVER, group)
        if T_keep < 2 or not np.any(keep & (group != NEVER)):
            raise EstimationError(
                "with no never-treated units there are too few periods "
                "before the last cohort is treated to estimate any "
                "ATT(g,t); add never-treated comparison units."
            )
    cohorts = np.unique(group[keep & (group != NEVER)])
    block = np.searchsorted(cohorts, np.minimum(group, cohorts.max() + 1 if cohorts.size else 0))
    block = np.where(group == NEVER, cohorts.size, block)
    for g in cohorts:
        n_g = int(np.sum(keep & (group == g)))
        if n_g == 1:
            _warn(
                "single-unit-cohort",
                f"the cohort first treated in {period_labels[int(g)]} has a single unit: its "
                "ATT(g,t) rest on one unit and their standard errors are unreliable.",
                sink,
            )
    w = units.w
    if np.any(~np.isfinite(w[keep])) or np.any(w[keep] < 0):
        raise DataError("weights must be finite and non-negative; fix the weight column.")
    return (
        _Units(
            n=units.n,
            group=group,
            block=block,
            w=w,
            cl=units.cl,
            n_clusters=units.n_clusters,
            cohorts=cohorts,
            n_periods=T_keep,
            rows=units.rows,
        ),
        keep,
        T_keep,
    )


def _subset_units(units: _Units, keep: np.ndarray) -> _Units:
    cl_codes, cl = np.unique(units.cl[keep], return_inverse=True)
    w = units.w[keep]
    w = w / w.mean()
    return _Units(
        n=int(keep.sum()),
        group=units.group[keep],
        block=units.block[keep],
        w=w,
        cl=cl.astype(np.int64),
        n_clusters=cl_codes.size,
        cohorts=units.cohorts,
        n_periods=units.n_periods,
        rows=None if units.rows is None else units.rows[keep],
    )


def _make_cells(
    cohorts: np.ndarray, T: int, anticipation: int, base_period: str, comparison: str
) -> _Cells:
    """All (g, t) cells with their base period and comparison blocks (R ``did`` rules)."""
    H = cohorts.size
    gs, gbs, ts, bs = [], [], [], []
    t_all = np.arange(T)
    for h, g in enumerate(cohorts):
        base_g = int(g) - 1 - anticipation
        tt = t_all if base_period == "universal" else t_all[1:]
        b = (
            np.where(tt >= g, base_g, tt - 1)
            if base_period == "varying"
            else np.full(tt.size, base_g)
        )
        gs.append(np.full(tt.size, g))
        gbs.append(np.full(tt.size, h))
        ts.append(tt)
        bs.append(b)
    g_arr = np.concatenate(gs).astype(np.int64)
    gb = np.concatenate(gbs).astype(np.int64)
    t_arr = np.concatenate(ts).astype(np.int64)
    b_arr = np.concatenate(bs).astype(np.int64)
    ref = t_arr == b_arr
    K = g_arr.size
    ctrl = np.zeros((H + 1, K), bool)
    ctrl[H] = True
    if comparison == "not_yet_treated":
        thr = np.maximum(t_arr, b_arr) + anticipation
        ctrl[:H] = (cohorts[:, None] > thr[None, :]) & (np.arange(H)[:, None] != gb[None, :])
    return _Cells(g=g_arr, gb=gb, t=t_arr, b=b_arr, ref=ref, ctrl=ctrl)
