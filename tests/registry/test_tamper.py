"""Tamper evidence against an attacker who has read the source, on SQLite and PostgreSQL.

Each scenario is played twice where it matters: a naive edit (the log is left alone), which
``verify`` catches on its own, and the edit of an attacker who also rewrites the log
consistently, which only a published head or the signing key can catch. The limits are tested
too, so that the README's statement of what verify proves stays true.
"""
# ruff: noqa: F811  (pytest fixtures imported from registry_support)

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from pilotlab.cli import cli
from pilotlab.exceptions import RegistryError
from pilotlab.registry import Registry, chain
from pilotlab.registry.core import now_utc
from pilotlab.registry.tables import SERVICE_TABLES, pilots, registry_info, registry_log
from tests.support.registry import (  # noqa: F401
    drop_append_only_triggers,
    make_evidence,
    make_spec,
    pg_service_role,
    registry_url,
)

KEY = secrets.token_hex(32)
COVARIATES = {"estimator": "did", "covariates": ["population"]}
TABLES = (
    *reversed(SERVICE_TABLES),  # the evidence service's tables refer to the registry's
    "registry_log",
    "cycle_links",
    "allocations",
    "imported_records",
    "status_changes",
    "runs",
    "plan_versions",
    "pilots",
    "registry_info",
    "alembic_version",
)


def _filled(reg: Registry) -> None:
    """Three pilots: amended, run, status changed; one imported record."""
    a, b = make_spec("alpha-pilot"), make_spec("beta-pilot", title="Beta")
    reg.register(a)
    reg.register(b)
    reg.amend(make_spec("alpha-pilot", design=COVARIATES), "add covariate")
    reg.record_run(a, make_evidence(a, -0.1), "a" * 64, {"pilotlab": "0.1.0"})
    reg.record_run(b, make_evidence(b, 0.2), "b" * 64, {"pilotlab": "0.1.0"})
    reg.set_status("beta-pilot", "completed")
    reg.register(make_spec("gamma-pilot"))


def _sql(reg: Registry, *statements: str, **params: Any) -> None:
    """An attacker with database access: drop the triggers, then edit."""
    drop_append_only_triggers(reg)
    with reg.engine.begin() as conn:
        for sql in statements:
            conn.execute(sa.text(sql), params)


def _rechain(reg: Registry, key: chain.Key | None = None) -> None:
    """An attacker who read the source: recompute every row hash and rebuild the whole log
    from the tables as they now are (with ``key`` = a key of their own, or none)."""
    drop_append_only_triggers(reg)
    with reg.engine.begin() as conn:
        for table in chain.APPEND_ONLY:
            for row in conn.execute(sa.select(table)).all():
                conn.execute(
                    sa.update(table)
                    .where(table.c.id == row.id)
                    .values(row_sha256=chain.row_hash(table.name, row._mapping))
                )
        conn.execute(sa.delete(registry_log))
        chain.adopt_existing(conn, reg.registry_id, key, now_utc())


def _pilot_row(reg: Registry, pilot_id: str) -> dict[str, Any]:
    with reg.engine.connect() as conn:
        return dict(conn.execute(sa.select(pilots).where(pilots.c.id == pilot_id)).one()._mapping)


def _truncate(reg: Registry, keep: int, statements: list[str], pilot_row: dict[str, Any]) -> None:
    """Delete the log entries after ``keep`` and the rows they wrote, and put the pilot's row
    back as it was: a consistent prefix of the genuine chain."""
    _sql(reg, *statements, f"DELETE FROM registry_log WHERE seq > {keep}")
    with reg.engine.begin() as conn:
        conn.execute(sa.update(pilots).where(pilots.c.id == pilot_row["id"]).values(**pilot_row))


def _messages(problems: list[Any]) -> str:
    return "\n".join(str(p) for p in problems)


def _edit_plan_with_its_hash(reg: Registry) -> None:
    with reg.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT * FROM plan_versions WHERE pilot_id = 'gamma-pilot' AND version = 1")
        ).one()
    edited = row.plan_json.replace('"alpha":0.05', '"alpha":0.1')
    assert edited != row.plan_json
    values = {**row._mapping, "plan_json": edited}
    values["plan_sha256"] = hashlib.sha256(edited.encode()).hexdigest()
    _sql(
        reg,
        "UPDATE plan_versions SET plan_json = :p, plan_sha256 = :s, row_sha256 = :r WHERE id = :i",
        p=edited,
        s=values["plan_sha256"],
        r=chain.row_hash("plan_versions", values),
        i=row.id,
    )


