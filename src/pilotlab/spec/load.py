"""Read a pilot file: safe YAML, then the pydantic models, with key-path error messages."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import PrivateAttr, ValidationError

from pilotlab.exceptions import SpecError
from pilotlab.spec.models import PilotSpec

__all__ = ["LoadedPilot", "canonical_json", "load_pilot", "parse_pilot", "plan_sha256"]


class LoadedPilot(PilotSpec):
    """A :class:`PilotSpec` that remembers the file it came from."""

    # Not part of the pilot file: set by load_pilot, never dumped or hashed.
    _source_path: str | None = PrivateAttr(None)

    @property
    def source_path(self) -> str | None:
        """The pilot file this spec was read from, if any."""
        return self._source_path

    @property
    def base_dir(self) -> Path:
        """Folder relative to which data paths resolve."""
        return Path(self.source_path).parent if self.source_path else Path.cwd()

    @property
    def data_path(self) -> Path:
        """Absolute path of the data file."""
        p = Path(self.data.path)
        return p if p.is_absolute() else self.base_dir / p


def canonical_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 text (the plan hash input)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_sha256(spec: PilotSpec) -> str:
    """SHA-256 of the canonical JSON of the analysis plan."""
    return hashlib.sha256(canonical_json(spec.plan()).encode("utf-8")).hexdigest()


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (
            part.startswith(("function-", "literal[", "list[", "dict[", "int", "str"))
            or "," in part
        ):
            continue  # pydantic's union branch tags are not keys
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


_KEY_PREFIX = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*): ")


def _describe(err: Any, raw: Any) -> str:
    etype = err["type"]
    msg = err["msg"]
    inp = err.get("input")
    if etype == "extra_forbidden":
        return (
            "unknown key; check the spelling against the pilot file reference (`pilotlab schema`)"
        )
    if etype == "missing":
        return "required key is missing; add it"
    if etype == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"found {inp!r}; allowed: {expected}"
    if etype == "value_error":
        return msg.removeprefix("Value error, ")
    if inp is not None and not isinstance(inp, dict | list):
        return f"found {inp!r}: {msg[0].lower() + msg[1:]}"
    return msg[0].lower() + msg[1:]


def parse_pilot(raw: Any, source: str = "<pilot>") -> LoadedPilot:
    """Validate a mapping as a pilot file; every problem is listed in one :class:`SpecError`."""
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else f"a {type(raw).__name__}"
        raise SpecError(
            f"{source}: the pilot file is {kind}; it must be a YAML mapping of keys "
            "such as id, title, data, treatment, outcomes (run `pilotlab init` for a template)"
        )
    try:
        spec = LoadedPilot.model_validate(raw)
    except ValidationError as exc:
        seen: set[tuple[str, str]] = set()
        lines = []
        for err in exc.errors():
            key = _key_path(tuple(err["loc"]))
            text = _describe(err, raw)
            if key == "(top level)" and (m := _KEY_PREFIX.match(text)):
                key, text = m.group(1), text[m.end() :]  # cross-field checks name their key
            if (key, text) in seen:
                continue
            seen.add((key, text))
            lines.append(f"  - {key}: {text}")
        n = len(lines)
        raise SpecError(
            f"{source}: {n} problem{'s' if n > 1 else ''} in the pilot file:\n" + "\n".join(lines)
        ) from None
    if source != "<pilot>":
        spec._source_path = source
    return spec


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loader that rejects duplicate keys (YAML would silently keep the last)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key '{key}' (a later value would silently replace the first)",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_pilot(path: str | Path) -> LoadedPilot:
    """Read and validate a pilot file.

    Raises
    ------
    SpecError
        The file is missing, is not valid YAML, or does not follow the pilot file format.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "pilot.yaml"
    if not p.exists():
        raise SpecError(
            f"{p}: no such pilot file; check the path (or create one with `pilotlab init DIR`)"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(
            f"{p}: cannot be read as UTF-8 text ({exc}); save it as UTF-8 YAML"
        ) from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            f"{p}: YAML syntax error{where}: {problem}; check indentation (spaces, not tabs) "
            "and that every 'key: value' pair has a space after the colon"
        ) from None
    return parse_pilot(raw, str(p))
