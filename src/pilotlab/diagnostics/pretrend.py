"""Parallel-trends pre-tests with references that hold their size in small samples.

The pre-test is a stage applied after the fit, as inference is (:func:`apply_pretrend`; the
engine calls it right after each estimator's fit): an estimator with event times returns its
pre-period estimates (:class:`~pilotlab.results.PrePeriodEstimates`) and this module tests them,
re-fitting the estimator for the randomisation test. Estimators never import this module.

Two tests of the joint null that every pre-period (lead) effect is zero:

* :func:`wald_pretest` — the Wald statistic ``W = a' V^-1 a`` of ``q`` lead estimates with a
  cluster-robust covariance ``V`` from ``G`` clusters, referred to the Hotelling T² F
  approximation ``F = W (G - q) / (q (G - 1)) ~ F(q, G - q)`` instead of ``chi2(q)``. ``V`` is
  itself estimated from ``G`` cluster contributions, so with many leads relative to clusters
  ``W`` has much heavier tails than ``chi2(q)`` (it is exactly Hotelling's T² for i.i.d. normal
  cluster means with the CR1 factor); the chi-squared p-value is kept in ``p_value_chi2``.
  When few clusters carry the covariance (few treated clusters, or a lead that rests on one
  small cohort), ``G`` is replaced by the effective number of clusters
  (:func:`effective_clusters`); when that is not larger than ``q`` the test declines (None) and
  the caller falls back (randomisation for the event study, a two-restriction level-and-slope
  test of the event-time averages for Callaway & Sant'Anna).
* :func:`randomization_pretest` — for designs with few treated clusters, where the covariance
  of the leads is dominated by the handful of treated clusters and no analytic reference is
  reliable: treatment is re-assigned across units (or whole clusters, when it was assigned by
  cluster) by :mod:`pilotlab.data.assignment`, as randomisation inference does — with a common
  start, which units are treated; with a staggered roll-out, the adoption dates are permuted
  across units — and the p-value is the share of re-assigned statistics at least as large as
  the observed one, ``(1 + #{T_b >= T}) / (B + 1)`` (exact share when every assignment is
  enumerated).

Randomisation statistic, common start on a balanced panel (vectorised). With one start period
the lead for event time ``k`` is the treated-minus-comparison difference of (weighted) unit means
of ``z_ik``, the unit's outcome in the lead's period(s) minus its outcome in the reference
period (a binned end point averages its periods). With ``Z`` the units x leads matrix of those
contrasts and ``A`` the assignments x units matrix with entries ``w_i / W1`` for treated and
``-w_i / W0`` for comparison units, all re-assigned leads are ``L = A Z`` — one matrix
product; with few treated (or few comparison) units or clusters, a gather of their block sums
from the same draws (:func:`sparse_randomization_statistics`). The statistic is the Mahalanobis norm ``T_b = L_b' S^+ L_b`` where ``S = L'L / K`` is the
second-moment matrix of the leads over all ``K`` assignments used (the observed one included):
the leads' covariance under re-randomisation, the same for every assignment, so the statistic
is studentised (leads in noisy periods count less, correlated leads are not double counted)
without a regression per draw, and the test stays exact because ``S`` is a symmetric function
of the assignment set. (Against a linear differential trend it was more powerful than the sum of
squared standardised leads or the largest standardised lead in a Monte Carlo with 6 of 150
units treated: 79% against 36% and 70%.) Other designs (staggered, unbalanced, covariates,
time-varying weights) re-fit the estimator for each assignment and use its cluster-robust Wald
statistic of the leads, with the event window fixed at the observed one. The randomisation
uses a child of the caller's generator, so the caller's stream (e.g. the wild bootstrap of the
effect that follows) is the same with or without the pre-test.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from pilotlab.data.assignment import (
    MAX_ENUMERATION,
    CodedRows,
    assignment_blocks,
    count_assignments,
    label_positions,
    permutation_keys,
    reassign,
)
from pilotlab.data.panel import NEVER, TIME, UNIT, Panel
from pilotlab.diagnostics.pretrend_power import with_power
from pilotlab.distributions import chi2_sf, f_sf
from pilotlab.estimators.base import EstimatorEntry, EstimatorOptions
from pilotlab.exceptions import Notice, PilotlabError, warn
from pilotlab.results import EffectResult, PrePeriodEstimates, PreTrendTest

__all__ = [
    "RANDOMIZATION_INFERENCE",
    "apply_pretrend",
    "effective_clusters",
    "group_time_pretest",
    "lead_contrasts",
    "randomization_pretest",
    "randomization_statistics",
    "resolve_pretrend",
    "sparse_randomization_statistics",
    "wald_pretest",
]

#: Inference methods chosen for few treated clusters (``select.choose_inference``); with these
#: the pre-test is by randomisation too.
RANDOMIZATION_INFERENCE = ("wild_bootstrap", "permutation")

#: Fewer replications than this cannot give a p-value below 0.05.
MIN_REPLICATIONS = 19

FitFunction = Callable[[Panel, str, EstimatorOptions, np.random.Generator], EffectResult]


def resolve_pretrend(options: EstimatorOptions) -> str:
    """The pre-test an estimator should run: ``wald``, ``randomization`` or ``none``.

    ``options.pretrend == "auto"`` means randomisation when the inference is one chosen for few
    treated clusters (wild bootstrap or permutation), else the Wald test.
    """
    mode = options.pretrend
    if mode == "auto":
        return "randomization" if options.inference in RANDOMIZATION_INFERENCE else "wald"
    return mode


def _singular(V: np.ndarray) -> bool:
    eig = np.linalg.eigvalsh(V)
    return bool(eig.size == 0 or eig.max() <= 0 or eig.min() <= 1e-10 * eig.max())


def wald_pretest(
    estimates: np.ndarray | Sequence[float],
    cov: np.ndarray,
    n_clusters: int,
    name: str,
    *,
    scores: np.ndarray | None = None,
) -> PreTrendTest | None:
    """Wald test that ``estimates`` are all zero, with the Hotelling T² F reference.

    Parameters
    ----------
    estimates : array_like
        ``(q,)`` lead (pre-period) estimates.
    cov : numpy.ndarray
        ``(q, q)`` their estimated (cluster-robust) covariance.
    n_clusters : int
        ``G``, the number of clusters whose contributions make up ``cov``.
    name : str
        Name of the test shown in the report (``PreTrendTest.test``).
    scores : numpy.ndarray, optional
        ``(G, q)`` cluster contributions ``psi_c`` with ``cov`` proportional to
        ``sum_c psi_c psi_c'``. When given, ``G`` in the reference is replaced by the effective
        number of clusters :func:`effective_clusters` if that is smaller.

    Returns
    -------
    PreTrendTest or None
        ``statistic`` = ``W``; ``p_value`` from ``F = W (G - q) / (q (G - 1))`` on
        ``(q, G - q)`` degrees of freedom (``reference="F"``, ``df_denom = G - q``);
        ``p_value_chi2`` from ``chi2(q)``. ``None`` when ``G <= q``, the effective number of
        clusters is below ``2 q`` or ``cov`` is singular (the caller falls back to another
        test).
    """
    a = np.asarray(estimates, dtype=np.float64).ravel()
    V = np.asarray(cov, dtype=np.float64)
    q, g = a.size, int(n_clusters)
    if q == 0 or g <= q or V.shape != (q, q) or not np.all(np.isfinite(V)):
        return None
    if not np.all(np.isfinite(a)) or _singular(V):
        return None
    W = float(a @ np.linalg.solve(V, a))
    geff = float(g)
    if scores is not None:
        # below 2q effective clusters the F approximation is unreliable (and F(q, G* - q) with
        # G* - q < q is nearly powerless): decline, so the caller can use a better test
        geff = min(geff, effective_clusters(scores))
        if not geff >= 2 * q:
            return None
    F = W * (geff - q) / (q * (geff - 1))
    return PreTrendTest(
        test=name,
        statistic=W,
        df=q,
        p_value=float(f_sf(F, q, geff - q)),
        reference="F",
        p_value_chi2=float(chi2_sf(W, q)),
        df_denom=geff - q,
    )


def effective_clusters(scores: np.ndarray) -> float:
    """Effective number of clusters behind a cluster-robust covariance of ``q`` estimates.

    With ``h_c = psi_c' (sum_d psi_d psi_d')^+ psi_c`` (the clusters' leverages, summing to
    ``q``), ``G_lev = q (q + 2) / sum_c h_c^2``. For ``G`` clusters with equal Gaussian
    contributions ``E sum h_c^2 ~ q (q + 2) / G``, so ``G_lev ~ G``; when ``k`` clusters carry
    the covariance (few treated clusters), ``G_lev ~ k (q + 2) / q``. Because one badly
    estimated direction is enough to fatten the tails of ``W``, the result is the smaller of
    ``G_lev`` and the same measure for each estimate on its own (``q = 1``:
    ``3 (sum_c psi_cj^2)^2 / sum_c psi_cj^4``, Satterthwaite's degrees of freedom corrected for
    Gaussian kurtosis), e.g. a lead estimated from one small cohort only. The F reference then
    has the degrees of freedom the data really have for estimating the covariance.

    Parameters
    ----------
    scores : numpy.ndarray
        ``(G, q)`` cluster contributions.

    Returns
    -------
    float
    """
    P = np.asarray(scores, dtype=np.float64)
    q = P.shape[1]
    M = P.T @ P
    h = np.einsum("cj,cj->c", P @ np.linalg.pinv(M, rcond=1e-10, hermitian=True), P)
    ss = float(h @ h)
    if not ss > 0:
        return 0.0
    p2 = np.einsum("cj,cj->j", P, P)
    p4 = np.einsum("cj,cj->j", P**2, P**2)
    ok = p4 > 0
    each = 3 * p2[ok] ** 2 / p4[ok]
    return float(min(q * (q + 2) / ss, each.min() if each.size else np.inf))


# ----------------------------------------------------------------------------- randomisation
def lead_contrasts(
    panel: Panel, outcome: str, lead_times: Sequence[int], ref: int, pre: int
) -> np.ndarray:
    """Units x leads matrix ``Z`` of outcome contrasts (common start, balanced panel).

    ``Z[i, k]`` is unit ``i``'s mean outcome over the periods whose event time (clipped at
    ``-pre``) is ``lead_times[k]`` minus its outcome in the reference period ``ref``.
    """
    g = int(panel.cohorts[0])
    y = np.full((panel.n_units, panel.n_periods), np.nan)
    y[panel.frame[UNIT].to_numpy(), panel.frame[TIME].to_numpy()] = panel.y(outcome)
    e = np.maximum(np.arange(panel.n_periods) - g, -pre)
    M = np.zeros((panel.n_periods, len(lead_times)))
    for k, lt in enumerate(lead_times):  # a handful of leads
        sel = e == lt
        M[sel, k] = 1.0 / sel.sum()
    M[g + ref, :] -= 1.0
    return y @ M


def randomization_statistics(Z: np.ndarray, treated: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Studentised lead statistics ``T_b`` for every assignment (rows of ``treated``).

    Parameters
    ----------
    Z : numpy.ndarray
        ``(N, q)`` unit lead contrasts (:func:`lead_contrasts`).
    treated : numpy.ndarray
        ``(K, N)`` boolean assignments; every row needs treated and comparison units.
    w : numpy.ndarray
        ``(N,)`` unit weights.

    Returns
    -------
    numpy.ndarray
        ``(K,)`` ``T_b = L_b' S^+ L_b`` with ``L = A Z`` and ``S = L'L / K``.
    """
    wt = np.where(treated, w, 0.0)
    wc = np.where(treated, 0.0, w)
    A = wt / wt.sum(axis=1, keepdims=True) - wc / wc.sum(axis=1, keepdims=True)
    L = A @ Z  # (K, q): all re-assigned leads in one product
    S = (L.T @ L) / L.shape[0]
    out: np.ndarray = np.einsum("bk,bk->b", L @ np.linalg.pinv(S, rcond=1e-10, hermitian=True), L)
    return out


