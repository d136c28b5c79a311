"""Power of a stepped roll-out under its own scheme: placebo roll-outs re-drawn wave by wave."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pilotlab.data.allocation import Allocation, draw_many
from pilotlab.data.panel import Panel
from pilotlab.engine import estimator_options, planning_history, run_power
from pilotlab.estimators import EstimatorOptions, get_estimator
from pilotlab.estimators.callaway_santanna.bootstrap import skip_bootstrap
from pilotlab.power.curve import binomial_interval
from pilotlab.power.draws import placebo_seeds
from pilotlab.power.simulate import SimulationRun
from pilotlab.power.stepped import (
    SteppedPlan,
    _group_time,
    _permutation,
    complete_waves,
    stepped_plan,
    stepped_rejections,
    wave_offsets,
)
from pilotlab.spec import PilotSpec, load_pilot, parse_pilot

ROOT = Path(__file__).resolve().parents[2]
PILOT = ROOT / "pilots" / "schools-stepped" / "pilot.yaml"
OUTCOME = "reading_score"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    df = pd.read_csv(PILOT.parent / "data" / "panel.csv")
    schools = sorted(df["school_id"].unique())
    w = dict(zip(schools, np.random.default_rng(0).uniform(0.5, 2.0, len(schools)), strict=True))
    df["pupils"] = df["school_id"].map(w)
    return df


def _spec(**data: Any) -> PilotSpec:
    spec = load_pilot(PILOT)
    raw = spec.model_dump()
    raw["data"] = {**raw["data"], "path": str(PILOT.parent / "data" / "panel.csv"), **data}
    return parse_pilot(raw)


def _setup(
    df: pd.DataFrame, post: int = 8, **data: Any
) -> tuple[PilotSpec, Panel, Allocation, SteppedPlan]:
    spec = _spec(**data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist, _ = planning_history(spec, df)
    alloc = hist.allocation
    assert alloc is not None
    offsets = wave_offsets(alloc, tuple(sorted(df["month"].unique())))
    return spec, hist, alloc, stepped_plan(alloc, offsets, hist.n_periods, post)


def _opts(spec: PilotSpec, inference: str = "cluster", **kw: Any) -> EstimatorOptions:
    base = estimator_options(spec, inference)
    return dataclasses.replace(base, pretrend="none", **kw)


def test_waves_start_as_the_pilot_file_spaces_them(frame: pd.DataFrame) -> None:
    _, hist, alloc, plan = _setup(frame)
    assert hist.n_periods == 12  # the history before the first wave (2023-09)
    assert list(wave_offsets(alloc, tuple(sorted(frame["month"].unique())))) == [-1, 0, 4, 8]
    assert plan.start == 4 and list(plan.code_start[1:3]) == [4, 8]
    assert plan.late_waves == ("wave 3",)  # starts after the 8 periods the history allows
    # a start beyond the data is counted as a calendar period at the data's frequency
    assert list(wave_offsets(alloc, tuple(sorted(frame["month"].unique()))[:12])) == [-1, 0, 4, 8]


@pytest.mark.parametrize(
    "data",
    [{}, {"weight": "pupils"}, {"cluster": "region"}, {"weight": "pupils", "cluster": "region"}],
)
def test_fast_path_equals_the_estimator_on_each_roll_out(
    frame: pd.DataFrame, data: dict[str, str]
) -> None:
    """Estimates and cluster-robust SEs of many roll-outs at once equal Callaway & Sant'Anna
    fitted on each one (weights and coarser clusters included)."""
    spec, hist, alloc, plan = _setup(frame, **data)
    opts = _opts(spec, replications=0)
    codes = draw_many(alloc, 5, np.random.default_rng(1))
    idx = alloc.index_of(hist.unit_labels)
    ft = plan.code_start[codes[:, idx]]
    tmpl = dataclasses.replace(
        hist.with_first_treated(ft[0]), allocation=alloc.with_codes(codes[0])
    )
    gt = _group_time(tmpl, OUTCOME, opts, alloc)
    assert gt is not None
    est, se = gt.stats(codes[:, idx])
    fit = get_estimator("callaway_santanna").fit
    for r in range(5):
        res = fit(hist.with_first_treated(ft[r]), OUTCOME, opts, np.random.default_rng(0))
        assert est[r] == pytest.approx(res.estimate, rel=1e-9, abs=1e-12)
        assert se[r] == pytest.approx(res.std_error, rel=1e-9)
        assert res.n_clusters == (3 if "cluster" in data else 36)


def test_fast_decisions_equal_refitting_every_roll_out(frame: pd.DataFrame) -> None:
    spec, hist, alloc, plan = _setup(frame, weight="pupils")
    opts = _opts(spec)
    effects = np.array([0.0, 0.6, 1.2])
    ss = np.random.SeedSequence(5)
    fast, codes = stepped_rejections(
        hist, OUTCOME, "callaway_santanna", opts, alloc, plan, effects, simulations=6, seed_seq=ss
    )
    slow, codes2 = stepped_rejections(
        hist, OUTCOME, "callaway_santanna", opts, alloc, plan, effects, simulations=6,
        seed_seq=ss, force_refit=True,
    )  # fmt: skip
    assert fast.path == "scheme" and slow.path == "full"
    np.testing.assert_array_equal(codes, codes2)
    np.testing.assert_array_equal(fast.rejections, slow.rejections)


@pytest.mark.parametrize("data", [{}, {"weight": "pupils"}])
def test_randomisation_over_wave_orders_equals_refitting_the_redraws(
    frame: pd.DataFrame, data: dict[str, str]
) -> None:
    """Each placebo roll-out's re-drawn estimates (and their slopes in the injected effect) are
    the estimator refitted on the re-drawn waves, drawn within strata as the scheme draws; with
    weights too, where each re-draw changes how the waves are combined."""
    spec, hist, alloc, plan = _setup(frame, **data)
    opts = _opts(spec, "permutation", replications=19)
    codes = draw_many(alloc, 3, np.random.default_rng(2))
    idx = alloc.index_of(hist.unit_labels)
    tmpl = dataclasses.replace(
        hist.with_first_treated(plan.code_start[codes[0, idx]]),
        allocation=alloc.with_codes(codes[0]),
    )
    assert tmpl.weighted == bool(data)
    ss = np.random.SeedSequence(9)
    perm = _permutation(tmpl, OUTCOME, opts, alloc, codes, plan, ss, None, 0, 3)
    assert perm is not None
    fit = get_estimator("callaway_santanna").fit
    cheap = dataclasses.replace(opts, inference="cluster", replications=0)
    seeds = placebo_seeds(ss, 3)
    for r in (0, 2):
        rng = np.random.default_rng(seeds[r])
        skip_bootstrap(19, 36, opts.bootstrap_weights, rng)  # where the refitting path draws
        redraw = draw_many(alloc, 19, rng)
        # the strata keep their wave counts in every re-draw
        for s in range(len(alloc.stratum_labels)):
            inside = alloc.stratum == s
            np.testing.assert_array_equal(
                np.sort(redraw[:, inside], axis=1)[0], np.sort(codes[r, inside])
            )
        own = hist.with_first_treated(plan.code_start[codes[r, idx]])
        res = fit(own, OUTCOME, cheap, np.random.default_rng(0))
        assert perm.estimate[r] == pytest.approx(res.estimate, rel=1e-9, abs=1e-12)
        assert perm.own[r] == pytest.approx(1.0, rel=1e-9)
        frame_d = own.frame.copy()
        frame_d[OUTCOME] = own.treated_now.astype(float)
        for b in (0, 7):
            other = hist.with_first_treated(plan.code_start[redraw[b, idx]])
            got = fit(other, OUTCOME, cheap, np.random.default_rng(0)).estimate
            assert perm.perm[r, b] == pytest.approx(got, rel=1e-9, abs=1e-12)
            slope = fit(other.with_frame(frame_d), OUTCOME, cheap, np.random.default_rng(0))
            assert perm.slope[r, b] == pytest.approx(slope.estimate, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("data", "weights"),
    [
        ({}, "auto"),
        ({"weight": "pupils"}, "auto"),
        ({"weight": "pupils", "cluster": "region"}, "rademacher"),
    ],
)
def test_randomisation_decisions_equal_refitting_every_redraw(
    frame: pd.DataFrame, data: dict[str, str], weights: str
) -> None:
    """Randomisation over wave orders gives the refitting path's decisions exactly: the same
    re-draws (after the estimator's own bootstrap draws, whatever its multipliers and clusters)
    and, with or without weights (each re-draw then changes how the waves are combined), the
    same estimates to rounding."""
    spec, hist, alloc, plan = _setup(frame, **data)
    opts = _opts(spec, "permutation", replications=29, bootstrap_weights=weights)
    effects = np.array([0.0, 0.5, 1.0, 1.5, 2.5])
    ss = np.random.SeedSequence(11)
    runs = [
        stepped_rejections(
            hist,
            OUTCOME,
            "callaway_santanna",
            opts,
            alloc,
            plan,
            effects,
            simulations=3,
            seed_seq=ss,
            force_refit=refit,
        )
        for refit in (False, True)
    ]
    (fast, codes), (slow, codes2) = runs
    assert fast.path == "scheme" and slow.path == "full" and fast.reject_at is not None
    np.testing.assert_array_equal(codes, codes2)
    np.testing.assert_array_equal(fast.rejections, slow.rejections)
    assert 0 < np.nanmean(fast.rejections) < 1  # decisions of both kinds were compared


def test_skip_bootstrap_draws_what_the_fit_draws(frame: pd.DataFrame) -> None:
    spec, hist, alloc, plan = _setup(frame, weight="pupils", cluster="region")
    own = hist.with_first_treated(plan.code_start[alloc.codes[alloc.index_of(hist.unit_labels)]])
    for kind in ("auto", "rademacher", "webb", "mammen"):
        opts = _opts(spec, replications=300, bootstrap_weights=kind)
        fitted, skipped = np.random.default_rng(8), np.random.default_rng(8)
        get_estimator("callaway_santanna").fit(own, OUTCOME, opts, fitted)
        skip_bootstrap(300, 3, kind, skipped)
        assert fitted.bit_generator.state == skipped.bit_generator.state
        assert fitted.random() == skipped.random()


def _noise_frame(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The schools' structure with a fresh outcome: unit effects, region-month shocks, noise."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    units = {u: i for i, u in enumerate(sorted(out["school_id"].unique()))}
    unit_fx = rng.normal(0, 3, len(units))[out["school_id"].map(units).to_numpy()]
    out[OUTCOME] = 60 + unit_fx + rng.normal(0, 1.5, len(out))
    return out


def _size(df: pd.DataFrame, inference: str, sims: int, seed: int, **kw: Any) -> tuple[int, int]:
    spec, hist, alloc, plan = _setup(df)
    opts = _opts(spec, inference, **kw)
    sim, _ = stepped_rejections(
        hist, OUTCOME, "callaway_santanna", opts, alloc, plan, np.zeros(1), simulations=sims,
        seed_seq=np.random.SeedSequence(seed),
    )  # fmt: skip
    assert sim.path == "scheme"
    rej = sim.rejections[:, 0]
    return int(np.nansum(rej)), int(np.isfinite(rej).sum())


def test_no_effect_rejects_near_five_percent_fast(frame: pd.DataFrame) -> None:
    """Under zero effect a placebo roll-out's test rejects about 5% of the time (1,000 roll-outs
    on one history; the interval is wide but a test that over-rejects by half fails)."""
    x, n = _size(_noise_frame(frame, 1), "cluster", 1000, 3)
    lo, hi = binomial_interval(x, n, 0.999)
    assert lo < 0.05 < hi, (x, n)
    assert x / n < 0.08
    # randomisation over wave orders: exact under the sharp null of no effect
    x, n = _size(_noise_frame(frame, 1), "permutation", 300, 3, replications=99)
    lo, hi = binomial_interval(x, n, 0.999)
    assert lo < 0.05 < hi, (x, n)


@pytest.mark.slow
def test_no_effect_rejects_near_five_percent_across_histories(frame: pd.DataFrame) -> None:
    xs, ns = 0, 0
    for h in range(20):  # fresh histories: the size of the design, not of one history
        x, n = _size(_noise_frame(frame, 100 + h), "cluster", 500, h)
        xs, ns = xs + x, ns + n
    lo, hi = binomial_interval(xs, ns, 0.99)
    assert lo < 0.065 and hi > 0.04, (xs, ns)  # CS's normal quantiles, 36 schools
    xs, ns = 0, 0
    for h in range(10):
        x, n = _size(_noise_frame(frame, 200 + h), "permutation", 300, h, replications=199)
        xs, ns = xs + x, ns + n
    lo, hi = binomial_interval(xs, ns, 0.99)
    assert lo < 0.05 < hi, (xs, ns)


def test_power_rises_with_the_effect_and_the_seed_fixes_the_numbers(frame: pd.DataFrame) -> None:
    spec, hist, alloc, plan = _setup(frame)
    opts = _opts(spec)
    effects = np.linspace(0.0, 2.0, 9)

    def run(seed: int) -> np.ndarray:
        sim, _ = stepped_rejections(
            hist, OUTCOME, "callaway_santanna", opts, alloc, plan, effects, simulations=400,
            seed_seq=np.random.SeedSequence(seed),
        )  # fmt: skip
        return np.asarray(np.nanmean(sim.rejections, axis=0))

    p = run(4)
    assert np.all(np.diff(p) >= 0) and p[-1] > 0.95 and p[0] < 0.1
    np.testing.assert_array_equal(p, run(4))
    assert not np.array_equal(p, run(5))


def test_complete_waves_keep_the_wave_sizes(frame: pd.DataFrame) -> None:
    _, _, alloc, _ = _setup(frame)
    comp = complete_waves(alloc)
    assert not comp.has_blocks
    drawn = draw_many(comp, 50, np.random.default_rng(0))
    want = np.bincount(alloc.codes, minlength=alloc.n_groups)
    for row in drawn[:5]:
        np.testing.assert_array_equal(np.bincount(row, minlength=alloc.n_groups), want)


def test_run_power_plans_the_example_roll_out_under_its_scheme() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_power(load_pilot(PILOT), simulations=500)
    assert res.path == "scheme" and res.estimator == "callaway_santanna"
    assert res.post_periods == 8 and res.mde is not None and 0.3 < res.mde < 3.0
    assert res.scheme is not None and res.scheme.scheme == "stepped"
    assert res.scheme.mde is not None and res.scheme.mde_comparison is not None
    assert "within strata" in res.notes[0]
    assert "wave 3" in res.rollout and res.n_treated == 24
    powers = [p.power for p in res.curve]
    assert powers == sorted(powers)


def test_simulation_run_is_one_frozen_options_object(frame: pd.DataFrame) -> None:
    _, hist, _, _ = _setup(frame)
    run = SimulationRun(
        hist, OUTCOME, "twfe", EstimatorOptions(), np.zeros((2, hist.n_units), bool),
        np.array([4, 5]), 3, np.zeros(1), np.random.SeedSequence(0),
    )  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.post = 4  # type: ignore[misc]
    assert run.n_total == 2 and run.rows(1, 2).A.shape == (1, hist.n_units)
