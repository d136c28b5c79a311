"""Test support: reference data location and pilot-file builders, shared by every test package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Published reference datasets shipped with the tests (sources and licences: tests/support/data/README.md).
SHARED_DATA = Path(__file__).resolve().parent / "data"


def shared_data(name: str) -> Path:
    """Path of a reference dataset in tests/support/data; a missing file fails the test (never skips)."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.fail(
            f"reference data {path} is missing; it ships with the repository (tests/support/data)"
        )
    return path


def pilot_dict(**overrides: Any) -> dict[str, Any]:
    """A small valid pilot file as a dict; nested keys are replaced by ``overrides``."""
    base: dict[str, Any] = {
        "id": "test-pilot",
        "title": "Test pilot",
        "data": {"path": "data.csv", "unit": "area_code", "time": "period"},
        "treatment": {"units": ["A0001", "A0002"], "start": "2020Q1"},
        "outcomes": [{"column": "outcome", "primary": True}],
    }
    base.update(overrides)
    return base


def write_pilot(folder: Path, spec: dict[str, Any], data: pd.DataFrame | str | None) -> Path:
    """Write pilot.yaml (and the data file, a DataFrame or raw text) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pilot.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    if isinstance(data, pd.DataFrame):
        data.to_csv(folder / spec["data"]["path"], index=False)
    elif isinstance(data, str):
        (folder / spec["data"]["path"]).write_text(data, encoding="utf-8")
    return path
