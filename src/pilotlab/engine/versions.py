"""Versions of the software that produced a result (the reproducibility appendix)."""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["software_versions"]


def software_versions() -> dict[str, str]:
    """Versions of pilotlab, Python and the numerical libraries (reproducibility appendix)."""
    out = {"pilotlab": _version("pilotlab"), "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "pandas", "statsmodels"):
        out[pkg] = _version(pkg)
    return out


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"
