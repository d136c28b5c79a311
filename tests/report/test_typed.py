"""The report is typed against the results model, so renaming a result field fails mypy there.

mypy ``--strict`` over ``src/pilotlab/report`` is what catches a renamed field; this fast test
keeps the report from slipping back to ``Any`` (which mypy would accept silently) for the objects
it reads: no parameter annotated ``Any`` except the few that are genuinely any value.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pilotlab.report

REPORT = Path(pilotlab.report.__file__).resolve().parent

#: (module, function, parameter) that take any value on purpose: number formatting accepts
#: anything number-like and says "n/a" otherwise; templates take any context.
ANY_ALLOWED = {
    ("format.py", "is_number", "x"),
    ("format.py", "fmt_sig", "x"),
    ("format.py", "fmt_num", "x"),
    ("format.py", "fmt_signed", "x"),
    ("format.py", "fmt_int", "x"),
    ("format.py", "fmt_pct", "x"),
    ("format.py", "fmt_p", "x"),
    ("format.py", "fmt_ci", "lo"),
    ("format.py", "fmt_ci", "hi"),
    ("text.py", "as_text", "value"),
    ("build.py", "_plan_value", "value"),
    ("render.py", "render_html", "context"),
}


def _any_parameters(path: Path) -> set[tuple[str, str, str]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        a = node.args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
        params += [p for p in (a.vararg, a.kwarg) if p is not None]
        for p in params:
            if p.annotation is not None and "Any" in ast.unparse(p.annotation):
                found.add((path.name, node.name, p.arg))
    return found


def test_report_functions_take_result_types_not_any() -> None:
    found: set[tuple[str, str, str]] = set()
    for path in sorted(REPORT.glob("*.py")):
        if path.name in {"portfolio.py", "power.py", "allocation.py"}:
            continue  # these read evidence / power / allocation records (JSON), not results
        found |= _any_parameters(path)
    assert found - ANY_ALLOWED == set()
