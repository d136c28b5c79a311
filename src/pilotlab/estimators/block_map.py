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

from dataclasses import dataclass

import numpy as np

from pilotlab.data.panel import NEVER

__all__ = ["BlockMap"]


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

    def blocks(self, first_treated: np.ndarray) -> np.ndarray:
        """The block of every unit under each assignment (first treated periods, any shape):
        ``-1`` for a label that is neither a cohort of the actual assignment nor never."""
        h = self.cohorts.size
        pos = np.minimum(np.searchsorted(self.cohorts, first_treated), h - 1)
        out: np.ndarray = np.where(self.cohorts[pos] == first_treated, pos, -1)
        return np.where(first_treated == NEVER, h, out)

    def keeps_sizes(self, first_treated: np.ndarray, observed: np.ndarray) -> bool:
        """Whether every assignment (rows of ``first_treated``) puts as many units in each block
        as ``observed`` does, so that the coefficients hold for it (a re-assignment of units
        always does; one of whole clusters of unequal sizes may not)."""
        blocks = self.blocks(np.atleast_2d(first_treated))
        if (blocks < 0).any():
            return False
        width = self.cohorts.size + 1
        rows = np.arange(blocks.shape[0])[:, None] * width
        counts = np.bincount((rows + blocks).ravel(), minlength=blocks.shape[0] * width)
        want = np.bincount(self.blocks(observed), minlength=width)
        return bool(
            np.array_equal(
                counts.reshape(-1, width), np.broadcast_to(want, (blocks.shape[0], width))
            )
        )

    def estimates(self, outcomes: np.ndarray, first_treated: np.ndarray) -> np.ndarray:
        """The estimate under each assignment (``(B, N)`` first treated periods) of the
        ``(N, T)`` outcome matrix ``outcomes``: one ``(N, blocks)`` product, then a gather."""
        M = outcomes @ self.coef.T  # unit i's estimate contribution if it were in block h
        blocks = self.blocks(np.atleast_2d(first_treated))
        if (blocks < 0).any():
            raise ValueError("an assignment puts a unit in a cohort the map does not know")
        n = M.shape[0]
        out = np.empty(blocks.shape[0])
        rows = np.arange(n)[None, :]
        chunk = max(1, 8_000_000 // max(n, 1))
        for s in range(0, blocks.shape[0], chunk):  # bounded memory; vectorised within
            out[s : s + chunk] = M[rows, blocks[s : s + chunk]].sum(axis=1)
        return out
