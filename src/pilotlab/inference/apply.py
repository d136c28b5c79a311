"""Attach design-appropriate inference to an estimator's result.

The regression estimators compute cluster-robust, HC1 and iid standard errors themselves. For
``wild_bootstrap`` and ``permutation`` the estimator is fitted with cluster-robust errors and the
p-value and interval are then replaced by the bootstrap / randomisation ones (the CR1 standard
error is kept as a descriptive number; ``inference_details`` records what was done).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from pilotlab.data.panel import Panel
from pilotlab.estimators.base import EstimatorEntry, EstimatorOptions
from pilotlab.exceptions import EstimationError, Notice, notice
from pilotlab.inference.permutation import permutation_test
from pilotlab.inference.wild import (
    BootstrapDraws,
    combination_fit,
    make_draws,
    prepare_wild_bootstrap,
)
from pilotlab.results import (
    EffectResult,
    EventTimeEstimate,
    PermutationRecord,
    WildBootstrapRecord,
)

__all__ = ["POST_HOC_METHODS", "apply_inference", "supports"]

#: Methods computed here on top of a cluster-robust fit.
POST_HOC_METHODS = ("wild_bootstrap", "permutation")


def supports(entry: EstimatorEntry, method: str) -> bool:
    """Whether ``method`` can be used with ``entry`` (natively or via :func:`apply_inference`)."""
    if method in entry.capabilities.inference:
        return True
    if method == "wild_bootstrap":
        return "cluster" in entry.capabilities.inference and entry.capabilities.linear
    return method == "permutation"


def apply_inference(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    *,
    draws: BootstrapDraws | None = None,
    after_fit: Callable[[EffectResult], EffectResult] | None = None,
) -> EffectResult:
    """Fit ``entry`` and attach the inference ``options.inference`` asks for.

    Parameters
    ----------
    panel, outcome, entry, options, rng
        As for ``entry.fit``; ``options.inference`` may also be ``wild_bootstrap`` or
        ``permutation`` for estimators that do not compute those themselves.
    draws : BootstrapDraws, optional
        Shared wild-bootstrap draws (to reuse one weight matrix across outcomes).
    after_fit : callable, optional
        Applied to the estimator's own result before any inference is attached here: the
        engine passes the parallel-trends pre-test
        (:func:`pilotlab.diagnostics.pretrend.apply_pretrend`), which sits in a layer above.

    Returns
    -------
    EffectResult
    """
    method = options.inference
    stage = after_fit if after_fit is not None else _unchanged
    if method in entry.capabilities.inference or method not in POST_HOC_METHODS:
        return stage(entry.fit(panel, outcome, options, rng))
    if not supports(entry, method):
        raise EstimationError(
            f"design.inference.method: '{method}' is not available with the {entry.name} "
            f"estimator; use one of: {', '.join((*entry.capabilities.inference, 'permutation'))}, or auto"
        )
    base_options = dataclasses.replace(options, inference=entry.base_inference)  # type: ignore[arg-type]
    base = stage(entry.fit(panel, outcome, base_options, rng))
    if method == "wild_bootstrap":
        return _with_wild(base, options, rng, draws)
    perm = permutation_test(panel, outcome, entry, options, rng)
    record = PermutationRecord(
        p_value=perm.p_value,
        ci_lower=perm.ci_lower,
        ci_upper=perm.ci_upper,
        n_assignments=perm.n_assignments,
        exact=perm.exact,
        level=perm.level,
        path=perm.method,
        sentence=perm.sentence(),
        note=perm.note,
    )
    randomised = base.randomised
    if randomised is not None and perm.arms:  # each arm's own randomisation test
        randomised = dataclasses.replace(
            randomised,
            arms=tuple(
                dataclasses.replace(
                    arm,
                    p_randomisation=p,
                    p_randomisation_adjusted=q,
                    ri_ci_lower=lo,
                    ri_ci_upper=hi,
                )
                for arm, (p, q, lo, hi) in zip(randomised.arms, perm.arms, strict=True)
            ),
        )
    elif randomised is not None and len(randomised.arms) == 1:
        arm = randomised.arms[0]
        randomised = dataclasses.replace(
            randomised,
            arms=(
                dataclasses.replace(
                    arm,
                    p_randomisation=perm.p_value,
                    p_randomisation_adjusted=perm.p_value,
                    ri_ci_lower=perm.ci_lower,
                    ri_ci_upper=perm.ci_upper,
                ),
            ),
        )
    return dataclasses.replace(
        base,
        randomised=randomised,
        p_value=perm.p_value,
        ci_lower=perm.ci_lower,
        ci_upper=perm.ci_upper,
        inference="permutation",
        warnings=_drop_cr_warning(base.warnings)
        + ((notice(perm.note_code, perm.note),) if perm.note else ()),
        inference_details=record,
    )


def _unchanged(result: EffectResult) -> EffectResult:
    return result


def _drop_cr_warning(warnings: tuple[Notice, ...]) -> tuple[Notice, ...]:
    """The warnings without the cluster-count one, which the new inference no longer needs."""
    return tuple(w for w in warnings if w.code != "few-clusters")


def _with_wild(
    base: EffectResult,
    options: EstimatorOptions,
    rng: np.random.Generator,
    draws: BootstrapDraws | None,
) -> EffectResult:
    if base.linear is None:
        raise EstimationError(
            f"the {base.estimator} estimator does not expose its regression, so the wild "
            "bootstrap cannot be applied; use permutation inference."
        )
    lin = base.linear
    fit = lin.fit
    g = int(np.asarray(fit.cluster).max()) + 1
    if draws is None or draws.n_clusters != g:
        draws = make_draws(g, options.replications, options.bootstrap_weights, rng)
    if lin.combination is not None:
        target = combination_fit(fit, np.asarray(lin.combination), "headline")
        state = prepare_wild_bootstrap(target, "headline", draws)
    else:
        state = prepare_wild_bootstrap(fit, lin.coef_index, draws)
    lo, hi = state.confidence_interval(options.alpha)
    p = state.p_value(0.0)
    events = base.event_study
    if events:  # each event-time coefficient with the same draws (a handful of coefficients)
        names = tuple(fit.names)
        new = []
        for ev in events:
            name = f"e{ev.event_time:+d}"
            if ev.reference or name not in names:
                new.append(ev)
                continue
            st = prepare_wild_bootstrap(fit, names.index(name), draws)
            elo, ehi = st.confidence_interval(options.alpha)
            new.append(EventTimeEstimate(ev.event_time, ev.estimate, ev.std_error, elo, ehi,
                                         st.p_value(0.0)))  # fmt: skip
        events = tuple(new)
    used = draws.weights + (" (enumerated)" if draws.enumerated else "")
    record = WildBootstrapRecord(
        p_value=p,
        ci_lower=lo,
        ci_upper=hi,
        weights=used,
        replications=draws.replications,
        statistic=state.t_obs(0.0),
        sentence=(
            f"Wild cluster restricted bootstrap ({used} weights, {draws.replications:,} draws, "
            f"{g} clusters): p-value and interval by test inversion."
        ),
    )
    warn = _drop_cr_warning(base.warnings)
    if math.isinf(lo) or math.isinf(hi):
        warn += (
            notice(
                "wild-bootstrap-unbounded",
                "The wild-bootstrap interval is unbounded: the data cannot rule out arbitrarily "
                "large effects with so few clusters.",
            ),
        )
    return dataclasses.replace(
        base,
        p_value=p,
        ci_lower=lo,
        ci_upper=hi,
        inference="wild_bootstrap",
        event_study=events,
        warnings=warn,
        inference_details=record,
    )
