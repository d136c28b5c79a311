"""Callaway & Sant'Anna through the engine: pilot file -> evaluate -> EffectResult."""

from __future__ import annotations

import pandas as pd
import pytest

from pilotlab.engine import evaluate
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict, shared_data


def _pilot(estimator: str, comparison: str, aggregation: str = "simple"):
    return parse_pilot(
        pilot_dict(
            data={"path": "mpdta.csv", "unit": "countyreal", "time": "year"},
            treatment={"column": "first.treat", "comparison": comparison},
            outcomes=[{"column": "lemp", "primary": True}],
            design={"estimator": estimator, "callaway_santanna": {"aggregation": aggregation}},
        )
    )


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return pd.read_csv(shared_data("mpdta.csv"))


def test_explicit_estimator_reproduces_r_did(mpdta: pd.DataFrame) -> None:
    ev = evaluate(_pilot("callaway_santanna", "never_treated"), data=mpdta)
    r = ev.outcomes[0].result
    assert ev.estimator.name == "callaway_santanna"
    assert r.estimate == pytest.approx(-0.0399512752, rel=5e-6)
    assert r.std_error == pytest.approx(0.0120340128, rel=5e-4)
    assert r.pre_trend is not None and r.pre_trend.p_value_chi2 == pytest.approx(0.16812, abs=5e-6)


def test_auto_picks_callaway_santanna_on_staggered_data(mpdta: pd.DataFrame) -> None:
    ev = evaluate(_pilot("auto", "not_yet_treated", "dynamic"), data=mpdta)
    r = ev.outcomes[0].result
    assert ev.estimator.name == "callaway_santanna"
    assert r.estimate == pytest.approx(-0.0773993140, rel=5e-6)
    assert r.std_error == pytest.approx(0.0195601769, rel=5e-4)
    assert r.estimand == "ATT (dynamic aggregation)"
    assert len(r.event_study) == 7


def test_staggered_evaluation_carries_the_goodman_bacon_decomposition(
    mpdta: pd.DataFrame,
) -> None:
    ev = evaluate(_pilot("callaway_santanna", "never_treated"), data=mpdta)
    bacon = ev.diagnostics.goodman_bacon["lemp"]
    # the TWFE estimate it decomposes is the published lemp ~ treated_post | county + year
    assert bacon.twfe_estimate == pytest.approx(-0.036549, abs=5e-7)
    assert bacon.table.weight.sum() == pytest.approx(1.0)
    assert set(bacon.by_type.type) == {"treated_vs_never", "earlier_vs_later", "later_vs_earlier"}


def test_permutation_inference_refits_callaway_santanna() -> None:
    """The inference module's permutation of adoption dates works on the aggregated ATT."""
    import numpy as np

    from pilotlab.estimators import ESTIMATORS, EstimatorOptions
    from pilotlab.inference.apply import apply_inference
    from tests.support.cs import sim_panel, simulate_staggered

    df, _ = simulate_staggered(n_units=120, seed=4)
    opts = EstimatorOptions(inference="permutation", replications=99)
    r = apply_inference(
        sim_panel(df), "y", ESTIMATORS["callaway_santanna"], opts, np.random.default_rng(0)
    )
    assert r.inference == "permutation"
    assert r.p_value <= 0.02  # a large effect: no permuted assignment comes close
    assert r.ci_lower < r.estimate < r.ci_upper
