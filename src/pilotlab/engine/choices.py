"""The engine's choices: which estimator, which inference, with which options, and why.

Every automatic choice carries its reason in plain English (:class:`~pilotlab.results.Choice`),
shown in the report. The rules ask the estimator catalogue's capabilities, never a name.
"""

from __future__ import annotations

from dataclasses import replace
from typing import cast, get_args

import numpy as np

from pilotlab.data.panel import Panel
from pilotlab.estimators import ESTIMATORS, EstimatorEntry, EstimatorOptions, get_estimator
from pilotlab.estimators.base import InferenceName
from pilotlab.exceptions import EstimationError
from pilotlab.inference import select as inference_rule
from pilotlab.inference.apply import supports
from pilotlab.inference.wild import residual_dof
from pilotlab.results import Choice
from pilotlab.spec import PilotSpec

__all__ = [
    "FEW_TREATED_FOR_SYNTHETIC",
    "MIN_PRE_FOR_SYNTHETIC",
    "check_design",
    "choose_estimator",
    "choose_inference",
    "design_problem",
    "estimator_options",
    "inference_methods",
    "pre_periods",
]

#: Rule for ``estimator: auto`` (documented in the README).
FEW_TREATED_FOR_SYNTHETIC = 3
MIN_PRE_FOR_SYNTHETIC = 8


def pre_periods(panel: Panel) -> int:
    """Periods before the first start (less anticipation)."""
    return int(panel.cohorts.min()) - panel.anticipation


def _auto_entry(role: str, layout: str) -> EstimatorEntry | None:
    """The registered estimator ``auto`` uses in this situation, if it accepts the layout."""
    for entry in ESTIMATORS.values():
        caps = entry.capabilities
        if caps.auto == role and layout in caps.layouts:
            return entry
    return None


def _auto_reason(role: str, panel: Panel, title: str) -> str:
    n_tr, n_pre = panel.n_treated_units, pre_periods(panel)
    if role == "few_treated":
        return (
            f"Only {n_tr} {'area was' if n_tr == 1 else 'areas were'} treated and {n_pre} periods "
            f"precede the start, so {title} builds a weighted comparison that tracks the treated "
            "area(s) before the start (with synthetic control as a check)."
        )
    if role == "randomised":
        return (
            f"The {n_tr} treated units were drawn at random by the pilot file's assignment "
            f"({panel.allocation.scheme if panel.allocation else 'randomised'}), so the arms are "
            f"compared directly with {title}: each unit's mean outcome after the start, adjusted "
            "for its own values before the start."
        )
    if role == "staggered" and panel.allocation is not None:
        return (
            f"Units were randomised into {len(panel.cohorts)} waves of a stepped roll-out, so "
            "each wave is compared with the units not yet treated at the time (Callaway & "
            "Sant'Anna), and randomisation inference re-draws the order of the waves as the "
            "allocation did."
        )
    if role == "staggered":
        return (
            f"Treated units started in {len(panel.cohorts)} different periods (a staggered "
            "roll-out), so effects are estimated for each start cohort against units not (yet) "
            "treated and then averaged (Callaway & Sant'Anna); a plain two-way fixed-effects "
            "regression can be biased here."
        )
    if role == "two_periods":
        return (
            "There are two periods, before and after, so a 2x2 difference-in-differences "
            "compares the change in treated and comparison units."
        )
    return (
        f"{n_tr} units started at the same time and {n_pre} periods precede the start, so an event "
        "study estimates the effect in each period before and after the start: the pre-period "
        "estimates test the parallel-trends assumption, the post-period ones give the effect."
    )


