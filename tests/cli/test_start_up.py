"""What the commands that only read a pilot or the registry import: not the heavy libraries
they do not use (each in a fresh interpreter, through the command line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "pilots" / "employment-support" / "pilot.yaml"


def _modules_after(commands: list[list[str]], wanted: tuple[str, ...]) -> list[str]:
    """Run ``commands`` through the CLI in one fresh interpreter; which of ``wanted`` it imported."""
    code = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from pilotlab.cli import cli\n"
        f"for args in {commands!r}:\n"
        "    r = CliRunner().invoke(cli, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        f"print(json.dumps(sorted(m for m in {wanted!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    names: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return names


def test_validate_fits_each_outcome_without_scipy_stats() -> None:
    assert _modules_after([["validate", str(EXAMPLE)]], ("scipy.stats",)) == []


def test_register_and_list_import_neither_numpy_nor_pandas(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    commands = [["register", str(EXAMPLE), "--registry", db], ["list", "--registry", db]]
    assert _modules_after(commands, ("numpy", "pandas", "scipy")) == []


def test_run_with_every_check_imports_neither_scipy_stats_nor_power_planning(tmp_path) -> None:
    """The pre-trend tests, their power, honest_did and the evidence rating take their
    distributions from pilotlab.distributions and their quasi-random points from
    pilotlab.diagnostics.sobol (fewer replications than the example, the same stages)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    pilot = tmp_path / "pilot.yaml"
    pilot.write_text(
        text.replace(
            "path: data/panel.csv", f"path: {EXAMPLE.parent / 'data' / 'panel.csv'}"
        ).replace("replications: 999", "replications: 99"),
        encoding="utf-8",
    )
    assert "honest_did" in text and "replications: 99\n" in pilot.read_text(encoding="utf-8")
    commands = [["run", str(pilot), "--quiet", "--output", str(tmp_path / "out")]]
    wanted = ("scipy.stats", "pilotlab.power.simulate", "pilotlab.power.curve")
    assert _modules_after(commands, wanted) == []
