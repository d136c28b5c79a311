"""Benchmark: Callaway & Sant'Anna ATT(g,t) with analytic SEs and aggregations.

pilotlab against the peer libraries ``csdid`` and ``differences`` (optional ``bench`` extra) on
the same generated staggered panels. Every measurement runs in a fresh subprocess, so timings
and peak memory do not leak between libraries:

* time: wall-clock and CPU seconds of estimation only (data generation and DataFrame/Panel
  construction are outside the timer); on a shared machine the CPU time (with
  ``OPENBLAS_NUM_THREADS=1``) is the load-independent figure;
* peak memory: growth of the process's peak resident set during estimation (Linux ``VmHWM``,
  reset just before estimating through ``/proc/self/clear_refs``).

pilotlab computes every ATT(g,t), their analytic influence-function SEs, all four aggregations
(simple, dynamic, group, calendar) and the pre-test; the peers compute ATT(g,t) with analytic SEs
and the simple aggregation (what the issue measured for them).

Usage::

    python benchmarks/bench_callaway_santanna.py               # all sizes, all libraries
    python benchmarks/bench_callaway_santanna.py --sizes 500x20 5000x40 --libs pilotlab csdid
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_callaway_santanna.py   # fair on a busy box
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def make_staggered(n_units: int, n_periods: int, seed: int = 0, waves: int | None = None):
    """A staggered roll-out in waves with dynamic, cohort-specific effects.

    30% of units are never treated; the rest adopt in ``waves`` equally spaced periods (default
    ``n_periods // 6``) between the second period and the last. Returns a long DataFrame with
    columns ``id``, ``t`` (1..T), ``y``, ``g`` (first treated period, 0 = never).
    """
    rng = np.random.default_rng(seed)
    waves = waves or max(2, n_periods // 6)
    dates = np.unique(np.linspace(2, n_periods, waves).round().astype(int))
    g = np.where(rng.random(n_units) < 0.3, 0, rng.choice(dates, n_units))
    u = np.repeat(np.arange(n_units), n_periods)
    t = np.tile(np.arange(1, n_periods + 1), n_units)
    gu = g[u]
    treated = (gu > 0) & (t >= gu)
    effect = np.where(treated, 1.0 + 0.1 * (t - gu) + 0.02 * gu, 0.0)
    y = (
        rng.normal(size=n_units)[u]
        + 0.05 * t
        + rng.normal(size=n_periods)[t - 1]
        + effect
        + rng.normal(size=u.size)
    )
    return pd.DataFrame({"id": u, "t": t, "y": y, "g": gu})


def _reset_peak() -> int:
    """Reset the peak RSS and return the current RSS in bytes (Linux)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _run_one(
    lib: str, n: int, T: int, waves: int | None, covariate: bool, band: bool
) -> dict[str, float]:
    df = make_staggered(n, T, waves=waves)
    if covariate:  # a time-invariant unit characteristic
        df["xcov"] = np.repeat(np.random.default_rng(1).normal(size=n), T)
    if lib == "pilotlab":
        sys.path.insert(0, str(ROOT / "src"))
        from pilotlab.data.panel import CLUSTER, NEVER, TIME, UNIT, WEIGHT, Panel
        from pilotlab.estimators.callaway_santanna import estimate_group_time_effects

        frame = pd.DataFrame({"y": df.y, UNIT: df.id, TIME: df.t - 1, CLUSTER: df.id, WEIGHT: 1.0})
        if covariate:
            frame["xcov"] = df.xcov.to_numpy()
        g_unit = df.groupby("id").g.first().to_numpy()
        panel = Panel(
            frame=frame,
            unit_labels=tuple(map(str, range(n))),
            period_labels=tuple(str(i) for i in range(1, T + 1)),
            cluster_labels=tuple(map(str, range(n))),
            first_treated=np.where(g_unit == 0, NEVER, g_unit - 1).astype(np.int64),
            outcomes=("y",),
        )
        rss0 = _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        res = estimate_group_time_effects(
            panel,
            "y",
            covariates=("xcov",) if covariate else (),
            replications=999 if band else 0,
            rng=np.random.default_rng(0),
        )
        el, cpu = time.perf_counter() - t0, time.process_time() - c0
        est = float(res.aggregations.estimate.iloc[0])
        extra = {"cells": len(res.att_gt)}
    elif lib == "csdid":
        import warnings

        from csdid.att_gt import ATTgt

        warnings.simplefilter("ignore")
        rss0 = _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        att = ATTgt(
            yname="y",
            tname="t",
            idname="id",
            gname="g",
            data=df,
            control_group="nevertreated",
            xformla="y~xcov" if covariate else None,
        ).fit(est_method="dr", bstrap=False)
        agg = att.aggte(typec="simple", bstrap=False)
        el, cpu = time.perf_counter() - t0, time.process_time() - c0
        est = float(agg.atte["overall_att"])
        extra = {}
    elif lib == "differences":
        from differences import ATTgt

        data = df.assign(g=df.g.where(df.g > 0)).set_index(["id", "t"])
        rss0 = _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        att = ATTgt(data=data, cohort_column="g")
        att.fit(
            formula="y ~ xcov" if covariate else "y",
            est_method="dr",
            control_group="never_treated",
            progress_bar=False,
        )
        agg = att.aggregate("simple")
        el, cpu = time.perf_counter() - t0, time.process_time() - c0
        est = float(np.asarray(agg.iloc[0, 0]).ravel()[0])
        extra = {}
    else:
        raise SystemExit(f"unknown library {lib!r}; use pilotlab, csdid or differences")
    peak = max(_status("VmHWM") - rss0, 0)
    return {"seconds": el, "cpu_seconds": cpu, "peak_mib": peak / 2**20, "simple_att": est, **extra}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["500x20", "5000x40", "35000x60"])
    ap.add_argument("--libs", nargs="*", default=["pilotlab", "csdid", "differences"])
    ap.add_argument("--waves", type=int, default=None, help="adoption waves (default T // 6)")
    ap.add_argument("--covariate", action="store_true", help="doubly robust with a covariate")
    ap.add_argument("--band", action="store_true", help="pilotlab also runs the 999-draw band")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        lib, n, T = args.child[0], int(args.child[1]), int(args.child[2])
        print(json.dumps(_run_one(lib, n, T, args.waves, args.covariate, args.band)))
        return
    rows = []
    for size in args.sizes:
        n, T = (int(v) for v in size.lower().split("x"))
        for lib in args.libs:
            cmd = [sys.executable, __file__, "--child", lib, str(n), str(T)]
            if args.waves:
                cmd += ["--waves", str(args.waves)]
            cmd += ["--covariate"] * args.covariate + ["--band"] * args.band
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                if out.returncode:
                    err = out.stderr.strip().splitlines()
                    rows.append(
                        {"size": size, "library": lib, "error": err[-1] if err else "failed"}
                    )
                    continue
                rows.append(
                    {
                        "size": size,
                        "library": lib,
                        **json.loads(out.stdout.strip().splitlines()[-1]),
                    }
                )
            except subprocess.TimeoutExpired:
                rows.append({"size": size, "library": lib, "error": f">{args.timeout:.0f}s"})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    if "seconds" in table:
        base = table[table.library == "pilotlab"].set_index("size")
        table["x_pilotlab_time"] = table.seconds / table["size"].map(base.seconds)
        table["x_pilotlab_cpu"] = table.cpu_seconds / table["size"].map(base.cpu_seconds)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
