"""Randomised allocations: drawing them as the pilot file's ``assignment:`` says, and again.

Every scheme is drawn the same way. The eligible units are sorted by label and split into
*blocks* (one block for complete randomisation, the strata, or the matched pairs); each block
has a fixed number of units per code (code 0 the control arm, or for a stepped roll-out the
units in no wave; code ``k`` the ``k``-th treated arm or wave), shared out in proportion to the
blocks' sizes (:func:`apportion`). One draw is one row of uniform keys, ``rng.random(n)``: the
units of each block taken in the order of their keys receive the block's codes in code order
(treated arms first, control last). Re-randomisation repeats such draws and keeps the first
whose largest absolute standardised difference is within the criterion (:func:`balance`).

:func:`draw` makes the pilot's one allocation from ``numpy.random.Generator(PCG64(seed))``;
:func:`draw_many` makes ``R`` more at once as an ``(R, n)`` array from any generator, exactly as
the scheme draws (same blocks, same counts, same acceptance rule), for randomisation inference
and power. ``draw(...)`` equals the first row of ``draw_many(allocation, 1, generator(seed))``.
The result depends only on the seed, the sorted unit labels and the pre-period values, never
on dict or set order, so the same seed gives the same allocation on any machine.

Standardised difference (balance and the re-randomisation criterion): the difference between
an arm's mean and the control mean of a variable, divided by the variable's standard deviation
over all eligible units (``ddof=1``). The denominator is the same for every draw, so the
criterion is a fixed rule and its values for many draws are one matrix product.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from pilotlab.exceptions import DataError

if TYPE_CHECKING:
    from pilotlab.data.panel import Panel
    from pilotlab.spec.assignment import AssignmentSpec

__all__ = [
    "Allocation",
    "UnitTable",
    "apportion",
    "balance",
    "draw",
    "draw_many",
    "generator",
    "match_pairs",
    "unit_table",
    "unit_table_from_panel",
]

#: Keys per chunk when many candidate allocations are drawn at once (memory bound).
_CHUNK_KEYS = 4_000_000


def generator(seed: int) -> np.random.Generator:
    """The generator an allocation is drawn from: PCG64 seeded by the integer seed."""
    return np.random.Generator(np.random.PCG64(int(seed)))


# ----------------------------------------------------------------------------- unit table


@dataclass(frozen=True, eq=False)
class UnitTable:
    """One row per eligible unit: what an allocation may be drawn on.

    Attributes
    ----------
    labels : tuple of str
        Unit labels, sorted.
    variables : tuple of str
        Names of the columns of ``values``.
    values : numpy.ndarray
        ``(n, p)`` pre-period mean of each variable per unit (NaN where a unit has none).
    strata : numpy.ndarray or None
        ``(n,)`` stratum label of each unit (text), if the design has strata.
    """

    labels: tuple[str, ...]
    variables: tuple[str, ...] = ()
    values: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    strata: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.labels)

    def column(self, name: str) -> np.ndarray:
        """Values of one variable."""
        out: np.ndarray = self.values[:, self.variables.index(name)]
        return out

    def select(self, variables: Sequence[str]) -> np.ndarray:
        """``(n, len(variables))`` values of the named variables."""
        idx = [self.variables.index(v) for v in variables]
        out: np.ndarray = self.values[:, idx]
        return out


def unit_table(
    frame: pd.DataFrame,
    unit: str,
    *,
    pre: np.ndarray | None = None,
    variables: Sequence[str] = (),
    strata: Sequence[str] = (),
    units: Sequence[str] | None = None,
    source: str = "data",
) -> UnitTable:
    """Build the unit table from long data: pre-period means and stratum columns per unit.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long data, one row per unit and period (or more, for repeated cross-sections).
    unit : str
        Column of unit labels (text).
    pre : numpy.ndarray, optional
        Boolean per row: the row is in the pre-period (default: every row).
    variables : sequence of str
        Numeric columns averaged over each unit's pre-period rows (missing values skipped).
    strata : sequence of str
        Columns whose value (constant within a unit) makes the unit's stratum; several columns
        are joined with `` / ``.
    units : sequence of str, optional
        The units to keep (default: every unit in ``frame``); each must be in ``frame``.
    source : str
        Named in error messages.

    Raises
    ------
    DataError
        A stratum column varies within a unit or is missing for a unit; a listed unit is not in
        the data.
    """
    labels_all = frame[unit].astype(str).to_numpy()
    codes, distinct = pd.factorize(labels_all, sort=True)
    distinct = np.asarray(distinct, dtype=object)
    keep_units = distinct if units is None else np.asarray(sorted(set(units)), dtype=object)
    missing = np.setdiff1d(keep_units.astype(str), distinct.astype(str))
    if missing.size:
        raise DataError(
            f"{source}: {missing.size} unit(s) not in the data: {', '.join(missing[:6])}; "
            "check the ids (they must match the data exactly)"
        )
    pos = np.searchsorted(distinct.astype(str), keep_units.astype(str))
    n_all = distinct.size
    rows = np.ones(len(frame), dtype=bool) if pre is None else np.asarray(pre, dtype=bool)
    values = np.full((n_all, len(variables)), np.nan)
    for j, v in enumerate(variables):  # a few variables; each one vectorised over rows
        x = pd.to_numeric(frame[v], errors="coerce").to_numpy(np.float64)
        ok = rows & np.isfinite(x)
        s = np.bincount(codes[ok], weights=x[ok], minlength=n_all)
        c = np.bincount(codes[ok], minlength=n_all)
        with np.errstate(invalid="ignore", divide="ignore"):
            values[:, j] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    stratum: np.ndarray | None = None
    if strata:
        parts = []
        for col in strata:
            text = frame[col].astype("string").str.strip()
            empty = text.isna() | (text == "")
            per = pd.DataFrame({"u": codes, "v": text.where(~empty)})
            nun = per.groupby("u")["v"].nunique()
            varying = nun.index[nun.to_numpy() > 1].to_numpy(np.int64)
            varying = varying[np.isin(varying, pos)]
            if varying.size:
                raise DataError(
                    f"{source}: assignment.strata: column '{col}' takes more than one value "
                    f"for unit(s) {', '.join(map(str, distinct[varying][:5]))}; a unit's "
                    "stratum must not change over time: fix the data or stratify on another "
                    "column"
                )
            first = per.dropna().drop_duplicates("u").set_index("u")["v"]
            vals = first.reindex(np.arange(n_all)).to_numpy(dtype=object)
            none = pos[pd.isna(vals[pos])]
            if none.size:
                raise DataError(
                    f"{source}: assignment.strata: column '{col}' is empty for unit(s) "
                    f"{', '.join(map(str, distinct[none][:5]))}; give every eligible unit its "
                    "stratum"
                )
            parts.append(vals.astype(str))
        joined = parts[0]
        for p in parts[1:]:
            joined = np.char.add(np.char.add(joined.astype(str), " / "), p)
        stratum = np.asarray(joined, dtype=object)[pos]
    return UnitTable(
        labels=tuple(str(u) for u in keep_units),
        variables=tuple(variables),
        values=values[pos],
        strata=stratum,
    )


def unit_table_from_panel(
    panel: Panel, variables: Sequence[str] | None = None, *, before: int | None = None
) -> UnitTable:
    """The unit table of a :class:`~pilotlab.data.panel.Panel`: pre-period means of its
    outcomes and covariates (or ``variables``), and its allocation's strata if it has one.

    The pre-period is every period before ``before`` (a period index; default: the first
    treated period, or every period when no unit is treated).
    """
    from pilotlab.data.panel import UNIT  # the panel module imports this one for typing

    names = list(variables) if variables is not None else [*panel.outcomes, *panel.covariates]
    names = list(dict.fromkeys(names))
    if before is None:
        before = int(panel.cohorts.min()) if panel.cohorts.size else panel.n_periods
    frame = pd.DataFrame(
        {"unit": np.asarray(panel.unit_labels, dtype=object)[panel.frame[UNIT].to_numpy()]}
    )
    for v in names:
        frame[v] = panel.frame[v].to_numpy()
    table = unit_table(frame, "unit", pre=panel.time < before, variables=names)
    if panel.allocation is not None:
        alloc = panel.allocation
        idx = alloc.index_of(table.labels)
        known = idx >= 0
        strata = np.full(table.n, "", dtype=object)
        strata[known] = np.asarray(alloc.stratum_labels, dtype=object)[alloc.stratum[idx[known]]]
        table = UnitTable(table.labels, table.variables, table.values, strata)
    return table


# ----------------------------------------------------------------------------- the design


def apportion(sizes: np.ndarray, totals: Sequence[int]) -> np.ndarray:
    """Share each code's total among blocks in proportion to their sizes.

    Parameters
    ----------
    sizes : numpy.ndarray
        ``(S,)`` units per block.
    totals : sequence of int
        Units of each non-control code (arm or wave), in code order.

    Returns
    -------
    numpy.ndarray
        ``(S, K)`` units of each code (column 0 the control, the rest of the block) per block.
        Each code's total is met exactly (largest remainders; ties to the larger block, then
        the earlier block), without giving a block more units than it has.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n = int(sizes.sum())
    out = np.zeros((sizes.size, len(totals) + 1), dtype=np.int64)
    free = sizes.copy()
    for k, total in enumerate(totals, start=1):  # a few codes
        quota = total * sizes / max(n, 1)
        base = np.minimum(np.floor(quota).astype(np.int64), free)
        left = int(total - base.sum())
        frac = quota - np.floor(quota)
        # largest remainder first; then the larger block; then the earlier block
        order = np.lexsort((np.arange(sizes.size), -sizes, -frac))
        room = free - base
        give = np.zeros_like(base)
        for s in order:  # one more unit per block while units are left (at most S steps)
            if left <= 0:
                break
            if room[s] > 0:
                give[s] += 1
                left -= 1
        for s in order:  # blocks that could not take their share: fill the room left
            if left <= 0:
                break
            add = min(int(room[s] - give[s]), left)
            give[s] += add
            left -= add
        out[:, k] = base + give
        free -= out[:, k]
    out[:, 0] = free
    return out


