"""Clean-comparison cell differences in differences, shared by the stacked and triple-difference
estimators.

For each start cohort ``a`` a sub-experiment keeps the cohort's units and its clean comparison
units (never treated, or, with ``comparison: not_yet_treated``, first treated only after the
sub-experiment's window ends) over the event window ``a - pre .. a + post``. Every effect is a
linear combination of weighted cell means ``ybar[s, d, e]`` (sub-experiment ``s``, treated
``d``, event time ``e``):

    DiD[s, e] = (ybar[s,1,e] - ybar[s,1,ref]) - (ybar[s,0,e] - ybar[s,0,ref])

and the event-time effect ``delta_e`` averages the sub-experiments' ``DiD[s, e]`` with the
treated shares of Wing, Freedman & Hollingsworth's corrective weights (each sub-experiment
counts as its treated observations, however many comparison units it has). On a balanced panel
with the window trimmed to cohorts that reach all of it, this is exactly their Q-weighted
stacked regression's coefficient.

Standard errors come from the influence function of the cell means, summed within clusters
(a unit that is a clean comparison in several sub-experiments contributes to each, in one
cluster sum), each sub-experiment's treated and comparison group scaled by ``m / (m - 1)``
(``m`` its clusters: the unbiased two-sample variance, where the plug-in is too small for
small cohorts), with a t reference of Welch-Satterthwaite degrees of freedom over the
clusters' roles (start cohorts and never treated; t(G-1) when every role is large, fewer when
a small cohort carries most of the variance); the multiplier (wild) bootstrap re-weights the same
cluster sums. Everything is ``np.bincount`` and one sparse product: no loop
over units, periods or draws (only over start cohorts, a handful).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse

from pilotlab.estimators._regression import interval
from pilotlab.exceptions import EstimationError

__all__ = ["CellFit", "Summary", "cell_fit", "summarise"]


@dataclass(frozen=True)
class CellFit:
    """The cell means of a stacked design and the cluster sums of their influence functions."""

    cohorts: np.ndarray  # (S,) start period index of each kept sub-experiment
    event_times: np.ndarray  # (E,) event times -pre..post (the reference among them)
    reference: int
    mean: np.ndarray  # (S, 2, E) weighted cell means (NaN where empty)
    weight: np.ndarray  # (S, 2, E) summed weights of the cells
    n_treated: np.ndarray  # (S,) units of each cohort
    n_control: np.ndarray  # (S,) clean comparison units of each sub-experiment
    scores: sparse.csr_matrix  # (G, S*2*E) per cluster: sum of w * (y - cell mean)
    n_clusters: int
    stacked_rows: int
    roles: np.ndarray  # (G,) start cohort of each cluster (its earliest), for the df

    @property
    def did(self) -> np.ndarray:
        """``(S, E)`` difference in differences of each sub-experiment and event time."""
        j = int(np.searchsorted(self.event_times, self.reference))
        gap = self.mean[:, 1, :] - self.mean[:, 0, :]
        out: np.ndarray = gap - gap[:, j : j + 1]
        return out

    @property
    def treated_weight(self) -> np.ndarray:
        """``(S, E)`` treated weight of each DiD cell (0 where it is not estimable)."""
        ok = np.isfinite(self.did)
        out: np.ndarray = np.where(ok, self.weight[:, 1, :], 0.0)
        return out

    def contrast(self, omega: np.ndarray) -> np.ndarray:
        """The cell-mean coefficients ``K`` (``k x S*2*E``) of estimands ``sum omega * DiD``
        (``omega``: ``k x S x E``, zero where a DiD cell is absent)."""
        j = int(np.searchsorted(self.event_times, self.reference))
        k = omega.shape[0]
        K = np.zeros((k, *self.mean.shape))
        K[:, :, 1, :] += omega
        K[:, :, 0, :] -= omega
        K[:, :, 1, j] -= omega.sum(axis=2)
        K[:, :, 0, j] += omega.sum(axis=2)
        return K.reshape(k, -1)

    def estimate(self, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Estimates ``sum omega * DiD`` and their cluster sums of influence (``G x k``)."""
        did = np.where(np.isfinite(self.did), self.did, 0.0)
        est = np.einsum("kse,se->k", omega, did)
        K = self.contrast(omega)
        w = self.weight.reshape(-1)
        scale = np.where(w > 0, 1.0 / np.where(w > 0, w, 1.0), 0.0)
        S = np.asarray(self.scores @ (K * scale).T)
        return est, S


