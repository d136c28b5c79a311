"""The pilot registry: pre-registered analysis plans, recorded runs and shared evidence.

One :class:`Registry` wraps one database: an embedded SQLite file by default
(``.pilotlab/registry.db`` in the working directory) or a shared PostgreSQL database
(``postgresql+psycopg://...``). Every write is a single transaction; writers that could race
(amendments, runs) serialise on the pilot: ``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR
UPDATE`` on the pilot's row on PostgreSQL, with a unique ``(pilot_id, version)``
constraint as the last line of defence.
"""

from __future__ import annotations

import difflib
import gc
import hashlib
import itertools
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from pilotlab.exceptions import RegistryError
from pilotlab.registry.diff import changed_paths, plan_differences
from pilotlab.registry.export import csv_rows, write_export
from pilotlab.registry.records import (
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
)
from pilotlab.registry.tables import (
    imported_records,
    pilots,
    plan_versions,
    registry_info,
    runs,
    status_changes,
)
from pilotlab.spec import PilotSpec, canonical_json, plan_sha256

__all__ = ["ENV_URL", "STATUSES", "Registry", "default_url", "resolve_url"]

ENV_URL = "PILOTLAB_REGISTRY_URL"
ENV_NAME = "PILOTLAB_REGISTRY_NAME"
STATUSES: tuple[str, ...] = get_args(PilotSpec.model_fields["status"].annotation)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x7069_6C6F  # "pilo": advisory lock key held while migrating
_SQLITE_BUSY_TIMEOUT_MS = 60_000

_ESTIMATOR_DESIGN = {
    "auto": "difference-in-differences family (estimator chosen by pilotlab)",
    "did": "difference-in-differences",
    "twfe": "two-way fixed effects difference-in-differences",
    "event_study": "event study difference-in-differences",
    "callaway_santanna": "staggered difference-in-differences (Callaway and Sant'Anna)",
    "synthetic_control": "synthetic control",
    "synthetic_did": "synthetic difference-in-differences",
}
_FORM_DESIGN = {
    "common": "common start",
    "adoption": "staggered adoption",
    "column": "adoption from a data column",
}

# Columns covered by each append-only table's row hash: every column but the surrogate key.
_HASHED = {
    t.name: tuple(c.name for c in t.columns if c.name not in ("id", "row_sha256"))
    for t in (plan_versions, runs, status_changes, imported_records)
}


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


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _row_hash(table: str, values: Mapping[str, Any]) -> str:
    payload = {name: values.get(name) for name in _HASHED[table]}
    return _sha256(canonical_json({"table": table, "row": payload}))


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


def default_url() -> str:
    """``sqlite:///<cwd>/.pilotlab/registry.db``: the embedded registry of the working directory."""
    return f"sqlite:///{Path.cwd() / '.pilotlab' / 'registry.db'}"


