"""What the parallel-trends check could have detected, in words and in a table (Roth 2022).

The main page says, in plain English, how large a steady drift between pilot and comparison
units the check before the start would have caught, and how often it would have caught a drift
big enough to account for half of the estimated effect. The technical annex gives the numbers
for both forms of the pre-test: "any period before the start individually significant" (Roth's
formulation of common practice) and the joint Wald test.
"""

from __future__ import annotations

from pilotlab.report.format import fmt_num, fmt_pct, is_number
from pilotlab.report.model import Table
from pilotlab.report.text import with_units
from pilotlab.results import EffectResult

__all__ = ["describe"]


def describe(
    result: EffectResult, label: str, units_word: str, decimals: int, unit: str, table_id: str
) -> tuple[str, Table | None]:
    """The main page's sentence and the annex table of the pre-test's power (``""`` and
    ``None`` when the result has no power record)."""
    pt = result.pre_trend
    power = pt.power if pt is not None else None
    if power is None:
        return "", None
    d = decimals + 1
    s80 = power.slope_80_wald
    s50 = power.slope_50_wald
    if not (is_number(s80) and is_number(s50)):
        return "", None
    text = (
        f"How much that check could see: a steady drift between pilot and comparison "
        f"{units_word} of {with_units(s80, d, unit)} per period would have been flagged 80% of "
        f"the time, and one of {with_units(s50, d, unit)} per period half the time."
    )
    half, p_half = power.half_effect_slope, power.power_half_effect_wald
    if is_number(half) and is_number(p_half):
        text += (
            f" A drift large enough to produce half of the estimated effect "
            f"({with_units(half, d, unit)} per period) would have been caught "
            f"{fmt_pct(p_half, 0)} of the time"
        )
        text += ", so passing the check is weak reassurance here." if p_half < 0.5 else "."
    rows = []
    for name, p50, p80, ph in (
        (
            "Joint Wald test of all periods before the start",
            power.slope_50_wald,
            power.slope_80_wald,
            power.power_half_effect_wald,
        ),
        (
            "Any single period before the start significant (Roth 2022)",
            power.slope_50_nis,
            power.slope_80_nis,
            power.power_half_effect_nis,
        ),
    ):
        rows.append((name, fmt_num(p50, d), fmt_num(p80, d), fmt_pct(ph, 1)))
    ref = "F" if power.df_denom else "chi-squared"
    table = Table(
        table_id,
        f"{label}: power of the pre-trend test against a linear drift (Roth 2022)",
        (
            "Pre-test",
            "Drift per period detected 50% of the time",
            "Drift per period detected 80% of the time",
            "Power against half the estimated effect",
        ),
        tuple(rows),
        numeric=(False, True, True, True),
        note=(
            f"A linear violation of parallel trends: the pre-period estimates at event times "
            f"{', '.join(str(e) for e in power.event_times)} shift by the drift times their "
            f"distance from the reference period {power.reference}"
            + (
                " (by the drift itself for each one-period difference)"
                if "short" in power.violation
                else ""
            )
            + f". Exact normal probabilities from the estimates' covariance at the "
            f"{fmt_pct(1 - power.alpha, 0)} level: the joint Wald test by the non-central "
            f"{ref} distribution, the 'any period significant' test by the multivariate normal "
            "probability of its acceptance box. Half the estimated effect: the drift that, "
            "continued after the start, would bias the headline estimate by half of it."
        ),
    )
    return text, table
