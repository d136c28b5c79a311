"""A minimal PEP 517 build backend using only the standard library.

It builds a pure-Python wheel of the package folders beside this file, with the name, version,
dependencies and entry points read from ``pyproject.toml``, so that ``pip install`` works without
network access or any build tool installed.
"""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _project() -> dict:
    return tomllib.loads((HERE / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _dist(project: dict) -> str:
    return f"{project['name'].replace('-', '_')}-{project['version']}"


def _metadata(project: dict) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project.get('requires-python', '')}",
    ]
    lines += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def _entry_points(project: dict) -> str:
    out = []
    for group, points in project.get("entry-points", {}).items():
        out.append(f"[{group}]")
        out += [f"{name} = {value}" for name, value in points.items()]
        out.append("")
    return "\n".join(out)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _files(project: dict) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for package in sorted(p.parent for p in HERE.glob("*/__init__.py")):
        for path in sorted(package.rglob("*.py")):
            files[path.relative_to(HERE).as_posix()] = path.read_bytes()
    info = f"{_dist(project)}.dist-info"
    files[f"{info}/METADATA"] = _metadata(project).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: build_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/entry_points.txt"] = _entry_points(project).encode()
    return files


def build_wheel(
    wheel_directory: str,
    config_settings: dict | None = None,
    metadata_directory: str | None = None,
) -> str:
    """PEP 517: write the wheel into ``wheel_directory`` and return its file name."""
    project = _project()
    name = f"{_dist(project)}-py3-none-any.whl"
    files = _files(project)
    record = f"{_dist(project)}.dist-info/RECORD"
    lines = [_record_line(n, d) for n, d in files.items()] + [f"{record},,"]
    with zipfile.ZipFile(Path(wheel_directory) / name, "w", zipfile.ZIP_DEFLATED) as whl:
        for n, d in files.items():
            whl.writestr(n, d)
        whl.writestr(record, "\n".join(lines) + "\n")
    return name


def get_requires_for_build_wheel(config_settings: dict | None = None) -> list[str]:
    """PEP 517: nothing beyond the standard library."""
    return []
