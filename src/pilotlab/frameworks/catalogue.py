"""Finding and reading outcome frameworks: the shipped ones and a programme's own files."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from pilotlab.exceptions import SpecError
from pilotlab.frameworks.model import Framework, Metric, split_ref

__all__ = [
    "ENV_PATHS",
    "MAX_FRAMEWORK_BYTES",
    "FrameworkSet",
    "builtin_frameworks",
    "load_framework",
    "load_frameworks",
]

#: Environment variable: framework files or folders, separated by the OS path separator.
ENV_PATHS = "PILOTLAB_FRAMEWORKS"
#: A framework file is a few tens of kilobytes of YAML.
MAX_FRAMEWORK_BYTES = 2_000_000
_SUFFIXES = (".yaml", ".yml")


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _parse(text: str, where: str) -> Framework:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(
            f"{where}: YAML syntax error{at}; an outcome framework is plain YAML "
            "(framework, version, title, metrics)"
        ) from None
    if not isinstance(raw, dict):
        raise SpecError(
            f"{where}: not an outcome framework (expected a mapping with the keys framework, "
            "version, title and metrics)"
        )
    try:
        return Framework.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            key = _key_path(loc)
            if loc and loc[0] == "metrics" and len(loc) > 1 and isinstance(loc[1], int):
                metrics = raw.get("metrics") or []
                m = metrics[loc[1]] if loc[1] < len(metrics) else None
                code = m.get("code") if isinstance(m, dict) else None
                if code:
                    key += f" (metric {code})"
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "missing; add it"
            elif err["type"] == "extra_forbidden":
                msg = "is not a framework key; check the spelling"
            lines.append(f"  - {key}: {msg}")
        n = len(lines)
        raise SpecError(
            f"{where}: {n} problem{'s' if n > 1 else ''} in the outcome framework:\n"
            + "\n".join(lines)
        ) from None


def load_framework(path: str | os.PathLike[str]) -> Framework:
    """Read and check one framework file.

    Raises
    ------
    SpecError
        The file is missing, too large, not YAML or not a valid framework.
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(
            f"{p}: no such outcome framework file; give a .yaml file or a folder of them"
        )
    try:
        size = p.stat().st_size
        if size > MAX_FRAMEWORK_BYTES:
            raise SpecError(
                f"{p}: the file is {size:,} bytes; an outcome framework is a small YAML file "
                f"(at most {MAX_FRAMEWORK_BYTES:,} bytes)"
            )
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError(f"{p}: not UTF-8 text; save the framework as UTF-8 YAML") from None
    except OSError as exc:
        raise SpecError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    return _parse(text, str(p))


@functools.cache
def _builtin() -> tuple[Framework, ...]:
    folder = resources.files("pilotlab.frameworks").joinpath("data")
    out = []
    for item in sorted(folder.iterdir(), key=lambda x: x.name):
        if item.name.endswith(_SUFFIXES):
            out.append(_parse(item.read_text(encoding="utf-8"), f"pilotlab:{item.name}"))
    return tuple(out)


def builtin_frameworks() -> tuple[Framework, ...]:
    """The frameworks shipped with pilotlab."""
    return _builtin()


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        if not found:
            raise SpecError(
                f"{path}: the folder holds no outcome framework (.yaml files); give a folder of "
                "framework files or the file itself"
            )
        yield from found
    else:
        yield path


@dataclass(frozen=True)
class FrameworkSet:
    """The frameworks known to one pilot or one synthesis, by id, with where each came from."""

    frameworks: Mapping[str, Framework]
    sources: Mapping[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Framework]:
        return iter(self.frameworks.values())

    def metric(self, ref: str) -> Metric:
        """The metric named ``<framework>/<code>``.

        Raises
        ------
        ValueError
            The reference is malformed, or names a framework or code that is not known; the
            message lists what is.
        """
        fid, code = split_ref(ref)
        fw = self.frameworks.get(fid)
        if fw is None:
            known = ", ".join(sorted(self.frameworks)) or "none"
            raise ValueError(
                f"'{ref}' names the framework '{fid}', which is not known (known: {known}); add "
                "its file under 'frameworks:' in the pilot file, or fix the name"
            )
        m = fw.metric(code)
        if m is None:
            codes = ", ".join(x.code for x in fw.metrics)
            raise ValueError(
                f"'{code}' is not a metric of the framework '{fid}' (version {fw.version}); its "
                f"metrics are: {codes}"
            )
        return m

    def find(self, code_or_ref: str) -> list[Metric]:
        """Every metric matching ``<framework>/<code>`` or a bare ``<code>``."""
        if "/" in code_or_ref:
            try:
                return [self.metric(code_or_ref)]
            except ValueError:
                return []
        return [m for fw in self for m in fw.metrics if m.code == code_or_ref]


def _paths_from_env() -> list[Path]:
    raw = os.environ.get(ENV_PATHS, "")
    return [Path(p) for p in raw.split(os.pathsep) if p.strip()]


def load_frameworks(
    paths: Iterable[str | os.PathLike[str]] = (),
    *,
    base_dir: Path | None = None,
    key: str = "frameworks",
    use_env: bool = True,
) -> FrameworkSet:
    """The shipped frameworks plus those in ``paths`` (files or folders of ``.yaml`` files) and
    in ``$PILOTLAB_FRAMEWORKS``.

    Relative paths resolve against ``base_dir`` (default: the working folder). Two files that
    give the same framework id must agree exactly (same version and metrics), or it is refused.

    Raises
    ------
    SpecError
        A path is missing, a file is not a valid framework, or two differ under one id.
    """
    found: dict[str, Framework] = {}
    sources: dict[str, str] = {}
    for fw in builtin_frameworks():
        found[fw.framework] = fw
        sources[fw.framework] = "shipped with pilotlab"
    given = [Path(p) for p in paths]
    if use_env:
        given += _paths_from_env()
    for raw in given:
        path = raw if raw.is_absolute() or base_dir is None else base_dir / raw
        if not path.exists():
            raise SpecError(
                f"{key}: '{raw}' does not exist (looked for {path}); give an outcome framework "
                "file (.yaml) or a folder of them"
            )
        for f in _files(path):
            fw = load_framework(f)
            old = found.get(fw.framework)
            if old is not None and old != fw:
                raise SpecError(
                    f"{f}: the framework '{fw.framework}' (version {fw.version}) is already "
                    f"defined differently by {sources[fw.framework]} (version {old.version}); "
                    "give each framework a distinct id, or use one file per id"
                )
            found[fw.framework] = fw
            sources.setdefault(fw.framework, str(f))
    return FrameworkSet(found, sources)
