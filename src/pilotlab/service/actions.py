"""What the service does, as plain functions of the caller and the request's values.

The JSON API and the web pages both call these; each checks the caller's right first, then does
its work in one transaction (the registry's write plus the service's own rows and the audit
entry, through :meth:`Registry.writing_with`). Every refusal is a :class:`ServiceError` carrying
the HTTP status and a plain message.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from pilotlab.exceptions import PilotlabError
from pilotlab.registry import Registry
from pilotlab.registry.accounts import (
    ROLES,
    VISIBILITIES,
    Access,
    Accounts,
    Organisation,
    Person,
    imported_portfolio_rows,
    portfolio_rows,
)
from pilotlab.registry.importing import check_record, parse_record
from pilotlab.service.auth import (
    Principal,
    TokenCache,
    can_edit,
    can_register,
    can_see,
    hash_secret,
    new_token,
)
from pilotlab.spec import PilotSpec, parse_pilot, plan_sha256

__all__ = ["AllocationUpload", "Limits", "Service", "ServiceError", "Upload"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,185}\.[^@\s]{2,}$")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.csv$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain(value: str, limit: int) -> bool:
    """Text that may be looked up: short, without control characters (PostgreSQL refuses NUL)."""
    return 0 < len(value) <= limit and not _CONTROL.search(value)


class ServiceError(Exception):
    """A refused request: HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Upload limits (bytes, counts)."""

    body: int = 64 * 1024**2
    evidence: int = 16 * 1024**2
    report: int = 32 * 1024**2
    table: int = 16 * 1024**2
    tables: int = 100
    import_file: int = 64 * 1024**2


@dataclass(frozen=True)
class Upload:
    """A run as uploaded: the evidence record, the report and tables, and run facts."""

    evidence: bytes
    report: bytes | None = None
    tables: Sequence[tuple[str, bytes]] = ()
    data_sha256: str | None = None
    software: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None


@dataclass(frozen=True)
class AllocationUpload:
    """An allocation as ``pilotlab randomise`` drew it: its document and how it was drawn."""

    document: dict[str, Any]
    allocation_sha256: str
    scheme: str
    seed: int
    n_units: int
    data_sha256: str | None = None
    reason: str | None = None


def _denied(what: str) -> ServiceError:
    return ServiceError(403, f"you may not {what}")


def _need_sign_in(principal: Principal, what: str) -> None:
    if not principal.signed_in:
        raise ServiceError(
            401, f"sign in (or send an API token as 'Authorization: Bearer ...') to {what}"
        )


def _check_password(password: str) -> None:
    if not 12 <= len(password) <= 1024:
        raise ServiceError(422, "a password must be 12 to 1024 characters long")


def _clean_text(value: str, what: str, limit: int = 500) -> str:
    value = value.strip()
    if not value:
        raise ServiceError(422, f"{what} is empty; give a value")
    if len(value) > limit or _CONTROL.search(value):
        raise ServiceError(
            422, f"{what} must be at most {limit} characters of text without control characters"
        )
    return value


class Service:
    """The service's operations over one registry.

    Parameters
    ----------
    registry
        The open registry (SQLite or PostgreSQL).
    public_name
        How messages name the registry to callers (never the database URL).
    """

    def __init__(self, registry: Registry, public_name: str = "this service") -> None:
        self.registry = registry
        self.accounts = Accounts(registry)
        self.tokens = TokenCache()
        self.limits = Limits()
        self.public_name = public_name

    # ------------------------------------------------------------------ plumbing

    def _error(self, exc: PilotlabError) -> ServiceError:
        message = str(exc).replace(self.registry.display_url, self.public_name)
        if message.startswith("cannot use the registry"):
            return ServiceError(503, message)
        if "is not registered" in message:
            return ServiceError(404, message)
        if (
            "already registered" in message
            or "already exists" in message
            or "already has an allocation" in message
        ):
            return ServiceError(409, message)
        return ServiceError(422, message)

    def _write(
        self,
        principal: Principal,
        action: str,
        target: str | None,
        work: Callable[[], Any],
        extra: Callable[[Connection, list[dict[str, Any]]], dict[str, Any]] | None = None,
    ) -> Any:
        """Run a registry write with the service's rows and the audit entry in its transaction."""

        def hook(conn: Connection, start: int) -> None:
            entries = self.accounts.log_entries_since(conn, start)
            detail = extra(conn, entries) if extra is not None else {}
            detail["log"] = [{"seq": e["seq"], "kind": e["kind"]} for e in entries]
            self.accounts.audit(
                conn,
                person=principal.person,
                token_id=principal.token_id,
                action=action,
                target=target,
                detail=detail,
                registry_seq=entries[-1]["seq"] if entries else None,
            )

        try:
            with self.registry.writing_with(hook):
                return work()
        except ServiceError:
            raise
        except PilotlabError as exc:
            raise self._error(exc) from None

    def _own_write(
        self,
        principal: Principal,
        action: str,
        target: str | None,
        work: Callable[[Connection], Any],
        detail: dict[str, Any] | None = None,
    ) -> Any:
        """A write to the service's own rows only, with its audit entry, in one transaction."""
        try:
            with self.accounts.write() as conn:
                result = work(conn)
                self.accounts.audit(
                    conn,
                    person=principal.person,
                    token_id=principal.token_id,
                    action=action,
                    target=target,
                    detail=detail or {},
                )
                return result
        except ServiceError:
            raise
        except PilotlabError as exc:
            raise self._error(exc) from None

    def _spec(self, raw: Any, source: str, sent_sha: str | None) -> PilotSpec:
        source = _clean_text(source or "pilot.yaml", "the pilot file's name", 300)
        try:
            spec = parse_pilot(raw, source=source)
        except PilotlabError as exc:
            raise ServiceError(422, str(exc)) from None
        sha = plan_sha256(spec)
        if sent_sha is not None and sent_sha != sha:
            raise ServiceError(
                422,
                f"{source}: the analysis plan arrived with sha256 {sha[:12]}..., not the "
                f"{str(sent_sha)[:12]}... it was sent with; send the pilot file again unchanged",
            )
        return spec

    def _not_found(self, pilot_id: str) -> ServiceError:
        return ServiceError(
            404,
            f"pilot '{pilot_id[:100]}' is not registered in {self.public_name}, or you may "
            "not see it; list the pilots you may see with `pilotlab list`",
        )

    def _access_or_404(self, principal: Principal, pilot_id: str) -> Access | None:
        if not _plain(pilot_id, 100):  # never sent to the database
            raise self._not_found(repr(pilot_id)[1:-1])
        access = self.accounts.access(pilot_id)
        with self.accounts.read() as conn:
            exists = self.accounts.pilot_exists(conn, pilot_id)
        if not exists or not can_see(principal, access):
            raise self._not_found(pilot_id)
        return access

    def _may_edit(self, principal: Principal, pilot_id: str, what: str) -> Access | None:
        _need_sign_in(principal, what)
        access = self._access_or_404(principal, pilot_id)
        if not can_edit(principal, access):
            owner = access.organisation if access else "no organisation"
            raise _denied(
                f"{what}: pilot '{pilot_id}' belongs to {owner}; only its organisation's "
                "editors and administrators may change it"
            )
        return access

    def _organisation(self, conn: Connection, slug: str) -> Organisation:
        org = self.accounts.organisation(conn, slug)
        if org is None:
            known = ", ".join(o.slug for o in self.accounts.organisations(conn)) or "none yet"
            raise ServiceError(
                422, f"organisation '{slug[:64]}' does not exist (organisations: {known})"
            )
        return org

    # ------------------------------------------------------------------ reading

    def visible_access(self, principal: Principal) -> tuple[dict[str, Access], set[str]]:
        """Access of every pilot, and the ids the caller may see."""
        access = self.accounts.all_access()
        rows = self.accounts.registry.list_pilots()
        visible = {p.id for p in rows if can_see(principal, access.get(p.id))}
        return access, visible

    def list_pilots(self, principal: Principal, metric: str = "") -> list[dict[str, Any]]:
        """The pilots the caller may see (``pilotlab list``); with ``metric``, only those with an
        outcome that names it (``pilotlab list --metric``, as the registry matches it)."""
        access = self.accounts.all_access()
        out = []
        found = self.registry.pilots_with_metric(metric) if metric else self.registry.list_pilots()
        for p in found:
            a = access.get(p.id)
            if can_see(principal, a):
                out.append({**p.to_dict(), "access": a.to_dict() if a else None})
        return out

    def portfolio(self, principal: Principal, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Rows of the portfolio page, filtered: q, organisation, policy_area, metric, status,
        evidence_level. The pilots registered here come first, then the imported records the
        caller may see (``imported``: true, ``source``: the registry they came from)."""
        access = self.accounts.all_access()
        q = filters.get("q", "").strip().lower()
        rows = []
        for row in portfolio_rows(self.accounts):
            a = access.get(row["id"])
            if can_see(principal, a):
                rows.append({**row, "access": a, "imported": False, "source": None})
        for row in imported_portfolio_rows(self.accounts):
            if principal.is_admin or (
                row["access"] is not None and can_see(principal, row["access"])
            ):
                rows.append(row)
        out = []
        for row in rows:
            a = row.pop("access")
            row["organisation"] = a.organisation if a else None
            row["visibility"] = a.visibility if a else None
            if q and not any(
                q in str(row.get(k) or "").lower() for k in ("id", "title", "lead", "source")
            ):
                continue
            if filters.get("organisation") and row["organisation"] != filters["organisation"]:
                continue
            if filters.get("policy_area") and row["policy_area"] != filters["policy_area"]:
                continue
            if filters.get("metric") and filters["metric"] not in row["metrics"]:
                continue
            if filters.get("status") and row["status"] != filters["status"]:
                continue
            level = filters.get("evidence_level")
            if level and str(row["evidence_level"] or "none") != level:
                continue
            out.append(row)
        return out

    def portfolio_records(self, principal: Principal) -> list[dict[str, Any]]:
        """Latest evidence record of every pilot the caller may see (local and imported)."""
        access = self.accounts.all_access()
        imported = self.accounts.imported_access()
        out = []
        for record in self.registry.portfolio_records():
            prov = record.get("provenance") or {}
            if prov.get("registry_id") == self.registry.registry_id:
                pid = str((record.get("pilot") or {}).get("id"))
                if not can_see(principal, access.get(pid)):
                    continue
                prov["registry_url"] = self.public_name
            else:
                a = imported.get(str(prov.get("evidence_sha256")))
                if not (principal.is_admin or (a is not None and can_see(principal, a))):
                    continue
            out.append(record)
        return out

    def show(self, principal: Principal, pilot_id: str) -> dict[str, Any]:
        """Everything the registry holds about one pilot, with its access and run files."""
        access = self._access_or_404(principal, pilot_id)
        try:
            history = self.registry.show(pilot_id)
        except PilotlabError as exc:
            raise self._error(exc) from None
        files = self.accounts.files([r.run_id for r in history.runs])
        out = history.to_dict()
        out["access"] = access.to_dict() if access else None
        out["files"] = {k: [f.to_dict() for f in v] for k, v in files.items()}
        out["can_edit"] = can_edit(principal, access)
        out["allocations"] = self.allocations(pilot_id)
        return out

    def allocations(self, pilot_id: str) -> list[dict[str, Any]]:
        """The registered allocations of a randomised pilot, oldest first (empty if none).

        Read through ``Registry.allocations(pilot_id)`` when the installed registry keeps
        allocations (records with ``to_dict()``); a registry without them shows none.
        """
        reader = getattr(self.registry, "allocations", None)
        if reader is None:
            return []
        try:
            found = reader(pilot_id)
        except PilotlabError:
            return []
        return [a.to_dict() if hasattr(a, "to_dict") else dict(a) for a in found or ()]

    def pilot_allocations(self, principal: Principal, pilot_id: str) -> list[dict[str, Any]]:
        """Every registered allocation of a visible pilot, oldest first, each with its per-unit
        document (what ``pilotlab run`` checks the drawn allocation against)."""
        self._access_or_404(principal, pilot_id)
        try:
            found = self.registry.allocations(pilot_id)
        except PilotlabError as exc:
            raise self._error(exc) from None
        return [{**a.to_dict(), "document": dict(a.document)} for a in found]

    def pilot_cycle_chain(self, principal: Principal, pilot_id: str) -> list[dict[str, Any]]:
        """The earlier cycles of a visible pilot's learning chain, oldest first.

        An earlier pilot the caller may not see is left out (its title, status and evidence
        are not theirs to read).
        """
        self._access_or_404(principal, pilot_id)
        try:
            steps = self.registry.cycle_chain(pilot_id)
        except PilotlabError as exc:
            raise self._error(exc) from None
        access = self.accounts.all_access()
        return [s.to_dict() for s in steps if can_see(principal, access.get(s.pilot_id))]

    def run(self, principal: Principal, pilot_id: str, run_id: str) -> dict[str, Any]:
        """One run of a visible pilot, with its evidence record and file list."""
        self._access_or_404(principal, pilot_id)
        found = self.accounts.run_evidence(run_id) if _plain(run_id, 36) else None
        if found is None or found[0] != pilot_id:
            raise ServiceError(404, f"pilot '{pilot_id}' has no run {run_id[:40]!r}")
        history = self.registry.show(pilot_id)
        run = next(r for r in history.runs if r.run_id == run_id)
        return {
            "run": run.to_dict(),
            "evidence": json.loads(found[1]),
            "files": [f.to_dict() for f in self.accounts.files([run_id])[run_id]],
        }

    def run_file(
        self, principal: Principal, pilot_id: str, run_id: str, name: str
    ) -> tuple[str, bytes]:
        """``(media type, content)`` of a file uploaded with a visible run."""
        self._access_or_404(principal, pilot_id)
        if not (_plain(run_id, 36) and _plain(name, 200)):
            raise ServiceError(404, f"pilot '{pilot_id}' has no such run or file")
        if name == "evidence.json":
            found = self.accounts.run_evidence(run_id)
            if found is not None and found[0] == pilot_id:
                return "application/json", found[1].encode("utf-8")
        else:
            with self.accounts.read() as conn:
                owner = self.accounts.run_pilot_id(conn, run_id)
            got = self.accounts.file(run_id, name) if owner == pilot_id else None
            if got is not None:
                return got[0].media_type, got[1]
        raise ServiceError(404, f"run {run_id[:40]!r} of pilot '{pilot_id}' has no file {name!r}")

    def plan_status(self, principal: Principal, raw: Any, source: str) -> dict[str, Any]:
        """How a pilot file's plan compares with the registered versions."""
        spec = self._spec(raw, source, None)
        with self.accounts.read() as conn:
            exists = self.accounts.pilot_exists(conn, spec.id)
        if exists:
            self._access_or_404(principal, spec.id)
        match = self.registry.plan_status(spec)
        return asdict(match)

    def export(self, principal: Principal) -> dict[str, Any]:
        """``evidence.jsonl`` and ``evidence.csv`` of the pilots the caller may see."""
        _, visible = self.visible_access(principal)
        with tempfile.TemporaryDirectory(prefix="pilotlab-export-") as tmp:
            s = self.registry.export(tmp, pilot_ids=visible)
            jsonl = Path(s.jsonl_path).read_text(encoding="utf-8")
            csv = Path(s.csv_path).read_text(encoding="utf-8")
        jsonl = jsonl.replace(json.dumps(self.registry.display_url)[1:-1], self.public_name)
        return {"jsonl": jsonl, "csv": csv, "records": s.records, "rows": s.rows}

    def head(self, principal: Principal) -> str:
        """The chain head (signed-in callers)."""
        _need_sign_in(principal, "read the registry's head")
        return str(self.registry.head())

    # ------------------------------------------------------------------ registry writes

    def register(
        self,
        principal: Principal,
        raw: Any,
        source: str,
        *,
        data_seen: bool = False,
        plan_sha256: str | None = None,
        organisation: str | None = None,
        visibility: str = "organisation",
    ) -> dict[str, Any]:
        """Register a pilot for the caller's organisation (administrators may name another)."""
        _need_sign_in(principal, "register a pilot")
        if not can_register(principal):
            raise _denied(
                "register pilots (readers read; ask an administrator for the editor role)"
            )
        person = principal.person
        assert person is not None
        if visibility not in VISIBILITIES:
            raise ServiceError(422, f"visibility must be one of {', '.join(VISIBILITIES)}")
        spec = self._spec(raw, source, plan_sha256)
        with self.accounts.read() as conn:
            if organisation is not None and organisation != person.organisation:
                if not principal.is_admin:
                    raise _denied(f"register pilots for {organisation[:64]}, only for your own")
                org_id = self._organisation(conn, organisation).id
            elif person.organisation_id is not None:
                org_id = person.organisation_id
            else:
                raise ServiceError(
                    422,
                    "you belong to no organisation: name the organisation that owns the pilot",
                )

        def extra(conn: Connection, _entries: list[dict[str, Any]]) -> dict[str, Any]:
            self.accounts.set_access(conn, spec.id, org_id, visibility)
            return {"organisation_id": org_id, "visibility": visibility}

        v = self._write(
            principal,
            "register",
            spec.id,
            lambda: self.registry.register(spec, data_seen=data_seen),
            extra,
        )
        return dict(v.to_dict())

    def amend(
        self,
        principal: Principal,
        raw: Any,
        source: str,
        reason: str,
        *,
        data_seen: bool = False,
        plan_sha256: str | None = None,
    ) -> dict[str, Any]:
        """A new version of a pilot's plan (if it changed)."""
        spec = self._spec(raw, source, plan_sha256)
        self._may_edit(principal, spec.id, "amend this pilot")
        v = self._write(
            principal,
            "amend",
            spec.id,
            lambda: self.registry.amend(spec, reason, data_seen=data_seen),
        )
        return dict(v.to_dict())

    def set_status(self, principal: Principal, pilot_id: str, status: str) -> dict[str, Any]:
        """Change a pilot's status."""
        self._may_edit(principal, pilot_id, "change this pilot's status")
        change = self._write(
            principal,
            "status",
            pilot_id,
            lambda: self.registry.set_status(pilot_id, status),
            lambda _c, _e: {"status": status},
        )
        return dict(change.to_dict())

    def set_access(
        self,
        principal: Principal,
        pilot_id: str,
        visibility: str,
        shared_with: Sequence[str] = (),
        organisation: str | None = None,
    ) -> dict[str, Any]:
        """Change who may see a pilot (and, for administrators, who owns it)."""
        _need_sign_in(principal, "change who may see a pilot")
        if not principal.is_admin:
            access = self._may_edit(principal, pilot_id, "change who may see this pilot")
            if organisation is not None and access and organisation != access.organisation:
                raise _denied("give a pilot to another organisation (administrators only)")
        else:
            access = self._access_or_404(principal, pilot_id)
        if visibility not in VISIBILITIES:
            raise ServiceError(422, f"visibility must be one of {', '.join(VISIBILITIES)}")

        def work(conn: Connection) -> dict[str, Any]:
            owner = organisation or (access.organisation if access else None)
            if owner is None:
                raise ServiceError(
                    422, "this pilot has no owner yet: name the organisation that owns it"
                )
            org_id = self._organisation(conn, owner).id
            shares = [self._organisation(conn, s).id for s in shared_with]
            self.accounts.set_access(conn, pilot_id, org_id, visibility, shares)
            got = self.accounts.access(pilot_id, conn)
            assert got is not None
            return got.to_dict()

        return dict(
            self._own_write(
                principal,
                "access",
                pilot_id,
                work,
                {"visibility": visibility, "shared_with": list(shared_with), "owner": organisation},
            )
        )

    def record_run(
        self, principal: Principal, raw: Any, source: str, upload: Upload, plan_sha: str | None
    ) -> dict[str, Any]:
        """Record a run with its evidence record, report and tables, all in one transaction."""
        spec = self._spec(raw, source, plan_sha)
        self._may_edit(principal, spec.id, "record runs of this pilot")
        files = self._check_upload(upload)
        try:
            record, _prov = check_record(
                parse_record(upload.evidence, "evidence.json"), "evidence.json"
            )
        except PilotlabError as exc:
            message = str(exc).replace(
                "nothing was imported (a file is imported whole or not at all)",
                "nothing was recorded",
            )
            raise ServiceError(422, message) from None

        def extra(conn: Connection, entries: list[dict[str, Any]]) -> dict[str, Any]:
            run_rows = [r for e in entries for r in e.get("rows", []) if r["table"] == "runs"]
            run_id = self.accounts.run_id_of_row(conn, run_rows[0]["id"]) if run_rows else None
            if run_id is None:
                raise ServiceError(500, "the run was not recorded")
            stored = self.accounts.add_files(conn, run_id, files)
            return {"run_id": run_id, "files": [f.name for f in stored]}

        run = self._write(
            principal,
            "run",
            spec.id,
            lambda: self.registry.record_run(
                spec,
                record,
                upload.data_sha256,
                upload.software,
                started_at=upload.started_at,
                finished_at=upload.finished_at,
            ),
            extra,
        )
        out = dict(run.to_dict())
        out["files"] = [name for name, *_ in files]
        return out

    def record_allocation(
        self,
        principal: Principal,
        raw: Any,
        source: str,
        plan_sha: str | None,
        allocation: AllocationUpload,
    ) -> dict[str, Any]:
        """Record a randomised pilot's allocation (``pilotlab randomise``), in one transaction.

        A registered pilot needs the right to change it; a pilot not yet registered is
        registered with its allocation for the caller's organisation, under the rules of
        :meth:`register`. A second allocation needs a reason, as in the registry.
        """
        _need_sign_in(principal, "record an allocation")
        spec = self._spec(raw, source, plan_sha)
        with self.accounts.read() as conn:
            exists = self.accounts.pilot_exists(conn, spec.id)
        extra: Callable[[Connection, list[dict[str, Any]]], dict[str, Any]] | None = None
        if exists:
            self._may_edit(principal, spec.id, "record an allocation of this pilot")
        else:
            if not can_register(principal):
                raise _denied(
                    "register pilots (readers read; ask an administrator for the editor role)"
                )
            person = principal.person
            assert person is not None
            org_id = person.organisation_id
            if org_id is None:
                raise ServiceError(
                    422,
                    "you belong to no organisation: register the pilot first, naming the "
                    "organisation that owns it",
                )

            def extra(conn: Connection, entries: list[dict[str, Any]]) -> dict[str, Any]:
                rows = [r for e in entries for r in e.get("rows", [])]
                if not any(r["table"] == "plan_versions" for r in rows):
                    # registered by another request meanwhile: never take over its access
                    raise ServiceError(
                        409,
                        f"pilot '{spec.id}' was registered by someone else meanwhile; nothing "
                        "was recorded: run `pilotlab randomise` again",
                    )
                self.accounts.set_access(conn, spec.id, org_id, "organisation")
                return {"organisation_id": org_id, "visibility": "organisation"}

        a = allocation
        record, plan = self._write(
            principal,
            "allocation",
            spec.id,
            lambda: self.registry.record_allocation(
                spec,
                a.document,
                allocation_sha256=a.allocation_sha256,
                scheme=a.scheme,
                seed=a.seed,
                n_units=a.n_units,
                data_sha256=a.data_sha256,
                reason=a.reason,
            ),
            extra,
        )
        return {
            "allocation": {**record.to_dict(), "document": dict(record.document)},
            "registered": plan.to_dict() if plan is not None else None,
        }

    def _check_upload(self, upload: Upload) -> list[tuple[str, str, bytes, str]]:
        lim = self.limits
        if len(upload.evidence) > lim.evidence:
            raise ServiceError(413, f"evidence.json is larger than {lim.evidence:,} bytes")
        files: list[tuple[str, str, bytes, str]] = []
        if upload.report is not None:
            if len(upload.report) > lim.report:
                raise ServiceError(413, f"report.html is larger than {lim.report:,} bytes")
            head = upload.report[:2048].lstrip().lower()
            if not (head.startswith(b"<!doctype html") or head.startswith(b"<html")):
                raise ServiceError(
                    415,
                    "report.html is not an HTML document; upload the report.html `pilotlab run` wrote",
                )
            try:
                upload.report.decode("utf-8")
            except UnicodeDecodeError:
                raise ServiceError(415, "report.html is not UTF-8 text") from None
            files.append(
                (
                    "report.html",
                    "text/html",
                    upload.report,
                    hashlib.sha256(upload.report).hexdigest(),
                )
            )
        if len(upload.tables) > lim.tables:
            raise ServiceError(413, f"at most {lim.tables} tables may be uploaded with a run")
        seen = set()
        for name, content in upload.tables:
            clean = name.replace("\\", "/").rsplit("/", 1)[-1]
            if not _TABLE_NAME.match(clean) or clean in seen:
                raise ServiceError(
                    422,
                    f"table file name {name[:100]!r} is not allowed: use a plain, unique file name "
                    "ending in .csv (letters, digits, '.', '_', '-')",
                )
            seen.add(clean)
            if len(content) > lim.table:
                raise ServiceError(413, f"table {clean} is larger than {lim.table:,} bytes")
            try:
                content.decode("utf-8")
            except UnicodeDecodeError:
                raise ServiceError(415, f"table {clean} is not UTF-8 text (CSV)") from None
            if b"\x00" in content:
                raise ServiceError(415, f"table {clean} is not text (CSV)")
            files.append(
                (f"tables/{clean}", "text/csv", content, hashlib.sha256(content).hexdigest())
            )
        return files

    def import_records(
        self,
        principal: Principal,
        content: bytes,
        filename: str,
        visibility: str = "organisation",
        shared_with: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Import evidence records exported by another registry: owned by the caller's
        organisation, and visible as ``visibility`` says (by default to that organisation only;
        ``shared``: also to the organisations in ``shared_with``; ``public``: to everyone)."""
        _need_sign_in(principal, "import evidence records")
        person = principal.person
        assert person is not None
        if person.role == "reader":
            raise _denied("import evidence records (editors and administrators only)")
        if person.organisation_id is None and not principal.is_admin:
            raise ServiceError(422, "you belong to no organisation to import for")
        if visibility not in VISIBILITIES:
            raise ServiceError(
                422, f"visibility: found {visibility[:40]!r}; use one of {', '.join(VISIBILITIES)}"
            )
        if shared_with and visibility != "shared":
            raise ServiceError(
                422, "shared_with names organisations only with visibility 'shared'; set it"
            )
        with self.accounts.read() as conn:
            share_ids = [self._organisation(conn, o).id for o in shared_with]
        if len(content) > self.limits.import_file:
            raise ServiceError(
                413, f"the import file is larger than {self.limits.import_file:,} bytes"
            )
        name = Path(filename or "evidence.jsonl").name
        suffix = ".json" if name.endswith(".json") else ".jsonl"
        before: dict[str, int] = {}

        def extra(conn: Connection, _entries: list[dict[str, Any]]) -> dict[str, Any]:
            n = 0
            if person.organisation_id is not None:
                n = self.accounts.grant_imported(
                    conn, before["id"], person.organisation_id, visibility, share_ids
                )
            return {
                "file": name,
                "records": n,
                "visibility": visibility,
                "shared_with": list(shared_with),
            }

        with tempfile.TemporaryDirectory(prefix="pilotlab-import-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(content)
            with self.accounts.read() as conn:
                before["id"] = self.accounts.last_imported_id(conn)

            def work() -> Any:
                try:
                    return self.registry.import_records(path)
                except PilotlabError as exc:
                    raise ServiceError(422, str(exc).replace(str(path), name)) from None

            s = self._write(principal, "import", None, work, extra)
        return {
            "path": name,
            "read": s.read,
            "imported": s.imported,
            "duplicates": s.duplicates,
            "sources": list(s.sources),
            "visibility": visibility,
            "shared_with": list(shared_with),
        }

    # ------------------------------------------------------------------ people and tokens

    def add_organisation(self, principal: Principal, slug: str, name: str) -> dict[str, Any]:
        """Create an organisation (administrators)."""
        _need_sign_in(principal, "create organisations")
        if not principal.is_admin:
            raise _denied("create organisations (administrators only)")
        slug = slug.strip().lower()
        if not _SLUG.match(slug):
            raise ServiceError(
                422,
                f"organisation short name {slug[:64]!r} is not allowed: use lower-case letters, "
                "digits and '-' (at most 63), e.g. north-east-ca",
            )
        name = _clean_text(name, "the organisation's name", 200)
        org = self._own_write(
            principal,
            "organisation",
            slug,
            lambda conn: self.accounts.add_organisation(conn, slug, name),
            {"name": name},
        )
        return dict(org.to_dict())

    def add_person(
        self,
        principal: Principal,
        *,
        email: str,
        name: str,
        role: str,
        organisation: str | None,
        password: str | None,
    ) -> dict[str, Any]:
        """Create a person (administrators)."""
        _need_sign_in(principal, "add people")
        if not principal.is_admin:
            raise _denied("add people (administrators only)")
        return dict(
            self._add_person(
                principal, email=email, name=name, role=role, organisation=organisation,
                password=password,
            ).to_dict()
        )  # fmt: skip

    def _add_person(
        self,
        principal: Principal,
        *,
        email: str,
        name: str,
        role: str,
        organisation: str | None,
        password: str | None,
        first: bool = False,
    ) -> Person:
        email = email.strip().lower()
        if not _EMAIL.match(email):
            raise ServiceError(422, f"{email[:80]!r} is not an email address")
        name = _clean_text(name, "the person's name", 200)
        if role not in ROLES:
            raise ServiceError(422, f"role must be one of {', '.join(ROLES)}")
        if password is not None:
            _check_password(password)
        hashed = hash_secret(password) if password is not None else None

        def work(conn: Connection) -> Person:
            if first and self.accounts.count_people(conn, "administrator"):
                raise ServiceError(409, "the service already has an administrator; sign in")
            org_id = None
            if organisation:
                org_id = self._organisation(conn, organisation).id
            elif role == "editor":
                raise ServiceError(422, "an editor belongs to an organisation: name it")
            return self.accounts.add_person(
                conn,
                email=email,
                name=name,
                role=role,
                organisation_id=org_id,
                password_hash=hashed,
            )

        person: Person = self._own_write(
            principal, "person", email, work, {"role": role, "organisation": organisation}
        )
        return person

    def create_first_administrator(
        self, *, email: str, name: str, password: str, organisation: str, organisation_name: str
    ) -> Person:
        """The first administrator and their organisation, once (refused when one exists)."""
        with self.accounts.read() as conn:
            if self.accounts.count_people(conn, "administrator"):
                raise ServiceError(409, "the service already has an administrator; sign in")
            exists = self.accounts.organisation(conn, organisation.strip().lower()) is not None
        if not exists:
            slug = organisation.strip().lower()
            if not _SLUG.match(slug):
                raise ServiceError(
                    422, "the organisation's short name must be lower-case letters, digits and '-'"
                )
            self._own_write(
                Principal(),
                "organisation",
                slug,
                lambda conn: self.accounts.add_organisation(
                    conn, slug, _clean_text(organisation_name, "the organisation's name", 200)
                ),
            )
        return self._add_person(
            Principal(),
            email=email,
            name=name,
            role="administrator",
            organisation=organisation.strip().lower(),
            password=password,
            first=True,
        )

    def has_administrator(self) -> bool:
        """Whether an administrator exists."""
        with self.accounts.read() as conn:
            return bool(self.accounts.count_people(conn, "administrator"))

    def create_token(
        self, principal: Principal, label: str, expires_at: str | None = None
    ) -> dict[str, Any]:
        """A new API token for the caller; the token itself is returned only this once."""
        _need_sign_in(principal, "create API tokens")
        person = principal.person
        assert person is not None
        label = _clean_text(label or "API token", "the token's label", 100)
        token, token_id = new_token()
        hashed = hash_secret(token)
        info = self._own_write(
            principal,
            "token",
            token_id,
            lambda conn: self.accounts.add_token(
                conn,
                token_id=token_id,
                person_id=person.id,
                label=label,
                secret_hash=hashed,
                expires_at=expires_at,
            ),
            {"label": label},
        )
        return {**info.to_dict(), "token": token}

    def revoke_token(self, principal: Principal, token_id: str) -> None:
        """Revoke one of the caller's tokens (administrators: anyone's)."""
        _need_sign_in(principal, "revoke API tokens")
        person = principal.person
        assert person is not None
        found = self.accounts.token(token_id) if _plain(token_id, 24) else None
        if found is None or (found[0].person_id != person.id and not principal.is_admin):
            raise ServiceError(404, f"no API token {token_id[:24]!r} of yours")

        def work(conn: Connection) -> None:
            self.accounts.revoke_token(conn, token_id)

        self._own_write(principal, "revoke-token", token_id, work)
        self.tokens.forget(token_id)

    def _person_or_404(self, person_id: int) -> Person:
        person = self.accounts.person_by_id(person_id) if 0 < person_id < 2**31 else None
        if person is None:
            raise ServiceError(404, f"no person with id {person_id}; see the people at /admin")
        return person

    def set_disabled(self, principal: Principal, person_id: int, disabled: bool) -> dict[str, Any]:
        """Disable a person (administrators): at once their sessions end, their tokens stop
        working and they cannot sign in; or enable them again (their unrevoked tokens work
        again)."""
        what = "disable people" if disabled else "enable people"
        _need_sign_in(principal, what)
        if not principal.is_admin:
            raise _denied(f"{what} (administrators only)")
        person = self._person_or_404(person_id)
        if disabled and principal.person is not None and principal.person.id == person.id:
            raise ServiceError(
                422, "you may not disable yourself; ask another administrator to do it"
            )

        def work(conn: Connection) -> int:
            self.accounts.set_disabled(conn, person.id, disabled)
            return self.accounts.end_sessions(conn, person.id) if disabled else 0

        ended = self._own_write(
            principal,
            "disable-person" if disabled else "enable-person",
            person.email,
            work,
            {"person_id": person.id},
        )
        self.tokens.forget_person(person.id)
        got = self._person_or_404(person.id)
        return {**got.to_dict(), "sessions_ended": ended}

    def reset_password(self, principal: Principal, person_id: int, password: str) -> dict[str, Any]:
        """Give a person a new one-time password (administrators): they must choose their own
        when they next sign in, and their open sessions end."""
        _need_sign_in(principal, "reset passwords")
        if not principal.is_admin:
            raise _denied("reset passwords (administrators only)")
        person = self._person_or_404(person_id)
        _check_password(password)
        hashed = hash_secret(password)

        def work(conn: Connection) -> int:
            self.accounts.set_password(conn, person.id, hashed, must_change=True)
            return self.accounts.end_sessions(conn, person.id)

        ended = self._own_write(
            principal, "reset-password", person.email, work, {"person_id": person.id}
        )
        self.tokens.forget_person(person.id)
        return {**self._person_or_404(person.id).to_dict(), "sessions_ended": ended}

    def change_password(
        self,
        principal: Principal,
        current: str,
        new: str,
        keep_session: str | None = None,
    ) -> None:
        """Change the caller's own password (the current one is needed); every other session of
        theirs ends (``keep_session``: the SHA-256 of the one to keep)."""
        from pilotlab.service.auth import verify_secret

        _need_sign_in(principal, "change your password")
        person = principal.person
        assert person is not None
        found = self.accounts.person_by_email(person.email)
        if found is None or not verify_secret(found[1], current):
            raise ServiceError(403, "the current password is not right; nothing was changed")
        _check_password(new)
        if new == current:
            raise ServiceError(422, "the new password is the current one; choose another")
        hashed = hash_secret(new)

        def work(conn: Connection) -> None:
            self.accounts.set_password(conn, person.id, hashed, must_change=False)
            self.accounts.end_sessions(conn, person.id, keep=keep_session)

        self._own_write(principal, "change-password", person.email, work)
        self.tokens.forget_person(person.id)

    def list_tokens(self, principal: Principal) -> list[dict[str, Any]]:
        """The caller's tokens (never their secrets)."""
        _need_sign_in(principal, "list API tokens")
        assert principal.person is not None
        return [t.to_dict() for t in self.accounts.tokens(principal.person.id)]

    def list_people(self, principal: Principal) -> list[dict[str, Any]]:
        """Everyone (administrators)."""
        _need_sign_in(principal, "list people")
        if not principal.is_admin:
            raise _denied("list people (administrators only)")
        return [p.to_dict() for p in self.accounts.people()]

    def list_organisations(self, principal: Principal) -> list[dict[str, Any]]:
        """Every organisation (signed-in callers)."""
        _need_sign_in(principal, "list organisations")
        return [o.to_dict() for o in self.accounts.organisations()]

    def audit(self, principal: Principal, limit: int = 200) -> list[dict[str, Any]]:
        """The latest audit entries (administrators)."""
        _need_sign_in(principal, "read the audit log")
        if not principal.is_admin:
            raise _denied("read the audit log (administrators only)")
        return [e.to_dict() for e in self.accounts.audit_entries(limit=max(1, min(limit, 1000)))]
