"""Event study: leads and lags of the start in a two-way fixed-effects regression.

Event time ``e = t - g`` (``g`` the unit's first treated period). Coefficients are estimated for
``e`` in ``[-pre, post]`` with the end points binned (``e <= -pre`` share one coefficient, as do
``e >= post``) and ``e = -1 - anticipation`` as the reference period. The headline effect is the
average of the post-period coefficients weighted by their numbers of treated observations. The
result carries the pre-period coefficients and their covariance (``pre_period``); their joint
test is applied after the fit (:func:`pilotlab.diagnostics.pretrend.apply_pretrend`: Wald with a
Hotelling F reference, or by randomisation when inference is for few treated clusters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from pilotlab.data.assignment import CodedRows
from pilotlab.data.cells import row_counts
from pilotlab.data.panel import NEVER, Panel
from pilotlab.estimators._label_sums import label_cluster_sums
from pilotlab.estimators._regression import (
    LINEAR_INFERENCE,
    fit_panel,
    interval,
    linear_effect,
    size_warnings,
)
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.estimators.block_map import BlockMap, PrePeriodMap, cohort_blocks, weighted_block_sums
from pilotlab.estimators.linear import LinearFit, cluster_factor, fit_cells, linear_combination
from pilotlab.exceptions import EstimationError, notice
from pilotlab.results import (
    CellLinearFit,
    EffectResult,
    EventTimeEstimate,
    LinearParts,
    PrePeriodEstimates,
)

__all__ = [
    "event_study_block_map",
    "event_study_pre_period_map",
    "event_time_window",
    "fit_event_study",
]

DEFAULT_WINDOW = 8


def event_time_window(panel: Panel, window: tuple[int, int] | None) -> tuple[int, int]:
    """The (pre, post) window, clipped to the event times the data contain."""
    treated = panel.is_treated_unit
    g = panel.first_treated[treated]
    max_pre = int((g - panel.anticipation).max())  # periods available before the latest start
    max_post = int(panel.n_periods - 1 - g.min())
    pre, post = window if window is not None else (DEFAULT_WINDOW, DEFAULT_WINDOW)
    return max(1, min(pre, max_pre)), max(0, min(post, max_post))


def fit_event_study(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Event-study regression with binned end points; its leads are in ``pre_period``."""
    pre, post = event_time_window(panel, options.window)
    ref = -1 - panel.anticipation
    times = [k for k in range(-pre, post + 1) if k != ref]
    if not times:
        raise EstimationError(
            "design.window: the event-time window leaves no coefficient to estimate"
        )
    if _by_cells(panel, outcome, options):
        fit, times, col_counts = _fit_by_cells(panel, outcome, options, times, pre, post, ref)
    else:
        fit, times, col_counts = _fit_dense(panel, outcome, options, times, pre, post, ref)
    se = fit.std_errors
    events: list[EventTimeEstimate] = []
    for j, t in enumerate(times):
        lo, hi, p = interval(float(fit.beta[j]), float(se[j]), fit.df_resid, options.alpha)
        events.append(EventTimeEstimate(t, float(fit.beta[j]), float(se[j]), lo, hi, p))
    events.append(EventTimeEstimate(ref, 0.0, 0.0, 0.0, 0.0, float("nan"), reference=True))
    events.sort(key=lambda ev: ev.event_time)

    post_idx = [j for j, t in enumerate(times) if t >= 0]
    if not post_idx:
        raise EstimationError("the data have no period after the start; nothing to estimate")
    counts = col_counts[post_idx]
    c = np.zeros(len(fit.names))  # the fit's coefficients: event times, then any covariates
    c[post_idx] = counts / counts.sum()
    est, s = linear_combination(fit, c)
    warnings = size_warnings(panel, options.inference)
    if panel.is_staggered:
        warnings += (
            notice(
                "staggered-event-study",
                "Treated units start at different times: event-study coefficients from a "
                "two-way fixed-effects regression can be contaminated by effects at other "
                "event times; prefer callaway_santanna.",
            ),
        )
    return linear_effect(
        "event_study",
        panel,
        outcome,
        options,
        fit,
        est,
        s,
        warnings,
        event_study=tuple(events),
        pre_period=_leads(fit, times, ref, (pre, post)),
        linear=LinearParts(
            fit, combination=c, event_times=tuple(times), reference=ref, window=(pre, post)
        ),
    )


