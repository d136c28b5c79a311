"""Wild cluster restricted bootstrap: brute-force equivalence, peer agreement, CI inversion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _infer_helpers import LinearFit, long_arrays, simulate_panel, twfe_fit
from pilotlab.estimators.inference.wild import (
    WEBB_BELOW,
    make_draws,
    prepare_wild_bootstrap,
    wild_bootstrap_tstats,
    wild_cluster_bootstrap,
)
from pilotlab.exceptions import EstimationError


def _fit_with_covariates(seed: int, n_units: int = 30, n_periods: int = 8) -> LinearFit:
    rng = np.random.default_rng(seed)
    y, treated = simulate_panel(n_units, n_periods, 7, 4, 0.3, 0.5, rng)
    yy, d, u, t = long_arrays(y, treated, 4)
    x1 = rng.normal(size=yy.size)
    x2 = rng.normal(size=yy.size) + 0.3 * d
    yy = yy + 0.5 * x1 - 0.2 * x2
    w = rng.uniform(0.5, 2.0, size=n_units)[u]
    return twfe_fit(
        yy, np.column_stack([d, x1, x2]), u, t, u // 2, names=("treated_post", "x1", "x2"), weight=w
    )


def _brute_force_tstats(fit: LinearFit, j: int, beta0: float, v: np.ndarray) -> np.ndarray:
    """Row-level WCR: rebuild y* for each draw, refit, CR1 t statistic."""
    X, y, cl = fit.X, fit.y, fit.cluster
    n, k = X.shape
    g = cl.max() + 1
    others = [i for i in range(k) if i != j]
    yr = y - X[:, j] * beta0
    xo = X[:, others]
    gam = np.linalg.lstsq(xo, yr, rcond=None)[0]
    ur = yr - xo @ gam
    fitted = xo @ gam + X[:, j] * beta0
    out = []
    c = g / (g - 1) * (n - 1) / (n - k - fit.df_absorbed)
    for b in range(v.shape[1]):
        ys = fitted + ur * v[cl, b]
        bs = fit.xtx_inv @ (X.T @ ys)
        e = ys - X @ bs
        scores = np.zeros((g, k))
        np.add.at(scores, cl, X * e[:, None])
        vcov = c * fit.xtx_inv @ scores.T @ scores @ fit.xtx_inv
        out.append((bs[j] - beta0) / math.sqrt(vcov[j, j]))
    return np.array(out)


@pytest.mark.parametrize("weights", ["rademacher", "webb", "mammen"])
@pytest.mark.parametrize("beta0", [0.0, 0.25, -1.0])
def test_cluster_level_algebra_equals_row_level_refits(weights: str, beta0: float) -> None:
    fit = _fit_with_covariates(11)
    draws = make_draws(15, 199, weights, np.random.default_rng(5))  # type: ignore[arg-type]
    state = prepare_wild_bootstrap(fit, "treated_post", draws)
    brute = _brute_force_tstats(fit, 0, beta0, draws.matrix()[:, :40])
    np.testing.assert_allclose(state.t_star(beta0)[:40], brute, rtol=1e-8, atol=1e-10)
    # and for a covariate coefficient
    state2 = prepare_wild_bootstrap(fit, 2, draws)
    brute2 = _brute_force_tstats(fit, 2, beta0, draws.matrix()[:, :20])
    np.testing.assert_allclose(state2.t_star(beta0)[:20], brute2, rtol=1e-8, atol=1e-10)


def test_observed_statistic_is_cr1_t() -> None:
    fit = _fit_with_covariates(3)
    res = wild_cluster_bootstrap(
        fit, "treated_post", replications=199, rng=np.random.default_rng(0)
    )
    X, cl = fit.X, fit.cluster
    n, k = X.shape
    g = cl.max() + 1
    scores = np.zeros((g, k))
    np.add.at(scores, cl, X * fit.resid[:, None])
    c = g / (g - 1) * (n - 1) / (n - k - fit.df_absorbed)
    se = math.sqrt((c * fit.xtx_inv @ scores.T @ scores @ fit.xtx_inv)[0, 0])
    assert res.std_error == pytest.approx(se, rel=1e-10)
    assert res.statistic == pytest.approx(fit.beta[0] / se, rel=1e-10)


def test_draws_are_reproducible_and_chunked() -> None:
    d = make_draws(5000, 2000, "rademacher", np.random.default_rng(1))
    assert d.chunk_size() < 2000
    m1, m2 = d.matrix(), d.matrix()
    np.testing.assert_array_equal(m1, m2)
    assert set(np.unique(m1)) == {-1.0, 1.0}
    assert abs(m1.mean()) < 0.01


def test_auto_weights_and_enumeration() -> None:
    rng = np.random.default_rng(0)
    assert make_draws(WEBB_BELOW - 1, 999, "auto", rng).weights == "webb"
    big = make_draws(WEBB_BELOW, 999, "auto", rng)
    assert big.weights == "rademacher" and not big.enumerated
    enum = make_draws(12, 9999, "rademacher", rng)
    assert enum.enumerated and enum.replications == 4096
    m = enum.matrix()
    assert np.unique(m, axis=1).shape[1] == 4096  # every sign vector exactly once
    webb = make_draws(6, 30000, "webb", rng).matrix()
    np.testing.assert_allclose(np.mean(webb**2), 1.0, atol=0.01)
    assert np.unique(webb).size == 6


def test_confidence_interval_inverts_the_p_value_function() -> None:
    rng = np.random.default_rng(4)
    y, treated = simulate_panel(40, 10, 6, 5, 0.5, 0.5, rng)
    yy, d, u, t = long_arrays(y, treated, 5)
    fit = twfe_fit(yy, d, u, t, u)
    draws = make_draws(40, 9999, "rademacher", np.random.default_rng(8))
    state = prepare_wild_bootstrap(fit, 0, draws)
    res = wild_cluster_bootstrap(fit, 0, alpha=0.05, draws=draws)
    assert res.ci_lower < res.estimate < res.ci_upper
    eps = 1e-6 * res.std_error
    for bound, inward in ((res.ci_lower, 1.0), (res.ci_upper, -1.0)):
        assert state.p_value(bound + inward * eps) > 0.05
        assert state.p_value(bound - inward * eps) <= 0.05
        assert state.p_value(bound) == pytest.approx(0.05, abs=0.002)
    # p at the estimate is 1; p of zero reproduces the headline p-value
    assert state.p_value(res.estimate) == pytest.approx(1.0)
    assert res.p_value == state.p_value(0.0)
    # the interval shrinks with alpha
    wide = wild_cluster_bootstrap(fit, 0, alpha=0.01, draws=draws)
    assert wide.ci_lower < res.ci_lower and wide.ci_upper > res.ci_upper


def test_tstats_for_romano_wolf_share_draws() -> None:
    fit = _fit_with_covariates(2)
    draws = make_draws(15, 499, "webb", np.random.default_rng(1))
    t0, ts = wild_bootstrap_tstats(fit, 0, draws)
    t0b, tsb = wild_bootstrap_tstats(fit, 0, draws)
    assert t0 == t0b
    np.testing.assert_array_equal(ts, tsb)
    assert ts.shape == (499,)


def test_errors_name_the_problem() -> None:
    fit = _fit_with_covariates(2)
    with pytest.raises(EstimationError, match="coefficient 'nope'"):
        wild_cluster_bootstrap(fit, "nope", rng=np.random.default_rng(0))
    with pytest.raises(EstimationError, match="replications"):
        wild_cluster_bootstrap(fit, 0, replications=10, rng=np.random.default_rng(0))
    with pytest.raises(EstimationError, match="draws have 7 clusters"):
        prepare_wild_bootstrap(fit, 0, make_draws(7, 99, "webb", np.random.default_rng(0)))


def test_matches_wildboottest_package_at_9999_draws() -> None:
    wbt = pytest.importorskip(
        "wildboottest.wildboottest",
        reason="the optional 'wildboottest' package (pip install 'pilotlab[bench]') is needed "
        "to compare p-values with a peer implementation",
    )
    sm = pytest.importorskip("statsmodels.api")
    import pandas as pd

    rng = np.random.default_rng(20)
    y, treated = simulate_panel(30, 8, 8, 4, 0.25, 0.4, rng)
    yy, d, u, t = long_arrays(y, treated, 4)
    fit = twfe_fit(yy, d, u, t, u)
    for weights in ("rademacher", "webb"):
        ours = wild_cluster_bootstrap(
            fit, 0, replications=9999, weights=weights, rng=np.random.default_rng(1)
        )
        model = sm.OLS(fit.y, pd.DataFrame({"treated_post": fit.X[:, 0]}))
        theirs = wbt.wildboottest(
            model,
            B=9999,
            cluster=u,
            param="treated_post",
            weights_type=weights,
            seed=12,
            show=False,
        )
        p_theirs = float(np.asarray(theirs["p-value"]).ravel()[0])
        # two independent Monte Carlo estimates of the same p: sd of the difference
        p = 0.5 * (p_theirs + ours.p_value)
        mc_sd = math.sqrt(2 * p * (1 - p) / 9999)
        assert abs(ours.p_value - p_theirs) < 4 * mc_sd + 1e-3, (weights, ours, p_theirs)
        assert 0.005 < ours.p_value < 0.995
