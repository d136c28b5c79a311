"""Building the panel against the fit it feeds: ``panel_from_frame`` vs the TWFE fit.

Usage: ``python benchmarks/bench_panel.py [--sizes 35000x60,100000x60] [--repeat 3]``.

Each cell runs in a fresh interpreter on the generated staggered panel of ``_common`` (held as
a data frame, as a user's ``evaluate(pilot, data=df)`` or a read file is). ``panel`` times
``panel_from_frame`` (every data check, the treatment, the unit and period codes, the sorted
frame); ``twfe`` times the TWFE fit with clustered errors on the built panel. Memory: the data
frame's own size, and how much the process's peak grew during the timed call (so the peak of
the build is the frame plus that growth). Times are the best of ``--repeat`` fresh runs, wall
and CPU; the machine's cores are shared, so compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import SIZES, staggered_panel

SIZES = {**SIZES, "100000x60": (100_000, 60)}


def _spec():
    from pilotlab.spec import parse_pilot

    return parse_pilot(
        {
            "id": "bench",
            "title": "bench",
            "data": {"path": "x.csv", "unit": "unit", "time": "time"},
            "treatment": {"column": "first_treated"},
            "outcomes": [{"column": "y"}],
        }
    )


def one(what: str, size: str) -> None:
    import numpy as np

    from pilotlab.data import panel_from_frame
    from pilotlab.estimators import ESTIMATORS, EstimatorOptions

    n, t = SIZES[size]
    _common_sizes = sys.modules["_common"].SIZES
    _common_sizes[size] = (n, t)
    df = staggered_panel(size)
    spec = _spec()
    warnings.simplefilter("ignore")
    opts = EstimatorOptions(inference="cluster")
    small = panel_from_frame(staggered_panel("500x20", seed=1), spec)  # warm-up
    ESTIMATORS["twfe"].fit(small, "y", opts, np.random.default_rng(0))
    panel = panel_from_frame(df, spec) if what == "twfe" else None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    if what == "panel":
        panel_from_frame(df, spec)
    else:
        ESTIMATORS["twfe"].fit(panel, "y", opts, np.random.default_rng(0))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    frame = df.memory_usage(deep=True).sum() / 2**20
    print(json.dumps({"wall": wall, "cpu": cpu, "frame_mib": frame, "grew_mib": grew}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="35000x60,100000x60")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    if a.one:
        one(*a.one)
        return
    print("| size | what | wall s | CPU s | data frame MiB | peak grew MiB | peak / frame |")
    print("|---|---|---|---|---|---|---|")
    fit = None
    for size in a.sizes.split(","):
        for what in ("twfe", "panel") if size == "35000x60" else ("panel",):
            runs = []
            for _ in range(a.repeat):
                out = subprocess.run(
                    [sys.executable, __file__, "--one", what, size],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            best = min(runs, key=lambda r: r["cpu"])
            if what == "twfe":
                fit = best
            ratio = (
                f" ({best['cpu'] / fit['cpu']:.1f}x the 35000x60 fit, CPU)"
                if fit and what == "panel"
                else ""
            )
            peak = (best["frame_mib"] + best["grew_mib"]) / best["frame_mib"]
            print(
                f"| {size} | {what}{ratio} | {best['wall']:.2f} | {best['cpu']:.2f} | "
                f"{best['frame_mib']:.0f} | {best['grew_mib']:.0f} | {peak:.1f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
