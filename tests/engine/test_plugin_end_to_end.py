"""An estimator from another package, installed with pip, runs through every pilotlab command.

The package (tests/support/plugin) declares its estimator only through the entry-point group
``pilotlab.estimators``; nothing in pilotlab names it. Each command runs as a subprocess, as a
user would run it, and the numbers are checked against an independent computation.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pilotlab.simulate import make_pilot_panel
from tests.support import pilot_dict, plugins, write_pilot

pytestmark = pytest.mark.heavy

NAME, TITLE = "change_score", plugins.example_module().TITLE
PRE_USED = 3  # design.options.pre_periods_used
START = 6  # first treated period index (6 periods before, 4 after)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package, installed with pip into a folder of its own."""
    return plugins.install(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installed package whose two entry points are broken: one raises on import, the
    other names something that is not an EstimatorEntry."""
    site = tmp_path_factory.mktemp("broken")
    info = site / "broken_estimators-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-estimators\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[pilotlab.estimators]\nexploding = broken_estimators:ENTRY\n"
        "not_an_entry = broken_estimators_other:ENTRY\n",
        encoding="utf-8",
    )
    (site / "broken_estimators.py").write_text(
        'raise RuntimeError("the example import failure")\n', encoding="utf-8"
    )
    (site / "broken_estimators_other.py").write_text("ENTRY = {'name': 'x'}\n", encoding="utf-8")
    return site


@pytest.fixture(scope="module")
def sim():
    return make_pilot_panel(30, 10, 8, START, effect=1.5, rho=0.3, seed=4)


def _pilot(folder: Path, sim, **design) -> Path:
    spec = pilot_dict(
        treatment={"units": list(sim.treated_units), "start": sim.start},
        design={
            "estimator": NAME,
            "options": {"pre_periods_used": PRE_USED},
            "inference": {"method": "cluster", "replications": 99, "seed": 3},
            **design,
        },
    )
    return write_pilot(folder, spec, sim.data)


def _cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pilotlab", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def _change_scores(data: pd.DataFrame, treated: set[str], first: int, start: int) -> pd.DataFrame:
    """Each area's mean after ``start`` minus its mean over periods ``first..start-1``,
    computed from the data file with pandas alone."""
    periods = sorted(data["period"].unique())
    t = data["period"].map(periods.index)
    after = data[t >= start].groupby("area_code")["outcome"].mean()
    before = data[(t < start) & (t >= first)].groupby("area_code")["outcome"].mean()
    out = (after - before).rename("change").to_frame()
    out["treated"] = out.index.isin(treated).astype(float)
    return out


def _reference(
    data: pd.DataFrame, treated: set[str], first: int, start: int
) -> tuple[float, float]:
    """Estimate and CR1 standard error from statsmodels OLS on the collapsed data."""
    sm = pytest.importorskip("statsmodels.api")
    cs = _change_scores(data, treated, first, start)
    fit = sm.OLS(cs["change"].to_numpy(), sm.add_constant(cs["treated"].to_numpy())).fit(
        cov_type="cluster", cov_kwds={"groups": np.arange(len(cs))}
    )
    return float(fit.params[1]), float(fit.bse[1])


ROBUSTNESS = {
    "cluster": ["placebo_in_time", "placebo_in_space", "leave_one_out", "alternative_estimators"],
    "wild_bootstrap": ["placebo_in_time", "leave_one_out"],
    "permutation": ["placebo_in_time"],
}


@pytest.mark.parametrize("method", ["cluster", "wild_bootstrap", "permutation"])
def test_run_with_each_inference_method(site: Path, sim, tmp_path: Path, method: str) -> None:
    path = _pilot(
        tmp_path / "pilot",
        sim,
        inference={"method": method, "replications": 99, "seed": 3},
        robustness=ROBUSTNESS[method],
    )
    out = tmp_path / "out"
    proc = _cli(plugins.subprocess_env(site), "run", str(path), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"[{NAME}, {method}]" in proc.stdout
    record = json.loads((out / "evidence.json").read_text(encoding="utf-8"))
    assert record["design"]["estimator"] == NAME and record["design"]["inference"] == method
    res = record["results"][0]
    assert res["estimator"] == NAME and res["inference"] == method

    treated = set(sim.treated_units)
    est, se = _reference(sim.data, treated, START - PRE_USED, START)
    assert res["estimate"] == pytest.approx(est, rel=1e-10)
    assert res["std_error"] == pytest.approx(se, rel=1e-8)  # CR1, also kept beside resampling
    all_pre, _ = _reference(sim.data, treated, 0, START)  # design.options was read
    assert abs(all_pre - est) > 1e-3
    assert res["ci_lower"] < res["estimate"] < res["ci_upper"]
    assert 0 <= res["p_value"] <= 1
    if method == "cluster":  # t(G - 1) interval around the CR1 error
        from scipy import stats

        q = stats.t.ppf(0.975, 29)
        assert (res["ci_lower"], res["ci_upper"]) == pytest.approx((est - q * se, est + q * se))

    checks = {c["check"]: c for c in res["robustness"]}
    assert set(ROBUSTNESS[method]) <= {c.split(":")[0] for c in checks}
    placebo = checks["placebo_in_time"]  # start moved 3 periods earlier, pre-period data only
    assert placebo["consistent"] is not None, placebo["description"]
    before = sim.data[sim.data["period"].map(sorted(sim.data["period"].unique()).index) < START]
    p_est, _ = _reference(before, treated, 0, START - 3)
    assert placebo["estimate"] == pytest.approx(p_est, rel=1e-10)
    if "leave_one_out" in checks:
        loo = checks["leave_one_out"]
        dropped = sorted(treated)[0]
        rest = sim.data[sim.data["area_code"] != dropped]
        l_est, _ = _reference(rest, treated - {dropped}, START - PRE_USED, START)
        assert loo["details"]["estimates"][f"unit {dropped}"] == pytest.approx(l_est, rel=1e-10)
    if method == "cluster":
        alts = {c["details"]["estimator"] for n, c in checks.items() if ":" in n}
        assert {"did", "twfe", "event_study"} <= alts and NAME not in alts
        assert checks["placebo_in_space"]["consistent"] is not None

    report = (out / "report.html").read_text(encoding="utf-8")
    assert html.escape(TITLE) in report  # the report names it by its title
    assert (out / "results.csv").is_file()


def test_power_plans_with_it(site: Path, sim, tmp_path: Path) -> None:
    path = _pilot(
        tmp_path / "pilot",
        sim,
        inference={"method": "wild_bootstrap", "replications": 99, "seed": 3},
        power={"post_periods": 2, "simulations": 20},
    )
    out = tmp_path / "power"
    proc = _cli(
        plugins.subprocess_env(site), "power", str(path), "-o", str(out), "--simulations", "20",
        "--time-budget", "30", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"{NAME}, wild_bootstrap" in proc.stdout
    doc = json.loads((out / "power.json").read_text(encoding="utf-8"))
    assert doc["estimator"] == NAME
    assert 0.0 <= doc["false_positive_rate"] <= 1.0
    power = [row["power"] for row in doc["table"]]
    assert power[-1] > power[0]  # larger effects are detected more often
    assert (out / "power.html").is_file()


def test_validate_and_schema_and_a_broken_plugin_beside_it(
    site: Path, broken_site: Path, sim, tmp_path: Path
) -> None:
    """``validate`` and ``schema`` know the installed estimator; a broken package installed
    beside it is named when selected and stops nothing else."""
    env = plugins.subprocess_env(site, broken_site)
    path = _pilot(tmp_path / "ok", sim)
    proc = _cli(env, "validate", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"Estimator: {NAME}. Inference: cluster." in proc.stdout
    proc = _cli(env, "schema", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    enum = json.loads(proc.stdout)["$defs"]["DesignSpec"]["properties"]["estimator"]["enum"]
    assert NAME in enum and "did" in enum and "exploding" not in enum
    for name, why in (
        ("exploding", "RuntimeError: the example import failure"),
        ("not_an_entry", "is a dict, not an EstimatorEntry"),
    ):
        path = _pilot(tmp_path / name, sim, estimator=name, options={})
        proc = _cli(env, "validate", str(path), cwd=tmp_path)
        assert proc.returncode == 1, proc.stdout
        assert f"design.estimator: '{name}' is installed but could not be loaded" in proc.stderr
        assert why in proc.stderr and "broken-estimators" in proc.stderr
        assert "Traceback" not in proc.stderr