def resolve_url(url: str | None = None) -> str:
    """The registry URL: ``url``, else ``$PILOTLAB_REGISTRY_URL``, else :func:`default_url`."""
    return url or os.environ.get(ENV_URL) or default_url()


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
    return (
        f"quasi-experimental: {_ESTIMATOR_DESIGN[spec.design.estimator]}, "
        f"{_FORM_DESIGN[spec.treatment.form]}"
    )


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

    def __init__(self, url: str | None = None, *, name: str | None = None) -> None:
        self.url = resolve_url(url)
        self.engine = _make_engine(self.url)
        self.display_url = self.engine.url.render_as_string(hide_password=True)
        self.name = name or os.environ.get(ENV_NAME) or self.display_url
        self._migrate()
        with self._read() as conn:
            self.registry_id: str = conn.execute(
                sa.select(registry_info.c.value).where(registry_info.c.key == "registry_id")
            ).scalar_one()

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
        with self._connect() as conn:
            if write:
                conn.execution_options(pilotlab_write=True)
            try:
                with conn.begin():
                    yield conn
            except sa.exc.OperationalError as exc:  # server gone, database locked too long...
                raise self._cannot_connect(exc) from exc

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

        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

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
            f"pilot '{pilot_id}' is not registered in {self.display_url}{hint}; register it "
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
    ) -> None:
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
        conn.execute(sa.insert(plan_versions).values(values))

    @staticmethod
    def _insert_status(
        conn: Connection, pilot_id: str, old: str | None, new: str, at: str
    ) -> StatusChange:
        values: dict[str, Any] = {
            "pilot_id": pilot_id,
            "old_status": old,
            "new_status": new,
            "changed_at": at,
        }
        values["row_sha256"] = _row_hash("status_changes", values)
        conn.execute(sa.insert(status_changes).values(values))
        return StatusChange(pilot_id, old, new, at)

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
        plan_json = canonical_json(spec.plan())
        try:
            with self._write() as conn:
                if self._lock_pilot(conn, spec.id) is not None:
                    raise self._already_registered(conn, spec)
                at = now_utc()  # taken under the lock: timestamps follow commit order
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
                self._insert_version(conn, spec.id, 1, plan_json, None, data_seen, at)
                self._insert_status(conn, spec.id, None, spec.status, at)
        except sa.exc.IntegrityError:
            # Another writer registered the same id between our check and our insert.
            with self._read() as conn:
                if self._lock_pilot(conn, spec.id) is not None:
                    raise self._already_registered(conn, spec) from None
            raise
        return PlanVersion(spec.id, 1, _sha256(plan_json), at, None, data_seen)

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
                return _plan_version(latest, created=False)
            self._insert_version(conn, spec.id, version, plan_json, reason.strip(), data_seen, at)
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
            unregistered_changes=tuple(d["key"] for d in differences),
            unregistered_deviations=tuple(differences),
        )

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
            conn.execute(sa.insert(runs).values(values))
            conn.execute(
                sa.update(pilots)
                .where(pilots.c.id == spec.id)
                .values(run_count=pilots.c.run_count + 1, last_run_at=values["recorded_at"])
            )
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
            return self._insert_status(conn, pilot_id, row.status, status, at)

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

    def export(self, path_dir: str | Path) -> ExportSummary:
        """Write the latest evidence record of every pilot for a central department.

        Writes ``evidence.jsonl`` (one evidence record per line, each with a ``provenance``
        block) and ``evidence.csv`` (one row per pilot x registered outcome; result columns are
        empty for pilots without a run).

        Parameters
        ----------
        path_dir
            Folder to write into (created if missing).
        """
        exported_at = now_utc()
        with self._read() as conn:
            latest = {r.pilot_id: r for r in self._latest_runs(conn)}
            pilot_rows = conn.execute(sa.select(pilots).order_by(pilots.c.id)).all()
            versions: dict[str, int] = dict(
                conn.execute(
                    sa.select(
                        plan_versions.c.pilot_id, sa.func.max(plan_versions.c.version)
                    ).group_by(plan_versions.c.pilot_id)
                ).all()
            )
        lines = []
        rows: list[dict[str, Any]] = []
        for p in pilot_rows:
            run = latest.get(p.id)
            record = json.loads(run.evidence_json) if run is not None else None
            if record is not None and run is not None:
                lines.append(
                    canonical_json(
                        {
                            **record,
                            "provenance": {**self._provenance(run), "exported_at": exported_at},
                        }
                    )
                )
            rows.extend(csv_rows(p, versions.get(p.id), run, record))
        jsonl_path, csv_path = write_export(Path(path_dir), lines, rows)
        return ExportSummary(str(jsonl_path), str(csv_path), len(lines), len(rows))

    def import_records(self, path: str | Path) -> ImportSummary:
        """Load evidence records exported by another registry, keeping their provenance.

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
            The file is missing or a line is not an evidence record, or a record's content no
            longer matches the hash it was exported with. Nothing is imported then.
        """
        src = Path(path)
        if src.is_dir():
            src = src / "evidence.jsonl"
        if not src.is_file():
            raise RegistryError(
                f"{src}: no such file; give the evidence.jsonl written by `pilotlab export` "
                "(or its folder), or an evidence.json written by `pilotlab run`"
            )
        text = src.read_text(encoding="utf-8")
        items: list[tuple[str, Any]] = []
        if src.suffix == ".json":
            try:
                items.append((f"{src}", json.loads(text)))
            except json.JSONDecodeError as exc:
                raise RegistryError(
                    f"{src}: not valid JSON ({exc}); give the evidence.json of `pilotlab run`"
                ) from None
        else:
            for n, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        items.append((f"{src}:{n}", json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise RegistryError(
                            f"{src}:{n}: not valid JSON ({exc}); each line of an export is one "
                            "evidence record"
                        ) from None
        resolved = str(src.resolve())
        at = now_utc()
        prepared = [self._prepare_import(where, rec, resolved, at) for where, rec in items]
        imported = 0
        with self._write() as conn:
            for values in prepared:
                exists = conn.execute(
                    sa.select(imported_records.c.id).where(
                        imported_records.c.source_registry_id == values["source_registry_id"],
                        imported_records.c.evidence_sha256 == values["evidence_sha256"],
                    )
                ).first()
                if exists is None:
                    conn.execute(sa.insert(imported_records).values(values))
                    imported += 1
        sources = tuple(sorted({v["source_name"] for v in prepared}))
        return ImportSummary(str(src), len(prepared), imported, len(prepared) - imported, sources)

    def _prepare_import(self, where: str, record: Any, resolved: str, at: str) -> dict[str, Any]:
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("pilot"), dict)
            or not (isinstance(record["pilot"].get("id"), str))
        ):
            raise RegistryError(
                f"{where}: not an evidence record (expected a JSON object with pilot.id); "
                "import files written by `pilotlab export` or `pilotlab run`"
            )
        record = dict(record)
        prov = record.pop("provenance", None) or {}
        if not isinstance(prov, dict):
            raise RegistryError(f"{where}: 'provenance' must be an object, found {prov!r}")
        evidence_json = _strict_json(record, f"evidence record at {where}")
        sha = _sha256(evidence_json)
        declared = prov.get("evidence_sha256")
        if declared is not None and declared != sha:
            raise RegistryError(
                f"{where}: the record of pilot '{record['pilot']['id']}' does not match the "
                f"evidence_sha256 it was exported with ({declared[:12]}..., content hashes to "
                f"{sha[:12]}...): it was changed after export; ask the source registry for a "
                "fresh export"
            )
        source_id = prov.get("registry_id") or "file:" + _sha256(resolved)[:32]
        if source_id == self.registry_id:
            raise RegistryError(
                f"{where}: this record was exported from this very registry "
                f"({self.display_url}); import exports of other registries only"
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

    # ------------------------------------------------------------------ tamper evidence

    def verify(self) -> list[Problem]:
        """Recompute every stored hash and report rows changed outside pilotlab.

        Checks each plan version (plan hash, row hash, contiguous version numbers), each run
        (evidence hash, row hash, link to the plan version it claims), each status change and
        each imported record.

        Returns
        -------
        list of Problem
            Empty when the registry is intact.
        """
        problems: list[Problem] = []

        def flag(table: str, key: str, pilot_id: str | None, message: str) -> None:
            problems.append(Problem(table, key, pilot_id, message))

        def check(table: str, key: str, row: Any, stored: tuple[str, str, str] | None) -> None:
            """The row hash; ``stored`` = (JSON text, its recorded SHA-256, what it is)."""
            if stored is not None and _sha256(stored[0]) != stored[1]:
                flag(
                    table,
                    key,
                    row.pilot_id,
                    f"{stored[2]} does not match its SHA-256: it was edited outside pilotlab",
                )
            if _row_hash(table, row._mapping) != row.row_sha256:
                flag(
                    table,
                    key,
                    row.pilot_id,
                    "the row does not match its row hash: one of its "
                    "columns was changed outside pilotlab",
                )

        with self._read() as conn:
            last: dict[str, int] = {}
            version_sha: dict[tuple[str, int], str] = {}
            order = (plan_versions.c.pilot_id, plan_versions.c.version)
            for row in conn.execute(sa.select(plan_versions).order_by(*order)):
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
                plan = (row.plan_json, row.plan_sha256, "the registered plan")
                check("plan_versions", key, row, plan)
            for row in conn.execute(sa.select(runs).order_by(runs.c.id)):
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
            counters = sa.select(
                pilots.c.id, pilots.c.latest_version, pilots.c.run_count, pilots.c.last_run_at
            ).order_by(pilots.c.id)
            for pid, version, n_runs, last_run in conn.execute(counters):
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
            for row in conn.execute(sa.select(status_changes).order_by(status_changes.c.id)):
                check("status_changes", f"#{row.id} {row.pilot_id}", row, None)
            for row in conn.execute(sa.select(imported_records).order_by(imported_records.c.id)):
                check(
                    "imported_records",
                    f"#{row.id} {row.pilot_id} from {row.source_name}",
                    row,
                    (row.evidence_json, row.evidence_sha256, "the imported evidence record"),
                )
        return problems
