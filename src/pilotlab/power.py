"""Plan before you pilot: simulation-based power and minimum detectable effect from history.

A planned pilot's data hold only the history. Placebo pilots are drawn from that history: a
pseudo-treated set of the planned size drawn at random from the eligible units, and a pseudo start
date that leaves enough periods before and the planned number after. Drawing the units matters:
with named units held fixed every placebo pilot shares their history, so the curve is power
conditional on those units (available on request, and labelled so), not the design's power.
When the false-positive rate at zero effect is clearly above ``alpha`` (its 95% Clopper-Pearson
interval lies above it), no MDE is claimed.
An effect ``delta`` is injected as ``y + delta * D`` and the pilot's own estimator and inference
are run; the share of placebo pilots whose test rejects at ``alpha`` is the power at ``delta``.
At ``delta = 0`` it is the false-positive rate, a check of the inference itself.

Five computational paths give the same answers (tests check that they agree):

``vectorised``
    Two-way fixed effects on a balanced, unweighted panel without covariates, with cluster (units
    nested in clusters), robust or iid standard errors. The within-transformed treatment dummy
    of a placebo pilot is rank one, ``(a_i - k/N)(b_t - p)``, so estimates and cluster scores of
    every draw sharing a start come from matrix products with one ``N``-vector per start.
``shift``
    Any registered linear estimator (did, twfe, event_study) with cluster / robust / iid
    inference: injecting ``delta * D`` moves the estimate by exactly ``delta`` and leaves the
    residuals and standard error unchanged, so one fit per placebo pilot serves every effect.
``wild``
    The linear estimators with the wild cluster restricted bootstrap: testing ``beta = 0`` on
    ``y + delta * D`` is testing ``beta = -delta`` on ``y``, so one bootstrap per placebo pilot
    gives the p-value at every effect size.
``permutation``
    The linear estimators with randomisation inference on a balanced panel without covariates,
    weights or anticipation. With a common start the estimate is a difference of treated and
    untreated means of ``z_i = sum_t g_t y_it``, where the time weights ``g`` depend only on the
    start (read off one fit per start and checked against it). The estimate under every
    re-assignment of every placebo pilot is then one matrix product, and injecting ``delta * D``
    moves each re-assigned estimate by ``delta`` times its overlap with the placebo's own
    treated set, so one set of re-assignments answers every effect size. The re-assignments are
    drawn from the same random streams as the engine's permutation test, so the decisions equal
    those of refitting every re-assignment.
``full``
    Anything else (non-linear estimators such as Callaway & Sant'Anna, covariates, unbalanced
    histories with permutation inference): one fit per placebo pilot and effect size through the
    engine's ``apply_inference``.

The generic paths (``shift``, ``wild``, ``full``) run in parallel across cores; ``full``, which
refits everything, runs only as many placebo pilots as fit in a time budget (at least 20).

Beside the simulation, :func:`analytic_mde` gives the difference-in-differences MDE with
serial correlation (Burlig, Preonas & Woerman 2020; Bloom 1995 when errors are i.i.d.) from an
AR(1) model of the two-way within residuals of the history.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, sparse, stats

from pilotlab.data import load_panel
from pilotlab.data.panel import NEVER, Panel
from pilotlab.estimators import Capabilities, EstimatorEntry, EstimatorOptions, get_estimator
from pilotlab.estimators._regression import LINEAR_INFERENCE, is_nested
from pilotlab.exceptions import (
    EstimationError,
    PilotlabError,
    PilotlabWarning,
    SpecError,
    collect,
)
from pilotlab.inference.apply import apply_inference
from pilotlab.inference.permutation import _assignment_blocks, _draw_assignments
from pilotlab.inference.select import WILD_MIN_TREATED
from pilotlab.inference.wild import combination_fit, make_draws, prepare_wild_bootstrap
from pilotlab.results import Choice, json_scalar
from pilotlab.spec import PilotSpec

__all__ = [
    "AnalyticMDE",
    "PowerPoint",
    "PowerResult",
    "ProgressCallback",
    "TradeoffCell",
    "analytic_mde",
    "ar1_covariance",
    "did_variance",
    "draw_placebos",
    "estimate_ar1",
    "mde_from_curve",
    "run_power",
    "simulate_placebos",
    "textbook_did_mde",
    "write_power_report",
]

#: ``progress(done, total)`` is called as placebo fits complete (the CLI drives a progress bar).
ProgressCallback = Callable[[int, int], None]
#: ``stage(message)`` is called as each stage of :func:`run_power` starts.
StageCallback = Callable[[str], None]
Path_ = Literal["vectorised", "shift", "wild", "permutation", "full"]

#: Fewest placebo pilots for a power estimate (also the floor when a run is capped in time).
MIN_SIMULATIONS = 20
#: Seconds the refitting path may take per design before it runs fewer placebo pilots.
DEFAULT_TIME_BUDGET = 60.0
#: Fewest periods a placebo pilot keeps before its start (``design.power.min_pre_periods``).
DEFAULT_MIN_PRE = 4
#: Default effect grid, in multiples of the analytic MDE of the simulated design.
GRID_MULTIPLES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


# ----------------------------------------------------------------------------- analytic


def ar1_covariance(n_periods: int, sigma2: float, rho: float) -> np.ndarray:
    """Covariance matrix of a stationary AR(1): ``sigma2 * rho ** |s - t|``."""
    lag = np.abs(np.subtract.outer(np.arange(n_periods), np.arange(n_periods)))
    return sigma2 * np.power(float(rho), lag)


def did_variance(cov: np.ndarray, pre: int, post: int, n_units: int, n_treated: int) -> float:
    """Variance of the DiD estimate with ``pre`` then ``post`` periods of error covariance ``cov``.

    Each unit's contrast is ``mean(post errors) - mean(pre errors)``; units are independent, so
    ``Var = w' cov w * (1/k + 1/(J - k))`` with ``w`` the contrast weights. With i.i.d. errors this
    is ``sigma2 (1/m + 1/r) / (P (1 - P) J)``; with serial correlation it is Burlig, Preonas &
    Woerman's (2020) expression in the average pre, post and cross covariances.
    """
    w = np.concatenate([np.full(pre, -1.0 / pre), np.full(post, 1.0 / post)])
    var_unit = float(w @ cov[: pre + post, : pre + post] @ w)
    return var_unit * (1.0 / n_treated + 1.0 / (n_units - n_treated))


def _quantiles(alpha: float, power: float, df: float | None) -> float:
    if df is None:
        return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    return float(stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df))


def textbook_did_mde(
    sigma: float,
    pre: int,
    post: int,
    n_units: int,
    n_treated: int,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """The textbook DiD MDE with i.i.d. errors (Bloom 1995; normal quantiles).

    ``(z_{1-alpha/2} + z_{power}) * sigma * sqrt((1/m + 1/r) / (P (1 - P) J))``.
    """
    p = n_treated / n_units
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * sigma * math.sqrt((1 / pre + 1 / post) / (p * (1 - p) * n_units)))


def _within(Y: np.ndarray) -> np.ndarray:
    """Two-way within transformation of a balanced N x T matrix."""
    within: np.ndarray = (
        Y - Y.mean(axis=1, keepdims=True) - Y.mean(axis=0, keepdims=True) + Y.mean()
    )
    return within


def estimate_ar1(Y: np.ndarray) -> tuple[float, float]:
    """Fit a stationary AR(1) ``(sigma2, rho)`` to the errors of ``y = a_i + g_t + e_it``.

    The two-way within residuals of a balanced ``N x T`` matrix have expected second moments
    ``(1 - 1/N) M S M`` (``M`` removes unit means over time, ``S`` the AR(1) covariance), so the
    sample matrix ``E'E / N`` is matched to that by least squares over all lags: the estimate is
    not biased towards negative correlation by the demeaning, as raw residual autocorrelations are.
    """
    N, T = Y.shape
    E = _within(Y)
    S = E.T @ E / N
    M = np.eye(T) - 1.0 / T
    base = (1 - 1 / N) * M

    def fitted(rho: float) -> tuple[float, float]:
        A = base @ ar1_covariance(T, 1.0, rho) @ M
        scale = float((A * S).sum() / (A * A).sum())  # least-squares sigma2 for this rho
        return scale, float(((S - scale * A) ** 2).sum())

    res = optimize.minimize_scalar(
        lambda r: fitted(r)[1], bounds=(-0.95, 0.995), method="bounded", options={"xatol": 1e-6}
    )
    rho = float(res.x)
    return max(fitted(rho)[0], 0.0), rho


@dataclass(frozen=True)
class AnalyticMDE:
    """Analytic DiD MDE with serial correlation, and the assumptions it rests on."""

    mde: float  # planned design: the whole history before the start, ``post`` periods after
    sigma2: float
    rho: float
    pre_periods: int
    post_periods: int
    n_units: int
    n_treated: int
    df: float | None
    mde_iid: float  # the same design if errors were independent over time (Bloom 1995)
    mde_simulated_design: float  # averaged over the placebo pilots' pre-period lengths
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = dict(self.__dict__)
        d["assumptions"] = list(self.assumptions)
        return {k: json_scalar(v) for k, v in d.items()}


def analytic_mde(
    Y: np.ndarray,
    *,
    pre: int,
    post: int,
    n_treated: int,
    alpha: float = 0.05,
    power: float = 0.8,
    df: float | None = None,
    simulated_pre: Sequence[int] = (),
) -> AnalyticMDE:
    """Analytic MDE of a DiD / TWFE pilot from a balanced history ``Y`` (units x periods).

    Parameters
    ----------
    Y
        Outcome history, ``N x T``, no missing values.
    pre, post
        Periods before and after the planned start.
    n_treated
        Planned number of treated units (``P = n_treated / N``).
    alpha, power
        Two-sided test size and target power.
    df
        Degrees of freedom of the t quantiles (``N - 1`` clusters); ``None`` uses normal ones.
    simulated_pre
        Pre-period lengths of the placebo pilots, to give the analytic MDE of the simulated design.
    """
    N = Y.shape[0]
    sigma2, rho = estimate_ar1(Y)
    q = _quantiles(alpha, power, df)
    horizon = max(pre, *(simulated_pre or (0,))) + post
    cov = ar1_covariance(horizon, sigma2, rho)
    mde = q * math.sqrt(did_variance(cov, pre, post, N, n_treated))
    iid = q * math.sqrt(did_variance(np.eye(horizon) * sigma2, pre, post, N, n_treated))
    if simulated_pre:
        v = np.mean([did_variance(cov, m, post, N, n_treated) for m in simulated_pre])
        sim = q * math.sqrt(float(v))
    else:
        sim = mde
    # four significant digits, never an exponent (the note is shown on the power page)
    sd = np.format_float_positional(
        math.sqrt(sigma2), precision=4, unique=False, fractional=False, trim="-"
    )
    assumptions = (
        "Outcome = unit effect + period effect + treatment effect + error (parallel trends).",
        f"Errors follow a stationary AR(1) within each unit (rho = {rho:.3f}, error SD = {sd}), "
        "estimated from the two-way within residuals of the history.",
        "Units are independent of each other (clusters are the units) and equally variable.",
        "The effect is constant across treated units and post periods; the estimate is the "
        "difference in differences of means (equal to two-way fixed effects on a balanced panel).",
        "Two-sided test; quantiles of "
        + ("the normal distribution." if df is None else f"Student's t with {df:g} df."),
    )
    return AnalyticMDE(
        mde=mde,
        sigma2=sigma2,
        rho=rho,
        pre_periods=pre,
        post_periods=post,
        n_units=N,
        n_treated=n_treated,
        df=df,
        mde_iid=iid,
        mde_simulated_design=sim,
        assumptions=assumptions,
    )


def _analytic_power(
    effects: np.ndarray, ses: np.ndarray, alpha: float, df: float | None
) -> np.ndarray:
    """Two-sided power at each effect, averaged over designs with standard errors ``ses``."""
    q = stats.norm.ppf(1 - alpha / 2) if df is None else stats.t.ppf(1 - alpha / 2, df)
    lam = np.abs(effects)[:, None] / ses[None, :]
    power: np.ndarray = (stats.norm.cdf(lam - q) + stats.norm.cdf(-lam - q)).mean(axis=1)
    return power


# ----------------------------------------------------------------------------- placebo draws


def draw_placebos(
    rng: np.random.Generator,
    *,
    n_units: int,
    n_periods: int,
    n_treated: int,
    post: int,
    min_pre: int,
    simulations: int,
    pool: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw placebo pilots: a boolean ``simulations x n_units`` treated matrix and start indices.

    Treated sets are ``n_treated`` units drawn without replacement from ``pool`` (default: every
    unit), or the ``fixed`` unit codes in every draw. Starts are uniform on
    ``[min_pre, n_periods - post]`` so each placebo keeps ``min_pre`` periods before and ``post``
    after (later periods are dropped from that placebo's panel).
    """
    starts = rng.integers(min_pre, n_periods - post + 1, size=simulations)
    A = np.zeros((simulations, n_units), dtype=bool)
    if fixed is not None:
        A[:, fixed] = True
        return A, starts
    pool = np.arange(n_units) if pool is None else pool
    picks = np.argsort(rng.random((simulations, pool.size)), axis=1)[:, :n_treated]
    A[np.repeat(np.arange(simulations), n_treated), pool[picks].ravel()] = True
    return A, starts


