"""The switching estimator (de Chaisemartin & D'Haultfoeuille): the authors' formulas on a small
panel by hand, diff-diff's implementation, coverage, and the pilot-file forms of switching."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab.data import panel_from_frame
from pilotlab.engine import choose_estimator, choose_inference
from pilotlab.estimators import EstimatorOptions
from pilotlab.estimators.switching import SwitchingOptions, fit_switching
from pilotlab.exceptions import DataError, EstimationError
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict
from tests.support.cell_designs import switching_frame, switching_panel

SPEC = pilot_dict(
    data={"path": "d.csv", "unit": "area", "time": "year"}, treatment={"indicator": "treated"}
)


def _panel(frame: pd.DataFrame, treatment: dict | None = None):
    spec = parse_pilot({**SPEC, **({"treatment": treatment} if treatment else {})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(frame, spec)


def _fit(panel, **kw):
    return fit_switching(panel, "outcome", EstimatorOptions(**kw), np.random.default_rng(0))


def test_the_authors_formulas_by_hand() -> None:
    """Joiner A (0,0,1,0: on, then off again), leaver C (1,1,0,0), never-switchers B and D."""
    D = {"A": [0, 0, 1, 0], "B": [0, 0, 0, 0], "C": [1, 1, 0, 0], "D": [1, 1, 1, 1]}
    Y = {"A": [1.0, 2.0, 5.0, 4.0], "B": [0.5, 1.0, 2.0, 2.5], "C": [3.0, 4.0, 3.5, 4.5],
         "D": [2.0, 2.0, 4.0, 5.0]}  # fmt: skip
    frame = pd.DataFrame(
        [(u, 2010 + t, D[u][t], Y[u][t]) for u in D for t in range(4)],
        columns=["area", "year", "treated", "outcome"],
    )
    panel = _panel(frame)
    assert panel.is_switching
    r = _fit(panel, window=(2, 1))  # horizons 1 and 2, one placebo
    dyn = r.staggered.dynamic.frame.set_index("event_time")
    y = {u: np.array(v) for u, v in Y.items()}
    did1_a = (y["A"][2] - y["A"][1]) - (y["B"][2] - y["B"][1])
    did1_c = -((y["C"][2] - y["C"][1]) - (y["D"][2] - y["D"][1]))
    did2_a = (y["A"][3] - y["A"][1]) - (y["B"][3] - y["B"][1])
    did2_c = -((y["C"][3] - y["C"][1]) - (y["D"][3] - y["D"][1]))
    pl_a = (y["A"][0] - y["A"][1]) - (y["B"][0] - y["B"][1])
    pl_c = -((y["C"][0] - y["C"][1]) - (y["D"][0] - y["D"][1]))
    assert dyn.loc[0, "estimate"] == pytest.approx((did1_a + did1_c) / 2)
    assert dyn.loc[1, "estimate"] == pytest.approx((did2_a + did2_c) / 2)
    assert dyn.loc[-2, "estimate"] == pytest.approx((pl_a + pl_c) / 2)
    # normalised: A accumulates 1 + 0 periods of change by horizon 2, C 1 + 1
    assert dyn.loc[1, "normalised"] == pytest.approx((did2_a + did2_c) / 2 / 1.5)
    # delta: all switches' effects over the periods of treatment change (A is back off at 3)
    assert r.estimate == pytest.approx((did1_a + did1_c + did2_a + did2_c) / 3)
    avg = _fit(panel, window=(2, 1), estimator=SwitchingOptions(aggregation="average"))
    assert avg.estimate == pytest.approx((did1_a + did1_c + did2_a + did2_c) / 4)


@pytest.mark.parametrize("pattern", ["single_switch", "random"])
def test_matches_diff_diff(pattern: str) -> None:
    """Effects at each horizon, placebos, normalised effects and their standard errors agree
    with diff-diff's ChaisemartinDHaultfoeuille to rounding; delta too when units switch once."""
    dd = pytest.importorskip("diff_diff")
    df = dd.generate_reversible_did_data(
        n_groups=120, n_periods=8, pattern=pattern, heterogeneous_effects=True, seed=3
    )
    df["area"] = "G" + df.group.astype(str).str.zfill(3)
    df["year"] = 2010 + df.period
    frame = df[["area", "year", "treatment", "outcome"]].rename(columns={"treatment": "treated"})
    r = _fit(_panel(frame), window=(4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = dd.ChaisemartinDHaultfoeuille(twfe_diagnostic=False, drop_larger_lower=False).fit(
            df, "outcome", "group", "period", "treatment", L_max=3
        )
    dyn = r.staggered.dynamic.frame.set_index("event_time")
    for l_, v in m.event_study_effects.items():
        assert dyn.loc[l_ - 1, "estimate"] == pytest.approx(v["effect"], rel=1e-9)
        assert dyn.loc[l_ - 1, "std_error"] == pytest.approx(v["se"], rel=1e-6)
        assert dyn.loc[l_ - 1, "switchers"] == v["n_obs"]
    for l_, v in m.placebo_event_study.items():
        assert dyn.loc[-1 + l_, "estimate"] == pytest.approx(v["effect"], rel=1e-9)
        assert dyn.loc[-1 + l_, "std_error"] == pytest.approx(v["se"], rel=1e-6)
    for l_, v in m.normalized_effects.items():
        assert dyn.loc[l_ - 1, "normalised"] == pytest.approx(v["effect"], rel=1e-9)
    if pattern == "single_switch":
        assert r.estimate == pytest.approx(m.cost_benefit_delta["delta"], rel=1e-9)


def test_end_dates_make_a_switching_panel_and_absorbing_estimators_refuse_it() -> None:
    frame = switching_frame(0)
    absorbing = frame.groupby("area")["treated"].transform("first") == 0
    frame = frame[absorbing].reset_index(drop=True)
    units = sorted(frame.area.unique())[:10]
    spec = {"units": units, "start": "2012", "end": "2014"}
    panel = _panel(frame, spec)
    assert panel.is_switching
    assert panel.treatment is not None and panel.treatment[:, 5:].sum() == 0
    for name in ("did", "twfe", "event_study", "callaway_santanna", "stacked"):
        with pytest.raises(EstimationError) as err:
            choose_estimator(panel, name)
        assert "stops for some units" in str(err.value) and "switching" in str(err.value)
    chosen = choose_estimator(panel, "auto")
    assert chosen.name == "switching" and "stops" in chosen.reason
    with pytest.raises(EstimationError, match="'permutation'"):
        choose_inference(panel, "switching", "permutation")
    adoption = {u: {"start": "2012", "end": "2014"} for u in units}
    same = _panel(frame, {"adoption": adoption})
    assert np.array_equal(same.treatment, panel.treatment)


def test_an_end_before_the_start_is_refused_naming_the_key() -> None:
    frame = switching_frame(0)
    with pytest.raises(DataError, match=r"treatment.end: 2011 is before the start \(2013\)"):
        _panel(frame, {"units": ["U001"], "start": "2013", "end": "2011"})
    with pytest.raises(DataError, match=r"treatment.adoption.U001.end: 2011 is before"):
        _panel(frame, {"adoption": {"U001": {"start": "2013", "end": "2011"}}})


def test_an_end_at_the_last_period_keeps_the_absorbing_path() -> None:
    frame = switching_frame(0)
    panel = _panel(frame, {"units": ["U001", "U002"], "start": "2013", "end": "2017"})
    assert not panel.is_switching and panel.treatment is None


def test_indicator_cells_must_be_zero_or_one() -> None:
    frame = switching_frame(0)
    frame.loc[4, "treated"] = 2
    with pytest.raises(DataError, match=r"treatment\.indicator: column 'treated'"):
        _panel(frame)


def _coverage(seeds: range, n_units: int) -> tuple[float, float]:
    hits, errs = [], []
    for seed in seeds:
        r = _fit(switching_panel(300 + seed, n_units=n_units))
        hits.append(r.ci_lower <= 2.0 <= r.ci_upper)
        errs.append(r.estimate - 2.0)
    return float(np.mean(hits)), float(np.mean(errs))


def test_coverage_near_95_percent() -> None:
    cover, bias = _coverage(range(60), 120)
    assert 0.85 <= cover <= 1.0 and abs(bias) < 0.05, (cover, bias)


@pytest.mark.slow
def test_coverage_near_95_percent_long() -> None:
    cover, bias = _coverage(range(500), 200)
    assert 0.93 <= cover <= 0.97 and abs(bias) < 0.02, (cover, bias)
