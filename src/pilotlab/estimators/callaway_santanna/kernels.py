"""Callaway & Sant'Anna, stage 3 -- the 2x2 kernels with covariates.

One comparison of a cohort with its comparison units between two periods, by outcome
regression (``reg``), standardised inverse probability weighting (``ipw``) or the doubly robust
estimator (``dr``) of Sant'Anna & Zhao (2020), with their influence functions: the panel
formulas (vectorised over every cell sharing a design) and DRDID's repeated cross-section
``*_rc`` formulas. The weighted logit (Newton-Raphson) and weighted least squares they rest on
are here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import expit

from pilotlab.exceptions import EstimationError

Method = Literal["dr", "ipw", "reg"]

_TRIM_LEVEL = 0.995  # propensity scores of comparison units at or above this are trimmed (DRDID)


def _wls(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    Xw = X * w[:, None]
    XtX = Xw.T @ X
    if np.linalg.cond(XtX) > 1 / np.finfo(float).eps:
        raise np.linalg.LinAlgError("singular outcome regression")
    return np.linalg.solve(XtX, Xw.T @ y)


def _logit(X: np.ndarray, d: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logit by Newton-Raphson (IRLS): fitted probabilities and the information."""
    beta = np.zeros(X.shape[1])
    pbar = np.sum(w * d) / np.sum(w)
    beta[0] = math.log(pbar / (1 - pbar))
    for _ in range(100):
        p = expit(X @ beta)
        info = X.T @ (X * (w * p * (1 - p))[:, None])
        step = np.linalg.solve(info, X.T @ (w * (d - p)))
        beta += step
        if not np.all(np.isfinite(beta)):
            raise np.linalg.LinAlgError("propensity score did not converge")
        if np.max(np.abs(step)) < 1e-10:
            break
    p = expit(X @ beta)
    info = X.T @ (X * (w * p * (1 - p))[:, None])
    return p, info


@dataclass(frozen=True)
class _Design2x2:
    """The parts of a 2x2 comparison that do not depend on the outcome (reusable across cells
    with the same units and covariates): normalised weights, the comparison units' OLS inverse
    and the fitted propensity score with its information matrix."""

    X: np.ndarray
    D: np.ndarray
    w: np.ndarray
    ols_inv: np.ndarray | None
    ps: np.ndarray | None
    info_inv: np.ndarray | None


def _design_2x2(X: np.ndarray, D: np.ndarray, w: np.ndarray, method: Method) -> _Design2x2:
    w = w / w.mean()
    ols_inv = ps = info_inv = None
    if method in ("dr", "reg"):
        XtWX = X.T @ (X * (w * (1 - D))[:, None])
        if np.linalg.cond(XtWX) > 1 / np.finfo(float).eps:
            raise np.linalg.LinAlgError("singular outcome regression")
        ols_inv = np.linalg.inv(XtWX)
    if method in ("dr", "ipw"):
        ps, info = _logit(X, D, w)
        info_inv = np.linalg.inv(info)
        ps = np.minimum(ps, 1 - 1e-6)
    return _Design2x2(X=X, D=D, w=w, ols_inv=ols_inv, ps=ps, info_inv=info_inv)


