"""The randomisation pre-test of Callaway & Sant'Anna from cohort block sums equals re-fitting.

Every case runs the test twice with the same seed: through the estimator's pre-period map (one
pass over all re-assignments) and with the map removed (one re-fit per re-assignment), and the
statistics and p-values must agree to rounding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab import compiled as pilotlab_compiled
from pilotlab.data.panel import Panel
from pilotlab.diagnostics import pretrend
from pilotlab.estimators import ESTIMATORS
from pilotlab.estimators.base import CallawaySantAnnaOptions, EstimatorOptions
from pilotlab.estimators.callaway_santanna import block_map as cs_block_map
from pilotlab.exceptions import PilotlabWarning
from tests.support.cs import make_panel
from tests.support.pretest import mapped_and_refitted

CS = ESTIMATORS["callaway_santanna"]


def _frame(seed: int, n: int = 48, T: int = 9, trend: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice([-1, 3, 5, 6], size=n, p=[0.3, 0.25, 0.25, 0.2])
    u = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(T), n)
    gu = g[u]
    y = (
        100.0
        + rng.normal(size=n)[u]
        + 5 * np.sin(t)
        + np.where((gu >= 0) & (t >= gu), 1.0, 0.0)
        + trend * np.where(gu >= 0, t, 0)
        + rng.normal(size=u.size)
    )
    region = (u // 4) if seed % 2 == 0 else (u % 7)  # whole cohorts per cluster or not
    w = rng.uniform(0.5, 2.0, size=n)[u]
    return pd.DataFrame({"unit": u, "time": t, "y": y, "g": gu, "region": region, "w": w})


def _panel(df: pd.DataFrame, **kw: object) -> Panel:
    return make_panel(df, unit="unit", time="time", first_treated="g", outcomes=("y",),
                      never_value=-1, **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture(autouse=True)
def _no_power(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the test could detect is computed after it and is not compared here (it is the
    slow part of these small cases)."""
    monkeypatch.setattr(pretrend, "with_power", lambda test, pre, result: test)


