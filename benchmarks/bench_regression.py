"""TWFE and event study with clustered SEs: pilotlab vs pyfixest and linearmodels.

Usage: ``python benchmarks/bench_regression.py [--sizes 500x20,5000x40,35000x60]
[--models twfe,event_study,event_study_all] [--skip pyfixest:event_study_all:35000x60]``.
Every cell runs in its own interpreter on the same generated staggered panel; times exclude data
generation and count the estimator only (pilotlab's panel is built before the clock starts, as the
peers' data frames are). Ratios are peer time / pilotlab time, measured in the same run.
The numpy floor is a bare two-way within-transformation with CR1 SEs: the least any
implementation must do.

``event_study`` is the binned window -8..8 (reference -1) for every library;
``event_study_all`` estimates every event time the data contain (no binning), which pyfixest
fits with one dummy per event time.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import SIZES, fmt, measure, run_isolated, staggered_panel

WINDOW = (8, 8)


def _pilotlab(model: str, df):
    from pilotlab.data import panel_from_frame
    from pilotlab.estimators import ESTIMATORS, EstimatorOptions
    from pilotlab.spec import parse_pilot

    spec = parse_pilot(
        {
            "id": "bench",
            "title": "bench",
            "data": {"path": "x.csv", "unit": "unit", "time": "time"},
            "treatment": {"column": "first_treated"},
            "outcomes": [{"column": "y"}],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = panel_from_frame(df, spec)
    window = (10_000, 10_000) if model == "event_study_all" else WINDOW  # clipped to the data
    opts = EstimatorOptions(inference="cluster", window=window)
    rng = np.random.default_rng(0)
    name = "event_study" if model == "event_study_all" else model
    return lambda: ESTIMATORS[name].fit(panel, "y", opts, rng)


def _numpy_floor(model: str, df):
    unit = df["unit"].to_numpy()
    time_ = df["time"].to_numpy()
    y = df["y"].to_numpy()
    D = df["D"].to_numpy()

    def run():
        n_u, n_t = unit.max() + 1, time_.max() + 1
        Z = np.column_stack([y, D])
        mu = (
            np.stack([np.bincount(unit, Z[:, j], n_u) for j in range(2)], 1)
            / np.bincount(unit)[:, None]
        )
        mt = (
            np.stack([np.bincount(time_, Z[:, j], n_t) for j in range(2)], 1)
            / np.bincount(time_)[:, None]
        )
        Zt = Z - mu[unit] - mt[time_] + Z.mean(0)
        x, yy = Zt[:, 1], Zt[:, 0]
        b = (x @ yy) / (x @ x)
        s = np.bincount(unit, x * (yy - b * x), n_u)
        return b, np.sqrt(s @ s) / (x @ x)

    return run


def _binned(df, clip: bool = True):
    rel = df["rel"].to_numpy().copy()
    treated = rel > -1000
    if clip:
        rel[treated] = np.clip(rel[treated], -WINDOW[0], WINDOW[1])
    rel[~treated] = -1  # never treated: reference category
    return df.assign(rel=rel)


def _pyfixest(model: str, df):
    import pyfixest as pf

    if model == "twfe":
        return lambda: pf.feols("y ~ D | unit + time", data=df, vcov={"CRV1": "unit"})
    d = _binned(df, clip=model != "event_study_all")
    return lambda: pf.feols("y ~ i(rel, ref=-1) | unit + time", data=d, vcov={"CRV1": "unit"})


def _linearmodels(model: str, df):
    import pandas as pd
    from linearmodels.panel import PanelOLS

    d = df.set_index(["unit", "time"])
    if model == "twfe":
        exog = d[["D"]]
    else:
        rel = _binned(df).set_index(["unit", "time"])["rel"]
        exog = pd.get_dummies(rel, prefix="e", dtype=float).drop(columns="e_-1")
    return lambda: PanelOLS(d["y"], exog, entity_effects=True, time_effects=True).fit(
        cov_type="clustered", cluster_entity=True
    )


def ratio(res: dict, lib: str, base: float | None) -> str:
    """Peer time over pilotlab's time."""
    s = res.get(lib, {}).get("seconds")
    return f"{s / base:.1f}x" if s and base else "n/a"


RUNNERS = {
    "pilotlab": _pilotlab,
    "numpy floor": _numpy_floor,
    "pyfixest": _pyfixest,
    "linearmodels": _linearmodels,
}


def one(lib: str, model: str, size: str) -> None:
    RUNNERS[lib](model, staggered_panel("500x20", seed=1))()  # warm-up: imports, JIT compilation
    df = staggered_panel(size)
    fn = RUNNERS[lib](model, df)
    print(json.dumps(measure(fn)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--one", nargs=3, metavar=("LIB", "MODEL", "SIZE"))
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--models", default="twfe,event_study,event_study_all")
    ap.add_argument("--skip", action="append", default=[], help="LIB:MODEL:SIZE cells not to run")
    args = ap.parse_args()
    if args.one:
        one(*args.one)
        return
    print(
        "| model | size | pilotlab | numpy floor | pyfixest | linearmodels | pyfixest / pilotlab | "
        "linearmodels / pilotlab | pilotlab / floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        for size in args.sizes.split(","):
            res = {
                lib: (
                    {"error": "skipped"}
                    if f"{lib}:{model}:{size}" in args.skip
                    or (lib == "linearmodels" and model == "event_study_all")
                    else run_isolated(__file__, [lib, model, size], args.timeout)
                )
                for lib in RUNNERS
                if not (lib == "numpy floor" and model.startswith("event_study"))
            }
            base = res["pilotlab"].get("seconds")
            floor = res.get("numpy floor", {}).get("seconds")
            print(
                f"| {model} | {size} | {fmt(res['pilotlab'])} | {fmt(res.get('numpy floor', {'error': '-'}))} | "
                f"{fmt(res['pyfixest'])} | {fmt(res['linearmodels'])} | {ratio(res, 'pyfixest', base)} | "
                f"{ratio(res, 'linearmodels', base)} | {f'{base / floor:.1f}x' if base and floor else '-'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
