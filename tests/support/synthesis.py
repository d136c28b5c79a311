"""Pilots that name a framework metric and state their costs (simulated, known effects)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pilotlab
from pilotlab.results import Evaluation
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot

FIXED_TIME = "2026-01-01T00:00:00Z"

COSTS: dict[str, Any] = {
    "currency": "GBP",
    "price_year": 2024,
    "one_off": 50_000,
    "per_period": 10_000,
    "basis": "per_unit",
    "periods_per_year": 4,
    "horizon_years": 10,
    "benefit_years": 3,
    "outcome_scale": 1000,
    "optimism_bias": 0.2,
}


def pilot_raw(
    pid: str,
    *,
    metric: str = "local/claimant_rate",
    policy_area: str = "employment",
    costs: dict[str, Any] | None = None,
    better: str | None = None,
    estimator: str = "did",
) -> dict[str, Any]:
    """A pilot file (as a mapping) for ``evaluated``; ``treatment`` is filled in there."""
    outcome: dict[str, Any] = {
        "column": "y",
        "label": "Claimant count rate",
        "primary": True,
        "metric": metric,
    }
    if better is not None:
        outcome["better"] = better
    raw: dict[str, Any] = {
        "id": pid,
        "title": f"Pilot {pid}",
        "status": "completed",
        "policy_area": policy_area,
        "data": {"path": "data.csv", "unit": "area_code", "time": "period"},
        "treatment": {"units": ["x"], "start": "2020Q1"},
        "outcomes": [outcome],
        "design": {"estimator": estimator, "inference": {"method": "cluster"}},
    }
    if costs is not None:
        raw["costs"] = costs
    return raw


def evaluated(
    pid: str, effect: float, seed: int, *, costs: dict[str, Any] | None = None, **kw: Any
) -> Evaluation:
    """Evaluate a simulated pilot: 40 areas, 5 treated, quarterly, true effect ``effect``."""
    sim = make_pilot_panel(
        40, 16, 5, 10, effect, freq="quarter", first_period="2018Q1", seed=seed,
        outcome="y", noise_sd=0.3, unit_sd=1.0,
    )  # fmt: skip
    raw = pilot_raw(pid, costs=costs, **kw)
    raw["treatment"] = {"units": list(sim.treated_units), "start": sim.start}
    ev = pilotlab.evaluate(parse_pilot(raw), data=sim.data)
    return dataclasses.replace(ev, generated_at=FIXED_TIME)