def choose_estimator(panel: Panel, requested: str) -> Choice:
    """Resolve ``design.estimator`` (``auto`` follows the documented rule) and say why.

    The rule asks the catalogue which estimator declares each situation
    (:attr:`~pilotlab.catalogue.Capabilities.auto`): ``few_treated`` (at most
    :data:`FEW_TREATED_FOR_SYNTHETIC` treated units and :data:`MIN_PRE_FOR_SYNTHETIC` periods
    before the start, panel data), then ``staggered``, ``two_periods`` and ``common_start``.
    """
    if requested != "auto":
        entry = get_estimator(requested)
        design_problem(panel, entry)
        if panel.layout not in entry.capabilities.layouts:
            fits = [e.name for e in ESTIMATORS.values() if panel.layout in e.capabilities.layouts]
            rows = (
                " (it needs the rows themselves, which microdata are summarised away from: "
                "aggregate the person rows to one row per area and period for it)"
                if panel.layout == "microdata"
                else ""
            )
            raise EstimationError(
                f"design.estimator: {requested} needs "
                f"{' or '.join(entry.capabilities.layouts)} data, but data.layout is "
                f"{panel.layout}{rows}; use {', '.join(fits)}"
            )
        return Choice(requested, f"The analysis plan specifies the {requested} estimator.")
    special = _design_auto(panel)
    if special is not None:
        return special
    roles = []
    if panel.allocation is not None and not panel.is_staggered:
        roles.append("randomised")
    elif (
        panel.n_treated_units <= FEW_TREATED_FOR_SYNTHETIC
        and pre_periods(panel) >= MIN_PRE_FOR_SYNTHETIC
    ):
        roles.append("few_treated")
    if panel.is_staggered:
        roles.append("staggered")
    elif panel.n_periods == 2:
        roles.append("two_periods")
    else:
        roles.append("common_start")
    for role in roles:
        found = _auto_entry(role, panel.layout)
        if found is not None:
            return Choice(found.name, _auto_reason(role, panel, found.title))
    raise EstimationError(
        f"design.estimator: auto found no installed estimator for this design ({roles[-1]}); "
        f"name one of {', '.join(ESTIMATORS)} in design.estimator"
    )


def design_problem(panel: Panel, entry: EstimatorEntry) -> None:
    """Refuse an estimator that cannot read the design: treatment that switches off given to
    one that assumes it stays on, eligibility groups given to one that ignores them (or
    missing for one that needs them)."""
    caps = entry.capabilities
    if panel.is_switching and not caps.switching:
        fits = [e.name for e in ESTIMATORS.values() if e.capabilities.switching]
        raise EstimationError(
            f"design.estimator: {entry.name} assumes a unit stays treated once it starts, but "
            "the treatment (treatment.end, an adoption end or treatment.indicator) stops for "
            f"some units; use {' or '.join(fits) or 'switching'} (or auto), or remove the ends"
        )
    if panel.group is not None and not caps.groups:
        fits = [e.name for e in ESTIMATORS.values() if e.capabilities.groups]
        raise EstimationError(
            f"design.estimator: {entry.name} does not compare eligible and ineligible groups, "
            f"but data.group is set; use {' or '.join(fits) or 'triple_difference'} (or auto), "
            "or remove data.group"
        )
    if caps.groups and panel.group is None:
        raise EstimationError(
            f"data.group: design.estimator {entry.name} compares eligible and ineligible people "
            "within each area and needs data.group, the 0/1 column marking eligible rows"
        )


def _design_auto(panel: Panel) -> Choice | None:
    """``auto`` for the designs only some estimators read: switching treatment, groups."""
    if panel.group is not None:
        found = next((e for e in ESTIMATORS.values() if e.capabilities.groups), None)
        if found is not None:
            return Choice(
                found.name,
                "Only some people in each area are eligible (data.group), so the "
                f"{found.title} compares how the gap between eligible and ineligible people "
                "changed in pilot areas with the same change in comparison areas.",
            )
    if panel.is_switching:
        found = _auto_entry("switching", panel.layout)
        if found is not None:
            return Choice(
                found.name,
                "Treatment stops in some areas (or starts and stops), so the "
                f"{found.title} compares each area that switches with areas of the same "
                "treatment status that have not switched yet, for switches on and off; "
                "estimators that assume treatment stays on would be biased here.",
            )
    return None


