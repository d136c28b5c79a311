"""The permutation path of placebo pilots: the same decisions as refitting every re-assignment
through the engine's permutation test, for each linear estimator, without refitting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pilotlab.engine import estimator_options, planning_history, run_power
from pilotlab.power import draw_placebos, simulate_placebos
from pilotlab.spec import parse_pilot
from tests.support.power import history, planned


def _setup(df, estimator: str, k: int, reps: int, *, cluster: bool = False, weight: bool = False):
    spec = planned(
        treated=k,
        design={
            "estimator": estimator,
            "inference": {"method": "permutation"},
        },
    )
    data = {"cluster": "region"} if cluster else {}
    data |= {"weight": "population"} if weight else {}
    if data:
        spec = parse_pilot({**spec.model_dump(), "data": {**spec.data.model_dump(), **data}})
    panel, _ = planning_history(spec, df)
    # fewer re-assignments than a pilot file allows, to keep the refitting side short
    opts = dataclasses.replace(
        estimator_options(spec, "permutation"), pretrend="none", replications=reps
    )
    return panel, opts


def _compare(panel, opts, estimator, A, starts, post, effects):
    ss = np.random.SeedSequence(5)
    fast = simulate_placebos(
        panel, "outcome", estimator, opts, A, starts, post, effects, seed_seq=ss
    )
    full = simulate_placebos(
        panel, "outcome", estimator, opts, A, starts, post, effects, seed_seq=ss, force_path="full"
    )
    assert fast[2] == "permutation" and full[2] == "full"
    np.testing.assert_array_equal(fast[0], full[0])
    return fast[0]


@pytest.mark.parametrize(
    "estimator", ["twfe", "did", pytest.param("event_study", marks=pytest.mark.slow)]
)
def test_permutation_path_equals_refitting(estimator: str) -> None:
    df = history(24, 12, rho=0.5, seed=2)
    panel, opts = _setup(df, estimator, 4, 39)
    A, starts = draw_placebos(
        np.random.default_rng(3), n_units=24, n_periods=12, n_treated=4, post=3, min_pre=4,
        simulations=8,
    )  # fmt: skip
    rej = _compare(panel, opts, estimator, A, starts, 3, np.array([0.0, 0.5, 1.0, 2.0, 4.0]))
    assert rej[:, -1].sum() > rej[:, 0].sum()  # the decisions vary with the effect


def test_event_study_permutation_path_equals_refitting_quickly() -> None:
    """Event study (the pilotlab init design) on a small panel: refitting is slow, so 3 pilots."""
    df = history(12, 9, rho=0.5, seed=4)
    panel, opts = _setup(df, "event_study", 3, 19)
    A, starts = draw_placebos(
        np.random.default_rng(1), n_units=12, n_periods=9, n_treated=3, post=2, min_pre=4,
        simulations=3,
    )  # fmt: skip
    _compare(panel, opts, "event_study", A, starts, 2, np.array([0.0, 1.0, 3.0]))


def test_permutation_path_with_every_assignment_enumerated() -> None:
    """10 units, 2 treated: all 45 assignments are enumerated (exact p-values)."""
    df = history(10, 10, rho=0.3, seed=6)
    panel, opts = _setup(df, "twfe", 2, 99)
    A, starts = draw_placebos(
        np.random.default_rng(2), n_units=10, n_periods=10, n_treated=2, post=3, min_pre=4,
        simulations=10,
    )  # fmt: skip
    _compare(panel, opts, "twfe", A, starts, 3, np.array([0.0, 1.0, 3.0]))


def test_permutation_path_permutes_clusters_when_treatment_is_constant_within_them() -> None:
    """Placebos that happen to treat whole clusters permute clusters, as the engine does."""
    df = history(12, 10, rho=0.3, seed=7)
    df["region"] = df["area_code"].str[1:].astype(int) // 2  # clusters of 2 units
    panel, opts = _setup(df, "twfe", 4, 39, cluster=True)
    A = np.zeros((6, 12), dtype=bool)
    A[:3, :4] = True  # clusters 0 and 1 whole: cluster-level re-assignment
    A[3:, [0, 2, 4, 6]] = True  # split clusters: unit-level
    starts = np.array([4, 5, 6, 4, 5, 6])
    _compare(panel, opts, "twfe", A, starts, 3, np.array([0.0, 1.0, 2.0]))


def _weighted(df):
    """Each unit's own weight, from 0.3 to 3 (as populations would be)."""
    units = sorted(df["area_code"].unique())
    sizes = np.random.default_rng(9).uniform(0.3, 3.0, len(units))
    return df.assign(population=df["area_code"].map(dict(zip(units, sizes, strict=True))))


