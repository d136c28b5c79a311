"""The pilot registry: pre-registered analysis plans, recorded runs and shared evidence.

One :class:`Registry` wraps one database: an embedded SQLite file by default
(``.pilotlab/registry.db`` in the working directory) or a shared PostgreSQL database
(``postgresql+psycopg://...``). Every write is a single transaction that also appends to the
hash-chained log (``chain.py``), so writers serialise: ``BEGIN IMMEDIATE`` on SQLite, a
transaction-scoped advisory lock on PostgreSQL (plus ``SELECT ... FOR UPDATE`` on the pilot's
row), with unique ``(pilot_id, version)`` and log sequence numbers as the last line of defence.
"""

from __future__ import annotations

import difflib
import gc
import itertools
import json
import os
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from pilotlab import catalogue
from pilotlab.exceptions import RegistryError
from pilotlab.registry import chain
from pilotlab.registry.chain import Head, Key, load_key, pilot_ref, row_hash, sha256_text
from pilotlab.registry.diff import changed_paths, plan_differences
from pilotlab.registry.export import csv_rows, write_export
from pilotlab.registry.fairlock import FairLock
from pilotlab.registry.location import ENV_URL, default_url, resolve_url
from pilotlab.registry.records import (
    AllocationRecord,
    CycleStep,
    Deviation,
    ExportSummary,
    ImportSummary,
    PilotHistory,
    PilotSummary,
    PlanMatch,
    PlanVersion,
    Problem,
    RunRecord,
    StatusChange,
    Verification,
)
from pilotlab.registry.tables import (
    SERVICE_TABLES,
    allocations,
    cycle_links,
    imported_records,
    pilots,
    plan_versions,
    registry_info,
    registry_log,
    runs,
    status_changes,
)
from pilotlab.registry.text import printable
from pilotlab.results.summary import PlanDifference
from pilotlab.spec import PilotSpec, canonical_json, plan_sha256

__all__ = ["ENV_URL", "STATUSES", "Registry", "default_url", "resolve_url"]

ENV_NAME = "PILOTLAB_REGISTRY_NAME"
STATUSES: tuple[str, ...] = get_args(PilotSpec.model_fields["status"].annotation)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x7069_6C6F  # "pilo": advisory lock key held while migrating
_PG_LOG_LOCK = 0x7069_6C67  # "pilg": held by every write, so that log entries form one chain
_SQLITE_BUSY_TIMEOUT_MS = 60_000
_MAX_ID = 100  # pilots.id is VARCHAR(100)
_SERVICE_SERIAL = ("organisations", "people", "api_tokens", "sessions", "run_files", "audit_log")

_AUTO_DESIGN = "difference-in-differences family (estimator chosen by pilotlab)"
_FORM_DESIGN = {
    "common": "common start",
    "adoption": "staggered adoption",
    "column": "adoption from a data column",
    "planned": "treated units not chosen yet",
}
_SCHEME_DESIGN = {
    "complete": "complete randomisation",
    "stratified": "stratified randomisation",
    "pairs": "matched-pair randomisation",
    "rerandomise": "re-randomisation to a balance criterion",
    "stepped": "stepped roll-out in random order",
}


#: Called inside a write transaction just before it commits, with the connection and the log
#: sequence number the chain had when the transaction began (see :meth:`Registry.writing_with`).
WriteHook = Callable[[Connection, int], None]
_WRITE_HOOK: ContextVar[WriteHook | None] = ContextVar("pilotlab_registry_write_hook", default=None)


