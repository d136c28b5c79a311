"""Power under the allocation scheme with weights and clusters coarser than the units."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from pilotlab.data.allocation import draw_many
from pilotlab.data.load import load_panel
from pilotlab.data.panel import Panel
from pilotlab.estimators import EstimatorOptions, get_estimator
from pilotlab.estimators.randomised import RandomisedOptions, prepare
from pilotlab.power.scheme import _pseudo_panel, batched_cr2, batched_hc2, scheme_power
from pilotlab.spec import PilotSpec
from pilotlab.spec.load import parse_pilot
from tests.support.trial import trial_frame, trial_pilot

PERIODS = tuple(f"{y}Q{q}" for y in (2017, 2018, 2019) for q in (1, 2, 3, 4))


def _history(data: dict[str, str], n_units: int = 48, **a: Any) -> tuple[Panel, PilotSpec]:
    raw = {**trial_pilot(**{"start": "2021Q1", **a}), "status": "planned"}
    raw["data"] = {**raw["data"], **data}
    spec = parse_pilot(raw)
    df = trial_frame(n_units=n_units, periods=PERIODS, n_strata=4, seed=1)
    codes = df["area_code"].str[1:].astype(int)
    df["households"] = 1.0 + (codes % 7) / 3.0  # constant within each unit
    df["club"] = "c" + (codes // 3).astype(str)  # clusters of one to three units
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_panel(spec, df, history=True), spec


@pytest.mark.parametrize(
    "data",
    [{"weight": "households"}, {"cluster": "club"}, {"weight": "households", "cluster": "club"}],
)
@pytest.mark.parametrize(
    "kw",
    [
        {"scheme": "complete", "treated": 24},
        {"scheme": "stratified", "strata": ["region"], "treated": 24},
    ],
)
@pytest.mark.parametrize("adjust", ["lin", "none"])
def test_batched_cr2_equals_fitting_each_allocation(
    data: dict[str, str], kw: dict[str, Any], adjust: str
) -> None:
    history, _ = _history(data, **kw)
    alloc = history.allocation
    assert alloc is not None
    opts = EstimatorOptions(estimator=RandomisedOptions(adjust=adjust))  # type: ignore[arg-type]
    codes = draw_many(alloc, 4, np.random.default_rng(1))
    start = history.n_periods - 4
    pseudo = _pseudo_panel(history, alloc.with_codes(codes[0]), start, 4)
    prep = prepare(pseudo, "outcome", opts)
    assert (prep.design.weight is not None) == ("weight" in data)
    est, se, dof = batched_cr2(prep, codes[:, alloc.index_of(prep.design.labels)], prep.design.y)
    entry = get_estimator("randomised")
    for r in range(4):  # the reference fits each allocation on its own
        p = _pseudo_panel(history, alloc.with_codes(codes[r]), start, 4)
        fit = entry.fit(p, "outcome", opts, np.random.default_rng(0))
        assert est[r] == pytest.approx(fit.estimate, rel=1e-9)
        assert se[r] == pytest.approx(fit.std_error, rel=1e-8)
        assert dof[r] == pytest.approx(fit.randomised.dof, rel=1e-7)  # type: ignore[union-attr]
        assert fit.n_clusters == (17 if "cluster" in data else 48)  # unequal clusters


def test_batched_cr2_is_hc2_without_weights_or_clusters() -> None:
    history, _ = _history({}, scheme="stratified", strata=["region"], treated=24)
    alloc = history.allocation
    assert alloc is not None
    codes = draw_many(alloc, 6, np.random.default_rng(2))
    pseudo = _pseudo_panel(history, alloc.with_codes(codes[0]), history.n_periods - 4, 4)
    prep = prepare(pseudo, "outcome", EstimatorOptions())
    c = codes[:, alloc.index_of(prep.design.labels)]
    for a, b in zip(
        batched_cr2(prep, c, prep.design.y), batched_hc2(prep, c, prep.design.y), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-8)


def test_weighted_scheme_power_is_simulated() -> None:
    """Weighted data no longer skip power under the scheme; same seed, same numbers."""
    history, spec = _history(
        {"weight": "households"}, scheme="stratified", strata=["region"], treated=24
    )
    assert spec.assignment is not None

    def run() -> Any:
        return scheme_power(
            history, spec.assignment, "outcome", post=4, simulations=200, alpha=0.05,
            target=0.8, seed=3,
        )  # fmt: skip

    r = run()
    assert r.mde is not None and r.mde_comparison is not None and r.comparison
    assert r.power[0] < 0.15 and r.power[-1] > 0.8
    assert r.to_dict() == run().to_dict()
