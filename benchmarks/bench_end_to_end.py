"""What a user waits for: `pilotlab run` of each example pilot and `pilotlab power`, stage by stage.

Usage::

    python benchmarks/bench_end_to_end.py [--simulations 50] [--numpy] [--only run:employment-support]

Each command runs in a fresh interpreter (the real CLI entry point, in-process in that child) so
its peak memory (``ru_maxrss`` of the child, from ``os.wait4``) and CPU time belong to it alone.
Stage times come from wrappers the child installs around pilotlab's public stage functions before
it calls the CLI: nothing in pilotlab itself is timed or changed. Each stage's time excludes the
stages nested inside it (a robustness check's own refits count for the check, not for "fit"):

* ``import``: importing pilotlab's CLI, engine and estimators (numpy, scipy, pandas...);
* ``load``: reading the pilot file and the data file; ``checks``: checking the data and building
  the panel (``panel_from_frame``);
* ``fit``: the estimator of every outcome (with a randomisation pre-trend test, if any, shown
  apart as ``pre-trend test``, and the power of the pre-trend test (Roth 2022) as ``pre-trend
  power``); ``inference``: the wild bootstrap or randomisation inference on top of it;
* ``robustness: <check>``: each check of ``design.robustness`` (``alternative_estimators`` one line
  per alternative estimator);
* ``report``: evidence.json, results.csv and report.html (``power``: power.json and power.html);
* ``power simulation``: the placebo pilots of ``pilotlab power``;
* ``other``: everything else (choices, multiple testing, diagnostics, the CLI itself).

A stage that pilotlab runs on a thread beside the others (``honest_did`` on an event study) is
shown as ``<stage> (beside)``: its wall time overlaps the stages on the main thread, and its CPU
time is counted in theirs (CPU time is the process's), so it is left out of the sums.

``--numpy`` sets ``PILOTLAB_NO_NUMBA=1`` in the children (the synthetic estimators' weight solver
then runs on numpy, as where numba is unavailable). The compiled solver is cached on disk by
numba; ``--cold`` points ``NUMBA_CACHE_DIR`` at an empty folder so the first run's compilation is
measured too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SCENARIOS: dict[str, list[str]] = {
    "run:employment-support": ["run", "pilots/employment-support/pilot.yaml"],
    "run:family-hubs": ["run", "pilots/family-hubs/pilot.yaml"],
    "power:attendance-plan": ["power", "pilots/attendance-plan/pilot.yaml"],
}


# ----------------------------------------------------------------------------- child side
class _Clock:
    """Exclusive stage times: time spent in a nested stage is not counted for its parent. Each
    thread has its own stack; a stage begun off the main thread is recorded as beside."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}  # stage -> [wall, CPU] seconds
        self.order: list[str] = []
        self._stacks = threading.local()  # [name, start, CPU start, nested wall, nested CPU]

    @property
    def stack(self) -> list[list[Any]]:
        if not hasattr(self._stacks, "stack"):
            self._stacks.stack = []
        stack: list[list[Any]] = self._stacks.stack
        return stack

    def wrap(self, fn: Any, name: Any, *, inside_robustness: bool = False) -> Any:
        """``fn`` timed as stage ``name`` (a string, or a function of the call's arguments)."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = self.stack
            top = stack[-1][0] if stack else ""
            if top.startswith("robustness") and not inside_robustness:
                return fn(*args, **kwargs)  # a check's own refits count for the check
            label = name(*args, **kwargs) if callable(name) else name
            if label is None:
                return fn(*args, **kwargs)
            if threading.current_thread() is not threading.main_thread() and not stack:
                label = f"{label} (beside)"
            stack.append([label, time.perf_counter(), time.process_time(), 0.0, 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                lab, start, cpu_start, nested, nested_cpu = stack.pop()
                spent = time.perf_counter() - start
                spent_cpu = time.process_time() - cpu_start
                beside = lab.endswith(" (beside)")
                self._add(lab, spent - nested, math.nan if beside else spent_cpu - nested_cpu)
                if stack:
                    stack[-1][3] += spent
                    stack[-1][4] += spent_cpu

        return timed

    def _add(self, label: str, seconds: float, cpu: float) -> None:
        if label not in self.totals:
            self.order.append(label)
            self.totals[label] = [0.0, 0.0]
        self.totals[label][0] += seconds
        self.totals[label][1] += cpu


def _child(args: list[str], result_file: str) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    import pilotlab.cli as cli
    import pilotlab.data.load as load
    import pilotlab.diagnostics.pretrend as pretrend
    import pilotlab.diagnostics.robustness as rob
    import pilotlab.engine as engine
    import pilotlab.engine.evaluation as evaluation
    import pilotlab.engine.plan as plan
    import pilotlab.engine.run as run
    import pilotlab.inference.apply as apply
    import pilotlab.spec as spec

    clock = _Clock()
    clock._add("import", time.perf_counter() - t0, time.process_time() - c0)
    spec.load_pilot = clock.wrap(spec.load_pilot, "load")
    run.load_pilot = spec.load_pilot  # run_pilot's own reference
    load.read_table = clock.wrap(load.read_table, "load")
    load.panel_from_frame = clock.wrap(load.panel_from_frame, "checks")
    evaluation.apply_inference = clock.wrap(evaluation.apply_inference, "fit")
    apply._with_wild = clock.wrap(apply._with_wild, "inference")
    apply.permutation_test = clock.wrap(apply.permutation_test, "inference")
    # the randomisation pre-test of parallel trends (looked up by name when it runs)
    pretrend.randomization_pretest = clock.wrap(pretrend.randomization_pretest, "pre-trend test")
    # Roth's power of the pre-trend test, attached to every pre-trend test (looked up by name)
    pretrend.with_power = clock.wrap(pretrend.with_power, "pre-trend power")
    for nm, check in list(rob.CHECKS.items()):
        rob.CHECKS[nm] = clock.wrap(check, f"robustness: {nm}")
    rob.alternative_estimators = clock.wrap(
        rob.alternative_estimators, "robustness: alternative_estimators"
    )

    def _alt_label(panel: Any, outcome: Any, entry: Any, *a: Any, **k: Any) -> str | None:
        top = clock.stack[-1][0] if clock.stack else ""
        if top == "robustness: alternative_estimators":
            return f"robustness: alternative_estimators:{entry.name}"
        return None

    rob._fit = clock.wrap(rob._fit, _alt_label, inside_robustness=True)
    run.write_outputs = clock.wrap(run.write_outputs, "report")
    # the command line looks both up in pilotlab.engine when it runs
    engine.run_power = clock.wrap(plan.run_power, "power simulation")
    engine.write_power_report = clock.wrap(plan.write_power_report, "report")

    start, cpu_start = time.perf_counter(), time.process_time()
    code = 0
    try:
        cli.cli.main(args, prog_name="pilotlab", standalone_mode=False)
    except SystemExit as exc:  # pragma: no cover - the CLI's own error exit
        code = int(exc.code or 0)
    total, total_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    staged = [v for k, v in clock.totals.items() if k != "import" and not k.endswith("(beside)")]
    clock._add(
        "other",
        max(total - sum(v[0] for v in staged), 0.0),
        max(total_cpu - sum(v[1] for v in staged), 0.0),
    )
    Path(result_file).write_text(
        json.dumps(
            {
                "stages": [[k, clock.totals[k]] for k in clock.order],
                "total": time.perf_counter() - t0,
                "exit": code,
            }
        ),
        encoding="utf-8",
    )


# ----------------------------------------------------------------------------- parent side
def _measure(name: str, argv: list[str], env: dict[str, str], out_root: Path) -> dict[str, Any]:
    """Run one command in a fresh interpreter; its stage times, wall, CPU and peak memory."""
    result = out_root / f"{name.replace(':', '_')}.json"
    log = out_root / f"{name.replace(':', '_')}.log"
    args = [*argv, "-o", str(out_root / name.replace(":", "_"))]
    cmd = [sys.executable, __file__, "--child", json.dumps(args), str(result)]
    wall = time.perf_counter()
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - wall
    if proc.returncode or not result.exists():
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{log.read_text(encoding='utf-8')}")
    data = json.loads(result.read_text(encoding="utf-8"))
    data.update(
        wall=wall, cpu=usage.ru_utime + usage.ru_stime, peak_mib=usage.ru_maxrss / 1024
    )  # ru_maxrss is in KiB on Linux
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--simulations", type=int, default=50, help="placebo pilots for power")
    ap.add_argument("--numpy", action="store_true", help="run the weight solver on numpy")
    ap.add_argument("--cold", action="store_true", help="empty numba cache (count compilation)")
    ap.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="scenario(s)")
    a = ap.parse_args()
    if a.child:
        _child(json.loads(a.child[0]), a.child[1])
        return
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["PYTHONWARNINGS"] = "ignore"
    if a.numpy:
        env["PILOTLAB_NO_NUMBA"] = "1"
    tmp = tempfile.TemporaryDirectory()
    if a.cold:
        env["NUMBA_CACHE_DIR"] = str(Path(tmp.name) / "numba-cache")
    print(f"python {sys.version.split()[0]}, cores {os.cpu_count()}, "
          f"solver {'numpy' if a.numpy else 'numba if installed'}"
          f"{', cold numba cache' if a.cold else ''}")  # fmt: skip
    rows = []
    for name in a.only or list(SCENARIOS):
        argv = list(SCENARIOS[name])
        if argv[0] == "power":
            argv += ["--simulations", str(a.simulations)]
        rows.append((argv, _measure(name, argv, env, Path(tmp.name))))
    print(f"\n| {'command / stage':<58} | {'wall s':>7} | {'CPU s':>7} | {'peak MiB':>8} |")
    print(f"|{'-' * 60}|{'-' * 9}|{'-' * 9}|{'-' * 10}|")
    for argv, res in rows:
        label = "pilotlab " + " ".join(argv)
        print(
            f"| {label:<58} | {res['wall']:>7.2f} | {res['cpu']:>7.1f} | {res['peak_mib']:>8.0f} |"
        )
        for stage, (sec, cpu) in res["stages"]:
            shown = f"{cpu:>7.1f}" if math.isfinite(cpu) else f"{'-':>7}"
            print(f"| {'  ' + stage:<58} | {sec:>7.2f} | {shown} | {'':>8} |")
    tmp.cleanup()


if __name__ == "__main__":
    main()
