"""The import layers of pilotlab hold: every import-linter contract in pyproject.toml (the
layers, what the report and registry may read, and no import cycle between sibling packages).

A change that makes a lower layer import a higher one (an estimator importing a diagnostic, the
report importing the engine...) fails here, with the offending import chain in the message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import pilotlab

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
CONFIG = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
CONTRACTS = [c["id"] for c in CONFIG["contracts"]]


def _report(contract: str) -> tuple[bool, str]:
    """Check one contract with ``lint-imports``: (kept, its report)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    cmd = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]
    args = [str(PYPROJECT), "--contract", contract, "--no-cache", "--no-logo"]
    done = subprocess.run(
        [*cmd, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert "Could not" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done.returncode == 0, done.stdout + done.stderr


def test_the_source_under_test_is_the_one_analysed() -> None:
    """The graph is built from the package imported here (src/ first on the path)."""
    assert Path(pilotlab.__file__).resolve().is_relative_to(ROOT / "src")


@pytest.mark.parametrize("contract", CONTRACTS)
def test_import_contract_is_kept(contract: str) -> None:
    kept, broken = _report(contract)
    assert kept, f"import contract '{contract}' (pyproject.toml) is broken:\n{broken}"
