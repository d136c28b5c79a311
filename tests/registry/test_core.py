"""Registry: registration, amendments, plan status, runs, status; on SQLite and PostgreSQL."""
# ruff: noqa: F811  (pytest fixtures imported from registry_support)

from __future__ import annotations

import json
import math

import pytest
import sqlalchemy as sa

from pilotlab.exceptions import RegistryError
from pilotlab.registry import Registry
from pilotlab.registry.diff import changed_paths
from pilotlab.spec import canonical_json, plan_sha256
from tests.support.registry import count_rows, make_evidence, make_spec, registry_url  # noqa: F401

COVARIATES = {"estimator": "did", "alpha": 0.05, "covariates": ["population"]}


def test_register_stores_plan_version_1(registry_url: str) -> None:
    spec = make_spec()
    with Registry(registry_url) as reg:
        v = reg.register(spec)
        assert (v.pilot_id, v.version, v.reason, v.data_seen) == (spec.id, 1, None, False)
        assert v.plan_sha256 == plan_sha256(spec)
        assert v.registered_at.endswith("Z")
        with reg.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT plan_json FROM plan_versions")).scalar_one()
        assert stored == canonical_json(spec.plan())
        record = reg.show(spec.id).record
        assert record["title"] == spec.title
        assert record["lead"] == "North East Combined Authority"
        assert record["partners"] == ["Department for Work and Pensions"]
        assert record["start_date"] == "2024-04-01"
        assert record["publication"] == "within 12 months of the end date"
        assert record["outcomes"][0] == {
            "column": "claimant_rate",
            "label": None,
            "primary": True,
            "better": "lower",
            "mde": 0.5,
            "transform": "none",
            "units": None,
        }
        assert (
            record["design_type"]
            == "quasi-experimental: difference in differences (before and after, pilot and comparison), common start"
        )


