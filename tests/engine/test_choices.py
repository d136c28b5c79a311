"""The engine's choices as public functions: the options every estimator reads from the plan,
including ``design.options`` of an estimator from another package, and its inference methods."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from pilotlab import catalogue
from pilotlab.catalogue import Capabilities, EstimatorEntry
from pilotlab.engine import check_design, estimator_options, evaluate, inference_methods
from pilotlab.estimators import ESTIMATORS
from pilotlab.results import EffectResult
from pilotlab.simulate import make_pilot_panel
from pilotlab.spec import parse_pilot
from tests.support import pilot_dict


class TrimOptions(BaseModel):
    """Options of a small estimator from 'another package'."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    trim: float = 0.0
    label: str = "none"


SEEN: list[Any] = []


def _fit(panel: Any, outcome: str, options: Any, rng: np.random.Generator) -> EffectResult:
    SEEN.append(options.estimator)
    return ESTIMATORS["did"].fit(panel, outcome, options, rng)


@pytest.fixture
def trimmed(monkeypatch: pytest.MonkeyPatch) -> str:
    """A third-party estimator with its own option model, registered for one test."""
    entry = EstimatorEntry(
        name="trimmed_did",
        title="trimmed difference in differences",
        fit=_fit,
        description="A difference in differences that reads its own options.",
        capabilities=Capabilities(inference=("cluster", "robust"), linear=True),
        options=TrimOptions,
    )
    catalogue.entries()  # load the built-in ones first
    monkeypatch.setitem(catalogue._REGISTERED, entry.name, entry)
    SEEN.clear()
    return entry.name


def _spec(sim: Any, **design: Any) -> Any:
    treatment = {"units": list(sim.treated_units), "start": sim.start}
    return parse_pilot(pilot_dict(treatment=treatment, design=design))


def test_design_options_reach_a_third_party_estimator(trimmed: str) -> None:
    sim = make_pilot_panel(30, 8, 6, 5, effect=-0.5, seed=2)
    spec = _spec(sim, estimator=trimmed, options={"trim": 0.1, "label": "ten"})
    opts = estimator_options(spec, "robust")
    assert opts.estimator == TrimOptions(trim=0.1, label="ten")
    assert (opts.inference, opts.alpha) == ("robust", spec.design.alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = evaluate(spec, sim.data)
    assert SEEN and all(o == TrimOptions(trim=0.1, label="ten") for o in SEEN)
    assert ev.estimator.name == trimmed


def test_check_design_passes_the_options_too(trimmed: str) -> None:
    from pilotlab.data import panel_from_frame

    sim = make_pilot_panel(30, 8, 6, 5, effect=-0.5, seed=2)
    spec = _spec(sim, estimator=trimmed, options={"trim": 0.2})
    est, _ = check_design(spec, panel_from_frame(sim.data, spec))
    assert est.name == trimmed and [TrimOptions(trim=0.2)] == SEEN


def test_builtin_estimators_get_no_third_party_options() -> None:
    sim = make_pilot_panel(30, 8, 6, 5, seed=2)
    spec = _spec(sim, estimator="twfe", callaway_santanna={"method": "ipw"}, covariates=[])
    opts = estimator_options(spec, "cluster")
    assert opts.estimator is None
    assert opts.callaway_santanna.method == "ipw" and opts.synthetic == spec.design.synthetic


def test_inference_methods_include_those_applied_after_the_fit() -> None:
    assert inference_methods(ESTIMATORS["twfe"]) == (
        "cluster",
        "wild_bootstrap",
        "permutation",
        "robust",
        "iid",
    )
    caps = ESTIMATORS["synthetic_did"].capabilities
    assert "wild_bootstrap" not in inference_methods(ESTIMATORS["synthetic_did"])
    assert set(caps.inference) <= set(inference_methods(ESTIMATORS["synthetic_did"]))


def test_an_unavailable_method_is_refused_naming_every_usable_one() -> None:
    """The message lists the methods applied after the fit too (permutation), not only native."""
    from pilotlab.data import panel_from_frame
    from pilotlab.engine import choose_inference
    from pilotlab.exceptions import EstimationError

    sim = make_pilot_panel(30, 8, 6, 5, seed=2)
    spec = _spec(sim, estimator="callaway_santanna", covariates=[])
    panel = panel_from_frame(sim.data, spec, source="test")
    with pytest.raises(EstimationError, match=r"use one of: cluster, permutation, or auto"):
        choose_inference(panel, "callaway_santanna", "wild_bootstrap")
