"""The randomised estimator: difference in means, Lin's adjustment, blocks, arms, CR2."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab.data.panel import NEVER
from pilotlab.engine import choose_estimator, choose_inference
from pilotlab.estimators import EstimatorOptions, get_estimator
from pilotlab.estimators.randomised import RandomisedOptions, holm, unit_design
from pilotlab.exceptions import EstimationError
from tests.support.trial import trial_frame, trial_panel

sm = pytest.importorskip("statsmodels.api")
ENTRY = get_estimator("randomised")


def _fit(panel, adjust: str = "lin", covariates: tuple[str, ...] = (), **kw):  # type: ignore[no-untyped-def]
    opts = EstimatorOptions(
        covariates=covariates,
        estimator=RandomisedOptions(adjust=adjust, **kw),  # type: ignore[arg-type]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ENTRY.fit(panel, "outcome", opts, np.random.default_rng(0))


def _unit_means(panel):  # type: ignore[no-untyped-def]
    """Post- and pre-period unit means computed with pandas, independently of the estimator."""
    f = panel.frame.assign(unit=panel.unit, time=panel.time)
    start = int(panel.cohorts[0])
    post = f[f["time"] >= start].groupby("unit")["outcome"].mean()
    pre = f[f["time"] < start].groupby("unit")["outcome"].mean()
    d = pd.Series(panel.first_treated != NEVER, dtype=float)
    return post.to_numpy(), pre.to_numpy(), d.to_numpy()


def test_difference_in_means_with_neyman_variance_and_welch_dof() -> None:
    panel = trial_panel(1.0, scheme="complete", treated=12)
    r = _fit(panel, adjust="none")
    y, _, d = _unit_means(panel)
    assert r.estimate == pytest.approx(y[d == 1].mean() - y[d == 0].mean(), rel=1e-12)
    n1, n0 = int(d.sum()), int((1 - d).sum())
    v = y[d == 1].var(ddof=1) / n1 + y[d == 0].var(ddof=1) / n0
    assert r.std_error == pytest.approx(math.sqrt(v), rel=1e-12)
    welch = (1 / n1 + 1 / n0) ** 2 / (1 / (n1**2 * (n1 - 1)) + 1 / (n0**2 * (n0 - 1)))
    assert r.randomised is not None and r.randomised.dof == pytest.approx(welch, rel=1e-10)
    assert r.estimand == "ATE" and r.randomised.adjustment == "none"


def test_lin_adjustment_matches_the_interacted_regression_with_hc2() -> None:
    panel = trial_panel(0.7, scheme="complete", treated=16, seed=3)
    r = _fit(panel)
    y, pre, d = _unit_means(panel)
    xc = pre - pre.mean()
    X = sm.add_constant(np.column_stack([d, xc, d * xc]))
    ref = sm.OLS(y, X).fit(cov_type="HC2")
    assert r.randomised is not None and r.randomised.adjustment == "lin"
    assert r.randomised.covariates == ("pre:outcome",)
    assert r.estimate == pytest.approx(ref.params[1], rel=1e-10)
    assert r.std_error == pytest.approx(ref.bse[1], rel=1e-10)
    # adjusting for the pre-period outcome removes most of the unit-level noise
    assert r.std_error < 0.5 * _fit(panel, adjust="none").std_error


def test_small_arms_get_additive_adjustment_and_say_so() -> None:
    panel = trial_panel(0.7, scheme="complete", treated=6, seed=3)
    r = _fit(panel)
    y, pre, d = _unit_means(panel)
    ref = sm.OLS(y, sm.add_constant(np.column_stack([d, pre]))).fit(cov_type="HC2")
    assert r.randomised is not None and r.randomised.adjustment == "additive"
    assert r.estimate == pytest.approx(ref.params[1], rel=1e-10)
    assert any(w.code == "randomised-additive-adjustment" for w in r.warnings)


def test_strata_enter_as_fixed_effects() -> None:
    panel = trial_panel(0.5, scheme="stratified", strata=["region"], treated=15, seed=4)
    r = _fit(panel, adjust="none")
    y, _, d = _unit_means(panel)
    alloc = panel.allocation
    s = alloc.stratum[alloc.index_of(panel.unit_labels)]
    S = pd.get_dummies(s).to_numpy(float)
    ref = sm.OLS(y, np.column_stack([d, S])).fit(cov_type="HC2")
    assert r.randomised is not None and r.randomised.blocks == "strata"
    assert r.randomised.n_blocks == 3
    assert r.estimate == pytest.approx(ref.params[0], rel=1e-10)
    assert r.std_error == pytest.approx(ref.bse[0], rel=1e-10)


def test_pairs_give_the_mean_of_pair_differences() -> None:
    panel = trial_panel(0.5, scheme="pairs", treated=None, pairs_on=["outcome"], seed=6)
    r = _fit(panel, adjust="none")
    y, _, d = _unit_means(panel)
    alloc = panel.allocation
    pair = alloc.stratum[alloc.index_of(panel.unit_labels)]
    diff = np.bincount(pair, weights=np.where(d == 1, y, -y))
    assert r.estimate == pytest.approx(diff.mean(), rel=1e-10)
    assert r.randomised is not None and r.randomised.blocks == "pairs"


def test_each_arm_against_control_with_holm_and_a_pooled_headline() -> None:
    panel = trial_panel({1: 2.0, 2: 0.0}, scheme="complete", arms=["control", "text", "letter"],
                        treated={"text": 12, "letter": 12}, n_units=60, seed=8)  # fmt: skip
    r = _fit(panel, adjust="none")
    y, _, _ = _unit_means(panel)
    codes = panel.allocation.codes_of(panel.unit_labels)
    t = r.randomised
    assert t is not None and [a.arm for a in t.arms] == ["text", "letter"]
    for k, arm in enumerate(t.arms, start=1):
        assert arm.estimate == pytest.approx(y[codes == k].mean() - y[codes == 0].mean(), rel=1e-10)
        assert arm.n_units == 12 and arm.n_control == 36
    assert np.allclose([a.p_adjusted for a in t.arms], holm(np.array([a.p_value for a in t.arms])))
    assert t.multiplicity == "holm" and "Holm" in t.sentence
    assert t.arms[0].p_adjusted < 0.05 < t.arms[1].p_adjusted
    pooled = y[codes > 0].mean() - y[codes == 0].mean()
    assert r.estimate == pytest.approx(pooled, rel=1e-10)


def test_holm_step_down() -> None:
    assert holm(np.array([0.01, 0.04, 0.03])).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm(np.array([0.5, 0.9])).tolist() == pytest.approx([1.0, 1.0])  # monotone
    assert holm(np.array([0.02, 0.9])).tolist() == pytest.approx([0.04, 0.9])


def test_clusters_of_units_are_respected() -> None:
    df = trial_frame(n_units=40, seed=2)
    df["district"] = df["area_code"].str[-1].map(lambda c: f"d{int(c) % 10}")
    spec_panel = trial_panel(0.0, frame=df, scheme="complete", treated=16)
    frame = spec_panel.frame
    assert spec_panel.n_clusters == 40  # the pilot file names no cluster: units are clusters
    # with clusters, CR2 over clusters (the dense reference lives in test_cr2.py)
    clustered = dataclasses.replace(
        spec_panel,
        frame=frame.assign(_cluster=np.arange(40)[spec_panel.unit] // 4),
        cluster_labels=tuple(str(i) for i in range(10)),
    )
    r1, r2 = _fit(spec_panel, adjust="none"), _fit(clustered, adjust="none")
    assert r1.estimate == pytest.approx(r2.estimate, rel=1e-12)
    assert r2.n_clusters == 10 and r1.n_clusters == 40
    assert r1.randomised is not None and r2.randomised is not None
    assert r2.randomised.dof < r1.randomised.dof


def test_a_covariate_is_adjusted_for_by_its_pre_period_mean() -> None:
    panel = trial_panel(0.0, scheme="complete", treated=16, seed=1, covariates=("x",))
    r = _fit(panel, covariates=("x",), pre_outcome=False)
    assert r.randomised is not None and r.randomised.covariates == ("x",)
    design = unit_design(panel, "outcome", EstimatorOptions(covariates=("x",)))
    assert design.x.shape == (40, 2)


def test_missing_pre_period_values_are_imputed_with_an_indicator() -> None:
    panel = trial_panel(0.0, scheme="complete", treated=16, seed=1)
    f = panel.frame.copy()
    first = panel.unit == 0
    f.loc[first & (panel.time < int(panel.cohorts[0])), "outcome"] = np.nan
    r = _fit(panel.with_frame(f).complete("outcome"))
    assert r.randomised is not None
    assert r.randomised.covariates == ("pre:outcome", "pre:outcome missing")


def test_a_stepped_roll_out_is_refused_with_the_estimator_to_use() -> None:
    waves = [{"start": "2019Q3", "units": 20}, {"start": "2020Q1", "units": 20}]
    panel = trial_panel(0.0, scheme="stepped", treated=None, start=None, waves=waves)
    with pytest.raises(EstimationError, match=r"stepped roll-out.*callaway_santanna"):
        _fit(panel)


def test_other_inference_is_refused_by_name() -> None:
    panel = trial_panel(0.0)
    with pytest.raises(EstimationError, match="'robust' is not available"):
        ENTRY.fit(panel, "outcome", EstimatorOptions(inference="robust"), np.random.default_rng(0))


def test_auto_picks_randomised_for_a_randomised_pilot_and_says_why() -> None:
    panel = trial_panel(0.0, scheme="stratified", strata=["region"], treated=12)
    est = choose_estimator(panel, "auto")
    assert est.name == "randomised" and "drawn at random" in est.reason
    inf = choose_inference(panel, "randomised", "auto")
    assert inf.name == "cluster" and "Bell" in inf.reason
    waves = [{"start": "2019Q3", "units": 20}, {"start": "2020Q1", "units": 20}]
    stepped = trial_panel(0.0, scheme="stepped", treated=None, start=None, waves=waves)
    est = choose_estimator(stepped, "auto")
    assert est.name == "callaway_santanna" and "randomised into 2 waves" in est.reason


def test_without_an_allocation_the_units_are_one_randomised_block() -> None:
    panel = trial_panel(1.0)
    bare = dataclasses.replace(panel, allocation=None)
    r, r0 = _fit(panel), _fit(bare)
    assert r.estimate == pytest.approx(r0.estimate, rel=1e-12)
    assert r0.randomised is not None and r0.randomised.scheme == "complete"


@pytest.mark.parametrize("scheme", ["complete", "stratified", "pairs"])
def test_recovers_a_known_effect_and_covers_it_over_seeds(scheme: str) -> None:
    """Fast Monte Carlo: 60 pilots, true effect 0.8; CR2-BM 95% intervals cover about 95%."""
    kw = {"complete": {"treated": 20}, "stratified": {"strata": ["region"], "treated": 20},
          "pairs": {"treated": None, "pairs_on": ["outcome"]}}[scheme]  # fmt: skip
    est, hits = [], []
    for seed in range(60):
        panel = trial_panel(0.8, seed=seed, scheme=scheme, **kw)
        r = _fit(panel)
        est.append(r.estimate)
        hits.append(r.ci_lower <= 0.8 <= r.ci_upper)
    assert abs(np.mean(est) - 0.8) < 0.05
    assert 0.85 <= np.mean(hits) <= 1.0
