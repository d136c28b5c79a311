"""The trial summary of a randomised pilot: flow, attrition, contamination, balance, level 5."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pilotlab.data import load_panel
from pilotlab.diagnostics.trial_evidence import trial_criteria, trial_level
from pilotlab.engine import evaluate
from pilotlab.engine.trial import RegisteredDesign, check_allocation
from pilotlab.exceptions import DataError
from pilotlab.registry.records import AllocationRecord
from pilotlab.results import AllocationCheck, Criterion, TrialSummary
from pilotlab.spec import load_pilot
from tests.support import write_pilot
from tests.support.trial import trial_frame, trial_pilot


def _pilot(tmp_path: Path, data: pd.DataFrame, **extra: Any) -> Any:
    raw = trial_pilot(scheme="stratified", strata=["region"], treated=6, **extra)
    raw["trial"] = {"received": "got"}
    return load_pilot(write_pilot(tmp_path, raw, data))


@pytest.fixture
def trial(tmp_path: Path) -> tuple[Any, pd.DataFrame, list[str], list[str]]:
    """A stratified trial where one treated unit never had the intervention, one control unit
    crossed over in 2020Q2, and one control unit has no outcome after the start."""
    data = trial_frame()
    data["got"] = 0
    spec = _pilot(tmp_path, data)
    alloc = load_panel(spec).allocation
    assert alloc is not None
    treated = [u for u, c in zip(alloc.units, alloc.codes, strict=True) if c == 1]
    control = [u for u, c in zip(alloc.units, alloc.codes, strict=True) if c == 0]
    post = data["period"] >= "2020Q1"
    data.loc[data["area_code"].isin(treated[1:]) & post, "got"] = 1
    data.loc[(data["area_code"] == control[0]) & (data["period"] == "2020Q2"), "got"] = 1
    data.loc[(data["area_code"] == control[1]) & post, "outcome"] = np.nan
    data.to_csv(tmp_path / "data.csv", index=False)
    return load_pilot(tmp_path / "pilot.yaml"), data, treated, control


def test_the_flow_counts_every_unit_and_gives_each_loss_its_reason(trial: Any) -> None:
    spec, _data, treated, control = trial
    t = evaluate(spec).trial
    assert t is not None
    flow = {f.group: (f.allocated, f.received, f.analysed) for f in t.flow}
    assert flow == {"control": (18, 17, 17), "treated": (6, 5, 6)}
    losses = {(loss.group, loss.stage, loss.reason): loss.units for loss in t.losses}
    assert losses == {
        ("control", "received", "crossed over: had the intervention while allocated to control"): (
            control[0],
        ),
        ("control", "analysed", "no outcome data after the start"): (control[1],),
        ("treated", "received", "did not have the intervention in every period it was scheduled"): (
            treated[0],
        ),
    }
    assert sorted(t.crossovers) == sorted(
        [
            (control[0], "control", "treated"),
            (treated[0], "treated", "not the intervention in every period it was scheduled"),
        ]
    )
    assert t.attrition == pytest.approx(1 / 24)
    assert t.differential_attrition == pytest.approx(1 / 18)
    assert t.crossover_share == pytest.approx(2 / 24)
    # the per-protocol analysis leaves out both units that did not get their allocation
    [pp] = t.per_protocol
    assert pp.n_units == 24 - 2 - 1 and pp.estimate is not None


def test_balance_is_the_standardised_difference_of_the_analysed_units(trial: Any) -> None:
    spec, data, treated, control = trial
    t = evaluate(spec).trial
    assert t is not None
    pre = data[data["period"] < "2020Q1"].groupby("area_code")
    analysed = [u for u in treated + control if u != control[1]]
    rows = {(b.variable, b.group): b for b in t.balance}
    for var in ("outcome",):
        m = pre[var].mean().loc[analysed]
        tr, co = m.loc[[u for u in treated]], m.loc[[u for u in control if u != control[1]]]
        b = rows[(var, "treated")]
        assert b.mean_group == pytest.approx(tr.mean())
        assert b.mean_comparison == pytest.approx(co.mean())
        assert b.std_diff == pytest.approx((tr.mean() - co.mean()) / m.std(ddof=1))
    assert t.balance_p is not None and 0 < t.balance_p <= 1 and t.balance_draws == 2000


def test_contamination_above_the_threshold_keeps_the_trial_below_level_5(trial: Any) -> None:
    spec, *_ = trial
    ev = evaluate(spec)
    es = ev.evidence_strength
    assert es is not None and es.max_level == 5
    crit = es.criterion("contamination")
    assert crit is not None and crit.met is False and "2 of 24" in crit.reason
    assert es.level <= 3 and "not scored as a trial because" in es.description
    assert "contamination" in es.description.split(";")[0]


def _summary(**changes: Any) -> TrialSummary:
    base = TrialSummary(
        scheme="complete",
        seed=1,
        sha256="a" * 64,
        groups=("control", "treated"),
        starts=(None, "2020Q1"),
        stepped=False,
        in_data=40,
        eligible=40,
        flow=(),
        losses=(),
        crossovers=(),
        received_column="got",
        balance=(),
        attrition=0.0,
        attrition_by_group=(("control", 0.0), ("treated", 0.0)),
        differential_attrition=0.0,
        registration=AllocationCheck(True, "a" * 64, "a" * 64, 1, "2026-01-01", True),
        balance_p=0.5,
        balance_draws=2000,
    )
    return replace(base, **changes)


def _with_balance(t: TrialSummary) -> TrialSummary:
    from pilotlab.results import BalanceRow, FlowRow

    return replace(
        t,
        balance=(BalanceRow("y", "treated", "control", 20, 20, 1.0, 0.9, 0.1),),
        flow=(FlowRow("control", 20, 20, 20, False), FlowRow("treated", 20, 20, 20, True)),
    )


DOWNGRADES_MET = [
    Criterion("enough clusters for the inference", True, ""),
    Criterion("informative interval", True, ""),
    Criterion("missing data", True, ""),
]


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        ({}, None),
        ({"registration": AllocationCheck(False, "a" * 64)}, "allocation registered"),
        ({"balance_p": 0.01}, "balance at baseline"),
        ({"attrition": 0.25}, "attrition"),
        ({"differential_attrition": 0.15}, "attrition"),
        ({"received_column": None}, "contamination"),
        ({"crossovers": (("u", "treated", "not"),) * 3}, "contamination"),
    ],
)
def test_level_5_needs_every_trial_check_each_with_its_reason(
    changes: dict[str, Any], failed: str | None
) -> None:
    t = _with_balance(_summary(**changes))
    criteria = trial_criteria(t) + DOWNGRADES_MET
    assert all(c.reason for c in criteria[:5])
    base, level, lowered, note = trial_level(criteria, (2, 2, []))
    if failed is None:
        assert (base, level, lowered, note) == (5, 5, [], None)
    else:
        assert (base, level) == (2, 2)  # scored as the comparison-group design it still is
        assert note is not None and failed in note


def test_each_implementation_weakness_lowers_a_trial_by_one_level() -> None:
    t = _with_balance(_summary())
    weak = [
        replace(c, met=False) if c.criterion == "informative interval" else c
        for c in DOWNGRADES_MET
    ]
    assert trial_level(trial_criteria(t) + weak, (3, 3, []))[:3] == (5, 4, ["informative interval"])
    none = [replace(c, met=None) for c in DOWNGRADES_MET]
    assert trial_level(trial_criteria(t) + none, (3, 3, []))[1] == 2


def test_the_registered_allocation_is_checked_by_hash(tmp_path: Path) -> None:
    spec = _pilot(tmp_path, trial_frame().assign(got=0))
    alloc = load_panel(spec).allocation
    assert alloc is not None
    record = AllocationRecord(
        spec.id, 1, alloc.scheme, alloc.seed, alloc.n_units, alloc.sha256, "p" * 64, None, None,
        "2026-01-01T00:00:00Z",
        {"units": [{"unit": u, "stratum": s} for u, s in zip(alloc.units, alloc.table()["stratum"], strict=True)]},
    )  # fmt: skip
    ok = check_allocation(spec, alloc, [record])
    assert ok.matches is True and ok.version == 1
    assert check_allocation(spec, alloc, []).registered is False
    moved = replace(record, allocation_sha256="b" * 64, seed=alloc.seed + 1)
    with pytest.raises(DataError, match=r"the seed is 7, registered 8"):
        check_allocation(spec, alloc, [moved])
    units = [dict(u) for u in record.document["units"]]
    units[0]["stratum"] = "elsewhere"
    with pytest.raises(DataError, match=r"moved 1 unit\(s\) between strata \(A0001 from elsewhere"):
        check_allocation(spec, alloc, [replace(moved, seed=alloc.seed, document={"units": units})])


def test_evaluate_refuses_an_allocation_that_is_not_the_registered_one(tmp_path: Path) -> None:
    spec = _pilot(tmp_path, trial_frame().assign(got=0))
    alloc = load_panel(spec).allocation
    assert alloc is not None
    other = AllocationRecord(
        spec.id, 1, "complete", 99, alloc.n_units, "c" * 64, "p" * 64, None, None, "2026", {}
    )
    with pytest.raises(DataError, match=r"is not the one registered"):
        evaluate(spec, registered=RegisteredDesign((other,), (), checked=True))


def test_a_small_well_run_trial_under_corrected_cluster_errors_reaches_level_5(
    tmp_path: Path,
) -> None:
    """24 units, 6 treated: too few clusters for ordinary cluster-robust errors, but the
    randomised estimator's cluster errors are small-sample corrected, so nothing lowers it."""
    data = trial_frame().assign(got=0)
    spec = _pilot(tmp_path, data)
    alloc = load_panel(spec).allocation
    assert alloc is not None
    treated = [u for u, c in zip(alloc.units, alloc.codes, strict=True) if c == 1]
    data.loc[data["area_code"].isin(treated) & (data["period"] >= "2020Q1"), "got"] = 1
    data.to_csv(tmp_path / "data.csv", index=False)
    spec = load_pilot(tmp_path / "pilot.yaml")
    record = AllocationRecord(
        spec.id, 1, alloc.scheme, alloc.seed, alloc.n_units, alloc.sha256, "p" * 64, None, None,
        "2026-01-01T00:00:00Z",
        {"units": [{"unit": u, "stratum": s} for u, s in zip(alloc.units, alloc.table()["stratum"], strict=True)]},
    )  # fmt: skip
    ev = evaluate(spec, registered=RegisteredDesign((record,), (), checked=True))
    assert ev.estimator.name == "randomised" and ev.inference.name == "cluster"
    es = ev.evidence_strength
    assert es is not None
    met = {c.criterion: c.met for c in es.criteria}
    for name in ("balance at baseline", "attrition", "contamination", "allocation registered"):
        assert met[name] is True, name
    assert ev.data.treated_clusters < 10  # too few for uncorrected cluster-robust errors
    clusters = es.criterion("enough clusters for the inference")
    assert clusters is not None and clusters.met is True
    assert "corrected for small samples" in clusters.reason
    assert "CR2" not in clusters.reason and "Bell" not in clusters.reason  # plain English
    assert (es.level, es.downgraded_for) == (5, ()), es.description