def match_pairs(values: np.ndarray) -> np.ndarray:
    """Pair units greedily on standardised values: the closest remaining two, repeatedly.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n, p)`` complete values (``n`` even), each column standardised by its standard
        deviation before distances are taken (Euclidean).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` pair index of each unit, pairs numbered in the order they were formed.
        Ties go to the lower unit index, so the result depends only on the values.
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[0]
    sd = x.std(axis=0, ddof=1) if n > 1 else np.ones(x.shape[1])
    z = x / np.where(sd > 0, sd, 1.0)
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=-1))
    d[np.arange(n), np.arange(n)] = np.inf
    pair = np.full(n, -1, dtype=np.int64)
    for k in range(n // 2):  # one pair per step; each step one vectorised argmin
        flat = int(np.argmin(d))
        i, j = divmod(flat, n)
        pair[[i, j]] = k
        d[[i, j], :] = np.inf
        d[:, [i, j]] = np.inf
    return pair


@dataclass(frozen=True, eq=False)
class Allocation:
    """One randomised allocation and the design it was drawn from.

    Attributes
    ----------
    units : tuple of str
        Eligible unit labels, sorted.
    codes : numpy.ndarray
        ``(n,)`` code of each unit: 0 control (stepped: in no wave), ``k`` the ``k``-th arm or
        wave (``groups[k]``).
    groups : tuple of str
        Name of each code.
    scheme : str
        ``complete``, ``stratified``, ``pairs``, ``rerandomise`` or ``stepped``.
    seed : int
        Seed of the draw.
    stratum : numpy.ndarray
        ``(n,)`` block of each unit (0 for complete randomisation; the stratum or the pair).
    stratum_labels : tuple of str
        Name of each block.
    counts : numpy.ndarray
        ``(S, K)`` units of each code per block (fixed by the design).
    starts : tuple of (str or None)
        First treated period of each code (``None`` for code 0).
    balance_on : tuple of str
        Variables of the re-randomisation criterion (empty for other schemes).
    balance_values : numpy.ndarray
        ``(n, len(balance_on))`` their pre-period means.
    max_std_diff : float or None
        Re-randomisation's acceptance threshold.
    max_draws : int
        Candidate draws allowed per accepted allocation.
    draws_tried : int
        Candidates drawn before this allocation was accepted (1 without re-randomisation).
    """

    units: tuple[str, ...]
    codes: np.ndarray
    groups: tuple[str, ...]
    scheme: str
    seed: int
    stratum: np.ndarray
    stratum_labels: tuple[str, ...]
    counts: np.ndarray
    starts: tuple[str | None, ...]
    balance_on: tuple[str, ...] = ()
    balance_values: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    max_std_diff: float | None = None
    max_draws: int = 1
    draws_tried: int = 1

    def __post_init__(self) -> None:
        for name in ("codes", "stratum", "counts", "balance_values"):
            arr = np.array(getattr(self, name), copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    # ------------------------------------------------------------------ reading
    @property
    def n_units(self) -> int:
        """Number of allocated units."""
        return len(self.units)

    @property
    def n_groups(self) -> int:
        """Number of codes (arms or waves, with code 0)."""
        return len(self.groups)

    @property
    def stepped(self) -> bool:
        """Whether the codes are waves of a roll-out."""
        return self.scheme == "stepped"

    @property
    def has_blocks(self) -> bool:
        """Whether units were randomised within strata or pairs."""
        return len(self.stratum_labels) > 1

    def index_of(self, labels: Sequence[str]) -> np.ndarray:
        """Position of each label among :attr:`units` (``-1`` if not allocated)."""
        units = np.asarray(self.units, dtype=str)
        lab = np.asarray(list(labels), dtype=str)
        if units.size == 0:
            return np.full(lab.size, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(units, lab), units.size - 1)
        return np.where(units[pos] == lab, pos, -1).astype(np.int64)

    def codes_of(self, labels: Sequence[str]) -> np.ndarray:
        """Code of each labelled unit (``-1`` for a unit that was not allocated)."""
        idx = self.index_of(labels)
        return np.where(idx >= 0, self.codes[np.maximum(idx, 0)], -1).astype(np.int64)

    def group_of(self, label: str) -> str:
        """Arm or wave name of one unit."""
        (i,) = self.index_of([label])
        if i < 0:
            raise KeyError(label)
        return self.groups[int(self.codes[i])]

    # ------------------------------------------------------------------ record
    def canonical(self) -> dict[str, object]:
        """Plain-JSON form hashed by :attr:`sha256` (keys sorted when serialised)."""
        return {
            "scheme": self.scheme,
            "seed": int(self.seed),
            "groups": [
                {"code": k, "name": g, "start": s}
                for k, (g, s) in enumerate(zip(self.groups, self.starts, strict=True))
            ],
            "units": [
                {"unit": u, "code": int(c), "stratum": self.stratum_labels[int(b)]}
                for u, c, b in zip(self.units, self.codes, self.stratum, strict=True)
            ],
        }

    def canonical_json(self) -> str:
        """Canonical JSON text: sorted keys, no whitespace, UTF-8."""
        return json.dumps(
            self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )

    @property
    def sha256(self) -> str:
        """SHA-256 of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def table(self) -> pd.DataFrame:
        """One row per unit: unit, code, group (arm or wave), start, stratum."""
        return pd.DataFrame(
            {
                "unit": list(self.units),
                "code": self.codes.astype(np.int64),
                "group": [self.groups[int(c)] for c in self.codes],
                "start": [self.starts[int(c)] for c in self.codes],
                "stratum": [self.stratum_labels[int(b)] for b in self.stratum],
            }
        )

    def with_codes(self, codes: np.ndarray) -> Allocation:
        """The same design with other codes (one re-draw)."""
        fields = {name: getattr(self, name) for name in Allocation.__dataclass_fields__}
        fields["codes"] = np.asarray(codes, dtype=np.int64)
        return Allocation(**fields)


