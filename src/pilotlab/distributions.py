"""The normal, t, chi-squared, F and truncated-normal functions pilotlab uses, from
:mod:`scipy.special`.

Each gives exactly what its :mod:`scipy.stats` namesake gives (the same special function on
the same arguments, with the same values at the ends of the support and for invalid
arguments; ``tests/test_distributions.py`` checks bit for bit), without importing
:mod:`scipy.stats`, which takes most of a second: ``pilotlab validate`` fits each outcome once
to check the design, and ``pilotlab run`` with pre-trend tests, their power and honest_did
needs nothing else of it (the quasi-random points come from :mod:`pilotlab.diagnostics.sobol`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special
from scipy.special import _ufuncs

__all__ = [
    "chi2_ppf",
    "chi2_sf",
    "f_ppf",
    "f_sf",
    "ncf_sf",
    "ncx2_sf",
    "norm_cdf",
    "norm_ppf",
    "norm_sf",
    "t_ppf",
    "t_sf",
    "truncnorm_ppf",
]

_Func = Callable[..., Any]


def _out(value: np.ndarray) -> Any:
    """A scalar for scalar arguments (as :mod:`scipy.stats` returns), else the array."""
    return value[()] if value.ndim == 0 else value


def _floats(*args: Any) -> list[np.ndarray]:
    return list(np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in args)))


def _sf_on_half_line(sf: _Func, x: np.ndarray, ok: np.ndarray, *params: np.ndarray) -> Any:
    """A survival function on ``[0, inf)`` as scipy.stats completes it: NaN for NaN ``x`` or
    invalid parameters (``ok`` false), 1 at and below 0, 0 at infinity, else ``sf(x, *params)``
    (evaluated there only)."""
    out = np.where(~ok | np.isnan(x), np.nan, np.where(x <= 0, 1.0, 0.0))
    use = ok & (x > 0) & (x < np.inf)
    if use.any():
        out[use] = sf(x[use], *(p[use] for p in params))
    return _out(out)


def _ppf_on(
    ppf: _Func, q: np.ndarray, ok: np.ndarray, lower: Any, upper: Any, *params: np.ndarray
) -> Any:
    """A quantile function as scipy.stats completes it: NaN outside ``[0, 1]``, for NaN ``q``
    or invalid parameters (``ok`` false), ``lower`` at 0 and ``upper`` at 1, else
    ``ppf(q, *params)`` (evaluated there only; plus scipy's location 0, which makes -0.0 0.0)."""
    out = np.where(ok & (q == 0), lower, np.where(ok & (q == 1), upper, np.nan))
    use = ok & (q > 0) & (q < 1)
    if use.any():
        out[use] = ppf(q[use], *(p[use] for p in params)) + 0.0
    return _out(out)


def _boost(name: str) -> _Func | None:
    """A ufunc of Boost's distributions in scipy.special (scipy 1.12 on), or None."""
    return getattr(_ufuncs, name, None)


def norm_cdf(x: Any) -> Any:
    """``scipy.stats.norm.cdf(x)``."""
    return _out(np.asarray(special.ndtr(np.asarray(x, dtype=np.float64))))


def norm_sf(x: Any) -> Any:
    """``scipy.stats.norm.sf(x)``."""
    return _out(np.asarray(special.ndtr(-np.asarray(x, dtype=np.float64))))


def norm_ppf(q: Any) -> Any:
    """``scipy.stats.norm.ppf(q)``."""
    return _out(np.asarray(special.ndtri(q)))


def t_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.t.sf(x, df)``."""
    return _out(np.asarray(special.stdtr(df, -np.asarray(x, dtype=np.float64))))


def t_ppf(q: Any, df: Any) -> Any:
    """``scipy.stats.t.ppf(q, df)``."""
    q, df = _floats(q, df)
    return _ppf_on(lambda q, df: special.stdtrit(df, q), q, df > 0, -np.inf, np.inf, df)


def chi2_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.chi2.sf(x, df)``."""
    x, df = _floats(x, df)
    return _sf_on_half_line(lambda x, df: special.chdtrc(df, x), x, df > 0, df)


def chi2_ppf(q: Any, df: Any) -> Any:
    """``scipy.stats.chi2.ppf(q, df)``."""
    q, df = _floats(q, df)
    return _ppf_on(lambda q, df: 2 * special.gammaincinv(df / 2, q), q, df > 0, 0.0, np.inf, df)


def f_sf(x: Any, dfn: Any, dfd: Any) -> Any:
    """``scipy.stats.f.sf(x, dfn, dfd)``."""
    x, dfn, dfd = _floats(x, dfn, dfd)
    ok = (dfn > 0) & (dfd > 0)
    return _sf_on_half_line(lambda x, n, d: special.fdtrc(n, d, x), x, ok, dfn, dfd)


def f_ppf(q: Any, dfn: Any, dfd: Any) -> Any:
    """``scipy.stats.f.ppf(q, dfn, dfd)``."""
    q, dfn, dfd = _floats(q, dfn, dfd)
    ok = (dfn > 0) & (dfd > 0)
    return _ppf_on(lambda q, n, d: special.fdtri(n, d, q), q, ok, 0.0, np.inf, dfn, dfd)


def ncx2_sf(x: Any, df: Any, nc: Any) -> Any:
    """``scipy.stats.ncx2.sf(x, df, nc)``: Boost's non-central chi-squared survival function
    (the ufunc scipy.stats calls), and the central one where ``nc`` is 0."""
    boost = _boost("_ncx2_sf")
    if boost is None:  # pragma: no cover - scipy before 1.12 keeps it in scipy.stats
        from scipy import stats

        return stats.ncx2.sf(x, df, nc)

    def sf(x: np.ndarray, df: np.ndarray, nc: np.ndarray) -> np.ndarray:
        out: np.ndarray = special.chdtrc(df, x)
        off = nc != 0
        if off.any():
            with np.errstate(over="ignore"):
                out[off] = boost(x[off], df[off], nc[off])
        return out

    x, df, nc = _floats(x, df, nc)
    return _sf_on_half_line(sf, x, (df > 0) & np.isfinite(df) & (nc >= 0), df, nc)


def ncf_sf(x: Any, dfn: Any, dfd: Any, nc: Any) -> Any:
    """``scipy.stats.ncf.sf(x, dfn, dfd, nc)``: Boost's non-central F survival function."""
    boost = _boost("_ncf_sf")
    if boost is None:  # pragma: no cover - scipy before 1.12 keeps it in scipy.stats
        from scipy import stats

        return stats.ncf.sf(x, dfn, dfd, nc)
    x, dfn, dfd, nc = _floats(x, dfn, dfd, nc)
    return _sf_on_half_line(boost, x, (dfn > 0) & (dfd > 0) & (nc >= 0), dfn, dfd, nc)


def _log_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``log P(a <= Z <= b)`` for a standard normal ``Z``: from the lower tail when the interval
    lies below 0, from the upper one (by symmetry) above it, else as one minus both tails."""
    out = np.full(a.shape, np.nan)
    below, above = b <= 0, a > 0
    middle = ~(below | above)
    for part, lo, hi in ((below, a, b), (above, -b, -a)):
        if part.any():  # log(Phi(hi) - Phi(lo)), both in logs
            pair = [special.log_ndtr(hi[part]), special.log_ndtr(lo[part]) + np.pi * 1j]
            out[part] = np.real(special.logsumexp(pair, axis=0))
    if middle.any():
        out[middle] = special.log1p(-special.ndtr(a[middle]) - special.ndtr(-b[middle]))
    return out


def _truncnorm_inside(q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The quantile for ``0 < q < 1`` and ``a < b``: ``Phi^-1(Phi(a) + q P(a, b))`` in logs
    when ``a < 0``, else its mirror image from the upper tail."""
    mass = _log_mass(a, b)
    left = a < 0
    out = np.empty(q.shape)
    with np.errstate(divide="ignore"):
        for part, sign, tail, log_q in (
            (left, 1.0, special.log_ndtr(a[left]), np.log(q[left])),
            (~left, -1.0, special.log_ndtr(-b[~left]), np.log1p(-q[~left])),
        ):
            if part.any():
                log_cdf = special.logsumexp([tail, log_q + mass[part]], axis=0)
                out[part] = sign * special.ndtri_exp(log_cdf)
    return out


def truncnorm_ppf(q: Any, a: Any, b: Any) -> Any:
    """``scipy.stats.truncnorm.ppf(q, a, b)``: the ``q`` quantile of the standard normal
    truncated to ``[a, b]``, accurate far in either tail."""
    q, a, b = _floats(q, a, b)
    return _ppf_on(_truncnorm_inside, q, a < b, a, b, a, b)