def inference_methods(entry: EstimatorEntry) -> tuple[str, ...]:
    """Every ``design.inference.method`` usable with ``entry``: the ones it computes itself and
    the ones applied after its fit (wild cluster bootstrap, permutation), in a fixed order."""
    return tuple(m for m in get_args(InferenceName) if supports(entry, m))


def choose_inference(panel: Panel, estimator: str, requested: str) -> Choice:
    """Resolve ``design.inference.method``; ``auto`` picks what is honest for the cluster counts."""
    entry = get_estimator(estimator)
    if (
        requested == "permutation"
        and panel.is_switching
        and "permutation" not in (entry.capabilities.inference)
    ):
        raise EstimationError(
            "design.inference.method: 'permutation' re-draws start dates and cannot re-draw a "
            f"treatment that switches off; use one of: "
            f"{', '.join(m for m in inference_methods(entry) if m != 'permutation')}, or auto"
        )
    if requested != "auto":
        if not supports(entry, requested):
            raise EstimationError(
                f"design.inference.method: '{requested}' is not available with the {estimator} "
                f"estimator; use one of: {', '.join(inference_methods(entry))}, or auto"
            )
        return Choice(requested, f"The analysis plan specifies {requested} inference.")
    if entry.inference_rule is not None:  # the estimator's own rule (synthetic designs)
        n_donors = int((~panel.is_treated_unit).sum())
        chosen, why = entry.inference_rule("auto", panel.n_treated_units, n_donors, estimator)
        return Choice(chosen, why)
    g, gt = panel.n_clusters, panel.n_treated_clusters
    method, reason = inference_rule.choose_inference(
        g, gt, panel.n_treated_units, entry.capabilities, n_units=panel.n_units
    )
    if supports(entry, method):
        return Choice(method, reason)
    method = entry.base_inference
    return Choice(
        method,
        f"Standard errors are clustered by {g} clusters ({gt} treated), allowing "
        "outcomes of the same cluster to be correlated over time.",
    )


def check_design(pilot: PilotSpec, panel: Panel) -> tuple[Choice, Choice]:
    """What ``pilotlab validate`` checks beyond loading, so that it agrees with ``run``.

    Chooses the estimator and inference as :func:`~pilotlab.engine.evaluate` does and fits each outcome's point
    estimate once (with the estimator's own standard errors, not the resampling), so a design
    the estimator cannot fit raises the :class:`EstimationError` that ``run`` would raise; so
    does a wild bootstrap with no residual degrees of freedom left.
    """
    design = pilot.design
    est = choose_estimator(panel, design.estimator)
    inf = choose_inference(panel, est.name, design.inference.method)
    entry = get_estimator(est.name)
    options = estimator_options(pilot, inf.name)
    if options.inference not in entry.capabilities.inference:
        options = replace(options, inference=cast(InferenceName, entry.base_inference))
    for o in pilot.outcomes:
        sub = panel.complete(o.column, tuple(design.covariates))
        fitted = entry.fit(sub, o.column, options, np.random.default_rng(design.inference.seed))
        if inf.name == "wild_bootstrap" and fitted.linear is not None:
            residual_dof(fitted.linear.fit)
    return est, inf


def estimator_options(pilot: PilotSpec, inference: str) -> EstimatorOptions:
    """The options every estimator reads, from the pilot's analysis plan.

    ``inference`` is the concrete method chosen (:func:`choose_inference`; not ``auto``). The
    typed groups ``design.callaway_santanna`` and ``design.synthetic`` are passed as they are,
    and ``design.options`` of an estimator from another package is validated against that
    estimator's option model and passed as :attr:`EstimatorOptions.estimator`.
    """
    d = pilot.design
    return EstimatorOptions(
        inference=cast(InferenceName, inference),
        alpha=d.alpha,
        covariates=tuple(d.covariates),
        window=(d.window.pre, d.window.post) if d.window else None,
        replications=d.inference.replications,
        bootstrap_weights=d.inference.weights,
        callaway_santanna=d.callaway_santanna,
        synthetic=d.synthetic,
        estimator=d.estimator_options(),
    )
