"""Plain-English sentences generated from the results: headlines, design names, limitations.

Numbers come in already formatted (from :mod:`pilotlab.report.format`) so the sentence and the
table beside it always agree.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pilotlab.report.format import fmt_num, fmt_pct, is_number

__all__ = [
    "GLOSSARY",
    "INFERENCE_NAMES",
    "JARGON",
    "PLAIN_CHECK_NAMES",
    "ROBUSTNESS_NAMES",
    "article",
    "ci_phrase",
    "find_jargon",
    "headline_sentence",
    "plural",
    "plural_word",
    "with_units",
]

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


#: Robustness checks named for the main page (no method names; the annex names the methods).
PLAIN_CHECK_NAMES = {
    "placebo_in_time": "a pretend start date before the real one",
    "placebo_in_space": "comparison areas treated as if they were pilots",
    "leave_one_out": "dropping each pilot area in turn",
    "alternative_estimators": "other ways of estimating the effect",
    "honest_did": "allowing the trends to have drifted apart",
}

#: Technical terms kept off the main page: each is used only in the technical annex, where the
#: glossary (:data:`GLOSSARY`) explains it. Matched case-sensitively as whole words.
JARGON: tuple[str, ...] = (
    "Mbar",
    "FLCI",
    "C-LF",
    "ATT(g,t)",
    "ATT",
    "honest did",
    "honest_did",
    "HonestDiD",
    "TWFE",
    "RMSPE",
    "Goodman-Bacon",
    "Wald",
    "χ²",
    "HC1",
    "CR1",
    "Rademacher",
    "leads",
)
_IDENTIFIER = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


def find_jargon(text: str) -> list[str]:
    """The technical terms of :data:`JARGON` (and raw ``snake_case`` names) found in ``text``."""
    found = []
    for term in JARGON:
        pat = re.escape(term)
        if re.search(rf"(?<![\w-]){pat}(?![\w-])", text):
            found.append(term)
    found += sorted(set(_IDENTIFIER.findall(text)))
    return found


#: The annex glossary: (term, plain explanation). Each term of the annex is explained here.
GLOSSARY: tuple[tuple[str, str], ...] = (
    (
        "Pre-trend power (Roth 2022)",
        "How likely the check of the periods before the start was to flag a steady (linear) "
        "drift between pilot and comparison units of a given size; a check that passes is "
        "reassuring only if it would have caught a drift large enough to matter.",
    ),
    (
        "ATT and ATT(g,t)",
        "Average effect of the pilot on the pilot areas (average treatment effect on the "
        "treated); ATT(g,t) is that effect for the areas that started in period g, measured "
        "in period t.",
    ),
    (
        "Event study, event time",
        "The effect estimated separately for each period before and after the start; event "
        "time 0 is the first period of the pilot, −1 the period before.",
    ),
    (
        "Reference period",
        "The period whose difference is set to zero so that the others are measured against "
        "it (usually −1, the last period before the start).",
    ),
    (
        "Confidence interval (CI)",
        "The range of effects consistent with the data at the stated level; it is only as "
        "valid as the inference method behind it.",
    ),
    (
        "Cluster-robust standard errors (CR1)",
        "Standard errors that allow outcomes within an area to be correlated over time; they "
        "need many treated areas and are too narrow with few.",
    ),
    (
        "HC1, iid",
        "Standard errors that ignore correlation within an area over time (HC1 allows unequal "
        "variances, iid does not).",
    ),
    (
        "Wild cluster bootstrap",
        "Re-samples the residuals of whole areas with random signs (Rademacher weights) to get "
        "p-values and intervals that work with few treated areas.",
    ),
    (
        "Permutation (randomisation) inference",
        "Compares the pilot's estimate with the estimates obtained by pretending other areas "
        "(or other start dates) had the pilot; the p-value is the share at least as large.",
    ),
    (
        "Pre-trend test (F, Wald, χ², randomisation; leads)",
        "A joint test that the effects estimated for the periods before the start (the leads) "
        "are all zero, as they should be if pilot and comparison moved together. F and χ² "
        "are two forms of the Wald test; the randomisation form uses permutations.",
    ),
    (
        "Two-way fixed effects (TWFE)",
        "A regression with an effect for each area and each period; with a staggered start it "
        "can be biased when effects change over time.",
    ),
    (
        "Goodman-Bacon decomposition",
        "Splits a two-way fixed-effects estimate into the simple comparisons it averages, to "
        "show how much weight falls on comparisons with already-treated areas.",
    ),
    (
        "Synthetic control, donors, RMSPE",
        "A weighted average of comparison areas (the donors) built to track the pilot area "
        "before the start; the root mean squared prediction error (RMSPE) measures how closely "
        "it tracked.",
    ),
    (
        "HonestDiD, M, Mbar",
        "Sensitivity analysis (Rambachan & Roth) asking how far trends could have drifted apart "
        "after the start before the finding changes: Mbar bounds that drift relative to the "
        "largest drift seen before the start; M bounds how much the trend may bend per period.",
    ),
    (
        "FLCI, C-LF",
        "The two kinds of interval used in that sensitivity analysis: fixed-length confidence "
        "intervals (FLCI) and conditional least-favourable hybrid intervals (C-LF).",
    ),
    (
        "Placebo in space, placebo in time",
        "Re-running the analysis on comparison areas as if they were pilots, or with a pretend "
        "start before the real one; large placebo effects undermine the finding.",
    ),
    (
        "Minimum detectable effect (MDE)",
        "The smallest true effect the design would detect with the stated probability (power).",
    ),
)


def article(number_text: str) -> str:
    """ "a" or "an" before a number as it is spoken: an 8%, an 11.2%, an 18.6%, a 1.0%, a 12%."""
    digits = re.sub(r"[^0-9.]", "", number_text).split(".")[0]
    if not digits:
        return "a"
    if digits.startswith("8"):
        return "an"
    # eleven, eighteen (and eleven/eighteen thousand, million ...)
    if len(digits) % 3 == 2 and digits[:2] in ("11", "18"):
        return "an"
    return "a"


#: Outcome units that mean a share between 0 and 1 (effects also shown in percentage points).
PROPORTION_UNITS = frozenset({"proportion", "share", "fraction", "proportion (0-1)", "rate (0-1)"})


def with_units(x: float, decimals: int, units: str) -> str:
    """A size with its units: "0.30 percentage points"; a share also in percentage points."""
    text = fmt_num(x, decimals)
    if units.strip().lower() in PROPORTION_UNITS:
        pp = fmt_num(100 * float(x), max(0, decimals - 2)) if is_number(x) else text
        return f"{text} ({pp} percentage {'point' if pp == '1' else 'points'})"
    return f"{text} {units}" if units else text


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
    share = units.strip().lower() in PROPORTION_UNITS
    if share and is_number(estimate):
        # a share of 0.015 is clearer as 1.5 percentage points than as "0.015 proportion"
        pp = fmt_num(100 * abs(estimate), max(0, decimals - 2))
        unit_txt = f" ({pp} percentage {'point' if pp == '1' else 'points'})"
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
            pct = fmt_pct(abs(relative))
            body += f": {article(pct)} {pct} {noun}"
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
