"""How much a parallel-trends pre-test could detect: its power against a linear violation
(Roth 2022, "Pretest with Caution: Event-Study Estimates after Testing for Parallel Trends").

A pre-test that finds no difference in trends is reassuring only if it would have found a
difference that matters. Given the pre-period estimates ``b`` (event times ``e``) and their
covariance ``S``, a steady divergence of ``slope`` per period between pilot and comparison units
shifts their mean to ``delta = slope * v`` with ``v_e = e - reference`` (``v_e = 1`` for the short
differences of a varying base period). Two tests of ``b`` are evaluated exactly under
``b ~ N(delta, S)``:

* ``nis`` -- Roth's formulation of common practice: the pre-test rejects when any pre-period
  estimate is individually significant, ``|b_e / s_e| > z``; its power is one minus the
  multivariate normal probability of the box ``|b_e / s_e| <= z`` (Genz's algorithm with a
  fixed seed, so the numbers are reproducible, to an absolute error of 3e-5 up to eight
  estimates and 1e-4 beyond; above :data:`MAX_NIS` estimates it is not computed);
* ``wald`` -- the joint Wald test ``b' S^-1 b``: non-central chi-squared with non-centrality
  ``delta' S^-1 delta``, or the non-central F of the Hotelling reference when the reported test
  uses the F approximation with ``df_denom`` degrees of freedom.

For each, the slope the test detects 50% and 80% of the time is found by root finding, and the
power is evaluated against the slope that, continued after the start, would account for half of
the headline estimate (the bias a reader should worry about).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
from scipy import optimize, stats

from pilotlab.results import EffectResult, PrePeriodEstimates, PreTrendPower, PreTrendTest

__all__ = [
    "nis_power",
    "pretrend_power",
    "slope_for_power",
    "violation_direction",
    "wald_power",
    "with_power",
]


#: Above this many pre-period estimates the box probability is too slow to integrate well.
MAX_NIS = 20


def nis_power(delta: np.ndarray, cov: np.ndarray, alpha: float = 0.05) -> float:
    """Probability that at least one estimate is individually significant at ``alpha``."""
    d = np.asarray(delta, dtype=np.float64)
    S = np.asarray(cov, dtype=np.float64)
    s = np.sqrt(np.diag(S))
    z = float(stats.norm.ppf(1 - alpha / 2))
    m = d / s
    if d.size == 1:
        accept = float(stats.norm.cdf(z - m[0]) - stats.norm.cdf(-z - m[0]))
        return 1.0 - accept
    R = S / np.outer(s, s)
    accept = float(
        stats.multivariate_normal.cdf(
            np.full(d.size, z),
            mean=m,
            cov=R,
            allow_singular=True,
            abseps=3e-5 if d.size <= 8 else 1e-4,  # the report shows whole percentages
            releps=0.0,
            lower_limit=np.full(d.size, -z),
            rng=np.random.default_rng(0),  # Genz's quasi-random points: reproducible numbers
        )
    )
    return float(min(max(1.0 - accept, 0.0), 1.0))


def wald_power(
    delta: np.ndarray, cov: np.ndarray, alpha: float = 0.05, df_denom: float | None = None
) -> float:
    """Power of the joint Wald test (chi-squared, or Hotelling's F with ``df_denom``)."""
    d = np.asarray(delta, dtype=np.float64)
    q = d.size
    lam = float(d @ np.linalg.solve(np.asarray(cov, dtype=np.float64), d))
    if df_denom is not None and df_denom > 0:
        crit = float(stats.f.ppf(1 - alpha, q, df_denom))
        return float(stats.ncf.sf(crit, q, df_denom, lam)) if lam > 0 else alpha
    crit = float(stats.chi2.ppf(1 - alpha, q))
    return float(stats.ncx2.sf(crit, q, lam)) if lam > 0 else alpha


def slope_for_power(power: Callable[[float], float], target: float, scale: float) -> float:
    """The smallest slope ``g >= 0`` with ``power(g) = target`` (``power`` increasing in ``g``);
    ``scale`` is a slope of the right order (one standard error of the trend)."""
    hi = scale
    for _ in range(60):  # doubling until the target is bracketed
        if power(hi) >= target:
            break
        hi *= 2.0
    else:  # pragma: no cover - power must reach any target below one
        return math.nan
    return float(optimize.brentq(lambda g: power(g) - target, 0.0, hi, xtol=1e-9 * hi, rtol=1e-7))


def violation_direction(
    event_times: tuple[int, ...], reference: int, varying_base: bool
) -> np.ndarray:
    """``v``: the pre-period estimates' shift per unit of slope of a linear divergence."""
    e = np.asarray(event_times, dtype=np.float64)
    return np.ones_like(e) if varying_base else e - float(reference)


def pretrend_power(
    pre: PrePeriodEstimates, test: PreTrendTest | None, result: EffectResult
) -> PreTrendPower | None:
    """Roth's power analysis of the pre-test of ``result`` (``None`` when the pre-period
    estimates' covariance is not positive definite)."""
    q = len(pre.event_times)
    S = np.asarray(pre.cov, dtype=np.float64)
    if q == 0 or S.shape != (q, q) or not np.all(np.isfinite(S)):
        return None
    eig = np.linalg.eigvalsh(S)
    if eig.min() <= 1e-12 * max(float(eig.max()), 1e-300):
        return None
    alpha = float(result.alpha)
    varying = result.staggered is not None and result.staggered.base_period == "varying"
    v = violation_direction(pre.event_times, pre.reference, varying)
    df_denom = None
    if test is not None and test.reference == "F" and test.df == q and test.df_denom:
        df_denom = float(test.df_denom)
    scale = 1.0 / math.sqrt(float(v @ np.linalg.solve(S, v)))

    nis_seen: dict[float, float] = {}

    def p_nis(g: float) -> float:
        # each probability is a pure function of the slope (a fixed-seed integration), and the
        # two root searches and the half-effect power revisit slopes: integrate each one once
        if q > MAX_NIS:
            return math.nan
        if g not in nis_seen:
            nis_seen[g] = nis_power(g * v, S, alpha)
        return nis_seen[g]

    def p_wald(g: float) -> float:
        return wald_power(g * v, S, alpha, df_denom)

    post = [
        ev.event_time
        for ev in result.event_study
        if ev.event_time >= 0 and not ev.reference and math.isfinite(ev.estimate)
    ]
    half = math.nan
    if post and math.isfinite(result.estimate) and result.estimate != 0:
        lever = float(np.mean(np.asarray(post, dtype=np.float64) - pre.reference))
        if lever > 0:
            half = 0.5 * abs(result.estimate) / lever
    return PreTrendPower(
        event_times=tuple(int(e) for e in pre.event_times),
        reference=int(pre.reference),
        alpha=alpha,
        slope_50_nis=slope_for_power(p_nis, 0.5, scale) if q <= MAX_NIS else math.nan,
        slope_80_nis=slope_for_power(p_nis, 0.8, scale) if q <= MAX_NIS else math.nan,
        slope_50_wald=slope_for_power(p_wald, 0.5, scale),
        slope_80_wald=slope_for_power(p_wald, 0.8, scale),
        half_effect_slope=half,
        power_half_effect_nis=p_nis(half) if math.isfinite(half) else math.nan,
        power_half_effect_wald=p_wald(half) if math.isfinite(half) else math.nan,
        df_denom=df_denom,
        violation="linear" if not varying else "linear (short differences)",
    )


def with_power(test: PreTrendTest, pre: PrePeriodEstimates, result: EffectResult) -> PreTrendTest:
    """``test`` with its :class:`PreTrendPower` attached (unchanged when it cannot be computed)."""
    power = pretrend_power(pre, test, result)
    return test if power is None else dataclasses.replace(test, power=power)