def cell_fit(
    y: np.ndarray,
    w: np.ndarray,
    unit: np.ndarray,
    time: np.ndarray,
    cluster: np.ndarray,
    first_treated: np.ndarray,
    n_periods: int,
    *,
    window: tuple[int, int],
    anticipation: int = 0,
    comparison: Literal["never_treated", "not_yet_treated"] = "never_treated",
    trim: bool = False,
    key: str = "design.window",
    rectangular: bool = False,
) -> CellFit:
    """Cell means of every sub-experiment (see the module docstring).

    ``first_treated`` is per unit (:data:`~pilotlab.data.panel.NEVER` for never treated);
    rows are observations (``y`` finite). ``window = (pre, post)`` bounds the event times;
    with ``trim`` only cohorts whose whole window lies in the data are kept. ``rectangular``:
    rows are sorted by unit then period with every period present, so a sub-experiment's rows
    are indexed directly (``unit * n_periods + period``) instead of by masks over all rows.
    """
    pre, post = window
    ref = -1 - anticipation
    pre = max(pre, -ref)
    events = np.arange(-pre, post + 1)
    E = events.size
    treated_units = first_treated < n_periods
    cohorts_all = np.unique(first_treated[treated_units])
    starts_eff = first_treated - anticipation  # first period affected (NEVER stays huge)
    kept: list[int] = []
    n_tr: list[int] = []
    n_co: list[int] = []
    rows_parts: list[np.ndarray] = []
    cell_parts: list[np.ndarray] = []
    row_cohort = first_treated[unit] if not rectangular else first_treated
    for a in cohorts_all.tolist():  # one pass per start cohort (a handful)
        lo, hi = max(-pre, -a), min(post, n_periods - 1 - a)
        if trim and (lo > -pre or hi < post):
            continue
        if ref < lo or hi < ref:
            continue
        tr = first_treated == a
        co = ~treated_units if comparison == "never_treated" else starts_eff > a + hi
        co &= ~tr
        if not co.any():
            continue
        in_unit = tr | co
        s = len(kept)
        if rectangular:
            members = np.flatnonzero(in_unit)
            e_win = np.arange(lo, hi + 1)
            sel = (members[:, None] * n_periods + (a + e_win)[None, :]).reshape(-1)
            d = np.repeat(tr[members].astype(np.int64), e_win.size)
            cell = (s * 2 + d) * E + np.tile(e_win + pre, members.size)
        else:
            e_row = time - a
            sel = np.flatnonzero(in_unit[unit] & (e_row >= lo) & (e_row <= hi))
            d = (row_cohort[sel] == a).astype(np.int64)
            cell = (s * 2 + d) * E + (e_row[sel] + pre)
        if sel.size == 0:
            continue
        rows_parts.append(sel)
        cell_parts.append(cell)
        kept.append(a)
        n_tr.append(int(tr.sum()))
        n_co.append(int(co.sum()))
    if not kept:
        reach = ", ".join(
            f"{int(a)} period(s) before and {n_periods - 1 - int(a)} after" for a in cohorts_all[:3]
        )
        raise EstimationError(
            f"{key}: no start cohort has clean comparison units over an event window of "
            f"{pre} period(s) before and {post} after its start"
            + (" inside the data (design.options.trim: true)" if trim else "")
            + f"; the cohorts' data reach {reach}. Shorten design.window, set "
            "design.options.trim: false, or add comparison units"
        )
    rows = np.concatenate(rows_parts)
    cells = np.concatenate(cell_parts)
    S_n = len(kept)
    C = S_n * 2 * E
    ws = w[rows]
    ys = y[rows]
    W = np.bincount(cells, weights=ws, minlength=C)
    sums = np.bincount(cells, weights=ws * ys, minlength=C)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(W > 0, sums / np.where(W > 0, W, 1.0), np.nan)
    u = ws * (ys - np.nan_to_num(mean)[cells])
    G = int(cluster.max()) + 1
    M = sparse.csr_matrix((u, (cluster[rows], cells)), shape=(G, C))
    M.sum_duplicates()
    # Small-sample factor m / (m - 1) for each sub-experiment's treated and comparison group
    # (m: its clusters), so that a difference of two means gets the two unbiased variances of
    # the two-sample formula rather than the plug-in's, which is too small for small cohorts.
    m = np.diff(M.tocsc().indptr).reshape(len(kept), 2, E).max(axis=2).astype(float)
    factor = np.sqrt(np.where(m > 1, m / np.maximum(m - 1, 1), 1.0))
    M = (M @ sparse.diags(np.repeat(factor.reshape(-1), E))).tocsr()
    roles = np.full(G, np.iinfo(np.int64).max, dtype=np.int64)
    cluster_of_unit = np.zeros(first_treated.size, dtype=np.int64)
    cluster_of_unit[unit] = cluster  # units lie within clusters: one pass over units, not rows
    np.minimum.at(roles, cluster_of_unit, first_treated)
    return CellFit(
        roles=roles,
        cohorts=np.asarray(kept, dtype=np.int64),
        event_times=events,
        reference=ref,
        mean=mean.reshape(S_n, 2, E),
        weight=W.reshape(S_n, 2, E),
        n_treated=np.asarray(n_tr),
        n_control=np.asarray(n_co),
        scores=M,
        n_clusters=G,
        stacked_rows=int(rows.size),
    )


