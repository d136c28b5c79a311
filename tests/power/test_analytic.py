"""Analytic DiD MDE: the textbook formula on i.i.d. data, AR(1) estimation, exact variances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.signal import lfilter

from pilotlab.power import (
    analytic_mde,
    ar1_covariance,
    did_variance,
    estimate_ar1,
    textbook_did_mde,
)
from tests.support.power import iid_history


def _matrix(df, n_units: int, n_periods: int) -> np.ndarray:
    return df["outcome"].to_numpy().reshape(n_units, n_periods)


@pytest.mark.parametrize(("m", "r", "J", "k"), [(8, 4, 100, 20), (20, 12, 300, 6), (3, 1, 40, 20)])
def test_iid_variance_is_the_textbook_formula(m: int, r: int, J: int, k: int) -> None:
    sigma = 1.7
    v = did_variance(np.eye(m + r) * sigma**2, m, r, J, k)
    P = k / J
    assert v == pytest.approx(sigma**2 * (1 / m + 1 / r) / (P * (1 - P) * J), rel=1e-12)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert z * math.sqrt(v) == pytest.approx(textbook_did_mde(sigma, m, r, J, k), rel=1e-12)
    # Bloom (1995) worked number: z = 2.80 for a two-sided 5% test at 80% power.
    assert z == pytest.approx(2.8016, abs=1e-4)


def test_analytic_mde_matches_textbook_on_iid_history() -> None:
    J, T, sigma = 400, 16, 1.5
    Y = _matrix(iid_history(J, T, sigma, seed=11), J, T)
    an = analytic_mde(Y, pre=T, post=4, n_treated=40, df=None)
    assert abs(an.rho) < 0.03
    assert math.sqrt(an.sigma2) == pytest.approx(sigma, rel=0.02)
    textbook = textbook_did_mde(sigma, T, 4, J, 40)
    assert an.mde == pytest.approx(textbook, rel=0.03)
    assert an.mde_iid == pytest.approx(an.mde, rel=0.03)  # no serial correlation to add
    assert any("AR(1)" in a for a in an.assumptions)


@pytest.mark.parametrize("rho", [0.0, 0.4, 0.8])
def test_ar1_estimate_recovers_rho_despite_demeaning(rho: float) -> None:
    rng = np.random.default_rng(3)
    J, T = 600, 12
    e = rng.normal(size=(J, T))
    e[:, 0] /= math.sqrt(1 - rho**2)
    Y = lfilter([1.0], [1.0, -rho], e, axis=1) + rng.normal(0, 3, (J, 1)) + np.arange(T)
    sigma2, rho_hat = estimate_ar1(Y)
    assert rho_hat == pytest.approx(rho, abs=0.05)
    assert sigma2 == pytest.approx(1 / (1 - rho**2), rel=0.1)


def test_did_variance_matches_monte_carlo_under_ar1() -> None:
    """The serial-correlation variance is exact: compare with the DiD of simulated AR(1) panels."""
    rho, m, r, J, k, reps = 0.7, 6, 3, 50, 10, 20_000
    rng = np.random.default_rng(5)
    L = np.linalg.cholesky(ar1_covariance(m + r, 1.0, rho))
    e = rng.normal(size=(reps, J, m + r)) @ L.T
    contrast = e[..., m:].mean(-1) - e[..., :m].mean(-1)
    est = contrast[:, :k].mean(1) - contrast[:, k:].mean(1)
    v = did_variance(ar1_covariance(m + r, 1.0, rho), m, r, J, k)
    assert est.var() == pytest.approx(v, rel=0.04)  # MC relative SE ~ sqrt(2 / 20000) = 1%
    assert v != pytest.approx(did_variance(np.eye(m + r), m, r, J, k), rel=0.1)
