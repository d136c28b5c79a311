"""The panel is assembled column by column without copying the data frame: the same frame as
sorting the checked rows one by one, and the same fingerprint as the data always had."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab.data import panel_from_frame
from pilotlab.data.factorize import factorize
from pilotlab.data.panel import CLUSTER, TIME, UNIT, WEIGHT, frame_sha256
from pilotlab.exceptions import DataError
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict


def _spec(sim, **data):
    d = pilot_dict(treatment={"units": list(sim.treated_units), "start": sim.start})
    d["data"].update(data)
    return parse_pilot(d)


def _build(df, spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return panel_from_frame(df, spec)


def _reference_frame(df, spec, panel):
    """The panel's frame the slow way: label every row, then sort the rows by unit and period."""
    d = spec.data
    units = {u: i for i, u in enumerate(panel.unit_labels)}
    periods = {p: i for i, p in enumerate(panel.period_labels)}
    code = df[d.unit].astype(str).map(units)
    keep = code.notna().to_numpy()
    rows = df.loc[keep]
    out = pd.DataFrame(
        {
            UNIT: code[keep].astype(np.int64).to_numpy(),
            TIME: rows[d.time].astype(str).map(periods).astype(np.int64).to_numpy(),
        }
    )
    out[CLUSTER] = out[UNIT]
    out[WEIGHT] = 1.0
    out[spec.outcomes[0].column] = rows[spec.outcomes[0].column].to_numpy(float)
    return out.sort_values([UNIT, TIME], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("layout", ["sorted", "shuffled", "blocks", "excluded"])
def test_frame_equals_sorting_every_row(layout: str) -> None:
    sim = make_pilot_panel(30, 8, 4, 5, seed=2)
    df = sim.data
    spec = _spec(sim)
    if layout == "shuffled":
        df = df.sample(frac=1, random_state=1).reset_index(drop=True)
    elif layout == "blocks":  # whole units moved, each unit's periods in order
        order = np.random.default_rng(0).permutation(30)
        df = pd.concat([df.iloc[u * 8 : (u + 1) * 8] for u in order], ignore_index=True)
    elif layout == "excluded":
        d = pilot_dict(
            treatment={
                "units": list(sim.treated_units),
                "start": sim.start,
                "exclude": sorted(set(df["area_code"]) - set(sim.treated_units))[:5],
            }
        )
        spec = parse_pilot(d)
        df = df.sample(frac=1, random_state=3).reset_index(drop=True)
    panel = _build(df, spec)
    expected = _reference_frame(df, spec, panel)
    pd.testing.assert_frame_equal(panel.frame, expected)
    assert panel.is_rectangular


def test_frame_owns_its_memory() -> None:
    sim = make_pilot_panel(10, 6, 2, 4, seed=3)
    df = sim.data.copy()
    panel = _build(df, _spec(sim))
    before = panel.frame.copy()
    df["outcome"] = df["outcome"].to_numpy() * 0 + 99.0
    df.loc[:, "outcome"] = 5.0
    pd.testing.assert_frame_equal(panel.frame, before)


def test_in_memory_fingerprint_is_the_frame_hash_as_before() -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=1)
    spec = parse_pilot(pilot_dict(treatment={"units": list(sim.treated_units), "start": sim.start}))
    df = sim.data.sample(frac=1, random_state=0).reset_index(drop=True)
    panel = _build(df, spec)
    assert panel.data_sha256 == frame_sha256(panel.frame)
    # the value the loader computed before the frame was assembled column by column
    assert panel.data_sha256 == "8c8c170c932d0f161adf4d76ce957773db8450177280760bca1944594a23ce6e"


def test_error_rows_of_a_filtered_panel_name_the_file_rows() -> None:
    sim = make_pilot_panel(12, 6, 3, 4, seed=4)
    df = sim.data.assign(w=1.0)
    keep_out = sorted(set(df["area_code"]) - set(sim.treated_units))[:2]
    bad = int(np.flatnonzero(~df["area_code"].isin(keep_out).to_numpy())[7])
    df.loc[bad, "w"] = -1.0
    d = pilot_dict(
        treatment={"units": list(sim.treated_units), "start": sim.start, "exclude": keep_out}
    )
    d["data"]["weight"] = "w"
    with pytest.raises(DataError) as err:
        _build(df, parse_pilot(d))
    unit, period = df.loc[bad, "area_code"], df.loc[bad, "period"]
    assert f"row {bad + 2}: unit {unit}, period {period}" in str(err.value)


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([5, 3, 5, 9, 3]),
        pd.Series([5, 3, 4, 4, 3]),  # every value of the range: the offsets are the codes
        pd.Series([0, 1, 2, 0], dtype="int32"),
        pd.Series([10**12, -4, 10**12]),  # too wide a range: hashed
        pd.Series([1.5, np.nan, 1.5]),
        pd.Series(["b", None, "a", "b"]),
        pd.Series([4, 2], dtype="Int64"),
    ],
)
def test_factorize_codes_each_distinct_value(values: pd.Series) -> None:
    codes, distinct = factorize(values)
    expected, _ = pd.factorize(values)
    assert np.array_equal(codes < 0, expected < 0)
    seen = codes >= 0
    assert list(np.asarray(distinct, dtype=object)[codes[seen]]) == list(values[seen])
    assert len(distinct) == len(set(values.dropna()))


def test_factorize_codes_are_not_the_data() -> None:
    arr = np.array([0, 1, 2, 1, 0], dtype=np.int64)
    codes, _ = factorize(pd.Series(arr, copy=False))
    codes[:] = 7
    assert arr.tolist() == [0, 1, 2, 1, 0]


@pytest.mark.parametrize("gap", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_integer_ids_and_periods_build_the_frame_of_sorting_every_row(
    gap: bool, shuffle: bool
) -> None:
    # integer unit ids (sorted as text: 0, 1, 10, 11, 2, ...) and integer periods, with or
    # without a period missing from the data, in file order or shuffled
    rng = np.random.default_rng(5)
    n, t = 12, 6
    df = pd.DataFrame(
        {
            "area_code": np.repeat(np.arange(n), t),
            "period": np.tile(np.arange(t) * (2 if gap else 1) + 2000, n),
            "outcome": rng.normal(size=n * t),
        }
    )
    if shuffle:
        df = df.sample(frac=1, random_state=2).reset_index(drop=True)
    d = pilot_dict(treatment={"units": ["3", "10"], "start": str(2000 + 3 * (2 if gap else 1))})
    d["data"].update(unit="area_code", time="period")
    spec = parse_pilot(d)
    panel = _build(df, spec)
    pd.testing.assert_frame_equal(panel.frame, _reference_frame(df, spec, panel))
    assert panel.unit_labels[:3] == ("0", "1", "10")


def test_a_duplicate_row_in_unsorted_data_is_named() -> None:
    sim = make_pilot_panel(10, 6, 2, 4, seed=3)
    df = sim.data.sample(frac=1, random_state=0).reset_index(drop=True)
    df = pd.concat([df, df.iloc[[4]]], ignore_index=True)
    with pytest.raises(DataError, match="2 rows share a unit and period"):
        _build(df, _spec(sim))
