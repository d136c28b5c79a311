"""What the evidence service stores beside the registry: organisations, people, API tokens,
sessions, each pilot's owner and visibility, the files uploaded with a run, and the audit log.

The service (``pilotlab.service``) decides who may do what; this module only reads and writes
the rows, always inside the registry's transactions: a write that the service makes together
with a registry write (a registration and its owner, a run and its report, an import and who may
see it, and the audit entry of each) goes through :meth:`Registry.writing_with`, so that it
commits with the registry's rows or not at all. Hashing happens in the service; this module
stores only the hashes it is given.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pilotlab.exceptions import RegistryError
from pilotlab.registry.core import Registry, now_utc
from pilotlab.registry.tables import (
    api_tokens,
    audit_log,
    imported_access,
    imported_records,
    imported_shares,
    organisations,
    people,
    pilot_access,
    pilot_shares,
    pilots,
    registry_log,
    run_files,
    runs,
    sessions,
)

__all__ = [
    "ROLES",
    "VISIBILITIES",
    "Access",
    "Accounts",
    "AuditEntry",
    "Organisation",
    "Person",
    "RunFile",
    "TokenInfo",
    "imported_portfolio_rows",
    "portfolio_rows",
]

ROLES: tuple[str, ...] = ("reader", "editor", "administrator")
VISIBILITIES: tuple[str, ...] = ("organisation", "shared", "public")


@dataclass(frozen=True, slots=True)
class Organisation:
    """A place or department using the service."""

    id: int
    slug: str
    name: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Person:
    """Someone who may sign in (or whose API token acts for them)."""

    id: int
    email: str
    name: str
    role: str
    organisation_id: int | None
    organisation: str | None  # the organisation's slug
    disabled: bool = False
    must_change_password: bool = False  # set by an administrator's password reset

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (no hash)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as listed (never its secret)."""

    token_id: str
    person_id: int
    label: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Access:
    """Who owns a pilot and who may see it."""

    pilot_id: str
    organisation_id: int
    organisation: str
    visibility: str
    shared_with: tuple[str, ...] = ()
    shared_with_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (organisations by slug)."""
        return {
            "pilot_id": self.pilot_id,
            "organisation": self.organisation,
            "visibility": self.visibility,
            "shared_with": list(self.shared_with),
        }


@dataclass(frozen=True, slots=True)
class RunFile:
    """A file uploaded with a run (its report, its tables)."""

    name: str
    media_type: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One write made through the service: who, when, what, with which token."""

    id: int
    at: str
    person_id: int | None
    person_email: str | None
    token_id: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    registry_seq: int | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


def _person(row: Any) -> Person:
    return Person(
        id=row.id,
        email=row.email,
        name=row.name,
        role=row.role,
        organisation_id=row.organisation_id,
        organisation=row.slug,
        disabled=bool(row.disabled),
        must_change_password=bool(row.must_change_password),
    )


_PERSON_QUERY = sa.select(
    people.c.id,
    people.c.email,
    people.c.name,
    people.c.role,
    people.c.organisation_id,
    people.c.disabled,
    people.c.must_change_password,
    people.c.password_hash,
    organisations.c.slug,
).outerjoin(organisations, organisations.c.id == people.c.organisation_id)


