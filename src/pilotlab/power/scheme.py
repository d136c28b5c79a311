"""Power of a randomised pilot under its own allocation scheme, and what the scheme buys.

A pilot with ``assignment`` plans its power from the history as it will be randomised: the last
``post`` periods of the history play the pilot (its pseudo start is ``T - post``), the scheme's
design is formed on the periods before (strata as drawn; pairs matched and the balance criterion
computed on the pseudo pre-period), and ``simulations`` allocations are drawn from that design
exactly as the scheme draws (:func:`~pilotlab.data.allocation.draw_many`). Each allocation is
analysed with the randomised estimator at zero effect; because the estimator is least squares,
an effect ``delta`` added to the treated units' outcomes after the start moves every estimate by
``delta`` and leaves its CR2 standard error and Bell-McCaffrey degrees of freedom unchanged, so
the power at every effect comes from one batched pass over the allocations. The same is done for
complete randomisation of as many units (or, when the pilot's scheme is complete, for pairs
matched on the outcome before the start), and the two minimum detectable effects are compared
in one sentence ("pairing ... lowers the MDE from X to Y").

Standard errors are the estimator's own, computed for every allocation at once. Unweighted with
each unit its own cluster they are HC2: with the block fixed effects partialled out, the leverage
of unit ``i`` is ``1 / n_block`` plus its leverage in the demeaned regressors, and the
Bell-McCaffrey traces are sums over the hat matrix of each allocation (built in chunks). With
weights (``data.weight``) or clusters coarser than the units (``data.cluster``) they are CR2 on
the weighted regression, with each cluster's adjustment ``(I - H_gg)^(-1/2)`` from one batched
eigen-decomposition per cluster size (:func:`batched_cr2`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from pilotlab.data.allocation import Allocation, draw, draw_many, unit_table_from_panel
from pilotlab.data.panel import NEVER, Panel
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.estimators.randomised import Prepared, prepare
from pilotlab.exceptions import EstimationError
from pilotlab.inference.randomisation import implicit_allocation
from pilotlab.results import json_scalar
from pilotlab.spec.assignment import AssignmentSpec

__all__ = ["SchemePower", "batched_cr2", "batched_hc2", "scheme_power"]

_CHUNK = 4_000_000
#: Relative difference in MDE below which two schemes are reported as about the same (within
#: the Monte Carlo error of a few hundred simulated allocations).
SAME_MDE = 0.03


@dataclass(frozen=True)
class SchemePower:
    """Simulated power of the pilot's scheme against a comparison scheme.

    Attributes
    ----------
    scheme, comparison : str
        The pilot's scheme and the one it is compared with.
    n_units, n_treated, post_periods, simulations : int
    mde, mde_comparison : float or None
        Smallest effect detected with the target power (``None``: not within the range tried).
    effects, power, power_comparison : tuple of float
        The power curves.
    sentence : str
        What the scheme buys, in one plain sentence.
    """

    scheme: str
    comparison: str
    n_units: int
    n_treated: int
    post_periods: int
    simulations: int
    mde: float | None
    mde_comparison: float | None
    effects: tuple[float, ...]
    power: tuple[float, ...]
    power_comparison: tuple[float, ...]
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out = {k: json_scalar(v) for k, v in self.__dict__.items() if not isinstance(v, tuple)}
        for k in ("effects", "power", "power_comparison"):
            out[k] = [json_scalar(v) for v in getattr(self, k)]
        return out


def _demean(a: np.ndarray, block: np.ndarray | None) -> np.ndarray:
    if block is None:
        out: np.ndarray = a - a.mean(axis=-1, keepdims=True)
        return out
    S = int(block.max()) + 1
    B = np.zeros((a.shape[-1], S))
    B[np.arange(a.shape[-1]), block] = 1.0
    means = (a @ B) / B.sum(axis=0)
    res: np.ndarray = a - means[..., block]
    return res


def batched_hc2(prep: Prepared, codes: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pooled-effect estimate, HC2 standard error and Bell-McCaffrey degrees of freedom of the
    randomised estimator for every row of ``codes`` (units are the clusters; unweighted).

    Returns ``(estimate, std_error, dof)``, each ``(R,)``.
    """
    design = prep.design
    n = design.n
    block = design.block
    xc = prep.xc
    p = xc.shape[1]
    xt = _demean(xc.T, block).T if p else np.empty((n, 0))
    yt = _demean(y[None, :], block)[0]
    if block is None:
        h_fe_diag = np.full(n, 1.0 / n)
        H_fe = np.full((n, n), 1.0 / n)
    else:
        sizes = np.bincount(block)
        h_fe_diag = 1.0 / sizes[block]
        H_fe = (block[:, None] == block[None, :]) / sizes[block][:, None]
    R = codes.shape[0]
    k = 1 + p + (p if prep.interact else 0)
    est, se, dof = (np.full(R, np.nan) for _ in range(3))
    step = max(1, _CHUNK // max(n * n, n * k, 1))
    for a0 in range(0, R, step):  # chunks of allocations, each one batched computation
        c = codes[a0 : a0 + step]
        r = c.shape[0]
        D = (c > 0).astype(np.float64)
        cols = [_demean(D, block)[:, None, :]]
        if p:
            cols.append(np.broadcast_to(xt.T[None], (r, p, n)))
            if prep.interact:
                inter = D[:, None, :] * xc.T[None, :, :]
                cols.append(_demean(inter, block))
        Z = np.concatenate(cols, axis=1)  # (r, k, n)
        ZtZ = np.einsum("rkn,rln->rkl", Z, Z)
        ok = np.einsum("rkk->rk", ZtZ)[:, 0] > 1e-12
        M = np.full_like(ZtZ, np.nan)
        M[ok] = np.linalg.pinv(ZtZ[ok])
        beta = np.einsum("rkl,rln,n->rk", M, Z, yt)
        e = yt[None, :] - np.einsum("rkn,rk->rn", Z, beta)
        MZ = np.einsum("rkl,rln->rkn", M, Z)  # rows of the estimator's weights
        hz = np.einsum("rkn,rkn->rn", Z, MZ)
        h = np.clip(h_fe_diag[None, :] + hz, 0.0, 1.0 - 1e-12)
        a = MZ[:, 0, :]  # (r, n) weight of each unit in the effect
        est[a0 : a0 + r] = beta[:, 0]
        se[a0 : a0 + r] = np.sqrt(np.sum(a * a * e * e / (1.0 - h), axis=1))
        u2 = a * a / (1.0 - h)
        H = H_fe[None, :, :] + np.einsum("rkn,rkm->rnm", Z, MZ)
        tr1 = np.sum(a * a, axis=1)
        tr2 = np.sum(u2 * u2 * (1.0 - 2.0 * h), axis=1) + np.einsum("rn,rnm,rm->r", u2, H * H, u2)
        dof[a0 : a0 + r] = tr1 * tr1 / tr2
    return est, se, dof


def batched_cr2(prep: Prepared, codes: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`batched_hc2` with the estimator's weights and clusters: the pooled effect, its CR2
    standard error and Bell-McCaffrey degrees of freedom for every row of ``codes``, as
    :func:`pilotlab.estimators.cr2.cr2` computes them for one fit (weighted least squares on
    ``sqrt(w) X``; clusters grouped by size, each group one batched eigen-decomposition of
    ``I - H_gg`` for all allocations of a chunk).

    Returns ``(estimate, std_error, dof)``, each ``(R,)``.
    """
    design = prep.design
    n = design.n
    w = np.ones(n) if design.weight is None else np.asarray(design.weight, dtype=np.float64)
    sw = np.sqrt(w)
    xc = prep.xc
    p = xc.shape[1]
    fixed = (
        np.ones((n, 1))
        if design.block is None
        else np.eye(int(design.block.max()) + 1)[design.block]
    )
    F = np.column_stack([fixed, xc]) * sw[:, None]  # the columns every allocation shares
    ys = y * sw
    _, cl = np.unique(np.asarray(design.cluster), return_inverse=True)
    G = int(cl.max()) + 1
    sizes = np.bincount(cl, minlength=G)
    order = np.argsort(cl, kind="stable")
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    groups = [
        order[first[np.flatnonzero(sizes == m)][:, None] + np.arange(m)[None, :]]
        for m in np.unique(sizes).tolist()  # one batch per distinct cluster size
    ]
    R = codes.shape[0]
    k = 1 + F.shape[1] + (p if prep.interact else 0)
    est, se, dof = (np.full(R, np.nan) for _ in range(3))
    step = max(1, _CHUNK // max(n * max(n, k) * 2, 1))
    for a0 in range(0, R, step):  # chunks of allocations, each one batched computation
        D = (codes[a0 : a0 + step] > 0).astype(np.float64)
        r = D.shape[0]
        cols = [(D * sw[None, :])[:, :, None], np.broadcast_to(F[None], (r, n, F.shape[1]))]
        if prep.interact and p:
            cols.append(D[:, :, None] * xc[None, :, :] * sw[None, :, None])
        X = np.concatenate(cols, axis=2)  # (r, n, k)
        M = np.linalg.pinv(np.einsum("rnk,rnl->rkl", X, X))
        beta = np.einsum("rkl,rnl,n->rk", M, X, ys)
        e = ys[None, :] - np.einsum("rnk,rk->rn", X, beta)
        v = np.einsum("rnk,rk->rn", X, M[:, :, 0])  # X M c for the effect's contrast
        u = np.empty_like(v)
        score = np.zeros(r)
        for rows in groups:  # a few cluster sizes
            Xg = X[:, rows]  # (r, G_m, m, k)
            H = np.einsum("rgik,rkl,rgjl->rgij", Xg, M, Xg)
            B = np.eye(rows.shape[1])[None, None] - H
            B = 0.5 * (B + np.swapaxes(B, -1, -2))
            vals, vecs = np.linalg.eigh(B)
            tol = 1e-10 * np.maximum(1.0, np.abs(vals).max(axis=-1, keepdims=True))
            inv_sqrt = np.where(vals > tol, 1.0 / np.sqrt(np.where(vals > tol, vals, 1.0)), 0.0)
            A = np.einsum("rgij,rgj,rgkj->rgik", vecs, inv_sqrt, vecs)
            ug = np.einsum("rgij,rgj->rgi", A, v[:, rows])
            u[:, rows] = ug
            score += np.sum(np.einsum("rgi,rgi->rg", ug, e[:, rows]) ** 2, axis=1)
        d = np.zeros((r, G))
        np.add.at(d.T, cl, (u * u).T)
        Q = np.zeros((r, k, G))
        np.add.at(np.moveaxis(Q, 2, 0), cl, np.moveaxis(X * u[:, :, None], 1, 0))
        MQ = np.einsum("rkl,rlg->rkg", M, Q)
        qmq = np.einsum("rkg,rkg->rg", Q, MQ)
        S = np.einsum("rkg,rlg->rkl", Q, Q)
        MS = np.einsum("rkl,rlm->rkm", M, S)
        qdq = np.einsum("rkg,rg,rlg->rkl", Q, d, Q)
        tr1 = d.sum(axis=1) - qmq.sum(axis=1)
        tr2 = (
            (d * d).sum(axis=1)
            - 2.0 * np.einsum("rkl,rlk->r", M, qdq)
            + np.einsum("rkl,rlk->r", MS, MS)
        )
        est[a0 : a0 + r] = beta[:, 0]
        se[a0 : a0 + r] = np.sqrt(score)
        with np.errstate(invalid="ignore", divide="ignore"):
            dof[a0 : a0 + r] = np.where(tr2 > 0, tr1 * tr1 / tr2, np.nan)
    return est, se, dof


def _power(est: np.ndarray, se: np.ndarray, q: np.ndarray, effects: np.ndarray) -> np.ndarray:
    """Share of allocations rejecting at each effect (estimates move by the effect)."""
    moved = est[None, :] + effects[:, None]
    out: np.ndarray = np.mean(np.abs(moved) > q[None, :] * se[None, :], axis=1)
    return out


def _mde(est: np.ndarray, se: np.ndarray, q: np.ndarray, target: float) -> float | None:
    hi = float(np.nanmedian(se)) * 8 + float(np.nanmax(np.abs(est)))

    def f(d: float) -> float:
        return float(_power(est, se, q, np.array([d]))[0]) - target

    if f(hi) < 0:
        return None
    if f(0.0) >= 0:
        return 0.0
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-6 * hi))


def _pseudo_panel(history: Panel, allocation: Allocation, start: int, post: int) -> Panel:
    """The history as one pseudo pilot: the allocation's treated units start at ``start``."""
    codes = allocation.codes_of(history.unit_labels)
    ft = np.where(codes > 0, start, NEVER).astype(np.int64)
    trunc = history.truncate_periods(start + post - 1)
    return dataclasses.replace(trunc, first_treated=ft, allocation=allocation)


def _design_on(
    spec: AssignmentSpec, history: Panel, start: int, seed: int
) -> tuple[Allocation, str]:
    """The scheme's design formed on the pseudo pre-period (periods before ``start``)."""
    real = history.allocation
    variables = list(dict.fromkeys([*history.outcomes, *history.covariates]))
    wanted = list(spec.pairs_on or []) + list((spec.balance.on or []) if spec.balance else [])
    usable = all(v in history.frame.columns for v in wanted)
    note = ""
    if not usable and real is not None:
        note = (
            " (pairs or balance use columns outside the outcomes and covariates, so the design "
            "drawn on the whole history is reused)"
        )
        return real, note
    table = unit_table_from_panel(history, list(dict.fromkeys([*variables, *wanted])), before=start)
    if real is not None and real.has_blocks and spec.scheme != "pairs":
        strata = np.asarray(real.stratum_labels, dtype=object)[
            real.stratum[real.index_of(table.labels)]
        ]
        table = dataclasses.replace(table, strata=strata)
    a = spec
    if spec.balance is not None and not spec.balance.on:
        a = spec.model_copy(
            update={"balance": spec.balance.model_copy(update={"on": list(history.outcomes)})}
        )
    if isinstance(a.strata, list) and table.strata is not None:
        a = a.model_copy(update={"strata": ["stratum"]})
    return draw(a, table, seed=seed), note


def scheme_power(
    history: Panel,
    spec: AssignmentSpec,
    outcome: str,
    *,
    post: int,
    simulations: int,
    alpha: float,
    target: float,
    seed: int,
    options: EstimatorOptions | None = None,
    sign: float = 1.0,
) -> SchemePower:
    """Power and MDE of the randomised estimator under ``spec``'s scheme on ``history``, and under
    a comparison scheme (complete randomisation, or pairs on the outcome when ``spec`` is
    complete). See the module docstring.

    Raises
    ------
    EstimationError
        The history is too short for the post period or the scheme is a stepped roll-out
        (:mod:`pilotlab.power.stepped`).
    """
    if spec.scheme == "stepped":
        raise EstimationError(
            "assignment: a stepped roll-out's power is simulated from placebo roll-outs of its "
            "waves (pilotlab.power.stepped), not from one common start"
        )
    start = history.n_periods - post
    if start < 1:
        raise EstimationError(
            f"design.power.post_periods: {post} periods after the start leave no history "
            "before it; plan a shorter pilot"
        )
    opts = options if options is not None else EstimatorOptions()
    alloc, note = _design_on(spec, history, start, seed)
    comparison_spec = (
        spec.model_copy(update={"scheme": "pairs", "pairs_on": [outcome], "treated": None})
        if spec.scheme == "complete" and len(spec.arms) == 2
        else None
    )
    if comparison_spec is not None and alloc.n_units % 2 == 0:
        comp, _ = _design_on(comparison_spec, history, start, seed)
        comp_name = f"pairs matched on {outcome} before the start"
    else:
        base = _pseudo_panel(history, alloc, start, post)
        pooled = dataclasses.replace(base, allocation=None)
        comp = implicit_allocation(pooled)
        comp_name = "complete randomisation"
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    curves = []
    for design_alloc in (alloc, comp):  # the pilot's scheme and the comparison
        codes = draw_many(design_alloc, simulations, rng)
        pseudo = _pseudo_panel(history, design_alloc.with_codes(codes[0]), start, post)
        prep = prepare(pseudo, outcome, opts)
        idx = design_alloc.index_of(prep.design.labels)
        plain = prep.design.weight is None and np.unique(prep.design.cluster).size == prep.design.n
        batched = batched_hc2 if plain else batched_cr2  # weights or coarser clusters: CR2
        est, se, dof = batched(prep, codes[:, idx], prep.design.y)
        ok = np.isfinite(est) & np.isfinite(se) & (se > 0) & np.isfinite(dof)
        q = stats.t.ppf(1 - alpha / 2, dof[ok])
        curves.append((est[ok], se[ok], q))
    mdes = [_mde(e, s, q, target) for e, s, q in curves]
    top = max((m for m in mdes if m is not None), default=float(np.median(curves[0][1])) * 4)
    effects = np.linspace(0.0, 1.5 * top, 13)
    powers = [_power(e, s, q, effects) for e, s, q in curves]
    n_treated = int((alloc.codes > 0).sum())
    what = {
        "stratified": "Randomising within strata",
        "pairs": f"Pairing on {', '.join(spec.pairs_on or [])} before the start",
        "rerandomise": "Re-randomising until the arms are balanced",
        "complete": f"Pairing on {outcome} before the start",
    }[spec.scheme]
    m0, m1 = mdes
    if spec.scheme == "complete":
        m0, m1 = m1, m0  # the comparison is the scheme the pilot could use
    if m0 is None or m1 is None:
        sentence = (
            f"{what} was compared with complete randomisation, but the minimum detectable "
            "effect of at least one of them lies beyond the effects simulated."
        )
    else:
        base_name = "complete randomisation"
        verb = "would lower" if spec.scheme == "complete" else "lowers"
        if m0 > m1 * (1 + SAME_MDE):
            verb = "would raise" if spec.scheme == "complete" else "raises"
        elif abs(m0 - m1) <= SAME_MDE * max(m1, 1e-12):
            verb = "would leave" if spec.scheme == "complete" else "leaves"
        sentence = (
            f"{what} {verb} the minimum detectable effect from {_fmt(m1)} ({base_name}) to "
            f"{_fmt(m0)} with {n_treated} of {alloc.n_units} units treated and {post} periods "
            f"after the start ({simulations} simulated allocations each){note}."
        )
        if "leave" in verb:
            sentence = (
                f"{what} {verb} the minimum detectable effect at about {_fmt(m0)}, as with "
                f"{base_name} ({n_treated} of {alloc.n_units} units treated, {post} periods "
                f"after the start){note}."
            )
    return SchemePower(
        scheme=spec.scheme,
        comparison=comp_name,
        n_units=alloc.n_units,
        n_treated=n_treated,
        post_periods=post,
        simulations=simulations,
        mde=mdes[0],
        mde_comparison=mdes[1],
        effects=tuple(float(e) for e in effects * sign),
        power=tuple(float(v) for v in powers[0]),
        power_comparison=tuple(float(v) for v in powers[1]),
        sentence=sentence,
    )


def _fmt(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    digits = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"{x:.{digits}f}"
