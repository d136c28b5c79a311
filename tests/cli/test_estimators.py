"""``pilotlab estimators``: every installed estimator with its title and what it can do."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pilotlab import catalogue
from pilotlab.catalogue import Capabilities, EstimatorEntry
from pilotlab.cli import cli
from pilotlab.estimators import ESTIMATORS
from tests.engine.test_choices import TrimOptions, _fit


def test_lists_every_installed_estimator_in_plain_words() -> None:
    res = CliRunner().invoke(cli, ["estimators"])
    assert res.exit_code == 0, res.output
    assert f"{len(catalogue.entries())} estimators are installed" in res.output
    for entry in catalogue.entries().values():
        assert f"\n{entry.name}: {entry.title}\n" in res.output
    block = res.output.split("\ntwfe: ")[1]
    assert "wild_bootstrap: wild cluster bootstrap" in block
    assert "Data (data.layout): panel or repeated cross-section or person-level microdata." in block
    assert "Not for staggered roll-outs" in block
    synthetic = res.output.split("\nsynthetic_did: ")[1].split("\n\n")[0]
    assert "synthetic control family" in synthetic and "wild_bootstrap" not in synthetic
    assert "Chosen by auto for one to three treated units" in synthetic
    assert "Data (data.layout): panel." in synthetic


def test_json_lists_names_capabilities_and_inference() -> None:
    res = CliRunner().invoke(cli, ["estimators", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert [d["name"] for d in doc] == list(catalogue.names())
    cs = next(d for d in doc if d["name"] == "callaway_santanna")
    assert cs["title"] == ESTIMATORS["callaway_santanna"].title
    assert cs["staggered"] is True and cs["auto"] == "staggered"
    assert cs["inference"] == ["cluster", "permutation"]


def test_a_third_party_estimator_is_listed_with_its_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = EstimatorEntry(
        name="trimmed_did",
        title="trimmed difference in differences",
        fit=_fit,
        description="A difference in differences that reads its own options",
        capabilities=Capabilities(inference=("robust",)),
        options=TrimOptions,
    )
    catalogue.entries()
    monkeypatch.setitem(catalogue._REGISTERED, entry.name, entry)
    res = CliRunner().invoke(cli, ["estimators"])
    assert res.exit_code == 0, res.output
    block = res.output.split("\ntrimmed_did: trimmed difference in differences\n")[1]
    block = block.split("\n\n")[0]
    assert block.startswith("  A difference in differences that reads its own options.\n")
    assert "Its own options (design.options): label, trim." in block
    assert "robust: heteroskedasticity-robust" in block and "cluster:" not in block
