"""Value for money: Green Book discounting, cost per unit of change, NPV and benefit-cost ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pilotlab.diagnostics.value_for_money import GREEN_BOOK_SCHEDULE, discount_factors
from pilotlab.evidence import evidence_record, validate_record
from pilotlab.report import build
from tests.support.synthesis import COSTS, evaluated


def test_green_book_declining_schedule() -> None:
    """HM Treasury Green Book (2022), Table 8 and Annex A6: 3.5% for years 0-30, 3.0% for
    31-75, 2.5% for 76-125, 2.0% for 126-200, 1.5% for 201-300, 1.0% beyond; the published
    discount factors of years 10 and 30 are 0.7089 and 0.3563."""
    df, rates = discount_factors(400)
    assert df[0] == 1.0
    assert round(df[10], 4) == 0.7089 and round(df[30], 4) == 0.3563
    assert df[31] == pytest.approx(df[30] / 1.03)
    assert df[76] == pytest.approx(df[75] / 1.025)
    assert df[126] == pytest.approx(df[125] / 1.02)
    assert df[201] == pytest.approx(df[200] / 1.015)
    assert df[301] == pytest.approx(df[300] / 1.01)
    assert df[399] == pytest.approx(df[301] / 1.01**98)
    assert [rates[y] for y in (1, 30, 31, 75, 76, 125, 126, 200, 201, 300, 301)] == [
        0.035, 0.035, 0.03, 0.03, 0.025, 0.025, 0.02, 0.02, 0.015, 0.015, 0.01,
    ]  # fmt: skip
    assert GREEN_BOOK_SCHEDULE[0] == (0, 0.035)


def test_cost_per_unit_of_change_and_its_interval() -> None:
    ev = evaluated("cost-pilot", -0.5, 1, costs=COSTS)
    v = ev.value_for_money["y"]
    r = ev.outcomes[0].result
    treated = len(ev.data.adoption)
    periods = ev.data.periods - ev.data.period_labels.index(next(iter(ev.data.adoption.values())))
    unit_periods = treated * periods
    total = (COSTS["one_off"] + COSTS["per_period"] * unit_periods) * (1 + COSTS["optimism_bias"])
    assert v.total_cost == pytest.approx(total)
    change = -r.estimate * unit_periods * COSTS["outcome_scale"]  # lower is better
    assert v.improvement == pytest.approx(change)
    assert v.cost_per_unit_change == pytest.approx(total / change)
    lo = -r.ci_upper * unit_periods * COSTS["outcome_scale"]
    hi = -r.ci_lower * unit_periods * COSTS["outcome_scale"]
    assert (v.cost_per_unit_lower, v.cost_per_unit_upper) == pytest.approx((total / hi, total / lo))
    assert v.npv is None  # the claimant rate has no monetary value in the starter framework
    assert "per unit" in v.sentence and "£" in v.sentence


def _reference_npv(
    effect: float,
    unit_count: int,
    scale: float,
    value: float,
    costs_by_year: list[float],
    horizon: int,
    benefit_years: int,
) -> tuple[float, float]:
    """A plain loop over years, written from the Green Book's definition."""
    pvb = pvc = 0.0
    factor = 1.0
    for year in range(horizon):
        if year > 0:
            rate = 0.035 if year <= 30 else 0.03 if year <= 75 else 0.025
            factor /= 1 + rate
        benefit = effect * unit_count * scale * value if year < benefit_years else 0.0
        pvb += factor * benefit
        pvc += factor * costs_by_year[year]
    return pvb, pvc  # fmt: skip


