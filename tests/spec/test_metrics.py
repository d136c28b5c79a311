"""Outcomes that name a framework metric, and the costs block of the pilot file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pilotlab.exceptions import SpecError
from pilotlab.spec import load_pilot, parse_pilot, plan_sha256

BASE: dict[str, Any] = {
    "id": "metric-pilot",
    "title": "A pilot",
    "data": {"path": "data.csv", "unit": "area", "time": "period"},
    "treatment": {"units": ["a"], "start": "2024Q1"},
    "outcomes": [{"column": "y"}],
}


def _with(outcome: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {**BASE, "outcomes": [{"column": "y", **outcome}], **top}


def test_metric_fills_direction_and_unit_and_travels_with_the_outcome() -> None:
    spec = parse_pilot(_with({"metric": "local/claimant_rate"}))
    o = spec.outcomes[0]
    assert (o.better, o.units) == ("lower", "percent")
    assert o.framework_metric is not None and o.framework_metric.ref == "local/claimant_rate"
    assert o.framework_metric.framework_version == "1.0.0"
    agreeing = parse_pilot(
        _with({"metric": "local/claimant_rate", "better": "lower", "units": "%"})
    )
    assert agreeing.outcomes[0].units == "%"


@pytest.mark.parametrize(
    ("outcome", "key", "message"),
    [
        ({"metric": "local/claimant_rates"}, "outcomes[0].metric", "is not a metric of the framework 'local'"),
        ({"metric": "acme/x"}, "outcomes[0].metric", "not known (known: local)"),
        ({"metric": "claimant_rate"}, "outcomes[0].metric", "<framework>/<code>"),
        ({"metric": "local/claimant_rate", "better": "higher"}, "outcomes[0].better", "better when lower"),
        ({"metric": "local/claimant_rate", "units": "days"}, "outcomes[0].units", "measured in 'percent'"),
    ],
)  # fmt: skip
def test_disagreement_with_the_framework_is_refused(
    outcome: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(SpecError) as err:
        parse_pilot(_with(outcome), "pilots/x/pilot.yaml")
    text = str(err.value)
    assert text.startswith("pilots/x/pilot.yaml") and f"{key}: " in text and message in text


def test_programme_framework_relative_to_the_pilot_file(tmp_path: Path) -> None:
    fw = {
        "framework": "acme", "version": "1", "title": "Acme",
        "metrics": [{"code": "repeat_calls", "name": "Repeat calls", "definition": "d",
                     "unit": "per 100 calls", "better": "lower", "source": "s"}],
    }  # fmt: skip
    (tmp_path / "frameworks").mkdir()
    (tmp_path / "frameworks" / "acme.yaml").write_text(yaml.safe_dump(fw), encoding="utf-8")
    raw = _with({"metric": "acme/repeat_calls"}, frameworks=["frameworks"])
    (tmp_path / "pilot.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    spec = load_pilot(tmp_path / "pilot.yaml")
    assert spec.outcomes[0].framework_metric is not None
    assert spec.outcomes[0].framework_metric.framework == "acme"
    raw["frameworks"] = ["missing/"]
    (tmp_path / "pilot.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(SpecError, match=r"frameworks: 'missing' does not exist"):
        load_pilot(tmp_path / "pilot.yaml")


def test_plan_hash_unchanged_without_the_new_keys() -> None:
    spec = parse_pilot(BASE)
    plan = spec.plan()
    assert "metric" not in plan["outcomes"][0]
    assert "frameworks" not in plan and "costs" not in plan
    # the hash before outcome frameworks and costs existed (pilotlab 0.1.0 main)
    assert plan_sha256(spec) == "200eb197ff6f2e74098a3df6c14f469079b43b5a51150cc032ff655570f25acd"


COSTS = {"currency": "GBP", "price_year": 2024, "one_off": 1000, "per_period": 100}


@pytest.mark.parametrize(
    ("costs", "key", "message"),
    [
        ({**COSTS, "currency": "EUR"}, "costs.currency", "pounds sterling only"),
        ({**COSTS, "currency": "USD"}, "costs.currency", "convert the costs to GBP"),
        ({**COSTS, "horizon_years": -5}, "costs.horizon_years", "at least 1"),
        ({**COSTS, "horizon_years": 0}, "costs.horizon_years", "at least 1"),
        ({**COSTS, "one_off": -1}, "costs.one_off", "greater than or equal to 0"),
        ({**COSTS, "basis": "per_participant"}, "costs", "'participants' is missing"),
        ({**COSTS, "horizon_years": 3, "benefit_years": 5}, "costs", "longer than horizon_years"),
        ({**COSTS, "discount_rates": [{"from_year": 5, "rate": 0.03}]}, "costs", "from_year 0"),
        (
            {key: v for key, v in COSTS.items() if key != "price_year"},
            "costs.price_year",
            "missing",
        ),
    ],
)
def test_bad_costs_are_refused(costs: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_pilot({**BASE, "costs": costs})
    assert f"{key}: " in str(err.value) and message in str(err.value)


def test_costs_are_part_of_the_plan() -> None:
    a = parse_pilot({**BASE, "costs": COSTS})
    b = parse_pilot({**BASE, "costs": {**COSTS, "one_off": 2000}})
    assert a.costs is not None and a.costs.currency == "GBP"
    assert plan_sha256(a) != plan_sha256(b)


def test_validate_and_run_refuse_bad_metrics_and_costs(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pilotlab.cli import cli

    runner = CliRunner()
    for bad, message in (
        (_with({"metric": "local/claimant_rates"}), "outcomes[0].metric"),
        (_with({"metric": "local/claimant_rate", "units": "days"}), "outcomes[0].units"),
        ({**BASE, "costs": {**COSTS, "currency": "EUR"}}, "costs.currency"),
        ({**BASE, "costs": {**COSTS, "horizon_years": -1}}, "costs.horizon_years"),
    ):
        (tmp_path / "pilot.yaml").write_text(yaml.safe_dump(bad), encoding="utf-8")
        for command in (["validate"], ["run", "-o", str(tmp_path / "out")]):
            res = runner.invoke(cli, [*command, str(tmp_path / "pilot.yaml")])
            assert res.exit_code == 1, res.output
            assert message in res.output and "Traceback" not in res.output
            assert not (tmp_path / "out").exists()
