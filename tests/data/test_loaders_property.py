"""Property-based tests: whatever a pilot file or data file holds, only pilotlab's errors escape.

Random pilot files (random YAML structures, schema keys with random and hostile values, raw text
corruptions) and random data (random columns, values including inf, nan, huge numbers, text and
blanks, random periods) go through ``load_pilot``, ``load_panel`` and ``pilotlab validate``.
Each must succeed or raise a :class:`~pilotlab.exceptions.PilotlabError`; the command line exits
0 or 1 with no traceback. The default runs are quick; ``-m slow`` runs many more examples.
"""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pilotlab.cli import cli
from pilotlab.data import load_panel
from pilotlab.exceptions import PilotlabError
from pilotlab.spec import load_pilot, parse_pilot

QUICK = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
MANY = settings(QUICK, max_examples=3000)

# ---------------------------------------------------------------- pilot files

#: Raw scalar texts, many of which YAML reads as something other than the text.
TOKENS = [
    "010",
    "011",
    "0x1F",
    "0o7",
    "0b11",
    "1e3",
    "1.0e+3",
    "1_000",
    "1:30",
    "+7",
    "-1",
    "0",
    "3.5",
    ".inf",
    "-.inf",
    ".nan",
    "~",
    "null",
    "",
    "yes",
    "NO",
    "off",
    "true",
    "2024-01-01",
    "2019Q2",
    "2019-04",
    "2019",
    "2031Q1",
    "2018Q1",
    "99999999999999999999",
    "1e400",
    "A0001",
    "A0003",
    "001",
    "outcome",
    "population",
    "area_code",
    "period",
    "region",
    "data.csv",
    "never_treated",
    "not_yet_treated",
    "did",
    "twfe",
    "auto",
    "synthetic_control",
    "log",
    "asinh",
    "panel",
    "repeated_cross_section",
    "cluster",
    "wild_bootstrap",
    "holm",
    "[A0001, 010]",
    "[]",
    "{}",
    "[1, 2, .inf]",
    "{A0001: 2019Q2, 010: 2019}",
    "[[1]]",
    "!!python/object:os.system x",
    "!!python/name:os.system",
    "!foo x",
    "!!binary '%%%'",
    "!!int x",
    "!!float x",
    "!!timestamp x",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!str 010",
    "&a x",
    "*a",
    "*nope",
    "'unclosed",
    '"bad \\q escape"',
    "[unclosed",
    "{a: 1",
    "- x",
    "? x",
    "|",
    ">",
    "a: b: c",
    "\t",
    "x # comment",
    "'010'",
    "\u202e\u00e9\U0001f600",
    "\x07",
]

#: The keys of the pilot file format (leaves are the raw text of a valid file).
BASE: dict[str, Any] = {
    "id": "prop-pilot",
    "title": "Property pilot",
    "status": "completed",
    "data": {"path": "data.csv", "unit": "area_code", "time": "period"},
    "treatment": {"units": "[A0001, A0003]", "start": "2019Q2"},
    "outcomes": [{"column": "outcome", "primary": "true"}],
}
SCHEMA: dict[str, Any] = {
    "id": None, "title": None, "status": None, "summary": None, "partners": None,
    "data": {
        "path": None, "unit": None, "time": None, "cluster": None, "weight": None,
        "layout": None, "unit_label": None, "source": None,
    },
    "treatment": {
        "units": None, "start": None, "adoption": None, "column": None, "comparison": None,
        "exclude": None, "eligible": None, "anticipation": None,
    },
    "outcomes": [{"column": None, "mde": None, "transform": None, "primary": None, "better": None}],
    "design": {
        "estimator": None, "covariates": None, "alpha": None, "multiple_testing": None,
        "robustness": None,
        "window": {"pre": None, "post": None},
        "inference": {"method": None, "replications": None, "seed": None, "weights": None},
        "power": {
            "treated": None, "effects": None, "target_power": None, "post_periods": None,
            "simulations": None, "min_pre_periods": None, "seed": None,
        },
        "callaway_santanna": {"method": None, "base_period": None, "balance_e": None},
        "synthetic": {"predictors": None, "fit_on": None},
    },
}  # fmt: skip


