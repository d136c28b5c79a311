"""Multiple-testing adjustments and the auto inference rule."""

from __future__ import annotations

import numpy as np
import pytest

from pilotlab.exceptions import EstimationError
from pilotlab.inference.multiple import (
    adjust_pvalues,
    bh,
    holm,
    romano_wolf,
    romano_wolf_wild,
)
from pilotlab.inference.select import choose_inference
from pilotlab.inference.wild import make_draws, wild_cluster_bootstrap
from tests.support.infer import long_arrays, simulate_panel, twfe_fit

multitest = pytest.importorskip("statsmodels.stats.multitest")


@pytest.mark.parametrize("seed", range(6))
def test_holm_and_bh_equal_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 0.2, size=rng.integers(1, 15))
    if seed == 3:
        p[:3] = p[0]  # ties
    np.testing.assert_allclose(holm(p), multitest.multipletests(p, method="holm")[1], rtol=1e-14)
    np.testing.assert_allclose(bh(p), multitest.multipletests(p, method="fdr_bh")[1], rtol=1e-14)


def test_nan_is_left_out() -> None:
    p = np.array([0.01, np.nan, 0.04])
    out = holm(p)
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], multitest.multipletests([0.01, 0.04], method="holm")[1])
    with pytest.raises(EstimationError, match="romano_wolf"):
        adjust_pvalues(p, "romano_wolf")


def test_romano_wolf_single_and_independent() -> None:
    rng = np.random.default_rng(0)
    ts = rng.standard_normal((20000, 1))
    p = romano_wolf([1.96], ts)
    assert p[0] == pytest.approx(np.mean(np.abs(ts[:, 0]) > 1.96))
    # independent hypotheses: between the raw p and Bonferroni, and >= raw
    ts = rng.standard_normal((20000, 3))
    t = np.array([2.8, 2.2, 0.5])
    adj = romano_wolf(t, ts)
    raw = np.array([np.mean(np.abs(ts[:, i]) > t[i]) for i in range(3)])
    assert np.all(adj >= raw - 1e-12)
    assert adj[0] <= min(1, 3 * raw[0]) + 0.01
    assert adj[0] <= adj[1] <= adj[2]
    # perfectly dependent hypotheses: no penalty at all
    same = np.repeat(ts[:, :1], 3, axis=1)
    np.testing.assert_allclose(romano_wolf(t, same), [np.mean(np.abs(ts[:, 0]) > v) for v in t])


def test_romano_wolf_wild_shares_draws() -> None:
    rng = np.random.default_rng(1)
    y, treated = simulate_panel(30, 6, 8, 3, 0.0, 0.3, rng)
    yy, d, u, t = long_arrays(y, treated, 3)
    fits = [(twfe_fit(yy + k * rng.normal(size=yy.size), d, u, t, u), 0) for k in range(3)]
    draws = make_draws(30, 999, "rademacher", np.random.default_rng(2))
    adj = romano_wolf_wild(fits, draws)
    single = [wild_cluster_bootstrap(f, 0, draws=draws).p_value for f, _ in fits]
    assert np.all(adj >= np.array(single) - 1e-12)
    assert np.all(adj <= 1)


@pytest.mark.parametrize(
    ("g", "g1", "n1", "est", "method"),
    [
        (50, 20, 20, "twfe", "cluster"),
        (50, 6, 6, "twfe", "wild_bootstrap"),
        (200, 10, 10, "event_study", "wild_bootstrap"),
        (50, 3, 3, "twfe", "permutation"),
        (50, 6, 6, "callaway_santanna", "permutation"),
        (100, 40, 40, "callaway_santanna", "cluster"),
        (39, 1, 1, "synthetic_control", "placebo"),
        (30, 15, 15, "did", "wild_bootstrap"),
    ],
)
def test_choose_inference(g: int, g1: int, n1: int, est: str, method: str) -> None:
    got, reason = choose_inference(g, g1, n1, est, n_units=g)
    assert got == method
    assert reason.endswith(".") and str(g1) in reason


def test_reason_states_permutation_floor() -> None:
    _, reason = choose_inference(8, 1, 1, "twfe", n_units=8)
    assert "smallest attainable p-value is 0.125" in reason
