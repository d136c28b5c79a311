"""Writing the power report: staged, and never over a file pilotlab did not write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pilotlab.engine import run_power, write_power_report
from pilotlab.exceptions import PilotlabError
from pilotlab.outputs import STAGING_PREFIX
from tests.support.power import history, planned


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return run_power(planned(treated=4, post_periods=3, simulations=40), history(30, 12, seed=3))


def test_power_report_is_written_and_rewritten(tmp_path: Path, result) -> None:  # type: ignore[no-untyped-def]
    pj, ph = write_power_report(result, tmp_path / "plan")
    assert json.loads(pj.read_text(encoding="utf-8")) == json.loads(
        json.dumps(result.to_dict(), ensure_ascii=False)
    )
    assert ph.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    write_power_report(result, tmp_path / "plan")  # its own files: replaced
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


def test_power_report_never_overwrites_a_users_file(tmp_path: Path, result) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan"
    out.mkdir()
    (out / "power.html").write_text("my own page", encoding="utf-8")
    with pytest.raises(PilotlabError, match=r"^out_dir: .*holds 'power.html', which pilotlab"):
        write_power_report(result, out)
    assert (out / "power.html").read_text(encoding="utf-8") == "my own page"
    assert sorted(p.name for p in out.iterdir()) == ["power.html"]
