"""Shared fixtures for the synthetic control / synthetic DiD tests (data, panels, simulations)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pilotlab.data import Panel, panel_from_frame
from pilotlab.spec.models import PilotSpec
from tests.support import shared_data


def make_panel(
    df: pd.DataFrame,
    *,
    unit: str = "unit",
    time: str = "time",
    outcome: str = "y",
    units: list[str] | None = None,
    start: str | int | None = None,
    adoption: dict[str, str | int] | None = None,
    comparison: str | list[str] = "never_treated",
    exclude: tuple[str, ...] = (),
    predictors: tuple[str, ...] = (),
    anticipation: int = 0,
) -> Panel:
    """A Panel from a long DataFrame through the real loader (``panel_from_frame``)."""
    treatment: dict[str, object] = {
        "comparison": comparison,
        "exclude": list(exclude),
        "anticipation": anticipation,
    }
    if adoption is not None:
        treatment["adoption"] = {str(k): str(v) for k, v in adoption.items()}
    else:
        treatment["units"] = list(units or [])
        treatment["start"] = str(start)
    spec = PilotSpec.model_validate(
        {
            "id": "synth-test",
            "title": "synthetic test",
            "data": {"path": "data.csv", "unit": unit, "time": time},
            "treatment": treatment,
            "outcomes": [{"column": outcome}],
            "design": {"synthetic": {"predictors": list(predictors)}},
        }
    )
    return panel_from_frame(df, spec)


def prop99_frame() -> pd.DataFrame:
    return pd.read_csv(shared_data("california_prop99.csv"))


def prop99_panel() -> Panel:
    return make_panel(
        prop99_frame(),
        unit="State",
        time="Year",
        outcome="PacksPerCapita",
        units=["California"],
        start=1989,
    )


def factor_frame(
    *,
    n_units: int = 80,
    n_periods: int = 30,
    n_treated: int = 1,
    t0: int = 20,
    effect: float = -3.0,
    seed: int = 0,
    noise: float = 0.5,
    staggered: tuple[int, ...] = (),
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Interactive fixed-effects panel ``y = a_i + b_t + l_i' f_t + e`` with a constant effect.

    Treated units load more on a trending factor than the average donor, so plain DiD is biased
    while a weighted comparison can remove the bias; their loadings stay inside the donors' range.
    Returns the long frame and each treated unit's first treated period index.
    """
    rng = np.random.default_rng(seed)
    rank = 3
    load = rng.normal(size=(n_units, rank))
    load[:n_treated, 0] = rng.uniform(0.2, 0.6, n_treated)  # selection on the trend factor
    trend = np.linspace(0.0, 3.0, n_periods)
    factors = np.column_stack(
        [trend, np.sin(np.arange(n_periods) / 3.0), rng.normal(size=n_periods).cumsum() / 3]
    )
    alpha = rng.normal(0, 2, n_units)
    beta = rng.normal(0, 1, n_periods).cumsum() / 2
    y = 20 + alpha[:, None] + beta[None, :] + load @ factors.T
    y += rng.normal(0, noise, (n_units, n_periods))
    starts = {}
    for i in range(n_treated):
        s = staggered[i % len(staggered)] if staggered else t0
        y[i, s:] += effect
        starts[f"u{i:03d}"] = s
    u = np.repeat(np.arange(n_units), n_periods)
    t = np.tile(np.arange(n_periods), n_units)
    df = pd.DataFrame({"unit": [f"u{i:03d}" for i in u], "time": 2000 + t, "y": y.ravel()})
    return df, starts
