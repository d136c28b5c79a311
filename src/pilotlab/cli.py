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
from contextlib import contextmanager, nullcontext
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


_REGISTRY_OPTION = click.option(
    "--registry",
    "registry_url",
    metavar="URL",
    default=None,
    help="Registry database URL (default: $PILOTLAB_REGISTRY_URL, else .pilotlab/registry.db).",
)


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
    planned = spec.treatment.form == "planned"  # no treatment yet: the data are history
    panel = load_panel(spec, history=planned)
    if planned:
        click.echo(f"{pilot}: valid (a planned pilot: the data hold its history).")
        click.echo(
            f"  {panel.n_units} units, {panel.n_periods} periods {panel.period_labels[0]} to "
            f"{panel.period_labels[-1]}, {panel.nobs} rows."
        )
        click.echo(f"  Plan its power with: pilotlab power {pilot}")
        return
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


def write_outputs(
    evaluation: Any, out: Path, template_dir: Path | None = None, org_name: str | None = None
) -> dict[str, Any]:
    """Write evidence.json, report.html and every table as CSV into ``out``; return the record."""
    from pilotlab.evidence import evidence_record, to_json
    from pilotlab.report import render_report

    record = evidence_record(evaluation)
    (out / "evidence.json").write_text(to_json(record) + "\n", encoding="utf-8")
    evaluation.tidy().to_csv(
        out / "results.csv", index=False
    )  # full precision, one row per outcome
    render_report(evaluation, out / "report.html", template_dir, org_name=org_name)
    return record


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
@click.option(
    "--templates",
    "template_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of report templates overriding pilotlab's (your logo, colours).",
)
@click.option("--org", "org_name", default=None, help="Organisation named in the report masthead.")
@_REGISTRY_OPTION
@_friendly
def run(
    pilot: Path,
    out: Path | None,
    template_dir: Path | None,
    org_name: str | None,
    registry_url: str | None,
) -> None:
    """Estimate PILOT's effects; write report.html, evidence.json and tables as CSV.

    If the pilot is registered, the report shows whether the analysis plan matches the
    registered one, and the run is recorded in the registry (only once every output is written).
    """
    from datetime import UTC, datetime

    from pilotlab.engine import evaluate
    from pilotlab.registry.service import open_existing
    from pilotlab.spec import load_pilot

    started = datetime.now(UTC)
    spec = load_pilot(pilot)
    out = out or spec.base_dir / "out" / spec.id
    command = "pilotlab run " + " ".join(shlex.quote(a) for a in [str(pilot), "-o", str(out)])
    registry = open_existing(registry_url)
    with registry if registry is not None else nullcontext(), staged_output(out) as tmp:
        plan = registry.plan_status(spec).to_plan_info() if registry else None
        evaluation = evaluate(spec, plan=plan, command=command)
        record = write_outputs(evaluation, tmp, template_dir, org_name)
        if registry is not None and plan is not None and plan.registered:
            registry.record_run(
                spec,
                record,
                evaluation.data.sha256,
                record["software"],
                started_at=started,
                finished_at=datetime.now(UTC),
            )
    for o in evaluation.outcomes:
        click.echo(_result_line(o))
    if plan is not None and plan.registered:
        match = "matches" if plan.matches_registered else "does NOT match"
        click.echo(
            f"Run recorded in the registry; the plan {match} registered version {plan.version}."
        )
    click.echo(f"Report written to {out / 'report.html'}")


@cli.command()
@click.argument("evidence", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("portfolio.html"),
    show_default=True,
    help="The portfolio page to write.",
)
@_REGISTRY_OPTION
@_friendly
def portfolio(evidence: tuple[Path, ...], out: Path, registry_url: str | None) -> None:
    """Write a portfolio page across pilots from EVIDENCE files (evidence.json or their folders),
    or from the registry when none are given."""
    from pilotlab.registry.service import open_existing
    from pilotlab.report import portfolio_from_paths, render_portfolio

    if evidence:
        records = portfolio_from_paths(evidence)
    else:
        registry = open_existing(registry_url)
        if registry is None:
            raise PilotlabError(
                "no registry found (.pilotlab/registry.db) and no evidence files given; pass "
                "evidence.json files or folders, or --registry URL"
            )
        with registry:
            records = registry.portfolio_records()
        if not records:
            raise PilotlabError(
                "the registry holds no recorded runs yet; run `pilotlab run` on a registered pilot first"
            )
    with staged_output(out.parent) as tmp:
        render_portfolio(records, tmp / out.name)
    click.echo(f"Portfolio of {len(records)} pilot(s) written to {out}")


def _result_line(o: Any) -> str:
    """One outcome's result for the terminal, at the outcome's scale (as in the report)."""
    from pilotlab.report.build import outcome_decimals
    from pilotlab.report.format import MINUS, fmt_ci, fmt_num, fmt_p

    r, d = o.result, outcome_decimals(o)
    p = fmt_p(r.p_value)
    line = (
        f"{o.label}: {fmt_num(r.estimate, d)} ({round((1 - r.alpha) * 100)}% CI "
        f"{fmt_ci(r.ci_lower, r.ci_upper, d)}; p {'<' if p.startswith('<') else '='} "
        f"{p.lstrip('<')}) [{r.estimator}, {r.inference}]"
    )
    return line.replace(MINUS, "-")


