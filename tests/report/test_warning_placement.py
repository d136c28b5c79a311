"""Where a warning lands in the report is decided by its code (never by scanning its words), and
each code lands where the jargon check of its message put it before codes existed."""

from __future__ import annotations

import dataclasses

import pytest

from pilotlab.exceptions import NOTICE_CODES, Notice, notice
from pilotlab.report import build
from pilotlab.report.text import find_jargon
from tests.support import report as ex

#: Each code's message as pilotlab words it, with typical values filled in (outcome columns are
#: snake_case, as in real data). Placement used to be ``bool(find_jargon(message))``.
MESSAGES: dict[str, str] = {
    "missing-outcome": "2 of 160 values of claimant_rate are missing (units E01; periods 2020Q1) "
    "and were left out of the estimates.",
    "no-pre-period-outcome": "Treated unit(s) 'E01' have no value of 'claimant_rate' before their "
    "start; estimators with unit effects learn nothing about them.",
    "unbalanced-panel": "The panel is unbalanced: 3 of 40 units are not observed in all 12 "
    "periods.",
    "period-gaps": "Some months between 2020-01 and 2021-12 have no data at all; event times "
    "count the periods that are present.",
    "registration-date": "registration.start_date: 2024-04-01 falls in 2024Q2, but the first "
    "treated period in the data is 2024Q1 (treatment.start); correct the date or the treatment "
    "start so that they agree; if the pilot started later than planned, give the actual start as "
    "registration.actual_start_date.",
    "few-clusters": "Only 40 clusters (1 treated): cluster-robust standard errors are unreliable "
    "with so few (treated) clusters and the interval is likely too narrow; use wild_bootstrap or "
    "permutation inference.",
    "iid-errors": "Standard errors assume independent observations (iid); outcomes of the same "
    "area are usually correlated over time, so the interval is likely too narrow.",
    "staggered-twfe": "Treated units start at different times: the two-way fixed-effects estimate "
    "mixes in comparisons of later- with earlier-treated units and is biased when effects change "
    "over time; prefer callaway_santanna.",
    "staggered-event-study": "Treated units start at different times: event-study coefficients "
    "from a two-way fixed-effects regression can be contaminated by effects at other event times; "
    "prefer callaway_santanna.",
    "cs-cells-dropped": "ATT(g,t) could not be estimated for cells (cohort, period) (2020, 2021): "
    "no treated or no comparison units observed in both periods, or a singular covariate design; "
    "they are left out of every aggregation.",
    "cs-unbalanced-cells": "the panel is unbalanced: each ATT(g,t) uses the units observed in both "
    "its period and its base period.",
    "cs-no-pre-period": "2 unit(s) first treated in 2019 have no pre-treatment period "
    "(anticipation 0); they were dropped from the Callaway & Sant'Anna estimate.",
    "no-never-treated": "no never-treated units: the last cohort to be treated (2022) serves as "
    "the comparison group and periods from 2022 on are left out.",
    "single-unit-cohort": "the cohort first treated in 2021 has a single unit: its ATT(g,t) rest "
    "on one unit and their standard errors are unreliable.",
    "cs-pretest-unavailable": "the 75 pre-treatment ATT(g,t) cannot be tested jointly (their "
    "covariance is singular, or the effective number of clusters behind it is below twice the "
    "number of cells; 40 clusters), so the parallel-trends pre-test is not reported.",
    "jackknife-fallback": "The jackknife is undefined here (one comparison area carries all the "
    "weight), so placebo inference was used instead.",
    "poor-pre-fit": "The synthetic_control comparison fits the pilot area poorly before the start: "
    "the pre-period root mean squared gap is 12.3, 80% of the standard deviation of 'packs' "
    "(15.4). Check the donor pool (treatment.comparison / exclude) or prefer synthetic_did.",
    "covariates-ignored": "synthetic_did does not adjust for design.covariates (income): its "
    "comparison is built from pre-period outcomes; synthetic_control can match on them "
    "(design.synthetic.predictors).",
    "short-pre-period": "Only 3 pre-period(s) before the start: the synthetic_control weights rest "
    "on very little history.",
    "imputation-no-untreated-period": "2 treated unit(s) have no period before their start (less "
    "anticipation), so their counterfactual cannot be imputed; they were left out.",
    "imputation-no-comparison-period": "4 treated observation(s) fall in periods in which every "
    "unit is treated, so no comparison fixes their period effect; they were left out (add "
    "never-treated comparison units to estimate them).",
    "imputation-leave-out-single": "3 cohort-period cell(s) hold a single unit, where the "
    "leave-one-out average of design.options.leave_out is undefined; their residuals use the "
    "plain average.",
    "randomised-additive-adjustment": "An arm has too few units to fit its own line between "
    "the outcome and the values before the start, so one line serves every arm (the adjustment "
    "is not interacted with the arms).",
    "randomised-units-without-outcome": "2 allocated unit(s) have no outcome after the start and "
    "are left out of the comparison.",
    "permutation-no-interval": "the callaway_santanna estimator is not linear in the outcome, so "
    "the sharp-null interval was not computed; the p-value is valid.",
    "permutation-assignments-skipped": "3 of 120 possible assignments of treatment were left out "
    "of the randomisation test because the callaway_santanna estimate cannot be computed under "
    "them (first reason: no comparison units); the p-value compares the actual estimate with the "
    "117 assignments that can be estimated.",
    "wild-bootstrap-unbounded": "The wild-bootstrap interval is unbounded: the data cannot rule "
    "out arbitrarily large effects with so few clusters.",
    "romano-wolf-fallback": "Romano-Wolf needs the wild bootstrap of a regression estimator with "
    "the same clusters for every primary outcome; Holm's adjustment was used instead.",
    "bacon-weights-ignored": "the Goodman-Bacon decomposition is of the unweighted TWFE estimate; "
    "the weight column is ignored here.",
    "unregistered-deviation": "unregistered deviation from registered plan version 1: "
    "design.alpha. The report lists each change with its registered and analysed value. Register "
    'the change with `pilotlab amend pilot.yaml --reason "..."` (add --data-seen if outcome data '
    "had been seen), or restore the registered plan.",
}


