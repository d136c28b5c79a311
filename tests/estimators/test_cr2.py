"""CR2 variance and Bell-McCaffrey degrees of freedom against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import sqrtm

from pilotlab.estimators.cr2 import cr2


def _ols(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    M = np.linalg.inv(X.T @ X)
    b = M @ X.T @ y
    return b, y - X @ b, M


def _dense(X: np.ndarray, e: np.ndarray, cl: np.ndarray, M: np.ndarray, c: np.ndarray):  # type: ignore[no-untyped-def]
    """Textbook CR2 and Satterthwaite degrees of freedom with full n x n matrices."""
    n = X.shape[0]
    H = X @ M @ X.T
    eye = np.eye(n)
    meat = np.zeros((X.shape[1],) * 2)
    cols = []
    for g in np.unique(cl):  # the reference loops over clusters on purpose
        i = np.flatnonzero(cl == g)
        A = np.real(np.linalg.inv(sqrtm(eye[np.ix_(i, i)] - H[np.ix_(i, i)])))
        s = X[i].T @ A @ e[i]
        meat += np.outer(s, s)
        col = np.zeros(n)
        col[i] = A @ X[i] @ M @ c
        cols.append((eye - H) @ col)
    P = np.array(cols).T
    omega = P @ P.T
    return M @ meat @ M, np.trace(omega) ** 2 / np.trace(omega @ omega)


@pytest.mark.parametrize("seed", range(4))
def test_cr2_and_dof_match_the_dense_textbook_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    cl = rng.integers(0, 11, n)  # unequal cluster sizes
    X = np.column_stack([np.ones(n), rng.normal(size=n), (rng.random(n) < 0.4), rng.normal(size=n)])
    y = X @ [1.0, 2.0, 0.5, -1.0] + rng.normal(size=11)[cl] + rng.normal(size=n)
    _, e, M = _ols(X, y)
    for j in (1, 2):
        c = np.eye(4)[j]
        got = cr2(X, e, cl, M, c[None])
        V, dof = _dense(X, e, cl, M, c)
        assert np.allclose(got.vcov, V, rtol=1e-10, atol=1e-14)
        assert got.dof[0] == pytest.approx(dof, rel=1e-9)
    assert got.n_clusters == len(np.unique(cl))


def test_singleton_clusters_are_hc2_as_statsmodels_computes_it() -> None:
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(5)
    n = 50
    X = sm.add_constant(np.column_stack([rng.normal(size=n), rng.random(n) < 0.3]).astype(float))
    y = X @ [0.0, 1.0, 2.0] + rng.normal(size=n) * (1 + X[:, 2])
    _, e, M = _ols(X, y)
    ref = sm.OLS(y, X).fit(cov_type="HC2")
    assert np.allclose(cr2(X, e, np.arange(n), M).vcov, ref.cov_params(), rtol=1e-12)


def test_difference_in_means_dof_is_welch_satterthwaite_with_equal_variances() -> None:
    """HC2 of a difference in means is s1^2/n1 + s0^2/n0 (Neyman); its Bell-McCaffrey degrees of
    freedom under the homoskedastic working model is Welch's formula with equal variances
    (Imbens & Kolesar 2016, section III)."""
    rng = np.random.default_rng(2)
    n1, n0 = 7, 23
    d = np.r_[np.ones(n1), np.zeros(n0)]
    y = 1.0 + 0.5 * d + rng.normal(size=n1 + n0) * (1 + d)
    X = np.column_stack([np.ones(d.size), d])
    _, e, M = _ols(X, y)
    got = cr2(X, e, np.arange(d.size), M, np.array([[0.0, 1.0]]))
    s1, s0 = y[d == 1].var(ddof=1), y[d == 0].var(ddof=1)
    assert got.vcov[1, 1] == pytest.approx(s1 / n1 + s0 / n0, rel=1e-12)
    welch = (1 / n1 + 1 / n0) ** 2 / (1 / (n1**2 * (n1 - 1)) + 1 / (n0**2 * (n0 - 1)))
    assert got.dof[0] == pytest.approx(welch, rel=1e-12)


def test_intercept_only_model_matches_the_published_closed_forms() -> None:
    """The population mean with clusters of sizes n_j: closed forms of CR2 and its Satterthwaite
    degrees of freedom as checked in R's clubSandwich (tests/testthat/test_intercept_formulas.R,
    Pustejovsky): V = sum n_j^2 (ybar_j - ybar)^2 / (1 - n_j / N) / N^2 and
    df = N^2 / (N^2 sum n_j^2/(N-n_j)^2 - 2 N sum n_j^3/(N-n_j)^2 + (sum n_j^2/(N-n_j))^2)."""
    rng = np.random.default_rng(20190513)
    nj = 1 + rng.negative_binomial(2, 2 / 7, size=14)
    g = np.repeat(np.arange(nj.size), nj)
    N = int(nj.sum())
    y = rng.normal(scale=np.sqrt(0.2), size=nj.size)[g] + rng.normal(scale=np.sqrt(0.8), size=N)
    X = np.ones((N, 1))
    _, e, M = _ols(X, y)
    got = cr2(X, e, g, M, np.ones((1, 1)))
    ybar = np.bincount(g, weights=y) / nj
    v = np.sum(nj**2 * (ybar - y.mean()) ** 2 / (1 - nj / N)) / N**2
    df = N**2 / (
        N**2 * np.sum(nj**2 / (N - nj) ** 2)
        - 2 * N * np.sum(nj**3 / (N - nj) ** 2)
        + np.sum(nj**2 / (N - nj)) ** 2
    )
    assert got.vcov[0, 0] == pytest.approx(v, rel=1e-12)
    assert got.dof[0] == pytest.approx(df, rel=1e-10)


def test_a_cluster_with_leverage_one_gets_a_pseudo_inverse_not_an_error() -> None:
    rng = np.random.default_rng(0)
    n = 12
    X = np.column_stack([np.ones(n), np.r_[1.0, np.zeros(n - 1)], rng.normal(size=n)])
    y = rng.normal(size=n)
    _, e, M = _ols(X, y)
    got = cr2(X, e, np.arange(n), M, np.eye(3)[[2]])
    assert np.isfinite(got.vcov).all() and np.isfinite(got.dof).all()
