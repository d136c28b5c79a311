"""The checks a pilot's data must pass, each a small function that returns the problems it finds.

Every check takes only what it looks at (a column, code arrays, a part of the pilot file) and
returns a list of :class:`Problem`; none raises. Each problem names the pilot-file key (and the
data column) it concerns, what was found and how to fix it. :func:`raise_problems` turns a list
into the one :class:`~pilotlab.exceptions.DataError` a user sees, after emitting the problems that
are only warnings.

:func:`pilotlab.data.load.panel_from_frame` runs the checks in stages, in this order, and stops
after the first stage that finds an error, because a later stage needs what an earlier one
established (the columns exist, ids and periods parse, the units are known):

1. :func:`check_columns_present`: every column the pilot file names is in the data.
2. :func:`check_numeric` (outcomes, covariates, weight, in that order), :func:`check_unit_ids`,
   :func:`check_periods`: the values can be read.
3. :func:`check_duplicates`, then the treatment: :func:`check_planned`, :func:`check_units_known`
   and :func:`check_start_periods` (or :func:`check_treatment_column` and
   :func:`check_start_periods` for ``treatment.column``), :func:`check_units_known` for
   ``treatment.exclude``, ``treatment.eligible`` and ``treatment.comparison``, and
   :func:`check_comparison_not_treated`.
4. :func:`check_treated_remain`, :func:`check_comparison_remain`: after ``exclude``,
   ``eligible`` and a comparison list, there is something to compare.
5. :func:`check_starts`, :func:`check_clusters`, :func:`check_weights`, for each outcome
   :func:`check_log_positive` and :func:`check_outcome_has_values`; when all of those pass (and
   the data are not only a history for power planning), :func:`check_estimable` for each outcome.

After the last stage, :func:`check_balanced` and :func:`check_period_gaps` return warnings only.
All checks are vectorised: they loop over the problems they report, never over rows, units or
periods.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pilotlab.data.panel import NEVER
from pilotlab.data.periods import PeriodIndex
from pilotlab.exceptions import DataError, warn
from pilotlab.spec.models import DataSpec, PilotSpec, TreatmentSpec

__all__ = [
    "MAX_ABS_VALUE",
    "ONE_WORDS",
    "ZERO_WORDS",
    "Problem",
    "RowRefs",
    "check_balanced",
    "check_clusters",
    "check_columns_present",
    "check_comparison_not_treated",
    "check_comparison_remain",
    "check_duplicates",
    "check_estimable",
    "check_log_positive",
    "check_numeric",
    "check_outcome_has_values",
    "check_period_gaps",
    "check_periods",
    "check_planned",
    "check_start_periods",
    "check_starts",
    "check_treated_remain",
    "check_treatment_column",
    "check_unit_ids",
    "check_units_known",
    "check_weights",
    "raise_problems",
    "zero_one_cells",
]

ONE_WORDS: tuple[str, ...] = ("1", "1.0", "true", "yes")
ZERO_WORDS: tuple[str, ...] = ("0", "0.0", "false", "no")


@dataclass(frozen=True)
class ZeroOne:
    """A column read as 0/1 cells: which cells are 1, which are 0, how many are neither and the
    first of those as a message shows it (``"'x' in row 5"``, counting the file's header)."""

    one: np.ndarray
    zero: np.ndarray
    n_bad: int
    example: str


def zero_one_cells(
    raw: pd.Series, one_words: Sequence[str] = ONE_WORDS, zero_words: Sequence[str] = ZERO_WORDS
) -> ZeroOne:
    """The cells of ``raw`` that read as 1 and as 0 (case and surrounding spaces ignored)."""
    text = raw.astype("string").str.strip().str.lower()
    one = text.isin(list(one_words)).fillna(False).to_numpy(bool)
    zero = text.isin(list(zero_words)).fillna(False).to_numpy(bool)
    bad = ~(one | zero)
    example = ""
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        value = raw.iloc[r]
        shown = "an empty cell" if pd.isna(value) else f"'{value}'"
        example = f"{shown} in row {r + 2}"
    return ZeroOne(one, zero, int(bad.sum()), example)


#: Largest magnitude accepted in a numeric column: squares and cross-products of larger values
#: overflow double precision.
MAX_ABS_VALUE = 1e100


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data.

    ``message`` is the whole line shown to the user (it starts with the key); ``key`` is the
    pilot-file key it concerns (``data.unit``, ``outcomes[0].column``, ``treatment``...) and
    ``column`` the data column, if any. ``warning`` is ``None`` for an error that stops loading,
    or the notice code (:data:`pilotlab.exceptions.NOTICE_CODES`) under which the problem is
    reported while loading goes on.
    """

    key: str
    message: str
    column: str | None = None
    warning: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RowRefs:
    """Where rows come from, for messages: file row numbers and the unit and period as written.

    ``file_row[i]`` is the 0-based data row of the file that became row ``i`` (it survives row
    filtering); messages show it as the spreadsheet row (header is row 1). ``positions[i]``, if
    given, is where row ``i`` is in ``unit`` and ``period`` (the columns as read, when the rows
    checked are a subset of them, so that the columns need not be filtered).
    """

    file_row: np.ndarray
    unit: pd.Series
    period: pd.Series
    positions: np.ndarray | None = None

    @classmethod
    def of(cls, df: pd.DataFrame, unit: str, period: str, row_column: str | None = None) -> RowRefs:
        """Row references of ``df`` (rows numbered from ``row_column``, else ``0..n-1``)."""
        rows = (
            df[row_column].to_numpy()
            if row_column is not None and row_column in df.columns
            else np.arange(len(df))
        )
        return cls(rows, df[unit], df[period])

    def describe(self, rows: np.ndarray, limit: int = 3) -> str:
        """The first few ``rows`` as 'row N: unit U, period P'."""
        at = rows[:limit] if self.positions is None else self.positions[rows[:limit]]
        shown = [
            f"row {self.file_row[r] + 2}: unit {_cell(self.unit.iloc[p])}, "
            f"period {_cell(self.period.iloc[p])}"
            for r, p in zip(rows[:limit], at, strict=True)
        ]
        more = f"; and {len(rows) - limit} more" if len(rows) > limit else ""
        return "; ".join(shown) + more


def raise_problems(source: str, problems: Sequence[Problem], stacklevel: int = 2) -> None:
    """Warn the warnings among ``problems``, then raise one :class:`DataError` listing the errors.

    ``stacklevel`` is counted from the caller, as for :func:`warnings.warn`. Nothing is raised
    when no problem is an error.
    """
    errors = [p for p in problems if p.warning is None]
    for p in problems:
        if p.warning is not None:
            warn(p.warning, p.message, stacklevel=stacklevel + 1)
    if errors:
        n = len(errors)
        raise DataError(
            f"{source}: {n} problem{'s' if n > 1 else ''} with the data:\n"
            + "\n".join(f"  - {p.message}" for p in errors)
        )


# ----------------------------------------------------------------------------- columns


def _cell(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def _list(items: Sequence[object], limit: int = 6) -> str:
    shown = ", ".join(map(str, items[:limit]))
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def named_columns(spec: PilotSpec) -> list[tuple[str, str]]:
    """Every data column the pilot file names, as ``(key, column)`` in the file's order."""
    d, design = spec.data, spec.design
    named: list[tuple[str, str | None]] = [("data.unit", d.unit), ("data.time", d.time)]
    named += [("data.cluster", d.cluster), ("data.weight", d.weight), ("data.group", d.group)]
    named.append(("treatment.column", spec.treatment.column))
    named.append(("treatment.indicator", spec.treatment.indicator))
    named += [(f"outcomes[{i}].column", o.column) for i, o in enumerate(spec.outcomes)]
    named += [(f"design.covariates[{i}]", c) for i, c in enumerate(design.covariates)]
    named += [
        (f"design.synthetic.predictors[{i}]", c) for i, c in enumerate(design.synthetic.predictors)
    ]
    return [(key, column) for key, column in named if column is not None]


def numeric_columns(spec: PilotSpec) -> list[tuple[str, str]]:
    """The columns that must hold numbers, as ``(key, column)``: outcomes, covariates, weight."""
    numeric = [(f"outcomes[{i}].column", o.column) for i, o in enumerate(spec.outcomes)]
    numeric += [(f"design.covariates[{i}]", c) for i, c in enumerate(spec.design.covariates)]
    if spec.data.weight:
        numeric.append(("data.weight", spec.data.weight))
    return numeric


def check_columns_present(
    columns: Sequence[str], spec: PilotSpec, source: str = "data"
) -> list[Problem]:
    """Every column named in the pilot file is a column of the data (with a close match named)."""
    cols = [str(c) for c in columns]
    present = set(cols)
    return [
        Problem(
            key,
            f"{key}: column '{column}' is not in {source} (columns: {_list(cols, 12)})."
            f"{_suggest(column, cols)} Fix the pilot file or rename the column.",
            column,
        )
        for key, column in named_columns(spec)
        if column not in present
    ]


def check_numeric(
    raw: pd.Series, values: np.ndarray, key: str, column: str, rows: RowRefs
) -> list[Problem]:
    """A numeric column holds numbers (blank cells are missing, not errors), none infinite or
    too large to compute with.

    ``values`` is ``raw`` as float64 with NaN where it is missing or not a number.
    """
    problems: list[Problem] = []
    bad = np.isnan(values) & raw.notna().to_numpy(dtype=bool)
    if bad.any():  # blank cells are missing values, not errors
        bad &= (raw.astype("string").str.strip() != "").to_numpy(dtype=bool, na_value=False)
    if bad.any():
        where = np.flatnonzero(bad)
        examples = ", ".join(f"row {r + 2}: {_cell(repr(raw.iloc[r]))}" for r in where[:3])
        problems.append(
            Problem(
                key,
                f"{key}: column '{column}' must be numeric but has {len(where)} non-numeric "
                f"value(s) ({examples}); fix them or leave the cells empty for missing",
                column,
            )
        )
    with np.errstate(invalid="ignore"):
        inf = np.isinf(values)
        huge = np.isfinite(values) & (np.abs(values) > MAX_ABS_VALUE)
    if inf.any():
        problems.append(
            Problem(
                key,
                f"{key}: column '{column}' has {int(inf.sum())} infinite value(s) "
                f"({rows.describe(np.flatnonzero(inf))}); replace them with "
                "numbers, or leave the cells empty for missing",
                column,
            )
        )
    if huge.any():
        problems.append(
            Problem(
                key,
                f"{key}: column '{column}' has {int(huge.sum())} value(s) beyond "
                f"±{MAX_ABS_VALUE:.0e} ({rows.describe(np.flatnonzero(huge))}), too "
                "large to compute with; check them, or rescale the column (e.g. to thousands)",
                column,
            )
        )
    return problems


# ----------------------------------------------------------------------------- units, periods


def check_unit_ids(unit_code: np.ndarray, column: str) -> list[Problem]:
    """Every row has a unit id (``unit_code`` is ``-1`` where the id is empty)."""
    empty = np.flatnonzero(unit_code < 0)
    if not empty.size:
        return []
    return [
        Problem(
            "data.unit",
            f"data.unit: column '{column}' is empty in {len(empty)} row(s) "
            f"(first: row {empty[0] + 2}); every row needs a unit id",
            column,
        )
    ]


def check_periods(
    raw: pd.Series, malformed: np.ndarray, periods: PeriodIndex, column: str
) -> list[Problem]:
    """Every period parses in the column's format (``malformed`` marks the rows that do not)."""
    bad = np.flatnonzero(malformed)
    if not bad.size:
        return []
    examples = ", ".join(f"row {r + 2}: {_cell(repr(raw.iloc[r]))}" for r in bad[:3])
    long_numbers = raw.iloc[bad].astype("string").str.strip()
    if long_numbers.str.fullmatch(r"[-+]?\d{16,}(\.0*)?").fillna(False).any():
        examples += " (numbers of more than 15 digits are not periods)"
    return [
        Problem(
            "data.time",
            f"data.time: column '{column}' has {len(bad)} malformed period(s) "
            f"({examples}); periods must all be one of: integers (2024), quarters "
            f"(2024Q2), months (2024-04) or ISO dates (2024-04-01); most values here "
            f"are {periods.format}s like '{periods.example}'",
            column,
        )
    ]


def check_duplicates(
    unit_code: np.ndarray,
    period_code: np.ndarray,
    n_periods: int,
    unit_labels: Sequence[str],
    period_raw: pd.Series,
    layout: str,
) -> list[Problem]:
    """A panel has one row per unit and period (a repeated cross-section may have several)."""
    if layout != "panel":
        return []
    key = unit_code * n_periods + period_code
    if key.size < 2 or bool(np.all(key[1:] > key[:-1])):  # sorted by unit and period: none
        return []
    if key.size and int(key.max()) < 4 * key.size:  # count rows per cell
        counts = np.bincount(key)
        if int(counts.max()) < 2:  # one row per cell: nothing to name
            return []
        dup = counts[key] > 1
    else:
        dup = pd.Series(key).duplicated(keep=False).to_numpy()
    if not dup.any():
        return []
    r = int(np.flatnonzero(dup)[0])
    return [
        Problem(
            "data",
            f"data: {int(dup.sum())} rows share a unit and period (e.g. unit "
            f"'{unit_labels[unit_code[r]]}' in {period_raw.iloc[r]}); a panel has one row per "
            "unit and period: remove duplicates, or set data.layout: "
            "repeated_cross_section if rows are people or firms within areas",
        )
    ]


# ----------------------------------------------------------------------------- treatment


def check_planned(treatment: TreatmentSpec, history: bool) -> list[Problem]:
    """Estimating effects needs treated units: a planned pilot is only data for power planning."""
    if treatment.form != "planned" or history:
        return []
    return [
        Problem(
            "treatment",
            "treatment: the pilot file names no treated units yet (a planned pilot); "
            "estimating effects needs 'units' with 'start', 'adoption' or 'column'. "
            "Use `pilotlab power` to plan the pilot from its history",
        )
    ]


def check_units_known(
    ids: Sequence[str], known: Sequence[str], key: str, unit_column: str
) -> list[Problem]:
    """The unit ids listed under ``key`` are ids of the data's ``unit_column`` (``known``)."""
    known_set = set(known)
    missing = [u for u in ids if u not in known_set]
    if not missing:
        return []
    hint = _suggest(missing[0], list(known))
    return [
        Problem(
            key,
            f"{key}: {len(missing)} unit(s) not found in column '{unit_column}': "
            f"{_list(missing)}.{hint} Check the ids (they must match the data exactly)",
            unit_column,
        )
    ]


def check_start_periods(
    values: Sequence[str],
    keys: Sequence[str],
    malformed: np.ndarray,
    position: np.ndarray,
    periods: PeriodIndex,
    time_column: str,
    history: bool,
) -> list[Problem]:
    """Each start (``values``, written under ``keys``) is a period in the data's format, with a
    period before it and the data reaching it.

    ``malformed`` marks the starts not in the format and ``position`` is the index of the first
    period at or after each start. With ``history`` (power planning), a start after the last
    period is planned, not a problem.
    """
    n = len(periods.keys)
    late = ~malformed & (position >= n)
    early = ~malformed & (position == 0)
    flagged = malformed | early | (late & (not history))
    problems: list[Problem] = []
    for i in np.flatnonzero(flagged):
        value, key = values[int(i)], keys[int(i)]
        if malformed[i]:
            text = (
                f"{key}: '{value}' is not a period in the data's format "
                f"({periods.format}, e.g. '{periods.example}'); write it as the "
                f"data's '{time_column}' column does"
            )
        elif late[i]:
            text = (
                f"{key}: {value} is after the last period in the data "
                f"({periods.labels[-1]}); there is no post-period to evaluate yet"
            )
        else:
            text = (
                f"{key}: {value} is at or before the first period in the data "
                f"({periods.labels[0]}); there is no pre-period to compare against. "
                "Add earlier data or correct the start"
            )
        # a start read from treatment.column is written "treatment.column ('first', unit A1)"
        column_key = key.startswith("treatment.column (")
        problems.append(Problem("treatment.column" if column_key else key, text, time_column))
    return problems


def check_treatment_column(values_per_unit: pd.Series, column: str) -> list[Problem]:
    """``treatment.column`` holds one start per unit (``values_per_unit``: the number of distinct
    non-empty values of each unit, indexed by unit id)."""
    varying = values_per_unit > 1
    if not varying.any():
        return []
    return [
        Problem(
            "treatment.column",
            f"treatment.column: column '{column}' takes several values within "
            f"unit(s) {_list(values_per_unit.index[varying].tolist())}; it must hold each unit's "
            "first treated period on every row (empty or 0 for never treated)",
            column,
        )
    ]


def check_comparison_not_treated(
    comparison: np.ndarray, treated: np.ndarray, units: Sequence[str]
) -> list[Problem]:
    """No unit listed in ``treatment.comparison`` is also treated (``comparison`` and
    ``treated`` are masks over the sorted ``units``)."""
    clash = np.asarray(units, dtype=object)[comparison & treated].tolist()
    if not clash:
        return []
    return [
        Problem(
            "treatment.comparison",
            f"treatment.comparison: unit(s) {_list(sorted(clash))} are listed as comparison "
            "units but are also treated; remove them from one of the lists",
        )
    ]


def check_treated_remain(n_treated: int, history: bool) -> list[Problem]:
    """At least one treated unit is analysed after ``exclude`` and ``eligible``."""
    if n_treated or history:
        return []
    return [
        Problem(
            "treatment",
            "treatment: no treated unit remains after 'exclude'/'eligible'; at least one "
            "treated unit must be analysed",
        )
    ]


def check_comparison_remain(
    n_comparison: int, staggered: bool, treatment: TreatmentSpec, history: bool
) -> list[Problem]:
    """Some analysed unit is a comparison unit, unless a staggered roll-out compares against
    the not yet treated."""
    if n_comparison or history or (staggered and treatment.comparison == "not_yet_treated"):
        return []
    return [
        Problem(
            "treatment.comparison",
            "treatment.comparison: no comparison units remain: every analysed unit is "
            "treated. Add never-treated units to the data, or for a staggered roll-out "
            "use comparison: not_yet_treated",
        )
    ]


def check_starts(
    first_treated: np.ndarray,
    units: Sequence[str],
    period_labels: Sequence[str],
    anticipation: int,
) -> list[Problem]:
    """Every treated unit has a period to compare against before its start (less anticipation)
    and an analysed period at or after it (``first_treated`` over the analysed periods)."""
    treated = first_treated != NEVER
    if not treated.any():
        return []
    problems: list[Problem] = []
    g = first_treated[treated]
    labels = np.asarray(units, dtype=object)[treated]
    late = g >= len(period_labels)
    if late.any():
        problems.append(
            Problem(
                "treatment",
                f"treatment: the analysed units have no rows at or after the start of unit(s) "
                f"{_list(labels[late].tolist())}; there is nothing to evaluate yet",
            )
        )
    short = ~late & (g - anticipation < 1)
    if short.any():
        first = int(g[short].min())
        if anticipation:
            problems.append(
                Problem(
                    "treatment.anticipation",
                    f"treatment.anticipation: {anticipation} period(s) of anticipation leave no "
                    f"period before the start {period_labels[first]} of unit(s) "
                    f"{_list(labels[short].tolist())} (the data have {first} period(s) before "
                    f"it); set anticipation to at most {max(first - 1, 0)}, or add earlier data",
                )
            )
        else:
            problems.append(
                Problem(
                    "treatment",
                    f"treatment: unit(s) {_list(labels[short].tolist())} start in the first "
                    f"analysed period ({period_labels[first]}); there is no pre-period to "
                    "compare against. Add earlier data or correct the start",
                )
            )
    return problems


# ----------------------------------------------------------------------------- clusters, weights


def check_clusters(
    cluster_code: np.ndarray,
    unit_code: np.ndarray,
    units: Sequence[str],
    column: str,
    rows: RowRefs,
    *,
    is_unit: bool = False,
) -> list[Problem]:
    """Every row has a cluster (``cluster_code`` ``-1`` where empty) and each unit lies in one
    cluster: treatment is assigned to units, so a cluster must hold whole units. ``is_unit``
    (clusters are the units themselves) skips the second check."""
    empty = np.flatnonzero(cluster_code < 0)
    if empty.size:
        return [
            Problem(
                "data.cluster",
                f"data.cluster: column '{column}' is empty in {len(empty)} row(s) "
                f"({rows.describe(empty)}); every row needs a cluster",
                column,
            )
        ]
    if is_unit or not len(unit_code):
        return []
    n_clusters = int(cluster_code.max()) + 1
    pairs = np.unique(unit_code.astype(np.int64) * n_clusters + cluster_code)
    per_unit = np.bincount(pairs // n_clusters, minlength=len(units))
    split = np.flatnonzero(per_unit > 1)
    if not split.size:
        return []
    return [
        Problem(
            "data.cluster",
            f"data.cluster: column '{column}' takes several values within unit(s) "
            f"{_list(np.asarray(units, dtype=object)[split].tolist())}; clusters "
            "must contain whole units (e.g. the region of each area): give each unit one "
            "cluster, or leave data.cluster out",
            column,
        )
    ]


def check_weights(
    weights: np.ndarray, treated_row: np.ndarray, data: DataSpec, rows: RowRefs
) -> list[Problem]:
    """Every row has a weight, none negative, and both the treated and the comparison units
    have some positive weight (``treated_row`` marks the rows of treated units)."""
    key, col = "data.weight", data.weight
    problems: list[Problem] = []
    nan = np.isnan(weights)
    if nan.any():
        problems.append(
            Problem(
                key,
                f"{key}: column '{col}' is empty in {int(nan.sum())} row(s) "
                f"({rows.describe(np.flatnonzero(nan))}); every row needs a weight",
                col,
            )
        )
    with np.errstate(invalid="ignore"):
        neg = weights < 0
    if neg.any():
        problems.append(
            Problem(
                key,
                f"{key}: column '{col}' has {int(neg.sum())} negative value(s) "
                f"({rows.describe(np.flatnonzero(neg))}); weights must be >= 0",
                col,
            )
        )
    if nan.any() or neg.any() or not np.isfinite(weights).all():
        return problems
    for group, who in ((treated_row, "treated"), (~treated_row, "comparison")):
        if group.any() and not (weights[group] > 0).any():
            problems.append(
                Problem(
                    key,
                    f"{key}: column '{col}' is zero for every row of the {who} units; "
                    f"weights must be positive for some {who} units (a unit with zero weight is "
                    "left out of the estimate)",
                    col,
                )
            )
    return problems


# ----------------------------------------------------------------------------- outcomes


def check_log_positive(values: np.ndarray, i: int, column: str) -> list[Problem]:
    """An outcome with ``transform: log`` has only positive values (missing ones aside)."""
    nonpos = np.isfinite(values) & (values <= 0)
    if not nonpos.any():
        return []
    return [
        Problem(
            f"outcomes[{i}].transform",
            f"outcomes[{i}].transform: log needs positive values but "
            f"'{column}' has {int(nonpos.sum())} value(s) <= 0; use "
            "transform: asinh, or none",
            column,
        )
    ]


def check_outcome_has_values(missing: np.ndarray, i: int, column: str) -> list[Problem]:
    """An outcome has some values in the analysed rows (``missing`` marks the empty ones)."""
    if not missing.all():
        return []
    return [
        Problem(
            f"outcomes[{i}].column",
            f"outcomes[{i}].column: column '{column}' has no values in the "
            "analysed units; check the column and the units",
            column,
        )
    ]


def check_estimable(
    used: np.ndarray,
    unit_code: np.ndarray,
    period_code: np.ndarray,
    first_treated: np.ndarray,
    units: Sequence[str],
    period_labels: Sequence[str],
    i: int,
    column: str,
    spec: PilotSpec,
) -> list[Problem]:
    """The rows an estimator will use for outcome ``column`` can estimate an effect.

    ``used`` marks those rows: the outcome and every covariate observed and the weight
    positive. The treated units need some of them after the start and each treated unit some
    before it (a treated unit with none before is a warning); the never-treated units (when
    they are the comparison) some after it.
    """
    covariates = list(spec.design.covariates)
    cohort = first_treated[unit_code]
    treated_row = cohort != NEVER
    # NEVER less the anticipation is still after every period: never-treated rows are not post.
    post = period_code >= cohort - spec.treatment.anticipation
    key = f"outcomes[{i}].column"
    why = (
        f" (or a covariate, {', '.join(covariates)}, or the weight)"
        if covariates
        else (" (or the weight is zero)" if spec.data.weight else "")
    )
    treated_units = np.flatnonzero(first_treated != NEVER)
    labels = np.asarray(units, dtype=object)
    problems: list[Problem] = []
    every_row = bool(used.all())  # the usual case: no pass over the rows to mask them

    def usable(rows: np.ndarray) -> np.ndarray:
        return rows if every_row else used & rows

    if not usable(post).any():
        problems.append(
            Problem(
                key,
                f"{key}: '{column}'{why} is missing in every period after the start for all "
                f"treated units ({_list(labels[treated_units].tolist())}); there is nothing to "
                "estimate: check the column, or the start",
                column,
            )
        )
    has_pre = np.bincount(unit_code[usable(treated_row & ~post)], minlength=len(units)) > 0
    no_pre = treated_units[~has_pre[treated_units]]
    if no_pre.size == treated_units.size:
        problems.append(
            Problem(
                key,
                f"{key}: '{column}'{why} is missing in every period before the start for all "
                f"treated units ({_list(labels[treated_units].tolist())}); there is nothing to "
                "compare against: add the earlier data, or correct the start",
                column,
            )
        )
    elif no_pre.size:
        problems.append(
            Problem(
                key,
                f"Treated unit(s) {_list(labels[no_pre].tolist())} have no value of '{column}' "
                "before their start; estimators with unit effects learn nothing about them.",
                column,
                warning="no-pre-period-outcome",
            )
        )
    never = ~treated_row
    if never.any() and spec.treatment.comparison != "not_yet_treated":
        earliest = int(first_treated[treated_units].min()) - spec.treatment.anticipation
        if not usable(never & (period_code >= earliest)).any():
            problems.append(
                Problem(
                    key,
                    f"{key}: '{column}'{why} is missing in every period from "
                    f"{period_labels[max(earliest, 0)]} on for all comparison units; the "
                    "comparison units need values after the start",
                    column,
                )
            )
    return problems


# ----------------------------------------------------------------------------- warnings only


def check_balanced(unit_code: np.ndarray, n_units: int, n_periods: int) -> list[Problem]:
    """A warning when some units of a panel are not observed in every period."""
    counts = np.bincount(unit_code, minlength=n_units)
    short = int((counts < n_periods).sum())
    if not short:
        return []
    return [
        Problem(
            "data",
            f"The panel is unbalanced: {short} of {n_units} units are not observed "
            f"in all {n_periods} periods.",
            warning="unbalanced-panel",
        )
    ]


def check_period_gaps(periods: PeriodIndex, column: str) -> list[Problem]:
    """A warning when calendar periods between the first and the last have no data at all."""
    if not periods.has_gaps():
        return []
    return [
        Problem(
            "data.time",
            f"Some {periods.format}s between {periods.labels[0]} and {periods.labels[-1]} "
            "have no data at all; event times count the periods that are present.",
            column,
            warning="period-gaps",
        )
    ]
