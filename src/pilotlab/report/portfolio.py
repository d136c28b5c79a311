"""A portfolio page across pilots, built from their evidence records (``evidence.json``).

One row per pilot and primary outcome: status, effect and interval, evidence level and a link to
the pilot's report; a forest plot puts the primary effects side by side. Effects are shown
relative to each outcome's pre-pilot mean so that different outcomes share one scale; a pilot
whose baseline is missing appears in the table but not in the plot.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pilotlab.exceptions import PilotlabError
from pilotlab.report import charts
from pilotlab.report.format import NA, decimals_for_scale, fmt_ci, fmt_num, fmt_pct, is_number
from pilotlab.report.model import Figure, Paragraph, ReportDocument, Section, Table
from pilotlab.report.render import render_html, write_tables

__all__ = ["build_portfolio", "cycle_chains", "gap_map", "portfolio_from_paths", "render_portfolio"]

#: Key added to a record by :func:`portfolio_from_paths`: the report beside its evidence.json.
REPORT_KEY = "report_path"


def portfolio_from_paths(paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Read evidence records from files (or folders holding ``evidence.json``).

    Each record gets ``report_path`` (absolute path of ``report.html`` in the same folder, when
    it exists) so :func:`render_portfolio` can link to it.

    Raises
    ------
    PilotlabError
        When a path does not exist, is not JSON, or is not an evidence record.
    """
    records = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            path = path / "evidence.json"
        if not path.is_file():
            raise PilotlabError(
                f"{path}: no evidence record there; give evidence.json files or the folders "
                "`pilotlab run` wrote them to"
            )
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PilotlabError(
                f"{path}: not valid JSON ({exc}); regenerate it with `pilotlab run`"
            ) from None
        if not isinstance(rec, dict) or not str(rec.get("schema", "")).startswith(
            "pilotlab.evidence/"
        ):
            raise PilotlabError(
                f"{path}: not a pilotlab evidence record (its 'schema' is "
                f"{rec.get('schema') if isinstance(rec, dict) else None!r}, expected "
                "'pilotlab.evidence/1'); give the evidence.json written by `pilotlab run`"
            )
        report = path.parent / "report.html"
        if report.is_file():
            rec[REPORT_KEY] = str(report.resolve())
        records.append(rec)
    return records


def change_verdict(r: dict[str, Any]) -> str:
    """Whether a result is an improvement, given the outcome's ``better`` direction.

    "improvement" / "worsening" when the interval excludes no change, else "no clear change";
    "not available" without an estimate and interval.
    """
    raw = (r.get("estimate"), r.get("ci_lower"), r.get("ci_upper"))
    if not all(is_number(x) for x in raw):
        return NA
    e, cl, cu = (float(x) for x in raw)  # type: ignore[arg-type]
    if cl <= 0 <= cu:
        return "no clear change"
    lower_better = str(r.get("better", "higher")) == "lower"
    good = (e < 0) == lower_better
    return (
        f"improvement ({'lower' if lower_better else 'higher'} is better)"
        if good
        else f"worsening ({'lower' if lower_better else 'higher'} is better)"
    )


def _report_href(rec: dict[str, Any]) -> str | None:
    """The report of a record: beside its evidence file, or named by its registry run."""
    href = rec.get(REPORT_KEY) or (rec.get("provenance") or {}).get(REPORT_KEY)
    return str(href) if href else None


def _primary(rec: dict[str, Any]) -> list[dict[str, Any]]:
    res = [r for r in rec.get("results", []) if isinstance(r, dict)]
    return [r for r in res if r.get("primary")] or res[:1]


