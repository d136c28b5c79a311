"""Goodman-Bacon (2021) decomposition of the two-way fixed-effects DiD estimate.

With staggered adoption the TWFE coefficient on a treatment dummy is a weighted average of every
2x2 DiD between timing groups: treated vs never treated, earlier- vs later-treated (the later
group still untreated), and later- vs earlier-treated (the earlier group *already treated*: a
"forbidden" comparison that is biased when effects change over time). This module computes every
2x2 estimate and its weight (Theorem 1 of Goodman-Bacon 2021) from the cohort x period mean
matrix, so the reader can see how much of a naive TWFE estimate comes from forbidden comparisons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pilotlab.data.panel import NEVER, Panel
from pilotlab.exceptions import DataError, EstimationError, warn
from pilotlab.results import BaconDecomposition

__all__ = ["COMPARISON_TYPES", "BaconDecomposition", "bacon_decomposition"]

#: Comparison types in the order they are reported.
COMPARISON_TYPES: tuple[str, ...] = (
    "treated_vs_never",
    "earlier_vs_later",
    "later_vs_earlier",
    "later_vs_always",
)


def _twfe(Y: np.ndarray, D: np.ndarray) -> tuple[float, float]:
    """TWFE slope and the variance of the two-way demeaned treatment (balanced panel)."""
    Dt = D - D.mean(1, keepdims=True) - D.mean(0, keepdims=True) + D.mean()
    Yt = Y - Y.mean(1, keepdims=True) - Y.mean(0, keepdims=True) + Y.mean()
    vd = float(np.mean(Dt * Dt))
    if vd <= 0:
        raise EstimationError(
            "the treatment does not vary after removing unit and period "
            "effects; there is nothing for TWFE (or its decomposition) to "
            "estimate."
        )
    return float(np.mean(Dt * Yt) / vd), vd


def bacon_decomposition(panel: Panel, outcome: str) -> BaconDecomposition:
    """Decompose the TWFE estimate of a balanced staggered panel into its 2x2 comparisons.

    Parameters
    ----------
    panel : Panel
        A balanced panel (every unit observed once in every period, no missing outcome);
        treatment is ``period >= first_treated`` (absorbing). Units first treated in the first
        period are the "always treated" group.
    outcome : str
        Outcome column.

    Returns
    -------
    BaconDecomposition
        The 2x2 table, the summary by comparison type and the TWFE estimate.

    Raises
    ------
    DataError
        If the panel is not balanced or the outcome has missing values.
    EstimationError
        If there is no variation in treatment timing to decompose.
    """
    if outcome not in panel.frame.columns:
        raise DataError(
            f"outcome column '{outcome}' is not in the panel; columns available: "
            f"{', '.join(map(str, panel.outcomes))}."
        )
    N, T = panel.n_units, panel.n_periods
    if panel.layout != "panel" or not panel.is_balanced:
        raise DataError(
            "the Goodman-Bacon decomposition needs a balanced panel (every unit in "
            f"every period once); found {panel.nobs} rows for {N} units x {T} "
            "periods. Balance the panel (drop units with gaps) to see it."
        )
    Y = np.full((N, T), np.nan)
    Y[panel.unit, panel.time] = panel.y(outcome)
    if not np.all(np.isfinite(Y)):
        raise DataError(
            f"outcome '{outcome}' has missing values; the Goodman-Bacon "
            "decomposition needs a complete balanced panel."
        )
    if panel.weighted:
        warn(
            "bacon-weights-ignored",
            "the Goodman-Bacon decomposition is of the unweighted TWFE estimate; the weight "
            "column is ignored here.",
            stacklevel=2,
        )
    ft = np.asarray(panel.first_treated, dtype=np.int64)
    D = (np.arange(T)[None, :] >= ft[:, None]).astype(np.float64)
    beta, vd = _twfe(Y, D)
    # timing groups: first-treated index (0 = always treated), NEVER = never treated
    groups, gidx, counts = np.unique(ft, return_inverse=True, return_counts=True)
    means = np.zeros((groups.size, T))
    np.add.at(means, gidx, Y)
    means /= counts[:, None]
    share = counts / N
    labels = panel.period_labels

    def name(g: int) -> str:
        if g == NEVER:
            return "never treated"
        return "always treated" if g == 0 else str(labels[g])

    def did(k: int, c: int, lo: int, mid: int, hi: int) -> float:
        """Treated group k vs control c: periods [lo, mid) pre and [mid, hi) post."""
        diff = means[k] - means[c]
        return float(diff[mid:hi].mean() - diff[lo:mid].mean())

    rows: list[tuple[str, str, str, float, float]] = []
    timing = [i for i, g in enumerate(groups) if g != NEVER]
    never = [i for i, g in enumerate(groups) if g == NEVER]
    dbar = {i: (T - min(int(groups[i]), T)) / T for i in timing}
    for k in timing:
        g = int(groups[k])
        if g == 0:
            continue  # always treated: only ever a control
        for u in never:
            nku = share[k] / (share[k] + share[u])
            w = (share[k] + share[u]) ** 2 * nku * (1 - nku) * dbar[k] * (1 - dbar[k]) / vd
            rows.append((name(g), name(NEVER), "treated_vs_never", did(k, u, 0, g, T), w))
    for a, k in enumerate(timing):
        for l_ in timing[a + 1 :]:
            gk, gl = int(groups[k]), int(groups[l_])
            dk, dl = dbar[k], dbar[l_]
            nkl = share[k] / (share[k] + share[l_])
            if gk > 0:  # earlier k treated, later l not yet treated: periods before gl
                w = (
                    ((share[k] + share[l_]) * (1 - dl)) ** 2
                    * nkl
                    * (1 - nkl)
                    * ((dk - dl) / (1 - dl))
                    * ((1 - dk) / (1 - dl))
                    / vd
                )
                rows.append((name(gk), name(gl), "earlier_vs_later", did(k, l_, 0, gk, gl), w))
            # later l treated, earlier k already treated: periods from gk on
            w = (
                ((share[k] + share[l_]) * dk) ** 2
                * nkl
                * (1 - nkl)
                * (dl / dk)
                * ((dk - dl) / dk)
                / vd
            )
            kind = "later_vs_always" if gk == 0 else "later_vs_earlier"
            rows.append((name(gl), name(gk), kind, did(l_, k, gk, gl, T), w))
    if not rows:
        raise EstimationError(
            "no 2x2 comparison exists: the decomposition needs treated units "
            "and either never-treated units or more than one adoption date."
        )
    table = pd.DataFrame(rows, columns=["treated", "control", "type", "estimate", "weight"])
    by = (
        table.assign(we=table.weight * table.estimate)
        .groupby("type", sort=False)
        .agg(weight=("weight", "sum"), we=("we", "sum"), n_comparisons=("weight", "size"))
    )
    by["estimate"] = by.we / by.weight
    order = [t for t in COMPARISON_TYPES if t in by.index]
    by_type = by.loc[order, ["weight", "estimate", "n_comparisons"]].reset_index()
    return BaconDecomposition(table=table, by_type=by_type, twfe_estimate=beta)
