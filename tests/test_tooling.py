"""The checks a change must pass run with the tests: mypy --strict on src/ (so renaming a result
field fails wherever it is read) and ruff's lint and format check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.heavy
def test_mypy_strict_passes_on_src() -> None:
    done = _run("mypy", "--no-incremental")  # files and strictness from pyproject.toml
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("command", [("check",), ("format", "--check")], ids=["lint", "format"])
def test_ruff_passes(command: tuple[str, ...]) -> None:
    done = _run("ruff", *command, "src", "tests", "benchmarks")
    assert done.returncode == 0, done.stdout + done.stderr
