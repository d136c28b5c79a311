"""evaluate(): the auto rules, multiple testing, the evidence record and reproducibility."""

from __future__ import annotations

import json
import warnings

import pytest

from pilotlab.data import panel_from_frame
from pilotlab.engine import choose_estimator, evaluate
from pilotlab.estimators import ESTIMATORS
from pilotlab.evidence import evidence_json, evidence_record, validate_record
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict


def _spec(sim, **kw):
    treatment = kw.pop("treatment", {"units": list(sim.treated_units), "start": sim.start})
    return parse_pilot(pilot_dict(treatment=treatment, **kw))


def _choice(sim, **kw):
    spec = _spec(sim, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return choose_estimator(panel_from_frame(sim.data, spec), spec.design.estimator)


def test_auto_common_start_uses_event_study() -> None:
    sim = make_pilot_panel(50, 12, 10, 8, seed=1)
    c = _choice(sim)
    assert c.name == "event_study" and "10 units started at the same time" in c.reason


def test_auto_two_periods_uses_did() -> None:
    sim = make_pilot_panel(50, 2, 10, 1, seed=1)
    assert _choice(sim).name == "did"


def test_auto_staggered() -> None:
    sim = make_pilot_panel(50, 12, 10, [5, 8], seed=1)
    c = _choice(sim, treatment={"adoption": sim.adoption})
    expected = "callaway_santanna" if "callaway_santanna" in ESTIMATORS else "twfe"
    assert c.name == expected and "different" in c.reason


@pytest.mark.skipif("synthetic_did" not in ESTIMATORS, reason="synthetic_did not registered")
def test_auto_one_treated_unit_long_pre_period_uses_synthetic_did() -> None:
    sim = make_pilot_panel(40, 20, 1, 12, seed=1)
    c = _choice(sim)
    assert c.name == "synthetic_did" and "Only 1 area was treated" in c.reason


def test_explicit_estimator_is_used() -> None:
    sim = make_pilot_panel(50, 12, 10, 8, seed=1)
    c = _choice(sim, design={"estimator": "twfe"})
    assert c.name == "twfe" and "specifies" in c.reason


def _three_outcomes():
    sim = make_pilot_panel(60, 12, 12, 8, effect=0.8, seed=2)
    df = sim.data.assign(second=sim.data["outcome"] * 0.5 + 1, third=sim.data["outcome"] * -1)
    outcomes = [
        {"column": "outcome", "primary": True},
        {"column": "second", "primary": True},
        {"column": "third", "primary": False},
    ]
    return sim, df, outcomes


@pytest.mark.parametrize("method", ["holm", "bh", "none"])
def test_multiple_testing_over_primary_outcomes(method: str) -> None:
    from statsmodels.stats.multitest import multipletests

    sim, df, outcomes = _three_outcomes()
    ev = evaluate(_spec(sim, outcomes=outcomes, design={"multiple_testing": method}), data=df)
    raw = [o.result.p_value for o in ev.outcomes]
    adj = [o.p_value_adjusted for o in ev.outcomes]
    if method == "none":
        assert adj == raw
    else:
        expected = multipletests(raw[:2], method={"holm": "holm", "bh": "fdr_bh"}[method])[1]
        assert adj[:2] == pytest.approx(list(expected))
    assert adj[2] == raw[2]  # secondary outcomes are not in the family


def test_evidence_record_validates_and_is_reproducible() -> None:
    pytest.importorskip("jsonschema")
    sim, df, outcomes = _three_outcomes()
    spec = _spec(sim, outcomes=outcomes)
    a, b = evaluate(spec, data=df), evaluate(spec, data=df)
    rec = evidence_record(a)
    validate_record(rec)
    text = evidence_json(a)
    assert "NaN" not in text and json.loads(text)["schema"] == "pilotlab.evidence/1"
    ra, rb = json.loads(evidence_json(a)), json.loads(evidence_json(b))
    ra.pop("generated_at"), rb.pop("generated_at")
    assert ra == rb
    r0 = rec["results"][0]
    assert r0["relative_effect"] == pytest.approx(r0["estimate"] / r0["baseline_mean"])
    assert rec["data"]["treated_units"] == 12 and rec["plan"]["sha256"] == a.plan.sha256
    assert r0["ci_lower"] < r0["estimate"] < r0["ci_upper"]
    assert r0["inference"] == a.inference.name == rec["design"]["inference"]


def test_tidy_has_one_row_per_outcome() -> None:
    sim, df, outcomes = _three_outcomes()
    tidy = evaluate(_spec(sim, outcomes=outcomes), data=df).tidy()
    assert list(tidy["outcome"]) == ["outcome", "second", "third"]
    assert {"estimate", "p_value_adjusted", "relative_effect", "primary"} <= set(tidy.columns)


def test_design_sensitivity_is_reported_for_a_common_start() -> None:
    """The analytic MDE of the design, from pre-period data only, reaches the evidence record."""
    import numpy as np

    from pilotlab.power import analytic_mde

    sim = make_pilot_panel(80, 16, 8, 10, effect=2.0, seed=3)
    spec = _spec(sim, outcomes=[{"column": "outcome", "primary": True, "mde": 0.5}])
    ev = evaluate(spec, data=sim.data)
    m = ev.diagnostics.design_mde["outcome"]
    Y = sim.data.sort_values(["area_code", "period"])["outcome"].to_numpy().reshape(80, 16)[:, :10]
    expected = analytic_mde(Y, pre=10, post=6, n_treated=8, df=79)
    assert m.mde == pytest.approx(expected.mde)
    assert m.declared_mde == 0.5 and m.pre_periods == 10 and m.post_periods == 6
    rec = evidence_record(ev)
    block = rec["results"][0]["design_mde"]
    assert block == {**expected.to_dict(), "target_power": m.target_power, "declared_mde": 0.5}
    assert list(block) == [*expected.to_dict(), "target_power", "declared_mde"]
    assert np.isfinite(m.rho)
    staggered = make_pilot_panel(80, 16, 8, [8, 11], seed=3)
    ev2 = evaluate(
        _spec(staggered, treatment={"adoption": staggered.adoption}), data=staggered.data
    )
    assert not ev2.diagnostics.design_mde
