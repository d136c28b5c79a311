"""pilotlab.power computes only: it imports nothing above it and writes no file."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.support import ROOT

POWER = ROOT / "src" / "pilotlab" / "power"
ABOVE = (
    "pilotlab.engine",
    "pilotlab.report",
    "pilotlab.cli",
    "pilotlab.outputs",
    "pilotlab.registry",
)
WRITES = {"write_text", "write_bytes", "to_csv", "to_json", "mkdir", "open", "dump", "savez"}


def _imports(tree: ast.AST) -> list[str]:
    out = []
    for node in ast.walk(tree):  # also the imports inside functions and TYPE_CHECKING blocks
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
    return out


@pytest.mark.parametrize("path", sorted(POWER.glob("*.py")), ids=lambda p: p.name)
def test_power_modules_import_nothing_above_and_write_nothing(path) -> None:  # type: ignore[no-untyped-def]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    above = [m for m in _imports(tree) if m.startswith(ABOVE)]
    assert above == [], f"{path.name} imports {above}"
    calls = {
        n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
    }
    assert not calls & WRITES, f"{path.name} calls {calls & WRITES}"


def test_the_power_page_reads_the_power_results_not_the_engine() -> None:
    tree = ast.parse((ROOT / "src" / "pilotlab" / "report" / "power.py").read_text("utf-8"))
    assert not [m for m in _imports(tree) if m.startswith(("pilotlab.engine", "pilotlab.cli"))]


def test_importing_power_loads_neither_the_engine_nor_the_report() -> None:
    code = (
        "import sys, pilotlab.power; "
        "print(sorted(m for m in sys.modules if m.startswith(('pilotlab.engine', "
        "'pilotlab.report', 'pilotlab.cli', 'pilotlab.outputs'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
