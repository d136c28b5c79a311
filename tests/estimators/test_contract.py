"""One contract for every registered estimator, its checks chosen by the estimator's capabilities.

As scikit-learn's estimator checks follow an estimator's tags, each check here follows from what
an :class:`~pilotlab.catalogue.EstimatorEntry` declares in its
:class:`~pilotlab.catalogue.Capabilities`, never from its name: every built-in estimator and the
example third-party one (tests/support/plugin, registered in-process for each test) is tested,
and a new estimator is tested by registering it.

* every estimator: the result schema, determinism under a seed, missing outcomes left out, and
  recovery of a known constant effect over several seeds;
* ``inference``: every method it supports (itself or through :mod:`pilotlab.inference`) runs and
  gives a finite estimate inside its interval;
* ``layouts``: declared layouts are fitted, the others refused with a message naming
  ``data.layout``;
* ``covariates``: an irrelevant covariate barely moves the estimate; without the capability,
  covariates are refused naming ``design.covariates``;
* ``linear``: the exposed least-squares parts reproduce the estimate, adding ``delta`` to treated
  outcomes moves it by ``delta``, and the wild bootstrap runs; 95% coverage over 50 seeds;
* ``closed_form_permutation``: the closed-form permutation estimates equal refitting;
* ``twfe_coefficient``: the estimate and its standard error are the TWFE coefficient's;
* ``event_times``: event-time rows, sorted, with post-period rows and a zero reference;
* ``synthetic``: donor (and time) weights are non-negative and sum to one;
* ``staggered``: a staggered roll-out with growing effects, on which TWFE is far off, is
  recovered; without it, a staggered design is refused or warned about.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from pilotlab import catalogue
from pilotlab.catalogue import Capabilities, EstimatorEntry
from pilotlab.data import panel_from_frame
from pilotlab.data.panel import Panel
from pilotlab.engine import choose_estimator
from pilotlab.estimators import EstimatorOptions
from pilotlab.exceptions import EstimationError
from pilotlab.inference.apply import apply_inference, supports
from pilotlab.inference.permutation import twfe_permutation
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot
from pilotlab.spec.models import CallawaySantAnnaOptions
from tests.support import pilot_dict, plugins
from tests.support.pretest import fit_tested

#: Every estimator under test: the catalogue's and the example third-party one.
#: Estimators that compare groups within units (``groups``) need a data.group column, which
#: these generic panels lack: tests/estimators/test_triple_difference.py runs the same checks
#: on panels with eligible and ineligible groups.
ENTRIES: dict[str, EstimatorEntry] = {
    n: e for n, e in catalogue.entries().items() if not e.capabilities.groups
}
ENTRIES.setdefault(plugins.example_entry().name, plugins.example_entry())
NAMES = sorted(ENTRIES)
METHODS = ("cluster", "robust", "iid", "wild_bootstrap", "permutation", "placebo", "jackknife")
LAYOUTS = ("panel", "repeated_cross_section")


def having(test: Callable[[Capabilities], bool]) -> list[str]:
    """Names of the estimators whose capabilities pass ``test``."""
    return [n for n in NAMES if test(ENTRIES[n].capabilities)]


@pytest.fixture
def entry(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> EstimatorEntry:
    """The estimator named by the test's parameter, registered in the catalogue for the test."""
    found = ENTRIES[request.param]
    if catalogue.entries().get(found.name) is not found:
        plugins.registered(monkeypatch, found)
    return found


def each(names: list[str]) -> pytest.MarkDecorator:
    """Parametrise the ``entry`` fixture over ``names``."""
    return pytest.mark.parametrize("entry", names, indirect=True)


