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


def trial_panel(
    effect: float | dict[int, float] = 0.0,
    seed: int = 0,
    n_units: int = 40,
    frame: pd.DataFrame | None = None,
    covariates: tuple[str, ...] = (),
    alloc_seed: int | None = None,
    **assignment: Any,
) -> Any:
    """A loaded randomised panel with ``effect`` added to treated units from the start on
    (a number for every treated arm, or code -> effect). ``seed`` generates the data,
    ``alloc_seed`` (default 7) the allocation."""
    import warnings

    from pilotlab.data.load import load_panel
    from pilotlab.data.panel import NEVER
    from pilotlab.spec.load import parse_pilot

    df = trial_frame(n_units=n_units, seed=seed) if frame is None else frame
    if alloc_seed is not None:
        assignment["seed"] = alloc_seed
    raw = trial_pilot(**assignment)
    if covariates:
        raw["design"] = {"covariates": list(covariates)}
    spec = parse_pilot(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = load_panel(spec, df)
    alloc = panel.allocation
    codes = alloc.codes_of(panel.unit_labels)
    eff = effect if isinstance(effect, dict) else {k: effect for k in range(1, alloc.n_groups)}
    per_unit = np.array([eff.get(int(c), 0.0) for c in codes])
    f = panel.frame.copy()
    post = panel.time >= panel.first_treated[panel.unit]
    post &= panel.first_treated[panel.unit] != NEVER
    f["outcome"] = f["outcome"] + np.where(post, per_unit[panel.unit], 0.0)
    return panel.with_frame(f)
