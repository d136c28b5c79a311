"""Regenerate pilots/schools-stepped/data: a stepped roll-out randomised by pilotlab itself.

Run from the repository root: ``python pilots/make_schools_stepped.py``. The untreated reading
scores are simulated first (school and month effects, noise); the waves are then drawn exactly
as ``pilotlab randomise`` draws them, from the pilot file's seed and the months before the first
wave (the allocation depends on nothing after it); finally the programme's effect is added from
each school's start, and ``had_programme`` records what each school actually ran. One school of
wave 2 started a month late, so the report has a per-protocol analysis to show. The true effect
is written to ``data/truth.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pilotlab.data import load_panel
from pilotlab.spec import load_pilot

HERE = Path(__file__).resolve().parent / "schools-stepped"
EFFECT = 2.0  # points on the reading score, from a school's first month in the programme
REGIONS = ("north", "central", "south")


def main() -> None:
    rng = np.random.default_rng(2023)
    months = pd.period_range("2022-09", "2024-08", freq="M").astype(str).tolist()
    schools = [f"SCH{i + 1:03d}" for i in range(36)]
    region = [REGIONS[i % 3] for i in range(36)]
    level = rng.normal(62, 5, 36) + np.array([{"north": -2, "central": 0, "south": 2}[r] for r in region])
    season = 0.8 * np.sin(2 * np.pi * np.arange(len(months)) / 12)
    trend = 0.05 * np.arange(len(months))
    y0 = level[:, None] + season[None, :] + trend[None, :] + rng.normal(0, 1.2, (36, len(months)))
    frame = pd.DataFrame(
        {
            "school_id": np.repeat(schools, len(months)),
            "month": np.tile(months, 36),
            "region": np.repeat(region, len(months)),
            "reading_score": y0.reshape(-1).round(2),
            "had_programme": 0,
        }
    )
    data = HERE / "data"
    data.mkdir(parents=True, exist_ok=True)
    spec = load_pilot(HERE / "pilot.yaml")
    history = frame[frame["month"] < "2023-09"]
    allocation = load_panel(spec, history, history=True).allocation
    assert allocation is not None
    start_of = {
        u: allocation.starts[int(c)] for u, c in zip(allocation.units, allocation.codes, strict=True)
    }
    late = sorted(u for u, s in start_of.items() if s == "2024-01")[0]  # starts in February
    ran = np.array(
        [
            m >= ("2024-02" if u == late else start_of[u])
            for u, m in zip(frame["school_id"], frame["month"], strict=True)
        ]
    )
    frame["had_programme"] = ran.astype(int)
    frame.loc[ran, "reading_score"] = (frame.loc[ran, "reading_score"] + EFFECT).round(2)
    frame.to_csv(data / "panel.csv", index=False)
    truth = {
        "effect": EFFECT,
        "waves": {u: start_of[u] for u in sorted(start_of)},
        "late_start": {late: "2024-02"},
        "allocation_sha256": allocation.sha256,
    }
    (data / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")


if __name__ == "__main__":
    main()
