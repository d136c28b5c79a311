"""Size and power of the parallel-trends pre-tests (Monte Carlo; prints a Markdown table).

Usage: ``python benchmarks/pretrend_size_power.py [size_draws] [power_draws]`` (defaults 1000 and
200). The designs are those of ``tests/diagnostics/test_pretrend.py``: an event study with 36 of 120 areas
treated (cluster inference, F reference), one with 6 of 150 (randomisation test) and the
family-hubs staggered design for Callaway & Sant'Anna. Size is the rejection rate at 5% with
zero effect and parallel trends; power adds a linear trend in the treated units. The "chi2"
column is the old reference (the same Wald statistic referred to chi2(q)) where one exists.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.diagnostics.test_pretrend import CASES, _panel
from tests.support.pretest import fit_tested

from pilotlab.diagnostics.pretrend import group_time_pretest
from pilotlab.estimators import ESTIMATORS, EstimatorOptions
from pilotlab.estimators.linear import wald_test
from pilotlab.simulate import make_pilot_panel


def _chi2_p(case: str, seed: int, trend: float) -> float:
    """The old reference: the CR1 Wald statistic of the leads against chi2(q) (event study), or
    the chi-squared p-value of whichever Wald test the CS estimator ran (nan for others)."""
    design = CASES[case][0] if case in CASES else cs_few
    panel = design(seed, trend)
    rng = np.random.default_rng(seed)
    if case.startswith("callaway_santanna"):
        r = ESTIMATORS["callaway_santanna"].fit(panel, "y", EstimatorOptions(replications=0), rng)
        t = group_time_pretest(r.pre_period) if r.pre_period is not None else None
        return float(t.p_value_chi2) if t is not None else float("nan")
    r = ESTIMATORS["event_study"].fit(panel, "y", EstimatorOptions(pretrend="none"), rng)
    assert r.linear is not None
    fit = r.linear.fit
    idx = [j for j, n in enumerate(fit.names) if int(n[1:]) < -1]
    return wald_test(fit, idx)[2]


def cs_few(seed: int, trend: float = 0.0):
    """8 of 150 areas in two waves: Callaway & Sant'Anna with the randomisation pre-test."""
    sim = make_pilot_panel(n_units=150, n_periods=28, n_treated=8, start=[16, 20], effect=0.0,
                           noise_sd=0.8, unit_sd=3.0, trend=0.05, seed=seed, outcome="y")  # fmt: skip
    return _panel(sim, trend)


def _p_cs_random(panel, seed: int) -> float:
    opts = EstimatorOptions(pretrend="randomization", replications=199)
    r = fit_tested(ESTIMATORS["callaway_santanna"], panel, "y", opts, np.random.default_rng(seed))
    return float(r.pre_trend.p_value)


def main() -> None:
    size_draws = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    power_draws = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    warnings.simplefilter("ignore")
    print(
        "| pre-test | draws | size (new) | size (old chi2) | trend/period | power (new) | seconds |"
    )
    print("|---|---|---|---|---|---|---|")
    cases = dict(CASES)
    cases["callaway_santanna_randomization"] = (cs_few, _p_cs_random, 0.1)
    for case, (design, pval, trend) in cases.items():
        t0 = time.perf_counter()
        # the re-fitting randomisation test costs ~1 s a draw: fewer draws for it
        n0, n1 = (size_draws, power_draws) if case in CASES else (size_draws // 3, power_draws // 2)
        p0 = np.array([pval(design(s), s) for s in range(n0)])
        c0 = np.array([_chi2_p(case, s, 0.0) for s in range(n0)])
        p1 = np.array([pval(design(s, trend), s) for s in range(n1)])
        secs = time.perf_counter() - t0
        old = f"{np.mean(c0[np.isfinite(c0)] <= 0.05):.3f}" if np.isfinite(c0).any() else "n/a"
        print(
            f"| {case} | {n0} | {np.mean(p0 <= 0.05):.3f} | {old} | {trend} | "
            f"{np.mean(p1 <= 0.05):.3f} ({n1}) | {secs:.0f} |"
        )


if __name__ == "__main__":
    main()
