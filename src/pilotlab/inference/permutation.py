"""Design-based randomisation inference: re-assign treatment across units and re-estimate.

The assignment is permuted across units (or across clusters, when treatment was assigned to
whole clusters): with a common start this chooses which units are treated; with a staggered
roll-out the adoption dates are permuted across units, so the roll-out schedule (how many units
start in each period) is kept. The p-value is exact when every distinct assignment can be
enumerated within the replication budget, else Monte Carlo (``(1 + #{|b*| >= |b|}) / (B + 1)``).
The assignments are drawn by :mod:`pilotlab.data.assignment`, as every placebo draw is.
The confidence interval collects the effects ``tau`` whose sharp null (``Y(0) = Y - tau D``
for every unit and period) is not rejected; it is found by root-finding on ``p(tau)``.

Fast path (TWFE / 2x2 DiD, balanced panel, no covariates or weights). The two-way within
transform is a projection, so ``sum(D~ y) = sum(D y~)`` with ``y~`` the two-way demeaned outcome
matrix, and ``sum(D~ D)`` depends on the adoption dates only through the schedule, which a
permutation keeps. With ``R[i, g] = sum_{t >= g} y~[i, t]`` (a reverse cumulative sum) the
estimate under any assignment ``g`` is ``sum_i R[i, g_i] / den``: all permutations are one
gather-and-sum, and under ``Y - tau D`` every permuted estimate is affine in ``tau``.

Cohort-block path (an estimator with a ``block_map``: Callaway & Sant'Anna without covariates on
a balanced panel). The headline is ``sum_i coef[block_i] . y_i`` with coefficients fixed by the
cohort sizes, which a re-assignment of units keeps, so every permuted estimate (and its slope in
``tau``) is one gather-and-sum as on the TWFE path; the map is checked against the estimator's
own estimate before it is used, and designs it does not cover re-fit.

Generic path (any registered estimator). Each assignment is re-estimated with the estimator's
own ``fit``. For the interval the estimator is assumed linear in the outcome (true of every DiD
estimator without data-dependent weights); this is checked on the observed assignment and the
interval is left undefined (with the reason) when it fails.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pilotlab.data.assignment import (
    Reassignments,
    permute_labels,
    reassign,
)
from pilotlab.data.panel import NEVER, TIME, UNIT, Panel
from pilotlab.estimators.base import EstimatorEntry, EstimatorOptions
from pilotlab.exceptions import EstimationError, PilotlabError
from pilotlab.inference.randomisation import (
    arm_p_adjusted,
    scheme_reassignments,
    scheme_test,
    uses_scheme,
)
from pilotlab.inference.sharp_null import invert as _invert
from pilotlab.inference.sharp_null import p_value_function as _p_value_fn
from pilotlab.parallel import map_chunks, scheduler_address, worker_count

__all__ = [
    "PermutationResult",
    "permutation_test",
    "placebo_estimates",
    "twfe_permutation",
]


@dataclass(frozen=True)
class PermutationResult:
    """Randomisation-inference result for one effect.

    Attributes
    ----------
    estimate : float
        The estimate under the actual assignment.
    p_value : float
        Two-sided p-value of the sharp null of no effect.
    ci_lower, ci_upper : float
        Interval of effects whose sharp null is not rejected at ``alpha`` (``nan`` when it
        cannot be computed; see ``note``).
    n_assignments : int
        Number of assignments used (all of them when ``exact``).
    exact : bool
        Whether every distinct assignment was enumerated.
    method : {"fast_twfe", "cohort_blocks", "generic", "scheme"}
        Which path computed it.
    level : {"unit", "cluster"}
        What was permuted.
    alpha : float
    note : str
        Anything the reader should know (e.g. why an interval is missing).
    note_code : str
        The warning code of ``note`` (see :data:`pilotlab.exceptions.NOTICE_CODES`).
    """

    estimate: float
    p_value: float
    ci_lower: float
    ci_upper: float
    n_assignments: int
    exact: bool
    method: Literal["fast_twfe", "cohort_blocks", "generic", "scheme"]
    level: Literal["unit", "cluster"]
    alpha: float
    note: str = ""
    distribution: tuple[float, ...] = ()
    note_code: str = ""
    #: The allocation scheme re-drawn (randomised pilots; empty otherwise).
    scheme: str = ""
    #: Per treated arm (several arms): randomisation p-value, its Holm adjustment, interval.
    arms: tuple[tuple[float, float, float, float], ...] = ()

    def sentence(self) -> str:
        """One line for the report."""
        if self.scheme:
            how = (
                f"all {self.n_assignments:,} allocations the {self.scheme} scheme could draw"
                if self.exact
                else f"{self.n_assignments:,} allocations re-drawn as the {self.scheme} scheme "
                "drew the pilot's"
            )
            return f"Randomisation inference over {how}: p = {self.p_value:.3f}."
        how = (
            f"all {self.n_assignments:,} possible assignments"
            if self.exact
            else f"{self.n_assignments:,} random re-assignments"
        )
        return (
            f"Randomisation inference over {how} of treatment across {self.level}s: "
            f"p = {self.p_value:.3f}."
        )


# ----------------------------------------------------------------------------- fast path
def twfe_permutation(
    y: np.ndarray,
    first_treated: np.ndarray,
    assignments: np.ndarray,
    *,
    exact: bool,
    alpha: float = 0.05,
    weights: np.ndarray | None = None,
) -> tuple[float, float, float, float, np.ndarray]:
    """Permutation inference for the TWFE coefficient on a balanced ``(N, T)`` outcome matrix.

    The coefficient under an assignment of start periods ``g`` is ``sum_i R[i, g_i] / den``,
    ``R[i, g]`` the sum of unit ``i``'s two-way residual outcomes from period ``g`` on, and
    ``den`` that of the treatment indicator, which a re-assignment keeping the roll-out schedule
    leaves as it is. With unit ``weights`` (constant over each unit's periods) weighted least
    squares on unit and period effects has the closed-form residuals ``a_it - abar_i - abar^w_t
    + abar^w`` (plain unit means, weighted period means), the sums count each unit's weight, and
    the denominator moves with the assignment through the weight treated in each period
    ``D_t``: with ``n_i = T - g_i`` treated periods and ``W`` the total weight,
    ``den = sum_i w_i n_i (1 - n_i / T) - sum_t D_t^2 / W + (sum_i w_i n_i)^2 / (W T)``.

    Parameters
    ----------
    y : numpy.ndarray
        ``(N, T)`` outcomes (no missing values).
    first_treated : numpy.ndarray
        ``(N,)`` period index of first treatment (``>= T`` or :data:`NEVER` for never).
    assignments : numpy.ndarray
        ``(B, N)`` permuted ``first_treated`` vectors.
    exact : bool
        Whether ``assignments`` is the full enumeration (includes the actual one).
    alpha : float
    weights : numpy.ndarray, optional
        ``(N,)`` analytic weight of each unit.

    Returns
    -------
    estimate, p_value, ci_lower, ci_upper, permuted_estimates
    """
    n, t = y.shape

    def starts(labels: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.clip(np.minimum(labels, t), 0, t).astype(np.int64)
        return out

    g = starts(first_treated)
    d = (np.arange(t)[None, :] >= g[:, None]).astype(np.float64)
    w = weights
    if w is None:

        def residual(a: np.ndarray) -> np.ndarray:
            out: np.ndarray = a - a.mean(1, keepdims=True) - a.mean(0, keepdims=True) + a.mean()
            return out

        den_obs: float = float(np.sum(d * residual(d)))

        def spread(ga: np.ndarray) -> float | np.ndarray:
            return den_obs  # the roll-out schedule is kept: the same for every assignment

        scale = 1.0
    else:
        total = float(w.sum())

        def residual(a: np.ndarray) -> np.ndarray:
            unit = a.mean(axis=1, keepdims=True)
            out: np.ndarray = a - unit - (w @ a)[None, :] / total + float(w @ unit[:, 0]) / total
            return out

        def spread(ga: np.ndarray) -> float | np.ndarray:
            """``den`` of each row of start periods ``ga`` (``(B, N)``)."""
            b = ga.shape[0]
            treated = t - ga  # n_i
            wn = treated @ w
            # weight starting in each period, then treated in each period (cumulative)
            by_start = np.bincount(
                (np.arange(b)[:, None] * (t + 1) + ga).ravel(),
                weights=np.broadcast_to(w, ga.shape).ravel(),
                minlength=b * (t + 1),
            ).reshape(b, t + 1)
            D = np.cumsum(by_start[:, :t], axis=1)
            out: np.ndarray = (
                (treated * (1.0 - treated / t)) @ w
                - (D**2).sum(axis=1) / total
                + wn**2 / (total * t)
            )
            return out

        den_obs = float(np.asarray(spread(g[None, :]))[0])
        scale = total / n
    if not den_obs > 1e-12 * d.size * scale:
        raise EstimationError(
            "the treatment indicator has no variation left after removing unit and period "
            "effects (every unit treated at the same time as the panel starts, or none treated); "
            "the TWFE effect is not identified."
        )
    zeros = np.zeros((n, 1))
    r_y = np.hstack([np.cumsum(residual(y)[:, ::-1], axis=1)[:, ::-1], zeros])  # R[i, g]
    r_d = np.hstack([np.cumsum(residual(d)[:, ::-1], axis=1)[:, ::-1], zeros])
    if w is not None:
        r_y *= w[:, None]
        r_d *= w[:, None]
    rows = np.arange(n)
    estimate = float(r_y[rows, g].sum() / den_obs)
    b_perm = np.empty(assignments.shape[0])
    slope = np.empty(assignments.shape[0])
    chunk = max(1, 4_000_000 // max(n, 1))
    for s in range(0, assignments.shape[0], chunk):  # bounded memory for large designs
        ga = starts(assignments[s : s + chunk])
        with np.errstate(divide="ignore", invalid="ignore"):  # no variation: NaN, left out
            den = spread(ga)
            b_perm[s : s + chunk] = r_y[rows[None, :], ga].sum(1) / den
            slope[s : s + chunk] = r_d[rows[None, :], ga].sum(1) / den
    p_fn = _p_value_fn(estimate, b_perm, slope, exact)
    scale_perm = float(np.std(b_perm)) or abs(estimate) or 1.0
    lo, hi = _invert(p_fn, estimate, scale_perm, alpha)
    return estimate, p_fn(0.0), lo, hi, b_perm


def _refit_chunk(
    entry: EstimatorEntry,
    panel_d: Panel,
    outcome: str,
    d_col: str,
    opts: EstimatorOptions,
    assignments: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, str]:
    """The estimate and the treatment column's slope under each of ``assignments``."""
    b = np.full(len(assignments), np.nan)
    s = np.full(len(assignments), np.nan)
    failure = ""
    rng = np.random.default_rng(0)  # unused: only fits that draw nothing are sent here
    for i, ft in enumerate(assignments):  # one re-estimation per assignment (generic)
        permuted = panel_d.with_first_treated(ft)
        try:
            b[i] = float(entry.fit(permuted, outcome, opts, rng).estimate)
            s[i] = float(entry.fit(permuted, d_col, opts, rng).estimate)
        except PilotlabError as exc:
            failure = failure or str(exc)
    return b, s, failure


def _refit_elsewhere(
    entry: EstimatorEntry,
    panel_d: Panel,
    outcome: str,
    d_col: str,
    opts: EstimatorOptions,
    assignments: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, str]:
    """:func:`_refit_chunk` over all ``assignments``, in chunks on the Dask workers."""
    n_chunks = min(len(assignments), worker_count(1) * 4)
    bounds = np.linspace(0, len(assignments), n_chunks + 1).astype(int)
    chunks = [
        (entry, panel_d, outcome, d_col, opts, assignments[a:b])
        for a, b in itertools.pairwise(bounds)
    ]
    parts = map_chunks(_refit_chunk, chunks)
    failure = next((f for _, _, f in parts if f), "")
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        failure,
    )


