"""Outcome frameworks: the shipped starter framework, a programme's own, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.exceptions import SpecError
from pilotlab.frameworks import builtin_frameworks, load_framework, load_frameworks, same_unit

OWN = {
    "framework": "acme",
    "version": "2.1",
    "title": "Acme programme outcomes",
    "metrics": [
        {
            "code": "repeat_calls",
            "name": "Repeat calls to the council",
            "definition": "Calls from a household within 30 days of an earlier call, per 100 calls.",
            "unit": "per 100 calls",
            "better": "lower",
            "source": "Acme contact centre records",
            "monetary_value": {
                "value": 8.5,
                "currency": "gbp",
                "price_year": 2023,
                "per": "one call avoided",
                "source": "Acme unit cost study 2023",
            },
        }
    ],
}


def test_starter_framework_is_complete_and_honest() -> None:
    (local,) = builtin_frameworks()
    assert local.framework == "local" and local.version == "1.0.0"
    codes = {m.code for m in local.metrics}
    assert {
        "employment_rate", "claimant_rate", "persistent_absence", "emergency_admissions",
        "homelessness_duty", "children_low_income", "proven_reoffending",
    } <= codes  # fmt: skip
    for m in local.metrics:
        assert m.definition and m.source and m.unit and m.better in ("higher", "lower")
        assert m.framework == "local" and m.framework_version == "1.0.0"
    valued = {m.code: m.monetary_value for m in local.metrics if m.monetary_value is not None}
    # only the value a published appraisal source states: HM Treasury's WELLBY
    assert set(valued) == {"life_satisfaction"}
    wellby = valued["life_satisfaction"]
    assert (wellby.value, wellby.price_year, wellby.currency) == (13000, 2019, "GBP")
    assert "Green Book" in wellby.source


def test_a_programme_framework_file_and_folder(tmp_path: Path) -> None:
    f = tmp_path / "fw" / "acme.yaml"
    f.parent.mkdir()
    f.write_text(yaml.safe_dump(OWN), encoding="utf-8")
    for given in (f, f.parent):
        known = load_frameworks([given])
        m = known.metric("acme/repeat_calls")
        assert m.framework_version == "2.1" and m.monetary_value is not None
        assert m.monetary_value.currency == "GBP"
        assert known.metric("local/claimant_rate").better == "lower"  # shipped ones stay


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": None}, "version"),
        ({"metrics": []}, "metrics"),
        ({"framework": "Acme Outcomes"}, "framework"),
        ({"metrics": [OWN["metrics"][0], OWN["metrics"][0]]}, "listed twice: repeat_calls"),
        ({"metrics": [{**OWN["metrics"][0], "better": "up"}]}, "metrics[0].better (metric repeat_calls)"),
        ({"metrics": [{**OWN["metrics"][0], "monetary_value": {**OWN["metrics"][0]["monetary_value"], "currency": "EUR"}}]}, "currency"),
        ({"metrics": [{**OWN["metrics"][0], "framework": "x"}]}, "comes from the framework"),
        ({"colour": "blue"}, "is not a framework key"),
    ],
)  # fmt: skip
def test_bad_framework_files_name_the_file_and_key(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump({**OWN, **change}), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_framework(f)
    assert str(f) in str(err.value) and message in str(err.value)


def test_two_different_frameworks_under_one_id_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(OWN), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**OWN, "version": "3"}), encoding="utf-8")
    with pytest.raises(SpecError, match="already defined differently"):
        load_frameworks([tmp_path])
    local = tmp_path / "local.yaml"
    (tmp_path / "a.yaml").unlink()
    (tmp_path / "b.yaml").unlink()
    local.write_text(yaml.safe_dump({**OWN, "framework": "local"}), encoding="utf-8")
    with pytest.raises(SpecError, match="shipped with pilotlab"):
        load_frameworks([local])


def test_missing_paths_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_frameworks(["nowhere.yaml"], base_dir=tmp_path)
    with pytest.raises(SpecError, match="holds no outcome framework"):
        load_frameworks([tmp_path])
    (tmp_path / "x.yaml").write_text("framework: [unclosed", encoding="utf-8")
    with pytest.raises(SpecError, match="YAML syntax error"):
        load_frameworks([tmp_path])


def test_environment_variable_adds_frameworks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump(OWN), encoding="utf-8")
    monkeypatch.setenv("PILOTLAB_FRAMEWORKS", str(tmp_path))
    assert "acme" in load_frameworks().frameworks


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("percent", "%", True),
        ("percent", "percentage points", True),
        ("per 1,000 population", "per 1000 population", True),
        ("Per 1,000 Households", "per 1,000 households", True),
        ("percent", "days", False),
        ("per 1,000 population", "per 100,000 population", False),
    ],
)
def test_units_agree(a: str, b: str, same: bool) -> None:
    assert same_unit(a, b) is same


def test_unknown_references_list_what_is_known() -> None:
    known = load_frameworks()
    with pytest.raises(ValueError, match="known: local"):
        known.metric("acme/repeat_calls")
    with pytest.raises(ValueError, match="its metrics are: employment_rate"):
        known.metric("local/repeat_calls")
    with pytest.raises(ValueError, match="<framework>/<code>"):
        known.metric("claimant rate")


def test_cli_lists_frameworks(tmp_path: Path, runner: CliRunner) -> None:
    res = runner.invoke(cli, ["frameworks"])
    assert res.exit_code == 0 and "local/claimant_rate" in res.output
    assert "£13,000 per unit (2019 prices)" in res.output
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump(OWN), encoding="utf-8")
    res = runner.invoke(cli, ["frameworks", "--frameworks", str(tmp_path), "--json"])
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert [f["framework"] for f in data] == ["local", "acme"]
    assert data[1]["loaded_from"].endswith("acme.yaml")
    bad = runner.invoke(cli, ["frameworks", "--frameworks", str(tmp_path / "no.yaml")])
    assert bad.exit_code == 1 and "--frameworks: " in bad.output and "Traceback" not in bad.output


def test_cli_frameworks_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pilotlab", "frameworks"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "local/persistent_absence" in proc.stdout
