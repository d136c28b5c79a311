"""The pilot-file JSON Schema lists the estimators' own options (generated from the catalogue)."""

from __future__ import annotations

import pytest

from pilotlab.spec import PilotSpec

jsonschema = pytest.importorskip("jsonschema")


def _options_schema() -> dict:
    design = PilotSpec.model_json_schema()["$defs"]["DesignSpec"]
    return design["properties"]["options"]


def test_new_estimators_options_are_in_the_schema() -> None:
    opts = _options_schema()
    assert {"imputation", "sun_abraham"} <= set(opts["x-estimator-options"])
    imp = opts["x-estimator-options"]["imputation"]
    assert set(imp["properties"]) == {"aggregation", "leave_out"}
    sa = opts["x-estimator-options"]["sun_abraham"]
    assert sa["properties"]["control"]["enum"] == ["auto", "never_treated", "last_treated"]


def test_options_blocks_validate_against_the_schema() -> None:
    opts = _options_schema()
    jsonschema.validate({"aggregation": "group", "leave_out": True}, opts)
    jsonschema.validate({"control": "last_treated"}, opts)
    jsonschema.validate({}, opts)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"aggregation": "median"}, opts)
