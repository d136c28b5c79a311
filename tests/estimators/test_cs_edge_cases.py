"""Callaway & Sant'Anna: design edge cases, computational paths, options and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

import pilotlab.estimators.callaway_santanna as cs
from pilotlab.diagnostics.pretrend import group_time_pretest
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.callaway_santanna.cells import _fit_balanced_nocov, _fit_general_panel
from pilotlab.estimators.callaway_santanna.prepare import (
    _finalise_units,
    _make_cells,
    _subset_units,
    _unit_arrays,
)
from pilotlab.exceptions import DataError, DesignWarning, EstimationError, Notice
from pilotlab.spec.models import CallawaySantAnnaOptions
from tests.support import shared_data
from tests.support.cs import make_panel, sim_panel, simulate_staggered


def _est(panel, **kw):
    kw.setdefault("replications", 0)
    return cs.estimate_group_time_effects(panel, "y", **kw)


@pytest.fixture(scope="module")
def sim() -> tuple[pd.DataFrame, dict]:
    return simulate_staggered(n_units=300, seed=5)


# ----------------------------------------------------------------------------- design edge cases
def test_no_never_treated_uses_last_cohort_with_warning(sim) -> None:
    df, truth = sim
    df = df[df.g >= 0]  # drop the never treated
    with pytest.warns(DesignWarning, match="no never-treated units"):
        res = _est(sim_panel(df, comparison="not_yet_treated"))
    a = res.att_gt
    assert set(a.group.astype(int)) == {2, 4}  # cohort 6 became the comparison group
    assert a.time.astype(int).max() == 5  # periods from 6 on are left out
    tv = np.array([truth[(int(g), int(t))] for g, t in zip(a.group, a.time, strict=True)])
    assert np.all(np.abs((a.att - tv) / a.std_error) < 4)
    assert any(w.code == "no-never-treated" for w in res.warnings)


def test_cohort_treated_in_first_period_is_dropped(sim) -> None:
    df, _ = sim
    df = df.copy()
    df.loc[df.unit < 10, "g"] = 0
    with pytest.warns(DesignWarning, match="no pre-treatment period"):
        res = _est(sim_panel(df))
    assert 0 not in set(res.att_gt.group.astype(int))
    assert res.n_units == 290


def test_single_unit_cohort_warns_but_estimates(sim) -> None:
    df, _ = sim
    df = df.copy()
    df.loc[df.unit == 0, "g"] = 3
    df.loc[(df.g == 3) & (df.unit != 0), "g"] = 4
    with pytest.warns(DesignWarning, match="single unit"):
        res = _est(sim_panel(df))
    cells = res.att_gt[res.att_gt.group == "3"]
    assert len(cells) == 7 and np.all(np.isfinite(cells.att))


def test_cells_without_comparison_are_left_out_with_warning(sim) -> None:
    df, _ = sim
    # never-treated units are unobserved in period 7: cells (g, 7) have no comparison units
    df = df[~((df.g < 0) & (df.time == 7))]
    with pytest.warns(DesignWarning, match="could not be estimated"):
        res = _est(sim_panel(df))
    a = res.att_gt
    assert a.loc[a.time == "7", "att"].isna().all()
    assert a.loc[a.time != "7", "att"].notna().all()
    assert res.aggregations.estimate.notna().all()


def test_all_units_treated_first_period_is_an_error(sim) -> None:
    df, _ = sim
    df = df.assign(g=0)
    with pytest.warns(DesignWarning), pytest.raises(EstimationError, match="no treated units"):
        _est(sim_panel(df))


# ----------------------------------------------------------------------------- paths agree
def _paths(panel):
    sink: list[str] = []
    raw, Y, _, _ = _unit_arrays(panel, "y", (), sink)
    units, keep, T = _finalise_units(raw, panel.n_periods, 0, panel.period_labels, sink)
    units = _subset_units(units, keep)
    cells = _make_cells(units.cohorts, T, 0, "varying", panel.comparison)
    fast = _fit_balanced_nocov(Y[keep], units, cells)
    slow = _fit_general_panel(Y[keep], None, units, cells, "dr", panel.period_labels, sink)
    A = np.random.default_rng(0).normal(size=(cells.g.size, 4))
    return fast, slow, A


@pytest.mark.parametrize("comparison", ["never_treated", "not_yet_treated"])
@pytest.mark.parametrize("cluster", [None, "region", "cohort_cluster"])
def test_fast_and_general_paths_agree(sim, comparison: str, cluster: str | None) -> None:
    """Balanced no-covariate fast path (nested Gram or explicit clusters) == per-cell path."""
    df, _ = sim
    df = df.assign(
        cohort_cluster=df.g * 1000 + df.unit % 7,  # clusters nested in cohorts
        w=1.0 + (df.unit % 4),
    )
    panel = sim_panel(df, comparison=comparison, cluster=cluster, weight="w")
    fast, slow, A = _paths(panel)
    np.testing.assert_allclose(fast.att, slow.att, rtol=1e-10)
    np.testing.assert_allclose(fast.se, slow.se, rtol=1e-9)
    np.testing.assert_allclose(fast.pre_cov, slow.pre_cov, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(fast.agg_if(A), slow.agg_if(A), rtol=1e-8, atol=1e-12)


def test_clustering_changes_se_not_estimates(sim) -> None:
    df, _ = sim
    unit = _est(sim_panel(df))
    region = _est(sim_panel(df, cluster="region"))
    np.testing.assert_allclose(unit.att_gt.att, region.att_gt.att)
    assert region.n_clusters == 23
    assert not np.allclose(unit.aggregations.std_error, region.aggregations.std_error)


# ----------------------------------------------------------------------------- layouts, options
def test_unbalanced_panel_close_to_balanced(sim) -> None:
    df, _ = sim
    rng = np.random.default_rng(1)
    holes = df.drop(index=rng.choice(df.index, size=len(df) // 20, replace=False))
    with pytest.warns(DesignWarning, match="unbalanced"):
        res = _est(sim_panel(holes))
    full = _est(sim_panel(df))
    diff = (res.att_gt.att - full.att_gt.att) / full.att_gt.std_error
    assert np.all(np.abs(diff) < 1.5)


def test_repeated_cross_sections_match_four_means(sim) -> None:
    df, truth = sim
    rcs = df.assign(unit=np.arange(len(df)))  # every row a different respondent
    panel = sim_panel(rcs, layout="repeated_cross_section")
    res = _est(panel)
    a = res.att_gt.set_index(["group", "time"])
    m = (
        df.assign(grp=np.where(df.g < 0, "never", df.g.astype(str)))
        .groupby(["grp", "time"])
        .y.mean()
    )
    g, t, b = "4", 6, 3
    manual = (m[(g, t)] - m[(g, b)]) - (m[("never", t)] - m[("never", b)])
    assert a.loc[(g, str(t)), "att"] == pytest.approx(manual, rel=1e-10)
    tv = np.array([truth[(int(x), int(y))] for x, y in a.index])
    assert np.all(np.abs((a.att.to_numpy() - tv) / a.std_error.to_numpy()) < 4)


def test_weights_equal_duplicated_units(sim) -> None:
    df, _ = sim
    w = (df.unit % 3 == 0) + 1.0
    weighted = _est(sim_panel(df.assign(w=w), weight="w"))
    dup = pd.concat([df, df[w == 2].assign(unit=lambda d: d.unit + 10_000)])
    duplicated = _est(sim_panel(dup))
    np.testing.assert_allclose(weighted.att_gt.att, duplicated.att_gt.att, rtol=1e-10)
    np.testing.assert_allclose(
        weighted.aggregations.estimate, duplicated.aggregations.estimate, rtol=1e-10
    )


def test_universal_base_period(sim) -> None:
    df, _ = sim
    panel = sim_panel(df)
    var = _est(panel).att_gt.set_index(["group", "time"])
    uni = _est(panel, base_period="universal").att_gt.set_index(["group", "time"])
    post = var.post
    np.testing.assert_allclose(uni.att[post.index[post]], var.att[post], rtol=1e-10)
    assert uni.loc[("4", "3"), "att"] == 0.0 and uni.loc[("4", "3"), "reference"]
    # universal pre cell (4, 1) = -(varying (4, 2) + varying (4, 3))
    assert uni.loc[("4", "1"), "att"] == pytest.approx(
        -(var.loc[("4", "2"), "att"] + var.loc[("4", "3"), "att"]), rel=1e-10
    )


def test_anticipation_shifts_the_base_period() -> None:
    df, truth = simulate_staggered(n_units=600, seed=3, anticipation_effect=2.0)
    naive = _est(sim_panel(df)).att_gt.set_index(["group", "time"])
    antic = _est(sim_panel(df, anticipation=1)).att_gt.set_index(["group", "time"])
    for g in ("2", "4", "6"):
        t = g
        true = truth[(int(g), int(t))]
        assert abs(antic.loc[(g, t), "att"] - true) < 4 * antic.loc[(g, t), "std_error"]
        assert naive.loc[(g, t), "att"] < true - 1.0  # the anticipation effect leaks into base
        assert antic.loc[(g, t), "base_index"] == int(g) - 2


def test_window_bins_event_time_ends(sim) -> None:
    df, _ = sim
    panel = sim_panel(df)
    full = _est(panel)
    binned = _est(panel, window=(2, 2))
    assert binned.dynamic.event_time.tolist() == [-2, -1, 0, 1, 2]
    same = full.dynamic.set_index("event_time").loc[[-1, 0, 1], "estimate"]
    np.testing.assert_allclose(
        binned.dynamic.set_index("event_time").loc[[-1, 0, 1], "estimate"], same
    )
    a = full.att_gt
    ends = a[a.event_time >= 2]
    sizes = df.groupby("unit").g.first().value_counts()
    w = ends.group.astype(int).map(sizes)
    expect = float((ends.att * w).sum() / w.sum())
    assert binned.dynamic.set_index("event_time").loc[2, "estimate"] == pytest.approx(expect)


@pytest.mark.parametrize("kind", ["mammen", "rademacher", "webb"])
def test_uniform_band_is_reproducible_and_wider_than_pointwise(sim, kind: str) -> None:
    panel = sim_panel(simulate_staggered(n_units=300, seed=5)[0], cluster="region")
    a = _est(panel, replications=999, bootstrap_weights=kind, rng=np.random.default_rng(4))
    b = _est(panel, replications=999, bootstrap_weights=kind, rng=np.random.default_rng(4))
    assert a.critical_value == b.critical_value
    k = len(a.dynamic)
    from scipy import stats

    assert 1.96 < a.critical_value < stats.norm.ppf(1 - 0.025 / k) + 0.3


def test_covariate_dr_and_ipw_match_csdid() -> None:
    """DR and IPW with a covariate against the Python port of R did (if installed)."""
    pytest.importorskip("csdid")
    import warnings

    from csdid.att_gt import ATTgt

    df = pd.read_csv(shared_data("mpdta.csv"))
    panel = make_panel(
        df,
        unit="countyreal",
        time="year",
        first_treated="first.treat",
        outcomes=("lemp",),
        covariates=("lpop",),
    )
    for method in ("dr", "ipw"):
        ours = cs.estimate_group_time_effects(
            panel, "lemp", method=method, covariates=("lpop",), replications=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peer = ATTgt(
                yname="lemp",
                tname="year",
                idname="countyreal",
                gname="first.treat",
                data=df,
                xformla="lemp~lpop",
            ).fit(est_method=method, bstrap=False)
        ref = peer.results
        np.testing.assert_allclose(ours.att_gt.att, np.asarray(ref["att"]), rtol=1e-6)
        np.testing.assert_allclose(ours.att_gt.std_error, np.asarray(ref["se"]), rtol=1e-4)


# ----------------------------------------------------------------------------- errors, contract
def test_user_errors_name_the_problem(sim) -> None:
    df, _ = sim
    panel = sim_panel(df)
    with pytest.raises(DataError, match="outcome column 'nope'"):
        cs.estimate_group_time_effects(panel, "nope")
    with pytest.raises(DataError, match="covariate column 'age'"):
        cs.estimate_group_time_effects(panel, "y", covariates=("age",))
    with pytest.raises(EstimationError, match="allowed: dr, ipw, reg"):
        cs.estimate_group_time_effects(panel, "y", method="ols")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="balance_e"):
        CallawaySantAnnaOptions(balance_e=-1)  # the option group refuses it before any fit
    bad = df.assign(region=np.where(df.time == 0, 99, df.region))
    with pytest.raises(DataError, match="cluster column varies within a unit"):
        cs.estimate_group_time_effects(sim_panel(bad, cluster="region"), "y")


def test_estimates_are_deterministic_under_a_seed(sim) -> None:
    panel = sim_panel(sim[0])
    opts = EstimatorOptions(
        replications=199, callaway_santanna=CallawaySantAnnaOptions(aggregation="dynamic")
    )
    a = cs.fit_callaway_santanna(panel, "y", opts, np.random.default_rng(9))
    b = cs.fit_callaway_santanna(panel, "y", opts, np.random.default_rng(9))
    assert a.estimate == b.estimate
    assert a.staggered is not None and b.staggered is not None
    assert a.staggered.uniform_band_critical_value == b.staggered.uniform_band_critical_value
    assert a.estimand == "ATT (dynamic aggregation)"


@pytest.mark.parametrize("method", ["reg", "ipw", "dr"])
@pytest.mark.parametrize("covariates", [(), ("lpop",)])
def test_repeated_cross_sections_match_csdid(method: str, covariates: tuple[str, ...]) -> None:
    """mpdta treated as repeated cross-sections: every method, with and without a covariate."""
    pytest.importorskip("csdid")
    import warnings

    from csdid.att_gt import ATTgt

    df = pd.read_csv(shared_data("mpdta.csv")).assign(rid=lambda d: np.arange(len(d)))
    panel = make_panel(
        df,
        unit="rid",
        time="year",
        first_treated="first.treat",
        outcomes=("lemp",),
        covariates=("lpop",),
        layout="repeated_cross_section",
    )
    ours = cs.estimate_group_time_effects(
        panel, "lemp", method=method, covariates=covariates, replications=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = ATTgt(
            yname="lemp",
            tname="year",
            idname="rid",
            gname="first.treat",
            data=df,
            xformla="lemp~lpop" if covariates else None,
            panel=False,
        ).fit(est_method=method, bstrap=False)
    np.testing.assert_allclose(ours.att_gt.att, np.asarray(peer.results["att"]), rtol=1e-8)
    np.testing.assert_allclose(ours.att_gt.std_error, np.asarray(peer.results["se"]), rtol=1e-8)


def test_singular_pretest_falls_back_to_event_time_averages() -> None:
    """Few treated units and many pre-periods: the cell-level Wald test is undefined."""
    df, _ = simulate_staggered(n_units=80, n_periods=16, cohorts=(10, 13), never_share=0.9, seed=2)
    panel = sim_panel(df)
    res = _est(panel, window=(3, 3))
    notes: list[Notice] = []
    with pytest.warns(DesignWarning, match="pre-test uses the pre-treatment event-time"):
        pre = group_time_pretest(res.pre_period, notes)
    assert pre is not None
    assert "event-time" in pre.test
    assert pre.df == 3
    assert 0 <= pre.p_value <= 1
    assert [n.code for n in notes] == ["cs-pretest-unavailable"]
    assert "event-time averages" in notes[0].message
