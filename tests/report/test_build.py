"""The report document and its HTML, read as a reader would: every section, numbers that agree,
text generated from the diagnostics, later features shown when present, hostile text inert."""

from __future__ import annotations

import csv
import dataclasses
import html as htmllib
import itertools
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pilotlab.outputs import csv_cell
from pilotlab.report import build, render_report
from pilotlab.report.build import ANNEX_TITLES, SECTION_TITLES
from pilotlab.report.format import fmt_ci, fmt_num
from pilotlab.report.model import Figure, Paragraph, Table
from pilotlab.report.render import render_html
from pilotlab.results import MissingSummary
from tests.support import report as ex


@pytest.fixture(scope="module")
def common():
    return ex.common()


@pytest.fixture(scope="module")
def three():
    return ex.three_outcomes()


def _text(doc, sid: str) -> str:
    out = []
    for b in doc.section(sid).blocks:
        out.append(str(b.to_dict()))
    return " ".join(out)


def test_main_sections_then_the_annex_in_order(common) -> None:
    doc = build(common)
    assert [s.id for s in doc.main] == [sid for sid, _ in SECTION_TITLES]
    annex_order = [sid for sid, _ in ANNEX_TITLES]
    ids = [s.id for s in doc.annex]
    assert ids == sorted(ids, key=annex_order.index)
    assert ids[0] == "annex-glossary" and ids[-1] == "reproducibility"
    assert [s.id for s in doc.sections] == [*(s.id for s in doc.main), *ids]
    for s in doc.sections:
        assert s.blocks, f"section {s.id} is empty"
    html = render_html(doc)
    positions = [html.index(f'id="{s.id}-h"') for s in doc.sections]
    assert positions == sorted(positions)
    assert html.index('id="annex-h"') > html.index('id="limitations-h"')


def test_headline_numbers_are_the_table_numbers(three) -> None:
    doc = build(three)
    est = next(t for t in doc.tables() if t.id == "estimates")
    for o, row in zip(three.outcomes, est.rows, strict=True):
        d = 2 if o.column == "claimant_rate" else None
        r = o.result
        cells = dict(zip(est.columns, row, strict=True))
        # the estimate and CI printed in the table come from the same formatter and decimals
        dec = len(cells["Estimate"].split(".")[1]) if "." in cells["Estimate"] else 0
        assert cells["Estimate"] == fmt_num(r.estimate, dec)
        assert cells["95% CI"] == fmt_ci(r.ci_lower, r.ci_upper, dec)
        if o.primary:
            headline = next(
                b.text
                for b in doc.section("headline").blocks
                if isinstance(b, Paragraph) and b.text.startswith(o.label)
            )
            assert fmt_num(abs(r.estimate), dec) in headline
            lo, hi = sorted((abs(r.ci_lower), abs(r.ci_upper)))
            if not (r.ci_lower <= 0 <= r.ci_upper):
                assert f"95% CI {fmt_num(lo, dec)} to {fmt_num(hi, dec)}" in headline
        del d


def test_headline_states_improvement_using_better(common) -> None:
    o = common.outcomes[0]
    assert o.result.ci_upper < 0, "the example is built with a clear fall"
    text = build(common).section("headline").blocks[0].text
    assert "fell by" in text and "Lower is better, so this is an improvement." in text
    flipped = dataclasses.replace(common, outcomes=(dataclasses.replace(o, better="higher"),))
    text2 = build(flipped).section("headline").blocks[0].text
    assert "Higher is better, so this is a worsening." in text2


def test_plan_and_data_hashes_are_shown(common) -> None:
    doc = build(common)
    assert common.plan.sha256 in _text(doc, "registration")
    rep = _text(doc, "reproducibility")
    assert common.plan.sha256 in rep and common.data.sha256 in rep


def test_design_rationale_comes_from_the_choices(common) -> None:
    t = _text(build(common), "design")
    # the choices' reasons, with method identifiers in words (event_study -> event study ...)
    assert "The analysis plan specifies the event study (difference in differences period by " in t
    assert "event_study" not in t and "cluster-robust standard errors" in t
    assert "Parallel trends" in t


def test_limitations_generated_from_diagnostics(common) -> None:
    data = dataclasses.replace(
        common.data,
        balanced=False,
        pre_periods=2,
        missing=(MissingSummary("claimant_rate", 12, 3600, ("E1", "E2", "E3"), ("2021-01",)),),
    )
    lim = _text(build(dataclasses.replace(common, data=data)), "limitations")
    assert "Few pilot clusters: only 6 treated clusters" in lim
    assert "Short pre-period: 2 periods" in lim
    assert "Unbalanced panel" in lim
    assert "12 of 3600 values of claimant_rate are missing (units E1, E2, E3" in lim
    clean = _text(build(common), "limitations")
    assert "Unbalanced panel" not in clean and "Short pre-period" not in clean


