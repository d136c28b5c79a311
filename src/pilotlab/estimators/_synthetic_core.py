"""Array-level numerics of synthetic control, synthetic DiD and DiD on a block design.

A block is ``yc`` (control units x all periods) and the treated units' rows, with the first
``t0`` periods untreated. The three estimators differ only in their weights (Arkhangelsky et al.
2021, section 2):

========  ==========================================  ======================  ===========
method    unit weights ``omega``                      time weights ``lam``    intercept
========  ==========================================  ======================  ===========
``sdid``  ridge ``zeta = (N_tr T_post)^(1/4) sigma``  fitted, ridge ~ 0       both
``sc``    ridge ``1e-6 sigma`` (ADH 2010)             none (all zero)         none
``did``   uniform                                     uniform                 --
========  ==========================================  ======================  ===========

``sigma`` is the standard deviation of the first differences of the control outcomes in the
pre-period. Every estimate is the post-period mean of the *gap curve*
``curve_t = gap_t - lam . gap_pre`` with ``gap_t = treated_t - omega . yc_t``, so the same curve
gives the point estimate, the synthetic path and the per-period effects.

Placebo refits (Algorithm 4) are solved as one batch: the unit-weight problems of all replications
share one Gram matrix over the controls, and the time-weight problems differ only by a low-rank
downdate of the control moments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pilotlab.estimators._frank_wolfe import two_round_frank_wolfe

__all__ = [
    "BlockFit",
    "Method",
    "block_curves",
    "fit_block",
    "fit_block_each",
    "noise_level",
    "placebo_curves",
]

Method = Literal["sdid", "sc", "did"]

ETA_LAMBDA = 1e-6  # 'infinitesimal' ridge on time weights (and on SC unit weights)
MIN_DECREASE = 1e-5  # stopping rule: decrease below (1e-5 sigma)^2
MAX_ITER = 10_000
MAX_ITER_FIRST = 100  # before sparsification


@dataclass(frozen=True)
class BlockFit:
    """Weights and regularisation of one block fit (one cohort).

    Attributes
    ----------
    omega : ndarray, shape (N0,)
        Unit weights of the controls.
    lam : ndarray, shape (T0,)
        Time weights of the pre-periods (zero for synthetic control).
    t0 : int
        Number of pre-periods.
    zeta_omega, zeta_lambda : float
        Ridge parameters of the unit and time weights.
    noise : float
        ``sigma``, the standard deviation of first differences of control pre-period outcomes.
    predictor_scale : ndarray or None
        Scaling applied to predictor rows (synthetic control with predictors).
    """

    method: Method
    omega: np.ndarray
    lam: np.ndarray
    t0: int
    zeta_omega: float
    zeta_lambda: float
    noise: float
    predictor_scale: np.ndarray | None = None


def noise_level(yc: np.ndarray, t0: int) -> float:
    """Standard deviation (n - 1) of first differences of control outcomes before the start;
    ``0.0`` (no regularisation) when there are fewer than two such differences (one comparison
    unit with two periods before the start), whose spread is not defined."""
    diffs = np.diff(yc[:, :t0], axis=1)
    return float(diffs.std(ddof=1)) if diffs.size >= 2 else 0.0


def _omega_design(
    yc: np.ndarray,
    t0: int,
    intercept: bool,
    xc: np.ndarray | None,
    scale: np.ndarray | None,
) -> np.ndarray:
    """Rows of the unit-weight problem: pre-periods (demeaned if intercept), then predictors."""
    a = yc[:, :t0].T
    if intercept:
        a = a - a.mean(axis=0, keepdims=True)
    if xc is not None and scale is not None:
        a = np.vstack([a, xc * scale[:, None]])
    return np.ascontiguousarray(a)


def _predictor_scale(yc: np.ndarray, t0: int, xc: np.ndarray, xt: np.ndarray) -> np.ndarray:
    """Put each predictor on the scale of the pre-period outcomes (weight of one pre-period)."""
    target = float(yc[:, :t0].std())
    spread = np.concatenate([xc, xt.reshape(xc.shape[0], -1)], axis=1).std(axis=1)
    safe = np.where(spread > 0, spread, 1.0)
    return np.where(spread > 0, (target if target > 0 else 1.0) / safe, 0.0)


def fit_block(
    yc: np.ndarray,
    yt: np.ndarray,
    t0: int,
    method: Method,
    xc: np.ndarray | None = None,
    xt: np.ndarray | None = None,
) -> BlockFit:
    """Fit unit and time weights of one block.

    Parameters
    ----------
    yc : ndarray, shape (N0, T)
        Control outcomes.
    yt : ndarray, shape (N1, T)
        Treated outcomes (the weights are fitted on their average).
    t0 : int
        Number of pre-periods (periods ``0..t0-1`` untreated).
    method : {"sdid", "sc", "did"}
        Which estimator's weights.
    xc, xt : ndarray, optional
        Predictor values (P, N0) for controls and (P,) for the treated average; synthetic control
        only. Each predictor becomes one extra matching row on the outcome's scale.

    Returns
    -------
    BlockFit
    """
    n0, n_t = yc.shape
    n1 = yt.shape[0]
    t1 = n_t - t0
    noise = noise_level(yc, t0)
    zeta_lambda = ETA_LAMBDA * noise
    tol = (MIN_DECREASE * noise) ** 2
    if method == "did":
        return BlockFit(method, np.full(n0, 1.0 / n0), np.full(t0, 1.0 / t0), t0, 0.0, 0.0, noise)
    eta_omega = (n1 * t1) ** 0.25 if method == "sdid" else ETA_LAMBDA
    zeta_omega = eta_omega * noise
    intercept = method == "sdid"
    ybar = yt.mean(axis=0)
    scale = None
    if method == "sc" and xc is not None and xt is not None and xc.shape[0]:
        scale = _predictor_scale(yc, t0, xc, xt)
    a = _omega_design(yc, t0, intercept, xc if scale is not None else None, scale)
    b = ybar[:t0] - ybar[:t0].mean() if intercept else ybar[:t0]
    if scale is not None and xt is not None:
        b = np.concatenate([b, xt * scale])
    rows = a.shape[0]
    omega = two_round_frank_wolfe(
        a.T @ a,
        (b @ a)[None, :],
        np.array([rows * zeta_omega**2]),
        np.array([rows]),
        np.full((1, n0), 1.0 / n0),
        tol,
        max_iter_first=MAX_ITER_FIRST,
        max_iter=MAX_ITER,
    )[0]
    if method == "sc":
        lam = np.zeros(t0)
    else:
        z = np.column_stack([yc[:, :t0], yc[:, t0:].mean(axis=1)])
        z = z - z.mean(axis=0, keepdims=True)
        g = z[:, :t0].T @ z[:, :t0]
        c = z[:, t0] @ z[:, :t0]
        lam = two_round_frank_wolfe(
            g,
            c[None, :],
            np.array([n0 * zeta_lambda**2]),
            np.array([n0]),
            np.full((1, t0), 1.0 / t0),
            tol,
            max_iter_first=MAX_ITER_FIRST,
            max_iter=MAX_ITER,
        )[0]
    return BlockFit(method, omega, lam, t0, zeta_omega, zeta_lambda, noise, scale)


def fit_block_each(
    yc: np.ndarray,
    yt: np.ndarray,
    t0: int,
    xc: np.ndarray | None = None,
    xt: np.ndarray | None = None,
) -> list[BlockFit]:
    """Synthetic control weights for each treated unit separately, solved as one batch.

    Parameters
    ----------
    yc : ndarray, shape (N0, T)
    yt : ndarray, shape (N1, T)
    t0 : int
    xc : ndarray, shape (P, N0), optional
    xt : ndarray, shape (P, N1), optional

    Returns
    -------
    list of BlockFit
        One per treated unit, in the order of ``yt``'s rows.
    """
    n0 = yc.shape[0]
    n1 = yt.shape[0]
    noise = noise_level(yc, t0)
    zeta = ETA_LAMBDA * noise
    scale = None
    if xc is not None and xt is not None and xc.shape[0]:
        scale = _predictor_scale(yc, t0, xc, xt)
    a = _omega_design(yc, t0, False, xc if scale is not None else None, scale)
    b = yt[:, :t0]
    if scale is not None and xt is not None:
        b = np.hstack([b, (xt * scale[:, None]).T])
    rows = a.shape[0]
    omega = two_round_frank_wolfe(
        a.T @ a,
        b @ a,
        np.full(n1, rows * zeta**2),
        np.full(n1, rows),
        np.full((n1, n0), 1.0 / n0),
        (MIN_DECREASE * noise) ** 2,
        max_iter_first=MAX_ITER_FIRST,
        max_iter=MAX_ITER,
    )
    return [BlockFit("sc", w, np.zeros(t0), t0, zeta, zeta, noise, scale) for w in omega]


def block_curves(
    omega: np.ndarray, lam: np.ndarray, yc: np.ndarray, treated_mean: np.ndarray, t0: int
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic paths and gap curves for weights given as rows.

    Parameters
    ----------
    omega : ndarray, shape (B, N0)
    lam : ndarray, shape (B, T0)
    yc : ndarray, shape (N0, T)
    treated_mean : ndarray, shape (B, T)
    t0 : int

    Returns
    -------
    synthetic : ndarray, shape (B, T)
        ``omega . yc_t`` shifted by the time-weighted pre-period gap (the SDID / DiD intercept).
    curve : ndarray, shape (B, T)
        ``treated - synthetic``; its post-period mean is the estimate.
    """
    synth = omega @ yc
    gap = treated_mean - synth
    offset = np.einsum("bt,bt->b", gap[:, :t0], lam)
    synth = synth + offset[:, None]
    return synth, treated_mean - synth


