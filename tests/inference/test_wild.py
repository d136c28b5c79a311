"""Wild cluster restricted bootstrap: brute-force equivalence, peer agreement, CI inversion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pilotlab.exceptions import EstimationError
from pilotlab.inference.wild import (
    WEBB_BELOW,
    make_draws,
    prepare_wild_bootstrap,
    wild_bootstrap_tstats,
    wild_cluster_bootstrap,
)
from tests.support.infer import LinearFit, long_arrays, simulate_panel, twfe_fit


def _raw_with_covariates(seed: int, n_units: int = 30, n_periods: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y, treated = simulate_panel(n_units, n_periods, 7, 4, 0.3, 0.5, rng)
    yy, d, u, t = long_arrays(y, treated, 4)
    x1 = rng.normal(size=yy.size)
    x2 = rng.normal(size=yy.size) + 0.3 * d
    yy = yy + 0.5 * x1 - 0.2 * x2
    w = rng.uniform(0.5, 2.0, size=n_units)[u]
    R = np.column_stack([d, x1, x2])
    return {"y": yy, "R": R, "unit": u, "time": t, "cl": u // 2, "w": w}


def _fit_with_covariates(seed: int, n_units: int = 30, n_periods: int = 8) -> LinearFit:
    r = _raw_with_covariates(seed, n_units, n_periods)
    return twfe_fit(
        r["y"], r["R"], r["unit"], r["time"], r["cl"], names=("treated_post", "x1", "x2"),
        weight=r["w"],
    )  # fmt: skip


def _brute_force_tstats(raw: dict[str, np.ndarray], j: int, beta0: float, v: np.ndarray):
    """Row-level WCR: rebuild y* for each draw and refit it with all the dummies."""
    c = np.zeros(raw["R"].shape[1])
    c[j] = 1.0
    return _refit_reference(
        raw["y"], raw["R"], raw["unit"], raw["time"], raw["cl"], c, beta0, v, raw["w"]
    )[1]


@pytest.mark.parametrize("weights", ["rademacher", "webb", "mammen"])
@pytest.mark.parametrize("beta0", [0.0, 0.25, -1.0])
def test_cluster_level_algebra_equals_row_level_refits(weights: str, beta0: float) -> None:
    raw = _raw_with_covariates(11)
    fit = _fit_with_covariates(11)
    draws = make_draws(15, 199, weights, np.random.default_rng(5))  # type: ignore[arg-type]
    state = prepare_wild_bootstrap(fit, "treated_post", draws)
    brute = _brute_force_tstats(raw, 0, beta0, draws.matrix()[:, :40])
    root_c = math.sqrt(state.scale)  # the reference leaves out the CR1 factor
    np.testing.assert_allclose(state.t_star(beta0)[:40] * root_c, brute, rtol=1e-8, atol=1e-10)
    # and for a covariate coefficient
    state2 = prepare_wild_bootstrap(fit, 2, draws)
    brute2 = _brute_force_tstats(raw, 2, beta0, draws.matrix()[:, :20])
    np.testing.assert_allclose(
        state2.t_star(beta0)[:20] * math.sqrt(state2.scale), brute2, rtol=1e-8, atol=1e-10
    )


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
        # the peer refits every sample with the unit and period dummies as regressors
        design = pd.DataFrame(np.column_stack([d, _dummies(u), _dummies(t)[:, 1:]]))
        design.columns = ["treated_post", *(f"fe{i}" for i in range(design.shape[1] - 1))]
        model = sm.OLS(yy, design)
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


# ----------------------------------------------------------------------------------------------
# Exact reference: every Rademacher sign vector, each bootstrap sample refitted by least squares
# with dense unit and period dummies (so the period effects, which are not nested in the
# clusters, are re-estimated in every draw), then the CR1 t statistic of the tested combination.


def _dummies(codes: np.ndarray) -> np.ndarray:
    return (codes[:, None] == np.arange(int(codes.max()) + 1)[None, :]).astype(float)


def _refit_reference(
    y: np.ndarray,
    R: np.ndarray,
    unit: np.ndarray,
    time: np.ndarray,
    cl: np.ndarray,
    c: np.ndarray,
    beta0: float,
    V: np.ndarray,
    w: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Observed and bootstrap t statistics of ``c' beta = beta0`` by refitting every draw.

    The statistics leave out the CR1 small-sample factor, which is the same for every draw and
    the observed statistic (it cancels in the p-value; pilotlab uses fixest's count of nested
    fixed effects for it, see ``state.scale``).

    ``R`` holds the regressors (n x k), ``V`` the cluster weights (G x B). The restricted fit
    is least squares under the linear constraint; each bootstrap sample is that fit plus the
    restricted residuals times its cluster's weight, refitted with all the dummies.
    """
    n, k = R.shape
    w = np.ones(n) if w is None else w
    Xf = np.column_stack([R, _dummies(unit), _dummies(time)[:, 1:]])
    p = Xf.shape[1]
    sw = np.sqrt(w)
    Xs = Xf * sw[:, None]
    inv = np.linalg.inv(Xs.T @ Xs)
    cf = np.zeros(p)
    cf[:k] = c
    b = inv @ (Xs.T @ (y * sw))
    b_r = b - inv @ cf * ((cf @ b - beta0) / (cf @ inv @ cf))
    fitted = Xf @ b_r
    u_r = y - fitted
    g = int(cl.max()) + 1
    agg = (cl[None, :] == np.arange(g)[:, None]).astype(float)  # G x n
    infl = Xs @ (inv @ cf)  # the combination's influence of each row

    def tstat(bhat: np.ndarray, e: np.ndarray) -> np.ndarray:
        scores = agg @ (infl[:, None] * e)
        return (cf @ bhat - beta0) / np.sqrt(np.sum(scores**2, axis=0))

    t_obs = float(tstat(b, ((y - Xf @ b) * sw)[:, None])[0])
    ystar = fitted[:, None] + u_r[:, None] * V[cl, :]
    bstar = inv @ (Xs.T @ (ystar * sw[:, None]))
    t_star = tstat(bstar, (ystar - Xf @ bstar) * sw[:, None])
    return t_obs, t_star


