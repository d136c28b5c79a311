"""Frozen records returned by :class:`pilotlab.registry.Registry`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pilotlab.results.summary import Deviation, PlanDifference

if TYPE_CHECKING:
    from pilotlab.results import PlanInfo

__all__ = [
    "AllocationRecord",
    "CycleStep",
    "Deviation",
    "ExportSummary",
    "ImportSummary",
    "PilotHistory",
    "PilotSummary",
    "PlanMatch",
    "PlanVersion",
    "Problem",
    "RunRecord",
    "StatusChange",
    "Verification",
]


@dataclass(frozen=True, slots=True)
class PlanVersion:
    """One registered version of a pilot's analysis plan.

    ``changes`` lists the plan keys (dotted paths) that differ from the previous version; it is
    empty for version 1. ``created`` is False when ``amend`` found the plan unchanged and returned
    the latest version instead of adding one.
    """

    pilot_id: str
    version: int
    plan_sha256: str
    registered_at: str
    reason: str | None
    data_seen: bool
    changes: tuple[str, ...] = ()
    created: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        out = asdict(self)
        out["changes"] = list(self.changes)
        return out


@dataclass(frozen=True, slots=True)
class PlanMatch:
    """How a pilot file's analysis plan compares with what is registered.

    Attributes
    ----------
    plan_sha256
        Hash of the plan in the pilot file being run.
    registered
        Whether the pilot is in the registry at all.
    latest_version
        Number of the latest registered version (``None`` if not registered).
    matched_version
        The registered version equal to the plan being run, if any (the latest such).
    matches_registered
        The plan being run is the latest registered version.
    registered_at
        When the pilot was first registered (version 1): the pre-registration date.
    latest_registered_at
        When the latest version was registered.
    deviations
        Every amendment (versions 2, 3, ...), oldest first.
    unregistered_changes
        Plan keys where the file differs from the latest registered version (empty if it matches).
    registry_head
        The registry's chain head (``SEQ:SHA256``) when the plan was read: publish it, and
        ``pilotlab verify --head`` later proves that the history it covers is unchanged.
    unregistered_deviations
        The same differences with both values: ``key``, ``registered`` (the latest registered
        version's value), ``analysed`` (the file's), ``registered_set`` and ``analysed_set``
        (False where the key is absent on that side). They were not registered as an amendment.
    """

    pilot_id: str
    plan_sha256: str
    registered: bool
    latest_version: int | None = None
    matched_version: int | None = None
    matches_registered: bool = False
    registered_at: str | None = None
    latest_registered_at: str | None = None
    deviations: tuple[Deviation, ...] = ()
    unregistered_changes: tuple[str, ...] = ()
    registry_head: str | None = None
    unregistered_deviations: tuple[PlanDifference, ...] = ()

    def to_plan_info(self) -> PlanInfo:
        """The engine's :class:`~pilotlab.results.PlanInfo` (``evaluate(spec, plan=...)``)."""
        from pilotlab.results import PlanInfo

        return PlanInfo(
            sha256=self.plan_sha256,
            registered=self.registered,
            version=self.latest_version,
            registered_at=self.registered_at,
            matches_registered=self.matches_registered if self.registered else None,
            deviations=self.deviations,
            registry_head=self.registry_head if self.registered else None,
            unregistered_deviations=self.unregistered_deviations,
        )

    def to_evidence(self) -> dict[str, Any]:
        """The ``plan`` block of the evidence record (see ``evidence-record.md``)."""
        return {
            "sha256": self.plan_sha256,
            "registered": self.registered,
            "version": self.latest_version,
            "matched_version": self.matched_version,
            "registered_at": self.registered_at,
            "latest_registered_at": self.latest_registered_at,
            "matches_registered": self.matches_registered,
            "deviations": [d.to_dict() for d in self.deviations],
            "unregistered_changes": list(self.unregistered_changes),
            "registry_head": self.registry_head if self.registered else None,
            "unregistered_deviations": [d.to_dict() for d in self.unregistered_deviations],
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One recorded run of a pilot (the evidence record itself is stored beside it)."""

    run_id: str
    pilot_id: str
    plan_sha256: str
    plan_version: int | None
    matches_latest: bool
    data_sha256: str | None
    evidence_sha256: str
    software: dict[str, Any]
    started_at: str | None
    finished_at: str | None
    recorded_at: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A change of a pilot's status (the first entry is the status at registration)."""

    pilot_id: str
    old_status: str | None
    new_status: str
    changed_at: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PilotSummary:
    """One line of ``pilotlab list``."""

    id: str
    title: str
    status: str
    lead: str | None
    policy_area: str | None
    registered_at: str
    latest_version: int
    runs: int
    last_run_at: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PilotHistory:
    """Everything the registry holds about one pilot (``pilotlab show``)."""

    record: dict[str, Any]
    versions: tuple[PlanVersion, ...]
    runs: tuple[RunRecord, ...]
    status_changes: tuple[StatusChange, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "record": self.record,
            "versions": [v.to_dict() for v in self.versions],
            "runs": [r.to_dict() for r in self.runs],
            "status_changes": [s.to_dict() for s in self.status_changes],
        }


@dataclass(frozen=True, slots=True)
class Problem:
    """A registry row that no longer matches its hashes (changed outside pilotlab)."""

    table: str
    row: str
    pilot_id: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.table} {self.row}: {self.message}"


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """Files written by ``Registry.export``."""

    jsonl_path: str
    csv_path: str
    records: int
    rows: int


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """Outcome of ``Registry.import_records``."""

    path: str
    read: int
    imported: int
    duplicates: int
    sources: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``Registry.audit`` found: problems, the chain head, and how much it could check.

    Attributes
    ----------
    problems
        Every inconsistency found; empty when the registry is intact as far as can be proven.
    head
        The chain head now (``SEQ:SHA256``).
    entries
        Number of log entries.
    signed
        Entries carrying a signature.
    key_id
        Id of the key given to check signatures (``None``: signatures were not checked).
    head_checked
        The published head that was checked (``None``: none given).
    """

    problems: tuple[Problem, ...]
    head: str
    entries: int
    signed: int
    key_id: str | None = None
    head_checked: str | None = None

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


@dataclass(frozen=True, slots=True)
class AllocationRecord:
    """One registered allocation of a randomised pilot.

    Version 1 is the allocation drawn before the pilot started; a later version is a changed
    allocation (with its ``reason``), which the report lists as a deviation.
    """

    pilot_id: str
    version: int
    scheme: str
    seed: int
    n_units: int
    allocation_sha256: str
    plan_sha256: str
    data_sha256: str | None
    reason: str | None
    recorded_at: str
    document: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (without the per-unit document)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "document"}
        return out


@dataclass(frozen=True, slots=True)
class CycleStep:
    """One earlier cycle of a learning-cycle chain, as the report shows it.

    ``change`` is what the *next* cycle changed relative to this one (from the next pilot's
    ``cycle.change``); ``evidence`` is this pilot's latest recorded evidence record, if any.
    """

    pilot_id: str
    title: str
    status: str
    change: str
    evidence: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "pilot_id": self.pilot_id,
            "title": self.title,
            "status": self.status,
            "change": self.change,
            "evidence": dict(self.evidence) if self.evidence is not None else None,
        }
