"""``pilotlab synthesise``: inputs, outputs, bad input, the registry (SQLite and PostgreSQL)."""
# ruff: noqa: F811  (pytest fixtures imported from tests.support.registry)

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.engine.synthesise import gather_and_pool
from pilotlab.evidence import evidence_record
from pilotlab.exceptions import PilotlabError
from pilotlab.registry import Registry
from pilotlab.synthesis import load_schema, meta_analysis
from tests.support.registry import registry_url  # noqa: F401
from tests.support.synthesis import EXTERNAL_CSV, PLACES, place_evaluations, write_places


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_places(tmp_path_factory.mktemp("places"))


def _records(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_pools_the_evidence_files_of_the_metric(places: list[Path]) -> None:
    s = gather_and_pool("claimant_rate", places)
    recs = _records(places)
    y = [r["results"][0]["estimate"] for r in recs]
    se = [r["results"][0]["std_error"] for r in recs]
    direct = meta_analysis(y, se, "reml")
    assert s.metric == "local/claimant_rate" and s.pooled.k == len(PLACES)
    assert s.pooled.estimate == pytest.approx(direct.estimate, rel=1e-12)
    assert s.pooled.hk_ci_lower == pytest.approx(direct.hk_ci_lower, rel=1e-12)
    assert [st.id for st in s.studies] == [p for p, *_ in PLACES]
    assert {st.policy_area for st in s.studies} == {"employment", "welfare"}
    # leave-one-out is the pooled estimate of the others
    other = meta_analysis(y[1:], se[1:], "reml")
    assert s.leave_one_out[0].estimate == pytest.approx(other.estimate, rel=1e-12)
    # the subgroups by policy area pool within each area
    by_area = next(g for g in s.subgroups if g.by == "policy_area")
    emp = meta_analysis(y[:2], se[:2], "reml")
    assert by_area.groups[0].value == "employment"
    assert by_area.groups[0].estimate == pytest.approx(emp.estimate, rel=1e-12)
    assert s.few_studies is not None and "Hartung-Knapp" in s.few_studies


def test_percent_scale_divides_by_each_pre_pilot_mean(places: list[Path]) -> None:
    s = gather_and_pool("local/claimant_rate", places, scale="percent")
    r = _records(places)[0]["results"][0]
    assert s.studies[0].estimate == pytest.approx(100 * r["estimate"] / abs(r["baseline_mean"]))
    assert s.studies[0].std_error == pytest.approx(100 * r["std_error"] / abs(r["baseline_mean"]))
    assert s.unit == "% of the pre-pilot mean"


def test_external_estimates_from_a_confidence_interval(places: list[Path], tmp_path: Path) -> None:
    ext = tmp_path / "ext.csv"
    ext.write_text(EXTERNAL_CSV, encoding="utf-8")
    s = gather_and_pool("claimant_rate", places, external=ext)
    trial = s.studies[-1]
    assert trial.origin == "external" and trial.evidence_level == 5
    assert trial.std_error == pytest.approx(0.76 / (2 * 1.959963984540054))
    # the sensitivity analysis keeps only level 5, one estimate: nothing to pool
    assert [(x.min_level, x.k, x.estimate) for x in s.sensitivity] == [(5, 1, None)]


def test_unknown_metric_in_external_csv_is_pooled_with_a_warning(tmp_path: Path) -> None:
    ext = tmp_path / "ext.csv"
    ext.write_text(
        "id,metric,estimate,std_error,label\n"
        "a,acme/repeat_calls,-2.0,0.5,Study A\nb,acme/repeat_calls,-1.0,0.4,Study B\n"
        "c,local/claimant_rate,-1.0,0.4,Other metric\n",
        encoding="utf-8",
    )
    s = gather_and_pool(
        "acme/repeat_calls", (), external=ext, registry_url=f"sqlite:///{tmp_path / 'none.db'}"
    )
    assert [st.id for st in s.studies] == ["a", "b"] and s.metric_info is None
    assert any("no known outcome framework" in n for n in s.notes)


def test_registry_export_jsonl_is_read(places: list[Path], tmp_path: Path) -> None:
    export = tmp_path / "evidence.jsonl"
    export.write_text("\n".join(json.dumps(r) for r in _records(places)) + "\n", encoding="utf-8")
    s = gather_and_pool("claimant_rate", [tmp_path])
    assert s.pooled.k == len(PLACES)


def test_outputs_are_written_and_valid(
    places: list[Path], tmp_path: Path, runner: CliRunner
) -> None:
    out = tmp_path / "out"
    ext = tmp_path / "ext.csv"
    ext.write_text(EXTERNAL_CSV, encoding="utf-8")
    res = runner.invoke(
        cli,
        ["synthesise", "--metric", "claimant_rate", *map(str, places), "--external", str(ext),
         "--method", "dl", "-o", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Pooled 5 estimates of local/claimant_rate" in res.output
    data = json.loads((out / "synthesis.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, load_schema())
    assert data["method"] == "dl" and data["k"] == 5
    for key in ("estimate", "std_error", "ci_lower", "ci_upper", "tau2", "i2", "q",
                "prediction_lower", "prediction_upper"):  # fmt: skip
        assert isinstance(data[key], float), key
    assert data["hartung_knapp"]["df"] == 4
    assert data["cost_per_outcome"]["k"] == 3  # three places state their costs
    with (out / "synthesis.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["row"] for r in rows][-4:] == [
        "pooled_random_effects", "pooled_hartung_knapp", "prediction_interval", "fixed_effect",
    ]  # fmt: skip
    assert float(rows[-4]["estimate"]) == pytest.approx(data["estimate"])
    html = (out / "synthesis.html").read_text(encoding="utf-8")
    assert 'id="synthesis-forest"' in html and "Prediction for a new place" in html
    assert "The numbers behind this chart" in html  # the table beside the chart
    assert (out / "tables" / "synthesis-studies.csv").is_file()


def test_subprocess_run(places: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "sub"
    proc = subprocess.run(
        [sys.executable, "-m", "pilotlab", "synthesise", "--metric", "local/claimant_rate",
         *map(str, places), "--method", "pm", "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "synthesis.json").read_text(encoding="utf-8"))["method"] == "pm"
    bad = subprocess.run(
        [sys.executable, "-m", "pilotlab", "synthesise", "--metric", "local/claimant_rate",
         str(places[0]), "-o", str(tmp_path / "one")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "at least two" in bad.stderr and not (tmp_path / "one").exists()


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "external.csv"
    p.write_text(text, encoding="utf-8")
    return p


BAD_EXTERNAL = [
    ("id,metric,estimate,label\na,local/claimant_rate,-1,A\n", "missing column(s) std_error"),
    ("id,estimate,std_error,label\na,-1,0.2,A\n", "missing column(s) metric"),
    ("id,metric,estimate,std_error,label\na,local/claimant_rate,-1,0,A\n", "must be positive"),
    ("id,metric,estimate,std_error,label\na,local/claimant_rate,-1,-0.3,A\n", "must be positive"),
    ("id,metric,estimate,std_error,label\na,local/claimant_rate,x,0.3,A\n", "not a number"),
    ("id,metric,estimate,ci_lower,ci_upper,label\na,local/claimant_rate,-1,0.2,-0.5,A\n",
     "not above ci_lower"),
    ("id,metric,estimate,std_error,label,scale\na,local/claimant_rate,-1,0.3,A,percent\n",
     "mixing scales"),
    ("id,metric,estimate,std_error,label,evidence_level\na,local/claimant_rate,-1,0.3,A,7\n",
     "evidence_level '7'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_EXTERNAL)
def test_bad_external_csv_is_a_clear_error_and_nothing_is_written(
    text: str, message: str, places: list[Path], tmp_path: Path, runner: CliRunner
) -> None:
    out = tmp_path / "out"
    res = runner.invoke(
        cli,
        ["synthesise", "--metric", "claimant_rate", *map(str, places), "--external",
         str(_csv(tmp_path, text)), "-o", str(out)],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert message in res.output and "Traceback" not in res.output
    assert "external.csv" in res.output or "--external" in res.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "local/employment_rate"], "no estimate of this metric"),
        (["--metric", "claimant_rate", "missing.json"], "no evidence record there"),
        (["--metric", "claimant_rate", "--frameworks", "nowhere.yaml"], "does not exist"),
    ],
)
def test_bad_requests_are_clear_errors(
    args: list[str], message: str, places: list[Path], tmp_path: Path, runner: CliRunner
) -> None:
    out = tmp_path / "out"
    files = [] if "missing.json" in args else list(map(str, places))
    res = runner.invoke(cli, ["synthesise", *args, *files, "-o", str(out)])
    assert res.exit_code == 1 and message in res.output, res.output
    assert not out.exists()


def test_the_same_pilot_twice_is_refused(places: list[Path], tmp_path: Path) -> None:
    with pytest.raises(PilotlabError, match="more than once"):
        gather_and_pool("claimant_rate", [*places, places[0]])


def test_an_output_folder_of_someone_else_is_left_alone(
    places: list[Path], tmp_path: Path, runner: CliRunner
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "synthesis.html").write_text("my own file", encoding="utf-8")
    res = runner.invoke(
        cli, ["synthesise", "--metric", "claimant_rate", *map(str, places), "-o", str(out)]
    )
    assert res.exit_code == 1
    assert (out / "synthesis.html").read_text(encoding="utf-8") == "my own file"


def test_from_the_registry_and_list_by_metric(
    registry_url: str, tmp_path: Path, runner: CliRunner
) -> None:
    evaluations = place_evaluations()
    with Registry(registry_url) as reg:
        for ev in evaluations:
            reg.register(ev.pilot)  # type: ignore[arg-type]
            reg.record_run(ev.pilot, evidence_record(ev), "a" * 64, {"pilotlab": "test"})  # type: ignore[arg-type]
    out = tmp_path / "from-registry"
    res = runner.invoke(
        cli, ["synthesise", "--metric", "claimant_rate", "--registry", registry_url, "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "synthesis.json").read_text(encoding="utf-8"))
    assert data["k"] == len(PLACES) and {s["origin"] for s in data["studies"]} == {"registry"}
    direct = meta_analysis(
        [ev.outcomes[0].result.estimate for ev in evaluations],
        [ev.outcomes[0].result.std_error for ev in evaluations],
    )
    assert data["estimate"] == pytest.approx(direct.estimate, rel=1e-10)
    listed = runner.invoke(
        cli, ["list", "--metric", "local/claimant_rate", "--registry", registry_url]
    )
    assert listed.exit_code == 0 and all(p in listed.output for p, *_ in PLACES)
    none = runner.invoke(cli, ["list", "--metric", "employment_rate", "--registry", registry_url])
    assert none.exit_code == 0 and "No registered pilot" in none.output
    assert "north-employment" not in none.output


def test_no_registry_and_no_files_is_a_clear_error(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PILOTLAB_REGISTRY_URL", raising=False)
    res = runner.invoke(cli, ["synthesise", "--metric", "claimant_rate", "-o", "out"])
    assert res.exit_code == 1 and "no registry found" in res.output
    assert not (tmp_path / "out").exists() and not (tmp_path / ".pilotlab").exists()


def test_weights_sum_to_100(places: list[Path]) -> None:
    s = gather_and_pool("claimant_rate", places)
    assert np.isclose(sum(s.pooled.weights), 100.0)


def test_records_imported_from_another_registry_are_pooled_with_their_origin(
    tmp_path: Path, runner: CliRunner
) -> None:
    evaluations = place_evaluations()
    a, b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    for url, evs in ((a, evaluations[:2]), (b, evaluations[2:])):
        with Registry(url) as reg:
            for ev in evs:
                reg.register(ev.pilot)  # type: ignore[arg-type]
                reg.record_run(ev.pilot, evidence_record(ev), "a" * 64, {"pilotlab": "test"})  # type: ignore[arg-type]
    with Registry(a) as reg:
        reg.export(tmp_path / "export")
    with Registry(b) as reg:
        reg.import_records(tmp_path / "export" / "evidence.jsonl")
    s = gather_and_pool("claimant_rate", registry_url=b)
    ids = sorted(st.id for st in s.studies)
    assert len(ids) == 4 and ids[0] == "east-welfare"
    assert ids[1].startswith("north-employment (") and ids[1].endswith("a.db)")  # its registry
    assert s.studies[0].design is not None and "_" not in s.studies[0].design  # the title


def test_an_unknown_metric_matches_exactly(tmp_path: Path) -> None:
    ext = tmp_path / "ext.csv"
    ext.write_text(
        "id,metric,estimate,std_error,label\n"
        "a,acme/calls,-2.0,0.5,A\nb,acme/calls,-1.0,0.4,B\nc,other/calls,-9.0,0.4,C\n",
        encoding="utf-8",
    )
    none = f"sqlite:///{tmp_path / 'none.db'}"
    assert [
        st.id for st in gather_and_pool("acme/calls", external=ext, registry_url=none).studies
    ] == ["a", "b"]
    assert len(gather_and_pool("calls", external=ext, registry_url=none).studies) == 3
