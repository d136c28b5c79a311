"""Power on real history: the never-treated counties of mpdta (Callaway & Sant'Anna 2021).

Log teen employment in 309 counties, 2003-2007. Placebo pilots must hold their size, and the
simulated MDE must agree with the analytic AR(1) approximation for the same placebo designs.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pilotlab.engine import run_power
from pilotlab.spec import parse_pilot
from tests.support import shared_data


@pytest.fixture(scope="module")
def never_treated() -> pd.DataFrame:
    df = pd.read_csv(shared_data("mpdta.csv"))
    return df[df["first.treat"] == 0]


@pytest.mark.parametrize(("k", "post"), [(30, 2), (60, 1), (100, 2)])
def test_mpdta_history_size_and_analytic_agreement(never_treated, k: int, post: int) -> None:
    spec = parse_pilot(
        {
            "id": "mpdta-plan",
            "title": "Minimum wage (planning)",
            "status": "planned",
            "data": {"path": "mpdta.csv", "unit": "countyreal", "time": "year"},
            "treatment": {},
            "outcomes": [{"column": "lemp"}],
            "design": {
                "estimator": "twfe",
                "power": {
                    "treated": k,
                    "post_periods": post,
                    "min_pre_periods": 2,
                    "simulations": 2000,
                },
            },
        }
    )
    res = run_power(spec, never_treated)
    assert res.path == "vectorised" and res.n_units == 309 and res.n_periods == 5
    assert abs(res.false_positive_rate - 0.05) < 3 * math.sqrt(0.05 * 0.95 / 2000)
    assert res.analytic is not None
    assert res.analytic.rho == pytest.approx(0.71, abs=0.02)  # strongly persistent outcome
    assert res.mde == pytest.approx(res.analytic.mde_simulated_design, rel=0.08)
