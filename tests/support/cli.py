"""The command line run in the test process, held to what a user's terminal would show."""

from __future__ import annotations

import contextlib
import os
import traceback
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from pilotlab.cli import cli


@dataclass(frozen=True)
class Done:
    """What a finished command left: its exit code and its two output streams."""

    returncode: int
    stdout: str
    stderr: str


def run_in_process(args: list[str], env: dict[str, str], cwd: Path) -> Done:
    """``pilotlab ARGS`` with ``env`` as the only ``PILOTLAB_`` variables and ``cwd`` as the
    working folder, as a subprocess given the same would see them.

    An exception the command did not turn into a message fails the test at once: a user would
    have seen a traceback.
    """
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PILOTLAB_")}
    with contextlib.chdir(cwd):
        r = CliRunner().invoke(cli, args, env={**unset, **env})
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        trace = "".join(traceback.format_exception(r.exception))
        raise AssertionError(f"pilotlab {' '.join(args)} raised:\n{trace}")
    return Done(r.exit_code, r.stdout, r.stderr)
