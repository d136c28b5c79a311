"""Evidence across places: random-effects meta-analysis of one metric's estimates.

``synthesise(studies, metric, ...)`` pools estimates from evidence records (this registry, other
registries' exports, evidence.json files) and from published evaluations (a CSV), on one scale.
It computes only; ``pilotlab synthesise`` writes the page, the JSON and the CSV.
"""

from pilotlab.synthesis.inputs import (
    SCALES,
    Scale,
    Study,
    read_evidence_files,
    read_external_csv,
    resolve_metric,
    studies_from_records,
)
from pilotlab.synthesis.meta import METHODS, MetaResult, Method, meta_analysis, subgroup_test, tau2
from pilotlab.synthesis.run import (
    GROUPINGS,
    SCHEMA_ID,
    LeaveOneOut,
    Sensitivity,
    Subgroup,
    SubgroupAnalysis,
    Synthesis,
    synthesise,
)

__all__ = [
    "GROUPINGS",
    "METHODS",
    "SCALES",
    "SCHEMA_ID",
    "LeaveOneOut",
    "MetaResult",
    "Method",
    "Scale",
    "Sensitivity",
    "Study",
    "Subgroup",
    "SubgroupAnalysis",
    "Synthesis",
    "load_schema",
    "meta_analysis",
    "read_evidence_files",
    "read_external_csv",
    "resolve_metric",
    "studies_from_records",
    "subgroup_test",
    "synthesise",
    "tau2",
]


def load_schema() -> dict[str, object]:
    """The JSON Schema of ``synthesis.json``."""
    import json
    from importlib import resources

    text = (
        resources.files("pilotlab.synthesis")
        .joinpath("synthesis.schema.json")
        .read_text(encoding="utf-8")
    )
    return dict(json.loads(text))
