"""The pilot file: parsing, normalisation, key-path errors, plan hash, JSON Schema."""

from __future__ import annotations

import json

import pytest

from pilotlab.exceptions import SpecError
from pilotlab.spec import load_pilot, parse_pilot, plan_sha256

from conftest import pilot_dict


def test_minimal_pilot_parses_with_defaults() -> None:
    spec = parse_pilot(pilot_dict())
    assert spec.status == "planned"
    assert spec.design.estimator == "auto"
    assert spec.design.inference.method == "auto"
    assert spec.treatment.form == "common"
    assert [o.column for o in spec.primary_outcomes] == ["outcome"]


def test_numeric_ids_and_periods_become_text() -> None:
    spec = parse_pilot(pilot_dict(treatment={"units": [101, 102], "start": 2020, "exclude": [7]}))
    assert spec.treatment.units == ["101", "102"]
    assert spec.treatment.start == "2020"
    assert spec.treatment.exclude == ["7"]
    spec = parse_pilot(pilot_dict(treatment={"adoption": {5: 2004, "x": "2006"}}))
    assert spec.treatment.adoption == {"5": "2004", "x": "2006"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"titel": "x"}, r"titel: unknown key"),
        ({"title": None}, r"title: "),
        ({"id": "Bad Id"}, r"id: 'Bad Id' is not a valid id"),
        (
            {"status": "running"},
            r"status: found 'running'; allowed: 'planned', 'live', 'completed' or 'withdrawn'",
        ),
        ({"outcomes": []}, r"outcomes: "),
        ({"outcomes": [{"column": "y", "better": "up"}]}, r"outcomes\[0\]\.better: found 'up'"),
        ({"design": {"estimator": "magic"}}, r"design\.estimator: found 'magic'"),
        (
            {"design": {"inference": {"method": "bootstrap"}}},
            r"design\.inference\.method: found 'bootstrap'",
        ),
        ({"design": {"alpha": 0.7}}, r"design\.alpha: found 0\.7"),
        (
            {"treatment": {"units": ["a"], "start": "2020", "column": "d"}},
            r"give exactly one treatment form",
        ),
        ({"treatment": {"units": ["a"]}}, r"'start' is missing"),
        ({"treatment": {"comparison": "never_treated"}}, r"no treatment given"),
        ({"data": {"path": "d.csv", "unit": "u"}}, r"data\.time: required key is missing"),
    ],
)
def test_errors_name_the_key(change: dict, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        parse_pilot(pilot_dict(**change), "pilots/x/pilot.yaml")


def test_all_problems_listed_at_once() -> None:
    with pytest.raises(SpecError) as info:
        parse_pilot(
            pilot_dict(titel="x", status="running", design={"estimator": "magic"}), "p.yaml"
        )
    msg = str(info.value)
    assert msg.startswith("p.yaml: 3 problems in the pilot file:")
    assert "titel" in msg and "status" in msg and "design.estimator" in msg


def test_yaml_errors_give_line_numbers(tmp_path) -> None:
    p = tmp_path / "pilot.yaml"
    p.write_text("id: x\ntitle: [unclosed\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"YAML syntax error at line \d+, column \d+"):
        load_pilot(p)
    p.write_text("id: a\nid: b\n", encoding="utf-8")
    with pytest.raises(SpecError, match="duplicate key 'id'"):
        load_pilot(p)
    p.write_text("", encoding="utf-8")
    with pytest.raises(SpecError, match="the pilot file is empty"):
        load_pilot(p)
    with pytest.raises(SpecError, match="no such pilot file"):
        load_pilot(tmp_path / "missing.yaml")


def test_plan_hash_ignores_status_and_contact_but_not_design() -> None:
    a = parse_pilot(pilot_dict())
    b = parse_pilot(pilot_dict(status="live", contact="x@y.org", summary="s", partners=["DfE"]))
    c = parse_pilot(pilot_dict(design={"alpha": 0.1}))
    assert plan_sha256(a) == plan_sha256(b)
    assert plan_sha256(a) != plan_sha256(c)
    assert len(plan_sha256(a)) == 64


def test_examples_load() -> None:
    from conftest import ROOT

    for path in sorted((ROOT / "pilots").glob("*/pilot.yaml")):
        spec = load_pilot(path)
        assert spec.data_path.exists(), path


def test_json_schema_is_valid_and_describes_every_top_level_key() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from pilotlab.spec import PilotSpec

    schema = PilotSpec.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"id", "title", "data", "treatment", "outcomes", "design"} <= set(schema["properties"])
    json.dumps(schema)
