"""Evidence strength (Maryland SMS, pilotlab rubric v1): each criterion can pass and fail, the
level follows the documented rule, the pre-test power is right, and the record validates."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

import report_helpers as ex
from pilotlab.diagnostics.evidence_strength import (
    MIN_PRETEST_POWER,
    RUBRIC,
    evidence_strength,
    pretest_power,
)
from pilotlab.evidence import evidence_record, validate_record
from pilotlab.results import EventTimeEstimate, PreTrendTest, RobustnessCheck


@pytest.fixture(scope="module")
def common():
    return ex.common()


def _crit(es: dict, name: str) -> dict:
    return next(c for c in es["criteria"] if c["criterion"] == name)


def _strong(ev, *, p=0.6, se=0.01, n_treated_clusters=40, checks=()):
    """The example made into a design that meets every criterion (then each test breaks one)."""
    o = ev.outcomes[0]
    es = tuple(
        EventTimeEstimate(e, 0.0, se, -2 * se, 2 * se, reference=(e == -1)) for e in range(-8, 8)
    )
    r = dataclasses.replace(o.result, event_study=es, pre_trend=PreTrendTest("wald", 5.0, 7, p))
    data = dataclasses.replace(ev.data, clusters=150, treated_clusters=n_treated_clusters)
    return dataclasses.replace(
        ev, data=data, outcomes=(dataclasses.replace(o, result=r, robustness=checks),)
    )


def test_rubric_is_named_and_versioned(common) -> None:
    es = common.evidence_strength
    assert es["rubric"] == RUBRIC
    assert "Maryland SMS" in RUBRIC and "What Works Growth" in RUBRIC and "(2016)" in RUBRIC
    assert es["rubric_version"] == "1"
    assert all(set(c) == {"criterion", "met", "reason"} and c["reason"] for c in es["criteria"])


def test_level_3_when_comparability_is_shown(common) -> None:
    ok = (RobustnessCheck("placebo_in_time", 0.0, -0.1, 0.1, True),)
    es = evidence_strength(_strong(common, checks=ok))
    assert es["level"] == 3, es
    assert _crit(es, "parallel pre-trends")["met"] is True
    assert _crit(es, "power of the pre-trend test")["met"] is True
    assert _crit(es, "random or quasi-random assignment")["met"] is False
    assert es["downgraded_for"] == []


def test_failed_pretrend_gives_level_2(common) -> None:
    es = evidence_strength(_strong(common, p=0.001))
    assert es["level"] == 2
    assert _crit(es, "parallel pre-trends")["met"] is False
    assert "p = 0.001" in _crit(es, "parallel pre-trends")["reason"]


def test_underpowered_pretest_is_not_evidence_of_parallel_trends(common) -> None:
    es = evidence_strength(_strong(common, se=5.0))
    assert _crit(es, "parallel pre-trends")["met"] is True
    power = _crit(es, "power of the pre-trend test")
    assert power["met"] is False and "probability" in power["reason"]
    assert es["level"] == 2


def test_few_clusters_and_disagreeing_checks_lower_the_level(common) -> None:
    es = evidence_strength(_strong(common, n_treated_clusters=6))
    assert es["level"] == 2 and es["downgraded_for"] == ["enough clusters for the inference"]
    bad = (RobustnessCheck("leave_one_out", 0.5, 0.1, 0.9, False),)
    es2 = evidence_strength(_strong(common, n_treated_clusters=6, checks=bad))
    assert es2["level"] == 1
    assert "leave_one_out" in _crit(es2, "robustness checks agree")["reason"]
    # inference built for few clusters meets the criterion
    wild = dataclasses.replace(
        _strong(common, n_treated_clusters=6),
        inference=dataclasses.replace(common.inference, name="wild_bootstrap"),
    )
    assert evidence_strength(wild)["level"] == 3


def test_missing_data_lowers_the_level(common) -> None:
    ev = _strong(common)
    data = dataclasses.replace(
        ev.data, missing=({"outcome": "claimant_rate", "n_missing": 720, "n_total": 3600},)
    )
    es = evidence_strength(dataclasses.replace(ev, data=data))
    assert _crit(es, "missing data")["met"] is False and es["level"] == 2


def test_synthetic_house_rule() -> None:
    ev = ex.synthetic()
    es = ev.evidence_strength
    assert "house_rule" in es and "pre-period fit" in es["house_rule"]
    fit = _crit(es, "pre-period fit")
    assert fit["met"] is True and es["level"] == 3
    o = ev.outcomes[0]
    poor = dict(o.result.details, pre_rmspe=5.0)
    ev2 = dataclasses.replace(
        ev, outcomes=(dataclasses.replace(o, result=dataclasses.replace(o.result, details=poor)),)
    )
    es2 = evidence_strength(ev2)
    assert _crit(es2, "pre-period fit")["met"] is False and es2["level"] == 2


def test_pretest_power_matches_simulation() -> None:
    """Power from the non-central chi-square equals the rejection rate of the Wald test."""
    rng = np.random.default_rng(7)
    e = np.arange(-8, -1)  # pre-periods, -1 is the reference
    se = np.linspace(0.2, 0.4, e.size)
    violation, post = 0.5, list(range(8))
    p = pretest_power(e, se, violation, 0.05, post)
    slope = violation / np.mean(np.asarray(post) + 1.0)
    draws = rng.normal(slope * (e + 1.0), se, size=(20_000, e.size))
    w = ((draws / se) ** 2).sum(axis=1)
    sim = float(np.mean(w > stats.chi2.ppf(0.95, e.size)))
    assert abs(sim - p) < 4 * math.sqrt(p * (1 - p) / 20_000) + 1e-3
    assert 0.05 < p < 1
    # more precise estimates give more power; no violation gives NaN (nothing to detect)
    assert pretest_power(e, se / 2, violation, 0.05, post) > p
    assert math.isnan(pretest_power(e, se, 0.0, 0.05, post))
    assert MIN_PRETEST_POWER == 0.8


def test_record_with_strength_validates(common) -> None:
    pytest.importorskip("jsonschema")
    for ev in (common, ex.synthetic(), ex.three_outcomes()):
        rec = evidence_record(ev)
        assert rec["evidence_strength"]["level"] in (1, 2, 3)
        validate_record(rec)
