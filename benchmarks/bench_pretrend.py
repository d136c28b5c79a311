"""Randomisation pre-test of the event study (few treated units, common start), before/after.

Times ``fit_event_study`` and its pre-test stage with ``pretrend="randomization"`` (999 re-assignments, cluster
errors) against the same fit with ``pretrend="none"``, with the sparse path (each draw's treated
units from the ranks of their keys, block sums gathered) and with the dense path it replaces
(every draw sorted, an assignments x units product). The two p-values must be equal.

    PYTHONPATH=src python benchmarks/bench_pretrend.py [5000x40 35000x60]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

from pilotlab.data import panel_from_frame
from pilotlab.diagnostics import pretrend
from pilotlab.estimators import ESTIMATORS, EstimatorOptions
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.pretest import fit_tested


def _panel(n: int, t: int):
    sim = make_pilot_panel(n_units=n, n_periods=t, n_treated=6, start=t - 8, effect=0.0, seed=1,
                           outcome="y")  # fmt: skip
    spec = parse_pilot(
        {
            "id": "bench",
            "title": "bench",
            "data": {"path": "d.csv", "unit": "area_code", "time": "period"},
            "treatment": {"adoption": sim.adoption, "comparison": "never_treated"},
            "outcomes": [{"column": "y"}],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(sim.data, spec)


def _time(panel, pretrend_mode: str):
    opts = EstimatorOptions(inference="cluster", replications=999, pretrend=pretrend_mode)
    start = time.perf_counter()
    res = fit_tested(ESTIMATORS["event_study"], panel, "y", opts, np.random.default_rng(0))
    return time.perf_counter() - start, res.pre_trend


def main() -> None:
    sizes = sys.argv[1:] or ["5000x40", "35000x60"]
    sparse = pretrend.sparse_randomization_statistics
    for size in sizes:
        n, t = (int(x) for x in size.split("x"))
        panel = _panel(n, t)
        fit_s, _ = _time(panel, "none")
        after, test_after = _time(panel, "randomization")
        pretrend.sparse_randomization_statistics = lambda *a: None  # the dense path (before)
        try:
            before, test_before = _time(panel, "randomization")
        finally:
            pretrend.sparse_randomization_statistics = sparse
        assert test_after is not None and test_before is not None
        assert test_after.p_value == test_before.p_value, (test_after, test_before)
        print(
            f"{size}: fit alone {fit_s:.2f} s; fit + pre-test before {before:.2f} s, "
            f"after {after:.2f} s (pre-test {before - fit_s:.2f} -> {after - fit_s:.2f} s, "
            f"{(before - fit_s) / max(after - fit_s, 1e-9):.1f}x); p = {test_after.p_value:.4g} "
            "both ways"
        )


if __name__ == "__main__":
    main()
