"""The estimates a synthesis pools: from evidence records and from a CSV of external estimates.

Every estimate becomes a :class:`Study` on one scale: ``units`` (the metric's own unit, as each
pilot estimated it) or ``percent`` (100 x estimate / |pre-pilot mean|, the standard error scaled
the same way, treating the pre-pilot mean as known).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from scipy import stats

from pilotlab import catalogue
from pilotlab.exceptions import PilotlabError
from pilotlab.frameworks import FrameworkSet, Metric

__all__ = [
    "EXTERNAL_COLUMNS",
    "SCALES",
    "Scale",
    "Study",
    "read_evidence_files",
    "read_external_csv",
    "resolve_metric",
    "studies_from_records",
]

Scale = Literal["units", "percent"]
SCALES: dict[str, str] = {
    "units": "outcome units",
    "percent": "percent of the pre-pilot mean",
}
#: Columns of the external-estimates CSV (``std_error`` or both ``ci_lower`` and ``ci_upper``).
EXTERNAL_COLUMNS = {
    "required": ("id", "metric", "estimate", "label"),
    "uncertainty": ("std_error", "ci_lower", "ci_upper"),
    "optional": ("ci_level", "scale", "policy_area", "design", "evidence_level", "source"),
}
MAX_CSV_BYTES = 20_000_000


@dataclass(frozen=True)
class Study:
    """One estimate to pool."""

    id: str
    label: str
    estimate: float
    std_error: float
    scale: str
    origin: str  # "registry", "evidence file", "external"
    metric: str
    policy_area: str | None = None
    design: str | None = None
    evidence_level: int | None = None
    source: str | None = None
    cost_per_unit: float | None = None  # cost per unit of outcome change (value for money)
    benefit_cost_ratio: float | None = None
    npv: float | None = None
    price_year: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def resolve_metric(frameworks: FrameworkSet, code: str) -> tuple[str, Metric | None]:
    """The metric reference ``--metric`` means, and the metric (``None`` if no framework has it).

    A bare code is looked up in every framework; a code two frameworks define is refused with
    both references.
    """
    found = frameworks.find(code)
    if len(found) > 1:
        refs = ", ".join(m.ref for m in found)
        raise PilotlabError(
            f"--metric: '{code}' is a metric of more than one framework ({refs}); give the "
            "one you mean as <framework>/<code>"
        )
    if found:
        return found[0].ref, found[0]
    return code, None


def _same_metric(ref_or_code: str, wanted: str, metric: Metric | None) -> bool:
    """Whether a record's or a row's metric is the one asked for: the same reference, or the
    bare code of the framework metric asked for (a metric no framework knows matches exactly, or
    by its code when only a code was asked for)."""
    if ref_or_code == wanted:
        return True
    if metric is not None:
        return ref_or_code in (metric.ref, metric.code)
    return "/" not in wanted and ref_or_code.rsplit("/", 1)[-1] == wanted


def _block(rec: dict[str, Any], key: str) -> dict[str, Any]:
    value = rec.get(key)
    return value if isinstance(value, dict) else {}


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def studies_from_records(
    records: Iterable[dict[str, Any]],
    wanted: str,
    metric: Metric | None,
    scale: Scale,
    origin: str,
) -> tuple[list[Study], list[str]]:
    """The results in evidence records that measure the metric, and notes on those left out."""
    out: list[Study] = []
    notes: list[str] = []
    for rec in records:
        pilot = _block(rec, "pilot")
        pid = str(pilot.get("id") or "?")
        title = str(pilot.get("title") or pid)
        es = _block(rec, "evidence_strength")
        design = _block(rec, "design")
        results = [r for r in rec.get("results") or [] if isinstance(r, dict)]
        matching = [
            r
            for r in results
            if isinstance(r.get("metric"), dict)
            and _same_metric(str(r["metric"].get("ref", "")), wanted, metric)
        ]
        for r in matching:
            e, se = _num(r.get("estimate")), _num(r.get("std_error"))
            label = (
                title if len(matching) == 1 else f"{title}: {r.get('label') or r.get('outcome')}"
            )
            sid = pid if len(matching) == 1 else f"{pid}/{r.get('outcome')}"
            prov = _block(rec, "provenance")
            if prov.get("imported_from"):  # another registry's pilot: its ids are its own
                sid = f"{sid} ({prov.get('registry_name') or prov.get('registry_id')})"
            if e is None or se is None:
                notes.append(f"{label} has no estimate or standard error and is left out.")
                continue
            if scale == "percent":
                base = _num(r.get("baseline_mean"))
                if not base:
                    notes.append(
                        f"{label} has no pre-pilot mean, so it cannot be put on the percent "
                        "scale and is left out."
                    )
                    continue
                e, se = 100 * e / abs(base), 100 * se / abs(base)
            vfm = _block(r, "value_for_money")
            out.append(
                Study(
                    id=sid,
                    label=label,
                    estimate=e,
                    std_error=se,
                    scale=scale,
                    origin=origin,
                    metric=str(r["metric"].get("ref")),
                    policy_area=pilot.get("policy_area"),
                    design=catalogue.title(str(design["estimator"]))
                    if design.get("estimator")
                    else None,
                    evidence_level=es.get("level") if isinstance(es.get("level"), int) else None,
                    source=_block(rec, "provenance").get("registry_name"),
                    cost_per_unit=_num(vfm.get("cost_per_unit_change")),
                    benefit_cost_ratio=_num(vfm.get("benefit_cost_ratio")),
                    npv=_num(vfm.get("npv")),
                    price_year=vfm.get("price_year")
                    if isinstance(vfm.get("price_year"), int)
                    else None,
                )
            )
    return out, notes


def read_evidence_files(paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Evidence records from ``evidence.json`` files (or their folders) and registry exports
    (``evidence.jsonl``, one record per line, or the folder holding it)."""
    records: list[dict[str, Any]] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for name in ("evidence.json", "evidence.jsonl"):
                if (path / name).is_file():
                    path = path / name
                    break
        if not path.is_file():
            raise PilotlabError(
                f"{p}: no evidence record there; give evidence.json files (or the folders "
                "`pilotlab run` wrote them to) or an evidence.jsonl written by `pilotlab export`"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PilotlabError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
        if path.suffix == ".jsonl":
            items = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
        else:
            items = [(0, text)]
        for line_no, chunk in items:
            where = f"{path}, line {line_no}" if line_no else str(path)
            try:
                rec = json.loads(chunk)
            except json.JSONDecodeError as exc:
                raise PilotlabError(
                    f"{where}: not valid JSON ({exc.msg}); give the file `pilotlab run` or "
                    "`pilotlab export` wrote"
                ) from None
            if not isinstance(rec, dict) or not str(rec.get("schema", "")).startswith(
                "pilotlab.evidence/"
            ):
                raise PilotlabError(
                    f"{where}: not a pilotlab evidence record (no 'schema': "
                    "'pilotlab.evidence/1'); give the file `pilotlab run` or `pilotlab export` "
                    "wrote"
                )
            records.append(rec)
    return records


def _float_cell(value: str, where: str, column: str) -> float | None:
    text = value.strip()
    if not text:
        return None
    try:
        f = float(text)
    except ValueError:
        raise PilotlabError(
            f"{where}: column '{column}' holds {text!r}, which is not a number; write a plain "
            "number (e.g. -0.42)"
        ) from None
    if not math.isfinite(f):
        raise PilotlabError(f"{where}: column '{column}' holds {text!r}; give a finite number")
    return f


def read_external_csv(
    path: str | os.PathLike[str],
    wanted: str,
    metric: Metric | None,
    scale: Scale,
    frameworks: FrameworkSet,
) -> tuple[list[Study], list[str]]:
    """External estimates (published evaluations) of the metric from a CSV file.

    Columns: ``id``, ``metric``, ``estimate``, ``label`` and either ``std_error`` or
    ``ci_lower`` and ``ci_upper`` (with ``ci_level``, default 0.95); optional ``scale``
    (``units`` or ``percent``, default ``units``), ``policy_area``, ``design``,
    ``evidence_level`` (1 to 5) and ``source``. Rows of other metrics are skipped.

    Raises
    ------
    PilotlabError
        The file is missing or unreadable, a column is missing, a value is not a number, a
        standard error is not positive, or a row's scale differs from the synthesis's.
    """
    p = Path(path)
    if not p.is_file():
        raise PilotlabError(f"--external: '{p}' is not a file; give the CSV of external estimates")
    if p.stat().st_size > MAX_CSV_BYTES:
        raise PilotlabError(f"--external: '{p}' is larger than {MAX_CSV_BYTES:,} bytes")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PilotlabError(f"--external: '{p}' cannot be read as UTF-8 text ({exc})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in EXTERNAL_COLUMNS["required"] if c not in header]
    has_se = "std_error" in header
    has_ci = "ci_lower" in header and "ci_upper" in header
    if not (has_se or has_ci):
        missing.append("std_error (or ci_lower and ci_upper)")
    if missing:
        raise PilotlabError(
            f"{p}: missing column(s) {', '.join(missing)}; the external-estimates CSV needs "
            "id, metric, estimate, label and std_error or ci_lower and ci_upper "
            f"(found: {', '.join(header) or 'no header'})"
        )
    reader.fieldnames = header
    studies: list[Study] = []
    notes: list[str] = []
    unknown: set[str] = set()
    for line, row in enumerate(reader, start=2):
        where = f"{p}, line {line}"
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        ref = cells.get("metric", "")
        if not _same_metric(ref, wanted, metric):
            continue
        if not frameworks.find(ref):
            unknown.add(ref)
        est = _float_cell(cells.get("estimate", ""), where, "estimate")
        if est is None:
            raise PilotlabError(f"{where}: column 'estimate' is empty; give the estimate")
        se = _float_cell(cells.get("std_error", ""), where, "std_error") if has_se else None
        if se is None:
            lo = _float_cell(cells.get("ci_lower", ""), where, "ci_lower") if has_ci else None
            hi = _float_cell(cells.get("ci_upper", ""), where, "ci_upper") if has_ci else None
            if lo is None or hi is None:
                raise PilotlabError(
                    f"{where}: no std_error and no ci_lower/ci_upper; give the standard error "
                    "or the confidence interval of the estimate"
                )
            level = _float_cell(cells.get("ci_level", ""), where, "ci_level") or 0.95
            if level > 1:
                level /= 100  # 95 -> 0.95
            if not 0 < level < 1:
                raise PilotlabError(
                    f"{where}: ci_level {level} is not between 0 and 1; write e.g. 0.95"
                )
            if hi <= lo:
                raise PilotlabError(
                    f"{where}: ci_upper ({hi}) is not above ci_lower ({lo}); check the interval"
                )
            se = (hi - lo) / (2 * float(stats.norm.ppf(0.5 + level / 2)))
        if se <= 0:
            raise PilotlabError(f"{where}: std_error is {se}; a standard error must be positive")
        row_scale = cells.get("scale") or "units"
        if row_scale not in SCALES:
            raise PilotlabError(
                f"{where}: scale '{row_scale}' is not allowed; use units or percent"
            )
        if row_scale != scale:
            raise PilotlabError(
                f"{where}: this estimate is on the {row_scale} scale but the synthesis pools on "
                f"the {scale} scale; mixing scales would pool unlike numbers: convert the "
                f"estimate or run with --scale {row_scale}"
            )
        lvl_text = cells.get("evidence_level", "")
        level_int: int | None = None
        if lvl_text:
            if lvl_text not in {"1", "2", "3", "4", "5"}:
                raise PilotlabError(
                    f"{where}: evidence_level '{lvl_text}' is not a level 1 to 5 of the "
                    "Maryland Scientific Methods Scale; leave it empty if unknown"
                )
            level_int = int(lvl_text)
        sid = cells.get("id") or f"row {line}"
        studies.append(
            Study(
                id=sid,
                label=cells.get("label") or sid,
                estimate=est,
                std_error=se,
                scale=scale,
                origin="external",
                metric=ref,
                policy_area=cells.get("policy_area") or None,
                design=cells.get("design") or None,
                evidence_level=level_int,
                source=cells.get("source") or None,
            )
        )
    for ref in sorted(unknown):
        notes.append(
            f"The external estimates name the metric '{ref}', which no known outcome framework "
            "defines; they are pooled as given, so check that they measure the same outcome in "
            "the same unit as the others."
        )
    return studies, notes