def _by_cells(panel: Panel, outcome: str, options: EstimatorOptions) -> bool:
    """Whether the event-time indicators can be fitted by cohort and period cells: a
    rectangular panel with the outcome in every row, no covariates, and weights (if any) that
    are positive and constant within each unit."""
    return (
        panel.is_rectangular
        and _cell_weights(panel) is not False
        and not options.covariates
        and options.inference in ("cluster", "robust", "iid")
        and bool(np.isfinite(panel.y(outcome)).all())
    )


def _cell_weights(panel: Panel) -> np.ndarray | bool | None:
    """Each unit's weight for the cells' fit: ``None`` unweighted, ``False`` when the weights
    vary within a unit or are not all positive (the fit then takes one column per event time)."""
    if not panel.weighted:
        return None
    w = panel.unit_weights()
    if w is None or not bool((w > 0).all()):
        return False
    return w


def _fit_by_cells(
    panel: Panel,
    outcome: str,
    options: EstimatorOptions,
    times: list[int],
    pre: int,
    post: int,
    ref: int,
) -> tuple[LinearFit, list[int], np.ndarray]:
    """The regression on cohort x period cells (:func:`fit_cells`): an event time's indicator
    depends only on the unit's cohort and the period, so no row x event-time matrix is built."""
    _, unit_group, cells, times, counts = _cohort_cells(panel, times, pre, post, ref)
    names = tuple(f"e{k:+d}" for k in times)
    weights = _cell_weights(panel)
    fit = fit_cells(
        panel.y(outcome),
        cells,
        unit_group,
        names,
        cluster=panel.cluster,
        vcov=options.inference,  # type: ignore[arg-type]  # checked by _by_cells
        fe_nested_in_cluster=_nested_effects(panel),
        unit_weights=weights if isinstance(weights, np.ndarray) else None,
    )
    return fit, times, counts


def _cohort_cells(
    panel: Panel, times: list[int], pre: int, post: int, ref: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], np.ndarray]:
    """``(cohorts, unit_group, cells, times, counts)``: the first treated periods in order
    (never treated last), each unit's index among them, the ``cohorts x T x k`` event-time
    indicators of each cohort and period, the event times kept (those with a treated
    observation) and their numbers of treated observations."""
    cohorts, unit_group = np.unique(panel.first_treated, return_inverse=True)
    T = panel.n_periods
    treated = cohorts != NEVER
    e = np.arange(T)[None, :] - np.where(treated, cohorts, 0)[:, None]
    e = np.clip(e, -pre, post)
    valid = treated[:, None] & (e != ref)
    col = np.searchsorted(np.array(times), e)
    cells = np.zeros((len(cohorts), T, len(times)))
    g_idx, t_idx = np.nonzero(valid)
    cells[g_idx, t_idx, col[valid]] = 1.0
    size = np.bincount(unit_group, minlength=len(cohorts)).astype(np.float64)
    counts = np.einsum("c,ctk->k", size, cells)  # treated observations per event time
    present = counts > 0
    if not present.all():
        keep = np.flatnonzero(present)
        cells, times, counts = cells[:, :, keep], [times[k] for k in keep], counts[keep]
    return cohorts, unit_group, cells, times, counts


def _nested_effects(panel: Panel) -> tuple[bool, bool]:
    """Whether the unit and the period effects are nested in the clusters (rectangular panel)."""
    grid = panel.cluster.reshape(panel.n_units, panel.n_periods)  # units x periods
    return bool((grid == grid[:, :1]).all()), bool((grid == grid[:1, :]).all())


def _fit_dense(
    panel: Panel,
    outcome: str,
    options: EstimatorOptions,
    times: list[int],
    pre: int,
    post: int,
    ref: int,
) -> tuple[LinearFit, list[int], np.ndarray]:
    """The regression with one indicator column per event time (weights, covariates, or an
    unbalanced panel): n x (pre + post) indicators, never a unit dummy."""
    cohort = panel.cohort
    treated_row = cohort != NEVER
    e = np.where(treated_row, panel.time - np.where(treated_row, cohort, 0), 0)
    e = np.clip(e, -pre, post)
    col = np.searchsorted(np.array(times), e)
    valid = treated_row & (e != ref)
    X = np.zeros((panel.nobs, len(times)))
    X[np.flatnonzero(valid), col[valid]] = 1.0
    present = X.any(axis=0)
    if panel.weighted:  # a term whose treated rows all weigh zero has no observation either
        weightless = present & ~X[panel.weight > 0].any(axis=0)
        if weightless.any():
            ks = [times[j] for j in np.flatnonzero(weightless)]
            label = ", ".join(f"{k:+d}" for k in ks)
            raise EstimationError(
                f"data.weight: event time {label} has no treated observation with a positive "
                f"weight, so its effect cannot be estimated; give those rows a positive weight, "
                f"or set design.window (pre/post) so that it leaves out event time {label}"
            )
    if not present.all():
        keep = np.flatnonzero(present)
        X, times = X[:, keep], [times[k] for k in keep]
    names = tuple(f"e{k:+d}" for k in times)
    col_counts = row_counts(panel) @ X  # treated observations per event time (X is consumed)
    return fit_panel(panel, outcome, X, names, options), times, col_counts