@pytest.mark.parametrize("estimator", ["twfe", "did", "event_study"])
def test_weighted_permutation_path_equals_refitting(estimator: str) -> None:
    """With unit weights each re-assignment treats another share of the weight, so the
    estimate divides by that assignment's own spread of the weight; the decisions are still
    those of refitting every re-assignment."""
    df = _weighted(history(14, 9, rho=0.5, seed=5))
    panel, opts = _setup(df, estimator, 3, 29, weight=True)
    assert panel.weighted
    A, starts = draw_placebos(
        np.random.default_rng(4), n_units=14, n_periods=9, n_treated=3, post=2, min_pre=4,
        simulations=4,
    )  # fmt: skip
    rej = _compare(panel, opts, estimator, A, starts, 2, np.array([0.0, 0.6, 1.2, 3.0]))
    assert 0 < np.nanmean(rej) < 1  # decisions of both kinds were compared


def test_weighted_permutation_path_with_clusters_and_enumeration() -> None:
    """Whole clusters re-assigned (their weights differ; all 10 assignments enumerated), and
    units re-assigned where the placebo splits clusters."""
    df = _weighted(history(10, 9, rho=0.3, seed=7))
    df["region"] = df["area_code"].str[1:].astype(int) // 2  # clusters of 2 units
    panel, opts = _setup(df, "twfe", 4, 99, cluster=True, weight=True)
    A = np.zeros((4, 10), dtype=bool)
    A[:2, :4] = True  # clusters 0 and 1 whole: cluster-level re-assignment
    A[2:, [0, 2, 4, 6]] = True  # split clusters: unit-level, 99 of the 210 assignments drawn
    starts = np.array([5, 6, 5, 6])
    _compare(panel, opts, "twfe", A, starts, 3, np.array([0.0, 1.0, 2.0]))


def test_weights_that_vary_within_a_unit_refit() -> None:
    df = _weighted(history(8, 7, rho=0.3, seed=8))
    df.loc[df.index[::5], "population"] *= 1.5
    panel, opts = _setup(df, "twfe", 2, 39, weight=True)
    A, starts = draw_placebos(
        np.random.default_rng(1), n_units=8, n_periods=7, n_treated=2, post=2, min_pre=4,
        simulations=2,
    )  # fmt: skip
    path = simulate_placebos(
        panel, "outcome", "twfe", opts, A, starts, 2, np.zeros(1),
        seed_seq=np.random.SeedSequence(0),
    )[2]  # fmt: skip
    assert path == "full"


def test_refitting_path_is_capped_in_time_with_its_error_stated() -> None:
    """Covariates with randomisation inference have no fast form: every re-assignment is
    refitted, so the run stops at what fits the time budget (at least 20) and says so."""
    df = history(8, 7, rho=0.3, seed=8)
    df["x"] = np.random.default_rng(0).normal(size=len(df))
    spec = planned(
        treated=2,  # 28 possible assignments, all enumerated: a short refit per placebo
        post_periods=2,
        simulations=60,
        effects=[0.0],
        design={"covariates": ["x"], "inference": {"method": "permutation", "replications": 99}},
    )
    calls: list[tuple[int, int]] = []
    res = run_power(
        spec, df, n_jobs=1, time_budget=0.01, progress=lambda d, t: calls.append((d, t))
    )
    assert res.path == "full" and res.simulations == 20
    assert res.curve[0].n == 20 - res.failed
    assert any("20 of the 60 placebo pilots" in n and "Monte Carlo error" in n for n in res.notes)
    assert calls[0] == (0, 60) and calls[-1] == (60, 60)


