"""Example evaluations for the report tests and the report benchmark (simulated, known effects).

* ``common``: 6 of 150 areas start together, quarterly (the employment-support shape);
* ``staggered``: three monthly waves, with Callaway & Sant'Anna style tables and a Goodman-Bacon
  decomposition attached (as the staggered estimator and diagnostics will provide them);
* ``three_outcomes``: three outcomes, every robustness check (incl. HonestDiD) attached;
* ``synthetic``: one treated area with donor weights and a synthetic path attached;
* ``shipped(name)``: an example pilot of ``pilots/`` as it ships.

Estimator and inference are pinned in the pilot files so that the golden snapshots do not change
when later branches alter what ``auto`` picks. Evaluations are immutable, so each one is built
once per test process and shared (``functools.cache``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

import pilotlab
from pilotlab.diagnostics.evidence_strength import evidence_strength
from pilotlab.results import (
    BaconDecomposition,
    Choice,
    DesignDiagnostics,
    Evaluation,
    EventTimeEstimate,
    HonestDiD,
    PreTrendTest,
    RobustnessCheck,
    StaggeredTables,
    SyntheticTables,
    Table,
)
from pilotlab.simulate import SimulatedPilot, make_pilot_panel
from pilotlab.spec import parse_pilot

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
HOSTILE = f"{SCRIPT} {IMG}"
FIXED_TIME = "2026-01-01T00:00:00Z"
PILOTS = Path(__file__).resolve().parents[2] / "pilots"


def _spec(
    sim_units: list[str],
    start: str | None,
    outcomes: list[dict[str, Any]],
    *,
    adoption: dict[str, str] | None = None,
    hostile: bool = False,
    estimator: str = "event_study",
    robustness: list[str] | None = None,
    title: str = "Employment support pathfinder",
    inference: str = "cluster",
) -> Any:
    h = (lambda s: f"{s} {HOSTILE}") if hostile else (lambda s: s)
    first = min((adoption or {}).values(), default=None) or start
    day = _first_day(str(first)) if first else "2022-04-01"
    treatment: dict[str, Any] = (
        {"adoption": adoption} if adoption else {"units": sim_units, "start": start}
    )
    raw = {
        "id": "example-pilot",
        "title": h(title),
        "summary": h("Intensive support offered through family hubs."),
        "status": "completed",
        "lead": h("Example Combined Authority"),
        "partners": [h("Department for Work and Pensions")],
        "contact": h("evaluation@example.org"),
        "policy_area": h("employment"),
        "questions": [{"text": h("Did the pilot reduce the claimant rate?"), "confirmatory": True}],
        "registration": {
            "theory_of_change": h("Earlier support helps people into work sooner."),
            "publication": h("Within 6 months."),
            "design_type": h("quasi-experimental"),
            "start_date": h(day),  # the registered dates agree with the treatment start
            "end_date": h("2023-12-31"),
            "actual_start_date": h(day[:-2] + "04"),
            "actual_end_date": h("2023-12-31"),
            "report_due": h("2024-06-30"),
        },
        "data": {
            "path": "data.csv",
            "unit": "area_code",
            "time": "period",
            "unit_label": h("local authority"),
            "source": h("Simulated claimant data"),
        },
        "treatment": treatment,
        "outcomes": [
            {**o, "label": h(o["label"]), "units": h(o.get("units", "points"))} for o in outcomes
        ],
        "design": {
            "estimator": estimator,
            "inference": {"method": inference, "seed": 20240401},
            "robustness": robustness or [],
        },
    }
    return parse_pilot(raw)


def _first_day(period: str) -> str:
    """First calendar day of a quarter (``2021Q1``), month (``2022-07``) or year label."""
    m = re.fullmatch(r"(\d{4})Q([1-4])", period)
    if m:
        return f"{m.group(1)}-{3 * int(m.group(2)) - 2:02d}-01"
    if re.fullmatch(r"\d{4}-\d{2}", period):
        return f"{period}-01"
    return f"{period[:4]}-01-01" if period[:4].isdigit() else "2022-04-01"


def _fix_time(ev: Evaluation) -> Evaluation:
    return dataclasses.replace(
        ev, generated_at=FIXED_TIME, command="pilotlab run pilot.yaml -o out"
    )


CLAIMANT_RATE: dict[str, Any] = {
    "column": "claimant_rate",
    "label": "Claimant count rate (%)",
    "units": "percentage points",
    "primary": True,
    "better": "lower",
    "mde": 0.3,
}


def _authorities(
    effect: float, outcome: str, seed: int, *, noise_sd: float, unit_sd: float = 2.0
) -> SimulatedPilot:
    """150 local authorities over 24 quarters from 2017Q1, 6 of them in the pilot from the
    17th quarter (``unit_sd`` as :func:`make_pilot_panel`'s default unless given)."""
    return make_pilot_panel(
        150,
        24,
        6,
        16,
        effect,
        freq="quarter",
        first_period="2017Q1",
        seed=seed,
        outcome=outcome,
        noise_sd=noise_sd,
        unit_sd=unit_sd,
    )


@functools.cache
def common(hostile: bool = False) -> Evaluation:
    """6 of 150 local authorities from 2022Q1, quarterly, effect -0.5 on a lower-is-better rate."""
    sim = _authorities(-0.5, "claimant_rate", 11, noise_sd=0.3, unit_sd=1.0)
    spec = _spec(
        list(sim.treated_units),
        sim.start,
        [CLAIMANT_RATE],
        hostile=hostile,
    )
    return _fix_time(pilotlab.evaluate(spec, data=sim.data))


def _three_panel(seed: int = 5) -> tuple[pd.DataFrame, Any]:
    a = _authorities(-0.5, "claimant_rate", seed, noise_sd=0.3, unit_sd=1.0)
    b = _authorities(1.0, "employment_rate", seed, noise_sd=0.8)
    c = _authorities(0.0, "wellbeing", seed, noise_sd=0.2, unit_sd=0.3)
    df = a.data[["area_code", "period", "claimant_rate"]].copy()
    df["employment_rate"] = b.data["employment_rate"].to_numpy() + 60
    df["wellbeing"] = c.data["wellbeing"].to_numpy() - 3
    return df, a


THREE_OUTCOMES = [
    CLAIMANT_RATE,
    {
        "column": "employment_rate",
        "label": "Employment rate (%)",
        "units": "percentage points",
        "primary": True,
        "better": "higher",
    },
    {
        "column": "wellbeing",
        "label": "Life satisfaction (0-10)",
        "units": "points",
        "better": "higher",
    },
]
ALL_CHECKS = [
    "placebo_in_time",
    "placebo_in_space",
    "leave_one_out",
    "alternative_estimators",
    "honest_did",
]


def _checks(o: Any) -> tuple[RobustnessCheck, ...]:
    """Robustness results of the shape the inference branch returns (for rendering tests)."""
    r = o.result
    w = r.ci_upper - r.ci_lower
    intervals = pd.DataFrame(
        {
            "restriction": ["relative magnitude"] * 4,
            "Mbar": [0.5, 1.0, 1.5, 2.0],
            "ci_lower": [r.ci_lower - k * w / 4 for k in (1, 2, 3, 4)],
            "ci_upper": [r.ci_upper + k * w / 4 for k in (1, 2, 3, 4)],
        }
    )
    return (
        RobustnessCheck(
            "placebo_in_time", 0.02, -0.2, 0.24, True, "Pretend start 4 periods early."
        ),
        RobustnessCheck(
            "placebo_in_space",
            r.estimate,
            r.ci_lower,
            r.ci_upper,
            True,
            "The real estimate ranks 2nd of 145.",
        ),
        RobustnessCheck(
            "leave_one_out",
            r.estimate * 0.9,
            r.ci_lower,
            r.ci_upper,
            True,
            "Smallest of the 6 leave-one-out estimates.",
        ),
        RobustnessCheck(
            "alternative_estimators",
            r.estimate * 1.1,
            r.ci_lower,
            r.ci_upper,
            False,
            "TWFE differs in sign.",
        ),
        RobustnessCheck(
            "honest_did",
            r.estimate,
            intervals["ci_lower"].iloc[1],
            intervals["ci_upper"].iloc[1],
            None,
            "If parallel trends fail by no more after the start than before it (Mbar = 1), the "
            "effect keeps its sign.",
            # the shape the engine's honest_did check returns
            HonestDiD(
                breakdown_mbar=1.25,
                inference="cluster",
                relative_magnitudes=Table(
                    pd.DataFrame(
                        {
                            "restriction": "RM",
                            "bound": intervals["Mbar"],
                            "lower": intervals["ci_lower"],
                            "upper": intervals["ci_upper"],
                            "method": "C-LF",
                        }
                    )
                ),
                smoothness=Table(
                    pd.DataFrame(
                        [
                            {
                                "restriction": "SD",
                                "bound": 0.0,
                                "lower": r.ci_lower,
                                "upper": r.ci_upper,
                                "method": "FLCI",
                            }
                        ]
                    )
                ),
                n_pre=7,
                n_post=8,
            ),
        ),
    )


#: Robustness checks the engine runs for real in the examples (cheap ones); the expensive ones
#: (HonestDiD, alternative estimators) are attached in the shape the engine returns them.
REAL_CHECKS = ["placebo_in_time", "leave_one_out"]


@functools.cache
def three_outcomes(with_checks: bool = True) -> Evaluation:
    """Three outcomes (two primary), every robustness check present."""
    df, a = _three_panel()
    spec = _spec(
        list(a.treated_units),
        a.start,
        THREE_OUTCOMES,
        robustness=REAL_CHECKS if with_checks else [],
    )
    ev = pilotlab.evaluate(spec, data=df)
    if with_checks:
        ev = dataclasses.replace(
            ev,
            outcomes=tuple(
                dataclasses.replace(
                    o,
                    robustness=(
                        *o.robustness,
                        *(c for c in _checks(o) if c.check not in REAL_CHECKS),
                    ),
                )
                if o.primary
                else o
                for o in ev.outcomes
            ),
        )
        ev = dataclasses.replace(ev, evidence_strength=evidence_strength(ev))
    return _fix_time(ev)


@functools.cache
def staggered() -> Evaluation:
    """Three monthly waves across 30 of 120 areas, with group-time tables attached."""
    sim = make_pilot_panel(
        120,
        48,
        30,
        [18, 26, 34],
        -1.0,
        freq="month",
        first_period="2020-01",
        seed=21,
        outcome="referrals",
        unit_prefix="FH",
    )
    spec = _spec(
        [],
        None,
        [
            {
                "column": "referrals",
                "label": "Referrals per 1,000 children",
                "units": "referrals per 1,000",
                "primary": True,
                "better": "lower",
            }
        ],
        adoption=sim.adoption,
        estimator="twfe",
        title="Family hubs roll-out",
    )
    ev = pilotlab.evaluate(spec, data=sim.data)
    o = ev.outcomes[0]
    labels = list(ev.data.period_labels)
    cohorts = sorted(set(ev.data.adoption.values()), key=labels.index)
    rows = []
    for g in cohorts:
        gi = labels.index(g)
        for t in range(gi - 2, min(gi + 4, len(labels))):
            att = -1.0 if t >= gi else 0.0
            rows.append(
                {
                    "group": g,
                    "time": labels[t],
                    "event_time": t - gi,
                    "att": att,
                    "std_error": 0.3,
                    "ci_lower": att - 0.6,
                    "ci_upper": att + 0.6,
                }
            )
    att_gt = pd.DataFrame(rows)
    aggregations = pd.DataFrame(
        {
            "type": ["simple", "dynamic", "group", "calendar"],
            "estimate": [-1.0, -0.98, -1.01, -0.99],
            "std_error": [0.2] * 4,
            "ci_lower": [-1.4] * 4,
            "ci_upper": [-0.6] * 4,
        }
    )
    et = np.arange(-6, 7)
    est = np.where(et >= 0, -1.0, 0.0) + 0.05 * np.sin(et)
    se = np.full(et.shape, 0.25)
    dyn = pd.DataFrame(
        {
            "event_time": et,
            "estimate": est,
            "std_error": se,
            "ci_lower": est - 1.96 * se,
            "ci_upper": est + 1.96 * se,
            "uniform_lower": est - 2.8 * se,
            "uniform_upper": est + 2.8 * se,
        }
    )
    events = tuple(
        EventTimeEstimate(int(e), float(b), float(s), float(b - 1.96 * s), float(b + 1.96 * s))
        for e, b, s in zip(et, est, se, strict=True)
    )
    pre = PreTrendTest("wald", 4.2, 6, 0.65)
    by_type = pd.DataFrame(
        {
            "type": ["treated_vs_never", "earlier_vs_later", "later_vs_earlier"],
            "weight": [0.8, 0.12, 0.08],
            "estimate": [-1.0, -0.9, -0.4],
        }
    )
    bacon = BaconDecomposition(table=by_type, by_type=by_type, twfe_estimate=-0.93)
    tables = StaggeredTables(
        att_gt=Table(att_gt), aggregations=Table(aggregations), dynamic=Table(dyn)
    )
    res = dataclasses.replace(o.result, staggered=tables, event_study=events, pre_trend=pre)
    ev = dataclasses.replace(
        ev,
        outcomes=(dataclasses.replace(o, result=res),),
        diagnostics=DesignDiagnostics(goodman_bacon=MappingProxyType({"referrals": bacon})),
    )
    return _fix_time(ev)


@functools.cache
def synthetic() -> Evaluation:
    """One treated area; synthetic-design details attached to an event-study evaluation."""
    sim = make_pilot_panel(
        40, 30, 1, 20, -2.0, freq="year", first_period="1990", seed=2, outcome="packs", noise_sd=0.5
    )
    spec = _spec(
        list(sim.treated_units),
        sim.start,
        [
            {
                "column": "packs",
                "label": "Cigarette packs per person",
                "units": "packs",
                "primary": True,
                "better": "lower",
            }
        ],
        title="Tobacco control pilot",
    )
    ev = pilotlab.evaluate(spec, data=sim.data)
    o = ev.outcomes[0]
    donors = pd.DataFrame(
        {
            "unit": [f"A{i:04d}" for i in range(1, 8)],
            "weight": [0.35, 0.25, 0.15, 0.1, 0.08, 0.05, 0.02],
        }
    )
    t = o.trends
    path = pd.DataFrame(
        {
            "period": t["period"],
            "treated": t["treated"],
            "synthetic": t["treated"] + np.where(np.arange(len(t)) >= 20, 2.0, 0.1),
        }
    )
    placebo = pd.DataFrame(
        {
            "unit": [f"A{i:04d}" for i in range(1, 40)] + [sim.treated_units[0]],
            "estimate": [*np.linspace(-1.2, 1.1, 39), -1.9],
            "treated": [False] * 39 + [True],
        }
    )
    # the keys and shapes of the synthetic-control branch (weights, paths, placebo...)
    tables = SyntheticTables(
        weights=Table(donors),
        paths=Table(path.assign(cohort="2010")),
        placebo=Table(placebo),
        pre_rmspe=0.1,
        fit_sentence="The synthetic comparison tracks the pilot area to within 0.1 "
        "(packs, root mean squared gap) before the start.",
    )
    res = dataclasses.replace(o.result, synthetic=tables, estimator="synthetic_did")
    ev = dataclasses.replace(
        ev,
        outcomes=(dataclasses.replace(o, result=res),),
        estimator=Choice(
            "synthetic_did", "Only 1 area was treated and 20 periods precede the start."
        ),
        inference=Choice("placebo", "Placebo inference across the 39 comparison areas."),
    )
    ev = dataclasses.replace(ev, evidence_strength=evidence_strength(ev))
    return _fix_time(ev)


@functools.cache
def single_permutation() -> Evaluation:
    """One treated area of 30 with permutation inference and a small effect on a proportion.

    The overall interval comes from permutation inference; the period-by-period intervals stay
    cluster-robust with one treated cluster, so the report must grey and label them.
    """
    sim = make_pilot_panel(
        30,
        16,
        1,
        10,
        -0.01,
        freq="quarter",
        first_period="2019Q1",
        seed=3,
        outcome="share_in_work",
        noise_sd=0.01,
        unit_sd=0.02,
        trend=0.001,
    )
    y = sim.data["share_in_work"]
    data = sim.data.assign(share_in_work=y - y.mean() + 0.27)
    spec = _spec(
        list(sim.treated_units),
        sim.start,
        [
            {
                "column": "share_in_work",
                "label": "Share of residents in work",
                "units": "proportion",
                "primary": True,
                "better": "higher",
            }
        ],
        inference="permutation",
        title="Single-area work pilot",
    )
    return _fix_time(pilotlab.evaluate(spec, data=data))


@functools.cache
def shipped(name: str) -> Evaluation:
    """The shipped example pilot ``pilots/<name>`` evaluated as ``pilotlab run`` evaluates it."""
    return pilotlab.evaluate(pilotlab.load_pilot(PILOTS / name / "pilot.yaml"))


EXAMPLES = {
    "common": common,
    "staggered": staggered,
    "three_outcomes": three_outcomes,
    "synthetic": synthetic,
    "single_permutation": single_permutation,
}


def normalise(html: str) -> str:
    """HTML with what legitimately changes between runs (times, versions) replaced."""
    html = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "TIMESTAMP", html)
    html = re.sub(r"(<dt>Software: [^<]+</dt><dd>)[^<]*(</dd>)", r"\1VERSION\2", html)
    html = re.sub(r"pilotlab [0-9][0-9A-Za-z.+-]*", "pilotlab VERSION", html)
    # the plan hash covers every key of the pilot-file model, so it changes whenever the model
    # gains an optional key; its display is tested in test_report_build
    html = re.sub(r"(<dt>Plan SHA-256</dt><dd>)[0-9a-f]{64}", r"\1PLAN_SHA256", html)
    return html
