"""pilotlab's own estimators; each module declares its entries once (see :mod:`pilotlab.catalogue`).

Importing this package registers them; the catalogue also finds them, and any other package's
estimators, through the entry-point group ``pilotlab.estimators``.
"""

from pilotlab.estimators import (  # noqa: F401  (registration)
    callaway_santanna,
    did,
    event_study,
    imputation,
    randomised,
    sun_abraham,
    synthetic,
    twfe,
)
from pilotlab.estimators.base import (
    ESTIMATORS,
    Capabilities,
    EstimatorEntry,
    EstimatorOptions,
    get_estimator,
    register,
)

__all__ = [
    "ESTIMATORS",
    "Capabilities",
    "EstimatorEntry",
    "EstimatorOptions",
    "get_estimator",
    "register",
]
