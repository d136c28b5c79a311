"""The pilot registry: pre-registration of analysis plans, recorded runs, shared evidence.

::

    from pilotlab.registry import Registry
    reg = Registry()                      # .pilotlab/registry.db, or $PILOTLAB_REGISTRY_URL
    reg.register(spec)                    # plan version 1
    reg.amend(spec, reason="...")         # version 2 if the plan changed
    reg.plan_status(spec).to_evidence()   # the evidence record's ``plan`` block
    reg.verify(head="42:3f1c...")         # [] if intact and the published head is in the chain
"""

from pilotlab.registry.chain import ENV_KEY, Head, Key, load_key, parse_head
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
    Verification,
)

__all__ = [
    "ENV_KEY",
    "ENV_URL",
    "STATUSES",
    "Deviation",
    "ExportSummary",
    "Head",
    "ImportSummary",
    "Key",
    "PilotHistory",
    "PilotSummary",
    "PlanMatch",
    "PlanVersion",
    "Problem",
    "Registry",
    "RunRecord",
    "StatusChange",
    "Verification",
    "default_url",
    "load_key",
    "parse_head",
    "resolve_url",
]