def placebo_curves(
    fit: BlockFit,
    yc: np.ndarray,
    tr_idx: np.ndarray,
    excl_idx: np.ndarray,
    xc: np.ndarray | None = None,
) -> np.ndarray:
    """Gap curves of placebo refits where some controls play the treated units (Algorithm 4).

    Each replication ``b`` treats the controls ``tr_idx[b]`` as treated and drops every control in
    ``excl_idx[b]`` (a superset of ``tr_idx[b]``) from the donors; the weights are refitted with the
    original fit's regularisation and started from the original weights (restricted, renormalised),
    as the reference implementation does.

    Parameters
    ----------
    fit : BlockFit
        The fit on the real treated units.
    yc : ndarray, shape (N0, T)
    tr_idx : ndarray of int, shape (B, n1)
    excl_idx : ndarray of int, shape (B, m)
    xc : ndarray, shape (P, N0), optional
        Predictors (synthetic control).

    Returns
    -------
    ndarray, shape (B, T)
    """
    n0, _ = yc.shape
    n_b = tr_idx.shape[0]
    t0 = fit.t0
    rb = np.arange(n_b)[:, None]
    allowed = np.ones((n_b, n0), dtype=bool)
    allowed[rb, excl_idx] = False
    n_ctrl = allowed.sum(axis=1).astype(np.float64)
    treated_mean = yc[tr_idx].mean(axis=1)
    tol = (MIN_DECREASE * fit.noise) ** 2

    # unit weights: start from the original weights restricted to the remaining donors
    omega0 = np.where(allowed, fit.omega[None, :], 0.0)
    tot = omega0.sum(axis=1, keepdims=True)
    omega0 = np.where(tot > 0, omega0 / np.where(tot > 0, tot, 1.0), allowed / n_ctrl[:, None])
    if fit.method == "did":
        omega = allowed / n_ctrl[:, None]
        lam = np.broadcast_to(fit.lam, (n_b, t0))
        return block_curves(omega, lam, yc, treated_mean, t0)[1]

    a = _omega_design(yc, t0, fit.method == "sdid", xc, fit.predictor_scale)
    gram = a.T @ a
    cross = gram[tr_idx].mean(axis=1)  # A'y with y the mean of the pseudo-treated columns
    rows = a.shape[0]
    omega = two_round_frank_wolfe(
        gram,
        cross,
        np.full(n_b, rows * fit.zeta_omega**2),
        np.full(n_b, rows),
        omega0,
        tol,
        allowed,
        MAX_ITER_FIRST,
        MAX_ITER,
    )
    if fit.method == "sc":
        lam = np.zeros((n_b, t0))
    else:
        # time weights: centred moments of the remaining donors by downdating the full moments
        z = np.column_stack([yc[:, :t0], yc[:, t0:].mean(axis=1)])
        z = z - z.mean(axis=0, keepdims=True)
        ze = z[excl_idx]  # (B, m, T0 + 1)
        moments = (z.T @ z)[None] - np.einsum("bmi,bmj->bij", ze, ze)
        sums = z.sum(axis=0)[None] - ze.sum(axis=1)
        moments -= np.einsum("bi,bj->bij", sums, sums) / n_ctrl[:, None, None]
        lam = two_round_frank_wolfe(
            np.ascontiguousarray(moments[:, :t0, :t0]),
            moments[:, t0, :t0],
            n_ctrl * fit.zeta_lambda**2,
            n_ctrl,
            np.broadcast_to(fit.lam, (n_b, t0)),
            tol,
            None,
            MAX_ITER_FIRST,
            MAX_ITER,
        )
    return block_curves(omega, lam, yc, treated_mean, t0)[1]
