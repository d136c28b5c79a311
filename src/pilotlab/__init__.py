"""pilotlab: evaluate test-and-learn pilots in public services.

Declare a pilot in YAML, register its analysis plan, estimate its effects with honest
uncertainty, and write an accessible report and a machine-readable evidence record.
"""

from pilotlab.engine import evaluate
from pilotlab.exceptions import DataError, EstimationError, PilotlabError, RegistryError, SpecError
from pilotlab.results import EffectResult, Evaluation
from pilotlab.spec import PilotSpec, load_pilot

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pilotlab.report import render_report

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
    "render_report",
]


def __getattr__(name: str) -> object:
    """Import the report (and Jinja) only when ``pilotlab.render_report`` is first used."""
    if name == "render_report":
        from pilotlab.report import render_report

        return render_report
    raise AttributeError(f"module 'pilotlab' has no attribute {name!r}")
