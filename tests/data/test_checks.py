"""Each named data check on its own: a good input returns no problem, a bad one the problem that
names the key and column, what was found and the fix."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab.data import NEVER, parse_periods
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
    raise_problems,
)
from pilotlab.exceptions import (
    DataError,
    MissingDataWarning,
)
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict

UNITS = ["A0", "A1", "A2", "A3"]


def _refs(n: int) -> RowRefs:
    """Rows of a 4-unit panel (unit-major, periods 2020..) for messages."""
    units = pd.Series([UNITS[i % 4] for i in range(n)])
    periods = pd.Series([str(2020 + i // 4) for i in range(n)])
    return RowRefs(np.arange(n), units, periods)


def _spec(**overrides):
    return parse_pilot(pilot_dict(**overrides))


def _one(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def test_problem_is_frozen_and_prints_its_message() -> None:
    p = Problem("data.unit", "data.unit: wrong", "area")
    assert str(p) == "data.unit: wrong" and p.warning is None
    with pytest.raises(AttributeError):
        p.key = "x"  # type: ignore[misc]


def test_row_refs_name_the_file_row_unit_and_period() -> None:
    refs = RowRefs(np.array([0, 5, 7, 9]), pd.Series(["a", "b", "c", "d"]), pd.Series([1, 2, 3, 4]))
    assert refs.describe(np.array([1])) == "row 7: unit b, period 2"
    assert refs.describe(np.array([0, 1, 2, 3]), limit=2).endswith("; and 2 more")


def test_raise_problems_warns_the_warnings_and_raises_the_errors_together() -> None:
    problems = [
        Problem("a", "a: first"),
        Problem("w", "only a warning", warning="missing-outcome"),
        Problem("b", "b: second"),
    ]
    with pytest.warns(MissingDataWarning, match="only a warning"), pytest.raises(DataError) as info:
        raise_problems("data.csv", problems)
    assert str(info.value) == "data.csv: 2 problems with the data:\n  - a: first\n  - b: second"
    with pytest.raises(DataError, match=r"^data\.csv: 1 problem with the data:\n  - a: first$"):
        raise_problems("data.csv", problems[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raise_problems("data.csv", [])  # nothing to say: neither raises nor warns


def test_check_columns_present() -> None:
    spec = _spec(design={"covariates": ["population"]})
    assert check_columns_present(["area_code", "period", "outcome", "population"], spec) == []
    p = _one(check_columns_present(["area_code", "period", "outcome", "populaton"], spec, "d.csv"))
    assert (p.key, p.column) == ("design.covariates[0]", "population")
    assert "column 'population' is not in d.csv" in p.message
    assert "Did you mean 'populaton'?" in p.message and "rename the column" in p.message


def test_check_numeric() -> None:
    raw = pd.Series([1.0, np.nan, 3.0, 4.0])
    assert check_numeric(raw, raw.to_numpy(), "outcomes[0].column", "y", _refs(4)) == []
    text = pd.Series(["1", "", "x", "4"], dtype=object)  # the blank cell is a missing value
    values = pd.to_numeric(text, errors="coerce").to_numpy(float)
    p = _one(check_numeric(text, values, "outcomes[0].column", "y", _refs(4)))
    assert (p.key, p.column) == ("outcomes[0].column", "y")
    assert "must be numeric but has 1 non-numeric value(s) (row 4: 'x')" in p.message
    assert "leave the cells empty for missing" in p.message
    bad = np.array([np.inf, 2 * MAX_ABS_VALUE, 1.0, 2.0])
    inf, huge = check_numeric(pd.Series(bad), bad, "data.weight", "w", _refs(4))
    assert "1 infinite value(s) (row 2: unit A0, period 2020)" in inf.message
    assert "replace them with numbers" in inf.message
    assert "1 value(s) beyond ±1e+100 (row 3: unit A1, period 2020)" in huge.message
    assert "rescale the column" in huge.message


def test_check_unit_ids() -> None:
    assert check_unit_ids(np.array([0, 1, 1]), "area") == []
    p = _one(check_unit_ids(np.array([0, -1, 1, -1]), "area"))
    assert (p.key, p.column) == ("data.unit", "area")
    assert "column 'area' is empty in 2 row(s) (first: row 3); every row needs a unit id" in str(p)


def test_check_periods() -> None:
    good = pd.Series(["2020Q1", "2020Q2"])
    periods, _, bad = parse_periods(good)
    assert check_periods(good, bad, periods, "period") == []
    raw = pd.Series(["2020Q1", "2020Q5", "2020Q2", "12345678901234567"])
    periods, _, bad = parse_periods(raw)
    p = _one(check_periods(raw, bad, periods, "period"))
    assert (p.key, p.column) == ("data.time", "period")
    assert "column 'period' has 2 malformed period(s) (row 3: '2020Q5'" in p.message
    assert "numbers of more than 15 digits are not periods" in p.message
    assert "most values here are quarters like '2024Q2'" in p.message


def test_check_duplicates() -> None:
    units, times = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    raw = pd.Series(["2020", "2021", "2020", "2021"])
    assert check_duplicates(units, times, 2, ["A", "B"], raw, "panel") == []
    dup_t, dup_raw = np.array([0, 1, 1, 1]), pd.Series(["2020", "2021", "2021", "2021"])
    p = _one(check_duplicates(units, dup_t, 2, ["A", "B"], dup_raw, "panel"))
    assert p.key == "data"
    assert "2 rows share a unit and period (e.g. unit 'B' in 2021)" in p.message
    assert "data.layout: repeated_cross_section" in p.message
    assert check_duplicates(units, dup_t, 2, ["A", "B"], dup_raw, "repeated_cross_section") == []


def test_check_planned() -> None:
    planned = _spec(treatment={}, design={"power": {"treated": 2}}).treatment
    assert check_planned(planned, history=True) == []
    assert check_planned(_spec().treatment, history=False) == []
    p = _one(check_planned(planned, history=False))
    assert p.key == "treatment" and "`pilotlab power`" in p.message


def test_check_units_known() -> None:
    assert check_units_known(["A1", "A2"], UNITS, "treatment.units", "area") == []
    p = _one(check_units_known(["A1", "A01", "B7"], UNITS, "treatment.units", "area"))
    assert (p.key, p.column) == ("treatment.units", "area")
    assert "2 unit(s) not found in column 'area': A01, B7. Did you mean 'A1'?" in p.message
    assert "they must match the data exactly" in p.message


def test_check_start_periods() -> None:
    periods, _, _ = parse_periods(pd.Series(["2020Q1", "2020Q2", "2020Q3"]))
    values = ["2020Q2", "x", "2031Q1", "2020Q1", "2019Q4"]
    keys = [f"treatment.adoption.A{i}" for i in range(5)]
    k, bad = periods.keys_of(list(values))
    pos = np.searchsorted(periods.keys, k)
    assert check_start_periods(values[:1], keys[:1], bad[:1], pos[:1], periods, "t", False) == []
    malformed, late, first, before = check_start_periods(
        values, keys, bad, pos, periods, "t", history=False
    )
    assert malformed.key == "treatment.adoption.A1" and malformed.column == "t"
    assert "'x' is not a period in the data's format (quarter, e.g. '2024Q2')" in str(malformed)
    assert "2031Q1 is after the last period in the data (2020Q3)" in late.message
    assert "2020Q1 is at or before the first period in the data (2020Q1)" in first.message
    assert "2019Q4 is at or before" in before.message and "Add earlier data" in before.message
    # planning from a history: a start after the data is the plan, not a problem
    planning = check_start_periods(values, keys, bad, pos, periods, "t", history=True)
    assert [p.key for p in planning] == [f"treatment.adoption.A{i}" for i in (1, 3, 4)]


def test_check_treatment_column() -> None:
    assert check_treatment_column(pd.Series([1, 1, 0], index=["A", "B", "C"]), "first") == []
    p = _one(check_treatment_column(pd.Series([1, 2, 3], index=["A", "B", "C"]), "first"))
    assert (p.key, p.column) == ("treatment.column", "first")
    assert "column 'first' takes several values within unit(s) B, C" in p.message
    assert "empty or 0 for never treated" in p.message


def test_check_comparison_not_treated() -> None:
    comparison = np.array([True, True, False, False])
    assert check_comparison_not_treated(comparison, np.array([0, 0, 1, 1], bool), UNITS) == []
    p = _one(check_comparison_not_treated(comparison, np.array([0, 1, 1, 1], bool), UNITS))
    assert p.key == "treatment.comparison"
    assert "unit(s) A1 are listed as comparison units but are also treated" in p.message


def test_check_treated_and_comparison_remain() -> None:
    tr = _spec().treatment
    assert check_treated_remain(2, history=False) == []
    assert check_treated_remain(0, history=True) == []
    assert "no treated unit remains" in _one(check_treated_remain(0, history=False)).message
    assert check_comparison_remain(3, False, tr, history=False) == []
    p = _one(check_comparison_remain(0, False, tr, history=False))
    assert p.key == "treatment.comparison" and "comparison: not_yet_treated" in p.message
    nyt = _spec(
        treatment={"adoption": {"A1": "2020Q1", "A2": "2020Q2"}, "comparison": "not_yet_treated"}
    ).treatment
    assert check_comparison_remain(0, True, nyt, history=False) == []


def test_check_starts() -> None:
    labels = ["2020", "2021", "2022"]
    assert check_starts(np.array([NEVER, 1, 2]), UNITS[:3], labels, 0) == []
    late = _one(check_starts(np.array([NEVER, 3, 2]), UNITS[:3], labels, 0))
    assert late.key == "treatment" and "no rows at or after the start of unit(s) A1" in late.message
    first = _one(check_starts(np.array([NEVER, 0, 2]), UNITS[:3], labels, 0))
    assert "unit(s) A1 start in the first analysed period (2020)" in first.message
    ant = _one(check_starts(np.array([NEVER, 1, 2]), UNITS[:3], labels, 1))
    assert ant.key == "treatment.anticipation"
    assert "set anticipation to at most 0, or add earlier data" in ant.message


def test_check_clusters() -> None:
    units = np.array([0, 0, 1, 1, 2, 2])
    assert check_clusters(np.array([0, 0, 0, 0, 1, 1]), units, UNITS[:3], "region", _refs(6)) == []
    split = _one(check_clusters(np.array([0, 1, 0, 0, 1, 0]), units, UNITS[:3], "region", _refs(6)))
    assert (split.key, split.column) == ("data.cluster", "region")
    assert "column 'region' takes several values within unit(s) A0, A2" in split.message
    assert "or leave data.cluster out" in split.message
    empty = _one(check_clusters(np.array([0, -1, 0, 0, 1, 1]), units, UNITS[:3], "r", _refs(6)))
    assert "column 'r' is empty in 1 row(s) (row 3: unit A1, period 2020)" in empty.message
    # clusters that are the units themselves hold whole units by definition
    assert check_clusters(units, units, UNITS[:3], "area", _refs(6), is_unit=True) == []


def test_check_weights() -> None:
    data = _spec(data={"path": "d.csv", "unit": "area", "time": "t", "weight": "w"}).data
    treated = np.array([True, True, False, False])
    assert check_weights(np.array([1.0, 2.0, 0.0, 3.0]), treated, data, _refs(4)) == []
    nan, neg = check_weights(np.array([np.nan, -1.0, 1.0, 1.0]), treated, data, _refs(4))
    assert (nan.key, nan.column) == ("data.weight", "w")
    assert "column 'w' is empty in 1 row(s) (row 2: unit A0" in nan.message
    assert "1 negative value(s) (row 3: unit A1, period 2020); weights must be >= 0" in str(neg)
    zero = _one(check_weights(np.array([1.0, 1.0, 0.0, 0.0]), treated, data, _refs(4)))
    assert "zero for every row of the comparison units" in zero.message


def test_check_log_positive_and_outcome_has_values() -> None:
    assert check_log_positive(np.array([1.0, np.nan, 2.0]), 0, "y") == []
    p = _one(check_log_positive(np.array([1.0, 0.0, -2.0]), 1, "y"))
    assert (p.key, p.column) == ("outcomes[1].transform", "y")
    assert "'y' has 2 value(s) <= 0; use transform: asinh, or none" in p.message
    assert check_outcome_has_values(np.array([True, False]), 0, "y") == []
    p = _one(check_outcome_has_values(np.array([True, True]), 0, "y"))
    assert p.key == "outcomes[0].column" and "column 'y' has no values" in p.message


def _estimable(used: np.ndarray, spec=None, first=(NEVER, 2, NEVER)) -> list[Problem]:
    """Three units over four periods (unit-major): A1 treated from period 2."""
    unit = np.repeat(np.arange(3), 4)
    period = np.tile(np.arange(4), 3)
    labels = ["2020", "2021", "2022", "2023"]
    first_treated = np.array(first, dtype=np.int64)
    return check_estimable(
        used, unit, period, first_treated, UNITS[:3], labels, 0, "y", spec or _spec()
    )


def test_check_estimable() -> None:
    assert _estimable(np.ones(12, bool)) == []
    no_post = np.ones(12, bool)
    no_post[6:8] = False  # A1's periods from its start
    p = _one(_estimable(no_post))
    assert (p.key, p.column) == ("outcomes[0].column", "y")
    assert "missing in every period after the start for all treated units (A1)" in p.message
    no_pre = np.ones(12, bool)
    no_pre[4:6] = False
    assert "nothing to compare against" in _one(_estimable(no_pre)).message
    no_comparison_after = np.ones(12, bool)
    no_comparison_after[[2, 3, 10, 11]] = False
    p = _one(_estimable(no_comparison_after))
    assert "from 2022 on for all comparison units" in p.message
    covariates = _spec(design={"covariates": ["x"]})
    assert "(or a covariate, x, or the weight)" in _one(_estimable(no_post, covariates)).message


def test_check_estimable_warns_of_a_treated_unit_with_nothing_before_its_start() -> None:
    used = np.ones(12, bool)
    used[[4, 5]] = False  # A1 has nothing before period 2; A2 (also treated) has
    p = _one(_estimable(used, first=(NEVER, 2, 2)))
    assert p.warning == "no-pre-period-outcome"
    assert "Treated unit(s) A1 have no value of 'y' before their start" in p.message


def test_check_balanced_and_period_gaps_are_warnings() -> None:
    assert check_balanced(np.array([0, 0, 1, 1]), 2, 2) == []
    p = _one(check_balanced(np.array([0, 0, 1]), 2, 2))
    assert p.warning == "unbalanced-panel" and "1 of 2 units are not observed" in p.message
    periods, _, _ = parse_periods(pd.Series(["2020Q1", "2020Q2"]))
    assert check_period_gaps(periods, "t") == []
    periods, _, _ = parse_periods(pd.Series(["2020Q1", "2020Q4"]))
    p = _one(check_period_gaps(periods, "t"))
    assert p.warning == "period-gaps" and "quarters between 2020Q1 and 2020Q4" in p.message