@dataclass(frozen=True)
class _Draws:
    """Per-placebo test ingredients: either (estimate, se, df) or direct rejections."""

    estimate: np.ndarray | None  # estimate at zero effect (shift / vectorised paths)
    std_error: np.ndarray | None
    df: np.ndarray | None
    reject: np.ndarray | None  # simulations x effects (full path)
    failed: int
    path: Path_


def _caps(estimator: str) -> Capabilities:
    """What the estimator can do: linear estimators move by exactly ``delta`` when ``delta * D``
    is added to ``y`` (the shift and wild paths), a two-way fixed-effects coefficient allows the
    one-pass vectorised path."""
    return get_estimator(estimator).capabilities


def _vectorised_ok(panel: Panel, outcome: str, estimator: str, options: EstimatorOptions) -> bool:
    if not _caps(estimator).twfe_coefficient or options.inference not in LINEAR_INFERENCE:
        return False
    if options.covariates or panel.weighted or panel.layout != "panel" or panel.anticipation:
        return False
    if not panel.is_balanced or np.isnan(panel.y(outcome)).any():
        return False
    return is_nested(panel.unit, panel.cluster)


def _vectorised(
    panel: Panel,
    outcome: str,
    A: np.ndarray,
    starts: np.ndarray,
    post: int,
    inference: str,
    progress: ProgressCallback | None,
    done0: int,
    total: int,
) -> _Draws:
    """TWFE estimates and standard errors of many placebo pilots at once (balanced panels)."""
    N, T = panel.n_units, panel.n_periods
    Y = np.empty((N, T))
    Y[panel.unit, panel.time] = panel.y(outcome)
    unit_cluster = np.zeros(N, dtype=np.int64)
    unit_cluster[panel.unit] = panel.cluster
    G = int(unit_cluster.max()) + 1
    members = sparse.csr_matrix((np.ones(N), (unit_cluster, np.arange(N))), shape=(G, N))
    R = A.shape[0]
    k = A.sum(axis=1).astype(float)
    est = np.empty(R)
    se = np.empty(R)
    dfs = np.empty(R)
    done = done0
    for s in np.unique(starts):  # a loop over distinct start dates, not over draws
        rows = np.flatnonzero(starts == s)
        Ts = int(s) + post
        Ys = Y[:, :Ts]
        c = (np.arange(Ts) >= s).astype(float) - post / Ts
        C2 = float(c @ c)
        z = Ys @ c
        w = z - z.mean()
        d = A[rows].astype(float) - (k[rows] / N)[:, None]  # R_s x N centred treatment
        den = k[rows] * (1 - k[rows] / N) * C2
        beta = (A[rows].astype(float) @ w) / den
        n = N * Ts
        fe_all = N + Ts - 1
        if inference == "cluster":
            nested_time = G == 1
            K = 1 + fe_all - (N - 1) - ((Ts - 1) if nested_time else 0)
            U = d * (w[None, :] - beta[:, None] * d * C2)  # unit scores
            if G == N:  # clusters are the units
                meat = (U * U).sum(axis=1)
            else:  # sum unit scores within clusters: sparse G x N membership
                S = members @ U.T
                meat = (S * S).sum(axis=0)
            factor = G / (G - 1) * (n - 1) / (n - K) if G > 1 else np.nan
            var = factor * meat / den**2
            dfs[rows] = max(G - 1, 1)
        else:
            K = 1 + fe_all
            Yt = _within(Ys)
            if inference == "iid":
                ssr = float((Yt * Yt).sum()) - beta**2 * den
                var = ssr / (n - K) / den
            else:  # robust (HC1)
                c2 = c * c
                P = (Yt * Yt) @ c2
                Q = Yt @ (c2 * c)
                C4 = float(c2 @ c2)
                meat = (d**2) @ P - 2 * beta * ((d**3) @ Q) + beta**2 * (d**4).sum(axis=1) * C4
                var = n / (n - K) * meat / den**2
            dfs[rows] = max(n - K, 1)
        est[rows] = beta
        se[rows] = np.sqrt(np.maximum(var, 0.0))
        done += rows.size
        if progress is not None:
            progress(done, total)
    return _Draws(est, se, dfs, None, 0, "vectorised")


