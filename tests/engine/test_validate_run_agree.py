"""``pilotlab validate`` and ``pilotlab run`` agree on random small designs.

Whatever design a user writes, ``validate`` exits 0 exactly when ``run`` does, and neither ever
ends in a traceback: every problem ``run`` meets is one ``validate`` finds first, with the same
clear message.
"""

from __future__ import annotations

import tempfile
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import pilot_dict, write_pilot

ESTIMATORS = [
    "did", "twfe", "event_study", "callaway_santanna", "synthetic_control", "synthetic_did", "auto"
]  # fmt: skip
INFERENCE = {
    "did": ["auto", "cluster", "robust", "iid", "wild_bootstrap", "permutation"],
    "twfe": ["auto", "cluster", "robust", "iid", "wild_bootstrap", "permutation"],
    "event_study": ["auto", "cluster", "robust", "iid", "wild_bootstrap", "permutation"],
    "callaway_santanna": ["auto", "cluster", "permutation"],
    "synthetic_control": ["auto", "placebo", "jackknife", "permutation"],
    "synthetic_did": ["auto", "placebo", "jackknife", "permutation"],
    "auto": ["auto", "cluster", "permutation"],
}
ROBUSTNESS = ["placebo_in_time", "placebo_in_space", "leave_one_out", "alternative_estimators"]


@st.composite
def designs(draw: st.DrawFn) -> tuple[dict[str, Any], pd.DataFrame]:
    """A random small pilot: panel, gaps, weights, anticipation, estimator and inference."""
    n_units = draw(st.integers(4, 30))
    n_periods = draw(st.integers(4, 12))
    n_treated = draw(st.integers(1, n_units - 1))
    start = draw(st.integers(1, n_periods - 1))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    units = [f"U{i:02d}" for i in range(n_units)]
    treated = units[:n_treated]
    rows = [(u, t) for u in units for t in range(2000, 2000 + n_periods)]
    data = pd.DataFrame(rows, columns=["area_code", "period"])
    unit_effect = rng.normal(0, 1, n_units).repeat(n_periods)
    is_treated = data["area_code"].isin(treated).to_numpy()
    post = (data["period"] >= 2000 + start).to_numpy()
    data["outcome"] = (
        10 + unit_effect + 0.1 * (data["period"] - 2000) + 1.0 * (is_treated & post)
        + rng.normal(0, 0.5, len(data))
    )  # fmt: skip
    gap_share = draw(st.sampled_from([0.0, 0.0, 0.05, 0.2, 0.5]))
    if gap_share:
        data = data[rng.random(len(data)) >= gap_share].reset_index(drop=True)
    spec = pilot_dict(
        data={"path": "data.csv", "unit": "area_code", "time": "period"},
        treatment={
            "units": treated,
            "start": 2000 + start,
            "anticipation": draw(st.integers(0, 2)),
        },
    )
    weights = draw(st.sampled_from(["none", "positive", "some_zero", "all_zero"]))
    if weights != "none":
        w = rng.uniform(0.5, 2.0, len(data))
        if weights == "some_zero":
            w[rng.random(len(data)) < 0.3] = 0.0
        elif weights == "all_zero":
            w[:] = 0.0
        data["w"] = w
        spec["data"]["weight"] = "w"
    estimator = draw(st.sampled_from(ESTIMATORS))
    design: dict[str, Any] = {
        "estimator": estimator,
        "inference": {
            "method": draw(st.sampled_from(INFERENCE[estimator])),
            "replications": 99,
            "seed": seed % 10_000,
        },
    }
    if draw(st.booleans()):
        design["robustness"] = draw(st.lists(st.sampled_from(ROBUSTNESS), max_size=2, unique=True))
    spec["design"] = design
    return spec, data


def _ended_cleanly(result: Any) -> bool:
    return "Traceback" not in result.output and (
        result.exception is None or isinstance(result.exception, SystemExit)
    )


def _explain(result: Any) -> str:
    if result.exc_info is None or isinstance(result.exception, SystemExit):
        return result.output
    return result.output + "".join(traceback.format_exception(*result.exc_info))


def check_agreement(spec: dict[str, Any], data: pd.DataFrame) -> None:
    """validate 0 <=> run 0; validate 1 => run 1; never a traceback."""
    from pilotlab.cli import cli

    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        pilot = write_pilot(Path(tmp) / "pilot", spec, data)
        validated = runner.invoke(cli, ["validate", str(pilot)])
        assert _ended_cleanly(validated), _explain(validated)
        assert validated.exit_code in (0, 1), validated.output
        ran = runner.invoke(cli, ["run", str(pilot), "-o", str(Path(tmp) / "out")])
        assert _ended_cleanly(ran), (spec["design"], _explain(ran))
        assert ran.exit_code == validated.exit_code, (
            spec["design"], validated.output, ran.output
        )  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(designs())
