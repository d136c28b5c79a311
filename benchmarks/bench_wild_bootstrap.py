"""Wild cluster restricted bootstrap: pilotlab vs pyfixest and the ``wildboottest`` package.

Panels of N units x T periods (10% of units treated from mid-panel, clusters = units), TWFE of
``y`` on the treatment indicator with unit and period effects. Timings are "after the fit":
pilotlab starts from its ``LinearFit`` (fixed effects already absorbed); the ``wildboottest``
package gets the same demeaned ``y`` and ``X`` as a statsmodels OLS; pyfixest runs
``feols(...).wildboottest()`` on the raw data (its bootstrap needs the fixed effects as
dummies). Peers run in a subprocess with a memory cap so that running out of memory is
reported instead of taking the machine down. pilotlab's time includes the test-inversion
confidence interval; the peers compute a p-value only.

Run:  python benchmarks/bench_wild_bootstrap.py [--sizes 500x20,5000x40,35000x60]
                                                 [--mem-gb 8] [--reps 999] [--clusters G]
                                                 [--covariate]

``--covariate`` adds a time-varying covariate ``x`` to the model (the bootstrap then
re-projects every draw on it as well as on the treatment).
Peers: pip install 'pilotlab[bench]'  (pyfixest, wildboottest).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
import traceback

import numpy as np


def make_data(
    n_units: int, n_periods: int, seed: int = 0, n_clusters: int = 0, covariate: bool = False
) -> dict[str, np.ndarray]:
    """Panel data; clusters are units, or ``n_clusters`` groups of units when given; with
    ``covariate`` a time-varying covariate ``x`` (correlated with treatment) enters ``y``."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_periods)
    time_ = np.tile(np.arange(n_periods), n_units)
    treated = np.zeros(n_units, dtype=bool)
    treated[rng.choice(n_units, max(2, n_units // 10), replace=False)] = True
    d = (treated[unit] & (time_ >= n_periods // 2)).astype(float)
    e = rng.normal(size=(n_units, n_periods))
    for t in range(1, n_periods):  # AR(1) over a handful of periods
        e[:, t] = 0.5 * e[:, t - 1] + e[:, t]
    cl = unit if not n_clusters else unit * n_clusters // n_units
    if n_clusters:  # treatment assigned to whole clusters
        tc = rng.choice(n_clusters, max(2, n_clusters // 10), replace=False)
        d = (np.isin(cl, tc) & (time_ >= n_periods // 2)).astype(float)
    y = rng.normal(size=n_units)[unit] + 0.1 * time_ + e.reshape(-1) + 0.05 * d
    out = {"y": y, "d": d, "unit": unit, "time": time_, "cluster": cl}
    if covariate:
        x = rng.normal(size=n_units * n_periods) + 0.5 * d + 0.02 * time_
        out["x"], out["y"] = x, y + 0.3 * x
    return out


def _fit(data: dict[str, np.ndarray]):
    from pilotlab.estimators.linear import fit_linear

    names = ("d", "x") if "x" in data else ("d",)
    X = np.column_stack([data[c] for c in names])
    return fit_linear(data["y"], X, names, fe=[data["unit"], data["time"]],
                      cluster=data["cluster"], balanced=True)  # fmt: skip


def run_pilotlab(data: dict[str, np.ndarray], reps: int) -> dict[str, float]:
    from pilotlab.inference.wild import wild_cluster_bootstrap

    t0 = time.perf_counter()
    fit = _fit(data)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = wild_cluster_bootstrap(fit, "d", replications=reps, rng=np.random.default_rng(1))
    return {"seconds": time.perf_counter() - t0, "fit_seconds": t_fit, "p": res.p_value,
            "ci": [res.ci_lower, res.ci_upper]}  # fmt: skip


def _peer_wildboottest(data: dict[str, np.ndarray], reps: int) -> dict[str, float]:
    import pandas as pd
    import statsmodels.api as sm
    from wildboottest.wildboottest import wildboottest

    fit = _fit(data)  # demeaned beforehand, as the package has no fixed effects
    model = sm.OLS(fit.y, pd.DataFrame(dict(zip(fit.names, fit.X.T, strict=True))))
    t0 = time.perf_counter()
    out = wildboottest(model, B=reps, cluster=data["cluster"], param="d", seed=1, show=False)
    return {"seconds": time.perf_counter() - t0,
            "p": float(np.asarray(out["p-value"]).ravel()[0])}  # fmt: skip


def _peer_pyfixest(data: dict[str, np.ndarray], reps: int) -> dict[str, float]:
    import pandas as pd
    import pyfixest as pf

    df = pd.DataFrame(data)
    rhs = "d + x" if "x" in data else "d"
    fit = pf.feols(f"y ~ {rhs} | unit + time", data=df, vcov={"CRV1": "cluster"})
    t0 = time.perf_counter()
    out = fit.wildboottest(param="d", reps=reps, seed=1)
    return {"seconds": time.perf_counter() - t0, "p": float(out["Pr(>|t|)"])}


def _child(
    name: str, n: int, t: int, reps: int, mem_gb: float, n_clusters: int, cov: bool, q: mp.Queue
) -> None:
    cap = int(mem_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        data = make_data(n, t, n_clusters=n_clusters, covariate=cov)
        fn = {"wildboottest": _peer_wildboottest, "pyfixest": _peer_pyfixest}[name]
        q.put(fn(data, reps))
    except MemoryError:
        q.put({"error": f"out of memory (cap {mem_gb:g} GB)"})
    except Exception as exc:
        msg = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        oom = "memory" in msg.lower() or "allocate" in msg.lower()
        q.put({"error": (f"out of memory (cap {mem_gb:g} GB)" if oom else msg[:120])})


def run_peer(
    name: str,
    n: int,
    t: int,
    reps: int,
    mem_gb: float,
    timeout: float,
    n_clusters: int,
    cov: bool = False,
) -> dict:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(name, n, t, reps, mem_gb, n_clusters, cov, q))
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.terminate()
        p.join()
        return {"error": f"timed out after {timeout:g} s"}
    if q.empty():
        return {"error": f"crashed (exit code {p.exitcode}; likely out of memory)"}
    return q.get()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="500x20,5000x40,35000x60")
    ap.add_argument("--reps", type=int, default=999, help="draws for the head-to-head timing")
    ap.add_argument("--mem-gb", type=float, default=8.0)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--clusters", type=int, default=0, help="0: cluster by unit")
    ap.add_argument("--covariate", action="store_true", help="add a time-varying covariate")
    args = ap.parse_args()
    rows = []
    for size in args.sizes.split(","):
        n, t = (int(v) for v in size.split("x"))
        data = make_data(n, t, n_clusters=args.clusters, covariate=args.covariate)
        ours = run_pilotlab(data, args.reps)
        ours_big = run_pilotlab(data, 9999)
        peers = {name: run_peer(name, n, t, args.reps, args.mem_gb, args.timeout, args.clusters,
                                args.covariate)
                 for name in ("wildboottest", "pyfixest")}  # fmt: skip
        rows.append((size, ours, ours_big, peers))
        print(json.dumps({"size": size, "pilotlab": ours, "pilotlab_9999": ours_big,
                          **peers}, default=float), flush=True)  # fmt: skip

    def cell(peer: dict, ours: dict) -> str:
        if "error" in peer:
            return peer["error"]
        ratio = peer["seconds"] / ours["seconds"]
        return f"{peer['seconds']:.3f} s (p {peer['p']:.3f}; {ratio:.0f}x)"

    print()
    where = f"{args.clusters} clusters" if args.clusters else "clusters = units"
    extra = ", one time-varying covariate" if args.covariate else ""
    print(f"Wild cluster restricted bootstrap, TWFE{extra}, {where}; seconds after the fit\n")
    print(f"| unit-periods | pilotlab {args.reps:,} draws + CI | pilotlab 9,999 draws + CI | "
          f"wildboottest pkg {args.reps:,} (ratio) | pyfixest {args.reps:,} (ratio) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for size, ours, big, peers in rows:
        wbt, pfx = cell(peers["wildboottest"], ours), cell(peers["pyfixest"], ours)
        print(f"| {size} | {ours['seconds']:.3f} s (p {ours['p']:.3f}) | "
              f"{big['seconds']:.3f} s | {wbt} | {pfx} |")  # fmt: skip


if __name__ == "__main__":
    main()