# ---------------------------------------------------------------------- clean registries


def test_a_clean_registry_verifies_with_its_head_and_key(registry_url: str) -> None:
    with Registry(registry_url, key=KEY) as reg:
        empty = reg.head()
        assert empty.seq == 0 and reg.verify(head=empty) == []
        _filled(reg)
        early = reg.head()
        reg.amend(make_spec("gamma-pilot", design=COVARIATES), "later amendment")
        result = reg.audit(head=str(early))
        assert result.ok, _messages(list(result.problems))
        assert result.entries == result.signed == reg.head().seq == early.seq + 1
        assert reg.verify(head=reg.head()) == [] and reg.verify(head=empty) == []
        assert result.key_id == chain.Key(KEY.encode(), "test").key_id
    with Registry(registry_url) as unsigned_reader:  # no key: signatures not checked, still OK
        result = unsigned_reader.audit()
        assert result.ok and result.signed == result.entries and result.key_id is None


def test_every_write_appends_one_entry_linked_to_the_previous(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        _filled(reg)
        with reg.engine.connect() as conn:
            log = conn.execute(sa.select(registry_log).order_by(registry_log.c.seq)).all()
    kinds = [json.loads(r.entry_json)["kind"] for r in log]
    assert kinds == ["register", "register", "amend", "run", "run", "status", "register"]
    prev = chain.genesis(reg.registry_id)
    for row in log:
        entry = json.loads(row.entry_json)
        assert entry["prev"] == prev and entry["seq"] == row.seq
        assert hashlib.sha256(row.entry_json.encode()).hexdigest() == row.entry_sha256
        assert entry["rows"][-1]["table"] == "pilots"  # the pilot's whole row after the write
        prev = row.entry_sha256


# ---------------------------------------------------------------------- the scenarios


def test_a_plan_edited_with_its_hashes_recomputed(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        _filled(reg)
        published = reg.head()
        _edit_plan_with_its_hash(reg)  # plan_sha256 and row_sha256 recomputed: old checks pass
        problems = reg.verify()
        assert "plan_versions gamma-pilot v1: the row differs from the one log entry" in (
            _messages(problems)
        )
        _rechain(reg)  # ... and the log rebuilt to match
        assert reg.verify() == []  # the limit: nothing left to compare with
        problems = reg.verify(head=published)
        assert [p.table for p in problems] == ["registry_log"]
        assert "the history up to it was rewritten" in problems[0].message


def test_the_latest_version_deleted_with_the_counters_fixed(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        _filled(reg)
        before = _pilot_row(reg, "gamma-pilot")
        keep = reg.head().seq
        reg.amend(make_spec("gamma-pilot", design=COVARIATES), "amendment to hide")
        published = reg.head()
        deletion = "DELETE FROM plan_versions WHERE pilot_id = 'gamma-pilot' AND version = 2"
        _sql(reg, deletion, "UPDATE pilots SET latest_version = 1 WHERE id = 'gamma-pilot'")
        text = _messages(reg.verify())
        assert "the row recorded by log entry 8 is missing: it was deleted" in text
        assert "pilots gamma-pilot: the pilot's record differs from the one log entry 8" in text
        _truncate(reg, keep, [], before)  # the log cut back and the pilot row restored
        assert reg.verify() == []  # a consistent prefix: only a published head shows the loss
        problems = reg.verify(head=published)
        assert len(problems) == 1
        assert "the published head is entry 8, but the log ends at entry 7" in str(problems[0])


def test_the_latest_run_deleted_with_the_counters_fixed(registry_url: str) -> None:
    spec = make_spec("gamma-pilot")
    with Registry(registry_url, key=KEY) as reg:
        _filled(reg)
        before = _pilot_row(reg, "gamma-pilot")
        keep = reg.head().seq
        reg.record_run(spec, make_evidence(spec, 0.9), "c" * 64, {"pilotlab": "0.1.0"})
        published = reg.head()
        counters = "UPDATE pilots SET run_count = 0, last_run_at = NULL WHERE id = 'gamma-pilot'"
        _sql(reg, "DELETE FROM runs WHERE pilot_id = 'gamma-pilot'", counters)
        text = _messages(reg.verify())
        assert "runs #3: the row recorded by log entry 8 is missing" in text
        assert "pilots gamma-pilot: the pilot's record differs" in text
        _truncate(reg, keep, [], before)
        assert reg.verify() == []  # signatures cannot show a cut: every kept entry is genuine
        assert "log ends at entry 7" in _messages(reg.verify(head=published))


def test_status_history_deleted(registry_url: str) -> None:
    with Registry(registry_url, key=KEY) as reg:
        _filled(reg)
        published = reg.head()
        _sql(reg, "DELETE FROM status_changes WHERE pilot_id = 'beta-pilot'")
        text = _messages(reg.verify())
        assert text.count("status_changes #") == 2 and "it was deleted outside pilotlab" in text
        _rechain(reg)
        assert "no log entry is signed with the key given" in _messages(reg.verify())
        assert "rewritten" in _messages(reg.verify(head=published))
    with Registry(registry_url, key=None) as keyless:  # the limit: without head or key, no sign
        assert keyless.verify() == [] and keyless.audit().signed == 0


def test_the_pilots_row_edited(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        _filled(reg)
        published = reg.head()
        _sql(reg, "UPDATE pilots SET title = 'A better title', lead = NULL WHERE id = 'beta-pilot'")
        problems = reg.verify()
        assert [(p.table, p.row) for p in problems] == [("pilots", "beta-pilot")]
        assert "differs from the one log entry 6 recorded after its latest write" in (
            problems[0].message
        )
        _rechain(reg)
        assert reg.verify() == [] and reg.verify(head=published)


def test_rows_inserted_and_log_entries_edited_outside_pilotlab(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        _filled(reg)
        with reg.engine.connect() as conn:
            row = dict(
                conn.execute(sa.text("SELECT * FROM status_changes ORDER BY id DESC LIMIT 1"))
                .one()
                ._mapping
            )
        forged = {**row, "new_status": "withdrawn", "old_status": "completed"}
        forged.pop("id")
        forged["row_sha256"] = chain.row_hash("status_changes", forged)
        _sql(
            reg,
            "INSERT INTO status_changes (pilot_id, old_status, new_status, changed_at, "
            "row_sha256) VALUES (:pilot_id, :old_status, :new_status, :changed_at, :row_sha256)",
            **forged,
        )
        assert "not in the registry log: it was inserted outside pilotlab" in (
            _messages(reg.verify())
        )
    with Registry(registry_url) as reg:
        _sql(
            reg,
            """UPDATE registry_log SET entry_json = replace(entry_json, '"amend"', '"refresh"') """
            "WHERE seq = 3",
        )
        text = _messages(reg.verify())
        assert "registry_log entry 3: the entry does not match its hash" in text
        _sql(reg, "DELETE FROM registry_log WHERE seq = 2")
        text = _messages(reg.verify())
        assert "registry_log entry 3: entry 2 is missing before it" in text
        assert "registry_log entry 3: the entry does not follow the one before it" in text


def test_a_wiped_and_rebuilt_registry(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        _filled(reg)
        published, registry_id = reg.head(), reg.registry_id
        drop_append_only_triggers(reg)
        with reg.engine.begin() as conn:
            for table in TABLES:
                conn.execute(sa.text(f"DROP TABLE {table}"))
    with Registry(registry_url) as rebuilt, rebuilt.engine.begin() as conn:
        conn.execute(  # a fresh schema, with the old registry id copied in
            sa.update(registry_info)
            .where(registry_info.c.key == "registry_id")
            .values(value=registry_id)
        )
    with Registry(registry_url) as rebuilt:
        _filled(rebuilt)  # the same pilots registered again, same order
        assert rebuilt.verify() == []
        assert rebuilt.head().seq == published.seq
        problems = rebuilt.verify(head=published)
        assert len(problems) == 1 and "rewritten" in problems[0].message


def _append_raw(reg: Registry, kind: str, rows: list[dict[str, Any]]) -> None:
    """Append an entry the way an attacker without the key would: correct chain, no signature."""
    with reg.engine.begin() as conn:
        last = conn.execute(
            sa.select(registry_log).order_by(registry_log.c.seq.desc()).limit(1)
        ).one()
        text = chain.entry_text(last.seq + 1, last.entry_sha256, now_utc(), kind, None, rows)
        conn.execute(
            sa.insert(registry_log).values(
                seq=last.seq + 1, entry_json=text, entry_sha256=chain.sha256_text(text)
            )
        )


def test_rechained_without_the_key_in_signed_mode(registry_url: str) -> None:
    with Registry(registry_url, key=KEY) as reg:
        _filled(reg)
        drop_append_only_triggers(reg)
        with reg.engine.begin() as conn:  # edit one entry and its hash, keep its signature
            row = conn.execute(sa.select(registry_log).where(registry_log.c.seq == 1)).one()
            edited = row.entry_json.replace('"register"', '"refresh"')
            conn.execute(
                sa.update(registry_log)
                .where(registry_log.c.seq == 1)
                .values(entry_json=edited, entry_sha256=chain.sha256_text(edited))
            )
        text = _messages(reg.verify())
        assert "registry_log entry 1: the signature does not match" in text
        _edit_plan_with_its_hash(reg)
        _rechain(reg, key=None)  # a consistent chain, but unsigned
        problems = reg.verify()
        assert len(problems) == 1 and "no log entry is signed with the key given" in str(
            problems[0]
        )
        _rechain(reg, key=chain.Key(secrets.token_bytes(32), "the attacker's"))
        text = _messages(reg.verify())
        assert "signed with key id" in text and "not with the key given" in text


def test_a_suffix_written_without_the_key_is_detected(registry_url: str) -> None:
    with Registry(registry_url, key=KEY) as reg:
        _filled(reg)
    with (
        Registry(registry_url, key=None) as reg,  # pilotlab itself refuses to write unsigned
        pytest.raises(RegistryError, match=r"log is signed \(key id [0-9a-f]{16}\).*--key-file"),
    ):
        reg.set_status("gamma-pilot", "completed")
    with (
        Registry(registry_url, key=secrets.token_hex(32)) as reg,
        pytest.raises(RegistryError, match=r"signed with key id .* use the registry's key"),
    ):
        reg.set_status("gamma-pilot", "completed")
    with Registry(registry_url, key=KEY) as reg:
        _append_raw(reg, "status", [])
        problems = reg.verify()
        assert [str(p) for p in problems] == [
            "registry_log entry 8: 1 entry is unsigned after signed entry 1: written without "
            "the key"
        ]


def test_a_short_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RegistryError, match=r"is 5 bytes long; use at least 32 random bytes"):
        Registry(f"sqlite:///{tmp_path / 'r.db'}", key="short")
    monkeypatch.setenv("PILOTLAB_REGISTRY_KEY", "x" * 8)
    with pytest.raises(RegistryError, match=r"\$PILOTLAB_REGISTRY_KEY is 8 bytes long"):
        Registry(f"sqlite:///{tmp_path / 'r.db'}")
    with pytest.raises(RegistryError, match=r"cannot read the registry key file"):
        chain.load_key(tmp_path / "missing.key")


# ---------------------------------------------------------------------- migration of old registries


def test_a_version_1_registry_is_chained_by_the_migration(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        _filled(reg)
        with reg.engine.begin() as conn:  # back to the schema of revision 0001
            for table in reversed(SERVICE_TABLES):  # added by a later revision
                conn.execute(sa.text(f"DROP TABLE {table}"))
            for table in ("cycle_links", "allocations", "registry_log"):  # tables after 0001
                conn.execute(sa.text(f"DROP TABLE {table}"))
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
            counts = {
                t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("pilots", "plan_versions", "runs", "status_changes")
            }
    with Registry(registry_url) as reg:
        result = reg.audit()
        assert result.ok, _messages(list(result.problems))
        assert result.entries == sum(counts.values())  # one entry per row, one per pilot
        with reg.engine.connect() as conn:
            kinds = {
                json.loads(t)["kind"]
                for t in conn.execute(sa.select(registry_log.c.entry_json)).scalars()
            }
        assert kinds == {"adopt"}
        published = reg.head()
        reg.set_status("gamma-pilot", "completed")
        assert reg.verify(head=published) == []
        _sql(reg, "UPDATE runs SET data_sha256 = NULL")
        assert reg.verify()


# ---------------------------------------------------------------------- command line


def test_cli_head_verify_and_key_file(registry_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    key_file = tmp_path / "registry.key"
    key_file.write_text(KEY + "\n")
    with Registry(registry_url, key=KEY) as reg:
        _filled(reg)
    opts = ["--registry", registry_url]
    head = runner.invoke(cli, ["head", *opts]).output.strip()
    res = runner.invoke(cli, ["verify", "--head", head, "--key-file", str(key_file), *opts])
    assert res.exit_code == 0, res.output
    assert "Signatures: checked with key id" in res.output and "7 of 7 entries signed" in res.output
    res = runner.invoke(cli, ["status", "gamma-pilot", "completed", *opts])
    assert res.exit_code == 1 and "log is signed" in res.output and "Traceback" not in res.output
    res = runner.invoke(
        cli, ["status", "gamma-pilot", "completed", "--key-file", str(key_file), *opts]
    )
    assert res.exit_code == 0, res.output
    with Registry(registry_url) as reg:
        _sql(reg, "DELETE FROM registry_log WHERE seq > 7")
        _sql(reg, "UPDATE pilots SET status = 'planned' WHERE id = 'gamma-pilot'")
    res = runner.invoke(cli, ["verify", "--head", head, *opts])
    assert res.exit_code == 1 and "pilots gamma-pilot" in res.output


# ---------------------------------------------------------------------- PostgreSQL roles


@pytest.mark.postgres
def test_the_service_role_cannot_disable_triggers_or_edit_history(
    pg_service_role: tuple[str, str, str], tmp_path: Path
) -> None:
    owner_url, service_url, role = pg_service_role
    res = CliRunner().invoke(
        cli, ["registry", "migrate", "--app-role", role, "--registry", owner_url]
    )
    assert res.exit_code == 0, res.output
    assert f"Role {role} may now read the registry" in res.output
    with Registry(service_url) as app:
        _filled(app)  # every write the service makes is allowed ...
        app.import_records(_export_of_another_registry(tmp_path))
        assert app.verify() == []
        attacks = [
            "ALTER TABLE plan_versions DISABLE TRIGGER ALL",
            "ALTER TABLE registry_log DISABLE TRIGGER registry_log_append_only",
            "DROP TRIGGER plan_versions_append_only ON plan_versions",
            "DROP FUNCTION pilotlab_append_only() CASCADE",
            "UPDATE plan_versions SET reason = 'edited'",
            "DELETE FROM plan_versions WHERE version = 2",
            "DELETE FROM registry_log",
            "UPDATE registry_log SET key_id = NULL",
            "TRUNCATE runs",
            "DELETE FROM pilots",
            "UPDATE pilots SET id = 'renamed'",
            "UPDATE registry_info SET value = 'x'",
            "SET session_replication_role = replica",
        ]
        for sql in attacks:  # ... but none of these
            with (
                pytest.raises(sa.exc.ProgrammingError, match=r"must be owner|permission denied"),
                app.engine.begin() as conn,
            ):
                conn.execute(sa.text(sql))
        assert app.verify() == []
    with (
        Registry(owner_url) as owner,
        pytest.raises(RegistryError, match="owns the registry tables or is a superuser"),
    ):
        owner.grant_service_role(sa.engine.make_url(owner_url).username or "")


@pytest.mark.postgres
def test_the_service_role_cannot_migrate(pg_service_role: tuple[str, str, str]) -> None:
    _owner, service_url, _role = pg_service_role
    with pytest.raises(RegistryError, match=r"pilotlab registry migrate --registry OWNER_URL"):
        Registry(service_url)


def _export_of_another_registry(folder: Path) -> Path:
    with Registry(f"sqlite:///{folder / 'other.db'}", name="Other") as other:
        spec = make_spec("delta-pilot")
        other.register(spec)
        other.record_run(spec, make_evidence(spec), None, {"pilotlab": "0.1.0"})
        other.export(folder / "export")
    return folder / "export"
