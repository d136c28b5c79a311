"""Sun & Abraham interaction-weighted event study against diff-diff and pyfixest, on generated
staggered panels with known heterogeneous effects and on mpdta."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab import catalogue
from pilotlab.estimators import sun_abraham as sa
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.sun_abraham import SunAbrahamOptions, fit_sun_abraham
from pilotlab.exceptions import EstimationError
from tests.support import shared_data
from tests.support.cs import load_via_spec
from tests.support.designs import peer_frame, staggered_panel

dd = pytest.importorskip("diff_diff")

REL = 1e-8
OPTS = EstimatorOptions(pretrend="none")


def _fit(panel, opts: EstimatorOptions = OPTS, col: str = "outcome"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_sun_abraham(panel, col, opts, np.random.default_rng(0))


def _fixed_weight_se(r) -> float:
    c = r.linear.contrast()
    return float(np.sqrt(c @ r.linear.fit.vcov @ c))


def test_matches_diff_diff_estimates_and_fixed_share_standard_errors() -> None:
    panel, _ = staggered_panel(seed=3)
    r = _fit(panel)
    df = peer_frame(panel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dd.SunAbraham(cluster="unit").fit(df, "outcome", "unit", "t", "ft")
    assert r.estimate == pytest.approx(ref.overall_att, rel=REL)
    # diff-diff holds the cohort shares fixed: so does c'Vc of the exposed regression
    assert _fixed_weight_se(r) == pytest.approx(ref.overall_se, rel=REL)
    # the shares are estimated: pilotlab's standard error adds their variance
    assert r.std_error > _fixed_weight_se(r)
    dyn = r.staggered.dynamic.frame.set_index("event_time")
    for e, row in ref.event_study_effects.items():
        assert dyn.loc[int(e), "estimate"] == pytest.approx(row["effect"], rel=REL)
    cells = r.staggered.att_gt.frame
    for (g, e), row in ref.cohort_effects.items():
        m = (cells["group_index"] == int(g) - 1) & (cells["event_time"] == int(e))
        assert float(cells.loc[m, "att"].iloc[0]) == pytest.approx(row["effect"], rel=REL)
        assert float(cells.loc[m, "std_error"].iloc[0]) == pytest.approx(row["se"], rel=REL)


def test_single_cohort_event_times_need_no_share_correction() -> None:
    """Where one cohort alone is observed, its share is 1 and both standard errors agree."""
    panel, _ = staggered_panel(seed=3)
    r = _fit(panel)
    df = peer_frame(panel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dd.SunAbraham(cluster="unit").fit(df, "outcome", "unit", "t", "ft")
    dyn = r.staggered.dynamic.frame.set_index("event_time")
    cells = r.staggered.att_gt.frame
    single = cells.groupby("event_time").size()
    for e in single[single == 1].index:
        assert dyn.loc[e, "std_error"] == pytest.approx(ref.event_study_effects[e]["se"], rel=REL)


def test_cells_match_an_explicit_pyfixest_regression() -> None:
    pf = pytest.importorskip("pyfixest")
    panel, _ = staggered_panel(seed=11)
    r = _fit(panel)
    df = peer_frame(panel)
    tr = df["ft"] > 0
    names = []
    for g in sorted(df.loc[tr, "ft"].unique()):
        for e in sorted((df.loc[df["ft"] == g, "t"] - g).unique()):
            if e == -1:
                continue
            nm = f"c{g}_{'m' if e < 0 else 'p'}{abs(e)}"
            df[nm] = ((df["ft"] == g) & (df["t"] - g == e)).astype(float)
            names.append((nm, g - 1, e))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols(
            "outcome ~ " + " + ".join(n for n, _, _ in names) + " | unit + t",
            df, vcov={"CRV1": "unit"}, fixef_tol=1e-12,
        )  # fmt: skip
        coef, se = fit.coef(), fit.se()
    cells = r.staggered.att_gt.frame.set_index(["group_index", "event_time"])
    for nm, g, e in names:
        assert cells.loc[(g, e), "att"] == pytest.approx(float(coef[nm]), rel=1e-8, abs=1e-10)
        assert cells.loc[(g, e), "std_error"] == pytest.approx(float(se[nm]), rel=1e-7)


@pytest.mark.parametrize(
    ("control", "weighted"),
    [("never_treated", False), ("last_treated", False), ("never_treated", True)],
)
def test_separated_solves_equal_the_explicit_regression(
    monkeypatch, control: str, weighted: bool
) -> None:
    """The large-design path (one two-way solve per cohort) gives the same numbers, also on an
    unbalanced (and weighted) panel."""
    panel, _ = staggered_panel(seed=12)
    keep = np.random.default_rng(1).random(panel.nobs) > 0.08
    frame = panel.frame.loc[keep].reset_index(drop=True)
    if weighted:
        frame["_weight"] = np.random.default_rng(2).uniform(0.5, 2.0, panel.n_units)[frame["_unit"]]
    holed = dataclasses.replace(panel.with_frame(frame), weighted=weighted)
    opts = dataclasses.replace(OPTS, estimator=SunAbrahamOptions(control=control))
    dense = _fit(holed, opts)
    monkeypatch.setattr(sa, "SMALL", 0)
    monkeypatch.setattr(sa, "DENSE_BUDGET", 0)
    sep = _fit(holed, opts)
    assert sep.linear is None and dense.linear is not None
    assert sep.estimate == pytest.approx(dense.estimate, rel=1e-9)
    assert sep.std_error == pytest.approx(dense.std_error, rel=1e-9)
    a, b = dense.staggered.att_gt.frame, sep.staggered.att_gt.frame
    np.testing.assert_allclose(a["att"], b["att"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(a["std_error"], b["std_error"], rtol=1e-8)
    np.testing.assert_allclose(
        dense.staggered.dynamic.frame["std_error"],
        sep.staggered.dynamic.frame["std_error"],
        rtol=1e-8,
    )


def test_last_treated_comparison_drops_its_periods() -> None:
    panel, _ = staggered_panel(seed=13)
    opts = dataclasses.replace(OPTS, estimator=SunAbrahamOptions(control="last_treated"))
    r = _fit(panel, opts)
    assert r.n_periods == 9  # the last cohort starts in period index 9: periods 0..8 kept
    assert set(r.staggered.att_gt.frame["group_index"]) == {3, 6}


def test_mpdta_matches_diff_diff() -> None:
    mp = pd.read_csv(shared_data("mpdta.csv"))
    panel = load_via_spec(
        mp, unit="countyreal", time="year", first_treated="first.treat", outcomes=("lemp",)
    )
    r = _fit(panel, col="lemp")
    df = mp.rename(columns={"countyreal": "unit", "year": "t", "first.treat": "ft"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = dd.SunAbraham(cluster="unit").fit(df, "lemp", "unit", "t", "ft")
    assert r.estimate == pytest.approx(ref.overall_att, rel=REL)
    assert _fixed_weight_se(r) == pytest.approx(ref.overall_se, rel=REL)
    assert -0.07 < r.estimate < -0.02


def test_recovers_heterogeneous_effects_where_twfe_is_biased() -> None:
    errors, twfe = [], []
    for seed in range(5):
        panel, att = staggered_panel(seed=seed)
        errors.append(_fit(panel).estimate - att)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            twfe.append(
                catalogue.get("twfe").fit(panel, "outcome", OPTS, np.random.default_rng(0)).estimate
                - att
            )
    assert abs(np.mean(twfe)) > 0.7
    assert abs(np.mean(errors)) < 0.1


def _coverage(seeds: range, **kw: object) -> float:
    hits = []
    for s in seeds:
        panel, att = staggered_panel(seed=2000 + s, **kw)  # type: ignore[arg-type]
        r = _fit(panel)
        hits.append(abs(r.estimate - att) <= 1.96 * r.std_error)
    return float(np.mean(hits))


def test_coverage_near_95_percent() -> None:
    assert 0.88 <= _coverage(range(80), n_units=80, n_treated=50) <= 1.0


@pytest.mark.slow
def test_coverage_near_95_percent_long() -> None:
    assert 0.935 <= _coverage(range(1000), n_units=100, n_treated=60, noise_sd=1.0) <= 0.965


def test_windows_no_cohort_reaches_are_refused_naming_the_key() -> None:
    panel, _ = staggered_panel(seed=9)
    with pytest.raises(EstimationError, match=r"design\.window\.post is 40"):
        _fit(panel, dataclasses.replace(OPTS, window=(2, 40)))
    with pytest.raises(EstimationError, match=r"design\.window\.pre is 30"):
        _fit(panel, dataclasses.replace(OPTS, window=(30, 2)))


def test_never_treated_control_without_never_treated_units_is_refused() -> None:
    panel, _ = staggered_panel(seed=14, n_treated=60, comparison="not_yet_treated")
    opts = dataclasses.replace(OPTS, estimator=SunAbrahamOptions(control="never_treated"))
    with pytest.raises(EstimationError, match=r"design\.options\.control"):
        _fit(panel, opts)
    auto = _fit(panel)
    assert any(w.code == "no-never-treated" for w in auto.warnings)


def test_binned_window_and_calendar_headline() -> None:
    panel, _ = staggered_panel(seed=15)
    r = _fit(panel, dataclasses.replace(OPTS, window=(3, 4)))
    assert set(r.staggered.dynamic.frame["event_time"]) == {-3, -2, 0, 1, 2, 3, 4}
    assert r.staggered.calendar is None
    opts = dataclasses.replace(
        OPTS, window=(3, 4), estimator=SunAbrahamOptions(aggregation="calendar")
    )
    with pytest.raises(EstimationError, match=r"design\.options\.aggregation"):
        _fit(panel, opts)
