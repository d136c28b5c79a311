"""``build(evaluation) -> ReportDocument``: everything the reader sees, decided in one place.

The report has the eleven sections of ``report.md`` in order. Estimator-specific material is
read from documented keys and shown when present, with a short sentence when absent:

``EffectResult`` parts (per outcome, see :mod:`pilotlab.results.parts`)
    ``synthetic`` (:class:`SyntheticTables`): the treated vs synthetic ``paths`` replace the
    comparison line of the trend chart; donor ``weights`` and ``time_weights`` are charted /
    tabled; ``fit_sentence`` or ``pre_rmspe`` is quoted; the ``placebo`` runs are charted.
    ``staggered`` (:class:`StaggeredTables`): the ``aggregations`` and ``att_gt`` tables; the
    ``dynamic`` table's ``uniform_lower`` / ``uniform_upper`` draw the uniform band.
``Evaluation.diagnostics`` (:class:`DesignDiagnostics`)
    ``goodman_bacon``: outcome -> :class:`BaconDecomposition` (``by_type``, ``twfe_estimate``);
    ``design_mde``: outcome -> the analytic minimum detectable effect of the design.
``RobustnessCheck``
    every check is a row of the robustness table; for ``honest_did``
    (:class:`~pilotlab.results.HonestDiD`) the breakdown value and the relative-magnitude and
    smoothness bounds are shown.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pilotlab import catalogue
from pilotlab.catalogue import Capabilities
from pilotlab.report import charts, pretrend_power, trial
from pilotlab.report.designs import design_assumptions
from pilotlab.report.format import (
    NA,
    decimals_for_scale,
    fmt_ci,
    fmt_int,
    fmt_num,
    fmt_p,
    fmt_pct,
    is_number,
)
from pilotlab.report.microdata import microdata_sentence
from pilotlab.report.model import (
    Block,
    Cell,
    Figure,
    FullTable,
    Heading,
    KeyValue,
    LinkList,
    ListBlock,
    Notice,
    Paragraph,
    ReportDocument,
    Section,
    SeeAlso,
    Table,
)
from pilotlab.report.text import (
    GLOSSARY,
    INFERENCE_NAMES,
    PLAIN_CHECK_NAMES,
    ROBUSTNESS_NAMES,
    as_text,
    find_jargon,
    headline_sentence,
    join_words,
    plural,
    plural_word,
    with_units,
)
from pilotlab.report.value_for_money import value_for_money_sections
from pilotlab.results import (
    BaconDecomposition,
    EffectResult,
    Evaluation,
    HonestDiD,
    OutcomeEvaluation,
    PermutationRecord,
    PilotLike,
    PlaceboInSpace,
    PreTrendTest,
    RobustnessCheck,
    SyntheticTables,
)
from pilotlab.results import Table as PartTable

__all__ = ["ANNEX_TITLES", "SECTION_TITLES", "build", "csv_name", "event_interval_validity"]

#: The main sections of the report, in order: (anchor, title). They hold the findings in plain
#: words; every detailed table and every method name is in the technical annex.
SECTION_TITLES: tuple[tuple[str, str], ...] = (
    ("headline", "Headline findings"),
    ("summary", "Summary"),
    ("pilot", "The pilot"),
    ("registration", "Registration of the analysis plan"),
    ("data", "Data and units"),
    ("design", "Design"),
    ("results", "Results by outcome"),
    ("robustness", "Robustness and sensitivity"),
    ("evidence", "Strength of the evidence"),
    ("limitations", "Limitations and caveats"),
)
#: The sections of the technical annex, in order (those without content are left out, except
#: the glossary and reproducibility).
ANNEX_TITLES: tuple[tuple[str, str], ...] = (
    ("annex-glossary", "Glossary of technical terms"),
    ("annex-data", "Data in detail"),
    ("annex-estimates", "Detailed estimates"),
    ("annex-events", "Effects period by period (event study)"),
    ("annex-staggered", "Staggered roll-out: group-time effects and decomposition"),
    ("annex-synthetic", "Synthetic comparison: donor weights and placebo runs"),
    ("annex-robustness", "Robustness checks in detail"),
    ("annex-evidence", "Evidence-strength criteria in detail"),
    ("annex-notes", "Technical warnings from the estimation"),
    ("reproducibility", "Reproducibility"),
)
_ALWAYS = ("annex-glossary", "reproducibility")


def _caps(name: str) -> Capabilities | None:
    """What the named estimator can do (``None`` for a variant no longer installed)."""
    entry = catalogue.entries().get(name)
    return entry.capabilities if entry is not None else None


def _synthetic(name: str) -> bool:
    caps = _caps(name)
    return caps is not None and caps.synthetic


def _titles() -> dict[str, str]:
    return {name: entry.title for name, entry in catalogue.entries().items()}


def csv_name(table: Table) -> str:
    """File name of a table's CSV (in the ``tables/`` folder beside the report)."""
    return f"{table.id}.csv"


def full_csv_name(table: Table) -> str:
    """File name of a table's full-precision CSV (beside the formatted one)."""
    return f"{table.id}_full.csv"


