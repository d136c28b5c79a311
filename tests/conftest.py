"""Shared fixtures: the CLI runner and the golden-snapshot switch (helpers live in tests.support)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner


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
        help="rewrite tests/report/golden snapshot files (review the diff before committing)",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was asked to rewrite golden files."""
    return bool(request.config.getoption("--update-golden"))
