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
            part.startswith(("function-", "literal[", "list[", "dict[", "int[", "str["))
            or part in {"int", "str", "float", "bool"}
            or "," in part
        ):
            continue  # pydantic's union branch tags are not keys
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


_KEY_PREFIX = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*): ")


def _describe(err: Any, raw: Any) -> str:
    etype = err["type"]
    msg = str(err["msg"])
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
        base_dir = Path(source).parent if source != "<pilot>" else None
        spec = LoadedPilot.model_validate(raw, context={"base_dir": base_dir})
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


#: Pilot files are a few kilobytes; anything larger is not a pilot file.
MAX_PILOT_BYTES = 1_000_000
#: Deepest nesting accepted (the pilot file format needs five levels).
MAX_DEPTH = 64
#: Most nodes a file may expand to through anchors and aliases.
MAX_NODES = 100_000

_INT = "tag:yaml.org,2002:int"
_STR = "tag:yaml.org,2002:str"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_DECIMAL_DIGITS = re.compile(r"[0-9]+")
_OCTAL_LOOKING = re.compile(r"[-+]?0[0-9_]+")

#: Key paths whose items (or, for ``adoption``, keys) are unit ids.
_ID_LISTS = {
    ("treatment", "units"),
    ("treatment", "comparison"),
    ("treatment", "exclude"),
    ("treatment", "eligible"),
    ("design", "power", "treated"),
    ("assignment", "eligible"),
}
_ID_KEYS = {("treatment", "adoption")}
#: Key paths of mappings whose values are lists of unit ids.
_ID_MAP_LISTS = {("assignment", "strata")}


class _PilotLoader(yaml.SafeLoader):
    """Safe loader for pilot files.

    Beyond PyYAML's safe loader it rejects duplicate keys (YAML would silently keep the last),
    limits nesting depth, reads ``010`` as ten rather than YAML 1.1's octal eight, and keeps
    the written text of unit ids (``[010, 011]`` are the ids ``"010"`` and ``"011"``).
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"the file is nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call, unused-ignore]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError, KeyError) as exc:
            tag = str(node.tag).removeprefix("tag:yaml.org,2002:")
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} cannot be read as {tag} ({exc})", node.start_mark
            ) from None


def _construct_mapping(
    loader: _PilotLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            seen = key in mapping
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a key is a list or mapping; keys must be plain names",
                key_node.start_mark,
            ) from None
        if seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key '{key}' (a later value would silently replace the first)",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


def _construct_int(loader: _PilotLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if _OCTAL_LOOKING.fullmatch(text):
        return int(text.replace("_", ""), 10)  # YAML 1.1 would read 010 as octal 8
    return int(loader.construct_yaml_int(node))


def _refuse_binary(loader: _PilotLoader, node: yaml.Node) -> None:
    raise yaml.constructor.ConstructorError(
        None, None, "binary data (!!binary) have no place in a pilot file", node.start_mark
    )


_PilotLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_PilotLoader.add_constructor(_INT, _construct_int)
_PilotLoader.add_constructor("tag:yaml.org,2002:binary", _refuse_binary)


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _id_node_as_text(node: yaml.Node, key: str, problems: list[str]) -> None:
    """Make an unquoted unit id a string with the text as written, or record why it cannot be."""
    if not isinstance(node, yaml.ScalarNode) or node.style is not None:
        return  # quoted scalars are already text; lists and mappings are refused later
    if node.tag in (_BOOL, _TIMESTAMP) or (
        node.tag == _INT and _DECIMAL_DIGITS.fullmatch(node.value)
    ):
        node.tag = _STR  # 010 stays "010", NO stays "NO", 2024-01-01 stays "2024-01-01"
    elif node.tag in (_INT, _FLOAT):
        problems.append(
            f"{key} ({_line(node)}): {node.value} is read by YAML as a number, not as the "
            f"id written; put unit ids in quotes, e.g. '{node.value}'"
        )


def _child(node: yaml.Node, name: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == name:
                child: yaml.Node = v
                return child
    return None


def _ids_as_text(root: yaml.Node) -> list[str]:
    """Apply :func:`_id_node_as_text` to every unit id of the pilot file's node tree."""
    problems: list[str] = []
    node: yaml.Node | None
    path: tuple[str, ...]
    for path in sorted(_ID_MAP_LISTS):
        node = root
        for name in path:
            node = _child(node, name) if node is not None else None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(v, yaml.SequenceNode):
                    for i, item in enumerate(v.value):
                        _id_node_as_text(item, f"{'.'.join(path)}.{k.value}[{i}]", problems)
    for path in sorted(_ID_LISTS | _ID_KEYS):
        node = root
        for name in path:
            node = _child(node, name) if node is not None else None
        key = ".".join(path)
        if isinstance(node, yaml.SequenceNode) and path in _ID_LISTS:
            for i, item in enumerate(node.value):
                _id_node_as_text(item, f"{key}[{i}]", problems)
        elif isinstance(node, yaml.ScalarNode) and path in _ID_LISTS and path[0] == "treatment":
            _id_node_as_text(node, key, problems)
        elif isinstance(node, yaml.MappingNode) and path in _ID_KEYS:
            for k, _ in node.value:
                _id_node_as_text(k, f"{key} key", problems)
    return problems