def test_npv_and_benefit_cost_ratio_with_a_monetary_value() -> None:
    costs = {**COSTS, "horizon_years": 40, "benefit_years": 35}
    ev = evaluated("wellbeing", 0.4, 7, costs=costs, metric="local/life_satisfaction")
    v = ev.value_for_money["y"]
    r = ev.outcomes[0].result
    treated = len(ev.data.adoption)
    periods = ev.data.periods - ev.data.period_labels.index(next(iter(ev.data.adoption.values())))
    # running costs: each unit's periods, 4 a year, from year 0
    per_year = [0.0] * 40
    per_year[0] += costs["one_off"]
    for i in range(periods):
        per_year[i // 4] += costs["per_period"] * treated
    per_year = [c * (1 + costs["optimism_bias"]) for c in per_year]
    pvb, pvc = _reference_npv(r.estimate, treated, costs["outcome_scale"], 13000, per_year, 40, 35)
    assert v.pv_benefits == pytest.approx(pvb, rel=1e-12)
    assert v.pv_costs == pytest.approx(pvc, rel=1e-12)
    assert v.npv == pytest.approx(pvb - pvc, rel=1e-12)
    assert v.benefit_cost_ratio == pytest.approx(pvb / pvc, rel=1e-12)
    assert v.npv_lower is not None and v.npv_upper is not None
    assert v.npv_lower < v.npv < v.npv_upper
    assert v.value_price_year == 2019 and "2019 prices" in v.appraisal_sentence
    assert len(v.years) == 40 and v.years[31].rate == 0.03


def test_discount_schedule_can_be_overridden() -> None:
    flat = {**COSTS, "discount_rates": [{"from_year": 0, "rate": 0.0}]}
    ev = evaluated("flat", 0.4, 7, costs=flat, metric="local/life_satisfaction")
    v = ev.value_for_money["y"]
    assert all(y.discount_factor == 1.0 for y in v.years)
    assert v.pv_costs == pytest.approx(v.total_cost)


def test_an_interval_including_no_change_has_no_upper_bound() -> None:
    ev = evaluated("null-pilot", 0.0, 3, costs=COSTS)
    v = ev.value_for_money["y"]
    r = ev.outcomes[0].result
    assert r.ci_lower < 0 < r.ci_upper
    if v.improvement > 0:
        assert v.cost_per_unit_change is not None and v.cost_per_unit_upper is None
        assert "no upper bound" in v.sentence
    else:
        assert v.cost_per_unit_change is None and "no cost per unit" in v.sentence


def test_per_participant_costs() -> None:
    costs = {**COSTS, "basis": "per_participant", "participants": 250, "optimism_bias": 0}
    ev = evaluated("participants", -0.5, 1, costs=costs)
    v = ev.value_for_money["y"]
    periods = ev.data.periods - ev.data.period_labels.index(next(iter(ev.data.adoption.values())))
    assert v.running == pytest.approx(costs["per_period"] * 250 * periods)


def test_evidence_record_and_report_carry_value_for_money() -> None:
    ev = evaluated("wellbeing", 0.4, 7, costs=COSTS, metric="local/life_satisfaction")
    rec = evidence_record(ev)
    validate_record(rec)
    block = rec["results"][0]["value_for_money"]
    assert block["currency"] == "GBP" and block["price_year"] == 2024
    assert math.isfinite(block["npv"]) and block["discount_schedule"][0] == {
        "from_year": 0,
        "rate": 0.035,
    }
    assert rec["results"][0]["metric"]["ref"] == "local/life_satisfaction"
    doc = build(ev)
    ids = [s.id for s in doc.sections]
    assert ids.index("value-for-money") == ids.index("limitations") - 1
    assert "annex-value-for-money" in ids
    table = next(t for t in doc.tables() if t.id == "value-for-money-y")
    assert len(table.rows) == COSTS["horizon_years"]
    without = evaluated("no-costs", 0.4, 7)
    assert without.value_for_money == {} and "value-for-money" not in [
        s.id for s in build(without).sections
    ]
    assert evidence_record(without)["results"][0]["value_for_money"] is None


def test_running_costs_fall_in_their_years() -> None:
    ev = evaluated(
        "years", 0.4, 1, costs={**COSTS, "optimism_bias": 0}, metric="local/life_satisfaction"
    )
    v = ev.value_for_money["y"]
    costs = np.array([y.costs for y in v.years])
    assert costs.sum() == pytest.approx(v.total_cost)
    assert costs[0] >= COSTS["one_off"]


def test_value_for_money_section_is_plain_english() -> None:
    from pilotlab.report.text import find_jargon

    ev = evaluated("wellbeing", 0.4, 7, costs=COSTS, metric="local/life_satisfaction")
    section = build(ev).section("value-for-money")
    text = " ".join(
        b.text if hasattr(b, "text") else " ".join(f"{k} {v}" for k, v in b.rows)
        for b in section.blocks
    )
    assert "net present value" in text and "Benefit-cost ratio" in text
    assert find_jargon(text) == []
