"""What ``pilotlab power`` says about a stepped roll-out: one count of treated units and one MDE
in every sentence, options it cannot honour refused, the weighted refit stated."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import pilotlab.engine.plan as plan_mod
import pilotlab.power.stepped as stepped_mod
from pilotlab.cli import cli
from pilotlab.engine import run_power
from pilotlab.exceptions import SpecError
from pilotlab.power.result import PowerResult
from pilotlab.power.stepped import _fast, stepped_rejections
from pilotlab.report.power import render_power_html
from pilotlab.spec import PilotSpec, load_pilot, parse_pilot

ROOT = Path(__file__).resolve().parents[2]
PILOT = ROOT / "pilots" / "schools-stepped" / "pilot.yaml"


def _spec(data: dict[str, Any] | None = None, **design: Any) -> PilotSpec:
    raw = load_pilot(PILOT).model_dump()
    raw["data"] = {**raw["data"], "path": str(PILOT.parent / "data" / "panel.csv"), **(data or {})}
    raw["design"] = {**raw["design"], **design}
    return parse_pilot(raw)


@pytest.fixture(scope="module")
def result() -> PowerResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_power(load_pilot(PILOT), simulations=500)


def test_every_output_counts_the_units_the_roll_out_treats(result: PowerResult) -> None:
    # wave 3 starts after the 8 months the history allows: 24 of the 36 schools are treated
    assert result.n_treated == 24 and result.n_units == 36
    assert result.rollout.startswith("24 of the 36 schools start within the 8 months")
    assert "wave 3" in result.rollout and "comparison" in result.rollout
    assert result.scheme is not None and result.scheme.n_treated == result.n_treated
    assert "24 of the 36 schools" in result.scheme.sentence
    doc = result.to_dict()
    assert doc["n_treated"] == 24 and doc["rollout"] == result.rollout
    html = render_power_html(result)
    assert "With 24 treated units" in html and result.rollout in html
    assert "36 treated" not in html and "36 units drawn at random" not in html


def test_one_mde_throughout(result: PowerResult) -> None:
    assert result.scheme is not None and result.mde is not None
    assert result.scheme.mde == result.mde  # the headline and the scheme comparison agree


def test_cli_headline_is_plain_and_agrees(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["power", str(PILOT), "-o", str(tmp_path / "p"), "-q"])
    assert res.exit_code == 0, res.output
    first = res.output.splitlines()[0]
    assert "with 24 schools treated and 8 months from the first wave" in first
    assert "(the minimum detectable effect)" in first and "wrongly finds one" in first
    assert "36 treated" not in res.output
    assert "24 of the 36 schools start within the 8 months" in res.output
    doc = json.loads((tmp_path / "p" / "power.json").read_text(encoding="utf-8"))
    assert doc["n_treated"] == 24 and doc["scheme"]["n_treated"] == 24


def test_post_grid_is_simulated_for_each_roll_out_length(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_power(load_pilot(PILOT), post=[4, 8], simulations=100)
    # the headline stays the pilot's own roll-out; the grid counts the schools each length treats
    assert res.post_periods == 8 and res.n_treated == 24
    cells = {c.post_periods: c for c in res.tradeoff}
    assert cells[4].n_treated == 12 and cells[8].n_treated == 24
    assert cells[8].mde == res.mde


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--treated", "12"], "--treated"),
        (["--treated", "12,24"], "--treated"),
        (["--conditional-on-units"], "--conditional-on-units"),
    ],
)
def test_options_a_stepped_roll_out_cannot_honour_are_refused(
    tmp_path: Path, args: list[str], option: str
) -> None:
    out = tmp_path / "p"
    res = CliRunner().invoke(cli, ["power", str(PILOT), "-o", str(out), "-q", *args])
    assert res.exit_code == 1
    assert f"Error: {option}" in res.output and "stepped roll-out" in res.output
    assert "Traceback" not in res.output and not out.exists()


def test_treated_refused_as_a_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "p"
    proc = subprocess.run(
        [sys.executable, "-m", "pilotlab", "power", str(PILOT), "-o", str(out), "-q",
         "--treated", "6,12"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Error: --treated: a stepped roll-out treats the schools of its waves" in proc.stderr
    assert "--post" in proc.stderr and "Traceback" not in proc.stderr and not out.exists()


def test_design_power_treated_refused() -> None:
    spec = _spec(power={"treated": 12})
    with pytest.raises(SpecError, match=r"^design\.power\.treated: a stepped roll-out"):
        run_power(spec, simulations=20)


def _pupils() -> pd.DataFrame:
    frame = pd.read_csv(PILOT.parent / "data" / "panel.csv")
    schools = sorted(frame["school_id"].unique())
    frame["pupils"] = frame["school_id"].map(
        dict(zip(schools, np.linspace(0.5, 2.0, 36), strict=True))
    )
    return frame


def test_weighted_randomisation_inference_estimates_every_redraw_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refit(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a weighted roll-out's re-draws were refitted one by one")

    monkeypatch.setattr(stepped_mod, "run_simulation", refit)
    spec = _spec({"weight": "pupils"}, inference={"method": "permutation", "replications": 999})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_power(spec, _pupils(), simulations=100)
    assert res.path == "scheme" and res.mde is not None
    assert not any(n.startswith("Randomisation inference with weights") for n in res.notes)


def test_weighted_randomisation_inference_beyond_the_shortcut_is_stated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dynamic aggregation with weights refits every re-draw, and the output says so."""
    spec = _spec(
        {"weight": "pupils"},
        inference={"method": "permutation", "replications": 99},
        callaway_santanna={"aggregation": "dynamic"},
    )
    seen: list[Any] = []
    real = stepped_rejections

    def spy(history: Any, outcome: Any, est: Any, options: Any, alloc: Any, plan: Any,
            effects: Any, **kw: Any) -> Any:  # fmt: skip
        tpl = dataclasses.replace(
            history.with_first_treated(plan.code_start[alloc.codes]), allocation=alloc
        )
        seen.append(_fast(tpl, outcome, est, options, alloc))
        # the refit of every re-draw is slow; its decisions are checked in test_stepped.py,
        # here only what the output says about it
        fast = dataclasses.replace(options, inference="cluster")
        sim, drawn = real(history, outcome, est, fast, alloc, plan, effects, **kw)
        return dataclasses.replace(sim, path="full"), drawn

    monkeypatch.setattr(plan_mod, "stepped_rejections", spy)
    monkeypatch.setattr(stepped_mod, "stepped_rejections", spy)  # the scheme comparison's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_power(spec, _pupils(), simulations=40)
    assert seen and seen[0] is None  # no shortcut for this design
    note = next(n for n in res.notes if n.startswith("Randomisation inference with weights"))
    assert "analysed in full" in note and "simple aggregation" in note
