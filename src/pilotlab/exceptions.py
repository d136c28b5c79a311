"""Errors and warnings raised by pilotlab.

Every user mistake is a :class:`PilotlabError` whose message names the file, key path or column,
says what was found, what is allowed and how to fix it. The command line turns these into a
one-paragraph message and exit code 1, never a traceback.

::

    PilotlabError
    ├── SpecError          the pilot file: YAML syntax, unknown / missing keys, invalid values
    ├── DataError          the data file: missing, unreadable, wrong columns, malformed periods
    ├── EstimationError    the design cannot be estimated (no comparison units, singular design)
    └── RegistryError      the pilot registry: unknown pilot, conflicting registration

    PilotlabWarning (UserWarning)
    ├── FewClustersWarning       too few (treated) clusters for cluster-robust inference
    ├── UnbalancedPanelWarning   units observed in different sets of periods
    ├── MissingDataWarning       outcome values missing and dropped
    ├── RegistrationDateWarning  registration start date outside the first treated period
    └── DesignWarning            anything else the reader of a report should know
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "DesignWarning",
    "EstimationError",
    "FewClustersWarning",
    "MissingDataWarning",
    "PilotlabError",
    "PilotlabWarning",
    "RegistrationDateWarning",
    "RegistryError",
    "SpecError",
    "UnbalancedPanelWarning",
]


class PilotlabError(Exception):
    """Base class of every error caused by a pilot file, its data or the registry."""


class SpecError(PilotlabError):
    """The pilot file is not valid."""


class DataError(PilotlabError):
    """The data file cannot be used as the pilot file describes it."""


class EstimationError(PilotlabError):
    """The requested estimator cannot be applied to this design."""


class RegistryError(PilotlabError):
    """A registry operation failed for a reason the user can fix."""


class PilotlabWarning(UserWarning):
    """Base class of pilotlab's warnings; each also appears in the report."""


class FewClustersWarning(PilotlabWarning):
    """Too few clusters (or treated clusters) for cluster-robust standard errors."""


class UnbalancedPanelWarning(PilotlabWarning):
    """Units are observed in different sets of periods."""


class MissingDataWarning(PilotlabWarning):
    """Missing outcome values were dropped."""


class DesignWarning(PilotlabWarning):
    """A property of the design the reader should know about."""


class RegistrationDateWarning(PilotlabWarning):
    """The registration's start date and the first treated period in the data disagree."""
