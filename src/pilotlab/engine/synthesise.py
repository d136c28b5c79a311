"""``pilotlab synthesise``: gather one metric's estimates, pool them, write the outputs.

Estimates come from evidence files (``evidence.json`` or a registry export's
``evidence.jsonl``) or, when none are given, from the registry (its own runs and the records it
imported), plus an optional CSV of external estimates. Nothing is written unless every input is
valid and the pooling succeeded; the output folder then gains ``synthesis.html``,
``synthesis.json``, ``synthesis.csv`` and ``tables/``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pilotlab.engine.versions import software_versions
from pilotlab.exceptions import PilotlabError
from pilotlab.frameworks import load_frameworks
from pilotlab.outputs import csv_cell, output_folder
from pilotlab.registry.service import open_existing
from pilotlab.report.build import csv_name
from pilotlab.report.render import render_html, table_csv
from pilotlab.report.synthesis import build_synthesis
from pilotlab.synthesis import (
    Method,
    Scale,
    Study,
    Synthesis,
    read_evidence_files,
    read_external_csv,
    resolve_metric,
    studies_from_records,
    synthesise,
)

__all__ = ["SynthesisRun", "gather_and_pool", "run_synthesis", "synthesis_csv"]

CSV_COLUMNS = (
    "row", "id", "label", "origin", "metric", "scale", "estimate", "std_error", "ci_lower",
    "ci_upper", "weight_percent", "policy_area", "design", "evidence_level", "source",
)  # fmt: skip


@dataclass(frozen=True)
class SynthesisRun:
    """What ``run_synthesis`` did: the synthesis and where it was written."""

    synthesis: Synthesis
    out_dir: Path
    files: tuple[str, ...]


def gather_and_pool(
    metric: str,
    evidence: Sequence[str | os.PathLike[str]] = (),
    *,
    external: str | os.PathLike[str] | None = None,
    method: Method = "reml",
    scale: Scale = "units",
    frameworks: Sequence[str | os.PathLike[str]] = (),
    registry_url: str | None = None,
) -> Synthesis:
    """Read every source of estimates of ``metric`` and pool them (no files written)."""
    known = load_frameworks(frameworks, key="--frameworks")
    ref, info = resolve_metric(known, metric)
    notes: list[str] = []
    studies: list[Study] = []
    if evidence:
        records = read_evidence_files(evidence)
        found, left = studies_from_records(records, ref, info, scale, "evidence file")
    else:
        registry = open_existing(registry_url)
        if registry is None and external is None:
            raise PilotlabError(
                "no registry found (.pilotlab/registry.db) and no evidence files given; pass "
                "evidence.json files, a registry export (evidence.jsonl), --external "
                "estimates.csv or --registry URL"
            )
        records = []
        if registry is not None:
            with registry:
                records = registry.portfolio_records()
        found, left = studies_from_records(records, ref, info, scale, "registry")
    studies += found
    notes += left
    if external is not None:
        ext, ext_notes = read_external_csv(external, ref, info, scale, known)
        studies += ext
        notes += ext_notes
    if info is None and not any("no known outcome framework" in n for n in notes):
        notes.append(
            f"No known outcome framework defines the metric '{metric}'; the estimates are "
            "pooled as given, so check that they measure the same outcome in the same unit."
        )
    return synthesise(
        studies,
        ref,
        info,
        method=method,
        scale=scale,
        notes=notes,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        software=software_versions(),
    )


def synthesis_csv(s: Synthesis) -> str:
    """``synthesis.csv``: one row per estimate, then the pooled rows."""
    z = 1.959963984540054
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    w.writeheader()
    for st, weight in zip(s.studies, s.pooled.weights, strict=True):
        w.writerow(
            {
                k: csv_cell(v)
                for k, v in {
                    "row": "estimate",
                    "id": st.id,
                    "label": st.label,
                    "origin": st.origin,
                    "metric": st.metric,
                    "scale": st.scale,
                    "estimate": st.estimate,
                    "std_error": st.std_error,
                    "ci_lower": st.estimate - z * st.std_error,
                    "ci_upper": st.estimate + z * st.std_error,
                    "weight_percent": weight,
                    "policy_area": st.policy_area,
                    "design": st.design,
                    "evidence_level": st.evidence_level,
                    "source": st.source,
                }.items()
            }
        )
    p = s.pooled
    for row, est, se, lo, hi in (
        ("pooled_random_effects", p.estimate, p.std_error, p.ci_lower, p.ci_upper),
        ("pooled_hartung_knapp", p.estimate, p.hk_std_error, p.hk_ci_lower, p.hk_ci_upper),
        ("prediction_interval", p.estimate, None, p.prediction_lower, p.prediction_upper),
        ("fixed_effect", p.fixed_estimate, p.fixed_std_error, p.fixed_ci_lower, p.fixed_ci_upper),
    ):
        w.writerow(
            {
                "row": row,
                "metric": s.metric,
                "scale": s.scale,
                "estimate": est,
                "std_error": se,
                "ci_lower": lo,
                "ci_upper": hi,
            }
        )
    return buf.getvalue()


def run_synthesis(
    metric: str,
    evidence: Sequence[str | os.PathLike[str]] = (),
    *,
    out: str | os.PathLike[str],
    external: str | os.PathLike[str] | None = None,
    method: Method = "reml",
    scale: Scale = "units",
    frameworks: Sequence[str | os.PathLike[str]] = (),
    registry_url: str | None = None,
    org_name: str | None = None,
) -> SynthesisRun:
    """Pool ``metric`` and write ``synthesis.html``, ``synthesis.json``, ``synthesis.csv`` and
    ``tables/`` into the folder ``out`` (whole or not at all).

    Raises
    ------
    PilotlabError
        Any bad input (a missing file, an unknown framework, an external CSV with missing
        columns, a standard error that is not positive, mixed scales, fewer than two estimates)
        or an output folder pilotlab may not write; nothing is written then.
    """
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise PilotlabError(
            f"-o/--output: '{out_dir}' is a file; give a folder for the synthesis outputs"
        )
    s = gather_and_pool(
        metric, evidence, external=external, method=method, scale=scale,
        frameworks=frameworks, registry_url=registry_url,
    )  # fmt: skip
    doc = build_synthesis(s)
    files = {
        "synthesis.html": render_html(doc, "synthesis.html.j2", org_name=org_name),
        "synthesis.json": json.dumps(s.to_dict(), indent=2, allow_nan=False, ensure_ascii=False),
        "synthesis.csv": synthesis_csv(s),
    }
    files |= {f"tables/{csv_name(t)}": table_csv(t) for t in doc.tables()}
    with output_folder(out_dir) as tmp:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8")
    return SynthesisRun(s, Path(os.path.abspath(out_dir)), tuple(files))
