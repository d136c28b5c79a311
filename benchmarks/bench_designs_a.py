"""Benchmark: the imputation estimator (Borusyak, Jaravel & Spiess) and the Sun & Abraham
interaction-weighted event study against their peers on the same generated panels.

* ``imputation``: pilotlab against diff-diff's ``ImputationDiD`` and pyfixest's ``did2s``
  (Gardner's two-stage estimator: the same untreated model and overall ATT, another variance);
* ``sun_abraham``: pilotlab against diff-diff's ``SunAbraham`` and pyfixest's saturated event
  study (``event_study(estimator="saturated")``, the cohort x event-time regression).

Each measurement runs in a fresh subprocess; the timer covers estimation only (data generation
and building the Panel / DataFrame are outside it). Peak memory is the growth of the process's
peak resident set during estimation (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``).
pilotlab computes every aggregation (overall, event time, cohort, calendar) with its standard
errors and the pre-trend leads; the peers compute the overall ATT and the event study.
The table reports seconds, peak MiB, the overall estimate (so the numbers can be compared) and
the ratio of the fastest peer's time to pilotlab's.

Usage::

    python benchmarks/bench_designs_a.py                       # every size, estimator, peer
    python benchmarks/bench_designs_a.py --sizes 500x20 --estimators imputation
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_designs_a.py    # fair on a busy machine
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

PEERS = {
    "imputation": ("pilotlab", "diff_diff", "pyfixest_did2s"),
    "sun_abraham": ("pilotlab", "diff_diff", "pyfixest_saturated"),
}


def make_staggered(n_units: int, n_periods: int, seed: int = 0) -> pd.DataFrame:
    """Four adoption cohorts (quarters of the way through), 30% never treated, effects growing
    with time since the start and differing by cohort. Columns ``id``, ``t`` (1..T), ``y``,
    ``g`` (first treated period, 0 = never)."""
    rng = np.random.default_rng(seed)
    dates = np.array([n_periods // 5, 2 * n_periods // 5, 3 * n_periods // 5, 4 * n_periods // 5])
    g = np.where(rng.random(n_units) < 0.3, 0, rng.choice(dates, n_units))
    u = np.repeat(np.arange(n_units), n_periods)
    t = np.tile(np.arange(1, n_periods + 1), n_units)
    gu = g[u]
    treated = (gu > 0) & (t >= gu)
    effect = np.where(treated, 1.0 + 0.1 * (t - gu) + 0.02 * gu, 0.0)
    y = rng.normal(size=n_units)[u] + 0.05 * t + rng.normal(size=n_periods)[t - 1] + effect
    y = y + rng.normal(size=u.size)
    return pd.DataFrame({"id": u, "t": t, "y": y, "g": gu})


def _reset_peak() -> int:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _pilotlab_panel(df: pd.DataFrame, n: int, T: int):
    sys.path.insert(0, str(ROOT / "src"))
    from pilotlab.data.panel import CLUSTER, NEVER, TIME, UNIT, WEIGHT, Panel

    frame = pd.DataFrame({"y": df.y, UNIT: df.id, TIME: df.t - 1, CLUSTER: df.id, WEIGHT: 1.0})
    g_unit = df.groupby("id").g.first().to_numpy()
    return Panel(
        frame=frame,
        unit_labels=tuple(map(str, range(n))),
        period_labels=tuple(str(i) for i in range(1, T + 1)),
        cluster_labels=tuple(map(str, range(n))),
        first_treated=np.where(g_unit == 0, NEVER, g_unit - 1).astype(np.int64),
        outcomes=("y",),
    )


def _run_one(estimator: str, lib: str, n: int, T: int) -> dict[str, float]:
    warnings.simplefilter("ignore")
    df = make_staggered(n, T)
    if lib == "pilotlab":
        panel = _pilotlab_panel(df, n, T)
        from pilotlab.estimators.base import EstimatorOptions

        if estimator == "imputation":
            from pilotlab.estimators.imputation import fit_imputation as fit
        else:
            from pilotlab.estimators.sun_abraham import fit_sun_abraham as fit
        opts = EstimatorOptions(pretrend="none")
        rss0 = _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        res = fit(panel, "y", opts, np.random.default_rng(0))
        el, cpu = time.perf_counter() - t0, time.process_time() - c0
        est = res.estimate
    elif lib == "diff_diff":
        import diff_diff

        rss0 = _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        if estimator == "imputation":
            r = diff_diff.ImputationDiD(cluster="id").fit(df, "y", "id", "t", "g", aggregate="all")
        else:
            r = diff_diff.SunAbraham(cluster="id").fit(df, "y", "id", "t", "g")
        el, cpu = time.perf_counter() - t0, time.process_time() - c0
        est = float(r.overall_att)
    elif lib == "pyfixest_did2s":
        import pyfixest as pf

        d = df.assign(treat=((df.g > 0) & (df.t >= df.g)).astype(int))
        rss0 = _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        fit = pf.did2s(d, "y", first_stage="~ 0 | id + t", second_stage="~ treat",
                       treatment="treat", cluster="id")  # fmt: skip
        el, cpu = time.perf_counter() - t0, time.process_time() - c0
        est = float(fit.coef()["treat"])
    elif lib == "pyfixest_saturated":
        from pyfixest.did import event_study

        rss0 = _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        fit = event_study(df, "y", "id", "t", "g", estimator="saturated", cluster="id")
        el, cpu = time.perf_counter() - t0, time.process_time() - c0
        est = float("nan")
        with contextlib.suppress(Exception):
            agg = fit.aggregate()
            est = float(np.asarray(agg["Estimate"])[np.asarray(agg.index) >= 0].mean())
    else:
        raise SystemExit(f"unknown library {lib!r}")
    peak = max(_status("VmHWM") - rss0, 0)
    return {"seconds": el, "cpu_seconds": cpu, "peak_mib": peak / 2**20, "estimate": est}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["500x20", "5000x40", "35000x60"])
    ap.add_argument("--estimators", nargs="*", default=list(PEERS))
    ap.add_argument("--libs", nargs="*", default=None, help="default: pilotlab and its peers")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        est, lib, n, T = args.child[0], args.child[1], int(args.child[2]), int(args.child[3])
        print(json.dumps(_run_one(est, lib, n, T)))
        return
    rows = []
    for size in args.sizes:
        n, T = (int(v) for v in size.lower().split("x"))
        for estimator in args.estimators:
            for lib in args.libs or PEERS[estimator]:
                cmd = [sys.executable, __file__, "--child", estimator, lib, str(n), str(T)]
                row: dict[str, object] = {"size": size, "estimator": estimator, "library": lib}
                try:
                    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                    if out.returncode < 0:  # the kernel's out-of-memory killer, usually
                        row["error"] = f"killed by signal {-out.returncode}"
                    elif out.returncode:
                        err = out.stderr.strip().splitlines()
                        row["error"] = (err[-1] if err else "failed")[:80]
                    else:
                        row.update(json.loads(out.stdout.strip().splitlines()[-1]))
                except subprocess.TimeoutExpired:
                    row["error"] = f">{args.timeout:.0f}s"
                rows.append(row)
                print(row, flush=True)
    table = pd.DataFrame(rows)
    if "seconds" in table:
        ratios = []
        for (size, estimator), grp in table.groupby(["size", "estimator"], sort=False):
            mine = grp.loc[grp.library == "pilotlab", "seconds"]
            peers = grp.loc[grp.library != "pilotlab", "seconds"].dropna()
            if len(mine) and len(peers):
                ratios.append(
                    {"size": size, "estimator": estimator,
                     "fastest_peer_over_pilotlab": float(peers.min() / mine.iloc[0])}
                )  # fmt: skip
        print(table.to_string(index=False))
        if ratios:
            print(pd.DataFrame(ratios).to_string(index=False))


if __name__ == "__main__":
    main()