def test_validate_and_run_agree(case: tuple[dict[str, Any], pd.DataFrame]) -> None:
    check_agreement(*case)


#: Four areas, seven rows: with unit and period effects no residual degree of freedom is left
#: (one area has a single row), and leaving out an area leaves none for clustered errors.
SATURATED = pd.DataFrame(
    {
        "area_code": ["U00", "U00", "U01", "U02", "U02", "U02", "U03"],
        "period": [2000, 2001, 2002, 2000, 2002, 2003, 2001],
        "outcome": [8.93, 10.04, 7.93, 10.84, 11.44, 12.04, 10.30],
    }
)


def _saturated_pilot(design: dict[str, Any]) -> dict[str, Any]:
    return pilot_dict(
        data={"path": "data.csv", "unit": "area_code", "time": "period"},
        treatment={"units": ["U00"], "start": 2001},
        design=design,
    )


@pytest.mark.parametrize("estimator", ["twfe", "event_study"])
def test_a_wild_bootstrap_without_degrees_of_freedom_is_refused_by_validate_as_by_run(
    estimator: str, tmp_path: Path
) -> None:
    from pilotlab.cli import cli

    spec = _saturated_pilot({"estimator": estimator, "inference": {"method": "wild_bootstrap"}})
    check_agreement(spec, SATURATED)
    pilot = write_pilot(tmp_path / "pilot", spec, SATURATED)
    for command in (["validate", str(pilot)], ["run", str(pilot), "-o", str(tmp_path / "out")]):
        done = CliRunner().invoke(cli, command)
        assert done.exit_code == 1 and done.stdout == "", done.output
        assert "no degrees of freedom remain" in done.stderr, done.stderr
        assert "design.inference.method" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_leave_one_out_refit_without_degrees_of_freedom_is_reported_not_a_crash() -> None:
    check_agreement(
        _saturated_pilot({"estimator": "twfe", "robustness": ["leave_one_out"]}), SATURATED
    )


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(designs())
def test_validate_and_run_agree_many(case: tuple[dict[str, Any], pd.DataFrame]) -> None:
    check_agreement(*case)


def test_pretest_p_value_leaves_out_failed_refits_and_never_divides_by_zero() -> None:
    from pilotlab.diagnostics.pretrend import _p_value

    assert np.isnan(_p_value(1.0, np.array([]), exact=True))
    assert np.isnan(_p_value(1.0, np.array([np.nan, np.nan]), exact=True))
    # a failed re-fit is not evidence against the null: it is left out, not counted as smaller
    assert _p_value(1.0, np.array([1.0, 0.5, np.nan, np.nan]), exact=True) == 0.5
    assert _p_value(1.0, np.array([2.0, np.nan]), exact=False) == 1.0


# ----------------------------------------------------------------------------- found by the probe
def _gappy_four_units() -> tuple[dict[str, Any], pd.DataFrame]:
    """One treated unit of four; U02 has no period before the start, so giving it the treatment
    in a re-assignment leaves the DiD interaction collinear."""
    rng = np.random.default_rng(5)
    rows = [(u, t) for u in ["U00", "U01", "U02", "U03"] for t in range(2000, 2004)]
    data = pd.DataFrame(rows, columns=["area_code", "period"])
    data["outcome"] = rng.normal(10, 1, len(data))
    data = data[~((data["area_code"] == "U02") & (data["period"] == 2000))]
    spec = pilot_dict(
        treatment={"units": ["U00"], "start": 2001},
        design={"estimator": "did", "inference": {"method": "permutation", "replications": 99}},
    )
    return spec, data


