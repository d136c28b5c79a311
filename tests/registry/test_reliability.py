"""Registry reliability: concurrent writers, failures inside a write, a writer killed mid-write."""
# ruff: noqa: F811  (pytest fixtures imported from registry_support)

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import Counter, defaultdict
from typing import Any

import pytest
import sqlalchemy as sa

from pilotlab.registry import Registry
from tests.support.registry import (  # noqa: F401
    SHARED,
    concurrent_worker,
    count_rows,
    hang_mid_run,
    make_evidence,
    make_spec,
    registry_url,
)

N_PROCESSES = 8
N_OPS = 50


def _processes() -> Any:
    """Fresh processes that share nothing with this one but the modules they run: forked from a
    server that imported those modules once (with the estimators a pilot file's check reads), so
    eight of them do not import pilotlab eight times."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.support.registry", "pilotlab.estimators"])
    return ctx


def _fail_on(reg: Registry, statement_start: str) -> None:
    """Make the next statement starting with ``statement_start`` fail after it has executed."""

    @sa.event.listens_for(reg.engine, "after_cursor_execute")
    def _boom(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(statement_start):
            raise RuntimeError("simulated crash inside the transaction")


def test_eight_processes_never_lose_or_duplicate_versions(registry_url: str) -> None:
    ctx = _processes()
    Registry(registry_url).close()  # migrated once here; the workers also race on opening
    barrier = ctx.Barrier(N_PROCESSES)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=concurrent_worker, args=(registry_url, p, N_OPS, barrier, out))
        for p in range(N_PROCESSES)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [r for r in results if r[1] != "ok"]
    assert errors == []
    log = [entry for _, _, entries in results for entry in entries]
    assert len(log) == N_PROCESSES * N_OPS

    with Registry(registry_url) as reg:
        with reg.engine.connect() as conn:
            versions = conn.execute(
                sa.text("SELECT pilot_id, version, plan_sha256 FROM plan_versions")
            ).all()
            times = conn.execute(
                sa.text("SELECT pilot_id, registered_at FROM plan_versions ORDER BY version")
            ).all()
            runs = {r.run_id: r for r in conn.execute(sa.text("SELECT * FROM runs")).all()}
        by_pilot: dict[str, list[int]] = defaultdict(list)
        for pid, version, _ in versions:
            by_pilot[pid].append(version)
        # every pilot's versions are exactly 1..n: contiguous, none duplicated
        for pid, vs in by_pilot.items():
            assert sorted(vs) == list(range(1, len(vs) + 1)), pid
            # ... registered in that order: a later version never carries an earlier time
            at = [t for p, t in times if p == pid]
            assert at == sorted(at), pid

        registered = Counter(e[1] for e in log if e[0] == "register")
        assert all(registered[pid] == 1 for pid in SHARED)  # one winner per contested id
        own = [e[1] for e in log if e[0] == "register" and e[1].startswith("own-")]
        assert set(by_pilot) == set(SHARED) | set(own)
        refused = [e[1] for e in log if e[0] == "register-refused"]
        assert len(refused) == len(SHARED) * (N_PROCESSES - 1)

        # every amendment created exactly one version and got a distinct number
        amends = [e for e in log if e[0] == "amend"]
        assert amends and all(e[4] for e in amends)
        for pid in SHARED:
            got = sorted(e[2] for e in amends if e[1] == pid)
            assert got == list(range(2, len(by_pilot[pid]) + 1))
        sha_of = {(pid, v): sha for pid, v, sha in versions}
        assert all(sha_of[(e[1], e[2])] == e[3] for e in amends)

        # every run is stored once and linked to the version of the plan it ran
        recorded = [e for e in log if e[0] == "run"]
        assert recorded and set(runs) == {e[2] for e in recorded}
        for _, pid, run_id, sha, version in recorded:
            row = runs[run_id]
            assert (row.pilot_id, row.plan_sha256, row.plan_version) == (pid, sha, version)
            assert version is not None and sha_of[(pid, version)] == sha
        assert reg.verify() == []


@pytest.mark.parametrize(
    ("operation", "statement"),
    [
        ("record_run", "INSERT INTO RUNS"),
        ("record_run", "UPDATE PILOTS"),
        ("amend", "INSERT INTO PLAN_VERSIONS"),
        ("register", "INSERT INTO STATUS_CHANGES"),
        ("set_status", "INSERT INTO STATUS_CHANGES"),
    ],
)
def test_a_failure_inside_a_write_leaves_the_registry_as_it_was(
    registry_url: str, operation: str, statement: str
) -> None:
    spec = make_spec(status="planned")
    with Registry(registry_url) as reg:
        if operation != "register":
            reg.register(spec)
        before = count_rows(reg)
        listed = reg.list_pilots()
        _fail_on(reg, statement)
        renamed = make_spec(status="planned", title="Renamed", design={"covariates": ["x"]})
        call = {
            "record_run": lambda: reg.record_run(
                spec, make_evidence(spec), None, {}
            ),  # then pilots
            "amend": lambda: reg.amend(renamed, "new covariate"),  # updates pilots first
            "register": lambda: reg.register(spec),  # pilots and plan_versions written first
            "set_status": lambda: reg.set_status(spec.id, "live"),  # pilots updated first
        }[operation]
        with pytest.raises(RuntimeError, match=r"simulated crash"):
            call()
    with Registry(registry_url) as reg:
        assert count_rows(reg) == before
        assert reg.list_pilots() == listed
        assert reg.verify() == []


def test_a_process_killed_mid_write_leaves_no_half_written_run(registry_url: str) -> None:
    spec = make_spec()
    with Registry(registry_url) as reg:
        reg.register(spec)
        before = count_rows(reg)
    ctx = _processes()
    inserted = ctx.Event()
    proc = ctx.Process(target=hang_mid_run, args=(registry_url, spec.id, inserted))
    proc.start()
    try:
        assert inserted.wait(timeout=120), "the writer never reached its INSERT"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=60)
    assert proc.exitcode == -signal.SIGKILL
    with Registry(registry_url) as reg:
        assert count_rows(reg) == before
        # the dead writer's locks are gone: amending (an exclusive write) goes through
        reg.amend(make_spec(design={"covariates": ["x"]}), "after the crash")
        run = reg.record_run(spec, make_evidence(spec), None, {})
        assert run.plan_version == 1
        assert count_rows(reg)["runs"] == before["runs"] + 1
        assert reg.verify() == []
