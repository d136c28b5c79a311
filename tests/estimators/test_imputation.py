"""Imputation estimator (Borusyak, Jaravel & Spiess 2024) against diff-diff and pyfixest, on
generated staggered panels with known heterogeneous effects and on mpdta."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab import catalogue
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.imputation import ImputationOptions, fit_imputation, imputation_effects
from pilotlab.exceptions import EstimationError
from tests.support import shared_data
from tests.support.cs import load_via_spec
from tests.support.designs import peer_frame, staggered_panel

dd = pytest.importorskip("diff_diff")

REL = 1e-8


def _diff_diff(panel, leave_out: bool = False, covariates=None, cluster: str = "unit"):
    df = peer_frame(panel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dd.ImputationDiD(cluster=cluster, leave_one_out=leave_out).fit(
            df, "outcome", "unit", "t", "ft", covariates=covariates, aggregate="all"
        )


def _check_against(res, ref) -> None:
    agg = res.aggregations.set_index("type")
    assert agg.loc["simple", "estimate"] == pytest.approx(ref.overall_att, rel=REL)
    assert agg.loc["simple", "std_error"] == pytest.approx(ref.overall_se, rel=REL)
    dyn = res.dynamic.set_index("event_time")
    for e, row in ref.event_study_effects.items():
        if row["n_obs"] == 0:
            continue  # diff-diff's reference row
        assert dyn.loc[int(e), "estimate"] == pytest.approx(row["effect"], rel=REL)
        assert dyn.loc[int(e), "std_error"] == pytest.approx(row["se"], rel=REL)
    grp = res.group.set_index("group")
    labels = {i + 1: lab for i, lab in enumerate(res.cells.groupby("group_index").size().index)}
    assert len(grp) == len(ref.group_effects)
    for g, row in ref.group_effects.items():
        lab = res.cells.loc[res.cells["group_index"] == int(g) - 1, "group"].iloc[0]
        assert grp.loc[lab, "estimate"] == pytest.approx(row["effect"], rel=REL)
        assert grp.loc[lab, "std_error"] == pytest.approx(row["se"], rel=REL)
    del labels


@pytest.mark.parametrize("leave_out", [False, True])
def test_matches_diff_diff_on_heterogeneous_staggered_panel(leave_out: bool) -> None:
    panel, _ = staggered_panel(seed=3)
    res = imputation_effects(panel, "outcome", leave_out=leave_out)
    _check_against(res, _diff_diff(panel, leave_out=leave_out))


def test_matches_diff_diff_on_an_unbalanced_panel_with_a_covariate() -> None:
    panel, _ = staggered_panel(seed=4)
    rng = np.random.default_rng(0)
    frame = panel.frame.copy()
    frame["x"] = rng.normal(size=len(frame)) + 0.1 * frame["_time"]
    frame["outcome"] += 0.8 * frame["x"]
    keep = rng.random(len(frame)) > 0.1
    holed = panel.with_frame(frame.loc[keep].reset_index(drop=True))
    res = imputation_effects(holed, "outcome", covariates=("x",))
    _check_against(res, _diff_diff(holed, covariates=["x"]))
    bare = imputation_effects(holed, "outcome")
    assert abs(bare.aggregations["estimate"][0] - res.aggregations["estimate"][0]) > 1e-4


def test_clustered_above_units_matches_diff_diff() -> None:
    panel, _ = staggered_panel(seed=5, n_units=80, n_treated=50)
    frame = panel.frame.copy()
    frame["_cluster"] = frame["_unit"] // 4  # groups of four whole units
    p = dataclasses.replace(panel.with_frame(frame), cluster_labels=tuple(range(20)))
    res = imputation_effects(p, "outcome")
    _check_against(res, _diff_diff(p, cluster="cl"))


def test_overall_estimate_matches_pyfixest_did2s() -> None:
    """Gardner's two-stage estimator fits the same untreated model: the same overall ATT."""
    pf = pytest.importorskip("pyfixest")
    panel, _ = staggered_panel(seed=6)
    df = peer_frame(panel)
    df["treat"] = ((df["ft"] > 0) & (df["t"] >= df["ft"])).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.did2s(
            df, "outcome", first_stage="~ 0 | unit + t", second_stage="~ treat",
            treatment="treat", cluster="unit",
        )  # fmt: skip
        did2s = float(fit.coef()["treat"])
    res = imputation_effects(panel, "outcome")
    assert res.aggregations["estimate"][0] == pytest.approx(did2s, rel=REL)


