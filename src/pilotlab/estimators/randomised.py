"""The randomised-pilot estimator: difference in means with Lin's regression adjustment.

Design (one row per unit). A randomised pilot is analysed at the level it was randomised: each
unit's outcome is its mean over the periods from the start on (weighted by ``data.weight`` when
given, rows of a repeated cross-section pooled), and the adjustment variables are each unit's
means *before* the start (the outcome's own pre-period mean, ``pre:<outcome>``, and every
``design.covariates`` column), so nothing adjusted for can have been moved by the pilot. The
regression is

    y_i = sum_k tau_k D_ki + blocks_i + x~_i' b + sum_k D_ki x~_i' g_k + e_i,

with ``D_k`` the indicator of treated arm ``k``, ``x~`` the covariates centred at their mean over
the analysed units (Lin 2013: ``tau_k`` is then the adjusted difference in means, consistent for
the average effect whatever the outcome model), and fixed effects of the randomisation blocks
(strata, or matched pairs) when the allocation had them; without blocks the intercept. Without
covariates (``design.options.adjust: none``) ``tau_k`` is the difference in means (within
blocks). When an arm has too few units for its own slopes (fewer than
:data:`MIN_UNITS_PER_SLOPE` per coefficient of the arm's line, ``5 (p + 1)`` units for ``p``
covariates) the interactions are left out for every arm (additive adjustment, as Lin 2013
advises for small arms) and the result says so: with a handful of units an arm's own slopes
cost more degrees of freedom than they remove variance.

Standard errors are CR2 (HC2 when the cluster is the unit) with Bell-McCaffrey degrees of
freedom for each effect (:mod:`pilotlab.estimators.cr2`); intervals use the t distribution with
those degrees of freedom. Clusters are ``data.cluster`` (units of the same cluster share one),
else the units themselves. With several treated arms, each arm is compared with control in one
regression and the arms' p-values are Holm-adjusted (``RandomisedTables.arms``); the headline is
the pooled effect of any treated arm against control (one regression with one indicator), so it
needs no adjustment. Without an allocation on the panel (a pilot whose treated units were not
drawn by ``assignment``) the units are analysed as one completely randomised block.

Randomisation inference (``design.inference.method: permutation``) re-draws allocations as the
scheme drew them and recomputes this estimator for every re-draw in a batched solve
(:mod:`pilotlab.inference.randomisation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from pilotlab.data.panel import NEVER, Panel
from pilotlab.distributions import t_ppf, t_sf
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.estimators.cr2 import cr2
from pilotlab.exceptions import EstimationError, Notice, notice
from pilotlab.results import (
    ArmEffect,
    EffectResult,
    LinearFit,
    LinearParts,
    RandomisedTables,
)

__all__ = [
    "MIN_UNITS_PER_SLOPE",
    "RandomisedOptions",
    "UnitDesign",
    "design_matrix",
    "fit_randomised",
    "holm",
    "unit_design",
]


#: Units an arm needs per coefficient of its own regression line for Lin's interactions.
MIN_UNITS_PER_SLOPE = 5
#: Fewer clusters than this: the result warns that even CR2 rests on too few.
MIN_CLUSTERS = 6


class RandomisedOptions(BaseModel):
    """Options of the randomised estimator (``design.options`` in the pilot file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    adjust: Literal["lin", "none"] = "lin"
    """``lin``: Lin's interacted adjustment on the pre-period outcome and covariates;
    ``none``: the difference in means (within blocks)."""
    pre_outcome: bool = True
    """Adjust for the outcome's own pre-period mean (with ``adjust: lin``)."""


@dataclass(frozen=True, eq=False)
class UnitDesign:
    """A randomised pilot at the unit level, ready for the regression.

    Attributes
    ----------
    labels : tuple of str
        Analysed units (those with an outcome after the start).
    y : numpy.ndarray
        ``(n,)`` mean outcome from the start on.
    weight : numpy.ndarray or None
        ``(n,)`` unit weights (sum of the rows' weights from the start on) when weighted.
    x : numpy.ndarray
        ``(n, p)`` adjustment variables (pre-period means; missing ones imputed with the mean
        and flagged by an indicator column), uncentred.
    x_names : tuple of str
    codes : numpy.ndarray
        ``(n,)`` arm code (0 control).
    groups : tuple of str
        Arm names (control first).
    block : numpy.ndarray or None
        ``(n,)`` randomisation block codes (``0..S-1``) when the design has blocks.
    block_kind : {"none", "strata", "pairs"}
    cluster : numpy.ndarray
        ``(n,)`` cluster codes.
    allocation_index : numpy.ndarray or None
        ``(n,)`` position of each unit in the panel's allocation (``None`` without one).
    nobs : int
        Panel rows behind the unit means.
    scheme : str
    """

    labels: tuple[str, ...]
    y: np.ndarray
    weight: np.ndarray | None
    x: np.ndarray
    x_names: tuple[str, ...]
    codes: np.ndarray
    groups: tuple[str, ...]
    block: np.ndarray | None
    block_kind: Literal["none", "strata", "pairs"]
    cluster: np.ndarray
    allocation_index: np.ndarray | None
    nobs: int
    scheme: str

    @property
    def n(self) -> int:
        """Number of analysed units."""
        return int(self.y.size)

    @property
    def n_arms(self) -> int:
        """Number of treated arms."""
        return len(self.groups) - 1


def _options(options: EstimatorOptions) -> RandomisedOptions:
    extra = options.estimator
    return extra if isinstance(extra, RandomisedOptions) else RandomisedOptions()


def unit_design(
    panel: Panel, outcome: str, options: EstimatorOptions, *, source: str = "design.estimator"
) -> UnitDesign:
    """One row per analysed unit: post-period mean outcome, pre-period adjustment variables,
    arm, randomisation block and cluster (see the module docstring)."""
    if panel.is_staggered:
        raise EstimationError(
            f"{source}: randomised compares arms from one common start, but treated units start "
            f"in {len(panel.cohorts)} different periods (a stepped roll-out); use "
            "callaway_santanna (or auto), which compares each wave with the waves not yet "
            "treated"
        )
    if panel.n_treated_units == 0:
        raise EstimationError(f"{source}: randomised needs treated units; none are treated")
    opts = _options(options)
    start = int(panel.cohorts[0]) - panel.anticipation
    unit, time = panel.unit, panel.time
    n_units = panel.n_units
    w_row = panel.weight
    y_row = panel.y(outcome)
    post = (time >= start) & np.isfinite(y_row) & (w_row > 0)
    wsum = np.bincount(unit[post], weights=w_row[post], minlength=n_units)
    ysum = np.bincount(unit[post], weights=(w_row * np.where(post, y_row, 0.0))[post],
                       minlength=n_units)  # fmt: skip
    has = wsum > 0
    if not has.any():
        raise EstimationError(
            f"{source}: no unit has a value of '{outcome}' from the start on; nothing to compare"
        )
    pre = time < start
    names: list[str] = []
    cols: list[np.ndarray] = []
    if opts.adjust == "lin":
        variables = ([outcome] if opts.pre_outcome else []) + list(options.covariates)
        for v in dict.fromkeys(variables):
            x_row = panel.frame[v].to_numpy(np.float64)
            ok = pre & np.isfinite(x_row) & (w_row > 0)
            s = np.bincount(unit[ok], weights=(w_row * np.where(ok, x_row, 0.0))[ok],
                            minlength=n_units)  # fmt: skip
            c = np.bincount(unit[ok], weights=w_row[ok], minlength=n_units)
            with np.errstate(invalid="ignore", divide="ignore"):
                m = np.where(c > 0, s / np.where(c > 0, c, 1.0), np.nan)
            label = f"pre:{v}" if v == outcome else v
            cols.append(m)
            names.append(label)
    ft = panel.first_treated
    codes_all = (ft != NEVER).astype(np.int64)
    groups: tuple[str, ...] = ("control", "treated")
    alloc = panel.allocation
    alloc_index = None
    block_all: np.ndarray | None = None
    kind: Literal["none", "strata", "pairs"] = "none"
    scheme = "complete"
    if alloc is not None:
        idx = alloc.index_of(panel.unit_labels)
        a_codes = np.where(idx >= 0, alloc.codes[np.maximum(idx, 0)], -1)
        if (idx >= 0).all() and np.array_equal(a_codes > 0, codes_all > 0) and not alloc.stepped:
            codes_all = a_codes.astype(np.int64)
            groups = alloc.groups
            alloc_index = idx
            scheme = alloc.scheme
            if alloc.has_blocks:
                block_all = alloc.stratum[idx].astype(np.int64)
                kind = "pairs" if alloc.scheme == "pairs" else "strata"
    keep = has
    y = ysum[keep] / wsum[keep]
    x = np.column_stack(cols)[keep] if cols else np.empty((int(keep.sum()), 0))
    # missing pre-period values: the mean of the others, flagged by an indicator
    out_cols, out_names = [], []
    for j, nm in enumerate(names):
        col = x[:, j]
        miss = ~np.isfinite(col)
        if miss.all():
            continue
        if miss.any():
            col = np.where(miss, np.nanmean(col), col)
            out_cols += [col, miss.astype(np.float64)]
            out_names += [nm, f"{nm} missing"]
        else:
            out_cols.append(col)
            out_names.append(nm)
    x = np.column_stack(out_cols) if out_cols else np.empty((y.size, 0))
    unit_cluster = np.zeros(n_units, dtype=np.int64)
    unit_cluster[unit] = panel.cluster
    _, cl = np.unique(unit_cluster[keep], return_inverse=True)
    block = None
    if block_all is not None:
        _, block = np.unique(block_all[keep], return_inverse=True)
        block = block.astype(np.int64)
    codes = codes_all[keep]
    if int((codes == 0).sum()) == 0:
        raise EstimationError(
            f"{source}: randomised needs control units with an outcome after the start; none remain"
        )
    rows_used = int(np.isin(unit, np.flatnonzero(keep)).sum()) if panel.nobs else 0
    return UnitDesign(
        labels=tuple(np.asarray(panel.unit_labels, dtype=object)[keep].tolist()),
        y=y,
        weight=wsum[keep] if panel.weighted else None,
        x=x,
        x_names=tuple(out_names),
        codes=codes,
        groups=groups,
        block=block,
        block_kind=kind if block is not None else "none",
        cluster=cl.astype(np.int64),
        allocation_index=None if alloc_index is None else alloc_index[keep],
        nobs=rows_used,
        scheme=scheme,
    )


def _usable_covariates(x: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Columns of ``x`` that add rank to ``base`` (constant or collinear ones are left out)."""
    keep: list[int] = []
    cur = base
    r0 = np.linalg.matrix_rank(cur)
    for j in range(x.shape[1]):  # a few covariates
        cand = np.column_stack([cur, x[:, j]])
        r = np.linalg.matrix_rank(cand)
        if r > r0:
            keep.append(j)
            cur, r0 = cand, r
    return np.asarray(keep, dtype=np.int64)


def design_matrix(
    d: np.ndarray,
    block: np.ndarray | None,
    xc: np.ndarray,
    interact: bool,
) -> np.ndarray:
    """Regressors for indicators ``d`` (``(n, K)`` arms): ``[D, blocks or 1, x~, D x~]``."""
    n = d.shape[0]
    fixed = np.ones((n, 1)) if block is None else np.eye(int(block.max()) + 1)[block]
    parts = [d, fixed, xc]
    if interact and xc.shape[1]:
        parts.append((d[:, :, None] * xc[:, None, :]).reshape(n, -1))
    return np.column_stack(parts)


@dataclass(frozen=True)
class _Fit:
    beta: np.ndarray
    resid: np.ndarray
    X: np.ndarray
    y: np.ndarray
    xtx_inv: np.ndarray
    vcov: np.ndarray
    dof: np.ndarray
    n_clusters: int
    names: tuple[str, ...]


def _regress(
    d: np.ndarray, design: UnitDesign, xc: np.ndarray, interact: bool, names: tuple[str, ...]
) -> _Fit:
    X = design_matrix(d, design.block, xc, interact)
    y = design.y.copy()
    if design.weight is not None:
        sw = np.sqrt(design.weight)
        X, y = X * sw[:, None], y * sw
    xtx = X.T @ X
    try:
        M = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:
        raise EstimationError(
            "design.estimator: the randomised regression is singular (an arm has no units "
            "within the analysed blocks); check the allocation and the data"
        ) from None
    beta = M @ (X.T @ y)
    resid = y - X @ beta
    K = d.shape[1]
    C = np.eye(X.shape[1])[:K]
    res = cr2(X, resid, design.cluster, M, C)
    return _Fit(beta, resid, X, y, M, res.vcov, res.dof, res.n_clusters, names)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (monotone, capped at 1)."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def _t_interval(est: float, se: float, dof: float, alpha: float) -> tuple[float, float, float]:
    if not (math.isfinite(se) and se > 0 and math.isfinite(dof) and dof > 0):
        return math.nan, math.nan, math.nan
    q = float(t_ppf(1 - alpha / 2, dof))
    p = float(2 * t_sf(abs(est / se), dof))
    return est - q * se, est + q * se, p


@dataclass(frozen=True)
class Prepared:
    """The design and the adjustment chosen for it (shared by the fit and randomisation
    inference, so both compute the same estimator)."""

    design: UnitDesign
    xc: np.ndarray
    x_names: tuple[str, ...]
    interact: bool
    adjustment: str


def prepare(panel: Panel, outcome: str, options: EstimatorOptions) -> Prepared:
    """:func:`unit_design` plus the usable, centred covariates and whether to interact them."""
    design = unit_design(panel, outcome, options)
    base = design_matrix(
        (design.codes[:, None] == np.arange(1, design.n_arms + 1)[None, :]).astype(float),
        design.block,
        np.empty((design.n, 0)),
        False,
    )
    keep = _usable_covariates(design.x, base) if design.x.shape[1] else np.empty(0, np.int64)
    x = design.x[:, keep]
    names = tuple(design.x_names[j] for j in keep.tolist())
    w = design.weight
    mean = np.average(x, axis=0, weights=w) if x.shape[1] else np.empty(0)
    xc = x - mean
    sizes = np.bincount(design.codes, minlength=design.n_arms + 1)
    p = xc.shape[1]
    interact = bool(p) and int(sizes.min()) >= MIN_UNITS_PER_SLOPE * (p + 1)
    adjustment = "none" if not p else ("lin" if interact else "additive")
    return Prepared(design, xc, names, interact, adjustment)


def fit_randomised(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Difference in means with Lin's adjustment, CR2 errors and Bell-McCaffrey degrees of
    freedom (see the module docstring)."""
    if options.inference not in ("cluster",):
        raise EstimationError(
            f"design.inference.method: '{options.inference}' is not available for the "
            "randomised estimator; use cluster (CR2 with Bell-McCaffrey degrees of freedom), "
            "permutation (randomisation inference as the allocation was drawn) or auto"
        )
    prep = prepare(panel, outcome, options)
    design, xc = prep.design, prep.xc
    K = design.n_arms
    arm_names = design.groups[1:]
    D = (design.codes[:, None] == np.arange(1, K + 1)[None, :]).astype(np.float64)
    fixed_names = (
        ("(intercept)",)
        if design.block is None
        else tuple(f"block {b}" for b in range(int(design.block.max()) + 1))
    )
    inter_names = (
        tuple(f"{a} x {v}" for a in arm_names for v in prep.x_names) if prep.interact else ()
    )
    arms_fit = _regress(
        D, design, xc, prep.interact, (*arm_names, *fixed_names, *prep.x_names, *inter_names)
    )
    if K > 1:
        pooled = (design.codes > 0).astype(np.float64)[:, None]
        p_inter = tuple(f"treated x {v}" for v in prep.x_names) if prep.interact else ()
        head = _regress(
            pooled, design, xc, prep.interact, ("treated", *fixed_names, *prep.x_names, *p_inter)
        )
    else:
        head = arms_fit
    alpha = options.alpha
    se_arms = np.sqrt(np.clip(np.diag(arms_fit.vcov)[:K], 0.0, None))
    rows = []
    p_raw = []
    n_control = int((design.codes == 0).sum())
    for k in range(K):  # a few arms
        est_k = float(arms_fit.beta[k])
        lo, hi, p = _t_interval(est_k, float(se_arms[k]), float(arms_fit.dof[k]), alpha)
        p_raw.append(p)
        rows.append((est_k, float(se_arms[k]), lo, hi, p, float(arms_fit.dof[k])))
    p_adj = holm(np.asarray(p_raw)) if K > 1 else np.asarray(p_raw)
    arms = tuple(
        ArmEffect(
            arm=arm_names[k],
            estimate=rows[k][0],
            std_error=rows[k][1],
            ci_lower=rows[k][2],
            ci_upper=rows[k][3],
            p_value=rows[k][4],
            p_adjusted=float(p_adj[k]),
            dof=rows[k][5],
            n_units=int((design.codes == k + 1).sum()),
            n_control=n_control,
        )
        for k in range(K)
    )
    estimate = float(head.beta[0])
    se = float(math.sqrt(max(float(head.vcov[0, 0]), 0.0)))
    dof = float(head.dof[0])
    lo, hi, p = _t_interval(estimate, se, dof, alpha)
    warnings: list[Notice] = []
    if prep.adjustment == "additive":
        warnings.append(
            notice(
                "randomised-additive-adjustment",
                "An arm has too few units to fit its own line between the outcome and the "
                "values before the start, so one line serves every arm (the adjustment is not "
                "interacted with the arms).",
            )
        )
    if design.n < panel.n_units:
        warnings.append(
            notice(
                "randomised-units-without-outcome",
                f"{panel.n_units - design.n} allocated unit(s) have no outcome after the start "
                "and are left out of the comparison.",
            )
        )
    if head.n_clusters < MIN_CLUSTERS:
        warnings.append(
            notice(
                "few-clusters",
                f"Only {head.n_clusters} clusters: even CR2 standard errors with "
                "Bell-McCaffrey degrees of freedom rest on very few clusters; prefer "
                "randomisation inference (design.inference.method: permutation).",
            )
        )
    cluster_scores = np.zeros((head.n_clusters, head.X.shape[1]))
    np.add.at(cluster_scores, design.cluster, head.X * head.resid[:, None])
    fit = LinearFit(
        X=head.X,
        y=head.y,
        beta=head.beta,
        resid=head.resid,
        cluster=design.cluster,
        names=head.names,
        df_absorbed=0,
        xtx_inv=head.xtx_inv,
        vcov=head.vcov,
        vcov_type="cluster",
        n_clusters=head.n_clusters,
        df_resid=max(1, math.floor(dof)) if math.isfinite(dof) else 1,
        cluster_scores=cluster_scores,
        weights=design.weight,
    )
    plain = ", ".join(
        f"{v[4:]} before the start" if v.startswith("pre:") else f"{v} (before the start)"
        for v in prep.x_names
        if not v.endswith(" missing")
    )
    what = {
        "none": "the difference in mean outcomes",
        "lin": f"the difference in mean outcomes adjusted for {plain} (Lin's interacted "
        "regression)",
        "additive": f"the difference in mean outcomes adjusted for {plain}",
    }[prep.adjustment]
    within = {
        "none": "",
        "strata": " within the randomisation strata",
        "pairs": " within the matched pairs",
    }[design.block_kind]
    sentence = (
        f"Each unit's mean outcome from the start on is compared between arms: {what}{within}; "
        "CR2 standard errors with Bell-McCaffrey degrees of freedom"
        + (f"; each of the {K} arms against {design.groups[0]}, Holm-adjusted." if K > 1 else ".")
    )
    tables = RandomisedTables(
        arms=arms,
        control=design.groups[0],
        adjustment=prep.adjustment,
        covariates=prep.x_names,
        blocks=design.block_kind,
        n_blocks=0 if design.block is None else int(design.block.max()) + 1,
        dof=dof,
        multiplicity="holm" if K > 1 else "none",
        scheme=design.scheme,
        sentence=sentence,
    )
    return EffectResult(
        estimator="randomised",
        outcome=outcome,
        estimate=estimate,
        std_error=se,
        ci_lower=lo,
        ci_upper=hi,
        p_value=p,
        alpha=alpha,
        inference=options.inference,
        nobs=design.nobs,
        n_units=panel.n_units,
        n_treated_units=panel.n_treated_units,
        n_clusters=head.n_clusters,
        n_periods=panel.n_periods,
        estimand="ATE",
        warnings=tuple(warnings),
        linear=LinearParts(fit, coef_index=0),
        randomised=tables,
    )


def _inference_rule(method: str, n_treated: int, n_donors: int, name: str) -> tuple[str, str]:
    """``auto`` inference of the randomised estimator: CR2 with Bell-McCaffrey degrees of
    freedom, which stays close to its nominal level with few clusters."""
    return "cluster", (
        f"{n_treated} treated and {n_donors} control units, randomised: standard errors are CR2 "
        "(cluster-robust with the small-sample correction of Bell & McCaffrey) and intervals use "
        "their Bell-McCaffrey degrees of freedom, which stay honest with few clusters (Imbens & "
        "Kolesar 2016); randomisation inference as the allocation was drawn is available with "
        "design.inference.method: permutation."
    )


ENTRY = register(
    EstimatorEntry(
        name="randomised",
        title="randomised comparison (difference in means with regression adjustment)",
        fit=fit_randomised,
        description="Arms of a randomised pilot compared on their mean outcome after the start, "
        "adjusted for pre-period values (Lin), with CR2 errors",
        capabilities=Capabilities(
            inference=("cluster",),
            covariates=True,
            randomised=True,
            small_sample_cluster=True,
            auto="randomised",
        ),
        options=RandomisedOptions,
        inference_rule=_inference_rule,
    )
)
