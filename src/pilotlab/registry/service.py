"""What the registry commands of the command line do, as plain functions returning text.

``cli.py`` only parses arguments and prints what these return; every user mistake is a
:class:`~pilotlab.exceptions.RegistryError` or :class:`~pilotlab.exceptions.SpecError`.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from pilotlab.registry.core import Registry, resolve_url
from pilotlab.registry.records import PlanVersion
from pilotlab.spec import load_pilot

__all__ = [
    "amend_pilot",
    "export_records",
    "import_file",
    "list_pilots",
    "open_existing",
    "register_pilot",
    "set_status",
    "show_pilot",
    "verify_registry",
]


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _short(sha: str | None) -> str:
    return f"{sha[:12]}" if sha else "-"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A plain left-aligned text table."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def open_existing(url: str | None = None) -> Registry | None:
    """The registry ``pilotlab run`` should record into, or ``None`` if there is none yet.

    A SQLite registry counts only if its file exists, so that running a pilot never creates a
    registry as a side effect; a PostgreSQL URL (given or from ``$PILOTLAB_REGISTRY_URL``) is
    always opened, and an unreachable server is a :class:`RegistryError`.
    """
    resolved = resolve_url(url)
    try:
        parsed = sa.engine.make_url(resolved)
    except sa.exc.ArgumentError:
        return Registry(resolved)  # raises the RegistryError that explains the URL format
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or not Path(database).expanduser().is_file():
            return None
    return Registry(resolved)


def register_pilot(pilot: str | Path, url: str | None = None, data_seen: bool = False) -> str:
    """Register the pilot file ``pilot`` and pre-register its analysis plan (version 1)."""
    spec = load_pilot(pilot)
    with Registry(url) as reg:
        v = reg.register(spec, data_seen=data_seen)
        where = reg.display_url
    return (
        f"Registered {spec.id}: analysis plan version {v.version} (sha256 {_short(v.plan_sha256)}) "
        f"at {v.registered_at} in {where}.\n"
        f'Change the plan later with `pilotlab amend {pilot} --reason "..."`.'
    )


def _describe_amendment(pilot_id: str, v: PlanVersion) -> str:
    if not v.created:
        return (
            f"{pilot_id}: the analysis plan is unchanged (still version {v.version}, sha256 "
            f"{_short(v.plan_sha256)}); registration details were refreshed from the pilot file."
        )
    return (
        f"Amended {pilot_id}: analysis plan version {v.version} (sha256 {_short(v.plan_sha256)}).\n"
        f"  Changed: {', '.join(v.changes) or '-'}\n"
        f"  Reason: {v.reason}\n"
        f"  Outcome data seen before the change: {_yes_no(v.data_seen)}"
    )


def amend_pilot(
    pilot: str | Path, reason: str, data_seen: bool = False, url: str | None = None
) -> str:
    """Register a new version of the pilot's analysis plan if it changed."""
    spec = load_pilot(pilot)
    with Registry(url) as reg:
        v = reg.amend(spec, reason, data_seen=data_seen)
    return _describe_amendment(spec.id, v)


def list_pilots(url: str | None = None) -> str:
    """A table of every registered pilot."""
    with Registry(url) as reg:
        pilots = reg.list_pilots()
        where = reg.display_url
    if not pilots:
        return f"No pilots registered in {where}. Register one with `pilotlab register pilot.yaml`."
    rows = [
        [p.id, p.status, str(p.latest_version), str(p.runs), (p.last_run_at or "-")[:16], p.title]
        for p in pilots
    ]
    table = _table(["ID", "STATUS", "PLAN", "RUNS", "LAST RUN (UTC)", "TITLE"], rows)
    return f"{table}\n{len(pilots)} pilot{'s' if len(pilots) != 1 else ''} in {where}."


