"""What ``pilotlab run`` adds for a randomised pilot, and for a cycle of a learning chain.

- :func:`check_allocation`: the allocation drawn from the pilot file and data must be the one
  registered before the pilot started (same hash); a data change that moved units between
  strata, or a changed assignment, is a clear error before anything is estimated.
- :func:`trial_summary`: the flow (eligible -> allocated -> received -> analysed, by arm, with
  the reason for every loss), attrition, contamination (from ``trial.received``), balance of the
  pre-period outcomes and covariates among the analysed units, and the per-protocol secondary
  estimate.
- :func:`cycle_info`: the pilot this cycle follows and the earlier cycles' latest results.

Balance (:func:`balance_rows`) is also what ``pilotlab randomise`` shows for the allocation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from pilotlab.data.allocation import Allocation, balance, draw_many, unit_table_from_panel
from pilotlab.data.panel import NEVER, Panel
from pilotlab.exceptions import DataError, PilotlabError
from pilotlab.results import (
    AllocationChange,
    AllocationCheck,
    BalanceRow,
    CycleInfo,
    CycleResult,
    EarlierCycle,
    EffectResult,
    FlowRow,
    Loss,
    PerProtocol,
    TrialSummary,
)
from pilotlab.spec import PilotSpec

if TYPE_CHECKING:
    from pilotlab.registry.records import AllocationRecord, CycleStep

__all__ = [
    "RegisteredDesign",
    "balance_rows",
    "check_allocation",
    "cycle_info",
    "trial_summary",
]

#: Values of ``trial.received`` read as "had the intervention" / "did not".
#: Re-draws of the allocation for the balance test.
BALANCE_DRAWS = 2000
_YES = frozenset({"1", "1.0", "true", "yes", "y"})
_NO = frozenset({"0", "0.0", "false", "no", "n"})


@dataclass(frozen=True)
class RegisteredDesign:
    """What the registry holds about a pilot's design beyond its plan.

    ``allocations`` are its registered allocations, oldest first; ``cycles`` the earlier cycles
    of its learning chain, oldest first; ``checked`` says whether a registry was read at all.
    """

    allocations: tuple[AllocationRecord, ...] = ()
    cycles: tuple[CycleStep, ...] = ()
    checked: bool = False


# ----------------------------------------------------------------------------- balance


def balance_rows(
    panel: Panel, allocation: Allocation, keep: np.ndarray | None = None
) -> tuple[BalanceRow, ...]:
    """Standardised differences of the pre-period outcomes and covariates, per arm or wave.

    Each treated arm is compared with the control arm; each wave of a stepped roll-out with every
    unit in another wave (there may be no control). Means are over units with a pre-period value;
    the standard deviation is over all units compared (``ddof=1``), as in
    :func:`pilotlab.data.allocation.balance`. ``keep`` (per panel unit) limits the units.
    """
    table = unit_table_from_panel(panel)
    codes = allocation.codes_of(table.labels)
    ok = codes >= 0
    if keep is not None:
        ok &= _keep_by_label(panel, keep, table.labels)
    codes, values = codes[ok], table.values[ok]
    if codes.size < 2 or not table.variables:
        return ()
    k = allocation.n_groups
    against: Literal["control", "rest"] = "rest" if allocation.stepped else "control"
    std = balance(codes, values, k, against=against)  # (K-1, p)
    x = np.where(np.isfinite(values), values, np.nan)
    rows: list[BalanceRow] = []
    for g in range(1, k):
        in_g = codes == g
        comp = ~in_g if against == "rest" else codes == 0
        if not in_g.any() or not comp.any():
            continue
        with np.errstate(invalid="ignore"):
            mg = np.nanmean(x[in_g], axis=0) if in_g.any() else np.full(x.shape[1], np.nan)
            mc = np.nanmean(x[comp], axis=0) if comp.any() else np.full(x.shape[1], np.nan)
        for j, var in enumerate(table.variables):
            rows.append(
                BalanceRow(
                    variable=var,
                    group=allocation.groups[g],
                    comparison="other waves" if against == "rest" else allocation.groups[0],
                    n_group=int(np.isfinite(x[in_g, j]).sum()),
                    n_comparison=int(np.isfinite(x[comp, j]).sum()),
                    mean_group=float(mg[j]),
                    mean_comparison=float(mc[j]),
                    std_diff=float(std[g - 1, j]),
                )
            )
    return tuple(rows)


def _keep_by_label(panel: Panel, keep: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """``keep`` (per panel unit) looked up for each of ``labels``."""
    where = {u: bool(k) for u, k in zip(panel.unit_labels, np.asarray(keep), strict=True)}
    return np.array([where.get(u, False) for u in labels], dtype=bool)


# ----------------------------------------------------------------------------- allocation


def _source(spec: PilotSpec) -> str:
    return str(getattr(spec, "source_path", None) or "pilot file")


def check_allocation(
    spec: PilotSpec, allocation: Allocation, registered: Sequence[AllocationRecord]
) -> AllocationCheck:
    """The allocation analysed against the latest registered one.

    Raises
    ------
    DataError
        The drawn allocation is not the registered one: units moved between strata because the
        data changed, units appeared or disappeared, or the assignment (seed, scheme...) changed.
    """
    if not registered:
        return AllocationCheck(registered=False, sha256=allocation.sha256)
    latest = registered[-1]
    changes = tuple(
        AllocationChange(r.version, str(r.recorded_at), r.reason) for r in registered[1:]
    )
    check = AllocationCheck(
        registered=True,
        sha256=allocation.sha256,
        registered_sha256=latest.allocation_sha256,
        version=latest.version,
        recorded_at=latest.recorded_at,
        matches=latest.allocation_sha256 == allocation.sha256,
        changes=changes,
    )
    if check.matches:
        return check
    source = _source(spec)
    units = latest.document.get("units")
    before: dict[str, Mapping[str, Any]] = {}
    if isinstance(units, list):
        before = {str(u.get("unit")): u for u in units if isinstance(u, dict)}
    now = allocation.table().set_index("unit")
    moved = [
        (u, str(before[u].get("stratum")), str(now.loc[u, "stratum"]))
        for u in now.index
        if u in before and str(before[u].get("stratum")) != str(now.loc[u, "stratum"])
    ]
    gone = sorted(set(before) - set(now.index))
    new = sorted(set(now.index) - set(before))
    fix = (
        "the allocation registered before the pilot started is what the pilot did, so it "
        f"cannot change afterwards; restore the data (or the assignment) it was drawn from, or, "
        f"if the allocation really changed, record it with `pilotlab randomise {source} -o DIR "
        '--reason "..."` (the report lists it as a deviation)'
    )
    head = (
        f"{source}: the allocation drawn now (hash {allocation.sha256[:12]}) is not the one "
        f"registered (version {latest.version}, hash {latest.allocation_sha256[:12]}, recorded "
        f"{latest.recorded_at})"
    )
    if moved and allocation.scheme != "pairs":
        shown = "; ".join(f"{u} from {a} to {b}" for u, a, b in moved[:6])
        more = f" and {len(moved) - 6} more" if len(moved) > 6 else ""
        raise DataError(
            f"{head}: the data changed after the allocation and moved {len(moved)} unit(s) "
            f"between strata ({shown}{more}); {fix}"
        )
    if gone or new:
        bits = []
        if gone:
            bits.append(
                f"{len(gone)} allocated unit(s) are no longer eligible or in the data "
                f"({', '.join(gone[:6])})"
            )
        if new:
            bits.append(
                f"{len(new)} unit(s) are eligible now but were not allocated ({', '.join(new[:6])})"
            )
        raise DataError(f"{head}: {'; '.join(bits)}; {fix}")
    reg_scheme, reg_seed = latest.scheme, latest.seed
    what = []
    if reg_scheme != allocation.scheme:
        what.append(f"the scheme is {allocation.scheme}, registered {reg_scheme}")
    if reg_seed != allocation.seed:
        what.append(f"the seed is {allocation.seed}, registered {reg_seed}")
    if moved:
        what.append(f"{len(moved)} unit(s) are now in other pairs (the pre-period data changed)")
    detail = "; ".join(what) or "the assignment or the pre-period data changed"
    raise DataError(f"{head}: {detail}; {fix}")


# ----------------------------------------------------------------------------- received


def _received_codes(
    spec: PilotSpec, allocation: Allocation, frame: pd.DataFrame, column: str
) -> np.ndarray:
    """Code of the arm each row received (0: none), from the ``trial.received`` column."""
    source = str(getattr(spec, "data_path", None) or "data")
    raw = frame[column]
    if raw.isna().any():
        n = int(raw.isna().sum())
        raise DataError(
            f"{source}: trial.received: column '{column}' has {n} empty cell(s); say for every "
            "row what the unit received (0 if it did not have the intervention)"
        )
    text = raw.map(lambda v: str(v).strip().lower()).to_numpy(dtype=object)
    names = {g.lower(): k for k, g in enumerate(allocation.groups)}
    if not allocation.stepped:
        names[allocation.groups[0].lower()] = 0
    out = np.full(len(text), -1, dtype=np.int64)
    yes = np.isin(text, list(_YES))
    no = np.isin(text, list(_NO))
    if allocation.n_groups == 2 or allocation.stepped:
        out[yes] = 1  # the intervention (a stepped roll-out has one, whatever the wave)
    out[no] = 0
    if not allocation.stepped:
        for name, k in names.items():
            out[text == name] = k
    bad = out < 0
    if bad.any():
        allowed = "0 or 1" if allocation.n_groups == 2 else "0 or an arm's name"
        if not allocation.stepped:
            allowed += f" ({', '.join(allocation.groups)})"
        example = str(raw.to_numpy()[int(np.flatnonzero(bad)[0])])
        raise DataError(
            f"{source}: trial.received: column '{column}' has {int(bad.sum())} value(s) that do "
            f"not say what the unit received (e.g. {example!r}); use {allowed}"
        )
    return out


# ----------------------------------------------------------------------------- summary


def trial_summary(
    spec: PilotSpec,
    panel: Panel,
    check: AllocationCheck,
    frame: pd.DataFrame | None,
    fit: Callable[[Panel, str], EffectResult] | None = None,
    seed: int = 0,
) -> TrialSummary:
    """The flow, attrition, contamination, balance and per-protocol analysis of a trial.

    Parameters
    ----------
    spec
        The pilot file (``trial.received`` and the primary outcomes are read).
    panel
        The analysed panel, with its allocation.
    check
        The allocation's registration check (:func:`check_allocation`).
    frame
        The data as read (needed for ``trial.received``; ``None`` when it is not used).
    fit
        Fits the pilot's estimator with its inference on a panel and outcome; used for the
        per-protocol estimate (``None``: not estimated).
    seed
        Seed of the re-draws of the balance test.
    """
    alloc = panel.allocation
    assert alloc is not None
    k = alloc.n_groups
    # Allocated units: every eligible unit; the panel holds those not excluded.
    a_codes = alloc.codes.astype(np.int64)
    in_panel = alloc.index_of(panel.unit_labels)  # position of each panel unit in the allocation
    panel_code = np.where(in_panel >= 0, a_codes[np.maximum(in_panel, 0)], 0)
    on_panel = np.zeros(alloc.n_units, dtype=bool)
    on_panel[in_panel[in_panel >= 0]] = True
    losses: list[Loss] = []
    excluded_code = a_codes[~on_panel]
    excluded_units = np.asarray(alloc.units, dtype=object)[~on_panel]

    # what each unit received, row by row, against its schedule
    received_col = spec.trial.received if spec.trial is not None else None
    compliant = np.ones(panel.n_units, dtype=bool)
    crossovers: list[tuple[str, str, str]] = []
    not_received = np.zeros(panel.n_units, dtype=bool)
    crossed = np.zeros(panel.n_units, dtype=bool)
    if received_col is not None:
        if frame is None or received_col not in frame.columns:
            raise DataError(
                f"{getattr(spec, 'data_path', None) or 'data'}: trial.received: column "
                f"'{received_col}' is not in the data; add it or fix the name in the pilot file"
            )
        got, unit_of_row, period_of_row = _rows_in_panel(spec, panel, frame, received_col, alloc)
        start = panel.first_treated[unit_of_row]
        sched = np.where(
            (panel_code[unit_of_row] > 0) & (period_of_row >= start), panel_code[unit_of_row], 0
        )
        if alloc.stepped:  # one intervention: had it or not, against the wave's schedule
            sched = (sched > 0).astype(np.int64)
        wrong = got != sched
        extra = wrong & (got > 0)  # had an intervention it was not scheduled for
        missed = wrong & (got == 0)  # scheduled but not had
        crossed = np.bincount(unit_of_row[extra], minlength=panel.n_units) > 0
        not_received = (np.bincount(unit_of_row[missed], minlength=panel.n_units) > 0) & ~crossed
        compliant = ~(crossed | not_received)
        first_got = np.full(panel.n_units, -1, dtype=np.int64)
        rows = np.flatnonzero(extra)
        if rows.size:
            first_got[unit_of_row[rows[::-1]]] = got[rows[::-1]]
        for i in np.flatnonzero(crossed | not_received):
            label = panel.unit_labels[i]
            allocated = alloc.groups[int(panel_code[i])]
            got_text = (
                alloc.groups[int(first_got[i])]
                if crossed[i]
                else "not the intervention in every period it was scheduled"
            )
            if alloc.stepped and crossed[i]:
                got_text = "the intervention before its wave started"
            crossovers.append((label, allocated, got_text))
    # analysed: units with a primary outcome value after the (first) start
    primary = [o.column for o in spec.primary_outcomes]
    first_start = int(panel.cohorts.min()) if panel.cohorts.size else panel.n_periods
    post = panel.time >= first_start
    has_y = np.zeros(panel.nobs, dtype=bool)
    for col in primary:
        has_y |= ~np.isnan(panel.y(col))
    analysed = np.bincount(panel.unit[post & has_y], minlength=panel.n_units) > 0

    flow: list[FlowRow] = []
    by_group: list[tuple[str, float]] = []
    for g in range(k):
        allocated_n = int((a_codes == g).sum())
        here = panel_code == g
        analysed_n = int((here & analysed).sum())
        received_n = int((here & compliant).sum()) if received_col is not None else None
        flow.append(FlowRow(alloc.groups[g], allocated_n, received_n, analysed_n, g > 0))
        if allocated_n:
            by_group.append((alloc.groups[g], 1 - analysed_n / allocated_n))
        gone = tuple(excluded_units[excluded_code == g].tolist())
        if gone:
            losses.append(
                Loss(
                    alloc.groups[g],
                    "analysed",
                    "excluded in the pilot file (treatment.exclude)",
                    gone,
                )
            )
        if received_col is not None:
            cx = tuple(panel.unit_labels[i] for i in np.flatnonzero(here & crossed))
            nr = tuple(panel.unit_labels[i] for i in np.flatnonzero(here & not_received))
            if cx:
                why = (
                    "had the intervention before its wave started"
                    if alloc.stepped
                    else "crossed over: had another arm's intervention"
                    if g > 0
                    else "crossed over: had the intervention while allocated to control"
                )
                losses.append(Loss(alloc.groups[g], "received", why, cx))
            if nr:
                losses.append(
                    Loss(
                        alloc.groups[g],
                        "received",
                        "did not have the intervention in every period it was scheduled",
                        nr,
                    )
                )
        lost_y = tuple(panel.unit_labels[i] for i in np.flatnonzero(here & ~analysed))
        if lost_y:
            losses.append(
                Loss(alloc.groups[g], "analysed", "no outcome data after the start", lost_y)
            )
    total = alloc.n_units
    attrition = 1 - int(analysed.sum()) / total if total else 0.0
    shares = [s for _, s in by_group]
    differential = (max(shares) - min(shares)) if len(shares) > 1 else 0.0

    bal = balance_rows(panel, alloc, keep=analysed)
    draws = BALANCE_DRAWS
    balance_p = _balance_p(panel, alloc, analysed, draws, np.random.default_rng(seed))
    per_protocol: list[PerProtocol] = []
    if fit is not None and received_col is not None and not compliant.all():
        per_protocol = _per_protocol(spec, panel, compliant & analysed, fit)
    return TrialSummary(
        scheme=alloc.scheme,
        seed=int(alloc.seed),
        sha256=alloc.sha256,
        groups=alloc.groups,
        starts=alloc.starts,
        stepped=alloc.stepped,
        in_data=int(panel.unit_flow.in_data) if panel.unit_flow else alloc.n_units,
        eligible=alloc.n_units,
        flow=tuple(flow),
        losses=tuple(losses),
        crossovers=tuple(crossovers),
        received_column=received_col,
        balance=bal,
        attrition=float(attrition),
        attrition_by_group=tuple(by_group),
        differential_attrition=float(differential),
        registration=check,
        per_protocol=tuple(per_protocol),
        balance_p=balance_p,
        balance_draws=draws if balance_p is not None else 0,
        strata=alloc.stratum_labels if alloc.has_blocks and alloc.scheme != "pairs" else (),
    )


def _balance_p(
    panel: Panel, alloc: Allocation, keep: np.ndarray, draws: int, rng: np.random.Generator
) -> float | None:
    """Share of ``draws`` re-draws of the allocation (exactly as the scheme draws) whose largest
    absolute standardised difference over the kept units is at least the observed one."""
    table = unit_table_from_panel(panel)
    if not table.variables:
        return None
    ok = _keep_by_label(panel, keep, table.labels)
    idx = alloc.index_of(table.labels)
    ok &= idx >= 0
    if ok.sum() < 3:
        return None
    cols = idx[ok]
    values = table.values[ok]
    against: Literal["control", "rest"] = "rest" if alloc.stepped else "control"
    observed = balance(alloc.codes[cols], values, alloc.n_groups, against=against)
    obs = np.abs(observed[np.isfinite(observed)])
    if obs.size == 0:
        return None
    redrawn = draw_many(alloc, draws, rng)[:, cols]  # (R, n) as the scheme draws
    d = np.abs(balance(redrawn, values, alloc.n_groups, against=against))
    worst = np.where(np.isfinite(d), d, -np.inf).reshape(draws, -1).max(axis=1)
    return float((1 + np.count_nonzero(worst >= obs.max() - 1e-12)) / (draws + 1))


def _rows_in_panel(
    spec: PilotSpec, panel: Panel, frame: pd.DataFrame, column: str, alloc: Allocation
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(received code, panel unit, panel period) of every data row of an analysed unit."""
    from pilotlab.data.periods import parse_periods

    d = spec.data
    units = frame[d.unit].map(_unit_text)
    unit_of_row = pd.Index(panel.unit_labels).get_indexer(pd.Index(units)).astype(np.int64)
    periods, tidx, _bad = parse_periods(frame[d.time])
    label_of = pd.Index(periods.labels)[np.maximum(tidx, 0)]
    period_of_row = pd.Index(panel.period_labels).get_indexer(label_of).astype(np.int64)
    period_of_row[tidx < 0] = -1
    keep = (unit_of_row >= 0) & (period_of_row >= 0)
    got = _received_codes(spec, alloc, frame.loc[keep], column)
    return got, unit_of_row[keep], period_of_row[keep]