def test_failed_pretrend_is_a_limitation_and_titles_the_chart(common) -> None:
    o = common.outcomes[0]
    pt = dataclasses.replace(o.result.pre_trend, p_value=0.0004, statistic=30.0)
    bad = dataclasses.replace(
        common,
        outcomes=(dataclasses.replace(o, result=dataclasses.replace(o.result, pre_trend=pt)),),
    )
    doc = build(bad)
    assert "the test of the periods before the start fails" in _text(doc, "limitations")
    assert "were already moving differently" in _text(doc, "results")
    fig = next(
        b for b in doc.section("annex-events").blocks if isinstance(b, Figure) and "event" in b.id
    )
    assert "already diverging before the start" in fig.title
    assert "p < 0.001" in fig.subtitle


def test_later_features_shown_when_present(three) -> None:
    doc = build(three)
    rob, annex = _text(doc, "robustness"), _text(doc, "annex-robustness")
    assert "pretend start date" in rob and "dropping each pilot area" in rob.lower()
    assert "1.25 times the largest drift" in rob  # honest_did breakdown value, in words
    assert "Placebo in time" in annex and "Leave one out" in annex
    assert "relative magnitudes" in annex and "M or Mbar" in annex and "smoothness" in annex
    stag = build(ex.staggered())
    res = _text(stag, "annex-staggered")
    assert "ATT(g,t)" in res and "aggregated effects" in res
    assert "Goodman-Bacon" in res and "8.0% of its weight" in res
    ev_fig = next(
        b for b in stag.section("annex-events").blocks if isinstance(b, Figure) and "event" in b.id
    )
    assert "uniform band" in ev_fig.subtitle and "Uniform band" in ev_fig.table.columns
    syn = build(ex.synthetic())
    res, annex = _text(syn, "results"), _text(syn, "annex-synthetic")
    assert "Donor weights" in annex and "to within 0.1 (packs" in res
    assert "Synthetic comparison (mean)" in res
    assert "placebo estimate" in annex and "Pilot: " in annex


def test_graceful_when_features_are_absent(common) -> None:
    doc = build(common)
    rob = _text(doc, "robustness")
    assert "No robustness checks were requested" in rob
    assert "Not assessed: this evaluation did not test how far the trends" in rob
    assert "annex-robustness" not in [s.id for s in doc.sections]
    assert "Donor weights" not in _text(doc, "results")
    reg = _text(doc, "registration")
    assert "Not registered" in reg


