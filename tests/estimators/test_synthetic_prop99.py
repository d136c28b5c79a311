"""California Proposition 99: SDID, synthetic control and DiD against the published numbers.

Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021, AER) Table 1 and the R package synthdid;
reference values in tests/support/data/README.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from pilotlab.estimators import ESTIMATORS
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.synthetic import fit_synthetic
from pilotlab.exceptions import EstimationError
from tests.support.synth_data import prop99_panel

OUTCOME = "PacksPerCapita"
ESTIMATES = {"sdid": -15.6038, "sc": -19.6197, "did": -27.3491}
# 200-draw placebo SEs fall within these ranges (README); their limits are 9.371, 10.615, 17.287
SE_RANGES = {"sdid": (8.3, 10.4), "sc": (9.2, 11.9), "did": (14.9, 19.5)}


@pytest.fixture(scope="module")
def panel():
    return prop99_panel()


@pytest.fixture(scope="module")
def results(panel):
    opts = EstimatorOptions(inference="placebo", replications=200)
    return {
        m: fit_synthetic(panel, OUTCOME, opts, np.random.default_rng(20240401), m)
        for m in ("sdid", "sc", "did")
    }


@pytest.mark.parametrize("method", ["sdid", "sc", "did"])
def test_point_estimates_match_published(results, method):
    assert results[method].estimate == pytest.approx(ESTIMATES[method], abs=1e-4)


def test_sdid_time_weights(results):
    tw = results["sdid"].synthetic.time_weights.frame
    nonzero = tw[tw["weight"] > 1e-10]
    assert list(nonzero["period"]) == ["1986", "1987", "1988"]
    np.testing.assert_allclose(nonzero["weight"].round(4), [0.3665, 0.2065, 0.4271])
    assert tw["weight"].sum() == pytest.approx(1.0)


def test_sdid_unit_weights(results):
    w = results["sdid"].synthetic.weights.frame
    top = w.head(3)
    assert list(top["unit"]) == ["Nevada", "New Hampshire", "Connecticut"]
    np.testing.assert_allclose(top["weight"].round(4), [0.1245, 0.1050, 0.0783])
    assert w["weight"].sum() == pytest.approx(1.0)
    assert (w["weight"] >= 0).all()
    assert "California" not in set(w["unit"])


def test_sc_unit_weights(results):
    w = results["sc"].synthetic.weights.frame
    top = w.head(6)
    assert list(top["unit"]) == [
        "Utah",
        "Montana",
        "Nevada",
        "Connecticut",
        "New Hampshire",
        "Colorado",
    ]
    np.testing.assert_allclose(
        top["weight"].round(4), [0.3961, 0.2323, 0.2044, 0.1045, 0.0454, 0.0133]
    )
    assert w["weight"].iloc[6:].max() < 0.005  # the rest is (almost) nothing
    assert w["weight"].sum() == pytest.approx(1.0)


def test_sc_has_no_time_weights_and_did_uniform(results):
    assert results["sc"].synthetic.time_weights is None
    w = results["did"].synthetic.weights.frame["weight"]
    np.testing.assert_allclose(w, 1 / 38)


@pytest.mark.parametrize("method", ["sdid", "sc", "did"])
def test_placebo_se_within_published_range(results, method):
    r = results[method]
    lo, hi = SE_RANGES[method]
    assert r.inference == "placebo"
    assert lo <= r.std_error <= hi
    z = 1.959963984540054
    assert r.ci_lower == pytest.approx(r.estimate - z * r.std_error)
    assert r.ci_upper == pytest.approx(r.estimate + z * r.std_error)
    assert 0 < r.p_value < 1


def test_placebo_depends_on_seed_and_is_reproducible(panel):
    opts = EstimatorOptions(inference="placebo", replications=200)
    a = fit_synthetic(panel, OUTCOME, opts, np.random.default_rng(1), "did")
    b = fit_synthetic(panel, OUTCOME, opts, np.random.default_rng(1), "did")
    c = fit_synthetic(panel, OUTCOME, opts, np.random.default_rng(2), "did")
    assert a.std_error == b.std_error
    assert a.std_error != c.std_error


def test_paths_and_event_study_agree_with_estimate(results):
    for m, r in results.items():
        paths = r.synthetic.paths.frame
        assert list(paths.columns) == ["period", "event_time", "treated", "synthetic", "gap"]
        post = paths[paths["event_time"] >= 0]
        assert post["gap"].mean() == pytest.approx(r.estimate, abs=1e-9), m
        np.testing.assert_allclose(paths["treated"] - paths["synthetic"], paths["gap"])
        ev = r.event_study_frame()
        assert ev["event_time"].min() == -19 and ev["event_time"].max() == 11
        assert ev.loc[ev["event_time"] >= 0, "estimate"].mean() == pytest.approx(r.estimate)
        assert (ev["std_error"] > 0).all()


def test_sc_rank_p_value_over_all_donors(results):
    r = results["sc"]
    table = r.synthetic.placebo.frame
    assert len(table) == 39 and table["treated"].sum() == 1
    treated = table[table["treated"]].iloc[0]
    assert treated["unit"] == "California"
    rank = int((table["rmspe_ratio"] >= treated["rmspe_ratio"]).sum())
    assert r.synthetic.rank_p_value == pytest.approx(rank / 39)
    assert r.synthetic.rank_p_value <= 0.1  # California is among the most extreme
    assert table["rmspe_ratio"].is_monotonic_decreasing


def test_sdid_placebo_table_counts_draws(results):
    table = results["sdid"].synthetic.placebo.frame
    assert table["draws"].sum() == 200
    assert table["treated"].sum() == 1
    assert table.loc[table["treated"], "estimate"].iloc[0] == pytest.approx(-15.6038, abs=1e-4)


def test_fit_quality_reported(results):
    r = results["sc"]
    assert 0 < r.synthetic.pre_rmspe < 3
    assert "tracks the pilot area to within" in r.synthetic.fit_sentence
    assert r.warnings == ()  # the published fit is good: no poor-fit warning


def test_jackknife_needs_two_treated_units(panel):
    with pytest.raises(EstimationError, match="at least two treated units"):
        fit_synthetic(
            panel, OUTCOME, EstimatorOptions(inference="jackknife"), np.random.default_rng(0)
        )


def test_registered_with_contract():
    for name in ("synthetic_did", "synthetic_control"):
        entry = ESTIMATORS[name]
        assert entry.capabilities.inference == ("placebo", "jackknife", "permutation")
        assert entry.capabilities.layouts == ("panel",)


def test_registry_fit_function(panel):
    r = ESTIMATORS["synthetic_did"].fit(
        panel,
        OUTCOME,
        EstimatorOptions(inference="placebo", replications=100),
        np.random.default_rng(3),
    )
    assert r.estimator == "synthetic_did"
    assert r.estimate == pytest.approx(-15.6038, abs=1e-4)
    assert r.n_treated_units == 1 and r.n_units == 39 and r.n_periods == 31
    assert r.nobs == 39 * 31
