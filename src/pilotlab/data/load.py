"""Read a pilot's data file, check it against the pilot file and build the :class:`Panel`.

Every problem found is collected and raised together in one :class:`DataError`, each line naming
the file, the key or column, what was found and how to fix it.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pyarrow import ArrowException

from pilotlab.data.dates import registration_date_notes
from pilotlab.data.panel import CLUSTER, NEVER, TIME, UNIT, WEIGHT, MissingSummary, Panel, UnitFlow
from pilotlab.data.periods import PeriodIndex, parse_periods
from pilotlab.exceptions import DataError, warn
from pilotlab.spec.models import DataSpec, PilotSpec

__all__ = ["file_sha256", "load_panel", "panel_from_frame", "read_table"]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def frame_sha256(df: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's content (for data passed in memory)."""
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    cols = ",".join(map(str, df.columns)).encode()
    return hashlib.sha256(cols + hashed.tobytes()).hexdigest()


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
        whole = np.isfinite(v) & (np.mod(v, 1) == 0) & (np.abs(v) < 2.0**53)
        out = values.astype("string")
        out[whole] = pd.Series(v[whole].astype(np.int64), index=values.index[whole]).astype(
            "string"
        )
        return out.str.strip()
    return values.astype("string").str.strip()


#: Largest magnitude accepted in a numeric column: squares and cross-products of larger values
#: overflow double precision.
MAX_ABS_VALUE = 1e100
_ROW = "__row"


def _where(df: pd.DataFrame, rows: np.ndarray, unit: str, time: str, limit: int = 3) -> str:
    """The first few rows as 'row N: unit U, period P' (file row numbers, header is row 1)."""
    file_row = df[_ROW].to_numpy() if _ROW in df.columns else np.arange(len(df))
    shown = [
        f"row {file_row[r] + 2}: unit {_cell(df[unit].iloc[r])}, period {_cell(df[time].iloc[r])}"
        for r in rows[:limit]
    ]
    return "; ".join(shown) + (f"; and {len(rows) - limit} more" if len(rows) > limit else "")


