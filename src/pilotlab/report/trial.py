"""The report's sections for a randomised pilot and for a cycle of a learning chain.

``build`` adds, when the evaluation has them:

- "How the trial ran" (after "Data and units"): the flow from eligible to analysed units by arm
  (diagram and table, with the reason for every loss), attrition, contamination (units that
  crossed over), the balance of the analysed arms before the start (chart and table), whether
  the allocation analysed is the one registered before the start (and every later change, a
  deviation), and the per-protocol estimate, labelled as a secondary analysis;
- "Earlier cycles" (after "The pilot"): the pilot this cycle follows, what changed, and each
  earlier cycle's latest headline result;
- a sentence in the headline saying that the results are intention-to-treat.

Everything on these sections is in plain words; the standardised difference is explained where
it is shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pilotlab.report import charts
from pilotlab.report.balance import BALANCE_ACCEPTABLE, balance_figure, balance_table
from pilotlab.report.format import fmt_ci, fmt_int, fmt_num, fmt_p, fmt_pct, is_number
from pilotlab.report.model import (
    Block,
    Figure,
    Heading,
    ListBlock,
    Notice,
    Paragraph,
    Table,
)
from pilotlab.report.text import join_words, plural
from pilotlab.results import CycleInfo, CycleResult, Evaluation, TrialSummary

__all__ = [
    "CYCLE_SECTION",
    "TRIAL_SECTION",
    "cycle_blocks",
    "headline_note",
    "section_titles",
    "trial_blocks",
]

TRIAL_SECTION = ("trial", "How the trial ran")
CYCLE_SECTION = ("cycles", "Earlier cycles of this pilot")

Uid = Callable[[str], str]


def section_titles(
    titles: tuple[tuple[str, str], ...], ev: Evaluation
) -> tuple[tuple[str, str], ...]:
    """The main sections with the trial and cycle sections in place (when they apply)."""
    out: list[tuple[str, str]] = []
    for sid, title in titles:
        out.append((sid, title))
        if sid == "pilot" and ev.cycle is not None:
            out.append(CYCLE_SECTION)
        if sid == "data" and ev.trial is not None:
            out.append(TRIAL_SECTION)
    return tuple(out)


def headline_note(ev: Evaluation) -> Paragraph | None:
    """Intention-to-treat is the headline of a trial: say so where the headline is."""
    t = ev.trial
    if t is None:
        return None
    kinds = "wave" if t.stepped else "group"
    text = (
        "These are intention-to-treat results: every unit is compared as it was allocated at "
        f"random, whatever it actually received, so the comparison keeps the fairness of the "
        f"random allocation. {'Each wave counts as treated from its own start.' if t.stepped else ''}"
    ).strip()
    if t.per_protocol:
        text += (
            f" A per-protocol analysis (only units that got what their {kinds} was allocated) is "
            "shown as a secondary analysis in 'How the trial ran'."
        )
    return Paragraph(text)


def _unit_list(units: tuple[str, ...], limit: int = 8) -> str:
    shown = ", ".join(units[:limit])
    return shown + (f" and {len(units) - limit} more" if len(units) > limit else "")


def _flow_figure(t: TrialSummary, uid: Uid, unit_word: str) -> Figure:
    rows = [f for f in t.flow if f.allocated]
    columns: list[list[tuple[str, str, str]]] = [
        [("Eligible", fmt_int(t.eligible), f"of {fmt_int(t.in_data)} in the data")],
        [(f"Allocated: {f.group}"[:26], fmt_int(f.allocated), "at random") for f in rows],
        [
            (
                "Received",
                fmt_int(f.received) if f.received is not None else "?",
                "as allocated" if f.received is not None else "not recorded",
            )
            for f in rows
        ],
        [("Analysed", fmt_int(f.analysed), "with outcome data") for f in rows],
    ]
    fid = uid("trial-flow")
    analysed = sum(f.analysed for f in rows)
    title = (
        f"{fmt_int(analysed)} of {fmt_int(t.allocated)} allocated {plural(t.allocated, unit_word).split(' ', 1)[1]} "
        "were analysed"
    )
    desc = "; ".join(
        f"{f.group}: {f.allocated} allocated, "
        + (f"{f.received} received as allocated, " if f.received is not None else "")
        + f"{f.analysed} analysed"
        for f in rows
    )
    table = _flow_table(t, fid + "-data")
    svg = charts.unit_flow_diagram(fid, title, desc, columns)
    return Figure(
        fid,
        title,
        "From eligible units to the units analysed, by group",
        svg,
        desc,
        table,
        "Source: the allocation and the pilot's data",
    )


def _flow_table(t: TrialSummary, table_id: str) -> Table:
    rows = []
    for f in t.flow:
        if not f.allocated:
            continue
        lost = [loss for loss in t.losses if loss.group == f.group]
        reasons = "; ".join(f"{len(loss.units)} {loss.reason}" for loss in lost) or "none"
        rows.append(
            (
                f.group,
                fmt_int(f.allocated),
                fmt_int(f.received) if f.received is not None else "not recorded",
                fmt_int(f.analysed),
                reasons,
            )
        )
    return Table(
        table_id,
        "Units at each stage, by group",
        ("Group", "Allocated", "Received as allocated", "Analysed", "Lost, and why"),
        tuple(rows),
        numeric=(False, True, True, True, False),
    )


def trial_blocks(ev: Evaluation, uid: Uid, unit_word: str = "unit") -> list[Block]:
    """The "How the trial ran" section."""
    t = ev.trial
    assert t is not None
    units_word = plural(2, unit_word).split(" ", 1)[1]
    kinds = "waves" if t.stepped else "groups"
    blocks: list[Block] = []
    # the allocation and its registration
    reg = t.registration
    how = {
        "complete": "by simple random draw",
        "stratified": f"at random within {plural(len(t.strata), 'stratum', 'strata')}",
        "pairs": "at random within matched pairs",
        "rerandomise": "by random draw, repeated until the groups were balanced",
        "stepped": "at random into the waves of a stepped roll-out"
        + (f", within {plural(len(t.strata), 'stratum', 'strata')}" if t.strata else ""),
    }.get(t.scheme, t.scheme)
    blocks.append(
        Paragraph(
            f"{plural(t.eligible, unit_word)} eligible for the pilot were allocated {how} "
            f"(seed {t.seed}). The analysis compares the {kinds} as they were allocated."
        )
    )
    if not reg.registered:
        blocks.append(
            Notice(
                "The allocation was not recorded in a registry before the pilot started, so "
                "this report cannot show that it was fixed in advance. Record allocations with "
                "pilotlab randomise before a pilot starts.",
                "warning",
            )
        )
    else:
        text = (
            f"The allocation was recorded in the registry on {str(reg.recorded_at)[:10]} "
            f"(version {reg.version}), and the allocation analysed here is exactly that one "
            f"(fingerprint {t.sha256[:12]})."
        )
        blocks.append(Paragraph(text))
        if reg.changes:
            blocks.append(
                Notice(
                    "The allocation was changed after it was first recorded: "
                    + "; ".join(
                        f"version {c.version} on {c.recorded_at[:10]} because "
                        f"{c.reason or 'no reason given'}"
                        for c in reg.changes
                    )
                    + ". Each change is a deviation from the randomised design.",
                    "warning",
                )
            )
    # flow
    blocks.append(Heading("From allocation to analysis", uid("trial-flow-heading")))
    blocks.append(_flow_figure(t, uid, unit_word))
    blocks.append(_flow_table(t, uid("trial-flow-table")))
    if t.losses:
        blocks.append(
            ListBlock(
                tuple(
                    f"{loss.group}: {plural(len(loss.units), unit_word)} {loss.reason} "
                    f"({_unit_list(loss.units)})."
                    for loss in t.losses
                )
            )
        )
    # attrition
    blocks.append(Heading("Units lost before the analysis (attrition)", uid("trial-attrition")))
    by = join_words([f"{g} {fmt_pct(s, 0)}" for g, s in t.attrition_by_group])
    blocks.append(
        Paragraph(
            f"{fmt_pct(t.attrition, 1)} of allocated {units_word} could not be analysed ({by}). "
            f"The shares lost differ by at most {fmt_num(100 * t.differential_attrition, 0)} "
            f"percentage points between {kinds}: when {kinds} lose different kinds of "
            f"{units_word}, they stop being alike."
        )
    )
    # contamination
    blocks.append(Heading("Units that did not get their allocation", uid("trial-contamination")))
    if t.received_column is None:
        blocks.append(
            Paragraph(
                "The data do not say what each unit actually received, so crossovers (units that "
                "got the intervention without being allocated to it, or the reverse) could not "
                "be checked. Add a column saying so and name it under trial.received in the "
                "pilot file."
            )
        )
    elif not t.crossovers:
        blocks.append(
            Paragraph(
                f"Every {unit_word} got what it was allocated, in every period (by the data "
                f"column {t.received_column})."
            )
        )
    else:
        blocks.append(
            Paragraph(
                f"{plural(len(t.crossovers), unit_word)} of {fmt_int(t.allocated)} "
                f"({fmt_pct(t.crossover_share, 1)}) did not get what they were allocated in "
                f"every period (by the data column {t.received_column}). They are still compared "
                "as allocated in the main results."
            )
        )
        blocks.append(
            Table(
                uid("trial-crossovers"),
                "Units that did not get their allocation",
                ("Unit", "Allocated to", "What it got instead"),
                tuple(t.crossovers),
            )
        )
    # balance
    blocks.append(Heading("Did the groups look alike before the start?", uid("trial-balance")))
    if t.balance:
        worst = t.max_abs_std_diff
        chance = (
            f" Of {fmt_int(t.balance_draws)} re-draws of the allocation, made exactly as the "
            f"scheme draws, {fmt_pct(t.balance_p, 1)} were as unbalanced or more, so "
            + (
                "the gaps are what chance produces."
                if t.balance_p is not None and t.balance_p >= 0.05
                else "the gaps are larger than chance usually produces."
            )
            if t.balance_p is not None
            else ""
        )
        blocks.append(
            Paragraph(
                f"Among the {units_word} analysed, the largest gap between the {kinds} before "
                f"the start is {fmt_num(worst, 2)} standard deviations (more than "
                f"{BALANCE_ACCEPTABLE:g} is a large gap).{chance}"
            )
        )
        labels = {o.column: o.label for o in ev.outcomes}
        blocks.append(balance_figure(t.balance, uid("trial-balance-chart"), labels))
        blocks.append(
            balance_table(
                t.balance,
                uid("trial-balance-table"),
                "Balance before the start, units analysed",
                labels,
            )
        )
    else:
        blocks.append(Paragraph("Balance could not be shown: no measure before the start."))
    # per protocol
    if t.per_protocol:
        blocks.append(
            Heading("Secondary analysis: per protocol (not the headline)", uid("per-protocol"))
        )
        blocks.append(
            Paragraph(
                "This analysis leaves out the units that did not get what they were allocated. "
                "It is shown for completeness only: leaving units out by what they received can "
                "make the groups differ in ways the random allocation ruled out, so the "
                "intention-to-treat results above are the main findings."
            )
        )
        level = f"{round(100 * (1 - ev.alpha)):g}%"
        rows = []
        for p in t.per_protocol:
            ok = is_number(p.estimate)
            rows.append(
                (
                    p.label,
                    fmt_num(p.estimate, 2) if ok else "not estimated",
                    fmt_ci(p.ci_lower, p.ci_upper, 2) if ok else "-",
                    fmt_p(p.p_value) if ok else "-",
                    fmt_int(p.n_units),
                    p.note or "-",
                )
            )
        blocks.append(
            Table(
                uid("per-protocol-table"),
                "Per-protocol estimates (secondary)",
                ("Outcome", "Estimate", f"{level} interval", "p-value", "Units", "Note"),
                tuple(rows),
                numeric=(False, True, False, True, True, False),
            )
        )
    return blocks


def _result_text(r: CycleResult) -> str:
    if not is_number(r.estimate):
        return "no estimate"
    level = (
        f"{round(100 * (1 - r.alpha)):g}%" if r.alpha is not None and is_number(r.alpha) else "95%"
    )
    lo, hi = r.ci_lower, r.ci_upper
    ci = fmt_ci(lo, hi, 2) if is_number(lo) and is_number(hi) else "no interval"
    return f"{r.label}: {fmt_num(r.estimate, 2)} ({level} interval {ci})"


def cycle_blocks(ev: Evaluation, uid: Uid) -> list[Block]:
    """The "Earlier cycles of this pilot" section."""
    c: CycleInfo | None = ev.cycle
    assert c is not None
    blocks: list[Block] = [
        Paragraph(
            f"This pilot is a new cycle of a test-and-learn series: it follows pilot {c.follows}. "
            f"What changed since then: {c.change}"
        )
    ]
    if not c.earlier:
        blocks.append(
            Paragraph(
                "The earlier cycles' results come from the registry; "
                + (
                    "it holds no recorded run of them yet."
                    if c.registry_checked
                    else "no registry was available when this report was made."
                )
            )
        )
        return blocks
    rows = []
    for i, e in enumerate(c.earlier, start=1):
        result = "; ".join(_result_text(r) for r in e.results) if e.results else "no run recorded"
        level = f"{e.evidence_level} of 5" if e.evidence_level is not None else "-"
        rows.append((f"Cycle {i}", f"{e.title} ({e.pilot_id})", result, level, e.change))
    rows.append(
        (
            f"Cycle {len(c.earlier) + 1} (this report)",
            str(getattr(ev.pilot, "title", "")),
            "see the headline findings",
            f"{ev.evidence_strength.level} of 5" if ev.evidence_strength else "-",
            "-",
        )
    )
    blocks.append(
        Table(
            uid("cycles"),
            "Each cycle's latest headline result and what the next cycle changed",
            ("Cycle", "Pilot", "Headline result", "Evidence level", "What the next cycle changed"),
            tuple(rows),
        )
    )
    blocks.append(
        Paragraph(
            "Results of different cycles are not directly comparable when the pilots differ in "
            "their areas, periods or outcomes: read the change between cycles as what was "
            "learnt and tried next, not as a measured difference."
        )
    )
    return blocks


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(float(x))
