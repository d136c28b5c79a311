"""Generated staggered panels with known heterogeneous effects, shared by the imputation and
Sun & Abraham tests and their benchmark, and the same data in the peers' layout."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pilotlab.data import panel_from_frame
from pilotlab.data.panel import NEVER, Panel
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict


def staggered_panel(
    seed: int = 3,
    n_units: int = 60,
    n_periods: int = 12,
    n_treated: int = 40,
    starts: tuple[int, ...] = (3, 6, 9),
    noise_sd: float = 0.5,
    slope: float = 0.6,
    comparison: str = "never_treated",
) -> tuple[Panel, float]:
    """Cohorts starting at ``starts`` with effects ``1 + slope * e`` (growing with time since
    the start, so a two-way fixed-effects regression is biased); returns the panel and the
    true average effect on treated unit-periods."""
    sim = make_pilot_panel(
        n_units,
        n_periods,
        n_treated,
        list(starts),
        effect=lambda e: 1.0 + slope * e,
        noise_sd=noise_sd,
        seed=seed,
    )
    spec = parse_pilot(pilot_dict(treatment={"adoption": sim.adoption, "comparison": comparison}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(sim.data, spec), sim.att


def peer_frame(panel: Panel, outcome: str = "outcome") -> pd.DataFrame:
    """The panel as the peers read it: ``unit``, ``t`` (1-based), ``ft`` (first treated period,
    0 = never), ``w`` (weight) and the outcome and covariate columns."""
    ft = np.asarray(panel.first_treated, dtype=np.int64)
    ft_unit = np.where(ft == NEVER, 0, ft + 1)
    df = pd.DataFrame(
        {
            "unit": panel.unit,
            "t": panel.time + 1,
            "ft": ft_unit[panel.unit],
            "cl": panel.cluster,
            "w": panel.weight,
        }
    )
    for c in panel.frame.columns:
        if not str(c).startswith("_"):
            df[c] = panel.frame[c].to_numpy()
    df[outcome] = panel.y(outcome)
    return df
