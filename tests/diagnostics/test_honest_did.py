"""Rambachan & Roth sensitivity: reproduce R HonestDiD on the Benzarti & Carloni event study."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pilotlab.diagnostics.honest_did import (
    breakdown_value,
    flci_sd,
    original_ci,
    sensitivity_rm,
    sensitivity_sd,
)
from pilotlab.exceptions import EstimationError
from tests.support import shared_data


@pytest.fixture(scope="module")
def bc() -> dict:
    return json.loads(shared_data("honestdid_bc.json").read_text())


def test_original_interval(bc: dict) -> None:
    b, s = np.array(bc["betahat"]), np.array(bc["sigma"])
    ci = original_ci(b, s, 4, 4)
    ref = bc["r_results"]["originalCS"]
    assert ci.lower == pytest.approx(ref["lb"], abs=1e-10)
    assert ci.upper == pytest.approx(ref["ub"], abs=1e-10)


def test_smoothness_flci_matches_r(bc: dict) -> None:
    """Delta^SD FLCI. R simulates the folded-normal quantile (10^6 draws) and the half-length
    is flat in the weights, so agreement is to 1e-3 (max 8.3e-4 at M = 0.02, else < 1e-4)."""
    b, s = np.array(bc["betahat"]), np.array(bc["sigma"])
    ref = bc["r_results"]["deltaSD"]
    got = sensitivity_sd(b, s, 4, 4, ref["M"])
    for iv, lb, ub in zip(got, ref["lb"], ref["ub"], strict=True):
        assert iv.lower == pytest.approx(lb, abs=1e-3)
        assert iv.upper == pytest.approx(ub, abs=1e-3)
    m0 = bc["r_results"]["flci_M0"]
    iv0 = flci_sd(b, s, 4, 4, 0.0)
    assert (iv0.upper - iv0.lower) / 2 == pytest.approx(m0["optimalHalfLength"], rel=2e-3)
    assert iv0.lower == pytest.approx(m0["interval"][0], abs=1e-4)
    assert iv0.upper == pytest.approx(m0["interval"][1], abs=1e-4)
    # M = 0, 0.01, 0.03 agree to 1e-4
    for i in (0, 1, 3):
        assert got[i].lower == pytest.approx(ref["lb"][i], abs=1e-4)
        assert got[i].upper == pytest.approx(ref["ub"][i], abs=1e-4)


def test_relative_magnitudes_match_r_to_one_grid_step(bc: dict) -> None:
    b, s = np.array(bc["betahat"]), np.array(bc["sigma"])
    ref = bc["r_results"]["deltaRM"]
    sd = math.sqrt(s[4, 4])
    step = 40 * sd / 999  # HonestDiD's default grid: 1,000 points on +-20 sd
    got = sensitivity_rm(b, s, 4, 4, ref["Mbar"], grid=(-20 * sd, 20 * sd, 1000))
    for iv, lb, ub in zip(got, ref["lb"], ref["ub"], strict=True):
        assert abs(iv.lower - lb) <= step * 1.001
        assert abs(iv.upper - ub) <= step * 1.001
    assert got[-1].open_ended  # Mbar = 2 reaches R's grid edge; we report that
    # the default grid widens instead of cutting the interval
    wide = sensitivity_rm(b, s, 4, 4, [2.0])[0]
    assert wide.upper > ref["ub"][-1] + step and not wide.open_ended
    assert abs(wide.lower - ref["lb"][-1]) <= 2 * step


def test_intervals_widen_and_breakdown(bc: dict) -> None:
    b, s = np.array(bc["betahat"]), np.array(bc["sigma"])
    rm = sensitivity_rm(b, s, 4, 4, [0.0, 0.5, 1.0, 1.5])
    widths = [iv.upper - iv.lower for iv in rm]
    assert widths == sorted(widths)
    bd = breakdown_value(b, s, 4, 4, "RM")
    # R: Mbar = 1.5 excludes zero (lb 0.0133), Mbar = 2 includes it (lb -0.042)
    assert 1.5 < bd < 2.0
    below = sensitivity_rm(b, s, 4, 4, [bd - 0.01])[0]
    above = sensitivity_rm(b, s, 4, 4, [bd])[0]
    assert below.lower > 0 >= above.lower
    bd_sd = breakdown_value(b, s, 4, 4, "SD")
    assert flci_sd(b, s, 4, 4, bd_sd).contains(0.0)
    assert not flci_sd(b, s, 4, 4, bd_sd * 0.99).contains(0.0)


def test_errors() -> None:
    with pytest.raises(EstimationError, match="betahat has 3 coefficients"):
        flci_sd([1, 2, 3], np.eye(3), 2, 2, 0.0)
    with pytest.raises(EstimationError, match="restriction 'XX'"):
        breakdown_value([0.0, 1.0], np.eye(2) * 0.01, 1, 1, "XX")
