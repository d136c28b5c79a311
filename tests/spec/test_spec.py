"""The pilot file: parsing, normalisation, key-path errors, plan hash, JSON Schema."""

from __future__ import annotations

import json

import pytest

from pilotlab.exceptions import SpecError
from pilotlab.spec import load_pilot, parse_pilot, plan_sha256
from tests.support import pilot_dict


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
    from tests.support import ROOT

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


# ---------------------------------------------------------------- ids and numbers as written

_IDS_YAML = """\
id: ids
title: Ids as written
data: {path: d.csv, unit: u, time: t}
treatment:
  units: [010, 011, NO, 2024-01-01, 1001]
  start: 2020
  comparison: [020, 021]
  exclude: [030]
  eligible: [010, 011, 020, 021, 030, NO, 2024-01-01, 1001]
  anticipation: 01
outcomes: [{column: y}]
design:
  power: {treated: [010]}
"""


def test_unquoted_ids_keep_the_text_as_written(tmp_path) -> None:
    p = tmp_path / "pilot.yaml"
    p.write_text(_IDS_YAML, encoding="utf-8")
    tr = load_pilot(p).treatment
    # YAML 1.1 would read 010 as octal 8 and NO as False.
    assert tr.units == ["010", "011", "NO", "2024-01-01", "1001"]
    assert tr.comparison == ["020", "021"]
    assert tr.exclude == ["030"]
    assert tr.eligible is not None and tr.eligible[0] == "010"
    assert load_pilot(p).design.power.treated == ["010"]
    assert tr.anticipation == 1  # a count with a leading zero is read as decimal


def test_unquoted_adoption_keys_keep_their_text(tmp_path) -> None:
    p = tmp_path / "pilot.yaml"
    p.write_text(
        _IDS_YAML.replace("  units: [010, 011, NO, 2024-01-01, 1001]\n  start: 2020\n", "")
        .replace("comparison: [020, 021]", "adoption: {010: 2020, 007: 2021Q1}")
        .replace(
            "  exclude: [030]\n  eligible: [010, 011, 020, 021, 030, NO, 2024-01-01, 1001]\n", ""
        ),
        encoding="utf-8",
    )
    assert load_pilot(p).treatment.adoption == {"010": "2020", "007": "2021Q1"}


@pytest.mark.parametrize("written", ["0x1F", "1.0e+3", "1.5", ".inf", "0b11", "1_000", "+7"])
def test_ids_whose_text_yaml_changes_must_be_quoted(tmp_path, written: str) -> None:
    p = tmp_path / "pilot.yaml"
    p.write_text(_IDS_YAML.replace("exclude: [030]", f"exclude: [030, {written}]"))
    with pytest.raises(SpecError, match=r"treatment\.exclude\[1\] \(line 8\).*in quotes"):
        load_pilot(p)
    p.write_text(_IDS_YAML.replace("exclude: [030]", f"exclude: [030, '{written}']"))
    assert load_pilot(p).treatment.exclude == ["030", written]


def test_float_ids_from_python_are_refused() -> None:
    with pytest.raises(
        SpecError, match=r"treatment\.units: found the number 1001\.0.*put unit ids in quotes"
    ):
        parse_pilot(pilot_dict(treatment={"units": [1001.0], "start": "2020"}))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"outcomes": [{"column": "y", "mde": float("inf")}]}, r"outcomes\[0\]\.mde"),
        ({"outcomes": [{"column": "y", "mde": float("nan")}]}, r"outcomes\[0\]\.mde"),
        ({"design": {"alpha": float("nan")}}, r"design\.alpha"),
        ({"design": {"power": {"effects": [1.0, float("-inf")]}}}, r"design\.power\.effects"),
        ({"design": {"power": {"target_power": float("nan")}}}, r"design\.power\.target_power"),
    ],
)
def test_non_finite_numbers_are_refused(change: dict, key: str) -> None:
    with pytest.raises(SpecError, match=key + r".*finite number"):
        parse_pilot(pilot_dict(**change))


@pytest.mark.parametrize(
    "change",
    [
        {"treatment": {"units": ["A"], "start": "2020", "anticipation": 10**20}},
        {"design": {"inference": {"seed": 10**30}}},
        {"design": {"window": {"pre": 10**20}}},
        {"design": {"power": {"treated": 10**20}}},
    ],
)
def test_huge_integers_are_refused(change: dict) -> None:
    with pytest.raises(SpecError, match=r"less than or equal|at least 1"):
        parse_pilot(pilot_dict(**change))


# ---------------------------------------------------------------- hostile and broken YAML


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "id: x\ntitle: !!python/object/apply:os.system ['echo hi']\n",
            r"unsupported YAML tag at line 2",
        ),
        ("id: x\ntitle: !!python/name:os.system\n", r"unsupported YAML tag at line 2"),
        ("id: x\ntitle: !custom 'x'\n", r"unsupported YAML tag at line 2.*remove"),
        ("id: x\ntitle: !!binary '@@@@'\n", r"line 2.*binary data"),
        ("id: x\ntitle: !!int 'abc'\n", r"invalid value at line 2"),
        ("id: x\ntitle: !!timestamp 'not a date'\n", r"line 2"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", r"nested more than 64 levels deep"),
        ("".join(" " * i + "a:\n" for i in range(200)), r"nested more than 64 levels deep"),
        (
            "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
            "e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
            r"anchors and aliases expand",
        ),
        ("? [a, b]\n: 1\n", r"line 1.*keys must be plain names"),
        ("- id: x\n- title: y\n", r"the pilot file is a list"),
        ("just text\n", r"the pilot file is a str"),
        ("# only a comment\n", r"the pilot file is empty"),
        ("id: x\x00\n", r"character YAML does not allow"),
        ("a: 1\n---\nb: 2\n", r"YAML syntax error"),
    ],
    ids=lambda v: v[:30] if isinstance(v, str) and len(v) > 30 else None,
)
def test_hostile_yaml_is_a_clear_spec_error(tmp_path, text: str, expected: str) -> None:
    p = tmp_path / "pilot.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=expected) as info:
        load_pilot(p)
    assert str(info.value).startswith(str(p))


def test_non_utf8_names_the_line(tmp_path) -> None:
    p = tmp_path / "pilot.yaml"
    p.write_bytes(b"id: x\ntitle: caf\xe9\n")
    with pytest.raises(SpecError, match=r"line 2 is not UTF-8 text \(byte 0xe9\)"):
        load_pilot(p)


def test_utf8_byte_order_mark_is_accepted(tmp_path) -> None:
    import yaml

    p = tmp_path / "pilot.yaml"
    p.write_bytes(b"\xef\xbb\xbf" + yaml.safe_dump(pilot_dict()).encode())
    assert load_pilot(p).id == "test-pilot"


def test_oversized_and_folder_paths_are_refused(tmp_path) -> None:
    p = tmp_path / "pilot.yaml"
    p.write_text("id: x\n" + "# padding\n" * 200_000, encoding="utf-8")
    with pytest.raises(SpecError, match="a pilot file is a few kilobytes"):
        load_pilot(p)
    (tmp_path / "d" / "pilot.yaml").mkdir(parents=True)
    with pytest.raises(SpecError, match="is a folder"):
        load_pilot(tmp_path / "d")
