"""Generated person-level microdata with known effects, and the same regression on the rows.

``person_rows`` draws persons living in areas, observed over periods (a person panel, with some
persons moving area) or drawn afresh each period (repeated cross-sections), with an area-level
treatment starting in ``start`` (or staggered starts), a person-level covariate that varies
within each area and period, and optional survey weights. ``row_regression`` is the reference:
the weighted least-squares regression on the person rows with area and period dummies (no
demeaning, so it is exact to rounding) and CR1 / HC1 / iid errors with fixest's small-sample
factors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pilotlab.spec import parse_pilot
from pilotlab.spec.models import PilotSpec


def person_rows(
    *,
    areas: int = 24,
    periods: int = 6,
    per_cell: tuple[int, int] = (5, 40),
    treated: int = 8,
    start: int = 3,
    staggered: bool = False,
    effect: float = 2.0,
    panel: bool = True,
    weights: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Person-period rows: ``area``, ``period`` (2001..), ``person``, ``y``, ``x``, ``w``."""
    rng = np.random.default_rng(seed)
    area_fx = rng.normal(0, 2, areas)
    period_fx = rng.normal(0, 1, periods)
    starts = np.full(areas, -1)
    starts[:treated] = start
    if staggered:
        starts[: treated // 2] = start - 1
    size = rng.integers(per_cell[0], per_cell[1] + 1, areas)
    if panel:  # persons followed over time; one in ten moves area once
        home = np.repeat(np.arange(areas), size)
        n_persons = home.size
        area = np.tile(home[:, None], (1, periods))
        movers = rng.random(n_persons) < 0.1
        move_at = rng.integers(1, periods, n_persons)
        new_home = rng.integers(0, areas, n_persons)
        late = np.arange(periods)[None, :] >= move_at[:, None]
        area = np.where(movers[:, None] & late, new_home[:, None], area)
        person = np.repeat(np.arange(n_persons), periods)
        area = area.ravel()
        t = np.tile(np.arange(periods), n_persons)
        keep = rng.random(area.size) < 0.9  # some person-periods are not observed
        person, area, t = person[keep], area[keep], t[keep]
        person_fx = rng.normal(0, 1, n_persons)[person]
    else:  # new persons each period
        counts = rng.integers(per_cell[0], per_cell[1] + 1, (areas, periods))
        area = np.repeat(np.repeat(np.arange(areas), periods), counts.ravel())
        t = np.repeat(np.tile(np.arange(periods), areas), counts.ravel())
        person = np.arange(area.size)
        person_fx = rng.normal(0, 1, area.size)
    x = rng.normal(0, 1, area.size) + 0.3 * area_fx[area]
    d = (starts[area] >= 0) & (t >= starts[area])
    y = (
        10
        + area_fx[area]
        + period_fx[t]
        + 0.5 * x
        + effect * d
        + person_fx
        + rng.normal(0, 1.0 + 0.5 * d, area.size)
    )
    out = pd.DataFrame(
        {
            "area": np.char.add("A", np.char.zfill(area.astype(str), 3)),
            "period": 2001 + t,
            "person": np.char.add("P", person.astype(str)),
            "y": y,
            "x": x,
        }
    )
    if weights:
        out["w"] = rng.uniform(0.5, 3.0, len(out))
    return out


def treated_areas(rows: pd.DataFrame, treated: int) -> list[str]:
    """The ids of the first ``treated`` areas (those ``person_rows`` treats)."""
    return sorted(rows["area"].unique())[:treated]


def micro_pilot(
    path: str = "rows.parquet",
    *,
    treated: list[str],
    start: str | dict[str, str] = "2004",
    estimator: str = "twfe",
    covariates: tuple[str, ...] = (),
    weight: bool = False,
    person: bool = True,
    inference: str = "cluster",
    extra: dict[str, Any] | None = None,
    layout: str = "microdata",
) -> PilotSpec:
    """A pilot file for the generated microdata."""
    treatment: dict[str, Any] = (
        {"adoption": start} if isinstance(start, dict) else {"units": treated, "start": start}
    )
    data: dict[str, Any] = {"path": path, "unit": "area", "time": "period", "layout": layout}
    if weight:
        data["weight"] = "w"
    if person and layout == "microdata":
        data["person"] = "person"
    raw = {
        "id": "micro",
        "title": "Microdata pilot",
        "status": "completed",
        "data": data,
        "treatment": treatment,
        "outcomes": [{"column": "y"}],
        "design": {
            "estimator": estimator,
            "covariates": list(covariates),
            "inference": {"method": inference},
            **(extra or {}),
        },
    }
    return parse_pilot(raw)


def write_partitions(rows: pd.DataFrame, folder: Path, parts: int = 3) -> Path:
    """Write the rows as ``parts`` Parquet files in ``folder`` (split by period)."""
    folder.mkdir(parents=True, exist_ok=True)
    periods = np.sort(rows["period"].unique())
    for i, chunk in enumerate(np.array_split(periods, parts)):
        rows[rows["period"].isin(chunk)].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


def row_regression(
    rows: pd.DataFrame,
    regressors: pd.DataFrame,
    *,
    fixed_effects: bool = True,
    weights: np.ndarray | None = None,
    vcov: str = "cluster",
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and standard errors of ``regressors`` in the regression of ``rows.y`` on
    them, area and period dummies (or an intercept), weighted, with area-clustered CR1 (fixest's
    nested factor), HC1 or iid errors."""
    n = len(rows)
    k = regressors.shape[1]
    area = pd.factorize(rows["area"], sort=True)[0]
    period = pd.factorize(rows["period"], sort=True)[0]
    if fixed_effects:
        A = np.eye(area.max() + 1)[area]
        P = np.eye(period.max() + 1)[period][:, 1:]
        D = np.column_stack([regressors.to_numpy(float), A, P])
        n_fe = A.shape[1] + P.shape[1]
    else:
        D = np.column_stack([regressors.to_numpy(float), np.ones(n)])
        n_fe = 1
    w = np.ones(n) if weights is None else weights
    sw = np.sqrt(w)
    Xw, yw = D * sw[:, None], rows["y"].to_numpy(float) * sw
    Q, R = np.linalg.qr(Xw)
    beta = np.linalg.solve(R, Q.T @ yw)
    bread = np.linalg.inv(R.T @ R)
    e = yw - Xw @ beta
    if vcov == "cluster":
        G = area.max() + 1
        S = np.zeros((G, D.shape[1]))
        np.add.at(S, area, Xw * e[:, None])
        # fixest: area effects are nested in the area clusters and count for one parameter
        K = k + (n_fe - (A.shape[1] - 1 if fixed_effects else 0))
        V = G / (G - 1) * (n - 1) / (n - K) * bread @ S.T @ S @ bread
    elif vcov == "robust":
        K = D.shape[1]
        V = n / (n - K) * bread @ ((Xw * e[:, None] ** 2).T @ Xw) @ bread
    else:
        K = D.shape[1]
        V = (e @ e) / (n - K) * bread
    return beta[:k], np.sqrt(np.diag(V))[:k]
