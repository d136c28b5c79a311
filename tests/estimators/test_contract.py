"""One contract for every registered estimator: result schema, determinism, missing data, recovery.

Recovery: on simulated panels with a known effect, the estimate is within two standard errors of
the truth in (about) 95% of seeds. The default run uses 50 seeds on small panels; ``-m slow`` runs
400 seeds on larger ones.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab.data import panel_from_frame
from pilotlab.estimators import ESTIMATORS, EstimatorOptions
from pilotlab.exceptions import EstimationError
from pilotlab.inference.apply import supports
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot
from pilotlab.spec.models import CallawaySantAnnaOptions
from tests.support import pilot_dict
from tests.support.pretest import fit_tested

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
    return EstimatorOptions(inference=ESTIMATORS[name].capabilities.inference[0], replications=199)  # type: ignore[arg-type]


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


# ----------------------------------------------------------------------------- covariates
COVARIATE_ESTIMATORS = [
    n for n in ("did", "twfe", "event_study", "callaway_santanna") if n in ESTIMATORS
]
COV_START = 5


def _covariate_panel():
    """30 units x 8 periods, 8 treated from period 5, outcome shifted by 0.8 x a covariate."""
    sim = make_pilot_panel(30, 8, 8, COV_START, effect=1.5, seed=11)
    frame = sim.data.copy()
    frame["x"] = np.random.default_rng(3).normal(size=len(frame))
    frame["outcome"] += 0.8 * frame["x"]
    spec = parse_pilot(
        pilot_dict(
            treatment={"units": list(sim.treated_units), "start": sim.start},
            design={"covariates": ["x"]},
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(frame, spec)


def _dummies(codes: np.ndarray, drop_first: bool) -> np.ndarray:
    d = pd.get_dummies(codes).to_numpy(float)
    return d[:, 1:] if drop_first else d


def _reference(name: str, panel) -> tuple[float, float | None]:
    """The estimate (and iid standard error where it is a regression coefficient or combination)
    computed independently: statsmodels OLS with dummies, or per-cell OLS for Callaway-Sant'Anna."""
    sm = pytest.importorskip("statsmodels.api")
    y, x = panel.y("outcome"), panel.frame["x"].to_numpy(float)
    treated = panel.is_treated_unit[panel.unit].astype(float)
    fe = np.column_stack([_dummies(panel.unit, False), _dummies(panel.time, True)])
    if name == "did":
        post = (panel.time >= COV_START).astype(float)
        X = sm.add_constant(np.column_stack([treated, post, treated * post, x]))
        ref = sm.OLS(y, X).fit()
        return float(ref.params[3]), float(ref.bse[3])
    if name == "twfe":
        ref = sm.OLS(y, np.column_stack([panel.treated_now.astype(float), x, fe])).fit()
        return float(ref.params[0]), float(ref.bse[0])
    if name == "event_study":
        # every event time its own dummy (the window is not binned here), reference period -1
        e = np.where(treated > 0, panel.time - COV_START, -1)
        times = [k for k in range(-COV_START, panel.n_periods - COV_START) if k != -1]
        D = np.column_stack([(e == k).astype(float) for k in times])
        ref = sm.OLS(y, np.column_stack([D, x, fe])).fit()
        post = np.array([k >= 0 for k in times])
        w = np.where(post, D.sum(axis=0), 0.0)
        c = np.zeros(ref.params.size)
        c[: len(times)] = w / w.sum()
        return float(c @ ref.params), float(np.sqrt(c @ ref.cov_params() @ c))
    # callaway_santanna, outcome regression: per post period t, OLS of the change since the base
    # period g - 1 on the base-period covariate among never-treated units; simple aggregation.
    Y = np.empty((panel.n_units, panel.n_periods))
    Y[panel.unit, panel.time] = y
    Xc = np.empty_like(Y)
    Xc[panel.unit, panel.time] = x
    tr = panel.is_treated_unit
    base = COV_START - 1
    atts = []
    for t in range(COV_START, panel.n_periods):
        dy = Y[:, t] - Y[:, base]
        m = sm.OLS(dy[~tr], sm.add_constant(Xc[~tr, base])).fit()
        atts.append(float(np.mean(dy[tr] - m.predict(sm.add_constant(Xc[tr, base])))))
    return float(np.mean(atts)), None


