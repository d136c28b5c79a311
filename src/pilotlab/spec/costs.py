"""What a pilot cost, as the pilot file states it (``costs:``), for the value-for-money section.

::

    costs:
      currency: GBP            # only pounds sterling
      price_year: 2024         # the prices the costs are given in
      one_off: 120000          # set-up costs, spent at the start (year 0)
      per_period: 15000        # running cost each period of the pilot
      basis: per_unit          # total | per_unit (each treated unit) | per_participant
      participants: 400        # needed when basis is per_participant
      periods_per_year: 4      # the data's periods in a year (quarters here)
      horizon_years: 10        # benefits counted over this many years (default 10)
      benefit_years: 3         # how long the effect is assumed to last (default: the horizon)
      outcome_scale: 1         # people (or households...) each unit's outcome applies to
      optimism_bias: 0.2       # uplift on costs (0.2 = +20%), HM Treasury Green Book
      discount_rates: null     # default: the Green Book schedule (3.5% for years 0-30 ...)

Only pounds sterling are accepted: mixing currencies across places would make costs
incomparable, so a cost in any other currency is refused with the conversion to make.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["CostSpec", "DiscountBand"]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )


class DiscountBand(_Model):
    """One band of a discount schedule: ``rate`` a year from year ``from_year`` on."""

    from_year: int = Field(ge=0, le=10_000)
    rate: float = Field(ge=0, lt=1, description="Annual discount rate, e.g. 0.035 for 3.5%.")


class CostSpec(_Model):
    """The pilot's costs and the appraisal settings of its value for money."""

    currency: str = Field("GBP", description="Only GBP (pounds sterling).")
    price_year: int = Field(ge=1900, le=2200, description="The prices the costs are given in.")
    one_off: float = Field(0.0, ge=0, description="Set-up costs, spent at the start.")
    per_period: float = Field(0.0, ge=0, description="Running cost each period of the pilot.")
    basis: Literal["total", "per_unit", "per_participant"] = Field(
        "total",
        description="Whether per_period is for the whole pilot, each treated unit or each "
        "participant.",
    )
    participants: int | None = Field(None, ge=1, le=100_000_000)
    periods_per_year: float = Field(
        1.0, gt=0, le=366, description="Periods of the data in one year (4 for quarters)."
    )
    horizon_years: int = Field(10, ge=1, le=500, description="Years over which benefits count.")
    benefit_years: int | None = Field(
        None, ge=1, le=500, description="Years the effect lasts (default: the horizon)."
    )
    outcome_scale: float = Field(
        1.0, gt=0, description="People (households...) each treated unit's outcome applies to."
    )
    optimism_bias: float = Field(0.0, ge=0, le=5, description="Uplift on costs, 0.2 = +20%.")
    discount_rates: tuple[DiscountBand, ...] | None = Field(
        None, description="Override of the Green Book schedule; the first band from year 0."
    )

    @field_validator("currency", mode="before")
    @classmethod
    def _gbp_only(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().upper() in ("GBP", "£"):
            return "GBP"
        raise ValueError(
            f"found {v!r}; costs are compared across places in pounds sterling only: convert "
            "the costs to GBP (at the rate of their price year) and write currency: GBP"
        )

    @field_validator("horizon_years", "benefit_years", mode="before")
    @classmethod
    def _horizon_positive(cls, v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool) and v <= 0:
            raise ValueError(
                f"found {v}; the appraisal horizon is a whole number of years, at least 1"
            )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> CostSpec:
        if self.basis == "per_participant" and self.participants is None:
            raise ValueError(
                "costs: basis is per_participant but 'participants' is missing; give the "
                "number of participants, or use basis: total"
            )
        if self.benefit_years is not None and self.benefit_years > self.horizon_years:
            raise ValueError(
                f"costs: benefit_years ({self.benefit_years}) is longer than horizon_years "
                f"({self.horizon_years}); benefits are counted within the horizon"
            )
        if self.discount_rates is not None:
            starts = [b.from_year for b in self.discount_rates]
            if not starts or starts[0] != 0 or starts != sorted(set(starts)):
                raise ValueError(
                    "costs: discount_rates must start at from_year 0 and list each band once, "
                    "in increasing from_year"
                )
        return self
