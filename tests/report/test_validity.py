"""The report shows only intervals that match its stated inference, true labels, plain words.

* period-by-period intervals that are cluster-robust under permutation inference are greyed and
  labelled as not valid, on the chart and in the table;
* the reference period is named only when there is one (not under a varying base period);
* the placebo-in-space row shows the placebo distribution's range and rank p-value, labelled;
* the main part (everything before the technical annex) uses no technical term.
"""

from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest

from pilotlab.report import build
from pilotlab.report.build import event_interval_validity
from pilotlab.report.model import Figure, Table
from pilotlab.report.render import render_html
from pilotlab.report.text import JARGON, article, find_jargon, plural
from pilotlab.results import (
    AlternativeEstimator,
    HonestDiD,
    LeaveOneOut,
    PlaceboInSpace,
    RobustnessCheck,
    StaggeredTables,
)
from pilotlab.results import Table as PartTable
from tests.support import report as ex


@pytest.fixture(scope="module")
def single():
    return ex.single_permutation()


def _main_html(html: str) -> str:
    return html[: html.index('id="annex"')]


def _visible_text(html: str) -> str:
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    html = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    html = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", html)


def test_one_treated_unit_with_permutation_greys_every_event_interval(single) -> None:
    o = single.outcomes[0]
    r = o.result
    assert r.inference == "permutation" and single.data.treated_clusters == 1
    # the period-by-period intervals are cluster-robust and some exclude zero: the defect case
    assert any(e.ci_lower > 0 or e.ci_upper < 0 for e in r.event_study if not e.reference)
    doc = build(single)
    headline = doc.section("headline").blocks[0].text
    assert "cannot tell" in headline
    fig = next(b for b in doc.section("annex-events").blocks if isinstance(b, Figure))
    reason = "cluster-robust interval, not valid with 1 treated cluster"
    assert "intervals, not valid with 1 treated cluster (too narrow)" in fig.subtitle
    assert "too narrow" in fig.notice
    assert "permutation" in fig.notice
    ci_col = fig.table.columns[2]
    assert ci_col == "95% interval (not valid)"
    assert "cluster-robust intervals, not valid with 1 treated cluster" in fig.table.note
    assert fig.table.columns[3] == "Standard error (cluster-robust)"
    for e, row, cls in zip(r.event_study, fig.table.rows, fig.table.row_classes, strict=True):
        if e.reference:
            assert cls == "" and row[2] == "reference (set to 0)"
        else:
            assert cls == "not-valid" and row[2].endswith("(not valid)")
    html = render_html(doc)
    # on the chart: no interval drawn as a valid one, every one greyed and the reason written
    chart = html[html.index(f'<figure id="{fig.id}"') :]
    chart = chart[: chart.index("</svg>")]
    n_events = sum(1 for e in r.event_study if not e.reference)
    assert chart.count('class="ci-not-valid"') == len(r.event_study) >= n_events
    assert 'class="ci"' not in chart and "Grey dashed lines: " + reason in chart
    # in the table: every non-reference row carries the class the stylesheet greys
    table = html[html.index(f'<table id="{fig.table.id}"') :]
    table = table[: table.index("</table>")]
    assert table.count('<tr class="not-valid">') == n_events
    assert "tr.not-valid td" in html  # the style that greys them
    # the pre-trend sentence and the chart title follow the same (randomisation) test
    res = " ".join(b.text for b in doc.section("results").blocks if hasattr(b, "text"))
    assert "randomisation test" in res and "(randomisation test)" in fig.title
    # the few-clusters limitation is grammatical
    lim = " ".join(doc.section("limitations").blocks[0].items)
    assert "only 1 treated cluster," in lim and "1 treated clusters" not in html


def test_valid_event_intervals_are_not_greyed(single) -> None:
    common = ex.common()
    assert event_interval_validity(common.outcomes[0].result, 6) == ""
    r = single.outcomes[0].result
    assert event_interval_validity(dataclasses.replace(r, inference="wild_bootstrap"), 1) == ""
    stated = dataclasses.replace(r, event_study_inference="permutation")
    assert event_interval_validity(stated, 1) == ""
    fig = next(b for b in build(common).section("annex-events").blocks if isinstance(b, Figure))
    assert set(fig.table.row_classes) == {""} and not fig.notice
    assert "period −1 is the reference" in fig.subtitle


def test_varying_base_period_names_no_reference() -> None:
    common = ex.common()
    o = common.outcomes[0]
    events = tuple(dataclasses.replace(e, reference=False) for e in o.result.event_study)
    st = StaggeredTables(
        att_gt=PartTable(pd.DataFrame()),
        aggregations=PartTable(pd.DataFrame()),
        dynamic=PartTable(pd.DataFrame()),
        base_period="varying",
    )
    res = dataclasses.replace(o.result, event_study=events, staggered=st)
    ev = dataclasses.replace(common, outcomes=(dataclasses.replace(o, result=res),))
    fig = next(b for b in build(ev).section("annex-events").blocks if isinstance(b, Figure))
    assert "is the reference" not in fig.subtitle
    assert "period −1 is estimated" in fig.subtitle
    assert not any("(reference)" in row[0] for row in fig.table.rows)


