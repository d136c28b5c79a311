"""Randomisation inference for Callaway & Sant'Anna by cohort blocks gives the numbers of
re-fitting every re-assignment: the same draws, the same permuted estimates (to rounding), the
same p-value and interval."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pilotlab.data.panel import NEVER
from pilotlab.estimators import ESTIMATORS
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.inference.permutation import permutation_test, placebo_estimates
from pilotlab.spec.models import CallawaySantAnnaOptions
from tests.support.cs import make_panel


def _panel(comparison: str = "never_treated", anticipation: int = 0, weight: bool = False):
    rng = np.random.default_rng(11)
    n, t = 40, 9
    cohorts = np.array([4, 6, 7])
    first = cohorts[rng.integers(0, 3, n)]
    first = np.where(rng.random(n) < 0.4, 0, first)
    unit, time = np.repeat(np.arange(n), t), np.tile(np.arange(1, t + 1), n)
    g = first[unit]
    y = rng.normal(size=n)[unit] + 0.2 * time + rng.normal(size=n * t)
    y += np.where((g > 0) & (time >= g), 0.8, 0.0)
    df = pd.DataFrame({"u": unit, "t": time, "g": g, "y": y, "w": 1.0 + unit % 3})
    return make_panel(
        df,
        unit="u",
        time="t",
        first_treated="g",
        outcomes=("y",),
        comparison=comparison,
        anticipation=anticipation,
        weight="w" if weight else None,
    )


def _both(panel, options):
    entry = ESTIMATORS["callaway_santanna"]
    fast = permutation_test(panel, "y", entry, options, np.random.default_rng(5))
    slow_entry = dataclasses.replace(entry, block_map=None)
    slow = permutation_test(panel, "y", slow_entry, options, np.random.default_rng(5))
    return fast, slow


@pytest.mark.parametrize(
    ("aggregation", "base_period", "comparison"),
    [
        ("simple", "varying", "never_treated"),
        ("dynamic", "universal", "never_treated"),
        ("group", "varying", "not_yet_treated"),
        ("calendar", "universal", "not_yet_treated"),
    ],
)
def test_cohort_blocks_equal_refits(aggregation, base_period, comparison) -> None:
    options = EstimatorOptions(
        inference="permutation",
        replications=39,
        callaway_santanna=CallawaySantAnnaOptions(aggregation=aggregation, base_period=base_period),
    )
    fast, slow = _both(_panel(comparison), options)
    assert fast.method == "cohort_blocks" and slow.method == "generic"
    assert fast.estimate == pytest.approx(slow.estimate, rel=1e-12)
    np.testing.assert_allclose(fast.distribution, slow.distribution, rtol=1e-9, atol=1e-12)
    assert fast.p_value == slow.p_value
    assert fast.n_assignments == slow.n_assignments and fast.exact == slow.exact
    assert fast.ci_lower == pytest.approx(slow.ci_lower, rel=1e-7)
    assert fast.ci_upper == pytest.approx(slow.ci_upper, rel=1e-7)


@pytest.mark.parametrize("window", [None, (2, 1)])
def test_anticipation_and_window(window) -> None:
    options = EstimatorOptions(
        inference="permutation",
        replications=29,
        window=window,
        callaway_santanna=CallawaySantAnnaOptions(aggregation="dynamic"),
    )
    fast, slow = _both(_panel(anticipation=1), options)
    assert fast.method == "cohort_blocks"
    np.testing.assert_allclose(fast.distribution, slow.distribution, rtol=1e-9, atol=1e-12)
    assert fast.p_value == slow.p_value


@pytest.mark.parametrize(
    ("base_period", "comparison"),
    [("varying", "never_treated"), ("universal", "not_yet_treated")],
)
def test_weighted_simple_aggregation_by_blocks_equals_refits(base_period, comparison) -> None:
    """With weights every re-assignment changes the cohorts' weighted sizes: the estimates come
    from each assignment's weighted block sums and sizes, still the numbers of re-fitting."""
    options = EstimatorOptions(
        inference="permutation",
        replications=39,
        callaway_santanna=CallawaySantAnnaOptions(base_period=base_period),
    )
    panel = _panel(comparison, weight=True)
    fast, slow = _both(panel, options)
    assert fast.method == "cohort_blocks" and slow.method == "generic"
    assert fast.estimate == pytest.approx(slow.estimate, rel=1e-12)
    np.testing.assert_allclose(fast.distribution, slow.distribution, rtol=1e-9, atol=1e-12)
    assert fast.p_value == slow.p_value
    assert fast.ci_lower == pytest.approx(slow.ci_lower, rel=1e-7)
    assert fast.ci_upper == pytest.approx(slow.ci_upper, rel=1e-7)
    unweighted, _ = _both(_panel(comparison), options)
    assert not np.allclose(unweighted.distribution, fast.distribution)  # the weights matter


