"""``randomise_pilot()``: what ``pilotlab randomise`` does, as one function.

Draw the pilot's allocation from its ``assignment:`` and the data (the history before the
start), show its balance, and record it in the registry before the pilot starts:

1. the pilot file and data are read and the allocation drawn
   (:func:`pilotlab.data.load_panel` draws it exactly as ``pilotlab run`` will); every mistake
   (units not in the data, a stratum of one unit, more arms than units, a balance criterion no
   draw met) is an error here, before anything is written;
2. ``allocation.json`` and ``allocation.html`` are written to a staging folder;
3. the allocation is recorded in the registry (the pilot is registered with it if it was not),
   and only then are the files moved into place. A pilot that has an allocation already is
   refused (nothing written, nothing recorded) unless a reason for the change is given.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pilotlab.data import load_panel
from pilotlab.data.allocation import Allocation
from pilotlab.engine.run import default_output_dir
from pilotlab.engine.trial import balance_rows
from pilotlab.engine.versions import software_versions
from pilotlab.exceptions import SpecError
from pilotlab.outputs import check_output_folder, output_folder
from pilotlab.registry import Registry
from pilotlab.registry.chain import Key
from pilotlab.registry.location import resolve_url
from pilotlab.registry.records import AllocationRecord, PlanVersion
from pilotlab.registry.remote import RemoteRegistry, is_service_url
from pilotlab.results import BalanceRow
from pilotlab.spec import PilotSpec, load_pilot, plan_sha256

__all__ = ["ALLOCATION_FORMAT", "Randomised", "allocation_document", "randomise_pilot"]

ALLOCATION_FORMAT = "pilotlab.allocation/1"


@dataclass(frozen=True)
class Randomised:
    """What :func:`randomise_pilot` did."""

    spec: PilotSpec
    allocation: Allocation
    balance: tuple[BalanceRow, ...]
    output_dir: Path
    document: dict[str, Any]
    record: AllocationRecord
    registered_plan: PlanVersion | None
    registry: str

    @property
    def json_path(self) -> Path:
        """``allocation.json``."""
        return self.output_dir / "allocation.json"

    @property
    def html_path(self) -> Path:
        """``allocation.html``."""
        return self.output_dir / "allocation.html"


def allocation_document(
    spec: PilotSpec,
    allocation: Allocation,
    balance: tuple[BalanceRow, ...],
    data_sha256: str,
    generated_at: str,
) -> dict[str, Any]:
    """The content of ``allocation.json`` (see ``allocation.schema.json``).

    ``sha256`` is the SHA-256 of the canonical JSON (sorted keys, no white space, UTF-8) of the
    ``scheme``, ``seed``, ``groups`` and ``units`` below, with ``units`` reduced to ``unit``,
    ``code`` and ``stratum``: what ``pilotlab run`` recomputes from the pilot file and data.
    """
    a = spec.assignment
    labels = {o.column: o.display for o in spec.outcomes}
    return {
        "schema": ALLOCATION_FORMAT,
        "pilot": {"id": spec.id, "title": spec.title},
        "scheme": allocation.scheme,
        "seed": int(allocation.seed),
        "sha256": allocation.sha256,
        "groups": [
            {
                "code": k,
                "name": g,
                "start": s,
                "units": int((allocation.codes == k).sum()),
            }
            for k, (g, s) in enumerate(zip(allocation.groups, allocation.starts, strict=True))
        ],
        "strata": list(allocation.stratum_labels) if allocation.has_blocks else [],
        "strata_from": (
            list(a.stratum_columns)
            if a is not None and a.stratum_columns
            else ("pairs_on" if allocation.scheme == "pairs" else None)
        ),
        "units": [
            {
                "unit": u,
                "code": int(c),
                "group": allocation.groups[int(c)],
                "start": allocation.starts[int(c)],
                "stratum": allocation.stratum_labels[int(b)],
            }
            for u, c, b in zip(allocation.units, allocation.codes, allocation.stratum, strict=True)
        ],
        "rerandomisation": (
            {
                "on": list(allocation.balance_on),
                "max_std_diff": allocation.max_std_diff,
                "max_draws": int(allocation.max_draws),
                "draws_tried": int(allocation.draws_tried),
            }
            if allocation.max_std_diff is not None
            else None
        ),
        "variables": [
            {"name": v, "label": labels.get(v, v)}
            for v in dict.fromkeys(b.variable for b in balance)
        ],
        "balance": [_finite_row(b) for b in balance],
        "plan_sha256": plan_sha256(spec),
        "data": {"path": spec.data.path, "sha256": data_sha256},
        "generated_at": generated_at,
        "software": software_versions(),
    }


def _finite_row(b: BalanceRow) -> dict[str, Any]:
    out = b.to_dict()
    for k, v in out.items():
        if isinstance(v, float) and v != v:
            out[k] = None  # strict JSON: a mean or difference that cannot be computed
    return out


def randomise_pilot(
    pilot: str | os.PathLike[str] | PilotSpec,
    output_dir: str | os.PathLike[str] | None = None,
    *,
    registry: str | Registry | RemoteRegistry | None = None,
    key: Key | None = None,
    reason: str | None = None,
    option: str = "output_dir",
) -> Randomised:
    """Draw a randomised pilot's allocation, write allocation.json and allocation.html, and
    record the allocation in the registry.

    Parameters
    ----------
    pilot
        The pilot file (a path) or a loaded pilot; it must have an ``assignment:`` key.
    output_dir
        Folder for ``allocation.json`` and ``allocation.html`` (default:
        ``out/<pilot id>/allocation`` beside the pilot file).
    registry
        A database URL, an evidence service's ``https://`` address (with ``$PILOTLAB_TOKEN``),
        or an open :class:`~pilotlab.registry.Registry` or
        :class:`~pilotlab.registry.remote.RemoteRegistry` (left open); default:
        ``$PILOTLAB_REGISTRY_URL``, else ``.pilotlab/registry.db`` (created if missing).
    key
        The registry's signing key, if its log is signed.
    reason
        Why a pilot that already has an allocation gets a new one (recorded as a deviation).
    option
        How error messages name the output folder.

    Raises
    ------
    PilotlabError
        No ``assignment``; a mistake in the pilot file or data; an allocation that cannot be
        drawn; a pilot that has an allocation already (without ``reason``). Nothing is written
        and nothing is recorded then.
    """
    spec = pilot if isinstance(pilot, PilotSpec) else load_pilot(Path(pilot))
    source = getattr(spec, "source_path", None) or "pilot file"
    if spec.assignment is None:
        raise SpecError(
            f"{source}: assignment: the pilot file has no assignment key, so there is nothing to "
            "randomise; add one (e.g. assignment: {scheme: stratified, treated: 12, strata: "
            "[region], start: 2025Q1, seed: 20250101})"
        )
    out = Path(output_dir) if output_dir is not None else default_output_dir(spec) / "allocation"
    check_output_folder(out, option)
    panel = load_panel(spec, history=True)  # draws the allocation exactly as `run` will
    allocation = panel.allocation
    assert allocation is not None  # a pilot with assignment always has one
    rows = balance_rows(panel, allocation)
    generated_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = allocation_document(spec, allocation, rows, panel.fingerprint, generated_at)

    from pilotlab.report.allocation import render_allocation_html

    reg: Registry | RemoteRegistry
    if isinstance(registry, Registry | RemoteRegistry):
        reg = registry
    elif is_service_url(resolve_url(registry)):
        reg = RemoteRegistry(resolve_url(registry))
    else:
        reg = Registry(registry, key=key)
    try:
        with output_folder(out, option) as tmp:
            html = render_allocation_html(doc, rows, where=reg.display_url)
            (tmp / "allocation.json").write_text(
                json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                encoding="utf-8",
            )
            (tmp / "allocation.html").write_text(html, encoding="utf-8")
            # Recorded last, inside the staging block: a refused or failed record leaves no file.
            record, plan = reg.record_allocation(
                spec,
                doc,
                allocation_sha256=allocation.sha256,
                scheme=allocation.scheme,
                seed=allocation.seed,
                n_units=allocation.n_units,
                data_sha256=panel.fingerprint,
                reason=reason,
            )
        where = reg.display_url
    finally:
        if reg is not registry:
            reg.close()
    return Randomised(spec, allocation, rows, out, doc, record, plan, where)
