"""Goodman-Bacon decomposition: castle-doctrine reference numbers and identities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pilotlab.diagnostics.bacon import bacon_decomposition
from pilotlab.exceptions import DataError
from tests.support import shared_data
from tests.support.cs import make_panel


@pytest.fixture(scope="module")
def castle() -> pd.DataFrame:
    df = pd.read_csv(shared_data("castle_bacondecomp.csv"))
    first = df[df.post == 1].groupby("state").year.min()
    return df.assign(first_treated=df.state.map(first).fillna(0).astype(int))


def _panel(df: pd.DataFrame, outcome: str = "l_homicide"):
    return make_panel(
        df, unit="state", time="year", first_treated="first_treated", outcomes=(outcome,)
    )


def test_castle_twfe_and_weights_match_bacondecomp(castle: pd.DataFrame) -> None:
    res = bacon_decomposition(_panel(castle), "l_homicide")
    assert res.twfe_estimate == pytest.approx(0.0818116169, abs=1e-9)
    by = res.by_type.set_index("type")
    assert by.loc["treated_vs_never", "weight"] == pytest.approx(0.90833857, abs=1e-8)
    assert by.loc["earlier_vs_later", "weight"] == pytest.approx(0.05976325, abs=1e-8)
    assert by.loc["later_vs_earlier", "weight"] == pytest.approx(0.03189818, abs=1e-8)
    row = res.table[(res.table.treated == "2006") & (res.table.control == "never treated")]
    assert row.estimate.item() == pytest.approx(0.06823587, abs=1e-8)
    assert row.weight.item() == pytest.approx(0.5923947, abs=1e-7)
    assert res.forbidden_weight == pytest.approx(0.03189818, abs=1e-8)


def test_weights_sum_to_one_and_reproduce_twfe(castle: pd.DataFrame) -> None:
    res = bacon_decomposition(_panel(castle), "l_homicide")
    assert res.table.weight.sum() == pytest.approx(1.0, abs=1e-12)
    assert (res.table.weight * res.table.estimate).sum() == pytest.approx(
        res.twfe_estimate, abs=1e-12
    )
    assert (res.table.weight > 0).all()


@pytest.mark.parametrize("seed", range(5))
def test_identity_with_always_treated_units(seed: int) -> None:
    """Random staggered panels incl. always-treated units: the 2x2s add up to TWFE exactly."""
    rng = np.random.default_rng(seed)
    n, T = 60, 9
    first = rng.choice([0, 2, 4, 5, 7, 99], size=n)  # 0 = always treated, 99 = never
    u = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(T), n)
    y = (
        rng.normal(size=n)[u]
        + 0.3 * t
        + (t >= first[u]) * (1 + 0.2 * (t - first[u]))
        + rng.normal(size=u.size)
    )
    df = pd.DataFrame({"unit": u, "time": t, "y": y, "ft": first[u]})
    res = bacon_decomposition(
        make_panel(
            df, unit="unit", time="time", first_treated="ft", outcomes=("y",), never_value=99
        ),
        "y",
    )
    assert res.table.weight.sum() == pytest.approx(1.0, abs=1e-10)
    assert (res.table.weight * res.table.estimate).sum() == pytest.approx(
        res.twfe_estimate, abs=1e-10
    )
    assert "later_vs_always" in set(res.by_type.type)


def test_unbalanced_panel_is_refused(castle: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="balanced panel"):
        bacon_decomposition(_panel(castle.iloc[1:]), "l_homicide")