def test_registration_deviations_table(common) -> None:
    from pilotlab.results import PlanInfo
    from pilotlab.results.summary import Deviation

    plan = PlanInfo(
        sha256=common.plan.sha256,
        registered=True,
        version=2,
        registered_at="2024-03-01T09:00:00Z",
        matches_registered=False,
        deviations=(Deviation(2, "2024-05-01", ("design.covariates",), "added population", True),),
    )
    doc = build(dataclasses.replace(common, plan=plan))
    t = next(b for b in doc.section("registration").blocks if isinstance(b, Table))
    assert t.rows == (
        ("design.covariates", "2024-05-01", "added population", "after", "registered deviation"),
    )
    text = _text(doc, "registration")
    assert "no: the plan analysed differs" in text
    # differs, but without the key-by-key differences: never "no deviations"
    assert "no deviations" not in text and "Unregistered deviation" in text


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_and_accessible_by_construction(tmp_path: Path, three) -> None:
    path = render_report(three, tmp_path / "report.html")
    html = path.read_text(encoding="utf-8")
    assert "default-src 'none'" in html and "Content-Security-Policy" in html
    assert "@media print" in html and "size: A4" in html
    assert "GDS Transport" not in html
    p = _Collect()
    p.feed(html)
    tags = [t for t, _ in p.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    for _, attrs in p.tags:
        for k in ("src", "href"):
            v = attrs.get(k) or ""
            assert not re.match(r"^(https?:)?//", v), f"network reference {k}={v}"
    # every chart has a title, a description and a data table beside it
    assert html.count("<svg") == html.count("<title id=") == html.count("<desc id=")
    assert html.count("<figure id=") == html.count("<svg")
    n_tables = html.count("<table")
    assert n_tables == html.count("<caption>")
    assert 'scope="col"' in html and 'scope="row"' in html
    h = [int(m) for m in re.findall(r"<h([1-6])", html)]
    assert h[0] == 1 and all(b - a <= 1 for a, b in itertools.pairwise(h))
    assert path.stat().st_size < 1_500_000


def test_every_table_is_written_as_csv_and_linked(tmp_path: Path, three) -> None:
    path = render_report(three, tmp_path / "report.html")
    doc = build(three)
    html = path.read_text(encoding="utf-8")
    assert 'href="evidence.json"' in html
    for t in doc.tables():
        f = tmp_path / "tables" / f"{t.id}.csv"
        assert f.is_file()
        assert f'href="tables/{t.id}.csv"' in html
        with f.open(encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert tuple(rows[0]) == t.columns
        # ASCII minus so spreadsheets read numbers; text that would start a formula is quoted
        assert [tuple(r) for r in rows[1:]] == [
            tuple(csv_cell(c.replace("\u2212", "-")) for c in r) for r in t.rows
        ]


def test_hostile_text_is_shown_as_text(tmp_path: Path) -> None:
    ev = ex.common(hostile=True)
    path = render_report(ev, tmp_path / "report.html")
    html = path.read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "onerror=alert" in html  # kept, but only as inert text...
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    p = _Collect()
    p.feed(html)
    assert not any("onerror" in attrs for _, attrs in p.tags)
    # ...and the reader sees it literally, in the page title and in chart text
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert ex.SCRIPT in htmllib.unescape(title)


def test_organisation_templates_override_ours(tmp_path: Path, common) -> None:
    org = tmp_path / "org"
    org.mkdir()
    (org / "_brand.html.j2").write_text(
        '<style>:root { --brand: #5b2c6f; }</style><p class="org-logo">Northshire Council</p>',
        encoding="utf-8",
    )
    path = render_report(common, tmp_path / "out" / "report.html", template_dir=org)
    html = path.read_text(encoding="utf-8")
    assert "Northshire Council" in html and "--brand: #5b2c6f" in html
    assert 'id="reproducibility-h"' in html  # the rest is still ours


def test_missing_template_dir_is_a_clear_error(tmp_path: Path, common) -> None:
    from pilotlab.exceptions import PilotlabError

    with pytest.raises(PilotlabError, match=r"template_dir: .* is not a folder"):
        render_report(common, tmp_path / "r.html", template_dir=tmp_path / "nope")


def test_document_is_plain_data(common) -> None:
    doc = build(common)
    d = doc.to_dict()
    assert [s["id"] for s in d["sections"] if s["part"] == "main"] == [
        sid for sid, _ in SECTION_TITLES
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.title = "x"  # type: ignore[misc]


def test_typed_parts_are_read(common) -> None:
    """Donor weights, the synthetic path and the honest-DiD bounds reach the report from the parts."""
    import pandas as pd

    from pilotlab.results import HonestDiD, RobustnessCheck, SyntheticTables, Table

    o = common.outcomes[0]
    syn = SyntheticTables(
        weights=Table(pd.DataFrame({"unit": ["A0001", "A0002"], "weight": [0.7, 0.3]})),
        paths=Table(
            pd.DataFrame(
                {
                    "period": o.trends["period"],
                    "treated": o.trends["treated"],
                    "synthetic": o.trends["comparison"],
                }
            )
        ),
        pre_rmspe=0.05,
    )
    bounds = pd.DataFrame({"bound": [1.0], "lower": [-0.9], "upper": [-0.1]})
    chk = RobustnessCheck(
        "honest_did",
        -0.5,
        -0.9,
        -0.1,
        True,
        "",
        HonestDiD(2.0, "cluster", Table(bounds), Table(bounds.iloc[:0]), 3, 3),
    )
    ev = dataclasses.replace(
        common,
        outcomes=(
            dataclasses.replace(
                o, result=dataclasses.replace(o.result, synthetic=syn), robustness=(chk,)
            ),
        ),
    )
    doc = build(ev)
    res, rob = _text(doc, "results"), _text(doc, "robustness")
    assert "A0001" in _text(doc, "annex-synthetic")
    assert "to within 0.05" in res and "Synthetic comparison (mean)" in res
    assert "2.00 times the largest drift" in rob and "Mbar" in _text(doc, "annex-robustness")


def test_templates_are_found_from_a_source_checkout() -> None:
    from pilotlab.report._templates import template_dir

    d = template_dir()
    assert (d / "report.html.j2").is_file() and (d / "_brand.html.j2").is_file()


def test_every_free_text_field_reaches_the_page_escaped(tmp_path: Path) -> None:
    """Each hostile field of the pilot file appears, escaped, as many times as it was given."""
    html = render_report(ex.common(hostile=True), tmp_path / "r.html").read_text(encoding="utf-8")
    esc = htmllib.escape(ex.SCRIPT, quote=False)
    for field in (
        "Employment support pathfinder",
        "Intensive support offered through family hubs.",
        "Example Combined Authority",
        "Department for Work and Pensions",
        "evaluation@example.org",
        "Did the pilot reduce the claimant rate?",
        "Earlier support helps people into work sooner.",
        "Within 6 months.",
        "quasi-experimental",
        "2021-01-01",
        "2021-01-04",
        "2024-06-30",
        "Simulated claimant data",
        "Claimant count rate (%)",
        "local authority",
        "employment",
        "percentage points",
    ):
        assert f"{field} {esc}" in html, field
