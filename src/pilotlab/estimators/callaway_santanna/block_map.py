"""The headline of a balanced panel without covariates as a linear map of block sums.

Without covariates every ATT(g,t) is a difference of means of outcome changes: the cohort's
``(Zb[g, t] - Zb[g, b]) / W_g`` less the comparison blocks' ``sum_h (Zb[h, t] - Zb[h, b]) / W_c``,
with ``Zb`` the outcome sums of each block (cohort or never treated) and ``W`` their sizes; an
aggregation weights the cells by cohort shares. So the headline is ``sum_{h,t} coef[h, t] Zb[h,
t]`` with coefficients that depend on the block sizes only, which permutation inference keeps
(:mod:`pilotlab.estimators.block_map`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from pilotlab.compiled import HAS_NUMBA, nogil_kernel, on_threads
from pilotlab.data.assignment import CodedRows
from pilotlab.data.panel import NEVER, Panel
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.block_map import BlockMap, PrePeriodMap, weighted_block_sums
from pilotlab.estimators.callaway_santanna.aggregate import _plan
from pilotlab.estimators.callaway_santanna.prepare import (
    _finalise_units,
    _make_cells,
    _subset_units,
    _unit_arrays,
    _Units,
)
from pilotlab.exceptions import EstimationError, Notice

__all__ = ["WeightedBlockMap", "headline_block_map", "pre_period_map"]

_OVERALL = ("simple", "dynamic", "group", "calendar")


def _every_unit(panel: Panel, outcome: str) -> tuple[_Units, np.ndarray] | None:
    """The estimator's units and outcome rows when it keeps every unit and period and every
    outcome is observed, with at least one treated cohort; else ``None`` (no linear map)."""
    sink: list[Notice] = []
    T = panel.n_periods
    with warnings.catch_warnings():  # the fit itself has told the reader already
        warnings.simplefilter("ignore")
        raw, Y, _, _ = _unit_arrays(panel, outcome, (), sink)
        units, keep, T_keep = _finalise_units(
            raw, T, int(panel.anticipation), panel.period_labels, sink
        )
    if not keep.all() or T_keep != T or not np.all(np.isfinite(Y)):
        return None
    units = _subset_units(units, keep)
    return None if units.cohorts.size == 0 else (units, Y)


def headline_block_map(
    panel: Panel, outcome: str, options: EstimatorOptions, estimate: float
) -> BlockMap | None:
    """The headline of ``options`` as a :class:`BlockMap`, or ``None`` when it is not one
    (covariates, weights, missing outcomes, a repeated cross-section, units left out) or does
    not reproduce ``estimate`` (the estimator's own headline for the actual assignment)."""
    cs = options.callaway_santanna
    if (
        options.covariates
        or panel.layout != "panel"
        or not panel.is_rectangular
        or cs.aggregation not in _OVERALL
    ):
        return None
    if panel.weighted:
        return _weighted_block_map(panel, outcome, options, estimate)
    T = panel.n_periods
    prepared = _every_unit(panel, outcome)
    if prepared is None:
        return None
    units, Y = prepared
    cells = _make_cells(units.cohorts, T, int(panel.anticipation), cs.base_period, panel.comparison)
    H = units.cohorts.size
    size = np.bincount(units.block, minlength=H + 1).astype(np.float64)
    Wg = size[cells.gb]
    Wc = cells.ctrl.T.astype(np.float64) @ size
    valid = ((Wc > 0) & (Wg > 0)) | cells.ref
    live = valid & ~cells.ref
    plan, _, overall, _, _ = _plan(
        np.zeros(cells.g.size), valid, units, cells, options.window, cs.balance_e
    )
    a = np.nan_to_num(plan.A[overall[_OVERALL.index(cs.aggregation)]])
    a[~live] = 0.0
    coef = np.zeros((H + 1, T))
    k = np.flatnonzero(live & (a != 0))
    own = a[k] / Wg[k]
    np.add.at(coef, (cells.gb[k], cells.t[k]), own)
    np.add.at(coef, (cells.gb[k], cells.b[k]), -own)
    hh, kk = np.nonzero(cells.ctrl[:, k])
    kk = k[kk]
    other = a[kk] / Wc[kk]
    np.add.at(coef, (hh, cells.t[kk]), -other)
    np.add.at(coef, (hh, cells.b[kk]), other)
    mapped = BlockMap(coef, np.asarray(units.cohorts, dtype=np.int64), float(estimate))
    if not np.array_equal(mapped.blocks(panel.first_treated), units.block):
        return None
    again = float(mapped.estimates(Y[None], mapped.blocks(panel.first_treated)[None])[0, 0])
    if not abs(again - estimate) <= 1e-9 * (1.0 + abs(estimate)):
        return None  # not the estimator's own number: the re-fitting path stays
    return mapped


@dataclass(frozen=True)
class WeightedBlockMap(BlockMap):
    """The simple aggregation with analytic weights as a function of each unit's block.

    With weights a re-assignment changes the blocks' weighted sizes, so the coefficients of a
    :class:`BlockMap` do not hold (:attr:`coef` is NaN); but for given blocks every ATT(g,t) is
    still a difference of weighted means of outcome changes and the simple aggregation weights
    the post-period cells by the cohorts' weighted shares. :meth:`estimates` computes both from
    each assignment's weighted block sums of the outcomes (one matrix product per treated block)
    and weighted block sizes.
    """

    w: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (N,) unit weights
    t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (K,) cell period
    base: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (K,) base period
    gb: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (K,) cohort block
    ctrl: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (Hb, K) comparisons
    live: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (K,) estimated cells
    keep: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (K,) aggregated

    def estimates(self, outcomes: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        """The estimates of the ``(Q, N, T)`` outcome matrices under each assignment (rows of
        ``blocks``), as ``(B, Q)``."""
        if (blocks < 0).any():
            raise ValueError("an assignment puts a unit in a cohort the map does not know")
        Q, N, T = outcomes.shape
        H = self.cohorts.size
        K = self.t.size
        out = np.empty((blocks.shape[0], Q))
        cols = np.arange(K)
        step = max(1, _CHUNK_ELEMENTS // max(N, 1))
        for a, Z in weighted_block_sums(outcomes, self.w, blocks, H + 1, step):
            Wb = Z[:, :, -1]
            Wg, Wc = Wb[:, self.gb], Wb @ self.ctrl
            # the aggregation weights: each post-period cell's cohort share, normalised
            share = np.where(self.keep[None, :], Wb[:, self.gb], 0.0)
            A = share / share.sum(axis=1, keepdims=True)
            for q in range(Q):
                Zq = Z[:, :, q * T : (q + 1) * T]
                S = Zq[:, :, self.t] - Zq[:, :, self.base]  # (b, Hb, K) cells' sums of changes
                with np.errstate(invalid="ignore", divide="ignore"):
                    eta_t = S[:, self.gb, cols] / Wg
                    eta_c = np.einsum("bhk,hk->bk", S, self.ctrl) / Wc
                att = np.nan_to_num(np.where(self.live[None, :], eta_t - eta_c, 0.0))
                out[a : a + Z.shape[0], q] = np.einsum("bk,bk->b", A, att)
        return out


def _weighted_block_map(
    panel: Panel, outcome: str, options: EstimatorOptions, estimate: float
) -> WeightedBlockMap | None:
    """:class:`WeightedBlockMap` of the simple aggregation (``None`` for another aggregation,
    a window, anticipation, weights that vary within a unit, or when it does not reproduce the
    estimator's own ``estimate``)."""
    cs = options.callaway_santanna
    if cs.aggregation != "simple" or options.window is not None or panel.anticipation:
        return None
    w = panel.unit_weights()
    prepared = _every_unit(panel, outcome)
    if w is None or prepared is None:
        return None
    units, Y = prepared
    T = panel.n_periods
    cells = _make_cells(units.cohorts, T, 0, cs.base_period, panel.comparison)
    H = units.cohorts.size
    size = np.bincount(units.block, weights=w, minlength=H + 1)
    Wg = size[cells.gb]
    Wc = cells.ctrl.T.astype(np.float64) @ size
    valid = ((Wc > 0) & (Wg > 0)) | cells.ref
    mapped = WeightedBlockMap(
        np.full((H + 1, T), np.nan), np.asarray(units.cohorts, dtype=np.int64), float(estimate),
        w=w, t=cells.t, base=cells.b, gb=cells.gb, ctrl=cells.ctrl.astype(np.float64),
        live=valid & ~cells.ref, keep=valid & ~cells.ref & (cells.t >= cells.g),
    )  # fmt: skip
    blocks = mapped.blocks(panel.first_treated)
    if not np.array_equal(blocks, units.block):
        return None
    again = float(mapped.estimates(Y[None], blocks[None])[0, 0])
    if not abs(again - estimate) <= 1e-9 * (1.0 + abs(estimate)):
        return None  # not the estimator's own number: the re-fitting path stays
    return mapped


#: Bound on the elements of the per-chunk arrays of :func:`pre_period_map` (memory).
_CHUNK_ELEMENTS = 4_000_000

#: Work (re-assignments x treated units x (periods + leads)) from which the compiled pass runs:
#: below it the sparse products finish before numba is imported and its kernel loaded (some
#: tenths of a second, once per process).
_COMPILED_WORK = 300_000_000


#: Units of a cluster taken together by :func:`_span_sums` (their rows stay in cache while
#: every re-assignment of the chunk reads them).
_TILE = 64


def _span_sums(
    hu: np.ndarray,
    bounds: np.ndarray,
    Ys: np.ndarray,
    dP: np.ndarray,
    w_s: np.ndarray,
    Zb: np.ndarray,
    Dh: np.ndarray,
    Wch: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba; the sparse products stand in without it
    """Treated units' sums of every re-assignment, accumulated into ``Zb``, ``Dh`` and ``Wch``.

    ``hu`` (b, N): the block of each unit per re-assignment, the units in cluster order;
    ``bounds``: the clusters' first positions in that order;
    ``Ys`` (N, T + 1), ``dP`` (H, N, E) and ``w_s`` (N,) in cluster order. For a unit of
    treated block ``h < H`` in cluster ``c`` under re-assignment ``j`` it adds ``Ys`` to
    ``Zb[j, h]``, ``dP[h]`` to ``Dh[j, c, h]`` and ``w_s`` to ``Wch[j, c, h]``: every sum runs
    over the units in cluster order from zero, the order of the sparse products' rows, so the
    sums are theirs to the last bit. Tiles of a cluster's units are read once per chunk.
    """
    b = hu.shape[0]
    H, T1, E = dP.shape[0], Ys.shape[1], dP.shape[2]
    for c in range(bounds.size - 1):
        for lo in range(bounds[c], bounds[c + 1], _TILE):
            hi = min(lo + _TILE, bounds[c + 1])
            for j in range(b):
                for p in range(lo, hi):
                    h = hu[j, p]
                    if h < H:
                        for t in range(T1):
                            Zb[j, h, t] += Ys[p, t]
                        for e in range(E):
                            Dh[j, c, h, e] += dP[h, p, e]
                        Wch[j, c, h] += w_s[p]


def _compiled_span() -> Any:
    """:func:`_span_sums` compiled by numba (serial, without the GIL), or ``None`` without numba
    (the sparse products then give the same sums, more slowly)."""
    return nogil_kernel(_span_sums) if HAS_NUMBA else None


def _span_on_threads(kernel: Any, hu: np.ndarray, *args: np.ndarray) -> None:
    """:func:`_span_sums` with the re-assignments (rows of ``hu`` and of the last three
    arrays of ``args``, the sums) split into blocks run on threads (the kernel holds no GIL);
    every row is summed as in one pass, so the sums do not depend on the split."""
    fixed, out = args[:-3], args[-3:]
    on_threads(lambda lo, hi: kernel(hu[lo:hi], *fixed, *(a[lo:hi] for a in out)), hu.shape[0])


def pre_period_map(panel: Panel, outcome: str, options: EstimatorOptions) -> PrePeriodMap | None:
    """The pre-period event-time averages of the dynamic aggregation and their variances under
    any re-assignment of cohorts, as a :class:`PrePeriodMap`; ``None`` when they are not
    functions of block sums (covariates, missing outcomes, a repeated cross-section, units or
    periods left out, no never-treated units).

    Without covariates on a balanced panel every ATT(g,t) is linear in the blocks' outcome sums
    ``Zb`` and, once the blocks' (weighted) sizes are fixed, so are the aggregation weights, the
    coefficients ``D`` of the influence function on a unit's outcomes and its constants ``s``
    (the comparison means and the estimated-cohort-share correction), which are linear in
    ``Zb`` too. A cluster's influence function on event time ``e`` is then ``IF_ce = Z_c .
    D[h_c, e] + W_c s[h_c, e] - N_c r_e`` (``Z_c``: its weighted outcome sums, ``W_c``: its
    weight, ``N_c``: its units, ``h_c``: its block). When every cluster lies within one block
    (units as clusters, or clusters assigned whole), ``sum_c IF_ce^2`` expands into a gather of
    precomputed ``(Z_c . D[h, e])^2`` and block sums of ``Z_c``, ``W_c Z_c``, ``N_c Z_c`` and
    three scalars; otherwise each cluster's influence function is summed from its units'
    precomputed parts ``w_i y_i . D[h, e]``, in one compiled pass over each chunk of
    re-assignments (numba; sparse products without it, with the same sums). The outcomes are first centred on unit and period means, which changes no estimate and no
    influence function (both difference them out) but keeps the expansion accurate.
    """
    cs = options.callaway_santanna
    if options.covariates or panel.layout != "panel" or not panel.is_rectangular:
        return None
    T = panel.n_periods
    prepared = _every_unit(panel, outcome)
    if prepared is None:
        return None
    units, Y = prepared
    H = units.cohorts.size
    Hb, n, C = H + 1, units.n, units.n_clusters
    cells = _make_cells(units.cohorts, T, int(panel.anticipation), cs.base_period, panel.comparison)
    Wb = np.bincount(units.block, units.w, minlength=Hb)
    Wg = Wb[cells.gb]
    Wc = cells.ctrl.T.astype(np.float64) @ Wb
    valid = ((Wc > 0) & (Wg > 0)) | cells.ref
    live = valid & ~cells.ref
    try:
        plan, pg, _, d_idx, d_e = _plan(
            np.zeros(cells.g.size), valid, units, cells, options.window, cs.balance_e
        )
    except EstimationError:
        return None
    A_all = np.nan_to_num(np.column_stack(plan.A))
    A_all[~valid] = 0.0
    # the leads: pre-period event times with an influence function (not only reference cells)
    leads = [
        (i, ev) for i, ev in zip(d_idx, d_e, strict=True) if ev < 0 and (A_all[live, i] != 0).any()
    ]
    if not leads:
        return None
    A_lead = A_all[:, [i for i, _ in leads]]
    kc = np.flatnonzero((A_lead != 0).any(axis=1))  # the cells the leads rest on
    A = A_lead[kc]  # (Kc, E)
    Kc, E = A.shape
    g_k, t_k, b_k = cells.gb[kc], cells.t[kc], cells.b[kc]
    lv = live[kc]
    ctrl = cells.ctrl[:, kc]  # (Hb, Kc)
    inv_g = np.where(lv, 1.0 / Wg[kc], 0.0)
    with np.errstate(divide="ignore"):
        inv_c = np.where(lv, 1.0 / np.where(Wc[kc] > 0, Wc[kc], 1.0), 0.0)
    # eta_t = Zb_flat @ Let and eta_c = Zb_flat @ Lec (Zb flattened block-major, (Hb * T))
    cols = np.arange(Kc)
    Let = np.zeros((Hb * T, Kc))
    np.add.at(Let, (g_k * T + t_k, cols), inv_g)
    np.add.at(Let, (g_k * T + b_k, cols), -inv_g)
    Lec = np.zeros((Hb * T, Kc))
    hh, kk = np.nonzero(ctrl)
    np.add.at(Lec, (hh * T + t_k[kk], kk), inv_c[kk])
    np.add.at(Lec, (hh * T + b_k[kk], kk), -inv_c[kk])
    # influence-function coefficients on a unit's weighted outcomes, D (Hb, T, E), and the maps
    # from eta to the constants: kappa = -eta_t @ Own + eta_c @ Ctl, (Hb, E) per assignment
    D = np.zeros((Hb, T, E))
    own = A * inv_g[:, None]
    np.add.at(D, (g_k, t_k), own)
    np.add.at(D, (g_k, b_k), -own)
    oth = A[kk] * inv_c[kk, None]
    np.add.at(D, (hh, t_k[kk]), -oth)
    np.add.at(D, (hh, b_k[kk]), oth)
    Own = np.zeros((Kc, Hb, E))
    Own[cols, g_k] = own
    Ctl = np.zeros((Kc, Hb, E))
    Ctl[kk, hh] = oth
    # estimated-cohort-share correction: cw[h, e] = sum over the lead's cells of cohort h of
    # (att_k - a_e) / P_e, with P_e the lead's total cohort share
    keep_ke = A != 0
    P = np.array([pg[g_k[keep_ke[:, j]]].sum() for j in range(E)])  # a handful of leads
    Gw = np.zeros((Kc, Hb, E))
    Gw[cols, g_k] = keep_ke / P[None, :]
    Gw[:, H] = 0.0  # the never treated carry no cohort share
    Gcount = Gw.sum(axis=0)  # (Hb, E)
    pg_b = np.append(pg, 0.0)
    # centred outcomes (estimates and influence functions difference unit and period levels)
    Yc = Y - Y.mean(axis=1, keepdims=True)
    Yc = Yc - Yc.mean(axis=0, keepdims=True)
    cohorts = np.asarray(units.cohorts, dtype=np.int64)
    w, cl = units.w, units.cl
    Nc = np.bincount(cl, minlength=C).astype(np.float64)
    first_of = np.zeros(C, np.int64)
    first_of[cl[::-1]] = np.arange(n)[::-1]
    agg = sparse.csr_matrix((w, (cl, np.arange(n))), shape=(C, n))
    Zcl = np.asarray(agg @ Yc)  # (C, T) clusters' weighted outcome sums
    Wcl = np.bincount(cl, w, minlength=C)
    unit_clusters = n == C and np.array_equal(np.sort(cl), np.arange(n))

    if np.any((units.group >= T) & (units.group != NEVER)):
        return None  # a start after the panel: re-assigned labels could not be read back
    table = np.full(T + 2, -1, dtype=np.int16)  # period -> block; T + 1 (or more): never
    table[cohorts] = np.arange(H)
    table[T + 1] = H

    def blocks_of(ft: CodedRows) -> np.ndarray | None:
        """Each unit's block under re-assignments of the actual labels (cohorts or never)."""
        h = ft.map(lambda v: table[np.minimum(v, T + 1)])
        return None if (h < 0).any() else h  # None: a start that is not one of the cohorts

    def constants(Zb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Leads ``a`` (B, E), constants ``s`` (B, Hb, E) and ``r`` (B, E) from block sums."""
        flat = Zb.reshape(Zb.shape[0], Hb * T)
        eta_t, eta_c = flat @ Let, flat @ Lec
        att = eta_t - eta_c  # zero for reference cells
        a = att @ A
        cw = np.einsum("bk,khe->bhe", att, Gw) - a[:, None, :] * Gcount[None]
        kappa = np.einsum("bk,khe->bhe", eta_c, Ctl) - np.einsum("bk,khe->bhe", eta_t, Own)
        s = kappa + cw / n
        r = np.einsum("h,bhe->be", pg_b, cw) / n
        return a, s, r

    # clusters' sums for the nested case; columns repeated when weights or sizes are all one
    unit_w, n_is_w = bool(np.all(Wcl == 1.0)), bool(np.all(Nc == Wcl))
    parts = [Zcl] + ([] if unit_w else [Wcl[:, None] * Zcl])
    parts += [] if n_is_w else [Nc[:, None] * Zcl]
    i_w = T if not unit_w else 0
    i_n = i_w if n_is_w else T * (len(parts) - 1)
    X = np.column_stack([*parts, Wcl, Wcl**2, Nc**2, Wcl * Nc])
    i_s = T * len(parts)  # the scalar columns: W, W^2, N^2, W N
    X_all = X.sum(axis=0)
    # units in cluster order, for the clusters' outcome sums by block
    order = np.argsort(cl, kind="stable")
    bounds = np.searchsorted(cl[order], np.arange(C + 1))
    Ys = (w[:, None] * np.column_stack([Yc, np.ones(n)]))[order]
    Z_tot = np.add.reduceat(Ys, bounds[:-1], axis=0) if n else np.zeros((C, T + 1))
    treated_blocks = np.arange(H, dtype=np.int16)

    def same_sizes(sizes: np.ndarray) -> bool:
        return bool(np.allclose(sizes, Wb[None, :], rtol=1e-12, atol=0.0))

    def one_hot(h: np.ndarray) -> np.ndarray:
        """``(b, H, m)`` indicators of the treated blocks (the never treated by difference)."""
        out: np.ndarray = (h[:, None, :] == treated_blocks[None, :, None]).astype(np.float64)
        return out

    def nested_part(
        hc: np.ndarray, dq: np.ndarray, q_base: np.ndarray, lam: np.ndarray
    ) -> tuple[np.ndarray, ...] | None:
        """Leads and variance sums when every cluster lies within one block (``hc``: (b, C))."""
        b, width = hc.shape[0], X.shape[1]
        ind = one_hot(hc)
        S = np.empty((b, Hb, width))
        S[:, :H] = (ind.reshape(b * H, C) @ X).reshape(b, H, width)
        S[:, H] = X_all[None, :] - S[:, :H].sum(axis=1)
        if not same_sizes(S[:, :, i_s]):
            return None
        ZW, ZN = S[:, :, i_w : i_w + T], S[:, :, i_n : i_n + T]
        SW2, SN2, SWN = (S[:, :, i_s + j] for j in (1, 2, 3))
        a, sc, r = constants(S[:, :, :T])
        FW = np.einsum("bht,hte->bhe", ZW, D)
        FN = FW if i_n == i_w else np.einsum("bht,hte->bhe", ZN, D)
        rr = r[:, None, :]
        quad = (
            2 * sc * FW
            - 2 * rr * FN
            + sc**2 * SW2[:, :, None]
            - 2 * sc * rr * SWN[:, :, None]
            + rr**2 * SN2[:, :, None]
        ).sum(axis=1)  # (b, E)
        qsum = q_base[None, :] + np.einsum("bhc,chj->bj", ind, dq)  # sum_c q[c, h_c]
        return a, qsum + quad @ lam.T

    # clusters spanning blocks: units in cluster order, their parts of every lead's influence
    # function as if never treated (P_never, summed per cluster) and the differences for each
    # cohort (dP), so a re-assignment only gathers its treated units
    cl_s, w_s = cl[order], w[order]
    P_all = np.einsum("it,hte->ihe", Ys[:, :T], D)  # (N, Hb, E): w_i y_i . D[h, e]
    base_if = np.add.reduceat(P_all[:, H], bounds[:-1], axis=0) if n else np.zeros((C, E))
    dP = np.empty((H, n, E))
    for h in range(H):  # a handful of cohorts, each written in place (no transposed copy)
        np.subtract(P_all[:, h], P_all[:, H], out=dP[h])
    del P_all
    bounds_c = np.ascontiguousarray(bounds, dtype=np.int64)

    n_treated = int(np.count_nonzero(units.block < H))  # under every re-assignment

    def spanning_part(
        hu: np.ndarray, lam: np.ndarray, compiled: bool
    ) -> tuple[np.ndarray, ...] | None:
        """Clusters spanning blocks (``hu``: (b, N)): each cluster's influence function from
        its treated units' parts, gathered in one compiled pass over the chunk
        (:func:`_span_sums`) or by sparse products whose rows come sorted (no sorting)."""
        b = hu.shape[0]
        kernel = _compiled_span() if compiled else None
        if kernel is not None:
            Zb = np.zeros((b, Hb, T + 1))
            Dh = np.zeros((b, C, H, E))
            Wch = np.zeros((b, C, Hb))
            _span_on_threads(kernel, hu[:, order], bounds_c, Ys, dP, w_s, Zb, Dh, Wch)
            IF = np.broadcast_to(base_if, (b, C, E)).copy()
            for h in range(H):  # as the sparse products add them: one cohort after another
                IF += Dh[:, :, h]
            del Dh
        else:
            Zb, Wch, IF = sparse_sums(hu)
        Zb[:, H] = Z_tot.sum(axis=0)[None, :] - Zb[:, :H].sum(axis=1)
        Wch[:, :, H] = Wcl[None, :] - Wch[:, :, :H].sum(axis=2)
        if not same_sizes(Zb[..., T]):
            return None
        a, sc, r = constants(Zb[..., :T])
        IF += np.matmul(Wch, sc) - Nc[None, :, None] * r[:, None, :]
        return a, np.einsum("bce,bce->be", IF, IF) @ lam.T

    def sparse_sums(hu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`_span_sums` by sparse products, one cohort at a time."""
        b = hu.shape[0]
        hs = hu[:, order]
        Zb = np.empty((b, Hb, T + 1))
        Wch = np.zeros((b, C, Hb))
        IF = np.broadcast_to(base_if, (b, C, E)).copy()
        for h in range(H):  # a handful of cohorts
            rr, ii = np.nonzero(hs == h)  # row-major: draws, then units in cluster order
            ones = np.ones(rr.size)
            ptr = np.zeros(b + 1, np.int64)
            np.cumsum(np.bincount(rr, minlength=b), out=ptr[1:])
            Zb[:, h] = sparse.csr_matrix((ones, ii, ptr), shape=(b, n)) @ Ys
            key = rr * C + cl_s[ii]  # non-decreasing: the rows of a sorted sparse matrix
            ptr = np.zeros(b * C + 1, np.int64)
            np.cumsum(np.bincount(key, minlength=b * C), out=ptr[1:])
            pick = sparse.csr_matrix((ones, ii, ptr), shape=(b * C, n))
            IF += (pick @ dP[h]).reshape(b, C, E)
            Wch[:, :, h] = np.bincount(key, w_s[ii], minlength=b * C).reshape(b, C)
        return Zb, Wch, IF

    def compute(ft: CodedRows, coef: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        if ft.shape[1] != n or coef.shape[1] != E:
            return None
        B, J = ft.shape[0], coef.shape[0]
        lam = coef**2  # (J, E)
        q = np.stack(  # (C, Hb, J): sum_e lam_je (Z_c . D[h, e])^2, one block at a time
            [(Zcl @ D[h]) ** 2 @ lam.T for h in range(Hb)], axis=1
        )
        q_base = q[:, H].sum(axis=0)  # every cluster never treated, then the differences
        dq = q[:, :H] - q[:, H : H + 1]
        compiled = B * n_treated * (T + 1 + E) >= _COMPILED_WORK
        per = max(H * C + Hb * X.shape[1], C * (E + Hb) + n + (C * H * E if compiled else 0))
        chunk = max(1, _CHUNK_ELEMENTS // max(per, 1))
        est, var = np.empty((B, J)), np.empty((B, J))
        for s0 in range(0, B, chunk):  # bounded memory; vectorised within
            hu = blocks_of(ft.rows(s0, s0 + chunk))
            if hu is None:
                return None
            hc = hu[:, first_of]  # each cluster's block (that of its first unit)
            # nested when every re-assignment keeps clusters whole; the first one tells most
            # spanning chunks at once, without comparing all the others
            if unit_clusters or (
                bool((hu[0] == hc[0, cl]).all()) and bool((hu == hc[:, cl]).all())
            ):
                got = nested_part(hc, dq, q_base, lam)
            else:
                got = spanning_part(hu, lam, compiled)
            if got is None:
                return None  # the cohorts' weighted sizes change: the coefficients do not hold
            est[s0 : s0 + hu.shape[0]] = got[0] @ coef.T
            var[s0 : s0 + hu.shape[0]] = got[1]
        return est, var

    return PrePeriodMap(tuple(ev for _, ev in leads), compute)
