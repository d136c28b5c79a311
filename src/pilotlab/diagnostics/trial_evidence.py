"""Level 5 of the evidence scale: a randomised pilot whose trial checks pass.

A pilot randomised by pilotlab (``assignment:``) reaches level 5 of the Maryland Scientific
Methods Scale only when every one of these criteria is met, each reported with its reason:

``random assignment``
    the analysed treatment is the allocation drawn at random from the pilot file's seed;
``allocation registered``
    that allocation was recorded in the registry (``pilotlab randomise``) and the one analysed
    is the one recorded (same hash);
``balance at baseline``
    among the analysed units, the largest absolute standardised difference of the pre-period
    outcomes and covariates is no larger than chance produces: at least :data:`MIN_BALANCE_P`
    of re-draws of the allocation (as the scheme draws) are as unbalanced or more;
``attrition``
    at most :data:`MAX_ATTRITION` of allocated units are not analysed, and the shares lost in
    two arms (or waves) differ by at most :data:`MAX_DIFFERENTIAL_ATTRITION`;
``contamination``
    what units received is recorded (``trial.received``) and at most :data:`MAX_CROSSOVER` of
    allocated units crossed over or did not receive their allocation. Not recorded counts as
    not met.

The implementation criteria of the rubric then lower the level by one each when not met:
enough clusters for the inference, an informative interval and missing data (the pre-trend
and robustness criteria of the non-randomised designs do not apply to a trial). When a trial
criterion fails, the pilot is scored as the comparison-group design it still is (levels 1-3),
and the description says which trial check failed.
"""

from __future__ import annotations

from pilotlab.results import Criterion, TrialSummary

__all__ = [
    "MAX_ATTRITION",
    "MAX_CROSSOVER",
    "MAX_DIFFERENTIAL_ATTRITION",
    "MIN_BALANCE_P",
    "TRIAL_CRITERIA",
    "TRIAL_DOWNGRADES",
    "trial_criteria",
    "trial_level",
]

MAX_ATTRITION = 0.20
MAX_DIFFERENTIAL_ATTRITION = 0.10
MAX_CROSSOVER = 0.05
MIN_BALANCE_P = 0.05

TRIAL_CRITERIA = (
    "random assignment",
    "allocation registered",
    "balance at baseline",
    "attrition",
    "contamination",
)
TRIAL_DOWNGRADES = ("enough clusters for the inference", "informative interval", "missing data")


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x == 0 or x >= 0.01 else "<1%"


def trial_criteria(trial: TrialSummary) -> list[Criterion]:
    """The five trial criteria, each met or not with its reason."""
    out = [
        Criterion(
            "random assignment",
            True,
            f"Units were allocated at random ({trial.scheme} scheme, seed {trial.seed}, "
            f"allocation fingerprint {trial.sha256[:12]}).",
        )
    ]
    reg = trial.registration
    if not reg.registered:
        out.append(
            Criterion(
                "allocation registered",
                False,
                "The allocation was not recorded in a registry before the pilot started "
                "(run pilotlab randomise before the start), so it cannot be shown that it was "
                "fixed in advance.",
            )
        )
    else:
        changed = (
            f"; changed {len(reg.changes)} time(s) since, each with its reason"
            if reg.changes
            else ""
        )
        out.append(
            Criterion(
                "allocation registered",
                bool(reg.matches),
                f"Recorded in the registry on {str(reg.recorded_at)[:10]} (version {reg.version}"
                f"{changed}); the allocation analysed is the one recorded.",
            )
        )
    worst = trial.max_abs_std_diff
    if trial.balance_p is None or worst is None:
        out.append(
            Criterion(
                "balance at baseline",
                None,
                "Balance could not be checked: no measure before the start for the analysed units.",
            )
        )
    else:
        ok = trial.balance_p >= MIN_BALANCE_P
        out.append(
            Criterion(
                "balance at baseline",
                ok,
                f"Largest standardised difference before the start {worst:.2f}; "
                f"{_pct(trial.balance_p)} of {trial.balance_draws:,} re-draws of the allocation "
                f"were as unbalanced or more (at least {_pct(MIN_BALANCE_P)} needed: "
                + (
                    "a gap chance explains)."
                    if ok
                    else "the groups differ more than chance explains)."
                ),
            )
        )
    ok_att = (
        trial.attrition <= MAX_ATTRITION
        and trial.differential_attrition <= MAX_DIFFERENTIAL_ATTRITION
    )
    out.append(
        Criterion(
            "attrition",
            ok_att,
            f"{_pct(trial.attrition)} of allocated units are not analysed (at most "
            f"{_pct(MAX_ATTRITION)}); the shares lost differ by "
            f"{100 * trial.differential_attrition:.0f} percentage points between groups (at most "
            f"{100 * MAX_DIFFERENTIAL_ATTRITION:.0f}).",
        )
    )
    if trial.received_column is None:
        out.append(
            Criterion(
                "contamination",
                None,
                "What units actually received is not recorded (add trial.received to the pilot "
                "file), so crossovers cannot be ruled out.",
            )
        )
    else:
        share = trial.crossover_share
        out.append(
            Criterion(
                "contamination",
                share <= MAX_CROSSOVER,
                f"{len(trial.crossovers)} of {trial.allocated} allocated units ({_pct(share)}) "
                f"did not get what they were allocated, by column {trial.received_column} (at "
                f"most {_pct(MAX_CROSSOVER)}).",
            )
        )
    return out


def trial_level(
    criteria: list[Criterion], fallback: tuple[int, int, list[str]]
) -> tuple[int, int, list[str], str | None]:
    """``(base level, level, criteria that lowered it, failed-trial note)``.

    ``fallback`` is the score of the same pilot as a non-randomised design, used when a trial
    criterion is not met.
    """
    met = {c.criterion: c.met for c in criteria}
    failed = [c for c in TRIAL_CRITERIA if met.get(c) is not True]
    if failed:
        base, level, lowered = fallback
        note = (
            f"Randomised, but not scored as a trial because {', '.join(failed)} "
            f"{'is' if len(failed) == 1 else 'are'} not met; scored as a comparison-group design."
        )
        return base, level, lowered, note
    lowered = [c for c in TRIAL_DOWNGRADES if met.get(c) is not True]
    return 5, max(1, 5 - len(lowered)), lowered, None
