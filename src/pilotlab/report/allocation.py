"""The allocation page (``allocation.html``) written by ``pilotlab randomise``.

One page, in plain words: who was allocated to what, how (scheme, seed, hash), and whether the
arms (or waves) look alike before the pilot starts, as a chart and a table of standardised
differences. It is built as a :class:`~pilotlab.report.model.ReportDocument` and laid out by
``templates/allocation.html.j2`` with the report's own blocks, styles and accessibility.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pilotlab.report.balance import (
    BALANCE_ACCEPTABLE,
    balance_figure,
    balance_table,
)
from pilotlab.report.format import fmt_int
from pilotlab.report.model import (
    KeyValue,
    ListBlock,
    Notice,
    Paragraph,
    ReportDocument,
    Section,
    Table,
)
from pilotlab.report.text import join_words, plural
from pilotlab.results import BalanceRow

__all__ = ["SCHEME_WORDS", "allocation_document_page", "render_allocation_html"]


SCHEME_WORDS = {
    "complete": "by simple random draw",
    "stratified": "at random within strata",
    "pairs": "at random within matched pairs",
    "rerandomise": "by random draw, repeated until the groups were balanced",
    "stepped": "at random into waves of a stepped roll-out",
}


def allocation_document_page(
    doc: Mapping[str, Any], rows: Sequence[BalanceRow], where: str = ""
) -> ReportDocument:
    """The allocation page as a document (what ``allocation.html`` shows)."""
    pilot = doc["pilot"]
    groups = doc["groups"]
    labels = {str(v["name"]): str(v["label"]) for v in doc.get("variables") or []}
    stepped = doc["scheme"] == "stepped"
    n = len(doc["units"])
    kinds = "waves" if stepped else "groups"
    by = SCHEME_WORDS.get(doc["scheme"], doc["scheme"])
    strata = doc.get("strata") or []
    strata_from = doc.get("strata_from")
    sizes = join_words(
        [f"{g['name']}: {fmt_int(g['units'])}" for g in groups if g["units"] or g["code"]]
    )
    intro = (
        f"{plural(n, 'unit')} eligible for the pilot {'were' if n != 1 else 'was'} allocated "
        f"{by} ({sizes})."
    )
    if strata and doc["scheme"] != "pairs":
        col = f" (by {join_words(list(strata_from))})" if isinstance(strata_from, list) else ""
        intro += (
            f" The draw was made separately within each of {plural(len(strata), 'stratum', 'strata')}"
            f"{col}, so every stratum is shared between the {kinds} in the same proportions."
        )
    elif doc["scheme"] == "pairs":
        intro += (
            f" Units were first matched into {plural(len(strata), 'pair')} that looked alike "
            "before the start; one unit of each pair was then chosen at random."
        )
    rr = doc.get("rerandomisation")
    if rr:
        intro += (
            f" The draw was repeated until every standardised difference was within "
            f"{rr['max_std_diff']:g}; {fmt_int(rr['draws_tried'])} draws were made (at most "
            f"{fmt_int(rr['max_draws'])} allowed)."
        )
    blocks: list[Any] = [
        Paragraph(intro),
        Paragraph(
            "The allocation comes from a recorded random seed: anyone with the pilot file and "
            "the data can draw it again and get exactly the same result on any computer. It "
            "was recorded in the registry before the pilot started, so it cannot be changed "
            "without the change being listed in the evaluation report."
        ),
        KeyValue(
            (
                ("How units were allocated", by),
                ("Random seed", str(doc["seed"])),
                ("Fingerprint of the allocation (SHA-256)", doc["sha256"]),
                ("Recorded in", where or "not recorded"),
                ("Drawn at", doc["generated_at"]),
            ),
            title="The allocation at a glance",
        ),
    ]
    group_rows = tuple(
        (
            g["name"],
            g["start"] or ("not treated in the pilot" if stepped else "no intervention"),
            fmt_int(g["units"]),
        )
        for g in groups
        if g["units"] or g["code"]
    )
    blocks.append(
        Table(
            "allocation-groups",
            f"Units in each of the {kinds}",
            ("Group" if not stepped else "Wave", "Starts", "Units"),
            group_rows,
            numeric=(False, False, True),
        )
    )
    sections = [Section("allocation", "The allocation", tuple(blocks))]

    bal: list[Any] = []
    if rows:
        large = [
            b for b in rows if math.isfinite(b.std_diff) and abs(b.std_diff) > BALANCE_ACCEPTABLE
        ]
        bal.append(
            Paragraph(
                "Before the pilot starts, the "
                f"{kinds} should look alike on what was measured beforehand (the outcomes and "
                "background measures, averaged over the periods before the start). Random "
                "allocation makes large gaps unlikely but not impossible."
            )
        )
        if large:
            names = join_words(
                sorted({f"{labels.get(b.variable, b.variable)} ({b.group})" for b in large})
            )
            bal.append(
                Notice(
                    f"The {kinds} differ on {names} by more than {BALANCE_ACCEPTABLE:g} standard "
                    "deviations. Gaps of this size happen by chance when there are few units in "
                    "each group; the analysis adjusts for measures taken before the start, and "
                    "the evaluation report tests whether the gaps are larger than chance would "
                    "produce.",
                    "warning",
                )
            )
        bal.append(balance_figure(rows, "balance-chart", labels))
        bal.append(balance_table(rows, "balance", "Balance before the start", labels))
    else:
        bal.append(
            Paragraph(
                "Balance could not be shown: the data hold no measures before the start for "
                "these units."
            )
        )
    sections.append(Section("balance", "Do the groups look alike before the start?", tuple(bal)))

    unit_rows = tuple(
        (str(u["unit"]), u["group"], u["start"] or "-", u["stratum"]) for u in doc["units"]
    )
    sections.append(
        Section(
            "units",
            "Every unit's allocation",
            (
                Table(
                    "allocation-units",
                    "Allocation of every eligible unit",
                    ("Unit", "Wave" if stepped else "Group", "Starts", "Stratum or pair"),
                    unit_rows,
                ),
            ),
        )
    )
    sections.append(
        Section(
            "check",
            "How to check it",
            (
                ListBlock(
                    (
                        "pilotlab run checks the allocation it draws from the pilot file and "
                        "data against the one recorded here, and stops with an error if they "
                        "differ (for example if a data change moved a unit to another stratum).",
                        "The fingerprint is the SHA-256 of the allocation's scheme, seed, "
                        "groups and each unit's group and stratum, written as canonical JSON "
                        "(allocation.json holds all of it).",
                        f"Plan fingerprint (SHA-256): {doc['plan_sha256']}.",
                        f"Data file: {doc['data']['path']} (SHA-256 {doc['data']['sha256']}).",
                    )
                ),
            ),
        )
    )
    return ReportDocument(
        title=f"Allocation of {pilot['title']}",
        subtitle=f"Pilot {pilot['id']} · {by} · seed {doc['seed']}",
        sections=tuple(sections),
        generated_at=str(doc["generated_at"]),
        pilotlab_version=str(doc.get("software", {}).get("pilotlab", "")),
        evidence_file="allocation.json",
    )


def render_allocation_html(
    doc: Mapping[str, Any], rows: Sequence[BalanceRow], where: str = ""
) -> str:
    """``allocation.html``: one self-contained page."""
    from pilotlab.report.render import render_html

    page = allocation_document_page(doc, rows, where)
    return render_html(page, "allocation.html.j2")