def test_pretest_leads_match_an_explicit_regression_on_untreated_rows() -> None:
    """BJS Test 1: leads -1..-K on untreated observations with unit and period effects
    (pyfixest, CR1 clustered by unit)."""
    pf = pytest.importorskip("pyfixest")
    panel, _ = staggered_panel(seed=7)
    res = imputation_effects(panel, "outcome", window=(4, 3))
    df = peer_frame(panel)
    untreated = (df["ft"] == 0) | (df["t"] < df["ft"])
    d = df.loc[untreated].copy()
    names = []
    for k in range(1, 5):
        nm = f"lead{k}"
        d[nm] = ((d["ft"] > 0) & (d["t"] - d["ft"] == -k)).astype(float)
        names.append(nm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols(
            f"outcome ~ {' + '.join(names)} | unit + t", d, vcov={"CRV1": "unit"}, fixef_tol=1e-12
        )
        coef, se = fit.coef(), fit.se()
    leads = res.leads.set_index("event_time")
    for k, nm in enumerate(names, start=1):
        assert leads.loc[-k, "estimate"] == pytest.approx(float(coef[nm]), rel=1e-8)
        assert leads.loc[-k, "std_error"] == pytest.approx(float(se[nm]), rel=1e-8)
    pre = res.pre_period
    assert pre is not None and pre.event_times == (-4, -3, -2, -1)


def test_mpdta_matches_diff_diff() -> None:
    """County teen employment (Callaway & Sant'Anna 2021's mpdta, tests/support/data)."""
    mp = pd.read_csv(shared_data("mpdta.csv"))
    panel = load_via_spec(
        mp, unit="countyreal", time="year", first_treated="first.treat", outcomes=("lemp",)
    )
    res = imputation_effects(panel, "lemp")
    df = mp.rename(columns={"countyreal": "unit", "year": "t", "first.treat": "ft"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dd.ImputationDiD(cluster="unit").fit(df, "lemp", "unit", "t", "ft", aggregate="all")
    agg = res.aggregations.set_index("type")
    assert agg.loc["simple", "estimate"] == pytest.approx(ref.overall_att, rel=REL)
    assert agg.loc["simple", "std_error"] == pytest.approx(ref.overall_se, rel=REL)
    # the employment effect of the minimum wage is negative (about -0.04 log points)
    assert -0.07 < agg.loc["simple", "estimate"] < -0.02


def test_recovers_heterogeneous_effects_where_twfe_is_biased() -> None:
    errors, twfe = [], []
    opts = EstimatorOptions(pretrend="none")
    for seed in range(5):
        panel, att = staggered_panel(seed=seed, slope=0.6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            errors.append(
                fit_imputation(panel, "outcome", opts, np.random.default_rng(0)).estimate - att
            )
            twfe.append(
                catalogue.get("twfe").fit(panel, "outcome", opts, np.random.default_rng(0)).estimate
                - att
            )
    assert abs(np.mean(twfe)) > 0.7
    assert abs(np.mean(errors)) < 0.1


def _coverage(seeds: range, **kw: object) -> tuple[float, float]:
    hits, err = [], []
    for s in seeds:
        panel, att = staggered_panel(seed=1000 + s, **kw)  # type: ignore[arg-type]
        r = imputation_effects(panel, "outcome")
        est, se = r.aggregations["estimate"][0], r.aggregations["std_error"][0]
        hits.append(abs(est - att) <= 1.96 * se)
        err.append(est - att)
    return float(np.mean(hits)), float(np.mean(err))


def test_coverage_near_95_percent() -> None:
    cover, bias = _coverage(range(80), n_units=80, n_treated=50)
    # the variance is conservative under heterogeneity: at least nominal, not far above
    assert 0.88 <= cover <= 1.0, cover
    assert abs(bias) < 0.05


@pytest.mark.slow
def test_coverage_near_95_percent_long() -> None:
    cover, bias = _coverage(range(1000), n_units=100, n_treated=60, noise_sd=1.0)
    assert 0.935 <= cover <= 0.985, cover
    assert abs(bias) < 0.02


def test_headline_aggregation_option() -> None:
    panel, _ = staggered_panel(seed=8)
    res = imputation_effects(panel, "outcome")
    agg = res.aggregations.set_index("type")
    for name in ("simple", "dynamic", "group", "calendar"):
        opts = EstimatorOptions(estimator=ImputationOptions(aggregation=name), pretrend="none")
        r = fit_imputation(panel, "outcome", opts, np.random.default_rng(0))
        assert r.estimate == pytest.approx(agg.loc[name, "estimate"], rel=1e-12)
        assert r.std_error == pytest.approx(agg.loc[name, "std_error"], rel=1e-12)


def test_windows_no_cohort_reaches_are_refused_naming_the_key() -> None:
    panel, _ = staggered_panel(seed=9)
    with pytest.raises(EstimationError, match=r"design\.window\.post is 40"):
        imputation_effects(panel, "outcome", window=(2, 40))
    with pytest.raises(EstimationError, match=r"design\.window\.pre is 30"):
        imputation_effects(panel, "outcome", window=(30, 2))


def test_units_treated_throughout_are_left_out_with_a_notice() -> None:
    panel, _ = staggered_panel(seed=10)
    ft = np.asarray(panel.first_treated).copy()
    ft[0] = 0  # treated from the first period: no untreated observation to fix its effect
    res = imputation_effects(panel.with_first_treated(ft), "outcome")
    assert any(n.code == "imputation-no-untreated-period" for n in res.warnings)
    assert math.isfinite(res.aggregations["estimate"][0])


def test_weighted_estimate_matches_a_regression_with_a_dummy_per_treated_observation() -> None:
    """BJS: the imputation estimate equals the weighted regression of the outcome on unit and
    period effects plus one indicator per treated observation, averaged with the weights."""
    sm = pytest.importorskip("statsmodels.api")
    panel, _ = staggered_panel(seed=21, n_units=30, n_periods=8, n_treated=20, starts=(3, 5))
    frame = panel.frame.copy()
    w_unit = np.random.default_rng(3).uniform(0.5, 2.0, panel.n_units)
    frame["_weight"] = w_unit[frame["_unit"]]
    p = dataclasses.replace(panel.with_frame(frame), weighted=True)
    res = imputation_effects(p, "outcome")
    g = np.asarray(p.first_treated)[p.unit]
    treated = (g < 10**9) & (p.time >= np.where(g < 10**9, g, 0))
    idx = np.flatnonzero(treated)
    D = np.zeros((p.nobs, idx.size))
    D[idx, np.arange(idx.size)] = 1.0
    X = np.column_stack(
        [D, pd.get_dummies(p.unit).to_numpy(float), pd.get_dummies(p.time).to_numpy(float)[:, 1:]]
    )
    fit = sm.WLS(p.y("outcome"), X, weights=p.weight).fit()
    tau = fit.params[: idx.size]
    w = p.weight[idx]
    assert res.aggregations["estimate"][0] == pytest.approx(float(w @ tau / w.sum()), rel=1e-9)
    e = p.time[idx] - g[idx]
    dyn = res.dynamic.set_index("event_time")
    for k in np.unique(e):
        m = e == k
        expect = float(w[m] @ tau[m] / w[m].sum())
        assert dyn.loc[int(k), "estimate"] == pytest.approx(expect, rel=1e-9, abs=1e-12)
