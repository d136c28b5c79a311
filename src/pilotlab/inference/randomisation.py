"""Randomisation inference that re-draws allocations exactly as the pilot's scheme drew them.

A randomised pilot's allocation (:class:`~pilotlab.data.allocation.Allocation`) says how it was
drawn: the blocks (strata or pairs), the number of units of each arm or wave in each block, and
for re-randomisation the balance criterion. :func:`scheme_draws` re-draws allocations the same
way (:func:`~pilotlab.data.allocation.draw_many`), or enumerates every one when there are no
more than the replications asked for (then the test is exact). A pilot without an allocation is
treated as one completely randomised block of its units.

For an estimator with the ``randomised`` capability the estimate under every re-draw is
computed at once (:func:`batched_estimates`): the randomised estimator is least squares of the
unit-level outcome on arm indicators, centred covariates and their interactions, with block
fixed effects; the fixed effects are removed by demeaning within blocks (Frisch-Waugh-Lovell),
and the few remaining coefficients of every draw come from one batched solve of its normal
equations. Because the estimator is linear in the outcome, the same solve with the observed
treatment indicator as the outcome gives the slope of each re-drawn estimate in the effect
``tau`` of the sharp null ``Y(0) = Y - tau D``, so intervals by test inversion need no further
solves. Any other estimator (the staggered estimators of a stepped roll-out) is refitted for each
re-drawn order of the waves by :mod:`pilotlab.inference.permutation`.

Several arms: the headline (any treated arm against control) is tested under the sharp null of
one common effect of every arm. Each arm against control is tested conditionally on which units
are in the other arms: only the units of that arm and control are re-drawn, within their blocks
(keeping the balance criterion for re-randomisation), under that arm's sharp null; the arms'
randomisation p-values are Holm-adjusted.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from pilotlab.data.allocation import Allocation, balance, draw_many
from pilotlab.data.assignment import MAX_ENUMERATION, Reassignments, count_assignments
from pilotlab.data.assignment import enumerate_assignments as _enumerate_labels
from pilotlab.data.panel import NEVER, Panel
from pilotlab.estimators.base import EstimatorEntry, EstimatorOptions
from pilotlab.estimators.randomised import Prepared, holm, prepare
from pilotlab.exceptions import EstimationError
from pilotlab.inference.sharp_null import invert, p_value_function

__all__ = [
    "SchemeDraws",
    "batched_estimates",
    "implicit_allocation",
    "scheme_draws",
    "scheme_reassignments",
    "scheme_test",
]

#: Entries of the largest temporary array of a batched solve.
_CHUNK = 4_000_000


def implicit_allocation(panel: Panel) -> Allocation:
    """A panel without an allocation as one completely randomised block of its units."""
    treated = panel.is_treated_unit
    codes = treated.astype(np.int64)
    n1 = int(treated.sum())
    return Allocation(
        units=tuple(panel.unit_labels),
        codes=codes,
        groups=("control", "treated"),
        scheme="complete",
        seed=0,
        stratum=np.zeros(panel.n_units, dtype=np.int64),
        stratum_labels=("all",),
        counts=np.array([[panel.n_units - n1, n1]], dtype=np.int64),
        starts=(None, None),
    )


def conditional_allocation(allocation: Allocation, arm: int) -> Allocation:
    """The design of re-drawing only arm ``arm`` and control, the other arms' units fixed.

    Units of the other arms each get a block of their own (one unit, its code), so every draw
    leaves them where they are; the units of ``arm`` and control keep their block with the
    observed counts. The balance criterion, if any, is kept (it is checked on the whole
    allocation).
    """
    codes = allocation.codes.astype(np.int64)
    inside = (codes == 0) | (codes == arm)
    S = len(allocation.stratum_labels)
    stratum = np.where(inside, allocation.stratum, S + np.arange(codes.size))
    _, block = np.unique(stratum, return_inverse=True)
    nb = int(block.max()) + 1
    counts = np.zeros((nb, allocation.n_groups), dtype=np.int64)
    np.add.at(counts, (block, codes), 1)
    labels = tuple(str(b) for b in range(nb))
    return dataclasses.replace(
        allocation, stratum=block.astype(np.int64), stratum_labels=labels, counts=counts
    )


@dataclass(frozen=True)
class SchemeDraws:
    """Allocations re-drawn as the scheme drew them.

    Attributes
    ----------
    codes : numpy.ndarray
        ``(R, n)`` codes of the allocation's units in each re-draw.
    exact : bool
        Whether the rows are every possible allocation (the observed one among them).
    """

    codes: np.ndarray
    exact: bool

    @property
    def n(self) -> int:
        """Number of re-draws."""
        return int(self.codes.shape[0])


def _count(allocation: Allocation) -> int:
    return math.prod(count_assignments(row[row > 0]) for row in np.asarray(allocation.counts))


def _enumerate(allocation: Allocation) -> np.ndarray:
    """Every allocation of the design (a cartesian product of each block's arrangements),
    filtered by the balance criterion for re-randomisation."""
    stratum = allocation.stratum
    n = allocation.n_units
    per_block = []
    members = []
    for s in range(np.asarray(allocation.counts).shape[0]):  # blocks; only for small designs
        idx = np.flatnonzero(stratum == s)
        members.append(idx)
        per_block.append(_enumerate_labels(allocation.codes[idx].astype(np.int64)))
    sizes = [b.shape[0] for b in per_block]
    grid = np.indices(sizes).reshape(len(sizes), -1).T  # (K, S) choice in each block
    out = np.empty((grid.shape[0], n), dtype=np.int64)
    for s, (idx, rows) in enumerate(zip(members, per_block, strict=True)):
        out[:, idx] = rows[grid[:, s]]
    if allocation.max_std_diff is not None:
        d = balance(out, allocation.balance_values, allocation.n_groups)
        a = np.abs(d)
        a = np.where(np.isnan(a), np.inf, a).reshape(out.shape[0], -1).max(axis=1)
        out = out[a <= allocation.max_std_diff]
    return out


def scheme_draws(
    allocation: Allocation, replications: int, rng: np.random.Generator
) -> SchemeDraws:
    """Re-draw ``allocation`` as its scheme did: every allocation when there are at most
    ``replications`` (and :data:`~pilotlab.data.assignment.MAX_ENUMERATION`), else
    ``replications`` random ones from :func:`~pilotlab.data.allocation.draw_many`."""
    total = _count(allocation)
    if total <= min(replications, MAX_ENUMERATION):
        return SchemeDraws(_enumerate(allocation), True)
    return SchemeDraws(draw_many(allocation, replications, rng), False)


def scheme_reassignments(
    panel: Panel, replications: int, rng: np.random.Generator
) -> Reassignments:
    """The panel's allocation re-drawn as :class:`~pilotlab.data.assignment.Reassignments`
    (first treated period of every unit per re-draw), for estimators that are refitted.

    A stepped roll-out's re-draws permute the waves within blocks: the order in which units
    start, as the allocation drew it.
    """
    alloc = panel.allocation if panel.allocation is not None else implicit_allocation(panel)
    idx = alloc.index_of(panel.unit_labels)
    if (idx < 0).any():
        raise EstimationError(
            "randomisation inference: some analysed units are not in the allocation; the "
            "allocation no longer matches the data"
        )
    observed = alloc.codes[idx]
    code_ft = np.full(alloc.n_groups, NEVER, dtype=np.int64)
    for k in range(1, alloc.n_groups):  # a few arms or waves
        ft = panel.first_treated[observed == k]
        if ft.size:
            code_ft[k] = int(ft[0])
        elif alloc.starts[k] in panel.period_labels:
            code_ft[k] = panel.period_labels.index(str(alloc.starts[k]))
    draws = scheme_draws(alloc, replications, rng)
    ft_draws = code_ft[draws.codes[:, idx]]
    shift = int(panel.anticipation)

    def eff(ft: np.ndarray) -> np.ndarray:
        return np.where(ft == NEVER, NEVER, ft - shift)

    return Reassignments.of_labels(
        eff(ft_draws), eff(panel.first_treated), draws.exact, "unit", shift
    )


# ----------------------------------------------------------------------------- batched solve


def _block_demean(a: np.ndarray, block: np.ndarray | None, w: np.ndarray) -> np.ndarray:
    """``a`` (``(..., n)``) less its weighted mean within each block (or overall)."""
    if block is None:
        centred: np.ndarray = a - (a @ w)[..., None] / w.sum()
        return centred
    S = int(block.max()) + 1
    B = np.zeros((a.shape[-1], S))
    B[np.arange(a.shape[-1]), block] = w
    means = (a @ B) / B.sum(axis=0)
    out: np.ndarray = a - means[..., block]
    return out


def batched_estimates(
    prep: Prepared, codes: np.ndarray, outcomes: np.ndarray, arms: tuple[int, ...] | None = None
) -> np.ndarray:
    """The randomised estimator under every row of ``codes``, for several outcome vectors.

    Parameters
    ----------
    prep : Prepared
        The observed design (:func:`pilotlab.estimators.randomised.prepare`): blocks, centred
        covariates, whether they are interacted.
    codes : numpy.ndarray
        ``(R, n)`` arm codes of the analysed units in each re-draw.
    outcomes : numpy.ndarray
        ``(m, n)`` outcome vectors (the outcome, and the observed treatment indicators for the
        slopes of test inversion).
    arms : tuple of int, optional
        Codes whose indicators are the treatment columns (default: every treated arm); with
        ``(-1,)`` the pooled indicator ``code > 0``.

    Returns
    -------
    numpy.ndarray
        ``(R, m, K)``: the coefficient of each treatment column, per draw and outcome (NaN for
        a draw in which some column has no units).
    """
    design = prep.design
    n = design.n
    w = np.ones(n) if design.weight is None else design.weight
    block = design.block
    arm_codes = arms if arms is not None else tuple(range(1, design.n_arms + 1))
    K = len(arm_codes)
    xc = prep.xc
    p = xc.shape[1] if prep.adjustment != "none" else 0
    xt = _block_demean(xc.T, block, w).T if p else np.empty((n, 0))  # fixed columns
    Y = _block_demean(np.atleast_2d(outcomes), block, w)  # (m, n)
    R = codes.shape[0]
    k = K + p + (K * p if prep.interact else 0)
    out = np.full((R, Y.shape[0], K), np.nan)
    step = max(1, _CHUNK // max(n * k, 1))
    for a in range(0, R, step):  # chunks of draws, each one batched solve
        c = codes[a : a + step]
        r = c.shape[0]
        if arm_codes == (-1,):
            D = (c > 0).astype(np.float64)[:, :, None]
        else:
            D = (c[:, :, None] == np.asarray(arm_codes)[None, None, :]).astype(np.float64)
        cols = [_block_demean(np.transpose(D, (0, 2, 1)), block, w)]  # (r, K, n)
        if p:
            cols.append(np.broadcast_to(xt.T[None], (r, p, n)))
            if prep.interact:
                inter = D[:, :, :, None] * xc[None, :, None, :]  # (r, n, K, p)
                inter = np.transpose(inter.reshape(r, n, K * p), (0, 2, 1))
                cols.append(_block_demean(inter, block, w))
        Z = np.concatenate(cols, axis=1)  # (r, k, n)
        Zw = Z * w[None, None, :]
        ZtZ = np.einsum("rkn,rln->rkl", Zw, Z)
        ZtY = np.einsum("rkn,mn->rkm", Zw, Y)
        ok = np.all(np.einsum("rkk->rk", ZtZ)[:, :K] > 1e-12, axis=1)
        if ok.any():
            try:
                sol = np.linalg.solve(ZtZ[ok], ZtY[ok])
            except np.linalg.LinAlgError:  # a singular draw in the chunk: solve it with pinv
                sol = np.einsum("rkl,rlm->rkm", np.linalg.pinv(ZtZ[ok]), ZtY[ok])
            out[a : a + r][ok] = np.transpose(sol[:, :K, :], (0, 2, 1))
    return out


# ----------------------------------------------------------------------------- the test


@dataclass(frozen=True)
class ArmTest:
    """Randomisation inference of one arm against control."""

    p_value: float
    ci_lower: float
    ci_upper: float


@dataclass(frozen=True)
class SchemeTest:
    """Randomisation inference of the randomised estimator under the pilot's scheme."""

    estimate: float
    p_value: float
    ci_lower: float
    ci_upper: float
    n_assignments: int
    exact: bool
    scheme: str
    distribution: np.ndarray
    arms: tuple[ArmTest, ...] = ()
    skipped: int = 0


def _invert_test(
    est: float, b: np.ndarray, slope: np.ndarray, exact: bool, alpha: float
) -> tuple[float, float, float]:
    ok = np.isfinite(b) & np.isfinite(slope)
    b, slope = b[ok], slope[ok]
    p_fn = p_value_function(est, b, slope, exact)
    scale = float(np.std(b)) or abs(est) or 1.0
    lo, hi = invert(p_fn, est, scale, alpha)
    return p_fn(0.0), lo, hi


def scheme_test(
    panel: Panel,
    outcome: str,
    options: EstimatorOptions,
    rng: np.random.Generator,
    replications: int,
    alpha: float,
) -> SchemeTest:
    """Randomisation inference of the randomised estimator, re-drawing as the scheme did.

    The p-value is ``#{|b*| >= |b|} / K`` over every allocation when they are enumerated, else
    ``(1 + #{|b*| >= |b|}) / (R + 1)``; the interval collects the effects whose sharp null is not
    rejected at ``alpha``.
    """
    prep = prepare(panel, outcome, options)
    design = prep.design
    alloc = panel.allocation if design.allocation_index is not None else None
    alloc = alloc if alloc is not None else implicit_allocation(panel)
    idx = (
        design.allocation_index
        if design.allocation_index is not None
        else alloc.index_of(design.labels)
    )
    observed = design.codes
    K = design.n_arms
    d_obs = (observed > 0).astype(np.float64)
    draws = scheme_draws(alloc, replications, rng)
    c = draws.codes[:, idx]
    pooled = (-1,) if K > 1 else None
    est_obs = batched_estimates(prep, observed[None, :], np.vstack([design.y, d_obs]), pooled)
    res = batched_estimates(prep, c, np.vstack([design.y, d_obs]), pooled)
    b, slope = res[:, 0, 0], res[:, 1, 0]
    skipped = int((~np.isfinite(b)).sum())
    est = float(est_obs[0, 0, 0])
    p, lo, hi = _invert_test(est, b, slope, draws.exact, alpha)
    arm_tests: list[ArmTest] = []
    if K > 1:
        for k in range(1, K + 1):  # a few arms: each its own conditional re-draws
            sub = conditional_allocation(alloc, k)
            dk = scheme_draws(sub, replications, rng)
            ck = dk.codes[:, idx]
            d_k = (observed == k).astype(np.float64)
            obs_k = batched_estimates(prep, observed[None, :], np.vstack([design.y, d_k]))
            rk = batched_estimates(prep, ck, np.vstack([design.y, d_k]))
            pk, lk, hk = _invert_test(
                float(obs_k[0, 0, k - 1]), rk[:, 0, k - 1], rk[:, 1, k - 1], dk.exact, alpha
            )
            arm_tests.append(ArmTest(pk, lk, hk))
    return SchemeTest(
        estimate=est,
        p_value=p,
        ci_lower=lo,
        ci_upper=hi,
        n_assignments=int(np.isfinite(b).sum()),
        exact=draws.exact,
        scheme=alloc.scheme,
        distribution=b[np.isfinite(b)],
        arms=tuple(arm_tests),
        skipped=skipped,
    )


def arm_p_adjusted(tests: tuple[ArmTest, ...]) -> np.ndarray:
    """Holm-adjusted randomisation p-values of the arms."""
    return holm(np.array([t.p_value for t in tests]))


def uses_scheme(panel: Panel, entry: EstimatorEntry) -> bool:
    """Whether randomisation inference for ``entry`` on ``panel`` re-draws a scheme (the panel
    has an allocation, or the estimator analyses randomised designs)."""
    return panel.allocation is not None or entry.capabilities.randomised
