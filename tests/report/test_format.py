"""Number formatting: one formatter per kind of number, shared by text, tables and templates."""

from __future__ import annotations

import math

import pytest

from pilotlab.report.format import (
    FILTERS,
    MINUS,
    NA,
    decimals_for,
    decimals_for_scale,
    fmt_ci,
    fmt_int,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_sig,
    fmt_signed,
)
from pilotlab.report.text import ci_phrase, headline_sentence, plural_word


@pytest.mark.parametrize(
    ("x", "d", "expected"),
    [
        (0.4213, 2, "0.42"),
        (-0.4213, 2, f"{MINUS}0.42"),
        (-0.0004, 2, "0.00"),  # never "-0.00"
        (12345.678, 1, "12,345.7"),
        (math.nan, 2, NA),
        (None, 2, NA),
        (True, 2, NA),
    ],
)
def test_fmt_num(x: object, d: int, expected: str) -> None:
    assert fmt_num(x, d) == expected


def test_other_formatters() -> None:
    assert fmt_signed(0.5, 1) == "+0.5"
    assert fmt_signed(-0.5, 1) == f"{MINUS}0.5"
    assert fmt_signed(0.0, 1) == "0.0"
    assert fmt_int(12345.4) == "12,345"
    assert fmt_pct(-0.1024) == f"{MINUS}10.2%"
    assert fmt_pct(0.1024, signed=True) == "+10.2%"
    assert fmt_p(0.0004) == "<0.001"
    assert fmt_p(0.04567) == "0.046"
    assert fmt_ci(-0.66, -0.18, 2) == f"{MINUS}0.66 to {MINUS}0.18"
    assert set(FILTERS) == {"num", "signed", "count", "pct", "pvalue", "ci", "sig"}


@pytest.mark.parametrize(
    ("spread", "expected"), [(0.25, 2), (2.5, 1), (25.0, 0), (0.0025, 4), (None, 2), (0, 2)]
)
def test_decimals_show_the_uncertainty_to_two_significant_digits(
    spread: float | None, expected: int
) -> None:
    assert decimals_for(spread) == expected


def test_ci_phrase_in_the_direction_of_the_effect() -> None:
    assert ci_phrase(-0.4, -0.7, -0.2, 1, "95%") == "95% CI 0.2 to 0.7"
    assert ci_phrase(0.4, 0.2, 0.7, 1, "95%") == "95% CI 0.2 to 0.7"
    assert ci_phrase(-0.4, -0.9, 0.1, 1, "95%") == "95% CI from a fall of 0.9 to a rise of 0.1"


def _sentence(est: float, lo: float, hi: float, better: str, improved: bool | None) -> str:
    return headline_sentence(
        "Claimant rate",
        est,
        lo,
        hi,
        decimals=1,
        level="95%",
        units="points",
        better=better,
        improved=improved,
        relative=est / 4,
        baseline="4.0",
        n_treated=6,
        unit_word="area",
        comparison="comparison areas",
    )


def test_headline_sentence_reads_like_the_design_card() -> None:
    s = _sentence(-0.42, -0.66, -0.18, "lower", True)
    assert s.startswith("Claimant rate fell by 0.4 points (95% CI 0.2 to 0.7) in the 6 pilot areas")
    assert "Lower is better, so this is an improvement." in s
    assert "a 10.5% fall on the pre-pilot average of 4.0" in s
    worse = _sentence(0.42, 0.18, 0.66, "lower", False)
    assert "rose by 0.4 points (95% CI 0.2 to 0.7)" in worse and "worsening" in worse
    unclear = _sentence(-0.42, -0.9, 0.1, "lower", None)
    assert "cannot tell whether the pilot improved" in unclear
    assert "fell by 0.4 points (95% CI from a fall of 0.9 to a rise of 0.1)" in unclear


def test_plural_of_unit_names() -> None:
    assert plural_word("local authority") == "local authorities"
    assert plural_word("area") == "areas"
    assert plural_word("survey") == "surveys"


@pytest.mark.parametrize(
    ("typical", "se", "expected"),
    [
        (3.99, 0.12, 2),  # a rate in percent, SE 0.12 -> 0.51 (0.25 to 0.72)
        (0.27, 0.004, 4),  # a proportion: 0.0153, not "0.02"
        (0.27, 0.012, 3),
        (0.27, None, 3),  # no usable SE: the outcome's own scale
        (0.27, math.inf, 3),
        (11863.9, 1e-7, 0),  # a tiny SE on a large outcome: never "11,863.903252"
        (11863.9, math.nan, 0),
        (11863.9, 35.0, 0),
        (250.0, 2.5, 1),
        (71.86, 0.27, 2),
        (None, 0.27, 2),
        (None, None, 2),
        (0.0, 0.002, 4),  # a zero mean tells nothing: the SE decides
        (1e-5, 1e-7, 6),  # capped at 6 decimals
    ],
)
def test_decimals_for_scale(typical: float | None, se: float | None, expected: int) -> None:
    assert decimals_for_scale(typical, se) == expected


@pytest.mark.parametrize(
    ("x", "digits", "expected"),
    [
        (0.004217, 3, "0.00422"),
        (11863.903252, 3, "11,864"),
        (-0.5103, 3, f"{MINUS}0.510"),
        (0.0, 3, "0"),
        (math.inf, 3, NA),
        (1.0, 2, "1.0"),
    ],
)
def test_fmt_sig(x: float, digits: int, expected: str) -> None:
    assert fmt_sig(x, digits) == expected


def _outcome_with(estimate: float, lo: float, hi: float, se: float, base: float, units: str):
    import dataclasses

    from pilotlab.report import build
    from tests.support import report as ex

    ev = ex.common()
    o = ev.outcomes[0]
    r = dataclasses.replace(o.result, estimate=estimate, ci_lower=lo, ci_upper=hi, std_error=se)
    spec_o = ev.pilot.outcomes[0].model_copy(update={"units": units})
    pilot = ev.pilot.model_copy(update={"outcomes": [spec_o]})
    new = dataclasses.replace(
        ev, pilot=pilot, outcomes=(dataclasses.replace(o, result=r, baseline_mean=base),)
    )
    return build(new)


def test_a_proportion_outcome_is_not_rounded_away() -> None:
    doc = _outcome_with(-0.0153, -0.0251, -0.0055, 0.005, 0.27, "proportion")
    text = doc.section("headline").blocks[0].text
    assert "fell by 0.0153 (1.53 percentage points)" in text
    assert "0.02 proportion" not in text and "proportion" not in text


def test_an_unavailable_interval_does_not_print_six_decimals() -> None:
    doc = _outcome_with(-11863.903252, -math.inf, math.inf, 0.0, 52000.0, "dollars")
    text = doc.section("headline").blocks[0].text
    assert "fell by 11,864 dollars" in text and "CI not available" in text
    assert "11,863.9" not in text


def test_power_page_numbers_have_no_exponents() -> None:
    """The power page formats effects to significant digits like the report: never 1.19e+04."""
    from pilotlab.report.power import _environment

    num = _environment().filters["num"]
    assert num(11863.903) == "11,864"
    assert num(0.004217) == "0.00422"
    assert num(None) == num(float("inf")) == "–"
