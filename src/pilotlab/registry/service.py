"""What the registry commands of the command line do, as plain functions returning text.

``cli.py`` only parses arguments and prints what these return; every user mistake is a
:class:`~pilotlab.exceptions.RegistryError` or :class:`~pilotlab.exceptions.SpecError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from pilotlab.exceptions import RegistryError
from pilotlab.registry.chain import load_key, parse_head
from pilotlab.registry.core import Registry
from pilotlab.registry.location import ENV_URL, resolve_url
from pilotlab.registry.records import PlanVersion
from pilotlab.registry.remote import RemoteRegistry, is_service_url
from pilotlab.registry.text import printable
from pilotlab.spec import load_pilot

__all__ = [
    "amend_pilot",
    "export_records",
    "head_text",
    "import_file",
    "list_pilots",
    "migrate_registry",
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
    """A plain left-aligned text table; control characters in cells are shown escaped."""
    rows = [[printable(x) for x in row] for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


AnyRegistry = Registry | RemoteRegistry


def _missing_sqlite_file(resolved: str) -> Path | None:
    """The file of a SQLite registry URL that does not exist yet, else ``None``."""
    try:
        parsed = sa.engine.make_url(resolved)
    except sa.exc.ArgumentError:
        return None  # Registry() raises the RegistryError that explains the URL format
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = Path(database).expanduser()
    return None if path.is_file() else path


def open_existing(url: str | None = None, key_file: str | Path | None = None) -> AnyRegistry | None:
    """The registry at ``url`` if there is one, or ``None`` if there is none yet.

    A SQLite registry counts only if its file exists, so that running a pilot or reading the
    registry never creates one as a side effect; a PostgreSQL URL (given or from
    ``$PILOTLAB_REGISTRY_URL``) is always opened, and an unreachable server is a
    :class:`RegistryError`.
    """
    resolved = resolve_url(url)
    if is_service_url(resolved):
        return RemoteRegistry(resolved)
    if _missing_sqlite_file(resolved) is not None:
        return None
    return Registry(resolved, key=load_key(key_file))


def _open(url: str | None, key_file: str | Path | None = None) -> AnyRegistry:
    """The registry at ``url`` (a database, or an evidence service), created if need be.

    Only the commands that add to a registry (``register``, ``import``) may create one.
    """
    resolved = resolve_url(url)
    if is_service_url(resolved):
        return RemoteRegistry(resolved)
    return Registry(resolved, key=load_key(key_file))


def _require_present(url: str | None) -> None:
    """Refuse a SQLite registry file that is not there, rather than create an empty one."""
    missing = _missing_sqlite_file(resolve_url(url))
    if missing is not None:
        raise RegistryError(
            f"there is no registry at {missing}; register a pilot first with "
            "`pilotlab register pilot.yaml`, or name the registry with --registry URL "
            f"(or ${ENV_URL})"
        )


def _open_present(url: str | None, key_file: str | Path | None = None) -> AnyRegistry:
    """The registry at ``url``, which must already exist."""
    _require_present(url)
    return _open(url, key_file)


def _database_only(url: str | None, what: str) -> None:
    resolved = resolve_url(url)
    if is_service_url(resolved):
        raise RegistryError(
            f"{what} works on the registry's database, not through the evidence service at "
            f"{resolved}; ask its administrator to run it with the database URL "
            "(--registry postgresql+psycopg://...)"
        )


def register_pilot(
    pilot: str | Path,
    url: str | None = None,
    data_seen: bool = False,
    key_file: str | Path | None = None,
) -> str:
    """Register the pilot file ``pilot`` and pre-register its analysis plan (version 1)."""
    spec = load_pilot(pilot)
    with _open(url, key_file) as reg:
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
    pilot: str | Path,
    reason: str,
    data_seen: bool = False,
    url: str | None = None,
    key_file: str | Path | None = None,
) -> str:
    """Register a new version of the pilot's analysis plan if it changed."""
    spec = load_pilot(pilot)
    with _open_present(url, key_file) as reg:
        v = reg.amend(spec, reason, data_seen=data_seen)
    return _describe_amendment(spec.id, v)


def list_pilots(url: str | None = None, metric: str | None = None) -> str:
    """A table of every registered pilot (with ``metric``: those with an outcome measuring it)."""
    with _open_present(url) as reg:
        pilots = reg.list_pilots() if metric is None else reg.pilots_with_metric(metric)
        where = reg.display_url
    if not pilots and metric is not None:
        return (
            f"No registered pilot in {where} has an outcome measuring the metric '{metric}'. "
            "An outcome names its metric with `metric: <framework>/<code>` "
            "(`pilotlab frameworks` lists them)."
        )
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
    with _open_present(url) as reg:
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
    out = [printable(pilot_id)]
    out += [f"  {k}: {printable(v)}" for k, v in fields if v is not None]
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
    with _open(url) as reg:
        allocations = reg.allocations(pilot_id)
        chain = reg.cycle_chain(pilot_id)
    if allocations:
        out.append("\nAllocations (randomised)")
        out.append(
            _table(
                ["VERSION", "RECORDED (UTC)", "SCHEME", "SEED", "UNITS", "SHA256", "REASON"],
                [
                    [
                        str(a.version),
                        a.recorded_at[:19],
                        a.scheme,
                        str(a.seed),
                        str(a.n_units),
                        _short(a.allocation_sha256),
                        a.reason or "drawn before the start",
                    ]
                    for a in allocations
                ],
            )
        )
    if chain:
        out.append("\nLearning cycle: follows " + " -> ".join(s.pilot_id for s in chain))
    out.append("\nStatus changes")
    out.append(
        _table(
            ["CHANGED (UTC)", "FROM", "TO"],
            [[s.changed_at[:19], s.old_status or "-", s.new_status] for s in h.status_changes],
        )
    )
    return "\n".join(out)


