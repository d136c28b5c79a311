"""A synthesis across pilots of one metric: the pooled estimate and everything said about it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pilotlab.exceptions import PilotlabError
from pilotlab.frameworks import Metric
from pilotlab.synthesis.inputs import SCALES, Study
from pilotlab.synthesis.meta import METHODS, MetaResult, Method, meta_analysis, subgroup_test

__all__ = [
    "GROUPINGS",
    "SCHEMA_ID",
    "LeaveOneOut",
    "Sensitivity",
    "Subgroup",
    "SubgroupAnalysis",
    "Synthesis",
    "synthesise",
]

SCHEMA_ID = "pilotlab.synthesis/1"
#: Study attributes subgroups are formed by, with how the page names them.
GROUPINGS = {
    "policy_area": "policy area",
    "design": "design",
    "evidence_level": "evidence level",
}
#: Below this many estimates the output explains what few estimates mean for the interval.
FEW = 5


@dataclass(frozen=True)
class LeaveOneOut:
    """The pooled estimate without one study."""

    omitted: str
    estimate: float
    ci_lower: float
    ci_upper: float
    tau2: float
    i2: float


@dataclass(frozen=True)
class Subgroup:
    """The pooled estimate of one subgroup."""

    value: str
    k: int
    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    tau2: float | None


@dataclass(frozen=True)
class SubgroupAnalysis:
    """Subgroups of one attribute and the test of difference between them."""

    by: str
    groups: tuple[Subgroup, ...]
    q_between: float
    df: int
    p_value: float
    left_out: int  # studies with no value for the attribute


@dataclass(frozen=True)
class Sensitivity:
    """The pooled estimate keeping only studies at or above an evidence level."""

    min_level: int
    k: int
    estimate: float | None
    ci_lower: float | None
    ci_upper: float | None
    note: str


@dataclass(frozen=True)
class Synthesis:
    """Everything ``pilotlab synthesise`` reports."""

    metric: str
    metric_info: Metric | None
    scale: str
    method: str
    studies: tuple[Study, ...]
    pooled: MetaResult
    leave_one_out: tuple[LeaveOneOut, ...]
    subgroups: tuple[SubgroupAnalysis, ...]
    sensitivity: tuple[Sensitivity, ...]
    notes: tuple[str, ...] = ()
    few_studies: str | None = None
    generated_at: str = ""
    software: dict[str, str] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        """The unit of the pooled numbers."""
        if self.scale == "percent":
            return "% of the pre-pilot mean"
        return self.metric_info.unit if self.metric_info is not None else "outcome units"

    def to_dict(self) -> dict[str, Any]:
        """``synthesis.json`` (its JSON Schema: ``synthesis.schema.json``)."""
        p = self.pooled
        out: dict[str, Any] = {
            "schema": SCHEMA_ID,
            "generated_at": self.generated_at,
            "software": dict(self.software),
            "metric": self.metric,
            "metric_info": self.metric_info.to_dict() if self.metric_info else None,
            "scale": self.scale,
            "unit": self.unit,
            "method": self.method,
            "k": p.k,
            "estimate": p.estimate,
            "std_error": p.std_error,
            "ci_lower": p.ci_lower,
            "ci_upper": p.ci_upper,
            "p_value": p.p_value,
            "hartung_knapp": {
                "std_error": p.hk_std_error,
                "ci_lower": p.hk_ci_lower,
                "ci_upper": p.hk_ci_upper,
                "df": p.hk_df,
                "p_value": p.hk_p_value,
            },
            "prediction_lower": p.prediction_lower,
            "prediction_upper": p.prediction_upper,
            "prediction_df": p.prediction_df,
            "prediction_normal_lower": p.prediction_normal_lower,
            "prediction_normal_upper": p.prediction_normal_upper,
            "tau2": p.tau2,
            "tau": p.tau,
            "i2": p.i2,
            "h2": p.h2,
            "q": p.q,
            "q_df": p.q_df,
            "q_p_value": p.q_p_value,
            "fixed_effect": {
                "estimate": p.fixed_estimate,
                "std_error": p.fixed_std_error,
                "ci_lower": p.fixed_ci_lower,
                "ci_upper": p.fixed_ci_upper,
            },
            "level": p.level,
            "studies": [
                {**s.to_dict(), "weight": w} for s, w in zip(self.studies, p.weights, strict=True)
            ],
            "leave_one_out": [vars(x) for x in self.leave_one_out],
            "subgroups": [
                {
                    "by": g.by,
                    "q_between": g.q_between,
                    "df": g.df,
                    "p_value": g.p_value,
                    "left_out": g.left_out,
                    "groups": [vars(x) for x in g.groups],
                }
                for g in self.subgroups
            ],
            "sensitivity": [vars(x) for x in self.sensitivity],
            "cost_per_outcome": self.cost_summary(),
            "few_studies": self.few_studies,
            "notes": list(self.notes),
        }
        return out

    def cost_summary(self) -> dict[str, Any] | None:
        """Cost per unit of outcome change across places (those whose record states costs)."""
        rows = [s for s in self.studies if s.cost_per_unit is not None]
        if not rows:
            return None
        values = np.array([s.cost_per_unit for s in rows], dtype=float)
        years = sorted({s.price_year for s in rows if s.price_year is not None})
        return {
            "k": len(rows),
            "median": float(np.median(values)),
            "min": float(values.min()),
            "max": float(values.max()),
            "price_years": years,
            "places": [
                {
                    "id": s.id,
                    "cost_per_unit_change": s.cost_per_unit,
                    "benefit_cost_ratio": s.benefit_cost_ratio,
                    "npv": s.npv,
                    "price_year": s.price_year,
                }
                for s in rows
            ],
        }


def _few_studies(k: int, p: MetaResult) -> str | None:
    if k >= FEW:
        return None
    if k == 2:
        pi = (
            "With two estimates no prediction interval can be given for a new place: there is "
            "nothing left to judge how far places differ."
        )
    else:
        pi = (
            "The prediction interval for a new place is wide because it allows for how little "
            f"{k} places say about how much places differ."
        )
    return (
        f"Only {k} estimates are pooled. With so few, how much the effect differs between places "
        "is barely estimated: the usual confidence interval treats that spread as known and is "
        "likely too narrow. The Hartung-Knapp interval allows for the uncertainty and is the "
        f"safer reading ({'wider' if p.hk_ci_upper - p.hk_ci_lower > p.ci_upper - p.ci_lower else 'here no wider'} "
        f"than the usual one). {pi}"
    )


def _pool(studies: Sequence[Study], method: Method) -> MetaResult:
    return meta_analysis([s.estimate for s in studies], [s.std_error for s in studies], method)


def _group_key(s: Study, by: str) -> str | None:
    v = getattr(s, by)
    if v is None or v == "":
        return None
    return f"Level {v}" if by == "evidence_level" else str(v)


def _subgroups(studies: Sequence[Study], method: Method) -> list[SubgroupAnalysis]:
    out = []
    for by in GROUPINGS:
        groups: dict[str, list[Study]] = {}
        for s in studies:
            key = _group_key(s, by)
            if key is not None:
                groups.setdefault(key, []).append(s)
        if len(groups) < 2:
            continue
        rows = []
        for value, members in sorted(groups.items()):
            if len(members) == 1:
                s = members[0]
                z = 1.959963984540054
                rows.append(
                    Subgroup(
                        value,
                        1,
                        s.estimate,
                        s.std_error,
                        s.estimate - z * s.std_error,
                        s.estimate + z * s.std_error,
                        None,
                    )
                )
            else:
                r = _pool(members, method)
                rows.append(
                    Subgroup(value, r.k, r.estimate, r.std_error, r.ci_lower, r.ci_upper, r.tau2)
                )
        t = subgroup_test([g.estimate for g in rows], [g.std_error for g in rows])
        left_out = len(studies) - sum(g.k for g in rows)
        out.append(SubgroupAnalysis(by, tuple(rows), t.q_between, t.df, t.p_value, left_out))
    return out


def _sensitivity(studies: Sequence[Study], method: Method) -> list[Sensitivity]:
    levels = sorted({s.evidence_level for s in studies if s.evidence_level is not None})
    out = []
    for lvl in levels[1:]:
        kept = [s for s in studies if s.evidence_level is not None and s.evidence_level >= lvl]
        if len(kept) < 2:
            out.append(
                Sensitivity(
                    lvl,
                    len(kept),
                    None,
                    None,
                    None,
                    f"only {len(kept)} estimate at level {lvl} or above: nothing to pool",
                )
            )
            continue
        r = _pool(kept, method)
        out.append(
            Sensitivity(
                lvl,
                r.k,
                r.estimate,
                r.ci_lower,
                r.ci_upper,
                f"{len(studies) - len(kept)} weaker estimate(s) dropped",
            )
        )
    return out


def synthesise(
    studies: Sequence[Study],
    metric: str,
    metric_info: Metric | None,
    *,
    method: Method = "reml",
    scale: str = "units",
    notes: Sequence[str] = (),
    generated_at: str = "",
    software: dict[str, str] | None = None,
) -> Synthesis:
    """Pool the studies of one metric.

    Raises
    ------
    PilotlabError
        Fewer than two estimates, an id given twice, studies on different scales, or a
        standard error that is not positive.
    """
    if method not in METHODS:
        raise PilotlabError(f"--method: found '{method}'; allowed: {', '.join(METHODS)}")
    if scale not in SCALES:
        raise PilotlabError(f"--scale: found '{scale}'; allowed: {', '.join(SCALES)}")
    if len(studies) < 2:
        found = "no estimate" if not studies else "only one estimate"
        raise PilotlabError(
            f"--metric {metric}: {found} of this metric to pool; a synthesis needs at least two "
            "(pilots whose outcome names the metric, or rows of --external estimates.csv)"
        )
    scales = sorted({s.scale for s in studies})
    if len(scales) > 1:
        raise PilotlabError(
            f"the estimates are on different scales ({', '.join(scales)}); pool on one scale: "
            "outcome units or percent of the pre-pilot mean (--scale)"
        )
    ids = [s.id for s in studies]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise PilotlabError(
            f"the estimate(s) {', '.join(dupes)} are given more than once (e.g. from the registry "
            "and from a file, or twice in the CSV); give each pilot or study once"
        )
    for s in studies:
        if not (s.std_error > 0 and math.isfinite(s.std_error)):
            raise PilotlabError(
                f"{s.id}: the standard error is {s.std_error}; every estimate needs a positive "
                "standard error"
            )
    pooled = _pool(studies, method)
    loo: list[LeaveOneOut] = []
    if len(studies) >= 3:
        for i, s in enumerate(studies):
            r = _pool([t for j, t in enumerate(studies) if j != i], method)
            loo.append(LeaveOneOut(s.id, r.estimate, r.ci_lower, r.ci_upper, r.tau2, r.i2))
    return Synthesis(
        metric=metric,
        metric_info=metric_info,
        scale=scale,
        method=method,
        studies=tuple(studies),
        pooled=pooled,
        leave_one_out=tuple(loo),
        subgroups=tuple(_subgroups(studies, method)),
        sensitivity=tuple(_sensitivity(studies, method)),
        notes=tuple(notes),
        few_studies=_few_studies(len(studies), pooled),
        generated_at=generated_at,
        software=dict(software or {}),
    )
