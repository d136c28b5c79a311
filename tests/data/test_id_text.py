"""Ids that look like pandas' missing markers (``NA`` for Namibia, ``NULL``) are ids, not gaps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pilotlab.data import load_panel, panel_from_frame
from pilotlab.exceptions import DataError
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import load_pilot, parse_pilot
from tests.support import pilot_dict, write_pilot


def _with_codes(tmp_path, codes_for: dict[int, str]):
    sim = make_pilot_panel(12, 6, 3, 3, seed=21)
    units = sorted(sim.data["area_code"].unique())
    codes = {u: codes_for.get(i, u) for i, u in enumerate(units)}
    df = sim.data.assign(area_code=sim.data["area_code"].map(codes))
    df["region"] = df["area_code"]
    treated = [codes[u] for u in sim.treated_units]
    return sim, df, treated


def test_unit_and_cluster_called_na_or_null_are_ids(tmp_path) -> None:
    sim, df, _ = _with_codes(tmp_path, {0: "NA", 1: "NULL", 2: "n/a"})
    treated = ["NA", "NULL", *list(sim.treated_units)[:1]]
    spec = pilot_dict(
        data={"path": "data.csv", "unit": "area_code", "time": "period", "cluster": "region"},
        treatment={"units": treated, "start": sim.start},
    )
    write_pilot(tmp_path, spec, df)
    assert "\nNA," in (tmp_path / "data.csv").read_text()
    panel = load_panel(load_pilot(tmp_path / "pilot.yaml"))
    labels = np.asarray(panel.unit_labels)
    assert {"NA", "NULL", "n/a"} <= set(panel.unit_labels)
    assert panel.n_units == 12 and panel.n_clusters == 12
    assert {"NA", "NULL"} <= set(labels[panel.is_treated_unit])


def test_empty_unit_cell_is_still_missing_and_na_outcome_still_a_gap(tmp_path) -> None:
    sim, df, treated = _with_codes(tmp_path, {0: "NA"})
    spec = pilot_dict(treatment={"units": treated, "start": sim.start})
    df = df.astype({"outcome": object})
    df.loc[df.index[-1], "outcome"] = "NA"  # a missing outcome written as NA
    write_pilot(tmp_path, spec, df)
    panel = load_panel(load_pilot(tmp_path / "pilot.yaml"))
    assert "NA" in panel.unit_labels
    assert np.isnan(panel.y("outcome")).sum() == 1
    text = (tmp_path / "data.csv").read_text().splitlines()
    cells = text[3].split(",")
    cells[0] = ""
    text[3] = ",".join(cells)
    (tmp_path / "data.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"data\.unit: column 'area_code' is empty in 1 row"):
        load_panel(load_pilot(tmp_path / "pilot.yaml"))


def test_an_infinite_unit_id_in_a_number_column_raises_no_numpy_warning() -> None:
    """Ids stored as floats (a DataFrame, or a CSV column with gaps) may hold ``inf``: it is an id
    like any other, and numpy's 'invalid value' warning must not reach the user."""
    sim = make_pilot_panel(20, 8, 3, 5, seed=1)
    df = sim.data.assign(area_code=sim.data["area_code"].str[1:].astype(float) + 1000)
    df.loc[df.index[-8:], "area_code"] = np.inf  # the last unit
    treated = [int(u[1:]) + 1000 for u in sim.treated_units]
    spec = parse_pilot(pilot_dict(treatment={"units": treated, "start": sim.start}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        panel = panel_from_frame(df, spec)
    assert "inf" in panel.unit_labels and panel.n_treated_units == 3
