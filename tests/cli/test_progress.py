"""Progress of ``pilotlab run`` and ``evaluate(progress=...)``: stages and checks, in order."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pilotlab import evaluate
from pilotlab.cli import cli
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import load_pilot
from tests.support import pilot_dict, write_pilot

CHECKS = ["placebo_in_time", "leave_one_out", "alternative_estimators"]


@pytest.fixture
def pilot(tmp_path: Path) -> Path:
    sim = make_pilot_panel(
        n_units=30, n_periods=10, n_treated=10, start=6, effect=1.0, seed=3, outcome="outcome"
    )
    spec = pilot_dict(
        treatment={"adoption": sim.adoption, "comparison": "never_treated"},
        outcomes=[
            {"column": "outcome", "primary": True, "label": "Jobs filled"},
        ],
        design={
            "estimator": "twfe",
            "inference": {"method": "cluster"},
            "robustness": CHECKS,
        },
    )
    return write_pilot(tmp_path / "p", spec, sim.data)


def _expected(cli_suffix: str = " ...") -> list[str]:
    """Fragments every progress report must contain, in this order."""
    out = ["Reading the pilot file", "Reading the data", "Checking the data", "Choosing"]
    out.append("Fitting Jobs filled: twfe with cluster inference")
    for nm in CHECKS:
        start = f"Robustness check {nm} (Jobs filled)"
        out += [start + cli_suffix, f"{start} finished"]
    return [*out, "Summarising the evidence", "Writing the report"]


def _in_order(text: str, fragments: list[str]) -> None:
    pos = 0
    for frag in fragments:
        at = text.find(frag, pos)
        assert at >= 0, f"{frag!r} missing (or out of order) after position {pos} in:\n{text}"
        pos = at + len(frag)


def test_run_shows_stages_and_each_check_in_order(
    pilot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PILOTLAB_PROGRESS", "1")
    res = CliRunner().invoke(cli, ["run", str(pilot), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    _in_order(res.stderr, _expected())
    for nm in CHECKS:  # each check says it finished, with its time
        assert f"Robustness check {nm} (Jobs filled) finished in " in res.stderr
    assert "  alternative_estimators:did ..." in res.stderr  # each alternative as it starts
    assert "Reading" not in res.stdout  # progress never mixes with the results on stdout
    assert "Report written to" in res.stdout


def test_run_is_quiet_when_not_a_terminal(pilot: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PILOTLAB_PROGRESS", raising=False)
    res = CliRunner().invoke(cli, ["run", str(pilot), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    assert "Report written to" in res.stdout


@pytest.mark.parametrize("how", ["--quiet", "-q", "env0"])
def test_quiet_and_forced_off_silence_progress(
    pilot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setenv("PILOTLAB_PROGRESS", "0" if how == "env0" else "1")
    args = ["run", str(pilot), "-o", str(tmp_path / "out")]
    res = CliRunner().invoke(cli, args + ([] if how == "env0" else [how]))
    assert res.exit_code == 0, res.output
    assert res.stderr == ""


def test_evaluate_reports_its_stages(pilot: Path) -> None:
    messages: list[str] = []
    ev = evaluate(load_pilot(pilot), progress=messages.append)
    joined = "\n".join(messages)
    _in_order(joined, _expected("")[1:-1])
    starts = [m for m in messages if m.startswith("Robustness check") and not m.endswith(".")]
    ends = [m for m in messages if m.endswith(" finished.")]
    assert starts == [f"Robustness check {nm} (Jobs filled)" for nm in CHECKS]
    assert ends == [f"{s} finished." for s in starts]
    # the callback changes nothing: same numbers as without it
    again = evaluate(load_pilot(pilot))
    assert ev.outcomes[0].result.estimate == again.outcomes[0].result.estimate
    assert ev.outcomes[0].result.p_value == again.outcomes[0].result.p_value
    assert [c.estimate for c in ev.outcomes[0].robustness] == [
        c.estimate for c in again.outcomes[0].robustness
    ]


def test_evaluate_is_silent_by_default(pilot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evaluate(load_pilot(pilot))
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
