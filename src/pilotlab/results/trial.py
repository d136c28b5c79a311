"""What a randomised pilot's report and evidence record say beyond the effect estimates.

:class:`TrialSummary` is built by the engine from the allocation the panel was randomised with,
the data (what each unit received, which units have outcome data) and the registry (the
allocation registered before the pilot started); :class:`CycleInfo` from the registry's
learning-cycle chain. Both are pure data, read by the report and the evidence rubric.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "AllocationChange",
    "AllocationCheck",
    "BalanceRow",
    "CycleInfo",
    "CycleResult",
    "EarlierCycle",
    "FlowRow",
    "Loss",
    "PerProtocol",
    "TrialSummary",
]


@dataclass(frozen=True)
class BalanceRow:
    """One variable's standardised difference between one arm (or wave) and its comparison.

    ``std_diff`` is (mean of the group - mean of the comparison) / the variable's standard
    deviation over all units compared (``ddof=1``); the comparison is the control arm, or for a
    stepped roll-out every unit in another wave.
    """

    variable: str
    group: str
    comparison: str
    n_group: int
    n_comparison: int
    mean_group: float
    mean_comparison: float
    std_diff: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class Loss:
    """Units lost between two stages of the flow, with the reason."""

    group: str
    stage: str  # "received" or "analysed"
    reason: str
    units: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {**asdict(self), "units": list(self.units)}


@dataclass(frozen=True)
class FlowRow:
    """One arm (or wave) through the flow: allocated, received the intervention, analysed."""

    group: str
    allocated: int
    received: int | None  # None: the data do not say what units received
    analysed: int
    treated_arm: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class AllocationChange:
    """A later version of a registered allocation: when and why it was drawn again."""

    version: int
    recorded_at: str
    reason: str | None = None


@dataclass(frozen=True)
class AllocationCheck:
    """The allocation analysed against the one registered before the pilot started."""

    registered: bool
    sha256: str
    registered_sha256: str | None = None
    version: int | None = None
    recorded_at: str | None = None
    matches: bool | None = None
    changes: tuple[AllocationChange, ...] = ()  # later versions

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class PerProtocol:
    """The secondary per-protocol estimate of one outcome: only units that got what they were
    allocated (crossovers and units that did not receive the intervention left out)."""

    outcome: str
    label: str
    estimate: float | None
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None
    n_units: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class TrialSummary:
    """A randomised pilot's design and conduct, as a trial report shows them.

    Attributes
    ----------
    scheme, seed, sha256
        How the allocation was drawn, and its hash.
    groups
        Arm (or wave) names in code order: code 0 is the control arm (stepped: no wave).
    starts
        First treated period of each group (``None`` for code 0).
    stepped
        Whether the groups are waves of a roll-out.
    in_data, eligible
        Units in the data, and units eligible for (and so allocated by) the randomisation.
    flow
        Each group's counts through the flow.
    losses
        Every loss between allocation and analysis, with its reason.
    crossovers
        Units that got something other than their allocation: (unit, allocated, received).
    received_column
        The data column saying what units received (``None``: not recorded, not checked).
    balance
        Standardised differences of the pre-period outcomes and covariates, analysed units.
    balance_p, balance_draws
        Of ``balance_draws`` re-draws of the allocation (as the scheme draws), the share whose
        largest absolute standardised difference among the analysed units is at least the
        observed one: small when the groups differ more than chance allows (randomisation
        subverted, or attrition that made the groups differ).
    attrition, attrition_by_group, differential_attrition
        Share of allocated units not analysed, overall and per group, and the largest gap
        between two groups.
    registration
        The allocation analysed against the registered one.
    per_protocol
        The labelled secondary analysis (empty when every unit got its allocation or the data
        do not say what units received).
    """

    scheme: str
    seed: int
    sha256: str
    groups: tuple[str, ...]
    starts: tuple[str | None, ...]
    stepped: bool
    in_data: int
    eligible: int
    flow: tuple[FlowRow, ...]
    losses: tuple[Loss, ...]
    crossovers: tuple[tuple[str, str, str], ...]
    received_column: str | None
    balance: tuple[BalanceRow, ...]
    attrition: float
    attrition_by_group: tuple[tuple[str, float], ...]
    differential_attrition: float
    registration: AllocationCheck
    per_protocol: tuple[PerProtocol, ...] = ()
    strata: tuple[str, ...] = ()
    balance_p: float | None = None  # share of re-draws at least as unbalanced (analysed units)
    balance_draws: int = 0

    @property
    def allocated(self) -> int:
        """Units allocated (every eligible unit)."""
        return sum(f.allocated for f in self.flow)

    @property
    def crossover_share(self) -> float:
        """Share of allocated units that crossed over or did not receive their allocation."""
        return len(self.crossovers) / self.allocated if self.allocated else 0.0

    @property
    def max_abs_std_diff(self) -> float | None:
        """Largest absolute standardised difference (``None`` if none could be computed)."""
        vals = [abs(b.std_diff) for b in self.balance if b.std_diff == b.std_diff]
        return max(vals) if vals else None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the evidence record's ``trial`` block)."""
        return {
            "scheme": self.scheme,
            "seed": int(self.seed),
            "allocation_sha256": self.sha256,
            "groups": [
                {"code": k, "name": g, "start": s}
                for k, (g, s) in enumerate(zip(self.groups, self.starts, strict=True))
            ],
            "stepped": self.stepped,
            "strata": list(self.strata),
            "in_data": self.in_data,
            "eligible": self.eligible,
            "flow": [f.to_dict() for f in self.flow],
            "losses": [loss.to_dict() for loss in self.losses],
            "crossovers": [
                {"unit": u, "allocated": a, "received": r} for u, a, r in self.crossovers
            ],
            "received_column": self.received_column,
            "balance": [b.to_dict() for b in self.balance],
            "balance_p": self.balance_p,
            "balance_draws": self.balance_draws,
            "attrition": self.attrition,
            "attrition_by_group": {g: s for g, s in self.attrition_by_group},
            "differential_attrition": self.differential_attrition,
            "registration": self.registration.to_dict(),
            "per_protocol": [p.to_dict() for p in self.per_protocol],
        }


@dataclass(frozen=True)
class CycleResult:
    """One headline result of an earlier cycle, as its evidence record gave it."""

    label: str
    estimate: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    p_value: float | None = None
    alpha: float | None = None


@dataclass(frozen=True)
class EarlierCycle:
    """An earlier cycle of a learning-cycle chain with its latest recorded headline results."""

    pilot_id: str
    title: str
    status: str
    change: str  # what the next cycle changed relative to this one
    results: tuple[CycleResult, ...] = ()
    evidence_level: int | None = None
    recorded: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class CycleInfo:
    """Where a pilot sits in its learning-cycle chain: what it follows and what it changed."""

    follows: str
    change: str
    earlier: tuple[EarlierCycle, ...] = field(default=())
    registry_checked: bool = False  # whether the chain was read from a registry

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the evidence record's ``cycle`` block)."""
        return {
            "follows": self.follows,
            "change": self.change,
            "earlier": [e.to_dict() for e in self.earlier],
            "registry_checked": self.registry_checked,
        }
