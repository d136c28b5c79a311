"""User mistakes and design problems of the synthetic estimators: clear errors and warnings."""

from __future__ import annotations

import numpy as np
import pytest

from pilotlab.engine import choose_inference
from pilotlab.estimators._frank_wolfe import HAS_NUMBA, frank_wolfe, sparsify
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.synthetic import choose_inference as synthetic_choice
from pilotlab.estimators.synthetic import fit_synthetic
from pilotlab.exceptions import DesignWarning, EstimationError
from pilotlab.spec.models import SyntheticOptions
from tests.support.synth_data import factor_frame, make_panel

OPTS = EstimatorOptions(inference="placebo", replications=20)


def _fit(panel, method="sdid", options=OPTS):
    return fit_synthetic(panel, "y", options, np.random.default_rng(0), method)


def test_no_donors():
    df, _ = factor_frame(n_units=6, n_periods=12, seed=0)
    adoption = {f"u{i:03d}": 2006 + (i % 3) for i in range(6)}  # every unit treated sometime
    panel = make_panel(df, adoption=adoption, comparison="not_yet_treated")
    with pytest.raises(EstimationError, match=r"donor .* never treated, found none"):
        _fit(panel)


def test_too_short_pre_period():
    df, _ = factor_frame(n_units=10, n_periods=12, seed=0)
    panel = make_panel(df, units=["u000"], start=2001)
    with pytest.raises(EstimationError, match=r"at least 2 pre-periods.*'u000' has 1"):
        _fit(panel)


def test_short_pre_period_warns():
    df, _ = factor_frame(n_units=10, n_periods=12, seed=0)
    panel = make_panel(df, units=["u000"], start=2003)
    with pytest.warns(DesignWarning, match="Only 3 pre-period"):
        r = _fit(panel)
    assert any(
        w.code == "short-pre-period" and "Only 3 pre-period" in w.message for w in r.warnings
    )


def test_poor_fit_warns():
    df, _ = factor_frame(n_units=30, n_periods=20, t0=12, seed=1)
    df.loc[df["unit"] == "u000", "y"] += 40  # far above every donor: outside their hull
    panel = make_panel(df, units=["u000"], start=2012)
    with pytest.warns(DesignWarning, match="fits the pilot area poorly"):
        r = _fit(panel, "sc")
    assert r.synthetic.pre_rmspe > 10
    # SDID's intercept absorbs the level difference: no warning there
    assert "poor-pre-fit" not in {w.code for w in _fit(panel, "sdid").warnings}


def test_missing_outcome_values():
    df, _ = factor_frame(n_units=10, n_periods=12, seed=0)
    df.loc[(df["unit"] == "u004") & (df["time"] == 2003), "y"] = np.nan
    panel = make_panel(df, units=["u000"], start=2008)
    with pytest.raises(EstimationError, match=r"'y' is missing for 1 unit-period.*u004"):
        _fit(panel)


def test_unknown_predictor():
    df, _ = factor_frame(n_units=10, n_periods=12, seed=0)
    panel = make_panel(df, units=["u000"], start=2008)
    opts = EstimatorOptions(
        inference="placebo", replications=20, synthetic=SyntheticOptions(predictors=["income"])
    )
    with pytest.raises(EstimationError, match=r"predictors: column.*income"):
        _fit(panel, "sc", opts)


def test_placebo_needs_more_donors_than_treated():
    df, _ = factor_frame(n_units=6, n_periods=12, n_treated=3, seed=0)
    panel = make_panel(df, units=["u000", "u001", "u002"], start=2008)
    with pytest.raises(EstimationError, match="more comparison units than treated"):
        _fit(panel)
    r = _fit(panel, options=EstimatorOptions(inference="jackknife"))
    assert r.inference == "jackknife"


def test_choice_messages():
    assert synthetic_choice("auto", 1, 30)[0] == "placebo"
    assert synthetic_choice("auto", 2, 30)[0] == "jackknife"
    assert synthetic_choice("placebo", 2, 30)[0] == "placebo"
    with pytest.raises(EstimationError, match="needs comparison units"):
        synthetic_choice("auto", 1, 1)


