"""The event study on cohort x period cells gives the numbers of one indicator column per event
time (to rounding), for every variance, window and clustering, and hands its readers the same
within-transformed regressors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pilotlab.estimators import event_study as es
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.inference.wild import combination_fit, wild_cluster_bootstrap
from pilotlab.results import CellLinearFit
from tests.support.cs import make_panel


def _panel(cluster: str | None = None, anticipation: int = 0, weight: bool = False):
    rng = np.random.default_rng(7)
    n, t = 120, 12
    first = np.where(rng.random(n) < 0.5, 0, rng.choice([5, 7, 9], n))
    unit, time = np.repeat(np.arange(n), t), np.tile(np.arange(1, t + 1), n)
    g = first[unit]
    y = rng.normal(size=n)[unit] + 0.1 * time + rng.normal(size=n * t)
    y += np.where((g > 0) & (time >= g), 1.0 + 0.1 * (time - g), 0.0)
    w = rng.uniform(0.2, 4.0, n)[unit]  # each unit's own weight
    df = pd.DataFrame({"u": unit, "t": time, "g": g, "y": y, "r": unit % 13, "w": w})
    return make_panel(
        df,
        unit="u",
        time="t",
        first_treated="g",
        outcomes=("y",),
        cluster=cluster,
        anticipation=anticipation,
        weight="w" if weight else None,
    )


def _both(panel, options):
    """The event study by cells and with the dense indicator columns."""
    cells = es.fit_event_study(panel, "y", options, np.random.default_rng(0))
    assert isinstance(cells.linear.fit, CellLinearFit)
    dense_fit = es._by_cells
    try:
        es._by_cells = lambda *a: False  # type: ignore[assignment]
        dense = es.fit_event_study(panel, "y", options, np.random.default_rng(0))
    finally:
        es._by_cells = dense_fit  # type: ignore[assignment]
    assert not isinstance(dense.linear.fit, CellLinearFit)
    return cells, dense


@pytest.mark.parametrize("inference", ["cluster", "robust", "iid"])
@pytest.mark.parametrize("window", [(8, 8), (2, 1), (100, 100)])
@pytest.mark.parametrize("cluster", [None, "r"])
@pytest.mark.parametrize("weight", [False, True])
def test_cells_equal_dense_indicators(inference, window, cluster, weight) -> None:
    panel = _panel(cluster, weight=weight)
    cells, dense = _both(panel, EstimatorOptions(inference=inference, window=window))
    assert (cells.linear.fit.weights is not None) == weight
    a, b = cells.linear.fit, dense.linear.fit
    assert a.names == b.names and a.df_resid == b.df_resid and a.df_absorbed == b.df_absorbed
    for x, y in [(a.beta, b.beta), (a.vcov, b.vcov), (a.resid, b.resid), (a.y, b.y)]:
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.X, b.X, rtol=0, atol=1e-13)  # made on first use
    assert cells.estimate == pytest.approx(dense.estimate, rel=1e-12)
    assert cells.std_error == pytest.approx(dense.std_error, rel=1e-12)
    assert [e.event_time for e in cells.event_study] == [e.event_time for e in dense.event_study]
    pa, pb = cells.pre_period, dense.pre_period
    np.testing.assert_allclose(pa.estimates, pb.estimates, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pa.cov, pb.cov, rtol=1e-10, atol=1e-14)
    if inference == "cluster":
        np.testing.assert_allclose(a.cluster_scores, b.cluster_scores, rtol=1e-9, atol=1e-11)


def test_anticipation_moves_the_reference_the_same_way() -> None:
    cells, dense = _both(_panel(anticipation=1), EstimatorOptions(inference="cluster"))
    assert cells.linear.reference == dense.linear.reference == -2
    assert cells.estimate == pytest.approx(dense.estimate, rel=1e-12)


@pytest.mark.parametrize("weight", [False, True])
def test_wild_bootstrap_reads_the_same_regressors(weight: bool) -> None:
    options = EstimatorOptions(inference="cluster", window=(3, 3))
    cells, dense = _both(_panel(weight=weight), options)
    a, b = (
        wild_cluster_bootstrap(
            combination_fit(r.linear.fit, r.linear.contrast()),
            "combination",
            replications=199,
            rng=np.random.default_rng(1),
        )
        for r in (cells, dense)
    )
    assert a.p_value == b.p_value
    assert a.ci_lower == pytest.approx(b.ci_lower, rel=1e-9)
