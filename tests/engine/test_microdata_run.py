"""A microdata pilot through ``run_pilot``: the report and the evidence record state the
person-level counts, and the record validates against the schema."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import yaml

from pilotlab import run_pilot
from pilotlab.evidence import validate_record
from tests.support.microdata import person_rows, treated_areas, write_partitions

pytest.importorskip("jsonschema")


def test_microdata_run_states_person_counts(tmp_path: Path) -> None:
    rows = person_rows(seed=41, areas=30, treated=10, weights=True)
    write_partitions(rows, tmp_path / "rows", 3)
    spec = {
        "id": "micro-run",
        "title": "Microdata run",
        "status": "completed",
        "data": {"path": "rows/*.parquet", "unit": "area", "time": "period",
                 "person": "person", "weight": "w", "layout": "microdata"},
        "treatment": {"units": treated_areas(rows, 10), "start": "2004"},
        "outcomes": [{"column": "y"}],
        "design": {"estimator": "event_study", "covariates": ["x"],
                   "inference": {"method": "cluster"}},
    }  # fmt: skip
    (tmp_path / "pilot.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_pilot(tmp_path / "pilot.yaml", tmp_path / "out", record=False)
    record = json.loads((tmp_path / "out" / "evidence.json").read_text(encoding="utf-8"))
    validate_record(record)
    micro = record["data"]["microdata"]
    assert micro["rows"] == len(rows) == record["data"]["rows"]
    assert micro["persons"] == rows["person"].nunique() and micro["files"] == 3
    assert micro["cells"] == 30 * 6 and record["data"]["layout"] == "microdata"
    assert record["results"][0]["n_obs"] == len(rows)
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert f"{len(rows):,} rows for {rows['person'].nunique():,} people" in html
