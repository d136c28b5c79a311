"""Simulate placebo pilots: the rejections of the pilot's own test at each injected effect.

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
    The linear estimators with randomisation inference on a balanced panel without covariates
    or anticipation (weights, if any, constant within each unit). With a common start the
    estimate is a difference of treated and untreated (weighted) means of ``z_i = sum_t g_t
    y_it``, where the time weights ``g`` depend only on the start (read off one fit per start
    and checked against it). The estimate under every re-assignment of every placebo pilot is
    then one matrix product (with weights divided by that assignment's spread of the weight,
    ``sum_i w_i (a_i - abar)^2``, since a re-assignment treats another share of the weight),
    and injecting ``delta * D`` moves each re-assigned estimate by ``delta`` times its overlap
    with the placebo's own treated set, so one set of re-assignments answers every effect size.
    Callaway & Sant'Anna takes the same path through its cohort-block map (with weights, each
    assignment's weighted block sums). The re-assignments are drawn from the same random
    streams as the engine's permutation test (after the estimator's own bootstrap draws), so
    the decisions equal those of refitting every re-assignment.
``full``
    Anything else (covariates, unbalanced histories or weights that vary within a unit with
    permutation inference; Callaway & Sant'Anna where it has no cohort-block map, e.g. weights
    with an aggregation other than the simple one): one fit per placebo pilot and effect size
    through the same ``apply_inference`` that evaluates a pilot.

The generic paths (``shift``, ``wild``, ``full``) run in parallel across cores or on a Dask
cluster (:mod:`pilotlab.parallel`: chunks of placebo pilots with their own assignments and
seed streams, so the result does not depend on the workers); ``full``, which
refits everything, runs only as many placebo pilots as fit in a time budget (at least 20).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse, stats

from pilotlab.data.allocation import Allocation
from pilotlab.data.assignment import reassign
from pilotlab.data.panel import NEVER, Panel
from pilotlab.estimators import Capabilities, EstimatorEntry, EstimatorOptions, get_estimator
from pilotlab.estimators._regression import LINEAR_INFERENCE, is_nested
from pilotlab.estimators.block_map import BlockMap
from pilotlab.estimators.callaway_santanna.block_map import headline_block_map
from pilotlab.estimators.callaway_santanna.bootstrap import skip_bootstrap
from pilotlab.exceptions import EstimationError, PilotlabWarning
from pilotlab.inference.apply import apply_inference
from pilotlab.inference.wild import combination_fit, make_draws, prepare_wild_bootstrap
from pilotlab.parallel import map_chunks, worker_count
from pilotlab.power.analytic import within
from pilotlab.power.draws import placebo_panel, placebo_seeds

__all__ = [
    "MIN_SIMULATIONS",
    "CappedRun",
    "PlaceboRejections",
    "ProgressCallback",
    "RejectAt",
    "SimulationPath",
    "SimulationRun",
    "available_cpus",
    "run_simulation",
    "shift_reject",
    "simulate_placebos",
    "simulate_rejections",
]

#: ``progress(done, total)`` is called as placebo fits complete (the CLI drives a progress bar).
ProgressCallback = Callable[[int, int], None]
#: The computational path a design's placebo pilots took (see the module docstring).
SimulationPath = Literal["vectorised", "shift", "wild", "permutation", "full", "scheme"]
#: ``reject_at(effects)``: rejections (draws x effects) at more effect sizes, at no extra cost.
RejectAt = Callable[[np.ndarray], np.ndarray]

#: Fewest placebo pilots for a power estimate (also the floor when a run is capped in time).
MIN_SIMULATIONS = 20


@dataclass(frozen=True)
class _Draws:
    """Per-placebo test ingredients: either (estimate, se, df) or direct rejections."""

    estimate: np.ndarray | None  # estimate at zero effect (shift / vectorised paths)
    std_error: np.ndarray | None
    df: np.ndarray | None
    reject: np.ndarray | None  # simulations x effects (full path)
    failed: int
    path: SimulationPath


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
            Yt = within(Ys)
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
    linear = _caps(estimator).linear or get_estimator(estimator).block_map is not None
    if not linear or options.inference != "permutation":
        return False
    if options.covariates or panel.layout != "panel" or panel.anticipation:
        return False
    if panel.weighted and panel.unit_weights() is None:
        return False  # weights that vary within a unit: no per-unit form
    return panel.is_balanced and not np.isnan(panel.y(outcome)).any()


def _weight_spread(w1: np.ndarray, total: float) -> np.ndarray:
    """``sum_i w_i (a_i - abar)^2`` of assignments treating weight ``w1`` of ``total``."""
    out: np.ndarray = w1 - w1**2 / total
    return out


def _time_weights(
    pan: Panel, outcome: str, entry: EstimatorEntry, options: EstimatorOptions
) -> np.ndarray | None:
    """Time weights ``g`` with estimate = mean over treated of ``Y g`` - mean over the others
    (weighted means with unit weights).

    Read off one fit: the estimate is ``w . y`` with observation weights ``w = X (X'X)^-1 c``
    (times the square root of the regression weights, by which ``X`` is scaled). ``None`` when
    those weights are not of the form ``(a_i - k/N) N / (k (N - k)) g_t``, or with unit weights
    ``w_i (a_i - abar) / S g_t`` (``abar`` the treated share of the weight, ``S = sum_i w_i (a_i -
    abar)^2``), checked to rounding error; then re-assignments cannot be evaluated this way.
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
    if fit.weights is not None:
        w = w * np.sqrt(fit.weights)
    N, T = pan.n_units, pan.n_periods
    W = np.zeros((N, T))
    W[pan.unit, pan.time] = w
    a = pan.is_treated_unit
    k = int(a.sum())
    wu = pan.unit_weights() if pan.weighted else None
    if wu is not None:  # w_i (a_i - abar) / S g_t, abar the treated share of the weight
        abar = float(wu[a].sum() / wu.sum())
        q = wu * (a - abar) / _weight_spread(wu[a].sum(), float(wu.sum()))
        g: np.ndarray = (q @ W) / (q @ q)
        model = np.outer(q, g)
    else:
        g = W[a].mean(axis=0) * k
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
    if not entry.capabilities.linear:
        return _block_draws(
            history, outcome, entry, options, A, starts, post, seed_seq, progress, done0, total
        )
    R, N = A.shape
    Y = np.empty((N, history.n_periods))
    Y[history.unit, history.time] = history.y(outcome)
    wu = history.unit_weights() if history.weighted else None  # per unit (as _permutation_ok)
    w_total = float(wu.sum()) if wu is not None else float(N)
    weights: dict[int, np.ndarray | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotlabWarning)
        for s in np.unique(starts).tolist():  # one fit per distinct start date
            r0 = int(np.flatnonzero(starts == s)[0])
            try:
                weights[s] = _time_weights(
                    placebo_panel(history, A[r0], s, post), outcome, entry, options
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
            drawn = reassign(pan, reps, np.random.default_rng(seeds[r]))
            exact[r] = drawn.exact
            masks.append(drawn.treated())
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
            gamma = float(g[s:].sum())  # effect of D on the estimate: 1 up to rounding
            if wu is None:
                f = N / (k[sel] * (N - k[sel]))
                V[sel] = (z - z.mean())[None, :] * f[:, None]
                VD[sel] = (a[sel] - (k[sel] / N)[:, None]) * (gamma * f)[:, None]
            else:  # numerators; each assignment's spread of the weight divides them below
                V[sel] = (wu * (z - (wu @ z) / w_total))[None, :]
                VD[sel] = wu * (a[sel] - (a[sel] @ wu / w_total)[:, None]) * gamma
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
        if wu is not None:  # sum_i w_i (a_i - abar)^2 of each assignment
            with np.errstate(divide="ignore", invalid="ignore"):  # padded rows: masked below
                spread = _weight_spread(a @ wu, w_total)
                est[idx] /= spread
                own[idx] /= spread
                spread_b = _weight_spread(np.einsum("rbn,n->rb", M, wu), w_total)
                pb /= spread_b
                sb /= spread_b
        perm[idx, :B] = np.where(valid_b, pb, np.nan)
        slope[idx, :B] = np.where(valid_b, sb, np.nan)
        done += idx.size
        if progress is not None:
            progress(done, total)
    assert perm is not None and slope is not None
    ok = np.isfinite(est)
    return _Permuted(est, own, perm, slope, exact, ok)


def _redraw_stream(
    entry: EstimatorEntry, options: EstimatorOptions, n_clusters: int, seed: np.random.SeedSequence
) -> np.random.Generator:
    """A placebo pilot's random stream where its refitting path draws the re-assignments: after
    the fit of the actual assignment, which for Callaway & Sant'Anna draws its multiplier
    bootstrap (:func:`~pilotlab.estimators.callaway_santanna.bootstrap.skip_bootstrap`); the
    other estimators with a cohort-block map draw nothing (:func:`_block_draws` checks)."""
    rng = np.random.default_rng(seed)
    if entry.block_map is headline_block_map:
        skip_bootstrap(int(options.replications), n_clusters, options.bootstrap_weights, rng)
    return rng


def _fit_draws(entry: EstimatorEntry, pan: Panel, outcome: str, options: EstimatorOptions) -> bool:
    """Whether fitting ``pan`` draws from the generator (with the replications of ``options``)."""
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    entry.fit(pan, outcome, options, rng)
    return bool(rng.bit_generator.state != before)


def _block_draws(
    history: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    A: np.ndarray,
    starts: np.ndarray,
    post: int,
    seed_seq: np.random.SeedSequence,
    progress: ProgressCallback | None,
    done0: int,
    total: int,
) -> _Permuted | None:
    """:func:`_permutation_draws` for an estimator whose headline is a map of cohort blocks
    (:class:`~pilotlab.estimators.block_map.BlockMap`): one fit and map per start date and
    number treated (the coefficients depend on the cohort sizes only), then every placebo
    pilot's re-assignments, of ``y`` and of its treatment indicator ``D`` (injecting
    ``delta * D`` moves each estimate by ``delta`` times that one), are gathers. ``None`` when
    the map does not hold for some start (the caller refits)."""
    assert entry.block_map is not None
    reps = int(options.replications)
    R, N = A.shape
    T = history.n_periods
    Y = np.empty((N, T))
    Y[history.unit, history.time] = history.y(outcome)
    opts = dataclasses.replace(
        options,
        inference=entry.base_inference,  # type: ignore[arg-type]
        pretrend="none",
        replications=0,
    )
    k = A.sum(axis=1)
    maps: dict[tuple[int, int], BlockMap] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotlabWarning)
        for s, kk in sorted(set(zip(starts.tolist(), k.tolist(), strict=True))):
            r0 = int(np.flatnonzero((starts == s) & (k == kk))[0])
            pan = placebo_panel(history, A[r0], s, post)
            try:
                est0 = float(entry.fit(pan, outcome, opts, np.random.default_rng(0)).estimate)
                mapped: BlockMap | None = entry.block_map(pan, outcome, opts, est0)
                if entry.block_map is not headline_block_map and _fit_draws(
                    entry, pan, outcome, dataclasses.replace(opts, replications=reps)
                ):
                    mapped = None  # draws we cannot step over: the refitting path's stream
            except EstimationError:
                mapped = None
            if mapped is None:
                return None
            maps[(s, kk)] = mapped
    seeds = np.random.SeedSequence(seed_seq.entropy, spawn_key=seed_seq.spawn_key).spawn(R)
    n_clusters = int(np.unique(history.cluster).size)
    est = np.full(R, np.nan)
    own = np.full(R, np.nan)
    exact = np.zeros(R, dtype=bool)
    rows_perm: list[np.ndarray] = []
    rows_slope: list[np.ndarray] = []
    done = done0
    for r in range(R):  # one random stream per placebo pilot (reproducible across paths)
        s = int(starts[r])
        mapped = maps[(s, int(k[r]))]
        ft = np.where(A[r], s, NEVER).astype(np.int64)
        rng = _redraw_stream(entry, options, n_clusters, seeds[r])
        drawn = reassign(history.with_first_treated(ft), reps, rng)
        exact[r] = drawn.exact
        d = (np.arange(s + post)[None, :] >= np.where(A[r], s, s + post)[:, None]).astype(float)
        both = np.stack([Y[:, : s + post], d])
        blocks = mapped.blocks(np.vstack([ft[None, :], drawn.first_treated()]))
        if drawn.level != "unit" and not mapped.keeps_sizes(blocks, ft):
            return None
        vals = mapped.estimates(both, blocks)
        est[r], own[r] = vals[0]
        rows_perm.append(vals[1:, 0])
        rows_slope.append(vals[1:, 1])
        done += 1
        if progress is not None and (r % max(R // 50, 1) == 0 or r == R - 1):
            progress(done, total)
    width = max(v.size for v in rows_perm)
    perm = np.full((R, width), np.nan)
    slope = np.full((R, width), np.nan)
    for r in range(R):  # rows of different lengths when all assignments are enumerated
        perm[r, : rows_perm[r].size] = rows_perm[r]
        slope[r, : rows_slope[r].size] = rows_slope[r]
    return _Permuted(est, own, perm, slope, exact, np.isfinite(est))


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


@dataclass(frozen=True)
class SimulationRun:
    """One run of placebo pilots: what is simulated and how (shared by every runner).

    Attributes
    ----------
    history
        The history (no unit treated), complete for ``outcome``.
    outcome, estimator, options
        What the pilot estimates, with which estimator, and its options (a concrete inference).
    A, starts, post
        The placebo pilots (treated units, start periods) and their post length.
    effects
        Effects injected (in the outcome's units, signed).
    seed_seq
        Parent of the placebo pilots' random streams (one each; the same for any ``n_jobs``).
    n_jobs
        Worker processes for the generic paths.
    progress, done0, total
        ``progress(done, total)`` as placebo pilots finish, counting from ``done0`` of ``total``
        (``None``: the run's own placebo pilots).
    force_path
        Use this computational path (tests compare the paths).
    time_budget
        Seconds the refitting path may take (see :func:`simulate_rejections`).
    first_treated, allocation, codes
        Placebo pilots whose units start at different periods (a stepped roll-out): the
        ``(R, N)`` first treated period of every unit (``NEVER`` for none), with the allocation
        design and the ``(R, n)`` codes each placebo drew, carried by its panel so that
        randomisation inference re-draws it as the scheme would. ``None``: one common start
        per placebo pilot (``starts``).
    """

    history: Panel
    outcome: str
    estimator: str
    options: EstimatorOptions
    A: np.ndarray
    starts: np.ndarray
    post: int
    effects: np.ndarray
    seed_seq: np.random.SeedSequence
    n_jobs: int = 1
    progress: ProgressCallback | None = None
    force_path: SimulationPath | None = None
    done0: int = 0
    total: int | None = None
    time_budget: float | None = None
    first_treated: np.ndarray | None = None
    allocation: Allocation | None = None
    codes: np.ndarray | None = None

    @property
    def n_total(self) -> int:
        """What the progress bar counts to."""
        return self.A.shape[0] if self.total is None else self.total

    def rows(self, a: int, b: int) -> SimulationRun:
        """The placebo pilots ``a:b`` of this run."""
        return dataclasses.replace(
            self,
            A=self.A[a:b],
            starts=self.starts[a:b],
            first_treated=None if self.first_treated is None else self.first_treated[a:b],
            codes=None if self.codes is None else self.codes[a:b],
        )

    def placebo(self, r: int) -> Panel:
        """The history as placebo pilot ``r`` sees it."""
        if self.first_treated is None:
            return placebo_panel(self.history, self.A[r], int(self.starts[r]), self.post)
        pan = self.history.truncate_periods(int(self.starts[r]) + self.post - 1)
        pan = pan.with_first_treated(self.first_treated[r])
        if self.allocation is not None and self.codes is not None:
            pan = dataclasses.replace(pan, allocation=self.allocation.with_codes(self.codes[r]))
        return pan


def _fit_chunk(
    run: SimulationRun, seeds: list[np.random.SeedSequence], mode: SimulationPath
) -> tuple[np.ndarray, int]:
    """Fit a chunk of placebo pilots; rows = draws, columns = (estimate, se, df) or rejections.

    ``mode``: ``shift`` fits once and returns (estimate, se, df); ``wild`` fits once and returns
    wild-bootstrap decisions at every effect; ``full`` refits every injected outcome through the
    same :func:`apply_inference` the engine uses.
    """
    outcome, options, A, effects = run.outcome, run.options, run.A, run.effects
    entry = get_estimator(run.estimator)
    ne = effects.size
    out = np.full((A.shape[0], 3 if mode == "shift" else ne), np.nan)
    failed = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotlabWarning)
        for r in range(A.shape[0]):  # one regression per placebo pilot: the generic path
            pan = run.placebo(r).complete(outcome, tuple(options.covariates))
            try:
                if mode == "shift":
                    res = entry.fit(pan, outcome, options, np.random.default_rng(seeds[r]))
                    df = float(res.linear.fit.df_resid) if res.linear is not None else math.inf
                    out[r] = (res.estimate, res.std_error, df)
                    continue
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
    run: SimulationRun, mode: SimulationPath, seeds: list[np.random.SeedSequence] | None = None
) -> _Draws:
    R = run.A.shape[0]
    if seeds is None:
        seeds = placebo_seeds(run.seed_seq, R)
    # enough chunks for the progress bar to move steadily (about 4% each)
    n_chunks = min(R, max(worker_count(run.n_jobs) * 4, 25))
    bounds = np.linspace(0, R, n_chunks + 1).astype(int)
    parts: dict[int, np.ndarray] = {}
    failed = 0
    done = run.done0
    # workers need only the placebo pilots and the model, not the progress bar
    bare = dataclasses.replace(run, progress=None)
    args = [(bare.rows(a, b), seeds[a:b], mode) for a, b in itertools.pairwise(bounds)]

    def finished(i: int, result: tuple[np.ndarray, int]) -> None:
        nonlocal failed, done
        parts[i], f = result
        failed += f
        done += args[i][0].A.shape[0]
        if run.progress is not None:
            run.progress(done, run.n_total)

    # the chunks carry their own draws and seed streams: any worker, any order, same result
    map_chunks(_fit_chunk, args, run.n_jobs, on_done=finished)
    out = np.concatenate([parts[i] for i in range(len(args))], axis=0)
    if mode == "shift":
        return _Draws(out[:, 0], out[:, 1], out[:, 2], None, failed, mode)
    return _Draws(None, None, None, out, failed, mode)


def _run_capped(run: SimulationRun, time_budget: float, capped: list[CappedRun]) -> _Draws:
    """The refitting path within a time budget: time one placebo pilot, then run what fits.

    The placebo pilots kept are the first ones drawn, with their own random streams, so a
    capped run gives the same decisions for them as an uncapped one.
    """
    R = run.A.shape[0]
    seeds = placebo_seeds(run.seed_seq, R)
    t0 = time.perf_counter()
    first, f0 = _fit_chunk(dataclasses.replace(run.rows(0, 1), progress=None), seeds[:1], "full")
    each = max(time.perf_counter() - t0, 1e-6)
    if run.progress is not None:
        run.progress(run.done0 + 1, run.n_total)
    workers = worker_count(min(run.n_jobs, available_cpus()))
    n_use = int(min(R, max(MIN_SIMULATIONS, (time_budget - each) * workers / each + 1)))
    if n_use < R:
        capped.append(CappedRun(R, n_use, each))
    rest_run = dataclasses.replace(run.rows(1, n_use), done0=run.done0 + 1, total=run.n_total)
    rest = _run_generic(rest_run, "full", seeds[1:n_use])
    if run.progress is not None and n_use < R:
        run.progress(run.done0 + R, run.n_total)  # this design's share of the bar is done
    assert rest.reject is not None
    return _Draws(None, None, None, np.concatenate([first, rest.reject]), f0 + rest.failed, "full")


@dataclass(frozen=True)
class CappedRun:
    """Placebo pilots actually run when refitting every one would exceed the time budget."""

    requested: int
    used: int
    seconds_each: float


@dataclass(frozen=True)
class PlaceboRejections:
    """What the placebo pilots of one design decided, and how they were computed."""

    rejections: np.ndarray  # draws x effects; NaN where a placebo pilot could not be estimated
    failed: int  # placebo pilots that could not be estimated
    path: SimulationPath
    estimates: np.ndarray | None  # (estimate, se, df) rows at zero effect: vectorised, shift
    reject_at: RejectAt | None  # more effect sizes at no cost (None on the refitting paths)
    capped: CappedRun | None = None  # fewer placebo pilots than requested, to fit the budget


def simulate_rejections(
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
    force_path: SimulationPath | None = None,
    done0: int = 0,
    total: int | None = None,
    time_budget: float | None = None,
) -> PlaceboRejections:
    """The test decisions of the placebo pilots ``A`` (treated units) / ``starts`` of a history.

    The arguments are those of :class:`SimulationRun` (see there); :func:`run_simulation` takes
    one such object. ``time_budget``: seconds the refitting path may take: it times its first
    placebo pilot and runs only as many as fit (at least :data:`MIN_SIMULATIONS`), saying so in
    ``capped``.
    """
    return run_simulation(
        SimulationRun(
            history=history,
            outcome=outcome,
            estimator=estimator,
            options=options,
            A=A,
            starts=starts,
            post=post,
            effects=effects,
            seed_seq=seed_seq,
            n_jobs=n_jobs,
            progress=progress,
            force_path=force_path,
            done0=done0,
            total=total,
            time_budget=time_budget,
        )
    )


def run_simulation(run: SimulationRun) -> PlaceboRejections:
    """The test decisions of the placebo pilots of ``run`` (see :func:`simulate_rejections`)."""
    history, outcome, estimator, options = run.history, run.outcome, run.estimator, run.options
    capped: list[CappedRun] = []
    total = run.n_total
    path: SimulationPath
    if run.force_path is not None:
        path = run.force_path
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
            history, outcome, estimator, options, run.A, run.starts, run.post, run.seed_seq,
            run.progress, run.done0, total,
        )  # fmt: skip
        if perm is not None:
            alpha = options.alpha

            def reject_at(e: np.ndarray) -> np.ndarray:
                return perm.reject(np.asarray(e, dtype=float), alpha)

            return PlaceboRejections(
                reject_at(run.effects), int((~perm.ok).sum()), path, None, reject_at
            )
        path = "full"  # the estimator's weights are not of the common-start form: refit
    if path == "vectorised":
        draws = _vectorised(
            history, outcome, run.A, run.starts, run.post, options.inference, run.progress,
            run.done0, total,
        )  # fmt: skip
    elif path == "full" and run.time_budget is not None and run.A.shape[0] > MIN_SIMULATIONS:
        draws = _run_capped(run, run.time_budget, capped)
    else:
        draws = _run_generic(run, path)
    cap = capped[0] if capped else None
    if draws.reject is not None:
        return PlaceboRejections(draws.reject, draws.failed, path, None, None, cap)
    assert draws.estimate is not None and draws.std_error is not None and draws.df is not None
    ests = np.column_stack([draws.estimate, draws.std_error, draws.df])
    bad = ~(np.isfinite(draws.estimate) & np.isfinite(draws.std_error) & (draws.std_error > 0))
    alpha = options.alpha

    def shift_at(e: np.ndarray) -> np.ndarray:
        rej = shift_reject(ests, np.asarray(e, dtype=float), alpha)
        rej[bad] = np.nan
        return rej

    return PlaceboRejections(shift_at(run.effects), draws.failed, path, ests, shift_at, cap)


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
    force_path: SimulationPath | None = None,
    done0: int = 0,
    total: int | None = None,
) -> tuple[np.ndarray, int, SimulationPath, np.ndarray | None]:
    """Rejections (``draws x effects``, NaN where a fit failed) of the placebo pilots.

    Returns the rejection matrix, the number of failed fits, the path used and, on the
    vectorised and shift paths, the (estimate, se, df) matrix of the draws at zero effect
    (:func:`run_simulation` of the same :class:`SimulationRun` without a time budget, as a
    tuple).
    """
    sim = simulate_rejections(
        history, outcome, estimator, options, A, starts, post, effects, seed_seq=seed_seq,
        n_jobs=n_jobs, progress=progress, force_path=force_path, done0=done0, total=total,
    )  # fmt: skip
    return sim.rejections, sim.failed, sim.path, sim.estimates


def shift_reject(ests: np.ndarray, effects: np.ndarray, alpha: float) -> np.ndarray:
    """Rejections (draws x effects) from (estimate, se, df) rows when estimates shift by effect."""
    q = stats.t.ppf(1 - alpha / 2, ests[:, 2])
    reject: np.ndarray = np.abs(ests[:, :1] + effects[None, :]) > (q * ests[:, 1])[:, None]
    return reject.astype(float)


def available_cpus() -> int:
    """CPUs this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
