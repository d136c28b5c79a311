"""The ``pilotlab power`` command (attach to the CLI group with ``cli.add_command(power)``).

Kept in its own module so the main ``cli.py`` stays a list of thin commands; like every command it
turns a :class:`~pilotlab.exceptions.PilotlabError` into one message and exit code 1, and writes
nothing unless the whole run succeeds.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import click

from pilotlab.exceptions import PilotlabError, PilotlabWarning

__all__ = ["parse_int_list", "power"]


def parse_int_list(value: str | None, option: str) -> list[int] | None:
    """``"3,6,12"`` -> ``[3, 6, 12]``; a malformed list is a usage error naming the option."""
    if value is None:
        return None
    try:
        out = [int(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise click.BadParameter(
            f"found {value!r}; give whole numbers separated by commas, e.g. 3,6,12",
            param_hint=option,
        ) from None
    if not out or any(v < 1 for v in out):
        raise click.BadParameter(
            f"found {value!r}; give positive whole numbers, e.g. 3,6,12", param_hint=option
        )
    return list(dict.fromkeys(out))


class _Progress:
    """Drive a click progress bar from ``run_power``'s ``progress(done, total)`` callback."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(
                length=total, label="Simulating placebo pilots", file=sys.stderr
            )
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@click.command()
@click.argument("pilot", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: out/<pilot id>/power beside the pilot file).",
)
@click.option("--treated", default=None, help="Numbers of treated units to compare, e.g. 3,6,12.")
@click.option("--post", default=None, help="Post-period lengths to compare, e.g. 4,8,12.")
@click.option(
    "--simulations",
    type=click.IntRange(min=20),
    default=None,
    help="Placebo pilots per design (default: design.power.simulations).",
)
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Worker processes.")
def power(
    pilot: Path,
    out: Path | None,
    treated: str | None,
    post: str | None,
    simulations: int | None,
    jobs: int | None,
) -> None:
    """Power and minimum detectable effect of PILOT, from placebo pilots in its history.

    Writes power.json and power.html into the output folder.
    """
    treated_list = parse_int_list(treated, "--treated")
    post_list = parse_int_list(post, "--post")
    progress = _Progress()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PilotlabWarning)  # surfaced in the report instead
            from pilotlab.power import run_power, write_power_report
            from pilotlab.spec import load_pilot

            spec = load_pilot(pilot)
            try:
                result = run_power(
                    spec,
                    treated=treated_list,
                    post=post_list,
                    progress=progress,
                    simulations=simulations,
                    n_jobs=jobs,
                )
            finally:
                progress.close()
            target = (out or spec.base_dir / "out" / spec.id / "power").resolve()
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".pilotlab-power-", dir=target.parent))
            try:
                write_power_report(result, tmp)
                target.mkdir(parents=True, exist_ok=True)
                for item in tmp.iterdir():
                    os.replace(item, target / item.name)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except PilotlabError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    mde = "not reached" if result.mde is None else f"{result.mde:.4g}"
    click.echo(
        f"{result.outcome_label}: MDE at {result.target_power:.0%} power = {mde} "
        f"({result.n_treated} treated, {result.post_periods} periods after; "
        f"{result.estimator}, {result.inference}); false-positive rate at zero effect "
        f"{result.false_positive_rate:.1%} (nominal {result.alpha:.0%})."
    )
    if result.analytic is not None:
        click.echo(f"Analytic approximation (serial correlation): MDE = {result.analytic.mde:.4g}.")
    for c in result.tradeoff:
        m = "not reached" if c.mde is None else f"{c.mde:.4g}"
        click.echo(f"  treated {c.n_treated:>4}, post {c.post_periods:>3}: MDE {m}")
    click.echo(f"Power report written to {target / 'power.html'}")