def _paths(schema: dict[str, Any], prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    for key, sub in schema.items():
        path = (*prefix, key)
        out.append(path)
        if isinstance(sub, dict):
            out += _paths(sub, path)
        elif isinstance(sub, list):
            out += _paths(sub[0], (*path, 0))
    return out


PATHS = _paths(SCHEMA)


def _emit(node: Any, indent: int = 0) -> str:
    """Block YAML whose leaves are written as raw text (not quoted by a YAML emitter)."""
    pad = " " * indent
    if isinstance(node, dict):
        out = ""
        for key, value in node.items():
            if isinstance(value, dict | list) and value:
                out += f"{pad}{key}:\n" + _emit(value, indent + 2)
            else:
                out += f"{pad}{key}: {value}\n"
        return out
    if isinstance(node, list):
        out = ""
        for item in node:
            if isinstance(item, dict | list) and item:
                out += f"{pad}-\n" + _emit(item, indent + 2)
            else:
                out += f"{pad}- {item}\n"
        return out
    return f"{pad}{node}\n"


def _set_path(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = doc
    for part in path[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or not node:
                return
            node = node[0]
            continue
        if not isinstance(node, dict):
            return
        if not isinstance(node.get(part), dict | list):
            node[part] = [{}] if isinstance(path[path.index(part) + 1], int) else {}
        node = node[part]
    if isinstance(node, dict) and not isinstance(path[-1], int):
        if value is _DELETE:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value


_DELETE = object()

leaf = st.one_of(
    st.sampled_from(TOKENS),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
        max_size=12,
    ),
)
mutation = st.tuples(st.sampled_from(PATHS), st.one_of(leaf, st.just(_DELETE)))


@st.composite
def schema_pilot_texts(draw: st.DrawFn) -> str:
    """A valid pilot file with random keys set to random, often hostile, raw values."""
    import copy

    doc = copy.deepcopy(BASE)
    for path, value in draw(st.lists(mutation, min_size=1, max_size=6)):
        _set_path(doc, path, value)
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["colour", "treatmnt", "0", "design.alpha"]))] = draw(leaf)
    return _emit(doc)


yaml_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=10),
        st.sampled_from(["2019Q2", "A0001", "outcome", "010"]),
    ),
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(
            st.sampled_from(PATHS).map(lambda p: str(p[-1])) | st.text(max_size=5), kids, max_size=5
        ),
    ),
    max_leaves=25,
)


@st.composite
def structured_pilot_texts(draw: st.DrawFn) -> str:
    """Random YAML structures (safe-dumped), sometimes grafted onto a valid pilot file."""
    value = draw(yaml_values)
    if draw(st.booleans()):
        doc = yaml.safe_load(_emit(BASE))
        key = draw(st.sampled_from(["treatment", "data", "design", "outcomes", "title", "x"]))
        doc[key] = value
        value = doc
    return yaml.safe_dump(value, allow_unicode=True)


@st.composite
def corrupted_pilot_bytes(draw: st.DrawFn) -> bytes:
    """A valid pilot file with random bytes inserted, deleted or the file cut short."""
    data = bytearray(_emit(BASE).encode())
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "cut"]))
        if action == "insert":
            data[pos:pos] = draw(
                st.binary(max_size=6)
                | st.sampled_from(
                    [b"\t", b": ", b"- ", b"[", b"{", b"!!", b"&", b"*", b"\xff", b"\x00"]
                )
            )
        elif action == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return bytes(data)


pilot_texts = st.one_of(
    schema_pilot_texts(), structured_pilot_texts(), corrupted_pilot_bytes().map(bytes)
)

# ---------------------------------------------------------------- data files

UNITS = ["A0001", "A0003", "A0000", "A0002", "001", "1", "01", "010", "NO", "", " A0001 "]
PERIODS = [
    "2018Q1", "2018Q2", "2018Q3", "2018Q4", "2019Q1", "2019Q2", "2019Q3", "2019Q4",
    "2019", "2020", "2019-04", "2019-04-01", "2019-Q5", "99999999999999999999", "1e300", "",
    "nan", "-5",
]  # fmt: skip
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(
        ["", "inf", "-inf", "NaN", "NA", "n/a", "1e308", "1e400", "0", "-0", "x", "1,5"]
    ),
)
COLUMNS: dict[str, st.SearchStrategy[str]] = {
    "area_code": st.sampled_from(UNITS),
    "period": st.sampled_from(PERIODS),
    "outcome": NUMBERS,
    "population": NUMBERS,
    "region": st.sampled_from(["R1", "R2", "", "1", "01"]),
    "start": st.sampled_from(["", "0", "2019Q2", "2019Q3", "inf", "2031Q1", "x", "1e300"]),
}


