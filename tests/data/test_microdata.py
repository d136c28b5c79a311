"""Reading microdata: files, folders and globs of partitions, and every bad input's message."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.data import load_panel
from pilotlab.data.cells import n_column, q_column
from pilotlab.exceptions import DataError
from pilotlab.spec import load_pilot, parse_pilot
from tests.support.microdata import micro_pilot, person_rows, treated_areas, write_partitions


def _pilot(folder: Path, rows: pd.DataFrame, path: str, **data: object) -> Path:
    treated = treated_areas(rows, 8)
    spec = {
        "id": "micro",
        "title": "Microdata pilot",
        "status": "completed",
        "data": {"path": path, "unit": "area", "time": "period", "person": "person",
                 "layout": "microdata", **data},
        "treatment": {"units": treated, "start": "2004"},
        "outcomes": [{"column": "y"}],
        "design": {"estimator": "twfe", "covariates": ["x"], "inference": {"method": "cluster"}},
    }  # fmt: skip
    out = folder / "pilot.yaml"
    out.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return out


def _panel(pilot: Path):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_panel(load_pilot(pilot))


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return person_rows(seed=21, weights=True)


@pytest.mark.parametrize("form", ["folder", "glob", "file", "csv-glob"])
def test_partitions_folder_glob_and_file_give_the_same_cells(
    tmp_path: Path, rows: pd.DataFrame, form: str
) -> None:
    write_partitions(rows, tmp_path / "parts", 3)
    path = {"folder": "parts", "glob": "parts/*.parquet", "file": "one.parquet",
            "csv-glob": "csv/*.csv"}[form]  # fmt: skip
    if form == "file":
        rows.to_parquet(tmp_path / "one.parquet", index=False)
    if form == "csv-glob":
        (tmp_path / "csv").mkdir()
        half = len(rows) // 2
        rows.iloc[:half].to_csv(tmp_path / "csv" / "rows-0.csv", index=False)
        rows.iloc[half:].to_csv(tmp_path / "csv" / "rows-1.csv", index=False)
    panel = _panel(_pilot(tmp_path, rows, path, weight="w"))
    spec = micro_pilot(treated=treated_areas(rows, 8), covariates=("x",), weight=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = load_panel(spec, data=rows)
    assert panel.layout == "microdata"
    assert panel.micro is not None and panel.micro.rows == len(rows)
    assert panel.micro.persons == rows["person"].nunique()
    assert panel.micro.files == {"folder": 3, "glob": 3, "file": 1, "csv-glob": 2}[form]
    for col in ("y", n_column("y"), q_column("y", 0, 1), q_column("y", 1, 1)):
        np.testing.assert_allclose(panel.frame[col], ref.frame[col], rtol=1e-12, atol=1e-9)
    assert panel.n_units == rows["area"].nunique() and panel.n_periods == 6


def test_area_ids_keep_leading_zeros_in_csv(tmp_path: Path, rows: pd.DataFrame) -> None:
    data = rows.assign(area=rows["area"].str.replace("A", "0"))
    data.to_csv(tmp_path / "rows.csv", index=False)
    pilot = _pilot(tmp_path, data, "rows.csv")
    assert _panel(pilot).unit_labels[0] == "0000"


def _message(pilot: Path) -> str:
    with pytest.raises(DataError) as err:
        _panel(pilot)
    return str(err.value)


def test_area_varying_within_a_person_and_period(tmp_path: Path, rows: pd.DataFrame) -> None:
    bad = rows.copy()
    first = bad.index[(bad["person"] == "P5") & (bad["period"] == 2002)][0]
    extra = bad.loc[[first]].assign(area="A020")
    write_partitions(pd.concat([bad, extra]), tmp_path / "parts", 3)
    msg = _message(_pilot(tmp_path, rows, "parts"))
    assert "data.unit: column 'area' varies within a person and period" in msg
    assert "person P5 in period 2002" in msg and "part-0.parquet" in msg


def test_periods_that_do_not_parse_in_one_partition_name_the_file(
    tmp_path: Path, rows: pd.DataFrame
) -> None:
    folder = write_partitions(rows, tmp_path / "parts", 3)
    part = pd.read_parquet(folder / "part-2.parquet")
    part["period"] = part["period"].astype(str).str.replace("2006", "2006-13")
    part.to_parquet(folder / "part-2.parquet", index=False)
    msg = _message(_pilot(tmp_path, rows, "parts"))
    assert "data.time: column 'period'" in msg and "'2006-13'" in msg
    assert "part-2.parquet" in msg and "part-0.parquet" not in msg


def test_a_glob_matching_nothing(tmp_path: Path, rows: pd.DataFrame) -> None:
    msg = _message(_pilot(tmp_path, rows, "parts/*.parquet"))
    assert "data.path: the pattern" in msg and "matches no file" in msg


def test_missing_columns_and_values_that_are_not_numbers(
    tmp_path: Path, rows: pd.DataFrame
) -> None:
    rows.drop(columns="x").to_parquet(tmp_path / "rows.parquet", index=False)
    msg = _message(_pilot(tmp_path, rows, "rows.parquet"))
    assert "design.covariates[0]: column 'x' is not in" in msg
    text = rows.astype({"y": str})
    text.loc[3, "y"] = "n/a?"
    text.to_csv(tmp_path / "rows.csv", index=False)
    msg = _message(_pilot(tmp_path, rows, "rows.csv"))
    assert "outcomes[0].column: column 'y' holds 1 value(s) that are not numbers" in msg
    assert "rows.csv: 'n/a?'" in msg


def test_negative_weights_and_clusters_other_than_the_area(
    tmp_path: Path, rows: pd.DataFrame
) -> None:
    rows.assign(w=-rows["w"]).to_parquet(tmp_path / "rows.parquet", index=False)
    msg = _message(_pilot(tmp_path, rows, "rows.parquet", weight="w"))
    assert "data.weight: column 'w' is missing, negative or infinite" in msg
    msg = _message(_pilot(tmp_path, rows, "rows.parquet", cluster="person"))
    assert "data.cluster: microdata are clustered by their area" in msg


@pytest.mark.parametrize("how", ["runner", "subprocess"])
def test_bad_microdata_exit_1_and_write_nothing(
    tmp_path: Path, rows: pd.DataFrame, how: str
) -> None:
    bad = pd.concat([rows, rows.iloc[[0]].assign(area="A021")])
    bad.to_parquet(tmp_path / "rows.parquet", index=False)
    pilot = _pilot(tmp_path, rows, "rows.parquet")
    out = tmp_path / "out"
    args = ["run", str(pilot), "-o", str(out), "--registry", f"sqlite:///{tmp_path / 'r.db'}"]
    if how == "runner":
        res = CliRunner().invoke(cli, args)
        code, text = res.exit_code, res.output
    else:
        proc = subprocess.run([sys.executable, "-m", "pilotlab", *args], capture_output=True,
                              text=True, check=False)  # fmt: skip
        code, text = proc.returncode, proc.stdout + proc.stderr
    assert code == 1
    assert "varies within a person and period" in text and "Traceback" not in text
    assert not out.exists() and not (tmp_path / "r.db").exists()


def test_integer_ids_in_parquet_become_their_digits(tmp_path: Path, rows: pd.DataFrame) -> None:
    data = rows.assign(
        area=rows["area"].str[1:].astype(int) + 100, person=rows["person"].str[1:].astype(int)
    )
    data.to_parquet(tmp_path / "rows.parquet", index=False)
    pilot = _pilot(tmp_path, rows, "rows.parquet")
    spec = yaml.safe_load(pilot.read_text(encoding="utf-8"))
    spec["treatment"]["units"] = [str(100 + i) for i in range(8)]
    pilot.write_text(yaml.safe_dump(spec), encoding="utf-8")
    panel = _panel(pilot)
    assert panel.unit_labels[:2] == ("100", "101") and panel.n_treated_units == 8
    assert panel.micro is not None and panel.micro.persons == rows["person"].nunique()


def test_person_is_left_out_of_the_plan_when_unset() -> None:
    spec = micro_pilot(treated=["A000"], person=False)
    assert "person" not in spec.plan()["data"]
    assert micro_pilot(treated=["A000"]).plan()["data"]["person"] == "person"


def test_treatment_column_is_read_per_area_and_period(rows: pd.DataFrame) -> None:
    treated = treated_areas(rows, 8)
    data = rows.assign(first=np.where(rows["area"].isin(treated), "2004", ""))
    raw = micro_pilot(treated=treated).model_dump(mode="json", exclude_none=True)
    raw["treatment"] = {"column": "first"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = load_panel(parse_pilot(raw), data=data)
    assert panel.n_treated_units == 8 and panel.period_labels[int(panel.cohorts[0])] == "2004"
    data.loc[data.index[0], "first"] = "2003"
    with pytest.raises(DataError, match="differs between persons of the same area and period"):
        load_panel(parse_pilot(raw), data=data)