def _drdid_panel(dy: np.ndarray, des: _Design2x2, method: Method) -> tuple[np.ndarray, np.ndarray]:
    """2x2 panel DiDs with covariates (DRDID formulas) for several outcomes at once.

    ``dy`` is units x cells (the outcome changes of every cell sharing this design); returns the
    ATTs (cells) and the mean-form influence functions (units x cells). Everything is linear in
    ``dy`` once the design (propensity score, comparison regression) is fixed.
    """
    X, D, w = des.X, des.D, des.w
    n = dy.shape[0]
    if des.ols_inv is not None:
        w_ols = w * (1 - D)
        beta = des.ols_inv @ (X.T @ (w_ols[:, None] * dy))
        out = X @ beta
        e_ols = w_ols[:, None] * (dy - out)  # lin_ols @ v == e_ols * (X @ ols_inv n v)

        def lin_ols(v: np.ndarray) -> np.ndarray:
            lin: np.ndarray = e_ols * (X @ (des.ols_inv @ v * n))[:, None]
            return lin

    if method == "reg":
        w_t = (w * D)[:, None]
        mt = np.mean(w_t)
        eta_t = np.mean(w_t * dy, axis=0) / mt
        eta_c = np.mean(w_t * out, axis=0) / mt
        inf_t = (w_t * dy - w_t * eta_t) / mt
        inf_c = (w_t * out - w_t * eta_c + lin_ols(X.T @ w_t[:, 0] / n)) / mt
        return eta_t - eta_c, inf_t - inf_c
    if des.ps is None or des.info_inv is None:
        raise EstimationError(f"internal: propensity score missing for method '{method}'")
    ps = des.ps
    trim = np.where(D == 0, ps < _TRIM_LEVEL, True)
    lin_ps = ((w * (D - ps))[:, None] * X) @ (des.info_inv * n)  # units x p
    w_t = (trim * w * D)[:, None]
    w_c = (trim * w * ps * (1 - D) / (1 - ps))[:, None]
    mt, mc = np.mean(w_t), np.mean(w_c)
    r = dy if method == "ipw" else dy - out
    eta_t = np.mean(w_t * r, axis=0) / mt
    eta_c = np.mean(w_c * r, axis=0) / mc
    m2 = X.T @ (w_c * (r - eta_c)) / n  # p x cells
    inf_t = (w_t * r - w_t * eta_t) / mt
    inf_c = w_c * r - w_c * eta_c + lin_ps @ m2
    if method == "dr":
        inf_t = inf_t - lin_ols(X.T @ w_t[:, 0] / n) / mt
        inf_c = inf_c - lin_ols(X.T @ w_c[:, 0] / n)
    return eta_t - eta_c, inf_t - inf_c / mc


