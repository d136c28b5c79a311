"""Evidence strength (Maryland SMS, pilotlab rubric v2): each criterion can pass and fail, the
level follows the documented rule and is monotone (doing less never scores higher), the pre-test
power is right, and the record validates."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pilotlab import catalogue
from pilotlab.diagnostics.evidence_strength import (
    DOWNGRADES,
    MIN_PRETEST_POWER,
    RUBRIC,
    SCORED_CHECKS,
    evidence_strength,
    pretest_power,
    score_level,
)
from pilotlab.evidence import evidence_record, validate_record
from pilotlab.results import (
    Criterion,
    EventTimeEstimate,
    EvidenceStrength,
    MissingSummary,
    PreTrendTest,
    RobustnessCheck,
)
from tests.support import report as ex


@pytest.fixture(scope="module")
def common():
    return ex.common()


def _crit(es: EvidenceStrength, name: str) -> Criterion:
    c = es.criterion(name)
    assert c is not None, name
    return c


def _agreeing(*, but: str | None = None, finds: bool | None = True) -> tuple:
    """Every scored check, agreeing; ``but`` is left out (``finds="skip"``) or given ``finds``."""
    out = []
    for name in SCORED_CHECKS:
        if name == but:
            if finds == "skip":
                continue
            out.append(RobustnessCheck(name, 0.0, -0.1, 0.1, finds))
        else:
            out.append(RobustnessCheck(name, 0.0, -0.1, 0.1, True))
    return tuple(out)


ALL_AGREE = _agreeing()


def _strong(ev, *, p=0.6, se=0.01, n_treated_clusters=40, checks=ALL_AGREE):
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
    assert es is not None
    assert es.rubric == RUBRIC
    assert "Maryland SMS" in RUBRIC and "What Works Growth" in RUBRIC and "(2016)" in RUBRIC
    assert es.rubric_version == "2"
    assert all(c.reason for c in es.criteria)
    record = es.to_dict()
    assert all(set(c) == {"criterion", "met", "reason"} for c in record["criteria"])


def test_level_3_when_comparability_is_shown(common) -> None:
    es = evidence_strength(_strong(common))
    assert es.level == 3, es
    assert _crit(es, "parallel pre-trends").met is True
    assert _crit(es, "power of the pre-trend test").met is True
    assert _crit(es, "random or quasi-random assignment").met is False
    assert es.downgraded_for == ()


def test_failed_pretrend_gives_level_2(common) -> None:
    es = evidence_strength(_strong(common, p=0.001))
    assert es.level == 2
    assert _crit(es, "parallel pre-trends").met is False
    assert "p = 0.001" in _crit(es, "parallel pre-trends").reason


def test_underpowered_pretest_is_not_evidence_of_parallel_trends(common) -> None:
    es = evidence_strength(_strong(common, se=5.0))
    assert _crit(es, "parallel pre-trends").met is True
    power = _crit(es, "power of the pre-trend test")
    assert power.met is False and "probability" in power.reason
    assert es.level == 2


def test_few_clusters_and_disagreeing_checks_lower_the_level(common) -> None:
    es = evidence_strength(_strong(common, n_treated_clusters=6))
    assert es.level == 2 and es.downgraded_for == ("enough clusters for the inference",)
    assert "too few clusters" in es.description
    bad = _agreeing(but="leave_one_out", finds=False)
    es2 = evidence_strength(_strong(common, n_treated_clusters=6, checks=bad))
    assert es2.level == 1
    assert "leave_one_out disagrees" in _crit(es2, "robustness checks agree").reason
    # inference built for few clusters meets the criterion
    wild = dataclasses.replace(
        _strong(common, n_treated_clusters=6),
        inference=dataclasses.replace(common.inference, name="wild_bootstrap"),
    )
    assert evidence_strength(wild).level == 3


def test_only_small_sample_corrected_cluster_errors_count_as_suited_to_few_clusters(
    common, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ordinary difference in differences with 6 treated clusters and plain (CR1) cluster
    errors is marked down; the same evaluation from an estimator whose capabilities declare its
    cluster errors small-sample corrected (CR2, Bell-McCaffrey) is not: the rubric reads the
    capability, never the estimator's name."""
    ev = _strong(common, n_treated_clusters=6)
    assert ev.inference.name == "cluster"
    plain = evidence_strength(ev)
    c = _crit(plain, "enough clusters for the inference")
    assert c.met is False and "needs at least 10 treated" in c.reason
    assert plain.level == 2 and plain.downgraded_for == ("enough clusters for the inference",)

    entries = catalogue.entries()
    did = entries[ev.estimator.name]
    assert not did.capabilities.small_sample_cluster
    corrected = dataclasses.replace(
        did, capabilities=dataclasses.replace(did.capabilities, small_sample_cluster=True)
    )
    monkeypatch.setattr(catalogue, "entries", lambda: {**entries, did.name: corrected})
    es = evidence_strength(ev)
    c = _crit(es, "enough clusters for the inference")
    assert c.met is True and "corrected for small samples" in c.reason
    assert "CR2" not in c.reason and "Bell" not in c.reason
    assert es.level == 3 and es.downgraded_for == ()
    # the correction is a property of cluster inference only
    other = dataclasses.replace(ev, inference=dataclasses.replace(ev.inference, name="iid"))
    assert _crit(evidence_strength(other), "enough clusters for the inference").met is False