def _draws(
    panel: Panel, replications: int, rng: np.random.Generator
) -> tuple[np.ndarray, CodedRows, bool, str]:
    """Observed and re-assigned first-treated vectors per unit: ``(obs, draws, exact, level)``,
    the re-assigned ones as :class:`~pilotlab.data.assignment.CodedRows`."""
    drawn = reassign(panel, replications, rng)  # the randomisation inference's assignments
    obs = np.asarray(panel.first_treated, dtype=np.int64)
    return obs, drawn.first_treated_rows(), drawn.exact, drawn.level


#: The sparse path counts, for each of the ``m`` treated (or, when fewer, comparison) blocks, the
#: keys below its own: ``K x N x m`` comparisons against the ``K N log N`` of sorting every row.
MAX_SPARSE_BLOCKS = 32


def _studentised(L: np.ndarray) -> np.ndarray:
    """``T_b = L_b' S^+ L_b`` with ``S = L'L / K`` (as :func:`randomization_statistics`)."""
    S = (L.T @ L) / L.shape[0]
    out: np.ndarray = np.einsum("bk,bk->b", L @ np.linalg.pinv(S, rcond=1e-10, hermitian=True), L)
    return out


def sparse_randomization_statistics(
    panel: Panel, Z: np.ndarray, w: np.ndarray, replications: int, rng: np.random.Generator
) -> tuple[float, np.ndarray, str] | None:
    """Observed and re-assigned lead statistics of a common start without sorting every draw.

    The same random numbers and assignments as :func:`_draws` followed by
    :func:`randomization_statistics` (statistics equal to rounding): for a common start a
    re-assignment is only *which* blocks (units or clusters) are treated, and block ``j`` is
    treated in draw ``k`` exactly when the rank of its key in row ``k`` is the position of a
    treated block, so the ``m`` treated blocks of every draw come from counting the keys below
    the treated (or, when fewer, comparison) blocks' keys
    (:func:`~pilotlab.data.assignment.label_positions`). With block
    sums ``B = sum_{i in j} w_i Z_i`` and ``b_j = sum_{i in j} w_i``, the leads of a draw with
    treated blocks ``J`` are ``L = B_J / b_J - (B_all - B_J) / (b_all - b_J)``: a gather of
    ``m`` rows per draw instead of a dense ``(K, N)`` product.

    Returns
    -------
    tuple or None
        ``(observed statistic, (K,) re-assigned statistics, level)``; ``None`` (nothing drawn
        from ``rng``) when every assignment would be enumerated, the start is not common or
        both the treated and the comparison blocks number more than :data:`MAX_SPARSE_BLOCKS`.
    """
    block_of_unit, block_ft, level = assignment_blocks(panel)
    values, counts = np.unique(block_ft, return_counts=True)
    if values.size != 2 or NEVER not in values:
        return None
    if count_assignments(counts) <= min(replications, MAX_ENUMERATION):
        return None  # enumerated: the dense path does it
    treated = block_ft != NEVER
    nb = block_ft.size
    m = int(treated.sum())
    if min(m, nb - m) > MAX_SPARSE_BLOCKS:
        return None
    keys = permutation_keys(replications, nb, rng)  # the keys permute_labels would draw
    # positions given the treated label are the ranks of the treated blocks' keys; when the
    # comparison blocks are fewer, positions are treated unless they are one of their ranks
    small = np.flatnonzero(treated if m <= nb - m else ~treated)
    ranks = label_positions(keys, small)
    q = Z.shape[1]
    B = np.zeros((nb, q))
    for k in range(q):  # a handful of leads
        B[:, k] = np.bincount(block_of_unit, weights=w * Z[:, k], minlength=nb)
    b = np.bincount(block_of_unit, weights=w, minlength=nb)
    if m > nb - m:  # the ranks are the comparison blocks: treated sums by difference
        B_small, b_small = B[ranks].sum(axis=1), b[ranks].sum(axis=1)
        B1, b1 = B.sum(axis=0) - B_small, b.sum() - b_small
        B0, b0 = B_small, b_small
        ob0, obb0 = B[small].sum(axis=0), b[small].sum()
        ob1, obb1 = B.sum(axis=0) - ob0, b.sum() - obb0
    else:
        B1, b1 = B[ranks].sum(axis=1), b[ranks].sum(axis=1)
        B0, b0 = B.sum(axis=0) - B1, b.sum() - b1
        ob1, obb1 = B[small].sum(axis=0), b[small].sum()
        ob0, obb0 = B.sum(axis=0) - ob1, b.sum() - obb1
    L = B1 / b1[:, None] - B0 / b0[:, None]
    L_obs = ob1 / obb1 - ob0 / obb0
    stats_all = _studentised(np.vstack([L_obs[None, :], L]))
    return float(stats_all[0]), stats_all[1:], level


