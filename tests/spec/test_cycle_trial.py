"""The pilot file's ``cycle:`` and ``trial:`` keys."""

from __future__ import annotations

import pytest

from pilotlab.exceptions import SpecError
from pilotlab.spec import plan_sha256
from tests.support.registry import make_spec


def test_unset_keys_leave_the_plan_hash_of_existing_pilots_unchanged() -> None:
    spec = make_spec()
    assert "cycle" not in spec.plan() and "trial" not in spec.plan()
    assert plan_sha256(spec) == plan_sha256(make_spec(cycle=None, trial=None))


def test_a_cycle_is_part_of_the_plan() -> None:
    spec = make_spec(cycle={"follows": "earlier-pilot", "change": "Shorter sessions"})
    assert spec.plan()["cycle"] == {"follows": "earlier-pilot", "change": "Shorter sessions"}
    assert plan_sha256(spec) != plan_sha256(make_spec())


@pytest.mark.parametrize(
    ("cycle", "message"),
    [
        ({"follows": "Earlier Pilot", "change": "x"}, r"cycle.follows.*is not a pilot id"),
        ({"follows": "earlier"}, r"cycle.change"),
        ({"follows": "earlier", "change": "x", "when": 1}, r"cycle.when"),
    ],
)
def test_bad_cycles_name_the_key(cycle: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        make_spec(cycle=cycle)


def test_trial_received_names_a_column() -> None:
    assert make_spec(trial={"received": "got_it"}).trial.received == "got_it"  # type: ignore[union-attr]
    with pytest.raises(SpecError, match=r"trial.received"):
        make_spec(trial={"received": ""})
