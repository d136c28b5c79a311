"""Registry: allocations of randomised pilots and learning-cycle chains (SQLite and PostgreSQL)."""
# ruff: noqa: F811  (pytest fixtures imported from registry_support)

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pilotlab.exceptions import RegistryError
from pilotlab.registry import Registry
from pilotlab.spec import plan_sha256
from tests.support.registry import count_rows, make_evidence, make_spec, registry_url  # noqa: F401

DOC = {"format": "pilotlab.allocation/1", "units": [{"unit": "A", "arm": "treatment"}]}


def _record(reg: Registry, spec=None, sha: str = "a" * 64, reason: str | None = None):
    return reg.record_allocation(
        spec or make_spec(),
        DOC,
        allocation_sha256=sha,
        scheme="stratified",
        seed=20250101,
        n_units=40,
        data_sha256="d" * 64,
        reason=reason,
    )


def test_randomising_an_unregistered_pilot_registers_it_with_the_allocation(
    registry_url: str,
) -> None:
    spec = make_spec()
    with Registry(registry_url) as reg:
        rec, plan = _record(reg, spec)
        assert plan is not None and plan.version == 1 and plan.plan_sha256 == plan_sha256(spec)
        assert (rec.version, rec.scheme, rec.seed, rec.n_units) == (1, "stratified", 20250101, 40)
        assert rec.reason is None and rec.document == DOC
        assert [a.allocation_sha256 for a in reg.allocations(spec.id)] == ["a" * 64]
        assert reg.show(spec.id).versions[0].version == 1
        assert reg.verify() == []


def test_a_pilot_is_randomised_once_and_a_refused_second_draw_writes_nothing(
    registry_url: str,
) -> None:
    with Registry(registry_url) as reg:
        reg.register(make_spec())
        _, plan = _record(reg)
        assert plan is None  # registered before
        before = count_rows(reg)
        head = reg.head()
        with pytest.raises(RegistryError, match=r"already has an allocation \(version 1.*--reason"):
            _record(reg, sha="b" * 64)
        with pytest.raises(RegistryError, match=r"is the one registered already"):
            _record(reg, sha="a" * 64, reason="redo")
        with pytest.raises(RegistryError, match=r"needs a reason"):
            _record(reg, sha="b" * 64, reason="  ")
        assert count_rows(reg) == before and reg.head() == head


def test_a_changed_allocation_with_a_reason_is_version_2(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        _record(reg)
        rec, _ = _record(reg, sha="b" * 64, reason="  two schools merged  ")
        assert (rec.version, rec.reason) == (2, "two schools merged")
        assert [a.version for a in reg.allocations("ne-employment-support")] == [1, 2]
        assert reg.verify() == []


def test_allocations_are_append_only_and_edits_are_detected(registry_url: str) -> None:
    from tests.support.registry import drop_append_only_triggers

    with Registry(registry_url) as reg:
        _record(reg)
        for sql in ("UPDATE allocations SET seed = 1", "DELETE FROM allocations"):
            with (
                pytest.raises(sa.exc.DBAPIError, match="allocations is append-only"),
                reg.engine.begin() as conn,
            ):
                conn.execute(sa.text(sql))
        drop_append_only_triggers(reg)
        with reg.engine.begin() as conn:
            conn.execute(sa.text("UPDATE allocations SET allocation_json = '{}'"))
        problems = reg.verify()
        assert any(p.table == "allocations" and "row hash" in p.message for p in problems)


def test_a_cycle_follows_a_registered_pilot_and_the_chain_is_kept(registry_url: str) -> None:
    first = make_spec("reading-cycle-1")
    second = make_spec(
        "reading-cycle-2", cycle={"follows": "reading-cycle-1", "change": "Shorter sessions"}
    )
    third = make_spec(
        "reading-cycle-3", cycle={"follows": "reading-cycle-2", "change": "Added a parent letter"}
    )
    with Registry(registry_url) as reg:
        with pytest.raises(RegistryError, match=r"cycle.follows: pilot 'reading-cycle-1' is not"):
            reg.register(second)
        assert count_rows(reg)["pilots"] == 0
        reg.register(first)
        reg.record_run(first, make_evidence(first, -0.3), None, {})
        reg.register(second)
        reg.register(third)
        chain = reg.cycle_chain("reading-cycle-3")
        assert [(s.pilot_id, s.change) for s in chain] == [
            ("reading-cycle-1", "Shorter sessions"),
            ("reading-cycle-2", "Added a parent letter"),
        ]
        assert chain[0].evidence is not None and chain[0].evidence["results"][0]["estimate"] == -0.3
        assert chain[1].evidence is None  # no run yet
        assert reg.cycle_chain("reading-cycle-1") == ()
        assert reg.verify() == []


def test_a_cycle_cannot_follow_itself_or_close_a_loop(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        with pytest.raises(RegistryError, match=r"the pilot itself"):
            reg.register(make_spec("loop-a", cycle={"follows": "loop-a", "change": "x"}))
        reg.register(make_spec("loop-a"))
        reg.register(make_spec("loop-b", cycle={"follows": "loop-a", "change": "x"}))
        before = count_rows(reg)
        with pytest.raises(RegistryError, match=r"loop \(loop-a -> loop-b -> loop-a\)"):
            reg.amend(make_spec("loop-a", cycle={"follows": "loop-b", "change": "y"}), "loop")
        assert count_rows(reg) == before


def test_amending_the_change_appends_a_link(registry_url: str) -> None:
    with Registry(registry_url) as reg:
        reg.register(make_spec("c-one"))
        reg.register(make_spec("c-two", cycle={"follows": "c-one", "change": "first words"}))
        v = reg.amend(make_spec("c-two", cycle={"follows": "c-one", "change": "better words"}), "r")
        assert v.version == 2 and v.changes == ("cycle.change",)
        assert [s.change for s in reg.cycle_chain("c-two")] == ["better words"]
        assert count_rows(reg)["cycle_links"] == 2
        assert reg.verify() == []


def test_a_planned_or_randomised_pilot_registers_with_its_design_named(registry_url: str) -> None:
    planned = make_spec(
        "planned-pilot", status="planned", treatment={}, design={"power": {"treated": 4}}
    )
    with Registry(registry_url) as reg:
        reg.register(planned)  # a planned pilot used to fail with KeyError: 'planned'
        assert reg.show("planned-pilot").record["design_type"].endswith("not chosen yet")


def test_show_lists_allocations_and_the_cycle(registry_url: str) -> None:
    from pilotlab.registry import service

    with Registry(registry_url) as reg:
        reg.register(make_spec("show-one"))
        _record(reg, make_spec("show-two", cycle={"follows": "show-one", "change": "x"}))
    text = service.show_pilot("show-two", registry_url)
    assert "Allocations (randomised)" in text and "stratified  20250101  40" in text
    assert "Learning cycle: follows show-one" in text
