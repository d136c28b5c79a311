"""The inference pieces wired into evaluate(): auto rule, shared draws, Romano-Wolf, checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from pilotlab import evaluate, load_pilot

EXAMPLE = Path(__file__).resolve().parents[2] / "pilots" / "employment-support"


@pytest.fixture
def pilot_path(tmp_path: Path) -> Path:
    if not EXAMPLE.exists():
        pytest.skip("the example pilot is not in this checkout")
    shutil.copytree(EXAMPLE / "data", tmp_path / "data")
    spec = yaml.safe_load((EXAMPLE / "pilot.yaml").read_text())
    spec["outcomes"][1]["primary"] = True
    spec["design"]["estimator"] = "twfe"
    spec["design"]["multiple_testing"] = "romano_wolf"
    spec["design"]["robustness"] = ["placebo_in_time", "leave_one_out", "honest_did"]
    path = tmp_path / "pilot.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_evaluate_uses_wild_bootstrap_romano_wolf_and_checks(pilot_path: Path) -> None:
    ev = evaluate(load_pilot(pilot_path))
    assert ev.inference.name == "wild_bootstrap"
    assert "6 treated" in ev.inference.reason and "wild cluster restricted" in ev.inference.reason
    prim = [o for o in ev.outcomes if o.primary]
    assert len(prim) == 2
    for o in prim:
        r = o.result
        assert r.inference == "wild_bootstrap"
        assert r.ci_lower < r.estimate < r.ci_upper
        assert o.p_value_adjusted >= r.p_value - 1e-12  # adjustment never lowers a p-value
        names = [c.check for c in o.robustness]
        assert names == ["placebo_in_time", "leave_one_out", "honest_did"]
    # the primary outcome has a real effect in the simulated truth: it survives adjustment
    claimant = next(o for o in prim if o.column == "claimant_rate")
    assert claimant.p_value_adjusted < 0.05
    assert np.isfinite(claimant.robustness[2].details.breakdown_mbar)
