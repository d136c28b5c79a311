"""Helpers shared by the benchmark scripts: generated panels and isolated, measured runs."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

SIZES = {"500x20": (500, 20), "5000x40": (5_000, 40), "35000x60": (35_000, 60)}


def staggered_panel(size: str, seed: int = 0) -> pd.DataFrame:
    """A staggered roll-out panel: a third of units treated in three cohorts, never-treated rest."""
    n, t = SIZES[size]
    rng = np.random.default_rng(seed)
    cohorts = np.array([t // 3, t // 2, 2 * t // 3])
    first = np.where(rng.random(n) < 2 / 3, -1, cohorts[rng.integers(0, 3, n)])
    unit = np.repeat(np.arange(n), t)
    time_ = np.tile(np.arange(t), n)
    g = first[unit]
    treated = (g >= 0) & (time_ >= g)
    rel = np.where(g >= 0, time_ - g, -1000)
    y = (
        rng.normal(0, 1, n)[unit]
        + 0.05 * time_
        + rng.normal(0, 1, n * t)
        + np.where(treated, 1.0 + 0.02 * np.maximum(rel, 0), 0.0)
    )
    return pd.DataFrame(
        {
            "unit": unit,
            "time": time_,
            "first_treated": np.where(g >= 0, g, 0),
            "D": treated.astype(float),
            "rel": rel,
            "y": y,
        }
    )


def measure(fn: Callable[[], Any]) -> dict[str, float]:
    """Wall time of ``fn()`` and the process's peak resident memory (GiB) afterwards."""
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB
    return {"seconds": seconds, "peak_gib": peak}


def run_isolated(script: str, args: list[str], timeout: float = 900) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter so peak memory belongs to that run alone."""
    try:
        proc = subprocess.run(
            [sys.executable, script, "--one", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        if proc.returncode < 0 or "MemoryError" in proc.stderr:
            last = "out of memory"
        return {"error": last[:80]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def fmt(res: dict[str, Any]) -> str:
    """Cell text: seconds and peak memory, or the error."""
    if "error" in res:
        return res["error"]
    return f"{res['seconds']:.2f} s / {res['peak_gib']:.2f} GiB"
