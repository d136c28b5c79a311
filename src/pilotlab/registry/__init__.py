"""The pilot registry: pre-registration of analysis plans, recorded runs, shared evidence.

::

    from pilotlab.registry import Registry
    reg = Registry()                      # .pilotlab/registry.db, or $PILOTLAB_REGISTRY_URL
    reg.register(spec)                    # plan version 1
    reg.amend(spec, reason="...")         # version 2 if the plan changed
    reg.plan_status(spec).to_evidence()   # the evidence record's ``plan`` block
    reg.verify(head="42:3f1c...")         # [] if intact and the published head is in the chain
"""

from typing import TYPE_CHECKING

from pilotlab.lazy import lazy_exports

if TYPE_CHECKING:
    from pilotlab.registry.chain import ENV_KEY, Head, Key, load_key, parse_head
    from pilotlab.registry.core import STATUSES, Registry
    from pilotlab.registry.location import ENV_URL, default_url, resolve_url
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

#: Where each public name lives (the database layer is imported only when a registry is used).
_HOME = {
    "Deviation": "records",
    "ENV_KEY": "chain",
    "ENV_URL": "location",
    "ExportSummary": "records",
    "Head": "chain",
    "ImportSummary": "records",
    "Key": "chain",
    "PilotHistory": "records",
    "PilotSummary": "records",
    "PlanMatch": "records",
    "PlanVersion": "records",
    "Problem": "records",
    "Registry": "core",
    "RunRecord": "records",
    "STATUSES": "core",
    "StatusChange": "records",
    "Verification": "records",
    "default_url": "location",
    "load_key": "chain",
    "parse_head": "chain",
    "resolve_url": "location",
}
__getattr__ = lazy_exports(__name__, _HOME)

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
