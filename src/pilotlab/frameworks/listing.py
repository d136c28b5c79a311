"""What ``pilotlab frameworks`` prints: every known framework and its metrics."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from pilotlab.frameworks.catalogue import load_frameworks

__all__ = ["frameworks_json", "frameworks_text"]


def frameworks_text(paths: Sequence[str | os.PathLike[str]] = ()) -> str:
    """A plain listing: each framework (id, version, where from), then its metrics."""
    known = load_frameworks(paths, key="--frameworks")
    lines: list[str] = []
    for fw in known:
        lines.append(f"{fw.framework} {fw.version}: {fw.title} ({known.sources[fw.framework]})")
        width = max(len(m.ref) for m in fw.metrics)
        for m in fw.metrics:
            value = ""
            if m.monetary_value is not None:
                mv = m.monetary_value
                value = f"; £{mv.value:,.0f} per unit ({mv.price_year} prices)"
            lines.append(
                f"  {m.ref.ljust(width)}  {m.name} [{m.unit}, {m.better} is better{value}]"
            )
        lines.append("")
    n = sum(len(fw.metrics) for fw in known)
    lines.append(
        f"{len(known.frameworks)} framework(s), {n} metric(s). An outcome names one with "
        "`metric: <framework>/<code>`."
    )
    return "\n".join(lines)


def frameworks_json(paths: Sequence[str | os.PathLike[str]] = ()) -> str:
    """The frameworks as JSON (as read, with where each came from)."""
    known = load_frameworks(paths, key="--frameworks")
    return json.dumps(
        [
            {**fw.model_dump(mode="json"), "loaded_from": known.sources[fw.framework]}
            for fw in known
        ],
        indent=2,
        ensure_ascii=False,
    )
