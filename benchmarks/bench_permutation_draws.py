"""Drawing random permutations of treatment labels: :func:`pilotlab.data.assignment.permute_labels`.

Usage::

    python benchmarks/bench_permutation_draws.py [--sizes 999x35000 999x5000] [--src PATH]

Each size (``draws x units``; a third of the units treated in three cohorts, the rest never) runs
in a fresh interpreter: the first call (which, for large draws, loads the compiled kernel from
numba's disk cache) and the best of three further calls, each checked against
``labels[np.argsort(rng.random((draws, units)), axis=1)]``; then the best of three calls of
``permute_codes``, the same draws as one-byte codes (what permutation inference and the
randomisation pre-test use; "n/a" for a source tree without it). ``--src`` runs another source tree
(e.g. an older checkout's ``src``) for a before/after table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
import numpy as np
from pilotlab.data.assignment import permute_labels
from pilotlab.data.panel import NEVER
draws, n = int(sys.argv[1]), int(sys.argv[2])
labels = np.full(n, NEVER, dtype=np.int64)
labels[: n // 3] = np.repeat([4, 6, 8], -(-(n // 3) // 3))[: n // 3]
times = []
for rep in range(4):
    t0 = time.perf_counter()
    rows, _ = permute_labels(labels, draws, np.random.default_rng(rep))
    times.append(time.perf_counter() - t0)
keys = np.random.default_rng(3).random((draws, n))
same = bool(np.array_equal(rows, labels[np.argsort(keys, axis=1)]))
codes = float("nan")
try:
    from pilotlab.data.assignment import permute_codes
except ImportError:
    pass
else:
    runs = []
    for rep in range(3):
        t0 = time.perf_counter()
        coded, _ = permute_codes(labels, draws, np.random.default_rng(rep))
        runs.append(time.perf_counter() - t0)
    same = same and bool(np.array_equal(coded.labels(), labels[np.argsort(
        np.random.default_rng(2).random((draws, n)), axis=1)]))
    codes = min(runs)
print(json.dumps({"first": times[0], "best": min(times[1:]), "codes": codes, "same": same}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["999x35000", "999x5000"])
    ap.add_argument("--src", default=str(ROOT / "src"))
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": args.src}
    print(
        f"{'draws x units':>14} {'first call s':>13} {'best of 3 s':>12} {'as codes s':>11}  same"
    )
    for size in args.sizes:
        draws, n = size.split("x")
        res = subprocess.run(
            [sys.executable, "-c", CHILD, draws, n], env=env, capture_output=True, text=True
        )
        if res.returncode:
            sys.exit(res.stderr)
        r = json.loads(res.stdout)
        codes = "n/a" if r["codes"] != r["codes"] else f"{r['codes']:.3f}"
        print(f"{size:>14} {r['first']:>13.3f} {r['best']:>12.3f} {codes:>11}  {r['same']}")


if __name__ == "__main__":
    main()
