"""Benchmark: the stacked, triple-difference and switching estimators against their peers.

On the same generated panels at 500x20, 5,000x40 and 35,000x60 (units x periods; the triple
difference has two groups, eligible and ineligible, in each unit and period):

* ``stacked``: pilotlab against diff-diff's ``StackedDiD`` and pyfixest's weighted regression on
  the stacked data set (building the stack with pandas, then ``feols`` with the corrective
  weights and sub-experiment x unit and x period effects);
* ``triple_difference``: pilotlab (staggered form) against diff-diff's ``TripleDifference``
  (regression adjustment, never-treated comparisons) and pyfixest's three-way fixed-effects
  regression;
* ``switching``: pilotlab against diff-diff's ``ChaisemartinDHaultfoeuille`` (the only peer in
  Python), the same horizons and placebos.

Each measurement runs in a fresh interpreter (``--one``), so the peak resident memory it
reports (``ru_maxrss`` of that process: data, estimation and all) belongs to that run alone;
the time is the estimation only (panel construction is outside the timer; pyfixest's JIT
kernels are compiled on a small regression first; building pyfixest's stacked data set is
inside its time, as it is part of that route). One run prints
every time, the ratio to the fastest peer and the peak memory::

    python benchmarks/bench_designs_b.py                      # every size and library
    python benchmarks/bench_designs_b.py --sizes 500x20 5000x40 --timeout 300
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SIZES = {"500x20": (500, 20), "5000x40": (5_000, 40), "35000x60": (35_000, 60)}
WINDOW = (5, 5)
LIBS = {
    "stacked": ("pilotlab", "diff_diff", "pyfixest"),
    "triple_difference": ("pilotlab", "diff_diff", "pyfixest"),
    "switching": ("pilotlab", "diff_diff"),
}
NEVER = np.iinfo(np.int64).max


# ----------------------------------------------------------------------------- data
def staggered(n: int, t: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A third of units treated in three cohorts, effects growing with time since the start."""
    rng = np.random.default_rng(seed)
    cohorts = np.array([t // 3, t // 2, 2 * t // 3])
    first = np.where(rng.random(n) < 2 / 3, NEVER, cohorts[rng.integers(0, 3, n)])
    unit = np.repeat(np.arange(n), t)
    time_ = np.tile(np.arange(t), n)
    on = time_ >= first[unit]
    rel = np.where(on, time_ - np.where(on, first[unit], 0), 0)
    y = rng.normal(0, 1, n)[unit] + 0.05 * time_ + rng.normal(0, 1, n * t) + on * (1 + 0.1 * rel)
    return pd.DataFrame({"unit": unit, "time": time_, "y": y}), first


def ddd(n: int, t: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Areas x eligible/ineligible x periods with area x period shocks and a staggered start."""
    rng = np.random.default_rng(seed)
    cohorts = np.array([t // 3, t // 2])
    first = np.where(rng.random(n) < 0.6, NEVER, cohorts[rng.integers(0, 2, n)])
    a = np.repeat(np.arange(n), t * 2)
    tt = np.tile(np.repeat(np.arange(t), 2), n)
    g = np.tile([0, 1], n * t)
    on = tt >= first[a]
    y = (
        rng.normal(0, 1, n)[a]
        + 0.5 * g
        + rng.normal(0, 1, (n, t))[a, tt]
        + 0.8 * on
        + 2.0 * (on & (g == 1))
        + rng.normal(0, 0.5, a.size)
    )
    return pd.DataFrame({"unit": a, "time": tt, "elig": g, "y": y}), first


def reversible(n: int, t: int, seed: int = 0) -> pd.DataFrame:
    """Units switching on or off once, at random periods."""
    rng = np.random.default_rng(seed)
    base = (rng.random(n) < 0.3).astype(int)
    switch = np.where(rng.random(n) < 0.7, rng.integers(2, t, n), t)
    tt = np.arange(t)[None, :]
    D = np.where(tt >= switch[:, None], 1 - base[:, None], base[:, None])
    Y = rng.normal(0, 2, n)[:, None] + 0.1 * tt + 2.0 * D + rng.normal(0, 0.5, (n, t))
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n), t),
            "time": np.tile(np.arange(t), n),
            "D": D.reshape(-1),
            "y": Y.reshape(-1),
        }
    )


def _panel(
    frame: pd.DataFrame, first: np.ndarray, t: int, **kw: Any
) -> Any:  # a pilotlab Panel, built directly (no file checks: estimation is what is timed)
    from pilotlab.data.panel import Panel

    n = int(frame["unit"].max()) + 1
    f = pd.DataFrame(
        {
            "_unit": frame["unit"].to_numpy(np.int64),
            "_time": frame["time"].to_numpy(np.int64),
            "_cluster": frame["unit"].to_numpy(np.int64),
            "_weight": 1.0,
            "y": frame["y"].to_numpy(float),
        }
    )
    for extra in kw.pop("extra", ()):
        f[extra] = frame[extra].to_numpy(float)
    return Panel(
        frame=f,
        unit_labels=tuple(str(i) for i in range(n)),
        period_labels=tuple(str(i) for i in range(t)),
        cluster_labels=tuple(str(i) for i in range(n)),
        first_treated=first,
        outcomes=("y",),
        **kw,
    )


# ----------------------------------------------------------------------------- one run
def one(design: str, lib: str, size: str) -> dict[str, Any]:
    n, t = SIZES[size]
    warnings.simplefilter("ignore")
    if lib == "pyfixest":  # compile its JIT kernels first, outside the timer
        import pyfixest as pf

        rng = np.random.default_rng(0)
        warm = pd.DataFrame({"y": rng.normal(size=200), "x": rng.normal(size=200),
                             "a": np.repeat(np.arange(20), 10), "b": np.tile(np.arange(10), 20)})  # fmt: skip
        pf.feols("y ~ x | a + b", data=warm, weights=None, vcov={"CRV1": "a"})
    from pilotlab.estimators import EstimatorOptions

    opts = EstimatorOptions(window=WINDOW)
    if design == "stacked":
        frame, first = staggered(n, t)
        ft = np.where(first == NEVER, 0, first + 1)
        if lib == "pilotlab":
            from pilotlab.estimators.stacked import StackedOptions, fit_stacked

            panel = _panel(frame, first, t)
            o = EstimatorOptions(window=WINDOW, estimator=StackedOptions(trim=True))
            start = time.perf_counter()
            r = fit_stacked(panel, "y", o, np.random.default_rng(0))
            est = r.estimate
        elif lib == "diff_diff":
            import diff_diff as dd

            df = frame.assign(ft=ft[frame["unit"]], t=frame["time"] + 1)
            start = time.perf_counter()
            m = dd.StackedDiD(
                kappa_pre=WINDOW[0], kappa_post=WINDOW[1], control_group="never_treated"
            ).fit(df, "y", "unit", "t", "ft", aggregate="event_study")
            est = m.overall_att
        else:
            import pyfixest as pf

            start = time.perf_counter()
            st = _stack(frame, first, t)
            m = pf.feols("y ~ i(e, D, ref=-1) | su + st", data=st, weights="w",
                         vcov={"CRV1": "unit"})  # fmt: skip
            coef = m.coef()
            est = float(
                np.mean([b for k, b in coef.items() if int(k.split("::")[1].split(":")[0]) >= 0])
            )
    elif design == "triple_difference":
        frame, first = ddd(n, t)
        if lib == "pilotlab":
            from pilotlab.estimators.triple_difference import fit_triple_difference

            panel = _panel(frame, first, t, extra=("elig",), group="elig")
            start = time.perf_counter()
            est = fit_triple_difference(panel, "y", opts, np.random.default_rng(0)).estimate
        elif lib == "diff_diff":
            import diff_diff as dd

            ft = np.where(first == NEVER, 0, first + 1)
            df = frame.assign(
                ft=ft[frame["unit"]], t=frame["time"] + 1, cell=frame["unit"] * 2 + frame["elig"]
            )
            start = time.perf_counter()
            m = dd.TripleDifference(
                estimation_method="reg", control_group="never_treated", base_period="universal"
            ).fit(df, "y", partition="elig", time="t", unit="cell", first_treat="ft")
            est = m.overall_att
        else:
            import pyfixest as pf

            start = time.perf_counter()
            on = frame["time"].to_numpy() >= first[frame["unit"].to_numpy()]
            df = frame.assign(
                DE=(on & (frame["elig"] == 1)).astype(float),
                ag=frame["unit"] * 2 + frame["elig"],
                at=frame["unit"] * t + frame["time"],
                gt=frame["elig"] * t + frame["time"],
            )
            m = pf.feols("y ~ DE | ag + at + gt", data=df, vcov={"CRV1": "unit"})
            est = float(m.coef()["DE"])
    else:
        frame = reversible(n, t)
        if lib == "pilotlab":
            from pilotlab.estimators.switching import fit_switching

            D = frame["D"].to_numpy().reshape(n, t).astype(np.int8)
            firsts = np.where(D.any(axis=1), D.argmax(axis=1), NEVER).astype(np.int64)
            panel = _panel(frame, firsts, t, treatment=D)
            start = time.perf_counter()
            est = fit_switching(panel, "y", opts, np.random.default_rng(0)).estimate
        else:
            import diff_diff as dd

            start = time.perf_counter()
            m = dd.ChaisemartinDHaultfoeuille(twfe_diagnostic=False, drop_larger_lower=False).fit(
                frame, "y", "unit", "time", "D", L_max=WINDOW[1] + 1
            )
            est = m.overall_att
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {"seconds": seconds, "peak_gib": peak, "estimate": float(est)}


def _stack(frame: pd.DataFrame, first: np.ndarray, t: int) -> pd.DataFrame:
    """The trimmed stacked data set with the corrective weights, as a pandas user builds it."""
    g = first[frame["unit"].to_numpy()]
    parts = []
    for a in np.unique(first[first != NEVER]).tolist():
        if a - WINDOW[0] < 0 or a + WINDOW[1] > t - 1:
            continue
        keep = ((g == a) | (g == NEVER)) & frame["time"].between(a - WINDOW[0], a + WINDOW[1])
        sub = frame[keep].assign(sub=a, D=(g[keep] == a).astype(int))
        sub["e"] = sub["time"] - a
        parts.append(sub)
    st = pd.concat(parts, ignore_index=True)
    nd = st[st.D == 1].groupby("sub")["unit"].nunique()
    nc = st[st.D == 0].groupby("sub")["unit"].nunique()
    q = (nd / nd.sum()) / (nc / nc.sum())
    st["w"] = np.where(st.D == 1, 1.0, q.loc[st["sub"]].to_numpy())
    st["su"] = st["sub"] * 10**6 + st["unit"]
    st["st"] = st["sub"] * 10**3 + st["time"]
    return st


# ----------------------------------------------------------------------------- driver
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", nargs=3, metavar=("DESIGN", "LIB", "SIZE"))
    ap.add_argument("--sizes", nargs="+", default=list(SIZES))
    ap.add_argument("--designs", nargs="+", default=list(LIBS))
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    print("| design | size | library | time (s) | x fastest peer | peak memory (GiB) | estimate |")
    print("|---|---|---|---|---|---|---|")
    for design in args.designs:
        for size in args.sizes:
            res = {lib: _isolated(design, lib, size, args.timeout) for lib in LIBS[design]}
            peers = [r["seconds"] for k, r in res.items() if k != "pilotlab" and "seconds" in r]
            fastest = min(peers) if peers else float("nan")
            for lib, r in res.items():
                if "error" in r:
                    print(f"| {design} | {size} | {lib} | {r['error']} | | | |")
                    continue
                ratio = fastest / r["seconds"] if lib == "pilotlab" else r["seconds"] / fastest
                print(
                    f"| {design} | {size} | {lib} | {r['seconds']:.3f} | "
                    f"{ratio:.1f}{' faster' if lib == 'pilotlab' else ''} | "
                    f"{r['peak_gib']:.2f} | {r['estimate']:.4f} |",
                    flush=True,
                )


def _isolated(design: str, lib: str, size: str, timeout: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", design, lib, size],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": ("out of memory" if proc.returncode < 0 else last)[:80]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
