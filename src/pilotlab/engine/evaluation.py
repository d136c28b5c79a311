"""``evaluate()``: the one place where the stages meet.

pilot file -> Panel -> estimator per outcome -> inference, multiple testing, robustness checks ->
:class:`~pilotlab.results.Evaluation`, from which the report and the evidence record are built.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime
from functools import partial
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from pilotlab.data import load_panel
from pilotlab.data.panel import NEVER, Panel
from pilotlab.diagnostics.bacon import bacon_decomposition
from pilotlab.diagnostics.evidence_strength import evidence_strength
from pilotlab.diagnostics.pretrend import apply_pretrend
from pilotlab.diagnostics.robustness import robustness_checks
from pilotlab.diagnostics.value_for_money import value_for_money
from pilotlab.engine.choices import (
    choose_estimator,
    choose_inference,
    estimator_options,
    pre_periods,
)
from pilotlab.engine.trial import RegisteredDesign, check_allocation, cycle_info, trial_summary
from pilotlab.engine.versions import software_versions
from pilotlab.estimators import get_estimator
from pilotlab.exceptions import PilotlabError, PilotlabWarning, collect, notice
from pilotlab.inference.apply import apply_inference
from pilotlab.inference.multiple import bh, holm, romano_wolf_wild
from pilotlab.inference.wild import LinearFitLike, combination_fit, make_draws
from pilotlab.power.analytic import analytic_mde
from pilotlab.results import (
    BaconDecomposition,
    DataSummary,
    DesignDiagnostics,
    DesignMDE,
    EffectResult,
    Evaluation,
    OutcomeEvaluation,
    PlanInfo,
)
from pilotlab.spec import PilotSpec, plan_sha256

__all__ = ["evaluate"]


def _group_trends(panel: Panel, outcome: str) -> pd.DataFrame:
    """Mean outcome per period for treated and comparison units (weighted)."""
    y = panel.y(outcome)
    ok = ~np.isnan(y)
    treated = panel.is_treated_unit[panel.unit]
    T = panel.n_periods
    out: dict[str, Any] = {"period": list(panel.period_labels)}
    for name, mask in (("treated", treated & ok), ("comparison", ~treated & ok)):
        w = panel.weight[mask]
        s = np.bincount(panel.time[mask], weights=y[mask] * w, minlength=T)
        n = np.bincount(panel.time[mask], weights=w, minlength=T)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)
    return pd.DataFrame(out)


def _baseline(panel: Panel, outcome: str) -> float:
    y = panel.y(outcome)
    pre = (panel.cohort != NEVER) & (panel.time < panel.cohort - panel.anticipation) & ~np.isnan(y)
    return float(np.average(y[pre], weights=panel.weight[pre])) if pre.any() else math.nan


def _adjust(p: list[float], method: str) -> list[float]:
    """Holm or Benjamini-Hochberg adjustment (``none``: unchanged; Romano-Wolf is done apart)."""
    if method in ("none", "romano_wolf") or len(p) < 2:
        return list(p)
    return list((holm if method == "holm" else bh)(p).tolist())


def _design_diagnostics(panel: Panel, pilot: PilotSpec) -> DesignDiagnostics:
    """Diagnostics of the design shown in the report (Goodman-Bacon when the roll-out is staggered)."""
    bacon: dict[str, BaconDecomposition] = {}
    if panel.is_staggered and panel.layout == "panel":
        for o in pilot.outcomes:
            sub = panel.complete(o.column, ())
            if not sub.is_balanced or not sub.is_staggered:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PilotlabWarning)
                try:
                    bacon[o.column] = bacon_decomposition(sub, o.column)
                except PilotlabError:
                    continue
    return DesignDiagnostics(
        goodman_bacon=MappingProxyType(bacon),
        design_mde=MappingProxyType(_design_mde(panel, pilot)),
    )


def _design_mde(panel: Panel, pilot: PilotSpec) -> dict[str, DesignMDE]:
    """Analytic minimum detectable effect of this design, per outcome, from pre-period data.

    Only for a common start on a rectangular panel: serial correlation (AR(1)) is estimated on
    the periods before the start, so the pilot's effect cannot leak into it.
    """
    if panel.is_staggered or not panel.is_rectangular:
        return {}
    pre = pre_periods(panel)
    post = panel.n_periods - int(panel.cohorts[0])
    if pre < 2 or post < 1:
        return {}
    out: dict[str, DesignMDE] = {}
    for o in pilot.outcomes:
        Y = panel.y(o.column).reshape(panel.n_units, panel.n_periods)[:, :pre]
        if np.isnan(Y).any():
            continue
        a = analytic_mde(
            Y,
            pre=pre,
            post=post,
            n_treated=panel.n_treated_units,
            alpha=pilot.design.alpha,
            power=pilot.design.power.target_power,
            df=panel.n_clusters - 1,
        )
        out[o.column] = DesignMDE(
            **{f.name: getattr(a, f.name) for f in fields(a)},
            target_power=pilot.design.power.target_power,
            declared_mde=o.mde,
        )
    return out


def _raw_frame(pilot: PilotSpec, data: pd.DataFrame | None) -> pd.DataFrame | None:
    """The data as read, for the columns the panel does not keep (``trial.received``)."""
    if pilot.trial is None or pilot.trial.received is None:
        return None
    if data is not None:
        return data
    from pilotlab.data.load import read_table

    path = getattr(pilot, "data_path", None)
    if path is None:
        return None
    return read_table(
        path,
        text_columns=[c for c in (pilot.data.unit, pilot.data.cluster) if c],
        exact_columns=[pilot.data.time],
    )


def evaluate(
    pilot: PilotSpec,
    data: pd.DataFrame | None = None,
    *,
    plan: PlanInfo | None = None,
    command: str = "",
    progress: Callable[[str], None] | None = None,
    registered: RegisteredDesign | None = None,
) -> Evaluation:
    """Estimate the pilot's effects on every outcome, with the inference and checks in its plan.

    Parameters
    ----------
    pilot
        The pilot (``pilotlab.load_pilot(path)``).
    data
        Optional DataFrame used instead of the pilot's data file.
    plan
        Registration status of the plan (from the registry); unregistered if omitted.
    command
        The command line that produced this evaluation (for the reproducibility appendix).
    progress
        Called with a short plain-English message as each stage starts: reading the data,
        checking it, choosing the design, fitting each outcome with its inference, adjusting for
        multiple outcomes, each robustness check as it starts and (with a message ending in a
        full stop) as it finishes, and summarising the evidence. ``None`` (the default): silent.
        The command line prints these on stderr; e.g. ``progress=print`` or
        ``progress=messages.append``.
    registered
        What the registry holds about the pilot's design (its registered allocations and the
        earlier cycles of its learning chain); a randomised pilot's allocation is checked
        against the registered one before anything is estimated.
    """
    panel, loaded = collect(load_panel, pilot, data, progress=progress)
    notes = list(loaded)
    allocation_check = (
        check_allocation(pilot, panel.allocation, registered.allocations if registered else ())
        if panel.allocation is not None
        else None
    )
    design = pilot.design
    if progress is not None:
        progress("Choosing the estimator and inference")
    est_choice = choose_estimator(panel, design.estimator)
    inf_choice = choose_inference(panel, est_choice.name, design.inference.method)
    entry = get_estimator(est_choice.name)
    options = estimator_options(pilot, inf_choice.name)

    results: list[EffectResult] = []
    # One wild-bootstrap draw matrix shared by every outcome (Romano-Wolf needs the same draws).
    draws = make_draws(
        max(panel.n_clusters, 2),
        design.inference.replications,
        design.inference.weights,
        np.random.default_rng(design.inference.seed),
    )
    for o in pilot.outcomes:
        if progress is not None:
            progress(f"Fitting {o.display}: {est_choice.name} with {inf_choice.name} inference")
        sub = panel.complete(o.column, tuple(design.covariates))
        rng = np.random.default_rng(design.inference.seed)
        results.append(
            apply_inference(
                sub,
                o.column,
                entry,
                options,
                rng,
                draws=draws,
                after_fit=partial(apply_pretrend, sub, o.column, entry, options, rng=rng),
            )
        )

    primary = {o.column for o in pilot.primary_outcomes}
    prim_idx = [i for i, o in enumerate(pilot.outcomes) if o.column in primary]
    adjusted = [r.p_value for r in results]
    method = design.multiple_testing
    prim_p = [results[i].p_value for i in prim_idx]
    if progress is not None and len(prim_idx) > 1 and method != "none":
        progress(f"Adjusting the p-values of {len(prim_idx)} primary outcomes ({method})")
    if method == "romano_wolf" and len(prim_idx) > 1:
        parts = [results[i].linear for i in prim_idx]
        lins = [p for p in parts if p is not None and p.fit.n_clusters == draws.n_clusters]
        if len(lins) == len(parts):
            targets: list[tuple[LinearFitLike, str | int]] = [
                (combination_fit(p.fit, p.combination), "combination")
                if p.combination is not None
                else (p.fit, p.coef_index)
                for p in lins
            ]
            prim_p = romano_wolf_wild(targets, draws).tolist()
        else:
            notes.append(
                notice(
                    "romano-wolf-fallback",
                    "Romano-Wolf needs the wild bootstrap of a regression estimator with the "
                    "same clusters for every primary outcome; Holm's adjustment was used instead.",
                )
            )
            prim_p = _adjust(prim_p, "holm")
    else:
        prim_p = _adjust(prim_p, method)
    for i, p in zip(prim_idx, prim_p, strict=True):
        adjusted[i] = p
    checks: dict[int, tuple[Any, ...]] = {}
    if design.robustness:
        for i in prim_idx:
            o = pilot.outcomes[i]
            sub = panel.complete(o.column, tuple(design.covariates))
            rng = np.random.default_rng(design.inference.seed)
            checks[i] = robustness_checks(
                design.robustness,
                sub,
                o.column,
                entry,
                options,
                rng,
                results[i],
                progress=progress,
                label=o.display,
            )

    outcomes = tuple(
        OutcomeEvaluation(
            column=o.column,
            label=o.display,
            primary=o.column in primary,
            better=o.better,
            mde=o.mde,
            result=r,
            p_value_adjusted=adj,
            baseline_mean=_baseline(panel, o.column),
            trends=_group_trends(panel, o.column),
            robustness=checks.get(i, ()),
        )
        for i, (o, r, adj) in enumerate(zip(pilot.outcomes, results, adjusted, strict=True))
    )
    path = getattr(pilot, "data_path", None)
    treated_labels = tuple(np.asarray(panel.unit_labels, dtype=object)[panel.is_treated_unit])
    summary = DataSummary(
        path=pilot.data.path if path is not None else "(DataFrame)",
        sha256=panel.data_sha256,
        rows=panel.nobs if panel.micro is None else panel.micro.rows,
        microdata=None if panel.micro is None else panel.micro.summary(panel.nobs),
        units=panel.n_units,
        treated_units=panel.n_treated_units,
        periods=panel.n_periods,
        first_period=panel.period_labels[0],
        last_period=panel.period_labels[-1],
        period_labels=panel.period_labels,
        treated_unit_labels=treated_labels,
        adoption={
            str(u): panel.period_labels[g]
            for u, g in zip(treated_labels, panel.first_treated[panel.is_treated_unit], strict=True)
        },
        excluded_units=panel.unit_flow.excluded if panel.unit_flow else (),
        balanced=panel.is_balanced,
        layout=panel.layout,
        unit_flow=panel.unit_flow,
        missing=panel.missing,
        clusters=panel.n_clusters,
        treated_clusters=panel.n_treated_clusters,
        staggered=panel.is_staggered,
        pre_periods=pre_periods(panel),
    )
    trial = None
    if panel.allocation is not None and allocation_check is not None:
        if progress is not None:
            progress("Checking the trial: flow, attrition, contamination and balance")

        def _fit(sub: Panel, outcome: str) -> EffectResult:
            part = sub.complete(outcome, tuple(design.covariates))
            rng = np.random.default_rng(design.inference.seed)
            return apply_inference(part, outcome, entry, options, rng)

        trial = trial_summary(
            pilot,
            panel,
            allocation_check,
            _raw_frame(pilot, data),
            _fit,
            seed=design.inference.seed,
        )
    if progress is not None:
        progress("Summarising the evidence")
    evaluation = Evaluation(
        trial=trial,
        cycle=cycle_info(pilot, registered),
        diagnostics=_design_diagnostics(panel, pilot),
        pilot=pilot,
        data=summary,
        estimator=est_choice,
        inference=inf_choice,
        outcomes=outcomes,
        plan=plan or PlanInfo(sha256=plan_sha256(pilot)),
        software=software_versions(),
        seed=design.inference.seed,
        alpha=design.alpha,
        multiple_testing=design.multiple_testing,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        command=command,
        warnings=tuple(dict.fromkeys(notes)),
    )
    # scored last, from the finished evaluation (pilotlab rubric of the Maryland SMS)
    return replace(
        evaluation,
        evidence_strength=evidence_strength(evaluation),
        value_for_money=value_for_money(pilot, evaluation),
    )
