"""Callaway & Sant'Anna, stage 5 -- the clustered multiplier bootstrap.

One set of multiplier draws per cluster (Mammen, Rademacher or Webb) applied to the
cluster-summed influence functions gives the uniform (sup-t) band over event times and the
bootstrap standard errors, intervals and p-values of the four overall aggregations.
"""

from __future__ import annotations

import math

import numpy as np

from pilotlab.distributions import norm_ppf

_BOOT_CHUNK = 256  # bootstrap draws per matrix product


def _bootstrap(
    IF: np.ndarray,
    est: np.ndarray,
    se: np.ndarray,
    dyn_cols: np.ndarray,
    overall_idx: list[int],
    alpha: float,
    replications: int,
    bootstrap_weights: str,
    rng: np.random.Generator,
) -> tuple[float, np.ndarray]:
    """Uniform-band critical value over the event times ``dyn_cols`` (NaN when not run) and the
    bootstrap se, ci_lower, ci_upper and p-value (rows) of the overall aggregations."""
    # multiplier bootstrap (one set of draws): sup-t band over event times, and bootstrap
    # standard errors, intervals and p-values of the four overall aggregations
    crit = math.nan
    boot = np.full((4, 4), np.nan)  # se, ci_lower, ci_upper, p_value per overall aggregation
    if replications > 0:
        cols = np.concatenate([dyn_cols, overall_idx]).astype(np.int64)
        dev = _multiplier_draws(IF[:, cols], replications, bootstrap_weights, rng)
        dd, do = dev[:, : dyn_cols.size], dev[:, dyn_cols.size :]
        use = se[dyn_cols] > 0
        if use.any():
            tmax = np.max(np.abs(dd[:, use]) / se[dyn_cols][use], axis=1)
            crit = float(np.quantile(tmax, 1 - alpha, method="inverted_cdf"))
        iqr = np.subtract(*np.quantile(do, [0.75, 0.25], axis=0))
        b_se = iqr / (norm_ppf(0.75) - norm_ppf(0.25))
        q = np.quantile(np.abs(do), 1 - alpha, axis=0, method="inverted_cdf")
        e_o = est[overall_idx]
        boot[:, 0] = b_se
        boot[:, 1], boot[:, 2] = e_o - q, e_o + q
        boot[:, 3] = (1 + np.sum(np.abs(do) >= np.abs(e_o), axis=0)) / (replications + 1)
    return crit, boot


def _multipliers(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    if kind == "rademacher":
        return rng.integers(0, 2, size=size).astype(np.float64) * 2 - 1
    if kind == "webb":
        vals = np.array([-math.sqrt(1.5), -1, -math.sqrt(0.5), math.sqrt(0.5), 1, math.sqrt(1.5)])
        return vals[rng.integers(0, 6, size=size)]
    s5 = math.sqrt(5)
    p = (s5 + 1) / (2 * s5)
    return np.where(rng.random(size) < p, (1 - s5) / 2, (1 + s5) / 2)


def _multiplier_draws(
    IF: np.ndarray, replications: int, kind: str, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap deviations ``V @ IF`` (draws x parameters) of estimates whose cluster-summed
    influence functions are the columns of ``IF``; multipliers drawn per cluster, in chunks."""
    C = IF.shape[0]
    out = np.empty((replications, IF.shape[1]))
    kind = "mammen" if kind == "auto" else kind
    for start in range(0, replications, _BOOT_CHUNK):
        m = min(_BOOT_CHUNK, replications - start)
        out[start : start + m] = _multipliers(kind, (m, C), rng) @ IF
    return out


def skip_bootstrap(replications: int, n_clusters: int, kind: str, rng: np.random.Generator) -> None:
    """Draw from ``rng`` what a fit with ``n_clusters`` clusters draws for its multiplier
    bootstrap (nothing without replications), without using the draws: a caller that computes
    the fit's estimates another way then reads the stream on from where the fit leaves it."""
    _multiplier_draws(np.zeros((n_clusters, 0)), replications, kind, rng)
