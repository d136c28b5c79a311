"""The registry wired to the engine: plan block in a schema-valid evidence record, run recorded."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest

from pilotlab.engine import evaluate
from pilotlab.evidence import evidence_record, validate_record
from pilotlab.registry import Registry
from pilotlab.report import render_report
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict


def _evaluate(spec, sim, plan):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate(spec, sim.data, plan=plan)


def test_registered_plan_reaches_the_evidence_record_and_the_export(tmp_path: Path) -> None:
    sim = make_pilot_panel(40, 10, 8, 6, effect=-0.5, seed=3)
    treatment = {"units": list(sim.treated_units), "start": sim.start}
    spec = parse_pilot(pilot_dict(treatment=treatment, design={"estimator": "twfe"}))
    amended = parse_pilot(
        pilot_dict(treatment=treatment, design={"estimator": "twfe", "alpha": 0.1})
    )
    with Registry(f"sqlite:///{tmp_path / 'r.db'}") as reg:
        assert reg.plan_status(spec).to_plan_info().registered is False
        reg.register(spec)
        reg.amend(amended, "alpha agreed with the department", data_seen=False)

        plan = reg.plan_status(amended).to_plan_info()
        evaluation = _evaluate(amended, sim, plan)
        record = evidence_record(evaluation)
        validate_record(record)
        assert record["plan"]["version"] == 2 and record["plan"]["matches_registered"] is True
        assert record["plan"]["deviations"][0]["item"] == "design.alpha"
        assert record["plan"]["deviations"][0]["reason"] == "alpha agreed with the department"

        head = str(reg.head())  # the chain head when the plan was read, published in both
        assert record["plan"]["registry_head"] == head == "2:" + head.split(":")[1]
        render_report(evaluation, tmp_path / "report.html")
        html = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert "Registry head" in html and head in html

        run = reg.record_run(amended, record, evaluation.data.sha256, record["software"])
        assert (run.plan_version, run.matches_latest) == (2, True)
        assert reg.verify(head=record["plan"]["registry_head"]) == []
        assert run.data_sha256 == evaluation.data.sha256

        stale = _evaluate(spec, sim, reg.plan_status(spec).to_plan_info())
        stale_record = evidence_record(stale)
        validate_record(stale_record)
        assert stale_record["plan"]["registry_head"] == str(reg.head())
        assert stale_record["plan"]["matches_registered"] is False

        reg.export(tmp_path / "out")
        [stored] = reg.portfolio_records()
    assert stored["results"] == record["results"]
    with (tmp_path / "out" / "evidence.csv").open(newline="") as fh:
        [row] = list(csv.DictReader(fh))
    result = record["results"][0]
    assert float(row["estimate"]) == pytest.approx(result["estimate"], rel=1e-12)
    assert float(row["ci_upper"]) == pytest.approx(result["ci_upper"], rel=1e-12)
    assert row["plan_version"] == "2" and row["outcome"] == result["outcome"]


def test_an_unregistered_run_carries_no_registry_head(tmp_path: Path) -> None:
    sim = make_pilot_panel(40, 10, 8, 6, effect=-0.5, seed=3)
    treatment = {"units": list(sim.treated_units), "start": sim.start}
    spec = parse_pilot(pilot_dict(treatment=treatment, design={"estimator": "twfe"}))
    with Registry(f"sqlite:///{tmp_path / 'r.db'}") as reg:
        record = evidence_record(_evaluate(spec, sim, reg.plan_status(spec).to_plan_info()))
    validate_record(record)
    assert record["plan"]["registry_head"] is None
