"""Registry: tamper evidence (verify), export/import with provenance, and the CLI commands."""
# ruff: noqa: F811  (pytest fixtures imported from registry_support)

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.exceptions import RegistryError
from pilotlab.registry import Registry
from tests.support.registry import (  # noqa: F401
    count_rows,
    drop_append_only_triggers,
    make_evidence,
    make_spec,
    registry_url,
)

COVARIATES = {"estimator": "did", "covariates": ["population"]}


def _filled(reg: Registry) -> None:
    """Two pilots, one amended, runs for both, one status change."""
    a, b = make_spec("alpha-pilot"), make_spec("beta-pilot", title="Beta")
    reg.register(a)
    reg.register(b)
    reg.amend(make_spec("alpha-pilot", design=COVARIATES), "add covariate")
    reg.record_run(a, make_evidence(a, -0.1), "a" * 64, {"pilotlab": "0.1.0"})
    amended = make_spec("alpha-pilot", design=COVARIATES)
    reg.record_run(amended, make_evidence(amended, -0.3), "a" * 64, {"pilotlab": "0.1.0"})
    reg.record_run(b, make_evidence(b, 0.2), "b" * 64, {"pilotlab": "0.1.0"})
    reg.set_status("beta-pilot", "completed")


def test_an_intact_registry_verifies(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        _filled(reg)
        assert reg.verify() == []


@pytest.mark.parametrize(
    ("sql", "table", "message"),
    [
        (
            "UPDATE plan_versions SET plan_json = replace(plan_json, '0.05', '0.1') "
            "WHERE pilot_id = 'alpha-pilot' AND version = 1",
            "plan_versions",
            "the registered plan does not match its SHA-256",
        ),
        (
            "UPDATE plan_versions SET reason = 'a nicer reason' WHERE version = 2",
            "plan_versions",
            "does not match its row hash",
        ),
        (
            "UPDATE plan_versions SET registered_at = '2020-01-01T00:00:00.000000Z' "
            "WHERE version = 2",
            "plan_versions",
            "does not match its row hash",
        ),
        (
            "DELETE FROM plan_versions WHERE pilot_id = 'gamma-pilot' AND version = 1",
            "plan_versions",
            "version 1 is missing",
        ),
        (
            "UPDATE runs SET evidence_json = replace(evidence_json, '0.2', '0.9') "
            "WHERE pilot_id = 'beta-pilot'",
            "runs",
            "the evidence does not match its SHA-256",
        ),
        (
            "UPDATE runs SET matches_latest = NOT matches_latest WHERE pilot_id = 'beta-pilot'",
            "runs",
            "does not match its row hash",
        ),
        (
            "DELETE FROM runs WHERE pilot_id = 'beta-pilot'",
            "pilots",
            "disagrees with its history (version 1, 0 runs)",
        ),
        (
            "UPDATE status_changes SET new_status = 'withdrawn' WHERE new_status = 'completed'",
            "status_changes",
            "does not match its row hash",
        ),
    ],
)
def test_verify_detects_rows_edited_outside_pilotlab(
    registry_url: str, sql: str, table: str, message: str
) -> None:
    with Registry(registry_url) as reg:
        _filled(reg)
        reg.register(make_spec("gamma-pilot"))  # two versions, no run linked to them
        reg.amend(make_spec("gamma-pilot", design=COVARIATES), "add covariate")
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), reg.engine.begin() as conn:
            conn.execute(sa.text(sql))  # the triggers stop it ...
        drop_append_only_triggers(reg)
        with reg.engine.begin() as conn:  # ... unless an attacker drops them first
            assert conn.execute(sa.text(sql)).rowcount >= 1
        problems = reg.verify()
    assert problems, "the edit went unnoticed"
    assert table in {p.table for p in problems}
    assert any(message in p.message for p in problems), [str(p) for p in problems]


