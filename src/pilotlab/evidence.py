"""The evidence record (``evidence.json``): the machine-readable twin of the report.

Its JSON Schema ships beside this module (``evidence.schema.json``); numbers are plain JSON
numbers and never NaN (``null`` instead). See ``evidence-record.md`` for the contract.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from pilotlab.results import Evaluation, OutcomeEvaluation, json_scalar

__all__ = ["SCHEMA_ID", "evidence_record", "load_schema", "to_json", "validate_record"]

SCHEMA_ID = "pilotlab.evidence/1"


def _jsonable(value: Any) -> Any:
    """Estimator details that can be carried in JSON (tables, scalars); others are skipped."""
    if isinstance(value, pd.DataFrame):
        return [{str(k): _jsonable(v) for k, v in row.items()} for row in value.to_dict("records")]
    if isinstance(value, dict):
        items = {str(k): _jsonable(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v is not _SKIP}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.size <= 1000:
        return [json_scalar(v) for v in value.tolist()]
    if value is None or isinstance(value, bool | int | float | str | np.generic):
        return json_scalar(value)
    return _SKIP


_SKIP = object()


def _outcome(o: OutcomeEvaluation, design_mde: Mapping[str, Any] | None = None) -> dict[str, Any]:
    r = o.result
    details = {k: _jsonable(v) for k, v in r.details.items()}
    return {
        "outcome": o.column,
        "label": o.label,
        "primary": o.primary,
        "better": o.better,
        "estimator": r.estimator,
        "estimand": r.estimand,
        "inference": r.inference,
        "estimate": json_scalar(r.estimate),
        "std_error": json_scalar(r.std_error),
        "ci_lower": json_scalar(r.ci_lower),
        "ci_upper": json_scalar(r.ci_upper),
        "p_value": json_scalar(r.p_value),
        "p_value_adjusted": json_scalar(o.p_value_adjusted),
        "alpha": r.alpha,
        "baseline_mean": json_scalar(o.baseline_mean),
        "relative_effect": json_scalar(o.relative_effect),
        "mde": o.mde,
        "design_mde": {k: _jsonable(v) for k, v in design_mde.items()} if design_mde else None,
        "n_obs": r.nobs,
        "n_units": r.n_units,
        "n_treated_units": r.n_treated_units,
        "n_clusters": r.n_clusters,
        "n_periods": r.n_periods,
        "event_study": [e.to_dict() for e in r.event_study],
        "pre_trend": r.pre_trend.to_dict() if r.pre_trend else None,
        "robustness": [c.to_dict() for c in o.robustness],
        "warnings": [w.to_dict() for w in r.warnings],
        "details": {k: v for k, v in details.items() if v is not _SKIP},
    }


def evidence_record(evaluation: Evaluation) -> dict[str, Any]:
    """Build the evidence record of an evaluation as a plain dict."""
    spec = evaluation.pilot
    return {
        "schema": SCHEMA_ID,
        "generated_at": evaluation.generated_at,
        "software": dict(evaluation.software),
        "pilot": {
            "id": spec.id,
            "title": spec.title,
            "summary": spec.summary,
            "lead": spec.lead,
            "partners": list(spec.partners),
            "status": spec.status,
            "policy_area": spec.policy_area,
        },
        "plan": evaluation.plan.to_dict(),
        "data": evaluation.data.to_dict(),
        "design": {
            "estimator": evaluation.estimator.name,
            "estimator_reason": evaluation.estimator.reason,
            "inference": evaluation.inference.name,
            "inference_reason": evaluation.inference.reason,
            "alpha": evaluation.alpha,
            "multiple_testing": evaluation.multiple_testing,
            "seed": evaluation.seed,
            "covariates": list(spec.design.covariates),
        },
        "results": [
            _outcome(o, (evaluation.diagnostics.get("design_mde") or {}).get(o.column))
            for o in evaluation.outcomes
        ],
        "warnings": [w.to_dict() for w in evaluation.warnings],
        "evidence_strength": dict(evaluation.evidence_strength)
        if evaluation.evidence_strength
        else None,
        "reproducibility": {"command": evaluation.command, "seed": evaluation.seed},
    }


def to_json(record: dict[str, Any], indent: int | None = 2) -> str:
    """Serialise a record; refuses NaN so the output is strict JSON."""
    return json.dumps(record, indent=indent, allow_nan=False, ensure_ascii=False)


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the evidence record."""
    text = resources.files("pilotlab").joinpath("evidence.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def validate_record(record: dict[str, Any]) -> None:
    """Validate a record against the schema (needs the ``jsonschema`` package)."""
    import jsonschema

    jsonschema.validate(record, load_schema())
