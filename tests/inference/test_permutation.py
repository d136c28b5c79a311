"""Randomisation inference: exactness on tiny designs, fast path = re-estimation, CI inversion."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from pilotlab.data.assignment import enumerate_assignments
from pilotlab.data.panel import NEVER, WEIGHT
from pilotlab.estimators import get_estimator
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions
from pilotlab.exceptions import EstimationError
from pilotlab.inference.permutation import permutation_test
from tests.support.infer import make_panel, twfe_effect_fit, twfe_fit

FAST = EstimatorEntry(
    "twfe",
    "two-way fixed effects (test stand-in)",
    twfe_effect_fit,
    "TWFE (test stand-in)",
    Capabilities(inference=("cluster",), linear=True, closed_form_permutation=True),
)
SLOW = EstimatorEntry(
    "twfe_generic",
    "two-way fixed effects by refitting",
    twfe_effect_fit,
    "TWFE via re-fit",
    Capabilities(inference=("cluster",)),
)


def _twfe(y: np.ndarray, ft: np.ndarray) -> float:
    n, t = y.shape
    unit = np.repeat(np.arange(n), t)
    time = np.tile(np.arange(t), n)
    d = (time >= np.minimum(ft, t)[unit]).astype(float)
    return float(twfe_fit(y.reshape(-1), d, unit, time, unit).beta[0])


def test_enumeration_is_complete_and_distinct() -> None:
    labels = np.array([2, 2, 3, NEVER, NEVER, NEVER, NEVER])
    rows = enumerate_assignments(labels)
    assert rows.shape == (7 * 6 // 2 * 5, 7)  # C(7,2) * C(5,1) = 105
    assert np.unique(rows, axis=0).shape[0] == rows.shape[0]
    assert all(sorted(r) == sorted(labels) for r in rows.tolist())


def test_exact_p_value_on_tiny_common_start_design() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=(6, 4)) + np.array([0, 0, 1.5, 1.5]) * np.array([1, 1, 0, 0, 0, 0])[:, None]
    ft = np.array([2, 2, NEVER, NEVER, NEVER, NEVER])
    panel = make_panel(y, ft)
    res = permutation_test(panel, "y", FAST, EstimatorOptions(replications=999), rng)
    assert res.exact and res.n_assignments == 15 and res.method == "fast_twfe"
    est = _twfe(y, ft)
    brute = []
    for treated in itertools.combinations(range(6), 2):
        g = np.full(6, NEVER)
        g[list(treated)] = 2
        brute.append(_twfe(y, g))
    brute = np.array(brute)
    assert res.estimate == pytest.approx(est, rel=1e-10)
    assert res.p_value == pytest.approx(np.mean(np.abs(brute) >= abs(est) - 1e-12), abs=1e-12)
    assert res.p_value >= 1 / 15  # the smallest attainable exact p-value


def test_fast_path_equals_generic_re_estimation_staggered() -> None:
    rng = np.random.default_rng(5)
    n, t = 12, 6
    y = rng.normal(size=(n, t))
    ft = np.array([2, 2, 3, 4] + [NEVER] * 8)
    y[:4] += 0.8 * (np.arange(t)[None, :] >= ft[:4, None])
    panel = make_panel(y, ft)
    opts = EstimatorOptions(replications=300)
    fast = permutation_test(panel, "y", FAST, opts, np.random.default_rng(1))
    slow = permutation_test(panel, "y", SLOW, opts, np.random.default_rng(1))
    assert not fast.exact and fast.method == "fast_twfe" and slow.method == "generic"
    np.testing.assert_allclose(fast.distribution, slow.distribution, rtol=1e-8, atol=1e-10)
    assert fast.p_value == pytest.approx(slow.p_value)
    assert fast.ci_lower == pytest.approx(slow.ci_lower, rel=1e-6)
    assert fast.ci_upper == pytest.approx(slow.ci_upper, rel=1e-6)
    # the permuted assignments keep the roll-out schedule: estimates are finite and vary
    assert np.isfinite(fast.distribution).all() and np.std(fast.distribution) > 0


def _refitted(name: str) -> EstimatorEntry:
    """The registered estimator without its closed form: every re-assignment refitted."""
    entry = get_estimator(name)
    caps = dataclasses.replace(entry.capabilities, closed_form_permutation=False)
    return dataclasses.replace(entry, capabilities=caps)


@pytest.mark.parametrize(
    ("estimator", "ft", "cluster"),
    [
        ("twfe", [2, 2, 3, 4, 4] + [NEVER] * 9, None),  # staggered
        ("twfe", [3] * 4 + [NEVER] * 10, None),  # common start
        ("did", [3] * 4 + [NEVER] * 10, None),
        ("twfe", [2] * 4 + [4] * 2 + [NEVER] * 8, np.repeat(np.arange(7), 2)),  # whole clusters
    ],
)
def test_weighted_closed_form_equals_refitting(
    estimator: str, ft: list[int], cluster: np.ndarray | None
) -> None:
    """With unit weights the coefficient's denominator moves with the assignment (the weight
    treated in each period); the closed form still gives every refitted estimate, p-value and
    interval."""
    rng = np.random.default_rng(11)
    n, t = 14, 6
    y = rng.normal(size=(n, t)) + rng.normal(size=(n, 1))
    first = np.array(ft)
    y += 0.7 * (np.arange(t)[None, :] >= np.minimum(first, t)[:, None])
    w = rng.uniform(0.2, 4.0, n)
    if cluster is not None:
        w = w[cluster]  # a cluster's units share a weight, as a cluster-level weight would
        w[::3] *= 1.7  # but not always
    panel = make_panel(y, first, cluster, weights=w)
    assert panel.weighted and panel.unit_weights() is not None
    opts = EstimatorOptions(replications=199)
    fast = permutation_test(panel, "y", get_estimator(estimator), opts, np.random.default_rng(3))
    slow = permutation_test(panel, "y", _refitted(estimator), opts, np.random.default_rng(3))
    assert fast.method == "fast_twfe" and slow.method == "generic"
    assert fast.level == slow.level == ("unit" if cluster is None else "cluster")
    np.testing.assert_allclose(fast.distribution, slow.distribution, rtol=1e-9, atol=1e-12)
    assert fast.estimate == pytest.approx(slow.estimate, rel=1e-10)
    assert fast.p_value == slow.p_value
    assert fast.ci_lower == pytest.approx(slow.ci_lower, rel=1e-7)
    assert fast.ci_upper == pytest.approx(slow.ci_upper, rel=1e-7)
    unweighted = permutation_test(
        make_panel(y, first, cluster), "y", get_estimator(estimator), opts,
        np.random.default_rng(3),
    )  # fmt: skip
    assert not np.allclose(unweighted.distribution, fast.distribution)  # the weights matter


def test_weights_that_vary_within_a_unit_refit() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=(8, 5))
    panel = make_panel(y, np.array([2, 2] + [NEVER] * 6), weights=np.linspace(1, 2, 8))
    frame = panel.frame.copy()
    frame.loc[frame.index[::4], WEIGHT] *= 2.0
    varying = panel.with_frame(frame)
    assert varying.unit_weights() is None
    res = permutation_test(varying, "y", get_estimator("twfe"), EstimatorOptions(), rng)
    assert res.method == "generic"


def test_interval_inverts_the_sharp_null() -> None:
    rng = np.random.default_rng(7)
    n, t = 20, 6
    y = rng.normal(size=(n, t))
    ft = np.array([3] * 5 + [NEVER] * 15)
    y[:5, 3:] += 1.0
    panel = make_panel(y, ft)
    opts = EstimatorOptions(replications=2000, alpha=0.1)
    res = permutation_test(panel, "y", FAST, opts, np.random.default_rng(2))
    assert res.ci_lower < res.estimate < res.ci_upper
    d = (np.arange(t)[None, :] >= np.minimum(ft, t)[:, None]).astype(float)
    eps = 1e-4 * (res.ci_upper - res.ci_lower)
    for bound, inward in ((res.ci_lower, 1.0), (res.ci_upper, -1.0)):
        inside = permutation_test(
            make_panel(y - (bound + inward * eps) * d, ft),
            "y",
            FAST,
            opts,
            np.random.default_rng(2),
        )
        outside = permutation_test(
            make_panel(y - (bound - inward * eps) * d, ft),
            "y",
            FAST,
            opts,
            np.random.default_rng(2),
        )
        assert inside.p_value > 0.1 >= outside.p_value


def test_cluster_level_assignment() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=(12, 4))
    cluster = np.repeat(np.arange(6), 2)
    ft = np.array([2, 2, 2, 2] + [NEVER] * 8)  # clusters 0 and 1 treated
    res = permutation_test(make_panel(y, ft, cluster), "y", FAST, EstimatorOptions(), rng)
    assert res.level == "cluster" and res.exact and res.n_assignments == 15


def test_errors() -> None:
    y = np.zeros((4, 3))
    panel = make_panel(y, np.full(4, NEVER))
    with pytest.raises(EstimationError, match="treated and untreated"):
        permutation_test(panel, "y", FAST, EstimatorOptions(), np.random.default_rng(0))
    with pytest.raises(EstimationError, match="replications is 5"):
        permutation_test(
            make_panel(y, np.array([1, NEVER, NEVER, NEVER])),
            "y",
            FAST,
            EstimatorOptions(replications=5),
            np.random.default_rng(0),
        )