def test_init_design_500_placebo_pilots_in_seconds(tmp_path) -> None:
    """The event study with randomisation inference, 4 of 60 treated: 500 placebo pilots with
    999 re-assignments each (about 100 s per placebo pilot when refitting)."""
    import time

    df = history(60, 10, rho=0.5, seed=1)
    spec = planned(
        treated=4,
        post_periods=6,
        simulations=500,
        design={"estimator": "event_study", "inference": {"method": "permutation"}},
    )
    t = time.perf_counter()
    res = run_power(spec, df, n_jobs=1)
    assert res.path == "permutation" and res.failed == 0
    assert time.perf_counter() - t < 60
    assert abs(res.false_positive_rate - 0.05) < 3 * (0.05 * 0.95 / 500) ** 0.5


@pytest.mark.parametrize("weight", [False, True])
def test_cohort_block_permutation_path_equals_refitting(weight: bool) -> None:
    """Callaway & Sant'Anna (not linear, but a map of cohort blocks; with weights, of each
    assignment's weighted block sums): the permutation path gives the decisions of refitting
    every placebo pilot and effect size, re-assignments drawn where the refit draws them (after
    the estimator's multiplier bootstrap)."""
    df = history(16, 10, rho=0.5, seed=8)
    panel, opts = _setup(
        df if not weight else _weighted(df), "callaway_santanna", 4, 59, weight=weight
    )
    A, starts = draw_placebos(
        np.random.default_rng(4), n_units=16, n_periods=10, n_treated=4, post=3, min_pre=4,
        simulations=4,
    )  # fmt: skip
    rej = _compare(panel, opts, "callaway_santanna", A, starts, 3, np.linspace(0.0, 6.0, 13))
    assert 0 < np.nanmean(rej) < 1  # decisions of both kinds were compared


def test_cohort_block_path_with_whole_clusters() -> None:
    df = history(12, 10, rho=0.3, seed=9)
    df["region"] = df["area_code"].str[1:].astype(int) // 2  # clusters of 2 units
    panel, opts = _setup(df, "callaway_santanna", 4, 59, cluster=True)
    A = np.zeros((2, 12), dtype=bool)
    A[0, :4] = True  # whole clusters
    A[1, [0, 2, 4, 6]] = True  # split clusters
    rej = _compare(panel, opts, "callaway_santanna", A, np.array([5, 6]), 3, np.linspace(0, 6, 13))
    assert 0 < np.nanmean(rej) < 1


def test_a_block_map_whose_fit_draws_unknown_numbers_refits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An estimator with a cohort-block map whose fit draws from the generator, other than
    Callaway & Sant'Anna (whose draws the path steps over), cannot put its re-assignments where
    the refitting path draws them, so the refitting path runs."""
    import pilotlab.power.simulate as simulate
    from pilotlab.estimators import get_estimator

    cs = get_estimator("callaway_santanna")
    other = dataclasses.replace(cs, block_map=lambda *args: cs.block_map(*args))

    def lookup(name: str):
        return other if name == "callaway_santanna" else get_estimator(name)

    monkeypatch.setattr(simulate, "get_estimator", lookup)
    df = history(12, 9, rho=0.5, seed=3)
    panel, opts = _setup(df, "callaway_santanna", 3, 19)
    A, starts = draw_placebos(
        np.random.default_rng(2), n_units=12, n_periods=9, n_treated=3, post=2, min_pre=4,
        simulations=2,
    )  # fmt: skip
    path = simulate_placebos(
        panel, "outcome", "callaway_santanna", opts, A, starts, 2, np.zeros(1),
        seed_seq=np.random.SeedSequence(0),
    )[2]  # fmt: skip
    assert path == "full"
    monkeypatch.setattr(simulate, "get_estimator", get_estimator)
    path = simulate_placebos(
        panel, "outcome", "callaway_santanna", opts, A, starts, 2, np.zeros(1),
        seed_seq=np.random.SeedSequence(0),
    )[2]  # fmt: skip
    assert path == "permutation"
