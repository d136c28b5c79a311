"""Data-generating processes with known effects, for tests, examples and documentation.

``make_pilot_panel`` draws a long panel of areas x periods with unit and period effects, a common
trend, AR(1) errors and a treatment effect that may vary with time since adoption and by cohort, so
that every estimator can be checked against the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.signal import lfilter

__all__ = ["SimulatedPilot", "make_pilot_panel", "period_labels"]

Frequency = Literal["year", "quarter", "month"]


def period_labels(first: str, n: int, freq: Frequency) -> list[str]:
    """``n`` consecutive period labels starting at ``first`` ("2015", "2015Q1", "2015-01")."""
    if freq == "year":
        y0 = int(first)
        return [str(y0 + i) for i in range(n)]
    if freq == "quarter":
        y, q = int(first[:4]), int(first[-1])
        k0 = y * 4 + q - 1
        return [f"{(k0 + i) // 4}Q{(k0 + i) % 4 + 1}" for i in range(n)]
    y, m = int(first[:4]), int(first[5:7])
    k0 = y * 12 + m - 1
    return [f"{(k0 + i) // 12}-{(k0 + i) % 12 + 1:02d}" for i in range(n)]


@dataclass(frozen=True)
class SimulatedPilot:
    """A simulated pilot: long data plus the truth it was generated from."""

    data: pd.DataFrame
    treated_units: tuple[str, ...]
    adoption: dict[str, str]  # unit -> first treated period label
    att: float  # true average effect on treated unit-periods after adoption
    att_by_event_time: dict[int, float]

    @property
    def start(self) -> str:
        """Common start label (first adoption period)."""
        return min(
            self.adoption.values(), key=lambda p: list(self.data["period"].unique()).index(p)
        )


def make_pilot_panel(
    n_units: int = 150,
    n_periods: int = 24,
    n_treated: int = 6,
    start: int | list[int] = 16,
    effect: float | Callable[[np.ndarray], np.ndarray] = 1.0,
    *,
    freq: Frequency = "quarter",
    first_period: str = "2018Q1",
    rho: float = 0.5,
    noise_sd: float = 1.0,
    unit_sd: float = 2.0,
    trend: float = 0.05,
    cohort_effects: list[float] | None = None,
    selection_on_level: float = 0.0,
    seed: int = 0,
    noise_seed: int | None = None,
    unit_prefix: str = "A",
    outcome: str = "outcome",
) -> SimulatedPilot:
    """Simulate a pilot panel with a known effect.

    Parameters
    ----------
    n_units, n_periods, n_treated
        Panel size and number of treated units.
    start
        First treated period index; a list gives staggered cohorts, assigned to treated units in
        turn (cohort sizes as equal as possible).
    effect
        Constant effect, or a function of event time (array, 0 = first treated period) returning
        the effect at each event time.
    cohort_effects
        Optional multiplier of the effect per cohort (heterogeneity across cohorts).
    selection_on_level
        Treated units' fixed effects are shifted by this (selection on levels is fine for DiD).
    rho
        AR(1) coefficient of the idiosyncratic errors (serial correlation).
    seed
        Seed of the random generator; the same arguments give the same panel.
    noise_seed
        Separate seed for the outcome noise (default: derived from ``seed``), so several
        outcomes can be drawn for the same treated units and periods.
    """
    rng = np.random.default_rng(seed)
    units = np.array([f"{unit_prefix}{i:04d}" for i in range(n_units)])
    labels = period_labels(first_period, n_periods, freq)
    starts = [start] if isinstance(start, int) else list(start)
    treated_idx = np.sort(rng.choice(n_units, size=n_treated, replace=False))
    first = np.full(n_units, -1)
    first[treated_idx] = np.array(starts)[np.arange(n_treated) % len(starts)]
    mult = np.ones(n_units)
    if cohort_effects is not None:
        cohort_pos = {s: j for j, s in enumerate(starts)}
        mult[treated_idx] = [cohort_effects[cohort_pos[s]] for s in first[treated_idx]]

    rng = np.random.default_rng(noise_seed) if noise_seed is not None else rng
    alpha = rng.normal(0, unit_sd, n_units) + selection_on_level * (first >= 0)
    gamma = trend * np.arange(n_periods) + rng.normal(0, 0.3, n_periods)
    shocks = rng.normal(0, noise_sd, (n_units, n_periods))
    shocks[:, 0] /= np.sqrt(1 - rho**2) if abs(rho) < 1 else 1.0  # stationary start
    eps = lfilter([1.0], [1.0, -rho], shocks, axis=1)  # AR(1) along periods, every unit at once
    t_grid = np.arange(n_periods)[None, :]
    event_time = np.where(first[:, None] >= 0, t_grid - first[:, None], -(10**6))
    on = event_time >= 0
    eff_fn = effect if callable(effect) else (lambda e: np.full(e.shape, float(effect)))
    tau = np.where(on, eff_fn(np.maximum(event_time, 0)) * mult[:, None], 0.0)
    y = 10 + alpha[:, None] + gamma[None, :] + eps + tau
    population = rng.integers(50_000, 400_000, n_units)

    data = pd.DataFrame(
        {
            "area_code": np.repeat(units, n_periods),
            "period": np.tile(labels, n_units),
            outcome: y.ravel(),
            "population": np.repeat(population, n_periods),
            "true_effect": tau.ravel(),
        }
    )
    adoption = {str(units[i]): labels[first[i]] for i in treated_idx}
    by_e = {int(e): float(tau[on & (event_time == e)].mean()) for e in np.unique(event_time[on])}
    return SimulatedPilot(
        data=data,
        treated_units=tuple(str(u) for u in units[treated_idx]),
        adoption=adoption,
        att=float(tau[on].mean()),
        att_by_event_time=by_e,
    )
