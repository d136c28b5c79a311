"""Benchmark: ``pilotlab power`` with 500 placebo pilots, for every inference a design can use.

Two designs:

* ``init``: the pilot ``pilotlab init`` writes (60 areas, 10 quarters of history before the
  start, 4 treated, 6 quarters after; event study);
* ``attendance``: ``pilots/attendance-plan`` (120 authorities, 24 quarters, 10 treated, 4 after;
  two-way fixed effects), and the same weighted by each authority's population.

For each design and each inference (cluster, wild bootstrap, permutation) it times
``run_power`` end to end (the whole effect grid, the analytic MDE and the report data), and
reports the path used, the false-positive rate and the MDE.

``--before`` also times the refitting path that permutation inference used before the
permutation path existed (one ``apply_inference`` per placebo pilot and effect size, every
re-assignment refitted), on ``--before-pilots`` placebo pilots, scaled to 500: cluster and wild
bootstrap run the same paths as before. ``--compare-large`` adds the original benchmark's TWFE
comparison (300 areas x 40 quarters, vectorised vs one regression per placebo vs statsmodels).

``--stepped`` times ``pilots/schools-stepped`` (36 schools randomised into three waves within
regions): ``run_power`` end to end with cluster-robust errors and with randomisation over wave
orders (``--replications`` re-draws per placebo roll-out), and the same placebo roll-outs
refitted one by one (``--refit-pilots`` of them, scaled), which is what the fast path replaces.
``--weighted`` gives the schools weights from 0.5 to 2 (a weight column, as pupil numbers
would be), so every re-drawn wave order changes how the waves are combined.

Run: ``python benchmarks/bench_power.py [--simulations 500] [--jobs 2] [--before] [--stepped]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from pilotlab.engine import estimator_options, planning_history, run_power
from pilotlab.power import draw_placebos, simulate_placebos
from pilotlab.spec import PilotSpec, load_pilot

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("cluster", "wild_bootstrap", "permutation")


def _init_spec(folder: Path) -> PilotSpec:
    from click.testing import CliRunner

    from pilotlab.cli import cli

    res = CliRunner().invoke(cli, ["init", str(folder)])
    assert res.exit_code == 0, res.output
    return load_pilot(folder / "pilot.yaml")


def _with_method(spec: PilotSpec, method: str) -> PilotSpec:
    inference = spec.design.inference.model_copy(update={"method": method})
    return spec.model_copy(
        update={"design": spec.design.model_copy(update={"inference": inference})}
    )


def _time_refitting(spec: PilotSpec, n_pilots: int, simulations: int) -> float:
    hist, _ = planning_history(spec, None)
    outcome = spec.primary_outcomes[0].column
    hist = hist.complete(outcome, ())
    ps = spec.design.power
    k = ps.treated if isinstance(ps.treated, int) else len(spec.treatment.units or [])
    post = ps.post_periods or 4
    A, starts = draw_placebos(
        np.random.default_rng(0),
        n_units=hist.n_units,
        n_periods=hist.n_periods,
        n_treated=k,
        post=post,
        min_pre=ps.min_pre_periods or 4,
        simulations=n_pilots,
    )
    probe = run_power(spec, simulations=20, time_budget=None)
    opts = dataclasses.replace(estimator_options(spec, "permutation"), pretrend="none")
    effects = np.array([p.effect for p in probe.curve])  # the grid run_power uses
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        simulate_placebos(
            hist, outcome, probe.estimator, opts, A, starts, post, effects,
            seed_seq=np.random.SeedSequence(0), force_path="full",
        )  # fmt: skip
    return (time.perf_counter() - t) / n_pilots * simulations


def compare_large(args: argparse.Namespace) -> None:
    """1,000 placebo pilots on 300 areas x 40 quarters, TWFE + cluster: vectorised vs one
    regression per placebo vs statsmodels (and pyfixest when installed)."""
    import pandas as pd

    from pilotlab.power import placebo_panel
    from pilotlab.simulate import make_pilot_panel
    from pilotlab.spec import parse_pilot

    args.simulations = args.large_simulations

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

    hist, _ = planning_history(spec, data)
    opts = estimator_options(spec, "cluster")
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
        pan = placebo_panel(hist, A[r], int(starts[r]), 8)
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
            pan = placebo_panel(hist, A[r], int(starts[r]), 8)
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


def stepped(args: argparse.Namespace) -> None:
    """Placebo roll-outs of the stepped example: fast path against refitting each one."""
    import pandas as pd

    from pilotlab.power.stepped import stepped_plan, stepped_rejections, wave_offsets

    folder = ROOT / "pilots" / "schools-stepped"
    spec = load_pilot(folder / "pilot.yaml")
    frame = pd.read_csv(folder / "data" / "panel.csv")
    if args.weighted:  # pupils per school, 0.5 to 2 (each re-draw changes the waves' weights)
        schools = sorted(frame["school_id"].unique())
        weights = dict(zip(schools, np.linspace(0.5, 2.0, len(schools)), strict=True))
        frame["pupils"] = frame["school_id"].map(weights)
        data = spec.data.model_copy(update={"weight": "pupils"})
        spec = spec.model_copy(update={"data": data})
    rows = []
    for method in ("cluster", "permutation"):
        s = _with_method(spec, method)
        if method == "permutation":
            inference = s.design.inference.model_copy(update={"replications": args.replications})
            s = s.model_copy(
                update={"design": s.design.model_copy(update={"inference": inference})}
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            res = run_power(s, frame, simulations=args.simulations, n_jobs=args.jobs)
            sec = time.perf_counter() - t
        scheme = res.scheme
        rows.append(
            (method, res.path, res.simulations, sec, res.false_positive_rate, res.mde,
             None if scheme is None else scheme.mde, None if scheme is None else scheme.mde_comparison)
        )  # fmt: skip
        print(rows[-1], flush=True)
        # the same placebo roll-outs, each refitted (the path the fast one replaces)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hist, _ = planning_history(s, frame)
        alloc = hist.allocation
        assert alloc is not None
        labels = tuple(sorted(frame["month"].unique()))
        plan = stepped_plan(alloc, wave_offsets(alloc, labels), hist.n_periods, res.post_periods)
        opts = dataclasses.replace(estimator_options(s, method), pretrend="none")
        effects = np.array([p.effect for p in res.curve])
        n = args.refit_pilots
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            stepped_rejections(
                hist, "reading_score", res.estimator, opts, alloc, plan, effects,
                simulations=n, seed_seq=np.random.SeedSequence(0), force_refit=True,
            )  # fmt: skip
            refit = (time.perf_counter() - t) / n * args.simulations
        print(f"  refitting {n} roll-outs: {refit:.1f} s scaled to {args.simulations}")
        rows[-1] = (*rows[-1], refit)
    print(
        f"\npilots/schools-stepped{' with pupil weights' if args.weighted else ''}, "
        f"{args.simulations} placebo roll-outs, {args.jobs} worker(s); "
        "seconds are wall time of run_power (whole grid, plus the comparison with waves drawn "
        "by complete randomisation)\n"
    )
    print("| inference | path | roll-outs | seconds | false-positive rate | MDE | MDE: within "
          "strata / complete | refitting (scaled) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for method, path, n_r, sec, fpr, mde, m1, m0, refit in rows:

        def f(x: float | None) -> str:
            return "none" if x is None else f"{x:.3g}"

        print(
            f"| {method} | {path} | {n_r} | {sec:.2f} | {fpr:.1%} | {f(mde)} | {f(m1)} / {f(m0)} "
            f"| {refit:.0f} s |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--simulations", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=min(2, len(os.sched_getaffinity(0))))
    ap.add_argument("--before", action="store_true", help="time the old refitting path too")
    ap.add_argument("--before-pilots", type=int, default=1)
    ap.add_argument("--compare-large", action="store_true", help="the 300 x 40 TWFE comparison")
    ap.add_argument("--units", type=int, default=300)
    ap.add_argument("--periods", type=int, default=40)
    ap.add_argument("--large-simulations", type=int, default=1000)
    ap.add_argument("--peer-fits", type=int, default=20, help="statsmodels fits timed")
    ap.add_argument("--stepped", action="store_true", help="the stepped roll-out example")
    ap.add_argument("--replications", type=int, default=999, help="re-draws (--stepped)")
    ap.add_argument("--refit-pilots", type=int, default=3, help="roll-outs refitted (--stepped)")
    ap.add_argument("--weighted", action="store_true", help="--stepped with weights per school")
    args = ap.parse_args()
    if args.stepped:
        stepped(args)
        return
    if args.compare_large:
        compare_large(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        attendance = load_pilot(ROOT / "pilots" / "attendance-plan" / "pilot.yaml")
        by_population = attendance.data.model_copy(update={"weight": "population"})
        designs = {
            "init": _init_spec(Path(tmp) / "init"),
            "attendance": attendance,
            "attendance, weighted": attendance.model_copy(update={"data": by_population}),
        }
        rows = []
        for name, spec in designs.items():
            for method in METHODS:
                s = _with_method(spec, method)
                t = time.perf_counter()
                res = run_power(s, simulations=args.simulations, n_jobs=args.jobs)
                sec = time.perf_counter() - t
                mde = "none" if res.mde is None else f"{res.mde:.3g}"
                before = ""
                if args.before and method == "permutation":
                    before = f"{_time_refitting(s, args.before_pilots, args.simulations):.0f}"
                rows.append(
                    (name, method, res.estimator, res.path, res.simulations, sec,
                     res.false_positive_rate, mde, before)
                )  # fmt: skip
                print(rows[-1], flush=True)

    print(
        f"\n{args.simulations} placebo pilots per run, {args.jobs} worker(s); seconds are wall "
        "time of run_power (whole effect grid)\n"
    )
    print(
        "| design | inference | estimator | path | placebos | seconds | false-positive rate "
        "| MDE | before: seconds (refitting, scaled) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, method, est, path, n, sec, fpr, mde, before in rows:
        print(
            f"| {name} | {method} | {est} | {path} | {n} | {sec:.1f} | {fpr:.1%} | {mde} "
            f"| {before or 'same path'} |"
        )


if __name__ == "__main__":
    main()
