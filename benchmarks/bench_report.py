"""How much does the report add to a run? Build + render + CSV time and file size.

Usage: ``python benchmarks/bench_report.py [--repeat 5]``.

Pilots: the test suite's ``three_outcomes`` example (150 areas x 24 quarters, 3 outcomes, all five
robustness checks incl. HonestDiD present; two run by the engine, three attached) and a larger one (2,000 areas x 120 months, 3 outcomes,
the same checks) whose per-period tables are long. For each: the time of ``evaluate()`` (for
scale), of ``build()`` (document model, SVG charts), of the whole ``render_report()`` (build, Jinja,
HTML and CSV files), cold (first call in the process, template compilation included) and warm
(median of ``--repeat``), and the size of report.html. Targets: under 2 s, under 1.5 MB.

Peer: matplotlib (optional) drawing the same charts (a trend and an event-study chart per outcome
and a forest plot) to SVG, measured in the same run: what the report would cost with the usual
plotting library instead of hand-written SVG.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the example evaluations live with the tests

import report_helpers as ex  # noqa: E402

import pilotlab  # noqa: E402
from pilotlab.diagnostics.evidence_strength import evidence_strength  # noqa: E402
from pilotlab.report import build, render_report  # noqa: E402
from pilotlab.simulate import make_pilot_panel  # noqa: E402


def large_pilot() -> Any:
    """2,000 areas x 120 months, 3 outcomes, every robustness check present.

    placebo_in_time and leave_one_out are run by the engine; placebo_in_space, alternative
    estimators and HonestDiD are attached in the engine's shape, because running them takes
    minutes at this size (their cost belongs to the checks, not to the report).
    """
    frames = []
    for k, (col, eff) in enumerate(
        (("claimant_rate", -0.5), ("employment_rate", 1.0), ("wellbeing", 0.0))
    ):
        sim = make_pilot_panel(
            2000,
            120,
            40,
            84,
            eff,
            freq="month",
            first_period="2015-01",
            seed=3,
            outcome=col,
            noise_sd=0.5 + 0.1 * k,
        )
        frames.append(sim)
    df = frames[0].data[["area_code", "period", "claimant_rate"]].copy()
    df["employment_rate"] = frames[1].data["employment_rate"].to_numpy()
    df["wellbeing"] = frames[2].data["wellbeing"].to_numpy()
    spec = ex._spec(
        list(frames[0].treated_units), frames[0].start, ex.THREE_OUTCOMES, robustness=ex.REAL_CHECKS
    )
    t = time.perf_counter()
    ev = pilotlab.evaluate(spec, data=df)
    t_eval = time.perf_counter() - t
    extra = {
        o.column: [c for c in ex._checks(o) if c.check not in ex.REAL_CHECKS] for o in ev.outcomes
    }
    ev = dataclasses.replace(
        ev,
        outcomes=tuple(
            dataclasses.replace(o, robustness=(*o.robustness, *extra[o.column]))
            for o in ev.outcomes
        ),
    )
    return dataclasses.replace(ev, evidence_strength=evidence_strength(ev)), t_eval


def small_pilot() -> Any:
    t = time.perf_counter()
    ev = ex.three_outcomes()
    return ev, time.perf_counter() - t


def matplotlib_peer(ev: Any) -> float | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    t = time.perf_counter()
    for o in ev.outcomes:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(o.trends["period"], o.trends["treated"], marker="o")
        ax.plot(o.trends["period"], o.trends["comparison"], marker="s", linestyle="--")
        fig.savefig(io.StringIO(), format="svg")
        plt.close(fig)
        es = o.result.event_study
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.errorbar(
            [e.event_time for e in es],
            [e.estimate for e in es],
            yerr=[[e.estimate - e.ci_lower for e in es], [e.ci_upper - e.estimate for e in es]],
            fmt="o",
        )
        fig.savefig(io.StringIO(), format="svg")
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 2))
    ax.errorbar(
        [o.result.estimate for o in ev.outcomes],
        range(len(ev.outcomes)),
        xerr=[
            [o.result.estimate - o.result.ci_lower for o in ev.outcomes],
            [o.result.ci_upper - o.result.estimate for o in ev.outcomes],
        ],
        fmt="D",
    )
    fig.savefig(io.StringIO(), format="svg")
    plt.close(fig)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for name, make in (
        ("150x24 quarterly, 3 outcomes", small_pilot),
        ("2000x120 monthly, 3 outcomes", large_pilot),
    ):
        ev, t_eval = make()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "report.html"
            t = time.perf_counter()
            render_report(ev, out)
            cold = time.perf_counter() - t
            warm, builds = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                build(ev)
                builds.append(time.perf_counter() - t)
                t = time.perf_counter()
                render_report(ev, out)
                warm.append(time.perf_counter() - t)
            size = out.stat().st_size
            n_csv = len(list((Path(tmp) / "tables").glob("*.csv")))
        peer = matplotlib_peer(ev)
        rows.append(
            (
                name,
                t_eval,
                statistics.median(builds),
                cold,
                statistics.median(warm),
                size,
                n_csv,
                peer,
            )
        )
    print(
        "| pilot | evaluate() s | build() s | render_report cold s | render_report warm s "
        "| report.html | CSV files | matplotlib SVG of the same charts s | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, te, tb, tc, tw, size, n_csv, peer in rows:
        peer_txt = f"{peer:.3f}" if peer is not None else "n/a"
        ratio = f"{peer / tw:.1f}x" if peer is not None else "n/a"
        print(
            f"| {name} | {te:.3f} | {tb:.3f} | {tc:.3f} | {tw:.3f} | {size / 1e6:.2f} MB "
            f"| {n_csv} | {peer_txt} | {ratio} |"
        )
    worst = max(max(r[3], r[4]) for r in rows)
    biggest = max(r[5] for r in rows)
    print(
        f"\nTargets: render under 2 s (worst {worst:.3f} s: "
        f"{'met' if worst < 2 else 'MISSED'}); file under 1.5 MB "
        f"(largest {biggest / 1e6:.2f} MB: {'met' if biggest < 1.5e6 else 'MISSED'})."
    )


if __name__ == "__main__":
    main()
