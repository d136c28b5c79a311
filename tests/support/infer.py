"""Test helpers for the inference tests: a stand-in for ``pilotlab.estimators.linear.LinearFit``.

Once ``pilotlab.estimators.linear`` exists on the branch the real ``LinearFit`` is used; the
stand-in has exactly the same fields so the inference code is written against one interface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearFit:
    X: np.ndarray
    y: np.ndarray
    beta: np.ndarray
    resid: np.ndarray
    cluster: np.ndarray
    names: tuple[str, ...]
    df_absorbed: int
    xtx_inv: np.ndarray
    fe: tuple[np.ndarray, ...] = ()
    weights: np.ndarray | None = None


def demean_twoway(
    a: np.ndarray,
    unit: np.ndarray,
    time: np.ndarray,
    w: np.ndarray,
    tol: float = 1e-12,
    maxiter: int = 10_000,
) -> np.ndarray:
    """Weighted two-way within transformation by alternating projections (columns of ``a``)."""
    a = np.array(a, dtype=np.float64, copy=True)
    if a.ndim == 1:
        a = a[:, None]
    wu = np.bincount(unit, weights=w)
    wt = np.bincount(time, weights=w)
    for _ in range(maxiter):
        old = a.copy()
        for codes, tot in ((unit, wu), (time, wt)):
            for c in range(a.shape[1]):
                a[:, c] -= (np.bincount(codes, weights=w * a[:, c]) / tot)[codes]
        if np.max(np.abs(a - old)) < tol:
            break
    return a


def twfe_fit(
    y: np.ndarray,
    D: np.ndarray,
    unit: np.ndarray,
    time: np.ndarray,
    cluster: np.ndarray,
    names: tuple[str, ...] = ("treated_post",),
    weight: np.ndarray | None = None,
) -> LinearFit:
    """TWFE regression of y on D with unit and period effects, as the lead's LinearFit."""
    n = len(y)
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    D = np.asarray(D, dtype=float).reshape(n, -1)
    both = demean_twoway(np.column_stack([y, D]), unit, time, w)
    sw = np.sqrt(w)
    yt = both[:, 0] * sw
    X = both[:, 1:] * sw[:, None]
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ (X.T @ yt)
    resid = yt - X @ beta
    df_abs = int(unit.max() + 1 + time.max() + 1 - 1)
    return LinearFit(
        X=X,
        y=yt,
        beta=beta,
        resid=resid,
        cluster=np.asarray(cluster),
        names=names,
        df_absorbed=df_abs,
        xtx_inv=xtx_inv,
        fe=(np.asarray(unit), np.asarray(time)),
        weights=None if weight is None else w,
    )


def simulate_panel(
    n_units: int,
    n_periods: int,
    n_treated: int,
    start: int,
    effect: float,
    rho: float,
    rng: np.random.Generator,
    sigma: float = 1.0,
):
    """Balanced panel with AR(1) errors; returns (y (N,T), treated (N,) bool, start)."""
    unit_fe = rng.normal(size=(n_units, 1))
    time_fe = rng.normal(size=(1, n_periods))
    e = np.empty((n_units, n_periods))
    e[:, 0] = rng.normal(size=n_units) / np.sqrt(1 - rho**2)
    shocks = rng.normal(size=(n_units, n_periods))
    for t in range(1, n_periods):  # loop over a handful of periods only
        e[:, t] = rho * e[:, t - 1] + shocks[:, t]
    treated = np.zeros(n_units, dtype=bool)
    treated[rng.choice(n_units, n_treated, replace=False)] = True
    post = np.arange(n_periods) >= start
    d = treated[:, None] & post[None, :]
    y = unit_fe + time_fe + sigma * e + effect * d
    return y, treated


def long_arrays(y: np.ndarray, treated: np.ndarray, start: int):
    """Flatten an (N,T) panel into row arrays (y, D, unit, time)."""
    n, t = y.shape
    unit = np.repeat(np.arange(n), t)
    time = np.tile(np.arange(t), n)
    d = (treated[unit] & (time >= start)).astype(float)
    return y.reshape(-1), d, unit, time


def make_panel(
    y: np.ndarray,
    first_treated: np.ndarray,
    cluster: np.ndarray | None = None,
    outcome: str = "y",
    weights: np.ndarray | None = None,
):
    """A balanced :class:`Panel` from an (N, T) outcome matrix and first-treated indices
    (``weights``: an analytic weight per unit)."""
    import pandas as pd

    from pilotlab.data.panel import CLUSTER, TIME, UNIT, WEIGHT, Panel

    n, t = y.shape
    unit = np.repeat(np.arange(n), t)
    time = np.tile(np.arange(t), n)
    cl = np.arange(n) if cluster is None else np.asarray(cluster)
    frame = pd.DataFrame(
        {
            UNIT: unit,
            TIME: time,
            CLUSTER: cl[unit],
            WEIGHT: 1.0 if weights is None else np.asarray(weights, dtype=float)[unit],
            outcome: y.reshape(-1),
        }
    )
    return Panel(
        frame=frame,
        unit_labels=tuple(f"u{i}" for i in range(n)),
        period_labels=tuple(f"p{j}" for j in range(t)),
        cluster_labels=tuple(f"c{i}" for i in range(int(cl.max()) + 1)),
        first_treated=np.asarray(first_treated, dtype=np.int64),
        outcomes=(outcome,),
        weighted=weights is not None,
    )


def twfe_effect_fit(panel, outcome, options, rng):
    """Minimal TWFE estimator with the registry contract (stand-in for the lead's twfe)."""
    from pilotlab.results import EffectResult

    y = panel.y(outcome)
    d = panel.treated_now.astype(float)
    fit = twfe_fit(y, d, panel.unit, panel.time, panel.cluster)
    return EffectResult(
        estimator="twfe_test",
        outcome=outcome,
        estimate=float(fit.beta[0]),
        std_error=float("nan"),
        ci_lower=float("nan"),
        ci_upper=float("nan"),
        p_value=float("nan"),
        alpha=options.alpha,
        inference=options.inference,
        nobs=len(y),
        n_units=panel.n_units,
        n_treated_units=panel.n_treated_units,
        n_clusters=panel.n_clusters,
        n_periods=panel.n_periods,
    )