def _ols_rep(X: np.ndarray, y: np.ndarray, wsel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted OLS fit on the rows with ``wsel > 0``: predictions for every row and the
    asymptotic linear representation of the coefficients (DRDID's ``asy.lin.rep.ols``)."""
    n = y.size
    sel = wsel > 0
    beta = _wls(X[sel], y[sel], wsel[sel])
    fitted = X @ beta
    XpX = (X * wsel[:, None]).T @ X / n
    rep = ((wsel * (y - fitted))[:, None] * X) @ np.linalg.inv(XpX)
    return fitted, rep


def _drdid_rc(
    y: np.ndarray, post: np.ndarray, D: np.ndarray, X: np.ndarray, w: np.ndarray, method: Method
) -> tuple[float, np.ndarray]:
    """One 2x2 repeated cross-section DiD with covariates (DRDID ``*_rc`` formulas)."""
    n = y.size
    w = w / w.mean()
    t1, t0 = post, 1 - post
    if method == "reg":
        out_pre, rep_pre = _ols_rep(X, y, w * (1 - D) * t0)
        out_post, rep_post = _ols_rep(X, y, w * (1 - D) * t1)
        w_tp, w_t1, w_c = w * D * t0, w * D * t1, w * D
        e_tp = np.mean(w_tp * y) / np.mean(w_tp)
        e_t1 = np.mean(w_t1 * y) / np.mean(w_t1)
        e_c = np.mean(w_c * (out_post - out_pre)) / np.mean(w_c)
        inf_t = (w_t1 * y - w_t1 * e_t1) / np.mean(w_t1) - (w_tp * y - w_tp * e_tp) / np.mean(w_tp)
        m1 = np.mean(w_c[:, None] * X, axis=0)
        inf_c = (w_c * (out_post - out_pre) - w_c * e_c + rep_post @ m1 - rep_pre @ m1) / (
            np.mean(w_c)
        )
        return float((e_t1 - e_tp) - e_c), inf_t - inf_c
    ps, info = _logit(X, D, w)
    ps = np.minimum(ps, 1 - 1e-6)
    trim = np.where(D == 0, ps < _TRIM_LEVEL, True)
    lin_ps = ((w * (D - ps))[:, None] * X) @ (np.linalg.inv(info) * n)
    w_tp = trim * w * D * t0
    w_t1 = trim * w * D * t1
    w_cp = trim * w * ps * (1 - D) * t0 / (1 - ps)
    w_c1 = trim * w * ps * (1 - D) * t1 / (1 - ps)
    if method == "ipw":
        parts = []
        for wk in (w_tp, w_t1, w_cp, w_c1):
            eta = wk * y / np.mean(wk)
            a = float(np.mean(eta))
            parts.append((a, eta - wk * a / np.mean(wk)))
        (a_tp, i_tp), (a_t1, i_t1), (a_cp, i_cp), (a_c1, i_c1) = parts
        m2_pre = np.mean((w_cp * (y - a_cp))[:, None] * X, axis=0) / np.mean(w_cp)
        m2_post = np.mean((w_c1 * (y - a_c1))[:, None] * X, axis=0) / np.mean(w_c1)
        inf_c = i_c1 - i_cp + lin_ps @ (m2_post - m2_pre)
        return float((a_t1 - a_tp) - (a_c1 - a_cp)), (i_t1 - i_tp) - inf_c
    oc_pre, rep_c_pre = _ols_rep(X, y, w * (1 - D) * t0)
    oc_post, rep_c_post = _ols_rep(X, y, w * (1 - D) * t1)
    ot_pre, rep_t_pre = _ols_rep(X, y, w * D * t0)
    ot_post, rep_t_post = _ols_rep(X, y, w * D * t1)
    oc = t1 * oc_post + t0 * oc_pre
    w_d, w_dt1, w_dt0 = trim * w * D, trim * w * D * t1, trim * w * D * t0

    def term(wk: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray]:
        eta = wk * v / np.mean(wk)
        a = float(np.mean(eta))
        return a, eta - wk * a / np.mean(wk)

    a_tp, i_tp = term(w_tp, y - oc)
    a_t1, i_t1 = term(w_t1, y - oc)
    a_cp, i_cp = term(w_cp, y - oc)
    a_c1, i_c1 = term(w_c1, y - oc)
    a_dp, i_dp = term(w_d, ot_post - oc_post)
    a_d1, i_d1 = term(w_dt1, ot_post - oc_post)
    a_dpre, i_dpre = term(w_d, ot_pre - oc_pre)
    a_d0, i_d0 = term(w_dt0, ot_pre - oc_pre)
    att = (a_t1 - a_tp) - (a_c1 - a_cp) + (a_dp - a_d1) - (a_dpre - a_d0)

    def cm(v: np.ndarray) -> np.ndarray:
        mean: np.ndarray = np.mean(v[:, None] * X, axis=0)
        return mean

    # effect of estimating the comparison outcome regressions: post minus pre (R DRDID's
    # drdid_rc adds the two; the derivative of (post - pre) gives the difference)
    inf_t_or = rep_c_post @ (-cm(w_t1 * t1) / np.mean(w_t1)) - rep_c_pre @ (
        -cm(w_tp * t0) / np.mean(w_tp)
    )
    m2_pre = cm(w_cp * (y - oc - a_cp)) / np.mean(w_cp)
    m2_post = cm(w_c1 * (y - oc - a_c1)) / np.mean(w_c1)
    inf_c_ps = lin_ps @ (m2_post - m2_pre)
    inf_c_or = rep_c_post @ (-cm(w_c1 * t1) / np.mean(w_c1)) - rep_c_pre @ (
        -cm(w_cp * t0) / np.mean(w_cp)
    )
    inf_eff = (i_dp - i_d1) - (i_dpre - i_d0)
    mom_post = cm(w_d / np.mean(w_d) - w_dt1 / np.mean(w_dt1))
    mom_pre = cm(w_d / np.mean(w_d) - w_dt0 / np.mean(w_dt0))
    inf_or = (rep_t_post - rep_c_post) @ mom_post - (rep_t_pre - rep_c_pre) @ mom_pre
    inf_t = i_t1 - i_tp + inf_t_or
    inf_c = i_c1 - i_cp + inf_c_ps + inf_c_or
    return float(att), inf_t - inf_c + inf_eff + inf_or
