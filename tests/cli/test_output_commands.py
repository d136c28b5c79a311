"""Every command that writes files: a user's file is refused and kept; an -o that is a file is a
clear ``Error:`` (exit 1), never click's usage error; pilotlab's own files are replaced."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.registry import Registry
from pilotlab.simulate import make_pilot_panel
from tests.support import pilot_dict, write_pilot


def _pilot(tmp_path: Path) -> Path:
    sim = make_pilot_panel(12, 6, 3, 3, seed=4)
    spec = pilot_dict(treatment={"units": list(sim.treated_units), "start": sim.start})
    return write_pilot(tmp_path / "pilot", spec, sim.data)


def _registry(path: Path) -> str:
    """The URL of an (empty) registry at ``path``, created if it is not there yet."""
    url = f"sqlite:///{path}"
    Registry(url).close()
    return url


def _export(tmp_path: Path, out: Path):
    url = _registry(tmp_path / "registry.db")
    return CliRunner().invoke(cli, ["export", "-o", str(out), "--registry", url])


def test_export_refuses_and_keeps_a_users_evidence_files(tmp_path: Path) -> None:
    for name in ("evidence.jsonl", "evidence.csv"):
        out = tmp_path / f"out-{name}"
        out.mkdir()
        (out / name).write_text("the user's own file\n")
        result = _export(tmp_path, out)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: -o/--output: ")
        assert name in result.output and "pilotlab never overwrites" in result.output
        assert "Traceback" not in result.output
        assert (out / name).read_text() == "the user's own file\n"
        assert sorted(p.name for p in out.iterdir()) == [name]  # nothing else written


def test_reexport_replaces_pilotlabs_own_files_but_not_edited_ones(tmp_path: Path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("kept\n")  # other files in the folder are left alone
    first = _export(tmp_path, out)
    assert first.exit_code == 0, first.output
    assert (out / "evidence.csv").read_text().startswith("pilot_id,")
    again = _export(tmp_path, out)
    assert again.exit_code == 0, again.output
    assert (out / "notes.txt").read_text() == "kept\n"
    (out / "evidence.csv").write_text("edited by hand\n")
    edited = _export(tmp_path, out)
    assert edited.exit_code == 1 and "evidence.csv" in edited.output
    assert (out / "evidence.csv").read_text() == "edited by hand\n"
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".pilotlab-staging")]
    assert not leftovers


@pytest.mark.parametrize("command", ["run", "power", "export", "init", "portfolio"])
def test_an_output_path_that_is_a_file_is_a_clear_error(tmp_path: Path, command: str) -> None:
    pilot = _pilot(tmp_path)
    user_file = tmp_path / "taken"
    user_file.write_text("mine\n")
    target = user_file / "sub" if command == "portfolio" else user_file
    if command == "portfolio":  # a portfolio needs a run's evidence.json to read
        ran = CliRunner().invoke(cli, ["run", str(pilot), "-o", str(tmp_path / "out")])
        assert ran.exit_code == 0, ran.output
    args = {
        "run": ["run", str(pilot), "-o", str(target)],
        "power": ["power", str(pilot), "-o", str(target)],
        "export": ["export", "-o", str(target), "--registry", _registry(tmp_path / "r.db")],
        "init": ["init", str(target)],
        "portfolio": ["portfolio", str(tmp_path / "out"), "-o", str(target / "portfolio.html")],
    }[command]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    assert "is a file, not a folder" in result.output and "taken" in result.output
    assert user_file.read_text() == "mine\n"


def test_portfolio_output_that_is_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pages").mkdir()
    result = CliRunner().invoke(cli, ["portfolio", str(tmp_path), "-o", str(tmp_path / "pages")])
    assert result.exit_code == 1, result.output
    assert "is a folder; give the file name of the portfolio page" in result.output