def set_status(
    pilot_id: str, status: str, url: str | None = None, key_file: str | Path | None = None
) -> str:
    """Change a pilot's status."""
    with _open_present(url, key_file) as reg:
        change = reg.set_status(pilot_id, status)
    if change.old_status == change.new_status:
        return f"{pilot_id} is already {status}; nothing changed."
    return f"{pilot_id}: status {change.old_status} -> {change.new_status} at {change.changed_at}."


def export_records(out_dir: str | Path, url: str | None = None) -> str:
    """Write evidence.jsonl and evidence.csv for a central department."""
    with _open_present(url) as reg:
        s = reg.export(out_dir)
    return (
        f"Exported {s.records} evidence record{'s' if s.records != 1 else ''} to {s.jsonl_path} "
        f"and {s.rows} pilot x outcome row{'s' if s.rows != 1 else ''} to {s.csv_path}."
    )


def import_file(
    path: str | Path,
    url: str | None = None,
    key_file: str | Path | None = None,
    visibility: str | None = None,
    shared_with: Sequence[str] = (),
) -> str:
    """Load evidence records exported by another registry (through an evidence service, visible
    as ``visibility`` says: by default to the importing organisation only)."""
    if visibility is not None or shared_with:
        resolved = resolve_url(url)
        if not is_service_url(resolved):
            raise RegistryError(
                "--visibility and --share-with apply to imports through an evidence service "
                "(--registry https://... or $PILOTLAB_REGISTRY_URL); a database registry has no "
                "visibility, so leave them out"
            )
        with RemoteRegistry(resolved) as remote:
            s = remote.import_records(
                path, visibility=visibility or "shared", shared_with=tuple(shared_with)
            )
    else:
        with _open(url, key_file) as reg:
            s = reg.import_records(path)
    return (
        f"Imported {s.imported} of {s.read} record{'s' if s.read != 1 else ''} from {s.path} "
        f"(source: {printable(', '.join(s.sources) or '-')}); {s.duplicates} already imported."
    )


def head_text(url: str | None = None) -> str:
    """The registry's chain head, ``SEQ:SHA256``."""
    with _open_present(url) as reg:
        return str(reg.head())


def verify_registry(
    url: str | None = None, head: str | None = None, key_file: str | Path | None = None
) -> tuple[bool, str]:
    """Recompute the hash chain and check every table; return (intact, message)."""
    published = parse_head(head) if head is not None else None
    _database_only(url, "`pilotlab verify`")
    _require_present(url)
    with Registry(url, key=load_key(key_file)) as reg:
        result = reg.audit(head=published)
        where = reg.display_url
    n = result.entries
    lines: list[str] = []
    if result.ok:
        lines.append(
            f"{where}: intact. The log has {n} entr{'y' if n == 1 else 'ies'}, each linked to "
            "the one before; every plan version, run, status change, allocation, cycle link, "
            "imported record and pilot record matches the log entry that wrote it."
        )
    else:
        k = len(result.problems)
        lines.append(f"{where}: {k} problem{'s' if k != 1 else ''} found:")
        lines += [f"  - {printable(p)}" for p in result.problems]
    if result.key_id is not None:
        lines.append(
            f"Signatures: checked with key id {result.key_id}; {result.signed} of {n} entries "
            f"signed{'' if result.ok else ' (see the problems above)'}."
        )
    elif result.signed:
        lines.append(
            f"Signatures: {result.signed} of {n} entries are signed but were not checked; give "
            "the key ($PILOTLAB_REGISTRY_KEY or --key-file) to check them."
        )
    else:
        lines.append("Signatures: none (the log is not signed).")
    if result.head_checked is not None:
        verdict = "still in the chain, unchanged" if result.ok else "see the problems above"
        lines.append(f"Published head {result.head_checked}: {verdict}.")
    elif result.key_id is None:
        lines.append(
            "Without a published head (--head) or a key, this cannot rule out that the whole "
            "registry was rewritten consistently or that its latest entries were deleted."
        )
    lines.append(
        f"Head: {result.head} (publish it; check later with "
        f"`pilotlab verify --head {result.head}`)."
    )
    if not result.ok:
        lines.append(
            "The registry was changed outside pilotlab. Compare it with an earlier export or "
            "backup; registered history can only be extended (`pilotlab amend`), never edited."
        )
    return result.ok, "\n".join(lines)


def migrate_registry(
    url: str | None = None, app_role: str | None = None, key_file: str | Path | None = None
) -> str:
    """Bring the registry's schema up to date (as the database owner) and, on PostgreSQL,
    grant the service role what it needs and nothing more."""
    _database_only(url, "`pilotlab registry migrate`")
    with Registry(url, key=load_key(key_file)) as reg:
        where = reg.display_url
        head = reg.head()
        lines = [f"{where}: schema up to date; log head {head}."]
        if app_role is not None:
            statements = reg.grant_service_role(app_role)
            lines.append(
                f"Role {app_role} may now read the registry, append to it and update pilots' "
                "registration details; it cannot update or delete history, truncate tables or "
                "alter or disable their triggers. Statements run:"
            )
            lines += [f"  {sql};" for sql in statements]
    return "\n".join(lines)