def build_portfolio(
    records: Sequence[dict[str, Any]], out_dir: Path | None = None
) -> ReportDocument:
    """The portfolio page as a document (links made relative to ``out_dir``)."""
    rows, labels, est, lo, hi, vlab = [], [], [], [], [], []
    for rec in records:
        pilot = rec.get("pilot", {})
        es = rec.get("evidence_strength") or {}
        href = _report_href(rec)
        if href and out_dir is not None and Path(href).is_absolute():
            href = os.path.relpath(href, out_dir)
        for r in _primary(rec):
            e: Any = r.get("estimate")
            cl: Any = r.get("ci_lower")
            cu: Any = r.get("ci_upper")
            base: Any = r.get("baseline_mean")
            se: Any = r.get("std_error")
            half = (cu - cl) / 2 if is_number(cl) and is_number(cu) else None
            d = decimals_for_scale(
                base if is_number(base) else None, half or (se if is_number(se) else None)
            )
            rel = r.get("relative_effect")
            rows.append(
                (
                    str(pilot.get("title", pilot.get("id", "?"))),
                    str(pilot.get("status", "")),
                    str(r.get("label", r.get("outcome", ""))),
                    fmt_num(e, d),
                    fmt_ci(cl, cu, d),
                    fmt_pct(rel, 1, signed=True),
                    change_verdict(r),
                    f"Level {es['level']}" if es.get("level") else "not assessed",
                    href or "",
                )
            )
            if is_number(base) and base and all(is_number(x) for x in (e, cl, cu)):
                b = abs(base)
                labels.append(f"{pilot.get('title', '')}: {r.get('label', '')}")
                est.append(100 * e / b)
                lo.append(100 * cl / b)
                hi.append(100 * cu / b)
                vlab.append(f"{fmt_num(100 * e / b, 1)}% ({fmt_ci(100 * cl / b, 100 * cu / b, 1)})")
    table = Table(
        "portfolio",
        "Pilots and their primary outcomes",
        (
            "Pilot",
            "Status",
            "Primary outcome",
            "Effect",
            "95% CI",
            "Relative effect",
            "Improvement?",
            "Evidence strength (Maryland SMS)",
            "Report",
        ),
        tuple(rows),
        numeric=(False, False, False, True, True, True, False, False, False),
    )
    blocks: list[Any] = [
        Paragraph(
            f"{len(records)} pilots, {len(rows)} primary outcomes. Effects are differences from "
            "what the comparison suggests would have happened; the relative effect divides by the "
            "pilot units' pre-pilot mean. A change is an improvement or a worsening by the "
            "outcome's own direction (lower or higher is better) when its interval excludes no "
            "change. Evidence strength follows the Maryland Scientific Methods Scale (levels 1 "
            "to 5)."
        ),
        table,
    ]
    if labels:
        title = f"{sum(1 for a, b in zip(lo, hi, strict=True) if a > 0 or b < 0)} of {len(labels)} primary effects are clearly different from no change"
        desc = "; ".join(f"{a}: {b}" for a, b in zip(labels, vlab, strict=True))
        svg = charts.forest_plot(
            "portfolio-forest",
            title,
            desc,
            labels,
            est,
            lo,
            hi,
            value_labels=vlab,
            x_label="Effect (% of the pre-pilot mean); 0 = no change",
        )
        ftable = Table(
            "portfolio-forest-data",
            "Primary effects (% of the pre-pilot mean)",
            ("Pilot and outcome", "Estimate", "CI lower", "CI upper"),
            tuple(
                (a, fmt_num(b, 1), fmt_num(c, 1), fmt_num(d_, 1))
                for a, b, c, d_ in zip(labels, est, lo, hi, strict=True)
            ),
            numeric=(False, True, True, True),
        )
        blocks.append(
            Figure(
                "portfolio-forest",
                title,
                "Primary outcome effects with 95% confidence intervals, relative to each pilot's pre-pilot mean",
                svg,
                desc,
                ftable,
                "Source: pilotlab evidence records",
            )
        )
    else:
        blocks.append(
            Paragraph(f"No forest plot: {NA} (no pilot has a pre-pilot mean to scale by).")
        )
    sections = [Section("pilots", "Pilots", tuple(blocks))]
    chains = cycle_chains(records)
    if chains:
        sections.append(Section("cycles", "Learning cycles", tuple(_chain_blocks(chains))))
    return ReportDocument(
        title="Pilot portfolio",
        subtitle=f"{len(records)} evaluated pilots",
        sections=(*sections, gap_map(records)),
    )