def _as_float(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column as float64 (NaN where missing) and a mask of cells that are not numbers.

    Blank cells are missing values, not errors. Integers too large for double precision become
    the largest double, so that the range check reports them.
    """
    if pd.api.types.is_bool_dtype(raw):
        return raw.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(raw), dtype=bool)
    is_num = pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_complex_dtype(raw)
    conv = raw if is_num else pd.to_numeric(raw, errors="coerce")
    try:
        values = conv.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError, OverflowError):
        values = np.array([_float_or_nan(x) for x in conv], dtype=float)  # rare: odd objects
    bad = np.isnan(values) & raw.notna().to_numpy(dtype=bool)
    if bad.any():  # blank cells are missing values, not errors
        bad &= (raw.astype("string").str.strip() != "").to_numpy(dtype=bool, na_value=False)
    return values, bad


def _float_or_nan(x: object) -> float:
    try:
        return float(x)  # type: ignore[arg-type]
    except OverflowError:
        return float(np.copysign(np.finfo(float).max, 1 if x > 0 else -1))  # type: ignore[operator]
    except (TypeError, ValueError):
        return float("nan")


def _cell(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def _list(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(map(str, items[:limit]))
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def panel_from_frame(
    df: pd.DataFrame,
    spec: PilotSpec,
    *,
    source: str = "data",
    fingerprint: str | None = None,
    history: bool = False,
) -> Panel:
    """Check a long DataFrame against the pilot file and build the analysis :class:`Panel`.

    With ``history=True`` (power planning) the data may hold only the history before a planned
    start: a start after the last period, or no treatment at all (``treatment.form ==
    "planned"``), leaves every unit untreated instead of being an error, and the units the pilot
    plans to treat are kept in the panel.

    Raises
    ------
    DataError
        Listing every problem found (missing columns, malformed periods, duplicate rows, treated
        units absent from the data, a start outside the data's periods...).
    """
    d = spec.data
    tr = spec.treatment
    problems: list[str] = []
    cols = [str(c) for c in df.columns]
    df = df.copy()
    df.columns = cols
    df[_ROW] = np.arange(len(df))  # row of the file, for messages (survives row filtering)

    def need(column: str | None, key: str) -> None:
        if column is not None and column not in cols:
            problems.append(
                f"{key}: column '{column}' is not in {source} (columns: {_list(cols, 12)})."
                f"{_suggest(column, cols)} Fix the pilot file or rename the column."
            )

    need(d.unit, "data.unit")
    need(d.time, "data.time")
    need(d.cluster, "data.cluster")
    need(d.weight, "data.weight")
    need(tr.column, "treatment.column")
    for i, o in enumerate(spec.outcomes):
        need(o.column, f"outcomes[{i}].column")
    for i, c in enumerate(spec.design.covariates):
        need(c, f"design.covariates[{i}]")
    for i, c in enumerate(spec.design.synthetic.predictors):
        need(c, f"design.synthetic.predictors[{i}]")
    if problems:
        _raise(source, problems)

    # ---- numeric columns
    numeric = [(o.column, f"outcomes[{i}].column") for i, o in enumerate(spec.outcomes)]
    numeric += [(c, f"design.covariates[{i}]") for i, c in enumerate(spec.design.covariates)]
    if d.weight:
        numeric.append((d.weight, "data.weight"))
    for column, key in numeric:
        raw = df[column]
        values, bad = _as_float(raw)
        if bad.any():
            rows = np.flatnonzero(bad)
            examples = ", ".join(f"row {r + 2}: {_cell(repr(raw.iloc[r]))}" for r in rows[:3])
            problems.append(
                f"{key}: column '{column}' must be numeric but has {len(rows)} non-numeric "
                f"value(s) ({examples}); fix them or leave the cells empty for missing"
            )
        with np.errstate(invalid="ignore"):
            inf = np.isinf(values)
            huge = np.isfinite(values) & (np.abs(values) > MAX_ABS_VALUE)
        if inf.any():
            problems.append(
                f"{key}: column '{column}' has {int(inf.sum())} infinite value(s) "
                f"({_where(df, np.flatnonzero(inf), d.unit, d.time)}); replace them with "
                "numbers, or leave the cells empty for missing"
            )
        if huge.any():
            problems.append(
                f"{key}: column '{column}' has {int(huge.sum())} value(s) beyond "
                f"±{MAX_ABS_VALUE:.0e} ({_where(df, np.flatnonzero(huge), d.unit, d.time)}), too "
                "large to compute with; check them, or rescale the column (e.g. to thousands)"
            )
        df[column] = values

    # ---- units and periods
    raw_codes, raw_units = pd.factorize(df[d.unit])  # convert each distinct id once
    text = _unit_text(pd.Series(raw_units)).to_numpy(dtype=object)
    text_ok = pd.notna(text) & (text != "")
    all_units_arr, text_code = np.unique(text[text_ok].astype(str), return_inverse=True)
    code_of_raw = np.full(len(raw_units), -1, dtype=np.int64)
    code_of_raw[text_ok] = text_code
    ucode = np.full(len(raw_codes), -1, dtype=np.int64)
    ucode[raw_codes >= 0] = code_of_raw[raw_codes[raw_codes >= 0]]
    if (ucode < 0).any():
        rows = np.flatnonzero(ucode < 0)
        problems.append(
            f"data.unit: column '{d.unit}' is empty in {len(rows)} row(s) "
            f"(first: row {rows[0] + 2}); every row needs a unit id"
        )
    periods, tidx, bad_period = parse_periods(df[d.time])
    if bad_period.any():
        rows = np.flatnonzero(bad_period)
        examples = ", ".join(f"row {r + 2}: {_cell(repr(df[d.time].iloc[r]))}" for r in rows[:3])
        long_numbers = df[d.time].iloc[rows].astype("string").str.strip()
        if long_numbers.str.fullmatch(r"[-+]?\d{16,}(\.0*)?").fillna(False).any():
            examples += " (numbers of more than 15 digits are not periods)"
        problems.append(
            f"data.time: column '{d.time}' has {len(rows)} malformed period(s) "
            f"({examples}); periods must all be one of: integers (2024), quarters "
            f"(2024Q2), months (2024-04) or ISO dates (2024-04-01); most values here "
            f"are {periods.format}s like '{periods.example}'"
        )
    if problems:
        _raise(source, problems)

    df["__ucode"] = ucode
    df[TIME] = tidx
    all_units = all_units_arr.tolist()
    unit_set = set(all_units)

    if d.layout == "panel":
        dup = pd.Series(ucode * len(periods.keys) + tidx).duplicated(keep=False).to_numpy()
        if dup.any():
            r = int(np.flatnonzero(dup)[0])
            problems.append(
                f"data: {int(dup.sum())} rows share a unit and period (e.g. unit "
                f"'{all_units[ucode[r]]}' in {df[d.time].iloc[r]}); a panel has one row per "
                "unit and period: remove duplicates, or set data.layout: "
                "repeated_cross_section if rows are people or firms within areas"
            )

    # ---- treatment assignment -> first treated period per unit label
    first: dict[str, int] = {}

    def period_positions(values: list[str], keys: list[str]) -> list[int | None]:
        """Period index of each user-written start (None, with a problem, where unusable)."""
        k, bad = periods.keys_of(list(values))
        pos = np.searchsorted(periods.keys, k)
        out: list[int | None] = []
        for value, key, b, q in zip(values, keys, bad, pos, strict=True):
            out.append(None)
            if history and not b and q >= len(periods.keys):
                continue  # a planned start after the history: untreated in the history
            if b:
                problems.append(
                    f"{key}: '{value}' is not a period in the data's format "
                    f"({periods.format}, e.g. '{periods.example}'); write it as the "
                    f"data's '{d.time}' column does"
                )
            elif q >= len(periods.keys):
                problems.append(
                    f"{key}: {value} is after the last period in the data "
                    f"({periods.labels[-1]}); there is no post-period to evaluate yet"
                )
            elif q == 0:
                problems.append(
                    f"{key}: {value} is at or before the first period in the data "
                    f"({periods.labels[0]}); there is no pre-period to compare against. "
                    "Add earlier data or correct the start"
                )
            else:
                out[-1] = int(q)
        return out

    def check_units(ids: list[str], key: str) -> list[str]:
        missing = [u for u in ids if u not in unit_set]
        if missing:
            hint = _suggest(missing[0], all_units)
            problems.append(
                f"{key}: {len(missing)} unit(s) not found in column '{d.unit}': "
                f"{_list(missing)}.{hint} Check the ids (they must match the data exactly)"
            )
        return [u for u in ids if u in unit_set]

    planned: list[str] = []  # units named as treated (kept in a history panel)
    if tr.form == "planned":
        if not history:
            problems.append(
                "treatment: the pilot file names no treated units yet (a planned pilot); "
                "estimating effects needs 'units' with 'start', 'adoption' or 'column'. "
                "Use `pilotlab power` to plan the pilot from its history"
            )
    elif tr.form == "common":
        assert tr.units is not None and tr.start is not None  # guaranteed by TreatmentSpec
        ids = check_units(tr.units, "treatment.units")
        planned = list(ids)
        (pos,) = period_positions([tr.start], ["treatment.start"])
        if pos is not None:
            first.update(dict.fromkeys(ids, pos))
    elif tr.form == "adoption":
        assert tr.adoption is not None
        ids = check_units(list(tr.adoption), "treatment.adoption")
        planned = list(ids)
        starts = period_positions(
            [tr.adoption[u] for u in ids], [f"treatment.adoption.{u}" for u in ids]
        )
        first.update({u: q for u, q in zip(ids, starts, strict=True) if q is not None})
    else:
        assert tr.column is not None
        col = df[tr.column]
        empty = col.isna() | col.astype("string").str.strip().isin(["", "0", "0.0", "inf", "Inf"])
        per_unit = pd.DataFrame({"u": all_units_arr[ucode], "v": col.where(~empty)}).dropna()
        varying = per_unit.groupby("u")["v"].nunique()
        if (varying > 1).any():
            bad_units = varying.index[varying > 1].tolist()
            problems.append(
                f"treatment.column: column '{tr.column}' takes several values within "
                f"unit(s) {_list(bad_units)}; it must hold each unit's first treated period "
                "on every row (empty or 0 for never treated)"
            )
        else:
            per_unit = per_unit.drop_duplicates("u")
            ids = per_unit["u"].tolist()
            starts = period_positions(
                [_period_text(v) for v in per_unit["v"]],
                [f"treatment.column ('{tr.column}', unit {u})" for u in ids],
            )
            first.update({u: q for u, q in zip(ids, starts, strict=True) if q is not None})

    excluded = check_units(list(tr.exclude), "treatment.exclude")
    eligible = check_units(list(tr.eligible), "treatment.eligible") if tr.eligible else all_units
    comparison_list = None
    if isinstance(tr.comparison, list):
        comparison_list = check_units(list(tr.comparison), "treatment.comparison")
        clash = sorted(set(comparison_list) & set(first))
        if clash:
            problems.append(
                f"treatment.comparison: unit(s) {_list(clash)} are listed as comparison "
                "units but are also treated; remove them from one of the lists"
            )
    if problems:
        _raise(source, problems)

    # ---- which units are analysed
    keep = set(eligible) - set(excluded)
    if comparison_list is not None:
        keep &= set(comparison_list) | set(first) | (set(planned) if history else set())
    treated_excluded = sorted(set(first) - keep)
    for u in treated_excluded:
        first.pop(u)
    if not first and not history:
        problems.append(
            "treatment: no treated unit remains after 'exclude'/'eligible'; at least one "
            "treated unit must be analysed"
        )
    n_comparison = len(keep - set(first))
    staggered = len(set(first.values())) > 1
    if n_comparison == 0 and not history and not (staggered and tr.comparison == "not_yet_treated"):
        problems.append(
            "treatment.comparison: no comparison units remain: every analysed unit is "
            "treated. Add never-treated units to the data, or for a staggered roll-out "
            "use comparison: not_yet_treated"
        )
    if problems:
        _raise(source, problems)

    kept = np.isin(all_units_arr, list(keep))
    new_code = np.cumsum(kept) - 1
    df = df.loc[kept[ucode]].reset_index(drop=True)
    units = all_units_arr[kept].tolist()
    df[UNIT] = new_code[df["__ucode"].to_numpy()]
    # Periods are re-indexed over the analysed rows only.
    used = np.unique(df[TIME].to_numpy())
    remap = np.full(len(periods.keys), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    df[TIME] = remap[df[TIME].to_numpy()]
    period_labels = tuple(periods.labels[i] for i in used)
    first_treated = np.full(len(units), NEVER, dtype=np.int64)
    if first:
        treated_units = np.isin(np.asarray(units, dtype=object), list(first))
        start_pos = [first[u] for u in np.asarray(units, dtype=object)[treated_units]]
        # A start period with no analysed rows maps to the next period that has some.
        first_treated[treated_units] = np.searchsorted(used, np.asarray(start_pos, np.int64))
    _check_starts(first_treated, units, period_labels, tr.anticipation, problems)

    cluster_col = d.cluster or d.unit
    if cluster_col == d.unit:
        cl_codes, cl_labels = df[UNIT].to_numpy(), pd.Index(units)
    else:
        cl_codes, cl_labels = pd.factorize(_unit_text(df[cluster_col]), sort=True)
    if (cl_codes < 0).any():
        rows = np.flatnonzero(cl_codes < 0)
        problems.append(
            f"data.cluster: column '{cluster_col}' is empty in {len(rows)} row(s) "
            f"({_where(df, rows, d.unit, d.time)}); every row needs a cluster"
        )
    elif cluster_col != d.unit:
        _check_clusters_nest_units(df[UNIT].to_numpy(), cl_codes, units, cluster_col, problems)
    df[CLUSTER] = cl_codes.astype(np.int64)

    if d.weight:
        w = df[d.weight].to_numpy(float)
        _check_weights(w, df, first_treated[df[UNIT].to_numpy()] != NEVER, d, problems)
        df[WEIGHT] = w
    else:
        df[WEIGHT] = 1.0

    # ---- transforms and missing outcomes
    missing: list[MissingSummary] = []
    for i, o in enumerate(spec.outcomes):
        y = df[o.column].to_numpy(float)
        if o.transform == "log":
            nonpos = np.isfinite(y) & (y <= 0)
            if nonpos.any():
                problems.append(
                    f"outcomes[{i}].transform: log needs positive values but "
                    f"'{o.column}' has {int(nonpos.sum())} value(s) <= 0; use "
                    "transform: asinh, or none"
                )
            else:
                df[o.column] = np.log(y)
        elif o.transform == "asinh":
            df[o.column] = np.arcsinh(y)
        na = np.isnan(df[o.column].to_numpy(float))
        if na.all():
            problems.append(
                f"outcomes[{i}].column: column '{o.column}' has no values in the "
                "analysed units; check the column and the units"
            )
        mu = tuple(units[i] for i in np.unique(df.loc[na, UNIT].to_numpy()))
        mp = tuple(period_labels[j] for j in np.unique(df.loc[na, TIME].to_numpy()))
        missing.append(MissingSummary(o.column, int(na.sum()), len(df), mu, mp))
    if not problems and not history:
        for i, o in enumerate(spec.outcomes):
            _check_estimable(df, i, o.column, spec, first_treated, units, period_labels, problems)
    if problems:
        _raise(source, problems)
    for m in missing:
        if m.n_missing:
            warn("missing-outcome", m.sentence(), stacklevel=2)

    keep_cols = [UNIT, TIME, CLUSTER, WEIGHT]
    extra = [o.column for o in spec.outcomes] + list(spec.design.covariates)
    extra += [c for c in spec.design.synthetic.predictors if c not in extra]
    frame = df[keep_cols + list(dict.fromkeys(extra))].copy()
    frame = frame.sort_values([UNIT, TIME], kind="stable").reset_index(drop=True)

    in_treated = set(first)
    flow = UnitFlow(
        in_data=len(all_units),
        eligible=len(eligible),
        treated=len(in_treated),
        comparison=len(units) - len(in_treated),
        excluded=tuple(sorted(set(excluded) | (set(eligible) - keep - set(excluded)))),
        excluded_reason="listed in treatment.exclude" if excluded else "",
        analysed=len(units),
    )
    panel = Panel(
        frame=frame,
        unit_labels=tuple(units),
        period_labels=period_labels,
        cluster_labels=tuple(str(c) for c in cl_labels),
        first_treated=first_treated,
        outcomes=tuple(o.column for o in spec.outcomes),
        covariates=tuple(spec.design.covariates),
        layout=d.layout,
        anticipation=tr.anticipation,
        comparison="not_yet_treated" if tr.comparison == "not_yet_treated" else "never_treated",
        weighted=d.weight is not None,
        fingerprint=fingerprint or frame_sha256(frame),
        unit_flow=flow,
        missing=tuple(missing),
    )
    if d.layout == "panel" and not panel.is_balanced:
        counts = np.bincount(panel.unit, minlength=panel.n_units)
        short = int((counts < panel.n_periods).sum())
        warn(
            "unbalanced-panel",
            f"The panel is unbalanced: {short} of {panel.n_units} units are not observed "
            f"in all {panel.n_periods} periods.",
            stacklevel=2,
        )
    _check_gaps(periods)
    if not history:
        for note in registration_date_notes(spec, panel.period_labels, first_treated_label(panel)):
            warn("registration-date", note, stacklevel=2)
    return panel


def _check_starts(
    first_treated: np.ndarray,
    units: list[str],
    period_labels: tuple[str, ...],
    anticipation: int,
    problems: list[str],
) -> None:
    """Every treated unit has a period to compare against before its start (less anticipation)
    and an analysed period at or after it."""
    treated = first_treated != NEVER
    if not treated.any():
        return
    g = first_treated[treated]
    labels = np.asarray(units, dtype=object)[treated]
    late = g >= len(period_labels)
    if late.any():
        problems.append(
            f"treatment: the analysed units have no rows at or after the start of unit(s) "
            f"{_list(labels[late].tolist())}; there is nothing to evaluate yet"
        )
    short = ~late & (g - anticipation < 1)
    if short.any():
        first = int(g[short].min())
        if anticipation:
            problems.append(
                f"treatment.anticipation: {anticipation} period(s) of anticipation leave no "
                f"period before the start {period_labels[first]} of unit(s) "
                f"{_list(labels[short].tolist())} (the data have {first} period(s) before it); "
                f"set anticipation to at most {max(first - 1, 0)}, or add earlier data"
            )
        else:
            problems.append(
                f"treatment: unit(s) {_list(labels[short].tolist())} start in the first analysed "
                f"period ({period_labels[first]}); there is no pre-period to compare against. "
                "Add earlier data or correct the start"
            )


def _check_clusters_nest_units(
    ucode: np.ndarray, cl_codes: np.ndarray, units: list[str], column: str, problems: list[str]
) -> None:
    """Treatment is assigned to units, so a cluster must hold whole units."""
    pairs = np.unique(np.stack([ucode, cl_codes]), axis=1)
    per_unit = np.bincount(pairs[0], minlength=len(units))
    split = np.flatnonzero(per_unit > 1)
    if split.size:
        problems.append(
            f"data.cluster: column '{column}' takes several values within unit(s) "
            f"{_list([units[u] for u in split])}; clusters must contain whole units (e.g. the "
            "region of each area): give each unit one cluster, or leave data.cluster out"
        )


def _check_weights(
    w: np.ndarray, df: pd.DataFrame, treated_row: np.ndarray, d: DataSpec, problems: list[str]
) -> None:
    key, col = "data.weight", d.weight
    nan = np.isnan(w)
    if nan.any():
        problems.append(
            f"{key}: column '{col}' is empty in {int(nan.sum())} row(s) "
            f"({_where(df, np.flatnonzero(nan), d.unit, d.time)}); every row needs a weight"
        )
    with np.errstate(invalid="ignore"):
        neg = w < 0
    if neg.any():
        problems.append(
            f"{key}: column '{col}' has {int(neg.sum())} negative value(s) "
            f"({_where(df, np.flatnonzero(neg), d.unit, d.time)}); weights must be >= 0"
        )
    if nan.any() or neg.any() or not np.isfinite(w).all():
        return
    for rows, who in ((treated_row, "treated"), (~treated_row, "comparison")):
        if rows.any() and not (w[rows] > 0).any():
            problems.append(
                f"{key}: column '{col}' is zero for every row of the {who} units; "
                f"weights must be positive for some {who} units (a unit with zero weight is "
                "left out of the estimate)"
            )


def _check_estimable(
    df: pd.DataFrame,
    i: int,
    column: str,
    spec: PilotSpec,
    first_treated: np.ndarray,
    units: list[str],
    period_labels: tuple[str, ...],
    problems: list[str],
) -> None:
    """The rows an estimator will use for outcome ``column`` can estimate an effect.

    The rows used are those where the outcome and every covariate are observed (and the
    weight is positive): the treated units need some of them after the start and each treated
    unit some before it; the never-treated units (when they are the comparison) some after it.
    """
    covariates = list(spec.design.covariates)
    used = df[[column, *covariates]].notna().all(axis=1).to_numpy() & (df[WEIGHT].to_numpy() > 0)
    ucode = df[UNIT].to_numpy()
    cohort = first_treated[ucode]
    treated_row = cohort != NEVER
    start = np.where(treated_row, cohort - spec.treatment.anticipation, NEVER)
    t = df[TIME].to_numpy()
    post = t >= start
    key = f"outcomes[{i}].column"
    why = (
        f" (or a covariate, {', '.join(covariates)}, or the weight)"
        if covariates
        else (" (or the weight is zero)" if spec.data.weight else "")
    )
    treated_units = np.flatnonzero(first_treated != NEVER)
    labels = np.asarray(units, dtype=object)
    if not (used & treated_row & post).any():
        problems.append(
            f"{key}: '{column}'{why} is missing in every period after the start for all "
            f"treated units ({_list(labels[treated_units].tolist())}); there is nothing to "
            "estimate: check the column, or the start"
        )
    has_pre = np.bincount(ucode[used & treated_row & ~post], minlength=len(units)) > 0
    no_pre = treated_units[~has_pre[treated_units]]
    if no_pre.size == treated_units.size:
        problems.append(
            f"{key}: '{column}'{why} is missing in every period before the start for all "
            f"treated units ({_list(labels[treated_units].tolist())}); there is nothing to "
            "compare against: add the earlier data, or correct the start"
        )
    elif no_pre.size:
        warn(
            "no-pre-period-outcome",
            f"Treated unit(s) {_list(labels[no_pre].tolist())} have no value of '{column}' "
            "before their start; estimators with unit effects learn nothing about them.",
            stacklevel=3,
        )
    never = ~treated_row
    if never.any() and spec.treatment.comparison != "not_yet_treated":
        earliest = int(first_treated[treated_units].min()) - spec.treatment.anticipation
        if not (used & never & (t >= earliest)).any():
            problems.append(
                f"{key}: '{column}'{why} is missing in every period from "
                f"{period_labels[max(earliest, 0)]} on for all comparison units; the "
                "comparison units need values after the start"
            )


def first_treated_label(panel: Panel) -> str | None:
    """Label of the first period in which any unit is treated (``None`` if none is)."""
    if not panel.is_treated_unit.any():
        return None
    return str(panel.period_labels[int(panel.cohorts.min())])


def _period_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _check_gaps(periods: PeriodIndex) -> None:
    if periods.has_gaps():
        warn(
            "period-gaps",
            f"Some {periods.format}s between {periods.labels[0]} and {periods.labels[-1]} "
            "have no data at all; event times count the periods that are present.",
            stacklevel=3,
        )


def _raise(source: str, problems: list[str]) -> None:
    n = len(problems)
    raise DataError(
        f"{source}: {n} problem{'s' if n > 1 else ''} with the data:\n"
        + "\n".join(f"  - {p}" for p in problems)
    )


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
