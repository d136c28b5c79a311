"""Every user mistake: one clear message naming the key or column, exit code 1, nothing written.

A table-driven corpus: each case edits a valid pilot (file and data) into a broken one and states
what the message must say.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pilotlab.simulate import make_pilot_panel

from conftest import pilot_dict, write_pilot


def base_case() -> tuple[dict[str, Any], pd.DataFrame]:
    sim = make_pilot_panel(20, 8, 3, 5, seed=3)
    spec = pilot_dict(treatment={"units": list(sim.treated_units), "start": sim.start})
    return spec, sim.data


@dataclass
class Case:
    name: str
    expected: list[str]
    edit_spec: Callable[[dict], None] = lambda s: None
    edit_data: Callable[[pd.DataFrame], pd.DataFrame | str | None] = lambda d: d
    raw_yaml: str | None = None
    extra: dict = field(default_factory=dict)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def edit(spec: dict) -> None:
        node = spec
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return edit


_DELETE = object()


def _dup_row(d: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([d, d.iloc[[5]]], ignore_index=True)


def _bad_number(d: pd.DataFrame) -> pd.DataFrame:
    d = d.astype({"outcome": object})
    d.loc[3, "outcome"] = "n/a*"
    return d


def _bad_period(d: pd.DataFrame) -> pd.DataFrame:
    d = d.copy()
    d.loc[4, "period"] = "2019-Q5"
    return d


CASES = [
    Case("yaml syntax", ["YAML syntax error at line"], raw_yaml="id: x\ntitle: 'open\n  data: [\n"),
    Case(
        "unknown key",
        ["outcomes[0].colour: unknown key"],
        _set("outcomes", [{"column": "outcome", "colour": "red"}]),
    ),
    Case("missing required key", ["title: required key is missing"], _set("title", _DELETE)),
    Case(
        "invalid choice",
        ["design.estimator: found 'ols'", "allowed:"],
        _set("design", {"estimator": "ols"}),
    ),
    Case(
        "two treatment forms",
        ["exactly one treatment form"],
        lambda s: s["treatment"].update(adoption={"A0001": "2020Q1"}),
    ),
    Case(
        "data file missing",
        ["data.path", "does not exist"],
        _set("data.path", "nowhere.csv"),
        edit_data=lambda d: None,
    ),
    Case("empty data file", ["is empty"], edit_data=lambda d: ""),
    Case(
        "header only",
        ["has a header but no rows"],
        edit_data=lambda d: "area_code,period,outcome\n",
    ),
    Case(
        "unsupported format",
        ["allowed: .csv or .parquet"],
        _set("data.path", "data.xlsx"),
        edit_data=lambda d: "x",
    ),
    Case(
        "unit column missing",
        ["data.unit: column 'area'", "Did you mean 'area_code'?"],
        _set("data.unit", "area"),
    ),
    Case(
        "time column missing",
        ["data.time: column 'quarter' is not in"],
        _set("data.time", "quarter"),
    ),
    Case(
        "outcome column missing",
        ["outcomes[0].column: column 'outcomes'"],
        _set("outcomes", [{"column": "outcomes"}]),
    ),
    Case(
        "non-numeric outcome", ["column 'outcome' must be numeric", "'n/a*'"], edit_data=_bad_number
    ),
    Case(
        "malformed period",
        ["data.time: column 'period' has 1 malformed period", "2019-Q5"],
        edit_data=_bad_period,
    ),
    Case(
        "duplicate unit-period",
        ["rows share a unit and period", "repeated_cross_section"],
        edit_data=_dup_row,
    ),
    Case(
        "treated unit absent",
        ["treatment.units: 1 unit(s) not found", "ZZ999"],
        lambda s: s["treatment"]["units"].append("ZZ999"),
    ),
    Case(
        "start after data",
        ["treatment.start: 2031Q1 is after the last period"],
        _set("treatment.start", "2031Q1"),
    ),
    Case(
        "start malformed",
        ["treatment.start: '2020-13' is not a period in the data's format (quarter"],
        _set("treatment.start", "2020-13"),
    ),
    Case("no pre-period", ["no pre-period"], _set("treatment.start", "2018Q1")),
    Case(
        "no comparison units",
        ["no comparison units remain"],
        lambda s: s["treatment"].update(comparison=[]),
    ),
    Case(
        "comparison unit also treated",
        ["listed as comparison units but are also treated"],
        lambda s: s["treatment"].update(comparison=s["treatment"]["units"][:1]),
    ),
    Case(
        "log of non-positive",
        ["log needs positive values"],
        _set("outcomes", [{"column": "outcome", "transform": "log"}]),
        edit_data=lambda d: d.assign(outcome=d["outcome"] - 100),
    ),
    Case(
        "estimator not available for layout",
        ["design.inference.method: 'placebo' is not available"],
        _set("design", {"estimator": "twfe", "inference": {"method": "placebo"}}),
    ),
]


def _materialise(tmp_path: Path, case: Case) -> Path:
    spec, data = base_case()
    case.edit_spec(spec)
    folder = tmp_path / "pilot"
    if case.raw_yaml is not None:
        folder.mkdir()
        (folder / "pilot.yaml").write_text(case.raw_yaml)
        return folder / "pilot.yaml"
    return write_pilot(folder, spec, case.edit_data(data))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_input_gives_one_clear_message(
    tmp_path: Path, runner, case: Case, command: str
) -> None:
    from pilotlab.cli import cli

    pilot = _materialise(tmp_path, case)
    out = tmp_path / "out"
    args = [command, str(pilot)] + (["-o", str(out)] if command == "run" else [])
    result = runner.invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    for text in case.expected:
        assert text in result.output, f"{text!r} not in {result.output!r}"
    assert not out.exists(), "no output may be written on error"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".pilotlab-")]
    assert not leftovers


def test_bad_input_as_a_subprocess(tmp_path: Path) -> None:
    """The installed command line: exit code 1 and a message on stderr, no traceback."""
    case = next(c for c in CASES if c.name == "treated unit absent")
    pilot = _materialise(tmp_path, case)
    proc = subprocess.run(
        [sys.executable, "-m", "pilotlab", "run", str(pilot), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "ZZ999" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()
