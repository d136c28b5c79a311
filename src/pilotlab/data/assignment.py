"""Re-assignments of treatment: which units are treated, and when, under re-randomisation.

Every placebo and permutation draw in pilotlab comes from this module: randomisation inference
(:mod:`pilotlab.inference.permutation`), the randomisation pre-trend test
(:mod:`pilotlab.diagnostics.pretrend`), placebo-in-space checks, the in-space placebos of
synthetic control and synthetic DiD, and the placebo pilots of power analysis.

Treatment is re-assigned across *blocks*: units, or whole clusters when treatment was assigned
to whole clusters (:func:`assignment_blocks`). A re-assignment permutes the blocks' labels (the
period each starts, or :data:`~pilotlab.data.panel.NEVER`): with a common start this chooses
which blocks are treated; with a staggered roll-out it permutes the adoption dates, so the
roll-out schedule (how many blocks start in each period) is kept. When every distinct assignment
fits in the replication budget they are all enumerated (an exact test); otherwise each draw is
the permutation that sorts one row of uniform keys, ``rng.random((replications, n))``
(:func:`permutation_keys`). Because every path draws its keys the same way, two paths given the
same generator draw the same assignments (power's placebo pilots use the assignments the
engine's randomisation test would use; the pre-test's vectorised path reads the treated blocks
off the same keys without sorting them, :func:`label_positions`). The draws themselves are put
in order a chunk of keys at a time by a bucket sort that gives exactly the argsort's permutations
(:func:`~pilotlab.data._row_order.ordered_labels`), so neither the whole key matrix nor its
sorting positions are ever held.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, NamedTuple

import numpy as np

from pilotlab.compiled import on_threads
from pilotlab.data._gather import gather_codes
from pilotlab.data._row_order import ordered_labels, pick_backend
from pilotlab.data.panel import NEVER, Panel

__all__ = [
    "MAX_ENUMERATION",
    "AssignmentBlocks",
    "CodedRows",
    "Reassignments",
    "assignment_blocks",
    "count_assignments",
    "enumerate_assignments",
    "in_space_placebos",
    "label_positions",
    "permutation_keys",
    "permute_codes",
    "permute_labels",
    "placebo_sets",
    "random_subsets",
    "reassign",
]

#: Enumerate all assignments when there are at most this many (and no more than replications).
MAX_ENUMERATION = 200_000

Level = Literal["unit", "cluster"]


class AssignmentBlocks(NamedTuple):
    """The blocks treatment was assigned to.

    Attributes
    ----------
    block_of_unit : numpy.ndarray
        ``(N,)`` block index of every unit.
    first_treated : numpy.ndarray
        ``(n_blocks,)`` first treated period index of every block (:data:`NEVER` for never).
    level : {"unit", "cluster"}
        Whether the blocks are the units or their clusters.
    """

    block_of_unit: np.ndarray
    first_treated: np.ndarray
    level: Level


def count_assignments(counts: np.ndarray) -> int:
    """Number of distinct ways to give ``counts[j]`` blocks label ``j`` (a multinomial)."""
    total = int(counts.sum())
    out = 1
    for c in counts:
        out *= math.comb(total, int(c))
        total -= int(c)
    return out


def enumerate_assignments(labels: np.ndarray) -> np.ndarray:
    """Every distinct permutation of ``labels`` (rows), e.g. all ways to choose treated units.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(n,)`` assignment per block (adoption period index, or a never-treated code).

    Returns
    -------
    numpy.ndarray
        ``(K, n)`` array; row ``k`` is one assignment. ``K`` is the multinomial coefficient.
    """
    values, counts = np.unique(labels, return_counts=True)
    n = labels.size
    rows = np.full((1, n), -1, dtype=np.int64)
    free = np.ones((1, n), dtype=bool)
    # The largest group fills what is left; loop over the other (few) labels only.
    order = np.argsort(counts)[::-1]
    for vi in order[1:]:
        c = int(counts[vi])
        n_free = int(free[0].sum())
        combos = np.array(list(itertools.combinations(range(n_free), c)), dtype=np.int64)
        combos = combos.reshape(-1, c)
        new_rows = np.repeat(rows, combos.shape[0], axis=0)
        new_free = np.repeat(free, combos.shape[0], axis=0)
        free_idx = np.nonzero(new_free)[1].reshape(new_rows.shape[0], n_free)
        picks = np.take_along_axis(free_idx, np.tile(combos, (rows.shape[0], 1)), axis=1)
        r_idx = np.repeat(np.arange(new_rows.shape[0]), c)
        new_rows[r_idx, picks.reshape(-1)] = values[vi]
        new_free[r_idx, picks.reshape(-1)] = False
        rows, free = new_rows, new_free
    rows[free] = values[order[0]]
    return rows


def assignment_blocks(panel: Panel) -> AssignmentBlocks:
    """The blocks that were assigned treatment: whole clusters when treatment is constant within
    every cluster (and there are several clusters, fewer than units), else the units."""
    unit_cluster = np.zeros(panel.n_units, dtype=np.int64)
    unit_cluster[panel.unit] = panel.cluster
    n_cl = int(unit_cluster.max()) + 1 if unit_cluster.size else 0
    if 1 < n_cl < panel.n_units:
        ft = panel.first_treated
        lo = np.full(n_cl, NEVER, dtype=np.int64)
        hi = np.full(n_cl, np.iinfo(np.int64).min, dtype=np.int64)
        np.minimum.at(lo, unit_cluster, ft)
        np.maximum.at(hi, unit_cluster, ft)
        if np.array_equal(lo, hi):  # treatment constant within clusters: permute clusters
            return AssignmentBlocks(unit_cluster, lo, "cluster")
    return AssignmentBlocks(np.arange(panel.n_units), panel.first_treated.astype(np.int64), "unit")


def permutation_keys(replications: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``(replications, n)`` uniform keys; the argsort of a row is one random permutation.

    The one place random permutations of blocks are drawn, so that every path given the same
    generator draws the same assignments.
    """
    return rng.random((replications, n))


