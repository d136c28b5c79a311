"""Estimators, registered by name in :data:`ESTIMATORS` when their module is imported."""

from pilotlab.estimators import (  # noqa: F401  (registration)
    callaway_santanna,
    did,
    event_study,
    synthetic,
    twfe,
)
from pilotlab.estimators.base import (
    ESTIMATORS,
    EstimatorEntry,
    EstimatorOptions,
    get_estimator,
    register,
)

__all__ = ["ESTIMATORS", "EstimatorEntry", "EstimatorOptions", "get_estimator", "register"]
