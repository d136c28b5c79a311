"""One contract for every registered estimator: result schema, determinism, missing data, recovery.

Recovery: on simulated panels with a known effect, the estimate is within two standard errors of
the truth in (about) 95% of seeds. The default run uses 50 seeds on small panels; ``-m slow`` runs
400 seeds on larger ones.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab.data import panel_from_frame
from pilotlab.estimators import ESTIMATORS, EstimatorOptions
from pilotlab.exceptions import EstimationError
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot

from conftest import pilot_dict

NAMES = sorted(ESTIMATORS)


def _panel(
    seed: int,
    n_units: int = 40,
    n_periods: int = 12,
    n_treated: int = 8,
    effect: float = 1.5,
    rho: float = 0.3,
):
    sim = make_pilot_panel(n_units, n_periods, n_treated, 8, effect=effect, rho=rho, seed=seed)
    spec = parse_pilot(pilot_dict(treatment={"units": list(sim.treated_units), "start": sim.start}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(sim.data, spec), sim


def _options(name: str) -> EstimatorOptions:
    return EstimatorOptions(inference=ESTIMATORS[name].inference[0], replications=199)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", NAMES)
def test_result_contract(name: str) -> None:
    panel, _ = _panel(1)
    r = ESTIMATORS[name].fit(panel, "outcome", _options(name), np.random.default_rng(5))
    assert r.estimator == name and r.outcome == "outcome"
    for v in (r.estimate, r.std_error, r.ci_lower, r.ci_upper, r.p_value):
        assert math.isfinite(v)
    assert r.ci_lower < r.estimate < r.ci_upper
    assert 0 <= r.p_value <= 1 and r.std_error > 0
    assert (r.n_units, r.n_treated_units, r.n_periods) == (40, 8, 12)
    tidy = r.tidy()
    assert list(tidy["estimate"]) == [r.estimate]
    assert {"estimate", "std_error", "ci_lower", "ci_upper", "p_value", "nobs"} <= set(tidy.columns)
    if r.event_study:
        es = r.event_study_frame()
        assert es["event_time"].is_monotonic_increasing


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_a_seed(name: str) -> None:
    panel, _ = _panel(2)
    a = ESTIMATORS[name].fit(panel, "outcome", _options(name), np.random.default_rng(9))
    b = ESTIMATORS[name].fit(panel, "outcome", _options(name), np.random.default_rng(9))
    assert (a.estimate, a.std_error, a.ci_lower, a.p_value) == (
        b.estimate,
        b.std_error,
        b.ci_lower,
        b.p_value,
    )


@pytest.mark.parametrize("name", NAMES)
def test_missing_outcomes_are_left_out_not_imputed(name: str) -> None:
    panel, _ = _panel(3)
    frame = panel.frame.copy()
    frame.loc[[5, 17, 60], "outcome"] = np.nan
    holed = panel.with_frame(frame).complete("outcome")
    assert holed.nobs == panel.nobs - 3
    if panel.layout == "panel" and name in {"synthetic_control", "synthetic_did"}:
        with pytest.raises(EstimationError):  # synthetic designs need a balanced panel
            ESTIMATORS[name].fit(holed, "outcome", _options(name), np.random.default_rng(0))
        return
    r = ESTIMATORS[name].fit(holed, "outcome", _options(name), np.random.default_rng(0))
    assert r.nobs == panel.nobs - 3 and math.isfinite(r.estimate)


def _coverage(name: str, seeds: range, **kw) -> tuple[float, float]:
    hits, errors = [], []
    for seed in seeds:
        panel, sim = _panel(seed, **kw)
        r = ESTIMATORS[name].fit(panel, "outcome", _options(name), np.random.default_rng(seed))
        hits.append(abs(r.estimate - sim.att) <= 1.96 * r.std_error)
        errors.append(r.estimate - sim.att)
    return float(np.mean(hits)), float(np.mean(errors))


LINEAR = [n for n in ("did", "twfe", "event_study") if n in ESTIMATORS]


@pytest.mark.parametrize("name", LINEAR)
def test_recovers_known_effect_across_50_seeds(name: str) -> None:
    cover, bias = _coverage(name, range(50), n_units=60, n_treated=20)
    assert cover >= 0.86, f"{name}: truth within 1.96 SE in only {cover:.0%} of 50 seeds"
    assert abs(bias) < 0.1, f"{name}: mean error {bias:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("name", LINEAR)
def test_recovers_known_effect_across_400_seeds(name: str) -> None:
    cover, bias = _coverage(name, range(400), n_units=100, n_treated=30, n_periods=16)
    assert 0.92 <= cover <= 0.98, f"{name}: coverage {cover:.3f}"
    assert abs(bias) < 0.03


def test_unbalanced_panel_matches_dummy_regression() -> None:
    """Alternating projections on an unbalanced, weighted panel give the dummy-variable answer."""
    sm = pytest.importorskip("statsmodels.api")
    panel, _ = _panel(4)
    rng = np.random.default_rng(0)
    keep = rng.random(panel.nobs) > 0.15
    frame = panel.frame.loc[keep].reset_index(drop=True)
    frame["_weight"] = rng.uniform(0.5, 2.0, len(frame))
    p = panel.with_frame(frame)
    p = type(p)(**{**{k: getattr(p, k) for k in p.__dataclass_fields__}, "weighted": True})
    r = ESTIMATORS["twfe"].fit(p, "outcome", EstimatorOptions(inference="iid"), rng)
    D = p.treated_now.astype(float)
    X = np.column_stack(
        [D, pd.get_dummies(p.unit).to_numpy(float), pd.get_dummies(p.time).to_numpy(float)[:, 1:]]
    )
    ref = sm.WLS(p.y("outcome"), X, weights=p.weight).fit()
    assert r.estimate == pytest.approx(ref.params[0], rel=1e-8)
    assert r.std_error == pytest.approx(ref.bse[0], rel=1e-6)
