"""Triple differences: pyfixest's three-way fixed-effects regressions, diff-diff, recovery where
a plain DiD is biased, coverage, and the contract checks on panels with eligibility groups."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab import catalogue
from pilotlab.data import panel_from_frame
from pilotlab.engine import choose_estimator
from pilotlab.estimators import EstimatorOptions
from pilotlab.estimators.triple_difference import fit_triple_difference
from pilotlab.exceptions import DataError, EstimationError
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict
from tests.support.cell_designs import ddd_frame, ddd_panel


def _fit(panel, **kw):
    return fit_triple_difference(panel, "outcome", EstimatorOptions(**kw), np.random.default_rng(0))


def _fixest(formula: str, df: pd.DataFrame):
    pf = pytest.importorskip("pyfixest")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pf.feols(formula, data=df, vcov={"CRV1": "area"})
        return m.coef(), m.se()


def test_event_times_equal_the_three_way_fixed_effects_event_study() -> None:
    frame, _ = ddd_frame(0)
    panel = ddd_panel(0)
    r = _fit(panel, window=(5, 2))
    tr = frame["area"].isin([f"A{i:03d}" for i in range(12)])
    df = frame.assign(
        D=(tr & (frame.elig == 1)).astype(int),
        e=np.where(tr, frame.year - 2015, -1),
        ag=frame.area + frame.elig.astype(str),
        at=frame.area + frame.year.astype(str),
        gt=frame.elig.astype(str) + frame.year.astype(str),
    )
    coef, se = _fixest("outcome ~ i(e, D, ref=-1) | ag + at + gt", df)
    ours = r.event_study_frame().set_index("event_time")
    for name, b in coef.items():
        e = int(name.split("::")[1].split(":")[0])
        assert ours.loc[e, "estimate"] == pytest.approx(b, rel=1e-9, abs=1e-12)
        assert ours.loc[e, "std_error"] == pytest.approx(se[name], rel=0.05)


def test_two_periods_is_the_textbook_triple_difference() -> None:
    """With two periods the estimate is the triple interaction of the saturated regression;
    the standard error is the two-sample one of the areas' changes in the gap (each group's
    unbiased variance over its size), computed here directly, and close to the CR1 one."""
    frame, adoption = ddd_frame(1)
    two = frame[frame.year.isin([2014, 2015])].reset_index(drop=True)
    spec = parse_pilot(
        pilot_dict(
            data={"path": "d.csv", "unit": "area", "time": "year", "group": "elig"},
            treatment={"adoption": adoption},
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = _fit(panel_from_frame(two, spec))
    df = two.assign(
        post=(two.year == 2015).astype(int), tr=two.area.isin(list(adoption)).astype(int)
    )
    coef, se = _fixest(
        "outcome ~ tr:post:elig + tr:post + tr:elig + post:elig + tr + post + elig", df
    )
    assert r.estimate == pytest.approx(coef["tr:post:elig"], rel=1e-10)
    cells = two.pivot_table(index="area", columns=["year", "elig"], values="outcome")
    change = (cells[(2015, 1)] - cells[(2015, 0)]) - (cells[(2014, 1)] - cells[(2014, 0)])
    pilot = change.index.isin(list(adoption))
    by_hand = change[pilot].mean() - change[~pilot].mean()
    se_hand = math.sqrt(change[pilot].var() / pilot.sum() + change[~pilot].var() / (~pilot).sum())
    assert r.estimate == pytest.approx(by_hand, rel=1e-10)
    assert r.std_error == pytest.approx(se_hand, rel=1e-10)
    assert r.std_error == pytest.approx(se["tr:post:elig"], rel=0.1)


def test_staggered_matches_diff_diff_unconditional_triple_difference() -> None:
    dd = pytest.importorskip("diff_diff")
    frame, adoption = ddd_frame(2, n_areas=60, n_treated=30, starts=(3, 5))
    panel = ddd_panel(2, n_areas=60, n_treated=30, starts=(3, 5))
    r = _fit(panel)
    first = frame.area.map({a: int(y) - 2010 + 1 for a, y in adoption.items()}).fillna(0)
    cell = frame.area + "-" + frame.elig.astype(str)  # diff-diff's unit: area x group
    df = frame.assign(ft=first.astype(int), t=frame.year - 2010 + 1, cell=cell)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = dd.TripleDifference(
            estimation_method="reg", control_group="never_treated", base_period="universal"
        ).fit(df, "outcome", partition="elig", time="t", unit="cell", first_treat="ft",
              aggregate="event_study")  # fmt: skip
    theirs = {int(k): v["effect"] for k, v in m.event_study_effects.items()}
    ours = r.event_study_frame().set_index("event_time")["estimate"]
    common = [e for e in theirs if e in ours.index and e >= 0]
    assert common
    for e in common:
        assert ours.loc[e] == pytest.approx(theirs[e], rel=1e-6, abs=1e-9)


def test_recovers_the_effect_where_a_plain_did_is_biased() -> None:
    errors, did = [], []
    for seed in range(4):
        panel = ddd_panel(seed, n_areas=60, n_treated=20, starts=(3, 5))
        errors.append(_fit(panel).estimate - 2.0)
        frame, adoption = ddd_frame(seed, n_areas=60, n_treated=20, starts=(3, 5))
        elig = frame[frame.elig == 1].drop(columns="elig")
        spec = parse_pilot(
            pilot_dict(
                data={"path": "d.csv", "unit": "area", "time": "year"},
                treatment={"adoption": adoption},
            )
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = panel_from_frame(elig, spec)
        cs = catalogue.get("callaway_santanna")
        did.append(cs.fit(p, "outcome", EstimatorOptions(), np.random.default_rng(0)).estimate - 2)
    assert np.mean(did) > 0.5  # the area-wide effect leaks into the eligible-only DiD
    assert abs(np.mean(errors)) < 0.15


def test_contract_on_a_group_panel() -> None:
    """The checks the generic contract runs, on a panel with eligibility groups."""
    panel = ddd_panel(3)
    a, b = _fit(panel), _fit(panel)
    assert a.estimate == b.estimate and a.std_error == b.std_error
    assert a.ci_lower < a.estimate < a.ci_upper and 0 <= a.p_value <= 1
    assert (a.n_units, a.n_treated_units, a.n_periods) == (40, 12, 8)
    frame = panel.frame.copy()
    frame.loc[[5, 17], "outcome"] = np.nan
    holed = panel.with_frame(frame).complete("outcome")
    assert math.isfinite(_fit(holed).estimate)
    with pytest.raises(EstimationError, match=r"design\.covariates"):
        _fit(panel, covariates=("outcome",))
    boot = _fit(panel, inference="wild_bootstrap", replications=499)
    assert boot.inference == "wild_bootstrap" and boot.ci_lower < boot.estimate < boot.ci_upper
    assert choose_estimator(panel, "auto").name == "triple_difference"
    with pytest.raises(EstimationError, match=r"data\.group"):
        choose_estimator(panel, "did")


def test_a_group_column_with_one_value_is_refused_naming_the_key() -> None:
    frame, adoption = ddd_frame(0)
    spec = parse_pilot(
        pilot_dict(
            data={"path": "d.csv", "unit": "area", "time": "year", "group": "elig"},
            treatment={"adoption": adoption},
        )
    )
    with pytest.raises(DataError, match=r"data.group: column 'elig' has one value only"):
        panel_from_frame(frame.assign(elig=1), spec)
    with pytest.raises(DataError, match=r"data.group: column 'elig' has 1 cell"):
        panel_from_frame(frame.assign(elig=frame.elig.where(frame.index != 3, 7)), spec)


def _coverage(seeds: range, n_areas: int) -> tuple[float, float]:
    hits, errs = [], []
    for seed in seeds:
        r = _fit(ddd_panel(500 + seed, n_areas=n_areas, n_treated=n_areas // 3, starts=(3, 5)))
        hits.append(r.ci_lower <= 2.0 <= r.ci_upper)
        errs.append(r.estimate - 2.0)
    return float(np.mean(hits)), float(np.mean(errs))


def test_coverage_near_95_percent() -> None:
    cover, bias = _coverage(range(60), 60)
    assert 0.85 <= cover <= 1.0 and abs(bias) < 0.1, (cover, bias)


@pytest.mark.slow
def test_coverage_near_95_percent_long() -> None:
    cover, bias = _coverage(range(500), 90)
    assert 0.93 <= cover <= 0.97 and abs(bias) < 0.03, (cover, bias)


def test_an_effect_on_the_treated_moves_the_estimate_by_that_effect() -> None:
    """Power planning adds effects to ``treated_now``: with groups, only the eligible rows of
    pilot areas in treated periods, so the triple difference moves by the effect added."""
    panel = ddd_panel(4)
    on = panel.treated_now
    assert not on[panel.frame["elig"].to_numpy() == 0].any()
    frame = panel.frame.copy()
    frame["outcome"] += 0.7 * on
    base, moved = _fit(panel), _fit(panel.with_frame(frame))
    assert moved.estimate - base.estimate == pytest.approx(0.7, rel=1e-9)
