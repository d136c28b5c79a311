"""``pilotlab randomise`` and ``pilotlab run`` on randomised pilots, through the command line.

Every bad input of a randomised pilot is one clear message, exit code 1, no traceback, no file
written and nothing recorded in the registry; checked through CliRunner and as a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest
from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.registry import Registry
from tests.support import write_pilot
from tests.support.registry import count_rows
from tests.support.trial import trial_frame, trial_pilot

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "src/pilotlab/allocation.schema.json").read_text()
)


def _stratified(**extra: Any) -> dict[str, Any]:
    return trial_pilot(scheme="stratified", strata=["region"], treated=6, **extra)


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def _files(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_randomise_writes_the_allocation_records_it_and_refuses_a_second_draw(
    tmp_path: Path,
) -> None:
    pilot = write_pilot(tmp_path / "p", _stratified(), trial_frame())
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    out = tmp_path / "alloc"
    r = _cli("randomise", str(pilot), "-o", str(out), "--registry", url)
    assert r.exit_code == 0, r.output
    assert "Allocated 24 units (stratified, seed 7): control 18, treated 6." in r.output
    assert "Registered test-pilot (analysis plan version 1)" in r.output
    doc = json.loads((out / "allocation.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    # the documented fingerprint: canonical JSON of scheme, seed, groups and unit/code/stratum
    canonical = {
        "scheme": doc["scheme"],
        "seed": doc["seed"],
        "groups": [{k: g[k] for k in ("code", "name", "start")} for g in doc["groups"]],
        "units": [{k: u[k] for k in ("unit", "code", "stratum")} for u in doc["units"]],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(text.encode()).hexdigest() == doc["sha256"]
    # stratified: 6 treated shared 2 per region
    per_region = pd.DataFrame(doc["units"]).groupby("stratum")["code"].sum().to_dict()
    assert per_region == {"r0": 2, "r1": 2, "r2": 2}
    html = (out / "allocation.html").read_text()
    assert "Do the groups look alike before the start?" in html and doc["sha256"] in html
    with Registry(url) as reg:
        [rec] = reg.allocations("test-pilot")
        assert rec.allocation_sha256 == doc["sha256"] and rec.version == 1
        before = count_rows(reg)
    files = _files(out)
    again = _cli("randomise", str(pilot), "-o", str(tmp_path / "alloc2"), "--registry", url)
    assert again.exit_code == 1
    assert "already has an allocation (version 1" in again.output
    assert "Traceback" not in again.output
    assert not (tmp_path / "alloc2").exists() and _files(out) == files
    with Registry(url) as reg:
        assert count_rows(reg) == before


def test_the_same_seed_gives_the_same_allocation_and_another_seed_another(
    tmp_path: Path,
) -> None:
    shas = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        pilot = write_pilot(tmp_path / name, _stratified(seed=seed), trial_frame())
        url = f"sqlite:///{tmp_path / name / 'reg.db'}"
        r = _cli("randomise", str(pilot), "-o", str(tmp_path / name / "out"), "--registry", url)
        assert r.exit_code == 0, r.output
        shas.append(json.loads((tmp_path / name / "out" / "allocation.json").read_text())["sha256"])
    assert shas[0] == shas[1] != shas[2]


def _one_stratum_alone(d: pd.DataFrame) -> pd.DataFrame:
    d = d.copy()
    d.loc[d["area_code"] == "A0001", "region"] = "r9"
    return d


BAD = [
    (
        "no assignment",
        lambda: {**trial_pilot(), "assignment": None},
        None,
        ["has no assignment key"],
    ),
    (
        "units not in the data",
        lambda: trial_pilot(eligible=["A0001", "A0002", "A0003", "Z9999"], treated=1),
        None,
        ["assignment.eligible", "Z9999", "not found"],
    ),
    (
        "a stratum with one unit",
        lambda: _stratified(eligible="all"),
        _one_stratum_alone,
        ["assignment.strata", "hold one unit only", "r9 (A0001)"],
    ),
    (
        "more arms than units",
        lambda: trial_pilot(treated=9, arms=["control", "a", "b", "c"]),
        None,
        ["assignment.treated", "only 24 unit(s) are eligible"],
    ),
    (
        "an unsatisfiable balance criterion",
        lambda: trial_pilot(
            scheme="rerandomise",
            balance={"on": ["outcome"], "max_std_diff": 0.0001, "max_draws": 50},
        ),
        None,
        ["assignment.balance", "none of the 50 allocations drawn"],
    ),
]


@pytest.mark.parametrize(("name", "spec", "edit", "expected"), BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("how", ["clirunner", "subprocess"])
def test_bad_allocation_requests_are_one_clear_message_and_record_nothing(
    tmp_path: Path, name: str, spec: Any, edit: Any, expected: list[str], how: str
) -> None:
    raw = spec()
    if raw.get("assignment") is None:
        raw.pop("assignment", None)
        raw["treatment"] = {"units": ["A0001"], "start": "2020Q1"}
    data = trial_frame()
    pilot = write_pilot(tmp_path / "p", raw, edit(data) if edit else data)
    db = tmp_path / "reg.db"
    args = ["randomise", str(pilot), "-o", str(tmp_path / "out"), "--registry", f"sqlite:///{db}"]
    if how == "clirunner":
        r = CliRunner().invoke(cli, args)
        code, err = r.exit_code, r.output
    else:
        p = subprocess.run(
            [sys.executable, "-m", "pilotlab", *args], capture_output=True, text=True, check=False
        )
        code, err = p.returncode, p.stderr
        assert p.stdout == ""
    assert code == 1, err
    assert err.startswith("Error: ") and "Traceback" not in err
    for part in expected:
        assert part in err, (part, err)
    assert not (tmp_path / "out").exists()
    assert not db.exists()  # the registry was not even created


def _randomised(tmp_path: Path, **extra: Any) -> tuple[Path, str]:
    pilot = write_pilot(tmp_path / "p", _stratified(**extra), trial_frame())
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    r = _cli("randomise", str(pilot), "-o", str(tmp_path / "alloc"), "--registry", url)
    assert r.exit_code == 0, r.output
    return pilot, url


@pytest.mark.parametrize("how", ["clirunner", "subprocess"])
def test_a_data_change_that_moves_units_between_strata_stops_the_run(
    tmp_path: Path, how: str
) -> None:
    pilot, url = _randomised(tmp_path)
    data = trial_frame()
    data.loc[data["area_code"] == "A0002", "region"] = "r0"  # A0002 was in r1
    data.to_csv(pilot.parent / "data.csv", index=False)
    args = ["run", str(pilot), "-o", str(tmp_path / "run"), "--registry", url, "-q"]
    if how == "clirunner":
        r = CliRunner().invoke(cli, args)
        code, err = r.exit_code, r.output
    else:
        p = subprocess.run(
            [sys.executable, "-m", "pilotlab", *args], capture_output=True, text=True, check=False
        )
        code, err = p.returncode, p.stderr
    assert code == 1, err
    assert "moved 1 unit(s) between strata (A0002 from r1 to r0)" in err
    assert "--reason" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
    with Registry(url) as reg:
        assert count_rows(reg)["runs"] == 0


def test_a_changed_seed_is_refused_at_run_time_until_recorded_with_a_reason(
    tmp_path: Path,
) -> None:
    pilot, url = _randomised(tmp_path)
    raw = _stratified(seed=99)
    write_pilot(pilot.parent, raw, None)
    run = ["run", str(pilot), "-o", str(tmp_path / "run"), "--registry", url, "-q"]
    r = _cli(*run)
    assert r.exit_code == 1
    assert "the seed is 99, registered 7" in r.output
    # the plan changed too (the seed is part of it): amend it, then record the new allocation
    assert _cli("amend", str(pilot), "--reason", "new seed", "--registry", url).exit_code == 0
    redo = _cli(
        "randomise", str(pilot), "-o", str(tmp_path / "alloc2"), "--registry", url,
        "--reason", "two schools merged before the start",
    )  # fmt: skip
    assert redo.exit_code == 0, redo.output
    assert "Recorded the changed allocation (version 2" in redo.output
    r = _cli(*run)
    assert r.exit_code == 0, r.output
    record = json.loads((tmp_path / "run" / "evidence.json").read_text())
    reg = record["trial"]["registration"]
    assert reg["version"] == 2 and reg["matches"] is True
    assert reg["changes"][0]["reason"] == "two schools merged before the start"
    html = (tmp_path / "run" / "report.html").read_text()
    assert "The allocation was changed after it was first recorded" in html


def test_a_bad_received_column_is_a_clear_error(tmp_path: Path) -> None:
    pilot, _ = _randomised(tmp_path)
    raw = _stratified()
    raw["trial"] = {"received": "got"}
    data = trial_frame()
    data["got"] = "maybe"
    write_pilot(pilot.parent, raw, data)
    r = _cli("run", str(pilot), "-o", str(tmp_path / "run"), "-q")
    assert r.exit_code == 1
    assert "trial.received: column 'got' has" in r.output and "'maybe'" in r.output
    assert not (tmp_path / "run").exists()


def test_validate_checks_a_randomised_pilot_as_it_will_run() -> None:
    """A randomised pilot gives no treatment: it comes from the allocation, not from history."""
    root = Path(__file__).resolve().parents[2]
    res = _cli("validate", str(root / "pilots" / "schools-stepped" / "pilot.yaml"))
    assert res.exit_code == 0, res.output
    assert "planned pilot" not in res.output
    assert "36 units (36 treated)" in res.output