def test_engine_auto_inference_uses_synthetic_rule():
    df, _ = factor_frame(n_units=12, n_periods=12, seed=0)
    one = make_panel(df, units=["u000"], start=2008)
    two = make_panel(df, units=["u000", "u001"], start=2008)
    assert choose_inference(one, "synthetic_did", "auto").name == "placebo"
    assert choose_inference(two, "synthetic_control", "auto").name == "jackknife"
    with pytest.raises(EstimationError, match="not available with the synthetic_did"):
        choose_inference(one, "synthetic_did", "wild_bootstrap")


# ----------------------------------------------------------------- the Frank-Wolfe solver
def _problem(seed, shared=True, n_b=8, k=12, rows=15):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(rows, k)) if shared else rng.normal(size=(n_b, rows, k))
    y = rng.normal(size=(n_b, rows))
    gram = a.T @ a if shared else np.einsum("bri,brj->bij", a, a)
    cross = y @ a if shared else np.einsum("br,brk->bk", y, a)
    allowed = rng.random((n_b, k)) > 0.25
    allowed[:, 0] = True
    x0 = allowed / allowed.sum(axis=1, keepdims=True)
    return a, y, gram, cross, allowed, x0


@pytest.mark.parametrize("shared", [True, False])
def test_frank_wolfe_reaches_the_constrained_optimum(shared):
    from scipy.optimize import minimize

    a, y, gram, cross, allowed, x0 = _problem(1, shared)
    eta = np.full(len(y), 0.5)
    rows = np.full(len(y), 15.0)
    x, _ = frank_wolfe(gram, cross, eta, rows, x0, 0.0, 5_000, allowed, backend="numpy")
    x_short, _ = frank_wolfe(gram, cross, eta, rows, x0, 0.0, 200, allowed, backend="numpy")
    assert np.allclose(x.sum(axis=1), 1) and (x >= 0).all() and (x[~allowed] == 0).all()
    for b in range(len(y)):
        ab = a if shared else a[b]
        idx = np.flatnonzero(allowed[b])

        def f(w, ab=ab, b=b, idx=idx):
            return np.sum((ab[:, idx] @ w - y[b]) ** 2) + 0.5 * np.sum(w**2)

        ref = minimize(
            f,
            np.full(idx.size, 1 / idx.size),
            method="SLSQP",
            bounds=[(0, 1)] * idx.size,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
            options={"ftol": 1e-14, "maxiter": 1000},
        )
        # vanilla Frank-Wolfe converges as O(1/t): closer with more steps, never below the optimum
        start_gap = f(x0[b, idx]) - ref.fun
        assert ref.fun - 1e-9 <= f(x[b, idx]) <= ref.fun + 1e-2 * start_gap
        assert f(x[b, idx]) - ref.fun < f(x_short[b, idx]) - ref.fun


def _textbook_frank_wolfe(gram, cross, eta, rows, x0, tol, max_iter, allowed):
    """The iteration written plainly, one problem at a time, everything recomputed each step."""
    xs, its = [], []
    for b in range(x0.shape[0]):
        g = gram if gram.ndim == 2 else gram[b]
        c, x = cross[b], x0[b].astype(float).copy()
        for t in range(1, max_iter + 1):
            grad = g @ x - c + eta[b] * x
            i = int(np.argmin(np.where(allowed[b], grad, np.inf)))
            d = -x.copy()
            d[i] += 1.0  # towards the vertex e_i
            gd = grad @ d
            q = d @ g @ d + eta[b] * (d @ d)
            at_vertex = x[i] == 1.0 and np.count_nonzero(x) == 1
            step = 0.0 if at_vertex or q <= 0 else min(max(-gd / q, 0.0), 1.0)
            x = x + step * d
            decrease = -(2 * step * gd + step * step * q)
            if t >= 2 and (decrease <= rows[b] * tol or t >= max_iter):
                break
        xs.append(x)
        its.append(t)
    return np.array(xs), np.array(its)