def _unit_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _per_protocol(
    spec: PilotSpec,
    panel: Panel,
    keep: np.ndarray,
    fit: Callable[[Panel, str], EffectResult],
) -> list[PerProtocol]:
    """Primary outcomes re-estimated on the units that got what they were allocated."""
    out: list[PerProtocol] = []
    sub = panel.subset_units(keep)
    treated = sub.first_treated != NEVER
    for o in spec.primary_outcomes:
        if not treated.any() or (treated.all() and not panel.is_staggered):
            out.append(
                PerProtocol(
                    o.column,
                    o.display,
                    None,
                    None,
                    None,
                    None,
                    int(keep.sum()),
                    "too few units got what they were allocated to compare",
                )
            )
            continue
        try:
            r = fit(sub, o.column)
        except PilotlabError as exc:
            out.append(
                PerProtocol(
                    o.column,
                    o.display,
                    None,
                    None,
                    None,
                    None,
                    int(keep.sum()),
                    f"could not be estimated: {exc}",
                )
            )
            continue
        out.append(
            PerProtocol(
                o.column,
                o.display,
                float(r.estimate),
                float(r.ci_lower),
                float(r.ci_upper),
                float(r.p_value),
                int(keep.sum()),
            )
        )
    return out


# ----------------------------------------------------------------------------- cycles


