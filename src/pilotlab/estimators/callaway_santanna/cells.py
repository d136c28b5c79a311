"""Callaway & Sant'Anna, stage 2 -- group-time cells: each ATT(g,t) and its influence function.

Three computational paths give the same :class:`_CellFit` (point estimates, standard errors,
the pre-period cells' covariance and a map from aggregation coefficients to cluster-summed
influence functions):

* balanced panels without covariates: linear maps of per-block (cohort x cluster) weighted
  sums of the outcome matrix, with no units x cells matrix;
* panels with covariates or missing outcomes: cells sharing units and design estimated
  together by the 2x2 kernels, influence functions summed into clusters;
* repeated cross-sections: four weighted means per cell, or the ``*_rc`` kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from pilotlab.estimators.callaway_santanna.kernels import (
    Method,
    _design_2x2,
    _drdid_panel,
    _drdid_rc,
)
from pilotlab.estimators.callaway_santanna.prepare import _Cells, _Units, _warn
from pilotlab.exceptions import Notice


@dataclass(frozen=True)
class _CellFit:
    """Point estimates and the sufficient variance objects of all cells."""

    att: np.ndarray
    valid: np.ndarray
    se: np.ndarray
    pre_cov: np.ndarray  # covariance of the (valid, non-reference) pre cells, in their order
    pre_idx: np.ndarray
    # aggregated influence functions: callable from coefficient matrix (K x M) to (C x M)
    agg_if: Callable[[np.ndarray], np.ndarray]


def _fit_balanced_nocov(Y: np.ndarray, units: _Units, cells: _Cells) -> _CellFit:
    """All cells of a balanced panel without covariates, with no units x cells matrix."""
    n, T = Y.shape
    H = units.cohorts.size
    Hb = H + 1
    C = units.n_clusters
    K = cells.g.size
    # weighted sums of [Y, 1] per (cluster, block) combination
    combo_key = units.cl * Hb + units.block
    combos, combo_of_unit = np.unique(combo_key, return_inverse=True)
    n_combo = combos.size
    combo_cl = combos // Hb
    combo_block = combos % Hb
    agg = sparse.csr_matrix((units.w, (combo_of_unit, np.arange(n))), shape=(n_combo, n))
    Z = np.empty((n_combo, T + 1))
    Z[:, :T] = agg @ Y
    Z[:, T] = np.asarray(agg.sum(axis=1)).ravel()
    Zb = np.zeros((Hb, T + 1))
    np.add.at(Zb, combo_block, Z)
    # point estimates from block sums
    ks = np.arange(K)
    Wg = Zb[cells.gb, T]
    eta_t = (Zb[cells.gb, cells.t] - Zb[cells.gb, cells.b]) / Wg
    Zc = cells.ctrl.T.astype(np.float64) @ Zb  # K x (T+1)
    Wc = Zc[:, T]
    valid = (Wc > 0) & (Wg > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta_c = (Zc[ks, cells.t] - Zc[ks, cells.b]) / Wc
    att = np.where(valid, eta_t - eta_c, np.nan)
    att[cells.ref] = 0.0
    live = valid & ~cells.ref
    # sparse coefficient matrix U: rows block*(T+1)+j, columns cells
    kl = ks[live]
    rows_t = [
        cells.gb[kl] * (T + 1) + cells.t[kl],
        cells.gb[kl] * (T + 1) + cells.b[kl],
        cells.gb[kl] * (T + 1) + T,
    ]
    vals_t = [1 / Wg[kl], -1 / Wg[kl], -eta_t[kl] / Wg[kl]]
    hh, kk = np.nonzero(cells.ctrl[:, live])
    kk = kl[kk]
    rows_c = [hh * (T + 1) + cells.t[kk], hh * (T + 1) + cells.b[kk], hh * (T + 1) + T]
    vals_c = [-1 / Wc[kk], 1 / Wc[kk], eta_c[kk] / Wc[kk]]
    U = sparse.csr_matrix(
        (
            np.concatenate(vals_t + vals_c),
            (np.concatenate(rows_t + rows_c), np.concatenate([kl, kl, kl, kk, kk, kk])),
        ),
        shape=(Hb * (T + 1), K),
    )
    nested = n_combo == C  # every cluster lies within one block
    block_rows = [np.flatnonzero(combo_block == h) for h in range(Hb)]
    pre_idx = np.flatnonzero(live & (cells.t < cells.g))
    se = np.full(K, np.nan)
    if nested:
        var = np.zeros(K)
        pre_cov = np.zeros((pre_idx.size, pre_idx.size))
        for h in range(Hb):
            Zh = Z[block_rows[h]]
            Mh = Zh.T @ Zh
            Uh = U[h * (T + 1) : (h + 1) * (T + 1)]
            UtM = Uh.T @ Mh  # K x (T+1), rows zero where the block is not involved
            var += np.asarray(Uh.T.multiply(UtM).sum(axis=1)).ravel()
            if pre_idx.size:
                Up = Uh[:, pre_idx].tocsc()
                used = np.flatnonzero(np.diff(Up.indptr))  # pre cells this block enters
                if used.size:
                    Ud = Up[:, used].toarray()
                    pre_cov[np.ix_(used, used)] += Ud.T @ (Mh @ Ud)
        se[live] = np.sqrt(var[live])
        S = None
    else:
        S = np.zeros((C, K))
        for h in range(Hb):
            r = block_rows[h]
            Uh = U[h * (T + 1) : (h + 1) * (T + 1)]
            S[combo_cl[r]] += np.asarray((Uh.T @ Z[r].T).T)
        se[live] = np.sqrt(np.einsum("ck,ck->k", S[:, live], S[:, live]))
        pre_cov = S[:, pre_idx].T @ S[:, pre_idx]
    se[cells.ref] = np.nan

    def agg_if(A: np.ndarray) -> np.ndarray:
        if S is not None:
            return np.asarray(sparse.csr_matrix(A.T) @ S.T).T
        P = np.asarray(U @ A)  # Hb(T+1) x M
        out = np.zeros((C, A.shape[1]))
        for h in range(Hb):
            r = block_rows[h]
            out[combo_cl[r]] += Z[r] @ P[h * (T + 1) : (h + 1) * (T + 1)]
        return out

    return _CellFit(
        att=att, valid=valid | cells.ref, se=se, pre_cov=pre_cov, pre_idx=pre_idx, agg_if=agg_if
    )


def _fit_general_panel(
    Y: np.ndarray,
    X: np.ndarray | None,
    units: _Units,
    cells: _Cells,
    method: Method,
    labels: tuple[str, ...],
    sink: list[Notice],
) -> _CellFit:
    """Cells one by one on the units observed in both periods (covariates / missing values).

    On complete data the units, the propensity score and the comparison-unit regression design of
    a cell depend only on the cohort, the comparison group and (for time-varying covariates) the
    covariates' period: cells sharing them are estimated together, as matrix operations on the
    units x cells outcome changes (every DRDID formula is linear in the outcome once the design
    is fixed). With missing values each cell is its own group.
    """
    K = cells.g.size
    C = units.n_clusters
    att = np.full(K, np.nan)
    S = np.zeros((C, K), order="F")
    Yt = np.ascontiguousarray(Y.T)  # period rows: contiguous outcome columns
    complete = bool(np.all(np.isfinite(Y))) and (X is None or bool(np.all(np.isfinite(X))))
    x_const = X is not None and bool(np.all(X[:, :1, :] == X))
    att[cells.ref] = 0.0
    # cells sharing units and design are estimated together (only on complete data)
    groups: dict[tuple[object, ...], list[int]] = {}
    for k in np.flatnonzero(~cells.ref):
        xt = min(int(cells.t[k]), int(cells.b[k]))
        key: tuple[object, ...] = (
            (int(cells.g[k]), cells.ctrl[:, k].tobytes(), None if x_const else xt)
            if complete
            else (int(k),)
        )
        groups.setdefault(key, []).append(int(k))
    failed: list[str] = []
    for ks in groups.values():
        k0 = ks[0]
        t0, b0 = int(cells.t[k0]), int(cells.b[k0])
        xt = min(t0, b0)
        ok = np.isfinite(Yt[t0]) & np.isfinite(Yt[b0])
        if X is not None:
            ok &= np.all(np.isfinite(X[:, xt, :]), axis=1)
        D = units.group == cells.g[k0]
        idx = np.flatnonzero(ok & (D | cells.ctrl[units.block, k0]))
        Dk = D[idx].astype(np.float64)
        if Dk.sum() == 0 or Dk.sum() == idx.size:
            failed += [f"({labels[cells.g[k]]}, {labels[cells.t[k]]})" for k in ks]
            continue
        kk = np.asarray(ks)
        dy = (Yt[cells.t[kk]][:, idx] - Yt[cells.b[kk]][:, idx]).T  # units x cells
        if X is None:
            wk = units.w[idx]
            wt, wc = (wk * Dk)[:, None], (wk * (1 - Dk))[:, None]
            eta_t = np.sum(wt * dy, axis=0) / wt.sum()
            eta_c = np.sum(wc * dy, axis=0) / wc.sum()
            a = eta_t - eta_c
            phi = wt * (dy - eta_t) / wt.sum() - wc * (dy - eta_c) / wc.sum()
        else:
            Xk = np.column_stack([np.ones(idx.size), X[idx, xt, :]])
            try:
                des = _design_2x2(Xk, Dk, units.w[idx], method)
            except np.linalg.LinAlgError:
                failed += [f"({labels[cells.g[k]]}, {labels[cells.t[k]]})" for k in ks]
                continue
            a, psi = _drdid_panel(dy, des, method)
            phi = psi / idx.size
        att[kk] = a
        agg = sparse.csr_matrix(
            (np.ones(idx.size), (units.cl[idx], np.arange(idx.size))), shape=(C, idx.size)
        )
        S[:, kk] = agg @ np.ascontiguousarray(phi)
    if failed:
        _warn(
            "cs-cells-dropped",
            "ATT(g,t) could not be estimated for cells (cohort, period) "
            f"{', '.join(failed)}: no treated or no comparison units observed in both periods, "
            "or a singular covariate design; they are left out of every aggregation.",
            sink,
        )
    return _finish_explicit(att, S, cells)


def _finish_explicit(att: np.ndarray, S: np.ndarray, cells: _Cells) -> _CellFit:
    """Standard errors and pre-test covariance from explicit cluster-summed influence functions."""
    valid = np.isfinite(att)
    live = valid & ~cells.ref
    se = np.where(live, np.sqrt(np.einsum("ck,ck->k", S, S)), np.nan)
    pre_idx = np.flatnonzero(live & (cells.t < cells.g))
    Sp = S[:, pre_idx]

    def agg_if(A: np.ndarray) -> np.ndarray:
        # each aggregated parameter touches few cells: sparse coefficients, S.T is C-contiguous
        return np.asarray(sparse.csr_matrix(A.T) @ S.T).T

    return _CellFit(att=att, valid=valid, se=se, pre_cov=Sp.T @ Sp, pre_idx=pre_idx, agg_if=agg_if)


def _fit_rcs(
    y: np.ndarray,
    t_row: np.ndarray,
    X: np.ndarray | None,
    units: _Units,
    cells: _Cells,
    method: Method,
    labels: tuple[str, ...],
    sink: list[Notice],
) -> _CellFit:
    """Repeated cross-sections: four weighted means per cell, or DRDID's ``*_rc`` estimators
    with covariates (each observation's own covariate values)."""
    K = cells.g.size
    C = units.n_clusters
    att = np.full(K, np.nan)
    S = np.zeros((C, K), order="F")
    ok_row = np.isfinite(y)
    if X is not None:
        ok_row &= np.all(np.isfinite(X), axis=1)
    rows_at = [np.flatnonzero((t_row == t) & ok_row) for t in range(units.n_periods)]
    failed: list[str] = []
    for k in range(K):
        if cells.ref[k]:
            att[k] = 0.0
            continue
        parts = []
        for per, sign in ((cells.t[k], 1.0), (cells.b[k], -1.0)):
            r = rows_at[per]
            D = units.group[r] == cells.g[k]
            Cm = cells.ctrl[units.block[r], k] & ~D
            parts.append((r, D, Cm, sign))
        if any(p[1].sum() == 0 or p[2].sum() == 0 for p in parts):
            failed.append(f"({labels[cells.g[k]]}, {labels[cells.t[k]]})")
            continue
        if X is not None:
            rows = np.concatenate([p[0][p[1] | p[2]] for p in parts])
            n_t = int(np.sum(parts[0][1] | parts[0][2]))
            post = np.zeros(rows.size)
            post[:n_t] = 1.0
            Dk = (units.group[rows] == cells.g[k]).astype(np.float64)
            Xk = np.column_stack([np.ones(rows.size), X[rows]])
            try:
                a, psi = _drdid_rc(y[rows], post, Dk, Xk, units.w[rows], method)
            except np.linalg.LinAlgError:
                failed.append(f"({labels[cells.g[k]]}, {labels[cells.t[k]]})")
                continue
            att[k] = a
            S[:, k] = np.bincount(units.cl[rows], psi / rows.size, minlength=C)
            continue
        est = 0.0
        for r, D, Cm, sign in parts:
            for mask, s2 in ((D, 1.0), (Cm, -1.0)):
                rr = r[mask]
                wr = units.w[rr]
                m = wr @ y[rr] / wr.sum()
                est += sign * s2 * m
                S[:, k] += np.bincount(
                    units.cl[rr], sign * s2 * wr * (y[rr] - m) / wr.sum(), minlength=C
                )
        att[k] = est
    if failed:
        _warn(
            "cs-cells-dropped",
            "ATT(g,t) could not be estimated for cells (cohort, period) "
            f"{', '.join(failed)}: no treated or no comparison observations in one of the two "
            "periods; they are left out of every aggregation.",
            sink,
        )
    return _finish_explicit(att, S, cells)