def gap_map(records: Sequence[dict[str, Any]]) -> Section:
    """The evidence gap map: policy areas x framework metrics, how many pilots measured each and
    the best evidence level among them (an empty cell is a gap)."""
    cells: dict[tuple[str, str], tuple[set[str], int]] = {}
    names: dict[str, str] = {}
    without = 0
    for rec in records:
        pilot: dict[str, Any] = rec["pilot"] if isinstance(rec.get("pilot"), dict) else {}
        pid = str(pilot.get("id"))
        area = str(pilot.get("policy_area") or "not stated")
        es = rec.get("evidence_strength")
        raw_level = es.get("level") if isinstance(es, dict) else None
        level: int = raw_level if isinstance(raw_level, int) else 0
        refs = {
            str(r["metric"].get("ref")): str(r["metric"].get("name") or r["metric"].get("ref"))
            for r in rec.get("results") or []
            if isinstance(r, dict) and isinstance(r.get("metric"), dict)
        }
        if not refs:
            without += 1
        for ref, name in refs.items():
            names[ref] = name
            ids, best = cells.get((area, ref), (set(), 0))
            cells[(area, ref)] = (ids | {pid}, max(best, level))
    if not cells:
        return Section(
            "gap-map",
            "Evidence gap map",
            (
                Paragraph(
                    "No pilot names an outcome framework metric yet, so the evidence cannot be "
                    "mapped across places. Name each outcome's metric in its pilot file "
                    "(metric: framework/code; `pilotlab frameworks` lists them)."
                ),
            ),
        )
    areas = sorted({a for a, _ in cells})
    metrics = sorted(names, key=lambda r: names[r])

    def cell(area: str, ref: str) -> str:
        if (area, ref) not in cells:
            return "no pilots (gap)"
        ids, best = cells[(area, ref)]
        n = len(ids)
        lvl = f"best Level {best}" if best else "not assessed"
        return f"{n} pilot{'s' if n != 1 else ''}, {lvl}"

    table = Table(
        "gap-map",
        "Pilots by policy area and outcome metric, with the best evidence level in each cell",
        ("Policy area", *(names[m] for m in metrics)),
        tuple((a, *(cell(a, m) for m in metrics)) for a in areas),
        note="Evidence level: Maryland Scientific Methods Scale, 1 (weakest) to 5 (strongest).",
    )
    gaps = sum(1 for a in areas for m in metrics if (a, m) not in cells)
    text = (
        f"{len(metrics)} outcome metric(s) across {len(areas)} policy area(s); {gaps} of "
        f"{len(areas) * len(metrics)} combinations have no pilot yet."
        + (
            f" {without} pilot(s) name no framework metric and are not in the map."
            if without
            else ""
        )
    )
    return Section("gap-map", "Evidence gap map", (Paragraph(text), table))


