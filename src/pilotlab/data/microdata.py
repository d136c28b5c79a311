"""Read person-level microdata out of core and aggregate them to area x period cells.

``data.layout: microdata`` names a CSV or Parquet file, a folder of them or a glob of partitioned
files with one row per person (or episode) and period, the area in ``data.unit`` (the unit of
treatment), an optional person id (``data.person``) and optional weights (``data.weight``).
DuckDB scans the files without loading them into memory, checks them and reduces them to the
sufficient statistics of each area x period cell (:mod:`pilotlab.data.cells`): one row per cell,
which :func:`pilotlab.data.load.panel_from_frame` then checks against the pilot file like any
other data. The regression estimators compute from these cells exactly what the same regression
on the person rows gives (:mod:`pilotlab.estimators.cells`).

Unweighted cells need a single scan (DuckDB's covariance aggregates are numerically stable);
weighted cells a second scan that centres each row on its cell means before multiplying.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pilotlab.data.cells import (
    MicroCells,
    mean_column,
    n_column,
    q_column,
    robust_columns,
    weight_column,
)
from pilotlab.data.checks import MAX_ABS_VALUE, Problem, check_columns_present, raise_problems
from pilotlab.data.periods import parse_periods
from pilotlab.exceptions import DataError
from pilotlab.spec.models import PilotSpec

__all__ = ["CellData", "microdata_files", "read_microdata"]

_PARQUET = {".parquet", ".pq"}
_CSV = {".csv", ".txt"}
#: Column DuckDB adds with each row's file.
_FILE = "__pilotlab_file"
#: Cell weight column handed to the panel checks (all rows of the cell).
CELL_WEIGHT = "__w_all"
#: SQL condition of an empty id column of the ``src`` view.
EMPTY = "{0} IS NULL OR CAST({0} AS VARCHAR) = ''"
#: DuckDB memory limit (spills to a temporary folder beyond it); PILOTLAB_DUCKDB_MEMORY overrides.
DEFAULT_MEMORY = "1GB"


@dataclass(frozen=True)
class CellData:
    """The cells of a microdata file: a frame for :func:`panel_from_frame`, the pilot file to
    check it with, and what the cells hold."""

    frame: pd.DataFrame
    spec: PilotSpec
    micro: MicroCells
    fingerprint: str
    source: str


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _kind(path: Path, key: str) -> str:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return "parquet"
    if suffix in _CSV:
        return "csv"
    raise DataError(
        f"{key}: '{path.name}' has extension '{suffix or '(none)'}'; allowed: .csv or "
        ".parquet (a folder or glob of them for microdata); convert the file or fix the path"
    )


def microdata_files(path: Path, key: str = "data.path") -> tuple[list[Path], str]:
    """The files that ``path`` (a file, a folder or a glob) names, and their kind."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise DataError(
                f"{key}: the pattern '{text}' matches no file; check the pattern (it is "
                "relative to the pilot file) and that the files exist"
            )
    elif path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in _PARQUET | _CSV
            and not p.name.startswith((".", "_"))
        )
        if not files:
            raise DataError(
                f"{key}: folder '{path}' holds no .csv or .parquet file; give a folder of "
                "partitioned files, a glob such as 'claims/*.parquet' or one file"
            )
    elif path.exists():
        files = [path]
    else:
        raise DataError(
            f"{key}: data file '{path}' does not exist; check the path (it is relative to the "
            "pilot file)"
        )
    kinds = {_kind(p, key) for p in files}
    if len(kinds) > 1:
        raise DataError(
            f"{key}: '{text}' mixes CSV and Parquet files; give files of one kind (a glob such "
            "as '*.parquet' selects them)"
        )
    return files, kinds.pop()


