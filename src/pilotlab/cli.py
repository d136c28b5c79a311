"""The ``pilotlab`` command line: a thin layer over the Python API.

A :class:`~pilotlab.exceptions.PilotlabError` (a mistake in the pilot file, the data or a registry
request) becomes one clear message on stderr and exit code 1, never a traceback; usage errors exit 2.
Outputs are written to a temporary folder first and moved into place only when complete.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from functools import wraps
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pilotlab import __version__
from pilotlab.exceptions import Notice, PilotlabError, PilotlabWarning, notice

if TYPE_CHECKING:
    from pilotlab.power.result import PowerResult

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


def _write_scaffold(directory: Path, files: dict[str, str]) -> None:
    """Write each of ``files`` (relative path -> text) into ``directory`` atomically, leaving
    everything else in the folder alone."""
    try:
        for rel, text in files.items():
            target = directory / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                    fh.write(text)
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise PilotlabError(
            f"DIRECTORY: cannot write '{directory}' ({exc.strerror or exc}); choose a folder you "
            "can write to"
        ) from None


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing pilot.yaml and data/panel.csv.")
@_friendly
def init(directory: Path, force: bool) -> None:
    """Scaffold a commented pilot.yaml and example data in DIRECTORY."""
    from pilotlab.outputs import refuse_file_on_path
    from pilotlab.simulate import make_pilot_panel

    # a file on the way: a message, not a usage error
    refuse_file_on_path(
        directory, "DIRECTORY", "folder", "choose another folder (a new or empty one)"
    )
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
    panel_csv = directory / "data" / "panel.csv"
    if panel_csv.exists() and not force:
        raise PilotlabError(
            f"{panel_csv} already exists; choose another folder or pass --force to overwrite it"
        )
    _write_scaffold(directory, {"pilot.yaml": text, "data/panel.csv": data.to_csv(index=False)})
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
    from pilotlab.engine import check_design
    from pilotlab.spec import load_pilot

    spec = load_pilot(pilot)
    # no treatment yet and no allocation to take it from: the data are history
    planned = spec.treatment.form == "planned" and spec.assignment is None
    panel = load_panel(spec, history=planned)
    if planned:
        click.echo(f"{pilot}: valid (a planned pilot: the data hold its history).")
        click.echo(
            f"  {panel.n_units} units, {panel.n_periods} periods {panel.period_labels[0]} to "
            f"{panel.period_labels[-1]}, {panel.nobs} rows."
        )
        click.echo(f"  Plan its power with: pilotlab power {pilot}")
        return
    est, inf = check_design(spec, panel)  # fits each outcome once, as run would
    from pilotlab.data.dates import registration_date_notes
    from pilotlab.data.load import first_treated_label

    for note in registration_date_notes(spec, panel.period_labels, first_treated_label(panel)):
        _echo_warning(notice("registration-date", note))
    click.echo(f"{pilot}: valid.")
    click.echo(
        f"  {panel.n_units} units ({panel.n_treated_units} treated), {panel.n_periods} periods "
        f"{panel.period_labels[0]} to {panel.period_labels[-1]}, "
        + (
            f"{panel.nobs} rows."
            if panel.micro is None
            else f"{panel.micro.rows:,} person rows in {panel.nobs:,} area-period cells."
        )
    )
    click.echo(f"  Estimator: {est.name}. Inference: {inf.name}.")
    for m in panel.missing:
        if m.n_missing:
            click.echo(f"  {m.sentence()}")


_SCHEDULER_OPTION = click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Run randomisation inference and power simulations on the Dask scheduler at ADDRESS "
    "(tcp://host:8786; local:N for a local cluster of N worker processes); default: "
    "$PILOTLAB_DASK_SCHEDULER, else this machine's cores. Results do not depend on it.",
)


@cli.command()
@click.argument("pilot", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(path_type=Path),  # a file here is refused with a clear Error: message
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
@_SCHEDULER_OPTION
@click.option("-q", "--quiet", is_flag=True, help="No stages or checks on stderr.")
@_friendly
def run(
    pilot: Path,
    out: Path | None,
    template_dir: Path | None,
    org_name: str | None,
    registry_url: str | None,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Estimate PILOT's effects; write report.html, evidence.json and tables as CSV.

    If the pilot is registered, the report shows whether the analysis plan matches the
    registered one, and the run is recorded in the registry (only once every output is written).
    Each stage and robustness check is shown on stderr as it starts and finishes, on a terminal
    (not with --quiet; PILOTLAB_PROGRESS=1 or 0 forces it on or off).
    """
    bar = _ProgressBar(_progress_wanted(quiet))
    bar.stage(f"Reading the pilot file {pilot}")  # before the imports: the first sign of life
    from pilotlab.engine import run_pilot
    from pilotlab.parallel import use_scheduler

    with use_scheduler(scheduler):  # connects first: an unreachable scheduler writes nothing
        done = run_pilot(
            pilot,
            out,
            registry=registry_url,
            template_dir=template_dir,
            org_name=org_name,
            progress=_timed(bar.stage),
            option="-o/--output",
        )
    evaluation, plan = done.evaluation, done.plan
    spec = evaluation.pilot
    _warn_dates(spec, evaluation)
    for o in evaluation.outcomes:
        click.echo(_result_line(o))
    if done.recorded:
        match = "matches" if plan.matches_registered else "does NOT match"
        click.echo(
            f"Run recorded in the registry; the plan {match} registered version {plan.version}."
        )
        if plan.matches_registered is False:
            _warn_unregistered(plan, pilot)
    click.echo(f"Report written to {done.output_dir / 'report.html'}")


