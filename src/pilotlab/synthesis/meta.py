"""Random-effects meta-analysis of k estimates with known standard errors.

The model: ``y_i = mu + u_i + e_i`` with ``u_i ~ N(0, tau^2)`` (how much the true effect differs
between places) and ``e_i ~ N(0, v_i)`` (each estimate's own sampling error, ``v_i = se_i^2``).

Between-study variance ``tau^2``:

* ``reml`` (default): restricted maximum likelihood, the root of the REML score
  ``sum w_i^2 (y_i - mu)^2 = sum w_i - sum w_i^2 / sum w_i`` with ``w_i = 1/(v_i + tau^2)``
  (Viechtbauer 2005; metafor's default), truncated at zero;
* ``dl``: DerSimonian and Laird (1986), ``max(0, (Q - (k-1)) / (sum w - sum w^2 / sum w))``
  with fixed-effect weights;
* ``pm``: Paule and Mandel (1982), the ``tau^2`` at which the generalised Q statistic equals its
  expectation ``k - 1``.

Intervals for ``mu``: the usual Wald interval ``mu +- z se``; the Hartung-Knapp-Sidik-Jonkman
interval ``mu +- t_{k-1} se_HK`` with ``se_HK^2 = sum w_i (y_i - mu)^2 / ((k-1) sum w_i)``
(Hartung and Knapp 2001; Sidik and Jonkman 2002; metafor's ``test="knha"``); the prediction
interval for the effect in a new place, ``mu +- t_{k-2} sqrt(se^2 + tau^2)`` (Higgins, Thompson
and Spiegelhalter 2009), and its normal form ``mu +- z sqrt(se^2 + tau^2)`` (metafor's default).
Heterogeneity: Cochran's Q with its chi-squared p-value, ``I^2 = tau^2 / (tau^2 + s^2)`` and
``H^2 = (tau^2 + s^2) / s^2`` with the typical within-study variance
``s^2 = (k-1) sum w / ((sum w)^2 - sum w^2)`` (Higgins and Thompson 2002), as metafor reports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

from pilotlab.exceptions import PilotlabError

__all__ = ["METHODS", "MetaResult", "Method", "meta_analysis", "subgroup_test", "tau2"]

Method = Literal["reml", "dl", "pm"]
METHODS: dict[str, str] = {
    "reml": "restricted maximum likelihood (REML)",
    "dl": "DerSimonian-Laird",
    "pm": "Paule-Mandel",
}
_TOL = 1e-12


def _arrays(y: ArrayLike, se: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ya = np.asarray(y, dtype=float).ravel()
    sa = np.asarray(se, dtype=float).ravel()
    if ya.shape != sa.shape:
        raise PilotlabError(
            f"{ya.size} estimates but {sa.size} standard errors; give one of each per study"
        )
    if ya.size < 2:
        raise PilotlabError(
            f"{ya.size} estimate(s) to pool; a meta-analysis needs at least two estimates of "
            "the same metric"
        )
    if not (np.isfinite(ya).all() and np.isfinite(sa).all()):
        raise PilotlabError("an estimate or standard error is missing or not finite")
    if (sa <= 0).any():
        raise PilotlabError(
            "a standard error is zero or negative; every estimate needs a positive standard "
            "error (or a confidence interval of positive width)"
        )
    return ya, sa * sa


def _weighted(y: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    return float(np.dot(w, y) / w.sum())


def _q(y: NDArray[np.float64], v: NDArray[np.float64], t2: float) -> float:
    w = 1.0 / (v + t2)
    mu = _weighted(y, w)
    return float(np.dot(w, (y - mu) ** 2))


def _reml_score(y: NDArray[np.float64], v: NDArray[np.float64], t2: float) -> float:
    w = 1.0 / (v + t2)
    sw = w.sum()
    mu = float(np.dot(w, y) / sw)
    w2 = w * w
    return float(np.dot(w2, (y - mu) ** 2) - (sw - w2.sum() / sw))


def _bracket(f: Any, y: NDArray[np.float64], v: NDArray[np.float64]) -> float:
    hi = max(float(np.var(y)) * 2.0, float(v.max()), 1e-8)
    for _ in range(200):
        if f(hi) < 0:
            return hi
        hi *= 2.0
    raise PilotlabError("the between-study variance could not be estimated (no upper bound)")


def tau2(y: ArrayLike, se: ArrayLike, method: Method = "reml") -> float:
    """The between-study variance ``tau^2`` by ``method`` (``reml``, ``dl`` or ``pm``)."""
    ya, v = _arrays(y, se)
    k = ya.size
    if method == "dl":
        w = 1.0 / v
        q = _q(ya, v, 0.0)
        c = float(w.sum() - np.dot(w, w) / w.sum())
        return max(0.0, (q - (k - 1)) / c)
    if method == "pm":

        def f(t: float) -> float:
            return _q(ya, v, t) - (k - 1)

    elif method == "reml":

        def f(t: float) -> float:
            return _reml_score(ya, v, t)

    else:
        raise PilotlabError(f"--method: found '{method}'; allowed: reml, dl, pm")
    if f(0.0) <= 0:
        return 0.0
    root: float
    hi = _bracket(f, ya, v)
    root = optimize.brentq(f, 0.0, hi, xtol=_TOL, rtol=4 * np.finfo(float).eps)
    return float(root)


@dataclass(frozen=True)
class MetaResult:
    """One pooled analysis."""

    method: str
    k: int
    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    z: float
    p_value: float
    hk_std_error: float
    hk_ci_lower: float
    hk_ci_upper: float
    hk_df: int
    hk_p_value: float
    prediction_lower: float | None
    prediction_upper: float | None
    prediction_df: int | None
    prediction_normal_lower: float
    prediction_normal_upper: float
    tau2: float
    tau: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_p_value: float
    fixed_estimate: float
    fixed_std_error: float
    fixed_ci_lower: float
    fixed_ci_upper: float
    weights: tuple[float, ...]  # random-effects weights, percent
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (``weights`` as a list)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["weights"] = list(self.weights)
        return out


def meta_analysis(
    y: ArrayLike, se: ArrayLike, method: Method = "reml", level: float = 0.95
) -> MetaResult:
    """Pool ``y`` (standard errors ``se``) by random effects, with the fixed-effect estimate.

    Raises
    ------
    PilotlabError
        Fewer than two estimates, a missing value, or a standard error that is not positive.
    """
    ya, v = _arrays(y, se)
    k = ya.size
    t2 = tau2(ya, np.sqrt(v), method)
    z = float(stats.norm.ppf(0.5 + level / 2))
    # fixed effect
    wf = 1.0 / v
    mu_f = _weighted(ya, wf)
    se_f = math.sqrt(1.0 / wf.sum())
    q = float(np.dot(wf, (ya - mu_f) ** 2))
    # random effects
    w = 1.0 / (v + t2)
    sw = float(w.sum())
    mu = float(np.dot(w, ya) / sw)
    se_re = math.sqrt(1.0 / sw)
    zval = mu / se_re
    # Hartung-Knapp-Sidik-Jonkman
    df = k - 1
    qhk = float(np.dot(w, (ya - mu) ** 2)) / df
    se_hk = math.sqrt(qhk / sw)
    tcrit = float(stats.t.ppf(0.5 + level / 2, df))
    hk_p = float(2 * stats.t.sf(abs(mu / se_hk), df)) if se_hk > 0 else 0.0
    # prediction interval for a new place
    spred = math.sqrt(se_re**2 + t2)
    if k >= 3:
        tp = float(stats.t.ppf(0.5 + level / 2, k - 2))
        pl: float | None = mu - tp * spred
        pu: float | None = mu + tp * spred
        pdf: int | None = k - 2
    else:
        pl = pu = pdf = None
    # heterogeneity
    s2 = float((k - 1) * wf.sum() / (wf.sum() ** 2 - float(np.dot(wf, wf))))
    i2 = 100.0 * t2 / (t2 + s2)
    h2 = (t2 + s2) / s2
    return MetaResult(
        method=method,
        k=k,
        estimate=mu,
        std_error=se_re,
        ci_lower=mu - z * se_re,
        ci_upper=mu + z * se_re,
        z=zval,
        p_value=float(2 * stats.norm.sf(abs(zval))),
        hk_std_error=se_hk,
        hk_ci_lower=mu - tcrit * se_hk,
        hk_ci_upper=mu + tcrit * se_hk,
        hk_df=df,
        hk_p_value=hk_p,
        prediction_lower=pl,
        prediction_upper=pu,
        prediction_df=pdf,
        prediction_normal_lower=mu - z * spred,
        prediction_normal_upper=mu + z * spred,
        tau2=t2,
        tau=math.sqrt(t2),
        i2=i2,
        h2=h2,
        q=q,
        q_df=df,
        q_p_value=float(stats.chi2.sf(q, df)),
        fixed_estimate=mu_f,
        fixed_std_error=se_f,
        fixed_ci_lower=mu_f - z * se_f,
        fixed_ci_upper=mu_f + z * se_f,
        weights=tuple((100.0 * w / sw).tolist()),
        level=level,
    )


@dataclass(frozen=True)
class SubgroupTest:
    """Test of difference between subgroups (random effects, a separate ``tau^2`` per group)."""

    q_between: float
    df: int
    p_value: float


def subgroup_test(estimates: ArrayLike, std_errors: ArrayLike) -> SubgroupTest:
    """Cochran's Q across subgroup estimates (each pooled within its group), chi-squared with
    ``groups - 1`` degrees of freedom (Borenstein et al. 2009, ch. 19; the Cochrane Handbook's
    test for subgroup differences)."""
    ya = np.asarray(estimates, dtype=float)
    v = np.asarray(std_errors, dtype=float) ** 2
    w = 1.0 / v
    mu = _weighted(ya, w)
    qb = float(np.dot(w, (ya - mu) ** 2))
    df = ya.size - 1
    return SubgroupTest(qb, df, float(stats.chi2.sf(qb, df)))