class Accounts:
    """The service's rows in one registry's database.

    Parameters
    ----------
    registry
        The open registry whose database holds the service's tables (migration 0003).
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # ------------------------------------------------------------------ transactions

    def read(self) -> AbstractContextManager[Connection]:
        """A read transaction on the registry's database."""
        return self.registry._read()

    def write(self) -> AbstractContextManager[Connection]:
        """A write transaction (serialised with every other registry write)."""
        return self.registry._write()

    # ------------------------------------------------------------------ organisations

    def organisations(self, conn: Connection | None = None) -> list[Organisation]:
        """Every organisation, by slug."""
        query = sa.select(organisations.c.id, organisations.c.slug, organisations.c.name)
        if conn is not None:
            rows = conn.execute(query.order_by(organisations.c.slug)).all()
        else:
            with self.read() as c:
                rows = c.execute(query.order_by(organisations.c.slug)).all()
        return [Organisation(*r) for r in rows]

    def organisation(self, conn: Connection, slug: str) -> Organisation | None:
        """The organisation with this slug, if any."""
        row = conn.execute(
            sa.select(organisations.c.id, organisations.c.slug, organisations.c.name).where(
                organisations.c.slug == slug
            )
        ).first()
        return Organisation(*row) if row is not None else None

    def add_organisation(self, conn: Connection, slug: str, name: str) -> Organisation:
        """Create an organisation (the slug must be new)."""
        if self.organisation(conn, slug) is not None:
            raise RegistryError(f"organisation '{slug}' already exists; choose another short name")
        key = conn.execute(
            sa.insert(organisations).values(slug=slug, name=name, created_at=now_utc())
        ).inserted_primary_key
        assert key is not None
        return Organisation(key[0], slug, name)

    # ------------------------------------------------------------------ people

    def count_people(self, conn: Connection, role: str | None = None) -> int:
        """How many people (with ``role``, if given) exist."""
        query = sa.select(sa.func.count()).select_from(people)
        if role is not None:
            query = query.where(people.c.role == role)
        return int(conn.execute(query).scalar_one())

    def people(self) -> list[Person]:
        """Everyone, by email."""
        with self.read() as conn:
            rows = conn.execute(_PERSON_QUERY.order_by(people.c.email)).all()
        return [_person(r) for r in rows]

    def person(self, conn: Connection, person_id: int) -> Person | None:
        """One person by id."""
        row = conn.execute(_PERSON_QUERY.where(people.c.id == person_id)).first()
        return _person(row) if row is not None else None

    def person_by_email(self, email: str) -> tuple[Person, str | None] | None:
        """One person and their password hash, by email (compared case-insensitively)."""
        with self.read() as conn:
            row = conn.execute(_PERSON_QUERY.where(people.c.email == email.strip().lower())).first()
        return (_person(row), row.password_hash) if row is not None else None

    def add_person(
        self,
        conn: Connection,
        *,
        email: str,
        name: str,
        role: str,
        organisation_id: int | None,
        password_hash: str | None,
    ) -> Person:
        """Create a person (the email must be new)."""
        email = email.strip().lower()
        if conn.execute(sa.select(people.c.id).where(people.c.email == email)).first():
            raise RegistryError(f"a person with email {email} already exists")
        key = conn.execute(
            sa.insert(people).values(
                email=email,
                name=name,
                role=role,
                organisation_id=organisation_id,
                password_hash=password_hash,
                created_at=now_utc(),
                disabled=False,
            )
        ).inserted_primary_key
        assert key is not None
        person = self.person(conn, key[0])
        assert person is not None
        return person

    def set_password(
        self, conn: Connection, person_id: int, password_hash: str, must_change: bool = False
    ) -> None:
        """Replace a person's password hash (``must_change``: they must choose a new one when
        they next sign in)."""
        conn.execute(
            sa.update(people)
            .where(people.c.id == person_id)
            .values(password_hash=password_hash, must_change_password=must_change)
        )

    def set_disabled(self, conn: Connection, person_id: int, disabled: bool) -> None:
        """Disable or re-enable a person."""
        conn.execute(sa.update(people).where(people.c.id == person_id).values(disabled=disabled))

    def end_sessions(self, conn: Connection, person_id: int, keep: str | None = None) -> int:
        """Delete every session of a person (but the one whose secret has SHA-256 ``keep``)."""
        query = sa.delete(sessions).where(sessions.c.person_id == person_id)
        if keep is not None:
            query = query.where(sessions.c.secret_sha256 != keep)
        return int(conn.execute(query).rowcount or 0)

    # ------------------------------------------------------------------ tokens

    def add_token(
        self,
        conn: Connection,
        *,
        token_id: str,
        person_id: int,
        label: str,
        secret_hash: str,
        expires_at: str | None,
    ) -> TokenInfo:
        """Store a new API token's hash."""
        at = now_utc()
        conn.execute(
            sa.insert(api_tokens).values(
                token_id=token_id,
                person_id=person_id,
                label=label,
                secret_hash=secret_hash,
                created_at=at,
                expires_at=expires_at,
            )
        )
        return TokenInfo(token_id, person_id, label, at, expires_at, None)

    def token(self, token_id: str) -> tuple[TokenInfo, str] | None:
        """A token and its secret's hash, by its public id."""
        with self.read() as conn:
            row = conn.execute(
                sa.select(api_tokens).where(api_tokens.c.token_id == token_id)
            ).first()
        if row is None:
            return None
        info = TokenInfo(
            row.token_id, row.person_id, row.label, row.created_at, row.expires_at, row.revoked_at
        )
        return info, row.secret_hash

    def tokens(self, person_id: int | None = None) -> list[TokenInfo]:
        """Tokens of one person (or everyone's), newest first."""
        query = sa.select(api_tokens).order_by(api_tokens.c.id.desc())
        if person_id is not None:
            query = query.where(api_tokens.c.person_id == person_id)
        with self.read() as conn:
            rows = conn.execute(query).all()
        return [
            TokenInfo(r.token_id, r.person_id, r.label, r.created_at, r.expires_at, r.revoked_at)
            for r in rows
        ]

    def revoke_token(self, conn: Connection, token_id: str) -> bool:
        """Mark a token revoked; False if it was not found or already revoked."""
        done = conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now_utc())
        )
        return bool(done.rowcount)

    # ------------------------------------------------------------------ sessions

    def add_session(
        self, conn: Connection, *, secret_sha256: str, person_id: int, csrf: str, expires_at: str
    ) -> None:
        """Store a sign-in session (by the SHA-256 of its secret)."""
        conn.execute(
            sa.insert(sessions).values(
                secret_sha256=secret_sha256,
                person_id=person_id,
                csrf_token=csrf,
                created_at=now_utc(),
                expires_at=expires_at,
            )
        )

    def session(self, secret_sha256: str) -> tuple[int, str, str] | None:
        """``(person_id, csrf token, expires_at)`` of a session."""
        with self.read() as conn:
            row = conn.execute(
                sa.select(sessions.c.person_id, sessions.c.csrf_token, sessions.c.expires_at).where(
                    sessions.c.secret_sha256 == secret_sha256
                )
            ).first()
        return (row.person_id, row.csrf_token, row.expires_at) if row is not None else None

    def end_session(self, conn: Connection, secret_sha256: str) -> None:
        """Delete a session (sign-out), and every expired one."""
        conn.execute(
            sa.delete(sessions).where(
                (sessions.c.secret_sha256 == secret_sha256) | (sessions.c.expires_at < now_utc())
            )
        )

    def person_by_id(self, person_id: int) -> Person | None:
        """One person by id, in its own read transaction."""
        with self.read() as conn:
            return self.person(conn, person_id)

    # ------------------------------------------------------------------ pilot access

    def _access_rows(self, conn: Connection, pilot_ids: Sequence[str] | None) -> dict[str, Access]:
        query = sa.select(
            pilot_access.c.pilot_id,
            pilot_access.c.organisation_id,
            organisations.c.slug,
            pilot_access.c.visibility,
        ).join(organisations, organisations.c.id == pilot_access.c.organisation_id)
        shares = sa.select(pilot_shares.c.pilot_id, organisations.c.id, organisations.c.slug).join(
            organisations, organisations.c.id == pilot_shares.c.organisation_id
        )
        if pilot_ids is not None:
            query = query.where(pilot_access.c.pilot_id.in_(pilot_ids))
            shares = shares.where(pilot_shares.c.pilot_id.in_(pilot_ids))
        shared: dict[str, list[tuple[int, str]]] = {}
        for pid, oid, slug in conn.execute(shares.order_by(organisations.c.slug)):
            shared.setdefault(pid, []).append((oid, slug))
        out = {}
        for pid, oid, slug, visibility in conn.execute(query):
            s = shared.get(pid, [])
            out[pid] = Access(
                pid, oid, slug, visibility, tuple(x[1] for x in s), tuple(x[0] for x in s)
            )
        return out

    def access(self, pilot_id: str, conn: Connection | None = None) -> Access | None:
        """Owner and visibility of one pilot (``None``: registered outside the service)."""
        if conn is not None:
            return self._access_rows(conn, [pilot_id]).get(pilot_id)
        with self.read() as c:
            return self._access_rows(c, [pilot_id]).get(pilot_id)

    def all_access(self) -> dict[str, Access]:
        """Owner and visibility of every pilot that has them."""
        with self.read() as conn:
            return self._access_rows(conn, None)

    def pilot_exists(self, conn: Connection, pilot_id: str) -> bool:
        """Whether the pilot is registered."""
        return (
            conn.execute(sa.select(pilots.c.id).where(pilots.c.id == pilot_id)).first() is not None
        )

    def set_access(
        self,
        conn: Connection,
        pilot_id: str,
        organisation_id: int,
        visibility: str,
        shared_with: Collection[int] = (),
    ) -> None:
        """Set a pilot's owner, visibility and the organisations it is shared with."""
        if visibility not in VISIBILITIES:
            raise RegistryError(
                f"visibility {visibility!r} is not allowed; use one of {', '.join(VISIBILITIES)}"
            )
        done = conn.execute(
            sa.update(pilot_access)
            .where(pilot_access.c.pilot_id == pilot_id)
            .values(organisation_id=organisation_id, visibility=visibility)
        )
        if not done.rowcount:
            conn.execute(
                sa.insert(pilot_access).values(
                    pilot_id=pilot_id, organisation_id=organisation_id, visibility=visibility
                )
            )
        conn.execute(sa.delete(pilot_shares).where(pilot_shares.c.pilot_id == pilot_id))
        for oid in sorted(set(shared_with)):
            conn.execute(sa.insert(pilot_shares).values(pilot_id=pilot_id, organisation_id=oid))

    # ------------------------------------------------------------------ imported records

    def grant_imported(
        self,
        conn: Connection,
        after_id: int,
        organisation_id: int,
        visibility: str = "organisation",
        shared_with: Collection[int] = (),
    ) -> int:
        """Give the imported records with ids above ``after_id`` their owner (the importing
        organisation) and visibility, as a pilot's."""
        if visibility not in VISIBILITIES:
            raise RegistryError(
                f"visibility {visibility!r} is not allowed; use one of {', '.join(VISIBILITIES)}"
            )
        ids = conn.execute(
            sa.select(imported_records.c.id).where(imported_records.c.id > after_id)
        ).scalars()
        n = 0
        for rid in ids.all():
            conn.execute(
                sa.insert(imported_access).values(
                    imported_record_id=rid, organisation_id=organisation_id, visibility=visibility
                )
            )
            for oid in sorted(set(shared_with)):
                conn.execute(
                    sa.insert(imported_shares).values(imported_record_id=rid, organisation_id=oid)
                )
            n += 1
        return n

    def last_imported_id(self, conn: Connection) -> int:
        """The highest imported record id (0 if none)."""
        return int(conn.execute(sa.select(sa.func.max(imported_records.c.id))).scalar() or 0)

    def imported_access(self, conn: Connection | None = None) -> dict[str, Access]:
        """``evidence_sha256`` of each imported record given an owner -> its owner and
        visibility (``pilot_id`` is the record's own pilot id)."""
        query = (
            sa.select(
                imported_records.c.id,
                imported_records.c.evidence_sha256,
                imported_records.c.pilot_id,
                imported_access.c.organisation_id,
                organisations.c.slug,
                imported_access.c.visibility,
            )
            .join(imported_access, imported_access.c.imported_record_id == imported_records.c.id)
            .join(organisations, organisations.c.id == imported_access.c.organisation_id)
        )
        shares = sa.select(
            imported_shares.c.imported_record_id, organisations.c.id, organisations.c.slug
        ).join(organisations, organisations.c.id == imported_shares.c.organisation_id)
        if conn is None:
            with self.read() as c:
                return self.imported_access(c)
        shared: dict[int, list[tuple[int, str]]] = {}
        out: dict[str, Access] = {}
        for rid, oid, slug in conn.execute(shares.order_by(organisations.c.slug)):
            shared.setdefault(rid, []).append((oid, slug))
        for rid, sha, pid, oid, slug, visibility in conn.execute(query):
            s = shared.get(rid, [])
            out[sha] = Access(
                pid, oid, slug, visibility, tuple(x[1] for x in s), tuple(x[0] for x in s)
            )
        return out

    # ------------------------------------------------------------------ run files

    def run_pilot_id(self, conn: Connection, run_id: str) -> str | None:
        """The pilot a run belongs to."""
        return conn.execute(sa.select(runs.c.pilot_id).where(runs.c.run_id == run_id)).scalar()

    def run_id_of_row(self, conn: Connection, row_id: int) -> str | None:
        """The ``run_id`` of the ``runs`` row with this primary key."""
        return conn.execute(sa.select(runs.c.run_id).where(runs.c.id == row_id)).scalar()

    def run_evidence(self, run_id: str) -> tuple[str, str] | None:
        """``(pilot_id, evidence_json)`` of a run."""
        with self.read() as conn:
            row = conn.execute(
                sa.select(runs.c.pilot_id, runs.c.evidence_json).where(runs.c.run_id == run_id)
            ).first()
        return (row.pilot_id, row.evidence_json) if row is not None else None

    def add_files(
        self, conn: Connection, run_id: str, files: Sequence[tuple[str, str, bytes, str]]
    ) -> list[RunFile]:
        """Store the files of a run: ``(name, media type, content, sha256)`` each."""
        out = []
        for name, media_type, content, sha in files:
            conn.execute(
                sa.insert(run_files).values(
                    run_id=run_id,
                    name=name,
                    media_type=media_type,
                    size=len(content),
                    sha256=sha,
                    content=content,
                )
            )
            out.append(RunFile(name, media_type, len(content), sha))
        return out

    def files(self, run_ids: Sequence[str]) -> dict[str, list[RunFile]]:
        """The files of each run (without their content), by name."""
        query = (
            sa.select(
                run_files.c.run_id,
                run_files.c.name,
                run_files.c.media_type,
                run_files.c.size,
                run_files.c.sha256,
            )
            .where(run_files.c.run_id.in_(list(run_ids)))
            .order_by(run_files.c.run_id, run_files.c.name)
        )
        out: dict[str, list[RunFile]] = {r: [] for r in run_ids}
        with self.read() as conn:
            for rid, *rest in conn.execute(query):
                out[rid].append(RunFile(*rest))
        return out

    def file(self, run_id: str, name: str) -> tuple[RunFile, bytes] | None:
        """One file of a run and its content."""
        with self.read() as conn:
            row = conn.execute(
                sa.select(run_files).where(run_files.c.run_id == run_id, run_files.c.name == name)
            ).first()
        if row is None:
            return None
        return RunFile(row.name, row.media_type, row.size, row.sha256), bytes(row.content)

    # ------------------------------------------------------------------ audit log

    def log_entries_since(self, conn: Connection, start_seq: int) -> list[dict[str, Any]]:
        """The registry log entries appended after ``start_seq`` in this transaction."""
        rows = conn.execute(
            sa.select(registry_log.c.seq, registry_log.c.entry_json)
            .where(registry_log.c.seq > start_seq)
            .order_by(registry_log.c.seq)
        ).all()
        return [{"seq": seq, **json.loads(text)} for seq, text in rows]

    def audit(
        self,
        conn: Connection,
        *,
        person: Person | None,
        token_id: str | None,
        action: str,
        target: str | None,
        detail: dict[str, Any],
        registry_seq: int | None = None,
    ) -> None:
        """Append one entry to the audit log (in the caller's transaction)."""
        conn.execute(
            sa.insert(audit_log).values(
                at=now_utc(),
                person_id=person.id if person else None,
                person_email=person.email if person else None,
                token_id=token_id,
                action=action,
                target=target,
                detail_json=json.dumps(detail, sort_keys=True, separators=(",", ":")),
                registry_seq=registry_seq,
            )
        )

    def audit_entries(self, limit: int = 200, before: int | None = None) -> list[AuditEntry]:
        """The latest audit entries, newest first."""
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(audit_log.c.id < before)
        with self.read() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEntry(
                r.id,
                r.at,
                r.person_id,
                r.person_email,
                r.token_id,
                r.action,
                r.target,
                json.loads(r.detail_json),
                r.registry_seq,
            )
            for r in rows
        ]

    def iter_audit(self) -> Iterator[AuditEntry]:
        """Every audit entry, oldest first."""
        yield from reversed(self.audit_entries(limit=1_000_000))