@pytest.mark.parametrize("name", COVARIATE_ESTIMATORS)
def test_fits_with_a_covariate_and_matches_an_independent_computation(name: str) -> None:
    panel = _covariate_panel()
    window = (COV_START, panel.n_periods - COV_START - 1)  # every event time, nothing binned
    est_ref, se_ref = _reference(name, panel)
    inference = "iid" if se_ref is not None else "cluster"
    opts = EstimatorOptions(
        inference=inference,  # type: ignore[arg-type]
        covariates=("x",),
        window=window,
        callaway_santanna=CallawaySantAnnaOptions(method="reg"),
        pretrend="none",
    )
    r = ESTIMATORS[name].fit(panel, "outcome", opts, np.random.default_rng(0))
    assert r.estimate == pytest.approx(est_ref, rel=1e-9, abs=1e-12)
    if se_ref is not None:
        assert r.std_error == pytest.approx(se_ref, rel=1e-7)
    # without the covariate the estimate is a different number: the covariate was used
    bare = ESTIMATORS[name].fit(
        panel, "outcome", dataclasses.replace(opts, covariates=()), np.random.default_rng(0)
    )
    assert abs(bare.estimate - r.estimate) > 1e-6


@pytest.mark.parametrize(
    ("name", "method"),
    [
        (n, m)
        for n in COVARIATE_ESTIMATORS
        for m in ("cluster", "wild_bootstrap", "permutation")
        if supports(ESTIMATORS[n], m)  # Callaway-Sant'Anna offers no wild bootstrap
    ],
)
def test_inference_runs_with_a_covariate(name: str, method: str) -> None:
    entry = ESTIMATORS[name]
    panel = _covariate_panel()
    opts = EstimatorOptions(
        inference=method,  # type: ignore[arg-type]
        covariates=("x",),
        window=(3, 2),  # binned end points
        replications=99,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit_tested(entry, panel, "outcome", opts, np.random.default_rng(1))
        plain = entry.fit(
            panel, "outcome", dataclasses.replace(opts, inference="cluster", pretrend="none"),
            np.random.default_rng(1),
        )  # fmt: skip
    assert r.inference == method
    assert r.estimate == pytest.approx(plain.estimate, rel=1e-12)
    assert math.isfinite(r.p_value) and 0 <= r.p_value <= 1
    assert r.ci_lower < r.estimate < r.ci_upper
    if name == "event_study":
        assert r.pre_trend is not None and math.isfinite(r.pre_trend.p_value)


def test_t_interval_same_numbers_with_one_quantile_per_df_and_alpha(monkeypatch) -> None:
    from scipy import stats

    from pilotlab.estimators import _regression

    rng = np.random.default_rng(0)
    cases = [
        (float(rng.normal() * s), float(rng.uniform(0.01, 3.0)), int(df), float(a))
        for s, df, a in zip(
            rng.choice([1e-3, 1.0, 100.0], 300),
            rng.integers(1, 5000, 300),
            rng.choice([0.01, 0.05, 0.1, 0.2], 300),
            strict=True,
        )
    ]
    for est, se, df, a in cases:  # the numbers scipy.stats gives, to the last bit
        q = float(stats.t.ppf(1 - a / 2, df))
        p = float(2 * stats.t.sf(abs(est / se), df))
        assert _regression.interval(est, se, df, a) == (est - q * se, est + q * se, p)
    _regression.t_quantile.cache_clear()
    calls = []
    real_ppf = stats.t.ppf
    monkeypatch.setattr(stats.t, "ppf", lambda *a, **k: calls.append(a) or real_ppf(*a, **k))
    for k in range(2000):  # e.g. every event-time coefficient of many refits
        _regression.interval(0.1 * k, 0.5, 29, 0.05)
        _regression.interval(0.1 * k, 0.5, 31, 0.05)
    assert len(calls) == 2