def _fast_path_ok(
    panel: Panel, outcome: str, entry: EstimatorEntry, options: EstimatorOptions
) -> bool:
    if not entry.capabilities.closed_form_permutation or options.covariates:
        return False
    if panel.weighted and panel.unit_weights() is None:
        return False  # weights that vary within a unit: refit
    if not panel.is_balanced:
        return False
    return not bool(np.isnan(panel.y(outcome)).any())


def _outcome_matrix(panel: Panel, outcome: str) -> np.ndarray:
    y = np.empty((panel.n_units, panel.n_periods))
    y[panel.frame[UNIT].to_numpy(), panel.frame[TIME].to_numpy()] = panel.y(outcome)
    return y


# ----------------------------------------------------------------------------- public
def permutation_test(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    *,
    replications: int | None = None,
    alpha: float | None = None,
) -> PermutationResult:
    """Randomisation inference for ``entry`` on ``panel``: p-value and sharp-null interval.

    Parameters
    ----------
    panel : Panel
        The analysis panel with the actual assignment in ``first_treated``.
    outcome : str
        Outcome column.
    entry : EstimatorEntry
        The estimator (``ESTIMATORS[name]``). TWFE and DiD on balanced panels without covariates
        or weights use the analytic fast path; anything else re-estimates with ``entry.fit``.
    options : EstimatorOptions
        Options of the main analysis; ``replications`` and ``alpha`` default to its values.
    rng : numpy.random.Generator
        Randomness for the Monte Carlo assignments.
    replications, alpha : optional
        Override ``options.replications`` / ``options.alpha``.

    Returns
    -------
    PermutationResult
    """
    reps = int(options.replications if replications is None else replications)
    a = float(options.alpha if alpha is None else alpha)
    if reps < 19:
        raise EstimationError(
            f"design.inference.replications is {reps}; randomisation inference needs at least "
            "19 (999 or more recommended)."
        )
    waves = panel.allocation is not None and panel.allocation.stepped
    if waves and np.unique(panel.first_treated).size < 2:
        raise EstimationError(
            "randomisation inference needs units that start at different times; every "
            "analysed unit of the roll-out starts in the same period."
        )
    if not waves and (panel.n_treated_units == 0 or panel.n_treated_units == panel.n_units):
        raise EstimationError(
            f"randomisation inference needs treated and untreated units; found "
            f"{panel.n_treated_units} treated of {panel.n_units}."
        )
    scheme = ""
    if uses_scheme(panel, entry):  # a randomised pilot: re-draw as its scheme drew it
        if entry.capabilities.randomised:
            return _scheme_result(panel, outcome, options, rng, reps, a)
        draws = scheme_reassignments(panel, reps, rng)
        scheme = panel.allocation.scheme if panel.allocation is not None else "complete"
    else:
        draws = reassign(panel, reps, rng)
    if _fast_path_ok(panel, outcome, entry, options):
        y = _outcome_matrix(panel, outcome)
        est, p, lo, hi, dist = twfe_permutation(
            y, draws.observed_effective, draws.effective, exact=draws.exact, alpha=a,
            weights=panel.unit_weights() if panel.weighted else None,
        )  # fmt: skip
        return PermutationResult(
            est, p, lo, hi, draws.n_assignments, draws.exact, "fast_twfe", draws.level, a,
            distribution=tuple(float(v) for v in dist[:2000]), scheme=scheme,
        )  # fmt: skip
    if not scheme:  # a randomised pilot's re-draws may change the cohort sizes: re-fit those
        blocks = _by_blocks(panel, outcome, entry, options, rng, draws, a)
        if blocks is not None:
            return blocks
    result = _generic(panel, outcome, entry, options, rng, draws, a)
    return dataclasses.replace(result, scheme=scheme) if scheme else result