def _int_list(value: str | None, option: str) -> list[int] | None:
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


class _ProgressBar:
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


@cli.command()
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
@_friendly
def power(
    pilot: Path,
    out: Path | None,
    treated: str | None,
    post: str | None,
    simulations: int | None,
    jobs: int | None,
) -> None:
    """Power and minimum detectable effect of PILOT, from placebo pilots in its history.

    Writes power.json and power.html. Works for a planned pilot whose data hold only history.
    """
    from pilotlab.power import run_power, write_power_report
    from pilotlab.spec import load_pilot

    treated_list = _int_list(treated, "--treated")
    post_list = _int_list(post, "--post")
    spec = load_pilot(pilot)
    bar = _ProgressBar()
    try:
        result = run_power(
            spec,
            treated=treated_list,
            post=post_list,
            progress=bar,
            simulations=simulations,
            n_jobs=jobs,
        )
    finally:
        bar.close()
    out = out or spec.base_dir / "out" / spec.id / "power"
    with staged_output(out) as tmp:
        write_power_report(result, tmp)
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
    for note in result.notes:
        click.echo(f"Note: {note}")
    click.echo(f"Power report written to {out / 'power.html'}")


@cli.command()
@click.option("--indent", default=2, show_default=True, help="JSON indentation.")
def schema(indent: int) -> None:
    """Print the JSON Schema of the pilot file (for editor autocompletion)."""
    from pilotlab.spec import PilotSpec

    doc = PilotSpec.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "pilotlab pilot file"
    click.echo(json.dumps(doc, indent=indent))


# ---------------------------------------------------------------------- registry commands


@cli.command()
@click.argument("pilot", type=click.Path(path_type=Path))
@_REGISTRY_OPTION
@_friendly
def register(pilot: Path, registry_url: str | None) -> None:
    """Register PILOT and pre-register its analysis plan (version 1)."""
    from pilotlab.registry import service

    click.echo(service.register_pilot(pilot, registry_url))


@cli.command()
@click.argument("pilot", type=click.Path(path_type=Path))
@click.option("--reason", required=True, help="Why the analysis plan changed.")
@click.option("--data-seen", is_flag=True, help="Outcome data had been seen before the change.")
@_REGISTRY_OPTION
@_friendly
def amend(pilot: Path, reason: str, data_seen: bool, registry_url: str | None) -> None:
    """Register a new version of PILOT's analysis plan (if it changed)."""
    from pilotlab.registry import service

    click.echo(service.amend_pilot(pilot, reason, data_seen, registry_url))


@cli.command("list")
@_REGISTRY_OPTION
@_friendly
def list_(registry_url: str | None) -> None:
    """List registered pilots."""
    from pilotlab.registry import service

    click.echo(service.list_pilots(registry_url))


@cli.command()
@click.argument("pilot_id")
@_REGISTRY_OPTION
@_friendly
def show(pilot_id: str, registry_url: str | None) -> None:
    """Show PILOT_ID's registration, plan versions, runs and status changes."""
    from pilotlab.registry import service

    click.echo(service.show_pilot(pilot_id, registry_url))


@cli.command()
@click.argument("pilot_id")
@click.argument("new_status", metavar="STATUS")
@_REGISTRY_OPTION
@_friendly
def status(pilot_id: str, new_status: str, registry_url: str | None) -> None:
    """Set PILOT_ID's STATUS: planned, live, completed or withdrawn."""
    from pilotlab.registry import service

    click.echo(service.set_status(pilot_id, new_status, registry_url))


@cli.command("export")
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for evidence.jsonl and evidence.csv.",
)
@_REGISTRY_OPTION
@_friendly
def export_(out: Path, registry_url: str | None) -> None:
    """Export the latest evidence record of every pilot (JSON lines and a flat CSV)."""
    from pilotlab.registry import service

    click.echo(service.export_records(out, registry_url))


@cli.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@_REGISTRY_OPTION
@_friendly
def import_(file: Path, registry_url: str | None) -> None:
    """Import evidence records exported by another registry, keeping their provenance."""
    from pilotlab.registry import service

    click.echo(service.import_file(file, registry_url))


@cli.command()
@_REGISTRY_OPTION
@_friendly
def verify(registry_url: str | None) -> None:
    """Recompute the registry's hashes; exit 1 if any row was changed outside pilotlab."""
    from pilotlab.registry import service

    ok, message = service.verify_registry(registry_url)
    click.echo(message, err=not ok)
    if not ok:
        sys.exit(1)


def main() -> None:
    """Entry point of the ``pilotlab`` script."""
    cli(prog_name="pilotlab")


if __name__ == "__main__":  # pragma: no cover
    main()
