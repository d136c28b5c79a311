"""Power planning with the imputation and Sun & Abraham estimators (placebo pilots in the
history): the path each takes and a power curve that rises from the test's size."""

from __future__ import annotations

import warnings

import pytest

from pilotlab.engine import run_power
from tests.support.power import history, planned


@pytest.mark.parametrize(("estimator", "path"), [("imputation", "full"), ("sun_abraham", "shift")])
def test_power_planning_runs_and_rises_with_the_effect(estimator: str, path: str) -> None:
    df = history(40, 12, rho=0.3, seed=3)
    spec = planned(
        treated=10, post_periods=3, simulations=40, effects=[0.0, 2.0],
        design={"estimator": estimator},
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_power(spec, df, n_jobs=1)
    assert res.path == path and res.failed == 0
    powers = [p.power for p in res.curve]
    assert powers[0] <= 0.2 and powers[1] >= 0.9