def test_designs_the_map_does_not_cover_refit() -> None:
    options = EstimatorOptions(
        inference="permutation",
        replications=19,
        callaway_santanna=CallawaySantAnnaOptions(aggregation="dynamic"),
    )
    fast, slow = _both(_panel(weight=True), options)  # weighted, by event time: no map
    assert fast.method == slow.method == "generic"
    assert fast.p_value == slow.p_value


@pytest.mark.parametrize("equal", [True, False])
def test_whole_clusters_use_blocks_only_when_sizes_are_kept(equal: bool) -> None:
    rng = np.random.default_rng(3)
    sizes = np.full(12, 3) if equal else rng.integers(1, 6, 12)
    cl_first = np.array([0, 0, 0, 0, 0, 4, 4, 4, 6, 6, 6, 6])
    cluster = np.repeat(np.arange(12), sizes)
    n, t = cluster.size, 8
    unit, time = np.repeat(np.arange(n), t), np.tile(np.arange(1, t + 1), n)
    g = cl_first[cluster][unit]
    y = rng.normal(size=n)[unit] + 0.1 * time + rng.normal(size=n * t) + 0.5 * (g > 0) * (time >= g)
    df = pd.DataFrame({"u": unit, "t": time, "g": g, "y": y, "c": cluster[unit]})
    panel = make_panel(df, unit="u", time="t", first_treated="g", outcomes=("y",), cluster="c")
    options = EstimatorOptions(inference="permutation", replications=39)
    fast, slow = _both(panel, options)
    assert fast.level == "cluster"
    assert fast.method == ("cohort_blocks" if equal else "generic")
    np.testing.assert_allclose(fast.distribution, slow.distribution, rtol=1e-9, atol=1e-12)
    assert fast.p_value == slow.p_value


@pytest.mark.parametrize("window", [(8, 8), (2, 1)])
@pytest.mark.parametrize("weight", [False, True])
def test_event_study_cohort_blocks_equal_refits(window, weight) -> None:
    """The staggered event study on cohort x period cells is a map of cohort blocks too (with
    weights, one small solve per assignment, whose cohorts' weighted sizes it changes)."""
    panel = _panel(weight=weight)
    options = EstimatorOptions(inference="permutation", replications=39, window=window)
    entry = ESTIMATORS["event_study"]
    fast = permutation_test(panel, "y", entry, options, np.random.default_rng(5))
    slow_entry = dataclasses.replace(entry, block_map=None)
    slow = permutation_test(panel, "y", slow_entry, options, np.random.default_rng(5))
    assert fast.method == "cohort_blocks" and slow.method == "generic"
    np.testing.assert_allclose(fast.distribution, slow.distribution, rtol=1e-9, atol=1e-12)
    assert fast.p_value == slow.p_value
    assert fast.ci_lower == pytest.approx(slow.ci_lower, rel=1e-7)
    assert fast.ci_upper == pytest.approx(slow.ci_upper, rel=1e-7)