def event_study_block_map(
    panel: Panel, outcome: str, options: EstimatorOptions, estimate: float
) -> BlockMap | None:
    """The headline as a map of cohort blocks (:class:`~pilotlab.estimators.block_map.BlockMap`)
    when the fit runs on cohort x period cells: the within-transformed indicators depend on the
    cohort sizes only, so ``c' beta = sum_i (X_cell[h_i] (X'X)^-1 c) . y_i`` for any assignment
    with the same sizes (with weights, :class:`WeightedEventMap`). ``None`` otherwise, or when
    the map does not reproduce ``estimate``."""
    if not _by_cells(panel, outcome, options):
        return None
    if panel.weighted:
        return _weighted_event_map(panel, outcome, options, estimate)
    res = fit_event_study(panel, outcome, options, np.random.default_rng(0))
    lin = res.linear
    if lin is None or lin.combination is None or not isinstance(lin.fit, CellLinearFit):
        return None
    fit = lin.fit
    groups = np.unique(panel.first_treated)
    cohorts = groups[groups != NEVER]
    if cohorts.size == 0:
        return None
    coef = np.zeros((cohorts.size + 1, panel.n_periods))
    coef[: groups.size] = fit.cells @ (fit.xtx_inv @ lin.combination)
    mapped = BlockMap(coef, cohorts.astype(np.int64), float(estimate))
    y = panel.y(outcome).reshape(1, panel.n_units, panel.n_periods)
    again = float(mapped.estimates(y, mapped.blocks(panel.first_treated)[None])[0, 0])
    if not abs(again - estimate) <= 1e-9 * (1.0 + abs(estimate)):
        return None
    return mapped


