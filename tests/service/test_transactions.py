"""A service write is one transaction: if any part fails, the registry and the service's tables
are as they were."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from pilotlab.exceptions import RegistryError
from pilotlab.registry import Registry
from pilotlab.registry.tables import audit_log, run_files
from tests.service.conftest import World
from tests.support.registry import count_rows, make_evidence, make_spec


def test_a_failing_hook_rolls_the_registry_write_back(tmp_path) -> None:
    with Registry(f"sqlite:///{tmp_path / 'r.db'}") as reg:

        def hook(conn, start: int) -> None:
            assert conn.execute(sa.text("SELECT count(*) FROM pilots")).scalar_one() == 1
            raise RegistryError("the hook failed")

        with reg.writing_with(hook), pytest.raises(RegistryError, match="the hook failed"):
            reg.register(make_spec())
        assert reg.list_pilots() == []
        assert reg.verify() == []
        reg.register(make_spec())  # outside the block no hook runs
        assert [p.id for p in reg.list_pilots()] == ["ne-employment-support"]


def test_a_run_whose_files_cannot_be_stored_is_not_recorded(world: World, monkeypatch) -> None:
    spec = make_spec()
    world.remote("editor_a").register(spec)
    before = count_rows(world.registry)

    def broken(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT INTO run_files", {}, Exception("disk full"))

    monkeypatch.setattr(type(world.app.state.service.accounts), "add_files", broken)
    pilot = {"pilot": spec.model_dump(mode="json", exclude_unset=True)}
    got = world.as_("editor_a").post(
        f"/api/pilots/{spec.id}/runs",
        data={"pilot": json.dumps(pilot)},
        files=[("evidence", ("evidence.json", json.dumps(make_evidence(spec)).encode(), "x"))],
    )
    assert got.status_code == 503 and "cannot use the registry" in got.json()["error"]
    assert "Traceback" not in got.text
    assert count_rows(world.registry) == before
    with world.registry.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(run_files)).scalar_one() == 0
        actions = conn.execute(sa.select(audit_log.c.action)).scalars().all()
    assert "run" not in actions
