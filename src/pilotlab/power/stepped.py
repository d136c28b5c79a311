"""Power of a stepped roll-out under its own scheme: placebo roll-outs re-drawn as it was drawn.

A stepped pilot randomises its units into waves, each with its start period (within strata when
it has them). Its power is planned on the history before the first wave: the last ``post``
periods of the history play the roll-out, the first wave starts ``post`` periods before the end
and every later wave as many periods after the first as in the pilot file (a wave that would
start after the end of the history stays untreated throughout, a not-yet-treated comparison).
``simulations`` placebo roll-outs are drawn exactly as the scheme draws
(:func:`~pilotlab.data.allocation.draw_many`: the same strata and the same number of units of
each wave in each stratum) and analysed with the estimator and inference of the analysis plan.

Fast path (Callaway & Sant'Anna on a balanced history without covariates; with or without
weights; clusters as declared): every ATT(g,t) is a difference of (weighted) means of outcome
changes between a wave and its comparison waves, so for all placebo roll-outs at once the block
sums of the outcome changes are one product of the ``(R, N, blocks)`` membership array with the
``(N, cells)`` changes, and the aggregated influence function of every roll-out, hence its
cluster-robust standard error, follows from the same sums (the estimated-cohort-share term
included). Injecting an effect ``delta`` on the treated periods moves every estimate by
``delta`` and leaves its standard error unchanged, so one pass answers every effect size. With
randomisation inference (``design.inference.method: permutation``) each placebo roll-out is
tested against re-drawn wave orders (the scheme's own re-draws, ``replications`` of them, from
each placebo's own random stream, after what the estimator's bootstrap draws from it, where the
refitting path draws them); the estimate under every re-draw is a gather of the estimator's
cohort-block map (:class:`~pilotlab.estimators.block_map.BlockMap`), and of the placebo's own
treatment indicator for the slope in ``delta``; with weights, which change how the waves are
combined in every re-draw, each roll-out's re-draws are estimated at once from their weighted
block sums (simple aggregation). The fast path checks itself against one fit of the estimator
and is left for the refitting path when they differ.

Any other estimator, covariates, or weights with another aggregation and randomisation
inference: each placebo roll-out is refitted (:func:`~pilotlab.power.simulate.run_simulation`
with its per-unit start periods).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pilotlab.data.allocation import Allocation, draw_many
from pilotlab.data.panel import NEVER, Panel
from pilotlab.estimators import EstimatorOptions, get_estimator
from pilotlab.estimators._regression import LINEAR_INFERENCE
from pilotlab.estimators.block_map import BlockMap
from pilotlab.estimators.callaway_santanna.aggregate import _plan
from pilotlab.estimators.callaway_santanna.block_map import WeightedBlockMap, headline_block_map
from pilotlab.estimators.callaway_santanna.prepare import (
    _finalise_units,
    _make_cells,
    _unit_arrays,
)
from pilotlab.exceptions import EstimationError, Notice, PilotlabWarning
from pilotlab.inference.randomisation import scheme_draws
from pilotlab.power.draws import placebo_seeds
from pilotlab.power.scheme import SAME_MDE, SchemePower, _fmt
from pilotlab.power.simulate import (
    PlaceboRejections,
    ProgressCallback,
    SimulationPath,
    SimulationRun,
    _Permuted,
    _redraw_stream,
    run_simulation,
)

__all__ = [
    "SteppedPlan",
    "complete_waves",
    "stepped_mde",
    "stepped_plan",
    "stepped_rejections",
    "stepped_scheme_power",
    "wave_offsets",
]

_OVERALL = ("simple", "dynamic", "group", "calendar")
_CHUNK = 4_000_000


@dataclass(frozen=True)
class SteppedPlan:
    """Where the placebo roll-outs sit in the history.

    Attributes
    ----------
    start : int
        Period (index in the history) at which the first wave starts.
    post : int
        Periods from the first wave's start to the end of the history (the roll-out's length).
    code_start : numpy.ndarray
        ``(n_groups,)`` first treated period of each code of the allocation (``NEVER`` for code
        0 and for a wave starting after the end of the history).
    late_waves : tuple of str
        Waves that start after the history ends (untreated comparisons throughout).
    n_started : int
        Units of the waves that start within the roll-out (the units it treats).
    """

    start: int
    post: int
    code_start: np.ndarray
    late_waves: tuple[str, ...]
    n_started: int = 0


def wave_offsets(allocation: Allocation, period_labels: tuple[str, ...]) -> np.ndarray:
    """``(n_groups,)`` periods from the first wave's start to each wave's (``-1`` for code 0).

    Start labels are looked up among ``period_labels`` (the data's periods); labels beyond them
    are read as calendar periods (``2024-05``, ``2024Q2``, ``2024``) at the data's frequency.

    Raises
    ------
    EstimationError
        A wave start that is neither a period of the data nor a calendar period.
    """
    labels = list(period_labels)
    starts = allocation.starts
    pos = np.full(len(starts), -1, dtype=np.int64)
    for k, s in enumerate(starts):  # a few waves
        if s is None:
            continue
        if s in labels:
            pos[k] = labels.index(s)
            continue
        try:
            ordinal = pd.Period(s).ordinal - pd.Period(labels[-1]).ordinal
        except (ValueError, TypeError):
            raise EstimationError(
                f"assignment.waves: start '{s}' is not a period of the data "
                f"({labels[0]} to {labels[-1]}) nor a calendar period to count from; give the "
                "start as one of the data's periods"
            ) from None
        pos[k] = len(labels) - 1 + int(ordinal)
    first = int(pos[pos >= 0].min())
    return np.where(pos >= 0, pos - first, -1)


def stepped_plan(
    allocation: Allocation, offsets: np.ndarray, n_periods: int, post: int
) -> SteppedPlan:
    """The placebo roll-out of ``post`` periods at the end of a history of ``n_periods``."""
    start = n_periods - post
    if start < 1:
        raise EstimationError(
            f"design.power.post_periods: a roll-out of {post} periods leaves no history before "
            "the first wave; plan a shorter roll-out or add earlier history"
        )
    code_start = np.where(offsets >= 0, start + offsets, NEVER).astype(np.int64)
    late = code_start >= n_periods
    code_start[late & (offsets >= 0)] = NEVER
    late_waves = tuple(allocation.groups[k] for k in np.flatnonzero(late & (offsets >= 0)))
    if (code_start[1:] == NEVER).all():
        raise EstimationError(
            "assignment.waves: no wave starts within the periods planned; plan a longer roll-out "
            "(design.power.post_periods) or add history"
        )
    n_started = int((code_start[allocation.codes] != NEVER).sum())
    return SteppedPlan(start, post, code_start, late_waves, n_started)


def complete_waves(allocation: Allocation) -> Allocation:
    """The same waves drawn by complete randomisation (one block, the same wave sizes)."""
    counts = np.asarray(allocation.counts).sum(axis=0, keepdims=True)
    return dataclasses.replace(
        allocation,
        stratum=np.zeros(allocation.n_units, dtype=np.int64),
        stratum_labels=("all",),
        counts=counts,
        max_std_diff=None,
    )


# ----------------------------------------------------------------------------- fast path


@dataclass(frozen=True)
class _GroupTime:
    """What every placebo roll-out of one design shares for Callaway & Sant'Anna."""

    dY: np.ndarray  # (N, K) outcome change of each cell (t minus base period)
    gb: np.ndarray  # (K,) block of each cell's cohort
    ctrl: np.ndarray  # (Hb, K) comparison blocks of each cell
    live: np.ndarray  # (K,) cells estimated (valid, not the reference)
    keep: np.ndarray  # (K,) cells of the simple aggregation (post, valid)
    A: np.ndarray | None  # (K,) aggregation coefficients (fixed: unweighted)
    Cw: np.ndarray | None  # (K, H) cohort-share term per unit of each cell's ATT (unweighted)
    w: np.ndarray  # (N,) weights, mean one
    member: np.ndarray  # (N, G) cluster membership
    code_block: np.ndarray  # (n_groups,) block of each allocation code
    H: int

    def stats(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Headline estimate and cluster-robust standard error of every row of ``codes``."""
        R = codes.shape[0]
        N, K = self.dY.shape
        Hb = self.H + 1
        est = np.empty(R)
        se = np.empty(R)
        step = max(1, _CHUNK // max(N * Hb * K, 1))
        eye = np.eye(Hb)
        gb_onehot = eye[self.gb].T  # (Hb, K)
        for a in range(0, R, step):  # chunks of roll-outs, each one batched computation
            blocks = self.code_block[codes[a : a + step]]  # (r, N)
            r = blocks.shape[0]
            memb = eye[blocks] * self.w[None, :, None]  # (r, N, Hb)
            Wb = memb.sum(axis=1)  # (r, Hb)
            Wg = Wb[:, self.gb]
            Wc = Wb @ self.ctrl
            S = np.einsum("rnh,nk->rhk", memb, self.dY)
            St = S[:, self.gb, np.arange(K)]
            Sc = np.einsum("rhk,hk->rk", S, self.ctrl)
            with np.errstate(invalid="ignore", divide="ignore"):
                eta_t = St / Wg
                eta_c = Sc / Wc
            att = np.where(self.live[None, :], eta_t - eta_c, 0.0)
            att = np.nan_to_num(att)
            n = N
            if self.A is not None and self.Cw is not None:
                A = np.broadcast_to(self.A, (r, K))
                cw = att @ self.Cw  # (r, H)
                pg = Wb[:, : self.H] / n
            else:  # weighted: the cohort shares move with the draw (simple aggregation)
                pg = Wb[:, : self.H] / n
                pg_cell = np.where(self.keep[None, :], pg[:, np.minimum(self.gb, self.H - 1)], 0.0)
                P = pg_cell.sum(axis=1, keepdims=True)
                A = pg_cell / P
            e = np.einsum("rk,rk->r", A, att)
            if self.A is None:
                dev = np.where(self.keep[None, :], (att - e[:, None]) / P, 0.0)
                cw = dev @ gb_onehot[: self.H].T  # (r, H)
            with np.errstate(invalid="ignore", divide="ignore"):
                at = np.where(self.live[None, :], A / Wg, 0.0)
                ac = np.where(self.live[None, :], A / Wc, 0.0)
            Ct = at[:, None, :] * gb_onehot[None] - ac[:, None, :] * self.ctrl[None]  # (r,Hb,K)
            off = np.einsum("rk,hk->rh", at * eta_t, gb_onehot) - np.einsum(
                "rk,hk->rh", np.nan_to_num(ac * eta_c), self.ctrl
            )
            M = np.einsum("nk,rhk->rnh", self.dY, Ct)
            own = np.take_along_axis(M, blocks[:, :, None], axis=2)[:, :, 0]
            own -= np.take_along_axis(off, blocks, axis=1)
            IFu = self.w[None, :] * own
            cw_full = np.concatenate([cw, np.zeros((r, 1))], axis=1)  # never block: no share
            share = np.take_along_axis(cw_full, blocks, axis=1) * self.w[None, :]
            IFu += (share - np.einsum("rh,rh->r", pg, cw)[:, None]) / n
            IFc = IFu @ self.member
            est[a : a + r] = e
            se[a : a + r] = np.sqrt(np.einsum("rg,rg->r", IFc, IFc))
        return est, se


def _group_time(
    template: Panel, outcome: str, options: EstimatorOptions, allocation: Allocation
) -> _GroupTime | None:
    """The fast path's ingredients from the first placebo roll-out, or ``None`` when it does not
    apply (covariates, a repeated cross-section, units dropped, anticipation, another headline)."""
    cs = options.callaway_santanna
    if (
        options.covariates
        or template.layout != "panel"
        or not template.is_rectangular
        or template.anticipation
        or cs.aggregation not in _OVERALL
        or options.window is not None
    ):
        return None
    if template.weighted and cs.aggregation != "simple":
        return None
    sink: list[Notice] = []
    T = template.n_periods
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw, Y, _, _ = _unit_arrays(template, outcome, (), sink)
        units, keep, T_keep = _finalise_units(raw, T, 0, template.period_labels, sink)
    if not keep.all() or not np.all(np.isfinite(Y)) or units.cohorts.size == 0:
        return None
    cells = _make_cells(units.cohorts, T_keep, 0, cs.base_period, template.comparison)
    H = units.cohorts.size
    size = np.bincount(units.block, weights=units.w, minlength=H + 1)
    Wg = size[cells.gb]
    Wc = cells.ctrl.T.astype(np.float64) @ size
    valid = ((Wc > 0) & (Wg > 0)) | cells.ref
    live = valid & ~cells.ref
    post = valid & (cells.t >= cells.g)
    K = cells.g.size
    A: np.ndarray | None = None
    Cw: np.ndarray | None = None
    if not template.weighted:
        plan, _, overall, _, _ = _plan(np.zeros(K), valid, units, cells, None, cs.balance_e)
        which = overall[_OVERALL.index(cs.aggregation)]
        A = np.nan_to_num(plan.A[which])
        A[~live] = 0.0
        Cw = np.zeros((K, H))
        for k in np.flatnonzero(live):  # the share term is linear in the cells' ATTs
            unit_att = np.zeros(K)
            unit_att[k] = 1.0
            pk, _, ov, _, _ = _plan(unit_att, valid, units, cells, None, cs.balance_e)
            Cw[k] = pk.Cw[ov[_OVERALL.index(cs.aggregation)]]
    dY = Y[:, cells.t] - Y[:, cells.b]
    member = np.zeros((units.n, units.n_clusters))
    member[np.arange(units.n), units.cl] = 1.0
    drawn = template.allocation if template.allocation is not None else allocation
    idx = drawn.index_of(template.unit_labels)
    code_block = np.full(drawn.n_groups, -1, dtype=np.int64)
    code_block[drawn.codes[idx]] = units.block
    if not np.array_equal(code_block[drawn.codes[idx]], units.block):
        return None  # units of one code in different blocks: not a roll-out of waves
    code_block[code_block < 0] = H  # codes no unit has (in no draw either: counts are fixed)
    return _GroupTime(
        dY, cells.gb, cells.ctrl.astype(np.float64), live, post & ~cells.ref, A, Cw, units.w,
        member, code_block, H,
    )  # fmt: skip


def _headline_map(template: Panel, outcome: str, options: EstimatorOptions) -> BlockMap | None:
    """Callaway & Sant'Anna's cohort-block map of the first placebo roll-out (weighted or not),
    checked against one fit of the estimator; ``None`` when there is none."""
    entry = get_estimator("callaway_santanna")
    opts = dataclasses.replace(options, inference="cluster", pretrend="none", replications=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotlabWarning)
        try:
            est0 = float(entry.fit(template, outcome, opts, np.random.default_rng(0)).estimate)
            return headline_block_map(template, outcome, opts, est0)
        except EstimationError:
            return None


def _permutation(
    template: Panel,
    outcome: str,
    options: EstimatorOptions,
    allocation: Allocation,
    codes: np.ndarray,
    plan: SteppedPlan,
    seed_seq: np.random.SeedSequence,
    progress: ProgressCallback | None,
    done0: int,
    total: int,
) -> _Permuted | None:
    """Randomisation inference over wave orders for every placebo roll-out: the estimate of
    each re-draw, of the outcome and of the roll-out's own treatment indicator (the slope in an
    injected effect), from the estimator's cohort-block map, as refitting every re-draw of
    ``y + delta * D`` would give. Without weights the map's fixed contributions are gathered;
    with weights every re-draw changes the waves' weighted sizes, hence how the cells are
    combined, so the weighted map (:class:`~pilotlab.estimators.callaway_santanna.block_map.
    WeightedBlockMap`) estimates each roll-out's re-draws at once. The re-draws are those the
    refitting path draws: from the placebo's stream, after the estimator's own bootstrap draws."""
    reps = int(options.replications)
    if reps < 19:
        return None  # the engine's error message is raised by the refitting path
    mapped = _headline_map(template, outcome, options)
    if mapped is None:
        return None
    code_block = mapped.blocks(plan.code_start)
    if (code_block < 0).any():
        return None
    idx = allocation.index_of(template.unit_labels)
    R, N, T = codes.shape[0], template.n_units, template.n_periods
    Y = np.empty((N, T))
    Y[template.unit, template.time] = template.y(outcome)
    unit_code = codes[:, idx]  # (R, N)
    ft = plan.code_start[unit_code]  # (R, N)
    rows_n = np.arange(N)[None, :]
    if isinstance(mapped, WeightedBlockMap):

        def of(r: int, blk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            D = (np.arange(T)[None, :] >= ft[r][:, None]).astype(float)  # its own treatment
            got = mapped.estimates(np.stack([Y, D]), blk)
            return got[:, 0], got[:, 1]

    else:  # a gather of the unit x block contributions
        MY = Y @ mapped.coef.T  # (N, blocks)
        # the slope: D_it = 1{t >= start_i} under each block's coefficients
        tail = np.cumsum(mapped.coef[:, ::-1], axis=1)[:, ::-1]  # sum of coef[h, t:]
        tail = np.concatenate([tail, np.zeros((tail.shape[0], 1))], axis=1)
        ft_col = np.where(ft == NEVER, T, np.minimum(ft, T))

        def of(r: int, blk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return MY[rows_n, blk].sum(axis=1), tail.T[ft_col[r]][rows_n, blk].sum(axis=1)

    seeds = placebo_seeds(seed_seq, R)
    est, own = np.empty(R), np.empty(R)
    perm, slope = np.empty((R, reps)), np.empty((R, reps))
    entry, n_clusters = get_estimator("callaway_santanna"), int(np.unique(template.cluster).size)
    for r in range(R):  # one random stream per placebo roll-out: the scheme's re-draws
        drawn = scheme_draws(allocation, reps, _redraw_stream(entry, options, n_clusters, seeds[r]))
        if drawn.exact:
            return None  # every order enumerated (a tiny design): left to the refitting path
        values, slopes = of(r, code_block[np.vstack([unit_code[r], drawn.codes[:, idx]])])
        est[r], own[r], perm[r], slope[r] = values[0], slopes[0], values[1:], slopes[1:]
        if progress is not None and (r % max(R // 50, 1) == 0 or r == R - 1):
            progress(done0 + r + 1, total)
    return _Permuted(est, own, perm, slope, np.zeros(R, dtype=bool), np.isfinite(est))


def stepped_rejections(
    history: Panel,
    outcome: str,
    estimator: str,
    options: EstimatorOptions,
    allocation: Allocation,
    plan: SteppedPlan,
    effects: np.ndarray,
    *,
    simulations: int,
    seed_seq: np.random.SeedSequence,
    n_jobs: int = 1,
    progress: ProgressCallback | None = None,
    done0: int = 0,
    total: int | None = None,
    time_budget: float | None = None,
    force_refit: bool = False,
) -> tuple[PlaceboRejections, np.ndarray]:
    """The test decisions of ``simulations`` placebo roll-outs drawn as ``allocation``'s scheme
    draws, at each injected effect (see the module docstring).

    Returns the decisions and the ``(R, n_units)`` codes drawn (in ``allocation``'s unit order).
    ``force_refit`` takes the refitting path (tests compare the paths).
    """
    draw_ss, fit_ss = np.random.SeedSequence(seed_seq.entropy, spawn_key=seed_seq.spawn_key).spawn(
        2
    )
    codes = draw_many(allocation, simulations, np.random.default_rng(draw_ss))
    idx = allocation.index_of(history.unit_labels)
    if (idx < 0).any():
        raise EstimationError(
            "assignment: some units of the history are not in the allocation; the allocation "
            "no longer matches the data"
        )
    ft = plan.code_start[codes[:, idx]]  # (R, N) first treated period of every unit
    template = dataclasses.replace(
        history.with_first_treated(ft[0]), allocation=allocation.with_codes(codes[0])
    )
    n_total = simulations if total is None else total
    fast = None if force_refit else _fast(template, outcome, estimator, options, allocation)
    if fast is not None and options.inference == "permutation":
        perm = _permutation(
            template, outcome, options, allocation, codes, plan, fit_ss, progress, done0, n_total
        )
        if perm is not None:
            alpha = options.alpha
            if progress is not None:
                progress(done0 + simulations, n_total)

            def reject_at(e: np.ndarray) -> np.ndarray:
                return perm.reject(np.asarray(e, dtype=float), alpha)

            path: SimulationPath = "scheme"
            return PlaceboRejections(
                reject_at(effects), int((~perm.ok).sum()), path, None, reject_at
            ), codes
        fast = None
    if fast is not None and options.inference in ("cluster", "auto"):
        est, se = fast.stats(codes[:, idx])
        if progress is not None:
            progress(done0 + simulations, n_total)
        ests = np.column_stack([est, se, np.full(simulations, np.inf)])
        bad = ~(np.isfinite(est) & np.isfinite(se) & (se > 0))
        alpha = options.alpha
        z = float(stats.norm.ppf(1 - alpha / 2))

        def shift_at(e: np.ndarray) -> np.ndarray:
            e = np.asarray(e, dtype=float)
            rej: np.ndarray = (np.abs(est[:, None] + e[None, :]) > z * se[:, None]).astype(float)
            rej[bad] = np.nan
            return rej

        return PlaceboRejections(shift_at(effects), int(bad.sum()), "scheme", ests, shift_at), codes
    # the refitting path: every placebo roll-out through the estimator and inference
    entry = get_estimator(estimator)
    mode: SimulationPath = "full"
    if entry.capabilities.linear and options.inference in LINEAR_INFERENCE:
        mode = "shift"
    elif entry.capabilities.linear and options.inference == "wild_bootstrap":
        mode = "wild"
    run = SimulationRun(
        history=history,
        outcome=outcome,
        estimator=estimator,
        options=options,
        A=ft != NEVER,
        starts=np.full(simulations, plan.start, dtype=np.int64),
        post=plan.post,
        effects=effects,
        seed_seq=fit_ss,
        n_jobs=n_jobs,
        progress=progress,
        force_path=mode,
        done0=done0,
        total=n_total,
        time_budget=time_budget,
        first_treated=ft,
        allocation=allocation,
        codes=codes,
    )
    return run_simulation(run), codes


def _fast(
    template: Panel,
    outcome: str,
    estimator: str,
    options: EstimatorOptions,
    allocation: Allocation,
) -> _GroupTime | None:
    """The fast path for this design, checked against one fit of the estimator itself."""
    entry = get_estimator(estimator)
    if entry.block_map is not headline_block_map:  # the group-time (cohort block) estimator
        return None
    if options.inference not in ("cluster", "permutation"):
        return None
    gt = _group_time(template, outcome, options, allocation)
    if gt is None:
        return None
    opts = dataclasses.replace(options, inference="cluster", pretrend="none", replications=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotlabWarning)
        try:
            res = entry.fit(template, outcome, opts, np.random.default_rng(0))
        except EstimationError:
            return None
    assert template.allocation is not None
    idx = template.allocation.index_of(template.unit_labels)
    est, se = gt.stats(template.allocation.codes[idx][None, :])
    tol = 1e-8
    if not (
        abs(float(est[0]) - res.estimate) <= tol * (1 + abs(res.estimate))
        and abs(float(se[0]) - res.std_error) <= tol * (1 + abs(res.std_error))
    ):
        return None  # not the estimator's own numbers: refit instead
    return gt


def _mde_of(sim: PlaceboRejections, target: float, sign: float, hi: float) -> float | None:
    """Smallest effect whose simulated power reaches ``target`` (``None``: beyond ``hi``)."""
    valid = ~np.isnan(sim.rejections[:, 0])
    if sim.reject_at is None:
        return None
    at = sim.reject_at

    def power(d: float) -> float:
        return float(np.mean(at(np.array([sign * d]))[valid, 0]))

    if power(hi) < target:
        return None
    lo_d, hi_d = 0.0, hi
    if power(0.0) >= target:
        return 0.0
    for _ in range(40):  # bisection on a step function: to a relative 1e-12 of the range
        mid = 0.5 * (lo_d + hi_d)
        if power(mid) >= target:
            hi_d = mid
        else:
            lo_d = mid
    return hi_d


def _search_top(sim: PlaceboRejections, history: Panel, outcome: str) -> float:
    """Top of the effects searched for the MDE: ten standard errors (or outcome spreads)."""
    if sim.estimates is not None and np.isfinite(sim.estimates[:, 1]).any():
        return 10.0 * float(np.nanmedian(sim.estimates[:, 1]))
    return 10.0 * _spread(history, outcome)


def stepped_mde(
    sim: PlaceboRejections, history: Panel, outcome: str, target: float, sign: float = 1.0
) -> float | None:
    """The MDE of one design's placebo roll-outs solved exactly on their test decisions (the
    number the headline, the trade-off grid and the scheme comparison all report); ``None``
    without the effects' shift or beyond the effects searched."""
    if sim.reject_at is None:
        return None
    return _mde_of(sim, target, sign, _search_top(sim, history, outcome))


def stepped_scheme_power(
    history: Panel,
    outcome: str,
    estimator: str,
    options: EstimatorOptions,
    allocation: Allocation,
    plan: SteppedPlan,
    own: PlaceboRejections,
    *,
    simulations: int,
    seed: int,
    target: float,
    sign: float = 1.0,
    n_jobs: int = 1,
    time_budget: float | None = None,
    units_word: str = "units",
    periods_word: str = "periods",
) -> SchemePower | None:
    """The roll-out's MDE with its waves drawn within strata (``own``, the placebo roll-outs of
    the pilot's scheme) against the same waves drawn by complete randomisation, and the
    sentence saying what stratifying buys. ``None`` without strata or without the effects'
    shift (the refitting path of a non-linear test)."""
    if not allocation.has_blocks or own.reject_at is None:
        return None
    comp = complete_waves(allocation)
    seed_seq = np.random.SeedSequence(seed, spawn_key=(1,))
    grid = np.zeros(1)
    other, _ = stepped_rejections(
        history, outcome, estimator, options, comp, plan, grid, simulations=simulations,
        seed_seq=seed_seq, n_jobs=n_jobs, time_budget=time_budget,
    )  # fmt: skip
    if other.reject_at is None:
        return None
    hi = _search_top(own, history, outcome)
    m_own = _mde_of(own, target, sign, hi)
    m_comp = _mde_of(other, target, sign, hi)
    top = max((m for m in (m_own, m_comp) if m is not None), default=hi / 4)
    effects = np.linspace(0.0, 1.5 * top, 13)
    valid_o = ~np.isnan(own.rejections[:, 0])
    valid_c = ~np.isnan(other.rejections[:, 0])
    p_own = np.mean(own.reject_at(sign * effects)[valid_o], axis=0)
    p_comp = np.mean(other.reject_at(sign * effects)[valid_c], axis=0)
    n_in = plan.n_started
    what = "Drawing the waves at random within strata"
    tail = (
        f"({n_in} of the {allocation.n_units} {units_word} start within the {plan.post} "
        f"{periods_word} simulated from the first wave; {simulations} simulated roll-outs "
        "each)"
    )
    if m_own is None or m_comp is None:
        sentence = (
            f"{what} was compared with drawing them from all units at once (ignoring the "
            "strata), but the minimum detectable effect of at least one of them lies beyond "
            "the effects simulated."
        )
    elif abs(m_own - m_comp) <= SAME_MDE * max(m_comp, 1e-12):
        sentence = (
            f"{what} leaves the minimum detectable effect (the smallest effect the pilot "
            f"would likely detect) at about {_fmt(m_own)}, as when the waves are drawn from "
            f"all units at once, ignoring the strata {tail}."
        )
    else:
        verb = "lowers" if m_own < m_comp else "raises"
        sentence = (
            f"{what} {verb} the minimum detectable effect (the smallest effect the pilot "
            f"would likely detect) from {_fmt(m_comp)} (waves drawn from all units at once, "
            f"ignoring the strata) to {_fmt(m_own)} {tail}."
        )
    return SchemePower(
        scheme="stepped",
        comparison="waves drawn from all units at once, ignoring the strata",
        n_units=allocation.n_units,
        n_treated=n_in,
        post_periods=plan.post,
        simulations=simulations,
        mde=m_own,
        mde_comparison=m_comp,
        effects=tuple(float(e) for e in effects),
        power=tuple(float(v) for v in p_own),
        power_comparison=tuple(float(v) for v in p_comp),
        sentence=sentence,
    )


def _spread(history: Panel, outcome: str) -> float:
    y = history.y(outcome)
    sd = float(np.nanstd(y))
    return sd if sd > 0 else 1.0
