"""``run_pilot()``: what ``pilotlab run`` does, as one function.

Evaluate the pilot (:func:`~pilotlab.engine.evaluate`), write its outputs (``report.html``,
``evidence.json``, ``results.csv`` and every table as CSV) into a staging folder that is moved
into place only once complete (:mod:`pilotlab.outputs`), and then, if its analysis plan is
registered, record the run in the registry. The order is the guarantee: a run recorded in the
registry always has its outputs in place, and a run that fails leaves no partial files and the
registry untouched.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pilotlab.engine.evaluation import evaluate
from pilotlab.engine.trial import RegisteredDesign
from pilotlab.exceptions import PilotlabError
from pilotlab.outputs import check_output_folder, output_folder
from pilotlab.registry.location import none_to_open
from pilotlab.results import Evaluation, PlanInfo
from pilotlab.spec import PilotSpec, load_pilot

if TYPE_CHECKING:
    from pilotlab.registry import Registry
    from pilotlab.registry.remote import RemoteRegistry

__all__ = ["PilotRun", "default_output_dir", "run_command", "run_pilot", "write_outputs"]


@dataclass(frozen=True)
class PilotRun:
    """What :func:`run_pilot` did.

    Attributes
    ----------
    evaluation
        The evaluation the outputs were written from.
    output_dir
        The output folder (as given, or the default ``out/<pilot id>``).
    files
        Every file written into it, relative to it (``report.html``, ``evidence.json``,
        ``results.csv``, ``tables/...``), sorted.
    record
        The evidence record written to ``evidence.json`` (and stored in the registry).
    run_id
        The registry's id of the recorded run; ``None`` when the run was not recorded (no
        registry, an unregistered plan, or ``record=False``).
    """

    evaluation: Evaluation
    output_dir: Path
    files: tuple[str, ...]
    record: Mapping[str, Any]
    run_id: str | None = None

    @property
    def report(self) -> Path:
        """``report.html``."""
        return self.output_dir / "report.html"

    @property
    def evidence(self) -> Path:
        """``evidence.json``."""
        return self.output_dir / "evidence.json"

    @property
    def plan(self) -> PlanInfo:
        """The plan's registration status, as the report shows it."""
        return self.evaluation.plan

    @property
    def recorded(self) -> bool:
        """Whether the run was recorded in the registry."""
        return self.run_id is not None


def write_outputs(
    evaluation: Evaluation,
    out: Path,
    template_dir: str | Path | None = None,
    org_name: str | None = None,
) -> dict[str, Any]:
    """Write evidence.json, results.csv, report.html and every table as CSV into ``out`` (a new
    staging folder; :func:`run_pilot` moves it into place) and return the evidence record."""
    from pilotlab.evidence import evidence_record, to_json
    from pilotlab.outputs import csv_frame
    from pilotlab.report import render_report

    record = evidence_record(evaluation)
    (out / "evidence.json").write_text(to_json(record) + "\n", encoding="utf-8")
    # full precision, one row per outcome; text that a spreadsheet would run as a formula is quoted
    csv_frame(evaluation.tidy()).to_csv(out / "results.csv", index=False)
    templates = Path(template_dir) if template_dir is not None else None
    render_report(evaluation, out / "report.html", templates, org_name=org_name)
    return record


def default_output_dir(spec: PilotSpec) -> Path:
    """``out/<pilot id>`` beside the pilot file (beside the working folder for a parsed spec)."""
    base = getattr(spec, "base_dir", None)
    return (base if isinstance(base, Path) else Path.cwd()) / "out" / spec.id


def run_command(pilot: str | os.PathLike[str], output_dir: str | os.PathLike[str]) -> str:
    """The ``pilotlab run`` command line that reproduces a run (the reproducibility appendix)."""
    return "pilotlab run " + " ".join(shlex.quote(a) for a in [str(pilot), "-o", str(output_dir)])


