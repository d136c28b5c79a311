"""Estimates that are linear maps of the outcomes once each unit's block is known.

Some estimators (Callaway & Sant'Anna without covariates on a balanced panel) compute their
estimate as ``sum_i coef[block_i] . y_i``: unit ``i`` enters only through the outcomes of its
row and the block its first treated period puts it in (its cohort, or never treated), and the
coefficients depend on the blocks' sizes alone. A re-assignment that keeps the roll-out schedule
(how many units start in each period, as permutation inference does) keeps the coefficients, so
the estimates of every re-assignment are one product of the outcome matrix with the
coefficients and a gather-and-sum over units, instead of one re-fit each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np

from pilotlab.data.assignment import CodedRows
from pilotlab.data.panel import NEVER

__all__ = ["BlockMap", "PrePeriodMap", "cohort_blocks", "weighted_block_sums"]


def cohort_blocks(cohorts: np.ndarray, first_treated: np.ndarray) -> np.ndarray:
    """Each label's block: ``h`` for the sorted first treated period ``cohorts[h]``,
    ``cohorts.size`` for never treated and ``-1`` for any other label (any shape)."""
    h = cohorts.size
    top = int(cohorts[-1]) + 1
    ft = np.asarray(first_treated)
    if ft.dtype == np.int64:  # one gather: label + 1 -> block, out-of-range ends clipped
        # 0: never (below every label; NEVER + 1 wraps to the smallest int64 and lands
        # here too), 1 + g: label g, top + 2: beyond the last cohort
        shifted = np.full(top + 3, -1, dtype=np.int64)
        shifted[cohorts + 1] = np.arange(h)
        shifted[0] = h
        fast: np.ndarray = np.take(shifted, ft + 1, mode="clip")
        return fast
    table = np.full(top + 2, -1, dtype=np.int64)  # label -> block; top: beyond; top+1: never
    table[cohorts] = np.arange(h)
    table[top + 1] = h
    code = np.where(ft == NEVER, top + 1, np.clip(ft, -1, top))
    out: np.ndarray = table[code]
    return out


@dataclass(frozen=True)
class BlockMap:
    """The estimate of a fit as ``sum_i coef[block(first_treated_i)] . y_i``.

    ``coef`` is ``(blocks, T)``; ``cohorts`` are the sorted first treated periods of the treated
    blocks (block ``h`` is ``cohorts[h]``, the last block the never treated); ``estimate`` is what
    the estimator itself returned for the actual assignment, which the map reproduces.
    """

    coef: np.ndarray
    cohorts: np.ndarray
    estimate: float

    def blocks(self, first_treated: np.ndarray | CodedRows) -> np.ndarray:
        """The block of every unit under each assignment (first treated periods, any shape, or
        :class:`~pilotlab.data.assignment.CodedRows`, whose blocks come as ``int8``): ``-1``
        for a label that is neither a cohort of the actual assignment nor never."""
        return CodedRows.of(first_treated).map(partial(cohort_blocks, self.cohorts))

    def keeps_sizes(self, blocks: np.ndarray, observed: np.ndarray) -> bool:
        """Whether every assignment (rows of ``blocks``, from :meth:`blocks`) puts as many units
        in each block as ``observed`` does, so that the coefficients hold for it (a
        re-assignment of units always does; one of whole clusters of unequal sizes may not)."""
        if (blocks < 0).any():
            return False
        width = self.cohorts.size + 1
        rows = np.arange(blocks.shape[0])[:, None] * width
        counts = np.bincount((rows + blocks).ravel(), minlength=blocks.shape[0] * width)
        want = np.bincount(self.blocks(observed), minlength=width)
        return bool((counts.reshape(-1, width) == want[None, :]).all())

    def estimates(self, outcomes: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        """The estimates of the ``(Q, N, T)`` outcome matrices ``outcomes`` under each assignment
        (rows of ``blocks``, from :meth:`blocks`), as ``(B, Q)``: one ``(N, blocks)`` product
        per outcome matrix, then a gather over units."""
        if (blocks < 0).any():
            raise ValueError("an assignment puts a unit in a cohort the map does not know")
        M = np.einsum("qnt,ht->qnh", outcomes, self.coef)  # unit i's part if it were in block h
        q, n, width = M.shape
        flat = M.reshape(q, n * width)
        out = np.empty((blocks.shape[0], q))
        offset = (np.arange(n) * width)[None, :]
        chunk = max(1, 4_000_000 // max(n, 1))
        for s in range(0, blocks.shape[0], chunk):  # bounded memory; vectorised within
            at = blocks[s : s + chunk] + offset
            for j in range(q):  # one pass per outcome matrix (the outcome and its slope)
                out[s : s + chunk, j] = np.take(flat[j], at).sum(axis=1)
        return out


def weighted_block_sums(
    outcomes: np.ndarray, w: np.ndarray, blocks: np.ndarray, n_blocks: int, chunk: int
) -> Iterator[tuple[int, np.ndarray]]:
    """The weighted sums of the ``(Q, N, T)`` outcome matrices by each assignment's blocks
    (rows of ``blocks``), with the blocks' weighted sizes, for maps whose coefficients move
    with those sizes: ``(start, Z)`` for each ``chunk`` of assignments from ``start``, ``Z``
    ``(b, n_blocks, Q * T + 1)`` (outcome ``q``'s period ``t`` in column ``q * T + t``, the
    weight last). One matrix product per treated block; the last block, the never treated, by
    difference from the total."""
    N = outcomes.shape[1]
    rows = np.column_stack([(outcomes * w[None, :, None]).transpose(1, 0, 2).reshape(N, -1), w])
    total = rows.sum(axis=0)
    for a in range(0, blocks.shape[0], chunk):  # bounded memory
        part = blocks[a : a + chunk]
        out = np.empty((part.shape[0], n_blocks, rows.shape[1]))
        for h in range(n_blocks - 1):  # a handful of cohorts
            out[:, h] = (part == h).astype(np.float64) @ rows
        out[:, -1] = total[None, :] - out[:, :-1].sum(axis=1)
        yield a, out


@dataclass(frozen=True)
class PrePeriodMap:
    """An estimator's pre-period event-time estimates and their variances for many assignments.

    For an estimator whose pre-period estimates ``a_e`` and cluster-robust variances ``v_e`` are
    functions of per-block sums of the outcomes (block = cohort under the assignment), ``sums``
    returns, for every assignment and every row ``j`` of ``coef``, the combination
    ``sum_e coef[j, e] a_e`` and ``sum_e coef[j, e]^2 v_e`` -- what a statistic that ignores the
    estimates' covariances needs -- without re-fitting. ``event_times`` are the pre-period event
    times ``e`` (the columns of ``coef``); ``sums`` returns ``None`` when an assignment breaks
    what the map assumes (a cohort of another size, a cluster split across cohorts), so the
    caller re-fits instead.
    """

    event_times: tuple[int, ...]
    compute: Callable[[CodedRows, np.ndarray], tuple[np.ndarray, np.ndarray] | None]
    #: The pre-period estimates themselves and their full covariance under each assignment,
    #: ``(B, E)`` and ``(B, E, E)`` (for a statistic that uses the covariances, such as the
    #: Wald statistic of an event study's leads); ``None`` where the map has only ``compute``.
    leads: Callable[[CodedRows], tuple[np.ndarray, np.ndarray] | None] | None = None

    def sums(
        self, first_treated: np.ndarray | CodedRows, coef: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(B, J)`` combinations of the estimates and of the variances under each assignment
        (rows of the ``(B, N)`` first treated periods ``first_treated``)."""
        return self.compute(_rows(first_treated), np.atleast_2d(coef))

    def estimates(
        self, first_treated: np.ndarray | CodedRows
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(B, E)`` pre-period estimates and ``(B, E, E)`` covariances under each assignment
        (``None`` without :attr:`leads`, or when an assignment breaks what the map assumes)."""
        return None if self.leads is None else self.leads(_rows(first_treated))


def _rows(first_treated: np.ndarray | CodedRows) -> CodedRows:
    """Assignments as :class:`~pilotlab.data.assignment.CodedRows` (an array: one row, or rows,
    of the labels themselves)."""
    if isinstance(first_treated, CodedRows):
        return first_treated
    return CodedRows.of(np.atleast_2d(np.asarray(first_treated, dtype=np.int64)))