def _expanded_size(root: yaml.Node) -> int:
    """Number of nodes the tree expands to once aliases are followed (counted once each)."""
    sizes: dict[int, int] = {}
    order: list[yaml.Node] = []
    stack = [root]
    while stack:  # post-order without recursion
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = -1
        order.append(node)
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
    for node in reversed(order):
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        sizes[id(node)] = min(MAX_NODES + 1, 1 + sum(sizes[id(c)] for c in children))
    return sizes[id(root)]


def _read_yaml(text: str, where: str) -> Any:
    """Parse pilot-file text with :class:`_PilotLoader`; any YAML problem is a SpecError."""
    loader: _PilotLoader | None = None
    try:
        loader = _PilotLoader(text)
        root = loader.get_single_node()
        if root is None:
            return None
        if _expanded_size(root) > MAX_NODES:
            raise SpecError(
                f"{where}: anchors and aliases expand the file to more than {MAX_NODES} "
                "values; write the pilot file out plainly"
            )
        problems = _ids_as_text(root)
        if problems:
            n = len(problems)
            raise SpecError(
                f"{where}: {n} problem{'s' if n > 1 else ''} in the pilot file:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_message(where, exc)) from None
    except RecursionError:
        raise SpecError(
            f"{where}: the file is nested too deeply to read; a pilot file needs only a few "
            "levels of keys"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_message(where: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.constructor.ConstructorError):
        if "could not determine a constructor" in problem or "binary" in problem:
            return (
                f"{where}: unsupported YAML tag{at}: {problem}; pilot files are plain YAML: "
                "remove the '!' or '!!' tag and write the value as text, a number or a list"
            )
        return f"{where}: invalid value{at}: {problem}; fix the value"
    if isinstance(exc, yaml.reader.ReaderError):
        return (
            f"{where}: the file contains a character YAML does not allow ({exc.reason}, "
            f"position {exc.position}); remove it or save the file as plain UTF-8 text"
        )
    if isinstance(exc, yaml.composer.ComposerError) and "nested" in problem:
        return f"{where}: {problem}{at}; a pilot file needs only a few levels of keys"
    return (
        f"{where}: YAML syntax error{at}: {problem}; check indentation (spaces, not tabs) "
        "and that every 'key: value' pair has a space after the colon"
    )


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
    if p.is_dir():
        raise SpecError(f"{p}: is a folder; give the path of the pilot file (pilot.yaml)")
    try:
        size = p.stat().st_size
        if size > MAX_PILOT_BYTES:
            raise SpecError(
                f"{p}: the file is {size:,} bytes; a pilot file is a few kilobytes of YAML "
                f"(at most {MAX_PILOT_BYTES:,}): check that this is the pilot file"
            )
        data = p.read_bytes()
    except OSError as exc:
        raise SpecError(
            f"{p}: cannot be read ({exc.strerror or exc}); check the path and permissions"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{p}: line {line} is not UTF-8 text (byte 0x{data[exc.start]:02x}); save the "
            "file as UTF-8 YAML"
        ) from None
    raw = _read_yaml(text, str(p))
    return parse_pilot(raw, str(p))
