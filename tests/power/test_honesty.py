"""Power that does not mislead: units drawn at random, size near alpha, no MDE when the test
over-rejects, and advice that never recommends the inference already in use."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pilotlab.engine import run_power
from pilotlab.exceptions import SpecError
from pilotlab.power import binomial_interval, over_rejection_advice
from tests.support.power import history, iid_history, planned

ALPHA = 0.05


def _band(n: int) -> float:
    return 3 * math.sqrt(ALPHA * (1 - ALPHA) / n)


@pytest.fixture(scope="module")
def null_iid():
    """100 areas, 12 years, unit + year effects and i.i.d. errors: no effect anywhere."""
    return iid_history(100, 12, 1.0, seed=5)


def _named_plan(df, n_named: int, **kw):
    units = sorted(df["area_code"].unique())[:n_named]
    return planned(treatment={"units": units, "start": "2030"}, post_periods=4, **kw)


def test_named_units_are_drawn_at_random_and_hold_size(null_iid) -> None:
    """Placebo pilots draw 10 of the 100 units at random: the permutation test's false-positive
    rate is within a binomial band of alpha and power follows the analytic curve (holding the
    10 named units fixed gave 0 false positives and about twice the analytic power)."""
    spec = _named_plan(
        null_iid,
        10,
        simulations=400,
        design={"inference": {"method": "permutation", "replications": 199}},
    )
    res = run_power(spec, null_iid, n_jobs=1)
    assert res.assignment == "random" and res.treated_units == ()
    assert res.path == "permutation"
    assert abs(res.false_positive_rate - ALPHA) < _band(400)
    assert not res.over_rejects and res.mde is not None
    lo, hi = res.false_positive_interval
    assert lo <= ALPHA <= hi
    small = next(p for p in res.curve if 0.15 < (p.analytic_power or 0) < 0.5)
    assert abs(small.power - small.analytic_power) < 3.5 * small.mc_error + 0.03
    assert any("at random from the 100 eligible units" in n for n in res.notes)


def test_conditional_power_is_labelled_and_differs(null_iid) -> None:
    """Asking for power conditional on the named units keeps them fixed and says so."""
    kw = {
        "simulations": 200,
        "design": {"inference": {"method": "permutation", "replications": 199}},
    }
    cond = run_power(_named_plan(null_iid, 10, conditional_on_units=True, **kw), null_iid)
    assert cond.assignment == "conditional" and len(cond.treated_units) == 10
    assert any("not the power of the design" in n for n in cond.notes)
    same = run_power(_named_plan(null_iid, 10, **kw), null_iid, conditional=True)
    assert same.to_dict()["table"] == cond.to_dict()["table"]
    rand = run_power(_named_plan(null_iid, 10, **kw), null_iid)
    assert rand.to_dict()["table"] != cond.to_dict()["table"]
    d = cond.to_dict()
    assert d["assignment"] == "conditional" and d["treated_units"]


def test_conditional_without_named_units_is_a_clear_error(null_iid) -> None:
    with pytest.raises(SpecError, match=r"design\.power\.conditional_on_units: .* needs the"):
        run_power(planned(treated=10, post_periods=4, conditional_on_units=True), null_iid)


def test_over_rejecting_test_claims_no_mde(null_iid) -> None:
    """Cluster-robust errors with 3 treated clusters reject far too often: no MDE, and the
    advice names another inference."""
    spec = planned(treated=3, post_periods=4, simulations=400, outcome={"mde": 0.5})
    res = run_power(spec, null_iid)
    assert res.inference == "cluster"
    lo, _ = res.false_positive_interval
    assert lo > ALPHA and res.over_rejects
    assert res.mde is None
    assert "permutation" in res.advice and "method: cluster" not in res.advice
    assert res.notes[0].startswith("No minimum detectable effect is claimed")
    assert res.to_dict()["mde"] is None and res.to_dict()["over_rejects"] is True


def test_valid_cluster_inference_keeps_its_mde() -> None:
    """Many treated clusters: cluster-robust errors hold their size and the MDE is claimed."""
    res = run_power(planned(treated=50, post_periods=4, simulations=500), history(150, 14))
    assert not res.over_rejects and res.mde is not None and res.advice == ""


@pytest.mark.parametrize("inference", ["cluster", "robust", "iid", "wild_bootstrap"])
@pytest.mark.parametrize("n_treated", [3, 10])
def test_advice_never_recommends_the_inference_in_use(inference: str, n_treated: int) -> None:
    text = over_rejection_advice(inference, "twfe", n_treated, 100, fixed=False)
    assert f"method: {inference}" not in text
    assert "method:" in text  # it does name an alternative


@pytest.mark.parametrize("inference", ["permutation", "placebo"])
def test_advice_for_exact_inference_does_not_recommend_itself(inference: str) -> None:
    text = over_rejection_advice(inference, "twfe", 4, 60, fixed=False)
    assert f"method: {inference}" not in text and "consider permutation" not in text.lower()
    assert "conditional_on_units" in over_rejection_advice(inference, "twfe", 4, 60, fixed=True)


def test_clopper_pearson_interval() -> None:
    lo, hi = binomial_interval(25, 500)
    assert lo == pytest.approx(0.03261518, abs=1e-6) and hi == pytest.approx(0.07292762, abs=1e-6)
    assert binomial_interval(0, 500)[0] == 0.0 and binomial_interval(500, 500)[1] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("method", ["wild_bootstrap", "permutation"])
def test_null_iid_size_large(method: str) -> None:
    """The same null panel with 1,500 placebo pilots, for each inference valid with 10 treated."""
    df = iid_history(100, 12, 1.0, seed=11)
    spec = _named_plan(
        df, 10, simulations=1500, design={"inference": {"method": method, "replications": 399}}
    )
    res = run_power(spec, df)
    assert abs(res.false_positive_rate - ALPHA) < _band(1500)
    assert not res.over_rejects


def test_random_draws_cover_the_eligible_units(null_iid) -> None:
    """Every eligible unit is drawn, not only the named ones (draws are uniform)."""
    from pilotlab.engine import planning_history
    from pilotlab.power import draw_placebos

    panel, _ = planning_history(_named_plan(null_iid, 10), null_iid)
    A, _ = draw_placebos(
        np.random.default_rng(0),
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_treated=10,
        post=4,
        min_pre=4,
        simulations=500,
    )
    share = A.mean(axis=0)
    assert (share > 0).all() and abs(share.mean() - 0.1) < 1e-12