@dataclass(frozen=True)
class WeightedEventMap(BlockMap):
    """The headline with analytic weights (constant within each unit) under any assignment of
    the cohorts, whose weighted sizes it changes (so :attr:`coef` is NaN).

    With ``C[c]`` cohort ``c``'s event-time indicators less their mean over periods (``T x k``)
    and ``W_c`` its weighted size, the within-transformed indicators are ``C[c] - M`` with
    ``M = sum_c W_c C[c] / W``, so the normal equations of an assignment are
    ``(sum_c W_c C[c]'C[c] - W M'M) beta = sum_c C[c]' Z_c - M' Z``, ``Z_c`` the cohort's
    weighted outcome sums by period and ``Z`` their total: one small solve per assignment.
    """

    centred: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # (G, T, k)
    w: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (N,) unit weights
    combination: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (k,)

    def estimates(self, outcomes: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        """The estimates of the ``(Q, N, T)`` outcome matrices under each assignment (rows of
        ``blocks``), as ``(B, Q)``."""
        if (blocks < 0).any():
            raise ValueError("an assignment puts a unit in a cohort the map does not know")
        Q, N, T = outcomes.shape
        C = self.centred
        G = C.shape[0]
        total = float(self.w.sum())
        cross = np.einsum("ctk,ctl->ckl", C, C)  # (G, k, k)
        all_sums = (outcomes * self.w[None, :, None]).sum(axis=1)  # (Q, T)
        out = np.empty((blocks.shape[0], Q))
        step = max(1, _CHUNK_ELEMENTS // max(N * max(G, T), 1))
        for a, Z in weighted_block_sums(outcomes, self.w, blocks, G, step):  # (b, G, Q*T + 1)
            size = Z[:, :, -1]
            M = np.einsum("bc,ctk->btk", size, C) / total
            A = np.einsum("bc,ckl->bkl", size, cross) - total * np.einsum("btk,btl->bkl", M, M)
            Zq = Z[:, :, :-1].reshape(Z.shape[0], G, Q, T)
            rhs = np.einsum("bcqt,ctk->bkq", Zq, C) - np.einsum("btk,qt->bkq", M, all_sums)
            with np.errstate(invalid="ignore"):
                beta = np.linalg.solve(A, rhs)  # (b, k, Q)
            out[a : a + Z.shape[0]] = np.einsum("k,bkq->bq", self.combination, beta)
        return out


def _weighted_event_map(
    panel: Panel, outcome: str, options: EstimatorOptions, estimate: float
) -> WeightedEventMap | None:
    """:class:`WeightedEventMap` of the headline, or ``None`` when it does not reproduce the
    estimator's own ``estimate``."""
    res = fit_event_study(panel, outcome, options, np.random.default_rng(0))
    lin = res.linear
    if lin is None or lin.combination is None or not isinstance(lin.fit, CellLinearFit):
        return None
    weights = _cell_weights(panel)
    if not isinstance(weights, np.ndarray):
        return None
    pre, post = event_time_window(panel, options.window)
    ref = -1 - panel.anticipation
    times = [k for k in range(-pre, post + 1) if k != ref]
    groups, _, cells, kept, _ = _cohort_cells(panel, times, pre, post, ref)
    if tuple(f"e{k:+d}" for k in kept) != lin.fit.names:
        return None
    cohorts = groups[groups != NEVER]
    if cohorts.size == 0 or groups.size != cohorts.size + 1:
        return None  # no never-treated units: the blocks would not be the cells' groups
    mapped = WeightedEventMap(
        np.full((cohorts.size + 1, panel.n_periods), np.nan), cohorts.astype(np.int64),
        float(estimate), centred=cells - cells.mean(axis=1, keepdims=True), w=weights,
        combination=np.asarray(lin.combination, dtype=np.float64).reshape(-1),
    )  # fmt: skip
    y = panel.y(outcome).reshape(1, panel.n_units, panel.n_periods)
    again = float(mapped.estimates(y, mapped.blocks(panel.first_treated)[None])[0, 0])
    if not abs(again - estimate) <= 1e-9 * (1.0 + abs(estimate)):
        return None
    return mapped


#: Bound on the elements of the per-chunk arrays of :func:`event_study_pre_period_map`.
_CHUNK_ELEMENTS = 4_000_000


def event_study_pre_period_map(
    panel: Panel, outcome: str, options: EstimatorOptions
) -> PrePeriodMap | None:
    """The leads and their cluster-robust covariance under any re-assignment of the cohorts
    that keeps their sizes, as a :class:`~pilotlab.estimators.block_map.PrePeriodMap` with
    :attr:`~pilotlab.estimators.block_map.PrePeriodMap.leads`; ``None`` unless the fit runs on
    cohort x period cells (:func:`_by_cells`) with cluster-robust errors and has leads.

    On cells, the within-transformed indicators ``X[c]`` (``T x k`` for cohort ``c``) and so
    ``(X'X)^-1`` depend on the cohorts' sizes only, and the two-way demeaned outcomes ``Y`` on
    nothing assigned. With ``P[c, i] = X[c]' Y_i`` (unit ``i``'s part of ``X'y`` were it in
    cohort ``c``) the coefficients of an assignment ``g`` are ``(X'X)^-1 sum_i P[g_i, i]``, a
    unit's score is ``P[g_i, i] - X[g_i]'X[g_i] beta`` and a cluster's is the sum of its units'
    scores: one pass over the units per re-assignment (:func:`label_cluster_sums`) gives both,
    projected on the leads. The estimates and covariances are those of re-fitting up to
    rounding; an assignment that changes a cohort's size (whole clusters of unequal sizes)
    returns ``None``, so the caller re-fits.
    """
    if options.inference != "cluster" or panel.weighted or not _by_cells(panel, outcome, options):
        return None  # with weights a re-assignment changes the cohorts' weighted sizes
    pre, post = event_time_window(panel, options.window)
    ref = -1 - panel.anticipation
    times = [k for k in range(-pre, post + 1) if k != ref]
    if not times:
        return None
    fit, times, _ = _fit_by_cells(panel, outcome, options, times, pre, post, ref)
    lead = [j for j, t in enumerate(times) if t < ref]
    if not lead or not isinstance(fit, CellLinearFit):
        return None
    cohorts = np.unique(panel.first_treated)  # the cells' cohorts, never treated last
    N, T, k, C = panel.n_units, panel.n_periods, len(times), cohorts.size
    nested = _nested_effects(panel)
    xc = fit.cells  # cohorts x T x k, within-transformed
    W = fit.xtx_inv[:, lead]  # k x q: the leads' rows of (X'X)^-1
    P = np.einsum("nt,ctk->cnk", np.asarray(fit.y).reshape(N, T), xc)
    values = np.concatenate([P, P @ W], axis=2)  # a unit's part of X'y and of its lead scores
    QW = np.einsum("jq,ctj,ctk->cqk", W, xc, xc)  # W' X[c]'X[c]: the fitted part of the scores
    factor = cluster_factor(n=N * T, k=k, fe_all=N + T - 1, levels=(N, T), nested=nested,
                            n_clusters=fit.n_clusters)  # fmt: skip
    unit_cluster = np.asarray(panel.cluster, dtype=np.int64)[::T]
    size = np.bincount(fit.unit_group, minlength=C)
    treated = cohorts[cohorts != NEVER]  # the cells' cohorts are these, then never treated
    G, q = fit.n_clusters, len(lead)

    def leads(first_treated: CodedRows) -> tuple[np.ndarray, np.ndarray] | None:
        g = first_treated.map(partial(cohort_blocks, treated))  # never treated: C - 1 if any
        rows = np.arange(g.shape[0])[:, None] * C
        if (
            (g < 0).any()
            or (g >= C).any()
            or not (
                np.bincount((rows + g).ravel(), minlength=g.shape[0] * C).reshape(-1, C) == size
            ).all()
        ):
            return None  # a label or a cohort size the map does not know: re-fit
        est = np.empty((g.shape[0], q))
        cov = np.empty((g.shape[0], q, q))
        step = max(1, _CHUNK_ELEMENTS // max(N + G * (k + q + C), 1))
        for a in range(0, g.shape[0], step):  # chunks of re-assignments, each one pass
            sums, counts = label_cluster_sums(g[a : a + step], values, unit_cluster, G)
            beta = sums[:, :, :k].sum(axis=1) @ fit.xtx_inv  # (X'X)^-1 is symmetric
            zeta = sums[:, :, k:] - np.einsum("bhc,cqk,bk->bhq", counts, QW, beta)
            est[a : a + step] = beta[:, lead]
            cov[a : a + step] = factor * np.einsum("bhi,bhj->bij", zeta, zeta)
        return est, cov

    def compute(ft: CodedRows, coef: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        got = leads(ft)
        if got is None:
            return None
        est, cov = got
        return est @ coef.T, np.diagonal(cov, axis1=1, axis2=2) @ (coef**2).T

    return PrePeriodMap(tuple(times[j] for j in lead), compute, leads)


def _leads(
    fit: LinearFit, times: list[int], ref: int, window: tuple[int, int]
) -> PrePeriodEstimates:
    """The lead coefficients (event times before the reference) and what their test reads."""
    idx = [j for j, t in enumerate(times) if t < ref]  # the first coefficients are event times
    scores = None
    n_clusters = fit.df_resid + 1  # HC1 / iid errors: the classical F with the residual df
    if fit.vcov_type == "cluster":  # the leads' cluster contributions give the effective G
        assert fit.cluster_scores is not None  # fit_linear keeps them for cluster vcov
        scores = fit.cluster_scores @ fit.xtx_inv[:, idx]
        n_clusters = fit.n_clusters
    return PrePeriodEstimates(
        kind="leads",
        event_times=tuple(times[j] for j in idx),
        estimates=fit.beta[idx],
        std_errors=fit.std_errors[idx],
        cov=fit.vcov[np.ix_(idx, idx)],
        n_clusters=n_clusters,
        scores=scores,
        reference=ref,
        window=window,
    )


ENTRY = register(
    EstimatorEntry(
        name="event_study",
        title="event study (difference in differences period by period)",
        fit=fit_event_study,
        description="event study (leads and lags, binned end points, reference period -1)",
        capabilities=Capabilities(
            layouts=("panel", "repeated_cross_section", "microdata"),
            inference=LINEAR_INFERENCE,
            linear=True,
            event_times=True,
            covariates=True,
            auto="common_start",
        ),
        block_map=event_study_block_map,
        pre_period_map=event_study_pre_period_map,
    )
)
