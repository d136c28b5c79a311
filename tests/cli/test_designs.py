"""The switching, stacked and triple-difference designs from the command line: a run that
works, and each bad input refused with one message naming the key, exit 1, nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from pilotlab.cli import cli
from tests.support import pilot_dict, write_pilot
from tests.support.cell_designs import ddd_frame, switching_frame


def _switching(tmp_path: Path, **design: Any) -> Path:
    frame = switching_frame(1, n_units=60)
    spec = pilot_dict(
        data={"path": "data.csv", "unit": "area", "time": "year"},
        treatment={"indicator": "treated"},
        design={"inference": {"method": "cluster"}, **design},
    )
    return write_pilot(tmp_path / "pilot", spec, frame)


def _ddd(tmp_path: Path, frame: pd.DataFrame | None = None, **design: Any) -> Path:
    data, adoption = ddd_frame(0)
    spec = pilot_dict(
        data={"path": "data.csv", "unit": "area", "time": "year", "group": "elig"},
        treatment={"adoption": adoption},
        design={"inference": {"method": "cluster"}, **design},
    )
    return write_pilot(tmp_path / "pilot", spec, data if frame is None else frame)


def _run(pilot: Path, out: Path) -> Any:
    return CliRunner().invoke(cli, ["run", str(pilot), "-o", str(out), "--quiet"])


def _refused(pilot: Path, out: Path, *expected: str) -> None:
    res = _run(pilot, out)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    for text in expected:
        assert text in res.output, res.output
    assert not out.exists()


def test_auto_picks_switching_and_says_why(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _run(_switching(tmp_path), out)
    assert res.exit_code == 0, res.output
    ev = json.loads((out / "evidence.json").read_text())
    assert ev["results"][0]["estimator"] == "switching"
    _valid(ev)
    html = (out / "report.html").read_text()
    assert "switching treatment on and off" in html
    assert "Treatment stops in some areas" in html  # why auto chose it


def _valid(ev: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(
        (Path(__file__).parents[2] / "src/pilotlab/evidence.schema.json").read_text()
    )
    jsonschema.validate(ev, schema)


@pytest.mark.parametrize("estimator", ["stacked", "triple_difference"])
def test_the_cell_designs_run(tmp_path: Path, estimator: str) -> None:
    out = tmp_path / "out"
    if estimator == "stacked":
        frame, adoption = ddd_frame(0)
        spec = pilot_dict(
            data={"path": "data.csv", "unit": "area", "time": "year"},
            treatment={"adoption": adoption},
            design={"estimator": "stacked", "inference": {"method": "cluster"}},
        )
        pilot = write_pilot(tmp_path / "pilot", spec, frame[frame.elig == 1].drop(columns="elig"))
    else:
        pilot = _ddd(tmp_path)
    res = _run(pilot, out)
    assert res.exit_code == 0, res.output
    ev = json.loads((out / "evidence.json").read_text())
    assert ev["results"][0]["estimator"] == estimator
    _valid(ev)
    assert ev["results"][0]["staggered"]["dynamic"]


def test_switching_treatment_given_to_an_absorbing_estimator(tmp_path: Path) -> None:
    _refused(
        _switching(tmp_path, estimator="callaway_santanna"),
        tmp_path / "out",
        "design.estimator: callaway_santanna assumes a unit stays treated",
        "use switching",
    )


def test_an_end_before_a_start(tmp_path: Path) -> None:
    frame = switching_frame(1, n_units=40)
    spec = pilot_dict(
        data={"path": "data.csv", "unit": "area", "time": "year"},
        treatment={"units": ["U001", "U002"], "start": "2014", "end": "2012"},
    )
    _refused(
        write_pilot(tmp_path / "pilot", spec, frame),
        tmp_path / "out",
        "treatment.end: 2012 is before the start (2014)",
    )


def test_a_group_column_with_one_value(tmp_path: Path) -> None:
    data, _ = ddd_frame(0)
    _refused(
        _ddd(tmp_path, data.assign(elig=0)),
        tmp_path / "out",
        "data.group: column 'elig' has one value only",
    )


def test_a_group_column_with_a_cell_that_is_not_0_or_1(tmp_path: Path) -> None:
    data, _ = ddd_frame(0)
    data = data.astype({"elig": object})
    data.loc[3, "elig"] = "maybe"
    _refused(
        _ddd(tmp_path, data),
        tmp_path / "out",
        "data.group: column 'elig' has 1 cell(s) that are not 0 or 1 (e.g. 'maybe' in row 5 of "
        "the file); mark each row 1 if its people are eligible",
    )


def test_an_indicator_with_an_empty_cell(tmp_path: Path) -> None:
    frame = switching_frame(1, n_units=60).astype({"treated": object})
    frame.loc[0, "treated"] = None
    spec = pilot_dict(
        data={"path": "data.csv", "unit": "area", "time": "year"},
        treatment={"indicator": "treated"},
        design={"inference": {"method": "cluster"}},
    )
    _refused(
        write_pilot(tmp_path / "pilot", spec, frame),
        tmp_path / "out",
        "treatment.indicator: column 'treated' has 1 cell(s) that are not 0 or 1 (e.g. an empty "
        "cell in row 2); mark each row 1 when the unit is treated",
    )


def test_group_data_given_to_another_estimator(tmp_path: Path) -> None:
    _refused(
        _ddd(tmp_path, estimator="event_study"),
        tmp_path / "out",
        "design.estimator: event_study does not compare eligible and ineligible groups",
    )


def test_a_stacked_window_no_cohort_reaches(tmp_path: Path) -> None:
    frame, adoption = ddd_frame(0)
    spec = pilot_dict(
        data={"path": "data.csv", "unit": "area", "time": "year"},
        treatment={"adoption": adoption},
        design={
            "estimator": "stacked",
            "window": {"pre": 8, "post": 8},
            "options": {"trim": True},
            "inference": {"method": "cluster"},
        },
    )
    pilot = write_pilot(tmp_path / "pilot", spec, frame[frame.elig == 1].drop(columns="elig"))
    _refused(pilot, tmp_path / "out", "design.window")
