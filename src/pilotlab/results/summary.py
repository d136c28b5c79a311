"""Typed summaries of the data analysed and of how the plan analysed departs from the registered
one: parts of :class:`~pilotlab.results.DataSummary` and :class:`~pilotlab.results.PlanInfo`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Deviation", "JsonValue", "MissingSummary", "PlanDifference", "UnitFlow"]

#: A value of a plan key as it is written in JSON.
JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


@dataclass(frozen=True)
class UnitFlow:
    """How units went from eligible to analysed (counts and reasons), for the report."""

    in_data: int
    eligible: int
    treated: int
    comparison: int
    excluded: tuple[str, ...] = ()
    excluded_reason: str = ""
    dropped_no_outcome: tuple[str, ...] = ()
    analysed: int = 0

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form."""
        return {
            **self.__dict__,
            "excluded": list(self.excluded),
            "dropped_no_outcome": list(self.dropped_no_outcome),
        }


@dataclass(frozen=True)
class MissingSummary:
    """Missing values of one outcome: how many and where (unit and period labels)."""

    outcome: str
    n_missing: int
    n_total: int
    units: tuple[str, ...] = ()
    periods: tuple[str, ...] = ()

    def sentence(self) -> str:
        """One line for the report."""
        if not self.n_missing:
            return f"No values of {self.outcome} are missing."
        u = ", ".join(self.units[:5]) + (" and others" if len(self.units) > 5 else "")
        p = ", ".join(self.periods[:5]) + (" and others" if len(self.periods) > 5 else "")
        return (
            f"{self.n_missing} of {self.n_total} values of {self.outcome} are missing "
            f"(units {u}; periods {p}) and were left out of the estimates."
        )

    def to_dict(self) -> dict[str, object]:
        """The evidence record's ``data.missing`` entry."""
        return {
            "outcome": self.outcome,
            "n_missing": self.n_missing,
            "n_total": self.n_total,
            "units": list(self.units),
            "periods": list(self.periods),
            "sentence": self.sentence(),
        }


@dataclass(frozen=True)
class Deviation:
    """An amendment of the registered plan: when, what changed, why, and whether data were seen."""

    version: int
    at: str
    items: tuple[str, ...]
    reason: str | None
    data_seen: bool

    @property
    def item(self) -> str:
        """The changed plan keys as one comma-separated string (the evidence record's ``item``)."""
        return ", ".join(self.items)

    def to_dict(self) -> dict[str, Any]:
        """The evidence record's deviation entry (``at``, ``item``, ``reason``, ``data_seen``)."""
        return {
            "at": self.at,
            "item": self.item,
            "items": list(self.items),
            "reason": self.reason,
            "data_seen": self.data_seen,
            "version": self.version,
        }


@dataclass(frozen=True)
class PlanDifference:
    """One plan key analysed differently from the latest registered plan, with no amendment.

    ``registered_set`` / ``analysed_set`` are False where the key is absent on that side (its
    value is then ``None``).
    """

    key: str
    registered: JsonValue
    analysed: JsonValue
    registered_set: bool = True
    analysed_set: bool = True

    def to_dict(self) -> dict[str, JsonValue]:
        """The evidence record's ``plan.unregistered_deviations`` entry."""
        return {
            "key": self.key,
            "registered": self.registered,
            "analysed": self.analysed,
            "registered_set": self.registered_set,
            "analysed_set": self.analysed_set,
        }