def _latest_level(record: dict[str, Any]) -> tuple[int | None, dict[str, Any] | None]:
    strength = record.get("evidence_strength")
    level = strength.get("level") if isinstance(strength, dict) else None
    found = record.get("results")
    results: list[Any] = found if isinstance(found, list) else []
    primary = next((r for r in results if isinstance(r, dict) and r.get("primary")), None)
    return (level if isinstance(level, int) else None), primary


def portfolio_rows(accounts: Accounts) -> list[dict[str, Any]]:
    """Every pilot with what the portfolio page filters and shows: registration, outcomes,
    owner, and the evidence level and primary result of its latest run."""
    last = sa.select(sa.func.max(runs.c.id)).group_by(runs.c.pilot_id).scalar_subquery()
    latest = sa.select(runs.c.pilot_id, runs.c.evidence_json).where(runs.c.id.in_(last)).subquery()
    query = (
        sa.select(
            pilots.c.id,
            pilots.c.title,
            pilots.c.status,
            pilots.c.lead,
            pilots.c.policy_area,
            pilots.c.outcomes,
            pilots.c.latest_version,
            pilots.c.run_count,
            pilots.c.last_run_at,
            latest.c.evidence_json,
        )
        .outerjoin(latest, latest.c.pilot_id == pilots.c.id)
        .order_by(pilots.c.id)
    )
    out = []
    with accounts.read() as conn:
        rows = conn.execute(query).all()
    for r in rows:
        level, primary = (None, None)
        if r.evidence_json is not None:
            level, primary = _latest_level(json.loads(r.evidence_json))
        outcomes = r.outcomes if isinstance(r.outcomes, list) else []
        out.append(
            {
                "id": r.id,
                "title": r.title,
                "status": r.status,
                "lead": r.lead,
                "policy_area": r.policy_area,
                "metrics": [str(o.get("column")) for o in outcomes if isinstance(o, dict)],
                "latest_version": r.latest_version,
                "runs": r.run_count,
                "last_run_at": r.last_run_at,
                "evidence_level": level,
                "primary": primary,
            }
        )
    return out


