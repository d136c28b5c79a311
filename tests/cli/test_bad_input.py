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
from tests.support import pilot_dict, write_pilot


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
    edit_text: Callable[[str], str | bytes] | None = None  # edits the written pilot.yaml
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


def _treated(d: pd.DataFrame) -> pd.Series:
    return d["area_code"].isin(TREATED)


def _with(column: str, rows: Callable[[pd.DataFrame], Any], value: Any) -> Callable:
    def edit(d: pd.DataFrame) -> pd.DataFrame:
        d = d.astype({column: float}) if column in ("outcome", "population") else d.copy()
        d.loc[rows(d), column] = value
        return d

    return edit


def _integer_periods(d: pd.DataFrame) -> pd.DataFrame:
    d = d.assign(period=d["period"].str[:4].astype(int) * 10 + d["period"].str[-1].astype(int))
    d = d.astype({"period": object})
    d.loc[0, "period"] = "99999999999999999999"
    return d


_WEIGHTED = _set("data.weight", "population")
TREATED, START = base_case()[0]["treatment"]["units"], base_case()[0]["treatment"]["start"]


def _weighted_with(rows: Callable[[pd.DataFrame], Any], value: Any) -> dict[str, Any]:
    return {"edit_spec": _WEIGHTED, "edit_data": _with("population", rows, value)}


