"""The estimators' distribution functions give exactly what scipy.stats gives, edges included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pilotlab.estimators import _dist

Q = np.array([0.0, 1e-300, 1e-10, 0.025, 0.5, 0.975, 1 - 1e-16, 1.0, -0.1, 1.1, np.nan])
X = np.array([-np.inf, -50, -1, -0.0, 0.0, 1e-300, 1, 50, 1e10, np.inf, np.nan])
DF = np.array([0.5, 1, 3, 30, 1e6, 1e300, np.inf, 0, -1, np.nan])


def _same(ours, theirs) -> None:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)  # NaN where scipy.stats has NaN


@pytest.mark.parametrize(
    ("ours", "theirs", "grid"),
    [
        (_dist.t_ppf, stats.t.ppf, Q),
        (_dist.t_sf, stats.t.sf, X),
        (_dist.chi2_sf, stats.chi2.sf, X),
    ],
)
def test_two_argument_functions_equal_scipy_stats(ours, theirs, grid) -> None:
    a, df = np.meshgrid(grid, DF)
    _same(ours(a, df), theirs(a, df))
    for v in (grid[3], grid[5]):  # scalars stay scalars
        assert type(ours(v, 3)) is type(theirs(v, 3)) and ours(v, 3) == theirs(v, 3)


@pytest.mark.parametrize(
    ("ours", "theirs", "grid"),
    [(_dist.norm_ppf, stats.norm.ppf, Q), (_dist.norm_sf, stats.norm.sf, X)],
)
def test_normal_functions_equal_scipy_stats(ours, theirs, grid) -> None:
    _same(ours(grid), theirs(grid))
    assert type(ours(grid[3])) is type(theirs(grid[3])) and ours(grid[3]) == theirs(grid[3])


def test_random_arguments_give_the_same_bits() -> None:
    rng = np.random.default_rng(4)
    q, x, df = rng.random(2000), rng.normal(scale=4, size=2000), rng.uniform(0.5, 200, 2000)
    _same(_dist.t_ppf(q, df), stats.t.ppf(q, df))
    _same(_dist.t_sf(x, df), stats.t.sf(x, df))
    _same(_dist.chi2_sf(x**2, df), stats.chi2.sf(x**2, df))
    _same(_dist.norm_ppf(q), stats.norm.ppf(q))
    _same(_dist.norm_sf(x), stats.norm.sf(x))
