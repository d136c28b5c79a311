"""``pilotlab power``: outputs, progress, clear errors with exit 1 and nothing written."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.power import run_power, write_power_report
from power_helpers import history, planned

PILOT = """\
id: demo-plan
title: Demo <planned> pilot
status: planned
data: {path: panel.csv, unit: area_code, time: period}
treatment: {}
outcomes:
  - column: outcome
    label: Claimant rate
    mde: 0.8
design:
  estimator: twfe
  power: {treated: 8, post_periods: 4, simulations: 60}
"""


@pytest.fixture()
def pilot_dir(tmp_path):
    history(40, 16, seed=4).to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "pilot.yaml").write_text(PILOT, encoding="utf-8")
    return tmp_path


def test_power_command_writes_json_and_html(pilot_dir) -> None:
    out = pilot_dir / "out"
    res = CliRunner().invoke(
        cli,
        [
            "power",
            str(pilot_dir / "pilot.yaml"),
            "-o",
            str(out),
            "--treated",
            "4,8",
            "--post",
            "2,4",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "MDE at 80% power" in res.output
    doc = json.loads((out / "power.json").read_text(encoding="utf-8"))
    for key in ("mde", "target_power", "alpha", "false_positive_rate", "table", "analytic"):
        assert key in doc
    assert len(doc["tradeoff"]) == 4
    assert all({"effect", "power", "mc_error"} <= set(row) for row in doc["table"])
    html = (out / "power.html").read_text(encoding="utf-8")
    assert '<title id="curve-title">' in html and '<desc id="curve-desc">' in html
    assert "<caption>Power at each effect size</caption>" in html
    assert "Demo &lt;planned&gt; pilot" in html  # autoescaped
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--post", "20"], "--post: 20 post periods plus at least 4"),
        (["--treated", "40"], "--treated: 40 treated units requested but only 40"),
    ],
)
def test_power_command_errors_exit_1_and_write_nothing(pilot_dir, args, match) -> None:
    out = pilot_dir / "out"
    res = CliRunner().invoke(cli, ["power", str(pilot_dir / "pilot.yaml"), "-o", str(out), *args])
    assert res.exit_code == 1
    assert match in res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_power_command_usage_errors(pilot_dir) -> None:
    res = CliRunner().invoke(cli, ["power", str(pilot_dir / "pilot.yaml"), "--treated", "a,b"])
    assert res.exit_code == 2 and "--treated" in res.output
    res = CliRunner().invoke(cli, ["power", str(pilot_dir / "missing.yaml")])
    assert res.exit_code == 1 and "missing.yaml" in res.output


def test_progress_callback_reaches_total(pilot_dir) -> None:
    calls: list[tuple[int, int]] = []
    df = history(40, 16, seed=4)
    res = run_power(
        planned(treated=5, post_periods=3, simulations=50),
        df,
        post=[2, 3],
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls[-1] == (100, 100)  # the main design (5, 3) is also a grid cell: run once
    cell = next(c for c in res.tradeoff if c.post_periods == 3)
    assert cell.mde == res.mde and cell.false_positive_rate == res.false_positive_rate
    assert all(a <= b for (a, _), (b, _) in itertools.pairwise(calls))


def test_report_without_tradeoff_and_unreached_mde(tmp_path) -> None:
    df = history(30, 12, seed=6)
    res = run_power(planned(treated=2, post_periods=1, simulations=40, effects=[0.01, 0.02]), df)
    assert res.mde is None and any("below 80%" in n for n in res.notes)
    pj, ph = write_power_report(res, tmp_path / "r")
    assert json.loads(pj.read_text())["mde"] is None
    assert "does not reach 80% power" in ph.read_text()


def test_example_planned_pilot_runs(tmp_path) -> None:
    root = Path(__file__).resolve().parents[1]
    pilot = root / "pilots" / "attendance-plan" / "pilot.yaml"
    res = CliRunner().invoke(
        cli, ["power", str(pilot), "-o", str(tmp_path / "o"), "--simulations", "100"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "o" / "power.json").read_text(encoding="utf-8"))
    assert doc["n_treated"] == 10 and doc["post_periods"] == 4 and doc["mde"] > 0
    assert doc["declared_mde"] == 0.5


def test_validate_accepts_a_planned_pilot(pilot_dir) -> None:
    res = CliRunner().invoke(cli, ["validate", str(pilot_dir / "pilot.yaml")])
    assert res.exit_code == 0, res.output
    assert "a planned pilot" in res.output and "pilotlab power" in res.output
