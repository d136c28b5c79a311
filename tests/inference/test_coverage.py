"""Monte Carlo coverage of the honest intervals (small by default, the full run is slow).

Uses the design of ``benchmarks/bench_coverage.py``: 50 areas x 10 periods, AR(1) errors (rho 0.7),
constant effect, 3 or 6 treated areas. Wild-bootstrap and permutation intervals must cover the
true effect close to 95% of the time (they may be conservative), and cluster-robust intervals
are expected to under-cover with few treated areas.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_coverage.py"


def _module():
    spec = importlib.util.spec_from_file_location("pilotlab_bench_coverage", _PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _band(reps: int, z: float = 3.0) -> float:
    return z * math.sqrt(0.95 * 0.05 / reps)


def test_coverage_small() -> None:
    cov = _module().coverage
    reps = 150
    for n_treated in (3, 6):
        res = cov(n_treated, reps, draws=199, seed=100 + n_treated)
        for m in ("wild_bootstrap", "permutation"):
            c = res[m]["coverage"]
            # near 95% or conservative, never badly below
            assert 0.95 - _band(reps) <= c <= 1.0, (n_treated, m, res)
        # honest methods cover at least as often as cluster-robust intervals with few treated
        assert res["permutation"]["coverage"] >= res["cluster"]["coverage"] - 0.02


@pytest.mark.slow
def test_coverage_full() -> None:
    cov = _module().coverage
    reps = 1000
    for n_treated in (3, 6, 20):
        res = cov(n_treated, reps, draws=999, seed=7 + n_treated)
        perm = res["permutation"]["coverage"]
        assert abs(perm - 0.95) <= _band(reps), res
        wild = res["wild_bootstrap"]["coverage"]
        assert 0.95 - _band(reps) <= wild <= 1.0, res
        if n_treated <= 6:
            assert res["cluster"]["coverage"] < 0.93, res
