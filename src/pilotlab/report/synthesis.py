"""The synthesis page (``synthesis.html``): one metric pooled across pilots and published studies.

Main part: what the pooled estimate says, in plain words; a forest plot of every estimate with the
pooled diamond and the prediction interval for a new place (its numbers in a table beside it);
how much places differ; which estimates matter (leave-one-out); subgroups; dropping weaker
designs; cost per outcome across places. Technical annex: the method, the fixed-effect estimate,
the Hartung-Knapp and normal-quantile intervals, and a glossary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pilotlab.report.charts import (
    MUTED,
    PALETTE,
    TEXT,
    _e,
    _f,
    _marker,
    _open,
    _x_axis,
    nice_ticks,
)
from pilotlab.report.format import NA, decimals_for, fmt_ci, fmt_int, fmt_num, fmt_p, fmt_pct
from pilotlab.report.model import (
    Figure,
    FullTable,
    KeyValue,
    ListBlock,
    Notice,
    Paragraph,
    ReportDocument,
    Section,
    Table,
)
from pilotlab.synthesis import GROUPINGS, METHODS, SCALES, Synthesis

__all__ = ["build_synthesis", "synthesis_forest"]


def synthesis_forest(
    fig_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    estimates: Sequence[float],
    lower: Sequence[float],
    upper: Sequence[float],
    weights: Sequence[float],
    pooled: tuple[float, float, float],
    prediction: tuple[float, float] | None,
    *,
    decimals: int = 2,
    x_label: str = "",
    width: int = 720,
) -> str:
    """Forest plot: one row per estimate (square sized by its weight, interval whiskers), the
    pooled estimate as a diamond spanning its interval, and the prediction interval as a dashed
    line; values printed at the right, a zero line."""
    n = len(labels)
    left, right, top, bottom = 240, 190, 16, 46
    row_h = 30
    rows = n + 1 + (1 if prediction else 0)
    height = top + bottom + row_h * rows + 10
    vals = [*lower, *upper, *estimates, pooled[1], pooled[2], 0.0]
    if prediction:
        vals += list(prediction)
    ticks = nice_ticks(min(vals), max(vals))
    x0, x1 = ticks[0], ticks[-1]
    pw = width - left - right

    def sx(v: float) -> float:
        return left + pw * (v - x0) / ((x1 - x0) or 1)

    parts = _open(fig_id, title, desc, width, height)
    base = top + row_h * rows + 10
    _x_axis(parts, ticks, sx, top, base, zero_line=True)
    wmax = max(weights) if weights else 1.0

    def label(i: int, y: float, text: str, value: str, bold: bool = False) -> None:
        short = text if len(text) <= 36 else text[:35] + "…"
        weight = ' font-weight="bold"' if bold else ""
        parts.append(f'<text x="8" y="{_f(y + 4)}" fill="{TEXT}"{weight}>{_e(short)}</text>')
        parts.append(
            f'<text x="{_f(left + pw + 10)}" y="{_f(y + 4)}" fill="{TEXT}"{weight}>{_e(value)}</text>'
        )

    for i in range(n):
        y = top + row_h * (i + 0.5)
        parts.append(
            f'<line x1="{_f(sx(lower[i]))}" x2="{_f(sx(upper[i]))}" y1="{_f(y)}" y2="{_f(y)}" '
            f'stroke="{PALETTE[0]}" stroke-width="2"/>'
        )
        r = 3 + 5 * math.sqrt(max(weights[i], 0.0) / (wmax or 1))
        parts.append(_marker("square", sx(estimates[i]), y, PALETTE[0], r=r))
        label(
            i,
            y,
            labels[i],
            f"{fmt_num(estimates[i], decimals)} ({fmt_ci(lower[i], upper[i], decimals)})",
        )
    # the pooled diamond
    y = top + row_h * (n + 0.5) + 10
    parts.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{_f(y - row_h / 2)}" y2="{_f(y - row_h / 2)}" '
        f'stroke="{MUTED}"/>'
    )
    est, lo, hi = pooled
    pts = f"{_f(sx(lo))},{_f(y)} {_f(sx(est))},{_f(y - 8)} {_f(sx(hi))},{_f(y)} {_f(sx(est))},{_f(y + 8)}"
    parts.append(f'<polygon points="{pts}" fill="{PALETTE[1]}" stroke="{PALETTE[1]}"/>')
    label(
        n,
        y,
        "Pooled (random effects)",
        f"{fmt_num(est, decimals)} ({fmt_ci(lo, hi, decimals)})",
        True,
    )
    if prediction:
        y2 = y + row_h
        plo, phi = prediction
        parts.append(
            f'<line x1="{_f(sx(plo))}" x2="{_f(sx(phi))}" y1="{_f(y2)}" y2="{_f(y2)}" '
            f'stroke="{PALETTE[1]}" stroke-width="2" stroke-dasharray="6 4"/>'
        )
        for xv in (plo, phi):
            parts.append(
                f'<line x1="{_f(sx(xv))}" x2="{_f(sx(xv))}" y1="{_f(y2 - 5)}" y2="{_f(y2 + 5)}" '
                f'stroke="{PALETTE[1]}" stroke-width="2"/>'
            )
        label(n + 1, y2, "Prediction for a new place", fmt_ci(plo, phi, decimals))
    if x_label:
        parts.append(
            f'<text x="{_f(left + pw / 2)}" y="{_f(height - 6)}" text-anchor="middle" '
            f'fill="{MUTED}">{_e(x_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _direction(s: Synthesis, value: float) -> str:
    better = s.metric_info.better if s.metric_info is not None else None
    if better is None:
        return "an increase" if value > 0 else "a decrease"
    good = (value < 0) == (better == "lower")
    return f"{'an improvement' if good else 'a worsening'} ({better} is better)"


def _headline(s: Synthesis, d: int) -> list[Any]:
    p = s.pooled
    unit = s.unit
    name = s.metric_info.name if s.metric_info is not None else s.metric
    clear = p.ci_lower > 0 or p.ci_upper < 0
    hk_clear = p.hk_ci_lower > 0 or p.hk_ci_upper < 0
    text = (
        f"Across {p.k} estimates of {name}, the average effect is {fmt_num(p.estimate, d)} "
        f"(in {unit}): {_direction(s, p.estimate)}. The usual 95% confidence interval runs from "
        f"{fmt_ci(p.ci_lower, p.ci_upper, d)}; the Hartung-Knapp interval, which allows for "
        f"the uncertainty in how much places differ, from {fmt_ci(p.hk_ci_lower, p.hk_ci_upper, d)}."
    )
    if clear and hk_clear:
        verdict = "Both intervals exclude no change: the pooled evidence shows an effect."
    elif clear:
        verdict = (
            "The usual interval excludes no change but the Hartung-Knapp interval does not: "
            "the evidence of an average effect is not secure."
        )
    else:
        verdict = "The interval includes no change: the pooled evidence does not show an effect."
    blocks: list[Any] = [Paragraph(text), Paragraph(verdict)]
    if p.prediction_lower is not None and p.prediction_upper is not None:
        blocks.append(
            Paragraph(
                f"In a new place like these, the effect could plausibly be anywhere from "
                f"{fmt_ci(p.prediction_lower, p.prediction_upper, d)} (95% prediction interval). "
                + (
                    "That range includes no change or the opposite effect: the pilots do not "
                    "say it would work everywhere."
                    if p.prediction_lower <= 0 <= p.prediction_upper
                    else "That range excludes no change."
                )
            )
        )
    if s.few_studies:
        blocks.append(Notice(s.few_studies, "warning"))
    for n in s.notes:
        blocks.append(Notice(n, "warning"))
    return blocks


def _studies_table(s: Synthesis, d: int) -> Table:
    rows, full = [], []
    for st, w in zip(s.studies, s.pooled.weights, strict=True):
        lo, hi = (
            st.estimate - 1.959963984540054 * st.std_error,
            st.estimate + 1.959963984540054 * st.std_error,
        )
        rows.append(
            (
                st.label,
                st.origin,
                fmt_num(st.estimate, d),
                fmt_ci(lo, hi, d),
                fmt_pct(w / 100, 1),
                st.policy_area or NA,
                st.design or NA,
                f"Level {st.evidence_level}" if st.evidence_level else "not assessed",
            )
        )
        full.append(
            (
                st.id,
                st.label,
                st.origin,
                st.estimate,
                st.std_error,
                lo,
                hi,
                w,
                st.policy_area,
                st.design,
                st.evidence_level,
                st.source,
            )
        )
    return Table(
        "synthesis-studies",
        "Estimates pooled",
        (
            "Estimate",
            "From",
            "Effect",
            "95% CI",
            "Weight",
            "Policy area",
            "Design",
            "Evidence level",
        ),
        tuple(rows),
        numeric=(False, False, True, True, True, False, False, False),
        full=FullTable(
            (
                "id",
                "label",
                "origin",
                "estimate",
                "std_error",
                "ci_lower",
                "ci_upper",
                "weight_percent",
                "policy_area",
                "design",
                "evidence_level",
                "source",
            ),
            tuple(full),
        ),
    )


def _forest(s: Synthesis, d: int) -> Figure:
    p = s.pooled
    z = 1.959963984540054
    labels = [st.label for st in s.studies]
    est = [st.estimate for st in s.studies]
    lo = [st.estimate - z * st.std_error for st in s.studies]
    hi = [st.estimate + z * st.std_error for st in s.studies]
    pred = (
        (p.prediction_lower, p.prediction_upper)
        if p.prediction_lower is not None and p.prediction_upper is not None
        else None
    )
    title = (
        f"Pooled effect {fmt_num(p.estimate, d)} ({fmt_ci(p.ci_lower, p.ci_upper, d)}) "
        f"across {p.k} estimates"
    )
    desc = (
        "; ".join(
            f"{a}: {fmt_num(b, d)} ({fmt_ci(c, e, d)})"
            for a, b, c, e in zip(labels, est, lo, hi, strict=True)
        )
        + f"; pooled {fmt_num(p.estimate, d)} ({fmt_ci(p.ci_lower, p.ci_upper, d)})"
        + (f"; prediction for a new place {fmt_ci(pred[0], pred[1], d)}" if pred else "")
    )
    svg = synthesis_forest(
        "synthesis-forest",
        title,
        desc,
        labels,
        est,
        lo,
        hi,
        list(p.weights),
        (p.estimate, p.ci_lower, p.ci_upper),
        pred,
        decimals=d,
        x_label=f"Effect ({s.unit}); 0 = no change",
    )
    rows = [
        (a, fmt_num(b, d), fmt_num(c, d), fmt_num(e, d), fmt_pct(w / 100, 1))
        for a, b, c, e, w in zip(labels, est, lo, hi, p.weights, strict=True)
    ]
    rows.append(
        (
            "Pooled (random effects)",
            fmt_num(p.estimate, d),
            fmt_num(p.ci_lower, d),
            fmt_num(p.ci_upper, d),
            "100.0%",
        )
    )
    if pred:
        rows.append(
            ("Prediction for a new place", NA, fmt_num(pred[0], d), fmt_num(pred[1], d), NA)
        )
    table = Table(
        "synthesis-forest-data",
        f"Estimates, pooled effect and prediction interval ({s.unit})",
        ("Estimate", "Effect", "Lower", "Upper", "Weight"),
        tuple(rows),
        numeric=(False, True, True, True, True),
    )
    return Figure(
        "synthesis-forest",
        title,
        "Each estimate with its 95% confidence interval (square size: weight in the pooled "
        "estimate); the diamond spans the pooled 95% interval; the dashed line is the 95% "
        "prediction interval for a new place",
        svg,
        desc,
        table,
        "Source: pilotlab evidence records"
        + (
            "; external estimates as given"
            if any(st.origin == "external" for st in s.studies)
            else ""
        ),
    )


def _heterogeneity(s: Synthesis, d: int) -> list[Any]:
    p = s.pooled
    share = p.i2
    if share < 25:
        how = "little"
    elif share < 50:
        how = "some"
    elif share < 75:
        how = "substantial"
    else:
        how = "considerable"
    return [
        Paragraph(
            f"The estimates differ by more than chance alone would make them differ in {how} "
            f"measure: about {fmt_num(share, 0)}% of the spread between them is real difference "
            f"between places rather than sampling error (I²). The true effect varies between "
            f"places with a standard deviation of about {fmt_num(p.tau, d)} {s.unit} (τ)."
        ),
        KeyValue(
            (
                ("Between-place variance τ²", fmt_num(p.tau2, d + 2)),
                ("I² (share of the spread that is real)", f"{fmt_num(p.i2, 1)}%"),
                ("H²", fmt_num(p.h2, 2)),
                (
                    f"Cochran's Q ({p.q_df} degrees of freedom)",
                    f"{fmt_num(p.q, 2)}, p = {fmt_p(p.q_p_value)}",
                ),
            ),
            "How much places differ",
        ),
    ]


def _loo(s: Synthesis, d: int) -> list[Any]:
    if not s.leave_one_out:
        return [Paragraph("Leaving one estimate out needs at least three estimates.")]
    labels = {st.id: st.label for st in s.studies}
    rows = tuple(
        (
            labels.get(x.omitted, x.omitted),
            fmt_num(x.estimate, d),
            fmt_ci(x.ci_lower, x.ci_upper, d),
            fmt_num(x.tau2, d + 2),
            f"{fmt_num(x.i2, 1)}%",
        )
        for x in s.leave_one_out
    )
    flips = [
        labels.get(x.omitted, x.omitted)
        for x in s.leave_one_out
        if (x.ci_lower > 0 or x.ci_upper < 0) != (s.pooled.ci_lower > 0 or s.pooled.ci_upper < 0)
    ]
    text = (
        "Leaving out any one estimate does not change whether the interval excludes no change."
        if not flips
        else "Leaving out " + ", ".join(flips) + " changes whether the interval excludes no "
        "change: the conclusion rests on it."
    )
    return [
        Paragraph(text),
        Table(
            "synthesis-leave-one-out",
            "The pooled effect with each estimate left out",
            ("Left out", "Pooled effect", "95% CI", "τ²", "I²"),
            rows,
            numeric=(False, True, True, True, True),
        ),
    ]


def _subgroups(s: Synthesis, d: int) -> list[Any]:
    if not s.subgroups:
        return [
            Paragraph(
                "No attribute (policy area, design, evidence level) splits the estimates into two or more groups."
            )
        ]
    out: list[Any] = []
    for g in s.subgroups:
        name = GROUPINGS[g.by]
        differ = g.p_value < 0.05
        out.append(
            Paragraph(
                f"By {name}: the groups {'differ' if differ else 'do not clearly differ'} "
                f"(test of difference between subgroups Q = {fmt_num(g.q_between, 2)}, "
                f"{g.df} degree{'s' if g.df != 1 else ''} of freedom, p = {fmt_p(g.p_value)})."
                + (
                    f" {g.left_out} estimate(s) without a {name} are left out."
                    if g.left_out
                    else ""
                )
            )
        )
        out.append(
            Table(
                f"synthesis-subgroups-{g.by.replace('_', '-')}",
                f"Pooled effect by {name}",
                (name.capitalize(), "Estimates", "Pooled effect", "95% CI"),
                tuple(
                    (
                        x.value,
                        fmt_int(x.k),
                        fmt_num(x.estimate, d),
                        fmt_ci(x.ci_lower, x.ci_upper, d),
                    )
                    for x in g.groups
                ),
                numeric=(False, True, True, True),
            )
        )
    return out


def _sensitivity(s: Synthesis, d: int) -> list[Any]:
    if not s.sensitivity:
        return [
            Paragraph(
                "All estimates with an evidence level share one level, so there is no weaker design to drop."
            )
        ]
    p = s.pooled
    rows = [
        (
            "All estimates",
            fmt_int(p.k),
            fmt_num(p.estimate, d),
            fmt_ci(p.ci_lower, p.ci_upper, d),
            "",
        )
    ]
    rows += [
        (
            f"Level {x.min_level} or above",
            fmt_int(x.k),
            fmt_num(x.estimate, d),
            fmt_ci(x.ci_lower, x.ci_upper, d),
            x.note,
        )
        for x in s.sensitivity
    ]
    return [
        Paragraph(
            "Weaker designs can bias the pooled effect. The table keeps only the estimates at or "
            "above each evidence level (Maryland Scientific Methods Scale); estimates without a "
            "level are dropped from these rows."
        ),
        Table(
            "synthesis-sensitivity",
            "The pooled effect keeping only stronger designs",
            ("Estimates kept", "Number", "Pooled effect", "95% CI", "Note"),
            tuple(rows),
            numeric=(False, True, True, True, False),
        ),
    ]


def _costs(s: Synthesis) -> list[Any]:
    c = s.cost_summary()
    if c is None:
        return []
    labels = {st.id: st.label for st in s.studies}

    def money(x: float | None) -> str:
        return NA if x is None else f"£{fmt_num(x, 0 if abs(x) >= 100 else 2)}"

    years = ", ".join(str(y) for y in c["price_years"]) or "not stated"
    return [
        Paragraph(
            f"{c['k']} of the places state their costs. The cost per unit of improvement ranges "
            f"from {money(c['min'])} to {money(c['max'])} (median {money(c['median'])}); prices "
            f"of {years}. Costs in different price years are not re-based."
        ),
        Table(
            "synthesis-costs",
            "Cost per unit of outcome change by place (GBP)",
            (
                "Place",
                "Cost per unit of improvement",
                "Benefit-cost ratio",
                "Net present value",
                "Price year",
            ),
            tuple(
                (
                    labels.get(x["id"], x["id"]),
                    money(x["cost_per_unit_change"]),
                    NA if x["benefit_cost_ratio"] is None else fmt_num(x["benefit_cost_ratio"], 2),
                    money(x["npv"]),
                    str(x["price_year"] or NA),
                )
                for x in c["places"]
            ),
            numeric=(False, True, True, True, False),
        ),
    ]


def _annex(s: Synthesis, d: int) -> Section:
    p = s.pooled
    pi_normal = fmt_ci(p.prediction_normal_lower, p.prediction_normal_upper, d)
    return Section(
        "annex-method",
        "Technical annex: method",
        (
            Paragraph(
                f"Random-effects meta-analysis (inverse-variance weights 1/(vᵢ + τ²)) with the "
                f"between-place variance τ² estimated by {METHODS[s.method]}. Each estimate's "
                "variance vᵢ is its squared standard error, taken as known. Scale: "
                f"{SCALES[s.scale]}"
                + (
                    " (each estimate and its standard error divided by the absolute pre-pilot "
                    "mean of its pilot, which is treated as known)."
                    if s.scale == "percent"
                    else "."
                )
            ),
            KeyValue(
                (
                    (
                        "Random-effects estimate",
                        f"{fmt_num(p.estimate, d)} (standard error {fmt_num(p.std_error, d + 1)})",
                    ),
                    ("Usual 95% interval (normal)", fmt_ci(p.ci_lower, p.ci_upper, d)),
                    ("p-value (normal)", fmt_p(p.p_value)),
                    (
                        f"Hartung-Knapp-Sidik-Jonkman interval (t, {p.hk_df} df)",
                        f"{fmt_ci(p.hk_ci_lower, p.hk_ci_upper, d)} (standard error {fmt_num(p.hk_std_error, d + 1)}, p = {fmt_p(p.hk_p_value)})",
                    ),
                    (
                        f"Prediction interval (t, {p.prediction_df} df)"
                        if p.prediction_df
                        else "Prediction interval (t)",
                        fmt_ci(p.prediction_lower, p.prediction_upper, d)
                        if p.prediction_lower is not None
                        else "not available with two estimates",
                    ),
                    ("Prediction interval (normal quantile)", pi_normal),
                    (
                        "Fixed-effect estimate",
                        f"{fmt_num(p.fixed_estimate, d)} ({fmt_ci(p.fixed_ci_lower, p.fixed_ci_upper, d)})",
                    ),
                ),
                "Pooled results",
            ),
            ListBlock(
                (
                    "τ² (tau squared): the variance of the true effects across places; τ is its square root, in the metric's unit.",
                    "I²: the share of the total variability of the estimates that comes from real differences between places (τ² over τ² plus the typical within-study variance, Higgins and Thompson 2002).",
                    "Q: Cochran's heterogeneity statistic with fixed-effect weights, compared with a chi-squared distribution on k − 1 degrees of freedom.",
                    "Hartung-Knapp-Sidik-Jonkman: rescales the standard error by the weighted spread of the estimates and uses the t distribution on k − 1 degrees of freedom; with few estimates it keeps the stated coverage where the usual interval does not.",
                    "Prediction interval: where the true effect of a new, similar place would lie with 95% probability, mean ± t(k − 2) · √(SE² + τ²) (Higgins, Thompson and Spiegelhalter 2009).",
                    "Fixed effect: assumes one true effect everywhere (τ² = 0); shown for comparison only.",
                    "Subgroup test: Cochran's Q across the subgroups' pooled estimates (each with its own τ²), chi-squared on groups − 1 degrees of freedom (Borenstein et al. 2009, chapter 19).",
                )
            ),
        ),
        part="annex",
    )


def build_synthesis(s: Synthesis) -> ReportDocument:
    """The synthesis page as a document."""
    p = s.pooled
    d = decimals_for((p.ci_upper - p.ci_lower) / 2)
    name = s.metric_info.name if s.metric_info is not None else s.metric
    meta: list[tuple[str, str]] = [
        ("Metric", s.metric),
        ("Scale", f"{SCALES[s.scale]} ({s.unit})"),
        ("Method", f"random effects, τ² by {METHODS[s.method]}"),
        ("Estimates", fmt_int(p.k)),
    ]
    if s.metric_info is not None:
        meta.append(
            ("Framework", f"{s.metric_info.framework} version {s.metric_info.framework_version}")
        )
    sections = [
        Section("summary", "What the pilots show together", tuple(_headline(s, d))),
        Section(
            "estimates",
            "Every estimate and the pooled effect",
            (_forest(s, d), _studies_table(s, d)),
        ),
        Section("differ", "How much places differ", tuple(_heterogeneity(s, d))),
        Section("influence", "Does one estimate drive the result?", tuple(_loo(s, d))),
        Section("subgroups", "Subgroups", tuple(_subgroups(s, d))),
        Section("sensitivity", "Dropping weaker designs", tuple(_sensitivity(s, d))),
    ]
    costs = _costs(s)
    if costs:
        sections.append(Section("costs", "Cost per outcome across places", tuple(costs)))
    if s.metric_info is not None:
        m = s.metric_info
        sections.append(
            Section(
                "metric",
                "The metric",
                (
                    KeyValue(
                        (
                            ("Name", m.name),
                            ("Definition", m.definition),
                            ("Unit", m.unit),
                            ("Better", m.better),
                            ("Source", m.source),
                        )
                    ),
                ),
            )
        )
    sections.append(_annex(s, d))
    return ReportDocument(
        title=f"Evidence across places: {name}",
        subtitle=f"{p.k} estimates pooled by random-effects meta-analysis",
        sections=tuple(sections),
        meta=tuple(meta),
        generated_at=s.generated_at,
        pilotlab_version=s.software.get("pilotlab", ""),
    )
