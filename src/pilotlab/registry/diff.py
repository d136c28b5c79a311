"""Which parts of an analysis plan changed between two versions, as dotted key paths."""

from __future__ import annotations

from typing import Any

__all__ = ["changed_paths"]


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the keys that differ between two canonical plans.

    Mappings are compared key by key (a key added or removed is a change at its path); lists of
    the same length whose items are all mappings are compared item by item (``outcomes[0].mde``);
    any other list that differs is reported at its own path (``design.covariates``).

    Parameters
    ----------
    old, new
        Two plans as loaded from canonical JSON (``PilotSpec.plan()``).
    prefix
        Path of ``old``/``new`` inside the plan; empty at the top level.

    Returns
    -------
    list of str
        Sorted paths; empty when the plans are equal.
    """
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(path)
            else:
                out.extend(changed_paths(old[key], new[key], path))
        return out
    if (
        isinstance(old, list)
        and isinstance(new, list)
        and len(old) == len(new)
        and all(isinstance(x, dict) for x in old + new)
    ):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(changed_paths(a, b, f"{prefix}[{i}]"))
        return out
    return [prefix or "(plan)"]
