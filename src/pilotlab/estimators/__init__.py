"""Estimators, registered by name in :data:`ESTIMATORS` when their module is imported."""

from pilotlab.estimators import did, event_study, twfe  # noqa: F401  (registration)
from pilotlab.estimators import callaway_santanna  # noqa: F401  (registration)
from pilotlab.estimators.base import (
    ESTIMATORS,
    EstimatorEntry,
    EstimatorOptions,
    get_estimator,
    register,
)

__all__ = ["ESTIMATORS", "EstimatorEntry", "EstimatorOptions", "get_estimator", "register"]
