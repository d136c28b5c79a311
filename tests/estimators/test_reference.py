"""Published numbers reproduced: Card & Krueger (1994) and the mpdta TWFE regression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pilotlab.data import panel_from_frame
from pilotlab.estimators import ESTIMATORS, EstimatorOptions
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict, shared_data

RNG = np.random.default_rng(0)


def _card_krueger(balanced: bool):
    df = pd.read_csv(shared_data("card_krueger_long.csv"))
    df["store"] = (
        df["state"].astype(str) + "-" + df["sheet"].astype(str)
    )  # sheet repeats across states
    if balanced:
        both = df.dropna(subset=["fte"]).groupby("store").size()
        df = df[df["store"].isin(both.index[both == 2])]
    nj = sorted(df.loc[df["state"] == 1, "store"].unique())
    spec = parse_pilot(
        pilot_dict(
            data={"path": "ck.csv", "unit": "store", "time": "wave"},
            treatment={"units": nj, "start": 2},
            outcomes=[{"column": "fte"}],
        )
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing FTE values are reported by the loader
        panel = panel_from_frame(df, spec)
    return panel.complete("fte")


def test_card_krueger_all_stores() -> None:
    """Table 3, row 3: change in mean FTE, NJ minus PA, all available stores: 2.76 (2.754)."""
    panel = _card_krueger(balanced=False)
    r = ESTIMATORS["did"].fit(panel, "fte", EstimatorOptions(inference="cluster"), RNG)
    assert r.estimate == pytest.approx(2.754, abs=5e-4)
    assert round(r.estimate, 2) == 2.75 or round(r.estimate, 2) == 2.76


def test_card_krueger_balanced_sample() -> None:
    """Balanced sample: 2.75 (SE 1.34), mean changes -2.283 (PA, n=75) and 0.467 (NJ, n=309)."""
    panel = _card_krueger(balanced=True)
    assert (panel.n_units - panel.n_treated_units, panel.n_treated_units) == (75, 309)
    for name in ("did", "twfe", "event_study"):
        r = ESTIMATORS[name].fit(panel, "fte", EstimatorOptions(inference="cluster"), RNG)
        assert r.estimate == pytest.approx(2.75, abs=1e-9), name
        assert round(r.std_error, 2) == 1.34, name
    means = ESTIMATORS["did"].fit(panel, "fte", EstimatorOptions(), RNG).group_means
    assert means is not None
    assert means.comparison_after - means.comparison_before == pytest.approx(-2.283, abs=5e-4)
    assert means.treated_after - means.treated_before == pytest.approx(0.467, abs=5e-4)


def _mpdta():
    df = pd.read_csv(shared_data("mpdta.csv"))
    spec = parse_pilot(
        pilot_dict(
            data={"path": "mpdta.csv", "unit": "countyreal", "time": "year"},
            treatment={"column": "first.treat"},
            outcomes=[{"column": "lemp"}],
        )
    )
    return panel_from_frame(df, spec)


def test_mpdta_twfe_matches_fixest() -> None:
    """``feols(lemp ~ treated_post | county + year, cluster = ~county)``: -0.036549 (0.01327)."""
    panel = _mpdta()
    assert (panel.n_units, panel.n_periods, panel.n_treated_units) == (500, 5, 191)
    r = ESTIMATORS["twfe"].fit(panel, "lemp", EstimatorOptions(inference="cluster"), RNG)
    assert r.estimate == pytest.approx(-0.036549, abs=5e-7)
    assert round(r.std_error, 5) == 0.01327
    assert r.n_clusters == 500


def test_cr1_matches_statsmodels_with_dummies() -> None:
    """The within-transformation gives the dummy-variable regression's coefficient; CR1 differs from
    statsmodels only by fixest's count of nested fixed effects, which we check explicitly."""
    sm = pytest.importorskip("statsmodels.formula.api")
    panel = _mpdta()
    df = panel.frame.assign(D=panel.treated_now.astype(float))
    fit = sm.ols("lemp ~ D + C(_unit) + C(_time)", data=df).fit(
        cov_type="cluster", cov_kwds={"groups": df["_unit"]}
    )
    r = ESTIMATORS["twfe"].fit(panel, "lemp", EstimatorOptions(inference="cluster"), RNG)
    assert r.estimate == pytest.approx(fit.params["D"], rel=1e-10)
    n, K_sm, K_fixest = 2500, 505, 6  # statsmodels counts every dummy; fixest not the nested ones
    ratio = np.sqrt((n - K_sm) / (n - K_fixest))
    assert r.std_error == pytest.approx(fit.bse["D"] * ratio, rel=1e-8)
