"""Person-level microdata at national scale: pilotlab (DuckDB cells) vs pandas + pyfixest.

Usage::

    python benchmarks/bench_microdata.py [--rows 10M,50M] [--cache DIR] [--peers 10M]
                                         [--simulations 200]

Generates a panel of persons (500 areas, 20 periods, one row per person and period, a person-level
covariate) once per size as partitioned Parquet (one file per period) in ``--cache`` (default: a
folder under the system's temporary directory; never in the repository), then measures, each in
its own interpreter so that the peak resident memory belongs to that run alone:

* pilotlab: read and check the files and aggregate them to area x period cells with DuckDB, then
  the two-way fixed-effects regression with the covariate and area-clustered errors;
* pandas + pyfixest: the same regression on the rows loaded into memory (only for the sizes in
  ``--peers``: it needs several copies of the rows);
* power: the placebo-pilot simulation of the same design on the cells, with one and two Dask
  worker processes (the power curves must be identical).

The estimates and standard errors of pilotlab and pyfixest are printed side by side: they must
agree to rounding.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import fmt, measure, run_isolated

AREAS, PERIODS, TREATED, START = 500, 20, 100, 12


def _rows(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def generate(n_rows: int, folder: Path) -> Path:
    """Write ``n_rows`` person-period rows as one Parquet file per period (once per size)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    done = folder / "_COMPLETE"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2024)
    persons = n_rows // PERIODS
    home = rng.integers(0, AREAS, persons)
    person_fx = rng.normal(0, 1, persons)
    area_fx = rng.normal(0, 2, AREAS)
    area_id = np.array([f"E{i:05d}" for i in range(AREAS)], dtype=object)
    person_id = np.arange(persons, dtype=np.int64)
    for t in range(PERIODS):  # one period at a time: memory bounded by one partition
        x = rng.normal(0, 1, persons) + 0.2 * area_fx[home]
        d = (home < TREATED) & (t >= START)
        y = 10 + area_fx[home] + 0.1 * t + person_fx + 0.5 * x + 1.5 * d + rng.normal(0, 2, persons)
        table = pa.table(
            {
                "area": pa.array(area_id[home], pa.string()),
                "period": pa.array(np.full(persons, 2001 + t), pa.int32()),
                "person": pa.array(person_id),
                "y": pa.array(y),
                "x": pa.array(x),
            }
        )
        pq.write_table(table, folder / f"period-{2001 + t}.parquet", row_group_size=1 << 20)
        del table, x, y, d
    done.write_text("ok")
    return folder


def _pilot(folder: Path, status: str = "completed") -> Path:
    import yaml

    treated = [f"E{i:05d}" for i in range(TREATED)]
    spec: dict[str, Any] = {
        "id": "bench-microdata",
        "title": "Microdata benchmark",
        "status": status,
        "data": {"path": str(folder), "unit": "area", "time": "period", "person": "person",
                 "layout": "microdata"},
        "treatment": {"units": treated, "start": str(2001 + START)},
        "outcomes": [{"column": "y"}],
        "design": {"estimator": "twfe", "covariates": ["x"], "inference": {"method": "cluster"}},
    }  # fmt: skip
    if status == "planned":
        spec["treatment"] = {}
        spec["design"]["power"] = {"treated": TREATED, "post_periods": 4,
                                   "effects": [0.0, 0.02, 0.05]}  # fmt: skip
    path = folder.parent / f"{folder.name}-{status}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def one_pilotlab(folder: Path) -> dict[str, Any]:
    from pilotlab.catalogue import get
    from pilotlab.data import load_panel
    from pilotlab.estimators.base import EstimatorOptions
    from pilotlab.spec import load_pilot

    out: dict[str, Any] = {}

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            panel = load_panel(load_pilot(_pilot(folder))).complete("y", ("x",))
            out["load_seconds"] = time.perf_counter() - t0
            res = get("twfe").fit(
                panel,
                "y",
                EstimatorOptions(inference="cluster", covariates=("x",)),
                np.random.default_rng(0),
            )
        out.update(estimate=res.estimate, std_error=res.std_error, nobs=res.nobs,
                   cells=panel.nobs)  # fmt: skip

    return {**measure(run), **out}