def _panel(
    seed: int,
    n_units: int = 40,
    n_periods: int = 12,
    n_treated: int = 8,
    effect: float = 1.5,
    rho: float = 0.3,
    start: int | list[int] = 8,
    **kw,
):
    sim = make_pilot_panel(
        n_units, n_periods, n_treated, start, effect=effect, rho=rho, seed=seed, **kw
    )
    spec = parse_pilot(pilot_dict(treatment={"adoption": sim.adoption}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(sim.data, spec), sim


def _options(entry: EstimatorEntry, **kw) -> EstimatorOptions:
    return EstimatorOptions(inference=entry.base_inference, replications=199, **kw)  # type: ignore[arg-type]


def _fit(entry: EstimatorEntry, panel: Panel, seed: int = 0, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return entry.fit(panel, "outcome", _options(entry, **kw), np.random.default_rng(seed))


# ----------------------------------------------------------------------------- every estimator
@each(NAMES)
def test_result_contract(entry: EstimatorEntry) -> None:
    panel, _ = _panel(1)
    r = _fit(entry, panel, 5)
    assert r.estimator == entry.name and r.outcome == "outcome"
    for v in (r.estimate, r.std_error, r.ci_lower, r.ci_upper, r.p_value):
        assert math.isfinite(v)
    assert r.ci_lower < r.estimate < r.ci_upper
    assert 0 <= r.p_value <= 1 and r.std_error > 0
    assert r.inference == entry.base_inference
    assert (r.n_units, r.n_treated_units, r.n_periods) == (40, 8, 12)
    tidy = r.tidy()
    assert list(tidy["estimate"]) == [r.estimate]
    assert {"estimate", "std_error", "ci_lower", "ci_upper", "p_value", "nobs"} <= set(tidy.columns)
    assert entry.title.strip() and entry.description.strip()


@each(NAMES)
def test_deterministic_under_a_seed(entry: EstimatorEntry) -> None:
    panel, _ = _panel(2)
    a, b = _fit(entry, panel, 9), _fit(entry, panel, 9)
    assert (a.estimate, a.std_error, a.ci_lower, a.ci_upper, a.p_value) == (
        b.estimate, b.std_error, b.ci_lower, b.ci_upper, b.p_value,
    )  # fmt: skip


@each(NAMES)
def test_missing_outcomes_are_left_out_not_imputed(entry: EstimatorEntry) -> None:
    panel, _ = _panel(3)
    frame = panel.frame.copy()
    frame.loc[[5, 17, 60], "outcome"] = np.nan
    holed = panel.with_frame(frame).complete("outcome")
    assert holed.nobs == panel.nobs - 3
    if entry.capabilities.synthetic:
        with pytest.raises(EstimationError):  # synthetic designs need a balanced panel
            _fit(entry, holed)
        return
    r = _fit(entry, holed)
    assert r.nobs == panel.nobs - 3 and math.isfinite(r.estimate)


@each(NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_recovers_a_known_constant_effect(entry: EstimatorEntry, seed: int) -> None:
    panel, sim = _panel(100 + seed, n_units=50, n_treated=10, effect=2.0)
    r = _fit(entry, panel, seed)
    assert abs(r.estimate - sim.att) < max(4 * r.std_error, 0.05), (r.estimate, r.std_error)
    assert abs(r.estimate - sim.att) < 1.0  # a fifth of the outcome's spread across areas


# ----------------------------------------------------------------------------- inference
@pytest.mark.parametrize(
    ("entry", "method"),
    [(n, m) for n in NAMES for m in METHODS if supports(ENTRIES[n], m)],
    indirect=["entry"],
)
def test_every_supported_inference_method_runs(entry: EstimatorEntry, method: str) -> None:
    panel, _ = _panel(4)
    reps = 39 if method == "permutation" else 99  # 39 re-assignments: p can reach 0.025
    opts = dataclasses.replace(_options(entry), inference=method, replications=reps)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = apply_inference(panel, "outcome", entry, opts, np.random.default_rng(1))
    if method in entry.capabilities.inference:  # its own (it may name its own form of it)
        assert r.inference in entry.capabilities.inference
    else:
        assert r.inference == method
    assert r.estimator == entry.name
    assert math.isfinite(r.estimate) and math.isfinite(r.p_value) and 0 <= r.p_value <= 1
    assert r.ci_lower <= r.estimate <= r.ci_upper
    assert r.estimate == pytest.approx(_fit(entry, panel, 1).estimate, rel=1e-12)


@each(NAMES)
def test_unsupported_inference_is_refused_by_name(entry: EstimatorEntry) -> None:
    from pilotlab.engine import choose_inference

    panel, _ = _panel(4)
    for method in (m for m in METHODS if not supports(entry, m)):
        with pytest.raises(EstimationError) as err:
            choose_inference(panel, entry.name, method)
        assert f"'{method}'" in str(err.value) and entry.name in str(err.value)


# ----------------------------------------------------------------------------- layouts
def _cross_section_panel() -> Panel:
    """People within 30 areas over 8 years, 5 a year in each; 8 areas treated from the fifth."""
    rng = np.random.default_rng(8)
    areas, periods, per = 30, 8, 5
    a = np.repeat(np.arange(areas), periods * per)
    t = np.tile(np.repeat(np.arange(periods), per), areas)
    y = rng.normal(0, 1, areas)[a] + 0.2 * t + 1.5 * ((a < 8) & (t >= 4)) + rng.normal(0, 1, a.size)
    spec = parse_pilot(
        pilot_dict(
            data={
                "path": "d.csv",
                "unit": "area",
                "time": "year",
                "layout": "repeated_cross_section",
            },
            treatment={"units": list(range(8)), "start": 2022},
        )
    )
    frame = pd.DataFrame({"area": a, "year": 2018 + t, "outcome": y})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(frame, spec)


@pytest.mark.parametrize("layout", LAYOUTS)
@each(NAMES)
def test_declared_layouts_are_fitted_and_the_others_refused(
    entry: EstimatorEntry, layout: str
) -> None:
    panel = _panel(5)[0] if layout == "panel" else _cross_section_panel()
    assert panel.layout == layout
    if layout in entry.capabilities.layouts:
        assert choose_estimator(panel, entry.name).name == entry.name
        r = _fit(entry, panel)
        assert math.isfinite(r.estimate) and r.ci_lower < r.estimate < r.ci_upper
        return
    with pytest.raises(EstimationError) as err:
        choose_estimator(panel, entry.name)
    msg = str(err.value)
    assert f"design.estimator: {entry.name} needs" in msg and f"data.layout is {layout}" in msg


# ----------------------------------------------------------------------------- covariates
def _with_noise_covariate(panel: Panel, seed: int = 3) -> Panel:
    frame = panel.frame.copy()
    frame["noise"] = np.random.default_rng(seed).normal(size=len(frame))
    return dataclasses.replace(panel, frame=frame, covariates=("noise",))


@each(having(lambda c: c.covariates))
def test_an_irrelevant_covariate_keeps_the_estimate_close(entry: EstimatorEntry) -> None:
    panel, _ = _panel(6)
    bare = _fit(entry, panel)
    adjusted = _fit(entry, _with_noise_covariate(panel), covariates=("noise",))
    assert adjusted.estimate != bare.estimate  # the covariate was used
    assert abs(adjusted.estimate - bare.estimate) < 0.5 * bare.std_error


@each(having(lambda c: not c.covariates))
def test_covariates_are_refused_or_reported_unused_without_the_capability(
    entry: EstimatorEntry,
) -> None:
    """Either a clear refusal naming design.covariates, or a fit that ignores them and says so
    (the estimate is the one without them, and a warning names design.covariates)."""
    panel, _ = _panel(6)
    try:
        r = _fit(entry, _with_noise_covariate(panel), covariates=("noise",))
    except EstimationError as exc:
        assert "design.covariates" in str(exc)
        return
    assert any("design.covariates" in str(w) for w in r.warnings), r.warnings
    assert r.estimate == _fit(entry, panel).estimate


# ----------------------------------------------------------------------------- linear
def _linear_parts(r) -> tuple[object, np.ndarray]:
    """The least-squares fit a linear estimator exposes and the combination ``c`` it reports."""
    assert r.linear is not None, "a linear estimator must set EffectResult.linear"
    return r.linear.fit, r.linear.contrast()


@each(having(lambda c: c.linear))
def test_linear_parts_reproduce_the_estimate(entry: EstimatorEntry) -> None:
    panel, _ = _panel(7)
    r = _fit(entry, panel)
    fit, c = _linear_parts(r)
    X, y, beta = np.asarray(fit.X), np.asarray(fit.y), np.asarray(fit.beta)
    assert np.allclose(np.linalg.lstsq(X, y, rcond=None)[0], beta, rtol=1e-8, atol=1e-10)
    assert np.allclose(fit.resid, y - X @ beta)
    assert float(c @ beta) == pytest.approx(r.estimate, rel=1e-12)
    added = r.linear.weights_variance  # estimated combination weights (Sun & Abraham's shares)
    assert float(np.sqrt(c @ fit.vcov @ c + added)) == pytest.approx(r.std_error, rel=1e-10)
    assert int(np.asarray(fit.cluster).max()) + 1 == r.n_clusters


@each(having(lambda c: c.linear))
def test_adding_delta_to_treated_outcomes_moves_the_estimate_by_delta(
    entry: EstimatorEntry,
) -> None:
    """What power planning and the sharp-null intervals rely on for a linear estimator."""
    panel, _ = _panel(7)
    frame = panel.frame.copy()
    frame["outcome"] += 0.7 * panel.treated_now
    base, moved = _fit(entry, panel), _fit(entry, panel.with_frame(frame))
    assert moved.estimate - base.estimate == pytest.approx(0.7, rel=1e-9)
    assert moved.std_error == pytest.approx(base.std_error, rel=1e-9)


@each(having(lambda c: c.linear))
def test_the_wild_bootstrap_runs_on_the_exposed_parts(entry: EstimatorEntry) -> None:
    assert supports(entry, "wild_bootstrap")
    panel, _ = _panel(7, n_treated=4)
    opts = dataclasses.replace(_options(entry), inference="wild_bootstrap", replications=199)
    r = apply_inference(panel, "outcome", entry, opts, np.random.default_rng(2))
    assert r.inference == "wild_bootstrap" and r.inference_details is not None
    assert r.inference_details.kind == "wild_bootstrap" and r.inference_details.replications == 199
    assert r.ci_lower < r.estimate < r.ci_upper and 0 < r.p_value <= 1
    assert r.estimate == pytest.approx(_fit(entry, panel).estimate, rel=1e-12)


def _coverage(entry: EstimatorEntry, seeds: range, **kw) -> tuple[float, float]:
    hits, errors = [], []
    for seed in seeds:
        panel, sim = _panel(seed, **kw)
        r = _fit(entry, panel, seed)
        hits.append(abs(r.estimate - sim.att) <= 1.96 * r.std_error)
        errors.append(r.estimate - sim.att)
    return float(np.mean(hits)), float(np.mean(errors))


@each(having(lambda c: c.linear))
def test_recovers_known_effect_across_50_seeds(entry: EstimatorEntry) -> None:
    cover, bias = _coverage(entry, range(50), n_units=60, n_treated=20)
    assert cover >= 0.86, f"{entry.name}: truth within 1.96 SE in only {cover:.0%} of 50 seeds"
    assert abs(bias) < 0.1, f"{entry.name}: mean error {bias:.3f}"


@pytest.mark.slow
@each(having(lambda c: c.linear))
def test_recovers_known_effect_across_400_seeds(entry: EstimatorEntry) -> None:
    cover, bias = _coverage(entry, range(400), n_units=100, n_treated=30, n_periods=16)
    assert 0.92 <= cover <= 0.98, f"{entry.name}: coverage {cover:.3f}"
    assert abs(bias) < 0.03


# ----------------------------------------------------------------------------- permutation
@each(having(lambda c: c.closed_form_permutation))
def test_closed_form_permutation_equals_refitting(entry: EstimatorEntry) -> None:
    panel, _ = _panel(8)
    Y = np.empty((panel.n_units, panel.n_periods))
    Y[panel.unit, panel.time] = panel.y("outcome")
    rng = np.random.default_rng(3)
    draws = np.stack([rng.permutation(panel.first_treated) for _ in range(6)])
    est, _, _, _, perm = twfe_permutation(Y, panel.first_treated, draws, exact=False)
    assert est == pytest.approx(_fit(entry, panel).estimate, rel=1e-9)
    refit = [_fit(entry, panel.with_first_treated(d)).estimate for d in draws]
    assert perm == pytest.approx(refit, rel=1e-9, abs=1e-12)


@each(having(lambda c: c.twfe_coefficient))
def test_twfe_coefficient_matches_the_dummy_variable_regression(entry: EstimatorEntry) -> None:
    """On an unbalanced, weighted panel the estimate and SE are the TWFE coefficient's."""
    sm = pytest.importorskip("statsmodels.api")
    panel, _ = _panel(4)
    rng = np.random.default_rng(0)
    keep = rng.random(panel.nobs) > 0.15
    frame = panel.frame.loc[keep].reset_index(drop=True)
    frame["_weight"] = rng.uniform(0.5, 2.0, len(frame))
    p = dataclasses.replace(panel.with_frame(frame), weighted=True)
    r = entry.fit(p, "outcome", EstimatorOptions(inference="iid"), rng)
    D = p.treated_now.astype(float)
    X = np.column_stack(
        [D, pd.get_dummies(p.unit).to_numpy(float), pd.get_dummies(p.time).to_numpy(float)[:, 1:]]
    )
    ref = sm.WLS(p.y("outcome"), X, weights=p.weight).fit()
    assert r.estimate == pytest.approx(ref.params[0], rel=1e-8)
    assert r.std_error == pytest.approx(ref.bse[0], rel=1e-6)


# ----------------------------------------------------------------------------- event times
@each(having(lambda c: c.event_times))
def test_event_time_rows(entry: EstimatorEntry) -> None:
    panel, _ = _panel(9)
    r = _fit(entry, panel)
    frame = r.event_study_frame()
    assert len(frame) >= 2
    times = frame["event_time"].tolist()
    assert times == sorted(set(times)) and max(times) >= 0 and min(times) < 0
    ref = frame[frame["reference"]]
    assert (ref["event_time"] < 0).all() and (ref["estimate"] == 0).all()
    if entry.capabilities.linear:  # a regression on event-time dummies needs one normalisation
        assert len(ref) == 1
    rest = frame[~frame["reference"]]
    assert np.isfinite(rest["estimate"]).all() and (rest["std_error"] >= 0).all()


# ----------------------------------------------------------------------------- synthetic
@each(having(lambda c: c.synthetic))
def test_synthetic_weights_are_non_negative_and_sum_to_one(entry: EstimatorEntry) -> None:
    panel, _ = _panel(10)
    r = _fit(entry, panel)
    syn = r.synthetic
    assert syn is not None and syn.weights is not None
    tables = [syn.weights] + ([syn.time_weights] if syn.time_weights is not None else [])
    for table in tables:
        w = np.asarray(table.column("weight"), dtype=float)
        assert (w >= -1e-12).all() and w.sum() == pytest.approx(1.0, abs=1e-8)
    donors = set(np.asarray(panel.unit_labels)[~panel.is_treated_unit])
    assert set(syn.weights.column("unit")) <= donors


# ----------------------------------------------------------------------------- staggered
def _staggered(seed: int) -> tuple[Panel, float]:
    """Three start cohorts, effects growing with time since the start: TWFE is far off here."""
    panel, sim = _panel(
        seed, n_units=60, n_treated=40, start=[3, 6, 9], effect=lambda e: 0.6 * e, noise_sd=0.5
    )
    assert panel.is_staggered
    return panel, sim.att


def _point(entry: EstimatorEntry, panel: Panel) -> float:
    """The point estimate, with the cheapest inference the estimator computes itself."""
    method = next(m for m in ("cluster", "jackknife", *entry.capabilities.inference)
                  if m in entry.capabilities.inference)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opts = EstimatorOptions(inference=method, replications=99)  # type: ignore[arg-type]
        return entry.fit(panel, "outcome", opts, np.random.default_rng(0)).estimate


@each(having(lambda c: c.staggered))
def test_recovers_a_heterogeneous_staggered_effect(entry: EstimatorEntry) -> None:
    errors, twfe_errors = [], []
    for seed in range(3):
        panel, att = _staggered(seed)
        errors.append(_point(entry, panel) - att)
        twfe_errors.append(_point(catalogue.get("twfe"), panel) - att)
    assert abs(np.mean(twfe_errors)) > 0.7  # the design tells staggered estimators apart
    assert abs(np.mean(errors)) < 0.3, f"{entry.name}: errors {np.round(errors, 3)}"


@each(having(lambda c: not c.staggered))
def test_without_staggered_a_staggered_design_is_refused_or_warned(entry: EstimatorEntry) -> None:
    panel, _ = _staggered(0)
    try:
        r = entry.fit(panel, "outcome", _options(entry), np.random.default_rng(0))
    except EstimationError as exc:
        assert "start" in str(exc)
        return
    assert any("different times" in str(w) for w in r.warnings), r.warnings


# ----------------------------------------------------------------------------- covariates, numbers
COV_START = 5


def _covariate_panel() -> Panel:
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


def _reference(name: str, panel: Panel) -> tuple[float, float | None]:
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


#: Estimators with an independent computation of their covariate-adjusted estimate above.
REFERENCED = ("did", "twfe", "event_study", "callaway_santanna")


@each([n for n in having(lambda c: c.covariates) if n in REFERENCED])
def test_fits_with_a_covariate_and_matches_an_independent_computation(
    entry: EstimatorEntry,
) -> None:
    panel = _covariate_panel()
    window = (COV_START, panel.n_periods - COV_START - 1)  # every event time, nothing binned
    est_ref, se_ref = _reference(entry.name, panel)
    inference = "iid" if se_ref is not None else "cluster"
    opts = EstimatorOptions(
        inference=inference,  # type: ignore[arg-type]
        covariates=("x",),
        window=window,
        callaway_santanna=CallawaySantAnnaOptions(method="reg"),
        pretrend="none",
    )
    r = entry.fit(panel, "outcome", opts, np.random.default_rng(0))
    assert r.estimate == pytest.approx(est_ref, rel=1e-9, abs=1e-12)
    if se_ref is not None:
        assert r.std_error == pytest.approx(se_ref, rel=1e-7)
    # without the covariate the estimate is a different number: the covariate was used
    bare = entry.fit(
        panel, "outcome", dataclasses.replace(opts, covariates=()), np.random.default_rng(0)
    )
    assert abs(bare.estimate - r.estimate) > 1e-6


@pytest.mark.parametrize(
    ("entry", "method"),
    [
        (n, m)
        for n in having(lambda c: c.covariates)
        for m in ("cluster", "wild_bootstrap", "permutation")
        if supports(ENTRIES[n], m)
    ],
    indirect=["entry"],
)
def test_inference_runs_with_a_covariate(entry: EstimatorEntry, method: str) -> None:
    panel = _covariate_panel()
    opts = EstimatorOptions(
        inference=method,  # type: ignore[arg-type]
        covariates=("x",),
        window=(3, 2),  # binned end points
        replications=39 if method == "permutation" else 99,
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
    if entry.capabilities.event_times and entry.capabilities.linear:
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
    real_ppf = _regression.t_ppf
    monkeypatch.setattr(_regression, "t_ppf", lambda *a, **k: calls.append(a) or real_ppf(*a, **k))
    for k in range(2000):  # e.g. every event-time coefficient of many refits
        _regression.interval(0.1 * k, 0.5, 29, 0.05)
        _regression.interval(0.1 * k, 0.5, 31, 0.05)
    assert len(calls) == 2
