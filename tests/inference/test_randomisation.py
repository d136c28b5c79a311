"""Randomisation inference re-drawing as the scheme drew: against brute-force loops."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from pilotlab.data.allocation import draw_many, generator
from pilotlab.estimators import EstimatorOptions, get_estimator
from pilotlab.estimators.randomised import prepare
from pilotlab.inference.apply import apply_inference
from pilotlab.inference.permutation import permutation_test
from pilotlab.inference.randomisation import (
    batched_estimates,
    conditional_allocation,
    scheme_draws,
    scheme_reassignments,
    scheme_test,
)
from tests.support.trial import trial_frame, trial_panel

ENTRY = get_estimator("randomised")
OPTS = EstimatorOptions(inference="permutation", replications=999)


def _lin_loop(prep, codes_rows: np.ndarray, y: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The estimator refitted by ordinary least squares once per allocation (a plain loop with
    explicit block dummies), the reference for the batched solve."""
    d = prep.design
    out = np.empty(codes_rows.shape[0])
    fixed = np.ones((d.n, 1)) if d.block is None else np.eye(int(d.block.max()) + 1)[d.block]
    for r, codes in enumerate(codes_rows):  # the reference loops on purpose
        D = (codes > 0).astype(float)[:, None]
        parts = [D, fixed, prep.xc]
        if prep.interact:
            parts.append(D * prep.xc)
        X = np.column_stack(parts)
        out[r] = np.linalg.lstsq(X, y, rcond=None)[0][0]
    return out


@pytest.mark.parametrize(
    "kw",
    [
        {"scheme": "complete", "treated": 12},
        {"scheme": "stratified", "strata": ["region"], "treated": 12},
        {"scheme": "pairs", "treated": None, "pairs_on": ["outcome"]},
        {"scheme": "rerandomise", "treated": 12, "balance": {"on": ["x"], "max_std_diff": 0.25}},
    ],
)
def test_batched_estimates_equal_refitting_every_allocation(kw: dict[str, object]) -> None:
    panel = trial_panel(0.4, seed=2, **kw)
    prep = prepare(panel, "outcome", EstimatorOptions())
    alloc = panel.allocation
    codes = draw_many(alloc, 60, np.random.default_rng(4))[:, prep.design.allocation_index]
    got = batched_estimates(prep, codes, prep.design.y[None, :])[:, 0, 0]
    assert np.allclose(got, _lin_loop(prep, codes, prep.design.y), rtol=1e-9, atol=1e-12)
    # and at the observed allocation the batched solve is the fit
    obs = batched_estimates(prep, prep.design.codes[None, :], prep.design.y[None, :])
    fit = ENTRY.fit(panel, "outcome", EstimatorOptions(), np.random.default_rng(0))
    assert obs[0, 0, 0] == pytest.approx(fit.estimate, rel=1e-10)


def test_monte_carlo_p_value_equals_a_brute_force_loop_over_the_same_draws() -> None:
    panel = trial_panel(0.15, seed=5, scheme="stratified", strata=["region"], treated=12)
    t = scheme_test(panel, "outcome", EstimatorOptions(), np.random.default_rng(7), 499, 0.05)
    assert not t.exact
    prep = prepare(panel, "outcome", EstimatorOptions())
    codes = draw_many(panel.allocation, 499, np.random.default_rng(7))
    b = _lin_loop(prep, codes[:, prep.design.allocation_index], prep.design.y)
    hits = np.sum(np.abs(b) >= abs(t.estimate) - 1e-12)
    assert t.p_value == pytest.approx((1 + hits) / 500, abs=1e-15)


def test_exact_p_value_over_every_allocation_equals_enumerating_by_hand() -> None:
    """12 units in 3 strata of 4, 2 treated in each: 6^3 = 216 allocations, all enumerated."""
    df = trial_frame(n_units=12, seed=3)
    panel = trial_panel(0.3, frame=df, scheme="stratified", strata=["region"], treated=6)
    t = scheme_test(panel, "outcome", EstimatorOptions(), np.random.default_rng(0), 999, 0.05)
    assert t.exact and t.n_assignments == 216
    prep = prepare(panel, "outcome", EstimatorOptions())
    alloc = panel.allocation
    members = [np.flatnonzero(alloc.stratum == s) for s in range(3)]
    rows = []
    for picks in itertools.product(*[itertools.combinations(m, 2) for m in members]):
        c = np.zeros(12, dtype=np.int64)
        c[list(itertools.chain(*picks))] = 1
        rows.append(c)
    b = _lin_loop(prep, np.array(rows)[:, prep.design.allocation_index], prep.design.y)
    assert t.p_value == pytest.approx(np.mean(np.abs(b) >= abs(t.estimate) - 1e-12), abs=1e-15)
    assert sorted(np.round(t.distribution, 10)) == sorted(np.round(b, 10))


def test_the_interval_inverts_the_test_by_brute_force() -> None:
    panel = trial_panel(0.5, seed=9, scheme="complete", treated=14)
    t = scheme_test(panel, "outcome", EstimatorOptions(), np.random.default_rng(3), 399, 0.1)
    prep = prepare(panel, "outcome", EstimatorOptions())
    codes = draw_many(panel.allocation, 399, np.random.default_rng(3))
    codes = codes[:, prep.design.allocation_index]
    d = (prep.design.codes > 0).astype(float)

    def p(tau: float) -> float:  # refit every allocation on Y - tau D (sharp null)
        y0 = prep.design.y - tau * d
        obs = _lin_loop(prep, prep.design.codes[None, :], y0 + tau * d)[0] - tau
        b = np.array([_lin_loop(prep, c[None, :], y0 + tau * (c > 0))[0] for c in codes]) - tau
        return float((1 + np.sum(np.abs(b) >= abs(obs) - 1e-12)) / 400)

    eps = 1e-4 * (t.ci_upper - t.ci_lower)
    for bound, inside in ((t.ci_lower, +1), (t.ci_upper, -1)):
        assert p(bound + inside * eps) > 0.1 >= p(bound - inside * eps)
    assert t.ci_lower < t.estimate < t.ci_upper


