"""Immutable result objects shared by estimators, inference, the engine, the report and the registry.

The bottom layer of pilotlab: pure data, importing nothing else of pilotlab. ``core`` holds the
results (``EffectResult``, ``Evaluation``, ...), ``parts`` the typed parts an ``EffectResult``
carries (linear fit, staggered and synthetic tables, inference records) and ``checks`` what each
robustness check records.
"""

from pilotlab.results.checks import (
    AlternativeEstimator,
    CheckDetails,
    HonestDiD,
    LeaveOneOut,
    NotRun,
    PlaceboInSpace,
    PlaceboInTime,
)
from pilotlab.results.core import (
    OUTCOME_FIELDS,
    TIDY_FIELDS,
    Choice,
    DataSummary,
    EffectResult,
    Evaluation,
    EventTimeEstimate,
    OutcomeEvaluation,
    PlanInfo,
    PrePeriodCells,
    PrePeriodEstimates,
    PreTrendTest,
    RobustnessCheck,
)
from pilotlab.results.parts import (
    BaconDecomposition,
    DesignDiagnostics,
    GroupMeans,
    InferenceRecord,
    LinearFit,
    LinearParts,
    PermutationRecord,
    PilotLike,
    StaggeredTables,
    SyntheticTables,
    Table,
    VcovType,
    WildBootstrapRecord,
    json_scalar,
)

__all__ = [
    "OUTCOME_FIELDS",
    "TIDY_FIELDS",
    "AlternativeEstimator",
    "BaconDecomposition",
    "CheckDetails",
    "Choice",
    "DataSummary",
    "DesignDiagnostics",
    "EffectResult",
    "Evaluation",
    "EventTimeEstimate",
    "GroupMeans",
    "HonestDiD",
    "InferenceRecord",
    "LeaveOneOut",
    "LinearFit",
    "LinearParts",
    "NotRun",
    "OutcomeEvaluation",
    "PermutationRecord",
    "PilotLike",
    "PlaceboInSpace",
    "PlaceboInTime",
    "PlanInfo",
    "PrePeriodCells",
    "PrePeriodEstimates",
    "PreTrendTest",
    "RobustnessCheck",
    "StaggeredTables",
    "SyntheticTables",
    "Table",
    "VcovType",
    "WildBootstrapRecord",
    "json_scalar",
]
