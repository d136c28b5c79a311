"""Registration dates against the first treated period: a pilot file whose stated start falls in
another period warns (PilotlabWarning, in the report notes and on the command line's stderr), and
the example pilots and the README's table of them agree with their own files and data."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pilotlab.cli import cli
from pilotlab.data import load_panel
from pilotlab.data.dates import registration_date_notes
from pilotlab.data.load import first_treated_label
from pilotlab.engine import evaluate
from pilotlab.exceptions import PilotlabWarning, RegistrationDateWarning
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import load_pilot, parse_pilot
from tests.support import ROOT, pilot_dict, write_pilot

QUARTERS = tuple(f"{y}Q{q}" for y in range(2022, 2026) for q in range(1, 5))
MONTHS = tuple(f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13))


def _spec(**registration: str):
    return parse_pilot(pilot_dict(registration=registration))


@pytest.mark.parametrize(
    ("registration", "labels", "first", "expected"),
    [
        ({"start_date": "2024-04-01"}, QUARTERS, "2024Q3", "2024-04-01 falls in 2024Q2"),
        ({"start_date": "2024-07-15"}, QUARTERS, "2024Q3", None),
        ({"start_date": "2024-09-30"}, QUARTERS, "2024Q3", None),
        ({"start_date": "2024-10-01"}, QUARTERS, "2024Q3", "falls in 2024Q4"),
        # the actual start is checked when given: a delayed start is not a contradiction
        (
            {"start_date": "2024-04-01", "actual_start_date": "2024-07-01"},
            QUARTERS,
            "2024Q3",
            None,
        ),
        (
            {"start_date": "2024-07-01", "actual_start_date": "2024-04-01"},
            QUARTERS,
            "2024Q3",
            "registration.actual_start_date: 2024-04-01 falls in 2024Q2",
        ),
        ({"start_date": "2024-03-31"}, MONTHS, "2024-04", "falls in 2024-03"),
        ({"start_date": "2024-04-30"}, MONTHS, "2024-04", None),
        ({"start_date": "2022Q3"}, QUARTERS, "2022Q3", None),
        ({"start_date": "2021-06-01"}, ("2019", "2020", "2021", "2022"), "2022", "falls in 2021"),
        ({"start_date": "2021-06-01"}, ("1", "2", "3", "4"), "3", None),  # waves: no calendar
        (
            {"start_date": "2024-01-10"},
            ("2024-01-01", "2024-01-08", "2024-01-15"),
            "2024-01-08",
            None,
        ),
        (
            {"start_date": "2024-01-16"},
            ("2024-01-01", "2024-01-08", "2024-01-15"),
            "2024-01-08",
            "falls in 2024-01-15",
        ),
        ({}, QUARTERS, "2024Q3", None),
        ({"start_date": "2024-04-01"}, QUARTERS, None, None),  # planned: nothing treated yet
    ],
)
def test_registration_date_against_first_treated_period(
    registration, labels, first, expected
) -> None:
    notes = registration_date_notes(_spec(**registration), labels, first)
    if expected is None:
        assert notes == []
    else:
        [note] = notes
        assert expected in note and f"first treated period in the data is {first}" in note
        assert "treatment.start" in note and "correct the date" in note


def _mismatched(tmp_path: Path) -> Path:
    sim = make_pilot_panel(40, 12, 5, 6, effect=-0.5, seed=3, freq="quarter", first_period="2023Q1")
    assert sim.start == "2024Q3"
    spec = pilot_dict(
        treatment={"units": list(sim.treated_units), "start": sim.start},
        registration={"start_date": "2024-04-01"},
        design={"estimator": "twfe", "inference": {"method": "cluster"}},
    )
    return write_pilot(tmp_path, spec, sim.data)


def test_mismatch_warns_and_reaches_the_report_and_stderr(tmp_path: Path, runner) -> None:
    path = _mismatched(tmp_path)
    spec = load_pilot(path)
    with pytest.warns(RegistrationDateWarning, match="2024-04-01 falls in 2024Q2"):
        panel = load_panel(spec)
    assert issubclass(RegistrationDateWarning, PilotlabWarning)
    assert first_treated_label(panel) == "2024Q3"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = evaluate(spec)
    assert any(
        w.code == "registration-date" and "2024-04-01 falls in 2024Q2" in w.message
        for w in ev.warnings
    )

    res = runner.invoke(cli, ["validate", str(path)])
    assert res.exit_code == 0 and "registration.start_date: 2024-04-01" in res.stderr
    assert "[registration-date]" in res.stderr  # the same code as in the evidence record
    res = runner.invoke(cli, ["run", str(path), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "Warning: registration.start_date: 2024-04-01 falls in 2024Q2" in res.stderr
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "2024-04-01 falls in 2024Q2" in html


def test_matching_dates_do_not_warn(tmp_path: Path) -> None:
    path = _mismatched(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["registration"]["start_date"] = "2024-07-01"
    path.write_text(yaml.safe_dump(doc))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegistrationDateWarning)
        load_panel(load_pilot(path))


# ------------------------------------------------------------------ the examples agree with themselves

EXAMPLES = sorted(p.parent.name for p in (ROOT / "pilots").glob("*/pilot.yaml"))


def _readme_row(folder: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    [row] = [line for line in text.splitlines() if line.startswith(f"| `pilots/{folder}/`")]
    return row


@pytest.mark.parametrize("folder", EXAMPLES)
def test_example_files_agree_with_themselves(folder: str) -> None:
    path = ROOT / "pilots" / folder / "pilot.yaml"
    spec = load_pilot(path)
    planned = spec.treatment.form == "planned" and spec.assignment is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotlabWarning)
        warnings.simplefilter("error", RegistrationDateWarning)
        panel = load_panel(spec, history=planned)
    row = _readme_row(folder)
    labels = panel.period_labels
    assert f"{labels[0]}-{labels[-1]}" in row or f"{labels[0]} to {labels[-1]}" in row, row
    if planned:
        assert f"{spec.design.power.treated} of {panel.n_units}" in row, row
        return
    assert f"{panel.n_treated_units} of {panel.n_units}" in row, row
    starts = sorted({labels[int(c)] for c in panel.cohorts})
    assert all(s in row for s in starts), (row, starts)
    if len(starts) > 1:
        assert f"{_WORDS[len(starts)]} waves" in row
    truth = json.loads((path.parent / "data" / "truth.json").read_text())
    if spec.assignment is not None:  # randomised: the data were made from the drawn allocation
        assert panel.allocation is not None
        assert truth["allocation_sha256"] == panel.allocation.sha256
        assert truth["waves"] == dict(
            zip(
                panel.allocation.units,
                (panel.allocation.starts[int(c)] for c in panel.allocation.codes),
                strict=True,
            )
        )
    elif "adoption" in truth:
        assert truth["adoption"] == dict(spec.treatment.adoption)
    else:
        assert (truth["treated"], truth["start"]) == (
            list(spec.treatment.units),
            spec.treatment.start,
        )
    # the summary's words for the start agree with the first treated period
    month = {"Q1": "January", "Q2": "April", "Q3": "July", "Q4": "October"}
    names = "January|February|March|April|May|June|July|August|September|October|November|December"
    for m in re.finditer(rf"from ({names}) (\d{{4}})", spec.summary or ""):
        first = starts[0]
        if re.fullmatch(r"\d{4}Q[1-4]", first):
            assert (m.group(1), m.group(2)) == (month[first[4:]], first[:4]), spec.summary
        else:
            when = pd.Timestamp(f"{m.group(1)} 1, {m.group(2)}").strftime("%Y-%m")
            assert first.startswith(when), spec.summary
    data = pd.read_csv(path.parent / spec.data.path)
    assert data[spec.data.unit].nunique() == panel.n_units


_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
