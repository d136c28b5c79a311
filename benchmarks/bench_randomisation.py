"""Randomisation inference of a randomised pilot: pilotlab against a plain loop of statsmodels fits.

Designs (100 units, each its own cluster, 8 periods, start at period 5; the randomised estimator
with Lin's adjustment on the pre-period outcome):

* ``stratified``: 10 strata of 10 units, 5 treated in each;
* ``pairs``: 50 pairs matched on the pre-period outcome, one treated in each;
* ``rerandomise``: 50 of 100 treated, accepted only when both balance variables' standardised
  differences are within a threshold that about 1% of allocations meet.

pilotlab re-draws 10,000 allocations as the scheme did and computes every estimate in batched
solves, with the test-inversion interval (:func:`pilotlab.inference.randomisation.scheme_test`).
The baseline is what one would write by hand: a Python loop that draws each allocation (for
re-randomisation, candidate after candidate until one passes the criterion) and fits it with
``statsmodels.OLS`` (block dummies, the treatment indicator, the centred covariate and its
interaction); it gives the p-value only. The baseline runs ``--baseline-reps`` allocations and
its time is scaled to the same number of re-draws (stated in the output). Each measurement runs
in a fresh interpreter so that its peak memory is its own; the ratio compares CPU seconds, which
a machine shared with other jobs distorts less than wall time (both are printed for pilotlab).

Run:  python benchmarks/bench_randomisation.py [--reps 10000] [--baseline-reps 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

# One BLAS thread for both sides: the machine may be shared, and small matrices gain nothing
# from threads (set before numpy is imported; the measured subprocesses inherit it).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt, measure, run_isolated  # noqa: E402

DESIGNS = ("stratified", "pairs", "rerandomise")
THRESHOLD = 0.022  # about 1% of allocations of 50 of 100 meet this on two variables


def _panel(design: str):  # type: ignore[no-untyped-def]
    from pilotlab.data.load import load_panel
    from pilotlab.spec.load import parse_pilot

    rng = np.random.default_rng(0)
    n, t = 100, 8
    unit = np.repeat(np.arange(n), t)
    time_ = np.tile(np.arange(t), n)
    level = rng.normal(10, 2, n)
    x = rng.normal(0, 1, n)
    y = level[unit] + 0.5 * x[unit] + 0.1 * time_ + rng.normal(0, 0.7, n * t)
    df = pd.DataFrame(
        {
            "area": [f"u{i:03d}" for i in unit],
            "period": 2020 + time_,
            "stratum": [f"s{i // 10}" for i in unit],
            "outcome": y,
            "x": x[unit],
        }
    )
    a: dict[str, object] = {"scheme": design, "start": "2025", "seed": 1}
    if design == "stratified":
        a.update(strata=["stratum"], treated=50)
    elif design == "pairs":
        a.update(pairs_on=["outcome"])
    else:
        a.update(treated=50, balance={"on": ["outcome", "x"], "max_std_diff": THRESHOLD,
                                      "max_draws": 1_000_000})  # fmt: skip
    spec = parse_pilot(
        {
            "id": "bench",
            "title": "Bench",
            "data": {"path": "d.csv", "unit": "area", "time": "period"},
            "outcomes": [{"column": "outcome"}],
            "design": {"covariates": ["x"]} if design != "rerandomise" else {},
            "assignment": a,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_panel(spec, df)


def run_pilotlab(design: str, reps: int) -> dict[str, object]:
    from pilotlab.estimators import EstimatorOptions
    from pilotlab.inference.randomisation import scheme_test

    panel = _panel(design)
    opts = EstimatorOptions()
    t0, c0 = time.perf_counter(), time.process_time()
    res = scheme_test(panel, "outcome", opts, np.random.default_rng(2), reps, 0.05)
    alloc = panel.allocation
    return {
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "p": res.p_value,
        "ci": [res.ci_lower, res.ci_upper],
        "n": res.n_assignments,
        "acceptance": 1 / alloc.draws_tried if alloc is not None and alloc.max_std_diff else None,
    }


def run_baseline(design: str, reps: int) -> dict[str, object]:
    import statsmodels.api as sm

    from pilotlab.estimators import EstimatorOptions
    from pilotlab.estimators.randomised import prepare

    panel = _panel(design)
    prep = prepare(panel, "outcome", EstimatorOptions())
    d = prep.design
    alloc = panel.allocation
    assert alloc is not None
    idx = alloc.index_of(d.labels)
    rng = np.random.default_rng(2)
    fixed = np.ones((d.n, 1)) if d.block is None else np.eye(int(d.block.max()) + 1)[d.block]
    bal = alloc.balance_values
    sd = bal.std(axis=0, ddof=1) if bal.size else None

    def draw_one() -> np.ndarray:
        while True:  # one candidate at a time, as a hand-written loop does
            codes = np.zeros(alloc.n_units, dtype=np.int64)
            for s in range(int(alloc.stratum.max()) + 1):
                members = np.flatnonzero(alloc.stratum == s)
                pick = rng.permutation(members)[: int(alloc.counts[s, 1])]
                codes[pick] = 1
            if alloc.max_std_diff is None:
                return codes
            diff = (bal[codes == 1].mean(0) - bal[codes == 0].mean(0)) / sd
            if np.abs(diff).max() <= alloc.max_std_diff:
                return codes

    def fit(codes: np.ndarray) -> float:
        D = (codes > 0).astype(float)[:, None]
        X = np.column_stack([D, fixed, prep.xc, D * prep.xc] if prep.interact
                            else [D, fixed, prep.xc])  # fmt: skip
        return float(sm.OLS(d.y, X).fit().params[0])

    t0, c0 = time.perf_counter(), time.process_time()
    est = fit(d.codes)
    b = np.array([fit(draw_one()[idx]) for _ in range(reps)])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    p = (1 + np.sum(np.abs(b) >= abs(est))) / (reps + 1)
    return {"seconds": seconds, "cpu_seconds": cpu, "p": float(p), "n": reps}


def _one(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", action="store_true")
    ap.add_argument("--who", required=True)
    ap.add_argument("--design", required=True)
    ap.add_argument("--reps", type=int, required=True)
    a = ap.parse_args(argv)
    fn = run_pilotlab if a.who == "pilotlab" else run_baseline
    out: dict[str, object] = {}

    def go() -> None:
        out.update(fn(a.design, a.reps))

    m = measure(go)
    print(json.dumps({**out, "peak_gib": m["peak_gib"]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10_000)
    ap.add_argument("--baseline-reps", type=int, default=1_000)
    ap.add_argument("--designs", default=",".join(DESIGNS))
    args = ap.parse_args()
    print(
        f"{'design':<12} {'pilotlab (wall / CPU / peak)':>32} "
        f"{'statsmodels loop (scaled CPU / peak)':>40} {'CPU ratio':>9}  p (pilotlab / loop)"
    )
    for design in args.designs.split(","):
        ours = run_isolated(__file__, ["--who", "pilotlab", "--design", design, "--reps",
                                       str(args.reps)])  # fmt: skip
        base = run_isolated(__file__, ["--who", "baseline", "--design", design, "--reps",
                                       str(args.baseline_reps)])  # fmt: skip
        if "error" in ours or "error" in base:
            print(f"{design:<12} {fmt(ours):>32} {fmt(base):>40}")
            continue
        scale = args.reps / args.baseline_reps
        ratio = base["cpu_seconds"] * scale / ours["cpu_seconds"]
        ours_text = (
            f"{ours['seconds']:.2f} s / {ours['cpu_seconds']:.2f} s / {ours['peak_gib']:.2f} GiB"
        )
        base_text = (
            f"{base['cpu_seconds'] * scale:.1f} s ({args.baseline_reps} run) / "
            f"{base['peak_gib']:.2f} GiB"
        )
        extra = f"  acceptance {ours['acceptance']:.2%}" if ours.get("acceptance") else ""
        print(f"{design:<12} {ours_text:>32} {base_text:>40} {ratio:>8.0f}x  "
              f"{ours['p']:.4f} / {base['p']:.4f}{extra}")  # fmt: skip


if __name__ == "__main__":
    if "--one" in sys.argv:
        _one(sys.argv[1:])
    else:
        main()
