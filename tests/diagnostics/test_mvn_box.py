"""Genz's box probability on fixed quasi-random points against scipy's Genz integration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pilotlab.diagnostics.mvn_box import box_probability, box_probability_at


def _case(rng: np.random.Generator, n: int, singular: bool) -> tuple[np.ndarray, np.ndarray]:
    A = rng.normal(size=(n, max(1, n // 3) if singular else n))
    S = A @ A.T + (1e-8 if singular else 0.1) * np.eye(n)
    s = np.sqrt(np.diag(S))
    return S / np.outer(s, s), rng.normal(scale=1.5, size=n)


def _scipy(R: np.ndarray, m: np.ndarray, z: float) -> float:
    n = m.size
    return float(
        stats.multivariate_normal.cdf(
            np.full(n, z),
            mean=m,
            cov=R,
            allow_singular=True,
            abseps=1e-6,
            releps=0.0,
            lower_limit=np.full(n, -z),
            maxpts=2_000_000 * n,
            rng=np.random.default_rng(0),
        )
    )


def _check(seed: int, dims: list[int]) -> None:
    rng = np.random.default_rng(seed)
    for i, n in enumerate(dims):
        R, m = _case(rng, n, singular=i % 3 == 0)
        z = 1.959963984540054
        ours, err, _ = box_probability(np.full(n, -z), np.full(n, z), m, R, 1e-5)
        assert ours == pytest.approx(_scipy(R, m, z), abs=1e-4), (n, i)
        assert err < 3e-4  # the bound at the last stage of points


def test_matches_scipy_genz_on_random_boxes() -> None:
    _check(1, [3, 5])


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="a rank-one 3-d correlation (plus 1e-8) is 1.3e-4 off scipy: the near-degenerate "
    "variable makes the integrand an almost-indicator that the fixed points resolve poorly",
)
def test_matches_scipy_genz_on_many_random_boxes() -> None:
    _check(2, [int(n) for n in np.random.default_rng(3).integers(2, 21, size=40)])


def test_one_dimension_is_exact() -> None:
    p, err, _ = box_probability(np.array([-1.0]), np.array([2.0]), np.array([0.5]), np.eye(1))
    assert p == pytest.approx(stats.norm.cdf(1.5) - stats.norm.cdf(-1.5), abs=1e-14)
    assert err == 0.0


def test_perfectly_correlated_pair_is_the_one_dimensional_probability() -> None:
    R = np.ones((2, 2))
    p, _ = box_probability_at(np.array([-1.0, -2.0]), np.array([1.0, 0.5]), np.zeros(2), R, 1024)
    assert p == pytest.approx(stats.norm.cdf(0.5) - stats.norm.cdf(-1.0), abs=1e-4)


def test_same_points_give_a_smooth_function_of_the_mean() -> None:
    rng = np.random.default_rng(4)
    R, m = _case(rng, 6, singular=False)
    z = np.full(6, 1.96)
    g = np.linspace(0.0, 1.0, 21)
    p = np.array([box_probability_at(-z, z, t * m, R, 1024)[0] for t in g])
    # common points: second differences are of the order of the grid's curvature, not noise
    assert np.max(np.abs(np.diff(p, 2))) < 5e-3
    assert box_probability_at(-z, z, m, R, 1024) == box_probability_at(-z, z, m, R, 1024)


@pytest.mark.parametrize("singular", [False, True])
def test_threads_give_the_same_bits_as_one(monkeypatch: pytest.MonkeyPatch, singular: bool) -> None:
    import os

    R, m = _case(np.random.default_rng(11), 6, singular)
    box = np.full(6, 1.7)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)  # three threads: uneven shares of the 8
    three = box_probability_at(-box, box, m, R, 2048)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    one = box_probability_at(-box, box, m, R, 2048)
    assert three == one