def test_verify_detects_a_plan_edited_together_with_its_hash(registry_url: str) -> None:
    """Rewriting plan_sha256 to match the edited plan still breaks the row hash."""
    with Registry(registry_url) as reg:
        _filled(reg)
        drop_append_only_triggers(reg)
        with reg.engine.begin() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT id, plan_json FROM plan_versions WHERE version = 1 "
                    "AND pilot_id = 'beta-pilot'"
                )
            ).one()
            edited = row.plan_json.replace('"alpha":0.05', '"alpha":0.1')
            assert edited != row.plan_json
            sha = hashlib.sha256(edited.encode()).hexdigest()
            conn.execute(
                sa.text("UPDATE plan_versions SET plan_json = :p, plan_sha256 = :s WHERE id = :i"),
                {"p": edited, "s": sha, "i": row.id},
            )
        problems = reg.verify()
    messages = [(p.table, p.row) for p in problems]
    assert ("plan_versions", "beta-pilot v1") in messages
    assert ("runs", next(p.row for p in problems if p.table == "runs")) in messages  # link


def test_export_writes_jsonl_and_one_csv_row_per_pilot_and_outcome(
    registry_url: str, tmp_path: Path
) -> None:
    with Registry(registry_url, name="North East CA") as reg:
        _filled(reg)
        reg.register(make_spec("gamma-pilot"))  # registered, never run
        summary = reg.export(tmp_path / "export")
        rid = reg.registry_id
    lines = (tmp_path / "export" / "evidence.jsonl").read_text().splitlines()
    records = [json.loads(x) for x in lines]
    assert summary.records == 2 and [r["pilot"]["id"] for r in records] == [
        "alpha-pilot",
        "beta-pilot",
    ]
    alpha = records[0]
    assert alpha["results"][0]["estimate"] == -0.3  # the latest run, not the first
    prov = alpha["provenance"]
    assert (prov["registry_id"], prov["registry_name"], prov["plan_version"]) == (
        rid,
        "North East CA",
        2,
    )
    assert prov["matches_latest"] is True and prov["exported_at"].endswith("Z")
    assert records[1]["provenance"]["pilot_status"] == "completed"  # set after the run
    assert records[1]["pilot"]["status"] == "live"  # the record itself is left as it was run
    with (tmp_path / "export" / "evidence.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert summary.rows == len(rows) == 6  # 3 pilots x 2 outcomes
    assert [(r["pilot_id"], r["outcome"]) for r in rows] == [
        (p, o)
        for p in ("alpha-pilot", "beta-pilot", "gamma-pilot")
        for o in ("claimant_rate", "employment_rate")
    ]
    beta = rows[2]
    assert (beta["status"], beta["estimate"], beta["ci_lower"], beta["mde"], beta["primary"]) == (
        "completed",
        "0.2",
        str(0.2 - 0.2),
        "0.5",
        "True",
    )
    assert beta["evidence_level"] == "3" and beta["plan_matches_registered"] == "True"
    gamma = rows[4]
    assert gamma["estimate"] == "" and gamma["run_id"] == "" and gamma["plan_version"] == "1"


def test_import_keeps_provenance_and_round_trips(registry_url: str, tmp_path: Path) -> None:
    source = Registry(f"sqlite:///{tmp_path / 'authority.db'}", name="North East CA")
    _filled(source)
    source.export(tmp_path / "export")
    exported = {r["pilot"]["id"]: r for r in source.portfolio_records()}
    with Registry(registry_url, name="Department") as dept:
        summary = dept.import_records(tmp_path / "export")
        assert (summary.read, summary.imported, summary.duplicates) == (2, 2, 0)
        assert summary.sources == ("North East CA",)
        again = dept.import_records(tmp_path / "export" / "evidence.jsonl")
        assert (again.imported, again.duplicates) == (0, 2)
        portfolio = dept.portfolio_records()
        assert dept.verify() == []
        assert count_rows(dept)["imported_records"] == 2
    assert [r["pilot"]["id"] for r in portfolio] == ["alpha-pilot", "beta-pilot"]
    for rec in portfolio:
        original = exported[rec["pilot"]["id"]]
        prov, src_prov = rec.pop("provenance"), original.pop("provenance")
        assert rec == original  # the evidence itself round-trips unchanged
        assert prov["registry_id"] == source.registry_id
        assert prov["registry_name"] == "North East CA"
        assert prov["registry_url"] == source.display_url
        assert prov["run_id"] == src_prov["run_id"]
        assert prov["evidence_sha256"] == src_prov["evidence_sha256"]
        assert prov["imported_from"] == str((tmp_path / "export" / "evidence.jsonl").resolve())
        assert prov["imported_at"].endswith("Z")
    with pytest.raises(RegistryError, match="exported from this very registry"):
        source.import_records(tmp_path / "export")
    source.close()


def test_a_record_changed_after_export_is_refused_and_nothing_is_imported(
    registry_url: str, tmp_path: Path
) -> None:
    with Registry(f"sqlite:///{tmp_path / 'authority.db'}") as source:
        _filled(source)
        source.export(tmp_path / "export")
    path = tmp_path / "export" / "evidence.jsonl"
    lines = path.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["results"][0]["estimate"] = -5.0  # a better-looking result
    path.write_text(lines[0] + "\n" + json.dumps(rec) + "\n")
    with Registry(registry_url) as dept:
        with pytest.raises(
            RegistryError,
            match=r"evidence.jsonl:2: the record of pilot "
            r"'beta-pilot' does not match the evidence_sha256",
        ):
            dept.import_records(path)
        assert count_rows(dept)["imported_records"] == 0
        path.write_text("not json\n")
        with pytest.raises(RegistryError, match=r"evidence.jsonl:1: not valid JSON"):
            dept.import_records(path)
        with pytest.raises(RegistryError, match="no such file"):
            dept.import_records(tmp_path / "missing.jsonl")


def test_a_single_evidence_json_can_be_imported(registry_url: str, tmp_path: Path) -> None:
    spec = make_spec("delta-pilot")
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(make_evidence(spec)))
    with Registry(registry_url) as dept:
        s = dept.import_records(path)
        [rec] = dept.portfolio_records()
    assert s.imported == 1 and rec["pilot"]["id"] == "delta-pilot"
    assert rec["provenance"]["registry_name"] == str(path.resolve())