def test_degenerate_reassignments_are_left_out_and_counted(tmp_path: Path) -> None:
    from pilotlab.cli import cli

    spec, data = _gappy_four_units()
    check_agreement(spec, data)
    pilot = write_pilot(tmp_path / "pilot", spec, data)
    result = CliRunner().invoke(cli, ["run", str(pilot), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    evidence = (tmp_path / "out" / "evidence.json").read_text()
    assert "1 of 4 possible assignments of treatment were left out" in evidence
    assert "the 3 assignments that can be estimated" in evidence


def test_event_time_without_weighted_treated_rows_is_named(tmp_path: Path) -> None:
    from pilotlab.cli import cli

    rng = np.random.default_rng(1)
    rows = [(f"U{i}", t) for i in range(8) for t in range(2000, 2008)]
    data = pd.DataFrame(rows, columns=["area_code", "period"])
    data["outcome"] = rng.normal(0, 1, len(data))
    data["w"] = 1.0
    data.loc[data["area_code"].isin(["U0", "U1", "U2"]) & (data["period"] == 2007), "w"] = 0.0
    spec = pilot_dict(
        data={"path": "data.csv", "unit": "area_code", "time": "period", "weight": "w"},
        treatment={"units": ["U0", "U1", "U2"], "start": 2004},
        design={"estimator": "event_study"},
    )
    check_agreement(spec, data)
    pilot = write_pilot(tmp_path / "pilot", spec, data)
    result = CliRunner().invoke(cli, ["validate", str(pilot)])
    assert result.exit_code == 1
    assert "event time +3 has no treated observation with a positive weight" in result.output
    assert "design.window" in result.output and "covariate may be constant" not in result.output


def test_collinear_event_time_is_named_not_blamed_on_covariates() -> None:
    from pilotlab.estimators.linear import _collinear_message

    xtx = np.diag([4.0, 3.0, 0.0])
    msg = _collinear_message(xtx, ("e-2", "e+0", "e+1"))
    assert msg.startswith("event time +1 cannot be estimated") and "design.window" in msg
    both = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    msg = _collinear_message(both, ("x1", "x2", "treated"))
    assert "(x1, x2)" in msg


def test_callaway_santanna_without_an_estimable_post_cell_is_a_clear_error(
    tmp_path: Path,
) -> None:
    from pilotlab.cli import cli

    rows = [("U00", 2000), ("U00", 2003), ("U01", 2000), ("U01", 2001), ("U01", 2002)]
    rows += [("U02", 2001), ("U02", 2002), ("U03", 2000), ("U03", 2001), ("U03", 2002)]
    data = pd.DataFrame(rows, columns=["area_code", "period"])
    data["outcome"] = np.linspace(8, 12, len(data))
    spec = pilot_dict(
        treatment={"units": ["U00"], "start": 2002},
        design={"estimator": "callaway_santanna"},
    )
    check_agreement(spec, data)
    pilot = write_pilot(tmp_path / "pilot", spec, data)
    result = CliRunner().invoke(cli, ["validate", str(pilot)])
    assert result.exit_code == 1
    assert "finds no effect after the start that it can estimate" in result.output


@pytest.mark.parametrize("estimator", ["did", "callaway_santanna"])
def test_placebo_in_time_with_anticipation_is_skipped_with_a_reason(
    tmp_path: Path, estimator: str
) -> None:
    """With anticipation the placebo start can fall outside the kept periods: not run, said so."""
    from pilotlab.cli import cli

    rng = np.random.default_rng(2)
    rows = [(f"U{i}", t) for i in range(4) for t in range(2000, 2004)]
    data = pd.DataFrame(rows, columns=["area_code", "period"])
    data["outcome"] = rng.normal(10, 1, len(data))
    spec = pilot_dict(
        treatment={"units": ["U0"], "start": 2003, "anticipation": 1},
        design={"estimator": estimator, "robustness": ["placebo_in_time"]},
    )
    check_agreement(spec, data)
    pilot = write_pilot(tmp_path / "pilot", spec, data)
    result = CliRunner().invoke(cli, ["run", str(pilot), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (
        "placebo start (moved 1 period earlier)" in (tmp_path / "out" / "evidence.json").read_text()
    )


def test_a_nan_in_robustness_details_is_written_as_null(tmp_path: Path) -> None:
    from pilotlab.cli import cli

    rows = [("U00", 2000), ("U00", 2003), ("U01", 2000), ("U01", 2001), ("U01", 2002)]
    rows += [("U02", 2001), ("U02", 2002), ("U03", 2000), ("U03", 2001), ("U03", 2002)]
    rows += [("U03", 2003)]
    data = pd.DataFrame(rows, columns=["area_code", "period"])
    data["outcome"] = [10.79, 11.93, 11.0, 11.06, 11.03, 10.34, 10.28, 8.71, 8.65, 8.50, 8.86]
    spec = pilot_dict(
        treatment={"units": ["U00"], "start": 2001},
        design={
            "estimator": "did",
            "inference": {"method": "cluster"},
            "robustness": ["alternative_estimators"],
        },
    )
    check_agreement(spec, data)
    pilot = write_pilot(tmp_path / "pilot", spec, data)
    result = CliRunner().invoke(cli, ["run", str(pilot), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
