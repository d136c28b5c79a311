"""Analytic minimum detectable effect of a difference-in-differences pilot.

The DiD MDE with serial correlation (Burlig, Preonas & Woerman 2020; Bloom 1995 when errors are
i.i.d.) from an AR(1) model of the two-way within residuals of the history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize

from pilotlab.data.panel import Panel
from pilotlab.distributions import norm_cdf, norm_ppf, t_ppf
from pilotlab.results import AnalyticMDE

__all__ = [
    "analytic_mde",
    "analytic_power",
    "ar1_covariance",
    "cluster_design_effect",
    "did_variance",
    "estimate_ar1",
    "history_matrix",
    "textbook_did_mde",
    "within",
]


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
        return float(norm_ppf(1 - alpha / 2) + norm_ppf(power))
    return float(t_ppf(1 - alpha / 2, df) + t_ppf(power, df))


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
    z = norm_ppf(1 - alpha / 2) + norm_ppf(power)
    return float(z * sigma * math.sqrt((1 / pre + 1 / post) / (p * (1 - p) * n_units)))


def within(Y: np.ndarray) -> np.ndarray:
    """Two-way within transformation of a balanced N x T matrix."""
    out: np.ndarray = Y - Y.mean(axis=1, keepdims=True) - Y.mean(axis=0, keepdims=True) + Y.mean()
    return out


def estimate_ar1(Y: np.ndarray) -> tuple[float, float]:
    """Fit a stationary AR(1) ``(sigma2, rho)`` to the errors of ``y = a_i + g_t + e_it``.

    The two-way within residuals of a balanced ``N x T`` matrix have expected second moments
    ``(1 - 1/N) M S M`` (``M`` removes unit means over time, ``S`` the AR(1) covariance), so the
    sample matrix ``E'E / N`` is matched to that by least squares over all lags: the estimate is
    not biased towards negative correlation by the demeaning, as raw residual autocorrelations are.
    """
    N, T = Y.shape
    E = within(Y)
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


def cluster_design_effect(Y: np.ndarray, cluster: np.ndarray) -> tuple[float, float, float]:
    """Intra-cluster correlation of the history's errors and the design effect of treating
    whole clusters.

    ``Y`` is the balanced ``N x T`` history and ``cluster`` the ``(N,)`` cluster code of each
    unit. The correlation is the one-way analysis-of-variance estimate on the two-way within
    residuals, pooled over periods: with ``G`` clusters of ``m_c`` units,

        MSB = sum_t sum_c m_c ebar_ct^2 / (T (G - 1)),
        MSW = sum_t sum_c sum_i (e_it - ebar_ct)^2 / (T (N - G)),
        ICC = (MSB - MSW) / (MSB + (m0 - 1) MSW),   m0 = (N - sum m_c^2 / N) / (G - 1),

    clipped to ``[0, 1]``. Returns ``(ICC, m, 1 + (m - 1) ICC)`` with ``m = sum m_c^2 / N``, the
    size-weighted mean cluster size (the mean size when clusters are equal).
    """
    N, T = Y.shape
    _, cl = np.unique(np.asarray(cluster), return_inverse=True)
    G = int(cl.max()) + 1
    sizes = np.bincount(cl, minlength=G).astype(np.float64)
    if G >= N or G < 2:
        return 0.0, 1.0, 1.0
    E = within(Y)
    member = np.zeros((G, N))
    member[cl, np.arange(N)] = 1.0
    means = (member @ E) / sizes[:, None]  # (G, T) cluster means of each period
    msb = float((sizes[:, None] * means**2).sum()) / (T * (G - 1))
    msw = float(((E - means[cl]) ** 2).sum()) / (T * (N - G))
    m0 = (N - float((sizes**2).sum()) / N) / (G - 1)
    den = msb + (m0 - 1) * msw
    icc = float(np.clip((msb - msw) / den, 0.0, 1.0)) if den > 0 else 0.0
    m = float((sizes**2).sum()) / N
    return icc, m, 1.0 + (m - 1.0) * icc


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
    cluster: np.ndarray | None = None,
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
    cluster
        ``(N,)`` cluster of each unit when whole clusters are treated (coarser than the units):
        every variance is multiplied by the design effect ``1 + (m - 1) ICC``
        (:func:`cluster_design_effect`).
    """
    N = Y.shape[0]
    sigma2, rho = estimate_ar1(Y)
    q = _quantiles(alpha, power, df)
    icc, m, deff = (0.0, 1.0, 1.0) if cluster is None else cluster_design_effect(Y, cluster)
    q *= math.sqrt(deff)
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
        (
            "Units are independent of each other (clusters are the units) and equally variable."
            if cluster is None or m == 1.0
            else f"Whole clusters are treated; units of a cluster are correlated (intra-cluster "
            f"correlation {icc:.3f} of the within residuals, {m:.3g} units per cluster on "
            f"average), so every variance is multiplied by the design effect 1 + (m - 1) ICC "
            f"= {deff:.3f}."
        ),
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


def analytic_power(
    effects: np.ndarray, ses: np.ndarray, alpha: float, df: float | None
) -> np.ndarray:
    """Two-sided power at each effect, averaged over designs with standard errors ``ses``."""
    q = norm_ppf(1 - alpha / 2) if df is None else t_ppf(1 - alpha / 2, df)
    lam = np.abs(effects)[:, None] / ses[None, :]
    power: np.ndarray = (norm_cdf(lam - q) + norm_cdf(-lam - q)).mean(axis=1)
    return power


def history_matrix(panel: Panel, outcome: str) -> np.ndarray | None:
    """The outcome as a units x periods matrix, when the history is balanced and complete."""
    if not panel.is_balanced:
        return None
    y = panel.y(outcome)
    if np.isnan(y).any():
        return None
    Y = np.empty((panel.n_units, panel.n_periods))
    Y[panel.unit, panel.time] = y
    return Y
