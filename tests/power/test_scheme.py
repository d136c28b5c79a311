"""Power under the pilot's own allocation scheme, and what the scheme buys."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from pilotlab.data.allocation import draw_many
from pilotlab.data.load import load_panel
from pilotlab.engine import run_power
from pilotlab.estimators import EstimatorOptions, get_estimator
from pilotlab.estimators.randomised import RandomisedOptions, prepare
from pilotlab.power.scheme import _pseudo_panel, batched_hc2, scheme_power
from pilotlab.spec.load import parse_pilot
from tests.support.trial import trial_frame, trial_pilot

PERIODS = tuple(f"{y}Q{q}" for y in (2017, 2018, 2019) for q in (1, 2, 3, 4))
NONE = EstimatorOptions(estimator=RandomisedOptions(adjust="none"))


def _history(n_units: int = 60, **a):  # type: ignore[no-untyped-def]
    spec = parse_pilot({**trial_pilot(**{"start": "2021Q1", **a}), "status": "planned"})
    df = trial_frame(n_units=n_units, periods=PERIODS, n_strata=4, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_panel(spec, df, history=True), spec


@pytest.mark.parametrize(
    "kw",
    [
        {"scheme": "complete", "treated": 30},
        {"scheme": "stratified", "strata": ["region"], "treated": 24},
        {"scheme": "pairs", "treated": None, "pairs_on": ["outcome"]},
    ],
)
@pytest.mark.parametrize("adjust", ["lin", "none"])
def test_batched_hc2_equals_fitting_each_allocation(kw: dict[str, object], adjust: str) -> None:
    history, _ = _history(**kw)
    alloc = history.allocation
    opts = EstimatorOptions(estimator=RandomisedOptions(adjust=adjust))  # type: ignore[arg-type]
    codes = draw_many(alloc, 5, np.random.default_rng(1))
    start = history.n_periods - 4
    pseudo = _pseudo_panel(history, alloc.with_codes(codes[0]), start, 4)
    prep = prepare(pseudo, "outcome", opts)
    est, se, dof = batched_hc2(prep, codes[:, alloc.index_of(prep.design.labels)], prep.design.y)
    entry = get_estimator("randomised")
    for r in range(5):  # the reference fits each allocation on its own
        p = _pseudo_panel(history, alloc.with_codes(codes[r]), start, 4)
        fit = entry.fit(p, "outcome", opts, np.random.default_rng(0))
        assert est[r] == pytest.approx(fit.estimate, rel=1e-9)
        assert se[r] == pytest.approx(fit.std_error, rel=1e-9)
        assert dof[r] == pytest.approx(fit.randomised.dof, rel=1e-8)  # type: ignore[union-attr]


def test_pairing_on_a_predictive_outcome_lowers_the_mde_of_the_difference_in_means() -> None:
    history, spec = _history(scheme="pairs", treated=None, pairs_on=["outcome"])
    r = scheme_power(history, spec.assignment, "outcome", post=4, simulations=300, alpha=0.05,
                     target=0.8, seed=3, options=NONE)  # fmt: skip
    assert r.mde is not None and r.mde_comparison is not None
    assert r.mde < 0.6 * r.mde_comparison
    assert r.sentence.startswith("Pairing on outcome before the start lowers the minimum")
    assert f"{r.mde_comparison:.3g}"[:3] in r.sentence
    assert r.power[0] == pytest.approx(0.05, abs=0.05)  # size at zero effect


def test_a_complete_scheme_is_told_what_pairing_would_buy() -> None:
    history, spec = _history(scheme="complete", treated=30)
    r = scheme_power(history, spec.assignment, "outcome", post=4, simulations=300, alpha=0.05,
                     target=0.8, seed=3, options=NONE)  # fmt: skip
    assert r.comparison.startswith("pairs matched on outcome")
    assert "would lower" in r.sentence and r.mde_comparison < r.mde  # type: ignore[operator]


def test_the_simulated_mde_of_the_difference_in_means_is_close_to_the_formula() -> None:
    history, spec = _history(scheme="complete", treated=30)
    r = scheme_power(history, spec.assignment, "outcome", post=4, simulations=600, alpha=0.05,
                     target=0.8, seed=5, options=NONE)  # fmt: skip
    f = history.frame.assign(u=history.unit, t=history.time)
    ybar = f[f["t"] >= history.n_periods - 4].groupby("u")["outcome"].mean().to_numpy()
    se = np.sqrt(ybar.var(ddof=1) * (1 / 30 + 1 / 30))
    formula = (stats.t.ppf(0.975, 58) + stats.t.ppf(0.8, 58)) * se
    assert r.mde == pytest.approx(formula, rel=0.12)


def test_run_power_on_a_randomised_pilot_uses_its_scheme_and_says_what_it_buys() -> None:
    spec = parse_pilot(
        {
            **trial_pilot(start="2021Q1", scheme="stratified", strata=["region"], treated=24),
            "status": "planned",
            "design": {"power": {"post_periods": 4, "simulations": 100}},
        }
    )
    df = trial_frame(n_units=60, periods=PERIODS, n_strata=4, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_power(spec, df)
    assert res.estimator == "randomised" and res.n_treated == 24
    assert res.scheme is not None and res.scheme.scheme == "stratified"
    assert res.notes[0] == res.scheme.sentence and "Randomising within strata" in res.notes[0]
    assert res.to_dict()["scheme"]["mde"] == res.scheme.mde


def test_a_stepped_scheme_is_not_simulated_this_way() -> None:
    from pilotlab.exceptions import EstimationError

    waves = [{"start": "2021Q1", "units": 30}, {"start": "2021Q3", "units": 30}]
    history, spec = _history(scheme="stepped", treated=None, start=None, waves=waves)
    with pytest.raises(EstimationError, match="stepped"):
        scheme_power(history, spec.assignment, "outcome", post=4, simulations=50, alpha=0.05,
                     target=0.8, seed=1)  # fmt: skip
