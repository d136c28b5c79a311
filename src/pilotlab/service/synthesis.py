"""Evidence across places in the service: one metric pooled over the evidence the caller may see.

The metrics are those of the outcome frameworks (shipped with pilotlab, plus
``$PILOTLAB_FRAMEWORKS``). The estimates of a metric are gathered from the latest evidence record
of every pilot the caller may see (and the imported records visible to them) exactly as
``pilotlab synthesise`` gathers them from a registry, and pooled by the same code
(:func:`pilotlab.synthesis.synthesise`); the full page is the same ``synthesis.html`` that
command writes, and the JSON is its ``synthesis.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pilotlab.engine.versions import software_versions
from pilotlab.exceptions import PilotlabError
from pilotlab.frameworks import FrameworkSet, Metric
from pilotlab.report.model import ReportDocument
from pilotlab.report.render import render_html
from pilotlab.report.synthesis import build_synthesis
from pilotlab.service.actions import Service, ServiceError
from pilotlab.service.auth import Principal
from pilotlab.synthesis import (
    METHODS,
    SCALES,
    Study,
    Synthesis,
    studies_from_records,
    synthesise,
)

__all__ = ["MetricRow", "Pooled", "metric_rows", "pool_metric", "synthesis_html", "too_few"]


@dataclass(frozen=True)
class MetricRow:
    """A framework metric and how many visible pilots report it."""

    metric: Metric
    pilots: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {**self.metric.to_dict(), "pilots": self.pilots}


@dataclass(frozen=True)
class Pooled:
    """One metric over the visible evidence: the synthesis, or why there is none."""

    metric: Metric
    studies: tuple[Study, ...]
    notes: tuple[str, ...]
    synthesis: Synthesis | None
    document: ReportDocument | None


def _metric_refs(record: dict[str, Any]) -> set[str]:
    found = record.get("results")
    refs = set()
    for r in found if isinstance(found, list) else []:
        m = r.get("metric") if isinstance(r, dict) else None
        if isinstance(m, dict) and m.get("ref"):
            refs.add(str(m["ref"]))
    return refs


def metric_rows(svc: Service, principal: Principal, frameworks: FrameworkSet) -> list[MetricRow]:
    """Every framework metric, with the number of visible evidence records that report it."""
    per_record = [_metric_refs(r) for r in svc.portfolio_records(principal)]
    out = []
    for fw in sorted(frameworks, key=lambda f: f.framework):
        for m in fw.metrics:
            n = sum(1 for refs in per_record if m.ref in refs or m.code in refs)
            out.append(MetricRow(m, n))
    return out


def _metric(frameworks: FrameworkSet, ref: str) -> Metric:
    try:
        return frameworks.metric(ref)
    except ValueError as exc:
        raise ServiceError(
            404, f"no metric '{ref[:120]}': {exc}; the metrics are listed at /synthesis"
        ) from None


def pool_metric(
    svc: Service,
    principal: Principal,
    frameworks: FrameworkSet,
    ref: str,
    *,
    method: str = "reml",
    scale: str = "units",
) -> Pooled:
    """Pool one metric over the evidence the caller may see (``synthesis`` is ``None`` when
    fewer than two estimates are visible)."""
    metric = _metric(frameworks, ref)
    if method not in METHODS:
        raise ServiceError(422, f"method: found {method[:20]!r}; allowed: {', '.join(METHODS)}")
    if scale not in SCALES:
        raise ServiceError(422, f"scale: found {scale[:20]!r}; allowed: {', '.join(SCALES)}")
    records = svc.portfolio_records(principal)
    studies, notes = studies_from_records(records, metric.ref, metric, scale, "registry")  # type: ignore[arg-type]
    if len(studies) < 2:
        return Pooled(metric, tuple(studies), tuple(notes), None, None)
    try:
        s = synthesise(
            studies,
            metric.ref,
            metric,
            method=method,  # type: ignore[arg-type]
            scale=scale,
            notes=notes,
            generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            software=software_versions(),
        )
    except PilotlabError as exc:
        raise ServiceError(422, str(exc)) from None
    return Pooled(metric, tuple(studies), tuple(notes), s, build_synthesis(s))


def too_few(pooled: Pooled) -> str:
    """Why a metric has no synthesis for this caller."""
    found = "no estimate" if not pooled.studies else "only one estimate"
    ref = pooled.metric.ref
    return (
        f"there is {found} of {ref} among the pilots you may see; pooling needs at least two "
        f"(see /synthesis/{ref})"
    )


def synthesis_html(pooled: Pooled) -> str:
    """The full synthesis page, as ``pilotlab synthesise`` writes it."""
    assert pooled.document is not None
    return render_html(pooled.document, "synthesis.html.j2")
