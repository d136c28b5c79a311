"""pilotlab.distributions gives exactly what scipy.stats gives, edges and invalid arguments
included (the functions replace scipy.stats on the paths of validate and run)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from pilotlab import distributions as dist

Q = np.array([0.0, 1e-300, 1e-10, 0.025, 0.5, 0.975, 1 - 1e-16, 1.0, -0.1, 1.1, np.nan])
X = np.array([-np.inf, -50, -1, -0.0, 0.0, 1e-300, 1, 50, 1e10, np.inf, np.nan])
DF = np.array([0.5, 1, 3, 30, 1e6, 1e300, np.inf, 0, -1, np.nan])
NC = np.array([0.0, 1e-8, 0.5, 3, 40, -1, np.nan])
ENDS = np.array([-np.inf, -40, -10, -1, -0.0, 0.0, 1e-300, 1, 10, 40, np.inf, np.nan])


def _same(ours, theirs) -> None:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)  # NaN where scipy.stats has NaN


def _quiet(func, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn alike at invalid or extreme arguments
        return func(*args)


@pytest.mark.parametrize(
    ("ours", "theirs", "grid"),
    [
        (dist.t_ppf, stats.t.ppf, Q),
        (dist.t_sf, stats.t.sf, X),
        (dist.chi2_sf, stats.chi2.sf, X),
        (dist.chi2_ppf, stats.chi2.ppf, Q),
    ],
)
def test_two_argument_functions_equal_scipy_stats(ours, theirs, grid) -> None:
    a, df = np.meshgrid(grid, DF)
    _same(ours(a, df), _quiet(theirs, a, df))
    for v in (grid[3], grid[5]):  # scalars stay scalars
        assert type(ours(v, 3)) is type(theirs(v, 3)) and ours(v, 3) == theirs(v, 3)


@pytest.mark.parametrize(
    ("ours", "theirs", "grid", "last"),
    [
        (dist.f_sf, stats.f.sf, X, 4.0),
        (dist.f_ppf, stats.f.ppf, Q, 4.0),
        (dist.ncx2_sf, stats.ncx2.sf, X, 2.5),
        (dist.ncx2_sf, stats.ncx2.sf, X, 0.0),  # the central chi-squared
    ],
)
def test_three_argument_functions_equal_scipy_stats(ours, theirs, grid, last) -> None:
    a, df = np.meshgrid(grid, DF)
    _same(_quiet(ours, a, df, last), _quiet(theirs, a, df, last))
    if last > 0:  # the last parameter over a grid (Boost overflows at enormous non-centrality)
        other = np.meshgrid(grid, NC)
        _same(_quiet(ours, other[0], 3.0, other[1]), _quiet(theirs, other[0], 3.0, other[1]))
    assert type(ours(grid[6], 3, last)) is type(theirs(grid[6], 3, last))
    assert ours(grid[6], 3, last) == theirs(grid[6], 3, last)


def test_non_central_f_equals_scipy_stats() -> None:
    a, df = np.meshgrid(X, DF)
    x, nc = np.meshgrid(X, NC)
    for args in ((a, df, 4.0, 1.5), (a, 3.0, df, 1.5), (x, 3.0, 4.0, nc)):
        _same(_quiet(dist.ncf_sf, *args), _quiet(stats.ncf.sf, *args))
    assert dist.ncf_sf(3.0, 2, 10, 1.5) == stats.ncf.sf(3.0, 2, 10, 1.5)


def test_non_central_chi2_with_negative_non_centrality_is_nan() -> None:
    _same(dist.ncx2_sf(X, 3.0, -1.0), _quiet(stats.ncx2.sf, X, 3.0, -1.0))


@pytest.mark.parametrize(
    ("ours", "theirs", "grid"),
    [
        (dist.norm_ppf, stats.norm.ppf, Q),
        (dist.norm_sf, stats.norm.sf, X),
        (dist.norm_cdf, stats.norm.cdf, X),
    ],
)
def test_normal_functions_equal_scipy_stats(ours, theirs, grid) -> None:
    _same(ours(grid), theirs(grid))
    assert type(ours(grid[3])) is type(theirs(grid[3])) and ours(grid[3]) == theirs(grid[3])


def test_truncated_normal_quantile_equals_scipy_stats_at_the_edges() -> None:
    q = np.array([0.0, 1e-300, 1e-10, 0.3, 0.5, 0.95, 1 - 1e-16, 1.0, -0.1, np.nan])
    a, b, qq = np.meshgrid(ENDS, ENDS, q)  # every order of the limits, infinite and NaN ones
    _same(dist.truncnorm_ppf(qq, a, b), _quiet(stats.truncnorm.ppf, qq, a, b))
    assert type(dist.truncnorm_ppf(0.3, -1, 2)) is np.float64
    assert dist.truncnorm_ppf(0.3, -1, 2) == stats.truncnorm.ppf(0.3, -1, 2)


def test_random_arguments_give_the_same_bits() -> None:
    rng = np.random.default_rng(4)
    n = 4000
    q, x, df = rng.random(n), rng.normal(scale=4, size=n), rng.uniform(0.5, 200, n)
    dfd, nc = rng.uniform(0.5, 300, n), rng.exponential(5, n)
    lo = rng.normal(scale=5, size=n)
    hi = lo + rng.exponential(3, size=n)
    _same(dist.t_ppf(q, df), stats.t.ppf(q, df))
    _same(dist.t_sf(x, df), stats.t.sf(x, df))
    _same(dist.chi2_sf(x**2, df), stats.chi2.sf(x**2, df))
    _same(dist.chi2_ppf(q, df), stats.chi2.ppf(q, df))
    _same(dist.f_sf(x**2, df, dfd), stats.f.sf(x**2, df, dfd))
    _same(dist.f_ppf(q, df, dfd), stats.f.ppf(q, df, dfd))
    _same(dist.ncx2_sf(x**2, df, nc), stats.ncx2.sf(x**2, df, nc))
    _same(dist.ncf_sf(x**2, df, dfd, nc), stats.ncf.sf(x**2, df, dfd, nc))
    _same(dist.norm_ppf(q), stats.norm.ppf(q))
    _same(dist.norm_sf(x), stats.norm.sf(x))
    _same(dist.norm_cdf(x), stats.norm.cdf(x))
    _same(dist.truncnorm_ppf(q, lo, hi), stats.truncnorm.ppf(q, lo, hi))
    _same(dist.truncnorm_ppf(0.95, lo, hi), stats.truncnorm.ppf(0.95, lo, hi))
