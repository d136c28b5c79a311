"""Allocations drawn from the pilot file's ``assignment``: schemes, reproducibility, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pilotlab.data.allocation import (
    Allocation,
    UnitTable,
    apportion,
    balance,
    draw,
    draw_many,
    generator,
    match_pairs,
    unit_table,
    unit_table_from_panel,
)
from pilotlab.data.load import load_panel
from pilotlab.data.panel import NEVER
from pilotlab.exceptions import DataError
from pilotlab.spec.assignment import AssignmentSpec
from pilotlab.spec.load import load_pilot, parse_pilot
from tests.support import write_pilot
from tests.support.trial import trial_frame, trial_pilot

STEPPED_WAVES = [
    {"name": "autumn", "start": "2019Q3", "units": 8},
    {"name": "winter", "start": "2020Q1", "units": 8},
    {"start": "2020Q2", "units": 8},
]


def _panel(**a: Any):  # type: ignore[no-untyped-def]
    return load_panel(parse_pilot(trial_pilot(**a)), trial_frame())


def _table(n: int = 20, strata: int = 0, seed: int = 0) -> UnitTable:
    rng = np.random.default_rng(seed)
    labels = tuple(f"u{i:03d}" for i in range(n))
    st = np.array([f"s{i % strata}" for i in range(n)], dtype=object) if strata else None
    return UnitTable(labels, ("y", "x"), rng.normal(size=(n, 2)), st)


# ----------------------------------------------------------------------------- schemes


def test_complete_treats_the_number_asked_and_the_panel_follows() -> None:
    p = _panel()
    a = p.allocation
    assert a is not None and a.scheme == "complete"
    assert int((a.codes == 1).sum()) == 6
    treated = np.asarray(p.unit_labels)[p.first_treated != NEVER]
    assert sorted(treated) == sorted(np.asarray(a.units)[a.codes == 1])
    assert set(p.first_treated[p.first_treated != NEVER]) == {p.period_labels.index("2020Q1")}


def test_stratified_shares_treated_in_proportion_within_each_stratum() -> None:
    p = _panel(scheme="stratified", strata=["region"], treated=9)
    a = p.allocation
    assert a is not None
    assert a.stratum_labels == ("r0", "r1", "r2")
    per = np.array([[(a.codes[a.stratum == s] == 1).sum()] for s in range(3)]).ravel()
    assert per.tolist() == [3, 3, 3]
    # stratum of each unit is its region
    region = trial_frame().drop_duplicates("area_code").set_index("area_code")["region"]
    assert [a.stratum_labels[s] for s in a.stratum] == region.loc[list(a.units)].tolist()


def test_pairs_treat_exactly_one_of_each_pair_matched_on_pre_period_values() -> None:
    p = _panel(scheme="pairs", treated=None, pairs_on=["outcome", "x"])
    a = p.allocation
    assert a is not None and a.scheme == "pairs"
    assert len(a.stratum_labels) == 12
    ones = np.bincount(a.stratum, weights=(a.codes == 1).astype(float))
    assert np.all(ones == 1) and np.all(np.bincount(a.stratum) == 2)


def test_match_pairs_pairs_nearest_neighbours() -> None:
    x = np.array([[0.0], [10.0], [0.1], [10.2], [5.0], [5.05]])
    pair = match_pairs(x)
    assert pair[0] == pair[2] and pair[1] == pair[3] and pair[4] == pair[5]
    assert len(set(pair.tolist())) == 3
    assert pair[4] == 0  # the closest pair is formed first


def test_rerandomise_meets_its_balance_criterion() -> None:
    p = _panel(scheme="rerandomise", balance={"on": ["outcome", "x"], "max_std_diff": 0.1})
    a = p.allocation
    assert a is not None and a.max_std_diff == 0.1
    d = balance(a.codes, a.balance_values, a.n_groups)
    assert np.abs(d).max() <= 0.1
    assert a.draws_tried >= 1


def test_stepped_randomises_units_into_waves_with_their_starts() -> None:
    p = _panel(scheme="stepped", treated=None, start=None, strata=["region"], waves=STEPPED_WAVES)
    a = p.allocation
    assert a is not None and a.groups == ("not treated", "autumn", "winter", "wave 3")
    assert np.bincount(a.codes, minlength=4).tolist() == [0, 8, 8, 8]
    assert a.starts == (None, "2019Q3", "2020Q1", "2020Q2")
    assert p.comparison == "not_yet_treated"
    code = a.codes_of(p.unit_labels)
    start = np.array([p.period_labels.index(s) for s in ("2019Q3", "2020Q1", "2020Q2")])
    assert np.array_equal(p.first_treated, start[code - 1])
    assert a.counts.sum(axis=0).tolist() == [0, 8, 8, 8]


def test_several_arms_and_an_eligibility_column() -> None:
    p = _panel(arms=["control", "text", "letter"], treated={"text": 5, "letter": 4},
               eligible={"column": "eligible"})  # fmt: skip
    a = p.allocation
    assert a is not None and a.groups == ("control", "text", "letter")
    assert np.bincount(a.codes).tolist() == [a.n_units - 9, 5, 4]
    elig = trial_frame().drop_duplicates("area_code")
    assert list(a.units) == elig.loc[elig["eligible"] == 1, "area_code"].tolist()
    assert p.n_units == a.n_units  # ineligible units are not analysed
    assert p.n_treated_units == 9


def test_eligible_list_restricts_the_draw() -> None:
    units = [f"A{i:04d}" for i in range(1, 13)]
    p = _panel(eligible=units)
    assert p.allocation is not None and list(p.allocation.units) == units
    assert p.unit_labels == tuple(units)


def test_excluded_units_leave_the_analysis_not_the_draw() -> None:
    spec = trial_pilot()
    spec["treatment"] = {"exclude": ["A0001"]}
    p = load_panel(parse_pilot(spec), trial_frame())
    full = _panel()
    assert p.allocation is not None and full.allocation is not None
    assert p.allocation.sha256 == full.allocation.sha256
    assert "A0001" not in p.unit_labels


# ----------------------------------------------------------------------------- reproducibility


def test_same_seed_same_allocation_and_hash_other_seed_differs() -> None:
    a1, a2 = _panel().allocation, _panel().allocation
    a3 = _panel(seed=8).allocation
    assert a1 is not None and a2 is not None and a3 is not None
    assert np.array_equal(a1.codes, a2.codes) and a1.sha256 == a2.sha256
    assert a1.sha256 != a3.sha256


def test_the_allocation_is_pinned_to_the_seed() -> None:
    """PCG64 and the drawing rule are fixed: this seed gives these treated units everywhere."""
    a = _panel(seed=20250101).allocation
    assert a is not None
    got = [u for u, c in zip(a.units, a.codes, strict=True) if c == 1]
    keys = generator(20250101).random(24)
    expected = [f"A{i + 1:04d}" for i in sorted(np.argsort(keys, kind="stable")[:6])]
    assert got == expected


def test_the_draw_does_not_depend_on_the_order_of_the_unit_table() -> None:
    t = _table(16, strata=4)
    spec = AssignmentSpec(scheme="stratified", strata=["s"], treated=8, start="1", seed=3)
    rev = UnitTable(t.labels[::-1], t.variables, t.values[::-1], t.strata[::-1])  # type: ignore[index]
    assert draw(spec, t).sha256 == draw(spec, rev).sha256


@pytest.mark.parametrize(
    "kw",
    [
        {"scheme": "complete", "treated": 5},
        {"scheme": "stratified", "strata": ["s"], "treated": 7},
        {
            "scheme": "rerandomise",
            "treated": 6,
            "balance": {"on": ["y", "x"], "max_std_diff": 0.15},
        },
        {"scheme": "pairs", "pairs_on": ["y"]},
    ],
)
def test_draw_is_the_first_of_draw_many_from_the_same_seed(kw: dict[str, Any]) -> None:
    spec = AssignmentSpec(seed=11, start="1", **kw)
    a = draw(spec, _table(20, strata=4))
    again = draw_many(a, 1, generator(11))[0]
    assert np.array_equal(a.codes, again)


def test_draw_many_keeps_the_scheme() -> None:
    t = _table(30, strata=3)
    spec = AssignmentSpec(scheme="stratified", strata=["s"], treated=12, start="1", seed=1)
    a = draw(spec, t)
    many = draw_many(a, 500, np.random.default_rng(0))
    assert many.shape == (500, 30)
    for s in range(3):  # fixed counts in every stratum of every draw
        per = (many[:, a.stratum == s] == 1).sum(axis=1)
        assert np.all(per == a.counts[s, 1])
    # and every unit is treated with its stratum's probability
    share = (many == 1).mean(axis=0)
    assert np.allclose(share, 12 / 30, atol=0.08)


def test_draw_many_under_rerandomisation_draws_only_acceptable_allocations() -> None:
    t = _table(20)
    spec = AssignmentSpec(scheme="rerandomise", treated=10, start="1", seed=2,
                          balance={"on": ["y", "x"], "max_std_diff": 0.2})  # fmt: skip
    a = draw(spec, t)
    many = draw_many(a, 300, np.random.default_rng(5))
    d = balance(many, a.balance_values, 2)
    assert np.abs(d).max() <= 0.2
    assert len({r.tobytes() for r in many}) > 250  # distinct, not one repeated


def test_draw_many_under_rerandomisation_is_uniform_over_acceptable_allocations() -> None:
    """Exhaustive check on 6 units: each acceptable allocation equally often."""
    rng = np.random.default_rng(0)
    t = UnitTable(tuple("abcdef"), ("y",), rng.normal(size=(6, 1)))
    spec = AssignmentSpec(scheme="rerandomise", treated=3, start="1", seed=2,
                          balance={"on": ["y"], "max_std_diff": 0.6})  # fmt: skip
    a = draw(spec, t)
    import itertools

    ok = []
    for combo in itertools.combinations(range(6), 3):
        c = np.zeros(6, dtype=np.int64)
        c[list(combo)] = 1
        if np.abs(balance(c, a.balance_values, 2)).max() <= 0.6:
            ok.append(c.tobytes())
    many = draw_many(a, 4000, np.random.default_rng(1))
    seen = [r.tobytes() for r in many]
    assert set(seen) == set(ok)
    freq = np.array([seen.count(k) for k in ok]) / len(seen)
    assert np.allclose(freq, 1 / len(ok), atol=0.03)


# ----------------------------------------------------------------------------- pieces


def test_apportion_meets_totals_and_caps() -> None:
    out = apportion(np.array([5, 3, 2]), [5])
    assert out[:, 1].sum() == 5 and np.all(out.sum(axis=1) == [5, 3, 2])
    assert out[:, 1].tolist() == [3, 1, 1] or out[:, 1].tolist() == [2, 2, 1]
    waves = apportion(np.array([8, 8, 8]), [8, 8, 8])
    assert waves[:, 1:].sum(axis=0).tolist() == [8, 8, 8]
    assert np.all(waves.sum(axis=1) == 8) and np.all(waves[:, 0] == 0)
    capped = apportion(np.array([2, 10]), [2, 9])
    assert capped[:, 1:].sum(axis=0).tolist() == [2, 9] and np.all(capped >= 0)


def test_balance_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 2))
    codes = np.array([0, 1, 2] * 4)
    d = balance(codes, x, 3)
    sd = x.std(axis=0, ddof=1)
    for k in (1, 2):
        assert np.allclose(d[k - 1], (x[codes == k].mean(0) - x[codes == 0].mean(0)) / sd)
    rest = balance(codes, x, 3, against="rest")
    assert np.allclose(rest[0], (x[codes == 1].mean(0) - x[codes != 1].mean(0)) / sd)
    many = balance(np.stack([codes, codes[::-1]]), x, 3)
    assert many.shape == (2, 2, 2) and np.allclose(many[0], d)


def test_unit_table_from_a_panel_uses_the_pre_period() -> None:
    p = _panel(scheme="stratified", strata=["region"], treated=9)
    t = unit_table_from_panel(p)
    df = trial_frame()
    pre = df[df["period"] < "2020Q1"].groupby("area_code")["outcome"].mean()
    assert np.allclose(t.column("outcome"), pre.loc[list(t.labels)].to_numpy())
    assert t.strata is not None and t.strata[0] == "r0"


def test_the_canonical_form_names_every_unit_and_hash_is_sha256() -> None:
    a = _panel().allocation
    assert a is not None
    canon = a.canonical()
    assert [u["unit"] for u in canon["units"]] == list(a.units)  # type: ignore[index]
    assert len(a.sha256) == 64
    assert a.table()["group"].tolist().count("treated") == 6
    with pytest.raises(ValueError):
        a.codes[0] = 1  # frozen


# ----------------------------------------------------------------------------- bad input


def _fails(match: str, frame: Any = None, **a: Any) -> None:
    with pytest.raises(DataError, match=match):
        load_panel(parse_pilot(trial_pilot(**a)), trial_frame() if frame is None else frame)


def test_a_stratum_with_one_unit_is_refused() -> None:
    df = trial_frame()
    df.loc[df["area_code"] == "A0001", "region"] = "alone"
    _fails(r"assignment\.strata: 1 stratum/strata hold one unit only \(alone \(A0001\)\)", df,
           scheme="stratified", strata=["region"], treated=6)  # fmt: skip


def test_more_arms_than_units_is_refused() -> None:
    _fails(r"assignment\.treated: .*only 24 unit\(s\) are eligible", treated=24)
    arms = [f"arm{i}" for i in range(30)]
    _fails("only 24 unit", arms=["control", *arms], treated=1)


def test_an_unsatisfiable_balance_criterion_says_how_many_draws_were_tried() -> None:
    _fails(r"none of the 500 allocations drawn .* within 0\.0001",
           scheme="rerandomise", balance={"on": ["outcome"], "max_std_diff": 0.0001,
                                          "max_draws": 500})  # fmt: skip


def test_units_not_in_the_data_are_refused() -> None:
    _fails(r"assignment\.eligible: 1 unit\(s\) not found .*ZZZ", eligible=["A0001", "ZZZ"])


def test_stratum_columns_must_exist_and_be_constant() -> None:
    _fails(r"assignment\.strata\[0\]: column 'regio' is not in the data",
           scheme="stratified", strata=["regio"])  # fmt: skip
    df = trial_frame()
    df.loc[0, "region"] = "r9"
    _fails("takes more than one value for unit", df, scheme="stratified", strata=["region"])


def test_odd_number_of_units_cannot_be_paired() -> None:
    _fails("even number of eligible units", scheme="pairs", treated=None, pairs_on=["x"],
           eligible=[f"A{i:04d}" for i in range(1, 6)])  # fmt: skip


def test_waves_out_of_order_are_refused() -> None:
    waves = [{"start": "2020Q1", "units": 4}, {"start": "2019Q3", "units": 4}]
    _fails("in the order they start", scheme="stepped", treated=None, start=None, waves=waves)


def test_a_start_outside_the_data_is_refused() -> None:
    _fails("assignment.start", start="2030Q1")


def test_a_pilot_file_with_assignment_loads_from_disk(tmp_path: Path) -> None:
    spec = trial_pilot(scheme="stratified", strata=["region"], treated=6)
    path = write_pilot(tmp_path, spec, trial_frame())
    p = load_panel(load_pilot(path))
    assert p.allocation is not None and p.allocation.scheme == "stratified"


def test_with_first_treated_drops_an_allocation_it_no_longer_follows() -> None:
    p = _panel()
    assert p.with_first_treated(p.first_treated).allocation is p.allocation
    moved = np.roll(p.first_treated, 1)
    assert p.with_first_treated(moved).allocation is None
    assert isinstance(p.subset_units(np.ones(p.n_units, bool)).allocation, Allocation)


def test_unit_table_refuses_units_missing_from_the_data() -> None:
    with pytest.raises(DataError, match="not in the data: nope"):
        unit_table(trial_frame(), "area_code", units=["A0001", "nope"])


def test_strata_listed_by_unit_must_name_units_of_the_data() -> None:
    strata = {
        "north": [f"A{i:04d}" for i in range(1, 13)],
        "south": [f"A{i:04d}" for i in range(13, 25)],
    }
    p = _panel(scheme="stratified", strata=strata, treated=6)
    assert p.allocation is not None and p.allocation.stratum_labels == ("north", "south")
    strata["south"] = [*strata["south"], "B0001"]
    _fails(r"assignment\.strata\.south: 1 unit\(s\) not found .*B0001", scheme="stratified",
           strata=strata, treated=6)  # fmt: skip
