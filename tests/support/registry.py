"""Fixtures and process workers shared by the registry tests (``tests/registry/``).

Workers live here, not in the test modules, so that ``multiprocessing`` (spawn) can import them.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from pilotlab.exceptions import RegistryError
from pilotlab.registry import Registry
from pilotlab.spec import PilotSpec, parse_pilot, plan_sha256

PG_ENV = "PILOTLAB_TEST_POSTGRES_URL"


def make_spec(pilot_id: str = "ne-employment-support", **changes: Any) -> PilotSpec:
    """A valid pilot file; keyword arguments replace top-level keys (``design={...}``)."""
    raw: dict[str, Any] = {
        "id": pilot_id,
        "title": "North East employment support pathfinder",
        "summary": "Intensive employment support through family hubs.",
        "status": "live",
        "lead": "North East Combined Authority",
        "partners": ["Department for Work and Pensions"],
        "policy_area": "employment",
        "registration": {
            "start_date": "2024-04-01",
            "end_date": "2025-03-31",
            "publication": "within 12 months of the end date",
        },
        "data": {"path": "data/panel.csv", "unit": "area_code", "time": "period"},
        "treatment": {"units": ["E06000047", "E08000021"], "start": "2024Q2"},
        "outcomes": [
            {"column": "claimant_rate", "primary": True, "better": "lower", "mde": 0.5},
            {"column": "employment_rate", "mde": 1.0},
        ],
        "design": {"estimator": "did", "alpha": 0.05},
    }
    raw.update(changes)
    return parse_pilot(raw)


def make_evidence(spec: PilotSpec, estimate: float = -0.42) -> dict[str, Any]:
    """A small evidence record, valid against the evidence JSON Schema."""
    return {
        "schema": "pilotlab.evidence/1",
        "generated_at": "2026-11-25T10:00:00Z",
        "software": {"pilotlab": "0.1.0", "python": "3.11"},
        "pilot": {"id": spec.id, "title": spec.title, "status": spec.status},
        "plan": {
            "sha256": plan_sha256(spec),
            "registered": True,
            "version": 1,
            "registered_at": "2026-11-25T09:00:00.000000Z",
            "matches_registered": True,
            "deviations": [],
        },
        "data": {
            "path": "data/panel.csv",
            "sha256": "d" * 64,
            "rows": 400,
            "units": 40,
            "treated_units": 2,
            "periods": 10,
            "first_period": "2022Q1",
            "last_period": "2024Q2",
            "excluded_units": [],
        },
        "results": [
            {
                "outcome": o.column,
                "label": o.label or o.column,
                "primary": o.primary,
                "estimator": "did",
                "estimand": "ATT",
                "inference": "cluster",
                "estimate": estimate,
                "std_error": 0.1,
                "ci_lower": estimate - 0.2,
                "ci_upper": estimate + 0.2,
                "p_value": 0.01,
                "p_value_adjusted": 0.02,
                "alpha": 0.05,
                "baseline_mean": 3.0,
                "relative_effect": estimate / 3.0,
                "mde": o.mde,
                "n_obs": 400,
                "n_units": 40,
                "n_treated_units": 2,
                "n_clusters": 40,
                "event_study": [],
                "pre_trend": None,
                "robustness": [],
                "warnings": [],
            }
            for o in spec.outcomes
        ],
        "evidence_strength": {"rubric": "test", "level": 3, "criteria": []},
    }


def _postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if url:
        return url
    reason = (
        f"{PG_ENV} is not set: PostgreSQL registry tests need a server "
        "(run `source .ci/postgres.sh` to start a throwaway one)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}; .ci/run must source .ci/postgres.sh")
    pytest.skip(reason)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def registry_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A fresh, empty registry URL: a SQLite file, or a new schema on the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    base = _postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def pg_service_role() -> Iterator[tuple[str, str, str]]:
    """(owner URL, service URL, service role) on a new, empty schema of the test PostgreSQL.

    The service role may log in and use the schema, but has no other privilege until
    ``pilotlab registry migrate --app-role`` grants it.
    """
    base = _postgres_base_url()
    suffix = uuid.uuid4().hex[:12]
    schema, role = f"t_{suffix}", f"svc_{suffix}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {schema} TO {role}"))
    options = f"?options=-csearch_path%3D{schema}"
    service = sa.engine.make_url(base).set(username=role).render_as_string(hide_password=False)
    try:
        yield f"{base}{options}", f"{service}{options}", role
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))
        admin.dispose()


def count_rows(reg: Registry) -> dict[str, int]:
    """Rows in every registry table."""
    names = [
        "pilots", "plan_versions", "runs", "status_changes", "imported_records", "allocations",
        "cycle_links",
    ]  # fmt: skip
    with reg.engine.connect() as conn:
        return {n: conn.execute(sa.text(f"SELECT count(*) FROM {n}")).scalar_one() for n in names}


def drop_append_only_triggers(reg: Registry) -> None:
    """What an attacker with database access would do before editing history."""
    with reg.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            names = (
                conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
                .scalars()
                .all()
            )
            for name in names:
                conn.execute(sa.text(f"DROP TRIGGER {name}"))
        else:
            conn.execute(sa.text("DROP FUNCTION IF EXISTS pilotlab_append_only() CASCADE"))


# ---------------------------------------------------------------------- process workers


SHARED = [f"shared-{k}" for k in range(5)]


def concurrent_worker(url: str, proc: int, n_ops: int, barrier: Any, out: Any) -> None:
    """Register, amend and record runs at random on shared pilots; report what succeeded."""
    rng = random.Random(proc)
    log: list[tuple[Any, ...]] = []
    try:
        reg = Registry(url)
        barrier.wait(timeout=120)
        own_plan: dict[str, PilotSpec] = {}  # the last plan this process registered per pilot
        for i in range(n_ops):
            if i < len(SHARED):
                kind, pid = "register", SHARED[(i + proc) % len(SHARED)]
            else:
                kind = rng.choice(["register", "amend", "amend", "run", "run"])
                pid = f"own-{proc}-{i}" if kind == "register" else rng.choice(SHARED)
            if kind == "register":
                try:
                    v = reg.register(make_spec(pid))
                    log.append(("register", pid, v.version))
                except RegistryError:
                    log.append(("register-refused", pid))
            elif kind == "amend":
                spec = make_spec(pid, design={"estimator": "did", "covariates": [f"c{proc}_{i}"]})
                v = reg.amend(spec, reason=f"process {proc} op {i}", data_seen=bool(i % 2))
                own_plan[pid] = spec
                log.append(("amend", pid, v.version, v.plan_sha256, v.created))
            else:
                spec = own_plan.get(pid, make_spec(pid))
                r = reg.record_run(spec, make_evidence(spec), "d" * 64, {"pilotlab": "test"})
                log.append(("run", pid, r.run_id, r.plan_sha256, r.plan_version))
        reg.close()
        out.put((proc, "ok", log))
    except BaseException as exc:  # report, so the parent fails with the cause
        out.put((proc, "error", f"{type(exc).__name__}: {exc}"))


def hang_mid_run(url: str, pilot_id: str, inserted: Any) -> None:
    """Record a run but stop for good right after the INSERT, inside the open transaction."""
    reg = Registry(url)
    spec = make_spec(pilot_id)

    @sa.event.listens_for(reg.engine, "after_cursor_execute")
    def _stall(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO RUNS"):
            inserted.set()
            time.sleep(600)

    reg.record_run(spec, make_evidence(spec), "d" * 64, {"pilotlab": "test"})
