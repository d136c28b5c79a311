"""The evidence record writes each warning as its code and message, and the schema says so."""

from __future__ import annotations

import copy

import pytest

from pilotlab.evidence import evidence_record, validate_record
from pilotlab.exceptions import Notice
from tests.support import report as ex

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def common():
    return ex.common()


@pytest.fixture(scope="module")
def record(common) -> dict:
    return evidence_record(common)


def test_warnings_are_written_with_their_code(common, record: dict) -> None:
    validate_record(record)
    (w,) = record["results"][0]["warnings"]
    assert w["code"] == "few-clusters" and w["message"].startswith("Only 150 clusters")
    assert Notice.from_record(w) == common.outcomes[0].result.warnings[0]
    assert all({"code", "message"} <= set(x) for x in record["warnings"])


def test_records_written_before_codes_still_validate(record: dict) -> None:
    old = copy.deepcopy(record)
    old["results"][0]["warnings"] = ["Only 150 clusters (6 treated): ..."]
    old["warnings"] = ["a design note"]
    validate_record(old)


@pytest.mark.parametrize(
    "bad",
    [{"message": "no code"}, {"code": "Not Kebab", "message": "x"}, {"code": "ok", "message": 3}],
)
def test_a_malformed_warning_is_refused(record: dict, bad: dict) -> None:
    rec = copy.deepcopy(record)
    rec["results"][0]["warnings"] = [bad]
    with pytest.raises(jsonschema.ValidationError):
        validate_record(rec)
    rec = copy.deepcopy(record)
    rec["warnings"] = [bad]
    with pytest.raises(jsonschema.ValidationError):
        validate_record(rec)
