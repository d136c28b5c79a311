"""The pilot file's ``assignment:`` key: accepted forms and key-path messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilotlab.exceptions import SpecError
from pilotlab.spec.load import load_pilot, parse_pilot, plan_sha256
from tests.support import pilot_dict
from tests.support.trial import trial_pilot


def _problem(match: str, **a: Any) -> None:
    with pytest.raises(SpecError, match=match):
        parse_pilot(trial_pilot(**a))


def test_a_randomised_pilot_needs_no_treatment_key() -> None:
    spec = parse_pilot(trial_pilot())
    assert spec.assignment is not None and spec.treatment.form == "planned"
    assert spec.assignment.groups == ("control", "treated")
    assert spec.plan()["assignment"]["seed"] == 7


def test_pilots_without_assignment_keep_their_plan_hash() -> None:
    spec = parse_pilot(pilot_dict())
    assert "assignment" not in spec.plan()
    assert plan_sha256(spec) == plan_sha256(parse_pilot(pilot_dict()))


@pytest.mark.parametrize(
    ("a", "match"),
    [
        ({"seed": None}, r"assignment\.seed: required key is missing"),
        ({"scheme": "random"}, r"assignment\.scheme: found 'random'"),
        ({"treated": None}, r"assignment\.treated: scheme complete needs the number"),
        ({"treated": 0}, r"assignment\.treated: found 0"),
        ({"scheme": "stratified"}, r"assignment\.strata: scheme stratified needs strata"),
        ({"strata": ["region"]}, r"assignment\.strata: scheme complete has no strata"),
        ({"scheme": "pairs", "treated": None}, r"assignment\.pairs_on: scheme pairs needs"),
        ({"scheme": "pairs"}, r"assignment\.treated: scheme pairs treats one unit of each pair"),
        ({"scheme": "rerandomise"}, r"assignment\.balance: scheme rerandomise needs"),
        ({"balance": {"max_std_diff": 0.1}}, r"assignment\.balance: balance belongs to"),
        ({"scheme": "stepped", "treated": None}, r"assignment\.waves: scheme stepped needs"),
        ({"start": None}, r"assignment\.start: add the first treated period"),
        ({"arms": ["control"]}, r"assignment\.arms: found 1 arm"),
        ({"arms": ["a", "a"]}, r"assignment\.arms: an arm is listed twice"),
        ({"arms": ["c", "x", "y"], "treated": {"x": 2}}, r"assignment\.treated: found arms x"),
        ({"eligible": []}, r"assignment\.eligible"),
        ({"eligible": "some"}, r"1 problem .*\n  - assignment\.eligible: found 'some'; write all"),
        ({"treated": True}, r"1 problem .*\n  - assignment\.treated: found True; give the"),
        ({"treated": 2.5}, r"1 problem .*\n  - assignment\.treated: found 2\.5"),
        ({"strata": 3, "scheme": "stratified"}, r"assignment\.strata: found 3; name"),
        (
            {"scheme": "stratified", "strata": {"n": ["A1"], "s": ["A1"]}},
            r"assignment\.strata\.s: unit 'A1' is also in stratum 'n'",
        ),
        (
            {"balance": {"max_std_diff": -1}, "scheme": "rerandomise"},
            r"assignment\.balance\.max_std_diff",
        ),
    ],
)
def test_bad_assignment_keys_are_named(a: dict[str, Any], match: str) -> None:
    _problem(match, **a)


def test_stepped_waves_need_distinct_starts_and_no_common_start() -> None:
    waves = [{"start": "2020Q1", "units": 2}, {"start": "2020Q1", "units": 2}]
    _problem(r"assignment\.waves: two waves share a start", scheme="stepped", treated=None,
             start=None, waves=waves)  # fmt: skip
    _problem(r"assignment\.start: a stepped roll-out", scheme="stepped", treated=None,
             waves=waves[:1])  # fmt: skip


def test_treatment_and_assignment_cannot_both_name_the_treated() -> None:
    spec = trial_pilot()
    spec["treatment"] = {"units": ["A0001"], "start": "2020Q1"}
    with pytest.raises(SpecError, match=r"treatment: treatment\.units and start and assignment"):
        parse_pilot(spec)
    spec["treatment"] = {"eligible": ["A0001"]}
    with pytest.raises(SpecError, match=r"assignment\.eligible instead"):
        parse_pilot(spec)


def test_stepped_compares_with_the_not_yet_treated_by_default() -> None:
    waves = [{"start": "2020Q1", "units": 2}]
    spec = parse_pilot(trial_pilot(scheme="stepped", treated=None, start=None, waves=waves))
    assert spec.treatment.comparison == "not_yet_treated"


def test_unquoted_unit_ids_keep_their_text_in_yaml(tmp_path: Path) -> None:
    text = (
        "id: t\ntitle: T\ndata: {path: d.csv, unit: u, time: t}\noutcomes: [{column: y}]\n"
        "assignment:\n  scheme: stratified\n  treated: 1\n  start: 2020\n  seed: 1\n"
        "  eligible: [010, 011]\n  strata: {a: [010], b: [011]}\n"
    )
    (tmp_path / "pilot.yaml").write_text(text)
    spec = load_pilot(tmp_path / "pilot.yaml")
    assert spec.assignment is not None
    assert spec.assignment.eligible == ["010", "011"]
    assert spec.assignment.strata == {"a": ["010"], "b": ["011"]}
    assert spec.assignment.start == "2020"


def test_one_stratum_column_may_be_named_on_its_own() -> None:
    spec = parse_pilot(trial_pilot(scheme="stratified", strata="region"))
    assert spec.assignment is not None and spec.assignment.strata == ["region"]
