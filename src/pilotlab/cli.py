"""The ``pilotlab`` command line: a thin layer over the Python API.

A :class:`~pilotlab.exceptions.PilotlabError` (a mistake in the pilot file, the data or a registry
request) becomes one clear message on stderr and exit code 1, never a traceback; usage errors exit 2.
Outputs are written to a temporary folder first and moved into place only when complete.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click

from pilotlab import __version__
from pilotlab.exceptions import PilotlabError, PilotlabWarning

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(func: F) -> F:
    """Turn PilotlabError into a clear message and exit code 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PilotlabWarning)  # surfaced in reports instead
                return func(*args, **kwargs)
        except PilotlabError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@contextmanager
def staged_output(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success move its files into ``out_dir`` (no partial outputs)."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pilotlab-", dir=out_dir.parent))
    try:
        yield tmp
        out_dir.mkdir(parents=True, exist_ok=True)
        for item in tmp.iterdir():
            target = out_dir / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pilotlab")
def cli() -> None:
    """Evaluate test-and-learn pilots: declare, register, estimate, report."""


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing pilot.yaml.")
@_friendly
def init(directory: Path, force: bool) -> None:
    """Scaffold a commented pilot.yaml and example data in DIRECTORY."""
    from pilotlab.simulate import make_pilot_panel

    target = directory / "pilot.yaml"
    if target.exists() and not force:
        raise PilotlabError(
            f"{target} already exists; choose another folder or pass --force to overwrite it"
        )
    sim = make_pilot_panel(60, 16, 4, 10, effect=-0.4, seed=1, outcome="claimant_rate")
    data = sim.data.drop(columns="true_effect")
    data["claimant_rate"] = (data["claimant_rate"] / 3).round(3)
    template = (
        resources.files("pilotlab").joinpath("scaffold/pilot.yaml").read_text(encoding="utf-8")
    )
    text = template.replace("__TREATED__", ", ".join(sim.treated_units)).replace(
        "__START__", sim.start
    )
    with staged_output(directory) as tmp:
        (tmp / "data").mkdir()
        data.to_csv(tmp / "data" / "panel.csv", index=False)
        (tmp / "pilot.yaml").write_text(text, encoding="utf-8")
    click.echo(
        f"Created {target} and {directory / 'data' / 'panel.csv'} (example data: replace with yours)."
    )
    click.echo(
        f"Next: pilotlab validate {target}  then  pilotlab run {target} -o {directory / 'out'}"
    )


@cli.command()
@click.argument("pilot", type=click.Path(path_type=Path))
@_friendly
def validate(pilot: Path) -> None:
    """Check PILOT (the pilot file and its data); list every problem at once."""
    from pilotlab.data import load_panel
    from pilotlab.engine import choose_estimator, choose_inference
    from pilotlab.spec import load_pilot

    spec = load_pilot(pilot)
    panel = load_panel(spec)
    est = choose_estimator(panel, spec.design.estimator)
    inf = choose_inference(panel, est.name, spec.design.inference.method)
    click.echo(f"{pilot}: valid.")
    click.echo(
        f"  {panel.n_units} units ({panel.n_treated_units} treated), {panel.n_periods} periods "
        f"{panel.period_labels[0]} to {panel.period_labels[-1]}, {panel.nobs} rows."
    )
    click.echo(f"  Estimator: {est.name}. Inference: {inf.name}.")
    for m in panel.missing:
        if m.n_missing:
            click.echo(f"  {m.sentence()}")


def write_outputs(evaluation: Any, out: Path) -> list[str]:
    """Write evidence.json, the tables as CSV and report.html into ``out``; return the file names."""
    from pilotlab.evidence import evidence_record, to_json
    from pilotlab.report import render_report

    record = evidence_record(evaluation)
    (out / "evidence.json").write_text(to_json(record) + "\n", encoding="utf-8")
    evaluation.tidy().to_csv(out / "estimates.csv", index=False)
    render_report(evaluation, out / "report.html")
    return sorted(p.name for p in out.iterdir())


@cli.command()
@click.argument("pilot", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: out/<pilot id> beside the pilot file).",
)
@_friendly
def run(pilot: Path, out: Path | None) -> None:
    """Estimate PILOT's effects; write report.html, evidence.json and tables as CSV."""
    from pilotlab.engine import evaluate
    from pilotlab.spec import load_pilot

    spec = load_pilot(pilot)
    out = out or spec.base_dir / "out" / spec.id
    command = "pilotlab run " + " ".join(shlex.quote(a) for a in [str(pilot), "-o", str(out)])
    evaluation = evaluate(spec, command=command)
    with staged_output(out) as tmp:
        write_outputs(evaluation, tmp)
    for o in evaluation.outcomes:
        r = o.result
        click.echo(
            f"{o.label}: {r.estimate:.4g} ({round((1 - r.alpha) * 100)}% CI {r.ci_lower:.4g} "
            f"to {r.ci_upper:.4g}; p = {r.p_value:.3g}) [{r.estimator}, {r.inference}]"
        )
    click.echo(f"Report written to {out / 'report.html'}")


@cli.command()
@click.option("--indent", default=2, show_default=True, help="JSON indentation.")
def schema(indent: int) -> None:
    """Print the JSON Schema of the pilot file (for editor autocompletion)."""
    from pilotlab.spec import PilotSpec

    doc = PilotSpec.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "pilotlab pilot file"
    click.echo(json.dumps(doc, indent=indent))


def main() -> None:
    """Entry point of the ``pilotlab`` script."""
    cli(prog_name="pilotlab")


if __name__ == "__main__":  # pragma: no cover
    main()
