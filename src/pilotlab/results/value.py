"""Value for money of one outcome: what the pilot cost per unit of outcome change and, where the
outcome's framework values it, its net present value and benefit-cost ratio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AppraisalYear", "ValueForMoney"]


@dataclass(frozen=True)
class AppraisalYear:
    """One year of the appraisal: discount factor, costs and benefits (undiscounted, GBP)."""

    year: int
    rate: float
    discount_factor: float
    costs: float
    benefits: float

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {
            "year": self.year,
            "rate": self.rate,
            "discount_factor": self.discount_factor,
            "costs": self.costs,
            "benefits": self.benefits,
        }


@dataclass(frozen=True)
class ValueForMoney:
    """Costs against the estimated change in one outcome (GBP, the costs' price year).

    ``improvement`` is the estimated effect signed so that a change in the better direction is
    positive, multiplied by the unit-periods treated and ``outcome_scale``: the total change in
    the outcome the pilot bought. ``cost_per_unit_change`` is the total cost (with the optimism
    bias uplift) over it; its interval comes from the effect's confidence interval (the costs are
    taken as known), and is unbounded when that interval includes no change.
    """

    outcome: str
    currency: str
    price_year: int
    basis: str
    one_off: float
    running: float
    optimism_bias: float
    total_cost: float  # with the optimism bias uplift
    unit_periods: float
    outcome_scale: float
    improvement: float
    improvement_lower: float
    improvement_upper: float
    cost_per_unit_change: float | None
    cost_per_unit_lower: float | None
    cost_per_unit_upper: float | None  # None: unbounded (the interval includes no change)
    sentence: str
    # appraisal (only with a monetary value per unit from the framework)
    value_per_unit: float | None = None
    value_price_year: int | None = None
    value_per: str | None = None
    value_source: str | None = None
    horizon_years: int | None = None
    benefit_years: int | None = None
    discount_schedule: tuple[tuple[int, float], ...] = ()
    pv_costs: float | None = None
    pv_benefits: float | None = None
    npv: float | None = None
    npv_lower: float | None = None
    npv_upper: float | None = None
    benefit_cost_ratio: float | None = None
    bcr_lower: float | None = None
    bcr_upper: float | None = None
    years: tuple[AppraisalYear, ...] = ()
    appraisal_sentence: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The evidence record's ``value_for_money`` block of an outcome."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["discount_schedule"] = [{"from_year": y, "rate": r} for y, r in self.discount_schedule]
        out["years"] = [y.to_dict() for y in self.years]
        out["cost_per_unit_change_ci"] = [self.cost_per_unit_lower, self.cost_per_unit_upper]
        return out