@dataclass(frozen=True)
class CodedRows:
    """``(K, N)`` integer labels held as small codes into their few distinct values.

    Re-assignments permute a handful of labels (adoption periods and never), so each row is
    drawn as ``uint8`` codes, an eighth of the labels' ``int64``; :meth:`labels` expands them
    and :meth:`map` applies a function of the labels (such as each label's cohort block) to the
    distinct values only, then gathers it through the codes. ``values`` is ``None`` when the
    codes are the labels themselves.
    """

    codes: np.ndarray
    values: np.ndarray | None

    @classmethod
    def of(cls, labels: np.ndarray | CodedRows) -> CodedRows:
        """``labels`` as :class:`CodedRows` (an array: the labels themselves, as codes)."""
        return labels if isinstance(labels, CodedRows) else cls(np.asarray(labels), None)

    @property
    def shape(self) -> tuple[int, int]:
        """``(K, N)``."""
        return (int(self.codes.shape[0]), int(self.codes.shape[1]))

    def rows(self, lo: int, hi: int) -> CodedRows:
        """Rows ``lo .. hi - 1``."""
        return CodedRows(self.codes[lo:hi], self.values)

    def labels(self) -> np.ndarray:
        """The ``(K, N)`` labels themselves (``int64``)."""
        if self.values is None:
            return np.asarray(self.codes)
        return gather_codes(self.values, self.codes)

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``fn(self.labels())`` for an elementwise ``fn``, from ``fn(values)`` gathered through
        the codes; integer results are kept as ``int8`` when they fit (block indices)."""
        if self.values is None:
            return fn(self.codes)
        table = np.asarray(fn(self.values))
        if table.dtype.kind in "iu" and table.size and table.min() >= -128 and table.max() < 128:
            table = table.astype(np.int8)
        return gather_codes(table, self.codes)

    def ever_treated(self) -> np.ndarray:
        """``(K, N)`` whether each label is a start (not :data:`NEVER`)."""
        return self.map(lambda v: np.asarray(v != NEVER))


def permute_labels(
    labels: np.ndarray, replications: int, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """All distinct permutations of ``labels`` when few enough, else ``replications`` random ones.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(n,)`` label per block (first treated period or :data:`NEVER`).
    replications : int
        Random permutations to draw when enumerating is not possible.
    rng : numpy.random.Generator
        Nothing is drawn when the assignments are enumerated.

    Returns
    -------
    (numpy.ndarray, bool)
        ``(K, n)`` permuted labels (one row per assignment) and whether they are the full
        enumeration (which includes the actual assignment).
    """
    if labels.dtype != np.int64:  # permute the positions of the sorted distinct labels
        values, inverse = np.unique(labels, return_inverse=True)
        rows, exact = permute_codes(inverse.reshape(labels.shape), replications, rng)
        return values[rows.labels()], exact
    rows, exact = permute_codes(labels, replications, rng)
    return rows.labels(), exact


def permute_codes(
    labels: np.ndarray, replications: int, rng: np.random.Generator
) -> tuple[CodedRows, bool]:
    """:func:`permute_labels` of integer ``labels`` as :class:`CodedRows`: the same rows from the
    same numbers drawn from ``rng``, each unit's label held as a ``uint8`` code into the sorted
    distinct labels when there are at most 256 of them (an ``int64`` code otherwise)."""
    labels = np.asarray(labels, dtype=np.int64)
    values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    exact = count_assignments(counts) <= min(replications, MAX_ENUMERATION)
    codes = inverse.reshape(labels.shape).astype(np.uint8 if values.size <= 256 else np.int64)
    if exact:  # the same rows as enumerating the labels: codes keep their order and counts
        rows = enumerate_assignments(codes.astype(np.int64)).astype(codes.dtype)
    else:
        rows = _ordered_draws(codes, labels.size, replications, rng)
    return CodedRows(rows, values), exact


#: Keys drawn at a time by :func:`_ordered_draws` (a buffer reused for every chunk of draws).
DRAW_CHUNK_KEYS = 1 << 20

#: Keys from which :func:`_ordered_draws` draws parts of the stream on threads at once.
SPLIT_STREAM_KEYS = 1 << 22


def _stream_at(rng: np.random.Generator) -> Callable[[int], np.random.Generator] | None:
    """Generators that continue ``rng``'s stream from any offset, or ``None`` when its bit
    generator cannot jump ahead.

    ``rng.random`` of PCG64 (numpy's default) or PCG64DXSM takes one 64-bit output per key, so
    a copy of the generator advanced by ``offset`` outputs draws, from its next key on, the keys
    ``rng`` would draw after ``offset`` others: parts of one stream can be drawn at once.
    """
    bits = rng.bit_generator
    if not isinstance(bits, np.random.PCG64 | np.random.PCG64DXSM):
        return None
    state = bits.state
    kind = type(bits)

    def at(offset: int) -> np.random.Generator:
        part = kind()
        part.state = state
        part.advance(offset)
        return np.random.Generator(part)

    return at


def _skip_stream(rng: np.random.Generator, keys: int) -> None:
    """Put ``rng`` where drawing ``keys`` keys with ``rng.random`` would leave it (``advance``
    clears the buffered 32-bit half-output, which drawing keys leaves as it is)."""
    bits = rng.bit_generator
    assert isinstance(bits, np.random.PCG64 | np.random.PCG64DXSM)  # as _stream_at checked
    before = bits.state
    bits.advance(keys)
    bits.state = {**bits.state, "has_uint32": before["has_uint32"], "uinteger": before["uinteger"]}


def _ordered_draws(
    labels: np.ndarray, width: int, replications: int, rng: np.random.Generator
) -> np.ndarray:
    """``labels[np.argsort(permutation_keys(replications, n, rng), axis=1)][:, :width]``, the
    same numbers from the same stream, without the ``(replications, n)`` keys or sort positions.

    The keys are drawn a chunk of rows at a time into one buffer (``rng.random`` fills an array
    in order, so the chunks continue one stream) and each chunk is put in order by
    :func:`~pilotlab.data._row_order.ordered_labels` straight into its rows of the result. With
    the compiled sort and many keys, blocks of rows are drawn and sorted on threads at once,
    each from its own part of the stream (:func:`_stream_at`), and ``rng`` is then moved past
    all of them: the same keys, the same rows and the same final state as one pass.
    """
    n = labels.size
    out = np.empty((replications, width), dtype=labels.dtype)
    if replications == 0 or n == 0:
        return out
    backend = pick_backend(replications * n, n)
    step = max(1, DRAW_CHUNK_KEYS // n)
    at = _stream_at(rng) if backend == "numba" and replications * n >= SPLIT_STREAM_KEYS else None

    def draw(lo: int, hi: int, source: np.random.Generator, threads: bool) -> None:
        buf = np.empty((min(step, hi - lo), n))
        for a in range(lo, hi, step):  # chunks of draws: the keys stay small
            keys = buf[: min(step, hi - a)]
            source.random(out=keys)
            ordered_labels(
                keys, labels, width, out=out[a : a + keys.shape[0]], backend=backend,
                threads=threads,
            )  # fmt: skip

    if at is None:
        draw(0, replications, rng, True)
        return out
    on_threads(lambda lo, hi: draw(lo, hi, at(lo * n), False), replications)
    _skip_stream(rng, replications * n)
    return out


def label_positions(keys: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """``(K, m)`` positions that receive the labels of ``blocks`` in each permutation of ``keys``.

    ``np.argsort(keys, axis=1)[k, r] == blocks[j]`` exactly when ``r`` is the rank of
    ``keys[k, blocks[j]]`` within row ``k`` (how many keys are smaller), so the ``m`` positions
    given the labels of ``blocks`` in draw ``k`` of :func:`permute_labels` are these ranks:
    ``K x N x m`` comparisons instead of sorting every row. Rows are taken in chunks so the
    comparison array stays small.
    """
    K, N = keys.shape
    m = blocks.size
    out = np.empty((K, m), dtype=np.int64)
    step = max(1, 4_000_000 // max(N * m, 1))
    for a in range(0, K, step):  # chunks of draws, each one vectorised comparison
        kk = keys[a : a + step]
        v = kk[:, blocks]
        out[a : a + step] = (v[:, :, None] > kk[:, None, :]).sum(axis=-1)  # contiguous
    return out


@dataclass(frozen=True)
class Reassignments:
    """Re-assignments of a panel's treatment across its blocks, expanded to units.

    Attributes
    ----------
    rows : CodedRows
        ``(K, N)`` first treated period of every unit under each re-assignment, less the
        panel's anticipation (when the effect may start), :data:`NEVER` for never treated,
        held as codes (:attr:`effective` expands them).
    observed_effective : numpy.ndarray
        ``(N,)`` the actual assignment on the same scale.
    exact : bool
        Whether the rows are every distinct assignment (the actual one among them).
    level : {"unit", "cluster"}
        What was re-assigned.
    anticipation : int
        Periods of anticipation the labels were shifted by.
    """

    rows: CodedRows
    observed_effective: np.ndarray
    exact: bool
    level: Level
    anticipation: int

    @classmethod
    def of_labels(
        cls, effective: np.ndarray, observed: np.ndarray, exact: bool, level: Level, shift: int
    ) -> Reassignments:
        """Re-assignments given as the ``(K, N)`` labels themselves."""
        return cls(
            CodedRows(np.asarray(effective, dtype=np.int64), None), observed, exact, level, shift
        )

    @property
    def n_assignments(self) -> int:
        """Number of rows."""
        return self.rows.shape[0]

    @cached_property
    def effective(self) -> np.ndarray:
        """``(K, N)`` the re-assigned labels themselves (``int64``)."""
        return self.rows.labels()

    def _unshifted(self, labels: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.where(labels == NEVER, NEVER, labels + self.anticipation)
        return out

    def first_treated(self) -> np.ndarray:
        """``(K, N)`` first treated period of every unit (the scale of ``Panel.first_treated``);
        without anticipation a read-only view of the re-assignments themselves."""
        e = self.effective
        if self.anticipation == 0:
            view = e.view()
            view.flags.writeable = False
            return view
        return self._unshifted(e)

    def first_treated_rows(self) -> CodedRows:
        """:meth:`first_treated` as :class:`CodedRows` (nothing expanded)."""
        if self.rows.values is None:
            return CodedRows(self.first_treated(), None)
        return CodedRows(self.rows.codes, self._unshifted(self.rows.values))

    def treated(self) -> np.ndarray:
        """``(K, N)`` whether each unit is ever treated under each re-assignment."""
        return self.rows.ever_treated()


def reassign(panel: Panel, replications: int, rng: np.random.Generator) -> Reassignments:
    """Re-assign ``panel``'s treatment across its blocks (units, or clusters assigned whole).

    The labels permuted are the blocks' first treated periods less the anticipation, so a
    re-assigned unit may anticipate as the actual ones do. All distinct assignments when there
    are at most ``min(replications, MAX_ENUMERATION)``, else ``replications`` random ones drawn
    with :func:`permute_labels` (as :func:`permute_codes`).
    """
    block_of_unit, block_ft, level = assignment_blocks(panel)
    shift = int(panel.anticipation)
    eff = np.where(block_ft == NEVER, NEVER, block_ft - shift)
    blocks, exact = permute_codes(eff, replications, rng)
    if level == "unit":  # the blocks are the units, in order: nothing to expand
        return Reassignments(blocks, eff, exact, level, shift)
    units = CodedRows(blocks.codes[:, block_of_unit], blocks.values)
    return Reassignments(units, eff[block_of_unit], exact, level, shift)


def random_subsets(n: int, size: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(draws, size)`` indices of ``size`` of ``n`` units drawn without replacement per draw
    (the first ``size`` positions of a random permutation)."""
    width = len(range(n)[:size])  # the columns ``[:, :size]`` keeps, as slicing counts them
    return _ordered_draws(np.arange(n), width, draws, rng)


def placebo_sets(n: int, size: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(draws, size)`` pseudo-treated units for in-space placebos among ``n`` comparison units.

    One unit per draw is uniform over the ``n`` (independently across draws); several are a
    :func:`random_subsets` draw.
    """
    if size == 1:
        return rng.integers(0, n, size=(draws, 1))
    return random_subsets(n, size, draws, rng)


def in_space_placebos(n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Comparison units that each play the treated unit once: all ``n`` when ``n <= draws``
    (nothing drawn), else ``draws`` of them without replacement, in increasing order."""
    if n <= draws:
        return np.arange(n)
    return np.sort(rng.choice(n, size=draws, replace=False))
