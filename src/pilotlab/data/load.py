"""Read a pilot's data file, check it against the pilot file and build the :class:`Panel`.

The checks themselves are in :mod:`pilotlab.data.checks`; this module reads the file, converts
the columns, resolves the treatment and assembles the panel, running the checks in their stages.
Every problem a stage finds is raised together in one :class:`DataError`, each line naming the
file, the key or column, what was found and how to fix it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyarrow import ArrowException

from pilotlab.data.allocation import Allocation, draw, unit_table
from pilotlab.data.checks import (
    MAX_ABS_VALUE,
    Problem,
    RowRefs,
    check_balanced,
    check_clusters,
    check_columns_present,
    check_comparison_not_treated,
    check_comparison_remain,
    check_duplicates,
    check_estimable,
    check_log_positive,
    check_numeric,
    check_outcome_has_values,
    check_period_gaps,
    check_periods,
    check_planned,
    check_start_periods,
    check_starts,
    check_treated_remain,
    check_treatment_column,
    check_unit_ids,
    check_units_known,
    check_weights,
    numeric_columns,
    raise_problems,
)
from pilotlab.data.dates import registration_date_notes
from pilotlab.data.factorize import factorize
from pilotlab.data.groups import group_codes
from pilotlab.data.microdata import read_microdata
from pilotlab.data.panel import (
    CLUSTER,
    NEVER,
    TIME,
    UNIT,
    WEIGHT,
    MissingSummary,
    Panel,
    UnitFlow,
    frame_sha256,
)
from pilotlab.data.periods import PeriodIndex, parse_periods
from pilotlab.data.switching import (
    absorbing,
    end_positions,
    indicator_status,
    spell_status,
    start_text,
)
from pilotlab.exceptions import DataError, warn
from pilotlab.spec.models import PilotSpec

__all__ = [
    "MAX_ABS_VALUE",
    "file_sha256",
    "first_treated_label",
    "frame_sha256",
    "load_panel",
    "panel_from_frame",
    "read_table",
]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: Text pandas reads as a missing value by default (its documented list); kept for every column
#: except the id columns, where only an empty cell is missing.
_MISSING_MARKERS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip


def _read_csv(
    path: Path, text_columns: Sequence[str], exact_columns: Sequence[str]
) -> pd.DataFrame:
    """Read a CSV with id columns as text: only an empty cell is a missing id there, so a unit
    called ``NA`` (Namibia) or ``NULL`` stays an id; other columns keep pandas' missing markers."""
    ids = set(text_columns) | set(exact_columns)
    if not ids:
        return pd.read_csv(path, low_memory=False)
    header = pd.read_csv(path, nrows=0).columns
    na = {c: [""] if c in ids else list(_MISSING_MARKERS) for c in header}
    return pd.read_csv(
        path,
        low_memory=False,
        dtype=dict.fromkeys(text_columns, str),
        keep_default_na=False,
        na_values=na,
    )


