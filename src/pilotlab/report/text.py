"""Plain-English sentences generated from the results: headlines, design names, limitations.

Numbers come in already formatted (from :mod:`pilotlab.report.format`) so the sentence and the
table beside it always agree.
"""

from __future__ import annotations

import math
from typing import Any

from pilotlab.report.format import fmt_num, fmt_pct, is_number

__all__ = [
    "ESTIMATOR_NAMES",
    "INFERENCE_NAMES",
    "ROBUSTNESS_NAMES",
    "ci_phrase",
    "headline_sentence",
    "plural",
    "plural_word",
]

ESTIMATOR_NAMES = {
    "did": "difference in differences (before and after, pilot and comparison)",
    "twfe": "two-way fixed-effects difference in differences",
    "event_study": "event study (difference in differences period by period)",
    "callaway_santanna": "staggered difference in differences (Callaway & Sant'Anna)",
    "synthetic_control": "synthetic control",
    "synthetic_did": "synthetic difference in differences",
}
INFERENCE_NAMES = {
    "cluster": "cluster-robust standard errors",
    "wild_bootstrap": "wild cluster bootstrap",
    "permutation": "permutation (randomisation) inference",
    "placebo": "placebo inference",
    "jackknife": "jackknife standard errors",
    "robust": "heteroskedasticity-robust (HC1) standard errors",
    "iid": "classical (iid) standard errors",
}
ROBUSTNESS_NAMES = {
    "placebo_in_time": "Placebo in time (a pretend start before the real one)",
    "placebo_in_space": "Placebo in space (comparison areas treated as if pilots)",
    "leave_one_out": "Leave one out (dropping each pilot area in turn)",
    "alternative_estimators": "Alternative estimators",
    "honest_did": "Sensitivity to parallel-trend violations (HonestDiD)",
}


def plural_word(word: str) -> str:
    """English plural of a unit name: area -> areas, local authority -> local authorities."""
    if word.endswith("s"):
        return word
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def plural(n: int, word: str, words: str | None = None) -> str:
    """Count and noun: "1 area", "6 areas" (with thousands separators)."""
    return f"{n:,} {word if n == 1 else (words or plural_word(word))}"


def ci_phrase(estimate: float, lo: float, hi: float, decimals: int, level: str) -> str:
    """The interval in the words of the headline.

    When the estimate is a fall, the interval is given as sizes of the fall ("95% CI 0.2 to
    0.7"); when the interval includes no change it says so in words ("from a fall of 1.4 to a
    rise of 0.1").
    """
    if not (is_number(lo) and is_number(hi)):
        return f"{level} CI not available"
    if lo <= 0 <= hi:
        return (
            f"{level} CI from a fall of {fmt_num(abs(lo), decimals)} "
            f"to a rise of {fmt_num(hi, decimals)}"
        )
    if estimate < 0:
        return f"{level} CI {fmt_num(-hi, decimals)} to {fmt_num(-lo, decimals)}"
    return f"{level} CI {fmt_num(lo, decimals)} to {fmt_num(hi, decimals)}"


def headline_sentence(
    label: str,
    estimate: float,
    lo: float,
    hi: float,
    *,
    decimals: int,
    level: str,
    units: str,
    better: str,
    improved: bool | None,
    relative: float,
    baseline: str,
    n_treated: int,
    unit_word: str,
    comparison: str,
) -> str:
    """One sentence (two at most) a non-analyst can read, e.g.

    "Claimant count rate (%) fell by 0.42 percentage points (95% CI 0.17 to 0.67) in the 6 pilot
    areas, relative to comparison areas. Lower is better, so this is an improvement."
    """
    unit_txt = f" {units}" if units else ""
    cap = label[:1].upper() + label[1:]
    where = f"in the {plural(n_treated, 'pilot ' + unit_word)}"
    if not is_number(estimate):
        return f"The effect of the pilot on {label} could not be estimated."
    ci = ci_phrase(estimate, lo, hi, decimals, level)
    mag = fmt_num(abs(estimate), decimals)
    if mag == fmt_num(0, decimals):
        verb = "did not change measurably"
        body = f"{cap} {verb} {where} ({ci}), relative to {comparison}."
    else:
        verb = "fell" if estimate < 0 else "rose"
        body = f"{cap} {verb} by {mag}{unit_txt} ({ci}) {where}, relative to {comparison}"
        if is_number(relative) and not math.isinf(relative):
            noun = "rise" if verb == "rose" else "fall"
            body += f": a {fmt_pct(abs(relative))} {noun}"
            body += f" on the pre-pilot average of {baseline}"
        body += "."
    better_txt = "Lower" if better == "lower" else "Higher"
    if improved is True:
        verdict = f"{better_txt} is better, so this is an improvement."
    elif improved is False:
        verdict = f"{better_txt} is better, so this is a worsening."
    else:
        verdict = (
            "The interval includes no change, so the data cannot tell whether the pilot "
            f"improved this outcome ({better_txt.lower()} is better)."
        )
    return f"{body} {verdict}"


def join_words(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def as_text(value: Any) -> str:
    """A value as text for a table cell (None -> "none")."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt_num(value, 3)
    return str(value)