def _fingerprint(files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0")
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


@contextmanager
def _connection() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB limited in memory, spilling to a temporary folder of its own."""
    spill = tempfile.mkdtemp(prefix="pilotlab-duckdb-")
    con = duckdb.connect(":memory:")
    try:
        con.execute(
            f"SET memory_limit={_literal(os.environ.get('PILOTLAB_DUCKDB_MEMORY', DEFAULT_MEMORY))}"
        )
        con.execute(f"SET temp_directory={_literal(spill)}")
        con.execute("SET preserve_insertion_order=false")
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")  # fmt: skip


def _text_expr(column: str, dtype: str) -> str:
    """SQL of an id column as trimmed text (whole floating-point numbers as their digits)."""
    c = _quote(column)
    if dtype in ("FLOAT", "DOUBLE") or dtype.startswith("DECIMAL"):
        return (
            f"CASE WHEN {c} = floor({c}) AND abs({c}) < 9e15 "
            f"THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) ELSE CAST({c} AS VARCHAR) END"
        )
    return f"trim(CAST({c} AS VARCHAR))"


def _key_expr(column: str, dtype: str) -> str:
    """SQL of an id column to group by: integers as they are (their text is made once per
    group, after the aggregation: casting every row costs more than the whole aggregation),
    anything else as :func:`_text_expr`."""
    return _quote(column) if dtype.upper() in _INTEGER_TYPES else _text_expr(column, dtype)


def _key_text(values: pd.Series) -> pd.Series:
    """Grouped id values as the text :func:`_text_expr` gives (integers as their digits)."""
    if pd.api.types.is_integer_dtype(values):
        return values.astype("int64").astype(str)
    return values.astype(str)


def _num_expr(column: str) -> str:
    c = f"TRY_CAST({_quote(column)} AS DOUBLE)"
    return f"CASE WHEN isnan({c}) THEN NULL ELSE {c} END"


_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE",
                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "BOOLEAN")  # fmt: skip


def _where(con: duckdb.DuckDBPyConnection, condition: str, what: str, limit: int = 3) -> str:
    """Examples of the rows matching ``condition``: file, area and period."""
    rows = con.execute(
        f"SELECT f, a, p, {what} FROM src WHERE {condition} LIMIT {limit}"
    ).fetchall()
    return "; ".join(
        f"{Path(str(f)).name}: area {a!s}, period {p!s}, value {v!r}" for f, a, p, v in rows
    )


def read_microdata(
    spec: PilotSpec,
    path: Path | None,
    data: pd.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
) -> CellData:
    """Check the microdata at ``path`` (or the DataFrame ``data``) and aggregate them to cells.

    Raises
    ------
    DataError
        A pattern that matches nothing, missing columns, values that are not numbers, periods
        that do not parse (naming the files), an area that varies within a person and period,
        negative or missing weights, or ``data.cluster`` other than the area.
    """
    d = spec.data
    if d.cluster is not None and d.cluster != d.unit:
        raise DataError(
            f"data.cluster: microdata are clustered by their area (data.unit '{d.unit}'); "
            f"remove data.cluster '{d.cluster}', or aggregate the rows to the clusters and use "
            "them as data.unit"
        )
    if data is not None:
        files: list[Path] = []
        source = "data (DataFrame)"
        fingerprint = hashlib.sha256(
            pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes()
        ).hexdigest()
    else:
        assert path is not None
        files, kind = microdata_files(path)
        source = str(path)
    with _connection() as con:
        if data is not None:
            con.register("input_frame", data)
            con.execute(
                f"CREATE TEMP VIEW raw AS SELECT *, 'data (DataFrame)' AS {_FILE} FROM input_frame"
            )
        else:
            listing = "[" + ", ".join(_literal(str(p)) for p in files) + "]"
            if kind == "parquet":
                reader = f"read_parquet({listing}, union_by_name=true, filename={_literal(_FILE)})"
            else:
                reader = (
                    f"read_csv({listing}, union_by_name=true, header=true, "
                    f"filename={_literal(_FILE)}"
                )
            try:
                con.execute(
                    f"CREATE TEMP VIEW raw AS SELECT * FROM {reader}{'' if kind == 'parquet' else ')'}"
                )
                if kind == "csv":  # id columns as text, so that '007' keeps its zeros
                    present = {str(r[0]) for r in con.execute("DESCRIBE raw").fetchall()}
                    ids = [
                        c
                        for c in (d.unit, d.time, d.person, spec.treatment.column)
                        if c and c in present
                    ]
                    typed = "{" + ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in ids) + "}"
                    con.execute(
                        f"CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM {reader}, types={typed})"
                    )
            except duckdb.Error as exc:
                raise DataError(_read_failure(source, exc)) from None
        if progress is not None:
            progress("Checking the microdata")
        try:
            cells = _aggregate(con, spec, source, progress)
        except duckdb.Error as exc:
            raise DataError(_read_failure(source, exc)) from None
        frame, micro = cells
    if data is None:
        micro = MicroCells(**{**micro.__dict__, "files": len(files)})
        fingerprint = _fingerprint(files)
    temp_data = d.model_copy(
        update={"layout": "repeated_cross_section", "weight": CELL_WEIGHT, "person": None}
    )
    stats = [c for c in frame.columns if str(c).startswith("__") and c != CELL_WEIGHT]
    temp_design = spec.design.model_copy(
        update={"covariates": list(spec.design.covariates) + stats}
    )
    cell_spec = spec.model_copy(update={"data": temp_data, "design": temp_design})
    return CellData(frame, cell_spec, micro, fingerprint, source)


def _read_failure(source: str, exc: Exception) -> str:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (
        f"data.path: microdata '{source}' cannot be read ({first}); check that every file is "
        "a CSV with a header row or a Parquet file, with the same columns"
    )


def _aggregate(
    con: duckdb.DuckDBPyConnection,
    spec: PilotSpec,
    source: str,
    progress: Callable[[str], None] | None,
) -> tuple[pd.DataFrame, MicroCells]:
    d, design, tr = spec.data, spec.design, spec.treatment
    described = con.execute("DESCRIBE raw").fetchall()
    types = {str(r[0]): str(r[1]) for r in described}
    columns = [c for c in types if c != _FILE]
    problems = check_columns_present(columns, spec, source)
    if d.person and d.person not in types:
        problems.append(_missing("data.person", d.person, columns, source))
    raise_problems(source, problems)

    outcomes = [o.column for o in spec.outcomes]
    covs = list(design.covariates)
    select = [
        f"{_key_expr(d.unit, types[d.unit])} AS a",
        f"{_key_expr(d.time, types[d.time])} AS p",
        f"{_quote(_FILE)} AS f",
        f"{_key_expr(d.person, types[d.person])} AS pid" if d.person else "NULL AS pid",
        f"{_num_expr(d.weight)} AS w" if d.weight else "1.0::DOUBLE AS w",
    ]
    select += [f"{_num_expr(c)} AS y{i}" for i, c in enumerate(outcomes)]
    select += [f"{_num_expr(c)} AS z{j}" for j, c in enumerate(covs)]
    if tr.column:
        select.append(f"{_text_expr(tr.column, types[tr.column])} AS tc")
    con.execute(f"CREATE TEMP VIEW src AS SELECT {', '.join(select)} FROM raw")

    # 1. one scan of checks: ids, numbers, weights
    numeric = [(f"outcomes[{i}].column", c) for i, c in enumerate(outcomes)]
    numeric += [(f"design.covariates[{j}]", c) for j, c in enumerate(covs)]
    if d.weight:
        numeric.append(("data.weight", d.weight))
    a_, p_ = _key_expr(d.unit, types[d.unit]), _key_expr(d.time, types[d.time])
    pid_ = _key_expr(d.person, types[d.person]) if d.person else "NULL"
    w_ = _num_expr(d.weight) if d.weight else "1.0"
    checks = [
        "count(*)",
        f"count(*) FILTER (WHERE {EMPTY.format(f'({a_})')})",
        f"count(*) FILTER (WHERE {EMPTY.format(f'({p_})')})",
        f"count(*) FILTER (WHERE {EMPTY.format(f'({pid_})')})" if d.person else "0",
        f"count(*) FILTER (WHERE ({w_}) IS NULL OR ({w_}) < 0 OR NOT isfinite({w_}))"
        if d.weight
        else "0",
    ]
    for _, c in numeric:
        raw = _quote(c)
        if types[c].upper() in _NUMERIC_TYPES:
            checks.append(f"count(*) FILTER (WHERE abs({_num_expr(c)}) > {MAX_ABS_VALUE!r})")
        else:
            checks.append(
                f"count(*) FILTER (WHERE ({raw} IS NOT NULL AND trim(CAST({raw} AS VARCHAR)) "
                f"NOT IN ('', 'NA', 'NaN', 'nan', 'NULL', 'null') AND {_num_expr(c)} IS NULL) "
                f"OR abs({_num_expr(c)}) > {MAX_ABS_VALUE!r})"
            )
    counts = con.execute(f"SELECT {', '.join(checks)} FROM raw").fetchone()
    assert counts is not None
    n_rows, no_area, no_period, no_person, bad_weight, *bad_numbers = (int(v) for v in counts)
    if n_rows == 0:
        raise DataError(
            f"data.path: microdata '{source}' have a header but no rows; they need one row per "
            "person and period"
        )
    messages: list[str] = []
    if no_area:
        messages.append(
            f"data.unit: column '{d.unit}' is empty in {no_area:,} row(s) "
            f"({_where(con, EMPTY.format('a'), 'a')}); every row needs its area"
        )
    if no_period:
        messages.append(
            f"data.time: column '{d.time}' is empty in {no_period:,} row(s) "
            f"({_where(con, EMPTY.format('p'), 'p')}); every row needs its period"
        )
    if no_person:
        messages.append(
            f"data.person: column '{d.person}' is empty in {no_person:,} row(s) "
            f"({_where(con, EMPTY.format('pid'), 'pid')}); every row needs its person id"
        )
    if bad_weight:
        messages.append(
            f"data.weight: column '{d.weight}' is missing, negative or infinite in "
            f"{bad_weight:,} row(s) ({_where(con, 'w IS NULL OR w < 0 OR NOT isfinite(w)', 'w')}); "
            "weights must be numbers >= 0"
        )
    for (key, c), bad in zip(numeric, bad_numbers, strict=True):
        if bad:
            messages.append(
                f"{key}: column '{c}' holds {bad:,} value(s) that are not numbers within "
                f"+/-{MAX_ABS_VALUE:g} ({_bad_number_examples(con, c)}); fix those rows"
            )
    if messages:
        raise DataError("\n".join(f"{source}: {m}" for m in messages))

    # 2. periods, parsed once per distinct value; the files holding a bad one are named
    periods = con.execute("SELECT p FROM src GROUP BY p").df()["p"]
    labels = pd.Series(_key_text(periods).to_numpy(), dtype=object)
    malformed = parse_periods(labels)[2]
    if malformed.any():
        bad_labels = [str(v) for v in labels[malformed]]
        listing = ", ".join(_literal(v) for v in bad_labels)
        in_files = con.execute(
            f"SELECT DISTINCT f FROM src WHERE CAST(p AS VARCHAR) IN ({listing}) ORDER BY f LIMIT 6"
        ).fetchall()
        names = [Path(str(r[0])).name for r in in_files]
        more = " and others" if len(names) > 5 else ""
        shown = ", ".join(repr(v) for v in bad_labels[:5])
        raise DataError(
            f"{source}: data.time: column '{d.time}' has {len(bad_labels)} value(s) that are "
            f"not periods ({shown}) in file(s) {', '.join(names[:5])}{more}; periods must all "
            "be integers (2024), quarters (2024Q2), months (2024-04) or ISO dates (2024-04-01), "
            "written the same way in every file"
        )

    # 3. an area per person and period, and the number of persons
    persons: int | None = None
    if d.person:
        if progress is not None:
            progress("Checking that each person has one area per period")
        row = con.execute(
            "WITH pp AS (SELECT pid, p, min(a) AS a1, max(a) AS a2 FROM src GROUP BY pid, p) "
            "SELECT count(DISTINCT pid), count(*) FILTER (WHERE a1 <> a2) FROM pp"
        ).fetchone()
        assert row is not None
        persons, moving = int(row[0]), int(row[1])
        if moving:
            ex = con.execute(
                "WITH pp AS (SELECT pid, p, min(a) AS a1, max(a) AS a2 FROM src GROUP BY pid, p) "
                "SELECT pid, p, a1, a2 FROM pp WHERE a1 <> a2 ORDER BY pid, p LIMIT 3"
            ).fetchall()
            first = ex[0]
            files = con.execute(
                f"SELECT DISTINCT f FROM src WHERE CAST(pid AS VARCHAR) = "
                f"{_literal(str(first[0]))} AND CAST(p AS VARCHAR) = {_literal(str(first[1]))} "
                "ORDER BY f LIMIT 3"
            ).fetchall()
            shown = "; ".join(
                f"person {r[0]} in period {r[1]}: areas {r[2]} and {r[3]}" for r in ex
            )
            raise DataError(
                f"{source}: data.unit: column '{d.unit}' varies within a person and period in "
                f"{moving:,} case(s) ({shown}; file(s) "
                f"{', '.join(Path(str(f[0])).name for f in files)}); a person belongs to one "
                f"area in each period: fix those rows, or check that data.person '{d.person}' "
                "identifies persons"
            )

    # 4. the cells
    if progress is not None:
        progress("Aggregating the microdata to area x period cells")
    frame, used = _cells(con, spec, outcomes, covs, weighted=d.weight is not None)
    micro = MicroCells(
        outcomes=tuple(outcomes),
        covariates=tuple(covs),
        rows=n_rows,
        rows_used=tuple(used),
        persons=persons,
        files=1,
        person_column=d.person,
        weight_column=d.weight,
    )
    frame = frame.rename(columns={"a": d.unit, "p": d.time})
    if tr.column:
        varying = frame["tc_n"] > 1
        if varying.any():
            cases = frame.loc[varying, [d.unit, d.time]].head(3).astype(str)
            shown = "; ".join(f"area {u}, period {t}" for u, t in cases.itertuples(index=False))
            raise DataError(
                f"{source}: treatment.column: column '{tr.column}' differs between persons of "
                f"the same area and period ({shown}); treatment is given per area"
            )
        frame = frame.drop(columns=["tc_n"]).rename(columns={"tc": tr.column})
    return frame, micro


def _bad_number_examples(con: duckdb.DuckDBPyConnection, column: str) -> str:
    raw = _quote(column)
    rows = con.execute(
        f"SELECT {_quote(_FILE)}, CAST({raw} AS VARCHAR) FROM raw WHERE ({raw} IS NOT NULL AND "
        f"trim(CAST({raw} AS VARCHAR)) NOT IN ('', 'NA', 'NaN', 'nan', 'NULL', 'null') AND "
        f"{_num_expr(column)} IS NULL) OR abs({_num_expr(column)}) > {MAX_ABS_VALUE!r} LIMIT 3"
    ).fetchall()
    return "; ".join(f"{Path(str(f)).name}: {v!r}" for f, v in rows)


def _missing(key: str, column: str, columns: Sequence[str], source: str) -> Problem:
    shown = ", ".join(columns[:12]) + (" ..." if len(columns) > 12 else "")
    return Problem(
        key,
        f"{key}: column '{column}' is not in {source} (columns: {shown}). Fix the pilot file "
        "or rename the column.",
        column,
    )


def _cells(
    con: duckdb.DuckDBPyConnection,
    spec: PilotSpec,
    outcomes: list[str],
    covs: list[str],
    *,
    weighted: bool,
) -> tuple[pd.DataFrame, list[int]]:
    """One row per area and period with each outcome's statistics (see :mod:`.cells`)."""
    p = len(covs)
    tr = spec.treatment
    ok = []
    for i in range(len(outcomes)):
        conds = [f"y{i} IS NOT NULL", *(f"z{j} IS NOT NULL" for j in range(p))]
        ok.append(" AND ".join(conds))
    first = ["a", "p", "count(*) AS n_all", f"sum(w) AS {CELL_WEIGHT}"]
    if tr.column:
        first += ["min(tc) AS tc", "count(DISTINCT tc) AS tc_n"]
    names: dict[str, str] = {}
    for i, o in enumerate(outcomes):
        f = f"FILTER (WHERE {ok[i]})"
        names[f"n{i}"] = n_column(o)
        names[f"w{i}"] = weight_column(o)
        names[f"my{i}"] = o
        first += [f"count(*) {f} AS n{i}", f"sum(w) {f} AS w{i}"]
        first.append(f"sum(w * y{i}) {f} / nullif(sum(w) {f}, 0) AS my{i}")
        for j, c in enumerate(covs):
            names[f"mz{i}_{j}"] = mean_column(o, c)
            first.append(f"sum(w * z{j}) {f} / nullif(sum(w) {f}, 0) AS mz{i}_{j}")
        a0, a1, a2 = robust_columns(o)
        var = [*(f"z{j}" for j in range(p)), f"y{i}"]
        if not weighted:  # stable one-pass co-moments (Welford) times the count
            for r in range(p + 1):
                for s in range(r, p + 1):
                    alias = f"q{i}_{r}_{s}"
                    names[alias] = q_column(o, r, s)
                    first.append(
                        f"coalesce(covar_pop({var[r]}, {var[s]}) {f} * count(*) {f}, 0) AS {alias}"
                    )
            names[f"a0_{i}"], names[f"a2_{i}"] = a0, a2
            first.append(f"coalesce(var_pop(y{i}) {f} * count(*) {f}, 0) AS a0_{i}")
            first.append(f"count(*) {f} AS a2_{i}")
    con.execute(f"CREATE TEMP TABLE cells AS SELECT {', '.join(first)} FROM src GROUP BY a, p")
    if weighted:
        second = ["s.a", "s.p"]
        for i, o in enumerate(outcomes):
            f = f"FILTER (WHERE {ok[i]})"
            dev = [*(f"(s.z{j} - c.mz{i}_{j})" for j in range(p)), f"(s.y{i} - c.my{i})"]
            for r in range(p + 1):
                for s in range(r, p + 1):
                    alias = f"q{i}_{r}_{s}"
                    names[alias] = q_column(o, r, s)
                    second.append(f"coalesce(sum(s.w * {dev[r]} * {dev[s]}) {f}, 0) AS {alias}")
            a0, a1, a2 = robust_columns(o)
            names[f"a0_{i}"], names[f"a1_{i}"], names[f"a2_{i}"] = a0, a1, a2
            second.append(f"coalesce(sum(s.w * s.w * {dev[-1]} * {dev[-1]}) {f}, 0) AS a0_{i}")
            second.append(f"coalesce(sum(s.w * s.w * {dev[-1]}) {f}, 0) AS a1_{i}")
            second.append(f"coalesce(sum(s.w * s.w) {f}, 0) AS a2_{i}")
        con.execute(
            "CREATE TEMP TABLE cells2 AS SELECT "
            + ", ".join(second)
            + " FROM src s JOIN cells c ON s.a = c.a AND s.p = c.p GROUP BY s.a, s.p"
        )
        frame = con.execute("SELECT * FROM cells JOIN cells2 USING (a, p) ORDER BY a, p").df()
    else:
        frame = con.execute("SELECT * FROM cells ORDER BY a, p").df()
    frame["a"], frame["p"] = _key_text(frame["a"]), _key_text(frame["p"])
    used = [int(frame[f"n{i}"].sum()) for i in range(len(outcomes))]
    frame = frame.rename(columns=names)
    for col in frame.columns:
        if col.startswith("__") and col != CELL_WEIGHT and not col.startswith("__m:"):
            frame[col] = frame[col].astype(np.float64).fillna(0.0)
    for o in outcomes:
        a1 = robust_columns(o)[1]
        if a1 not in frame.columns:
            frame[a1] = 0.0  # unweighted: deviations from the cell mean sum to zero
    for i, o in enumerate(outcomes):
        for c in covs:
            frame[mean_column(o, c)] = frame[mean_column(o, c)].astype(np.float64).fillna(0.0)
        if i == 0:
            for c in covs:
                frame[c] = frame[mean_column(o, c)]
    frame = frame.drop(columns=["n_all"])
    return frame, used
