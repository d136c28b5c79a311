"""Monte Carlo coverage of 95% intervals: cluster-robust vs wild bootstrap vs permutation.

Design (the issue's): 50 areas observed for 10 periods (5 before, 5 after a common start),
area and period effects, AR(1) errors with rho = 0.7 (serially correlated, as real area panels
are), a constant effect of 1, and 3, 6 or 20 treated areas drawn at random. Each replication
estimates TWFE with

* ``cluster``: CR1 standard errors clustered by area, t(G-1) interval;
* ``wild_bootstrap``: wild cluster restricted bootstrap, test-inversion interval;
* ``permutation``: randomisation inference, interval inverting the sharp null.

Coverage is the share of replications whose interval contains the true effect (binomial Monte
Carlo standard error about 0.01 at 500 replications).

Run:  python benchmarks/bench_coverage.py [--reps 500] [--draws 999] [--treated 3,6,20]
          [--scheduler ADDRESS]

By default the replications run one after another from one generator (the numbers published in
the README). ``--scheduler`` (a Dask address, or ``local:N`` for N local worker processes) runs
them in chunks on a cluster instead, each replication with its own SeedSequence stream spawned
from the seed: the result is then the same for any number of workers, but it is another Monte
Carlo sample than the serial run's (equal within Monte Carlo error, not digit for digit).
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import pandas as pd

from pilotlab.data.panel import CLUSTER, NEVER, TIME, UNIT, WEIGHT, Panel
from pilotlab.estimators import ESTIMATORS, EstimatorOptions
from pilotlab.inference.apply import apply_inference

METHODS = ("cluster", "wild_bootstrap", "permutation")


def simulate(
    rng: np.random.Generator,
    n_treated: int,
    n_units: int = 50,
    n_periods: int = 10,
    start: int = 5,
    rho: float = 0.7,
    effect: float = 1.0,
) -> Panel:
    """One panel of the coverage design."""
    e = np.empty((n_units, n_periods))
    shocks = rng.normal(size=(n_units, n_periods))
    e[:, 0] = shocks[:, 0] / np.sqrt(1 - rho**2)
    for t in range(1, n_periods):  # AR(1) over 10 periods
        e[:, t] = rho * e[:, t - 1] + shocks[:, t]
    treated = np.zeros(n_units, dtype=bool)
    treated[rng.choice(n_units, n_treated, replace=False)] = True
    d = treated[:, None] & (np.arange(n_periods) >= start)[None, :]
    y = rng.normal(size=(n_units, 1)) + rng.normal(size=(1, n_periods)) + e + effect * d
    unit = np.repeat(np.arange(n_units), n_periods)
    frame = pd.DataFrame({UNIT: unit, TIME: np.tile(np.arange(n_periods), n_units),
                          CLUSTER: unit, WEIGHT: 1.0, "y": y.reshape(-1)})  # fmt: skip
    return Panel(
        frame=frame,
        unit_labels=tuple(f"A{i:02d}" for i in range(n_units)),
        period_labels=tuple(str(2010 + t) for t in range(n_periods)),
        cluster_labels=tuple(f"A{i:02d}" for i in range(n_units)),
        first_treated=np.where(treated, start, NEVER).astype(np.int64),
        outcomes=("y",),
    )


def _replicate(
    rng: np.random.Generator, n_treated: int, draws: int, effect: float
) -> dict[str, tuple[int, float]]:
    """One replication: whether each method's interval covers the effect, and its length."""
    entry = ESTIMATORS["twfe"]
    panel = simulate(rng, n_treated, effect=effect)
    out = {}
    for m in METHODS:
        opts = EstimatorOptions(inference=m, replications=draws)  # type: ignore[arg-type]
        res = apply_inference(panel, "y", entry, opts, rng)
        out[m] = (int(res.ci_lower <= effect <= res.ci_upper), res.ci_upper - res.ci_lower)
    return out


def _replicate_streams(
    seeds: list[np.random.SeedSequence], n_treated: int, draws: int, effect: float
) -> list[dict[str, tuple[int, float]]]:
    """A chunk of replications, each from its own stream (what a cluster worker runs)."""
    return [_replicate(np.random.default_rng(s), n_treated, draws, effect) for s in seeds]


def coverage(
    n_treated: int,
    reps: int,
    draws: int = 999,
    seed: int = 0,
    effect: float = 1.0,
    streams: bool = False,
) -> dict[str, dict[str, float]]:
    """Coverage, median length and share of unbounded intervals of each method.

    ``streams``: one SeedSequence stream per replication, run in chunks where
    :mod:`pilotlab.parallel` sends them (the same result for any number of workers).
    """
    hits = {m: 0 for m in METHODS}
    lengths: dict[str, list[float]] = {m: [] for m in METHODS}
    if streams:
        from pilotlab.parallel import map_chunks, worker_count

        seeds = np.random.SeedSequence(seed).spawn(reps)
        bounds = np.linspace(0, reps, min(reps, worker_count(1) * 4) + 1).astype(int)
        chunks = [(seeds[a:b], n_treated, draws, effect) for a, b in itertools.pairwise(bounds)]
        results = [r for part in map_chunks(_replicate_streams, chunks) for r in part]
    else:
        rng = np.random.default_rng(seed)
        results = [_replicate(rng, n_treated, draws, effect) for _ in range(reps)]
    for r in results:  # Monte Carlo replications, in order
        for m in METHODS:
            hits[m] += r[m][0]
            lengths[m].append(r[m][1])
    return {
        m: {
            "coverage": hits[m] / reps,
            "median_length": float(np.median(lengths[m])),
            "unbounded": float(np.mean(~np.isfinite(lengths[m]))),
        }
        for m in METHODS
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--draws", type=int, default=999)
    ap.add_argument("--treated", default="3,6,20")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address, or local:N")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    from pilotlab.parallel import use_scheduler

    with use_scheduler(args.scheduler):
        for k in (int(v) for v in args.treated.split(",")):
            streams = args.scheduler is not None
            rows.append((k, coverage(k, args.reps, args.draws, args.seed + k, streams=streams)))
    se = np.sqrt(0.95 * 0.05 / args.reps)
    print(f"Coverage of nominal 95% intervals, TWFE, 50 areas x 10 periods, AR(1) rho = 0.7, "
          f"{args.reps} replications (Monte Carlo SE {se:.3f}), {args.draws} draws each "
          f"({time.perf_counter() - t0:.0f} s)\n")  # fmt: skip
    print("| treated areas | cluster-robust (CR1) | wild bootstrap (WCR) | permutation |")
    print("|---|---|---|---|")
    for k, res in rows:
        cells = []
        for m in METHODS:
            r = res[m]
            extra = f", {100 * r['unbounded']:.0f}% unbounded" if r["unbounded"] else ""
            cells.append(f"{r['coverage']:.3f} (median length {r['median_length']:.2f}{extra})")
        print(f"| {k} of 50 | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