def show_pilot(pilot_id: str, url: str | None = None) -> str:
    """The registration record and the history of plan versions, runs and status changes."""
    with Registry(url) as reg:
        h = reg.show(pilot_id)
    rec = h.record
    fields = [
        ("Title", rec["title"]),
        ("Summary", rec["summary"]),
        ("Status", rec["status"]),
        ("Lead", rec["lead"]),
        ("Partners", ", ".join(rec["partners"]) or None),
        ("Policy area", rec["policy_area"]),
        ("Design", rec["design_type"]),
        (
            "Outcomes",
            "; ".join(
                f"{o['column']}{' (primary)' if o['primary'] else ''}"
                + (f", minimum effect {o['mde']:g}" if o.get("mde") is not None else "")
                for o in rec["outcomes"]
            ),
        ),
        ("Dates (intended)", f"{rec['start_date'] or '?'} to {rec['end_date'] or '?'}"),
        ("Dates (actual)", f"{rec['actual_start_date'] or '?'} to {rec['actual_end_date'] or '?'}"),
        ("Report due", rec["report_due"]),
        ("Publication", rec["publication"]),
        ("Registered", rec["registered_at"]),
    ]
    out = [f"{pilot_id}"]
    out += [f"  {k}: {v}" for k, v in fields if v is not None]
    out.append("\nPlan versions")
    out.append(
        _table(
            ["VERSION", "REGISTERED (UTC)", "SHA256", "DATA SEEN", "CHANGED", "REASON"],
            [
                [
                    str(v.version),
                    v.registered_at[:19],
                    _short(v.plan_sha256),
                    _yes_no(v.data_seen),
                    ", ".join(v.changes) or "-",
                    v.reason or "initial registration",
                ]
                for v in h.versions
            ],
        )
    )
    out.append("\nRuns")
    if h.runs:
        out.append(
            _table(
                [
                    "RECORDED (UTC)",
                    "RUN",
                    "PLAN",
                    "MATCHES LATEST",
                    "DATA SHA256",
                    "EVIDENCE SHA256",
                ],
                [
                    [
                        r.recorded_at[:19],
                        r.run_id[:12],
                        str(r.plan_version) if r.plan_version is not None else "unregistered",
                        _yes_no(r.matches_latest),
                        _short(r.data_sha256),
                        _short(r.evidence_sha256),
                    ]
                    for r in h.runs
                ],
            )
        )
    else:
        out.append("  none yet (`pilotlab run` records each run)")
    out.append("\nStatus changes")
    out.append(
        _table(
            ["CHANGED (UTC)", "FROM", "TO"],
            [[s.changed_at[:19], s.old_status or "-", s.new_status] for s in h.status_changes],
        )
    )
    return "\n".join(out)


def set_status(pilot_id: str, status: str, url: str | None = None) -> str:
    """Change a pilot's status."""
    with Registry(url) as reg:
        change = reg.set_status(pilot_id, status)
    if change.old_status == change.new_status:
        return f"{pilot_id} is already {status}; nothing changed."
    return f"{pilot_id}: status {change.old_status} -> {change.new_status} at {change.changed_at}."


def export_records(out_dir: str | Path, url: str | None = None) -> str:
    """Write evidence.jsonl and evidence.csv for a central department."""
    with Registry(url) as reg:
        s = reg.export(out_dir)
    return (
        f"Exported {s.records} evidence record{'s' if s.records != 1 else ''} to {s.jsonl_path} "
        f"and {s.rows} pilot x outcome row{'s' if s.rows != 1 else ''} to {s.csv_path}."
    )


def import_file(path: str | Path, url: str | None = None) -> str:
    """Load evidence records exported by another registry."""
    with Registry(url) as reg:
        s = reg.import_records(path)
    return (
        f"Imported {s.imported} of {s.read} record{'s' if s.read != 1 else ''} from {s.path} "
        f"(source: {', '.join(s.sources) or '-'}); {s.duplicates} already imported."
    )


def verify_registry(url: str | None = None) -> tuple[bool, str]:
    """Recompute every hash; return (intact, message)."""
    with Registry(url) as reg:
        problems = reg.verify()
        where = reg.display_url
    if not problems:
        return True, f"{where}: every registered plan, run and imported record matches its hash."
    lines = [f"{where}: {len(problems)} problem{'s' if len(problems) != 1 else ''} found:"]
    lines += [f"  - {p}" for p in problems]
    lines.append(
        "These rows were changed outside pilotlab. Compare them with an earlier export or backup; "
        "registered history can only be extended (`pilotlab amend`), never edited."
    )
    return False, "\n".join(lines)
