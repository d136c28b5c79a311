"""Synthetic DiD / control on simulated factor-model panels with a known effect (-3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.synthetic import fit_synthetic
from pilotlab.spec.models import SyntheticOptions
from tests.support.synth_data import factor_frame, make_panel

EFFECT = -3.0


def _panel(seed: int, n_treated: int = 1, staggered: tuple[int, ...] = ()):
    df, starts = factor_frame(seed=seed, n_treated=n_treated, staggered=staggered, effect=EFFECT)
    if staggered:
        return make_panel(df, adoption={u: 2000 + s for u, s in starts.items()})
    return make_panel(df, units=list(starts), start=2020)


def _errors(seeds, n_treated=1, staggered=(), methods=("sdid", "did"), reps=50):
    out: dict[str, list[tuple[float, float, float, float]]] = {m: [] for m in methods}
    for seed in seeds:
        panel = _panel(seed, n_treated, staggered)
        for m in methods:
            r = fit_synthetic(
                panel,
                "y",
                EstimatorOptions(inference="cluster", replications=reps),
                np.random.default_rng(seed),
                m,
            )
            out[m].append((r.estimate - EFFECT, r.std_error, r.ci_lower, r.ci_upper))
    return {m: np.array(v) for m, v in out.items()}


@pytest.mark.parametrize(
    ("n_treated", "staggered", "tol"),
    [(1, (), 0.45), (4, (), 0.3), (4, (15, 20), 0.45)],
    ids=["one-treated", "four-treated", "staggered"],
)
def test_sdid_recovers_effect_fast(n_treated, staggered, tol):
    err = _errors(range(6), n_treated, staggered)
    sdid, did = err["sdid"], err["did"]
    assert abs(sdid[:, 0].mean()) < tol
    # the DGP selects treated units on a trending factor: DiD is biased, SDID much less
    assert np.sqrt((sdid[:, 0] ** 2).mean()) < np.sqrt((did[:, 0] ** 2).mean())
    assert (sdid[:, 1] > 0).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n_treated", "staggered"),
    [(1, ()), (4, ()), (4, (15, 20))],
    ids=["one-treated", "four-treated", "staggered"],
)
def test_sdid_recovers_effect_many_seeds(n_treated, staggered):
    err = _errors(range(40), n_treated, staggered, methods=("sdid",), reps=100)["sdid"]
    bias = err[:, 0].mean()
    assert abs(bias) < 0.1 * abs(EFFECT)
    covered = (err[:, 2] <= EFFECT) & (err[:, 3] >= EFFECT)
    assert covered.mean() >= 0.8


def test_inference_choice_follows_number_of_treated_units():
    one = fit_synthetic(
        _panel(0, 1), "y", EstimatorOptions(replications=50), np.random.default_rng(0)
    )
    four = fit_synthetic(_panel(0, 4), "y", EstimatorOptions(), np.random.default_rng(0))
    assert one.inference == "placebo" and "single treated area" in one.synthetic.inference_reason
    assert four.inference == "jackknife" and "jackknife" in four.synthetic.inference_reason
    assert four.synthetic.placebo is None
    assert four.synthetic.replications == 0


def test_placebo_with_several_treated_units_draws_sets():
    r = fit_synthetic(
        _panel(1, 3),
        "y",
        EstimatorOptions(inference="placebo", replications=60),
        np.random.default_rng(5),
    )
    table = r.synthetic.placebo.frame
    assert r.inference == "placebo"
    assert table["draws"].sum() == 60
    assert table["unit"].iloc[0].count(" + ") == 2  # three pseudo-treated donors per draw
    assert table.loc[table["treated"], "unit"].iloc[0] == "treated average"


def _block_panel(df: pd.DataFrame, units: list[str], start: int, drop: list[str]):
    keep = df[~df["unit"].isin(drop)]
    return make_panel(keep, units=units, start=2000 + start)


@pytest.mark.parametrize("method", ["sdid", "sc", "did"])
def test_staggered_is_cohort_blocks_weighted_by_size_and_post_periods(method):
    df, starts = factor_frame(seed=3, n_treated=5, staggered=(15, 20, 20), effect=EFFECT)
    panel = make_panel(df, adoption={u: 2000 + s for u, s in starts.items()})
    opts = EstimatorOptions(inference="jackknife")
    full = fit_synthetic(panel, "y", opts, np.random.default_rng(0), method)
    cohorts = {s: [u for u, v in starts.items() if v == s] for s in set(starts.values())}
    total, weight = 0.0, 0.0
    for s, units in cohorts.items():
        others = [u for u in starts if u not in units]
        block = fit_synthetic(
            _block_panel(df, units, s, others), "y", opts, np.random.default_rng(0), method
        )
        w = len(units) * (30 - s)
        total += w * block.estimate
        weight += w
    assert full.estimate == pytest.approx(total / weight, abs=1e-10)
    assert list(full.synthetic.cohorts.frame["n_treated"]) == [2, 3]
    assert full.synthetic.cohorts.frame["post_periods"].tolist() == [15, 10]
    ev = full.event_study_frame()
    assert ev["event_time"].min() == -20 and ev["event_time"].max() == 14


def test_jackknife_matches_leave_one_out_refits_with_fixed_weights():
    """Algorithm 3 in closed form equals dropping each unit and renormalising the weights."""
    panel = _panel(2, 3)
    r = fit_synthetic(panel, "y", EstimatorOptions(inference="jackknife"), np.random.default_rng(0))
    y = panel.frame.pivot(index="_unit", columns="_time", values="y").to_numpy()
    treated = panel.is_treated_unit
    w = r.synthetic.weights.frame.set_index("unit")["weight"]
    omega = np.array([w[panel.unit_labels[i]] if not treated[i] else 0.0 for i in range(len(y))])
    lam = r.synthetic.time_weights.frame["weight"].to_numpy()
    t0 = lam.size
    d = y[:, t0:].mean(axis=1) - y[:, :t0] @ lam
    loo = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        om = omega * keep
        om = om / om.sum()
        tr = treated & keep
        loo.append(d[tr].mean() - om @ d)
    loo = np.array(loo)
    n = len(loo)
    se = np.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum())
    assert r.std_error == pytest.approx(se, rel=1e-10)
    assert r.estimate == pytest.approx(d[treated].mean() - omega @ d, abs=1e-10)


@pytest.mark.parametrize("fit_on", ["average", "each"])
def test_sc_several_treated_units_fit_on(fit_on):
    panel = _panel(4, 3)
    r = fit_synthetic(
        panel,
        "y",
        EstimatorOptions(inference="jackknife", synthetic=SyntheticOptions(fit_on=fit_on)),
        np.random.default_rng(0),
        "sc",
    )
    assert r.synthetic.fit_on == fit_on
    assert r.synthetic.weights.frame["weight"].sum() == pytest.approx(1.0)
    assert abs(r.estimate - EFFECT) < 1.5
    # the ADH rank p-value is reported whatever the variance method
    assert 0 < r.synthetic.rank_p_value <= 1
    table = r.synthetic.placebo.frame
    assert len(table) == 77 + 1 and table["treated"].sum() == 1


def test_sc_each_equals_average_with_one_treated_unit():
    panel = _panel(4, 1)
    opts = {"inference": "placebo", "replications": 30}
    a = fit_synthetic(
        panel,
        "y",
        EstimatorOptions(**opts, synthetic=SyntheticOptions(fit_on="average")),
        np.random.default_rng(0),
        "sc",
    )
    b = fit_synthetic(
        panel,
        "y",
        EstimatorOptions(**opts, synthetic=SyntheticOptions(fit_on="each")),
        np.random.default_rng(0),
        "sc",
    )
    assert a.estimate == b.estimate and a.std_error == b.std_error


def test_sc_predictors_enter_the_fit():
    df, starts = factor_frame(seed=6, n_treated=1)
    rng = np.random.default_rng(0)
    df["x"] = rng.normal(size=len(df)) + (df["unit"] == "u000") * 5
    base = make_panel(df, units=list(starts), start=2020)
    with_x = make_panel(df, units=list(starts), start=2020, predictors=("x",))
    opts = EstimatorOptions(inference="placebo", replications=20)
    a = fit_synthetic(base, "y", opts, np.random.default_rng(0), "sc")
    b = fit_synthetic(
        with_x,
        "y",
        EstimatorOptions(
            inference="placebo", replications=20, synthetic=SyntheticOptions(predictors=["x"])
        ),
        np.random.default_rng(0),
        "sc",
    )
    assert b.synthetic.weights.frame["weight"].sum() == pytest.approx(1.0)
    assert not np.allclose(
        a.synthetic.weights.frame["weight"].to_numpy(),
        b.synthetic.weights.frame["weight"].to_numpy(),
    )


def test_donor_pool_follows_comparison_list_and_exclude():
    df, starts = factor_frame(seed=7, n_treated=1)
    donors = [f"u{i:03d}" for i in range(1, 21)]
    listed = make_panel(df, units=list(starts), start=2020, comparison=donors)
    r = fit_synthetic(listed, "y", EstimatorOptions(replications=30), np.random.default_rng(0))
    assert sorted(r.synthetic.weights.frame["unit"]) == donors
    assert set(r.synthetic.placebo.frame["unit"]) <= {*donors, "u000"}
    dropped = make_panel(df, units=list(starts), start=2020, exclude=("u001", "u002"))
    r = fit_synthetic(dropped, "y", EstimatorOptions(replications=30), np.random.default_rng(0))
    assert {"u001", "u002"}.isdisjoint(r.synthetic.weights.frame["unit"])
    assert r.n_units == 78


def test_anticipation_moves_the_start_earlier():
    df, starts = factor_frame(seed=8, n_treated=2)
    panel = make_panel(df, units=list(starts), start=2020, anticipation=2)
    r = fit_synthetic(panel, "y", EstimatorOptions(), np.random.default_rng(0))
    assert r.synthetic.cohorts.frame["start"].tolist() == ["2018"]
    assert len(r.synthetic.time_weights.frame) == 18
    assert r.event_study_frame()["event_time"].max() == 11
