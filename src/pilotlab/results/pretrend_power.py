"""What the pre-trend test could detect (Roth 2022): the typed record beside a pre-trend test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pilotlab.results.parts import json_scalar

__all__ = ["PreTrendPower"]


@dataclass(frozen=True)
class PreTrendPower:
    """Power of the parallel-trends pre-test against a linear violation (Roth 2022).

    The violation is a steady divergence of ``slope`` per period between pilot and comparison
    units: on the pre-period estimate at event time ``e`` it is ``slope * (e - reference)``
    (``slope`` for each short difference of a varying base period). Powers are exact normal
    probabilities given the estimates' covariance: ``nis`` is Roth's "no individually
    significant pre-period estimate" test (a box, by the multivariate normal distribution) and
    ``wald`` the joint Wald test (non-central chi-squared, or non-central F when the reported
    test uses the F reference).

    Attributes
    ----------
    event_times : tuple of int
        Event times of the pre-period estimates used.
    reference : int
        Reference event time of the violation.
    alpha : float
        Level of the tests.
    slope_50_nis, slope_80_nis, slope_50_wald, slope_80_wald : float
        Smallest slope (outcome units per period) the test detects 50% / 80% of the time.
    half_effect_slope : float
        The slope that, continued after the start, biases the headline estimate by half of it
        (``nan`` when the estimate is 0 or there are no post-period event times).
    power_half_effect_nis, power_half_effect_wald : float
        Power of each test against ``half_effect_slope``.
    df_denom : float or None
        Denominator degrees of freedom of the F reference (``None``: chi-squared).
    """

    event_times: tuple[int, ...]
    reference: int
    alpha: float
    slope_50_nis: float
    slope_80_nis: float
    slope_50_wald: float
    slope_80_wald: float
    half_effect_slope: float
    power_half_effect_nis: float
    power_half_effect_wald: float
    df_denom: float | None = None
    violation: str = "linear"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the evidence record's ``pre_trend.power`` block)."""
        out = {k: json_scalar(v) for k, v in self.__dict__.items()}
        out["event_times"] = [int(e) for e in self.event_times]
        return out
