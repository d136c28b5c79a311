"""Small local helpers for the Callaway & Sant'Anna / Bacon tests: build a Panel from a frame.

The foundation's ``pilotlab.data.load_panel`` will replace this once it is on main; the helper
codes units, periods and clusters exactly as a Panel expects and nothing more.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pilotlab.data.panel import CLUSTER, NEVER, TIME, UNIT, WEIGHT, Panel
from tests.support import SHARED_DATA

DATA = SHARED_DATA


def make_panel(
    df: pd.DataFrame,
    *,
    unit: str,
    time: str,
    first_treated: str,
    outcomes: tuple[str, ...],
    covariates: tuple[str, ...] = (),
    cluster: str | None = None,
    weight: str | None = None,
    never_value: object = 0,
    layout: str = "panel",
    comparison: str = "never_treated",
    anticipation: int = 0,
) -> Panel:
    """Code a long DataFrame into a Panel (first treated given in period labels)."""
    periods = np.sort(df[time].unique())
    p_code = {p: i for i, p in enumerate(periods)}
    units, u_code = np.unique(df[unit].to_numpy(), return_inverse=True)
    frame = df[list(outcomes) + list(covariates)].copy().reset_index(drop=True)
    frame[UNIT] = u_code
    frame[TIME] = df[time].map(p_code).to_numpy()
    cl_src = df[cluster].to_numpy() if cluster else df[unit].to_numpy()
    clusters, cl_code = np.unique(cl_src, return_inverse=True)
    frame[CLUSTER] = cl_code
    frame[WEIGHT] = df[weight].to_numpy(float) if weight else 1.0
    ft_row = df[first_treated].to_numpy()
    ft_unit = np.empty(units.size, dtype=object)
    ft_unit[u_code] = ft_row
    first = np.array(
        [NEVER if v == never_value or v not in p_code else p_code[v] for v in ft_unit],
        dtype=np.int64,
    )
    return Panel(
        frame=frame,
        unit_labels=tuple(map(str, units)),
        period_labels=tuple(map(str, periods)),
        cluster_labels=tuple(map(str, clusters)),
        first_treated=first,
        outcomes=outcomes,
        covariates=covariates,
        layout=layout,  # type: ignore[arg-type]
        anticipation=anticipation,
        comparison=comparison,  # type: ignore[arg-type]
        weighted=weight is not None,
    )


def simulate_staggered(
    n_units: int = 400,
    n_periods: int = 8,
    cohorts: tuple[int, ...] = (2, 4, 6),
    never_share: float = 0.25,
    seed: int = 0,
    slope: float = 1.0,
    anticipation_effect: float = 0.0,
) -> tuple[pd.DataFrame, dict[tuple[int, int], float]]:
    """Staggered adoption with dynamic, cohort-specific effects and the true ATT(g,t).

    Periods are 0..T-1; ``g`` is the first treated period (-1 = never). The effect of cohort
    ``g`` at ``t >= g`` is ``1 + slope * (t - g) + 0.25 * g`` (growing with exposure, so TWFE is
    biased); ``anticipation_effect`` is added one period before adoption. Unit effects are
    correlated with the adoption date and there is a common non-linear trend, so a naive
    before/after comparison is biased too.
    """
    rng = np.random.default_rng(seed)
    g = np.where(rng.random(n_units) < never_share, -1, rng.choice(cohorts, n_units))
    u = np.repeat(np.arange(n_units), n_periods)
    t = np.tile(np.arange(n_periods), n_units)
    gu = g[u]
    alpha = rng.normal(size=n_units) + 0.3 * np.where(g < 0, 8, g)
    trend = np.sin(np.arange(n_periods)) + 0.2 * np.arange(n_periods)
    treated = (gu >= 0) & (t >= gu)
    effect = np.where(treated, 1 + slope * (t - gu) + 0.25 * gu, 0.0)
    effect = effect + np.where((gu >= 0) & (t == gu - 1), anticipation_effect, 0.0)
    y = alpha[u] + trend[t] + effect + rng.normal(size=u.size)
    truth = {
        (c, s): (1 + slope * (s - c) + 0.25 * c if s >= c else 0.0)
        for c in cohorts
        for s in range(n_periods)
    }
    df = pd.DataFrame({"unit": u, "time": t, "y": y, "g": gu, "region": u % 23})
    return df, truth


def sim_panel(df: pd.DataFrame, **kw: object) -> Panel:
    """Panel of a :func:`simulate_staggered` frame (never treated coded -1)."""
    return make_panel(
        df, unit="unit", time="time", first_treated="g", outcomes=("y",), never_value=-1, **kw
    )  # type: ignore[arg-type]


def load_via_spec(
    df: pd.DataFrame,
    *,
    unit: str,
    time: str,
    first_treated: str,
    outcomes: tuple[str, ...],
    covariates: tuple[str, ...] = (),
    comparison: str = "never_treated",
    layout: str = "panel",
) -> Panel:
    """Build the Panel through the foundation's loader (pilot-file checks included)."""
    from pilotlab.data import panel_from_frame
    from pilotlab.spec import parse_pilot
    from tests.support import pilot_dict

    spec = parse_pilot(
        pilot_dict(
            data={"path": "data.csv", "unit": unit, "time": time, "layout": layout},
            treatment={"column": first_treated, "comparison": comparison},
            outcomes=[{"column": o} for o in outcomes],
            design={"covariates": list(covariates)},
        )
    )
    return panel_from_frame(df, spec)
