"""The report as pure data: a :class:`ReportDocument` of sections, each a sequence of blocks.

Everything the reader sees is decided here (by :func:`pilotlab.report.build`): the text, the
formatted numbers, the tables and the charts. Templates only lay the blocks out, so the same
document can be rendered to HTML, checked in tests, or turned into another format.

Blocks are frozen dataclasses with a ``kind`` the templates dispatch on:

``paragraph``   a paragraph of plain text (never HTML)
``list``        a bulleted list of plain-text items
``keyvalue``    a summary list of (label, value) rows
``table``       a table: caption, column headers, rows of formatted strings
``figure``      an inline SVG chart, its title/subtitle/source and the data table beside it
``notice``      a highlighted plain-text message (e.g. a warning)
``heading``     a sub-heading inside a section (level 3)
``links``       links to files written beside the report (evidence record, CSV tables)
``seealso``     a link to another part of the same report (main text -> technical annex)

A :class:`Section` belongs to the main part (``part="main"``, what a reader needs) or to the
technical annex (``part="annex"``: detailed tables, method names, the glossary).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Block",
    "Cell",
    "Figure",
    "FullTable",
    "Heading",
    "KeyValue",
    "LinkList",
    "ListBlock",
    "Notice",
    "Paragraph",
    "ReportDocument",
    "Section",
    "SeeAlso",
    "Table",
]


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text."""

    text: str
    kind: str = field(default="paragraph", init=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {"kind": self.kind, "text": self.text}


@dataclass(frozen=True)
class Heading:
    """A sub-heading within a section."""

    text: str
    id: str = ""
    kind: str = field(default="heading", init=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {"kind": self.kind, "text": self.text, "id": self.id}


@dataclass(frozen=True)
class ListBlock:
    """A bulleted list of plain-text items."""

    items: tuple[str, ...]
    kind: str = field(default="list", init=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {"kind": self.kind, "items": list(self.items)}


@dataclass(frozen=True)
class Notice:
    """A highlighted message (``level``: info, warning)."""

    text: str
    level: str = "info"
    kind: str = field(default="notice", init=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {"kind": self.kind, "text": self.text, "level": self.level}


@dataclass(frozen=True)
class SeeAlso:
    """A sentence linking to an anchor in the same report (``href`` like ``#annex-events``)."""

    text: str
    href: str
    kind: str = field(default="seealso", init=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {"kind": self.kind, "text": self.text, "href": self.href}


@dataclass(frozen=True)
class KeyValue:
    """A summary list: (label, value) rows."""

    rows: tuple[tuple[str, str], ...]
    title: str = ""
    kind: str = field(default="keyvalue", init=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {"kind": self.kind, "title": self.title, "rows": [list(r) for r in self.rows]}


#: One full-precision cell: a number, a flag, a label, or missing (``None``).
Cell = str | int | float | bool | None


@dataclass(frozen=True)
class FullTable:
    """The values behind a formatted table, unrounded (written as ``tables/<id>_full.csv``).

    Its columns are the source's own names (``estimate``, ``ci_lower``...), which may differ from
    the formatted table's headings and split one formatted column (an interval) into two.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Table:
    """A table of formatted values.

    ``id`` names the CSV file written beside the report; ``numeric`` flags the columns that are
    right-aligned; ``row_headers`` makes the first cell of each row a ``<th scope="row">``;
    ``row_classes`` (one per row, may be empty strings) marks rows for the templates, e.g.
    ``"not-valid"`` for an interval that does not come from the stated inference. ``full``, when
    set, holds the same rows unrounded (the full-precision CSV beside the formatted one).
    """

    id: str
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...] = ()
    row_headers: bool = True
    note: str = ""
    row_classes: tuple[str, ...] = ()
    full: FullTable | None = None
    kind: str = field(default="table", init=False)

    def __post_init__(self) -> None:
        if not self.numeric:
            object.__setattr__(self, "numeric", tuple(False for _ in self.columns))
        if not self.row_classes:
            object.__setattr__(self, "row_classes", tuple("" for _ in self.rows))

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {
            "kind": self.kind,
            "id": self.id,
            "caption": self.caption,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "note": self.note,
            "row_classes": list(self.row_classes),
        }


@dataclass(frozen=True)
class Figure:
    """A chart: inline SVG plus the same numbers as a table (its text alternative)."""

    id: str
    title: str
    subtitle: str
    svg: str
    desc: str
    table: Table
    source: str = ""
    notice: str = ""
    kind: str = field(default="figure", init=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain form (the SVG text included)."""
        return {
            "kind": self.kind,
            "id": self.id,
            "title": self.title,
            "subtitle": self.subtitle,
            "desc": self.desc,
            "source": self.source,
            "svg": self.svg,
            "notice": self.notice,
            "table": self.table.to_dict(),
        }


Block = (
    Any  # Paragraph | Heading | ListBlock | Notice | KeyValue | Table | Figure | LinkList | SeeAlso
)


@dataclass(frozen=True)
class Section:
    """A numbered section of the report (``id`` is the HTML anchor; ``part``: main or annex)."""

    id: str
    title: str
    blocks: tuple[Block, ...]
    part: str = "main"

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {
            "id": self.id,
            "title": self.title,
            "part": self.part,
            "blocks": [b.to_dict() for b in self.blocks],
        }

    def tables(self) -> list[Table]:
        """Every table of the section, including those beside figures."""
        out: list[Table] = []
        for b in self.blocks:
            if isinstance(b, Table):
                out.append(b)
            elif isinstance(b, Figure):
                out.append(b.table)
        return out


@dataclass(frozen=True)
class ReportDocument:
    """A complete report: title, metadata and sections in reading order."""

    title: str
    subtitle: str
    sections: tuple[Section, ...]
    meta: tuple[tuple[str, str], ...] = ()
    generated_at: str = ""
    pilotlab_version: str = ""
    evidence_file: str = "evidence.json"
    lang: str = "en-GB"

    def tables(self) -> list[Table]:
        """Every table in reading order (each is also written as CSV)."""
        return [t for s in self.sections for t in s.tables()]

    @property
    def main(self) -> tuple[Section, ...]:
        """The sections of the main part, in reading order."""
        return tuple(s for s in self.sections if s.part == "main")

    @property
    def annex(self) -> tuple[Section, ...]:
        """The sections of the technical annex, in reading order."""
        return tuple(s for s in self.sections if s.part == "annex")

    def section(self, id: str) -> Section:
        """The section with anchor ``id`` (KeyError if absent)."""
        for s in self.sections:
            if s.id == id:
                return s
        raise KeyError(id)

    def to_dict(self) -> dict[str, Any]:
        """Plain form of the whole document."""
        return {
            "title": self.title,
            "subtitle": self.subtitle,
            "meta": [list(m) for m in self.meta],
            "generated_at": self.generated_at,
            "pilotlab_version": self.pilotlab_version,
            "evidence_file": self.evidence_file,
            "sections": [s.to_dict() for s in self.sections],
        }


@dataclass(frozen=True)
class LinkList:
    """Links to files written beside the report: (text, relative href)."""

    links: tuple[tuple[str, str], ...]
    kind: str = field(default="links", init=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {"kind": self.kind, "links": [list(x) for x in self.links]}