def _scheme_result(
    panel: Panel,
    outcome: str,
    options: EstimatorOptions,
    rng: np.random.Generator,
    replications: int,
    alpha: float,
) -> PermutationResult:
    """Randomisation inference of the randomised estimator (one batched solve per chunk)."""
    t = scheme_test(panel, outcome, options, rng, replications, alpha)
    arms: tuple[tuple[float, float, float, float], ...] = ()
    if t.arms:
        adj = arm_p_adjusted(t.arms)
        arms = tuple(
            (a.p_value, float(q), a.ci_lower, a.ci_upper) for a, q in zip(t.arms, adj, strict=True)
        )
    note, code = "", ""
    if t.skipped:
        code = "permutation-assignments-skipped"
        note = (
            f"{t.skipped:,} re-drawn allocations left an arm without analysed units and were "
            "left out of the randomisation test."
        )
    return PermutationResult(
        t.estimate, t.p_value, t.ci_lower, t.ci_upper, t.n_assignments, t.exact, "scheme",
        "unit", alpha, note, distribution=tuple(float(v) for v in t.distribution[:2000]),
        note_code=code, scheme=t.scheme, arms=arms,
    )  # fmt: skip


def _by_blocks(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    draws: Reassignments,
    alpha: float,
) -> PermutationResult | None:
    """The cohort-block path, or ``None`` when the estimator has no map for this design, or
    some re-assignment of whole clusters (of unequal sizes) changes the cohort sizes."""
    if entry.block_map is None or not panel.is_rectangular:
        return None
    cheap = entry.base_inference
    opts = dataclasses.replace(options, inference=cheap, pretrend="none")  # type: ignore[arg-type]
    est = float(entry.fit(panel, outcome, opts, rng).estimate)
    mapped = entry.block_map(panel, outcome, opts, est)
    if mapped is None:
        return None
    shape = (panel.n_units, panel.n_periods)
    blocks = mapped.blocks(draws.first_treated_rows())
    if draws.level != "unit" and not mapped.keeps_sizes(blocks, panel.first_treated):
        return None
    both = np.stack([panel.y(outcome), panel.treated_now.astype(np.float64)]).reshape(2, *shape)
    b_perm, slope = mapped.estimates(both, blocks).T
    p_fn = _p_value_fn(est, b_perm, slope, draws.exact)
    scale = float(np.std(b_perm)) or abs(est) or 1.0
    lo, hi = _invert(p_fn, est, scale, alpha)
    return PermutationResult(
        est, p_fn(0.0), lo, hi, draws.n_assignments, draws.exact, "cohort_blocks", draws.level,
        alpha, distribution=tuple(float(v) for v in b_perm[:2000]),
    )  # fmt: skip


