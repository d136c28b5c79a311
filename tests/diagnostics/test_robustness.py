"""Inference wired onto the registered estimators, and the robustness checks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pilotlab.data.panel import NEVER
from pilotlab.diagnostics.robustness import (
    alternative_estimators,
    honest_did,
    leave_one_out,
    placebo_in_space,
    placebo_in_time,
    robustness_checks,
)
from pilotlab.estimators import ESTIMATORS, EstimatorOptions
from pilotlab.exceptions import PilotlabError
from pilotlab.inference.apply import apply_inference
from pilotlab.inference.wild import make_draws, prepare_wild_bootstrap
from pilotlab.results import (
    AlternativeEstimator,
    HonestDiD,
    LeaveOneOut,
    PermutationRecord,
    PlaceboInSpace,
    PlaceboInTime,
    WildBootstrapRecord,
)
from tests.support.infer import make_panel, simulate_panel


def _design(seed: int, effect: float, n: int = 40, t: int = 10, n_treated: int = 6, start: int = 6):
    rng = np.random.default_rng(seed)
    y, treated = simulate_panel(n, t, n_treated, start, effect, 0.5, rng)
    ft = np.where(treated, start, NEVER)
    return make_panel(y, ft)


@pytest.mark.parametrize("name", ["twfe", "did", "event_study"])
def test_wild_bootstrap_on_registered_estimators(name: str) -> None:
    panel = _design(1, 0.8)
    entry = ESTIMATORS[name]
    opts = EstimatorOptions(inference="wild_bootstrap", replications=999)
    res = apply_inference(panel, "y", entry, opts, np.random.default_rng(0))
    base = entry.fit(panel, "y", EstimatorOptions(inference="cluster"), np.random.default_rng(0))
    assert res.inference == "wild_bootstrap"
    assert res.estimate == pytest.approx(base.estimate)
    assert res.ci_lower < res.estimate < res.ci_upper
    assert 0 <= res.p_value <= 1
    assert isinstance(res.inference_details, WildBootstrapRecord)
    assert res.inference_details.replications == 999
    # wild intervals with 6 treated of 40 are wider than CR1 t intervals
    assert res.ci_upper - res.ci_lower > 0.9 * (base.ci_upper - base.ci_lower)
    if name == "event_study":
        assert base.linear is not None
        fit = base.linear.fit
        ev = next(e for e in res.event_study if e.event_time == 0)
        draws = make_draws(40, 999, "auto", np.random.default_rng(123))
        st = prepare_wild_bootstrap(fit, fit.names.index("e+0"), draws)
        assert st.estimate == pytest.approx(ev.estimate)
        assert ev.ci_lower < ev.estimate < ev.ci_upper


def test_permutation_on_registered_twfe_and_did_agree() -> None:
    panel = _design(2, 0.0, n=20, n_treated=3)
    opts = EstimatorOptions(inference="permutation", replications=2000)
    twfe = apply_inference(panel, "y", ESTIMATORS["twfe"], opts, np.random.default_rng(0))
    did = apply_inference(panel, "y", ESTIMATORS["did"], opts, np.random.default_rng(0))
    perm = twfe.inference_details
    assert isinstance(perm, PermutationRecord)
    assert perm.exact and perm.n_assignments == 1140
    assert twfe.p_value == pytest.approx(did.p_value)
    assert twfe.estimate == pytest.approx(did.estimate)


def test_placebo_in_time_finds_nothing_before_start_and_flags_pre_trend() -> None:
    panel = _design(3, 1.0, t=12, start=8)
    entry = ESTIMATORS["twfe"]
    opts = EstimatorOptions(inference="wild_bootstrap", replications=499)
    main = apply_inference(panel, "y", entry, opts, np.random.default_rng(0))
    chk = placebo_in_time(panel, "y", entry, opts, np.random.default_rng(0), main)
    assert chk.consistent is True and isinstance(chk.details, PlaceboInTime)
    assert chk.details.shift == 4
    # a pre-existing diverging trend in treated units is caught
    rng = np.random.default_rng(3)
    y, treated = simulate_panel(40, 12, 6, 8, 1.0, 0.5, rng)
    y[treated] += 0.8 * np.arange(12)[None, :]
    bad = make_panel(y, np.where(treated, 8, NEVER))
    chk2 = placebo_in_time(bad, "y", entry, opts, np.random.default_rng(0), main)
    assert chk2.consistent is False


def test_placebo_in_space_ranks_a_real_effect_high() -> None:
    panel = _design(4, 3.0, n=40, n_treated=4)
    entry = ESTIMATORS["twfe"]
    opts = EstimatorOptions(inference="permutation", replications=999)
    main = apply_inference(panel, "y", entry, opts, np.random.default_rng(0))
    chk = placebo_in_space(panel, "y", entry, opts, np.random.default_rng(0), main)
    assert isinstance(chk.details, PlaceboInSpace)
    assert chk.details.p_value < 0.05 and chk.consistent is True
    assert chk.ci_lower < 0 < chk.ci_upper  # placebo band around zero


def test_leave_one_out_and_alternatives() -> None:
    panel = _design(5, 1.0, n=30, n_treated=5)
    entry = ESTIMATORS["twfe"]
    opts = EstimatorOptions(inference="cluster")
    main = entry.fit(panel, "y", opts, np.random.default_rng(0))
    loo = leave_one_out(panel, "y", entry, opts, np.random.default_rng(0), main)
    assert isinstance(loo.details, LeaveOneOut)
    assert len(loo.details.estimates) == 5 + 25
    assert loo.consistent is True
    alts = alternative_estimators(panel, "y", entry, opts, np.random.default_rng(0), main)
    names = {a.details.estimator for a in alts if isinstance(a.details, AlternativeEstimator)}
    assert {"did", "event_study"} <= names
    did = next(a for a in alts if a.check == "alternative_estimators:did")
    assert did.estimate == pytest.approx(main.estimate)  # balanced, common start: identical
    assert did.consistent is True


def test_leave_one_out_without_a_main_interval_compares_nothing() -> None:
    """A main estimate without an interval cannot be left: no drop is called outside it."""
    panel = _design(5, 1.0, n=30, n_treated=5)
    entry = ESTIMATORS["twfe"]
    opts = EstimatorOptions(inference="cluster")
    fitted = entry.fit(panel, "y", opts, np.random.default_rng(0))
    main = dataclasses.replace(fitted, ci_lower=math.nan, ci_upper=math.nan)
    loo = leave_one_out(panel, "y", entry, opts, np.random.default_rng(0), main)
    assert isinstance(loo.details, LeaveOneOut)
    assert loo.consistent is None and loo.details.n_outside == 0
    assert loo.description.endswith("The main estimate has no interval to compare them with.")
    assert "outside" not in loo.description


def test_honest_did_on_event_study() -> None:
    panel = _design(6, 1.5, n=60, n_treated=12, t=10, start=5)
    entry = ESTIMATORS["event_study"]
    opts = EstimatorOptions(inference="cluster")
    main = entry.fit(panel, "y", opts, np.random.default_rng(0))
    chk = honest_did(panel, "y", entry, opts, np.random.default_rng(0), main)
    assert chk.estimate == pytest.approx(main.estimate, rel=1e-8)
    assert chk.ci_lower < chk.estimate < chk.ci_upper
    assert isinstance(chk.details, HonestDiD)
    assert chk.details.breakdown_mbar > 0 and chk.consistent is not None
    # from a twfe main result the event study is run internally
    chk2 = honest_did(
        panel,
        "y",
        ESTIMATORS["twfe"],
        opts,
        np.random.default_rng(0),
        ESTIMATORS["twfe"].fit(panel, "y", opts, np.random.default_rng(0)),
    )
    assert math.isfinite(chk2.estimate)


def test_dispatcher_and_unknown_check() -> None:
    panel = _design(7, 0.5, n=20, n_treated=4)
    entry = ESTIMATORS["twfe"]
    opts = EstimatorOptions()
    main = entry.fit(panel, "y", opts, np.random.default_rng(0))
    out = robustness_checks(
        ["placebo_in_time", "alternative_estimators"],
        panel,
        "y",
        entry,
        opts,
        np.random.default_rng(0),
        main,
    )
    assert out[0].check == "placebo_in_time" and len(out) >= 3
    assert all(isinstance(c.to_dict(), dict) for c in out)
    with pytest.raises(PilotlabError, match="'nope' is not a known check"):
        robustness_checks(["nope"], panel, "y", entry, opts, np.random.default_rng(0), main)


def test_wild_statistic_uses_the_fit_cr1_standard_error() -> None:
    panel = _design(9, 0.5)
    entry = ESTIMATORS["twfe"]
    base = entry.fit(panel, "y", EstimatorOptions(inference="cluster"), np.random.default_rng(0))
    res = apply_inference(
        panel, "y", entry, EstimatorOptions(inference="wild_bootstrap"), np.random.default_rng(0)
    )
    wb = res.inference_details
    assert isinstance(wb, WildBootstrapRecord)
    assert wb.statistic == pytest.approx(base.estimate / base.std_error, rel=1e-10)


def test_the_randomised_estimator_is_an_alternative_only_for_a_randomised_pilot() -> None:
    from tests.support.trial import trial_panel

    panel = _design(5, 1.0, n=30, n_treated=5)
    entry = ESTIMATORS["twfe"]
    opts = EstimatorOptions(inference="cluster")
    main = entry.fit(panel, "y", opts, np.random.default_rng(0))
    alts = alternative_estimators(panel, "y", entry, opts, np.random.default_rng(0), main)
    assert "alternative_estimators:randomised" not in {a.check for a in alts}
    randomised = trial_panel(0.5, scheme="complete", treated=12)
    main = entry.fit(randomised, "outcome", opts, np.random.default_rng(0))
    alts = alternative_estimators(
        randomised, "outcome", entry, opts, np.random.default_rng(0), main
    )
    assert "alternative_estimators:randomised" in {a.check for a in alts}


@pytest.mark.parametrize("main_name", ["event_study", "twfe"])
def test_honest_did_beside_the_other_checks_gives_the_numbers_of_running_in_turn(
    main_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an event study honest_did draws nothing and runs on a thread beside the others; from
    another main estimator it fits an event study, so it runs in its turn on this thread."""
    import threading

    from pilotlab.diagnostics import robustness

    panel = _design(8, 1.0, n=40, n_treated=8, t=10, start=5)
    entry = ESTIMATORS[main_name]
    opts = EstimatorOptions(inference="cluster")
    main = entry.fit(panel, "y", opts, np.random.default_rng(0))
    names = ["honest_did", "placebo_in_space", "leave_one_out", "honest_did"]
    threads: list[threading.Thread] = []
    real = robustness.CHECKS["honest_did"]

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setitem(robustness.CHECKS, "honest_did", recorded)
    messages: list[str] = []
    rng = np.random.default_rng(3)
    together = robustness_checks(
        names, panel, "y", entry, opts, rng, main, progress=messages.append
    )
    in_turn_rng = np.random.default_rng(3)
    in_turn = [robustness.CHECKS[nm](panel, "y", entry, opts, in_turn_rng, main) for nm in names]
    assert [c.to_dict() for c in together] == [c.to_dict() for c in in_turn]
    assert rng.bit_generator.state == in_turn_rng.bit_generator.state
    beside = main_name == "event_study"
    ran = threads[: 1 if beside else 2]  # one run beside for both places in the list
    assert all((t is not threading.main_thread()) == beside for t in ran)
    assert messages[0] == "Robustness check honest_did (y)" and len(messages) == 2 * len(names)
