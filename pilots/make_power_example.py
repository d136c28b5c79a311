"""Regenerate pilots/attendance-plan/data/history.csv: the history of a planned pilot.

Run from the repository root: ``python pilots/make_power_example.py``. The data are simulated
(unit and period effects, AR(1) errors, no treatment) so the example is runnable as it is.
"""

from __future__ import annotations

from pathlib import Path

from pilotlab.simulate import make_pilot_panel

HERE = Path(__file__).resolve().parent / "attendance-plan" / "data"


def main() -> None:
    sim = make_pilot_panel(
        120,
        24,
        1,
        23,
        effect=0.0,
        rho=0.6,
        noise_sd=0.8,
        unit_sd=1.5,
        seed=2024,
        unit_prefix="LA",
        outcome="absence_rate",
    )
    data = sim.data.drop(columns="true_effect")
    data["absence_rate"] = data["absence_rate"].round(3)
    HERE.mkdir(parents=True, exist_ok=True)
    data.to_csv(HERE / "history.csv", index=False)


if __name__ == "__main__":
    main()
