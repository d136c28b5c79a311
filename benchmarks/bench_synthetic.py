"""Synthetic DiD and synthetic control: pilotlab against the ``diff-diff`` package.

Two cases, each with 200 placebo draws:

* California Proposition 99 (39 states x 31 years, one treated), read from tests/support/data;
* a generated factor-model panel of 1,000 donors + 1 treated unit x 60 periods (50 pre).

Both libraries run once untimed first (JIT compilation, imports), then each timing is the best of
``--repeat`` runs, measured in this run on this machine. Ratios above 1 mean pilotlab is faster.

Run: ``python benchmarks/bench_synthetic.py [--repeat 3] [--skip-large]``
(needs ``pip install diff-diff``; numba makes pilotlab's Frank-Wolfe loop compiled).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pilotlab.data import panel_from_frame
from pilotlab.estimators._frank_wolfe import HAS_NUMBA
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.synthetic import fit_synthetic
from pilotlab.spec.models import PilotSpec

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
REPS = 200


def factor_panel(n_donors: int = 1000, n_periods: int = 60, t0: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = n_donors + 1
    load = rng.normal(size=(n, 3))
    factors = np.cumsum(rng.normal(size=(n_periods, 3)), axis=0)
    y = 50 + rng.normal(0, 5, n)[:, None] + load @ factors.T + rng.normal(0, 1, (n, n_periods))
    y[0, t0:] -= 5.0
    unit = np.repeat(np.arange(n), n_periods)
    time_ = np.tile(np.arange(n_periods), n)
    df = pd.DataFrame({"unit": unit.astype(str), "time": 2000 + time_, "y": y.ravel()})
    df["treated_unit"] = (unit == 0).astype(int)
    df["treated_now"] = ((unit == 0) & (time_ >= t0)).astype(int)
    return df, "0", 2000 + t0


def prop99():
    df = pd.read_csv(DATA / "california_prop99.csv")
    df = df.rename(columns={"State": "unit", "Year": "time", "PacksPerCapita": "y"})
    df["treated_unit"] = (df["unit"] == "California").astype(int)
    df["treated_now"] = df["treated"]
    return df, "California", 1989


def pilot_panel(df: pd.DataFrame, treated: str, start: int):
    spec = PilotSpec.model_validate(
        {
            "id": "bench",
            "title": "bench",
            "data": {"path": "x.csv", "unit": "unit", "time": "time"},
            "treatment": {"units": [treated], "start": str(start)},
            "outcomes": [{"column": "y"}],
        }
    )
    return panel_from_frame(df[["unit", "time", "y"]], spec)


def best_of(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def run_case(name: str, df: pd.DataFrame, treated: str, start: int, repeat: int) -> list[dict]:
    from diff_diff import SyntheticControl, SyntheticDiD

    panel = pilot_panel(df, treated, start)
    post = sorted(df.loc[df["time"] >= start, "time"].unique().tolist())
    opts = EstimatorOptions(inference="placebo", replications=REPS)

    def ours(method):
        return lambda: fit_synthetic(panel, "y", opts, np.random.default_rng(1), method)

    def dd_sdid():
        est = SyntheticDiD(variance_method="placebo", n_bootstrap=REPS, seed=1)
        return est.fit(df, "y", "treated_unit", "unit", "time", post_periods=post)

    def dd_sc():
        return SyntheticControl(seed=1).fit(
            df, "y", "treated_now", "unit", "time", post_periods=post
        )

    rows = []
    for label, mine, theirs, what in (
        ("synthetic DiD", ours("sdid"), dd_sdid, "fit + 200 placebo refits"),
        ("synthetic control", ours("sc"), dd_sc, "fit + placebo / rank inference"),
    ):
        mine()  # warm-up: numba compilation / caches, imports
        theirs()
        t_ours, r_ours = best_of(mine, repeat)
        t_dd, r_dd = best_of(theirs, repeat)
        rows.append(
            {
                "case": name,
                "estimator": label,
                "work": what,
                "pilotlab_s": round(t_ours, 3),
                "diff_diff_s": round(t_dd, 3),
                "speed-up": round(t_dd / t_ours, 2),
                "pilotlab_att": round(r_ours.estimate, 4),  # type: ignore[attr-defined]
                "diff_diff_att": round(float(r_dd.att), 4),  # type: ignore[attr-defined]
                "pilotlab_se": round(r_ours.std_error, 3),  # type: ignore[attr-defined]
                "diff_diff_se": round(float(getattr(r_dd, "se", np.nan) or np.nan), 3),
            }
        )
        print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"numba kernel: {HAS_NUMBA}")
    rows = run_case("Prop 99 (39 x 31)", *prop99(), repeat=args.repeat)
    if not args.skip_large:
        rows += run_case("1,000 donors x 60", *factor_panel(), repeat=1)
    table = pd.DataFrame(rows)
    print()
    print(table.to_markdown(index=False) if hasattr(table, "to_markdown") else table.to_string())


if __name__ == "__main__":
    main()