@dataclass(frozen=True)
class Summary:
    """Standard errors, intervals and p-values of estimands from their cluster sums."""

    estimate: np.ndarray
    std_error: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    p_value: np.ndarray
    cov: np.ndarray
    scores: np.ndarray  # (G, k) scaled so that cov = scores' scores
    method: str
    df: int


def summarise(
    est: np.ndarray,
    S: np.ndarray,
    alpha: float,
    *,
    method: str = "cluster",
    rng: np.random.Generator | None = None,
    replications: int = 999,
    weights: str = "auto",
    small_sample: bool = True,
    roles: np.ndarray | None = None,
) -> Summary:
    """Cluster-robust (CR1-type ``G/(G-1)``, unless ``small_sample`` is false) inference with a
    t(G-1) reference, or the multiplier bootstrap of the same cluster sums
    (``method="wild_bootstrap"``: symmetric intervals from the bootstrap quantile of
    ``|theta*|`` and p-values against zero)."""
    G = S.shape[0]
    if G < 2:
        raise EstimationError("the design has a single cluster, so no standard error exists")
    Ss = S * np.sqrt(G / (G - 1)) if small_sample else S
    cov = Ss.T @ Ss
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    df = np.full(est.size, G - 1)
    if roles is not None:
        df = welch_df(Ss, roles)
    lo, hi, p = (np.empty_like(est) for _ in range(3))
    for j in range(est.size):  # a few dozen estimands
        lo[j], hi[j], p[j] = interval(float(est[j]), float(se[j]), int(df[j]), alpha)
    if method == "wild_bootstrap":
        assert rng is not None
        kind = weights if weights != "auto" else ("webb" if G < 12 else "rademacher")
        abs_draws = np.empty((replications, est.size))
        block = max(1, min(replications, 2_000_000 // max(G, 1)))
        for b0 in range(0, replications, block):  # blocks of draws bound the memory
            v = _multipliers(rng, kind, (min(block, replications - b0), G))
            abs_draws[b0 : b0 + v.shape[0]] = np.abs(v @ Ss)
        q = np.quantile(abs_draws, 1 - alpha, axis=0)
        lo, hi = est - q, est + q
        p = (1 + (abs_draws >= np.abs(est)).sum(axis=0)) / (replications + 1)
    return Summary(est, se, lo, hi, p, cov, Ss, method, int(df.min()))


def welch_df(scores: np.ndarray, roles: np.ndarray) -> np.ndarray:
    """Welch-Satterthwaite degrees of freedom of each estimand (a column of ``scores``, G x k).

    Clusters with the same role (start cohort, or never treated) are exchangeable; each role's
    share of the variance ``V_r = sum of its clusters' squared scores`` has ``n_r - 1`` degrees
    of freedom, so ``df = (sum_r V_r)^2 / sum_r V_r^2 / (n_r - 1)``: close to the number of
    clusters when every role is large, close to a small cohort's size when it dominates.
    """
    codes, inverse = np.unique(roles, return_inverse=True)
    n_r = np.bincount(inverse, minlength=codes.size).astype(float)
    sq = scores**2
    V = np.stack([np.bincount(inverse, weights=sq[:, j], minlength=codes.size)
                  for j in range(sq.shape[1])], axis=1)  # fmt: skip
    ok = n_r > 1
    den = (V[ok] ** 2 / (n_r[ok, None] - 1)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(den > 0, V.sum(axis=0) ** 2 / den, scores.shape[0] - 1)
    out: np.ndarray = np.clip(np.floor(df), 1, scores.shape[0] - 1).astype(np.int64)
    return out


def _multipliers(rng: np.random.Generator, kind: str, shape: tuple[int, int]) -> np.ndarray:
    if kind == "webb":
        vals = np.sqrt(np.array([0.5, 1.0, 1.5]))
        vals = np.concatenate([-vals, vals])
        out: np.ndarray = vals[rng.integers(0, 6, shape)]
        return out
    if kind == "mammen":
        s5 = np.sqrt(5.0)
        a, b = -(s5 - 1) / 2, (s5 + 1) / 2
        pa = (s5 + 1) / (2 * s5)
        out = np.where(rng.random(shape) < pa, a, b)
        return out
    signs: np.ndarray = rng.integers(0, 2, shape) * 2.0 - 1.0
    return signs


@dataclass(frozen=True)
class CellEstimates:
    """The estimands of a :class:`CellFit`: event-time effects, cohort effects, aggregations."""

    summary: Summary
    names: tuple[str, ...]  # "e-2", ..., "simple", "dynamic", "group", "g<s>"
    event_times: tuple[int, ...]
    att_cells: np.ndarray  # (S, E) DiD cells (NaN where absent)


def cell_estimates(
    fit: CellFit,
    alpha: float,
    *,
    method: str = "cluster",
    rng: np.random.Generator | None = None,
    replications: int = 999,
    weights: str = "auto",
) -> CellEstimates:
    """Every event-time effect (treated-share weights), the simple (treated observations),
    dynamic (event times equally) and group (cohort sizes) aggregations and each cohort's
    effect, with their joint inference."""
    Wd = fit.treated_weight
    S_n, E = Wd.shape
    e = fit.event_times
    names: list[str] = []
    omegas: list[np.ndarray] = []
    times: list[int] = []
    col = Wd.sum(axis=0)
    for j in np.flatnonzero((col > 0) & (e != fit.reference)).tolist():
        om = np.zeros((S_n, E))
        om[:, j] = Wd[:, j] / col[j]
        omegas.append(om)
        names.append(f"e{int(e[j]):+d}")
        times.append(int(e[j]))
    post = e >= 0
    total = Wd[:, post].sum()
    if total <= 0:
        raise EstimationError(
            "design.window: no start cohort has an estimable period at or after its start "
            "(with clean comparison units); widen design.window.post"
        )
    simple = np.where(post[None, :], Wd, 0.0) / total
    post_events = [om for om, t in zip(omegas, times, strict=True) if t >= 0]
    dynamic = np.mean(post_events, axis=0)
    cohort_w = Wd[:, post].sum(axis=1)
    groups = []
    for s in np.flatnonzero(cohort_w > 0).tolist():
        om = np.zeros((S_n, E))
        om[s, post] = Wd[s, post] / cohort_w[s]
        groups.append((s, om))
    n_tr = np.array([fit.n_treated[s] for s, _ in groups], dtype=float)
    group = np.einsum("g,gse->se", n_tr / n_tr.sum(), np.stack([om for _, om in groups]))
    omegas += [simple, dynamic, group] + [om for _, om in groups]
    names += ["simple", "dynamic", "group"] + [f"g{s}" for s, _ in groups]
    est, S = fit.estimate(np.stack(omegas))
    summary = summarise(
        est,
        S,
        alpha,
        method=method,
        rng=rng,
        replications=replications,
        weights=weights,
        small_sample=False,  # the groups' own m / (m - 1) factors are in the scores
        roles=fit.roles,
    )
    return CellEstimates(summary, tuple(names), tuple(times), fit.did)
