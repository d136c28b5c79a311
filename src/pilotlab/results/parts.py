"""Typed, frozen parts of a result: what one stage hands to the next instead of a loose mapping.

An :class:`~pilotlab.results.EffectResult` carries at most one part per kind of estimator:

* :class:`LinearParts` for regression estimators (the fit and which combination of its
  coefficients is the headline), read by the wild bootstrap, Romano-Wolf, power and the
  honest-DiD check;
* :class:`StaggeredTables` for the staggered (group-time) estimator;
* :class:`SyntheticTables` for the synthetic designs;
* :class:`GroupMeans` for the two-by-two difference in differences;
* :class:`PermutationRecord` / :class:`WildBootstrapRecord` for inference applied after the fit.

Tables are :class:`Table` objects: a frozen wrapper around a private DataFrame that hands out
copies, so no reader can change what another reader sees. The tables here are small (one row per
donor, period, cohort or group-time cell), so a copy per read costs microseconds and keeps every
reader on ordinary pandas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pilotlab.frameworks import Metric

__all__ = [
    "AnalyticMDE",
    "BaconDecomposition",
    "CellLinearFit",
    "Criterion",
    "DesignDiagnostics",
    "DesignMDE",
    "EvidenceStrength",
    "GroupMeans",
    "InferenceRecord",
    "LinearFit",
    "LinearParts",
    "PermutationRecord",
    "PilotLike",
    "StaggeredTables",
    "SyntheticTables",
    "Table",
    "VcovType",
    "WildBootstrapRecord",
    "json_scalar",
]

VcovType = Literal["cluster", "robust", "iid"]


def json_scalar(value: Any) -> Any:
    """A JSON-safe scalar: numpy scalars become Python ones, NaN / inf become ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------------------------ tables
