"""Benchmark: 1,000 placebo pilots on 300 areas x 40 quarters, TWFE with clustered SEs.

Compares, in the same run:

* ``pilotlab`` ``run_power`` (vectorised TWFE path: every draw and every effect size at once);
* ``pilotlab`` generic path (one regression per placebo pilot through the estimator registry,
  in parallel across cores), the path used for estimators without a vectorised form;
* a plain loop of statsmodels fits (OLS with unit and period dummies, cluster-robust SEs), one
  fit per placebo pilot and timed on a subset, then scaled to 1,000;
* optionally pyfixest ``feols`` in a loop (if installed; ``pip install pilotlab[bench]``).

Run: ``python benchmarks/bench_power.py [--simulations 1000] [--jobs 2] [--peer-fits 20]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

from pilotlab.engine import _options
from pilotlab.power import _placebo_panel, _resolve_history, draw_placebos, run_power
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", type=int, default=300)
    ap.add_argument("--periods", type=int, default=40)
    ap.add_argument("--simulations", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=min(2, len(os.sched_getaffinity(0))))
    ap.add_argument("--peer-fits", type=int, default=20, help="statsmodels fits timed")
    args = ap.parse_args()

    sim = make_pilot_panel(
        args.units, args.periods, 1, args.periods - 1, effect=0.0, rho=0.5, seed=1
    )
    data = sim.data.drop(columns="true_effect")
    spec = parse_pilot(
        {
            "id": "bench",
            "title": "Benchmark",
            "status": "planned",
            "data": {"path": "x.csv", "unit": "area_code", "time": "period"},
            "treatment": {},
            "outcomes": [{"column": "outcome"}],
            "design": {
                "estimator": "twfe",
                "inference": {"method": "cluster"},
                "power": {"treated": 12, "post_periods": 8, "simulations": args.simulations},
            },
        }
    )
    rows = []

    t = time.perf_counter()
    res = run_power(spec, data, n_jobs=args.jobs)
    t_vec = time.perf_counter() - t
    rows.append(("pilotlab run_power (vectorised, full effect grid)", res.simulations, t_vec))
    print(f"vectorised: MDE {res.mde:.4f}, FPR {res.false_positive_rate:.3f}, path {res.path}")

    from pilotlab.power import simulate_placebos

    hist, _ = _resolve_history(spec, data)
    opts = _options(spec, "cluster")
    A, starts = draw_placebos(
        np.random.default_rng(0),
        n_units=hist.n_units,
        n_periods=hist.n_periods,
        n_treated=12,
        post=8,
        min_pre=4,
        simulations=args.simulations,
    )
    effects = np.array([0.0, 0.5, 1.0])
    t = time.perf_counter()
    gen = simulate_placebos(
        hist,
        "outcome",
        "twfe",
        opts,
        A,
        starts,
        8,
        effects,
        seed_seq=np.random.SeedSequence(0),
        n_jobs=args.jobs,
        force_path="shift",
    )
    t_gen = time.perf_counter() - t
    rows.append(
        (f"pilotlab generic path (1 fit / placebo, {args.jobs} workers)", A.shape[0], t_gen)
    )
    vec = simulate_placebos(
        hist, "outcome", "twfe", opts, A, starts, 8, effects, seed_seq=np.random.SeedSequence(0)
    )
    assert np.allclose(gen[3], vec[3], rtol=1e-8), "generic and vectorised paths disagree"

    import statsmodels.formula.api as smf

    n_peer = min(args.peer_fits, args.simulations)
    t = time.perf_counter()
    for r in range(n_peer):
        pan = _placebo_panel(hist, A[r], int(starts[r]), 8)
        df = pd.DataFrame(
            {
                "y": pan.y("outcome"),
                "d": pan.treated_now.astype(float),
                "u": pan.unit,
                "t": pan.time,
            }
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = smf.ols("y ~ d + C(u) + C(t)", df).fit(
                cov_type="cluster", cov_kwds={"groups": df["u"]}
            )
        if r == 0:
            assert abs(fit.params["d"] - vec[3][0, 0]) < 1e-8
    t_sm = (time.perf_counter() - t) / n_peer * args.simulations
    rows.append(
        (f"statsmodels OLS + dummies loop (timed {n_peer}, scaled)", args.simulations, t_sm)
    )

    try:
        import pyfixest as pf

        n_pf = min(50, args.simulations)
        t = time.perf_counter()
        for r in range(n_pf):
            pan = _placebo_panel(hist, A[r], int(starts[r]), 8)
            df = pd.DataFrame(
                {
                    "y": pan.y("outcome"),
                    "d": pan.treated_now.astype(float),
                    "u": pan.unit,
                    "t": pan.time,
                }
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pf.feols("y ~ d | u + t", df, vcov={"CRV1": "u"}).se()
        t_pf = (time.perf_counter() - t) / n_pf * args.simulations
        rows.append((f"pyfixest feols loop (timed {n_pf}, scaled)", args.simulations, t_pf))
    except ImportError:
        pass

    print(
        f"\n{args.units} units x {args.periods} periods, {args.simulations} placebo pilots, "
        f"TWFE + cluster-robust SEs, {args.jobs} worker(s)\n"
    )
    print(f"| {'method':<58} | {'placebos':>8} | {'seconds':>9} | {'x vectorised':>12} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 11}|{'-' * 14}|")
    for name, n, s in rows:
        print(f"| {name:<58} | {n:>8} | {s:>9.2f} | {s / t_vec:>12.0f} |")


if __name__ == "__main__":
    main()