def test_the_randomised_estimator_declares_its_cluster_errors_small_sample_corrected() -> None:
    caps = {name: e.capabilities for name, e in catalogue.entries().items()}
    assert caps["randomised"].small_sample_cluster is True
    assert caps["event_study"].small_sample_cluster is False


def test_missing_data_lowers_the_level(common) -> None:
    ev = _strong(common)
    data = dataclasses.replace(ev.data, missing=(MissingSummary("claimant_rate", 720, 3600),))
    es = evidence_strength(dataclasses.replace(ev, data=data))
    assert _crit(es, "missing data").met is False and es.level == 2


def test_synthetic_house_rule() -> None:
    ev = ex.synthetic()
    ev = dataclasses.replace(
        ev, outcomes=tuple(dataclasses.replace(o, robustness=ALL_AGREE) for o in ev.outcomes)
    )
    es = evidence_strength(ev)
    assert es.house_rule is not None and "pre-period fit" in es.house_rule
    assert es.to_dict()["house_rule"] == es.house_rule
    fit = _crit(es, "pre-period fit")
    assert fit.met is True and es.level == 3
    o = ev.outcomes[0]
    assert o.result.synthetic is not None
    poor = dataclasses.replace(o.result.synthetic, pre_rmspe=5.0)
    ev2 = dataclasses.replace(
        ev,
        outcomes=(dataclasses.replace(o, result=dataclasses.replace(o.result, synthetic=poor)),),
    )
    es2 = evidence_strength(ev2)
    assert _crit(es2, "pre-period fit").met is False and es2.level == 2


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


# ------------------------------------------------------------------ monotone: doing less never pays

CRITERIA = (
    "comparison group",
    "before and after data",
    "parallel pre-trends",
    "power of the pre-trend test",
    "pre-period fit",
    *DOWNGRADES,
)
OUTCOMES_ALL = (True, False, None)
OUTCOMES = st.sampled_from(OUTCOMES_ALL)


@settings(max_examples=300, deadline=None)
@given(met=st.fixed_dictionaries({c: OUTCOMES for c in CRITERIA}), synthetic=st.booleans())
def test_level_is_monotone_in_every_criterion(met: dict, synthetic: bool) -> None:
    """not assessed == not met <= met, for each criterion whatever the others are."""
    for name in CRITERIA:
        levels = {v: score_level({**met, name: v}, synthetic=synthetic)[1] for v in OUTCOMES_ALL}
        assert levels[None] == levels[False] <= levels[True], (name, levels)
        absent = {k: v for k, v in met.items() if k != name}
        assert score_level(absent, synthetic=synthetic)[1] == levels[None]
    base, level, lowered = score_level(met, synthetic=synthetic)
    assert 1 <= level <= base <= 3
    assert level == max(1, base - len(lowered))


