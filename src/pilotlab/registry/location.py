"""Where the registry is: the URL a command uses, without loading the database layer."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_URL", "default_file", "default_url", "none_to_open", "resolve_url"]

#: Environment variable naming the registry (a database URL or an evidence service).
ENV_URL = "PILOTLAB_REGISTRY_URL"


def default_file() -> Path:
    """``<cwd>/.pilotlab/registry.db``: the embedded registry of the working directory."""
    return Path.cwd() / ".pilotlab" / "registry.db"


def default_url() -> str:
    """``sqlite:///<cwd>/.pilotlab/registry.db``: the embedded registry of the working directory."""
    return f"sqlite:///{default_file()}"


def resolve_url(url: str | None = None) -> str:
    """The registry URL: ``url``, else ``$PILOTLAB_REGISTRY_URL``, else :func:`default_url`."""
    return url or os.environ.get(ENV_URL) or default_url()


def none_to_open() -> bool:
    """Whether no registry is named (no ``$PILOTLAB_REGISTRY_URL``) and the working directory
    has no embedded one: there is nothing to read, and nothing needs to be imported to say so."""
    return not os.environ.get(ENV_URL) and not default_file().is_file()