def cycle_info(spec: PilotSpec, registered: RegisteredDesign | None) -> CycleInfo | None:
    """The pilot this cycle follows, with the earlier cycles' latest results (from the
    registry's chain; none when no registry was read)."""
    cycle = spec.cycle
    if cycle is None:
        return None
    steps = registered.cycles if registered is not None else ()
    earlier = tuple(_earlier(s) for s in steps)
    return CycleInfo(
        follows=cycle.follows,
        change=cycle.change,
        earlier=earlier,
        registry_checked=bool(registered is not None and registered.checked),
    )


def _number(value: object) -> float | None:
    """A number of an evidence record, or ``None`` where it holds none."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _earlier(step: CycleStep) -> EarlierCycle:
    ev = step.evidence
    if not ev:
        return EarlierCycle(step.pilot_id, step.title, step.status, step.change)
    rows: list[CycleResult] = []
    for r in ev.get("results") or []:
        if not isinstance(r, dict) or not r.get("primary", True):
            continue
        rows.append(
            CycleResult(
                str(r.get("label") or r.get("outcome") or ""),
                *(
                    _number(r.get(k))
                    for k in ("estimate", "ci_lower", "ci_upper", "p_value", "alpha")
                ),
            )
        )
    es = ev.get("evidence_strength") or {}
    level = es.get("level") if isinstance(es, dict) else None
    return EarlierCycle(
        step.pilot_id,
        step.title,
        step.status,
        step.change,
        tuple(rows),
        int(level) if isinstance(level, int) else None,
        recorded=True,
    )
