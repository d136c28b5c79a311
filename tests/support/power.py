"""Shared builders for the power tests: a history panel and a planned pilot around it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot


def history(
    n_units: int = 60, n_periods: int = 20, *, rho: float = 0.5, seed: int = 0, sd: float = 1.0
) -> pd.DataFrame:
    """A history with no treatment effect (one nominal treated unit, effect 0)."""
    sim = make_pilot_panel(
        n_units, n_periods, 1, n_periods - 1, effect=0.0, rho=rho, noise_sd=sd, seed=seed
    )
    return sim.data.drop(columns="true_effect")


def iid_history(n_units: int, n_periods: int, sigma: float, seed: int) -> pd.DataFrame:
    """Unit + period effects + i.i.d. normal errors with SD ``sigma``."""
    rng = np.random.default_rng(seed)
    y = (
        rng.normal(0, 2, (n_units, 1))
        + rng.normal(0, 1, (1, n_periods))
        + rng.normal(0, sigma, (n_units, n_periods))
    )
    return pd.DataFrame(
        {
            "area_code": np.repeat([f"U{i:04d}" for i in range(n_units)], n_periods),
            "period": np.tile(np.arange(2000, 2000 + n_periods), n_units),
            "outcome": y.ravel(),
        }
    )


def planned(**power: Any) -> Any:
    """A planned pilot with no treatment yet; ``power`` are design.power keys."""
    design = power.pop("design", {})
    raw = {
        "id": "plan",
        "title": "A planned pilot",
        "status": "planned",
        "data": {"path": "panel.csv", "unit": "area_code", "time": "period"},
        "treatment": power.pop("treatment", {}),
        "outcomes": [{"column": "outcome", **power.pop("outcome", {})}],
        "design": {
            "estimator": "twfe",
            **design,
            # cluster unless a test asks otherwise (auto would pick the slower wild bootstrap)
            "inference": {"method": "cluster", **design.get("inference", {})},
            "power": power,
        },
    }
    return parse_pilot(raw)