def _generic(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    draws: Reassignments,
    alpha: float,
) -> PermutationResult:
    exact, level = draws.exact, draws.level
    cheap = entry.base_inference
    # only the estimate is needed per assignment: skip the pre-trend test
    opts = dataclasses.replace(options, inference=cheap, pretrend="none")  # type: ignore[arg-type]
    d_col = "_perm_treated"
    frame = panel.frame.copy()
    frame[d_col] = panel.treated_now.astype(np.float64)
    panel_d = panel.with_frame(frame)

    def estimate(p: Panel, col: str) -> float:
        return float(entry.fit(p, col, opts, rng).estimate)

    est = estimate(panel, outcome)
    b_perm = np.full(draws.n_assignments, np.nan)
    slope = np.full(draws.n_assignments, np.nan)
    first_failure = ""
    assignments = draws.first_treated()
    state = rng.bit_generator.state
    for i, ft in enumerate(assignments):  # one re-estimation per assignment (generic)
        permuted = panel_d.with_first_treated(ft)
        try:
            b_perm[i] = estimate(permuted, outcome)
            slope[i] = estimate(permuted, d_col)
        except PilotlabError as exc:  # this re-assignment cannot be estimated (e.g. collinear)
            first_failure = first_failure or str(exc)
        if i == 0 and scheduler_address() is not None and rng.bit_generator.state == state:
            # the refits draw nothing from rng, so the other assignments (drawn above, from
            # the same generator as ever) can be refitted anywhere, in chunks, in any order
            rest = _refit_elsewhere(entry, panel_d, outcome, d_col, opts, list(assignments[1:]))
            b_perm[1:], slope[1:] = rest[0], rest[1]
            first_failure = first_failure or rest[2]
            break
    ok = np.isfinite(b_perm) & np.isfinite(slope)
    n_total = int(ok.size)
    skipped = n_total - int(ok.sum())
    b_perm, slope = b_perm[ok], slope[ok]
    if b_perm.size == 0:
        raise EstimationError(
            f"design.inference.method: permutation inference failed: the {entry.name} estimate "
            f"cannot be computed under any of the {n_total:,} re-assignments of treatment "
            f"(first reason: {first_failure}); use another inference method."
        )
    note, note_code = "", ""
    # Linearity check on the observed assignment: fit(Y - tau D) = fit(Y) - tau fit(D).
    tau = est if est != 0 else 1.0
    frame2 = frame.copy()
    frame2[outcome] = frame[outcome] - tau * frame[d_col]
    lhs = estimate(panel.with_frame(frame2), outcome)
    rhs = est - tau * estimate(panel_d, d_col)
    p_fn = _p_value_fn(est, b_perm, slope, exact)
    if abs(lhs - rhs) > 1e-6 * (1 + abs(est)):
        lo = hi = math.nan
        note_code = "permutation-no-interval"
        note = (
            f"the {entry.name} estimator is not linear in the outcome, so the sharp-null "
            "interval was not computed; the p-value is valid."
        )
    else:
        scale = float(np.std(b_perm)) or abs(est) or 1.0
        lo, hi = _invert(p_fn, est, scale, alpha)
    if skipped:
        what = "possible assignments" if exact else "random re-assignments"
        many = (
            "; with so many left out the p-value rests on few assignments: treat it with care"
            if 2 * skipped > n_total
            else ""
        )
        note_code = "permutation-assignments-skipped"
        note = (
            f"{skipped:,} of {n_total:,} {what} of treatment were left out of the randomisation "
            f"test because the {entry.name} estimate cannot be computed under them (first "
            f"reason: {first_failure}); the p-value compares the actual estimate with the "
            f"{b_perm.size:,} assignments that can be estimated{many}."
            + (f" {note}" if note else "")
        )
    return PermutationResult(
        est, p_fn(0.0), lo, hi, int(b_perm.size), exact, "generic", level, alpha, note,
        distribution=tuple(float(v) for v in b_perm[:2000]), note_code=note_code,
    )  # fmt: skip