@dataclass(frozen=True)
class _Permuted:
    """Randomisation-test ingredients of each placebo pilot (rows), at zero injected effect.

    ``perm[r, b]`` is the estimate under re-assignment ``b`` of placebo ``r`` and ``slope[r, b]``
    how much it moves per unit of injected effect (``estimate`` moves by ``own``); rows with
    fewer re-assignments (all of them enumerated) are padded with NaN.
    """

    estimate: np.ndarray  # R
    own: np.ndarray  # R: d(estimate)/d(delta), 1 up to rounding
    perm: np.ndarray  # R x B
    slope: np.ndarray  # R x B
    exact: np.ndarray  # R bool: every assignment enumerated
    ok: np.ndarray  # R bool: the placebo could be estimated

    def reject(self, effects: np.ndarray, alpha: float) -> np.ndarray:
        """Rejections (draws x effects) of the sharp null on ``y + delta * D``."""
        n = np.sum(np.isfinite(self.perm), axis=1)
        out = np.empty((self.estimate.size, effects.size))
        with np.errstate(invalid="ignore"):
            for j, d in enumerate(effects):  # a handful of effect sizes
                obs = np.abs(self.estimate + d * self.own)
                stat = np.abs(self.perm + d * self.slope)
                hits = np.sum(stat >= (obs - 1e-12 * (1 + obs))[:, None], axis=1)
                p = np.where(self.exact, hits / np.maximum(n, 1), (1 + hits) / (n + 1))
                out[:, j] = p < alpha
        out[~self.ok] = np.nan
        return out


def _permutation_ok(panel: Panel, outcome: str, estimator: str, options: EstimatorOptions) -> bool:
    if not _caps(estimator).linear or options.inference != "permutation":
        return False
    if options.covariates or panel.weighted or panel.layout != "panel" or panel.anticipation:
        return False
    return panel.is_balanced and not np.isnan(panel.y(outcome)).any()


def _time_weights(
    pan: Panel, outcome: str, entry: EstimatorEntry, options: EstimatorOptions
) -> np.ndarray | None:
    """Time weights ``g`` with estimate = mean over treated of ``Y g`` - mean over the others.

    Read off one fit: the estimate is ``w . y`` with observation weights ``w = X (X'X)^-1 c``.
    ``None`` when those weights are not of the form ``(a_i - k/N) N / (k (N - k)) g_t`` (then
    re-assignments cannot be evaluated this way), checked to rounding error.
    """
    res = entry.fit(
        pan, outcome, dataclasses.replace(options, inference="cluster"), np.random.default_rng(0)
    )
    if res.linear is None:
        return None
    fit = res.linear.fit
    c = res.linear.contrast()
    if c.size != fit.X.shape[1] or fit.X.shape[0] != pan.nobs:
        return None  # not a regression on the panel's observations (e.g. one row per unit)
    w = fit.X @ (fit.xtx_inv @ c)
    N, T = pan.n_units, pan.n_periods
    W = np.zeros((N, T))
    W[pan.unit, pan.time] = w
    a = pan.is_treated_unit
    k = int(a.sum())
    g: np.ndarray = W[a].mean(axis=0) * k
    model = np.outer(np.where(a, 1.0 / k, -1.0 / (N - k)), g)
    scale = max(float(np.abs(W).max()), 1e-300)
    y = pan.y(outcome)
    if float(np.abs(W - model).max()) > 1e-8 * scale:
        return None
    if abs(float(w @ y) - res.estimate) > 1e-8 * (1 + abs(res.estimate)):
        return None
    return g


