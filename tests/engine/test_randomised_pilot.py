"""A randomised pilot through evaluate: the design's estimator, inference and reasons."""

from __future__ import annotations

import warnings

import pytest

from pilotlab.engine import evaluate
from pilotlab.spec.load import parse_pilot
from tests.support.trial import trial_frame, trial_pilot

PERIODS = tuple(f"{y}Q{q}" for y in (2018, 2019, 2020) for q in (1, 2, 3, 4))


def _evaluate(method: str = "auto", **assignment: object):  # type: ignore[no-untyped-def]
    raw = trial_pilot(**{"start": "2020Q1", **assignment})
    raw["design"] = {"inference": {"method": method, "replications": 199}}
    spec = parse_pilot(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate(spec, trial_frame(n_units=36, periods=PERIODS, seed=4))


def test_a_stratified_pilot_is_analysed_by_the_randomised_estimator() -> None:
    ev = _evaluate(scheme="stratified", strata=["region"], treated=18)
    o = ev.outcomes[0]
    assert o.result.estimator == "randomised" and o.result.inference == "cluster"
    assert o.result.randomised is not None and o.result.randomised.blocks == "strata"
    assert "drawn at random" in ev.estimator.reason and "Bell" in ev.inference.reason


def test_randomisation_inference_re_draws_the_pairs() -> None:
    ev = _evaluate("permutation", scheme="pairs", treated=None, pairs_on=["outcome"])
    r = ev.outcomes[0].result
    assert r.inference == "permutation" and r.inference_details is not None
    assert r.inference_details.path == "scheme" and "pairs scheme" in r.inference_details.sentence


def test_a_stepped_roll_out_uses_the_staggered_estimator_over_re_drawn_wave_orders() -> None:
    waves = [{"start": "2019Q3", "units": 12}, {"start": "2020Q1", "units": 12},
             {"start": "2020Q3", "units": 12}]  # fmt: skip
    ev = _evaluate("permutation", scheme="stepped", treated=None, start=None, strata=["region"],
                   waves=waves)  # fmt: skip
    r = ev.outcomes[0].result
    assert r.estimator == "callaway_santanna" and "randomised into 3 waves" in ev.estimator.reason
    assert r.inference == "permutation" and r.inference_details is not None
    assert "stepped scheme" in r.inference_details.sentence
    assert r.staggered is not None and r.staggered.comparison == "not_yet_treated"


@pytest.mark.parametrize("scheme", ["complete", "rerandomise"])
def test_several_arms_are_reported_each_against_control(scheme: str) -> None:
    extra = {"balance": {"on": ["outcome"], "max_std_diff": 0.3}} if scheme == "rerandomise" else {}
    ev = _evaluate(scheme=scheme, arms=["control", "a", "b"], treated={"a": 12, "b": 12}, **extra)
    t = ev.outcomes[0].result.randomised
    assert t is not None and [a.arm for a in t.arms] == ["a", "b"] and t.multiplicity == "holm"
