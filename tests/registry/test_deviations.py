"""An analysed plan that differs from the registered one without an amendment: every difference is
listed key by key (registered and analysed value) in the report, the evidence record and on the
command line's stderr; amendments stay listed as registered deviations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from pilotlab.cli import cli
from pilotlab.evidence import validate_record
from pilotlab.registry.diff import changed_paths, plan_differences

NO_DEVIATIONS = "There are no deviations from the registered plan."


def _edit(path: Path, **design: object) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["design"].update(design)
    doc["outcomes"][0]["mde"] = 0.25
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def registered(tmp_path: Path, runner, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PILOTLAB_REGISTRY_URL", raising=False)
    assert runner.invoke(cli, ["init", "demo"]).exit_code == 0
    path = tmp_path / "demo" / "pilot.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["design"]["inference"]["replications"] = 99  # the plan's content, not its precision
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    assert runner.invoke(cli, ["register", "demo/pilot.yaml"]).exit_code == 0
    return tmp_path / "demo" / "pilot.yaml"


def test_edit_without_amend_is_an_unregistered_deviation(registered: Path, runner) -> None:
    _edit(registered, alpha=0.1)
    res = runner.invoke(cli, ["run", str(registered), "-o", "out"])
    assert res.exit_code == 0, res.output  # the run is valid; the deviation is made visible
    assert "Warning: unregistered deviation" in res.stderr
    line = next(x for x in res.stderr.splitlines() if "unregistered deviation" in x)
    assert line.endswith("[unregistered-deviation]")  # the warning's code, as in the evidence
    assert "design.alpha" in res.stderr and "outcomes[0].mde" in res.stderr
    assert "Warning" not in res.stdout

    record = json.loads(Path("out/evidence.json").read_text(encoding="utf-8"))
    validate_record(record)
    plan = record["plan"]
    assert plan["matches_registered"] is False and plan["deviations"] == []
    by_key = {d["key"]: d for d in plan["unregistered_deviations"]}
    assert set(by_key) == {"design.alpha", "outcomes[0].mde"}
    assert (by_key["design.alpha"]["registered"], by_key["design.alpha"]["analysed"]) == (0.05, 0.1)
    assert (by_key["outcomes[0].mde"]["registered"], by_key["outcomes[0].mde"]["analysed"]) == (
        0.5,
        0.25,
    )

    text = _text(Path("out/report.html").read_text(encoding="utf-8"))
    assert NO_DEVIATIONS not in text
    assert "Unregistered deviations from the registered plan" in text
    assert "design.alpha 0.05 0.1 unregistered deviation" in text
    assert "outcomes[0].mde 0.5 0.25 unregistered deviation" in text


def test_amendment_is_a_registered_deviation_and_later_edits_are_not(
    registered: Path, runner
) -> None:
    _edit(registered, alpha=0.1)
    res = runner.invoke(
        cli, ["amend", str(registered), "--reason", "agreed with the department", "--data-seen"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["run", str(registered), "-o", "amended"])
    assert res.exit_code == 0 and "Warning" not in res.stderr, res.output
    text = _text(Path("amended/report.html").read_text(encoding="utf-8"))
    assert "registered deviation" in text and "agreed with the department" in text
    assert "unregistered deviation" not in text.lower().replace("registered deviation", "")
    assert NO_DEVIATIONS not in text

    doc = yaml.safe_load(registered.read_text(encoding="utf-8"))
    doc["design"]["multiple_testing"] = "bh"
    registered.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    res = runner.invoke(cli, ["run", str(registered), "-o", "edited"])
    assert res.exit_code == 0
    assert "design.multiple_testing" in res.stderr and "version 2" in res.stderr
    record = json.loads(Path("edited/evidence.json").read_text(encoding="utf-8"))
    assert [d["key"] for d in record["plan"]["unregistered_deviations"]] == [
        "design.multiple_testing"
    ]
    assert record["plan"]["deviations"][0]["data_seen"] is True
    text = _text(Path("edited/report.html").read_text(encoding="utf-8"))
    assert "design.multiple_testing holm bh unregistered deviation" in text
    assert "agreed with the department" in text and "registered deviation" in text
    assert NO_DEVIATIONS not in text


def test_matching_plan_keeps_the_no_deviation_sentence(registered: Path, runner) -> None:
    res = runner.invoke(cli, ["run", str(registered), "-o", "out"])
    assert res.exit_code == 0 and "Warning" not in res.stderr
    text = _text(Path("out/report.html").read_text(encoding="utf-8"))
    assert NO_DEVIATIONS in text and "Unregistered deviation" not in text
    assert (
        json.loads(Path("out/evidence.json").read_text())["plan"]["unregistered_deviations"] == []
    )


def test_plan_differences_give_both_values_key_by_key() -> None:
    old = {"a": 1, "d": {"k": [1, 2], "o": [{"m": 1}, {"m": 2}]}, "gone": 3}
    new = {"a": 2, "d": {"k": [1], "o": [{"m": 1}, {"m": 5}]}, "added": 4}
    diffs = plan_differences(old, new)
    assert [d["key"] for d in diffs] == changed_paths(old, new)
    assert [d["key"] for d in diffs] == ["a", "added", "d.k", "d.o[1].m", "gone"]
    by = {d["key"]: d for d in diffs}
    assert (by["d.k"]["registered"], by["d.k"]["analysed"]) == ([1, 2], [1])
    assert (by["d.o[1].m"]["registered"], by["d.o[1].m"]["analysed"]) == (2, 5)
    assert by["gone"]["analysed_set"] is False and by["gone"]["registered"] == 3
    assert by["added"]["registered_set"] is False and by["added"]["analysed"] == 4
    assert plan_differences(old, old) == []
