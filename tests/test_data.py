"""Reading data: formats, period parsing, id matching, weights, missing values, layouts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab.data import NEVER, load_panel, panel_from_frame, parse_periods
from pilotlab.engine import evaluate
from pilotlab.exceptions import MissingDataWarning, UnbalancedPanelWarning
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import load_pilot, parse_pilot

from conftest import pilot_dict, write_pilot


@pytest.mark.parametrize(
    ("values", "fmt", "labels"),
    [
        ([2004, 2003, 2007], "integer", ("2003", "2004", "2007")),
        (["2024Q2", "2023Q4", "2024 Q1"], "quarter", ("2023Q4", "2024Q1", "2024Q2")),
        (["2024-01", "2023-12", "2024-2"], "month", ("2023-12", "2024-01", "2024-02")),
        (["2024-01-08", "2024-01-01"], "date", ("2024-01-01", "2024-01-08")),
        (pd.to_datetime(["2024-01-08", "2024-01-01"]), "date", ("2024-01-01", "2024-01-08")),
    ],
)
def test_period_formats(values, fmt, labels) -> None:
    index, idx, bad = parse_periods(pd.Series(values))
    assert index.format == fmt and index.labels == labels and not bad.any()
    assert [labels[i] for i in idx] == [index.labels[i] for i in idx]
    assert sorted(idx) == sorted(range(len(values)))[: len(idx)] or len(set(idx)) == len(labels)


def test_malformed_periods_are_flagged_row_by_row() -> None:
    _, idx, bad = parse_periods(pd.Series(["2024Q1", "2024Q5", "2024Q2", "Q3"]))
    assert bad.tolist() == [False, True, False, True]
    assert idx.tolist() == [0, -1, 1, -1]


def _sim_spec(sim, **treatment):
    return parse_pilot(
        pilot_dict(treatment=treatment or {"units": list(sim.treated_units), "start": sim.start})
    )


def test_numeric_ids_in_data_match_text_ids_in_yaml_and_back() -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=1)
    df = sim.data.assign(area_code=sim.data["area_code"].str[1:].astype(int) + 1000)
    treated = [int(u[1:]) + 1000 for u in sim.treated_units]
    panel = panel_from_frame(df, _sim_spec(sim, units=treated, start=sim.start))  # ints in YAML
    assert panel.n_treated_units == 3
    panel = panel_from_frame(df, _sim_spec(sim, units=[str(u) for u in treated], start=sim.start))
    assert panel.n_treated_units == 3
    df2 = df.assign(
        area_code=df["area_code"].astype(float)
    )  # floats such as 1001.0 from a CSV with gaps
    assert (
        panel_from_frame(df2, _sim_spec(sim, units=treated, start=sim.start)).n_treated_units == 3
    )


def test_csv_and_parquet_give_the_same_panel(tmp_path) -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=2)
    spec = pilot_dict(treatment={"units": list(sim.treated_units), "start": sim.start})
    p_csv = write_pilot(tmp_path / "a", spec, sim.data)
    spec_pq = {**spec, "data": {**spec["data"], "path": "data.parquet"}}
    (tmp_path / "b").mkdir()
    sim.data.to_parquet(tmp_path / "b" / "data.parquet")
    p_pq = write_pilot(tmp_path / "b", spec_pq, None)
    a, b = load_panel(load_pilot(p_csv)), load_panel(load_pilot(p_pq))
    assert a.unit_labels == b.unit_labels and a.period_labels == b.period_labels
    np.testing.assert_allclose(a.y("outcome"), b.y("outcome"))
    assert len(a.fingerprint) == 64 and a.fingerprint != b.fingerprint  # hash of the file's bytes


def test_adoption_and_column_forms_agree() -> None:
    sim = make_pilot_panel(30, 10, 6, [4, 7], seed=3)
    by_map = panel_from_frame(sim.data, _sim_spec(sim, adoption=sim.adoption))
    col = sim.data["area_code"].map(sim.adoption).fillna("")
    by_col = panel_from_frame(sim.data.assign(first=col), _sim_spec(sim, column="first"))
    np.testing.assert_array_equal(by_map.first_treated, by_col.first_treated)
    assert by_map.is_staggered and set(by_map.cohorts) == {4, 7}
    assert (by_map.first_treated == NEVER).sum() == 24


def test_missing_outcomes_reported_with_where() -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=4)
    df = sim.data.copy()
    df.loc[[0, 9], "outcome"] = np.nan
    with pytest.warns(MissingDataWarning, match="2 of 160 values of outcome are missing"):
        panel = panel_from_frame(df, _sim_spec(sim))
    (m,) = panel.missing
    assert m.n_missing == 2 and m.units == ("A0000", "A0001") and m.periods == ("2018Q1", "2018Q2")
    assert panel.complete("outcome").nobs == 158
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = evaluate(_sim_spec(sim), data=df)
    assert ev.outcomes[0].result.nobs == 158
    assert ev.data.missing[0]["n_missing"] == 2
    assert any("2 of 160 values" in w for w in ev.warnings)


def test_unbalanced_panel_warns() -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=5)
    with pytest.warns(UnbalancedPanelWarning, match="1 of 20 units"):
        panel = panel_from_frame(sim.data.drop(index=[17]), _sim_spec(sim))
    assert not panel.is_balanced


def test_exclude_eligible_and_comparison_list_shape_the_unit_flow() -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=6)
    controls = [u for u in sorted(sim.data["area_code"].unique()) if u not in sim.treated_units]
    spec = parse_pilot(
        pilot_dict(
            treatment={
                "units": list(sim.treated_units),
                "start": sim.start,
                "comparison": controls[:10],
                "exclude": [controls[0]],
            }
        )
    )
    panel = panel_from_frame(sim.data, spec)
    assert panel.n_units == 3 + 9
    flow = panel.unit_flow
    assert (flow.in_data, flow.treated, flow.comparison, flow.analysed) == (20, 3, 9, 12)
    assert controls[0] in flow.excluded


def test_weights_are_used() -> None:
    sim = make_pilot_panel(30, 8, 6, 5, seed=7)
    spec = parse_pilot(
        pilot_dict(
            data={"path": "d.csv", "unit": "area_code", "time": "period", "weight": "population"},
            treatment={"units": list(sim.treated_units), "start": sim.start},
        )
    )
    w = panel_from_frame(sim.data, spec)
    u = panel_from_frame(sim.data, _sim_spec(sim))
    assert w.weighted and not u.weighted
    ew, eu = evaluate(spec, data=sim.data), evaluate(_sim_spec(sim), data=sim.data)
    assert ew.outcomes[0].result.estimate != pytest.approx(eu.outcomes[0].result.estimate)


def test_repeated_cross_section() -> None:
    """People within areas: many rows per area and period; did and twfe recover the effect."""
    rng = np.random.default_rng(8)
    areas, periods, per = 40, 6, 25
    a = np.repeat(np.arange(areas), periods * per)
    t = np.tile(np.repeat(np.arange(periods), per), areas)
    treated = a < 10
    y = rng.normal(0, 1, areas)[a] + 0.2 * t + 2.0 * (treated & (t >= 3)) + rng.normal(0, 1, a.size)
    df = pd.DataFrame({"area": a, "year": 2018 + t, "y": y})
    spec = parse_pilot(
        pilot_dict(
            data={
                "path": "d.csv",
                "unit": "area",
                "time": "year",
                "layout": "repeated_cross_section",
            },
            treatment={"units": list(range(10)), "start": 2021},
            outcomes=[{"column": "y"}],
            design={"estimator": "did"},
        )
    )
    ev = evaluate(spec, data=df)
    r = ev.outcomes[0].result
    assert r.n_clusters == 40 and r.nobs == a.size
    assert abs(r.estimate - 2.0) < 3 * r.std_error
    spec2 = parse_pilot({**spec.model_dump(), "design": {"estimator": "twfe"}})
    r2 = evaluate(spec2, data=df).outcomes[0].result
    assert abs(r2.estimate - 2.0) < 3 * r2.std_error
