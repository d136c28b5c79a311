"""The command line as users run it: init -> validate -> register -> run -> portfolio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pilotlab.cli import cli
from tests.support import ROOT


def test_init_validate_run_and_record(tmp_path: Path, runner, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default registry lives in ./.pilotlab
    monkeypatch.delenv("PILOTLAB_REGISTRY_URL", raising=False)
    res = runner.invoke(cli, ["init", "demo"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "demo" / "pilot.yaml").exists()
    again = runner.invoke(cli, ["init", "demo"])
    assert again.exit_code == 1 and "already exists" in again.output

    res = runner.invoke(cli, ["validate", "demo/pilot.yaml"])
    assert res.exit_code == 0 and "valid" in res.output, res.output

    # Not registered: no registry is created by a run.
    res = runner.invoke(cli, ["run", "demo/pilot.yaml", "-o", "out/first"])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / ".pilotlab").exists()
    names = {p.name for p in (tmp_path / "out" / "first").iterdir()}
    assert {"report.html", "evidence.json", "results.csv", "tables"} <= names

    assert runner.invoke(cli, ["register", "demo/pilot.yaml"]).exit_code == 0
    res = runner.invoke(cli, ["run", "demo/pilot.yaml", "-o", "out/second"])
    assert res.exit_code == 0, res.output
    assert "Run recorded in the registry; the plan matches registered version 1" in res.output
    record = json.loads((tmp_path / "out" / "second" / "evidence.json").read_text())
    assert record["plan"]["registered"] and record["plan"]["matches_registered"]
    assert record["plan"]["version"] == 1

    show = runner.invoke(cli, ["show", "my-pilot"])
    assert show.exit_code == 0 and "run" in show.output.lower()

    res = runner.invoke(cli, ["portfolio", "-o", "portfolio.html"])
    assert res.exit_code == 0, res.output
    assert (
        "my-pilot" in (tmp_path / "portfolio.html").read_text()
        or "My test-and-learn pilot" in (tmp_path / "portfolio.html").read_text()
    )
    res = runner.invoke(cli, ["portfolio", "out/first", "out/second", "-o", "p2.html"])
    assert res.exit_code == 0 and "2 pilot(s)" in res.output


def test_init_keeps_the_users_other_files(tmp_path: Path, runner) -> None:
    """init writes pilot.yaml and data/panel.csv only; a data/ folder's other files stay."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "claims.csv").write_text("mine\n")
    (tmp_path / "notes.md").write_text("mine\n")
    res = runner.invoke(cli, ["init", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "data" / "claims.csv").read_text() == "mine\n"
    assert (tmp_path / "notes.md").read_text() == "mine\n"
    assert (tmp_path / "pilot.yaml").exists() and (tmp_path / "data" / "panel.csv").exists()
    (tmp_path / "pilot.yaml").unlink()
    res = runner.invoke(cli, ["init", str(tmp_path)])  # an existing panel.csv is not replaced
    assert res.exit_code == 1 and "panel.csv already exists" in res.output
    assert not list(tmp_path.rglob(".pilot*"))


def test_portfolio_without_registry_or_files_is_a_clear_error(
    tmp_path: Path, runner, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PILOTLAB_REGISTRY_URL", raising=False)
    res = runner.invoke(cli, ["portfolio", "-o", "p.html"])
    assert res.exit_code == 1 and "no registry found" in res.output
    assert not (tmp_path / "p.html").exists()


@pytest.mark.heavy
@pytest.mark.parametrize("example", ["employment-support", "family-hubs"])
def test_example_pilots_run_end_to_end_as_a_subprocess(tmp_path: Path, example: str) -> None:
    """The README's quick start: the installed command on an example pilot."""
    out = tmp_path / example
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pilotlab",
            "run",
            str(ROOT / "pilots" / example / "pilot.yaml"),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Report written to" in proc.stdout
    assert "RuntimeWarning" not in proc.stderr, proc.stderr
    record = json.loads((out / "evidence.json").read_text())
    truth = json.loads((ROOT / "pilots" / example / "data" / "truth.json").read_text())
    first = record["results"][0]
    att = truth["att"] if isinstance(truth["att"], float) else truth["att"][first["outcome"]]
    assert first["ci_lower"] <= att <= first["ci_upper"], (first, att)