def now_utc() -> str:
    """Current UTC time as ISO 8601 text with microseconds and ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _as_timestamp(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise RegistryError(
            f"timestamp {value.isoformat()} has no time zone; pass an aware datetime "
            "(e.g. datetime.now(UTC)) so the registry can store it in UTC"
        )
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_sha256 = sha256_text
_row_hash = row_hash


def _strict_json(obj: Any, what: str) -> str:
    """Canonical JSON of ``obj``, refusing NaN/Infinity (not JSON) and non-JSON types."""
    try:
        text = canonical_json(obj)
    except (TypeError, ValueError) as exc:
        raise RegistryError(
            f"the {what} cannot be stored as JSON ({exc}); convert values to plain str, int, "
            "float, bool, None, list and dict"
        ) from None

    def _reject(token: str) -> Any:
        raise RegistryError(
            f"the {what} contains {token}, which is not valid JSON; use null for a missing number"
        )

    json.loads(text, parse_constant=_reject)
    return text


@lru_cache(maxsize=1)
def _migration_config_head() -> tuple[str, frozenset[str]]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    if head is None:  # pragma: no cover - the package always ships its migrations
        raise RegistryError(f"no registry migrations found in {MIGRATIONS_DIR}; reinstall pilotlab")
    return head, frozenset(r.revision for r in script.walk_revisions())


def _make_engine(url: str) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise RegistryError(
            f"registry URL {url!r} is not a database URL; use sqlite:///path/to/registry.db or "
            "postgresql+psycopg://user:password@host:5432/dbname (--registry or "
            f"${ENV_URL})"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            return sa.create_engine(parsed, pool_pre_ping=True)
        except ImportError:
            raise RegistryError(
                f"the registry URL uses {parsed.drivername}, whose driver is not installed; "
                "install it with `pip install 'pilotlab[postgres]'`"
            ) from None
    if backend != "sqlite":
        raise RegistryError(
            f"registry URL {parsed.render_as_string(hide_password=True)!r} uses {backend}; "
            "pilotlab's registry runs on SQLite (sqlite:///path) or PostgreSQL "
            "(postgresql+psycopg://...)"
        )
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed)
    else:
        engine = sa.create_engine(parsed, poolclass=StaticPool)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is switched off so that BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers take the write lock up front, so that a read-then-write never fails with
        # SQLITE_BUSY half way; readers use a deferred transaction (WAL: never blocked).
        write = connection.get_execution_options().get("pilotlab_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _design_type(spec: PilotSpec) -> str:
    if spec.registration.design_type:
        return spec.registration.design_type
    assignment = getattr(spec, "assignment", None)
    if assignment is not None:
        return f"randomised: {_SCHEME_DESIGN.get(assignment.scheme, assignment.scheme)}"
    name = spec.design.estimator
    method = _AUTO_DESIGN if name == "auto" else catalogue.title(name)
    return f"quasi-experimental: {method}, {_FORM_DESIGN[spec.treatment.form]}"


def _registration_values(spec: PilotSpec) -> dict[str, Any]:
    reg = spec.registration
    return {
        "title": spec.title,
        "summary": spec.summary,
        "lead": spec.lead,
        "partners": list(spec.partners),
        "contact": spec.contact,
        "policy_area": spec.policy_area,
        "design_type": _design_type(spec),
        "theory_of_change": reg.theory_of_change,
        "questions": [q.model_dump(mode="json") for q in spec.questions],
        "outcomes": [o.model_dump(mode="json") for o in spec.outcomes],
        "start_date": reg.start_date,
        "end_date": reg.end_date,
        "actual_start_date": reg.actual_start_date,
        "actual_end_date": reg.actual_end_date,
        "report_due": reg.report_due,
        "publication": reg.publication,
    }


def _plan_version(row: Any, changes: tuple[str, ...] = (), created: bool = True) -> PlanVersion:
    return PlanVersion(
        pilot_id=row.pilot_id,
        version=row.version,
        plan_sha256=row.plan_sha256,
        registered_at=row.registered_at,
        reason=row.reason,
        data_seen=bool(row.data_seen),
        changes=changes,
        created=created,
    )


def _run_record(row: Mapping[Any, Any]) -> RunRecord:
    """A RunRecord from a ``runs`` row mapping (or the values about to be inserted)."""
    fields = {k: row[k] for k in RunRecord.__dataclass_fields__ if k != "software"}
    fields["matches_latest"] = bool(fields["matches_latest"])
    return RunRecord(software=json.loads(row["software_json"]), **fields)


def _insert(conn: Connection, table: sa.Table, values: dict[str, Any]) -> dict[str, Any]:
    """Insert one row of an append-only table; its reference for the log entry."""
    key = conn.execute(sa.insert(table).values(values)).inserted_primary_key
    if key is None:  # pragma: no cover - every table has an integer primary key
        raise RegistryError(f"the database returned no id for the new {table.name} row")
    row_id = key[0]
    return {"table": table.name, "id": row_id, "sha256": values["row_sha256"]}


def _allocation_record(row: Mapping[Any, Any], document_json: str) -> AllocationRecord:
    return AllocationRecord(
        pilot_id=row["pilot_id"],
        version=int(row["version"]),
        scheme=row["scheme"],
        seed=int(row["seed"]),
        n_units=int(row["n_units"]),
        allocation_sha256=row["allocation_sha256"],
        plan_sha256=row["plan_sha256"],
        data_sha256=row["data_sha256"],
        reason=row["reason"],
        recorded_at=row["recorded_at"],
        document=json.loads(document_json),
    )


def _changes_between(versions: list[Any]) -> list[tuple[str, ...]]:
    """Changed plan keys of each version against the one before (empty for version 1)."""
    plans = [json.loads(v.plan_json) for v in versions]
    return [(), *(tuple(changed_paths(a, b)) for a, b in itertools.pairwise(plans))]


class Registry:
    """A pilot registry on SQLite or PostgreSQL.

    Parameters
    ----------
    url
        SQLAlchemy URL: ``sqlite:///path/registry.db`` or ``postgresql+psycopg://user@host/db``.
        Default: ``$PILOTLAB_REGISTRY_URL``, else ``.pilotlab/registry.db`` in the working
        directory (created on first use).
    name
        Human-readable name of this registry, written into exported records' provenance.
        Default: ``$PILOTLAB_REGISTRY_NAME``, else the URL without its password.
    key
        Key that signs (HMAC-SHA256) every log entry written and checks signatures in
        :meth:`verify`: a :class:`~pilotlab.registry.chain.Key`, or the key itself as text or
        bytes (at least 32 bytes). Default: ``$PILOTLAB_REGISTRY_KEY`` if set, else unsigned.
        Once a registry's log is signed, writes without its key are refused.

    Raises
    ------
    RegistryError
        The URL is malformed, names an unsupported database, or the database cannot be reached.

    Notes
    -----
    Opening a registry applies any pending schema migration (shipped in the package) inside one
    locked transaction, so concurrent first openings are safe and a migrated registry is left
    untouched.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        name: str | None = None,
        key: Key | str | bytes | None = None,
    ) -> None:
        self.url = resolve_url(url)
        if isinstance(key, str | bytes):
            key = Key(key.encode("utf-8") if isinstance(key, str) else key, "the key argument")
        self.key: Key | None = key if key is not None else load_key()
        self.engine = _make_engine(self.url)
        self._writers = FairLock()  # this process's SQLite writers queue in order (fairlock.py)
        self.display_url = self.engine.url.render_as_string(hide_password=True)
        self.name = name or os.environ.get(ENV_NAME) or self.display_url
        try:
            self._migrate()
            with self._read() as conn:
                self.registry_id: str = conn.execute(
                    sa.select(registry_info.c.value).where(registry_info.c.key == "registry_id")
                ).scalar_one()
        except BaseException:
            self.engine.dispose()
            raise

    # ------------------------------------------------------------------ plumbing

    def __repr__(self) -> str:
        return f"Registry({self.display_url!r})"

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the registry's database connections."""
        self.engine.dispose()

    def _cannot_connect(self, exc: Exception) -> RegistryError:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return RegistryError(
            f"cannot use the registry at {self.display_url}: {reason}; check the URL given with "
            f"--registry or ${ENV_URL}, that the database server is running and that you may "
            "write to it"
        )

    def _connect(self) -> Connection:
        try:
            return self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise self._cannot_connect(exc) from None

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        """One transaction: committed if the block succeeds, rolled back otherwise. A write
        transaction takes SQLite's write lock up front (``BEGIN IMMEDIATE``)."""
        hook = _WRITE_HOOK.get() if write else None
        fair = write and self.engine.dialect.name == "sqlite"  # PostgreSQL queues its own
        with self._writers if fair else nullcontext(), self._connect() as conn:
            if write:
                conn.execution_options(pilotlab_write=True)
            try:
                with conn.begin():
                    if write and conn.dialect.name == "postgresql":
                        # One chain: writers append to the log one at a time (SQLite's BEGIN
                        # IMMEDIATE does the same); needs no privilege beyond connecting.
                        conn.execute(
                            sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOG_LOCK}
                        )
                    start = self._head(conn).seq if hook is not None else 0
                    yield conn
                    if hook is not None:
                        hook(conn, start)
            except sa.exc.OperationalError as exc:  # server gone, database locked too long...
                raise self._cannot_connect(exc) from exc

    @contextmanager
    def writing_with(self, hook: WriteHook) -> Iterator[None]:
        """Run ``hook(conn, start_seq)`` inside every write transaction made in this block (in
        this thread or task), just before it commits: what the hook writes commits with the
        registry's own rows or not at all. ``start_seq`` is the log's last sequence number when
        the transaction began, so the hook can read the entries the write appended. The
        evidence service records its audit entries and uploaded files this way."""
        token = _WRITE_HOOK.set(hook)
        try:
            yield
        finally:
            _WRITE_HOOK.reset(token)

    def _read(self) -> AbstractContextManager[Connection]:
        return self._transaction(write=False)

    def _write(self) -> AbstractContextManager[Connection]:
        return self._transaction(write=True)

    def _current_revision(self) -> str | None:
        with self._connect() as conn:
            try:
                return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            except sa.exc.DBAPIError:
                return None

    def _migrate(self) -> None:
        head, known = _migration_config_head()
        current = self._current_revision()
        if current == head:
            return
        if current is not None and current not in known:
            raise RegistryError(
                f"the registry at {self.display_url} has schema revision {current}, written by a "
                "newer pilotlab; upgrade pilotlab (pip install -U pilotlab) to use it"
            )
        from alembic import command
        from alembic.config import Config

        try:
            with self._write() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                cfg = Config()
                cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
                cfg.attributes["connection"] = conn
                cfg.attributes["registry_key"] = self.key
                command.upgrade(cfg, "head")
        except sa.exc.ProgrammingError as exc:  # e.g. permission denied for the service role
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise RegistryError(
                f"the registry at {self.display_url} needs its schema brought up to date "
                f"(revision {current or 'none'} -> {head}) but this connection may not do it "
                f"({reason}); run `pilotlab registry migrate --registry OWNER_URL` as the "
                "database owner, then connect as the service role again"
            ) from None

    def _lock_pilot(self, conn: Connection, pilot_id: str) -> Any:
        """The pilot's row, locked until the transaction ends against every other write to this
        pilot (``FOR UPDATE`` on PostgreSQL; SQLite's write transaction holds the database lock
        already). ``None`` if the pilot is not registered."""
        query = sa.select(pilots.c.id, pilots.c.status).where(pilots.c.id == pilot_id)
        return conn.execute(query.with_for_update()).first()

    def _not_registered(self, conn: Connection, pilot_id: str) -> RegistryError:
        ids = conn.execute(sa.select(pilots.c.id)).scalars().all()
        close = difflib.get_close_matches(pilot_id, ids, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return RegistryError(
            f"pilot '{printable(pilot_id)}' is not registered in {self.display_url}{hint}; "
            "register it "
            "first with `pilotlab register pilot.yaml`, or list registered pilots with "
            "`pilotlab list`"
        )

    @staticmethod
    def _versions(conn: Connection, pilot_id: str, *, with_plans: bool = False) -> list[Any]:
        cols = [
            plan_versions.c.pilot_id,
            plan_versions.c.version,
            plan_versions.c.plan_sha256,
            plan_versions.c.registered_at,
            plan_versions.c.reason,
            plan_versions.c.data_seen,
        ]
        if with_plans:
            cols.append(plan_versions.c.plan_json)
        query = sa.select(*cols).where(plan_versions.c.pilot_id == pilot_id)
        return list(conn.execute(query.order_by(plan_versions.c.version)).all())

    @staticmethod
    def _insert_version(
        conn: Connection,
        pilot_id: str,
        version: int,
        plan_json: str,
        reason: str | None,
        data_seen: bool,
        at: str,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            "pilot_id": pilot_id,
            "version": version,
            "plan_json": plan_json,
            "plan_sha256": _sha256(plan_json),
            "registered_at": at,
            "reason": reason,
            "data_seen": data_seen,
        }
        values["row_sha256"] = _row_hash("plan_versions", values)
        return _insert(conn, plan_versions, values)

    @staticmethod
    def _insert_status(
        conn: Connection, pilot_id: str, old: str | None, new: str, at: str
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            "pilot_id": pilot_id,
            "old_status": old,
            "new_status": new,
            "changed_at": at,
        }
        values["row_sha256"] = _row_hash("status_changes", values)
        return _insert(conn, status_changes, values)

    def _log(
        self, conn: Connection, at: str, kind: str, pilot_id: str, refs: list[dict[str, Any]]
    ) -> Head:
        """Append one log entry for a write to ``pilot_id``: the rows it inserted and the
        pilot's row as it is now."""
        appender = chain.Appender(conn, self.registry_id, self.key)
        appender.add(at, kind, pilot_id, [*refs, pilot_ref(conn, pilot_id)])
        appender.flush()
        return appender.head

    # ------------------------------------------------------------------ plans

    def register(self, spec: PilotSpec, *, data_seen: bool = False) -> PlanVersion:
        """Register a pilot and pre-register its analysis plan as version 1.

        Parameters
        ----------
        spec
            The pilot file.
        data_seen
            Whether outcome data had been seen when the plan was registered.

        Returns
        -------
        PlanVersion
            Version 1 of the plan.

        Raises
        ------
        RegistryError
            The pilot is already registered (change its plan with ``amend``).
        """
        if len(spec.id) > _MAX_ID:
            raise RegistryError(
                f"pilot id '{spec.id[:40]}...' is {len(spec.id)} characters long; the registry "
                f"keeps ids of up to {_MAX_ID} characters: shorten `id` in the pilot file"
            )
        plan_json = canonical_json(spec.plan())
        try:
            with self._write() as conn:
                if self._lock_pilot(conn, spec.id) is not None:
                    raise self._already_registered(conn, spec)
                at = now_utc()  # taken under the lock: timestamps follow commit order
                refs = self._register_rows(conn, spec, plan_json, data_seen, at)
                self._log(conn, at, "register", spec.id, refs)
        except sa.exc.IntegrityError:
            # Another writer registered the same id between our check and our insert.
            with self._read() as conn:
                if self._lock_pilot(conn, spec.id) is not None:
                    raise self._already_registered(conn, spec) from None
            raise
        return PlanVersion(spec.id, 1, _sha256(plan_json), at, None, data_seen)

    def _register_rows(
        self, conn: Connection, spec: PilotSpec, plan_json: str, data_seen: bool, at: str
    ) -> list[dict[str, Any]]:
        """Insert a new pilot's row, plan version 1, its first status and its cycle link (the
        caller holds the write lock and has checked that the pilot is new)."""
        cycle_ref = self._check_cycle(conn, spec)
        conn.execute(
            sa.insert(pilots).values(
                id=spec.id,
                status=spec.status,
                registered_at=at,
                updated_at=at,
                latest_version=1,
                run_count=0,
                **_registration_values(spec),
            )
        )
        refs = [
            self._insert_version(conn, spec.id, 1, plan_json, None, data_seen, at),
            self._insert_status(conn, spec.id, None, spec.status, at),
        ]
        if cycle_ref:
            refs.append(self._insert_cycle_link(conn, spec, 1, at))
        return refs

    # ------------------------------------------------------------------ learning cycles

    def _check_cycle(self, conn: Connection, spec: PilotSpec) -> bool:
        """Whether the pilot file declares a cycle link to record; refuses a link to an
        unregistered pilot, to itself, or one that would close a loop."""
        cycle = getattr(spec, "cycle", None)
        if cycle is None:
            return False
        path = getattr(spec, "source_path", None) or "pilot.yaml"
        if cycle.follows == spec.id:
            raise RegistryError(
                f"{path}: cycle.follows is '{spec.id}', the pilot itself; give the id of the "
                "earlier pilot this cycle follows"
            )
        if conn.execute(sa.select(pilots.c.id).where(pilots.c.id == cycle.follows)).first() is None:
            hint = self._not_registered(conn, cycle.follows)
            raise RegistryError(
                f"{path}: cycle.follows: {hint}; register the earlier cycle first "
                "(a learning cycle follows a registered pilot); nothing was recorded"
            )
        seen = [spec.id]
        current: str | None = cycle.follows
        while current is not None:
            if current in seen:
                loop = " -> ".join([*seen, current])
                raise RegistryError(
                    f"{path}: cycle.follows '{cycle.follows}' would make the chain a loop "
                    f"({loop}); a cycle can only follow an earlier one; nothing was recorded"
                )
            seen.append(current)
            current = self._follows(conn, current)
        return True

    @staticmethod
    def _follows(conn: Connection, pilot_id: str) -> str | None:
        """The pilot ``pilot_id`` follows, by its latest cycle link (``None``: the first cycle)."""
        row = conn.execute(
            sa.select(cycle_links.c.follows)
            .where(cycle_links.c.pilot_id == pilot_id)
            .order_by(cycle_links.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else str(row.follows)

    @staticmethod
    def _latest_change(conn: Connection, pilot_id: str) -> str | None:
        row = conn.execute(
            sa.select(cycle_links.c.change)
            .where(cycle_links.c.pilot_id == pilot_id)
            .order_by(cycle_links.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else str(row.change)

    @staticmethod
    def _insert_cycle_link(
        conn: Connection, spec: PilotSpec, plan_version: int, at: str
    ) -> dict[str, Any]:
        cycle = spec.cycle
        assert cycle is not None  # checked by _check_cycle
        values: dict[str, Any] = {
            "pilot_id": spec.id,
            "follows": cycle.follows,
            "change": cycle.change,
            "plan_version": plan_version,
            "recorded_at": at,
        }
        values["row_sha256"] = _row_hash("cycle_links", values)
        return _insert(conn, cycle_links, values)

    def cycle_chain(self, pilot_id: str) -> tuple[CycleStep, ...]:
        """The earlier cycles of a pilot's learning-cycle chain, oldest first.

        Each step is an earlier pilot with its latest recorded evidence record (``None`` if it
        has no run yet) and what the cycle after it changed. Empty when the pilot follows none
        (or is not registered).
        """
        steps: list[CycleStep] = []
        with self._read() as conn:
            current, seen = pilot_id, {pilot_id}
            while True:
                link = conn.execute(
                    sa.select(cycle_links.c.follows, cycle_links.c.change)
                    .where(cycle_links.c.pilot_id == current)
                    .order_by(cycle_links.c.id.desc())
                    .limit(1)
                ).first()
                if link is None or link.follows in seen:
                    break
                seen.add(link.follows)
                earlier = conn.execute(
                    sa.select(pilots.c.title, pilots.c.status).where(pilots.c.id == link.follows)
                ).one()
                run = conn.execute(
                    sa.select(runs.c.evidence_json)
                    .where(runs.c.pilot_id == link.follows)
                    .order_by(runs.c.id.desc())
                    .limit(1)
                ).first()
                evidence = json.loads(run.evidence_json) if run is not None else None
                steps.append(
                    CycleStep(link.follows, earlier.title, earlier.status, link.change, evidence)
                )
                current = link.follows
        return tuple(reversed(steps))

    # ------------------------------------------------------------------ allocations

    def record_allocation(
        self,
        spec: PilotSpec,
        document: Mapping[str, Any],
        *,
        allocation_sha256: str,
        scheme: str,
        seed: int,
        n_units: int,
        data_sha256: str | None = None,
        reason: str | None = None,
    ) -> tuple[AllocationRecord, PlanVersion | None]:
        """Record a randomised pilot's allocation before it starts, in one transaction.

        A pilot not yet registered is registered with it (plan version 1, in the same
        transaction). A pilot that has an allocation already is refused unless ``reason`` says
        why the allocation changed: the new version is then a deviation the report lists.

        Parameters
        ----------
        spec
            The pilot file.
        document
            The allocation as written to ``allocation.json`` (each unit's arm or wave...).
        allocation_sha256
            The allocation's own hash (the one ``pilotlab run`` recomputes).
        scheme, seed, n_units
            How it was drawn, and how many units it allocates.
        data_sha256
            SHA-256 of the data the allocation was drawn from.
        reason
            Why a pilot that already has an allocation gets a new one.

        Returns
        -------
        tuple
            The recorded allocation, and the plan version registered with it (``None`` when
            the pilot was registered before).

        Raises
        ------
        RegistryError
            The pilot already has an allocation and no reason was given (or the allocation is
            unchanged); the pilot id is too long; the document is not JSON. Nothing is written.
        """
        if len(spec.id) > _MAX_ID:
            raise RegistryError(
                f"pilot id '{spec.id[:40]}...' is {len(spec.id)} characters long; the registry "
                f"keeps ids of up to {_MAX_ID} characters: shorten `id` in the pilot file"
            )
        if reason is not None and not reason.strip():
            raise RegistryError(
                'a changed allocation needs a reason: say why with --reason "..." (it appears '
                "in the report's deviations)"
            )
        document_json = _strict_json(dict(document), "allocation")
        plan_json = canonical_json(spec.plan())
        path = getattr(spec, "source_path", None) or "pilot.yaml"
        registered: PlanVersion | None = None
        with self._write() as conn:
            at = now_utc()
            refs: list[dict[str, Any]] = []
            if self._lock_pilot(conn, spec.id) is None:
                refs = self._register_rows(conn, spec, plan_json, False, at)
                registered = PlanVersion(spec.id, 1, _sha256(plan_json), at, None, False)
            latest = conn.execute(
                sa.select(allocations)
                .where(allocations.c.pilot_id == spec.id)
                .order_by(allocations.c.version.desc())
                .limit(1)
            ).first()
            if latest is not None and reason is None:
                raise RegistryError(
                    f"pilot '{spec.id}' already has an allocation (version {latest.version}, "
                    f"{latest.scheme}, seed {latest.seed}, hash {latest.allocation_sha256[:12]}, "
                    f"recorded {latest.recorded_at}); a pilot is randomised once, before it "
                    "starts. If the allocation really had to change, record the new one with "
                    f'`pilotlab randomise {path} --reason "..."` (the report lists it as a '
                    "deviation); nothing was recorded"
                )
            if latest is not None and latest.allocation_sha256 == allocation_sha256:
                raise RegistryError(
                    f"pilot '{spec.id}': the allocation drawn is the one registered already "
                    f"(version {latest.version}, hash {allocation_sha256[:12]}); change the "
                    "assignment (e.g. its seed) if a new allocation is meant; nothing was recorded"
                )
            version = 1 if latest is None else latest.version + 1
            values: dict[str, Any] = {
                "pilot_id": spec.id,
                "version": version,
                "scheme": scheme,
                "seed": int(seed),
                "n_units": int(n_units),
                "allocation_json": document_json,
                "allocation_sha256": allocation_sha256,
                "plan_sha256": _sha256(plan_json),
                "data_sha256": data_sha256,
                "reason": reason.strip() if reason else None,
                "recorded_at": at,
            }
            values["row_sha256"] = _row_hash("allocations", values)
            refs.append(_insert(conn, allocations, values))
            self._log(conn, at, "allocation", spec.id, refs)
        return _allocation_record(values, document_json), registered

    def allocations(self, pilot_id: str) -> tuple[AllocationRecord, ...]:
        """Every registered allocation of a pilot, oldest first (empty if it has none)."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(allocations)
                .where(allocations.c.pilot_id == pilot_id)
                .order_by(allocations.c.version)
            ).all()
        return tuple(_allocation_record(r._mapping, r.allocation_json) for r in rows)

    def _already_registered(self, conn: Connection, spec: PilotSpec) -> RegistryError:
        latest = self._versions(conn, spec.id)[-1]
        path = getattr(spec, "source_path", None) or "pilot.yaml"
        return RegistryError(
            f"pilot '{spec.id}' is already registered (plan version {latest.version}, "
            f"registered {latest.registered_at}); to change its analysis plan run "
            f'`pilotlab amend {path} --reason "..."` (add --data-seen if outcome data '
            "have been seen)"
        )

    def amend(self, spec: PilotSpec, reason: str, data_seen: bool = False) -> PlanVersion:
        """Register a new version of a pilot's analysis plan, if the plan changed.

        The registration record (title, lead, dates...) is refreshed from the pilot file either
        way; the status is changed only by :meth:`set_status`.

        Parameters
        ----------
        spec
            The amended pilot file.
        reason
            Why the plan changed (shown in the report's deviations table).
        data_seen
            Whether outcome data had been seen before the change.

        Returns
        -------
        PlanVersion
            The new version, or the latest one with ``created=False`` when the plan is unchanged.

        Raises
        ------
        RegistryError
            The pilot is not registered, or ``reason`` is empty.
        """
        if not reason or not reason.strip():
            raise RegistryError(
                'an amendment needs a reason: say why the plan changed with --reason "..." '
                "(it appears in the report's deviations table)"
            )
        plan = spec.plan()
        plan_json = canonical_json(plan)
        sha = _sha256(plan_json)
        with self._write() as conn:
            if self._lock_pilot(conn, spec.id) is None:
                raise self._not_registered(conn, spec.id)
            at = now_utc()  # under the lock: version numbers and times agree in order
            latest = conn.execute(
                sa.select(plan_versions)
                .where(plan_versions.c.pilot_id == spec.id)
                .order_by(plan_versions.c.version.desc())
                .limit(1)
            ).one()
            created = latest.plan_sha256 != sha
            version = latest.version + 1 if created else latest.version
            conn.execute(
                sa.update(pilots)
                .where(pilots.c.id == spec.id)
                .values(updated_at=at, latest_version=version, **_registration_values(spec))
            )
            if not created:
                self._log(conn, at, "refresh", spec.id, [])
                return _plan_version(latest, created=False)
            link = self._check_cycle(conn, spec) and (
                self._follows(conn, spec.id),
                self._latest_change(conn, spec.id),
            ) != (spec.cycle.follows, spec.cycle.change)  # type: ignore[union-attr]
            ref = self._insert_version(
                conn, spec.id, version, plan_json, reason.strip(), data_seen, at
            )
            refs = [ref, self._insert_cycle_link(conn, spec, version, at)] if link else [ref]
            self._log(conn, at, "amend", spec.id, refs)
        changes = tuple(changed_paths(json.loads(latest.plan_json), plan))
        return PlanVersion(spec.id, version, sha, at, reason.strip(), data_seen, changes)

    def plan_status(self, spec: PilotSpec) -> PlanMatch:
        """Compare a pilot file's analysis plan with the registered versions.

        Returns
        -------
        PlanMatch
            Registered or not, latest version, whether the plan matches it, the deviations
            (amendments) and any unregistered changes. ``PlanMatch.to_evidence()`` is the
            evidence record's ``plan`` block.
        """
        plan = spec.plan()
        sha = plan_sha256(spec)
        with self._read() as conn:
            versions = self._versions(conn, spec.id, with_plans=True)
            head = self._head(conn)
        if not versions:
            return PlanMatch(spec.id, sha, registered=False)
        changes = _changes_between(versions)
        latest = versions[-1]
        matched = next((v.version for v in reversed(versions) if v.plan_sha256 == sha), None)
        differences = (
            ()
            if latest.plan_sha256 == sha
            else plan_differences(json.loads(latest.plan_json), plan)
        )
        return PlanMatch(
            pilot_id=spec.id,
            plan_sha256=sha,
            registered=True,
            latest_version=latest.version,
            matched_version=matched,
            matches_registered=latest.plan_sha256 == sha,
            registered_at=versions[0].registered_at,
            latest_registered_at=latest.registered_at,
            deviations=tuple(
                Deviation(v.version, v.registered_at, ch, v.reason, bool(v.data_seen))
                for v, ch in zip(versions[1:], changes[1:], strict=True)
            ),
            registry_head=str(head),
            unregistered_changes=tuple(d["key"] for d in differences),
            unregistered_deviations=tuple(PlanDifference(**d) for d in differences),
        )

    def _head(self, conn: Connection) -> Head:
        last = conn.execute(
            sa.select(registry_log.c.seq, registry_log.c.entry_sha256)
            .order_by(registry_log.c.seq.desc())
            .limit(1)
        ).first()
        return (
            Head(last.seq, last.entry_sha256) if last else Head(0, chain.genesis(self.registry_id))
        )

    def head(self) -> Head:
        """The chain head now: the last log entry's ``SEQ:SHA256`` (``str(head)``).

        Publish it (in a report, an email, a minute); ``verify(head=...)`` later proves that the
        registry still holds exactly the history up to that entry.
        """
        with self._read() as conn:
            return self._head(conn)

    # ------------------------------------------------------------------ runs

    def record_run(
        self,
        spec: PilotSpec,
        evidence: Mapping[str, Any],
        data_sha256: str | None,
        software: Mapping[str, Any],
        *,
        started_at: datetime | str | None = None,
        finished_at: datetime | str | None = None,
    ) -> RunRecord:
        """Record one run of a registered pilot with its evidence record, in one transaction.

        Parameters
        ----------
        spec
            The pilot file that was run.
        evidence
            The evidence record (JSON-ready dict, ``evidence-record.md``).
        data_sha256
            SHA-256 of the data file used.
        software
            Software versions (``{"pilotlab": "0.1.0", "python": ...}``).
        started_at, finished_at
            When the run started and finished (aware datetimes or ISO text).

        Returns
        -------
        RunRecord
            The run, with the plan version it matched (``None`` if its plan was never
            registered) and whether that is the latest version.

        Raises
        ------
        RegistryError
            The pilot is not registered, the evidence record belongs to another pilot or is not
            valid JSON.
        """
        sha = plan_sha256(spec)
        pilot, plan = evidence.get("pilot"), evidence.get("plan")
        record_pilot = pilot.get("id") if isinstance(pilot, dict) else None
        if record_pilot is not None and record_pilot != spec.id:
            raise RegistryError(
                f"the evidence record is for pilot '{record_pilot}' but the pilot file is "
                f"'{spec.id}'; record each run with the pilot file it was made from"
            )
        record_plan = plan.get("sha256") if isinstance(plan, dict) else None
        if record_plan is not None and record_plan != sha:
            raise RegistryError(
                f"the evidence record's plan.sha256 ({str(record_plan)[:12]}...) is not the plan "
                f"of this pilot file ({sha[:12]}...); record each run with the pilot file it was "
                "made from"
            )
        evidence_json = _strict_json(dict(evidence), "evidence record")
        software_json = _strict_json(dict(software), "software versions")
        values: dict[str, Any] = {
            "run_id": uuid.uuid4().hex,
            "pilot_id": spec.id,
            "plan_sha256": sha,
            "data_sha256": data_sha256,
            "software_json": software_json,
            "evidence_json": evidence_json,
            "evidence_sha256": _sha256(evidence_json),
            "started_at": _as_timestamp(started_at),
            "finished_at": _as_timestamp(finished_at),
        }
        with self._write() as conn:
            if self._lock_pilot(conn, spec.id) is None:
                raise self._not_registered(conn, spec.id)
            shas = conn.execute(
                sa.select(plan_versions.c.version, plan_versions.c.plan_sha256)
                .where(plan_versions.c.pilot_id == spec.id)
                .order_by(plan_versions.c.version.desc())
            ).all()
            values["plan_version"] = next((v for v, s in shas if s == sha), None)
            values["matches_latest"] = shas[0].plan_sha256 == sha
            values["recorded_at"] = now_utc()
            values["row_sha256"] = _row_hash("runs", values)
            ref = _insert(conn, runs, values)
            conn.execute(
                sa.update(pilots)
                .where(pilots.c.id == spec.id)
                .values(run_count=pilots.c.run_count + 1, last_run_at=values["recorded_at"])
            )
            self._log(conn, values["recorded_at"], "run", spec.id, [ref])
        return _run_record(values)

    # ------------------------------------------------------------------ reading

    def list_pilots(self) -> list[PilotSummary]:
        """Every registered pilot with its latest plan version and run count, sorted by id."""
        query = sa.select(
            pilots.c.id,
            pilots.c.title,
            pilots.c.status,
            pilots.c.lead,
            pilots.c.policy_area,
            pilots.c.registered_at,
            pilots.c.latest_version,
            pilots.c.run_count,
            pilots.c.last_run_at,
        ).order_by(pilots.c.id)
        # Tens of thousands of objects that all survive: a cyclic-GC pass over the whole heap
        # in the middle would find nothing to free and would triple the time of the call.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with self._read() as conn:
                rows = conn.execute(query).all()  # columns in PilotSummary's field order
            return [PilotSummary(*r) for r in rows]
        finally:
            if gc_was_enabled:
                gc.enable()

    def pilots_with_metric(self, metric: str) -> list[PilotSummary]:
        """Registered pilots with an outcome that names ``metric`` (``<framework>/<code>``, or a
        bare code matching any framework's), sorted by id."""
        query = sa.select(
            pilots.c.id,
            pilots.c.title,
            pilots.c.status,
            pilots.c.lead,
            pilots.c.policy_area,
            pilots.c.registered_at,
            pilots.c.latest_version,
            pilots.c.run_count,
            pilots.c.last_run_at,
            pilots.c.outcomes,
        ).order_by(pilots.c.id)

        def measures(outcomes: Any) -> bool:
            for o in outcomes if isinstance(outcomes, list) else []:
                ref = o.get("metric") if isinstance(o, dict) else None
                if isinstance(ref, str) and (ref == metric or ref.split("/")[-1] == metric):
                    return True
            return False

        with self._read() as conn:
            rows = conn.execute(query).all()
        return [PilotSummary(*r[:-1]) for r in rows if measures(r.outcomes)]

    def show(self, pilot_id: str) -> PilotHistory:
        """The registration record, every plan version, run and status change of one pilot.

        Raises
        ------
        RegistryError
            The pilot is not registered.
        """
        with self._read() as conn:
            record = conn.execute(sa.select(pilots).where(pilots.c.id == pilot_id)).first()
            if record is None:
                raise self._not_registered(conn, pilot_id)
            versions = self._versions(conn, pilot_id, with_plans=True)
            run_rows = conn.execute(
                sa.select(runs).where(runs.c.pilot_id == pilot_id).order_by(runs.c.id)
            ).all()
            statuses = conn.execute(
                sa.select(status_changes)
                .where(status_changes.c.pilot_id == pilot_id)
                .order_by(status_changes.c.id)
            ).all()
        changes = _changes_between(versions)
        return PilotHistory(
            record=dict(record._mapping),
            versions=tuple(_plan_version(v, ch) for v, ch in zip(versions, changes, strict=True)),
            runs=tuple(_run_record(r._mapping) for r in run_rows),
            status_changes=tuple(
                StatusChange(s.pilot_id, s.old_status, s.new_status, s.changed_at) for s in statuses
            ),
        )

    def set_status(self, pilot_id: str, status: str) -> StatusChange:
        """Change a pilot's status (``planned``, ``live``, ``completed``, ``withdrawn``).

        Raises
        ------
        RegistryError
            The status is not one of those, or the pilot is not registered.
        """
        if status not in STATUSES:
            raise RegistryError(
                f"status {status!r} is not allowed; use one of {', '.join(STATUSES)}"
            )
        with self._write() as conn:
            row = self._lock_pilot(conn, pilot_id)
            if row is None:
                raise self._not_registered(conn, pilot_id)
            at = now_utc()
            if row.status == status:
                return StatusChange(pilot_id, row.status, status, at)
            conn.execute(
                sa.update(pilots)
                .where(pilots.c.id == pilot_id)
                .values(status=status, updated_at=at)
            )
            ref = self._insert_status(conn, pilot_id, row.status, status, at)
            self._log(conn, at, "status", pilot_id, [ref])
        return StatusChange(pilot_id, row.status, status, at)

    def _latest_runs(self, conn: Connection) -> list[Any]:
        last = sa.select(sa.func.max(runs.c.id)).group_by(runs.c.pilot_id)
        query = (
            sa.select(runs, pilots.c.status.label("pilot_status"))
            .join(pilots, pilots.c.id == runs.c.pilot_id)
            .where(runs.c.id.in_(last))
            .order_by(runs.c.pilot_id)
        )
        return list(conn.execute(query))

    def _provenance(self, run: Any) -> dict[str, Any]:
        return {
            "registry_id": self.registry_id,
            "registry_name": self.name,
            "registry_url": self.display_url,
            "pilot_status": run.pilot_status,  # now, in this registry (the record: at the run)
            "run_id": run.run_id,
            "recorded_at": run.recorded_at,
            "plan_version": run.plan_version,
            "matches_latest": bool(run.matches_latest),
            "evidence_sha256": run.evidence_sha256,
        }

    def portfolio_records(self) -> list[dict[str, Any]]:
        """Latest evidence record of every pilot: this registry's and imported ones.

        Each record is the stored evidence record plus a ``provenance`` block naming the registry
        it came from (``registry_id``, ``registry_name``, ``registry_url``, ``run_id``...; for
        imported records also ``imported_at`` and ``imported_from``). Sorted by pilot id.
        """
        with self._read() as conn:
            local = self._latest_runs(conn)
            last = sa.select(sa.func.max(imported_records.c.id)).group_by(
                imported_records.c.source_registry_id, imported_records.c.pilot_id
            )
            imported = conn.execute(
                sa.select(imported_records).where(imported_records.c.id.in_(last))
            ).all()
        out = []
        for run in local:
            record = json.loads(run.evidence_json)
            record["provenance"] = self._provenance(run)
            out.append(record)
        for imp in imported:
            record = json.loads(imp.evidence_json)
            record["provenance"] = {
                "registry_id": imp.source_registry_id,
                "registry_name": imp.source_name,
                "registry_url": imp.source_url,
                "run_id": imp.source_run_id,
                "recorded_at": imp.source_recorded_at,
                "evidence_sha256": imp.evidence_sha256,
                "imported_at": imp.imported_at,
                "imported_from": imp.imported_from,
            }
            out.append(record)
        out.sort(
            key=lambda r: (
                r["provenance"]["registry_id"] != self.registry_id,
                str((r.get("pilot") or {}).get("id")),
            )
        )
        return out

    # ------------------------------------------------------------------ sharing

    def _export_rows(
        self, conn: Connection, pilot_ids: Collection[str] | None = None
    ) -> Iterator[Any]:
        """Every pilot with its latest run (or none) and latest plan version, by pilot id,
        streamed from the database."""
        last = sa.select(sa.func.max(runs.c.id)).group_by(runs.c.pilot_id).scalar_subquery()
        latest = sa.select(runs).where(runs.c.id.in_(last)).subquery("latest")
        versions = (
            sa.select(
                plan_versions.c.pilot_id, sa.func.max(plan_versions.c.version).label("version")
            )
            .group_by(plan_versions.c.pilot_id)
            .subquery("versions")
        )
        run_cols = [
            "run_id", "recorded_at", "plan_sha256", "plan_version", "matches_latest",
            "data_sha256", "evidence_sha256", "evidence_json",
        ]  # fmt: skip
        query = (
            sa.select(
                pilots,
                versions.c.version.label("latest_plan_version"),
                *(latest.c[c].label(f"run_{c}") for c in run_cols),
            )
            .outerjoin(latest, latest.c.pilot_id == pilots.c.id)
            .outerjoin(versions, versions.c.pilot_id == pilots.c.id)
            .order_by(pilots.c.id)
        )
        if pilot_ids is not None:
            query = query.where(pilots.c.id.in_(sorted(pilot_ids)))
        for row in conn.execution_options(stream_results=True, yield_per=16).execute(query):
            run = None
            if row.run_run_id is not None:
                run = SimpleNamespace(
                    **{c: getattr(row, f"run_{c}") for c in run_cols}, pilot_status=row.status
                )
            yield row, run

    def export(
        self, path_dir: str | Path, *, pilot_ids: Collection[str] | None = None
    ) -> ExportSummary:
        """Write the latest evidence record of every pilot for a central department.

        Writes ``evidence.jsonl`` (one evidence record per line, each with a ``provenance``
        block) and ``evidence.csv`` (one row per pilot x registered outcome; result columns are
        empty for pilots without a run). Rows are written as they are read from the database
        (memory does not grow with the registry); each file appears whole or not at all.

        Parameters
        ----------
        path_dir
            Folder to write into (created if missing).
        pilot_ids
            Export only these pilots (default: every pilot).
        """
        exported_at = now_utc()

        def items() -> Iterator[tuple[str | None, list[dict[str, Any]]]]:
            with self._read() as conn:
                for p, run in self._export_rows(conn, pilot_ids):
                    record = json.loads(run.evidence_json) if run is not None else None
                    line = None
                    if record is not None:
                        prov = {**self._provenance(run), "exported_at": exported_at}
                        line = canonical_json({**record, "provenance": prov})
                    yield line, csv_rows(p, p.latest_plan_version, run, record)

        jsonl_path, csv_path, n_lines, n_rows = write_export(Path(path_dir), items())
        return ExportSummary(str(jsonl_path), str(csv_path), n_lines, n_rows)

    def import_records(self, path: str | Path) -> ImportSummary:
        """Load evidence records exported by another registry, keeping their provenance.

        The file is read line by line. Every record is checked before anything is kept: UTF-8,
        strict JSON, size and nesting limits (``pilotlab.registry.importing``), the evidence
        record's JSON Schema and version, the types of its ``provenance`` block, and its
        ``evidence_sha256``. The whole file is imported in one transaction: one bad record and
        nothing is imported.

        Parameters
        ----------
        path
            An ``evidence.jsonl`` written by :meth:`export`, the folder holding it, or a single
            ``evidence.json`` written by ``pilotlab run``.

        Returns
        -------
        ImportSummary
            How many records were read, imported, and skipped as already imported.

        Raises
        ------
        RegistryError
            The file is missing, too large, or a record is not a valid evidence record, or its
            content no longer matches the hash it was exported with. Nothing is imported then.
        """
        from pilotlab.registry.importing import check_record, read_records

        src = Path(path)
        if src.is_dir():
            src = src / "evidence.jsonl"
        if not src.is_file():
            raise RegistryError(
                f"{src}: no such file; give the evidence.jsonl written by `pilotlab export` "
                "(or its folder), or an evidence.json written by `pilotlab run`"
            )
        resolved = str(src.resolve())
        at = now_utc()
        read = imported = 0
        sources: set[str] = set()
        with self._write() as conn:
            appender: chain.Appender | None = None
            for where, parsed in read_records(src):
                record, prov = check_record(parsed, where)
                values = self._prepare_import(where, record, prov, resolved, at)
                read += 1
                sources.add(values["source_name"])
                exists = conn.execute(
                    sa.select(imported_records.c.id).where(
                        imported_records.c.source_registry_id == values["source_registry_id"],
                        imported_records.c.evidence_sha256 == values["evidence_sha256"],
                    )
                ).first()
                if exists is None:
                    ref = _insert(conn, imported_records, values)
                    if appender is None:
                        appender = chain.Appender(conn, self.registry_id, self.key)
                    appender.add(at, "import", values["pilot_id"], [ref])
                    imported += 1
            if appender is not None:
                appender.flush()
        return ImportSummary(str(src), read, imported, read - imported, tuple(sorted(sources)))

    def _prepare_import(
        self, where: str, record: dict[str, Any], prov: dict[str, Any], resolved: str, at: str
    ) -> dict[str, Any]:
        from pilotlab.registry.importing import NOTHING

        evidence_json = _strict_json(record, f"evidence record at {where}")
        sha = _sha256(evidence_json)
        declared = prov.get("evidence_sha256")
        if declared is not None and declared != sha:
            raise RegistryError(
                f"{where}: the record of pilot '{record['pilot']['id']}' does not match the "
                f"evidence_sha256 it was exported with ({declared[:12]}..., content hashes to "
                f"{sha[:12]}...): it was changed after export; ask the source registry for a "
                f"fresh export; {NOTHING}"
            )
        source_id = prov.get("registry_id") or "file:" + _sha256(resolved)[:32]
        if source_id == self.registry_id:
            raise RegistryError(
                f"{where}: this record was exported from this very registry "
                f"({self.display_url}); import exports of other registries only; {NOTHING}"
            )
        values: dict[str, Any] = {
            "pilot_id": record["pilot"]["id"],
            "source_registry_id": source_id,
            "source_name": prov.get("registry_name") or resolved,
            "source_url": prov.get("registry_url"),
            "source_run_id": prov.get("run_id"),
            "source_recorded_at": prov.get("recorded_at"),
            "evidence_json": evidence_json,
            "evidence_sha256": sha,
            "imported_at": at,
            "imported_from": resolved,
        }
        values["row_sha256"] = _row_hash("imported_records", values)
        return values

    # ------------------------------------------------------------------ PostgreSQL roles

    def grant_service_role(self, role: str) -> list[str]:
        """Give a PostgreSQL role exactly what the service needs, and no more (run as owner).

        The role may read every registry table, append rows to the append-only tables and the
        log, and update the columns of ``pilots`` that writes maintain; it cannot update or
        delete history, truncate, or alter the tables or their triggers (only the owner can).

        Returns
        -------
        list of str
            The SQL statements executed.

        Raises
        ------
        RegistryError
            Not PostgreSQL, the role does not exist, or it owns the tables (then triggers could
            be disabled by it: use a separate role for the service).
        """
        with self._write() as conn:
            if conn.dialect.name != "postgresql":
                raise RegistryError(
                    "database roles apply to PostgreSQL registries only; a SQLite registry is "
                    "protected by the permissions of its file"
                )
            exists = conn.execute(
                sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": role}
            ).first()
            if exists is None:
                raise RegistryError(
                    f"role {role!r} does not exist in {self.display_url}; create it first "
                    f"(CREATE ROLE {role} LOGIN PASSWORD '...')"
                )
            owner = conn.execute(
                sa.text(
                    "SELECT tableowner FROM pg_tables WHERE tablename = 'registry_log' "
                    "AND schemaname = current_schema()"
                )
            ).scalar_one()
            if owner == role or exists.rolsuper:
                raise RegistryError(
                    f"role {role!r} owns the registry tables or is a superuser, so it could "
                    "disable their triggers; create a separate login role for the service and "
                    "grant it access with this command"
                )
            statements = service_role_sql(conn, role)
            for sql in statements:
                conn.execute(sa.text(sql))
        return statements

    # ------------------------------------------------------------------ tamper evidence

    def verify(self, *, head: Head | str | None = None) -> list[Problem]:
        """Every problem :meth:`audit` finds (empty when the registry is intact)."""
        return list(self.audit(head=head).problems)

    def audit(self, *, head: Head | str | None = None) -> Verification:
        """Recompute the hash chain and check every table against it.

        Checks the log (sequence numbers 1, 2, 3... without gaps, each entry's hash, each
        entry's link to the one before it, and, with a key, each signature); then that every row
        of every table is exactly the row the log recorded when it was written (no row edited,
        deleted or inserted outside pilotlab, and each pilot's row as its latest write left it);
        then the plans' and evidence records' own hashes, the plan version numbers and the
        run links. With ``head`` (a head published earlier), also that the chain still contains
        that entry unchanged: a registry whose latest entries were deleted, or that was wiped
        and rebuilt, fails this check.

        Parameters
        ----------
        head
            A published head, ``"SEQ:SHA256"`` or a :class:`~pilotlab.registry.chain.Head`.

        Returns
        -------
        Verification
            The problems found, the current head and how many entries are signed.
        """
        published = chain.parse_head(head) if isinstance(head, str) else head
        problems: list[Problem] = []

        def flag(table: str, key: str, pilot_id: str | None, message: str) -> None:
            problems.append(Problem(table, key, pilot_id, message))

        with self._read() as conn:
            state = self._check_log(conn, flag)
            self._check_rows(conn, flag, state)
        last_seq, last_sha = state.last
        if published is not None:
            got = state.hash_at.get(published.seq)
            if published.seq == 0:
                if published.sha256 != chain.genesis(self.registry_id):
                    flag(
                        "registry_log",
                        f"head {published}",
                        None,
                        "the published head is the empty log of another registry",
                    )
            elif published.seq > last_seq:
                flag(
                    "registry_log",
                    f"head {published.seq}",
                    None,
                    f"the published head is entry {published.seq}, but the log ends at entry "
                    f"{last_seq}: entries were deleted, or the registry was wiped or rebuilt",
                )
            elif got != published.sha256:
                flag(
                    "registry_log",
                    f"head {published.seq}",
                    None,
                    f"entry {published.seq} hashes to {str(got)[:12]}..., not the published "
                    f"{published.sha256[:12]}...: the history up to it was rewritten (or this "
                    "is another registry)",
                )
        return Verification(
            problems=tuple(problems),
            head=str(Head(last_seq, last_sha)),
            entries=state.entries,
            signed=state.signed,
            key_id=self.key.key_id if self.key else None,
            head_checked=str(published) if published is not None else None,
        )

    def _check_log(self, conn: Connection, flag: Any) -> _LogState:
        state = _LogState(last=(0, chain.genesis(self.registry_id)))
        expect, prev = 1, state.last[1]
        signed_since: int | None = None
        query = sa.select(registry_log).order_by(registry_log.c.seq)
        for row in conn.execution_options(stream_results=True, yield_per=1000).execute(query):
            key = f"entry {row.seq}"
            state.entries += 1
            if row.seq != expect:
                gap = (
                    f"entry {expect} is"
                    if row.seq == expect + 1
                    else f"entries {expect} to {row.seq - 1} are"
                )
                flag(
                    "registry_log", key, None, f"{gap} missing before it: log entries were deleted"
                )
            content = chain.loads_entry(row.entry_json)
            if _sha256(row.entry_json) != row.entry_sha256:
                flag("registry_log", key, None, "the entry does not match its hash: it was edited")
            if content is None or content.get("seq") != row.seq:
                flag("registry_log", key, None, f"the entry's content is not entry {row.seq}")
                content = content or {}
            if content.get("prev") != prev:
                flag(
                    "registry_log",
                    key,
                    content.get("pilot_id"),
                    "the entry does not follow the one before it (its recorded previous hash "
                    "differs): entries before it were changed, deleted or inserted",
                )
            prev, expect = row.entry_sha256, row.seq + 1
            state.hash_at[row.seq] = row.entry_sha256
            state.last = (row.seq, row.entry_sha256)
            if row.signature is not None:
                state.signed += 1
                signed_since = row.seq if signed_since is None else signed_since
            if self.key is not None:
                if row.signature is None:
                    state.unsigned.append(row.seq)
                elif row.key_id != self.key.key_id:
                    flag(
                        "registry_log",
                        key,
                        content.get("pilot_id"),
                        f"signed with key id {row.key_id}, not with the key given "
                        f"({self.key.key_id})",
                    )
                elif not self.key.check(row.entry_sha256, row.signature):
                    flag(
                        "registry_log",
                        key,
                        content.get("pilot_id"),
                        "the signature does not match: the entry was written without the key",
                    )
            for table, row_id, sha in chain.iter_refs(content.get("rows") or []):
                ref_key = (table, row_id)
                if table != "pilots" and ref_key in state.refs:
                    flag("registry_log", key, None, f"{table} row {row_id} is logged twice")
                state.refs[ref_key] = (sha, row.seq)
        if self.key is not None:
            # Entries before the first signed one predate the key; unsigned ones after it (or
            # all of them, when none is signed) were written by someone without it.
            first = signed_since
            late = [s for s in state.unsigned if first is None or s > first]
            if first is None and state.entries:
                flag(
                    "registry_log",
                    "signatures",
                    None,
                    f"no log entry is signed with the key given (key id {self.key.key_id}): "
                    "the log was written, or rewritten, without it",
                )
            elif late:
                flag(
                    "registry_log",
                    f"entry {late[0]}",
                    None,
                    f"{len(late)} entr{'y is' if len(late) == 1 else 'ies are'} unsigned after "
                    f"signed entry {first}: written without the key",
                )
        return state

    def _check_rows(self, conn: Connection, flag: Any, state: _LogState) -> None:
        refs = state.refs

        def check(table: str, key: str, row: Any, stored: tuple[str, str, str] | None) -> None:
            """The row hash; ``stored`` = (JSON text, its recorded SHA-256, what it is)."""
            if stored is not None and _sha256(stored[0]) != stored[1]:
                flag(
                    table,
                    key,
                    row.pilot_id,
                    f"{stored[2]} does not match its SHA-256: it was edited outside pilotlab",
                )
            recomputed = _row_hash(table, row._mapping)
            if recomputed != row.row_sha256:
                flag(
                    table,
                    key,
                    row.pilot_id,
                    "the row does not match its row hash: one of its "
                    "columns was changed outside pilotlab",
                )
            logged = refs.pop((table, row.id), None)
            if logged is None:
                flag(
                    table,
                    key,
                    row.pilot_id,
                    "the row is not in the registry log: it was inserted outside pilotlab",
                )
            elif logged[0] != recomputed:
                flag(
                    table,
                    key,
                    row.pilot_id,
                    f"the row differs from the one log entry {logged[1]} recorded when it was "
                    "written: it was changed outside pilotlab",
                )

        stream = conn.execution_options(stream_results=True, yield_per=500)
        last: dict[str, int] = {}
        version_sha: dict[tuple[str, int], str] = {}
        order = (plan_versions.c.pilot_id, plan_versions.c.version)
        for row in stream.execute(sa.select(plan_versions).order_by(*order)):
            key = f"{row.pilot_id} v{row.version}"
            want = last.get(row.pilot_id, 0) + 1
            if row.version != want:
                flag(
                    "plan_versions",
                    key,
                    row.pilot_id,
                    f"version {want} is missing "
                    "(versions run 1, 2, 3...): a registered plan version was deleted",
                )
            last[row.pilot_id] = row.version
            version_sha[(row.pilot_id, row.version)] = row.plan_sha256
            check(
                "plan_versions", key, row, (row.plan_json, row.plan_sha256, "the registered plan")
            )
        for row in stream.execute(sa.select(runs).order_by(runs.c.id)):
            key = f"run {row.run_id}"
            check("runs", key, row, (row.evidence_json, row.evidence_sha256, "the evidence"))
            linked = version_sha.get((row.pilot_id, row.plan_version))
            if row.plan_version is not None and linked != row.plan_sha256:
                flag(
                    "runs",
                    key,
                    row.pilot_id,
                    "the run's plan hash differs from that of "
                    f"plan version {row.plan_version}, to which it is linked",
                )
        per_pilot = sa.select(
            runs.c.pilot_id, sa.func.count(), sa.func.max(runs.c.recorded_at)
        ).group_by(runs.c.pilot_id)
        run_stats = {pid: (n, at) for pid, n, at in conn.execute(per_pilot)}
        for row in stream.execute(sa.select(pilots).order_by(pilots.c.id)):
            pid = row.id
            version, n_runs, last_run = row.latest_version, row.run_count, row.last_run_at
            if pid not in last:
                flag("pilots", pid, pid, "the pilot has no plan version: version 1 was deleted")
            elif (version, n_runs, last_run) != (last[pid], *run_stats.get(pid, (0, None))):
                flag(
                    "pilots",
                    pid,
                    pid,
                    f"the pilot's record (plan version {version}, "
                    f"{n_runs} runs) disagrees with its history (version {last[pid]}, "
                    f"{run_stats.get(pid, (0,))[0]} runs): plan versions or runs were "
                    "added or deleted outside pilotlab",
                )
            logged = refs.pop(("pilots", pid), None)
            if logged is None:
                flag(
                    "pilots",
                    pid,
                    pid,
                    "the pilot is not in the registry log: it was inserted outside pilotlab",
                )
            elif logged[0] != chain.pilot_state_sha256(row._mapping):
                flag(
                    "pilots",
                    pid,
                    pid,
                    f"the pilot's record differs from the one log entry {logged[1]} recorded "
                    "after its latest write: it was changed outside pilotlab",
                )
        for row in stream.execute(sa.select(status_changes).order_by(status_changes.c.id)):
            check("status_changes", f"#{row.id} {row.pilot_id}", row, None)
        last_alloc: dict[str, int] = {}
        order_alloc = (allocations.c.pilot_id, allocations.c.version)
        for row in stream.execute(sa.select(allocations).order_by(*order_alloc)):
            key = f"{row.pilot_id} allocation v{row.version}"
            want = last_alloc.get(row.pilot_id, 0) + 1
            if row.version != want:
                flag(
                    "allocations",
                    key,
                    row.pilot_id,
                    f"allocation version {want} is missing (versions run 1, 2, 3...): a "
                    "registered allocation was deleted",
                )
            last_alloc[row.pilot_id] = row.version
            check("allocations", key, row, None)
        for row in stream.execute(sa.select(cycle_links).order_by(cycle_links.c.id)):
            check("cycle_links", f"#{row.id} {row.pilot_id} follows {row.follows}", row, None)
        for row in stream.execute(sa.select(imported_records).order_by(imported_records.c.id)):
            check(
                "imported_records",
                f"#{row.id} {row.pilot_id} from {row.source_name}",
                row,
                (row.evidence_json, row.evidence_sha256, "the imported evidence record"),
            )
        for (table, row_id), (_sha, seq) in sorted(refs.items(), key=lambda kv: kv[1][1]):
            flag(
                table,
                f"{row_id}" if table == "pilots" else f"#{row_id}",
                row_id if table == "pilots" else None,
                f"the row recorded by log entry {seq} is missing: it was deleted outside pilotlab",
            )


@dataclass
class _LogState:
    """What :meth:`Registry._check_log` learnt from the log, for the table checks."""

    last: tuple[int, str]
    entries: int = 0
    signed: int = 0
    refs: dict[tuple[str, Any], tuple[str, int]] = field(default_factory=dict)
    hash_at: dict[int, str] = field(default_factory=dict)
    unsigned: list[int] = field(default_factory=list)


APPEND_ONLY_SEQUENCES = (
    "plan_versions",
    "runs",
    "status_changes",
    "imported_records",
    "allocations",
    "cycle_links",
)


def service_role_sql(conn: Connection, role: str) -> list[str]:
    """The GRANT statements that let ``role`` run the service and nothing more."""
    quote = conn.dialect.identifier_preparer.quote
    schema = quote(conn.execute(sa.text("SELECT current_schema()")).scalar_one())
    r = quote(role)
    tables = [
        "registry_info", "pilots", "plan_versions", "runs", "status_changes",
        "imported_records", "registry_log", "alembic_version", "allocations", "cycle_links",
        *SERVICE_TABLES,
    ]  # fmt: skip
    serial = (*APPEND_ONLY_SEQUENCES, *_SERVICE_SERIAL)
    sequences = [
        conn.execute(
            sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": f"{schema}.{t}"}
        ).scalar_one()
        for t in serial
    ]
    service_mutable = [t for t in SERVICE_TABLES if t not in ("audit_log", "run_files")]
    mutable = [c.name for c in pilots.columns if c.name not in ("id", "registered_at")]
    qualified = ", ".join(f"{schema}.{quote(t)}" for t in tables)
    return [
        f"GRANT USAGE ON SCHEMA {schema} TO {r}",
        f"REVOKE ALL ON {qualified} FROM {r}",
        f"GRANT SELECT ON {qualified} TO {r}",
        f"GRANT INSERT ON {schema}.pilots, {schema}.plan_versions, {schema}.runs, "
        f"{schema}.status_changes, {schema}.imported_records, {schema}.registry_log, "
        f"{schema}.allocations, {schema}.cycle_links TO {r}",
        f"GRANT UPDATE ({', '.join(quote(c) for c in mutable)}) ON {schema}.pilots TO {r}",
        f"GRANT INSERT ON {', '.join(f'{schema}.{t}' for t in SERVICE_TABLES)} TO {r}",
        f"GRANT UPDATE, DELETE ON {', '.join(f'{schema}.{t}' for t in service_mutable)} TO {r}",
        f"GRANT USAGE, SELECT ON SEQUENCE {', '.join(s for s in sequences if s)} TO {r}",
    ]