def _hard_problems(shared: bool):
    """Blocked coordinates, a start on a vertex, and a target outside the hull (steps onto a
    vertex of the simplex), as well as ordinary interior optima."""
    _, y, gram, cross, allowed, x0 = _problem(3, shared, n_b=6, k=9, rows=12)
    x0[1] = 0.0
    x0[1, 0] = 1.0  # starts on a vertex
    g = gram if shared else gram[2]
    cross[2] = 50.0 * g[3]  # optimum at (or next to) the vertex e_3
    allowed[2, 3] = True
    return y, gram, cross, allowed, x0


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("tol", [0.0, 1e-6])
def test_frank_wolfe_follows_the_textbook_iteration(shared, tol, monkeypatch):
    import pilotlab.estimators._frank_wolfe as fw

    y, gram, cross, allowed, x0 = _hard_problems(shared)
    eta, rows = np.full(len(y), 0.3), np.full(len(y), 12.0)
    ref_x, ref_it = _textbook_frank_wolfe(gram, cross, eta, rows, x0, tol, 400, allowed)
    x, it = frank_wolfe(gram, cross, eta, rows, x0, tol, 400, allowed, backend="numpy")
    np.testing.assert_array_equal(it, ref_it)
    np.testing.assert_allclose(x, ref_x, rtol=0, atol=1e-12)
    assert (x[~allowed] == 0).all()
    # folding the scale factor back in often (instead of once in a long while) changes nothing
    monkeypatch.setattr(fw, "RENORM", 0.5)
    x2, it2 = frank_wolfe(gram, cross, eta, rows, x0, tol, 400, allowed, backend="numpy")
    np.testing.assert_array_equal(it2, ref_it)
    np.testing.assert_allclose(x2, ref_x, rtol=0, atol=1e-12)


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not importable here")
@pytest.mark.parametrize("shared", [True, False])
def test_compiled_and_numpy_backends_agree_to_the_last_bit(shared):
    _, y, gram, cross, allowed, x0 = _problem(2, shared)
    args = (gram, cross, np.full(len(y), 0.1), np.full(len(y), 15.0), x0, 1e-10, 3000, allowed)
    xn, itn = frank_wolfe(*args, backend="numpy")
    xc, itc = frank_wolfe(*args, backend="numba")
    np.testing.assert_array_equal(xc, xn)
    np.testing.assert_array_equal(itc, itn)
    y, gram, cross, allowed, x0 = _hard_problems(shared)
    args = (gram, cross, np.full(len(y), 0.3), np.full(len(y), 12.0), x0, 0.0, 400, allowed)
    np.testing.assert_array_equal(
        frank_wolfe(*args, backend="numba")[0], frank_wolfe(*args, backend="numpy")[0]
    )


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not importable here")
@pytest.mark.parametrize("k", [13, 16, 3])
def test_compiled_vertex_search_breaks_ties_as_the_numpy_argmin(k):
    # identical donors give identical gradient entries: the step must go to the first of them
    # (np.argmin's choice), whichever lane of the compiled search sees it
    rng = np.random.default_rng(4)
    a = rng.normal(size=(10, k))
    for dup in range(1, k, 3):
        a[:, dup] = a[:, 0]
    y = rng.normal(size=(5, 10))
    gram, cross = a.T @ a, y @ a
    x0 = np.full((5, k), 1.0 / k)
    allowed = np.ones((5, k), dtype=bool)
    allowed[3, 0] = False
    x0[3] = allowed[3] / allowed[3].sum()
    args = (gram, cross, np.full(5, 0.2), np.full(5, 10.0), x0, 0.0, 500, allowed)
    xn, itn = frank_wolfe(*args, backend="numpy")
    xc, itc = frank_wolfe(*args, backend="numba")
    np.testing.assert_array_equal(xc, xn)
    np.testing.assert_array_equal(itc, itn)


def test_sparsify_drops_small_weights():
    x = np.array([[0.5, 0.1, 0.3, 0.1], [0.25, 0.25, 0.25, 0.25]])
    out = sparsify(x)
    np.testing.assert_allclose(out[0], [0.5 / 0.8, 0, 0.3 / 0.8, 0])
    np.testing.assert_allclose(out[1], 0.25)


