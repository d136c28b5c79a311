"""The Python API as a notebook user meets it: a short ``repr`` and a compact HTML table for an
Evaluation, power at the top level, and ``dir(pilotlab)`` showing only the public API."""

from __future__ import annotations

import dataclasses
import importlib
import math
import subprocess
import sys
from html.parser import HTMLParser
from types import ModuleType

import pytest

import pilotlab
from pilotlab.results import PlanDifference, PlanInfo
from tests.support import ROOT
from tests.support import report as ex

PUBLIC = {
    "DataError",
    "EffectResult",
    "EstimationError",
    "Evaluation",
    "PilotRun",
    "PilotSpec",
    "PilotlabError",
    "PilotlabWarning",
    "PowerResult",
    "Registry",
    "RegistryError",
    "SpecError",
    "__version__",
    "evaluate",
    "evidence_json",
    "load_pilot",
    "randomise_pilot",
    "render_report",
    "run_pilot",
    "run_power",
    "write_power_report",
}


@pytest.fixture(scope="module")
def hostile():
    return ex.common(hostile=True)


def test_dir_shows_only_the_public_api_and_every_name_resolves() -> None:
    import pilotlab.cli
    import pilotlab.engine

    assert pilotlab.__all__ == sorted(pilotlab.__all__)
    assert set(pilotlab.__all__) == PUBLIC
    assert dir(pilotlab) == sorted(PUBLIC)
    for name in pilotlab.__all__:
        value = getattr(pilotlab, name)
        assert not isinstance(value, ModuleType), name
    assert pilotlab.run_power.__module__ == "pilotlab.engine.plan"
    assert pilotlab.run_pilot.__module__ == "pilotlab.engine.run"
    assert pilotlab.PowerResult.__name__ == "PowerResult"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = pilotlab.nope  # type: ignore[attr-defined]


def test_import_stays_lazy() -> None:
    code = (
        "import sys, pilotlab; dir(pilotlab); "
        "print(any(m in sys.modules for m in ('numpy', 'pandas', 'pilotlab.power', 'pilotlab.engine')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_power_from_the_top_level(tmp_path) -> None:
    spec = pilotlab.load_pilot(ROOT / "pilots" / "attendance-plan" / "pilot.yaml")
    result = pilotlab.run_power(spec, simulations=20, n_jobs=1)
    assert isinstance(result, pilotlab.PowerResult)
    assert result.n_treated == spec.design.power.treated
    html, js = pilotlab.write_power_report(result, tmp_path)
    assert html.exists() and js.exists()


def test_repr_is_a_few_short_lines(hostile) -> None:
    ev = ex.three_outcomes()
    text = repr(ev)
    lines = text.splitlines()
    assert len(lines) == 1 + len(ev.outcomes)
    assert all(len(line) < 200 for line in lines), text
    assert lines[0].startswith("<Evaluation of ") and ev.estimator.name in lines[0]
    o = ev.outcomes[0]
    assert o.label in lines[1] and f"{o.result.estimate:.4g}" in lines[1]
    assert "DataFrame" not in text and "MappingProxy" not in text
    assert len(repr(hostile)) < 600


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.cells: list[str] = []
        self._in = False

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.tags.append(tag)
        self._in = tag in ("td", "th")
        if self._in:
            self.cells.append("")

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        self._in = False

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if self._in:
            self.cells[-1] += data


def test_repr_html_is_a_compact_escaped_table(hostile) -> None:
    html = hostile._repr_html_()
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    p = _Cells()
    p.feed(html)
    assert p.tags.count("table") == 1 and "script" not in p.tags and "img" not in p.tags
    assert p.cells[:5] == ["Outcome", "Estimate", "Interval", "p-value", "Units"]
    assert len(p.cells) == 5 * (1 + len(hostile.outcomes))
    assert ex.SCRIPT in p.cells[5]  # the label, shown as text
    assert len(html) < 3000


def test_display_says_when_the_plan_deviates_or_the_interval_is_unbounded() -> None:
    ev = ex.common()
    o = ev.outcomes[0]
    wide = dataclasses.replace(o.result, ci_lower=-math.inf, ci_upper=math.inf)
    plan = PlanInfo(
        sha256=ev.plan.sha256,
        registered=True,
        version=1,
        matches_registered=False,
        unregistered_deviations=(PlanDifference("design.alpha", 0.05, 0.1),),
    )
    ev = dataclasses.replace(ev, plan=plan, outcomes=(dataclasses.replace(o, result=wide),))
    text = repr(ev)
    assert "plan differs from registered version 1 (1 unregistered deviation)" in text
    assert "CI -inf to inf" in text
    assert "1 unregistered deviation" in ev._repr_html_()


@pytest.mark.parametrize(
    "package", ["pilotlab.engine", "pilotlab.power", "pilotlab.registry", "pilotlab.results"]
)
def test_lazy_package_exports_each_name_from_the_module_it_names(package: str) -> None:
    """``_HOME`` (where each name is imported from on first use) covers ``__all__`` exactly,
    and each name is the object its module defines."""
    pkg = importlib.import_module(package)
    assert set(pkg._HOME) == set(pkg.__all__)
    for name, home in pkg._HOME.items():
        assert getattr(pkg, name) is getattr(importlib.import_module(f"{package}.{home}"), name)
