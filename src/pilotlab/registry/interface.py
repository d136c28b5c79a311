"""What every registry offers the command line: the one interface of a database registry
(:class:`~pilotlab.registry.Registry`) and of a registry behind an evidence service
(:class:`~pilotlab.registry.remote.RemoteRegistry`).

Both classes are checked against :class:`RegistryInterface` by mypy (see the end of this
module), so a method added to or changed in one and not the other fails the type check.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pilotlab.registry.chain import Head
from pilotlab.registry.records import (
    AllocationRecord,
    CycleStep,
    ExportSummary,
    ImportSummary,
    PilotHistory,
    PilotSummary,
    PlanMatch,
    PlanVersion,
    RunRecord,
    StatusChange,
)
from pilotlab.spec import PilotSpec

__all__ = ["RegistryInterface"]


@runtime_checkable
class RegistryInterface(Protocol):
    """The registry's operations, wherever the registry is."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def close(self) -> None:
        """Release the connection."""

    def register(self, spec: PilotSpec, *, data_seen: bool = False) -> PlanVersion:
        """Register a pilot and its analysis plan (version 1); refused if it is registered."""
        ...

    def amend(self, spec: PilotSpec, reason: str, data_seen: bool = False) -> PlanVersion:
        """A new plan version if the plan changed (else the latest), with the reason."""
        ...

    def set_status(self, pilot_id: str, status: str) -> StatusChange:
        """Change a pilot's status (planned, live, completed, stopped)."""
        ...

    def list_pilots(self) -> list[PilotSummary]:
        """Every pilot (that the caller may see), by id."""
        ...

    def show(self, pilot_id: str) -> PilotHistory:
        """One pilot's registration, plan versions, runs and status changes."""
        ...

    def plan_status(self, spec: PilotSpec) -> PlanMatch:
        """How a pilot file's plan compares with the registered versions."""
        ...

    def record_run(
        self,
        spec: PilotSpec,
        evidence: Mapping[str, Any],
        data_sha256: str | None,
        software: Mapping[str, Any],
        *,
        started_at: datetime | str | None = None,
        finished_at: datetime | str | None = None,
    ) -> RunRecord:
        """Record one run of a registered pilot with its evidence record, in one transaction."""
        ...

    def portfolio_records(self) -> list[dict[str, Any]]:
        """Latest evidence record of every (visible) pilot, local and imported."""
        ...

    def export(self, path_dir: str | Path) -> ExportSummary:
        """Write ``evidence.jsonl`` and ``evidence.csv`` of the (visible) pilots."""
        ...

    def import_records(self, path: str | Path) -> ImportSummary:
        """Import an export of another registry (whole or not at all)."""
        ...

    def pilots_with_metric(self, metric: str) -> list[PilotSummary]:
        """The pilots with an outcome measuring ``metric``."""
        ...

    def allocations(self, pilot_id: str) -> tuple[AllocationRecord, ...]:
        """Every registered allocation of a pilot, oldest first."""
        ...

    def cycle_chain(self, pilot_id: str) -> tuple[CycleStep, ...]:
        """The earlier cycles of a pilot's learning chain, oldest first."""
        ...

    def record_allocation(
        self,
        spec: PilotSpec,
        document: Mapping[str, Any],
        *,
        allocation_sha256: str,
        scheme: str,
        seed: int,
        n_units: int,
        data_sha256: str | None = None,
        reason: str | None = None,
    ) -> tuple[AllocationRecord, PlanVersion | None]:
        """Record a randomised pilot's allocation (registering the pilot with it if needed)."""
        ...

    def head(self) -> Head | str:
        """The chain head, ``SEQ:SHA256`` when printed."""
        ...


if TYPE_CHECKING:  # mypy checks that both registries satisfy the interface
    from pilotlab.registry.core import Registry
    from pilotlab.registry.remote import RemoteRegistry

    def _both(local: Registry, remote: RemoteRegistry) -> tuple[RegistryInterface, ...]:
        return local, remote
