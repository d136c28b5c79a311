"""Recovery of known ATT(g,t) on simulated staggered roll-outs where TWFE is biased."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pilotlab.diagnostics.bacon import bacon_decomposition
from pilotlab.estimators.callaway_santanna import estimate_group_time_effects
from tests.support.cs import sim_panel, simulate_staggered


def _truth_vector(att_gt: pd.DataFrame, truth: dict[tuple[int, int], float]) -> np.ndarray:
    return np.array(
        [truth[(int(g), int(t))] for g, t in zip(att_gt.group, att_gt.time, strict=True)]
    )


def _true_simple(df: pd.DataFrame, att_gt: pd.DataFrame, truth: np.ndarray) -> float:
    """Population-share-weighted average of the true post-treatment ATT(g,t)."""
    sizes = df.groupby("unit").g.first().value_counts()
    post = att_gt.post.to_numpy()
    w = att_gt.group.astype(int).map(sizes).to_numpy()[post]
    return float((truth[post] * w).sum() / w.sum())


def _check_seed(seed: int, n_units: int, comparison: str = "never_treated") -> tuple[float, ...]:
    df, truth = simulate_staggered(n_units=n_units, seed=seed)
    panel = sim_panel(df, comparison=comparison)
    res = estimate_group_time_effects(panel, "y", replications=0)
    a = res.att_gt
    tv = _truth_vector(a, truth)
    z = ((a.att - tv) / a.std_error).to_numpy()
    simple = res.aggregations.set_index("type").loc["simple"]
    true_simple = _true_simple(df, a, tv)
    twfe = bacon_decomposition(panel, "y").twfe_estimate
    return (
        float(np.abs(z).max()),
        float(simple.estimate),
        float(simple.std_error),
        true_simple,
        twfe,
        float(np.mean(np.abs(z) < 1.96)),
    )


@pytest.mark.parametrize("comparison", ["never_treated", "not_yet_treated"])
@pytest.mark.parametrize("seed", range(4))
def test_cs_recovers_att_gt_and_twfe_is_biased(seed: int, comparison: str) -> None:
    zmax, simple, se, true_simple, twfe, _ = _check_seed(seed, 400, comparison)
    # every ATT(g,t) (21 cells) within 4 standard errors of the truth
    assert zmax < 4.0
    # the aggregate is within 4 SE of the true average effect ...
    assert abs(simple - true_simple) < 4 * se
    # ... while TWFE misses it by far more (effects grow with exposure)
    assert abs(twfe - true_simple) > 8 * se
    assert twfe < true_simple - 0.5


def test_bacon_shows_forbidden_comparisons_drive_the_bias() -> None:
    df, _ = simulate_staggered(n_units=400, seed=11)
    dec = bacon_decomposition(sim_panel(df), "y")
    by = dec.by_type.set_index("type")
    # later-vs-earlier comparisons subtract the earlier cohorts' growing effects
    assert by.loc["later_vs_earlier", "estimate"] < by.loc["treated_vs_never", "estimate"] - 2
    assert dec.forbidden_weight > 0.15


@pytest.mark.slow
def test_cs_coverage_across_many_seeds() -> None:
    """Pointwise 95% intervals cover the true ATT(g,t) about 95% of the time (200 seeds)."""
    cover, bias = [], []
    for seed in range(200):
        _, simple, _, true_simple, _, cov = _check_seed(seed, 600)
        cover.append(cov)
        bias.append(simple - true_simple)
    assert 0.93 < np.mean(cover) < 0.97
    assert abs(np.mean(bias)) < 0.01