def run_pilot(
    pilot: str | os.PathLike[str] | PilotSpec,
    output_dir: str | os.PathLike[str] | None = None,
    *,
    registry: str | Registry | None = None,
    record: bool = True,
    template_dir: str | os.PathLike[str] | None = None,
    org_name: str | None = None,
    progress: Callable[[str], None] | None = None,
    command: str | None = None,
    option: str = "output_dir",
) -> PilotRun:
    """Evaluate a pilot, write its report, evidence record and tables, and record the run.

    Exactly what ``pilotlab run`` does (the command line calls this function): the outputs are
    written only once the evaluation succeeded, into a staging folder moved into place when
    complete; then, if the pilot's analysis plan is registered, the run is recorded in the
    registry. A failed evaluation writes nothing and leaves the registry untouched.

    Parameters
    ----------
    pilot
        The pilot file (a path), or a pilot already loaded (``pilotlab.load_pilot(path)``).
    output_dir
        The output folder (default: ``out/<pilot id>`` beside the pilot file). It may be new,
        empty or one pilotlab wrote before; pilotlab never replaces files it did not write.
    registry
        The registry: a database URL, an open :class:`~pilotlab.registry.Registry` (left open),
        or ``None`` for the one ``pilotlab run`` uses (``$PILOTLAB_REGISTRY_URL``, else
        ``.pilotlab/registry.db`` if that file exists; running a pilot never creates one).
    record
        Record the run in the registry when the plan is registered (default). With ``False``
        the registry is only read, for the plan's registration status shown in the report.
    template_dir
        Folder of report templates overriding pilotlab's (your logo, colours).
    org_name
        Organisation named in the report masthead.
    progress
        Called with a short plain-English message as each stage starts (see
        :func:`~pilotlab.engine.evaluate`), then ``"Writing the report to ..."`` and
        ``"Recording the run in the registry"``. ``None`` (the default): silent.
    command
        The command line shown in the reproducibility appendix (default: the ``pilotlab run``
        command that reproduces this run, when ``pilot`` is a file).
    option
        How error messages name the output folder (the command line says ``-o/--output``).

    Returns
    -------
    PilotRun
        The evaluation, the files written and the registry's run id (if recorded).

    Raises
    ------
    PilotlabError
        A mistake in the pilot file or its data, an output folder pilotlab may not write, or a
        registry that cannot be read or written (if recording fails after the outputs were
        written, the message says so; running again records the run and replaces the outputs).
    """
    started = datetime.now(UTC)
    if isinstance(pilot, PilotSpec):
        spec, source = pilot, getattr(pilot, "source_path", None)
    else:
        spec, source = load_pilot(Path(pilot)), os.fspath(pilot)
    out = Path(output_dir) if output_dir is not None else default_output_dir(spec)
    check_output_folder(out, option)  # refuse a folder pilotlab may not write before the long part
    if command is None:
        command = run_command(source, out) if source else ""
    say = progress if progress is not None else _silent
    reg: Registry | RemoteRegistry | None
    closing: AbstractContextManager[Any] = nullcontext()  # a caller's registry is left open
    if registry is None and none_to_open():
        reg = None  # no registry here: the database layer is not even imported
    elif registry is None or isinstance(registry, str):
        from pilotlab.registry.service import open_existing

        reg = open_existing(registry)  # opened here, so closed here
        if reg is not None:
            closing = reg
    else:
        reg = registry
    run_id: str | None = None
    with closing:
        plan = reg.plan_status(spec).to_plan_info() if reg is not None else None
        registered = (
            RegisteredDesign(reg.allocations(spec.id), reg.cycle_chain(spec.id), checked=True)
            if reg is not None
            else None
        )
        evaluation = evaluate(
            spec, plan=plan, command=command, progress=progress, registered=registered
        )
        # Outputs first, then the registry: a recorded run always has its outputs in place. If
        # recording fails, the outputs stay (complete and correct) and the error says so.
        say(f"Writing the report to {out}")
        with output_folder(out, option) as tmp:  # nothing written on error; only its own files
            templates = Path(template_dir) if template_dir is not None else None
            written = write_outputs(evaluation, tmp, templates, org_name)
            files = tuple(sorted(p.relative_to(tmp).as_posix() for p in _files(tmp)))
        if record and reg is not None and plan is not None and plan.registered:
            from sqlalchemy.exc import SQLAlchemyError

            from pilotlab.registry.remote import RemoteRegistry

            say("Recording the run in the registry")
            try:
                # An evidence service also receives the report and tables it serves.
                uploads = {"outputs": out} if isinstance(reg, RemoteRegistry) else {}
                recorded = reg.record_run(
                    spec,
                    written,
                    evaluation.data.sha256,
                    written["software"],
                    started_at=started,
                    finished_at=datetime.now(UTC),
                    **uploads,
                )
            except (PilotlabError, SQLAlchemyError, OSError) as exc:
                reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
                raise PilotlabError(
                    f"the outputs were written to '{out}', but the run could not be recorded in "
                    f"the registry ({reason}); fix that and run the same command again to record "
                    "it (the outputs will be replaced)"
                ) from None
            run_id = recorded.run_id
    return PilotRun(evaluation, out, files, written, run_id)


def _silent(message: str) -> None:
    """The default progress callback: nothing."""


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]
