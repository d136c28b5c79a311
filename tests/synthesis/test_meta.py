"""The meta-analysis agrees with metafor's published output and with statsmodels.

References
----------
* BCG vaccine trials (``dat.bcg`` in R's metafor; Colditz et al. 1994, JAMA 271:698), log risk
  ratios. The REML, DerSimonian-Laird and Knapp-Hartung results below are those printed in
  metafor's documentation (``?rma.uni`` examples, ``rma(yi, vi, data=dat)``, ``method="DL"``,
  ``test="knha"``, and ``predict(res, transf=exp)``) and in Viechtbauer (2010), "Conducting
  meta-analyses in R with the metafor package", Journal of Statistical Software 36(3), section 3.
* Kacker (2004), Metrologia 41:132, the nine measurements of Table 1, as fitted by metafor
  (``rma(y, v, method="PM")`` and ``method="DL", test="knha"``); the printed values are those in
  statsmodels' test results (statsmodels/stats/tests/results/results_meta.py, ``exk1_metafor``
  and ``exk1_dl_hksj``).
* statsmodels.stats.meta_analysis.combine_effects, run here on the same data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.tools.sm_exceptions import InvalidTestWarning

from pilotlab.exceptions import PilotlabError
from pilotlab.synthesis import meta_analysis, subgroup_test, tau2

# dat.bcg: tpos, tneg, cpos, cneg of the 13 trials
BCG = np.array(
    [
        [4, 119, 11, 128], [6, 300, 29, 274], [3, 228, 11, 209], [62, 13536, 248, 12619],
        [33, 5036, 47, 5761], [180, 1361, 372, 1079], [8, 2537, 10, 619],
        [505, 87886, 499, 87892], [29, 7470, 45, 7232], [17, 1699, 65, 1600],
        [186, 50448, 141, 27197], [5, 2493, 3, 2338], [27, 16886, 29, 17825],
    ],
    dtype=float,
)  # fmt: skip


def _bcg() -> tuple[np.ndarray, np.ndarray]:
    a, b, c, d = BCG.T
    yi = np.log((a / (a + b)) / (c / (c + d)))  # escalc(measure="RR")
    vi = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    return yi, np.sqrt(vi)


KACKER_Y = np.array([61.00, 61.40, 62.21, 62.30, 62.34, 62.60, 62.70, 62.84, 65.90])
KACKER_V = np.array([0.2025, 1.2100, 0.0900, 0.2025, 0.3844, 0.5625, 0.0676, 0.0225, 1.8225])


def test_bcg_reml_as_printed_by_metafor() -> None:
    y, se = _bcg()
    r = meta_analysis(y, se, "reml")
    # metafor: tau^2 = 0.3132, I^2 = 92.22%, H^2 = 12.86, Q(df = 12) = 152.2330,
    # estimate -0.7145, se 0.1798, zval -3.9744, ci.lb -1.0669, ci.ub -0.3622
    assert round(r.tau2, 4) == 0.3132
    assert round(r.i2, 2) == 92.22
    assert round(r.h2, 2) == 12.86
    assert round(r.q, 4) == 152.2330 and r.q_df == 12
    assert round(r.estimate, 4) == -0.7145
    assert round(r.std_error, 4) == 0.1798
    assert round(r.z, 4) == -3.9744
    assert (round(r.ci_lower, 4), round(r.ci_upper, 4)) == (-1.0669, -0.3622)
    # predict(res, transf=exp): pred 0.4894, ci 0.3441 to 0.6962, pi 0.1546 to 1.5490
    assert round(float(np.exp(r.estimate)), 4) == 0.4894
    assert round(float(np.exp(r.ci_lower)), 4) == 0.3441
    assert round(float(np.exp(r.ci_upper)), 4) == 0.6962
    assert round(float(np.exp(r.prediction_normal_lower)), 4) == 0.1546
    assert round(float(np.exp(r.prediction_normal_upper)), 4) == 1.5490
    # fixed effect (method="FE"): -0.4303, se 0.0405, ci -0.5097 to -0.3509
    assert round(r.fixed_estimate, 4) == -0.4303
    assert round(r.fixed_std_error, 4) == 0.0405
    assert (round(r.fixed_ci_lower, 4), round(r.fixed_ci_upper, 4)) == (-0.5097, -0.3509)


def test_bcg_knapp_hartung_as_printed_by_metafor() -> None:
    y, se = _bcg()
    r = meta_analysis(y, se, "reml")
    # rma(yi, vi, data=dat, test="knha"): se 0.1808, tval(df = 12) -3.9522, pval 0.0019,
    # ci.lb -1.1084, ci.ub -0.3206
    assert round(r.hk_std_error, 4) == 0.1808 and r.hk_df == 12
    assert round(r.estimate / r.hk_std_error, 4) == -3.9522
    assert round(r.hk_p_value, 4) == 0.0019
    assert (round(r.hk_ci_lower, 4), round(r.hk_ci_upper, 4)) == (-1.1084, -0.3206)


def test_bcg_dl_as_printed_by_metafor() -> None:
    y, se = _bcg()
    r = meta_analysis(y, se, "dl")
    # rma(yi, vi, data=dat, method="DL"): tau^2 0.3088, I^2 92.12%, estimate -0.7141,
    # se 0.1787, ci -1.0644 to -0.3638
    assert round(r.tau2, 4) == 0.3088
    assert round(r.i2, 2) == 92.12
    assert round(r.estimate, 4) == -0.7141
    assert round(r.std_error, 4) == 0.1787
    assert (round(r.ci_lower, 4), round(r.ci_upper, 4)) == (-1.0644, -0.3638)


def test_kacker_pm_and_dl_hksj_as_fitted_by_metafor() -> None:
    se = np.sqrt(KACKER_V)
    pm = meta_analysis(KACKER_Y, se, "pm")
    # exk1_metafor (method="PM")
    assert_allclose(pm.tau2, 0.705395309224248, rtol=1e-9)
    assert_allclose(pm.estimate, 62.4076199113286, rtol=1e-10)
    assert_allclose(pm.std_error, 0.338030602684471, rtol=1e-8)
    assert_allclose([pm.ci_lower, pm.ci_upper], [61.7450921043947, 63.0701477182625], rtol=1e-9)
    assert_allclose(pm.q, 24.801897741835, rtol=1e-10)
    assert_allclose(pm.q_p_value, 0.00167935146372742, rtol=1e-8)
    assert_allclose(pm.i2, 83.7218626490482, rtol=1e-8)
    assert_allclose(pm.h2, 6.14320900751909, rtol=1e-8)
    dl = meta_analysis(KACKER_Y, se, "dl")
    # exk1_dl_hksj (method="DL", test="knha")
    assert_allclose(dl.tau2, 0.288049246973751, rtol=1e-10)
    assert_allclose(dl.estimate, 62.3901386044504, rtol=1e-12)
    assert_allclose(dl.hk_std_error, 0.29477605699879, rtol=1e-10)
    assert_allclose(
        [dl.hk_ci_lower, dl.hk_ci_upper], [61.710383798052, 63.0698934108488], rtol=1e-10
    )
    assert_allclose(dl.i2, 67.744403741711, rtol=1e-10)
    assert_allclose(dl.h2, 3.10023721772938, rtol=1e-10)


@pytest.mark.parametrize(("ours", "theirs"), [("dl", "dl"), ("pm", "pm")])
@pytest.mark.parametrize("data", ["bcg", "kacker"])
def test_agrees_with_statsmodels_combine_effects(ours: str, theirs: str, data: str) -> None:
    y, se = _bcg() if data == "bcg" else (KACKER_Y, np.sqrt(KACKER_V))
    r = meta_analysis(y, se, ours)  # type: ignore[arg-type]
    # statsmodels iterates Paule-Mandel to atol 1e-5 by default; ask for metafor's precision
    kw = {"atol": 1e-12} if theirs == "pm" else {}
    sm = combine_effects(y, se**2, method_re=theirs, use_t=False, **kw)
    assert_allclose(r.tau2, sm.tau2, rtol=1e-6)
    frame = sm.summary_frame()
    re = frame.loc["random effect"]
    assert_allclose([r.estimate, r.std_error], [re["eff"], re["sd_eff"]], rtol=1e-6)
    assert_allclose([r.ci_lower, r.ci_upper], [re["ci_low"], re["ci_upp"]], rtol=1e-6)
    fe = frame.loc["fixed effect"]
    assert_allclose([r.fixed_estimate, r.fixed_std_error], [fe["eff"], fe["sd_eff"]], rtol=1e-10)
    assert_allclose(r.q, sm.q, rtol=1e-10)
    assert_allclose(np.array(r.weights) / 100, sm.weights_rel_re, rtol=1e-6)
    # statsmodels' "random effect wls" row with t quantiles is the Hartung-Knapp interval
    with warnings.catch_warnings():  # about the per-study intervals, which are not compared
        warnings.simplefilter("ignore", InvalidTestWarning)
        hk = combine_effects(y, se**2, method_re=theirs, use_t=True, **kw).summary_frame()
    wls = hk.loc["random effect wls"]
    assert_allclose(r.hk_std_error, wls["sd_eff"], rtol=1e-6)
    assert_allclose([r.hk_ci_lower, r.hk_ci_upper], [wls["ci_low"], wls["ci_upp"]], rtol=1e-6)


def test_homogeneous_estimates_give_zero_tau2_for_every_method() -> None:
    y = np.array([1.0, 1.01, 0.99, 1.0])
    se = np.array([0.2, 0.3, 0.25, 0.2])
    for method in ("reml", "dl", "pm"):
        r = meta_analysis(y, se, method)  # type: ignore[arg-type]
        assert r.tau2 == 0.0 and r.i2 == 0.0
        assert_allclose(r.estimate, r.fixed_estimate)


def test_prediction_interval_uses_t_with_k_minus_2_and_is_absent_for_two() -> None:
    y, se = _bcg()
    r = meta_analysis(y, se)
    from scipy import stats

    half = stats.t.ppf(0.975, 11) * np.sqrt(r.std_error**2 + r.tau2)
    assert_allclose(
        [r.prediction_lower, r.prediction_upper], [r.estimate - half, r.estimate + half]
    )
    assert r.prediction_df == 11
    two = meta_analysis([0.1, 0.5], [0.1, 0.2])
    assert two.prediction_lower is None and two.prediction_df is None


def test_tau2_function_matches_the_full_fit() -> None:
    y, se = _bcg()
    assert tau2(y, se, "pm") == meta_analysis(y, se, "pm").tau2


def test_subgroup_test_is_q_across_group_estimates() -> None:
    t = subgroup_test([-0.2, -0.6], [0.1, 0.2])
    w = np.array([100.0, 25.0])
    mu = (w @ np.array([-0.2, -0.6])) / w.sum()
    assert_allclose(t.q_between, w @ (np.array([-0.2, -0.6]) - mu) ** 2)
    assert t.df == 1


@pytest.mark.parametrize(
    ("y", "se", "message"),
    [
        ([0.1], [0.1], "at least two"),
        ([0.1, 0.2], [0.1, 0.0], "zero or negative"),
        ([0.1, 0.2], [0.1, -1.0], "zero or negative"),
        ([0.1, float("nan")], [0.1, 0.1], "not finite"),
        ([0.1, 0.2], [0.1], "one of each"),
    ],
)
def test_bad_input_is_refused(y: list[float], se: list[float], message: str) -> None:
    with pytest.raises(PilotlabError, match=message):
        meta_analysis(y, se)