def cycle_chains(records: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The learning-cycle chains among the records, each oldest cycle first.

    A chain ends at a pilot that no other record follows; it is followed back through each
    record's ``cycle.follows``, and through the earlier cycles the last record carries
    (``cycle.earlier``, from the registry) where the earlier pilot has no record here. Each
    step is ``{"pilot_id", "title", "change", "result", "level"}``, ``change`` being what that
    cycle changed from the one before it (empty for the first).
    """
    by_id = {str((r.get("pilot") or {}).get("id")): r for r in records}
    followed = {
        str((r.get("cycle") or {}).get("follows"))
        for r in records
        if isinstance(r.get("cycle"), dict)
    }
    chains: list[list[dict[str, Any]]] = []
    for pid, rec in sorted(by_id.items()):
        cycle = rec.get("cycle")
        if not isinstance(cycle, dict) or pid in followed:
            continue
        earlier = [e for e in cycle.get("earlier") or [] if isinstance(e, dict)]
        position = {str(e.get("pilot_id")): k for k, e in enumerate(earlier)}
        steps: list[dict[str, Any]] = [_step(rec, str(cycle.get("change") or ""))]
        seen = {pid}
        current: Any = cycle
        while isinstance(current, dict) and current.get("follows"):
            parent = str(current["follows"])
            if parent in seen:
                break
            seen.add(parent)
            if parent in by_id:
                parent_cycle = by_id[parent].get("cycle")
                own = parent_cycle.get("change") if isinstance(parent_cycle, dict) else ""
                steps.append(_step(by_id[parent], str(own or "")))
                current = parent_cycle
                continue
            k = position.get(parent)
            e: dict[str, Any] = earlier[k] if k is not None else {"pilot_id": parent}
            results = [r for r in e.get("results") or [] if isinstance(r, dict)]
            own = earlier[k - 1].get("change") if k else ""  # earlier entries: next's change
            steps.append(
                {
                    "pilot_id": parent,
                    "title": str(e.get("title") or parent),
                    "change": str(own or ""),
                    "result": _result(results[0]) if results else "no run recorded",
                    "level": e.get("evidence_level"),
                }
            )
            current = {"follows": earlier[k - 1].get("pilot_id")} if k else None
        chains.append(list(reversed(steps)))
    return chains


def _result(r: dict[str, Any]) -> str:
    e, cl, cu = r.get("estimate"), r.get("ci_lower"), r.get("ci_upper")
    if not is_number(e):
        return NA
    return f"{r.get('label') or r.get('outcome') or ''}: {fmt_num(e, 2)} ({fmt_ci(cl, cu, 2)})"


def _step(rec: dict[str, Any], change: str) -> dict[str, Any]:
    pilot = rec.get("pilot") or {}
    primary = _primary(rec)
    es = rec.get("evidence_strength") or {}
    return {
        "pilot_id": str(pilot.get("id")),
        "title": str(pilot.get("title") or pilot.get("id")),
        "change": change,
        "result": _result(primary[0]) if primary else NA,
        "level": es.get("level"),
    }


def _chain_blocks(chains: list[list[dict[str, Any]]]) -> list[Any]:
    rows = []
    for steps in chains:
        name = " → ".join(s["pilot_id"] for s in steps)
        for i, s in enumerate(steps, start=1):
            rows.append(
                (
                    name if i == 1 else "",
                    f"Cycle {i}",
                    s["title"],
                    s["result"],
                    f"Level {s['level']}" if s.get("level") else "not assessed",
                    s["change"] or ("-" if i > 1 else "first cycle"),
                )
            )
    return [
        Paragraph(
            f"{len(chains)} test-and-learn series: each cycle follows the one before it and says "
            "what it changed. The results of different cycles come from different pilots, so a "
            "difference between them is what was learnt and tried next, not a measured effect "
            "of the change."
        ),
        Table(
            "portfolio-cycles",
            "Learning cycles, oldest first",
            (
                "Series",
                "Cycle",
                "Pilot",
                "Primary result",
                "Evidence",
                "What the next cycle changed",
            ),
            tuple(rows),
        ),
    ]


def render_portfolio(
    records: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    template_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the portfolio page (``path``) and its tables as CSV in ``tables/`` beside it.

    Parameters
    ----------
    records
        Evidence records as plain dicts (e.g. from :func:`portfolio_from_paths`).
    path
        The HTML file to write.
    template_dir
        Optional folder of override templates.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = build_portfolio(records, out.parent.resolve())
    html = render_html(doc, "portfolio.html.j2", template_dir=template_dir)
    write_tables(doc.tables(), out.parent / "tables")
    out.write_text(html, encoding="utf-8")
    return out
