"""Learning cycles: a pilot that follows another shows the earlier cycles; the portfolio, chains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.report.portfolio import build_portfolio, cycle_chains
from pilotlab.simulate import make_pilot_panel
from tests.support import pilot_dict, write_pilot


def _cycle(folder: Path, pilot_id: str, effect: float, cycle: dict[str, str] | None) -> Path:
    sim = make_pilot_panel(20, 8, 4, 5, seed=3, effect=effect)
    extra: dict[str, Any] = {"cycle": cycle} if cycle else {}
    spec = pilot_dict(
        id=pilot_id,
        title=f"Reading support, {pilot_id}",
        treatment={"units": list(sim.treated_units), "start": sim.start},
        **extra,
    )
    return write_pilot(folder, spec, sim.data)


def _ok(*args: str) -> str:
    r = CliRunner().invoke(cli, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def test_a_cycle_report_shows_the_earlier_cycles_and_the_portfolio_the_chain(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    one = _cycle(tmp_path / "one", "reading-one", -1.0, None)
    two = _cycle(
        tmp_path / "two",
        "reading-two",
        -0.5,
        {"follows": "reading-one", "change": "Sessions moved into the school day"},
    )
    _ok("register", str(one), "--registry", url)
    _ok("run", str(one), "-o", str(tmp_path / "out-one"), "--registry", url, "-q")
    _ok("register", str(two), "--registry", url)
    _ok("run", str(two), "-o", str(tmp_path / "out-two"), "--registry", url, "-q")
    record = json.loads((tmp_path / "out-two" / "evidence.json").read_text())
    cycle = record["cycle"]
    assert cycle["follows"] == "reading-one" and cycle["registry_checked"] is True
    [earlier] = cycle["earlier"]
    first = json.loads((tmp_path / "out-one" / "evidence.json").read_text())
    assert earlier["pilot_id"] == "reading-one"
    assert earlier["results"][0]["estimate"] == first["results"][0]["estimate"]
    assert earlier["change"] == "Sessions moved into the school day"
    html = (tmp_path / "out-two" / "report.html").read_text()
    assert "Earlier cycles of this pilot" in html
    assert "it follows pilot reading-one" in html and "Sessions moved into the school day" in html
    # the portfolio from the registry shows the chain, oldest first
    out = tmp_path / "portfolio.html"
    _ok("portfolio", "-o", str(out), "--registry", url)
    page = out.read_text()
    assert "Learning cycles" in page and "reading-one → reading-two" in page


def test_chains_use_the_earlier_cycles_carried_by_the_latest_record() -> None:
    latest = {
        "pilot": {"id": "c-three", "title": "Three"},
        "results": [{"outcome": "y", "label": "y", "primary": True, "estimate": 1.0,
                     "ci_lower": 0.5, "ci_upper": 1.5}],
        "evidence_strength": {"level": 5},
        "cycle": {
            "follows": "c-two",
            "change": "B",
            "earlier": [
                {"pilot_id": "c-one", "title": "One", "change": "A", "results": [],
                 "evidence_level": None},
            ],
        },
    }  # fmt: skip
    middle = {
        "pilot": {"id": "c-two", "title": "Two"},
        "results": [],
        "cycle": {"follows": "c-one", "change": "A"},
    }
    [chain] = cycle_chains([latest, middle])
    assert [s["pilot_id"] for s in chain] == ["c-one", "c-two", "c-three"]
    assert [s["change"] for s in chain] == ["", "A", "B"]
    assert chain[0]["result"] == "no run recorded"
    doc = build_portfolio([latest, middle])
    assert doc.section("cycles").tables()[0].rows[0][0] == "c-one → c-two → c-three"
    assert cycle_chains([middle | {"cycle": None}]) == []