def test_every_code_has_a_message_here() -> None:
    assert set(MESSAGES) == set(NOTICE_CODES) - {"uncoded"}


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_each_code_lands_where_the_jargon_check_put_its_message(code: str) -> None:
    assert NOTICE_CODES[code].technical == bool(find_jargon(MESSAGES[code])), find_jargon(
        MESSAGES[code]
    )


def test_the_examples_notices_are_placed_as_before() -> None:
    """Every notice the example evaluations really carry: code placement == text placement."""
    seen = 0
    for make in ex.EXAMPLES.values():
        ev = make()
        for w in (*ev.warnings, *(w for o in ev.outcomes for w in o.result.warnings)):
            assert w.technical == bool(find_jargon(w.message)), (w.code, w.message)
            seen += 1
    assert seen


def _main_and_annex(ev) -> tuple[str, str, str]:
    doc = build(ev)
    main = " ".join(str(b.to_dict()) for s in doc.main for b in s.blocks)
    notes = " ".join(str(b.to_dict()) for b in doc.section("annex-notes").blocks)
    lim = " ".join(str(b.to_dict()) for b in doc.section("limitations").blocks)
    return main, notes, lim


@pytest.fixture(scope="module")
def three():
    return ex.three_outcomes(with_checks=False)


def test_placement_follows_the_code_not_the_words(three) -> None:
    plain = notice("wild-bootstrap-unbounded", "Plain words about the interval.")
    # words the jargon check would pass, under a code marked technical: annex all the same
    tech = Notice("uncoded", "Equally plain words from somewhere else.", technical=True)
    outcomes = tuple(
        dataclasses.replace(o, result=dataclasses.replace(o.result, warnings=(plain, tech)))
        for o in three.outcomes
    )
    ev = dataclasses.replace(
        three,
        outcomes=outcomes,
        warnings=(notice("romano-wolf-fallback", "Plain design note."),),
    )
    main, notes, lim = _main_and_annex(ev)
    assert "Plain words about the interval." in main
    assert "Equally plain words from somewhere else." not in main
    assert "Equally plain words from somewhere else." in notes
    assert "Plain design note." in lim
    # the same code and message from three outcomes is one limitation; the technical one counted once
    assert lim.count("Plain words about the interval.") == 1
    assert "1 technical warning from the estimation is listed in the technical annex" in lim


def test_same_words_under_two_codes_are_two_notices(three) -> None:
    a = notice("unbalanced-panel", "Same words.")
    b = notice("period-gaps", "Same words.")
    ev = dataclasses.replace(three, warnings=(a, b, a))
    _, _, lim = _main_and_annex(ev)
    assert lim.count("Same words.") == 2
