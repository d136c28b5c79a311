"""The example third-party estimator package (tests/support/plugin) and ways to make it available.

* :func:`install` installs it for real with pip into a folder (its entry point is then found by
  any Python started with that folder on ``PYTHONPATH``);
* :func:`example_entry` imports it in-process (without installing) and :func:`registered`
  registers an entry in the catalogue for one test only.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pilotlab import catalogue
from pilotlab.catalogue import EstimatorEntry
from tests.support import ROOT

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"
MODULE = "pilotlab_example_estimator"


def install(target: Path) -> Path:
    """``pip install`` the example package into ``target`` (offline; no build tool needed)."""
    proc = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
            "--no-index", "--disable-pip-version-check", "--quiet", "--target", str(target),
            str(PLUGIN_DIR),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / MODULE / "__init__.py").is_file()
    return target


def subprocess_env(*site: Path) -> dict[str, str]:
    """Environment for ``python -m pilotlab`` with this source tree and ``site`` folders first."""
    paths = [str(ROOT / "src"), *(str(s) for s in site)]
    old = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*paths, *([old] if old else [])]),
        "PILOTLAB_PROGRESS": "0",
    }


def example_module() -> ModuleType:
    """The example package's module, imported from the source folder (not installed)."""
    if str(PLUGIN_DIR) not in sys.path:
        sys.path.append(str(PLUGIN_DIR))
    return importlib.import_module(MODULE)


def example_entry() -> EstimatorEntry:
    """The example package's :class:`EstimatorEntry`."""
    entry = example_module().ENTRY
    assert isinstance(entry, EstimatorEntry)
    return entry


def registered(monkeypatch: pytest.MonkeyPatch, entry: EstimatorEntry) -> EstimatorEntry:
    """Register ``entry`` for the current test only (the catalogue is restored afterwards)."""
    catalogue.entries()  # load the entry points first, so that restoring keeps them
    monkeypatch.setattr(catalogue, "_REGISTERED", dict(catalogue._REGISTERED))
    return catalogue.register(entry)