# ---------------------------------------------------------------------- command line


def _pilot_file(folder: Path, **changes: object) -> Path:
    spec = make_spec(**changes)  # validated; written back as YAML
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pilot.yaml"
    raw = spec.model_dump(mode="json", exclude_defaults=True)
    raw["id"] = spec.id
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_cli_register_amend_list_show_status_verify(registry_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    pilot = _pilot_file(tmp_path / "p")
    reg = ["--registry", registry_url]

    res = runner.invoke(cli, ["register", str(pilot), *reg])
    assert res.exit_code == 0, res.output
    assert "Registered ne-employment-support: analysis plan version 1" in res.output
    res = runner.invoke(cli, ["register", str(pilot), *reg])
    assert res.exit_code == 1 and "already registered" in res.output
    assert f"pilotlab amend {pilot}" in res.output and "Traceback" not in res.output

    res = runner.invoke(cli, ["amend", str(pilot), *reg])
    assert res.exit_code == 2 and "--reason" in res.output
    res = runner.invoke(cli, ["amend", str(pilot), "--reason", "nothing", *reg])
    assert res.exit_code == 0 and "unchanged (still version 1" in res.output
    _pilot_file(tmp_path / "p", design=COVARIATES)
    res = runner.invoke(
        cli, ["amend", str(pilot), "--reason", "census update", "--data-seen", *reg]
    )
    assert res.exit_code == 0, res.output
    assert "version 2" in res.output and "design.covariates" in res.output
    assert "seen before the change: yes" in res.output

    res = runner.invoke(cli, ["list", *reg])
    assert res.exit_code == 0
    assert res.output.splitlines()[1].split()[:4] == ["ne-employment-support", "live", "2", "0"]

    res = runner.invoke(cli, ["status", "ne-employment-support", "completed", *reg])
    assert res.exit_code == 0 and "live -> completed" in res.output
    res = runner.invoke(cli, ["status", "ne-employment-support", "paused", *reg])
    assert res.exit_code == 1 and "use one of planned, live" in res.output

    res = runner.invoke(cli, ["show", "ne-employment-support", *reg])
    assert res.exit_code == 0
    assert "census update" in res.output and "initial registration" in res.output
    assert "live" in res.output and "completed" in res.output
    res = runner.invoke(cli, ["show", "nope", *reg])
    assert res.exit_code == 1 and "'nope' is not registered" in res.output

    res = runner.invoke(cli, ["verify", *reg])
    assert res.exit_code == 0 and "intact" in res.output
    head = runner.invoke(cli, ["head", *reg]).output.strip()
    assert f"Head: {head} " in res.output
    res = runner.invoke(cli, ["verify", "--head", head, *reg])
    assert res.exit_code == 0 and f"Published head {head}: still in the chain" in res.output
    res = runner.invoke(cli, ["verify", "--head", "12:abc", *reg])
    assert res.exit_code == 1 and "is not a registry head; give SEQ:SHA256" in res.output
    with Registry(registry_url) as r:
        drop_append_only_triggers(r)
        with r.engine.begin() as conn:
            conn.execute(sa.text("UPDATE plan_versions SET data_seen = false"))
    res = runner.invoke(cli, ["verify", *reg])
    assert res.exit_code == 1
    assert "2 problems found" in res.output and "ne-employment-support v2" in res.output
    assert (
        "does not match its row hash" in res.output
        and "differs from the one log entry" in res.output
    )


def test_cli_export_import_and_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    source = f"sqlite:///{tmp_path / 'a.db'}"
    with Registry(source) as reg:
        _filled(reg)
    res = runner.invoke(cli, ["export", "-o", str(tmp_path / "out"), "--registry", source])
    assert res.exit_code == 0 and "Exported 2 evidence records" in res.output
    assert "4 pilot x outcome rows" in res.output
    monkeypatch.setenv("PILOTLAB_REGISTRY_URL", f"sqlite:///{tmp_path / 'dept.db'}")
    res = runner.invoke(cli, ["import", str(tmp_path / "out" / "evidence.jsonl")])
    assert res.exit_code == 0 and "Imported 2 of 2 records" in res.output
    res = runner.invoke(cli, ["list"])
    assert "No pilots registered" in res.output and "dept.db" in res.output
    res = runner.invoke(cli, ["list", "--registry", "mysql://x@y/z"])
    assert res.exit_code == 1 and "uses mysql" in res.output


def test_open_existing_never_creates_a_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pilotlab.registry.service import open_existing

    monkeypatch.delenv("PILOTLAB_REGISTRY_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert open_existing() is None
    assert not (tmp_path / ".pilotlab").exists()
    Registry().close()
    reg = open_existing()
    assert reg is not None and reg.display_url.endswith(".pilotlab/registry.db")
    reg.close()
    with pytest.raises(RegistryError, match="not a database URL"):
        open_existing("nonsense")


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["show", "some-pilot"],
        ["export", "-o", "out"],
        ["status", "some-pilot", "closed"],
        ["verify"],
        ["head"],
    ],
    ids=lambda a: a[0],
)
def test_reading_or_changing_a_registry_that_is_not_there_is_an_error_and_creates_nothing(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PILOTLAB_REGISTRY_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nowhere" / "registry.db"
    res = CliRunner().invoke(cli, [*args, "--registry", f"sqlite:///{missing}"])
    assert res.exit_code == 1, res.output
    assert f"there is no registry at {missing}" in res.output
    assert "pilotlab register pilot.yaml" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, args)  # the default registry, .pilotlab/registry.db
    assert res.exit_code == 1 and "there is no registry at" in res.output
    assert list(tmp_path.iterdir()) == []


def test_export_from_a_registry_that_is_not_there_as_a_subprocess(tmp_path: Path) -> None:
    import subprocess
    import sys

    missing = tmp_path / "registry.db"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pilotlab",
            "export",
            "-o",
            str(tmp_path / "out"),
            "--registry",
            f"sqlite:///{missing}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "there is no registry at" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr and list(tmp_path.iterdir()) == []