def test_placebo_in_space_row_is_the_placebo_range_not_an_interval() -> None:
    common = ex.common()
    o = common.outcomes[0]
    chk = RobustnessCheck(
        "placebo_in_space",
        -0.5,
        -0.31,
        0.29,
        True,
        "ranked",
        PlaceboInSpace(0.02, 148, 149, False, 0.2),
    )
    ev = dataclasses.replace(common, outcomes=(dataclasses.replace(o, robustness=(chk,)),))
    t = next(b for b in build(ev).section("annex-robustness").blocks if isinstance(b, Table))
    row = t.rows[0]
    assert row[3] == "placebo estimates' middle 95%: −0.31 to 0.29; placebo rank p = 0.020"
    assert t.columns[3] == "Interval" and "placebo estimates themselves" in t.note


def test_robustness_intervals_from_cluster_robust_errors_are_greyed_under_permutation(
    single,
) -> None:
    """With one treated unit and permutation inference, a check whose interval comes from
    cluster-robust standard errors (HonestDiD's bounds, a refit that fell back to them) is
    labelled and greyed; a check run with the stated inference is not."""
    o = single.outcomes[0]
    none = PartTable(pd.DataFrame())
    bounds = HonestDiD(0.5, "cluster", none, none, 3, 3)
    checks = (
        RobustnessCheck("honest_did", -0.01, -0.02, -0.005, True, "", bounds),
        RobustnessCheck(
            "leave_one_out", -0.01, -0.03, 0.01, True, "", LeaveOneOut("unit 3", "permutation")
        ),
        RobustnessCheck(
            "alternative_estimators:twfe",
            -0.01,
            -0.02,
            -0.001,
            True,
            "",
            AlternativeEstimator("twfe", "cluster", 0.04),
        ),
    )
    ev = dataclasses.replace(single, outcomes=(dataclasses.replace(o, robustness=checks),))
    doc = build(ev)
    t = next(b for b in doc.section("annex-robustness").blocks if isinstance(b, Table))
    assert t.row_classes == ("not-valid", "", "not-valid")
    reason = "cluster-robust interval, not valid with 1 treated cluster"
    assert reason in t.rows[0][3] and reason in t.rows[2][3] and reason not in t.rows[1][3]
    assert "Greyed rows" in t.note
    words = " ".join(
        " ".join(b.items) for b in doc.section("robustness").blocks if hasattr(b, "items")
    )
    assert words.count("only a rough guide") == 2
    # under cluster-robust inference the same intervals are the stated inference's
    common = ex.common()
    assert common.inference.name == "cluster"
    ev = dataclasses.replace(
        common, outcomes=(dataclasses.replace(common.outcomes[0], robustness=checks),)
    )
    t = next(b for b in build(ev).section("annex-robustness").blocks if isinstance(b, Table))
    assert set(t.row_classes) == {""}


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("18.6%", "an"),
        ("8%", "an"),
        ("80.1%", "an"),
        ("11.2%", "an"),
        ("11,000", "an"),
        ("1.0%", "a"),
        ("12.8%", "a"),
        ("110%", "a"),
        ("1,100", "a"),
        ("180%", "a"),
        ("0.5%", "a"),
    ],
)
def test_article_by_the_spoken_number(number: str, expected: str) -> None:
    assert article(number) == expected


def test_headline_grammar_an_eighteen(single) -> None:
    from pilotlab.report.text import headline_sentence

    s = headline_sentence(
        "Referrals", -1.5, -2.0, -1.0, decimals=1, level="95%", units="", better="lower",
        improved=True, relative=-0.186, baseline="8.1", n_treated=1, unit_word="area",
        comparison="comparison areas",
    )  # fmt: skip
    assert "an 18.6% fall" in s and "in the 1 pilot area," in s
    assert plural(1, "treated cluster") == "1 treated cluster"


def test_jargon_detector_finds_each_term() -> None:
    for term in JARGON:
        assert term in find_jargon(f"before {term} after"), term
    assert set(find_jargon("honest_did and wild_bootstrap")) == {"honest_did", "wild_bootstrap"}
    assert find_jargon("Parallel trends held before the pilot started.") == []


def _pilot_reports() -> list[str]:
    return [render_html(build(ex.shipped(name))) for name in ("employment-support", "family-hubs")]


@pytest.mark.parametrize("name", [*ex.EXAMPLES, "pilots"])
def test_main_part_has_no_jargon(name: str) -> None:
    pages = _pilot_reports() if name == "pilots" else [render_html(build(ex.EXAMPLES[name]()))]
    for html in pages:
        main = _visible_text(_main_html(html))
        assert find_jargon(main) == [], find_jargon(main)
        annex = _visible_text(html[html.index('id="annex"') :])
        assert "Glossary of technical terms" in annex and "Technical annex" in html
        # every detailed table is in the annex
        assert "Standard error" not in main and "p-value" not in main.replace("p-values", "")


def test_cli_result_line_is_at_the_outcome_scale(single) -> None:
    from pilotlab.cli import _result_line

    line = _result_line(single.outcomes[0])
    assert line.startswith("Share of residents in work: -0.00")
    assert re.search(
        r"95% CI -0\.0\d\d to 0\.0\d\d; p = 0\.\d{3}\) \[event_study, permutation\]", line
    )
    common = ex.common()
    assert re.fullmatch(
        r"Claimant count rate \(%\): -0\.\d\d \(95% CI -\d\.\d\d to -0\.\d\d; p [<=] [0-9.]+\) "
        r"\[event_study, cluster\]",
        _result_line(common.outcomes[0]),
    )