# ----------------------------------------------------------------------------- drawing


def _template(counts: np.ndarray) -> np.ndarray:
    """Codes of the sorted slots: per block, codes 1..K-1 (their counts), then control."""
    k = counts.shape[1]
    order = np.r_[np.arange(1, k), 0]
    reps = counts[:, order].reshape(-1)
    codes = np.tile(order, counts.shape[0])
    return np.repeat(codes, reps).astype(np.int64)


def _draw_blocks(
    stratum: np.ndarray, template: np.ndarray, replications: int, rng: np.random.Generator
) -> np.ndarray:
    """``(R, n)`` codes: within each block, units in the order of their keys take the block's
    slots (``template`` over units sorted by block)."""
    n = stratum.size
    keys = rng.random((replications, n))
    composite = stratum[None, :].astype(np.float64) + keys
    # Only the runs of equal codes in the sorted slots matter, so a partition at the run
    # boundaries gives the same codes as a full sort, in linear time when the runs are few.
    runs = np.flatnonzero(np.diff(template) != 0) + 1
    if runs.size == 0:
        return np.broadcast_to(template[:1], (replications, n)).astype(np.int64)
    if runs.size <= max(1, n // 8):
        # the order statistics at the run boundaries; each unit's run is how many it reaches
        thr = np.partition(composite, runs, axis=1)[:, runs]
        run_of = np.zeros((replications, n), dtype=np.int64)
        for j in range(runs.size):  # a few boundaries, each one comparison of the whole matrix
            run_of += composite >= thr[:, j : j + 1]
        codes: np.ndarray = template[np.r_[0, runs]][run_of]
        return codes
    order = np.argsort(composite, axis=1, kind="stable")
    out = np.empty((replications, n), dtype=np.int64)
    np.put_along_axis(out, order, np.broadcast_to(template, (replications, n)), axis=1)
    return out


def balance(
    codes: np.ndarray,
    values: np.ndarray,
    n_groups: int | None = None,
    *,
    against: Literal["control", "rest"] = "control",
) -> np.ndarray:
    """Standardised differences of every code ``k >= 1`` against control (or the rest).

    Parameters
    ----------
    codes : numpy.ndarray
        ``(n,)`` or ``(R, n)`` allocation codes.
    values : numpy.ndarray
        ``(n, p)`` unit values (NaN skipped, in the means and the standard deviation).
    n_groups : int, optional
        Number of codes (default: largest code + 1).
    against : {"control", "rest"}
        Compare each code with code 0, or with every unit not in it (waves of a roll-out).

    Returns
    -------
    numpy.ndarray
        ``(K-1, p)`` or ``(R, K-1, p)``: (mean of code ``k`` - mean of the comparison) / SD of
        the variable over all units (``ddof=1``); NaN where a group has no value.
    """
    c = np.asarray(codes)
    single = c.ndim == 1
    c2 = c[None, :] if single else c
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    k = int(n_groups if n_groups is not None else c2.max() + 1)
    ok = np.isfinite(x)
    x0 = np.where(ok, x, 0.0)
    okf = ok.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.nanstd(np.where(ok, x, np.nan), axis=0, ddof=1) if x.shape[0] > 1 else None
        if sd is None:
            sd = np.full(x.shape[1], np.nan)
        sd = np.where(sd > 0, sd, np.nan)
        # codes 1..K-1 by one product each; code 0 is what the others leave of the totals
        ind = [(c2 == g).astype(np.float64) for g in range(1, k)]
        part_s = np.stack([i @ x0 for i in ind], axis=1)  # (R, K-1, p)
        if ok.all():
            part_c = np.stack([np.repeat(i.sum(axis=1)[:, None], x.shape[1], 1) for i in ind], 1)
        else:
            part_c = np.stack([i @ okf for i in ind], axis=1)
        sums = np.concatenate([x0.sum(axis=0) - part_s.sum(axis=1, keepdims=True), part_s], 1)
        cnt = np.concatenate([okf.sum(axis=0) - part_c.sum(axis=1, keepdims=True), part_c], 1)
        if against == "control":
            mean = sums / cnt
            diff = mean[:, 1:, :] - mean[:, :1, :]
        else:
            tot_s, tot_c = sums.sum(axis=1, keepdims=True), cnt.sum(axis=1, keepdims=True)
            diff = sums[:, 1:] / cnt[:, 1:] - (tot_s - sums[:, 1:]) / (tot_c - cnt[:, 1:])
        out: np.ndarray = diff / sd
    return out[0] if single else out


def _max_abs(std_diff: np.ndarray) -> np.ndarray:
    """Largest absolute standardised difference of each draw (``(R, K-1, p)`` -> ``(R,)``);
    a NaN difference counts as infinitely unbalanced."""
    a = np.abs(std_diff)
    a = np.where(np.isnan(a), np.inf, a)
    out: np.ndarray = a.reshape(a.shape[0], -1).max(axis=1)
    return out


def _accepted_draws(
    stratum: np.ndarray,
    template: np.ndarray,
    n_groups: int,
    values: np.ndarray,
    threshold: float,
    wanted: int,
    limit: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int, float]:
    """The first ``wanted`` candidate draws that meet the criterion (in the order drawn), the
    number of candidates drawn and the best criterion value seen."""
    n = stratum.size
    out: list[np.ndarray] = []
    have, tried, best = 0, 0, np.inf
    step = max(1, _CHUNK_KEYS // max(n, 1))
    while have < wanted and tried < limit:  # chunks of candidates, each one vectorised
        b = min(step, limit - tried, max(64, 2 * (wanted - have) * max(1, tried // max(have, 1))))
        cand = _draw_blocks(stratum, template, b, rng)
        score = _max_abs(balance(cand, values, n_groups))
        ok = score <= threshold
        best = min(best, float(score.min()))
        if ok.any():
            take = np.flatnonzero(ok)[: wanted - have]
            if have + take.size == wanted:
                tried += int(take[-1]) + 1
            else:
                tried += b
            out.append(cand[take])
            have += take.size
        else:
            tried += b
    rows = np.concatenate(out) if out else np.empty((0, n), dtype=np.int64)
    return rows, tried, best


def draw_many(allocation: Allocation, replications: int, rng: np.random.Generator) -> np.ndarray:
    """``(replications, n_units)`` codes drawn exactly as ``allocation``'s scheme drew it.

    Same blocks (strata or pairs) with the same counts per code; for re-randomisation only
    candidates meeting the same criterion are kept (at most ``max_draws`` candidates per kept
    allocation). Vectorised: one argsort of a ``(R, n)`` key matrix (in chunks of candidates for
    re-randomisation).

    Raises
    ------
    DataError
        Re-randomisation found fewer acceptable allocations than asked for within its limit.
    """
    stratum = allocation.stratum.astype(np.int64)
    template = _template(np.asarray(allocation.counts))
    if allocation.max_std_diff is None:
        return _draw_blocks(stratum, template, replications, rng)
    rows, tried, best = _accepted_draws(
        stratum,
        template,
        allocation.n_groups,
        allocation.balance_values,
        allocation.max_std_diff,
        replications,
        replications * allocation.max_draws,
        rng,
    )
    if rows.shape[0] < replications:
        raise DataError(
            f"assignment.balance: only {rows.shape[0]} of {replications} re-drawn allocations "
            f"met max_std_diff {allocation.max_std_diff:g} in {tried:,} draws (best "
            f"{best:.3g}); raise assignment.balance.max_draws or loosen max_std_diff"
        )
    return rows


def _eligible_problem(spec: AssignmentSpec, table: UnitTable, source: str) -> None:
    sizes = spec.arm_sizes(table.n)
    if spec.scheme == "pairs":
        if table.n % 2:
            raise DataError(
                f"{source}: assignment.eligible: scheme pairs needs an even number of eligible "
                f"units, found {table.n}; make one more unit eligible or one fewer"
            )
        if table.n < 2:
            raise DataError(f"{source}: assignment.eligible: pairs need at least 2 units")
        return
    need = sum(sizes) + (0 if spec.scheme == "stepped" else 1)
    if need > table.n:
        what = (
            f"the waves hold {sum(sizes)} units"
            if spec.scheme == "stepped"
            else f"{len(sizes)} treated arm(s) of {', '.join(map(str, sizes))} unit(s) and a "
            "control arm need at least " + str(need) + " units"
        )
        key = "assignment.waves" if spec.scheme == "stepped" else "assignment.treated"
        raise DataError(
            f"{source}: {key}: {what}, but only {table.n} unit(s) are eligible; treat fewer "
            "units, use fewer arms, or make more units eligible"
        )


def draw(
    spec: AssignmentSpec,
    table: UnitTable,
    *,
    seed: int | None = None,
    starts: Sequence[str | None] | None = None,
    source: str = "assignment",
) -> Allocation:
    """Draw the pilot's allocation from its ``assignment`` and the eligible units' table.

    Parameters
    ----------
    spec : AssignmentSpec
        The pilot file's ``assignment``.
    table : UnitTable
        The eligible units (:func:`unit_table`), with the pre-period values the scheme uses
        (``pairs_on``, ``balance.on``) and, when ``strata`` names columns, their strata.
    seed : int, optional
        Overrides ``spec.seed``.
    starts : sequence, optional
        Start period of each code (default from the spec: ``None``, ``start`` per arm, or each
        wave's start).
    source : str
        Named in error messages (the pilot file or data file).

    Raises
    ------
    DataError
        A stratum with one unit, more units to treat than eligible, an odd number of units to
        pair, a unit without the pre-period values the scheme needs, or a balance criterion no
        allocation met within ``max_draws`` (saying how many were tried).
    """
    seed = spec.seed if seed is None else int(seed)
    order = np.argsort(np.asarray(table.labels, dtype=str), kind="stable")
    labels = tuple(np.asarray(table.labels, dtype=object)[order].tolist())
    values = table.values[order] if table.values.size else table.values
    strata_col = table.strata[order] if table.strata is not None else None
    n = len(labels)
    _eligible_problem(spec, table, source)

    # blocks
    if spec.scheme == "pairs":
        assert spec.pairs_on is not None
        x = _values_of(
            spec.pairs_on, table.variables, values, labels, "assignment.pairs_on", source
        )
        pair = match_pairs(x)
        stratum = pair
        block_labels = tuple(f"pair {k + 1}" for k in range(n // 2))
    elif isinstance(spec.strata, dict):
        where = {u: s for s, members in spec.strata.items() for u in members}
        outside = [u for u in labels if u not in where]
        if outside:
            raise DataError(
                f"{source}: assignment.strata: {len(outside)} eligible unit(s) are in no "
                f"stratum: {', '.join(outside[:6])}; add them to a stratum or make them "
                "ineligible"
            )
        names = sorted(set(where[u] for u in labels))
        stratum = np.searchsorted(np.asarray(names, dtype=str), [where[u] for u in labels])
        block_labels = tuple(names)
    elif spec.strata:
        if strata_col is None:
            raise DataError(f"{source}: assignment.strata: the unit table has no strata")
        names_arr, stratum = np.unique(strata_col.astype(str), return_inverse=True)
        block_labels = tuple(names_arr.tolist())
    else:
        stratum = np.zeros(n, dtype=np.int64)
        block_labels = ("all",)
    stratum = np.asarray(stratum, dtype=np.int64)
    sizes = np.bincount(stratum, minlength=len(block_labels))
    single = np.flatnonzero(sizes == 1)
    if single.size and spec.scheme != "pairs":
        lone = [labels[int(np.flatnonzero(stratum == s)[0])] for s in single[:5]]
        raise DataError(
            f"{source}: assignment.strata: {single.size} stratum/strata hold one unit only "
            f"({', '.join(f'{block_labels[s]} ({u})' for s, u in zip(single[:5], lone, strict=True))}); "
            "a unit alone in its stratum cannot be compared within it: merge it with a "
            "neighbouring stratum"
        )
    counts = apportion(sizes, spec.arm_sizes(n))

    groups = spec.groups
    if starts is None:
        if spec.scheme == "stepped":
            starts = (None, *[w.start for w in spec.waves or []])
        else:
            starts = (None, *[spec.start] * (len(groups) - 1))
    template = _template(counts)
    rng = generator(seed)
    balance_on: tuple[str, ...] = ()
    bal_values = np.empty((n, 0))
    threshold: float | None = None
    max_draws = 1
    tried = 1
    if spec.balance is not None:
        on = spec.balance.on or [v for v in table.variables]
        bal_values = _values_of(
            on, table.variables, values, labels, "assignment.balance.on", source
        )
        balance_on = tuple(on)
        threshold = spec.balance.max_std_diff
        max_draws = spec.balance.max_draws
        rows, tried, best = _accepted_draws(
            stratum, template, len(groups), bal_values, threshold, 1, max_draws, rng
        )
        if rows.shape[0] == 0:
            raise DataError(
                f"{source}: assignment.balance: none of the {tried:,} allocations drawn had "
                f"every standardised difference within {threshold:g} (the best reached "
                f"{best:.3g}); loosen max_std_diff, raise max_draws, or balance on fewer "
                "variables"
            )
        codes = rows[0]
    else:
        codes = _draw_blocks(stratum, template, 1, rng)[0]
    return Allocation(
        units=labels,
        codes=codes,
        groups=groups,
        scheme=spec.scheme,
        seed=seed,
        stratum=stratum,
        stratum_labels=block_labels,
        counts=counts,
        starts=tuple(starts),
        balance_on=balance_on,
        balance_values=bal_values,
        max_std_diff=threshold,
        max_draws=max_draws,
        draws_tried=tried,
    )


def _values_of(
    names: Sequence[str],
    variables: Sequence[str],
    values: np.ndarray,
    labels: Sequence[str],
    key: str,
    source: str,
) -> np.ndarray:
    """Complete values of the named variables, or a DataError naming what is missing."""
    absent = [v for v in names if v not in variables]
    if absent:
        raise DataError(
            f"{source}: {key}: variable(s) {', '.join(absent)} are not in the unit table "
            f"(available: {', '.join(variables) or 'none'}); name columns of the data"
        )
    idx = [list(variables).index(v) for v in names]
    x = values[:, idx]
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = np.nonzero(bad)
        raise DataError(
            f"{source}: {key}: {int(bad.any(axis=1).sum())} eligible unit(s) have no "
            f"pre-period value of '{names[int(c[0])]}' (e.g. {labels[int(r[0])]}); give them "
            "values before the start, make them ineligible, or use other variables"
        )
    out: np.ndarray = x
    return out
