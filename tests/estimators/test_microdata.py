"""Microdata: estimates from area x period cells equal the same regression on the person rows.

The references are the weighted least-squares regression on the person rows with area and period
dummies (exact, no demeaning), pyfixest on the same rows, and pilotlab's own row-level path
(``layout: repeated_cross_section`` on the very same rows) for Callaway & Sant'Anna, the wild
bootstrap and randomisation inference.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from pilotlab.catalogue import get
from pilotlab.data import load_panel
from pilotlab.data.panel import Panel
from pilotlab.engine.choices import choose_estimator
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.exceptions import EstimationError
from pilotlab.inference.apply import apply_inference
from tests.support.microdata import micro_pilot, person_rows, row_regression, treated_areas

EST_TOL = 1e-10
SE_TOL = 1e-8


def _load(rows: pd.DataFrame, layout: str = "microdata", **kw: object) -> Panel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = micro_pilot(layout=layout, **kw)  # type: ignore[arg-type]
        covs = tuple(spec.design.covariates)
        return load_panel(spec, data=rows).complete("y", covs)


def _fit(panel: Panel, estimator: str, **options: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get(estimator).fit(
            panel,
            "y",
            EstimatorOptions(**options),
            np.random.default_rng(0),  # type: ignore[arg-type]
        )


CASES = [
    pytest.param(person, weights, covs, id=f"{'persons' if person else 'rcs'}"
                 f"{'-weighted' if weights else ''}{'-covariate' if covs else ''}")
    for person in (True, False)
    for weights in (False, True)
    for covs in ((), ("x",))
]  # fmt: skip


@pytest.mark.parametrize(("person", "weights", "covs"), CASES)
@pytest.mark.parametrize("vcov", ["cluster", "iid", "robust"])
def test_twfe_equals_the_person_level_regression(
    person: bool, weights: bool, covs: tuple[str, ...], vcov: str
) -> None:
    rows = person_rows(panel=person, weights=weights, seed=11)
    treated = treated_areas(rows, 8)
    panel = _load(rows, treated=treated, covariates=covs, weight=weights, person=person)
    w = rows["w"].to_numpy() if weights else None
    D = pd.DataFrame({"D": (rows["area"].isin(treated) & (rows["period"] >= 2004)).astype(float)})
    reg = pd.concat([D, rows[list(covs)]], axis=1)
    if vcov == "robust" and covs:
        with pytest.raises(EstimationError, match=r"robust.*person-level rows"):
            _fit(panel, "twfe", inference=vcov, covariates=covs)
        return
    res = _fit(panel, "twfe", inference=vcov, covariates=covs)
    b, se = row_regression(rows, reg, weights=w, vcov=vcov)
    assert abs(res.estimate - b[0]) < EST_TOL  # type: ignore[attr-defined]
    assert abs(res.std_error - se[0]) < SE_TOL  # type: ignore[attr-defined]
    assert res.nobs == len(rows)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("person", "weights", "covs"), CASES)
def test_event_study_and_did_equal_the_person_level_regression(
    person: bool, weights: bool, covs: tuple[str, ...]
) -> None:
    rows = person_rows(panel=person, weights=weights, seed=12, periods=7)
    treated = treated_areas(rows, 8)
    panel = _load(rows, treated=treated, covariates=covs, weight=weights, person=person)
    w = rows["w"].to_numpy() if weights else None
    t = rows["period"].to_numpy() - 2004
    is_tr = rows["area"].isin(treated).to_numpy()
    es = _fit(panel, "event_study", inference="cluster", covariates=covs, window=(2, 2))
    # the same event-time dummies on the rows: e in [-2, 2], ends binned, -1 the reference
    e = np.clip(t, -2, 2)
    cols = {f"e{k:+d}": (is_tr & (e == k)).astype(float) for k in (-2, 0, 1, 2)}
    b, se = row_regression(rows, pd.concat([pd.DataFrame(cols), rows[list(covs)]], axis=1),
                           weights=w)  # fmt: skip
    got = {ev.event_time: ev for ev in es.event_study if not ev.reference}  # type: ignore[attr-defined]
    for j, k in enumerate((-2, 0, 1, 2)):
        assert abs(got[k].estimate - b[j]) < EST_TOL
        assert abs(got[k].std_error - se[j]) < SE_TOL
    # the headline weights post-period coefficients by their treated person rows
    counts = np.array([cols[f"e{k:+d}"].sum() for k in (0, 1, 2)])
    assert abs(es.estimate - counts @ b[1:4] / counts.sum()) < EST_TOL  # type: ignore[attr-defined]

    did = _fit(panel, "did", inference="cluster", covariates=covs)
    post = (t >= 0).astype(float)
    dd = pd.DataFrame({"treated": is_tr.astype(float), "post": post, "tp": is_tr * post})
    b, se = row_regression(rows, pd.concat([dd, rows[list(covs)]], axis=1), weights=w,
                           fixed_effects=False)  # fmt: skip
    assert abs(did.estimate - b[2]) < EST_TOL  # type: ignore[attr-defined]
    assert abs(did.std_error - se[2]) < SE_TOL  # type: ignore[attr-defined]
    means = did.group_means  # type: ignore[attr-defined]
    sel = is_tr & (post == 1)
    assert (
        abs(means.treated_after - np.average(rows["y"][sel], weights=None if w is None else w[sel]))
        < EST_TOL
    )


@pytest.mark.parametrize("weights", [False, True])
def test_twfe_with_covariate_equals_pyfixest(weights: bool) -> None:
    rows = person_rows(panel=True, weights=weights, seed=13)
    treated = treated_areas(rows, 8)
    panel = _load(rows, treated=treated, covariates=("x",), weight=weights)
    rows["D"] = (rows["area"].isin(treated) & (rows["period"] >= 2004)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pf.feols("y ~ D + x | area + period", data=rows, vcov={"CRV1": "area"},
                       weights="w" if weights else None, fixef_tol=1e-14)  # fmt: skip
    res = _fit(panel, "twfe", inference="cluster", covariates=("x",))
    assert abs(res.estimate - float(ref.coef()["D"])) < EST_TOL  # type: ignore[attr-defined]
    assert abs(res.std_error - float(ref.se()["D"])) < SE_TOL  # type: ignore[attr-defined]


@pytest.mark.parametrize("weights", [False, True])
@pytest.mark.parametrize("staggered", [False, True])
def test_callaway_santanna_repeated_cross_sections_from_cells(
    weights: bool, staggered: bool
) -> None:
    rows = person_rows(panel=False, weights=weights, staggered=staggered, seed=14)
    treated = treated_areas(rows, 8)
    start: str | dict[str, str] = (
        {a: "2003" if i < 4 else "2004" for i, a in enumerate(treated)} if staggered else "2004"
    )
    kw = {"treated": treated, "weight": weights, "person": False, "start": start,
          "estimator": "callaway_santanna"}  # fmt: skip
    micro = _load(rows, **kw)
    rcs = _load(rows, layout="repeated_cross_section", **kw)
    for agg in ("simple", "dynamic", "group"):
        opts = {"inference": "cluster", "replications": 0,
                "callaway_santanna": micro_pilot(treated=treated, extra={
                    "callaway_santanna": {"aggregation": agg}}).design.callaway_santanna}  # fmt: skip
        a, b = _fit(micro, "callaway_santanna", **opts), _fit(rcs, "callaway_santanna", **opts)
        assert abs(a.estimate - b.estimate) < EST_TOL  # type: ignore[attr-defined]
        assert abs(a.std_error - b.std_error) < SE_TOL  # type: ignore[attr-defined]
        ta, tb = a.staggered.att_gt.frame, b.staggered.att_gt.frame  # type: ignore[attr-defined]
        np.testing.assert_allclose(ta["att"], tb["att"], atol=EST_TOL, rtol=0)
        np.testing.assert_allclose(ta["std_error"], tb["std_error"], atol=SE_TOL, rtol=0)
        assert a.nobs == len(rows)  # type: ignore[attr-defined]


def test_callaway_santanna_says_when_it_needs_the_rows() -> None:
    rows = person_rows(panel=True, seed=15)
    treated = treated_areas(rows, 8)
    with pytest.raises(EstimationError, match=r"data\.person.*person-level rows"):
        _fit(_load(rows, treated=treated), "callaway_santanna", inference="cluster")
    panel = _load(rows, treated=treated, person=False, covariates=("x",))
    with pytest.raises(EstimationError, match=r"design\.covariates.*person-level rows"):
        _fit(panel, "callaway_santanna", inference="cluster", covariates=("x",))


def test_synthetic_designs_are_refused_with_the_estimators_that_fit() -> None:
    rows = person_rows(seed=16)
    panel = _load(rows, treated=treated_areas(rows, 8))
    with pytest.raises(
        EstimationError, match=r"synthetic_control needs panel data.*microdata.*rows themselves"
    ):
        choose_estimator(panel, "synthetic_control")


@pytest.mark.parametrize("method", ["wild_bootstrap", "permutation"])
@pytest.mark.parametrize("estimator", ["twfe", "event_study"])
def test_bootstrap_and_permutation_equal_the_row_level_run(method: str, estimator: str) -> None:
    rows = person_rows(panel=False, weights=True, seed=17, areas=14, treated=6)
    treated = treated_areas(rows, 6)
    kw = {"treated": treated, "weight": True, "person": False, "covariates": ("x",)}
    micro, rcs = _load(rows, **kw), _load(rows, layout="repeated_cross_section", **kw)
    opts = EstimatorOptions(inference=method, covariates=("x",), replications=99)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = apply_inference(micro, "y", get(estimator), opts, np.random.default_rng(3))
        b = apply_inference(rcs, "y", get(estimator), opts, np.random.default_rng(3))
    assert a.p_value == pytest.approx(b.p_value, abs=1e-12)
    assert a.ci_lower == pytest.approx(b.ci_lower, abs=1e-8)
    assert a.ci_upper == pytest.approx(b.ci_upper, abs=1e-8)
