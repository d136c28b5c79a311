"""The report's value-for-money section: cost per unit of outcome change and, where the outcome's
framework values a unit, net present value and benefit-cost ratio (Green Book discounting)."""

from __future__ import annotations

from pilotlab.report.format import NA, fmt_num, fmt_pct
from pilotlab.report.model import Block, FullTable, KeyValue, Paragraph, Section, Table
from pilotlab.results import Evaluation, ValueForMoney

__all__ = ["SECTION_ID", "value_for_money_sections"]

SECTION_ID = "value-for-money"
ANNEX_ID = "annex-value-for-money"


def _money(x: float | None) -> str:
    if x is None:
        return "no upper bound"
    return f"£{fmt_num(x, 0 if abs(x) >= 100 else 2)}"


def _label(ev: Evaluation, column: str) -> str:
    return next((o.label for o in ev.outcomes if o.column == column), column)


def _main(ev: Evaluation, v: ValueForMoney) -> list[Block]:
    rows: list[tuple[str, str]] = [
        ("Total cost", f"{_money(v.total_cost)} ({v.price_year} prices)"),
        ("Optimism bias uplift", fmt_pct(v.optimism_bias, 0) if v.optimism_bias else "none"),
        ("Cost per unit of improvement", _money(v.cost_per_unit_change) if v.cost_per_unit_change is not None else NA),
        (
            "95% interval",
            f"{_money(v.cost_per_unit_lower)} to {_money(v.cost_per_unit_upper)}"
            if v.cost_per_unit_lower is not None
            else NA,
        ),
    ]  # fmt: skip
    if v.npv is not None:
        rows += [
            (
                "Value of one unit",
                f"{_money(v.value_per_unit)} ({v.value_price_year} prices; {v.value_source})",
            ),
            (f"Net present value over {v.horizon_years} years", _money(v.npv)),
            ("95% interval", f"{_money(v.npv_lower)} to {_money(v.npv_upper)}"),
            (
                "Benefit-cost ratio",
                NA if v.benefit_cost_ratio is None else fmt_num(v.benefit_cost_ratio, 2),
            ),
        ]
    out: list[Block] = [Paragraph(v.sentence)]
    if v.appraisal_sentence:
        out.append(Paragraph(v.appraisal_sentence))
    out.append(KeyValue(tuple(rows), _label(ev, v.outcome)))
    return out


def _annex(ev: Evaluation, v: ValueForMoney) -> list[Block]:
    lines: list[Block] = [
        Paragraph(
            f"{_label(ev, v.outcome)}: costs {_money(v.one_off)} one-off and {_money(v.running)} "
            f"running ({v.basis.replace('_', ' ')}), raised by {fmt_pct(v.optimism_bias, 0)} for "
            f"optimism bias. The change bought is the estimated effect (signed so that an "
            f"improvement is positive) times {fmt_num(v.unit_periods, 0)} treated unit-periods "
            f"times {fmt_num(v.outcome_scale, 2)} (the outcome scale): {fmt_num(v.improvement, 2)} "
            f"(95% interval {fmt_num(v.improvement_lower, 2)} to {fmt_num(v.improvement_upper, 2)}). "
            "The interval of the cost per unit treats the costs as known."
        )
    ]
    if v.years:
        bands = "; ".join(f"{fmt_pct(r, 1)} from year {y}" for y, r in v.discount_schedule)
        lines.append(
            Paragraph(
                f"Discount rates: {bands}. Discount factor of year t: the product over years 1 "
                "to t of 1/(1 + rate). Benefits: the yearly change times "
                f"{_money(v.value_per_unit)} per unit ({v.value_price_year} prices; "
                f"{v.value_source})."
            )
        )
        slug = v.outcome.replace("_", "-").lower()
        lines.append(
            Table(
                f"value-for-money-{slug}",
                f"Appraisal by year: {_label(ev, v.outcome)} (GBP, undiscounted)",
                ("Year", "Discount rate", "Discount factor", "Costs", "Benefits"),
                tuple(
                    (
                        str(y.year),
                        fmt_pct(y.rate, 1),
                        fmt_num(y.discount_factor, 4),
                        _money(y.costs),
                        _money(y.benefits),
                    )
                    for y in v.years
                ),
                numeric=(False, True, True, True, True),
                full=FullTable(
                    ("year", "rate", "discount_factor", "costs", "benefits"),
                    tuple(
                        (y.year, y.rate, y.discount_factor, y.costs, y.benefits) for y in v.years
                    ),
                ),
            )
        )
    return lines


def value_for_money_sections(evaluation: Evaluation) -> tuple[Section | None, Section | None]:
    """The main section and its technical annex (``None`` when the pilot states no costs)."""
    vfm = evaluation.value_for_money
    if not vfm:
        return None, None
    main: list[Block] = [
        Paragraph(
            "What the pilot cost against the change it made. The cost per unit of improvement "
            "divides the total cost by the estimated improvement in the outcome; where the "
            "outcome's framework puts a money value on a unit, the benefits are valued and set "
            "against the costs, counting future years for less, as HM Treasury's Green Book sets "
            "out."
        )
    ]
    annex: list[Block] = []
    for v in vfm.values():
        main += _main(evaluation, v)
        annex += _annex(evaluation, v)
    return (
        Section(SECTION_ID, "Value for money", tuple(main)),
        Section(ANNEX_ID, "Value for money: workings", tuple(annex), part="annex"),
    )
