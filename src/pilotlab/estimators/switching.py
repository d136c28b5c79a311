"""Effects of switching treatment on and off (de Chaisemartin & D'Haultfoeuille).

For a binary treatment that units may start and stop, each unit's first switch ``F_g`` (the
first period its status differs from its first period's status) defines, for horizon
``l = 1, 2, ...``,

    DID_{g,l} = (Y_{g,F_g-1+l} - Y_{g,F_g-1})
                - mean over controls g' of (Y_{g',F_g-1+l} - Y_{g',F_g-1})

with the controls the units of the same initial status that have not switched by
``F_g - 1 + l``. ``DID_l`` averages ``S_g DID_{g,l}`` over the switchers observed at that
horizon (``S_g = +1`` for units switching on, ``-1`` for units switching off), the placebo
``DID^pl_l`` does the same for ``Y_{g,F_g-1-l} - Y_{g,F_g-1}``. The normalised effect divides
``DID_l`` by the average number of periods of treatment change it accumulates, and the
cost-benefit aggregate ``delta`` (the headline by default) is the effect per period of
treatment change of all switches in the window: ``sum_l N_l DID_l / sum_{g,l} |D_{g,F_g-1+l} -
D_{g,1}|``.

Standard errors use the authors' plug-in influence-function variance: each unit's
contribution (as a switcher and as a control) is re-centred on the mean of its cohort
(initial status and first-switch period), summed within clusters, and squared. The
multiplier (wild) bootstrap re-weights the same cluster sums. Loops run over cohorts and
horizons only (a few dozen), never over units or draws.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from pilotlab.data.panel import Panel
from pilotlab.estimators._cells import summarise
from pilotlab.estimators._regression import size_warnings
from pilotlab.estimators._summary_result import (
    estimate_columns,
    event_time_rows,
    lead_estimates,
    summary_result,
)
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.exceptions import EstimationError
from pilotlab.results import EffectResult, StaggeredTables, Table

__all__ = ["SwitchingOptions", "fit_switching", "status_matrix"]

DEFAULT_WINDOW = 8


class SwitchingOptions(BaseModel):
    """Options of the switching estimator (``design.options``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aggregation: Literal["delta", "average"] = "delta"


def status_matrix(panel: Panel) -> np.ndarray:
    """0/1 treatment of every unit in every period (from ``first_treated`` if absorbing)."""
    if panel.treatment is not None:
        return np.asarray(panel.treatment, dtype=np.int8)
    t = np.arange(panel.n_periods)[None, :]
    return (t >= panel.first_treated[:, None]).astype(np.int8)


def fit_switching(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """de Chaisemartin & D'Haultfoeuille's DID_l, placebos, normalised effects and delta."""
    opts = (
        options.estimator if isinstance(options.estimator, SwitchingOptions) else SwitchingOptions()
    )
    if options.covariates:
        raise EstimationError(
            "design.covariates: the switching estimator does not adjust for covariates; remove them"
        )
    if panel.anticipation:
        raise EstimationError(
            "treatment.anticipation: the switching estimator compares each switch with the "
            "period just before it and does not model anticipation; set it to 0"
        )
    if panel.layout != "panel":
        raise EstimationError(
            "data.layout: the switching estimator follows units over time and needs panel data"
        )
    N, T = panel.n_units, panel.n_periods
    cell = panel.unit * T + panel.time
    Wt = np.bincount(cell, weights=panel.weight, minlength=N * T).reshape(N, T)
    Ysum = np.bincount(cell, weights=panel.weight * panel.y(outcome), minlength=N * T)
    Ysum = Ysum.reshape(N, T)
    Y = np.full((N, T), np.nan)
    seen = Wt > 0
    Y[seen] = Ysum[seen] / Wt[seen]
    D = status_matrix(panel)
    base = D[:, 0]
    changed = base[:, None] != D
    switcher = changed.any(axis=1)
    F = np.where(switcher, changed.argmax(axis=1), T)  # first switch (T: never switches)
    if not switcher.any():
        raise EstimationError(
            "treatment: no unit changes treatment status in the data, so there is no switch "
            "whose effect could be estimated"
        )
    pre, post = options.window if options.window is not None else (DEFAULT_WINDOW, DEFAULT_WINDOW)
    L = max(1, min(post + 1, T - 1))
    Lp = max(0, min(pre - 1, T - 2))
    keys = np.unique(base[switcher].astype(np.int64) * (T + 1) + F[switcher])
    cohorts = [(int(k // (T + 1)), int(k % (T + 1))) for k in keys.tolist()]  # a few dozen
    cohort_id = pd.factorize(pd.Series(base * (T + 1) + F))[0]

    # periods x units (rows gathered contiguously below)
    Yt = np.ascontiguousarray(np.where(seen, Y, 0.0).T)
    seen_t = np.ascontiguousarray(seen.T)
    sign = np.where(base == 0, 1.0, -1.0)
    change = np.cumsum(D - base[:, None], axis=1)  # cumulated treatment change per unit
    units = np.arange(N)

    def horizon(l_: int, placebo: bool) -> tuple[np.ndarray, int, float, float]:
        """Per-unit contributions U (sum = N_l * DID_l), N_l, summed dose, summed |cum dose|.

        Every first-switch period ``f`` at once (rows): the switchers of cohort
        (initial status, f), observed at ``f - 1`` and the target period, against the units of
        the same initial status not switched by ``f - 1 + l`` and observed there too.
        """
        f = np.arange(1, T)
        out = f - 1 + l_
        target = f - 1 - l_ if placebo else out
        keep = (out <= T - 1) & (target >= 0)
        f, out, target = f[keep], out[keep], target[keep]
        if f.size == 0:
            return np.zeros(N), 0, 0.0, 0.0
        ok = seen_t[target] & seen_t[f - 1]  # first-switch periods x units
        dy = Yt[target] - Yt[f - 1]
        sw = ok & (F[None, :] == f[:, None])
        ctrl = ok & (F[None, :] > out[:, None])
        by_status = np.stack([base == 0, base == 1]).astype(np.float64)  # 2 x units
        n_sw = sw.astype(np.float64) @ by_status.T  # periods x 2
        n_ct = ctrl.astype(np.float64) @ by_status.T
        valid = (n_sw > 0) & (n_ct > 0)
        ratio = np.where(valid, n_sw / np.maximum(n_ct, 1.0), 0.0)
        w = (sw & valid[:, base]) - ctrl * ratio[:, base]
        U = sign * np.einsum("fu,fu->u", w, dy)
        n_l = int(n_sw[valid].sum())
        dose = cum = 0.0
        if not placebo and n_l:
            on = (sw & valid[:, base]).any(axis=0)  # switchers counted at this horizon
            col = np.clip(F - 1 + l_, 0, T - 1)
            dose = float(np.abs(D[units[on], col[on]] - base[on]).sum())
            cum = float(np.abs(change[units[on], col[on]]).sum())
        return U, n_l, dose, cum

    names: list[str] = []
    psi: list[np.ndarray] = []
    effects: list[tuple[int, int, float, float, np.ndarray]] = []
    for l_ in range(1, L + 1):
        U, n_l, dose, cum = horizon(l_, placebo=False)
        if n_l:
            effects.append((l_, n_l, dose, cum, U))
            names.append(f"e{l_ - 1:+d}")
            psi.append(U / n_l)
    if not effects:
        raise EstimationError(
            "treatment: no switching unit has a comparison unit of the same initial status that "
            "has not switched yet, so no effect of switching can be estimated"
        )
    placebos: list[tuple[int, int]] = []
    for l_ in range(1, Lp + 1):
        U, n_l, _, _ = horizon(l_, placebo=True)
        if n_l:
            placebos.append((l_, n_l))
            names.append(f"e{-1 - l_:+d}")
            psi.append(U / n_l)
    total_dose = sum(e[2] for e in effects)
    psi.append(np.sum([e[4] for e in effects], axis=0) / total_dose)  # delta
    names.append("delta")
    psi.append(np.mean([e[4] / e[1] for e in effects], axis=0))  # average of DID_l
    names.append("average")
    for l_, _, _, cum, U in effects:
        psi.append(U / cum)  # normalised: DID_l / (cum / N_l)
        names.append(f"n{l_}")
    P = np.stack(psi, axis=1)  # units x estimands
    est = P.sum(axis=0)
    # the authors' plug-in variance: re-centre on cohort means, then sum within clusters
    counts = np.bincount(cohort_id)
    means = np.stack([np.bincount(cohort_id, weights=P[:, j]) for j in range(P.shape[1])], 1)
    Pc = P - (means / counts[:, None])[cohort_id]
    cl = np.zeros(N, dtype=np.int64)
    cl[panel.unit] = panel.cluster
    G = panel.n_clusters
    Sg = np.stack([np.bincount(cl, weights=Pc[:, j], minlength=G) for j in range(P.shape[1])], 1)
    method = "wild_bootstrap" if options.inference == "wild_bootstrap" else "cluster"
    sm = summarise(
        est,
        Sg,
        options.alpha,
        method=method,
        rng=rng,
        replications=options.replications,
        weights=options.bootstrap_weights,
        small_sample=False,
    )
    idx = {n: i for i, n in enumerate(names)}
    events = event_time_rows(
        sm, idx, [l_ - 1 for l_, *_ in effects] + [-1 - l_ for l_, _ in placebos], -1
    )
    pre_period = lead_estimates(
        sm,
        idx,
        [-1 - l_ for l_, _ in sorted(placebos, reverse=True)],
        n_clusters=G,
        reference=-1,
        window=(Lp + 1, L - 1),
    )
    agg_rows = [("delta", "cost-benefit delta: effect per period of treatment change")]
    agg_rows += [("average", "average of the effects of switching at each horizon")]
    agg = pd.DataFrame(
        [{"type": k, "description": text, **estimate_columns(sm, idx[k])} for k, text in agg_rows]
    )
    dyn = pd.DataFrame(
        [
            {
                "event_time": l_ - 1,
                "horizon": l_,
                "switchers": n_l,
                "estimate": sm.estimate[idx[f"e{l_ - 1:+d}"]],
                "std_error": sm.std_error[idx[f"e{l_ - 1:+d}"]],
                "normalised": sm.estimate[idx[f"n{l_}"]],
                "normalised_std_error": sm.std_error[idx[f"n{l_}"]],
                "ci_lower": sm.ci_lower[idx[f"e{l_ - 1:+d}"]],
                "ci_upper": sm.ci_upper[idx[f"e{l_ - 1:+d}"]],
            }
            for l_, n_l, *_ in effects
        ]
        + [
            {
                "event_time": -1 - l_,
                "horizon": -l_,
                "switchers": n_l,
                "estimate": sm.estimate[idx[f"e{-1 - l_:+d}"]],
                "std_error": sm.std_error[idx[f"e{-1 - l_:+d}"]],
                "normalised": np.nan,
                "normalised_std_error": np.nan,
                "ci_lower": sm.ci_lower[idx[f"e{-1 - l_:+d}"]],
                "ci_upper": sm.ci_upper[idx[f"e{-1 - l_:+d}"]],
            }
            for l_, n_l in placebos
        ]
    ).sort_values("event_time", kind="stable")
    n_on = int((switcher & (base == 0)).sum())
    n_off = int((switcher & (base == 1)).sum())
    groups = pd.DataFrame(
        [
            {
                "group": f"{'on' if d == 0 else 'off'} from {panel.period_labels[f]}",
                "initial_status": d,
                "first_switch": panel.period_labels[f],
                "units": int(((base == d) & (f == F)).sum()),
            }
            for d, f in cohorts
        ]
    )
    label = {
        "delta": "effect per period of treatment change over all switches (cost-benefit delta)",
        "average": "average over horizons of the effect of switching",
    }[opts.aggregation]
    return summary_result(
        sm,
        idx[opts.aggregation],
        options,
        estimator="switching",
        outcome=outcome,
        nobs=panel.nobs,
        n_units=N,
        n_treated_units=int(switcher.sum()),
        n_clusters=G,
        n_periods=T,
        estimand=f"effect of switching ({label}; {n_on} units switched on, {n_off} off)",
        event_study=events,
        pre_period=pre_period,
        warnings=size_warnings(panel, options.inference),
        staggered=StaggeredTables(
            att_gt=Table(dyn),
            aggregations=Table(agg),
            dynamic=Table(dyn),
            group=Table(groups),
            method="de Chaisemartin & D'Haultfoeuille DID_l",
            base_period="universal",
            comparison="units with the same initial status that have not switched yet",
            anticipation=0,
        ),
    )


ENTRY = register(
    EstimatorEntry(
        name="switching",
        title="effects of switching treatment on and off (de Chaisemartin & D'Haultfoeuille)",
        fit=fit_switching,
        description="de Chaisemartin & D'Haultfoeuille's difference in differences for "
        "treatment that starts and stops: effects at each horizon after a switch, placebos, "
        "normalised and cost-benefit aggregates",
        capabilities=Capabilities(
            inference=("cluster", "wild_bootstrap"),
            layouts=("panel",),
            staggered=True,
            event_times=True,
            switching=True,
            auto="switching",
        ),
        options=SwitchingOptions,
    )
)
