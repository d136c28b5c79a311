"""The portfolio page over several evidence records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pilotlab.evidence import evidence_json
from pilotlab.exceptions import PilotlabError
from pilotlab.report import portfolio_from_paths, render_portfolio, render_report
from tests.support import report as ex


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("runs")
    out = []
    for name in ("common", "three_outcomes", "staggered"):
        ev = ex.EXAMPLES[name]()
        d = base / name
        render_report(ev, d / "report.html")
        (d / "evidence.json").write_text(evidence_json(ev), encoding="utf-8")
        out.append(d)
    return out


def test_portfolio_lists_every_primary_outcome_with_links(runs: list[Path], tmp_path: Path) -> None:
    records = portfolio_from_paths([runs[0] / "evidence.json", runs[1], runs[2]])
    assert len(records) == 3
    path = render_portfolio(records, tmp_path / "index.html")
    html = path.read_text(encoding="utf-8")
    n_primary = sum(sum(1 for r in rec["results"] if r["primary"]) or 1 for rec in records)
    assert html.count('<tr><th scope="row">') >= n_primary
    hrefs = re.findall(r'href="([^"]+report\.html)"', html)
    assert hrefs and all((tmp_path / h).resolve().is_file() for h in hrefs)
    assert "Level " in html and "completed" in html
    assert "<svg" in html and "Content-Security-Policy" in html
    assert (tmp_path / "tables" / "portfolio.csv").is_file()
    # the forest plot has one row per primary outcome with a baseline
    data = (tmp_path / "tables" / "portfolio-forest-data.csv").read_text(encoding="utf-8")
    assert len(data.strip().splitlines()) - 1 == n_primary


def test_portfolio_from_plain_dicts_without_reports(tmp_path: Path) -> None:
    rec = json.loads(evidence_json(ex.common()))
    path = render_portfolio([rec], tmp_path / "p.html")
    assert ">none<" in path.read_text(encoding="utf-8")  # no report link to give


def test_bad_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PilotlabError, match="no evidence record there"):
        portfolio_from_paths([tmp_path / "missing"])
    bad = tmp_path / "evidence.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(PilotlabError, match="not valid JSON"):
        portfolio_from_paths([bad])
    bad.write_text('{"schema": "something/else"}', encoding="utf-8")
    with pytest.raises(PilotlabError, match="not a pilotlab evidence record"):
        portfolio_from_paths([bad])


@pytest.mark.parametrize(
    ("better", "est", "lo", "hi", "expected"),
    [
        ("lower", -0.5, -0.7, -0.2, "improvement (lower is better)"),
        ("higher", -0.5, -0.7, -0.2, "worsening (higher is better)"),
        ("higher", 0.5, 0.2, 0.7, "improvement (higher is better)"),
        ("lower", 0.5, 0.2, 0.7, "worsening (lower is better)"),
        ("lower", -0.5, -0.9, 0.1, "no clear change"),
        ("lower", -0.5, None, None, "not available"),
    ],
)
def test_change_verdict_follows_the_outcome_direction(better, est, lo, hi, expected) -> None:
    from pilotlab.report.portfolio import change_verdict

    r = {"better": better, "estimate": est, "ci_lower": lo, "ci_upper": hi}
    assert change_verdict(r) == expected


def test_portfolio_rows_say_improvement_and_link_registry_reports(tmp_path: Path) -> None:
    rec = json.loads(evidence_json(ex.common()))
    report = tmp_path / "run" / "report.html"
    report.parent.mkdir()
    report.write_text("<html></html>", encoding="utf-8")
    rec["provenance"] = {"registry_id": "x", "report_path": str(report)}
    path = render_portfolio([rec], tmp_path / "p.html")
    html = path.read_text(encoding="utf-8")
    assert '<th scope="col">Improvement?</th>' in html
    assert "improvement (lower is better)" in html
    assert 'href="run/report.html"' in html