def _warn_dates(spec: Any, evaluation: Any) -> None:
    """Registration dates that disagree with the first treated period (also in the report)."""
    from pilotlab.data.dates import registration_date_notes

    data = evaluation.data
    order = {label: i for i, label in enumerate(data.period_labels)}
    starts = sorted(set(data.adoption.values()), key=lambda label: order.get(label, len(order)))
    first = starts[0] if starts else None
    for note in registration_date_notes(spec, data.period_labels, first):
        _echo_warning(notice("registration-date", note))


def _warn_unregistered(plan: Any, pilot: Path) -> None:
    """Name on stderr the plan keys analysed differently from the registered plan."""
    keys = ", ".join(plan.changed_keys) or "(keys not available)"
    _echo_warning(
        notice(
            "unregistered-deviation",
            f"unregistered deviation from registered plan version {plan.version}: "
            f"{keys}. The report lists each change with its registered and analysed value. "
            f'Register the change with `pilotlab amend {pilot} --reason "..."` (add --data-seen '
            "if outcome data had been seen), or restore the registered plan.",
        )
    )


def _echo_warning(item: Notice) -> None:
    """A warning on stderr, with its code at the end (as in the evidence record)."""
    click.echo(f"Warning: {item.message} [{item.code}]", err=True)


@cli.command()
@click.argument("evidence", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(path_type=Path),  # a folder here is refused with a clear Error: message
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

    if out.is_dir():
        raise PilotlabError(
            f"-o/--output: '{out}' is a folder; give the file name of the portfolio page, "
            f"e.g. {out / 'portfolio.html'}"
        )
    from pilotlab.report import portfolio_from_paths

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
    from pilotlab.outputs import write_output_files
    from pilotlab.report.build import csv_name
    from pilotlab.report.portfolio import build_portfolio
    from pilotlab.report.render import render_html, table_csv

    folder = Path(os.path.abspath(out.parent))
    doc = build_portfolio(records, folder.resolve())
    files = {out.name: render_html(doc, "portfolio.html.j2")}
    files |= {f"tables/{csv_name(t)}": table_csv(t) for t in doc.tables()}
    write_output_files(folder, files)
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


def _progress_wanted(quiet: bool) -> bool:
    """Progress on stderr: on a terminal unless ``--quiet``; ``PILOTLAB_PROGRESS=1`` forces it
    (logs, tests) and ``PILOTLAB_PROGRESS=0`` turns it off."""
    if quiet:
        return False
    forced = os.environ.get("PILOTLAB_PROGRESS", "").strip().lower()
    if forced in ("1", "true", "yes", "always"):
        return True
    if forced in ("0", "false", "no", "never"):
        return False
    return click.get_text_stream("stderr").isatty()


class _ProgressBar:
    """Stages and a progress bar on stderr, driven by ``run_power``'s ``stage(message)`` and
    ``progress(done, total)`` callbacks; silent when disabled."""

    WIDTH = 28

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.label = "Simulating placebo pilots"
        self.done = 0
        self.total = 0
        self.started = 0.0
        self.last = -1.0
        self.open = False

    def stage(self, message: str) -> None:
        """Print a stage as it starts (``message ...``); a message ending in a full stop says
        that a step has finished and is printed as it is."""
        if not self.enabled:
            return
        if self.open:  # a new design of the trade-off grid: keep the bar, change its label
            self._finish_line()
        click.echo(message if message.endswith(".") else f"{message} ...", err=True)

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        import time

        now = time.monotonic()
        if not self.open:
            self.open, self.started = True, now
        self.done, self.total = done, total
        if done >= total or now - self.last >= 0.1:  # at most ten redraws a second
            self.last = now
            filled = int(self.WIDTH * done / total) if total else self.WIDTH
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            click.echo(
                f"\r  [{bar}] {done}/{total} placebo pilots, {now - self.started:.0f} s",
                err=True,
                nl=False,
            )

    def _finish_line(self) -> None:
        click.echo("", err=True)
        self.open = False

    def close(self) -> None:
        if self.enabled and self.open:
            self._finish_line()


def _timed(stage: Callable[[str], None]) -> Callable[[str], None]:
    """Wrap a ``stage(message)`` callback so that a finished step (a message ending in a full
    stop, e.g. ``"Robustness check leave_one_out finished."``) states the seconds it took since
    the same step started."""
    import time

    started: dict[str, float] = {}

    def report(message: str) -> None:
        now = time.monotonic()
        if message.endswith("."):
            t0 = started.pop(message.removesuffix(" finished.").removesuffix("."), None)
            if t0 is not None:
                message = f"{message[:-1]} in {now - t0:.1f} s."
        else:
            started[message] = now
        stage(message)

    return report


@cli.command()
@click.argument("pilot", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(path_type=Path),  # a file here is refused with a clear Error: message
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
@click.option(
    "--conditional-on-units",
    "conditional",
    is_flag=True,
    default=None,
    help="Keep the named treated units in every placebo pilot: power conditional on their own "
    "history, not the design's power (default: draw the units at random).",
)
@click.option(
    "--time-budget",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds a design may take when every placebo pilot must be refitted (no fast path): "
    "fewer placebo pilots are run beyond it, with their Monte Carlo error stated; 0: no limit.",
)
@_SCHEDULER_OPTION
@click.option("-q", "--quiet", is_flag=True, help="No stages or progress bar on stderr.")
@_friendly
def power(
    pilot: Path,
    out: Path | None,
    treated: str | None,
    post: str | None,
    simulations: int | None,
    jobs: int | None,
    conditional: bool | None,
    time_budget: float,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Power and minimum detectable effect of PILOT, from placebo pilots in its history.

    Writes power.json and power.html. Works for a planned pilot whose data hold only history.
    Stages and a progress bar go to stderr on a terminal (not with --quiet).
    """
    bar = _ProgressBar(_progress_wanted(quiet))
    bar.stage(f"Reading {pilot}")
    from pilotlab.engine import run_power, write_power_report
    from pilotlab.outputs import check_output_folder
    from pilotlab.report.format import fmt_sig
    from pilotlab.spec import load_pilot

    treated_list = _int_list(treated, "--treated")
    post_list = _int_list(post, "--post")
    spec = load_pilot(pilot)
    out = out or spec.base_dir / "out" / spec.id / "power"
    check_output_folder(out)  # refuse a folder pilotlab may not write before the simulations
    from pilotlab.parallel import use_scheduler

    try:
        with use_scheduler(scheduler):
            result = run_power(
                spec,
                treated=treated_list,
                post=post_list,
                progress=bar,
                simulations=simulations,
                n_jobs=jobs,
                conditional=conditional or None,
                stage=bar.stage,
                time_budget=time_budget or None,
            )
    finally:
        bar.close()
    bar.stage("Writing the power report")
    write_power_report(result, out, option="-o/--output")
    if result.over_rejects:
        mde = "not claimed (the test over-rejects)"
    else:
        mde = "not reached" if result.mde is None else fmt_sig(result.mde)
    lo, hi = result.false_positive_interval
    what = (
        "Power conditional on the named units (not the design's power): MDE"
        if result.assignment == "conditional"
        else "MDE"
    )
    if result.rollout:  # a stepped roll-out: the headline in words, then how many it treats
        _echo_stepped_headline(result, mde)
    else:
        click.echo(
            f"{result.outcome_label}: {what} at {result.target_power:.0%} power = {mde} "
            f"({result.n_treated} treated, {result.post_periods} periods after; "
            f"{result.estimator}, {result.inference}); false-positive rate at zero effect "
            f"{result.false_positive_rate:.1%} (95% interval {lo:.1%} to {hi:.1%}; nominal "
            f"{result.alpha:.0%}). {result.elapsed_seconds:.1f} s."
        )
    _echo_power_rest(result, out)


def _echo_stepped_headline(result: PowerResult, mde: str) -> None:
    """The headline of a stepped roll-out's power in plain words, jargon explained."""
    lo, hi = result.false_positive_interval
    from pilotlab.report.text import plural, plural_word

    if result.mde is not None and not result.over_rejects:
        finding = (
            f"an effect of {mde} or larger would be detected with {result.target_power:.0%} "
            "probability (the minimum detectable effect)"
        )
    else:
        finding = f"the minimum detectable effect is {mde}"
    treated = plural(result.n_treated, result.unit_label, plural_word(result.unit_label))
    click.echo(
        f"{result.outcome_label}: with {treated} treated and "
        f"{plural(result.post_periods, result.period_word)} from the first wave, {finding}. "
        "With no effect at all, the analysis wrongly "
        f"finds one in {result.false_positive_rate:.1%} of simulated roll-outs (95% interval "
        f"{lo:.1%} to {hi:.1%}; it should be close to {result.alpha:.0%}). Analysis: "
        f"{result.estimator}, {result.inference} inference. {result.elapsed_seconds:.1f} s."
    )
    click.echo(result.rollout)


def _echo_power_rest(result: PowerResult, out: Path) -> None:
    from pilotlab.report.format import fmt_sig

    if result.analytic is not None:
        click.echo(
            f"Analytic approximation (serial correlation): MDE = {fmt_sig(result.analytic.mde)}."
        )
    for c in result.tradeoff:
        if c.over_rejects:
            m = "not claimed (the test over-rejects)"
        else:
            m = "not reached" if c.mde is None else fmt_sig(c.mde)
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


#: When ``design.estimator: auto`` picks an estimator, in plain words (the catalogue's roles).
_AUTO_WORDS = {
    "few_treated": "one to three treated units with a long history before the start",
    "staggered": "a staggered roll-out (treated units starting at different times)",
    "two_periods": "two periods, one before and one after the start",
    "common_start": "several periods and one common start",
}
_LAYOUT_WORDS = {
    "panel": "panel",
    "repeated_cross_section": "repeated cross-section",
    "microdata": "person-level microdata",
}


def _estimator_facts(entry: Any) -> dict[str, Any]:
    """What ``pilotlab estimators`` says about one estimator, as plain data."""
    from pilotlab.engine import inference_methods

    caps = entry.capabilities
    return {
        "name": entry.name,
        "title": entry.title,
        "description": entry.description,
        "inference": list(inference_methods(entry)),
        "layouts": list(caps.layouts),
        "staggered": caps.staggered,
        "event_times": caps.event_times,
        "synthetic": caps.synthetic,
        "covariates": caps.covariates,
        "linear": caps.linear,
        "closed_form_permutation": caps.closed_form_permutation,
        "twfe_coefficient": caps.twfe_coefficient,
        "auto": caps.auto,
        "options": sorted(entry.options.model_fields) if entry.options is not None else None,
    }


def _estimator_lines(facts: dict[str, Any]) -> list[str]:
    """One estimator for the terminal, in plain words."""
    from pilotlab.report.text import INFERENCE_NAMES

    methods = "; ".join(f"{m}: {INFERENCE_NAMES.get(m, m)}" for m in facts["inference"])
    layouts = " or ".join(_LAYOUT_WORDS.get(lay, lay) for lay in facts["layouts"])
    can = []
    if facts["staggered"]:
        can.append("staggered roll-outs (units starting at different times)")
    if facts["event_times"]:
        can.append("an effect for each period before and after the start")
    if facts["synthetic"]:
        can.append("a weighted comparison built from donor units (synthetic control family)")
    if facts["covariates"]:
        can.append("covariates (design.covariates)")
    if facts["linear"]:
        can.append("Romano-Wolf adjustment across outcomes and fast power planning")
    lines = [
        f"{facts['name']}: {facts['title']}",
        f"  {facts['description'].rstrip('.')}.",
        f"  Inference (design.inference.method): {methods}.",
        f"  Data (data.layout): {layouts}.",
        "  Handles: " + ("; ".join(can) if can else "one common start, no covariates") + ".",
    ]
    if not facts["staggered"]:
        lines.append("  Not for staggered roll-outs: it assumes one common start.")
    if facts["auto"] is not None:
        lines.append(f"  Chosen by auto for {_AUTO_WORDS.get(facts['auto'], facts['auto'])}.")
    if facts["options"] is not None:
        lines.append(
            f"  Its own options (design.options): {', '.join(facts['options']) or 'none'}."
        )
    return lines


@cli.command("estimators")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@_friendly
def estimators_(as_json: bool) -> None:
    """List the installed estimators: the names design.estimator takes, and what each can do."""
    from pilotlab import catalogue

    facts = [_estimator_facts(e) for e in catalogue.entries().values()]
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(
        f"{len(facts)} estimators are installed. Name one in design.estimator, or write auto "
        "to let pilotlab choose (the report says why)."
    )
    for f in facts:
        click.echo("")
        for line in _estimator_lines(f):
            click.echo(line)


# ---------------------------------------------------------------------- registry commands

_KEY_OPTION = click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File holding the registry's signing key (default: $PILOTLAB_REGISTRY_KEY, if set).",
)


@cli.command()
@click.argument("pilot", type=click.Path(path_type=Path))
@_REGISTRY_OPTION
@_KEY_OPTION
@_friendly
def register(pilot: Path, registry_url: str | None, key_file: Path | None) -> None:
    """Register PILOT and pre-register its analysis plan (version 1)."""
    from pilotlab.registry import service

    click.echo(service.register_pilot(pilot, registry_url, key_file=key_file))


@cli.command()
@click.argument("pilot", type=click.Path(path_type=Path))
@click.option("--reason", required=True, help="Why the analysis plan changed.")
@click.option("--data-seen", is_flag=True, help="Outcome data had been seen before the change.")
@_REGISTRY_OPTION
@_KEY_OPTION
@_friendly
def amend(
    pilot: Path, reason: str, data_seen: bool, registry_url: str | None, key_file: Path | None
) -> None:
    """Register a new version of PILOT's analysis plan (if it changed)."""
    from pilotlab.registry import service

    click.echo(service.amend_pilot(pilot, reason, data_seen, registry_url, key_file))


@cli.command("list")
@click.option(
    "--metric",
    default=None,
    metavar="CODE",
    help="Only pilots with an outcome measuring this framework metric (<framework>/<code> or code).",
)
@_REGISTRY_OPTION
@_friendly
def list_(metric: str | None, registry_url: str | None) -> None:
    """List registered pilots."""
    from pilotlab.registry import service

    click.echo(service.list_pilots(registry_url, metric=metric))


_FRAMEWORKS_OPTION = click.option(
    "--frameworks",
    "framework_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="A programme's own outcome framework file or folder (repeatable; also "
    "$PILOTLAB_FRAMEWORKS).",
)


@cli.command("frameworks")
@_FRAMEWORKS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the frameworks as JSON.")
@_friendly
def frameworks_(framework_paths: tuple[Path, ...], as_json: bool) -> None:
    """List the outcome frameworks and metrics pilotlab knows."""
    from pilotlab.frameworks.listing import frameworks_json, frameworks_text

    text = frameworks_json(framework_paths) if as_json else frameworks_text(framework_paths)
    click.echo(text)


@cli.command("synthesise")
@click.argument("evidence", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--metric",
    required=True,
    metavar="CODE",
    help="The metric to pool (<framework>/<code> or code).",
)
@click.option(
    "--external",
    type=click.Path(path_type=Path),
    default=None,
    help="CSV of external estimates: id, metric, estimate, std_error (or ci_lower, ci_upper), label.",
)
@click.option(
    "--method",
    type=click.Choice(["reml", "dl", "pm"]),
    default="reml",
    show_default=True,
    help="Estimator of the between-place variance: REML, DerSimonian-Laird or Paule-Mandel.",
)
@click.option(
    "--scale",
    type=click.Choice(["units", "percent"]),
    default="units",
    show_default=True,
    help="Pool in outcome units or in percent of each pilot's pre-pilot mean.",
)
@_FRAMEWORKS_OPTION
@click.option(
    "-o", "--output", "out", type=click.Path(path_type=Path), required=True,
    help="Folder to write synthesis.html, synthesis.json and synthesis.csv into.",
)  # fmt: skip
@_REGISTRY_OPTION
@_friendly
def synthesise(
    evidence: tuple[Path, ...],
    metric: str,
    external: Path | None,
    method: str,
    scale: str,
    framework_paths: tuple[Path, ...],
    out: Path,
    registry_url: str | None,
) -> None:
    """Pool the estimates of one metric across pilots (EVIDENCE files, else the registry) and
    published evaluations (--external), by random-effects meta-analysis."""
    from pilotlab.engine.synthesise import run_synthesis
    from pilotlab.report.format import fmt_ci, fmt_sig

    run = run_synthesis(
        metric,
        evidence,
        out=out,
        external=external,
        method=method,  # type: ignore[arg-type]
        scale=scale,  # type: ignore[arg-type]
        frameworks=framework_paths,
        registry_url=registry_url,
    )
    s, p = run.synthesis, run.synthesis.pooled
    click.echo(
        f"Pooled {p.k} estimates of {s.metric} ({s.unit}): {fmt_sig(p.estimate)} "
        f"(95% CI {fmt_ci(p.ci_lower, p.ci_upper, 3)}; Hartung-Knapp "
        f"{fmt_ci(p.hk_ci_lower, p.hk_ci_upper, 3)}); I² {p.i2:.0f}%."
    )
    for note in ([s.few_studies] if s.few_studies else []) + list(s.notes):
        click.echo(f"Warning: {note}", err=True)
    click.echo(f"Written to {run.out_dir}")


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
@_KEY_OPTION
@_friendly
def status(pilot_id: str, new_status: str, registry_url: str | None, key_file: Path | None) -> None:
    """Set PILOT_ID's STATUS: planned, live, completed or withdrawn."""
    from pilotlab.registry import service

    click.echo(service.set_status(pilot_id, new_status, registry_url, key_file))


@cli.command("export")
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(path_type=Path),  # a file here is refused with a clear Error: message
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
@_KEY_OPTION
@click.option(
    "--visibility",
    type=click.Choice(["organisation", "shared", "public"]),
    default=None,
    help="Through an evidence service: who may see the imported records (default: your "
    "organisation only; 'shared' with --share-with).",
)
@click.option(
    "--share-with",
    "share_with",
    multiple=True,
    metavar="ORG",
    help="Through an evidence service: an organisation (short name) that may also see them; "
    "repeat for several. Implies --visibility shared.",
)
@_friendly
def import_(
    file: Path,
    registry_url: str | None,
    key_file: Path | None,
    visibility: str | None,
    share_with: tuple[str, ...],
) -> None:
    """Import evidence records exported by another registry, keeping their provenance.

    Every record is checked first (UTF-8, size, nesting, the evidence JSON Schema, provenance
    types, evidence hash); one bad record and nothing is imported.
    """
    from pilotlab.registry import service

    click.echo(service.import_file(file, registry_url, key_file, visibility, share_with))


@cli.command()
@click.option(
    "--head",
    "published",
    metavar="SEQ:SHA256",
    default=None,
    help="A head published earlier (from `pilotlab head`, a report or an evidence record): "
    "check that the registry still holds exactly the history up to it.",
)
@_REGISTRY_OPTION
@_KEY_OPTION
@_friendly
def verify(published: str | None, registry_url: str | None, key_file: Path | None) -> None:
    """Recompute the registry's hash chain and check every table against it.

    Prints the current head. Exits 1 if anything was changed, deleted or inserted outside
    pilotlab, if a published head (--head) is no longer in the chain, or if a signature fails
    (with the key from --key-file or $PILOTLAB_REGISTRY_KEY).
    """
    from pilotlab.registry import service

    ok, message = service.verify_registry(registry_url, published, key_file)
    click.echo(message, err=not ok)
    if not ok:
        sys.exit(1)


@cli.command()
@_REGISTRY_OPTION
@_friendly
def head(registry_url: str | None) -> None:
    """Print the registry's chain head, SEQ:SHA256, to publish (check it with verify --head)."""
    from pilotlab.registry import service

    click.echo(service.head_text(registry_url))


@cli.group("registry")
def registry_group() -> None:
    """Administer the registry database (as its owner)."""


@registry_group.command("migrate")
@click.option(
    "--app-role",
    default=None,
    metavar="ROLE",
    help="PostgreSQL: the login role the service connects as; it is granted SELECT and INSERT "
    "(and UPDATE of pilots' registration columns) only.",
)
@_REGISTRY_OPTION
@_KEY_OPTION
@_friendly
def registry_migrate(app_role: str | None, registry_url: str | None, key_file: Path | None) -> None:
    """Create or upgrade the registry's schema; connect with the database owner's URL.

    On PostgreSQL run it as the owner, give the service its own role with --app-role, and let
    the service connect as that role: it can then append to the registry but cannot update or
    delete history, nor alter or disable the triggers that refuse it.
    """
    from pilotlab.registry import service

    click.echo(service.migrate_registry(registry_url, app_role, key_file))


@cli.command()
@_REGISTRY_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--public-url",
    default=None,
    metavar="URL",
    help="The address people use (https://...), when behind a proxy; named in messages.",
)
@_friendly
def serve(registry_url: str | None, host: str, port: int, public_url: str | None) -> None:
    """Run the evidence service (web pages and JSON API) on a registry.

    Places register pilots and record runs over the web (the registry commands accept
    PILOTLAB_REGISTRY_URL=https://... with PILOTLAB_TOKEN); each person sees and changes only
    what their role and organisation allow. On first start it says how to create the first
    administrator.
    """
    try:
        from pilotlab.service import serve as run_service
    except ImportError as exc:
        raise PilotlabError(
            f"the evidence service needs packages that are not installed ({exc.name}); install "
            "them with `pip install 'pilotlab[service]'`"
        ) from None
    run_service(
        registry_url, host, port, say=lambda m: click.echo(m, err=True), public_url=public_url
    )


@cli.command()
@click.argument("pilot", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(path_type=Path),  # a file here is refused with a clear Error: message
    default=None,
    help="Output folder (default: out/<pilot id>/allocation beside the pilot file).",
)
@click.option(
    "--reason",
    default=None,
    help="Record a new allocation for a pilot that has one, and say why (the report lists it "
    "as a deviation).",
)
@_REGISTRY_OPTION
@_KEY_OPTION
@_friendly
def randomise(
    pilot: Path,
    out: Path | None,
    reason: str | None,
    registry_url: str | None,
    key_file: Path | None,
) -> None:
    """Draw PILOT's randomised allocation, record it in the registry, write allocation.json and
    allocation.html (balance before the start).

    The pilot file's assignment key says how (scheme, units to treat, strata, waves, seed); the
    same seed gives the same allocation on any machine. A pilot is randomised once: asking again
    is refused unless --reason records why the allocation changed.
    """
    from pilotlab.engine.randomise import randomise_pilot
    from pilotlab.registry import load_key

    done = randomise_pilot(
        pilot,
        out,
        registry=registry_url,
        key=load_key(key_file),
        reason=reason,
        option="-o/--output",
    )
    click.echo(_allocation_line(done))
    rec = done.record
    if done.registered_plan is not None:
        click.echo(
            f"Registered {done.spec.id} (analysis plan version 1) with its allocation in "
            f"{done.registry}."
        )
    what = "changed allocation" if rec.version > 1 else "allocation"
    click.echo(
        f"Recorded the {what} (version {rec.version}, sha256 {rec.allocation_sha256[:12]}) at "
        f"{rec.recorded_at} in {done.registry}."
    )
    click.echo(f"Allocation written to {done.json_path} and {done.html_path}")


def _allocation_line(done: Any) -> str:
    """How many units went where, and the largest imbalance, for the terminal."""
    from pilotlab.report.format import fmt_num

    a = done.allocation
    counts = ", ".join(
        f"{g} {int((a.codes == k).sum())}"
        for k, g in enumerate(a.groups)
        if k or int((a.codes == 0).sum())
    )
    worst = [abs(b.std_diff) for b in done.balance if b.std_diff == b.std_diff]
    line = f"Allocated {a.n_units} units ({a.scheme}, seed {a.seed}): {counts}."
    if worst:
        line += f" Largest standardised difference before the start: {fmt_num(max(worst), 2)}."
    return line.replace("\u2212", "-")


def main() -> None:
    """Entry point of the ``pilotlab`` script."""
    cli(prog_name="pilotlab")


if __name__ == "__main__":  # pragma: no cover
    main()
