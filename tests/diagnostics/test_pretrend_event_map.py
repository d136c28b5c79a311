"""The randomisation pre-test of a staggered event study from one pass over the units equals
re-fitting every re-assignment.

Each case runs the test twice with the same seed: through the event study's pre-period map
(leads and their cluster-robust covariance for all re-assignments at once) and with the map
removed (one re-fit per re-assignment); the statistics and p-values must agree to rounding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab.data.panel import Panel
from pilotlab.diagnostics import pretrend
from pilotlab.estimators import ESTIMATORS, _label_sums
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.exceptions import PilotlabWarning
from tests.support.cs import make_panel
from tests.support.pretest import mapped_and_refitted

ES = ESTIMATORS["event_study"]


def _frame(seed: int, n: int = 48, T: int = 10, trend: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice([-1, 4, 6, 7], size=n, p=[0.3, 0.25, 0.25, 0.2])
    u = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(T), n)
    gu = g[u]
    y = (
        10.0
        + rng.normal(size=n)[u]
        + 2 * np.sin(t)
        + np.where((gu >= 0) & (t >= gu), 1.0, 0.0)
        + trend * np.where(gu >= 0, t, 0)
        + rng.normal(size=u.size)
    )
    region = (u // 4) if seed % 2 == 0 else (u % 7)  # whole cohorts per cluster or not
    return pd.DataFrame({"unit": u, "time": t, "y": y, "g": gu, "region": region})


def _panel(df: pd.DataFrame, **kw: object) -> Panel:
    return make_panel(df, unit="unit", time="time", first_treated="g", outcomes=("y",),
                      never_value=-1, **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture(autouse=True)
def _no_power(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the test could detect is computed after it and not compared here."""
    monkeypatch.setattr(pretrend, "with_power", lambda test, pre, result: test)


#: name -> (panel keywords, options keywords, whole cohorts per cluster)
CASES: dict[str, tuple[dict[str, object], dict[str, object], bool]] = {
    "units": ({}, {}, False),
    "clusters across cohorts": ({"cluster": "region"}, {}, False),
    "clusters assigned whole": ({"cluster": "region"}, {}, True),
    "binned window": ({"cluster": "region"}, {"window": (3, 2)}, False),
    "anticipation": ({"anticipation": 1}, {"window": (4, 3)}, False),
    "not yet treated": ({"comparison": "not_yet_treated"}, {}, False),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("trend", [0.0, 0.2])
def test_one_pass_gives_the_refits_statistic_and_p_value(name: str, trend: float) -> None:
    panel_kw, opt_kw, whole = CASES[name]
    df = _frame(2 if whole else 3, trend=trend)
    if whole:  # clusters of four units with one cohort each
        df["g"] = df.groupby("region")["g"].transform("first")
    options = EstimatorOptions(
        inference="cluster", pretrend="randomization", replications=99, **opt_kw
    )  # type: ignore[arg-type]
    fast, slow = mapped_and_refitted(ES, _panel(df, **panel_kw), options)
    assert "re-estimated" in slow.test
    assert "block sums" in fast.test
    assert fast.statistic == pytest.approx(slow.statistic, rel=1e-10, abs=1e-12)
    assert fast.p_value == slow.p_value


def test_every_reassignments_leads_and_covariance_equal_its_refit() -> None:
    """Not only the statistic: each re-assignment's leads and their cluster-robust covariance
    are its re-fit's, with clusters that span cohorts."""
    panel = _panel(_frame(3, trend=0.1), cluster="region")
    m = ES.pre_period_map
    assert m is not None
    options = EstimatorOptions(inference="cluster", pretrend="none", window=(4, 3))
    mapped = m(panel, "y", options)
    assert mapped is not None and mapped.leads is not None
    rng = np.random.default_rng(1)
    ft = panel.first_treated
    draws = np.vstack([ft[None, :]] + [rng.permutation(ft)[None, :] for _ in range(8)])
    got = mapped.estimates(draws)
    assert got is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotlabWarning)
        for b, row in enumerate(draws):
            pre = ES.fit(panel.with_first_treated(row), "y", options, rng).pre_period
            assert pre is not None and pre.event_times == mapped.event_times
            np.testing.assert_allclose(got[0][b], pre.estimates, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(got[1][b], pre.cov, rtol=1e-9, atol=1e-14)


def test_an_assignment_that_changes_a_cohorts_size_is_refitted() -> None:
    """Clusters of unequal sizes assigned whole: a swap changes the cohorts' sizes, so the map
    declines it (the re-fits run), as it declines a first treated period it does not know."""
    df = _frame(2, trend=0.1)
    df["region"] = np.minimum(df["unit"] // 4, 9)
    df["g"] = df.groupby("region")["g"].transform("first")
    panel = _panel(df, cluster="region")
    m = ES.pre_period_map
    assert m is not None
    mapped = m(panel, "y", EstimatorOptions(inference="cluster", pretrend="none"))
    assert mapped is not None
    ft = panel.first_treated
    assert mapped.estimates(ft) is not None
    big = np.flatnonzero(df.groupby("unit")["region"].first().to_numpy() == 9)
    if np.all(ft[big] == ft[0]):
        pytest.skip("the big cluster shares the first cluster's cohort")
    other = ft.copy()
    other[big], other[:4] = ft[0], ft[big[0]]  # swap the big cluster with the first one
    assert mapped.estimates(other) is None
    unknown = ft.copy()
    unknown[np.flatnonzero(ft == ft.min())[0]] = 2  # a start period no cohort has
    assert mapped.estimates(unknown) is None


def test_no_map_without_cluster_robust_errors_or_with_weights() -> None:
    df = _frame(3)
    m = ES.pre_period_map
    assert m is not None
    assert m(_panel(df), "y", EstimatorOptions(inference="robust")) is None
    df["w"] = np.random.default_rng(0).uniform(0.5, 2.0, size=len(df))
    assert m(_panel(df, weight="w"), "y", EstimatorOptions(inference="cluster")) is None


@pytest.mark.skipif(not _label_sums.HAS_NUMBA, reason="numba is not importable here")
def test_compiled_and_numpy_label_sums_are_the_same_bits() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=(7, 50))
    values = rng.normal(size=(4, 50, 3))
    cluster = rng.integers(0, 6, size=50)
    a = _label_sums.label_cluster_sums(labels, values, cluster, 6, backend="numba")
    b = _label_sums.label_cluster_sums(labels, values, cluster, 6, backend="numpy")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # and what they add up: unit by unit, each unit's row for its label in its cluster
    want = np.zeros((7, 6, 3))
    for r in range(7):
        np.add.at(want[r], cluster, values[labels[r], np.arange(50)])
    np.testing.assert_allclose(a[0], want, rtol=1e-14, atol=1e-14)
    assert a[1].sum() == 7 * 50
