"""Balance of randomised groups before the start: the chart and table that the allocation page
and the trial section of the report share.

A standardised difference is (mean of the group - mean of its comparison) / the measure's
standard deviation over the units compared; 0 means no gap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pilotlab.report import charts
from pilotlab.report.format import fmt_num
from pilotlab.report.model import Figure, Table
from pilotlab.report.text import plural
from pilotlab.results import BalanceRow

__all__ = ["BALANCE_ACCEPTABLE", "BALANCE_GOOD", "balance_figure", "balance_table"]

#: Standardised differences up to this are small (What Works Clearinghouse: no adjustment needed).
BALANCE_GOOD = 0.05
#: ... and up to this acceptable when the analysis adjusts for the variable (beyond: imbalance).
BALANCE_ACCEPTABLE = 0.25


def _verdict(d: float) -> str:
    if not math.isfinite(d):
        return "not computed"
    a = abs(d)
    if a <= BALANCE_GOOD:
        return "small"
    if a <= BALANCE_ACCEPTABLE:
        return "moderate"
    return "large"


def balance_table(
    rows: Sequence[BalanceRow], table_id: str, caption: str, labels: Mapping[str, str] | None = None
) -> Table:
    """The balance table: one row per variable and arm (or wave)."""
    labels = labels or {}
    body = tuple(
        (
            labels.get(b.variable, b.variable),
            b.group,
            b.comparison,
            fmt_num(b.mean_group, 3),
            fmt_num(b.mean_comparison, 3),
            fmt_num(b.std_diff, 2),
            _verdict(b.std_diff),
        )
        for b in rows
    )
    return Table(
        table_id,
        caption,
        (
            "Measure (before the start)",
            "Group",
            "Compared with",
            "Group mean",
            "Comparison mean",
            "Standardised difference",
            "Difference",
        ),
        body,
        numeric=(False, False, False, True, True, True, False),
        note=(
            "A standardised difference is the gap between the two means divided by the spread "
            "(standard deviation) of the measure across all units compared: 0 means no gap. Up "
            f"to {BALANCE_GOOD:g} is small; up to {BALANCE_ACCEPTABLE:g} is moderate and is "
            "allowed for by adjusting the analysis for the measure; beyond it the groups "
            "differ."
        ),
    )


def balance_figure(
    rows: Sequence[BalanceRow], fig_id: str, labels: Mapping[str, str] | None = None
) -> Figure:
    """A dot chart of the standardised differences (0 = perfectly balanced)."""
    labels = labels or {}
    names = [f"{labels.get(b.variable, b.variable)}: {b.group}" for b in rows]
    d = [b.std_diff for b in rows]
    finite = [abs(x) for x in d if math.isfinite(x)]
    worst = max(finite) if finite else math.nan
    large = sum(1 for x in finite if x > BALANCE_ACCEPTABLE)
    title = (
        "The groups looked alike before the start"
        if large == 0 and finite
        else f"{plural(large, 'measure')} differed between the groups before the start"
        if finite
        else "Balance could not be computed"
    )
    desc = "; ".join(f"{n}: {fmt_num(x, 2)}" for n, x in zip(names, d, strict=True))
    table = Table(
        fig_id + "-data",
        "Standardised differences before the start",
        ("Measure and group", "Standardised difference"),
        tuple((n, fmt_num(x, 2)) for n, x in zip(names, d, strict=True)),
        numeric=(False, True),
    )
    nan = [math.nan] * len(d)
    svg = charts.forest_plot(
        fig_id,
        title,
        desc,
        names,
        d,
        nan,
        nan,
        value_labels=[fmt_num(x, 2) for x in d],
        x_label=f"Standardised difference (0 = no gap; beyond ±{BALANCE_ACCEPTABLE:g}: groups differ)",
    )
    sub = (
        f"Largest gap: {fmt_num(worst, 2)} standard deviations"
        if math.isfinite(worst)
        else "No measure had values for both groups"
    )
    return Figure(fig_id, title, sub, svg, desc, table, "Source: the pilot's data before the start")