@st.composite
def data_csvs(draw: st.DrawFn) -> str:
    """A small CSV of random rows: a valid balanced panel with random cells replaced, or noise."""
    names = [c for c in COLUMNS if c in ("area_code", "period") or draw(st.booleans())]
    if draw(st.integers(0, 9)) == 0:
        names = draw(st.lists(st.sampled_from([*COLUMNS, "other"]), max_size=6))
    rows: list[list[str]] = []
    if draw(st.booleans()):  # start from a valid panel
        units = ["A0000", "A0001", "A0002", "A0003", "A0004"]
        for u in units:
            for p in PERIODS[:8]:
                rows.append(
                    [
                        u if c == "area_code" else p if c == "period" else
                        ("2019Q2" if u in ("A0001", "A0003") else "") if c == "start" else
                        "R1" if c == "region" else "1.5"
                        for c in names
                    ]
                )  # fmt: skip
        for _ in range(draw(st.integers(0, 6))):
            if rows and names:
                r, c = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(names) - 1))
                rows[r][c] = draw(COLUMNS.get(names[c], NUMBERS))
    else:
        for _ in range(draw(st.integers(0, 25))):
            rows.append([draw(COLUMNS.get(c, NUMBERS)) for c in names])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(rows)
    return buf.getvalue()


def _spec_variant(i: int) -> dict[str, Any]:
    data = {"path": "data.csv", "unit": "area_code", "time": "period"}
    treatment: dict[str, Any] = {"units": ["A0001", "A0003"], "start": "2019Q2"}
    variants: list[Callable[[], None]] = [
        lambda: None,
        lambda: data.update(weight="population"),
        lambda: data.update(cluster="region"),
        lambda: data.update(layout="repeated_cross_section"),
        lambda: treatment.update(anticipation=2),
        lambda: treatment.update(comparison=["A0000", "A0002"], exclude=["A0004"]),
        lambda: (treatment.clear(), treatment.update(adoption={"A0001": "2019Q2", "01": "2019Q3"})),
        lambda: (treatment.clear(), treatment.update(column="start")),
        lambda: treatment.update(units=["001", "010"], start="2019"),
        lambda: treatment.clear(),  # a planned pilot: the data are history
    ]
    variants[i]()
    out: dict[str, Any] = {
        "id": "prop-data",
        "title": "Property data",
        "data": data,
        "treatment": treatment,
        "outcomes": [{"column": "outcome"}],
    }
    if i == 1:
        out["design"] = {"covariates": ["population"]}
    if not treatment:
        out["design"] = {"power": {"treated": 2}}
    return out


N_VARIANTS = 10

# ---------------------------------------------------------------- the checks


def _write(folder: Path, pilot: str | bytes | dict[str, Any], data: str | None) -> Path:
    path = folder / "pilot.yaml"
    if isinstance(pilot, dict):
        pilot = yaml.safe_dump(pilot, sort_keys=False)
    path.write_bytes(pilot if isinstance(pilot, bytes) else pilot.encode("utf-8", "surrogatepass"))
    if data is not None:
        (folder / "data.csv").write_text(data, encoding="utf-8")
    return path


def check_pilot(pilot: str | bytes, data: str | None = None) -> None:
    """load_pilot (and load_panel when it loads) raise only pilotlab's errors."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = _write(Path(tmp), pilot, data)
        try:
            spec = load_pilot(path)
        except PilotlabError:
            return
        with contextlib.suppress(PilotlabError):
            load_panel(spec, history=spec.treatment.form == "planned")


def check_data(csv_text: str, variant: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = load_pilot(_write(Path(tmp), _spec_variant(variant), csv_text))
        with contextlib.suppress(PilotlabError):
            load_panel(spec, history=spec.treatment.form == "planned")


def check_frame(df: pd.DataFrame, variant: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = parse_pilot(_spec_variant(variant))
        with contextlib.suppress(PilotlabError):
            load_panel(spec, df, history=spec.treatment.form == "planned")


def check_cli(pilot: str | bytes | dict[str, Any], data: str) -> None:
    """``pilotlab validate``: exit 0 or 1, never a traceback."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), pilot, data)
        result = CliRunner().invoke(cli, ["validate", str(path)])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"{type(result.exception).__name__}: {result.exception}"
        )
        assert result.exit_code in (0, 1), result.output
        assert "Traceback" not in result.output
        if result.exit_code == 1:
            assert result.output.startswith("Error: ")


