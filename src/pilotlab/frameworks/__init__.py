"""Outcome frameworks: shared, versioned lists of metrics that make evidence comparable.

A framework is a YAML file (``framework``, ``version``, ``title``, ``metrics``); each metric has
a ``code``, ``name``, ``definition``, ``unit``, ``better`` direction and ``source``, and may give
a ``monetary_value`` per unit (value, currency, price year and the published source of the
value). pilotlab ships a starter framework of common local outcomes (``local``); a programme
adds its own file or folder (``frameworks:`` in the pilot file, ``--frameworks`` on the command
line, or ``$PILOTLAB_FRAMEWORKS``). A pilot's outcome names a metric as ``<framework>/<code>``.
"""

from pilotlab.frameworks.catalogue import (
    ENV_PATHS,
    FrameworkSet,
    builtin_frameworks,
    load_framework,
    load_frameworks,
)
from pilotlab.frameworks.model import (
    METRIC_REF,
    Framework,
    Metric,
    MonetaryValue,
    same_unit,
    split_ref,
)

__all__ = [
    "ENV_PATHS",
    "METRIC_REF",
    "Framework",
    "FrameworkSet",
    "Metric",
    "MonetaryValue",
    "builtin_frameworks",
    "load_framework",
    "load_frameworks",
    "same_unit",
    "split_ref",
]
