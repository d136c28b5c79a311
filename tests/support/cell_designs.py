"""Generated panels for the stacked, triple-difference and switching designs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pilotlab.data import panel_from_frame
from pilotlab.data.panel import Panel
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict


def ddd_frame(
    seed: int,
    n_areas: int = 40,
    n_periods: int = 8,
    n_treated: int = 12,
    starts: tuple[int, ...] = (5,),
    effect: float = 2.0,
    area_effect: float = 0.8,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Areas x eligible/ineligible x periods: area x period shocks hit both groups; only eligible
    people of pilot areas gain ``effect`` (plus ``area_effect`` for everyone in pilot areas,
    which a plain DiD on the eligible would wrongly add)."""
    rng = np.random.default_rng(seed)
    A, T = n_areas, n_periods
    a = np.repeat(np.arange(A), T * 2)
    t = np.tile(np.repeat(np.arange(T), 2), A)
    g = np.tile([0, 1], A * T)
    start = np.full(A, 10**6)
    start[:n_treated] = np.resize(np.asarray(starts), n_treated)
    on = t >= start[a]
    y = (
        rng.normal(0, 1, A)[a]
        + 0.5 * g
        + 0.1 * t * g
        + rng.normal(0, 1, (A, T))[a, t]
        + area_effect * on
        + effect * (on & (g == 1))
        + rng.normal(0, 0.5, a.size)
    )
    frame = pd.DataFrame(
        {"area": [f"A{i:03d}" for i in a], "year": 2010 + t, "elig": g, "outcome": y}
    )
    adoption = {f"A{i:03d}": str(2010 + int(start[i])) for i in range(n_treated)}
    return frame, adoption


def ddd_panel(seed: int, **kw: object) -> Panel:
    frame, adoption = ddd_frame(seed, **kw)  # type: ignore[arg-type]
    spec = parse_pilot(
        pilot_dict(
            data={"path": "d.csv", "unit": "area", "time": "year", "group": "elig"},
            treatment={"adoption": adoption},
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(frame, spec)


def switching_frame(
    seed: int, n_units: int = 120, n_periods: int = 8, effect: float = 2.0
) -> pd.DataFrame:
    """Units switch on (from 0) or off (from 1) once, at random periods; the effect of being
    treated is ``effect`` (a unit's trend is shared with its never-switching peers)."""
    rng = np.random.default_rng(seed)
    N, T = n_units, n_periods
    base = (rng.random(N) < 0.3).astype(int)
    switch = np.where(rng.random(N) < 0.7, rng.integers(2, T, N), T)
    t = np.arange(T)[None, :]
    D = np.where(t >= switch[:, None], 1 - base[:, None], base[:, None])
    Y = rng.normal(0, 2, N)[:, None] + 0.1 * t + effect * D + rng.normal(0, 0.5, (N, T))
    return pd.DataFrame(
        {
            "area": np.repeat([f"U{i:03d}" for i in range(N)], T),
            "year": np.tile(2010 + np.arange(T), N),
            "treated": D.reshape(-1),
            "outcome": Y.reshape(-1),
        }
    )


def switching_panel(seed: int, **kw: int) -> Panel:
    spec = parse_pilot(
        pilot_dict(
            data={"path": "d.csv", "unit": "area", "time": "year"},
            treatment={"indicator": "treated"},
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(switching_frame(seed, **kw), spec)