@st.composite
def data_frames(draw: st.DrawFn) -> pd.DataFrame:
    """DataFrames of mixed dtypes: numbers, huge integers as objects, text, bools, missing."""
    n = draw(st.integers(1, 20))

    def column(kind: str) -> Any:
        if kind == "int":
            return np.array(draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n)))
        if kind == "float":
            return np.array(
                draw(
                    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n)
                )
            )
        if kind == "bigint":
            return pd.Series(
                draw(st.lists(st.integers(-(10**40), 10**40), min_size=n, max_size=n)), dtype=object
            )
        if kind == "bool":
            return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        if kind == "text":
            return draw(st.lists(st.sampled_from(UNITS + PERIODS), min_size=n, max_size=n))
        return pd.Series([None] * n, dtype=object)

    kinds = st.sampled_from(["int", "float", "bigint", "bool", "text", "none"])
    return pd.DataFrame(
        {
            name: column(draw(kinds))
            for name in ("area_code", "period", "outcome", "population", "region", "start")
        }
    )


# ---------------------------------------------------------------- quick runs (default)


@QUICK
@given(pilot_texts)
def test_pilot_files_raise_only_pilotlab_errors(pilot: str | bytes) -> None:
    check_pilot(pilot, "area_code,period,outcome\nA0001,2019Q1,1\n")


@QUICK
@given(data_csvs(), st.integers(0, N_VARIANTS - 1))
def test_data_files_raise_only_pilotlab_errors(csv_text: str, variant: int) -> None:
    check_data(csv_text, variant)


@QUICK
@given(data_frames(), st.integers(0, N_VARIANTS - 1))
def test_data_frames_raise_only_pilotlab_errors(df: pd.DataFrame, variant: int) -> None:
    check_frame(df, variant)


@settings(QUICK, max_examples=60)
@given(
    st.one_of(schema_pilot_texts(), st.integers(0, N_VARIANTS - 1).map(_spec_variant)), data_csvs()
)
def test_validate_exits_0_or_1_without_traceback(
    pilot: str | dict[str, Any], csv_text: str
) -> None:
    check_cli(pilot, csv_text)


# ---------------------------------------------------------------- long runs (-m slow)


@pytest.mark.slow
@MANY
@given(pilot_texts)
def test_pilot_files_raise_only_pilotlab_errors_many(pilot: str | bytes) -> None:
    check_pilot(pilot, "area_code,period,outcome\nA0001,2019Q1,1\n")


@pytest.mark.slow
@MANY
@given(data_csvs(), st.integers(0, N_VARIANTS - 1))
def test_data_files_raise_only_pilotlab_errors_many(csv_text: str, variant: int) -> None:
    check_data(csv_text, variant)


@pytest.mark.slow
@MANY
@given(data_frames(), st.integers(0, N_VARIANTS - 1))
def test_data_frames_raise_only_pilotlab_errors_many(df: pd.DataFrame, variant: int) -> None:
    check_frame(df, variant)


@pytest.mark.slow
@settings(QUICK, max_examples=600)
@given(
    st.one_of(schema_pilot_texts(), st.integers(0, N_VARIANTS - 1).map(_spec_variant)), data_csvs()
)
def test_validate_exits_0_or_1_without_traceback_many(
    pilot: str | dict[str, Any], csv_text: str
) -> None:
    check_cli(pilot, csv_text)


def test_the_generators_reach_valid_and_invalid_inputs() -> None:
    """The strategies are not vacuous: the base file and data load, a corrupted one does not."""
    csv_text = "area_code,period,outcome\n" + "".join(
        f"{u},{p},{i % 7 + 0.5}\n"
        for i, (u, p) in enumerate(
            (u, p) for u in ["A0000", "A0001", "A0002", "A0003"] for p in PERIODS[:8]
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        spec = load_pilot(_write(Path(tmp), _emit(BASE), csv_text))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert load_panel(spec).n_treated_units == 2
    with tempfile.TemporaryDirectory() as tmp, pytest.raises(PilotlabError):
        load_pilot(_write(Path(tmp), _emit({**BASE, "status": ".inf"}), csv_text))
