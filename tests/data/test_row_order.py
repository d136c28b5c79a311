"""The bucket sort of permutation keys is ``labels[np.argsort(keys, axis=1)]``, ties included."""

from __future__ import annotations

import numpy as np
import pytest

import pilotlab.data.assignment as assignment
from pilotlab.data import _row_order
from pilotlab.data._row_order import HAS_NUMBA, ordered_labels
from pilotlab.data.assignment import permute_labels, random_subsets
from pilotlab.data.panel import NEVER

BACKENDS = [
    "numpy",
    pytest.param(
        "numba", marks=pytest.mark.skipif(not HAS_NUMBA, reason="numba is not importable here")
    ),
]


def _labels(n: int, distinct: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels taking ``distinct`` values (``NEVER`` among them), shuffled."""
    values = np.array([NEVER, 3, -2, 7, 0, 11, 5, 9], dtype=np.int64)
    if distinct > values.size:
        return rng.permutation(n).astype(np.int64) * 3 - 5
    return values[rng.integers(0, distinct, size=n)]


def _reference(keys: np.ndarray, labels: np.ndarray, width: int) -> np.ndarray:
    out: np.ndarray = labels[np.argsort(keys, axis=1)][:, :width]
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 17, 64, 1000, 4099])
@pytest.mark.parametrize("distinct", [1, 2, 5, 10_000])
def test_random_keys_give_the_argsort(backend: str, n: int, distinct: int) -> None:
    rng = np.random.default_rng(1000 * n + distinct)
    for rows in (1, 2, 37):
        keys = rng.random((rows, n))
        labels = _labels(n, distinct, rng)
        for width in sorted({0, 1, n // 2, n}):
            got = ordered_labels(keys, labels, width, backend=backend)  # type: ignore[arg-type]
            assert got.dtype == np.int64 and got.shape == (rows, width)
            np.testing.assert_array_equal(got, _reference(keys, labels, width))


def _planted(rows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform keys with ties planted in some rows: repeated values, several zeros, a tie
    between ``0.0`` and ``-0.0``, whole rows of one value and keys of a coarse grid."""
    keys = rng.random((rows, n))
    for r in range(0, rows, 3):  # every third row gets ties of its own kind
        kind = (r // 3) % 5
        if kind == 0:  # a few keys copied onto others
            src, dst = rng.choice(n, size=(2, max(1, n // 7)), replace=False)
            keys[r, dst] = keys[r, src]
        elif kind == 1:  # ties at zero, one of them negative zero
            zeros = rng.choice(n, size=min(n, 3), replace=False)
            keys[r, zeros] = 0.0
            keys[r, zeros[0]] = -0.0
        elif kind == 2:  # one value throughout
            keys[r] = keys[r, 0]
        elif kind == 3:  # keys on a coarse grid: many ties, within and across buckets
            keys[r] = np.floor(keys[r] * 8) / 8
        else:  # two tied keys only, in the same bucket as untied ones
            keys[r, n - 1] = keys[r, 0]
    return keys


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [2, 3, 20, 257, 3000])
def test_tied_keys_give_the_argsort_order_of_ties(backend: str, n: int) -> None:
    rng = np.random.default_rng(n)
    keys = _planted(31, n, rng)
    for labels in (np.arange(n, dtype=np.int64), _labels(n, 3, rng)):
        got = ordered_labels(keys, labels, backend=backend)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got, _reference(keys, labels, n))


@pytest.mark.parametrize("backend", BACKENDS)
def test_keys_outside_the_unit_interval_give_the_argsort(backend: str) -> None:
    """Never drawn by ``rng.random``, but the result is the argsort's for any keys."""
    rng = np.random.default_rng(5)
    keys = rng.random((6, 40))
    keys[0, 3], keys[1, 7], keys[2, 0] = 1.0, -0.25, np.nan
    keys[3, [1, 9]] = np.nan
    keys[4] *= 1e6
    labels = np.arange(40, dtype=np.int64)
    got = ordered_labels(keys, labels, backend=backend)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, _reference(keys, labels, 40))


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not importable here")
def test_the_kernel_hands_back_exactly_the_rows_with_ties() -> None:
    """Rows with equal (or out-of-range) keys are left to ``np.argsort``; all others are its own."""
    rng = np.random.default_rng(8)
    n = 300
    keys = _planted(40, n, rng)
    keys[38, 5] = 1.0
    keys[39, 6] = np.nan
    kernel = _row_order._compiled_kernel()
    assert kernel is not None
    out = np.full((40, n), -1, dtype=np.int64)
    redo = np.zeros(40, dtype=np.bool_)
    kernel(keys, np.arange(n, dtype=np.int64), out, redo, 0, 40)
    tied = np.array([np.unique(k).size < n for k in keys])
    outside = ~np.all((keys >= 0) & (keys < 1), axis=1)
    np.testing.assert_array_equal(redo, tied | outside)
    assert redo.any() and not redo.all()
    np.testing.assert_array_equal(out[~redo], np.argsort(keys[~redo], axis=1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("chunk", [1 << 18, 64, 1])
def test_drawn_permutations_and_subsets_are_the_argsort_of_one_stream(
    backend: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys drawn a chunk of rows at a time are ``rng.random((draws, n))``; the generator is
    left where that call leaves it, and the draws are the argsort of those keys."""
    monkeypatch.setattr(assignment, "pick_backend", lambda n_keys, n: backend)
    monkeypatch.setattr(assignment, "DRAW_CHUNK_KEYS", chunk)
    for draws, n in ((1, 40), (2, 7), (301, 50), (23, 20_000)):
        labels = _labels(n, 3, np.random.default_rng(n)) if n > 7 else np.arange(n) % 2
        labels[:2] = (NEVER, 4)  # two labels at least, so not every assignment is enumerated
        rng = np.random.default_rng(draws + n)
        rows, exact = permute_labels(labels.astype(np.int64), draws, rng)
        ref = np.random.default_rng(draws + n)
        keys = ref.random((draws, n))
        assert not exact
        np.testing.assert_array_equal(rows, labels[np.argsort(keys, axis=1)])
        assert rng.bit_generator.state == ref.bit_generator.state
        size = n // 3
        subsets = random_subsets(n, size, draws, rng)
        np.testing.assert_array_equal(subsets, np.argsort(ref.random((draws, n)), axis=1)[:, :size])
        assert rng.bit_generator.state == ref.bit_generator.state


def test_labels_of_another_dtype_keep_it() -> None:
    labels = np.array([2] * 5 + [9] * 20, dtype=np.int32)
    rows, _ = permute_labels(labels, 300, np.random.default_rng(2))
    keys = np.random.default_rng(2).random((300, labels.size))
    assert rows.dtype == np.int32
    np.testing.assert_array_equal(rows, labels[np.argsort(keys, axis=1)])


def _generators(seed: int) -> list[np.random.Generator]:
    """numpy's default generator (also with a buffered 32-bit half-output), PCG64DXSM, and a
    generator that cannot jump ahead (drawn in one pass)."""
    buffered = np.random.default_rng(seed)
    buffered.integers(0, 10, dtype=np.int32)  # leaves half of a 64-bit output for later
    assert buffered.bit_generator.state["has_uint32"]
    return [
        np.random.default_rng(seed),
        buffered,
        np.random.Generator(np.random.PCG64DXSM(seed)),
        np.random.Generator(np.random.MT19937(seed)),
    ]


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not importable here")
@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("chunk", [1 << 20, 300])
def test_parts_of_the_stream_drawn_at_once_are_the_one_pass(
    which: int, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of draws taken on threads from their own parts of the stream give the rows and
    the final generator state of one pass over the stream, whatever the generator."""
    monkeypatch.setattr(assignment, "SPLIT_STREAM_KEYS", 1)
    monkeypatch.setattr(assignment, "DRAW_CHUNK_KEYS", chunk)
    monkeypatch.setattr(assignment, "pick_backend", lambda n_keys, n: "numba")
    labels = _labels(1000, 4, np.random.default_rng(5))
    rng, ref = _generators(7)[which], _generators(7)[which]
    rows, exact = assignment.permute_codes(labels, 203, rng)
    assert not exact and rows.codes.dtype == np.uint8
    keys = ref.random((203, labels.size))
    np.testing.assert_array_equal(rows.labels(), labels[np.argsort(keys, axis=1)])
    # left where one pass leaves it: the buffered half-output first, then the same stream
    after = rng.integers(0, 2**31, size=5, dtype=np.int32), rng.random(3)
    again = ref.integers(0, 2**31, size=5, dtype=np.int32), ref.random(3)
    np.testing.assert_array_equal(after[0], again[0])
    np.testing.assert_array_equal(after[1], again[1])


def test_coded_rows_expand_and_map_as_the_labels() -> None:
    labels = _labels(500, 5, np.random.default_rng(3))
    rows, _ = assignment.permute_codes(labels, 50, np.random.default_rng(4))
    full, _ = permute_labels(labels, 50, np.random.default_rng(4))
    np.testing.assert_array_equal(rows.labels(), full)

    def block(v: np.ndarray) -> np.ndarray:
        return np.where(v == NEVER, 9, np.where(v > 2, 1, 0))

    mapped = rows.map(block)
    assert mapped.dtype == np.int8
    np.testing.assert_array_equal(mapped, block(full))
    np.testing.assert_array_equal(rows.rows(10, 20).labels(), full[10:20])
    many = np.arange(300, dtype=np.int64) * 7  # more labels than a byte holds: int64 codes
    big, _ = assignment.permute_codes(many, 30, np.random.default_rng(1))
    assert big.codes.dtype == np.int64
    ref = many[np.argsort(np.random.default_rng(1).random((30, 300)), axis=1)]
    np.testing.assert_array_equal(big.labels(), ref)


def test_labels_of_another_dtype_are_enumerated_by_their_own_counts() -> None:
    """Few enough assignments of int32 labels are all enumerated once each (the distinct ways
    to place the labels, not the permutations of the units)."""
    labels = np.array([9, 2, 9, 2, 9], dtype=np.int32)
    rows, exact = permute_labels(labels, 999, np.random.default_rng(0))
    assert exact and rows.dtype == np.int32 and rows.shape == (10, 5)
    np.testing.assert_array_equal(rows, assignment.enumerate_assignments(labels))
