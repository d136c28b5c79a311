"""Shared fixtures: reference data location, pilot-file builders, CLI runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
# Published reference datasets shipped with the tests (sources and licences: tests/data/README.md).
SHARED_DATA = Path(__file__).resolve().parent / "data"


def shared_data(name: str) -> Path:
    """Path of a reference dataset in tests/data; a missing file fails the test (never skips)."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.fail(f"reference data {path} is missing; it ships with the repository (tests/data)")
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


@pytest.fixture
def runner() -> CliRunner:
    """Click's test runner."""
    return CliRunner()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-golden``: rewrite the golden snapshot files instead of comparing with them."""
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden snapshot files (review the diff before committing)",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was asked to rewrite golden files."""
    return bool(request.config.getoption("--update-golden"))