def placebo_estimates(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    labels: np.ndarray,
    replications: int,
) -> tuple[np.ndarray, bool]:
    """Estimates of ``entry`` under re-assignments of ``labels`` across the units of ``panel``.

    Used for placebo-in-space: ``panel`` holds comparison units only and ``labels`` (one per
    unit) carries the real adoption dates for as many units as were treated, ``NEVER`` for the
    rest. Returns the estimates and whether all assignments were enumerated.
    """
    labels = np.asarray(labels, dtype=np.int64)
    assign, exact = permute_labels(labels, replications, rng)
    if _fast_path_ok(panel, outcome, entry, options):
        y = _outcome_matrix(panel, outcome)
        t = y.shape[1]
        first = assign[0]
        g = np.clip(np.minimum(first, t), 0, t)
        d = (np.arange(t)[None, :] >= g[:, None]).astype(np.float64)
        d_dm = d - d.mean(1, keepdims=True) - d.mean(0, keepdims=True) + d.mean()
        den = float(np.sum(d * d_dm))
        y_dm = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + y.mean()
        r_y = np.hstack([np.cumsum(y_dm[:, ::-1], axis=1)[:, ::-1], np.zeros((y.shape[0], 1))])
        ga = np.clip(np.minimum(assign, t), 0, t)
        return r_y[np.arange(y.shape[0])[None, :], ga].sum(1) / den, exact
    cheap = entry.base_inference
    opts = dataclasses.replace(options, inference=cheap, pretrend="none")  # type: ignore[arg-type]
    actual = np.where(assign == NEVER, NEVER, assign + panel.anticipation)
    out = np.empty(assign.shape[0])
    state = rng.bit_generator.state
    for i, ft in enumerate(actual):  # one re-estimation per placebo assignment (generic path)
        placebo = panel.with_first_treated(ft)
        out[i] = entry.fit(placebo, outcome, opts, rng).estimate
        if i == 0 and rng.bit_generator.state == state:
            # the fit draws nothing from rng: the others may come from its cohort-block map
            rest = _placebo_blocks(placebo, outcome, entry, opts, float(out[0]), actual[1:])
            if rest is not None:
                out[1:] = rest
                break
    return out, exact


def _placebo_blocks(
    placebo: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    estimate: float,
    first_treated: np.ndarray,
) -> np.ndarray | None:
    """The estimates under the assignments ``first_treated`` (rows) from the cohort-block map
    of ``entry`` fitted on ``placebo`` (one of them), or ``None`` when it has none here."""
    if entry.block_map is None or not placebo.is_rectangular or first_treated.shape[0] == 0:
        return None
    mapped = entry.block_map(placebo, outcome, options, estimate)
    if mapped is None:
        return None
    blocks = mapped.blocks(first_treated)
    if not mapped.keeps_sizes(blocks, placebo.first_treated):
        return None
    y = placebo.y(outcome).reshape(1, placebo.n_units, placebo.n_periods)
    est: np.ndarray = mapped.estimates(y, blocks)[:, 0]
    return est