def test_blocks_of_every_kind_of_label_as_the_general_reading() -> None:
    """The one-gather reading of int64 labels (never, cohorts, labels between, before and
    beyond them, the extremes of int64) gives the blocks of the general reading."""
    from pilotlab.data.panel import NEVER
    from pilotlab.estimators.block_map import BlockMap

    lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    for cohorts in ([0], [3, 5, 9], [2, 3]):
        mapped = BlockMap(np.zeros((len(cohorts) + 1, 1)), np.array(cohorts), 0.0)
        labels = np.array([lo, lo + 1, -7, -2, -1, 0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 99,
                           hi - 2, hi - 1, NEVER])  # fmt: skip
        rng = np.random.default_rng(len(cohorts))
        ft = rng.choice(labels, size=(7, 40))
        fast = mapped.blocks(ft)
        top = cohorts[-1] + 1  # the general reading: clip into the table, never at its end
        table = np.full(top + 2, -1)
        table[cohorts], table[top + 1] = np.arange(len(cohorts)), len(cohorts)
        general = table[np.where(ft == NEVER, top + 1, np.clip(ft, -1, top))]
        assert fast.dtype == np.int64 and fast.shape == ft.shape
        np.testing.assert_array_equal(fast, general)
        small = np.where((ft > -999) & (ft < 999), ft, -1)  # narrower integers: general reading
        np.testing.assert_array_equal(mapped.blocks(small.astype(np.int32)), mapped.blocks(small))
        expect = np.full(labels.size, -1)
        expect[labels == NEVER] = len(cohorts)
        expect[labels < 0] = len(cohorts)  # labels before the panel read as never (as before)
        for k, g in enumerate(cohorts):
            expect[labels == g] = k
        np.testing.assert_array_equal(mapped.blocks(labels), expect)


def _placebos(entry, anticipation: int = 0, replications: int = 39, weight: bool = False):
    """Placebo estimates on the comparison units of ``_panel``, with the generator after them."""
    panel = _panel(anticipation=anticipation, weight=weight)
    treated = panel.is_treated_unit
    comp = panel.subset_units(~treated)
    labels = np.full(comp.n_units, NEVER, dtype=np.int64)
    labels[: int(treated.sum())] = panel.first_treated[treated] - panel.anticipation
    rng = np.random.default_rng(8)
    options = EstimatorOptions(inference="cluster", replications=replications)
    est, exact = placebo_estimates(comp, "y", entry, options, rng, labels, replications)
    return est, exact, rng.random()


# Callaway & Sant'Anna's fit draws from the generator, so each placebo is re-fitted (as before)
@pytest.mark.parametrize(("name", "fits"), [("event_study", 1), ("callaway_santanna", 39)])
@pytest.mark.parametrize(("anticipation", "weight"), [(0, False), (1, False), (0, True)])
def test_placebo_estimates_by_cohort_blocks_equal_refits(
    name: str, fits: int, anticipation: int, weight: bool
) -> None:
    entry = ESTIMATORS[name]
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return entry.fit(*args, **kwargs)

    fast = _placebos(dataclasses.replace(entry, fit=counted), anticipation, weight=weight)
    slow = _placebos(dataclasses.replace(entry, block_map=None), anticipation, weight=weight)
    assert len(calls) == fits  # event study: the first placebo's fit, the others from its map
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-9, atol=1e-12)
    assert fast[1] == slow[1] and fast[2] == slow[2]  # same draws, generator left alike


def test_placebo_estimates_refit_when_the_estimator_draws_random_numbers() -> None:
    entry = ESTIMATORS["event_study"]

    def drawing(panel, outcome, options, rng):
        rng.random()  # e.g. a bootstrap of its own: each placebo's draws differ
        return entry.fit(panel, outcome, options, rng)

    est, _, after = _placebos(dataclasses.replace(entry, fit=drawing), replications=19)
    slow = _placebos(dataclasses.replace(entry, fit=drawing, block_map=None), replications=19)
    np.testing.assert_array_equal(est, slow[0])
    assert after == slow[2]
