"""Regenerate the example pilots' data (simulated, with known true effects).

Run from the repository root: ``python pilots/make_examples.py``. The true effects are written
beside each data file (``truth.json``) so the estimates in the reports can be checked against them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pilotlab.simulate import make_pilot_panel

HERE = Path(__file__).parent


def employment_support() -> None:
    """6 of 150 areas start intensive employment support in 2022Q1 (quarterly data, 2017-2023)."""
    kw = dict(
        n_units=150,
        n_periods=28,
        n_treated=6,
        start=20,
        freq="quarter",
        first_period="2017Q1",
        seed=11,
        unit_prefix="E0",
    )
    claim = make_pilot_panel(
        effect=lambda e: -0.15 * np.minimum(e + 1, 4),
        noise_sd=0.25,
        unit_sd=1.0,
        trend=-0.02,
        outcome="claimant_rate",
        noise_seed=1,
        **kw,
    )
    emp = make_pilot_panel(
        effect=0.6,
        noise_sd=0.8,
        unit_sd=3.0,
        trend=0.05,
        outcome="employment_rate",
        noise_seed=5,
        **kw,
    )
    wb = make_pilot_panel(
        effect=0.0,
        noise_sd=0.3,
        unit_sd=0.8,
        trend=0.0,
        outcome="wellbeing_score",
        noise_seed=3,
        **kw,
    )
    df = claim.data.drop(columns="true_effect")
    df["claimant_rate"] = (df["claimant_rate"] - 6).round(3)
    df["employment_rate"] = (emp.data["employment_rate"] + 62).round(2)
    df["wellbeing_score"] = (wb.data["wellbeing_score"] - 3).round(2)
    out = HERE / "employment-support" / "data"
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "panel.csv", index=False)
    truth = {
        "treated": list(claim.treated_units),
        "start": claim.start,
        "att": {"claimant_rate": claim.att, "employment_rate": emp.att, "wellbeing_score": 0.0},
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")


def family_hubs() -> None:
    """Family hubs reach 36 of 120 areas in three waves (monthly data, 2021-2024)."""
    sim = make_pilot_panel(
        n_units=120,
        n_periods=48,
        n_treated=36,
        start=[18, 26, 34],
        freq="month",
        first_period="2021-01",
        effect=lambda e: -0.8 - 0.05 * np.minimum(e, 12),
        cohort_effects=[1.2, 1.0, 0.8],
        noise_sd=0.6,
        unit_sd=4.0,
        trend=0.02,
        seed=13,
        unit_prefix="FH",
        outcome="referrals_per_1000",
    )
    df = sim.data.drop(columns="true_effect")
    df["referrals_per_1000"] = (df["referrals_per_1000"] + 20).round(2)
    out = HERE / "family-hubs" / "data"
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "panel.csv", index=False)
    truth = {"adoption": sim.adoption, "att": sim.att, "att_by_event_time": sim.att_by_event_time}
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")


if __name__ == "__main__":
    employment_support()
    family_hubs()
