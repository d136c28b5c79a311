"""Placebo-pilot power: paths agree with the pilot's estimator, size, known power, seeds, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from pilotlab.data import load_panel
from pilotlab.data.panel import NEVER
from pilotlab.engine import estimator_options, planning_history, run_power
from pilotlab.estimators import get_estimator
from pilotlab.exceptions import DataError, SpecError
from pilotlab.power import draw_placebos, mde_from_curve, placebo_panel, simulate_placebos
from pilotlab.spec import parse_pilot
from tests.support.power import history, iid_history, planned


@pytest.fixture(scope="module")
def hist_df():
    return history(60, 20, rho=0.5, seed=2)


def _draws(panel, k=8, post=4, min_pre=4, R=25, seed=1, fixed=None):
    return draw_placebos(
        np.random.default_rng(seed),
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_treated=k,
        post=post,
        min_pre=min_pre,
        simulations=R,
        fixed=fixed,
    )


def test_draws_have_the_planned_size_and_valid_starts(hist_df) -> None:
    panel, _ = planning_history(planned(treated=8), hist_df)
    A, starts = _draws(panel, k=7, post=5, min_pre=3, R=500)
    assert (A.sum(axis=1) == 7).all()
    assert starts.min() >= 3 and starts.max() <= panel.n_periods - 5
    assert len(set(starts.tolist())) == panel.n_periods - 5 - 3 + 1  # every start is used
    A, _ = _draws(panel, fixed=np.array([1, 5, 9]))
    assert (A[:, [1, 5, 9]]).all() and A.sum() == 3 * A.shape[0]


@pytest.mark.parametrize("inference", ["cluster", "robust", "iid"])
@pytest.mark.parametrize("coarse", [False, True])
def test_vectorised_path_equals_the_estimator(hist_df, inference: str, coarse: bool) -> None:
    """Estimates and SEs of many placebos at once equal fit_twfe on each placebo panel."""
    df = hist_df.copy()
    spec = planned(treated=8)
    if coarse:  # clusters of 3 units: scores summed within clusters
        df["region"] = df["area_code"].str[1:].astype(int) // 3
        spec = parse_pilot(
            {**spec.model_dump(), "data": {**spec.data.model_dump(), "cluster": "region"}}
        )
    panel, _ = planning_history(spec, df)
    opts = estimator_options(spec, inference)
    A, starts = _draws(panel)
    effects = np.array([0.0, 0.3, 1.0])
    rej, failed, path, ests = simulate_placebos(
        panel, "outcome", "twfe", opts, A, starts, 4, effects, seed_seq=np.random.SeedSequence(0)
    )
    assert path == "vectorised" and failed == 0
    fit = get_estimator("twfe").fit
    for r in range(5):
        res = fit(placebo_panel(panel, A[r], int(starts[r]), 4), "outcome", opts, None)
        assert ests[r, 0] == pytest.approx(res.estimate, rel=1e-9, abs=1e-12)
        assert ests[r, 1] == pytest.approx(res.std_error, rel=1e-9)
        assert ests[r, 2] == res.linear.fit.df_resid
        assert bool(rej[r, 0]) == (res.p_value < 0.05)


def test_shift_full_and_parallel_paths_agree(hist_df) -> None:
    """Injecting y + delta*D and refitting gives the same decisions as shifting the estimate."""
    spec = planned(treated=8)
    panel, _ = planning_history(spec, hist_df)
    opts = estimator_options(spec, "cluster")
    A, starts = _draws(panel, R=8)
    effects = np.array([0.0, 0.4, 0.8, 1.6])
    ss = np.random.SeedSequence(4)
    vec = simulate_placebos(panel, "outcome", "twfe", opts, A, starts, 4, effects, seed_seq=ss)
    shift = simulate_placebos(
        panel, "outcome", "twfe", opts, A, starts, 4, effects, seed_seq=ss, force_path="shift"
    )
    full1 = simulate_placebos(
        panel, "outcome", "twfe", opts, A, starts, 4, effects, seed_seq=ss, force_path="full"
    )
    full2 = simulate_placebos(
        panel,
        "outcome",
        "twfe",
        opts,
        A,
        starts,
        4,
        effects,
        seed_seq=ss,
        force_path="full",
        n_jobs=2,
    )
    np.testing.assert_array_equal(vec[0], shift[0])
    np.testing.assert_array_equal(vec[0], full1[0])
    np.testing.assert_array_equal(full1[0], full2[0])
    np.testing.assert_allclose(vec[3], shift[3], rtol=1e-9)
    assert 0 < vec[0][:, 1:].sum() < vec[0][:, 1:].size  # decisions vary: the test can fail


@pytest.mark.parametrize("estimator", ["twfe", pytest.param("event_study", marks=pytest.mark.slow)])
def test_wild_path_equals_refitting_each_injected_outcome(hist_df, estimator: str) -> None:
    """One bootstrap per placebo gives the same decisions as the engine's apply_inference on
    every y + delta*D (same random streams)."""
    spec = planned(treated=8, design={"inference": {"replications": 199}})
    panel, _ = planning_history(spec, hist_df)
    opts = estimator_options(spec, "wild_bootstrap")
    A, starts = _draws(panel, R=6)
    effects = np.array([0.0, 0.5, 1.0, 2.0])
    ss = np.random.SeedSequence(9)
    wild = simulate_placebos(panel, "outcome", estimator, opts, A, starts, 4, effects, seed_seq=ss)
    full = simulate_placebos(
        panel, "outcome", estimator, opts, A, starts, 4, effects, seed_seq=ss, force_path="full"
    )
    assert wild[2] == "wild" and full[2] == "full"
    np.testing.assert_array_equal(wild[0], full[0])
    assert wild[0][:, -1].sum() > wild[0][:, 0].sum()  # larger effects are detected more


def test_permutation_inference_runs_through_the_permutation_path(hist_df) -> None:
    spec = planned(
        treated=8,
        post_periods=3,
        simulations=20,
        effects=[0.0, 1.5],
        design={"inference": {"method": "permutation", "replications": 199}},
    )
    res = run_power(spec, hist_df, n_jobs=2)
    assert res.path == "permutation" and res.inference == "permutation"
    assert res.curve[-1].power > res.curve[0].power


def test_event_study_and_did_use_the_shift_path(hist_df) -> None:
    for est in ("event_study", "did"):
        spec = planned(treated=10, post_periods=3, simulations=20, design={"estimator": est})
        res = run_power(spec, hist_df, n_jobs=1)
        assert res.path == "shift" and res.estimator == est
        assert res.curve[0].effect == 0.0


def test_false_positive_rate_near_alpha_with_many_clusters() -> None:
    """Many (treated) clusters: cluster-robust size is within Monte Carlo error of 5%."""
    df = history(300, 24, rho=0.5, seed=8)
    res = run_power(planned(treated=100, post_periods=6, simulations=2000), df)
    se = math.sqrt(0.05 * 0.95 / 2000)
    assert res.path == "vectorised"
    assert abs(res.false_positive_rate - 0.05) < 3 * se
    assert res.false_positive_mc_error == pytest.approx(se)


def test_simulated_power_matches_known_power_on_iid_design() -> None:
    """i.i.d. normal errors, balanced, one start: power = Phi(d/se - z) + Phi(-d/se - z)."""
    J, T, post, k, sigma = 400, 12, 4, 100, 1.0
    df = iid_history(J, T, sigma, seed=21)
    se = sigma * math.sqrt((1 / (T - post) + 1 / post) * (1 / k + 1 / (J - k)))
    z = stats.norm.ppf(0.975)
    effects = [0.5 * 2.8 * se, 2.8 * se]
    spec = planned(
        treated=k, post_periods=post, min_pre_periods=T - post, simulations=1500, effects=effects
    )
    res = run_power(spec, df)
    R = res.simulations
    for p in res.curve:
        truth = stats.norm.cdf(p.effect / se - z) + stats.norm.cdf(-p.effect / se - z)
        assert abs(p.power - truth) < 3.5 * math.sqrt(truth * (1 - truth) / R), (p, truth)
        assert p.analytic_power == pytest.approx(truth, abs=0.02)
    assert res.mde == pytest.approx(2.8 * se, rel=0.1)


def test_same_seed_same_result_other_seed_differs(hist_df) -> None:
    a = run_power(planned(treated=6, simulations=100), hist_df, post=4).to_dict()
    b = run_power(planned(treated=6, simulations=100), hist_df, post=4).to_dict()
    c = run_power(planned(treated=6, simulations=100, seed=99), hist_df, post=4).to_dict()
    for d in (a, b, c):
        d.pop("elapsed_seconds")
    assert a == b
    assert a["table"] != c["table"]


def test_tradeoff_grid_and_declared_mde(hist_df) -> None:
    res = run_power(
        planned(
            treated=6,
            simulations=150,
            outcome={"mde": 1.0},
            # valid with 3 treated units too (cluster-robust errors over-reject there)
            design={"inference": {"method": "permutation", "replications": 199}},
        ),
        hist_df,
        treated=[3, 12],
        post=[2, 6],
    )
    cells = {(c.n_treated, c.post_periods): c for c in res.tradeoff}
    assert set(cells) == {(3, 2), (3, 6), (12, 2), (12, 6)}
    assert cells[(12, 6)].mde < cells[(3, 2)].mde  # more units and longer pilots detect less
    assert cells[(12, 6)].analytic_mde < cells[(3, 2)].analytic_mde
    assert res.n_treated == 6 and res.declared_mde == 1.0
    assert 0 <= res.power_at_declared_mde <= 1
    d = res.to_dict()
    assert {"mde", "target_power", "alpha", "false_positive_rate", "table", "tradeoff"} <= set(d)


def test_mde_interpolates_the_curve() -> None:
    e = np.array([0.0, 1.0, 2.0, 3.0])
    assert mde_from_curve(e, np.array([0.05, 0.5, 0.9, 1.0]), 0.8) == pytest.approx(1.75)
    assert mde_from_curve(e, np.array([0.05, 0.2, 0.3, 0.4]), 0.8) is None


def test_planned_units_give_the_number_and_start_may_be_after_the_data(hist_df) -> None:
    """Named units set how many are treated; placebo pilots draw that many at random unless
    power conditional on the named units is asked for."""
    units = sorted(hist_df["area_code"].unique())[:5]
    spec = planned(treatment={"units": units, "start": "2030Q1"}, post_periods=4, simulations=40)
    panel = load_panel(spec, hist_df, history=True)
    assert (panel.first_treated == NEVER).all() and panel.n_units == 60
    res = run_power(spec, hist_df)
    assert res.treated_units == () and res.n_treated == 5 and res.assignment == "random"
    cond = run_power(spec, hist_df, conditional=True)
    assert cond.treated_units == tuple(units) and cond.assignment == "conditional"
    assert any("differs only in its start date" in n for n in cond.notes)


def test_history_before_a_real_start_is_used(hist_df) -> None:
    spec = planned(treatment={"units": ["A0001", "A0002"], "start": "2021Q1"}, post_periods=2)
    panel, _ = planning_history(spec, hist_df)
    assert panel.period_labels[-1] == "2020Q4" and (panel.first_treated == NEVER).all()


def test_planned_pilot_without_treatment_needs_power_treated() -> None:
    with pytest.raises(SpecError, match=r"treatment: no treatment given.*design\.power\.treated"):
        planned()
    spec = planned(treated=4)
    assert spec.treatment.form == "planned"
    raw = spec.model_dump()
    raw["status"] = "live"
    with pytest.raises(SpecError, match="treatment: no treatment given"):
        parse_pilot(raw)


def test_loading_a_planned_pilot_for_estimation_is_a_clear_error(hist_df) -> None:
    with pytest.raises(DataError, match=r"names no treated units yet.*pilotlab power"):
        load_panel(planned(treated=4), hist_df)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"post": 18}, r"--post: 18 post periods plus at least 4 .* need 22 periods .* hold 20"),
        ({"post_periods": 17}, r"design\.power\.post_periods: 17 post periods"),
        ({"treated": 60}, r"design\.power\.treated: 60 treated units requested but only 60"),
        ({"treated_cli": [80]}, r"--treated: 80 treated units"),
        ({"treated_list": ["A0001", "ZZZ"]}, r"design\.power\.treated: unit\(s\) ZZZ are not"),
        ({"treated": None}, r"design\.power\.treated: the pilot file does not say how many"),
    ],
)
def test_bad_designs_give_clear_errors(hist_df, kwargs, match) -> None:
    kw = dict(kwargs)
    post = kw.pop("post", None)
    treated_cli = kw.pop("treated_cli", None)
    if "treated_list" in kw:
        kw["treated"] = kw.pop("treated_list")
    df = hist_df
    if kw.get("treated", 1) is None:  # a treatment column that is still empty: no count
        df = hist_df.assign(ft=np.nan)
        spec = planned(treatment={"column": "ft"}, post_periods=4)
    else:
        spec = planned(**{"treated": 8, **kw})
    with pytest.raises(SpecError, match=match):
        run_power(spec, df, treated=treated_cli, post=post)


def test_power_spec_rejects_bad_values() -> None:
    with pytest.raises(SpecError, match=r"design\.power\.treated: found 0"):
        planned(treated=0)
    with pytest.raises(SpecError, match=r"design\.power\.effects: the list is empty"):
        planned(treated=3, effects=[])
    with pytest.raises(SpecError, match=r"design\.power\.target_power"):
        planned(treated=3, target_power=1.2)


@pytest.mark.slow
def test_false_positive_rate_generic_path_many_clusters() -> None:
    """The generic (one regression per placebo) path also holds its size with many clusters."""
    df = history(200, 16, rho=0.3, seed=13)
    spec = planned(
        treated=60, post_periods=4, simulations=1000, design={"estimator": "event_study"}
    )
    res = run_power(spec, df)
    assert res.path == "shift"
    assert abs(res.false_positive_rate - 0.05) < 3 * math.sqrt(0.05 * 0.95 / 1000)


@pytest.mark.slow
def test_false_positive_rate_many_seeds() -> None:
    rates = [
        run_power(
            planned(treated=80, post_periods=6, simulations=2000, seed=s), history(300, 24, seed=s)
        ).false_positive_rate
        for s in range(5)
    ]
    assert abs(np.mean(rates) - 0.05) < 3 * math.sqrt(0.05 * 0.95 / 10_000)


def test_effects_are_injected_in_the_better_direction(hist_df) -> None:
    """better: lower injects reductions: equal to mirroring the outcome and injecting increases."""
    effects = [0.3, 0.9]
    lower = run_power(
        planned(treated=6, simulations=200, effects=effects, outcome={"better": "lower"}), hist_df
    )
    mirrored = hist_df.assign(outcome=-hist_df["outcome"])
    higher = run_power(planned(treated=6, simulations=200, effects=effects), mirrored)
    assert [p.power for p in lower.curve] == [p.power for p in higher.curve]
    plain = run_power(planned(treated=6, simulations=200, effects=effects), hist_df)
    assert [p.power for p in plain.curve] != [p.power for p in lower.curve]


def test_unbalanced_history_uses_the_generic_path(hist_df) -> None:
    df = hist_df.drop(index=[3, 50, 400]).reset_index(drop=True)
    res = run_power(planned(treated=6, simulations=40, post_periods=3), df, n_jobs=1)
    assert res.path == "shift" and res.analytic is None
    assert any("unbalanced" in n for n in res.notes)  # the loader's warning is kept as a note
    assert any("no analytic MDE" in n for n in res.notes)
    assert res.mde is None or res.mde > 0


@pytest.mark.slow
@pytest.mark.parametrize("method", ["cluster", "wild_bootstrap", "permutation"])
def test_false_positive_rate_for_each_cluster_valid_inference(method: str) -> None:
    """Every inference that claims validity holds its size on placebo pilots (many clusters)."""
    df = history(100, 14, rho=0.4, seed=17)
    spec = planned(
        treated=30,
        post_periods=4,
        simulations=300,
        effects=[0.0],
        design={"inference": {"method": method, "replications": 199}},
    )
    res = run_power(spec, df)
    assert res.inference == method
    assert abs(res.false_positive_rate - 0.05) < 3 * math.sqrt(0.05 * 0.95 / 300)


@pytest.mark.slow
def test_wild_bootstrap_holds_size_with_few_treated_clusters() -> None:
    """With 6 treated of 60 clusters CR1 over-rejects; the wild bootstrap stays near alpha."""
    df = history(60, 16, rho=0.5, seed=23)
    rates = {}
    for method in ("cluster", "wild_bootstrap"):
        spec = planned(
            treated=6,
            post_periods=4,
            simulations=600,
            effects=[0.0],
            design={"inference": {"method": method, "replications": 199}},
        )
        rates[method] = run_power(spec, df).false_positive_rate
    se = math.sqrt(0.05 * 0.95 / 600)
    assert abs(rates["wild_bootstrap"] - 0.05) < 3 * se
    assert rates["cluster"] > rates["wild_bootstrap"]
