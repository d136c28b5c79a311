# ruff: noqa: F811  (the registry_url fixture is imported from tests.support.registry)
"""``pilotlab.run_pilot``: what ``pilotlab run`` does, from Python.

The same outputs as the command line, the run recorded in the registry only once they are in
place, and nothing written nor recorded when the evaluation (or writing) fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import pilotlab
from pilotlab.cli import cli
from pilotlab.exceptions import DataError, PilotlabError
from pilotlab.outputs import MANIFEST, STAGING_PREFIX
from pilotlab.registry import Registry
from pilotlab.registry.service import register_pilot
from pilotlab.simulate import make_pilot_panel
from tests.support import ROOT, pilot_dict, write_pilot
from tests.support.registry import count_rows, registry_url  # noqa: F401

EXAMPLE = ROOT / "pilots" / "employment-support" / "pilot.yaml"


@pytest.fixture
def no_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder without a registry (run_pilot and pilotlab run then record nothing)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PILOTLAB_REGISTRY_URL", raising=False)
    return tmp_path


def _small_pilot(folder: Path, **treatment: object) -> Path:
    sim = make_pilot_panel(30, 8, 6, 5, effect=-0.5, seed=7, outcome="outcome")
    spec = pilot_dict(
        id="small-pilot",
        treatment={"units": list(sim.treated_units), "start": sim.start, **treatment},
        design={"estimator": "twfe", "inference": {"method": "cluster"}},
    )
    return write_pilot(folder, spec, sim.data.drop(columns="true_effect"))


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _normalised(files: dict[str, bytes], out: Path) -> str:
    """The report with the two things allowed to differ replaced: when it was generated and
    the output folder (in the command line of the reproducibility appendix)."""
    generated_at = json.loads(files["evidence.json"])["generated_at"]
    text = files["report.html"].decode("utf-8")
    assert generated_at in text and str(out) in text
    return text.replace(generated_at, "<generated>").replace(str(out), "<out>")


@pytest.mark.heavy
def test_run_pilot_writes_exactly_what_pilotlab_run_writes(no_registry: Path) -> None:
    cli_out, api_out = no_registry / "cli", no_registry / "api"
    res = CliRunner().invoke(cli, ["run", str(EXAMPLE), "-o", str(cli_out), "--quiet"])
    assert res.exit_code == 0, res.output
    run = pilotlab.run_pilot(EXAMPLE, api_out)

    assert isinstance(run, pilotlab.PilotRun) and run.run_id is None and not run.recorded
    by_cli, by_api = _files(cli_out), _files(api_out)
    assert sorted(by_cli) == sorted(by_api) == list(run.files)
    assert {"report.html", "evidence.json", "results.csv"} <= set(run.files)
    assert any(name.startswith("tables/") for name in run.files)

    cli_ev, api_ev = (json.loads(f["evidence.json"]) for f in (by_cli, by_api))
    assert api_ev == run.record
    assert cli_ev["reproducibility"]["command"] == f"pilotlab run {EXAMPLE} -o {cli_out}"
    assert api_ev["reproducibility"]["command"] == f"pilotlab run {EXAMPLE} -o {api_out}"
    for ev in (cli_ev, api_ev):
        del ev["generated_at"], ev["reproducibility"]["command"]
    assert cli_ev == api_ev

    assert _normalised(by_cli, cli_out) == _normalised(by_api, api_out)
    for name in by_cli:  # every table and results.csv: byte for byte
        if name not in ("report.html", "evidence.json"):
            assert by_cli[name] == by_api[name], name
    assert run.report == api_out / "report.html" and run.evidence == api_out / "evidence.json"


def test_run_pilot_records_the_run_after_the_outputs(
    tmp_path: Path, registry_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pilot = _small_pilot(tmp_path / "p")
    register_pilot(pilot, registry_url)
    out = tmp_path / "out"
    seen: list[set[str]] = []
    real = Registry.record_run

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append({p.name for p in out.iterdir()} if out.exists() else set())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Registry, "record_run", spy)
    messages: list[str] = []
    run = pilotlab.run_pilot(pilot, out, registry=registry_url, progress=messages.append)

    assert len(seen) == 1 and {"report.html", "evidence.json", "results.csv"} <= seen[0]
    assert run.recorded and run.plan.registered and run.plan.matches_registered
    assert messages[-2:] == [f"Writing the report to {out}", "Recording the run in the registry"]
    with Registry(registry_url) as reg:
        [stored] = reg.show("small-pilot").runs
        [record] = reg.portfolio_records()
    assert stored.run_id == run.run_id and stored.plan_version == 1
    assert record["results"] == run.record["results"]
    assert json.loads((out / "evidence.json").read_text(encoding="utf-8")) == run.record


def test_a_registry_passed_in_is_used_and_left_open(tmp_path: Path) -> None:
    pilot = _small_pilot(tmp_path / "p")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    register_pilot(pilot, url)
    with Registry(url) as reg:
        run = pilotlab.run_pilot(pilot, tmp_path / "out", registry=reg)
        assert run.recorded
        assert [r.run_id for r in reg.show("small-pilot").runs] == [run.run_id]  # still open
        dry = pilotlab.run_pilot(pilot, tmp_path / "dry", registry=reg, record=False)
        assert dry.plan.registered and not dry.recorded  # read for the report, not recorded
        assert len(reg.show("small-pilot").runs) == 1


def test_a_parsed_pilot_runs_too(tmp_path: Path, no_registry: Path) -> None:
    spec = pilotlab.load_pilot(_small_pilot(tmp_path / "p"))
    run = pilotlab.run_pilot(spec, tmp_path / "out")
    assert run.evaluation.pilot is spec and (tmp_path / "out" / "report.html").exists()
    command = run.record["reproducibility"]["command"]
    assert command == f"pilotlab run {spec.source_path} -o {tmp_path / 'out'}"
    default = pilotlab.run_pilot(spec)  # out/<pilot id> beside the pilot file
    assert default.output_dir == tmp_path / "p" / "out" / "small-pilot"
    assert default.report.exists()


def test_a_failed_evaluation_writes_nothing_and_records_nothing(
    tmp_path: Path, registry_url: str
) -> None:
    pilot = _small_pilot(tmp_path / "p")
    register_pilot(pilot, registry_url)
    text = pilot.read_text(encoding="utf-8")
    # a treated unit the data do not hold: found only once the data are read, mid-run
    pilot.write_text(re.sub(r"- A\d{4}\n", "- Z9999\n", text, count=1), encoding="utf-8")
    with Registry(registry_url) as reg:
        before = count_rows(reg)
    out = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(DataError, match="Z9999"):
        pilotlab.run_pilot(pilot, out, registry=registry_url)
    assert not (tmp_path / "new").exists()  # not even the parent folders
    assert not list(tmp_path.rglob(f"{STAGING_PREFIX}*"))
    with Registry(registry_url) as reg:
        assert count_rows(reg) == before


def test_a_failure_while_writing_leaves_no_partial_files(
    tmp_path: Path, no_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pilotlab.engine.run as run_module

    pilot = _small_pilot(tmp_path / "p")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    register_pilot(pilot, url)
    real = run_module.write_outputs

    def half(evaluation, out, *args, **kwargs):  # type: ignore[no-untyped-def]
        real(evaluation, out, *args, **kwargs)  # every file staged, then a failure
        raise PilotlabError("disk full")

    monkeypatch.setattr(run_module, "write_outputs", half)
    out = tmp_path / "out"
    with pytest.raises(PilotlabError, match="disk full"):
        pilotlab.run_pilot(pilot, out, registry=url)
    assert not out.exists() and not list(tmp_path.glob(f"{STAGING_PREFIX}*"))
    with Registry(url) as reg:
        assert reg.show("small-pilot").runs == ()


def test_a_folder_holding_a_users_file_is_refused_before_evaluating(
    tmp_path: Path, no_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pilotlab.engine.run as run_module

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the folder must be refused before the evaluation")

    monkeypatch.setattr(run_module, "evaluate", never)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(PilotlabError, match=r"^output_dir: .*holds 'notes.txt'"):
        pilotlab.run_pilot(_small_pilot(tmp_path / "p"), out)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_run_without_a_registry_does_not_load_the_database_layer(no_registry: Path) -> None:
    # pilotlab run imports only what it runs: with no registry to read, neither SQLAlchemy nor
    # the evidence service client is imported (a second or so of start-up on every run)
    import subprocess
    import sys

    pilot = _small_pilot(no_registry / "pilot")
    code = (
        "import sys\n"
        "from pilotlab.engine import run_pilot\n"
        f"run_pilot({str(pilot)!r}, {str(no_registry / 'out')!r})\n"
        "loaded = sorted(m for m in ('sqlalchemy', 'httpx', 'pilotlab.registry.core') "
        "if m in sys.modules)\n"
        "print(loaded)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=no_registry
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert (no_registry / "out" / "report.html").is_file()
    assert not (no_registry / ".pilotlab").exists()
