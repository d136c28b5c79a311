"""Power with the plan's clustering: whole clusters treated, correlated units, honest MDE."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pilotlab.engine import planning_history, run_power
from pilotlab.power.analytic import analytic_mde, cluster_design_effect, history_matrix
from pilotlab.power.curve import binomial_interval
from pilotlab.power.draws import draw_cluster_placebos, unit_clusters
from pilotlab.spec import parse_pilot
from tests.support.power import planned


def clustered_history(
    n_clusters: int, size: int, n_periods: int, *, tau: float, sigma: float, seed: int
) -> pd.DataFrame:
    """Units nested in regions: unit effects, period effects, a shock shared by the units of a
    region in each period (SD ``tau``) and each unit's own noise (SD ``sigma``)."""
    rng = np.random.default_rng(seed)
    n = n_clusters * size
    region = np.repeat(np.arange(n_clusters), size)
    shock = rng.normal(0, tau, (n_clusters, n_periods))[region]
    y = (
        rng.normal(0, 2, (n, 1))
        + rng.normal(0, 1, (1, n_periods))
        + shock
        + rng.normal(0, sigma, (n, n_periods))
    )
    return pd.DataFrame(
        {
            "area_code": np.repeat([f"U{i:04d}" for i in range(n)], n_periods),
            "period": np.tile(np.arange(2000, 2000 + n_periods), n),
            "region": np.repeat([f"R{r:02d}" for r in region], n_periods),
            "outcome": y.ravel(),
        }
    )


def _clustered(spec):  # type: ignore[no-untyped-def]
    raw = spec.model_dump()
    raw["data"] = {**raw["data"], "cluster": "region"}
    return parse_pilot(raw)


def _hand_icc(Y: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """The ANOVA intra-cluster correlation of the two-way within residuals, written out."""
    N, T = Y.shape
    E = Y - Y.mean(axis=1, keepdims=True) - Y.mean(axis=0, keepdims=True) + Y.mean()
    groups = sorted(set(region.tolist()))
    G = len(groups)
    ssb = ssw = 0.0
    for t in range(T):
        for g in groups:
            e = E[region == g, t]
            ssb += len(e) * e.mean() ** 2
            ssw += float(((e - e.mean()) ** 2).sum())
    msb, msw = ssb / (T * (G - 1)), ssw / (T * (N - G))
    m = N / G  # equal clusters
    icc = (msb - msw) / (msb + (m - 1) * msw)
    return icc, 1 + (m - 1) * icc


def test_analytic_mde_takes_the_design_effect_of_whole_clusters() -> None:
    df = clustered_history(12, 5, 16, tau=1.0, sigma=1.0, seed=3)
    spec = _clustered(planned(treated=30, post_periods=4))
    panel, _ = planning_history(spec, df)
    Y = history_matrix(panel, "outcome")
    assert Y is not None
    cl = unit_clusters(panel)
    assert cl is not None and np.bincount(cl).tolist() == [5] * 12
    icc, deff = _hand_icc(Y, cl)
    got_icc, m, got_deff = cluster_design_effect(Y, cl)
    assert got_icc == pytest.approx(icc, rel=1e-12) and m == 5
    assert got_deff == pytest.approx(deff, rel=1e-12)
    assert 0.3 < icc < 0.7  # true ICC 0.5
    flat = analytic_mde(Y, pre=16, post=4, n_treated=30, df=11)
    coarse = analytic_mde(Y, pre=16, post=4, n_treated=30, df=11, cluster=cl)
    assert coarse.mde == pytest.approx(flat.mde * math.sqrt(deff), rel=1e-12)
    assert coarse.mde_iid == pytest.approx(flat.mde_iid * math.sqrt(deff), rel=1e-12)
    assert coarse.mde > 1.5 * flat.mde
    assert "design effect" in " ".join(coarse.assumptions)
    # no correlation within clusters: no design effect worth the name
    calm = clustered_history(12, 5, 16, tau=0.0, sigma=1.0, seed=3)
    Yc = history_matrix(planning_history(spec, calm)[0], "outcome")
    assert Yc is not None
    assert cluster_design_effect(Yc, cl)[2] < 1.15


def test_placebo_pilots_treat_whole_clusters() -> None:
    cl = np.repeat(np.arange(6), 3)
    A, starts = draw_cluster_placebos(
        np.random.default_rng(0), cluster_of=cl, n_clusters_treated=2, n_periods=10, post=3,
        min_pre=4, simulations=50,
    )  # fmt: skip
    assert A.shape == (50, 18) and (A.sum(axis=1) == 6).all()
    per_cluster = A.reshape(50, 6, 3)
    assert (per_cluster.all(axis=2) | ~per_cluster.any(axis=2)).all()
    assert starts.min() >= 4 and starts.max() <= 7


def test_clustering_at_a_coarser_level_raises_the_mde_and_keeps_the_size() -> None:
    """Correlated regions: the plan that clusters by region has a larger MDE (analytic and
    simulated) than one that pretends each unit is its own cluster, and its test still rejects
    about 5% of placebo pilots under no effect."""
    df = clustered_history(30, 4, 12, tau=1.0, sigma=1.0, seed=5)
    base = planned(treated=60, post_periods=4, simulations=400, seed=1)
    flat = run_power(base, df)
    coarse = run_power(_clustered(base), df)
    assert coarse.path == "vectorised"
    assert coarse.analytic is not None and flat.analytic is not None
    assert coarse.analytic.mde > 1.4 * flat.analytic.mde
    assert coarse.mde is not None and flat.mde is not None and coarse.mde > 1.4 * flat.mde
    assert any("whole clusters" in n for n in coarse.notes)
    lo, hi = binomial_interval(coarse.false_positives, coarse.simulations, 0.999)
    assert lo < 0.05 < hi and coarse.false_positive_rate < 0.1


@pytest.mark.slow
def test_cluster_placebos_reject_near_five_percent_across_histories() -> None:
    x = n = 0
    for h in range(15):
        df = clustered_history(30, 4, 12, tau=1.0, sigma=1.0, seed=100 + h)
        res = run_power(_clustered(planned(treated=60, post_periods=4, simulations=400)), df)
        x, n = x + res.false_positives, n + res.simulations
    lo, hi = binomial_interval(x, n, 0.99)
    assert lo < 0.06 and hi > 0.04, (x, n)
