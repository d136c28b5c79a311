"""The pilot file: pydantic models and loading."""

from pilotlab.spec.load import LoadedPilot, canonical_json, load_pilot, parse_pilot, plan_sha256
from pilotlab.spec.models import PilotSpec

__all__ = ["LoadedPilot", "PilotSpec", "canonical_json", "load_pilot", "parse_pilot", "plan_sha256"]