def test_permutation_request_runs_the_placebo_natively():
    from pilotlab.estimators import ESTIMATORS
    from pilotlab.inference.apply import apply_inference

    df, _ = factor_frame(n_units=15, n_periods=12, seed=0)
    panel = make_panel(df, units=["u000"], start=2008)
    opts = EstimatorOptions(inference="permutation", replications=20)
    r = apply_inference(panel, "y", ESTIMATORS["synthetic_did"], opts, np.random.default_rng(0))
    assert r.inference == "placebo"
    assert r.synthetic.inference_reason.startswith("Permutation inference as requested")


@pytest.mark.parametrize("method", ["sdid", "sc"])
def test_covariates_are_not_silently_ignored(method):
    df, _ = factor_frame(n_units=15, n_periods=12, seed=0)
    df["x"] = np.arange(len(df), dtype=float)
    panel = make_panel(df, units=["u000", "u001"], start=2008)
    opts = EstimatorOptions(inference="jackknife", covariates=("x",))
    with pytest.warns(DesignWarning, match=r"does not adjust for design.covariates \(x\)"):
        r = _fit(panel, method, opts)
    assert any(
        w.code == "covariates-ignored" and "design.synthetic.predictors" in w.message
        for w in r.warnings
    )
    plain = _fit(panel, method, EstimatorOptions(inference="jackknife"))
    assert r.estimate == plain.estimate  # the covariate changes nothing, and the user is told


@pytest.mark.parametrize("shared", [True, False])
def test_numpy_backend_gives_the_same_bits_on_one_thread_or_several(shared, monkeypatch):
    import pilotlab.estimators._frank_wolfe as fw

    _, y, gram, cross, allowed, x0 = _problem(4, shared, n_b=300, k=10, rows=14)
    args = (gram, cross, np.full(len(y), 0.2), np.full(len(y), 14.0), x0, 1e-9, 500, allowed)
    monkeypatch.setattr(fw, "MIN_ROWS_PER_THREAD", 10)
    monkeypatch.setattr(fw.os, "cpu_count", lambda: 4)
    x_many, it_many = frank_wolfe(*args, backend="numpy")
    monkeypatch.setattr(fw, "MIN_ROWS_PER_THREAD", 10_000)
    x_one, it_one = frank_wolfe(*args, backend="numpy")
    np.testing.assert_array_equal(x_many, x_one)
    np.testing.assert_array_equal(it_many, it_one)


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not importable here")
@pytest.mark.parametrize("shared", [True, False])
def test_compiled_backend_gives_the_same_bits_on_one_thread_or_several(shared, monkeypatch):
    import pilotlab.estimators._frank_wolfe as fw

    # 7 problems on 4 threads: uneven ranges, some of one problem
    _, y, gram, cross, allowed, x0 = _problem(5, shared, n_b=7, k=10, rows=14)
    args = (gram, cross, np.full(len(y), 0.2), np.full(len(y), 14.0), x0, 1e-9, 500, allowed)
    monkeypatch.setattr(fw.os, "cpu_count", lambda: 4)
    x_many, it_many = frank_wolfe(*args, backend="numba")
    monkeypatch.setattr(fw.os, "cpu_count", lambda: 1)
    x_one, it_one = frank_wolfe(*args, backend="numba")
    np.testing.assert_array_equal(x_many, x_one)
    np.testing.assert_array_equal(it_many, it_one)
    np.testing.assert_array_equal(x_one, frank_wolfe(*args, backend="numpy")[0])


def test_one_comparison_unit_with_two_periods_before_the_start_has_no_noise_to_scale() -> None:
    """One donor and two periods before the start leave one first difference, whose spread is
    undefined: the regularisation is then zero, without a numpy warning (which ``validate``,
    run with warnings as errors, once reported as a traceback)."""
    import warnings

    from pilotlab.estimators._synthetic_core import noise_level

    yc = np.array([[9.8, 10.0, 10.5, 10.9]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert noise_level(yc, 2) == 0.0
        assert noise_level(
            np.vstack([yc, yc + np.array([0.0, 1.0, 0.0, 0.0])]), 2
        ) == pytest.approx(np.std([0.2, 1.2], ddof=1))
