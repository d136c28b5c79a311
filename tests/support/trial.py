"""Randomised-pilot test data: a small panel with strata, a pre-period outcome and a covariate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tests.support import pilot_dict


def trial_frame(
    n_units: int = 24,
    periods: tuple[str, ...] = ("2019Q1", "2019Q2", "2019Q3", "2019Q4", "2020Q1", "2020Q2"),
    n_strata: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """Long data: units A0001..; region r0..; outcome with unit effects; covariate x; eligible."""
    rng = np.random.default_rng(seed)
    units = [f"A{i + 1:04d}" for i in range(n_units)]
    level = rng.normal(10, 2, n_units)
    x = rng.normal(0, 1, n_units)
    rows = []
    for i, u in enumerate(units):
        for t, p in enumerate(periods):
            rows.append(
                {
                    "area_code": u,
                    "period": p,
                    "region": f"r{i % n_strata}",
                    "outcome": level[i] + 0.5 * x[i] + 0.1 * t + rng.normal(0, 0.5),
                    "x": x[i],
                    "eligible": int(i % 5 != 4),
                }
            )
    return pd.DataFrame(rows)


def trial_pilot(**assignment: Any) -> dict[str, Any]:
    """A pilot file dict with ``assignment`` (defaults: complete, 6 treated, start 2020Q1)."""
    a: dict[str, Any] = {"scheme": "complete", "treated": 6, "start": "2020Q1", "seed": 7}
    a.update(assignment)
    spec = pilot_dict(assignment={k: v for k, v in a.items() if v is not None})
    del spec["treatment"]
    return spec
