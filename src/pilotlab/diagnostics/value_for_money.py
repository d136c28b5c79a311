"""Value for money: cost per unit of outcome change, and NPV and benefit-cost ratio with
HM Treasury Green Book discounting where the outcome's framework values a unit of it.

The model, stated in the report:

* **Costs.** ``one_off`` in year 0; ``per_period`` for every period the pilot ran (each treated
  unit's own periods for ``basis: per_unit``, times ``participants`` for ``per_participant``),
  placed in the years they fall in (``periods_per_year``); all raised by ``optimism_bias``.
* **Change bought.** The estimated effect (average per treated unit and period), signed so that
  a change in the better direction is positive, times the unit-periods treated and
  ``outcome_scale`` (how many people, households... one unit's outcome applies to).
* **Benefits** (with a monetary value per unit of the metric per year): the yearly change
  (effect x treated units x ``outcome_scale``) times the value, for ``benefit_years`` (default:
  the horizon) from year 0, discounted to year 0.
* **Discounting**: the Green Book's declining schedule (3.5% a year for years 0 to 30, 3.0% for
  31 to 75, 2.5% for 76 to 125, 2.0% for 126 to 200, 1.5% for 201 to 300, 1.0% after), or the
  pilot file's own; the factor of year t is the product over years 1..t of 1/(1 + rate).
* The monetary value is used in its own price year; a value in another price year than the
  costs is named in the report (pilotlab does not re-base prices).
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from pilotlab.results import AppraisalYear, Evaluation, OutcomeEvaluation, ValueForMoney

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pilotlab.spec import PilotSpec
    from pilotlab.spec.costs import CostSpec

__all__ = ["GREEN_BOOK_SCHEDULE", "discount_factors", "value_for_money"]

#: HM Treasury Green Book (2022), Table 8: (first year of the band, annual rate).
GREEN_BOOK_SCHEDULE: tuple[tuple[int, float], ...] = (
    (0, 0.035),
    (31, 0.030),
    (76, 0.025),
    (126, 0.020),
    (201, 0.015),
    (301, 0.010),
)


def discount_factors(
    years: int, schedule: tuple[tuple[int, float], ...] = GREEN_BOOK_SCHEDULE
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Discount factors and rates of years ``0 .. years-1``: ``DF_0 = 1``,
    ``DF_t = DF_{t-1} / (1 + r_t)`` with ``r_t`` the rate of the band year ``t`` falls in."""
    t = np.arange(years)
    starts = np.array([s for s, _ in schedule])
    rates = np.array([r for _, r in schedule], dtype=float)
    rate_t = rates[np.searchsorted(starts, t, side="right") - 1]
    growth = np.where(t == 0, 1.0, 1.0 + rate_t)
    return 1.0 / np.cumprod(growth), rate_t


def _periods_treated(ev: Evaluation) -> NDArray[np.float64]:
    labels = ev.data.period_labels
    index = {p: i for i, p in enumerate(labels)}
    n = len(labels)
    return np.array([n - index[p] for p in ev.data.adoption.values() if p in index], dtype=float)


def _money(x: float) -> str:
    return f"£{x:,.0f}" if abs(x) >= 100 else f"£{x:,.2f}"


