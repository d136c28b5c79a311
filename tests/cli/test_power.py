"""``pilotlab power``: outputs, progress, clear errors with exit 1 and nothing written."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.engine import run_power, write_power_report
from pilotlab.exceptions import PilotlabError
from tests.support.power import history, planned

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
    spec = planned(
        treated=2,
        post_periods=1,
        simulations=40,
        effects=[0.01, 0.02],
        design={"inference": {"method": "permutation", "replications": 199}},
    )
    res = run_power(spec, df)
    assert res.mde is None and any("below 80%" in n for n in res.notes)
    pj, ph = write_power_report(res, tmp_path / "r")
    assert json.loads(pj.read_text())["mde"] is None
    assert "does not reach 80% power" in ph.read_text()


def test_example_planned_pilot_runs(tmp_path) -> None:
    root = Path(__file__).resolve().parents[2]
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


def test_power_works_on_the_init_template(tmp_path, monkeypatch) -> None:
    """`pilotlab init DIR && pilotlab power DIR/pilot.yaml -o OUT`, exactly, out of the box."""
    monkeypatch.delenv("PILOTLAB_PROGRESS", raising=False)
    runner = CliRunner()
    res = runner.invoke(cli, ["init", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        cli, ["power", str(tmp_path / "x" / "pilot.yaml"), "-o", str(tmp_path / "p")]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "p" / "power.json").read_text(encoding="utf-8"))
    assert doc["n_treated"] == 4 and doc["post_periods"] == 6 and doc["simulations"] == 500
    assert doc["inference"] == "permutation" and doc["path"] == "permutation"
    assert doc["assignment"] == "random" and not doc["over_rejects"]
    assert doc["mde"] is not None and doc["mde"] > 0
    assert "Traceback" not in res.output


def test_a_window_longer_than_the_history_is_fitted_with_a_note(tmp_path) -> None:
    """design.window.post is the analysis window, not a power plan: when placebo pilots cannot
    hold it, they use the periods the history has, and say so (an explicit plan still errors)."""
    df = history(30, 10, seed=3)
    spec = planned(treated=5, simulations=40, design={"window": {"pre": 8, "post": 8}})
    res = run_power(spec, df)
    assert res.post_periods == 6 and res.min_pre_periods == 4
    assert any("design.window.post asks for 8 periods" in n for n in res.notes)
    with pytest.raises(PilotlabError, match=r"design\.power\.post_periods: 8 post periods"):
        run_power(planned(treated=5, post_periods=8), df)


def test_progress_shows_stages_and_bar_from_the_start(pilot_dir, monkeypatch) -> None:
    monkeypatch.setenv("PILOTLAB_PROGRESS", "1")  # CliRunner is not a terminal: force it
    res = CliRunner().invoke(
        cli, ["power", str(pilot_dir / "pilot.yaml"), "-o", str(pilot_dir / "o")]
    )
    assert res.exit_code == 0, res.output
    err = res.stderr
    first = err.index("Reading")
    assert first < err.index("Simulating 60 placebo pilots") < err.index("0/60 placebo pilots")
    assert "60/60 placebo pilots" in err and "Writing the power report" in err
    assert "MDE at 80% power" in res.stdout and "placebo pilots," not in res.stdout
    quiet = CliRunner().invoke(
        cli, ["power", str(pilot_dir / "pilot.yaml"), "-o", str(pilot_dir / "q"), "--quiet"]
    )
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_no_progress_when_not_a_terminal(pilot_dir, monkeypatch) -> None:
    monkeypatch.delenv("PILOTLAB_PROGRESS", raising=False)
    res = CliRunner().invoke(
        cli, ["power", str(pilot_dir / "pilot.yaml"), "-o", str(pilot_dir / "o")]
    )
    assert res.exit_code == 0 and res.stderr == ""


def test_progress_starts_at_zero_and_moves_on_every_path(pilot_dir) -> None:
    df = history(40, 16, seed=4)
    for method in ("cluster", "wild_bootstrap", "permutation"):
        calls: list[tuple[int, int]] = []
        stages: list[str] = []
        run_power(
            planned(
                treated=6,
                post_periods=3,
                simulations=100,
                design={"inference": {"method": method, "replications": 199}},
            ),
            df,
            n_jobs=1,
            progress=lambda d, t, c=calls: c.append((d, t)),
            stage=stages.append,
        )
        assert calls[0] == (0, 100) and calls[-1] == (100, 100), method
        assert len(calls) >= 3, method  # updated as simulations finish, not only at the end
        assert stages[0] == "Reading the history" and "Simulating 100" in stages[1]


def test_conditional_flag_is_labelled_in_the_output(tmp_path) -> None:
    df = history(40, 16, seed=4)
    df.to_csv(tmp_path / "panel.csv", index=False)
    units = sorted(df["area_code"].unique())[:8]
    text = PILOT.replace("power: {treated: 8, ", "power: {treated: [" + ", ".join(units) + "], ")
    (tmp_path / "pilot.yaml").write_text(text, encoding="utf-8")
    out = tmp_path / "o"
    res = CliRunner().invoke(
        cli, ["power", str(tmp_path / "pilot.yaml"), "-o", str(out), "--conditional-on-units"]
    )
    assert res.exit_code == 0, res.output
    assert "conditional on the named units (not the design's power)" in res.stdout
    html = (out / "power.html").read_text(encoding="utf-8")
    assert "not the power of the design" in html


def test_power_numbers_on_a_large_scale_have_no_exponents(tmp_path) -> None:
    """An outcome in thousands prints its MDE as 11,864-style digits, never 1.186e+04."""
    df = history(40, 16, seed=4)
    df["outcome"] = df["outcome"] * 10_000
    df.to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "pilot.yaml").write_text(PILOT.replace("mde: 0.8", "mde: 8000"), encoding="utf-8")
    res = CliRunner().invoke(
        cli, ["power", str(tmp_path / "pilot.yaml"), "-o", str(tmp_path / "out"), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    assert "MDE at 80% power = " in res.output
    assert "e+0" not in res.output, res.output
    html = (tmp_path / "out" / "power.html").read_text(encoding="utf-8")
    assert "e+0" not in html
