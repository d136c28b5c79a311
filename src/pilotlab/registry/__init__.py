"""The pilot registry: pre-registration of analysis plans, recorded runs, shared evidence.

::

    from pilotlab.registry import Registry
    reg = Registry()                      # .pilotlab/registry.db, or $PILOTLAB_REGISTRY_URL
    reg.register(spec)                    # plan version 1
    reg.amend(spec, reason="...")         # version 2 if the plan changed
    reg.plan_status(spec).to_evidence()   # the evidence record's ``plan`` block
"""

from pilotlab.registry.core import ENV_URL, STATUSES, Registry, default_url, resolve_url
from pilotlab.registry.records import (
    Deviation,
    ExportSummary,
    ImportSummary,
    PilotHistory,
    PilotSummary,
    PlanMatch,
    PlanVersion,
    Problem,
    RunRecord,
    StatusChange,
)

__all__ = [
    "ENV_URL",
    "STATUSES",
    "Deviation",
    "ExportSummary",
    "ImportSummary",
    "PilotHistory",
    "PilotSummary",
    "PlanMatch",
    "PlanVersion",
    "Problem",
    "Registry",
    "RunRecord",
    "StatusChange",
    "default_url",
    "resolve_url",
]
