"""The registry's hash chain: an append-only log that commits to every row of every table.

Every write (registration, amendment, refresh of the registration details, status change, run,
import) appends one or more entries to ``registry_log`` in the same transaction. An entry is
canonical JSON::

    {"format": "pilotlab.registry-log/1", "seq": 7, "prev": "<entry_sha256 of entry 6>",
     "at": "2026-11-25T10:00:00.000000Z", "kind": "run", "pilot_id": "...",
     "rows": [{"table": "runs", "id": 3, "sha256": "<row_sha256>"},
              {"table": "pilots", "id": "...", "sha256": "<hash of the whole pilots row>"}]}

and ``entry_sha256`` is the SHA-256 of that text. Entry 1's ``prev`` is derived from the
registry id, so the chain also commits to ``registry_info``. The *head* is the last entry's
``SEQ:SHA256``; a head published earlier must still be an entry of the chain later.

With a key (``$PILOTLAB_REGISTRY_KEY`` or a key file), each entry also carries
``HMAC-SHA256(key, entry_sha256)`` and a key id (an HMAC of a fixed label, not the key), so that
someone who can write to the database but does not hold the key cannot forge a consistent chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pilotlab.exceptions import RegistryError
from pilotlab.registry.tables import (
    allocations,
    cycle_links,
    imported_records,
    pilots,
    plan_versions,
    registry_log,
    runs,
    status_changes,
)
from pilotlab.spec import canonical_json

__all__ = [
    "ENV_KEY",
    "LOG_FORMAT",
    "MIN_KEY_BYTES",
    "Head",
    "Key",
    "adopt_existing",
    "entry_text",
    "genesis",
    "load_key",
    "parse_head",
    "pilot_state_sha256",
    "row_hash",
    "sha256_text",
]

LOG_FORMAT = "pilotlab.registry-log/1"
ENV_KEY = "PILOTLAB_REGISTRY_KEY"
MIN_KEY_BYTES = 32
_KEY_ID_LABEL = b"pilotlab registry key id"
_HEAD = re.compile(r"^\s*(\d{1,18}):([0-9a-fA-F]{64})\s*$")

APPEND_ONLY = (plan_versions, runs, status_changes, imported_records)
# Tables added after the log (migration 0003 and later): never adopted, always logged.
LATER_APPEND_ONLY = (allocations, cycle_links)
# Columns covered by each append-only table's row hash: every column but the surrogate key.
HASHED = {
    t.name: tuple(c.name for c in t.columns if c.name not in ("id", "row_sha256"))
    for t in (*APPEND_ONLY, *LATER_APPEND_ONLY)
}


def sha256_text(text: str) -> str:
    """Hex SHA-256 of UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_hash(table: str, values: Mapping[str, Any]) -> str:
    """The ``row_sha256`` of a row of an append-only table (every column but ``id``)."""
    payload = {name: values.get(name) for name in HASHED[table]}
    return sha256_text(canonical_json({"table": table, "row": payload}))


def pilot_state_sha256(row: Mapping[Any, Any]) -> str:
    """Hash of a whole ``pilots`` row (every column), recorded in the log after each write."""
    payload = {c.name: row.get(c.name) for c in pilots.columns}
    return sha256_text(canonical_json({"table": "pilots", "row": payload}))


def genesis(registry_id: str) -> str:
    """The ``prev`` of entry 1: ties the chain to the registry id."""
    return sha256_text(f"{LOG_FORMAT} genesis {registry_id}")


def entry_text(
    seq: int, prev: str, at: str, kind: str, pilot_id: str | None, rows: list[dict[str, Any]]
) -> str:
    """The canonical JSON of one log entry (what ``entry_sha256`` hashes)."""
    return canonical_json(
        {
            "format": LOG_FORMAT,
            "seq": seq,
            "prev": prev,
            "at": at,
            "kind": kind,
            "pilot_id": pilot_id,
            "rows": rows,
        }
    )


@dataclass(frozen=True, slots=True)
class Head:
    """The chain head: the last entry's sequence number and hash (``SEQ:SHA256``)."""

    seq: int
    sha256: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.sha256}"


def parse_head(text: str) -> Head:
    """``"42:<64 hex>"`` -> :class:`Head`; anything else is a clear :class:`RegistryError`."""
    m = _HEAD.match(text or "")
    if m is None:
        raise RegistryError(
            f"--head {text!r} is not a registry head; give SEQ:SHA256 as printed by "
            "`pilotlab head` or `pilotlab verify` (e.g. 42:3f1c...e9, 64 hexadecimal digits)"
        )
    return Head(int(m.group(1)), m.group(2).lower())