def _qty(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


def _one(
    ev: Evaluation, o: OutcomeEvaluation, costs: CostSpec, spec: PilotSpec
) -> ValueForMoney | None:
    r = o.result
    if not (math.isfinite(r.estimate) and math.isfinite(r.ci_lower) and math.isfinite(r.ci_upper)):
        return None
    periods = _periods_treated(ev)
    if periods.size == 0:
        return None
    ppy = costs.periods_per_year
    longest = float(periods.max())
    if costs.basis == "per_unit":
        running_periods = periods  # each unit its own periods
        multiplier = 1.0
    else:
        running_periods = np.array([longest])
        multiplier = float(costs.participants or 1) if costs.basis == "per_participant" else 1.0
    running = float(costs.per_period * multiplier * running_periods.sum())
    uplift = 1.0 + costs.optimism_bias
    total = (costs.one_off + running) * uplift
    sign = -1.0 if o.better == "lower" else 1.0
    unit_periods = float(periods.sum())
    scale = costs.outcome_scale
    imp = sign * r.estimate * unit_periods * scale
    lo, hi = sorted(
        (sign * r.ci_lower * unit_periods * scale, sign * r.ci_upper * unit_periods * scale)
    )
    label = o.label
    outcome_spec = next((x for x in spec.outcomes if x.column == o.column), None)
    unit = f" {outcome_spec.units}" if outcome_spec is not None and outcome_spec.units else ""
    bought = (
        f"The pilot cost {_money(total)} ({costs.price_year} prices). Its estimated effect on "
        f"{label}, {_qty(abs(r.estimate))}{unit} a period in each of {_qty(unit_periods)} "
        f"treated unit-periods"
        + (f", at an outcome scale of {_qty(scale)}," if scale != 1 else "")
        + f" adds up to {_qty(abs(imp))} units of "
        + ("improvement" if imp > 0 else "change in the wrong direction")
    )
    if imp > 0 and lo > 0:
        cpu: float | None = total / imp
        cpu_lo: float | None = total / hi
        cpu_hi: float | None = total / lo
        sentence = (
            f"{bought}: {_money(total / imp)} per unit (95% interval {_money(total / hi)} to "
            f"{_money(total / lo)})."
        )
    elif imp > 0:
        cpu, cpu_lo, cpu_hi = total / imp, total / hi, None
        sentence = (
            f"{bought}: {_money(total / imp)} per unit, but the interval of the effect includes "
            "no change, so the cost per unit has no upper bound."
        )
    else:
        cpu = cpu_lo = cpu_hi = None
        sentence = f"{bought}, so there is no cost per unit of improvement."
    vfm = ValueForMoney(
        outcome=o.column,
        currency=costs.currency,
        price_year=costs.price_year,
        basis=costs.basis,
        one_off=costs.one_off,
        running=running,
        optimism_bias=costs.optimism_bias,
        total_cost=total,
        unit_periods=unit_periods,
        outcome_scale=scale,
        improvement=imp,
        improvement_lower=lo,
        improvement_upper=hi,
        cost_per_unit_change=cpu,
        cost_per_unit_lower=cpu_lo,
        cost_per_unit_upper=cpu_hi,
        sentence=sentence,
    )
    metric = outcome_spec.framework_metric if outcome_spec is not None else None
    mv = metric.monetary_value if metric is not None else None
    if mv is None:
        return vfm
    horizon = costs.horizon_years
    benefit_years = costs.benefit_years or horizon
    schedule = (
        tuple((b.from_year, b.rate) for b in costs.discount_rates)
        if costs.discount_rates is not None
        else GREEN_BOOK_SCHEDULE
    )
    df, rates = discount_factors(horizon, schedule)
    years = np.arange(horizon)
    # running costs fall in the years their periods fall in
    cost_year = np.zeros(horizon)
    cost_year[0] += costs.one_off
    if running > 0:
        per_period_total = costs.per_period * multiplier
        # periods i = 0..n-1 of each unit fall in year floor(i / periods_per_year); periods
        # after the horizon are counted in its last year
        edges = np.minimum(np.arange(horizon + 1)[:, None] * ppy, running_periods[None, :])
        counts = np.diff(np.ceil(edges), axis=0).sum(axis=1)
        counts[-1] += running_periods.sum() - counts.sum()
        cost_year += counts * per_period_total
    cost_year *= uplift
    n_treated = float(periods.size)
    yearly = n_treated * scale * mv.value  # value of one unit of improvement a year, all units
    on = (years < benefit_years).astype(float)

    def appraise(effect: float) -> tuple[float, float, float, float | None]:
        ben = sign * effect * yearly * on
        pvb = float(np.dot(df, ben))
        pvc = float(np.dot(df, cost_year))
        return pvb, pvc, pvb - pvc, (pvb / pvc if pvc > 0 else None)

    pvb, pvc, npv, bcr = appraise(r.estimate)
    a, b = appraise(r.ci_lower), appraise(r.ci_upper)
    npv_lo, npv_hi = sorted((a[2], b[2]))
    bcrs = sorted(x for x in (a[3], b[3]) if x is not None)
    ben_year = sign * r.estimate * yearly * on
    rows = tuple(
        AppraisalYear(int(y), float(rt), float(d), float(c), float(bn))
        for y, rt, d, c, bn in zip(years, rates, df, cost_year, ben_year, strict=True)
    )
    prices = (
        f" The value of a unit is in {mv.price_year} prices, the costs in {costs.price_year} "
        "prices (not re-based)."
        if mv.price_year != costs.price_year
        else ""
    )
    years_text = f"{benefit_years} year{'s' if benefit_years != 1 else ''}"
    appraisal = (
        f"Valuing the effect at {_money(mv.value)} per unit ({mv.per}) for {years_text}, and "
        f"counting later years for less as HM Treasury's Green Book sets out, over {horizon} "
        f"years: net present value {_money(npv)} (95% interval {_money(npv_lo)} to "
        f"{_money(npv_hi)}), benefit-cost ratio "
        f"{'not available' if bcr is None else f'{bcr:.2f}'}.{prices}"
    )
    return ValueForMoney(
        **{
            **{k: getattr(vfm, k) for k in vfm.__dataclass_fields__},
            "value_per_unit": mv.value,
            "value_price_year": mv.price_year,
            "value_per": mv.per,
            "value_source": mv.source,
            "horizon_years": horizon,
            "benefit_years": benefit_years,
            "discount_schedule": schedule,
            "pv_costs": pvc,
            "pv_benefits": pvb,
            "npv": npv,
            "npv_lower": npv_lo,
            "npv_upper": npv_hi,
            "benefit_cost_ratio": bcr,
            "bcr_lower": bcrs[0] if len(bcrs) == 2 else None,
            "bcr_upper": bcrs[-1] if len(bcrs) == 2 else None,
            "years": rows,
            "appraisal_sentence": appraisal,
        }
    )


def value_for_money(spec: PilotSpec, evaluation: Evaluation) -> Mapping[str, ValueForMoney]:
    """Value for money of every outcome with an estimate, when the pilot file states costs."""
    costs = spec.costs
    if costs is None:
        return MappingProxyType({})
    out = {}
    for o in evaluation.outcomes:
        v = _one(evaluation, o, costs, spec)
        if v is not None:
            out[o.column] = v
    return MappingProxyType(out)
