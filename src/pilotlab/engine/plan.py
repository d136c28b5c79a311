"""Plan before you pilot: simulated power and minimum detectable effect from the history.

A planned pilot's data hold only the history. Placebo pilots are drawn from that history: a
pseudo-treated set of the planned size drawn at random from the eligible units, and a pseudo start
date that leaves enough periods before and the planned number after. Drawing the units matters:
with named units held fixed every placebo pilot shares their history, so the curve is power
conditional on those units (available on request, and labelled so), not the design's power.
When the false-positive rate at zero effect is clearly above ``alpha`` (its 95% Clopper-Pearson
interval lies above it), no MDE is claimed.

This module reads the pilot file's plan (``design.power``), resolves the estimator and inference
of each design as :func:`~pilotlab.engine.evaluate` would, and hands the computations to
:mod:`pilotlab.power` (which computes only). :func:`write_power_report` writes ``power.json`` and
``power.html``, rendered by :mod:`pilotlab.report.power`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pilotlab.data import load_panel
from pilotlab.data.panel import NEVER, Panel
from pilotlab.data.periods import detect_format
from pilotlab.engine.choices import choose_estimator, choose_inference, estimator_options
from pilotlab.engine.versions import software_versions
from pilotlab.estimators import EstimatorOptions
from pilotlab.exceptions import EstimationError, SpecError, collect
from pilotlab.outputs import output_folder
from pilotlab.power.analytic import (
    analytic_mde,
    analytic_power,
    ar1_covariance,
    cluster_design_effect,
    did_variance,
    history_matrix,
)
from pilotlab.power.curve import (
    GRID_MULTIPLES,
    binomial_interval,
    mde_from_curve,
    nice_effect,
    over_rejection_advice,
    rough_effect_scale,
)
from pilotlab.power.draws import (
    draw_cluster_placebos,
    draw_placebos,
    placebo_panel,
    unit_clusters,
)
from pilotlab.power.result import AnalyticMDE, PowerPoint, PowerResult, TradeoffCell
from pilotlab.power.scheme import SchemePower, scheme_power
from pilotlab.power.simulate import (
    PlaceboRejections,
    ProgressCallback,
    SimulationPath,
    available_cpus,
    simulate_rejections,
)
from pilotlab.power.stepped import (
    SteppedPlan,
    stepped_mde,
    stepped_plan,
    stepped_rejections,
    stepped_scheme_power,
    wave_offsets,
)
from pilotlab.report.text import plural, plural_word
from pilotlab.results import Choice
from pilotlab.spec import PilotSpec

__all__ = [
    "DEFAULT_MIN_PRE",
    "DEFAULT_TIME_BUDGET",
    "StageCallback",
    "planning_history",
    "run_power",
    "write_power_report",
]

#: ``stage(message)`` is called as each stage of :func:`run_power` starts.
StageCallback = Callable[[str], None]

#: Seconds the refitting path may take per design before it runs fewer placebo pilots.
DEFAULT_TIME_BUDGET = 60.0
#: Fewest periods a placebo pilot keeps before its start (``design.power.min_pre_periods``).
DEFAULT_MIN_PRE = 4


@dataclass(frozen=True)
class _Design:
    """One design to simulate: how many treated (or which units) and how many post periods."""

    n_treated: int
    post: int
    fixed: np.ndarray | None = None  # unit codes of the planned units; None = random draws


@dataclass(frozen=True)
class _Setup:
    """What every design of one run shares."""

    spec: PilotSpec
    history: Panel
    outcome: str
    Y: np.ndarray | None  # balanced history matrix for the analytic MDE (None if unbalanced)
    seed: int
    simulations: int
    min_pre: int
    alpha: float
    target: float
    df_analytic: float | None
    sign: float  # +1: effects are increases; -1: reductions (better: lower)
    effects: tuple[float, ...] | None  # user grid, or None for one around the analytic MDE
    declared_mde: float | None
    n_jobs: int
    progress: ProgressCallback | None
    total: int
    stage: StageCallback | None = None
    time_budget: float | None = DEFAULT_TIME_BUDGET
    notes: list[str] = field(default_factory=list)  # notes raised while simulating
    offsets: np.ndarray | None = None  # a stepped roll-out: each wave's start after the first
    cluster_of: np.ndarray | None = None  # cluster of each unit when coarser than the units


@dataclass(frozen=True)
class _DesignRun:
    """Simulated power curve of one design."""

    effects: np.ndarray
    power: np.ndarray
    false_positives: int  # placebo pilots rejecting at zero effect
    fpr_interval: tuple[float, float]  # 95% Clopper-Pearson interval of the false-positive rate
    over_rejects: bool  # the interval lies above alpha: no MDE is claimed
    n: int
    failed: int
    path: SimulationPath
    analytic: AnalyticMDE | None
    analytic_curve: np.ndarray | None
    mde: float | None
    declared_power: float | None
    estimator: Choice
    inference: Choice
    stepped: tuple[SteppedPlan, PlaceboRejections] | None = None  # a stepped roll-out's run


def _as_list(v: int | Sequence[int] | None) -> list[int] | None:
    if v is None:
        return None
    if isinstance(v, int | np.integer):
        return [int(v)]
    return [int(x) for x in v]


def planning_history(spec: PilotSpec, data: pd.DataFrame | None = None) -> tuple[Panel, str]:
    """The history power is planned on, with no unit treated, and the data notes (one line).

    When the data already hold real starts, only the periods before the earliest one are kept.
    """
    panel, notes, _ = _planning_history(spec, data)
    return panel, notes


def _planning_history(
    spec: PilotSpec, data: pd.DataFrame | None
) -> tuple[Panel, str, tuple[str, ...]]:
    """:func:`planning_history` and every period label of the data (before truncation). A
    randomised pilot's history keeps its allocation (the design its power is planned for)."""
    panel, loaded = collect(load_panel, spec, data, history=True)
    notes = "; ".join(n.message for n in loaded)
    labels = panel.period_labels
    allocation = panel.allocation
    if panel.n_treated_units:
        # Real starts inside the data: plan from the history before the earliest one.
        first = int(panel.cohorts.min()) - panel.anticipation
        panel = panel.truncate_periods(first - 1)
    panel = panel.with_first_treated(np.full(panel.n_units, NEVER, dtype=np.int64))
    if allocation is not None and spec.assignment is not None:
        panel = dataclasses.replace(panel, allocation=allocation)
    return panel, notes, labels