def _both(*edits: Callable[[dict], None]) -> Callable[[dict], None]:
    def edit(spec: dict) -> None:
        for e in edits:
            e(spec)

    return edit


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
    # ---- ids, numbers and YAML that used to go silently wrong or crash
    Case(
        "unit id YAML reads as a number",
        ["treatment.exclude[0] (line", "0x1F", "in quotes"],
        edit_text=lambda t: t.replace("start:", "exclude: [0x1F]\n  start:"),
    ),
    Case(
        "mde infinite",
        ["outcomes[0].mde: found inf", "finite number"],
        edit_text=lambda t: t.replace("primary: true", "primary: true\n  mde: .inf"),
    ),
    Case(
        "alpha not a number",
        ["design.alpha: found nan", "finite number"],
        edit_text=lambda t: t + "design:\n  alpha: .nan\n",
    ),
    Case(
        "anticipation huge",
        ["treatment.anticipation: found 100000000000000000000"],
        _set("treatment.anticipation", 10**20),
    ),
    Case(
        "python object tag",
        ["pilot.yaml: unsupported YAML tag at line 2", "python/object"],
        edit_text=lambda t: t.replace("title: Test pilot", "title: !!python/object:os.system x"),
    ),
    Case(
        "custom tag",
        ["pilot.yaml: unsupported YAML tag at line 2", "'!foo'"],
        edit_text=lambda t: t.replace("title: Test pilot", "title: !foo x"),
    ),
    Case(
        "binary junk",
        ["pilot.yaml: unsupported YAML tag at line 2", "binary data"],
        edit_text=lambda t: t.replace("title: Test pilot", "title: !!binary '%%%%'"),
    ),
    Case(
        "nested thousands deep",
        ["pilot.yaml: the file is nested more than 64 levels deep at line"],
        edit_text=lambda t: t + "x: " + "[" * 5000 + "]" * 5000 + "\n",
    ),
    Case(
        "not UTF-8",
        ["pilot.yaml: line 2 is not UTF-8 text (byte 0xe9)"],
        edit_text=lambda t: t.replace("Test pilot", "Caf\xe9").encode("latin-1"),
    ),
    Case("empty pilot file", ["pilot.yaml: the pilot file is empty"], edit_text=lambda t: ""),
    Case(
        "top-level list",
        ["pilot.yaml: the pilot file is a list"],
        edit_text=lambda t: "- id: x\n- title: y\n",
    ),
    # ---- values in the data
    Case(
        "infinite outcome",
        ["outcomes[0].column: column 'outcome' has 2 infinite value(s)", "row 5: unit A0000"],
        edit_data=_with("outcome", lambda d: [3, 40], float("inf")),
    ),
    Case(
        "infinite weight",
        ["data.weight: column 'population' has 1 infinite value(s)", "row 9: unit A0000"],
        **_weighted_with(lambda d: [7], float("-inf")),
    ),
    Case(
        "infinite covariate",
        ["design.covariates[0]: column 'population' has 1 infinite value(s)"],
        _set("design", {"covariates": ["population"]}),
        edit_data=_with("population", lambda d: [9], float("inf")),
    ),
    Case(
        "huge outcome",
        ["outcomes[0].column: column 'outcome' has 1 value(s) beyond"],
        edit_data=_with("outcome", lambda d: [3], 1e250),
    ),
    Case(
        "huge period number",
        ["data.time: column 'period' has 1 malformed period", "more than 15 digits"],
        _set("treatment.start", int(START[:4]) * 10 + int(START[-1])),
        edit_data=_integer_periods,
    ),
    # ---- designs validate used to accept and run could not estimate
    Case(
        "treated outcomes all missing after the start",
        [
            "outcomes[0].column: 'outcome' is missing in every period after the start for all treated"
        ],
        edit_data=_with("outcome", lambda d: _treated(d) & (d["period"] >= START), float("nan")),
    ),
    Case(
        "treated outcomes all missing before the start",
        ["outcomes[0].column: 'outcome' is missing in every period before the start for all"],
        edit_data=_with("outcome", lambda d: _treated(d) & (d["period"] < START), float("nan")),
    ),
    Case(
        "comparison outcomes all missing after the start",
        ["for all comparison units"],
        edit_data=_with("outcome", lambda d: ~_treated(d) & (d["period"] >= START), float("nan")),
    ),
    Case(
        "all weights zero",
        ["data.weight: column 'population' is zero for every row of the treated units"],
        **_weighted_with(lambda d: slice(None), 0.0),
    ),
    Case(
        "weights of treated units zero",
        ["data.weight: column 'population' is zero for every row of the treated units"],
        **_weighted_with(_treated, 0.0),
    ),
    Case(
        "weights of comparison units zero",
        ["data.weight: column 'population' is zero for every row of the comparison units"],
        **_weighted_with(lambda d: ~_treated(d), 0.0),
    ),
    Case(
        "negative weight",
        ["data.weight: column 'population' has 1 negative value(s) (row 9: unit A0000"],
        **_weighted_with(lambda d: [7], -1.0),
    ),
    Case(
        "missing weight",
        ["data.weight: column 'population' is empty in 1 row(s) (row 9: unit A0000"],
        **_weighted_with(lambda d: [7], float("nan")),
    ),
    Case(
        "anticipation beyond the pre-periods",
        ["treatment.anticipation: 5 period(s) of anticipation", "at most 4"],
        _set("treatment.anticipation", 5),
    ),
    Case(
        "cluster varies within unit",
        ["data.cluster: column 'region' takes several values within unit(s) A0000"],
        _set("data.cluster", "region"),
        edit_data=lambda d: d.assign(region=[i % 3 for i in range(len(d))]),
    ),
    Case(
        "gap in the outcome for a synthetic control",
        ["synthetic_control needs every unit observed in every period"],
        _set("design", {"estimator": "synthetic_control"}),
        edit_data=_with("outcome", lambda d: [4], float("nan")),
    ),
    Case(
        "no comparison unit left after exclude",
        ["treatment.comparison: no comparison units remain"],
        lambda s: s["treatment"].update(eligible=TREATED),
    ),
    Case(
        "imputation event window after the start that no cohort reaches",
        ["design.window.post is 5", "at most 2"],
        _set("design", {"estimator": "imputation", "window": {"pre": 2, "post": 5}}),
    ),
    Case(
        "sun_abraham event window before the start that no cohort reaches",
        ["design.window.pre is 7", "at most 5"],
        _set("design", {"estimator": "sun_abraham", "window": {"pre": 7, "post": 2}}),
    ),
    Case(
        "imputation option with an unknown value",
        ["design.options.aggregation"],
        _set("design", {"estimator": "imputation", "options": {"aggregation": "median"}}),
    ),
    Case(
        "comparison list names a treated unit",
        ["treatment.comparison: unit(s)", "also treated"],
        lambda s: s["treatment"].update(comparison=[TREATED[0], "A0000"]),
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
    path = write_pilot(folder, spec, case.edit_data(data))
    if case.edit_text is not None:
        text = case.edit_text(path.read_text(encoding="utf-8"))
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    return path


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
