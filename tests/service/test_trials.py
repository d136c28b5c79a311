"""Randomised pilots through the evidence service: ``pilotlab randomise`` records the allocation
there and ``pilotlab run`` checks the drawn allocation against it, as against a database."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from pilotlab.engine import run_pilot
from pilotlab.engine.randomise import randomise_pilot
from pilotlab.exceptions import PilotlabError, RegistryError
from pilotlab.registry import Registry
from pilotlab.registry.tables import allocations, audit_log
from tests.service.conftest import World
from tests.support import write_pilot
from tests.support.registry import count_rows
from tests.support.trial import trial_frame, trial_pilot


def _stratified(**extra: Any) -> dict[str, Any]:
    return trial_pilot(scheme="stratified", strata=["region"], treated=6, **extra)


def _count(world: World, table: Any) -> int:
    import sqlalchemy as sa

    with world.registry.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _run(pilot: Path, out: Path, registry: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_pilot(pilot, out, registry=registry)
    record: dict[str, Any] = json.loads((out / "evidence.json").read_text())
    return record


def _registration(record: dict[str, Any]) -> dict[str, Any]:
    reg = dict(record["trial"]["registration"])
    reg.pop("recorded_at", None)
    return reg


def test_randomise_then_run_through_the_service_checks_as_a_database_does(
    world: World, tmp_path: Path
) -> None:
    pilot = write_pilot(tmp_path / "p", _stratified(), trial_frame())
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    local = randomise_pilot(pilot, tmp_path / "alloc-db", registry=url)
    by_db = _run(pilot, tmp_path / "run-db", url)

    with world.remote("editor_a") as remote:
        done = randomise_pilot(pilot, tmp_path / "alloc-svc", registry=remote)
        assert (
            done.registered_plan is not None and done.registered_plan.version == 1
        )  # registered with it
        assert done.record.allocation_sha256 == local.record.allocation_sha256
        got = remote.allocations("test-pilot")
        by_svc = _run(pilot, tmp_path / "run-svc", remote)
    with Registry(url) as reg:
        want = reg.allocations("test-pilot")
    assert [(a.version, a.scheme, a.seed, a.n_units, a.allocation_sha256) for a in got] == [
        (a.version, a.scheme, a.seed, a.n_units, a.allocation_sha256) for a in want
    ]
    assert got[0].document == done.document  # the service gives back what was recorded
    drawn_at = ("generated_at",)
    assert {k: v for k, v in got[0].document.items() if k not in drawn_at} == {
        k: v for k, v in want[0].document.items() if k not in drawn_at
    }
    assert by_svc["trial"]["registration"]["matches"] is True
    assert _registration(by_svc) == _registration(by_db)
    assert by_svc["plan"]["registered"] is True
    # the pilot registered with its allocation belongs to the caller's organisation
    assert world.as_("reader_a").get("/api/pilots/test-pilot/allocations").status_code == 200
    actions = [r["action"] for r in world.as_("admin").get("/api/audit").json()]
    assert actions[:2] == ["run", "allocation"]


def test_a_changed_seed_is_refused_at_run_time_through_the_service(
    world: World, tmp_path: Path
) -> None:
    pilot = write_pilot(tmp_path / "p", _stratified(), trial_frame())
    remote = world.remote("editor_a")
    randomise_pilot(pilot, tmp_path / "alloc", registry=remote)
    write_pilot(pilot.parent, _stratified(seed=99), None)
    with pytest.raises(PilotlabError, match="the seed is 99, registered 7"):
        _run(pilot, tmp_path / "run", remote)
    assert not (tmp_path / "run").exists()
    assert count_rows(world.registry)["runs"] == 0


def test_a_second_allocation_needs_a_reason_and_a_refusal_writes_nothing(
    world: World, tmp_path: Path
) -> None:
    pilot = write_pilot(tmp_path / "p", _stratified(), trial_frame())
    remote = world.remote("editor_a")
    randomise_pilot(pilot, tmp_path / "alloc", registry=remote)
    audited = _count(world, audit_log)
    write_pilot(pilot.parent, _stratified(seed=99), None)
    with pytest.raises(RegistryError, match="already has an allocation") as err:
        randomise_pilot(pilot, tmp_path / "alloc2", registry=remote)
    assert "--reason" in str(err.value)
    assert not (tmp_path / "alloc2").exists()
    assert (_count(world, allocations), _count(world, audit_log)) == (1, audited)
    redo = randomise_pilot(pilot, tmp_path / "alloc3", registry=remote, reason="two schools merged")
    assert redo.record.version == 2 and redo.registered_plan is None
    got = remote.allocations("test-pilot")
    assert [a.reason for a in got] == [None, "two schools merged"]


def test_others_may_not_read_or_record_an_unseen_pilots_allocation(
    world: World, tmp_path: Path
) -> None:
    pilot = write_pilot(tmp_path / "p", _stratified(), trial_frame())
    done = randomise_pilot(pilot, tmp_path / "alloc", registry=world.remote("editor_a"))
    body = {
        "pilot": _stratified(),
        "allocation": done.document,
        "allocation_sha256": "b" * 64,
        "scheme": "stratified",
        "seed": 8,
        "n_units": 24,
        "reason": "take it over",
    }
    url = "/api/pilots/test-pilot/allocations"
    for who in ("editor_b", "reader_dept", "anonymous"):
        assert world.as_(who).get(url).status_code == 404, who
        assert world.as_(who).get("/api/pilots/test-pilot/cycle-chain").status_code == 404
    assert world.as_("editor_b").post(url, json=body).status_code == 404
    assert world.as_("anonymous").post(url, json=body).status_code == 401
    assert world.as_("reader_a").post(url, json=body).status_code == 403
    with pytest.raises(RegistryError, match="or you may not see it"):
        world.remote("editor_b").allocations("test-pilot")
    assert _count(world, allocations) == 1
    # a reader may not register a pilot by randomising it
    other = _stratified()
    other["id"] = "other-pilot"
    refused = world.as_("reader_a").post(
        "/api/pilots/other-pilot/allocations", json={**body, "pilot": other}
    )
    assert refused.status_code == 403
    assert [p.id for p in world.remote("admin").list_pilots()] == ["test-pilot"]


def test_the_cycle_chain_is_served_without_pilots_the_caller_may_not_see(
    world: World, tmp_path: Path
) -> None:
    from tests.support.registry import make_spec

    first = make_spec(id="cycle-one")
    second = make_spec(id="cycle-two", cycle={"follows": "cycle-one", "change": "shorter form"})
    world.remote("editor_a").register(first)
    world.remote("editor_a").register(second)
    steps = world.remote("editor_a").cycle_chain("cycle-two")
    assert steps == world.registry.cycle_chain("cycle-two")
    assert [(s.pilot_id, s.change) for s in steps] == [("cycle-one", "shorter form")]
    got = world.as_("editor_a").put(
        "/api/pilots/cycle-two/access", json={"visibility": "public", "shared_with": []}
    )
    assert got.status_code == 200, got.text
    assert world.remote("editor_b").cycle_chain("cycle-two") == ()  # cycle-one is not theirs
