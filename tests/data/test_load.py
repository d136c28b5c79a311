"""Reading data: formats, period parsing, id matching, weights, missing values, layouts."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from pilotlab.data import NEVER, load_panel, panel_from_frame, parse_periods
from pilotlab.engine import evaluate
from pilotlab.exceptions import DataError, MissingDataWarning, UnbalancedPanelWarning
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import load_pilot, parse_pilot
from tests.support import pilot_dict, write_pilot


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
    assert ev.data.missing[0].n_missing == 2
    assert any(w.code == "missing-outcome" and "2 of 160 values" in w.message for w in ev.warnings)


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


# ---------------------------------------------------------------- ids read as text


def _coded(sim, codes: dict[str, str]) -> pd.DataFrame:
    return sim.data.assign(area_code=sim.data["area_code"].map(codes))


def test_csv_ids_keep_leading_zeros(tmp_path) -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=11)
    codes = {u: f"{i:03d}" for i, u in enumerate(sorted(sim.data["area_code"].unique()))}
    treated = [codes[u] for u in sim.treated_units]
    path = tmp_path / "pilot.yaml"
    write_pilot(tmp_path, pilot_dict(treatment={"units": treated, "start": sim.start}), None)
    _coded(sim, codes).to_csv(tmp_path / "data.csv", index=False)
    # unquoted in the pilot file, as people write them: 015 must not become octal 13
    assert "015" in treated
    text = re.sub(r"units:\n(  - .*\n)+", "units: [" + ", ".join(treated) + "]\n", path.read_text())
    path.write_text(text)
    panel = load_panel(load_pilot(path))
    labels = np.asarray(panel.unit_labels)
    assert sorted(labels[panel.is_treated_unit]) == sorted(treated)
    assert "000" in panel.unit_labels


def test_distinct_codes_01_and_1_do_not_collapse(tmp_path) -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=12)
    units = sorted(sim.data["area_code"].unique())
    codes = {u: (f"0{i}" if i % 2 else str(i)) for i, u in enumerate(units)}
    codes[units[2]] = "01" if codes[units[1]] == "1" else "1"  # both '01' and '1' present
    codes[units[1]] = "01" if codes[units[2]] == "1" else "1"
    treated = [codes[u] for u in sim.treated_units]
    write_pilot(tmp_path, pilot_dict(treatment={"units": treated, "start": sim.start}), None)
    df = _coded(sim, codes)
    df["region"] = df["area_code"]  # a cluster column of the same codes
    df.to_csv(tmp_path / "data.csv", index=False)
    spec = load_pilot(tmp_path / "pilot.yaml")
    panel = load_panel(spec)
    assert panel.n_units == 20 and {"01", "1"} <= set(panel.unit_labels)
    spec_c = parse_pilot(
        {**spec.model_dump(), "data": {**spec.data.model_dump(), "cluster": "region"}},
        str(tmp_path / "pilot.yaml"),
    )
    assert load_panel(spec_c).n_clusters == 20


def test_numeric_yaml_ids_match_numeric_text_but_never_by_dropping_zeros(tmp_path) -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=13)
    units = sorted(sim.data["area_code"].unique())
    codes = {u: str(1000 + i) for i, u in enumerate(units)}
    treated = [int(codes[u]) for u in sim.treated_units]  # YAML ints: 1001
    write_pilot(
        tmp_path, pilot_dict(treatment={"units": treated, "start": sim.start}), _coded(sim, codes)
    )
    assert load_panel(load_pilot(tmp_path / "pilot.yaml")).n_treated_units == 3
    zeros = {u: f"0{c}" for u, c in codes.items()}  # data '01001', pilot file 1001
    _coded(sim, zeros).to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(DataError, match=r"treatment\.units: 3 unit\(s\) not found"):
        load_panel(load_pilot(tmp_path / "pilot.yaml"))


def test_parquet_integer_ids_become_text(tmp_path) -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=14)
    units = sorted(sim.data["area_code"].unique())
    df = sim.data.assign(
        area_code=sim.data["area_code"].map({u: 7 + i for i, u in enumerate(units)})
    )
    treated = [str(7 + units.index(u)) for u in sim.treated_units]
    spec = pilot_dict(
        data={"path": "d.parquet", "unit": "area_code", "time": "period"},
        treatment={"units": treated, "start": sim.start},
    )
    write_pilot(tmp_path, spec, None)
    df.to_parquet(tmp_path / "d.parquet")
    panel = load_panel(load_pilot(tmp_path / "pilot.yaml"))
    assert panel.n_treated_units == 3 and "7" in panel.unit_labels


# ---------------------------------------------------------------- non-finite and extreme values


def _weighted_spec(sim, **data):
    return parse_pilot(
        pilot_dict(
            data={"path": "d.csv", "unit": "area_code", "time": "period", **data},
            treatment={"units": list(sim.treated_units), "start": sim.start},
        )
    )


@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e200])
@pytest.mark.parametrize("column", ["outcome", "population"])
def test_infinite_and_huge_values_name_column_and_rows(value, column) -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=15)
    df = sim.data.astype({"population": float})
    df.loc[[3, 50], column] = value
    spec = _weighted_spec(sim, weight="population") if column == "population" else _sim_spec(sim)
    with pytest.raises(DataError) as info:
        panel_from_frame(df, spec)
    msg = str(info.value)
    assert f"column '{column}' has 2" in msg
    assert "infinite" in msg if np.isinf(value) else "beyond" in msg
    assert "row 5: unit A0000, period 2018Q4; row 52: unit A0006" in msg


def test_infinite_covariate_is_refused() -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=15)
    spec = parse_pilot({**_sim_spec(sim).model_dump(), "design": {"covariates": ["population"]}})
    df = sim.data.astype({"population": object})
    df.loc[9, "population"] = "inf"
    with pytest.raises(
        DataError, match=r"design\.covariates\[0\]: column 'population' has 1 infinite"
    ):
        panel_from_frame(df, spec)


@pytest.mark.parametrize("huge", ["99999999999999999999", 10**30, 1e300])
def test_huge_period_is_a_period_error(huge) -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=16)
    df = sim.data.assign(
        period=sim.data["period"].str[:4].astype(int) * 10 + sim.data["period"].str[-1].astype(int)
    )
    df = df.astype({"period": object})
    df.loc[0, "period"] = huge
    spec = _sim_spec(sim, units=list(sim.treated_units), start="20192")
    with pytest.raises(DataError, match=r"data\.time: column 'period' has 1 malformed period"):
        panel_from_frame(df, spec)


def test_huge_start_is_a_period_error() -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=16)
    df = sim.data.assign(period=sim.data["period"].str[:4].astype(int))
    df = df.drop_duplicates(["area_code", "period"])
    spec = _sim_spec(sim, units=list(sim.treated_units), start=10**20)
    with pytest.raises(
        DataError, match=r"treatment\.start: '100000000000000000000' is not a period"
    ):
        panel_from_frame(df, spec)


# ---------------------------------------------------------------- what run would fail on


def _treated_rows(sim, df):
    return df["area_code"].isin(sim.treated_units)


@pytest.mark.parametrize(
    ("edit", "weight", "expected"),
    [
        (lambda s, d: d.assign(population=0.0), True, "zero for every row of the treated units"),
        (
            lambda s, d: d.assign(population=np.where(_treated_rows(s, d), 0.0, d.population)),
            True,
            "zero for every row of the treated units",
        ),
        (
            lambda s, d: d.assign(population=np.where(_treated_rows(s, d), d.population, 0.0)),
            True,
            "zero for every row of the comparison units",
        ),
        (
            lambda s, d: d.assign(population=np.where(d.index == 4, -1.0, d.population)),
            True,
            "1 negative value(s) (row 6: unit A0000, period 2019Q1)",
        ),
        (
            lambda s, d: d.assign(population=np.where(d.index == 4, np.nan, d.population)),
            True,
            "is empty in 1 row(s) (row 6",
        ),
        (
            lambda s, d: d.assign(
                outcome=np.where(_treated_rows(s, d) & (d.period >= s.start), np.nan, d.outcome)
            ),
            False,
            "missing in every period after the start for all treated units",
        ),
        (
            lambda s, d: d.assign(
                outcome=np.where(_treated_rows(s, d) & (d.period < s.start), np.nan, d.outcome)
            ),
            False,
            "missing in every period before the start for all treated units",
        ),
        (
            lambda s, d: d.assign(
                outcome=np.where(~_treated_rows(s, d) & (d.period >= s.start), np.nan, d.outcome)
            ),
            False,
            "for all comparison units",
        ),
    ],
)
def test_designs_run_cannot_estimate_are_refused_by_loading(edit, weight, expected) -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=17)
    df = edit(sim, sim.data.astype({"population": float}))
    spec = _weighted_spec(sim, weight="population") if weight else _sim_spec(sim)
    with pytest.raises(DataError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel_from_frame(df, spec)
    assert expected.format(t0=sim.treated_units[0]) in str(info.value)


def test_missing_covariate_counts_as_missing_outcome() -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=17)
    spec = parse_pilot({**_sim_spec(sim).model_dump(), "design": {"covariates": ["population"]}})
    df = sim.data.astype({"population": float})
    df.loc[_treated_rows(sim, df) & (df.period >= sim.start), "population"] = np.nan
    with pytest.raises(
        DataError, match=r"'outcome' \(or a covariate, population, or the weight\) is missing"
    ):
        panel_from_frame(df, spec)


def test_anticipation_beyond_the_pre_periods_is_refused() -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=18)  # 5 periods before the start
    ok = parse_pilot(
        pilot_dict(
            treatment={"units": list(sim.treated_units), "start": sim.start, "anticipation": 4}
        )
    )
    assert panel_from_frame(sim.data, ok).anticipation == 4
    bad = parse_pilot(
        pilot_dict(
            treatment={"units": list(sim.treated_units), "start": sim.start, "anticipation": 5}
        )
    )
    with pytest.raises(DataError, match=r"treatment\.anticipation: 5 period\(s\).*at most 4"):
        panel_from_frame(sim.data, bad)


def test_cluster_must_contain_whole_units() -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=19)
    df = sim.data.assign(region=np.arange(len(sim.data)) % 3)
    spec = _weighted_spec(sim, cluster="region")
    with pytest.raises(
        DataError,
        match=r"data\.cluster: column 'region' takes several values within unit\(s\) A0000",
    ):
        panel_from_frame(df, spec)
    df = sim.data.assign(region=sim.data["area_code"].str[-1])
    assert panel_from_frame(df, spec).n_clusters == 10


def test_a_treated_unit_without_pre_period_values_is_a_warning() -> None:
    """Allowed (a 2x2 DiD of group means uses its post-period values) but said."""
    sim = make_pilot_panel(20, 8, 3, 5, seed=17)
    t0 = sim.treated_units[0]
    df = sim.data.assign(
        outcome=np.where(
            sim.data.area_code.eq(t0) & (sim.data.period < sim.start), np.nan, sim.data.outcome
        )
    )
    with pytest.warns(MissingDataWarning, match=f"Treated unit\\(s\\) {t0} have no value"):
        panel_from_frame(df, _sim_spec(sim))


def test_a_unit_listed_twice_as_eligible_counts_once_in_the_unit_flow() -> None:
    sim = make_pilot_panel(20, 8, 3, 5, seed=6)
    controls = [u for u in sorted(sim.data["area_code"].unique()) if u not in sim.treated_units]
    eligible = [*sim.treated_units, *controls[:5], controls[0]]  # controls[0] twice
    spec = parse_pilot(
        pilot_dict(
            treatment={"units": list(sim.treated_units), "start": sim.start, "eligible": eligible}
        )
    )
    flow = panel_from_frame(sim.data, spec).unit_flow
    assert (flow.eligible, flow.treated, flow.comparison, flow.analysed) == (8, 3, 5, 8)