def read_table(
    path: Path,
    key: str = "data.path",
    text_columns: Sequence[str] = (),
    exact_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a CSV or Parquet file; unreadable, empty or unsupported files raise :class:`DataError`.

    ``text_columns`` (unit and cluster ids) are read as text, so that ``001`` stays ``001`` and
    distinct codes such as ``01`` and ``1`` stay distinct; whole numbers in a Parquet file's id
    column become their decimal text. In a CSV, only an empty cell of a ``text_columns`` or
    ``exact_columns`` column (the period column) is missing: ``NA`` or ``NULL`` there is a value.
    """
    if not path.exists():
        raise DataError(
            f"{key}: data file '{path}' does not exist; check the path (it is relative "
            "to the pilot file)"
        )
    if path.is_dir():
        raise DataError(f"{key}: '{path}' is a folder; give the path of a .csv or .parquet file")
    suffix = path.suffix.lower()
    try:
        if suffix in {".csv", ".txt"}:
            df = _read_csv(path, text_columns, exact_columns)
        elif suffix in {".parquet", ".pq"}:
            df = pd.read_parquet(path)
            for c in text_columns:
                if c in df.columns and pd.api.types.is_integer_dtype(df[c]):
                    df[c] = df[c].astype("string")
        else:
            raise DataError(
                f"{key}: '{path.name}' has extension '{suffix or '(none)'}'; "
                "allowed: .csv or .parquet; convert the file or fix the path"
            )
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{key}: data file '{path}' is empty; export the data again with a header "
            "row and one row per unit and period"
        ) from None
    except DataError:
        raise
    except (
        OSError,
        ValueError,
        TypeError,
        OverflowError,
        UnicodeDecodeError,
        pd.errors.ParserError,
        ArrowException,
    ) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"{key}: data file '{path}' cannot be read as {suffix[1:]} ({first}); "
            "check it opens in a spreadsheet and is saved as UTF-8 CSV or Parquet"
        ) from None
    if df.empty:
        raise DataError(
            f"{key}: data file '{path}' has a header but no rows; it needs one row per "
            "unit and period"
        )
    return df


def _unit_text(values: pd.Series) -> pd.Series:
    """Unit ids as text: ids stored as numbers (``1001``, or ``1001.0`` in a float column of a
    DataFrame or Parquet file) become their decimal text, so they match the ids of the pilot file.
    Text is kept as written (never by dropping leading zeros), only stripped of spaces."""
    if pd.api.types.is_float_dtype(values):
        v = values.to_numpy()
        with np.errstate(invalid="ignore"):  # inf is an id like any other
            whole = np.isfinite(v) & (np.mod(v, 1) == 0) & (np.abs(v) < 2.0**53)
        out = values.astype("string")
        out[whole] = pd.Series(v[whole].astype(np.int64), index=values.index[whole]).astype(
            "string"
        )
        return out.str.strip()
    return values.astype("string").str.strip()


def _as_float(raw: pd.Series) -> np.ndarray:
    """A column as float64, NaN where it is missing or not a number (:func:`check_numeric`
    reports the cells that are not numbers).

    Integers too large for double precision become the largest double, so that the range check
    reports them.
    """
    if pd.api.types.is_bool_dtype(raw):
        return raw.to_numpy(dtype=float, na_value=np.nan)
    is_num = pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_complex_dtype(raw)
    conv = raw if is_num else pd.to_numeric(raw, errors="coerce")
    try:
        return conv.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError, OverflowError):
        return np.array([_float_or_nan(x) for x in conv], dtype=float)  # rare: odd objects


def _float_or_nan(x: object) -> float:
    try:
        return float(x)  # type: ignore[arg-type]
    except OverflowError:
        return float(np.copysign(np.finfo(float).max, 1 if x > 0 else -1))  # type: ignore[operator]
    except (TypeError, ValueError):
        return float("nan")


def _unit_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct unit ids as text and each row's code into them (``-1`` if empty)."""
    raw_codes, raw_units = factorize(values)  # convert each distinct id once
    text = _unit_text(pd.Series(raw_units)).to_numpy(dtype=object)
    text_ok = pd.notna(text) & (text != "")
    labels, text_code = np.unique(text[text_ok].astype(str), return_inverse=True)
    code_of_raw = np.full(len(raw_units), -1, dtype=np.int64)
    code_of_raw[text_ok] = text_code
    return _recode(raw_codes, code_of_raw), labels


def _recode(codes: np.ndarray, new_of_old: np.ndarray) -> np.ndarray:
    """``new_of_old[codes]``, ``-1`` where ``codes`` is (a missing value)."""
    if codes.size and int(codes.min()) >= 0:
        out: np.ndarray = new_of_old[codes]
        return out
    out = np.full(len(codes), -1, dtype=np.int64)
    seen = codes >= 0
    out[seen] = new_of_old[codes[seen]]
    return out


_ROW = "__row"  # a column name the loader once added to the data (not a user column)


@dataclass(frozen=True)
class _Assignment:
    """Who the pilot file treats, over the sorted unit ids of the data (masks and positions)."""

    start: np.ndarray  # period position of each unit's start; -1 if not treated (yet)
    planned: np.ndarray  # named as treated (kept in a history panel even with a later start)
    excluded: np.ndarray  # listed in treatment.exclude
    eligible: np.ndarray  # listed in treatment.eligible (every unit if there is no list)
    comparison: np.ndarray | None  # listed in treatment.comparison, if it is a list
    allocation: Allocation | None = None  # drawn from assignment, for a randomised pilot
    status: np.ndarray | None = None  # units x periods 0/1 when treatment may switch off

    @property
    def treated(self) -> np.ndarray:
        return self.start >= 0


def _start_positions(
    values: Sequence[str],
    keys: Sequence[str],
    periods: PeriodIndex,
    time_column: str,
    history: bool,
    problems: list[Problem],
) -> np.ndarray:
    """Period position of each user-written start, ``-1`` where it is unusable (with a problem)
    or, for ``history``, planned after the data."""
    codes, distinct = pd.factorize(pd.Series(list(values), dtype=object))  # each distinct once
    k, bad = periods.keys_of(list(distinct))
    malformed, pos = bad[codes], np.searchsorted(periods.keys, k)[codes]
    problems += check_start_periods(values, keys, malformed, pos, periods, time_column, history)
    return np.where(~malformed & (pos > 0) & (pos < len(periods.keys)), pos, -1)


def _column_starts(
    col: pd.Series, ucode: np.ndarray, units: np.ndarray, name: str, problems: list[Problem]
) -> tuple[np.ndarray | None, list[str]]:
    """Each unit's start as written in ``treatment.column``: the units with one (in the order
    they first appear) and the text of their starts; ``None`` after a :func:`check_treatment_column`
    problem. Empty cells, ``0`` and ``inf`` mean never treated. Each distinct value of the column
    is looked at once, and the rows only through its code."""
    vcode, distinct = factorize(col)
    empty = pd.Series(distinct).astype("string").str.strip().isin(["", "0", "0.0", "inf", "Inf"])
    written = ~empty.to_numpy(dtype=bool)
    if vcode.size and int(vcode.min()) >= 0:  # no empty cell: one look-up per row
        real = np.flatnonzero(written[vcode])  # the rows with a start written
    else:
        real = np.flatnonzero(vcode >= 0)
        real = real[written[vcode[real]]]
    u_real, v_real = ucode[real], vcode[real]
    first_row = np.full(len(units), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_row, u_real, real)  # each unit's first such row
    has = np.flatnonzero(first_row < np.iinfo(np.int64).max)
    first_value = np.full(len(units), -1, dtype=np.int64)
    first_value[has] = vcode[first_row[has]]
    varies = v_real != first_value[u_real]
    if varies.any():  # the number of distinct starts of each unit, to name those with several
        pairs = np.unique(u_real * max(len(distinct), 1) + v_real)
        per_unit = np.bincount(pairs // max(len(distinct), 1), minlength=len(units))
        column_problems = check_treatment_column(pd.Series(per_unit[has], index=units[has]), name)
        problems += column_problems
        if column_problems:
            return None, []
    found = has[np.argsort(first_row[has], kind="stable")]  # in the order units first appear
    value = first_value[found]
    texts = np.array([_period_text(v) for v in distinct], dtype=object)
    return found.astype(np.int64), texts[value].tolist()


def _assign_treatment(
    df: pd.DataFrame,
    spec: PilotSpec,
    units: np.ndarray,
    ucode: np.ndarray,
    periods: PeriodIndex,
    history: bool,
    problems: list[Problem],
    source: str = "data",
    period_code: np.ndarray | None = None,
) -> _Assignment:
    """Resolve the pilot file's treatment against the data's units and periods, collecting
    the problems of :func:`check_planned` to :func:`check_comparison_not_treated`
    (``period_code``: each row's period index, which a randomised allocation and a 0/1
    treatment indicator read)."""
    tr, d = spec.treatment, spec.data
    index = pd.Index(units)
    known = units.tolist()

    def mask(ids: Sequence[str], key: str) -> tuple[np.ndarray, np.ndarray]:
        """The listed ids found in the data (as codes, in the order listed) and their mask."""
        problems.extend(check_units_known(ids, known, key, d.unit))
        found = index.get_indexer(list(ids))
        found = found[found >= 0]
        listed = np.zeros(len(units), dtype=bool)
        listed[found] = True
        return found, listed

    if spec.assignment is not None:
        assert period_code is not None
        return _assign_randomised(
            df, spec, units, ucode, periods, history, problems, mask, source, period_code
        )

    start = np.full(len(units), -1, dtype=np.int64)
    planned = np.zeros(len(units), dtype=bool)
    problems += check_planned(tr, history)
    if tr.form == "common":
        assert tr.units is not None and tr.start is not None  # guaranteed by TreatmentSpec
        found, planned = mask(tr.units, "treatment.units")
        (pos,) = _start_positions(
            [tr.start], ["treatment.start"], periods, d.time, history, problems
        )
        if pos >= 0:
            start[found] = pos
    elif tr.form == "adoption":
        assert tr.adoption is not None
        found, planned = mask(list(tr.adoption), "treatment.adoption")
        ids = units[found].tolist()
        start[found] = _start_positions(
            [start_text(tr.adoption[u]) for u in ids],
            [f"treatment.adoption.{u}" for u in ids],
            periods,
            d.time,
            history,
            problems,
        )
    elif tr.form == "column":
        assert tr.column is not None
        starters, texts = _column_starts(df[tr.column], ucode, units, tr.column, problems)
        if starters is not None:
            keys = f"treatment.column ('{tr.column}', unit " + pd.Series(units[starters]) + ")"
            start[starters] = _start_positions(
                texts, keys.tolist(), periods, d.time, history, problems
            )

    status = None
    if tr.form == "indicator":
        assert tr.indicator is not None and period_code is not None
        status, start = indicator_status(
            df[tr.indicator], tr.indicator, ucode, period_code, len(units),
            len(periods.keys), known, problems,
        )  # fmt: skip
        planned = start >= 0
    else:
        ends = end_positions(tr, units, start, periods, d.time, problems)
        if ends is not None:
            status = spell_status(start, ends, len(periods.keys))
    if status is not None and absorbing(status):
        status = None
    _, excluded = mask(list(tr.exclude), "treatment.exclude")
    if tr.eligible:
        _, eligible = mask(list(tr.eligible), "treatment.eligible")
    else:
        eligible = np.ones(len(units), dtype=bool)
    comparison = None
    if isinstance(tr.comparison, list):
        _, comparison = mask(list(tr.comparison), "treatment.comparison")
        problems += check_comparison_not_treated(comparison, start >= 0, known)
    return _Assignment(start, planned, excluded, eligible, comparison, status=status)


def _take(values: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """``values`` at ``rows`` (all of them, as they are, when ``rows`` is ``None``)."""
    return values if rows is None else values[rows]


def _text_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes of ids as text (``-1`` where missing) and the sorted distinct texts: each distinct
    raw value is converted once, then the rows take their value's code."""
    raw_codes, raw_values = factorize(values)
    codes, labels = pd.factorize(_unit_text(pd.Series(raw_values)), sort=True)
    return _recode(raw_codes, np.asarray(codes, dtype=np.int64)), labels


def _assign_randomised(
    df: pd.DataFrame,
    spec: PilotSpec,
    units: np.ndarray,
    ucode: np.ndarray,
    periods: PeriodIndex,
    history: bool,
    problems: list[Problem],
    mask: Callable[[Sequence[str], str], tuple[np.ndarray, np.ndarray]],
    source: str,
    period_code: np.ndarray,
) -> _Assignment:
    """The treatment of a randomised pilot: the allocation drawn from ``assignment`` over the
    eligible units and their pre-period data (before the first start), then each allocated
    unit's start (its arm's start, or its wave's)."""
    a = spec.assignment
    assert a is not None
    d = spec.data
    n = len(units)
    none = np.full(n, -1, dtype=np.int64)
    nothing = np.zeros(n, dtype=bool)
    cols = set(map(str, df.columns))
    wanted: list[tuple[str, str]] = [
        (f"assignment.strata[{i}]", c) for i, c in enumerate(a.stratum_columns)
    ]
    wanted += [(f"assignment.pairs_on[{i}]", c) for i, c in enumerate(a.pairs_on or [])]
    if a.balance is not None and a.balance.on:
        wanted += [(f"assignment.balance.on[{i}]", c) for i, c in enumerate(a.balance.on)]
    if not isinstance(a.eligible, str | list):
        wanted.append(("assignment.eligible.column", a.eligible.column))
    for key, column in wanted:
        if column not in cols:
            problems.append(
                Problem(
                    key,
                    f"{key}: column '{column}' is not in the data (columns: "
                    f"{', '.join(sorted(cols - {_ROW, '__ucode', TIME})[:12])}); fix the pilot "
                    "file or add the column",
                    column,
                )
            )
    if isinstance(a.strata, dict):  # strata listed by unit: every unit must be in the data
        for name, members in a.strata.items():
            mask(members, f"assignment.strata.{name}")
    # eligible units
    if a.eligible == "all":
        eligible = np.ones(n, dtype=bool)
    elif isinstance(a.eligible, list):
        _, eligible = mask(a.eligible, "assignment.eligible")
    elif a.eligible.column in cols:
        col = a.eligible.column
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
        bad = ~np.isin(v, (0.0, 1.0))
        per = pd.DataFrame({"u": ucode, "v": v}).groupby("u")["v"]
        varying = per.nunique().to_numpy() > 1
        if bad.any() or varying.any():
            problems.append(
                Problem(
                    "assignment.eligible.column",
                    f"assignment.eligible.column: column '{col}' must be 1 (eligible) or 0 "
                    "for every row and the same in every period of a unit; found "
                    + (f"{int(bad.sum())} other value(s)" if bad.any() else "")
                    + (" and " if bad.any() and varying.any() else "")
                    + (f"{int(varying.sum())} unit(s) that change" if varying.any() else ""),
                    col,
                )
            )
            eligible = nothing
        else:
            eligible = np.zeros(n, dtype=bool)
            eligible[ucode[v == 1.0]] = True
    else:
        eligible = nothing
    # start periods (one per arm, or per wave)
    if a.scheme == "stepped":
        assert a.waves is not None
        texts = [w.start for w in a.waves]
        keys = [f"assignment.waves[{i}].start" for i in range(len(texts))]
    else:
        assert a.start is not None
        texts, keys = [a.start], ["assignment.start"]
    pos = _start_positions(texts, keys, periods, d.time, history, problems)
    known = pos[pos >= 0]
    if a.scheme == "stepped" and np.any(np.diff(known) <= 0):
        problems.append(
            Problem(
                "assignment.waves",
                "assignment.waves: list the waves in the order they start (each wave starts "
                "after the one before it)",
            )
        )
    if problems:
        return _Assignment(none, nothing, nothing, eligible, None)
    if not eligible.any():
        problems.append(
            Problem("assignment.eligible", "assignment.eligible: no unit of the data is eligible")
        )
        return _Assignment(none, nothing, nothing, eligible, None)
    first = int(known.min()) if known.size else len(periods.keys)
    variables = [*a.pairs_on] if a.pairs_on else []
    if a.balance is not None:
        variables += a.balance.on or [*spec.design.covariates, *[o.column for o in spec.outcomes]]
    variables += [o.column for o in spec.outcomes] + list(spec.design.covariates)
    variables = list(dict.fromkeys(variables))
    frame = df[list(dict.fromkeys([*variables, *a.stratum_columns]))].copy()
    frame["__unit_label"] = units[ucode]
    table = unit_table(
        frame,
        "__unit_label",
        pre=period_code < first,
        variables=variables,
        strata=a.stratum_columns,
        units=units[eligible].tolist(),
        source=source,
    )
    if a.balance is not None and not a.balance.on:
        default_on = [o.column for o in spec.outcomes] + list(spec.design.covariates)
        a = a.model_copy(
            update={"balance": a.balance.model_copy(update={"on": list(dict.fromkeys(default_on))})}
        )
    start_text = [None, *texts] if a.scheme == "stepped" else [None, *texts * (len(a.arms) - 1)]
    allocation = draw(a, table, starts=start_text, source=source)
    codes = allocation.codes_of(units.tolist())
    if a.scheme == "stepped":
        code_start = np.r_[-1, pos]
    else:
        code_start = np.r_[-1, np.repeat(pos, len(a.arms) - 1)]
    start = np.where(codes > 0, code_start[np.maximum(codes, 0)], -1).astype(np.int64)
    planned = codes > 0
    _, excluded = mask(list(spec.treatment.exclude), "treatment.exclude")
    return _Assignment(start, planned, excluded, eligible, None, allocation)


def panel_from_frame(
    df: pd.DataFrame,
    spec: PilotSpec,
    *,
    source: str = "data",
    fingerprint: str | None = None,
    history: bool = False,
) -> Panel:
    """Check a long DataFrame against the pilot file and build the analysis :class:`Panel`.

    The checks of :mod:`pilotlab.data.checks` run in the stages listed there; the first stage
    that finds an error raises them all together.

    With ``history=True`` (power planning) the data may hold only the history before a planned
    start: a start after the last period, or no treatment at all (``treatment.form ==
    "planned"``), leaves every unit untreated instead of being an error, and the units the pilot
    plans to treat are kept in the panel.

    The data frame is read column by column and never copied whole: only the columns the pilot
    file names are converted, and the panel's frame is assembled once, in unit and period order.

    Raises
    ------
    DataError
        Listing every problem found (missing columns, malformed periods, duplicate rows, treated
        units absent from the data, a start outside the data's periods...).
    """
    d = spec.data
    tr = spec.treatment
    cols = [str(c) for c in df.columns]
    if list(df.columns) != cols:
        df = df.set_axis(cols, axis=1)  # a new frame over the same columns (copy on write)
    n_rows = len(df)

    # 1. the columns named in the pilot file
    raise_problems(source, check_columns_present(cols, spec, source))

    # 2. numbers, unit ids and periods
    problems: list[Problem] = []
    file_refs = RowRefs(np.arange(n_rows), df[d.unit], df[d.time])
    numbers: dict[str, np.ndarray] = {}  # the numeric columns as float64, over the data's rows
    for key, column in numeric_columns(spec):
        raw = df[column]
        values = _as_float(raw)
        problems += check_numeric(raw, values, key, column, file_refs)
        numbers[column] = values
    ucode, all_units_arr = _unit_codes(df[d.unit])
    problems += check_unit_ids(ucode, d.unit)
    periods, tidx, bad_period = parse_periods(df[d.time])
    problems += check_periods(df[d.time], bad_period, periods, d.time)
    dup_code, dup_labels = ucode, all_units_arr.tolist()
    group_values = None
    if d.group:  # one row per unit, period and eligibility group
        group_values, group_problems = group_codes(df[d.group], d.group)
        problems += group_problems
        dup_code = ucode * 2 + group_values.astype(np.int64)
        dup_labels = [f"{u} with {d.group} {v}" for u in dup_labels for v in (0, 1)]
    raise_problems(source, problems)
    all_units = all_units_arr.tolist()

    # 3. duplicates and the treatment
    problems = check_duplicates(dup_code, tidx, len(periods.keys), dup_labels, df[d.time], d.layout)
    del dup_code
    assigned = _assign_treatment(
        df, spec, all_units_arr, ucode, periods, history, problems, source, period_code=tidx
    )
    raise_problems(source, problems)

    # 4. which units are analysed
    keep = assigned.eligible & ~assigned.excluded
    if assigned.comparison is not None:
        keep &= assigned.comparison | assigned.treated | (assigned.planned if history else False)
    start = np.where(keep, assigned.start, -1)
    treated = start >= 0
    problems = check_treated_remain(int(treated.sum()), history)
    staggered = len(np.unique(start[treated])) > 1
    if assigned.status is None:  # a switching design compares units not (yet) switching
        problems += check_comparison_remain(int((keep & ~treated).sum()), staggered, tr, history)
    raise_problems(source, problems)

    new_code = np.cumsum(keep) - 1
    units = all_units_arr[keep].tolist()
    # The analysed rows, in the data's order (None: every row).
    kept_rows = None if keep.all() else np.flatnonzero(keep[ucode])
    # every unit analysed: the codes stay as they are
    unit_code = ucode if kept_rows is None else new_code[ucode[kept_rows]]
    del ucode
    # Periods are re-indexed over the analysed rows only.
    tidx = _take(tidx, kept_rows)
    present = np.zeros(len(periods.keys), dtype=bool)
    present[tidx] = True
    used = np.flatnonzero(present)
    remap = np.cumsum(present) - 1
    time_code = tidx if present.all() else remap[tidx]  # every period analysed: as they are
    del tidx
    period_labels = tuple(periods.labels[i] for i in used)
    first_treated = np.full(len(units), NEVER, dtype=np.int64)
    start_kept = start[keep]
    # A start period with no analysed rows maps to the next period that has some.
    first_treated[start_kept >= 0] = np.searchsorted(used, start_kept[start_kept >= 0])

    treatment = None
    if assigned.status is not None:
        treatment = assigned.status[keep][:, used]
        treatment = None if absorbing(treatment) else treatment

    def analysed(name: str) -> np.ndarray:
        """A numeric column over the analysed rows."""
        return _take(numbers[name], kept_rows)

    # 5. starts, clusters, weights and outcomes over the analysed rows
    refs = RowRefs(
        np.arange(n_rows) if kept_rows is None else kept_rows,
        df[d.unit],
        df[d.time],
        positions=kept_rows,
    )
    # a switching design may have units treated from the first period (they can switch off)
    checked = (
        first_treated if treatment is None else np.where(first_treated > 0, first_treated, NEVER)
    )
    problems = check_starts(checked, units, period_labels, tr.anticipation)
    cluster_col = d.cluster or d.unit
    if cluster_col == d.unit:
        cl_codes, cluster_labels = unit_code, tuple(units)
    else:
        cl_all, cl_index = _text_codes(df[cluster_col])
        cl_kept = _take(cl_all, kept_rows)
        del cl_all
        cl_used, cl_codes = np.unique(cl_kept, return_inverse=True)
        if cl_used.size and cl_used[0] < 0:  # an empty cell: keep its -1 for the check
            cl_codes = cl_codes - 1
            cl_used = cl_used[1:]
        cluster_labels = tuple(str(c) for c in cl_index[cl_used].tolist())
    problems += check_clusters(
        cl_codes, unit_code, units, cluster_col, refs, is_unit=cluster_col == d.unit
    )
    if d.weight:
        w = analysed(d.weight)
        problems += check_weights(w, first_treated[unit_code] != NEVER, d, refs)
    else:
        w = np.ones(len(unit_code))

    unit_arr = np.asarray(units, dtype=object)
    missing: list[MissingSummary] = []
    outcome_values: dict[str, np.ndarray] = {}
    for i, o in enumerate(spec.outcomes):
        y = outcome_values.get(o.column, analysed(o.column))
        if o.transform == "log":
            log_problems = check_log_positive(y, i, o.column)
            problems += log_problems
            if not log_problems:
                y = np.log(y)
        elif o.transform == "asinh":
            y = np.arcsinh(y)
        outcome_values[o.column] = y
        na = np.isnan(y)
        problems += check_outcome_has_values(na, i, o.column)
        mu = tuple(unit_arr[np.unique(unit_code[na])].tolist())
        mp = tuple(period_labels[j] for j in np.unique(time_code[na]))
        missing.append(MissingSummary(o.column, int(na.sum()), len(unit_code), mu, mp))
    if not problems and not history:
        observed = w > 0
        for c in spec.design.covariates:
            observed &= ~np.isnan(outcome_values.get(c, analysed(c)))
        for i, o in enumerate(spec.outcomes):
            problems += check_estimable(
                observed & ~np.isnan(outcome_values[o.column]),
                unit_code,
                time_code,
                first_treated,
                units,
                period_labels,
                i,
                o.column,
                spec,
            )
    raise_problems(source, problems)
    for m in missing:
        if m.n_missing:
            warn("missing-outcome", m.sentence(), stacklevel=2)

    # The panel's frame, sorted by unit then period (stably), assembled in one pass.
    order = _unit_period_order(unit_code, time_code, len(units), len(period_labels))

    def final(values: np.ndarray, fresh: bool) -> np.ndarray:
        """``values`` (over the analysed rows) in the frame's order, in memory of its own."""
        if order is None:
            return values if fresh else values.copy()
        if isinstance(order, tuple):  # whole blocks of one unit's periods, moved as blocks
            blocks, length = order
            moved: np.ndarray = values.reshape(-1, length)[blocks].reshape(-1)
            return moved
        return values[order]

    rows = None
    if order is not None:
        rows = _order_rows(order)
    if kept_rows is not None:
        rows = kept_rows if rows is None else kept_rows[rows]

    # In unit order the unit codes run 0, 0, ..., 1, 1, ...: written afresh, not gathered; so
    # are the periods of whole blocks (0..T-1 each) and the weights of an unweighted panel.
    if order is None:
        unit_sorted = unit_code
    else:
        unit_sorted = np.repeat(
            np.arange(len(units), dtype=np.int64), np.bincount(unit_code, minlength=len(units))
        )
    if isinstance(order, tuple):
        time_sorted = np.tile(np.arange(order[1], dtype=np.int64), order[0].size)
    else:
        time_sorted = final(time_code, True)
    data: dict[str, object] = {
        UNIT: unit_sorted,
        TIME: time_sorted,
        CLUSTER: unit_sorted.copy()
        if cl_codes is unit_code
        else final(cl_codes.astype(np.int64, copy=False), True),
        WEIGHT: final(w, kept_rows is not None) if d.weight else np.ones(len(unit_code)),
    }
    extra = [o.column for o in spec.outcomes] + list(spec.design.covariates)
    extra += [c for c in spec.design.synthetic.predictors if c not in extra]
    for c in dict.fromkeys(extra):
        if c in outcome_values:
            values = outcome_values[c]
            data[c] = final(values, values is not numbers.get(c))
        elif c in numbers:
            data[c] = final(analysed(c), kept_rows is not None)
        else:  # a predictor read as it is (its own dtype)
            raw = df[c]
            data[c] = (raw.copy() if rows is None else raw.take(rows)).reset_index(drop=True)
    if group_values is not None and d.group is not None:
        data[d.group] = final(_take(group_values, kept_rows), True)
    frame = pd.DataFrame(data, copy=False)

    dropped = assigned.eligible & ~keep & ~assigned.excluded
    flow = UnitFlow(
        in_data=len(all_units),
        eligible=int(assigned.eligible.sum()),
        treated=int(treated.sum()),
        comparison=len(units) - int(treated.sum()),
        excluded=tuple(all_units_arr[assigned.excluded | dropped].tolist()),
        excluded_reason="listed in treatment.exclude" if assigned.excluded.any() else "",
        analysed=len(units),
    )
    panel = Panel(
        frame=frame,
        unit_labels=tuple(units),
        period_labels=period_labels,
        cluster_labels=cluster_labels,
        first_treated=first_treated,
        outcomes=tuple(o.column for o in spec.outcomes),
        covariates=tuple(spec.design.covariates),
        layout=d.layout,
        anticipation=tr.anticipation,
        comparison="not_yet_treated" if tr.comparison == "not_yet_treated" else "never_treated",
        weighted=d.weight is not None,
        fingerprint=fingerprint or "",
        unit_flow=flow,
        missing=tuple(missing),
        allocation=assigned.allocation,
        group=d.group,
        treatment=treatment,
    )
    # A panel without duplicates (checked above) and with N x T rows is balanced.
    notes = (
        check_balanced(panel.unit, panel.n_units, panel.n_periods)
        if d.layout == "panel" and not d.group and panel.nobs != panel.n_units * panel.n_periods
        else []
    )
    raise_problems(source, notes + check_period_gaps(periods, d.time))
    if not history:
        for note in registration_date_notes(spec, panel.period_labels, first_treated_label(panel)):
            warn("registration-date", note, stacklevel=2)
    return panel


_Order = np.ndarray | tuple[np.ndarray, int] | None


def _unit_period_order(unit: np.ndarray, time: np.ndarray, n_units: int, n_periods: int) -> _Order:
    """The stable order of rows by unit then period: ``None`` if they are in it already,
    ``(blocks, T)`` if the rows are whole blocks of ``T`` periods of one unit each (in order)
    that only need moving as blocks, else the order of every row."""
    key = unit * n_periods + time
    if key.size < 2 or bool(np.all(key[1:] >= key[:-1])):
        return None
    if key.size == n_units * n_periods:
        blocks = key.reshape(n_units, n_periods)
        first = blocks[:, 0] // n_periods  # the unit of each block, if it is a unit's block
        if np.array_equal(blocks, (first * n_periods)[:, None] + np.arange(n_periods)):
            return np.argsort(first, kind="stable"), n_periods
    order: np.ndarray = np.argsort(key, kind="stable")
    return order


def _order_rows(order: np.ndarray | tuple[np.ndarray, int]) -> np.ndarray:
    """The row positions an order of :func:`_unit_period_order` takes."""
    if isinstance(order, tuple):
        blocks, length = order
        rows: np.ndarray = (blocks[:, None] * length + np.arange(length)).reshape(-1)
        return rows
    return order


def first_treated_label(panel: Panel) -> str | None:
    """Label of the first period in which any unit is treated (``None`` if none is)."""
    if not panel.is_treated_unit.any():
        return None
    return str(panel.period_labels[int(panel.cohorts.min())])


def _period_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def load_panel(
    spec: PilotSpec,
    data: pd.DataFrame | None = None,
    *,
    history: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Panel:
    """Read the pilot's data file (or use ``data``) and build the checked :class:`Panel`.

    ``history=True`` accepts a planned pilot whose data hold only the history (see
    :func:`panel_from_frame`). ``progress``, if given, is called with the name of each stage
    (reading, checking) as it starts.
    """
    if spec.data.layout == "microdata":  # person rows: aggregated out of core to cells
        return _microdata_panel(spec, data, history, progress)
    if data is not None:
        if progress is not None:
            progress("Checking the data")
        return panel_from_frame(data, spec, source="data (DataFrame)", history=history)
    path = getattr(spec, "data_path", None)
    if path is None:
        raise DataError(
            "data.path: the pilot was not read from a file, so the data path cannot be "
            "resolved; pass data= a DataFrame or load the pilot with load_pilot(path)"
        )
    if progress is not None:
        progress(f"Reading the data ({path.name})")
    df = read_table(
        path,
        text_columns=[c for c in (spec.data.unit, spec.data.cluster) if c],
        exact_columns=[spec.data.time],
    )
    if progress is not None:
        progress("Checking the data")
    return panel_from_frame(
        df, spec, source=str(path), fingerprint=file_sha256(path), history=history
    )


def _microdata_panel(
    spec: PilotSpec,
    data: pd.DataFrame | None,
    history: bool,
    progress: Callable[[str], None] | None,
) -> Panel:
    """Person-level rows read and aggregated by :mod:`pilotlab.data.microdata`, then checked
    as a panel of area x period cells."""
    path = None if data is not None else getattr(spec, "data_path", None)
    if data is None and path is None:
        raise DataError(
            "data.path: the pilot was not read from a file, so the data path cannot be "
            "resolved; pass data= a DataFrame or load the pilot with load_pilot(path)"
        )
    if progress is not None:
        progress(f"Reading the microdata ({'DataFrame' if path is None else path.name})")
    cells = read_microdata(spec, path, data, progress)
    panel = panel_from_frame(
        cells.frame, cells.spec, source=cells.source, fingerprint=cells.fingerprint, history=history
    )
    return dataclasses.replace(
        panel,
        layout="microdata",
        covariates=tuple(spec.design.covariates),
        weighted=True,
        micro=cells.micro,
    )
