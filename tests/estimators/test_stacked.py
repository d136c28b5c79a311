"""Stacked DiD: Wing, Freedman & Hollingsworth's weighted stacked regression, diff-diff, coverage."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab import catalogue
from pilotlab.data import panel_from_frame
from pilotlab.data.panel import NEVER, Panel
from pilotlab.estimators import EstimatorOptions
from pilotlab.estimators.stacked import StackedOptions, fit_stacked
from pilotlab.exceptions import EstimationError
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict


def _staggered(seed: int, n_units: int = 60, noise: float = 0.5) -> tuple[Panel, float]:
    sim = make_pilot_panel(
        n_units, 12, 40, [3, 6, 9], effect=lambda e: 0.6 * e, seed=seed, noise_sd=noise
    )
    spec = parse_pilot(pilot_dict(treatment={"adoption": sim.adoption}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(sim.data, spec), sim.att


def _fit(panel: Panel, **kw: object) -> object:
    opts = EstimatorOptions(**kw)  # type: ignore[arg-type]
    return fit_stacked(panel, "outcome", opts, np.random.default_rng(0))


def _stack(panel: Panel, pre: int, post: int) -> pd.DataFrame:
    """The trimmed stacked data set with the corrective weights Q, built row by row."""
    df = panel.frame.copy()
    df["g"] = panel.first_treated[df["_unit"]]
    parts = []
    for a in panel.cohorts.tolist():
        if a - pre < 0 or a + post > panel.n_periods - 1:
            continue
        keep = ((df.g == a) | (df.g == NEVER)) & df._time.between(a - pre, a + post)
        sub = df[keep].copy()
        sub["sub"], sub["D"], sub["e"] = a, (sub.g == a).astype(int), sub._time - a
        parts.append(sub)
    st = pd.concat(parts)
    nd = st[st.D == 1].groupby("sub")["_unit"].nunique()
    nc = st[st.D == 0].groupby("sub")["_unit"].nunique()
    q = (nd / nd.sum()) / (nc / nc.sum())
    st["w"] = np.where(st.D == 1, 1.0, q.loc[st["sub"]].to_numpy())
    st["su"] = st["sub"].astype(str) + "_" + st["_unit"].astype(str)
    st["st"] = st["sub"].astype(str) + "_" + st["_time"].astype(str)
    return st


def test_equals_the_q_weighted_stacked_regression() -> None:
    """pyfixest on the stacked data with Q weights, sub-experiment x unit and x period effects."""
    pf = pytest.importorskip("pyfixest")
    panel, _ = _staggered(1)
    r = _fit(panel, window=(2, 2), estimator=StackedOptions(trim=True))
    st = _stack(panel, 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pf.feols(
            "outcome ~ i(e, D, ref=-1) | su + st", data=st, weights="w", vcov={"CRV1": "_unit"}
        )
        coef, se = m.coef(), m.se()
    ours = r.event_study_frame().set_index("event_time")  # type: ignore[attr-defined]
    for name, b in coef.items():
        e = int(name.split("::")[1].split(":")[0])
        assert ours.loc[e, "estimate"] == pytest.approx(b, rel=1e-9, abs=1e-12)
        # influence-function SEs of the same combination: within a few per cent of CR1
        assert ours.loc[e, "std_error"] == pytest.approx(se[name], rel=0.1)
    # the trimmed aggregate ATT: every post event time averages the same cohorts
    post = [b for n, b in coef.items() if int(n.split("::")[1].split(":")[0]) >= 0]
    assert r.estimate == pytest.approx(np.mean(post), rel=1e-9)  # type: ignore[attr-defined]


def test_matches_diff_diff_stacked() -> None:
    dd = pytest.importorskip("diff_diff")
    panel, _ = _staggered(2)
    r = _fit(panel, window=(2, 2), estimator=StackedOptions(trim=True))
    f = panel.frame.copy()
    g = panel.first_treated[f["_unit"]]
    f["ft"] = np.where(g == NEVER, 0, g + 1)
    f["t"] = f["_time"] + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = dd.StackedDiD(kappa_pre=2, kappa_post=2, control_group="never_treated").fit(
            f, "outcome", "_unit", "t", "ft", aggregate="event_study"
        )
    assert r.estimate == pytest.approx(m.overall_att, rel=1e-9)  # type: ignore[attr-defined]
    ours = r.event_study_frame().set_index("event_time")  # type: ignore[attr-defined]
    for e, row in m.event_study_effects.items():
        assert ours.loc[e, "estimate"] == pytest.approx(row["effect"], rel=1e-9, abs=1e-12)


def test_recovers_heterogeneous_effects_where_twfe_is_biased() -> None:
    errors, twfe = [], []
    for seed in range(4):
        panel, att = _staggered(seed)
        errors.append(_fit(panel).estimate - att)  # type: ignore[attr-defined]
        t = catalogue.get("twfe").fit(panel, "outcome", EstimatorOptions(), np.random.default_rng())
        twfe.append(t.estimate - att)
    assert abs(np.mean(twfe)) > 0.7
    assert abs(np.mean(errors)) < 0.15


def test_wild_bootstrap_interval_is_close_to_the_analytic_one() -> None:
    panel, _ = _staggered(3)
    a = _fit(panel)
    b = _fit(panel, inference="wild_bootstrap", replications=1999)
    assert b.inference == "wild_bootstrap" and b.inference_details is not None  # type: ignore[attr-defined]
    assert b.estimate == a.estimate  # type: ignore[attr-defined]
    width_a = a.ci_upper - a.ci_lower  # type: ignore[attr-defined]
    width_b = b.ci_upper - b.ci_lower  # type: ignore[attr-defined]
    assert width_b == pytest.approx(width_a, rel=0.15)


def test_a_window_no_cohort_reaches_is_refused_naming_the_key() -> None:
    panel, _ = _staggered(0)
    with pytest.raises(EstimationError, match=r"design\.window"):
        _fit(panel, window=(8, 8), estimator=StackedOptions(trim=True))


def _coverage(seeds: range, n_units: int) -> tuple[float, float]:
    hits, errs = [], []
    for seed in seeds:
        panel, att = _staggered(1000 + seed, n_units=n_units, noise=1.0)
        r = _fit(panel)
        hits.append(r.ci_lower <= att <= r.ci_upper)  # type: ignore[attr-defined]
        errs.append(r.estimate - att)  # type: ignore[attr-defined]
    return float(np.mean(hits)), float(np.mean(errs))


def test_coverage_near_95_percent() -> None:
    cover, bias = _coverage(range(60), 80)
    assert 0.85 <= cover <= 1.0 and abs(bias) < 0.1, (cover, bias)


@pytest.mark.slow
def test_coverage_near_95_percent_long() -> None:
    cover, bias = _coverage(range(500), 120)
    assert 0.93 <= cover <= 0.97 and abs(bias) < 0.03, (cover, bias)


def test_the_direct_row_index_path_equals_the_masked_one() -> None:
    """Rectangular panels index a sub-experiment's rows directly; the result is the masks'."""
    from pilotlab.estimators._cells import cell_fit

    panel, _ = _staggered(5)
    args = (panel.y("outcome"), panel.weight, panel.unit, panel.time, panel.cluster,
            panel.first_treated, panel.n_periods)  # fmt: skip
    fast = cell_fit(*args, window=(3, 4), rectangular=True)
    slow = cell_fit(*args, window=(3, 4), rectangular=False)
    assert np.allclose(fast.mean, slow.mean, equal_nan=True)
    assert np.array_equal(fast.weight, slow.weight)
    assert abs(fast.scores - slow.scores).max() < 1e-12
