"""pilotlab: evaluate test-and-learn pilots in public services.

Declare a pilot in YAML, register its analysis plan, estimate its effects with honest
uncertainty, and write an accessible report and a machine-readable evidence record.
"""

from pilotlab.engine import evaluate
from pilotlab.exceptions import DataError, EstimationError, PilotlabError, RegistryError, SpecError
from pilotlab.results import EffectResult, Evaluation
from pilotlab.spec import PilotSpec, load_pilot

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "EffectResult",
    "EstimationError",
    "Evaluation",
    "PilotSpec",
    "PilotlabError",
    "RegistryError",
    "SpecError",
    "__version__",
    "evaluate",
    "load_pilot",
]
