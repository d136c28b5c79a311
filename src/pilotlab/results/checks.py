"""What each kind of robustness check records beside its estimate and interval.

:class:`~pilotlab.results.RobustnessCheck.details` is one of these frozen records (a small
typed union, :data:`CheckDetails`); ``to_dict`` gives the evidence record's ``details`` object of
the check (NaN as ``null``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pilotlab.results.parts import Table, json_scalar

__all__ = [
    "AlternativeEstimator",
    "CheckDetails",
    "HonestDiD",
    "LeaveOneOut",
    "NotRun",
    "PlaceboInSpace",
    "PlaceboInTime",
]


def _plain(obj: Any) -> dict[str, Any]:
    return {k: json_scalar(v) for k, v in obj.__dict__.items()}


@dataclass(frozen=True)
class NotRun:
    """The check could not be run, and why."""

    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return _plain(self)


@dataclass(frozen=True)
class PlaceboInTime:
    """The start moved ``shift`` periods earlier, fitted on the ``periods_used`` before it."""

    shift: int
    periods_used: int
    inference: str
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return _plain(self)


@dataclass(frozen=True)
class PlaceboInSpace:
    """The pilot's estimate ranked among ``n_placebos`` placebo assignments to comparison units."""

    p_value: float
    rank: int
    n_placebos: int
    exact: bool
    placebo_sd: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return _plain(self)


@dataclass(frozen=True)
class LeaveOneOut:
    """The estimate with each unit or cluster left out in turn (``estimates``: label -> estimate)."""

    most_influential: str
    inference: str | None  # None when the most influential drop could not be re-fitted
    estimates: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    n_outside: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "most_influential": self.most_influential,
            "inference": self.inference,
            "estimates": {str(k): json_scalar(v) for k, v in self.estimates.items()},
            "n_outside": self.n_outside,
        }


@dataclass(frozen=True)
class AlternativeEstimator:
    """Another registered estimator fitted to the same design."""

    estimator: str
    inference: str
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return _plain(self)


@dataclass(frozen=True)
class HonestDiD:
    """Rambachan & Roth bounds of the average post-period effect of the event study.

    ``relative_magnitudes`` / ``smoothness``: one row per restriction size (``bound``,
    ``lower``, ``upper``, ...). ``breakdown_mbar``: the relative-magnitude bound at which the
    finding stops being significant (0 when it is not significant, inf when none up to 10 does).
    """

    breakdown_mbar: float
    inference: str
    relative_magnitudes: Table
    smoothness: Table
    n_pre: int
    n_post: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "breakdown_mbar": json_scalar(self.breakdown_mbar),
            "inference": self.inference,
            "relative_magnitudes": self.relative_magnitudes.records(),
            "smoothness": self.smoothness.records(),
            "n_pre": self.n_pre,
            "n_post": self.n_post,
        }


CheckDetails = (
    NotRun | PlaceboInTime | PlaceboInSpace | LeaveOneOut | AlternativeEstimator | HonestDiD
)
