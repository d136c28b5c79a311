"""The sparse randomisation pre-test gives the dense path's statistics for every re-assignment."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pilotlab.data import panel_from_frame
from pilotlab.data.panel import NEVER, Panel
from pilotlab.diagnostics import pretrend
from pilotlab.diagnostics.pretrend import (
    _draws,
    lead_contrasts,
    randomization_pretest,
    randomization_statistics,
    sparse_randomization_statistics,
)
from pilotlab.estimators import ESTIMATORS, EstimatorOptions
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot
from tests.support.pretest import fit_tested

LEADS, REF, PRE = [-5, -4, -3, -2], -1, 5


def _panel(
    seed: int, n_units: int, n_treated: int, *, cluster_size: int = 1, weighted: bool = False
) -> Panel:
    sim = make_pilot_panel(n_units=n_units, n_periods=14, n_treated=n_treated, start=9,
                           effect=0.5, seed=seed, outcome="y")  # fmt: skip
    df = sim.data.copy()
    data: dict[str, object] = {"path": "d.csv", "unit": "area_code", "time": "period"}
    adoption = dict(sim.adoption)
    codes = sorted(df["area_code"].unique())
    if cluster_size > 1:  # treatment assigned by cluster: whole clusters treated
        cl = {u: f"C{i // cluster_size}" for i, u in enumerate(codes)}
        df["region"] = df["area_code"].map(cl)
        treated_cl = {cl[u] for u in adoption}
        start = next(iter(adoption.values()))
        adoption = {u: start for u in codes if cl[u] in treated_cl}
        data["cluster"] = "region"
    if weighted:
        rng = np.random.default_rng(seed + 100)
        wt = dict(zip(codes, rng.uniform(0.5, 3.0, len(codes)), strict=True))
        df["pop"] = df["area_code"].map(wt)
        data["weight"] = "pop"
    spec = parse_pilot(
        {
            "id": "x",
            "title": "x",
            "data": data,
            "treatment": {"adoption": adoption, "comparison": "never_treated"},
            "outcomes": [{"column": "y"}],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(df, spec)


def _dense(panel: Panel, reps: int, seed: int) -> tuple[float, np.ndarray, str]:
    """Today's path: every draw sorted, the dense (assignments x units) product."""
    w = panel.unit_weights()
    assert w is not None
    Z = lead_contrasts(panel, "y", LEADS, REF, PRE)
    obs, draws, exact, level = _draws(panel, reps, np.random.default_rng(seed))
    assert not exact
    treated = np.vstack([(obs != NEVER)[None, :], draws.labels() != NEVER])
    s = randomization_statistics(Z, treated, w)
    return float(s[0]), s[1:], level


def _sparse(panel: Panel, reps: int, seed: int) -> tuple[float, np.ndarray, str]:
    w = panel.unit_weights()
    assert w is not None
    Z = lead_contrasts(panel, "y", LEADS, REF, PRE)
    out = sparse_randomization_statistics(panel, Z, w, reps, np.random.default_rng(seed))
    assert out is not None
    return out


@pytest.mark.parametrize(
    ("seed", "n_units", "n_treated", "cluster_size", "weighted"),
    [
        (0, 60, 4, 1, False),  # few treated units
        (1, 90, 6, 1, True),  # weighted
        (2, 120, 12, 4, False),  # clusters coarser than units, assigned by cluster
        (3, 120, 12, 3, True),  # both
        (4, 40, 36, 1, False),  # treated majority: the comparison blocks are counted
        (5, 45, 40, 1, True),
    ],
)
def test_sparse_statistics_equal_dense_for_every_reassignment(
    seed: int, n_units: int, n_treated: int, cluster_size: int, weighted: bool
) -> None:
    panel = _panel(seed, n_units, n_treated, cluster_size=cluster_size, weighted=weighted)
    obs_d, draws_d, level_d = _dense(panel, 299, seed)
    obs_s, draws_s, level_s = _sparse(panel, 299, seed)
    assert level_s == level_d == ("cluster" if cluster_size > 1 else "unit")
    np.testing.assert_allclose(obs_s, obs_d, rtol=1e-10, atol=0)
    np.testing.assert_allclose(draws_s, draws_d, rtol=1e-10, atol=1e-12)
    tol = 1e-10 * (1 + abs(obs_d))
    assert np.count_nonzero(draws_s >= obs_s - tol) == np.count_nonzero(draws_d >= obs_d - tol)


def _pretest(panel: Panel, monkeypatch: pytest.MonkeyPatch | None) -> tuple[str, float, float]:
    if monkeypatch is not None:  # force the dense path
        monkeypatch.setattr(pretrend, "sparse_randomization_statistics", lambda *a: None)
    opts = EstimatorOptions(inference="cluster", replications=199, pretrend="randomization")
    res = fit_tested(ESTIMATORS["event_study"], panel, "y", opts, np.random.default_rng(7))
    t = res.pre_trend
    assert t is not None
    return t.test, t.statistic, t.p_value


@pytest.mark.parametrize(("cluster_size", "weighted"), [(1, False), (3, True)])
def test_pretest_p_value_unchanged(
    monkeypatch: pytest.MonkeyPatch, cluster_size: int, weighted: bool
) -> None:
    panel = _panel(11, 90, 9, cluster_size=cluster_size, weighted=weighted)
    fast = _pretest(panel, None)
    dense = _pretest(panel, monkeypatch)
    assert fast[0] == dense[0]
    assert fast[1] == pytest.approx(dense[1], rel=1e-10)
    assert fast[2] == dense[2]


def test_falls_back_when_every_assignment_is_enumerated() -> None:
    small = _panel(0, 8, 2)  # 28 assignments: all enumerated, the dense path's job
    w = small.unit_weights()
    assert w is not None
    Z = lead_contrasts(small, "y", LEADS, REF, PRE)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert sparse_randomization_statistics(small, Z, w, 999, rng) is None
    assert rng.bit_generator.state == state  # nothing drawn when declining
    opts = EstimatorOptions(inference="cluster", replications=999, pretrend="randomization")
    t = randomization_pretest(small, "y", opts, np.random.default_rng(0), lead_times=LEADS,
                              ref=REF, window=(PRE, 3))  # fmt: skip
    assert t is not None and "all 28 assignments" in t.test
