"""The normal, t and chi-squared functions the estimators use, from :mod:`scipy.special`.

Each gives exactly what its :mod:`scipy.stats` namesake gives (the same special function, with
the same values at the ends of the support and for invalid arguments), without importing
:mod:`scipy.stats`, which takes most of a second: ``pilotlab validate`` imports the estimators
and fits each outcome once to check the design, and needs nothing else of :mod:`scipy.stats`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

__all__ = ["chi2_sf", "norm_ppf", "norm_sf", "t_ppf", "t_sf"]


def _out(value: np.ndarray) -> Any:
    """A scalar for scalar arguments (as :mod:`scipy.stats` returns), else the array."""
    return value[()] if value.ndim == 0 else value


def norm_ppf(q: Any) -> Any:
    """``scipy.stats.norm.ppf(q)``."""
    return _out(np.asarray(special.ndtri(q)))


def norm_sf(x: Any) -> Any:
    """``scipy.stats.norm.sf(x)``."""
    return _out(np.asarray(special.ndtr(-np.asarray(x, dtype=np.float64))))


def t_ppf(q: Any, df: Any) -> Any:
    """``scipy.stats.t.ppf(q, df)``."""
    q, df = np.asarray(q, dtype=np.float64), np.asarray(df, dtype=np.float64)
    inside = np.asarray(special.stdtrit(df, q))
    ends = np.where(q == 0, -np.inf, np.where(q == 1, np.inf, np.nan))
    return _out(np.where(~(df > 0), np.nan, np.where((q > 0) & (q < 1), inside, ends)))


def t_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.t.sf(x, df)``."""
    return _out(np.asarray(special.stdtr(df, -np.asarray(x, dtype=np.float64))))


def chi2_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.chi2.sf(x, df)``."""
    x, df = np.asarray(x, dtype=np.float64), np.asarray(df, dtype=np.float64)
    inside = np.asarray(special.chdtrc(df, x))
    ends = np.where(x <= 0, 1.0, np.where(x == np.inf, 0.0, np.nan))
    return _out(np.where(~(df > 0), np.nan, np.where((x > 0) & (x < np.inf), inside, ends)))
