"""Number formatting: one formatter per kind of number, shared by text, tables and templates."""

from __future__ import annotations

import math

import pytest

from pilotlab.report.format import (
    FILTERS,
    MINUS,
    NA,
    decimals_for,
    fmt_ci,
    fmt_int,
    fmt_num,
    fmt_p,
    fmt_pct,
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