def test_register_twice_is_refused_and_points_to_amend(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        reg.register(make_spec())
        before = count_rows(reg)
        with pytest.raises(RegistryError, match=r"already registered \(plan version 1.*amend"):
            reg.register(make_spec(design=COVARIATES))
        assert count_rows(reg) == before


def test_amend_adds_a_version_only_when_the_plan_changes(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        v1 = reg.register(make_spec())
        same = reg.amend(make_spec(summary="Reworded summary: not part of the plan."), "typo")
        assert not same.created and same.version == 1 and same.plan_sha256 == v1.plan_sha256
        assert reg.show("ne-employment-support").record["summary"].startswith("Reworded")
        v2 = reg.amend(make_spec(design=COVARIATES), "  add a covariate  ", data_seen=True)
        assert (v2.version, v2.created, v2.reason, v2.data_seen) == (
            2,
            True,
            "add a covariate",
            True,
        )
        assert v2.changes == ("design.covariates",)
        v3 = reg.amend(make_spec(), "back to the registered plan")
        assert v3.version == 3 and v3.plan_sha256 == v1.plan_sha256
        assert [v.version for v in reg.show("ne-employment-support").versions] == [1, 2, 3]


@pytest.mark.parametrize("reason", ["", "   "])
def test_amend_needs_a_reason(registry_url: str, reason: str) -> None:
    with Registry(registry_url) as reg:
        reg.register(make_spec())
        with pytest.raises(RegistryError, match=r"needs a reason.*--reason"):
            reg.amend(make_spec(design=COVARIATES), reason)


def test_unknown_pilot_errors_suggest_close_ids(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        reg.register(make_spec())
        with pytest.raises(
            RegistryError,
            match=r"'ne-employment-suport' is not registered.*"
            r"did you mean ne-employment-support.*pilotlab register",
        ):
            reg.show("ne-employment-suport")
        with pytest.raises(RegistryError, match=r"'other' is not registered"):
            reg.amend(make_spec("other"), "x")
        with pytest.raises(RegistryError, match=r"'other' is not registered"):
            reg.record_run(make_spec("other"), {}, None, {})


def test_plan_status_lists_deviations_and_unregistered_changes(registry_url: str) -> None:
    base = make_spec()
    with Registry(registry_url) as reg:
        assert not reg.plan_status(base).registered
        assert reg.plan_status(base).to_evidence()["version"] is None
        reg.register(base)
        st = reg.plan_status(base)
        assert st.matches_registered and st.matched_version == 1 and st.deviations == ()
        amended = make_spec(design=COVARIATES)
        reg.amend(amended, "population changed after the 2021 census", data_seen=False)
        outcomes = [
            {"column": "claimant_rate", "primary": True, "better": "lower", "mde": 0.3},
            {"column": "employment_rate", "mde": 1.0},
        ]
        amended2 = make_spec(design=COVARIATES, outcomes=outcomes)
        reg.amend(amended2, "smaller minimum effect agreed with DWP", data_seen=True)

        st = reg.plan_status(amended2)
        assert (st.latest_version, st.matched_version, st.matches_registered) == (3, 3, True)
        assert [d.items for d in st.deviations] == [("design.covariates",), ("outcomes[0].mde",)]
        assert [d.data_seen for d in st.deviations] == [False, True]
        assert st.deviations[1].reason == "smaller minimum effect agreed with DWP"
        block = st.to_evidence()
        assert block["sha256"] == plan_sha256(amended2)
        assert block["registered_at"] == reg.show(base.id).versions[0].registered_at
        assert block["deviations"][0]["item"] == "design.covariates"
        assert json.loads(json.dumps(block)) == block

        old = reg.plan_status(base)  # running the version-1 plan after two amendments
        assert (old.matched_version, old.matches_registered) == (1, False)
        assert old.unregistered_changes == ("design.covariates", "outcomes[0].mde")
        edited = reg.plan_status(make_spec(design={**COVARIATES, "alpha": 0.1}, outcomes=outcomes))
        assert edited.matched_version is None and edited.unregistered_changes == ("design.alpha",)


def test_record_run_links_the_matching_plan_version(registry_url: str) -> None:
    base, amended = make_spec(), make_spec(design=COVARIATES)
    with Registry(registry_url) as reg:
        reg.register(base)
        r1 = reg.record_run(
            base,
            make_evidence(base),
            "a" * 64,
            {"pilotlab": "0.1.0"},
            started_at="2026-11-25T10:00:00Z",
        )
        assert (r1.plan_version, r1.matches_latest, r1.data_sha256) == (1, True, "a" * 64)
        reg.amend(amended, "add covariate")
        r2 = reg.record_run(base, make_evidence(base), "a" * 64, {"pilotlab": "0.1.0"})
        assert (r2.plan_version, r2.matches_latest) == (1, False)
        r3 = reg.record_run(amended, make_evidence(amended), "b" * 64, {"pilotlab": "0.1.0"})
        assert (r3.plan_version, r3.matches_latest) == (2, True)
        unregistered = make_spec(design={**COVARIATES, "alpha": 0.1})
        r4 = reg.record_run(unregistered, make_evidence(unregistered), None, {})
        assert (r4.plan_version, r4.matches_latest) == (None, False)
        history = reg.show(base.id)
        assert [r.run_id for r in history.runs] == [r1.run_id, r2.run_id, r3.run_id, r4.run_id]
        assert history.runs[0].started_at == "2026-11-25T10:00:00Z"
        assert history.runs[0].software == {"pilotlab": "0.1.0"}
        summary = reg.list_pilots()[0]
        assert (summary.runs, summary.latest_version, summary.last_run_at) == (4, 2, r4.recorded_at)


def test_record_run_rejects_bad_evidence_without_writing(registry_url: str) -> None:
    spec = make_spec()
    with Registry(registry_url) as reg:
        reg.register(spec)
        before = count_rows(reg)
        with pytest.raises(RegistryError, match=r"evidence record is for pilot 'other'"):
            reg.record_run(spec, {"pilot": {"id": "other"}}, None, {})
        with pytest.raises(RegistryError, match=r"plan.sha256 \(000000000000...\) is not the plan"):
            reg.record_run(spec, {"plan": {"sha256": "0" * 64}}, None, {})
        with pytest.raises(RegistryError, match=r"contains NaN.*use null"):
            reg.record_run(spec, {"results": [{"estimate": math.nan}]}, None, {})
        with pytest.raises(RegistryError, match=r"cannot be stored as JSON"):
            reg.record_run(spec, {"results": [{"estimate": object()}]}, None, {})
        assert count_rows(reg) == before


def test_set_status_records_each_change(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        reg.register(make_spec(status="planned"))
        with pytest.raises(
            RegistryError,
            match=r"'paused' is not allowed; use one of planned, "
            "live, completed, withdrawn",
        ):
            reg.set_status("ne-employment-support", "paused")
        reg.set_status("ne-employment-support", "live")
        reg.set_status("ne-employment-support", "live")  # no change, nothing recorded
        reg.set_status("ne-employment-support", "completed")
        history = reg.show("ne-employment-support")
        assert [(s.old_status, s.new_status) for s in history.status_changes] == [
            (None, "planned"),
            ("planned", "live"),
            ("live", "completed"),
        ]
        assert history.record["status"] == "completed"
        assert reg.list_pilots()[0].status == "completed"


def test_list_pilots_is_sorted_with_counts(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        for pid in ["b-pilot", "a-pilot", "c-pilot"]:
            reg.register(make_spec(pid, title=f"Pilot {pid}"))
        reg.amend(make_spec("b-pilot", title="Pilot b-pilot", design=COVARIATES), "x")
        listed = reg.list_pilots()
        assert [(p.id, p.latest_version, p.runs) for p in listed] == [
            ("a-pilot", 1, 0),
            ("b-pilot", 2, 0),
            ("c-pilot", 1, 0),
        ]


@pytest.mark.parametrize("table", ["plan_versions", "runs", "status_changes"])
def test_history_is_append_only_in_the_database(registry_url: str, table: str) -> None:
    spec = make_spec()
    with Registry(registry_url) as reg:
        reg.register(spec)
        reg.record_run(spec, make_evidence(spec), None, {})
        before = count_rows(reg)
        column = {"plan_versions": "reason", "runs": "data_sha256", "status_changes": "new_status"}[
            table
        ]
        for sql in (f"UPDATE {table} SET {column} = 'edited'", f"DELETE FROM {table}"):
            with (
                pytest.raises(sa.exc.DBAPIError, match=f"{table} is append-only"),
                reg.engine.begin() as conn,
            ):
                conn.execute(sa.text(sql))
        assert count_rows(reg) == before
        assert reg.verify() == []


def test_opening_is_idempotent_and_schema_matches_the_tables(registry_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from pilotlab.registry.core import _migration_config_head
    from pilotlab.registry.tables import metadata

    with Registry(registry_url) as reg:
        reg.register(make_spec())
    with Registry(registry_url) as reg:
        assert [p.id for p in reg.list_pilots()] == ["ne-employment-support"]
        with reg.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            head = _migration_config_head()[0]
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
                (head,)
            ]
    assert diff == []


def test_default_url_is_created_in_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("PILOTLAB_REGISTRY_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    with Registry() as reg:
        reg.register(make_spec())
    assert (tmp_path / ".pilotlab" / "registry.db").is_file()
    other = tmp_path / "shared" / "team.db"
    monkeypatch.setenv("PILOTLAB_REGISTRY_URL", f"sqlite:///{other}")
    with Registry() as reg:
        assert reg.list_pilots() == []
    assert other.is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a database URL; use sqlite:///"),
        ("mysql://u@h/db", "uses mysql; pilotlab's registry runs on SQLite"),
        (
            "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "cannot use the registry at "
            "postgresql\\+psycopg://nobody@127.0.0.1:1/none.*server is running",
        ),
    ],
)
def test_bad_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        Registry(url)


def test_changed_paths() -> None:
    old = {"design": {"alpha": 0.05, "covariates": ["a"]}, "outcomes": [{"mde": 1}, {"mde": 2}]}
    assert changed_paths(old, old) == []
    new = {
        "design": {"alpha": 0.1, "covariates": ["a", "b"]},
        "outcomes": [{"mde": 1}, {"mde": 3}],
        "extra": 1,
    }
    assert changed_paths(old, new) == [
        "design.alpha",
        "design.covariates",
        "extra",
        "outcomes[1].mde",
    ]
    assert changed_paths(old, {**old, "outcomes": [{"mde": 1}]}) == ["outcomes"]
