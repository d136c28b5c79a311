"""Microdata held as area x period cells: the sufficient statistics of the person-level rows.

A :class:`~pilotlab.data.panel.Panel` with ``layout == "microdata"`` has one row per area and
period (a *cell*). Its ``frame`` holds, for each outcome ``o``, the statistics of the person rows
of that cell where ``o`` and every covariate are observed:

``__n:o``
    number of person rows (the micro count behind the small-sample corrections);
``__w:o``
    their summed weight (the number of rows when unweighted);
``o`` and ``__m:o:x``
    weighted cell means of the outcome and of each person-level covariate ``x``;
``__q:o:i:j``
    weighted within-cell centred cross-products of ``(x_1..x_p, o)`` (``i <= j``);
``__a0:o``, ``__a1:o``, ``__a2:o``
    ``sum w^2 (o - mean)^2``, ``sum w^2 (o - mean)`` and ``sum w^2`` (heteroskedasticity-robust
    errors).

The statistics are centred within the cell, so they are unchanged when a constant is added to
every row of a cell (an injected effect, a permuted treatment): the statistics move with the
frame's rows through every panel operation. :meth:`MicroCells.complete` selects one outcome's
cells, weights and covariate means, which is what the estimators then read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pilotlab.data.panel import WEIGHT
from pilotlab.results import MicrodataCounts

if TYPE_CHECKING:
    from pilotlab.data.panel import Panel

__all__ = [
    "ROWS",
    "MicroCells",
    "mean_column",
    "n_column",
    "q_column",
    "robust_columns",
    "row_counts",
    "weight_column",
]

#: Column of the person rows behind each cell for the outcome selected by ``complete``.
ROWS = "_rows"


def n_column(outcome: str) -> str:
    """Column of the number of person rows per cell for ``outcome``."""
    return f"__n:{outcome}"


def weight_column(outcome: str) -> str:
    """Column of the summed person weight per cell for ``outcome``."""
    return f"__w:{outcome}"


def mean_column(outcome: str, covariate: str) -> str:
    """Column of a covariate's weighted cell mean over the rows used for ``outcome``."""
    return f"__m:{outcome}:{covariate}"


def q_column(outcome: str, i: int, j: int) -> str:
    """Column of the centred cross-product of variables ``i <= j`` of ``(covariates, outcome)``."""
    return f"__q:{outcome}:{min(i, j)}:{max(i, j)}"


def robust_columns(outcome: str) -> tuple[str, str, str]:
    """Columns of ``sum w^2 (y - mean)^2``, ``sum w^2 (y - mean)`` and ``sum w^2`` per cell."""
    return f"__a0:{outcome}", f"__a1:{outcome}", f"__a2:{outcome}"


@dataclass(frozen=True)
class MicroCells:
    """What the cells of a microdata panel hold and the person-level counts behind them.

    ``covariates`` are the person-level covariates whose cross-products were aggregated;
    ``rows`` is the number of person rows read, ``rows_used`` those with each outcome (and the
    covariates) observed, ``persons`` the distinct person ids (``None`` without ``data.person``),
    ``files`` the number of files read. ``outcome`` is the outcome selected by :meth:`complete`.
    """

    outcomes: tuple[str, ...]
    covariates: tuple[str, ...]
    rows: int
    rows_used: tuple[int, ...]
    persons: int | None
    files: int
    person_column: str | None = None
    weight_column: str | None = None
    outcome: str | None = None

    @property
    def person_panel(self) -> bool:
        """Persons are followed over periods (a person id column is given)."""
        return self.person_column is not None

    def used(self, outcome: str) -> int:
        """Person rows behind the estimates of ``outcome``."""
        return self.rows_used[self.outcomes.index(outcome)] if outcome in self.outcomes else 0

    def summary(self, cells: int) -> MicrodataCounts:
        """The person-level counts for the report and the evidence record."""
        return MicrodataCounts(
            rows=self.rows,
            persons=self.persons,
            cells=cells,
            files=self.files,
            rows_used=dict(zip(self.outcomes, self.rows_used, strict=True)),
            person_column=self.person_column,
            covariates_within_cells=tuple(self.covariates),
        )

    def n_vars(self) -> int:
        """Number of variables whose cross-products are held: the covariates and the outcome."""
        return len(self.covariates) + 1

    def complete(self, panel: Panel, outcome: str, columns: tuple[str, ...] = ()) -> Panel:
        """The cells with person rows for ``outcome``, weighted by those rows' summed weight and
        with the covariate means over the same rows (what an estimator of ``outcome`` reads)."""
        if outcome not in self.outcomes:
            return panel  # a derived column (a permuted treatment): the cells stay as they are
        frame = panel.frame
        counts = frame[n_column(outcome)].to_numpy(np.float64)
        ok = (counts > 0) & frame[outcome].notna().to_numpy()
        out = frame.loc[ok].reset_index(drop=True)
        out[WEIGHT] = out[weight_column(outcome)].to_numpy(np.float64)
        out[ROWS] = out[n_column(outcome)].to_numpy(np.float64)
        for c in columns:
            if c in self.covariates:
                out[c] = out[mean_column(outcome, c)].to_numpy(np.float64)
        return dataclasses.replace(
            panel, frame=out, micro=dataclasses.replace(self, outcome=outcome)
        )


def row_counts(panel: Panel) -> np.ndarray:
    """Person rows behind each row of the panel's frame (ones for any layout but microdata)."""
    if panel.micro is None or ROWS not in panel.frame.columns:
        return np.ones(panel.nobs)
    return panel.frame[ROWS].to_numpy(np.float64)
