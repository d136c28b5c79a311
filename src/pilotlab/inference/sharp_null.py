"""Sharp-null randomisation tests and their inversion into confidence intervals.

Under the sharp null ``Y(0) = Y - tau D`` the statistic of a re-drawn assignment is affine in
``tau`` for an estimator linear in the outcome: ``b* - tau * slope*`` with ``slope*`` the
estimator applied to the observed treatment indicator under that assignment. The p-value of
``tau`` compares ``|b* - tau slope*|`` with ``|b - tau|``; the interval collects the ``tau`` not
rejected, found by doubling outwards from the estimate and bisecting. Shared by
:mod:`pilotlab.inference.permutation` and :mod:`pilotlab.inference.randomisation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["invert", "p_value_function"]


def p_value_function(
    b_obs: float, b_perm: np.ndarray, slope: np.ndarray, exact: bool
) -> Callable[[float], float]:
    """``p(tau)`` for the sharp null ``Y(0) = Y - tau D``: permuted stats ``b - tau*slope``."""
    n = b_perm.size

    def p(tau: float) -> float:
        obs = abs(b_obs - tau)
        hits = int(np.count_nonzero(np.abs(b_perm - tau * slope) >= obs - 1e-12 * (1 + obs)))
        return hits / n if exact else (1 + hits) / (n + 1)

    return p


def invert(
    p: Callable[[float], float], center: float, scale: float, alpha: float
) -> tuple[float, float]:
    def bound(sign: float) -> float:
        inside, h, outside = center, max(scale, 1e-12), math.nan
        for _ in range(60):
            cand = center + sign * h
            if p(cand) <= alpha:
                outside = cand
                break
            inside, h = cand, h * 2
        if math.isnan(outside):
            return sign * math.inf
        for _ in range(200):
            if abs(outside - inside) <= 1e-10 * max(scale, 1e-300):
                break
            mid = 0.5 * (inside + outside)
            if p(mid) <= alpha:
                outside = mid
            else:
                inside = mid
        return 0.5 * (inside + outside)

    return bound(-1.0), bound(1.0)
