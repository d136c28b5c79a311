"""The evidence record (``evidence.json``): the machine-readable twin of the report.

Its JSON Schema ships beside this module (``evidence.schema.json``); numbers are plain JSON
numbers and never NaN (``null`` instead). See ``evidence-record.md`` for the contract.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np

from pilotlab.results import EffectResult, Evaluation, OutcomeEvaluation, json_scalar

__all__ = [
    "RENAMED",
    "SCHEMA_ID",
    "evidence_json",
    "evidence_record",
    "json_ready",
    "load_schema",
    "to_json",
    "validate_record",
]

SCHEMA_ID = "pilotlab.evidence/1"


#: Evidence-record names of :data:`~pilotlab.results.TIDY_FIELDS` that differ from the tidy
#: column (the record says ``n_obs`` where statsmodels says ``nobs``).
RENAMED = {"nobs": "n_obs"}


def _linear(r: EffectResult) -> dict[str, Any] | None:
    """The regression behind the estimate: coefficients, standard errors and the headline contrast."""
    lin = r.linear
    if lin is None:
        return None
    fit = lin.fit
    return {
        "coefficients": list(fit.names),
        "beta": [json_scalar(v) for v in np.asarray(fit.beta, dtype=float).tolist()],
        "std_errors": [json_scalar(v) for v in fit.std_errors.tolist()],
        "contrast": [json_scalar(v) for v in lin.contrast().tolist()],
        "vcov_type": fit.vcov_type,
        "df_resid": fit.df_resid,
        "n_clusters": fit.n_clusters,
        "event_times": list(lin.event_times),
        "reference": lin.reference,
        "window": list(lin.window) if lin.window is not None else None,
    }


def _metric(evaluation: Evaluation, column: str) -> dict[str, Any] | None:
    spec = next((x for x in evaluation.pilot.outcomes if x.column == column), None)
    metric = spec.framework_metric if spec is not None else None
    return metric.to_dict() if metric is not None else None


def _outcome(evaluation: Evaluation, o: OutcomeEvaluation) -> dict[str, Any]:
    r = o.result
    vfm = evaluation.value_for_money.get(o.column)
    out: dict[str, Any] = {
        "outcome": o.column,
        "better": o.better,
        "metric": _metric(evaluation, o.column),
        "value_for_money": json_ready(vfm.to_dict()) if vfm is not None else None,
    }
    for k, v in o.headline().items():
        out[RENAMED.get(k, k)] = json_scalar(v)
    design_mde = evaluation.diagnostics.design_mde.get(o.column)
    bacon = evaluation.diagnostics.goodman_bacon.get(o.column)
    out.update(
        {
            "design_mde": design_mde.to_dict() if design_mde is not None else None,
            "event_study": [e.to_dict() for e in r.event_study],
            "pre_trend": r.pre_trend.to_dict() if r.pre_trend else None,
            "robustness": [c.to_dict() for c in o.robustness],
            "warnings": [w.to_dict() for w in r.warnings],
            "linear": _linear(r),
            "staggered": r.staggered.to_dict() if r.staggered is not None else None,
            "synthetic": r.synthetic.to_dict() if r.synthetic is not None else None,
            "group_means": r.group_means.to_dict() if r.group_means is not None else None,
            "inference_details": r.inference_details.to_dict()
            if r.inference_details is not None
            else None,
            "event_study_inference": r.event_study_inference,
            "randomised": r.randomised.to_dict() if r.randomised is not None else None,
            "goodman_bacon": bacon.to_dict() if bacon is not None else None,
        }
    )
    return out


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
        "results": [_outcome(evaluation, o) for o in evaluation.outcomes],
        "warnings": [w.to_dict() for w in evaluation.warnings],
        "evidence_strength": evaluation.evidence_strength.to_dict()
        if evaluation.evidence_strength is not None
        else None,
        "reproducibility": {"command": evaluation.command, "seed": evaluation.seed},
        **({"trial": evaluation.trial.to_dict()} if evaluation.trial is not None else {}),
        **({"cycle": evaluation.cycle.to_dict()} if evaluation.cycle is not None else {}),
    }


def json_ready(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None`` (strict JSON)."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    return json_scalar(obj) if isinstance(obj, float) else obj


def to_json(record: dict[str, Any], indent: int | None = 2) -> str:
    """Serialise a record; refuses NaN so the output is strict JSON."""
    return json.dumps(record, indent=indent, allow_nan=False, ensure_ascii=False)


def evidence_json(evaluation: Evaluation, indent: int | None = 2) -> str:
    """The evidence record of an evaluation as JSON text (what ``evidence.json`` holds)."""
    return to_json(evidence_record(evaluation), indent=indent)


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the evidence record."""
    text = resources.files("pilotlab").joinpath("evidence.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def validate_record(record: dict[str, Any]) -> None:
    """Validate a record against the schema (needs the ``jsonschema`` package)."""
    import jsonschema

    jsonschema.validate(record, load_schema())
