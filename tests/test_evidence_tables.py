"""The evidence record: built from the same field list as ``tidy()`` and holding every table the
report shows (Goodman-Bacon, group-time effects, synthetic weights, paths and placebo runs)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from pilotlab.evidence import RENAMED, evidence_json, evidence_record, validate_record
from pilotlab.report import build, render_report
from pilotlab.results import OUTCOME_FIELDS, TIDY_FIELDS, json_scalar
from tests.support import report as ex


@pytest.fixture(scope="module")
def staggered():
    return ex.staggered()


@pytest.fixture(scope="module")
def synthetic():
    return ex.synthetic()


def test_headline_fields_are_the_tidy_fields(staggered) -> None:
    rec = evidence_record(staggered)
    validate_record(rec)
    row = rec["results"][0]
    tidy = staggered.tidy().iloc[0]
    for k in (*TIDY_FIELDS, *OUTCOME_FIELDS):
        got, want = row[RENAMED.get(k, k)], json_scalar(tidy[k])
        assert got == want or (got is None and want is None), k


def test_goodman_bacon_and_group_time_tables_are_recorded(staggered) -> None:
    rec = json.loads(evidence_json(staggered))
    validate_record(rec)
    r = rec["results"][0]
    bacon = staggered.diagnostics.goodman_bacon["referrals"]
    assert r["goodman_bacon"]["twfe_estimate"] == bacon.twfe_estimate
    assert [b["type"] for b in r["goodman_bacon"]["by_type"]] == list(bacon.by_type["type"])
    assert r["goodman_bacon"]["forbidden_weight"] == pytest.approx(0.08)
    st = staggered.outcomes[0].result.staggered
    assert r["staggered"]["att_gt"] == st.att_gt.records() and len(r["staggered"]["att_gt"]) > 0
    assert {a["type"] for a in r["staggered"]["aggregations"]} == {
        "simple",
        "dynamic",
        "group",
        "calendar",
    }
    assert "uniform_lower" in r["staggered"]["dynamic"][0]
    assert r["linear"]["coefficients"]  # the staggered example keeps its TWFE regression


def test_synthetic_tables_are_recorded(synthetic) -> None:
    rec = evidence_record(synthetic)
    validate_record(rec)
    s = rec["results"][0]["synthetic"]
    assert [w["unit"] for w in s["weights"]][:2] == ["A0001", "A0002"]
    assert math.isclose(sum(w["weight"] for w in s["weights"]), 1.0)
    assert {"period", "treated", "synthetic", "cohort"} <= set(s["paths"][0])
    assert sum(p["treated"] for p in s["placebo"]) == 1 and len(s["placebo"]) == 40
    assert s["pre_rmspe"] == 0.1 and s["time_weights"] is None


def test_tables_are_written_at_full_precision_beside_the_formatted_ones(
    tmp_path: Path, staggered
) -> None:
    render_report(staggered, tmp_path / "report.html")
    tables = tmp_path / "tables"
    est_id = next(t.id for t in build(staggered).tables() if t.id.startswith("estimates"))
    text = (tables / f"{est_id}.csv").read_text(encoding="utf-8")
    formatted = list(csv.reader(text.splitlines()))
    text = (tables / f"{est_id}_full.csv").read_text(encoding="utf-8")
    full = list(csv.DictReader(text.splitlines()))
    r = staggered.outcomes[0].result
    assert float(full[0]["estimate"]) == r.estimate  # round-trips exactly
    assert float(full[0]["ci_lower"]) == r.ci_lower and full[0]["outcome"] == r.outcome
    assert formatted[1][1] != repr(r.estimate)  # the formatted one is rounded
    # the group-time effects and the Goodman-Bacon table have their full-precision twins too
    names = {p.name for p in tables.glob("*_full.csv")}
    assert any(n.startswith("att-gt") for n in names)
    assert any(n.startswith("goodman-bacon") for n in names)