@settings(max_examples=60, deadline=None)
@given(
    ran=st.dictionaries(st.sampled_from(SCORED_CHECKS), OUTCOMES),
    name=st.sampled_from(SCORED_CHECKS),
    finds=OUTCOMES,
)
def test_skipping_a_check_never_scores_higher_than_running_it(
    common, ran: dict, name: str, finds: bool | None
) -> None:
    """Over random sets of checks run: dropping any one never raises the level, whatever it found."""
    checks = tuple(RobustnessCheck(n, 0.0, -0.1, 0.1, v) for n, v in ran.items())
    skipped = tuple(c for c in checks if c.check != name)
    run = (*skipped, RobustnessCheck(name, 0.0, -0.1, 0.1, finds))
    lvl_skip = evidence_strength(_strong(common, checks=skipped)).level
    lvl_run = evidence_strength(_strong(common, checks=run)).level
    assert lvl_skip <= lvl_run


@settings(max_examples=40, deadline=None)
@given(
    lo_inf=st.booleans(),
    hi_inf=st.booleans(),
    n_treated=st.sampled_from([3, 40]),
    wild=st.booleans(),
    checks=st.sampled_from([(), ALL_AGREE]),
)
def test_an_unbounded_interval_never_scores_higher(
    common, lo_inf: bool, hi_inf: bool, n_treated: int, wild: bool, checks: tuple
) -> None:
    ev = _strong(common, n_treated_clusters=n_treated, checks=checks)
    if wild:
        ev = dataclasses.replace(
            ev, inference=dataclasses.replace(ev.inference, name="wild_bootstrap")
        )
    o = ev.outcomes[0]
    r = o.result
    wide = dataclasses.replace(
        r,
        ci_lower=-math.inf if lo_inf or not hi_inf else r.ci_lower,
        ci_upper=math.inf if hi_inf else r.ci_upper,
        p_value=1.0,
    )
    bad = dataclasses.replace(ev, outcomes=(dataclasses.replace(o, result=wide),))
    finite, infinite = evidence_strength(ev), evidence_strength(bad)
    assert infinite.level <= finite.level
    assert _crit(infinite, "informative interval").met is False
    if finite.level > 1:
        assert infinite.level < finite.level


def test_no_checks_never_beat_nine_with_one_disagreeing(common) -> None:
    nine = (*ALL_AGREE, *ALL_AGREE[:3], RobustnessCheck("leave_one_out", 0.4, 0.1, 0.7, False))
    assert len(nine) == 9
    none = evidence_strength(_strong(common, checks=()))
    one_bad = evidence_strength(_strong(common, checks=nine))
    assert none.level <= one_bad.level == 2
    assert _crit(none, "robustness checks agree").met is None
    assert none.downgraded_for == ("robustness checks agree",)
    assert "no robustness checks were run" in none.description


def test_wild_bootstrap_with_an_unbounded_interval_does_not_beat_a_finite_one(common) -> None:
    """Few clusters: cluster-robust (finite, too narrow) vs wild bootstrap (infinite, p = 1)."""
    cluster = _strong(common, n_treated_clusters=3)
    o = cluster.outcomes[0]
    wide = dataclasses.replace(o.result, ci_lower=-math.inf, ci_upper=math.inf, p_value=1.0)
    wild = dataclasses.replace(
        cluster,
        inference=dataclasses.replace(cluster.inference, name="wild_bootstrap"),
        outcomes=(dataclasses.replace(o, result=wide),),
    )
    assert evidence_strength(wild).level <= evidence_strength(cluster).level
    assert "unbounded" in evidence_strength(wild).description


def test_reason_says_in_plain_words_what_lowered_the_level(common) -> None:
    es = evidence_strength(
        _strong(common, n_treated_clusters=6, checks=_agreeing(but="honest_did", finds="skip"))
    )
    assert es.level == 1 and es.base_level == 3
    d = es.description
    assert "because of" not in d and "robustness checks agree" not in d
    assert "too few clusters" in d and "the robustness check honest_did was not run" in d
    assert "lowered by 2 levels" in d
    assert "honest_did was not run" in _crit(es, "robustness checks agree").reason
    es2 = evidence_strength(_strong(common, p=0.001))
    assert "parallel pre-trends not met" in es2.description
    bad = _agreeing(but="leave_one_out", finds=False)
    es3 = evidence_strength(_strong(common, checks=bad))
    assert es3.description == (
        "Level 2: a level-3 design, lowered by one level because the robustness check "
        "leave_one_out disagrees with the main estimate (see the criteria)."
    )
    assert "not run" not in _crit(es3, "robustness checks agree").reason
