"""Pre-trend power (Roth 2022): exact normal probabilities against diff-diff's PreTrendsPower and
against simulation, and the record attached to every pre-trend test."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from pilotlab import catalogue
from pilotlab.diagnostics.pretrend import apply_pretrend
from pilotlab.diagnostics.pretrend_power import (
    nis_power,
    pretrend_power,
    slope_for_power,
    wald_power,
)
from pilotlab.estimators.base import EstimatorOptions
from tests.support.designs import staggered_panel


def _cov(q: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(q, q))
    S = A @ A.T / q + np.eye(q) * 0.3
    return S * 0.04


@pytest.mark.parametrize("q", [1, 3, 5])
def test_power_matches_diff_diff(q: int) -> None:
    dd = pytest.importorskip("diff_diff")
    S = _cov(q)
    v = np.arange(q, 0, -1, dtype=float)  # e - reference for e = -q-1 .. -2, reference -1
    for form, ours in (("nis", nis_power), ("wald", wald_power)):
        peer = dd.PreTrendsPower(alpha=0.05, power=0.8, pretest_form=form)
        for M in (0.05, 0.12, 0.3):
            theirs = peer._compute_power(M, v, S)[0]
            assert ours(M * v, S, 0.05) == pytest.approx(
                theirs, abs=2e-4 if form == "nis" else 1e-10
            )
        mdv = peer._compute_mdv(v, S)
        ours_slope = slope_for_power(lambda g, f=ours: f(g * v, S, 0.05), 0.8, 0.01)
        assert ours_slope == pytest.approx(mdv, rel=2e-3 if form == "nis" else 1e-6)


def test_power_matches_simulation() -> None:
    S = _cov(4, 1)
    v = np.array([4.0, 3.0, 2.0, 1.0])
    delta = 0.08 * v
    rng = np.random.default_rng(5)
    b = rng.multivariate_normal(delta, S, size=200_000)
    s = np.sqrt(np.diag(S))
    nis_sim = np.mean(np.any(np.abs(b / s) > 1.959963984540054, axis=1))
    assert nis_power(delta, S) == pytest.approx(nis_sim, abs=0.004)
    W = np.einsum("bi,ij,bj->b", b, np.linalg.inv(S), b)
    assert wald_power(delta, S) == pytest.approx(np.mean(W > 9.487729036781154), abs=0.004)


def test_power_at_zero_is_the_size_and_slopes_are_ordered() -> None:
    S = _cov(3)
    assert wald_power(np.zeros(3), S) == pytest.approx(0.05)
    assert 0.05 < nis_power(np.zeros(3), S) < 0.15  # three chances at 5% each
    g50 = slope_for_power(lambda g: wald_power(g * np.ones(3), S), 0.5, 0.01)
    g80 = slope_for_power(lambda g: wald_power(g * np.ones(3), S), 0.8, 0.01)
    assert 0 < g50 < g80
    assert wald_power(g80 * np.ones(3), S) == pytest.approx(0.8, abs=1e-8)


@pytest.mark.parametrize("name", ["event_study", "callaway_santanna", "imputation", "sun_abraham"])
def test_every_pre_trend_test_carries_its_power(name: str) -> None:
    panel, _ = staggered_panel(seed=2)
    entry = catalogue.get(name)
    opts = EstimatorOptions(replications=0)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = apply_pretrend(
            panel, "outcome", entry, opts, entry.fit(panel, "outcome", opts, rng), rng
        )
    assert r.pre_trend is not None and r.pre_trend.power is not None
    p = r.pre_trend.power
    assert 0 < p.slope_50_wald < p.slope_80_wald and 0 < p.slope_50_nis < p.slope_80_nis
    assert 0 <= p.power_half_effect_wald <= 1 and math.isfinite(p.half_effect_slope)
    d = r.pre_trend.to_dict()
    assert d["power"]["slope_80_wald"] == pytest.approx(p.slope_80_wald)
    # recomputing from the pre-period estimates gives the same record
    again = pretrend_power(r.pre_period, r.pre_trend, r)
    assert again == p


def test_singular_covariance_gives_no_power_record() -> None:
    panel, _ = staggered_panel(seed=2)
    entry = catalogue.get("event_study")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = entry.fit(panel, "outcome", EstimatorOptions(), np.random.default_rng(0))
    pre = r.pre_period
    import dataclasses

    flat = dataclasses.replace(pre, cov=np.zeros_like(pre.cov))
    assert pretrend_power(flat, None, r) is None


def test_each_slope_is_integrated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import pilotlab.diagnostics.pretrend_power as pp

    panel, _ = staggered_panel(seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = catalogue.get("event_study").fit(
            panel, "outcome", EstimatorOptions(), np.random.default_rng(0)
        )
    assert r.pre_period is not None
    pre = dataclasses.replace(r.pre_period, event_times=(-4, -3, -2), reference=-1, cov=_cov(3))
    first = pp.pretrend_power(pre, None, r)
    seen: list[bytes] = []
    real = pp._nis

    def counting(
        delta: np.ndarray, cov: np.ndarray, alpha: float, points: int | None
    ) -> tuple[float, int]:
        seen.append(np.asarray(delta).tobytes())
        out: tuple[float, int] = real(delta, cov, alpha, points)
        return out

    monkeypatch.setattr(pp, "_nis", counting)
    again = pp.pretrend_power(pre, None, r)
    # the box probability is the costly part: the two root searches and the half-effect power
    # share their evaluations, with the same numbers as integrating each call afresh
    assert seen and len(seen) == len(set(seen))
    assert again == first and again is not None and math.isfinite(again.slope_80_nis)
