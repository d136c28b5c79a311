"""Synthetic control and synthetic difference in differences for one or a few treated areas.

Both estimators compare the treated areas with a weighted average of comparison areas (the
*donors*) whose weights are fitted on the pre-period:

* ``synthetic_control`` (Abadie, Diamond & Hainmueller 2010): non-negative donor weights summing
  to one that reproduce the treated outcome path before the start (optionally also the pre-period
  means of ``design.synthetic.predictors``); the effect is the post-period gap. With several
  treated units sharing a start, ``design.synthetic.fit_on: average`` (default) fits one synthetic
  comparison to the treated units' average path; ``each`` fits one per treated unit and averages
  their gaps.
* ``synthetic_did`` (Arkhangelsky, Athey, Hirshberg, Imbens & Wager 2021): ridge-regularised unit
  weights (``zeta = (N_tr T_post)^(1/4) sigma``), time weights and unit / period intercepts; the
  effect is a weighted difference in differences.

Weights are computed with the paper's Frank-Wolfe solver and the reference implementation's
two-round sparsification, so the numbers agree with the R package ``synthdid`` (California
Proposition 99: -15.6038 SDID, -19.6197 SC, -27.3491 DiD). Staggered adoption is handled cohort by
cohort (donors: never-treated units; pre-period: every period before the cohort's start) and the
cohort effects are averaged with weights ``N_treated x post-periods``.

Inference (``EffectResult.inference``):

* ``placebo`` -- Algorithm 4 of the paper: the treatment is re-assigned to as many randomly drawn
  donors as there are treated units, the weights are refitted without the real treated units,
  ``design.inference.replications`` times; the standard error is the standard deviation of the
  placebo estimates. The only choice with one treated unit. Placebo problems are solved in one
  batch and identical draws are solved once.
* ``jackknife`` -- Algorithm 3 (fixed weights, leave one unit out), used with several treated
  units. Closed form, no refitting.
* Confidence interval ``estimate +- z * se`` and a normal p-value, as in the paper. Synthetic
  control also reports the ADH rank p-value of the post/pre RMSPE ratio among in-space placebos
  (``synthetic.rank_p_value``).
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from pilotlab.data.assignment import in_space_placebos, placebo_sets
from pilotlab.data.panel import NEVER, Panel
from pilotlab.distributions import norm_ppf, norm_sf
from pilotlab.estimators._synthetic_core import (
    BlockFit,
    Method,
    block_curves,
    fit_block,
    fit_block_each,
    placebo_curves,
)
from pilotlab.estimators.base import Capabilities, EstimatorEntry, EstimatorOptions, register
from pilotlab.exceptions import EstimationError, Notice, emit, notice
from pilotlab.results import EffectResult, EventTimeEstimate, SyntheticTables, Table

__all__ = [
    "POOR_FIT_RATIO",
    "SYNTHETIC_INFERENCE",
    "choose_inference",
    "fit_synthetic",
    "fit_synthetic_control",
    "fit_synthetic_did",
]

#: ``permutation`` is accepted as a synonym of ``placebo`` (the in-space placebo distribution is the
#: permutation distribution of the treated label over areas).
SYNTHETIC_INFERENCE: tuple[str, ...] = ("placebo", "jackknife", "permutation")
#: Warn when the pre-period RMSPE exceeds this share of the outcome's pre-period standard deviation.
POOR_FIT_RATIO = 0.25
MIN_PRE_PERIODS = 2
SHORT_PRE_PERIODS = 5

_NAMES: dict[str, str] = {
    "sdid": "synthetic_did",
    "sc": "synthetic_control",
    "did": "did (synthetic machinery)",
}


# --------------------------------------------------------------------------- inference choice
def choose_inference(
    requested: str, n_treated: int, n_donors: int, estimator: str = "synthetic_did"
) -> tuple[Literal["placebo", "jackknife"], str]:
    """Pick placebo or jackknife inference and say why.

    Parameters
    ----------
    requested : str
        ``design.inference.method`` as resolved by the engine. ``placebo`` / ``permutation`` and
        ``jackknife`` are honoured; any other value means "choose for this design".
    n_treated, n_donors : int
        Numbers of treated and donor units.
    estimator : str
        Name used in messages.

    Returns
    -------
    method : {"placebo", "jackknife"}
    reason : str
        One sentence for the report.

    Raises
    ------
    EstimationError
        When the requested method cannot work for this design.
    """
    if requested in ("placebo", "permutation"):
        if n_donors <= n_treated:
            raise EstimationError(
                f"design.inference.method: placebo inference for {estimator} needs more "
                f"comparison units than treated units, found {n_donors} comparison and "
                f"{n_treated} treated; add comparison units or use method: jackknife"
            )
        return "placebo", (
            f"{requested.capitalize()} inference as requested, in its placebo form: the pilot "
            "was re-assigned to randomly chosen comparison areas and the spread of those "
            "placebo effects gives the standard error."
        )
    if requested == "jackknife":
        if n_treated < 2:
            raise EstimationError(
                f"design.inference.method: the jackknife for {estimator} needs at least two "
                f"treated units, found {n_treated}; use method: placebo (or auto)"
            )
        return "jackknife", (
            "Jackknife inference as requested: the estimate was recomputed leaving out one "
            "area at a time."
        )
    if n_treated >= 2:
        return "jackknife", (
            f"With {n_treated} treated areas the jackknife (leave one area out, weights held "
            "fixed; Arkhangelsky et al. 2021, Algorithm 3) gives the standard error."
        )
    if n_donors <= n_treated:
        raise EstimationError(
            f"design.estimator: {estimator} with one treated unit needs comparison units for "
            f"placebo inference, found {n_donors}; add comparison units to the data"
        )
    return "placebo", (
        "With a single treated area no other standard error is valid: the pilot was re-assigned "
        "to randomly chosen comparison areas (Arkhangelsky et al. 2021, Algorithm 4) and the "
        "spread of those placebo effects gives the standard error."
    )


# --------------------------------------------------------------------------- design
@dataclass(frozen=True)
class _Component:
    """One weight fit: treated rows (indices into ``y``) with their weights."""

    cohort: int  # index into _Design.starts
    treated: np.ndarray
    fit: BlockFit


@dataclass(frozen=True)
class _Design:
    y: np.ndarray  # (N, T) outcomes of the analysed units
    controls: np.ndarray  # rows of y that are donors
    starts: np.ndarray  # (C,) pre-period length of each cohort
    cohort_units: tuple[np.ndarray, ...]  # rows of y treated in each cohort
    predictors: tuple[np.ndarray, ...]  # per cohort (P, N) pre-period means, or empty


def _design(panel: Panel, outcome: str, predictors: tuple[str, ...], estimator: str) -> _Design:
    if outcome not in panel.frame.columns:
        raise EstimationError(
            f"outcome '{outcome}' is not a column of the panel (columns: "
            f"{', '.join(map(str, panel.frame.columns))}); check outcomes[].column"
        )
    n, t = panel.n_units, panel.n_periods
    y = np.full((n, t), np.nan)
    y[panel.unit, panel.time] = panel.y(outcome)
    if np.isnan(y).any():
        bad_units = np.unique(np.nonzero(np.isnan(y))[0])
        names = ", ".join(str(panel.unit_labels[i]) for i in bad_units[:5])
        raise EstimationError(
            f"{estimator} needs every unit observed in every period, but '{outcome}' is missing "
            f"for {int(np.isnan(y).sum())} unit-period(s) (units {names}"
            f"{' and others' if bad_units.size > 5 else ''}); drop those units with "
            "treatment.exclude or fill the gaps in the data"
        )
    first = panel.first_treated
    treated = first != NEVER
    start = np.where(treated, first - panel.anticipation, NEVER)
    controls = np.flatnonzero(~treated)
    if not treated.any():
        raise EstimationError(
            f"{estimator} needs a treated unit, found none; check treatment.units / adoption"
        )
    if controls.size == 0:
        raise EstimationError(
            f"{estimator} needs donor (comparison) units that are never treated, found none; "
            "widen treatment.comparison or remove units from treatment.exclude"
        )
    starts = np.unique(start[treated])
    if starts[0] < MIN_PRE_PERIODS:
        first_bad = panel.unit_labels[int(np.flatnonzero(start == starts[0])[0])]
        raise EstimationError(
            f"{estimator} needs at least {MIN_PRE_PERIODS} pre-periods to fit weights, but unit "
            f"'{first_bad}' has {max(int(starts[0]), 0)} (anticipation {panel.anticipation}); "
            "add earlier periods to the data or use a later treatment.start"
        )
    if starts[-1] >= t:
        raise EstimationError(
            f"{estimator} needs at least one post-period, but a cohort starts after the last "
            f"period {panel.period_labels[-1]}; check treatment.start"
        )
    cohort_units = tuple(np.flatnonzero(start == s) for s in starts)
    preds: list[np.ndarray] = []
    if predictors:
        missing = [c for c in predictors if c not in panel.frame.columns]
        if missing:
            raise EstimationError(
                f"design.synthetic.predictors: column(s) {', '.join(missing)} are not in the "
                "data; list columns of the data file (they are averaged over the pre-period)"
            )
        x = np.full((len(predictors), n, t), np.nan)
        for k, col in enumerate(predictors):
            x[k, panel.unit, panel.time] = panel.frame[col].to_numpy(np.float64)
        for s in starts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                m = np.nanmean(x[:, :, : int(s)], axis=2)
            if np.isnan(m).any():
                k = int(np.nonzero(np.isnan(m).any(axis=1))[0][0])
                raise EstimationError(
                    f"design.synthetic.predictors: '{predictors[k]}' has no pre-period value "
                    "for some units; every unit needs at least one value before the start"
                )
            preds.append(m)
    return _Design(y, controls, starts.astype(np.int64), cohort_units, tuple(preds))


def _fit_components(d: _Design, method: Method, fit_on: str) -> list[_Component]:
    yc = d.y[d.controls]
    comps: list[_Component] = []
    for c, (s, units) in enumerate(zip(d.starts, d.cohort_units, strict=True)):
        xc = d.predictors[c][:, d.controls] if d.predictors else None
        xt_all = d.predictors[c][:, units] if d.predictors else None
        if method == "sc" and fit_on == "each" and units.size > 1:
            fits = fit_block_each(yc, d.y[units], int(s), xc, xt_all)
            comps.extend(_Component(c, units[k : k + 1], f) for k, f in enumerate(fits))
        else:
            xt = xt_all.mean(axis=1) if xt_all is not None else None
            comps.append(_Component(c, units, fit_block(yc, d.y[units], int(s), method, xc, xt)))
    return comps


# --------------------------------------------------------------------------- aggregation
def _aggregate(
    d: _Design, comps: list[_Component], curves: list[np.ndarray], sizes: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine component gap curves into cohort curves, the overall estimate and event curves.

    ``curves[s]`` has shape (B, T) and ``sizes[s]`` (B,) the number of treated units behind it
    (0 when left out). Returns the estimate (B,), event-time curves (B, E) and cohort curves
    (B, C, T).
    """
    n_b = curves[0].shape[0]
    n_t = d.y.shape[1]
    n_c = len(d.starts)
    tot = np.zeros((n_b, n_c, n_t))
    cnt = np.zeros((n_b, n_c))
    for comp, cur, sz in zip(comps, curves, sizes, strict=True):
        tot[:, comp.cohort] += sz[:, None] * np.nan_to_num(cur)
        cnt[:, comp.cohort] += sz
    with np.errstate(invalid="ignore", divide="ignore"):
        cohort_curve = tot / cnt[:, :, None]
    post_len = n_t - d.starts
    w = cnt * post_len[None, :]
    post_mask = np.arange(n_t)[None, :] >= d.starts[:, None]  # (C, T)
    cohort_est = np.where(
        cnt > 0, (np.nan_to_num(cohort_curve) * post_mask).sum(axis=2) / post_len, 0.0
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = (w * cohort_est).sum(axis=1) / w.sum(axis=1)
    # event time e = t - start; index e + max(start)
    shift = int(d.starts.max())
    n_e = shift + n_t - int(d.starts.min())
    ev_tot = np.zeros((n_b, n_e))
    ev_cnt = np.zeros((n_b, n_e))
    for c, s in enumerate(d.starts):
        lo = shift - int(s)
        ev_tot[:, lo : lo + n_t] += cnt[:, c : c + 1] * np.nan_to_num(cohort_curve[:, c])
        ev_cnt[:, lo : lo + n_t] += cnt[:, c : c + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        event = ev_tot / ev_cnt
    # undefined combinations (a left-out control that carried all the weight) stay NaN
    bad = np.zeros(n_b, dtype=bool)
    for cur in curves:
        bad |= np.isnan(cur).any(axis=1)
    estimate[bad] = np.nan
    event[bad] = np.nan
    return estimate, event, cohort_curve


def _component_curves(d: _Design, comp: _Component) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic path and gap curve of one component on the real data (each shape (T,))."""
    yc = d.y[d.controls]
    treated_mean = d.y[comp.treated].mean(axis=0)
    synth, curve = block_curves(
        comp.fit.omega[None], comp.fit.lam[None], yc, treated_mean[None], comp.fit.t0
    )
    return synth[0], curve[0]


# --------------------------------------------------------------------------- inference
def _jackknife(d: _Design, comps: list[_Component]) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-unit-out estimates and event curves with fixed weights (Algorithm 3)."""
    n = d.y.shape[0]
    curves: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    for comp in comps:
        f = comp.fit
        dev = d.y - (d.y[:, : f.t0] @ f.lam)[:, None]  # (N, T)
        k = comp.treated.size
        base_tr = dev[comp.treated].mean(axis=0)
        base_c = f.omega @ dev[d.controls]
        cur = np.broadcast_to(base_tr - base_c, (n, d.y.shape[1])).copy()
        size = np.full(n, float(k))
        om = f.omega
        with np.errstate(divide="ignore", invalid="ignore"):
            loo_c = (base_c[None, :] - om[:, None] * dev[d.controls]) / (1.0 - om)[:, None]
        loo_c[om >= 1.0] = np.nan
        cur[d.controls] = base_tr[None, :] - loo_c
        if k > 1:
            cur[comp.treated] = (k * base_tr[None, :] - dev[comp.treated]) / (k - 1) - base_c
        size[comp.treated] = k - 1.0
        curves.append(cur)
        sizes.append(size)
    est, event, _ = _aggregate(d, comps, curves, sizes)
    return est, event


def _jackknife_se(values: np.ndarray) -> np.ndarray:
    n = values.shape[0]
    se: np.ndarray = np.sqrt((n - 1) / n * ((values - values.mean(axis=0)) ** 2).sum(axis=0))
    return se


def _placebo(
    d: _Design, comps: list[_Component], assign: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Placebo estimates and event curves for pseudo-treated donor sets ``assign`` (U, N_tr).

    Columns of ``assign`` are split among cohorts in order of the cohorts' sizes.
    """
    yc = d.y[d.controls]
    sizes_c = np.array([u.size for u in d.cohort_units])
    offsets = np.concatenate([[0], np.cumsum(sizes_c)])
    curves: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    n_u = assign.shape[0]
    for comp in comps:
        lo, hi = offsets[comp.cohort], offsets[comp.cohort + 1]
        if comp.treated.size == 1 and hi - lo > 1:  # one of several 'each' components
            k = int(np.flatnonzero(d.cohort_units[comp.cohort] == comp.treated[0])[0])
            tr = assign[:, lo + k : lo + k + 1]
        else:
            tr = assign[:, lo:hi]
        xc = d.predictors[comp.cohort][:, d.controls] if d.predictors else None
        curves.append(placebo_curves(comp.fit, yc, tr, assign, xc))
        sizes.append(np.full(n_u, float(comp.treated.size)))
    est, event, _ = _aggregate(d, comps, curves, sizes)
    return est, event


def _unique_rows(assign: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Identical draws (same donors per cohort, in any order) are solved once."""
    key = assign.copy()
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for lo, hi in itertools.pairwise(offsets):
        key[:, lo:hi] = np.sort(key[:, lo:hi], axis=1)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    return uniq, inverse.reshape(-1)


# --------------------------------------------------------------------------- main entry
def fit_synthetic(
    panel: Panel,
    outcome: str,
    options: EstimatorOptions,
    rng: np.random.Generator,
    method: Method = "sdid",
) -> EffectResult:
    """Fit synthetic DiD, synthetic control or DiD (uniform weights) with the same machinery.

    Parameters
    ----------
    panel : Panel
        Balanced panel; donors are the never-treated units it contains.
    outcome : str
        Outcome column.
    options : EstimatorOptions
        Reads ``inference`` (placebo / jackknife, anything else chooses), ``replications``,
        ``alpha`` and ``synthetic`` (predictors and ``fit_on``, synthetic control).
    rng : numpy.random.Generator
        Source of the placebo draws.
    method : {"sdid", "sc", "did"}
        Estimator.

    Returns
    -------
    EffectResult
        ``synthetic`` (:class:`~pilotlab.results.SyntheticTables`) holds ``weights``,
        ``time_weights``, ``paths``, ``placebo``, ``pre_rmspe``, ``fit_sentence``,
        ``inference_reason`` and (synthetic control) ``rank_p_value``.

    Raises
    ------
    EstimationError
        No treated or donor units, fewer than two pre-periods, missing outcome values, or an
        inference method that cannot work for the design.
    """
    name = _NAMES[method]
    predictors = tuple(options.synthetic.predictors) if method == "sc" else ()
    d = _design(panel, outcome, predictors, name)
    fit_on = options.synthetic.fit_on if method == "sc" else "average"
    n_donors = d.controls.size
    n_treated = int(sum(u.size for u in d.cohort_units))
    notes: list[Notice] = []

    inference, reason = choose_inference(options.inference, n_treated, n_donors, name)
    if options.inference not in ("placebo", "permutation", "jackknife", "cluster"):
        reason = (
            f"design.inference.method '{options.inference}' does not apply to {name}. " + reason
        )
    comps = _fit_components(d, method, fit_on)

    # point estimate, paths
    curves, synths = zip(*(_component_curves(d, c)[::-1] for c in comps), strict=True)
    est_arr, event_arr, cohort_curves = _aggregate(
        d,
        comps,
        [c[None] for c in curves],
        [np.array([float(c.treated.size)]) for c in comps],
    )
    estimate = float(est_arr[0])

    # inference
    placebo_table: pd.DataFrame | None = None
    rank_p = math.nan
    reps = int(options.replications)
    labels = np.asarray(panel.unit_labels, dtype=object)[d.controls]
    rank_units = np.empty(0, dtype=np.int64)
    if method == "sc" and len(d.starts) == 1:
        # ADH in-space placebos: every donor (at most `replications` of them) as the treated unit
        rank_units = in_space_placebos(n_donors, reps, rng)
    rank_curves: np.ndarray | None = None
    if inference == "jackknife":
        jk_est, jk_event = _jackknife(d, comps)
        if np.isnan(jk_est).any():
            if n_donors <= n_treated:
                raise EstimationError(
                    f"{name}: the jackknife is undefined (one comparison area carries all "
                    "the weight) and placebo inference needs more comparison than treated "
                    "units; add comparison units"
                )
            notes.append(
                notice(
                    "jackknife-fallback",
                    "The jackknife is undefined here (one comparison area carries all the "
                    "weight), so placebo inference was used instead.",
                )
            )
            inference, reason = "placebo", notes[-1].message
        else:
            se = float(_jackknife_se(jk_est))
            event_se = _jackknife_se(jk_event)
    if inference == "placebo":
        sizes_c = np.array([u.size for u in d.cohort_units])
        assign = placebo_sets(n_donors, n_treated, reps, rng)  # positions among donors
        if n_treated == 1:
            # every draw is a single donor: solve the union of draws and rank units once
            uniq = np.union1d(assign[:, 0], rank_units)[:, None]
            inverse = np.searchsorted(uniq[:, 0], assign[:, 0])
        else:
            uniq, inverse = _unique_rows(assign, sizes_c)
        u_est, u_event = _placebo(d, comps, uniq)
        pl_est = u_est[inverse]
        se = float(pl_est.std())
        event_se = u_event[inverse].std(axis=0)
        if n_treated == 1 and rank_units.size:
            rank_curves = u_event[np.searchsorted(uniq[:, 0], rank_units)]
        elif not rank_units.size:
            counts = np.bincount(inverse, minlength=uniq.shape[0])
            keep = counts > 0
            placebo_table = pd.DataFrame(
                {
                    "unit": [" + ".join(map(str, labels[row])) for row in uniq[keep]]
                    + [_treated_label(panel, d)],
                    "estimate": np.append(u_est[keep], estimate),
                    "draws": np.append(counts[keep], 0),
                    "treated": [False] * int(keep.sum()) + [True],
                }
            )
    if rank_units.size:
        if rank_curves is None:
            first = d.cohort_units[0][:1]
            rank_curves = _placebo(
                _Design(d.y, d.controls, d.starts, (first,), d.predictors),
                [_Component(0, first, comps[0].fit)],
                rank_units[:, None],
            )[1]
        placebo_table, rank_p = _rank_table(d, labels[rank_units], rank_curves, event_arr[0], panel)
    z = float(norm_ppf(1 - options.alpha / 2))
    p_value = float(2 * norm_sf(abs(estimate / se))) if se > 0 else math.nan

    # fit quality
    pre_rmspe = _pre_rmspe(d, cohort_curves[0])
    sd = float(d.y[:, : int(d.starts.min())].std())
    fit_sentence = _fit_sentence(pre_rmspe, d, panel, outcome)
    if sd > 0 and pre_rmspe > POOR_FIT_RATIO * sd:
        notes.append(
            notice(
                "poor-pre-fit",
                f"The {name} comparison fits the pilot area poorly before the start: the "
                f"pre-period root mean squared gap is {pre_rmspe:.3g}, {pre_rmspe / sd:.0%} of the "
                f"standard deviation of '{outcome}' ({sd:.3g}). Check the donor pool "
                "(treatment.comparison / exclude) or prefer synthetic_did.",
            )
        )
    if options.covariates:
        notes.append(
            notice(
                "covariates-ignored",
                f"{name} does not adjust for design.covariates "
                f"({', '.join(options.covariates)}): its comparison is built from pre-period "
                "outcomes"
                + (
                    "; list them under design.synthetic.predictors to match on their pre-period means."
                    if method == "sc"
                    else "; synthetic_control can match on them (design.synthetic.predictors)."
                ),
            )
        )
    if int(d.starts.min()) < SHORT_PRE_PERIODS:
        notes.append(
            notice(
                "short-pre-period",
                f"Only {int(d.starts.min())} pre-period(s) before the start: the {name} weights "
                "rest on very little history.",
            )
        )
    for note in notes:
        emit(note, stacklevel=2)

    tables = SyntheticTables(
        method=method,
        weights=Table(_weights_table(panel, d, comps)),
        paths=Table(_paths_table(panel, d, comps, cohort_curves[0])),
        placebo=Table(placebo_table) if placebo_table is not None else None,
        pre_rmspe=pre_rmspe,
        fit_sentence=fit_sentence,
        inference_reason=reason,
        replications=reps if inference == "placebo" else 0,
        cohorts=Table(
            pd.DataFrame(
                {
                    "start": [panel.period_labels[int(s)] for s in d.starts],
                    "n_treated": [u.size for u in d.cohort_units],
                    "post_periods": [panel.n_periods - int(s) for s in d.starts],
                }
            )
        ),
        noise_level=comps[0].fit.noise,
        zeta_omega=comps[0].fit.zeta_omega,
        time_weights=Table(_time_weights_table(panel, d, comps)) if method == "sdid" else None,
        rank_p_value=rank_p if method == "sc" else None,
        fit_on=fit_on if method == "sc" else None,
    )
    del synths
    return EffectResult(
        estimator=name if method != "did" else "did_synthetic",
        outcome=outcome,
        estimate=estimate,
        std_error=se,
        ci_lower=estimate - z * se,
        ci_upper=estimate + z * se,
        p_value=p_value,
        alpha=options.alpha,
        inference=inference,
        nobs=int(d.y.size),
        n_units=int(d.y.shape[0]),
        n_treated_units=n_treated,
        n_clusters=int(d.y.shape[0]),
        n_periods=int(d.y.shape[1]),
        estimand="ATT",
        event_study=_event_study(d, event_arr[0], event_se, z),
        warnings=tuple(notes),
        synthetic=tables,
    )


# --------------------------------------------------------------------------- report tables
def _treated_label(panel: Panel, d: _Design) -> str:
    units = np.concatenate(d.cohort_units)
    names = [str(panel.unit_labels[i]) for i in units]
    return names[0] if len(names) == 1 else "treated average"


def _pre_rmspe(d: _Design, cohort_curves: np.ndarray) -> float:
    """Root mean squared pre-period gap, averaged over cohorts by their treated counts."""
    vals = np.array(
        [math.sqrt(float(np.mean(cohort_curves[c, : int(s)] ** 2))) for c, s in enumerate(d.starts)]
    )
    n = np.array([u.size for u in d.cohort_units], dtype=float)
    return float((vals * n).sum() / n.sum())


def _fit_sentence(pre_rmspe: float, d: _Design, panel: Panel, outcome: str) -> str:
    many = sum(u.size for u in d.cohort_units) > 1
    who = "the pilot areas (on average)" if many else "the pilot area"
    return (
        f"The synthetic comparison tracks {who} to within {pre_rmspe:.3g} ({outcome}, root mean "
        f"squared gap) over the {int(d.starts.min())} periods before the start."
        if len(d.starts) == 1
        else f"The synthetic comparisons track {who} to within {pre_rmspe:.3g} ({outcome}, root "
        "mean squared gap) before each cohort's start."
    )


def _weights_table(panel: Panel, d: _Design, comps: list[_Component]) -> pd.DataFrame:
    """Donor weights averaged over components with weights N_treated x post-periods."""
    w = np.zeros(d.controls.size)
    tot = 0.0
    for c in comps:
        share = c.treated.size * (d.y.shape[1] - c.fit.t0)
        w += share * c.fit.omega
        tot += share
    w /= tot
    out = pd.DataFrame({"unit": [str(panel.unit_labels[i]) for i in d.controls], "weight": w})
    return out.sort_values("weight", ascending=False, kind="stable").reset_index(drop=True)


def _time_weights_table(panel: Panel, d: _Design, comps: list[_Component]) -> pd.DataFrame:
    rows = []
    for c in comps:
        start = panel.period_labels[int(d.starts[c.cohort])]
        for t, lam in enumerate(c.fit.lam):
            rows.append((start, panel.period_labels[t], float(lam)))
    out = pd.DataFrame(rows, columns=["cohort", "period", "weight"])
    if len(d.starts) == 1:
        out = out.drop(columns="cohort")
    return out


def _paths_table(
    panel: Panel, d: _Design, comps: list[_Component], cohort_curves: np.ndarray
) -> pd.DataFrame:
    frames = []
    for c, (s, units) in enumerate(zip(d.starts, d.cohort_units, strict=True)):
        treated = d.y[units].mean(axis=0)
        gap = cohort_curves[c]
        frames.append(
            pd.DataFrame(
                {
                    "cohort": panel.period_labels[int(s)],
                    "period": list(panel.period_labels),
                    "event_time": np.arange(d.y.shape[1]) - int(s),
                    "treated": treated,
                    "synthetic": treated - gap,
                    "gap": gap,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    if len(d.starts) == 1:
        out = out.drop(columns="cohort")
    return out


def _rank_table(
    d: _Design,
    labels: np.ndarray,
    placebo_curves_: np.ndarray,
    treated_curve: np.ndarray,
    panel: Panel,
) -> tuple[pd.DataFrame, float]:
    t0 = int(d.starts[0])
    curves = np.vstack([placebo_curves_, treated_curve[None]])
    pre = np.sqrt(np.mean(curves[:, :t0] ** 2, axis=1))
    post = np.sqrt(np.mean(curves[:, t0:] ** 2, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pre > 0, post / pre, np.inf)
    est = curves[:, t0:].mean(axis=1)
    n_pl = labels.size
    rank_p = float((ratio[:n_pl] >= ratio[-1]).sum() + 1) / (n_pl + 1)
    table = pd.DataFrame(
        {
            "unit": [*map(str, labels), _treated_label(panel, d)],
            "estimate": est,
            "pre_rmspe": pre,
            "post_rmspe": post,
            "rmspe_ratio": ratio,
            "treated": [False] * n_pl + [True],
        }
    )
    table = table.sort_values("rmspe_ratio", ascending=False, kind="stable")
    return table.reset_index(drop=True), rank_p


def _event_study(
    d: _Design, event: np.ndarray, event_se: np.ndarray, z: float
) -> tuple[EventTimeEstimate, ...]:
    shift = int(d.starts.max())
    out = []
    for j, (e, s) in enumerate(zip(event, event_se, strict=True)):
        if not np.isfinite(e):
            continue
        s = float(s)
        p = float(2 * norm_sf(abs(e / s))) if s > 0 else math.nan
        out.append(
            EventTimeEstimate(
                event_time=j - shift,
                estimate=float(e),
                std_error=s,
                ci_lower=float(e - z * s),
                ci_upper=float(e + z * s),
                p_value=p,
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- registry
def fit_synthetic_did(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Synthetic difference in differences (Arkhangelsky et al. 2021); see the module docstring."""
    return fit_synthetic(panel, outcome, options, rng, "sdid")


def fit_synthetic_control(
    panel: Panel, outcome: str, options: EstimatorOptions, rng: np.random.Generator
) -> EffectResult:
    """Synthetic control (Abadie, Diamond & Hainmueller 2010); see the module docstring."""
    return fit_synthetic(panel, outcome, options, rng, "sc")


SYNTHETIC_DID = register(
    EstimatorEntry(
        name="synthetic_did",
        title="synthetic difference in differences",
        fit=fit_synthetic_did,
        description="Synthetic difference in differences (unit and time weights, intercepts)",
        capabilities=Capabilities(
            inference=SYNTHETIC_INFERENCE,
            layouts=("panel",),
            staggered=True,
            event_times=True,
            synthetic=True,
            auto="few_treated",
        ),
        inference_rule=choose_inference,
    )
)
SYNTHETIC_CONTROL = register(
    EstimatorEntry(
        name="synthetic_control",
        title="synthetic control",
        fit=fit_synthetic_control,
        description="Synthetic control: a weighted average of comparison areas fitted pre-start",
        capabilities=Capabilities(
            inference=SYNTHETIC_INFERENCE,
            layouts=("panel",),
            staggered=True,
            event_times=True,
            synthetic=True,
        ),
        inference_rule=choose_inference,
    )
)
