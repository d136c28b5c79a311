"""Reading evidence records for ``Registry.import_records``: streamed, bounded and validated.

An import file is read line by line (JSON lines) and never whole. Each record must be UTF-8,
strict JSON (no NaN), at most :data:`MAX_RECORD_BYTES` long and :data:`MAX_DEPTH` levels deep,
valid against the evidence record's JSON Schema (``pilotlab.evidence/1``), and its
``provenance`` block, if any, must have the types ``export`` writes. A file may be at most
:data:`MAX_FILE_BYTES`. The first bad record stops the import with a message naming the line
and field; the caller imports in one transaction, so nothing is written then.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from pilotlab.evidence import SCHEMA_ID, load_schema
from pilotlab.exceptions import RegistryError
from pilotlab.registry.text import printable

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_RECORD_BYTES",
    "PROVENANCE_SCHEMA",
    "check_record",
    "read_records",
]

MAX_FILE_BYTES = 2 * 1024**3
"""Largest import file: 2 GiB (about 100,000 evidence records of typical size)."""
MAX_RECORD_BYTES = 16 * 1024**2
"""Largest single evidence record (one line of a JSON-lines export): 16 MiB."""
MAX_DEPTH = 64
"""Deepest nesting of arrays and objects in a record (pilotlab's own records use about 8)."""

NOTHING = "nothing was imported (a file is imported whole or not at all)"

_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
_TEXT = r"^[^\u0000-\u001f\u007f-\u009f]*$"  # stored as database text: no control characters
PROVENANCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "registry_id": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": _TEXT},
        "registry_name": {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": _TEXT},
        "registry_url": {"type": ["string", "null"], "maxLength": 2000, "pattern": _TEXT},
        "pilot_status": {"type": ["string", "null"], "maxLength": 20},
        "run_id": {"type": ["string", "null"], "maxLength": 64, "pattern": _TEXT},
        "recorded_at": {"type": ["string", "null"], "maxLength": 32, "pattern": _TIMESTAMP},
        "plan_version": {"type": ["integer", "null"], "minimum": 1},
        "matches_latest": {"type": ["boolean", "null"]},
        "evidence_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "exported_at": {"type": "string", "maxLength": 32, "pattern": _TIMESTAMP},
        "imported_at": {"type": "string", "maxLength": 32},
        "imported_from": {"type": "string"},
    },
}


@lru_cache(maxsize=1)
def _validators() -> tuple[Any, Any]:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema()), Draft202012Validator(PROVENANCE_SCHEMA)


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _schema_error(validator: Any, instance: Any, prefix: str) -> str | None:
    """The first schema violation as 'field X: what' (deterministic order), else None."""
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    if not errors:
        return None
    err = errors[0]
    field = _path([*prefix.split(".")[:1], *err.path] if prefix else err.path) or "(record)"
    message = err.message if len(err.message) <= 200 else err.message[:200] + "..."
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return f"field {printable(field)}: {printable(message)}{more if len(errors) > 1 else ''}"


def _size(n: int) -> str:
    return f"{n / 1024**2:,.1f} MiB" if n >= 1024**2 else f"{n:,} bytes"


def _depth_over(obj: Any, limit: int) -> bool:
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON (use null for a missing number)")


def parse_record(raw: bytes, where: str) -> Any:
    """One record's bytes -> JSON value, or a :class:`RegistryError` naming ``where``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryError(
            f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
            f"export files are UTF-8 JSON; ask the source for a fresh export; {NOTHING}"
        ) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        value = None
        deep = True
    except ValueError as exc:
        raise RegistryError(
            f"{where}: not valid JSON ({printable(str(exc))}); each line of an export is one "
            f"evidence record; {NOTHING}"
        ) from None
    else:
        deep = _depth_over(value, MAX_DEPTH)
    if deep:
        raise RegistryError(
            f"{where}: the record is nested more than {MAX_DEPTH} levels deep, which no evidence "
            f"record is; it was not written by pilotlab; {NOTHING}"
        )
    return value


def check_record(record: Any, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate one parsed record; return (the evidence record, its provenance block)."""
    if not isinstance(record, dict):
        raise RegistryError(
            f"{where}: not an evidence record (a JSON object is expected, found "
            f"{type(record).__name__}); import files written by `pilotlab export` or "
            f"`pilotlab run`; {NOTHING}"
        )
    record = dict(record)
    prov = record.pop("provenance", None)
    prov = {} if prov is None else prov
    schema = record.get("schema")
    if schema != SCHEMA_ID:
        found = "no 'schema' field" if schema is None else f"schema {printable(repr(schema))[:80]}"
        raise RegistryError(
            f"{where}: {found}; this pilotlab imports evidence records of schema {SCHEMA_ID} "
            f"(written by `pilotlab run` or `pilotlab export`); upgrade pilotlab if the source "
            f"is newer; {NOTHING}"
        )
    evidence_validator, provenance_validator = _validators()
    problem = _schema_error(evidence_validator, record, "")
    if problem is None and not isinstance(prov, dict):
        problem = f"field provenance: must be an object, found {type(prov).__name__}"
    if problem is None:
        problem = _schema_error(provenance_validator, prov, "provenance")
    if problem is not None:
        pid = (
            (record.get("pilot") or {}).get("id") if isinstance(record.get("pilot"), dict) else None
        )
        who = f" (pilot {printable(str(pid))[:100]!r})" if isinstance(pid, str) else ""
        raise RegistryError(
            f"{where}{who}: not a valid evidence record: {problem}; import only files written "
            f"by `pilotlab export` or `pilotlab run`; {NOTHING}"
        )
    return record, prov


def read_records(src: Path) -> Iterator[tuple[str, Any]]:
    """``(where, parsed JSON)`` of each record of ``src``, read line by line.

    ``.json``: the whole file is one record (``pilotlab run``'s ``evidence.json``); otherwise
    each non-blank line is one. ``where`` is ``path`` or ``path:line``.
    """
    size = src.stat().st_size
    limit = MAX_RECORD_BYTES if src.suffix == ".json" else MAX_FILE_BYTES
    if size > limit:
        raise RegistryError(
            f"{src}: the file is {_size(size)}; pilotlab imports "
            f"{'an evidence.json' if src.suffix == '.json' else 'a file'} of at most "
            f"{_size(limit)}; split the export into smaller files; {NOTHING}"
        )
    with src.open("rb") as fh:
        if src.suffix == ".json":
            raw = fh.read(MAX_RECORD_BYTES + 1)
            yield f"{src}", parse_record(raw.removeprefix(b"\xef\xbb\xbf"), f"{src}")
            return
        n = 0
        while True:
            raw = fh.readline(MAX_RECORD_BYTES + 1)
            if not raw:
                return
            n += 1
            if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
                raise RegistryError(
                    f"{src}:{n}: the record is longer than {_size(MAX_RECORD_BYTES)}, "
                    f"more than any evidence record; it was not written by pilotlab; {NOTHING}"
                )
            if n == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if raw.strip():
                yield f"{src}:{n}", parse_record(raw, f"{src}:{n}")
