"""Registry latency on SQLite: register, record a run and list, with 10,000 pilots registered.

    python benchmarks/bench_registry.py [--pilots 10000] [--repeat 50] [--url sqlite:///...]

Fills a fresh registry with N pilots (each with one plan version and one run), then times, in the
same process: registering one more pilot, amending a plan, recording a run (with a realistic
evidence record), computing plan_status, listing all N pilots, and opening the registry. Target:
register, record_run and list each under 100 ms. No peer library does this, so there is no ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pilotlab.registry import Registry
from pilotlab.spec import parse_pilot


def spec(i: int, covariates: tuple[str, ...] = ()) -> Any:
    return parse_pilot(
        {
            "id": f"pilot-{i:06d}",
            "title": f"Pilot {i}",
            "status": "live",
            "lead": "A local authority",
            "partners": ["A department"],
            "policy_area": "employment",
            "data": {"path": "data/panel.csv", "unit": "area_code", "time": "period"},
            "treatment": {"units": ["E06000047", "E08000021"], "start": "2024Q2"},
            "outcomes": [
                {"column": "claimant_rate", "primary": True, "better": "lower", "mde": 0.5},
                {"column": "employment_rate", "mde": 1.0},
            ],
            "design": {"covariates": list(covariates), "robustness": ["placebo_in_time"]},
        }
    )


def evidence(s: Any) -> dict[str, Any]:
    """An evidence record of realistic size (two outcomes, 16-point event studies)."""
    es = [
        {
            "event_time": k,
            "estimate": 0.01 * k,
            "std_error": 0.05,
            "ci_lower": -0.1,
            "ci_upper": 0.1,
        }
        for k in range(-8, 8)
    ]
    return {
        "schema": "pilotlab.evidence/1",
        "generated_at": "2026-11-25T10:00:00Z",
        "software": {"pilotlab": "0.1.0", "python": "3.11.7"},
        "pilot": {"id": s.id, "title": s.title, "status": s.status},
        "results": [
            {
                "outcome": o.column,
                "primary": o.primary,
                "estimator": "event_study",
                "estimate": -0.42,
                "std_error": 0.12,
                "ci_lower": -0.66,
                "ci_upper": -0.18,
                "p_value": 0.004,
                "alpha": 0.05,
                "mde": o.mde,
                "event_study": es,
                "warnings": ["Only 6 treated clusters: wild cluster bootstrap used."],
            }
            for o in s.outcomes
        ],
        "evidence_strength": {"level": 3, "criteria": []},
    }


def timed(fn: Any, repeat: int) -> list[float]:
    out = []
    for k in range(repeat):
        t = time.perf_counter()
        fn(k)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pilots", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--url", default=None, help="registry URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'registry.db'}"
        reg = Registry(url)
        t0 = time.perf_counter()
        for i in range(args.pilots):
            s = spec(i)
            reg.register(s)
            reg.record_run(s, evidence(s), "d" * 64, {"pilotlab": "0.1.0"})
        fill = time.perf_counter() - t0
        n = args.pilots
        rows = {
            "register": timed(lambda k: reg.register(spec(n + k)), args.repeat),
            "amend": timed(lambda k: reg.amend(spec(k, (f"x{k}",)), "benchmark"), args.repeat),
            "record_run": timed(
                lambda k: reg.record_run(spec(k), evidence(spec(k)), "d" * 64, {}), args.repeat
            ),
            "plan_status": timed(lambda k: reg.plan_status(spec(k)), args.repeat),
            f"list_pilots ({n + args.repeat:,})": timed(lambda k: reg.list_pilots(), 10),
            "open Registry(url)": timed(lambda k: Registry(url).close(), 10),
            f"verify ({n + args.repeat:,} pilots)": timed(lambda k: reg.verify(), 3),
        }
        reg.close()
    print(
        f"registry: {url.split('://')[0]}, filled with {n:,} pilots (+1 run each) in {fill:.1f} s"
    )
    print(f"{'operation':<28}{'median ms':>10}{'p95 ms':>10}{'target':>10}")
    for name, ms in rows.items():
        ms.sort()
        p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        target = "< 100" if name.split()[0] in ("register", "record_run", "list_pilots") else ""
        print(f"{name:<28}{statistics.median(ms):>10.2f}{p95:>10.2f}{target:>10}")


if __name__ == "__main__":
    main()
