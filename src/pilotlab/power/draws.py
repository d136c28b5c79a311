"""Placebo pilots drawn from a history: which units are pseudo-treated, from when.

A placebo pilot is a pseudo-treated set of the planned size, drawn at random from the eligible
units (or the named units held fixed), and a pseudo start date that leaves enough periods before
and the planned number after. These are the only random draws of a placebo pilot's design; the
re-assignments of its randomisation test come from :mod:`pilotlab.inference.permutation`.
"""

from __future__ import annotations

import numpy as np

from pilotlab.data.assignment import random_subsets
from pilotlab.data.panel import NEVER, Panel

__all__ = [
    "draw_cluster_placebos",
    "draw_placebos",
    "placebo_panel",
    "placebo_seeds",
    "unit_clusters",
]


def draw_placebos(
    rng: np.random.Generator,
    *,
    n_units: int,
    n_periods: int,
    n_treated: int,
    post: int,
    min_pre: int,
    simulations: int,
    pool: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw placebo pilots: a boolean ``simulations x n_units`` treated matrix and start indices.

    Treated sets are ``n_treated`` units drawn without replacement from ``pool`` (default: every
    unit), or the ``fixed`` unit codes in every draw. Starts are uniform on
    ``[min_pre, n_periods - post]`` so each placebo keeps ``min_pre`` periods before and ``post``
    after (later periods are dropped from that placebo's panel).
    """
    starts = rng.integers(min_pre, n_periods - post + 1, size=simulations)
    A = np.zeros((simulations, n_units), dtype=bool)
    if fixed is not None:
        A[:, fixed] = True
        return A, starts
    pool = np.arange(n_units) if pool is None else pool
    picks = random_subsets(pool.size, n_treated, simulations, rng)
    A[np.repeat(np.arange(simulations), n_treated), pool[picks].ravel()] = True
    return A, starts


def unit_clusters(panel: Panel) -> np.ndarray | None:
    """``(N,)`` cluster code of each unit when the panel's clusters are coarser than its units
    and contain whole units (``None`` when each unit is its own cluster)."""
    if panel.n_clusters >= panel.n_units:
        return None
    out = np.full(panel.n_units, -1, dtype=np.int64)
    out[panel.unit] = panel.cluster
    if not np.array_equal(out[panel.unit], panel.cluster) or (out < 0).any():
        return None  # a unit in two clusters: not nested
    return out


def draw_cluster_placebos(
    rng: np.random.Generator,
    *,
    cluster_of: np.ndarray,
    n_clusters_treated: int,
    n_periods: int,
    post: int,
    min_pre: int,
    simulations: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Placebo pilots that treat whole clusters: ``n_clusters_treated`` clusters drawn without
    replacement, every unit of them treated (units ``x`` clusters as :func:`draw_placebos`)."""
    G = int(cluster_of.max()) + 1
    chosen, starts = draw_placebos(
        rng,
        n_units=G,
        n_periods=n_periods,
        n_treated=n_clusters_treated,
        post=post,
        min_pre=min_pre,
        simulations=simulations,
    )
    return chosen[:, cluster_of], starts


def placebo_panel(history: Panel, treated: np.ndarray, start: int, post: int) -> Panel:
    """The history as one placebo pilot sees it: ``treated`` units start at period ``start``
    and the panel ends ``post`` periods later."""
    ft = np.where(treated, start, NEVER).astype(np.int64)
    return history.truncate_periods(start + post - 1).with_first_treated(ft)


def placebo_seeds(seed_seq: np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """One stream per placebo pilot, so results do not depend on n_jobs; spawned from a copy so
    that the caller's SeedSequence is left as it was (the same call gives the same streams)."""
    return np.random.SeedSequence(seed_seq.entropy, spawn_key=seed_seq.spawn_key).spawn(n)
