"""What the randomised-pilot estimator reports beside its headline: each arm against control."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pilotlab.results.parts import json_scalar

__all__ = ["ArmEffect", "RandomisedTables"]


@dataclass(frozen=True)
class ArmEffect:
    """One treated arm against the control arm.

    ``p_value`` is the arm's own two-sided p-value; ``p_adjusted`` is Holm's adjustment over
    the arms of the pilot (equal to ``p_value`` with one arm). ``dof`` is the Bell-McCaffrey
    degrees of freedom of the CR2 t statistic; ``p_randomisation`` the randomisation-inference
    p-value when that inference was run (``None`` otherwise).
    """

    arm: str
    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    p_value: float
    p_adjusted: float
    dof: float
    n_units: int
    n_control: int
    p_randomisation: float | None = None
    p_randomisation_adjusted: float | None = None
    ri_ci_lower: float | None = None
    ri_ci_upper: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {k: json_scalar(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class RandomisedTables:
    """How the randomised estimator analysed the pilot.

    Attributes
    ----------
    arms : tuple of ArmEffect
        Every treated arm against control (one row with a single arm).
    control : str
        Name of the control arm.
    adjustment : str
        ``lin`` (covariates and their interactions with each arm, centred), ``additive``
        (covariates without interactions, when an arm is too small for its own slopes) or
        ``none`` (difference in means).
    covariates : tuple of str
        Pre-period variables adjusted for (``pre:<outcome>`` is the outcome's pre-period mean).
    blocks : str
        ``none``, ``strata`` or ``pairs``: the fixed effects of the randomisation blocks.
    n_blocks : int
    dof : float
        Bell-McCaffrey degrees of freedom of the headline.
    multiplicity : str
        How the arms' p-values are adjusted (``holm``; ``none`` with one arm).
    scheme : str
        The allocation scheme (``complete`` when the panel has no allocation).
    sentence : str
        One plain sentence for the report.
    """

    arms: tuple[ArmEffect, ...]
    control: str
    adjustment: str
    covariates: tuple[str, ...]
    blocks: str
    n_blocks: int
    dof: float
    multiplicity: str
    scheme: str
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out: dict[str, Any] = {
            k: json_scalar(v) for k, v in self.__dict__.items() if k not in ("arms", "covariates")
        }
        out["arms"] = [a.to_dict() for a in self.arms]
        out["covariates"] = list(self.covariates)
        return out
