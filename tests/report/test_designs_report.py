"""The imputation and Sun & Abraham estimators, and the pre-trend test's power, as the reader and
the evidence record see them."""

from __future__ import annotations

import warnings

import pytest

import pilotlab
from pilotlab import catalogue
from pilotlab.evidence import evidence_record, validate_record
from pilotlab.report import build
from pilotlab.report.text import find_jargon
from pilotlab.simulate import make_pilot_panel
from tests.support.report import _spec


def _evaluate(estimator: str):
    sim = make_pilot_panel(
        80, 16, 40, [5, 8, 11], -1.0, freq="quarter", first_period="2018Q1", seed=4,
        outcome="referrals",
    )  # fmt: skip
    spec = _spec(
        [],
        None,
        [{"column": "referrals", "label": "Referrals", "units": "referrals", "primary": True}],
        adoption=sim.adoption,
        estimator=estimator,
        robustness=["alternative_estimators"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pilotlab.evaluate(spec, data=sim.data)


@pytest.fixture(scope="module", params=["imputation", "sun_abraham"])
def evaluation(request: pytest.FixtureRequest):
    return _evaluate(request.param)


def _main_text(doc) -> str:
    return " ".join(str(b.to_dict()) for s in doc.main for b in s.blocks)


def test_estimator_named_by_title_with_its_assumptions(evaluation) -> None:
    doc = build(evaluation)
    entry = catalogue.get(evaluation.estimator.name)
    text = _main_text(doc)
    assert entry.title in text or entry.title.split(" (")[0] in text
    for sentence in entry.assumptions:
        assert sentence in text


def test_pre_trend_power_in_plain_words_and_in_the_annex(evaluation) -> None:
    r = evaluation.outcomes[0].result
    assert r.pre_trend is not None and r.pre_trend.power is not None
    doc = build(evaluation)
    text = _main_text(doc)
    assert "How much that check could see" in text
    assert "80% of the time" in text
    main_para = next(
        b.text
        for s in doc.main
        for b in s.blocks
        if hasattr(b, "text") and "How much that check could see" in b.text
    )
    assert not find_jargon(main_para)
    tables = [t for t in doc.tables() if t.id.startswith("pretrend-power")]
    assert len(tables) == 1 and len(tables[0].rows) == 2
    assert "Roth 2022" in tables[0].caption


def test_evidence_record_carries_the_power_and_validates(evaluation) -> None:
    record = evidence_record(evaluation)
    validate_record(record)
    power = record["results"][0]["pre_trend"]["power"]
    p = evaluation.outcomes[0].result.pre_trend.power
    assert power["slope_80_wald"] == pytest.approx(p.slope_80_wald)
    assert power["event_times"] == list(p.event_times)


def test_alternative_estimators_include_the_other_new_one(evaluation) -> None:
    checks = {c.check for c in evaluation.outcomes[0].robustness}
    other = "sun_abraham" if evaluation.estimator.name == "imputation" else "imputation"
    assert f"alternative_estimators:{other}" in checks
    assert "alternative_estimators:callaway_santanna" in checks