def _planned_units(spec: PilotSpec, panel: Panel) -> list[str] | None:
    p = spec.design.power.treated
    if isinstance(p, list):
        return list(p)
    if p is None and spec.treatment.units:
        return list(spec.treatment.units)
    if p is None and spec.treatment.adoption:
        return list(spec.treatment.adoption)
    return None


def _check_design(
    panel: Panel, n_treated: int, post: int, min_pre: int, key_treated: str, key_post: str
) -> None:
    T, N = panel.n_periods, panel.n_units
    if post + min_pre > T:
        raise SpecError(
            f"{key_post}: {post} post periods plus at least {min_pre} periods before the start "
            f"(design.power.min_pre_periods) need {post + min_pre} periods of history, but the "
            f"data hold {T} ({panel.period_labels[0]} to {panel.period_labels[-1]}); plan a "
            "shorter post period, lower min_pre_periods or add earlier history"
        )
    if n_treated >= N:
        raise SpecError(
            f"{key_treated}: {n_treated} treated units requested but only {N} units are "
            f"eligible in the data, and at least one must stay untreated for comparison; plan "
            f"at most {N - 1} treated units or widen treatment.eligible"
        )


def _main_design(
    spec: PilotSpec,
    history: Panel,
    treated: list[int] | None,
    post: list[int] | None,
    notes: list[str],
    min_pre: int,
    conditional: bool,
) -> tuple[_Design, str, str]:
    """The design the headline numbers are for, and the keys its values came from.

    Named units (``design.power.treated`` as a list, or ``treatment.units``) give the number of
    treated units; placebo pilots draw that many at random from the eligible units, so that the
    power is the design's. Only ``conditional`` keeps the named units in every placebo pilot.
    """
    ps = spec.design.power
    planned = _planned_units(spec, history)
    fixed: np.ndarray | None = None
    if treated is not None and len(treated) == 1:
        k, key_treated = treated[0], "--treated"
    elif isinstance(ps.treated, int):
        k, key_treated = ps.treated, "design.power.treated"
    elif spec.assignment is not None and treated is None:  # randomised: as many as it draws
        sizes = spec.assignment.arm_sizes(history.n_units)
        k, key_treated = int(sum(sizes)), "assignment.treated"
    elif planned is not None and treated is None:
        codes = {u: i for i, u in enumerate(history.unit_labels)}
        missing = [u for u in planned if u not in codes]
        if missing:
            raise SpecError(
                f"design.power.treated: unit(s) {', '.join(missing[:6])} are not among the "
                f"{history.n_units} units of the history; check the ids against column "
                f"'{spec.data.unit}' (and treatment.exclude / eligible)"
            )
        k, key_treated = len(planned), "design.power.treated"
        if conditional:
            fixed = np.array(sorted(codes[u] for u in planned), dtype=np.int64)
            notes.append(
                f"Power conditional on the named units ({', '.join(planned[:8])}"
                f"{', ...' if len(planned) > 8 else ''}): every placebo pilot keeps them treated "
                "and differs only in its start date, so these numbers describe how the test "
                "behaves on these units' own history. They are not the power of the design, "
                "and the false-positive rate says whether the test can be trusted for them."
            )
        else:
            notes.append(
                f"The pilot names its {k} treated units; each placebo pilot draws {k} units at "
                f"random from the {history.n_units} eligible units (and a start date), so the "
                "curve is the power of the design. Holding the named units fixed would give "
                "power conditional on their own history instead (design.power."
                "conditional_on_units: true)."
            )
    elif treated:
        k, key_treated = treated[0], "--treated"
    else:
        raise SpecError(
            "design.power.treated: the pilot file does not say how many units the pilot "
            "will treat; add design.power.treated (a number, or a list of units), "
            "treatment.units, or pass --treated"
        )
    if conditional and fixed is None:
        raise SpecError(
            "design.power.conditional_on_units: power conditional on named units needs the "
            "units; list them in design.power.treated or treatment.units (and do not pass a "
            "number with --treated)"
        )
    T = history.n_periods
    if post is not None and len(post) == 1:
        L, key_post = post[0], "--post"
    elif ps.post_periods is not None:
        L, key_post = ps.post_periods, "design.power.post_periods"
    elif post:
        L, key_post = post[0], "--post"
    elif spec.design.window is not None and spec.design.window.post > 0:
        L, key_post = spec.design.window.post, "design.window.post"
        if L + min_pre > T and T - min_pre >= 1:
            # The analysis window is not a plan for power: fit it to the history available.
            notes.append(
                f"design.window.post asks for {L} periods after the start, but the history "
                f"before the start holds {T} periods ({history.period_labels[0]} to "
                f"{history.period_labels[-1]}) and each placebo pilot keeps at least "
                f"{min_pre} before its start; placebo pilots use {T - min_pre} periods after "
                "the start. Set design.power.post_periods to plan another length."
            )
            L = T - min_pre
    else:
        L, key_post = max(1, T // 4), "design.power.post_periods"
        notes.append(
            f"No post-period length was planned; {L} periods (a quarter of the "
            "history) were assumed. Set design.power.post_periods."
        )
    return _Design(k, L, fixed), key_treated, key_post


def _simulate_design(setup: _Setup, design: _Design, index: int, done0: int) -> _DesignRun:
    """Draw, fit and summarise the placebo pilots of one design."""
    if setup.offsets is not None:
        return _simulate_stepped(setup, design, done0)
    hist, k, L = setup.history, design.n_treated, design.post
    draw_ss, fit_ss = np.random.SeedSequence(setup.seed, spawn_key=(index + 1,)).spawn(2)
    cluster_of = setup.cluster_of if design.fixed is None else None
    if cluster_of is not None:  # the plan clusters whole units: placebos treat whole clusters
        G = int(cluster_of.max()) + 1
        g = min(max(1, round(k * G / hist.n_units)), G - 1)
        A, starts = draw_cluster_placebos(
            np.random.default_rng(draw_ss),
            cluster_of=cluster_of,
            n_clusters_treated=g,
            n_periods=hist.n_periods,
            post=L,
            min_pre=setup.min_pre,
            simulations=setup.simulations,
        )
        if index == 0:
            setup.notes.append(
                f"Standard errors are clustered by {G} clusters of units, so each placebo "
                f"pilot treats whole clusters: {g} of the {G} (about {k} of the "
                f"{hist.n_units} units), and the analytic MDE allows for the correlation of "
                "units within a cluster."
            )
    else:
        A, starts = draw_placebos(
            np.random.default_rng(draw_ss),
            n_units=hist.n_units,
            n_periods=hist.n_periods,
            n_treated=k,
            post=L,
            min_pre=setup.min_pre,
            simulations=setup.simulations,
            fixed=design.fixed,
        )
    # The estimator and inference the pilot would use with this design (``auto`` resolved on
    # one of its placebo pilots, as the engine resolves it on the real data).
    example = placebo_panel(hist, A[0], int(starts[0]), L)
    if hist.allocation is not None:  # a randomised pilot: auto picks its design's estimator
        example = dataclasses.replace(example, allocation=hist.allocation)
    est = choose_estimator(example, setup.spec.design.estimator)
    inf = choose_inference(example, est.name, setup.spec.design.inference.method)
    # placebo pilots need only the effect's test, not a pre-trend test
    options = dataclasses.replace(estimator_options(setup.spec, inf.name), pretrend="none")
    an = None
    if setup.Y is not None:
        an = analytic_mde(
            setup.Y,
            pre=hist.n_periods,
            post=L,
            n_treated=k,
            alpha=setup.alpha,
            power=setup.target,
            df=setup.df_analytic,
            simulated_pre=sorted(set(starts.tolist())),
            cluster=cluster_of,
        )
    if setup.effects is not None:
        effects = np.unique(np.concatenate([[0.0], np.abs(setup.effects)]))
    else:
        base = (
            an.mde_simulated_design
            if an is not None
            else rough_effect_scale(hist, setup.outcome, k, L)
        )
        effects = np.array([nice_effect(m * base) for m in GRID_MULTIPLES])
    if setup.stage is not None:
        what = (
            f"{design.n_treated} named units"
            if design.fixed is not None
            else (f"{design.n_treated} treated")
        )
        setup.stage(
            f"Simulating {setup.simulations} placebo pilots ({what}, {L} periods after; "
            f"{est.name}, {inf.name} inference)"
        )
    if setup.progress is not None:
        setup.progress(done0, setup.total)  # the bar shows before the first placebo finishes
    sim = simulate_rejections(
        hist,
        setup.outcome,
        est.name,
        options,
        A,
        starts,
        L,
        setup.sign * effects,
        seed_seq=fit_ss,
        n_jobs=setup.n_jobs,
        progress=setup.progress,
        done0=done0,
        total=setup.total,
        time_budget=setup.time_budget,
    )
    starts = starts[: sim.rejections.shape[0]]  # fewer when the run was capped in time
    deff = 1.0
    if an is not None and cluster_of is not None and setup.Y is not None:
        deff = cluster_design_effect(setup.Y, cluster_of)[2]
    return _summarise(setup, sim, effects, options, est, inf, an, starts, k, L, deff)


def _summarise(
    setup: _Setup,
    sim: PlaceboRejections,
    effects: np.ndarray,
    options: EstimatorOptions,
    est: Choice,
    inf: Choice,
    an: AnalyticMDE | None,
    starts: np.ndarray | None,
    k: int,
    L: int,
    deff: float = 1.0,
) -> _DesignRun:
    """The power curve, false-positive rate and MDE of one design's placebo pilots."""
    hist = setup.history
    rej, path, more = sim.rejections, sim.path, sim.reject_at
    valid = ~np.isnan(rej[:, 0])
    if more is not None and setup.effects is None:
        # Extend the grid while the simulated power stays below the target (free here).
        for _ in range(4):
            if np.nanmean(rej[:, -1]) >= setup.target:
                break
            extra = np.array([nice_effect(effects[-1] * 1.5), nice_effect(effects[-1] * 2.0)])
            rej_extra = more(setup.sign * extra)
            rej_extra[~valid] = np.nan
            effects = np.concatenate([effects, extra])
            rej = np.concatenate([rej, rej_extra], axis=1)
    n_ok = int(valid.sum())
    if n_ok == 0:
        raise EstimationError(
            f"design.estimator: every placebo pilot failed to estimate with {est.name}; "
            "check the history has variation over time and enough comparison units"
        )
    pw = np.nanmean(rej, axis=0)
    decl, decl_power = setup.declared_mde, None
    if decl is not None and more is not None:
        decl_power = float(more(np.array([setup.sign * decl]))[valid].mean())
    elif decl is not None:
        decl_power = float(np.interp(decl, effects, pw))
    analytic_curve = None
    if an is not None and starts is not None:
        ses = np.sqrt(
            [
                deff * did_variance(ar1_covariance(m + L, an.sigma2, an.rho), m, L, hist.n_units, k)
                for m in starts[valid]  # one term per placebo: a loop over draws of scalars
            ]
        )
        analytic_curve = analytic_power(effects, ses, setup.alpha, setup.df_analytic)
    if sim.capped is not None:
        c = sim.capped
        setup.notes.append(
            f"Each placebo pilot refits the {est.name} estimator for every one of "
            f"{options.replications} re-assignments ({c.seconds_each:.1f} s per placebo "
            f"pilot here), so {c.used} of the {c.requested} placebo pilots requested were run "
            f"to finish in about {setup.time_budget:.0f} s: each power value has a Monte Carlo "
            f"error of up to {0.5 / math.sqrt(c.used):.1%} (false-positive rate "
            f"{math.sqrt(setup.alpha * (1 - setup.alpha) / c.used):.1%}). Allow longer with "
            "--time-budget (seconds; 0 for no limit)."
        )
    false_pos = int(np.nansum(rej[:, 0]))
    lo, hi = binomial_interval(false_pos, n_ok)
    over = lo > setup.alpha
    return _DesignRun(
        effects=effects,
        power=pw,
        false_positives=false_pos,
        fpr_interval=(lo, hi),
        over_rejects=over,
        n=n_ok,
        failed=int((~valid).sum()),
        path=path,
        analytic=an,
        analytic_curve=analytic_curve,
        mde=None if over else mde_from_curve(effects, pw, setup.target),
        declared_power=None if over else decl_power,
        estimator=est,
        inference=inf,
    )


def _simulate_stepped(setup: _Setup, design: _Design, done0: int) -> _DesignRun:
    """A stepped roll-out: placebo roll-outs re-drawn as its scheme draws the waves, analysed
    with the plan's estimator and inference (:mod:`pilotlab.power.stepped`)."""
    hist, L = setup.history, design.post
    alloc = hist.allocation
    assert alloc is not None and setup.offsets is not None
    plan = stepped_plan(alloc, setup.offsets, hist.n_periods, L)
    fit_ss = np.random.SeedSequence(setup.seed, spawn_key=(1,))
    idx = alloc.index_of(hist.unit_labels)
    example = dataclasses.replace(
        hist.with_first_treated(plan.code_start[alloc.codes[idx]]), allocation=alloc
    )
    est = choose_estimator(example, setup.spec.design.estimator)
    inf = choose_inference(example, est.name, setup.spec.design.inference.method)
    options = dataclasses.replace(estimator_options(setup.spec, inf.name), pretrend="none")
    n_in = plan.n_started
    if setup.effects is not None:
        effects = np.unique(np.concatenate([[0.0], np.abs(setup.effects)]))
    else:
        base = rough_effect_scale(hist, setup.outcome, max(1, n_in // 2), max(1, L // 2))
        effects = np.array([nice_effect(m * base) for m in GRID_MULTIPLES])
    if setup.stage is not None:
        setup.stage(
            f"Simulating {setup.simulations} placebo roll-outs drawn as the {alloc.scheme} "
            f"scheme draws its waves ({L} periods from the first wave; {est.name}, "
            f"{inf.name} inference)"
        )
    if setup.progress is not None:
        setup.progress(done0, setup.total)
    sim, _ = stepped_rejections(
        hist, setup.outcome, est.name, options, alloc, plan, setup.sign * effects,
        simulations=setup.simulations, seed_seq=fit_ss, n_jobs=setup.n_jobs,
        progress=setup.progress, done0=done0, total=setup.total, time_budget=setup.time_budget,
    )  # fmt: skip
    if options.inference == "permutation" and hist.weighted and sim.path != "scheme":
        note = (
            "Randomisation inference with weights: every simulated roll-out and every re-drawn "
            "wave order was analysed in full, which is slower. With weights each re-draw "
            "changes the weighted size of every wave, and so how the waves are combined; the "
            "shortcut that estimates all the re-draws at once covers the overall average of "
            "the waves' effects (the simple aggregation) on a balanced history without "
            "covariates only."
        )
        if note not in setup.notes:
            setup.notes.append(note)
    run = _summarise(setup, sim, effects, options, est, inf, None, None, n_in, L)
    mde = run.mde
    if mde is not None and sim.reject_at is not None:  # solved exactly, as everywhere else
        mde = stepped_mde(sim, hist, setup.outcome, setup.target, setup.sign)
    return dataclasses.replace(run, stepped=(plan, sim), mde=mde)


def _treated_in(run: _DesignRun, n_treated: int) -> int:
    """Units the simulated design treats: for a stepped roll-out, those of the waves that start
    within the placebo roll-out (a later wave stays a comparison throughout)."""
    if run.stepped is None:
        return n_treated
    return run.stepped[0].n_started


def _period_word(labels: tuple[str, ...]) -> str:
    """What a period of the data is called in prose: month, quarter or period."""
    fmt = detect_format(pd.Series(list(labels), dtype=object))
    return {"month": "month", "quarter": "quarter"}.get(str(fmt), "period")


def _rollout_sentence(setup: _Setup, run: _DesignRun) -> str:
    """How many units the simulated roll-out treats and why that differs from the pilot's
    total, in plain words."""
    assert run.stepped is not None
    plan = run.stepped[0]
    alloc = setup.history.allocation
    assert alloc is not None
    word = setup.spec.data.unit_label
    n_in, n_all = plan.n_started, alloc.n_units
    span = plural(plan.post, _period_word(setup.history.period_labels))
    if not plan.late_waves:
        return (
            f"All {plural(n_all, word)} start within the {span} each simulated roll-out runs, "
            "wave by wave as the pilot file plans."
        )
    late = " and ".join(plan.late_waves)
    verb = "it acts" if len(plan.late_waves) == 1 else "they act"
    return (
        f"{n_in} of the {n_all} {plural_word(word)} start within the {span} the history "
        f"allows each simulated roll-out; {late} would start later, so in the simulation "
        f"{verb} only as a comparison ({plural_word(word)} not yet started). The pilot itself "
        f"treats all {n_all}, so these numbers understate its power a little."
    )


def _refuse_stepped_options(
    spec: PilotSpec, treated: int | Sequence[int] | None, conditional: bool | None
) -> None:
    """Options a stepped roll-out cannot honour are refused, never silently ignored."""
    word = plural_word(spec.data.unit_label)
    if treated is not None:
        raise SpecError(
            f"--treated: a stepped roll-out treats the {word} of its waves (assignment.waves), "
            "so the number treated is not a choice of the power plan; change the waves' sizes "
            "in assignment.waves to plan another number, or compare roll-out lengths with "
            "--post (e.g. --post 4,6,8)"
        )
    if spec.design.power.treated is not None:
        raise SpecError(
            f"design.power.treated: a stepped roll-out treats the {word} of its waves "
            "(assignment.waves), so this key would be ignored; remove it and set the waves' "
            "sizes in assignment.waves instead"
        )
    if conditional or spec.design.power.conditional_on_units:
        raise SpecError(
            "--conditional-on-units / design.power.conditional_on_units: the placebo roll-outs "
            "of a stepped roll-out re-draw the waves exactly as its scheme draws them, so power "
            "conditional on named units does not apply; drop the option"
        )


def _stepped_post(
    spec: PilotSpec, history: Panel, labels: tuple[str, ...], offsets: np.ndarray, min_pre: int,
    notes: list[str],
) -> int:  # fmt: skip
    """Periods a placebo roll-out runs from its first wave: as the pilot runs (to the end of
    its data, or one wave interval past the last wave), fitted to the history before it."""
    first = history.n_periods  # the data's first wave is right after the planning history
    waves = offsets[offsets >= 0]
    if len(labels) > first:
        L = len(labels) - first
    else:
        gaps = np.diff(np.unique(waves))
        L = int(waves.max()) + (int(gaps.min()) if gaps.size else 1)
    T = history.n_periods
    if L + min_pre > T:
        fitted = T - min_pre
        if fitted < 1:
            raise SpecError(
                f"design.power.min_pre_periods: the history before the first wave holds {T} "
                f"periods, too few to keep {min_pre} before a placebo roll-out; lower "
                "design.power.min_pre_periods or add earlier history"
            )
        word = _period_word(history.period_labels)
        notes.append(
            f"The pilot runs {plural(L, word)} from its first wave. Its power is simulated on "
            f"the {plural(T, word)} of data before the first wave: each simulated roll-out (a "
            "'placebo' roll-out, with no real programme, into which an effect is added) keeps "
            f"at least {plural(min_pre, word)} before its first wave as a baseline, so it can "
            f"run only {plural(fitted, word)}. Set design.power.post_periods to plan another "
            "length."
        )
        L = fitted
    return L


def run_power(
    spec: PilotSpec,
    data: pd.DataFrame | None = None,
    treated: int | Sequence[int] | None = None,
    post: int | Sequence[int] | None = None,
    progress: ProgressCallback | None = None,
    *,
    simulations: int | None = None,
    n_jobs: int | None = None,
    outcome: str | None = None,
    conditional: bool | None = None,
    stage: StageCallback | None = None,
    time_budget: float | None = DEFAULT_TIME_BUDGET,
) -> PowerResult:
    """Simulated power and MDE of a planned pilot from placebo pilots drawn in its history.

    Parameters
    ----------
    spec
        The pilot (status ``planned``; its data may hold only the history).
    data
        Optional DataFrame used instead of the pilot's data file.
    treated
        Number(s) of treated units. One value overrides ``design.power.treated``; several values
        (with or without several ``post`` values) add a trade-off grid of designs.
    post
        Post-period length(s), as ``treated``.
    progress
        ``progress(done, total)`` called as placebo pilots are evaluated.
    simulations
        Placebo pilots per design (default ``design.power.simulations``).
    n_jobs
        Worker processes for the generic path (default: the CPUs available, at most 8).
    outcome
        Outcome column (default: the first primary outcome).
    conditional
        Keep the named treated units in every placebo pilot (default
        ``design.power.conditional_on_units``): power conditional on their own history, labelled
        as such, instead of the design's power with units drawn at random.
    stage
        ``stage(message)`` called as each stage starts (the CLI prints them).
    time_budget
        Seconds a design may take on the refitting path (estimators without a fast form,
        such as Callaway & Sant'Anna or covariates with randomisation inference) before fewer
        placebo pilots are run, with the Monte Carlo error stated; ``None`` for no limit.

    Raises
    ------
    SpecError
        A design the history cannot support (too few periods, more treated than eligible units).
    """
    t0 = time.perf_counter()
    ps = spec.design.power
    alpha = spec.design.alpha
    n_sims = int(simulations or ps.simulations)
    if n_sims < 20:
        raise SpecError(
            f"simulations: found {n_sims}; at least 20 placebo pilots are needed for a power "
            "estimate (500 or more for a Monte Carlo error below 2 points)"
        )
    out_spec = next((o for o in spec.outcomes if o.column == outcome), spec.primary_outcomes[0])
    if outcome is not None and out_spec.column != outcome:
        raise SpecError(
            f"outcome: '{outcome}' is not an outcome of this pilot; use one of "
            f"{', '.join(o.column for o in spec.outcomes)}"
        )
    if stage is not None:
        stage("Reading the history")
    history, load_notes, all_labels = _planning_history(spec, data)
    history = history.complete(out_spec.column, tuple(spec.design.covariates))
    notes: list[str] = [load_notes] if load_notes else []
    offsets = None
    main_post: list[int] | None = None  # a stepped roll-out's own length (the headline)
    stepped = (
        spec.assignment is not None
        and spec.assignment.scheme == "stepped"
        and history.allocation is not None
    )
    min_pre = ps.min_pre_periods if ps.min_pre_periods is not None else DEFAULT_MIN_PRE
    if stepped:
        assert history.allocation is not None
        _refuse_stepped_options(spec, treated, conditional)
        offsets = wave_offsets(history.allocation, all_labels)
        several = post is not None and not isinstance(post, int) and len(post) > 1
        if ps.post_periods is None and (not post or several):  # the headline: as the pilot runs
            main_post = [_stepped_post(spec, history, all_labels, offsets, min_pre, notes)]

    # ---- the designs
    treated_list, post_list = _as_list(treated), _as_list(post)
    cond = bool(ps.conditional_on_units) if conditional is None else conditional
    main, key_treated, key_post = _main_design(
        spec, history, treated_list, main_post or post_list, notes, min_pre, cond
    )
    if stepped:  # every unit may be in a wave: the comparisons are the waves not yet started
        _check_design(history, 0, main.post, min_pre, key_treated, key_post)
    else:
        _check_design(history, main.n_treated, main.post, min_pre, key_treated, key_post)
    grid: list[_Design] = []
    if (not stepped and (treated_list and len(treated_list) > 1)) or (
        post_list and len(post_list) > 1
    ):
        for k in treated_list or [main.n_treated]:
            for L in post_list or [main.post]:
                # a stepped roll-out's comparisons are the waves not yet started
                _check_design(history, 0 if stepped else k, L, min_pre, "--treated", "--post")
                grid.append(_Design(k, L))

    seed = ps.seed if ps.seed is not None else spec.design.inference.seed
    # The main design's draws serve its cell of the trade-off grid (same numbers in both tables).
    reuse_main = main.fixed is None and _Design(main.n_treated, main.post) in grid
    setup = _Setup(
        spec=spec,
        history=history,
        outcome=out_spec.column,
        Y=history_matrix(history, out_spec.column),
        seed=seed,
        simulations=n_sims,
        min_pre=min_pre,
        alpha=alpha,
        target=ps.target_power,
        df_analytic=float(max(history.n_clusters - 1, 1)),
        # Effects are injected in the direction the pilot hopes for; tables report their size.
        sign=-1.0 if out_spec.better == "lower" else 1.0,
        effects=tuple(ps.effects) if ps.effects is not None else None,
        declared_mde=out_spec.mde,
        n_jobs=n_jobs or min(available_cpus(), 8),
        progress=progress,
        total=n_sims * (1 + len(grid) - int(reuse_main)),
        stage=stage,
        time_budget=time_budget if time_budget else None,
        notes=notes,
        offsets=offsets,
        cluster_of=unit_clusters(history),
    )
    run = _simulate_design(setup, main, 0, 0)
    cells = []
    done = n_sims
    for i, d in enumerate(grid):
        if reuse_main and (d.n_treated, d.post) == (main.n_treated, main.post):
            r = run
        else:
            r = _simulate_design(setup, d, i + 1, done)
            done += n_sims
        cells.append(
            TradeoffCell(
                n_treated=_treated_in(r, d.n_treated),
                post_periods=d.post,
                mde=r.mde,
                analytic_mde=r.analytic.mde if r.analytic else math.nan,
                analytic_mde_placebo=r.analytic.mde_simulated_design if r.analytic else math.nan,
                false_positive_rate=float(r.power[0]),
                power_at_declared_mde=r.declared_power,
                estimator=r.estimator.name,
                inference=r.inference.name,
                over_rejects=r.over_rejects,
            )
        )

    n = run.n
    curve = tuple(
        PowerPoint(
            effect=float(e),
            power=float(p),
            mc_error=math.sqrt(p * (1 - p) / n),
            n=n,
            analytic_power=None if run.analytic_curve is None else float(run.analytic_curve[j]),
        )
        for j, (e, p) in enumerate(zip(run.effects, run.power, strict=True))
    )
    fpr = curve[0].power  # the grid always starts at zero effect
    fpr_lo, fpr_hi = run.fpr_interval
    advice = ""
    if run.over_rejects:
        advice = over_rejection_advice(
            run.inference.name, run.estimator.name, main.n_treated, history.n_units,
            main.fixed is not None,
        )  # fmt: skip
        notes.insert(
            0,
            f"No minimum detectable effect is claimed: with no effect at all, the test finds one "
            f"in {run.false_positives} of {n} placebo pilots ({fpr:.1%}; at least {fpr_lo:.1%} "
            f"with 95% confidence), against the nominal {alpha:.0%}. The {run.inference.name} "
            f"inference over-rejects on this history, so its power curve overstates what the "
            f"pilot could detect. {advice}",
        )
    elif run.mde is None:
        notes.append(
            f"Power stays below {ps.target_power:.0%} over the effects simulated (up to "
            f"{run.effects[-1]:g}); the MDE is larger. Treat more units or plan a longer pilot."
        )
    if run.failed:
        notes.append(f"{run.failed} placebo pilot(s) could not be estimated and were left out.")
    over_cells = [c for c in cells if c.over_rejects]
    if over_cells and not run.over_rejects:
        notes.append(
            "Some designs of the trade-off grid over-reject at zero effect (their MDE is left "
            "out): " + ", ".join(f"{c.n_treated} treated / {c.post_periods} after"
                                  for c in over_cells) + "."
        )  # fmt: skip
    if setup.Y is None:
        notes.append(
            "The history is unbalanced or has missing values, so no analytic MDE is given."
        )
    if stepped and run.stepped is not None:
        scheme = _stepped_scheme(setup, run, notes)
    else:
        scheme = _scheme_power(spec, history, out_spec.column, main, n_sims, seed, notes)
    return PowerResult(
        pilot_id=spec.id,
        title=spec.title,
        outcome=out_spec.column,
        outcome_label=out_spec.display,
        better=out_spec.better,
        estimator=run.estimator.name,
        inference=run.inference.name,
        estimator_reason=run.estimator.reason,
        inference_reason=run.inference.reason,
        alpha=alpha,
        target_power=ps.target_power,
        simulations=run.n + run.failed,
        failed=run.failed,
        n_treated=_treated_in(run, main.n_treated),
        treated_units=(
            tuple(history.unit_labels[i] for i in main.fixed) if main.fixed is not None else ()
        ),
        post_periods=main.post,
        min_pre_periods=min_pre,
        n_units=history.n_units,
        n_periods=history.n_periods,
        history=(history.period_labels[0], history.period_labels[-1]),
        seed=seed,
        path=run.path,
        curve=curve,
        mde=run.mde,
        false_positive_rate=fpr,
        false_positive_mc_error=math.sqrt(alpha * (1 - alpha) / n),
        false_positives=run.false_positives,
        false_positive_interval=(fpr_lo, fpr_hi),
        over_rejects=run.over_rejects,
        advice=advice,
        assignment="conditional" if main.fixed is not None else "random",
        declared_mde=out_spec.mde,
        power_at_declared_mde=run.declared_power,
        analytic=run.analytic,
        tradeoff=tuple(cells),
        notes=tuple(notes),
        scheme=scheme,
        rollout=_rollout_sentence(setup, run) if stepped and run.stepped is not None else "",
        unit_label=spec.data.unit_label,
        period_word=_period_word(history.period_labels),
        elapsed_seconds=time.perf_counter() - t0,
        software=software_versions(),
    )


def _scheme_power(
    spec: PilotSpec, history: Panel, outcome: str, main: _Design, n_sims: int, seed: int,
    notes: list[str],
) -> SchemePower | None:  # fmt: skip
    """A randomised pilot's power under its own scheme against complete randomisation, with
    the sentence saying what the scheme buys (first among the notes)."""
    a = spec.assignment
    if a is None or a.scheme == "stepped" or history.allocation is None:
        return None
    options = dataclasses.replace(
        estimator_options(spec, "cluster"), pretrend="none", estimator=None
    )
    try:
        result = scheme_power(
            history, a, outcome, post=main.post, simulations=n_sims,
            alpha=spec.design.alpha, target=spec.design.power.target_power, seed=seed,
            options=options,
        )  # fmt: skip
    except EstimationError as exc:
        notes.append(f"Power under the allocation scheme was not simulated: {exc}")
        return None
    notes.insert(0, result.sentence)
    return result


def _stepped_scheme(setup: _Setup, run: _DesignRun, notes: list[str]) -> SchemePower | None:
    """What randomising the waves within strata buys against drawing them completely at
    random (only for a stepped roll-out with strata), first among the notes."""
    assert run.stepped is not None
    plan, sim = run.stepped
    alloc = setup.history.allocation
    if alloc is None or not alloc.has_blocks or run.over_rejects:
        return None  # no MDE is claimed when the test over-rejects: none to compare
    options = dataclasses.replace(
        estimator_options(setup.spec, run.inference.name), pretrend="none"
    )
    try:
        result = stepped_scheme_power(
            setup.history, setup.outcome, run.estimator.name, options, alloc, plan, sim,
            simulations=setup.simulations, seed=setup.seed, target=setup.target,
            sign=setup.sign, n_jobs=setup.n_jobs, time_budget=setup.time_budget,
            units_word=plural_word(setup.spec.data.unit_label),
            periods_word=plural_word(_period_word(setup.history.period_labels)),
        )  # fmt: skip
    except EstimationError as exc:
        notes.append(f"Power under the allocation scheme was not compared: {exc}")
        return None
    if result is not None:
        notes.insert(0, result.sentence)
    return result


def write_power_report(
    result: PowerResult, out_dir: str | Path, *, option: str = "out_dir"
) -> tuple[Path, Path]:
    """Write ``power.json`` and the self-contained ``power.html`` into the folder ``out_dir``.

    Returns the two paths. Both files are rendered in memory and staged first, then moved into
    place together, so nothing is written if rendering fails. As every pilotlab output folder,
    ``out_dir`` may be new, empty or one pilotlab wrote before; a folder holding files pilotlab
    did not write is refused (:class:`~pilotlab.exceptions.PilotlabError`, naming the file and
    ``option``, the argument to name in the message), and nothing is replaced.
    """
    from pilotlab.report.power import render_power_html

    out = Path(out_dir)
    text_json = json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
    html = render_power_html(result)
    with output_folder(out, option) as tmp:
        (tmp / "power.json").write_text(text_json + "\n", encoding="utf-8")
        (tmp / "power.html").write_text(html, encoding="utf-8")
    return out / "power.json", out / "power.html"
