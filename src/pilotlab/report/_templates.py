"""Find the shipped Jinja templates, installed or not.

A wheel ships the repository's top-level ``templates/`` folder as ``pilotlab/templates`` (see the
``force-include`` in ``pyproject.toml``); an editable install or a source checkout has it at the
repository root, two levels above the package.
"""

from __future__ import annotations

from pathlib import Path

from pilotlab.exceptions import PilotlabError

__all__ = ["template_dir"]

_MARKER = "report.html.j2"


def template_dir() -> Path:
    """The folder holding pilotlab's own templates.

    Raises
    ------
    PilotlabError
        If neither the installed nor the source-tree location holds the templates.
    """
    package = Path(__file__).resolve().parents[1]  # .../pilotlab
    candidates = (package / "templates", package.parents[1] / "templates")
    for c in candidates:
        if (c / _MARKER).is_file():
            return c
    raise PilotlabError(
        "pilotlab's report templates were not found (looked in "
        + " and ".join(str(c) for c in candidates)
        + "); reinstall pilotlab (`pip install --force-reinstall pilotlab`)"
    )
