"""Small local helpers for the Callaway & Sant'Anna / Bacon tests: build a Panel from a frame.

The foundation's ``pilotlab.data.load_panel`` will replace this once it is on main; the helper
codes units, periods and clusters exactly as a Panel expects and nothing more.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pilotlab.data.panel import CLUSTER, NEVER, TIME, UNIT, WEIGHT, Panel

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