def _p_value(stat_obs: float, stat_draws: np.ndarray, exact: bool) -> float:
    """Share of re-assignments at least as extreme; ``nan`` when none can be computed.

    Re-assignments whose statistic cannot be computed (a re-fit that fails) are left out of
    the reference distribution rather than counted as less extreme, which would make the
    p-value too small.
    """
    s = np.asarray(stat_draws, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0 or not math.isfinite(stat_obs):
        return math.nan
    hits = int(np.count_nonzero(s >= stat_obs - 1e-10 * (1.0 + abs(stat_obs))))
    return hits / s.size if exact else (1 + hits) / (s.size + 1)


def randomization_pretest(
    panel: Panel,
    outcome: str,
    options: EstimatorOptions,
    rng: np.random.Generator,
    *,
    lead_times: Sequence[int],
    ref: int,
    window: tuple[int, int],
    fit: FitFunction | None = None,
    statistic: Callable[[EffectResult], float] | None = None,
    mapped: Callable[[np.ndarray, CodedRows], tuple[float, np.ndarray] | None] | None = None,
) -> PreTrendTest | None:
    """Randomisation test that all leads are zero (re-assigning treatment across units).

    Parameters
    ----------
    panel : Panel
        The analysis panel with the actual assignment.
    outcome : str
        Outcome column.
    options : EstimatorOptions
        ``replications`` re-assignments are drawn (all of them when fewer exist); ``window``
        and ``covariates`` are used by the generic path.
    rng : numpy.random.Generator
        Source of the random re-assignments.
    lead_times : sequence of int
        Event times of the lead coefficients (before the reference period).
    ref : int
        Reference event time (``-1 - anticipation``).
    window : tuple of int
        ``(pre, post)`` event window of the estimator (event times ``<= -pre`` are binned);
        kept fixed for every re-assignment.
    fit : callable, optional
        The estimator's ``fit``, re-run per assignment (cluster-robust errors, no pre-test of
        its own) when the vectorised path does not apply.
    statistic : callable, optional
        The test statistic of a fitted result (e.g. its Wald statistic of the leads), for the
        re-run path. Without ``fit`` and ``statistic`` such designs return ``None``.
    mapped : callable, optional
        ``statistic`` of the re-fits without re-fitting, from the ``(N,)`` actual and the
        ``(K, N)`` re-assigned first treated periods (as ``CodedRows``): ``(observed, (K,)
        re-assigned)``; ``None`` from it (an assignment it cannot map) means the re-fits are run after all.

    Returns
    -------
    PreTrendTest or None
        ``reference="randomization"``; ``statistic`` is the observed studentised statistic;
        ``None`` when there are no leads, too few replications or no way to compute it.
    """
    q = len(lead_times)
    reps = int(options.replications)
    if q == 0 or reps < MIN_REPLICATIONS:
        return None
    if panel.n_treated_units == 0 or panel.n_treated_units == panel.n_units:
        return None
    # an independent child stream: the caller's rng continues exactly as without the pre-test
    # (so the wild bootstrap of the effect draws the same weights either way)
    rng = rng.spawn(1)[0]
    y = panel.y(outcome)
    w = panel.unit_weights()
    pre = window[0]
    fast = (
        w is not None
        and not panel.is_staggered
        and panel.is_balanced
        and not options.covariates
        and not bool(np.isnan(y).any())
    )
    sparse = None
    if fast and w is not None:
        Z = lead_contrasts(panel, outcome, lead_times, ref, pre)
        sparse = sparse_randomization_statistics(panel, Z, w, reps, rng)
    if sparse is not None:
        stat_obs, stats_draws, level = sparse
        p = _p_value(stat_obs, stats_draws, exact=False)
        n, exact = stats_draws.size, False
        how = "vectorised lead contrasts"
    elif fast and w is not None:
        obs, draws, exact, level = _draws(panel, reps, rng)
        n = draws.shape[0]
        ever = draws.ever_treated()
        if exact:
            stats_all = randomization_statistics(Z, ever, w)
            is_obs = np.all(ever == (obs != NEVER)[None, :], axis=1)
            stat_obs = float(stats_all[np.flatnonzero(is_obs)[0]])
            p = _p_value(stat_obs, stats_all, exact=True)
        else:
            treated = np.vstack([(obs != NEVER)[None, :], ever])
            stats_all = randomization_statistics(Z, treated, w)
            stat_obs = float(stats_all[0])
            p = _p_value(stat_obs, stats_all[1:], exact=False)
        how = "vectorised lead contrasts"
    else:
        if fit is None or statistic is None:
            return None
        obs, draws, exact, level = _draws(panel, reps, rng)
        n = draws.shape[0]
        at_once = None if mapped is None else mapped(obs, draws)
        if at_once is not None:  # the same statistics as the re-fits, without re-fitting
            stat_obs, stat_draws = at_once
            if not math.isfinite(stat_obs):
                return None
            p = _p_value(stat_obs, stat_draws, exact)
            n = int(np.count_nonzero(np.isfinite(stat_draws)))
            return _randomization_test(
                q,
                n,
                exact,
                level,
                "lead statistics of every assignment from cohort block sums, "
                "as re-estimating gives them",
                stat_obs,
                p,
            )
        opts = dataclasses.replace(
            options, inference="cluster", pretrend="none", window=(window[0], window[1])
        )

        def stat_of(p: Panel) -> float:
            try:
                return float(statistic(fit(p, outcome, opts, rng)))
            except PilotlabError:
                return math.nan

        stat_obs = stat_of(panel)
        if not math.isfinite(stat_obs):
            return None
        stat_draws = np.array(  # one re-estimation per assignment (staggered / unbalanced only)
            [stat_of(panel.with_first_treated(ft)) for ft in draws.labels()]
        )
        p = _p_value(stat_obs, stat_draws, exact)
        how = "re-estimated lead statistics"
        n = int(np.count_nonzero(np.isfinite(stat_draws)))  # the assignments the p-value uses
    return _randomization_test(q, n, exact, level, how, stat_obs, p)


def _randomization_test(
    q: int, n: int, exact: bool, level: str, how: str, stat_obs: float, p: float
) -> PreTrendTest | None:
    """The randomisation test's result (``None`` when no re-assignment could be evaluated)."""
    if not math.isfinite(p):
        return None  # no re-assignment could be evaluated: the test is not available
    what = f"all {n:,} assignments" if exact else f"{n:,} random re-assignments"
    return PreTrendTest(
        test=f"randomisation test of {q} leads over {what} across {level}s ({how})",
        statistic=stat_obs,
        df=q,
        p_value=float(p),
        reference="randomization",
    )


# ----------------------------------------------------------------------------- after the fit
def apply_pretrend(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    result: EffectResult,
    rng: np.random.Generator,
    power: bool = True,
) -> EffectResult:
    """``result`` with its parallel-trends pre-test (``pre_trend``) set, applied after the fit.

    The test reads the pre-period estimates the estimator returned (``result.pre_period``) and,
    for the randomisation test, re-fits ``entry`` under re-assignments of treatment. Results
    without pre-period estimates, or with a pre-test of their own, are returned unchanged, as
    they are when ``options.pretrend`` is ``none``.

    Parameters
    ----------
    panel, outcome
        The data ``result`` was fitted on.
    entry : EstimatorEntry
        The estimator that fitted ``result`` (re-fitted by the randomisation test).
    options : EstimatorOptions
        The analysis options: ``pretrend`` (:func:`resolve_pretrend`), ``replications``,
        ``covariates`` and ``window``.
    result : EffectResult
        The estimator's result.
    rng : numpy.random.Generator
        The generator of the fit; the randomisation draws come from a child of it, so what the
        caller draws from ``rng`` afterwards is the same with or without the pre-test.
    power : bool
        Also work out what the test could detect (:func:`with_power`, shown beside it in the
        report); off where only the test's decision is used, as in a Monte Carlo of its size.

    Returns
    -------
    EffectResult
        With ``pre_trend`` set, and the warnings of the test (if any) appended.
    """
    pre = result.pre_period
    mode = resolve_pretrend(options)
    if pre is None or mode == "none" or result.pre_trend is not None:
        return result
    notes: list[Notice] = []
    if pre.kind == "group_time":
        test = _group_time_pretest(panel, outcome, entry, options, rng, pre, mode, notes)
    else:
        test = _lead_pretest(panel, outcome, entry, options, rng, pre, mode)
    if test is None and not notes:
        return result
    if test is not None and power:  # what the test could detect (Roth 2022), shown beside it
        test = with_power(test, pre, result)
    return dataclasses.replace(result, pre_trend=test, warnings=(*result.warnings, *notes))


def _chi2_wald(estimates: np.ndarray, cov: np.ndarray) -> float:
    """``a' V^+ a``: the large-sample Wald statistic (also the re-fits' randomisation statistic)."""
    return float(estimates @ np.linalg.pinv(cov) @ estimates)


def _lead_wald(res: EffectResult) -> float:
    """Randomisation statistic of a re-fit: the cluster-robust Wald statistic of its leads."""
    pre = res.pre_period
    if pre is None or not pre.event_times:
        return math.nan
    return _chi2_wald(pre.estimates, pre.cov)


def _lead_pretest(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    pre: PrePeriodEstimates,
    mode: str,
) -> PreTrendTest | None:
    """Joint test of regression leads: randomisation with few treated clusters, else Wald with
    the F reference; chi-squared when neither can be computed."""
    if not pre.event_times:
        return None
    test = None
    if mode == "wald":
        test = wald_pretest(pre.estimates, pre.cov, pre.n_clusters, "wald", scores=pre.scores)
    if test is None:  # asked for, or too few (effective) clusters for the F reference
        window = pre.window or options.window or (-min(pre.event_times), 0)
        test = randomization_pretest(
            panel,
            outcome,
            options,
            rng,
            lead_times=list(pre.event_times),
            ref=pre.reference,
            window=window,
            fit=entry.fit,
            statistic=_lead_wald,
            mapped=_mapped_wald(panel, outcome, entry, options, pre, window),
        )
    if test is None:  # no randomisation possible (e.g. replications < 19): chi-squared
        q = len(pre.event_times)
        stat = _chi2_wald(pre.estimates, pre.cov)
        pval = float(chi2_sf(stat, q))
        test = PreTrendTest("wald", stat, q, pval, reference="chi2", p_value_chi2=pval)
    return test


def _mapped_wald(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    pre: PrePeriodEstimates,
    window: tuple[int, int],
) -> Callable[[np.ndarray, CodedRows], tuple[float, np.ndarray] | None] | None:
    """:func:`_lead_wald` of the re-fits of every assignment at once, from the leads and
    covariances of the estimator's :class:`~pilotlab.estimators.block_map.PrePeriodMap`
    (``None`` without one). The map gets the options the re-fits run with; it must have the
    fit's leads and reproduce its statistic, else the re-fits are run."""
    if entry.pre_period_map is None:
        return None
    opts = dataclasses.replace(
        options, inference="cluster", pretrend="none", window=(window[0], window[1])
    )
    mapped = entry.pre_period_map(panel, outcome, opts)
    if mapped is None or mapped.leads is None or mapped.event_times != tuple(pre.event_times):
        return None
    want = _lead_wald_of(pre.estimates[None], pre.cov[None])[0]

    def statistics(observed: np.ndarray, draws: CodedRows) -> tuple[float, np.ndarray] | None:
        got_obs = mapped.estimates(observed[None, :])
        if got_obs is None:
            return None
        stat_obs = float(_lead_wald_of(*got_obs)[0])
        if not abs(stat_obs - want) <= 1e-8 * (1.0 + abs(want)):
            return None  # not the fit's own statistic: re-fit instead
        got = mapped.estimates(draws)
        return None if got is None else (stat_obs, _lead_wald_of(*got))

    return statistics


def _lead_wald_of(estimates: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """:func:`_chi2_wald` of each row: ``(B, q)`` estimates with ``(B, q, q)`` covariances."""
    out: np.ndarray = np.einsum("bi,bij,bj->b", estimates, np.linalg.pinv(cov), estimates)
    return out


def _group_time_pretest(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    pre: PrePeriodEstimates,
    mode: str,
    notes: list[Notice],
) -> PreTrendTest | None:
    """Pre-test of a group-time fit: the analytic test, or by randomisation with inference for
    few treated clusters (falling back to the analytic one)."""
    analytic = group_time_pretest(pre, notes)
    if mode == "wald" or not pre.event_times:
        return analytic
    e = np.asarray(pre.event_times, dtype=np.int64)
    n_periods = panel.n_periods

    def refit(p: Panel, col: str, opts: EstimatorOptions, r: np.random.Generator) -> EffectResult:
        # the re-fits need no bootstrap band and keep the caller's window as given
        w = opts.window if opts.window and opts.window[1] < n_periods else None
        return entry.fit(p, col, dataclasses.replace(opts, replications=0, window=w), r)

    window = (int(-e.min()), options.window[1] if options.window else n_periods)
    test = randomization_pretest(
        panel,
        outcome,
        options,
        rng,
        lead_times=e.tolist(),
        ref=pre.reference,
        window=window,
        fit=refit,
        statistic=_lead_drift,
        mapped=_mapped_drift(panel, outcome, entry, options, pre, window),
    )
    return test if test is not None else analytic


def _mapped_drift(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    pre: PrePeriodEstimates,
    window: tuple[int, int],
) -> Callable[[np.ndarray, CodedRows], tuple[float, np.ndarray] | None] | None:
    """:func:`_lead_drift` of the re-fits of every assignment at once, from the estimator's
    :class:`~pilotlab.estimators.block_map.PrePeriodMap` (``None`` without one).

    The map gets the options the re-fits run with; it must have the fit's pre-period event
    times and reproduce its statistic, else the re-fits are run. An assignment under which a
    lead's variance vanishes (the re-fit would drop that lead) also sends the test back to the
    re-fits.
    """
    if entry.pre_period_map is None:
        return None
    opts = dataclasses.replace(
        options, inference="cluster", pretrend="none", replications=0, window=window
    )
    if window[1] >= panel.n_periods:  # as the re-fits (:func:`_group_time_pretest`)
        opts = dataclasses.replace(opts, window=None)
    mapped = entry.pre_period_map(panel, outcome, opts)
    if mapped is None or tuple(mapped.event_times) != tuple(pre.event_times):
        return None
    c = np.asarray(pre.event_times, dtype=float)
    coef = np.vstack([np.ones(c.size), c - c.mean()])
    want = _drift(pre)

    def drift(est: np.ndarray, var: np.ndarray) -> np.ndarray:
        slope = np.divide(
            est[:, 1] ** 2, var[:, 1], out=np.zeros(est.shape[0]), where=var[:, 1] > 0
        )
        out: np.ndarray = est[:, 0] ** 2 / var[:, 0] + slope
        return out

    def statistics(observed: np.ndarray, draws: CodedRows) -> tuple[float, np.ndarray] | None:
        got_obs = mapped.sums(observed[None, :], coef)
        if got_obs is None:
            return None
        v_obs = float(got_obs[1][0, 0])
        stat_obs = float(drift(*got_obs)[0]) if v_obs > 0 else math.nan
        if not abs(stat_obs - want) <= 1e-8 * (1.0 + abs(want)):
            return None  # not the fit's own statistic: re-fit instead
        got = mapped.sums(draws, coef)
        if got is None or not (got[1][:, 0] > 1e-9 * v_obs).all():
            return None
        return stat_obs, drift(*got)

    return statistics


def group_time_pretest(
    pre: PrePeriodEstimates, notes: list[Notice] | None = None
) -> PreTrendTest | None:
    """The analytic pre-test of a group-time fit (e.g. Callaway & Sant'Anna's ``pre_period``).

    The Wald test that all pre-treatment ATT(g,t) are zero (R did's W; its chi-squared p-value
    is kept as ``p_value_chi2``), referred to the Hotelling F with the clusters. When the cells'
    covariance is singular or too few clusters carry it, the pre-treatment event-time averages
    are tested instead, then their level and slope, with a ``cs-pretest-unavailable`` warning
    saying so (its notice also appended to ``notes``). ``None`` when there are no pre-period cells or no test can be
    calibrated.
    """
    notes = notes if notes is not None else []
    cells = pre.cells
    if cells is None:
        return None
    C = pre.n_clusters
    test = wald_pretest(
        cells.estimates,
        cells.cov,
        C,
        "Wald test that all pre-treatment ATT(g,t) are zero",
        scores=cells.scores,
    )
    if test is not None:
        return test
    if pre.event_times:
        assert pre.scores is not None  # group-time fits carry the averages' contributions
        test = wald_pretest(
            pre.estimates,
            pre.cov,
            C,
            "Wald test that all pre-treatment event-time effects are zero",
            scores=pre.scores,
        )
        if test is None:
            e = np.asarray(pre.event_times, dtype=float)
            test = _drift_pretest(pre.estimates, pre.scores, e, C)
    q = cells.estimates.size
    msg = (
        f"the {q} pre-treatment ATT(g,t) cannot be tested jointly (their "
        "covariance is singular, or the effective number of clusters behind it is below "
        f"twice the number of cells; {C} clusters), so the parallel-trends pre-test "
        + (
            "is not reported."
            if test is None
            else "uses the pre-treatment event-time averages instead."
            if "level and slope" not in test.test
            else "tests the level and slope of the pre-treatment event-time averages "
            "(too few clusters for a calibrated joint test of all of them)."
        )
    )
    notes.append(warn("cs-pretest-unavailable", msg, stacklevel=2))
    return test


def _drift_pretest(est: np.ndarray, IF: np.ndarray, e: np.ndarray, C: int) -> PreTrendTest | None:
    """Pre-test when the pre-period estimates are too many for a calibrated joint Wald test.

    A Wald test (F reference with the effective number of clusters) that the level and the
    slope in event time of the ``q`` pre-period estimates are zero: the drift a violation of
    parallel trends produces, pooled over all leads, with two restrictions whatever ``q``.
    """
    q = est.size
    if q == 1:
        Cm = np.ones((1, 1))
    else:
        ec = (e - e.mean()) / float(np.abs(e - e.mean()).max())
        Cm = np.column_stack([np.full(q, 1.0 / q), ec / q])  # level and slope contrasts
    S = IF @ Cm
    return wald_pretest(
        est @ Cm,
        S.T @ S,
        C,
        f"Wald test that the level and slope of the {q} pre-treatment event-time effects are zero",
        scores=S,
    )


def _lead_drift(res: EffectResult) -> float:
    """Randomisation statistic: squared z of the level plus the slope of the pre-period effects.

    ``z_level = sum_e a_e / sqrt(sum_e se_e^2)`` and ``z_slope = sum_e c_e a_e /
    sqrt(sum_e c_e^2 se_e^2)`` with ``c_e`` the centred event time: a differential linear trend
    moves the level (varying base: every short difference is the slope) or the slope
    (universal base), where a sum of squared t of many short differences has almost no power.
    Covariances are ignored: the randomisation distribution, not a formula, calibrates it.
    """
    pre = res.pre_period
    if pre is None or not pre.event_times:
        return math.nan
    return _drift(pre)


def _drift(pre: PrePeriodEstimates) -> float:
    """:func:`_lead_drift` of pre-period estimates."""
    a = np.asarray(pre.estimates, dtype=float)
    v = np.asarray(pre.std_errors, dtype=float) ** 2
    c = np.asarray(pre.event_times, dtype=float)
    c = c - c.mean()
    z_level = a.sum() / math.sqrt(v.sum())
    den = float(c**2 @ v)
    z_slope = float(c @ a) / math.sqrt(den) if den > 0 else 0.0
    return float(z_level**2 + z_slope**2)