def _permutation_draws(
    history: Panel,
    outcome: str,
    estimator: str,
    options: EstimatorOptions,
    A: np.ndarray,
    starts: np.ndarray,
    post: int,
    seed_seq: np.random.SeedSequence,
    progress: ProgressCallback | None,
    done0: int,
    total: int,
) -> _Permuted | None:
    """Randomisation inference of every placebo pilot without refitting any re-assignment.

    ``None`` when the estimator's weights do not have the common-start form (see
    :func:`_time_weights`); the caller then refits.
    """
    reps = int(options.replications)
    if reps < 19:
        return None  # the engine's error message is raised by the refitting path
    entry = get_estimator(estimator)
    R, N = A.shape
    Y = np.empty((N, history.n_periods))
    Y[history.unit, history.time] = history.y(outcome)
    weights: dict[int, np.ndarray | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotlabWarning)
        for s in np.unique(starts).tolist():  # one fit per distinct start date
            r0 = int(np.flatnonzero(starts == s)[0])
            try:
                weights[s] = _time_weights(
                    _placebo_panel(history, A[r0], s, post), outcome, entry, options
                )
            except EstimationError:
                weights[s] = np.full(s + post, np.nan)  # every placebo with this start fails
            if weights[s] is None:
                return None
    # Which units each re-assignment treats, from the random stream the engine's permutation
    # test would use for that placebo pilot (the same assignments, hence the same decisions).
    seeds = np.random.SeedSequence(seed_seq.entropy, spawn_key=seed_seq.spawn_key).spawn(R)
    est = np.full(R, np.nan)
    own = np.full(R, np.nan)
    exact = np.zeros(R, dtype=bool)
    perm: np.ndarray | None = None
    slope: np.ndarray | None = None
    chunk = max(1, min(R, max(R // 50, 1), 4_000_000 // max(reps * N, 1)))
    done = done0
    for a0 in range(0, R, chunk):
        rows = range(a0, min(R, a0 + chunk))
        masks = []
        for r in rows:  # one random stream per placebo pilot (reproducible across paths)
            pan = history.with_first_treated(np.where(A[r], int(starts[r]), NEVER))
            block_of_unit, block_ft, _ = _assignment_blocks(pan)
            assign, exact[r] = _draw_assignments(block_ft, reps, np.random.default_rng(seeds[r]))
            masks.append(assign[:, block_of_unit] != NEVER)
        B = max(m.shape[0] for m in masks)
        M = np.zeros((len(masks), B, N))
        valid_b = np.zeros((len(masks), B), dtype=bool)
        for i, m in enumerate(masks):  # stack the chunk (rows of different lengths)
            M[i, : m.shape[0]] = m
            valid_b[i, : m.shape[0]] = True
        idx = np.arange(rows.start, rows.stop)
        a = A[idx].astype(float)
        k = a.sum(axis=1)
        V = np.empty((idx.size, N))
        VD = np.empty((idx.size, N))
        for s in np.unique(starts[idx]).tolist():  # a loop over start dates
            sel = np.flatnonzero(starts[idx] == s)
            g = weights[s]
            assert g is not None
            z = Y[:, : s + post] @ g
            f = N / (k[sel] * (N - k[sel]))
            V[sel] = (z - z.mean())[None, :] * f[:, None]
            gamma = float(g[s:].sum())  # effect of D on the estimate: 1 up to rounding
            VD[sel] = (a[sel] - (k[sel] / N)[:, None]) * (gamma * f)[:, None]
        est[idx] = np.einsum("rn,rn->r", a, V)
        own[idx] = np.einsum("rn,rn->r", a, VD)
        if perm is None or slope is None:
            perm = np.full((R, B), np.nan)
            slope = np.full((R, B), np.nan)
        elif perm.shape[1] < B:
            pad = np.full((R, B - perm.shape[1]), np.nan)
            perm, slope = np.hstack([perm, pad]), np.hstack([slope, pad])
        pb = np.einsum("rbn,rn->rb", M, V)
        sb = np.einsum("rbn,rn->rb", M, VD)
        perm[idx, :B] = np.where(valid_b, pb, np.nan)
        slope[idx, :B] = np.where(valid_b, sb, np.nan)
        done += idx.size
        if progress is not None:
            progress(done, total)
    assert perm is not None and slope is not None
    ok = np.isfinite(est)
    return _Permuted(est, own, perm, slope, exact, ok)


def _placebo_panel(history: Panel, treated: np.ndarray, start: int, post: int) -> Panel:
    ft = np.where(treated, start, NEVER).astype(np.int64)
    return history.truncate_periods(start + post - 1).with_first_treated(ft)


def _wild_rejections(
    pan: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    effects: np.ndarray,
) -> np.ndarray:
    """Wild cluster restricted bootstrap decisions at every effect from one fit.

    Testing ``beta = 0`` on ``y + delta * D`` is testing ``beta = -delta`` on ``y``: the
    restricted residuals, bootstrap samples and t statistics are identical, so one bootstrap
    state answers every effect size. The rng is used as :func:`apply_inference` uses it, so the
    decisions equal those of refitting each injected outcome.
    """
    base = entry.fit(pan, outcome, dataclasses.replace(options, inference="cluster"), rng)
    lin = base.linear
    if lin is None:
        raise EstimationError(f"the {entry.name} estimator does not expose its regression.")
    fit = lin.fit
    draws = make_draws(
        int(np.asarray(fit.cluster).max()) + 1,
        options.replications,
        options.bootstrap_weights,
        rng,
    )
    if lin.combination is not None:
        state = prepare_wild_bootstrap(
            combination_fit(fit, np.asarray(lin.combination), "headline"), "headline", draws
        )
    else:
        state = prepare_wild_bootstrap(fit, lin.coef_index, draws)
    p = np.array([state.p_value(-float(d)) for d in effects])  # a handful of effect sizes
    return np.where(np.isfinite(p), (p < options.alpha).astype(float), np.nan)


def _fit_chunk(
    history: Panel,
    outcome: str,
    estimator: str,
    options: EstimatorOptions,
    A: np.ndarray,
    starts: np.ndarray,
    post: int,
    effects: np.ndarray | None,
    seeds: list[np.random.SeedSequence],
    mode: Path_,
) -> tuple[np.ndarray, int]:
    """Fit a chunk of placebo pilots; rows = draws, columns = (estimate, se, df) or rejections.

    ``mode``: ``shift`` fits once and returns (estimate, se, df); ``wild`` fits once and returns
    wild-bootstrap decisions at every effect; ``full`` refits every injected outcome through the
    same :func:`apply_inference` the engine uses.
    """
    entry = get_estimator(estimator)
    ne = 0 if effects is None else effects.size
    out = np.full((A.shape[0], 3 if mode == "shift" else ne), np.nan)
    failed = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotlabWarning)
        for r in range(A.shape[0]):  # one regression per placebo pilot: the generic path
            pan = _placebo_panel(history, A[r], int(starts[r]), post).complete(
                outcome, tuple(options.covariates)
            )
            try:
                if mode == "shift":
                    res = entry.fit(pan, outcome, options, np.random.default_rng(seeds[r]))
                    df = float(res.linear.fit.df_resid) if res.linear is not None else math.inf
                    out[r] = (res.estimate, res.std_error, df)
                    continue
                assert effects is not None
                if mode == "wild":
                    rng = np.random.default_rng(seeds[r])
                    out[r] = _wild_rejections(pan, outcome, entry, options, rng, effects)
                    continue
                D = pan.treated_now.astype(float)
                y0 = pan.y(outcome)
                for j, delta in enumerate(effects):
                    frame = pan.frame.copy()
                    frame[outcome] = y0 + delta * D
                    res = apply_inference(
                        pan.with_frame(frame),
                        outcome,
                        entry,
                        options,
                        np.random.default_rng(seeds[r]),
                    )
                    p = res.p_value
                    out[r, j] = float(p < options.alpha) if math.isfinite(p) else np.nan
            except EstimationError:
                out[r] = np.nan
                failed += 1
    return out, failed


def _run_generic(
    history: Panel,
    outcome: str,
    estimator: str,
    options: EstimatorOptions,
    A: np.ndarray,
    starts: np.ndarray,
    post: int,
    effects: np.ndarray,
    seed_seq: np.random.SeedSequence,
    n_jobs: int,
    progress: ProgressCallback | None,
    done0: int,
    total: int,
    mode: Path_,
    seeds: list[np.random.SeedSequence] | None = None,
) -> _Draws:
    R = A.shape[0]
    if seeds is None:
        seeds = _placebo_seeds(seed_seq, R)
    # enough chunks for the progress bar to move steadily (about 4% each)
    n_chunks = min(R, max(max(1, n_jobs) * 4, 25))
    bounds = np.linspace(0, R, n_chunks + 1).astype(int)
    parts: dict[int, np.ndarray] = {}
    failed = 0
    done = done0
    args = [
        (
            history,
            outcome,
            estimator,
            options,
            A[a:b],
            starts[a:b],
            post,
            effects,
            seeds[a:b],
            mode,
        )
        for a, b in itertools.pairwise(bounds)
    ]
    if n_jobs <= 1:
        for i, a in enumerate(args):
            parts[i], f = _fit_chunk(*a)
            failed += f
            done += a[4].shape[0]
            if progress is not None:
                progress(done, total)
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            futures = {pool.submit(_fit_chunk, *a): i for i, a in enumerate(args)}
            for fut in as_completed(futures):
                i = futures[fut]
                parts[i], f = fut.result()
                failed += f
                done += args[i][4].shape[0]
                if progress is not None:
                    progress(done, total)
    out = np.concatenate([parts[i] for i in range(len(args))], axis=0)
    if mode == "shift":
        return _Draws(out[:, 0], out[:, 1], out[:, 2], None, failed, mode)
    return _Draws(None, None, None, out, failed, mode)


def _run_capped(
    history: Panel,
    outcome: str,
    estimator: str,
    options: EstimatorOptions,
    A: np.ndarray,
    starts: np.ndarray,
    post: int,
    effects: np.ndarray,
    seed_seq: np.random.SeedSequence,
    n_jobs: int,
    progress: ProgressCallback | None,
    done0: int,
    total: int,
    time_budget: float,
    capped: list[_Capped] | None,
) -> _Draws:
    """The refitting path within a time budget: time one placebo pilot, then run what fits.

    The placebo pilots kept are the first ones drawn, with their own random streams, so a
    capped run gives the same decisions for them as an uncapped one.
    """
    R = A.shape[0]
    seeds = _placebo_seeds(seed_seq, R)
    t0 = time.perf_counter()
    first, f0 = _fit_chunk(
        history, outcome, estimator, options, A[:1], starts[:1], post, effects, seeds[:1], "full"
    )
    each = max(time.perf_counter() - t0, 1e-6)
    if progress is not None:
        progress(done0 + 1, total)
    workers = max(1, min(n_jobs, _cpus()))
    n_use = int(min(R, max(MIN_SIMULATIONS, (time_budget - each) * workers / each + 1)))
    if n_use < R and capped is not None:
        capped.append(_Capped(R, n_use, each))
    rest = _run_generic(
        history, outcome, estimator, options, A[1:n_use], starts[1:n_use], post, effects,
        seed_seq, n_jobs, progress, done0 + 1, total, "full", seeds[1:n_use],
    )  # fmt: skip
    if progress is not None and n_use < R:
        progress(done0 + R, total)  # this design's share of the bar is done
    assert rest.reject is not None
    return _Draws(None, None, None, np.concatenate([first, rest.reject]), f0 + rest.failed, "full")


def simulate_placebos(
    history: Panel,
    outcome: str,
    estimator: str,
    options: EstimatorOptions,
    A: np.ndarray,
    starts: np.ndarray,
    post: int,
    effects: np.ndarray,
    *,
    seed_seq: np.random.SeedSequence,
    n_jobs: int = 1,
    progress: ProgressCallback | None = None,
    force_path: Path_ | None = None,
    done0: int = 0,
    total: int | None = None,
) -> tuple[np.ndarray, int, Path_, np.ndarray | None]:
    """Rejections (``draws x effects``, NaN where a fit failed) of the placebo pilots.

    Returns the rejection matrix, the number of failed fits, the path used and, on the
    vectorised and shift paths, the (estimate, se, df) matrix of the draws at zero effect.
    """
    rej, failed, path, ests, _ = _simulate(
        history, outcome, estimator, options, A, starts, post, effects,
        seed_seq=seed_seq, n_jobs=n_jobs, progress=progress, force_path=force_path,
        done0=done0, total=total,
    )  # fmt: skip
    return rej, failed, path, ests


RejectAt = Callable[[np.ndarray], np.ndarray]


def _placebo_seeds(seed_seq: np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """One stream per placebo pilot, so results do not depend on n_jobs; spawned from a copy so
    that the caller's SeedSequence is left as it was (the same call gives the same streams)."""
    return np.random.SeedSequence(seed_seq.entropy, spawn_key=seed_seq.spawn_key).spawn(n)


@dataclass(frozen=True)
class _Capped:
    """Placebo pilots actually run when refitting every one would exceed the time budget."""

    requested: int
    used: int
    seconds_each: float


def _simulate(
    history: Panel,
    outcome: str,
    estimator: str,
    options: EstimatorOptions,
    A: np.ndarray,
    starts: np.ndarray,
    post: int,
    effects: np.ndarray,
    *,
    seed_seq: np.random.SeedSequence,
    n_jobs: int = 1,
    progress: ProgressCallback | None = None,
    force_path: Path_ | None = None,
    done0: int = 0,
    total: int | None = None,
    time_budget: float | None = None,
    capped: list[_Capped] | None = None,
) -> tuple[np.ndarray, int, Path_, np.ndarray | None, RejectAt | None]:
    """:func:`simulate_placebos`, plus ``reject_at(effects)`` when more effects cost nothing.

    With ``time_budget`` (seconds), the refitting path times its first placebo pilot and runs
    only as many as fit in the budget (at least 20), recording that in ``capped``.
    """
    total = A.shape[0] if total is None else total
    path: Path_
    if force_path is not None:
        path = force_path
    elif _vectorised_ok(history, outcome, estimator, options):
        path = "vectorised"
    elif _caps(estimator).linear and options.inference in LINEAR_INFERENCE:
        path = "shift"
    elif _caps(estimator).linear and options.inference == "wild_bootstrap":
        path = "wild"
    elif _permutation_ok(history, outcome, estimator, options):
        path = "permutation"
    else:
        path = "full"
    if path == "permutation":
        perm = _permutation_draws(
            history, outcome, estimator, options, A, starts, post, seed_seq, progress, done0,
            total,
        )  # fmt: skip
        if perm is not None:
            alpha = options.alpha

            def reject_at(e: np.ndarray) -> np.ndarray:
                return perm.reject(np.asarray(e, dtype=float), alpha)

            return reject_at(effects), int((~perm.ok).sum()), path, None, reject_at
        path = "full"  # the estimator's weights are not of the common-start form: refit
    if path == "vectorised":
        draws = _vectorised(
            history, outcome, A, starts, post, options.inference, progress, done0, total
        )
    elif path == "full" and time_budget is not None and A.shape[0] > MIN_SIMULATIONS:
        draws = _run_capped(
            history, outcome, estimator, options, A, starts, post, effects, seed_seq, n_jobs,
            progress, done0, total, time_budget, capped,
        )  # fmt: skip
    else:
        draws = _run_generic(
            history,
            outcome,
            estimator,
            options,
            A,
            starts,
            post,
            effects,
            seed_seq,
            n_jobs,
            progress,
            done0,
            total,
            path,
        )
    if draws.reject is not None:
        return draws.reject, draws.failed, path, None, None
    assert draws.estimate is not None and draws.std_error is not None and draws.df is not None
    ests = np.column_stack([draws.estimate, draws.std_error, draws.df])
    bad = ~(np.isfinite(draws.estimate) & np.isfinite(draws.std_error) & (draws.std_error > 0))
    alpha = options.alpha

    def shift_at(e: np.ndarray) -> np.ndarray:
        rej = _shift_reject(ests, np.asarray(e, dtype=float), alpha)
        rej[bad] = np.nan
        return rej

    return shift_at(effects), draws.failed, path, ests, shift_at


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PowerPoint:
    """Simulated power at one effect size."""

    effect: float
    power: float
    mc_error: float  # Monte Carlo standard error sqrt(p (1 - p) / n)
    n: int  # placebo pilots with a valid test
    analytic_power: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {k: json_scalar(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class TradeoffCell:
    """One design of the trade-off grid: number of treated units x post-period length."""

    n_treated: int
    post_periods: int
    mde: float | None
    analytic_mde: float  # planned design: the whole history before the start
    analytic_mde_placebo: float  # the placebo designs simulated (comparable with ``mde``)
    false_positive_rate: float
    power_at_declared_mde: float | None
    estimator: str = ""
    inference: str = ""  # resolved for this design (``auto`` may differ between designs)
    over_rejects: bool = False  # false-positive rate clearly above alpha: no MDE claimed

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {k: json_scalar(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class PowerResult:
    """Power and minimum detectable effect of a planned pilot, from placebos in its history."""

    pilot_id: str
    title: str
    outcome: str
    outcome_label: str
    better: str
    estimator: str
    inference: str
    estimator_reason: str
    inference_reason: str
    alpha: float
    target_power: float
    simulations: int
    failed: int
    n_treated: int
    treated_units: tuple[str, ...]  # the planned units when given, else empty (random draws)
    post_periods: int
    min_pre_periods: int
    n_units: int
    n_periods: int
    history: tuple[str, str]  # first and last period of the history used
    seed: int
    path: str
    curve: tuple[PowerPoint, ...]
    mde: float | None
    false_positive_rate: float
    false_positive_mc_error: float
    declared_mde: float | None
    power_at_declared_mde: float | None
    analytic: AnalyticMDE | None
    false_positives: int = 0  # placebo pilots rejecting at zero effect
    false_positive_interval: tuple[float, float] = (math.nan, math.nan)  # 95% Clopper-Pearson
    over_rejects: bool = False  # the interval lies above alpha: no MDE is claimed
    advice: str = ""  # which inference to use instead, when over_rejects
    #: ``random``: placebo pilots draw the treated units at random (the design's power);
    #: ``conditional``: they keep the named units (power conditional on their history)
    assignment: str = "random"
    tradeoff: tuple[TradeoffCell, ...] = ()
    notes: tuple[str, ...] = ()
    elapsed_seconds: float = 0.0
    software: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The content of ``power.json``."""
        d: dict[str, Any] = {
            k: json_scalar(v)
            for k, v in self.__dict__.items()
            if k
            not in {
                "curve", "analytic", "tradeoff", "notes", "treated_units", "history",
                "false_positive_interval",
            }
        }  # fmt: skip
        d["false_positive_interval"] = [json_scalar(v) for v in self.false_positive_interval]
        d["treated_units"] = list(self.treated_units)
        d["history"] = {"first": self.history[0], "last": self.history[1]}
        d["table"] = [p.to_dict() for p in self.curve]
        d["analytic"] = self.analytic.to_dict() if self.analytic else None
        d["tradeoff"] = [c.to_dict() for c in self.tradeoff]
        d["notes"] = list(self.notes)
        return d


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


def _nice(x: float) -> float:
    """Round to three significant figures (grid values people read)."""
    if x == 0 or not math.isfinite(x):
        return 0.0
    return float(f"{x:.3g}")


# ----------------------------------------------------------------------------- orchestration


@dataclass(frozen=True)
class _Design:
    """One design to simulate: how many treated (or which units) and how many post periods."""

    n_treated: int
    post: int
    fixed: np.ndarray | None = None  # unit codes of the planned units; None = random draws


@dataclass(frozen=True)
class _Setup:
    """What every design of one run shares."""

    spec: PilotSpec
    history: Panel
    outcome: str
    Y: np.ndarray | None  # balanced history matrix for the analytic MDE (None if unbalanced)
    seed: int
    simulations: int
    min_pre: int
    alpha: float
    target: float
    df_analytic: float | None
    sign: float  # +1: effects are increases; -1: reductions (better: lower)
    effects: tuple[float, ...] | None  # user grid, or None for one around the analytic MDE
    declared_mde: float | None
    n_jobs: int
    progress: ProgressCallback | None
    total: int
    stage: StageCallback | None = None
    time_budget: float | None = DEFAULT_TIME_BUDGET
    notes: list[str] = field(default_factory=list)  # notes raised while simulating


@dataclass(frozen=True)
class _DesignRun:
    """Simulated power curve of one design."""

    effects: np.ndarray
    power: np.ndarray
    false_positives: int  # placebo pilots rejecting at zero effect
    fpr_interval: tuple[float, float]  # 95% Clopper-Pearson interval of the false-positive rate
    over_rejects: bool  # the interval lies above alpha: no MDE is claimed
    n: int
    failed: int
    path: Path_
    analytic: AnalyticMDE | None
    analytic_curve: np.ndarray | None
    mde: float | None
    declared_power: float | None
    estimator: Choice
    inference: Choice


def _as_list(v: int | Sequence[int] | None) -> list[int] | None:
    if v is None:
        return None
    if isinstance(v, int | np.integer):
        return [int(v)]
    return [int(x) for x in v]


def _resolve_history(spec: PilotSpec, data: pd.DataFrame | None) -> tuple[Panel, str]:
    panel, loaded = collect(load_panel, spec, data, history=True)
    notes = "; ".join(n.message for n in loaded)
    if panel.n_treated_units:
        # Real starts inside the data: plan from the history before the earliest one.
        first = int(panel.cohorts.min()) - panel.anticipation
        panel = panel.truncate_periods(first - 1)
    panel = panel.with_first_treated(np.full(panel.n_units, NEVER, dtype=np.int64))
    return panel, notes


def _planned_units(spec: PilotSpec, panel: Panel) -> list[str] | None:
    p = spec.design.power.treated
    if isinstance(p, list):
        return list(p)
    if p is None and spec.treatment.units:
        return list(spec.treatment.units)
    if p is None and spec.treatment.adoption:
        return list(spec.treatment.adoption)
    return None


def _check_design(
    panel: Panel, n_treated: int, post: int, min_pre: int, key_treated: str, key_post: str
) -> None:
    T, N = panel.n_periods, panel.n_units
    if post + min_pre > T:
        raise SpecError(
            f"{key_post}: {post} post periods plus at least {min_pre} periods before the start "
            f"(design.power.min_pre_periods) need {post + min_pre} periods of history, but the "
            f"data hold {T} ({panel.period_labels[0]} to {panel.period_labels[-1]}); plan a "
            "shorter post period, lower min_pre_periods or add earlier history"
        )
    if n_treated >= N:
        raise SpecError(
            f"{key_treated}: {n_treated} treated units requested but only {N} units are "
            f"eligible in the data, and at least one must stay untreated for comparison; plan "
            f"at most {N - 1} treated units or widen treatment.eligible"
        )


def _main_design(
    spec: PilotSpec,
    history: Panel,
    treated: list[int] | None,
    post: list[int] | None,
    notes: list[str],
    min_pre: int,
    conditional: bool,
) -> tuple[_Design, str, str]:
    """The design the headline numbers are for, and the keys its values came from.

    Named units (``design.power.treated`` as a list, or ``treatment.units``) give the number of
    treated units; placebo pilots draw that many at random from the eligible units, so that the
    power is the design's. Only ``conditional`` keeps the named units in every placebo pilot.
    """
    ps = spec.design.power
    planned = _planned_units(spec, history)
    fixed: np.ndarray | None = None
    if treated is not None and len(treated) == 1:
        k, key_treated = treated[0], "--treated"
    elif isinstance(ps.treated, int):
        k, key_treated = ps.treated, "design.power.treated"
    elif planned is not None and treated is None:
        codes = {u: i for i, u in enumerate(history.unit_labels)}
        missing = [u for u in planned if u not in codes]
        if missing:
            raise SpecError(
                f"design.power.treated: unit(s) {', '.join(missing[:6])} are not among the "
                f"{history.n_units} units of the history; check the ids against column "
                f"'{spec.data.unit}' (and treatment.exclude / eligible)"
            )
        k, key_treated = len(planned), "design.power.treated"
        if conditional:
            fixed = np.array(sorted(codes[u] for u in planned), dtype=np.int64)
            notes.append(
                f"Power conditional on the named units ({', '.join(planned[:8])}"
                f"{', ...' if len(planned) > 8 else ''}): every placebo pilot keeps them treated "
                "and differs only in its start date, so these numbers describe how the test "
                "behaves on these units' own history. They are not the power of the design, "
                "and the false-positive rate says whether the test can be trusted for them."
            )
        else:
            notes.append(
                f"The pilot names its {k} treated units; each placebo pilot draws {k} units at "
                f"random from the {history.n_units} eligible units (and a start date), so the "
                "curve is the power of the design. Holding the named units fixed would give "
                "power conditional on their own history instead (design.power."
                "conditional_on_units: true)."
            )
    elif treated:
        k, key_treated = treated[0], "--treated"
    else:
        raise SpecError(
            "design.power.treated: the pilot file does not say how many units the pilot "
            "will treat; add design.power.treated (a number, or a list of units), "
            "treatment.units, or pass --treated"
        )
    if conditional and fixed is None:
        raise SpecError(
            "design.power.conditional_on_units: power conditional on named units needs the "
            "units; list them in design.power.treated or treatment.units (and do not pass a "
            "number with --treated)"
        )
    T = history.n_periods
    if post is not None and len(post) == 1:
        L, key_post = post[0], "--post"
    elif ps.post_periods is not None:
        L, key_post = ps.post_periods, "design.power.post_periods"
    elif post:
        L, key_post = post[0], "--post"
    elif spec.design.window is not None and spec.design.window.post > 0:
        L, key_post = spec.design.window.post, "design.window.post"
        if L + min_pre > T and T - min_pre >= 1:
            # The analysis window is not a plan for power: fit it to the history available.
            notes.append(
                f"design.window.post asks for {L} periods after the start, but the history "
                f"before the start holds {T} periods ({history.period_labels[0]} to "
                f"{history.period_labels[-1]}) and each placebo pilot keeps at least "
                f"{min_pre} before its start; placebo pilots use {T - min_pre} periods after "
                "the start. Set design.power.post_periods to plan another length."
            )
            L = T - min_pre
    else:
        L, key_post = max(1, T // 4), "design.power.post_periods"
        notes.append(
            f"No post-period length was planned; {L} periods (a quarter of the "
            "history) were assumed. Set design.power.post_periods."
        )
    return _Design(k, L, fixed), key_treated, key_post


def _simulate_design(setup: _Setup, design: _Design, index: int, done0: int) -> _DesignRun:
    """Draw, fit and summarise the placebo pilots of one design."""
    from pilotlab.engine import _options, choose_estimator, choose_inference

    hist, k, L = setup.history, design.n_treated, design.post
    draw_ss, fit_ss = np.random.SeedSequence(setup.seed, spawn_key=(index + 1,)).spawn(2)
    A, starts = draw_placebos(
        np.random.default_rng(draw_ss),
        n_units=hist.n_units,
        n_periods=hist.n_periods,
        n_treated=k,
        post=L,
        min_pre=setup.min_pre,
        simulations=setup.simulations,
        fixed=design.fixed,
    )
    # The estimator and inference the pilot would use with this design (``auto`` resolved on
    # one of its placebo pilots, as the engine resolves it on the real data).
    example = _placebo_panel(hist, A[0], int(starts[0]), L)
    est = choose_estimator(example, setup.spec.design.estimator)
    inf = choose_inference(example, est.name, setup.spec.design.inference.method)
    # placebo pilots need only the effect's test, not a pre-trend test
    options = dataclasses.replace(_options(setup.spec, inf.name), pretrend="none")
    an = None
    if setup.Y is not None:
        an = analytic_mde(
            setup.Y,
            pre=hist.n_periods,
            post=L,
            n_treated=k,
            alpha=setup.alpha,
            power=setup.target,
            df=setup.df_analytic,
            simulated_pre=sorted(set(starts.tolist())),
        )
    if setup.effects is not None:
        effects = np.unique(np.concatenate([[0.0], np.abs(setup.effects)]))
    else:
        base = an.mde_simulated_design if an is not None else _rough_scale(hist, setup, k, L)
        effects = np.array([_nice(m * base) for m in GRID_MULTIPLES])
    if setup.stage is not None:
        what = (
            f"{design.n_treated} named units"
            if design.fixed is not None
            else (f"{design.n_treated} treated")
        )
        setup.stage(
            f"Simulating {setup.simulations} placebo pilots ({what}, {L} periods after; "
            f"{est.name}, {inf.name} inference)"
        )
    if setup.progress is not None:
        setup.progress(done0, setup.total)  # the bar shows before the first placebo finishes
    capped: list[_Capped] = []
    rej, _, path, _, more = _simulate(
        hist,
        setup.outcome,
        est.name,
        options,
        A,
        starts,
        L,
        setup.sign * effects,
        seed_seq=fit_ss,
        n_jobs=setup.n_jobs,
        progress=setup.progress,
        done0=done0,
        total=setup.total,
        time_budget=setup.time_budget,
        capped=capped,
    )
    starts = starts[: rej.shape[0]]  # fewer when the run was capped in time
    valid = ~np.isnan(rej[:, 0])
    if more is not None and setup.effects is None:
        # Extend the grid while the simulated power stays below the target (free here).
        for _ in range(4):
            if np.nanmean(rej[:, -1]) >= setup.target:
                break
            extra = np.array([_nice(effects[-1] * 1.5), _nice(effects[-1] * 2.0)])
            rej_extra = more(setup.sign * extra)
            rej_extra[~valid] = np.nan
            effects = np.concatenate([effects, extra])
            rej = np.concatenate([rej, rej_extra], axis=1)
    n_ok = int(valid.sum())
    if n_ok == 0:
        raise EstimationError(
            f"design.estimator: every placebo pilot failed to estimate with {est.name}; "
            "check the history has variation over time and enough comparison units"
        )
    pw = np.nanmean(rej, axis=0)
    decl, decl_power = setup.declared_mde, None
    if decl is not None and more is not None:
        decl_power = float(more(np.array([setup.sign * decl]))[valid].mean())
    elif decl is not None:
        decl_power = float(np.interp(decl, effects, pw))
    analytic_curve = None
    if an is not None:
        ses = np.sqrt(
            [
                did_variance(ar1_covariance(m + L, an.sigma2, an.rho), m, L, hist.n_units, k)
                for m in starts[valid]  # one term per placebo: a loop over draws of scalars
            ]
        )
        analytic_curve = _analytic_power(effects, ses, setup.alpha, setup.df_analytic)
    if capped:
        c = capped[0]
        setup.notes.append(
            f"Each placebo pilot refits the {est.name} estimator for every one of "
            f"{options.replications} re-assignments ({c.seconds_each:.1f} s per placebo "
            f"pilot here), so {c.used} of the {c.requested} placebo pilots requested were run "
            f"to finish in about {setup.time_budget:.0f} s: each power value has a Monte Carlo "
            f"error of up to {0.5 / math.sqrt(c.used):.1%} (false-positive rate "
            f"{math.sqrt(setup.alpha * (1 - setup.alpha) / c.used):.1%}). Allow longer with "
            "--time-budget (seconds; 0 for no limit)."
        )
    false_pos = int(np.nansum(rej[:, 0]))
    lo, hi = _binomial_interval(false_pos, n_ok)
    over = lo > setup.alpha
    return _DesignRun(
        effects=effects,
        power=pw,
        false_positives=false_pos,
        fpr_interval=(lo, hi),
        over_rejects=over,
        n=n_ok,
        failed=int((~valid).sum()),
        path=path,
        analytic=an,
        analytic_curve=analytic_curve,
        mde=None if over else mde_from_curve(effects, pw, setup.target),
        declared_power=None if over else decl_power,
        estimator=est,
        inference=inf,
    )


def _binomial_interval(x: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a binomial proportion (``x`` successes of ``n``)."""
    if n <= 0:
        return math.nan, math.nan
    a = (1 - level) / 2
    lo = 0.0 if x == 0 else float(stats.beta.ppf(a, x, n - x + 1))
    hi = 1.0 if x == n else float(stats.beta.ppf(1 - a, x + 1, n - x))
    return lo, hi


def _advice(inference: str, estimator: str, n_treated: int, n_units: int, fixed: bool) -> str:
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
        if _caps(estimator).linear and few >= WILD_MIN_TREATED:
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


def _shift_reject(ests: np.ndarray, effects: np.ndarray, alpha: float) -> np.ndarray:
    """Rejections (draws x effects) from (estimate, se, df) rows when estimates shift by effect."""
    q = stats.t.ppf(1 - alpha / 2, ests[:, 2])
    reject: np.ndarray = (
        np.abs(ests[:, :1] + effects[None, :]) > (q * ests[:, 1])[:, None]
    ).astype(float)
    return reject


def run_power(
    spec: PilotSpec,
    data: pd.DataFrame | None = None,
    treated: int | Sequence[int] | None = None,
    post: int | Sequence[int] | None = None,
    progress: ProgressCallback | None = None,
    *,
    simulations: int | None = None,
    n_jobs: int | None = None,
    outcome: str | None = None,
    conditional: bool | None = None,
    stage: StageCallback | None = None,
    time_budget: float | None = DEFAULT_TIME_BUDGET,
) -> PowerResult:
    """Simulated power and MDE of a planned pilot from placebo pilots drawn in its history.

    Parameters
    ----------
    spec
        The pilot (status ``planned``; its data may hold only the history).
    data
        Optional DataFrame used instead of the pilot's data file.
    treated
        Number(s) of treated units. One value overrides ``design.power.treated``; several values
        (with or without several ``post`` values) add a trade-off grid of designs.
    post
        Post-period length(s), as ``treated``.
    progress
        ``progress(done, total)`` called as placebo pilots are evaluated.
    simulations
        Placebo pilots per design (default ``design.power.simulations``).
    n_jobs
        Worker processes for the generic path (default: the CPUs available, at most 8).
    outcome
        Outcome column (default: the first primary outcome).
    conditional
        Keep the named treated units in every placebo pilot (default
        ``design.power.conditional_on_units``): power conditional on their own history, labelled
        as such, instead of the design's power with units drawn at random.
    stage
        ``stage(message)`` called as each stage starts (the CLI prints them).
    time_budget
        Seconds a design may take on the refitting path (estimators without a fast form,
        such as Callaway & Sant'Anna or covariates with randomisation inference) before fewer
        placebo pilots are run, with the Monte Carlo error stated; ``None`` for no limit.

    Raises
    ------
    SpecError
        A design the history cannot support (too few periods, more treated than eligible units).
    """
    from pilotlab.engine import software_versions

    t0 = time.perf_counter()
    ps = spec.design.power
    alpha = spec.design.alpha
    n_sims = int(simulations or ps.simulations)
    if n_sims < 20:
        raise SpecError(
            f"simulations: found {n_sims}; at least 20 placebo pilots are needed for a power "
            "estimate (500 or more for a Monte Carlo error below 2 points)"
        )
    out_spec = next((o for o in spec.outcomes if o.column == outcome), spec.primary_outcomes[0])
    if outcome is not None and out_spec.column != outcome:
        raise SpecError(
            f"outcome: '{outcome}' is not an outcome of this pilot; use one of "
            f"{', '.join(o.column for o in spec.outcomes)}"
        )
    if stage is not None:
        stage("Reading the history")
    history, load_notes = _resolve_history(spec, data)
    history = history.complete(out_spec.column, tuple(spec.design.covariates))
    notes: list[str] = [load_notes] if load_notes else []

    # ---- the designs
    treated_list, post_list = _as_list(treated), _as_list(post)
    min_pre = ps.min_pre_periods if ps.min_pre_periods is not None else DEFAULT_MIN_PRE
    cond = bool(ps.conditional_on_units) if conditional is None else conditional
    main, key_treated, key_post = _main_design(
        spec, history, treated_list, post_list, notes, min_pre, cond
    )
    _check_design(history, main.n_treated, main.post, min_pre, key_treated, key_post)
    grid: list[_Design] = []
    if (treated_list and len(treated_list) > 1) or (post_list and len(post_list) > 1):
        for k in treated_list or [main.n_treated]:
            for L in post_list or [main.post]:
                _check_design(history, k, L, min_pre, "--treated", "--post")
                grid.append(_Design(k, L))

    seed = ps.seed if ps.seed is not None else spec.design.inference.seed
    # The main design's draws serve its cell of the trade-off grid (same numbers in both tables).
    reuse_main = main.fixed is None and _Design(main.n_treated, main.post) in grid
    setup = _Setup(
        spec=spec,
        history=history,
        outcome=out_spec.column,
        Y=_history_matrix(history, out_spec.column),
        seed=seed,
        simulations=n_sims,
        min_pre=min_pre,
        alpha=alpha,
        target=ps.target_power,
        df_analytic=float(max(history.n_clusters - 1, 1)),
        # Effects are injected in the direction the pilot hopes for; tables report their size.
        sign=-1.0 if out_spec.better == "lower" else 1.0,
        effects=tuple(ps.effects) if ps.effects is not None else None,
        declared_mde=out_spec.mde,
        n_jobs=n_jobs or min(_cpus(), 8),
        progress=progress,
        total=n_sims * (1 + len(grid) - int(reuse_main)),
        stage=stage,
        time_budget=time_budget if time_budget else None,
        notes=notes,
    )
    run = _simulate_design(setup, main, 0, 0)
    cells = []
    done = n_sims
    for i, d in enumerate(grid):
        if reuse_main and (d.n_treated, d.post) == (main.n_treated, main.post):
            r = run
        else:
            r = _simulate_design(setup, d, i + 1, done)
            done += n_sims
        cells.append(
            TradeoffCell(
                n_treated=d.n_treated,
                post_periods=d.post,
                mde=r.mde,
                analytic_mde=r.analytic.mde if r.analytic else math.nan,
                analytic_mde_placebo=r.analytic.mde_simulated_design if r.analytic else math.nan,
                false_positive_rate=float(r.power[0]),
                power_at_declared_mde=r.declared_power,
                estimator=r.estimator.name,
                inference=r.inference.name,
                over_rejects=r.over_rejects,
            )
        )

    n = run.n
    curve = tuple(
        PowerPoint(
            effect=float(e),
            power=float(p),
            mc_error=math.sqrt(p * (1 - p) / n),
            n=n,
            analytic_power=None if run.analytic_curve is None else float(run.analytic_curve[j]),
        )
        for j, (e, p) in enumerate(zip(run.effects, run.power, strict=True))
    )
    fpr = curve[0].power  # the grid always starts at zero effect
    fpr_lo, fpr_hi = run.fpr_interval
    advice = ""
    if run.over_rejects:
        advice = _advice(
            run.inference.name, run.estimator.name, main.n_treated, history.n_units,
            main.fixed is not None,
        )  # fmt: skip
        notes.insert(
            0,
            f"No minimum detectable effect is claimed: with no effect at all, the test finds one "
            f"in {run.false_positives} of {n} placebo pilots ({fpr:.1%}; at least {fpr_lo:.1%} "
            f"with 95% confidence), against the nominal {alpha:.0%}. The {run.inference.name} "
            f"inference over-rejects on this history, so its power curve overstates what the "
            f"pilot could detect. {advice}",
        )
    elif run.mde is None:
        notes.append(
            f"Power stays below {ps.target_power:.0%} over the effects simulated (up to "
            f"{run.effects[-1]:g}); the MDE is larger. Treat more units or plan a longer pilot."
        )
    if run.failed:
        notes.append(f"{run.failed} placebo pilot(s) could not be estimated and were left out.")
    over_cells = [c for c in cells if c.over_rejects]
    if over_cells and not run.over_rejects:
        notes.append(
            "Some designs of the trade-off grid over-reject at zero effect (their MDE is left "
            "out): " + ", ".join(f"{c.n_treated} treated / {c.post_periods} after"
                                  for c in over_cells) + "."
        )  # fmt: skip
    if setup.Y is None:
        notes.append(
            "The history is unbalanced or has missing values, so no analytic MDE is given."
        )
    return PowerResult(
        pilot_id=spec.id,
        title=spec.title,
        outcome=out_spec.column,
        outcome_label=out_spec.display,
        better=out_spec.better,
        estimator=run.estimator.name,
        inference=run.inference.name,
        estimator_reason=run.estimator.reason,
        inference_reason=run.inference.reason,
        alpha=alpha,
        target_power=ps.target_power,
        simulations=run.n + run.failed,
        failed=run.failed,
        n_treated=main.n_treated,
        treated_units=(
            tuple(history.unit_labels[i] for i in main.fixed) if main.fixed is not None else ()
        ),
        post_periods=main.post,
        min_pre_periods=min_pre,
        n_units=history.n_units,
        n_periods=history.n_periods,
        history=(history.period_labels[0], history.period_labels[-1]),
        seed=seed,
        path=run.path,
        curve=curve,
        mde=run.mde,
        false_positive_rate=fpr,
        false_positive_mc_error=math.sqrt(alpha * (1 - alpha) / n),
        false_positives=run.false_positives,
        false_positive_interval=(fpr_lo, fpr_hi),
        over_rejects=run.over_rejects,
        advice=advice,
        assignment="conditional" if main.fixed is not None else "random",
        declared_mde=out_spec.mde,
        power_at_declared_mde=run.declared_power,
        analytic=run.analytic,
        tradeoff=tuple(cells),
        notes=tuple(notes),
        elapsed_seconds=time.perf_counter() - t0,
        software=software_versions(),
    )


def _cpus() -> int:
    """CPUs this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _history_matrix(panel: Panel, outcome: str) -> np.ndarray | None:
    """The outcome as a units x periods matrix, when the history is balanced and complete."""
    if not panel.is_balanced:
        return None
    y = panel.y(outcome)
    if np.isnan(y).any():
        return None
    Y = np.empty((panel.n_units, panel.n_periods))
    Y[panel.unit, panel.time] = y
    return Y


def _rough_scale(panel: Panel, setup: _Setup, k: int, post: int) -> float:
    """An effect scale for the grid when no analytic MDE exists (unbalanced history)."""
    y = panel.y(setup.outcome)
    within = y - pd.Series(y).groupby(panel.unit).transform("mean").to_numpy()
    sd = float(np.nanstd(within))
    return 2.8 * sd * math.sqrt(2 / post) * math.sqrt(1 / k + 1 / max(panel.n_units - k, 1))


# ----------------------------------------------------------------------------- report


def write_power_report(result: PowerResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``power.json`` and the self-contained ``power.html`` into ``out_dir``.

    Returns the two paths. Both files are rendered in memory first, so nothing is written if
    rendering fails.
    """
    import json

    from pilotlab.report.power import render_power_html

    out = Path(out_dir)
    text_json = json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
    html = render_power_html(result)
    try:
        out.mkdir(parents=True, exist_ok=True)
        pj, ph = out / "power.json", out / "power.html"
        pj.write_text(text_json + "\n", encoding="utf-8")
        ph.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise PilotlabError(
            f"-o/--output: cannot write the power report to '{out}' ({exc.strerror}); choose a "
            "folder you can write to"
        ) from None
    return pj, ph
