"""Render a :class:`~pilotlab.report.model.ReportDocument` to one self-contained HTML file.

The Jinja environment autoescapes every value (``select_autoescape`` on ``.html``/``.j2``), so
text from a pilot file is always shown as text. A ``ChoiceLoader`` looks in the organisation's
template folder first (``template_dir=``), then in pilotlab's: an organisation overrides
``_brand.html.j2`` (logo, colours), ``_styles.css.j2`` or any other template by dropping a file of
the same name in its folder, without forking pilotlab.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from pilotlab.exceptions import PilotlabError
from pilotlab.outputs import csv_cell
from pilotlab.report._templates import template_dir as _ours
from pilotlab.report.build import build, csv_name, full_csv_name
from pilotlab.report.format import FILTERS, MINUS
from pilotlab.report.model import FullTable, ReportDocument, Table
from pilotlab.results import Evaluation

__all__ = [
    "environment",
    "full_table_csv",
    "render_html",
    "render_report",
    "table_csv",
    "write_tables",
]


def environment(template_dir: str | os.PathLike[str] | None = None) -> Environment:
    """The Jinja environment: autoescape on, user templates first, number filters registered.

    Environments are cached per template folder, so templates compile once per process (Jinja
    still reloads a template whose file changed).

    Parameters
    ----------
    template_dir
        Optional folder of templates that override pilotlab's (same file names).
    """
    return _environment(None if template_dir is None else str(Path(template_dir).resolve()))


@functools.lru_cache(maxsize=8)
def _environment(template_dir: str | None) -> Environment:
    loaders = []
    if template_dir is not None:
        p = Path(template_dir)
        if not p.is_dir():
            raise PilotlabError(
                f"template_dir: '{p}' is not a folder; give the folder holding your "
                "override templates (e.g. _brand.html.j2), or leave it out"
            )
        loaders.append(FileSystemLoader(str(p)))
    loaders.append(FileSystemLoader(str(_ours())))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html", "j2", "xml"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def render_html(
    doc: ReportDocument,
    template: str = "report.html.j2",
    template_dir: str | os.PathLike[str] | None = None,
    **context: Any,
) -> str:
    """Render a document (or, with ``template=``, any context) to HTML text."""
    env = environment(template_dir)
    context.setdefault("org_name", None)
    return env.get_template(template).render(doc=doc, **context)


def _csv_cell(text: str) -> str:
    # spreadsheets read an ASCII minus as a number; keep everything else as shown in the report,
    # except text a spreadsheet would run as a formula (quoted by csv_cell)
    return str(csv_cell(text.replace(MINUS, "-")))


def table_csv(table: Table) -> str:
    """One table as CSV text (header row = column names), safe to open in a spreadsheet."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow([_csv_cell(c) for c in table.columns])
    w.writerows([[_csv_cell(c) for c in row] for row in table.rows])
    return buf.getvalue()


def full_table_csv(table: FullTable) -> str:
    """Full-precision CSV text: numbers as Python writes them (shortest round-trip form), missing
    values empty, text made safe to open in a spreadsheet."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow([csv_cell(c) for c in table.columns])
    for row in table.rows:
        w.writerow(["" if v is None else csv_cell(v) if isinstance(v, str) else v for v in row])
    return buf.getvalue()


def write_tables(tables: Iterable[Table], folder: Path) -> list[Path]:
    """Write each table as ``folder/<table id>.csv`` (UTF-8, header row = column names, values
    as the report shows them) and, when it has them, its unrounded values as
    ``folder/<table id>_full.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for t in tables:
        path = folder / csv_name(t)
        with path.open("w", newline="", encoding="utf-8") as fh:
            fh.write(table_csv(t))
        out.append(path)
        if t.full is not None:
            full = folder / full_csv_name(t)
            with full.open("w", newline="", encoding="utf-8") as fh:
                fh.write(full_table_csv(t.full))
            out.append(full)
    return out


def render_report(
    evaluation: Evaluation,
    path: str | os.PathLike[str],
    template_dir: str | os.PathLike[str] | None = None,
    *,
    evidence_file: str = "evidence.json",
    org_name: str | None = None,
) -> Path:
    """Write the evaluation report: ``report.html`` plus a CSV of every table beside it.

    Parameters
    ----------
    evaluation : pilotlab.results.Evaluation
        What to report.
    path
        Where to write the HTML file (its folder is created). CSV files go to ``tables/`` in the
        same folder; the report links ``evidence_file`` (written by ``pilotlab run`` beside it).
    template_dir
        Optional folder of templates overriding pilotlab's (organisation branding).
    evidence_file
        Relative link to the evidence record.
    org_name
        Name shown in the masthead (e.g. the publishing council).

    Returns
    -------
    pathlib.Path
        The path of the HTML file.
    """
    out = Path(path)
    doc = build(evaluation, evidence_file=evidence_file)
    html = render_html(doc, template_dir=template_dir, org_name=org_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_tables(doc.tables(), out.parent / "tables")
    out.write_text(html, encoding="utf-8")
    return out
