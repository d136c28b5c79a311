"""Simulations on a Dask cluster give exactly the numbers of the local run.

One local cluster of two worker processes serves the module (starting one takes seconds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from pilotlab.catalogue import get
from pilotlab.cli import cli
from pilotlab.data import load_panel
from pilotlab.engine import run_power
from pilotlab.estimators.base import EstimatorOptions
from pilotlab.inference.apply import apply_inference
from pilotlab.parallel import SCHEDULER_ENV, TIMEOUT_ENV, SchedulerError, map_chunks, use_scheduler
from tests.support.microdata import micro_pilot, person_rows, treated_areas
from tests.support.power import history, planned

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as cluster:
        yield str(cluster.scheduler_address)


def _curve(result: object) -> list[tuple[float, float, int]]:
    return [(p.effect, p.power, p.n) for p in result.curve]  # type: ignore[attr-defined]


def test_power_curve_on_two_workers_equals_the_local_run(scheduler: str) -> None:
    # weights make every placebo pilot a refit (the generic path that is distributed)
    data = history(30, 12, seed=4).assign(w=1.0)
    spec = planned(treated=6, post_periods=3, simulations=40, effects=[0.0, 0.5, 1.0])
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"weight": "w"})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = run_power(spec, data, n_jobs=1, time_budget=None)
        with use_scheduler(scheduler):
            remote = run_power(spec, data, n_jobs=1, time_budget=None)
    assert local.path == remote.path == "shift"
    assert _curve(local) == _curve(remote)
    assert local.mde == remote.mde


def test_randomisation_inference_on_two_workers_equals_the_local_run(scheduler: str) -> None:
    rows = person_rows(panel=False, seed=31, areas=12, treated=5)
    spec = micro_pilot(treated=treated_areas(rows, 5), person=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = load_panel(spec, data=rows).complete("y", ())
        opts = EstimatorOptions(inference="permutation", replications=99)
        local = apply_inference(panel, "y", get("twfe"), opts, np.random.default_rng(8))
        with use_scheduler(scheduler):
            remote = apply_inference(panel, "y", get("twfe"), opts, np.random.default_rng(8))
    assert (local.p_value, local.ci_lower, local.ci_upper) == (
        remote.p_value,
        remote.ci_lower,
        remote.ci_upper,
    )


def _square(x: int) -> int:
    return x * x


def test_map_chunks_keeps_the_order_of_the_chunks(scheduler: str) -> None:
    seen: list[int] = []
    with use_scheduler(scheduler):
        out = map_chunks(_square, [(i,) for i in range(7)], on_done=lambda i, r: seen.append(i))
    assert out == [i * i for i in range(7)] and sorted(seen) == list(range(7))
    assert map_chunks(_square, [(i,) for i in range(3)], n_jobs=2) == [0, 1, 4]


@pytest.fixture(autouse=True)
def quick_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "2")


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    with (
        pytest.raises(
            SchedulerError, match=r"cannot reach a Dask scheduler at 'tcp://127\.0\.0\.1:9'"
        ),
        use_scheduler("tcp://127.0.0.1:9"),
    ):
        pass  # pragma: no cover
    with pytest.raises(SchedulerError, match="local:N"), use_scheduler("local:none"):
        pass  # pragma: no cover


@pytest.mark.parametrize("how", ["runner", "subprocess"])
def test_unreachable_scheduler_exit_1_and_nothing_written(tmp_path: Path, how: str) -> None:
    data = history(20, 10, seed=2)
    data.to_csv(tmp_path / "panel.csv", index=False)
    raw = planned(treated=4, simulations=20).model_dump(mode="json", exclude_none=True)
    (tmp_path / "pilot.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    out = tmp_path / "power"
    args = ["power", str(tmp_path / "pilot.yaml"), "-o", str(out), "-q"]
    if how == "runner":
        res = CliRunner().invoke(cli, [*args, "--scheduler", "tcp://127.0.0.1:9"])
        code, text = res.exit_code, res.output
    else:  # named by the environment variable instead
        env = {**os.environ, SCHEDULER_ENV: "tcp://127.0.0.1:9"}
        proc = subprocess.run([sys.executable, "-m", "pilotlab", *args], capture_output=True,
                              text=True, env=env, check=False)  # fmt: skip
        code, text = proc.returncode, proc.stdout + proc.stderr
    assert code == 1, text
    assert "cannot reach a Dask scheduler at 'tcp://127.0.0.1:9'" in text
    assert "Traceback" not in text and not out.exists()
