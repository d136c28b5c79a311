"""Robustness and sensitivity checks of a pilot's main estimate (``design.robustness``).

Every check is a pure function ``(panel, outcome, entry, options, rng, main) -> RobustnessCheck``
(``alternative_estimators`` returns one check per estimator) and re-uses the inference method of
the main analysis, so a check is as honest as the headline. ``consistent`` says whether the
check agrees with the main result:

* ``placebo_in_time``: the treatment start is moved ``k`` periods earlier and only pre-period data
  are used, so the true effect is zero. Consistent when the placebo interval contains zero.
* ``placebo_in_space``: the treatment (same number of units, same adoption dates) is given to
  comparison units only; the real estimate is ranked among the placebo estimates by absolute
  size. Consistent when the placebo-rank p-value leads to the same conclusion as the main
  p-value at ``alpha`` (both significant, or both not).
* ``leave_one_out``: each treated unit (and, with at most 50 clusters, each comparison cluster)
  is dropped in turn. Consistent when every leave-one-out estimate stays inside the main
  interval, i.e. no single unit or cluster drives the result beyond its stated uncertainty.
* ``alternative_estimators``: the other registered estimators valid for the design. Consistent
  when the alternative estimate has the same sign as the main one and the two intervals
  overlap.
* ``honest_did``: Rambachan & Roth relative-magnitudes bounds on the event study. Consistent when
  the robust interval at ``Mbar = 1`` (post-period violations no larger than the largest
  pre-period one) reaches the same conclusion about zero as the main interval; the breakdown
  value is reported.

``consistent`` is ``None`` when a check cannot be run on the design (the description says why).

The checks share one random-number generator, in the order listed. ``honest_did`` on an event
study draws nothing from it and fits nothing, so it runs on a thread beside the others: its
conditional tests overlap their synthetic placebo problems, and every number is the same as
when the checks run in turn.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import MappingProxyType

import numpy as np
import pandas as pd

from pilotlab.data.panel import NEVER, Panel
from pilotlab.diagnostics.honest_did import breakdown_value, sensitivity_rm, sensitivity_sd
from pilotlab.estimators.base import ESTIMATORS, EstimatorEntry, EstimatorOptions
from pilotlab.exceptions import PilotlabError
from pilotlab.inference.apply import apply_inference, supports
from pilotlab.inference.permutation import placebo_estimates
from pilotlab.results import (
    AlternativeEstimator,
    CheckDetails,
    EffectResult,
    HonestDiD,
    LeaveOneOut,
    NotRun,
    PlaceboInSpace,
    PlaceboInTime,
    RobustnessCheck,
    Table,
)

__all__ = [
    "CHECKS",
    "alternative_estimators",
    "honest_did",
    "leave_one_out",
    "placebo_in_space",
    "placebo_in_time",
    "robustness_checks",
]

#: Leave out comparison clusters one at a time only for designs with at most this many clusters.
SMALL_DESIGN_CLUSTERS = 50


def _check(
    name: str,
    estimate: float,
    lo: float,
    hi: float,
    consistent: bool | None,
    description: str,
    details: CheckDetails,
) -> RobustnessCheck:
    return RobustnessCheck(
        check=name,
        estimate=float(estimate),
        ci_lower=float(lo),
        ci_upper=float(hi),
        consistent=consistent,
        description=description,
        details=details,
    )


def _not_run(name: str, why: str) -> RobustnessCheck:
    return _check(name, math.nan, math.nan, math.nan, None, f"Not run: {why}", NotRun(why))


def _fit(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
) -> EffectResult:
    """Fit with the main inference when the estimator supports it, else its default."""
    options = dataclasses.replace(options, pretrend="none")  # checks never read a pre-test
    if not supports(entry, options.inference):
        base = entry.base_inference
        options = dataclasses.replace(options, inference=base)  # type: ignore[arg-type]
    return apply_inference(panel, outcome, entry, options, rng)


def _significant(lo: float, hi: float) -> bool:
    return not (lo <= 0.0 <= hi)


# ----------------------------------------------------------------------------- placebo in time
def placebo_in_time(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    main: EffectResult,
    *,
    shift: int | None = None,
) -> RobustnessCheck:
    """Pretend the pilot started ``shift`` periods earlier, using pre-period data only.

    ``shift`` defaults to half the pre-period (at most the number of post periods), so the
    placebo has as many "after" as "before" periods where possible.
    """
    name = "placebo_in_time"
    treated = panel.is_treated_unit
    first = panel.first_treated[treated] - panel.anticipation
    n_pre = int(first.min())
    if n_pre < 2:
        return _not_run(name, f"only {n_pre} period(s) before the start; the placebo needs 2+.")
    n_post = panel.n_periods - int(first.min())
    k = shift if shift is not None else max(1, min(n_pre // 2, n_post))
    if not 1 <= k < n_pre:
        return _not_run(name, f"a shift of {k} periods needs more than {k} pre-periods.")
    last = n_pre - 1
    fake = np.where(treated, panel.first_treated - k, NEVER)
    fake = np.where(treated & (fake > last), NEVER, fake)
    if not (fake != NEVER).any():  # e.g. the anticipation periods leave no placebo start
        return _not_run(
            name,
            f"no treated unit's placebo start (moved {k} period{'s' if k > 1 else ''} earlier) "
            f"falls within the {n_pre} periods before the start.",
        )
    pan = panel.truncate_periods(last).with_first_treated(fake)
    try:
        res = _fit(pan, outcome, entry, options, rng)
    except PilotlabError as exc:
        return _not_run(name, str(exc))
    ok = res.ci_lower <= 0.0 <= res.ci_upper
    desc = (
        f"Moving the start {k} period{'s' if k > 1 else ''} earlier and using only the "
        f"{n_pre} pre-start periods gives {res.estimate:.3g} "
        f"[{res.ci_lower:.3g}, {res.ci_upper:.3g}]; "
        + ("no spurious effect." if ok else "a spurious 'effect' appears before the start.")
    )
    return _check(name, res.estimate, res.ci_lower, res.ci_upper, ok, desc,
                  PlaceboInTime(k, n_pre, res.inference, res.p_value))  # fmt: skip


# ----------------------------------------------------------------------------- placebo in space
def placebo_in_space(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    main: EffectResult,
    *,
    max_placebos: int = 500,
) -> RobustnessCheck:
    """Give the treatment to comparison units only and rank the real estimate among placebos."""
    name = "placebo_in_space"
    treated = panel.is_treated_unit
    n_t, n_c = int(treated.sum()), int((~treated).sum())
    if n_c <= n_t:
        return _not_run(name, f"{n_c} comparison units cannot host {n_t} placebo-treated units.")
    comp = panel.subset_units(~treated)
    labels = np.full(n_c, NEVER, dtype=np.int64)
    labels[:n_t] = panel.first_treated[treated] - panel.anticipation
    try:
        est, exact = placebo_estimates(
            comp, outcome, entry, options, rng, labels, min(options.replications, max_placebos)
        )
    except PilotlabError as exc:
        return _not_run(name, str(exc))
    est = est[np.isfinite(est)]
    if est.size == 0:
        return _not_run(name, "no placebo assignment could be estimated.")
    hits = int(np.sum(np.abs(est) >= abs(main.estimate)))
    p = hits / est.size if exact else (1 + hits) / (est.size + 1)
    rank = int(np.sum(np.abs(est) < abs(main.estimate))) + 1
    ok = (p <= main.alpha) == (main.p_value <= main.alpha)
    lo, hi = np.quantile(est, [main.alpha / 2, 1 - main.alpha / 2])
    desc = (
        f"Among {est.size:,} placebo assignments to comparison units the real estimate "
        f"{main.estimate:.3g} is larger in size than {rank - 1:,} (placebo p = {p:.3f}); "
        + ("this agrees with the main result." if ok else "this disagrees with the main result.")
    )
    return _check(name, main.estimate, float(lo), float(hi), ok, desc,
                  PlaceboInSpace(p, rank, int(est.size), exact, float(np.std(est))))  # fmt: skip


# ----------------------------------------------------------------------------- leave one out
def leave_one_out(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    main: EffectResult,
) -> RobustnessCheck:
    """Drop each treated unit (and each comparison cluster in small designs) in turn."""
    name = "leave_one_out"
    treated = panel.is_treated_unit
    unit_cluster = np.zeros(panel.n_units, dtype=np.int64)
    unit_cluster[panel.unit] = panel.cluster
    drops: list[tuple[str, np.ndarray]] = []
    if treated.sum() >= 2:
        for u in np.flatnonzero(treated):  # a handful of treated units
            keep = np.ones(panel.n_units, dtype=bool)
            keep[u] = False
            drops.append((f"unit {panel.unit_labels[u]}", keep))
    if panel.n_clusters <= SMALL_DESIGN_CLUSTERS:
        treated_clusters = set(unit_cluster[treated].tolist())
        for c in range(panel.n_clusters):  # at most 50 comparison clusters
            if c in treated_clusters:
                continue
            keep = unit_cluster != c
            drops.append((f"cluster {panel.cluster_labels[c]}", keep))
    if not drops:
        return _not_run(name, "one treated unit and too many clusters to drop one at a time.")
    cheap = entry.base_inference
    opts = dataclasses.replace(options, inference=cheap, pretrend="none")  # type: ignore[arg-type]
    rows = []
    for label, keep in drops:
        try:
            r = entry.fit(panel.subset_units(keep), outcome, opts, rng)
            rows.append((label, float(r.estimate), keep))
        except PilotlabError:
            continue
    if not rows:
        return _not_run(name, "no leave-one-out sample could be estimated.")
    ests = np.array([r[1] for r in rows])
    inside = (ests >= main.ci_lower) & (ests <= main.ci_upper)
    worst = int(np.argmax(np.abs(ests - main.estimate)))
    label, est, keep = rows[worst]
    try:  # the most influential drop, with the main inference method
        res = _fit(panel.subset_units(keep), outcome, entry, options, rng)
        lo, hi, used = res.ci_lower, res.ci_upper, res.inference
    except PilotlabError:
        lo = hi = math.nan
        used = None
    comparable = math.isfinite(main.ci_lower) and math.isfinite(main.ci_upper)
    n_outside = int((~inside).sum()) if comparable else 0
    ok = bool(inside.all()) if comparable else None
    desc = (
        f"Dropping each of {len(rows)} units/clusters in turn moves the estimate between "
        f"{ests.min():.3g} and {ests.max():.3g} (main {main.estimate:.3g}); the largest change "
        f"comes from dropping {label}. "
        + (
            "The main estimate has no interval to compare them with."
            if ok is None
            else "All stay inside the main interval."
            if ok
            else f"{n_outside} fall outside the main interval."
        )
    )
    return _check(name, est, lo, hi, ok, desc,
                  LeaveOneOut(label, used, MappingProxyType({r[0]: r[1] for r in rows}),
                              n_outside))  # fmt: skip


# ----------------------------------------------------------------------------- alternatives
def _applicable(panel: Panel, entry: EstimatorEntry) -> bool:
    caps = entry.capabilities
    if panel.layout not in caps.layouts:
        return False
    if caps.randomised and panel.allocation is None:
        return False  # it analyses a randomised allocation; this pilot was not randomised
    if panel.is_switching and not caps.switching:
        return False
    if (panel.group is not None) != caps.groups:
        return False
    return not (panel.is_staggered and not caps.staggered)


def alternative_estimators(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    main: EffectResult,
    *,
    registry: dict[str, EstimatorEntry] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[RobustnessCheck, ...]:
    """Re-run every other registered estimator that is valid for the design.

    ``progress``, if given, is called with ``alternative_estimators:<name>`` as each starts.
    """
    reg = ESTIMATORS if registry is None else registry
    out = []
    for name, alt in sorted(reg.items()):  # a handful of registered estimators
        if name == entry.name or not _applicable(panel, alt):
            continue
        if progress is not None:
            progress(f"  alternative_estimators:{name}")
        try:
            res = _fit(panel, outcome, alt, options, rng)
        except PilotlabError as exc:
            out.append(_not_run(f"alternative_estimators:{name}", str(exc)))
            continue
        same_sign = np.sign(res.estimate) == np.sign(main.estimate)
        overlap = res.ci_lower <= main.ci_upper and main.ci_lower <= res.ci_upper
        ok = bool(same_sign and overlap)
        desc = (
            f"{name}: {res.estimate:.3g} [{res.ci_lower:.3g}, {res.ci_upper:.3g}] "
            f"({res.inference}); "
            + ("agrees with" if ok else "differs from")
            + f" the main {entry.name} estimate {main.estimate:.3g}."
        )
        out.append(_check(f"alternative_estimators:{name}", res.estimate, res.ci_lower,
                          res.ci_upper, ok, desc,
                          AlternativeEstimator(name, res.inference, res.p_value)))  # fmt: skip
    if not out:
        out.append(_not_run("alternative_estimators", "no other estimator applies to this design."))
    return tuple(out)


# ----------------------------------------------------------------------------- honest DiD
def _event_study_inputs(res: EffectResult) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    if res.linear is None or not res.event_study:
        return None
    fit = res.linear.fit
    names = tuple(fit.names)
    times = []
    idx = []
    for j, nm in enumerate(names):
        if nm.startswith("e") and nm[1:].lstrip("+-").isdigit():
            times.append(int(nm[1:]))
            idx.append(j)
    ref = res.linear.reference if res.linear.reference is not None else -1
    pre = [(t, j) for t, j in zip(times, idx, strict=True) if t < ref]
    post = [(t, j) for t, j in zip(times, idx, strict=True) if t > ref]
    if not pre or not post:
        return None
    order = [j for _, j in sorted(pre)] + [j for _, j in sorted(post)]
    beta = np.asarray(fit.beta)[order]
    sigma = np.asarray(fit.vcov)[np.ix_(order, order)]
    return beta, sigma, len(pre), len(post)


def honest_did(
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    main: EffectResult,
    *,
    mbar_values: Sequence[float] = (0.5, 1.0, 1.5, 2.0),
) -> RobustnessCheck:
    """Rambachan & Roth sensitivity of the average post-period effect of the event study."""
    name = "honest_did"
    es = main
    if not main.event_study or main.linear is None:
        event_study = next(
            (
                e
                for e in ESTIMATORS.values()
                if e.capabilities.linear
                and e.capabilities.event_times
                and panel.layout in e.capabilities.layouts
            ),
            None,
        )
        if event_study is None:
            return _not_run(name, "no event-study estimator with linear parts is installed.")
        try:
            es = event_study.fit(
                panel,
                outcome,
                dataclasses.replace(options, inference="cluster", pretrend="none"),
                rng,
            )
        except PilotlabError as exc:
            return _not_run(name, str(exc))
    inputs = _event_study_inputs(es)
    if inputs is None:
        return _not_run(name, "the event study has no pre- and post-period coefficients.")
    beta, sigma, n_pre, n_post = inputs
    l_vec = np.full(n_post, 1.0 / n_post)
    try:
        rm = sensitivity_rm(beta, sigma, n_pre, n_post, list(mbar_values), l_vec=l_vec,
                            alpha=main.alpha)  # fmt: skip
        se_pre = float(np.sqrt(np.mean(np.diag(sigma)[:n_pre])))
        m_grid = [0.0, 0.25 * se_pre, 0.5 * se_pre, se_pre]
        sd = sensitivity_sd(beta, sigma, n_pre, n_post, m_grid, l_vec=l_vec, alpha=main.alpha)
        covering = [iv.bound for iv in rm if iv.contains(0.0)]
        upper = min(covering) if covering else 10.0
        below = [iv.bound for iv in rm if iv.bound < upper]
        bd = breakdown_value(beta, sigma, n_pre, n_post, "RM", l_vec=l_vec, alpha=main.alpha,
                             upper=upper, lower=max(below, default=0.0))  # fmt: skip
    except PilotlabError as exc:
        return _not_run(name, str(exc))
    at_one = next((iv for iv in rm if iv.bound == 1.0), rm[0])
    theta = float(l_vec @ beta[n_pre:])
    ok = _significant(at_one.lower, at_one.upper) == _significant(main.ci_lower, main.ci_upper)
    if bd == 0.0:
        bd_text = "the finding is not significant even under exact parallel trends."
    elif math.isinf(bd):
        bd_text = "no violation up to 10 times the largest pre-period one overturns the finding."
    else:
        bd_text = (
            f"a post-period violation {bd:.2f} times the largest pre-period one would overturn "
            "the finding (breakdown value)."
        )
    desc = (
        f"If parallel trends fail by no more after the start than the largest change before it "
        f"(Mbar = 1), the average effect lies in [{at_one.lower:.3g}, {at_one.upper:.3g}]; "
        + bd_text
    )
    # the bounds rest on the event study's cluster-robust covariance, whatever the main inference
    return _check(name, theta, at_one.lower, at_one.upper, ok, desc,
                  HonestDiD(bd, "cluster", Table(pd.DataFrame([iv.to_dict() for iv in rm])),
                            Table(pd.DataFrame([iv.to_dict() for iv in sd])),
                            n_pre, n_post))  # fmt: skip


# ----------------------------------------------------------------------------- dispatcher
CHECKS = {
    "placebo_in_time": placebo_in_time,
    "placebo_in_space": placebo_in_space,
    "leave_one_out": leave_one_out,
    "honest_did": honest_did,
}


def robustness_checks(
    names: Sequence[str],
    panel: Panel,
    outcome: str,
    entry: EstimatorEntry,
    options: EstimatorOptions,
    rng: np.random.Generator,
    main: EffectResult,
    *,
    progress: Callable[[str], None] | None = None,
    label: str | None = None,
) -> tuple[RobustnessCheck, ...]:
    """Run the checks listed in ``design.robustness`` (in that order), flattened.

    ``progress``, if given, is called with ``"Robustness check <name> (<label>)"`` as each check
    starts and the same message ending in ``" finished."`` when it is done (``label``: the
    outcome's display name, default ``outcome``); the checks themselves are unchanged.
    """
    for nm in names:
        if nm != "alternative_estimators" and nm not in CHECKS:
            raise PilotlabError(
                f"design.robustness: '{nm}' is not a known check; allowed: "
                f"{', '.join([*CHECKS, 'alternative_estimators'])}."
            )
    out: list[RobustnessCheck] = []
    what = label or outcome
    with ThreadPoolExecutor(1) as beside:
        early: dict[str, Future[RobustnessCheck]] = {
            nm: beside.submit(CHECKS[nm], panel, outcome, entry, options, rng, main)
            for nm in dict.fromkeys(names)
            if _draws_nothing(nm, main) and len(names) > 1
        }
        for nm in names:
            if progress is not None:
                progress(f"Robustness check {nm} ({what})")
            if nm == "alternative_estimators":
                out.extend(
                    alternative_estimators(
                        panel, outcome, entry, options, rng, main, progress=progress
                    )
                )
            elif nm in early:
                out.append(early[nm].result())
            else:
                out.append(CHECKS[nm](panel, outcome, entry, options, rng, main))
            if progress is not None:
                progress(f"Robustness check {nm} ({what}) finished.")
    return tuple(out)


def _draws_nothing(name: str, main: EffectResult) -> bool:
    """Whether check ``name`` neither draws from the shared generator nor fits an estimator
    (honest_did on the main event study's own coefficients), so it can run beside the others."""
    return name == "honest_did" and bool(main.event_study) and main.linear is not None
