"""The analysis panel: data mapped to integer unit and period codes, frozen after loading."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from pilotlab.results.summary import MissingSummary, UnitFlow

if TYPE_CHECKING:
    from pilotlab.data.allocation import Allocation
    from pilotlab.data.cells import MicroCells

__all__ = [
    "CLUSTER",
    "NEVER",
    "TIME",
    "UNIT",
    "WEIGHT",
    "MissingSummary",
    "Panel",
    "UnitFlow",
    "frame_sha256",
]

#: ``first_treated`` value of never-treated units: larger than any period index, so
#: ``time >= first_treated`` is False for them without special cases.
NEVER: int = np.iinfo(np.int64).max

# Reserved column names of Panel.frame (user columns keep their own names beside these).
UNIT = "_unit"
TIME = "_time"
CLUSTER = "_cluster"
WEIGHT = "_weight"


def frame_sha256(df: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's content (for data passed in memory)."""
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    cols = ",".join(map(str, df.columns)).encode()
    return hashlib.sha256(cols + hashed.tobytes()).hexdigest()


@dataclass(frozen=True, eq=False)
class Panel:
    """Long-format data with integer codes, ready for estimators.

    ``frame`` has one row per observation with the reserved columns ``_unit`` (0..N-1),
    ``_time`` (0..T-1, the ordered period index), ``_cluster`` (0..G-1) and ``_weight``, plus the
    outcome and covariate columns under their own names. ``first_treated[u]`` is the period index
    at which unit ``u`` is first treated, or :data:`NEVER`; comparison-restricted and excluded units
    are already removed. Labels map codes back to what the user wrote.

    ``fingerprint`` is the SHA-256 of the data file's bytes; for data passed in memory it is
    empty and :attr:`data_sha256` hashes the frame when it is first asked for (only the record
    of an evaluation needs it).

    ``treatment`` is set only when treatment is not absorbing (a unit stops being treated, or
    moves in and out): the 0/1 status of each unit (rows) in each period (columns), as int8;
    ``first_treated`` is then each unit's first treated period. ``group`` names the 0/1 column
    of ``frame`` marking eligible (1) and ineligible (0) rows within a unit (``data.group``, for
    the triple difference), or is ``None``.
    """

    frame: pd.DataFrame
    unit_labels: tuple[str, ...]
    period_labels: tuple[str, ...]
    cluster_labels: tuple[str, ...]
    first_treated: np.ndarray
    outcomes: tuple[str, ...]
    covariates: tuple[str, ...] = ()
    layout: Literal["panel", "repeated_cross_section", "microdata"] = "panel"
    anticipation: int = 0
    comparison: Literal["never_treated", "not_yet_treated"] = "never_treated"
    weighted: bool = False
    fingerprint: str = ""
    unit_flow: UnitFlow | None = None
    missing: tuple[MissingSummary, ...] = field(default=())
    #: The randomised allocation the treatment was taken from (pilots with ``assignment``).
    allocation: Allocation | None = None
    #: Microdata aggregated to area x period cells: each row of ``frame`` is a cell and this
    #: names the columns of its sufficient statistics (``None`` for any other layout).
    micro: MicroCells | None = None
    treatment: np.ndarray | None = None
    group: str | None = None

    @cached_property
    def data_sha256(self) -> str:
        """SHA-256 of the data: the file's (``fingerprint``), else of the frame's content."""
        return self.fingerprint or frame_sha256(self.frame)

    # ------------------------------------------------------------------ arrays
    @cached_property
    def unit(self) -> np.ndarray:
        """Unit code of each row."""
        return self.frame[UNIT].to_numpy(np.int64)

    @cached_property
    def time(self) -> np.ndarray:
        """Period index of each row."""
        return self.frame[TIME].to_numpy(np.int64)

    @cached_property
    def cluster(self) -> np.ndarray:
        """Cluster code of each row."""
        return self.frame[CLUSTER].to_numpy(np.int64)

    @cached_property
    def weight(self) -> np.ndarray:
        """Analytic weight of each row (ones when unweighted)."""
        return self.frame[WEIGHT].to_numpy(np.float64)

    def unit_weights(self) -> np.ndarray | None:
        """Each unit's weight when it is constant over the unit's rows, else ``None``."""
        wrow = self.weight
        u = self.unit
        n = np.bincount(u, minlength=self.n_units)
        mean: np.ndarray = np.bincount(u, weights=wrow, minlength=self.n_units) / np.maximum(n, 1)
        if not np.allclose(wrow, mean[u], rtol=1e-12, atol=0.0):
            return None
        return mean

    @cached_property
    def cohort(self) -> np.ndarray:
        """First treated period index of each row's unit (:data:`NEVER` if never treated)."""
        out_: np.ndarray = self.first_treated[self.unit]
        return out_

    @property
    def is_switching(self) -> bool:
        """Treatment is not absorbing: some unit stops being treated (see ``treatment``)."""
        return self.treatment is not None

    @cached_property
    def treated_now(self) -> np.ndarray:
        """Whether each row is a treated unit in a treated period (after anticipation shift);
        with eligibility groups, only the eligible rows of such a unit and period."""
        if self.treatment is not None:
            out_: np.ndarray = self.treatment[self.unit, self.time].astype(bool)
        else:
            start = self.cohort - self.anticipation if self.anticipation else self.cohort
            out_ = self.time >= start
        if self.group is not None:
            out_ = out_ & (self.frame[self.group].to_numpy() == 1)
        return out_

    def y(self, outcome: str) -> np.ndarray:
        """Outcome values as float64 (NaN where missing)."""
        return self.frame[outcome].to_numpy(np.float64)

    # ------------------------------------------------------------------ sizes
    @property
    def n_units(self) -> int:
        """Number of units."""
        return len(self.unit_labels)

    @property
    def n_periods(self) -> int:
        """Number of periods."""
        return len(self.period_labels)

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return len(self.cluster_labels)

    @property
    def nobs(self) -> int:
        """Number of rows."""
        return len(self.frame)

    @cached_property
    def is_treated_unit(self) -> np.ndarray:
        """Boolean per unit: ever treated."""
        out_: np.ndarray = self.first_treated != NEVER
        return out_

    @property
    def n_treated_units(self) -> int:
        """Number of ever-treated units."""
        return int(self.is_treated_unit.sum())

    @cached_property
    def cohorts(self) -> np.ndarray:
        """Sorted distinct first-treated period indices of treated units."""
        return np.unique(self.first_treated[self.is_treated_unit])

    @property
    def is_staggered(self) -> bool:
        """More than one adoption period among treated units."""
        return len(self.cohorts) > 1

    @cached_property
    def n_treated_clusters(self) -> int:
        """Number of clusters containing a treated unit."""
        return int(np.unique(self.cluster[self.is_treated_unit[self.unit]]).size)

    @cached_property
    def is_balanced(self) -> bool:
        """Every unit observed in every period exactly once (panel layout)."""
        return self.layout == "panel" and self.nobs == self.n_units * self.n_periods

    @cached_property
    def is_rectangular(self) -> bool:
        """Balanced and sorted by unit then period, so arrays reshape to (units, periods)."""
        if not self.is_balanced:
            return False
        T = self.n_periods
        return bool(
            np.array_equal(self.time, np.tile(np.arange(T), self.n_units))
            and np.array_equal(self.unit, np.repeat(np.arange(self.n_units), T))
        )

    def subset_units(self, keep: np.ndarray) -> Panel:
        """A new panel with only the units where ``keep`` (boolean per unit) is true, recoded."""
        keep = np.asarray(keep, dtype=bool)
        new_code = np.cumsum(keep) - 1
        rows = keep[self.unit]
        frame = self.frame.loc[rows].copy()
        frame[UNIT] = new_code[frame[UNIT].to_numpy()]
        clusters, cl_codes = np.unique(frame[CLUSTER].to_numpy(), return_inverse=True)
        frame[CLUSTER] = cl_codes
        frame = frame.reset_index(drop=True)
        return _replace(
            self,
            frame=frame,
            unit_labels=tuple(np.asarray(self.unit_labels, dtype=object)[keep]),
            cluster_labels=tuple(np.asarray(self.cluster_labels, dtype=object)[clusters]),
            first_treated=self.first_treated[keep],
            treatment=None if self.treatment is None else self.treatment[keep],
        )

    def complete(self, outcome: str, columns: tuple[str, ...] = ()) -> Panel:
        """Rows where ``outcome`` and ``columns`` are all observed (missing values are reported
        by the loader, then left out of each estimate here)."""
        if self.micro is not None:  # each outcome has its own person rows, counts and weights
            return self.micro.complete(self, outcome, columns)
        cols = [outcome, *columns]
        ok = self.frame[cols].notna().all(axis=1).to_numpy()
        if ok.all():
            return self
        return _replace(self, frame=self.frame.loc[ok].reset_index(drop=True))

    def with_first_treated(self, first_treated: np.ndarray) -> Panel:
        """The same data with another, absorbing, treatment assignment (placebos, permutations,
        power): a switching treatment is replaced by treatment from ``first_treated`` on.

        The allocation is kept only when the treatment is unchanged: another assignment is no
        longer the one that was randomised.
        """
        ft = np.asarray(first_treated, dtype=np.int64)
        same = ft.shape == self.first_treated.shape and np.array_equal(ft, self.first_treated)
        return _replace(
            self, first_treated=ft, allocation=self.allocation if same else None, treatment=None
        )

    def with_frame(self, frame: pd.DataFrame) -> Panel:
        """The same design with other data rows (e.g. an outcome with effects injected)."""
        return _replace(self, frame=frame)

    def truncate_periods(self, last: int) -> Panel:
        """Only periods ``0..last`` (placebo-in-time, power from history)."""
        rows = self.time <= last
        return _replace(
            self,
            frame=self.frame.loc[rows].reset_index(drop=True),
            period_labels=self.period_labels[: last + 1],
            treatment=None if self.treatment is None else self.treatment[:, : last + 1],
        )


def _replace(panel: Panel, **changes: object) -> Panel:
    fields = {name: getattr(panel, name) for name in Panel.__dataclass_fields__}
    fields.update(changes)
    return Panel(**fields)
