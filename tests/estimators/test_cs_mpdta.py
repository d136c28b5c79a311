"""Callaway & Sant'Anna against R ``did`` 2.5.x on mpdta (published reference files)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pilotlab.diagnostics.pretrend import group_time_pretest
from pilotlab.estimators.base import ESTIMATORS, EstimatorOptions
from pilotlab.estimators.callaway_santanna import estimate_group_time_effects
from pilotlab.exceptions import EstimationError
from pilotlab.spec.models import CallawaySantAnnaOptions
from tests.support.cs import DATA, load_via_spec
from tests.support.pretest import fit_tested

pytestmark = pytest.mark.skipif(
    not (DATA / "mpdta.csv").exists() and os.environ.get("CI") != "true",
    reason=f"reference data not found in {DATA}",
)

SCENARIOS = {
    "mpdta_nev_dr": {"comparison": "never_treated", "method": "dr", "covariates": ()},
    "mpdta_nyt_dr": {"comparison": "not_yet_treated", "method": "dr", "covariates": ()},
    "mpdta_nev_reg_cov": {"comparison": "never_treated", "method": "reg", "covariates": ("lpop",)},
    "mpdta_nev_ipw": {"comparison": "never_treated", "method": "ipw", "covariates": ()},
}


def _sig(a: np.ndarray, b: np.ndarray, digits: int) -> None:
    """Agreement to ``digits`` significant digits (relative 0.5 * 10^(1-digits))."""
    np.testing.assert_allclose(a, b, rtol=0.5 * 10.0 ** (1 - digits), atol=1e-12)


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return pd.read_csv(DATA / "mpdta.csv")


def _fit(mpdta: pd.DataFrame, scenario: str, **kw: object):
    s = SCENARIOS[scenario]
    panel = load_via_spec(
        mpdta,
        unit="countyreal",
        time="year",
        first_treated="first.treat",
        outcomes=("lemp",),
        covariates=s["covariates"],
        comparison=s["comparison"],
    )
    return estimate_group_time_effects(
        panel,
        "lemp",
        method=s["method"],
        covariates=s["covariates"],
        rng=np.random.default_rng(7),
        **kw,
    )


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_att_gt_matches_r_did(mpdta: pd.DataFrame, scenario: str) -> None:
    ref = pd.read_csv(DATA / "mpdta_R_did_ref_attgt.csv")
    ref = ref[ref.scenario == scenario].sort_values(["group", "t"])
    res = _fit(mpdta, scenario)
    got = res.att_gt.assign(group=res.att_gt.group.astype(int), t=res.att_gt.time.astype(int))
    got = got.sort_values(["group", "t"])
    assert got[["group", "t"]].to_numpy().tolist() == ref[["group", "t"]].to_numpy().tolist()
    _sig(got.att.to_numpy(), ref.att.to_numpy(), 6)
    _sig(got.std_error.to_numpy(), ref.se.to_numpy(), 4)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_aggregations_match_r_did(mpdta: pd.DataFrame, scenario: str) -> None:
    ref = pd.read_csv(DATA / "mpdta_R_did_ref_aggte.csv")
    ref = ref[ref.scenario == scenario]
    res = _fit(mpdta, scenario)
    overall = res.aggregations.set_index("type")
    for kind in ("simple", "group", "dynamic", "calendar"):
        r = ref[ref.type == kind].iloc[0]
        _sig(np.array([overall.loc[kind, "estimate"]]), np.array([r.overall_att]), 6)
        _sig(np.array([overall.loc[kind, "std_error"]]), np.array([r.overall_se]), 4)
    parts = {
        "group": (res.group, "group"),
        "dynamic": (res.dynamic, "event_time"),
        "calendar": (res.calendar, "time"),
    }
    for kind, (table, key) in parts.items():
        r = ref[ref.type == kind].sort_values("egt")
        t = table.assign(k=table[key].astype(int)).sort_values("k")
        assert t.k.tolist() == r.egt.astype(int).tolist()
        _sig(t.estimate.to_numpy(), r.att_egt.to_numpy(), 6)
        _sig(t.std_error.to_numpy(), r.se_egt.to_numpy(), 4)


def test_headline_numbers_from_readme(mpdta: pd.DataFrame) -> None:
    res = _fit(mpdta, "mpdta_nev_dr").aggregations.set_index("type")
    assert res.loc["simple", "estimate"] == pytest.approx(-0.0399512752, rel=5e-6)
    assert res.loc["simple", "std_error"] == pytest.approx(0.0120340128, rel=5e-4)
    assert res.loc["dynamic", "estimate"] == pytest.approx(-0.0772398215, rel=5e-6)
    nyt = _fit(mpdta, "mpdta_nyt_dr").aggregations.set_index("type")
    assert nyt.loc["simple", "estimate"] == pytest.approx(-0.0397636, rel=5e-6)
    assert nyt.loc["simple", "std_error"] == pytest.approx(0.0120524, rel=5e-4)
    reg = _fit(mpdta, "mpdta_nev_reg_cov").aggregations.set_index("type")
    assert reg.loc["simple", "estimate"] == pytest.approx(-0.0419686, rel=5e-6)
    assert reg.loc["simple", "std_error"] == pytest.approx(0.0114448, rel=5e-4)


def test_pretest_matches_r_wpval(mpdta: pd.DataFrame) -> None:
    pre = group_time_pretest(_fit(mpdta, "mpdta_nev_dr").pre_period)
    assert pre is not None
    assert pre.df == 5
    assert pre.statistic == pytest.approx(7.7912, abs=5e-5)
    assert pre.p_value_chi2 == pytest.approx(0.16812, abs=5e-6)  # R did's Wpval (chi2(5))
    # pilotlab refers W to the Hotelling F with the effective number of clusters G*: at most the
    # 500 counties, and more than the 20 counties of the smallest cohort (2004), whose
    # pre-period cells rest on them alone.
    assert pre.reference == "F" and pre.df_denom is not None
    g_eff = pre.df_denom + 5
    assert 20 < g_eff < 500
    f_stat = pre.statistic * (g_eff - 5) / (5 * (g_eff - 1))
    assert pre.p_value == pytest.approx(stats.f.sf(f_stat, 5, g_eff - 5), abs=1e-3)
    assert pre.p_value > pre.p_value_chi2


def test_dynamic_balance_e(mpdta: pd.DataFrame) -> None:
    res = _fit(mpdta, "mpdta_nev_dr", balance_e=1).aggregations.set_index("type")
    assert res.loc["dynamic", "estimate"] == pytest.approx(-0.028761, abs=5e-7)
    assert res.loc["dynamic", "std_error"] == pytest.approx(0.013686, abs=5e-7)


def test_a_balance_e_longer_than_any_follow_up_is_a_clear_error(mpdta: pd.DataFrame) -> None:
    # mpdta runs 2003-2007 and the earliest cohort starts in 2004: three periods of follow-up.
    with pytest.raises(EstimationError, match=r"balance_e is 4.*longest follow-up is 3 periods"):
        _fit(mpdta, "mpdta_nev_dr", balance_e=4)


def test_registered_fit_returns_effect_result(mpdta: pd.DataFrame) -> None:
    panel = load_via_spec(
        mpdta, unit="countyreal", time="year", first_treated="first.treat", outcomes=("lemp",)
    )
    entry = ESTIMATORS["callaway_santanna"]
    assert entry.capabilities.staggered
    opts = EstimatorOptions(
        callaway_santanna=CallawaySantAnnaOptions(aggregation="group"), replications=499
    )
    res = fit_tested(entry, panel, "lemp", opts, np.random.default_rng(3))
    assert res.estimator == "callaway_santanna"
    assert res.estimate == pytest.approx(-0.0310182822, rel=5e-6)
    assert res.std_error == pytest.approx(0.0124460593, rel=5e-4)
    assert res.ci_lower < res.estimate < res.ci_upper
    assert [e.event_time for e in res.event_study] == [-3, -2, -1, 0, 1, 2, 3]
    assert res.pre_trend is not None and res.pre_trend.df == 5
    st = res.staggered
    assert st is not None and st.group is not None and st.calendar is not None
    assert len(st.att_gt) and len(st.group) and len(st.calendar)
    assert set(st.aggregations.frame["type"]) == {"simple", "dynamic", "group", "calendar"}
    crit = st.uniform_band_critical_value
    # a sup-t band over 7 event times is wider than pointwise and narrower than Bonferroni
    assert 1.96 < crit < 3.2
    dyn = st.dynamic.frame
    assert np.all(dyn.uniform_lower <= dyn.ci_lower) and np.all(dyn.uniform_upper >= dyn.ci_upper)
    assert res.n_clusters == 500 and res.n_units == 500 and res.n_treated_units == 191
    # balance_e via options.extra
    bal = entry.fit(
        panel,
        "lemp",
        EstimatorOptions(
            callaway_santanna=CallawaySantAnnaOptions(aggregation="dynamic", balance_e=1),
            replications=0,
        ),
        np.random.default_rng(3),
    )
    assert bal.estimate == pytest.approx(-0.028761, abs=5e-7)


def test_multiplier_bootstrap_of_the_aggregations(mpdta: pd.DataFrame) -> None:
    """R did's default inference: bootstrap SEs close to the analytic ones (999 draws)."""
    res = _fit(mpdta, "mpdta_nev_dr").aggregations.set_index("type")
    ratio = res.boot_std_error / res.std_error
    assert ratio.between(0.85, 1.15).all()
    assert (res.boot_ci_lower < res.estimate).all() and (res.estimate < res.boot_ci_upper).all()
    assert res.loc["simple", "boot_p_value"] < 0.01  # -0.040 with SE 0.012
    assert res.boot_p_value.between(0, 1).all()


def test_balance_e_from_the_pilot_file(mpdta: pd.DataFrame) -> None:
    """`design.callaway_santanna.balance_e` reaches the estimator through evaluate()."""
    from pilotlab.engine import evaluate
    from pilotlab.spec import parse_pilot

    spec = parse_pilot({
        "id": "mpdta", "title": "mpdta",
        "data": {"path": "mpdta.csv", "unit": "countyreal", "time": "year"},
        "treatment": {"column": "first.treat"},
        "outcomes": [{"column": "lemp"}],
        "design": {"estimator": "callaway_santanna", "inference": {"method": "cluster"},
                   "callaway_santanna": {"aggregation": "dynamic", "balance_e": 1}},
    })  # fmt: skip
    r = evaluate(spec, data=mpdta).outcomes[0].result
    assert r.estimate == pytest.approx(-0.028761, abs=5e-7)
    assert r.std_error == pytest.approx(0.013686, abs=5e-7)
