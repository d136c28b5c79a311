"""How strong is the evidence? The Maryland Scientific Methods Scale, scored as the What Works
Centre for Local Economic Growth does, made explicit and testable.

The What Works Growth scoring guide (2016) places an evaluation on five levels:

1. cross-section or before-and-after without a comparison group, no controls;
2. either of those with adequate controls (no untreated comparison over time);
3. before and after in the treated group against a comparison group (difference in
   differences), with evidence that the comparison group is comparable;
4. quasi-random variation in treatment (instrument, discontinuity), shown to be credible;
5. explicit random assignment (a randomised controlled trial).

**pilotlab rubric v2** turns that guide into criteria the engine can check, each reported as met,
not met, or not assessed, with the reason:

``comparison group``
    untreated comparison units are observed over the same periods (level 2 needs it).
``before and after data``
    at least :data:`MIN_PRE_PERIODS` periods before the start, so trends can be compared.
``parallel pre-trends``
    every primary outcome's pre-trend test does not reject at the plan's alpha;
``power of the pre-trend test``
    that test could detect a violation that matters: a linear pre-trend which, carried on past
    the start, would by itself produce the smaller of the estimated effect or the smallest effect
    that matters (``mde``). Power is computed from the pre-period estimates and standard errors
    (non-central chi-square, estimates treated as independent), and must reach
    :data:`MIN_PRETEST_POWER` (after Roth 2022: a test that cannot see a relevant trend is not
    evidence of parallel trends).
``pre-period fit`` (synthetic designs only; house rule, see below)
``enough clusters for the inference``
    cluster-robust inference with at least :data:`MIN_TREATED_CLUSTERS` treated and
    :data:`MIN_CLUSTERS` clusters, or an inference built for few clusters (wild bootstrap,
    permutation, placebo, jackknife, or cluster-robust errors that the estimator's capabilities
    declare small-sample corrected: ``Capabilities.small_sample_cluster``, CR2 with
    Bell-McCaffrey degrees of freedom).
``informative interval``
    every primary outcome's confidence interval is bounded (an unbounded interval, as test
    inversion gives when the data cannot bound the effect, says nothing about its size).
``robustness checks agree``
    every check of :data:`SCORED_CHECKS` (all the checks pilotlab offers) was run on every primary
    outcome and agrees with the main estimate. The set is fixed by the rubric, not by the plan: a
    check the plan leaves out, or that cannot be run on the design, counts as not met.
``missing data``
    at most :data:`MAX_MISSING_SHARE` of the primary outcomes' values are missing.
``random or quasi-random assignment``
    never met by pilotlab's designs (areas are chosen by the programme), which is why the scale
    stops at level 3 here.

Level (:func:`score_level`): 1 without a comparison group; 2 with one; 3 when, in addition,
comparability is shown (before-and-after data, parallel pre-trends and a powered test; or, for
synthetic designs, good pre-period fit). Each of "enough clusters", "informative interval",
"robustness checks agree" and "missing data" not met then lowers the level by one (the guide's
downgrading for weak implementation), not below 1.

A criterion not assessed counts exactly as one not met, so the level is monotone: meeting one more
criterion never lowers it, and leaving something unchecked (no robustness checks, no pre-trend
test, no interval) never scores higher than checking it, whatever the check finds. The
description names, in plain words, what kept the design at level 2 and what lowered the level.

House rule for synthetic designs (``synthetic_control``, ``synthetic_did``): the comparison is
built to match the treated area before the start, so a pre-trend test says little. Comparability is
instead shown by the pre-period fit: at least :data:`MIN_PRE_PERIODS_SYNTHETIC` pre-periods and a
pre-period root mean squared prediction error (RMSPE, ``SyntheticTables.pre_rmspe`` or computed
from ``SyntheticTables.paths``) no larger than :data:`MAX_RMSPE_TO_EFFECT` times the absolute
estimated effect. A synthetic design meeting it scores like a difference in differences with
parallel, powered pre-trends (level 3), otherwise level 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pilotlab import catalogue
from pilotlab.distributions import chi2_ppf, ncx2_sf
from pilotlab.results import Criterion, Evaluation, EvidenceStrength, SyntheticTables

__all__ = [
    "COMPARABILITY",
    "COMPARABILITY_SYNTHETIC",
    "DOWNGRADES",
    "FEW_CLUSTER_METHODS",
    "LEVEL_DESCRIPTIONS",
    "MAX_MISSING_SHARE",
    "MAX_RMSPE_TO_EFFECT",
    "MIN_CLUSTERS",
    "MIN_PRETEST_POWER",
    "MIN_PRE_PERIODS",
    "MIN_PRE_PERIODS_SYNTHETIC",
    "MIN_TREATED_CLUSTERS",
    "RUBRIC",
    "RUBRIC_VERSION",
    "SCORED_CHECKS",
    "evidence_strength",
    "pretest_power",
    "score_level",
    "synthetic_pre_rmspe",
]

RUBRIC_VERSION = "2"
RUBRIC = "Maryland SMS, What Works Growth scoring guide (2016), pilotlab rubric v" + RUBRIC_VERSION
MIN_PRE_PERIODS = 3
MIN_PRE_PERIODS_SYNTHETIC = 5
MIN_PRETEST_POWER = 0.8
MIN_TREATED_CLUSTERS = 10
MIN_CLUSTERS = 30
MAX_MISSING_SHARE = 0.10
MAX_RMSPE_TO_EFFECT = 0.5
FEW_CLUSTER_METHODS = frozenset({"wild_bootstrap", "permutation", "placebo", "jackknife"})

LEVEL_DESCRIPTIONS = {
    1: "Level 1: no comparison group over time; the estimate may reflect anything else "
    "that changed.",
    2: "Level 2: a comparison group, but its comparability with the pilot areas is not "
    "shown (or the analysis has weaknesses that lower the score).",
    3: "Level 3: a before-and-after comparison with a comparison group shown to be "
    "comparable (the strongest level a non-randomised design can reach).",
    4: "Level 4: quasi-random assignment to the pilot.",
    5: "Level 5: random assignment to the pilot.",
}


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(float(x))


def pretest_power(
    event_times: Sequence[int],
    std_errors: Sequence[float],
    violation: float,
    alpha: float = 0.05,
    post_event_times: Sequence[int] = (0,),
) -> float:
    """Power of the joint pre-trend Wald test against a linear violation of parallel trends.

    The violation is a straight-line difference in trends, zero at event time -1, whose mean over
    the post-period event times equals ``violation``: the trend alone would then produce an
    "effect" of that size. With pre-period estimates treated as independent with the given
    standard errors, the Wald statistic is non-central chi-square with ``k`` degrees of freedom
    and non-centrality ``sum((slope * (e + 1) / se)^2)``.

    Parameters
    ----------
    event_times, std_errors
        Pre-period event times (negative, reference period excluded) and standard errors.
    violation
        Size of the post-period bias the test should detect (outcome units, sign ignored).
    alpha
        Level of the test.
    post_event_times
        Event times of the post-period (to place the violation).

    Returns
    -------
    float
        Probability that the test rejects; NaN if it cannot be computed.
    """
    e = np.asarray(event_times, dtype=float)
    se = np.asarray(std_errors, dtype=float)
    ok = np.isfinite(se) & (se > 0) & (e < -1)
    if not ok.any() or not _finite(violation) or violation == 0:
        return math.nan
    post_mean = float(np.mean(np.asarray(post_event_times, dtype=float) + 1.0)) or 1.0
    slope = abs(float(violation)) / post_mean
    lam = float(np.sum((slope * (e[ok] + 1.0) / se[ok]) ** 2))
    k = int(ok.sum())
    crit = chi2_ppf(1 - alpha, k)
    return float(ncx2_sf(crit, k, lam))


def synthetic_pre_rmspe(tables: SyntheticTables | None, n_pre: int) -> float:
    """Pre-period RMSPE of a synthetic design from its tables (NaN if not available).

    Reads ``pre_rmspe`` or, failing that, the first ``n_pre`` rows of ``paths`` (columns
    ``treated`` and ``synthetic``).
    """
    if tables is None:
        return math.nan
    if _finite(tables.pre_rmspe):
        return float(tables.pre_rmspe)
    path = tables.paths
    if path is None or not {"treated", "synthetic"} <= set(path.columns):
        return math.nan
    treated = np.asarray(path.column("treated"), dtype=np.float64)[:n_pre]
    synth = np.asarray(path.column("synthetic"), dtype=np.float64)[:n_pre]
    if treated.size == 0:
        return math.nan
    return float(np.sqrt(np.nanmean((treated - synth) ** 2)))


def _criterion(name: str, met: bool | None, reason: str) -> Criterion:
    return Criterion(name, met, reason)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _num(x: float) -> str:
    return f"{x:.3g}"


#: Criteria that show the comparison group is comparable (level 3), by design family.
COMPARABILITY = ("before and after data", "parallel pre-trends", "power of the pre-trend test")
COMPARABILITY_SYNTHETIC = ("before and after data", "pre-period fit")
#: Criteria of the analysis' implementation: each one not met lowers the level by one.
DOWNGRADES = (
    "enough clusters for the inference",
    "informative interval",
    "robustness checks agree",
    "missing data",
)
#: The robustness checks the rubric scores: every check pilotlab offers, whatever the plan lists.
SCORED_CHECKS = (
    "placebo_in_time",
    "placebo_in_space",
    "leave_one_out",
    "alternative_estimators",
    "honest_did",
)


def score_level(
    met: Mapping[str, bool | None], *, synthetic: bool = False
) -> tuple[int, int, list[str]]:
    """The level from the criteria: ``(base level, level, criteria that lowered it)``.

    A criterion counts only when it is met (``True``); not met (``False``) and not assessed
    (``None`` or absent) count the same, so leaving something unchecked never scores higher than
    checking it, whatever the check finds. The level is 1 without a comparison group, 3 when every
    comparability criterion is met, 2 otherwise; each implementation criterion
    (:data:`DOWNGRADES`) not met then lowers it by one, not below 1. The level is monotone:
    turning any criterion from not met to met never lowers it.
    """

    def ok(name: str) -> bool:
        return met.get(name) is True

    if not ok("comparison group"):
        base = 1
    elif all(ok(c) for c in (COMPARABILITY_SYNTHETIC if synthetic else COMPARABILITY)):
        base = 3
    else:
        base = 2
    lowered = [c for c in DOWNGRADES if not ok(c)] if base > 1 else []
    return base, max(1, base - len(lowered)), lowered


def _interval_criterion(primary: Sequence[Any], alpha: float) -> Criterion:
    """Every primary outcome has a bounded confidence interval (an unbounded one says nothing)."""
    level = f"{100 * (1 - float(alpha)):g}%"
    flags: list[bool | None] = []
    reasons = []
    for o in primary:
        r = o.result
        lo, hi = r.ci_lower, r.ci_upper
        if (
            lo is None
            or hi is None
            or (isinstance(lo, float) and math.isnan(lo))
            or (isinstance(hi, float) and math.isnan(hi))
        ):
            flags.append(None)
            reasons.append(f"{o.label}: no {level} confidence interval could be computed.")
        elif _finite(lo) and _finite(hi):
            flags.append(True)
            reasons.append(f"{o.label}: the {level} confidence interval is bounded.")
        else:
            flags.append(False)
            side = (
                "no limit on either side"
                if not _finite(lo) and not _finite(hi)
                else ("no lower limit" if not _finite(lo) else "no upper limit")
            )
            reasons.append(
                f"{o.label}: the {level} confidence interval has {side}, so the data cannot say "
                "how large the effect is."
            )
    met = None if any(f is None for f in flags) else all(bool(f) for f in flags)
    if any(f is False for f in flags):
        met = False
    return _criterion("informative interval", met, " ".join(reasons))


def _robustness_criterion(primary: Sequence[Any]) -> tuple[Criterion, str]:
    """Every check of :data:`SCORED_CHECKS` was run on every primary outcome and agrees.

    A check the plan does not list, or that could not be run on the design, counts as not met:
    leaving a check out can never score higher than running it and seeing it disagree. Returns
    the criterion and, in plain words, why it is not met (empty when met).
    """
    disagree: list[str] = []
    not_run: list[str] = []
    not_possible: list[str] = []
    agree = 0
    for o in primary:
        families: dict[str, list[bool | None]] = {}
        for c in o.robustness:
            families.setdefault(str(c.check).split(":")[0], []).append(c.consistent)
        for name in SCORED_CHECKS:
            found = families.get(name)
            where = f"{name} ({o.label})" if len(primary) > 1 else name
            if not found:
                not_run.append(where)
            elif any(v is False for v in found):
                disagree.append(where)
            elif any(v is None for v in found):
                not_possible.append(where)
            else:
                agree += 1
    total = len(SCORED_CHECKS) * len(primary)
    if agree == total:
        return _criterion(
            "robustness checks agree",
            True,
            f"All {total} robustness checks scored by the rubric were run and agree with the "
            "main estimate.",
        ), ""
    if agree == 0 and len(not_run) == total:
        return _criterion(
            "robustness checks agree",
            None,
            "No robustness checks were run (the plan lists none); a check not run counts as "
            f"not met. The rubric expects {_words(list(SCORED_CHECKS))}.",
        ), "no robustness checks were run"
    parts = []
    if disagree:
        parts.append(f"{_words(disagree)} {'disagrees' if len(disagree) == 1 else 'disagree'} "
                     "with the main estimate")  # fmt: skip
    if not_possible:
        parts.append(f"{_words(not_possible)} could not be run on this design")
    if not_run:
        parts.append(f"{_words(not_run)} {'was' if len(not_run) == 1 else 'were'} not run")
    why = "; ".join(parts)
    if not_run or not_possible:
        why += " (a check not run counts as not met)"
    # the description names each check once (the criterion's reason gives the outcomes)
    short = []
    for names, verb in (
        (disagree, ("disagrees", "disagree", "with the main estimate")),
        (not_possible, ("could not be run", "could not be run", "on this design")),
        (not_run, ("was not run", "were not run", "")),
    ):
        unique = list(dict.fromkeys(n.split(" (")[0] for n in names))
        if unique:
            v = verb[0] if len(unique) == 1 else verb[1]
            short.append(f"{_words(unique)} {v} {verb[2]}".rstrip())
    n_names = len({n.split(" (")[0] for n in disagree + not_possible + not_run})
    check = "the robustness check" if n_names == 1 else "the robustness checks"
    return (
        _criterion(
            "robustness checks agree", False, f"{agree} of {total} scored checks agree; {why}."
        ),
        f"{check} {_words(short) if len(short) < 3 else ', '.join(short[:-1]) + ', and ' + short[-1]}",
    )


def _words(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


#: Plain words for "the level was lowered because ..." (by criterion).
_LOWERED_BECAUSE = {
    "enough clusters for the inference": "there are too few clusters for the inference used",
    "informative interval": "the confidence interval is unbounded or missing",
    "robustness checks agree": "not every robustness check was run and agrees",
    "missing data": "too many primary outcome values are missing",
}


def _describe(
    base: int,
    level: int,
    lowered: Sequence[str],
    criteria: Sequence[Criterion],
    synthetic: bool,
    because_of: Mapping[str, str],
) -> str:
    """The level in one plain sentence, naming what kept it at level 2 and what lowered it."""
    met = {c.criterion: c.met for c in criteria}
    if base == 2:
        needed = COMPARABILITY_SYNTHETIC if synthetic else COMPARABILITY
        missing = _words([c for c in needed if met.get(c) is not True])
        if not lowered:
            return (
                "Level 2: a comparison group, but its comparability with the pilot areas is not "
                f"shown ({missing} not met)."
            )
        why_base = f"a level-2 design (comparability not shown: {missing} not met)"
    elif not lowered:
        return LEVEL_DESCRIPTIONS[level]
    else:
        why_base = f"a level-{base} design"
    because = " and ".join(because_of.get(c) or _LOWERED_BECAUSE[c] for c in lowered)
    steps = base - level
    by = f"lowered by {'one level' if steps == 1 else f'{steps} levels'}"
    if steps < len(lowered):
        by = f"lowered to level {level}"
    return f"Level {level}: {why_base}, {by} because {because} (see the criteria)."


def evidence_strength(evaluation: Evaluation) -> EvidenceStrength:
    """Score an evaluation on the Maryland Scientific Methods Scale (pilotlab rubric v2).

    Parameters
    ----------
    evaluation : pilotlab.results.Evaluation
        The evaluation (its data summary, design choices and primary outcomes are read).

    Returns
    -------
    pilotlab.results.EvidenceStrength
        The ``rubric``, ``rubric_version``, ``level``, ``base_level`` (before the downgrades),
        ``max_level``, ``description``, ``downgraded_for`` (criteria that lowered the level),
        ``criteria`` (:class:`~pilotlab.results.Criterion`: ``criterion``, ``met``, ``reason``)
        and ``house_rule`` when the synthetic-design rule applied; ``to_dict()`` gives the
        evidence record's ``evidence_strength`` block.
    """
    data = evaluation.data
    primary = [o for o in evaluation.outcomes if o.primary] or list(evaluation.outcomes[:1])
    estimator = evaluation.estimator.name
    inference = evaluation.inference.name
    alpha = float(evaluation.alpha)
    entry = catalogue.entries().get(estimator)
    synthetic = entry is not None and entry.capabilities.synthetic
    criteria: list[Criterion] = []

    n_comp = data.flow().comparison
    has_comparison = n_comp > 0
    criteria.append(
        _criterion(
            "comparison group",
            has_comparison,
            f"{n_comp} comparison units are observed over the same {data.periods} periods as the "
            f"{data.treated_units} pilot units."
            if has_comparison
            else "No untreated comparison units: only a before-and-after comparison is possible.",
        )
    )
    n_pre = int(data.pre_periods)
    need_pre = MIN_PRE_PERIODS_SYNTHETIC if synthetic else MIN_PRE_PERIODS
    pre_ok = n_pre >= need_pre
    criteria.append(
        _criterion(
            "before and after data",
            pre_ok,
            f"{n_pre} periods before the start (at least {need_pre} are needed to compare trends).",
        )
    )

    house_rule = None
    if synthetic:
        house_rule = (
            "Synthetic designs: comparability is shown by the pre-period fit (RMSPE at most "
            f"{MAX_RMSPE_TO_EFFECT:g} times the absolute effect, at least "
            f"{MIN_PRE_PERIODS_SYNTHETIC} pre-periods) instead of a pre-trend test."
        )
        fits: list[bool | None] = []
        reasons = []
        for o in primary:
            rmspe = synthetic_pre_rmspe(o.result.synthetic, n_pre)
            eff = abs(o.result.estimate) if _finite(o.result.estimate) else math.nan
            if not _finite(rmspe) or not _finite(eff):
                fits.append(None)
                reasons.append(f"{o.label}: the pre-period fit is not available.")
                continue
            ok = rmspe <= MAX_RMSPE_TO_EFFECT * eff
            fits.append(ok)
            reasons.append(
                f"{o.label}: pre-period RMSPE {_num(rmspe)} is "
                f"{'within' if ok else 'more than'} {MAX_RMSPE_TO_EFFECT:g} x the effect "
                f"({_num(eff)})."
            )
        fit_all = None if any(f is None for f in fits) else all(bool(f) for f in fits)
        criteria.append(_criterion("pre-period fit", fit_all, " ".join(reasons)))
    else:
        trend_ok: list[bool | None] = []
        power_ok: list[bool | None] = []
        t_reasons, p_reasons = [], []
        for o in primary:
            r = o.result
            pt = r.pre_trend
            if pt is None or not _finite(pt.p_value):
                trend_ok.append(None)
                t_reasons.append(f"{o.label}: no pre-trend test was possible.")
                power_ok.append(None)
                p_reasons.append(f"{o.label}: no pre-trend test, so no power.")
                continue
            passed = pt.p_value >= alpha
            trend_ok.append(passed)
            t_reasons.append(
                f"{o.label}: the joint test of the {pt.df} pre-period estimates gives "
                f"p {_p(pt.p_value)} ({'no evidence against' if passed else 'evidence against'} "
                "parallel trends)."
            )
            pre = [e for e in r.event_study if e.event_time < 0 and not e.reference]
            post = [e.event_time for e in r.event_study if e.event_time >= 0] or [0]
            target_vals = [abs(r.estimate)] if _finite(r.estimate) and r.estimate != 0 else []
            if o.mde:
                target_vals.append(float(o.mde))
            if not target_vals and _finite(r.ci_upper) and _finite(r.ci_lower):
                target_vals.append((r.ci_upper - r.ci_lower) / 2)
            target = min(target_vals) if target_vals else math.nan
            power = pretest_power(
                [e.event_time for e in pre], [e.std_error for e in pre], target, alpha, post
            )
            if not _finite(power):
                power_ok.append(None)
                p_reasons.append(f"{o.label}: the power of the pre-trend test cannot be computed.")
                continue
            power_ok.append(power >= MIN_PRETEST_POWER)
            p_reasons.append(
                f"{o.label}: the test would detect a linear pre-trend that alone produces an "
                f"effect of {_num(target)} with probability {_pct(power)} "
                f"(at least {_pct(MIN_PRETEST_POWER)} needed)."
            )

        def _all(xs: list[bool | None]) -> bool | None:
            if any(x is False for x in xs):
                return False
            return None if any(x is None for x in xs) else True

        t_all, p_all = _all(trend_ok), _all(power_ok)
        criteria.append(_criterion("parallel pre-trends", t_all, " ".join(t_reasons)))
        criteria.append(_criterion("power of the pre-trend test", p_all, " ".join(p_reasons)))

    g, gt = int(data.clusters), int(data.treated_clusters)
    corrected = (
        inference == "cluster" and entry is not None and entry.capabilities.small_sample_cluster
    )
    if inference in FEW_CLUSTER_METHODS:
        enough = True
        why = f"{inference} inference is designed for few clusters ({g} clusters, {gt} treated)."
    elif corrected:
        enough = True
        why = (
            f"cluster inference with {g} clusters ({gt} treated); its standard errors and "
            "intervals are corrected for small samples, so they stay honest with few clusters."
        )
    else:
        enough = gt >= MIN_TREATED_CLUSTERS and g >= MIN_CLUSTERS
        why = (
            f"{inference} inference with {g} clusters ({gt} treated); cluster-robust "
            f"inference needs at least {MIN_TREATED_CLUSTERS} treated and {MIN_CLUSTERS} "
            "clusters in all."
        )
    criteria.append(_criterion("enough clusters for the inference", enough, why))
    criteria.append(_interval_criterion(primary, evaluation.alpha))
    rob, rob_words = _robustness_criterion(primary)
    criteria.append(rob)

    cols = {o.column for o in primary}
    miss = [m for m in data.missing if m.outcome in cols]
    n_miss = sum(m.n_missing for m in miss)
    n_tot = sum(m.n_total for m in miss)
    share = n_miss / n_tot if n_tot else 0.0
    miss_ok = share <= MAX_MISSING_SHARE
    criteria.append(
        _criterion(
            "missing data",
            miss_ok,
            f"{_pct(share) if share >= 0.01 or share == 0 else '<1%'} of primary outcome values "
            f"are missing (at most {_pct(MAX_MISSING_SHARE)} allowed).",
        )
    )
    criteria.append(
        _criterion(
            "random or quasi-random assignment",
            False,
            "Pilot areas were chosen by the programme, not by chance or a sharp rule, so "
            "levels 4 and 5 are out of reach whatever the analysis.",
        )
    )

    met = {c.criterion: c.met for c in criteria}
    base, level, lowered = score_level(met, synthetic=synthetic)
    description = _describe(
        base, level, lowered, criteria, synthetic, {"robustness checks agree": rob_words}
    )
    max_level = 3
    if evaluation.trial is not None:  # a randomised pilot: level 5 when its trial checks pass
        from pilotlab.diagnostics.trial_evidence import trial_criteria, trial_level

        criteria = [c for c in criteria if c.criterion != "random or quasi-random assignment"]
        if evaluation.trial.stepped and len(evaluation.trial.flow) > 2:
            waves = sum(1 for f in evaluation.trial.flow[1:] if f.allocated)
            criteria = [
                Criterion(
                    "comparison group",
                    True,
                    f"A stepped roll-out in {waves} waves: at each period, the units whose wave "
                    "has not started yet are the comparison for those already treated.",
                )
                if c.criterion == "comparison group"
                else c
                for c in criteria
            ]
        criteria += trial_criteria(evaluation.trial)
        base, level, lowered, note = trial_level(criteria, (base, level, lowered))
        max_level = 5
        if note is not None:
            description = f"{note} {description}"
        elif lowered:
            because = " and ".join(_LOWERED_BECAUSE[c] for c in lowered)
            description = (
                f"Level {level}: a randomised trial whose balance, attrition and contamination "
                f"checks pass, lowered because {because} (see the criteria)."
            )
        else:
            description = (
                "Level 5: random assignment, recorded before the start, with balance, attrition "
                "and contamination checks passed."
            )
    return EvidenceStrength(
        rubric=RUBRIC,
        rubric_version=RUBRIC_VERSION,
        level=int(level),
        max_level=max_level,
        description=description,
        base_level=int(base),
        downgraded_for=tuple(lowered),
        criteria=tuple(criteria),
        house_rule=house_rule or None,
    )
