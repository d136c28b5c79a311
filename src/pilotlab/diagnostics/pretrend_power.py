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
  multivariate normal probability of the box ``|b_e / s_e| <= z`` (Genz's separation of
  variables on fixed quasi-random points, :mod:`pilotlab.diagnostics.mvn_box`, so the numbers
  are reproducible and smooth in the slope, to an absolute error of 1e-4; above :data:`MAX_NIS` estimates it is not computed);
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
from scipy import optimize, special

from pilotlab.diagnostics.mvn_box import box_probability, box_probability_at
from pilotlab.distributions import chi2_ppf, f_ppf, ncf_sf, ncx2_sf
from pilotlab.results import EffectResult, PrePeriodEstimates, PreTrendPower, PreTrendTest

__all__ = [
    "nis_power",
    "pretrend_power",
    "slope_for_power",
    "violation_direction",
    "wald_power",
    "with_power",
]


#: Root tolerance for the individual-significance slopes (relative, and in units of the trend's
#: standard error). The box probabilities are integrated to about 1e-4 (three standard
#: errors), and near the 50% and 80% targets the power rises by roughly 0.3 per standard error
#: of slope, so the integration alone leaves the root uncertain by about 3e-4: locating it to
#: 1e-4 is finer than that and far finer than the report's rounding (two or three significant
#: digits); a tighter tolerance would only buy more integrations. The Wald power is exact and
#: keeps the default.
NIS_TOL = 1e-4

#: Above this many pre-period estimates the box probability is too slow to integrate well.
MAX_NIS = 20


def nis_power(
    delta: np.ndarray, cov: np.ndarray, alpha: float = 0.05, points: int | None = None
) -> float:
    """Probability that at least one estimate is individually significant at ``alpha``.

    ``points``: the quasi-random points per randomisation of the box integration (default: the
    first stage of :data:`pilotlab.diagnostics.mvn_box.POINTS` meeting the error target)."""
    return _nis(delta, cov, alpha, points)[0]


def _nis(delta: np.ndarray, cov: np.ndarray, alpha: float, points: int | None) -> tuple[float, int]:
    """:func:`nis_power` and the points per randomisation it used."""
    d = np.asarray(delta, dtype=np.float64)
    S = np.asarray(cov, dtype=np.float64)
    s = np.sqrt(np.diag(S))
    z = float(special.ndtri(1 - alpha / 2))
    m = d / s
    R = S / np.outer(s, s)
    box = np.full(d.size, z)
    if points is None:
        # the report shows whole percentages: 1e-4 is a hundred times finer
        accept, _, points = box_probability(-box, box, m, R, 1e-4)
    else:
        accept, _ = box_probability_at(-box, box, m, R, points)
    return float(min(max(1.0 - accept, 0.0), 1.0)), points


def wald_power(
    delta: np.ndarray, cov: np.ndarray, alpha: float = 0.05, df_denom: float | None = None
) -> float:
    """Power of the joint Wald test (chi-squared, or Hotelling's F with ``df_denom``)."""
    d = np.asarray(delta, dtype=np.float64)
    q = d.size
    lam = float(d @ np.linalg.solve(np.asarray(cov, dtype=np.float64), d))
    if df_denom is not None and df_denom > 0:
        crit = float(f_ppf(1 - alpha, q, df_denom))
        return float(ncf_sf(crit, q, df_denom, lam)) if lam > 0 else alpha
    crit = float(chi2_ppf(1 - alpha, q))
    return float(ncx2_sf(crit, q, lam)) if lam > 0 else alpha


def slope_for_power(
    power: Callable[[float], float],
    target: float,
    scale: float,
    tol: float | None = None,
    below: float = 0.0,
) -> float:
    """The smallest slope ``g >= 0`` with ``power(g) = target`` (``power`` increasing in ``g``);
    ``scale`` is a slope of the right order (one standard error of the trend); ``below`` a slope
    known to have less power than ``target`` (the root of a lower target); the root is located
    to ``tol * scale`` and ``tol`` relative (default 1e-7, for exact power functions)."""
    lo, hi = below, max(scale, below)
    for _ in range(60):  # doubling until the target is bracketed
        if hi > below and power(hi) >= target:
            break
        lo, hi = hi, 2.0 * hi
    else:  # pragma: no cover - power must reach any target below one
        return math.nan
    tol = 1e-7 if tol is None else tol
    return float(optimize.brentq(lambda g: power(g) - target, lo, hi, xtol=tol * scale, rtol=tol))


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
    # the number of integration points is chosen once, at a slope of the order of the roots,
    # and then kept: every slope is integrated on the same points (common random numbers), so
    # power(g) is a smooth function and the root searches see no integration noise
    nis_points: list[int | None] = [None]

    def p_nis(g: float) -> float:
        # each probability is a pure function of the slope, and the two root searches and the
        # half-effect power revisit slopes: integrate each one once
        if q > MAX_NIS:
            return math.nan
        if g not in nis_seen:
            if nis_points[0] is None:
                nis_seen[scale], nis_points[0] = _nis(scale * v, S, alpha, None)
            if g not in nis_seen:
                nis_seen[g] = _nis(g * v, S, alpha, nis_points[0])[0]
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
    # the 50% slopes bracket the 80% ones from below: each search starts where the last ended
    nan = math.nan
    nis_50 = slope_for_power(p_nis, 0.5, scale, NIS_TOL) if q <= MAX_NIS else nan
    wald_50 = slope_for_power(p_wald, 0.5, scale)
    return PreTrendPower(
        event_times=tuple(int(e) for e in pre.event_times),
        reference=int(pre.reference),
        alpha=alpha,
        slope_50_nis=nis_50,
        slope_80_nis=slope_for_power(p_nis, 0.8, scale, NIS_TOL, nis_50) if q <= MAX_NIS else nan,
        slope_50_wald=wald_50,
        slope_80_wald=slope_for_power(p_wald, 0.8, scale, below=wald_50),
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
