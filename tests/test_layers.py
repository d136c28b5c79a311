"""The import layers of pilotlab hold: the import-linter contracts in pyproject.toml, and no
import cycle between pilotlab's top-level packages and modules.

A change that makes a lower layer import a higher one (an estimator importing a diagnostic, the
report importing the engine...) fails here, with the offending import chain in the message.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import grimp
import pytest

import pilotlab

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
CONTRACTS = [
    c["id"] for c in tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
]


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        "pilotlab", include_external_packages=False, exclude_type_checking_imports=True
    )


def _report(contract: str) -> tuple[bool, str]:
    """Check one contract of pyproject.toml with ``lint-imports``: (kept, its report)."""
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


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = itertools.count()
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, Any]] = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = next(counter)
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = next(counter)
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_circle() -> None:
    """The check below can fail: a circle of three and a self-contained pair are found."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}}
    assert sorted(_cycles(edges)) == [["a", "b", "c"], ["e", "f"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_top_level_packages() -> None:
    graph = _graph()
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = _top(module), _top(imported)
            if a != b and "pilotlab" not in (a, b):
                edges.setdefault(a, set()).add(b)
                edges.setdefault(b, set())
    cycles = _cycles(edges)
    if cycles:
        lines = []
        for comp in cycles:
            for a, b in itertools.permutations(comp, 2):
                if b in edges[a]:
                    chain = graph.find_shortest_chain(
                        importer=f"pilotlab.{a}", imported=f"pilotlab.{b}", as_packages=True
                    )
                    lines.append(f"  {a} -> {b}: {' -> '.join(chain or ())}")
        pytest.fail("import cycles between pilotlab's packages:\n" + "\n".join(lines))
