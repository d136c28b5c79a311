"""Snapshots of the rendered HTML (timestamps and versions normalised) that really assert.

Regenerate after an intended change with ``pytest tests/report/test_golden.py --update-golden``
and review the diff of ``tests/report/golden/report_*.html`` like any other change.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from pilotlab.report import build
from pilotlab.report.render import render_html
from tests.support import report as ex

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize("name", list(ex.EXAMPLES))
def test_report_matches_golden(name: str, update_golden: bool) -> None:
    html = ex.normalise(render_html(build(ex.EXAMPLES[name]())))
    path = GOLDEN / f"report_{name}.html"
    if update_golden:
        path.parent.mkdir(exist_ok=True)
        path.write_text(html, encoding="utf-8")
        pytest.skip(f"rewrote {path.name}")
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with --update-golden")
    expected = path.read_text(encoding="utf-8")
    if html != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    expected.splitlines(True), html.splitlines(True), "golden", "now", n=1
                )
            )[:60]
        )
        pytest.fail(f"{path.name} differs from the rendered report:\n{diff}")


def test_normalise_strips_only_what_changes_between_runs() -> None:
    html = (
        '<meta name="generator" content="pilotlab 0.1.0"><dt>Software: numpy</dt><dd>2.4.6</dd>'
        "<dd>2026-11-25T23:45:07Z</dd><dd>0.42</dd>"
    )
    out = ex.normalise(html)
    assert "0.1.0" not in out and "2.4.6" not in out and "23:45" not in out
    assert "<dd>0.42</dd>" in out
