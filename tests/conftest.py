"""Shared fixtures: the CLI runner and the golden-snapshot switch (helpers live in tests.support)."""

from __future__ import annotations

import os
import sys

import pytest
from click.testing import CliRunner


def _compile_each_module_once() -> None:
    """Keep compiled modules for the run even when the environment asks Python not to write them.

    With ``PYTHONDONTWRITEBYTECODE`` set, every xdist worker and every ``pilotlab`` subprocess
    the tests start would compile pilotlab, and re-write the test modules' asserts, from source
    again. The compiled files go to ``__pycache__`` beside the sources, which git ignores. The
    workers and subprocesses inherit the environment changed here.
    """
    sys.dont_write_bytecode = False
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


_compile_each_module_once()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked ``heavy`` first (in their order), so that with ``-n`` no long test starts
    last while the other workers sit idle."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


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