def imported_portfolio_rows(accounts: Accounts) -> list[dict[str, Any]]:
    """The latest imported record of each pilot of each source registry that the service gave an
    owner, as portfolio rows (``imported``: true, ``source``: the registry it came from), each
    with its ``access``."""
    last = (
        sa.select(sa.func.max(imported_records.c.id))
        .group_by(imported_records.c.source_registry_id, imported_records.c.pilot_id)
        .scalar_subquery()
    )
    query = (
        sa.select(
            imported_records.c.pilot_id,
            imported_records.c.source_name,
            imported_records.c.source_url,
            imported_records.c.source_recorded_at,
            imported_records.c.imported_at,
            imported_records.c.evidence_json,
            imported_records.c.evidence_sha256,
        )
        .where(imported_records.c.id.in_(last))
        .order_by(imported_records.c.pilot_id, imported_records.c.source_name)
    )
    with accounts.read() as conn:
        rows = conn.execute(query).all()
        access = accounts.imported_access(conn) if rows else {}
    out = []
    for r in rows:
        record = json.loads(r.evidence_json)
        pilot = record.get("pilot") if isinstance(record.get("pilot"), dict) else {}
        level, primary = _latest_level(record)
        found = record.get("results")
        results = found if isinstance(found, list) else []
        out.append(
            {
                "id": r.pilot_id,
                "title": str(pilot.get("title") or r.pilot_id),
                "status": pilot.get("status"),
                "lead": pilot.get("lead"),
                "policy_area": pilot.get("policy_area"),
                "metrics": [str(x.get("outcome")) for x in results if isinstance(x, dict)],
                "latest_version": None,
                "runs": None,
                "last_run_at": r.source_recorded_at,
                "evidence_level": level,
                "primary": primary,
                "imported": True,
                "source": r.source_name,
                "source_url": r.source_url,
                "imported_at": r.imported_at,
                "access": access.get(r.evidence_sha256),
            }
        )
    return out