class Key:
    """A signing key for the log (HMAC-SHA256). Never stored in the database."""

    def __init__(self, secret: bytes, source: str) -> None:
        if len(secret) < MIN_KEY_BYTES:
            raise RegistryError(
                f"the registry key from {source} is {len(secret)} bytes long; use at least "
                f"{MIN_KEY_BYTES} random bytes, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        self._secret = secret
        self.source = source
        self.key_id = hmac.new(secret, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]

    def sign(self, entry_sha256: str) -> str:
        """HMAC-SHA256 of an entry hash."""
        return hmac.new(self._secret, entry_sha256.encode("ascii"), hashlib.sha256).hexdigest()

    def check(self, entry_sha256: str, signature: str | None) -> bool:
        """Whether ``signature`` is this key's signature of ``entry_sha256``."""
        return signature is not None and hmac.compare_digest(self.sign(entry_sha256), signature)

    def __repr__(self) -> str:  # never the secret
        return f"Key(key_id={self.key_id!r}, source={self.source!r})"


def load_key(key_file: str | Path | None = None) -> Key | None:
    """The signing key: ``key_file`` if given, else ``$PILOTLAB_REGISTRY_KEY``, else ``None``.

    A key file holds the key as text (surrounding white space is ignored).
    """
    if key_file is not None:
        path = Path(key_file)
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise RegistryError(
                f"{path}: cannot read the registry key file ({exc.strerror}); give a readable "
                "file holding the key with --key-file"
            ) from None
        return Key(secret, str(path))
    env = os.environ.get(ENV_KEY)
    if env:
        return Key(env.strip().encode("utf-8"), f"${ENV_KEY}")
    return None


class Appender:
    """Appends entries to the log inside one write transaction (the caller holds the lock)."""

    def __init__(self, conn: Connection, registry_id: str, key: Key | None) -> None:
        last = conn.execute(
            sa.select(registry_log.c.seq, registry_log.c.entry_sha256, registry_log.c.key_id)
            .order_by(registry_log.c.seq.desc())
            .limit(1)
        ).first()
        if last is not None and last.key_id is not None:
            if key is None:
                raise RegistryError(
                    f"this registry's log is signed (key id {last.key_id}); set ${ENV_KEY} or "
                    "pass --key-file with the registry key to write to it; nothing was written"
                )
            if key.key_id != last.key_id:
                raise RegistryError(
                    f"this registry's log is signed with key id {last.key_id}, but the key from "
                    f"{key.source} has key id {key.key_id}; use the registry's key; nothing was "
                    "written"
                )
        self.conn = conn
        self.key = key
        self.seq = last.seq if last is not None else 0
        self.prev = last.entry_sha256 if last is not None else genesis(registry_id)
        self._pending: list[dict[str, Any]] = []

    def add(self, at: str, kind: str, pilot_id: str | None, rows: list[dict[str, Any]]) -> None:
        """Queue one entry (written by :meth:`flush`)."""
        self.seq += 1
        text = entry_text(self.seq, self.prev, at, kind, pilot_id, rows)
        sha = sha256_text(text)
        self._pending.append(
            {
                "seq": self.seq,
                "entry_json": text,
                "entry_sha256": sha,
                "key_id": self.key.key_id if self.key else None,
                "signature": self.key.sign(sha) if self.key else None,
            }
        )
        self.prev = sha
        if len(self._pending) >= 1000:
            self.flush()

    def flush(self) -> None:
        """Insert the queued entries."""
        if self._pending:
            self.conn.execute(sa.insert(registry_log), self._pending)
            self._pending = []

    @property
    def head(self) -> Head:
        """The head after the queued entries."""
        return Head(self.seq, self.prev)


def pilot_ref(conn: Connection, pilot_id: str) -> dict[str, Any]:
    """The log reference to a pilot's row as it is now (read inside the write transaction)."""
    row = conn.execute(sa.select(pilots).where(pilots.c.id == pilot_id)).one()
    return {"table": "pilots", "id": pilot_id, "sha256": pilot_state_sha256(row._mapping)}


def _time_column(table: sa.Table) -> sa.Column[Any]:
    name = {
        "plan_versions": "registered_at",
        "runs": "recorded_at",
        "status_changes": "changed_at",
        "imported_records": "imported_at",
    }[table.name]
    return table.c[name]


def adopt_existing(conn: Connection, registry_id: str, key: Key | None, at: str) -> Head:
    """Build the chain from rows written before the log existed (migration 0002).

    One ``adopt`` entry per row of the append-only tables, in the order they were written
    (their timestamps, then table, then id), then one per pilot with its current row. The
    entries attest what the registry held when the log was started, not how it got there.
    """
    appender = Appender(conn, registry_id, key)
    items: list[tuple[str, int, int, str, str | None]] = []
    for rank, table in enumerate(APPEND_ONLY):
        pid = table.c.pilot_id
        for ts, row_id, sha, pilot_id in conn.execute(
            sa.select(_time_column(table), table.c.id, table.c.row_sha256, pid)
        ):
            items.append((ts, rank, row_id, sha, pilot_id))
    items.sort(key=lambda x: (x[0], x[1], x[2]))
    for _ts, rank, row_id, sha, pilot_id in items:
        ref = {"table": APPEND_ONLY[rank].name, "id": row_id, "sha256": sha}
        appender.add(at, "adopt", pilot_id, [ref])
    for row in conn.execute(sa.select(pilots).order_by(pilots.c.id)):
        ref = {"table": "pilots", "id": row.id, "sha256": pilot_state_sha256(row._mapping)}
        appender.add(at, "adopt", row.id, [ref])
    appender.flush()
    return appender.head


def iter_refs(rows: Iterable[Any]) -> Iterable[tuple[str, Any, str]]:
    """``(table, id, sha256)`` of each well-formed reference in an entry's ``rows``."""
    for ref in rows:
        if isinstance(ref, dict) and isinstance(ref.get("table"), str):
            yield ref["table"], ref.get("id"), str(ref.get("sha256"))


def loads_entry(text: str) -> dict[str, Any] | None:
    """A log entry's JSON, or ``None`` if it is not a JSON object."""
    try:
        obj = json.loads(text)
    except (TypeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None