def test_apply_inference_reports_the_scheme_and_keeps_the_estimate() -> None:
    panel = trial_panel(0.5, seed=1, scheme="pairs", treated=None, pairs_on=["outcome"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = apply_inference(panel, "outcome", ENTRY, OPTS, np.random.default_rng(0))
    base = ENTRY.fit(panel, "outcome", EstimatorOptions(), np.random.default_rng(0))
    assert r.inference == "permutation" and r.estimate == base.estimate
    assert r.std_error == base.std_error  # CR2, kept as the descriptive standard error
    assert r.inference_details is not None and r.inference_details.path == "scheme"
    assert "re-drawn as the pairs scheme" in r.inference_details.sentence
    assert r.randomised is not None and r.randomised.arms[0].p_randomisation == r.p_value


def test_several_arms_are_each_tested_conditionally_with_holm() -> None:
    panel = trial_panel({1: 1.5, 2: 0.0}, seed=2, n_units=45, scheme="complete",
                        arms=["control", "a", "b"], treated={"a": 15, "b": 15})  # fmt: skip
    r = apply_inference(panel, "outcome", ENTRY, OPTS, np.random.default_rng(0))
    arms = r.randomised.arms  # type: ignore[union-attr]
    assert arms[0].p_randomisation is not None and arms[0].p_randomisation < 0.01
    assert arms[1].p_randomisation is not None and arms[1].p_randomisation > 0.05
    assert arms[1].p_randomisation_adjusted >= arms[1].p_randomisation  # type: ignore[operator]
    assert arms[0].ri_ci_lower < 1.5 < arms[0].ri_ci_upper  # type: ignore[operator]


def test_conditional_re_draws_leave_the_other_arms_where_they_are() -> None:
    panel = trial_panel(0.0, n_units=30, scheme="stratified", strata=["region"],
                        arms=["control", "a", "b"], treated={"a": 6, "b": 6})  # fmt: skip
    alloc = panel.allocation
    sub = conditional_allocation(alloc, 1)
    many = draw_many(sub, 200, np.random.default_rng(0))
    b_units = alloc.codes == 2
    assert np.all(many[:, b_units] == 2) and not np.any(many[:, ~b_units] == 2)
    for s in range(3):  # arm a keeps its count within each stratum
        inside = (alloc.stratum == s) & ~b_units
        assert np.all((many[:, inside] == 1).sum(axis=1) == ((alloc.codes == 1) & inside).sum())


def test_enumeration_is_used_when_every_allocation_fits_the_budget() -> None:
    df = trial_frame(n_units=8, seed=0)
    panel = trial_panel(0.0, frame=df, scheme="complete", treated=4)
    d = scheme_draws(panel.allocation, 999, np.random.default_rng(0))
    assert d.exact and d.n == math.comb(8, 4)
    assert len({r.tobytes() for r in d.codes}) == 70


def test_a_stepped_roll_out_re_draws_the_order_of_the_waves_within_strata() -> None:
    waves = [{"start": "2019Q3", "units": 12}, {"start": "2020Q1", "units": 12},
             {"start": "2020Q2", "units": 12}]  # fmt: skip
    panel = trial_panel(0.0, n_units=36, scheme="stepped", treated=None, start=None,
                        strata=["region"], waves=waves)  # fmt: skip
    re = scheme_reassignments(panel, 300, np.random.default_rng(0))
    ft = re.first_treated()
    alloc = panel.allocation
    s = alloc.stratum[alloc.index_of(panel.unit_labels)]
    for stratum in range(3):  # every re-draw keeps each stratum's wave sizes
        obs = np.sort(panel.first_treated[s == stratum])
        assert np.all(np.sort(ft[:, s == stratum], axis=1) == obs)
    assert len({r.tobytes() for r in ft}) > 250


def test_staggered_estimator_permutation_uses_the_wave_order_of_the_scheme() -> None:
    waves = [{"start": "2019Q3", "units": 8}, {"start": "2020Q1", "units": 8},
             {"start": "2020Q2", "units": 8}]  # fmt: skip
    panel = trial_panel(0.0, n_units=24, scheme="stepped", treated=None, start=None,
                        strata=["region"], waves=waves)  # fmt: skip
    entry = get_estimator("callaway_santanna")
    opts = EstimatorOptions(inference="cluster", replications=39, pretrend="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = permutation_test(panel, "outcome", entry, opts, np.random.default_rng(0))
    assert res.scheme == "stepped" and "stepped scheme" in res.sentence()
    assert 0 < res.p_value <= 1


def test_the_seeded_draw_is_reproduced_by_the_scheme_re_draws() -> None:
    panel = trial_panel(0.0, scheme="stratified", strata=["region"], treated=12)
    alloc = panel.allocation
    again = draw_many(alloc, 1, generator(alloc.seed))[0]
    assert np.array_equal(again, alloc.codes)
