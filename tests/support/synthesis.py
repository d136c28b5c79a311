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
        "label": metric.split("/")[-1].replace("_", " ").capitalize(),
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


#: Four places: true effects, seeds, policy areas, whether they state costs, and estimators.
PLACES = (
    ("north-employment", -0.5, 1, "employment", True, "did"),
    ("south-employment", -0.3, 2, "employment", True, "did"),
    ("east-welfare", -0.6, 3, "welfare", False, "twfe"),
    ("west-welfare", -0.1, 4, "welfare", True, "twfe"),
)
EXTERNAL_CSV = (
    "id,metric,estimate,std_error,ci_lower,ci_upper,label,evidence_level,source\n"
    "trial-2019,local/claimant_rate,-0.42,,-0.80,-0.04,Published randomised trial (2019),5,"
    "Journal of Examples\n"
)


def place_evaluations() -> list[Evaluation]:
    """The evaluations of :data:`PLACES`."""
    return [
        evaluated(pid, eff, seed, costs=COSTS if costs else None, policy_area=area, estimator=est)
        for pid, eff, seed, area, costs, est in PLACES
    ]


def write_places(folder: Any) -> list[Any]:
    """Write each place's evidence.json (and report.html) into ``folder/<id>/``; return them."""
    from pathlib import Path

    from pilotlab.evidence import evidence_json
    from pilotlab.report import render_report

    out = []
    for ev in place_evaluations():
        d = Path(folder) / ev.pilot.id
        render_report(ev, d / "report.html")
        (d / "evidence.json").write_text(evidence_json(ev), encoding="utf-8")
        out.append(d / "evidence.json")
    return out
