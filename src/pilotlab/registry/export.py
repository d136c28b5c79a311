"""The files ``Registry.export`` writes: evidence records as JSON lines and a flat CSV."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pilotlab.outputs import csv_cell, output_files

__all__ = ["CSV_COLUMNS", "RESULT_COLUMNS", "csv_rows", "write_export"]

# Copied from each outcome's entry in the evidence record's ``results``.
RESULT_COLUMNS = (
    "estimator", "estimand", "estimate", "std_error", "ci_lower", "ci_upper", "p_value",
    "p_value_adjusted", "alpha", "baseline_mean", "relative_effect", "n_units",
    "n_treated_units",
)  # fmt: skip
CSV_COLUMNS = (
    "pilot_id", "title", "status", "lead", "policy_area", "design_type", "registered_at",
    "plan_version", "run_id", "recorded_at", "plan_sha256", "plan_matches_registered",
    "data_sha256", "evidence_sha256", "evidence_level", "outcome", "label", "primary", "better",
    "mde", *RESULT_COLUMNS,
)  # fmt: skip


def csv_rows(
    pilot: Any, version: int | None, run: Any, record: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """One CSV row per outcome of a pilot.

    Parameters
    ----------
    pilot
        The ``pilots`` row (registration record).
    version
        The pilot's latest plan version.
    run, record
        The latest ``runs`` row and its evidence record, or ``None`` for a pilot never run
        (its rows then carry the registration only).

    Returns
    -------
    list of dict
        Registered outcomes first, in the pilot file's order, then any other outcome that has a
        result in the record.
    """
    base: dict[str, Any] = {
        "pilot_id": pilot.id,
        "title": pilot.title,
        "status": pilot.status,
        "lead": pilot.lead,
        "policy_area": pilot.policy_area,
        "design_type": pilot.design_type,
        "registered_at": pilot.registered_at,
        "plan_version": version,
    }
    results: dict[str, dict[str, Any]] = {}
    if run is not None and record is not None:
        base |= {
            "run_id": run.run_id,
            "recorded_at": run.recorded_at,
            "plan_sha256": run.plan_sha256,
            "plan_matches_registered": bool(run.matches_latest),
            "data_sha256": run.data_sha256,
            "evidence_sha256": run.evidence_sha256,
            "evidence_level": (record.get("evidence_strength") or {}).get("level"),
        }
        for res in record.get("results") or []:
            if isinstance(res, dict) and res.get("outcome") is not None:
                results.setdefault(str(res["outcome"]), res)
    outcomes = {o["column"]: o for o in pilot.outcomes}
    out = []
    for column in [*outcomes, *(c for c in results if c not in outcomes)]:
        spec = outcomes.get(column, {})
        res = results.get(column, {})
        out.append(
            base
            | {
                "outcome": column,
                "label": res.get("label") or spec.get("label"),
                "primary": res.get("primary", spec.get("primary")),
                "better": spec.get("better"),
                "mde": res.get("mde", spec.get("mde")),
            }
            | {k: res.get(k) for k in RESULT_COLUMNS}
        )
    return out


def write_export(
    out_dir: Path, items: Iterable[tuple[str | None, list[dict[str, Any]]]]
) -> tuple[Path, Path, int, int]:
    """Write ``evidence.jsonl`` and ``evidence.csv`` into ``out_dir`` as ``items`` arrive.

    ``items`` yields, per pilot, its JSON line (``None`` for a pilot never run) and its CSV
    rows. Both files are streamed into a staging folder and moved into place only when
    complete, so readers never see half a file and a failure leaves the old files as they were.
    ``out_dir`` may hold other files, but an ``evidence.jsonl`` or ``evidence.csv`` that
    pilotlab did not write (or that was edited since) is refused, never overwritten. Returns the
    two paths and the numbers of lines and rows written.
    """
    names = ("evidence.jsonl", "evidence.csv")
    n_lines = n_rows = 0
    with (
        output_files(out_dir, names, option="-o/--output") as tmp,
        (tmp / names[0]).open("w", encoding="utf-8", newline="") as jsonl,
        (tmp / names[1]).open("w", encoding="utf-8", newline="") as table,
    ):
        writer = csv.DictWriter(table, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for line, rows in items:
            if line is not None:
                jsonl.write(line + "\n")
                n_lines += 1
            # titles, leads, labels and imported records are text a spreadsheet must not run
            writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
            n_rows += len(rows)
    folder = Path(os.path.abspath(out_dir))
    return folder / names[0], folder / names[1], n_lines, n_rows