#: name -> (panel keywords, options keywords, whole cohorts per cluster, the fast path applies)
CASES: dict[str, tuple[dict[str, object], dict[str, object], bool, bool]] = {
    "never treated, units": ({}, {}, False, True),
    "not yet treated, units": ({"comparison": "not_yet_treated"}, {}, False, True),
    "universal base": ({}, {"base_period": "universal"}, False, True),
    "clusters assigned whole": ({"cluster": "region"}, {}, True, True),
    "clusters across cohorts": (
        {"cluster": "region", "comparison": "not_yet_treated"},
        {},
        False,
        True,
    ),
    "not yet treated, window": ({"comparison": "not_yet_treated"}, {"window": (3, 2)}, False, True),
    "anticipation": ({"anticipation": 1}, {}, False, True),
    "clusters across cohorts, universal base": (
        {"cluster": "region"},
        {"base_period": "universal"},
        False,
        True,
    ),
    "clusters across cohorts, anticipation, window": (
        {"cluster": "region", "anticipation": 1, "comparison": "not_yet_treated"},
        {"window": (3, 2)},
        False,
        True,
    ),
    # weights move with the units, so the cohorts' weighted sizes change: re-fitted
    "weighted": ({"weight": "w"}, {}, False, False),
    "weighted, clusters": ({"weight": "w", "cluster": "region"}, {}, False, False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_block_sums_give_the_refits_statistic(name: str) -> None:
    panel_kw, opt_kw, whole, applies = CASES[name]
    base = {k: v for k, v in opt_kw.items() if k == "base_period"}
    window = opt_kw.get("window")
    df = _frame(2 if whole else 3, trend=0.15)
    if whole:  # clusters of four units with one cohort each
        df["g"] = df.groupby("region")["g"].transform("first")
    options = EstimatorOptions(
        inference="permutation",
        pretrend="randomization",
        replications=19,
        window=window,  # type: ignore[arg-type]
        callaway_santanna=CallawaySantAnnaOptions(**base),  # type: ignore[arg-type]
    )
    fast, slow = mapped_and_refitted(CS, _panel(df, **panel_kw), options)
    assert "re-estimated" in slow.test
    assert ("block sums" in fast.test) is applies
    assert fast.statistic == pytest.approx(slow.statistic, rel=1e-10, abs=1e-12)
    assert fast.p_value == slow.p_value


@pytest.mark.parametrize(
    "panel_kw",
    [
        {},
        {"comparison": "not_yet_treated", "cluster": "region"},
        {"anticipation": 1, "weight": "w"},
        {"anticipation": 1, "weight": "w", "cluster": "region"},
    ],
    ids=["units", "clusters across cohorts", "anticipation, weighted",
         "weighted, clusters across cohorts"],
)  # fmt: skip
def test_every_reassignments_statistic_equals_its_refit(
    panel_kw: dict[str, object],
) -> None:
    """Not only the p-value: each re-assignment's statistic from block sums is its re-fit's
    (weighted too, for re-assignments that keep the cohorts' weighted sizes: here swaps of
    units of equal weight), with units as clusters and with clusters that span cohorts."""
    df = _frame(3, trend=0.1)
    df["w"] = df.groupby(df["unit"] // 2)["w"].transform("first")
    panel = _panel(df, **panel_kw)
    options = EstimatorOptions(inference="cluster", pretrend="none", replications=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotlabWarning)
        res = CS.fit(panel, "y", options, np.random.default_rng(0))
        assert res.pre_period is not None
        window = (int(-min(res.pre_period.event_times)), panel.n_periods)
        mapped = pretrend._mapped_drift(panel, "y", CS, options, res.pre_period, window)
        assert mapped is not None
        rng = np.random.default_rng(1)
        ft = panel.first_treated
        if panel.weighted:  # equal weights per unit pair 2j, 2j+1: swap within pairs
            pairs = [ft.copy() for _ in range(6)]
            for d in pairs:
                flip = np.flatnonzero(rng.random(ft.size // 2) < 0.5) * 2
                d[flip], d[flip + 1] = ft[flip + 1], ft[flip]
            draws = np.vstack([ft[None, :]] + [d[None, :] for d in pairs])
        else:
            draws = np.vstack([ft[None, :]] + [rng.permutation(ft)[None, :] for _ in range(6)])
        got = mapped(draws[0], draws[1:])
        assert got is not None
        fast = np.concatenate([[got[0]], got[1]])
        slow = [
            pretrend._lead_drift(CS.fit(panel.with_first_treated(ft), "y", options, rng))
            for ft in draws
        ]
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-12)


def test_an_assignment_that_changes_a_cohorts_size_is_refitted() -> None:
    """Clusters of unequal sizes assigned whole: a re-assignment changes the cohorts' sizes, so
    the block-sum coefficients do not hold and the map declines (the re-fits run)."""
    df = _frame(2, trend=0.1)
    df["region"] = np.minimum(df["unit"] // 4, 9)
    df["g"] = df.groupby("region")["g"].transform("first")
    panel = _panel(df, cluster="region")
    m = CS.pre_period_map
    assert m is not None
    options = EstimatorOptions(inference="cluster", pretrend="none", replications=0)
    mapped = m(panel, "y", options)
    assert mapped is not None
    ft = panel.first_treated
    coef = np.ones((1, len(mapped.event_times)))
    assert mapped.sums(ft, coef) is not None
    big, small = np.flatnonzero(df.groupby("unit")["region"].first().to_numpy() == 9), 0
    other = ft.copy()
    if np.all(ft[big] == ft[small]):
        pytest.skip("the big cluster shares the first cluster's cohort")
    other[big], other[:4] = ft[small], ft[big[0]]  # swap the big cluster with the first one
    assert mapped.sums(other, coef) is None


#: name -> (panel keywords, options keywords) of the spanning-cluster cases below
SPANNING: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "never treated": ({}, {}),
    "not yet treated, window": ({"comparison": "not_yet_treated"}, {"window": (3, 2)}),
    "anticipation": ({"anticipation": 1}, {}),
    "universal base": ({}, {"base_period": "universal"}),
    "weighted": ({"weight": "w"}, {}),
}


@pytest.mark.skipif(not cs_block_map.HAS_NUMBA, reason="numba is not importable here")
@pytest.mark.parametrize("name", list(SPANNING))
def test_compiled_sums_equal_the_sparse_products_to_the_last_bit(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clusters that span cohorts: the compiled pass over each chunk of re-assignments gives the
    sparse products' leads and variances bit for bit, with clusters longer than a tile of
    units, a cluster of one unit, several chunks and an assignment that changes a cohort's
    size (both decline)."""
    panel_kw, opt_kw = SPANNING[name]
    df = _frame(3, n=300, trend=0.1)
    unit = df["unit"].to_numpy()
    df["region"] = np.where(unit == 5, 99, unit % 3)  # ~100 units each, and a singleton
    df["w"] = df.groupby(df["unit"] // 2)["w"].transform("first")
    panel = _panel(df, cluster="region", **panel_kw)
    base = {k: v for k, v in opt_kw.items() if k == "base_period"}
    options = EstimatorOptions(
        inference="cluster",
        pretrend="none",
        replications=0,
        window=opt_kw.get("window"),  # type: ignore[arg-type]
        callaway_santanna=CallawaySantAnnaOptions(**base),  # type: ignore[arg-type]
    )
    m = CS.pre_period_map
    assert m is not None
    mapped = m(panel, "y", options)
    assert mapped is not None
    rng = np.random.default_rng(4)
    ft = panel.first_treated
    if panel.weighted:  # equal weights per unit pair 2j, 2j+1: swap within pairs
        draws = np.repeat(ft[None, :], 40, axis=0)
        for d in draws[1:]:
            flip = np.flatnonzero(rng.random(ft.size // 2) < 0.5) * 2
            d[flip], d[flip + 1] = ft[flip + 1], ft[flip]
    else:
        draws = np.vstack([ft[None, :]] + [rng.permutation(ft)[None, :] for _ in range(39)])
    c = np.arange(len(mapped.event_times), dtype=float)
    coef = np.vstack([np.ones(c.size), c - c.mean(), rng.normal(size=c.size)])
    monkeypatch.setattr(cs_block_map, "_CHUNK_ELEMENTS", 7 * (panel.n_units + 200))
    monkeypatch.setattr(cs_block_map, "_COMPILED_WORK", 0)  # compiled however small
    monkeypatch.setattr(pilotlab_compiled, "MAX_THREADS", 3)  # each chunk's rows split over threads
    monkeypatch.setattr(pilotlab_compiled.os, "cpu_count", lambda: 3)
    calls: list[bool] = []
    compiled = cs_block_map._compiled_span

    def counted() -> object:
        kernel = compiled()
        calls.append(kernel is not None)
        return kernel

    monkeypatch.setattr(cs_block_map, "_compiled_span", counted)
    fast = mapped.sums(draws, coef)
    assert fast is not None
    assert len(calls) > 2 and all(calls)  # several chunks, each through the compiled pass
    monkeypatch.setattr(cs_block_map, "HAS_NUMBA", False)
    slow = mapped.sums(draws, coef)
    assert slow is not None
    assert not any(calls[-len(calls) // 2 :])  # the sparse products ran
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    monkeypatch.setattr(cs_block_map, "HAS_NUMBA", True)
    one = mapped.sums(draws[1], coef)  # a single re-assignment: one thread
    assert one is not None and calls[-1]  # (products of one row round on their own)
    np.testing.assert_allclose(one[0], fast[0][1:2], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(one[1], fast[1][1:2], rtol=1e-12, atol=1e-15)
    monkeypatch.setattr(cs_block_map, "HAS_NUMBA", False)
    assert np.all(fast[1][:, 0] > 0)
    # a unit moved into another cohort changes the cohorts' sizes: both decline
    other = draws[:3].copy()
    i, j = np.flatnonzero(ft == ft.max())[0], np.flatnonzero(ft != ft.max())[0]
    other[2, j] = ft[i]
    monkeypatch.setattr(cs_block_map, "HAS_NUMBA", True)
    assert mapped.sums(other, coef) is None
    monkeypatch.setattr(cs_block_map, "HAS_NUMBA", False)
    assert mapped.sums(other, coef) is None


def test_a_chunk_whose_first_assignment_keeps_clusters_whole_but_not_the_others() -> None:
    """Clusters assigned whole, then re-assignments of units: the first assignment of the chunk
    is nested, the others span cohorts, so the whole chunk takes the spanning sums and every
    assignment gets what it gets on its own (nested or spanning, equal to rounding)."""
    df = _frame(2, trend=0.1)
    df["g"] = df.groupby("region")["g"].transform("first")
    panel = _panel(df, cluster="region")
    m = CS.pre_period_map
    assert m is not None
    options = EstimatorOptions(inference="cluster", pretrend="none", replications=0)
    mapped = m(panel, "y", options)
    assert mapped is not None
    rng = np.random.default_rng(7)
    ft = panel.first_treated
    draws = np.vstack([ft[None, :]] + [rng.permutation(ft)[None, :] for _ in range(5)])
    coef = np.vstack([np.ones(len(mapped.event_times)), np.arange(len(mapped.event_times))])
    together = mapped.sums(draws, coef)
    assert together is not None
    alone = [mapped.sums(d, coef) for d in draws]
    assert all(a is not None for a in alone)
    for k in (0, 1):
        got = np.vstack([a[k] for a in alone if a is not None])
        np.testing.assert_allclose(together[k], got, rtol=1e-12, atol=1e-14)