def _cell(value: object) -> Cell:
    """A full-precision cell: numpy scalars as Python ones, NaN and missing values as ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def full_table(df: pd.DataFrame) -> FullTable:
    """The unrounded values of a DataFrame (its own column names) for the full-precision CSV."""
    columns = [df.iloc[:, j].tolist() for j in range(df.shape[1])]  # column-wise: fast
    return FullTable(
        tuple(str(c) for c in df.columns),
        tuple(tuple(_cell(v) for v in row) for row in zip(*columns, strict=True)),
    )


def outcome_decimals(o: OutcomeEvaluation) -> int:
    """Decimals for every number of an outcome (the rule of :func:`decimals_for_scale`).

    The typical magnitude is the pre-pilot mean of the pilot units (else the mean of the
    outcome's trend lines); the uncertainty is the half-width of the interval of the stated
    inference, else the standard error (an unavailable or infinite interval).
    """
    r = o.result
    typical = o.baseline_mean if is_number(o.baseline_mean) and o.baseline_mean != 0 else None
    if typical is None:
        t = o.trends
        if isinstance(t, pd.DataFrame) and {"treated", "comparison"} <= set(t.columns):
            vals = np.abs(t[["treated", "comparison"]].to_numpy(dtype=float))
            vals = vals[np.isfinite(vals)]
            typical = float(vals.mean()) if vals.size else None
    se = None
    if is_number(r.ci_upper) and is_number(r.ci_lower):
        se = (r.ci_upper - r.ci_lower) / 2 or None
    if se is None and is_number(r.std_error) and r.std_error > 0:
        se = r.std_error
    return decimals_for_scale(typical, se)


def event_interval_validity(r: EffectResult, treated_clusters: int) -> str:
    """Empty when the period-by-period intervals of ``r`` come from its stated inference, else
    the reason they do not (to label and grey them).

    Permutation inference replaces only the overall p-value and interval (the period-by-period
    ones stay cluster-robust); the wild bootstrap and the synthetic estimators' placebo and
    jackknife recompute them. An estimator may state ``EffectResult.event_study_inference``.
    """
    stated = r.event_study_inference
    if stated is not None:
        return "" if stated == r.inference else _not_valid_reason(treated_clusters)
    if r.inference == "permutation" and isinstance(r.inference_details, PermutationRecord):
        return _not_valid_reason(treated_clusters)
    return ""


def _not_valid_reason(treated_clusters: int) -> str:
    return (
        "cluster-robust interval, not valid with "
        f"{plural(int(treated_clusters), 'treated cluster')}"
    )


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:40] or "x"


class _Ctx:
    """What every section needs, computed once."""

    def __init__(self, ev: Evaluation) -> None:
        self.ev = ev
        self.spec: PilotLike = ev.pilot
        self.data = ev.data
        self.level = f"{round(100 * (1 - ev.alpha)):g}%"
        self.unit_word = getattr(getattr(self.spec, "data", None), "unit_label", None) or "area"
        self.units_word = plural_word(self.unit_word)
        self.source = getattr(getattr(self.spec, "data", None), "source", None) or (
            f"{self.data.path} (pilot data file)"
        )
        self.start = self._start_label()
        specs = {o.column: o for o in getattr(self.spec, "outcomes", [])}
        self.outcome_units = {c: (getattr(s, "units", None) or "") for c, s in specs.items()}
        self.decimals = {o.column: self._decimals(o) for o in ev.outcomes}
        self.ids: set[str] = set()
        self.comparison_phrase = self._comparison_phrase()
        self.annex: dict[str, list[Block]] = {sid: [] for sid, _ in ANNEX_TITLES}

    def plain(self, text: str) -> str:
        """``text`` with the outcome columns and method identifiers replaced by their names."""
        names = {o.column: o.label for o in self.ev.outcomes}
        names.update(_titles())
        names.update(INFERENCE_NAMES)
        names.update(PLAIN_CHECK_NAMES)
        return re.sub(
            r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b",
            lambda m: names.get(m.group(0), m.group(0).replace("_", " ")),
            text,
        )

    def to_annex(self, sid: str, *blocks: Block) -> None:
        """Add blocks to an annex section."""
        self.annex[sid].extend(blocks)

    def uid(self, base: str) -> str:
        base = _slug(base)
        out, k = base, 2
        while out in self.ids:
            out, k = f"{base}-{k}", k + 1
        self.ids.add(out)
        return out

    def _start_label(self) -> str:
        starts = sorted(set(self.data.adoption.values()), key=self._period_index)
        return starts[0] if starts else ""

    def _period_index(self, label: str) -> int:
        try:
            return list(self.data.period_labels).index(label)
        except ValueError:
            return 10**9

    def _decimals(self, o: OutcomeEvaluation) -> int:
        return outcome_decimals(o)

    def _comparison_phrase(self) -> str:
        if _synthetic(self.ev.estimator.name):
            return f"a synthetic comparison built from untreated {self.units_word}"
        comp = getattr(getattr(self.spec, "treatment", None), "comparison", "never_treated")
        if comp == "not_yet_treated":
            return f"{self.units_word} not yet reached by the pilot"
        return f"comparison {self.units_word}"


def _headline(ctx: _Ctx) -> list[Block]:
    ev = ctx.ev
    blocks: list[Block] = []
    primary = [o for o in ev.outcomes if o.primary] or list(ev.outcomes[:1])
    for o in primary:
        blocks.append(Paragraph(_headline_text(ctx, o)))
    if len(primary) > 1 and ev.multiple_testing != "none":
        blocks.append(
            Paragraph(
                f"With {len(primary)} primary outcomes, p-values are adjusted for multiple "
                f"testing ({_mt_name(ev.multiple_testing)}); see the results table."
            )
        )
    itt = trial.headline_note(ev)
    if itt is not None:
        blocks.append(itt)
    es = ev.evidence_strength
    if es is not None:
        blocks.append(
            Paragraph(
                f"Strength of the evidence: level {es.level} of 5 on the Maryland Scientific "
                f"Methods Scale ({es.rubric})."
            )
        )
    return blocks


def _mt_name(m: str) -> str:
    return {
        "holm": "Holm",
        "bh": "Benjamini-Hochberg",
        "romano_wolf": "Romano-Wolf",
        "none": "none",
    }.get(m, m)


def _headline_text(ctx: _Ctx, o: OutcomeEvaluation) -> str:
    r = o.result
    d = ctx.decimals[o.column]
    return headline_sentence(
        o.label,
        r.estimate,
        r.ci_lower,
        r.ci_upper,
        decimals=d,
        level=ctx.level,
        units=ctx.outcome_units.get(o.column, ""),
        better=o.better,
        improved=o.improved,
        relative=o.relative_effect,
        baseline=fmt_num(o.baseline_mean, d),
        n_treated=r.n_treated_units,
        unit_word=ctx.unit_word,
        comparison=ctx.comparison_phrase,
    )


def _summary(ctx: _Ctx) -> list[Block]:
    ev, spec, data = ctx.ev, ctx.spec, ctx.data
    es = ev.evidence_strength
    rows = [
        ("Pilot", spec.title),
        ("Lead organisation", spec.lead or "not stated"),
        ("Partners", ", ".join(spec.partners) if spec.partners else "none listed"),
        ("Status", spec.status),
        (
            "Period analysed",
            f"{data.first_period} to {data.last_period} ({plural(data.periods, 'period')})",
        ),
        (
            "Pilot start",
            ctx.start if not data.staggered else f"staggered, first {ctx.start}",
        ),
        (
            "Areas",
            f"{fmt_int(data.treated_units)} pilot and "
            f"{fmt_int(data.flow().comparison)} "
            f"comparison {ctx.units_word} ({fmt_int(data.units)} analysed)",
        ),
        (
            "Design",
            f"{catalogue.title(ev.estimator.name)}, with "
            f"{INFERENCE_NAMES.get(ev.inference.name, ev.inference.name)}",
        ),
        (
            "Evidence strength",
            f"Level {es.level} of 5 (Maryland SMS, pilotlab rubric v{es.rubric_version})"
            if es is not None
            else "not assessed",
        ),
    ]
    return [KeyValue(tuple(rows), title="At a glance")]


def _pilot(ctx: _Ctx) -> list[Block]:
    spec = ctx.spec
    blocks: list[Block] = []
    blocks.append(Paragraph(spec.summary or "No summary was given in the pilot file."))
    if spec.questions:
        blocks.append(Heading("Evaluation questions", ctx.uid("questions")))
        blocks.append(
            ListBlock(
                tuple(
                    q.text
                    + (" (confirmatory, pre-specified)" if q.confirmatory else " (exploratory)")
                    for q in spec.questions
                )
            )
        )
    else:
        blocks.append(Paragraph("No evaluation questions were listed in the pilot file."))
    reg = getattr(spec, "registration", None)
    toc = getattr(reg, "theory_of_change", None)
    blocks.append(Heading("Theory of change", ctx.uid("theory-of-change")))
    blocks.append(Paragraph(toc or "No theory of change was given in the pilot file."))
    rows = [("Status", spec.status), ("Policy area", spec.policy_area or "not stated")]
    for key, label in (
        ("design_type", "Design type (as registered)"),
        ("start_date", "Planned start"),
        ("end_date", "Planned end"),
        ("actual_start_date", "Actual start"),
        ("actual_end_date", "Actual end"),
        ("report_due", "Report due"),
        ("publication", "Publication commitment"),
    ):
        v = getattr(reg, key, None)
        if v:
            rows.append((label, str(v)))
    rows.append(("First treated period in the data", ctx.start or NA))
    if spec.contact:
        rows.append(("Contact", spec.contact))
    blocks.append(KeyValue(tuple(rows), title="Status and dates"))
    return blocks


def _plan_value(value: Any, present: bool) -> str:
    """A registered or analysed plan value as short text (``not set`` where the key is absent)."""
    if not present:
        return "not set"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value or "(empty)"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    return text if len(text) <= 200 else text[:197] + "..."


def _registration(ctx: _Ctx) -> list[Block]:
    plan = ctx.ev.plan
    blocks: list[Block] = []
    if not plan.registered:
        blocks.append(
            Notice(
                "Not registered: this analysis plan was not registered before the analysis, so "
                "the reader cannot check that the design was fixed before the results were seen.",
                "warning",
            )
        )
        blocks.append(KeyValue((("Plan SHA-256", plan.sha256),), title="Analysis plan"))
        return blocks
    unregistered = plan.unregistered_deviations
    match = {
        True: "yes",
        False: "no: the plan analysed differs from the registered one",
        None: "not checked",
    }[plan.matches_registered]
    blocks.append(
        KeyValue(
            (
                ("Plan SHA-256", plan.sha256),
                ("Registered version", str(plan.version) if plan.version else NA),
                ("Registered at", plan.registered_at or NA),
                ("Analysed plan matches the registered plan", match),
            ),
            title="Analysis plan",
        )
    )
    if unregistered:
        n = len(unregistered)
        keys = join_words([d.key for d in unregistered])
        blocks.append(
            Notice(
                f"Unregistered {'deviations' if n > 1 else 'deviation'}: the plan analysed "
                f"differs from registered version {plan.version or NA} in {plural(n, 'key')} "
                f"({keys}), and no amendment registered the change. "
                "The results below follow the plan analysed, not the registered one; read "
                "them as exploratory where these changes matter.",
                "warning",
            )
        )
        blocks.append(
            Table(
                ctx.uid("unregistered-deviations"),
                "Unregistered deviations from the registered plan",
                ("Plan key", "Registered value", "Analysed value", "Status"),
                tuple(
                    (
                        d.key,
                        _plan_value(d.registered, d.registered_set),
                        _plan_value(d.analysed, d.analysed_set),
                        "unregistered deviation",
                    )
                    for d in unregistered
                ),
            )
        )
    elif plan.matches_registered is False:
        blocks.append(
            Notice(
                "Unregistered deviation: the plan analysed differs from the registered one, "
                "but the keys that differ were not recorded with this evaluation.",
                "warning",
            )
        )
    if plan.deviations:
        rows = tuple(
            (
                d.item,
                d.at,
                d.reason or "",
                "after" if d.data_seen else "before",
                "registered deviation",
            )
            for d in plan.deviations
        )
        blocks.append(
            Table(
                ctx.uid("deviations"),
                "Registered deviations from the plan (amendments)",
                (
                    "What changed",
                    "When",
                    "Why",
                    "Before or after outcome data were seen",
                    "Status",
                ),
                rows,
            )
        )
    elif not unregistered and plan.matches_registered is not False:
        blocks.append(Paragraph("There are no deviations from the registered plan."))
    elif unregistered:
        blocks.append(Paragraph("No amendment of the plan has been registered."))
    return blocks


def _data(ctx: _Ctx) -> list[Block]:
    data = ctx.data
    flow = data.flow()
    blocks: list[Block] = [
        Paragraph(microdata_sentence(ctx.source, data, ctx.unit_word, ctx.units_word))
        if data.layout == "microdata"
        else Paragraph(
            f"Source: {ctx.source}. The data hold {fmt_int(data.rows)} rows for "
            f"{plural(data.units, ctx.unit_word, ctx.units_word)} over {plural(data.periods, 'period')}, "
            f"from {data.first_period} to {data.last_period} "
            f"({'one row per ' + ctx.unit_word + ' and period' if data.layout == 'panel' else 'repeated cross-sections within ' + ctx.units_word})."
        )
    ]
    excluded, dropped = flow.excluded, flow.dropped_no_outcome
    n_tr, n_co = flow.treated, flow.comparison
    stages = [
        ("In the data", fmt_int(flow.in_data), ctx.units_word),
        ("Eligible", fmt_int(flow.eligible), ctx.units_word),
        ("Excluded", fmt_int(len(excluded)), flow.excluded_reason or "by the plan"),
        ("No outcome data", fmt_int(len(dropped)), "dropped"),
        ("Pilot", fmt_int(n_tr), "treated"),
        ("Comparison", fmt_int(n_co), "not treated"),
        ("Analysed", fmt_int(flow.analysed), ctx.units_word),
    ]
    fid = ctx.uid("unit-flow")
    title = f"{fmt_int(flow.analysed)} {ctx.units_word} analysed: {fmt_int(n_tr)} pilot and {fmt_int(n_co)} comparison"
    desc = "; ".join(f"{h}: {c}" for h, c, _ in stages)
    table = Table(
        fid + "-data",
        "Unit flow: how many units at each stage",
        ("Stage", "Units", "Note"),
        tuple((h, c, n) for h, c, n in stages),
        numeric=(False, True, False),
    )
    removed = (
        "Removed",
        fmt_int(len(excluded) + len(dropped)),
        f"{len(excluded)} excluded, {len(dropped)} no data",
    )
    blocks.append(
        Figure(
            fid,
            title,
            f"Units from the data to the analysis, {data.first_period} to {data.last_period}",
            charts.unit_flow_diagram(
                fid,
                title,
                desc,
                [stages[:1], stages[1:2], stages[4:6], stages[6:]],
                side=(1, removed),
            ),
            desc,
            table,
            f"Source: {ctx.source}",
        )
    )
    if excluded:
        reason = flow.excluded_reason or "excluded by the analysis plan"
        blocks.append(
            Paragraph(f"Excluded before analysis ({reason}): {', '.join(map(str, excluded))}.")
        )
    if dropped:
        blocks.append(
            Paragraph(f"Dropped because they have no outcome data: {', '.join(map(str, dropped))}.")
        )
    blocks.append(Heading("Missing data", ctx.uid("missing")))
    if data.missing:
        labels = {o.column: o.label for o in ctx.ev.outcomes}
        rows = tuple(
            (
                labels.get(m.outcome, m.outcome),
                fmt_int(m.n_missing),
                fmt_int(m.n_total),
                fmt_pct(m.n_missing / m.n_total) if m.n_total else NA,
                ctx.plain(m.sentence()),
            )
            for m in data.missing
        )
        gaps = [r for r, m in zip(rows, data.missing, strict=True) if m.n_missing]
        blocks.append(
            Paragraph(
                "No outcome values are missing."
                if not gaps
                else "Missing outcome values: "
                + "; ".join(f"{r[0]}: {r[1]} of {r[2]} ({r[3]})" for r in gaps)
                + "."
            )
        )
        ctx.to_annex(
            "annex-data",
            Table(
                ctx.uid("missing-data"),
                "Missing outcome values",
                ("Outcome", "Missing", "Total", "Share", "Where"),
                rows,
                numeric=(False, True, True, True, False),
            ),
        )
        blocks.append(SeeAlso("Missing values by outcome: see the technical annex.", "#annex-data"))
    else:
        blocks.append(Paragraph("No information on missing values was recorded."))
    blocks.append(
        Paragraph(
            "The panel is balanced: every unit is observed in every period."
            if data.balanced
            else "The panel is unbalanced: not every unit is observed in every period; the "
            "estimators use the observed unit-periods."
        )
    )
    return blocks


def _design(ctx: _Ctx) -> list[Block]:
    ev, spec = ctx.ev, ctx.spec
    comp = getattr(spec.treatment, "comparison", "never_treated")
    if _synthetic(ev.estimator.name):
        comp_txt = (
            "The comparison is a weighted average of untreated units (donors) chosen to track "
            "the pilot area(s) before the start."
        )
    elif isinstance(comp, list):
        comp_txt = f"The comparison group is the {len(comp)} units listed in the pilot file."
    elif comp == "not_yet_treated":
        comp_txt = (
            f"The comparison group is {ctx.units_word} never treated or not yet treated at each "
            "period."
        )
    else:
        comp_txt = f"The comparison group is the {ctx.units_word} never treated during the data."
    cov = list(spec.design.covariates)
    blocks: list[Block] = [
        KeyValue(
            (
                ("Estimator", catalogue.title(ev.estimator.name)),
                ("Inference", INFERENCE_NAMES.get(ev.inference.name, ev.inference.name)),
                ("Confidence level", ctx.level),
                ("Multiple testing", _mt_name(ev.multiple_testing)),
                ("Covariates", ", ".join(cov) if cov else "none"),
                ("Anticipation", plural(int(spec.treatment.anticipation), "period")),
            ),
            title="Design choices",
        ),
        Heading("Why this estimator", ctx.uid("why-estimator")),
        Paragraph(ctx.plain(ev.estimator.reason)),
        Heading("Why this inference", ctx.uid("why-inference")),
        Paragraph(ctx.plain(ev.inference.reason)),
        Heading("Comparison group", ctx.uid("comparison-group")),
        Paragraph(comp_txt),
        Heading("Assumptions in plain words", ctx.uid("assumptions")),
        ListBlock(tuple(_assumptions(ctx))),
    ]
    return blocks


def _assumptions(ctx: _Ctx) -> list[str]:
    name = ctx.ev.estimator.name
    out = []
    if _synthetic(name):
        out.append(
            "Without the pilot, the pilot area(s) would have continued to move with the "
            "weighted combination of comparison areas that matched them before the start."
        )
    else:
        out.append(
            f"Parallel trends: without the pilot, pilot {ctx.units_word} would have changed by "
            f"the same amount as {ctx.comparison_phrase}."
        )
    out.append(
        f"No spill-overs: the pilot did not change outcomes in the comparison {ctx.units_word}."
    )
    out.append(
        "No anticipation beyond the periods stated: outcomes did not change before the start "
        "because people expected the pilot."
    )
    out.append(
        f"Nothing else that affects the outcomes changed at the same time only in the pilot "
        f"{ctx.units_word}."
    )
    caps = _caps(name)
    entry = catalogue.entries().get(name)
    out.extend(entry.assumptions if entry is not None else ())  # the estimator's own
    if ctx.data.staggered or (caps is not None and caps.staggered and not caps.synthetic):
        out.append(
            "Areas that joined at different times are compared only with areas not (yet) "
            "treated, so early joiners never serve as a comparison for late ones."
        )
    out += design_assumptions(caps, ctx.units_word)
    return out


# --------------------------------------------------------------------------- results
def _mt_note(ctx: _Ctx) -> str:
    n_primary = sum(1 for o in ctx.ev.outcomes if o.primary)
    if n_primary <= 1:
        return "With one primary outcome, its p-value needs no adjustment for multiple testing."
    if ctx.ev.multiple_testing == "none":
        return "No adjustment for testing several primary outcomes was planned."
    return (
        f"Adjusted p-values use {_mt_name(ctx.ev.multiple_testing)} across the "
        f"{n_primary} primary outcomes."
    )


def _estimates_table(ctx: _Ctx) -> Table:
    rows = []
    for o in ctx.ev.outcomes:
        r, d = o.result, ctx.decimals[o.column]
        rows.append(
            (
                o.label + (" (primary)" if o.primary else ""),
                fmt_num(r.estimate, d),
                fmt_ci(r.ci_lower, r.ci_upper, d),
                fmt_p(r.p_value),
                fmt_p(o.p_value_adjusted) if o.primary else "not adjusted",
                fmt_pct(o.relative_effect, 1, signed=True),
                fmt_num(o.baseline_mean, d),
                f"{fmt_int(r.n_units)} ({fmt_int(r.n_treated_units)}) / {fmt_int(r.n_periods)}",
            )
        )
    return Table(
        ctx.uid("estimates"),
        f"Estimated effects of the pilot ({ctx.level} confidence intervals)",
        (
            "Outcome",
            "Estimate",
            f"{ctx.level} CI",
            "p-value",
            "Adjusted p-value",
            "Relative effect",
            "Pre-pilot mean",
            "Units (pilot) / periods",
        ),
        tuple(rows),
        numeric=(False, *([True] * 7)),
        note="Relative effect = estimate / pre-pilot mean of the pilot units. " + _mt_note(ctx),
        full=full_table(ctx.ev.tidy()),
    )


def _forest(ctx: _Ctx) -> Figure:
    outs = list(ctx.ev.outcomes)
    use_rel = all(is_number(o.baseline_mean) and o.baseline_mean != 0 for o in outs)
    est, lo, hi, vlab = [], [], [], []
    rows = []
    for o in outs:
        r, d = o.result, ctx.decimals[o.column]
        if use_rel:
            b = abs(o.baseline_mean)
            e_, l_, h_ = 100 * r.estimate / b, 100 * r.ci_lower / b, 100 * r.ci_upper / b
            txt = f"{fmt_num(e_, 1)}% ({fmt_ci(l_, h_, 1)})"
            rows.append((o.label, fmt_num(e_, 1), fmt_num(l_, 1), fmt_num(h_, 1)))
        else:
            e_, l_, h_ = r.estimate, r.ci_lower, r.ci_upper
            txt = f"{fmt_num(e_, d)} ({fmt_ci(l_, h_, d)})"
            rows.append((o.label, fmt_num(e_, d), fmt_num(l_, d), fmt_num(h_, d)))
        est.append(e_)
        lo.append(l_)
        hi.append(h_)
        vlab.append(txt)
    n_clear = sum(1 for o in outs if o.improved is not None)
    title = (
        f"{n_clear} of {len(outs)} outcomes changed clearly after the pilot started"
        if len(outs) > 1
        else (f"{outs[0].label}: " + ("a clear change" if n_clear else "no clear change"))
    )
    unit = "% of the pre-pilot mean" if use_rel else "outcome units"
    sub = f"Effect on each outcome ({unit}) with {ctx.level} confidence intervals, {ctx.data.first_period} to {ctx.data.last_period}"
    fid = ctx.uid("forest")
    desc = "; ".join(f"{o.label}: {v}" for o, v in zip(outs, vlab, strict=True))
    table = Table(
        fid + "-data",
        f"Effects by outcome ({unit})",
        ("Outcome", "Estimate", "CI lower", "CI upper"),
        tuple(rows),
        numeric=(False, True, True, True),
    )
    svg = charts.forest_plot(
        fid,
        title,
        desc,
        [o.label for o in outs],
        est,
        lo,
        hi,
        value_labels=vlab,
        x_label=f"Effect ({unit}); 0 = no change",
    )
    return Figure(fid, title, sub, svg, desc, table, f"Source: {ctx.source}; pilotlab analysis")


def _trend_figure(ctx: _Ctx, o: OutcomeEvaluation) -> Figure:
    r, d = o.result, ctx.decimals[o.column]
    synth = _synthetic_path(r.synthetic)
    labels = list(ctx.data.period_labels)
    if synth is not None:
        periods = [str(p) for p in synth["period"]] if "period" in synth else labels
        a = [float(x) for x in synth["treated"]]
        b = [float(x) for x in synth["synthetic"]]
        names = ("Pilot", "Synthetic")
    else:
        t = o.trends
        periods = [str(p) for p in t["period"]]
        a = [float(x) for x in t["treated"]]
        b = [float(x) for x in t["comparison"]]
        names = ("Pilot", "Comparison")
    start_idx = periods.index(ctx.start) if ctx.start in periods else None
    fid = ctx.uid(f"trend-{o.column}")
    if o.improved is None:
        title = f"{o.label}: no clear difference between pilot and comparison after the start"
    else:
        verb = "fell" if r.estimate < 0 else "rose"
        title = (
            f"{o.label} {verb} in the pilot "
            f"{ctx.unit_word if r.n_treated_units == 1 else ctx.units_word} "
            "relative to the comparison after the start"
        )
    units = ctx.outcome_units.get(o.column, "")
    sub = (
        f"Mean by period{' (' + units + ')' if units else ''}, "
        f"{r.n_treated_units} pilot and {ctx.data.flow().comparison} "
        f"comparison {ctx.units_word}, {periods[0]} to {periods[-1]}"
    )
    marker = f"Pilot starts {ctx.start}" if not ctx.data.staggered else f"First starts {ctx.start}"
    desc = (
        f"Line chart of {o.label} over {len(periods)} periods for {names[0].lower()} and "
        f"{names[1].lower()}; the pilot starts at {ctx.start}. The table below gives every value."
    )
    svg = charts.line_chart(
        fid,
        title,
        desc,
        periods,
        [charts.Series(names[0], tuple(a)), charts.Series(names[1], tuple(b))],
        y_label=units or o.label,
        marker_at=start_idx,
        marker_label=marker,
        decimals=d,
    )
    table = Table(
        fid + "-data",
        f"{o.label}: mean by period",
        (
            "Period",
            f"{names[0]} {ctx.units_word} (mean)",
            f"{names[1]} comparison (mean)"
            if names[1] == "Synthetic"
            else f"Comparison {ctx.units_word} (mean)",
        ),
        tuple((p, fmt_num(x, d), fmt_num(y, d)) for p, x, y in zip(periods, a, b, strict=True)),
        numeric=(False, True, True),
        full=full_table(
            pd.DataFrame({"period": periods, names[0].lower(): a, names[1].lower(): b})
        ),
    )
    return Figure(fid, title, sub, svg, desc, table, f"Source: {ctx.source}")


def _pretrend_text(r: EffectResult) -> str:
    pt = r.pre_trend
    if pt is None or not is_number(pt.p_value):
        return "no pre-trend test available"
    name = pt.test.lower()
    p = fmt_p(pt.p_value)
    p_txt = f"p {'< 0.001' if p == '<0.001' else '= ' + p}"
    reference = getattr(pt, "reference", "chi2")
    df2 = getattr(pt, "df_denom", None)
    if reference == "F" and df2 and is_number(pt.statistic):
        # Hotelling T² F approximation: F = W (G - q) / (q (G - 1)) with G = df2 + q
        f_stat = pt.statistic * df2 / (pt.df * (df2 + pt.df - 1))
        return f"pre-trend test F({pt.df}, {fmt_num(df2, 0)}) = {fmt_num(f_stat, 2)}, {p_txt}"
    if reference == "randomization":
        return f"randomisation pre-trend test of {pt.df} leads, {p_txt}"
    stat = "χ²" if ("wald" in name or "chi" in name) else pt.test
    return f"pre-trend test {stat}({pt.df}) = {fmt_num(pt.statistic, 2)}, {p_txt}"


def _event_figure(ctx: _Ctx, o: OutcomeEvaluation) -> Figure | None:
    r, d = o.result, ctx.decimals[o.column]
    es = [e for e in r.event_study]
    if not es:
        return None
    et = [e.event_time for e in es]
    band_lo = band_hi = None
    dyn = r.staggered.dynamic.frame if r.staggered is not None else None
    if isinstance(dyn, pd.DataFrame) and {"uniform_lower", "uniform_upper", "event_time"} <= set(
        dyn.columns
    ):
        m = dict(
            zip(
                dyn["event_time"].astype(int),
                zip(dyn["uniform_lower"], dyn["uniform_upper"], strict=True),
                strict=True,
            )
        )
        band_lo = [float(m.get(e, (math.nan, math.nan))[0]) for e in et]
        band_hi = [float(m.get(e, (math.nan, math.nan))[1]) for e in et]
    fid = ctx.uid(f"event-{o.column}")
    pt = r.pre_trend
    test = f" ({_pretest_words(pt).split(' of ')[0]})" if pt is not None else ""
    if pt is None or not is_number(pt.p_value):
        title = f"{o.label}: effect by period relative to the start"
    elif pt.p_value >= r.alpha:
        title = f"{o.label}: no evidence of different trends before the start{test}"
    else:
        title = f"{o.label}: pilot and comparison were already diverging before the start{test}"
    invalid = event_interval_validity(r, ctx.data.treated_clusters)
    refs = [e.event_time for e in es if e.reference]
    if refs:
        ref_txt = f"period {fmt_num(refs[0], 0)} is the reference, set to 0"
    elif r.staggered is not None and r.staggered.base_period == "varying":
        ref_txt = (
            "varying base period: each period before the start is compared with the one "
            "before it, so period −1 is estimated, not fixed at 0"
        )
    else:
        ref_txt = "no period is fixed at 0"
    invalid_pl = invalid.replace("interval,", "intervals,")
    iv_txt = f"grey dashed lines: {invalid_pl} (too narrow)" if invalid else f"{ctx.level} CIs"
    sub = (
        f"Estimated effect by period relative to the start; {iv_txt}; "
        f"{ref_txt}{'; shaded: uniform band' if band_lo else ''}; {_pretrend_text(r)}"
    )
    desc = (
        f"Event-study chart of {len(et)} periods from {et[0]} to {et[-1]}: hollow circles before "
        "the start, filled squares after, with vertical lines for the intervals"
        + (f" ({invalid})" if invalid else "")
        + ". "
        + _pretrend_text(r).capitalize()
        + "."
    )
    notice = ""
    if invalid:
        notice = (
            f"The period-by-period intervals in this chart and its table are {invalid_pl}: "
            "they are too narrow and are shown greyed, for information only. The overall "
            f"p-value and interval come from {INFERENCE_NAMES.get(r.inference, r.inference)}."
        )
    svg = charts.event_study_chart(
        fid,
        title,
        desc,
        et,
        [e.estimate for e in es],
        [e.ci_lower for e in es],
        [e.ci_upper for e in es],
        band_lower=band_lo,
        band_upper=band_hi,
        decimals=d,
        y_label=ctx.outcome_units.get(o.column, "") or "Effect",
        not_valid=invalid,
    )
    ci_col = f"{ctx.level} interval (not valid)" if invalid else f"{ctx.level} CI"
    se_col = "Standard error (cluster-robust)" if invalid else "Standard error"
    cols = ["Period relative to start", "Estimate", ci_col, se_col]
    rows = []
    classes = []
    for i, e in enumerate(es):
        row = [
            fmt_num(e.event_time, 0) + (" (reference)" if e.reference else ""),
            fmt_num(e.estimate, d),
            "reference (set to 0)"
            if e.reference
            else fmt_ci(e.ci_lower, e.ci_upper, d) + (" (not valid)" if invalid else ""),
            "" if e.reference else fmt_num(e.std_error, d + 1),
        ]
        classes.append("not-valid" if invalid and not e.reference else "")
        if band_lo is not None and band_hi is not None:
            row.append(fmt_ci(band_lo[i], band_hi[i], d))
        rows.append(tuple(row))
    if band_lo is not None:
        cols.append("Uniform band")
    table = Table(
        fid + "-data",
        f"{o.label}: effect by period relative to the start",
        tuple(cols),
        tuple(rows),
        numeric=(False, *([True] * (len(cols) - 1))),
        row_classes=tuple(classes),
        note=f"Intervals marked not valid: {invalid_pl}; too narrow, for information only."
        if invalid
        else "",
        full=full_table(
            r.event_study_frame().assign(
                **(
                    {"uniform_lower": band_lo, "uniform_upper": band_hi}
                    if band_lo is not None and band_hi is not None
                    else {}
                )
            )
        ),
    )
    return Figure(
        fid, title, sub, svg, desc, table, f"Source: {ctx.source}; pilotlab analysis", notice
    )


def _frame_table(
    ctx: _Ctx, base: str, caption: str, df: pd.DataFrame, d: int, max_rows: int = 400
) -> Table:
    cols = [str(c) for c in df.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        for c in df.columns
    ]
    rows = []
    for rec in df.head(max_rows).itertuples(index=False):
        rows.append(
            tuple(
                (fmt_num(v, d) if isinstance(v, float | np.floating) else fmt_int(v))
                if num and is_number(float(v))
                else as_text(v)
                for v, num in zip(rec, numeric, strict=True)
            )
        )
    note = (
        f"First {max_rows} of {len(df)} rows; all rows are in the CSV."
        if len(df) > max_rows
        else ""
    )
    return Table(
        ctx.uid(base),
        caption,
        tuple(c.replace("_", " ") for c in cols),
        tuple(rows),
        numeric=tuple(numeric),
        full=full_table(df),
        note=note,
    )


def _frame_of(table: PartTable | None, *columns: str) -> pd.DataFrame | None:
    """The table as a DataFrame when it is present and has ``columns``."""
    if table is None or not set(columns) <= set(table.columns):
        return None
    return table.frame


def _synthetic_path(syn: SyntheticTables | None) -> pd.DataFrame | None:
    """The treated vs synthetic path (first cohort when there are several)."""
    if syn is None or syn.paths is None or not {"treated", "synthetic"} <= set(syn.paths.columns):
        return None
    return syn.first_path()


def _synthetic_blocks(ctx: _Ctx, o: OutcomeEvaluation) -> list[Block]:
    r, d = o.result, ctx.decimals[o.column]
    syn = r.synthetic
    blocks: list[Block] = []
    w = _frame_of(syn.weights, "unit", "weight") if syn is not None else None
    if not _synthetic(ctx.ev.estimator.name) and w is None:
        return blocks
    who = ctx.unit_word if r.n_treated_units == 1 else ctx.units_word
    rmspe = syn.pre_rmspe if syn is not None else None
    if syn is not None and syn.fit_sentence:
        blocks.append(Paragraph(syn.fit_sentence))
    elif is_number(rmspe):
        blocks.append(
            Paragraph(
                f"Before the start, the synthetic comparison tracks the pilot {who} to within "
                f"{fmt_num(rmspe, d)} on average (root mean squared prediction error)."
            )
        )
    if w is not None:
        w = w.assign(weight=w["weight"].astype(float)).sort_values("weight", ascending=False)
        w = w[w["weight"] > 1e-6]
        top = w.head(10)
        fid = ctx.uid(f"donors-{o.column}")
        n_big = int((w["weight"] >= 0.05).sum())
        title = (
            f"{plural(n_big, 'comparison ' + ctx.unit_word, 'comparison ' + ctx.units_word)} "
            f"carry most of the weight ({plural(len(w), 'donor')} in all)"
        )
        desc = "; ".join(
            f"{u}: {fmt_num(x, 3)}" for u, x in zip(top["unit"], top["weight"], strict=True)
        )
        svg = charts.bar_chart(fid, title, desc, [str(u) for u in top["unit"]], list(top["weight"]))
        table = Table(
            fid + "-data",
            f"Donor weights for {o.label} (non-zero, largest first)",
            ("Comparison unit", "Weight"),
            tuple((str(u), fmt_num(x, 3)) for u, x in zip(w["unit"], w["weight"], strict=True)),
            numeric=(False, True),
            full=full_table(w[["unit", "weight"]]),
        )
        blocks.append(
            Figure(
                fid,
                title,
                "Weight of each comparison unit in the synthetic comparison (weights sum to 1); "
                "top 10 shown",
                svg,
                desc,
                table,
                "Source: pilotlab analysis",
            )
        )
    else:
        blocks.append(Paragraph("Donor weights were not reported by the estimator."))
    tw = _frame_of(syn.time_weights, "period", "weight") if syn is not None else None
    if tw is not None:
        blocks.append(
            _frame_table(
                ctx, f"time-weights-{o.column}", f"Pre-period time weights for {o.label}", tw, 3
            )
        )
    pl = _frame_of(syn.placebo, "estimate") if syn is not None else None
    if pl is not None and len(pl) > 1:
        is_t = (
            pl["treated"].astype(bool)
            if "treated" in pl.columns
            else pd.Series(False, index=pl.index)
        )
        plac = [float(x) for x in pl.loc[~is_t, "estimate"]]
        fid = ctx.uid(f"placebo-{o.column}")
        n_larger = sum(1 for x in plac if abs(x) >= abs(r.estimate))
        title = (
            f"{plural(n_larger, 'placebo estimate')} of {len(plac)} "
            f"{'is' if n_larger == 1 else 'are'} as large as the pilot's"
        )
        desc = (
            f"Estimates from {len(plac)} placebo runs that treat comparison units as if they were "
            f"pilots; the pilot's estimate is {fmt_num(r.estimate, d)}."
        )
        svg = charts.placebo_chart(
            fid,
            title,
            desc,
            plac,
            r.estimate,
            f"Pilot: {fmt_num(r.estimate, d)}",
            x_label=f"Estimated effect on {o.label}",
        )
        cols = [c for c in ("unit", "estimate", "draws") if c in pl.columns]
        tab = pl[cols].assign(role=["pilot" if t else "placebo" for t in is_t])
        table = _frame_table(ctx, fid + "-data", f"Placebo estimates for {o.label}", tab, d)
        blocks.append(
            Figure(
                fid,
                title,
                f"Placebo-in-space distribution of the {o.label} effect, {ctx.data.first_period} "
                f"to {ctx.data.last_period}",
                svg,
                desc,
                table,
                "Source: pilotlab analysis",
            )
        )
    return blocks


def _staggered_blocks(ctx: _Ctx, o: OutcomeEvaluation) -> list[Block]:
    r, d = o.result, ctx.decimals[o.column]
    st = r.staggered
    blocks: list[Block] = []
    invalid = event_interval_validity(r, ctx.data.treated_clusters)
    ci_head = f"{ctx.level} interval ({invalid})" if invalid else f"{ctx.level} CI"
    agg = st.aggregations.frame if st is not None else None
    if agg is not None:
        blocks.append(
            Heading(f"{o.label}: summaries of the group-time effects", ctx.uid(f"agg-{o.column}"))
        )
        rows = tuple(
            (
                str(a.type),
                fmt_num(a.estimate, d),
                fmt_ci(a.ci_lower, a.ci_upper, d) + (" (not valid)" if invalid else ""),
                fmt_num(a.std_error, d + 1),
            )
            for a in agg.itertuples()
        )
        blocks.append(
            Table(
                ctx.uid(f"aggregations-{o.column}"),
                f"{o.label}: aggregated effects",
                ("Aggregation", "Estimate", ci_head, "Standard error"),
                rows,
                numeric=(False, True, True, True),
                row_classes=tuple("not-valid" if invalid else "" for _ in rows),
                full=full_table(agg),
                note="simple: average over all treated unit-periods; dynamic: by time since start; "
                "group: by start cohort; calendar: by period.",
            )
        )
    att = _frame_of(st.att_gt, "group", "time", "att") if st is not None else None
    if att is not None:
        cols = [
            c
            for c in ("group", "time", "event_time", "att", "std_error", "ci_lower", "ci_upper")
            if c in att.columns
        ]
        t = _frame_table(
            ctx,
            f"att-gt-{o.column}",
            f"{o.label}: effect for each start cohort (group) and period (ATT(g,t))"
            + (f"; intervals: {invalid}" if invalid else ""),
            att[cols],
            d,
        )
        if invalid:
            t = Table(
                t.id,
                t.caption,
                t.columns,
                t.rows,
                t.numeric,
                note=t.note,
                row_classes=tuple("not-valid" for _ in t.rows),
                full=t.full,
            )
        blocks.append(t)
    bacon = _bacon_for(ctx, o)
    if bacon is not None:
        blocks.extend(_bacon_blocks(ctx, o, bacon))
    return blocks


def _bacon_for(ctx: _Ctx, o: OutcomeEvaluation) -> BaconDecomposition | None:
    return ctx.ev.diagnostics.goodman_bacon.get(o.column)


def _bacon_blocks(ctx: _Ctx, o: OutcomeEvaluation, bacon: BaconDecomposition) -> list[Block]:
    by_type = bacon.by_type
    if not {"type", "weight"} <= set(by_type.columns):
        return []
    d = ctx.decimals[o.column]
    forbidden = float(
        by_type.loc[by_type["type"].isin(["later_vs_earlier", "later_vs_always"]), "weight"].sum()
    )
    twfe = bacon.twfe_estimate
    names = {
        "treated_vs_never": "Treated vs never treated",
        "earlier_vs_later": "Earlier vs later treated (later not yet treated)",
        "later_vs_earlier": "Later vs earlier treated (already treated as comparison)",
        "later_vs_always": "Later vs always treated",
    }
    rows = tuple(
        (
            names.get(str(t.type), str(t.type)),
            fmt_num(t.weight, 3),
            fmt_num(getattr(t, "estimate", math.nan), d),
        )
        for t in by_type.itertuples()
    )
    return [
        Heading(
            f"{o.label}: why a simple two-way fixed-effects estimate could mislead",
            ctx.uid(f"bacon-{o.column}"),
        ),
        Paragraph(
            f"The Goodman-Bacon decomposition splits the two-way fixed-effects estimate "
            f"({fmt_num(twfe, d)}) into its comparisons: {fmt_pct(forbidden)} of its weight comes from "
            "comparisons that use already-treated areas as the comparison, which are biased when "
            "effects change over time. The staggered estimator above avoids them."
        ),
        Table(
            ctx.uid(f"goodman-bacon-{o.column}"),
            "Goodman-Bacon decomposition of the TWFE estimate",
            ("Comparison", "Weight", "Estimate"),
            rows,
            numeric=(False, True, True),
            full=full_table(by_type),
        ),
    ]


def _results(ctx: _Ctx) -> list[Block]:
    blocks: list[Block] = [_forest(ctx)]
    ctx.to_annex("annex-estimates", _estimates_table(ctx))
    blocks.append(
        SeeAlso(
            "The table of estimates with p-values and pre-pilot means is in the technical annex.",
            "#annex-estimates",
        )
    )
    for o in ctx.ev.outcomes:
        blocks.append(Heading(o.label, ctx.uid(f"outcome-{o.column}")))
        blocks.append(Paragraph(_headline_text(ctx, o)))
        sensitivity = _sensitivity_text(ctx, o)
        if sensitivity:
            blocks.append(Paragraph(sensitivity))
        blocks.append(_trend_figure(ctx, o))
        pre = _pretrend_sentence(ctx, o)
        power_table = None
        if pre:
            blocks.append(Paragraph(pre))
            power_text, power_table = pretrend_power.describe(
                o.result, o.label, ctx.units_word, ctx.decimals[o.column],
                ctx.outcome_units.get(o.column) or "", ctx.uid(f"pretrend-power-{o.column}"),
            )  # fmt: skip
            if power_text:
                blocks.append(Paragraph(power_text))
        ev_fig = _event_figure(ctx, o)
        if ev_fig is not None:
            ctx.to_annex("annex-events", Heading(o.label, ctx.uid(f"events-{o.column}")), ev_fig)
            blocks.append(
                SeeAlso(
                    f"{o.label}: the effect period by period, before and after the start, is "
                    "charted in the technical annex.",
                    f"#{ev_fig.id}",
                )
            )
        if pre and power_table is not None:  # beside the event study it tests
            ctx.to_annex("annex-events", power_table)
        synth = _synthetic_blocks(ctx, o)
        if synth:
            fit = [b for b in synth if isinstance(b, Paragraph) and "tracks" in b.text]
            blocks.extend(fit[:1])
            ctx.to_annex(
                "annex-synthetic",
                Heading(o.label, ctx.uid(f"synthetic-{o.column}")),
                *[b for b in synth if b not in fit[:1]],
            )
            blocks.append(
                SeeAlso(
                    f"{o.label}: the comparison areas behind the synthetic comparison and the "
                    "placebo runs are in the technical annex.",
                    "#annex-synthetic",
                )
            )
        stag = _staggered_blocks(ctx, o)
        if stag:
            ctx.to_annex("annex-staggered", *stag)
            blocks.append(
                SeeAlso(
                    f"{o.label}: effects for each start date, and why a simpler regression "
                    "could mislead here, are in the technical annex.",
                    "#annex-staggered",
                )
            )
        for w in o.result.warnings:  # placed by the warning's code, never by its wording
            if w.technical:
                ctx.to_annex("annex-notes", Notice(f"{o.label}: {w.message}", "warning"))
            else:
                blocks.append(Notice(w.message, "warning"))
    return blocks


def _pretrend_sentence(ctx: _Ctx, o: OutcomeEvaluation) -> str:
    """The pre-trend finding in words, from the test the result states (as the chart title)."""
    r = o.result
    pt = r.pre_trend
    if pt is None or not is_number(pt.p_value):
        return ""
    p = fmt_p(pt.p_value)
    p_txt = f"p {'< 0.001' if p == '<0.001' else '= ' + p}"
    how = _pretest_words(pt)
    if pt.p_value >= r.alpha:
        return (
            f"Before the start, pilot and comparison {ctx.units_word} moved together: a "
            f"{how} finds no clear difference in their trends ({p_txt})."
        )
    return (
        f"Before the start, pilot and comparison {ctx.units_word} were already moving "
        f"differently ({how}, {p_txt}), so part of the estimate may reflect that difference."
    )


def _pretest_words(pt: PreTrendTest) -> str:
    ref = getattr(pt, "reference", "chi2")
    if ref == "randomization":
        return "randomisation test of the periods before the start"
    return "joint test of the periods before the start"


def _sensitivity_text(ctx: _Ctx, o: OutcomeEvaluation) -> str:
    """What effect this design could detect (analytic MDE), against the plan's smallest effect."""
    m = ctx.ev.diagnostics.design_mde.get(o.column)
    if m is None or not is_number(m.mde):
        return ""
    d, unit = ctx.decimals[o.column], ctx.outcome_units.get(o.column) or ""
    size = with_units(m.mde, d, unit)
    text = (
        f"Design sensitivity: with {fmt_int(m.n_treated)} pilot {plural_word(ctx.unit_word) if m.n_treated != 1 else ctx.unit_word}, "
        f"{fmt_int(m.pre_periods)} periods before and {fmt_int(m.post_periods)} after the start, "
        f"this design would detect an effect of {size} {fmt_pct(m.target_power, 0)} of the time "
        f"(analytic minimum detectable effect at the {ctx.level} level, allowing for serial "
        f"correlation of {fmt_num(m.rho, 2)} estimated from the pre-period)."
    )
    declared = m.declared_mde
    if declared is not None and is_number(declared):
        verdict = "can" if m.mde <= declared else "cannot reliably"
        text += (
            f" The analysis plan's smallest effect that matters is {fmt_num(declared, d)}, which "
            f"this design {verdict} detect."
        )
    return text


def _check_name(check: str) -> str:
    """Reader's name of a check ("alternative_estimators:twfe" -> "Alternative estimator: ...")."""
    base, _, variant = check.partition(":")
    if variant:
        est = catalogue.title(variant)
        return f"{ROBUSTNESS_NAMES.get(base, base.replace('_', ' ')).rstrip('s')}: {est}"
    return ROBUSTNESS_NAMES.get(check, check.replace("_", " "))


def _robustness_row(ctx: _Ctx, o: OutcomeEvaluation, c: RobustnessCheck, d: int) -> tuple[str, ...]:
    agree = {True: "yes", False: "no", None: "not assessed"}[c.consistent]
    base = c.check.partition(":")[0]
    det = c.details
    if base == "placebo_in_space":
        # the quantiles of the placebo estimates, not an interval for the estimate
        interval = (
            f"placebo estimates' middle {ctx.level}: {fmt_ci(c.ci_lower, c.ci_upper, d)}"
            if is_number(c.ci_lower) and is_number(c.ci_upper)
            else NA
        )
        if isinstance(det, PlaceboInSpace) and is_number(det.p_value):
            interval += f"; placebo rank p = {fmt_p(det.p_value)}"
    else:
        interval = fmt_ci(c.ci_lower, c.ci_upper, d)
        if check_interval_invalid(ctx.ev.inference.name, c.inference):
            interval += f" ({_not_valid_reason(ctx.data.treated_clusters)})"
    return (
        o.label,
        _check_name(c.check),
        fmt_num(c.estimate, d),
        interval,
        agree,
        c.description or "",
    )


#: Inferences built for few (treated) clusters; ``auto`` chooses one of them when cluster-robust
#: standard errors would be too narrow.
_FEW_CLUSTER_INFERENCE = frozenset({"wild_bootstrap", "permutation", "placebo", "jackknife"})


def check_interval_invalid(stated: str, used: str | None) -> bool:
    """A robustness check's interval is not valid for the design: the report's inference is one
    built for few clusters, but the check's interval comes from large-sample standard errors
    (cluster-robust, robust or iid), which are too narrow there."""
    return (
        stated in _FEW_CLUSTER_INFERENCE
        and isinstance(used, str)
        and used not in _FEW_CLUSTER_INFERENCE
    )


def _robustness(ctx: _Ctx) -> list[Block]:
    """Main page: what was checked and whether it agrees, in words; the tables in the annex."""
    blocks: list[Block] = []
    rows = []
    plain: list[str] = []
    for o in ctx.ev.outcomes:
        d = ctx.decimals[o.column]
        for c in o.robustness:
            rows.append(_robustness_row(ctx, o, c, d))
            base, _, variant = c.check.partition(":")
            what = PLAIN_CHECK_NAMES.get(base, base.replace("_", " "))
            if variant:
                what += f" ({catalogue.title(variant)})"
            verdict = {
                True: "agrees with the main estimate",
                False: "does not agree with the main estimate",
                None: "could not be assessed",
            }[c.consistent]
            if check_interval_invalid(ctx.ev.inference.name, c.inference):
                verdict += (
                    ", judged with standard errors that are too narrow with so few pilot "
                    f"{ctx.units_word}, so it is only a rough guide"
                )
            cap = what[:1].upper() + what[1:]
            plain.append(f"{cap}: {verdict} ({o.label}).")
    planned = list(ctx.spec.design.robustness)
    if rows:
        n_bad = sum(1 for r in rows if r[4] == "no")
        blocks.append(
            Paragraph(
                f"{plural(len(rows), 'check')} {'was' if len(rows) == 1 else 'were'} run; "
                + (
                    ("it agrees" if len(rows) == 1 else "all agree") + " with the main estimate."
                    if n_bad == 0
                    else f"{n_bad} {'disagrees' if n_bad == 1 else 'disagree'} with the main "
                    "estimate."
                )
            )
        )
        blocks.append(ListBlock(tuple(plain)))
        greyed = tuple(
            "not-valid" if check_interval_invalid(ctx.ev.inference.name, c.inference) else ""
            for o in ctx.ev.outcomes
            for c in o.robustness
        )
        ctx.to_annex(
            "annex-robustness",
            Table(
                ctx.uid("robustness-checks"),
                "Robustness checks and whether they agree with the main estimate",
                ("Outcome", "Check", "Estimate", "Interval", "Agrees", "What it shows"),
                tuple(rows),
                numeric=(False, False, True, True, False, False),
                note=f"Intervals are {ctx.level} confidence intervals of each check's estimate, "
                "except for placebo in space, where the range is that of the placebo estimates "
                "themselves."
                + (
                    " Greyed rows: the check's interval comes from cluster-robust standard "
                    "errors, not from the inference of the main estimate, and is too narrow "
                    "with so few treated clusters."
                    if any(greyed)
                    else ""
                ),
                row_classes=greyed,
            ),
        )
    elif planned:
        blocks.append(
            Paragraph(
                "The plan lists "
                + join_words([c.replace("_", " ") for c in planned])
                + ", but this version of pilotlab did not return their results."
            )
        )
    else:
        blocks.append(Paragraph("No robustness checks were requested in the analysis plan."))
    blocks.append(Heading("If the trends had drifted apart", ctx.uid("honest-did")))
    annex = ctx.annex["annex-robustness"]
    annex.append(
        Heading(
            "Sensitivity to violations of parallel trends (HonestDiD)", ctx.uid("honest-did-annex")
        )
    )
    found = False
    for o in ctx.ev.outcomes:
        for c in o.robustness:
            if c.check != "honest_did":
                continue
            found = True
            det = c.details if isinstance(c.details, HonestDiD) else None
            annex.append(Paragraph(f"{o.label}: {c.description}" if c.description else o.label))
            br = det.breakdown_mbar if det is not None else None
            if br is not None and is_number(br):
                blocks.append(
                    Paragraph(
                        f"{o.label}: if, after the start, pilot and comparison trends drifted "
                        f"apart by {fmt_num(br, 2)} times the largest drift seen before the "
                        "start, that alone could explain the finding."
                        + (
                            " Such a drift is smaller than the one already seen before the "
                            "start, so this finding is fragile."
                            if float(br) < 1
                            else ""
                        )
                    )
                )
            else:
                verdict = {
                    True: "the finding holds",
                    False: "the finding does not hold",
                    None: "this could not be assessed",
                }[c.consistent]
                blocks.append(
                    Paragraph(
                        f"{o.label}: allowing the trends to drift apart after the start by as "
                        f"much as they did before it, {verdict}."
                    )
                )
            if det is None:
                continue
            for key, bounds, what in (
                (
                    "relative_magnitudes",
                    det.relative_magnitudes,
                    "when post-period violations are at most Mbar times the "
                    "largest pre-period one (relative magnitudes)",
                ),
                (
                    "smoothness",
                    det.smoothness,
                    "when the trend difference may change slope by at most M per "
                    "period (smoothness)",
                ),
            ):
                iv = bounds.frame
                if iv.empty:
                    continue
                iv = iv.rename(
                    columns={"bound": "M or Mbar", "lower": "CI lower", "upper": "CI upper"}
                )
                annex.append(
                    _frame_table(
                        ctx,
                        f"honest-did-{key}-{o.column}",
                        f"{o.label}: {ctx.level} confidence intervals {what}",
                        iv,
                        ctx.decimals[o.column],
                    )
                )
    if not found:
        blocks.append(
            Paragraph(
                "Not assessed: this evaluation did not test how far the trends could have "
                "drifted apart before the finding would change."
            )
        )
        annex.pop()
    if ctx.annex["annex-robustness"]:
        blocks.append(
            SeeAlso(
                "Every check's estimate and interval, and the sensitivity tables, are in the "
                "technical annex.",
                "#annex-robustness",
            )
        )
    return blocks


def _evidence(ctx: _Ctx) -> list[Block]:
    es = ctx.ev.evidence_strength
    if es is None:
        return [Paragraph("The strength of the evidence was not assessed.")]
    rows = tuple(
        (
            c.criterion,
            {True: "met", False: "not met", None: "not assessed (counts as not met)"}[c.met],
            c.reason,
        )
        for c in es.criteria
    )
    blocks: list[Block] = [
        Paragraph(
            f"Rubric: {es.rubric}. A criterion that could not be assessed counts as not met, "
            "so leaving a check out never scores higher than running it."
        ),
        # the description names checks by their identifiers; the main page uses plain names
        Notice(ctx.plain(es.description or f"Level {es.level} of 5."), "info"),
        Table(
            ctx.uid("evidence-criteria"),
            "Evidence-strength criteria",
            ("Criterion", "Result", "Reason"),
            rows,
        ),
    ]
    if es.house_rule:
        blocks.append(Paragraph(f"House rule applied: {es.house_rule}"))
    return blocks


def _limitations(ctx: _Ctx) -> list[Block]:
    ev, data = ctx.ev, ctx.data
    items: list[str] = []
    if data.treated_clusters < 10:
        items.append(
            f"Few pilot clusters: only {plural(data.treated_clusters, 'treated cluster')}, so "
            "intervals rest on few independent units and can be too narrow unless the inference "
            "is built for few clusters."
        )
    need = 5 if _synthetic(ev.estimator.name) else 3
    if data.pre_periods < need:
        items.append(
            f"Short pre-period: {plural(data.pre_periods, 'period')} before the start, too few "
            "to check that pilot and comparison moved together beforehand."
        )
    for o in ev.outcomes:
        pt = o.result.pre_trend
        if pt is not None and is_number(pt.p_value) and pt.p_value < o.result.alpha:
            items.append(
                f"{o.label}: the test of the periods before the start fails "
                f"({_pretest_words(pt).split(' of ')[0]}, p = {fmt_p(pt.p_value)}): pilot and "
                "comparison were already moving differently before the start, so the estimate "
                "may partly reflect that difference."
            )
    power = (
        ev.evidence_strength.criterion("power of the pre-trend test")
        if ev.evidence_strength
        else None
    )
    if power is not None and power.met is False:
        items.append(
            "The pre-trend test has low power: passing it would not show that trends were "
            "parallel. " + power.reason
        )
    if not data.balanced:
        items.append(
            "Unbalanced panel: some units are missing in some periods, so the mix of units "
            "differs between periods."
        )
    for m in data.missing:
        if m.n_missing:
            items.append(f"Missing data: {m.sentence()}")
    if data.excluded_units:
        items.append(
            f"{plural(len(data.excluded_units), 'unit')} excluded before analysis; results do not "
            "describe them."
        )
    for o in ev.outcomes:
        bad = [c.check.partition(":")[0] for c in o.robustness if c.consistent is False]
        if bad:
            names = [PLAIN_CHECK_NAMES.get(b, b.replace("_", " ")) for b in dict.fromkeys(bad)]
            items.append(
                f"{o.label}: the check{'s' if len(names) > 1 else ''} of "
                f"{join_words(names)} {'disagree' if len(bad) > 1 else 'disagrees'} with the "
                "main estimate."
            )
    if ev.inference.name in ("iid", "robust"):
        items.append(
            "The standard errors ignore correlation of outcomes within an area over time, so "
            "intervals are likely too narrow."
        )
    primary = [o for o in ev.outcomes if o.primary]
    if len(primary) > 1 and ev.multiple_testing == "none":
        items.append(
            f"{len(primary)} primary outcomes are tested without adjustment for multiple "
            "testing, which raises the chance of a false positive."
        )
    caps = _caps(ev.estimator.name)
    if data.staggered and caps is not None and caps.twfe_coefficient and not caps.staggered:
        items.append(
            "Staggered roll-out estimated by a regression with area and period effects: if "
            "effects change over time the estimate can be biased (see the technical annex)."
        )
    seen: set[tuple[str, str]] = set()
    technical = 0
    for w in (*ev.warnings, *(w for o in ev.outcomes for w in o.result.warnings)):
        if (w.code, w.message) not in seen:
            seen.add((w.code, w.message))
            if w.technical:
                technical += 1
                if w in ev.warnings:
                    ctx.to_annex("annex-notes", Notice(w.message, "warning"))
            else:
                items.append(w.message)
    if technical:
        items.append(
            f"{plural(technical, 'technical warning')} from the estimation "
            f"{'is' if technical == 1 else 'are'} listed in the technical annex."
        )
    if ev.trial is None:
        items.append(
            "Like every non-randomised design, this one cannot rule out that something else "
            f"changed at the same time only in the pilot {ctx.units_word}."
        )
    return [ListBlock(tuple(items))]


def _reproducibility(ctx: _Ctx, table_ids: Sequence[str], evidence_file: str) -> list[Block]:
    ev = ctx.ev
    rows = [
        ("Data file", ctx.data.path),
        ("Data SHA-256", ctx.data.sha256),
        ("Plan SHA-256", ev.plan.sha256),
        ("Random seed", str(ev.seed)),
        ("Command to rerun", ev.command or "not recorded (evaluated from Python)"),
        ("Generated at", ev.generated_at),
    ]
    if ev.plan.registry_head:  # the registry's state when the plan was read: verify --head
        rows.insert(3, ("Registry head (check: pilotlab verify --head)", ev.plan.registry_head))
    rows += [(f"Software: {k}", str(v)) for k, v in ev.software.items()]
    links = [("Evidence record (JSON)", evidence_file)]
    links += [(f"Table: {t}", f"tables/{t}.csv") for t in table_ids]
    return [
        KeyValue(tuple(rows), title="How to reproduce this report"),
        Paragraph("Files written beside this report:"),
        LinkList(tuple(links)),
    ]


def _tables_to_annex(ctx: _Ctx, blocks: list[Block], sid: str) -> list[Block]:
    """Move a section's tables to the annex section ``sid``, leaving a link in their place."""
    out: list[Block] = []
    for b in blocks:
        if isinstance(b, Table):
            ctx.to_annex(sid, b)
            out.append(SeeAlso(f"{b.caption}: see the technical annex.", f"#{sid}"))
        else:
            out.append(b)
    return out


def _glossary() -> list[Block]:
    return [
        Paragraph(
            "The main sections avoid technical terms. This annex uses them; each is explained here."
        ),
        KeyValue(GLOSSARY, title="Terms used in this annex"),
    ]


def _trial_section(ctx: _Ctx) -> list[Block]:
    return trial.trial_blocks(ctx.ev, ctx.uid, ctx.unit_word)


def _cycles_section(ctx: _Ctx) -> list[Block]:
    return trial.cycle_blocks(ctx.ev, ctx.uid)


def build(evaluation: Evaluation, evidence_file: str = "evidence.json") -> ReportDocument:
    """Build the report document of an evaluation.

    Parameters
    ----------
    evaluation : pilotlab.results.Evaluation
        The evaluation to report.
    evidence_file : str
        Relative link to the evidence record written beside the report.

    Returns
    -------
    ReportDocument
        The main sections (:data:`SECTION_TITLES`, findings in plain words) and then the
        technical annex (:data:`ANNEX_TITLES`: glossary, detailed tables, reproducibility).
    """
    ctx = _Ctx(evaluation)
    makers = {
        "headline": _headline,
        "summary": _summary,
        "pilot": _pilot,
        "registration": _registration,
        "data": _data,
        "design": _design,
        "results": _results,
        "robustness": _robustness,
        "evidence": _evidence,
        "limitations": _limitations,
    }
    makers["trial"] = _trial_section
    makers["cycles"] = _cycles_section
    sections = []
    vfm_main, vfm_annex = value_for_money_sections(evaluation)
    for sid, title in trial.section_titles(SECTION_TITLES, evaluation):
        blocks = list(makers[sid](ctx))
        if sid == "evidence":
            blocks = _tables_to_annex(ctx, blocks, "annex-evidence")
            for b in [b for b in blocks if isinstance(b, Paragraph) and find_jargon(b.text)]:
                blocks.remove(b)
                ctx.to_annex("annex-evidence", b)
        if sid == "limitations" and vfm_main is not None:
            sections.append(vfm_main)
        sections.append(Section(sid, title, tuple(blocks)))
    ctx.to_annex("annex-glossary", *_glossary())
    annex: list[Section] = []
    for sid, title in ANNEX_TITLES:
        if sid == "reproducibility":
            continue
        if ctx.annex[sid] or sid in _ALWAYS:
            annex.append(Section(sid, title, tuple(ctx.annex[sid]), part="annex"))
    if vfm_annex is not None:
        annex.append(vfm_annex)
    table_ids = [t.id for s in (*sections, *annex) for t in s.tables()]
    annex.append(
        Section(
            "reproducibility",
            ANNEX_TITLES[-1][1],
            tuple(_reproducibility(ctx, table_ids, evidence_file)),
            part="annex",
        )
    )
    sections.extend(annex)
    spec = evaluation.pilot
    sub_bits = [b for b in (spec.lead, f"{ctx.data.first_period} to {ctx.data.last_period}") if b]
    return ReportDocument(
        title=f"Evaluation of {spec.title}",
        subtitle=" · ".join(sub_bits),
        sections=tuple(sections),
        meta=(("Status", spec.status), ("Pilot id", spec.id)),
        generated_at=evaluation.generated_at,
        pilotlab_version=str(evaluation.software.get("pilotlab", "")),
        evidence_file=evidence_file,
    )