def one_pyfixest(folder: Path) -> dict[str, Any]:
    import pandas as pd
    import pyfixest as pf

    out: dict[str, Any] = {}

    def run() -> None:
        df = pd.read_parquet(folder)
        df["D"] = (
            (df["area"].str[1:].astype(int) < TREATED) & (df["period"] >= 2001 + START)
        ).astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = pf.feols("y ~ D + x | area + period", data=df, vcov={"CRV1": "area"},
                         copy_data=False, store_data=False, lean=True)  # fmt: skip
        out.update(estimate=float(m.coef()["D"]), std_error=float(m.se()["D"]), nobs=len(df))

    return {**measure(run), **out}


def one_power(folder: Path, workers: int, simulations: int) -> dict[str, Any]:
    from pilotlab.engine import run_power
    from pilotlab.parallel import use_scheduler
    from pilotlab.spec import load_pilot

    out: dict[str, Any] = {}
    spec = load_pilot(_pilot(folder, "planned"))

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with use_scheduler(f"local:{workers}"):
                t0 = time.perf_counter()
                res = run_power(spec, simulations=simulations, n_jobs=1, time_budget=None)
                out["seconds_in_cluster"] = time.perf_counter() - t0
        out["curve"] = [(p.effect, p.power) for p in res.curve]
        out["path"] = res.path

    return {**measure(run), **out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="10M,50M")
    ap.add_argument("--peers", default="10M", help="sizes at which pandas + pyfixest also run")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "pilotlab-bench")
    ap.add_argument("--simulations", type=int, default=200)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--what", default="")
    ap.add_argument("--folder", type=Path)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    if args.one:
        if args.what == "pilotlab":
            res = one_pilotlab(args.folder)
        elif args.what == "pyfixest":
            res = one_pyfixest(args.folder)
        else:
            res = one_power(args.folder, args.workers, args.simulations)
        print(json.dumps(res))
        return
    peers = {_rows(s) for s in args.peers.split(",") if s}
    for size in args.rows.split(","):
        n = _rows(size)
        t0 = time.perf_counter()
        folder = generate(n, args.cache / f"microdata-{size.strip()}")
        print(
            f"\n{size} person-period rows in {folder} (ready in {time.perf_counter() - t0:.0f} s)"
        )
        me = run_isolated(__file__, ["--what", "pilotlab", "--folder", str(folder)], 3600)
        print(f"  pilotlab (DuckDB cells) : {fmt(me)}", end="")
        if "error" not in me:
            print(f"; load {me['load_seconds']:.1f} s, {me['cells']:,} cells, "
                  f"estimate {me['estimate']:.10f} se {me['std_error']:.10f}")  # fmt: skip
        if n in peers:
            pf_ = run_isolated(__file__, ["--what", "pyfixest", "--folder", str(folder)], 3600)
            print(f"  pandas + pyfixest       : {fmt(pf_)}", end="")
            if "error" not in pf_:
                print(f"; estimate {pf_['estimate']:.10f} se {pf_['std_error']:.10f}")
                if "error" not in me:
                    print(f"  |difference|            : estimate "
                          f"{abs(me['estimate'] - pf_['estimate']):.1e}, se "
                          f"{abs(me['std_error'] - pf_['std_error']):.1e}")  # fmt: skip
        curves = []
        for w in (1, 2):
            pw = run_isolated(
                __file__,
                ["--what", "power", "--folder", str(folder), "--workers", str(w),
                 "--simulations", str(args.simulations)],
                3600,
            )  # fmt: skip
            if "error" in pw:
                print(f"  power, {w} worker(s)     : {pw['error']}")
                continue
            curves.append(pw["curve"])
            print(f"  power, {w} worker(s)     : {fmt(pw)} (simulations "
                  f"{pw['seconds_in_cluster']:.1f} s, path {pw['path']})")  # fmt: skip
        if len(curves) == 2:
            print(f"  power curves identical  : {curves[0] == curves[1]}")


if __name__ == "__main__":
    main()
