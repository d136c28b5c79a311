"""pilotlab: evaluate test-and-learn pilots in public services.

Declare a pilot in YAML, register its analysis plan, estimate its effects with honest
uncertainty, and write an accessible report and a machine-readable evidence record.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pilotlab.exceptions import (
    DataError,
    EstimationError,
    PilotlabError,
    PilotlabWarning,
    RegistryError,
    SpecError,
)

if TYPE_CHECKING:
    from pilotlab.engine import (
        PilotRun,
        evaluate,
        randomise_pilot,
        run_pilot,
        run_power,
        write_power_report,
    )
    from pilotlab.evidence import evidence_json
    from pilotlab.power import PowerResult
    from pilotlab.registry import Registry
    from pilotlab.report import render_report
    from pilotlab.results import EffectResult, Evaluation
    from pilotlab.spec import PilotSpec, load_pilot

__version__ = "0.1.0"

#: The public API, sorted; ``dir(pilotlab)`` shows exactly these names.
__all__ = [
    "DataError",
    "EffectResult",
    "EstimationError",
    "Evaluation",
    "PilotRun",
    "PilotSpec",
    "PilotlabError",
    "PilotlabWarning",
    "PowerResult",
    "Registry",
    "RegistryError",
    "SpecError",
    "__version__",
    "evaluate",
    "evidence_json",
    "load_pilot",
    "randomise_pilot",
    "render_report",
    "run_pilot",
    "run_power",
    "write_power_report",
]

# Imported on first use, so that `import pilotlab` and the registry commands need not load the
# numerical stack or Jinja.
_LAZY = {
    "evaluate": "pilotlab.engine",
    "PilotRun": "pilotlab.engine",
    "evidence_json": "pilotlab.evidence",
    "run_pilot": "pilotlab.engine",
    "randomise_pilot": "pilotlab.engine",
    "run_power": "pilotlab.engine",
    "write_power_report": "pilotlab.engine",
    "PowerResult": "pilotlab.power",
    "Registry": "pilotlab.registry",
    "render_report": "pilotlab.report",
    "EffectResult": "pilotlab.results",
    "Evaluation": "pilotlab.results",
    "PilotSpec": "pilotlab.spec",
    "load_pilot": "pilotlab.spec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pilotlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API only (``__all__``), not the modules and helpers imported along the way."""
    return list(__all__)
