"""The synthesis page and the portfolio's evidence gap map."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pilotlab.report.portfolio import build_portfolio, gap_map
from pilotlab.report.render import render_html
from pilotlab.report.synthesis import build_synthesis
from pilotlab.synthesis import Study, synthesise
from tests.support.synthesis import write_places

HOSTILE = "<script>alert(1)</script>"


def _studies(n: int, **kw: Any) -> list[Study]:
    return [
        Study(id=f"s{i}", label=f"Place {i}", estimate=-0.3 - 0.1 * i, std_error=0.1 + 0.02 * i,
              scale="units", origin="external", metric="local/claimant_rate", **kw)
        for i in range(n)
    ]  # fmt: skip


def test_page_has_a_table_beside_every_chart_and_plain_findings() -> None:
    s = synthesise(_studies(6), "local/claimant_rate", None)
    doc = build_synthesis(s)
    main = [x.id for x in doc.main]
    assert main[:2] == ["summary", "estimates"]
    figures = [b for sec in doc.sections for b in sec.blocks if b.kind == "figure"]
    assert figures and all(f.table.rows for f in figures)
    forest = figures[0]
    # one row per estimate, the pooled row and the prediction interval row
    assert len(forest.table.rows) == 6 + 2
    assert "<polygon" in forest.svg and 'stroke-dasharray="6 4"' in forest.svg
    summary = " ".join(b.text for b in doc.section("summary").blocks if hasattr(b, "text"))
    assert "new place" in summary and "Hartung-Knapp" in summary
    assert s.few_studies is None  # six estimates: no few-studies warning


def test_few_estimates_are_explained_in_words() -> None:
    s = synthesise(_studies(2), "local/claimant_rate", None)
    assert s.few_studies is not None and "two estimates no prediction interval" in s.few_studies
    doc = build_synthesis(s)
    notices = [b.text for b in doc.section("summary").blocks if b.kind == "notice"]
    assert s.few_studies in notices
    html = render_html(doc, "synthesis.html.j2")
    assert "Prediction for a new place" not in html  # no interval drawn with two


def test_hostile_labels_are_text() -> None:
    studies = [
        Study(id=f"s{i}", label=f"{HOSTILE} {i}", estimate=0.1 * i, std_error=0.2, scale="units",
              origin="external", metric="acme/x", policy_area=HOSTILE)
        for i in range(3)
    ]  # fmt: skip
    html = render_html(build_synthesis(synthesise(studies, "acme/x", None)), "synthesis.html.j2")
    assert HOSTILE not in html and "&lt;script&gt;" in html


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    paths = write_places(tmp_path_factory.mktemp("gap"))
    return [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]


def test_gap_map_counts_pilots_and_best_level(records: list[dict[str, Any]]) -> None:
    recs = copy.deepcopy(records)
    recs[0]["evidence_strength"]["level"] = 4
    other = copy.deepcopy(recs[1])
    other["pilot"]["id"] = "housing-pilot"
    other["pilot"]["policy_area"] = "housing"
    other["results"][0]["metric"] = {**other["results"][0]["metric"], "ref": "local/homelessness_duty", "name": "Households owed a homelessness duty"}  # fmt: skip
    plain = copy.deepcopy(recs[2])
    plain["results"][0]["metric"] = None
    sec = gap_map([*recs, other, plain])
    table = next(b for b in sec.blocks if b.kind == "table")
    assert table.columns == (
        "Policy area",
        "Claimant count rate",
        "Households owed a homelessness duty",
    )
    rows = {r[0]: r[1:] for r in table.rows}
    assert rows["employment"] == ("2 pilots, best Level 4", "no pilots (gap)")
    assert rows["housing"] == ("no pilots (gap)", "1 pilot, best Level 1")
    assert rows["welfare"][0] == "2 pilots, best Level 1"
    text = sec.blocks[0].text
    assert "1 pilot(s) name no framework metric" in text and "3 of 6 combinations" in text
    doc = build_portfolio([*recs, other])
    assert [s.id for s in doc.sections] == ["pilots", "gap-map"]


def test_gap_map_without_metrics_says_how_to_add_them(records: list[dict[str, Any]]) -> None:
    recs = copy.deepcopy(records)
    for r in recs:
        r["results"][0].pop("metric")
    sec = gap_map(recs)
    assert [b.kind for b in sec.blocks] == ["paragraph"] and "metric:" in sec.blocks[0].text
