"""Which parts of an analysis plan changed between two versions, as dotted key paths."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["changed_paths", "plan_differences"]

_ABSENT = object()


def _walk(old: Any, new: Any, prefix: str) -> Iterator[tuple[str, Any, Any]]:
    """``(path, old value, new value)`` of every difference (``_ABSENT`` for a missing key)."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            yield from _walk(old.get(key, _ABSENT), new.get(key, _ABSENT), path)
        return
    if (
        isinstance(old, list)
        and isinstance(new, list)
        and len(old) == len(new)
        and all(isinstance(x, dict) for x in old + new)
    ):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _walk(a, b, f"{prefix}[{i}]")
        return
    yield prefix or "(plan)", old, new


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
    return [path for path, _, _ in _walk(old, new, prefix)]


def plan_differences(old: Any, new: Any) -> list[dict[str, Any]]:
    """Every difference between two canonical plans, key by key, with both values.

    Keys are those of :func:`changed_paths`, in the same order. A key present in only one of the
    plans has ``None`` on the other side, and ``registered_set`` / ``analysed_set`` say which.

    Parameters
    ----------
    old
        The registered plan.
    new
        The plan analysed.

    Returns
    -------
    list of dict
        ``{"key", "registered", "analysed", "registered_set", "analysed_set"}`` per changed key;
        empty when the plans are equal.
    """
    return [
        {
            "key": path,
            "registered": None if a is _ABSENT else a,
            "analysed": None if b is _ABSENT else b,
            "registered_set": a is not _ABSENT,
            "analysed_set": b is not _ABSENT,
        }
        for path, a, b in _walk(old, new, "")
    ]
