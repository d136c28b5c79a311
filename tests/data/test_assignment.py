"""Re-assignment draws: one random-number contract shared by every placebo and permutation path."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from pilotlab.data.assignment import (
    MAX_ENUMERATION,
    assignment_blocks,
    count_assignments,
    enumerate_assignments,
    in_space_placebos,
    label_positions,
    permutation_keys,
    permute_labels,
    placebo_sets,
    random_subsets,
    reassign,
)
from pilotlab.data.panel import NEVER
from tests.support.infer import make_panel


def test_count_is_the_multinomial_and_enumeration_matches_it() -> None:
    labels = np.array([3, 3, 5, NEVER, NEVER, NEVER])
    _, counts = np.unique(labels, return_counts=True)
    assert count_assignments(counts) == 6 * 5 // 2 * 4  # C(6,2) * C(4,1) = 60
    rows = enumerate_assignments(labels)
    assert rows.shape == (60, 6)
    assert {tuple(r) for r in rows.tolist()} == set(itertools.permutations(labels.tolist()))


def test_few_assignments_are_enumerated_and_nothing_is_drawn() -> None:
    labels = np.array([2, NEVER, NEVER, NEVER, NEVER])
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    rows, exact = permute_labels(labels, 999, rng)
    assert exact and rows.shape == (5, 5)
    assert rng.bit_generator.state == state
    assert any(np.array_equal(r, labels) for r in rows)  # the actual assignment is one of them


def test_random_draws_are_the_argsort_of_uniform_keys() -> None:
    """The contract every path relies on: a draw is the permutation sorting a row of
    ``rng.random((replications, n))``, so paths given the same generator agree."""
    labels = np.array([4] * 6 + [NEVER] * 30)
    rows, exact = permute_labels(labels, 250, np.random.default_rng(11))
    keys = np.random.default_rng(11).random((250, labels.size))
    assert not exact
    np.testing.assert_array_equal(rows, labels[np.argsort(keys, axis=1)])
    np.testing.assert_array_equal(
        permutation_keys(250, labels.size, np.random.default_rng(11)), keys
    )
    assert MAX_ENUMERATION >= 250


@pytest.mark.parametrize("small", ["treated", "comparison"])
def test_label_positions_are_where_the_sort_puts_those_labels(small: str) -> None:
    labels = np.array([1] * 5 + [NEVER] * 20)
    keys = np.random.default_rng(3).random((400, labels.size))
    blocks = np.flatnonzero(labels != NEVER if small == "treated" else labels == NEVER)
    pos = label_positions(keys, blocks)
    rows = labels[np.argsort(keys, axis=1)]
    got = np.zeros_like(rows, dtype=bool)
    got[np.repeat(np.arange(400), blocks.size), pos.ravel()] = True
    np.testing.assert_array_equal(got, rows == labels[blocks[0]])


def test_treatment_assigned_by_cluster_is_re_assigned_by_cluster() -> None:
    y = np.zeros((12, 6))
    cluster = np.repeat(np.arange(4), 3)  # clusters of three units
    ft = np.where(cluster < 2, 3, NEVER)  # two whole clusters treated
    blocks = assignment_blocks(make_panel(y, ft, cluster=cluster))
    assert blocks.level == "cluster"
    np.testing.assert_array_equal(blocks.block_of_unit, cluster)
    np.testing.assert_array_equal(blocks.first_treated, [3, 3, NEVER, NEVER])
    mixed = ft.copy()
    mixed[0] = NEVER  # one unit of a treated cluster is not treated: units are re-assigned
    assert assignment_blocks(make_panel(y, mixed, cluster=cluster)).level == "unit"


def test_reassign_expands_blocks_to_units_and_keeps_the_anticipation() -> None:
    y = np.zeros((12, 8))
    cluster = np.repeat(np.arange(6), 2)
    ft = np.where(cluster < 2, 5, NEVER)
    panel = make_panel(y, ft, cluster=cluster)
    panel = dataclasses.replace(panel, anticipation=1)
    drawn = reassign(panel, 999, np.random.default_rng(0))
    assert drawn.exact and drawn.level == "cluster" and drawn.n_assignments == 15  # C(6,2)
    np.testing.assert_array_equal(drawn.observed_effective, np.where(ft == NEVER, NEVER, 4))
    first = drawn.first_treated()
    assert set(np.unique(first).tolist()) == {5, NEVER}  # shifted back to the panel's scale
    treated = drawn.treated()
    assert np.all(treated.sum(axis=1) == 4)  # two clusters of two units each time
    assert np.all(treated[:, 0::2] == treated[:, 1::2])  # the units of a cluster move together
    assert any(np.array_equal(f, ft) for f in first)


def test_subsets_and_placebo_sets() -> None:
    sub = random_subsets(30, 4, 200, np.random.default_rng(1))
    assert sub.shape == (200, 4) and np.all(
        np.sort(sub, axis=1)[:, 1:] > np.sort(sub, axis=1)[:, :-1]
    )
    keys = np.random.default_rng(1).random((200, 30))
    np.testing.assert_array_equal(sub, np.argsort(keys, axis=1)[:, :4])
    np.testing.assert_array_equal(placebo_sets(30, 4, 200, np.random.default_rng(1)), sub)
    one = placebo_sets(30, 1, 200, np.random.default_rng(1))
    np.testing.assert_array_equal(one, np.random.default_rng(1).integers(0, 30, size=(200, 1)))
    np.testing.assert_array_equal(in_space_placebos(5, 10, np.random.default_rng(0)), np.arange(5))
    some = in_space_placebos(50, 10, np.random.default_rng(0))
    assert some.size == 10 == np.unique(some).size and np.all(np.diff(some) > 0)
