"""`pilotlab run` with `auto` choices on a staggered roll-out: the fit against everything else.

Usage::

    python benchmarks/bench_pretest.py [--sizes 5000x40 35000x60] [--src PATH]

With many treated units and a staggered roll-out, ``auto`` picks Callaway & Sant'Anna with
permutation inference (999 re-assignments), and with it the randomisation pre-test of parallel
trends (999 more), when the units are clustered in fewer than 50 regions. Each size writes a generated pilot (``_common.staggered_panel``: a third of
the units treated in three cohorts, the rest never treated, clustered in 40 regions; the pilot
file leaves every choice at ``auto``) and runs ``pilotlab run`` in a fresh interpreter, timing its stages exclusively
(a stage's time leaves out the stages nested in it):

* ``fit``: the estimator (the headline fit and its own analytic errors);
* ``pre-trend test``: :func:`pilotlab.diagnostics.pretrend.apply_pretrend` (the randomisation
  test and, beside it, what the test could detect);
* ``inference``: permutation inference (:func:`pilotlab.inference.apply.permutation_test`);
* ``load`` / ``checks`` / ``report`` / ``other`` as in ``bench_end_to_end.py``.

``--src`` runs another source tree (e.g. an older checkout's ``src``) for a before/after table;
``--weighted`` gives each area a weight (0.5 to 3) and ``--estimator`` fixes the estimator.
The ratio printed is the command's wall time over the fit's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_end_to_end import _Clock  # noqa: E402

from _common import staggered_panel  # noqa: E402

#: Regions the units are clustered in (units in every region are treated and not): too few
#: clusters for cluster-robust errors, so ``auto`` picks permutation inference.
REGIONS = 40


def _child(args: list[str], result_file: str) -> None:
    t0 = time.perf_counter()
    import pilotlab.cli as cli
    import pilotlab.data.load as load
    import pilotlab.engine.evaluation as evaluation
    import pilotlab.engine.run as run
    import pilotlab.inference.apply as apply
    import pilotlab.spec as spec

    clock = _Clock()
    clock._add("import", time.perf_counter() - t0, 0.0)
    spec.load_pilot = clock.wrap(spec.load_pilot, "load")
    run.load_pilot = spec.load_pilot
    load.read_table = clock.wrap(load.read_table, "load")
    load.panel_from_frame = clock.wrap(load.panel_from_frame, "checks")
    evaluation.apply_inference = clock.wrap(evaluation.apply_inference, "fit")
    evaluation.apply_pretrend = clock.wrap(evaluation.apply_pretrend, "pre-trend test")
    apply.permutation_test = clock.wrap(apply.permutation_test, "inference")
    apply._with_wild = clock.wrap(apply._with_wild, "inference")
    run.write_outputs = clock.wrap(run.write_outputs, "report")
    start = time.perf_counter()
    cli.cli.main(args, prog_name="pilotlab", standalone_mode=False)
    total = time.perf_counter() - start
    staged = [v for k, v in clock.totals.items() if k != "import"]
    clock._add("other", max(total - sum(v[0] for v in staged), 0.0), 0.0)
    out = {"stages": [[k, clock.totals[k][0]] for k in clock.order], "total": total}
    Path(result_file).write_text(json.dumps(out), encoding="utf-8")


def _pilot(folder: Path, size: str, weighted: bool = False, estimator: str = "auto") -> Path:
    df = staggered_panel(size)[["unit", "time", "first_treated", "y"]]
    df.insert(0, "area", "A" + df["unit"].astype(str).str.zfill(6))
    df.insert(1, "region", "R" + (df["unit"] % REGIONS).astype(str).str.zfill(2))
    if weighted:  # each area's own weight, 0.5 to 3 (as populations would be)
        sizes = np.random.default_rng(0).uniform(0.5, 3.0, int(df["unit"].max()) + 1)
        df["population"] = sizes[df["unit"].to_numpy()]
    df = df.drop(columns="unit")
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "panel.csv", index=False)
    spec = {
        "id": f"bench-staggered-{size}",
        "title": "Staggered roll-out benchmark",
        "data": {"path": "panel.csv", "unit": "area", "time": "time", "cluster": "region"},
        "treatment": {"column": "first_treated"},
        "outcomes": [{"column": "y", "primary": True}],
    }
    if weighted:
        spec["data"]["weight"] = "population"
    if estimator != "auto":
        spec["design"] = {"estimator": estimator}
    path = folder / "pilot.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", nargs="+", default=["5000x40", "35000x60"])
    ap.add_argument("--src", default=str(ROOT / "src"), help="pilotlab source tree to run")
    ap.add_argument("--weighted", action="store_true", help="a weight per area (0.5 to 3)")
    ap.add_argument("--estimator", default="auto", help="design.estimator (auto by default)")
    a = ap.parse_args()
    if a.child:
        _child(json.loads(a.child[0]), a.child[1])
        return
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([a.src, env.get("PYTHONPATH", "")])
    env["PYTHONWARNINGS"] = "ignore"
    print(f"python {sys.version.split()[0]}, cores {os.cpu_count()}, source {a.src}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in a.sizes:
            pilot = _pilot(Path(tmp) / size, size, a.weighted, a.estimator)
            result = Path(tmp) / f"{size}.json"
            args = ["run", str(pilot), "-o", str(Path(tmp) / f"{size}-out"), "--quiet"]
            wall = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(args), str(result)],
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - wall
            if proc.returncode or not result.exists():
                raise SystemExit(f"{size} failed:\n{proc.stdout}\n{proc.stderr}")
            res: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
            stages = dict(res["stages"])
            fit = stages.get("fit", float("nan"))
            print(f"\n{size}: pilotlab run {res['total']:.2f} s (process {wall:.2f} s), "
                  f"fit {fit:.2f} s, run / fit {res['total'] / fit:.1f}x")  # fmt: skip
            for stage, sec in res["stages"]:
                print(f"  {stage:<16} {sec:>8.2f} s")


if __name__ == "__main__":
    main()
