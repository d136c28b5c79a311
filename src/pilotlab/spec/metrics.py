"""Outcomes that name a framework metric (``metric: local/claimant_rate``): the check that the
outcome agrees with the metric, run when the pilot file is validated.

An outcome that names a metric takes the metric's direction and unit when it does not state
them; when it states them they must agree with the framework, or the pilot file is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pilotlab.exceptions import SpecError
from pilotlab.frameworks import FrameworkSet, Metric, load_frameworks

if TYPE_CHECKING:
    from pilotlab.spec.models import OutcomeSpec

__all__ = ["MetricProblem", "resolve_metrics"]

#: (key path parts, message) of one disagreement.
MetricProblem = tuple[tuple[str | int, ...], str]


def _check(o: OutcomeSpec, m: Metric) -> list[tuple[str, str]]:
    out = []
    if "better" in o.model_fields_set and o.better != m.better:
        out.append(
            (
                "better",
                f"found '{o.better}', but the metric {m.ref} ({m.name}) is better when "
                f"{m.better}; remove 'better' or set it to '{m.better}'",
            )
        )
    if o.units is not None and not m.agrees_with_unit(o.units):
        out.append(
            (
                "units",
                f"found '{o.units}', but the metric {m.ref} is measured in '{m.unit}'; convert "
                f"the outcome to {m.unit} and write units: {m.unit}, or choose the metric that "
                "matches",
            )
        )
    return out


def resolve_metrics(
    outcomes: Sequence[OutcomeSpec], framework_paths: Sequence[str], base_dir: Path | None
) -> tuple[list[OutcomeSpec], list[MetricProblem], FrameworkSet | None]:
    """Each outcome with its metric attached (direction and unit filled in), and the problems.

    Frameworks are read only when some outcome names a metric or the pilot file lists
    ``frameworks``.
    """
    if not framework_paths and all(o.metric is None for o in outcomes):
        return list(outcomes), [], None
    try:
        frameworks = load_frameworks(framework_paths, base_dir=base_dir)
    except SpecError as exc:
        return list(outcomes), [(("frameworks",), str(exc).removeprefix("frameworks: "))], None
    problems: list[MetricProblem] = []
    resolved: list[OutcomeSpec] = []
    for i, o in enumerate(outcomes):
        if o.metric is None:
            resolved.append(o)
            continue
        try:
            m = frameworks.metric(o.metric)
        except ValueError as exc:
            problems.append((("outcomes", i, "metric"), str(exc)))
            resolved.append(o)
            continue
        bad = _check(o, m)
        problems += [(("outcomes", i, key), msg) for key, msg in bad]
        new = o.model_copy(update={"better": m.better, "units": o.units or m.unit})
        new._framework_metric = m
        resolved.append(new)
    return resolved, problems, frameworks