@dataclass(frozen=True, eq=False)
class Table:
    """A read-only table: build it from a DataFrame, read it back as a fresh copy.

    ``Table(frame)`` keeps a private deep copy; :attr:`frame` returns another copy each time,
    so a reader may sort, filter or add columns without touching the result it came from.
    :meth:`records` is the evidence record's JSON form (one object per row, NaN as ``null``).
    """

    source: InitVar[pd.DataFrame]
    _frame: pd.DataFrame = field(init=False, repr=False)

    def __post_init__(self, source: pd.DataFrame) -> None:
        object.__setattr__(self, "_frame", pd.DataFrame(source).copy(deep=True))

    @property
    def frame(self) -> pd.DataFrame:
        """The table as a new DataFrame (a copy: changing it changes nothing else)."""
        return self._frame.copy(deep=True)

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names."""
        return tuple(str(c) for c in self._frame.columns)

    def column(self, name: str) -> np.ndarray:
        """One column as a new numpy array."""
        return self._frame[name].to_numpy(copy=True)

    def __len__(self) -> int:
        return len(self._frame)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and self._frame.equals(other._frame)

    __hash__ = None  # type: ignore[assignment]  # tables compare by content

    def records(self) -> list[dict[str, Any]]:
        """JSON form: one object per row, numpy scalars as Python ones, NaN / inf as ``null``."""
        return [
            {str(k): json_scalar(v) for k, v in row.items()}
            for row in self._frame.to_dict("records")
        ]


# ------------------------------------------------------------------------------------ linear
@dataclass(frozen=True)
class LinearFit:
    """A least-squares fit after absorbing fixed effects (the input to wild bootstrap inference).

    ``X`` and ``y`` are the within-transformed regressors and outcome multiplied by
    ``sqrt(weight)``; ``resid = y - X @ beta``. ``fe`` keeps the absorbed factors' codes and
    ``weights`` the regression weights, so that a bootstrap can re-project its own outcomes on the
    fixed effects (needed whenever a factor is not nested in the clusters). Pure data: the solver
    that makes it is :func:`pilotlab.estimators.linear.fit_linear`.
    """

    X: np.ndarray
    y: np.ndarray
    beta: np.ndarray
    resid: np.ndarray
    cluster: np.ndarray
    names: tuple[str, ...]
    df_absorbed: int
    xtx_inv: np.ndarray
    vcov: np.ndarray
    vcov_type: VcovType
    n_clusters: int
    df_resid: int  # degrees of freedom for t / F reference distributions
    cluster_scores: np.ndarray | None = None  # G x k sums of X * resid (cluster vcov only)
    fe: tuple[np.ndarray, ...] = ()  # codes of the absorbed factors (0..levels-1 each)
    weights: np.ndarray | None = None  # analytic weights (None: unweighted)

    @property
    def nobs(self) -> int:
        """Number of observations."""
        return int(self.y.shape[0])

    @property
    def std_errors(self) -> np.ndarray:
        """Standard errors of ``beta``."""
        se: np.ndarray = np.sqrt(np.clip(np.diag(self.vcov), 0.0, None))  # ~0 may round negative
        return se

    def coef(self, name: str) -> int:
        """Position of a named coefficient."""
        return self.names.index(name)


@dataclass(frozen=True)
class CellLinearFit(LinearFit):
    """A :class:`LinearFit` whose regressors are functions of a unit's group and the period
    (event-time indicators of a cohort, within-transformed): ``X`` is not stored but made on
    first use from the distinct rows, as ``cells[unit_group].reshape(-1, k)`` (a rectangular
    panel, rows sorted by unit then period; times the square root of the weights, if any). The fit itself never needs it, so an event study
    with every event time holds ``groups x periods x k`` numbers instead of ``rows x k``.
    """

    cells: np.ndarray = field(default_factory=lambda: np.empty((0, 0, 0)))
    unit_group: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if "X" in self.__dict__ and self.__dict__["X"] is None:
            object.__delattr__(self, "X")  # made on first use by __getattr__

    def __getattr__(self, name: str) -> Any:
        if name != "X":
            raise AttributeError(name)
        k = self.cells.shape[2]
        X = self.cells[self.unit_group].reshape(-1, k)
        if self.weights is not None:  # scaled as the outcome and the residuals are
            X *= np.sqrt(self.weights)[:, None]
        object.__setattr__(self, "X", X)
        return X


@dataclass(frozen=True)
class LinearParts:
    """The regression behind a linear estimator's headline estimate.

    The headline is ``beta[coef_index]``, or ``combination @ beta`` when ``combination`` is set
    (the event study's average of post-period effects). ``event_times`` name the event-time
    coefficients (in order, first in ``fit.names``) and ``reference`` the omitted period;
    ``window`` is the event-time window ``(pre, post)`` used. ``weights_variance`` is what
    estimating the combination's weights adds to ``c' V c`` (Sun & Abraham's cohort shares): the
    headline standard error is ``sqrt(c' V c + weights_variance)``; the wild bootstrap, which
    holds the assignment fixed, reads the fit alone.
    """

    fit: LinearFit
    coef_index: int = 0
    combination: np.ndarray | None = None
    event_times: tuple[int, ...] = ()
    reference: int | None = None
    window: tuple[int, int] | None = None
    weights_variance: float = 0.0

    def contrast(self) -> np.ndarray:
        """The headline as a contrast vector ``c`` with ``estimate = c @ beta``."""
        if self.combination is not None:
            return np.asarray(self.combination, dtype=np.float64).reshape(-1)
        c = np.zeros(len(self.fit.names))
        c[self.coef_index] = 1.0
        return c


# ---------------------------------------------------------------------------------- designs
@dataclass(frozen=True)
class GroupMeans:
    """Mean outcome of the two-by-two design (weighted as the regression is)."""

    comparison_before: float
    comparison_after: float
    treated_before: float
    treated_after: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {k: json_scalar(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class StaggeredTables:
    """Tables of the staggered (group-time) estimator.

    ``att_gt``: one row per start cohort ``group`` and period ``time`` (``event_time``, ``att``,
    ``std_error``, ``ci_lower``, ``ci_upper``, ...). ``aggregations``: one row per aggregation
    ``type`` (simple, dynamic, group, calendar) with ``estimate``, ``std_error``, ``ci_lower``,
    ``ci_upper``. ``dynamic`` / ``group`` / ``calendar``: each aggregation in detail
    (``dynamic`` carries ``uniform_lower`` / ``uniform_upper`` when the uniform band was drawn).
    """

    att_gt: Table
    aggregations: Table
    dynamic: Table
    group: Table | None = None
    calendar: Table | None = None
    uniform_band_critical_value: float = math.nan
    method: str = ""
    base_period: str = ""
    comparison: str = ""
    anticipation: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tables as lists of row objects)."""
        return {
            "att_gt": self.att_gt.records(),
            "aggregations": self.aggregations.records(),
            "dynamic": self.dynamic.records(),
            "group": self.group.records() if self.group is not None else None,
            "calendar": self.calendar.records() if self.calendar is not None else None,
            "uniform_band_critical_value": json_scalar(self.uniform_band_critical_value),
            "method": self.method,
            "base_period": self.base_period,
            "comparison": self.comparison,
            "anticipation": self.anticipation,
        }


@dataclass(frozen=True)
class SyntheticTables:
    """Tables of a synthetic design (synthetic control, synthetic DiD, their DiD benchmark).

    ``weights``: ``unit``, ``weight`` (donor weights, summing to one). ``paths``: ``cohort``,
    ``period``, ``treated``, ``synthetic`` (the pilot units' mean and its synthetic twin).
    ``placebo``: ``unit``, ``estimate``, ``treated`` (and ``draws``) of the placebo runs, or
    ``None`` when inference was not by placebo. ``time_weights``: ``period``, ``weight``
    (synthetic DiD only). ``cohorts``: ``start``, ``n_treated``, ``post_periods``.
    ``rank_p_value`` and ``fit_on`` are set by synthetic control only.
    """

    weights: Table | None = None
    paths: Table | None = None
    placebo: Table | None = None
    time_weights: Table | None = None
    cohorts: Table | None = None
    method: str = ""
    pre_rmspe: float = math.nan
    fit_sentence: str = ""
    inference_reason: str = ""
    replications: int = 0
    noise_level: float = math.nan
    zeta_omega: float = math.nan
    rank_p_value: float | None = None
    fit_on: str | None = None

    def first_path(self) -> pd.DataFrame | None:
        """The treated vs synthetic path of the first cohort (``None`` when not reported)."""
        if self.paths is None:
            return None
        p = self.paths.frame
        if "cohort" in p.columns and p["cohort"].nunique() > 1:
            p = p[p["cohort"] == p["cohort"].iloc[0]]
        return p

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tables as lists of row objects, ``null`` when absent)."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            out[k] = v.records() if isinstance(v, Table) else json_scalar(v)
        return out


# -------------------------------------------------------------------------------- inference
@dataclass(frozen=True)
class PermutationRecord:
    """What permutation inference did: its p-value and interval and how they were found."""

    p_value: float
    ci_lower: float
    ci_upper: float
    n_assignments: int
    exact: bool
    level: str
    path: str
    sentence: str
    note: str = ""
    kind: Literal["permutation"] = "permutation"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {k: json_scalar(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class WildBootstrapRecord:
    """What the wild cluster bootstrap did: weights, draws, statistic and the result."""

    p_value: float
    ci_lower: float
    ci_upper: float
    weights: str
    replications: int
    statistic: float
    sentence: str
    kind: Literal["wild_bootstrap"] = "wild_bootstrap"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {k: json_scalar(v) for k, v in self.__dict__.items()}


InferenceRecord = PermutationRecord | WildBootstrapRecord


# ------------------------------------------------------------------------------ diagnostics
@dataclass(frozen=True)
class BaconDecomposition:
    """Every 2x2 comparison behind a TWFE estimate (Goodman-Bacon 2021).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per 2x2 comparison: ``treated`` and ``control`` (period labels of the groups'
        first treatment, or ``never treated`` / ``always treated``), ``type``, ``estimate`` and
        ``weight``. Weights sum to one and ``(weight * estimate).sum()`` equals
        ``twfe_estimate``.
    by_type : pandas.DataFrame
        ``type``, total ``weight``, weighted-average ``estimate`` and ``n_comparisons``.
    twfe_estimate : float
        The TWFE coefficient of the outcome on the treatment dummy with unit and period effects.
    """

    table: pd.DataFrame
    by_type: pd.DataFrame
    twfe_estimate: float

    @property
    def forbidden_weight(self) -> float:
        """Weight of comparisons that use already-treated units as controls."""
        m = self.table["type"].isin(["later_vs_earlier", "later_vs_always"])
        return float(self.table.loc[m, "weight"].sum())

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the evidence record's ``goodman_bacon`` block of an outcome)."""
        return {
            "twfe_estimate": json_scalar(self.twfe_estimate),
            "forbidden_weight": json_scalar(self.forbidden_weight)
            if "type" in self.table
            else None,
            "by_type": Table(self.by_type).records(),
            "comparisons": Table(self.table).records(),
        }


@dataclass(frozen=True)
class AnalyticMDE:
    """Analytic DiD minimum detectable effect with serial correlation, and its assumptions.

    ``mde`` is the effect the planned design (the whole history before the start,
    ``post_periods`` after) detects with the power asked for, allowing for serial correlation
    ``rho`` (AR(1)) of errors of variance ``sigma2``; ``mde_iid`` is the same design if errors
    were independent over time (Bloom 1995), ``mde_simulated_design`` the average over the
    placebo pilots' pre-period lengths.
    """

    mde: float
    sigma2: float
    rho: float
    pre_periods: int
    post_periods: int
    n_units: int
    n_treated: int
    df: float | None
    mde_iid: float
    mde_simulated_design: float
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = dict(self.__dict__)
        d["assumptions"] = [str(a) for a in self.assumptions]
        return {k: json_scalar(v) for k, v in d.items()}


@dataclass(frozen=True)
class DesignMDE(AnalyticMDE):
    """The analytic MDE of the design of one outcome (from its pre-period), at ``target_power``;
    ``declared_mde`` is the analysis plan's smallest effect that matters. Its ``to_dict()`` is
    the evidence record's ``design_mde`` block of the outcome."""

    target_power: float
    declared_mde: float | None = None


@dataclass(frozen=True)
class DesignDiagnostics:
    """Diagnostics of the design, per outcome column.

    ``goodman_bacon``: the decomposition of the TWFE estimate (staggered roll-outs on a balanced
    panel). ``design_mde``: the analytic minimum detectable effect of the design
    (:class:`DesignMDE`; common start on a rectangular panel only).
    """

    goodman_bacon: Mapping[str, BaconDecomposition] = field(default_factory=dict)
    design_mde: Mapping[str, DesignMDE] = field(default_factory=dict)


# ------------------------------------------------------------------------- evidence strength
@dataclass(frozen=True)
class Criterion:
    """One criterion of the evidence-strength rubric: met (``True``), not met (``False``) or
    not assessed (``None``), with the reason in plain words."""

    criterion: str
    met: bool | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (one entry of the evidence record's ``criteria``)."""
        return {"criterion": self.criterion, "met": self.met, "reason": self.reason}


@dataclass(frozen=True)
class EvidenceStrength:
    """Where the evaluation stands on the Maryland Scientific Methods Scale, and why.

    ``base_level`` is the level before the downgrades for weak implementation,
    ``downgraded_for`` the criteria that lowered it to ``level``; ``house_rule`` is set when a
    house rule of the rubric applied (synthetic designs).
    """

    rubric: str
    rubric_version: str
    level: int
    max_level: int
    description: str
    base_level: int
    downgraded_for: tuple[str, ...] = ()
    criteria: tuple[Criterion, ...] = ()
    house_rule: str | None = None

    def criterion(self, name: str) -> Criterion | None:
        """The criterion called ``name`` (``None`` if the rubric did not score it)."""
        return next((c for c in self.criteria if c.criterion == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the evidence record's ``evidence_strength`` block)."""
        out: dict[str, Any] = {
            "rubric": self.rubric,
            "rubric_version": self.rubric_version,
            "level": int(self.level),
            "max_level": int(self.max_level),
            "description": self.description,
            "base_level": int(self.base_level),
            "downgraded_for": list(self.downgraded_for),
            "criteria": [c.to_dict() for c in self.criteria],
        }
        if self.house_rule:
            out["house_rule"] = self.house_rule
        return out


# ------------------------------------------------------------------------------------ pilot
class PilotLike(Protocol):
    """What the results, the report and the evidence record read of the pilot (a ``PilotSpec``).

    A Protocol so that the results stay below the spec in the layering; ``PilotSpec`` satisfies it.
    """

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def lead(self) -> str | None: ...
    @property
    def partners(self) -> Sequence[str]: ...
    @property
    def contact(self) -> str | None: ...
    @property
    def policy_area(self) -> str | None: ...
    @property
    def questions(self) -> Sequence[_QuestionLike]: ...
    @property
    def data(self) -> _DataLike: ...
    @property
    def treatment(self) -> _TreatmentLike: ...
    @property
    def outcomes(self) -> Sequence[_OutcomeLike]: ...
    @property
    def design(self) -> _DesignLike: ...
    @property
    def registration(self) -> _RegistrationLike: ...


class _QuestionLike(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def confirmatory(self) -> bool: ...


class _DataLike(Protocol):
    @property
    def unit_label(self) -> str: ...
    @property
    def source(self) -> str | None: ...


class _TreatmentLike(Protocol):
    @property
    def comparison(self) -> str | Sequence[str]: ...
    @property
    def anticipation(self) -> int: ...


class _OutcomeLike(Protocol):
    @property
    def column(self) -> str: ...
    @property
    def units(self) -> str | None: ...
    @property
    def framework_metric(self) -> Metric | None: ...


class _DesignLike(Protocol):
    @property
    def covariates(self) -> Sequence[str]: ...
    @property
    def robustness(self) -> Sequence[str]: ...


class _RegistrationLike(Protocol):
    @property
    def theory_of_change(self) -> str | None: ...
    @property
    def design_type(self) -> str | None: ...
    @property
    def start_date(self) -> str | None: ...
    @property
    def end_date(self) -> str | None: ...
    @property
    def actual_start_date(self) -> str | None: ...
    @property
    def actual_end_date(self) -> str | None: ...
    @property
    def report_due(self) -> str | None: ...
    @property
    def publication(self) -> str | None: ...
