"""Treatment that switches off (or on and off): end dates and 0/1 indicator columns.

The absorbing path of :mod:`pilotlab.data.load` is untouched: only when the pilot file gives an
end (``treatment.end``, an adoption entry ``{start, end}``) or a 0/1 ``treatment.indicator``
column does this module build the unit x period status matrix, and the panel carries it
(:attr:`pilotlab.data.panel.Panel.treatment`) only when some unit's treatment actually stops.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pilotlab.data.checks import Problem, zero_one_cells
from pilotlab.data.periods import PeriodIndex
from pilotlab.spec.models import AdoptionSpell, TreatmentSpec

__all__ = ["absorbing", "end_positions", "indicator_status", "spell_status", "start_text"]


def start_text(value: str | AdoptionSpell) -> str:
    """The start period written for an adoption entry (a period, or ``{start, end}``)."""
    return value.start if isinstance(value, AdoptionSpell) else value


def end_positions(
    tr: TreatmentSpec,
    units: np.ndarray,
    start: np.ndarray,
    periods: PeriodIndex,
    time_column: str,
    problems: list[Problem],
) -> np.ndarray | None:
    """Position of each unit's last treated period (``n`` = still treated at the end of the
    data), or ``None`` when the file gives no end. An end that is not a period of the data's
    format, or is before the unit's start, is a problem naming its key."""
    ends: dict[int, tuple[str, str]] = {}
    if tr.form == "common" and tr.end is not None:
        for u in np.flatnonzero(start >= 0).tolist():
            ends[u] = (tr.end, "treatment.end")
    elif tr.form == "adoption" and tr.adoption is not None:
        index = pd.Index(units)
        for uid, spell in tr.adoption.items():
            if isinstance(spell, AdoptionSpell) and spell.end is not None:
                u = int(index.get_indexer([uid])[0])
                if u >= 0:
                    ends[u] = (spell.end, f"treatment.adoption.{uid}.end")
    if not ends:
        return None
    n = len(periods.keys)
    out = np.full(len(units), n, dtype=np.int64)
    codes = list(ends)
    texts: list[object] = [ends[u][0] for u in codes]
    k, bad = periods.keys_of(texts)
    pos = np.searchsorted(periods.keys, k, side="right") - 1  # last period at or before the end
    for i, u in enumerate(codes):  # one per treated unit named with an end
        text, key = ends[u]
        if bad[i]:
            problems.append(
                Problem(
                    key,
                    f"{key}: '{text}' is not a period in the data's format ({periods.format}, "
                    f"e.g. '{periods.example}'); write it as the data's '{time_column}' column does",
                    time_column,
                )
            )
        elif start[u] >= 0 and pos[i] < start[u]:
            problems.append(
                Problem(
                    key,
                    f"{key}: {text} is before the start ({periods.labels[start[u]]}); the end is "
                    "the last treated period, so it must be at or after the start: correct one "
                    "of them",
                    time_column,
                )
            )
        else:
            out[u] = pos[i]
    return out


def spell_status(start: np.ndarray, end: np.ndarray, n_periods: int) -> np.ndarray:
    """0/1 status (units x periods, int8): treated from ``start`` to ``end`` inclusive."""
    t = np.arange(n_periods)[None, :]
    on = (start[:, None] >= 0) & (t >= start[:, None]) & (t <= end[:, None])
    return on.astype(np.int8)


def indicator_status(
    raw: pd.Series,
    column: str,
    ucode: np.ndarray,
    tidx: np.ndarray,
    n_units: int,
    n_periods: int,
    units: Sequence[str],
    problems: list[Problem],
) -> tuple[np.ndarray, np.ndarray]:
    """``treatment.indicator`` as a status matrix and each unit's first treated period
    (``-1`` if never treated). Cells must be 0 or 1, and equal within a unit and period."""
    cells = zero_one_cells(raw)
    one = cells.one
    status = np.zeros((n_units, n_periods), dtype=np.int8)
    if cells.n_bad:
        problems.append(
            Problem(
                "treatment.indicator",
                f"treatment.indicator: column '{column}' has {cells.n_bad} cell(s) that are "
                f"not 0 or 1 (e.g. {cells.example}); mark each row 1 when the unit is "
                "treated in that period and 0 when it is not",
                column,
            )
        )
        return status, np.full(n_units, -1, dtype=np.int64)
    ok = ucode >= 0
    cell = ucode[ok] * n_periods + tidx[ok]
    ones = np.bincount(cell, weights=one[ok], minlength=n_units * n_periods)
    rows = np.bincount(cell, minlength=n_units * n_periods)
    mixed = (ones > 0) & (ones < rows)
    if mixed.any():
        u = int(np.flatnonzero(mixed)[0] // n_periods)
        problems.append(
            Problem(
                "treatment.indicator",
                f"treatment.indicator: column '{column}' is both 0 and 1 within unit "
                f"'{units[u]}' in one period; a unit is treated or not in each period",
                column,
            )
        )
    status = (ones > 0).reshape(n_units, n_periods).astype(np.int8)
    any_on = status.any(axis=1)
    first = np.where(any_on, status.argmax(axis=1), -1).astype(np.int64)
    return status, first


def absorbing(status: np.ndarray) -> bool:
    """Whether no unit's treatment ever stops (once on, on until the end)."""
    return not bool((np.diff(status.astype(np.int8), axis=1) < 0).any())