def _reference_p(t_obs: float, t_star: np.ndarray) -> float:
    # |t*| >= |t|, with the draws that rebuild the sample (equal up to rounding) counted
    return float(np.mean(np.abs(t_star) >= abs(t_obs) * (1 - 1e-9)))


def _small_panel(
    seed: int, case: str, n_units: int = 12, n_periods: int = 8
) -> dict[str, np.ndarray]:
    """A panel with unit and period effects; the cluster layout depends on ``case``."""
    rng = np.random.default_rng(seed)
    if case == "coarse_clusters":
        n_units *= 2
    unit = np.repeat(np.arange(n_units), n_periods)
    time = np.tile(np.arange(n_periods), n_units)
    start = n_periods // 2
    treated = np.zeros(n_units, bool)
    treated[rng.choice(n_units, n_units // 3, replace=False)] = True
    d = (treated[unit] & (time >= start)).astype(float)
    x = rng.normal(size=unit.size) + 0.5 * d
    e = rng.normal(size=(n_units, n_periods))
    e[:, 1:] += 0.5 * e[:, :-1]
    y = (
        rng.normal(size=n_units)[unit]
        + rng.normal(size=n_periods)[time]
        + 0.3 * d
        + 0.4 * x
        + e.reshape(-1)
        * rng.uniform(0.5, 2.0, size=n_units)[unit]  # heteroskedastic across clusters
    )
    cl = unit.copy()
    if case == "coarse_clusters":
        cl = unit // 2
    if case == "crossing_clusters":  # clusters cut across units and periods
        cl = (2 * unit + (time >= start)) % n_units
    event = time - start
    times = [t for t in range(-start, n_periods - start) if t != -1]
    es = np.column_stack([(treated[unit] & (event == t)).astype(float) for t in times])
    out = {"y": y, "d": d, "x": x, "unit": unit, "time": time, "cl": cl, "es": es}
    if case == "unbalanced":
        keep = np.ones(unit.size, bool)
        keep[rng.choice(unit.size, 7, replace=False)] = False
        out = {key: val[keep] for key, val in out.items()}
    if case == "weighted":
        out["w"] = rng.uniform(0.3, 3.0, size=unit.size)
    return out


def _pilotlab_fit(data: dict[str, np.ndarray], R: np.ndarray, names: tuple[str, ...]):
    from pilotlab.estimators._regression import is_nested
    from pilotlab.estimators.linear import fit_linear

    unit, time, cl = data["unit"], data["time"], data["cl"]
    balanced = unit.size == (unit.max() + 1) * (time.max() + 1)
    return fit_linear(
        data["y"],
        R.copy(),
        names,
        fe=[unit, time],
        cluster=cl,
        weights=data.get("w"),
        balanced=balanced,
        fe_nested_in_cluster=(is_nested(unit, cl), is_nested(time, cl)),
    )


_CASES = ["treated", "covariate", "combination", "weighted", "unbalanced", "coarse_clusters",
          "crossing_clusters"]  # fmt: skip


def _case_model(data: dict[str, np.ndarray], case: str):
    """(fit, coefficient name, combination c over the regressors, R) for a case."""
    from pilotlab.inference.wild import combination_fit

    if case == "combination":
        R = data["es"]
        names = tuple(f"e{j}" for j in range(R.shape[1]))
        c = np.zeros(R.shape[1])
        c[-4:] = 0.25  # the average of the four post-period event-time effects
        fit = _pilotlab_fit(data, R, names)
        return combination_fit(fit, c, "post_average"), "post_average", c, R
    R = data["d"][:, None] if case == "treated" else np.column_stack([data["d"], data["x"]])
    names = ("d",) if case == "treated" else ("d", "x")
    c = np.zeros(R.shape[1])
    c[0] = 1.0
    return _pilotlab_fit(data, R, names), "d", c, R


@pytest.mark.parametrize("case", _CASES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_enumerated_p_value_equals_refitting_every_sign_vector(case: str, seed: int) -> None:
    data = _small_panel(seed, case)
    fit, coef, c, R = _case_model(data, case)
    assert int(np.asarray(fit.cluster).max()) + 1 == 12
    draws = make_draws(12, 9999, "rademacher", np.random.default_rng(seed))
    assert draws.enumerated and draws.replications == 4096
    V = draws.matrix()
    state = prepare_wild_bootstrap(fit, coef, draws)
    for beta0 in (0.0, 0.4):
        t_obs, t_star = _refit_reference(
            data["y"], R, data["unit"], data["time"], data["cl"], c, beta0, V, data.get("w")
        )
        root_c = math.sqrt(state.scale)  # the CR1 factor
        assert state.t_obs(beta0) * root_c == pytest.approx(t_obs, rel=1e-9)
        np.testing.assert_allclose(state.t_star(beta0) * root_c, t_star, rtol=1e-7, atol=1e-9)
        assert abs(state.p_value(beta0) - _reference_p(t_obs, t_star)) < 1e-10, beta0
    res = wild_cluster_bootstrap(fit, coef, draws=draws)
    assert res.p_value == state.p_value(0.0)
    if case == "covariate":  # the covariate's own coefficient as well
        fit_x = _pilotlab_fit(data, R, ("d", "x"))
        state_x = prepare_wild_bootstrap(fit_x, "x", draws)
        t_obs, t_star = _refit_reference(
            data["y"], R, data["unit"], data["time"], data["cl"], np.array([0.0, 1.0]), 0.0, V
        )
        assert abs(state_x.p_value(0.0) - _reference_p(t_obs, t_star)) < 1e-10


@pytest.mark.parametrize("seed", range(12))
def test_six_cluster_enumeration_counts_the_draws_that_rebuild_the_sample(seed: int) -> None:
    # the all-ones and all-minus-ones sign vectors reproduce the sample, so the exact p-value is
    # at least 2 / 64; rounding must never decide whether they count
    data = _small_panel(100 + seed, "treated", n_units=6, n_periods=6)
    fit, coef, c, R = _case_model(data, "treated")
    draws = make_draws(6, 999, "rademacher", np.random.default_rng(seed))
    assert draws.enumerated and draws.replications == 64
    res = wild_cluster_bootstrap(fit, coef, draws=draws)
    assert res.p_value >= 2 / 64
    t_obs, t_star = _refit_reference(
        data["y"], R, data["unit"], data["time"], data["cl"], c, 0.0, draws.matrix()
    )
    assert abs(res.p_value - _reference_p(t_obs, t_star)) < 1e-10


@pytest.mark.parametrize("seed", range(40))
def test_six_cluster_extreme_samples_never_get_p_zero(seed: int) -> None:
    # a large effect: the observed statistic beats (nearly) every sign vector except the two
    # that rebuild the sample, whose statistics tie it up to rounding
    data = _small_panel(seed, "treated", n_units=6, n_periods=6)
    data["y"] = data["y"] + 5.0 * data["d"]
    fit, coef, c, R = _case_model(data, "treated")
    draws = make_draws(6, 999, "rademacher", np.random.default_rng(0))
    res = wild_cluster_bootstrap(fit, coef, draws=draws)
    assert res.p_value >= 2 / 64 - 1e-12
    t_obs, t_star = _refit_reference(
        data["y"], R, data["unit"], data["time"], data["cl"], c, 0.0, draws.matrix()
    )
    assert abs(res.p_value - _reference_p(t_obs, t_star)) < 1e-10


@pytest.mark.parametrize("case", ["treated", "covariate", "combination"])
def test_interval_ends_where_the_refitted_p_value_crosses_alpha(case: str) -> None:
    data = _small_panel(5, case)
    fit, coef, c, R = _case_model(data, case)
    draws = make_draws(12, 9999, "rademacher", np.random.default_rng(3))
    V = draws.matrix()
    alpha = 0.1
    res = wild_cluster_bootstrap(fit, coef, alpha=alpha, draws=draws)
    assert math.isfinite(res.ci_lower) and math.isfinite(res.ci_upper)
    eps = 1e-6 * res.std_error

    def ref_p(beta0: float) -> float:
        t_obs, t_star = _refit_reference(
            data["y"], R, data["unit"], data["time"], data["cl"], c, beta0, V, data.get("w")
        )
        return _reference_p(t_obs, t_star)

    for bound, inward in ((res.ci_lower, 1.0), (res.ci_upper, -1.0)):
        assert ref_p(bound + inward * eps) > alpha, (bound, inward)
        assert ref_p(bound - inward * eps) <= alpha, (bound, inward)


@pytest.mark.parametrize("weights", ["rademacher", "webb", "mammen"])
@pytest.mark.parametrize("case", ["treated", "covariate", "combination", "weighted", "unbalanced"])
def test_many_clusters_low_rank_path_equals_refitting(case: str, weights: str) -> None:
    # with many clusters the re-projection runs through its low-rank factors instead of a
    # G x G map; every bootstrap statistic must still equal refitting with the dummies
    data = _small_panel(21, case, n_units=60, n_periods=6)
    fit, coef, c, R = _case_model(data, case)
    draws = make_draws(60, 199, weights, np.random.default_rng(2))  # type: ignore[arg-type]
    state = prepare_wild_bootstrap(fit, coef, draws)
    V = draws.matrix()
    for beta0 in (0.0, -0.7):
        t_obs, t_star = _refit_reference(
            data["y"], R, data["unit"], data["time"], data["cl"], c, beta0, V, data.get("w")
        )
        root_c = math.sqrt(state.scale)
        assert state.t_obs(beta0) * root_c == pytest.approx(t_obs, rel=1e-9)
        np.testing.assert_allclose(state.t_star(beta0) * root_c, t_star, rtol=1e-8, atol=1e-10)
        assert abs(state.p_value(beta0) - _reference_p(t_obs, t_star)) < 1e-10
