"""Size and power of the parallel-trends pre-tests (Monte Carlo; prints a Markdown table).

Usage: ``python benchmarks/pretrend_size_power.py [size_draws] [power_draws]`` (defaults 1000 and
200). The designs are those of ``tests/test_pretrend.py``: an event study with 36 of 120 areas
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pilotlab.estimators import ESTIMATORS, EstimatorOptions
from test_pretrend import CASES


def _chi2_p(case: str, seed: int, trend: float) -> float:
    design = CASES[case][0]
    panel = design(seed, trend)
    if case == "callaway_santanna":
        r = ESTIMATORS[case].fit(
            panel, "y", EstimatorOptions(replications=0), np.random.default_rng(seed)
        )
    else:
        r = ESTIMATORS["event_study"].fit(
            panel, "y", EstimatorOptions(pretrend="wald"), np.random.default_rng(seed)
        )
    pt = r.pre_trend
    return float(pt.p_value_chi2) if pt is not None else float("nan")


def main() -> None:
    size_draws = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    power_draws = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    warnings.simplefilter("ignore")
    print(
        "| pre-test | draws | size (new) | size (old chi2) | trend/period | power (new) | seconds |"
    )
    print("|---|---|---|---|---|---|---|")
    for case, (design, pval, trend) in CASES.items():
        t0 = time.perf_counter()
        p0 = np.array([pval(design(s), s) for s in range(size_draws)])
        c0 = np.array([_chi2_p(case, s, 0.0) for s in range(size_draws)])
        p1 = np.array([pval(design(s, trend), s) for s in range(power_draws)])
        secs = time.perf_counter() - t0
        old = f"{np.mean(c0[np.isfinite(c0)] <= 0.05):.3f}" if np.isfinite(c0).any() else "n/a"
        print(
            f"| {case} | {size_draws} | {np.mean(p0 <= 0.05):.3f} | {old} | {trend} | "
            f"{np.mean(p1 <= 0.05):.3f} ({power_draws}) | {secs:.0f} |"
        )


if __name__ == "__main__":
    main()
