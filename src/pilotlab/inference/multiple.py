"""Multiple-testing adjustments for a family of outcomes (the primary outcomes of a pilot).

* ``holm``: Holm (1979) step-down control of the family-wise error rate.
* ``bh``: Benjamini & Hochberg (1995) step-up control of the false discovery rate.
* ``romano_wolf``: Romano & Wolf (2005) step-down FWER control that uses the joint bootstrap
  distribution of the t statistics, so correlated outcomes are not over-penalised. The bootstrap
  t statistics come from the wild cluster restricted bootstrap with **one shared draw matrix**
  (:class:`~pilotlab.inference.wild.BootstrapDraws`) across outcomes, which keeps
  their dependence (Clarke, Romano & Wolf 2020, Stata Journal, "The Romano-Wolf multiple-
  hypothesis correction in Stata").

Holm and BH reproduce ``statsmodels.stats.multitest.multipletests`` (``holm``, ``fdr_bh``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from pilotlab.exceptions import EstimationError
from pilotlab.inference.wild import BootstrapDraws, LinearFitLike, wild_bootstrap_tstats

__all__ = ["adjust_pvalues", "bh", "holm", "romano_wolf", "romano_wolf_wild"]

Adjustment = Literal["none", "holm", "bh", "romano_wolf"]


def _as_pvalues(p: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(p, dtype=np.float64).reshape(-1)
    ok = ~np.isnan(arr)
    if np.any((arr[ok] < 0) | (arr[ok] > 1)):
        raise EstimationError(
            f"p-values must lie in [0, 1]; found {arr[ok].min()}..{arr[ok].max()}."
        )
    return arr, ok


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaNs are left out of the family and kept as NaN).

    Parameters
    ----------
    p_values : array_like
        Unadjusted p-values of the family.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order.
    """
    arr, ok = _as_pvalues(p_values)
    out = np.full(arr.shape, np.nan)
    p = arr[ok]
    m = p.size
    if m == 0:
        return out
    order = np.argsort(p, kind="mergesort")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


def bh(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaNs are left out and kept as NaN."""
    arr, ok = _as_pvalues(p_values)
    out = np.full(arr.shape, np.nan)
    p = arr[ok]
    m = p.size
    if m == 0:
        return out
    order = np.argsort(p, kind="mergesort")
    scaled = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


def romano_wolf(t_obs: Sequence[float] | np.ndarray, t_star: np.ndarray) -> np.ndarray:
    """Romano-Wolf step-down adjusted p-values from null-imposed bootstrap t statistics.

    Parameters
    ----------
    t_obs : array_like
        ``(H,)`` observed t statistics, one per hypothesis (outcome).
    t_star : numpy.ndarray
        ``(B, H)`` bootstrap t statistics, generated **with the same draws** for every
        hypothesis and with the null imposed (as the WCR bootstrap does), so no re-centring.

    Returns
    -------
    numpy.ndarray
        ``(H,)`` adjusted p-values. With one hypothesis this is the bootstrap p-value
        ``mean(|t*| > |t|)``.
    """
    t = np.abs(np.asarray(t_obs, dtype=np.float64).reshape(-1))
    ts = np.abs(np.asarray(t_star, dtype=np.float64))
    if ts.ndim != 2 or ts.shape[1] != t.size:
        raise EstimationError(
            f"romano_wolf: t_star must have shape (B, {t.size}); found {ts.shape}."
        )
    order = np.argsort(-t, kind="mergesort")  # most significant first
    # max over the hypotheses still in the family at each step: a reversed running max
    tail_max = np.maximum.accumulate(ts[:, order][:, ::-1], axis=1)[:, ::-1]
    raw = np.mean(tail_max > t[order][None, :], axis=0)
    adj = np.maximum.accumulate(raw)
    out = np.empty(t.size)
    out[order] = adj
    return out


def romano_wolf_wild(
    fits: Sequence[tuple[LinearFitLike, str | int]], draws: BootstrapDraws, null: float = 0.0
) -> np.ndarray:
    """Romano-Wolf adjusted p-values for one coefficient in each of several linear fits.

    Every fit must have the same clusters (same ``G``): the same ``draws`` are applied to all
    of them, as Romano-Wolf requires.

    Parameters
    ----------
    fits : sequence of (LinearFit, coefficient)
        One per outcome of the family.
    draws : BootstrapDraws
        Shared draws from :func:`~pilotlab.inference.wild.make_draws`.
    null : float, default 0.0

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the order of ``fits``.
    """
    stats = [wild_bootstrap_tstats(fit, coef, draws, null) for fit, coef in fits]
    t_obs = np.array([s[0] for s in stats])
    t_star = np.column_stack([s[1] for s in stats])
    return romano_wolf(t_obs, t_star)


def adjust_pvalues(
    p_values: Sequence[float] | np.ndarray,
    method: Adjustment,
    *,
    t_obs: Sequence[float] | np.ndarray | None = None,
    t_star: np.ndarray | None = None,
) -> np.ndarray:
    """Adjust a family of p-values by ``method`` (``design.multiple_testing``).

    ``romano_wolf`` needs ``t_obs`` and ``t_star`` (see :func:`romano_wolf`); the others use
    only ``p_values``.
    """
    if method == "none":
        return np.asarray(p_values, dtype=np.float64).reshape(-1).copy()
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return bh(p_values)
    if method == "romano_wolf":
        if t_obs is None or t_star is None:
            raise EstimationError(
                "design.multiple_testing is romano_wolf, which needs bootstrap t statistics "
                "from a shared wild bootstrap (linear estimators: did, twfe, event_study); "
                "choose holm or bh for other estimators."
            )
        return romano_wolf(t_obs, t_star)
    raise EstimationError(
        f"design.multiple_testing '{method}' is not known; allowed: none, holm, bh, romano_wolf."
    )
